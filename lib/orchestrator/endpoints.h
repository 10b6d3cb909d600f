/*
 * endpoints.h - the list of orchestrator endpoints a worker or client may connect to
 * ("EP1,EP2[,...]" in gg_worker_options.connect and gg_client_options.connect): parsed and
 * checked once, then walked round robin when the peer fails over to the next one (the
 * active orchestrator of a primary/backup pair, docs/protocol.md "Failover"). Internal.
 */
#ifndef GGI_ENDPOINTS_H
#define GGI_ENDPOINTS_H

#include <stddef.h>

#include "../core/ggi.h"

/** Most endpoints one connect option may list (documented in worker.h and client.h). */
#define GGI_MAX_ENDPOINTS 16
/** Longest single endpoint (bytes). */
#define GGI_MAX_ENDPOINT_LEN 1000

typedef struct ggi_endpoints {
    char *ep[GGI_MAX_ENDPOINTS];
    unsigned n;
    unsigned cur; /* the one in use */
} ggi_endpoints;

/**
 * Parses a comma-separated list (blanks around an entry are dropped). GG_EINVAL, with a
 * message naming the entry, for NULL, an empty list or entry, more than GGI_MAX_ENDPOINTS,
 * an entry longer than GGI_MAX_ENDPOINT_LEN or one listed twice. With check_rule, each
 * entry must also pass the unencrypted-operation rule (endpoint_rule.h) with has_keys and
 * insecure. On failure *out is left empty.
 */
int ggi_endpoints_parse(const char *text, int check_rule, int has_keys, int insecure,
                        ggi_endpoints *out);

/** The endpoint in use. */
const char *ggi_endpoints_current(const ggi_endpoints *e);

/** Moves to the next endpoint (round robin) and returns it. */
const char *ggi_endpoints_next(ggi_endpoints *e);

/** The whole list as "EP1, EP2" for messages, into buf (truncated to fit). */
void ggi_endpoints_describe(const ggi_endpoints *e, char *buf, size_t size);

/**
 * Whether a reply body is a passive orchestrator's refusal: ok false, code GG_ESTATE (-10)
 * and a message beginning "passive:" (docs/protocol.md "Failover"). The peer then moves on.
 */
int ggi_reply_is_passive(const cJSON *body);

/** Frees the entries; *e is then empty. */
void ggi_endpoints_free(ggi_endpoints *e);

#endif
