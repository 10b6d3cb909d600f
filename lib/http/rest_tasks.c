/*
 * rest_tasks.c - the task routes of the HTTP face: POST /v1/tasks (one task, or JSON lines:
 * one task a line), GET /v1/tasks (a page of the list, by status), GET /v1/tasks/{id}
 * (status, and the result once ended), DELETE /v1/tasks/{id} (cancel), GET /v1/nodes and
 * GET /healthz. Submitting, status and cancelling go through the in-process client of the
 * sender's token name, as a remote `gryphgen submit` would. A submitter may cancel only the
 * tasks it submitted; an admin any. Workspace tasks are refused: their sources are resolved
 * on the submitter's machine, which over HTTP would be this one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "gryphgen.h"
#include "face.h"

#define MAX_BATCH 10000

static void reply_json(ggi_http_response *resp, int status, cJSON *o)
{
    char *t = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!t) {
        ggi_http_error(resp, 500, "out of memory");
        return;
    }
    resp->status = status;
    resp->body = strdup(t);
    cJSON_free(t);
    if (!resp->body)
        ggi_http_error(resp, 500, "out of memory");
}

static void reply_text(ggi_http_response *resp, int status, char *gg_text)
{
    resp->status = status;
    resp->body = gg_text ? strdup(gg_text) : NULL;
    gg_free(gg_text);
    if (!resp->body)
        ggi_http_error(resp, 500, "out of memory");
}

static void reply_gg_error(ggi_http_response *resp, int rc)
{
    ggi_http_error(resp, ggi_http_status_of(rc), gg_error_last());
}

static gg_client_t *client_for(ggi_http_face *f, const ggi_http_request *req,
                               ggi_http_response *resp)
{
    gg_client_t *c = NULL;
    int rc = ggi_http_face_client(f, req->who->name, &c);
    if (rc)
        reply_gg_error(resp, rc);
    return c;
}

/* Parses the body into an array of tasks: one object, or JSON lines (blank lines skipped).
 * NULL with resp set (400 naming the line) when a line is not a JSON object. */
static cJSON *parse_tasks(const ggi_http_request *req, ggi_http_response *resp)
{
    cJSON *arr = cJSON_CreateArray();
    const char *p = req->body, *end = req->body + req->body_len;
    int line = 0;
    while (arr && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        line++;
        const char *q = p;
        while (q < le && (*q == ' ' || *q == '\t' || *q == '\r'))
            q++;
        if (q < le) {
            cJSON *t = cJSON_ParseWithLength(q, (size_t)(le - q));
            if (!cJSON_IsObject(t)) {
                cJSON_Delete(t);
                cJSON_Delete(arr);
                char msg[160];
                snprintf(msg, sizeof msg, "line %d is not a JSON object (send one task, or "
                         "one task per line)", line);
                ggi_http_error(resp, 400, msg);
                return NULL;
            }
            if (cJSON_GetObjectItemCaseSensitive(t, "workspace")) {
                cJSON_Delete(t);
                cJSON_Delete(arr);
                char msg[200];
                snprintf(msg, sizeof msg, "line %d: workspace tasks are not taken over HTTP "
                         "(their sources are resolved on the submitter's machine: use "
                         "`gryphgen submit`)", line);
                ggi_http_error(resp, 400, msg);
                return NULL;
            }
            if (cJSON_GetArraySize(arr) >= MAX_BATCH) {
                cJSON_Delete(t);
                cJSON_Delete(arr);
                ggi_http_error(resp, 413, "more than 10000 tasks in one request");
                return NULL;
            }
            cJSON_AddItemToArray(arr, t);
        }
        p = le + 1;
    }
    if (!arr) {
        ggi_http_error(resp, 500, "out of memory");
        return NULL;
    }
    if (cJSON_GetArraySize(arr) == 0) {
        cJSON_Delete(arr);
        ggi_http_error(resp, 400, "no task in the body (send one task, or one task per line)");
        return NULL;
    }
    return arr;
}

static void post_tasks(void *user, const ggi_http_request *req, ggi_http_response *resp)
{
    cJSON *arr = parse_tasks(req, resp);
    if (!arr)
        return;
    gg_client_t *c = client_for(user, req, resp);
    char *text = c ? cJSON_PrintUnformatted(arr) : NULL;
    cJSON_Delete(arr);
    if (!c)
        return;
    if (!text) {
        ggi_http_error(resp, 500, "out of memory");
        return;
    }
    char *out = NULL;
    int rc = gg_client_submit_batch(c, text, &out);
    cJSON_free(text);
    if (rc) {
        reply_gg_error(resp, rc);
        return;
    }
    cJSON *r = cJSON_Parse(out);
    gg_free(out);
    int n_ids = 0, n_ok = 0;
    const cJSON *id;
    cJSON_ArrayForEach(id, cJSON_GetObjectItemCaseSensitive(r, "ids")) {
        n_ids++;
        n_ok += cJSON_IsString(id);
    }
    /* 201: all taken; 200: some; 400: none (the errors say why, by index). */
    reply_json(resp, n_ok == n_ids ? 201 : n_ok ? 200 : 400, r);
}

static void list_tasks(void *user, const ggi_http_request *req, ggi_http_response *resp)
{
    ggi_http_face *f = user;
    cJSON *q = cJSON_CreateObject();
    const char *status = ggi_http_query(req, "status");
    const char *submitter = ggi_http_query(req, "submitter");
    const char *after = ggi_http_query(req, "after");
    const char *limit = ggi_http_query(req, "limit");
    if (status)
        cJSON_AddStringToObject(q, "status", status);
    if (submitter)
        cJSON_AddStringToObject(q, "submitter", submitter);
    const char *order = ggi_http_query(req, "order");
    if (order && strcmp(order, "newest") != 0 && strcmp(order, "oldest") != 0) {
        cJSON_Delete(q);
        ggi_http_error(resp, 400, "'order' is newest or oldest");
        return;
    }
    if (order && strcmp(order, "newest") == 0)
        cJSON_AddTrueToObject(q, "newest");
    const char *nums[2][2] = { { "after", after }, { "limit", limit } };
    for (int i = 0; i < 2; i++) {
        if (!nums[i][1])
            continue;
        char *e = NULL;
        long long v = strtoll(nums[i][1], &e, 10);
        if (!*nums[i][1] || *e || v < 0) {
            cJSON_Delete(q);
            char msg[96];
            snprintf(msg, sizeof msg, "'%s' is not a whole number", nums[i][0]);
            ggi_http_error(resp, 400, msg);
            return;
        }
        cJSON_AddNumberToObject(q, nums[i][0], (double)v);
    }
    char *qt = cJSON_PrintUnformatted(q);
    cJSON_Delete(q);
    char *out = NULL;
    int rc = qt ? gg_orchestrator_tasks(ggi_http_face_orchestrator(f), qt, &out) : GG_ENOMEM;
    cJSON_free(qt);
    if (rc)
        reply_gg_error(resp, rc);
    else
        reply_text(resp, 200, out);
}

static int ended(const char *status)
{
    return status && strcmp(status, "queued") != 0 && strcmp(status, "running") != 0;
}

static void get_task(void *user, const ggi_http_request *req, ggi_http_response *resp)
{
    gg_client_t *c = client_for(user, req, resp);
    if (!c)
        return;
    char *out = NULL;
    int rc = gg_client_status(c, req->rest, &out);
    if (rc) {
        reply_gg_error(resp, rc);
        return;
    }
    cJSON *st = cJSON_Parse(out);
    gg_free(out);
    if (!st) {
        ggi_http_error(resp, 500, "unreadable status");
        return;
    }
    if (ended(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(st, "status")))) {
        char *res = NULL;
        if (gg_client_wait(c, req->rest, 10000, &res) == GG_OK) {
            cJSON *r = cJSON_Parse(res);
            if (r)
                cJSON_AddItemToObject(st, "result", r);
        }
        gg_free(res);
    }
    reply_json(resp, 200, st);
}

/* Whether the sender may cancel the task: an admin any, a submitter its own. 0, or -1 with
 * resp set (404 for a task that does not exist, 403 for another's). */
static int may_cancel(ggi_http_face *f, const ggi_http_request *req, ggi_http_response *resp)
{
    if (req->who->role >= GGI_ROLE_ADMIN)
        return 0;
    cJSON *q = cJSON_CreateObject();
    cJSON_AddStringToObject(q, "task_id", req->rest);
    char *qt = cJSON_PrintUnformatted(q);
    cJSON_Delete(q);
    char *out = NULL;
    int rc = qt ? gg_orchestrator_tasks(ggi_http_face_orchestrator(f), qt, &out) : GG_ENOMEM;
    cJSON_free(qt);
    if (rc) {
        reply_gg_error(resp, rc);
        return -1;
    }
    cJSON *r = cJSON_Parse(out);
    gg_free(out);
    const cJSON *t = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r, "tasks"), 0);
    const char *owner = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "submitter"));
    int ok = t && owner && strcmp(owner, req->who->name) == 0;
    if (!t)
        ggi_http_error(resp, 404, "no such task");
    else if (!ok)
        ggi_http_error(resp, 403, "a submitter may cancel only the tasks it submitted");
    cJSON_Delete(r);
    return ok ? 0 : -1;
}

static void delete_task(void *user, const ggi_http_request *req, ggi_http_response *resp)
{
    if (may_cancel(user, req, resp) != 0)
        return;
    gg_client_t *c = client_for(user, req, resp);
    if (!c)
        return;
    int rc = gg_client_cancel(c, req->rest);
    if (rc) {
        reply_gg_error(resp, rc);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "task_id", req->rest);
    cJSON_AddStringToObject(o, "status", "cancelled");
    reply_json(resp, 200, o);
}

static void get_nodes(void *user, const ggi_http_request *req, ggi_http_response *resp)
{
    gg_client_t *c = client_for(user, req, resp);
    if (!c)
        return;
    char *out = NULL;
    int rc = gg_client_status(c, NULL, &out);
    if (rc) {
        reply_gg_error(resp, rc);
        return;
    }
    cJSON *st = cJSON_Parse(out);
    gg_free(out);
    cJSON *o = cJSON_CreateObject();
    cJSON *nodes = cJSON_DetachItemFromObjectCaseSensitive(st, "nodes");
    cJSON_AddItemToObject(o, "nodes", nodes ? nodes : cJSON_CreateArray());
    cJSON_AddItemToObject(o, "grid", st ? st : cJSON_CreateObject());
    reply_json(resp, 200, o);
}

static void healthz(void *user, const ggi_http_request *req, ggi_http_response *resp)
{
    (void)req;
    ggi_http_face *f = user;
    char *out = NULL;
    int rc = gg_orchestrator_stats(ggi_http_face_orchestrator(f), &out);
    gg_free(out);
    if (rc) {
        ggi_http_error(resp, 503, gg_error_last());
        return;
    }
    resp->body = strdup("{\"status\":\"ok\"}");
}

int ggi_http_tasks_routes(ggi_http_face *f, ggi_http_server *s)
{
    int rc = ggi_http_server_route_role(s, "POST", "/v1/tasks", GGI_ROLE_SUBMITTER, post_tasks,
                                        f);
    if (!rc)
        rc = ggi_http_server_route_role(s, "GET", "/v1/tasks", GGI_ROLE_OBSERVER, list_tasks, f);
    if (!rc)
        rc = ggi_http_server_route_role(s, "GET", "/v1/tasks/*", GGI_ROLE_OBSERVER, get_task, f);
    if (!rc)
        rc = ggi_http_server_route_role(s, "DELETE", "/v1/tasks/*", GGI_ROLE_SUBMITTER,
                                        delete_task, f);
    if (!rc)
        rc = ggi_http_server_route_role(s, "GET", "/v1/nodes", GGI_ROLE_OBSERVER, get_nodes, f);
    if (!rc)
        rc = ggi_http_server_route_role(s, "GET", "/healthz", GGI_ROLE_NONE, healthz, f);
    return rc;
}
