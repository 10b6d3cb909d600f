/*
 * fakeengine.h - a fake container engine for the tests of the "container" executor backend
 * (test_container_fake, and the grid's test_abort): a small HTTP server on a unix socket,
 * run by the test in its own threads, that speaks the few Docker Engine API calls the
 * executor makes (version, create, archive, start, wait, logs, inspect, kill, remove), fails
 * them on purpose as the scenario says (fake_engine_reset) and counts what was asked. No
 * real engine is needed. Failures are CHECKs of testutil.h.
 */
#ifndef GG_TEST_FAKEENGINE_H
#define GG_TEST_FAKEENGINE_H

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

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
    int forced_removes;    /* of the removes, those with force=1 (a running one is killed) */
    int open_conns;
} fake_engine;

typedef struct fe_conn_arg {
    fake_engine *fe;
    int fd;
} fe_conn_arg;

static inline void fe_send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static inline void fe_reply(int fd, int status, const char *ctype, const char *body,
                            size_t len)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n", status, ctype, len);
    fe_send_all(fd, head, (size_t)n);
    fe_send_all(fd, body, len);
}

static inline void fe_reply_json(int fd, int status, const char *body)
{
    fe_reply(fd, status, "application/json", body, strlen(body));
}

/* Holds the connection open, answering nothing, until the client goes, a kill was asked
 * (when until_kill) or the engine stops. */
static inline void fe_hang(fake_engine *fe, int fd, int until_kill)
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
static inline int fe_read_request(int fd, char *method, char *path, size_t cap)
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
static inline void fe_reply_logs(int fd)
{
    static const char out[] = "hi\n";
    char frame[8 + sizeof out - 1] = { 1, 0, 0, 0, 0, 0, 0, (char)(sizeof out - 1) };
    memcpy(frame + 8, out, sizeof out - 1);
    fe_reply(fd, 200, "application/vnd.docker.raw-stream", frame, sizeof frame);
}

static inline void *fe_serve_conn(void *arg)
{
    fe_conn_arg *ca = arg;
    fake_engine *fe = ca->fe;
    int fd = ca->fd;
    free(ca);
    char method[16], path[512];
    if (fe_read_request(fd, method, path, sizeof path) != 0)
        goto out;
    const char *p = strstr(path, "/containers/");
    pthread_mutex_lock(&fe->mu);
    enum create_mode create = fe->create;
    pthread_mutex_unlock(&fe->mu);
    if (strstr(path, "/version")) {
        fe_reply_json(fd, 200, "{\"Version\":\"fake\",\"Components\":[{\"Name\":\"Fake\"}]}");
    } else if (strcmp(method, "POST") == 0 && strstr(path, "/containers/create")) {
        pthread_mutex_lock(&fe->mu);
        fe->creates++;
        pthread_mutex_unlock(&fe->mu);
        if (create == CREATE_OK)
            fe_reply_json(fd, 201, "{\"Id\":\"" FAKE_ID "\",\"Warnings\":[]}");
        else if (create == CREATE_GARBAGE)
            fe_reply_json(fd, 201, "{\"Id\": [unterminated");
        else if (create == CREATE_500)
            fe_reply_json(fd, 500, "{\"message\":\"fake engine: no space left on device\"}");
        else if (create == CREATE_CUT) {
            static const char head[] = "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                                       "Content-Length: 200\r\nConnection: close\r\n\r\n"
                                       "{\"Id\":\"0123";
            fe_send_all(fd, head, sizeof head - 1);
        } else {
            fe_hang(fe, fd, 0);
        }
    } else if (p && strcmp(method, "PUT") == 0 && strstr(p, "/archive")) {
        fe_reply_json(fd, 200, "");
    } else if (p && strcmp(method, "POST") == 0 && strstr(p, "/start")) {
        pthread_mutex_lock(&fe->mu);
        int fails = fe->start_fails;
        pthread_mutex_unlock(&fe->mu);
        if (fails)
            fe_reply_json(fd, 500, "{\"message\":\"fake engine: cannot start\"}");
        else
            fe_reply(fd, 204, "text/plain", "", 0);
    } else if (p && strcmp(method, "POST") == 0 && strstr(p, "/wait")) {
        pthread_mutex_lock(&fe->mu);
        int first = fe->waits++ == 0;
        int hangs = fe->wait_hangs && first;
        pthread_mutex_unlock(&fe->mu);
        if (hangs)
            fe_hang(fe, fd, 1);
        else
            fe_reply_json(fd, 200, fe->wait_hangs ? "{\"StatusCode\":137}" : "{\"StatusCode\":0}");
    } else if (p && strcmp(method, "GET") == 0 && strstr(p, "/logs")) {
        if (strstr(p, "follow=1")) {
            pthread_mutex_lock(&fe->mu);
            int hangs = fe->wait_hangs;
            pthread_mutex_unlock(&fe->mu);
            if (hangs) {
                fe_hang(fe, fd, 0);
                goto out;
            }
        }
        fe_reply_logs(fd);
    } else if (p && strcmp(method, "GET") == 0 && strstr(p, "/json")) {
        fe_reply_json(fd, 200, "{\"State\":{\"OOMKilled\":false}}");
    } else if (p && strcmp(method, "POST") == 0 && strstr(p, "/kill")) {
        pthread_mutex_lock(&fe->mu);
        fe->kills++;
        pthread_mutex_unlock(&fe->mu);
        fe_reply(fd, 204, "text/plain", "", 0);
    } else if (p && strcmp(method, "DELETE") == 0) {
        pthread_mutex_lock(&fe->mu);
        int n = fe->removes++;
        fe->forced_removes += strstr(p, "force=1") != NULL;
        int fail = fe->remove_fails < 0 || n < fe->remove_fails;
        pthread_mutex_unlock(&fe->mu);
        if (fail)
            fe_reply_json(fd, 500, "{\"message\":\"fake engine: removal already in progress\"}");
        else
            fe_reply(fd, 204, "text/plain", "", 0);
    } else {
        fe_reply_json(fd, 404, "{\"message\":\"fake engine: no such call\"}");
    }
out:
    close(fd);
    pthread_mutex_lock(&fe->mu);
    fe->open_conns--;
    pthread_mutex_unlock(&fe->mu);
    return NULL;
}

static inline void *fe_accept_loop(void *arg)
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
        fe_conn_arg *ca = malloc(sizeof *ca);
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
        if (pthread_create(&t, NULL, fe_serve_conn, ca) != 0) {
            fe_serve_conn(ca);
            continue;
        }
        pthread_detach(t);
    }
}

static inline int fake_engine_start(fake_engine *fe, const char *sock)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (strlen(sock) >= sizeof a.sun_path)
        return -1;
    memcpy(a.sun_path, sock, strlen(sock) + 1);
    fe->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fe->fd < 0 || bind(fe->fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(fe->fd, 64) != 0)
        return -1;
    return pthread_create(&fe->thread, NULL, fe_accept_loop, fe) == 0 ? 0 : -1;
}

/* For test_wait_for: whether a counter of the engine (read under its lock) reached want. */
typedef struct fake_engine_wait {
    fake_engine *fe;
    const int *counter; /* one of fe's */
    int want;
} fake_engine_wait;

static inline int fake_engine_reached(void *arg)
{
    fake_engine_wait *w = arg;
    pthread_mutex_lock(&w->fe->mu);
    int n = *w->counter;
    pthread_mutex_unlock(&w->fe->mu);
    return n >= w->want;
}

static inline int fe_conns_closed(void *arg)
{
    fake_engine *fe = arg;
    pthread_mutex_lock(&fe->mu);
    int n = fe->open_conns;
    pthread_mutex_unlock(&fe->mu);
    return n == 0;
}

static inline void fake_engine_stop(fake_engine *fe)
{
    pthread_mutex_lock(&fe->mu);
    fe->stop = 1;
    pthread_mutex_unlock(&fe->mu);
    pthread_join(fe->thread, NULL);
    CHECK(test_wait_for(fe_conns_closed, fe)); /* every connection's thread has ended */
    close(fe->fd);
}

static inline void fake_engine_reset(fake_engine *fe, enum create_mode create, int remove_fails,
                       int wait_hangs)
{
    pthread_mutex_lock(&fe->mu);
    fe->create = create;
    fe->remove_fails = remove_fails;
    fe->wait_hangs = wait_hangs;
    fe->start_fails = 0;
    fe->removes = fe->kills = fe->creates = fe->waits = fe->forced_removes = 0;
    pthread_mutex_unlock(&fe->mu);
}

#endif
