/*
 * test_learning.c - the orchestrator learns from outcomes through the fts5 retriever: the
 * chunks an attempt used are credited when it passes and debited when it fails, and a
 * passing solution is indexed so a later task retrieves it. Learning runs on the learner
 * thread after the task's commit, so checks wait for it. Also: the index in the
 * orchestrator's own database file (no deadlock, no lock errors, with two workers), and an
 * http retriever whose feedback endpoint takes 2 s per call does not slow the tasks down.
 * Argument: broken_server.py.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <gryphgen.h>

#include "testutil.h"

static double ggi_test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static cJSON *search(gg_retriever_t *r, const char *text)
{
    char q[256], *out = NULL;
    snprintf(q, sizeof q, "{\"text\":\"%s\",\"k\":10}", text);
    if (gg_retriever_search(r, q, &out) != GG_OK)
        return NULL;
    cJSON *res = cJSON_Parse(out);
    gg_free(out);
    return res;
}

/* The result whose source is source, or NULL. */
static const cJSON *by_source(const cJSON *res, const char *source)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(res, "results"))
    {
        const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(it, "source"));
        if (s && strcmp(s, source) == 0)
            return it;
    }
    return NULL;
}

static double field(const cJSON *o, const char *k)
{
    return cJSON_GetNumberValue(cJSON_GetObjectItem(o, k));
}

/* Searches until pred(result) holds or ms pass; returns the last search (caller deletes). */
static cJSON *search_until(gg_retriever_t *r, const char *text, int (*pred)(const cJSON *),
                           double ms)
{
    double end = ggi_test_now_ms() + ms;
    for (;;) {
        cJSON *res = search(r, text);
        if ((res && pred(res)) || ggi_test_now_ms() > end)
            return res;
        cJSON_Delete(res);
        usleep(20 * 1000);
    }
}

static int walrus_learnt(const cJSON *res)
{
    const cJSON *note = by_source(res, "notes/walrus.md");
    return note && field(note, "successes") == 1 && field(note, "failures") == 1 &&
           by_source(res, "task:walrus-1");
}

static int walrus_failed_twice(const cJSON *res)
{
    return field(by_source(res, "notes/walrus.md"), "failures") == 2;
}

static char warnings[8192];
static pthread_mutex_t warn_mu = PTHREAD_MUTEX_INITIALIZER;

static void log_fn(void *user, int level, const char *msg)
{
    (void)user;
    (void)level;
    pthread_mutex_lock(&warn_mu);
    if (strlen(warnings) + strlen(msg) + 2 < sizeof warnings) {
        strcat(warnings, msg);
        strcat(warnings, "\n");
    }
    pthread_mutex_unlock(&warn_mu);
}

static cJSON *run(gg_orchestrator_t *o, const char *task)
{
    char *id = NULL, *res = NULL;
    if (gg_orchestrator_submit(o, task, &id) != GG_OK) {
        fprintf(stderr, "submit: %s\n", gg_error_last());
        return NULL;
    }
    int rc = gg_orchestrator_wait(o, id, 60000, &res);
    gg_free(id);
    if (rc != GG_OK)
        return NULL;
    cJSON *r = cJSON_Parse(res);
    gg_free(res);
    return r;
}

static const char *TASK_FMT =
    "{\"task_id\":\"%s\",\"language\":\"python\",\"prompt\":\"pelican sum of %s\","
    "\"test\":\"assert f() == 2\\n\",\"candidates\":[\"def f():\\n    return 1 + 1  # "
    "%s\\n\"]}";

static int all_solutions(const cJSON *res)
{
    int n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(res, "results"))
    {
        const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(it, "source"));
        n += s && strncmp(s, "task:pelican-", 13) == 0;
    }
    return n == 8;
}

/* The index in the orchestrator's own database: the scheduler's write transactions and the
 * learner's writes share the file (separate connections, WAL, busy timeouts). */
static void test_shared_database(const char *dir)
{
    char db[160];
    snprintf(db, sizeof db, "%s/shared.db", dir);
    gg_retriever_options ro = GG_RETRIEVER_OPTIONS_INIT;
    ro.backend = "fts5";
    ro.db_path = db;
    ro.exploration = 0;
    gg_retriever_t *r = NULL;
    CHECK_RC(gg_retriever_new(&r, &ro), GG_OK);
    CHECK_RC(gg_retriever_add(r, "{\"source\":\"notes/pelican.md\",\"text\":\"A pelican "
                                 "sum adds one and one.\"}", NULL), GG_OK);
    gg_orchestrator_options oo = GG_ORCHESTRATOR_OPTIONS_INIT;
    oo.db_path = db;
    oo.workers = 2;
    oo.retriever = r;
    oo.log_fn = log_fn;
    warnings[0] = '\0';
    gg_orchestrator_t *o = NULL;
    CHECK_RC(gg_orchestrator_new(&o, &oo), GG_OK);
    char *ids[8] = { 0 };
    for (int i = 0; i < 8; i++) {
        char id[32], task[512];
        snprintf(id, sizeof id, "pelican-%d", i);
        snprintf(task, sizeof task, TASK_FMT, id, id, id);
        CHECK_RC(gg_orchestrator_submit(o, task, &ids[i]), GG_OK);
    }
    int passed = 0;
    for (int i = 0; i < 8; i++) {
        char *res = NULL;
        if (ids[i] && gg_orchestrator_wait(o, ids[i], 60000, &res) == GG_OK)
            passed += strstr(res, "\"status\":\"passed\"") != NULL;
        gg_free(res);
        gg_free(ids[i]);
    }
    CHECK(passed == 8);
    cJSON *found = search_until(r, "pelican sum", all_solutions, 15000);
    CHECK(all_solutions(found));
    const cJSON *note = by_source(found, "notes/pelican.md");
    CHECK(note && field(note, "successes") == 8);
    cJSON_Delete(found);
    gg_orchestrator_destroy(&o);
    gg_retriever_destroy(&r);
    pthread_mutex_lock(&warn_mu);
    CHECK(strstr(warnings, "locked") == NULL && strstr(warnings, "busy") == NULL);
    CHECK(strstr(warnings, "retrieval") == NULL && strstr(warnings, "solution") == NULL);
    if (warnings[0])
        fprintf(stderr, "warnings:\n%s", warnings);
    pthread_mutex_unlock(&warn_mu);
}

/* An http retriever whose feedback endpoint answers after 2 s: five tasks in a row, one
 * worker. Learning on the scheduler thread would hold each next result up for 2 s. */
static void test_slow_feedback(const char *script)
{
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl("/usr/bin/python3", "python3", script, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    char line[64];
    int port = 0;
    if (!f || !fgets(line, sizeof line, f) || sscanf(line, "PORT %d", &port) != 1) {
        CHECK(!"broken_server.py started");
        if (f)
            fclose(f);
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        return;
    }
    fclose(f);
    char url[128], fb_url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/std?q={query}", port);
    snprintf(fb_url, sizeof fb_url, "http://127.0.0.1:%d/slow-feedback", port);
    gg_retriever_options ro = GG_RETRIEVER_OPTIONS_INIT;
    ro.backend = "http";
    ro.url = url;
    ro.feedback_url = fb_url;
    ro.timeout_s = 5;
    gg_retriever_t *r = NULL;
    CHECK_RC(gg_retriever_new(&r, &ro), GG_OK);
    gg_orchestrator_options oo = GG_ORCHESTRATOR_OPTIONS_INIT;
    oo.workers = 1;
    oo.retriever = r;
    oo.log_fn = log_fn;
    warnings[0] = '\0';
    gg_orchestrator_t *o = NULL;
    CHECK_RC(gg_orchestrator_new(&o, &oo), GG_OK);
    double t0 = ggi_test_now_ms();
    int passed = 0, with_context = 0;
    for (int i = 0; i < 5; i++) {
        char id[32], task[512];
        snprintf(id, sizeof id, "slow-%d", i);
        snprintf(task, sizeof task, TASK_FMT, id, id, id);
        cJSON *res = run(o, task);
        passed += res && strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(res, "status")),
                                "passed") == 0;
        const cJSON *h0 = cJSON_GetArrayItem(cJSON_GetObjectItem(res, "history"), 0);
        with_context += cJSON_GetArraySize(cJSON_GetObjectItem(h0, "context_ids")) == 1;
        cJSON_Delete(res);
    }
    double elapsed = ggi_test_now_ms() - t0;
    fprintf(stderr, "5 tasks with 2 s feedback calls took %.0f ms\n", elapsed);
    CHECK(passed == 5 && with_context == 5);
    CHECK(elapsed < 5000); /* held up by feedback it would be over 8 s */
    t0 = ggi_test_now_ms();
    gg_orchestrator_destroy(&o);
    double stop = ggi_test_now_ms() - t0;
    fprintf(stderr, "destroy took %.0f ms\n", stop);
    CHECK(stop < 2000 + 2000 + 3000); /* the drain bound, the call in progress, slack */
    /* Feedback did arrive, from the learner. */
    char *out = NULL;
    ro.url = url;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/feedback-count?q={query}", port);
    gg_retriever_t *counter = NULL;
    CHECK_RC(gg_retriever_new(&counter, &ro), GG_OK);
    CHECK_RC(gg_retriever_search(counter, "{\"text\":\"n\"}", &out), GG_OK);
    cJSON *res = out ? cJSON_Parse(out) : NULL;
    const char *n = cJSON_GetStringValue(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(res, "results"), 0), "text"));
    fprintf(stderr, "feedback calls completed: %s\n", n ? n : "?");
    CHECK(n && atoi(n) >= 1);
    cJSON_Delete(res);
    gg_free(out);
    gg_retriever_destroy(&counter);
    gg_retriever_destroy(&r);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

int main(int argc, char **argv)
{
    setenv("GRYPHGEN_PYTHON", "/usr/bin/python3", 0);
    char dir[] = "/tmp/gg-test-learning-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char db[128];
    snprintf(db, sizeof db, "%s/rag.db", dir);

    gg_retriever_options ro = GG_RETRIEVER_OPTIONS_INIT;
    ro.backend = "fts5";
    ro.db_path = db;
    ro.exploration = 0;
    gg_retriever_t *r = NULL;
    CHECK_RC(gg_retriever_new(&r, &ro), GG_OK);
    CHECK_RC(gg_retriever_add(r, "{\"source\":\"notes/walrus.md\",\"text\":\"The walrus "
                                 "checksum adds the digits of a number.\"}", NULL), GG_OK);

    gg_orchestrator_options oo = GG_ORCHESTRATOR_OPTIONS_INIT;
    oo.workers = 1;
    oo.retriever = r;
    gg_orchestrator_t *o = NULL;
    CHECK_RC(gg_orchestrator_new(&o, &oo), GG_OK);

    /* A failing attempt, then a passing one; both used the walrus note. */
    cJSON *res = run(o, "{\"task_id\":\"walrus-1\",\"language\":\"python\","
                        "\"prompt\":\"walrus checksum of the digits\",\"entry_point\":\"walrus\","
                        "\"test\":\"def check(f):\\n    assert f(123) == 6\\n\","
                        "\"candidates\":[\"def walrus(n):\\n    return 0\\n\","
                        "\"def walrus(n):\\n    return sum(int(c) for c in str(n))\\n\"]}");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(res, "status")), "passed");
    const cJSON *h0 = cJSON_GetArrayItem(cJSON_GetObjectItem(res, "history"), 0);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(h0, "context_ids")) >= 1);
    cJSON_Delete(res);
    CHECK_RC(gg_orchestrator_drain(o, 10000), GG_OK);

    cJSON *found = search_until(r, "walrus checksum", walrus_learnt, 10000);
    const cJSON *note = by_source(found, "notes/walrus.md");
    CHECK(note != NULL);
    CHECK(field(note, "successes") == 1); /* the passing attempt */
    CHECK(field(note, "failures") == 1);  /* the failing one */
    /* The passing solution is now knowledge. */
    const cJSON *sol = by_source(found, "task:walrus-1");
    CHECK(sol != NULL);
    CHECK_CONTAINS(cJSON_GetStringValue(cJSON_GetObjectItem(sol, "text")), "sum(int(c)");
    cJSON_Delete(found);

    /* A task that fails all its attempts indexes nothing. */
    res = run(o, "{\"task_id\":\"walrus-2\",\"language\":\"python\","
                 "\"prompt\":\"walrus checksum again\",\"test\":\"assert False\\n\","
                 "\"candidates\":[\"x = 1\\n\"]}");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(res, "status")), "failed");
    cJSON_Delete(res);
    CHECK_RC(gg_orchestrator_drain(o, 10000), GG_OK);
    found = search_until(r, "walrus", walrus_failed_twice, 10000);
    CHECK(by_source(found, "task:walrus-2") == NULL);
    CHECK(field(by_source(found, "notes/walrus.md"), "failures") == 2);
    cJSON_Delete(found);

    gg_orchestrator_destroy(&o);
    gg_retriever_destroy(&r);

    test_shared_database(dir);
    if (argc > 1)
        test_slow_feedback(argv[1]);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    return test_exit();
}
