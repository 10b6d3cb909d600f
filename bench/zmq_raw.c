/*
 * zmq_raw.c - the limit the grid's dispatch is measured against: plain libzmq ROUTER/DEALER
 * round trips over tcp on loopback, with the message sizes of a no-op job and its result,
 * several DEALER peers each keeping a number of messages in flight (pipelined). Prints
 * "round trips/s". Used by bench/dispatch.sh.
 *
 * usage: zmq_raw [peers] [in_flight_per_peer] [request_bytes] [reply_bytes] [seconds]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

static const char *endpoint = "tcp://127.0.0.1:47999";
static int req_bytes = 400, rep_bytes = 250, in_flight = 100;
static volatile int stop;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The hub: answers every request with a reply of rep_bytes (like a worker's result). */
static void *hub_main(void *ctx)
{
    void *s = zmq_socket(ctx, ZMQ_ROUTER);
    int one = 1, hwm = 100000, zero = 0;
    zmq_setsockopt(s, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_bind(s, endpoint) != 0) {
        fprintf(stderr, "bind: %s\n", zmq_strerror(zmq_errno()));
        exit(1);
    }
    char *reply = malloc((size_t)rep_bytes);
    memset(reply, 'r', (size_t)rep_bytes);
    int timeout = 100;
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    while (!stop) {
        zmq_msg_t id, body;
        zmq_msg_init(&id);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&id, s, 0) < 0 || zmq_msg_recv(&body, s, 0) < 0) {
            zmq_msg_close(&id);
            zmq_msg_close(&body);
            continue;
        }
        zmq_msg_send(&id, s, ZMQ_SNDMORE);
        zmq_send(s, reply, (size_t)rep_bytes, 0);
        zmq_msg_close(&body);
    }
    free(reply);
    zmq_close(s);
    return NULL;
}

typedef struct peer_arg {
    void *ctx;
    unsigned long done;
} peer_arg;

static void *peer_main(void *arg)
{
    peer_arg *p = arg;
    void *s = zmq_socket(p->ctx, ZMQ_DEALER);
    int zero = 0, timeout = 100;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_connect(s, endpoint);
    char *req = malloc((size_t)req_bytes), *buf = malloc((size_t)rep_bytes + 16);
    memset(req, 'q', (size_t)req_bytes);
    for (int i = 0; i < in_flight; i++)
        zmq_send(s, req, (size_t)req_bytes, 0);
    while (!stop) {
        if (zmq_recv(s, buf, (size_t)rep_bytes + 16, 0) < 0)
            continue;
        p->done++;
        zmq_send(s, req, (size_t)req_bytes, 0);
    }
    free(req);
    free(buf);
    zmq_close(s);
    return NULL;
}

int main(int argc, char **argv)
{
    int peers = argc > 1 ? atoi(argv[1]) : 2;
    in_flight = argc > 2 ? atoi(argv[2]) : 100;
    req_bytes = argc > 3 ? atoi(argv[3]) : 400;
    rep_bytes = argc > 4 ? atoi(argv[4]) : 250;
    double secs = argc > 5 ? atof(argv[5]) : 2.0;
    if (peers < 1 || peers > 64 || in_flight < 1 || req_bytes < 1 || rep_bytes < 1 || secs <= 0) {
        fprintf(stderr, "usage: zmq_raw [peers] [in_flight] [request_bytes] [reply_bytes] "
                        "[seconds]\n");
        return 2;
    }
    void *ctx = zmq_ctx_new();
    pthread_t hub, th[64];
    peer_arg args[64];
    pthread_create(&hub, NULL, hub_main, ctx);
    struct timespec ts = { 0, 100 * 1000000L };
    nanosleep(&ts, NULL);
    for (int i = 0; i < peers; i++) {
        args[i].ctx = ctx;
        args[i].done = 0;
        pthread_create(&th[i], NULL, peer_main, &args[i]);
    }
    nanosleep(&ts, NULL); /* warm up */
    unsigned long before = 0;
    for (int i = 0; i < peers; i++)
        before += args[i].done;
    double t0 = now();
    while (now() - t0 < secs) {
        struct timespec t = { 0, 50 * 1000000L };
        nanosleep(&t, NULL);
    }
    unsigned long after = 0;
    for (int i = 0; i < peers; i++)
        after += args[i].done;
    double dt = now() - t0;
    stop = 1;
    for (int i = 0; i < peers; i++)
        pthread_join(th[i], NULL);
    pthread_join(hub, NULL);
    zmq_ctx_term(ctx);
    printf("%.0f round trips/s (%d peers, %d in flight each, %d/%d bytes)\n",
           (double)(after - before) / dt, peers, in_flight, req_bytes, rep_bytes);
    return 0;
}
