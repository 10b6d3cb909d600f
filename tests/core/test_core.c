/*
 * test_core.c - error recording, buffers, JSON field access and version functions; the
 * Thompson-sampling draws; the HTTP clients' reply buffer, retry waits and secret scrubbing.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gryphgen.h>

#include "core/ggi.h"
#include "testutil.h"

static void test_errors(void)
{
    gg_error_clear();
    CHECK_STR(gg_error_last(), "");
    CHECK(gg_error_last_code() == 0);
    CHECK(ggi_error(GG_EINVAL, "field '%s' bad", "x") == GG_EINVAL);
    CHECK_STR(gg_error_last(), "field 'x' bad");
    CHECK(ggi_error_wrap("line %d: ", 3) == GG_EINVAL);
    CHECK_STR(gg_error_last(), "line 3: field 'x' bad");
    CHECK(gg_error_set(GG_EEXEC, NULL) == GG_EEXEC);
    CHECK_STR(gg_error_last(), gg_strerror(GG_EEXEC));
    for (int c = 0; c >= GG_EINTERNAL; c--)
        CHECK(strcmp(gg_strerror(c), "unknown error") != 0);
    CHECK_STR(gg_strerror(-1000), "unknown error");
    CHECK(gg_version() == GG_VERSION_NUMBER);
    CHECK_STR(gg_version_string(), GG_VERSION_STRING);
    CHECK(gg_init() == GG_OK);
    CHECK_STR(gg_log_level_name(GG_LOG_INFO), "info");
    CHECK_STR(gg_log_level_name(42), "unknown");
    CHECK(gg_log_level_parse("debug") == GG_LOG_DEBUG);
    CHECK(gg_log_level_parse("loud") == GG_EINVAL);
    CHECK(gg_log_level_parse(NULL) == GG_EINVAL);
    char *s = gg_strdup("abc");
    CHECK_STR(s, "abc");
    gg_free(s);
    CHECK(gg_strdup(NULL) == NULL);
    gg_free(NULL);
}

static void test_buf(void)
{
    ggi_buf b = GGI_BUF_INIT;
    for (int i = 0; i < 1000; i++)
        CHECK(ggi_buf_printf(&b, "%d,", i) == 0);
    CHECK(b.len == strlen(b.data));
    CHECK(strncmp(b.data, "0,1,2,", 6) == 0);
    char *s = ggi_buf_steal(&b);
    CHECK(b.data == NULL && b.len == 0);
    free(s);
    s = ggi_buf_steal(&b);
    CHECK_STR(s, "");
    free(s);
    ggi_buf_free(&b);
}

static void test_json(void)
{
    cJSON *o = NULL;
    const char *txt = "{\"s\":\"hello\",\"n\":2.5,\"i\":7,\"b\":true,\"z\":null,\"bad\":[1]}";
    CHECK(ggi_json_parse(txt, strlen(txt), &o) == 0);
    const char *s = NULL;
    CHECK(ggi_json_string(o, "s", 1, 0, &s) == 0);
    CHECK_STR(s, "hello");
    CHECK(ggi_json_string(o, "s", 1, 3, &s) == GG_ETOOBIG);
    CHECK_CONTAINS(gg_error_last(), "'s' is 5 bytes");
    CHECK(ggi_json_string(o, "missing", 1, 0, &s) == GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "missing field 'missing'");
    CHECK(ggi_json_string(o, "missing", 0, 0, &s) == 0 && s == NULL);
    CHECK(ggi_json_string(o, "z", 0, 0, &s) == 0 && s == NULL);
    CHECK(ggi_json_string(o, "bad", 1, 0, &s) == GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "must be a string");
    double d = 0;
    CHECK(ggi_json_number(o, "n", 1, 0, 10, &d) == 0 && d == 2.5);
    CHECK(ggi_json_number(o, "n", 1, 3, 10, &d) == GG_EINVAL);
    long long i = 0;
    CHECK(ggi_json_int(o, "i", 1, 0, 10, &i) == 0 && i == 7);
    CHECK(ggi_json_int(o, "n", 1, 0, 10, &i) == GG_EINVAL);
    CHECK(ggi_json_int(o, "s", 1, 0, 10, &i) == GG_EINVAL);
    int b = 0;
    CHECK(ggi_json_bool(o, "b", 1, &b) == 0 && b == 1);
    CHECK(ggi_json_bool(o, "i", 1, &b) == GG_EINVAL);
    char *p = ggi_json_print(o);
    CHECK_CONTAINS(p, "\"s\":\"hello\"");
    free(p);
    cJSON_Delete(o);

    CHECK(ggi_json_parse("{\"a\":", 5, &o) == GG_EINVAL && o == NULL);
    CHECK_CONTAINS(gg_error_last(), "malformed JSON");
    CHECK(ggi_json_parse("{} x", 4, &o) == GG_EINVAL && o == NULL);
    CHECK(ggi_json_parse("{}  \n", 5, &o) == 0 && o != NULL);
    cJSON_Delete(o);
    CHECK(ggi_json_parse(NULL, 0, &o) == GG_EINVAL);
}

static void test_hash(void)
{
    char a[17], b[17];
    ggi_hash_hex("abc", 3, a);
    ggi_hash_hex("abd", 3, b);
    CHECK(strlen(a) == 16);
    CHECK(strcmp(a, b) != 0);
    ggi_hash_hex("abc", 3, b);
    CHECK_STR(a, b);
}

static void test_sampling(void)
{
    uint64_t a = 42, b = 42;
    CHECK(ggi_rand_next(&a) == ggi_rand_next(&b)); /* a seed gives one sequence */
    double sum = 0, lo = 1, hi = 0;
    for (int i = 0; i < 2000; i++) {
        double u = ggi_rand_uniform(&a);
        CHECK(u > 0 && u < 1);
        double x = ggi_rand_beta(&a, 9.0, 1.0); /* mean 0.9 */
        CHECK(x >= 0 && x <= 1);
        sum += x;
        lo = u < lo ? u : lo;
        hi = u > hi ? u : hi;
    }
    CHECK(sum / 2000 > 0.85 && sum / 2000 < 0.95);
    CHECK(lo < 0.05 && hi > 0.95);
    double bad = ggi_rand_beta(&a, 0.0, -3.0); /* shapes below 1 count as 1 */
    CHECK(bad >= 0 && bad <= 1);
}

static void test_http_reply(void)
{
    ggi_http_reply r = { GGI_BUF_INIT, 8, 0, -1 };
    char body[] = "0123456789";
    CHECK(ggi_http_reply_on_body(body, 1, 5, &r) == 5);
    CHECK(ggi_http_reply_on_body(body, 1, 5, &r) == 0); /* over the cap: stops */
    CHECK(r.too_big && r.body.len == 5);
    char h1[] = "Retry-After: 3\r\n", h2[] = "retry-after: Wed, 21 Oct 2015 07:28:00 GMT\r\n",
         h3[] = "Content-Type: x\r\n";
    CHECK(ggi_http_reply_on_header(h2, 1, strlen(h2), &r) == strlen(h2));
    CHECK(r.retry_after_s < 0); /* a date is not a number of seconds */
    ggi_http_reply_on_header(h3, 1, strlen(h3), &r);
    CHECK(r.retry_after_s < 0);
    ggi_http_reply_on_header(h1, 1, strlen(h1), &r);
    CHECK(r.retry_after_s == 3);
    ggi_http_reply_reset(&r);
    CHECK(r.body.len == 0 && !r.too_big && r.retry_after_s < 0 && r.cap == 8);

    uint64_t rng = 7;
    for (int attempt = 0; attempt < 12; attempt++) {
        double w = ggi_retry_wait_ms(attempt, 100, 2000, -1, 5, &rng);
        double d = 100.0 * (1 << attempt);
        d = d > 2000 ? 2000 : d;
        CHECK(w >= d / 2 && w <= d); /* backoff, capped, jitter in its upper half */
    }
    CHECK(ggi_retry_wait_ms(0, 100, 2000, 2.5, 5, &rng) == 2500);  /* Retry-After wins */
    CHECK(ggi_retry_wait_ms(0, 100, 2000, 600, 5, &rng) == 5000);  /* ... within its cap */

    char text[] = "key sk-secret-123456 and its tail ret-123456 end";
    ggi_scrub_secret(text, "sk-secret-123456");
    CHECK(strstr(text, "sk-secret") == NULL);
    CHECK(strstr(text, "123456") == NULL); /* an echoed piece of 8 bytes goes too */
    CHECK_CONTAINS(text, " end");
    ggi_scrub_secret(text, NULL);
    ggi_scrub_secret(NULL, "x");
}

/* The writer gives what cJSON reads back as the same tree, cJSON's own text where cJSON
 * prints the same way, and fails cleanly (buffer unchanged) on what cannot be written. */
static void test_json_write(void)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "s", "quote\" backslash\\ nl\n tab\t ctl\x01 utf8 \xc3\xa9 /");
    cJSON_AddNumberToObject(o, "i", 42);
    cJSON_AddNumberToObject(o, "neg", -7);
    cJSON_AddNumberToObject(o, "big", 9007199254740991.0);
    cJSON_AddNumberToObject(o, "huge", 1e300);
    cJSON_AddNumberToObject(o, "frac", 0.1);
    cJSON_AddNumberToObject(o, "third", 1.0 / 3.0);
    cJSON_AddNumberToObject(o, "tiny", -1.5e-7);
    cJSON_AddTrueToObject(o, "t");
    cJSON_AddFalseToObject(o, "f");
    cJSON_AddNullToObject(o, "n");
    cJSON_AddRawToObject(o, "raw", "[1,2]");
    cJSON *a = cJSON_AddArrayToObject(o, "a");
    cJSON_AddItemToArray(a, cJSON_CreateObject());
    cJSON_AddItemToArray(a, cJSON_CreateArray());
    cJSON_AddItemToArray(a, cJSON_CreateString(""));
    ggi_buf b = GGI_BUF_INIT;
    CHECK_RC(ggi_json_write(&b, o), 0);
    CHECK(b.data && strlen(b.data) == b.len);
    cJSON *back = b.data ? cJSON_Parse(b.data) : NULL;
    CHECK(back != NULL);
    /* The raw item reads back as the array it holds. */
    cJSON_ReplaceItemInObject(o, "raw", cJSON_Parse("[1,2]"));
    CHECK(cJSON_Compare(o, back, 1));
    cJSON_Delete(back);
    CHECK_CONTAINS(b.data, "\"i\":42,\"neg\":-7,\"big\":9007199254740991,");
    CHECK_CONTAINS(b.data, "ctl\\u0001");
    CHECK_CONTAINS(b.data, "\"a\":[{},[],\"\"]}");
    /* Without fractions it is cJSON's text, byte for byte. */
    cJSON *plain = cJSON_Parse("{\"k\":[1,-2,\"x\\n\",true,null,{\"z\":false}],\"e\":{}}");
    char *theirs = cJSON_PrintUnformatted(plain);
    b.len = 0;
    CHECK_RC(ggi_json_write(&b, plain), 0);
    CHECK_STR(b.data, theirs);
    cJSON_free(theirs);
    cJSON_Delete(plain);
    /* Every double reads back exactly. */
    unsigned long long x = 88172645463325252ull;
    for (int i = 0; i < 2000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double d;
        memcpy(&d, &x, sizeof d);
        if (d != d || d - d != 0)
            continue; /* NaN and infinities are written as null */
        cJSON *num = cJSON_CreateNumber(d);
        b.len = 0;
        int ok = ggi_json_write(&b, num) == 0 && strtod(b.data, NULL) == d;
        if (!ok)
            printf("number %.17g written as %s\n", d, b.data ? b.data : "-");
        CHECK(ok);
        cJSON_Delete(num);
    }
    cJSON *nan = cJSON_CreateNumber(NAN);
    b.len = 0;
    CHECK_RC(ggi_json_write(&b, nan), 0);
    CHECK_STR(b.data, "null");
    cJSON_Delete(nan);
    /* Failures leave what was there. */
    b.len = 0;
    CHECK_RC(ggi_buf_puts(&b, "kept"), 0);
    cJSON *bad = cJSON_CreateRaw("x");
    free(bad->valuestring);
    bad->valuestring = NULL;
    CHECK_RC(ggi_json_write(&b, bad), GG_EINVAL);
    CHECK_STR(b.data, "kept");
    cJSON_Delete(bad);
    cJSON *deep = cJSON_CreateArray(), *cur = deep;
    for (int i = 0; i < 1100; i++) {
        cJSON *next = cJSON_CreateArray();
        cJSON_AddItemToArray(cur, next);
        cur = next;
    }
    CHECK_RC(ggi_json_write(&b, deep), GG_EINVAL);
    CHECK_STR(b.data, "kept");
    cJSON_Delete(deep);
    CHECK_RC(ggi_json_write(&b, NULL), GG_EINVAL);
    CHECK_RC(ggi_json_write(NULL, o), GG_EINVAL);
    /* A string alone, appended, escaped as cJSON would; NULL as "". */
    b.len = 0;
    CHECK_RC(ggi_json_write_string(&b, "a\"b\\c\n\x01"), 0);
    CHECK_STR(b.data, "\"a\\\"b\\\\c\\n\\u0001\"");
    cJSON *str = cJSON_Parse(b.data);
    CHECK(str && cJSON_IsString(str) && strcmp(str->valuestring, "a\"b\\c\n\x01") == 0);
    cJSON_Delete(str);
    CHECK_RC(ggi_json_write_string(&b, NULL), 0);
    CHECK(b.len >= 2 && strcmp(b.data + b.len - 2, "\"\"") == 0);
    CHECK_RC(ggi_json_write_string(NULL, "x"), GG_EINVAL);
    ggi_buf_free(&b);
    cJSON_Delete(o);
}

/* ggi_timespec_in: an absolute time ms ahead, normalised (0 <= tv_nsec < 1e9), never in the
 * past for a negative ms, whole seconds and fractions both carried. */
static void test_timespec_in(void)
{
    const double cases[] = {0, 0.5, 5, 999.999, 1000, 1500.25, 86400000.0, -20};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct timespec before, ts, after;
        clock_gettime(CLOCK_MONOTONIC, &before);
        ts = ggi_timespec_in(CLOCK_MONOTONIC, cases[i]);
        clock_gettime(CLOCK_MONOTONIC, &after);
        CHECK(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000L);
        double at = (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
        double lo = (double)before.tv_sec * 1e3 + (double)before.tv_nsec / 1e6;
        double hi = (double)after.tv_sec * 1e3 + (double)after.tv_nsec / 1e6;
        double ms = cases[i] < 0 ? 0 : cases[i];
        CHECK(at >= lo + ms - 0.001 && at <= hi + ms + 0.001);
    }
}

/* ggi_write_all: everything written through a pipe; a descriptor that cannot be written is
 * -1 with errno. */
static void test_write_all(void)
{
    int p[2];
    CHECK(pipe(p) == 0);
    static char big[40000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)('a' + i % 26);
    CHECK(ggi_write_all(p[1], big, sizeof big) == 0);
    close(p[1]);
    size_t got = 0;
    char buf[4096];
    ssize_t r;
    int same = 1;
    while ((r = read(p[0], buf, sizeof buf)) > 0) {
        same &= memcmp(buf, big + got, (size_t)r) == 0;
        got += (size_t)r;
    }
    close(p[0]);
    CHECK(got == sizeof big && same);
    CHECK(ggi_write_all(p[0], "x", 1) == -1 && errno == EBADF); /* (closed) */
    CHECK(ggi_write_all(-1, "", 0) == 0);                       /* nothing to write */
}

int main(void)
{
    test_write_all();
    test_timespec_in();
    test_sampling();
    test_http_reply();
    test_errors();
    test_buf();
    test_json();
    test_json_write();
    test_hash();
    return test_exit();
}
