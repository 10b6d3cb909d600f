/*
 * test_command_generator.c - the "command:PROGRAM" generator backend through its internal
 * constructor and vtable: code from stdout, the request on stdin, the host environment,
 * and each way the program can fail (timeout, exit status, signal, no output, too much).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gryphgen.h>

#include "core/ggi.h"
#include "generation/command.h"
#include "testutil.h"

static const char *request = "{\"task\": {\"id\": \"t1\"}, \"attempt\": 2, \"feedback\": []}";

/* Runs one request through a fresh backend; returns the code or NULL (rc says why). */
static char *generate(const char *program, double timeout_s, size_t max_output,
                      const char *req, int *rc)
{
    gg_generator_vtable vt;
    void *self = NULL;
    *rc = ggi_command_generator_new(program, timeout_s, max_output, &vt, &self);
    if (*rc)
        return NULL;
    CHECK(vt.version == GG_GENERATOR_VTABLE_VERSION);
    CHECK_STR(vt.name, "command");
    CHECK(vt.generate != NULL && vt.destroy != NULL);
    char *out = NULL;
    *rc = vt.generate(self, req, &out);
    char *code = NULL;
    if (*rc == 0) {
        cJSON *resp = NULL;
        CHECK(out != NULL);
        if (out && ggi_json_parse(out, strlen(out), &resp) == 0) {
            const cJSON *g = cJSON_GetObjectItemCaseSensitive(resp, "generator");
            CHECK(cJSON_IsString(g) && !strcmp(g->valuestring, "command"));
            const cJSON *c = cJSON_GetObjectItemCaseSensitive(resp, "code");
            CHECK(cJSON_IsString(c));
            if (cJSON_IsString(c))
                code = strdup(c->valuestring);
            cJSON_Delete(resp);
        } else {
            CHECK(0);
        }
    } else {
        CHECK(out == NULL);
    }
    gg_free(out);
    vt.destroy(self);
    return code;
}

static void test_success(void)
{
    int rc;
    char *code = generate("cat >/dev/null; echo 'def f():'; echo '    return 1'", 60, 0, request,
                          &rc);
    CHECK_RC(rc, 0);
    CHECK_STR(code, "def f():\n    return 1\n");
    free(code);

    /* The request arrives on stdin, whole. */
    code = generate("cat", 60, 0, request, &rc);
    CHECK_RC(rc, 0);
    CHECK_STR(code, request);
    free(code);
    code = generate("/usr/bin/python3 -c \"import json,sys; r=json.load(sys.stdin); "
                    "print('attempt', r['attempt'], r['task']['id'])\"",
                    60, 0, request, &rc);
    CHECK_RC(rc, 0);
    CHECK_STR(code, "attempt 2 t1\n");
    free(code);

    /* The host's environment is inherited (it is the host's own program). */
    setenv("GG_COMMAND_TEST_VAR", "from-host", 1);
    code = generate("echo \"$GG_COMMAND_TEST_VAR\"", 60, 0, request, &rc);
    CHECK_RC(rc, 0);
    CHECK_STR(code, "from-host\n");
    free(code);
    unsetenv("GG_COMMAND_TEST_VAR");

    /* Exactly max_output bytes are accepted; bad UTF-8 still gives a JSON response. */
    code = generate("printf 'abcdefghij'", 60, 10, request, &rc);
    CHECK_RC(rc, 0);
    CHECK_STR(code, "abcdefghij");
    free(code);
    code = generate("printf 'x\\377y'", 60, 0, request, &rc);
    CHECK_RC(rc, 0);
    CHECK_STR(code, "x\xef\xbf\xbdy");
    free(code);
}

static void test_failing_programs(void)
{
    int rc;
    /* Only the timeout can end it in time: had the program run to its end, it would have
     * answered with no code. */
    char *code = generate("sleep 5", 0.3, 0, request, &rc);
    CHECK(code == NULL);
    CHECK_RC(rc, GG_ETIMEDOUT);
    CHECK_CONTAINS(gg_error_last(), "timed out");

    code = generate("echo partial; echo 'Traceback: model endpoint refused' >&2; exit 4", 60, 0,
                    request, &rc);
    CHECK(code == NULL);
    CHECK_RC(rc, GG_EGENERATOR);
    CHECK_CONTAINS(gg_error_last(), "status 4");
    CHECK_CONTAINS(gg_error_last(), "model endpoint refused");

    /* Only the tail of a long stderr goes into the message. */
    code = generate("head -c 5000 /dev/zero | tr '\\0' a >&2; echo LAST-LINE >&2; exit 1", 60, 0,
                    request, &rc);
    CHECK_RC(rc, GG_EGENERATOR);
    CHECK_CONTAINS(gg_error_last(), "LAST-LINE");
    CHECK(strlen(gg_error_last()) < 600);

    code = generate("kill -SEGV $$", 60, 0, request, &rc);
    CHECK_RC(rc, GG_EGENERATOR);
    CHECK_CONTAINS(gg_error_last(), "SIGSEGV");

    code = generate("true", 60, 0, request, &rc);
    CHECK(code == NULL);
    CHECK_RC(rc, GG_EGENERATOR);
    CHECK_CONTAINS(gg_error_last(), "no code");
    code = generate("printf '  \\n\\t\\n'", 60, 0, request, &rc);
    CHECK_RC(rc, GG_EGENERATOR);

    code = generate("head -c 1000 /dev/zero | tr '\\0' x", 60, 100, request, &rc);
    CHECK(code == NULL);
    CHECK_RC(rc, GG_ETOOBIG);
    CHECK_CONTAINS(gg_error_last(), "100 bytes");
    code = generate("printf 'abcdefghijk'", 60, 10, request, &rc);
    CHECK_RC(rc, GG_ETOOBIG);

    code = generate("cat", 60, 0, "{\"attempt\": ", &rc);
    CHECK(code == NULL);
    CHECK_RC(rc, GG_EINVAL);
    code = generate("cat", 60, 0, NULL, &rc);
    CHECK_RC(rc, GG_EINVAL);
}

static void test_constructor(void)
{
    gg_generator_vtable vt;
    void *self = (void *)1;
    CHECK_RC(ggi_command_generator_new("", 5, 0, &vt, &self), GG_EINVAL);
    CHECK(self == NULL);
    CHECK_RC(ggi_command_generator_new(NULL, 5, 0, &vt, &self), GG_EINVAL);
    CHECK_RC(ggi_command_generator_new("echo", -1, 0, &vt, &self), GG_EINVAL);
    CHECK_RC(ggi_command_generator_new("echo", 5, 0, NULL, &self), GG_EINVAL);
    CHECK_RC(ggi_command_generator_new("echo hi", 0, 0, &vt, &self), 0);
    CHECK(self != NULL);
    vt.destroy(self);
}

/* A program may answer with a response object: its code and its citations are taken. */
static void test_response_object(void)
{
    gg_generator_vtable vt;
    void *self = NULL;
    CHECK_RC(ggi_command_generator_new("printf '%s' '{\"code\": \"x = 1\\n\", \"cited\": "
                                       "[\"12\", 40]}'", 60, 0, &vt, &self), 0);
    char *out = NULL;
    CHECK_RC(vt.generate(self, request, &out), 0);
    cJSON *resp = cJSON_Parse(out);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(resp, "code")), "x = 1\n");
    char *cited = cJSON_PrintUnformatted(cJSON_GetObjectItem(resp, "cited"));
    CHECK_STR(cited, "[\"12\",40]"); /* passed on; the attempt keeps what names its context */
    free(cited);
    cJSON_Delete(resp);
    gg_free(out);
    vt.destroy(self);
    /* An object without a code string is code; an empty code is no code. */
    int rc;
    char *code = generate("printf '{\"answer\": 1}'", 60, 0, request, &rc);
    CHECK_RC(rc, 0);
    CHECK_STR(code, "{\"answer\": 1}");
    free(code);
    code = generate("printf '{\"code\": \" \"}'", 60, 0, request, &rc);
    CHECK_RC(rc, GG_EGENERATOR);
    CHECK_CONTAINS(gg_error_last(), "no code");
    CHECK(code == NULL);
}

int main(void)
{
    test_constructor();
    test_success();
    test_failing_programs();
    test_response_object();
    return test_exit();
}
