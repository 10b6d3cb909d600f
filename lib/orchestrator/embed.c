/*
 * embed.c - what an embedder (and `gryphgen serve`'s HTTP face) reads and drives in process
 * beside the core API: gg_orchestrator_connect(), a client on the orchestrator's in-process
 * endpoint that submits, asks for status, cancels and watches through the scheduler like a
 * remote client; and gg_orchestrator_tasks(), a read-only page of the task list (the ggp/1
 * protocol has no listing), read on the host threads' database connection.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "orq.h"

#define LIST_MAX 1000

int gg_orchestrator_connect(gg_orchestrator_t *o, const char *name, gg_client_t **out)
{
    if (out)
        *out = NULL;
    if (!o || !out || !name)
        return ggi_error(GG_EINVAL, "orchestrator, name and out pointer must not be NULL");
    if (atomic_load(&o->stopping))
        return ggi_error(GG_ESTATE, "the orchestrator is stopping");
    return ggi_client_new_embedded(out, &o->transport, o->endpoint, name, 10000);
}

#define LIST_SELECT                                                                          \
    "SELECT seq, task_id, status, attempts, priority, reason, submitter, created_at, "     \
    "finished_at, end_cause FROM tasks WHERE (?1 IS NULL OR status = ?1) AND "           \
    "(?2 IS NULL OR submitter = ?2) AND (?3 IS NULL OR task_id = ?3) AND "
static const char *const list_sql[2] = {
    LIST_SELECT "seq > ?4 ORDER BY seq LIMIT ?5",
    LIST_SELECT "(?4 = 0 OR seq < ?4) ORDER BY seq DESC LIMIT ?5",
};

static void add_text(cJSON *o, const char *key, sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    if (t)
        cJSON_AddStringToObject(o, key, (const char *)t);
}

static int read_query(const char *query_json, cJSON **q, const char **status,
                      const char **submitter, const char **task_id, long long *after,
                      long long *limit, int *newest)
{
    *q = query_json && *query_json ? cJSON_Parse(query_json) : cJSON_CreateObject();
    if (!*q || !cJSON_IsObject(*q))
        return ggi_error(GG_EINVAL, "the task query is not a JSON object");
    *status = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(*q, "status"));
    *submitter = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(*q, "submitter"));
    *task_id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(*q, "task_id"));
    *after = 0;
    *limit = 100;
    if (*status && strcmp(*status, "queued") && strcmp(*status, "running") &&
        strcmp(*status, "passed") && strcmp(*status, "failed") && strcmp(*status, "error") &&
        strcmp(*status, "cancelled"))
        return ggi_error(GG_EINVAL, "status '%.40s' is not one of queued, running, passed, "
                         "failed, error, cancelled", *status);
    if (ggi_json_bool(*q, "newest", 0, newest) != GG_OK ||
        ggi_json_int(*q, "after", 0, 0, (1LL << 53), after) != GG_OK ||
        ggi_json_int(*q, "limit", 0, 1, LIST_MAX, limit) != GG_OK)
        return GG_EINVAL;
    return GG_OK;
}

int gg_orchestrator_tasks(gg_orchestrator_t *o, const char *query_json, char **out_json)
{
    if (out_json)
        *out_json = NULL;
    if (!o || !out_json)
        return ggi_error(GG_EINVAL, "orchestrator and out pointer must not be NULL");
    cJSON *q = NULL;
    const char *status = NULL, *submitter = NULL, *task_id = NULL;
    long long after = 0, limit = 100;
    int newest = 0;
    int rc = read_query(query_json, &q, &status, &submitter, &task_id, &after, &limit,
                        &newest);
    if (rc) {
        cJSON_Delete(q);
        return rc;
    }
    cJSON *res = cJSON_CreateObject();
    cJSON *arr = res ? cJSON_AddArrayToObject(res, "tasks") : NULL;
    if (!arr) {
        cJSON_Delete(q);
        cJSON_Delete(res);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    long long last = 0, n = 0;
    pthread_mutex_lock(&o->api_mu);
    sqlite3 *db = ggi_store_sqlite(o->api_store);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, list_sql[newest != 0], -1, &st, NULL) != SQLITE_OK) {
        rc = ggi_error(GG_ESTORE, "listing tasks: %s", sqlite3_errmsg(db));
    } else {
        if (status)
            sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
        if (submitter)
            sqlite3_bind_text(st, 2, submitter, -1, SQLITE_STATIC);
        if (task_id)
            sqlite3_bind_text(st, 3, task_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, after);
        sqlite3_bind_int64(st, 5, limit);
        int s;
        while ((s = sqlite3_step(st)) == SQLITE_ROW) {
            cJSON *t = cJSON_CreateObject();
            if (!t || !cJSON_AddItemToArray(arr, t)) {
                cJSON_Delete(t);
                rc = ggi_error(GG_ENOMEM, "out of memory");
                break;
            }
            last = sqlite3_column_int64(st, 0);
            n++;
            cJSON_AddNumberToObject(t, "seq", (double)last);
            add_text(t, "task_id", st, 1);
            add_text(t, "status", st, 2);
            cJSON_AddNumberToObject(t, "attempts", sqlite3_column_int(st, 3));
            cJSON_AddNumberToObject(t, "priority", sqlite3_column_int(st, 4));
            add_text(t, "reason", st, 5);
            add_text(t, "submitter", st, 6);
            if (sqlite3_column_type(st, 7) != SQLITE_NULL)
                cJSON_AddNumberToObject(t, "created_at", sqlite3_column_double(st, 7));
            if (sqlite3_column_type(st, 8) != SQLITE_NULL)
                cJSON_AddNumberToObject(t, "finished_at", sqlite3_column_double(st, 8));
            add_text(t, "end_cause", st, 9);
        }
        if (!rc && s != SQLITE_DONE)
            rc = ggi_error(GG_ESTORE, "listing tasks: %s", sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&o->api_mu);
    if (!rc) {
        if (n == limit)
            cJSON_AddNumberToObject(res, "next", (double)last);
        else
            cJSON_AddNullToObject(res, "next");
        if (!(*out_json = ggi_json_print(res)))
            rc = ggi_error(GG_ENOMEM, "out of memory");
    }
    cJSON_Delete(q);
    cJSON_Delete(res);
    return rc;
}
