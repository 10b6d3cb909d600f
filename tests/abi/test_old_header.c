/*
 * test_old_header.c - a caller built against an older version of the public headers keeps
 * working. The structs below are frozen copies of the 1.0 layouts of gg_orchestrator_options,
 * gg_executor_options, gg_retriever_options and the three backend vtables, as a program
 * compiled against the 1.0 headers sees them. Static assertions prove that the current headers
 * only grew these structs at the end; each frozen struct is then placed so that it ends
 * exactly at an inaccessible page, so the library crashes this test if it reads one byte
 * beyond what a 1.0 caller provides. Structs with an unknown, higher version are refused
 * with GG_EVERSION (and a vtable's destroy still runs exactly once). gg_worker_options and
 * gg_client_options of 1.0 and 1.1 (version 1) go the same way: a worker and a client built
 * from them work with an orchestrator.
 * Links the shared library only.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gryphgen.h>
#include <gryphgen/sys/executor.h>
#include <gryphgen/sys/generator.h>
#include <gryphgen/sys/retriever.h>

#include "testutil.h"

/* ---- frozen 1.0 layouts (never edit: they are what old callers were compiled with) ---- */
typedef struct old_orchestrator_options_v1 {
    uint32_t version;
    const char *db_path;
    unsigned workers;
    unsigned max_attempts;
    gg_generator_t *generator;
    gg_executor_t *executor;
    gg_retriever_t *retriever;
    const char *python;
    const char *cc;
    gg_log_fn log_fn;
    void *log_user;
    int log_level;
    gg_event_fn event_fn;
    void *event_user;
    const char *transport;
} old_orchestrator_options_v1;

typedef struct old_executor_options_v1 {
    uint32_t version;
    const char *backend;
    const char *workdir_root;
    size_t max_output;
    double default_timeout_s;
} old_executor_options_v1;

typedef struct old_retriever_options_v1 {
    uint32_t version;
    const char *backend;
} old_retriever_options_v1;

typedef struct old_executor_vtable_v1 {
    uint32_t version;
    int (*run)(void *self, const char *request_json, char **out_result_json);
    int (*interrupt)(void *self);
    void (*destroy)(void *self);
    const char *name;
} old_executor_vtable_v1;

typedef struct old_generator_vtable_v1 {
    uint32_t version;
    int (*generate)(void *self, const char *request_json, char **out_response_json);
    void (*destroy)(void *self);
    const char *name;
} old_generator_vtable_v1;

typedef struct old_retriever_vtable_v1 {
    uint32_t version;
    int (*search)(void *self, const char *query_json, char **out_results_json);
    int (*feedback)(void *self, const char *feedback_json);
    void (*destroy)(void *self);
    const char *name;
} old_retriever_vtable_v1;

typedef struct old_worker_options_v1 {
    uint32_t version;
    const char *connect;
    const char *name;
    unsigned slots;
    unsigned queue;
    const char *const *labels;
    gg_executor_t *executor;
    gg_generator_t *generator;
    gg_retriever_t *retriever;
    const char *python;
    const char *cc;
    gg_log_fn log_fn;
    void *log_user;
    int log_level;
    const char *curve_key_file;
    const char *curve_server_key;
    int insecure;
} old_worker_options_v1;

typedef struct old_client_options_v1 {
    uint32_t version;
    const char *connect;
    const char *name;
    int timeout_ms;
    const char *curve_key_file;
    const char *curve_server_key;
    int insecure;
} old_client_options_v1;

/* The current headers may only append: each 1.0 field keeps its offset, nothing shrinks. */
#define SAME_OFFSET(old, cur, f) \
    _Static_assert(offsetof(old, f) == offsetof(cur, f), #cur "." #f " moved")
SAME_OFFSET(old_orchestrator_options_v1, gg_orchestrator_options, version);
SAME_OFFSET(old_orchestrator_options_v1, gg_orchestrator_options, db_path);
SAME_OFFSET(old_orchestrator_options_v1, gg_orchestrator_options, workers);
SAME_OFFSET(old_orchestrator_options_v1, gg_orchestrator_options, max_attempts);
SAME_OFFSET(old_orchestrator_options_v1, gg_orchestrator_options, generator);
SAME_OFFSET(old_orchestrator_options_v1, gg_orchestrator_options, executor);
SAME_OFFSET(old_orchestrator_options_v1, gg_orchestrator_options, retriever);
SAME_OFFSET(old_orchestrator_options_v1, gg_orchestrator_options, python);
SAME_OFFSET(old_orchestrator_options_v1, gg_orchestrator_options, cc);
SAME_OFFSET(old_orchestrator_options_v1, gg_orchestrator_options, log_fn);
SAME_OFFSET(old_orchestrator_options_v1, gg_orchestrator_options, log_user);
SAME_OFFSET(old_orchestrator_options_v1, gg_orchestrator_options, log_level);
SAME_OFFSET(old_orchestrator_options_v1, gg_orchestrator_options, event_fn);
SAME_OFFSET(old_orchestrator_options_v1, gg_orchestrator_options, event_user);
SAME_OFFSET(old_orchestrator_options_v1, gg_orchestrator_options, transport);
SAME_OFFSET(old_executor_options_v1, gg_executor_options, backend);
SAME_OFFSET(old_executor_options_v1, gg_executor_options, workdir_root);
SAME_OFFSET(old_executor_options_v1, gg_executor_options, max_output);
SAME_OFFSET(old_executor_options_v1, gg_executor_options, default_timeout_s);
SAME_OFFSET(old_retriever_options_v1, gg_retriever_options, backend);
SAME_OFFSET(old_executor_vtable_v1, gg_executor_vtable, run);
SAME_OFFSET(old_executor_vtable_v1, gg_executor_vtable, interrupt);
SAME_OFFSET(old_executor_vtable_v1, gg_executor_vtable, destroy);
SAME_OFFSET(old_executor_vtable_v1, gg_executor_vtable, name);
SAME_OFFSET(old_generator_vtable_v1, gg_generator_vtable, generate);
SAME_OFFSET(old_generator_vtable_v1, gg_generator_vtable, destroy);
SAME_OFFSET(old_generator_vtable_v1, gg_generator_vtable, name);
SAME_OFFSET(old_retriever_vtable_v1, gg_retriever_vtable, search);
SAME_OFFSET(old_retriever_vtable_v1, gg_retriever_vtable, feedback);
SAME_OFFSET(old_retriever_vtable_v1, gg_retriever_vtable, destroy);
SAME_OFFSET(old_retriever_vtable_v1, gg_retriever_vtable, name);
SAME_OFFSET(old_worker_options_v1, gg_worker_options, connect);
SAME_OFFSET(old_worker_options_v1, gg_worker_options, slots);
SAME_OFFSET(old_worker_options_v1, gg_worker_options, labels);
SAME_OFFSET(old_worker_options_v1, gg_worker_options, log_level);
SAME_OFFSET(old_worker_options_v1, gg_worker_options, insecure);
SAME_OFFSET(old_client_options_v1, gg_client_options, connect);
SAME_OFFSET(old_client_options_v1, gg_client_options, timeout_ms);
SAME_OFFSET(old_client_options_v1, gg_client_options, insecure);
_Static_assert(sizeof(old_worker_options_v1) <= sizeof(gg_worker_options), "shrank");
_Static_assert(sizeof(old_client_options_v1) <= sizeof(gg_client_options), "shrank");
_Static_assert(sizeof(old_orchestrator_options_v1) <= sizeof(gg_orchestrator_options), "shrank");
_Static_assert(sizeof(old_executor_options_v1) <= sizeof(gg_executor_options), "shrank");
_Static_assert(sizeof(old_retriever_options_v1) <= sizeof(gg_retriever_options), "shrank");
_Static_assert(sizeof(old_executor_vtable_v1) <= sizeof(gg_executor_vtable), "shrank");
_Static_assert(sizeof(old_generator_vtable_v1) <= sizeof(gg_generator_vtable), "shrank");
_Static_assert(sizeof(old_retriever_vtable_v1) <= sizeof(gg_retriever_vtable), "shrank");

/* Two pages, the second inaccessible; returns where an object of size bytes must start to
 * end exactly at the guard (size rounded up to the struct's 8-byte alignment). */
static unsigned char *guard_base;
static size_t page;

static void *at_guard(size_t size)
{
    memset(guard_base, 0xA5, page); /* garbage where no field is */
    return guard_base + page - size;
}

static int events_seen;
static void on_event(void *user, const char *event_json)
{
    (void)event_json;
    CHECK(user == &events_seen);
    events_seen++;
}

static int destroyed;
static void count_destroy(void *self)
{
    (void)self;
    destroyed++;
}

static int gen_calls;
static int fake_generate(void *self, const char *request_json, char **out)
{
    (void)self;
    (void)request_json;
    gen_calls++;
    *out = gg_strdup("{\"code\": \"    return a + b\\n\", \"generator\": \"old\"}");
    return *out ? 0 : gg_error_set(GG_ENOMEM, "out of memory");
}

static int fake_run(void *self, const char *request_json, char **out)
{
    (void)self;
    (void)request_json;
    *out = gg_strdup("{}");
    return *out ? 0 : gg_error_set(GG_ENOMEM, "out of memory");
}

static int fake_search(void *self, const char *query_json, char **out)
{
    (void)self;
    (void)query_json;
    *out = gg_strdup("{\"results\": []}");
    return *out ? 0 : gg_error_set(GG_ENOMEM, "out of memory");
}

static const char *const task =
    "{\"task_id\": \"old/add\", \"language\": \"python\", \"stub\": \"def add(a, b):\\n\","
    " \"entry_point\": \"add\", \"test\": \"def check(candidate):\\n"
    "    assert candidate(2, 3) == 5\\n\","
    " \"candidates\": [\"    return 0\\n\", \"    return 1\\n\", \"    return 2\\n\"]}";

/* An orchestrator from a 1.0 options struct: its fields are honoured (max_attempts = 2 stops
 * the replay of three wrong candidates after two attempts; event_fn receives events). */
static void test_old_orchestrator_options(void)
{
    old_orchestrator_options_v1 *o1 = at_guard(sizeof *o1);
    memset(o1, 0, sizeof *o1);
    o1->version = 1;
    o1->workers = 1;
    o1->max_attempts = 2;
    o1->log_level = GG_LOG_WARN;
    o1->event_fn = on_event;
    o1->event_user = &events_seen;
    gg_orchestrator_t *o = NULL;
    CHECK_RC(gg_orchestrator_new(&o, (const gg_orchestrator_options *)o1), 0);
    CHECK(o != NULL);
    char *id = NULL, *result = NULL;
    CHECK_RC(gg_orchestrator_submit(o, task, &id), 0);
    CHECK_RC(gg_orchestrator_wait(o, "old/add", 60000, &result), 0);
    if (result) {
        CHECK_CONTAINS(result, "\"status\":\"failed\"");
        CHECK_CONTAINS(result, "\"attempts\":2");
    }
    CHECK_RC(gg_orchestrator_drain(o, 120000), 0);
    gg_free(result);
    gg_free(id);
    gg_orchestrator_destroy(&o);
    CHECK(o == NULL);
    CHECK(events_seen >= 3); /* started, attempt.finished x2, finished */
}

static void *worker_main(void *w)
{
    gg_worker_run(w);
    return NULL;
}

/* Worker and client options of version 1 (1.0 and 1.1 callers), each against the guard: a
 * worker and a client made from them serve a task of an orchestrator bound on loopback. */
static void test_old_worker_and_client(void)
{
    char ep[64];
    snprintf(ep, sizeof ep, "ipc://@gg-old-header-%ld", (long)getpid());
    gg_orchestrator_options oo = GG_ORCHESTRATOR_OPTIONS_INIT;
    oo.local_workers = 0;
    oo.insecure = 1;
    oo.bind = ep;
    gg_orchestrator_t *o = NULL;
    CHECK_RC(gg_orchestrator_new(&o, &oo), 0);
    if (!o)
        return;
    old_worker_options_v1 *w1 = at_guard(sizeof *w1);
    memset(w1, 0, sizeof *w1);
    w1->version = 1;
    w1->connect = ep;
    w1->slots = 1;
    w1->log_level = GG_LOG_WARN;
    w1->insecure = 1;
    gg_worker_t *w = NULL;
    CHECK_RC(gg_worker_new(&w, (const gg_worker_options *)w1), 0);
    pthread_t th;
    int started = w && pthread_create(&th, NULL, worker_main, w) == 0;
    CHECK(started);

    old_client_options_v1 *c1 = at_guard(sizeof *c1);
    memset(c1, 0, sizeof *c1);
    c1->version = 1;
    c1->connect = ep;
    c1->insecure = 1;
    gg_client_t *c = NULL;
    CHECK_RC(gg_client_new(&c, (const gg_client_options *)c1), 0);
    char *res = NULL;
    if (c) {
        CHECK_RC(gg_client_submit(c, task, NULL), 0);
        CHECK_RC(gg_client_wait(c, "old/add", 120000, &res), 0);
        CHECK_CONTAINS(res, "\"status\":\"failed\"");
    }
    gg_free(res);
    gg_client_destroy(&c);
    if (started) {
        gg_worker_stop(w);
        pthread_join(th, NULL);
    }
    gg_worker_destroy(&w);
    gg_orchestrator_destroy(&o);
}

/* Executor and retriever options of 1.0, and a 1.0 generator vtable in an orchestrator. */
static void test_old_backends(void)
{
    old_executor_options_v1 *e1 = at_guard(sizeof *e1);
    memset(e1, 0, sizeof *e1);
    e1->version = 1;
    e1->default_timeout_s = 5;
    gg_executor_t *ex = NULL;
    CHECK_RC(gg_executor_new(&ex, (const gg_executor_options *)e1), 0);
    char *res = NULL;
    CHECK_RC(gg_executor_run(ex, "{\"argv\": [\"/bin/echo\", \"old\"]}", &res), 0);
    if (res)
        CHECK_CONTAINS(res, "old\\n");
    gg_free(res);
    gg_executor_destroy(&ex);

    old_retriever_options_v1 *r1 = at_guard(sizeof *r1);
    memset(r1, 0, sizeof *r1);
    r1->version = 1;
    gg_retriever_t *r = NULL;
    CHECK_RC(gg_retriever_new(&r, (const gg_retriever_options *)r1), 0);
    CHECK_STR(gg_retriever_name(r), "none");
    gg_retriever_destroy(&r);

    old_generator_vtable_v1 *g1 = at_guard(sizeof *g1);
    memset(g1, 0, sizeof *g1);
    g1->version = 1;
    g1->generate = fake_generate;
    g1->destroy = count_destroy;
    g1->name = "old-vtable";
    gg_generator_t *gen = NULL;
    destroyed = 0;
    CHECK_RC(gg_generator_new_custom(&gen, (const gg_generator_vtable *)g1, NULL), 0);
    memset(g1, 0xA5, sizeof *g1); /* the library copied the vtable */
    CHECK_STR(gg_generator_name(gen), "old-vtable");
    gg_orchestrator_options oo = GG_ORCHESTRATOR_OPTIONS_INIT;
    oo.workers = 1;
    oo.generator = gen;
    gg_orchestrator_t *o = NULL;
    CHECK_RC(gg_orchestrator_new(&o, &oo), 0);
    char *id = NULL, *result = NULL;
    CHECK_RC(gg_orchestrator_submit(o, task, &id), 0);
    CHECK_RC(gg_orchestrator_wait(o, "old/add", 60000, &result), 0);
    if (result)
        CHECK_CONTAINS(result, "\"status\":\"passed\"");
    CHECK(gen_calls == 1);
    gg_free(result);
    gg_free(id);
    gg_orchestrator_destroy(&o);
    gg_generator_destroy(&gen);
    CHECK(destroyed == 1);

    old_executor_vtable_v1 *x1 = at_guard(sizeof *x1);
    memset(x1, 0, sizeof *x1);
    x1->version = 1;
    x1->run = fake_run;
    x1->destroy = count_destroy;
    destroyed = 0;
    CHECK_RC(gg_executor_new_custom(&ex, (const gg_executor_vtable *)x1, NULL), 0);
    CHECK_STR(gg_executor_backend(ex), "custom");
    gg_executor_destroy(&ex);
    CHECK(destroyed == 1);

    old_retriever_vtable_v1 *s1 = at_guard(sizeof *s1);
    memset(s1, 0, sizeof *s1);
    s1->version = 1;
    s1->search = fake_search;
    s1->destroy = count_destroy;
    destroyed = 0;
    CHECK_RC(gg_retriever_new_custom(&r, (const gg_retriever_vtable *)s1, NULL), 0);
    CHECK_RC(gg_retriever_feedback(r, "{\"task_id\": \"x\", \"passed\": true, \"ids\": []}"), 0);
    gg_retriever_destroy(&r);
    CHECK(destroyed == 1);
}

/* A struct from a newer header than the library knows is refused, never misread. */
static void test_unknown_versions(void)
{
    gg_orchestrator_options oo = GG_ORCHESTRATOR_OPTIONS_INIT;
    oo.version = GG_ORCHESTRATOR_OPTIONS_VERSION + 1;
    gg_orchestrator_t *o = (gg_orchestrator_t *)&oo; /* must be reset to NULL */
    CHECK_RC(gg_orchestrator_new(&o, &oo), GG_EVERSION);
    CHECK(o == NULL);
    CHECK_CONTAINS(gg_error_last(), "version");
    CHECK_RC(gg_orchestrator_options_init(&oo, 99), GG_EVERSION);

    gg_executor_options eo = GG_EXECUTOR_OPTIONS_INIT;
    eo.version = GG_EXECUTOR_OPTIONS_VERSION + 1;
    gg_executor_t *ex = NULL;
    CHECK_RC(gg_executor_new(&ex, &eo), GG_EVERSION);
    CHECK(ex == NULL);
    CHECK_RC(gg_executor_options_init(&eo, GG_EXECUTOR_OPTIONS_VERSION + 1), GG_EVERSION);

    gg_generator_options go = GG_GENERATOR_OPTIONS_INIT;
    go.version = GG_GENERATOR_OPTIONS_VERSION + 1;
    gg_generator_t *gen = NULL;
    CHECK_RC(gg_generator_new(&gen, &go), GG_EVERSION);
    CHECK(gen == NULL);
    CHECK_RC(gg_generator_options_init(&go, 0), GG_EVERSION);

    gg_retriever_options ro = GG_RETRIEVER_OPTIONS_INIT;
    ro.version = GG_RETRIEVER_OPTIONS_VERSION + 1;
    gg_retriever_t *r = NULL;
    CHECK_RC(gg_retriever_new(&r, &ro), GG_EVERSION);
    CHECK(r == NULL);

    gg_worker_options wo = GG_WORKER_OPTIONS_INIT;
    wo.version = GG_WORKER_OPTIONS_VERSION + 1;
    wo.connect = "inproc://nobody";
    gg_worker_t *w = NULL;
    CHECK_RC(gg_worker_new(&w, &wo), GG_EVERSION);
    CHECK(w == NULL);
    CHECK_CONTAINS(gg_error_last(), "gg_worker_options version");
    CHECK_RC(gg_worker_options_init(&wo, 0), GG_EVERSION);

    gg_client_options co = GG_CLIENT_OPTIONS_INIT;
    co.version = GG_CLIENT_OPTIONS_VERSION + 1;
    co.connect = "inproc://nobody";
    gg_client_t *c = NULL;
    CHECK_RC(gg_client_new(&c, &co), GG_EVERSION);
    CHECK(c == NULL);
    CHECK_RC(gg_client_options_init(&co, GG_CLIENT_OPTIONS_VERSION + 1), GG_EVERSION);

    gg_deliver_options dopt = GG_DELIVER_OPTIONS_INIT;
    dopt.version = GG_DELIVER_OPTIONS_VERSION + 1;
    char *delivered = NULL;
    CHECK_RC(gg_workspace_deliver("{}", "{}", &dopt, &delivered), GG_EVERSION);
    CHECK(delivered == NULL);

    /* Vtables: refused, and ownership of self passed anyway, so destroy ran once. */
    gg_generator_vtable gv = GG_GENERATOR_VTABLE_INIT;
    gv.version = GG_GENERATOR_VTABLE_VERSION + 1;
    gv.generate = fake_generate;
    gv.destroy = count_destroy;
    destroyed = 0;
    CHECK_RC(gg_generator_new_custom(&gen, &gv, NULL), GG_EVERSION);
    CHECK(gen == NULL && destroyed == 1);

    gg_executor_vtable xv = GG_EXECUTOR_VTABLE_INIT;
    xv.version = GG_EXECUTOR_VTABLE_VERSION + 1;
    xv.run = fake_run;
    xv.destroy = count_destroy;
    destroyed = 0;
    CHECK_RC(gg_executor_new_custom(&ex, &xv, NULL), GG_EVERSION);
    CHECK(ex == NULL && destroyed == 1);

    gg_retriever_vtable sv = GG_RETRIEVER_VTABLE_INIT;
    sv.version = GG_RETRIEVER_VTABLE_VERSION + 1;
    sv.search = fake_search;
    sv.destroy = count_destroy;
    destroyed = 0;
    CHECK_RC(gg_retriever_new_custom(&r, &sv, NULL), GG_EVERSION);
    CHECK(r == NULL && destroyed == 1);
}

int main(void)
{
    long ps = sysconf(_SC_PAGESIZE);
    page = ps > 0 ? (size_t)ps : 4096;
    void *m = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED);
    if (m == MAP_FAILED)
        return test_exit();
    guard_base = m;
    CHECK(mprotect(guard_base + page, page, PROT_NONE) == 0);

    test_old_orchestrator_options();
    test_old_backends();
    test_old_worker_and_client();
    test_unknown_versions();

    munmap(m, 2 * page);
    return test_exit();
}
