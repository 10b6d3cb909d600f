/*
 * test_learning.c - the orchestrator learns from outcomes through the fts5 retriever: the
 * chunks an attempt used are credited when it passes and debited when it fails, and a
 * passing solution is indexed so a later task retrieves it. Learning runs on the learner
 * thread after the task's commit, so checks wait for it. Also: the index in the
 * orchestrator's own database file (no deadlock, no lock errors, with two workers), and an
 * http retriever whose feedback endpoint does not answer until the test lets it does not hold
 * the tasks up; retries as experiments (the failed attempt's lead goes last in the retry, a
 * command: generator's citations credit the cited reference only), also when a remote worker
 * (gg_worker over ipc) runs the attempts. Argument: broken_server.py.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <gryphgen.h>

#include "retrieval/fts5.h"
#include "testutil.h"

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

/* Searches until pred(result) holds (learning is done on the learner thread) or the hang
 * guard passes; returns the last search (caller deletes). */
/* The built-in index at db, without exploration (searches rank the same every time). */
static gg_retriever_t *fts5_index(const char *db)
{
    gg_retriever_options ro = GG_RETRIEVER_OPTIONS_INIT;
    ro.backend = "fts5";
    ro.db_path = db;
    ro.exploration = 0;
    gg_retriever_t *r = NULL;
    CHECK_RC(gg_retriever_new(&r, &ro), GG_OK);
    return r;
}

static cJSON *search_until(gg_retriever_t *r, const char *text, int (*pred)(const cJSON *))
{
    double end = test_now_ms() + TEST_DEADLINE_MS;
    for (;;) {
        cJSON *res = search(r, text);
        if ((res && pred(res)) || test_now_ms() > end)
            return res;
        cJSON_Delete(res);
        usleep(5 * 1000);
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
    int rc = gg_orchestrator_wait(o, id, (int)TEST_DEADLINE_MS, &res);
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
    return n == GGI_FTS5_SOLUTIONS_PER_KIND; /* the 8 tasks are one kind: its newest few */
}

/* The index in the orchestrator's own database: the scheduler's write transactions and the
 * learner's writes share the file (separate connections, WAL, busy timeouts). */
static void test_shared_database(const char *dir)
{
    char db[160];
    snprintf(db, sizeof db, "%s/shared.db", dir);
    gg_retriever_t *r = fts5_index(db);
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
        if (ids[i] && gg_orchestrator_wait(o, ids[i], (int)TEST_DEADLINE_MS, &res) == GG_OK)
            passed += strstr(res, "\"status\":\"passed\"") != NULL;
        gg_free(res);
        gg_free(ids[i]);
    }
    CHECK(passed == 8);
    cJSON *found = search_until(r, "pelican sum", all_solutions);
    CHECK(all_solutions(found));
    const cJSON *note = by_source(found, "notes/pelican.md");
    /* Credited by every pass, by its position in each context (1 when first, 1/3 second...):
     * at least one third of a success each, and never a failure. */
    CHECK(note && field(note, "successes") >= 8.0 / 9 && field(note, "failures") == 0);
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

/* The first result's text of a search on broken_server.py's path (a number or a word);
 * the caller frees it. */
static char *server_text(int port, const char *path)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s?q={query}", port, path);
    gg_retriever_options ro = GG_RETRIEVER_OPTIONS_INIT;
    ro.backend = "http";
    ro.url = url;
    ro.timeout_s = 60;
    gg_retriever_t *r = NULL;
    char *out = NULL, *text = NULL;
    if (gg_retriever_new(&r, &ro) == GG_OK && gg_retriever_search(r, "{\"text\":\"n\"}", &out) == GG_OK) {
        cJSON *res = cJSON_Parse(out);
        const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(
            cJSON_GetArrayItem(cJSON_GetObjectItem(res, "results"), 0), "text"));
        text = t ? strdup(t) : NULL;
        cJSON_Delete(res);
    }
    gg_free(out);
    gg_retriever_destroy(&r);
    return text;
}

static int server_number(int port, const char *path)
{
    char *t = server_text(port, path);
    int n = t ? atoi(t) : -1;
    free(t);
    return n;
}

static int feedback_waiting(void *port)
{
    return server_number(*(int *)port, "/feedback-waiting") >= 1;
}

/* An http retriever whose feedback endpoint does not answer until the test lets it: five
 * tasks in a row, one worker. Learning on the scheduler thread would hold the next result up
 * until then, and the tasks would never end. */
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
    snprintf(fb_url, sizeof fb_url, "http://127.0.0.1:%d/held-feedback", port);
    gg_retriever_options ro = GG_RETRIEVER_OPTIONS_INIT;
    ro.backend = "http";
    ro.url = url;
    ro.feedback_url = fb_url;
    ro.timeout_s = TEST_DEADLINE_MS / 1000 * 2; /* longer than the test waits for anything */
    gg_retriever_t *r = NULL;
    CHECK_RC(gg_retriever_new(&r, &ro), GG_OK);
    gg_orchestrator_options oo = GG_ORCHESTRATOR_OPTIONS_INIT;
    oo.workers = 1;
    oo.retriever = r;
    oo.log_fn = log_fn;
    warnings[0] = '\0';
    gg_orchestrator_t *o = NULL;
    CHECK_RC(gg_orchestrator_new(&o, &oo), GG_OK);
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
    CHECK(passed == 5 && with_context == 5);
    /* All five ended while the learner's feedback call waits and none was answered. */
    CHECK(test_wait_for(feedback_waiting, &port));
    CHECK(server_number(port, "/feedback-count") == 0);
    char *released = server_text(port, "/release");
    CHECK_STR(released, "released");
    free(released);
    /* Shutdown waits for the call in progress (and learns more within its bound). */
    gg_orchestrator_destroy(&o);
    int n = server_number(port, "/feedback-count");
    fprintf(stderr, "feedback calls completed: %d\n", n);
    CHECK(n >= 1);
    gg_retriever_destroy(&r);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

/* Retries as experiments, through the orchestrator: a model that trusts its first reference
 * fails with the misleading one first; the retry's context puts that one last (the record
 * says so), the model passes and cites the helpful one (a `command:` generator answering
 * with a response object), and learning credits the cited reference only. */
static int heron_learnt(const cJSON *res)
{
    return by_source(res, "task:heron-1") != NULL;
}

static int heron_far_learnt(const cJSON *res)
{
    return by_source(res, "task:heron-far") != NULL;
}

static void test_experiments(const char *dir)
{
    char db[160], script[160], spec[256];
    snprintf(db, sizeof db, "%s/heron.db", dir);
    snprintf(script, sizeof script, "%s/trusting.py", dir);
    FILE *f = fopen(script, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    fputs("import json, sys\n"
          "req = json.load(sys.stdin)\n"
          "ctx = req.get('context') or []\n"
          "first = ctx[0] if ctx else {'id': '', 'text': ''}\n"
          "value = 'even' if 'even' in first['text'] else 'up'\n"
          "code = 'def rule():\\n    return %r\\n' % value\n"
          "print(json.dumps({'code': code, 'cited': [first['id'], 'no-such-id']}))\n",
          f);
    fclose(f);
    snprintf(spec, sizeof spec, "command:/usr/bin/python3 %s", script);
    gg_retriever_t *r = fts5_index(db);
    char *out = NULL;
    CHECK_RC(gg_retriever_add(r, "{\"source\":\"/n/m.md\",\"text\":\"heron ledger rounding: "
                                 "heron ledger rounding rounds half up\"}", &out), GG_OK);
    cJSON *a = cJSON_Parse(out);
    char m[24], h[24];
    snprintf(m, sizeof m, "%s", cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(a, "ids"), 0)));
    cJSON_Delete(a);
    gg_free(out);
    CHECK_RC(gg_retriever_add(r, "{\"source\":\"/n/h.md\",\"text\":\"The heron ledger "
                                 "rounding rule, since the audit, rounds half to even.\"}", &out),
             GG_OK);
    a = cJSON_Parse(out);
    snprintf(h, sizeof h, "%s", cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(a, "ids"), 0)));
    cJSON_Delete(a);
    gg_free(out);
    CHECK_RC(gg_retriever_add(r, "{\"source\":\"/n/o.md\",\"text\":\"unrelated notes on "
                                 "pelicans\"}", NULL), GG_OK);
    gg_generator_options go = GG_GENERATOR_OPTIONS_INIT;
    go.spec = spec;
    gg_generator_t *gen = NULL;
    CHECK_RC(gg_generator_new(&gen, &go), GG_OK);
    gg_orchestrator_options oo = GG_ORCHESTRATOR_OPTIONS_INIT;
    oo.workers = 1;
    oo.retriever = r;
    oo.generator = gen;
    gg_orchestrator_t *o = NULL;
    CHECK_RC(gg_orchestrator_new(&o, &oo), GG_OK);
    cJSON *res = run(o, "{\"task_id\":\"heron-1\",\"language\":\"python\","
                        "\"prompt\":\"heron ledger rounding\",\"entry_point\":\"rule\","
                        "\"test\":\"def check(f):\\n    assert f() == 'even'\\n\","
                        "\"budget\":{\"max_attempts\":3}}");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(res, "status")), "passed");
    const cJSON *hist = cJSON_GetObjectItem(res, "history");
    const cJSON *h1 = cJSON_GetArrayItem(hist, 0), *h2 = cJSON_GetArrayItem(hist, 1);
    CHECK(cJSON_GetArraySize(hist) == 2);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(h1, "context_ids"), 0)), m);
    CHECK(cJSON_GetObjectItem(h1, "demoted") == NULL);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(h2, "demoted"), 0)), m);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(h2, "context_ids"), 0)), h);
    const cJSON *cited = cJSON_GetObjectItem(h2, "cited");
    CHECK(cJSON_GetArraySize(cited) == 1); /* the unknown id is dropped */
    CHECK_STR(cJSON_GetStringValue(cJSON_GetArrayItem(cited, 0)), h);
    CHECK(cJSON_GetStringValue(cJSON_GetObjectItem(h2, "context_kind")) != NULL);
    cJSON_Delete(res);
    cJSON *found = search_until(r, "heron ledger rounding", heron_learnt);
    const cJSON *rm = by_source(found, "/n/m.md"), *rh = by_source(found, "/n/h.md");
    CHECK(rm && rh);
    CHECK(field(rm, "failures") == 1 && field(rm, "successes") == 0); /* uncited in the pass */
    CHECK(field(rh, "successes") == 1); /* cited */
    CHECK(field(rh, "failures") == 0); /* the failing attempt cited the other one */
    cJSON_Delete(found);
    gg_orchestrator_destroy(&o);
    gg_generator_destroy(&gen);
    gg_retriever_destroy(&r);
}

/* A remote worker's attempts teach the orchestrator's index by the same path as a local
 * worker's: the worker (gg_worker, here in this process over ipc) retrieves from the same
 * index file, its records carry context_ids, cited and demoted, and the orchestrator's learner
 * credits them. The retry's demotion travels in the job. */
static void *run_worker(void *w)
{
    gg_worker_run(w);
    return NULL;
}

static void test_remote_worker(const char *dir)
{
    char db[160], odb[160], ep[200], script[160], spec[256];
    snprintf(db, sizeof db, "%s/remote-rag.db", dir);
    snprintf(odb, sizeof odb, "%s/remote-orch.db", dir);
    snprintf(ep, sizeof ep, "ipc://%s/grid.sock", dir);
    snprintf(script, sizeof script, "%s/trusting.py", dir); /* written by test_experiments */
    snprintf(spec, sizeof spec, "command:/usr/bin/python3 %s", script);
    gg_retriever_t *r = fts5_index(db), *wr = NULL;
    CHECK_RC(gg_retriever_add(r, "{\"source\":\"/n/m.md\",\"text\":\"heron ledger rounding: "
                                 "heron ledger rounding rounds half up\"}", NULL), GG_OK);
    CHECK_RC(gg_retriever_add(r, "{\"source\":\"/n/h.md\",\"text\":\"The heron ledger "
                                 "rounding rule, since the audit, rounds half to even.\"}", NULL),
             GG_OK);
    CHECK_RC(gg_retriever_add(r, "{\"source\":\"/n/o.md\",\"text\":\"unrelated notes on "
                                 "pelicans\"}", NULL), GG_OK);
    wr = fts5_index(db); /* the worker's own handle on the file */
    gg_orchestrator_options oo = GG_ORCHESTRATOR_OPTIONS_INIT;
    oo.db_path = odb;
    oo.bind = ep;
    oo.insecure = 1;
    oo.local_workers = 0;
    oo.retriever = r;
    gg_orchestrator_t *o = NULL;
    CHECK_RC(gg_orchestrator_new(&o, &oo), GG_OK);
    gg_generator_options go = GG_GENERATOR_OPTIONS_INIT;
    go.spec = spec;
    gg_generator_t *gen = NULL;
    CHECK_RC(gg_generator_new(&gen, &go), GG_OK);
    gg_worker_options wo = GG_WORKER_OPTIONS_INIT;
    wo.connect = ep;
    wo.insecure = 1;
    wo.name = "far";
    wo.slots = 1;
    wo.generator = gen;
    wo.retriever = wr;
    gg_worker_t *w = NULL;
    CHECK_RC(gg_worker_new(&w, &wo), GG_OK);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, run_worker, w) == 0);
    cJSON *res = run(o, "{\"task_id\":\"heron-far\",\"language\":\"python\","
                        "\"prompt\":\"heron ledger rounding\",\"entry_point\":\"rule\","
                        "\"test\":\"def check(f):\\n    assert f() == 'even'\\n\","
                        "\"budget\":{\"max_attempts\":3}}");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(res, "status")), "passed");
    const cJSON *hist = cJSON_GetObjectItem(res, "history");
    const cJSON *h2 = cJSON_GetArrayItem(hist, 1);
    CHECK(cJSON_GetArraySize(hist) == 2);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(h2, "node")), "far");
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(h2, "demoted")) == 1);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(h2, "cited")) == 1);
    cJSON_Delete(res);
    cJSON *found = search_until(r, "heron ledger rounding", heron_far_learnt);
    const cJSON *rm = by_source(found, "/n/m.md"), *rh = by_source(found, "/n/h.md");
    CHECK(rm && rh);
    CHECK(field(rm, "failures") == 1 && field(rm, "successes") == 0);
    CHECK(field(rh, "successes") == 1);
    cJSON_Delete(found);
    gg_worker_stop(w);
    pthread_join(th, NULL);
    gg_worker_destroy(&w);
    gg_orchestrator_destroy(&o);
    gg_generator_destroy(&gen);
    gg_retriever_destroy(&wr);
    gg_retriever_destroy(&r);
}

int main(int argc, char **argv)
{
    setenv("GRYPHGEN_PYTHON", "/usr/bin/python3", 0);
    char dir[] = "/tmp/gg-test-learning-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char db[128];
    snprintf(db, sizeof db, "%s/rag.db", dir);

    gg_retriever_t *r = fts5_index(db);
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
    CHECK_RC(gg_orchestrator_drain(o, (int)TEST_DEADLINE_MS), GG_OK);

    cJSON *found = search_until(r, "walrus checksum", walrus_learnt);
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
    CHECK_RC(gg_orchestrator_drain(o, (int)TEST_DEADLINE_MS), GG_OK);
    found = search_until(r, "walrus", walrus_failed_twice);
    CHECK(by_source(found, "task:walrus-2") == NULL);
    CHECK(field(by_source(found, "notes/walrus.md"), "failures") == 2);
    cJSON_Delete(found);

    gg_orchestrator_destroy(&o);
    gg_retriever_destroy(&r);

    test_shared_database(dir);
    test_experiments(dir);
    test_remote_worker(dir);
    if (argc > 1)
        test_slow_feedback(argv[1]);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    return test_exit();
}
