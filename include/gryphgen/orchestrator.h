/*
 * gryphgen/orchestrator.h - SYMORQ: takes tasks, runs the attempt loop on worker threads and
 * keeps every attempt in the database.
 *
 * Tasks and results cross this API as JSON; the formats are in docs/tasks.md. The smallest
 * embedding:
 *
 *     gg_orchestrator_t *o = NULL;
 *     char *id = NULL, *result = NULL;
 *     gg_orchestrator_new(&o, NULL);
 *     gg_orchestrator_submit(o, task_json, &id);
 *     gg_orchestrator_wait(o, id, -1, &result);
 *     gg_free(result); gg_free(id);
 *     gg_orchestrator_destroy(&o);
 *
 * THREAD SAFETY: submit, wait, result, cancel, drain and stats may be called concurrently from
 * any threads. gg_orchestrator_destroy() must not race with any other call on the same
 * orchestrator. The log and event callbacks run on the orchestrator's scheduler thread (log
 * lines from a worker thread run on that worker thread); they must not call back into the
 * orchestrator.
 */
#ifndef GRYPHGEN_ORCHESTRATOR_H
#define GRYPHGEN_ORCHESTRATOR_H

#include "common.h"
#include "client.h"
#include "log.h"
#include "executor.h"
#include "generator.h"
#include "retriever.h"
#include "transport.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The orchestrator: scheduler thread, worker threads, database. */
typedef struct gg_orchestrator gg_orchestrator_t;

/** Version of gg_orchestrator_options this header describes. */
#define GG_ORCHESTRATOR_OPTIONS_VERSION 4 /* 4 added max_tokens and the ha_ fields */

/** Options for gg_orchestrator_new(). Fields are only ever appended. */
typedef struct gg_orchestrator_options {
    uint32_t version;            /**< GG_ORCHESTRATOR_OPTIONS_VERSION */
    const char *db_path;         /**< SQLite database; NULL: a temporary one removed on destroy */
    unsigned workers;            /**< worker threads; 0: the number of online cores */
    unsigned max_attempts;       /**< attempts for tasks whose budget names none; 0: 3 */
    gg_generator_t *generator;   /**< borrowed, must outlive the orchestrator; NULL: replay */
    gg_executor_t *executor;     /**< borrowed, must outlive the orchestrator; NULL: process */
    gg_retriever_t *retriever;   /**< borrowed, must outlive the orchestrator; NULL: none */
    const char *python;          /**< Python interpreter; NULL: $GRYPHGEN_PYTHON, else python3 */
    const char *cc;              /**< C compiler; NULL: $GRYPHGEN_CC, else $CC, else cc */
    gg_log_fn log_fn;            /**< NULL: no logging */
    void *log_user;              /**< passed to log_fn */
    int log_level;               /**< highest gg_log_level delivered; default GG_LOG_WARN */
    gg_event_fn event_fn;        /**< NULL: events go only to the events table (the
                                      types docs/events.md says are stored) and to
                                      watching clients */
    void *event_user;            /**< passed to event_fn */
    const char *transport;       /**< "zmq" (default when NULL), or "custom" with
                                      custom_transport */
    /* version 2 */
    const char *bind;            /**< endpoints for remote workers and clients besides the
                                      in-process one, comma-separated (tcp://127.0.0.1:5555,
                                      ipc:///run/gg.sock); NULL: none. See docs/protocol.md */
    int local_workers;           /**< 1 (default): run `workers` worker threads in this
                                      process; 0: none (only remote workers run tasks) */
    unsigned max_queued;         /**< unfinished (queued or running) tasks beyond which
                                      submissions get GG_EBUSY; 0: no limit */
    const char *curve_key_file;  /**< this orchestrator's CURVE key pair (PREFIX.key from
                                      `gryphgen keygen`); with authorized_keys_file, every
                                      `bind` endpoint is encrypted and authenticated.
                                      NULL: no encryption (see insecure). docs/security.md */
    const char *authorized_keys_file; /**< lines "ROLE Z85PUBKEY [comment]" (ROLE: worker,
                                      submitter or admin): the only peers admitted; required
                                      with curve_key_file, ignored without it */
    int insecure;                /**< 1: allow `bind` endpoints without keys, loopback only
                                      (tcp://127.0.0.1, ipc://); 0 (default): a tcp:// or
                                      ipc:// bind without keys is GG_EINVAL. Without keys an
                                      endpoint that is not loopback is GG_EINVAL even with 1 */
    /* version 3 */
    const char *const *webhooks; /**< NULL-terminated list of http:// or https:// URLs (at
                                      most 16) that get alerts as JSON POSTs: task.failed,
                                      budget.exhausted, node.lost, node.quarantined,
                                      queue.stalled, queue.resumed (docs/alerts.md). Sent by a
                                      thread of their own, retried with backoff, dropped and
                                      counted when a receiver stays down. NULL: none.
                                      Copied by gg_orchestrator_new() */
    double stall_alert_s;        /**< queue.stalled when tasks wait and nothing was dispatched
                                      or ended for this many seconds; 0: 300; < 0: never */
    const char *front_door;      /**< an endpoint (tcp://127.0.0.1:5555) where a plain
                                      ZeroMQ REQ client sends {"code": ..., "query": ...} and
                                      gets one JSON reply (docs/front_door.md); the same key
                                      rules as `bind`. NULL: none */
    double front_door_timeout_s; /**< a front-door request's code gets this long before the
                                      reply says it timed out; 0: 300 */
    gg_transport_t *custom_transport; /**< a host's transport (gg_transport_new_custom()),
                                      borrowed: it must outlive the orchestrator. NULL: the
                                      built-in ZeroMQ one. With it, bind is one endpoint name
                                      of that transport's (NULL: a name of the library's,
                                      for the local workers only), and curve_key_file and
                                      insecure do not apply (GG_EINVAL with a key file):
                                      the transport authenticates or not */
    /* version 4 */
    long long max_tokens;        /**< the run's token budget: once the attempts of this
                                      run have used this many generator tokens, unfinished
                                      tasks end (budget.exhausted) and generations in
                                      progress are interrupted; 0 (default):
                                      $GRYPHGEN_MAX_TOKENS, else no limit; negative: no
                                      limit, whatever the environment says */
    const char *ha_role;         /**< "primary" or "backup": one of a standby pair (zguide's
                                      Binary Star, docs/ha.md): the active one streams its
                                      committed state to the other, which takes over when
                                      the active one falls silent and workers or clients
                                      turn to it. Needs ha_peer, a bind endpoint and
                                      local_workers = 0. NULL (default): a lone server */
    const char *ha_peer;         /**< the other server's bind endpoint (tcp://host:port);
                                      with CURVE both servers use the same key pair */
    unsigned ha_timeout_ms;      /**< the peer is dead after this long without a heartbeat
                                      (heartbeats every 100 ms); 400 to 600000; 0: 500 */
} gg_orchestrator_options;

/** Static initialiser with defaults. */
#define GG_ORCHESTRATOR_OPTIONS_INIT \
    { GG_ORCHESTRATOR_OPTIONS_VERSION, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
      GG_LOG_WARN, NULL, NULL, NULL, NULL, 1, 0, NULL, NULL, 0, NULL, 0, NULL, 0, NULL, 0, \
      NULL, NULL, 0 }

/**
 * Fills *opts with defaults for the given version (1 to GG_ORCHESTRATOR_OPTIONS_VERSION: an
 * older version's struct is shorter and only its fields are written); GG_EVERSION for an
 * unknown version.
 */
GG_API int gg_orchestrator_options_init(gg_orchestrator_options *opts, unsigned version);

/**
 * Creates an orchestrator, opens (or creates and migrates) its database, starts its threads
 * and resumes every unfinished task found in the database. opts may be NULL for defaults.
 * On failure *out is NULL and the code says why (GG_ESTORE, GG_EVERSION, GG_EINVAL, ...).
 */
GG_API int gg_orchestrator_new(gg_orchestrator_t **out, const gg_orchestrator_options *opts);

/**
 * Stops the threads (running jobs are interrupted; their tasks stay unfinished in the
 * database and resume on the next gg_orchestrator_new() with the same database), closes the
 * database and sets *po to NULL. Accepts NULL and a pointer to NULL.
 */
GG_API void gg_orchestrator_destroy(gg_orchestrator_t **po);

/**
 * Submits one task (JSON text, docs/tasks.md). The task is durable in the database before
 * this returns. Submitting a task_id that exists with the same content is not an error: it
 * returns the existing task (so a re-run of a task set resumes it); with other content it is
 * GG_EEXIST. A task without task_id gets one. On success *out_task_id, when not NULL,
 * receives the task's id (free with gg_free()). GG_EINVAL and GG_ETOOBIG name the field.
 * A workspace task (docs/tasks.md, "Workspace tasks") is resolved here, on the caller's
 * machine: its ref pinned to a commit, a local repository or directory packed into the
 * task; a repository, ref or directory that is not there is GG_ENOTFOUND naming the field.
 */
GG_API int gg_orchestrator_submit(gg_orchestrator_t *o, const char *task_json,
                                  char **out_task_id);

/**
 * Waits until the task has ended (passed, failed, error or cancelled) and stores its result
 * JSON in *out_result_json (free with gg_free()). timeout_ms < 0 waits without limit.
 * GG_ETIMEDOUT when the time ran out first, GG_ENOTFOUND for an unknown task.
 */
GG_API int gg_orchestrator_wait(gg_orchestrator_t *o, const char *task_id, int timeout_ms,
                                char **out_result_json);

/**
 * Like gg_orchestrator_wait() without waiting: GG_EAGAIN while the task has not ended.
 * Results of tasks finished by an earlier run on the same database are found too.
 */
GG_API int gg_orchestrator_result(gg_orchestrator_t *o, const char *task_id,
                                  char **out_result_json);

/**
 * Cancels a task: a queued task ends at once, a running one when its attempt returns (its
 * outcome is then discarded). Its status becomes "cancelled". Cancelling an ended task is
 * GG_ESTATE; an unknown one GG_ENOTFOUND.
 */
GG_API int gg_orchestrator_cancel(gg_orchestrator_t *o, const char *task_id);

/**
 * Waits until no task is queued or running. timeout_ms < 0 waits without limit; GG_ETIMEDOUT
 * when the time ran out first. GG_ESTORE when the orchestrator stopped because its database
 * could not be written (full or read-only filesystem, I/O error, the file deleted or moved
 * while open, a lock held by another process for minutes), also when no task is left:
 * gg_error_last() says why (`gryphgen serve` asks with timeout_ms 0 to notice it); what was committed is kept, and a new
 * orchestrator on the same database resumes the unfinished tasks. gg_orchestrator_wait()
 * (for a task not ended) and gg_orchestrator_submit() fail the same way from then on.
 */
GG_API int gg_orchestrator_drain(gg_orchestrator_t *o, int timeout_ms);

/**
 * Counts tasks by status: {"queued": n, "running": n, "passed": n, "failed": n, "error": n,
 * "cancelled": n, "attempts": n}, and the grid's counters: "nodes" (workers connected),
 * "dropped" (malformed, oversized, unknown or forbidden messages), "stale" (results of stale
 * leases ignored), "busy" (busy answers), "requeued" (jobs of dead workers) and "foreign"
 * (results dropped because their sender does not hold the lease: another worker, another key,
 * or a peer that never said hello), and "webhooks": {"alerts", "sent", "retried", "dropped",
 * "queued"} (deliveries of alerts to the options' webhooks, all 0 without; docs/alerts.md).
 * *out_json is freed with gg_free().
 */
GG_API int gg_orchestrator_stats(gg_orchestrator_t *o, char **out_json);

/**
 * The orchestrator's metrics in Prometheus' text exposition format (version 0.0.4), as
 * `gryphgen serve --http` answers GET /metrics: tasks by status (counted in the database, so
 * they survive a restart), queue depth, attempts by outcome, attempt stage durations,
 * nodes, slots, tokens, model requests, dropped messages, database write latency; every
 * metric is listed in docs/http.md. *out_text is freed with gg_free(). Since 1.2.
 */
GG_API int gg_orchestrator_metrics(gg_orchestrator_t *o, char **out_text);

/**
 * A client connected to the orchestrator in this process (no sockets, no keys): it submits,
 * waits, asks for status, cancels and watches through the scheduler exactly as a remote
 * gg_client_t does, under the submitter name given (1 to 128 bytes). Destroy it with
 * gg_client_destroy() before the orchestrator. GG_ESTATE while the orchestrator stops.
 * Since 1.2.
 */
GG_API int gg_orchestrator_connect(gg_orchestrator_t *o, const char *name, gg_client_t **out);

/**
 * One page of the task list, oldest first (with "newest": true, newest first), read from the
 * database: query_json (NULL: {}) may hold "status" (queued, running, passed, failed, error,
 * cancelled), "submitter", "task_id", "after" (the "next" of the previous page) and "limit"
 * (1 to 1000, default 100).
 * *out_json receives {"tasks": [{"seq", "task_id", "status", "attempts", "priority",
 * "reason", "submitter", "created_at", "finished_at"}...], "next": n or null} (gg_free()).
 * GG_EINVAL names a bad field. Since 1.2.
 */
GG_API int gg_orchestrator_tasks(gg_orchestrator_t *o, const char *query_json,
                                 char **out_json);

#ifdef __cplusplus
}
#endif
#endif
