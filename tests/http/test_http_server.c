/*
 * test_http_server.c - the HTTP endpoint module (lib/http) under attack and its access rule.
 * Slow clients: 1,000 connections from 20 loopback addresses (127.0.0.2 ... 127.0.0.21, as
 * distinct clients) that trickle header lines and never finish a request, while a client at
 * another address asks for a page during the attack and after it; and a single trickling
 * connection that the request deadline closes although it is never idle. Access: a server on
 * an address that is not loopback refuses to start without a token; with a token, requests
 * without it or with a wrong one get 401 and the right one gets 200.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "gryphgen.h"
#include "http/http_server.h"
#include "testutil.h"

#define ATTACK_ADDRESSES 20
#define ATTACK_PER_ADDRESS 50
#define HANG_S 60 /* a bound against hangs only */

static void pong(void *user, const ggi_http_request *req, ggi_http_response *resp)
{
    (void)user;
    (void)req;
    resp->body = strdup("{\"pong\":true}");
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A TCP connection from source address src (127.0.0.x) to 127.0.0.1:port, or -1. */
static int connect_from(const char *src, unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    if (inet_pton(AF_INET, src, &a.sin_addr) != 1 ||
        bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    a.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    struct timeval tv = { HANG_S, 0 };
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *text)
{
    size_t n = strlen(text);
    while (n) {
        ssize_t w = send(fd, text, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        text += w;
        n -= (size_t)w;
    }
    return 0;
}

/* GET path from src with an optional Authorization header; the status, or -1 when the
 * server closed the connection without an answer. */
static int http_get(const char *src, unsigned port, const char *path, const char *auth)
{
    int fd = connect_from(src, port);
    if (fd < 0)
        return -1;
    char req[512];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s%sConnection: close\r\n\r\n",
             path, auth ? "Authorization: " : "", auth ? auth : "", auth ? "\r\n" : "");
    int status = -1;
    if (send_all(fd, req) == 0) {
        char buf[2048];
        size_t have = 0;
        ssize_t n;
        while (have < sizeof buf - 1 && (n = recv(fd, buf + have, sizeof buf - 1 - have, 0)) > 0)
            have += (size_t)n;
        buf[have] = '\0';
        if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
            status = -1;
    }
    close(fd);
    return status;
}

/* 1 when the server has closed fd (end of stream or reset), 0 when it is still open. */
static int closed_by_server(int fd)
{
    struct pollfd p = { fd, POLLIN, 0 };
    if (poll(&p, 1, 0) <= 0)
        return 0;
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

static ggi_http_server *start_server(const char *addr, const char *token,
                                     const ggi_http_limits *limits)
{
    ggi_http_server *s = NULL;
    CHECK_RC(ggi_http_server_new(&s), GG_OK);
    if (!s)
        return NULL;
    CHECK_RC(ggi_http_server_route(s, "GET", "/ping", pong, NULL), GG_OK);
    if (token)
        CHECK_RC(ggi_http_server_set_token(s, token), GG_OK);
    if (limits)
        CHECK_RC(ggi_http_server_set_limits(s, limits), GG_OK);
    if (ggi_http_server_start(s, addr, 0) != GG_OK) {
        fprintf(stderr, "start on %s: %s\n", addr, gg_error_last());
        ggi_http_server_destroy(&s);
    }
    return s;
}

/* Many slow clients with the default limits: another client is served during the attack
 * and after it. */
static void test_starvation(void)
{
    ggi_http_server *s = start_server("127.0.0.1", NULL, NULL);
    CHECK(s != NULL);
    if (!s)
        return;
    unsigned port = ggi_http_server_port(s);
    CHECK(http_get("127.0.0.200", port, "/ping", NULL) == 200);

    static int fds[ATTACK_ADDRESSES * ATTACK_PER_ADDRESS];
    int n = 0, connected = 0;
    for (int a = 0; a < ATTACK_ADDRESSES; a++) {
        char src[32];
        snprintf(src, sizeof src, "127.0.0.%d", 2 + a);
        for (int i = 0; i < ATTACK_PER_ADDRESS; i++) {
            int fd = connect_from(src, port);
            fds[n++] = fd;
            if (fd >= 0) {
                connected++;
                (void)send_all(fd, "GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n");
            }
        }
    }
    CHECK(connected == n);
    /* Trickle a header line on every connection the server kept, then ask as someone else;
     * the attack is on as long as connections stay open. */
    int open_now = 0;
    for (int i = 0; i < n; i++) {
        if (fds[i] >= 0 && !closed_by_server(fds[i]) &&
            send_all(fds[i], "X-Slow: 1\r\n") == 0)
            open_now++;
    }
    int during = http_get("127.0.0.200", port, "/ping", NULL);
    int still_open = 0;
    for (int i = 0; i < n; i++) {
        if (fds[i] >= 0 && !closed_by_server(fds[i]) &&
            send_all(fds[i], "X-Slow: 2\r\n") == 0)
            still_open++;
    }
    fprintf(stderr, "attack: %d connections, %d held before and %d after the request\n", n,
            open_now, still_open);
    CHECK(still_open >= 100); /* the attack really held connections */
    CHECK(during == 200);
    /* No address holds more than its share. */
    CHECK(open_now <= ATTACK_ADDRESSES * 32);
    for (int i = 0; i < n; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
    }
    /* After the attack: served (retried briefly while the server notices the closes). */
    int after = -1;
    double end = now_s() + HANG_S;
    while ((after = http_get("127.0.0.201", port, "/ping", NULL)) != 200 && now_s() < end)
        usleep(50 * 1000);
    CHECK(after == 200);
    ggi_http_server_destroy(&s);
    CHECK(s == NULL);
}

/* A client that sends a header byte now and then is never idle, yet is closed once its
 * request has not arrived whole by the deadline; meanwhile its address's other slots work. */
static void test_request_deadline(void)
{
    ggi_http_limits l;
    memset(&l, 0, sizeof l);
    l.idle_timeout_s = 60;
    l.request_deadline_s = 1;
    ggi_http_server *s = start_server("127.0.0.1", NULL, &l);
    CHECK(s != NULL);
    if (!s)
        return;
    unsigned port = ggi_http_server_port(s);
    int fd = connect_from("127.0.0.50", port);
    CHECK(fd >= 0);
    CHECK(send_all(fd, "GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n") == 0);
    int closed = 0;
    double end = now_s() + HANG_S;
    while (!closed && now_s() < end) {
        usleep(100 * 1000);
        closed = closed_by_server(fd) || send_all(fd, "X") != 0;
    }
    CHECK(closed);
    close(fd);
    /* A complete request is not cut off (the deadline is per request, and renewed). */
    CHECK(http_get("127.0.0.50", port, "/ping", NULL) == 200);
    ggi_http_server_destroy(&s);
}

static void test_access_rule(void)
{
    ggi_http_server *s = NULL;
    CHECK_RC(ggi_http_server_new(&s), GG_OK);
    CHECK_RC(ggi_http_server_route(s, "GET", "/ping", pong, NULL), GG_OK);
    CHECK_RC(ggi_http_server_start(s, "0.0.0.0", 0), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "token");
    CHECK_RC(ggi_http_server_start(s, "::", 0), GG_EINVAL);
    CHECK_RC(ggi_http_server_start(s, "192.0.2.1", 0), GG_EINVAL);
    CHECK(ggi_http_server_port(s) == 0);
    ggi_http_server_destroy(&s);

    CHECK(ggi_http_address_is_loopback("127.0.0.1"));
    CHECK(ggi_http_address_is_loopback("127.3.2.1"));
    CHECK(ggi_http_address_is_loopback("::1"));
    CHECK(ggi_http_address_is_loopback("::ffff:127.0.0.1"));
    CHECK(!ggi_http_address_is_loopback("0.0.0.0"));
    CHECK(!ggi_http_address_is_loopback("::"));
    CHECK(!ggi_http_address_is_loopback("128.0.0.1"));
    CHECK(!ggi_http_address_is_loopback("localhost"));
    CHECK(!ggi_http_address_is_loopback(NULL));

    /* With a token it starts on every address, and requests need the token. */
    s = start_server("0.0.0.0", "s3cret-token", NULL);
    CHECK(s != NULL);
    if (s) {
        unsigned port = ggi_http_server_port(s);
        CHECK(http_get("127.0.0.1", port, "/ping", NULL) == 401);
        CHECK(http_get("127.0.0.1", port, "/ping", "Bearer wrong-token") == 401);
        CHECK(http_get("127.0.0.1", port, "/ping", "Bearer s3cret-toke") == 401);
        CHECK(http_get("127.0.0.1", port, "/ping", "Bearer s3cret-token2") == 401);
        CHECK(http_get("127.0.0.1", port, "/ping", "Basic s3cret-token") == 401);
        CHECK(http_get("127.0.0.1", port, "/ping", "Bearer s3cret-token") == 200);
        ggi_http_server_destroy(&s);
    }
    /* Loopback without a token is allowed. */
    s = start_server("127.0.0.1", NULL, NULL);
    CHECK(s != NULL);
    if (s)
        CHECK(http_get("127.0.0.1", ggi_http_server_port(s), "/ping", NULL) == 200);
    ggi_http_server_destroy(&s);
}

int main(void)
{
    /* Both ends of 1,000 connections live in this process. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 8192) {
        rl.rlim_cur = rl.rlim_max < 8192 ? rl.rlim_max : 8192;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < 4096) {
        printf("skipped: needs 4096 open files\n");
        return 77;
    }
    test_access_rule();
    test_request_deadline();
    test_starvation();
    return test_exit();
}
