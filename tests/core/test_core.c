/*
 * test_core.c - error recording, buffers, JSON field access and version functions.
 */
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

int main(void)
{
    test_errors();
    test_buf();
    test_json();
    test_hash();
    return test_exit();
}
