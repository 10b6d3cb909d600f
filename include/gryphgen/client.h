/*
 * gryphgen/client.h - a client of a grid orchestrator (`gryphgen serve`): submits tasks,
 * waits for results, asks for status, cancels, and watches the event stream, over ggp/1
 * (docs/protocol.md). Tasks and results are the same JSON as gg_orchestrator_t's.
 *
 * A wait survives an orchestrator restart: the client asks again until the result comes or
 * its time runs out. With several endpoints (a primary and its backup), a request whose
 * orchestrator answers "passive:", whose connection closes, where nobody listens or that
 * hears nothing for 3 heartbeat intervals is sent again to the next endpoint, round robin,
 * with a short backoff, until the request's time runs out (GG_ETIMEDOUT naming the
 * endpoints); requests are idempotent (a task submitted again is its id).
 *
 * THREAD SAFETY: calls on one client are serialised by the client (one request at a time);
 * use one client per thread for parallel requests. The watch callback runs on the thread
 * that called gg_client_watch(). gg_client_get_stats() may be called from any thread, also
 * while another one waits in a request.
 */
#ifndef GRYPHGEN_CLIENT_H
#define GRYPHGEN_CLIENT_H

#include "common.h"
#include "log.h"
#include "transport.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A client connection to an orchestrator. */
typedef struct gg_client gg_client_t;

/** Version of gg_client_options this header describes. */
#define GG_CLIENT_OPTIONS_VERSION 2

/** Options for gg_client_new(). Fields are only ever appended. */
typedef struct gg_client_options {
    uint32_t version;     /**< GG_CLIENT_OPTIONS_VERSION */
    const char *connect;  /**< the orchestrator's endpoint, e.g. tcp://127.0.0.1:5555; or
                               several, comma-separated ("EP1,EP2": a primary and its
                               backup, at most 16, each checked as one is): the client
                               follows the active one (docs/protocol.md "Failover").
                               Since 1.3 */
    const char *name;     /**< submitter name for fair share; NULL: user@host */
    int timeout_ms;       /**< per request (not wait); 0: 10000 */
    const char *curve_key_file;   /**< this client's CURVE key pair (PREFIX.key from
                                       `gryphgen keygen`), listed with role submitter or admin
                                       in the orchestrator's authorized keys; NULL: no
                                       encryption (see insecure). docs/security.md */
    const char *curve_server_key; /**< the orchestrator's public key: 40-character Z85 text
                                       or the path of its .pub or .key file; required with
                                       curve_key_file */
    int insecure;                 /**< 1: allow connecting without keys, to a loopback
                                       endpoint only; 0 (default): tcp:// or ipc:// without
                                       keys is GG_EINVAL. Without keys an endpoint that is not
                                       loopback is GG_EINVAL even with 1; inproc:// needs
                                       neither keys nor insecure */
    /* version 2 */
    gg_transport_t *custom_transport; /**< a host's transport (gg_transport_new_custom()),
                                       borrowed: it must outlive the client; connect is then
                                       the orchestrator's endpoint name in that transport,
                                       and the key options must be NULL. NULL: ZeroMQ */
} gg_client_options;

/** Static initialiser with defaults. */
#define GG_CLIENT_OPTIONS_INIT { GG_CLIENT_OPTIONS_VERSION, NULL, NULL, 0, NULL, NULL, 0, NULL }

/** Fills *opts with defaults for the given version; GG_EVERSION for an unknown version. */
GG_API int gg_client_options_init(gg_client_options *opts, unsigned version);

/** Creates a client and connects (lazily: the first request finds out if nobody listens). */
GG_API int gg_client_new(gg_client_t **out, const gg_client_options *opts);

/**
 * Submits one task (JSON text). *out_task_id (may be NULL) receives its id (gg_free()).
 * GG_EBUSY when the orchestrator's queue is full (try again later); GG_EINVAL / GG_ETOOBIG
 * for a bad task, GG_ETIMEDOUT when no answer came. A workspace task is resolved here, on
 * the submitter's side (docs/tasks.md, "Workspace tasks"), before it is sent: GG_ENOTFOUND
 * naming the field when its repository, ref or directory is not there; the same holds for
 * each task of gg_client_submit_batch() (reported in its "errors").
 */
GG_API int gg_client_submit(gg_client_t *c, const char *task_json, char **out_task_id);

/**
 * Submits many tasks in one message: tasks_json is a JSON array of task objects (at most
 * 10000, at most 16 MiB). *out_json receives {"ids": [id or null, ...], "errors": [{"index",
 * "code", "message"}...]} (gg_free()). GG_EBUSY when the whole batch was refused.
 */
GG_API int gg_client_submit_batch(gg_client_t *c, const char *tasks_json, char **out_json);

/**
 * Waits until the task has ended; *out_result_json gets its result (gg_free()).
 * timeout_ms < 0 waits without limit. GG_ETIMEDOUT, GG_ENOTFOUND.
 */
GG_API int gg_client_wait(gg_client_t *c, const char *task_id, int timeout_ms,
                          char **out_result_json);

/**
 * The state of a task ({"task_id", "status", "attempts", "reason"}), or with task_id NULL
 * the orchestrator's counters and nodes. *out_json is freed with gg_free().
 */
GG_API int gg_client_status(gg_client_t *c, const char *task_id, char **out_json);

/**
 * The demand a worker with the capabilities caps_json could serve (since 1.3; what
 * `gryphgen scale` asks before it starts workers): caps_json is an object with any of
 * "labels" (object of strings: the worker's labels), "languages" (array: the task languages
 * it runs), "gpus" (number), "deps" (a worker's caps.deps) and "limit" (queued tasks it could
 * run counted at most, 1 to 1000000, default 100000); a member absent is not checked.
 * *out_json (gg_free()) gets
 * {"tasks", "waiting", "queued", "running", "unservable", "complete"}: the unfinished tasks
 * such a worker could run, those of them no worker holds, ... (docs/protocol.md). GG_EINVAL
 * naming what is wrong with caps_json; GG_EVERSION from an orchestrator older than 1.3.
 */
GG_API int gg_client_demand(gg_client_t *c, const char *caps_json, char **out_json);

/** Cancels a task. GG_ENOTFOUND, GG_ESTATE (already ended) as gg_orchestrator_cancel(). */
GG_API int gg_client_cancel(gg_client_t *c, const char *task_id);

/**
 * Streams events (docs/events.md) to fn for timeout_ms (< 0: until fn returns non-zero).
 * Returns 0 when the time ran out or fn returned non-zero.
 */
GG_API int gg_client_watch(gg_client_t *c, int (*fn)(void *user, const char *event_json),
                           void *user, int timeout_ms);

/**
 * As gg_client_watch(), but only events of the types named in `types`, a comma-separated list
 * of event types and prefixes ("task.finished,node." : task.finished and every node.* event;
 * docs/events.md). The orchestrator does not even build events no watcher asks for, so a
 * narrow filter makes watching cheap. NULL or "": all types. At most 32 entries of at most 64
 * bytes each; an unknown type, an empty entry or too many are refused with GG_EINVAL.
 * Since 1.2.
 */
GG_API int gg_client_watch_filtered(gg_client_t *c, const char *types,
                                    int (*fn)(void *user, const char *event_json), void *user,
                                    int timeout_ms);

/** Room for the endpoint text in gg_client_stats (an endpoint is at most 1000 bytes). */
#define GG_CLIENT_STATS_ENDPOINT_MAX 1024

/**
 * A client's counters (gg_client_get_stats()), since 1.3. The caller sets size to the size of
 * the struct it was compiled with (GG_CLIENT_STATS_INIT does); fields are only ever appended,
 * and the library fills only those that fit in size, so a caller built against this header
 * keeps working with a later library and the reverse.
 */
typedef struct gg_client_stats {
    size_t size;        /**< sizeof(gg_client_stats) as the caller knows it; set by the caller */
    uint64_t requests;  /**< request messages sent (a request sent again after a reset or to
                             the next endpoint counts again) */
    uint64_t replies;   /**< replies received to them */
    uint64_t timeouts;  /**< requests that returned GG_ETIMEDOUT: no answer within their
                             time (a gg_client_wait() whose task did not end in time is
                             not counted: the orchestrator answers a wait when it ends) */
    uint64_t failovers; /**< moves to another endpoint of a connect list (docs/protocol.md
                             "Failover"); 0 with a single endpoint */
    int32_t endpoint_index; /**< the endpoint (its index in the connect list) whose hub
                                 welcomed this client last, -1 while none has since the
                                 last move */
    char endpoint[GG_CLIENT_STATS_ENDPOINT_MAX]; /**< that endpoint's text; "" with -1 */
} gg_client_stats;

/** Static initialiser: size set, counters 0, no endpoint. */
#define GG_CLIENT_STATS_INIT { sizeof(gg_client_stats), 0, 0, 0, 0, -1, "" }

/**
 * Copies the client's counters into *out (since 1.3); out->size must be set first (at least
 * up to and including the first counter: offsetof(gg_client_stats, requests) + 8), and only
 * the fields within it are written. GG_EINVAL for NULL or a size too small.
 */
GG_API int gg_client_get_stats(gg_client_t *c, gg_client_stats *out);

/** Closes the connection, frees the client and sets *pc to NULL. Accepts NULL. */
GG_API void gg_client_destroy(gg_client_t **pc);

#ifdef __cplusplus
}
#endif
#endif
