/*
 * grid_store.c - the grid's part of the database (schema versions 2 to 6): tasks by submitter for
 * fair claiming, nodes with their quarantine, and per node and language scores. Runs on the
 * scheduler's connection (inside its group-commit transaction when one is open), through
 * statements prepared once.
 */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "orq.h"

enum {
    G_SUBMITTER_NEXT,
    G_CLAIM,
    G_QUEUED,
    G_NODE_SEEN,
    G_NODE_QUAR,
    G_NODE_QUAR_GET,
    G_SCORE_LOAD,
    G_SCORE_SAVE,
    G_SCORES_OF,
    G_QUEUED_NEEDS,
    G_COUNT_
};

static const char *const sql[G_COUNT_] = {
    /* Distinct submitters by skipping along the queue's key, not by reading every entry. */
    [G_SUBMITTER_NEXT] = "SELECT submitter FROM queue WHERE submitter > ?1"
                         " ORDER BY submitter LIMIT 1",
    /* The submitter's next tasks in claim order: its queue entries in key order, each
     * task found by its rowid; the entries are then taken (ggi_store_queue_take), the task
     * rows are not written. */
    [G_CLAIM] = "SELECT tasks.seq, task_id,"
                " (SELECT spec FROM task_specs WHERE task_specs.seq = tasks.seq), tasks.priority,"
                " attempts, created_at, started_at, language, needs"
                " FROM queue CROSS JOIN tasks ON tasks.seq = queue.seq"
                " WHERE queue.submitter = ?1 AND tasks.status = 'queued'"
                " ORDER BY queue.priority, queue.seq LIMIT ?2",
    [G_QUEUED] = "SELECT coalesce(sum(n), 0) FROM task_counts"
                 " WHERE status = 'queued' OR status = 'running'",
    [G_NODE_SEEN] = "INSERT INTO nodes(name, caps, first_seen, last_seen) VALUES (?1, ?2, ?3, ?3)"
                    " ON CONFLICT(name) DO UPDATE SET caps = ?2, last_seen = ?3",
    [G_NODE_QUAR] = "UPDATE nodes SET quarantined_until = ?2 WHERE name = ?1",
    [G_NODE_QUAR_GET] = "SELECT quarantined_until FROM nodes WHERE name = ?1",
    [G_SCORE_LOAD] = "SELECT ok, latency_ms, n FROM node_scores WHERE node = ?1 AND language = ?2",
    [G_SCORE_SAVE] = "INSERT INTO node_scores(node, language, ok, latency_ms, n, updated_at)"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(node, language) DO UPDATE"
                     " SET ok = ?3, latency_ms = ?4, n = ?5, updated_at = ?6",
    [G_SCORES_OF] = "SELECT language, ok, latency_ms, n FROM node_scores WHERE node = ?1"
                    " ORDER BY updated_at DESC LIMIT ?2",
    /* What the queued tasks need (a scaler's demand: sched_demand.c), in key order. */
    [G_QUEUED_NEEDS] = "SELECT language, needs FROM queue CROSS JOIN tasks"
                       " ON tasks.seq = queue.seq WHERE tasks.status = 'queued' LIMIT ?1",
};

struct ggi_grid_db {
    ggi_store *store;
    sqlite3 *db;
    sqlite3_stmt *st[G_COUNT_];
};

static int fail(ggi_grid_db *g, const char *what)
{
    int code = sqlite3_errcode(g->db);
    ggi_store_note_fault(g->store, code);
    return ggi_error(code == SQLITE_BUSY || code == SQLITE_LOCKED ? GG_EBUSY : GG_ESTORE,
                     "%s: %s", what, sqlite3_errmsg(g->db));
}

static sqlite3_stmt *get(ggi_grid_db *g, int id)
{
    if (!g->st[id] &&
        sqlite3_prepare_v3(g->db, sql[id], -1, SQLITE_PREPARE_PERSISTENT, &g->st[id], NULL) !=
            SQLITE_OK) {
        fail(g, "preparing a statement");
        return NULL;
    }
    sqlite3_reset(g->st[id]);
    sqlite3_clear_bindings(g->st[id]);
    return g->st[id];
}

int ggi_grid_db_new(ggi_grid_db **out, ggi_store *s)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return ggi_error(GG_ENOMEM, "out of memory");
    (*out)->store = s;
    (*out)->db = ggi_store_sqlite(s);
    return GG_OK;
}

void ggi_grid_db_free(ggi_grid_db **pg)
{
    if (!pg || !*pg)
        return;
    for (int i = 0; i < G_COUNT_; i++)
        sqlite3_finalize((*pg)->st[i]);
    free(*pg);
    *pg = NULL;
}

int ggi_grid_submitters(ggi_grid_db *g, int max, char ***out, int *out_n)
{
    *out = NULL;
    *out_n = 0;
    char **v = calloc((size_t)max, sizeof *v);
    if (!v)
        return ggi_error(GG_ENOMEM, "out of memory");
    int n = 0, rc = GG_OK;
    const char *after = "";
    while (n < max) {
        sqlite3_stmt *st = get(g, G_SUBMITTER_NEXT);
        if (!st) {
            rc = GG_ESTORE;
            break;
        }
        sqlite3_bind_text(st, 1, after, -1, SQLITE_TRANSIENT);
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = fail(g, "listing submitters");
            break;
        }
        v[n] = ggi_strdup((const char *)sqlite3_column_text(st, 0));
        if (!v[n]) {
            rc = ggi_error(GG_ENOMEM, "out of memory");
            break;
        }
        after = v[n++];
    }
    if (g->st[G_SUBMITTER_NEXT])
        sqlite3_reset(g->st[G_SUBMITTER_NEXT]);
    if (rc) {
        for (int i = 0; i < n; i++)
            free(v[i]);
        free(v);
        return rc;
    }
    *out = v;
    *out_n = n;
    return GG_OK;
}

void ggi_claimed_release(ggi_claimed *c)
{
    free(c->mem);
    memset(c, 0, sizeof *c);
}

/* The same place in another copy of a block. */
static char *rebase(const char *p, const char *from, char *to)
{
    return p ? to + (p - from) : NULL;
}

int ggi_claimed_copy(const ggi_claimed *src, ggi_claimed *dst)
{
    *dst = *src;
    dst->mem = malloc(src->size);
    if (!dst->mem) {
        memset(dst, 0, sizeof *dst);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    memcpy(dst->mem, src->mem, src->size);
    ggi_task_row *r = &dst->row;
    r->task_id = rebase(src->row.task_id, src->mem, dst->mem);
    r->spec = rebase(src->row.spec, src->mem, dst->mem);
    r->status = rebase(src->row.status, src->mem, dst->mem);
    r->language = rebase(src->row.language, src->mem, dst->mem);
    r->needs = rebase(src->row.needs, src->mem, dst->mem);
    dst->submitter = rebase(src->submitter, src->mem, dst->mem);
    return GG_OK;
}

/* Copies a column's text (or nothing for NULL) into the block at *at; returns it or NULL. */
static char *put_col(sqlite3_stmt *st, int i, char **at)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    if (!t)
        return NULL;
    size_t n = (size_t)sqlite3_column_bytes(st, i);
    char *p = *at;
    memcpy(p, t, n);
    p[n] = 0;
    *at = p + n + 1;
    return p;
}

int ggi_grid_claim(ggi_grid_db *g, const char *submitter, int limit, double now,
                   ggi_claimed **rows, int *n, int *cap)
{
    if (limit <= 0)
        return GG_OK;
    if (*n + limit > *cap) {
        int ncap = *cap ? *cap : 64;
        while (ncap < *n + limit)
            ncap *= 2;
        ggi_claimed *p = realloc(*rows, (size_t)ncap * sizeof *p);
        if (!p)
            return ggi_error(GG_ENOMEM, "out of memory claiming tasks");
        *rows = p;
        *cap = ncap;
    }
    int first = *n, rc = GG_OK, step = SQLITE_DONE;
    sqlite3_stmt *st = get(g, G_CLAIM);
    if (!st)
        return GG_ESTORE;
    static const char running[] = "running";
    size_t sub_len = strlen(submitter) + 1;
    sqlite3_bind_text(st, 1, submitter, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, limit);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n - first >= limit || rc)
            continue; /* cannot happen (LIMIT); the statement still runs to its end */
        /* One block: task_id, spec, language, needs, status and the submitter. */
        size_t size = sizeof running + sub_len;
        for (int k = 1; k <= 8; k++)
            if (k == 1 || k == 2 || k == 7 || k == 8)
                size += (size_t)sqlite3_column_bytes(st, k) + 1;
        ggi_claimed *c = &(*rows)[*n];
        memset(c, 0, sizeof *c);
        c->mem = malloc(size);
        c->size = size;
        if (!c->mem) {
            rc = ggi_error(GG_ENOMEM, "out of memory claiming tasks");
            continue;
        }
        char *at = c->mem;
        ggi_task_row *r = &c->row;
        r->seq = sqlite3_column_int64(st, 0);
        r->task_id = put_col(st, 1, &at);
        /* A row without a spec (task_specs changed by hand) is claimed with spec NULL: the
         * scheduler ends it as an error rather than finding it at every claim. */
        r->spec = put_col(st, 2, &at);
        r->priority = sqlite3_column_int(st, 3);
        r->attempts = sqlite3_column_int(st, 4);
        r->created_at = sqlite3_column_double(st, 5);
        /* A task that ran before (and was requeued) keeps its first start. */
        r->started_at = sqlite3_column_type(st, 6) == SQLITE_NULL
                            ? now : sqlite3_column_double(st, 6);
        r->language = put_col(st, 7, &at);
        r->needs = put_col(st, 8, &at);
        memcpy(at, running, sizeof running);
        r->status = at;
        at += sizeof running;
        memcpy(at, submitter, sub_len);
        c->submitter = at;
        if (!r->task_id) {
            free(c->mem);
            c->mem = NULL;
            rc = ggi_error(GG_ESTORE, "task %lld has no id", (long long)r->seq);
            continue;
        }
        (*n)++;
    }
    if (!rc && step != SQLITE_DONE)
        rc = fail(g, "claiming tasks");
    sqlite3_reset(st);
    /* Taken after the scan, so no entry changes under the cursor that found it. */
    if (!rc && *n > first)
        rc = ggi_store_queue_take(g->store, submitter, (*rows)[*n - 1].row.priority,
                                  (*rows)[*n - 1].row.seq, *n - first);
    if (rc) {
        /* The caller rolls the transaction back (or the tasks stay claimed until the next
         * start requeues them): nothing is lost either way. */
        for (int i = first; i < *n; i++)
            ggi_claimed_release(&(*rows)[i]);
        *n = first;
    }
    return rc;
}

int ggi_grid_each_queued(ggi_grid_db *g, int max,
                         int (*fn)(void *user, const char *language, const char *needs),
                         void *user, int *scanned)
{
    *scanned = 0;
    sqlite3_stmt *st = get(g, G_QUEUED_NEEDS);
    if (!st)
        return ggi_error_wrap("reading the queue's needs: ");
    sqlite3_bind_int(st, 1, max);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        (*scanned)++;
        if (fn(user, (const char *)sqlite3_column_text(st, 0),
               (const char *)sqlite3_column_text(st, 1)))
            break;
    }
    rc = rc == SQLITE_DONE || rc == SQLITE_ROW ? GG_OK : fail(g, "reading the queue's needs");
    sqlite3_reset(st);
    return rc;
}

int ggi_grid_unfinished(ggi_grid_db *g, int64_t *out)
{
    *out = 0;
    sqlite3_stmt *st = get(g, G_QUEUED);
    if (!st)
        return GG_ESTORE;
    int rc = GG_OK;
    if (sqlite3_step(st) == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else
        rc = fail(g, "counting unfinished tasks");
    sqlite3_reset(st);
    return rc;
}

static int exec_done(ggi_grid_db *g, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st) == SQLITE_DONE ? GG_OK : fail(g, what);
    sqlite3_reset(st);
    return rc;
}

int ggi_grid_node_seen(ggi_grid_db *g, const char *name, const char *caps, double now)
{
    sqlite3_stmt *st = get(g, G_NODE_SEEN);
    if (!st)
        return GG_ESTORE;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, caps, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 3, now);
    return exec_done(g, st, "recording a node");
}

int ggi_grid_node_quarantine(ggi_grid_db *g, const char *name, double until)
{
    sqlite3_stmt *st = get(g, G_NODE_QUAR);
    if (!st)
        return GG_ESTORE;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 2, until);
    return exec_done(g, st, "quarantining a node");
}

int ggi_grid_node_quarantined_until(ggi_grid_db *g, const char *name, double *out)
{
    *out = 0;
    sqlite3_stmt *st = get(g, G_NODE_QUAR_GET);
    if (!st)
        return GG_ESTORE;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int step = sqlite3_step(st), rc = GG_OK;
    if (step == SQLITE_ROW)
        *out = sqlite3_column_double(st, 0);
    else if (step != SQLITE_DONE)
        rc = fail(g, "reading a node");
    sqlite3_reset(st);
    return rc;
}

int ggi_grid_score_load(ggi_grid_db *g, const char *node, const char *lang, double *ok,
                        double *lat_ms, long long *n)
{
    sqlite3_stmt *st = get(g, G_SCORE_LOAD);
    if (!st)
        return GG_ESTORE;
    sqlite3_bind_text(st, 1, node, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, lang, -1, SQLITE_STATIC);
    int step = sqlite3_step(st), rc = GG_OK;
    if (step == SQLITE_ROW) {
        *ok = sqlite3_column_double(st, 0);
        *lat_ms = sqlite3_column_double(st, 1);
        *n = sqlite3_column_int64(st, 2);
    } else {
        rc = step == SQLITE_DONE ? GG_ENOTFOUND : fail(g, "reading a score");
    }
    sqlite3_reset(st);
    return rc;
}

int ggi_grid_scores_load(ggi_grid_db *g, const char *node, int max,
                         void (*fn)(void *user, const char *lang, double ok, double lat_ms,
                                    long long n),
                         void *user)
{
    sqlite3_stmt *st = get(g, G_SCORES_OF);
    if (!st)
        return GG_ESTORE;
    sqlite3_bind_text(st, 1, node, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, max);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *lang = (const char *)sqlite3_column_text(st, 0);
        if (lang)
            fn(user, lang, sqlite3_column_double(st, 1), sqlite3_column_double(st, 2),
               sqlite3_column_int64(st, 3));
    }
    int rc = step == SQLITE_DONE ? GG_OK : fail(g, "reading scores");
    sqlite3_reset(st);
    return rc;
}

int ggi_grid_score_save(ggi_grid_db *g, const char *node, const char *lang, double ok,
                        double lat_ms, long long n, double now)
{
    sqlite3_stmt *st = get(g, G_SCORE_SAVE);
    if (!st)
        return GG_ESTORE;
    sqlite3_bind_text(st, 1, node, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, lang, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 3, ok);
    sqlite3_bind_double(st, 4, lat_ms);
    sqlite3_bind_int64(st, 5, n);
    sqlite3_bind_double(st, 6, now);
    return exec_done(g, st, "saving a score");
}
