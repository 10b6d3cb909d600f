/*
 * protocol.c - ggp/1: the table of message types and the validating decoder. Every field a
 * type defines is checked here (presence, JSON type, range, size), so the scheduler, workers
 * and clients read decoded messages without further checks. The encoders are in
 * protocol_encode.c; the streaming writers and their fast readers in protocol_stream.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"

static const struct {
    const char *name;
    int cls;
} types[GGP_TYPE_COUNT_] = {
    [GGP_UNKNOWN] = { "?", 0 },
    [GGP_HELLO] = { "hello", GGP_CLASS_WORKER | GGP_CLASS_CLIENT },
    [GGP_HB] = { "hb", GGP_CLASS_WORKER | GGP_CLASS_HUB },
    [GGP_RESULTS] = { "results", GGP_CLASS_WORKER },
    [GGP_BYE] = { "bye", GGP_CLASS_WORKER },
    [GGP_SUBMIT] = { "submit", GGP_CLASS_CLIENT },
    [GGP_WAIT] = { "wait", GGP_CLASS_CLIENT },
    [GGP_STATUS] = { "status", GGP_CLASS_CLIENT },
    [GGP_CANCEL] = { "cancel", GGP_CLASS_CLIENT },
    [GGP_WATCH] = { "watch", GGP_CLASS_CLIENT },
    [GGP_WAKE] = { "wake", GGP_CLASS_CLIENT },
    [GGP_WELCOME] = { "welcome", GGP_CLASS_HUB },
    [GGP_JOBS] = { "jobs", GGP_CLASS_HUB },
    [GGP_RESET] = { "reset", GGP_CLASS_HUB },
    [GGP_REPLY] = { "reply", GGP_CLASS_HUB },
    [GGP_EVENT] = { "event", GGP_CLASS_HUB },
    [GGP_ABORT] = { "abort", GGP_CLASS_HUB },
};

const char *ggp_type_name(ggp_type t)
{
    return (unsigned)t < GGP_TYPE_COUNT_ ? types[t].name : "?";
}

int ggp_type_class(ggp_type t)
{
    return (unsigned)t < GGP_TYPE_COUNT_ ? types[t].cls : 0;
}

static ggp_type type_of(const char *name)
{
    for (int i = 1; i < GGP_TYPE_COUNT_; i++)
        if (strcmp(types[i].name, name) == 0)
            return (ggp_type)i;
    return GGP_UNKNOWN;
}

/* ---- field checks: each returns 0 or records what is wrong ---- */

static int need_array(const cJSON *obj, const char *key, int required, int max,
                      const cJSON **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v))
        return required ? ggi_error(GG_EINVAL, "missing field '%s'", key) : GG_OK;
    if (!cJSON_IsArray(v))
        return ggi_error(GG_EINVAL, "field '%s' must be an array", key);
    int n = cJSON_GetArraySize(v);
    if (n > max)
        return ggi_error(GG_ETOOBIG, "field '%s' has %d entries, the limit is %d", key, n, max);
    if (required && n == 0)
        return ggi_error(GG_EINVAL, "field '%s' must not be empty", key);
    *out = v;
    return GG_OK;
}

static int need_object(const cJSON *obj, const char *key, int required, const cJSON **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v))
        return required ? ggi_error(GG_EINVAL, "missing field '%s'", key) : GG_OK;
    if (!cJSON_IsObject(v))
        return ggi_error(GG_EINVAL, "field '%s' must be an object", key);
    *out = v;
    return GG_OK;
}

static int string_array(const cJSON *obj, const char *key, int max)
{
    const cJSON *a;
    int rc = need_array(obj, key, 0, max, &a);
    const cJSON *e;
    cJSON_ArrayForEach(e, a)
    {
        if (rc)
            break;
        if (!cJSON_IsString(e) || strlen(e->valuestring) > GGP_MAX_NAME)
            rc = ggi_error(GG_EINVAL, "field '%s' must hold strings of at most %d bytes", key,
                           GGP_MAX_NAME);
    }
    return rc;
}

static int check_caps(const cJSON *caps)
{
    long long x;
    const char *s;
    const cJSON *labels, *e;
    int rc = ggi_json_int(caps, "cores", 0, 0, 1 << 20, &x);
    rc = rc ? rc : ggi_json_int(caps, "memory_mb", 0, 0, 1LL << 40, &x);
    rc = rc ? rc : ggi_json_int(caps, "gpus", 0, 0, 1024, &x);
    rc = rc ? rc : ggi_json_string(caps, "gpu_model", 0, GGP_MAX_NAME, &s);
    rc = rc ? rc : string_array(caps, "runtimes", 64);
    rc = rc ? rc : string_array(caps, "deps", GGP_MAX_DEPS);
    rc = rc ? rc : string_array(caps, "executors", 64);
    rc = rc ? rc : string_array(caps, "isolation", 64);
    rc = rc ? rc : need_object(caps, "labels", 0, &labels);
    if (rc)
        return ggi_error_wrap("caps: ");
    int n = 0;
    cJSON_ArrayForEach(e, labels)
    {
        if (++n > GGP_MAX_LABELS)
            return ggi_error(GG_ETOOBIG, "caps: more than %d labels", GGP_MAX_LABELS);
        if (!e->string || strlen(e->string) > GGP_MAX_NAME || !cJSON_IsString(e) ||
            strlen(e->valuestring) > GGP_MAX_NAME)
            return ggi_error(GG_EINVAL, "caps: labels must map names to strings of at most %d "
                             "bytes", GGP_MAX_NAME);
    }
    int any = 0, stops = 0;
    rc = ggi_json_bool(caps, "any", 0, &any);
    return rc ? rc : ggi_json_bool(caps, "abort", 0, &stops);
}

static int check_lease_ref(const cJSON *o)
{
    const char *s;
    long long x;
    int rc = ggi_json_string(o, "lease", 1, 64, &s);
    rc = rc ? rc : ggi_json_int(o, "seq", 1, 1, (1LL << 53), &x);
    rc = rc ? rc : ggi_json_int(o, "n", 1, 1, 1000, &x);
    return rc;
}

static int check_items(const cJSON *body, const char *key, int (*check)(const cJSON *))
{
    const cJSON *a, *e;
    int rc = need_array(body, key, 1, GGP_MAX_BATCH, &a);
    int i = 0;
    cJSON_ArrayForEach(e, a)
    {
        if (rc)
            break;
        if (!cJSON_IsObject(e))
            rc = ggi_error(GG_EINVAL, "%s[%d] must be an object", key, i);
        else if ((rc = check(e)) != GG_OK)
            rc = ggi_error_wrap("%s[%d]: ", key, i);
        i++;
    }
    return rc;
}

static int check_result(const cJSON *r)
{
    const cJSON *rec;
    int rc = check_lease_ref(r);
    return rc ? rc : need_object(r, "record", 1, &rec);
}

static int check_job(const cJSON *j)
{
    const cJSON *x;
    int rc = check_lease_ref(j);
    rc = rc ? rc : need_object(j, "task", 1, &x);
    rc = rc ? rc : need_array(j, "feedback", 0, 1000, &x);
    return rc;
}

static int check_body(ggp_type t, const cJSON *b)
{
    long long x;
    const char *s;
    const cJSON *o;
    int rc = GG_OK, flag;
    switch (t) {
    case GGP_HELLO:
        rc = ggi_json_string(b, "role", 1, 16, &s);
        if (!rc && strcmp(s, "worker") != 0 && strcmp(s, "client") != 0)
            rc = ggi_error(GG_EINVAL, "field 'role' must be \"worker\" or \"client\"");
        flag = !rc && strcmp(s, "worker") == 0;
        rc = rc ? rc : ggi_json_string(b, "name", 0, GGP_MAX_NAME, &s);
        rc = rc ? rc : need_array(b, "versions", 1, 16, &o);
        if (!rc) {
            const cJSON *e;
            cJSON_ArrayForEach(e, o)
            {
                if (!cJSON_IsNumber(e) || e->valuedouble < 1 || e->valuedouble > 1000)
                    rc = ggi_error(GG_EINVAL, "field 'versions' must hold integers");
            }
        }
        if (!rc && flag) {
            rc = ggi_json_int(b, "slots", 1, 1, 1024, &x);
            rc = rc ? rc : ggi_json_int(b, "queue", 0, 0, 100000, &x);
            rc = rc ? rc : need_object(b, "caps", 0, &o);
            if (!rc && o)
                rc = check_caps(o);
        }
        break;
    case GGP_HB:
    case GGP_BYE:
    case GGP_WAKE:
        break;
    case GGP_RESULTS:
        rc = check_items(b, "results", check_result);
        break;
    case GGP_SUBMIT:
        /* Each task is read (and refused, by index) on its own: one entry that is not a
         * task object does not make the others wait. */
        rc = ggi_json_int(b, "rid", 1, 0, (1LL << 53), &x);
        rc = rc ? rc : need_array(b, "tasks", 1, GGP_MAX_BATCH, &o);
        break;
    case GGP_WAIT:
        rc = ggi_json_int(b, "rid", 1, 0, (1LL << 53), &x);
        rc = rc ? rc : ggi_json_string(b, "id", 1, 256, &s);
        break;
    case GGP_STATUS:
        rc = ggi_json_int(b, "rid", 1, 0, (1LL << 53), &x);
        rc = rc ? rc : ggi_json_string(b, "id", 0, 256, &s);
        break;
    case GGP_CANCEL:
        rc = ggi_json_int(b, "rid", 0, 0, (1LL << 53), &x);
        rc = rc ? rc : ggi_json_string(b, "id", 1, 256, &s);
        rc = rc ? rc : ggi_json_int(b, "seq", 0, 1, (1LL << 53), &x);
        break;
    case GGP_WATCH:
        rc = ggi_json_int(b, "rid", 1, 0, (1LL << 53), &x);
        break;
    case GGP_WELCOME:
        rc = ggi_json_int(b, "version", 1, 1, 1000, &x);
        rc = rc ? rc : ggi_json_int(b, "hb_ms", 1, 10, 600000, &x);
        break;
    case GGP_JOBS:
        rc = check_items(b, "jobs", check_job);
        break;
    case GGP_RESET:
        rc = ggi_json_string(b, "reason", 0, 1024, &s);
        break;
    case GGP_REPLY:
        rc = ggi_json_int(b, "rid", 1, 0, (1LL << 53), &x);
        rc = rc ? rc : ggi_json_bool(b, "ok", 1, &flag);
        rc = rc ? rc : ggi_json_int(b, "code", 0, -1000, 0, &x);
        rc = rc ? rc : ggi_json_string(b, "message", 0, 0, &s);
        break;
    case GGP_EVENT:
        rc = need_object(b, "event", 1, &o);
        break;
    case GGP_ABORT:
        rc = need_array(b, "leases", 1, GGP_MAX_BATCH, &o);
        if (!rc) {
            const cJSON *e;
            cJSON_ArrayForEach(e, o)
            {
                if (!rc && (!cJSON_IsString(e) || !e->valuestring[0] ||
                            strlen(e->valuestring) > 64))
                    rc = ggi_error(GG_EINVAL, "field 'leases' must hold lease ids (strings "
                                   "of 1 to 64 bytes)");
            }
        }
        rc = rc ? rc : ggi_json_string(b, "reason", 0, 1024, &s);
        break;
    default:
        rc = ggi_error(GG_EINVAL, "unknown message type");
    }
    return rc;
}

int ggp_decode(const void *data, size_t len, ggp_msg *out)
{
    out->type = GGP_UNKNOWN;
    out->body = NULL;
    if (!data || len == 0)
        return ggi_error(GG_EINVAL, "empty message");
    if (len > GGP_MAX_MESSAGE)
        return ggi_error(GG_ETOOBIG, "message of %zu bytes exceeds the limit of %u", len,
                         GGP_MAX_MESSAGE);
    cJSON *b = NULL;
    int rc = ggi_json_parse(data, len, &b);
    if (rc)
        return rc;
    if (!cJSON_IsObject(b)) {
        cJSON_Delete(b);
        return ggi_error(GG_EINVAL, "a message must be a JSON object");
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(b, "ggp");
    if (!cJSON_IsNumber(v)) {
        cJSON_Delete(b);
        return ggi_error(GG_EINVAL, "missing envelope field 'ggp'");
    }
    if (v->valuedouble != GGP_VERSION) {
        double seen = v->valuedouble;
        cJSON_Delete(b);
        return ggi_error(GG_EVERSION, "envelope version %g is not spoken here (ggp/%d)", seen,
                         GGP_VERSION);
    }
    const char *tname = NULL;
    if ((rc = ggi_json_string(b, "t", 1, 32, &tname)) != GG_OK) {
        cJSON_Delete(b);
        return rc;
    }
    ggp_type t = type_of(tname);
    if (t == GGP_UNKNOWN) {
        char shown[40];
        snprintf(shown, sizeof shown, "%s", tname);
        for (char *p = shown; *p; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
                *p = '?';
        cJSON_Delete(b);
        return ggi_error(GG_EINVAL, "unknown message type '%s'", shown);
    }
    if ((rc = check_body(t, b)) != GG_OK) {
        cJSON_Delete(b);
        return ggi_error_wrap("'%s' message: ", ggp_type_name(t));
    }
    out->type = t;
    out->body = b;
    return GG_OK;
}

void ggp_msg_free(ggp_msg *m)
{
    if (!m)
        return;
    cJSON_Delete(m->body);
    m->body = NULL;
    m->type = GGP_UNKNOWN;
}
