/*
 * front_door.c - the REQ front door of front_door.h: reading and checking a request,
 * answering its query from the index, submitting its code as a one-attempt script task,
 * polling the task until it ends or its time is up, and the one reply each request gets.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "endpoint_rule.h"
#include "front_door.h"
#include "../net/keys.h"
#include "../net/zap.h"

#define MAX_ID 256 /* bytes of a ROUTER routing id */
#define DEFAULT_K 5
#define MAX_K 50

typedef struct pending {
    unsigned char id[MAX_ID];
    size_t id_len;
    char *task_id;
    cJSON *query;      /* the query's answer, sent with the code's; or NULL */
    double deadline_ms;
} pending;

struct ggi_front_door {
    ggi_front_door_options o;
    char *endpoint;
    void *ctx, *sock;
    ggi_zap *zap;
    int secure;
    pthread_t thread;
    int started;
    atomic_int stop;
    pending reqs[GGI_FRONT_DOOR_MAX_PENDING];
    int n_reqs;
    unsigned long serial;
};

static void send_reply(ggi_front_door *d, const unsigned char *id, size_t id_len, cJSON *reply)
{
    char *text = reply ? ggi_json_print(reply) : NULL;
    const char *body = text ? text : "{\"ok\":false,\"error\":\"out of memory\"}";
    /* ROUTER: the peer's id, the REQ delimiter, the body; a peer gone meanwhile is skipped */
    if (zmq_send(d->sock, id, id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0 &&
        zmq_send(d->sock, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
        zmq_send(d->sock, body, strlen(body), ZMQ_DONTWAIT);
    free(text);
}

static void send_error(ggi_front_door *d, const unsigned char *id, size_t id_len,
                       const char *task_id, const char *fmt, ...) GGI_PRINTF(5, 6);

static void send_error(ggi_front_door *d, const unsigned char *id, size_t id_len,
                       const char *task_id, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *r = cJSON_CreateObject();
    if (r) {
        cJSON_AddFalseToObject(r, "ok");
        ggi_json_add_str(r, "error", msg);
        if (task_id)
            ggi_json_add_str(r, "task_id", task_id);
    }
    send_reply(d, id, id_len, r);
    cJSON_Delete(r);
}

/* The last n bytes of s (on a UTF-8 boundary). */
static const char *tail(const char *s, size_t n)
{
    if (!s)
        return "";
    size_t len = strlen(s);
    if (len <= n)
        return s;
    const char *p = s + len - n;
    while (((unsigned char)*p & 0xC0) == 0x80)
        p++;
    return p;
}

/* The reply to a finished script task: its status and its last attempt's execution. */
static cJSON *code_result(const char *result_json)
{
    cJSON *res = NULL;
    if (ggi_json_parse(result_json, strlen(result_json), &res) != GG_OK)
        return NULL;
    cJSON *out = cJSON_CreateObject();
    const char *status = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(res, "status"));
    const cJSON *hist = cJSON_GetObjectItemCaseSensitive(res, "history");
    const cJSON *last = cJSON_GetArrayItem(hist, cJSON_GetArraySize(hist) - 1);
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(last, "execution");
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(res, "reason");
    if (out) {
        ggi_json_add_str(out, "task_id",
                         cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(res, "task_id")));
        ggi_json_add_str(out, "status", status ? status : "unknown");
        cJSON_AddBoolToObject(out, "passed", status && strcmp(status, "passed") == 0);
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(ex, "exit_code");
        if (cJSON_IsNumber(code))
            cJSON_AddNumberToObject(out, "exit_code", code->valuedouble);
        else
            cJSON_AddNullToObject(out, "exit_code");
        ggi_json_add_str(out, "stdout", tail(cJSON_GetStringValue(
            cJSON_GetObjectItemCaseSensitive(ex, "stdout")), GGI_FRONT_DOOR_TAIL));
        ggi_json_add_str(out, "stderr", tail(cJSON_GetStringValue(
            cJSON_GetObjectItemCaseSensitive(ex, "stderr")), GGI_FRONT_DOOR_TAIL));
        if (cJSON_IsString(reason))
            ggi_json_add_str(out, "reason", reason->valuestring);
        else
            cJSON_AddNullToObject(out, "reason");
    }
    cJSON_Delete(res);
    return out;
}

static void finish(ggi_front_door *d, int i, cJSON *code, const char *error)
{
    pending *p = &d->reqs[i];
    if (error) {
        send_error(d, p->id, p->id_len, p->task_id, "%s", error);
    } else {
        cJSON *r = cJSON_CreateObject();
        if (r) {
            cJSON_AddBoolToObject(r, "ok", 1);
            if (code)
                cJSON_AddItemToObject(r, "code", code);
            if (p->query)
                cJSON_AddItemToObject(r, "query", p->query);
            p->query = NULL;
            code = NULL;
        }
        send_reply(d, p->id, p->id_len, r);
        cJSON_Delete(r);
    }
    cJSON_Delete(code);
    cJSON_Delete(p->query);
    free(p->task_id);
    d->reqs[i] = d->reqs[--d->n_reqs];
}

/* Looks at each request in flight: its task ended, or its time ran out. */
static void poll_pending(ggi_front_door *d)
{
    double now = ggi_now_ms();
    for (int i = 0; i < d->n_reqs;) {
        pending *p = &d->reqs[i];
        char *result = NULL;
        int rc = gg_orchestrator_result(d->o.orch, p->task_id, &result);
        if (rc == GG_OK) {
            cJSON *code = code_result(result);
            gg_free(result);
            finish(d, i, code, code ? NULL : "cannot read the task's result");
            continue;
        }
        if (rc == GG_EAGAIN && now < p->deadline_ms) {
            i++;
            continue;
        }
        char why[512];
        if (rc == GG_EAGAIN) {
            gg_orchestrator_cancel(d->o.orch, p->task_id);
            snprintf(why, sizeof why, "timed out: the code did not finish within %g s (task "
                     "'%s' cancelled)", d->o.timeout_s, p->task_id);
        } else {
            snprintf(why, sizeof why, "reading task '%s': %s", p->task_id, gg_error_last());
        }
        finish(d, i, NULL, why);
    }
}

/* Checks the request's members; NULL when fine, else why it is refused (static text or
 * written into buf). */
static const char *check_request(ggi_front_door *d, const cJSON *req, char *buf, size_t cap)
{
    if (!cJSON_IsObject(req))
        return "the message is not a JSON object: send {\"code\": \"...\", \"query\": \"...\"}";
    for (const cJSON *m = req->child; m; m = m->next) {
        static const char *const known[] = { "code", "query", "k", "language" };
        int ok = 0;
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
            ok |= strcmp(m->string, known[i]) == 0;
        if (!ok) {
            snprintf(buf, cap, "unknown key '%.100s' (known: code, query, k, language)",
                     m->string);
            return buf;
        }
    }
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(req, "code");
    const cJSON *query = cJSON_GetObjectItemCaseSensitive(req, "query");
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(req, "k");
    const cJSON *lang = cJSON_GetObjectItemCaseSensitive(req, "language");
    if (!code && !query)
        return "the message has neither \"code\" nor \"query\"";
    if (code && (!cJSON_IsString(code) || !*code->valuestring))
        return "\"code\" must be a non-empty string";
    if (query && (!cJSON_IsString(query) || !*query->valuestring))
        return "\"query\" must be a non-empty string";
    if (k && (!cJSON_IsNumber(k) || k->valuedouble < 1 || k->valuedouble > MAX_K ||
              k->valuedouble != (int)k->valuedouble))
        return "\"k\" must be a whole number from 1 to 50";
    if (lang && (!cJSON_IsString(lang) || (strcmp(lang->valuestring, "python") != 0 &&
                                          strcmp(lang->valuestring, "c") != 0)))
        return "\"language\" must be \"python\" (the default) or \"c\"";
    if (lang && !code)
        return "\"language\" goes with \"code\"";
    if (k && !query)
        return "\"k\" goes with \"query\"";
    if (query && !d->o.index)
        return "\"query\": this server has no index to answer it from (start gryphgen serve "
               "with --index PATH)";
    if (code && d->n_reqs >= GGI_FRONT_DOOR_MAX_PENDING) {
        snprintf(buf, cap, "busy: %d requests are running; try again later",
                 GGI_FRONT_DOOR_MAX_PENDING);
        return buf;
    }
    return NULL;
}

/* The query's results as {"text": ..., "results": [...]}; NULL with *why on failure. */
static cJSON *answer_query(ggi_front_door *d, const cJSON *req, char *why, size_t cap)
{
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(req, "k");
    cJSON *q = cJSON_CreateObject();
    char *qtext = NULL, *out = NULL;
    cJSON *res = NULL;
    if (q) {
        ggi_json_add_str(q, "text", cJSON_GetStringValue(
            cJSON_GetObjectItemCaseSensitive(req, "query")));
        cJSON_AddNumberToObject(q, "k", k ? k->valuedouble : DEFAULT_K);
        qtext = ggi_json_print(q);
    }
    int rc = qtext ? gg_retriever_search(d->o.index, qtext, &out) : GG_ENOMEM;
    if (rc == GG_OK && ggi_json_parse(out, strlen(out), &res) != GG_OK)
        rc = GG_EINVAL;
    if (rc == GG_OK) {
        cJSON *results = cJSON_DetachItemFromObjectCaseSensitive(res, "results");
        cJSON_DeleteItemFromObjectCaseSensitive(q, "k");
        cJSON_AddItemToObject(q, "results", results ? results : cJSON_CreateArray());
    } else {
        snprintf(why, cap, "\"query\": the index failed: %s", gg_error_last());
        cJSON_Delete(q);
        q = NULL;
    }
    cJSON_Delete(res);
    gg_free(out);
    free(qtext);
    return q;
}

/* Submits the code as a script task; its id, or NULL with *why. */
static char *submit_code(ggi_front_door *d, const cJSON *req, char *why, size_t cap)
{
    const cJSON *lang = cJSON_GetObjectItemCaseSensitive(req, "language");
    char id[96];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(id, sizeof id, "front-door/%lld%03ld-%lu", (long long)ts.tv_sec,
             ts.tv_nsec / 1000000L, ++d->serial);
    cJSON *t = cJSON_CreateObject();
    cJSON *cands = t ? cJSON_AddArrayToObject(t, "candidates") : NULL;
    cJSON *budget = t ? cJSON_AddObjectToObject(t, "budget") : NULL;
    char *text = NULL, *out_id = NULL;
    if (cands && budget) {
        ggi_json_add_str(t, "task_id", id);
        ggi_json_add_str(t, "language", lang ? lang->valuestring : "python");
        ggi_json_add_str(t, "prompt", "a script sent to the front door");
        cJSON_AddItemToArray(cands, cJSON_CreateString(cJSON_GetStringValue(
            cJSON_GetObjectItemCaseSensitive(req, "code"))));
        cJSON_AddNumberToObject(budget, "max_attempts", 1);
        text = ggi_json_print(t);
    }
    cJSON_Delete(t);
    int rc = text ? gg_orchestrator_submit(d->o.orch, text, &out_id) : GG_ENOMEM;
    free(text);
    if (rc != GG_OK) {
        snprintf(why, cap, "\"code\": the task was not accepted: %s", gg_error_last());
        return NULL;
    }
    return out_id;
}

static void handle(ggi_front_door *d, const unsigned char *id, size_t id_len, const char *body,
                   size_t len, const char *role)
{
    char why[1024];
    if (d->secure && (!role || (strcmp(role, "submitter") != 0 && strcmp(role, "admin") != 0))) {
        send_error(d, id, id_len, NULL, "forbidden: the key's role '%s' may not send work "
                   "(submitter or admin may)", role ? role : "");
        return;
    }
    if (len > GGI_FRONT_DOOR_MAX_REQUEST) {
        send_error(d, id, id_len, NULL, "oversized: the message has %zu bytes, the limit is %u",
                   len, GGI_FRONT_DOOR_MAX_REQUEST);
        return;
    }
    cJSON *req = NULL;
    if (ggi_json_parse(body, len, &req) != GG_OK) {
        send_error(d, id, id_len, NULL, "not JSON: %s", gg_error_last());
        return;
    }
    const char *bad = check_request(d, req, why, sizeof why);
    if (bad) {
        send_error(d, id, id_len, NULL, "%s", bad);
        cJSON_Delete(req);
        return;
    }
    cJSON *query = NULL;
    if (cJSON_GetObjectItemCaseSensitive(req, "query") &&
        !(query = answer_query(d, req, why, sizeof why))) {
        send_error(d, id, id_len, NULL, "%s", why);
        cJSON_Delete(req);
        return;
    }
    if (!cJSON_GetObjectItemCaseSensitive(req, "code")) {
        cJSON *r = cJSON_CreateObject();
        if (r) {
            cJSON_AddBoolToObject(r, "ok", 1);
            cJSON_AddItemToObject(r, "query", query);
            query = NULL;
        }
        send_reply(d, id, id_len, r);
        cJSON_Delete(r);
        cJSON_Delete(query);
        cJSON_Delete(req);
        return;
    }
    char *task_id = submit_code(d, req, why, sizeof why);
    cJSON_Delete(req);
    if (!task_id) {
        cJSON_Delete(query);
        send_error(d, id, id_len, NULL, "%s", why);
        return;
    }
    pending *p = &d->reqs[d->n_reqs++];
    memcpy(p->id, id, id_len);
    p->id_len = id_len;
    p->task_id = ggi_strdup(task_id);
    gg_free(task_id);
    p->query = query;
    p->deadline_ms = ggi_now_ms() + d->o.timeout_s * 1000.0;
    if (!p->task_id)
        finish(d, d->n_reqs - 1, NULL, "out of memory");
}

/* Reads one ROUTER message: [id][empty][body] from a REQ peer; anything else is dropped
 * (without the delimiter there is no REQ peer to answer). */
static void receive(ggi_front_door *d)
{
    zmq_msg_t parts[3];
    int n = 0, more = 1, extra = 0;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, d->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            break;
        }
        more = zmq_msg_more(&m);
        if (n < 3) {
            parts[n++] = m;
        } else {
            zmq_msg_close(&m);
            extra = 1; /* more frames than [id][delimiter][body] */
        }
    }
    int peer = n >= 2 && zmq_msg_size(&parts[0]) <= MAX_ID && zmq_msg_size(&parts[1]) == 0;
    if (peer && n == 3 && !extra) {
        const char *role = d->secure ? zmq_msg_gets(&parts[2], "User-Id") : NULL;
        handle(d, zmq_msg_data(&parts[0]), zmq_msg_size(&parts[0]), zmq_msg_data(&parts[2]),
               zmq_msg_size(&parts[2]), role);
    } else if (peer) {
        send_error(d, zmq_msg_data(&parts[0]), zmq_msg_size(&parts[0]), NULL,
                   "the message must be one frame of JSON");
    }
    for (int i = 0; i < n; i++)
        zmq_msg_close(&parts[i]);
}

static void *door_main(void *arg)
{
    ggi_front_door *d = arg;
    while (!atomic_load(&d->stop)) {
        zmq_pollitem_t it = { d->sock, 0, ZMQ_POLLIN, 0 };
        int n = zmq_poll(&it, 1, d->n_reqs ? 50 : 200);
        if (n > 0 && (it.revents & ZMQ_POLLIN))
            for (int i = 0; i < 64 && !atomic_load(&d->stop); i++) {
                int ev = 0;
                size_t sz = sizeof ev;
                zmq_getsockopt(d->sock, ZMQ_EVENTS, &ev, &sz);
                if (!(ev & ZMQ_POLLIN))
                    break;
                receive(d);
            }
        if (d->n_reqs)
            poll_pending(d);
    }
    while (d->n_reqs)
        finish(d, d->n_reqs - 1, NULL, "the server is stopping; send the request again later");
    return NULL;
}

static int setup_security(ggi_front_door *d)
{
    ggi_keypair kp;
    ggi_auth_keys keys = {0};
    int rc = ggi_keys_read(d->o.curve_key_file, 1, &kp);
    if (rc == GG_OK)
        rc = ggi_auth_keys_load(d->o.authorized_keys_file, &keys);
    if (rc == GG_OK)
        rc = ggi_zap_start(&d->zap, d->ctx, &keys, &d->o.log); /* takes keys */
    int one = 1;
    if (rc == GG_OK &&
        (zmq_setsockopt(d->sock, ZMQ_CURVE_SERVER, &one, sizeof one) ||
         zmq_setsockopt(d->sock, ZMQ_CURVE_SECRETKEY, kp.secret_key, GGI_KEY_Z85_LEN) ||
         zmq_setsockopt(d->sock, ZMQ_ZAP_DOMAIN, GGI_ZAP_DOMAIN, strlen(GGI_ZAP_DOMAIN))))
        rc = ggi_error(GG_ETRANSPORT, "front door: CURVE: %s", zmq_strerror(zmq_errno()));
    ggi_wipe(&kp, sizeof kp);
    d->secure = rc == GG_OK;
    return rc;
}

int ggi_front_door_new(ggi_front_door **out, const ggi_front_door_options *opts)
{
    if (!out || !opts || !opts->endpoint || !opts->orch)
        return ggi_error(GG_EINVAL, "front door: no endpoint or no orchestrator");
    *out = NULL;
    int has_keys = opts->curve_key_file && opts->authorized_keys_file;
    if (ggi_endpoint_rule(opts->endpoint, has_keys, opts->insecure,
                          "curve_key_file and authorized_keys_file") != GG_OK)
        return GG_EINVAL;
    ggi_front_door *d = calloc(1, sizeof *d);
    if (!d)
        return ggi_error(GG_ENOMEM, "out of memory");
    d->o = *opts;
    if (!(d->o.timeout_s > 0))
        d->o.timeout_s = 300;
    int rc = GG_OK;
    if (!(d->endpoint = ggi_strdup(opts->endpoint)) || !(d->ctx = zmq_ctx_new()) ||
        !(d->sock = zmq_socket(d->ctx, ZMQ_ROUTER)))
        rc = ggi_error(GG_ENOMEM, "front door: cannot make its socket");
    if (rc == GG_OK) {
        int zero = 0;
        int64_t maxmsg = (int64_t)GGI_FRONT_DOOR_MAX_REQUEST * 16;
        zmq_setsockopt(d->sock, ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(d->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
        if (has_keys)
            rc = setup_security(d);
    }
    if (rc == GG_OK && zmq_bind(d->sock, d->endpoint) != 0)
        rc = ggi_error(GG_ETRANSPORT, "front door %s: cannot bind: %s", d->endpoint,
                       zmq_strerror(zmq_errno()));
    if (rc == GG_OK && pthread_create(&d->thread, NULL, door_main, d) != 0)
        rc = ggi_error(GG_ENOMEM, "front door: cannot start its thread");
    if (rc != GG_OK) {
        ggi_front_door_destroy(&d);
        return rc;
    }
    d->started = 1;
    ggi_log(&d->o.log, GG_LOG_INFO, "front door: listening on %s", d->endpoint);
    *out = d;
    return GG_OK;
}

void ggi_front_door_destroy(ggi_front_door **pd)
{
    if (!pd || !*pd)
        return;
    ggi_front_door *d = *pd;
    atomic_store(&d->stop, 1);
    if (d->started)
        pthread_join(d->thread, NULL);
    if (d->sock)
        zmq_close(d->sock);
    ggi_zap_stop(&d->zap);
    if (d->ctx)
        zmq_ctx_term(d->ctx);
    free(d->endpoint);
    free(d);
    *pd = NULL;
}
