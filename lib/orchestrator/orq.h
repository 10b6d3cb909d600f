/*
 * orq.h - the orchestrator's internals shared by its files: orchestrator.c (the public
 * API, run on host threads), scheduler.c and the sched_*.c files (the scheduler thread: the
 * single writer of task state, the grid's hub; sched.h), attempt.c (one attempt of a task,
 * run on a worker's slot thread), worker.c (gg_worker_t, also the embedded workers),
 * client.c (gg_client_t), protocol*.c (ggp/1) and grid_store.c (the grid's tables). Internal.
 *
 * Data flows one way: submit writes a queued task to the database and wakes the scheduler;
 * the scheduler claims tasks, sends jobs to idle workers over the transport, records each
 * attempt's outcome in one transaction, decides the next step, and finally writes the
 * result; wait/result read it back from the database.
 */
#ifndef GGI_ORQ_H
#define GGI_ORQ_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "gryphgen/client.h"
#include "gryphgen/orchestrator.h"
#include "gryphgen/worker.h"
#include "../core/ggi.h"
#include "../core/task.h"
#include "../execution/runtimes.h"
#include "../net/transport.h"
#include "../store/store.h"
#include "metrics.h"

/* Infrastructure faults (executor, generator) are retried this often per task, with
 * exponential backoff and jitter, before the task ends with status "error". */
#define GGI_INFRA_RETRIES 3
#define GGI_INFRA_BACKOFF_MS 100.0
/* Attempts whose feedback travels with the next job. */
#define GGI_FEEDBACK_ATTEMPTS 3
/* Bytes of stderr/stdout carried in feedback. */
#define GGI_FEEDBACK_TAIL 2000
/* Heartbeat interval both ways; a peer silent for 3 intervals is dead. */
#define GGI_HEARTBEAT_MS 1000
/* A node whose jobs fail with infrastructure faults this often in a row rests this long. */
#define GGI_QUARANTINE_STREAK 3
#define GGI_QUARANTINE_MS 30000.0
/* A task whose worker died this often ends with status "error". */
#define GGI_MAX_LOST 5
/* Task Monitor: the generator temperature asked for after the first stuck loop of a task,
 * raised by the step after each further one, up to the maximum. */
#define GGI_STUCK_TEMPERATURE 0.7
#define GGI_STUCK_TEMPERATURE_STEP 0.3
#define GGI_STUCK_TEMPERATURE_MAX 1.5

struct gg_orchestrator {
    ggi_logger log;
    gg_event_fn event_fn;        /* the host's, or observe.c's tee in front of it */
    void *event_user;
    gg_event_fn host_event_fn;   /* the host's when the tee is in front (observe.c) */
    void *host_event_user;
    struct ggi_webhook *webhook;       /* alerts (webhook.h), or NULL */
    struct ggi_front_door *front_door; /* the REQ front door (front_door.h), or NULL */
    unsigned max_attempts;
    unsigned n_workers;
    int local_workers;           /* 0: none (a serving orchestrator) */
    char *bind;                  /* extra endpoints (tcp://, ipc://), or NULL */
    unsigned max_queued;         /* unfinished tasks before busy; 0: no limit */
    long long max_tokens;        /* option max_tokens: 0 the environment's, < 0 no limit */
    int hb_ms;
    struct ggi_ha *ha;           /* one of a standby pair (ha.h), or NULL */
    atomic_llong queued;         /* unfinished tasks in the database, for the busy answer */
    atomic_llong ends_unheard;   /* ended tasks whose end is written but not yet told (their
                                  * events, waiters): drain waits for them too */
    atomic_ulong n_dropped;      /* malformed, oversized, unknown or forbidden messages */
    atomic_ulong n_stale;        /* results of stale leases */
    atomic_ulong n_foreign;      /* results from a peer that does not hold their lease */
    atomic_ulong n_busy;         /* busy answers */
    atomic_ulong n_requeued;     /* jobs requeued after their worker died */
    atomic_int n_nodes;          /* workers connected */
    ggi_metrics metrics;         /* Prometheus counters (metrics.c) */

    char *db_path;
    int db_is_temp;
    ggi_store *api_store;        /* host threads' connection, under api_mu */
    pthread_mutex_t api_mu;
    ggi_store *sched_store;      /* the scheduler thread's connection */

    ggi_transport transport;
    char endpoint[96];
    void *hub;                   /* scheduler's socket, used by the scheduler thread only */
    void *ctl_peer;              /* host threads' socket to the scheduler, under ctl_mu */
    pthread_mutex_t ctl_mu;
    atomic_int wake_pending;     /* a wake message is on its way */

    gg_generator_t *generator, *own_generator;
    gg_executor_t *executor, *own_executor;
    gg_retriever_t *retriever, *own_retriever;
    ggi_runtimes runtimes;

    pthread_t scheduler;
    int scheduler_started;
    struct gg_worker *local;     /* the embedded worker (slot threads), or NULL */
    pthread_t local_thread;
    int local_started;
    atomic_int stopping;

    atomic_int failed;           /* the database could not be written: the scheduler
                                  * stopped; failed_msg (written before) says why */
    char failed_msg[1024];
    pthread_mutex_t done_mu;     /* guards done_gen; done_cv signals task ends */
    pthread_cond_t done_cv;
    uint64_t done_gen;
};

/* ---- scheduler.c, sched_commit.c ---- */
/** Thread entry of the scheduler. */
void *ggi_scheduler_main(void *orq);
/** Wakes waiters after task ends (done_gen++ and broadcast). */
void ggi_orq_signal_done(struct gg_orchestrator *o);

/* ---- orchestrator.c ---- */
/** The scheduler stopped because the database could not be written (why: the error): from
 * now on submit, wait and drain fail with GG_ESTORE and a message saying so. The first
 * call counts; waiters are woken. */
void ggi_orq_fail(struct gg_orchestrator *o, int fault, const char *why);
/**
 * The task task_id ended (cancelled, or its budget spent) while an attempt of it may be
 * writing code: the orchestrator's own generator, which its local workers use, is asked to
 * cut that generation short (GG_GENERATOR_CAP_INTERRUPT). Remote workers' generators are not
 * reached. Scheduler thread; never blocks.
 */
void ggi_orq_interrupt_generation(struct gg_orchestrator *o, const char *task_id);
/** GG_ESTORE with that message once ggi_orq_fail was called, else GG_OK. */
int ggi_orq_failed(struct gg_orchestrator *o);

/* ---- observe.c ---- */
/** Starts what watches and serves the orchestrator from outside the grid protocol: the
 *  webhook alerts (before the scheduler starts, so they see every event) and the front
 *  door (after). */
int ggi_orq_observe_start_alerts(struct gg_orchestrator *o, const gg_orchestrator_options *op);
int ggi_orq_observe_start_front_door(struct gg_orchestrator *o,
                                     const gg_orchestrator_options *op);
/** Stops the front door (before the scheduler stops) or the webhook (after). */
void ggi_orq_observe_stop_front_door(struct gg_orchestrator *o);
void ggi_orq_observe_stop_alerts(struct gg_orchestrator *o);
/** Adds "webhooks": {alerts, sent, retried, dropped, queued} to a status object when the
 *  orchestrator has webhooks. */
void ggi_orq_observe_status(struct gg_orchestrator *o, cJSON *status);
/** The webhook's counters (all zero without webhooks): for /metrics. */
struct ggi_webhook_stats;
void ggi_orchestrator_webhook_stats(struct gg_orchestrator *o, struct ggi_webhook_stats *out);

/* ---- attempt.c ---- */

/** What an attempt needs besides the job: borrowed from the orchestrator. */
typedef struct ggi_attempt_env {
    gg_generator_t *generator;
    gg_executor_t *executor;
    gg_retriever_t *retriever;
    const ggi_runtimes *runtimes;
    const ggi_logger *log;
} ggi_attempt_env;

/**
 * Runs attempt n of a task: retrieve, generate, analyse, execute, evaluate. job is the job
 * message ({"task": {...}, "n": n, "feedback": [...], "strategy": {...} when the
 * Task Monitor changed it}); the strategy goes into the generator request and the record. *out_record receives the attempt's
 * record (see docs/tasks.md) or, when the attempt could not be made, an object with
 * "exhausted": true or "infra": {"stage", "status", "message", "retry"} instead of an outcome.
 * Returns 0, or GG_ENOMEM / GG_EINVAL for a malformed job.
 */
int ggi_attempt_run(const ggi_attempt_env *env, const cJSON *job, cJSON **out_record);

/* What attempt.c shares with attempt_workspace.c. */

/** Marks rec as an infrastructure fault of stage (retry: 1, 0, or < 0 to decide by status:
 * transient faults are retried). Returns 0. */
int ggi_attempt_infra(cJSON *rec, const char *stage, int status, const char *message,
                      int retry);
/** Adds the task's min_isolation and language to an executor request. */
int ggi_attempt_task_request(const ggi_task *t, cJSON *req);
/**
 * Ends an attempt's record: its "durations" (retrieve, generate, analyze and execute from the
 * given clock readings and spans, total until now) and, when it has a verdict ("passed"), the
 * verdict handed back to the generator that wrote the code (generation/hooks.h).
 */
void ggi_attempt_finish(const ggi_attempt_env *env, cJSON *rec, double t0, double t_gen,
                        double t_gen_end, double analyze_ms, double execute_ms);
/** Runs one executor request; *out the parsed result (cJSON_Delete it). */
int ggi_attempt_execute(const ggi_attempt_env *env, const cJSON *request, cJSON **out);
/**
 * Asks the generator: the request is {"task": task, "attempt", "feedback", "context",
 * "strategy" when the job has one, and "workspace" when not NULL}. Takes task and
 * workspace (freed here). Returns the response's code (malloc'd), or NULL after marking rec
 * (exhausted, or an infrastructure fault); usage and arm go into rec.
 */
char *ggi_attempt_generate(const ggi_attempt_env *env, const cJSON *job, cJSON *task,
                           cJSON *context, cJSON *workspace, cJSON *rec);

/* ---- attempt_workspace.c ---- */

/**
 * An attempt of a workspace task (docs/tasks.md, "Workspace tasks"): the base from the
 * machine's cache (prepared by setup_command once), context from an index of it, the answer
 * applied to a copy of it, test_command run in the copy, the copy removed. Fills rec (which
 * has n, generator and language) with the outcome or an infrastructure fault, durations,
 * "patch" and "base_commit". Returns 0 (faults are in the record).
 */
int ggi_attempt_workspace(const ggi_attempt_env *env, const cJSON *job, const ggi_task *t,
                          cJSON *rec);

/* ---- orchestrator.c ---- */

/**
 * Gives a parsed task its id (a deterministic one when it has none) and its normalised JSON
 * text in *out_spec (malloc'd) with that text's hash.
 */
int ggi_orq_prepare_task(ggi_task *t, char **out_spec, char out_hash[17]);

/**
 * Resolves a checked workspace (ggi_ws_resolve_ex with flags) in place unless it already
 * has "commit": where a task is first read with access to its sources
 * (gg_orchestrator_submit, the client's submit). Errors name the task (when task_id is not
 * NULL) and the field.
 */
int ggi_orq_resolve_workspace(cJSON **ws, const char *task_id, int flags);

/* ---- worker.c ---- */

/** The embedded worker: slots over the orchestrator's own transport, borrowing backends. */
int ggi_worker_new_embedded(struct gg_worker **out, ggi_transport *tp, const char *endpoint,
                            unsigned slots, gg_generator_t *gen, gg_executor_t *ex,
                            gg_retriever_t *ret, const ggi_runtimes *rt, const ggi_logger *log);

/* ---- client.c ---- */

/** A client on the orchestrator's own transport (tp, borrowed: the client must be destroyed
 * before it) connected to its in-process endpoint, named name (the submitter). */
int ggi_client_new_embedded(gg_client_t **out, ggi_transport *tp, const char *endpoint,
                            const char *name, int timeout_ms);

/* ---- grid_store.c: the grid's tables, on the scheduler's connection ---- */

typedef struct ggi_grid_db ggi_grid_db;

int ggi_grid_db_new(ggi_grid_db **out, ggi_store *s);
void ggi_grid_db_free(ggi_grid_db **pg);
/** Distinct submitters with queued tasks (at most max), malloc'd strings. */
int ggi_grid_submitters(ggi_grid_db *g, int max, char ***out, int *out_n);
/**
 * A claimed task and its submitter. All its strings live in one block (mem), allocated and
 * freed by the writer thread that claimed it (ggi_claimed_release): the scheduler only reads
 * them, and copies what it keeps, so no thread frees memory another allocated.
 */
typedef struct ggi_claimed {
    ggi_task_row row; /* task_id, spec (NULL when none is stored), status, language, needs */
    const char *submitter;
    char *mem;
    size_t size; /* of mem */
} ggi_claimed;

/** Frees a claimed task's block (on the thread that allocated it). */
void ggi_claimed_release(ggi_claimed *c);

/** Copies src into *dst with a block of its own (for the copying thread to release);
 * GG_ENOMEM. */
int ggi_claimed_copy(const ggi_claimed *src, ggi_claimed *dst);

/**
 * Claims up to limit queued tasks of one submitter (highest priority, then oldest), appending
 * them to *rows (*n of them, room for *cap, grown as needed).
 */
int ggi_grid_claim(ggi_grid_db *g, const char *submitter, int limit, double now,
                   ggi_claimed **rows, int *n, int *cap);
/** Unfinished (queued or running) tasks in the database. */
int ggi_grid_unfinished(ggi_grid_db *g, int64_t *out);

/* Calls fn with the stored language and needs (either may be NULL: an old row) of up to max
 * queued tasks, in the queue's key order, until fn returns nonzero; *scanned gets how many. */
int ggi_grid_each_queued(ggi_grid_db *g, int max,
                         int (*fn)(void *user, const char *language, const char *needs),
                         void *user, int *scanned);
/** Remembers a node (caps JSON) as seen now. */
int ggi_grid_node_seen(ggi_grid_db *g, const char *name, const char *caps, double now);
/** Sets a node's quarantine end (wall seconds). */
int ggi_grid_node_quarantine(ggi_grid_db *g, const char *name, double until);
/** Reads a node's quarantine end; 0 when none. */
int ggi_grid_node_quarantined_until(ggi_grid_db *g, const char *name, double *out);
/** Loads a score; GG_ENOTFOUND when the node never ran that language. */
int ggi_grid_score_load(ggi_grid_db *g, const char *node, const char *lang, double *ok,
                        double *lat_ms, long long *n);
/** Calls fn with each score stored for node (the max most recently updated), in one read. */
int ggi_grid_scores_load(ggi_grid_db *g, const char *node, int max,
                         void (*fn)(void *user, const char *lang, double ok, double lat_ms,
                                    long long n),
                         void *user);
/** Stores a node's score for a language (made or replaced). */
int ggi_grid_score_save(ggi_grid_db *g, const char *node, const char *lang, double ok,
                        double lat_ms, long long n, double now);

#endif
