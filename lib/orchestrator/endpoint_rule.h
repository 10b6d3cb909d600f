/*
 * endpoint_rule.h - the rule for unencrypted operation as the grid's library objects
 * (orchestrator, worker, client) apply it to their options, the same rule the commands
 * apply to --insecure (docs/security.md): an endpoint of a ZeroMQ transport that leaves the
 * process (tcp://, ipc://, ...) needs CURVE keys, or the option `insecure` set to 1 and a
 * loopback endpoint (gg_security_check); `insecure` never lifts the refusal of an endpoint
 * that is not loopback. inproc:// needs nothing, and a scheme ZeroMQ does not know is left
 * for ZeroMQ to reject when the socket binds or connects.
 */
#ifndef GGI_ENDPOINT_RULE_H
#define GGI_ENDPOINT_RULE_H

#include <string.h>

#include "../core/ggi.h"
#include "gryphgen/security.h"

/**
 * Returns 0 when the endpoint may be used, else GG_EINVAL with a message that names the
 * endpoint and the options to set: key_options names the key fields of the caller's options
 * struct (e.g. "curve_key_file and curve_server_key"), and the message names `insecure`.
 * has_keys: CURVE keys are configured; insecure: the options' `insecure` field.
 */
static inline int ggi_endpoint_rule(const char *endpoint, int has_keys, int insecure,
                                    const char *key_options)
{
    static const char *const network[] = {"tcp://", "ipc://", "ws://",  "wss://", "tipc://",
                                          "vmci://", "pgm://", "epgm://", "norm://", "udp://"};
    int known = 0;
    for (size_t i = 0; endpoint && i < sizeof network / sizeof network[0]; i++)
        if (strncmp(endpoint, network[i], strlen(network[i])) == 0)
            known = 1;
    if (!known || gg_security_check(endpoint, has_keys, insecure) == GG_OK)
        return GG_OK;
    if (!insecure)
        return ggi_error(GG_EINVAL, "%s: no CURVE keys configured and the option 'insecure' is "
                         "not set: refusing unencrypted operation; set %s (keys made by "
                         "'gryphgen keygen'), or set 'insecure' to 1 for unencrypted operation "
                         "on a loopback endpoint (tcp://127.0.0.1:P, tcp://[::1]:P, "
                         "tcp://localhost:P, ipc://PATH). docs/security.md",
                         endpoint, key_options);
    return ggi_error(GG_EINVAL, "%s: the option 'insecure' allows unencrypted operation on "
                     "loopback endpoints only (tcp://127.0.0.1:P, tcp://[::1]:P, "
                     "tcp://localhost:P, ipc://PATH) and this endpoint is not loopback; set %s "
                     "(keys made by 'gryphgen keygen'). docs/security.md",
                     endpoint, key_options);
}

#endif
