/*
 * protocol_stream.c - the hot paths of ggp/1, written as text without a tree: the jobs the
 * hub streams to a worker, the results a worker streams back and the hub's fast reader of
 * them, and the events the hub sends watchers with the in-process client's fast reader.
 *
 * The invariant between the results writer and the fast reader (fuzz_protocol checks both
 * halves on every input):
 *   1. what ggp_encode_results_begin/_add/_end write, from items ggp_encode_result wrote
 *      for a job the decoder accepted (its lease printable ASCII without '"' or '\\', as the
 *      hub's leases are) and a record ggi_json_write printed, ggp_results_scan accepts; and
 *   2. ggp_results_scan accepts nothing ggp_decode refuses, and gives the same results
 *      (lease, seq, n, record) ggp_decode's tree holds.
 * Anything else the scanner leaves (GG_ENOTFOUND) to the full decoder, which reads it or
 * says why it is bad: the scanner only ever makes a valid message cheaper.
 */
#include <stdlib.h>
#include <string.h>

#include "protocol.h"

_Static_assert(GGP_VERSION == 1, "the envelopes below say version 1");

static const char results_head[] = "{\"ggp\":1,\"t\":\"results\",\"results\":[";
static const char jobs_head[] = "{\"ggp\":1,\"t\":\"jobs\",\"jobs\":[";
static const char event_head[] = "{\"ggp\":1,\"t\":\"event\",\"event\":";

/* ---------------------------------------------------------------- jobs, written */

/* Appends v in decimal: printf's machinery cost more than the rest of a job. */
static int put_u64(ggi_buf *b, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return ggi_buf_append(b, tmp + i, sizeof tmp - i);
}

/* Appends ,"key":VALUE. */
static int put_field(ggi_buf *b, const char *key, const cJSON *v)
{
    int rc = ggi_buf_puts(b, ",\"");
    rc = rc ? rc : ggi_buf_puts(b, key);
    rc = rc ? rc : ggi_buf_puts(b, "\":");
    return rc ? rc : ggi_json_write(b, v);
}

int ggp_encode_jobs_begin(ggi_buf *b)
{
    return ggi_buf_append(b, jobs_head, sizeof jobs_head - 1);
}

int ggp_encode_jobs_add(ggi_buf *b, int first, const ggp_job_out *j)
{
    size_t mark = b->len;
    int rc = first ? GG_OK : ggi_buf_puts(b, ",");
    rc = rc ? rc : ggi_buf_puts(b, "{\"lease\":\"");
    rc = rc ? rc : ggi_buf_puts(b, j->lease);
    rc = rc ? rc : ggi_buf_puts(b, "\",\"seq\":");
    rc = rc ? rc : put_u64(b, (uint64_t)j->seq);
    rc = rc ? rc : ggi_buf_puts(b, ",\"n\":");
    rc = rc ? rc : put_u64(b, (uint64_t)j->n);
    rc = rc ? rc : ggi_buf_puts(b, ",\"task\":");
    rc = rc ? rc : ggi_buf_puts(b, j->task);
    /* feedback and demote are left out while empty, strategy while absent */
    if (!rc && cJSON_GetArraySize(j->feedback) > 0)
        rc = put_field(b, "feedback", j->feedback);
    if (!rc && j->strategy)
        rc = put_field(b, "strategy", j->strategy);
    if (!rc && cJSON_GetArraySize(j->demote) > 0)
        rc = put_field(b, "demote", j->demote);
    rc = rc ? rc : ggi_buf_puts(b, "}");
    if (rc) {
        b->len = mark; /* no partial job */
        if (b->data)
            b->data[mark] = 0;
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    return GG_OK;
}

int ggp_encode_jobs_end(ggi_buf *b)
{
    int rc = ggi_buf_puts(b, "]}");
    if (rc == GG_OK && b->len > GGP_MAX_MESSAGE)
        rc = ggi_error(GG_ETOOBIG, "a jobs message of %zu bytes exceeds the limit", b->len);
    return rc;
}

/* ---------------------------------------------------------------- events */

char *ggp_encode_event(const char *event, size_t len, size_t *out_len)
{
    size_t n = sizeof event_head - 1;
    char *m = malloc(n + len + 2);
    if (!m)
        return NULL;
    memcpy(m, event_head, n);
    memcpy(m + n, event, len);
    m[n + len] = '}';
    m[n + len + 1] = 0;
    if (out_len)
        *out_len = n + len + 1;
    return m;
}

int ggp_event_peek(const void *data, size_t len, const char **event, size_t *event_len)
{
    size_t n = sizeof event_head - 1;
    const char *d = data;
    if (!d || len < n + 3 || memcmp(d, event_head, n) != 0 || d[n] != '{' ||
        d[len - 1] != '}' || d[len - 2] != '}')
        return 0;
    *event = d + n;
    *event_len = len - n - 1;
    return 1;
}

/* ---------------------------------------------------------------- results, written */

int ggp_encode_result(ggi_buf *b, const cJSON *job, const cJSON *record)
{
    /* What ggi_json_write prints for {"lease","seq","n" copied from job, "record"}, without
     * copying them into a tree first; a field job lacks is left out as the tree would. */
    static const char *const keys[] = { "lease", "seq", "n", "record" };
    size_t mark = b->len;
    int rc = ggi_buf_puts(b, "{"), any = 0;
    for (size_t i = 0; !rc && i < sizeof keys / sizeof keys[0]; i++) {
        const cJSON *v = i < 3 ? cJSON_GetObjectItemCaseSensitive(job, keys[i]) : record;
        if (!v)
            continue;
        rc = ggi_buf_puts(b, any ? ",\"" : "\"");
        rc = rc ? rc : ggi_buf_puts(b, keys[i]);
        rc = rc ? rc : ggi_buf_puts(b, "\":");
        rc = rc ? rc : ggi_json_write(b, v);
        any = 1;
    }
    rc = rc ? rc : ggi_buf_puts(b, "}");
    if (rc) {
        b->len = mark;
        if (b->data)
            b->data[mark] = 0;
    }
    return rc;
}

int ggp_encode_results_begin(ggi_buf *b)
{
    b->len = 0;
    return ggi_buf_append(b, results_head, sizeof results_head - 1);
}

int ggp_encode_results_add(ggi_buf *b, int first, const char *item, size_t len)
{
    /* room for the comma and the closing "]}" */
    if (b->len + len + 3 > GGP_MAX_MESSAGE)
        return GG_ETOOBIG;
    int rc = first ? GG_OK : ggi_buf_append(b, ",", 1);
    return rc ? rc : ggi_buf_append(b, item, len);
}

int ggp_encode_results_end(ggi_buf *b)
{
    return ggi_buf_append(b, "]}", 2);
}

/* ---------------------------------------------------------------- results, fast */

/* Matches the literal lit at *p (within end); moves past it. */
static int eat(const char **p, const char *end, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(end - *p) < n || memcmp(*p, lit, n) != 0)
        return 0;
    *p += n;
    return 1;
}

/* A JSON integer from lo to hi written as plain digits (no sign, fraction or exponent, no
 * leading zero). */
static int eat_int(const char **p, const char *end, int64_t lo, int64_t hi, int64_t *out)
{
    const char *q = *p;
    int64_t v = 0;
    if (q >= end || *q < '1' || *q > '9')
        return 0;
    while (q < end && *q >= '0' && *q <= '9') {
        if (q - *p >= 16)
            return 0; /* beyond 2^53 anyway */
        v = v * 10 + (*q - '0');
        q++;
    }
    if (v < lo || v > hi)
        return 0;
    *out = v;
    *p = q;
    return 1;
}

void ggp_results_free(ggp_result *v, int n)
{
    for (int i = 0; v && i < n; i++)
        cJSON_Delete(v[i].record);
    free(v);
}

int ggp_results_scan(const void *data, size_t len, ggp_result **out, int *n)
{
    *out = NULL;
    *n = 0;
    if (!data || len == 0 || len > GGP_MAX_MESSAGE)
        return GG_ENOTFOUND;
    const char *p = data, *end = p + len;
    if (!eat(&p, end, results_head))
        return GG_ENOTFOUND;
    ggp_result *v = NULL;
    int count = 0, cap = 0, rc = GG_ENOTFOUND;
    for (;;) {
        if (count == GGP_MAX_BATCH)
            goto out;
        if (count == cap) {
            int ncap = cap ? cap * 2 : 64;
            ggp_result *q = realloc(v, (size_t)ncap * sizeof *q);
            if (!q) {
                rc = GG_ENOMEM;
                goto out;
            }
            v = q;
            cap = ncap;
        }
        ggp_result *r = &v[count];
        memset(r, 0, sizeof *r);
        if (!eat(&p, end, "{\"lease\":\""))
            goto out;
        size_t l = 0;
        while (p < end && *p != '"') {
            unsigned char c = (unsigned char)*p;
            if (c < 0x20 || c >= 0x80 || c == '\\' || l == sizeof r->lease - 1)
                goto out; /* escapes, control or non-ASCII bytes (perhaps not UTF-8), too
                           * long: the general decoder decides */
            r->lease[l++] = (char)c;
            p++;
        }
        int64_t x = 0;
        if (l == 0 || !eat(&p, end, "\",\"seq\":") || !eat_int(&p, end, 1, 1LL << 53, &r->seq) ||
            !eat(&p, end, ",\"n\":") || !eat_int(&p, end, 1, 1000, &x) ||
            !eat(&p, end, ",\"record\":") || p >= end || *p != '{')
            goto out;
        r->n = (int)x;
        const char *rec_end = NULL;
        r->record = cJSON_ParseWithLengthOpts(p, (size_t)(end - p), &rec_end, 0);
        count++; /* owned by v now */
        if (!r->record || !cJSON_IsObject(r->record) || !rec_end || rec_end <= p ||
            rec_end > end)
            goto out;
        r->text = p;
        r->len = (size_t)(rec_end - p);
        /* Kept as it came only when it has no control bytes (cJSON takes them raw inside
         * strings, JSON and SQLite's json() do not; printed again they are escaped). */
        for (const char *q = p; q < rec_end; q++)
            if ((unsigned char)*q < 0x20)
                goto out;
        /* Nor a NUL escape or bytes that are not UTF-8: the decoder refuses those. */
        if (ggi_json_check_strings(p, (size_t)(rec_end - p), NULL, 0) != GG_OK)
            goto out;
        p = rec_end;
        if (!eat(&p, end, "}"))
            goto out;
        if (eat(&p, end, ","))
            continue;
        if (eat(&p, end, "]}") && p == end) {
            *out = v;
            *n = count;
            return GG_OK;
        }
        goto out;
    }
out:
    ggp_results_free(v, count);
    return rc;
}
