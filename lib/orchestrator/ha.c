/*
 * ha.c - a standby orchestrator (Binary Star, ha.h): the state machine, the peer link's
 * thread, the replication stream (page sets and snapshots over the link, acks back) and
 * the passive server's loop.
 *
 * Peer frames are not ggp/1 JSON: "GGHA" + a JSON header + a NUL + raw bytes (a page set,
 * replica.h, or a snapshot's chunk), so that binary data crosses without base64.
 *
 * The passive server writes the pages it is sent straight into its database file
 * (replica.h): from the first snapshot on, its scheduler's connection is released
 * (ggi_store_release) and opened again when it becomes active; the host API's connection
 * stays open for reads, under api_mu while pages are written, its cache dropped after.
 *
 * The active server sends its frames on its own peer socket (DEALER) to the passive one's
 * hub, whose scheduler thread applies them and answers on the same connection; each side
 * also sends heartbeats on its peer socket and answers the other's, so each hears the
 * other's state both ways.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <time.h>

#include <sqlite3.h>

#include "../store/replica.h"
#include "ha.h"
#include "orq.h"
#include "protocol.h"

#define MAGIC "GGHA"
#define MAGIC_LEN 4

/* ---------------------------------------------------------------- the state machine */

const char *ggi_ha_state_name(ggi_ha_state s)
{
    switch (s) {
    case GGI_HA_PRIMARY: return "primary";
    case GGI_HA_BACKUP: return "backup";
    case GGI_HA_ACTIVE: return "active";
    case GGI_HA_PASSIVE: return "passive";
    }
    return "?";
}

static int state_from_name(const char *n, ggi_ha_state *out)
{
    for (int s = GGI_HA_PRIMARY; s <= GGI_HA_PASSIVE; s++)
        if (n && strcmp(n, ggi_ha_state_name((ggi_ha_state)s)) == 0) {
            *out = (ggi_ha_state)s;
            return 1;
        }
    return 0;
}

void ggi_ha_fsm_init(ggi_ha_fsm *f, int primary, double timeout_ms, double now)
{
    memset(f, 0, sizeof *f);
    f->state = primary ? GGI_HA_PRIMARY : GGI_HA_BACKUP;
    f->started_ms = now;
    f->timeout_ms = timeout_ms;
}

static int peer_expired(const ggi_ha_fsm *f, double now)
{
    double since = f->peer_seen_ms > 0 ? f->peer_seen_ms : f->started_ms;
    return now - since >= f->timeout_ms;
}

static int go(ggi_ha_fsm *f, ggi_ha_state to, char *why, size_t cap, const char *because)
{
    snprintf(why, cap, "%s -> %s: %s", ggi_ha_state_name(f->state), ggi_ha_state_name(to),
             because);
    f->state = to;
    return 0;
}

/* A client's hello or request: served only by the active server, or by a primary that
 * heard no peer for a whole timeout since it started, or by a synced passive whose peer
 * fell silent (Binary Star: the backup takes over only when clients turn to it). */
static int on_client(ggi_ha_fsm *f, double now, char *why, size_t cap)
{
    switch (f->state) {
    case GGI_HA_ACTIVE:
        return 1;
    case GGI_HA_PRIMARY:
        if (f->peer_seen_ms == 0 && peer_expired(f, now)) {
            go(f, GGI_HA_ACTIVE, why, cap, "no peer answered; serving alone");
            return 1;
        }
        return 0;
    case GGI_HA_PASSIVE:
        if (f->synced && peer_expired(f, now)) {
            go(f, GGI_HA_ACTIVE, why, cap, "the peer is silent and a client turned here: "
               "taking over");
            return 1;
        }
        return 0;
    case GGI_HA_BACKUP:
        return 0;
    }
    return 0;
}

int ggi_ha_fsm_step(ggi_ha_fsm *f, ggi_ha_event ev, int peer_synced, double now, char *why,
                    size_t cap)
{
    why[0] = '\0';
    if (ev == GGI_HA_CLIENT)
        return on_client(f, now, why, cap);
    f->peer_seen_ms = now;
    switch (f->state) {
    case GGI_HA_PRIMARY:
        if (ev == GGI_HA_PEER_BACKUP || (ev == GGI_HA_PEER_PASSIVE && !peer_synced))
            return go(f, GGI_HA_ACTIVE, why, cap, "the backup is up and holds nothing");
        if (ev == GGI_HA_PEER_ACTIVE) {
            f->synced = 0; /* this database is discarded: a snapshot comes */
            return go(f, GGI_HA_PASSIVE, why, cap, "the backup is active: rejoining as "
                      "backup");
        }
        if (ev == GGI_HA_PEER_PRIMARY)
            snprintf(why, cap, "both servers say they are the primary: check --ha-role");
        return 0;
    case GGI_HA_BACKUP:
        if (ev == GGI_HA_PEER_ACTIVE)
            return go(f, GGI_HA_PASSIVE, why, cap, "the primary is active");
        if (ev == GGI_HA_PEER_BACKUP)
            snprintf(why, cap, "both servers say they are the backup: check --ha-role");
        return 0;
    case GGI_HA_PASSIVE:
        if ((ev == GGI_HA_PEER_PRIMARY || ev == GGI_HA_PEER_BACKUP) && f->synced)
            return go(f, GGI_HA_ACTIVE, why, cap, "the peer restarted: this replica takes "
                      "over");
        if (ev == GGI_HA_PEER_PASSIVE && f->synced && !peer_synced)
            return go(f, GGI_HA_ACTIVE, why, cap, "the peer holds nothing: this replica "
                      "takes over");
        return 0;
    case GGI_HA_ACTIVE:
        if (ev == GGI_HA_PEER_ACTIVE)
            snprintf(why, cap, "both servers are active (split brain): stop one of them");
        return 0;
    }
    return 0;
}

/* ---------------------------------------------------------------- frames */

/* A payload's sum: 64-bit words mixed with a multiply (FNV-1a's constants, eight bytes at a
 * step) in four lanes that do not wait on each other (a page set of megabytes is summed on
 * both sides of the link, so one serial chain of multiplies would cost more than the copy),
 * then the lanes, the tail bytes and the length folded together. It catches damage, not
 * forgery (CURVE does that). */
void ggi_ha_sum(const void *data, size_t n, char out[17])
{
    const unsigned char *p = data;
    const uint64_t prime = 0x100000001b3ull;
    uint64_t h[4] = { 0xcbf29ce484222325ull, 0x84222325cbf29ce4ull, 0x9ce484222325cbf2ull,
                      0x2325cbf29ce48422ull };
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        for (int k = 0; k < 4; k++) {
            uint64_t w;
            memcpy(&w, p + i + 8 * k, 8);
            h[k] = (h[k] ^ w) * prime;
            h[k] ^= h[k] >> 32;
        }
    }
    uint64_t x = h[0];
    for (int k = 1; k < 4; k++) {
        x = (x ^ h[k]) * prime;
        x ^= x >> 32;
    }
    for (; i < n; i++)
        x = (x ^ p[i]) * prime;
    x = (x ^ (uint64_t)n) * prime;
    snprintf(out, 17, "%016llx", (unsigned long long)x);
}

static char *frame_new(cJSON *hdr, const void *payload, size_t n, size_t *len)
{
    /* The payload's hash travels with it: a page set damaged on the way (or forged
     * carelessly) may still parse and apply, and a replica must never hold what the active
     * server did not commit. */
    if (hdr && n) {
        char sum[17];
        ggi_ha_sum(payload, n, sum);
        cJSON_AddStringToObject(hdr, "sum", sum);
    }
    char *h = hdr ? cJSON_PrintUnformatted(hdr) : NULL;
    cJSON_Delete(hdr);
    if (!h)
        return NULL;
    size_t hl = strlen(h);
    char *f = malloc(MAGIC_LEN + hl + 1 + n);
    if (f) {
        memcpy(f, MAGIC, MAGIC_LEN);
        memcpy(f + MAGIC_LEN, h, hl + 1);
        if (n)
            memcpy(f + MAGIC_LEN + hl + 1, payload, n);
        *len = MAGIC_LEN + hl + 1 + n;
    }
    cJSON_free(h);
    return f;
}

int ggi_ha_is_frame(const void *data, size_t len)
{
    return len > MAGIC_LEN && memcmp(data, MAGIC, MAGIC_LEN) == 0;
}

/* The header (owned) and the payload of a frame; GG_EINVAL for one that is not whole. */
static int frame_parse(const void *data, size_t len, cJSON **hdr, const unsigned char **pl,
                       size_t *n)
{
    *hdr = NULL;
    if (!ggi_ha_is_frame(data, len))
        return GG_EINVAL;
    const char *p = (const char *)data + MAGIC_LEN;
    const char *nul = memchr(p, '\0', len - MAGIC_LEN);
    if (!nul || nul - p > 4096)
        return GG_EINVAL;
    *hdr = cJSON_ParseWithLength(p, (size_t)(nul - p));
    if (!*hdr || !cJSON_IsObject(*hdr)) {
        cJSON_Delete(*hdr);
        *hdr = NULL;
        return GG_EINVAL;
    }
    *pl = (const unsigned char *)nul + 1;
    *n = len - (size_t)(*pl - (const unsigned char *)data);
    if (*n) {
        char sum[17];
        ggi_ha_sum(*pl, *n, sum);
        const char *want = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(*hdr, "sum"));
        if (!want || strcmp(want, sum) != 0)
            return GG_ECANCELLED; /* the header is good, the payload is not its own */
    }
    return GG_OK;
}

static const char *hdr_op(const cJSON *h)
{
    const char *op = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(h, "op"));
    return op ? op : "";
}

static int64_t hdr_int(const cJSON *h, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(h, k);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : -1;
}

/* ---------------------------------------------------------------- the pair */

typedef struct qitem {
    struct qitem *next;
    int64_t seq;
    size_t n;
    unsigned char data[];
} qitem;

struct ggi_ha {
    gg_orchestrator_t *o;
    int primary;
    char *peer_ep;
    double hb_ms;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ggi_replica_file *rep;   /* the passive side's copy of the file, from the first snapshot */
    ggi_ha_fsm fsm;
    int peer_alive;          /* heard within the timeout */
    ggi_ha_state peer_state;
    int peer_synced;
    char instance[17];       /* this process's run, in its heartbeats (hex) */
    char peer_instance[17];  /* the peer's run as its last heartbeat named it, or "" */
    /* the active side's stream */
    int stream_ok;           /* a snapshot was sent: page sets after it flow */
    int attached;            /* the backup acked the snapshot: batches wait for acks */
    int64_t snap_seq, sent, acked;
    _Atomic int64_t committed; /* the last transaction shipped (what heartbeats report) */
    qitem *qhead, *qtail;
    size_t qbytes;
    /* the passive side: a snapshot being received */
    unsigned char *in_buf;
    size_t in_len, in_total;
    int64_t in_seq;
    /* page sets written together, checked and acked at once (flush_group) */
    int group_n;
    int64_t group_last;
    gg_transport_msg group_to; /* the peer to ack (identity only) */
    atomic_int stop;
    pthread_t thread;
    int started;
    void *peer;              /* the peer link (DEALER), the link thread's */
};

int ggi_ha_new(ggi_ha **out, gg_orchestrator_t *o, const char *role, const char *peer,
               unsigned timeout_ms)
{
    *out = NULL;
    if (!role || (strcmp(role, "primary") != 0 && strcmp(role, "backup") != 0))
        return ggi_error(GG_EINVAL, "ha_role must be \"primary\" or \"backup\", not '%s'",
                         role ? role : "(null)");
    if (!peer || !*peer || strlen(peer) > 1024 || strchr(peer, ','))
        return ggi_error(GG_EINVAL, "ha_peer must be the other server's one endpoint "
                         "(tcp://host:port)");
    if (timeout_ms && (timeout_ms < 4 * GGI_HA_HB_MS || timeout_ms > 600000))
        return ggi_error(GG_EINVAL, "ha_timeout_ms must be from %d to 600000 (0: %d)",
                         4 * GGI_HA_HB_MS, GGI_HA_TIMEOUT_MS);
    if (ggi_replica_prepare(o->sched_store) != GG_OK)
        return GG_ESTORE;
    ggi_ha *h = calloc(1, sizeof *h);
    if (!h || !(h->peer_ep = ggi_strdup(peer))) {
        free(h);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    h->o = o;
    h->primary = role[0] == 'p';
    uint64_t run = 0;
    if (getrandom(&run, sizeof run, GRND_NONBLOCK) != (ssize_t)sizeof run)
        run = (uint64_t)getpid() << 32 ^ (uint64_t)(ggi_now_ms() * 1000.0);
    snprintf(h->instance, sizeof h->instance, "%016llx", (unsigned long long)run);
    h->hb_ms = GGI_HA_HB_MS;
    pthread_mutex_init(&h->mu, NULL);
    ggi_cond_init_monotonic(&h->cv);
    ggi_ha_fsm_init(&h->fsm, h->primary, timeout_ms ? timeout_ms : GGI_HA_TIMEOUT_MS,
                    ggi_now_ms());
    *out = h;
    return GG_OK;
}

int ggi_ha_is_active(ggi_ha *h)
{
    pthread_mutex_lock(&h->mu);
    int a = h->fsm.state == GGI_HA_ACTIVE;
    pthread_mutex_unlock(&h->mu);
    return a;
}

static void clear_queue(ggi_ha *h)
{
    while (h->qhead) {
        qitem *q = h->qhead;
        h->qhead = q->next;
        free(q);
    }
    h->qtail = NULL;
    h->qbytes = 0;
}

/* The backup is gone or out of step: the primary runs alone until it resyncs (mu held). */
static void detach(ggi_ha *h, const char *why)
{
    if (h->attached || h->stream_ok)
        ggi_log(&h->o->log, GG_LOG_WARN, "ha: running without the backup: %s", why);
    h->attached = 0;
    h->stream_ok = 0;
    clear_queue(h);
    pthread_cond_broadcast(&h->cv);
}

static void log_change(ggi_ha *h, const char *why)
{
    if (why[0])
        ggi_log(&h->o->log, strstr(why, "both") ? GG_LOG_ERROR : GG_LOG_INFO, "ha (%s): %s",
                h->primary ? "primary" : "backup", why);
}

/* The peer said its state (a heartbeat, or an answer to ours). */
static void peer_heard(ggi_ha *h, const cJSON *hdr)
{
    ggi_ha_state ps;
    if (!state_from_name(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(hdr, "state")),
                         &ps))
        return;
    int synced = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(hdr, "synced"));
    char why[160];
    pthread_mutex_lock(&h->mu);
    if (!h->peer_alive)
        ggi_log(&h->o->log, GG_LOG_INFO, "ha: the peer is up (%s)", ggi_ha_state_name(ps));
    h->peer_alive = 1;
    /* A peer that restarted holds nothing of the stream: it gets a snapshot again. Its
     * heartbeats name its run, so a restart is a new name; the state and synced flag of a
     * heartbeat are no proof, as the peer's own heartbeats (its link) and its answers to the
     * stream (this side's link) travel on two connections: a heartbeat built before the
     * snapshot was applied can arrive after the snapshot's ack. (A backup that falls out of
     * step without restarting says so with a nack.) */
    const char *run = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(hdr, "instance"));
    if (run && strlen(run) < sizeof h->peer_instance) {
        if (h->stream_ok && h->peer_instance[0] && strcmp(run, h->peer_instance) != 0)
            detach(h, "the backup restarted");
        snprintf(h->peer_instance, sizeof h->peer_instance, "%s", run);
    }
    h->peer_state = ps;
    h->peer_synced = synced;
    ggi_ha_fsm_step(&h->fsm, (ggi_ha_event)(GGI_HA_PEER_PRIMARY + (int)ps), synced,
                    ggi_now_ms(), why, sizeof why);
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    log_change(h, why);
}

/* A heartbeat frame with this server's state (mu not held). */
static char *hb_frame(ggi_ha *h, const char *op, size_t *len)
{
    cJSON *m = cJSON_CreateObject();
    pthread_mutex_lock(&h->mu);
    ggi_ha_state st = h->fsm.state;
    int synced = h->fsm.synced || st == GGI_HA_ACTIVE;
    pthread_mutex_unlock(&h->mu);
    int64_t seq = st == GGI_HA_ACTIVE ? atomic_load(&h->committed) : -1;
    if (m) {
        cJSON_AddStringToObject(m, "op", op);
        cJSON_AddStringToObject(m, "role", h->primary ? "primary" : "backup");
        cJSON_AddStringToObject(m, "state", ggi_ha_state_name(st));
        cJSON_AddBoolToObject(m, "synced", synced);
        cJSON_AddNumberToObject(m, "seq", (double)seq);
        cJSON_AddStringToObject(m, "instance", h->instance);
    }
    return frame_new(m, NULL, 0, len);
}

static char *small_frame(const char *op, int64_t seq, const char *why, size_t *len)
{
    cJSON *m = cJSON_CreateObject();
    if (m) {
        cJSON_AddStringToObject(m, "op", op);
        cJSON_AddNumberToObject(m, "seq", (double)seq);
        if (why)
            cJSON_AddStringToObject(m, "why", why);
    }
    return frame_new(m, NULL, 0, len);
}

/* ---------------------------------------------------------------- the active side */

/* A page set's frame, made once on the committing thread: the queue keeps it as it is sent
 * (a copy fewer than a frame made at each send). NULL: out of memory. */
static qitem *pages_item(int64_t seq, const void *data, size_t n)
{
    char hdr[128], sum[17];
    ggi_ha_sum(data, n, sum);
    int hl = snprintf(hdr, sizeof hdr, "{\"op\":\"pages\",\"seq\":%lld,\"sum\":\"%s\"}",
                      (long long)seq, sum);
    qitem *q = malloc(sizeof *q + MAGIC_LEN + (size_t)hl + 1 + n);
    if (!q)
        return NULL;
    q->next = NULL;
    q->seq = seq;
    q->n = MAGIC_LEN + (size_t)hl + 1 + n;
    memcpy(q->data, MAGIC, MAGIC_LEN);
    memcpy(q->data + MAGIC_LEN, hdr, (size_t)hl + 1);
    memcpy(q->data + MAGIC_LEN + hl + 1, data, n);
    return q;
}

void ggi_ha_ship(void *user, int64_t seq, const void *cs, size_t n)
{
    ggi_ha *h = user;
    atomic_store(&h->committed, seq);
    pthread_mutex_lock(&h->mu);
    int wanted = cs && h->fsm.state == GGI_HA_ACTIVE && h->peer_alive;
    if (!cs && h->stream_ok) /* not captured (replica.c says why): a snapshot comes */
        detach(h, gg_error_last());
    pthread_mutex_unlock(&h->mu);
    if (!wanted)
        return;
    qitem *q = pages_item(seq, cs, n); /* outside the lock: the link thread sends meanwhile */
    pthread_mutex_lock(&h->mu);
    if (!q) {
        detach(h, "out of memory for the stream");
    } else if (h->qbytes + q->n > GGI_HA_QUEUE_MAX) {
        detach(h, "the backup fell too far behind");
        free(q);
    } else {
        if (h->qtail)
            h->qtail->next = q;
        else
            h->qhead = q;
        h->qtail = q;
        h->qbytes += q->n;
    }
    pthread_mutex_unlock(&h->mu);
}

int ggi_ha_acked(ggi_ha *h, int64_t seq)
{
    pthread_mutex_lock(&h->mu);
    int ok = !h->attached || h->acked >= seq;
    pthread_mutex_unlock(&h->mu);
    return ok;
}

void ggi_ha_wait_acked(ggi_ha *h, int64_t seq)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    double start = ggi_now_ms();
    while (h->attached && h->acked < seq && !atomic_load(&h->o->stopping)) {
        if (ggi_now_ms() - start > h->fsm.timeout_ms) {
            detach(h, "the backup did not ack in time");
            break;
        }
        struct timespec ts = ggi_timespec_in(CLOCK_MONOTONIC, 5);
        pthread_cond_timedwait(&h->cv, &h->mu, &ts);
    }
    pthread_mutex_unlock(&h->mu);
}

/* The host API's connection reads the file again rather than its cache (pages were written
 * under it). */
static void api_forget(ggi_ha *h)
{
    pthread_mutex_lock(&h->o->api_mu);
    sqlite3 *db = ggi_store_sqlite(h->o->api_store);
    if (db)
        sqlite3_db_release_memory(db);
    pthread_mutex_unlock(&h->o->api_mu);
}

int ggi_ha_become_active(ggi_ha *h)
{
    int n = 0, rc = GG_OK;
    ggi_replica_file_close(&h->rep);
    /* A replica left half-written (a crash mid-apply) never serves: it takes a snapshot. */
    if (ggi_replica_dirty(h->o->db_path))
        return ggi_error(GG_ESTATE, "ha: the database '%s' is a replica left half-written "
                         "(its '-hadirty' marker is there): it cannot serve; start this server "
                         "as the backup of the active one to take a snapshot", h->o->db_path);
    rc = ggi_store_reopen(h->o->sched_store);
    api_forget(h);
    if (rc == GG_OK)
        rc = ggi_store_recover(h->o->sched_store, &n);
    if (rc == GG_OK && n > 0)
        ggi_log(&h->o->log, GG_LOG_INFO, "ha: resuming %d task(s) the other server ran", n);
    if (rc == GG_OK)
        rc = ggi_replica_attach(h->o->sched_store, ggi_ha_ship, h);
    if (rc == GG_OK)
        atomic_store(&h->committed, ggi_replica_seq(h->o->sched_store));
    return rc;
}

/* Sends a snapshot of the database in chunks; the stream goes on after its sequence. */
static void send_snapshot(ggi_ha *h)
{
    void *img = NULL;
    size_t n = 0;
    int64_t seq = 0;
    if (ggi_replica_snapshot(h->o->db_path, &img, &n, &seq) != GG_OK) {
        ggi_log(&h->o->log, GG_LOG_ERROR, "ha: no snapshot for the backup: %s",
                gg_error_last());
        return;
    }
    int ok = 1;
    for (size_t off = 0; off < n && ok; off += GGI_HA_CHUNK) {
        size_t part = n - off < GGI_HA_CHUNK ? n - off : GGI_HA_CHUNK;
        cJSON *m = cJSON_CreateObject();
        if (m) {
            cJSON_AddStringToObject(m, "op", "snap");
            cJSON_AddNumberToObject(m, "seq", (double)seq);
            cJSON_AddNumberToObject(m, "off", (double)off);
            cJSON_AddNumberToObject(m, "total", (double)n);
        }
        size_t len = 0;
        char *f = frame_new(m, (const unsigned char *)img + off, part, &len);
        ok = f && h->o->transport.vt.peer_send(h->peer, f, len) == GG_OK;
        free(f);
    }
    ggi_replica_free_image(img);
    pthread_mutex_lock(&h->mu);
    if (ok) {
        h->stream_ok = 1;
        h->snap_seq = seq;
        h->sent = seq;
        ggi_log(&h->o->log, GG_LOG_INFO, "ha: sent the backup a snapshot at %lld (%zu bytes)",
                (long long)seq, n);
    }
    pthread_mutex_unlock(&h->mu);
}

/* Sends the page sets after the last one sent (the link thread). */
static void send_stream(ggi_ha *h)
{
    pthread_mutex_lock(&h->mu);
    for (qitem *q = h->qhead; q && h->stream_ok; q = q->next) {
        if (q->seq <= h->sent)
            continue;
        if (h->o->transport.vt.peer_send(h->peer, q->data, q->n) != GG_OK)
            break; /* sent again next round */
        h->sent = q->seq;
    }
    pthread_mutex_unlock(&h->mu);
}

/* An ack: the queue drops what it covers; the first after a snapshot attaches the backup. */
static void on_ack(ggi_ha *h, int64_t seq)
{
    pthread_mutex_lock(&h->mu);
    if (seq > h->acked)
        h->acked = seq;
    while (h->qhead && h->qhead->seq <= seq) {
        qitem *q = h->qhead;
        h->qhead = q->next;
        h->qbytes -= q->n;
        free(q);
    }
    if (!h->qhead)
        h->qtail = NULL;
    if (h->stream_ok && !h->attached && seq >= h->snap_seq) {
        h->attached = 1;
        ggi_log(&h->o->log, GG_LOG_INFO, "ha: the backup is attached at %lld",
                (long long)seq);
    }
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

/* One frame the peer answered on the link. */
static void on_link_frame(ggi_ha *h, const gg_transport_msg *msg)
{
    cJSON *hdr = NULL;
    const unsigned char *pl;
    size_t n;
    if (frame_parse(msg->data, msg->len, &hdr, &pl, &n) != GG_OK) {
        ggi_log(&h->o->log, GG_LOG_DEBUG, "ha: a malformed answer from the peer (%zu bytes)",
                msg->len);
        return;
    }
    const char *op = hdr_op(hdr);
    if (strcmp(op, "hb") == 0 || strcmp(op, "hb-reply") == 0) {
        peer_heard(h, hdr);
    } else if (strcmp(op, "ack") == 0) {
        on_ack(h, hdr_int(hdr, "seq"));
    } else if (strcmp(op, "nack") == 0) {
        /* A nack of a page set from before the current snapshot is stale: ZeroMQ delivers
         * what it queued while the backup was away once a new run of it connects, and that
         * run refuses them; the snapshot already covers them. */
        const char *why = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(hdr, "why"));
        int64_t seq = hdr_int(hdr, "seq");
        pthread_mutex_lock(&h->mu);
        if (!h->stream_ok || seq >= h->snap_seq)
            detach(h, why ? why : "the backup refused the stream");
        pthread_mutex_unlock(&h->mu);
    }
    cJSON_Delete(hdr);
}

static void *link_main(void *arg)
{
    ggi_ha *h = arg;
    gg_orchestrator_t *o = h->o;
    double last_hb = 0;
    while (!atomic_load(&h->stop)) {
        double now = ggi_now_ms();
        if (now - last_hb >= h->hb_ms) {
            size_t len = 0;
            char *f = hb_frame(h, "hb", &len);
            if (f)
                o->transport.vt.peer_send(h->peer, f, len);
            free(f);
            last_hb = now;
        }
        pthread_mutex_lock(&h->mu);
        if (h->peer_alive && now - h->fsm.peer_seen_ms > h->fsm.timeout_ms) {
            h->peer_alive = 0;
            ggi_log(&o->log, GG_LOG_WARN, "ha: the peer is silent (%s)",
                    ggi_ha_state_name(h->fsm.state));
            detach(h, "the backup is silent");
        }
        int active = h->fsm.state == GGI_HA_ACTIVE;
        int need_snap = active && h->peer_alive && !h->stream_ok &&
                        (h->peer_state == GGI_HA_PASSIVE || h->peer_state == GGI_HA_BACKUP);
        int busy = active && h->peer_alive;
        pthread_mutex_unlock(&h->mu);
        if (need_snap)
            send_snapshot(h);
        if (busy)
            send_stream(h);
        gg_transport_msg msg;
        memset(&msg, 0, sizeof msg);
        int rc = o->transport.vt.peer_recv(h->peer, busy ? 1 : (int)h->hb_ms / 4, &msg);
        while (rc == GG_OK) {
            on_link_frame(h, &msg);
            memset(&msg, 0, sizeof msg);
            rc = o->transport.vt.peer_recv(h->peer, 0, &msg);
        }
    }
    return NULL;
}

int ggi_ha_start(ggi_ha *h)
{
    int rc = h->o->transport.vt.peer_open(h->o->transport.self, h->peer_ep, &h->peer);
    if (rc != GG_OK)
        return ggi_error_wrap("ha: the peer link: ");
    if (pthread_create(&h->thread, NULL, link_main, h) != 0) {
        h->o->transport.vt.close(h->peer);
        h->peer = NULL;
        return ggi_error(GG_EIO, "ha: cannot start the peer link's thread");
    }
    h->started = 1;
    return GG_OK;
}

void ggi_ha_destroy(ggi_ha **ph)
{
    if (!ph || !*ph)
        return;
    ggi_ha *h = *ph;
    atomic_store(&h->stop, 1);
    if (h->started)
        pthread_join(h->thread, NULL);
    if (h->peer)
        h->o->transport.vt.close(h->peer);
    clear_queue(h);
    ggi_replica_file_close(&h->rep);
    free(h->in_buf);
    free(h->peer_ep);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h);
    *ph = NULL;
}

/* ---------------------------------------------------------------- the passive side */

static void hub_reply(ggi_ha *h, const gg_transport_msg *to, char *f, size_t len)
{
    if (f && h->o->transport.vt.hub_send(h->o->hub, to->peer, to->peer_len, f, len) != GG_OK)
        ggi_log(&h->o->log, GG_LOG_DEBUG, "ha: cannot answer the peer: %s", gg_error_last());
    free(f);
}

static void nack(ggi_ha *h, const gg_transport_msg *to, int64_t seq, const char *why)
{
    size_t len = 0;
    ggi_log(&h->o->log, GG_LOG_WARN, "ha: refusing the stream at %lld: %s", (long long)seq,
            why);
    char *f_ = small_frame("nack", seq, why, &len);
    hub_reply(h, to, f_, len);
}

/* Checks the group of page sets written (the sequence read back through SQLite), clears
 * the replica's dirty mark and acks its last one. */
static void flush_group(ggi_ha *h)
{
    if (!h->group_n)
        return;
    h->group_n = 0;
    size_t len = 0;
    pthread_mutex_lock(&h->o->api_mu);
    int rc = ggi_replica_file_sync(h->rep);
    sqlite3 *api = ggi_store_sqlite(h->o->api_store);
    if (api)
        sqlite3_db_release_memory(api);
    pthread_mutex_unlock(&h->o->api_mu);
    if (rc == GG_OK) {
        char *f = small_frame("ack", h->group_last, NULL, &len);
        hub_reply(h, &h->group_to, f, len);
        return;
    }
    char why[300];
    snprintf(why, sizeof why, "%s", gg_error_last());
    pthread_mutex_lock(&h->mu);
    h->fsm.synced = 0;
    pthread_mutex_unlock(&h->mu);
    nack(h, &h->group_to, h->group_last, why);
}

/* A page set joins the group being written (the page sets that arrive together, checked
 * and acked at once: flush_group). */
static void on_pages(ggi_ha *h, const gg_transport_msg *msg, int64_t seq,
                     const unsigned char *pl, size_t n)
{
    size_t len = 0;
    pthread_mutex_lock(&h->mu);
    int ok = h->fsm.state != GGI_HA_ACTIVE && h->fsm.synced && h->rep;
    pthread_mutex_unlock(&h->mu);
    if (!ok) {
        nack(h, msg, seq, "not a synced standby");
        return;
    }
    pthread_mutex_lock(&h->o->api_mu);
    int rc = ggi_replica_file_apply(h->rep, seq, pl, n);
    pthread_mutex_unlock(&h->o->api_mu);
    if (rc == GG_OK) {
        h->group_n++;
        h->group_last = seq;
        memcpy(h->group_to.peer, msg->peer, msg->peer_len);
        h->group_to.peer_len = msg->peer_len;
        return;
    }
    if (rc == GG_EEXIST && h->group_n == 0) {
        char *f = small_frame("ack", ggi_replica_file_seq(h->rep), NULL, &len);
        hub_reply(h, msg, f, len);
        return;
    }
    char why[300];
    snprintf(why, sizeof why, "%s", gg_error_last());
    flush_group(h); /* the page sets before it in the group are written: checked and acked */
    pthread_mutex_lock(&h->mu);
    h->fsm.synced = 0; /* out of step: only a snapshot brings it back */
    pthread_mutex_unlock(&h->mu);
    nack(h, msg, seq, why);
}

/* The first snapshot: the scheduler's connection lets go of the file, which is written
 * from now on (replica.h). */
static int open_replica(ggi_ha *h)
{
    if (h->rep)
        return GG_OK;
    if (ggi_store_sqlite(h->o->sched_store) && ggi_store_release(h->o->sched_store) != GG_OK)
        return ggi_error_wrap("releasing the database for the replica: ");
    return ggi_replica_file_open(h->o->db_path, &h->rep);
}

static void on_snapshot_chunk(ggi_ha *h, const gg_transport_msg *msg, const cJSON *hdr,
                              const unsigned char *pl, size_t n)
{
    int64_t seq = hdr_int(hdr, "seq"), off = hdr_int(hdr, "off"), total = hdr_int(hdr, "total");
    pthread_mutex_lock(&h->mu);
    int active = h->fsm.state == GGI_HA_ACTIVE;
    pthread_mutex_unlock(&h->mu);
    if (active) {
        nack(h, msg, seq, "this server is active");
        return;
    }
    if (seq < 0 || total <= 0 || (unsigned long long)total > GGI_REPLICA_MAX_SNAPSHOT ||
        off < 0 || off + (int64_t)n > total) {
        nack(h, msg, seq, "a snapshot chunk out of bounds");
        return;
    }
    if (off == 0) {
        free(h->in_buf);
        h->in_buf = malloc((size_t)total);
        h->in_len = 0;
        h->in_total = (size_t)total;
        h->in_seq = seq;
        if (!h->in_buf) {
            nack(h, msg, seq, "out of memory for the snapshot");
            return;
        }
    }
    if (!h->in_buf || (size_t)off != h->in_len || seq != h->in_seq ||
        (size_t)total != h->in_total) {
        nack(h, msg, seq, "a snapshot chunk out of order");
        free(h->in_buf);
        h->in_buf = NULL;
        return;
    }
    memcpy(h->in_buf + h->in_len, pl, n);
    h->in_len += n;
    if (h->in_len < h->in_total)
        return;
    int64_t at = 0;
    int rc = open_replica(h);
    if (rc == GG_OK) {
        pthread_mutex_lock(&h->o->api_mu);
        rc = ggi_replica_file_restore(h->rep, h->in_buf, h->in_len, &at);
        sqlite3 *api = ggi_store_sqlite(h->o->api_store);
        if (api)
            sqlite3_db_release_memory(api);
        pthread_mutex_unlock(&h->o->api_mu);
    }
    free(h->in_buf);
    h->in_buf = NULL;
    if (rc != GG_OK || at != seq) {
        nack(h, msg, seq, rc != GG_OK ? gg_error_last() : "the snapshot is not at its seq");
        return;
    }
    pthread_mutex_lock(&h->mu);
    h->fsm.synced = 1;
    pthread_mutex_unlock(&h->mu);
    ggi_log(&h->o->log, GG_LOG_INFO, "ha: replica restored from a snapshot at %lld",
            (long long)seq);
    size_t len = 0;
    char *f_ = small_frame("ack", seq, NULL, &len);
    hub_reply(h, msg, f_, len);
}

static int peer_role_ok(const char *role)
{
    return !role[0] || strcmp(role, "admin") == 0 || strcmp(role, "local") == 0;
}

void ggi_ha_on_hub_frame(ggi_ha *h, const gg_transport_msg *msg)
{
    if (!peer_role_ok(msg->role)) {
        ggi_log(&h->o->log, GG_LOG_WARN, "ha: dropping a peer frame from role '%s' (only an "
                "admin key may be the peer)", msg->role);
        atomic_fetch_add(&h->o->n_dropped, 1);
        return;
    }
    cJSON *hdr = NULL;
    const unsigned char *pl;
    size_t n;
    int prc = frame_parse(msg->data, msg->len, &hdr, &pl, &n);
    if (prc == GG_ECANCELLED) {
        pthread_mutex_lock(&h->mu);
        if (h->fsm.state != GGI_HA_ACTIVE && strcmp(hdr_op(hdr), "pages") == 0)
            h->fsm.synced = 0; /* a page set is lost: only a snapshot brings it back */
        pthread_mutex_unlock(&h->mu);
        nack(h, msg, hdr_int(hdr, "seq"), "the payload does not match its sum (damaged)");
        cJSON_Delete(hdr);
        return;
    }
    if (prc != GG_OK) {
        atomic_fetch_add(&h->o->n_dropped, 1);
        ggi_log(&h->o->log, GG_LOG_WARN, "ha: dropping a malformed peer frame (%zu bytes)",
                msg->len);
        return;
    }
    const char *op = hdr_op(hdr);
    if (strcmp(op, "hb") == 0) {
        peer_heard(h, hdr);
        size_t len = 0;
        char *f_ = hb_frame(h, "hb-reply", &len);
    hub_reply(h, msg, f_, len);
    } else if (strcmp(op, "pages") == 0) {
        on_pages(h, msg, hdr_int(hdr, "seq"), pl, n);
    } else if (strcmp(op, "snap") == 0) {
        on_snapshot_chunk(h, msg, hdr, pl, n);
    } else {
        atomic_fetch_add(&h->o->n_dropped, 1);
    }
    cJSON_Delete(hdr);
}

/* The passive answer to a hello or request (rid 0 for a hello). */
static void reply_passive(ggi_ha *h, const gg_transport_msg *msg, long long rid)
{
    char text[200];
    pthread_mutex_lock(&h->mu);
    snprintf(text, sizeof text, "passive: this orchestrator is the standby (%s); the "
             "active one is at its peer", ggi_ha_state_name(h->fsm.state));
    pthread_mutex_unlock(&h->mu);
    cJSON *m = ggp_build_reply_error(rid, GG_ESTATE, text);
    size_t len = 0;
    char *t = m ? ggp_print(m, &len) : NULL;
    cJSON_Delete(m);
    if (t)
        h->o->transport.vt.hub_send(h->o->hub, msg->peer, msg->peer_len, t, len);
    free(t);
}

static gg_transport_msg *copy_msg(const gg_transport_msg *m)
{
    gg_transport_msg *c = malloc(sizeof *c + m->len);
    if (!c)
        return NULL;
    *c = *m;
    memcpy((unsigned char *)(c + 1), m->data, m->len);
    c->data = c + 1;
    return c;
}

void ggi_ha_free_msg(gg_transport_msg *m)
{
    free(m);
}

/* A ggp/1 message while not active: a hello or request is a client turning here. Returns
 * 1 when it made this server active (*first: a copy of it). */
static int passive_message(ggi_ha *h, const gg_transport_msg *msg, gg_transport_msg **first)
{
    ggp_msg m = { GGP_UNKNOWN, NULL };
    if (ggp_decode(msg->data, msg->len, &m) != GG_OK)
        return 0;
    int rc = 0;
    if (m.type == GGP_WAKE) {
        atomic_store(&h->o->wake_pending, 0);
    } else if (m.type == GGP_HELLO || (ggp_type_class(m.type) & GGP_CLASS_CLIENT)) {
        long long rid = 0;
        if (m.type != GGP_HELLO &&
            ggi_json_int(m.body, "rid", 1, 0, (1LL << 53), &rid) != GG_OK)
            rid = -1;
        char why[160];
        pthread_mutex_lock(&h->mu);
        int serve = ggi_ha_fsm_step(&h->fsm, GGI_HA_CLIENT, 0, ggi_now_ms(), why, sizeof why);
        pthread_mutex_unlock(&h->mu);
        log_change(h, why);
        if (serve) {
            *first = copy_msg(msg);
            rc = 1;
        } else if (rid >= 0) {
            reply_passive(h, msg, rid);
        }
    }
    ggp_msg_free(&m);
    return rc;
}

/* A page set's frame, by its header's start as frame_new writes it (one that does not look
 * so is handled after the group is checked: the order stays). */
static int is_pages_frame(const gg_transport_msg *m)
{
    static const char start[] = "{\"op\":\"pages\"";
    return m->len > MAGIC_LEN + sizeof start - 1 &&
           memcmp((const char *)m->data + MAGIC_LEN, start, sizeof start - 1) == 0;
}

int ggi_ha_passive_loop(ggi_ha *h, gg_transport_msg **first)
{
    *first = NULL;
    gg_orchestrator_t *o = h->o;
    while (!atomic_load(&o->stopping)) {
        if (!h->group_n && ggi_ha_is_active(h))
            return 1;
        gg_transport_msg msg;
        memset(&msg, 0, sizeof msg);
        /* With page sets written and not checked, only what is already there joins. */
        int rc = o->transport.vt.hub_recv(o->hub, h->group_n ? 0 : 20, &msg);
        if (rc != GG_OK) {
            flush_group(h);
            continue;
        }
        if (!ggi_ha_is_frame(msg.data, msg.len) || !is_pages_frame(&msg) ||
            h->group_n >= 256)
            flush_group(h);
        if (ggi_ha_is_frame(msg.data, msg.len))
            ggi_ha_on_hub_frame(h, &msg);
        else if (passive_message(h, &msg, first))
            return 1;
    }
    flush_group(h);
    return 0;
}
