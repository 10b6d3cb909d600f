/*
 * writer.h - the scheduler's writer thread: it runs one batch of database writes (attempts,
 * task ends, events, scores, quarantines) and a claim of queued tasks in one transaction,
 * while the scheduler goes on with the next burst of messages. The scheduler hands it a batch
 * and collects it when done; between the two it must not use the connection itself
 * (ggi_writer_wait first).
 */
#ifndef GGI_WRITER_H
#define GGI_WRITER_H

#include "orq.h"

typedef enum {
    GGI_OP_ATTEMPT,  /* ggi_store_attempt_add(seq, n, code, passed, text, ts, count) */
    GGI_OP_FINISH,   /* ggi_store_task_end(seq, status, reason (text), started (a), ts, count,
                      * claimed (n)) */
    GGI_OP_EVENT,    /* ggi_store_event_insert(seq, name, text, ts) */
    GGI_OP_SCORE,    /* ggi_grid_score_save(name, code (language), a, b, count, ts) */
    GGI_OP_QUARANTINE /* ggi_grid_node_quarantine(name, ts) */
} ggi_op_kind;

typedef struct ggi_op {
    ggi_op_kind kind;
    int64_t seq;
    int n, passed, count;
    double ts, a, b;
    char *code, *text, *name; /* owned */
    const char *status;       /* a static string */
    const char *cause;        /* a static string: why a task ended (GGI_END_*), or NULL */
} ggi_op;

/** What a batch claims: up to want tasks, shared fairly among the submitters with queued
 * tasks, starting with submitter number rr (mod their count). */
typedef struct ggi_claim_request {
    int want;
    unsigned rr;
} ggi_claim_request;

typedef struct ggi_batch {
    ggi_op *ops;
    int n_ops, cap_ops;
    ggi_claim_request claim;
    /* results, when done */
    int failed;               /* the writer gave up on the batch (a fault that retrying did
                               * not cure, or shutdown): none of its ops is durable */
    int fault;                /* then the primary SQLite code of the last try (ggi_store_fault) */
    char why[512];            /* and its error message */
    ggi_claimed *claimed;     /* n_claimed for the scheduler to read */
    int n_claimed, cap_claimed;
    int n_held;               /* claimed entries whose blocks the writer frees next time */
    int queue_empty;          /* the claim found fewer tasks than it wanted */
    unsigned long tag;        /* the scheduler's */
    int64_t repl_seq;         /* the replication sequence after its commit (replica.h) */
} ggi_batch;

typedef struct ggi_writer ggi_writer;

/** Starts the thread on the scheduler's connection (s) and grid statements (g). A batch that
 * fails is rolled back whole and written again: while another connection holds the lock,
 * for up to GGI_WRITER_LOCKED_MS (GRYPHGEN_DB_LOCK_WAIT_S, in seconds, overrides it: an
 * internal setting for tests); after any other fault (a full disk, an I/O error), up to
 * GGI_WRITER_TRIES times in all. Then (or, with a stop flag that is set, after
 * GGI_WRITER_TRIES tries either way) the writer gives up on it (failed). Repeated errors
 * are logged once with their count. */
#define GGI_WRITER_LOCKED_MS 120000.0
#define GGI_WRITER_TRIES 3
int ggi_writer_start(ggi_store *s, ggi_grid_db *g, const ggi_logger *log, ggi_writer **out);
/** Gives the writer the owner's stop flag (before the first batch): during a shutdown a
 * locked database is not waited for long. */
void ggi_writer_watch_stop(ggi_writer *w, const atomic_int *stopping);
/** Gives the writer a histogram (before the first batch) of how long each batch took to
 * write, tries included (metrics.h). */
struct ggi_hist;
void ggi_writer_observe(ggi_writer *w, struct ggi_hist *h);
/** Hands over a batch (the writer must be idle). */
void ggi_writer_submit(ggi_writer *w, ggi_batch *b);
/** Waits until the batch handed over is done (at once when idle); returns it, or NULL when
 * none was handed over. */
ggi_batch *ggi_writer_wait(ggi_writer *w);
/** Without waiting: 1 when the writer is idle (*done is then the batch it finished, or NULL
 * when none was handed over), 0 while it writes one. */
int ggi_writer_poll(ggi_writer *w, ggi_batch **done);

/** Waits for the current batch (then left to the caller) and stops the thread. */
void ggi_writer_stop(ggi_writer **pw);

/** Appends an op (its strings are taken); GG_ENOMEM (they are freed) when it cannot. */
/** Frees an op's strings (for one that is not appended). */
void ggi_op_free(ggi_op *op);
int ggi_batch_add(ggi_batch *b, const ggi_op *op);
/** Frees the ops and forgets the claimed rows (their blocks are the writer's to free when it
 * next writes this batch), keeping the arrays' room; tag is left alone. */
void ggi_batch_clear(ggi_batch *b);
/** Frees everything, claimed blocks too (the writer is stopped or idle). */
void ggi_batch_free(ggi_batch *b);

#endif
