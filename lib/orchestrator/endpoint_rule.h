/*
 * endpoint_rule.h - the rule for unencrypted operation as the grid's library objects
 * (orchestrator, worker, client) apply it: without CURVE keys a loopback endpoint works as
 * it always did, an endpoint of a ZeroMQ transport that leaves the machine is refused
 * (gg_security_check; --insecure does not lift that), and a scheme ZeroMQ does not know is
 * left for ZeroMQ to reject when the socket binds or connects.
 */
#ifndef GGI_ENDPOINT_RULE_H
#define GGI_ENDPOINT_RULE_H

#include <string.h>

#include "gryphgen/security.h"

/** Returns 0, or GG_EINVAL with gg_security_check's message when the endpoint is refused. */
static inline int ggi_endpoint_rule(const char *endpoint, int has_keys, int insecure)
{
    static const char *const network[] = {"tcp://", "ipc://", "ws://",  "wss://", "tipc://",
                                          "vmci://", "pgm://", "epgm://", "norm://", "udp://"};
    int known = 0;
    for (size_t i = 0; endpoint && i < sizeof network / sizeof network[0]; i++)
        if (strncmp(endpoint, network[i], strlen(network[i])) == 0)
            known = 1;
    if (!known)
        return 0;
    return gg_security_check(endpoint, has_keys, insecure || gg_endpoint_is_loopback(endpoint));
}

#endif
