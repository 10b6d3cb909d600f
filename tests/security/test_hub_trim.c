/*
 * test_hub_trim.c - a ZeroMQ hub gives memory back after a burst of connections that never
 * said anything (zmq_transport.c: its socket monitor counts the connections that ended;
 * many, then a quiet second, make one malloc_trim). Checked through ggi_zmq_hub_trims: a
 * few connections closing make no trim; a burst of silent ones (bare TCP, a greeting only,
 * garbage) makes one once it is over, while the hub is waiting in a receive; the hub still
 * works afterwards; a hub of another transport reports 0. The memory itself is shown by
 * bench/conn_memory.sh (KINDS=silent).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/transport.h"
#include "testutil.h"
#include "common/testnet.h"

#define BURST 200 /* above the trim's threshold (64) */

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Receives (nothing comes) until the hub reports want trims, or the deadline. */
static int wait_trims(ggi_transport *t, void *hub, unsigned long want)
{
    double end = test_now_ms() + TEST_DEADLINE_MS;
    while (ggi_zmq_hub_trims(t, hub) < want && test_now_ms() < end) {
        gg_transport_msg m;
        (void)t->vt.hub_recv(hub, 100, &m);
    }
    return ggi_zmq_hub_trims(t, hub) >= want;
}

/* Opens n connections of the silent kinds, in turn, and closes them all. */
static void burst(int port, int n)
{
    static const unsigned char greeting[10] = { 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f };
    int *fds = calloc((size_t)n, sizeof *fds);
    CHECK(fds != NULL);
    for (int i = 0; fds && i < n; i++) {
        fds[i] = connect_to(port);
        CHECK(fds[i] >= 0);
        if (fds[i] < 0)
            continue;
        if (i % 3 == 1)
            CHECK(write(fds[i], greeting, sizeof greeting) == (ssize_t)sizeof greeting);
        if (i % 3 == 2)
            CHECK(write(fds[i], "GET / HTTP/1.0\r\n\r\n", 18) == 18);
    }
    for (int i = 0; fds && i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(fds);
}

static void test_trim(void)
{
    ggi_transport t;
    CHECK_RC(ggi_zmq_transport_new(&t), GG_OK);
    int port = test_free_port();
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", port);
    void *hub = NULL;
    CHECK_RC(t.vt.hub_open(t.self, ep, &hub), GG_OK);
    if (!hub) {
        t.vt.destroy(t.self);
        return;
    }
    CHECK(ggi_zmq_hub_trims(&t, hub) == 0);

    /* A few: no trim (the quiet second passes while receiving). */
    burst(port, 5);
    gg_transport_msg m;
    double until = test_now_ms() + 2500.0;
    while (test_now_ms() < until)
        (void)t.vt.hub_recv(hub, 100, &m);
    CHECK(ggi_zmq_hub_trims(&t, hub) == 0);

    /* A burst of silent connections: one trim once it is over. */
    burst(port, BURST);
    CHECK(wait_trims(&t, hub, 1));

    /* The hub still takes a peer's message. */
    void *peer = NULL;
    CHECK_RC(t.vt.peer_open(t.self, ep, &peer), GG_OK);
    if (peer) {
        CHECK_RC(t.vt.peer_send(peer, "hi", 2), GG_OK);
        int rc = t.vt.hub_recv(hub, (int)TEST_DEADLINE_MS, &m);
        CHECK_RC(rc, GG_OK);
        CHECK(rc == GG_OK && m.len == 2 && memcmp(m.data, "hi", 2) == 0);
        t.vt.close(peer);
    }
    /* Another transport's hub (here: none) is not asked. */
    ggi_transport other = t;
    other.vt.hub_open = NULL;
    CHECK(ggi_zmq_hub_trims(&other, hub) == 0);
    CHECK(ggi_zmq_hub_trims(&t, NULL) == 0);
    t.vt.close(hub);
    t.vt.destroy(t.self);
}

int main(void)
{
    test_trim();
    return test_exit();
}
