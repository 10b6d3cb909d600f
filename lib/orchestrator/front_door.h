/*
 * front_door.h - the front door of GRYPHGEN's original sketch: a plain ZeroMQ REQ client
 * sends {"code": "print('Hello, World!')", "query": "example query"} and gets one JSON reply.
 * The code runs as a script task through the orchestrator's normal submit path (its sandbox,
 * its workers); the query is answered from the orchestrator's retriever (the index). Every
 * request gets exactly one reply: a result, or an error naming what was wrong (not JSON,
 * unknown keys, oversized, no index, busy, timed out, stopping). docs/front_door.md.
 *
 * One thread with its own ZeroMQ context and ROUTER socket (so many REQ clients may wait at
 * once); with CURVE keys its own ZAP handler admits the authorized keys, and only the roles
 * submitter and admin may send work.
 *
 * THREAD SAFETY: new and destroy from one thread; everything else runs on the door's thread.
 */
#ifndef GGI_FRONT_DOOR_H
#define GGI_FRONT_DOOR_H

#include "gryphgen/orchestrator.h"
#include "../core/ggi.h"

/** Largest request accepted (bigger ones get an error reply), and requests in flight. */
#define GGI_FRONT_DOOR_MAX_REQUEST (1u << 20)
#define GGI_FRONT_DOOR_MAX_PENDING 64
/** Bytes of the end of stdout and stderr a reply carries. */
#define GGI_FRONT_DOOR_TAIL 4000

typedef struct ggi_front_door ggi_front_door;

typedef struct ggi_front_door_options {
    const char *endpoint;
    const char *curve_key_file;       /* with authorized_keys_file: CURVE server */
    const char *authorized_keys_file;
    int insecure;                     /* as gg_orchestrator_options.insecure */
    gg_orchestrator_t *orch;          /* borrowed */
    gg_retriever_t *index;            /* borrowed; NULL: queries are refused */
    double timeout_s;                 /* a request's code may take this long; 0: 300 */
    ggi_logger log;
} ggi_front_door_options;

/** Binds the endpoint and starts the thread; GG_EINVAL for an endpoint the key rule
 *  refuses, GG_ETRANSPORT when it cannot bind. *out is NULL on failure. */
int ggi_front_door_new(ggi_front_door **out, const ggi_front_door_options *opts);

/** Answers the requests in flight with an error ("stopping"), stops the thread, closes the
 *  socket. Accepts NULL; sets *pd to NULL. */
void ggi_front_door_destroy(ggi_front_door **pd);

#endif
