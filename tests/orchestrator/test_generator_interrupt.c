/*
 * test_generator_interrupt.c - a generation in progress is cut short when its task is
 * cancelled (GG_GENERATOR_CAP_INTERRUPT, gryphgen/sys/generator.h, vtable version 3): a
 * host's generator that blocks until interrupted hears the task's id and returns, and the
 * task ends cancelled; the built-in "openai" backend, waiting on a loopback server that never
 * answers, stops its request the same way; and when another task spends the run's token
 * budget (max_tokens) while one is generating, that generation is cut short too. The bit without its slot is refused, a version 2
 * vtable may not claim it, and a version 2 vtable (placed against an inaccessible page, so a
 * read of the version 3 slot would crash) is still accepted.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gryphgen.h>
#include <gryphgen/sys/generator.h>
#include <cJSON.h>

#include "testutil.h"

static const char *const task_json =
    "{\"task_id\":\"slow\",\"language\":\"python\",\"prompt\":\"subtract\","
    "\"stub\":\"def sub(a, b):\\n\",\"entry_point\":\"sub\","
    "\"test\":\"assert sub(3, 1) == 2\",\"budget\":{\"max_attempts\":1}}";

/* ---- a host generator that writes until it is told to stop ---- */

typedef struct blocking_gen {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int generating;        /* inside generate */
    int stop;              /* interrupt was called for the task being generated */
    char asked_for[64];    /* the task_id interrupt was given */
    int interrupts;
    int ended_by_interrupt; /* generate returned because of stop */
    int destroyed;
} blocking_gen;

static int blocking_generate(void *self, const char *request_json, char **out)
{
    blocking_gen *g = self;
    /* Task "spender" is answered at once, with 100 tokens spent (the run's budget test). */
    cJSON *req = cJSON_Parse(request_json);
    const char *id = cJSON_GetStringValue(
        cJSON_GetObjectItem(cJSON_GetObjectItem(req, "task"), "task_id"));
    int spender = id && strcmp(id, "spender") == 0;
    cJSON_Delete(req);
    if (spender) {
        *out = gg_strdup("{\"code\":\"    return a - b\\n\",\"usage\":{\"total_tokens\":100}}");
        return *out ? GG_OK : GG_ENOMEM;
    }
    pthread_mutex_lock(&g->mu);
    g->generating = 1;
    pthread_cond_broadcast(&g->cv);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)(TEST_DEADLINE_MS / 1000);
    int rc = 0;
    while (!g->stop && rc == 0)
        rc = pthread_cond_timedwait(&g->cv, &g->mu, &until);
    g->ended_by_interrupt = g->stop;
    g->generating = 0;
    pthread_mutex_unlock(&g->mu);
    return g->ended_by_interrupt ? gg_error_set(GG_ECANCELLED, "host generator: interrupted")
                                 : gg_error_set(GG_EGENERATOR, "host generator: never "
                                                               "interrupted");
}

static int blocking_interrupt(void *self, const char *task_id)
{
    blocking_gen *g = self;
    pthread_mutex_lock(&g->mu);
    g->interrupts++;
    snprintf(g->asked_for, sizeof g->asked_for, "%s", task_id ? task_id : "(all)");
    g->stop = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    return 0;
}

static void blocking_destroy(void *self)
{
    ((blocking_gen *)self)->destroyed++;
}

static gg_generator_vtable blocking_vtable(void)
{
    gg_generator_vtable vt = GG_GENERATOR_VTABLE_INIT;
    vt.generate = blocking_generate;
    vt.destroy = blocking_destroy;
    vt.name = "blocking";
    vt.caps = GG_GENERATOR_CAP_INTERRUPT;
    vt.interrupt = blocking_interrupt;
    return vt;
}

static gg_orchestrator_t *new_orq(gg_generator_t *gen, const char *db)
{
    gg_orchestrator_options opts;
    gg_orchestrator_options_init(&opts, GG_ORCHESTRATOR_OPTIONS_VERSION);
    opts.workers = 2;
    opts.generator = gen;
    opts.db_path = db;
    gg_orchestrator_t *o = NULL;
    CHECK_RC(gg_orchestrator_new(&o, &opts), GG_OK);
    return o;
}

/* Cancels task id of o and checks that it ends cancelled, before the deadline. */
static void cancel_and_wait(gg_orchestrator_t *o, const char *id)
{
    CHECK_RC(gg_orchestrator_cancel(o, id), GG_OK);
    char *res = NULL;
    CHECK_RC(gg_orchestrator_wait(o, id, (int)TEST_DEADLINE_MS, &res), GG_OK);
    cJSON *r = cJSON_Parse(res);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(r, "status")), "cancelled");
    cJSON_Delete(r);
    gg_free(res);
}

/* Waits until g is inside generate; 1 then, 0 at the deadline. */
static int wait_generating(blocking_gen *g)
{
    pthread_mutex_lock(&g->mu);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)(TEST_DEADLINE_MS / 1000);
    while (!g->generating && pthread_cond_timedwait(&g->cv, &g->mu, &until) == 0)
        ;
    int entered = g->generating;
    pthread_mutex_unlock(&g->mu);
    return entered;
}

/* The run's token budget spent by another task while one is generating: that generation is
 * cut short and its task ends for the budget. */
static void test_run_budget_interrupts(const char *dir)
{
    blocking_gen g = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };
    gg_generator_vtable vt = blocking_vtable();
    gg_generator_t *gen = NULL;
    CHECK_RC(gg_generator_new_custom(&gen, &vt, &g), GG_OK);
    char db[512];
    snprintf(db, sizeof db, "%s/budget.db", dir);
    gg_orchestrator_options opts;
    gg_orchestrator_options_init(&opts, GG_ORCHESTRATOR_OPTIONS_VERSION);
    opts.workers = 2;
    opts.generator = gen;
    opts.db_path = db;
    opts.max_tokens = 50;
    gg_orchestrator_t *o = NULL;
    CHECK_RC(gg_orchestrator_new(&o, &opts), GG_OK);
    char *slow = NULL, *spender = NULL, *res = NULL;
    CHECK_RC(gg_orchestrator_submit(o, task_json, &slow), GG_OK);
    int entered = slow && wait_generating(&g);
    CHECK(entered);
    if (entered) {
        CHECK_RC(gg_orchestrator_submit(o, "{\"task_id\":\"spender\",\"language\":\"python\","
                                           "\"prompt\":\"subtract\",\"stub\":\"def sub(a, b):\\n\","
                                           "\"entry_point\":\"sub\",\"test\":\"assert sub(3, 1) == 2\"}",
                                        &spender), GG_OK);
        CHECK_RC(gg_orchestrator_wait(o, slow, (int)TEST_DEADLINE_MS, &res), GG_OK);
        cJSON *r = cJSON_Parse(res);
        const char *why = cJSON_GetStringValue(cJSON_GetObjectItem(r, "reason"));
        CHECK_CONTAINS(why ? why : "", "run token budget");
        cJSON_Delete(r);
    }
    pthread_mutex_lock(&g.mu);
    CHECK(g.interrupts == 1 && g.ended_by_interrupt == 1);
    CHECK_STR(g.asked_for, slow ? slow : "?");
    pthread_mutex_unlock(&g.mu);
    gg_free(res);
    gg_free(slow);
    gg_free(spender);
    gg_orchestrator_destroy(&o);
    gg_generator_destroy(&gen);
}

static void test_host_generator(const char *dir)
{
    blocking_gen g = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };
    gg_generator_vtable vt = blocking_vtable();
    gg_generator_t *gen = NULL;
    CHECK_RC(gg_generator_new_custom(&gen, &vt, &g), GG_OK);
    char db[512];
    snprintf(db, sizeof db, "%s/host.db", dir);
    gg_orchestrator_t *o = new_orq(gen, db);
    char *id = NULL;
    CHECK_RC(gg_orchestrator_submit(o, task_json, &id), GG_OK);
    /* The attempt is inside generate: wait for that state. */
    int entered = wait_generating(&g);
    CHECK(entered);
    if (entered && id)
        cancel_and_wait(o, id);
    pthread_mutex_lock(&g.mu);
    CHECK(g.interrupts == 1);
    CHECK_STR(g.asked_for, id ? id : "?");
    CHECK(g.ended_by_interrupt == 1);
    pthread_mutex_unlock(&g.mu);
    gg_free(id);
    gg_orchestrator_destroy(&o);
    gg_generator_destroy(&gen);
    CHECK(g.destroyed == 1);
}

/* ---- the openai backend against a server that takes the request and never answers ---- */

typedef struct mute_server {
    int lfd;
    int port;
    atomic_int got_request; /* a whole request head arrived */
    atomic_int peer_closed; /* the client closed the connection */
    atomic_int quit;
    pthread_t th;
} mute_server;

static void *mute_main(void *arg)
{
    mute_server *m = arg;
    struct pollfd p = { m->lfd, POLLIN, 0 };
    while (!atomic_load(&m->quit) && poll(&p, 1, 20) == 0)
        ;
    int fd = atomic_load(&m->quit) ? -1 : accept(m->lfd, NULL, NULL);
    char buf[4096];
    size_t have = 0;
    while (fd >= 0 && !atomic_load(&m->quit)) {
        struct pollfd q = { fd, POLLIN, 0 };
        if (poll(&q, 1, 20) <= 0)
            continue;
        ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
        if (n <= 0) {
            atomic_store(&m->peer_closed, 1);
            break;
        }
        have += (size_t)n;
        buf[have] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            atomic_store(&m->got_request, 1);
        if (have > sizeof buf - 512)
            have = 0; /* the body: only the end of the connection matters now */
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

static int mute_start(mute_server *m)
{
    memset(m, 0, sizeof *m);
    m->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0 };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (m->lfd < 0 || bind(m->lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(m->lfd, 4) != 0 || getsockname(m->lfd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    m->port = ntohs(a.sin_port);
    return pthread_create(&m->th, NULL, mute_main, m) == 0 ? 0 : -1;
}

static void mute_stop(mute_server *m)
{
    atomic_store(&m->quit, 1);
    pthread_join(m->th, NULL);
    close(m->lfd);
}

static int got_request(void *arg)
{
    return atomic_load(&((mute_server *)arg)->got_request);
}

static void test_openai(const char *dir)
{
    mute_server m;
    CHECK(mute_start(&m) == 0);
    if (!m.port)
        return;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1", m.port);
    gg_generator_options go;
    gg_generator_options_init(&go, GG_GENERATOR_OPTIONS_VERSION);
    go.spec = "openai";
    go.url = url;
    go.model = "mute";
    go.timeout_s = 3600; /* far beyond the deadline: only an interrupt ends the request */
    go.max_retries = 0;
    gg_generator_t *gen = NULL;
    CHECK_RC(gg_generator_new(&gen, &go), GG_OK);
    char db[512];
    snprintf(db, sizeof db, "%s/openai.db", dir);
    gg_orchestrator_t *o = gen ? new_orq(gen, db) : NULL;
    char *id = NULL;
    if (o)
        CHECK_RC(gg_orchestrator_submit(o, task_json, &id), GG_OK);
    int asked = id && test_wait_for(got_request, &m);
    CHECK(asked);
    if (asked)
        cancel_and_wait(o, id);
    gg_free(id);
    gg_orchestrator_destroy(&o);
    gg_generator_destroy(&gen);
    mute_stop(&m);
}

/* ---- vtables ---- */

/* gg_generator_vtable as a program built against the version 2 header sees it. */
typedef struct frozen_vtable_v2 {
    uint32_t version;
    int (*generate)(void *self, const char *request_json, char **out_response_json);
    void (*destroy)(void *self);
    const char *name;
    uint32_t caps;
    void (*feedback)(void *self, const char *record_json);
    int (*attach_journal)(void *self, const char *db_path);
    int (*permanent)(void *self);
} frozen_vtable_v2;

static void test_vtables(void)
{
    blocking_gen g = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };
    gg_generator_vtable vt = blocking_vtable();
    vt.interrupt = NULL;
    gg_generator_t *gen = (gg_generator_t *)&g; /* must come back NULL */
    CHECK_RC(gg_generator_new_custom(&gen, &vt, &g), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "GG_GENERATOR_CAP_INTERRUPT");
    CHECK(gen == NULL && g.destroyed == 1);

    /* A version 2 vtable, ending right at an inaccessible page. */
    long page = sysconf(_SC_PAGESIZE);
    char *mem = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    CHECK(mem != MAP_FAILED);
    if (mem == MAP_FAILED)
        return;
    CHECK(mprotect(mem + page, (size_t)page, PROT_NONE) == 0);
    frozen_vtable_v2 *v2 = (frozen_vtable_v2 *)(mem + page - sizeof *v2);
    memset(v2, 0, sizeof *v2);
    v2->version = 2;
    v2->generate = blocking_generate;
    v2->destroy = blocking_destroy;
    v2->caps = GG_GENERATOR_CAP_INTERRUPT; /* a bit version 2 does not have */
    g.destroyed = 0;
    CHECK_RC(gg_generator_new_custom(&gen, (const gg_generator_vtable *)v2, &g), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "unknown capability");
    CHECK(gen == NULL && g.destroyed == 1);
    v2->caps = 0;
    g.destroyed = 0;
    CHECK_RC(gg_generator_new_custom(&gen, (const gg_generator_vtable *)v2, &g), GG_OK);
    gg_generator_destroy(&gen);
    CHECK(g.destroyed == 1);
    munmap(mem, (size_t)page * 2);

    vt = blocking_vtable();
    vt.version = GG_GENERATOR_VTABLE_VERSION + 1;
    g.destroyed = 0;
    CHECK_RC(gg_generator_new_custom(&gen, &vt, &g), GG_EVERSION);
    CHECK(gen == NULL && g.destroyed == 1);
}

int main(void)
{
    setenv("GRYPHGEN_PYTHON", "/usr/bin/python3", 0);
    char dir[] = "/tmp/gg_gen_interrupt_XXXXXX";
    CHECK(test_make_dir(dir));
    if (!dir[0] || strstr(dir, "XXXXXX"))
        return test_exit();
    test_vtables();
    test_host_generator(dir);
    test_run_budget_interrupts(dir);
    test_openai(dir);
    test_remove_dir(dir);
    return test_exit();
}
