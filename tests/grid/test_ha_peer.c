/*
 * test_ha_peer.c - a standby server (ha_role "backup") against a peer that lies. The test
 * plays the active primary by hand over a DEALER: heartbeats make the backup passive; a page
 * set before any snapshot, snapshot chunks out of order, out of bounds or of garbage, a page
 * set with a gap, one damaged on the way, one truncated, one of another page size and a
 * malformed frame are refused (nack, or dropped and counted) and leave the replica as it
 * was; a page set that writes the wrong pages is refused when the group is checked and
 * leaves the replica dirty and unsynced until a snapshot; a real snapshot then the stream in
 * order is acked (a duplicate acked without being applied twice). A client turning to the
 * backup while the "primary" heartbeats hears "passive:"; once the heartbeats stop, its
 * hello makes the backup active on its replica (the tasks of the stream are there), and a
 * page set sent to it then is refused. Waits on answers, never on time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zmq.h>

#include "../../lib/orchestrator/ha.h"
#include "../../lib/store/replica.h"
#include "../../lib/store/store.h"
#include "gryphgen.h"
#include "gryphgen/security.h"
#include "orchestrator/orq.h"
#include "../teststore.h"
#include "../testutil.h"
#include "ggpeer.h"

#define MAX_CS 16
#define ANSWER_MS 30000.0 /* only against a hang */

static struct {
    int64_t seq;
    void *cs;
    size_t n;
} shipped[MAX_CS];
static int n_shipped;

static void ship(void *user, int64_t seq, const void *cs, size_t n)
{
    (void)user;
    if (n_shipped == MAX_CS)
        return;
    shipped[n_shipped].seq = seq;
    shipped[n_shipped].cs = malloc(n);
    memcpy(shipped[n_shipped].cs, cs, n);
    shipped[n_shipped].n = n;
    n_shipped++;
}

static ggpeer link_;
static double last_hb;
static int beating = 1;

/* hdr without its closing brace gets the payload's sum (as the library sends it); a
 * complete one goes as it is (a peer that lies about the sum). */
static void send_frame(const char *hdr0, const void *payload, size_t n)
{
    char hdr[512];
    size_t l0 = strlen(hdr0);
    if (n && l0 && hdr0[l0 - 1] != '}') {
        char sum[17];
        ggi_ha_sum(payload, n, sum);
        snprintf(hdr, sizeof hdr, "%s,\"sum\":\"%s\"}", hdr0, sum);
    } else {
        snprintf(hdr, sizeof hdr, "%s", hdr0);
    }
    size_t hl = strlen(hdr);
    unsigned char *f = malloc(4 + hl + 1 + n);
    memcpy(f, "GGHA", 4);
    memcpy(f + 4, hdr, hl + 1);
    if (n)
        memcpy(f + 4 + hl + 1, payload, n);
    CHECK(zmq_send(link_.sock, f, 4 + hl + 1 + n, 0) == (int)(4 + hl + 1 + n));
    free(f);
}

static void heartbeat(void)
{
    if (beating && ggi_now_ms() - last_hb >= 100) {
        send_frame("{\"op\":\"hb\",\"role\":\"primary\",\"state\":\"active\",\"synced\":true,"
                   "\"seq\":0}", NULL, 0);
        last_hb = ggi_now_ms();
    }
}

/* The next answer on the link with op (others skipped), heartbeating meanwhile; NULL when
 * none came within ms. */
static cJSON *answer(const char *op, double ms)
{
    double end = ggi_now_ms() + ms;
    while (ggi_now_ms() < end) {
        heartbeat();
        zmq_pollitem_t it = { link_.sock, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll(&it, 1, 50) <= 0)
            continue;
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, link_.sock, 0) < 0) {
            zmq_msg_close(&m);
            continue;
        }
        const char *d = zmq_msg_data(&m);
        size_t len = zmq_msg_size(&m);
        cJSON *h = NULL;
        if (len > 4 && memcmp(d, "GGHA", 4) == 0 && memchr(d + 4, 0, len - 4))
            h = cJSON_Parse(d + 4);
        zmq_msg_close(&m);
        const char *o = cJSON_GetStringValue(cJSON_GetObjectItem(h, "op"));
        if (o && strcmp(o, op) == 0)
            return h;
        cJSON_Delete(h);
    }
    return NULL;
}

/* Sends a frame and expects ack (want_seq >= 0: with that seq) or nack (want_seq < 0). */
static int expect(const char *what, const char *hdr, const void *payload, size_t n,
                  long long want_seq)
{
    send_frame(hdr, payload, n);
    cJSON *a = answer(want_seq >= 0 ? "ack" : "nack", ANSWER_MS);
    int ok = a != NULL;
    if (ok && want_seq >= 0)
        ok = (long long)cJSON_GetNumberValue(cJSON_GetObjectItem(a, "seq")) == want_seq;
    if (!ok)
        fprintf(stderr, "%s: wanted %s %lld\n", what, want_seq >= 0 ? "ack" : "nack",
                want_seq);
    cJSON_Delete(a);
    return ok;
}

static void send_snapshot(const void *img, size_t n, long long seq, long long want)
{
    char hdr[200];
    size_t half = n / 2;
    snprintf(hdr, sizeof hdr, "{\"op\":\"snap\",\"seq\":%lld,\"off\":0,\"total\":%zu", seq, n);
    send_frame(hdr, img, half);
    snprintf(hdr, sizeof hdr, "{\"op\":\"snap\",\"seq\":%lld,\"off\":%zu,\"total\":%zu", seq,
             half, n);
    CHECK(expect("snapshot", hdr, (const unsigned char *)img + half, n - half, want));
}

static void send_pages(int i, long long want)
{
    char hdr[100];
    snprintf(hdr, sizeof hdr, "{\"op\":\"pages\",\"seq\":%lld", (long long)shipped[i].seq);
    CHECK(expect("page set", hdr, shipped[i].cs, shipped[i].n, want));
}

/* The backup's heartbeat answer says whether it holds a replica. */
static int backup_synced(void)
{
    last_hb = 0;
    cJSON *hb = answer("hb-reply", ANSWER_MS);
    int synced = cJSON_IsTrue(cJSON_GetObjectItem(hb, "synced"));
    cJSON_Delete(hb);
    return synced;
}

/* A client's hello: the reply or welcome it got (NULL: none). */
static cJSON *client_hello(ggpeer *c, const char **type)
{
    ggpeer_send(c, "{\"ggp\":1,\"t\":\"hello\",\"role\":\"client\",\"name\":\"t\","
                   "\"versions\":[1]}");
    double end = ggi_now_ms() + 2000;
    while (ggi_now_ms() < end) {
        heartbeat();
        zmq_pollitem_t it = { c->sock, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll(&it, 1, 50) <= 0)
            continue;
        zmq_msg_t m;
        zmq_msg_init(&m);
        zmq_msg_recv(&m, c->sock, 0);
        cJSON *j = cJSON_ParseWithLength(zmq_msg_data(&m), zmq_msg_size(&m));
        zmq_msg_close(&m);
        *type = cJSON_GetStringValue(cJSON_GetObjectItem(j, "t"));
        if (*type)
            return j;
        cJSON_Delete(j);
    }
    return NULL;
}

/* With CURVE, peer frames count only from an admin key or the server's own: a worker key's
 * frames are dropped (and counted), an admin's heartbeat is answered. */
static void roles(const char *dir)
{
    char skey[320], wkey[320], akey[320], spub[41], wpub[41], apub[41], prefix[200];
    snprintf(prefix, sizeof prefix, "%s/server", dir);
    int rc = gg_curve_keygen(prefix, spub);
    if (rc == GG_EUNSUPPORTED) {
        fprintf(stderr, "libzmq without CURVE: roles skipped\n");
        return;
    }
    snprintf(skey, sizeof skey, "%s.key", prefix);
    snprintf(prefix, sizeof prefix, "%s/worker", dir);
    CHECK_RC(gg_curve_keygen(prefix, wpub), 0);
    snprintf(wkey, sizeof wkey, "%s.key", prefix);
    snprintf(prefix, sizeof prefix, "%s/admin", dir);
    CHECK_RC(gg_curve_keygen(prefix, apub), 0);
    snprintf(akey, sizeof akey, "%s.key", prefix);
    char auth[300], text[256];
    snprintf(auth, sizeof auth, "%s/authorized_keys", dir);
    snprintf(text, sizeof text, "worker %s w\nadmin %s a\n", wpub, apub);
    FILE *f = fopen(auth, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    fputs(text, f);
    fclose(f);
    chmod(auth, 0600);
    char ep[64], dead[64], db[300];
    ggpeer_endpoint(ep, sizeof ep);
    ggpeer_endpoint(dead, sizeof dead);
    snprintf(db, sizeof db, "%s/keyed.db", dir);
    gg_orchestrator_options oo = GG_ORCHESTRATOR_OPTIONS_INIT;
    oo.db_path = db;
    oo.bind = ep;
    oo.local_workers = 0;
    oo.curve_key_file = skey;
    oo.authorized_keys_file = auth;
    oo.ha_role = "backup";
    oo.ha_peer = dead;
    gg_orchestrator_t *o = NULL;
    CHECK_RC(gg_orchestrator_new(&o, &oo), 0);
    if (!o)
        return;
    /* A worker's key: its heartbeat and snapshot are dropped, unanswered. */
    ggpeer_open_as(&link_, ep, wkey, spub, NULL);
    long long dropped = ggpeer_hub_stat(o, "dropped");
    beating = 1;
    last_hb = 0;
    send_frame("{\"op\":\"snap\",\"seq\":1,\"off\":0,\"total\":1024", "x", 1);
    double end = ggi_now_ms() + ANSWER_MS;
    while (ggpeer_hub_stat(o, "dropped") < dropped + 2 && ggi_now_ms() < end)
        heartbeat(); /* each one dropped too */
    CHECK(ggpeer_hub_stat(o, "dropped") >= dropped + 2);
    ggpeer_close(&link_);
    /* An admin's key: its heartbeat is answered. */
    ggpeer_open_as(&link_, ep, akey, spub, NULL);
    last_hb = 0;
    cJSON *hb = answer("hb-reply", ANSWER_MS);
    CHECK(hb != NULL);
    cJSON_Delete(hb);
    ggpeer_close(&link_);
    gg_orchestrator_destroy(&o);
}

int main(void)
{
    char dir[] = "/tmp/gg-ha-peer-XXXXXX";
    if (!test_make_dir(dir))
        return 1;
    char pdb[96], bdb[96], ep[64], dead[64];
    snprintf(pdb, sizeof pdb, "%s/primary.db", dir);
    snprintf(bdb, sizeof bdb, "%s/backup.db", dir);
    ggpeer_endpoint(ep, sizeof ep);
    ggpeer_endpoint(dead, sizeof dead); /* nobody listens: its own link finds no one */

    /* The primary's state, made here: 3 tasks, a snapshot at 3, then 2 more. */
    ggi_store *ps = NULL;
    CHECK_RC(ggi_store_open(&ps, pdb), 0);
    CHECK_RC(ggi_replica_prepare(ps), 0);
    CHECK_RC(ggi_replica_attach(ps, ship, NULL), 0);
    for (int i = 0; i < 5; i++) {
        char id[16], hash[16];
        snprintf(id, sizeof id, "t%d", i);
        snprintf(hash, sizeof hash, "h%d", i);
        int64_t seq = 0;
        int existing = 0;
        CHECK_RC(test_task_insert(ps, id, "{\"prompt\":\"p\",\"language\":\"python\"}", hash,
                                  0, 1.0, &seq, &existing), 0);
        if (i == 2) {
            void *img = NULL;
            size_t n = 0;
            int64_t at = 0;
            CHECK_RC(ggi_replica_snapshot(pdb, &img, &n, &at), 0);
            CHECK(at == 3);
            shipped[MAX_CS - 1].cs = img; /* the snapshot, kept in the last slot */
            shipped[MAX_CS - 1].n = n;
        }
    }
    CHECK(n_shipped == 5);
    void *snap = shipped[MAX_CS - 1].cs;
    size_t snap_n = shipped[MAX_CS - 1].n;

    gg_orchestrator_options oo = GG_ORCHESTRATOR_OPTIONS_INIT;
    oo.db_path = bdb;
    oo.bind = ep;
    oo.insecure = 1;
    oo.local_workers = 0;
    oo.ha_role = "backup";
    oo.ha_peer = dead;
    /* Silence long enough to be no accident: this test heartbeats only while it waits for an
     * answer (every 100 ms), and a client's hello or a snapshot on a busy machine under ASan
     * can keep it from beating for far longer than 400 ms; the backup must not take over
     * before the test falls silent on purpose. */
    oo.ha_timeout_ms = 5000;
    gg_orchestrator_t *o = NULL;
    CHECK_RC(gg_orchestrator_new(&o, &oo), 0);
    if (!o)
        return test_exit();
    ggpeer_open(&link_, ep);

    /* Our heartbeat as an active primary: the backup answers, passive now, no replica. */
    cJSON *hb = answer("hb-reply", ANSWER_MS);
    CHECK(hb != NULL);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(hb, "state")), "passive");
    CHECK(cJSON_IsFalse(cJSON_GetObjectItem(hb, "synced")));
    cJSON_Delete(hb);

    unsigned char junk[1024];
    memset(junk, 0x5a, sizeof junk);
    /* Lies before any snapshot. */
    send_pages(0, -1);
    CHECK(expect("chunk out of order", "{\"op\":\"snap\",\"seq\":3,\"off\":100,\"total\":2000",
                 junk, 100, -1));
    CHECK(expect("snapshot too big", "{\"op\":\"snap\",\"seq\":3,\"off\":0,"
                 "\"total\":99999999999999", junk, 100, -1));
    CHECK(expect("chunk past its total", "{\"op\":\"snap\",\"seq\":3,\"off\":0,\"total\":10",
                 junk, 100, -1));
    CHECK(expect("garbage snapshot", "{\"op\":\"snap\",\"seq\":3,\"off\":0,\"total\":1024",
                 junk, sizeof junk, -1));
    long long dropped = ggpeer_hub_stat(o, "dropped");
    send_frame("{\"op\":\"pages\"", NULL, 0); /* a header that is not JSON */
    zmq_send(link_.sock, "GGHA{\"op\":\"pages\"}", 18, 0); /* no NUL */
    send_frame("{\"op\":\"launch\"}", NULL, 0); /* an op nobody knows */

    /* A real snapshot, then the stream with a gap: refused, and the replica must be
     * resynced (page set 4 is refused until a snapshot comes again). */
    send_snapshot(snap, snap_n, 3, 3);
    send_pages(4, -1); /* seq 5 after 3 */
    send_pages(3, -1); /* no longer synced */
    send_snapshot(snap, snap_n, 3, 3);
    send_pages(3, 4);
    send_pages(3, 4); /* a duplicate: acked at 4, not applied again */
    /* A page set 5 damaged on the way: refused; the replica stays at 4 until a snapshot. */
    unsigned char *bad = malloc(shipped[4].n);
    memcpy(bad, shipped[4].cs, shipped[4].n);
    for (size_t i = shipped[4].n / 3; i < shipped[4].n; i++)
        bad[i] ^= 0x55;
    char lie[128], sum[17];
    ggi_ha_sum(shipped[4].cs, shipped[4].n, sum);
    snprintf(lie, sizeof lie, "{\"op\":\"pages\",\"seq\":5,\"sum\":\"%s\"}", sum);
    CHECK(expect("damaged page set", lie, bad, shipped[4].n, -1));
    CHECK(!backup_synced());
    /* Truncated, or of another page size (its sum right): refused before a byte is
     * written, and the replica resyncs. */
    send_snapshot(snap, snap_n, 3, 3);
    send_pages(3, 4);
    CHECK(expect("truncated page set", "{\"op\":\"pages\",\"seq\":5", shipped[4].cs,
                 shipped[4].n - 7, -1));
    send_snapshot(snap, snap_n, 3, 3);
    send_pages(3, 4);
    memcpy(bad, shipped[4].cs, shipped[4].n);
    bad[6] ^= 0x60; /* the page size */
    CHECK(expect("page set of another page size", "{\"op\":\"pages\",\"seq\":5", bad,
                 shipped[4].n, -1));
    CHECK(!ggi_replica_dirty(bdb));
    /* Whole and in order, but the wrong pages (page set 3's, numbered 5): written, then
     * refused when checked; the replica is dirty and unsynced, so it never takes over. */
    send_snapshot(snap, snap_n, 3, 3);
    send_pages(3, 4);
    CHECK(expect("the wrong pages", "{\"op\":\"pages\",\"seq\":5", shipped[2].cs,
                 shipped[2].n, -1));
    CHECK(ggi_replica_dirty(bdb));
    CHECK(!backup_synced());
    free(bad);
    send_snapshot(snap, snap_n, 3, 3);
    CHECK(!ggi_replica_dirty(bdb));
    CHECK(backup_synced());
    send_pages(3, 4);
    send_pages(4, 5);
    CHECK(ggpeer_hub_stat(o, "dropped") >= dropped + 3);

    /* A client turning to the backup while the primary heartbeats: "passive:". */
    ggpeer client;
    ggpeer_open(&client, ep);
    const char *type = NULL;
    cJSON *r = client_hello(&client, &type);
    CHECK(r && strcmp(type, "reply") == 0);
    CHECK(cJSON_IsFalse(cJSON_GetObjectItem(r, "ok")));
    CHECK((int)cJSON_GetNumberValue(cJSON_GetObjectItem(r, "code")) == GG_ESTATE);
    const char *msg = cJSON_GetStringValue(cJSON_GetObjectItem(r, "message"));
    CHECK(msg && strncmp(msg, "passive:", 8) == 0);
    cJSON_Delete(r);
    char *tid = NULL;
    CHECK_RC(gg_orchestrator_submit(o, "{\"prompt\":\"x\",\"language\":\"python\"}", &tid),
             GG_EUNSUPPORTED);

    /* The primary falls silent: a client's hello (asked again until it is not refused)
     * makes the backup active on its replica. */
    beating = 0;
    int welcomed = 0;
    double end = ggi_now_ms() + ANSWER_MS;
    while (!welcomed && ggi_now_ms() < end) {
        r = client_hello(&client, &type);
        welcomed = r && strcmp(type, "welcome") == 0;
        cJSON_Delete(r);
    }
    CHECK(welcomed);
    ggpeer_send(&client, "{\"ggp\":1,\"t\":\"status\",\"rid\":7}");
    cJSON *st = ggpeer_recv(&client, "reply", ANSWER_MS);
    cJSON *sr = cJSON_GetObjectItem(st, "status");
    if (!sr)
        sr = st;
    CHECK(st && (long long)cJSON_GetNumberValue(cJSON_GetObjectItem(sr, "queued")) == 5);
    cJSON_Delete(st);
    /* Active now: a page set is refused (two actives). */
    send_pages(4, -1);

    ggpeer_close(&client);
    ggpeer_close(&link_);
    gg_orchestrator_destroy(&o);
    ggi_store_close(&ps);
    for (int i = 0; i < n_shipped; i++)
        free(shipped[i].cs);
    ggi_replica_free_image(snap); /* sqlite3_malloc'd, in the last slot */
    roles(dir);
    test_remove_dir(dir);
    return test_exit();
}
