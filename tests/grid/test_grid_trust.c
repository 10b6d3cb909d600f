/*
 * test_grid_trust.c - what the hub believes, tried by a hostile peer over tcp on loopback
 * (raw ZeroMQ DEALER sockets, with and without CURVE): lease ids are 128 random bits; a
 * result counts only from the node its lease was given to (the same connection, that said
 * hello, with the same key), so a peer that knows a lease exactly but is not its holder, or
 * that guesses leases, ends no task; such results are counted ("foreign") and warned about,
 * rate-limited. A client whose role may not send a request hears why; a submission with bad
 * entries gets errors by index while the good ones are taken. One worker's odd announcement
 * fails nothing at once: a task no connected worker matches waits out a grace period, runtimes
 * are matched by their usual names, and every node that said hello is listed in status.
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

#include "../testdb.h"
#include "../testutil.h"
#include "ggpeer.h"

static char dir[256];

/* ---- what the hub logs ---- */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static int warn_foreign; /* warnings about dropped foreign results */

static void log_cb(void *user, int level, const char *message)
{
    (void)user;
    if (level == GG_LOG_WARN && strstr(message, "security: dropping")) {
        pthread_mutex_lock(&log_mu);
        warn_foreign++;
        pthread_mutex_unlock(&log_mu);
    }
}

static int foreign_warnings(void)
{
    pthread_mutex_lock(&log_mu);
    int n = warn_foreign;
    pthread_mutex_unlock(&log_mu);
    return n;
}

/* Waits (on the counter, up to 20 s) until stat key reaches want; returns its last value. */
static long long wait_stat(gg_orchestrator_t *o, const char *key, long long want)
{
    long long v = ggpeer_hub_stat(o, key);
    for (int i = 0; i < 1000 && v < want; i++) {
        ggi_sleep_ms(20);
        v = ggpeer_hub_stat(o, key);
    }
    return v;
}

/* Starts a hub (insecure unless key_file is given; no local workers) on a fresh loopback
 * endpoint, written to ep (64 bytes), with the database dir/name, whose path is written to db
 * (300 bytes). */
static gg_orchestrator_t *serve(char *ep, char *db, const char *name, const char *key_file,
                                const char *auth_file)
{
    ggpeer_endpoint(ep, 64);
    snprintf(db, 300, "%s/%s", dir, name);
    gg_orchestrator_options o = GG_ORCHESTRATOR_OPTIONS_INIT;
    o.db_path = db;
    o.bind = ep;
    o.insecure = key_file == NULL;
    o.curve_key_file = key_file;
    o.authorized_keys_file = auth_file;
    o.local_workers = 0;
    o.log_fn = log_cb;
    o.log_level = GG_LOG_WARN;
    gg_orchestrator_t *orch = NULL;
    CHECK_RC(gg_orchestrator_new(&orch, &o), 0);
    return orch;
}

/* ---- a raw peer ---- */

static int raw_hello(ggpeer *r, const char *name, int slots)
{
    return ggpeer_hello(r, name, slots,
                        "{\"cores\":1,\"memory_mb\":1000,\"gpus\":0,\"runtimes\":[\"python3\"],"
                        "\"executors\":[\"process\"],\"isolation\":[\"none\"]}");
}

/* Sends one results message answering job (seq and n) under lease with a passing record
 * whose code is code. */
static void raw_pass(ggpeer *r, const cJSON *job, const char *lease, const char *code)
{
    char rec[512];
    snprintf(rec, sizeof rec, "{\"passed\":true,\"code\":\"%s\",\"reason\":null,"
             "\"durations\":{\"total_ms\":1}}", code);
    ggpeer_send_record(r, job, lease, rec);
}

static const char *lease_of(const cJSON *job)
{
    return cJSON_GetStringValue(cJSON_GetObjectItem(job, "lease"));
}

static int is_lease(const char *s)
{
    return s && strlen(s) == 32 && strspn(s, "0123456789abcdef") == 32;
}

/* Receives jobs on r until it holds want of them (in *all, an array of job objects). */
static cJSON *take_jobs(ggpeer *r, int want)
{
    cJSON *all = cJSON_CreateArray();
    while (cJSON_GetArraySize(all) < want) {
        cJSON *m = ggpeer_recv(r, "jobs", TEST_DEADLINE_MS);
        if (!m)
            break;
        cJSON *jobs = cJSON_DetachItemFromObject(m, "jobs");
        cJSON *j;
        while (jobs && (j = cJSON_DetachItemFromArray(jobs, 0)) != NULL)
            cJSON_AddItemToArray(all, j);
        cJSON_Delete(jobs);
        cJSON_Delete(m);
    }
    return all;
}

/* A python task with id PREFIX<i>. */
static const char *task_json(char *buf, size_t n, const char *prefix, int i)
{
    snprintf(buf, n, "{\"task_id\":\"%.16s%d\",\"language\":\"python\",\"prompt\":\"p\","
             "\"candidates\":[\"x\"],\"budget\":{\"max_attempts\":1}}", prefix, i);
    return buf;
}

/* Submits n python tasks PREFIX0 .. PREFIX<n-1> to o, each checked. */
static void submit_tasks(gg_orchestrator_t *o, const char *prefix, int n)
{
    char buf[512];
    for (int i = 0; i < n; i++)
        CHECK_RC(gg_orchestrator_submit(o, task_json(buf, sizeof buf, prefix, i), NULL), 0);
}

/* ---- 1. forged results ---- */

/* A peer that never said hello, and one that did (under the honest worker's name), send
 * results for the honest worker's real leases, known exactly, and for guessed ones (the old
 * scheme: start time shifted, plus a counter): no task ends with their code; the drops are
 * counted and warned about, rate-limited. The honest worker's results then count. */
static void test_forged_results(void)
{
    char ep[64], db[300], buf[512];
    gg_orchestrator_t *o = serve(ep, db, "forged.db", NULL, NULL);
    if (!o)
        return;
    ggpeer honest;
    ggpeer_open(&honest, ep);
    CHECK(raw_hello(&honest, "honest", 3));
    const int N = 3;
    submit_tasks(o, "f", N);
    cJSON *jobs = take_jobs(&honest, N);
    CHECK(cJSON_GetArraySize(jobs) == N);
    /* Leases are 128 bits of hex, all different. */
    for (int i = 0; i < cJSON_GetArraySize(jobs); i++) {
        const char *l = lease_of(cJSON_GetArrayItem(jobs, i));
        CHECK(is_lease(l));
        for (int k = 0; k < i; k++)
            CHECK(strcmp(l, lease_of(cJSON_GetArrayItem(jobs, k))) != 0);
    }
    long long stale0 = ggpeer_hub_stat(o, "stale");
    CHECK(ggpeer_hub_stat(o, "foreign") == 0);

    /* A peer that never said hello, knowing the exact leases. */
    ggpeer rogue;
    ggpeer_open(&rogue, ep);
    for (int i = 0; i < cJSON_GetArraySize(jobs); i++) {
        const cJSON *j = cJSON_GetArrayItem(jobs, i);
        raw_pass(&rogue, j, lease_of(j), "EVIL");
    }
    CHECK(wait_stat(o, "foreign", N) == N);
    /* Told to say hello (it is not a worker here). */
    cJSON *reset = ggpeer_recv(&rogue, "reset", TEST_DEADLINE_MS);
    CHECK(reset != NULL);
    cJSON_Delete(reset);

    /* The same peer after a hello under the honest worker's name: still not the holder. */
    CHECK(raw_hello(&rogue, "honest", 1));
    for (int i = 0; i < cJSON_GetArraySize(jobs); i++) {
        const cJSON *j = cJSON_GetArrayItem(jobs, i);
        raw_pass(&rogue, j, lease_of(j), "EVIL");
    }
    CHECK(wait_stat(o, "foreign", 2 * N) == 2 * N);

    /* Guessing in the old scheme (start time in ms shifted by 20, plus a counter) and a few
     * random-looking ones: stale at best, never recorded. */
    unsigned long long base = ((unsigned long long)(ggi_wall_s() * 1000.0)) << 20;
    int guesses = 0;
    for (long long dt = -3000; dt <= 0; dt += 1000) {
        for (int k = 1; k <= 8; k++) {
            char lease[40];
            snprintf(lease, sizeof lease, "%llx", base + ((unsigned long long)dt << 20) +
                                                      (unsigned long long)k);
            for (int i = 0; i < cJSON_GetArraySize(jobs); i++) {
                raw_pass(&rogue, cJSON_GetArrayItem(jobs, i), lease, "EVIL");
                guesses++;
            }
        }
    }
    CHECK(wait_stat(o, "stale", stale0 + guesses) == stale0 + guesses);
    CHECK(test_db_int(db, "SELECT count(*) FROM attempts") == 0);
    CHECK(test_db_int(db, "SELECT count(*) FROM tasks WHERE status IN ('queued', 'running')") == N);

    /* A burst of forged results is counted whole but warned about at most once a second. */
    int before = foreign_warnings();
    ggpeer stranger;
    ggpeer_open(&stranger, ep);
    for (int k = 0; k < 50; k++)
        raw_pass(&stranger, cJSON_GetArrayItem(jobs, 0), lease_of(cJSON_GetArrayItem(jobs, 0)),
                 "EVIL");
    CHECK(wait_stat(o, "foreign", 2 * N + 50) == 2 * N + 50);
    CHECK(foreign_warnings() >= 1);
    CHECK(foreign_warnings() - before < 10);
    ggpeer_close(&stranger);

    /* The holder's results count, and the code recorded is its own. */
    for (int i = 0; i < cJSON_GetArraySize(jobs); i++) {
        const cJSON *j = cJSON_GetArrayItem(jobs, i);
        raw_pass(&honest, j, lease_of(j), "GOOD");
    }
    for (int i = 0; i < N; i++) {
        char *res = NULL;
        snprintf(buf, sizeof buf, "f%d", i);
        CHECK_RC(gg_orchestrator_wait(o, buf, (int)TEST_DEADLINE_MS, &res), 0);
        CHECK_CONTAINS(res, "\"status\":\"passed\"");
        gg_free(res);
    }
    CHECK(test_db_int(db, "SELECT count(*) FROM attempts WHERE code = 'GOOD'") == N);
    CHECK(test_db_int(db, "SELECT count(*) FROM attempts WHERE code = 'EVIL'") == 0);
    CHECK(test_db_int(db, "SELECT count(*) FROM attempts WHERE json_extract(record, "
                          "'$.node') = 'honest' AND length(json_extract(record, '$.lease')) "
                          "= 32") == N);
    cJSON_Delete(jobs);
    ggpeer_close(&rogue);
    ggpeer_close(&honest);
    gg_orchestrator_destroy(&o);
}

/* ---- with CURVE: results are bound to the key ---- */

static int write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    fclose(f);
    return chmod(path, mode);
}

typedef struct keys {
    char server_key[320], server_pub[41];
    char worker_key[320], worker_pub[41];
    char rogue_key[320], rogue_pub[41];
    char admin_key[320], admin_pub[41];
    char auth[320];
} keys;

/* Makes a server key, two worker keys, an admin key and the authorized-keys file; 0 when
 * libzmq has no CURVE. */
static int make_keys(keys *k)
{
    char prefix[300];
    struct { char *file, *pub; const char *name; } each[] = {
        { k->server_key, k->server_pub, "server" }, { k->worker_key, k->worker_pub, "worker" },
        { k->rogue_key, k->rogue_pub, "rogue" },    { k->admin_key, k->admin_pub, "admin" },
    };
    for (size_t i = 0; i < sizeof each / sizeof each[0]; i++) {
        snprintf(prefix, sizeof prefix, "%s/%s", dir, each[i].name);
        snprintf(each[i].file, 320, "%s.key", prefix);
        int rc = gg_curve_keygen(prefix, each[i].pub);
        if (rc == GG_EUNSUPPORTED)
            return 0;
        CHECK_RC(rc, GG_OK);
    }
    char text[512];
    snprintf(text, sizeof text, "worker %s honest\nworker %s rogue\nadmin %s ops\n",
             k->worker_pub, k->rogue_pub, k->admin_pub);
    snprintf(k->auth, sizeof k->auth, "%s/authorized_keys", dir);
    CHECK(write_file(k->auth, text, 0600) == 0);
    return 1;
}

/* Another listed worker key cannot answer for the honest worker: not with the exact leases,
 * and not even from the honest worker's connection identity once that worker has gone. */
static keys k;
static int have_keys;

static void test_key_binding(void)
{
    if (!have_keys) {
        fprintf(stderr, "libzmq without CURVE: test_key_binding skipped\n");
        return;
    }
    char ep[64], db[300];
    gg_orchestrator_t *o = serve(ep, db, "keyed.db", k.server_key, k.auth);
    if (!o)
        return;
    long long requeued = ggpeer_hub_stat(o, "requeued");
    ggpeer honest;
    ggpeer_open_as(&honest, ep, k.worker_key, k.server_pub, "honest-id");
    CHECK(raw_hello(&honest, "honest", 2));
    submit_tasks(o, "k", 2);
    cJSON *jobs = take_jobs(&honest, 2);
    CHECK(cJSON_GetArraySize(jobs) == 2);

    /* Another worker key, hello said, exact leases. */
    ggpeer rogue;
    ggpeer_open_as(&rogue, ep, k.rogue_key, k.server_pub, NULL);
    CHECK(raw_hello(&rogue, "honest", 1));
    const cJSON *j0 = cJSON_GetArrayItem(jobs, 0), *j1 = cJSON_GetArrayItem(jobs, 1);
    if (j0)
        raw_pass(&rogue, j0, lease_of(j0), "EVIL");
    CHECK(wait_stat(o, "foreign", 1) == 1);
    ggpeer_close(&rogue);

    /* The honest worker's connection goes; the rogue key takes over its identity (the hub
     * still holds the node until it misses its heartbeats) and answers the other job. It may
     * take a few tries until the hub let go of the old connection. */
    ggpeer_close(&honest);
    long long foreign = 1;
    for (int tries = 0; tries < 50 && foreign < 2; tries++) {
        ggpeer_open_as(&rogue, ep, k.rogue_key, k.server_pub, "honest-id");
        if (j1)
            raw_pass(&rogue, j1, lease_of(j1), "EVIL");
        for (int i = 0; i < 10 && (foreign = ggpeer_hub_stat(o, "foreign")) < 2; i++)
            ggi_sleep_ms(20);
        ggpeer_close(&rogue);
    }
    CHECK(foreign == 2);
    /* Over the taken identity, a hello under the honest name does not make the rogue the
     * holder: the node is replaced, its jobs requeued, the old leases dead. */
    ggpeer_open_as(&rogue, ep, k.rogue_key, k.server_pub, "honest-id");
    int said = raw_hello(&rogue, "honest", 1);
    CHECK(said);
    if (said) {
        /* (requeued by the replacement, or by the holder's death if that came first) */
        CHECK(wait_stat(o, "requeued", requeued + 2) >= requeued + 2);
        long long stale = ggpeer_hub_stat(o, "stale"), fo = ggpeer_hub_stat(o, "foreign");
        if (j1)
            raw_pass(&rogue, j1, lease_of(j1), "EVIL");
        for (int i = 0; i < 500 && ggpeer_hub_stat(o, "stale") + ggpeer_hub_stat(o, "foreign") <
                                        stale + fo + 1;
             i++)
            ggi_sleep_ms(20);
        CHECK(ggpeer_hub_stat(o, "stale") + ggpeer_hub_stat(o, "foreign") == stale + fo + 1);
    }
    ggpeer_close(&rogue);
    CHECK(test_db_int(db, "SELECT count(*) FROM attempts") == 0);
    CHECK(test_db_int(db, "SELECT count(*) FROM attempts WHERE code = 'EVIL'") == 0);
    cJSON_Delete(jobs);
    gg_orchestrator_destroy(&o);
}

/* ---- 2. refusals are answered ---- */

static gg_client_t *client_with(const char *ep, const char *key_file, const char *server_pub)
{
    gg_client_options co = GG_CLIENT_OPTIONS_INIT;
    co.connect = ep;
    co.curve_key_file = key_file;
    co.curve_server_key = server_pub;
    co.insecure = key_file == NULL;
    co.timeout_ms = 60000; /* a refusal must come as an answer, not as a time-out */
    gg_client_t *c = NULL;
    CHECK_RC(gg_client_new(&c, &co), 0);
    return c;
}

/* A worker key that asks for what its role may not hears why, at once; a submission with
 * entries that are not tasks gets errors by index, and its good tasks are taken. */
static void test_refusals(void)
{
    if (!have_keys) {
        fprintf(stderr, "libzmq without CURVE: test_refusals skipped\n");
        return;
    }
    char ep[64], db[300], buf[512];
    gg_orchestrator_t *o = serve(ep, db, "refusals.db", k.server_key, k.auth);
    if (!o)
        return;
    gg_client_t *c = client_with(ep, k.worker_key, k.server_pub);
    if (c) {
        char *out = NULL;
        CHECK_RC(gg_client_submit(c, task_json(buf, sizeof buf, "r", 0), &out), GG_EUNSUPPORTED);
        CHECK_CONTAINS(gg_error_last(), "forbidden: role worker may not submit");
        CHECK(out == NULL);
        CHECK_RC(gg_client_status(c, NULL, &out), GG_EUNSUPPORTED);
        CHECK_CONTAINS(gg_error_last(), "forbidden: role worker may not ask for status");
        CHECK_RC(gg_client_cancel(c, "r0"), GG_EUNSUPPORTED);
        CHECK_CONTAINS(gg_error_last(), "forbidden: role worker may not cancel");
        gg_client_destroy(&c);
    }
    CHECK(test_db_int(db, "SELECT count(*) FROM tasks") == 0);

    /* An admin's batch: a task, a number, a task with a bad language, a string, a task. */
    c = client_with(ep, k.admin_key, k.server_pub);
    if (c) {
        char *out = NULL;
        CHECK_RC(gg_client_submit_batch(c, "[{\"task_id\":\"g1\",\"language\":\"python\"},"
                                           "5,{\"task_id\":\"b1\",\"language\":\"cobol\"},"
                                           "\"x\",{\"task_id\":\"g2\",\"language\":\"c\"}]",
                                        &out), GG_OK);
        cJSON *r = out ? cJSON_Parse(out) : NULL;
        const cJSON *ids = cJSON_GetObjectItem(r, "ids"), *errors = cJSON_GetObjectItem(r, "errors");
        CHECK(cJSON_GetArraySize(ids) == 5);
        CHECK_STR(cJSON_GetStringValue(cJSON_GetArrayItem(ids, 0)), "g1");
        CHECK(cJSON_IsNull(cJSON_GetArrayItem(ids, 1)));
        CHECK(cJSON_IsNull(cJSON_GetArrayItem(ids, 2)));
        CHECK(cJSON_IsNull(cJSON_GetArrayItem(ids, 3)));
        CHECK_STR(cJSON_GetStringValue(cJSON_GetArrayItem(ids, 4)), "g2");
        CHECK(cJSON_GetArraySize(errors) == 3);
        int want[] = { 1, 2, 3 };
        for (int i = 0; i < 3 && i < cJSON_GetArraySize(errors); i++) {
            const cJSON *e = cJSON_GetArrayItem(errors, i);
            CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(e, "index")) == want[i]);
            CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(e, "code")) == GG_EINVAL);
            CHECK(cJSON_GetStringValue(cJSON_GetObjectItem(e, "message")) != NULL);
        }
        CHECK_CONTAINS(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(errors, 0),
                                                                "message")), "object");
        CHECK_CONTAINS(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(errors, 1),
                                                                "message")), "language");
        cJSON_Delete(r);
        gg_free(out);
        gg_client_destroy(&c);
    }
    CHECK(test_db_int(db, "SELECT count(*) FROM tasks WHERE task_id IN ('g1', 'g2')") == 2);
    CHECK(test_db_int(db, "SELECT count(*) FROM tasks") == 2);

    /* A request the decoder refuses, from a peer that sends it by hand, hears why. */
    ggpeer r;
    ggpeer_open_as(&r, ep, k.admin_key, k.server_pub, NULL);
    ggpeer_send(&r, "{\"ggp\":1,\"t\":\"hello\",\"role\":\"client\",\"name\":\"hand\","
                 "\"versions\":[1]}");
    cJSON *w = ggpeer_recv(&r, "welcome", TEST_DEADLINE_MS);
    CHECK(w != NULL);
    cJSON_Delete(w);
    ggpeer_send(&r, "{\"ggp\":1,\"t\":\"submit\",\"rid\":77,\"tasks\":{}}");
    cJSON *rep = ggpeer_recv(&r, "reply", TEST_DEADLINE_MS);
    CHECK(rep && cJSON_GetNumberValue(cJSON_GetObjectItem(rep, "rid")) == 77);
    CHECK(rep && cJSON_IsFalse(cJSON_GetObjectItem(rep, "ok")));
    CHECK(rep && cJSON_GetNumberValue(cJSON_GetObjectItem(rep, "code")) == GG_EINVAL);
    CHECK_CONTAINS(cJSON_GetStringValue(cJSON_GetObjectItem(rep, "message")), "bad request");
    CHECK_CONTAINS(cJSON_GetStringValue(cJSON_GetObjectItem(rep, "message")), "tasks");
    cJSON_Delete(rep);
    ggpeer_close(&r);
    gg_orchestrator_destroy(&o);
}

/* ---- 3. one odd worker fails nothing ---- */

/* The names of the nodes a status lists (a client's view), comma-separated in out. */
static void status_nodes(gg_client_t *c, char *out, size_t cap)
{
    char *st = NULL;
    out[0] = '\0';
    if (gg_client_status(c, NULL, &st) != GG_OK)
        return;
    cJSON *j = cJSON_Parse(st);
    const cJSON *n;
    size_t len = 0;
    cJSON_ArrayForEach(n, cJSON_GetObjectItem(j, "nodes"))
    {
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(n, "name"));
        len += (size_t)snprintf(out + len, len < cap ? cap - len : 0, "%s%s", len ? "," : "",
                                name ? name : "?");
    }
    cJSON_Delete(j);
    gg_free(st);
}

/* Waits (up to 30 s) for task id to end, keeping the raw worker keep alive meanwhile. */
static char *wait_ended(gg_orchestrator_t *o, ggpeer *keep, const char *id)
{
    for (int i = 0; i < 150; i++) {
        char *res = NULL;
        if (gg_orchestrator_wait(o, id, 100, &res) == GG_OK)
            return res;
        cJSON_Delete(ggpeer_recv(keep, "none", 100)); /* heartbeats */
    }
    return NULL;
}

/* A worker that says hello with caps that match nothing and then goes silent ends no task;
 * one that announces only ["python3", "cc"] (no gpus, memory or executors) runs python and C
 * tasks, and so does one that spells them "python" and "gcc"; both are listed in status. A
 * task no connected node can run still fails once the node has proved itself. */
static void test_odd_worker(void)
{
    char ep[64], db[300], buf[512];
    gg_orchestrator_t *o = serve(ep, db, "odd.db", NULL, NULL);
    if (!o)
        return;
    submit_tasks(o, "p", 4);
    for (int i = 0; i < 2; i++) {
        snprintf(buf, sizeof buf, "{\"task_id\":\"c%d\",\"language\":\"c\",\"prompt\":\"p\","
                 "\"candidates\":[\"x\"]}", i);
        CHECK_RC(gg_orchestrator_submit(o, buf, NULL), 0);
    }
    gg_client_t *c = client_with(ep, NULL, NULL);
    char names[256];

    /* Hello with caps that match nothing, then silence until it is dropped as dead. */
    ggpeer vanish;
    ggpeer_open(&vanish, ep);
    CHECK(ggpeer_hello(&vanish, "vanish", 4, "{\"runtimes\":[\"cobol\"]}"));
    if (c) {
        status_nodes(c, names, sizeof names);
        CHECK_STR(names, "vanish");
    }
    CHECK(test_db_int(db, "SELECT count(*) FROM tasks WHERE status NOT IN ('queued', 'running')")
          == 0);
    for (int i = 0; i < 1000 && ggpeer_hub_stat(o, "nodes") != 0; i++)
        ggi_sleep_ms(20);
    CHECK(ggpeer_hub_stat(o, "nodes") == 0);
    ggpeer_close(&vanish);
    CHECK(test_db_int(db, "SELECT count(*) FROM tasks WHERE status NOT IN ('queued', 'running')")
          == 0);

    /* Only runtimes, as the odd worker announced them; and other spellings. */
    ggpeer odd, spelled;
    ggpeer_open(&odd, ep);
    CHECK(ggpeer_hello(&odd, "odd", 3, "{\"runtimes\":[\"python3\",\"cc\"]}"));
    ggpeer_open(&spelled, ep);
    CHECK(ggpeer_hello(&spelled, "spelled", 3, "{\"runtimes\":[\"Python\",\"gcc\"]}"));
    if (c) {
        status_nodes(c, names, sizeof names);
        CHECK(strstr(names, "odd") && strstr(names, "spelled"));
    }
    cJSON *a = take_jobs(&odd, 3), *b = take_jobs(&spelled, 3);
    CHECK(cJSON_GetArraySize(a) == 3);
    CHECK(cJSON_GetArraySize(b) == 3);
    int langs[2] = { 0, 0 };
    cJSON *both[2] = { a, b };
    for (int k = 0; k < 2; k++) {
        const cJSON *j;
        cJSON_ArrayForEach(j, both[k])
        {
            const char *lang = cJSON_GetStringValue(
                cJSON_GetObjectItem(cJSON_GetObjectItem(j, "task"), "language"));
            langs[lang && strcmp(lang, "c") == 0]++;
        }
    }
    CHECK(langs[0] == 4 && langs[1] == 2);
    CHECK(test_db_int(db, "SELECT count(*) FROM tasks WHERE status = 'error'") == 0);
    const cJSON *j;
    cJSON_ArrayForEach(j, a)
        raw_pass(&odd, j, lease_of(j), "ok");
    cJSON_ArrayForEach(j, b)
        raw_pass(&spelled, j, lease_of(j), "ok");
    for (int i = 0; i < 4; i++) {
        snprintf(buf, sizeof buf, "p%d", i);
        char *res = wait_ended(o, &odd, buf);
        CHECK_CONTAINS(res, "\"status\":\"passed\"");
        gg_free(res);
    }
    cJSON_Delete(a);
    cJSON_Delete(b);
    ggpeer_close(&spelled);

    /* Fail fast still holds, on the word of a node that has delivered. */
    snprintf(buf, sizeof buf, "{\"task_id\":\"mars\",\"language\":\"python\",\"requirements\":"
             "{\"labels\":{\"zone\":\"mars\"}}}");
    CHECK_RC(gg_orchestrator_submit(o, buf, NULL), 0);
    char *res = wait_ended(o, &odd, "mars");
    CHECK_CONTAINS(res, "no connected worker can run this task");
    CHECK_CONTAINS(res, "label zone=mars");
    gg_free(res);
    ggpeer_close(&odd);
    gg_client_destroy(&c);
    gg_orchestrator_destroy(&o);
}

/* Tasks go only to workers that have their language: one announcing ["rust"] is given the
 * rust task and never the go one; one announcing the binary older workers named ("node") is
 * given the javascript task; the go task waits for a worker with Go. */
static void test_language_routing(void)
{
    char ep[64], db[300], buf[256];
    gg_orchestrator_t *o = serve(ep, db, "langs.db", NULL, NULL);
    if (!o)
        return;
    const char *langs[] = { "rust", "go", "javascript" };
    for (int i = 0; i < 3; i++) {
        snprintf(buf, sizeof buf, "{\"task_id\":\"%s\",\"language\":\"%s\",\"prompt\":\"p\","
                 "\"candidates\":[\"x\"],\"budget\":{\"max_attempts\":1}}", langs[i], langs[i]);
        CHECK_RC(gg_orchestrator_submit(o, buf, NULL), 0);
    }
    ggpeer rusty, noder;
    ggpeer_open(&rusty, ep);
    CHECK(ggpeer_hello(&rusty, "rusty", 3, "{\"runtimes\":[\"rust\"]}"));
    ggpeer_open(&noder, ep);
    CHECK(ggpeer_hello(&noder, "noder", 3, "{\"runtimes\":[\"node\"]}"));
    cJSON *a = take_jobs(&rusty, 1), *b = take_jobs(&noder, 1);
    CHECK(cJSON_GetArraySize(a) == 1 && cJSON_GetArraySize(b) == 1);
    const char *la = cJSON_GetStringValue(cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetArrayItem(a, 0), "task"), "language"));
    const char *lb = cJSON_GetStringValue(cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetArrayItem(b, 0), "task"), "language"));
    CHECK_STR(la, "rust");
    CHECK_STR(lb, "javascript");
    const cJSON *j;
    cJSON_ArrayForEach(j, a)
        raw_pass(&rusty, j, lease_of(j), "ok");
    cJSON_ArrayForEach(j, b)
        raw_pass(&noder, j, lease_of(j), "ok");
    char *res = wait_ended(o, &rusty, "rust");
    CHECK_CONTAINS(res, "\"status\":\"passed\"");
    gg_free(res);
    res = wait_ended(o, &noder, "javascript");
    CHECK_CONTAINS(res, "\"status\":\"passed\"");
    gg_free(res);
    /* no node ran it: queued, or failed fast once the nodes had delivered */
    CHECK(test_db_int(db, "SELECT count(*) FROM tasks WHERE task_id = 'go' AND "
                          "status = 'passed'") == 0);
    cJSON_Delete(a);
    cJSON_Delete(b);
    ggpeer_close(&rusty);
    ggpeer_close(&noder);
    gg_orchestrator_destroy(&o);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/gg-trust-XXXXXX");
    if (!test_make_dir(dir))
        return 1;
    have_keys = make_keys(&k);
    test_forged_results();
    test_key_binding();
    test_refusals();
    test_odd_worker();
    test_language_routing();
    test_remove_dir(dir);
    return test_exit();
}
