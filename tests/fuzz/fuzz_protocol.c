/*
 * fuzz_protocol.c - libFuzzer target for the ggp/1 codec (lib/orchestrator/protocol*.c),
 * both ways. Decoding: any message bytes must decode or be refused with an error, never
 * crash, leak or hit undefined behaviour; a message that decodes is printed and decoded
 * again, which must give the same type; what the fast results reader (ggp_results_scan)
 * accepts, the decoder must accept with the same results. Encoding: the same bytes also
 * drive a generator of valid messages (every builder, the jobs and results streams, the
 * event message), and each is encoded, decoded and compared field by field; the results
 * the worker's writer emits the fast reader must accept (protocol_stream.c's invariant),
 * and the event the hub writes the client's fast reader must give back unchanged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/ggi.h"
#include "orchestrator/protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether two trees print the same (cJSON_Compare finds an object with a repeated key
 * unequal even to itself). */
static int same_tree(const cJSON *a, const cJSON *b)
{
    char *x = cJSON_PrintUnformatted(a), *y = cJSON_PrintUnformatted(b);
    int same = x && y && strcmp(x, y) == 0;
    cJSON_free(x);
    cJSON_free(y);
    return same;
}

/* What ggp_results_scan accepts, ggp_decode accepts too, with the same results. */
static void same_results(const uint8_t *data, size_t size)
{
    ggp_result *v = NULL;
    int nv = 0;
    if (ggp_results_scan(data, size, &v, &nv) != GG_OK)
        return;
    ggp_msg m;
    if (ggp_decode(data, size, &m) != GG_OK || m.type != GGP_RESULTS)
        __builtin_trap();
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(m.body, "results"), *r;
    int i = 0;
    cJSON_ArrayForEach(r, a)
    {
        if (i >= nv ||
            strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "lease")),
                   v[i].lease) != 0 ||
            cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(r, "seq")) != (double)v[i].seq ||
            cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(r, "n")) != (double)v[i].n ||
            !same_tree(cJSON_GetObjectItemCaseSensitive(r, "record"), v[i].record))
            __builtin_trap();
        cJSON *again = cJSON_ParseWithLength(v[i].text, v[i].len);
        if (!again || !same_tree(again, v[i].record))
            __builtin_trap();
        cJSON_Delete(again);
        i++;
    }
    if (i != nv)
        __builtin_trap();
    ggp_msg_free(&m);
    ggp_results_free(v, nv);
}

/* ---------------------------------------------------------------- valid messages, made */

/* The fuzzer's bytes as a source of choices (zeros once they run out). */
typedef struct src {
    const uint8_t *d;
    size_t n, i;
} src;

static unsigned pick(src *s, unsigned range)
{
    unsigned v = s->i < s->n ? s->d[s->i++] : 0;
    if (range > 256 && s->i < s->n)
        v = v << 8 | s->d[s->i++];
    return range ? v % range : 0;
}

static int64_t pick_int(src *s, int64_t lo, int64_t hi)
{
    uint64_t v = 0;
    for (int k = 0; k < 7; k++)
        v = v << 8 | pick(s, 256);
    return lo + (int64_t)(v % (uint64_t)(hi - lo + 1));
}

/* A string of up to max bytes a peer may send: ASCII (quotes, backslashes and control
 * characters among it, which the writer escapes) and two- and three-byte UTF-8. */
static void pick_text(src *s, char *out, size_t max)
{
    static const char *const bits[] = { "a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\x01",
                                        "\x1f", "\x7f", "\xc3\xa9", "\xe2\x82\xac", "-", "." };
    size_t len = 0, want = pick(s, (unsigned)max + 1);
    while (len < want) {
        const char *b = bits[pick(s, sizeof bits / sizeof bits[0])];
        size_t bl = strlen(b);
        if (len + bl > want)
            break;
        memcpy(out + len, b, bl);
        len += bl;
    }
    out[len] = 0;
}

/* A lease as the hub writes them: lowercase hex. */
static void pick_lease(src *s, char out[65])
{
    size_t len = 1 + pick(s, 64);
    for (size_t i = 0; i < len; i++)
        out[i] = "0123456789abcdef"[pick(s, 16)];
    out[len] = 0;
}

static cJSON *pick_value(src *s, int depth);

/* An object of up to 4 members of depth at most depth. */
static cJSON *pick_object(src *s, int depth)
{
    char key[16];
    cJSON *o = cJSON_CreateObject();
    for (unsigned i = pick(s, 5); o && i > 0; i--) {
        pick_text(s, key, 12);
        if (!cJSON_GetObjectItemCaseSensitive(o, key)) /* a repeated key prints twice */
            cJSON_AddItemToObject(o, key, pick_value(s, depth - 1));
    }
    return o;
}

/* A JSON value of depth at most depth: what a task, a record or an event may hold. */
static cJSON *pick_value(src *s, int depth)
{
    char text[48];
    switch (pick(s, depth > 0 ? 7 : 5)) {
    case 0: return cJSON_CreateNull();
    case 1: return cJSON_CreateBool(pick(s, 2));
    case 2: return cJSON_CreateNumber((double)pick_int(s, -(1LL << 53), 1LL << 53));
    case 3: return cJSON_CreateNumber((double)pick_int(s, -1000000, 1000000) / 64.0);
    case 4: pick_text(s, text, 40); return cJSON_CreateString(text);
    case 5: {
        cJSON *a = cJSON_CreateArray();
        for (unsigned i = pick(s, 4); a && i > 0; i--)
            cJSON_AddItemToArray(a, pick_value(s, depth - 1));
        return a;
    }
    default: return pick_object(s, depth);
    }
}

/* Prints m (taken; NULL is a failure: nothing here runs out of memory), decodes it and
 * hands the decoded message back; traps when the codec refuses its own message. */
static ggp_msg roundtrip(cJSON *m, ggp_type t)
{
    size_t len = 0;
    char *text = m ? ggp_print(m, &len) : NULL;
    cJSON_Delete(m);
    ggp_msg d;
    if (!text || ggp_decode(text, len, &d) != GG_OK || d.type != t)
        __builtin_trap();
    free(text);
    return d;
}

static void same_str(const cJSON *o, const char *key, const char *want)
{
    const char *got = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
    if (!got || strcmp(got, want) != 0)
        __builtin_trap();
}

static void same_num(const cJSON *o, const char *key, double want)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || v->valuedouble != want)
        __builtin_trap();
}

/* One message of each builder, with fields from s, round trips with the same fields. */
static void builders_roundtrip(src *s)
{
    char name[GGP_MAX_NAME + 1], text[200];
    pick_text(s, name, 40);
    long long rid = pick_int(s, 0, 1LL << 53);
    ggp_msg d;
    switch (pick(s, 11)) {
    case 0:
        d = roundtrip(ggp_build_hello_client(name), GGP_HELLO);
        same_str(d.body, "role", "client");
        same_str(d.body, "name", name);
        break;
    case 1: {
        int slots = (int)pick_int(s, 1, 1024), queue = (int)pick_int(s, 0, 100000);
        cJSON *caps = cJSON_CreateObject();
        cJSON_AddNumberToObject(caps, "cores", (double)pick_int(s, 0, 1 << 20));
        d = roundtrip(ggp_build_hello_worker(name, slots, queue, caps), GGP_HELLO);
        same_str(d.body, "role", "worker");
        same_num(d.body, "slots", slots);
        same_num(d.body, "queue", queue);
        if (!same_tree(cJSON_GetObjectItemCaseSensitive(d.body, "caps"), caps))
            __builtin_trap();
        cJSON_Delete(caps);
        break;
    }
    case 2: {
        int hb = (int)pick_int(s, 10, 600000), with_node = pick(s, 2);
        d = roundtrip(ggp_build_welcome(hb, with_node ? name : NULL), GGP_WELCOME);
        same_num(d.body, "version", GGP_VERSION);
        same_num(d.body, "hb_ms", hb);
        if (with_node)
            same_str(d.body, "node", name);
        break;
    }
    case 3:
        pick_text(s, text, sizeof text - 1);
        d = roundtrip(ggp_build_reset(text), GGP_RESET);
        same_str(d.body, "reason", text);
        break;
    case 4: {
        int ok = pick(s, 2);
        d = roundtrip(ggp_build_reply(rid, ok), GGP_REPLY);
        same_num(d.body, "rid", (double)rid);
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d.body, "ok")) != ok)
            __builtin_trap();
        break;
    }
    case 5: {
        int code = -(int)pick_int(s, 1, 1000);
        pick_text(s, text, sizeof text - 1);
        d = roundtrip(ggp_build_reply_error(rid, code, text), GGP_REPLY);
        same_num(d.body, "code", code);
        same_str(d.body, "message", text);
        break;
    }
    case 6: {
        cJSON *tasks = cJSON_CreateArray();
        for (unsigned i = 1 + pick(s, 3); i > 0; i--)
            cJSON_AddItemToArray(tasks, pick_object(s, 3));
        cJSON *copy = cJSON_Duplicate(tasks, 1), *m = ggp_build_submit(tasks);
        ggp_set_rid(m, rid);
        d = roundtrip(m, GGP_SUBMIT);
        if (!same_tree(cJSON_GetObjectItemCaseSensitive(d.body, "tasks"), copy))
            __builtin_trap();
        cJSON_Delete(copy);
        break;
    }
    case 7: {
        cJSON *m = pick(s, 2) ? ggp_build_wait(name) : ggp_build_status(name);
        ggp_type t = strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "t")),
                            "wait") == 0 ? GGP_WAIT : GGP_STATUS;
        ggp_set_rid(m, rid);
        d = roundtrip(m, t);
        same_str(d.body, "id", name);
        same_num(d.body, "rid", (double)rid);
        break;
    }
    case 8: {
        long long seq = pick(s, 2) ? pick_int(s, 1, 1LL << 53) : 0;
        d = roundtrip(ggp_build_cancel(name, seq), GGP_CANCEL);
        same_str(d.body, "id", name);
        if (seq)
            same_num(d.body, "seq", (double)seq);
        else if (cJSON_GetObjectItemCaseSensitive(d.body, "seq"))
            __builtin_trap();
        break;
    }
    case 9: {
        cJSON *leases = cJSON_CreateArray();
        for (unsigned i = 1 + pick(s, 4); i > 0; i--) {
            char lease[65];
            pick_lease(s, lease);
            cJSON_AddItemToArray(leases, cJSON_CreateString(lease));
        }
        cJSON *copy = cJSON_Duplicate(leases, 1);
        int with_reason = pick(s, 2);
        pick_text(s, text, sizeof text - 1);
        d = roundtrip(ggp_build_abort(leases, with_reason ? text : NULL), GGP_ABORT);
        if (!same_tree(cJSON_GetObjectItemCaseSensitive(d.body, "leases"), copy))
            __builtin_trap();
        if (with_reason)
            same_str(d.body, "reason", text);
        cJSON_Delete(copy);
        break;
    }
    default: {
        cJSON *types = cJSON_CreateArray();
        for (unsigned i = pick(s, 3); i > 0; i--) {
            pick_text(s, text, 20);
            cJSON_AddItemToArray(types, cJSON_CreateString(text));
        }
        cJSON *m = ggp_build_watch(types);
        ggp_set_rid(m, rid);
        d = roundtrip(m, GGP_WATCH);
        if (!same_tree(cJSON_GetObjectItemCaseSensitive(d.body, "types"), types))
            __builtin_trap();
        cJSON_Delete(types);
        break;
    }
    }
    ggp_msg_free(&d);
}

/* A jobs message of up to 8 jobs decodes with each job's fields. */
static void jobs_roundtrip(src *s)
{
    enum { MAXJ = 8 };
    char lease[MAXJ][65];
    char *task[MAXJ];
    cJSON *fb[MAXJ];
    int64_t seq[MAXJ];
    int n[MAXJ], count = 1 + (int)pick(s, MAXJ);
    ggi_buf b = GGI_BUF_INIT;
    if (ggp_encode_jobs_begin(&b) != GG_OK)
        __builtin_trap();
    for (int i = 0; i < count; i++) {
        pick_lease(s, lease[i]);
        seq[i] = pick_int(s, 1, 1LL << 53);
        n[i] = (int)pick_int(s, 1, 1000);
        cJSON *t = pick_object(s, 3);
        task[i] = ggi_json_print(t);
        cJSON_Delete(t);
        fb[i] = cJSON_CreateArray();
        for (unsigned k = pick(s, 3); k > 0; k--)
            cJSON_AddItemToArray(fb[i], pick_object(s, 3));
        ggp_job_out j = { lease[i], seq[i], n[i], task[i], fb[i], NULL, NULL };
        if (!task[i] || ggp_encode_jobs_add(&b, i == 0, &j) != GG_OK)
            __builtin_trap();
    }
    ggp_msg d;
    if (ggp_encode_jobs_end(&b) != GG_OK || ggp_decode(b.data, b.len, &d) != GG_OK ||
        d.type != GGP_JOBS)
        __builtin_trap();
    const cJSON *j;
    int i = 0;
    cJSON_ArrayForEach(j, cJSON_GetObjectItemCaseSensitive(d.body, "jobs"))
    {
        if (i >= count)
            __builtin_trap();
        same_str(j, "lease", lease[i]);
        same_num(j, "seq", (double)seq[i]);
        same_num(j, "n", n[i]);
        cJSON *t = cJSON_Parse(task[i]);
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, "feedback");
        if (!same_tree(cJSON_GetObjectItemCaseSensitive(j, "task"), t) ||
            (cJSON_GetArraySize(fb[i]) ? !same_tree(f, fb[i]) : f != NULL))
            __builtin_trap();
        cJSON_Delete(t);
        i++;
    }
    if (i != count)
        __builtin_trap();
    for (i = 0; i < count; i++) {
        free(task[i]);
        cJSON_Delete(fb[i]);
    }
    ggp_msg_free(&d);
    ggi_buf_free(&b);
}

/* The worker's results writer and the hub's fast reader: what one writes the other reads,
 * with the same fields (and same_results holds the decoder to the same). */
static void results_roundtrip(src *s)
{
    enum { MAXR = 8 };
    cJSON *job[MAXR], *rec[MAXR];
    int count = 1 + (int)pick(s, MAXR);
    ggi_buf out = GGI_BUF_INIT, item = GGI_BUF_INIT;
    if (ggp_encode_results_begin(&out) != GG_OK)
        __builtin_trap();
    for (int i = 0; i < count; i++) {
        char lease[65];
        pick_lease(s, lease);
        job[i] = cJSON_CreateObject();
        cJSON_AddStringToObject(job[i], "lease", lease);
        cJSON_AddNumberToObject(job[i], "seq", (double)pick_int(s, 1, 1LL << 53));
        cJSON_AddNumberToObject(job[i], "n", (double)pick_int(s, 1, 1000));
        rec[i] = pick_object(s, 3);
        item.len = 0;
        if (ggp_encode_result(&item, job[i], rec[i]) != GG_OK ||
            ggp_encode_results_add(&out, i == 0, item.data, item.len) != GG_OK)
            __builtin_trap();
    }
    if (ggp_encode_results_end(&out) != GG_OK)
        __builtin_trap();
    ggp_result *v = NULL;
    int nv = 0;
    if (ggp_results_scan(out.data, out.len, &v, &nv) != GG_OK || nv != count)
        __builtin_trap();
    for (int i = 0; i < count; i++) {
        if (strcmp(v[i].lease, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(job[i], "lease"))) != 0 ||
            (double)v[i].seq != cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(job[i], "seq")) ||
            (double)v[i].n != cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(job[i], "n")) ||
            !same_tree(v[i].record, rec[i]))
            __builtin_trap();
        cJSON_Delete(job[i]);
        cJSON_Delete(rec[i]);
    }
    ggp_results_free(v, nv);
    same_results((const uint8_t *)out.data, out.len);
    ggi_buf_free(&out);
    ggi_buf_free(&item);
}

/* The hub's event message: the in-process client's fast reader gives the event's text back
 * as written, and the decoder the same event. */
static void event_roundtrip(src *s)
{
    cJSON *ev = pick_object(s, 3);
    char *text = ggi_json_print(ev);
    size_t len = 0, elen = 0;
    char *m = text ? ggp_encode_event(text, strlen(text), &len) : NULL;
    const char *got = NULL;
    ggp_msg d;
    if (!m || !ggp_event_peek(m, len, &got, &elen) || elen != strlen(text) ||
        memcmp(got, text, elen) != 0 || ggp_decode(m, len, &d) != GG_OK || d.type != GGP_EVENT ||
        !same_tree(cJSON_GetObjectItemCaseSensitive(d.body, "event"), ev))
        __builtin_trap();
    ggp_msg_free(&d);
    free(m);
    free(text);
    cJSON_Delete(ev);
}

static void encode_roundtrips(const uint8_t *data, size_t size)
{
    src s = { data, size, 0 };
    builders_roundtrip(&s);
    jobs_roundtrip(&s);
    results_roundtrip(&s);
    event_roundtrip(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    encode_roundtrips(data, size);
    same_results(data, size);
    ggp_msg m;
    if (ggp_decode(data, size, &m) != GG_OK)
        return 0;
    (void)ggp_type_name(m.type);
    (void)ggp_type_class(m.type);
    size_t n = 0;
    char *text = ggp_print(m.body, &n);
    if (text) {
        ggp_msg again;
        if (ggp_decode(text, n, &again) != GG_OK || again.type != m.type)
            __builtin_trap();
        ggp_msg_free(&again);
        free(text);
    }
    ggp_msg_free(&m);
    return 0;
}
