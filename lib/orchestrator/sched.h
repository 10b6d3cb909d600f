/*
 * sched.h - the scheduler thread's state, shared by the files that make it up (internal).
 *
 * The scheduler (scheduler.c and the sched_*.c files) is one thread and one state: the
 * structs below are its whole memory, touched by no other thread. The state is one struct
 * because every concern reads it (a result touches the task, its node, the batch and the
 * events at once); the code is cut by concern, and only the functions one file calls in
 * another are declared here, each with what it does. Everything else stays static.
 */
#ifndef GGI_SCHED_H
#define GGI_SCHED_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../net/keys.h"
#include "../net/transport.h"
#include "event_filter.h"
#include "learner.h"
#include "orq.h"
#include "protocol.h"
#include "writer.h"

#define BURST 256            /* messages handled per commit at most */
#define POLL_MS 100          /* how often an idle scheduler checks for shutdown */
#define WRITER_POLL_MS 1     /* how often a scheduler with no messages looks at the writer */
#define DISPATCH_EVERY_MS 10 /* dispatch runs at least this often with nothing new */
#define OVERDUE_EVERY_MS 100 /* how often remote jobs are checked against their task's wall budget */
#define MAX_CLIENTS 4096     /* client records kept (least recently seen evicted) */
#define MAX_WAITERS 65536
#define MAX_WATCHERS 64
#define MAX_SUBMITTERS 256   /* submitters served per claim round */
#define MAX_SCORES 8         /* languages scored per node */
#define MAX_NODES 4096
#define EMA 0.2              /* weight of the newest sample in the moving averages */
#define JOB_BATCH_BYTES (4u << 20)
#define LEASE_BYTES 16       /* a lease id: 128 random bits, sent as 32 hex digits */
#define LEASE_POOL 4096      /* random bytes fetched at once (256 leases per system call) */
#define FOREIGN_WARN_MS 1000 /* at most one warning a second about foreign results */
#define TRIM_PEERS 64        /* peers gone since the last trim that make the next one */

typedef struct identity {
    unsigned char id[GG_TRANSPORT_MAX_IDENTITY];
    size_t len;
} identity;

/* A node's learned score for one language (moving averages; saved with the batches). */
typedef struct score {
    char lang[16];
    double ok, lat_ms;
    long long n;
    int dirty;
} score;

/* A connected worker node (sched_nodes.c); dispatch reads it, results feed its scores. */
typedef struct node {
    struct node *next;
    identity id;
    char name[GGP_MAX_NAME + 1];
    char key[GGI_KEY_Z85_LEN + 1]; /* the CURVE key it said hello with, or "" */
    char instance[33];  /* the worker's random instance id from its hello, or "" */
    int capacity, busy; /* capacity = slots + queue (status shows all three) */
    int slots, queue;
    cJSON *caps;
    cJSON *langs; /* the languages of caps.runtimes (runtime_languages) */
    const cJSON *deps; /* caps.deps: the libraries it has (in caps), or NULL */
    int any, noop, gpus;
    int aborts;               /* caps.abort: it stops a job on an abort message (1.3) */
    double memory_mb;
    double last_rx, last_tx;
    double joined_ms;         /* when it said hello (monotonic ms) */
    int delivered;            /* it returned a result under a lease it held */
    double quarantined_until; /* monotonic ms */
    int infra_streak;
    score scores[MAX_SCORES];
    int n_scores;
    ggi_buf batch;            /* the jobs message being gathered (text), or empty */
    int64_t *batch_seqs;      /* the tasks in it, batch_count of them */
    int batch_count;
    /* Leases its hello said it holds that are not this hub's jobs on it (given out by a
     * hub before a failover, or lost to a requeue): they take room in its queue until
     * their results come, so they count in busy. Sorted, n_carried of them. */
    char (*carried)[33];
    int n_carried;
    /* Its welcome, when the transport refused to send it (a full queue): sent again before
     * anything else for it, and no job goes to it meanwhile. NULL once sent. */
    char *welcome;
    size_t welcome_len;
} node;

/* A connected client (sched_clients.c): submitter, waiter or watcher. */
typedef struct client {
    struct client *next;
    identity id;
    char name[GGP_MAX_NAME + 1];
    double last_seen;
    double last_probe;        /* when the hub last checked that it is still connected */
    int watching;
    uint32_t watch_mask;      /* the event types it watches (event_filter.h) */
} client;

typedef struct submitter {
    char *name;
    unsigned long served;
} submitter;

typedef struct code_seen {
    char hash[17];
    int n;
} code_seen;

/* A claimed task held in memory (sched_tasks.c), with what the Task Monitor keeps of it. */
typedef struct active {
    struct active *next, *prev; /* the active list (s->tasks) */
    struct active *hnext;       /* the next in its bucket of s->by_seq */
    int64_t seq;
    char *task_id;
    char *spec_text;        /* the normalised task JSON as stored: jobs carry it verbatim */
    cJSON *needs;           /* ggi_task_needs() of the task, or NULL: it sets none */
    int priority;
    int max_attempts;
    double wall_s;
    double started_wall;
    int attempts;           /* recorded so far */
    int inflight;           /* a worker holds attempt attempts+1 on lease */
    char lease[2 * LEASE_BYTES + 1]; /* the current lease (hex), or "" */
    node *on;               /* the node holding the lease: only its results count */
    double sent_ms;
    int cancelled;
    int gen_interrupted;    /* its generation was asked to stop for the run's budget */
    int infra_failures;
    int lost;               /* workers that died holding it */
    double not_before_ms;   /* backoff after an infrastructure fault */
    cJSON *feedback;        /* the last GGI_FEEDBACK_ATTEMPTS attempts, oldest first */
    int sub;                /* index into submitters */
    char *language;
    double memory_mb;
    int gpus;
    const cJSON *labels;    /* borrowed from needs: the worker labels it requires */
    const char *isolation;  /* borrowed from needs: the weakest level it may run at, or NULL */
    const cJSON *requires;  /* borrowed from needs: the libraries a worker must have, or NULL */
    long long max_tokens;   /* budget.tokens; 0: no limit */
    long long tokens;       /* used by its recorded attempts (all runs) */
    code_seen *codes;       /* hashes of the code of its attempts, n_codes of them */
    int n_codes, cap_codes;
    char *last_sig;         /* failure signature of the last attempt, or NULL */
    int last_sig_n;
    char *last_reason;      /* reason of the last attempt, or NULL */
    int best_n, best_score; /* earliest attempt with the best outcome */
    cJSON *best_fb;         /* its feedback entry */
    int stuck;              /* stuck loops detected */
    cJSON *strategy;        /* for the next job, or NULL */
    cJSON *demote;          /* context ids that led its failed attempts (the next job's
                             * retrieval demotes them: retries as experiments), or NULL */
    char avoid[GGP_MAX_NAME + 1]; /* node of the last infrastructure fault */
    unsigned match_gen;     /* nodes_gen when it was last found unmatchable */
    int announced;          /* the attempt whose first dispatch was announced (task.started,
                               attempt.started); a job sent again is job.dispatched only */
} active;

typedef struct outmsg {
    identity to;
    char *text;
    size_t len;
} outmsg;

struct ended {
    char *task_id;
    int learns;             /* it ran its tests: the learner hears of it */
};

/* What waits for a batch's commit: replies, events for the host, the tasks it ended. */
typedef struct pending {
    outmsg *out;
    int n_out, cap_out;
    cJSON *events;          /* printed events for the host's callback */
    struct ended *ended;    /* the tasks it ended (for waiters and the learner) */
    int n_ended, cap_ended;
    int finished;           /* how many */
} pending;

typedef struct waiter {
    identity to;
    long long rid;
    char *task_id;
} waiter;

/* The scheduler's whole state: on ggi_scheduler_main's stack, touched by no other thread. */
typedef struct sched {
    gg_orchestrator_t *o;
    ggi_store *db;
    ggi_grid_db *g;
    active *tasks;
    int n_active;
    active **by_seq;        /* the active tasks by seq: n_buckets (a power of 2) chains */
    unsigned n_buckets;
    int limit;
    node *nodes;
    int n_nodes;
    unsigned nodes_gen;
    client *clients;
    int n_clients;
    waiter *waiters;
    int n_waiters, cap_waiters;
    submitter *subs;
    int n_subs;
    ggi_writer *writer;     /* writes the batches (writer.c) */
    ggi_batch batch[3];     /* the one being gathered (cur), the one being written and the
                             * one written before, completed while the writer works */
    pending pend[3];        /* what waits for each one's commit */
    int cur;
    pending later;          /* ended tasks to read back once the writer is idle */
    ggi_claimed *later_rows; /* claimed tasks to resume (their attempts are read) likewise */
    int n_later_rows, cap_later_rows;
    int may_have_queued;
    ggi_learner *learner;   /* learns from them on its own thread (learner.c) */
    unsigned char rnd[LEASE_POOL]; /* random bytes for lease ids, used from the end */
    size_t rnd_left;
    double foreign_warn_at;  /* when the last warning about foreign results was logged */
    unsigned long foreign_quiet; /* foreign results not warned about since */
    int backoff;            /* some task may be waiting out a backoff */
    int dispatch_due;       /* a task or a slot became free since the last dispatch */
    active **run;           /* dispatch's arrays, kept: runnable tasks, per submitter */
    int *run_head, *run_end;
    int cap_run, cap_subs;
    double dispatch_at;     /* when dispatch looks again anyway (backoffs, quarantines) */
    double overdue_at;      /* when ggi_sched_end_overdue looks again */
    unsigned claim_rr;      /* rotates the first submitter served by claim */
    unsigned long submit_gen; /* counts submissions and wake-ups (a claim's snapshot) */
    long long max_tokens;   /* the run's budget (GRYPHGEN_MAX_TOKENS); 0: no limit */
    long long tokens;       /* used by the attempts this run recorded */
    int n_watching;         /* clients watching events */
    uint32_t watch_union;   /* the event types any of them watches (event_filter.h) */
    struct ggi_sched_summary *summary; /* grid.summary's tally while a watcher asks for it */
    double probe_at;        /* when liveness next checks that the clients are connected */
    int peers_gone;         /* clients and nodes forgotten since the last trim */
    double gone_at;         /* when the last of them went */
    ggi_buf ev_buf;         /* print buffer, reused: an event */
    int dead;               /* the database could not be written: stop (ggi_orq_fail) */
    int txn_open;           /* ggi_sched_txn began a transaction not yet ended by this
                             * thread: when SQLite no longer has it, its writes are lost */
    char txn_why[256];      /* the error that lost it, when known */
} sched;

/* What resuming a task gathers from its stored attempts (ggi_sched_resume_attempt). */
typedef struct resume_ctx {
    sched *s;
    active *a;
    int last_passed;
    char *last_reason;
} resume_ctx;

/* The connection identity of a peer, as the transport gives it. */
static inline void set_identity(identity *d, const void *id, size_t len)
{
    memcpy(d->id, id, len);
    d->len = len;
}

static inline int same_identity(const identity *a, const void *id, size_t len)
{
    return a->len == len && memcmp(a->id, id, len) == 0;
}

/* ---------------------------------------------------------------- sched_commit.c */

/* Opens (or continues) this thread's own transaction, with the writer idle: for the rare
 * writes that need an answer now (submissions, cancels, hellos). */
int ggi_sched_txn(sched *s);
/* After a write in the transaction of ggi_sched_txn failed: when SQLite rolled the
 * transaction back with it, keeps the write's error (gg_error_last) to say why later. */
void ggi_sched_txn_note(sched *s);

/* Queues a write in the batch being gathered, taking op's strings; copied says whether every
 * string it needs was copied (a copy can fail). GG_OK, or GG_ENOMEM logged with what. */
int ggi_sched_add_op(sched *s, ggi_op *op, int copied, const char *what);

/* Queues a message for after the commit of the batch being gathered; takes text. */
void ggi_sched_queue_out(sched *s, const identity *to, char *text, size_t len);

/* Queues a message for after the commit of the batch being gathered; takes m (NULL: nothing). */
void ggi_sched_queue_msg(sched *s, const identity *to, cJSON *m);

/* A new reply to request rid, ok or not (NULL when out of memory). */
cJSON *ggi_sched_reply_new(long long rid, int ok);

/* Queues an error reply (code, message: gg_strerror(code) when NULL) to request rid. */
void ggi_sched_reply_error(sched *s, const identity *to, long long rid, int code,
                           const char *message);

/* Sends now (used for heartbeats and jobs, which need no commit first). */
int ggi_sched_send_now(sched *s, const identity *to, const char *text, size_t len);

/* Sends a queued message now and frees its text; a watcher that cannot be reached stops
 * watching. */
void ggi_sched_send_out(sched *s, outmsg *m);

/* Adds an ended task (task_id taken) to what waits for a commit: its waiters and the learner
 * hear of it after. */
int ggi_sched_push_ended(pending *pd, char *task_id, int learns);

/* Waits until the writer is idle and completes the batch it wrote; afterwards this thread
 * may use the connection itself until the next handoff. */
void ggi_sched_sync_point(sched *s);

/* Ends the gathering of the current batch (the writer is idle, and done holds the batch it
 * wrote last, or NULL): what this thread wrote itself is committed, then the batch goes to
 * the writer with its claim, and done is completed while the writer works. Returns 1 when
 * the writer got a batch (it is busy now), 0 when there was nothing to write. */
int ggi_sched_handoff(sched *s, ggi_batch *done);

/* ---------------------------------------------------------------- sched_events.c */

/* Recounts the watching clients into s->n_watching and keeps the union of their filters in
 * s->watch_union (what events are built for). */
void ggi_sched_count_watchers(sched *s);

/* Whether anyone hears events as they happen (the host's callback or a watching client). */
int ggi_sched_events_heard(const sched *s);

/* Whether anyone hears an event of this type: the host's callback hears all, a watcher those
 * its filter names. Checked before an event is built (a cheap test, no JSON). */
int ggi_sched_event_wanted(const sched *s, const char *type);

/* Records an event (in the open transaction) and queues it for the host and watchers. */
void ggi_sched_emit(sched *s, int64_t seq, cJSON *ev);

/* A new event of type for task_id (NULL: none), with its timestamp; NULL when out of memory. */
cJSON *ggi_sched_event_new(const char *type, const char *task_id);

/* A client asks to hear events (up to MAX_WATCHERS). */
void ggi_sched_on_watch(sched *s, const identity *to, client *c, const cJSON *b);

/* ---------------------------------------------------------------- sched_demand.c */

/* A scaler's question (a `status` request's "demand": the capabilities its workers would
 * have): adds to status "demand" with the unfinished tasks such a worker could run (the
 * queue read up to a limit). GG_EINVAL naming what is wrong with the question. Needs the
 * writer idle (on_status's sync point). */
int ggi_sched_demand(sched *s, const cJSON *question, cJSON *status);

/* ---------------------------------------------------------------- sched_summary.c */

/* Starts (or stops) keeping grid.summary's tally as some watcher asks for it (or none). */
void ggi_sched_summary_update(sched *s);

/* Frees the tally (no watcher asks for it, or the scheduler stops). */
void ggi_sched_summary_free(sched *s);

/* A task started (status "running") or ended (its end status), for the next grid.summary:
 * a count and a copy of its id into a bounded ring; nothing without a summary watcher. */
void ggi_sched_summary_note(sched *s, const char *task_id, const char *status, int attempts,
                            const char *reason);

/* Sends grid.summary to its watchers when something changed and a second has passed since
 * the last one (called every round of the loop). */
void ggi_sched_summary_tick(sched *s);

/* ---------------------------------------------------------------- sched_tasks.c */

/* Ends a task: claimed (running; started_at its start) or not (a queued task cancelled): its
 * end goes into the batch being gathered, with the task.finished event; it does not touch
 * the active list (ggi_sched_end_active does). attempts: the task's attempt count to store
 * with its end, or -1 to leave it. The result is not stored as text: the task's columns and
 * its attempts hold it, and reading the task builds it (ggi_store_task_get). It is read back
 * after the batch's commit, only for the clients waiting for the task and for the learner
 * (complete_batch). */
void ggi_sched_finish_task(sched *s, int64_t seq, const char *task_id, const char *status,
                           const char *cause, const char *reason, int attempts,
                           double started_at, int claimed);

/* Takes a out of the active set and frees it. */
void ggi_sched_remove_active(sched *s, active *a);

/* Ends an active task (ggi_sched_finish_task) and removes it from the active set (a is freed).
 * cause: why (GGI_END_* of store.h, a static string), stored, in task.finished and status. */
void ggi_sched_end_active(sched *s, active *a, const char *status, const char *cause,
                          const char *reason);

/* Makes a claimed task active; what it keeps of the row (id, spec) is copied, in one block
 * with the task. */
void ggi_sched_add_active(sched *s, const ggi_task_row *row, const char *submitter_name);

/* The active task with seq, or NULL. */
active *ggi_sched_find_active(sched *s, int64_t seq);

/* ---------------------------------------------------------------- sched_monitor.c */

/* Generator tokens an attempt used, from its record's usage (total_tokens, else prompt +
 * completion); 0 when the generator reported none. */
long long ggi_sched_record_tokens(const cJSON *rec);

/* Whether a failed attempt repeats an earlier one: the same code as any earlier attempt of
 * the task, or the same failure signature as the previous attempt. why gets which. */
int ggi_sched_repeats(const active *a, const cJSON *rec, char *why, size_t cap);

/* Takes a recorded attempt into the task's state: tokens, code seen, last failure, best
 * attempt and feedback. When it was stuck, the feedback rolls back to the best attempt's and
 * the next job gets a changed strategy; otherwise the next job has none. live: recorded just
 * now (events are emitted), not replayed on resume. */
void ggi_sched_monitor(sched *s, active *a, int n, const cJSON *rec, int stuck, const char *why,
                       int live);

/* Whether the run's token budget (GRYPHGEN_MAX_TOKENS) is spent. */
int ggi_sched_run_spent(const sched *s);

/* Ends a task that has no attempt in flight because the run's token budget is spent. */
void ggi_sched_end_for_run_budget(sched *s, active *a);

/* Once the run's budget is spent, every task without an attempt in flight ends. */
void ggi_sched_enforce_run_budget(sched *s);

/* ggi_store_attempts_each callback (user: a resume_ctx): replays a stored attempt through the
 * Task Monitor on resume. */
int ggi_sched_resume_attempt(void *user, int n, int passed, const char *record_json);

/* After an attempt was recorded (or on resume): end the task or leave it for the next one.
 * Returns 1 when the task ended (a is freed). */
int ggi_sched_decide(sched *s, active *a, int last_passed, const char *last_reason);

/* ---------------------------------------------------------------- sched_results.c */

/* Counts results from a peer that does not hold their lease (or never said hello as a
 * worker) and warns about them, at most once a second with how many were left unsaid. */
void ggi_sched_foreign_results(sched *s, int count, const char *who, const char *why);

/* One result from node from (which authenticated with from_key, "" without CURVE): attempt
 * n of task seq under lease_text, its record rec (and, when it came as the worker wrote it,
 * that text: rec_text, rec_len bytes). It counts only from the node the lease was given to:
 * the same connection, that said hello with the same key. */
void ggi_sched_on_result(sched *s, node *from, const char *from_key, int64_t seq, int n,
                         const char *lease_text, cJSON *rec, const char *rec_text,
                         size_t rec_len);

/* ---------------------------------------------------------------- sched_nodes.c */

/* The node connected with identity id, or NULL. */
node *ggi_sched_find_node(sched *s, const void *id, size_t len);

/* Queues the node scores that changed since the last batch as writes in the batch being
 * gathered. */
void ggi_sched_save_scores(sched *s);

/* The score of node n for lang (made, trusted and fast, when n has none yet; the scores
 * earlier runs stored were read at its hello). Never touches the database. */
score *ggi_sched_node_score(sched *s, node *n, const char *lang);

/* Whether n can ever run a: requirements only, not load. */
int ggi_sched_node_matches(const node *n, const active *a);

/* The needs of a as words, for an error saying no worker can run it (malloc'd, or NULL). */
char *ggi_sched_needs_text(const active *a);

/* Frees a node record (not linked anywhere any more). */
void ggi_sched_node_free(node *n);
/* A result under lease from node n, which the hub does not take: when the lease is one n
 * carried in from before its hello, its room is free again. */
void ggi_sched_release_carried(sched *s, node *n, const char *lease);
/* Sends text (len bytes; none when NULL) to node n, after its pending welcome: while the
 * welcome cannot go, neither does text (the transport's refusal is returned). */
int ggi_sched_node_send(sched *s, node *n, const char *text, size_t len);

/* A node is gone: its jobs go back to the queue, to be sent elsewhere. */
void ggi_sched_drop_node(sched *s, node *n, const char *why);

/* Sizes the active set from the nodes' capacity; claims may find tasks again. */
void ggi_sched_recompute_limit(sched *s);

/* A worker said hello (version accepted, writer idle): its node is made or renewed and
 * welcomed. */
void ggi_sched_on_worker_hello(sched *s, const gg_transport_msg *msg, const cJSON *b);

/* Feeds a node's score for lang with an attempt's outcome (ok: no infrastructure fault) and
 * latency; a streak of faults quarantines it. */
void ggi_sched_learn(sched *s, node *n, const char *lang, int ok, double latency_ms);

/* Heartbeats out, and the dead dropped. */
void ggi_sched_liveness(sched *s);

/* ---------------------------------------------------------------- sched_dispatch.c */

/* Whether a result's lease text is the task's current lease, compared in time independent
 * of where they differ. */
int ggi_sched_lease_is(const char *current, const char *text);

/* Sends runnable tasks to nodes with free slots. It reads and sorts the whole active set,
 * so it runs when a task or a slot became free (dispatch_due), else every
 * DISPATCH_EVERY_MS for what time frees (backoffs, quarantines). */
void ggi_sched_dispatch(sched *s);

/* Sends the jobs gathered for each node (after the commit when events announce them). */
void ggi_sched_send_batches(sched *s);

/* Whether a's job is out on a worker node other than the embedded one (remote) that stops
 * jobs on an abort (caps.abort): its end does not wait for the attempt to return but aborts
 * the job (ggi_sched_abort_job). The embedded worker's jobs are stopped through the
 * orchestrator's own generator instead, and an older worker's task ends when its attempt
 * returns, as before (its slot stays counted busy meanwhile). */
int ggi_sched_job_remote(const active *a);

/* When a's job is out on a remote node: takes it back (the node's slot is free again, the
 * lease forgotten, so a result sent anyway is stale and counts no attempt) and sends the
 * node an abort for the lease with reason (docs/protocol.md). Returns 1 then, else 0. */
int ggi_sched_abort_job(sched *s, active *a, const char *reason);

/* Ends the tasks whose wall budget (budget.wall_s) passed while their job is out on a remote
 * node, aborting the job; looks every OVERDUE_EVERY_MS. (Others end when their attempt
 * returns, ggi_sched_decide.) */
void ggi_sched_end_overdue(sched *s);

/* ---------------------------------------------------------------- sched_clients.c */

/* The client connected with identity id, or NULL. */
client *ggi_sched_find_client(sched *s, const void *id, size_t len);

/* A client said hello (version accepted): it is remembered (the least recently seen evicted)
 * and welcomed. */
void ggi_sched_on_client_hello(sched *s, const gg_transport_msg *msg, const cJSON *b);

/* A client submits tasks: each is checked and stored (writer idle), and the reply lists ids and
 * errors. */
void ggi_sched_on_submit(sched *s, const identity *to, client *c, const cJSON *b);

/* A client waits for a task: answered now when it has ended, else when its end is durable. */
void ggi_sched_on_wait(sched *s, const identity *to, const cJSON *b);

/* A client asks for one task's status, or the whole orchestrator's with its nodes. */
void ggi_sched_on_status(sched *s, const identity *to, const cJSON *b);

/* A client cancels a task: ended now unless an attempt is in flight (then when it returns). */
void ggi_sched_on_cancel(sched *s, const identity *to, const cJSON *b);

/* Clients send no heartbeats, and the socket does not say when a peer disconnects: each
 * client known for a heartbeat interval is sent one, and one the hub cannot route to (its
 * connection is gone: ROUTER_MANDATORY) is forgotten. Without this a client's record (and
 * its watch) stayed until MAX_CLIENTS newer ones evicted it. */
void ggi_sched_probe_clients(sched *s, double now);

#endif
