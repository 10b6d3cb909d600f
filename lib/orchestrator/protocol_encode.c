/*
 * protocol_encode.c - ggp/1 messages written: the envelope, the texts of the messages without
 * fields, and one builder per message type that has fields (a cJSON tree the caller may add
 * optional fields to and prints with ggp_print). Every side (worker, client, hub, the
 * orchestrator's control socket) builds its messages here, so the type names and the
 * envelope are written in one place (tests/build/check_protocol_literals.sh keeps it so).
 * The streaming writers of the hot paths (jobs, results, events) are in protocol_stream.c.
 */
#include <stdlib.h>
#include <string.h>

#include "protocol.h"

_Static_assert(GGP_VERSION == 1, "the texts below say version 1");

cJSON *ggp_new(ggp_type t)
{
    cJSON *m = cJSON_CreateObject();
    if (!m)
        return NULL;
    if (!cJSON_AddNumberToObject(m, "ggp", GGP_VERSION) ||
        !cJSON_AddStringToObject(m, "t", ggp_type_name(t))) {
        cJSON_Delete(m);
        return NULL;
    }
    return m;
}

char *ggp_print(const cJSON *m, size_t *out_len)
{
    char *text = ggi_json_print(m);
    if (!text) {
        ggi_error(GG_ENOMEM, "out of memory printing a message");
        return NULL;
    }
    size_t n = strlen(text);
    if (n > GGP_MAX_MESSAGE) {
        free(text);
        ggi_error(GG_ETOOBIG, "message of %zu bytes exceeds the limit of %u", n,
                  GGP_MAX_MESSAGE);
        return NULL;
    }
    if (out_len)
        *out_len = n;
    return text;
}

int ggp_print_buf(const cJSON *item, ggi_buf *b)
{
    if (b->cap > (1u << 20)) {
        /* Grown for one large text: given back rather than kept for small ones. */
        free(b->data);
        b->data = NULL;
        b->cap = 0;
    }
    b->len = 0;
    if (b->data)
        b->data[0] = 0;
    int rc = ggi_json_write(b, item);
    if (rc != GG_OK)
        return rc == GG_ENOMEM ? ggi_error(GG_ENOMEM, "out of memory printing a message") : rc;
    if (b->len > GGP_MAX_MESSAGE) {
        size_t n = b->len;
        b->data[0] = 0;
        b->len = 0;
        return ggi_error(GG_ETOOBIG, "message of %zu bytes exceeds the limit of %u", n,
                         GGP_MAX_MESSAGE);
    }
    return GG_OK;
}

/* ---------------------------------------------------------------- messages without fields */

/* What ggp_print(ggp_new(t)) prints, kept as text: heartbeats go to every peer every
 * interval, and a wake for every submit. */
#define BARE(name) "{\"ggp\":1,\"t\":\"" name "\"}"
static const char bare_hb[] = BARE("hb"), bare_bye[] = BARE("bye"), bare_wake[] = BARE("wake"),
                  bare_reset[] = BARE("reset");
#undef BARE

const char *ggp_encode_bare(ggp_type t, size_t *len)
{
    const char *s;
    size_t n;
    switch (t) {
    case GGP_HB: s = bare_hb, n = sizeof bare_hb - 1; break;
    case GGP_BYE: s = bare_bye, n = sizeof bare_bye - 1; break;
    case GGP_WAKE: s = bare_wake, n = sizeof bare_wake - 1; break;
    case GGP_RESET: s = bare_reset, n = sizeof bare_reset - 1; break;
    default: return NULL;
    }
    if (len)
        *len = n;
    return s;
}

/* ---------------------------------------------------------------- builders */

/* m, or NULL (m freed) when ok is 0: the builders' one way out. */
static cJSON *done(cJSON *m, int ok)
{
    if (ok)
        return m;
    cJSON_Delete(m);
    return NULL;
}

static cJSON *hello(const char *role, const char *name)
{
    cJSON *m = ggp_new(GGP_HELLO);
    cJSON *v = m && cJSON_AddStringToObject(m, "role", role) &&
                       cJSON_AddStringToObject(m, "name", name ? name : "")
                   ? cJSON_AddArrayToObject(m, "versions")
                   : NULL;
    cJSON *n = v ? cJSON_CreateNumber(GGP_VERSION) : NULL;
    if (n && !cJSON_AddItemToArray(v, n)) {
        cJSON_Delete(n);
        n = NULL;
    }
    return done(m, n != NULL);
}

cJSON *ggp_build_hello_client(const char *name)
{
    return hello("client", name);
}

cJSON *ggp_build_hello_worker(const char *name, int slots, int queue, const cJSON *caps)
{
    cJSON *m = hello("worker", name);
    return done(m, m && cJSON_AddNumberToObject(m, "slots", slots) &&
                       cJSON_AddNumberToObject(m, "queue", queue) &&
                       (!caps || cJSON_AddItemReferenceToObject(m, "caps", (cJSON *)caps)));
}

int ggp_hello_add_resume(cJSON *hello, const char *instance, cJSON *leases)
{
    if (!hello || (instance && !cJSON_AddStringToObject(hello, "instance", instance))) {
        cJSON_Delete(leases);
        return GG_ENOMEM;
    }
    if (leases && !cJSON_AddItemToObject(hello, "leases", leases)) {
        cJSON_Delete(leases);
        return GG_ENOMEM;
    }
    return GG_OK;
}

cJSON *ggp_build_welcome(int hb_ms, const char *node)
{
    cJSON *m = ggp_new(GGP_WELCOME);
    return done(m, m && cJSON_AddNumberToObject(m, "version", GGP_VERSION) &&
                       cJSON_AddNumberToObject(m, "hb_ms", hb_ms) &&
                       (!node || cJSON_AddStringToObject(m, "node", node)));
}

cJSON *ggp_build_reset(const char *reason)
{
    cJSON *m = ggp_new(GGP_RESET);
    return done(m, m && (!reason || cJSON_AddStringToObject(m, "reason", reason)));
}

cJSON *ggp_build_reply(long long rid, int ok)
{
    cJSON *m = ggp_new(GGP_REPLY);
    return done(m, m && cJSON_AddNumberToObject(m, "rid", (double)rid) &&
                       cJSON_AddBoolToObject(m, "ok", ok));
}

cJSON *ggp_build_reply_error(long long rid, int code, const char *message)
{
    cJSON *m = ggp_build_reply(rid, 0);
    return done(m, m && cJSON_AddNumberToObject(m, "code", code) &&
                       cJSON_AddStringToObject(m, "message",
                                               message ? message : gg_strerror(code)));
}

cJSON *ggp_build_submit(cJSON *tasks)
{
    cJSON *m = tasks ? ggp_new(GGP_SUBMIT) : NULL;
    if (!m || !cJSON_AddItemToObject(m, "tasks", tasks)) {
        cJSON_Delete(tasks);
        cJSON_Delete(m);
        return NULL;
    }
    return m;
}

cJSON *ggp_build_wait(const char *id)
{
    cJSON *m = ggp_new(GGP_WAIT);
    return done(m, m && id && cJSON_AddStringToObject(m, "id", id));
}

cJSON *ggp_build_status(const char *id)
{
    cJSON *m = ggp_new(GGP_STATUS);
    return done(m, m && (!id || cJSON_AddStringToObject(m, "id", id)));
}

cJSON *ggp_build_cancel(const char *id, long long seq)
{
    cJSON *m = ggp_new(GGP_CANCEL);
    return done(m, m && id && (seq <= 0 || cJSON_AddNumberToObject(m, "seq", (double)seq)) &&
                       cJSON_AddStringToObject(m, "id", id));
}

cJSON *ggp_build_abort(cJSON *leases, const char *reason)
{
    cJSON *m = leases ? ggp_new(GGP_ABORT) : NULL;
    if (!m || !cJSON_AddItemToObject(m, "leases", leases)) {
        cJSON_Delete(leases);
        cJSON_Delete(m);
        return NULL;
    }
    return done(m, !reason || cJSON_AddStringToObject(m, "reason", reason));
}

cJSON *ggp_build_watch(const cJSON *types)
{
    cJSON *m = ggp_new(GGP_WATCH);
    return done(m, m && (!types || cJSON_AddItemReferenceToObject(m, "types", (cJSON *)types)));
}

int ggp_set_rid(cJSON *req, long long rid)
{
    cJSON_DeleteItemFromObjectCaseSensitive(req, "rid");
    return cJSON_AddNumberToObject(req, "rid", (double)rid) ? GG_OK : GG_ENOMEM;
}
