/*
 * test_host_caps.c - a host's backends do through the public vtables what the built-in ones
 * do (capability bits, gryphgen/sys/generator.h and executor.h): a generator with
 * GG_GENERATOR_CAP_FEEDBACK hears each judged attempt, with GG_GENERATOR_CAP_JOURNAL is
 * offered the orchestrator's database, with GG_GENERATOR_CAP_PERMANENT_ERRORS has a refusal
 * ended at once instead of retried; an executor with GG_EXECUTOR_CAP_SKIP_ATTEMPTS passes
 * attempts without running anything, while a version 1 executor merely named "noop" is run
 * like any other (names no longer choose behaviour); an executor with
 * GG_EXECUTOR_CAP_OVERLAY_WORKDIR gets a workspace attempt's copy as an overlay (the
 * request's "overlay" layers, the merged view as its workdir) where this process can mount
 * one, and one without the bit a plain copy of the base in its workdir. Bits without their
 * slots and unknown bits are refused, with the backend's destroy run once.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gryphgen.h>
#include <gryphgen/sys/executor.h>
#include <gryphgen/sys/generator.h>
#include <cJSON.h>

#include "testutil.h"

typedef struct host_gen {
    pthread_mutex_t mu;
    int calls;          /* generate */
    int refuse;         /* 1: generate fails with GG_EGENERATOR */
    int permanent;      /* what the permanent slot answers */
    int permanent_asks;
    int feedbacks, feedback_passed;
    char journal[512];  /* the path attach_journal got */
    int destroyed;
} host_gen;

static int host_generate(void *self, const char *request_json, char **out)
{
    (void)request_json;
    host_gen *g = self;
    pthread_mutex_lock(&g->mu);
    g->calls++;
    int refuse = g->refuse;
    pthread_mutex_unlock(&g->mu);
    if (refuse)
        return gg_error_set(GG_EGENERATOR, "host generator: the key was refused");
    *out = gg_strdup("{\"code\":\"    return a - b\\n\"}");
    return *out ? GG_OK : GG_ENOMEM;
}

static void host_feedback(void *self, const char *record_json)
{
    host_gen *g = self;
    cJSON *r = cJSON_Parse(record_json);
    pthread_mutex_lock(&g->mu);
    g->feedbacks++;
    if (cJSON_IsTrue(cJSON_GetObjectItem(r, "passed")))
        g->feedback_passed++;
    pthread_mutex_unlock(&g->mu);
    cJSON_Delete(r);
}

static int host_attach_journal(void *self, const char *db_path)
{
    host_gen *g = self;
    snprintf(g->journal, sizeof g->journal, "%s", db_path);
    return GG_OK;
}

static int host_permanent(void *self)
{
    host_gen *g = self;
    pthread_mutex_lock(&g->mu);
    g->permanent_asks++;
    int p = g->permanent;
    pthread_mutex_unlock(&g->mu);
    return p;
}

static void host_destroy(void *self)
{
    ((host_gen *)self)->destroyed++;
}

static int exec_runs;
static int host_run(void *self, const char *request_json, char **out)
{
    (void)self;
    (void)request_json;
    __atomic_add_fetch(&exec_runs, 1, __ATOMIC_SEQ_CST);
    *out = gg_strdup("{\"exit_code\":1,\"timed_out\":false,\"stdout\":\"\",\"stderr\":\"no\"}");
    return *out ? GG_OK : GG_ENOMEM;
}

/* A workspace executor: keeps the last request it got and what it found on disk then (the
 * copy exists only while the attempt runs). */
typedef struct ws_seen {
    pthread_mutex_t mu;
    int runs;
    int has_overlay;     /* the request had an "overlay" object */
    int lower_has_base;  /* overlay.lower/base.txt is the base's file */
    int upper_has_new;   /* overlay.upper/new.txt is what the answer wrote */
    int workdir_is_merged;
    int dir_has_both;    /* workdir/base.txt and workdir/new.txt, plain files */
    int base_links;      /* st_nlink of workdir/base.txt (1: a full copy) */
} ws_seen;

static int file_is(const char *dir, const char *name, const char *want, nlink_t *links)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat st;
    FILE *f = lstat(p, &st) == 0 && S_ISREG(st.st_mode) ? fopen(p, "r") : NULL;
    char buf[64] = "";
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = 0;
    if (f)
        fclose(f);
    if (links && f)
        *links = st.st_nlink;
    return f && strcmp(buf, want) == 0;
}

static int ws_run(void *self, const char *request_json, char **out)
{
    ws_seen *s = self;
    cJSON *req = cJSON_Parse(request_json);
    const cJSON *ov = cJSON_GetObjectItem(req, "overlay");
    const char *wd = cJSON_GetStringValue(cJSON_GetObjectItem(req, "workdir"));
    const char *lower = cJSON_GetStringValue(cJSON_GetObjectItem(ov, "lower"));
    const char *upper = cJSON_GetStringValue(cJSON_GetObjectItem(ov, "upper"));
    pthread_mutex_lock(&s->mu);
    s->runs++;
    s->has_overlay = cJSON_IsObject(ov) && lower && upper &&
                     cJSON_GetStringValue(cJSON_GetObjectItem(ov, "work"));
    s->lower_has_base = lower && file_is(lower, "base.txt", "base\n", NULL);
    s->upper_has_new = upper && file_is(upper, "new.txt", "new\n", NULL);
    size_t wl = wd ? strlen(wd) : 0;
    s->workdir_is_merged = wl > 7 && strcmp(wd + wl - 7, "/merged") == 0;
    nlink_t links = 0;
    s->dir_has_both = wd && file_is(wd, "base.txt", "base\n", &links) &&
                      file_is(wd, "new.txt", "new\n", NULL);
    s->base_links = (int)links;
    pthread_mutex_unlock(&s->mu);
    cJSON_Delete(req);
    *out = gg_strdup("{\"exit_code\":0,\"timed_out\":false,\"stdout\":\"\",\"stderr\":\"\"}");
    return *out ? GG_OK : GG_ENOMEM;
}

/* The generator's answer to a workspace task: a diff adding new.txt. */
static int ws_generate(void *self, const char *request_json, char **out)
{
    (void)self;
    (void)request_json;
    *out = gg_strdup("{\"code\":\"diff --git a/new.txt b/new.txt\\nnew file mode 100644\\n"
                     "--- /dev/null\\n+++ b/new.txt\\n@@ -0,0 +1 @@\\n+new\\n\"}");
    return *out ? GG_OK : GG_ENOMEM;
}

#define WS_TASK(id)                                                                          \
    "{\"task_id\":\"" id "\",\"language\":\"python\",\"workspace\":{\"files\":"              \
    "{\"base.txt\":\"base\\n\"}},\"test_command\":\"true\",\"budget\":{\"max_attempts\":1}}"

#define SUB_TASK(id)                                                                         \
    "{\"task_id\":\"" id "\",\"language\":\"python\",\"stub\":\"def sub(a, b):\\n\","        \
    "\"entry_point\":\"sub\",\"test\":\"def check(f):\\n    assert f(5, 2) == 3\\n\","       \
    "\"budget\":{\"max_attempts\":2}}"

/* dir/name in malloc'd memory. */
static char *test_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static cJSON *run_task(gg_orchestrator_t *o, const char *json)
{
    char *id = NULL, *res = NULL;
    if (gg_orchestrator_submit(o, json, &id) != GG_OK) {
        fprintf(stderr, "submit failed: %s\n", gg_error_last());
        return NULL;
    }
    int rc = gg_orchestrator_wait(o, id, (int)TEST_DEADLINE_MS, &res);
    gg_free(id);
    if (rc != GG_OK) {
        fprintf(stderr, "wait failed: %s\n", gg_error_last());
        return NULL;
    }
    cJSON *r = cJSON_Parse(res);
    gg_free(res);
    return r;
}

static const char *str(const cJSON *o, const char *k)
{
    return cJSON_GetStringValue(cJSON_GetObjectItem(o, k));
}

static gg_orchestrator_t *new_orq(gg_generator_t *gen, gg_executor_t *ex, const char *db)
{
    gg_orchestrator_options opts;
    gg_orchestrator_options_init(&opts, GG_ORCHESTRATOR_OPTIONS_VERSION);
    opts.workers = 1;
    opts.generator = gen;
    opts.executor = ex;
    opts.db_path = db;
    gg_orchestrator_t *o = NULL;
    CHECK_RC(gg_orchestrator_new(&o, &opts), GG_OK);
    return o;
}

static gg_generator_vtable host_vtable(uint32_t caps)
{
    gg_generator_vtable vt = GG_GENERATOR_VTABLE_INIT;
    vt.generate = host_generate;
    vt.destroy = host_destroy;
    vt.name = "host";
    vt.caps = caps;
    vt.feedback = host_feedback;
    vt.attach_journal = host_attach_journal;
    vt.permanent = host_permanent;
    return vt;
}

/* Feedback and journal: the same hooks the openai backend gets. */
static void test_feedback_and_journal(const char *dir)
{
    host_gen g = { .mu = PTHREAD_MUTEX_INITIALIZER };
    gg_generator_vtable vt = host_vtable(GG_GENERATOR_CAP_FEEDBACK | GG_GENERATOR_CAP_JOURNAL);
    gg_generator_t *gen = NULL;
    CHECK_RC(gg_generator_new_custom(&gen, &vt, &g), GG_OK);
    char *db = test_path(dir, "fb.db");
    gg_orchestrator_t *o = new_orq(gen, NULL, db);
    CHECK_STR(g.journal, db);
    cJSON *r = o ? run_task(o, SUB_TASK("fb")) : NULL;
    CHECK_STR(str(r, "status"), "passed");
    pthread_mutex_lock(&g.mu);
    CHECK(g.feedbacks == 1 && g.feedback_passed == 1);
    pthread_mutex_unlock(&g.mu);
    cJSON_Delete(r);
    gg_orchestrator_destroy(&o);

    /* Without the bits the slots are never called, though they are filled in. */
    host_gen quiet = { .mu = PTHREAD_MUTEX_INITIALIZER };
    gg_generator_vtable qv = host_vtable(0);
    gg_generator_t *qgen = NULL;
    CHECK_RC(gg_generator_new_custom(&qgen, &qv, &quiet), GG_OK);
    char *qdb = test_path(dir, "quiet.db");
    o = new_orq(qgen, NULL, qdb);
    r = o ? run_task(o, SUB_TASK("quiet")) : NULL;
    CHECK_STR(str(r, "status"), "passed");
    CHECK(quiet.feedbacks == 0 && quiet.journal[0] == 0);
    cJSON_Delete(r);
    gg_orchestrator_destroy(&o);
    gg_generator_destroy(&gen);
    gg_generator_destroy(&qgen);
    CHECK(g.destroyed == 1 && quiet.destroyed == 1);
    free(db);
    free(qdb);
}

/* A refusal the backend calls permanent ends the task at once; a transient one is retried. */
static void test_permanent(const char *dir)
{
    host_gen g = { .mu = PTHREAD_MUTEX_INITIALIZER, .refuse = 1, .permanent = 1 };
    gg_generator_vtable vt = host_vtable(GG_GENERATOR_CAP_PERMANENT_ERRORS);
    gg_generator_t *gen = NULL;
    CHECK_RC(gg_generator_new_custom(&gen, &vt, &g), GG_OK);
    char *db = test_path(dir, "perm.db");
    gg_orchestrator_t *o = new_orq(gen, NULL, db);
    cJSON *r = o ? run_task(o, SUB_TASK("perm")) : NULL;
    CHECK_STR(str(r, "status"), "error");
    CHECK_CONTAINS(str(r, "reason"), "key was refused");
    pthread_mutex_lock(&g.mu);
    CHECK(g.calls == 1 && g.permanent_asks == 1);
    g.calls = 0;
    g.permanent = 0;
    pthread_mutex_unlock(&g.mu);
    cJSON_Delete(r);

    /* The same refusal, transient: asked again by the scheduler's infrastructure retries. */
    r = o ? run_task(o, SUB_TASK("trans")) : NULL;
    CHECK_STR(str(r, "status"), "error");
    pthread_mutex_lock(&g.mu);
    CHECK(g.calls > 1);
    pthread_mutex_unlock(&g.mu);
    cJSON_Delete(r);
    gg_orchestrator_destroy(&o);
    gg_generator_destroy(&gen);
    free(db);
}

/* SKIP_ATTEMPTS is the benchmark behaviour; the name "noop" alone no longer gives it. */
static void test_skip_attempts(const char *dir)
{
    host_gen g = { .mu = PTHREAD_MUTEX_INITIALIZER };
    gg_generator_vtable gv = host_vtable(0);
    gg_generator_t *gen = NULL;
    CHECK_RC(gg_generator_new_custom(&gen, &gv, &g), GG_OK);

    gg_executor_vtable xv = GG_EXECUTOR_VTABLE_INIT;
    xv.run = host_run;
    xv.name = "bench";
    xv.caps = GG_EXECUTOR_CAP_SKIP_ATTEMPTS;
    gg_executor_t *ex = NULL;
    CHECK_RC(gg_executor_new_custom(&ex, &xv, NULL), GG_OK);
    char *db = test_path(dir, "skip.db");
    exec_runs = 0;
    gg_orchestrator_t *o = new_orq(gen, ex, db);
    cJSON *r = o ? run_task(o, SUB_TASK("skip")) : NULL;
    CHECK_STR(str(r, "status"), "passed");
    CHECK(exec_runs == 0 && g.calls == 0);
    cJSON_Delete(r);
    gg_orchestrator_destroy(&o);
    gg_executor_destroy(&ex);

    /* A version 1 vtable named "noop": an ordinary executor, run for every attempt. */
    gg_executor_vtable v1 = GG_EXECUTOR_VTABLE_INIT;
    v1.version = 1;
    v1.run = host_run;
    v1.name = "noop";
    CHECK_RC(gg_executor_new_custom(&ex, &v1, NULL), GG_OK);
    char *db1 = test_path(dir, "named.db");
    o = new_orq(gen, ex, db1);
    r = o ? run_task(o, SUB_TASK("named")) : NULL;
    CHECK_STR(str(r, "status"), "failed");
    CHECK(exec_runs >= 2 && g.calls == 2);
    cJSON_Delete(r);
    gg_orchestrator_destroy(&o);
    gg_executor_destroy(&ex);
    gg_generator_destroy(&gen);
    free(db);
    free(db1);
}

static void run_ws(const char *dir, const char *db_name, uint32_t caps, ws_seen *seen)
{
    gg_generator_vtable gv = GG_GENERATOR_VTABLE_INIT;
    gv.generate = ws_generate;
    gv.name = "host-ws";
    gg_generator_t *gen = NULL;
    CHECK_RC(gg_generator_new_custom(&gen, &gv, NULL), GG_OK);
    gg_executor_vtable xv = GG_EXECUTOR_VTABLE_INIT;
    xv.run = ws_run;
    xv.name = "host-ws";
    xv.caps = caps;
    gg_executor_t *ex = NULL;
    CHECK_RC(gg_executor_new_custom(&ex, &xv, seen), GG_OK);
    char *db = test_path(dir, db_name);
    gg_orchestrator_t *o = new_orq(gen, ex, db);
    cJSON *r = o ? run_task(o, WS_TASK("ws")) : NULL;
    CHECK_STR(str(r, "status"), "passed");
    if (!r || strcmp(str(r, "status") ? str(r, "status") : "", "passed") != 0)
        fprintf(stderr, "reason: %s\n", r && str(r, "reason") ? str(r, "reason") : "(none)");
    cJSON_Delete(r);
    gg_orchestrator_destroy(&o);
    gg_executor_destroy(&ex);
    gg_generator_destroy(&gen);
    free(db);
}

/* OVERLAY_WORKDIR: a workspace attempt's copy is an overlay (where this process can mount
 * one: root, as on the test machines) with the bit, a full copy of the base without it. */
static void test_overlay_workdir(const char *dir)
{
    char *root = test_path(dir, "wsroot");
    setenv("GRYPHGEN_WS_ROOT", root, 1);
    unsetenv("GRYPHGEN_WS_COPY");

    ws_seen plain = { .mu = PTHREAD_MUTEX_INITIALIZER };
    run_ws(dir, "ws-plain.db", 0, &plain);
    CHECK(plain.runs == 1);
    CHECK(!plain.has_overlay && !plain.workdir_is_merged);
    CHECK(plain.dir_has_both);
    CHECK(plain.base_links == 1); /* a full copy: not the cache's file through a link */

    ws_seen ovl = { .mu = PTHREAD_MUTEX_INITIALIZER };
    run_ws(dir, "ws-overlay.db", GG_EXECUTOR_CAP_OVERLAY_WORKDIR, &ovl);
    CHECK(ovl.runs == 1);
    if (geteuid() == 0) {
        CHECK(ovl.has_overlay && ovl.workdir_is_merged);
        CHECK(ovl.lower_has_base);  /* the base is the lower layer, */
        CHECK(ovl.upper_has_new);   /* the answer went through the mount into the upper */
        CHECK(!ovl.dir_has_both);   /* and the merged view is mounted nowhere here */
    } else {
        printf("note: not root, no overlay mounts here; the bit gives a full copy\n");
        CHECK(!ovl.has_overlay && ovl.dir_has_both);
    }
    unsetenv("GRYPHGEN_WS_ROOT");
    free(root);
}

/* A bit promises its slot; unknown bits are refused; destroy runs once either way. */
static void test_refused_vtables(void)
{
    static const uint32_t caps[] = { GG_GENERATOR_CAP_FEEDBACK, GG_GENERATOR_CAP_JOURNAL,
                                     GG_GENERATOR_CAP_PERMANENT_ERRORS };
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        host_gen g = { .mu = PTHREAD_MUTEX_INITIALIZER };
        gg_generator_vtable vt = host_vtable(caps[i]);
        vt.feedback = NULL;
        vt.attach_journal = NULL;
        vt.permanent = NULL;
        gg_generator_t *gen = (gg_generator_t *)&g; /* must come back NULL */
        CHECK_RC(gg_generator_new_custom(&gen, &vt, &g), GG_EINVAL);
        CHECK(gen == NULL && g.destroyed == 1);
        CHECK_CONTAINS(gg_error_last(), "GG_GENERATOR_CAP_");
    }
    host_gen g = { .mu = PTHREAD_MUTEX_INITIALIZER };
    gg_generator_vtable vt = host_vtable(1u << 20);
    gg_generator_t *gen = NULL;
    CHECK_RC(gg_generator_new_custom(&gen, &vt, &g), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "unknown capability");
    CHECK(gen == NULL && g.destroyed == 1);

    host_gen xg = { .mu = PTHREAD_MUTEX_INITIALIZER };
    gg_executor_vtable xv = GG_EXECUTOR_VTABLE_INIT;
    xv.run = host_run;
    xv.destroy = host_destroy;
    xv.caps = 1u << 30;
    gg_executor_t *ex = NULL;
    CHECK_RC(gg_executor_new_custom(&ex, &xv, &xg), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "unknown capability");
    CHECK(ex == NULL && xg.destroyed == 1);
}

int main(void)
{
    setenv("GRYPHGEN_PYTHON", "/usr/bin/python3", 0);
    char dir[] = "/tmp/gg_host_caps_XXXXXX";
    CHECK(test_make_dir(dir));
    if (!dir[0] || strstr(dir, "XXXXXX"))
        return test_exit();
    test_refused_vtables();
    test_feedback_and_journal(dir);
    test_permanent(dir);
    test_skip_attempts(dir);
    test_overlay_workdir(dir);
    test_remove_dir(dir);
    return test_exit();
}
