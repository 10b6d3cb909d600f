/*
 * test_grid.c - the grid's hub, driven over tcp on loopback by hand-written ggp/1 peers
 * (raw ZeroMQ DEALER sockets), so each rule is seen from the wire: the decoder refuses
 * malformed, oversized, unknown and mistyped messages and the hub counts them and stays up;
 * a stale lease's result is ignored and a result is recorded exactly once; a task no
 * connected worker can run fails fast; a full queue answers busy; two submitters share the
 * workers fairly; task requirements parse and round-trip; an infrastructure fault is retried
 * on another node without counting as an attempt; a failing node is quarantined (never the
 * last usable one, and never for generator faults); a schema-2 database migrates to the
 * partial claim indexes of schema 3; the library's rule for unencrypted operation (tcp and
 * ipc need CURVE keys or insecure = 1, and insecure only on loopback). Nothing here sleeps for
 * a set time or measures one: each step waits for what the hub does (a message, a counter, a
 * row, a log line), with TEST_DEADLINE_MS only as a guard against a hang on a busy machine.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>
#include <zmq.h>

#include "gryphgen/client.h"
#include "gryphgen/security.h"
#include "orchestrator/orq.h"
#include "orchestrator/protocol.h"
#include "orchestrator/writer.h"

#include "../testdb.h"
#include "../teststore.h"
#include "../testutil.h"
#include "ggpeer.h"

static char dir[256];

/* What the orchestrator logs, kept for a test to read (under its lock: the scheduler's
 * thread writes). */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static ggi_buf log_text = GGI_BUF_INIT;

static void keep_log(void *user, int level, const char *message)
{
    (void)user;
    (void)level;
    pthread_mutex_lock(&log_mu);
    ggi_buf_printf(&log_text, "%s\n", message);
    pthread_mutex_unlock(&log_mu);
}

/* A copy of the first kept log line that contains needle (NULL when none); free() it. */
static char *log_line(const char *needle)
{
    char *out = NULL;
    pthread_mutex_lock(&log_mu);
    const char *at = log_text.data ? strstr(log_text.data, needle) : NULL;
    if (at) {
        const char *start = at, *stop = strchr(at, '\n');
        while (start > log_text.data && start[-1] != '\n')
            start--;
        out = ggi_strndup(start, stop ? (size_t)(stop - start) : strlen(start));
    }
    pthread_mutex_unlock(&log_mu);
    return out;
}

/* Starts a hub (insecure, no local workers) on a fresh loopback endpoint, written to ep (64
 * bytes), with the database dir/name, whose path is written to db (300 bytes). */
static gg_orchestrator_t *serve(char *ep, char *db, const char *name, unsigned max_queued)
{
    ggpeer_endpoint(ep, 64);
    snprintf(db, 300, "%s/%s", dir, name);
    gg_orchestrator_options o = GG_ORCHESTRATOR_OPTIONS_INIT;
    o.db_path = db;
    o.bind = ep;
    o.insecure = 1;
    o.local_workers = 0;
    o.max_queued = max_queued;
    o.log_fn = keep_log;
    gg_orchestrator_t *orch = NULL;
    CHECK_RC(gg_orchestrator_new(&orch, &o), 0);
    return orch;
}

/* A client of the hub at ep (insecure, on loopback) named name (the default when NULL). */
static gg_client_t *client_to(const char *ep, const char *name)
{
    gg_client_options co = GG_CLIENT_OPTIONS_INIT;
    co.connect = ep;
    co.insecure = 1;
    co.name = name;
    co.timeout_ms = (int)TEST_DEADLINE_MS;
    gg_client_t *c = NULL;
    CHECK_RC(gg_client_new(&c, &co), 0);
    return c;
}

/* Waits until the orchestrator's counter key reaches want; 1 when it did. */
static int wait_stat(gg_orchestrator_t *o, const char *key, long long want)
{
    double end = ggi_now_ms() + TEST_DEADLINE_MS;
    while (ggpeer_hub_stat(o, key) < want) {
        if (ggi_now_ms() > end)
            return 0;
        ggi_sleep_ms(10);
    }
    return 1;
}

/* Waits until sql's first column on db reads want, heartbeating the raw worker hb (when not
 * NULL) meanwhile so that the hub keeps it; 1 when it did. */
static int wait_db(const char *db, const char *sql, long long want, ggpeer *hb)
{
    double end = ggi_now_ms() + TEST_DEADLINE_MS, beat = 0;
    while (test_db_int(db, sql) != want) {
        if (ggi_now_ms() > end)
            return 0;
        if (hb && ggi_now_ms() - beat > 300) {
            ggpeer_send(hb, "{\"ggp\":1,\"t\":\"hb\"}");
            beat = ggi_now_ms();
        }
        ggi_sleep_ms(10);
    }
    return 1;
}

/* Says hello as a worker with slots and runtimes (JSON strings, comma-separated). */
static void raw_worker_hello(ggpeer *r, const char *name, int slots, const char *runtimes)
{
    char caps[512];
    snprintf(caps, sizeof caps,
             "{\"cores\":1,\"memory_mb\":1000,\"gpus\":0,\"runtimes\":[%s],"
             "\"executors\":[\"process\"],\"isolation\":[\"none\",\"rlimits\"],"
             "\"labels\":{\"zone\":\"eu\"}}",
             runtimes);
    CHECK(ggpeer_hello(r, name, slots, caps));
}

static void raw_result(ggpeer *r, const cJSON *job, const char *lease, int passed)
{
    ggpeer_send_record(r, job, lease,
                       passed ? "{\"passed\":true,\"code\":\"x\",\"reason\":null,"
                             "\"durations\":{\"total_ms\":5}}"
                           : "{\"passed\":false,\"code\":\"x\",\"reason\":\"wrong\","
                             "\"durations\":{\"total_ms\":5}}");
}

static const char *task_json(char *buf, size_t n, const char *id, const char *lang)
{
    snprintf(buf, n, "{\"task_id\":\"%s\",\"language\":\"%s\",\"prompt\":\"p\","
             "\"candidates\":[\"x\"],\"budget\":{\"max_attempts\":2}}", id, lang);
    return buf;
}

/* ---- decoder ---- */

/* The fast reader of results messages takes exactly the form workers write, keeps each
 * record's text, and leaves everything else to ggp_decode. */
static void test_results_scan(void)
{
    ggp_result *v = NULL;
    int n = -1;
    const char *ok = "{\"ggp\":1,\"t\":\"results\",\"results\":[{\"lease\":\"1a\",\"seq\":7,"
                     "\"n\":3,\"record\":{\"passed\":false,\"s\":\"}\\\"\"}},{\"lease\":\"1b\","
                     "\"seq\":9,\"n\":1,\"record\":{}}]}";
    CHECK_RC(ggp_results_scan(ok, strlen(ok), &v, &n), GG_OK);
    CHECK(n == 2);
    if (n == 2) {
        CHECK_STR(v[0].lease, "1a");
        CHECK(v[0].seq == 7 && v[0].n == 3 && cJSON_IsObject(v[0].record));
        CHECK(v[0].len == strlen("{\"passed\":false,\"s\":\"}\\\"\"}") &&
              strncmp(v[0].text, "{\"passed\":false,", 16) == 0);
        CHECK(v[1].seq == 9 && v[1].len == 2 && v[1].text[0] == '{');
    }
    ggp_results_free(v, n);
    ggp_msg m;
    CHECK_RC(ggp_decode(ok, strlen(ok), &m), GG_OK);
    ggp_msg_free(&m);
    /* Anything else is for the full decoder: spaces, another order, an escaped or empty or
     * long lease, numbers out of range or not plain, a record that is not an object or not
     * JSON, trailing text, an empty list, another message type. */
    const char *other[] = {
        "{\"ggp\": 1,\"t\":\"results\",\"results\":[{\"lease\":\"a\",\"seq\":1,\"n\":1,\"record\":{}}]}",
        "{\"ggp\":1,\"t\":\"results\",\"results\":[{\"seq\":1,\"lease\":\"a\",\"n\":1,\"record\":{}}]}",
        "{\"ggp\":1,\"t\":\"results\",\"results\":[{\"lease\":\"a\\\"\",\"seq\":1,\"n\":1,\"record\":{}}]}",
        "{\"ggp\":1,\"t\":\"results\",\"results\":[{\"lease\":\"\",\"seq\":1,\"n\":1,\"record\":{}}]}",
        "{\"ggp\":1,\"t\":\"results\",\"results\":[{\"lease\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
        "\"seq\":1,\"n\":1,\"record\":{}}]}",
        "{\"ggp\":1,\"t\":\"results\",\"results\":[{\"lease\":\"a\",\"seq\":0,\"n\":1,\"record\":{}}]}",
        "{\"ggp\":1,\"t\":\"results\",\"results\":[{\"lease\":\"a\",\"seq\":01,\"n\":1,\"record\":{}}]}",
        "{\"ggp\":1,\"t\":\"results\",\"results\":[{\"lease\":\"a\",\"seq\":9007199254740993,\"n\":1,"
        "\"record\":{}}]}",
        "{\"ggp\":1,\"t\":\"results\",\"results\":[{\"lease\":\"a\",\"seq\":1,\"n\":1001,\"record\":{}}]}",
        "{\"ggp\":1,\"t\":\"results\",\"results\":[{\"lease\":\"a\",\"seq\":1.5,\"n\":1,\"record\":{}}]}",
        "{\"ggp\":1,\"t\":\"results\",\"results\":[{\"lease\":\"a\",\"seq\":1,\"n\":1,\"record\":[]}]}",
        "{\"ggp\":1,\"t\":\"results\",\"results\":[{\"lease\":\"a\",\"seq\":1,\"n\":1,\"record\":{\"a\":}}]}",
        "{\"ggp\":1,\"t\":\"results\",\"results\":[{\"lease\":\"a\",\"seq\":1,\"n\":1,\"record\":{\"a\":\"\t\"}}]}",
        "{\"ggp\":1,\"t\":\"results\",\"results\":[{\"lease\":\"a\",\"seq\":1,\"n\":1,\"record\":{}}]} ",
        "{\"ggp\":1,\"t\":\"results\",\"results\":[{\"lease\":\"a\",\"seq\":1,\"n\":1,\"record\":{},\"x\":1}]}",
        "{\"ggp\":1,\"t\":\"results\",\"results\":[]}",
        "{\"ggp\":1,\"t\":\"results\",\"results\":[{\"lease\":\"a\",\"seq\":1,\"n\":1,\"record\":{}}",
        "{\"ggp\":1,\"t\":\"hb\"}",
    };
    for (size_t k = 0; k < sizeof other / sizeof other[0]; k++) {
        v = (ggp_result *)1;
        n = -1;
        CHECK_RC(ggp_results_scan(other[k], strlen(other[k]), &v, &n), GG_ENOTFOUND);
        CHECK(v == NULL && n == 0);
    }
    CHECK_RC(ggp_results_scan(NULL, 0, &v, &n), GG_ENOTFOUND);
    ggp_results_free(NULL, 0);
}

static void test_decoder(void)
{
    ggp_msg m;
    const char *ok = "{\"ggp\":1,\"t\":\"wait\",\"rid\":3,\"id\":\"a\"}";
    CHECK_RC(ggp_decode(ok, strlen(ok), &m), 0);
    CHECK(m.type == GGP_WAIT);
    ggp_msg_free(&m);
    struct { const char *text; int rc; const char *says; } bad[] = {
        { "", GG_EINVAL, "empty" },
        { "{\"ggp\":1,\"t\":\"wait\"", GG_EINVAL, "JSON" },
        { "[1,2]", GG_EINVAL, "object" },
        { "{\"t\":\"hb\"}", GG_EINVAL, "ggp" },
        { "{\"ggp\":2,\"t\":\"hb\"}", GG_EVERSION, "version" },
        { "{\"ggp\":1,\"t\":\"frobnicate\"}", GG_EINVAL, "unknown message type" },
        { "{\"ggp\":1,\"t\":7}", GG_EINVAL, "'t'" },
        { "{\"ggp\":1,\"t\":\"wait\",\"rid\":\"x\",\"id\":\"a\"}", GG_EINVAL, "rid" },
        { "{\"ggp\":1,\"t\":\"wait\",\"rid\":1}", GG_EINVAL, "missing field 'id'" },
        { "{\"ggp\":1,\"t\":\"hello\",\"role\":\"king\",\"versions\":[1]}", GG_EINVAL, "role" },
        { "{\"ggp\":1,\"t\":\"hello\",\"role\":\"worker\",\"versions\":[1],\"slots\":0}",
          GG_EINVAL, "slots" },
        { "{\"ggp\":1,\"t\":\"hello\",\"role\":\"worker\",\"versions\":[1],\"slots\":1,"
          "\"caps\":{\"labels\":{\"a\":1}}}", GG_EINVAL, "labels" },
        { "{\"ggp\":1,\"t\":\"hello\",\"role\":\"worker\",\"versions\":[1],\"slots\":1,"
          "\"caps\":{\"deps\":[\"boost\",7]}}", GG_EINVAL, "'deps'" },
        { "{\"ggp\":1,\"t\":\"hello\",\"role\":\"worker\",\"versions\":[1],\"slots\":1,"
          "\"caps\":{\"deps\":\"boost\"}}", GG_EINVAL, "deps" },
        { "{\"ggp\":1,\"t\":\"results\",\"results\":[{\"lease\":\"1\",\"seq\":1,\"n\":1}]}",
          GG_EINVAL, "record" },
        { "{\"ggp\":1,\"t\":\"results\",\"results\":[]}", GG_EINVAL, "empty" },
        { "{\"ggp\":1,\"t\":\"submit\",\"rid\":1,\"tasks\":{}}", GG_EINVAL, "array" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = ggp_decode(bad[i].text, strlen(bad[i].text), &m);
        CHECK_RC(rc, bad[i].rc);
        CHECK_CONTAINS(gg_error_last(), bad[i].says);
        CHECK(m.body == NULL);
    }
    size_t big = GGP_MAX_MESSAGE + 1;
    char *huge = malloc(big);
    CHECK(huge != NULL);
    if (huge) {
        memset(huge, ' ', big);
        CHECK_RC(ggp_decode(huge, big, &m), GG_ETOOBIG);
        free(huge);
    }
    /* A batch over the limit is refused before anything reads it. */
    ggi_buf b = GGI_BUF_INIT;
    ggi_buf_puts(&b, "{\"ggp\":1,\"t\":\"submit\",\"rid\":1,\"tasks\":[");
    for (int i = 0; i <= GGP_MAX_BATCH; i++)
        ggi_buf_puts(&b, i ? ",{}" : "{}");
    ggi_buf_puts(&b, "]}");
    CHECK_RC(ggp_decode(b.data, b.len, &m), GG_ETOOBIG);
    ggi_buf_free(&b);

    /* Printing into a reused buffer: the same text as cJSON's printer, grown when needed,
     * shrunk text when reused, and the size limit kept. */
    ggi_buf pb = GGI_BUF_INIT;
    cJSON *small = cJSON_Parse("{\"a\":[1,2.5,\"x\\\"y\"],\"b\":null}");
    CHECK_RC(ggp_print_buf(small, &pb), 0);
    CHECK_STR(pb.data, "{\"a\":[1,2.5,\"x\\\"y\"],\"b\":null}");
    CHECK(pb.len == strlen(pb.data));
    cJSON *large = cJSON_CreateObject();
    char *filler = malloc(100000);
    if (filler) {
        memset(filler, 'z', 99999);
        filler[99999] = 0;
        cJSON_AddStringToObject(large, "f", filler);
        CHECK_RC(ggp_print_buf(large, &pb), 0);
        CHECK(pb.len == 99999 + 8 && pb.cap > pb.len);
        free(filler);
    }
    CHECK_RC(ggp_print_buf(small, &pb), 0);
    CHECK(pb.len == strlen("{\"a\":[1,2.5,\"x\\\"y\"],\"b\":null}"));
    size_t over = GGP_MAX_MESSAGE + 16;
    char *huge2 = malloc(over);
    if (huge2) {
        memset(huge2, 'q', over - 1);
        huge2[over - 1] = 0;
        cJSON_Delete(large);
        large = cJSON_CreateObject();
        cJSON_AddStringToObject(large, "f", huge2);
        free(huge2);
        CHECK_RC(ggp_print_buf(large, &pb), GG_ETOOBIG);
        CHECK(pb.len == 0);
    }
    cJSON_Delete(small);
    cJSON_Delete(large);
    ggi_buf_free(&pb);
}

/* ---- task requirements ---- */

static void test_requirements(void)
{
    ggi_task *t = NULL;
    const char *ok = "{\"task_id\":\"r\",\"language\":\"python\",\"requirements\":{\"labels\":"
                     "{\"zone\":\"eu\"},\"gpus\":2}}";
    CHECK_RC(ggi_task_parse(ok, strlen(ok), &t), 0);
    cJSON *j = t ? ggi_task_to_json(t) : NULL;
    const cJSON *req = cJSON_GetObjectItem(j, "requirements");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(req, "gpus")) == 2);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(req, "labels"),
                                                       "zone")), "eu");
    cJSON_Delete(j);
    ggi_task_free(t);
    t = NULL;
    const char *plain = "{\"task_id\":\"r\",\"language\":\"python\"}";
    CHECK_RC(ggi_task_parse(plain, strlen(plain), &t), 0);
    j = t ? ggi_task_to_json(t) : NULL;
    CHECK(cJSON_GetObjectItem(j, "requirements") == NULL); /* ids of old tasks unchanged */
    cJSON_Delete(j);
    ggi_task_free(t);
    const char *bad[] = {
        "{\"task_id\":\"r\",\"language\":\"python\",\"requirements\":[]}",
        "{\"task_id\":\"r\",\"language\":\"python\",\"requirements\":{\"gpus\":-1}}",
        "{\"task_id\":\"r\",\"language\":\"python\",\"requirements\":{\"labels\":{\"a\":1}}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        t = NULL;
        CHECK_RC(ggi_task_parse(bad[i], strlen(bad[i]), &t), GG_EINVAL);
        CHECK_CONTAINS(gg_error_last(), "requirements");
        ggi_task_free(t);
    }
}

/* ---- the hub on the wire ---- */

/* A benchmark worker is one that says skip_attempts (GG_EXECUTOR_CAP_SKIP_ATTEMPTS): it takes
 * tasks of a language it has no runtime for. A worker that says skip_attempts false is not
 * one, whatever its executor is called ("noop"): its tasks go to the worker with the runtime.
 * (A worker without the field and with "noop" is one, as workers before 1.2 say so.) */
static void test_skip_attempts_hello(void)
{
    char ep[64], db[300], buf[512];
    gg_orchestrator_t *o = serve(ep, db, "skip.db", 0);
    if (!o)
        return;
    ggpeer bench;
    ggpeer_open(&bench, ep);
    CHECK(ggpeer_hello(&bench, "bench", 2, "{\"runtimes\":[],\"executors\":[\"bench\"],"
                       "\"isolation\":[\"none\"],\"skip_attempts\":true}"));
    CHECK_RC(gg_orchestrator_submit(o, task_json(buf, sizeof buf, "sk1", "python"), NULL), 0);
    cJSON *jobs = ggpeer_recv(&bench, "jobs", TEST_DEADLINE_MS);
    const cJSON *job = cJSON_GetArrayItem(cJSON_GetObjectItem(jobs, "jobs"), 0);
    CHECK(job != NULL);
    if (job)
        raw_result(&bench, job, NULL, 1);
    cJSON_Delete(jobs);
    char *res = NULL;
    CHECK_RC(gg_orchestrator_wait(o, "sk1", (int)TEST_DEADLINE_MS, &res), 0);
    CHECK_CONTAINS(res, "\"status\":\"passed\"");
    gg_free(res);
    ggpeer_send(&bench, "{\"ggp\":1,\"t\":\"bye\"}");
    ggpeer_close(&bench);

    /* A "noop" that says it is no benchmark gets no python task: the task waits for the
     * worker with the runtime, which comes later (a benchmark would have had it at once). */
    ggpeer named, real;
    ggpeer_open(&named, ep);
    CHECK(ggpeer_hello(&named, "named-noop", 8, "{\"runtimes\":[],\"executors\":[\"noop\"],"
                       "\"isolation\":[\"none\"],\"skip_attempts\":false}"));
    CHECK_RC(gg_orchestrator_submit(o, task_json(buf, sizeof buf, "sk-n", "python"), NULL), 0);
    ggpeer_open(&real, ep);
    raw_worker_hello(&real, "real", 1, "\"python3\"");
    jobs = ggpeer_recv(&real, "jobs", TEST_DEADLINE_MS);
    job = cJSON_GetArrayItem(cJSON_GetObjectItem(jobs, "jobs"), 0);
    CHECK(job != NULL);
    cJSON_Delete(jobs);
    /* Had the hub taken it for a benchmark, the job would wait in its socket (and have
     * come to real only after it was declared dead for not beating). */
    jobs = ggpeer_recv(&named, "jobs", 300);
    CHECK(jobs == NULL);
    cJSON_Delete(jobs);
    ggpeer_close(&named);
    ggpeer_close(&real);
    gg_orchestrator_destroy(&o);
}

/* "requires" (issue 18): of two workers, the task goes to the one that announced the library
 * (caps.deps), never to the one without it; a task requiring a library no connected worker
 * has ends at once, its reason naming the library. */
static void test_requires_dispatch(void)
{
    char ep[64], db[300], buf[512];
    gg_orchestrator_t *o = serve(ep, db, "requires.db", 0);
    if (!o)
        return;
    ggpeer plain, has;
    ggpeer_open(&plain, ep);
    raw_worker_hello(&plain, "plain", 4, "\"python3\"");
    /* plain delivers a result first: its word then counts for ending tasks. */
    CHECK_RC(gg_orchestrator_submit(o, task_json(buf, sizeof buf, "rq0", "python"), NULL), 0);
    cJSON *jobs = ggpeer_recv(&plain, "jobs", TEST_DEADLINE_MS);
    const cJSON *job = cJSON_GetArrayItem(cJSON_GetObjectItem(jobs, "jobs"), 0);
    CHECK(job != NULL);
    if (job)
        raw_result(&plain, job, NULL, 1);
    cJSON_Delete(jobs);
    char *res = NULL;
    CHECK_RC(gg_orchestrator_wait(o, "rq0", (int)TEST_DEADLINE_MS, &res), 0);
    CHECK_CONTAINS(res, "\"status\":\"passed\"");
    gg_free(res);

    ggpeer_open(&has, ep);
    CHECK(ggpeer_hello(&has, "has-md5", 1, "{\"runtimes\":[\"python3\"],\"executors\":"
                       "[\"process\"],\"isolation\":[\"none\"],\"deps\":[\"boost\","
                       "\"go:github.com/stretchr/testify\",\"npm:js-md5\"]}"));
    snprintf(buf, sizeof buf, "{\"task_id\":\"rq1\",\"language\":\"python\",\"candidates\":"
             "[\"x\"],\"requires\":[\"npm:js-md5\",\"go:github.com/stretchr/testify/assert\"]}");
    CHECK_RC(gg_orchestrator_submit(o, buf, NULL), 0);
    jobs = ggpeer_recv(&has, "jobs", TEST_DEADLINE_MS);
    job = cJSON_GetArrayItem(cJSON_GetObjectItem(jobs, "jobs"), 0);
    CHECK(job != NULL);
    if (job) {
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(job, "task"),
                                                           "task_id")), "rq1");
        raw_result(&has, job, NULL, 1);
    }
    cJSON_Delete(jobs);
    CHECK_RC(gg_orchestrator_wait(o, "rq1", (int)TEST_DEADLINE_MS, &res), 0);
    CHECK_CONTAINS(res, "\"status\":\"passed\"");
    gg_free(res);
    /* plain had four free slots all along: it was passed over, not full; one attempt. */
    CHECK(test_db_int(db, "SELECT count(*) FROM attempts a JOIN tasks t ON t.seq = a.task_seq "
                          "WHERE t.task_id = 'rq1'") == 1);

    snprintf(buf, sizeof buf, "{\"task_id\":\"rq2\",\"language\":\"python\",\"candidates\":"
             "[\"x\"],\"requires\":[\"npm:js-md5\",\"rust:no-such-crate\"]}");
    CHECK_RC(gg_orchestrator_submit(o, buf, NULL), 0);
    CHECK_RC(gg_orchestrator_wait(o, "rq2", (int)TEST_DEADLINE_MS, &res), 0);
    CHECK_CONTAINS(res, "\"status\":\"error\"");
    CHECK_CONTAINS(res, "\"attempts\":0");
    CHECK_CONTAINS(res, "no connected worker can run this task");
    CHECK_CONTAINS(res, "library rust:no-such-crate");
    CHECK_CONTAINS(res, "no worker has rust:no-such-crate)"); /* js-md5 is on has-md5 */
    gg_free(res);
    ggpeer_close(&plain);
    ggpeer_close(&has);
    gg_orchestrator_destroy(&o);
}

static void test_garbage_and_leases(void)
{
    char ep[64], db[300], buf[512];
    gg_orchestrator_t *o = serve(ep, db, "leases.db", 0);
    if (!o)
        return;
    ggpeer bad;
    ggpeer_open(&bad, ep);
    ggpeer_send(&bad, "not json at all");
    ggpeer_send(&bad, "{\"ggp\":1,\"t\":\"teleport\"}");
    ggpeer_send(&bad, "{\"ggp\":1,\"t\":\"hello\",\"role\":\"worker\",\"versions\":\"1\"}");
    ggpeer_send(&bad, "{\"ggp\":1,\"t\":\"jobs\",\"jobs\":[{\"lease\":\"1\",\"seq\":1,\"n\":1,"
                   "\"task\":{}}]}"); /* a hub's message, not for the hub */
    size_t big = GGP_MAX_MESSAGE + 10;
    char *huge = malloc(big);
    if (huge) {
        memset(huge, '{', big);
        CHECK(zmq_send(bad.sock, huge, big, 0) == (int)big);
        free(huge);
    }
    CHECK(wait_stat(o, "dropped", 5));
    CHECK(ggpeer_hub_stat(o, "dropped") == 5);
    ggpeer_close(&bad);

    /* A worker by hand: it gets the job on a lease. */
    ggpeer w;
    ggpeer_open(&w, ep);
    raw_worker_hello(&w, "hand", 1, "\"python3\"");
    CHECK_RC(gg_orchestrator_submit(o, task_json(buf, sizeof buf, "t1", "python"), NULL), 0);
    cJSON *jobs = ggpeer_recv(&w, "jobs", TEST_DEADLINE_MS);
    const cJSON *job = cJSON_GetArrayItem(cJSON_GetObjectItem(jobs, "jobs"), 0);
    CHECK(job != NULL);
    if (job) {
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(job, "n")) == 1);
        raw_result(&w, job, "deadbeef", 1); /* a lease the hub never gave */
        CHECK(wait_stat(o, "stale", 1));
        CHECK(ggpeer_hub_stat(o, "stale") == 1);
        CHECK(test_db_int(db, "SELECT count(*) FROM attempts") == 0);
        raw_result(&w, job, NULL, 0); /* the real lease: attempt 1 failed */
        cJSON *jobs2 = ggpeer_recv(&w, "jobs", TEST_DEADLINE_MS);
        const cJSON *job2 = cJSON_GetArrayItem(cJSON_GetObjectItem(jobs2, "jobs"), 0);
        CHECK(job2 && cJSON_GetNumberValue(cJSON_GetObjectItem(job2, "n")) == 2);
        CHECK(job2 && strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(job2, "lease")),
                             cJSON_GetStringValue(cJSON_GetObjectItem(job, "lease"))) != 0);
        raw_result(&w, job, NULL, 1); /* attempt 1 again, duplicated: stale */
        if (job2)
            raw_result(&w, job2, NULL, 1);
        char *res = NULL;
        CHECK_RC(gg_orchestrator_wait(o, "t1", (int)TEST_DEADLINE_MS, &res), 0);
        CHECK_CONTAINS(res, "\"status\":\"passed\"");
        /* The result is built from the task's columns and its attempts (it is not stored
         * as text): the history holds both attempts, the second one passed and is best. */
        cJSON *rj = res ? cJSON_Parse(res) : NULL;
        const cJSON *hist = cJSON_GetObjectItem(rj, "history");
        CHECK(cJSON_GetArraySize(hist) == 2);
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(rj, "attempts")) == 2);
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(rj, "passed_attempt")) == 2);
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(rj, "best_attempt")) == 2);
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(rj, "duration_ms")) >= 0);
        CHECK(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetArrayItem(hist, 0), "passed")));
        CHECK(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(hist, 1), "passed")));
        cJSON_Delete(rj);
        gg_free(res);
        CHECK(test_db_int(db, "SELECT result IS NULL FROM tasks WHERE task_id = 't1'") == 1);
        CHECK(ggpeer_hub_stat(o, "stale") == 2);
        cJSON_Delete(jobs2);
    }
    cJSON_Delete(jobs);
    CHECK(test_db_int(db, "SELECT count(*) FROM attempts") == 2);
    CHECK(test_db_int(db, "SELECT n FROM task_counts WHERE status = 'passed'") == 1);
    CHECK(test_db_int(db, "SELECT count(*) FROM events WHERE kind = 'task.finished'") == 0);
    CHECK(test_db_int(db, "SELECT count(*) FROM node_scores WHERE node = 'hand'") == 1);

    /* Fail fast: the only worker has no C compiler. The task ends with no attempt, for
     * the reason the hub found when it placed it. */
    CHECK_RC(gg_orchestrator_submit(o, task_json(buf, sizeof buf, "t2", "c"), NULL), 0);
    char *res = NULL;
    CHECK_RC(gg_orchestrator_wait(o, "t2", (int)TEST_DEADLINE_MS, &res), 0);
    CHECK_CONTAINS(res, "\"attempts\":0");
    CHECK_CONTAINS(res, "\"status\":\"error\"");
    CHECK_CONTAINS(res, "no connected worker can run this task");
    CHECK_CONTAINS(res, "runtime cc");
    gg_free(res);
    /* ... and so does one that asks for a label no worker has. */
    snprintf(buf, sizeof buf, "{\"task_id\":\"t3\",\"language\":\"python\",\"requirements\":"
             "{\"labels\":{\"zone\":\"us\"}}}");
    CHECK_RC(gg_orchestrator_submit(o, buf, NULL), 0);
    CHECK_RC(gg_orchestrator_wait(o, "t3", (int)TEST_DEADLINE_MS, &res), 0);
    CHECK_CONTAINS(res, "label zone=us");
    gg_free(res);
    /* A row stored without its language and needs (as a store of an older version left it)
     * is placed by reading its spec: the same label is found there. */
    {
        ggi_store *raw_db = NULL;
        CHECK_RC(ggi_store_open(&raw_db, db), 0);
        const char *spec = "{\"task_id\":\"t3s\",\"language\":\"python\",\"requirements\":"
                           "{\"labels\":{\"zone\":\"us\"}}}";
        CHECK_RC(test_task_insert(raw_db, "t3s", spec, "h3s", 0, ggi_wall_s(), NULL, NULL),
                 0);
        ggi_store_close(&raw_db);
        CHECK(test_db_int(db, "SELECT language IS NULL FROM tasks WHERE task_id = 't3s'") == 1);
        CHECK(test_db_int(db, "SELECT count(*) FROM tasks WHERE task_id = 't3' AND language = "
                         "'python' AND needs LIKE '%\"zone\":\"us\"%'") == 1);
        snprintf(buf, sizeof buf, "{\"task_id\":\"t3w\",\"language\":\"python\"}");
        CHECK_RC(gg_orchestrator_submit(o, buf, NULL), 0); /* wakes the scheduler */
        CHECK_RC(gg_orchestrator_wait(o, "t3s", (int)TEST_DEADLINE_MS, &res), 0);
        CHECK_CONTAINS(res, "label zone=us");
        gg_free(res);
        jobs = ggpeer_recv(&w, "jobs", TEST_DEADLINE_MS);
        job = cJSON_GetArrayItem(cJSON_GetObjectItem(jobs, "jobs"), 0);
        CHECK(job != NULL);
        if (job)
            raw_result(&w, job, NULL, 1);
        CHECK_RC(gg_orchestrator_wait(o, "t3w", (int)TEST_DEADLINE_MS, &res), 0);
        CHECK_CONTAINS(res, "\"status\":\"passed\"");
        gg_free(res);
        cJSON_Delete(jobs);
        /* A row whose spec is gone (task_specs changed by hand) ends as an error when it is
         * claimed, instead of failing every claim. */
        CHECK_RC(ggi_store_open(&raw_db, db), 0);
        CHECK_RC(ggi_store_task_insert(raw_db,
                                       &(ggi_task_new){ .task_id = "t3x", .spec_json = "{}",
                                                        .spec_hash = "h3x", .language = "python",
                                                        .now = ggi_wall_s() },
                                       NULL, NULL), 0);
        ggi_store_close(&raw_db);
        CHECK(test_db_exec(db, "DELETE FROM task_specs WHERE seq = (SELECT seq FROM tasks WHERE "
                          "task_id = 't3x')") == SQLITE_OK);
        snprintf(buf, sizeof buf, "{\"task_id\":\"t3y\",\"language\":\"python\"}");
        CHECK_RC(gg_orchestrator_submit(o, buf, NULL), 0); /* wakes the scheduler */
        CHECK_RC(gg_orchestrator_wait(o, "t3x", (int)TEST_DEADLINE_MS, &res), 0);
        CHECK_CONTAINS(res, "\"status\":\"error\"");
        CHECK_CONTAINS(res, "stored task has no spec");
        gg_free(res);
        jobs = ggpeer_recv(&w, "jobs", TEST_DEADLINE_MS);
        job = cJSON_GetArrayItem(cJSON_GetObjectItem(jobs, "jobs"), 0);
        CHECK(job != NULL);
        if (job) {
            CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(job, "task"),
                                                               "task_id")), "t3y");
            raw_result(&w, job, NULL, 1);
        }
        CHECK_RC(gg_orchestrator_wait(o, "t3y", (int)TEST_DEADLINE_MS, &res), 0);
        CHECK_CONTAINS(res, "\"status\":\"passed\"");
        gg_free(res);
        cJSON_Delete(jobs);
    }
    /* ... and one that needs a stronger isolation than any worker announced; a level the
     * worker does announce is matched. */
    snprintf(buf, sizeof buf, "{\"task_id\":\"t3n\",\"language\":\"python\","
             "\"isolation\":\"namespaces\"}");
    CHECK_RC(gg_orchestrator_submit(o, buf, NULL), 0);
    CHECK_RC(gg_orchestrator_wait(o, "t3n", (int)TEST_DEADLINE_MS, &res), 0);
    CHECK_CONTAINS(res, "no connected worker can run this task");
    CHECK_CONTAINS(res, "isolation namespaces or stronger");
    gg_free(res);
    snprintf(buf, sizeof buf, "{\"task_id\":\"t3r\",\"language\":\"python\","
             "\"isolation\":\"rlimits\"}");
    CHECK_RC(gg_orchestrator_submit(o, buf, NULL), 0);
    jobs = ggpeer_recv(&w, "jobs", TEST_DEADLINE_MS);
    job = cJSON_GetArrayItem(cJSON_GetObjectItem(jobs, "jobs"), 0);
    CHECK(job != NULL);
    if (job) {
        const cJSON *task = cJSON_GetObjectItem(job, "task");
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(task, "isolation")), "rlimits");
        raw_result(&w, job, NULL, 1);
        CHECK_RC(gg_orchestrator_wait(o, "t3r", (int)TEST_DEADLINE_MS, &res), 0);
        CHECK_CONTAINS(res, "\"status\":\"passed\"");
        gg_free(res);
    }
    cJSON_Delete(jobs);

    /* A worker that goes silent (still connected) is dead after three missed heartbeats;
     * its job is requeued, for that reason, and goes to the next worker. */
    CHECK_RC(gg_orchestrator_submit(o, task_json(buf, sizeof buf, "t4", "python"), NULL), 0);
    jobs = ggpeer_recv(&w, "jobs", TEST_DEADLINE_MS);
    CHECK(jobs != NULL);
    cJSON_Delete(jobs);
    ggpeer w2;
    ggpeer_open(&w2, ep);
    raw_worker_hello(&w2, "second", 1, "\"python3\"");
    jobs = ggpeer_recv(&w2, "jobs", TEST_DEADLINE_MS);
    job = cJSON_GetArrayItem(cJSON_GetObjectItem(jobs, "jobs"), 0);
    CHECK(job != NULL);
    if (job) {
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(job, "n")) == 1);
        raw_result(&w2, job, NULL, 1);
        CHECK_RC(gg_orchestrator_wait(o, "t4", (int)TEST_DEADLINE_MS, &res), 0);
        CHECK_CONTAINS(res, "\"status\":\"passed\"");
        gg_free(res);
    }
    cJSON_Delete(jobs);
    ggpeer_close(&w);
    CHECK(ggpeer_hub_stat(o, "requeued") == 1);
    ggpeer_close(&w2);
    gg_orchestrator_destroy(&o);
    CHECK(test_db_int(db, "SELECT count(*) FROM events WHERE kind = 'job.requeued' AND "
                     "json_extract(data, '$.node') = 'hand' AND "
                     "json_extract(data, '$.reason') = 'missed 3 heartbeats'") == 1);
}

static void test_busy(void)
{
    char ep[64], db[300], buf[512];
    gg_orchestrator_t *o = serve(ep, db, "busy.db", 10);
    if (!o)
        return;
    gg_client_t *c = client_to(ep, NULL);
    ggi_buf b = GGI_BUF_INIT;
    ggi_buf_puts(&b, "[");
    for (int i = 0; i < 8; i++)
        ggi_buf_printf(&b, "%s%s", i ? "," : "", task_json(buf, sizeof buf, "", "python"));
    ggi_buf_puts(&b, "]");
    /* Eight tasks with distinct ids, then two more fit, then the queue is full. */
    for (int i = 0; i < 8; i++) {
        char id[16];
        snprintf(id, sizeof id, "b%d", i);
        char *p = strstr(b.data, "\"task_id\":\"\"");
        if (p) {
            memmove(p + 11 + strlen(id), p + 11, strlen(p + 11) + 1);
            memcpy(p + 11, id, strlen(id));
        }
    }
    char *reply = NULL;
    CHECK_RC(gg_client_submit_batch(c, b.data, &reply), 0);
    CHECK_CONTAINS(reply, "\"b7\"");
    gg_free(reply);
    ggi_buf_free(&b);
    CHECK_RC(gg_client_submit(c, task_json(buf, sizeof buf, "b8", "python"), NULL), 0);
    CHECK_RC(gg_orchestrator_submit(o, task_json(buf, sizeof buf, "b9", "python"), NULL), 0);
    CHECK_RC(gg_client_submit(c, task_json(buf, sizeof buf, "b10", "python"), NULL), GG_EBUSY);
    CHECK_CONTAINS(gg_error_last(), "queue is full");
    CHECK_RC(gg_orchestrator_submit(o, task_json(buf, sizeof buf, "b11", "python"), NULL),
             GG_EBUSY);
    CHECK(ggpeer_hub_stat(o, "busy") == 2);
    /* Nothing refused was stored; everything accepted was. */
    CHECK(test_db_int(db, "SELECT count(*) FROM tasks") == 10);
    /* status, cancel and wait answer on the same connection. */
    char *st = NULL;
    CHECK_RC(gg_client_status(c, "b3", &st), 0);
    CHECK_CONTAINS(st, "\"status\":\"queued\""); /* no worker: nothing claimed */
    gg_free(st);
    CHECK_RC(gg_client_status(c, "nope", &st), GG_ENOTFOUND);
    CHECK_RC(gg_client_cancel(c, "b3"), 0);
    CHECK_RC(gg_client_cancel(c, "b3"), GG_ESTATE);
    char *res = NULL;
    CHECK_RC(gg_client_wait(c, "b3", (int)TEST_DEADLINE_MS, &res), 0);
    CHECK_CONTAINS(res, "cancelled");
    gg_free(res);
    CHECK_RC(gg_client_wait(c, "b4", 300, &res), GG_ETIMEDOUT); /* queued: no worker */
    CHECK_RC(gg_client_submit(c, task_json(buf, sizeof buf, "b12", "python"), NULL), 0);
    gg_client_destroy(&c);
    CHECK(c == NULL);
    gg_orchestrator_destroy(&o);
}

/* The status counters the hub reports (clients, watchers, nodes), read by client c. */
static int peers_known(gg_client_t *c, long long *clients, long long *watchers, int *nodes)
{
    char *st = NULL;
    if (gg_client_status(c, NULL, &st) != GG_OK)
        return 0;
    cJSON *j = cJSON_Parse(st);
    gg_free(st);
    const cJSON *k = cJSON_GetObjectItem(j, "clients");
    *clients = cJSON_IsNumber(k) ? (long long)k->valuedouble : -1;
    *watchers = (long long)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "watchers"));
    *nodes = cJSON_GetArraySize(cJSON_GetObjectItem(j, "nodes"));
    cJSON_Delete(j);
    return 1;
}

/* Peers that connect, say hello (as clients, one watching, and as workers), or say nothing,
 * then close: the hub forgets every one of them, and keeps the client still connected. */
static void test_peers_forgotten(void)
{
    enum { CLIENTS = 20, WORKERS = 20, SILENT = 10 };
    char ep[64], db[300];
    gg_orchestrator_t *o = serve(ep, db, "peers.db", 100);
    if (!o)
        return;
    gg_client_t *c = client_to(ep, NULL);
    ggpeer peers[CLIENTS + WORKERS + SILENT];
    for (int i = 0; i < CLIENTS + WORKERS + SILENT; i++) {
        ggpeer_open(&peers[i], ep);
        if (i < CLIENTS) {
            ggpeer_send(&peers[i], "{\"ggp\":1,\"t\":\"hello\",\"role\":\"client\",\"name\":\"p\","
                                "\"versions\":[1]}");
            cJSON *w = ggpeer_recv(&peers[i], "welcome", TEST_DEADLINE_MS);
            CHECK(w != NULL);
            cJSON_Delete(w);
        } else if (i < CLIENTS + WORKERS) {
            char name[32];
            snprintf(name, sizeof name, "gone-%d", i);
            raw_worker_hello(&peers[i], name, 1, "\"python\"");
        } else if (i % 2) {
            ggpeer_send(&peers[i], "not json at all");
        }
    }
    ggpeer_send(&peers[0], "{\"ggp\":1,\"t\":\"watch\",\"rid\":7}");
    cJSON *r = ggpeer_recv(&peers[0], "reply", TEST_DEADLINE_MS);
    CHECK(r && cJSON_IsTrue(cJSON_GetObjectItem(r, "ok")));
    cJSON_Delete(r);
    long long clients = -1, watchers = -1;
    int nodes = -1;
    /* Connected clients stay known (c and the raw ones); workers may already be gone for
     * want of heartbeats, so they are not counted here. */
    CHECK(peers_known(c, &clients, &watchers, &nodes));
    CHECK(clients == CLIENTS + 1);
    CHECK(watchers == 1);
    for (int i = 0; i < CLIENTS + WORKERS + SILENT; i++)
        ggpeer_close(&peers[i]);
    double end = ggi_now_ms() + TEST_DEADLINE_MS;
    while (peers_known(c, &clients, &watchers, &nodes) &&
           (clients != 1 || watchers != 0 || nodes != 0) && ggi_now_ms() < end)
        ggi_sleep_ms(50);
    CHECK(clients == 1); /* c only: it is still connected */
    CHECK(watchers == 0);
    CHECK(nodes == 0);
    gg_client_destroy(&c);
    gg_orchestrator_destroy(&o);
}

static int stop_at_once(void *user, const char *event_json)
{
    (void)user;
    (void)event_json;
    return 1;
}

/* The hub's reply to a raw watch request with the given "types" (JSON text): ok, or the
 * refusal's code and message. */
static int raw_watch(ggpeer *p, long long rid, const char *types_json, char *msg, size_t cap)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "{\"ggp\":1,\"t\":\"watch\",\"rid\":%lld,\"types\":%s}", rid,
             types_json);
    ggpeer_send(p, buf);
    cJSON *r = ggpeer_recv(p, "reply", TEST_DEADLINE_MS);
    int ok = r && cJSON_IsTrue(cJSON_GetObjectItem(r, "ok"));
    const char *m = r ? cJSON_GetStringValue(cJSON_GetObjectItem(r, "message")) : NULL;
    snprintf(msg, cap, "%s", m ? m : "");
    int code = r ? (int)cJSON_GetNumberValue(cJSON_GetObjectItem(r, "code")) : 1;
    cJSON_Delete(r);
    return ok ? 0 : code;
}

/* A watch's "types" filter as the hub reads it from any client (the library's client checks
 * it first; a raw one may not): unknown names, prefixes naming nothing, too many or too long
 * entries, non-strings and an empty list are refused with GG_EINVAL and a message naming
 * what is wrong, and the peer does not become a watcher; a good filter makes it one. */
static void test_watch_filter_refusals(void)
{
    char ep[64], db[300];
    gg_orchestrator_t *o = serve(ep, db, "filter.db", 100);
    if (!o)
        return;
    gg_client_t *c = client_to(ep, NULL);
    ggpeer p;
    ggpeer_open(&p, ep);
    ggpeer_send(&p, "{\"ggp\":1,\"t\":\"hello\",\"role\":\"client\",\"name\":\"f\","
                    "\"versions\":[1]}");
    cJSON *w = ggpeer_recv(&p, "welcome", TEST_DEADLINE_MS);
    CHECK(w != NULL);
    cJSON_Delete(w);
    char many[2048] = "[", longname[200], msg[1024];
    for (int i = 0; i < 33; i++)
        strcat(many, i ? ",\"node.lost\"" : "\"node.lost\"");
    strcat(many, "]");
    snprintf(longname, sizeof longname, "[\"task.%0100d\"]", 0);
    static const struct { const char *types, *says; } bad[] = {
        { "[\"task.bogus\"]", "unknown event type 'task.bogus'" },
        { "[\"nodes.\"]", "unknown event type 'nodes.'" },
        { "[\"\"]", "unknown event type ''" },
        { "[]", "1 to 32 entries" },
        { "[1]", "array of strings" },
        { "\"task.finished\"", "array of strings" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(raw_watch(&p, 10 + (long long)i, bad[i].types, msg, sizeof msg) == GG_EINVAL);
        CHECK(strstr(msg, bad[i].says) != NULL);
    }
    CHECK(raw_watch(&p, 30, many, msg, sizeof msg) == GG_EINVAL);
    CHECK(strstr(msg, "1 to 32 entries") != NULL);
    CHECK(raw_watch(&p, 31, longname, msg, sizeof msg) == GG_EINVAL);
    CHECK(strstr(msg, "longer than 64 bytes") != NULL);
    long long clients = -1, watchers = -1;
    int nodes = -1;
    CHECK(peers_known(c, &clients, &watchers, &nodes));
    CHECK(watchers == 0);
    CHECK(raw_watch(&p, 32, "[\"task.\",\"node.lost\"]", msg, sizeof msg) == 0);
    CHECK(peers_known(c, &clients, &watchers, &nodes));
    CHECK(watchers == 1);
    /* The library's client refuses a bad filter itself, with the same words. */
    CHECK(gg_client_watch_filtered(c, "task.finished,bogus", stop_at_once, NULL, 0) ==
          GG_EINVAL);
    CHECK(strstr(gg_error_last(), "unknown event type 'bogus'") != NULL);
    ggpeer_close(&p);
    gg_client_destroy(&c);
    gg_orchestrator_destroy(&o);
}

/* Two submitters, one worker slot: the second, arriving late, is not starved. */
static void test_fair_share(void)
{
    char ep[64], db[300], buf[512];
    gg_orchestrator_t *o = serve(ep, db, "fair.db", 0);
    if (!o)
        return;
    gg_client_t *a = client_to(ep, "alice"), *b = client_to(ep, "bob");
    for (int i = 0; i < 30; i++) {
        char id[16];
        snprintf(id, sizeof id, "a%02d", i);
        CHECK_RC(gg_client_submit(a, task_json(buf, sizeof buf, id, "python"), NULL), 0);
    }
    for (int i = 0; i < 5; i++) {
        char id[16];
        snprintf(id, sizeof id, "b%02d", i);
        CHECK_RC(gg_client_submit(b, task_json(buf, sizeof buf, id, "python"), NULL), 0);
    }
    ggpeer w;
    ggpeer_open(&w, ep);
    raw_worker_hello(&w, "one", 1, "\"python3\"");
    char order[64] = "";
    for (int i = 0; i < 12; i++) {
        cJSON *jobs = ggpeer_recv(&w, "jobs", TEST_DEADLINE_MS);
        const cJSON *job = cJSON_GetArrayItem(cJSON_GetObjectItem(jobs, "jobs"), 0);
        if (!job) {
            cJSON_Delete(jobs);
            break;
        }
        const char *id = cJSON_GetStringValue(
            cJSON_GetObjectItem(cJSON_GetObjectItem(job, "task"), "task_id"));
        order[i] = id ? id[0] : '?';
        raw_result(&w, job, NULL, 1);
        cJSON_Delete(jobs);
    }
    /* Bob's five all run within the first ten jobs, taking turns with Alice's. */
    int bobs = 0;
    for (int i = 0; i < 10; i++)
        bobs += order[i] == 'b';
    CHECK(bobs == 5);
    if (bobs != 5)
        fprintf(stderr, "dispatch order: %s\n", order);
    CHECK(test_db_int(db, "SELECT count(DISTINCT submitter) FROM tasks") == 2);
    ggpeer_close(&w);
    gg_client_destroy(&a);
    gg_client_destroy(&b);
    gg_orchestrator_destroy(&o);
}

/* Tasks claimed at different times still run by priority, then in submission order: the
 * scheduler sorts its active set when it dispatches. */
static void test_priority_dispatch(void)
{
    char ep[64], db[300], buf[512];
    gg_orchestrator_t *o = serve(ep, db, "prio.db", 0);
    if (!o)
        return;
    gg_client_t *c = client_to(ep, "carol");
    for (int i = 0; i < 6; i++) {
        char id[16];
        snprintf(id, sizeof id, "l%d", i);
        CHECK_RC(gg_client_submit(c, task_json(buf, sizeof buf, id, "python"), NULL), 0);
    }
    ggpeer w;
    ggpeer_open(&w, ep);
    raw_worker_hello(&w, "one", 1, "\"python3\"");
    /* The first low task runs; all six are active now. Then higher ones come. */
    cJSON *jobs = ggpeer_recv(&w, "jobs", TEST_DEADLINE_MS);
    const cJSON *job = cJSON_GetArrayItem(cJSON_GetObjectItem(jobs, "jobs"), 0);
    const char *id0 = cJSON_GetStringValue(
        cJSON_GetObjectItem(cJSON_GetObjectItem(job, "task"), "task_id"));
    CHECK_STR(id0, "l0");
    const char *later[] = { "m0", "h0", "h1", "m1", "h2" };
    for (int i = 0; i < 5; i++) {
        snprintf(buf, sizeof buf, "{\"task_id\":\"%s\",\"language\":\"python\","
                 "\"priority\":%d}", later[i], later[i][0] == 'h' ? 7 : 3);
        CHECK_RC(gg_client_submit(c, buf, NULL), 0);
    }
    /* Claimed while l0 runs (the scheduler claims when it is woken, and at least every
     * POLL_MS): the queue is empty once every task is in the active set. Heartbeats keep
     * the raw worker alive meanwhile. */
    CHECK(wait_db(db, "SELECT count(*) FROM queue", 0, &w));
    char order[64] = "";
    size_t len = 0;
    for (int i = 0; i < 11 && job; i++) {
        raw_result(&w, job, NULL, 1);
        cJSON_Delete(jobs);
        jobs = NULL;
        if (i == 10)
            break; /* that was the last task */
        jobs = ggpeer_recv(&w, "jobs", TEST_DEADLINE_MS);
        job = cJSON_GetArrayItem(cJSON_GetObjectItem(jobs, "jobs"), 0);
        const char *id = cJSON_GetStringValue(
            cJSON_GetObjectItem(cJSON_GetObjectItem(job, "task"), "task_id"));
        if (id)
            len += (size_t)snprintf(order + len, sizeof order - len, "%s ", id);
    }
    cJSON_Delete(jobs);
    CHECK_STR(order, "h0 h1 h2 m0 m1 l1 l2 l3 l4 l5 ");
    /* The record stored is the worker's with the node, the lease (only the exact lease
     * counts: 32 hex digits) and the monitor's own "stuck" (the worker's is dropped): valid
     * JSON. */
    CHECK_RC(gg_client_submit(c, task_json(buf, sizeof buf, "rec", "python"), NULL), 0);
    jobs = ggpeer_recv(&w, "jobs", TEST_DEADLINE_MS);
    job = cJSON_GetArrayItem(cJSON_GetObjectItem(jobs, "jobs"), 0);
    CHECK(job != NULL);
    if (job) {
        const char *lease = cJSON_GetStringValue(cJSON_GetObjectItem(job, "lease"));
        CHECK(lease && strlen(lease) == 32 && strspn(lease, "0123456789abcdef") == 32);
        ggpeer_send_record(&w, job, NULL, "{\"passed\":true,\"stuck\":true,\"reason\":\"ok\"}");
        char *res = NULL;
        CHECK_RC(gg_client_wait(c, "rec", (int)TEST_DEADLINE_MS, &res), 0);
        CHECK_CONTAINS(res, "\"status\":\"passed\"");
        gg_free(res);
        CHECK(test_db_int(db, "SELECT json_valid(record) AND json_extract(record, '$.stuck') = 0 "
                         "AND json_extract(record, '$.node') = 'one' AND "
                         "length(json_extract(record, '$.lease')) = 32 AND "
                         "json_extract(record, '$.reason') = 'ok' FROM attempts a JOIN tasks t "
                         "ON t.seq = a.task_seq WHERE t.task_id = 'rec'") == 1);
    }
    cJSON_Delete(jobs);
    ggpeer_close(&w);
    gg_client_destroy(&c);
    gg_orchestrator_destroy(&o);
}

static void *run_worker(void *w)
{
    gg_worker_run(w);
    return NULL;
}

/* The embedded mode is the same hub over inproc: and a bind still serves remote workers. */
static void test_embedded_plus_remote(void)
{
    char ep[64], db[300], buf[512];
    ggpeer_endpoint(ep, sizeof ep);
    snprintf(db, sizeof db, "%s/mixed.db", dir);
    gg_executor_options eo = GG_EXECUTOR_OPTIONS_INIT;
    eo.backend = "noop";
    gg_executor_t *noop = NULL;
    CHECK_RC(gg_executor_new(&noop, &eo), 0);
    CHECK_STR(gg_executor_backend(noop), "noop");
    gg_orchestrator_options o = GG_ORCHESTRATOR_OPTIONS_INIT;
    o.db_path = db;
    o.bind = ep;
    o.insecure = 1;
    o.workers = 1;
    o.executor = noop;
    gg_orchestrator_t *orch = NULL;
    CHECK_RC(gg_orchestrator_new(&orch, &o), 0);
    gg_worker_options wo = GG_WORKER_OPTIONS_INIT;
    wo.connect = ep;
    wo.insecure = 1;
    wo.name = "remote";
    wo.slots = 2;
    wo.executor = noop;
    const char *labels[] = { "zone=eu", NULL };
    wo.labels = labels;
    gg_worker_t *w = NULL;
    CHECK_RC(gg_worker_new(&w, &wo), 0);
    const char *bad_labels[] = { "novalue", NULL };
    wo.labels = bad_labels;
    gg_worker_t *w2 = NULL;
    CHECK_RC(gg_worker_new(&w2, &wo), GG_EINVAL);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, run_worker, w) == 0);
    for (int i = 0; i < 50; i++) {
        char id[16];
        snprintf(id, sizeof id, "m%02d", i);
        CHECK_RC(gg_orchestrator_submit(orch, task_json(buf, sizeof buf, id, "python"), NULL), 0);
    }
    /* Needs the remote worker's label: only it can run this one. */
    snprintf(buf, sizeof buf, "{\"task_id\":\"eu\",\"language\":\"c\",\"requirements\":"
             "{\"labels\":{\"zone\":\"eu\"}}}");
    CHECK_RC(gg_orchestrator_submit(orch, buf, NULL), 0);
    CHECK_RC(gg_orchestrator_drain(orch, (int)TEST_DEADLINE_MS), 0);
    CHECK(test_db_int(db, "SELECT count(*) FROM tasks WHERE status = 'passed'") == 51);
    char *res = NULL;
    CHECK_RC(gg_orchestrator_result(orch, "eu", &res), 0);
    CHECK_CONTAINS(res, "\"node\":\"remote\"");
    gg_free(res);
    char *ws = NULL;
    CHECK_RC(gg_worker_stats(w, &ws), 0);
    CHECK_CONTAINS(ws, "\"jobs\":");
    gg_free(ws);
    gg_worker_stop(w);
    pthread_join(th, NULL);
    gg_worker_destroy(&w);
    CHECK(w == NULL);
    gg_orchestrator_destroy(&orch);
    gg_executor_destroy(&noop);
}

/* ---- schema 3: partial claim indexes ---- */

/* A database of schema 2 (claim indexes over every task) is migrated on open: the claim
 * index then holds queued tasks only, the counts by status are taken into task_counts
 * (no index on status is left to keep), and the tasks are kept and claimed as before. */
/* user: int[2], lines about task 999999 and lines about a lock */
static void count_log(void *user, int level, const char *message)
{
    (void)level;
    int *n = user; /* read by the test while the writer's thread logs */
    __atomic_fetch_add(&n[0], strstr(message, "999999") != NULL, __ATOMIC_SEQ_CST);
    __atomic_fetch_add(&n[1], strstr(message, "locked") != NULL, __ATOMIC_SEQ_CST);
}

/* A commit hook that turns every COMMIT into a ROLLBACK, counting them. */
static int refuse_commit(void *user)
{
    ++*(int *)user;
    return 1;
}

/* A worker whose attempt's record is too large for one message sends its infrastructure
 * fault instead, and the results around it still go. */
static void test_result_too_large(void)
{
    char db[300];
    snprintf(db, sizeof db, "%s/large.db", dir);
    /* Code longer than a message when the prompt asks for it, one line otherwise (run by
     * the default executor: the noop one asks no generator). */
    gg_generator_options go = GG_GENERATOR_OPTIONS_INIT;
    /* GGP_MAX_MESSAGE is 32 MiB (a workspace task's job carries its base's pack). */
    go.spec = "command:if grep -q huge; then head -c 34000000 /dev/zero | tr '\\0' x; "
              "else printf 'x = 1'; fi";
    go.max_output = 64u << 20;
    go.timeout_s = 30;
    gg_generator_t *gen = NULL;
    int rc = gg_generator_new(&gen, &go);
    if (rc == GG_EUNSUPPORTED) {
        fprintf(stderr, "note: command generator not in this build, skipped\n");
        return;
    }
    CHECK_RC(rc, 0);
    gg_orchestrator_options o = GG_ORCHESTRATOR_OPTIONS_INIT;
    o.db_path = db;
    o.workers = 1;
    o.generator = gen;
    o.max_attempts = 1;
    gg_orchestrator_t *orch = NULL;
    CHECK_RC(gg_orchestrator_new(&orch, &o), 0);
    CHECK_RC(gg_orchestrator_submit(orch, "{\"task_id\":\"small1\",\"language\":\"python\","
                                          "\"prompt\":\"one line\"}", NULL), 0);
    CHECK_RC(gg_orchestrator_submit(orch, "{\"task_id\":\"big\",\"language\":\"python\","
                                          "\"prompt\":\"a huge one\"}", NULL), 0);
    CHECK_RC(gg_orchestrator_submit(orch, "{\"task_id\":\"small2\",\"language\":\"python\","
                                          "\"prompt\":\"one line\"}", NULL), 0);
    CHECK_RC(gg_orchestrator_drain(orch, (int)TEST_DEADLINE_MS), 0);
    char *res = NULL;
    CHECK_RC(gg_orchestrator_result(orch, "big", &res), 0);
    CHECK_CONTAINS(res, "\"status\":\"error\"");
    CHECK_CONTAINS(res, "exceeds the message limit");
    gg_free(res);
    for (int i = 0; i < 2; i++) {
        res = NULL;
        CHECK_RC(gg_orchestrator_result(orch, i ? "small2" : "small1", &res), 0);
        CHECK_CONTAINS(res, "\"status\":\"passed\"");
        gg_free(res);
    }
    gg_orchestrator_destroy(&orch);
    gg_generator_destroy(&gen);
}

/* The writer thread on its own: a batch's ops are written in order in one transaction, a
 * failing op is logged and the others stay, the claim is shared among submitters and marks
 * what it took, and an empty queue is reported. */
struct seen_scores {
    int n;
    char lang[16];
    double ok, lat_ms;
    long long count;
};

static void seen_score(void *user, const char *lang, double ok, double lat_ms, long long n)
{
    struct seen_scores *s = user;
    s->n++;
    snprintf(s->lang, sizeof s->lang, "%s", lang);
    s->ok = ok;
    s->lat_ms = lat_ms;
    s->count = n;
}

static void test_writer(void)
{
    char db[300];
    snprintf(db, sizeof db, "%s/writer.db", dir);
    ggi_store *st = NULL;
    ggi_grid_db *g = NULL;
    ggi_writer *w = NULL;
    int logged[2] = { 0, 0 };
    ggi_logger log = { count_log, logged, GG_LOG_ERROR };
    CHECK_RC(ggi_store_open(&st, db), 0);
    CHECK_RC(ggi_grid_db_new(&g, st), 0);
    int64_t seqs[6];
    for (int i = 0; i < 6; i++) {
        char id[16];
        int existing = 0;
        snprintf(id, sizeof id, "w%d", i);
        ggi_task_new t = { .task_id = id, .spec_json = "{}", .spec_hash = id,
                           .submitter = i < 4 ? "ann" : "bo", .language = "python",
                           .now = 1.0 };
        CHECK_RC(ggi_store_task_insert(st, &t, &seqs[i], &existing), 0);
    }
    CHECK_RC(ggi_writer_start(st, g, &log, &w), 0);
    CHECK(ggi_writer_wait(w) == NULL); /* nothing handed over */
    ggi_batch b;
    memset(&b, 0, sizeof b);
    b.claim.want = 4;
    ggi_writer_submit(w, &b);
    CHECK(ggi_writer_wait(w) == &b);
    CHECK(!b.failed && b.n_claimed == 4 && !b.queue_empty);
    int ann = 0, bo = 0;
    for (int i = 0; i < b.n_claimed; i++) {
        ann += strcmp(b.claimed[i].submitter, "ann") == 0;
        bo += strcmp(b.claimed[i].submitter, "bo") == 0;
        CHECK_STR(b.claimed[i].row.language, "python");
    }
    CHECK(ann == 2 && bo == 2); /* an equal share each */
    /* The claim took their queue entries; the task rows were not written. */
    CHECK(test_db_int(db, "SELECT count(*) FROM queue") == 2);
    CHECK(test_db_int(db, "SELECT count(*) FROM tasks WHERE status = 'queued'") == 6);
    CHECK(test_db_int(db, "SELECT n FROM task_counts WHERE status = 'running'") == 4);
    ggi_batch_clear(&b);
    /* Ops in order; the end of an unknown task fails alone. */
    ggi_op a1 = { .kind = GGI_OP_ATTEMPT, .seq = seqs[0], .n = 1, .passed = 1, .count = 0,
                  .ts = 2.0, .code = ggi_strdup("x"), .text = ggi_strdup("{\"n\":1}") };
    ggi_op f1 = { .kind = GGI_OP_FINISH, .seq = seqs[0], .status = GGI_ST_PASSED, .count = 1,
                  .ts = 3.0, .a = 1.5, .n = 1 };
    ggi_op bad = { .kind = GGI_OP_FINISH, .seq = 999999, .status = GGI_ST_ERROR, .count = -1,
                   .ts = 3.0, .text = ggi_strdup("no such task") };
    ggi_op ev = { .kind = GGI_OP_EVENT, .ts = 3.0, .name = ggi_strdup("node.joined"),
                  .text = ggi_strdup("{}") };
    ggi_op sc = { .kind = GGI_OP_SCORE, .name = ggi_strdup("n1"), .code = ggi_strdup("python"),
                  .a = 0.5, .b = 12.0, .count = 3, .ts = 3.0 };
    ggi_op q = { .kind = GGI_OP_QUARANTINE, .name = ggi_strdup("n1"), .ts = 99.0 };
    CHECK_RC(ggi_batch_add(&b, &a1), 0);
    CHECK_RC(ggi_batch_add(&b, &f1), 0);
    CHECK_RC(ggi_batch_add(&b, &bad), 0);
    CHECK_RC(ggi_batch_add(&b, &ev), 0);
    CHECK_RC(ggi_batch_add(&b, &sc), 0);
    CHECK_RC(ggi_batch_add(&b, &q), 0);
    b.claim.want = 10; /* two are left */
    ggi_writer_submit(w, &b);
    CHECK(ggi_writer_wait(w) == &b);
    CHECK(!b.failed && b.n_claimed == 2 && b.queue_empty);
    CHECK(logged[0] == 1); /* the failed op, and only it */
    CHECK(test_db_int(db, "SELECT count(*) FROM attempts") == 1);
    CHECK(test_db_int(db, "SELECT n FROM task_counts WHERE status = 'passed'") == 1);
    CHECK(test_db_int(db, "SELECT n FROM task_counts WHERE status = 'running'") == 5);
    /* The end stored the start the scheduler kept. */
    CHECK(test_db_int(db, "SELECT count(*) FROM tasks WHERE task_id = 'w0' AND status = 'passed' "
                     "AND started_at = 1.5 AND finished_at = 3.0") == 1);
    CHECK(test_db_int(db, "SELECT count(*) FROM events WHERE kind = 'node.joined'") == 1);
    CHECK(test_db_int(db, "SELECT n FROM node_scores WHERE node = 'n1'") == 3);
    ggi_batch_clear(&b);
    /* A node's stored scores are read back in one query at its hello (sched_nodes.c);
     * another node's are not among them, and max bounds how many. */
    struct seen_scores seen = { 0 };
    CHECK_RC(ggi_grid_scores_load(g, "n1", 7, seen_score, &seen), 0);
    CHECK(seen.n == 1 && strcmp(seen.lang, "python") == 0 && seen.ok == 0.5 &&
          seen.lat_ms == 12.0 && seen.count == 3);
    memset(&seen, 0, sizeof seen);
    CHECK_RC(ggi_grid_scores_load(g, "nobody", 7, seen_score, &seen), 0);
    CHECK(seen.n == 0);
    CHECK_RC(ggi_grid_scores_load(g, "n1", 0, seen_score, &seen), 0);
    CHECK(seen.n == 0);
    /* Another connection holds the write lock past the busy timeout: the batch is rolled back
     * and written again, whole, until the lock is gone; it says so, and writes nothing
     * meanwhile. */
    CHECK_RC(ggi_store_set_busy_timeout(st, 50), 0);
    sqlite3 *other = NULL;
    CHECK(sqlite3_open(db, &other) == SQLITE_OK);
    CHECK(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
    ggi_op a2 = { .kind = GGI_OP_ATTEMPT, .seq = seqs[1], .n = 1, .passed = 0, .count = 1,
                  .ts = 4.0, .text = ggi_strdup("{\"n\":1}") };
    ggi_op a3 = a2;
    a3.n = a3.count = 2;
    a3.text = ggi_strdup("{\"n\":2}");
    CHECK_RC(ggi_batch_add(&b, &a2), 0);
    logged[1] = 0;
    ggi_writer_submit(w, &b);
    for (double end = ggi_now_ms() + 60000;
         __atomic_load_n(&logged[1], __ATOMIC_SEQ_CST) == 0 && ggi_now_ms() < end;)
        ggi_sleep_ms(1);
    CHECK(__atomic_load_n(&logged[1], __ATOMIC_SEQ_CST) >= 1); /* the lock is logged */
    ggi_batch *none = NULL;
    CHECK(ggi_writer_poll(w, &none) == 0); /* and waited out, not given up */
    CHECK(test_db_int(db, "SELECT count(*) FROM attempts") == 1);
    sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(other);
    CHECK(ggi_writer_wait(w) == &b);
    CHECK(!b.failed);
    CHECK(test_db_int(db, "SELECT count(*) FROM attempts") == 2);
    CHECK(test_db_int(db, "SELECT attempts FROM tasks WHERE task_id = 'w1'") == 1);
    ggi_batch_clear(&b);
    CHECK_RC(ggi_batch_add(&b, &a3), 0);
    ggi_writer_submit(w, &b);
    CHECK(ggi_writer_wait(w) == &b);
    CHECK(!b.failed);
    CHECK(test_db_int(db, "SELECT count(*) FROM attempts") == 3);
    CHECK(test_db_int(db, "SELECT attempts FROM tasks WHERE task_id = 'w1'") == 2);
    /* A COMMIT that keeps failing (here a commit hook refuses every one) is tried
     * GGI_WRITER_TRIES times, then the writer gives up: the claim is rolled back with the
     * rest, its tasks stay in the queue and none is handed over as claimed. */
    ggi_batch_clear(&b);
    CHECK_RC(ggi_store_begin(st), 0); /* the writer is idle: this thread may write */
    for (int i = 6; i < 8; i++) {
        char id[16];
        int existing = 0;
        int64_t seq = 0;
        snprintf(id, sizeof id, "w%d", i);
        ggi_task_new t = { .task_id = id, .spec_json = "{}", .spec_hash = id,
                           .submitter = "ann", .language = "python", .now = 5.0 };
        CHECK_RC(ggi_store_task_insert(st, &t, &seq, &existing), 0);
    }
    CHECK_RC(ggi_store_commit(st), 0);
    CHECK(test_db_int(db, "SELECT count(*) FROM queue") == 2);
    long long queued_before = test_db_int(db, "SELECT n FROM task_counts WHERE status = 'queued'");
    int commits_refused = 0;
    sqlite3_commit_hook(ggi_store_sqlite(st), refuse_commit, &commits_refused);
    ggi_op a4 = { .kind = GGI_OP_ATTEMPT, .seq = seqs[2], .n = 1, .passed = 0,
                  .count = 1, .ts = 6.0, .text = ggi_strdup("{\"n\":1}") };
    CHECK_RC(ggi_batch_add(&b, &a4), 0);
    b.claim.want = 5;
    logged[0] = 0;
    ggi_writer_submit(w, &b);
    CHECK(ggi_writer_wait(w) == &b);
    sqlite3_commit_hook(ggi_store_sqlite(st), NULL, NULL);
    CHECK(b.failed == 1 && commits_refused == GGI_WRITER_TRIES);
    CHECK(b.n_claimed == 0 && !b.queue_empty);
    CHECK(test_db_int(db, "SELECT count(*) FROM queue") == 2);
    CHECK(test_db_int(db, "SELECT count(*) FROM attempts") == 3);
    CHECK(test_db_int(db, "SELECT n FROM task_counts WHERE status = 'queued'") == queued_before);
    /* The next batch claims them. */
    ggi_batch_clear(&b);
    b.claim.want = 5;
    ggi_writer_submit(w, &b);
    CHECK(ggi_writer_wait(w) == &b);
    CHECK(!b.failed && b.n_claimed == 2);
    CHECK(test_db_int(db, "SELECT count(*) FROM queue") == 0);
    ggi_batch_free(&b);
    ggi_writer_stop(&w);
    CHECK(w == NULL);
    ggi_writer_stop(&w); /* stopped already: fine */
    ggi_grid_db_free(&g);
    ggi_store_close(&st);
}

static void test_schema_migration(void)
{
    char db[300];
    snprintf(db, sizeof db, "%s/v2.db", dir);
    ggi_store *s = NULL;
    CHECK_RC(ggi_store_open(&s, db), 0);
    ggi_store_close(&s);
    /* Back to what schema 2 had, with a queued and an ended task (their specs in the
     * tasks table). */
    CHECK(test_db_exec(db, "DROP TABLE task_counts; DROP TABLE queue; DROP TABLE task_specs;"
                      "ALTER TABLE tasks ADD COLUMN spec TEXT NOT NULL DEFAULT '';"
                      "CREATE INDEX tasks_claim ON tasks(status, priority DESC, seq);"
                      "CREATE INDEX tasks_fair ON tasks(status, submitter, priority DESC, seq);"
                      "INSERT INTO tasks(task_id, spec, spec_hash, status, priority, created_at)"
                      " VALUES ('old-q', '{\"q\":1}', 'h1', 'queued', 0, 1.0),"
                      " ('old-p', '{}', 'h2', 'passed', 0, 1.0),"
                      " ('old-r', '{\"r\":1}', 'h3', 'running', 0, 1.0);"
                      "INSERT INTO attempts(task_seq, n, passed, code, record, created_at)"
                      " SELECT seq, 1, 1, 'x', '{}', 1.0 FROM tasks WHERE task_id = 'old-p';"
                      "PRAGMA user_version = 2;") == SQLITE_OK);
    CHECK(test_db_int(db, "PRAGMA user_version") == 2);
    CHECK_RC(ggi_store_open(&s, db), 0);
    CHECK(test_db_int(db, "PRAGMA user_version") == GGI_STORE_SCHEMA_VERSION);
    /* The queued task waits in the queue (schema 6), which replaced every claim index. */
    CHECK(test_db_int(db, "SELECT count(*) FROM sqlite_master WHERE name IN ('tasks_status', "
                     "'tasks_claim', 'tasks_fair')") == 0);
    CHECK(test_db_int(db, "SELECT count(*) FROM queue q JOIN tasks t ON t.seq = q.seq "
                     "WHERE t.task_id = 'old-q' AND q.submitter = 'local'") == 1);
    CHECK(test_db_int(db, "SELECT count(*) FROM queue") == 1); /* old-r is not queued yet */
    CHECK(test_db_int(db, "SELECT n FROM task_counts WHERE status = 'queued'") == 1);
    CHECK(test_db_int(db, "SELECT n FROM task_counts WHERE status = 'running'") == 1);
    CHECK(test_db_int(db, "SELECT n FROM task_counts WHERE status = 'passed'") == 1);
    CHECK(test_db_int(db, "SELECT n FROM task_counts WHERE status = '#attempts'") == 1);
    /* A task an older version left 'running' reads as running, and recovery queues it. */
    ggi_task_row old = { 0 };
    CHECK_RC(ggi_store_task_get(s, "old-r", &old), 0);
    CHECK_STR(old.status, GGI_ST_RUNNING);
    ggi_store_task_row_free(&old);
    int recovered = 0;
    CHECK_RC(ggi_store_recover(s, &recovered), 0);
    CHECK(recovered == 1);
    CHECK_RC(ggi_store_task_get(s, "old-r", &old), 0);
    CHECK_STR(old.status, GGI_ST_QUEUED);
    ggi_store_task_row_free(&old);
    CHECK(test_db_int(db, "SELECT count(*) FROM queue") == 2);
    /* The table was rebuilt with the cheaper status check, rows and references kept. */
    CHECK(test_db_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'tasks' AND "
                     "sql LIKE '%status = ''cancelled''%' AND sql NOT LIKE '%status IN%'") == 1);
    CHECK(test_db_int(db, "SELECT count(*) FROM sqlite_master WHERE name LIKE 'tasks_v%'") == 0);
    /* The specs moved to task_specs (schema 5), the column left the tasks table. */
    CHECK(test_db_int(db, "SELECT count(*) FROM pragma_table_info('tasks') WHERE name = 'spec'") ==
          0);
    CHECK(test_db_int(db, "SELECT count(*) FROM task_specs s JOIN tasks t ON t.seq = s.seq "
                     "WHERE t.task_id = 'old-q' AND s.spec = '{\"q\":1}'") == 1);
    CHECK(test_db_int(db, "SELECT count(*) FROM task_specs") == 3);
    CHECK(test_db_int(db, "SELECT count(*) FROM attempts a JOIN tasks t ON t.seq = a.task_seq "
                     "WHERE t.task_id = 'old-p'") == 1);
    CHECK(test_db_int(db, "SELECT count(*) FROM pragma_foreign_key_check") == 0);
    CHECK(test_db_exec(db, "UPDATE tasks SET status = 'lost' WHERE task_id = 'old-p'") ==
          SQLITE_CONSTRAINT); /* the check still holds */
    CHECK(test_db_int(db, "SELECT count(*) FROM tasks WHERE status = 'lost'") == 0);
    /* Foreign keys are on again for the store's connection. */
    CHECK_RC(ggi_store_attempt_add(s, 999999, 1, "x", 0, "{}", 3.0, 1), GG_ENOTFOUND);
    ggi_task_row *rows = NULL;
    int n = 0;
    CHECK_RC(test_tasks_claim(s, 10, 2.0, &rows, &n), 0);
    CHECK(n == 2);
    if (n == 2) {
        CHECK_STR(rows[0].task_id, "old-q");
        CHECK_STR(rows[0].spec, "{\"q\":1}");
        CHECK_STR(rows[1].task_id, "old-r");
    }
    for (int i = 0; i < n; i++)
        ggi_store_task_row_free(&rows[i]);
    free(rows);
    ggi_store_counts k;
    memset(&k, 0, sizeof k);
    CHECK_RC(ggi_store_counts_get(s, &k), 0);
    CHECK(k.running == 2 && k.passed == 1 && k.queued == 0 && k.attempts == 1);
    /* The claim took the queue entries. */
    CHECK(test_db_int(db, "SELECT count(*) FROM queue") == 0);
    ggi_store_close(&s);
}

/* ---- infrastructure faults: rerouting, quarantine ---- */

static void raw_infra(ggpeer *r, const cJSON *job, const char *stage)
{
    char rec[256];
    snprintf(rec, sizeof rec, "{\"infra\":{\"stage\":\"%s\",\"status\":-5,"
             "\"message\":\"%s down\",\"retry\":true}}", stage, stage);
    ggpeer_send_record(r, job, NULL, rec);
}

/* Waits up to ms for a jobs message on any of n peers (heartbeating all of them); returns
 * it and sets *which, or NULL. */
static cJSON *recv_any(ggpeer *peers, int n, int ms, int *which)
{
    double end = ggi_now_ms() + ms, hb = 0;
    while (ggi_now_ms() < end) {
        if (ggi_now_ms() - hb > 300) {
            static const char beat[] = "{\"ggp\":1,\"t\":\"hb\"}";
            for (int i = 0; i < n; i++)
                zmq_send(peers[i].sock, beat, sizeof beat - 1, ZMQ_DONTWAIT);
            hb = ggi_now_ms();
        }
        zmq_pollitem_t it[4];
        for (int i = 0; i < n && i < 4; i++) {
            it[i].socket = peers[i].sock;
            it[i].fd = 0;
            it[i].events = ZMQ_POLLIN;
            it[i].revents = 0;
        }
        if (zmq_poll(it, n, 50) <= 0)
            continue;
        for (int i = 0; i < n && i < 4; i++) {
            if (!(it[i].revents & ZMQ_POLLIN))
                continue;
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, peers[i].sock, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&m);
                continue;
            }
            cJSON *j = cJSON_ParseWithLength(zmq_msg_data(&m), zmq_msg_size(&m));
            zmq_msg_close(&m);
            const char *type = cJSON_GetStringValue(cJSON_GetObjectItem(j, "t"));
            if (type && strcmp(type, "jobs") == 0) {
                *which = i;
                return j;
            }
            cJSON_Delete(j);
        }
    }
    return NULL;
}

static double quarantined_until(const char *db, const char *node)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT CAST(quarantined_until AS INTEGER) FROM nodes "
             "WHERE name = '%s'", node);
    return (double)test_db_int(db, sql);
}

/* A job whose execution fails with an infrastructure error on one node is retried, after a
 * backoff (the hub's log says how long it chose), on the other node, with the same attempt
 * number: the fault is not an attempt. */
static void test_infra_reroute(void)
{
    char ep[64], db[300], buf[512];
    gg_orchestrator_t *o = serve(ep, db, "reroute.db", 0);
    if (!o)
        return;
    ggpeer p[2];
    ggpeer_open(&p[0], ep);
    raw_worker_hello(&p[0], "node-a", 1, "\"python3\"");
    ggpeer_open(&p[1], ep);
    raw_worker_hello(&p[1], "node-b", 1, "\"python3\"");
    CHECK_RC(gg_orchestrator_submit(o, task_json(buf, sizeof buf, "rr", "python"), NULL), 0);
    int first = -1, second = -1;
    cJSON *jobs = recv_any(p, 2, (int)TEST_DEADLINE_MS, &first);
    const cJSON *job = cJSON_GetArrayItem(cJSON_GetObjectItem(jobs, "jobs"), 0);
    CHECK(job != NULL);
    if (job) {
        raw_infra(&p[first], job, "execute");
        cJSON *jobs2 = recv_any(p, 2, (int)TEST_DEADLINE_MS, &second);
        const cJSON *job2 = cJSON_GetArrayItem(cJSON_GetObjectItem(jobs2, "jobs"), 0);
        CHECK(job2 != NULL);
        CHECK(second >= 0 && second != first); /* rerouted to the other node */
        /* after a backoff of 100 ms x [0.5, 1.5) */
        char *line = log_line("task 'rr': execute failed");
        double backoff = -1;
        const char *in = line ? strstr(line, "retry 1 in ") : NULL;
        CHECK(in && sscanf(in, "retry 1 in %lf ms", &backoff) == 1);
        CHECK(backoff >= 50 && backoff <= 150);
        if (!(backoff >= 50 && backoff <= 150))
            fprintf(stderr, "the hub logged: %s\n", line ? line : "(nothing)");
        free(line);
        CHECK(job2 && cJSON_GetNumberValue(cJSON_GetObjectItem(job2, "n")) == 1);
        CHECK(job2 && strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(job2, "lease")),
                             cJSON_GetStringValue(cJSON_GetObjectItem(job, "lease"))) != 0);
        if (job2 && second >= 0)
            raw_result(&p[second], job2, NULL, 1);
        char *res = NULL;
        CHECK_RC(gg_orchestrator_wait(o, "rr", (int)TEST_DEADLINE_MS, &res), 0);
        cJSON *r = cJSON_Parse(res);
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(r, "status")), "passed");
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(r, "attempts")) == 1);
        cJSON_Delete(r);
        gg_free(res);
        CHECK(test_db_int(db, "SELECT count(*) FROM attempts") == 1);
        snprintf(buf, sizeof buf, "SELECT count(*) FROM attempts WHERE "
                 "json_extract(record, '$.node') = 'node-%c'", second == 0 ? 'a' : 'b');
        CHECK(test_db_int(db, buf) == 1);
        cJSON_Delete(jobs2);
    }
    cJSON_Delete(jobs);
    ggpeer_close(&p[0]);
    ggpeer_close(&p[1]);
    gg_orchestrator_destroy(&o);
}

/* A node whose executor keeps failing is quarantined (event, nodes table) and gets no more
 * jobs while the other node takes them; generator faults do not count against a node; the
 * last usable node is never quarantined. */
static void test_quarantine(void)
{
    char ep[64], db[300], buf[512];
    gg_orchestrator_t *o = serve(ep, db, "quarantine.db", 0);
    if (!o)
        return;
    /* p[0] "flaky" fails every job at the executor; p[1] "steady" holds its first job until
     * the flaky one has failed enough of the others to be quarantined, then passes it. */
    ggpeer p[2];
    ggpeer_open(&p[0], ep);
    raw_worker_hello(&p[0], "flaky", 1, "\"python3\"");
    ggpeer_open(&p[1], ep);
    raw_worker_hello(&p[1], "steady", 1, "\"python3\"");
    enum { N = 6 };
    for (int i = 0; i < N; i++) {
        char id[16];
        snprintf(id, sizeof id, "q%d", i);
        CHECK_RC(gg_orchestrator_submit(o, task_json(buf, sizeof buf, id, "python"), NULL), 0);
    }
    int faults = 0, after = 0, passed = 0;
    double until = 0;
    cJSON *held = NULL;
    double end = ggi_now_ms() + TEST_DEADLINE_MS;
    while (passed < N && ggi_now_ms() < end) {
        int w = -1;
        cJSON *jobs = recv_any(p, 2, 100, &w);
        const cJSON *j;
        cJSON_ArrayForEach(j, cJSON_GetObjectItem(jobs, "jobs"))
        {
            if (w == 0) {
                if (until > 0)
                    after++; /* a job for a quarantined node */
                raw_infra(&p[0], j, "execute");
                faults++;
            } else if (!held) {
                held = cJSON_Duplicate(j, 1);
            } else {
                raw_result(&p[1], j, NULL, 1); /* more than its slot: answer at once */
                passed++;
            }
        }
        cJSON_Delete(jobs);
        if (held && faults >= GGI_QUARANTINE_STREAK) {
            raw_result(&p[1], held, NULL, 1);
            cJSON_Delete(held);
            held = NULL;
            passed++;
        }
        if (until == 0 && faults >= GGI_QUARANTINE_STREAK)
            until = quarantined_until(db, "flaky");
    }
    cJSON_Delete(held);
    CHECK_RC(gg_orchestrator_drain(o, (int)TEST_DEADLINE_MS), 0);
    CHECK(faults >= GGI_QUARANTINE_STREAK);
    CHECK(until > 0);
    CHECK(after == 0);
    CHECK(passed == N);
    CHECK(quarantined_until(db, "steady") == 0);
    CHECK(test_db_int(db, "SELECT count(*) FROM events WHERE kind = 'node.quarantined' AND "
                     "json_extract(data, '$.node') = 'flaky'") == 1);
    CHECK(test_db_int(db, "SELECT count(*) FROM tasks WHERE status = 'passed'") == N);
    CHECK(test_db_int(db, "SELECT count(*) FROM attempts WHERE "
                     "json_extract(record, '$.node') <> 'steady'") == 0);
    ggpeer_close(&p[0]);
    ggpeer_close(&p[1]);
    gg_orchestrator_destroy(&o);

    /* Generator faults on one node, with another node connected: no quarantine. Then the
     * same node alone, failing at the executor: it is the last usable node and stays. */
    o = serve(ep, db, "quarantine2.db", 0);
    if (!o)
        return;
    ggpeer_open(&p[0], ep);
    raw_worker_hello(&p[0], "genfault", 1, "\"python3\"");
    ggpeer_open(&p[1], ep);
    raw_worker_hello(&p[1], "idle", 1, "\"python3\"");
    CHECK_RC(gg_orchestrator_submit(o, task_json(buf, sizeof buf, "g0", "python"), NULL), 0);
    CHECK_RC(gg_orchestrator_submit(o, task_json(buf, sizeof buf, "g1", "python"), NULL), 0);
    int gen_faults = 0;
    cJSON *idle_job = NULL;
    /* The task the idle node does not hold faults once and then on every retry: it ends. */
    end = ggi_now_ms() + TEST_DEADLINE_MS;
    while (gen_faults < GGI_INFRA_RETRIES + 1 && ggi_now_ms() < end) {
        int w = -1;
        cJSON *jobs = recv_any(p, 2, 200, &w);
        const cJSON *j;
        cJSON_ArrayForEach(j, cJSON_GetObjectItem(jobs, "jobs"))
        {
            if (w == 0) {
                raw_infra(&p[0], j, "generate");
                gen_faults++;
            } else if (!idle_job) {
                idle_job = cJSON_Duplicate(j, 1); /* held: the idle node stays busy */
            }
        }
        cJSON_Delete(jobs);
    }
    CHECK(gen_faults == GGI_INFRA_RETRIES + 1);
    CHECK(quarantined_until(db, "genfault") == 0);
    CHECK(test_db_int(db, "SELECT count(*) FROM events WHERE kind = 'node.quarantined'") == 0);
    if (idle_job)
        raw_result(&p[1], idle_job, NULL, 1);
    cJSON_Delete(idle_job);
    ggpeer_send(&p[1], "{\"ggp\":1,\"t\":\"bye\"}"); /* "genfault" is the last node now */
    end = ggi_now_ms() + TEST_DEADLINE_MS;
    while (ggpeer_hub_stat(o, "nodes") > 1 && ggi_now_ms() < end) {
        int w = -1;
        cJSON_Delete(recv_any(p, 1, 50, &w));
    }
    CHECK(ggpeer_hub_stat(o, "nodes") == 1);
    ggpeer_close(&p[1]);
    CHECK_RC(gg_orchestrator_submit(o, task_json(buf, sizeof buf, "last", "python"), NULL), 0);
    int exec_faults = 0;
    end = ggi_now_ms() + TEST_DEADLINE_MS;
    while (ggi_now_ms() < end) {
        int w = -1;
        cJSON *jobs = recv_any(p, 1, 300, &w);
        const cJSON *j;
        cJSON_ArrayForEach(j, cJSON_GetObjectItem(jobs, "jobs"))
        {
            raw_infra(&p[0], j, "execute");
            exec_faults++;
        }
        cJSON_Delete(jobs);
        char *res = NULL;
        if (gg_orchestrator_wait(o, "last", 0, &res) == 0) {
            cJSON *r = cJSON_Parse(res);
            CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(r, "status")), "error");
            CHECK_CONTAINS(cJSON_GetStringValue(cJSON_GetObjectItem(r, "reason")), "execute");
            cJSON_Delete(r);
            gg_free(res);
            break;
        }
    }
    /* 3 in a row and more: still in service. */
    if (exec_faults != GGI_INFRA_RETRIES + 1)
        fprintf(stderr, "last node: %d executor faults\n", exec_faults);
    CHECK(exec_faults == GGI_INFRA_RETRIES + 1);
    CHECK(quarantined_until(db, "genfault") == 0);
    CHECK(test_db_int(db, "SELECT count(*) FROM events WHERE kind = 'node.quarantined'") == 0);
    ggpeer_close(&p[0]);
    gg_orchestrator_destroy(&o);
}

/* Writes text to path with the given mode; 0 on success. */
static int write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int ok = fputs(text, f) >= 0;
    ok = (fclose(f) == 0) && ok;
    return ok && chmod(path, mode) == 0 ? 0 : -1;
}

/* The rule for unencrypted operation in the library, as the headers state it: without CURVE
 * keys a tcp:// or ipc:// endpoint needs insecure = 1 (loopback included), insecure = 1 is
 * refused on an endpoint that is not loopback, inproc:// needs nothing, and with keys any
 * endpoint is accepted; keys come in pairs. The messages name the options to set. */
static void test_security_rule(void)
{
    char ep[64], sock[300], cmd[400];
    ggpeer_endpoint(ep, sizeof ep);

    /* Loopback without keys and without insecure: refused for all three objects. */
    gg_orchestrator_t *o = NULL;
    gg_orchestrator_options oo = GG_ORCHESTRATOR_OPTIONS_INIT;
    oo.local_workers = 0;
    oo.bind = ep;
    CHECK_RC(gg_orchestrator_new(&o, &oo), GG_EINVAL);
    CHECK(o == NULL);
    CHECK_CONTAINS(gg_error_last(), "no CURVE keys");
    CHECK_CONTAINS(gg_error_last(), "'insecure'");
    CHECK_CONTAINS(gg_error_last(), "curve_key_file and authorized_keys_file");
    CHECK_CONTAINS(gg_error_last(), ep);
    snprintf(sock, sizeof sock, "ipc://%s/rule.sock", dir);
    oo.bind = sock;
    CHECK_RC(gg_orchestrator_new(&o, &oo), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "'insecure'");

    gg_worker_t *w = NULL;
    gg_worker_options wo = GG_WORKER_OPTIONS_INIT;
    wo.connect = "tcp://127.0.0.1:5555";
    CHECK_RC(gg_worker_new(&w, &wo), GG_EINVAL);
    CHECK(w == NULL);
    CHECK_CONTAINS(gg_error_last(), "'insecure'");
    CHECK_CONTAINS(gg_error_last(), "curve_key_file and curve_server_key");
    wo.connect = "tcp://[::1]:5555";
    CHECK_RC(gg_worker_new(&w, &wo), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "'insecure'");

    gg_client_t *c = NULL;
    gg_client_options co = GG_CLIENT_OPTIONS_INIT;
    co.connect = "tcp://localhost:5555";
    CHECK_RC(gg_client_new(&c, &co), GG_EINVAL);
    CHECK(c == NULL);
    CHECK_CONTAINS(gg_error_last(), "'insecure'");
    co.connect = sock;
    CHECK_RC(gg_client_new(&c, &co), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "curve_key_file and curve_server_key");

    /* insecure = 1 on an endpoint that is not loopback: refused; one such endpoint in a list
     * refuses the whole bind. */
    char binds[400];
    snprintf(binds, sizeof binds, "%s,tcp://0.0.0.0:0", ep);
    oo.bind = binds;
    oo.insecure = 1;
    CHECK_RC(gg_orchestrator_new(&o, &oo), GG_EINVAL);
    CHECK(o == NULL);
    CHECK_CONTAINS(gg_error_last(), "not loopback");
    CHECK_CONTAINS(gg_error_last(), "tcp://0.0.0.0:0");
    oo.bind = "tcp://*:0";
    CHECK_RC(gg_orchestrator_new(&o, &oo), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "not loopback");
    wo.connect = "tcp://192.0.2.1:5555";
    wo.insecure = 1;
    CHECK_RC(gg_worker_new(&w, &wo), GG_EINVAL);
    CHECK(w == NULL);
    CHECK_CONTAINS(gg_error_last(), "not loopback");
    CHECK_CONTAINS(gg_error_last(), "'insecure'");
    co.connect = "tcp://192.0.2.1:5555";
    co.insecure = 1;
    CHECK_RC(gg_client_new(&c, &co), GG_EINVAL);
    CHECK(c == NULL);
    CHECK_CONTAINS(gg_error_last(), "not loopback");

    /* insecure = 1 on loopback: accepted (tcp and ipc), and the endpoint serves. */
    snprintf(binds, sizeof binds, "%s,%s", ep, sock);
    oo.bind = binds;
    CHECK_RC(gg_orchestrator_new(&o, &oo), GG_OK);
    co.connect = sock;
    co.timeout_ms = (int)TEST_DEADLINE_MS;
    CHECK_RC(gg_client_new(&c, &co), GG_OK);
    char *st = NULL;
    if (c) {
        CHECK_RC(gg_client_status(c, NULL, &st), GG_OK);
        gg_free(st);
        st = NULL;
    }
    gg_client_destroy(&c);
    CHECK(c == NULL);
    gg_orchestrator_destroy(&o);

    /* inproc:// needs neither keys nor insecure; a scheme ZeroMQ does not know is left for
     * ZeroMQ to refuse at connect time. */
    co.insecure = 0;
    co.connect = "inproc://gg-rule";
    CHECK_RC(gg_client_new(&c, &co), GG_OK);
    gg_client_destroy(&c);
    wo.insecure = 0;
    wo.connect = "bogus://nowhere";
    CHECK_RC(gg_worker_new(&w, &wo), GG_OK);
    gg_worker_destroy(&w);

    /* Keys come in pairs. */
    oo.insecure = 0;
    oo.bind = NULL;
    oo.curve_key_file = "/nonexistent.key";
    CHECK_RC(gg_orchestrator_new(&o, &oo), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "authorized_keys_file");
    wo.connect = "tcp://192.0.2.1:5555";
    wo.curve_key_file = "/nonexistent.key";
    CHECK_RC(gg_worker_new(&w, &wo), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "curve_server_key");

    /* With keys (insecure = 0): a loopback bind, a client that talks to it over CURVE, and
     * peers aimed at an address that is not loopback are all accepted. */
    char prefix[300], server_key[320], client_key[320], auth_path[300], auth[200];
    char server_pub[GG_CURVE_KEY_Z85_LEN + 1], client_pub[GG_CURVE_KEY_Z85_LEN + 1];
    snprintf(prefix, sizeof prefix, "%s/rule-orch", dir);
    snprintf(server_key, sizeof server_key, "%s.key", prefix);
    int rc = gg_curve_keygen(prefix, server_pub);
    if (rc == GG_EUNSUPPORTED) {
        fprintf(stderr, "libzmq without CURVE: the keyed half of test_security_rule skipped\n");
        return;
    }
    CHECK_RC(rc, GG_OK);
    snprintf(prefix, sizeof prefix, "%s/rule-admin", dir);
    snprintf(client_key, sizeof client_key, "%s.key", prefix);
    CHECK_RC(gg_curve_keygen(prefix, client_pub), GG_OK);
    snprintf(auth_path, sizeof auth_path, "%s/rule-authorized", dir);
    snprintf(auth, sizeof auth, "admin %s rule test\n", client_pub);
    CHECK(write_file(auth_path, auth, 0600) == 0);

    oo.curve_key_file = server_key;
    oo.authorized_keys_file = auth_path;
    oo.bind = ep;
    CHECK_RC(gg_orchestrator_new(&o, &oo), GG_OK);
    co.connect = ep;
    co.curve_key_file = client_key;
    co.curve_server_key = server_pub;
    CHECK_RC(gg_client_new(&c, &co), GG_OK);
    if (c) {
        CHECK_RC(gg_client_status(c, NULL, &st), GG_OK);
        gg_free(st);
    }
    gg_client_destroy(&c);
    gg_orchestrator_destroy(&o);
    co.connect = "tcp://192.0.2.1:5555";
    CHECK_RC(gg_client_new(&c, &co), GG_OK);
    gg_client_destroy(&c);
    wo.curve_key_file = client_key;
    wo.curve_server_key = server_pub;
    CHECK_RC(gg_worker_new(&w, &wo), GG_OK);
    gg_worker_destroy(&w);
    CHECK(w == NULL);
    snprintf(cmd, sizeof cmd, "rm -f '%s'/rule-*", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove the rule test's key files\n");
}

/* A scaler's demand (gg_client_demand): the unfinished tasks a worker with the given
 * capabilities could run, and clear refusals of a bad question. */
static double demand_of(gg_client_t *c, const char *caps, const char *key)
{
    char *js = NULL;
    if (gg_client_demand(c, caps, &js) != GG_OK)
        return -1;
    cJSON *d = cJSON_Parse(js);
    gg_free(js);
    const cJSON *v = cJSON_GetObjectItem(d, key);
    double r = cJSON_IsNumber(v) ? v->valuedouble : cJSON_IsBool(v) ? cJSON_IsTrue(v) : -2;
    cJSON_Delete(d);
    return r;
}

static void test_demand(void)
{
    char ep[64], db[300];
    gg_orchestrator_t *o = serve(ep, db, "demand.db", 0);
    if (!o)
        return;
    gg_client_t *c = client_to(ep, "scaler");
    static const char *const tasks[] = {
        "{\"task_id\":\"d-mars\",\"language\":\"python\",\"prompt\":\"p\","
        "\"candidates\":[\"x\"],\"requirements\":{\"labels\":{\"zone\":\"mars\"}}}",
        "{\"task_id\":\"d-earth\",\"language\":\"python\",\"prompt\":\"p\","
        "\"candidates\":[\"x\"],\"requirements\":{\"labels\":{\"zone\":\"earth\"}}}",
        "{\"task_id\":\"d-plain\",\"language\":\"c\",\"prompt\":\"p\",\"candidates\":[\"x\"]}",
        "{\"task_id\":\"d-gpu\",\"language\":\"python\",\"prompt\":\"p\",\"candidates\":[\"x\"],"
        "\"requirements\":{\"gpus\":2}}",
    };
    for (size_t i = 0; i < sizeof tasks / sizeof tasks[0]; i++)
        CHECK_RC(gg_client_submit(c, tasks[i], NULL), 0);
    CHECK(demand_of(c, "{}", "tasks") == 4);               /* nothing checked: all */
    CHECK(demand_of(c, "{}", "waiting") == 4);
    CHECK(demand_of(c, "{}", "complete") == 1);
    CHECK(demand_of(c, "{\"labels\":{}}", "tasks") == 2); /* no labels: plain and gpu */
    CHECK(demand_of(c, "{\"labels\":{\"zone\":\"earth\"}}", "tasks") == 3);
    CHECK(demand_of(c, "{\"labels\":{\"zone\":\"earth\"}}", "unservable") == 1);
    CHECK(demand_of(c, "{\"labels\":{},\"gpus\":0}", "tasks") == 1);
    CHECK(demand_of(c, "{\"languages\":[\"c\"]}", "tasks") == 1);
    CHECK(demand_of(c, "{\"limit\":2}", "complete") == 0); /* read 2 of the 4 */
    static const char *const bad[][2] = {
        { "{\"labels\":[\"zone\"]}", "'labels' must be an object" },
        { "{\"labels\":{\"zone\":1}}", "label 'zone' must be a string" },
        { "{\"languages\":\"python\"}", "'languages' must be an array" },
        { "{\"gpus\":-1}", "'gpus' must be a number" },
        { "{\"limit\":0}", "'limit' must be a number" },
        { "{\"deps\":[]}", "'deps' must be an object" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *js = NULL;
        CHECK_RC(gg_client_demand(c, bad[i][0], &js), GG_EINVAL);
        CHECK(strstr(gg_error_last(), bad[i][1]) != NULL);
        if (!strstr(gg_error_last(), bad[i][1]))
            fprintf(stderr, "  %s: %s\n", bad[i][0], gg_error_last());
        CHECK(js == NULL);
    }
    char *js = NULL;
    CHECK_RC(gg_client_demand(c, "[1]", &js), GG_EINVAL); /* refused by the client itself */
    CHECK_RC(gg_client_demand(c, NULL, &js), GG_EINVAL);
    gg_client_destroy(&c);
    gg_orchestrator_destroy(&o);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/gg-grid-XXXXXX");
    if (!test_make_dir(dir))
        return 1;
    test_decoder();
    test_results_scan();
    test_requirements();
    test_garbage_and_leases();
    test_skip_attempts_hello();
    test_requires_dispatch();
    test_busy();
    test_peers_forgotten();
    test_watch_filter_refusals();
    test_demand();
    test_fair_share();
    test_priority_dispatch();
    test_embedded_plus_remote();
    test_result_too_large();
    test_infra_reroute();
    test_quarantine();
    test_schema_migration();
    test_writer();
    test_security_rule();
    ggi_buf_free(&log_text);
    test_remove_dir(dir);
    return test_exit();
}
