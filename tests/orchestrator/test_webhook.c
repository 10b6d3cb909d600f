/*
 * test_webhook.c - alerts to webhooks (lib/orchestrator/webhook.c, docs/alerts.md), against
 * a small HTTP receiver of the test's own on loopback: a failed task and a spent budget
 * arrive as task.failed and budget.exhausted with their fields, the host's event callback
 * still gets every event; a receiver that answers 500 then 200 gets the retry; one that
 * answers 400 is not retried; a dead receiver costs drops (counted in the stats and status)
 * while the tasks still finish; a full queue drops the overflow; a queue that does not move
 * raises queue.stalled and then queue.resumed; URLs that are not http(s) are refused.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gryphgen.h"
#include "orchestrator/orq.h"
#include "orchestrator/webhook.h"

#include "../testutil.h"
#include "../common/testnet.h"

#define MAX_BODIES 64

/* The receiver: answers each POST with the next status of its script (then 200) and keeps
 * the bodies. */
typedef struct receiver {
    int fd, port;
    pthread_t thread;
    pthread_mutex_t mu;
    int script[8], n_script;
    char *bodies[MAX_BODIES];
    int n;
} receiver;

static void serve_one(receiver *r, int c)
{
    char buf[65536];
    size_t len = 0;
    buf[0] = '\0';
    char *end = NULL;
    while (len < sizeof buf - 1 && !(end = strstr(buf, "\r\n\r\n"))) {
        ssize_t k = recv(c, buf + len, sizeof buf - 1 - len, 0);
        if (k <= 0)
            return;
        len += (size_t)k;
        buf[len] = '\0';
    }
    if (!end)
        return;
    const char *cl = strcasestr(buf, "Content-Length:");
    size_t want = cl ? strtoul(cl + 15, NULL, 10) : 0;
    size_t have = len - (size_t)(end + 4 - buf);
    while (have < want && len < sizeof buf - 1) {
        ssize_t k = recv(c, buf + len, sizeof buf - 1 - len, 0);
        if (k <= 0)
            return;
        len += (size_t)k;
        have += (size_t)k;
        buf[len] = '\0';
    }
    pthread_mutex_lock(&r->mu);
    int status = r->n < r->n_script ? r->script[r->n] : 200;
    if (r->n < MAX_BODIES)
        r->bodies[r->n++] = strdup(end + 4);
    pthread_mutex_unlock(&r->mu);
    char reply[128];
    int n = snprintf(reply, sizeof reply, "HTTP/1.1 %d X\r\nContent-Length: 0\r\n"
                     "Connection: close\r\n\r\n", status);
    (void)!send(c, reply, (size_t)n, MSG_NOSIGNAL);
}

static void *receiver_main(void *arg)
{
    receiver *r = arg;
    for (;;) {
        int c = accept(r->fd, NULL, NULL);
        if (c < 0)
            return NULL; /* shut down */
        serve_one(r, c);
        close(c);
    }
}

/* A loopback listener on a port the kernel picks. */
static int listen_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0 || listen(fd, 16) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static void receiver_start(receiver *r, const int *script, int n_script)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    for (int i = 0; i < n_script; i++)
        r->script[i] = script[i];
    r->n_script = n_script;
    r->fd = listen_loopback(&r->port);
    CHECK(r->fd >= 0);
    CHECK(pthread_create(&r->thread, NULL, receiver_main, r) == 0);
}

static void receiver_stop(receiver *r)
{
    shutdown(r->fd, SHUT_RDWR);
    pthread_join(r->thread, NULL);
    close(r->fd);
    for (int i = 0; i < r->n; i++)
        free(r->bodies[i]);
    pthread_mutex_destroy(&r->mu);
}

static int receiver_count(receiver *r)
{
    pthread_mutex_lock(&r->mu);
    int n = r->n;
    pthread_mutex_unlock(&r->mu);
    return n;
}

/* The first body whose alert is type (and, when given, whose task_id is task), parsed. */
static cJSON *find_alert(receiver *r, const char *type, const char *task)
{
    cJSON *found = NULL;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->n && !found; i++) {
        cJSON *a = cJSON_Parse(r->bodies[i]);
        const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(a, "alert"));
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(a, "task_id"));
        if (t && strcmp(t, type) == 0 && (!task || (id && strcmp(id, task) == 0)))
            found = a;
        else
            cJSON_Delete(a);
    }
    pthread_mutex_unlock(&r->mu);
    return found;
}

typedef struct alert_wait {
    receiver *r;
    const char *type, *task;
} alert_wait;

static int alert_arrived(void *arg)
{
    alert_wait *w = arg;
    cJSON *a = find_alert(w->r, w->type, w->task);
    cJSON_Delete(a);
    return a != NULL;
}

static cJSON *wait_alert(receiver *r, const char *type, const char *task)
{
    alert_wait w = { r, type, task };
    test_wait_for(alert_arrived, &w);
    return find_alert(r, type, task);
}

static const char *str(const cJSON *o, const char *k)
{
    return cJSON_GetStringValue(cJSON_GetObjectItem(o, k));
}

static atomic_int host_events;

static void on_event(void *user, const char *json)
{
    (void)user;
    (void)json;
    atomic_fetch_add(&host_events, 1);
}

static const char *FAILING =
    "{\"task_id\": \"wh/fail\", \"language\": \"python\", \"prompt\": \"p\", "
    "\"entry_point\": \"f\", \"stub\": \"\", \"test\": \"assert f() == 1\\n\", "
    "\"candidates\": [\"def f():\\n    return 2\\n\"], \"budget\": {\"max_attempts\": 1}}";
static const char *WALL =
    "{\"task_id\": \"wh/wall\", \"language\": \"python\", \"prompt\": \"p\", "
    "\"entry_point\": \"f\", \"stub\": \"\", \"test\": \"assert f() == 1\\n\", "
    "\"candidates\": [\"def f():\\n    return 2\\n\", \"def f():\\n    return 3\\n\"], "
    "\"budget\": {\"max_attempts\": 5, \"wall_s\": 0.000001}}";
static const char *PASSING =
    "{\"task_id\": \"wh/pass\", \"language\": \"python\", \"prompt\": \"p\", "
    "\"entry_point\": \"f\", \"stub\": \"\", \"test\": \"assert f() == 1\\n\", "
    "\"candidates\": [\"def f():\\n    return 1\\n\"]}";

/* Whether the orchestrator's webhooks counted 3 alerts as sent. */
static int three_sent(void *o)
{
    char *stats = NULL;
    if (gg_orchestrator_stats(o, &stats) != GG_OK)
        return 0;
    cJSON *st = cJSON_Parse(stats);
    gg_free(stats);
    double sent = cJSON_GetNumberValue(
        cJSON_GetObjectItem(cJSON_GetObjectItem(st, "webhooks"), "sent"));
    cJSON_Delete(st);
    return sent >= 3;
}

static void test_orchestrator_alerts(void)
{
    receiver r;
    receiver_start(&r, NULL, 0);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", r.port);
    const char *hooks[] = { url, NULL };
    gg_orchestrator_options opts = GG_ORCHESTRATOR_OPTIONS_INIT;
    opts.workers = 1;
    opts.webhooks = hooks;
    opts.stall_alert_s = -1;
    opts.event_fn = on_event;
    gg_orchestrator_t *o = NULL;
    CHECK_RC(gg_orchestrator_new(&o, &opts), GG_OK);
    CHECK_RC(gg_orchestrator_submit(o, FAILING, NULL), GG_OK);
    CHECK_RC(gg_orchestrator_submit(o, WALL, NULL), GG_OK);
    CHECK_RC(gg_orchestrator_submit(o, PASSING, NULL), GG_OK);
    CHECK_RC(gg_orchestrator_drain(o, (int)TEST_DEADLINE_MS), GG_OK);

    cJSON *a = wait_alert(&r, "task.failed", "wh/fail");
    CHECK(a != NULL);
    CHECK_STR(str(a, "status"), "failed");
    CHECK_STR(str(a, "source"), "gryphgen");
    CHECK(str(a, "host") && *str(a, "host"));
    CHECK(str(a, "reason") && strstr(str(a, "reason"), "1 attempt"));
    CHECK(cJSON_IsNumber(cJSON_GetObjectItem(a, "ts")));
    CHECK(cJSON_GetObjectItem(a, "type") == NULL);
    cJSON_Delete(a);
    a = wait_alert(&r, "budget.exhausted", "wh/wall");
    CHECK(a != NULL);
    CHECK_STR(str(a, "budget"), "wall");
    CHECK(str(a, "reason") && strstr(str(a, "reason"), "wall budget"));
    cJSON_Delete(a);
    a = find_alert(&r, "task.failed", "wh/pass");
    CHECK(a == NULL); /* a task that passed raises nothing */
    cJSON_Delete(a);
    CHECK(atomic_load(&host_events) > 0); /* the host's callback still gets the events */

    /* The receiver has an alert before its sender has the answer that counts it as sent. */
    CHECK(test_wait_for(three_sent, o));
    char *stats = NULL;
    CHECK_RC(gg_orchestrator_stats(o, &stats), GG_OK);
    cJSON *st = cJSON_Parse(stats);
    const cJSON *wh = cJSON_GetObjectItem(st, "webhooks");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(wh, "sent")) >= 3);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(wh, "dropped")) == 0);
    cJSON_Delete(st);
    gg_free(stats);
    gg_orchestrator_destroy(&o);
    receiver_stop(&r);
}

/* The end cause of a task as its result says (NULL: none); malloc'd. */
static char *end_cause_of(gg_orchestrator_t *o, const char *task_id)
{
    char *res = NULL;
    if (gg_orchestrator_result(o, task_id, &res) != GG_OK)
        return NULL;
    cJSON *j = cJSON_Parse(res);
    gg_free(res);
    const char *c = cJSON_GetStringValue(cJSON_GetObjectItem(j, "end_cause"));
    char *out = c ? strdup(c) : NULL;
    cJSON_Delete(j);
    return out;
}

#define TASK(id, cands, extra)                                                              \
    "{\"task_id\": \"" id "\", \"language\": \"python\", \"prompt\": \"p\", "                 \
    "\"entry_point\": \"f\", \"stub\": \"\", \"test\": \"assert f() == 1\\n\", "                \
    "\"candidates\": [" cands "]" extra "}"
#define WRONG "\"def f():\\n    return 2\\n\""

static int stop_cancelled(void *arg)
{
    char *cause = end_cause_of(arg, "c/stop");
    int ok = cause && strcmp(cause, "cancelled") == 0;
    free(cause);
    return ok;
}

/* Why each task ended is a field, set where the scheduler ends it: in the result (and so
 * status and REST), in task.finished, in the webhook's alerts, and in the metrics; the
 * budget.exhausted alert follows the field. */
static void test_end_causes(void)
{
    receiver r;
    receiver_start(&r, NULL, 0);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", r.port);
    const char *hooks[] = { url, NULL };
    gg_orchestrator_options opts = GG_ORCHESTRATOR_OPTIONS_INIT;
    opts.workers = 1;
    opts.webhooks = hooks;
    opts.stall_alert_s = -1;
    gg_orchestrator_t *o = NULL;
    CHECK_RC(gg_orchestrator_new(&o, &opts), GG_OK);
    static const char *const tasks[][2] = {
        { TASK("c/pass", "\"def f():\\n    return 1\\n\"", ""), "passed" },
        { TASK("c/tries", WRONG "," WRONG, ", \"budget\": {\"max_attempts\": 1}"),
          "budget_attempts" },
        { TASK("c/tests", WRONG, ", \"budget\": {\"max_attempts\": 5}"), "failed_tests" },
        { TASK("c/wall", WRONG "," WRONG,
               ", \"budget\": {\"max_attempts\": 5, \"wall_s\": 0.000001}"), "deadline" },
        { TASK("c/nocode", "", ""), "no_code" },
        { TASK("c/label", WRONG, ", \"requirements\": {\"labels\": {\"zone\": \"mars\"}}"),
          "no_worker" },
    };
    enum { N_TASKS = sizeof tasks / sizeof tasks[0] };
    for (int i = 0; i < N_TASKS; i++)
        CHECK_RC(gg_orchestrator_submit(o, tasks[i][0], NULL), GG_OK);
    CHECK_RC(gg_orchestrator_drain(o, (int)TEST_DEADLINE_MS), GG_OK);
    for (int i = 0; i < N_TASKS; i++) {
        cJSON *t = cJSON_Parse(tasks[i][0]);
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(t, "task_id"));
        char *cause = end_cause_of(o, id);
        CHECK(cause && strcmp(cause, tasks[i][1]) == 0);
        if (!cause || strcmp(cause, tasks[i][1]) != 0)
            fprintf(stderr, "  %s ended %s, want %s\n", id, cause ? cause : "(none)",
                    tasks[i][1]);
        if (i > 0) { /* every one but the first raises task.failed with its cause */
            cJSON *a = wait_alert(&r, "task.failed", id);
            CHECK(a && str(a, "end_cause") && strcmp(str(a, "end_cause"), tasks[i][1]) == 0);
            cJSON_Delete(a);
        }
        free(cause);
        cJSON_Delete(t);
    }
    /* Only the deadline is a spent budget among them (all task.failed alerts are in). */
    cJSON *a = find_alert(&r, "budget.exhausted", "c/wall");
    CHECK(a && str(a, "budget") && strcmp(str(a, "budget"), "wall") == 0);
    cJSON_Delete(a);
    int n_budget = 0;
    pthread_mutex_lock(&r.mu);
    for (int i = 0; i < r.n; i++)
        n_budget += strstr(r.bodies[i], "budget.exhausted") != NULL;
    pthread_mutex_unlock(&r.mu);
    CHECK(n_budget == 1);
    char *text = NULL;
    CHECK_RC(gg_orchestrator_metrics(o, &text), GG_OK);
    CHECK(text && strstr(text, "gryphgen_task_ends_total{cause=\"deadline\"} 1\n"));
    CHECK(text && strstr(text, "gryphgen_task_ends_total{cause=\"no_worker\"} 1\n"));
    CHECK(text && strstr(text, "gryphgen_task_ends_total{cause=\"passed\"} 1\n"));
    gg_free(text);
    gg_orchestrator_destroy(&o);

    /* Cancelled: with no worker at all a task waits in the queue until cancelled. */
    gg_orchestrator_options q = GG_ORCHESTRATOR_OPTIONS_INIT;
    q.local_workers = 0;
    q.webhooks = hooks;
    q.stall_alert_s = -1;
    CHECK_RC(gg_orchestrator_new(&o, &q), GG_OK);
    CHECK_RC(gg_orchestrator_submit(o, TASK("c/stop", WRONG, ""), NULL), GG_OK);
    CHECK_RC(gg_orchestrator_cancel(o, "c/stop"), GG_OK);
    CHECK(test_wait_for(stop_cancelled, o)); /* its end is told once it is durable */
    gg_orchestrator_destroy(&o);
    receiver_stop(&r);
}

typedef struct stats_wait {
    ggi_webhook *w;
    struct gg_orchestrator *o;
    uint64_t sent, dropped;
} stats_wait;

static int stats_reached(void *arg)
{
    stats_wait *s = arg;
    ggi_webhook_stats st;
    if (s->o)
        ggi_orchestrator_webhook_stats(s->o, &st);
    else
        ggi_webhook_get_stats(s->w, &st);
    return st.sent >= s->sent && st.dropped >= s->dropped;
}

static ggi_webhook *hook_for(const char *url, int attempts, double backoff_ms, unsigned qmax)
{
    const char *urls[] = { url, NULL };
    ggi_webhook_options wo;
    memset(&wo, 0, sizeof wo);
    wo.urls = urls;
    wo.stall_s = -1;
    wo.attempts = attempts;
    wo.backoff_ms = backoff_ms;
    wo.queue_max = qmax;
    ggi_webhook *w = NULL;
    CHECK_RC(ggi_webhook_new(&w, &wo), GG_OK);
    return w;
}

static void test_retry_and_refusal(void)
{
    static const int script[] = { 500, 200 };
    receiver r;
    receiver_start(&r, script, 2);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", r.port);
    ggi_webhook *w = hook_for(url, 5, 20, 0);
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "task_id", "t/1");
    ggi_webhook_alert(w, "task.failed", d);
    stats_wait sw = { w, NULL, 1, 0 };
    CHECK(test_wait_for(stats_reached, &sw));
    ggi_webhook_stats st;
    ggi_webhook_get_stats(w, &st);
    CHECK(st.sent == 1 && st.retried == 1 && st.dropped == 0 && st.alerts == 1);
    CHECK(receiver_count(&r) == 2); /* the 500 and the retry */
    ggi_webhook_destroy(&w);
    CHECK(w == NULL);
    receiver_stop(&r);

    /* 400: the receiver refuses the alert itself; it is dropped without retries */
    static const int refuse[] = { 400 };
    receiver_start(&r, refuse, 1);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", r.port);
    w = hook_for(url, 5, 20, 0);
    ggi_webhook_alert(w, "task.failed", d);
    sw = (stats_wait){ w, NULL, 0, 1 };
    CHECK(test_wait_for(stats_reached, &sw));
    ggi_webhook_get_stats(w, &st);
    CHECK(st.retried == 0 && st.sent == 0 && st.dropped == 1);
    ggi_webhook_destroy(&w);
    receiver_stop(&r);
    cJSON_Delete(d);
}

static void test_dead_receiver(void)
{
    int port = test_free_port(); /* nothing listens there, and no other test will */
    CHECK(port > 0);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", port);
    const char *hooks[] = { url, NULL };
    gg_orchestrator_options opts = GG_ORCHESTRATOR_OPTIONS_INIT;
    opts.workers = 1;
    opts.webhooks = hooks;
    opts.stall_alert_s = -1;
    gg_orchestrator_t *o = NULL;
    CHECK_RC(gg_orchestrator_new(&o, &opts), GG_OK);
    CHECK_RC(gg_orchestrator_submit(o, FAILING, NULL), GG_OK);
    CHECK_RC(gg_orchestrator_submit(o, PASSING, NULL), GG_OK);
    /* the scheduler is not held up by the receiver: every task ends */
    CHECK_RC(gg_orchestrator_drain(o, (int)TEST_DEADLINE_MS), GG_OK);
    char *res = NULL;
    CHECK_RC(gg_orchestrator_result(o, "wh/pass", &res), GG_OK);
    CHECK_CONTAINS(res, "\"passed\"");
    gg_free(res);
    stats_wait sw = { NULL, o, 0, 1 };
    CHECK(test_wait_for(stats_reached, &sw));
    char *stats = NULL;
    CHECK_RC(gg_orchestrator_stats(o, &stats), GG_OK);
    cJSON *st = cJSON_Parse(stats);
    const cJSON *wh = cJSON_GetObjectItem(st, "webhooks");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(wh, "dropped")) >= 1);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(wh, "sent")) == 0);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(wh, "retried")) >= 4);
    cJSON_Delete(st);
    gg_free(stats);
    gg_orchestrator_destroy(&o);

    /* a full queue drops what does not fit, at once */
    ggi_webhook *w = hook_for(url, 5, 60000, 2);
    for (int i = 0; i < 10; i++)
        ggi_webhook_alert(w, "task.failed", NULL);
    ggi_webhook_stats s;
    ggi_webhook_get_stats(w, &s);
    CHECK(s.alerts == 10 && s.dropped >= 7 && s.queued <= 2);
    ggi_webhook_destroy(&w); /* does not wait out the minute of backoff */
}

static long long three_waiting(void *user)
{
    (void)user;
    return 3;
}

static void test_stall(void)
{
    receiver r;
    receiver_start(&r, NULL, 0);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", r.port);
    const char *urls[] = { url, NULL };
    ggi_webhook_options wo;
    memset(&wo, 0, sizeof wo);
    wo.urls = urls;
    wo.stall_s = 0.2;
    wo.backlog = three_waiting;
    ggi_webhook *w = NULL;
    CHECK_RC(ggi_webhook_new(&w, &wo), GG_OK);
    cJSON *a = wait_alert(&r, "queue.stalled", NULL);
    CHECK(a != NULL);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(a, "queued")) == 3);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(a, "idle_s")) >= 0.2);
    cJSON_Delete(a);
    ggi_webhook_event(w, "{\"type\":\"job.dispatched\",\"ts\":1,\"task_id\":\"x\"}");
    a = wait_alert(&r, "queue.resumed", NULL);
    CHECK(a != NULL);
    cJSON_Delete(a);
    /* node events and unknown ones */
    ggi_webhook_event(w, "{\"type\":\"node.lost\",\"ts\":1,\"node\":\"gpu-1\","
                         "\"reason\":\"missed 3 heartbeats\"}");
    a = wait_alert(&r, "node.lost", NULL);
    CHECK_STR(str(a, "node"), "gpu-1");
    CHECK_STR(str(a, "reason"), "missed 3 heartbeats");
    cJSON_Delete(a);
    ggi_webhook_event(w, "{\"type\":\"node.quarantined\",\"ts\":1,\"node\":\"flaky\"}");
    a = wait_alert(&r, "node.quarantined", NULL);
    CHECK_STR(str(a, "node"), "flaky");
    cJSON_Delete(a);
    ggi_webhook_event(w, "{\"type\":\"task.finished\",\"ts\":1,\"task_id\":\"r\","
                         "\"status\":\"failed\",\"reason\":\"run token budget of 5 "
                         "(GRYPHGEN_MAX_TOKENS) spent before its first attempt\","
                         "\"end_cause\":\"budget_run_tokens\"}");
    /* The cause decides, never the reason's wording: worded like a budget, it is none. */
    ggi_webhook_event(w, "{\"type\":\"task.finished\",\"ts\":1,\"task_id\":\"r3\","
                         "\"status\":\"failed\",\"reason\":\"token budget of 9 spent "
                         "says the test's own output\",\"end_cause\":\"failed_tests\"}");
    ggi_webhook_event(w, "{\"type\":\"task.finished\",\"ts\":1,\"task_id\":\"r2\","
                         "\"status\":\"failed\",\"reason\":\"run token budget of 5 "
                         "(GRYPHGEN_MAX_TOKENS) spent before its first attempt\","
                         "\"end_cause\":\"budget_run_tokens\"}");
    ggi_webhook_event(w, "not json at all");
    a = wait_alert(&r, "task.failed", "r2");
    cJSON_Delete(a);
    a = find_alert(&r, "budget.exhausted", NULL);
    CHECK(a && str(a, "budget") && strcmp(str(a, "budget"), "run_tokens") == 0);
    CHECK(a && !cJSON_GetObjectItem(a, "task_id")); /* the run's, not a task's */
    cJSON_Delete(a);
    int n_budget = 0;
    pthread_mutex_lock(&r.mu);
    for (int i = 0; i < r.n; i++)
        n_budget += strstr(r.bodies[i], "budget.exhausted") != NULL;
    pthread_mutex_unlock(&r.mu);
    CHECK(n_budget == 1); /* told once for the run, and r3's wording is no budget */
    ggi_webhook_destroy(&w);
    receiver_stop(&r);
}

static void test_bad_urls(void)
{
    static const char *const bad[] = { "ftp://x/", "file:///etc/passwd", "127.0.0.1:80",
                                       "http://a b/" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *hooks[] = { bad[i], NULL };
        gg_orchestrator_options opts = GG_ORCHESTRATOR_OPTIONS_INIT;
        opts.webhooks = hooks;
        gg_orchestrator_t *o = NULL;
        CHECK_RC(gg_orchestrator_new(&o, &opts), GG_EINVAL);
        CHECK(o == NULL);
        CHECK_CONTAINS(gg_error_last(), "http");
    }
    /* options of versions 3 and 4 (the standby pair's fields) are known; 5 is not */
    gg_orchestrator_options opts;
    CHECK_RC(gg_orchestrator_options_init(&opts, 3), GG_OK);
    CHECK(opts.webhooks == NULL && opts.front_door == NULL && opts.stall_alert_s == 0);
    CHECK_RC(gg_orchestrator_options_init(&opts, 4), GG_OK);
    CHECK(opts.ha_role == NULL && opts.ha_peer == NULL && opts.ha_timeout_ms == 0);
    CHECK_RC(gg_orchestrator_options_init(&opts, 5), GG_EVERSION);
}

int main(void)
{
    test_bad_urls();
    test_retry_and_refusal();
    test_stall();
    test_orchestrator_alerts();
    test_end_causes();
    test_dead_receiver();
    return test_exit();
}
