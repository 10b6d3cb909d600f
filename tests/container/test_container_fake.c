/*
 * test_container_fake.c - the "container" executor against a fake engine: a small HTTP
 * server on a unix socket in a temporary directory, run by this test in its own threads,
 * that speaks the few Docker Engine API calls the executor makes (version, create, archive,
 * start, wait, logs, inspect, kill, remove) and fails them on purpose. Checked: a removal
 * refused a few times is asked again until it succeeds; one refused every time ends the run
 * with GG_EEXEC naming the container, the number of tries and the engine's last answer, also
 * when the job had already failed for another reason; garbage JSON, a 500, a reply cut in the
 * middle of its body and a wait that never answers (the job's timeout kills the container).
 * No real engine is needed.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gryphgen.h>
#include <cJSON.h>

#include "testutil.h"

#define FAKE_ID "0123456789abcdef0123456789abcdef"
#define REMOVE_TRIES 8 /* the executor's limit (container_internal.h) */

enum create_mode { CREATE_OK, CREATE_GARBAGE, CREATE_500, CREATE_CUT, CREATE_HANG };

typedef struct fake_engine {
    pthread_mutex_t mu;
    int fd;                /* listening socket */
    int stop;
    pthread_t thread;
    /* the scenario */
    enum create_mode create;
    int remove_fails;      /* DELETEs answered 500 before one succeeds (-1: always) */
    int wait_hangs;        /* the first wait never answers (until a kill) */
    int start_fails;       /* start answers 500 */
    /* what was asked */
    int removes, kills, creates, waits;
    int open_conns;
} fake_engine;

typedef struct conn_arg {
    fake_engine *fe;
    int fd;
} conn_arg;

static void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void reply(int fd, int status, const char *ctype, const char *body, size_t len)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n", status, ctype, len);
    send_all(fd, head, (size_t)n);
    send_all(fd, body, len);
}

static void reply_json(int fd, int status, const char *body)
{
    reply(fd, status, "application/json", body, strlen(body));
}

/* Holds the connection open, answering nothing, until the client goes, a kill was asked
 * (when until_kill) or the engine stops. */
static void hang(fake_engine *fe, int fd, int until_kill)
{
    for (;;) {
        pthread_mutex_lock(&fe->mu);
        int done = fe->stop || (until_kill && fe->kills > 0);
        pthread_mutex_unlock(&fe->mu);
        if (done)
            return;
        struct pollfd p = { fd, POLLIN | POLLRDHUP, 0 };
        if (poll(&p, 1, 20) > 0 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR)))
            return;
    }
}

/* Reads one request's head and body (Content-Length); the method and path are copied out. */
static int read_request(int fd, char *method, char *path, size_t cap)
{
    char buf[65536];
    size_t len = 0;
    char *end = NULL;
    while (!end && len < sizeof buf - 1) {
        ssize_t r = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (r <= 0)
            return -1;
        len += (size_t)r;
        buf[len] = 0;
        end = strstr(buf, "\r\n\r\n");
    }
    if (!end)
        return -1;
    char fmt[32];
    snprintf(fmt, sizeof fmt, "%%15s %%%zus", cap - 1);
    if (sscanf(buf, fmt, method, path) != 2)
        return -1;
    size_t body = 0;
    const char *cl = strcasestr(buf, "\r\nContent-Length:");
    if (cl && cl < end)
        body = strtoul(cl + 17, NULL, 10);
    size_t have = len - (size_t)(end + 4 - buf);
    while (have < body) { /* the body is read and dropped */
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r <= 0)
            return -1;
        have += (size_t)r;
    }
    return 0;
}

/* One multiplexed stdout frame. */
static void reply_logs(int fd)
{
    static const char out[] = "hi\n";
    char frame[8 + sizeof out - 1] = { 1, 0, 0, 0, 0, 0, 0, (char)(sizeof out - 1) };
    memcpy(frame + 8, out, sizeof out - 1);
    reply(fd, 200, "application/vnd.docker.raw-stream", frame, sizeof frame);
}

static void *serve_conn(void *arg)
{
    conn_arg *ca = arg;
    fake_engine *fe = ca->fe;
    int fd = ca->fd;
    free(ca);
    char method[16], path[512];
    if (read_request(fd, method, path, sizeof path) != 0)
        goto out;
    const char *p = strstr(path, "/containers/");
    pthread_mutex_lock(&fe->mu);
    enum create_mode create = fe->create;
    pthread_mutex_unlock(&fe->mu);
    if (strstr(path, "/version")) {
        reply_json(fd, 200, "{\"Version\":\"fake\",\"Components\":[{\"Name\":\"Fake\"}]}");
    } else if (strcmp(method, "POST") == 0 && strstr(path, "/containers/create")) {
        pthread_mutex_lock(&fe->mu);
        fe->creates++;
        pthread_mutex_unlock(&fe->mu);
        if (create == CREATE_OK)
            reply_json(fd, 201, "{\"Id\":\"" FAKE_ID "\",\"Warnings\":[]}");
        else if (create == CREATE_GARBAGE)
            reply_json(fd, 201, "{\"Id\": [unterminated");
        else if (create == CREATE_500)
            reply_json(fd, 500, "{\"message\":\"fake engine: no space left on device\"}");
        else if (create == CREATE_CUT) {
            static const char head[] = "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                                       "Content-Length: 200\r\nConnection: close\r\n\r\n"
                                       "{\"Id\":\"0123";
            send_all(fd, head, sizeof head - 1);
        } else {
            hang(fe, fd, 0);
        }
    } else if (p && strcmp(method, "PUT") == 0 && strstr(p, "/archive")) {
        reply_json(fd, 200, "");
    } else if (p && strcmp(method, "POST") == 0 && strstr(p, "/start")) {
        pthread_mutex_lock(&fe->mu);
        int fails = fe->start_fails;
        pthread_mutex_unlock(&fe->mu);
        if (fails)
            reply_json(fd, 500, "{\"message\":\"fake engine: cannot start\"}");
        else
            reply(fd, 204, "text/plain", "", 0);
    } else if (p && strcmp(method, "POST") == 0 && strstr(p, "/wait")) {
        pthread_mutex_lock(&fe->mu);
        int first = fe->waits++ == 0;
        int hangs = fe->wait_hangs && first;
        pthread_mutex_unlock(&fe->mu);
        if (hangs)
            hang(fe, fd, 1);
        else
            reply_json(fd, 200, fe->wait_hangs ? "{\"StatusCode\":137}" : "{\"StatusCode\":0}");
    } else if (p && strcmp(method, "GET") == 0 && strstr(p, "/logs")) {
        if (strstr(p, "follow=1")) {
            pthread_mutex_lock(&fe->mu);
            int hangs = fe->wait_hangs;
            pthread_mutex_unlock(&fe->mu);
            if (hangs) {
                hang(fe, fd, 0);
                goto out;
            }
        }
        reply_logs(fd);
    } else if (p && strcmp(method, "GET") == 0 && strstr(p, "/json")) {
        reply_json(fd, 200, "{\"State\":{\"OOMKilled\":false}}");
    } else if (p && strcmp(method, "POST") == 0 && strstr(p, "/kill")) {
        pthread_mutex_lock(&fe->mu);
        fe->kills++;
        pthread_mutex_unlock(&fe->mu);
        reply(fd, 204, "text/plain", "", 0);
    } else if (p && strcmp(method, "DELETE") == 0) {
        pthread_mutex_lock(&fe->mu);
        int n = fe->removes++;
        int fail = fe->remove_fails < 0 || n < fe->remove_fails;
        pthread_mutex_unlock(&fe->mu);
        if (fail)
            reply_json(fd, 500, "{\"message\":\"fake engine: removal already in progress\"}");
        else
            reply(fd, 204, "text/plain", "", 0);
    } else {
        reply_json(fd, 404, "{\"message\":\"fake engine: no such call\"}");
    }
out:
    close(fd);
    pthread_mutex_lock(&fe->mu);
    fe->open_conns--;
    pthread_mutex_unlock(&fe->mu);
    return NULL;
}

static void *accept_loop(void *arg)
{
    fake_engine *fe = arg;
    for (;;) {
        struct pollfd p = { fe->fd, POLLIN, 0 };
        int n = poll(&p, 1, 50);
        pthread_mutex_lock(&fe->mu);
        int stop = fe->stop;
        pthread_mutex_unlock(&fe->mu);
        if (stop)
            return NULL;
        if (n <= 0)
            continue;
        int c = accept(fe->fd, NULL, NULL);
        if (c < 0)
            continue;
        conn_arg *ca = malloc(sizeof *ca);
        pthread_t t;
        if (!ca) {
            close(c);
            continue;
        }
        ca->fe = fe;
        ca->fd = c;
        pthread_mutex_lock(&fe->mu);
        fe->open_conns++;
        pthread_mutex_unlock(&fe->mu);
        if (pthread_create(&t, NULL, serve_conn, ca) != 0) {
            serve_conn(ca);
            continue;
        }
        pthread_detach(t);
    }
}

static int fake_start(fake_engine *fe, const char *sock)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (strlen(sock) >= sizeof a.sun_path)
        return -1;
    memcpy(a.sun_path, sock, strlen(sock) + 1);
    fe->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fe->fd < 0 || bind(fe->fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(fe->fd, 64) != 0)
        return -1;
    return pthread_create(&fe->thread, NULL, accept_loop, fe) == 0 ? 0 : -1;
}

static int conns_closed(void *arg)
{
    fake_engine *fe = arg;
    pthread_mutex_lock(&fe->mu);
    int n = fe->open_conns;
    pthread_mutex_unlock(&fe->mu);
    return n == 0;
}

static void fake_stop(fake_engine *fe)
{
    pthread_mutex_lock(&fe->mu);
    fe->stop = 1;
    pthread_mutex_unlock(&fe->mu);
    pthread_join(fe->thread, NULL);
    CHECK(test_wait_for(conns_closed, fe)); /* every connection's thread has ended */
    close(fe->fd);
}

static void fake_reset(fake_engine *fe, enum create_mode create, int remove_fails,
                       int wait_hangs)
{
    pthread_mutex_lock(&fe->mu);
    fe->create = create;
    fe->remove_fails = remove_fails;
    fe->wait_hangs = wait_hangs;
    fe->start_fails = 0;
    fe->removes = fe->kills = fe->creates = fe->waits = 0;
    pthread_mutex_unlock(&fe->mu);
}

#define REQ(timeout)                                                                         \
    "{\"language\":\"python\",\"argv\":[\"python3\",\"main.py\"],"                             \
    "\"files\":[{\"path\":\"main.py\",\"content\":\"print('hi')\\n\"}],"                       \
    "\"limits\":{\"timeout_s\":" timeout "}}"

static int run(gg_executor_t *ex, const char *req, cJSON **res)
{
    char *out = NULL;
    int rc = gg_executor_run(ex, req, &out);
    *res = out ? cJSON_Parse(out) : NULL;
    CHECK(rc == GG_OK ? *res != NULL : out == NULL);
    gg_free(out);
    return rc;
}

static void test_fake(const char *sock)
{
    fake_engine fe = { .mu = PTHREAD_MUTEX_INITIALIZER };
    CHECK(fake_start(&fe, sock) == 0);
    gg_executor_options o = GG_EXECUTOR_OPTIONS_INIT;
    o.backend = "container";
    o.container_socket = sock;
    o.container_images = "python=fake:latest";
    gg_executor_t *ex = NULL;
    CHECK_RC(gg_executor_new(&ex, &o), GG_OK);
    if (!ex) {
        fake_stop(&fe);
        return;
    }
    cJSON *res = NULL;

    /* The happy path through the fake: output decoded, one removal. */
    fake_reset(&fe, CREATE_OK, 0, 0);
    CHECK_RC(run(ex, REQ("10"), &res), GG_OK);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(res, "stdout")), "hi\n");
    CHECK(fe.removes == 1);
    cJSON_Delete(res);

    /* Removal refused three times, then done: the run succeeds after four asks. */
    fake_reset(&fe, CREATE_OK, 3, 0);
    CHECK_RC(run(ex, REQ("10"), &res), GG_OK);
    CHECK(fe.removes == 4);
    cJSON_Delete(res);

    /* Refused every time: the run fails after the limit, naming what it tried. */
    fake_reset(&fe, CREATE_OK, -1, 0);
    CHECK_RC(run(ex, REQ("10"), &res), GG_EEXEC);
    CHECK(res == NULL);
    CHECK(fe.removes == REMOVE_TRIES);
    CHECK_CONTAINS(gg_error_last(), "could not remove container 0123456789ab");
    CHECK_CONTAINS(gg_error_last(), "after 8 tries");
    CHECK_CONTAINS(gg_error_last(), "HTTP 500");
    CHECK_CONTAINS(gg_error_last(), "removal already in progress");

    /* Garbage JSON from create: a clear error, and no removal of an id never given. */
    fake_reset(&fe, CREATE_GARBAGE, 0, 0);
    CHECK_RC(run(ex, REQ("10"), &res), GG_EEXEC);
    CHECK_CONTAINS(gg_error_last(), "create gave no valid Id");
    CHECK(fe.creates == 1 && fe.removes == 0);

    /* A 500: the engine's own message comes through. */
    fake_reset(&fe, CREATE_500, 0, 0);
    CHECK_RC(run(ex, REQ("10"), &res), GG_EEXEC);
    CHECK_CONTAINS(gg_error_last(), "create failed (HTTP 500)");
    CHECK_CONTAINS(gg_error_last(), "no space left on device");

    /* The reply cut in the middle of its body. */
    fake_reset(&fe, CREATE_CUT, 0, 0);
    CHECK_RC(run(ex, REQ("10"), &res), GG_EEXEC);
    CHECK_CONTAINS(gg_error_last(), "create failed");
    CHECK_CONTAINS(gg_error_last(), sock);

    /* A wait that never answers: the job's timeout kills the container, which is removed. */
    fake_reset(&fe, CREATE_OK, 0, 1);
    CHECK_RC(run(ex, REQ("1"), &res), GG_OK);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(res, "timed_out")));
    CHECK(fe.kills >= 1 && fe.removes == 1);
    cJSON_Delete(res);

    /* A job that failed (start refused) whose container cannot be removed either: the
     * job's own error stands and the leak is named beside it. */
    fake_reset(&fe, CREATE_OK, -1, 0);
    pthread_mutex_lock(&fe.mu);
    fe.start_fails = 1;
    pthread_mutex_unlock(&fe.mu);
    CHECK_RC(run(ex, REQ("10"), &res), GG_EEXEC);
    CHECK_CONTAINS(gg_error_last(), "start failed (HTTP 500)");
    CHECK_CONTAINS(gg_error_last(), "could not remove container 0123456789ab");
    CHECK(fe.removes == REMOVE_TRIES);

    fake_reset(&fe, CREATE_HANG, 0, 0);
    /* A create that never answers ends by the executor's own request timeout. */
    CHECK_RC(run(ex, REQ("10"), &res), GG_EEXEC);
    CHECK_CONTAINS(gg_error_last(), "create failed");
    CHECK_CONTAINS(gg_error_last(), "imeout");

    gg_executor_destroy(&ex);
    fake_stop(&fe);
}

int main(void)
{
    char dir[] = "/tmp/gg_cfake_XXXXXX";
    CHECK(test_make_dir(dir));
    if (!dir[0] || strstr(dir, "XXXXXX"))
        return test_exit();
    char sock[128];
    snprintf(sock, sizeof sock, "%s/engine.sock", dir);
    test_fake(sock);
    unlink(sock);
    test_remove_dir(dir);
    return test_exit();
}
