/*
 * test_strategy.c - the "openai" generator's strategy bandit and what the orchestrator does
 * with it, against the fake chat-completions server (fake_llm_server.py, argv[1]): Thompson
 * sampling that prefers the arm passing most per cost, the arms built from the configuration
 * (models x temperatures, GRYPHGEN_LLM_ARMS) and named in each response, the Task Monitor's
 * temperature winning over the arm's, learning from task outcomes through the orchestrator,
 * the posteriors and the journal kept in the orchestrator's database and surviving a restart,
 * failover away from a dead endpoint, and permanent errors (a refused key is asked once per
 * task) against transient ones (a 500 is retried by the scheduler).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sqlite3.h>

#include <gryphgen.h>

#include "core/ggi.h"
#include "generation/strategy.h"
#include "llmtest.h"
#include "testutil.h"

#define KEY "sk-test-5a4b3c2d1e0f9988"

static fake_server srv;
static char base_url[128];
static char work[] = "/tmp/gg-llm-strategy-XXXXXX";

static cJSON *stats(void)
{
    return fake_server_stats(&srv);
}

/* Requests the server got for model (0 when none or the server cannot tell). */
static int asked(const char *model)
{
    cJSON *s = stats();
    double n = cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(s, "models"), model));
    cJSON_Delete(s);
    return n == n ? (int)n : 0;
}

static const char *str(const cJSON *o, const char *k)
{
    return cJSON_GetStringValue(cJSON_GetObjectItem(o, k));
}

static double num(const cJSON *o, const char *k)
{
    return cJSON_GetNumberValue(cJSON_GetObjectItem(o, k));
}

static char *task_text(const char *prefix, int i)
{
    return ggi_asprintf("{\"task_id\": \"%s/%d\", \"language\": \"python\", "
                        "\"prompt\": \"Return the sum of a and b (variant %s %d).\", "
                        "\"stub\": \"def add(a, b):\\n\", \"entry_point\": \"add\", "
                        "\"test\": \"assert add(2, 3) == 5\\n\"}",
                        prefix, i, prefix, i);
}

static char *request(const char *prefix, int i, const char *extra)
{
    char *t = task_text(prefix, i);
    char *r = t ? ggi_asprintf("{\"task\": %s, \"attempt\": 1, \"feedback\": [], "
                               "\"context\": []%s}", t, extra ? extra : "")
                : NULL;
    free(t);
    return r;
}

static gg_generator_options opts(const char *url, const char *model)
{
    gg_generator_options o = GG_GENERATOR_OPTIONS_INIT;
    o.spec = "openai";
    o.url = url;
    o.model = model;
    o.api_key = KEY;
    o.timeout_s = 60; /* a guard against a hang only */
    return o;
}

/* ---- the bandit alone ---- */

static void test_bandit_unit(void)
{
    ggi_bandit *b = NULL;
    CHECK_RC(ggi_bandit_new(0, 1, &b), GG_EINVAL);
    CHECK(b == NULL);
    CHECK_RC(ggi_bandit_new(GGI_BANDIT_MAX_ARMS + 1, 1, &b), GG_EINVAL);
    CHECK_RC(ggi_bandit_new(3, 42, &b), GG_OK);
    if (!b)
        return;
    /* arm 1 always passes, arm 0 never, arm 2 is unknown */
    for (int i = 0; i < 20; i++) {
        ggi_bandit_update(b, 0, 0, 100);
        ggi_bandit_update(b, 1, 1, 100);
    }
    ggi_bandit_update(b, 7, 1, 1);  /* out of range: ignored */
    ggi_bandit_update(b, -1, 1, 1);
    int first[3] = { 0, 0, 0 }, last0 = 0;
    for (int r = 0; r < 400; r++) {
        int order[3] = { -1, -1, -1 };
        ggi_bandit_order(b, order);
        CHECK(order[0] + order[1] + order[2] == 3 && order[0] != order[1] &&
              order[1] != order[2] && order[0] != order[2]);
        first[order[0]]++;
        last0 += order[2] == 0;
    }
    CHECK(first[1] > 300);
    CHECK(first[0] < 5);
    CHECK(first[2] > 0); /* the unknown arm is still explored */
    CHECK(last0 > 350);
    /* the same pass rate at a tenth of the cost wins */
    ggi_arm_stats s = { 20, 10, 20 * 1000.0, 20 };
    ggi_bandit_set(b, 0, &s);
    s.cost_sum = 20 * 100.0;
    ggi_bandit_set(b, 1, &s);
    s = (ggi_arm_stats){ 0, 0, 0, 0 };
    ggi_bandit_set(b, 2, &s);
    int cheap = 0;
    for (int r = 0; r < 200; r++) {
        int order[3];
        ggi_bandit_order(b, order);
        int pos0 = 0, pos1 = 0;
        for (int k = 0; k < 3; k++) {
            pos0 = order[k] == 0 ? k : pos0;
            pos1 = order[k] == 1 ? k : pos1;
        }
        cheap += pos1 < pos0;
    }
    CHECK(cheap > 180);
    /* set() cleans what it is given */
    ggi_arm_stats bad = { 3, 9, -5, 0.0 / 0.0 }, got;
    ggi_bandit_set(b, 2, &bad);
    ggi_bandit_get(b, 2, &got);
    CHECK(got.n == 3 && got.passes == 3 && got.cost_sum == 0 && got.cost_n == 0);
    ggi_bandit_get(b, 9, &got);
    CHECK(got.n == 0);
    ggi_bandit_free(&b);
    CHECK(b == NULL);
    ggi_bandit_free(&b);
}

/* ---- arms from the configuration ---- */

static void test_arms_config(void)
{
    gg_generator_t *g = NULL;
    gg_generator_options o = opts(base_url, "echo:m1, echo:m2");
    setenv("GRYPHGEN_LLM_TEMPERATURES", "0.1, 0.9", 1);
    CHECK_RC(gg_generator_new(&g, &o), GG_OK);
    int seen[2][2] = { { 0, 0 }, { 0, 0 } };
    for (int i = 0; g && i < 40; i++) {
        char *req = request("cfg", i, NULL), *out = NULL;
        CHECK_RC(gg_generator_generate(g, req, &out), GG_OK);
        cJSON *r = out ? cJSON_Parse(out) : NULL;
        const cJSON *arm = cJSON_GetObjectItem(r, "arm");
        const char *model = str(arm, "model");
        double t = num(arm, "temperature");
        CHECK(model && (strcmp(model, "echo:m1") == 0 || strcmp(model, "echo:m2") == 0));
        CHECK(t == 0.1 || t == 0.9);
        CHECK(num(arm, "endpoint_index") == 0);
        CHECK(cJSON_GetObjectItem(arm, "strategy") == NULL);
        /* what was sent is what the response names */
        cJSON *echo = cJSON_Parse(str(r, "code"));
        const cJSON *sent = cJSON_GetObjectItem(echo, "request");
        CHECK_STR(str(sent, "model"), model);
        CHECK(num(sent, "temperature") == t);
        if (model)
            seen[strcmp(model, "echo:m1") != 0][t > 0.5]++;
        cJSON_Delete(echo);
        cJSON_Delete(r);
        gg_free(out);
        free(req);
    }
    /* without feedback the draws spread over all four arms */
    CHECK(seen[0][0] && seen[0][1] && seen[1][0] && seen[1][1]);
    /* the Task Monitor's temperature wins over the arm's */
    char *req = request("cfg", 99, ", \"strategy\": {\"temperature\": 1.3}"), *out = NULL;
    if (g)
        CHECK_RC(gg_generator_generate(g, req, &out), GG_OK);
    cJSON *r = out ? cJSON_Parse(out) : NULL;
    const cJSON *arm = cJSON_GetObjectItem(r, "arm");
    CHECK(num(arm, "temperature") == 1.3);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(arm, "strategy")));
    cJSON *echo = cJSON_Parse(str(r, "code"));
    CHECK(num(cJSON_GetObjectItem(echo, "request"), "temperature") == 1.3);
    cJSON_Delete(echo);
    cJSON_Delete(r);
    gg_free(out);
    free(req);
    gg_generator_destroy(&g);
    unsetenv("GRYPHGEN_LLM_TEMPERATURES");

    /* GRYPHGEN_LLM_ARMS: explicit arms per endpoint */
    char urls[300];
    snprintf(urls, sizeof urls, "%s,http://127.0.0.1:%d/b/v1", base_url, srv.port);
    o = opts(urls, NULL);
    setenv("GRYPHGEN_LLM_ARMS", "2 echo:only 0.4", 1);
    CHECK_RC(gg_generator_new(&g, &o), GG_OK);
    for (int i = 0; g && i < 5; i++) {
        req = request("arms", i, NULL);
        out = NULL;
        CHECK_RC(gg_generator_generate(g, req, &out), GG_OK);
        r = out ? cJSON_Parse(out) : NULL;
        arm = cJSON_GetObjectItem(r, "arm");
        CHECK_STR(str(arm, "model"), "echo:only");
        CHECK(num(arm, "endpoint_index") == 1);
        CHECK(num(arm, "temperature") == 0.4);
        CHECK_CONTAINS(str(arm, "endpoint"), "/b/v1/chat/completions");
        cJSON_Delete(r);
        gg_free(out);
        free(req);
    }
    gg_generator_destroy(&g);
    static const char *const bad[] = { "3 m", "0 m", "x m", "1", "1 m 0.2 extra", "1 m 11",
                                       "1 m a", " ; ; " };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("GRYPHGEN_LLM_ARMS", bad[i], 1);
        CHECK_RC(gg_generator_new(&g, &o), GG_EINVAL);
        CHECK_CONTAINS(gg_error_last(), "GRYPHGEN_LLM_ARMS");
        CHECK(g == NULL);
    }
    unsetenv("GRYPHGEN_LLM_ARMS");
    setenv("GRYPHGEN_LLM_TEMPERATURES", "0.2,hot", 1);
    o = opts(base_url, "ok:x");
    o.temperature = -1;
    CHECK_RC(gg_generator_new(&g, &o), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "GRYPHGEN_LLM_TEMPERATURES");
    unsetenv("GRYPHGEN_LLM_TEMPERATURES");
    o = opts(base_url, " , ");
    CHECK_RC(gg_generator_new(&g, &o), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "no model");
}

/* ---- learning through the orchestrator, persisted in its database ---- */

/* Runs n tasks one after another through an orchestrator on db with generator g; returns
 * how many passed. */
static int run_tasks(gg_generator_t *g, const char *db, const char *prefix, int n,
                     unsigned max_attempts, char **last_result)
{
    gg_orchestrator_options oo = GG_ORCHESTRATOR_OPTIONS_INIT;
    oo.workers = 1;
    oo.generator = g;
    oo.db_path = db;
    oo.max_attempts = max_attempts;
    oo.python = "/usr/bin/python3";
    gg_orchestrator_t *o = NULL;
    CHECK_RC(gg_orchestrator_new(&o, &oo), GG_OK);
    int passed = 0;
    for (int i = 0; o && i < n; i++) {
        char *t = task_text(prefix, i), *id = NULL, *res = NULL;
        CHECK_RC(gg_orchestrator_submit(o, t, &id), GG_OK);
        if (id)
            CHECK_RC(gg_orchestrator_wait(o, id, 60000, &res), GG_OK);
        cJSON *r = res ? cJSON_Parse(res) : NULL;
        passed += str(r, "status") && strcmp(str(r, "status"), "passed") == 0;
        CHECK(!res || !strstr(res, KEY));
        cJSON_Delete(r);
        if (last_result && i == n - 1)
            *last_result = res;
        else
            gg_free(res);
        gg_free(id);
        free(t);
    }
    gg_orchestrator_destroy(&o);
    return passed;
}

static double db_number(const char *db, const char *sql)
{
    sqlite3 *h = NULL;
    double v = -1;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_double(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(h);
    return v;
}

/* The whole file as text (NULs as spaces), for looking for the key in it. */
static int file_holds(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    ggi_buf b = GGI_BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        for (size_t i = 0; i < n; i++)
            if (ggi_buf_append(&b, chunk[i] ? &chunk[i] : " ", 1))
                break;
    fclose(f);
    int found = b.data && strstr(b.data, needle) != NULL;
    ggi_buf_free(&b);
    return found;
}

static void test_learning(void)
{
    char *db = ggi_asprintf("%s/run.db", work);
    char urls[300];
    snprintf(urls, sizeof urls, "http://127.0.0.1:%d/a/v1,http://127.0.0.1:%d/b/v1", srv.port,
             srv.port);
    setenv("GRYPHGEN_LLM_ARMS", "1 wrong:bt; 2 ok:bt", 1);
    setenv("GRYPHGEN_LLM_BANDIT_SEED", "7", 1);
    gg_generator_options o = opts(urls, NULL);
    gg_generator_t *g = NULL;
    CHECK_RC(gg_generator_new(&g, &o), GG_OK);
    const int n = 16;
    int passed = run_tasks(g, db, "learn", n, 1, NULL);
    int good = asked("ok:bt"), bad = asked("wrong:bt");
    printf("bandit: %d of %d passed; asked ok:bt %d, wrong:bt %d times\n", passed, n, good,
           bad);
    CHECK(good + bad == n);
    CHECK(passed == good);
    CHECK(good >= 11); /* a coin would give 8 */
    /* the posteriors and the journal are in the orchestrator's database */
    CHECK(db_number(db, "SELECT passes FROM llm_arms WHERE arm LIKE '%/b/v1/%|ok:bt|%'") ==
          good);
    CHECK(db_number(db, "SELECT n - passes FROM llm_arms WHERE arm LIKE '%|wrong:bt|%'") ==
          bad);
    CHECK(db_number(db, "SELECT count(*) FROM llm_journal") == n);
    CHECK(db_number(db, "SELECT count(*) FROM llm_arms WHERE cost_n > 0 AND "
                        "cost_sum = 18 * cost_n") == 2); /* cost: the usage's tokens */
    gg_generator_destroy(&g);

    /* A new generator on the same database knows what the first learnt: without any
     * feedback its draws favour the good arm. */
    setenv("GRYPHGEN_LLM_JOURNAL", db, 1);
    unsetenv("GRYPHGEN_LLM_BANDIT_SEED");
    CHECK_RC(gg_generator_new(&g, &o), GG_OK);
    unsetenv("GRYPHGEN_LLM_JOURNAL");
    int good0 = asked("ok:bt"), bad0 = asked("wrong:bt");
    for (int i = 0; g && i < 20; i++) {
        char *req = request("restart", i, NULL), *out = NULL;
        CHECK_RC(gg_generator_generate(g, req, &out), GG_OK);
        gg_free(out);
        free(req);
    }
    int good1 = asked("ok:bt") - good0, bad1 = asked("wrong:bt") - bad0;
    printf("bandit after a restart: asked ok:bt %d, wrong:bt %d times\n", good1, bad1);
    CHECK(good1 + bad1 == 20);
    CHECK(good1 >= 18);
    gg_generator_destroy(&g);

    /* and an orchestrator over it keeps learning: the rows add up */
    CHECK_RC(gg_generator_new(&g, &o), GG_OK);
    passed = run_tasks(g, db, "more", 4, 1, NULL);
    CHECK(passed >= 3);
    CHECK(db_number(db, "SELECT sum(n) FROM llm_arms") == n + 4);
    gg_generator_destroy(&g);
    unsetenv("GRYPHGEN_LLM_ARMS");
    char *wal = ggi_asprintf("%s-wal", db);
    CHECK(!file_holds(db, KEY) && !file_holds(wal, KEY));
    free(wal);
    free(db);
}

/* ---- failover from a dead endpoint, with arms ---- */

static void test_dead_endpoint(void)
{
    char urls[300];
    snprintf(urls, sizeof urls, "http://127.0.0.1:%d/dead/v1,%s", srv.port, base_url);
    setenv("GRYPHGEN_LLM_ARMS", "1 ok:dd 0.2; 2 ok:dd 0.2", 1);
    gg_generator_options o = opts(urls, NULL);
    o.max_retries = -1;
    gg_generator_t *g = NULL;
    CHECK_RC(gg_generator_new(&g, &o), GG_OK);
    for (int i = 0; g && i < 6; i++) {
        char *req = request("dead", i, NULL), *out = NULL;
        CHECK_RC(gg_generator_generate(g, req, &out), GG_OK);
        cJSON *r = out ? cJSON_Parse(out) : NULL;
        CHECK(num(cJSON_GetObjectItem(r, "arm"), "endpoint_index") == 1);
        CHECK_CONTAINS(str(r, "code"), "return a + b");
        cJSON_Delete(r);
        gg_free(out);
        free(req);
    }
    gg_generator_destroy(&g);
    unsetenv("GRYPHGEN_LLM_ARMS");
}

/* ---- permanent and transient errors ---- */

static void test_permanent(void)
{
    char *db = ggi_asprintf("%s/perm.db", work);
    gg_generator_options o = opts(base_url, "401:perm");
    gg_generator_t *g = NULL;
    CHECK_RC(gg_generator_new(&g, &o), GG_OK);
    /* the thread's flag says so after a refusal */
    char *req = request("flag", 0, NULL), *out = NULL;
    if (g)
        CHECK_RC(gg_generator_generate(g, req, &out), GG_EGENERATOR);
    free(req);
    int before = asked("401:perm");
    char *res = NULL;
    int passed = run_tasks(g, db, "perm", 2, 3, &res);
    CHECK(passed == 0);
    CHECK(asked("401:perm") - before == 2); /* once per task, not retried */
    cJSON *r = res ? cJSON_Parse(res) : NULL;
    CHECK_STR(str(r, "status"), "error");
    CHECK_CONTAINS(str(r, "reason"), "authentication failed");
    CHECK(res && !strstr(res, KEY) && !strstr(res, "5a4b3c2d"));
    cJSON_Delete(r);
    gg_free(res);
    gg_generator_destroy(&g);

    /* 404 (an unknown model) is final as well */
    o = opts(base_url, "404:perm");
    CHECK_RC(gg_generator_new(&g, &o), GG_OK);
    res = NULL;
    run_tasks(g, db, "perm404", 1, 3, &res);
    CHECK(asked("404:perm") == 1);
    CHECK_CONTAINS(res, "HTTP 404");
    gg_free(res);
    gg_generator_destroy(&g);

    /* a 500 stays transient: the scheduler asks again */
    o = opts(base_url, "500:trans");
    o.max_retries = -1;
    CHECK_RC(gg_generator_new(&g, &o), GG_OK);
    res = NULL;
    run_tasks(g, db, "trans", 1, 3, &res);
    CHECK(asked("500:trans") == 4); /* the first try and the scheduler's three retries */
    r = res ? cJSON_Parse(res) : NULL;
    CHECK_STR(str(r, "status"), "error");
    CHECK_CONTAINS(str(r, "reason"), "HTTP 500");
    cJSON_Delete(r);
    gg_free(res);
    gg_generator_destroy(&g);
    free(db);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_strategy FAKE_SERVER_SCRIPT\n");
        return 1;
    }
    clear_llm_env();
    if (access("/usr/bin/python3", X_OK) != 0) {
        printf("skipped: /usr/bin/python3 is needed for the fake server and the tasks\n");
        return 77;
    }
    if (!mkdtemp(work)) {
        perror("mkdtemp");
        return 1;
    }
    if (fake_server_start(&srv, argv[1]) != 0) {
        fprintf(stderr, "cannot start the fake server %s\n", argv[1]);
        fake_server_stop(&srv);
        return 1;
    }
    snprintf(base_url, sizeof base_url, "http://127.0.0.1:%d/v1", srv.port);
    test_bandit_unit();
    test_arms_config();
    test_learning();
    test_dead_endpoint();
    test_permanent();
    fake_server_stop(&srv);
    char *rm = ggi_asprintf("rm -rf '%s'", work);
    if (rm && system(rm) != 0)
        fprintf(stderr, "cannot remove %s\n", work);
    free(rm);
    return test_exit();
}
