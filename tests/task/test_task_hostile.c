/*
 * test_task_hostile.c - JSON from outside that tries to slip past the task reader and the
 * JSON layer: an escaped NUL (\u0000) or a raw NUL byte inside a string (cJSON's strings end
 * at the first NUL, so a test would be cut short and its later assertions never run), bytes
 * that are not UTF-8 (they would be echoed into results that are then not JSON), nesting
 * deeper than the parser takes; and the writer's side: whatever bytes a string holds, the
 * JSON written is valid UTF-8 and parses back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gryphgen.h>

#include "core/ggi.h"
#include "core/task.h"
#include "orchestrator/protocol.h"
#include "testutil.h"

/* Parses len bytes of json as a task, which must fail with want; returns the message. */
static const char *task_fail(const char *json, size_t len, int want)
{
    ggi_task *t = (ggi_task *)1;
    int rc = ggi_task_parse(json, len, &t);
    CHECK(rc == want);
    CHECK(t == NULL);
    if (rc != want)
        fprintf(stderr, "  for %.200s: got %d (%s)\n", json, rc, gg_error_last());
    if (rc == 0) {
        if (t && t->test)
            fprintf(stderr, "  accepted; test is %zu bytes: '%s'\n", strlen(t->test), t->test);
        ggi_task_free(t);
    }
    return gg_error_last();
}

static void test_escaped_nul(void)
{
    /* the assertion after the NUL must never be dropped silently */
    const char *j = "{\"task_id\":\"nul\",\"language\":\"python\",\"entry_point\":\"f\","
                    "\"test\":\"def check(c):\\n    x = '\\u0000'\\n    assert c() == 1\\n\"}";
    const char *msg = task_fail(j, strlen(j), GG_EINVAL);
    CHECK_CONTAINS(msg, "task 'nul': ");
    CHECK_CONTAINS(msg, "field 'test'");
    CHECK_CONTAINS(msg, "NUL");

    /* in a candidate: the path says which one */
    j = "{\"task_id\":\"c\",\"language\":\"c\",\"candidates\":[\"int x;\",\"a\\u0000b\"]}";
    msg = task_fail(j, strlen(j), GG_EINVAL);
    CHECK_CONTAINS(msg, "field 'candidates[1]'");

    /* in the id itself: the message does not name the cut id as the task */
    j = "{\"task_id\":\"a\\u0000b\",\"language\":\"c\"}";
    msg = task_fail(j, strlen(j), GG_EINVAL);
    CHECK_CONTAINS(msg, "field 'task_id'");
    CHECK(strstr(msg, "task 'a'") == NULL);

    /* in an unknown field or a nested key: still refused, with the path */
    j = "{\"language\":\"c\",\"meta\":{\"x\":[1,\"\\u0000\"]}}";
    msg = task_fail(j, strlen(j), GG_EINVAL);
    CHECK_CONTAINS(msg, "field 'meta.x[1]'");
    j = "{\"language\":\"c\",\"requirements\":{\"labels\":{\"a\\u0000b\":\"x\"}}}";
    msg = task_fail(j, strlen(j), GG_EINVAL);
    CHECK_CONTAINS(msg, "requirements.labels");

    /* a raw NUL byte inside a string (within the length given) */
    char raw[] = "{\"language\":\"python\",\"test\":\"assert 1\\nX assert 0\\n\"}";
    char *x = strchr(raw, 'X');
    *x = '\0';
    msg = task_fail(raw, sizeof raw - 1, GG_EINVAL);
    CHECK_CONTAINS(msg, "field 'test'");
    CHECK_CONTAINS(msg, "NUL");
}

static void test_not_nul(void)
{
    /* an escaped backslash before "u0000" is text, not a NUL; other escapes are fine */
    const char *j = "{\"task_id\":\"ok\",\"language\":\"python\","
                    "\"test\":\"s = '\\\\u0000'\\nassert len(s) == 6\\n\\u00e9\\ud83d\\ude00\"}";
    ggi_task *t = NULL;
    CHECK_RC(ggi_task_parse(j, strlen(j), &t), 0);
    if (t) {
        CHECK_STR(t->test, "s = '\\u0000'\nassert len(s) == 6\n\xc3\xa9\xf0\x9f\x98\x80");
        ggi_task_free(t);
    }
    /* valid UTF-8 of every length passes */
    j = "{\"task_id\":\"caf\xc3\xa9-\xe2\x82\xac-\xf0\x9f\x98\x80\",\"language\":\"c\"}";
    t = NULL;
    CHECK_RC(ggi_task_parse(j, strlen(j), &t), 0);
    if (t) {
        CHECK_STR(t->task_id, "caf\xc3\xa9-\xe2\x82\xac-\xf0\x9f\x98\x80");
        ggi_task_free(t);
    }
}

static void test_bad_utf8(void)
{
    const char *j = "{\"task_id\":\"id-\xff\xfe\",\"language\":\"c\"}";
    const char *msg = task_fail(j, strlen(j), GG_EINVAL);
    CHECK_CONTAINS(msg, "field 'task_id'");
    CHECK_CONTAINS(msg, "UTF-8");

    j = "{\"task_id\":\"u\",\"language\":\"python\",\"prompt\":\"x\xc3\"}"; /* cut short */
    msg = task_fail(j, strlen(j), GG_EINVAL);
    CHECK_CONTAINS(msg, "task 'u': ");
    CHECK_CONTAINS(msg, "field 'prompt'");
    CHECK_CONTAINS(msg, "UTF-8");

    /* overlong, surrogate, beyond U+10FFFF, stray continuation */
    static const char *const bad[] = { "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                       "\x80", "\xe2\x82", "\xf8\x88\x80\x80\x80" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char buf[128];
        snprintf(buf, sizeof buf, "{\"language\":\"c\",\"stub\":\"a%sb\"}", bad[i]);
        msg = task_fail(buf, strlen(buf), GG_EINVAL);
        CHECK_CONTAINS(msg, "field 'stub'");
    }
}

static void test_too_deep(void)
{
    size_t depth = 5000, n = 0;
    char *j = malloc(2 * depth + 64);
    n += (size_t)sprintf(j, "{\"language\":\"c\",\"meta\":");
    for (size_t i = 0; i < depth; i++)
        j[n++] = '[';
    for (size_t i = 0; i < depth; i++)
        j[n++] = ']';
    j[n++] = '}';
    j[n] = '\0';
    const char *msg = task_fail(j, n, GG_EINVAL);
    CHECK_CONTAINS(msg, "nested too deeply");
    CHECK_CONTAINS(msg, "limit 1000");
    CHECK(strstr(msg, "malformed") == NULL);
    /* really malformed text still says so */
    msg = task_fail("{\"language\":", 12, GG_EINVAL);
    CHECK_CONTAINS(msg, "malformed");
    /* just within the limit parses */
    cJSON *v = NULL;
    n = 0;
    for (size_t i = 0; i < 1000; i++)
        j[n++] = '[';
    for (size_t i = 0; i < 1000; i++)
        j[n++] = ']';
    CHECK_RC(ggi_json_parse(j, n, &v), 0);
    cJSON_Delete(v);
    free(j);
}

/* The JSON layer refuses the same for every caller (protocol messages, generator replies). */
static void test_json_parse(void)
{
    cJSON *v = (cJSON *)1;
    const char *j = "{\"ggp\":1,\"t\":\"hello\",\"name\":\"w\\u0000x\"}";
    CHECK_RC(ggi_json_parse(j, strlen(j), &v), GG_EINVAL);
    CHECK(v == NULL);
    CHECK_CONTAINS(gg_error_last(), "field 'name'");
    j = "[\"ok\",{\"a\":{\"b\\u00e9\":\"\xff\"}}]";
    CHECK_RC(ggi_json_parse(j, strlen(j), &v), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "field '[1].a.b");
    j = "\"\\u0000\"";
    CHECK_RC(ggi_json_parse(j, strlen(j), &v), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "NUL");
    /* a NUL after the value (a C string's terminator counted in) is still fine */
    CHECK_RC(ggi_json_parse("{\"a\":\"b\"}", 10, &v), 0);
    cJSON_Delete(v);
}

/* Protocol messages: the decoder refuses them, and the fast reader of results messages (which
 * keeps each record as the worker's text) leaves them to the decoder rather than take them. */
static void test_protocol(void)
{
    static const char *const records[] = {
        "{\"passed\":true,\"code\":\"x = 1\\u0000assert 0\"}",
        "{\"passed\":true,\"code\":\"x = '\xff\xfe'\"}",
    };
    for (size_t i = 0; i < 2; i++) {
        char msg[512];
        snprintf(msg, sizeof msg,
                 "{\"ggp\":1,\"t\":\"results\",\"results\":[{\"lease\":\"L1\",\"seq\":1,"
                 "\"n\":1,\"record\":%s}]}", records[i]);
        ggp_result *v = NULL;
        int n = 0;
        CHECK_RC(ggp_results_scan(msg, strlen(msg), &v, &n), GG_ENOTFOUND);
        ggp_results_free(v, n);
        ggp_msg m;
        CHECK_RC(ggp_decode(msg, strlen(msg), &m), GG_EINVAL);
        CHECK_CONTAINS(gg_error_last(), "field 'results[0].record.code'");
    }
    /* the same message without them is read by both */
    const char *ok = "{\"ggp\":1,\"t\":\"results\",\"results\":[{\"lease\":\"L1\",\"seq\":1,"
                     "\"n\":1,\"record\":{\"passed\":true,\"code\":\"caf\xc3\xa9\"}}]}";
    ggp_result *v = NULL;
    int n = 0;
    CHECK_RC(ggp_results_scan(ok, strlen(ok), &v, &n), 0);
    CHECK(n == 1);
    ggp_results_free(v, n);
    ggp_msg m;
    CHECK_RC(ggp_decode(ok, strlen(ok), &m), 0);
    ggp_msg_free(&m);
}

/* Whatever a string holds (program output cut anywhere), the written JSON parses back and
 * is valid UTF-8: invalid bytes become U+FFFD. */
static void test_write_invalid_utf8(void)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "stdout", "ok \xff\xfe caf\xc3\xa9 cut \xe2\x82");
    cJSON_AddStringToObject(o, "k\xc0", "v");
    char *s = ggi_json_print(o);
    CHECK(s != NULL);
    if (s) {
        cJSON *back = NULL;
        CHECK_RC(ggi_json_parse(s, strlen(s), &back), 0);
        const cJSON *out = cJSON_GetObjectItemCaseSensitive(back, "stdout");
        CHECK(cJSON_IsString(out));
        if (cJSON_IsString(out))
            CHECK_STR(out->valuestring,
                      "ok \xef\xbf\xbd\xef\xbf\xbd caf\xc3\xa9 cut \xef\xbf\xbd\xef\xbf\xbd");
        cJSON_Delete(back);
    }
    free(s);
    cJSON_Delete(o);
}

int main(void)
{
    test_escaped_nul();
    test_not_nul();
    test_bad_utf8();
    test_too_deep();
    test_json_parse();
    test_protocol();
    test_write_invalid_utf8();
    return test_exit();
}
