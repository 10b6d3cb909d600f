/*
 * client.c - gg_client_t: a DEALER connection to an orchestrator's hub speaking ggp/1.
 * Requests carry a request id (rid) and the matching reply is awaited; replies of earlier,
 * timed-out requests are skipped. A "reset" from the hub (it restarted and forgot us) makes
 * the client say hello again and repeat the request; a wait is repeated every few seconds,
 * so a client that waits across an orchestrator restart still gets its result.
 *
 * With several endpoints ("EP1,EP2": a primary/backup pair), a client whose hub says it is
 * passive, whose connection closed, where nobody listens, or that hears nothing for 3
 * heartbeat intervals moves to the next endpoint and sends its request again there
 * (docs/protocol.md "Failover"); requests are idempotent (a submission of the same task
 * returns its id).
 */
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gryphgen/client.h"

#include "endpoint_rule.h"
#include "endpoints.h"
#include "event_filter.h"
#include "../core/options.h"
#include "orq.h"
#include "protocol.h"
#include "../workspace/workspace.h"

#define REASK_MS 2000 /* a wait or watch is repeated this often */
#define LINK_POLL_MS 50 /* how often a client with several endpoints looks at its link */
#define SILENT_BEATS 3  /* a hub silent this many heartbeat intervals is gone */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 1000

struct gg_client {
    ggi_transport tp;
    void *peer;
    ggi_endpoints eps;  /* where the orchestrator may be (connect: "EP1,EP2,...") */
    int hb_ms;          /* the heartbeat interval of the hub's welcome */
    double last_rx;     /* when the hub of this connection was last heard (or asked) */
    unsigned tried;     /* endpoints tried since the last welcome */
    int backoff_ms;
    int heard_passive;  /* a hub of this round answered "passive:" */
    char name[GGP_MAX_NAME + 1];
    int timeout_ms;
    long long rid;
    int welcomed;
    int curve;          /* it authenticates with a CURVE key */
    int borrowed_tp;    /* tp is the orchestrator's (an in-process client): not destroyed */
    ggi_buf event;      /* an in-process event's text, reused (local_event) */
    pthread_mutex_t mu;
    /* gg_client_get_stats(): read from any thread, without mu (a wait holds it long) */
    atomic_ulong n_requests, n_replies, n_timeouts, n_failovers;
    atomic_int active_ep; /* the endpoint whose hub welcomed us last, or -1 */
};

GGI_OPTIONS_LAYOUT(client_options, gg_client_options, GG_CLIENT_OPTIONS_VERSION,
                   GGI_OPTIONS_END(gg_client_options, insecure),
                   GGI_OPTIONS_END(gg_client_options, custom_transport));

int gg_client_options_init(gg_client_options *opts, unsigned version)
{
    gg_client_options d = GG_CLIENT_OPTIONS_INIT;
    return ggi_options_init(&client_options, opts, &d, version);
}

int gg_client_new(gg_client_t **out, const gg_client_options *opts)
{
    if (!out)
        return ggi_error(GG_EINVAL, "out pointer is NULL");
    *out = NULL;
    if (!opts)
        return ggi_error(GG_EINVAL, "option 'connect' must name the orchestrator's endpoint");
    gg_client_options full = GG_CLIENT_OPTIONS_INIT;
    if (ggi_options_accept(&client_options, &full, opts))
        return GG_EVERSION;
    opts = &full;
    if (!opts->connect || !*opts->connect)
        return ggi_error(GG_EINVAL, "option 'connect' must name the orchestrator's endpoint");
    if (opts->timeout_ms < 0)
        return ggi_error(GG_EINVAL, "timeout_ms must not be negative");
    if (opts->name && (!*opts->name || strlen(opts->name) > GGP_MAX_NAME))
        return ggi_error(GG_EINVAL, "name must be 1 to %d bytes", GGP_MAX_NAME);
    if (opts->curve_key_file && (!opts->curve_server_key || !*opts->curve_server_key))
        return ggi_error(GG_EINVAL, "curve_key_file needs curve_server_key (the "
                         "orchestrator's public key)");
    /* A host's transport does its own security and names its own endpoints. */
    if (opts->custom_transport && (opts->curve_key_file || opts->curve_server_key))
        return ggi_error(GG_EINVAL, "curve_key_file and curve_server_key are for the built-in "
                         "ZeroMQ transport; a custom_transport does its own security");
    /* Each endpoint of the list; without keys, tcp/ipc need insecure = 1 and a loopback
     * endpoint (endpoint_rule.h). */
    ggi_endpoints eps;
    int rc = ggi_endpoints_parse(opts->connect, !opts->custom_transport,
                                 opts->curve_key_file != NULL, opts->insecure, &eps);
    if (rc)
        return rc == GG_ENOMEM ? rc : GG_EINVAL;
    if ((rc = gg_init()) != GG_OK) {
        ggi_endpoints_free(&eps);
        return rc;
    }
    gg_client_t *c = calloc(1, sizeof *c);
    if (!c) {
        ggi_endpoints_free(&eps);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&c->mu, NULL);
    atomic_store(&c->active_ep, -1);
    c->eps = eps;
    c->hb_ms = GGI_HEARTBEAT_MS;
    c->backoff_ms = BACKOFF_MIN_MS;
    c->timeout_ms = opts->timeout_ms ? opts->timeout_ms : 10000;
    if (opts->name) {
        snprintf(c->name, sizeof c->name, "%s", opts->name);
    } else {
        char host[64] = "host";
        gethostname(host, sizeof host - 1);
        const char *user = getenv("USER");
        snprintf(c->name, sizeof c->name, "%.60s@%.60s", user && *user ? user : "user", host);
    }
    if (opts->custom_transport) {
        ggi_transport_borrow(&c->tp, opts->custom_transport);
    } else if (!rc && opts->curve_key_file) {
        c->curve = 1;
        ggi_zmq_security sec = {0};
        sec.client_key_file = opts->curve_key_file;
        sec.server_public_key = opts->curve_server_key;
        rc = ggi_zmq_transport_new_secure(&c->tp, &sec);
    } else if (!rc) {
        rc = ggi_zmq_transport_new(&c->tp);
    }
    /* The first endpoint that opens (a custom transport may refuse a name it has no hub
     * for); none: the first one's error. */
    for (unsigned i = 0; !rc && i < c->eps.n; i++) {
        rc = c->tp.vt.peer_open(c->tp.self, ggi_endpoints_current(&c->eps), &c->peer);
        if (rc && i + 1 < c->eps.n) {
            ggi_endpoints_next(&c->eps);
            rc = GG_OK;
            continue;
        }
        break;
    }
    if (rc && c->eps.n > 1) {
        char last[1024];
        snprintf(last, sizeof last, "%s", gg_error_last());
        rc = ggi_error(rc, "none of the endpoints %.1000s can be opened: %s", opts->connect,
                       last);
    }
    c->last_rx = ggi_now_ms();
    if (rc) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", gg_error_last());
        gg_client_destroy(&c);
        return gg_error_set(rc, msg);
    }
    *out = c;
    return GG_OK;
}

int ggi_client_new_embedded(gg_client_t **out, ggi_transport *tp, const char *endpoint,
                            const char *name, int timeout_ms)
{
    *out = NULL;
    if (!name || !*name || strlen(name) > GGP_MAX_NAME)
        return ggi_error(GG_EINVAL, "name must be 1 to %d bytes", GGP_MAX_NAME);
    gg_client_t *c = calloc(1, sizeof *c);
    if (!c)
        return ggi_error(GG_ENOMEM, "out of memory");
    pthread_mutex_init(&c->mu, NULL);
    atomic_store(&c->active_ep, -1);
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
    snprintf(c->name, sizeof c->name, "%s", name);
    c->tp = *tp;
    c->borrowed_tp = 1;
    c->hb_ms = GGI_HEARTBEAT_MS;
    c->backoff_ms = BACKOFF_MIN_MS;
    int rc = ggi_endpoints_parse(endpoint, 0, 0, 0, &c->eps);
    if (!rc)
        rc = c->tp.vt.peer_open(c->tp.self, ggi_endpoints_current(&c->eps), &c->peer);
    if (rc) {
        gg_client_destroy(&c);
        return rc;
    }
    *out = c;
    return GG_OK;
}

int gg_client_get_stats(gg_client_t *c, gg_client_stats *out)
{
    size_t least = offsetof(gg_client_stats, requests) + sizeof out->requests;
    if (!c || !out)
        return ggi_error(GG_EINVAL, "client and out pointer must not be NULL");
    if (out->size < least)
        return ggi_error(GG_EINVAL, "gg_client_stats.size is %zu: set it to sizeof "
                         "(gg_client_stats) (GG_CLIENT_STATS_INIT)", out->size);
    gg_client_stats s;
    memset(&s, 0, sizeof s);
    s.size = out->size;
    s.requests = atomic_load(&c->n_requests);
    s.replies = atomic_load(&c->n_replies);
    s.timeouts = atomic_load(&c->n_timeouts);
    s.failovers = atomic_load(&c->n_failovers);
    int ep = atomic_load(&c->active_ep);
    s.endpoint_index = ep >= 0 && (unsigned)ep < c->eps.n ? ep : -1;
    if (s.endpoint_index >= 0)
        snprintf(s.endpoint, sizeof s.endpoint, "%s", c->eps.ep[ep]);
    /* Only what the caller's struct holds: one built against an older header is shorter. */
    memcpy(out, &s, out->size < sizeof s ? out->size : sizeof s);
    return GG_OK;
}

void gg_client_destroy(gg_client_t **pc)
{
    if (!pc || !*pc)
        return;
    gg_client_t *c = *pc;
    if (c->peer)
        c->tp.vt.close(c->peer);
    if (!c->borrowed_tp)
        ggi_transport_destroy(&c->tp); /* a host's borrowed one is only forgotten */
    ggi_endpoints_free(&c->eps);
    ggi_buf_free(&c->event);
    pthread_mutex_destroy(&c->mu);
    free(c);
    *pc = NULL;
}

static int send_msg(gg_client_t *c, const cJSON *m)
{
    if (!c->peer)
        return ggi_error(GG_ETRANSPORT, "not connected");
    size_t len = 0;
    char *text = ggp_print(m, &len);
    if (!text)
        return gg_error_last_code() ? gg_error_last_code() : GG_ENOMEM;
    int rc = c->tp.vt.peer_send(c->peer, text, len);
    free(text);
    return rc;
}

static int send_hello(gg_client_t *c)
{
    cJSON *m = ggp_build_hello_client(c->name);
    if (!m)
        return ggi_error(GG_ENOMEM, "out of memory");
    int rc = send_msg(c, m);
    cJSON_Delete(m);
    return rc;
}


/* An in-process client's event, delivered without parsing: the hub in this process printed
 * it with ggp_encode_event, and a watcher of thousands of events a second would otherwise
 * parse and print each again. 1 when msg was such an event (*stop: what fn said); 0 for
 * anything else (decoded as usual). Only for a peer of this process: a remote hub's
 * messages are always decoded and checked. */
static int local_event(gg_client_t *c, const gg_transport_msg *msg,
                       int (*fn)(void *user, const char *event_json), void *user, int *stop)
{
    const char *ev;
    size_t len;
    if (!c->borrowed_tp || !fn || !ggp_event_peek(msg->data, msg->len, &ev, &len))
        return 0;
    c->event.len = 0;
    if (ggi_buf_append(&c->event, ev, len) != GG_OK)
        return 0;
    *stop = fn(user, c->event.data);
    return 1;
}

/* Says hello when this connection has not been welcomed, then sends req. */
static int send_request(gg_client_t *c, const cJSON *req)
{
    if (!c->welcomed) {
        int rc = send_hello(c);
        if (rc)
            return rc;
        c->last_rx = ggi_now_ms(); /* silence counts from the hello */
    }
    int rc = send_msg(c, req);
    if (rc == GG_OK)
        atomic_fetch_add(&c->n_requests, 1);
    return rc;
}

/* Why a client with several endpoints must leave its hub now, or NULL: its connection
 * closed, nobody listens there, or nothing (not even a heartbeat) came for SILENT_BEATS
 * heartbeat intervals since the hello. */
static const char *leave_reason(gg_client_t *c)
{
    if (!c->peer)
        return "not connected";
    if (c->eps.n < 2)
        return NULL;
    int link = ggi_zmq_peer_link(&c->tp, c->peer);
    if (link == GGI_LINK_LOST)
        return "its connection closed";
    if (link == GGI_LINK_REFUSED)
        return "nobody listens there";
    if (ggi_now_ms() - c->last_rx > (double)SILENT_BEATS * c->hb_ms)
        return "no answer";
    return NULL;
}

/* Leaves the current hub for the next endpoint (round robin; the same one when it is the
 * only one), pausing after each round in which no hub welcomed the client (at most until
 * deadline, < 0: none). GG_OK, or the error opening the next one (c->peer is then NULL and
 * the next call moves on again). */
static int fail_over(gg_client_t *c, double deadline, int passive)
{
    c->heard_passive |= passive;
    if (c->peer)
        c->tp.vt.close(c->peer);
    c->peer = NULL;
    c->welcomed = 0;
    c->hb_ms = GGI_HEARTBEAT_MS;
    atomic_store(&c->active_ep, -1);
    if (c->eps.n > 1)
        atomic_fetch_add(&c->n_failovers, 1);
    if (++c->tried >= c->eps.n) {
        /* A standby that answered is about to decide: asked again soon (no growing pause). */
        int grow = !c->heard_passive;
        double ms = grow ? c->backoff_ms : BACKOFF_MIN_MS;
        c->tried = 0;
        c->heard_passive = 0;
        if (deadline >= 0 && deadline - ggi_now_ms() < ms)
            ms = deadline > ggi_now_ms() ? deadline - ggi_now_ms() : 0;
        ggi_sleep_ms((int)ms);
        if (grow)
            c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                                               : c->backoff_ms * 2;
    }
    c->last_rx = ggi_now_ms();
    return c->tp.vt.peer_open(c->tp.self, ggi_endpoints_next(&c->eps), &c->peer);
}

/* GG_ETIMEDOUT naming every endpoint. */
static int no_answer(gg_client_t *c, int timeout_ms)
{
    char where[2048];
    ggi_endpoints_describe(&c->eps, where, sizeof where);
    return ggi_error(GG_ETIMEDOUT, "no answer from %s within %d ms (%s)", where, timeout_ms,
                     c->curve ? "is an orchestrator serving there, does it list this "
                                "client's key, and is the server key its public key?"
                              : "is an orchestrator serving there?");
}

/*
 * Sends req (its rid is set here) and waits up to timeout_ms for the reply. Replies to rids
 * from first_rid on count (a repeated request keeps its earlier rids valid). On "reset" the
 * client says hello and sends again; when the hub is passive or gone (leave_reason) it moves
 * to the next endpoint and sends again there. *out gets the reply body. GG_ETIMEDOUT when
 * none came.
 */
static int exchange(gg_client_t *c, cJSON *req, long long first_rid, int timeout_ms,
                    int (*on_event)(void *, const char *), void *user, cJSON **out)
{
    *out = NULL;
    long long rid = ++c->rid;
    ggp_set_rid(req, rid);
    if (first_rid <= 0)
        first_rid = rid;
    double deadline = timeout_ms >= 0 ? ggi_now_ms() + timeout_ms : -1;
    int rc = c->peer ? send_request(c, req) : GG_ETRANSPORT;
    if (rc && c->eps.n < 2 && c->peer)
        return rc;
    int unsent = rc != GG_OK, resets = 0;
    for (;;) {
        double left = deadline - ggi_now_ms();
        if (timeout_ms >= 0 && left <= 0)
            return no_answer(c, timeout_ms);
        const char *why = unsent ? "cannot send" : leave_reason(c);
        if (why) {
            unsent = fail_over(c, deadline, 0) != GG_OK || send_request(c, req) != GG_OK;
            continue;
        }
        int slice = timeout_ms >= 0 ? (int)left + 1 : -1;
        if (c->eps.n > 1 && (slice < 0 || slice > LINK_POLL_MS))
            slice = LINK_POLL_MS;
        gg_transport_msg msg;
        rc = c->tp.vt.peer_recv(c->peer, slice, &msg);
        if (rc == GG_ETIMEDOUT)
            continue;
        if (rc && c->eps.n < 2)
            return rc;
        if (rc) {
            unsent = 1;
            continue;
        }
        c->last_rx = ggi_now_ms();
        int stop = 0;
        if (local_event(c, &msg, on_event, user, &stop)) {
            if (stop)
                return GG_ECANCELLED;
            continue;
        }
        ggp_msg m;
        if (ggp_decode(msg.data, msg.len, &m) != GG_OK)
            continue; /* not for us to fail on: a broken message is skipped */
        if (m.type == GGP_WELCOME) {
            long long hb = GGI_HEARTBEAT_MS;
            ggi_json_int(m.body, "hb_ms", 0, 10, 600000, &hb);
            c->hb_ms = (int)hb;
            c->welcomed = 1;
            c->tried = 0;
            c->heard_passive = 0;
            c->backoff_ms = BACKOFF_MIN_MS;
            atomic_store(&c->active_ep, (int)c->eps.cur);
        } else if (m.type == GGP_RESET) {
            c->welcomed = 0;
            if (++resets <= 3 && send_hello(c) == GG_OK && send_msg(c, req) == GG_OK)
                atomic_fetch_add(&c->n_requests, 1);
        } else if (m.type == GGP_EVENT && on_event) {
            char *text = ggi_json_print(cJSON_GetObjectItemCaseSensitive(m.body, "event"));
            int stop = text ? on_event(user, text) : 0;
            free(text);
            if (stop) {
                ggp_msg_free(&m);
                return GG_ECANCELLED;
            }
        } else if (m.type == GGP_REPLY && ggi_reply_is_passive(m.body)) {
            /* A standby: the request goes to the next endpoint (whatever its rid). */
            unsent = fail_over(c, deadline, 1) != GG_OK || send_request(c, req) != GG_OK;
        } else if (m.type == GGP_REPLY) {
            long long r = (long long)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(m.body, "rid"));
            if (r >= first_rid && r <= rid) {
                atomic_fetch_add(&c->n_replies, 1);
                *out = m.body;
                return GG_OK;
            }
        }
        ggp_msg_free(&m);
    }
}

/* Turns a reply with ok=false into its status and message. */
static int reply_status(const cJSON *reply)
{
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "ok")))
        return GG_OK;
    int code = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(reply, "code"));
    const char *msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(reply, "message"));
    if (code >= 0 || code < -1000)
        code = GG_EINTERNAL;
    return ggi_error(code, "%s", msg ? msg : gg_strerror(code));
}

static int request(gg_client_t *c, cJSON *req, int timeout_ms, cJSON **out)
{
    if (!req)
        return ggi_error(GG_ENOMEM, "out of memory");
    pthread_mutex_lock(&c->mu);
    int rc = exchange(c, req, 0, timeout_ms, NULL, NULL, out);
    pthread_mutex_unlock(&c->mu);
    cJSON_Delete(req);
    if (rc == GG_ETIMEDOUT)
        atomic_fetch_add(&c->n_timeouts, 1);
    if (rc == GG_OK && (rc = reply_status(*out)) != GG_OK) {
        cJSON_Delete(*out);
        *out = NULL;
    }
    return rc;
}

/*
 * Resolves a task's workspace here, on the submitter's side where its sources are (a local
 * repository or directory is packed into the task; a branch is pinned to its commit), so
 * that the orchestrator and every worker read the same base. A workspace of the wrong shape
 * is left for the orchestrator to refuse with its usual message.
 */
static int resolve_task(cJSON *task)
{
    cJSON *ws = cJSON_GetObjectItemCaseSensitive(task, "workspace");
    if (!cJSON_IsObject(ws) || cJSON_GetObjectItemCaseSensitive(ws, "commit") ||
        ggi_ws_check(ws) != GG_OK)
        return GG_OK;
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(task, "task_id"));
    cJSON *own = cJSON_DetachItemViaPointer(task, ws);
    int rc = ggi_orq_resolve_workspace(&own, id, 0);
    cJSON_AddItemToObject(task, "workspace", own);
    return rc;
}

int gg_client_submit_batch(gg_client_t *c, const char *tasks_json, char **out_json)
{
    if (out_json)
        *out_json = NULL;
    if (!c || !tasks_json)
        return ggi_error(GG_EINVAL, "client and tasks must not be NULL");
    cJSON *tasks = NULL;
    int rc = ggi_json_parse(tasks_json, strlen(tasks_json), &tasks);
    if (rc)
        return rc;
    if (!cJSON_IsArray(tasks) || cJSON_GetArraySize(tasks) == 0 ||
        cJSON_GetArraySize(tasks) > GGP_MAX_BATCH) {
        cJSON_Delete(tasks);
        return ggi_error(GG_EINVAL, "tasks must be a JSON array of 1 to %d task objects",
                         GGP_MAX_BATCH);
    }
    /* Tasks whose workspace cannot be resolved here are answered here (their index in
     * local_errors); the others are sent, and the reply's indices mapped back. */
    int n = cJSON_GetArraySize(tasks);
    int *sent_index = calloc((size_t)n, sizeof *sent_index);
    cJSON *send = cJSON_CreateArray(), *local_errors = cJSON_CreateArray();
    if (!sent_index || !send || !local_errors) {
        free(sent_index);
        cJSON_Delete(send);
        cJSON_Delete(local_errors);
        cJSON_Delete(tasks);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    int n_sent = 0;
    for (int i = 0; i < n; i++) {
        cJSON *task = cJSON_DetachItemFromArray(tasks, 0);
        int trc = resolve_task(task);
        if (trc != GG_OK) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "index", i);
            cJSON_AddNumberToObject(e, "code", trc);
            cJSON_AddStringToObject(e, "message", gg_error_last());
            cJSON_AddItemToArray(local_errors, e);
            cJSON_Delete(task);
            continue;
        }
        sent_index[n_sent++] = i;
        cJSON_AddItemToArray(send, task);
    }
    cJSON_Delete(tasks);
    cJSON *reply = NULL;
    if (n_sent) {
        cJSON *req = ggp_build_submit(send);
        rc = request(c, req, c->timeout_ms, &reply);
        if (rc) {
            free(sent_index);
            cJSON_Delete(local_errors);
            return rc;
        }
    } else {
        cJSON_Delete(send);
    }
    cJSON *res = cJSON_CreateObject();
    cJSON *ids = cJSON_CreateArray();
    const cJSON *rids = cJSON_GetObjectItemCaseSensitive(reply, "ids");
    for (int i = 0, k = 0; ids && i < n; i++) {
        if (k < n_sent && sent_index[k] == i)
            cJSON_AddItemToArray(ids, cJSON_Duplicate(cJSON_GetArrayItem(rids, k++), 1));
        else
            cJSON_AddItemToArray(ids, cJSON_CreateNull());
    }
    cJSON *errors = cJSON_DetachItemFromObject(reply, "errors");
    if (!errors)
        errors = cJSON_CreateArray();
    cJSON *e;
    cJSON_ArrayForEach(e, errors)
    {
        cJSON *ix = cJSON_GetObjectItemCaseSensitive(e, "index");
        if (cJSON_IsNumber(ix) && ix->valueint >= 0 && ix->valueint < n_sent)
            cJSON_SetNumberValue(ix, sent_index[ix->valueint]);
    }
    while (cJSON_GetArraySize(local_errors) > 0)
        cJSON_AddItemToArray(errors, cJSON_DetachItemFromArray(local_errors, 0));
    cJSON_Delete(local_errors);
    free(sent_index);
    if (res) {
        cJSON_AddItemToObject(res, "ids", ids);
        cJSON_AddItemToObject(res, "errors", errors);
    } else {
        cJSON_Delete(ids);
        cJSON_Delete(errors);
    }
    cJSON_Delete(reply);
    char *text = res ? ggi_json_print(res) : NULL;
    cJSON_Delete(res);
    if (!text)
        return ggi_error(GG_ENOMEM, "out of memory");
    if (out_json)
        *out_json = text;
    else
        free(text);
    return GG_OK;
}

int gg_client_submit(gg_client_t *c, const char *task_json, char **out_task_id)
{
    if (out_task_id)
        *out_task_id = NULL;
    if (!c || !task_json)
        return ggi_error(GG_EINVAL, "client and task must not be NULL");
    cJSON *task = NULL;
    int rc = ggi_json_parse(task_json, strlen(task_json), &task);
    if (rc)
        return rc;
    if ((rc = resolve_task(task)) != GG_OK) {
        cJSON_Delete(task);
        return rc;
    }
    cJSON *arr = cJSON_CreateArray();
    if (!arr || !cJSON_AddItemToArray(arr, task)) {
        cJSON_Delete(task);
        cJSON_Delete(arr);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    cJSON *req = ggp_build_submit(arr);
    if (!req)
        return ggi_error(GG_ENOMEM, "out of memory");
    cJSON *reply = NULL;
    rc = request(c, req, c->timeout_ms, &reply);
    if (rc)
        return rc;
    const cJSON *err = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(reply, "errors"), 0);
    const char *id = cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(reply, "ids"), 0));
    if (err || !id) {
        int code = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(err, "code"));
        const char *msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(err, "message"));
        rc = ggi_error(code < 0 && code > -1000 ? code : GG_EINVAL, "%s",
                       msg ? msg : "the task was refused");
    } else if (out_task_id && !(*out_task_id = ggi_strdup(id))) {
        rc = ggi_error(GG_ENOMEM, "out of memory");
    }
    cJSON_Delete(reply);
    return rc;
}

int gg_client_wait(gg_client_t *c, const char *task_id, int timeout_ms, char **out_result_json)
{
    if (out_result_json)
        *out_result_json = NULL;
    if (!c || !task_id || !out_result_json)
        return ggi_error(GG_EINVAL, "client, task id and out pointer must not be NULL");
    double deadline = timeout_ms >= 0 ? ggi_now_ms() + timeout_ms : -1;
    long long first = 0;
    cJSON *reply = NULL;
    int rc;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        cJSON *req = ggp_build_wait(task_id);
        if (!req) {
            rc = ggi_error(GG_ENOMEM, "out of memory");
            break;
        }
        int slice = REASK_MS;
        if (deadline >= 0) {
            double left = deadline - ggi_now_ms();
            if (left <= 0) {
                cJSON_Delete(req);
                rc = ggi_error(GG_ETIMEDOUT, "task '%s' did not end within %d ms", task_id,
                               timeout_ms);
                break; /* the task's time, not an unanswered request: not in n_timeouts */
            }
            if (left < slice)
                slice = (int)left + 1;
        }
        long long before = c->rid + 1;
        if (!first)
            first = before;
        rc = exchange(c, req, first, slice, NULL, NULL, &reply);
        cJSON_Delete(req);
        if (rc != GG_ETIMEDOUT)
            break;
        /* Ask again: the orchestrator may have restarted and forgotten the wait. */
    }
    pthread_mutex_unlock(&c->mu);
    if (rc)
        return rc;
    if ((rc = reply_status(reply)) == GG_OK) {
        *out_result_json = ggi_json_print(cJSON_GetObjectItemCaseSensitive(reply, "result"));
        if (!*out_result_json)
            rc = ggi_error(GG_ENOMEM, "out of memory");
    }
    cJSON_Delete(reply);
    return rc;
}

int gg_client_status(gg_client_t *c, const char *task_id, char **out_json)
{
    if (out_json)
        *out_json = NULL;
    if (!c || !out_json)
        return ggi_error(GG_EINVAL, "client and out pointer must not be NULL");
    cJSON *req = ggp_build_status(task_id);
    cJSON *reply = NULL;
    int rc = request(c, req, c->timeout_ms, &reply);
    if (rc)
        return rc;
    *out_json = ggi_json_print(cJSON_GetObjectItemCaseSensitive(reply, "status"));
    cJSON_Delete(reply);
    return *out_json ? GG_OK : ggi_error(GG_ENOMEM, "out of memory");
}

int gg_client_demand(gg_client_t *c, const char *caps_json, char **out_json)
{
    if (out_json)
        *out_json = NULL;
    if (!c || !caps_json || !out_json)
        return ggi_error(GG_EINVAL, "client, capabilities and out pointer must not be NULL");
    cJSON *caps = cJSON_Parse(caps_json);
    if (!cJSON_IsObject(caps)) {
        cJSON_Delete(caps);
        return ggi_error(GG_EINVAL, "demand: the capabilities must be a JSON object");
    }
    cJSON *req = ggp_new(GGP_STATUS);
    if (!req || !cJSON_AddItemToObject(req, "demand", caps)) {
        cJSON_Delete(caps);
        cJSON_Delete(req);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    cJSON *reply = NULL;
    int rc = request(c, req, c->timeout_ms, &reply);
    if (rc)
        return rc;
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(reply, "status"), "demand");
    if (!cJSON_IsObject(d)) {
        cJSON_Delete(reply);
        return ggi_error(GG_EVERSION, "the orchestrator does not answer demand questions "
                         "(older than 1.3)");
    }
    *out_json = ggi_json_print(d);
    cJSON_Delete(reply);
    return *out_json ? GG_OK : ggi_error(GG_ENOMEM, "out of memory");
}

int gg_client_cancel(gg_client_t *c, const char *task_id)
{
    if (!c || !task_id)
        return ggi_error(GG_EINVAL, "client and task id must not be NULL");
    cJSON *req = ggp_build_cancel(task_id, 0);
    cJSON *reply = NULL;
    int rc = request(c, req, c->timeout_ms, &reply);
    cJSON_Delete(reply);
    return rc;
}

/* The "types" array of a watch request from a comma-separated list (checked first: a bad
 * filter is refused here with the scheduler's words, without a round trip). *out NULL: all. */
static int watch_types(const char *types, cJSON **out)
{
    *out = NULL;
    uint32_t mask;
    int rc = ggi_event_filter_list(types, &mask);
    if (rc || !types || !*types)
        return rc;
    cJSON *a = cJSON_CreateArray();
    for (const char *p = types; a;) {
        size_t len = strcspn(p, ",");
        char *v = ggi_strndup(p, len);
        cJSON *t = v ? cJSON_CreateString(v) : NULL;
        free(v);
        if (!t)
            break;
        cJSON_AddItemToArray(a, t);
        if (!p[len]) {
            *out = a;
            return GG_OK;
        }
        p += len + 1;
    }
    cJSON_Delete(a);
    return ggi_error(GG_ENOMEM, "out of memory");
}

int gg_client_watch(gg_client_t *c, int (*fn)(void *user, const char *event_json), void *user,
                    int timeout_ms)
{
    return gg_client_watch_filtered(c, NULL, fn, user, timeout_ms);
}

int gg_client_watch_filtered(gg_client_t *c, const char *types,
                             int (*fn)(void *user, const char *event_json), void *user,
                             int timeout_ms)
{
    if (!c || !fn)
        return ggi_error(GG_EINVAL, "client and callback must not be NULL");
    cJSON *filter = NULL;
    int frc = watch_types(types, &filter);
    if (frc)
        return frc;
    double deadline = timeout_ms >= 0 ? ggi_now_ms() + timeout_ms : -1;
    int rc = GG_OK;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        /* Subscribe (again: a restarted orchestrator forgets watchers), then stream. */
        cJSON *req = ggp_build_watch(filter);
        cJSON *reply = NULL;
        if (!req) {
            rc = ggi_error(GG_ENOMEM, "out of memory");
            break;
        }
        rc = exchange(c, req, 0, c->timeout_ms, fn, user, &reply);
        cJSON_Delete(req);
        if (rc == GG_OK)
            rc = reply_status(reply);
        cJSON_Delete(reply);
        if (rc == GG_ECANCELLED) {
            rc = GG_OK;
            break;
        }
        if (rc && rc != GG_ETIMEDOUT)
            break;
        double until = ggi_now_ms() + REASK_MS * 5;
        if (deadline >= 0 && deadline < until)
            until = deadline;
        int stop = 0;
        while (!stop && ggi_now_ms() < until) {
            gg_transport_msg msg;
            int slice = (int)(until - ggi_now_ms()) + 1;
            if (c->eps.n > 1 && slice > LINK_POLL_MS)
                slice = LINK_POLL_MS;
            int r = c->tp.vt.peer_recv(c->peer, slice, &msg);
            if (r == GG_ETIMEDOUT && c->eps.n > 1 && ggi_now_ms() < until) {
                if (!leave_reason(c))
                    continue;
                fail_over(c, deadline, 0); /* the watch is asked for again there */
                break;
            }
            if (r == GG_ETIMEDOUT)
                break;
            if (r && c->eps.n > 1) {
                fail_over(c, deadline, 0);
                break;
            }
            if (r) {
                rc = r;
                stop = 1;
                break;
            }
            c->last_rx = ggi_now_ms();
            if (local_event(c, &msg, fn, user, &stop))
                continue;
            ggp_msg m;
            if (ggp_decode(msg.data, msg.len, &m) != GG_OK)
                continue;
            if (m.type == GGP_EVENT) {
                char *text = ggi_json_print(cJSON_GetObjectItemCaseSensitive(m.body, "event"));
                if (text && fn(user, text))
                    stop = 1;
                free(text);
            } else if (m.type == GGP_RESET) {
                c->welcomed = 0;
                ggp_msg_free(&m);
                break;
            }
            ggp_msg_free(&m);
        }
        if (stop)
            break;
        rc = GG_OK;
        if (deadline >= 0 && ggi_now_ms() >= deadline)
            break;
    }
    pthread_mutex_unlock(&c->mu);
    cJSON_Delete(filter);
    return rc;
}
