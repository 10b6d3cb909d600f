/*
 * test_generator.c - the generator handle: options, spec selection, the replay and reference
 * backends (including exhaustion and bad requests), and the vtable rules for a host's
 * backend (versions, required slots, destroy exactly once, errors passed through).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gryphgen.h>
#include <gryphgen/sys/generator.h>

#include "core/task.h"
#include "testutil.h"

/* Builds a request for a task given as JSON (normalised through the task format). */
static char *request(const char *task_json, int attempt)
{
    ggi_task *t = NULL;
    if (ggi_task_parse(task_json, strlen(task_json), &t))
        return NULL;
    cJSON *req = cJSON_CreateObject();
    cJSON_AddItemToObject(req, "task", ggi_task_to_json(t));
    cJSON_AddNumberToObject(req, "attempt", attempt);
    cJSON_AddItemToObject(req, "feedback", cJSON_CreateArray());
    cJSON_AddItemToObject(req, "context", cJSON_CreateArray());
    char *s = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    ggi_task_free(t);
    return s;
}

/* Generates and returns the response's code (malloc'd) or NULL with *rc set. */
static char *generate(gg_generator_t *g, const char *task_json, int attempt, int *rc,
                      const char *want_generator)
{
    char *req = request(task_json, attempt);
    char *resp = (char *)1;
    *rc = req ? gg_generator_generate(g, req, &resp) : -999;
    cJSON_free(req);
    if (*rc) {
        CHECK(resp == NULL);
        return NULL;
    }
    cJSON *o = cJSON_Parse(resp);
    gg_free(resp);
    CHECK(o != NULL);
    const cJSON *code = cJSON_GetObjectItem(o, "code");
    const cJSON *gen = cJSON_GetObjectItem(o, "generator");
    CHECK(cJSON_IsString(code));
    CHECK(cJSON_IsString(gen) && strcmp(gen->valuestring, want_generator) == 0);
    char *out = cJSON_IsString(code) ? strdup(code->valuestring) : NULL;
    cJSON_Delete(o);
    return out;
}

static const char *TWO = "{\"task_id\":\"x\",\"language\":\"python\","
                         "\"candidates\":[\"a = 1\\n\",\"b = 2\\n\"],"
                         "\"canonical_solution\":\"ref\\n\"}";
static const char *NONE = "{\"task_id\":\"bare\",\"language\":\"c\"}";

static void test_options(void)
{
    gg_generator_options o;
    memset(&o, 0xff, sizeof o);
    CHECK_RC(gg_generator_options_init(&o, GG_GENERATOR_OPTIONS_VERSION), 0);
    CHECK(o.version == GG_GENERATOR_OPTIONS_VERSION && o.spec == NULL && o.timeout_s == 0 &&
          o.max_output == 0);
    CHECK_RC(gg_generator_options_init(&o, 99), GG_EVERSION);
    CHECK_RC(gg_generator_options_init(&o, 0), GG_EVERSION);
    CHECK_RC(gg_generator_options_init(NULL, 1), GG_EINVAL);

    gg_generator_t *g = (gg_generator_t *)1;
    gg_generator_options bad = GG_GENERATOR_OPTIONS_INIT;
    bad.version = GG_GENERATOR_OPTIONS_VERSION + 1;
    CHECK_RC(gg_generator_new(&g, &bad), GG_EVERSION);
    CHECK(g == NULL);
    bad.version = 0;
    CHECK_RC(gg_generator_new(&g, &bad), GG_EVERSION);

    gg_generator_options u = GG_GENERATOR_OPTIONS_INIT;
    u.spec = "gpt-9";
    g = (gg_generator_t *)1;
    CHECK_RC(gg_generator_new(&g, &u), GG_EINVAL);
    CHECK(g == NULL);
    CHECK_CONTAINS(gg_error_last(), "unknown generator 'gpt-9'");
    CHECK_CONTAINS(gg_error_last(), "\"replay\", \"reference\", \"command:PROGRAM\"");
    u.spec = "command:";
    CHECK_RC(gg_generator_new(&g, &u), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "names no program");
    u.spec = "";
    CHECK_RC(gg_generator_new(&g, &u), GG_EINVAL);
    CHECK_RC(gg_generator_new(NULL, NULL), GG_EINVAL);

    /* default: replay */
    CHECK_RC(gg_generator_new(&g, NULL), 0);
    CHECK_STR(gg_generator_name(g), "replay");
    gg_generator_destroy(&g);
    CHECK(g == NULL);
    gg_generator_destroy(&g);
    gg_generator_destroy(NULL);
}

static void test_replay(void)
{
    gg_generator_options o = GG_GENERATOR_OPTIONS_INIT;
    o.spec = "replay";
    gg_generator_t *g = NULL;
    CHECK_RC(gg_generator_new(&g, &o), 0);
    if (!g)
        return;
    int rc = 0;
    char *code = generate(g, TWO, 1, &rc, "replay");
    CHECK(rc == 0);
    CHECK_STR(code, "a = 1\n");
    free(code);
    code = generate(g, TWO, 2, &rc, "replay");
    CHECK_STR(code, "b = 2\n");
    free(code);
    code = generate(g, TWO, 3, &rc, "replay");
    CHECK(code == NULL && rc == GG_EEXHAUSTED);
    CHECK_STR(gg_error_last(), "task 'x' has 2 candidates; attempt 3 has none");
    code = generate(g, NONE, 1, &rc, "replay");
    CHECK(code == NULL && rc == GG_EEXHAUSTED);
    CHECK_CONTAINS(gg_error_last(), "task 'bare' has no candidates");
    CHECK_CONTAINS(gg_error_last(), "replay generator needs candidates");
    CHECK_CONTAINS(gg_error_last(), "another generator");

    /* bad requests */
    char *resp = (char *)1;
    CHECK_RC(gg_generator_generate(g, "{not json", &resp), GG_EINVAL);
    CHECK(resp == NULL);
    CHECK_CONTAINS(gg_error_last(), "malformed JSON");
    CHECK_RC(gg_generator_generate(g, "[]", &resp), GG_EINVAL);
    CHECK_RC(gg_generator_generate(g, "{\"attempt\":1}", &resp), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "'task'");
    CHECK_RC(gg_generator_generate(g, "{\"task\":{},\"attempt\":0}", &resp), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "'attempt'");
    CHECK_RC(gg_generator_generate(g, "{\"task\":{}}", &resp), GG_EINVAL);
    CHECK_RC(gg_generator_generate(g, "{\"task\":{\"candidates\":[5]},\"attempt\":1}", &resp),
             GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "candidates[0]");
    CHECK_RC(gg_generator_generate(g, NULL, &resp), GG_EINVAL);
    CHECK_RC(gg_generator_generate(NULL, "{}", &resp), GG_EINVAL);
    CHECK_RC(gg_generator_generate(g, "{}", NULL), GG_EINVAL);
    gg_generator_destroy(&g);
}

static void test_reference(void)
{
    gg_generator_options o = GG_GENERATOR_OPTIONS_INIT;
    o.spec = "reference";
    gg_generator_t *g = NULL;
    CHECK_RC(gg_generator_new(&g, &o), 0);
    if (!g)
        return;
    CHECK_STR(gg_generator_name(g), "reference");
    int rc = 0;
    char *code = generate(g, TWO, 1, &rc, "reference");
    CHECK(rc == 0);
    CHECK_STR(code, "ref\n");
    free(code);
    code = generate(g, TWO, 2, &rc, "reference");
    CHECK(code == NULL && rc == GG_EEXHAUSTED);
    CHECK_CONTAINS(gg_error_last(), "attempt 2");
    code = generate(g, NONE, 1, &rc, "reference");
    CHECK(code == NULL && rc == GG_EEXHAUSTED);
    CHECK_CONTAINS(gg_error_last(), "task 'bare' has no canonical_solution");
    /* a workspace task answers with its canonical_patch */
    const char *ws = "{\"task_id\":\"w\",\"language\":\"python\",\"workspace\":{\"dir\":\"/d\"},"
                     "\"test_command\":\"true\",\"canonical_solution\":\"no\","
                     "\"canonical_patch\":\"--- a/x\\n+++ b/x\\n\"}";
    code = generate(g, ws, 1, &rc, "reference");
    CHECK(rc == 0);
    CHECK_STR(code, "--- a/x\n+++ b/x\n");
    free(code);
    code = generate(g, "{\"task_id\":\"w2\",\"language\":\"python\",\"workspace\":"
                       "{\"dir\":\"/d\"},\"test_command\":\"true\"}", 1, &rc, "reference");
    CHECK(code == NULL && rc == GG_EEXHAUSTED);
    CHECK_CONTAINS(gg_error_last(), "task 'w2' has no canonical_patch");
    gg_generator_destroy(&g);
}

/* ---- a host's backend ---- */

typedef struct host {
    int destroyed;
    int calls;
    int mode; /* 0: answer, 1: fail with a message, 2: fail silently, 3: no response, 4: rc 5 */
} host;

static int host_generate(void *self, const char *request_json, char **out)
{
    host *h = self;
    h->calls++;
    (void)request_json;
    switch (h->mode) {
    case 1:
        return gg_error_set(GG_ETIMEDOUT, "model endpoint timed out after 30 s");
    case 2:
        return GG_EGENERATOR;
    case 3:
        return 0;
    case 4:
        return 5;
    default:
        *out = gg_strdup("{\"code\":\"x\",\"generator\":\"host\"}");
        return *out ? 0 : GG_ENOMEM;
    }
}

static void host_destroy(void *self)
{
    ((host *)self)->destroyed++;
}

static void test_custom(void)
{
    host h = { 0, 0, 0 };
    gg_generator_vtable vt = GG_GENERATOR_VTABLE_INIT;
    vt.generate = host_generate;
    vt.destroy = host_destroy;
    gg_generator_t *g = (gg_generator_t *)1;

    /* unknown versions: rejected, self released once, *out NULL */
    vt.version = 0;
    CHECK_RC(gg_generator_new_custom(&g, &vt, &h), GG_EVERSION);
    CHECK(g == NULL && h.destroyed == 1);
    vt.version = GG_GENERATOR_VTABLE_VERSION + 1;
    g = (gg_generator_t *)1;
    CHECK_RC(gg_generator_new_custom(&g, &vt, &h), GG_EVERSION);
    CHECK(g == NULL && h.destroyed == 2);
    vt.version = GG_GENERATOR_VTABLE_VERSION;

    /* generate is required */
    vt.generate = NULL;
    CHECK_RC(gg_generator_new_custom(&g, &vt, &h), GG_EINVAL);
    CHECK(g == NULL && h.destroyed == 3);
    CHECK_CONTAINS(gg_error_last(), "generate");
    vt.generate = host_generate;
    CHECK_RC(gg_generator_new_custom(NULL, &vt, &h), GG_EINVAL);
    CHECK(h.destroyed == 4);
    CHECK_RC(gg_generator_new_custom(&g, NULL, &h), GG_EINVAL);
    CHECK(h.destroyed == 4);

    /* a working one; the vtable is copied, so changing ours later does nothing */
    h.destroyed = 0;
    CHECK_RC(gg_generator_new_custom(&g, &vt, &h), 0);
    CHECK(g != NULL && h.destroyed == 0);
    vt.generate = NULL;
    CHECK_STR(gg_generator_name(g), "custom");
    char *resp = NULL;
    CHECK_RC(gg_generator_generate(g, "{}", &resp), 0);
    CHECK_STR(resp, "{\"code\":\"x\",\"generator\":\"host\"}");
    gg_free(resp);
    h.mode = 1;
    resp = (char *)1;
    CHECK_RC(gg_generator_generate(g, "{}", &resp), GG_ETIMEDOUT);
    CHECK(resp == NULL);
    CHECK_STR(gg_error_last(), "model endpoint timed out after 30 s");
    h.mode = 2;
    CHECK_RC(gg_generator_generate(g, "{}", &resp), GG_EGENERATOR);
    CHECK_CONTAINS(gg_error_last(), "generator 'custom' failed");
    h.mode = 3;
    CHECK_RC(gg_generator_generate(g, "{}", &resp), GG_EGENERATOR);
    CHECK_CONTAINS(gg_error_last(), "returned no response");
    h.mode = 4;
    CHECK_RC(gg_generator_generate(g, "{}", &resp), GG_EGENERATOR);
    CHECK(h.calls == 5);
    gg_generator_destroy(&g);
    CHECK(g == NULL && h.destroyed == 1);
    gg_generator_destroy(&g);
    CHECK(h.destroyed == 1);

    /* a name, and no destroy slot */
    gg_generator_vtable vt2 = GG_GENERATOR_VTABLE_INIT;
    vt2.generate = host_generate;
    vt2.name = "mine";
    h.mode = 0;
    CHECK_RC(gg_generator_new_custom(&g, &vt2, &h), 0);
    CHECK_STR(gg_generator_name(g), "mine");
    gg_generator_destroy(&g);
    CHECK(h.destroyed == 1);
    CHECK_STR(gg_generator_name(NULL), "");
}

/* "command:PROGRAM" reaches the command backend with the options' limits. */
static void test_command(void)
{
    gg_generator_options o = GG_GENERATOR_OPTIONS_INIT;
    o.spec = "command:printf 'x = 1'";
    o.timeout_s = 5;
    gg_generator_t *g = NULL;
    int rc = gg_generator_new(&g, &o);
    if (rc == GG_EUNSUPPORTED) {
        fprintf(stderr, "note: command generator not in this build, skipped\n");
        return;
    }
    CHECK_RC(rc, 0);
    if (!g)
        return;
    CHECK_STR(gg_generator_name(g), "command");
    char *code = generate(g, TWO, 1, &rc, "command");
    CHECK(rc == 0);
    CHECK_STR(code, "x = 1");
    free(code);
    gg_generator_destroy(&g);
    o.spec = "command:  ";
    CHECK_RC(gg_generator_new(&g, &o), GG_EINVAL);
    o.spec = "command:true";
    o.timeout_s = -1;
    CHECK_RC(gg_generator_new(&g, &o), GG_EINVAL);
    CHECK(g == NULL);
}

int main(void)
{
    test_options();
    test_command();
    test_replay();
    test_reference();
    test_custom();
    return test_exit();
}
