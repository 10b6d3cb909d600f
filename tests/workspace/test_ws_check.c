/*
 * test_ws_check.c - ggi_ws_check: every shape it accepts and every bad one it refuses, with
 * the field named in the message; the path rules of workspace files; the caps.
 */
#include "wstest.h"
#include "workspace/ws_internal.h"

static void expect(const char *text, int want, const char *needle)
{
    cJSON *j = js(text);
    int rc = ggi_ws_check(j);
    if (rc != want)
        fprintf(stderr, "for %s\n", text);
    CHECK_RC(rc, want);
    if (needle && want != GG_OK)
        CHECK_CONTAINS(gg_error_last(), needle);
    cJSON_Delete(j);
}

static void good_shapes(void)
{
    expect("{\"repo\": \"/tmp/x\"}", GG_OK, NULL);
    expect("{\"repo\": \"https://example.org/x.git\", \"ref\": \"v1.0\"}", GG_OK, NULL);
    expect("{\"dir\": \"some/dir\"}", GG_OK, NULL);
    expect("{\"files\": {}}", GG_OK, NULL);
    expect("{\"files\": {\"a.py\": \"x\", \"src/b.py\": \"y\", \"src/c/d.txt\": \"\"}}", GG_OK,
           NULL);
    expect("{\"repo\": \"/r\", \"commit\": \"0123456789abcdef0123456789abcdef01234567\", "
           "\"pack\": \"UEFDSw==\"}", GG_OK, NULL);
    expect("{\"files\": {\"...\": \"dots are a name\", \".github/x\": \"\", \".gitignore\": \"\"}}",
           GG_OK, NULL);
}

static void bad_shapes(void)
{
    expect("[]", GG_EINVAL, "'workspace'");
    expect("\"dir\"", GG_EINVAL, "'workspace'");
    expect("{}", GG_EINVAL, "exactly one of repo, dir or files");
    expect("{\"repo\": \"/r\", \"dir\": \"/d\"}", GG_EINVAL, "exactly one");
    expect("{\"repo\": \"\"}", GG_EINVAL, "'workspace.repo'");
    expect("{\"repo\": 3}", GG_EINVAL, "'workspace.repo'");
    expect("{\"dir\": null}", GG_EINVAL, "'workspace.dir'");
    expect("{\"dir\": \"/d\", \"ref\": \"main\"}", GG_EINVAL, "'workspace.ref' goes only");
    expect("{\"repo\": \"/r\", \"ref\": \"\"}", GG_EINVAL, "'workspace.ref'");
    expect("{\"repo\": \"/r\", \"ref\": 1}", GG_EINVAL, "'workspace.ref'");
    expect("{\"repo\": \"/r\", \"ref\": \"a\\nb\"}", GG_EINVAL, "control character");
    expect("{\"repo\": \"/r\", \"branch\": \"x\"}", GG_EINVAL, "'workspace.branch' is not known");
    expect("{\"repo\": \"/r\", \"repo\": \"/s\"}", GG_EINVAL, "given twice");
    expect("{\"files\": []}", GG_EINVAL, "'workspace.files'");
    expect("{\"files\": {\"a\": 1}}", GG_EINVAL, "must have a string");
    expect("{\"repo\": \"/r\", \"commit\": \"abc\"}", GG_EINVAL, "'workspace.commit'");
    expect("{\"repo\": \"/r\", \"commit\": \"0123456789ABCDEF0123456789abcdef01234567\"}",
           GG_EINVAL, "'workspace.commit'");
    expect("{\"repo\": \"/r\", \"pack\": \"UEFDSw==\"}", GG_EINVAL, "needs 'workspace.commit'");
    expect("{\"repo\": \"/r\", \"commit\": \"0123456789abcdef0123456789abcdef01234567\", "
           "\"pack\": \"not base64!\"}", GG_EINVAL, "not base64");
    expect("{\"repo\": \"/r\", \"commit\": \"0123456789abcdef0123456789abcdef01234567\", "
           "\"pack\": 7}", GG_EINVAL, "'workspace.pack'");
}

static void bad_paths(void)
{
    static const char *const paths[][2] = {
        {"../x", "leaves the workspace"},
        {"a/../../x", "leaves the workspace"},
        {"a/..", "leaves the workspace"},
        {"/abs", "is absolute"},
        {".git/config", ".git"},
        {"sub/.git/hooks/pre-commit", ".git"},
        {".GIT/config", ".git"},
        {"a//b", "empty component"},
        {"a/", "empty component"},
        {"./a", "'.' component"},
        {"a/./b", "'.' component"},
        {"", "is empty"},
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        cJSON *j = cJSON_CreateObject(), *f = cJSON_AddObjectToObject(j, "files");
        cJSON_AddStringToObject(f, paths[i][0], "content");
        CHECK_RC(ggi_ws_check(j), GG_EINVAL);
        CHECK_CONTAINS(gg_error_last(), "field 'workspace.files' path");
        CHECK_CONTAINS(gg_error_last(), paths[i][1]);
        cJSON_Delete(j);
    }
    /* Twice, and a file that is also a directory. */
    expect("{\"files\": {\"a\": \"1\", \"a\": \"2\"}}", GG_EINVAL, "given twice");
    expect("{\"files\": {\"a\": \"1\", \"a-b\": \"\", \"a/b\": \"2\"}}", GG_EINVAL,
           "also the directory of 'a/b'");
    expect("{\"files\": {\"x/y/z\": \"1\", \"x/y\": \"2\"}}", GG_EINVAL, "also the directory");
}

static void caps(void)
{
    /* A path over the limit. */
    char *long_path = malloc(GGI_WS_MAX_PATH + 10);
    memset(long_path, 'p', GGI_WS_MAX_PATH + 1);
    long_path[GGI_WS_MAX_PATH + 1] = '\0';
    cJSON *j = cJSON_CreateObject(), *f = cJSON_AddObjectToObject(j, "files");
    cJSON_AddStringToObject(f, long_path, "");
    CHECK_RC(ggi_ws_check(j), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "limit");
    cJSON_Delete(j);
    free(long_path);

    /* Inline content over the limit, in two files. */
    size_t half = GGI_WS_MAX_INLINE_BYTES / 2 + 1;
    char *big = malloc(half + 1);
    memset(big, 'x', half);
    big[half] = '\0';
    j = cJSON_CreateObject();
    f = cJSON_AddObjectToObject(j, "files");
    cJSON_AddStringToObject(f, "a", big);
    CHECK_RC(ggi_ws_check(j), GG_OK);
    cJSON_AddStringToObject(f, "b", big);
    CHECK_RC(ggi_ws_check(j), GG_ETOOBIG);
    CHECK_CONTAINS(gg_error_last(), "'workspace.files'");
    cJSON_Delete(j);
    free(big);

    /* Too many files. */
    j = cJSON_CreateObject();
    f = cJSON_AddObjectToObject(j, "files");
    char name[32];
    for (int i = 0; i <= GGI_WS_MAX_FILES; i++) {
        snprintf(name, sizeof name, "d%d/f%d", i % 100, i);
        cJSON_AddStringToObject(f, name, "");
    }
    CHECK_RC(ggi_ws_check(j), GG_ETOOBIG);
    CHECK_CONTAINS(gg_error_last(), "files");
    cJSON_Delete(j);

    /* A repo location, a ref and a pack over their limits. */
    char *loc = malloc(GGI_WS_MAX_LOCATION + 2);
    memset(loc, 'r', GGI_WS_MAX_LOCATION + 1);
    loc[GGI_WS_MAX_LOCATION + 1] = '\0';
    j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "repo", loc);
    CHECK_RC(ggi_ws_check(j), GG_ETOOBIG);
    CHECK_CONTAINS(gg_error_last(), "'workspace.repo'");
    cJSON_Delete(j);
    loc[GGI_WS_MAX_REF + 1] = '\0';
    j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "repo", "/r");
    cJSON_AddStringToObject(j, "ref", loc);
    CHECK_RC(ggi_ws_check(j), GG_ETOOBIG);
    CHECK_CONTAINS(gg_error_last(), "'workspace.ref'");
    cJSON_Delete(j);
    free(loc);
    size_t plen = (size_t)GGI_WS_MAX_PACK / 3 * 4 * 2;
    char *pack = malloc(plen + 1);
    memset(pack, 'A', plen);
    pack[plen] = '\0';
    j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "repo", "/r");
    cJSON_AddStringToObject(j, "commit", "0123456789abcdef0123456789abcdef01234567");
    cJSON_AddStringToObject(j, "pack", pack);
    CHECK_RC(ggi_ws_check(j), GG_ETOOBIG);
    CHECK_CONTAINS(gg_error_last(), "'workspace.pack'");
    cJSON_Delete(j);
    free(pack);
}

/* The base64 codec of "pack": round trips of every length up to 40, known texts, padding
 * and whitespace, and text that is not base64. */
static void base64(void)
{
    unsigned char data[40];
    for (int i = 0; i < 40; i++)
        data[i] = (unsigned char)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof data; n++) {
        char *text = NULL;
        unsigned char *back = NULL;
        size_t len = 0;
        CHECK_RC(ggi_ws_b64_encode(data, n, &text), GG_OK);
        CHECK(text && strlen(text) == (n + 2) / 3 * 4);
        CHECK_RC(ggi_ws_b64_decode(text, strlen(text), &back, &len), GG_OK);
        CHECK(len == n && (n == 0 || memcmp(back, data, n) == 0));
        free(text);
        free(back);
    }
    char *text = NULL;
    CHECK_RC(ggi_ws_b64_encode("foobar", 6, &text), GG_OK);
    CHECK_STR(text, "Zm9vYmFy");
    free(text);
    CHECK_RC(ggi_ws_b64_encode("fooba", 5, &text), GG_OK);
    CHECK_STR(text, "Zm9vYmE=");
    free(text);
    static const char *const good[][2] = {{"Zm9v\nYmE=", "fooba"}, {"Zm9vYg", "foob"},
                                          {"Zg==", "f"}, {"", ""}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        unsigned char *b = NULL;
        size_t len = 0;
        CHECK_RC(ggi_ws_b64_decode(good[i][0], strlen(good[i][0]), &b, &len), GG_OK);
        CHECK(b && len == strlen(good[i][1]) && memcmp(b, good[i][1], len) == 0);
        free(b);
    }
    static const char *const bad[] = {"Zm9v!", "Z", "Zg=a", "Zg===", "Z===", "Zm9vY"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unsigned char *b = NULL;
        size_t len = 0;
        CHECK_RC(ggi_ws_b64_decode(bad[i], strlen(bad[i]), &b, &len), GG_EINVAL);
        CHECK(b == NULL);
        CHECK_CONTAINS(gg_error_last(), "'workspace.pack'");
    }
}

int main(void)
{
    base64();
    good_shapes();
    bad_shapes();
    bad_paths();
    caps();
    CHECK_RC(ggi_ws_check(NULL), GG_EINVAL);
    return test_exit();
}
