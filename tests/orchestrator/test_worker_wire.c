/*
 * test_worker_wire.c - a real gg_worker_t against a hub written in the test with the ggp/1
 * codec (protocol.h), over the test transport (qtransport.h): what the worker writes on the
 * wire is what the hub's readers take. Its hello decodes with its options; jobs written by
 * ggp_encode_jobs_* run (noop executor) and their results come back in the form the hub's
 * fast reader (ggp_results_scan) takes; jobs beyond the worker's queue are refused in the
 * same form ("worker queue full", retry); a reset makes it say hello again; when stopped it
 * says bye with the codec's bytes. Failure path: a jobs message the decoder refuses (a job
 * without a lease) is dropped by the worker, which still runs the next good one, and so are
 * a lying hub's aborts: for leases it does not hold (nothing stops) or malformed (dropped),
 * and jobs sent before the welcome (dropped: a worker takes jobs only after its welcome).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gryphgen.h>
#include <gryphgen/sys/transport.h>

#include "core/ggi.h"
#include "orchestrator/protocol.h"
#include "qtransport.h"
#include "testutil.h"

#define TASK "{\"task_id\":\"w\",\"language\":\"python\",\"stub\":\"def f():\\n\"," \
             "\"entry_point\":\"f\",\"test\":\"def check(f):\\n    pass\\n\"}"

typedef struct worker_thread {
    gg_worker_t *w;
    int rc;
} worker_thread;

static void *run_worker(void *arg)
{
    worker_thread *wt = arg;
    wt->rc = gg_worker_run(wt->w);
    return NULL;
}

/* The next message of type want the hub gets (others skipped, the worker's heartbeats
 * among them); its sender's identity in from, its bytes in raw (when not NULL). Decoded
 * into *m (the caller frees it); 0 when none came before the deadline. */
static int hub_next(qt *t, void *hub, ggp_type want, ggp_msg *m, char *from, size_t *from_len,
                    ggi_buf *raw)
{
    (void)t;
    double deadline = ggi_now_ms() + TEST_DEADLINE_MS;
    while (ggi_now_ms() < deadline) {
        gg_transport_msg msg;
        int rc = qt_hub_recv(hub, 1000, &msg);
        if (rc == GG_ETIMEDOUT)
            continue;
        if (rc != GG_OK)
            return 0;
        if (ggp_decode(msg.data, msg.len, m) != GG_OK)
            continue;
        if (m->type == want) {
            memcpy(from, msg.peer, msg.peer_len);
            *from_len = msg.peer_len;
            if (raw) {
                raw->len = 0;
                ggi_buf_append(raw, msg.data, msg.len);
            }
            return 1;
        }
        ggp_msg_free(m);
    }
    return 0;
}

static void send_jobs(void *hub, const char *to, size_t to_len, int first_seq, int count)
{
    ggi_buf b = GGI_BUF_INIT;
    CHECK_RC(ggp_encode_jobs_begin(&b), GG_OK);
    for (int i = 0; i < count; i++) {
        char lease[32];
        snprintf(lease, sizeof lease, "%08x", (unsigned)(first_seq + i));
        ggp_job_out j = { lease, first_seq + i, 1, TASK, NULL, NULL, NULL };
        CHECK_RC(ggp_encode_jobs_add(&b, i == 0, &j), GG_OK);
    }
    CHECK_RC(ggp_encode_jobs_end(&b), GG_OK);
    CHECK_RC(qt_hub_send(hub, to, to_len, b.data, b.len), GG_OK);
    ggi_buf_free(&b);
}

/* Reads results until every seq from first to first+count-1 came back once, each through
 * the fast reader; counts the "worker queue full" refusals among them. */
static void collect(qt *t, void *hub, int first, int count, int *refused)
{
    int seen[16] = { 0 }, got = 0;
    *refused = 0;
    ggi_buf raw = GGI_BUF_INIT;
    char from[GG_TRANSPORT_MAX_IDENTITY];
    size_t from_len;
    while (got < count) {
        ggp_msg m = { GGP_UNKNOWN, NULL };
        if (!hub_next(t, hub, GGP_RESULTS, &m, from, &from_len, &raw)) {
            CHECK(!"results did not come back");
            break;
        }
        ggp_msg_free(&m);
        ggp_result *v = NULL;
        int n = 0;
        CHECK_RC(ggp_results_scan(raw.data, raw.len, &v, &n), GG_OK); /* the fast path */
        for (int i = 0; i < n; i++) {
            int k = (int)v[i].seq - first;
            CHECK(k >= 0 && k < count && !seen[k]);
            if (k < 0 || k >= count || seen[k])
                continue;
            seen[k] = 1;
            got++;
            char lease[32];
            snprintf(lease, sizeof lease, "%08x", (unsigned)v[i].seq);
            CHECK_STR(v[i].lease, lease);
            CHECK(v[i].n == 1);
            const cJSON *infra = cJSON_GetObjectItemCaseSensitive(v[i].record, "infra");
            if (infra) {
                CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(infra, "message")),
                          "worker queue full");
                CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(infra, "retry")));
                (*refused)++;
            }
        }
        ggp_results_free(v, n);
    }
    ggi_buf_free(&raw);
}

/* The worker's counter key (gg_worker_stats); -1 when absent. */
static long worker_stat(gg_worker_t *w, const char *key)
{
    char *s = NULL;
    long v = -1;
    if (gg_worker_stats(w, &s) == GG_OK) {
        cJSON *j = cJSON_Parse(s);
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, key);
        if (cJSON_IsNumber(x))
            v = (long)x->valuedouble;
        cJSON_Delete(j);
    }
    gg_free(s);
    return v;
}

static int dropped_one(void *w)
{
    return worker_stat(w, "dropped") == 1;
}

int main(void)
{
    qt t;
    memset(&t, 0, sizeof t);
    pthread_mutex_init(&t.mu, NULL);
    gg_transport_vtable vt = qt_vtable();
    gg_transport_t *tp = NULL;
    void *hub = NULL;
    CHECK_RC(gg_transport_new_custom(&tp, &vt, &t), GG_OK);
    CHECK_RC(qt_hub_open(&t, "bus://wire", &hub), GG_OK);
    gg_executor_options eo;
    gg_executor_options_init(&eo, GG_EXECUTOR_OPTIONS_VERSION);
    eo.backend = "noop";
    gg_executor_t *ex = NULL;
    CHECK_RC(gg_executor_new(&ex, &eo), GG_OK);
    gg_worker_options wo;
    gg_worker_options_init(&wo, GG_WORKER_OPTIONS_VERSION);
    wo.connect = "bus://wire";
    wo.custom_transport = tp;
    wo.slots = 1;
    wo.queue = 1;
    wo.name = "wire-worker";
    wo.executor = ex;
    worker_thread wt = { NULL, -1 };
    if (!tp || !hub || !ex)
        return test_exit();
    CHECK_RC(gg_worker_new(&wt.w, &wo), GG_OK);
    pthread_t th;
    int started = wt.w && pthread_create(&th, NULL, run_worker, &wt) == 0;
    CHECK(started);
    if (!started)
        return test_exit();

    char from[GG_TRANSPORT_MAX_IDENTITY];
    size_t from_len = 0;
    ggp_msg m = { GGP_UNKNOWN, NULL };
    CHECK(hub_next(&t, hub, GGP_HELLO, &m, from, &from_len, NULL));
    if (m.body) {
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m.body, "role")), "worker");
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m.body, "name")),
                  "wire-worker");
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(m.body, "slots")) == 1);
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(m.body, "queue")) == 1);
        /* it says it stops jobs the hub aborts */
        CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(m.body, "caps"), "abort")));
        ggp_msg_free(&m);
    }
    /* Jobs before the welcome are a protocol error: dropped, never run (a result for seq 12
     * would break the collect below). */
    send_jobs(hub, from, from_len, 12, 1);
    CHECK(test_wait_for(dropped_one, wt.w));
    /* a long heartbeat interval: this hub sends none, and the worker must not give up on it */

    cJSON *w = ggp_build_welcome(600000, "wire-worker");
    size_t len = 0;
    char *text = ggp_print(w, &len);
    cJSON_Delete(w);
    CHECK_RC(qt_hub_send(hub, from, from_len, text, len), GG_OK);
    free(text);

    /* Five jobs at a worker that holds two: three refused, two run; all in the fast form. */
    int refused = 0;
    send_jobs(hub, from, from_len, 1, 5);
    collect(&t, hub, 1, 5, &refused);
    CHECK(refused == 3);

    /* A jobs message the decoder refuses is dropped; the next good one runs. */
    const char *bad = "{\"ggp\":1,\"t\":\"jobs\",\"jobs\":[{\"seq\":6,\"n\":1,\"task\":{}}]}";
    CHECK_RC(qt_hub_send(hub, from, from_len, bad, strlen(bad)), GG_OK);
    send_jobs(hub, from, from_len, 7, 1);
    collect(&t, hub, 7, 1, &refused);
    CHECK(refused == 0);

    /* A lying hub's aborts: for a lease the worker never held (or holds no more), and
     * malformed ones (no leases, empty, not strings, too long, not an array) change nothing:
     * the next job runs and its result comes back. */
    cJSON *leases = cJSON_CreateArray();
    cJSON_AddItemToArray(leases, cJSON_CreateString("0123456789abcdef0123456789abcdef"));
    cJSON_AddItemToArray(leases, cJSON_CreateString("00000001")); /* ran and reported above */
    cJSON *ab = ggp_build_abort(leases, "lying hub");
    text = ab ? ggp_print(ab, &len) : NULL;
    cJSON_Delete(ab);
    CHECK(text != NULL);
    if (text)
        CHECK_RC(qt_hub_send(hub, from, from_len, text, len), GG_OK);
    free(text);
    static const char *const bad_aborts[] = {
        "{\"ggp\":1,\"t\":\"abort\"}",
        "{\"ggp\":1,\"t\":\"abort\",\"leases\":[]}",
        "{\"ggp\":1,\"t\":\"abort\",\"leases\":[5]}",
        "{\"ggp\":1,\"t\":\"abort\",\"leases\":[\"\"]}",
        "{\"ggp\":1,\"t\":\"abort\",\"leases\":\"00000009\"}",
        "{\"ggp\":1,\"t\":\"abort\",\"leases\":[\"00000009\"],\"reason\":7}",
        "{\"ggp\":1,\"t\":\"abort\",\"leases\":[\"0123456789abcdef0123456789abcdef"
        "0123456789abcdef0123456789abcdef0\"]}",
    };
    size_t n_bad = sizeof bad_aborts / sizeof *bad_aborts;
    long dropped_before = worker_stat(wt.w, "dropped");
    for (size_t i = 0; i < n_bad; i++)
        CHECK_RC(qt_hub_send(hub, from, from_len, bad_aborts[i], strlen(bad_aborts[i])), GG_OK);
    send_jobs(hub, from, from_len, 9, 1);
    collect(&t, hub, 9, 1, &refused);
    CHECK(refused == 0);
    CHECK(worker_stat(wt.w, "aborted") == 0);
    CHECK(worker_stat(wt.w, "dropped") == dropped_before + (long)n_bad);

    /* reset: the worker says hello again */
    size_t rlen = 0;
    const char *reset = ggp_encode_bare(GGP_RESET, &rlen);
    CHECK_RC(qt_hub_send(hub, from, from_len, reset, rlen), GG_OK);
    CHECK(hub_next(&t, hub, GGP_HELLO, &m, from, &from_len, NULL));
    ggp_msg_free(&m);

    /* stopped, it says bye, in the codec's bytes */
    gg_worker_stop(wt.w);
    ggi_buf raw = GGI_BUF_INIT;
    CHECK(hub_next(&t, hub, GGP_BYE, &m, from, &from_len, &raw));
    ggp_msg_free(&m);
    size_t blen = 0;
    const char *bye = ggp_encode_bare(GGP_BYE, &blen);
    CHECK(raw.len == blen && raw.data && memcmp(raw.data, bye, blen) == 0);
    ggi_buf_free(&raw);
    pthread_join(th, NULL);
    CHECK_RC(wt.rc, GG_OK);
    gg_worker_destroy(&wt.w);
    gg_executor_destroy(&ex);
    qt_close(hub);
    gg_transport_destroy(&tp);
    pthread_mutex_destroy(&t.mu);
    return test_exit();
}
