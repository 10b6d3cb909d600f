/*
 * store.h - the SQLite database of libgryphgen: tasks, attempts (checkpoints) and events.
 *
 * One ggi_store is one connection and is used by one thread at a time (the caller
 * serialises). Several connections to one file are fine: WAL mode, a busy timeout and
 * BEGIN IMMEDIATE for write transactions. The schema version lives in PRAGMA user_version and
 * is migrated forwards on open; a database newer than this library is refused (GG_EVERSION).
 * Internal.
 */
#ifndef GGI_STORE_H
#define GGI_STORE_H

#include <stdint.h>

#include "../core/ggi.h"

typedef struct ggi_store ggi_store;

/** Task statuses as stored. */
#define GGI_ST_QUEUED "queued"
#define GGI_ST_RUNNING "running"
#define GGI_ST_PASSED "passed"
#define GGI_ST_FAILED "failed"
#define GGI_ST_ERROR "error"
#define GGI_ST_CANCELLED "cancelled"

/**
 * Why a task ended (the tasks.end_cause column, "end_cause" of task.finished, status and
 * results; docs/tasks.md "Why a task ended"): one of these words, set by the scheduler where
 * it ends the task, never read back from the reason's wording.
 */
#define GGI_END_PASSED "passed"                 /* an attempt passed its tests */
#define GGI_END_FAILED_TESTS "failed_tests"     /* the generator had nothing more to try */
#define GGI_END_BUDGET_ATTEMPTS "budget_attempts" /* max_attempts failed */
#define GGI_END_BUDGET_TOKENS "budget_tokens"   /* the task's token budget is spent */
#define GGI_END_BUDGET_RUN_TOKENS "budget_run_tokens" /* the run's (GRYPHGEN_MAX_TOKENS) */
#define GGI_END_DEADLINE "deadline"             /* the task's wall budget is spent */
#define GGI_END_CANCELLED "cancelled"           /* a client cancelled it */
#define GGI_END_NO_WORKER "no_worker"           /* no connected worker can run it */
#define GGI_END_NO_CODE "no_code"               /* the generator gave no code at all */
#define GGI_END_INFRA "infra"                   /* an infrastructure fault, retries spent */
#define GGI_END_WORKERS_LOST "workers_lost"     /* workers died running it, again and again */
#define GGI_END_INVALID "invalid"               /* its stored spec cannot be read */

/** The schema version this library writes. */
#define GGI_STORE_SCHEMA_VERSION 7

/**
 * Opens (creating when missing) the database at path, sets WAL, synchronous=NORMAL, reads
 * through a memory map of up to 64 MiB, busy_timeout (5 s), foreign keys, and migrates the
 * schema. GG_ESTORE with SQLite's message
 * and the path; GG_EVERSION when the file's schema is newer than GGI_STORE_SCHEMA_VERSION.
 */
int ggi_store_open(ggi_store **out, const char *path);

/**
 * Moves this connection's WAL checkpoints to a thread of their own (checkpointer.h), for the
 * connection that does most of the writing; undone by ggi_store_close. GG_OK or an error
 * (the connection then checkpoints as before).
 */
int ggi_store_checkpoint_in_background(ggi_store *s);

/**
 * For a standby whose file is written under it (replica.h): checkpoints every page into the
 * file, empties the WAL and closes the connection (its checkpointer and recorder with it),
 * keeping s; nothing but ggi_store_reopen and ggi_store_close may be called until
 * ggi_store_reopen. Outside any transaction.
 */
int ggi_store_release(ggi_store *s);

/** Opens the connection of a released store again, as ggi_store_open does (with its
 * checkpointer when it had one); 0 for a store that is open. */
int ggi_store_reopen(ggi_store *s);

/** Closes the connection (finalising cached statements) and sets *ps to NULL. Accepts NULL. */
void ggi_store_close(ggi_store **ps);

/**
 * BEGIN IMMEDIATE / COMMIT / ROLLBACK. Transactions do not nest.
 * begin inside a transaction and commit outside one are GG_ESTATE; GG_EBUSY when another
 * connection kept the write lock past the busy timeout. A COMMIT that fails rolls the
 * transaction back (nothing of it is written). rollback without an open transaction does
 * nothing and returns 0 (SQLite may already have rolled back after an I/O error).
 */
int ggi_store_begin(ggi_store *s);
int ggi_store_commit(ggi_store *s);
int ggi_store_rollback(ggi_store *s);

/**
 * The database's own failure (not the operation's) met on this connection since the last
 * ggi_store_begin: the primary SQLite code (SQLITE_BUSY, SQLITE_LOCKED, SQLITE_FULL,
 * SQLITE_IOERR, SQLITE_READONLY, SQLITE_CORRUPT, ...), or 0. A batch with such a failure
 * must not be committed in part: a constraint failure is the operation's (0 here), a full
 * disk is not. note_fault records one found on the same connection by other code
 * (grid_store.c); fault_kind maps an (extended) SQLite code to such a primary code or 0.
 */
int ggi_store_fault(ggi_store *s);
void ggi_store_note_fault(ggi_store *s, int sqlite_code);
int ggi_store_fault_kind(int sqlite_code);

/** 1 while a transaction is open on this connection, else 0. */
int ggi_store_in_transaction(ggi_store *s);

/**
 * Changes how long a statement waits for another connection's lock before GG_EBUSY
 * (default 5000 ms; 0 fails at once). GG_EINVAL when ms is negative.
 */
int ggi_store_set_busy_timeout(ggi_store *s, int ms);

/**
 * The underlying SQLite connection, borrowed, for tests and diagnostics (query plans,
 * statement counters). Callers must not close it or change its settings.
 */
struct sqlite3 *ggi_store_sqlite(ggi_store *s);

/**
 * Puts every task a crashed process left claimed (running) back in the queue; *out_n (may
 * be NULL) counts them. Only call it when no other process is running tasks of this
 * database. Reads the tasks not ended only when task_counts says some task was running.
 */
int ggi_store_recover(ggi_store *s, int *out_n);

/** A task to insert (ggi_store_task_insert). Strings are borrowed for the call. */
typedef struct ggi_task_new {
    const char *task_id;   /* required, non-empty */
    const char *spec_json; /* the normalised task; required */
    const char *spec_hash; /* identifies the content: a resubmission must match; required */
    int priority;
    const char *submitter; /* whose queue it joins (fair share); NULL: "local" */
    /* What the scheduler needs to place the task without reading its spec: its language and
     * needs (ggi_task_needs(), NULL when none). language NULL stores neither (the scheduler
     * then reads the spec). */
    const char *language;
    const char *needs;
    double now;            /* submission time, seconds */
} ggi_task_new;

/**
 * Inserts a queued task: its row, its spec (task_specs, schema 5: specs live apart from the
 * task rows that every start and end rewrites) and its queue entry, counted queued. The one
 * insert of the product: embedded submissions (orchestrator.c) and the grid's submitters
 * (scheduler.c) alike. In its own transaction unless one is open. When task_id exists with
 * the same spec_hash, nothing is written, *out_existing is 1 and *out_seq is the old row;
 * with another hash: GG_EEXIST naming the task. out_seq and out_existing may be NULL.
 */
int ggi_store_task_insert(ggi_store *s, const ggi_task_new *t, int64_t *out_seq,
                          int *out_existing);

/** A task as the scheduler needs it; strings are malloc'd (ggi_store_task_row_free). */
typedef struct ggi_task_row {
    int64_t seq;
    char *task_id;
    char *spec;        /* normalised task JSON */
    char *status;
    int priority;
    int attempts;      /* attempts recorded so far */
    double created_at;
    double started_at; /* 0 when never started */
    double finished_at;
    char *reason;      /* NULL unless ended with one */
    char *result;      /* result JSON once ended, else NULL */
    char *language;    /* as stored for the scheduler (claims only), or NULL: not known */
    char *needs;       /* ggi_task_needs() as stored (claims only), or NULL */
    char *end_cause;   /* GGI_END_* once ended (ggi_store_task_get only), or NULL */
} ggi_task_row;

void ggi_store_task_row_free(ggi_task_row *row);

/**
 * Finds a task by id. GG_ENOTFOUND when there is none. row must be zeroed; free it with
 * ggi_store_task_row_free.
 */
int ggi_store_task_get(ggi_store *s, const char *task_id, ggi_task_row *row);

/*
 * Tasks are claimed by submitter, on the scheduler's connection: ggi_grid_claim
 * (lib/orchestrator/grid_store.c), which reads the queue and takes its entries with
 * ggi_store_queue_take below.
 */

/**
 * Records attempt n of a task (its code, whether it passed, and its record JSON); with count
 * 1 also sets the task's attempt count to n, with count 0 leaves it (for a caller that ends
 * the task in the same transaction with ggi_store_task_end, which stores the count with the
 * end: one task update, not two). One attempt, one row: recording the same (seq, n) twice is
 * GG_EEXIST. Runs in the caller's transaction when one is open.
 * n counts from 1; code may be NULL; record_json is required. GG_ENOTFOUND when no task has
 * that seq. A failure inside the caller's transaction leaves that transaction open.
 */
int ggi_store_attempt_add(ggi_store *s, int64_t seq, int n, const char *code, int passed,
                          const char *record_json, double now, int count);

/** An attempt for ggi_store_attempts_add: the arguments of ggi_store_attempt_add. */
typedef struct ggi_attempt_in {
    int64_t seq;
    int n, passed, count;
    const char *code, *record_json;
    double now;
} ggi_attempt_in;

/**
 * Records attempts v[0..n) as ggi_store_attempt_add records each, GGI_ATTEMPT_ROWS to an
 * INSERT (one statement per attempt cost a fifth of each). A statement that fails is run
 * again one attempt at a time, so a bad attempt fails alone: failed(user, &v[i]) is called
 * for it at once (gg_error_last() says why). In the caller's transaction, which must be
 * open; GG_OK unless SQLite rolled that transaction back (then GG_ESTORE and the rest is
 * not tried).
 */
#define GGI_ATTEMPT_ROWS 16
int ggi_store_attempts_add(ggi_store *s, const ggi_attempt_in *v, int n,
                           void (*failed)(void *user, const ggi_attempt_in *a), void *user);

/**
 * Calls fn(user, n, passed, record_json) for each attempt of a task in order of n; a non-zero
 * return from fn stops and is returned. record_json is borrowed for the call only. fn may
 * call the store again, to read or to write.
 */
int ggi_store_attempts_each(ggi_store *s, int64_t seq,
                            int (*fn)(void *user, int n, int passed, const char *record_json),
                            void *user);

/**
 * Puts a running task back in the queue (its attempt was interrupted), storing started_at
 * (> 0) as its start unless one is stored. A task already queued is left as it is (0); an
 * ended one is GG_ESTATE; unknown GG_ENOTFOUND.
 */
int ggi_store_task_requeue(ggi_store *s, int64_t seq, double started_at);

/**
 * Ends task seq with status (passed, failed, error or cancelled; another is GG_EINVAL) and
 * reason (may be NULL), storing started_at (> 0; kept when one is stored), now as its end
 * and attempts (>= 0; -1 leaves it). claimed: the caller claimed it (it is running), so its
 * queue entry is not looked for; 0: it may be queued (a cancel). GG_ESTATE when it has ended
 * already (a task ends once); GG_ENOTFOUND. The one way a task ends. Its result is not
 * stored: ggi_store_task_get builds it from the task's columns and attempts (a row an
 * earlier version ended may hold a stored result, which is read as it is, with a null
 * "history" filled in from the attempts). Runs in the caller's transaction when one is open.
 */
int ggi_store_task_end(ggi_store *s, int64_t seq, const char *status, const char *reason,
                       double started_at, double now, int attempts, int claimed);

/** ggi_store_task_end storing why the task ended too (a GGI_END_* word; NULL: none). */
int ggi_store_task_end_cause(ggi_store *s, int64_t seq, const char *status, const char *cause,
                             const char *reason, double started_at, double now, int attempts,
                             int claimed);

/**
 * Takes a claim's queue entries: submitter's entries up to (priority, last_seq), the last
 * task of n the claim read in queue order; counts n tasks queued -> running. GG_ESTORE when
 * fewer than n entries were there. In the caller's transaction; for grid_store.c too.
 */
int ggi_store_queue_take(ggi_store *s, const char *submitter, int priority, int64_t last_seq,
                         int n);

/**
 * Appends an event (kind such as "task.finished", data JSON or NULL). task_seq <= 0 stores
 * an event about no task (task_seq NULL).
 */
int ggi_store_event_insert(ggi_store *s, int64_t task_seq, const char *kind,
                           const char *data_json, double now);

/** Task counts by status and the total of attempts (kept in task_counts, not counted
 * row by row: ggi_store_count_move). */
typedef struct ggi_store_counts {
    int64_t queued, running, passed, failed, error, cancelled, attempts;
} ggi_store_counts;

int ggi_store_counts_get(ggi_store *s, ggi_store_counts *out);

/**
 * Counts n tasks of this database moving from status from to status to (either NULL: none;
 * "#attempts" counts attempts) in the connection's open transaction. Every statement that
 * changes a task's status outside this file calls it (grid_store.c); the
 * changes are written to task_counts with the transaction's COMMIT and forgotten when it
 * rolls back, so the counts read by ggi_store_counts_get stay exact.
 */
void ggi_store_count_move(ggi_store *s, const char *from, const char *to, int64_t n);

/** The number of events stored (for tests and retention). */
int ggi_store_events_count(ggi_store *s, int64_t *out);

/** The generator tokens all recorded attempts used (their records' "usage"), so that a run
 *  budget goes on across a restart instead of starting from zero. */
int ggi_store_tokens_spent(ggi_store *s, long long *out);

#endif
