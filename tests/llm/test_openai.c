/*
 * test_openai.c - the "openai" generator against a fake chat-completions server on
 * loopback (fake_llm_server.py, argv[1]): answers and their reading, the request sent
 * (prompt, settings, bearer key), HTTP errors, retries with Retry-After and backoff,
 * timeouts (also from the environment), a base URL without /v1, malformed and cut-off bodies, the size cap, failover between endpoints,
 * configuration from options and the environment, prompt templates, code extraction,
 * concurrent calls, the journal of exchanges, secrets kept out of messages and responses, and one run of the
 * orchestrator that repairs its first answer from the feedback. Whether a request was
 * retried is counted (the fake server's /stats, or a listener of the test's own that closes
 * every connection), never guessed from how long a call took.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gryphgen.h>

#include "core/ggi.h"
#include "generation/citations.h"
#include "generation/prompt.h"
#include "llmtest.h"
#include "testutil.h"
#include "common/testnet.h"

#define KEY "sk-test-9f8e7d6c5b4a3210"
#define GOOD "def add(a, b):\n    return a + b\n"

static fake_server srv;
static char base_url[128];

static const char *task_json =
    "{\"task_id\": \"demo/add\", \"language\": \"python\", "
    "\"prompt\": \"Return the sum of a and b.\", \"stub\": \"def add(a, b):\\n\", "
    "\"entry_point\": \"add\", \"test\": \"assert add(2, 3) == 5\\n\"}";

static char *request(int attempt, const char *feedback, const char *context)
{
    return ggi_asprintf("{\"task\": %s, \"attempt\": %d, \"feedback\": %s, \"context\": %s}",
                        task_json, attempt, feedback ? feedback : "[]",
                        context ? context : "[]");
}

static gg_generator_options opts_for(const char *model)
{
    gg_generator_options o = GG_GENERATOR_OPTIONS_INIT;
    o.spec = "openai";
    o.url = base_url;
    o.model = model;
    o.api_key = KEY;
    o.timeout_s = 60; /* a guard against a hang; tests of the timeout set their own */
    return o;
}

/* Requests the fake server got for model so far. */
static int hits(const char *model)
{
    cJSON *st = fake_server_stats(&srv);
    double n = cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(st, "models"), model));
    cJSON_Delete(st);
    return n == n ? (int)n : 0;
}

/* A loopback listener that accepts every connection and closes it at once (a connection
 * error for the client, as a refused one is), counting them. */
typedef struct closer {
    int fd, port;
    atomic_int accepts;
    pthread_t thread;
} closer;

static void *closer_main(void *arg)
{
    closer *c = arg;
    for (;;) {
        int fd = accept(c->fd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            break; /* shut down */
        }
        atomic_fetch_add(&c->accepts, 1); /* before the client can see the close */
        close(fd);
    }
    return NULL;
}

static int closer_start(closer *c)
{
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (c->fd < 0 || bind(c->fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(c->fd, (struct sockaddr *)&a, &len) != 0 || listen(c->fd, 16) != 0 ||
        pthread_create(&c->thread, NULL, closer_main, c) != 0) {
        if (c->fd >= 0)
            close(c->fd);
        c->fd = -1;
        return -1;
    }
    c->port = ntohs(a.sin_port);
    return 0;
}

static void closer_stop(closer *c)
{
    if (c->fd < 0)
        return;
    shutdown(c->fd, SHUT_RDWR); /* wakes the accept */
    pthread_join(c->thread, NULL);
    close(c->fd);
    c->fd = -1;
}

/* Makes a generator and asks it once; returns the status, *resp the parsed response, *err
 * a copy of the error message. */
static int ask(const gg_generator_options *o, const char *req_json, cJSON **resp, char **err,
               double *elapsed_ms)
{
    *resp = NULL;
    *err = NULL;
    gg_generator_t *g = NULL;
    int rc = gg_generator_new(&g, o);
    if (rc) {
        *err = ggi_strdup(gg_error_last());
        return rc;
    }
    char *req = req_json ? ggi_strdup(req_json) : request(1, NULL, NULL);
    char *out = NULL;
    double t0 = ggi_now_ms();
    rc = gg_generator_generate(g, req, &out);
    if (elapsed_ms)
        *elapsed_ms = ggi_now_ms() - t0;
    *err = ggi_strdup(gg_error_last());
    if (rc == GG_OK) {
        if (!strstr(out, "authorization")) /* the echo mode shows the header it got */
            CHECK(strstr(out, KEY) == NULL);
        *resp = cJSON_Parse(out);
        CHECK(*resp != NULL);
    } else {
        CHECK(out == NULL);
    }
    CHECK(strstr(*err, KEY) == NULL);
    CHECK(strstr(*err, "9f8e7d6c") == NULL);
    gg_free(out);
    free(req);
    gg_generator_destroy(&g);
    CHECK(g == NULL);
    return rc;
}

static const char *str(const cJSON *o, const char *k)
{
    return cJSON_GetStringValue(cJSON_GetObjectItem(o, k));
}

static double num(const cJSON *o, const char *k)
{
    return cJSON_GetNumberValue(cJSON_GetObjectItem(o, k));
}

static void test_ok(void)
{
    gg_generator_options o = opts_for("ok:a");
    cJSON *r;
    char *err;
    CHECK_RC(ask(&o, NULL, &r, &err, NULL), GG_OK);
    CHECK_STR(str(r, "code"), GOOD);
    CHECK_STR(str(r, "generator"), "openai");
    CHECK_STR(str(r, "model"), "ok:a");
    CHECK_STR(str(r, "finish_reason"), "stop");
    char want[200];
    snprintf(want, sizeof want, "%s/chat/completions", base_url);
    CHECK_STR(str(r, "endpoint"), want);
    const cJSON *u = cJSON_GetObjectItem(r, "usage");
    CHECK(num(u, "prompt_tokens") == 11);
    CHECK(num(u, "completion_tokens") == 7);
    CHECK(num(u, "total_tokens") == 18);
    cJSON_Delete(r);
    free(err);

    /* the generator's name, and the list of valid specs */
    gg_generator_t *g = NULL;
    CHECK_RC(gg_generator_new(&g, &o), GG_OK);
    CHECK_STR(gg_generator_name(g), "openai");
    gg_generator_destroy(&g);
    gg_generator_options bad = GG_GENERATOR_OPTIONS_INIT;
    bad.spec = "openai2";
    CHECK_RC(gg_generator_new(&g, &bad), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "\"openai\"");

    /* a base URL given with the full path, and with a trailing slash */
    char full[200];
    snprintf(full, sizeof full, "%s/chat/completions", base_url);
    o.url = full;
    CHECK_RC(ask(&o, NULL, &r, &err, NULL), GG_OK);
    CHECK_STR(str(r, "endpoint"), want);
    cJSON_Delete(r);
    free(err);
    snprintf(full, sizeof full, "%s/", base_url);
    CHECK_RC(ask(&o, NULL, &r, &err, NULL), GG_OK);
    CHECK_STR(str(r, "endpoint"), want);
    cJSON_Delete(r);
    free(err);
}

static void test_extraction_modes(void)
{
    cJSON *r;
    char *err;
    gg_generator_options o = opts_for("fenced:a");
    CHECK_RC(ask(&o, NULL, &r, &err, NULL), GG_OK);
    CHECK_STR(str(r, "code"), GOOD); /* the block that defines add, not the helper */
    cJSON_Delete(r);
    free(err);
    o = opts_for("plain:a");
    CHECK_RC(ask(&o, NULL, &r, &err, NULL), GG_OK);
    CHECK_STR(str(r, "code"), GOOD);
    cJSON_Delete(r);
    free(err);
}

/* The request the server saw, from an echo answer. */
static cJSON *echoed(const cJSON *resp)
{
    const char *code = str(resp, "code");
    return code ? cJSON_Parse(code) : NULL;
}

static const char *message(const cJSON *echo, int i)
{
    const cJSON *m = cJSON_GetArrayItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(echo, "request"), "messages"), i);
    return str(m, "content");
}

/* A workspace task: the prompt shows the repository's files and test command and asks for a
 * unified diff; the model's whole reply is the answer (the patch reader takes it apart). */
static const char *WS_REQ =
    "{\"task\":{\"task_id\":\"ws/1\",\"language\":\"python\",\"prompt\":\"Fix add().\","
    "\"workspace\":{\"repo\":\"/r\",\"commit\":\"0123456789abcdef0123456789abcdef01234567\"},"
    "\"test_command\":[\"python3\",\"-m\",\"unittest\"]},\"attempt\":1,\"feedback\":[],"
    "\"context\":[],\"workspace\":{\"files\":[\"calc.py\",\"test_calc.py\"],"
    "\"truncated\":false}}";

static void test_workspace_prompt(void)
{
    cJSON *r;
    char *err;
    gg_generator_options o = opts_for("echo:w");
    CHECK_RC(ask(&o, WS_REQ, &r, &err, NULL), GG_OK);
    /* the reply is kept whole, fences and all */
    CHECK_CONTAINS(str(r, "code"), "```json\n");
    char *inner = ggi_prompt_extract_code(str(r, "code"), NULL, "json");
    cJSON *e = inner ? cJSON_Parse(inner) : NULL;
    free(inner);
    const char *user = message(e, 1);
    CHECK_CONTAINS(user, "Task: Fix add().");
    CHECK_CONTAINS(user, "The repository's files (paths from its root):\n- calc.py\n"
                         "- test_calc.py\n");
    CHECK_CONTAINS(user, "The tests run with: python3 -m unittest");
    CHECK_CONTAINS(user, "a unified diff");
    CHECK(user && !strstr(user, "Complete this code"));
    cJSON_Delete(e);
    cJSON_Delete(r);
    free(err);
}

static void test_request_sent(void)
{
    gg_generator_options o = opts_for("echo:a");
    o.max_tokens = 512;
    o.seed = 7;
    o.temperature = 0.5;
    char big_doc[7000];
    memset(big_doc, 'z', sizeof big_doc - 1);
    big_doc[sizeof big_doc - 1] = '\0';
    char *ctx = ggi_asprintf(
        "[{\"id\": \"doc-1\", \"text\": \"Use the + operator.\", \"score\": 1.0, \"source\": "
        "\"kb\"}, {\"id\": \"doc-big\", \"text\": \"%s\"}]",
        big_doc);
    const char *fb =
        "[{\"attempt\": 1, \"code\": \"def add(a, b):\\n    return a - b\\n\", "
        "\"reason\": \"AssertionError at test.py line 1\", "
        "\"findings\": [{\"severity\": \"warning\", \"line\": 2, \"column\": 5, "
        "\"message\": \"suspicious minus\"}], "
        "\"stderr_tail\": \"Traceback (most recent call last):\\nAssertionError\\n\", "
        "\"stdout_tail\": \"\"}]";
    char *req = request(2, fb, ctx);
    cJSON *r;
    char *err;
    CHECK_RC(ask(&o, req, &r, &err, NULL), GG_OK);
    cJSON *e = echoed(r);
    CHECK(e != NULL);
    CHECK_STR(str(e, "authorization"), "Bearer " KEY);
    CHECK_STR(str(e, "path"), "/v1/chat/completions");
    const cJSON *rq = cJSON_GetObjectItem(e, "request");
    CHECK_STR(str(rq, "model"), "echo:a");
    CHECK(num(rq, "temperature") == 0.5);
    CHECK(num(rq, "max_tokens") == 512);
    CHECK(num(rq, "seed") == 7);
    CHECK(cJSON_IsFalse(cJSON_GetObjectItem(rq, "stream")));
    CHECK_STR(str(cJSON_GetArrayItem(cJSON_GetObjectItem(rq, "messages"), 0), "role"),
              "system");
    CHECK_STR(str(cJSON_GetArrayItem(cJSON_GetObjectItem(rq, "messages"), 1), "role"), "user");
    CHECK_CONTAINS(message(e, 0), "python");
    const char *user = message(e, 1);
    CHECK_CONTAINS(user, "Return the sum of a and b.");
    CHECK_CONTAINS(user, "```python\ndef add(a, b):\n```");
    CHECK_CONTAINS(user, "`add`");
    CHECK_CONTAINS(user, "Use the + operator.");
    CHECK(user && !strstr(user, "zzzzzzzzzz")); /* beyond the context budget */
    CHECK_CONTAINS(user, "Attempt 1 failed: AssertionError at test.py line 1");
    CHECK_CONTAINS(user, "return a - b");
    CHECK_CONTAINS(user, "line 2, column 5: warning: suspicious minus");
    CHECK_CONTAINS(user, "Traceback (most recent call last)");
    CHECK(user && !strstr(user, "standard output")); /* empty stdout is left out */
    CHECK(user && !strstr(user, "assert add(2, 3)")); /* the tests stay hidden */
    cJSON_Delete(e);
    cJSON_Delete(r);
    free(err);
    free(req);
    free(ctx);

    /* defaults: temperature 0.2, no max_tokens, no seed, no key: no Authorization */
    o = opts_for("echo:b");
    o.api_key = NULL;
    CHECK_RC(ask(&o, NULL, &r, &err, NULL), GG_OK);
    e = echoed(r);
    rq = cJSON_GetObjectItem(e, "request");
    CHECK(num(rq, "temperature") == 0.2);
    CHECK(cJSON_GetObjectItem(rq, "max_tokens") == NULL);
    CHECK(cJSON_GetObjectItem(rq, "seed") == NULL);
    CHECK_STR(str(e, "authorization"), "");
    CHECK(message(e, 1) && !strstr(message(e, 1), "Earlier attempts"));
    cJSON_Delete(e);
    cJSON_Delete(r);
    free(err);
    err = NULL;

    /* the Task Monitor's strategy overrides the temperature; out of range it is ignored */
    static const char *const strategies[] = { "{\"temperature\": 1.3, \"rollback_to\": 1}",
                                              "{\"temperature\": 5}", "{\"reason\": \"x\"}" };
    static const double want[] = { 1.3, 0.2, 0.2 };
    for (int i = 0; i < 3; i++) {
        char *base = request(3, NULL, NULL);
        char *sreq = base ? ggi_asprintf("%.*s, \"strategy\": %s}", (int)strlen(base) - 1, base,
                                         strategies[i]) : NULL;
        free(base);
        o = opts_for("echo:s");
        CHECK_RC(ask(&o, sreq, &r, &err, NULL), GG_OK);
        e = echoed(r);
        CHECK(num(cJSON_GetObjectItem(e, "request"), "temperature") == want[i]);
        cJSON_Delete(e);
        cJSON_Delete(r);
        free(err);
        err = NULL;
        free(sreq);
    }
    free(err);
}

static void test_http_errors(void)
{
    cJSON *r;
    char *err;
    double ms;
    gg_generator_options o = opts_for("401:a");
    int before = hits("401:a");
    CHECK_RC(ask(&o, NULL, &r, &err, &ms), GG_EGENERATOR);
    CHECK_CONTAINS(err, "authentication failed (check GRYPHGEN_LLM_API_KEY)");
    CHECK_CONTAINS(err, "Incorrect API key provided"); /* the server's words, key hidden */
    CHECK_CONTAINS(err, "HTTP 401");
    CHECK(hits("401:a") == before + 1); /* not retried */
    free(err);

    o = opts_for("400:a");
    before = hits("400:a");
    CHECK_RC(ask(&o, NULL, &r, &err, &ms), GG_EGENERATOR);
    CHECK_CONTAINS(err, "HTTP 400");
    CHECK_CONTAINS(err, "max_tokens is too large");
    CHECK(hits("400:a") == before + 1);
    free(err);

    o = opts_for("404:a");
    CHECK_RC(ask(&o, NULL, &r, &err, &ms), GG_EGENERATOR);
    CHECK_CONTAINS(err, "HTTP 404");
    CHECK_CONTAINS(err, "model '404:a' not found");
    free(err);

    /* A base URL without /v1: the server's bare 404, and the way out. */
    char bare[128], want[192];
    snprintf(bare, sizeof bare, "http://127.0.0.1:%d", srv.port);
    o = opts_for("ok:a");
    o.url = bare;
    int bare_before = fake_server_path_hits(&srv, "/chat/completions");
    CHECK_RC(ask(&o, NULL, &r, &err, &ms), GG_EGENERATOR);
    CHECK_CONTAINS(err, "HTTP 404");
    CHECK_CONTAINS(err, "404 page not found");
    snprintf(want, sizeof want, "try the base URL http://127.0.0.1:%d/v1 in GRYPHGEN_LLM_URL",
             srv.port);
    CHECK_CONTAINS(err, want);
    CHECK(fake_server_path_hits(&srv, "/chat/completions") == bare_before + 1); /* not retried */
    free(err);
}

static void test_retries(void)
{
    cJSON *r;
    char *err;
    double ms;
    gg_generator_options o = opts_for("429once:a");
    CHECK_RC(ask(&o, NULL, &r, &err, &ms), GG_OK);
    CHECK_STR(str(r, "code"), GOOD);
    CHECK(ms >= 950); /* Retry-After: 1 was honoured */
    CHECK(hits("429once:a") == 2);
    cJSON_Delete(r);
    free(err);

    o = opts_for("429:a");
    o.max_retries = 1;
    CHECK_RC(ask(&o, NULL, &r, &err, &ms), GG_EGENERATOR);
    CHECK_CONTAINS(err, "HTTP 429 (rate limited): slow down");
    CHECK(ms >= 950);
    CHECK(hits("429:a") == 2); /* the first try and one retry */
    free(err);

    o = opts_for("500once:a");
    CHECK_RC(ask(&o, NULL, &r, &err, &ms), GG_OK);
    CHECK_STR(str(r, "code"), GOOD);
    CHECK(hits("500once:a") == 2);
    CHECK(ms >= 120); /* a backoff of 125 to 250 ms */
    cJSON_Delete(r);
    free(err);

    o = opts_for("500:a");
    o.max_retries = -1; /* none */
    int before = hits("500:a");
    CHECK_RC(ask(&o, NULL, &r, &err, &ms), GG_EGENERATOR);
    CHECK_CONTAINS(err, "HTTP 500: internal trouble");
    CHECK(hits("500:a") == before + 1);
    free(err);
}

static void test_timeouts(void)
{
    cJSON *r;
    char *err;
    double ms;
    /* The server answers after 3 s (or stalls for 30 s): only the 1 s timeout can end
     * these calls, and a timeout is not retried on the same endpoint. */
    gg_generator_options o = opts_for("slow:a");
    o.timeout_s = 1;
    CHECK_RC(ask(&o, NULL, &r, &err, &ms), GG_ETIMEDOUT);
    CHECK_CONTAINS(err, "within 1.0 s");
    CHECK(ms >= 900);
    CHECK(hits("slow:a") == 1);
    free(err);

    o = opts_for("hang:a");
    o.timeout_s = 1;
    CHECK_RC(ask(&o, NULL, &r, &err, &ms), GG_ETIMEDOUT);
    CHECK(ms >= 900);
    CHECK(hits("hang:a") == 1);
    free(err);

    /* From the environment when the option is unset (gryphgen --llm-timeout sets it). */
    o = opts_for("slow:a");
    o.timeout_s = 0;
    setenv("GRYPHGEN_LLM_TIMEOUT_S", "1", 1);
    setenv("GRYPHGEN_LLM_CONNECT_TIMEOUT_S", "0.5", 1);
    CHECK_RC(ask(&o, NULL, &r, &err, &ms), GG_ETIMEDOUT);
    CHECK_CONTAINS(err, "within 1.0 s");
    CHECK(ms >= 900); /* the server answers after 3 s: GG_ETIMEDOUT says the 1 s applied */
    free(err);
    setenv("GRYPHGEN_LLM_TIMEOUT_S", "soon", 1);
    CHECK_RC(ask(&o, NULL, &r, &err, &ms), GG_EINVAL);
    CHECK_CONTAINS(err, "GRYPHGEN_LLM_TIMEOUT_S='soon'");
    free(err);
    setenv("GRYPHGEN_LLM_TIMEOUT_S", "1", 1);
    setenv("GRYPHGEN_LLM_CONNECT_TIMEOUT_S", "-1", 1);
    CHECK_RC(ask(&o, NULL, &r, &err, &ms), GG_EINVAL);
    CHECK_CONTAINS(err, "GRYPHGEN_LLM_CONNECT_TIMEOUT_S");
    free(err);
    unsetenv("GRYPHGEN_LLM_CONNECT_TIMEOUT_S");
    unsetenv("GRYPHGEN_LLM_TIMEOUT_S");
}

static void test_bad_bodies(void)
{
    cJSON *r;
    char *err;
    gg_generator_options o = opts_for("malformed:a");
    CHECK_RC(ask(&o, NULL, &r, &err, NULL), GG_EGENERATOR);
    CHECK_CONTAINS(err, "not a JSON object");
    free(err);
    o = opts_for("nochoices:a");
    CHECK_RC(ask(&o, NULL, &r, &err, NULL), GG_EGENERATOR);
    CHECK_CONTAINS(err, "has no choices");
    free(err);
    o = opts_for("nocontent:a");
    CHECK_RC(ask(&o, NULL, &r, &err, NULL), GG_EGENERATOR);
    CHECK_CONTAINS(err, "no content string");
    free(err);
    /* cJSON would end the code at the NUL (so "assert 0" after it would vanish) and keep
     * bytes that are not UTF-8: the reply is refused, naming the field */
    o = opts_for("nul:a");
    CHECK_RC(ask(&o, NULL, &r, &err, NULL), GG_EGENERATOR);
    CHECK_CONTAINS(err, "field 'choices[0].message.content' holds a NUL");
    free(err);
    o = opts_for("badutf8:a");
    CHECK_RC(ask(&o, NULL, &r, &err, NULL), GG_EGENERATOR);
    CHECK_CONTAINS(err, "field 'choices[0].message.content' is not valid UTF-8");
    free(err);
    o = opts_for("truncated:a");
    o.max_retries = -1;
    CHECK_RC(ask(&o, NULL, &r, &err, NULL), GG_EGENERATOR);
    CHECK_CONTAINS(err, "cut off");
    free(err);
    o = opts_for("big:a");
    CHECK_RC(ask(&o, NULL, &r, &err, NULL), GG_EGENERATOR);
    CHECK_CONTAINS(err, "larger than 8 MiB");
    free(err);
    o = opts_for("ok:cap");
    o.max_output = 10;
    CHECK_RC(ask(&o, NULL, &r, &err, NULL), GG_ETOOBIG);
    free(err);
    /* a malformed generator request */
    o = opts_for("ok:b");
    CHECK_RC(ask(&o, "{\"task\": 3}", &r, &err, NULL), GG_EINVAL);
    free(err);
}

static void test_failover(void)
{
    char urls[400];
    snprintf(urls, sizeof urls, "http://127.0.0.1:%d/dead/v1, %s", srv.port, base_url);
    gg_generator_options o = opts_for("ok:f");
    o.url = urls;
    o.max_retries = 1;
    gg_generator_t *g = NULL;
    CHECK_RC(gg_generator_new(&g, &o), GG_OK);
    char want[200];
    snprintf(want, sizeof want, "%s/chat/completions", base_url);
    char *req = request(1, NULL, NULL);
    /* The bandit ranks the two untried arms at random: once the dead endpoint has been
     * asked (and failed over from), it is not asked again while it counts as dead. */
    int dead_before = 0, checked = 0;
    for (int i = 0; i < 40 && checked < 3; i++) {
        char *out = NULL;
        CHECK_RC(gg_generator_generate(g, req, &out), GG_OK);
        cJSON *r = cJSON_Parse(out);
        CHECK_STR(str(r, "endpoint"), want);
        CHECK_STR(str(r, "code"), GOOD);
        int dead = fake_server_path_hits(&srv, "/dead/v1/chat/completions");
        if (dead_before > 0) {
            CHECK(dead == dead_before);
            checked++;
        }
        dead_before = dead;
        cJSON_Delete(r);
        gg_free(out);
    }
    CHECK(checked == 3); /* the dead endpoint was asked at some point */
    gg_generator_destroy(&g);

    /* connection refused fails over */
    snprintf(urls, sizeof urls, "http://127.0.0.1:%d/v1,%s", test_free_port(), base_url);
    o.max_retries = 0;
    CHECK_RC(gg_generator_new(&g, &o), GG_OK);
    char *out = NULL;
    CHECK_RC(gg_generator_generate(g, req, &out), GG_OK);
    CHECK_CONTAINS(out, want);
    gg_free(out);
    gg_generator_destroy(&g);

    /* a connection error with another endpoint to go to fails over at once: not retried
     * there, although retries are allowed (each new generator ranks its endpoints at
     * random, so until the broken one came first) */
    closer cl;
    CHECK(closer_start(&cl) == 0);
    snprintf(urls, sizeof urls, "http://127.0.0.1:%d/v1,%s", cl.port, base_url);
    o.max_retries = 3;
    int asked_first = 0;
    for (int i = 0; i < 40 && !asked_first && cl.fd >= 0; i++) {
        int before = atomic_load(&cl.accepts);
        CHECK_RC(gg_generator_new(&g, &o), GG_OK);
        out = NULL;
        CHECK_RC(gg_generator_generate(g, req, &out), GG_OK);
        CHECK_CONTAINS(out, want);
        gg_free(out);
        gg_generator_destroy(&g);
        int n = atomic_load(&cl.accepts) - before;
        CHECK(n == 0 || n == 1);
        asked_first = n > 0;
    }
    CHECK(asked_first);

    /* every endpoint down */
    snprintf(urls, sizeof urls, "http://127.0.0.1:%d/v1,http://127.0.0.1:%d/dead/v1",
             test_free_port(), srv.port);
    o.max_retries = -1;
    cJSON *r;
    char *err;
    CHECK_RC(ask(&o, req, &r, &err, NULL), GG_EGENERATOR);
    CHECK_CONTAINS(err, "all 2 endpoints failed");
    free(err);

    /* one endpoint, refused: retried, then an error naming it */
    snprintf(urls, sizeof urls, "http://127.0.0.1:%d/v1", test_free_port());
    o.max_retries = 1;
    double ms;
    CHECK_RC(ask(&o, req, &r, &err, &ms), GG_EGENERATOR);
    CHECK_CONTAINS(err, "127.0.0.1");
    CHECK(ms >= 120); /* one backoff */
    free(err);

    /* the same with a connection that is closed at once: one try and one retry */
    snprintf(urls, sizeof urls, "http://127.0.0.1:%d/v1", cl.port);
    int before = atomic_load(&cl.accepts);
    CHECK_RC(ask(&o, req, &r, &err, NULL), GG_EGENERATOR);
    CHECK(atomic_load(&cl.accepts) - before == 2);
    free(err);
    closer_stop(&cl);
    free(req);
}

static void test_secrets(void)
{
    /* credentials in the URL never show */
    char url[200];
    snprintf(url, sizeof url, "http://user:pw-secret-42@127.0.0.1:%d/v1?token=qs-secret",
             srv.port);
    gg_generator_options o = opts_for("ok:s");
    o.url = url;
    cJSON *r;
    char *err;
    CHECK_RC(ask(&o, NULL, &r, &err, NULL), GG_OK);
    char want[200];
    snprintf(want, sizeof want, "http://127.0.0.1:%d/v1/chat/completions", srv.port);
    CHECK_STR(str(r, "endpoint"), want);
    cJSON_Delete(r);
    free(err);
    o = opts_for("401:s");
    o.url = url;
    CHECK_RC(ask(&o, NULL, &r, &err, NULL), GG_EGENERATOR);
    CHECK(!strstr(err, "pw-secret") && !strstr(err, "qs-secret"));
    free(err);
    /* a key that cannot travel in a header is refused without being quoted */
    o = opts_for("ok:s");
    o.api_key = "sk-bad key-with-space";
    CHECK_RC(ask(&o, NULL, &r, &err, NULL), GG_EINVAL);
    CHECK(!strstr(err, "key-with-space"));
    CHECK_CONTAINS(err, "option api_key");
    free(err);
}

static void test_config(void)
{
    cJSON *r;
    char *err;
    gg_generator_options o = GG_GENERATOR_OPTIONS_INIT;
    o.spec = "openai";
    CHECK_RC(ask(&o, NULL, &r, &err, NULL), GG_EINVAL);
    CHECK_CONTAINS(err, "GRYPHGEN_LLM_URL");
    free(err);
    o.url = base_url;
    CHECK_RC(ask(&o, NULL, &r, &err, NULL), GG_EINVAL);
    CHECK_CONTAINS(err, "GRYPHGEN_LLM_MODEL");
    free(err);
    o.model = "ok:c";
    o.url = "ftp://127.0.0.1/v1";
    CHECK_RC(ask(&o, NULL, &r, &err, NULL), GG_EINVAL);
    CHECK_CONTAINS(err, "not an http:// or https:// URL");
    free(err);
    o.url = " , ";
    CHECK_RC(ask(&o, NULL, &r, &err, NULL), GG_EINVAL);
    CHECK_CONTAINS(err, "names no endpoint");
    free(err);
    o.url = base_url;
    o.connect_timeout_s = -1;
    CHECK_RC(ask(&o, NULL, &r, &err, NULL), GG_EINVAL);
    free(err);
    o.connect_timeout_s = 0;
    o.api_key_file = "/nonexistent/key";
    CHECK_RC(ask(&o, NULL, &r, &err, NULL), GG_ENOTFOUND);
    CHECK_CONTAINS(err, "/nonexistent/key");
    free(err);
    o.api_key_file = NULL;

    /* everything from the environment */
    char keyfile[] = "/tmp/gg-llm-key-XXXXXX";
    int fd = mkstemp(keyfile);
    CHECK(fd >= 0);
    CHECK(write(fd, "  " KEY "\n\n", strlen(KEY) + 4) == (ssize_t)strlen(KEY) + 4);
    close(fd);
    gg_generator_options e = GG_GENERATOR_OPTIONS_INIT;
    e.spec = "openai";
    setenv("GRYPHGEN_LLM_URL", base_url, 1);
    setenv("GRYPHGEN_LLM_MODEL", "echo:env", 1);
    setenv("GRYPHGEN_LLM_API_KEY_FILE", keyfile, 1);
    setenv("GRYPHGEN_LLM_TEMPERATURE", "0.7", 1);
    setenv("GRYPHGEN_LLM_MAX_TOKENS", "99", 1);
    CHECK_RC(ask(&e, NULL, &r, &err, NULL), GG_OK);
    cJSON *ec = echoed(r);
    CHECK_STR(str(ec, "authorization"), "Bearer " KEY);
    CHECK_STR(str(cJSON_GetObjectItem(ec, "request"), "model"), "echo:env");
    CHECK(num(cJSON_GetObjectItem(ec, "request"), "temperature") == 0.7);
    CHECK(num(cJSON_GetObjectItem(ec, "request"), "max_tokens") == 99);
    cJSON_Delete(ec);
    cJSON_Delete(r);
    free(err);
    /* an option wins over the environment */
    e.api_key = "sk-option-key";
    e.temperature = 0;
    CHECK_RC(ask(&e, NULL, &r, &err, NULL), GG_OK);
    ec = echoed(r);
    CHECK_STR(str(ec, "authorization"), "Bearer sk-option-key");
    CHECK(num(cJSON_GetObjectItem(ec, "request"), "temperature") == 0);
    cJSON_Delete(ec);
    cJSON_Delete(r);
    free(err);
    e.api_key = NULL;
    e.temperature = -1;
    setenv("GRYPHGEN_LLM_TEMPERATURE", "hot", 1);
    CHECK_RC(ask(&e, NULL, &r, &err, NULL), GG_EINVAL);
    CHECK_CONTAINS(err, "GRYPHGEN_LLM_TEMPERATURE");
    free(err);
    unsetenv("GRYPHGEN_LLM_TEMPERATURE");
    unsetenv("GRYPHGEN_LLM_MAX_TOKENS");
    /* the OPENAI_* fallbacks */
    unsetenv("GRYPHGEN_LLM_URL");
    unsetenv("GRYPHGEN_LLM_API_KEY_FILE");
    setenv("OPENAI_BASE_URL", base_url, 1);
    setenv("OPENAI_API_KEY", "sk-openai-fallback", 1);
    CHECK_RC(ask(&e, NULL, &r, &err, NULL), GG_OK);
    ec = echoed(r);
    CHECK_STR(str(ec, "authorization"), "Bearer sk-openai-fallback");
    cJSON_Delete(ec);
    cJSON_Delete(r);
    free(err);
    /* GRYPHGEN_LLM_API_KEY comes before OPENAI_API_KEY */
    setenv("GRYPHGEN_LLM_API_KEY", "sk-gryphgen", 1);
    CHECK_RC(ask(&e, NULL, &r, &err, NULL), GG_OK);
    ec = echoed(r);
    CHECK_STR(str(ec, "authorization"), "Bearer sk-gryphgen");
    cJSON_Delete(ec);
    cJSON_Delete(r);
    free(err);
    clear_llm_env();
    unlink(keyfile);
}

static char *write_temp(const char *text)
{
    char path[] = "/tmp/gg-llm-tpl-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? ggi_strdup(path) : NULL;
}

static void test_templates(void)
{
    char *both = write_temp("=== system ===\nSYS for {{language}}\n=== user ===\n"
                            "Write {{entry_point}} ({{task_id}}, attempt {{attempt}}): "
                            "{{prompt}} {{ not_a_placeholder }}\n");
    char *user_only = write_temp("Just {{goal}}.\n");
    char *unknown = write_temp("Hello {{nme}}\n");
    char *sys_only = write_temp("=== system ===\nx\n");
    CHECK(both && user_only && unknown && sys_only);
    cJSON *r;
    char *err;
    gg_generator_options o = opts_for("echo:t");
    o.prompt_template_file = both;
    CHECK_RC(ask(&o, NULL, &r, &err, NULL), GG_OK);
    cJSON *e = echoed(r);
    CHECK_STR(message(e, 0), "SYS for python\n");
    CHECK_STR(message(e, 1), "Write add (demo/add, attempt 1): Return the sum of a and b. "
                             "{{ not_a_placeholder }}\n");
    cJSON_Delete(e);
    cJSON_Delete(r);
    free(err);

    o.prompt_template_file = NULL;
    setenv("GRYPHGEN_LLM_PROMPT_FILE", user_only, 1);
    CHECK_RC(ask(&o, NULL, &r, &err, NULL), GG_OK);
    e = echoed(r);
    CHECK_CONTAINS(message(e, 0), "expert python programmer"); /* the built-in system part */
    CHECK_STR(message(e, 1),
              "Just the complete function `add` (with the imports and helpers it needs).\n");
    cJSON_Delete(e);
    cJSON_Delete(r);
    free(err);
    unsetenv("GRYPHGEN_LLM_PROMPT_FILE");

    o.prompt_template_file = unknown;
    CHECK_RC(ask(&o, NULL, &r, &err, NULL), GG_EINVAL);
    CHECK_CONTAINS(err, "unknown placeholder {{nme}}");
    free(err);
    o.prompt_template_file = sys_only;
    CHECK_RC(ask(&o, NULL, &r, &err, NULL), GG_EINVAL);
    free(err);
    o.prompt_template_file = "/nonexistent/template";
    CHECK_RC(ask(&o, NULL, &r, &err, NULL), GG_ENOTFOUND);
    free(err);
    const char *files[] = { both, user_only, unknown, sys_only };
    for (int i = 0; i < 4; i++) {
        if (files[i])
            unlink(files[i]);
        free((char *)files[i]);
    }
}

static void check_extract(const char *reply, const char *entry, const char *lang,
                          const char *want)
{
    char *got = ggi_prompt_extract_code(reply, entry, lang);
    CHECK_STR(got, want);
    free(got);
}

static void test_extract(void)
{
    check_extract("def f():\n    pass\n\n\n", "f", "python", "def f():\n    pass\n");
    check_extract("\n\nx = 1", NULL, NULL, "x = 1\n");
    check_extract("Sure:\n```python\nx = 1\n```\nbye", NULL, "python", "x = 1\n");
    check_extract("```\nx = 1\n```", NULL, NULL, "x = 1\n");
    /* cut off by the token limit: the open block runs to the end */
    check_extract("```python\ndef f():\n    return 1", "f", "python", "def f():\n    return 1\n");
    /* several: the one defining the entry point, else the language's, else the first */
    check_extract("```python\nimport os\n```\n```python\ndef  f (x):\n    return x\n```\n", "f",
                  "python", "def  f (x):\n    return x\n");
    check_extract("```sh\nls\n```\n```python\ny = 2\n```\n", "g", "python", "y = 2\n");
    check_extract("```sh\nls\n```\n```text\ny\n```\n", "g", "python", "ls\n");
    /* "f(" called, not defined, in the first block */
    check_extract("```python\nprint(f(1))\n```\n```python\ndef f(x):\n    return x\n```", "f",
                  "python", "def f(x):\n    return x\n");
    check_extract("```c\nint main(void) { return sq(2); }\n```\n```c\n"
                  "int sq(int x)\n{\n    return x * x;\n}\n```\n",
                  "sq", "c", "int sq(int x)\n{\n    return x * x;\n}\n");
    /* a reasoning section is skipped */
    check_extract("<think>maybe ```python\nwrong\n```</think>\n```python\nright = 1\n```", NULL,
                  "python", "right = 1\n");
    /* indented fences and a longer fence */
    check_extract("  ````python\nz = 3\n  ````\n", NULL, NULL, "z = 3\n");
    check_extract("", NULL, NULL, "");
}

typedef struct worker_arg {
    gg_generator_t *g;
    int ok;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *a = p;
    char *req = request(1, NULL, NULL);
    for (int i = 0; i < 5; i++) {
        char *out = NULL;
        if (gg_generator_generate(a->g, req, &out) == GG_OK && strstr(out, "return a + b"))
            a->ok++;
        gg_free(out);
    }
    free(req);
    return NULL;
}

static void test_concurrent(void)
{
    char urls[300];
    snprintf(urls, sizeof urls, "%s,%s", base_url, base_url);
    gg_generator_options o = opts_for("ok:conc");
    o.url = urls;
    gg_generator_t *g = NULL;
    CHECK_RC(gg_generator_new(&g, &o), GG_OK);
    pthread_t th[4];
    worker_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i].g = g;
        args[i].ok = 0;
        CHECK(pthread_create(&th[i], NULL, worker, &args[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK(args[i].ok == 5);
    }
    gg_generator_destroy(&g);
}

/* The whole file as text, for looking for secrets in it. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    ggi_buf b = GGI_BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        for (size_t i = 0; i < n; i++) /* NULs would end the string early */
            if (ggi_buf_append(&b, chunk[i] ? &chunk[i] : " ", 1))
                break;
    fclose(f);
    return ggi_buf_steal(&b);
}

static void test_journal(void)
{
    char dir[] = "/tmp/gg-llm-journal-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *db = ggi_asprintf("%s/journal.db", dir);
    setenv("GRYPHGEN_LLM_JOURNAL", db, 1);
    gg_generator_options o = opts_for("count:j");
    cJSON *r;
    char *err;
    CHECK_RC(ask(&o, NULL, &r, &err, NULL), GG_OK);
    CHECK_STR(str(r, "code"), "x = 1\n");
    CHECK(cJSON_GetObjectItem(r, "journal") == NULL);
    cJSON_Delete(r);
    free(err);
    /* the same request again, from a new generator: the recorded answer, no request */
    CHECK_RC(ask(&o, NULL, &r, &err, NULL), GG_OK);
    CHECK_STR(str(r, "code"), "x = 1\n");
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(r, "journal")));
    CHECK_STR(str(r, "model"), "count:j");
    cJSON_Delete(r);
    free(err);
    /* another request (attempt 2 with feedback) is asked */
    char *req = request(2, "[{\"attempt\": 1, \"reason\": \"wrong\"}]", NULL);
    CHECK_RC(ask(&o, req, &r, &err, NULL), GG_OK);
    CHECK_STR(str(r, "code"), "x = 2\n");
    cJSON_Delete(r);
    free(err);
    free(req);
    /* a changed setting (temperature) is another request too */
    o.temperature = 0.9;
    CHECK_RC(ask(&o, NULL, &r, &err, NULL), GG_OK);
    CHECK_STR(str(r, "code"), "x = 3\n");
    cJSON_Delete(r);
    free(err);
    /* the key is nowhere in the database */
    char *paths[3] = { db, ggi_asprintf("%s-wal", db), NULL };
    for (int i = 0; paths[i]; i++) {
        char *text = slurp(paths[i]);
        if (text) {
            CHECK(!strstr(text, KEY));
            CHECK(!strstr(text, "9f8e7d6c"));
        }
        if (i == 0)
            CHECK_CONTAINS(text, "x = 1");
        free(text);
    }
    /* a journal that cannot be opened is an error at creation */
    setenv("GRYPHGEN_LLM_JOURNAL", "/nonexistent/dir/journal.db", 1);
    CHECK_RC(ask(&o, NULL, &r, &err, NULL), GG_ESTORE);
    CHECK_CONTAINS(err, "/nonexistent/dir/journal.db");
    free(err);
    unsetenv("GRYPHGEN_LLM_JOURNAL");
    char *rm = ggi_asprintf("rm -rf '%s'", dir);
    CHECK(system(rm) == 0);
    free(rm);
    free(paths[1]);
    free(db);
}

static void test_orchestrator_repair(void)
{
    gg_generator_options go = opts_for("repair:e2e");
    gg_generator_t *g = NULL;
    CHECK_RC(gg_generator_new(&g, &go), GG_OK);
    gg_orchestrator_options oo = GG_ORCHESTRATOR_OPTIONS_INIT;
    oo.workers = 1;
    oo.generator = g;
    oo.python = "/usr/bin/python3";
    gg_orchestrator_t *o = NULL;
    CHECK_RC(gg_orchestrator_new(&o, &oo), GG_OK);
    char *id = NULL, *res = NULL;
    if (o) {
        CHECK_RC(gg_orchestrator_submit(o, task_json, &id), GG_OK);
        if (id)
            CHECK_RC(gg_orchestrator_wait(o, id, 60000, &res), GG_OK);
    }
    cJSON *r = res ? cJSON_Parse(res) : NULL;
    CHECK_STR(str(r, "status"), "passed");
    CHECK(num(r, "passed_attempt") == 2);
    const cJSON *h = cJSON_GetObjectItem(r, "history");
    CHECK(cJSON_GetArraySize(h) == 2);
    CHECK_STR(str(cJSON_GetArrayItem(h, 0), "generator"), "openai");
    CHECK_CONTAINS(str(cJSON_GetArrayItem(h, 0), "code"), "return a - b");
    CHECK_CONTAINS(str(cJSON_GetArrayItem(h, 0), "reason"), "AssertionError");
    CHECK_CONTAINS(str(r, "code"), "return a + b");
    CHECK(res && !strstr(res, KEY));
    cJSON_Delete(r);
    gg_free(res);
    gg_free(id);
    gg_orchestrator_destroy(&o);
    gg_generator_destroy(&g);
}

/* Citations: the model is asked to cite the --- id --- headers it used; the "CITED:" lines
 * are taken out of the answer (never part of the code) and only ids of the request's context
 * count, each once, at most GGI_CITATIONS_MAX; hostile lists are capped. */
static void test_citations(void)
{
    const char *ctx = "[{\"id\": \"12\", \"text\": \"the add note\"}, {\"id\": \"40\", "
                      "\"text\": \"more on add\"}, {\"id\": \"0\", \"text\": \"zero\"}]";
    char *req = request(1, NULL, ctx);
    cJSON *r;
    char *err;
    gg_generator_options o = opts_for("echo:cite");
    CHECK_RC(ask(&o, req, &r, &err, NULL), GG_OK);
    cJSON *echo = echoed(r);
    CHECK_CONTAINS(message(echo, 1), "--- 12 ---");
    CHECK_CONTAINS(message(echo, 1), "CITED: ");
    cJSON_Delete(echo);
    cJSON_Delete(r);
    free(err);
    o = opts_for("cite:a");
    CHECK_RC(ask(&o, req, &r, &err, NULL), GG_OK);
    CHECK_STR(str(r, "code"), GOOD);
    char *cited = cJSON_PrintUnformatted(cJSON_GetObjectItem(r, "cited"));
    CHECK_STR(cited, "[\"12\",\"40\"]"); /* 999 is not in the context */
    free(cited);
    cJSON_Delete(r);
    free(err);
    o = opts_for("citeinline:a");
    CHECK_RC(ask(&o, req, &r, &err, NULL), GG_OK);
    CHECK_STR(str(r, "code"), GOOD); /* the comment line is gone from the code */
    cited = cJSON_PrintUnformatted(cJSON_GetObjectItem(r, "cited"));
    CHECK_STR(cited, "[\"40\"]");
    free(cited);
    cJSON_Delete(r);
    free(err);
    o = opts_for("citehostile:a");
    CHECK_RC(ask(&o, req, &r, &err, NULL), GG_OK);
    CHECK_STR(str(r, "code"), GOOD);
    /* The 100,000-id list names nothing of the context within its first words, the long id
     * is ignored, "4" then "0" on the next (not a citation) line: only the bracketed and
     * quoted ids of the later lines, once each. */
    cited = cJSON_PrintUnformatted(cJSON_GetObjectItem(r, "cited"));
    CHECK_STR(cited, "[\"40\",\"12\"]");
    free(cited);
    cJSON_Delete(r);
    free(err);
    /* Without context nothing is cited and the prompt asks for nothing. */
    o = opts_for("cite:b");
    CHECK_RC(ask(&o, NULL, &r, &err, NULL), GG_OK);
    CHECK(cJSON_GetObjectItem(r, "cited") == NULL);
    cJSON_Delete(r);
    free(err);
    free(req);
}

/* The citation reader itself: many ids on a line stop at the cap. */
static void test_citations_cap(void)
{
    ggi_buf ctx = GGI_BUF_INIT, reply = GGI_BUF_INIT;
    ggi_buf_puts(&ctx, "[");
    ggi_buf_puts(&reply, "x = 1\nCITED:");
    for (int i = 1; i <= 40; i++) {
        ggi_buf_printf(&ctx, "%s{\"id\": \"%d\"}", i > 1 ? "," : "", i);
        ggi_buf_printf(&reply, " %d,", i);
    }
    ggi_buf_puts(&ctx, "]");
    cJSON *c = cJSON_Parse(ctx.data), *cited = NULL;
    char *text = NULL;
    CHECK_RC(ggi_citations_take(reply.data, c, &text, &cited), 0);
    CHECK_STR(text, "x = 1\n");
    CHECK(cJSON_GetArraySize(cited) == GGI_CITATIONS_MAX);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetArrayItem(cited, 0)), "1");
    free(text);
    cJSON_Delete(cited);
    CHECK_RC(ggi_citations_take("CITED: 1", NULL, &text, &cited), 0);
    CHECK_STR(text, "");
    CHECK(cJSON_GetArraySize(cited) == 0); /* no context: nothing counts */
    free(text);
    cJSON_Delete(cited);
    cJSON_Delete(c);
    ggi_buf_free(&ctx);
    ggi_buf_free(&reply);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_openai FAKE_SERVER_SCRIPT\n");
        return 1;
    }
    clear_llm_env();
    if (fake_server_start(&srv, argv[1]) != 0) {
        fprintf(stderr, "cannot start the fake server %s\n", argv[1]);
        fake_server_stop(&srv);
        return 1;
    }
    snprintf(base_url, sizeof base_url, "http://127.0.0.1:%d/v1", srv.port);
    test_extract();
    test_ok();
    test_extraction_modes();
    test_request_sent();
    test_http_errors();
    test_retries();
    test_timeouts();
    test_bad_bodies();
    test_failover();
    test_secrets();
    test_config();
    test_templates();
    test_workspace_prompt();
    test_concurrent();
    test_journal();
    test_orchestrator_repair();
    test_citations();
    test_citations_cap();
    fake_server_stop(&srv);
    return test_exit();
}
