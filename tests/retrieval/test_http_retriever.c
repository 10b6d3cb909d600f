/*
 * test_http_retriever.c - the http retriever against the real /v1/search endpoint (the
 * gryphgen command's search-serve on an ephemeral port, over an fts5 index this test fills),
 * and against broken_server.py for the error paths: slow, 500, retries on 503 and 429,
 * malformed JSON, a huge body, wrong shapes, a closed port. The bearer token is sent but never
 * appears in an error. Servers are child processes stopped by their PID.
 * Arguments: the gryphgen command, broken_server.py.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/ggi.h"
#include "gryphgen.h"
#include "retrieval/http_backend.h"
#include "testutil.h"
#include "common/testnet.h"

#define TOKEN "sekrit-token-0123456789"

typedef struct child {
    pid_t pid;
    int port;
} child;

/* Starts argv; reads the port from the first line of its output (after prefix). */
static int child_start(child *c, char *const argv[], const char *fmt)
{
    c->pid = -1;
    c->port = 0;
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    c->pid = pid;
    FILE *f = fdopen(fds[0], "r");
    char line[256];
    int ok = f && fgets(line, sizeof line, f) && sscanf(line, fmt, &c->port) == 1;
    if (f)
        fclose(f);
    return ok && c->port > 0 ? 0 : -1;
}

static void child_stop(child *c)
{
    if (c->pid > 0) {
        kill(c->pid, SIGTERM);
        waitpid(c->pid, NULL, 0);
    }
    c->pid = -1;
}

static gg_retriever_options http_opts(const char *url)
{
    gg_retriever_options o = GG_RETRIEVER_OPTIONS_INIT;
    o.backend = "http";
    o.url = url;
    o.timeout_s = 60; /* a guard against a hang; the test of the timeout sets its own */
    o.max_retries = 0;
    return o;
}

static int search(gg_retriever_t *r, const char *q, char **out)
{
    *out = NULL;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "text", q);
    cJSON_AddNumberToObject(j, "k", 3);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    int rc = gg_retriever_search(r, s, out);
    free(s);
    return rc;
}

static void test_real_endpoint(const char *gryphgen, const char *dir)
{
    char db[256];
    snprintf(db, sizeof db, "%s/index.db", dir);
    gg_retriever_options fo = GG_RETRIEVER_OPTIONS_INIT;
    fo.backend = "fts5";
    fo.db_path = db;
    fo.exploration = 0;
    gg_retriever_t *f = NULL;
    CHECK_RC(gg_retriever_new(&f, &fo), 0);
    CHECK_RC(gg_retriever_add(f, "{\"source\": \"/d/a.md\", \"text\": \"# Merge\\nmerge two "
                                 "sorted lists & keep order\\n# Other\\nunrelated cooking "
                                 "notes\"}",
                              NULL),
             0);
    CHECK_RC(gg_retriever_add(f, "{\"source\": \"/d/b.py\", \"text\": \"def merge(a, b):\\n  "
                                 "  return sorted(a + b)\\n\"}",
                              NULL),
             0);
    char *direct = NULL;
    CHECK_RC(search(f, "merge sorted lists & order", &direct), 0);
    gg_retriever_destroy(&f);

    char *argv[] = { (char *)gryphgen, "search-serve", "--db", db, "--listen", "127.0.0.1:0",
                     NULL };
    child srv;
    if (child_start(&srv, argv, "listening on http://127.0.0.1:%d") != 0) {
        CHECK(!"gryphgen search-serve started and told its port");
        child_stop(&srv);
        gg_free(direct);
        return;
    }
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/search?q={query}&k={k}", srv.port);
    gg_retriever_options o = http_opts(url);
    gg_retriever_t *r = NULL;
    CHECK_RC(gg_retriever_new(&r, &o), 0);
    CHECK_STR(gg_retriever_name(r), "http");
    char *via = NULL;
    CHECK_RC(search(r, "merge sorted lists & order", &via), 0);
    /* Same ids in the same order as the index answers directly. */
    cJSON *a = cJSON_Parse(direct), *b = cJSON_Parse(via);
    const cJSON *ra = cJSON_GetObjectItem(a, "results"), *rb = cJSON_GetObjectItem(b, "results");
    CHECK(cJSON_GetArraySize(ra) == 2 && cJSON_GetArraySize(rb) == 2);
    for (int i = 0; i < cJSON_GetArraySize(ra); i++) {
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(rb, i), "id")),
                  cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(ra, i), "id")));
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(rb, i), "text")),
                  cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(ra, i), "text")));
    }
    CHECK_CONTAINS(via, "\"source\":\"/d/");
    cJSON_Delete(a);
    cJSON_Delete(b);
    gg_free(via);
    gg_free(direct);
    gg_retriever_destroy(&r);
    /* The endpoint's own errors: no q is 400, another path 404. */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/search?k={k}", srv.port);
    o = http_opts(url);
    CHECK_RC(gg_retriever_new(&r, &o), 0);
    CHECK_RC(search(r, "x", &via), GG_EIO);
    CHECK_CONTAINS(gg_error_last(), "HTTP 400");
    CHECK_CONTAINS(gg_error_last(), "missing query parameter q");
    gg_retriever_destroy(&r);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/nothing?q={query}", srv.port);
    o = http_opts(url);
    CHECK_RC(gg_retriever_new(&r, &o), 0);
    CHECK_RC(search(r, "x", &via), GG_EIO);
    CHECK_CONTAINS(gg_error_last(), "HTTP 404");
    gg_retriever_destroy(&r);
    child_stop(&srv);
}

/* A retriever on broken_server.py's path with the token from the environment. */
static gg_retriever_t *broken(int port, const char *path, int retries, double timeout)
{
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s?q={query}", port, path);
    gg_retriever_options o = http_opts(url);
    o.token_env = "GG_TEST_RETRIEVER_TOKEN";
    o.max_retries = retries;
    o.timeout_s = timeout;
    o.max_response = 1 << 20;
    gg_retriever_t *r = NULL;
    CHECK_RC(gg_retriever_new(&r, &o), 0);
    return r;
}

/* How many requests broken_server.py got on path so far; -1 when it cannot tell. */
static int server_hits(int port, const char *path)
{
    gg_retriever_t *r = broken(port, "/hits", 0, 60);
    char *out = NULL;
    int n = -1;
    if (search(r, path, &out) == 0) {
        cJSON *res = cJSON_Parse(out);
        const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(
            cJSON_GetArrayItem(cJSON_GetObjectItem(res, "results"), 0), "text"));
        n = t ? atoi(t) : -1;
        cJSON_Delete(res);
    }
    gg_free(out);
    gg_retriever_destroy(&r);
    return n;
}

static void no_token_in_error(void)
{
    CHECK(strstr(gg_error_last(), TOKEN) == NULL);
    CHECK(strstr(gg_error_last(), "0123456789") == NULL);
}

static void test_broken(const char *script)
{
    char *argv[] = { "/usr/bin/python3", (char *)script, NULL };
    child srv;
    if (child_start(&srv, argv, "PORT %d") != 0) {
        CHECK(!"broken_server.py started");
        child_stop(&srv);
        return;
    }
    int port = srv.port;
    setenv("GG_TEST_RETRIEVER_TOKEN", TOKEN, 1);
    char *out = NULL;

    /* Custom pointers, a numeric id. */
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/ok?q={query}", port);
    gg_retriever_options o = http_opts(url);
    o.results_pointer = "/data/hits";
    o.id_pointer = "/doc/key";
    o.text_pointer = "/doc/body";
    o.score_pointer = "/relevance";
    gg_retriever_t *r = NULL;
    CHECK_RC(gg_retriever_new(&r, &o), 0);
    CHECK_RC(search(r, "anything", &out), 0);
    CHECK_STR(out, "{\"results\":[{\"id\":\"a1\",\"text\":\"first text\",\"score\":0.9},"
                   "{\"id\":\"7\",\"text\":\"second text\",\"score\":0.5}]}");
    gg_free(out);
    gg_retriever_destroy(&r);

    /* The token is sent. */
    r = broken(port, "/echo-auth", 0, 60);
    CHECK_RC(search(r, "x", &out), 0);
    CHECK_CONTAINS(out, "Bearer " TOKEN);
    gg_free(out);
    gg_retriever_destroy(&r);

    /* 500 that echoes the token: an error without it. */
    r = broken(port, "/500", 1, 60);
    CHECK_RC(search(r, "x", &out), GG_EIO);
    CHECK_CONTAINS(gg_error_last(), "HTTP 500");
    CHECK_CONTAINS(gg_error_last(), "internal trouble");
    no_token_in_error();
    gg_retriever_destroy(&r);

    /* Retries: two 503s then success with 2 retries; failure without retries. */
    r = broken(port, "/flaky/a", 2, 60);
    CHECK_RC(search(r, "x", &out), 0);
    CHECK_CONTAINS(out, "first text");
    gg_free(out);
    gg_retriever_destroy(&r);
    r = broken(port, "/flaky/b", 0, 60);
    CHECK_RC(search(r, "x", &out), GG_EIO);
    CHECK_CONTAINS(gg_error_last(), "HTTP 503");
    gg_retriever_destroy(&r);
    r = broken(port, "/429/a", 1, 60);
    CHECK_RC(search(r, "x", &out), 0);
    gg_free(out);
    gg_retriever_destroy(&r);

    /* Slow (the server answers after 3 s): a timeout, and no retry of it although retries
     * are allowed. */
    r = broken(port, "/slow", 3, 0.5);
    CHECK_RC(search(r, "x", &out), GG_ETIMEDOUT);
    CHECK_CONTAINS(gg_error_last(), "no reply within 0.5 s");
    gg_retriever_destroy(&r);
    CHECK(server_hits(port, "/slow") == 1);

    r = broken(port, "/malformed", 0, 60);
    CHECK_RC(search(r, "x", &out), GG_EIO);
    CHECK_CONTAINS(gg_error_last(), "is not JSON");
    gg_retriever_destroy(&r);
    r = broken(port, "/huge", 0, 60);
    CHECK_RC(search(r, "x", &out), GG_ETOOBIG);
    CHECK_CONTAINS(gg_error_last(), "larger than 1048576 bytes");
    gg_retriever_destroy(&r);
    r = broken(port, "/badshape", 0, 60);
    CHECK_RC(search(r, "x", &out), GG_EIO);
    CHECK_CONTAINS(gg_error_last(), "no array at results_pointer '/results'");
    gg_retriever_destroy(&r);
    /* cJSON alone would end the text at the NUL, and pass bytes that are not UTF-8 on */
    r = broken(port, "/nul", 0, 60);
    CHECK_RC(search(r, "x", &out), GG_EIO);
    CHECK_CONTAINS(gg_error_last(), "field 'results[0].text' holds a NUL");
    gg_retriever_destroy(&r);
    r = broken(port, "/badutf8", 0, 60);
    CHECK_RC(search(r, "x", &out), GG_EIO);
    CHECK_CONTAINS(gg_error_last(), "field 'results[0].text' is not valid UTF-8");
    gg_retriever_destroy(&r);
    r = broken(port, "/noid", 0, 60);
    CHECK_RC(search(r, "x", &out), GG_EIO);
    CHECK_CONTAINS(gg_error_last(), "none of the 1 results");
    gg_retriever_destroy(&r);

    /* POST with the default body: the query arrives intact through JSON escaping. */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/post", port);
    o = http_opts(url);
    o.method = "POST";
    CHECK_RC(gg_retriever_new(&r, &o), 0);
    const char *tricky = "a \"quoted\" \\ query\nwith {k} & ünïcode";
    CHECK_RC(search(r, tricky, &out), 0);
    cJSON *res = cJSON_Parse(out);
    const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItem(res, "results"), 0);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(first, "text")), tricky);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(first, "score")) == 3);
    cJSON_Delete(res);
    gg_free(out);
    gg_retriever_destroy(&r);

    /* Feedback is POSTed to the feedback URL as it is. */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/feedback-log?q={query}", port);
    char fb_url[256];
    snprintf(fb_url, sizeof fb_url, "http://127.0.0.1:%d/feedback", port);
    o = http_opts(url);
    o.feedback_url = fb_url;
    CHECK_RC(gg_retriever_new(&r, &o), 0);
    const char *fb = "{\"task_id\":\"t1\",\"passed\":true,\"ids\":[\"a1\"]}";
    CHECK_RC(gg_retriever_feedback(r, fb), 0);
    CHECK_RC(search(r, "x", &out), 0);
    res = cJSON_Parse(out);
    first = cJSON_GetArrayItem(cJSON_GetObjectItem(res, "results"), 0);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(first, "text")), fb);
    cJSON_Delete(res);
    gg_free(out);
    CHECK_RC(gg_retriever_feedback(r, "[1]"), GG_EINVAL);
    CHECK_RC(gg_retriever_add(r, "{\"source\": \"a\", \"text\": \"b\"}", NULL), GG_EUNSUPPORTED);
    gg_retriever_destroy(&r);
    /* A feedback URL that fails: a clear error, without the token. */
    snprintf(fb_url, sizeof fb_url, "http://127.0.0.1:%d/500", port);
    o = http_opts(url);
    o.feedback_url = fb_url;
    o.max_retries = 0;
    o.token_env = "GG_TEST_RETRIEVER_TOKEN";
    CHECK_RC(gg_retriever_new(&r, &o), 0);
    CHECK_RC(gg_retriever_feedback(r, fb), GG_EIO);
    CHECK_CONTAINS(gg_error_last(), "500");
    CHECK_CONTAINS(gg_error_last(), "feedback");
    no_token_in_error();
    gg_retriever_destroy(&r);
    /* Without a feedback URL, feedback is accepted and goes nowhere. */
    o = http_opts(url);
    CHECK_RC(gg_retriever_new(&r, &o), 0);
    CHECK_RC(gg_retriever_feedback(r, fb), 0);
    gg_retriever_destroy(&r);
    child_stop(&srv);

    /* Nothing listens: a clear error after the retries, still without the token. */
    int closed = test_free_port(); /* reserved: no other test listens there meanwhile */
    CHECK(closed > 0);
    r = broken(closed, "/ok", 1, 2);
    CHECK_RC(search(r, "x", &out), GG_EIO);
    CHECK_CONTAINS(gg_error_last(), "failed");
    CHECK_CONTAINS(gg_error_last(), "(after retries)");
    no_token_in_error();
    gg_retriever_destroy(&r);
}

static void test_config(void)
{
    gg_retriever_t *r = NULL;
    gg_retriever_options o = http_opts("ftp://127.0.0.1/x");
    CHECK_RC(gg_retriever_new(&r, &o), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "http://");
    o = http_opts(NULL);
    CHECK_RC(gg_retriever_new(&r, &o), GG_EINVAL);
    o = http_opts("http://127.0.0.1/x");
    o.method = "PUT";
    CHECK_RC(gg_retriever_new(&r, &o), GG_EINVAL);
    o = http_opts("http://127.0.0.1/x");
    o.text_pointer = "text";
    CHECK_RC(gg_retriever_new(&r, &o), GG_EINVAL);
    o = http_opts("http://127.0.0.1/x");
    o.headers = "X-Good: 1\nno colon here";
    CHECK_RC(gg_retriever_new(&r, &o), GG_EINVAL);
    o = http_opts("http://127.0.0.1/x");
    o.token_env = "GG_TEST_UNSET_TOKEN_VARIABLE";
    unsetenv("GG_TEST_UNSET_TOKEN_VARIABLE");
    CHECK_RC(gg_retriever_new(&r, &o), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "not set");
    o.token_file = "/nonexistent/token";
    CHECK_RC(gg_retriever_new(&r, &o), GG_ENOTFOUND);
    CHECK(r == NULL);
    /* RFC 6901 pointers, escapes included. */
    cJSON *doc = cJSON_Parse("{\"a/b\": {\"m~n\": [10, {\"x\": 5}]}, \"\": 1}");
    CHECK(ggi_json_pointer(doc, "") == doc);
    CHECK(cJSON_GetNumberValue(ggi_json_pointer(doc, "/a~1b/m~0n/1/x")) == 5);
    CHECK(cJSON_GetNumberValue(ggi_json_pointer(doc, "/a~1b/m~0n/0")) == 10);
    CHECK(cJSON_GetNumberValue(ggi_json_pointer(doc, "/")) == 1);
    CHECK(ggi_json_pointer(doc, "/a~1b/m~0n/01") == NULL);
    CHECK(ggi_json_pointer(doc, "/a~1b/m~0n/2") == NULL);
    CHECK(ggi_json_pointer(doc, "/a~2b") == NULL);
    CHECK(ggi_json_pointer(doc, "a") == NULL);
    cJSON_Delete(doc);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: test_http_retriever GRYPHGEN BROKEN_SERVER_PY\n");
        return 1;
    }
    if (access("/usr/bin/python3", X_OK) != 0) {
        fprintf(stderr, "skipped: /usr/bin/python3 is needed for the broken server\n");
        return 77;
    }
    signal(SIGPIPE, SIG_IGN);
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
    char dir[] = "/tmp/gg-http-ret-XXXXXX";
    if (!test_make_dir(dir))
        return 1;
    test_config();
    test_real_endpoint(argv[1], dir);
    test_broken(argv[2]);
    test_remove_dir(dir);
    return test_exit();
}
