/*
 * teststore.h - the store's tests reach it through the paths the product uses: a task goes
 * in with ggi_store_task_insert (as gg_orchestrator_submit and the grid's submit do) and is
 * claimed with ggi_grid_claim (as the scheduler's writer does), here for the submitter
 * "local" that embedded submissions get. test_tasks_claim hands the claimed tasks back as
 * ggi_task_row values with strings of their own (free with ggi_store_task_row_free).
 */
#ifndef GG_TESTSTORE_H
#define GG_TESTSTORE_H

#include <stdlib.h>
#include <string.h>

#include "orchestrator/orq.h"
#include "store/store.h"

/* Inserts a queued task of submitter "local" (ggi_store_task_insert). */
static inline int test_task_insert(ggi_store *s, const char *task_id, const char *spec_json,
                                   const char *spec_hash, int priority, double now,
                                   int64_t *out_seq, int *out_existing)
{
    ggi_task_new t = { .task_id = task_id, .spec_json = spec_json, .spec_hash = spec_hash,
                       .priority = priority, .now = now };
    return ggi_store_task_insert(s, &t, out_seq, out_existing);
}

static inline char *test_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

/*
 * Claims up to limit queued tasks of submitter "local" with ggi_grid_claim on g (made on s),
 * in the open transaction or in one of its own; *out_rows is a malloc'd array of *out_n rows.
 */
static inline int test_tasks_claim_on(ggi_grid_db *g, ggi_store *s, int limit, double now,
                                      ggi_task_row **out_rows, int *out_n)
{
    *out_rows = NULL;
    *out_n = 0;
    int rc;
    int own = !ggi_store_in_transaction(s);
    if (own && (rc = ggi_store_begin(s)) != GG_OK)
        return rc;
    ggi_claimed *claimed = NULL;
    int n = 0, cap = 0;
    rc = ggi_grid_claim(g, "local", limit, now, &claimed, &n, &cap);
    if (own)
        rc = rc ? (ggi_store_rollback(s), rc) : ggi_store_commit(s);
    ggi_task_row *rows = n && !rc ? calloc((size_t)n, sizeof *rows) : NULL;
    for (int i = 0; i < n; i++) {
        if (rows) {
            const ggi_task_row *c = &claimed[i].row;
            rows[i] = *c;
            rows[i].task_id = test_strdup(c->task_id);
            rows[i].spec = test_strdup(c->spec);
            rows[i].status = test_strdup(c->status);
            rows[i].language = test_strdup(c->language);
            rows[i].needs = test_strdup(c->needs);
            rows[i].reason = NULL;
            rows[i].result = NULL;
        }
        ggi_claimed_release(&claimed[i]);
    }
    free(claimed);
    if (rc)
        return rc;
    if (n && !rows)
        return GG_ENOMEM;
    *out_rows = rows;
    *out_n = n;
    return GG_OK;
}

/* test_tasks_claim_on with a grid handle of its own for the one claim. */
static inline int test_tasks_claim(ggi_store *s, int limit, double now, ggi_task_row **out_rows,
                                   int *out_n)
{
    *out_rows = NULL;
    *out_n = 0;
    ggi_grid_db *g = NULL;
    int rc = ggi_grid_db_new(&g, s);
    if (!rc)
        rc = test_tasks_claim_on(g, s, limit, now, out_rows, out_n);
    ggi_grid_db_free(&g);
    return rc;
}

#endif
