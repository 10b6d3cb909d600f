/*
 * test_redact.c - secrets kept out of what goes to a model (lib/generation/redact.c): the
 * redactor's rules on texts (API keys, variables named in GRYPHGEN_SECRET_ENV, private-key
 * blocks whole or cut off, token formats, an operator's pattern file), its refusals (a
 * pattern that does not compile, a missing file), and end to end: the fake chat-completions
 * server (fake_llm_server.py, argv[1], model "echo") receives a request whose context and
 * feedback held secrets, and none of them arrives while the placeholders do; a command:
 * generator's program gets its request on stdin without them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gryphgen.h>

#include "core/ggi.h"
#include "generation/redact.h"
#include "llmtest.h"
#include "testutil.h"

#define KEY "sk-conf1gured-key-0123456789abcdef"
#define ENV_SECRET "hunter2-db-password-77"
#define GH_TOKEN "ghp_abcdefghijklmnopqrstuvwxyz0123456789"
#define AWS_ID "AKIAIOSFODNN7EXAMPLE"
#define SLACK "xoxb-1234567890-abcdefghij"
#define JWT "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N"
#define OTHER_SK "sk-proj-ZYXWVUTSRQPONMLKJIHGFEDCBA98"
#define PEM_BODY "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"
#define CUSTOM "ACME-SECRET-4242"

static fake_server srv;
static char scratch[256];

/* Every secret this test plants; none may arrive anywhere. */
static const char *const secrets[] = { KEY, ENV_SECRET, GH_TOKEN, AWS_ID, SLACK, JWT,
                                       OTHER_SK, PEM_BODY, CUSTOM };

static void check_clean(const char *where, const char *text)
{
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++) {
        if (text && strstr(text, secrets[i])) {
            fprintf(stderr, "%s carries the secret %s\n", where, secrets[i]);
            CHECK(0);
        }
    }
}

static void test_text_rules(void)
{
    setenv("GRYPHGEN_SECRET_ENV", "GG_TEST_DB_PASSWORD, GG_TEST_SHORT,GG_TEST_UNSET", 1);
    setenv("GG_TEST_DB_PASSWORD", ENV_SECRET, 1);
    setenv("GG_TEST_SHORT", "abc", 1); /* too short to be told from ordinary text */
    ggi_redactor *r = NULL;
    CHECK_RC(ggi_redactor_new(&r, KEY, NULL), GG_OK);
    int n = -1;
    char *out = ggi_redact_text(r, "key " KEY " and pw=" ENV_SECRET " abc", &n);
    CHECK_STR(out, "key [REDACTED:api_key] and pw=[REDACTED:env] abc");
    CHECK(n == 2);
    free(out);
    out = ggi_redact_text(r, "a -----BEGIN RSA PRIVATE KEY-----\n" PEM_BODY "\n"
                             "-----END RSA PRIVATE KEY----- b", &n);
    CHECK_STR(out, "a [REDACTED:private_key] b");
    free(out);
    /* a tail that cut the block off still loses its body */
    out = ggi_redact_text(r, "x\n-----BEGIN PRIVATE KEY-----\n" PEM_BODY "\nMIIE", &n);
    CHECK_STR(out, "x\n[REDACTED:private_key]");
    free(out);
    out = ggi_redact_text(r, GH_TOKEN " " AWS_ID " " SLACK " " JWT " " OTHER_SK
                             " github_pat_11ABCDEFG0123456789_abcdefghijkl", &n);
    CHECK_STR(out, "[REDACTED:token:github] [REDACTED:token:aws] [REDACTED:token:slack] "
                   "[REDACTED:token:jwt] [REDACTED:token:openai] [REDACTED:token:github]");
    CHECK(n == 6);
    free(out);
    /* ordinary code and prose is left alone */
    const char *plain = "def add(a, b):\n    return a + b  # sk-short, AKIA, eyJ\n";
    out = ggi_redact_text(r, plain, &n);
    CHECK_STR(out, plain);
    CHECK(n == 0);
    free(out);
    ggi_redactor_free(&r);
    CHECK(r == NULL);
    ggi_redactor_free(NULL);
}

static void test_pattern_file(void)
{
    char path[300];
    snprintf(path, sizeof path, "%s/patterns", scratch);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fputs("# an operator's own formats\n\nACME-SECRET-[0-9]+\n", f);
    fclose(f);
    ggi_redactor *r = NULL;
    CHECK_RC(ggi_redactor_new(&r, NULL, path), GG_OK);
    char *out = ggi_redact_text(r, "token " CUSTOM ".", NULL);
    CHECK_STR(out, "token [REDACTED:pattern].");
    free(out);
    ggi_redactor_free(&r);
    /* the same through the environment */
    setenv("GRYPHGEN_REDACT_PATTERNS", path, 1);
    CHECK_RC(ggi_redactor_new(&r, NULL, NULL), GG_OK);
    out = ggi_redact_text(r, CUSTOM, NULL);
    CHECK_STR(out, "[REDACTED:pattern]");
    free(out);
    ggi_redactor_free(&r);

    /* a pattern that does not compile is refused naming the file and the line */
    f = fopen(path, "w");
    fputs("ok-[0-9]+\nbad[pattern\n", f);
    fclose(f);
    CHECK_RC(ggi_redactor_new(&r, NULL, path), GG_EINVAL);
    CHECK(r == NULL);
    CHECK_CONTAINS(gg_error_last(), "line 2");
    CHECK_CONTAINS(gg_error_last(), path);
    /* a generator with such patterns is not made */
    gg_generator_options o = GG_GENERATOR_OPTIONS_INIT;
    o.spec = "command:cat";
    gg_generator_t *g = NULL;
    CHECK_RC(gg_generator_new(&g, &o), GG_EINVAL);
    CHECK(g == NULL);
    /* a missing file */
    snprintf(path, sizeof path, "%s/missing", scratch);
    CHECK_RC(ggi_redactor_new(&r, NULL, path), GG_ENOTFOUND);
    CHECK_CONTAINS(gg_error_last(), "missing");
    snprintf(path, sizeof path, "%s/patterns", scratch);
    f = fopen(path, "w");
    fputs("ACME-SECRET-[0-9]+\n", f);
    fclose(f);
}

/* A request whose context and feedback hold every planted secret. */
static char *secret_request(void)
{
    return ggi_asprintf(
        "{\"task\": {\"task_id\": \"demo/add\", \"language\": \"python\", "
        "\"prompt\": \"Return the sum of a and b.\", \"stub\": \"def add(a, b):\\n\", "
        "\"entry_point\": \"add\", \"test\": \"assert add(2, 3) == 5\\n\"}, \"attempt\": 2, "
        "\"feedback\": [{\"attempt\": 1, \"code\": \"TOKEN = '%s'\\n\", \"reason\": "
        "\"AssertionError: %s\", \"findings\": [], \"stderr_tail\": \"env: %s %s\\n"
        "-----BEGIN OPENSSH PRIVATE KEY-----\\n%s\", \"stdout_tail\": \"%s %s %s\"}], "
        "\"context\": [{\"id\": \"doc-1\", \"text\": \"Use the + operator. key=%s %s\", "
        "\"score\": 1.0, \"source\": \"kb\"}]}",
        GH_TOKEN, AWS_ID, ENV_SECRET, SLACK, PEM_BODY, JWT, OTHER_SK, CUSTOM, KEY, AWS_ID);
}

static void test_openai_request(void)
{
    char base_url[128];
    snprintf(base_url, sizeof base_url, "http://127.0.0.1:%d/v1", srv.port);
    gg_generator_options o = GG_GENERATOR_OPTIONS_INIT;
    o.spec = "openai";
    o.url = base_url;
    o.model = "echo:redact";
    o.api_key = KEY;
    o.timeout_s = 60;
    gg_generator_t *g = NULL;
    CHECK_RC(gg_generator_new(&g, &o), GG_OK);
    char *req = secret_request();
    char *out = NULL;
    CHECK_RC(gg_generator_generate(g, req, &out), GG_OK);
    cJSON *resp = out ? cJSON_Parse(out) : NULL;
    cJSON *echo = cJSON_Parse(cJSON_GetStringValue(cJSON_GetObjectItem(resp, "code")));
    CHECK(echo != NULL);
    const cJSON *msgs = cJSON_GetObjectItem(cJSON_GetObjectItem(echo, "request"), "messages");
    char *sent = cJSON_PrintUnformatted(msgs);
    CHECK(sent != NULL);
    check_clean("the request the server got", sent);
    CHECK_CONTAINS(sent, "[REDACTED:token:github]");
    CHECK_CONTAINS(sent, "[REDACTED:api_key]");
    CHECK_CONTAINS(sent, "[REDACTED:env]");
    CHECK_CONTAINS(sent, "[REDACTED:private_key]");
    CHECK_CONTAINS(sent, "[REDACTED:token:jwt]");
    CHECK_CONTAINS(sent, "[REDACTED:pattern]");
    CHECK_CONTAINS(sent, "Use the + operator."); /* the rest is still there */
    CHECK_CONTAINS(sent, "Return the sum of a and b.");
    free(sent);
    cJSON_Delete(echo);
    cJSON_Delete(resp);
    gg_free(out);
    free(req);
    gg_generator_destroy(&g);
}

static void test_command_request(void)
{
    char got[300], spec[700];
    snprintf(got, sizeof got, "%s/stdin.json", scratch);
    snprintf(spec, sizeof spec, "command:cat > '%s'; echo 'x = 1'", got);
    gg_generator_options o = GG_GENERATOR_OPTIONS_INIT;
    o.spec = spec;
    gg_generator_t *g = NULL;
    CHECK_RC(gg_generator_new(&g, &o), GG_OK);
    setenv("GRYPHGEN_LLM_API_KEY", KEY, 1);
    gg_generator_destroy(&g);
    CHECK_RC(gg_generator_new(&g, &o), GG_OK); /* made again: it reads the key now */
    char *req = secret_request(), *out = NULL;
    CHECK_RC(gg_generator_generate(g, req, &out), GG_OK);
    FILE *f = fopen(got, "r");
    CHECK(f != NULL);
    char buf[8192] = "";
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
    check_clean("the command generator's stdin", buf);
    CHECK_CONTAINS(buf, "[REDACTED:api_key]");
    CHECK_CONTAINS(buf, "[REDACTED:token:aws]");
    CHECK_CONTAINS(buf, "Return the sum of a and b.");
    unsetenv("GRYPHGEN_LLM_API_KEY");
    gg_free(out);
    free(req);
    gg_generator_destroy(&g);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_redact FAKE_SERVER_SCRIPT\n");
        return 1;
    }
    clear_llm_env();
    unsetenv("GRYPHGEN_SECRET_ENV");
    unsetenv("GRYPHGEN_REDACT_PATTERNS");
    snprintf(scratch, sizeof scratch, "/tmp/gg-redact-XXXXXX");
    if (!test_make_dir(scratch)) {
        fprintf(stderr, "cannot make a scratch directory\n");
        return 1;
    }
    test_text_rules();
    test_pattern_file();
    if (fake_server_start(&srv, argv[1]) != 0) {
        fprintf(stderr, "cannot start the fake server %s\n", argv[1]);
        fake_server_stop(&srv);
        return 1;
    }
    test_openai_request();
    test_command_request();
    fake_server_stop(&srv);
    test_remove_dir(scratch);
    return test_exit();
}
