/*
 * store.c - the SQLite database of libgryphgen: opening a connection (WAL, busy timeout,
 * foreign keys), forward schema migrations kept in PRAGMA user_version, and the task,
 * attempt and event operations, each through a statement prepared once per connection.
 * Every write runs in the caller's transaction or, when none is open, in its own
 * BEGIN IMMEDIATE ... COMMIT, so a crash never leaves half an operation behind.
 *
 * Why one file of this length: the schema, its migrations and the statements that read and
 * write it must change together (a column added in a migration is bound in a statement
 * here), and every statement is prepared on one connection struct that no other file sees.
 * Cut it, and the struct and the migrations' version numbers would have to be shared.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sqlite3.h>

#include "../core/dbfile.h"
#include "checkpointer.h"
#include "replica.h"
#include "store.h"

#define BUSY_TIMEOUT_MS 5000
#define WAL_CHECKPOINT_PAGES 4096
#define GGI_STR_(x) #x
#define GGI_STR(x) GGI_STR_(x)

/*
 * Schema migrations: entry i takes the database from user_version i to i + 1, in one
 * transaction together with the version bump. A new schema version is one more entry (and
 * GGI_STORE_SCHEMA_VERSION + 1); entries already published are never edited, and their
 * comments say what each did when it was written.
 */
static const char *const migrations[] = {
    /* 0 -> 1: tasks, attempts (checkpoints) and events. */
    "CREATE TABLE tasks("
    "  seq INTEGER PRIMARY KEY,"
    "  task_id TEXT UNIQUE NOT NULL,"
    "  spec TEXT NOT NULL,"
    "  spec_hash TEXT NOT NULL,"
    "  status TEXT NOT NULL CHECK(status IN"
    "    ('queued', 'running', 'passed', 'failed', 'error', 'cancelled')),"
    "  priority INTEGER NOT NULL DEFAULT 0,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  created_at REAL,"
    "  started_at REAL,"
    "  finished_at REAL,"
    "  reason TEXT,"
    "  result TEXT);"
    /* Served the claim query of its time (dropped by version 4). */
    "CREATE INDEX tasks_claim ON tasks(status, priority DESC, seq);"
    "CREATE TABLE attempts("
    "  task_seq INTEGER NOT NULL REFERENCES tasks(seq),"
    "  n INTEGER NOT NULL,"
    "  passed INTEGER NOT NULL,"
    "  code TEXT,"
    "  record TEXT NOT NULL,"
    "  created_at REAL,"
    "  PRIMARY KEY(task_seq, n));"
    "CREATE TABLE events("
    "  id INTEGER PRIMARY KEY,"
    "  ts REAL NOT NULL,"
    "  task_seq INTEGER,"
    "  kind TEXT NOT NULL,"
    "  data TEXT);"
    /* (Of the tables once planned here, nodes and node_scores came with version 2; jobs
     * never did: a job's lease lives in the scheduler's memory and a lost job is requeued.
     * The retrieval corpus and the generator's journal and arms keep tables of their own,
     * created by lib/retrieval/fts5.c and lib/generation/journal.c, not by migrations.) */
    ,
    /* 1 -> 2: the grid: tasks by submitter (fair share), nodes and their scores. */
    "ALTER TABLE tasks ADD COLUMN submitter TEXT NOT NULL DEFAULT 'local';"
    "CREATE INDEX tasks_fair ON tasks(status, submitter, priority DESC, seq);"
    "CREATE TABLE nodes("
    "  name TEXT PRIMARY KEY,"
    "  caps TEXT,"
    "  first_seen REAL,"
    "  last_seen REAL,"
    "  quarantined_until REAL NOT NULL DEFAULT 0);"
    "CREATE TABLE node_scores("
    "  node TEXT NOT NULL,"
    "  language TEXT NOT NULL,"
    "  ok REAL NOT NULL,"
    "  latency_ms REAL NOT NULL,"
    "  n INTEGER NOT NULL,"
    "  updated_at REAL,"
    "  PRIMARY KEY(node, language));"
    ,
    /* 2 -> 3: dispatch throughput. The status check becomes a chain of comparisons (an IN
     * list made SQLite build a temporary table for every update of a task), which needs the
     * table rebuilt (same columns, same order; migrations run before foreign keys are turned
     * on); the claim indexes hold queued tasks only (partial), so a task that starts leaves
     * them once and its end touches neither; the counts by status read a narrow index. */
    "CREATE TABLE tasks_v3("
    "  seq INTEGER PRIMARY KEY,"
    "  task_id TEXT UNIQUE NOT NULL,"
    "  spec TEXT NOT NULL,"
    "  spec_hash TEXT NOT NULL,"
    "  status TEXT NOT NULL CHECK(status = 'queued' OR status = 'running' OR"
    "    status = 'passed' OR status = 'failed' OR status = 'error' OR status = 'cancelled'),"
    "  priority INTEGER NOT NULL DEFAULT 0,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  created_at REAL,"
    "  started_at REAL,"
    "  finished_at REAL,"
    "  reason TEXT,"
    "  result TEXT,"
    "  submitter TEXT NOT NULL DEFAULT 'local');"
    "INSERT INTO tasks_v3(seq, task_id, spec, spec_hash, status, priority, attempts,"
    "  created_at, started_at, finished_at, reason, result, submitter)"
    "  SELECT seq, task_id, spec, spec_hash, status, priority, attempts, created_at,"
    "  started_at, finished_at, reason, result, submitter FROM tasks;"
    "DROP TABLE tasks;"
    "ALTER TABLE tasks_v3 RENAME TO tasks;"
    "CREATE INDEX tasks_claim ON tasks(status, priority DESC, seq) WHERE status = 'queued';"
    "CREATE INDEX tasks_fair ON tasks(status, submitter, priority DESC, seq)"
    "  WHERE status = 'queued';"
    "CREATE INDEX tasks_status ON tasks(status);"
    ,
    /* 3 -> 4: dispatch throughput again. The counts by status live in task_counts, kept by
     * every change of a task's status in the same transaction (count_move), instead of an
     * index on status that every start and every end of a task rewrote twice; the claim by
     * priority alone reads the queued entries of tasks_fair instead of an index of its own. */
    "CREATE TABLE task_counts("
    "  status TEXT PRIMARY KEY,"
    "  n INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT INTO task_counts(status, n) VALUES ('queued', 0), ('running', 0), ('passed', 0),"
    "  ('failed', 0), ('error', 0), ('cancelled', 0), ('#attempts', 0);"
    "UPDATE task_counts SET n = (SELECT count(*) FROM tasks WHERE tasks.status ="
    "  task_counts.status) WHERE status <> '#attempts';"
    "UPDATE task_counts SET n = (SELECT count(*) FROM attempts) WHERE status = '#attempts';"
    "DROP INDEX tasks_status;"
    "DROP INDEX tasks_claim;"
    /* What the scheduler needs to place a task, so that claiming it does not parse its
     * spec: the language and ggi_task_needs(); NULL language: not known (read the spec). */
    "ALTER TABLE tasks ADD COLUMN language TEXT;"
    "ALTER TABLE tasks ADD COLUMN needs TEXT;"
    ,
    /* 4 -> 5: dispatch throughput again. A task's spec moves to a table of its own, written
     * once and only read, so that the rows every start and every end of a task rewrite are a
     * quarter of their size: fewer pages per commit, in the WAL and in every checkpoint. */
    "CREATE TABLE task_specs("
    "  seq INTEGER PRIMARY KEY REFERENCES tasks(seq),"
    "  spec TEXT NOT NULL);"
    "INSERT INTO task_specs(seq, spec) SELECT seq, spec FROM tasks;"
    "ALTER TABLE tasks DROP COLUMN spec;"
    ,
    /* 5 -> 6: dispatch throughput again. The tasks waiting to be claimed are the entries of
     * queue, in claim order (by submitter, then priority highest first (stored negated),
     * then oldest first), in place of the partial index tasks_fair: a claim takes entries
     * out of this narrow table and leaves the task rows alone, instead of rewriting each
     * claimed row as 'running'. A task not ended is queued while its entry is there and
     * running once claimed (TASK_STATUS); its start is written with its end. */
    "CREATE TABLE queue("
    "  submitter TEXT NOT NULL,"
    "  priority INTEGER NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  PRIMARY KEY(submitter, priority, seq)) WITHOUT ROWID;"
    "INSERT INTO queue(submitter, priority, seq)"
    "  SELECT submitter, -priority, seq FROM tasks WHERE status = 'queued';"
    "DROP INDEX tasks_fair;"
    ,
    /* 6 -> 7: why a task ended, in a column (GGI_END_* in store.h) instead of in the wording
     * of its reason. The tasks that ended before get the cause their reason's wording
     * (as 1.2's scheduler wrote it) says, else the most general one of their status. */
    "ALTER TABLE tasks ADD COLUMN end_cause TEXT;"
    "UPDATE tasks SET end_cause = CASE"
    "  WHEN status = 'passed' THEN 'passed'"
    "  WHEN status = 'cancelled' THEN 'cancelled'"
    "  WHEN reason LIKE 'run token budget%' THEN 'budget_run_tokens'"
    "  WHEN reason LIKE 'token budget of %' THEN 'budget_tokens'"
    "  WHEN reason LIKE 'wall budget of %' THEN 'deadline'"
    "  WHEN reason LIKE 'failed all %' THEN 'budget_attempts'"
    "  WHEN reason LIKE 'the generator has nothing more%' THEN 'failed_tests'"
    "  WHEN reason LIKE 'no connected worker can run%' THEN 'no_worker'"
    "  WHEN reason LIKE '% workers died running it%' THEN 'workers_lost'"
    "  WHEN reason LIKE 'stored task %' THEN 'invalid'"
    "  WHEN status = 'failed' THEN 'failed_tests'"
    "  ELSE 'infra' END"
    " WHERE status IN ('passed', 'failed', 'error', 'cancelled');"
};

/*
 * SQLite keeps process-wide memory statistics by default, behind a global mutex taken on
 * every allocation; with several threads writing (the scheduler's writer, the checkpointer,
 * the scheduler itself) that mutex cost more than a tenth of each write. The statistics are
 * turned off when the library is loaded, before any thread uses SQLite (when the host has
 * initialized SQLite already, SQLite refuses the change and nothing changes). A host that
 * reads sqlite3_memory_used() turns them back on with sqlite3_config(SQLITE_CONFIG_MEMSTATUS,
 * 1) before it first uses SQLite.
 */
__attribute__((constructor)) static void sqlite_without_memory_statistics(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

_Static_assert(sizeof migrations / sizeof migrations[0] == GGI_STORE_SCHEMA_VERSION,
               "one migration per schema version");

/* The cached statements; the order matches stmt_sql. */
enum stmt_id {
    Q_BEGIN,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_TASK_FIND,
    Q_TASK_INSERT,
    Q_SPEC_INSERT,
    Q_TASK_GET,
    Q_TASK_STATUS,
    Q_CLAIM_TAKE,
    Q_ENQUEUE,
    Q_DEQUEUE,
    Q_ATTEMPT_INSERT,
    Q_TASK_SET_ATTEMPTS,
    Q_ATTEMPT_INSERT_ROWS,
    Q_ATTEMPTS_EACH,
    Q_TASK_FINISH,
    Q_TASK_REQUEUE,
    Q_RECOVER_LEGACY,
    Q_RECOVER,
    Q_RUNNING,
    Q_EVENT_INSERT,
    Q_COUNTS,
    Q_EVENTS_COUNT,
    Q_TOKENS_SPENT,
    Q_COUNT_ADD,
    Q_COUNT_
};

/* A task's spec, from task_specs (schema 5), for a query on tasks; JSON null for a row
 * whose spec is gone (changed by hand), so the task can still be read and ends as an error
 * where it is run. */
#define TASK_SPEC "coalesce((SELECT spec FROM task_specs WHERE task_specs.seq = tasks.seq), 'null')"

/* Whether a task not ended waits in the queue (schema 6). */
#define IN_QUEUE                                                                           \
    "EXISTS (SELECT 1 FROM queue WHERE queue.submitter = tasks.submitter AND"              \
    " queue.priority = -tasks.priority AND queue.seq = tasks.seq)"
/* A task's status: as stored once it ended; before, 'queued' while it waits in the queue
 * and 'running' once claimed (rows of versions before 6 may also store 'running'). */
#define TASK_STATUS "CASE WHEN status <> 'queued' OR " IN_QUEUE " THEN status ELSE 'running' END"

#define TASK_COLUMNS                                                                     \
    "seq, task_id, " TASK_SPEC ", " TASK_STATUS ", priority, attempts, created_at,"        \
    " started_at, finished_at, reason, result"

/* The records of a task's attempts as one JSON array text, in attempt order. */
#define HISTORY                                                                            \
    "(SELECT '[' || coalesce(group_concat(record, ','), '') || ']' FROM (SELECT record"    \
    " FROM attempts WHERE task_seq = tasks.seq ORDER BY n))"
/* How good an attempt is (the one whose code a task keeps): passed 3, ran its tests 2,
 * else 1; among equals the first passing one, else the latest. */
#define BEST_ATTEMPT(col)                                                                  \
    "(SELECT " col " FROM attempts WHERE task_seq = tasks.seq ORDER BY CASE WHEN passed"    \
    " THEN 3 WHEN json_valid(record) AND json_type(record, '$.execution') = 'object'"      \
    " THEN 2 ELSE 1 END DESC, CASE WHEN passed THEN n ELSE -n END LIMIT 1)"
/* Generator tokens of an attempt: usage.total_tokens, else prompt + completion, bounded so
 * that sums cannot overflow. */
#define RECORD_TOKENS                                                                      \
    "min(1e15, max(0, coalesce(json_extract(record, '$.usage.total_tokens'),"              \
    " coalesce(json_extract(record, '$.usage.prompt_tokens'), 0) +"                       \
    " coalesce(json_extract(record, '$.usage.completion_tokens'), 0))))"
/* An ended task's result, from its columns and attempts; NULL while it has not ended. A
 * workspace task's (its spec has "workspace") also carries "patch", the best attempt's diff,
 * and "base_commit", the commit its attempts started from (docs/tasks.md). */
#define RESULT_BUILT                                                                       \
    "CASE WHEN status = 'queued' OR status = 'running' THEN NULL"                          \
    " WHEN " TASK_SPEC " NOT LIKE '%\"workspace\"%' OR json_type(" TASK_SPEC ","             \
    " '$.workspace') IS NULL THEN " RESULT_OBJECT " ELSE json_set(" RESULT_OBJECT ","      \
    " '$.patch', " BEST_ATTEMPT("json_extract(record, '$.patch')") ", '$.base_commit',"    \
    " json_extract(" TASK_SPEC ", '$.workspace.commit')) END"
#define RESULT_OBJECT                                                                      \
    "json_object("                                                                         \
    "'task_id', task_id, 'status', status, 'end_cause', end_cause,"                        \
    " 'attempts', (SELECT count(*) FROM attempts WHERE task_seq = tasks.seq),"             \
    " 'passed_attempt', (SELECT min(n) FROM attempts WHERE task_seq = tasks.seq AND passed),"  \
    " 'tokens', (SELECT CAST(coalesce(sum(CASE WHEN record LIKE '%\"usage\"%' AND"          \
    " json_valid(record) THEN CAST(" RECORD_TOKENS " AS INTEGER) ELSE 0 END), 0) AS INTEGER)"   \
    " FROM attempts WHERE task_seq = tasks.seq),"                                          \
    " 'best_attempt', " BEST_ATTEMPT("n") ", 'code', " BEST_ATTEMPT("code") ","            \
    " 'reason', reason, 'duration_ms', CASE WHEN started_at IS NULL OR finished_at IS NULL"  \
    " THEN 0 ELSE round((finished_at - started_at) * 1000, 3) END,"                        \
    " 'history', json(" HISTORY "))"

/* One attempt's row of parameters; plain "?" are numbered in order, so row k (from 0) binds
 * 6k+1 .. 6k+6 as Q_ATTEMPT_INSERT binds 1 .. 6. */
#define ROW6 "(?, ?, ?, ?, ?, ?)"
#define ROWS4 ROW6 "," ROW6 "," ROW6 "," ROW6
static const char *const stmt_sql[Q_COUNT_] = {
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_TASK_FIND] = "SELECT seq, spec_hash FROM tasks WHERE task_id = ?1",
    [Q_TASK_INSERT] = "INSERT INTO tasks(task_id, spec_hash, status, priority, created_at,"
                      " submitter, language, needs)"
                      " VALUES (?1, ?2, 'queued', ?3, ?4, coalesce(?7, 'local'), ?5, ?6)",
    [Q_SPEC_INSERT] = "INSERT INTO task_specs(seq, spec) VALUES (?1, ?2)",
    /* A result is built from the task's columns and its attempts (RESULT_BUILT): the store
     * writes none. A row an earlier version ended may hold one; stored with "history": null
     * it gets the attempts' records spliced in as its history; both as docs/tasks.md
     * describes the result. */
    [Q_TASK_GET] = "SELECT seq, task_id, " TASK_SPEC ", " TASK_STATUS ", priority, attempts, created_at,"
                   " started_at, finished_at, reason,"
                   " CASE WHEN result IS NULL THEN " RESULT_BUILT
                   " WHEN NOT json_valid(result) THEN result"
                   " WHEN json_type(result, '$.history') = 'null' THEN"
                   " json_set(result, '$.history', json(" HISTORY "))"
                   " ELSE result END, end_cause"
                   " FROM tasks WHERE task_id = ?1",
    [Q_TASK_STATUS] = "SELECT status FROM tasks WHERE seq = ?1",
    /* Takes a claim's entries: all of the submitter's up to the last one it read. */
    [Q_CLAIM_TAKE] = "DELETE FROM queue WHERE submitter = ?1 AND (priority, seq) <= (?2, ?3)",
    [Q_ENQUEUE] = "INSERT OR IGNORE INTO queue(submitter, priority, seq)"
                  " SELECT submitter, -priority, seq FROM tasks WHERE seq = ?1",
    [Q_DEQUEUE] = "DELETE FROM queue WHERE submitter = (SELECT submitter FROM tasks WHERE"
                  " seq = ?1) AND priority = (SELECT -priority FROM tasks WHERE seq = ?1)"
                  " AND seq = ?1",
    [Q_ATTEMPT_INSERT] = "INSERT INTO attempts(task_seq, n, passed, code, record, created_at)"
                         " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    /* GGI_ATTEMPT_ROWS rows of Q_ATTEMPT_INSERT (6 parameters each). */
    [Q_ATTEMPT_INSERT_ROWS] = "INSERT INTO attempts(task_seq, n, passed, code, record, created_at)"
                              " VALUES " ROWS4 "," ROWS4 "," ROWS4 "," ROWS4,
    [Q_TASK_SET_ATTEMPTS] = "UPDATE tasks SET attempts = ?2 WHERE seq = ?1",
    [Q_ATTEMPTS_EACH] = "SELECT n, passed, record FROM attempts WHERE task_seq = ?1 ORDER BY n",
    /* ?6: when it started (kept when one is stored); ?7: why it ended (GGI_END_*). */
    [Q_TASK_FINISH] = "UPDATE tasks SET status = ?2, reason = ?3, finished_at = ?4, end_cause = ?7,"
                      " attempts = coalesce(?5, attempts), started_at = coalesce(started_at, ?6)"
                      " WHERE seq = ?1 AND (status = 'queued' OR status = 'running')",
    [Q_TASK_REQUEUE] = "UPDATE tasks SET status = 'queued', started_at = coalesce(started_at, ?2)"
                       " WHERE seq = ?1 AND (status = 'queued' OR status = 'running')",
    /* Claimed tasks (not ended, not in the queue, or 'running' as versions before 6 stored
     * them) go back to the queue. */
    [Q_RECOVER_LEGACY] = "UPDATE tasks SET status = 'queued' WHERE status = 'running'",
    [Q_RECOVER] = "INSERT OR IGNORE INTO queue(submitter, priority, seq)"
                  " SELECT submitter, -priority, seq FROM tasks WHERE status = 'queued'",
    [Q_RUNNING] = "SELECT n FROM task_counts WHERE status = 'running'",
    [Q_EVENT_INSERT] = "INSERT INTO events(ts, task_seq, kind, data) VALUES (?1, ?2, ?3, ?4)",
    /* One statement, so the counts come from one snapshot. */
    [Q_COUNTS] = "SELECT status, n FROM task_counts",
    [Q_EVENTS_COUNT] = "SELECT count(*) FROM events",
    /* Each attempt's usage as record_tokens() in the scheduler reads it. */
    [Q_TOKENS_SPENT] = "SELECT coalesce(sum(" RECORD_TOKENS "), 0)"
                       " FROM attempts WHERE record LIKE '%\"usage\"%' AND json_valid(record)",
    [Q_COUNT_ADD] = "UPDATE task_counts SET n = n + ?2 WHERE status = ?1",
};

/* What task_counts counts, in the order of ggi_store's pending deltas. */
static const char *const count_keys[] = { GGI_ST_QUEUED, GGI_ST_RUNNING, GGI_ST_PASSED,
                                          GGI_ST_FAILED, GGI_ST_ERROR, GGI_ST_CANCELLED,
                                          "#attempts" };
#define N_COUNTS ((int)(sizeof count_keys / sizeof count_keys[0]))

struct ggi_store {
    sqlite3 *db;
    char *path;
    int64_t pending[N_COUNTS]; /* changes to task_counts made by the open transaction */
    ggi_checkpointer *checkpointer; /* or NULL: SQLite checkpoints on this connection */
    sqlite3_stmt *stmts[Q_COUNT_];
    unsigned char in_use[Q_COUNT_]; /* a cached statement lent out and not yet returned */
    int fault; /* the database's own failure since the last begin (ggi_store_fault), or 0 */
    ggi_replica *replica; /* records each transaction for a standby (replica.c), or NULL */
    int released_checkpointer; /* ggi_store_release stopped one: ggi_store_reopen restarts it */
};

ggi_replica **ggi_store_replica_slot(ggi_store *s);
ggi_replica **ggi_store_replica_slot(ggi_store *s)
{
    return &s->replica;
}

/* ---- errors ---- */

/* Maps SQLite's last error on s->db to a status and records "what: sqlite's message". */
static int fail_db(sqlite3 *db, const char *what)
{
    int ext = sqlite3_extended_errcode(db);
    int status;
    switch (ext & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: status = GG_EBUSY; break;
    case SQLITE_NOMEM: status = GG_ENOMEM; break;
    default: status = GG_ESTORE; break;
    }
    return ggi_error(status, "%s: %s", what, sqlite3_errmsg(db));
}

#define WHAT_MAX 256

/* Like fail_db with a formatted description of what was being done. */
static int fail(ggi_store *s, const char *fmt, ...) GGI_PRINTF(2, 3);
static int fail(ggi_store *s, const char *fmt, ...)
{
    char what[WHAT_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    ggi_store_note_fault(s, sqlite3_extended_errcode(s->db));
    return fail_db(s->db, what);
}

int ggi_store_fault_kind(int sqlite_code)
{
    switch (sqlite_code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_READONLY:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_CANTOPEN:
    case SQLITE_NOMEM:
    case SQLITE_PERM:
    case SQLITE_PROTOCOL:
    case SQLITE_NOLFS:
    case SQLITE_AUTH: return sqlite_code & 0xff;
    default: return 0;
    }
}

void ggi_store_note_fault(ggi_store *s, int sqlite_code)
{
    int kind = ggi_store_fault_kind(sqlite_code);
    if (s && kind && !s->fault)
        s->fault = kind;
}

int ggi_store_fault(ggi_store *s)
{
    return s ? s->fault : 0;
}

static int is_constraint(ggi_store *s, int ext)
{
    return sqlite3_extended_errcode(s->db) == ext;
}

/* ---- statement cache ---- */

/*
 * Lends the statement id: the cached one, prepared on first use. When the cached one is
 * already lent (a callback re-entered the store), a fresh one is prepared for this use only.
 */
static int stmt_get(ggi_store *s, enum stmt_id id, sqlite3_stmt **out)
{
    *out = NULL;
    if (s->stmts[id] && !s->in_use[id]) {
        s->in_use[id] = 1;
        *out = s->stmts[id];
        return 0;
    }
    int cache = s->stmts[id] == NULL;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v3(s->db, stmt_sql[id], -1, cache ? SQLITE_PREPARE_PERSISTENT : 0,
                                &st, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(st);
        return fail(s, "preparing '%.60s'", stmt_sql[id]);
    }
    if (cache) {
        s->stmts[id] = st;
        s->in_use[id] = 1;
    }
    *out = st;
    return 0;
}

/* Returns a statement lent by stmt_get: resets the cached one, finalises a one-off. */
static void stmt_put(ggi_store *s, enum stmt_id id, sqlite3_stmt *st)
{
    if (!st)
        return;
    if (st == s->stmts[id]) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        s->in_use[id] = 0;
    } else {
        sqlite3_finalize(st);
    }
}

/* Runs a statement without parameters or rows (BEGIN, COMMIT, ROLLBACK, ...). */
static int run_simple(ggi_store *s, enum stmt_id id, const char *what)
{
    sqlite3_stmt *st;
    int rc = stmt_get(s, id, &st);
    if (rc)
        return rc;
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = fail(s, "%s", what);
    stmt_put(s, id, st);
    return rc;
}

/* Rolls back an open transaction without touching the thread's error message. */
/* ---- task counts ---- */

static int count_index(const char *key)
{
    for (int i = 0; key && i < N_COUNTS; i++)
        if (strcmp(count_keys[i], key) == 0)
            return i;
    return -1;
}

void ggi_store_count_move(ggi_store *s, const char *from, const char *to, int64_t n)
{
    int i = count_index(from), j = count_index(to);
    if (s && i >= 0)
        s->pending[i] -= n;
    if (s && j >= 0)
        s->pending[j] += n;
}

static void counts_forget(ggi_store *s)
{
    memset(s->pending, 0, sizeof s->pending);
}

/* Writes the transaction's count changes into task_counts, just before its COMMIT. */
static int counts_write(ggi_store *s)
{
    for (int i = 0; i < N_COUNTS; i++) {
        if (s->pending[i] == 0)
            continue;
        sqlite3_stmt *st;
        int rc = stmt_get(s, Q_COUNT_ADD, &st);
        if (rc)
            return rc;
        sqlite3_bind_text(st, 1, count_keys[i], -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)s->pending[i]);
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : fail(s, "counting tasks");
        stmt_put(s, Q_COUNT_ADD, st);
        if (rc)
            return rc;
    }
    counts_forget(s);
    return 0;
}

static void rollback_quiet(ggi_store *s)
{
    counts_forget(s);
    if (s->replica)
        ggi_replica_after_commit(s->replica, 0);
    if (sqlite3_get_autocommit(s->db))
        return;
    sqlite3_stmt *st;
    char saved[1024];
    int code = gg_error_last_code();
    snprintf(saved, sizeof saved, "%s", gg_error_last());
    if (stmt_get(s, Q_ROLLBACK, &st) == 0) {
        sqlite3_step(st);
        stmt_put(s, Q_ROLLBACK, st);
    }
    if (sqlite3_get_autocommit(s->db) == 0)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    if (code)
        ggi_error(code, "%s", saved);
}

/* Commits; a failed COMMIT is rolled back so the connection is left without a transaction. */
/* Whether the database file was deleted or replaced while open: SQLite then writes on into
 * the unlinked inode, which nobody will open again, and commits "succeed" (with WAL it does
 * not refuse them). Asked before each commit (one stat). */
static int file_moved(ggi_store *s)
{
    int moved = 0;
    return sqlite3_file_control(s->db, "main", SQLITE_FCNTL_HAS_MOVED, &moved) == SQLITE_OK &&
           moved;
}

static int commit_or_rollback(ggi_store *s)
{
    if (file_moved(s)) {
        rollback_quiet(s);
        ggi_store_note_fault(s, SQLITE_READONLY_DBMOVED);
        return ggi_error(GG_ESTORE, "the database file '%s' was deleted or moved while open: "
                         "nothing more can be written to it; the transaction was rolled back",
                         s->path ? s->path : "?");
    }
    int rc = counts_write(s);
    if (!rc && s->replica)
        rc = ggi_replica_before_commit(s->replica);
    if (!rc)
        rc = run_simple(s, Q_COMMIT, "committing");
    if (!rc && s->replica)
        ggi_replica_after_commit(s->replica, 1);
    if (rc && !sqlite3_get_autocommit(s->db)) {
        char saved[1024];
        snprintf(saved, sizeof saved, "%s", gg_error_last());
        rollback_quiet(s);
        ggi_error(rc, "%s; the transaction was rolled back", saved);
    }
    return rc;
}

/*
 * Opens a transaction for one operation when the caller has none; *own says whether this
 * operation must end it (tx_end).
 */
static int tx_begin(ggi_store *s, int *own)
{
    *own = 0;
    if (!sqlite3_get_autocommit(s->db))
        return 0;
    counts_forget(s); /* left by a transaction SQLite rolled back by itself */
    int rc = run_simple(s, Q_BEGIN, "starting a transaction");
    if (rc == 0)
        *own = 1;
    if (rc == 0 && s->replica)
        ggi_replica_on_begin(s->replica);
    return rc;
}

/* Ends a transaction opened by tx_begin: commits when rc is 0, else rolls back. */
static int tx_end(ggi_store *s, int own, int rc)
{
    if (!own)
        return rc;
    if (rc == 0)
        return commit_or_rollback(s);
    rollback_quiet(s);
    return rc;
}

/* ---- column helpers ---- */

/* Copies a text column into malloc'd memory; SQL NULL gives NULL. */
static int col_dup(sqlite3_stmt *st, int i, char **out)
{
    *out = NULL;
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return 0;
    const unsigned char *t = sqlite3_column_text(st, i);
    if (!t)
        return ggi_error(GG_ENOMEM, "out of memory reading a column");
    *out = ggi_strndup((const char *)t, (size_t)sqlite3_column_bytes(st, i));
    if (!*out)
        return ggi_error(GG_ENOMEM, "out of memory copying a column");
    return 0;
}

void ggi_store_task_row_free(ggi_task_row *row)
{
    if (!row)
        return;
    free(row->task_id);
    free(row->spec);
    free(row->status);
    free(row->reason);
    free(row->result);
    free(row->language);
    free(row->needs);
    free(row->end_cause);
    memset(row, 0, sizeof *row);
}

/* Fills row from a statement positioned on a row of TASK_COLUMNS. */
static int row_read(sqlite3_stmt *st, ggi_task_row *row)
{
    memset(row, 0, sizeof *row);
    row->seq = sqlite3_column_int64(st, 0);
    row->priority = sqlite3_column_int(st, 4);
    row->attempts = sqlite3_column_int(st, 5);
    row->created_at = sqlite3_column_double(st, 6); /* NULL reads as 0.0 */
    row->started_at = sqlite3_column_double(st, 7);
    row->finished_at = sqlite3_column_double(st, 8);
    int rc = col_dup(st, 1, &row->task_id);
    if (!rc)
        rc = col_dup(st, 2, &row->spec);
    if (!rc)
        rc = col_dup(st, 3, &row->status);
    if (!rc)
        rc = col_dup(st, 9, &row->reason);
    if (!rc)
        rc = col_dup(st, 10, &row->result);
    if (!rc && sqlite3_column_count(st) > 11)
        rc = col_dup(st, 11, &row->end_cause);
    if (!rc && (!row->task_id || !row->spec || !row->status))
        rc = ggi_error(GG_ESTORE, "task row %lld has NULL in a NOT NULL column",
                       (long long)row->seq);
    if (rc)
        ggi_store_task_row_free(row);
    return rc;
}

/* ---- open, migrate, close ---- */

/* Reads a one-value PRAGMA (integer) into *out. */
static int pragma_int(ggi_store *s, const char *sql, int *out, const char *what)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW)
        rc = fail(s, "%s '%s'", what, s->path);
    else
        *out = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc;
}

/* Runs SQL whose rows, if any, do not matter. */
static int exec_sql(ggi_store *s, const char *sql, const char *what)
{
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return fail(s, "%s '%s'", what, s->path);
    return 0;
}

/* Puts the database in WAL mode and checks that it really is (one try). */
static int set_wal_once(ggi_store *s)
{
    char mode[32] = "";
    for (int i = 0; i < 2; i++) {
        /* Ask first: a database already in WAL needs no change (and no exclusive lock). */
        const char *sql = i == 0 ? "PRAGMA journal_mode" : "PRAGMA journal_mode=WAL";
        sqlite3_stmt *st = NULL;
        int rc = 0;
        if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK ||
            sqlite3_step(st) != SQLITE_ROW) {
            rc = fail(s, "opening database '%s'", s->path);
        } else {
            const unsigned char *t = sqlite3_column_text(st, 0);
            snprintf(mode, sizeof mode, "%s", t ? (const char *)t : "");
        }
        sqlite3_finalize(st);
        if (rc)
            return rc;
        if (strcasecmp(mode, "wal") == 0)
            return 0;
    }
    return ggi_error(GG_ESTORE,
                     "database '%s' cannot use WAL journal mode (it stays in '%s' mode): WAL "
                     "needs a file on a local filesystem that supports shared memory maps",
                     s->path, mode);
}

/*
 * Switching a new file to WAL takes an exclusive lock, and SQLite reports SQLITE_BUSY at
 * once (without its busy handler) when another connection is opening the same file at that
 * moment; so retry here, for as long as the busy timeout.
 */
static int set_wal(ggi_store *s)
{
    double deadline = ggi_now_ms() + BUSY_TIMEOUT_MS;
    for (;;) {
        int rc = set_wal_once(s);
        if (rc != GG_EBUSY || ggi_now_ms() >= deadline)
            return rc;
        ggi_sleep_ms(5);
    }
}

static int refuse_newer(ggi_store *s, int version)
{
    return ggi_error(GG_EVERSION,
                     "database '%s' has schema version %d, newer than version %d that this "
                     "library knows; use a newer libgryphgen",
                     s->path, version, GGI_STORE_SCHEMA_VERSION);
}

/* Applies every migration the file lacks, each in its own transaction. */
static int migrate(ggi_store *s)
{
    const int target = GGI_STORE_SCHEMA_VERSION;
    for (;;) {
        int v = 0;
        int rc = pragma_int(s, "PRAGMA user_version", &v, "reading the schema version of");
        if (rc)
            return rc;
        if (v > target)
            return refuse_newer(s, v);
        if (v < 0)
            return ggi_error(GG_ESTORE, "database '%s' has an invalid schema version %d",
                             s->path, v);
        if (v == target)
            return 0;
        /*
         * Re-read the version inside the write transaction: another connection may have
         * migrated between our read and our lock.
         */
        rc = run_simple(s, Q_BEGIN, "starting the schema migration");
        if (rc)
            return ggi_error_wrap("database '%s': ", s->path);
        int now = 0;
        rc = pragma_int(s, "PRAGMA user_version", &now, "reading the schema version of");
        if (!rc && now == v) {
            char bump[64];
            snprintf(bump, sizeof bump, "PRAGMA user_version = %d", v + 1);
            if (sqlite3_exec(s->db, migrations[v], NULL, NULL, NULL) != SQLITE_OK ||
                sqlite3_exec(s->db, bump, NULL, NULL, NULL) != SQLITE_OK)
                rc = fail(s, "migrating database '%s' to schema version %d", s->path, v + 1);
        }
        if (rc) {
            rollback_quiet(s);
            return rc;
        }
        rc = commit_or_rollback(s);
        if (rc)
            return ggi_error_wrap("migrating database '%s' to schema version %d: ", s->path,
                                  v + 1);
    }
}

/* After a failed open: adds why the files cannot be used (a read-only filesystem, a
 * missing directory, permissions) to SQLite's "unable to open database file". */
static void explain_open_failure(ggi_store *s)
{
    int kind = ggi_store_fault_kind(s->fault);
    if (kind != SQLITE_CANTOPEN && kind != SQLITE_READONLY && kind != SQLITE_PERM &&
        kind != SQLITE_IOERR && kind != SQLITE_AUTH)
        return;
    char why[1024], was[1024];
    if (!ggi_dbfile_explain(s->path, why, sizeof why)[0])
        return;
    int code = gg_error_last_code();
    snprintf(was, sizeof was, "%s", gg_error_last());
    ggi_error(code ? code : GG_ESTORE, "%s (%s)", was, why);
}

/*
 * The store's WAL hook, in place of SQLite's automatic checkpoint (also a WAL hook): after
 * each commit the recorder reads the frames it wrote (replica.c), then the WAL is
 * checkpointed, by the checkpointer's thread when there is one, else here as SQLite would.
 */
static int on_wal(void *arg, sqlite3 *db, const char *name, int n_pages)
{
    ggi_store *s = arg;
    if (s->replica)
        ggi_replica_on_wal(s->replica, n_pages);
    if (s->checkpointer)
        return ggi_checkpointer_on_commit(s->checkpointer, db, name, n_pages);
    if (n_pages >= WAL_CHECKPOINT_PAGES)
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return SQLITE_OK;
}

/* Opens s->db on s->path, in WAL mode, configured and migrated; 0 or an error code. */
static int open_db(ggi_store *s)
{
    const char *path = s->path;
    /* One thread uses a connection at a time, so SQLite's per-connection mutex is not needed. */
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
#ifdef SQLITE_OPEN_EXRESCODE
    flags |= SQLITE_OPEN_EXRESCODE;
#endif
    /* A new database is its owner's only (its -wal and -shm get the same mode). */
    int rc = ggi_dbfile_create_private(path);
    if (rc != GG_OK)
        return rc;
    rc = sqlite3_open_v2(path, &s->db, flags, NULL);
    if (rc != SQLITE_OK) {
        if (s->db)
            rc = fail(s, "opening database '%s'", path);
        else
            rc = ggi_error(GG_ENOMEM, "opening database '%s': %s", path, sqlite3_errstr(rc));
        explain_open_failure(s);
        return rc;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    /*
     * Look at the schema version before anything else: a file that is not a database fails
     * here, and a database newer than this library is refused before it is changed at all
     * (not even switched to WAL).
     */
    int version = 0;
    rc = pragma_int(s, "PRAGMA user_version", &version, "opening database");
    /* SQLite opens a file it may not write read-only, without a word; every write would
     * then fail. Say so now, and why. */
    if (!rc && sqlite3_db_readonly(s->db, "main") == 1) {
        char why[1024];
        ggi_dbfile_explain(path, why, sizeof why);
        rc = ggi_error(GG_ESTORE, "database '%s' is read-only: %s", path,
                       why[0] ? why : "SQLite could open it for reading only");
    }
    if (!rc && version > GGI_STORE_SCHEMA_VERSION)
        rc = refuse_newer(s, version);
    if (!rc)
        rc = set_wal(s);
    if (!rc)
        /* Pages read through a bounded memory map rather than a pread each (the writer
         * re-reads the pages it just changed); 64 MiB keeps the resident size bounded. */
        rc = exec_sql(s, "PRAGMA synchronous=NORMAL; PRAGMA mmap_size=67108864",
                      "configuring database");
    /* Checkpoints every 4096 pages (16 MiB with 4 KiB pages) rather than SQLite's 1000: the
     * pages every commit touches (index interiors, the tables' last leaves) are copied to
     * the database once per checkpoint, so fewer checkpoints copy fewer pages per task. The
     * store's own hook does it (on_wal). */
    if (!rc)
        sqlite3_wal_hook(s->db, on_wal, s);
    /* Foreign keys are turned on after the migrations: a migration that rebuilds a table
     * (drop and rename) must not have the drop checked against the rows that refer to it. */
    if (!rc)
        rc = migrate(s);
    if (!rc)
        rc = exec_sql(s, "PRAGMA foreign_keys=ON", "configuring database");
    if (rc)
        explain_open_failure(s);
    return rc;
}

int ggi_store_open(ggi_store **out, const char *path)
{
    if (!out)
        return ggi_error(GG_EINVAL, "ggi_store_open: out is NULL");
    *out = NULL;
    if (!path || !*path)
        return ggi_error(GG_EINVAL, "ggi_store_open: the database path is empty");
    ggi_store *s = calloc(1, sizeof *s);
    if (!s)
        return ggi_error(GG_ENOMEM, "out of memory opening database '%s'", path);
    s->path = ggi_strdup(path);
    if (!s->path) {
        free(s);
        return ggi_error(GG_ENOMEM, "out of memory opening database '%s'", path);
    }
    int rc = open_db(s);
    if (rc) {
        ggi_store_close(&s);
        return rc;
    }
    *out = s;
    return 0;
}

/* Closes the connection (its statements, the checkpointer, a recorder), keeping s. */
static void close_db(ggi_store *s)
{
    ggi_checkpointer_stop(&s->checkpointer);
    ggi_replica_free(s->replica);
    s->replica = NULL;
    for (int i = 0; i < Q_COUNT_; i++) {
        sqlite3_finalize(s->stmts[i]);
        s->stmts[i] = NULL;
        s->in_use[i] = 0;
    }
    /* close_v2 so that a statement leaked by a bug cannot keep the handle from closing. */
    if (s->db)
        sqlite3_close_v2(s->db);
    s->db = NULL;
    counts_forget(s);
}

int ggi_store_release(ggi_store *s)
{
    if (!s || !s->db)
        return ggi_error(GG_EINVAL, "ggi_store_release: no open store");
    if (!sqlite3_get_autocommit(s->db))
        return ggi_error(GG_ESTATE, "ggi_store_release: a transaction is open");
    s->released_checkpointer = s->checkpointer != NULL;
    ggi_checkpointer_stop(&s->checkpointer);
    /* Every page into the file and the WAL emptied, so that what is written into the file
     * afterwards is not hidden by frames. */
    int log = -1, done = -1;
    if (sqlite3_wal_checkpoint_v2(s->db, "main", SQLITE_CHECKPOINT_TRUNCATE, &log, &done) !=
        SQLITE_OK)
        return fail(s, "emptying the WAL of '%s'", s->path);
    close_db(s);
    return 0;
}

int ggi_store_reopen(ggi_store *s)
{
    if (!s)
        return ggi_error(GG_EINVAL, "ggi_store_reopen: s is NULL");
    if (s->db)
        return 0;
    int rc = open_db(s);
    if (rc) {
        close_db(s);
        return rc;
    }
    if (s->released_checkpointer)
        rc = ggi_checkpointer_start(s->db, s->path, WAL_CHECKPOINT_PAGES, &s->checkpointer);
    return rc;
}

void ggi_store_close(ggi_store **ps)
{
    if (!ps || !*ps)
        return;
    ggi_store *s = *ps;
    close_db(s);
    free(s->path);
    free(s);
    *ps = NULL;
}

int ggi_store_checkpoint_in_background(ggi_store *s)
{
    if (!s)
        return ggi_error(GG_EINVAL, "ggi_store_checkpoint_in_background: s is NULL");
    if (s->checkpointer)
        return GG_OK;
    return ggi_checkpointer_start(s->db, s->path, WAL_CHECKPOINT_PAGES, &s->checkpointer);
}

struct sqlite3 *ggi_store_sqlite(ggi_store *s)
{
    return s ? s->db : NULL;
}

int ggi_store_set_busy_timeout(ggi_store *s, int ms)
{
    if (!s || ms < 0)
        return ggi_error(GG_EINVAL, "ggi_store_set_busy_timeout: bad argument");
    sqlite3_busy_timeout(s->db, ms);
    return 0;
}

/* ---- transactions ---- */

int ggi_store_in_transaction(ggi_store *s)
{
    return s && !sqlite3_get_autocommit(s->db);
}

int ggi_store_begin(ggi_store *s)
{
    if (!s)
        return ggi_error(GG_EINVAL, "ggi_store_begin: s is NULL");
    if (!sqlite3_get_autocommit(s->db))
        return ggi_error(GG_ESTATE, "a transaction is already open (transactions do not nest)");
    counts_forget(s); /* left by a transaction SQLite rolled back by itself */
    s->fault = 0;
    int rc = run_simple(s, Q_BEGIN, "starting a transaction");
    if (rc == 0 && s->replica)
        ggi_replica_on_begin(s->replica);
    return rc;
}

int ggi_store_commit(ggi_store *s)
{
    if (!s)
        return ggi_error(GG_EINVAL, "ggi_store_commit: s is NULL");
    if (sqlite3_get_autocommit(s->db))
        return ggi_error(GG_ESTATE, "no transaction is open to commit (an earlier error may "
                                    "have rolled it back)");
    return commit_or_rollback(s);
}

int ggi_store_rollback(ggi_store *s)
{
    if (!s)
        return ggi_error(GG_EINVAL, "ggi_store_rollback: s is NULL");
    counts_forget(s);
    if (s->replica)
        ggi_replica_after_commit(s->replica, 0);
    if (sqlite3_get_autocommit(s->db))
        return 0;
    return run_simple(s, Q_ROLLBACK, "rolling back");
}

/* ---- tasks ---- */

int ggi_store_recover(ggi_store *s, int *out_n)
{
    if (out_n)
        *out_n = 0;
    if (!s)
        return ggi_error(GG_EINVAL, "ggi_store_recover: s is NULL");
    int own;
    int rc = tx_begin(s, &own);
    if (rc)
        return ggi_error_wrap("recovering running tasks: ");
    /* Only when the counts say some task was running: finding them reads every task not
     * ended. */
    sqlite3_stmt *st;
    int64_t running = 0;
    rc = stmt_get(s, Q_RUNNING, &st);
    if (!rc) {
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW)
            running = sqlite3_column_int64(st, 0);
        else if (step != SQLITE_DONE)
            rc = fail(s, "recovering running tasks");
        stmt_put(s, Q_RUNNING, st);
    }
    if (!rc && running != 0)
        rc = run_simple(s, Q_RECOVER_LEGACY, "recovering running tasks");
    if (!rc && running != 0)
        rc = stmt_get(s, Q_RECOVER, &st);
    if (!rc && running != 0) {
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = fail(s, "recovering running tasks");
        } else {
            ggi_store_count_move(s, GGI_ST_RUNNING, GGI_ST_QUEUED, sqlite3_changes(s->db));
            if (out_n)
                *out_n = sqlite3_changes(s->db);
        }
        stmt_put(s, Q_RECOVER, st);
    }
    rc = tx_end(s, own, rc);
    if (rc && out_n)
        *out_n = 0;
    return rc;
}

/* Puts the task seq (not ended) in the queue; *added says whether it was not there. */
static int enqueue(ggi_store *s, int64_t seq, int *added)
{
    sqlite3_stmt *st;
    int rc = stmt_get(s, Q_ENQUEUE, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, seq);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = fail(s, "queueing task %lld", (long long)seq);
    else if (added)
        *added = sqlite3_changes(s->db) > 0;
    stmt_put(s, Q_ENQUEUE, st);
    return rc;
}

/* Stores the spec of the task just inserted as seq (task_specs), in the open transaction.
 * GG_ESTORE when the row exists or seq is no task. */
static int spec_insert(ggi_store *s, int64_t seq, const char *spec_json)
{
    sqlite3_stmt *st;
    int rc = stmt_get(s, Q_SPEC_INSERT, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_text(st, 2, spec_json, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = fail(s, "storing the spec of task %lld", (long long)seq);
    stmt_put(s, Q_SPEC_INSERT, st);
    return rc;
}

/* Looks task_id up: *seq 0 when there is none; GG_EEXIST when it has another spec_hash. */
static int task_find(ggi_store *s, const char *task_id, const char *spec_hash, int64_t *seq)
{
    *seq = 0;
    sqlite3_stmt *st;
    int rc = stmt_get(s, Q_TASK_FIND, &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, task_id, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        const unsigned char *h = sqlite3_column_text(st, 1);
        *seq = sqlite3_column_int64(st, 0);
        if (!h || strcmp((const char *)h, spec_hash) != 0)
            rc = ggi_error(GG_EEXIST, "task '%s' already exists with a different spec "
                                      "(hash %s, not %s)",
                           task_id, h ? (const char *)h : "?", spec_hash);
    } else if (step != SQLITE_DONE) {
        rc = fail(s, "inserting task '%s'", task_id);
    }
    stmt_put(s, Q_TASK_FIND, st);
    return rc;
}

/* Inserts the task row, its spec and its queue entry; *seq is the new row. */
static int task_add(ggi_store *s, const ggi_task_new *t, int64_t *seq)
{
    sqlite3_stmt *st;
    int rc = stmt_get(s, Q_TASK_INSERT, &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, t->task_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, t->spec_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, t->priority);
    sqlite3_bind_double(st, 4, t->now);
    if (t->language)
        sqlite3_bind_text(st, 5, t->language, -1, SQLITE_STATIC);
    if (t->language && t->needs)
        sqlite3_bind_text(st, 6, t->needs, -1, SQLITE_STATIC);
    if (t->submitter)
        sqlite3_bind_text(st, 7, t->submitter, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = fail(s, "inserting task '%s'", t->task_id);
    else
        *seq = sqlite3_last_insert_rowid(s->db);
    stmt_put(s, Q_TASK_INSERT, st);
    if (!rc)
        rc = spec_insert(s, *seq, t->spec_json);
    if (!rc)
        rc = enqueue(s, *seq, NULL);
    if (!rc)
        ggi_store_count_move(s, NULL, GGI_ST_QUEUED, 1);
    return rc;
}

int ggi_store_task_insert(ggi_store *s, const ggi_task_new *t, int64_t *out_seq,
                          int *out_existing)
{
    if (out_seq)
        *out_seq = 0;
    if (out_existing)
        *out_existing = 0;
    if (!s || !t || !t->task_id || !*t->task_id || !t->spec_json || !t->spec_hash)
        return ggi_error(GG_EINVAL, "ggi_store_task_insert: missing argument");
    int own;
    int rc = tx_begin(s, &own);
    if (rc)
        return ggi_error_wrap("inserting task '%s': ", t->task_id);
    int64_t seq = 0;
    rc = task_find(s, t->task_id, t->spec_hash, &seq);
    int existing = !rc && seq > 0;
    if (!rc && !existing)
        rc = task_add(s, t, &seq);
    rc = tx_end(s, own, rc);
    if (rc)
        return rc;
    if (out_seq)
        *out_seq = seq;
    if (out_existing)
        *out_existing = existing;
    return GG_OK;
}

int ggi_store_task_get(ggi_store *s, const char *task_id, ggi_task_row *row)
{
    if (!s || !task_id || !row)
        return ggi_error(GG_EINVAL, "ggi_store_task_get: missing argument");
    memset(row, 0, sizeof *row);
    sqlite3_stmt *st;
    int rc = stmt_get(s, Q_TASK_GET, &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, task_id, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        rc = row_read(st, row);
    else if (step == SQLITE_DONE)
        rc = ggi_error(GG_ENOTFOUND, "no task '%s'", task_id);
    else
        rc = fail(s, "reading task '%s'", task_id);
    stmt_put(s, Q_TASK_GET, st);
    return rc;
}

int ggi_store_queue_take(ggi_store *s, const char *submitter, int priority, int64_t last_seq,
                         int n)
{
    sqlite3_stmt *st;
    int rc = stmt_get(s, Q_CLAIM_TAKE, &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, submitter, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, -priority);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)last_seq);
    int taken = 0;
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = fail(s, "claiming tasks");
    else
        taken = sqlite3_changes(s->db);
    stmt_put(s, Q_CLAIM_TAKE, st);
    /* More only when entries of ended tasks were left behind (they go too). */
    if (!rc && taken < n)
        rc = ggi_error(GG_ESTORE, "claiming tasks: %d queue entries taken for %d tasks read",
                       taken, n);
    if (!rc)
        ggi_store_count_move(s, GGI_ST_QUEUED, GGI_ST_RUNNING, n);
    return rc;
}

/* After an UPDATE by seq changed nothing: GG_ENOTFOUND or the task's status in *status. */
static int task_status(ggi_store *s, int64_t seq, char *status, size_t size)
{
    sqlite3_stmt *st;
    int rc = stmt_get(s, Q_TASK_STATUS, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        snprintf(status, size, "%s", t ? (const char *)t : "");
    } else if (step == SQLITE_DONE) {
        rc = ggi_error(GG_ENOTFOUND, "no task with seq %lld", (long long)seq);
    } else {
        rc = fail(s, "reading the status of task %lld", (long long)seq);
    }
    stmt_put(s, Q_TASK_STATUS, st);
    return rc;
}

/* After an attempt's row is in: counted, and the task's attempt count set when asked. */
static int attempt_added(ggi_store *s, const ggi_attempt_in *a)
{
    ggi_store_count_move(s, NULL, "#attempts", 1);
    if (!a->count)
        return 0;
    sqlite3_stmt *st;
    int rc = stmt_get(s, Q_TASK_SET_ATTEMPTS, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)a->seq);
    sqlite3_bind_int(st, 2, a->n);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = fail(s, "counting attempt %d of task %lld", a->n, (long long)a->seq);
    stmt_put(s, Q_TASK_SET_ATTEMPTS, st);
    return rc;
}

int ggi_store_attempt_add(ggi_store *s, int64_t seq, int n, const char *code, int passed,
                          const char *record_json, double now, int count)
{
    if (!s || !record_json || n < 1)
        return ggi_error(GG_EINVAL, "ggi_store_attempt_add: bad argument (n must be >= 1, "
                                    "record_json set)");
    int own;
    int rc = tx_begin(s, &own);
    if (rc)
        return ggi_error_wrap("recording attempt %d of task %lld: ", n, (long long)seq);
    sqlite3_stmt *st;
    rc = stmt_get(s, Q_ATTEMPT_INSERT, &st);
    if (!rc) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
        sqlite3_bind_int(st, 2, n);
        sqlite3_bind_int(st, 3, passed ? 1 : 0);
        if (code)
            sqlite3_bind_text(st, 4, code, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, record_json, -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 6, now);
        if (sqlite3_step(st) != SQLITE_DONE) {
            if (is_constraint(s, SQLITE_CONSTRAINT_PRIMARYKEY))
                rc = ggi_error(GG_EEXIST, "attempt %d of task %lld is already recorded", n,
                               (long long)seq);
            else if (is_constraint(s, SQLITE_CONSTRAINT_FOREIGNKEY))
                rc = ggi_error(GG_ENOTFOUND, "recording attempt %d: no task with seq %lld", n,
                               (long long)seq);
            else
                rc = fail(s, "recording attempt %d of task %lld", n, (long long)seq);
        }
        stmt_put(s, Q_ATTEMPT_INSERT, st);
    }
    if (!rc) {
        ggi_attempt_in a = { .seq = seq, .n = n, .count = count };
        rc = attempt_added(s, &a);
    }
    return tx_end(s, own, rc);
}

_Static_assert(GGI_ATTEMPT_ROWS == 16, "Q_ATTEMPT_INSERT_ROWS has four times ROWS4");

int ggi_store_attempts_add(ggi_store *s, const ggi_attempt_in *v, int n,
                           void (*failed)(void *user, const ggi_attempt_in *a), void *user)
{
    if (!s || (n > 0 && !v))
        return ggi_error(GG_EINVAL, "ggi_store_attempts_add: bad argument");
    if (sqlite3_get_autocommit(s->db))
        return ggi_error(GG_EINVAL, "ggi_store_attempts_add: no transaction is open");
    int i = 0;
    while (i < n) {
        int whole = 0;
        if (n - i >= GGI_ATTEMPT_ROWS) {
            int ok = 1;
            for (int k = 0; k < GGI_ATTEMPT_ROWS; k++)
                ok = ok && v[i + k].record_json && v[i + k].n >= 1;
            sqlite3_stmt *st;
            if (ok && stmt_get(s, Q_ATTEMPT_INSERT_ROWS, &st) == 0) {
                for (int k = 0; k < GGI_ATTEMPT_ROWS; k++) {
                    const ggi_attempt_in *a = &v[i + k];
                    sqlite3_bind_int64(st, 6 * k + 1, (sqlite3_int64)a->seq);
                    sqlite3_bind_int(st, 6 * k + 2, a->n);
                    sqlite3_bind_int(st, 6 * k + 3, a->passed ? 1 : 0);
                    if (a->code)
                        sqlite3_bind_text(st, 6 * k + 4, a->code, -1, SQLITE_STATIC);
                    sqlite3_bind_text(st, 6 * k + 5, a->record_json, -1, SQLITE_STATIC);
                    sqlite3_bind_double(st, 6 * k + 6, a->now);
                }
                whole = sqlite3_step(st) == SQLITE_DONE;
                stmt_put(s, Q_ATTEMPT_INSERT_ROWS, st);
            }
        }
        if (whole) {
            for (int k = 0; k < GGI_ATTEMPT_ROWS; k++, i++)
                if (attempt_added(s, &v[i]) != 0 && failed)
                    failed(user, &v[i]);
        } else {
            /* Fewer than a statement's worth left, or the statement failed (SQLite undid
             * it whole): one at a time, so only a bad one fails. */
            int end = n - i >= GGI_ATTEMPT_ROWS ? i + GGI_ATTEMPT_ROWS : n;
            for (; i < end; i++) {
                const ggi_attempt_in *a = &v[i];
                if (ggi_store_attempt_add(s, a->seq, a->n, a->code, a->passed, a->record_json,
                                          a->now, a->count) != 0 && failed)
                    failed(user, a);
                if (sqlite3_get_autocommit(s->db))
                    break;
            }
        }
        if (sqlite3_get_autocommit(s->db))
            return ggi_error(GG_ESTORE, "recording attempts: the transaction was rolled back");
    }
    return 0;
}

int ggi_store_attempts_each(ggi_store *s, int64_t seq,
                            int (*fn)(void *user, int n, int passed, const char *record_json),
                            void *user)
{
    if (!s || !fn)
        return ggi_error(GG_EINVAL, "ggi_store_attempts_each: missing argument");
    sqlite3_stmt *st;
    int rc = stmt_get(s, Q_ATTEMPTS_EACH, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
    int step = SQLITE_DONE;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *rec = sqlite3_column_text(st, 2);
        if (!rec) {
            rc = ggi_error(GG_ENOMEM, "out of memory reading attempts of task %lld",
                           (long long)seq);
            break;
        }
        rc = fn(user, sqlite3_column_int(st, 0), sqlite3_column_int(st, 1),
                (const char *)rec);
        if (rc)
            break;
    }
    if (!rc && step != SQLITE_DONE)
        rc = fail(s, "reading attempts of task %lld", (long long)seq);
    stmt_put(s, Q_ATTEMPTS_EACH, st);
    return rc;
}

static int is_end_status(const char *status)
{
    return status && (strcmp(status, GGI_ST_PASSED) == 0 || strcmp(status, GGI_ST_FAILED) == 0 ||
                      strcmp(status, GGI_ST_ERROR) == 0 ||
                      strcmp(status, GGI_ST_CANCELLED) == 0);
}

int ggi_store_task_end(ggi_store *s, int64_t seq, const char *status, const char *reason,
                       double started_at, double now, int attempts, int claimed)
{
    return ggi_store_task_end_cause(s, seq, status, NULL, reason, started_at, now, attempts,
                                    claimed);
}

int ggi_store_task_end_cause(ggi_store *s, int64_t seq, const char *status, const char *cause,
                             const char *reason, double started_at, double now, int attempts,
                             int claimed)
{
    if (!s)
        return ggi_error(GG_EINVAL, "ggi_store_task_end: s is NULL");
    if (!is_end_status(status))
        return ggi_error(GG_EINVAL, "finishing task %lld: '%s' is not an end status",
                         (long long)seq, status ? status : "(null)");
    int own;
    int rc = tx_begin(s, &own);
    if (rc)
        return ggi_error_wrap("finishing task %lld: ", (long long)seq);
    sqlite3_stmt *st;
    int changed = 0;
    rc = stmt_get(s, Q_TASK_FINISH, &st);
    if (!rc) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
        sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
        if (reason)
            sqlite3_bind_text(st, 3, reason, -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 4, now);
        if (attempts >= 0)
            sqlite3_bind_int(st, 5, attempts);
        if (started_at > 0)
            sqlite3_bind_double(st, 6, started_at);
        if (cause)
            sqlite3_bind_text(st, 7, cause, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = fail(s, "finishing task %lld", (long long)seq);
        else
            changed = sqlite3_changes(s->db);
        stmt_put(s, Q_TASK_FINISH, st);
    }
    /* It ends from running when it was claimed, else from queued when its queue entry is
     * there (which goes). */
    int was_queued = 0;
    if (!rc && changed && !claimed) {
        rc = stmt_get(s, Q_DEQUEUE, &st);
        if (!rc) {
            sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
            if (sqlite3_step(st) != SQLITE_DONE)
                rc = fail(s, "finishing task %lld", (long long)seq);
            else
                was_queued = sqlite3_changes(s->db) > 0;
            stmt_put(s, Q_DEQUEUE, st);
        }
    }
    if (!rc && changed)
        ggi_store_count_move(s, was_queued ? GGI_ST_QUEUED : GGI_ST_RUNNING, status, 1);
    if (!rc && !changed) {
        char from[32];
        rc = task_status(s, seq, from, sizeof from);
        if (rc == GG_ENOTFOUND)
            rc = ggi_error(GG_ENOTFOUND, "finishing task: no task with seq %lld",
                           (long long)seq);
        else if (!rc)
            rc = ggi_error(GG_ESTATE, "task %lld has already ended (%s): a task ends once",
                           (long long)seq, from);
    }
    return tx_end(s, own, rc);
}

int ggi_store_task_requeue(ggi_store *s, int64_t seq, double started_at)
{
    if (!s)
        return ggi_error(GG_EINVAL, "ggi_store_task_requeue: s is NULL");
    int own;
    int rc = tx_begin(s, &own);
    if (rc)
        return ggi_error_wrap("requeueing task %lld: ", (long long)seq);
    sqlite3_stmt *st;
    int changed = 0, added = 0;
    rc = stmt_get(s, Q_TASK_REQUEUE, &st);
    if (!rc) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
        if (started_at > 0)
            sqlite3_bind_double(st, 2, started_at);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = fail(s, "requeueing task %lld", (long long)seq);
        else
            changed = sqlite3_changes(s->db);
        stmt_put(s, Q_TASK_REQUEUE, st);
    }
    /* Already queued is fine (idempotent); an ended task cannot be requeued. */
    if (!rc && changed)
        rc = enqueue(s, seq, &added);
    if (!rc && added)
        ggi_store_count_move(s, GGI_ST_RUNNING, GGI_ST_QUEUED, 1);
    if (!rc && !changed) {
        char status[32];
        rc = task_status(s, seq, status, sizeof status);
        if (!rc)
            rc = ggi_error(GG_ESTATE, "task %lld is '%s', not running: it cannot be requeued",
                           (long long)seq, status);
    }
    return tx_end(s, own, rc);
}

/* ---- events and counts ---- */

int ggi_store_event_insert(ggi_store *s, int64_t task_seq, const char *kind,
                           const char *data_json, double now)
{
    if (!s || !kind || !*kind)
        return ggi_error(GG_EINVAL, "ggi_store_event_insert: missing argument");
    int own;
    int rc = tx_begin(s, &own);
    if (rc)
        return ggi_error_wrap("recording event '%s': ", kind);
    sqlite3_stmt *st;
    rc = stmt_get(s, Q_EVENT_INSERT, &st);
    if (!rc) {
        sqlite3_bind_double(st, 1, now);
        if (task_seq > 0)
            sqlite3_bind_int64(st, 2, (sqlite3_int64)task_seq);
        sqlite3_bind_text(st, 3, kind, -1, SQLITE_STATIC);
        if (data_json)
            sqlite3_bind_text(st, 4, data_json, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = fail(s, "recording event '%s'", kind);
        stmt_put(s, Q_EVENT_INSERT, st);
    }
    return tx_end(s, own, rc);
}

int ggi_store_counts_get(ggi_store *s, ggi_store_counts *out)
{
    if (!s || !out)
        return ggi_error(GG_EINVAL, "ggi_store_counts_get: missing argument");
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st;
    int rc = stmt_get(s, Q_COUNTS, &st);
    if (rc)
        return rc;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(st, 0);
        int64_t v = sqlite3_column_int64(st, 1);
        if (!k)
            continue;
        if (strcmp(k, GGI_ST_QUEUED) == 0)
            out->queued = v;
        else if (strcmp(k, GGI_ST_RUNNING) == 0)
            out->running = v;
        else if (strcmp(k, GGI_ST_PASSED) == 0)
            out->passed = v;
        else if (strcmp(k, GGI_ST_FAILED) == 0)
            out->failed = v;
        else if (strcmp(k, GGI_ST_ERROR) == 0)
            out->error = v;
        else if (strcmp(k, GGI_ST_CANCELLED) == 0)
            out->cancelled = v;
        else if (strcmp(k, "#attempts") == 0)
            out->attempts = v;
    }
    if (step != SQLITE_DONE) {
        rc = fail(s, "counting tasks");
        memset(out, 0, sizeof *out);
    }
    stmt_put(s, Q_COUNTS, st);
    if (!rc && !sqlite3_get_autocommit(s->db)) {
        /* This connection's open transaction sees its own changes. */
        int64_t *f[N_COUNTS] = { &out->queued, &out->running, &out->passed, &out->failed,
                                 &out->error, &out->cancelled, &out->attempts };
        for (int i = 0; i < N_COUNTS; i++)
            *f[i] += s->pending[i];
    }
    return rc;
}

int ggi_store_events_count(ggi_store *s, int64_t *out)
{
    if (!s || !out)
        return ggi_error(GG_EINVAL, "ggi_store_events_count: missing argument");
    *out = 0;
    sqlite3_stmt *st;
    int rc = stmt_get(s, Q_EVENTS_COUNT, &st);
    if (rc)
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else
        rc = fail(s, "counting events");
    stmt_put(s, Q_EVENTS_COUNT, st);
    return rc;
}

int ggi_store_tokens_spent(ggi_store *s, long long *out)
{
    if (!s || !out)
        return ggi_error(GG_EINVAL, "ggi_store_tokens_spent: missing argument");
    *out = 0;
    sqlite3_stmt *st;
    int rc = stmt_get(s, Q_TOKENS_SPENT, &st);
    if (rc)
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW) {
        double t = sqlite3_column_double(st, 0);
        *out = t > 0 && t < 9e18 ? (long long)t : 0;
    } else {
        rc = fail(s, "summing the tokens spent");
    }
    stmt_put(s, Q_TOKENS_SPENT, st);
    return rc;
}
