/*
 * test_abort.c - a task that ends while its job runs on a remote worker stops that job there
 * (ggp "abort", docs/protocol.md): a hub over tcp on loopback and a gg_worker_t connected to
 * it, whose generator writes code that records its process id and then waits for a file the
 * test never writes (the job's own timeout is an hour). Cancelled, ended by its wall budget,
 * or ended because another task spent the run's token budget, the task's job process is gone,
 * the worker counts the abort and sends no result, and (for cancel and deadline) the worker's
 * one slot runs the next task; a cancelled job still queued at the worker never starts; one
 * cancelled while generating has its worker's generator interrupted for its task. The same
 * cancel on the container backend (against the fake engine of tests/container): the
 * container is removed by force while its wait hangs, the task ends cancelled exactly once
 * (one task.finished, no attempt, no result sent) and the slot runs the next task.
 * Every wait is on state with TEST_DEADLINE_MS against hangs.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gryphgen.h>
#include <gryphgen/sys/generator.h>
#include <cJSON.h>

#include "../container/fakeengine.h"
#include "../testdb.h"
#include "ggpeer.h"

static char dir[] = "/tmp/gg-abort-XXXXXX";

/* The generator: task ids starting with "block" get code that writes DIR/ID.pid and waits
 * for DIR/never; others get a body that passes, with usage tokens "spender" 100, others 1. */
/* Task "think" blocks inside generate until interrupted for its id (GG_GENERATOR_CAP_INTERRUPT). */
static pthread_mutex_t think_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t think_cv = PTHREAD_COND_INITIALIZER;
static int thinking, think_stop;
static char think_asked[64];

static int think_until_interrupted(void)
{
    pthread_mutex_lock(&think_mu);
    thinking = 1;
    pthread_cond_broadcast(&think_cv);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)(TEST_DEADLINE_MS / 1000);
    int rc = 0;
    while (!think_stop && rc == 0)
        rc = pthread_cond_timedwait(&think_cv, &think_mu, &until);
    int stopped = think_stop;
    thinking = 0;
    pthread_cond_broadcast(&think_cv);
    pthread_mutex_unlock(&think_mu);
    return stopped ? gg_error_set(GG_ECANCELLED, "test generator: interrupted")
                   : gg_error_set(GG_EGENERATOR, "test generator: never interrupted");
}

static int gen_interrupt(void *self, const char *task_id)
{
    (void)self;
    pthread_mutex_lock(&think_mu);
    if (thinking) { /* only while "think" generates: aborts of other tasks ask too */
        snprintf(think_asked, sizeof think_asked, "%s", task_id ? task_id : "(all)");
        think_stop = !task_id || strcmp(task_id, "think") == 0;
    }
    pthread_cond_broadcast(&think_cv);
    pthread_mutex_unlock(&think_mu);
    return 0;
}

static int think_state(void *want)
{
    pthread_mutex_lock(&think_mu);
    int now = thinking;
    pthread_mutex_unlock(&think_mu);
    return now == *(int *)want;
}

static int gen_generate(void *self, const char *request_json, char **out)
{
    (void)self;
    cJSON *req = cJSON_Parse(request_json);
    const char *id = cJSON_GetStringValue(
        cJSON_GetObjectItem(cJSON_GetObjectItem(req, "task"), "task_id"));
    char code[1024];
    int tokens = 1;
    if (id && strcmp(id, "think") == 0) {
        cJSON_Delete(req);
        return think_until_interrupted();
    }
    if (id && strncmp(id, "block", 5) == 0) {
        snprintf(code, sizeof code,
                 "    import os, time\n"
                 "    with open(%s'%s/%s.pid', 'w') as fh:\n"
                 "        fh.write(str(os.getpid()))\n"
                 "    while not os.path.exists(r'%s/never'):\n"
                 "        time.sleep(0.05)\n"
                 "    return 1\n",
                 "r", dir, id, dir);
    } else {
        snprintf(code, sizeof code, "    return 1\n");
        if (id && strcmp(id, "spender") == 0)
            tokens = 100;
    }
    cJSON_Delete(req);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "code", code);
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(o, "usage"), "total_tokens", tokens);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    *out = text ? gg_strdup(text) : NULL;
    free(text);
    return *out ? GG_OK : GG_ENOMEM;
}

static const char *task_json(char *buf, size_t n, const char *id, const char *budget)
{
    snprintf(buf, n,
             "{\"task_id\":\"%s\",\"language\":\"python\",\"prompt\":\"one\","
             "\"stub\":\"def f():\\n\",\"entry_point\":\"f\","
             "\"test\":\"def check(f):\\n    assert f() == 1\\n\","
             "\"resources\":{\"timeout_s\":3600},\"budget\":{\"max_attempts\":1%s}}",
             id, budget ? budget : "");
    return buf;
}

/* The task.finished events the hub emitted for the task finished_id. */
static pthread_mutex_t finished_mu = PTHREAD_MUTEX_INITIALIZER;
static char finished_id[64];
static int finished_seen;

static void on_event(void *user, const char *json)
{
    (void)user;
    cJSON *ev = cJSON_Parse(json);
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItem(ev, "type"));
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(ev, "task_id"));
    pthread_mutex_lock(&finished_mu);
    if (type && id && strcmp(type, "task.finished") == 0 && strcmp(id, finished_id) == 0)
        finished_seen++;
    pthread_mutex_unlock(&finished_mu);
    cJSON_Delete(ev);
}

static int finished_count(void)
{
    pthread_mutex_lock(&finished_mu);
    int n = finished_seen;
    pthread_mutex_unlock(&finished_mu);
    return n;
}

typedef struct grid {
    char ep[64], db[300];
    gg_orchestrator_t *o;
    gg_generator_t *gen;
    gg_executor_t *ex;
    gg_worker_t *w;
    pthread_t th;
    int running;
} grid;

static void *run_worker(void *arg)
{
    gg_worker_run(((grid *)arg)->w);
    return NULL;
}

/* A hub without local workers on a fresh loopback endpoint (run token budget max_tokens, 0:
 * none; its events counted by on_event) and one remote worker with slots slots, the
 * generator above and a process executor at isolation "none" (its jobs' process ids are this
 * host's), or with engine (a socket) the container executor on that engine. */
static int grid_start(grid *g, const char *name, int slots, long long max_tokens,
                      const char *engine)
{
    memset(g, 0, sizeof *g);
    ggpeer_endpoint(g->ep, sizeof g->ep);
    snprintf(g->db, sizeof g->db, "%s/%s.db", dir, name);
    gg_orchestrator_options o;
    gg_orchestrator_options_init(&o, GG_ORCHESTRATOR_OPTIONS_VERSION);
    o.db_path = g->db;
    o.bind = g->ep;
    o.insecure = 1;
    o.local_workers = 0;
    o.max_tokens = max_tokens ? max_tokens : -1;
    o.event_fn = on_event;
    CHECK_RC(gg_orchestrator_new(&g->o, &o), GG_OK);
    gg_generator_vtable vt = GG_GENERATOR_VTABLE_INIT;
    vt.generate = gen_generate;
    vt.name = "blocking-code";
    vt.caps = GG_GENERATOR_CAP_INTERRUPT;
    vt.interrupt = gen_interrupt;
    CHECK_RC(gg_generator_new_custom(&g->gen, &vt, NULL), GG_OK);
    gg_executor_options eo = GG_EXECUTOR_OPTIONS_INIT;
    eo.backend = engine ? "container" : "process";
    eo.isolation = engine ? NULL : "none";
    eo.container_socket = engine;
    eo.container_images = engine ? "python=fake:latest" : NULL;
    CHECK_RC(gg_executor_new(&g->ex, &eo), GG_OK);
    gg_worker_options wo = GG_WORKER_OPTIONS_INIT;
    wo.connect = g->ep;
    wo.insecure = 1;
    wo.name = "remote";
    wo.slots = (unsigned)slots;
    wo.generator = g->gen;
    wo.executor = g->ex;
    CHECK_RC(gg_worker_new(&g->w, &wo), GG_OK);
    if (!g->o || !g->gen || !g->ex || !g->w)
        return 0;
    g->running = pthread_create(&g->th, NULL, run_worker, g) == 0;
    CHECK(g->running);
    return g->running;
}

static void grid_stop(grid *g)
{
    if (g->running) {
        gg_worker_stop(g->w);
        pthread_join(g->th, NULL);
    }
    gg_worker_destroy(&g->w);
    gg_orchestrator_destroy(&g->o);
    gg_executor_destroy(&g->ex);
    gg_generator_destroy(&g->gen);
}

typedef struct pid_file {
    char path[400];
    long pid;
} pid_file;

static int pid_written(void *arg)
{
    pid_file *p = arg;
    FILE *f = fopen(p->path, "r");
    if (!f)
        return 0;
    long pid = 0;
    int ok = fscanf(f, "%ld", &pid) == 1 && pid > 0;
    fclose(f);
    if (ok)
        p->pid = pid;
    return ok;
}

/* Waits until task id's job runs (its pid file is written); its process id, 0 at the
 * deadline. */
static long job_started(const char *id)
{
    pid_file p = { .pid = 0 };
    snprintf(p.path, sizeof p.path, "%s/%s.pid", dir, id);
    return test_wait_for(pid_written, &p) ? p.pid : 0;
}

/* The worker's counter key (gg_worker_stats) read as a number; -1 when absent. */
static long worker_stat(gg_worker_t *w, const char *key)
{
    char *s = NULL;
    long v = -1;
    if (gg_worker_stats(w, &s) == GG_OK) {
        cJSON *j = cJSON_Parse(s);
        const cJSON *x = cJSON_GetObjectItem(j, key);
        if (cJSON_IsNumber(x))
            v = (long)x->valuedouble;
        cJSON_Delete(j);
    }
    gg_free(s);
    return v;
}

typedef struct held_ctx {
    gg_worker_t *w;
    long want;
} held_ctx;

static int worker_holds(void *arg)
{
    held_ctx *h = arg;
    return worker_stat(h->w, "held") == h->want;
}

/* Waits for task id's end and checks its status and (when not NULL) cause. */
static void check_end(gg_orchestrator_t *o, const char *id, const char *status,
                      const char *cause)
{
    char *res = NULL;
    CHECK_RC(gg_orchestrator_wait(o, id, (int)TEST_DEADLINE_MS, &res), GG_OK);
    cJSON *r = cJSON_Parse(res ? res : "{}");
    const char *st = cJSON_GetStringValue(cJSON_GetObjectItem(r, "status"));
    CHECK_STR(st ? st : "(none)", status);
    if (cause) {
        const char *c = cJSON_GetStringValue(cJSON_GetObjectItem(r, "end_cause"));
        if (!c || strcmp(c, cause) != 0)
            fprintf(stderr, "task %s: %s\n", id, res ? res : "(no result)");
        CHECK_STR(c ? c : "(none)", cause);
    }
    cJSON_Delete(r);
    gg_free(res);
}

/* After the blocked task ended: the job's process is gone, the worker holds nothing and
 * counted the abort, and its one slot runs (and passes) the task next_id. */
static void check_slot_free(grid *g, long pid, const char *next_id)
{
    char buf[1024];
    CHECK(pid > 0 && test_process_gone(pid));
    held_ctx h = { g->w, 0 };
    CHECK(test_wait_for(worker_holds, &h));
    CHECK(worker_stat(g->w, "aborted") >= 1);
    if (!next_id)
        return;
    CHECK_RC(gg_orchestrator_submit(g->o, task_json(buf, sizeof buf, next_id, NULL), NULL),
             GG_OK);
    check_end(g->o, next_id, "passed", NULL);
}

/* gg_orchestrator_cancel of a task whose job runs on the remote worker. */
static void test_cancel(void)
{
    grid g;
    char buf[1024];
    if (!grid_start(&g, "cancel", 1, 0, NULL)) {
        grid_stop(&g);
        return;
    }
    CHECK_RC(gg_orchestrator_submit(g.o, task_json(buf, sizeof buf, "block-c", NULL), NULL),
             GG_OK);
    long pid = job_started("block-c");
    CHECK(pid > 0);
    /* A second one waits in the worker's queue (capacity: 1 slot + 1 queued): cancelled,
     * the worker drops it unstarted. */
    CHECK_RC(gg_orchestrator_submit(g.o, task_json(buf, sizeof buf, "block-q", NULL), NULL),
             GG_OK);
    held_ctx two = { g.w, 2 }, one = { g.w, 1 };
    CHECK(test_wait_for(worker_holds, &two));
    CHECK_RC(gg_orchestrator_cancel(g.o, "block-q"), GG_OK);
    check_end(g.o, "block-q", "cancelled", "cancelled");
    CHECK(test_wait_for(worker_holds, &one));
    CHECK(worker_stat(g.w, "aborted") == 1);
    if (pid > 0) {
        CHECK_RC(gg_orchestrator_cancel(g.o, "block-c"), GG_OK);
        check_end(g.o, "block-c", "cancelled", "cancelled");
        check_slot_free(&g, pid, "after-cancel");
        /* Nothing of the aborted job was recorded as an attempt. */
        CHECK(test_db_int(g.db, "SELECT count(*) FROM attempts a JOIN tasks t ON t.seq = a.task_seq "
                                 "WHERE t.task_id = 'block-c'") == 0);
        CHECK(worker_stat(g.w, "aborted") == 2);
    }
    char never_ran[400];
    snprintf(never_ran, sizeof never_ran, "%s/block-q.pid", dir);
    CHECK(access(never_ran, F_OK) != 0);
    grid_stop(&g);
}

/* Cancelled while its code is being generated on the remote worker: the worker's generator is
 * interrupted for that task, and the slot runs the next task. */
static void test_cancel_generating(void)
{
    grid g;
    char buf[1024];
    if (!grid_start(&g, "think", 1, 0, NULL)) {
        grid_stop(&g);
        return;
    }
    CHECK_RC(gg_orchestrator_submit(g.o, task_json(buf, sizeof buf, "think", NULL), NULL),
             GG_OK);
    int yes = 1, no = 0;
    CHECK(test_wait_for(think_state, &yes));
    CHECK_RC(gg_orchestrator_cancel(g.o, "think"), GG_OK);
    check_end(g.o, "think", "cancelled", "cancelled");
    CHECK(test_wait_for(think_state, &no));
    pthread_mutex_lock(&think_mu);
    CHECK(think_stop == 1);
    CHECK_STR(think_asked, "think");
    pthread_mutex_unlock(&think_mu);
    held_ctx h = { g.w, 0 };
    CHECK(test_wait_for(worker_holds, &h));
    CHECK(worker_stat(g.w, "aborted") == 1);
    CHECK_RC(gg_orchestrator_submit(g.o, task_json(buf, sizeof buf, "after-think", NULL), NULL),
             GG_OK);
    check_end(g.o, "after-think", "passed", NULL);
    grid_stop(&g);
}

/* A task whose wall budget passes while its job runs remotely ends at its deadline. */
static void test_deadline(void)
{
    grid g;
    char buf[1024];
    if (!grid_start(&g, "deadline", 1, 0, NULL)) {
        grid_stop(&g);
        return;
    }
    CHECK_RC(gg_orchestrator_submit(g.o, task_json(buf, sizeof buf, "block-d",
                                                   ",\"wall_s\":1"), NULL), GG_OK);
    long pid = job_started("block-d");
    CHECK(pid > 0);
    check_end(g.o, "block-d", "failed", "deadline");
    check_slot_free(&g, pid, "after-deadline");
    grid_stop(&g);
}

/* The run's token budget spent by another task (on the worker's other slot) ends the task
 * whose job runs remotely. */
static void test_run_budget(void)
{
    grid g;
    char buf[1024];
    if (!grid_start(&g, "budget", 2, 50, NULL)) {
        grid_stop(&g);
        return;
    }
    CHECK_RC(gg_orchestrator_submit(g.o, task_json(buf, sizeof buf, "block-b", NULL), NULL),
             GG_OK);
    long pid = job_started("block-b");
    CHECK(pid > 0);
    CHECK_RC(gg_orchestrator_submit(g.o, task_json(buf, sizeof buf, "spender", NULL), NULL),
             GG_OK);
    check_end(g.o, "spender", "passed", NULL);
    check_end(g.o, "block-b", "failed", "budget_run_tokens");
    check_slot_free(&g, pid, NULL);
    grid_stop(&g);
}

/* Cancelled while its job runs in a container on the remote worker (the fake engine's wait
 * never answers: the container runs until it is killed): the executor leaves the wait and
 * removes the container by force, the task ends cancelled exactly once, and the worker sends
 * no result for it and runs the next task. */
static void test_cancel_container(void)
{
    char sock[400], buf[1024];
    snprintf(sock, sizeof sock, "%s/engine.sock", dir);
    fake_engine fe = { .mu = PTHREAD_MUTEX_INITIALIZER };
    if (fake_engine_start(&fe, sock) != 0) {
        CHECK(0);
        return;
    }
    fake_engine_reset(&fe, CREATE_OK, 0, 1);
    pthread_mutex_lock(&finished_mu);
    snprintf(finished_id, sizeof finished_id, "boxed");
    finished_seen = 0;
    pthread_mutex_unlock(&finished_mu);
    grid g;
    if (grid_start(&g, "container", 1, 0, sock)) {
        CHECK_RC(gg_orchestrator_submit(g.o, task_json(buf, sizeof buf, "boxed", NULL), NULL),
                 GG_OK);
        fake_engine_wait waiting = { &fe, &fe.waits, 1 }, removed = { &fe, &fe.removes, 1 };
        CHECK(test_wait_for(fake_engine_reached, &waiting)); /* started: its wait hangs */
        CHECK_RC(gg_orchestrator_cancel(g.o, "boxed"), GG_OK);
        check_end(g.o, "boxed", "cancelled", "cancelled");
        CHECK(test_wait_for(fake_engine_reached, &removed));
        held_ctx h = { g.w, 0 };
        CHECK(test_wait_for(worker_holds, &h));
        pthread_mutex_lock(&fe.mu);
        CHECK(fe.creates == 1 && fe.removes == 1 && fe.forced_removes == 1);
        pthread_mutex_unlock(&fe.mu);
        CHECK(worker_stat(g.w, "aborted") == 1);
        /* The slot runs the next task (the engine's containers now end at once). */
        fake_engine_reset(&fe, CREATE_OK, 0, 0);
        CHECK_RC(gg_orchestrator_submit(g.o, task_json(buf, sizeof buf, "after-box", NULL),
                                        NULL), GG_OK);
        check_end(g.o, "after-box", "passed", NULL);
        /* The cancelled task ended once: one task.finished, no attempt, nothing came back
         * for its lease, and the worker's only result is the next task's. */
        CHECK(finished_count() == 1);
        CHECK(test_db_int(g.db, "SELECT count(*) FROM attempts a JOIN tasks t ON "
                                "t.seq = a.task_seq WHERE t.task_id = 'boxed'") == 0);
        CHECK(ggpeer_hub_stat(g.o, "stale") == 0);
        CHECK(worker_stat(g.w, "results") == 1);
    }
    grid_stop(&g);
    fake_engine_stop(&fe);
    unlink(sock);
}

/* Hand-written workers (ggpeer.h): one that announces caps.abort gets an abort on the wire
 * for its job's lease with the end cause, its task ends at once with no attempt, and the
 * result it sends anyway is stale; one that does not (a worker before 1.3) gets none: the
 * cancelled task stays running until its attempt returns, as before. */
static void test_wire(int announces)
{
    grid g;
    memset(&g, 0, sizeof g);
    ggpeer_endpoint(g.ep, sizeof g.ep);
    snprintf(g.db, sizeof g.db, "%s/wire%d.db", dir, announces);
    gg_orchestrator_options o;
    gg_orchestrator_options_init(&o, GG_ORCHESTRATOR_OPTIONS_VERSION);
    o.db_path = g.db;
    o.bind = g.ep;
    o.insecure = 1;
    o.local_workers = 0;
    CHECK_RC(gg_orchestrator_new(&g.o, &o), GG_OK);
    if (!g.o)
        return;
    ggpeer p;
    ggpeer_open(&p, g.ep);
    char caps[256], buf[1024];
    snprintf(caps, sizeof caps, "{\"runtimes\":[\"python3\"],\"executors\":[\"process\"],"
             "\"isolation\":[\"none\"]%s}", announces ? ",\"abort\":true" : "");
    CHECK(ggpeer_hello(&p, announces ? "new" : "old", 1, caps));
    CHECK_RC(gg_orchestrator_submit(g.o, task_json(buf, sizeof buf, "wired", NULL), NULL),
             GG_OK);
    cJSON *jobs = ggpeer_recv(&p, "jobs", TEST_DEADLINE_MS);
    const cJSON *job = cJSON_GetArrayItem(cJSON_GetObjectItem(jobs, "jobs"), 0);
    CHECK(job != NULL);
    const char *record = "{\"passed\":false,\"code\":\"x\",\"reason\":\"wrong\","
                         "\"durations\":{\"total_ms\":5}}";
    gg_client_options co = GG_CLIENT_OPTIONS_INIT;
    co.connect = g.ep;
    co.insecure = 1;
    co.timeout_ms = (int)TEST_DEADLINE_MS;
    gg_client_t *c = NULL;
    CHECK_RC(gg_client_new(&c, &co), GG_OK);
    if (job && c) {
        /* The client's cancel returns once the hub answered (after its commit). */
        CHECK_RC(gg_client_cancel(c, "wired"), GG_OK);
        CHECK(test_db_int(g.db, "SELECT count(*) FROM tasks WHERE task_id = 'wired' AND "
                                "status IN ('queued', 'running')") == (announces ? 0 : 1));
        if (announces) {
            cJSON *ab = ggpeer_recv(&p, "abort", TEST_DEADLINE_MS);
            CHECK(ab != NULL);
            const cJSON *leases = cJSON_GetObjectItem(ab, "leases");
            CHECK(cJSON_GetArraySize(leases) == 1);
            CHECK_STR(cJSON_GetStringValue(cJSON_GetArrayItem(leases, 0)),
                      cJSON_GetStringValue(cJSON_GetObjectItem(job, "lease")));
            CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(ab, "reason")), "cancelled");
            cJSON_Delete(ab);
            check_end(g.o, "wired", "cancelled", "cancelled");
            long long stale = ggpeer_hub_stat(g.o, "stale");
            ggpeer_send_record(&p, job, NULL, record); /* too late: stale */
            while (ggpeer_hub_stat(g.o, "stale") == stale &&
                   ggpeer_recv(&p, "never-sent", 50) == NULL && !test_failures)
                ;
            CHECK(ggpeer_hub_stat(g.o, "stale") == stale + 1);
        } else {
            ggpeer_send_record(&p, job, NULL, record);
            check_end(g.o, "wired", "cancelled", "cancelled");
        }
        CHECK(test_db_int(g.db, "SELECT count(*) FROM attempts") == 0);
    }
    gg_client_destroy(&c);
    cJSON_Delete(jobs);
    ggpeer_close(&p);
    gg_orchestrator_destroy(&g.o);
}

int main(void)
{
    if (!test_make_dir(dir))
        return 1;
    test_cancel();
    test_cancel_generating();
    test_deadline();
    test_run_budget();
    test_cancel_container();
    test_wire(1);
    test_wire(0);
    test_remove_dir(dir);
    return test_exit();
}
