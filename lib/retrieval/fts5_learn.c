/*
 * fts5_learn.c - learning of the "fts5" retriever backend: feedback on the chunks a
 * generation used becomes weighted success and failure counts, over every kind of task and
 * for the task's kind (credit.h splits the credit). Cut here because it is the only writer
 * of the learned counts that search reads.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "../core/ggi.h"
#include "credit.h"
#include "fts5_internal.h"

/* ---- feedback ---- */

/* Reads an id ("42" or 42) into *out; 0 when it is not one of ours. */
int ggi_fts5_parse_id(const cJSON *v, sqlite3_int64 *out)
{
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d >= 1 && d <= 9007199254740991.0 && floor(d) == d) {
            *out = (sqlite3_int64)d;
            return 1;
        }
        return 0;
    }
    const char *s = cJSON_GetStringValue(v);
    if (!s || !*s || strlen(s) > 18)
        return 0;
    sqlite3_int64 n = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        n = n * 10 + (*p - '0');
    }
    *out = n;
    return n > 0;
}

int ggi_fts5_feedback(ggi_fts5 *x, const char *feedback_json)
{
    size_t len = strlen(feedback_json);
    if (len > MAX_QUERY_BYTES)
        return ggi_error(GG_ETOOBIG, "retriever feedback is %zu bytes, the limit is %u", len,
                         MAX_QUERY_BYTES);
    cJSON *fb = NULL;
    if (ggi_json_parse(feedback_json, len, &fb))
        return ggi_error_wrap("retriever feedback: ");
    int passed = 0, rc = GG_OK;
    const char *kind = NULL;
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(fb, "ids");
    const cJSON *weights = cJSON_GetObjectItemCaseSensitive(fb, "weights");
    if (!cJSON_IsObject(fb))
        rc = ggi_error(GG_EINVAL, "retriever feedback must be a JSON object");
    else if ((rc = ggi_json_bool(fb, "passed", 1, &passed)))
        ggi_error_wrap("retriever feedback: ");
    else if (!cJSON_IsArray(ids))
        rc = ggi_error(GG_EINVAL, "retriever feedback: field 'ids' must be an array");
    else if (cJSON_GetArraySize(ids) > MAX_FEEDBACK_IDS)
        rc = ggi_error(GG_ETOOBIG, "retriever feedback: more than %d ids", MAX_FEEDBACK_IDS);
    else if (weights && !cJSON_IsNull(weights) &&
             (!cJSON_IsArray(weights) || cJSON_GetArraySize(weights) != cJSON_GetArraySize(ids)))
        rc = ggi_error(GG_EINVAL, "retriever feedback: field 'weights' must be an array as long "
                                  "as 'ids'");
    else if ((rc = ggi_json_string(fb, "kind", 0, GGI_CREDIT_KIND_MAX - 1, &kind)))
        ggi_error_wrap("retriever feedback: ");
    else if (kind && !ggi_credit_kind_ok(kind))
        rc = ggi_error(GG_EINVAL, "retriever feedback: field 'kind' may hold only letters, "
                                  "digits and _-.:+");
    if (!cJSON_IsArray(weights))
        weights = NULL;
    int n = rc ? 0 : cJSON_GetArraySize(ids);
    sqlite3_int64 *v = n ? malloc((size_t)n * sizeof *v) : NULL;
    double *w = n ? malloc((size_t)n * sizeof *w) : NULL;
    if (n && (!v || !w))
        rc = ggi_error(GG_ENOMEM, "out of memory");
    int m = 0;
    const cJSON *it, *wt = weights ? weights->child : NULL;
    if (!rc) {
        cJSON_ArrayForEach(it, ids)
        {
            double share = 1.0;
            if (wt) {
                share = cJSON_IsNumber(wt) ? wt->valuedouble : -1;
                wt = wt->next;
                if (!(share >= 0 && share <= 1)) {
                    rc = ggi_error(GG_EINVAL, "retriever feedback: 'weights' must hold "
                                              "numbers from 0 to 1");
                    break;
                }
            }
            sqlite3_int64 id;
            if (share <= 0 || !ggi_fts5_parse_id(it, &id))
                continue;
            int dup = 0;
            for (int i = 0; i < m && !dup; i++)
                dup = v[i] == id;
            if (!dup) {
                v[m] = id;
                w[m++] = share;
            }
        }
    }
    char kind_copy[GGI_CREDIT_KIND_MAX] = "";
    if (kind)
        snprintf(kind_copy, sizeof kind_copy, "%s", kind);
    cJSON_Delete(fb);
    if (rc || m == 0) {
        free(v);
        free(w);
        return rc;
    }
    conn *c = NULL;
    if (!(rc = ggi_fts5_conn_get(x, &c)) && !(rc = ggi_fts5_exec_simple(c, S_BEGIN))) {
        sqlite3_stmt *s = NULL, *k = NULL;
        rc = ggi_fts5_stmt(c, S_CREDIT_W, &s);
        if (!rc && kind_copy[0])
            rc = ggi_fts5_stmt(c, S_KIND_CREDIT, &k);
        for (int i = 0; i < m && !rc; i++) {
            sqlite3_bind_int64(s, 1, v[i]);
            sqlite3_bind_double(s, 2, passed ? w[i] : 0.0);
            sqlite3_bind_double(s, 3, passed ? 0.0 : w[i]);
            if (sqlite3_step(s) != SQLITE_DONE)
                rc = ggi_fts5_fail_db(c->db, "recording feedback");
            sqlite3_reset(s);
            if (!rc && k) {
                sqlite3_bind_int64(k, 1, v[i]);
                sqlite3_bind_text(k, 2, kind_copy, -1, SQLITE_STATIC);
                sqlite3_bind_double(k, 3, passed ? w[i] : 0.0);
                sqlite3_bind_double(k, 4, passed ? 0.0 : w[i]);
                if (sqlite3_step(k) != SQLITE_DONE)
                    rc = ggi_fts5_fail_db(c->db, "recording feedback for a kind");
                sqlite3_reset(k);
            }
        }
        if (k)
            sqlite3_clear_bindings(k);
        rc = rc ? rc : ggi_fts5_exec_simple(c, S_COMMIT);
    }
    ggi_fts5_conn_put(x, c);
    free(v);
    free(w);
    return rc;
}
