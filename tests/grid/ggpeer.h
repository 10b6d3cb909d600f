/*
 * ggpeer.h - a hand-written ggp/1 peer for the tests that drive the hub over the wire
 * (test_grid, test_grid_trust, test_events): a raw ZeroMQ DEALER that says exactly what the
 * test writes, so each rule of the protocol is seen from outside the library. It connects
 * (optionally over CURVE, under a chosen routing id), sends text, receives a message of one
 * type while heartbeating, says hello as a worker and answers a job with a record. Failures
 * are CHECKs of testutil.h; waits end at the caller's limit or TEST_DEADLINE_MS. From the
 * hub's side, ggpeer_hub_stat() reads one of its counters.
 */
#ifndef GG_TEST_GGPEER_H
#define GG_TEST_GGPEER_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <zmq.h>

#include "gryphgen/orchestrator.h"
#include "core/ggi.h"

#include "../testutil.h"
#include "../common/testnet.h"

/* A loopback endpoint on a port nobody listens on and no other test running now was given
 * (test_free_port: below the ephemeral range, reserved by a lock until this process exits).
 * Each call gives another port. */
static inline void ggpeer_endpoint(char *out, size_t n)
{
    snprintf(out, n, "tcp://127.0.0.1:%d", test_free_port());
}

typedef struct ggpeer {
    void *ctx, *sock;
} ggpeer;

/* Opens a DEALER to ep; with key_file (a key pair file: "public: " and "secret: " lines) and
 * server_pub, over CURVE; with routing_id, under that identity. */
static inline void ggpeer_open_as(ggpeer *p, const char *ep, const char *key_file,
                                  const char *server_pub, const char *routing_id)
{
    p->ctx = zmq_ctx_new();
    p->sock = zmq_socket(p->ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(p->sock, ZMQ_LINGER, &zero, sizeof zero);
    if (routing_id)
        zmq_setsockopt(p->sock, ZMQ_ROUTING_ID, routing_id, strlen(routing_id));
    if (key_file) {
        char pub[41] = "", sec[41] = "", line[128];
        FILE *f = fopen(key_file, "r");
        CHECK(f != NULL);
        while (f && fgets(line, sizeof line, f)) {
            if (strncmp(line, "public: ", 8) == 0)
                snprintf(pub, sizeof pub, "%.40s", line + 8);
            if (strncmp(line, "secret: ", 8) == 0)
                snprintf(sec, sizeof sec, "%.40s", line + 8);
        }
        if (f)
            fclose(f);
        CHECK(zmq_setsockopt(p->sock, ZMQ_CURVE_SERVERKEY, server_pub, 40) == 0);
        CHECK(zmq_setsockopt(p->sock, ZMQ_CURVE_PUBLICKEY, pub, 40) == 0);
        CHECK(zmq_setsockopt(p->sock, ZMQ_CURVE_SECRETKEY, sec, 40) == 0);
    }
    CHECK(zmq_connect(p->sock, ep) == 0);
}

/* Opens a plain DEALER to ep (the hub must run with insecure = 1). */
static inline void ggpeer_open(ggpeer *p, const char *ep)
{
    ggpeer_open_as(p, ep, NULL, NULL, NULL);
}

static inline void ggpeer_close(ggpeer *p)
{
    zmq_close(p->sock);
    zmq_ctx_term(p->ctx);
}

static inline void ggpeer_send(ggpeer *p, const char *text)
{
    CHECK(zmq_send(p->sock, text, strlen(text), 0) == (int)strlen(text));
}

/* Receives one message of type t (others are skipped) within ms, heartbeating meanwhile so
 * that the hub keeps a worker; NULL when none. */
static inline cJSON *ggpeer_recv(ggpeer *p, const char *t, double ms)
{
    double end = ggi_now_ms() + ms, hb = 0;
    while (ggi_now_ms() < end) {
        if (ggi_now_ms() - hb > 300) {
            static const char beat[] = "{\"ggp\":1,\"t\":\"hb\"}";
            zmq_send(p->sock, beat, sizeof beat - 1, ZMQ_DONTWAIT);
            hb = ggi_now_ms();
        }
        zmq_pollitem_t it = { p->sock, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll(&it, 1, 100) <= 0)
            continue;
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, p->sock, 0) < 0) {
            zmq_msg_close(&m);
            continue;
        }
        cJSON *j = cJSON_ParseWithLength(zmq_msg_data(&m), zmq_msg_size(&m));
        zmq_msg_close(&m);
        const char *type = cJSON_GetStringValue(cJSON_GetObjectItem(j, "t"));
        if (type && strcmp(type, t) == 0)
            return j;
        cJSON_Delete(j);
    }
    return NULL;
}

/* Says hello as worker name with slots and caps (a JSON object's text; none when NULL) and
 * waits for the welcome: 1 when it came. */
static inline int ggpeer_hello(ggpeer *p, const char *name, int slots, const char *caps)
{
    char buf[2048];
    snprintf(buf, sizeof buf,
             "{\"ggp\":1,\"t\":\"hello\",\"role\":\"worker\",\"name\":\"%s\",\"versions\":[1],"
             "\"slots\":%d,\"queue\":0%s%s}",
             name, slots, caps ? ",\"caps\":" : "", caps ? caps : "");
    ggpeer_send(p, buf);
    cJSON *w = ggpeer_recv(p, "welcome", TEST_DEADLINE_MS);
    int ok = w != NULL;
    cJSON_Delete(w);
    return ok;
}

/* Answers job (its seq and n) with record (JSON text) under lease (the job's when NULL;
 * JSON-escaped). */
static inline void ggpeer_send_record(ggpeer *p, const cJSON *job, const char *lease,
                                      const char *record)
{
    char buf[2048];
    snprintf(buf, sizeof buf,
             "{\"ggp\":1,\"t\":\"results\",\"results\":[{\"lease\":\"%s\",\"seq\":%d,\"n\":%d,"
             "\"record\":%s}]}",
             lease ? lease : cJSON_GetStringValue(cJSON_GetObjectItem(job, "lease")),
             (int)cJSON_GetNumberValue(cJSON_GetObjectItem(job, "seq")),
             (int)cJSON_GetNumberValue(cJSON_GetObjectItem(job, "n")), record);
    ggpeer_send(p, buf);
}

/* The number key of the stats text s (a JSON object the library returned, freed here), or
 * -1 when it has none. */
static inline long long ggpeer_stat_of(char *s, const char *key)
{
    cJSON *j = cJSON_Parse(s);
    const cJSON *v = cJSON_GetObjectItem(j, key);
    long long n = cJSON_IsNumber(v) ? (long long)v->valuedouble : -1;
    cJSON_Delete(j);
    gg_free(s);
    return n;
}

/* The hub's counter key (gg_orchestrator_stats), or -1 when it has none. */
static inline long long ggpeer_hub_stat(gg_orchestrator_t *o, const char *key)
{
    char *s = NULL;
    return gg_orchestrator_stats(o, &s) == 0 ? ggpeer_stat_of(s, key) : -1;
}

#endif
