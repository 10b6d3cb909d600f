/*
 * test_security.c - the grid's security: key files (generation, reading back, the
 * permission rule, malformed files), authorized-keys lists, the loopback rule for
 * unencrypted operation, and real CURVE + ZAP traffic over tcp on loopback: a listed key
 * talks and its role arrives with each message, an unknown key and a peer expecting the
 * wrong server key are refused (nothing arrives; the refusal is logged and counted).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zmq.h>

#include "gryphgen/security.h"
#include "net/keys.h"
#include "net/transport.h"
#include "testutil.h"

static char tmpdir[256];

static char *path_in_tmp(const char *name)
{
    static char bufs[8][512];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, 512, "%s/%s", tmpdir, name);
    return b;
}

static void write_text(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

/* ---- log capture (the ZAP handler logs on its own thread) ---- */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char log_text[8192];

static void capture_log(void *user, int level, const char *message)
{
    (void)user;
    (void)level;
    pthread_mutex_lock(&log_mu);
    size_t n = strlen(log_text);
    snprintf(log_text + n, sizeof log_text - n, "%s\n", message);
    pthread_mutex_unlock(&log_mu);
}

static int log_contains(const char *needle)
{
    pthread_mutex_lock(&log_mu);
    int hit = strstr(log_text, needle) != NULL;
    pthread_mutex_unlock(&log_mu);
    return hit;
}

/* ---- endpoints ---- */

static void test_loopback_rule(void)
{
    CHECK(gg_endpoint_is_loopback("tcp://127.0.0.1:5555"));
    CHECK(gg_endpoint_is_loopback("tcp://127.12.0.9:1"));
    CHECK(gg_endpoint_is_loopback("tcp://[::1]:5555"));
    CHECK(gg_endpoint_is_loopback("tcp://localhost:5555"));
    CHECK(gg_endpoint_is_loopback("tcp://127.0.0.1:*"));
    CHECK(gg_endpoint_is_loopback("ipc:///tmp/gg.sock"));
    CHECK(gg_endpoint_is_loopback("inproc://x"));
    CHECK(!gg_endpoint_is_loopback("tcp://*:5555"));
    CHECK(!gg_endpoint_is_loopback("tcp://0.0.0.0:5555"));
    CHECK(!gg_endpoint_is_loopback("tcp://10.0.0.1:5555"));
    CHECK(!gg_endpoint_is_loopback("tcp://128.0.0.1:5555"));
    CHECK(!gg_endpoint_is_loopback("tcp://127.0.0.1.evil.example:5555"));
    CHECK(!gg_endpoint_is_loopback("tcp://localhost.example:5555"));
    CHECK(!gg_endpoint_is_loopback("tcp://[::]:5555"));
    CHECK(!gg_endpoint_is_loopback("tcp://[::1]"));
    CHECK(!gg_endpoint_is_loopback("tcp://eth0:5555"));
    CHECK(!gg_endpoint_is_loopback("tcp://10.0.0.1:5555;127.0.0.1:5555"));
    CHECK(!gg_endpoint_is_loopback("tcp://127.0.0.1"));
    CHECK(!gg_endpoint_is_loopback("pgm://127.0.0.1:5555"));
    CHECK(!gg_endpoint_is_loopback(""));
    CHECK(!gg_endpoint_is_loopback(NULL));

    CHECK_RC(gg_security_check("tcp://10.0.0.1:5555", 1, 0), GG_OK);
    CHECK_RC(gg_security_check("inproc://embedded", 0, 0), GG_OK);
    CHECK_RC(gg_security_check("tcp://127.0.0.1:5555", 0, 1), GG_OK);
    CHECK_RC(gg_security_check("ipc:///tmp/x", 0, 1), GG_OK);
    CHECK_RC(gg_security_check("tcp://127.0.0.1:5555", 0, 0), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "--insecure");
    CHECK_RC(gg_security_check("tcp://0.0.0.0:5555", 0, 1), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "not loopback");
    CHECK_RC(gg_security_check("tcp://*:5555", 0, 1), GG_EINVAL);
    CHECK_RC(gg_security_check(NULL, 1, 1), GG_EINVAL);
}

/* ---- key files ---- */

static void test_key_files(void)
{
    char pub[GG_CURVE_KEY_Z85_LEN + 1];
    CHECK_RC(gg_curve_keygen(path_in_tmp("a"), pub), GG_OK);
    CHECK(strlen(pub) == GG_CURVE_KEY_Z85_LEN);
    struct stat st;
    CHECK(stat(path_in_tmp("a.key"), &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK(stat(path_in_tmp("a.pub"), &st) == 0 && (st.st_mode & 0777) == 0644);

    ggi_keypair kp;
    CHECK_RC(ggi_keys_read(path_in_tmp("a.key"), 1, &kp), GG_OK);
    CHECK_STR(kp.public_key, pub);
    CHECK(strlen(kp.secret_key) == GGI_KEY_Z85_LEN);
    CHECK_RC(ggi_keys_read(path_in_tmp("a.pub"), 0, &kp), GG_OK);
    CHECK_STR(kp.public_key, pub);
    CHECK_STR(kp.secret_key, "");
    CHECK_RC(ggi_keys_read(path_in_tmp("a.pub"), 1, &kp), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "no 'secret:' line");

    /* Never overwritten. */
    char again[GG_CURVE_KEY_Z85_LEN + 1] = "x";
    CHECK_RC(gg_curve_keygen(path_in_tmp("a"), again), GG_EEXIST);
    CHECK_STR(again, "");
    CHECK_CONTAINS(gg_error_last(), "already exists");
    CHECK_RC(gg_curve_keygen("", NULL), GG_EINVAL);

    /* A secret readable (or writable) by others is refused, even for its public part. */
    chmod(path_in_tmp("a.key"), 0640);
    CHECK_RC(ggi_keys_read(path_in_tmp("a.key"), 1, &kp), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "mode 0640");
    CHECK_CONTAINS(gg_error_last(), "chmod 600");
    chmod(path_in_tmp("a.key"), 0604);
    CHECK_RC(ggi_keys_read(path_in_tmp("a.key"), 0, &kp), GG_EINVAL);
    chmod(path_in_tmp("a.key"), 0600);
    CHECK_RC(ggi_keys_read(path_in_tmp("a.key"), 1, &kp), GG_OK);

    /* Malformed files. */
    CHECK_RC(ggi_keys_read(path_in_tmp("missing.key"), 1, &kp), GG_ENOTFOUND);
    CHECK_CONTAINS(gg_error_last(), "missing.key");
    write_text(path_in_tmp("bad1.key"), "public: tooshort\n", 0600);
    CHECK_RC(ggi_keys_read(path_in_tmp("bad1.key"), 0, &kp), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "line 1");
    CHECK_CONTAINS(gg_error_last(), "40-character Z85");
    char text[256];
    snprintf(text, sizeof text, "# comment\npublic: %s\nhello\n", pub);
    write_text(path_in_tmp("bad2.key"), text, 0600);
    CHECK_RC(ggi_keys_read(path_in_tmp("bad2.key"), 0, &kp), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "line 3");
    write_text(path_in_tmp("bad3.key"), "\n\n", 0600);
    CHECK_RC(ggi_keys_read(path_in_tmp("bad3.key"), 0, &kp), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "no 'public:' line");
    snprintf(text, sizeof text, "public: %s\npublic: %s\n", pub, pub);
    write_text(path_in_tmp("bad4.key"), text, 0600);
    CHECK_RC(ggi_keys_read(path_in_tmp("bad4.key"), 0, &kp), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "second");
    /* A secret that does not belong to the public key. */
    ggi_keypair other;
    CHECK_RC(ggi_keys_generate(&other), GG_OK);
    snprintf(text, sizeof text, "public: %s\nsecret: %s\n", pub, other.secret_key);
    write_text(path_in_tmp("bad5.key"), text, 0600);
    CHECK_RC(ggi_keys_read(path_in_tmp("bad5.key"), 1, &kp), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "does not belong");
    /* Characters outside Z85 and a key that overflows are both malformed. */
    write_text(path_in_tmp("bad6.key"),
               "public: \"bcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN\n", 0600);
    CHECK_RC(ggi_keys_read(path_in_tmp("bad6.key"), 0, &kp), GG_EINVAL);
    CHECK(!ggi_key_z85_valid("%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%", 40));
    CHECK(ggi_key_z85_valid(pub, 40));
    /* Too large. */
    char *big = malloc(GGI_KEY_FILE_MAX + 10);
    CHECK(big != NULL);
    if (big) {
        memset(big, '#', GGI_KEY_FILE_MAX + 9);
        big[GGI_KEY_FILE_MAX + 9] = '\0';
        write_text(path_in_tmp("big.key"), big, 0600);
        free(big);
        CHECK_RC(ggi_keys_read(path_in_tmp("big.key"), 0, &kp), GG_ETOOBIG);
    }
    CHECK_RC(ggi_keys_read(tmpdir, 0, &kp), GG_EINVAL); /* a directory */
    char withnul[64] = "public: x";
    CHECK_RC(ggi_keys_parse(withnul, 20, "mem", &kp), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "NUL");
    ggi_auth_keys ak0;
    CHECK_RC(ggi_auth_keys_parse(withnul, 20, "mem", &ak0), GG_EINVAL);
    CHECK(ak0.n == 0);

    /* A public key given as text or as a file. */
    char out[GGI_KEY_Z85_LEN + 1];
    CHECK_RC(ggi_keys_resolve_public(pub, out), GG_OK);
    CHECK_STR(out, pub);
    CHECK_RC(ggi_keys_resolve_public(path_in_tmp("a.pub"), out), GG_OK);
    CHECK_STR(out, pub);
    CHECK_RC(ggi_keys_resolve_public(path_in_tmp("a.key"), out), GG_OK);
    CHECK_STR(out, pub);
    CHECK_RC(ggi_keys_resolve_public("nonsense", out), GG_ENOTFOUND);
    CHECK_CONTAINS(gg_error_last(), "server public key");
}

/* ---- authorized keys ---- */

static void test_authorized_keys(void)
{
    ggi_keypair w, s;
    CHECK_RC(ggi_keys_generate(&w), GG_OK);
    CHECK_RC(ggi_keys_generate(&s), GG_OK);
    char text[512];
    snprintf(text, sizeof text, "# grid keys\n\nworker %s node-1\n  submitter\t%s\n", w.public_key,
             s.public_key);
    write_text(path_in_tmp("auth"), text, 0644);
    ggi_auth_keys ak;
    CHECK_RC(ggi_auth_keys_load(path_in_tmp("auth"), &ak), GG_OK);
    CHECK(ak.n == 2);
    uint8_t raw[32];
    CHECK(zmq_z85_decode(raw, w.public_key) != NULL);
    CHECK_STR(ggi_auth_keys_find(&ak, raw), "worker");
    CHECK(zmq_z85_decode(raw, s.public_key) != NULL);
    CHECK_STR(ggi_auth_keys_find(&ak, raw), "submitter");
    memset(raw, 0, sizeof raw);
    CHECK(ggi_auth_keys_find(&ak, raw) == NULL);
    ggi_auth_keys_free(&ak);

    snprintf(text, sizeof text, "worker %s\nroot %s\n", w.public_key, s.public_key);
    write_text(path_in_tmp("auth-role"), text, 0644);
    CHECK_RC(ggi_auth_keys_load(path_in_tmp("auth-role"), &ak), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "line 2: unknown role 'root'");
    CHECK(ak.n == 0 && ak.keys == NULL);

    write_text(path_in_tmp("auth-key"), "admin not-a-key\n", 0644);
    CHECK_RC(ggi_auth_keys_load(path_in_tmp("auth-key"), &ak), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "line 1: expected a 40-character Z85 public key");

    snprintf(text, sizeof text, "worker %s\nadmin %s\n", w.public_key, w.public_key);
    write_text(path_in_tmp("auth-dup"), text, 0644);
    CHECK_RC(ggi_auth_keys_load(path_in_tmp("auth-dup"), &ak), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "twice");

    snprintf(text, sizeof text, "worker %s\n", w.public_key);
    write_text(path_in_tmp("auth-open"), text, 0666);
    CHECK_RC(ggi_auth_keys_load(path_in_tmp("auth-open"), &ak), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "group or others may add keys");
    CHECK_RC(ggi_auth_keys_load(path_in_tmp("auth-none"), &ak), GG_ENOTFOUND);
}

/* ---- CURVE + ZAP over tcp on loopback ---- */

typedef struct grid {
    ggi_transport hub_t;
    void *hub;
    char endpoint[64];
    char server_pub[GGI_KEY_Z85_LEN + 1];
} grid;

/* Opens a secure hub on a free loopback port; the authorized keys file lists worker W
 * (prefix "w") and submitter S (prefix "s"). */
static int grid_open(grid *g)
{
    memset(g, 0, sizeof *g);
    char text[512];
    ggi_keypair w, s;
    if (ggi_keys_read(path_in_tmp("w.key"), 1, &w) != GG_OK ||
        ggi_keys_read(path_in_tmp("s.key"), 1, &s) != GG_OK)
        return -1;
    snprintf(text, sizeof text, "worker %s\nsubmitter %s\n", w.public_key, s.public_key);
    write_text(path_in_tmp("grid-auth"), text, 0600);
    ggi_zmq_security sec = {0};
    sec.server_key_file = path_in_tmp("server.key");
    sec.authorized_keys_file = path_in_tmp("grid-auth");
    sec.log.fn = capture_log;
    sec.log.level = GG_LOG_DEBUG;
    int rc = ggi_zmq_transport_new_secure(&g->hub_t, &sec);
    CHECK_RC(rc, GG_OK);
    if (rc != GG_OK)
        return -1;
    ggi_keypair sk;
    CHECK_RC(ggi_keys_read(path_in_tmp("server.key"), 1, &sk), GG_OK);
    memcpy(g->server_pub, sk.public_key, sizeof g->server_pub);
    unsigned base = 20000 + (unsigned)getpid() % 30000;
    for (unsigned i = 0; i < 50; i++) {
        snprintf(g->endpoint, sizeof g->endpoint, "tcp://127.0.0.1:%u", base + i * 7);
        if (g->hub_t.vt.hub_open(g->hub_t.self, g->endpoint, &g->hub) == GG_OK)
            return 0;
    }
    CHECK(!"no free port");
    return -1;
}

static void grid_close(grid *g)
{
    if (g->hub)
        g->hub_t.vt.close(g->hub);
    ggi_transport_destroy(&g->hub_t);
}

static void zap_stats(grid *g, ggi_zmq_security_stats *st)
{
    CHECK_RC(ggi_zmq_transport_security_stats(&g->hub_t, st), GG_OK);
}

/* A peer transport with key file prefix.key that expects server_pub. */
static int peer_open(ggi_transport *t, void **peer, const char *key, const char *server_pub,
                     const char *endpoint)
{
    ggi_zmq_security sec = {0};
    sec.client_key_file = key;
    sec.server_public_key = server_pub;
    int rc = ggi_zmq_transport_new_secure(t, &sec);
    CHECK_RC(rc, GG_OK);
    if (rc != GG_OK)
        return rc;
    rc = t->vt.peer_open(t->self, endpoint, peer);
    CHECK_RC(rc, GG_OK);
    return rc;
}

static void test_listed_keys_talk(void)
{
    grid g;
    if (grid_open(&g) != 0) {
        grid_close(&g);
        return;
    }
    const char *names[] = {"w.key", "s.key"};
    const char *roles[] = {"worker", "submitter"};
    for (int k = 0; k < 2; k++) {
        ggi_transport pt;
        void *peer = NULL;
        if (peer_open(&pt, &peer, path_in_tmp(names[k]), g.server_pub, g.endpoint) == GG_OK) {
            for (int i = 0; i < 3; i++) { /* the role arrives with every message */
                char body[32];
                snprintf(body, sizeof body, "hello %d", i);
                CHECK_RC(pt.vt.peer_send(peer, body, strlen(body)), GG_OK);
                gg_transport_msg m;
                CHECK_RC(g.hub_t.vt.hub_recv(g.hub, (int)TEST_DEADLINE_MS, &m), GG_OK);
                CHECK(m.len == strlen(body) && memcmp(m.data, body, m.len) == 0);
                CHECK_STR(m.role, roles[k]);
                /* and the encrypted reply comes back */
                CHECK_RC(g.hub_t.vt.hub_send(g.hub, m.peer, m.peer_len, "ok", 2), GG_OK);
                gg_transport_msg r;
                CHECK_RC(pt.vt.peer_recv(peer, (int)TEST_DEADLINE_MS, &r), GG_OK);
                CHECK(r.len == 2 && memcmp(r.data, "ok", 2) == 0);
                CHECK_STR(r.role, "");
            }
            pt.vt.close(peer);
        }
        ggi_transport_destroy(&pt);
    }
    /* A peer of the hub's own transport uses the server's key pair: role "local". */
    void *own = NULL;
    CHECK_RC(g.hub_t.vt.peer_open(g.hub_t.self, g.endpoint, &own), GG_OK);
    if (own) {
        CHECK_RC(g.hub_t.vt.peer_send(own, "ctl", 3), GG_OK);
        gg_transport_msg m;
        CHECK_RC(g.hub_t.vt.hub_recv(g.hub, (int)TEST_DEADLINE_MS, &m), GG_OK);
        CHECK_STR(m.role, "local");
        g.hub_t.vt.close(own);
    }
    ggi_zmq_security_stats st;
    zap_stats(&g, &st);
    CHECK(st.admitted == 3);
    CHECK(st.refused == 0);
    CHECK(log_contains("admitted worker from 127.0.0.1"));
    grid_close(&g);
}

typedef struct refused_arg {
    grid *g;
    uint64_t want;
} refused_arg;

static int refused_reached(void *arg)
{
    refused_arg *a = arg;
    ggi_zmq_security_stats st;
    zap_stats(a->g, &st);
    return st.refused >= a->want;
}

/* Waits (up to the hang guard) for the refusal counter to reach want. */
static int wait_refused(grid *g, uint64_t want)
{
    refused_arg a = { g, want };
    return test_wait_for(refused_reached, &a);
}

static void test_unknown_key_refused(void)
{
    grid g;
    if (grid_open(&g) != 0) {
        grid_close(&g);
        return;
    }
    ggi_transport pt;
    void *peer = NULL;
    if (peer_open(&pt, &peer, path_in_tmp("u.key"), g.server_pub, g.endpoint) == GG_OK) {
        CHECK_RC(pt.vt.peer_send(peer, "let me in", 9), GG_OK);
        CHECK(wait_refused(&g, 1));
        gg_transport_msg m;
        CHECK_RC(g.hub_t.vt.hub_recv(g.hub, 300, &m), GG_ETIMEDOUT);
        ggi_zmq_security_stats st;
        zap_stats(&g, &st);
        CHECK(st.admitted == 0);
        ggi_keypair u;
        CHECK_RC(ggi_keys_read(path_in_tmp("u.key"), 1, &u), GG_OK);
        char fp[GGI_FINGERPRINT_LEN];
        ggi_key_fingerprint(u.public_key, fp);
        CHECK_CONTAINS(st.last_refusal, fp);
        CHECK_CONTAINS(st.last_refusal, "127.0.0.1");
        CHECK_CONTAINS(st.last_refusal, "not authorized");
        CHECK(log_contains(fp));
        pt.vt.close(peer);
    }
    ggi_transport_destroy(&pt);

    /* A plain-text peer gets nowhere either (the mechanisms do not match). */
    ggi_transport plain;
    CHECK_RC(ggi_zmq_transport_new(&plain), GG_OK);
    void *pp = NULL;
    CHECK_RC(plain.vt.peer_open(plain.self, g.endpoint, &pp), GG_OK);
    if (pp) {
        CHECK_RC(plain.vt.peer_send(pp, "plain", 5), GG_OK);
        gg_transport_msg m;
        CHECK_RC(g.hub_t.vt.hub_recv(g.hub, 500, &m), GG_ETIMEDOUT);
        plain.vt.close(pp);
    }
    ggi_transport_destroy(&plain);
    grid_close(&g);
}

static void test_wrong_server_key(void)
{
    grid g;
    if (grid_open(&g) != 0) {
        grid_close(&g);
        return;
    }
    ggi_keypair impostor;
    CHECK_RC(ggi_keys_generate(&impostor), GG_OK);
    ggi_transport pt;
    void *peer = NULL;
    /* A listed worker key, but expecting another server: the handshake fails. */
    if (peer_open(&pt, &peer, path_in_tmp("w.key"), impostor.public_key, g.endpoint) ==
        GG_OK) {
        CHECK_RC(pt.vt.peer_send(peer, "hello", 5), GG_OK);
        gg_transport_msg m;
        CHECK_RC(g.hub_t.vt.hub_recv(g.hub, 800, &m), GG_ETIMEDOUT);
        CHECK_RC(pt.vt.peer_recv(peer, 10, &m), GG_ETIMEDOUT);
        ggi_zmq_security_stats st;
        zap_stats(&g, &st);
        CHECK(st.admitted == 0);
        pt.vt.close(peer);
    }
    ggi_transport_destroy(&pt);
    grid_close(&g);
}

static void test_secure_transport_options(void)
{
    ggi_transport t;
    ggi_zmq_security sec = {0};
    CHECK_RC(ggi_zmq_transport_new_secure(&t, &sec), GG_EINVAL);
    sec.server_key_file = path_in_tmp("server.key");
    CHECK_RC(ggi_zmq_transport_new_secure(&t, &sec), GG_EINVAL); /* no authorized keys */
    CHECK_CONTAINS(gg_error_last(), "both");
    sec.server_key_file = NULL;
    sec.client_key_file = path_in_tmp("w.key");
    CHECK_RC(ggi_zmq_transport_new_secure(&t, &sec), GG_EINVAL); /* no server public key */
    sec.server_public_key = path_in_tmp("server.pub");
    sec.client_key_file = path_in_tmp("w.pub");
    CHECK_RC(ggi_zmq_transport_new_secure(&t, &sec), GG_EINVAL); /* a .pub, not a pair */
    CHECK_CONTAINS(gg_error_last(), "no 'secret:' line");

    /* The server's own key may not be listed: its role is fixed to "local". */
    ggi_keypair sk;
    CHECK_RC(ggi_keys_read(path_in_tmp("server.key"), 1, &sk), GG_OK);
    char text[256];
    snprintf(text, sizeof text, "admin %s\n", sk.public_key);
    write_text(path_in_tmp("auth-self"), text, 0600);
    ggi_zmq_security hs = {0};
    hs.server_key_file = path_in_tmp("server.key");
    hs.authorized_keys_file = path_in_tmp("auth-self");
    CHECK_RC(ggi_zmq_transport_new_secure(&t, &hs), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "server's own key");

    /* A peer-only secure transport cannot open a hub; over inproc:// a secure hub tags
     * messages "local" (ZeroMQ does no handshake there). */
    sec.client_key_file = path_in_tmp("w.key");
    CHECK_RC(ggi_zmq_transport_new_secure(&t, &sec), GG_OK);
    void *h = NULL;
    CHECK_RC(t.vt.hub_open(t.self, "inproc://nohub", &h), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "no server key");
    ggi_transport_destroy(&t);

    hs.authorized_keys_file = path_in_tmp("grid-auth");
    CHECK_RC(ggi_zmq_transport_new_secure(&t, &hs), GG_OK);
    void *p = NULL;
    CHECK_RC(t.vt.hub_open(t.self, "inproc://secure-hub", &h), GG_OK);
    CHECK_RC(t.vt.peer_open(t.self, "inproc://secure-hub", &p), GG_OK);
    if (h && p) {
        CHECK_RC(t.vt.peer_send(p, "x", 1), GG_OK);
        gg_transport_msg m;
        CHECK_RC(t.vt.hub_recv(h, (int)TEST_DEADLINE_MS, &m), GG_OK);
        CHECK_STR(m.role, "local");
    }
    if (p)
        t.vt.close(p);
    if (h)
        t.vt.close(h);
    ggi_transport_destroy(&t);

    /* An insecure transport leaves the role empty. */
    CHECK_RC(ggi_zmq_transport_new_secure(&t, NULL), GG_OK);
    h = p = NULL;
    CHECK_RC(t.vt.hub_open(t.self, "inproc://plain-hub", &h), GG_OK);
    CHECK_RC(t.vt.peer_open(t.self, "inproc://plain-hub", &p), GG_OK);
    if (h && p) {
        CHECK_RC(t.vt.peer_send(p, "x", 1), GG_OK);
        gg_transport_msg m;
        memset(&m, 'z', sizeof m);
        CHECK_RC(t.vt.hub_recv(h, (int)TEST_DEADLINE_MS, &m), GG_OK);
        CHECK_STR(m.role, "");
    }
    if (p)
        t.vt.close(p);
    if (h)
        t.vt.close(h);
    ggi_zmq_security_stats st;
    CHECK_RC(ggi_zmq_transport_security_stats(&t, &st), GG_OK);
    CHECK(st.admitted == 0 && st.refused == 0);
    ggi_transport_destroy(&t);
    ggi_transport other = {0};
    CHECK_RC(ggi_zmq_transport_security_stats(&other, &st), GG_EINVAL);
}

/* Large messages go from kept buffers (reused, given back by ZeroMQ when sent): many of
 * them, of many sizes, both ways, arrive whole and in order. */
static void test_large_messages(void)
{
    ggi_transport t;
    CHECK_RC(ggi_zmq_transport_new(&t), GG_OK);
    void *hub = NULL, *peer = NULL;
    CHECK_RC(t.vt.hub_open(t.self, "inproc://gg-large", &hub), GG_OK);
    CHECK_RC(t.vt.peer_open(t.self, "inproc://gg-large", &peer), GG_OK);
    size_t max = 300000;
    unsigned char *buf = malloc(max);
    CHECK(buf != NULL);
    if (!hub || !peer || !buf) {
        free(buf);
        ggi_transport_destroy(&t);
        return;
    }
    int bad = 0;
    for (int i = 0; i < 60 && !bad; i++) {
        size_t len = 100 + (size_t)i * 4999 % max; /* small, large, larger, in turn */
        for (size_t k = 0; k < len; k++)
            buf[k] = (unsigned char)(k * 31 + (size_t)i);
        CHECK_RC(t.vt.peer_send(peer, buf, len), GG_OK);
        gg_transport_msg m;
        CHECK_RC(t.vt.hub_recv(hub, (int)TEST_DEADLINE_MS, &m), GG_OK);
        bad += m.len != len || memcmp(m.data, buf, len) != 0;
        /* and back */
        for (size_t k = 0; k < len; k++)
            buf[k] = (unsigned char)(k * 7 + (size_t)i);
        CHECK_RC(t.vt.hub_send(hub, m.peer, m.peer_len, buf, len), GG_OK);
        gg_transport_msg r;
        CHECK_RC(t.vt.peer_recv(peer, (int)TEST_DEADLINE_MS, &r), GG_OK);
        bad += r.len != len || memcmp(r.data, buf, len) != 0;
    }
    CHECK(bad == 0);
    /* Many at once before any is read: each needs a buffer of its own. */
    for (int i = 0; i < 20; i++) {
        memset(buf, 'a' + i, 50000);
        CHECK_RC(t.vt.peer_send(peer, buf, 50000), GG_OK);
    }
    for (int i = 0; i < 20; i++) {
        gg_transport_msg m;
        CHECK_RC(t.vt.hub_recv(hub, (int)TEST_DEADLINE_MS, &m), GG_OK);
        CHECK(m.len == 50000 && ((const char *)m.data)[0] == 'a' + i &&
              ((const char *)m.data)[49999] == 'a' + i);
    }
    free(buf);
    t.vt.close(peer);
    t.vt.close(hub);
    ggi_transport_destroy(&t);
}

int main(void)
{
    test_loopback_rule();
    test_large_messages();
    if (!zmq_has("curve")) {
        fprintf(stderr, "SKIP: this libzmq has no CURVE support\n");
        return 77;
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/gg-security-XXXXXX");
    if (!test_make_dir(tmpdir))
        return 1;
    test_key_files();
    test_authorized_keys();
    CHECK_RC(gg_curve_keygen(path_in_tmp("server"), NULL), GG_OK);
    CHECK_RC(gg_curve_keygen(path_in_tmp("w"), NULL), GG_OK);
    CHECK_RC(gg_curve_keygen(path_in_tmp("s"), NULL), GG_OK);
    CHECK_RC(gg_curve_keygen(path_in_tmp("u"), NULL), GG_OK);
    test_listed_keys_talk();
    test_unknown_key_refused();
    test_wrong_server_key();
    test_secure_transport_options();
    test_remove_dir(tmpdir);
    return test_exit();
}
