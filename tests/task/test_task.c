/*
 * test_task.c - the task format: parsing native tasks and HumanEval lines, every field's
 * type, range and size errors (with the field named by its dotted path and the task by its
 * id), malformed input, and the normalised JSON's round trip.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gryphgen.h>

#include "core/lang.h"
#include "core/task.h"
#include "testutil.h"

static ggi_task *parse(const char *json)
{
    ggi_task *t = NULL;
    int rc = ggi_task_parse(json, strlen(json), &t);
    if (rc)
        fprintf(stderr, "parse failed (%d): %s\n", rc, gg_error_last());
    return t;
}

/* Parses json, which must fail with want, and returns the error message. */
static const char *parse_fail(const char *json, int want)
{
    ggi_task *t = (ggi_task *)1;
    int rc = ggi_task_parse(json, strlen(json), &t);
    CHECK(rc == want);
    CHECK(t == NULL);
    if (rc != want)
        fprintf(stderr, "  for %.200s: got %d (%s)\n", json, rc, gg_error_last());
    if (rc == 0)
        ggi_task_free(t);
    return gg_error_last();
}

/* A native task with one field replaced: {"task_id":"T1","language":"python", FIELD}. */
static const char *field_fail(const char *field_json, int want)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "{\"task_id\":\"T1\",\"language\":\"python\",%s}", field_json);
    const char *msg = parse_fail(buf, want);
    CHECK_CONTAINS(msg, "task 'T1': ");
    return msg;
}

/* A field's bad value (after task_id and language): the status, and what the message says
 * (a part of it, the whole of it with exact, or NULL: only that it names the task). */
typedef struct bad_field {
    const char *json;
    int code;
    const char *says;
    int exact;
} bad_field;

static void check_bad_fields(const bad_field *bad, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *m = field_fail(bad[i].json, bad[i].code);
        if (bad[i].says && bad[i].exact)
            CHECK_STR(m, bad[i].says);
        else if (bad[i].says)
            CHECK_CONTAINS(m, bad[i].says);
    }
}

static void test_minimal(void)
{
    ggi_task *t = parse("{\"language\":\"c\"}");
    CHECK(t != NULL);
    if (!t)
        return;
    CHECK(t->task_id == NULL);
    CHECK_STR(t->language, "c");
    CHECK_STR(t->prompt, "");
    CHECK(t->stub == NULL && t->entry_point == NULL && t->test == NULL);
    CHECK(t->n_candidates == 0 && t->candidates == NULL);
    CHECK(t->canonical_solution == NULL);
    CHECK(t->max_attempts == 0 && t->wall_s == 0 && t->timeout_s == 0 && t->memory_mb == 0 &&
          t->cpu_s == 0 && t->priority == 0 && t->humaneval == 0);
    ggi_task_free(t);
}

static const char *FULL =
    "{\"task_id\":\"demo/1\",\"language\":\"python\",\"prompt\":\"Add two numbers.\","
    "\"stub\":\"def add(a, b):\\n\",\"entry_point\":\"add\","
    "\"test\":\"def check(f):\\n    assert f(1, 2) == 3\\n\","
    "\"candidates\":[\"    return a - b\\n\",\"    return a + b\\n\"],"
    "\"canonical_solution\":\"    return a + b\\n\","
    "\"budget\":{\"max_attempts\":5,\"wall_s\":120.5},"
    "\"resources\":{\"timeout_s\":2.5,\"memory_mb\":512,\"cpu_s\":3},"
    "\"priority\":-7,\"something_else\":{\"ignored\":true}}";

static void test_full(void)
{
    ggi_task *t = parse(FULL);
    CHECK(t != NULL);
    if (!t)
        return;
    CHECK_STR(t->task_id, "demo/1");
    CHECK_STR(t->language, "python");
    CHECK_STR(t->prompt, "Add two numbers.");
    CHECK_STR(t->stub, "def add(a, b):\n");
    CHECK_STR(t->entry_point, "add");
    CHECK_STR(t->test, "def check(f):\n    assert f(1, 2) == 3\n");
    CHECK(t->n_candidates == 2);
    if (t->n_candidates == 2) {
        CHECK_STR(t->candidates[0], "    return a - b\n");
        CHECK_STR(t->candidates[1], "    return a + b\n");
    }
    CHECK_STR(t->canonical_solution, "    return a + b\n");
    CHECK(t->max_attempts == 5);
    CHECK(t->wall_s == 120.5);
    CHECK(t->timeout_s == 2.5);
    CHECK(t->memory_mb == 512);
    CHECK(t->cpu_s == 3);
    CHECK(t->priority == -7);
    CHECK(t->humaneval == 0);
    ggi_task_free(t);
}

static void test_nulls_are_absent(void)
{
    ggi_task *t = parse("{\"task_id\":null,\"language\":\"python\",\"prompt\":null,\"stub\":null,"
                        "\"candidates\":null,\"budget\":null,\"resources\":{\"timeout_s\":null},"
                        "\"priority\":null}");
    CHECK(t != NULL);
    if (t) {
        CHECK(t->task_id == NULL);
        CHECK_STR(t->prompt, "");
        CHECK(t->timeout_s == 0 && t->n_candidates == 0);
    }
    ggi_task_free(t);
}

static void test_field_errors(void)
{
    const char *m;
    /* task_id */
    m = parse_fail("{\"task_id\":5,\"language\":\"python\"}", GG_EINVAL);
    CHECK_CONTAINS(m, "field 'task_id' must be a string");
    CHECK(strncmp(m, "task: ", 6) == 0); /* no id to name */
    m = parse_fail("{\"task_id\":\"\",\"language\":\"python\"}", GG_EINVAL);
    CHECK_CONTAINS(m, "field 'task_id' must not be empty");
    m = parse_fail("{\"task_id\":\"a\\nb\",\"language\":\"python\"}", GG_EINVAL);
    CHECK_CONTAINS(m, "field 'task_id' must be printable");
    m = parse_fail("{\"task_id\":\"a\\u007fb\",\"language\":\"python\"}", GG_EINVAL);
    CHECK_CONTAINS(m, "field 'task_id' must be printable");
    {
        char id[300], buf[400];
        memset(id, 'x', 257);
        id[257] = '\0';
        snprintf(buf, sizeof buf, "{\"task_id\":\"%s\",\"language\":\"c\"}", id);
        m = parse_fail(buf, GG_ETOOBIG);
        CHECK_CONTAINS(m, "field 'task_id' is 257 bytes, the limit is 256");
        id[256] = '\0'; /* exactly at the limit is fine */
        snprintf(buf, sizeof buf, "{\"task_id\":\"%s\",\"language\":\"c\"}", id);
        ggi_task *t = parse(buf);
        CHECK(t && strlen(t->task_id) == 256);
        ggi_task_free(t);
    }
    /* UTF-8 ids are printable */
    ggi_task *t = parse("{\"task_id\":\"t\\u00e4sk\",\"language\":\"c\"}");
    CHECK(t != NULL);
    ggi_task_free(t);

    /* language */
    m = parse_fail("{\"task_id\":\"T1\",\"prompt\":\"x\"}", GG_EINVAL);
    CHECK_CONTAINS(m, "task 'T1': missing field 'language'");
    CHECK_CONTAINS(m, "python, c");
    m = parse_fail("{\"task_id\":\"T1\",\"language\":\"cobol\"}", GG_EINVAL);
    CHECK_STR(m, "task 'T1': field 'language' is 'cobol', supported are: python, c, cpp, "
                 "java, javascript, typescript, go, rust, bash");
    m = parse_fail("{\"task_id\":\"T1\",\"language\":3}", GG_EINVAL);
    CHECK_CONTAINS(m, "field 'language' must be a string");

    /* candidates: more than the limit */
    {
        char buf[2048] = "\"candidates\":[";
        for (int i = 0; i < 65; i++)
            strcat(buf, i ? ",\"c\"" : "\"c\"");
        strcat(buf, "]");
        m = field_fail(buf, GG_ETOOBIG);
        CHECK_CONTAINS(m, "field 'candidates' has 65 entries, the limit is 64");
    }
    static const bad_field bad[] = {
        /* text fields */
        { "\"prompt\":1", GG_EINVAL, "field 'prompt' must be a string, not a number", 0 },
        { "\"stub\":[]", GG_EINVAL, "field 'stub' must be a string, not an array", 0 },
        { "\"test\":true", GG_EINVAL, "field 'test' must be a string, not a boolean", 0 },
        { "\"canonical_solution\":{}", GG_EINVAL,
          "field 'canonical_solution' must be a string, not an object", 0 },
        { "\"entry_point\":\"1abc\"", GG_EINVAL, "field 'entry_point' must be an identifier", 0 },
        { "\"entry_point\":\"a-b\"", GG_EINVAL, "field 'entry_point' must be an identifier", 0 },
        { "\"entry_point\":\"\"", GG_EINVAL, "field 'entry_point' must be an identifier", 0 },
        { "\"entry_point\":7", GG_EINVAL, "field 'entry_point' must be a string", 0 },
        /* candidates */
        { "\"candidates\":\"x\"", GG_EINVAL, "field 'candidates' must be an array of strings", 0 },
        { "\"candidates\":[\"a\",2]", GG_EINVAL,
          "field 'candidates[1]' must be a string, not a number", 0 },
        /* budget */
        { "\"budget\":5", GG_EINVAL, "field 'budget' must be an object, not a number", 0 },
        { "\"budget\":{\"max_attempts\":0}", GG_EINVAL,
          "task 'T1': field 'budget.max_attempts' must be an integer from 1 to 100", 1 },
        { "\"budget\":{\"max_attempts\":101}", GG_EINVAL, NULL, 0 },
        { "\"budget\":{\"max_attempts\":2.5}", GG_EINVAL, NULL, 0 },
        { "\"budget\":{\"max_attempts\":\"3\"}", GG_EINVAL, "'budget.max_attempts'", 0 },
        { "\"budget\":{\"wall_s\":0}", GG_EINVAL,
          "field 'budget.wall_s' must be a number greater than 0", 0 },
        { "\"budget\":{\"wall_s\":-1}", GG_EINVAL, NULL, 0 },
        { "\"budget\":{\"wall_s\":\"1\"}", GG_EINVAL, NULL, 0 },
        { "\"budget\":{\"tokens\":0}", GG_EINVAL,
          "task 'T1': field 'budget.tokens' must be an integer from 1 to 1000000000000", 1 },
        { "\"budget\":{\"tokens\":1000000000001}", GG_EINVAL, NULL, 0 },
        { "\"budget\":{\"tokens\":-5}", GG_EINVAL, NULL, 0 },
        { "\"budget\":{\"tokens\":10.5}", GG_EINVAL, NULL, 0 },
        { "\"budget\":{\"tokens\":\"100\"}", GG_EINVAL, "'budget.tokens'", 0 },
        /* resources */
        { "\"resources\":[]", GG_EINVAL, "field 'resources' must be an object", 0 },
        { "\"resources\":{\"timeout_s\":0}", GG_EINVAL,
          "field 'resources.timeout_s' must be a number greater than 0 and at most 3600", 0 },
        { "\"resources\":{\"timeout_s\":3600.5}", GG_EINVAL, NULL, 0 },
        { "\"resources\":{\"memory_mb\":15}", GG_EINVAL,
          "field 'resources.memory_mb' must be an integer from 16 to 65536", 0 },
        { "\"resources\":{\"memory_mb\":65537}", GG_EINVAL, NULL, 0 },
        { "\"resources\":{\"memory_mb\":100.5}", GG_EINVAL, NULL, 0 },
        { "\"resources\":{\"cpu_s\":0}", GG_EINVAL, "field 'resources.cpu_s'", 0 },
        { "\"resources\":{\"cpu_s\":false}", GG_EINVAL, NULL, 0 },
        /* priority, humaneval flag */
        { "\"priority\":1001", GG_EINVAL,
          "field 'priority' must be an integer from -1000 to 1000", 0 },
        { "\"priority\":-1001", GG_EINVAL, NULL, 0 },
        { "\"priority\":0.5", GG_EINVAL, NULL, 0 },
        { "\"priority\":\"high\"", GG_EINVAL, NULL, 0 },
        { "\"humaneval\":\"yes\"", GG_EINVAL, "field 'humaneval' must be true or false", 0 },
    };
    check_bad_fields(bad, sizeof bad / sizeof bad[0]);

    /* the edges of each range are accepted */
    t = parse("{\"language\":\"c\",\"budget\":{\"max_attempts\":100,\"wall_s\":0.001},"
              "\"resources\":{\"timeout_s\":3600,\"memory_mb\":16,\"cpu_s\":0.5},"
              "\"priority\":-1000}");
    CHECK(t && t->max_attempts == 100 && t->memory_mb == 16 && t->priority == -1000 &&
          t->timeout_s == 3600);
    ggi_task_free(t);
    t = parse("{\"language\":\"c\",\"budget\":{\"tokens\":1}}");
    CHECK(t && t->tokens == 1);
    ggi_task_free(t);
    t = parse("{\"language\":\"c\",\"budget\":{\"tokens\":1000000000000}}");
    CHECK(t && t->tokens == 1000000000000LL);
    ggi_task_free(t);
}

/* A JSON string of n bytes of 'a' as a field. */
static char *big_field(const char *key, size_t n, int in_array)
{
    size_t cap = n + 256;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    int k = snprintf(buf, cap, "{\"task_id\":\"big\",\"language\":\"python\",\"%s\":%s\"", key,
                     in_array ? "[\"x\"," : "");
    memset(buf + k, 'a', n);
    snprintf(buf + k + n, cap - (size_t)k - n, "\"%s}", in_array ? "]" : "");
    return buf;
}

static void test_size_limits(void)
{
    const char *keys[] = { "prompt", "stub", "test", "canonical_solution" };
    for (size_t i = 0; i < 4; i++) {
        char *j = big_field(keys[i], GGI_TASK_MAX_TEXT + 1, 0);
        CHECK(j != NULL);
        if (!j)
            continue;
        const char *m = parse_fail(j, GG_ETOOBIG);
        char want[128];
        snprintf(want, sizeof want, "task 'big': field '%s' is %u bytes, the limit is %u",
                 keys[i], GGI_TASK_MAX_TEXT + 1, GGI_TASK_MAX_TEXT);
        CHECK_STR(m, want);
        free(j);
        j = big_field(keys[i], GGI_TASK_MAX_TEXT, 0); /* at the limit: fine */
        ggi_task *t = j ? parse(j) : NULL;
        CHECK(t != NULL);
        ggi_task_free(t);
        free(j);
    }
    char *j = big_field("candidates", GGI_TASK_MAX_TEXT + 1, 1);
    if (j) {
        const char *m = parse_fail(j, GG_ETOOBIG);
        CHECK_CONTAINS(m, "field 'candidates[1]' is 1048577 bytes");
        free(j);
    }
    /* the whole text */
    size_t n = GGI_TASK_MAX_JSON + 1;
    char *huge = malloc(n + 1);
    CHECK(huge != NULL);
    if (huge) {
        memset(huge, ' ', n);
        memcpy(huge, "{\"language\":\"c\"}", 16);
        huge[n] = '\0';
        ggi_task *t = NULL;
        CHECK_RC(ggi_task_parse(huge, n, &t), GG_ETOOBIG);
        CHECK(t == NULL);
        CHECK_CONTAINS(gg_error_last(), "the limit is 25165824");
        /* just under the limit parses (the white space after the value is allowed) */
        CHECK_RC(ggi_task_parse(huge, n - 1, &t), 0);
        ggi_task_free(t);
        free(huge);
    }
}

static void test_malformed(void)
{
    const char *m = parse_fail("{\"language\":", GG_EINVAL);
    CHECK_CONTAINS(m, "malformed JSON");
    m = parse_fail("", GG_EINVAL);
    CHECK_CONTAINS(m, "malformed JSON");
    m = parse_fail("{\"language\":\"c\"} trailing", GG_EINVAL);
    CHECK_CONTAINS(m, "malformed JSON");
    m = parse_fail("[1,2]", GG_EINVAL);
    CHECK_CONTAINS(m, "must be an object, not an array");
    m = parse_fail("\"python\"", GG_EINVAL);
    CHECK_CONTAINS(m, "must be an object, not a string");
    m = parse_fail("42", GG_EINVAL);
    CHECK_CONTAINS(m, "must be an object, not a number");
    m = parse_fail("null", GG_EINVAL);
    CHECK_CONTAINS(m, "must be an object, not null");
    ggi_task *t = (ggi_task *)1;
    CHECK_RC(ggi_task_parse(NULL, 0, &t), GG_EINVAL);
    CHECK(t == NULL);
    CHECK_RC(ggi_task_from_json(NULL, &t), GG_EINVAL);
    ggi_task_free(NULL);
}

static const char *HE_LINE =
    "{\"task_id\": \"HumanEval/0\", \"prompt\": \"from typing import List\\n\\n\\ndef "
    "has_close_elements(numbers: List[float], threshold: float) -> bool:\\n    \\\"\\\"\\\" "
    "Check.\\n    \\\"\\\"\\\"\\n\", \"entry_point\": \"has_close_elements\", "
    "\"canonical_solution\": \"    for idx, elem in enumerate(numbers):\\n        for idx2, "
    "elem2 in enumerate(numbers):\\n            if idx != idx2:\\n                distance = "
    "abs(elem - elem2)\\n                if distance < threshold:\\n                    "
    "return True\\n\\n    return False\\n\", \"test\": \"\\n\\nMETADATA = {}\\n\\n\\ndef "
    "check(candidate):\\n    assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3) == "
    "True\\n\\n\"}";

static void check_humaneval_task(const ggi_task *t, const char *id)
{
    CHECK_STR(t->task_id, id);
    CHECK_STR(t->language, "python");
    CHECK(t->humaneval == 1);
    CHECK(t->stub != NULL && t->prompt != NULL && strcmp(t->stub, t->prompt) == 0);
    CHECK(t->prompt && strstr(t->prompt, "def ") != NULL);
    CHECK(t->entry_point != NULL);
    CHECK(t->test && strstr(t->test, "def check(candidate)"));
    CHECK(t->canonical_solution != NULL);
}

static void test_humaneval(void)
{
    ggi_task *t = parse(HE_LINE);
    CHECK(t != NULL);
    if (t) {
        check_humaneval_task(t, "HumanEval/0");
        CHECK_STR(t->entry_point, "has_close_elements");
    }
    ggi_task_free(t);

    /* without one of the four fields it is not HumanEval: language is then missing */
    const char *m = parse_fail("{\"task_id\":\"HumanEval/9\",\"prompt\":\"def f():\\n\","
                               "\"test\":\"\",\"entry_point\":\"f\"}",
                               GG_EINVAL);
    CHECK_CONTAINS(m, "task 'HumanEval/9': missing field 'language'");
    /* a HumanEval line's fields are still validated */
    m = parse_fail("{\"task_id\":\"HumanEval/9\",\"prompt\":\"p\",\"canonical_solution\":\"c\","
                   "\"test\":\"t\",\"entry_point\":\"not an identifier\"}",
                   GG_EINVAL);
    CHECK_CONTAINS(m, "task 'HumanEval/9': field 'entry_point' must be an identifier");

    /* The real data set's first lines, when this checkout has it next to it. */
    const char *root = getenv("GG_SOURCE_ROOT");
    char path[1024];
    snprintf(path, sizeof path, "%s/../shared/data/HumanEval.jsonl.gz", root ? root : ".");
    FILE *probe = fopen(path, "rb");
    if (!probe) {
        fprintf(stderr, "note: %s not found, real HumanEval lines skipped\n", path);
        return;
    }
    fclose(probe);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "gzip -dc '%s' 2>/dev/null", path);
    FILE *gz = popen(cmd, "r");
    CHECK(gz != NULL);
    if (!gz)
        return;
    static char line[1 << 16];
    int n = 0;
    while (n < 5 && fgets(line, sizeof line, gz)) {
        t = parse(line);
        CHECK(t != NULL);
        if (t) {
            char id[32];
            snprintf(id, sizeof id, "HumanEval/%d", n);
            check_humaneval_task(t, id);
        }
        ggi_task_free(t);
        n++;
    }
    CHECK(n == 5);
    while (fgets(line, sizeof line, gz)) /* drain so gzip ends normally */
        ;
    pclose(gz);
}

static int str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static int json_eq(const cJSON *a, const cJSON *b)
{
    return (!a && !b) || (a && b && cJSON_Compare(a, b, 1));
}

static int tasks_equal(const ggi_task *a, const ggi_task *b)
{
    if (!str_eq(a->task_id, b->task_id) || !str_eq(a->language, b->language) ||
        !str_eq(a->prompt, b->prompt) || !str_eq(a->stub, b->stub) ||
        !str_eq(a->entry_point, b->entry_point) || !str_eq(a->test, b->test) ||
        !str_eq(a->canonical_solution, b->canonical_solution) ||
        a->n_candidates != b->n_candidates || a->max_attempts != b->max_attempts ||
        a->wall_s != b->wall_s || a->timeout_s != b->timeout_s ||
        a->memory_mb != b->memory_mb || a->cpu_s != b->cpu_s || a->priority != b->priority ||
        a->humaneval != b->humaneval || a->tokens != b->tokens ||
        !str_eq(a->canonical_patch, b->canonical_patch) ||
        !json_eq(a->workspace, b->workspace) || !json_eq(a->test_command, b->test_command) ||
        !json_eq(a->setup_command, b->setup_command) || !json_eq(a->deliver, b->deliver))
        return 0;
    for (size_t i = 0; i < a->n_candidates; i++)
        if (!str_eq(a->candidates[i], b->candidates[i]))
            return 0;
    return 1;
}

static void round_trip(const char *json)
{
    ggi_task *a = parse(json);
    CHECK(a != NULL);
    if (!a)
        return;
    cJSON *o = ggi_task_to_json(a);
    CHECK(o != NULL);
    /* every field is present */
    const char *keys[] = { "task_id", "language", "prompt", "stub", "entry_point", "test",
                           "candidates", "canonical_solution", "budget", "resources",
                           "priority", "humaneval" };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        CHECK(cJSON_GetObjectItemCaseSensitive(o, keys[i]) != NULL);
    const cJSON *budget = cJSON_GetObjectItem(o, "budget");
    CHECK(cJSON_GetObjectItem(budget, "max_attempts") && cJSON_GetObjectItem(budget, "wall_s"));
    const cJSON *res = cJSON_GetObjectItem(o, "resources");
    CHECK(cJSON_GetObjectItem(res, "timeout_s") && cJSON_GetObjectItem(res, "memory_mb") &&
          cJSON_GetObjectItem(res, "cpu_s"));
    ggi_task *b = NULL;
    CHECK_RC(ggi_task_from_json(o, &b), 0);
    if (b) {
        CHECK(tasks_equal(a, b));
        /* and through text */
        char *text = cJSON_PrintUnformatted(o);
        ggi_task *c = text ? parse(text) : NULL;
        CHECK(c && tasks_equal(a, c));
        cJSON *o2 = c ? ggi_task_to_json(c) : NULL;
        char *text2 = o2 ? cJSON_PrintUnformatted(o2) : NULL;
        CHECK_STR(text, text2);
        /* The compact form reads back to the same task, and so to the same full form
         * (the text whose hash identifies the task). */
        cJSON *k = ggi_task_to_json_compact(a);
        char *ktext = k ? cJSON_PrintUnformatted(k) : NULL;
        ggi_task *d = ktext ? parse(ktext) : NULL;
        CHECK(d && tasks_equal(a, d));
        cJSON *o3 = d ? ggi_task_to_json(d) : NULL;
        char *text3 = o3 ? cJSON_PrintUnformatted(o3) : NULL;
        CHECK_STR(text, text3);
        CHECK(ktext && text && strlen(ktext) <= strlen(text));
        cJSON_free(ktext);
        cJSON_free(text3);
        cJSON_Delete(k);
        cJSON_Delete(o3);
        ggi_task_free(d);
        cJSON_free(text);
        cJSON_free(text2);
        cJSON_Delete(o2);
        ggi_task_free(c);
    }
    ggi_task_free(b);
    cJSON_Delete(o);
    ggi_task_free(a);
}

static void test_round_trip(void)
{
    round_trip(FULL);
    round_trip("{\"language\":\"c\"}");
    round_trip(HE_LINE);
    round_trip("{\"language\":\"python\",\"budget\":{\"tokens\":250}}");
    round_trip("{\"language\":\"python\",\"budget\":{\"tokens\":1000000000000}}");
    round_trip("{\"task_id\":\"odd numbers\",\"language\":\"c\",\"resources\":{\"timeout_s\":"
               "0.1,\"cpu_s\":0.3333333333333333},\"budget\":{\"wall_s\":1e-3},"
               "\"candidates\":[\"\",\"x\\u0001\\\"\"],\"priority\":1000}");
    round_trip("{\"language\":\"python\",\"humaneval\":true,\"prompt\":\"def f():\"}");
    round_trip("{\"language\":\"python\",\"priority\":-3,\"isolation\":\"namespaces\","
               "\"requirements\":{\"gpus\":1,\"labels\":{\"zone\":\"eu\"}},"
               "\"budget\":{\"max_attempts\":2},\"resources\":{\"memory_mb\":256}}");
    /* Workspace tasks: every new field survives both forms. */
    round_trip("{\"task_id\":\"w1\",\"language\":\"python\",\"prompt\":\"fix it\","
               "\"workspace\":{\"repo\":\"/srv/r\",\"ref\":\"main\"},"
               "\"test_command\":[\"sh\",\"run_tests.sh\"],\"setup_command\":\"make deps\","
               "\"deliver\":{\"branch\":\"fix/w1\"},\"canonical_patch\":\"--- a/x\\n+++ b/x\\n\","
               "\"candidates\":[\"diff --git a/x b/x\\n\"]}");
    round_trip("{\"language\":\"c\",\"workspace\":{\"files\":{\"src/a.c\":\"int a;\\n\","
               "\"t.sh\":\"exit 1\\n\"}},\"test_command\":\"sh t.sh\"}");
    round_trip("{\"language\":\"python\",\"workspace\":{\"dir\":\"/tmp/x\","
               "\"commit\":\"0123456789abcdef0123456789abcdef01234567\"},"
               "\"test_command\":[\"true\"]}");
    /* The compact form of a small task holds only what it sets. */
    ggi_task *t = parse("{\"task_id\":\"n1\",\"language\":\"python\",\"prompt\":\"noop\"}");
    cJSON *o = t ? ggi_task_to_json_compact(t) : NULL;
    char *text = o ? cJSON_PrintUnformatted(o) : NULL;
    CHECK_STR(text, "{\"task_id\":\"n1\",\"language\":\"python\",\"prompt\":\"noop\"}");
    cJSON_free(text);
    cJSON_Delete(o);
    ggi_task_free(t);
    CHECK(ggi_task_to_json_compact(NULL) == NULL);
    ggi_task_json_compact(NULL); /* nothing to do */
    t = parse("{\"language\":\"c\"}");
    o = t ? ggi_task_to_json(t) : NULL;
    CHECK(o && cJSON_IsNull(cJSON_GetObjectItem(o, "task_id")));
    CHECK(o && cJSON_IsNull(cJSON_GetObjectItem(o, "stub")));
    CHECK(o && cJSON_GetArraySize(cJSON_GetObjectItem(o, "candidates")) == 0);
    CHECK(o && cJSON_IsFalse(cJSON_GetObjectItem(o, "humaneval")));
    CHECK(o && cJSON_GetObjectItem(o, "priority")->valuedouble == 0);
    /* an unset token budget is left out, so older tasks keep their normalised text */
    CHECK(o && !cJSON_GetObjectItem(cJSON_GetObjectItem(o, "budget"), "tokens"));
    cJSON_Delete(o);
    ggi_task_free(t);
    t = parse("{\"language\":\"c\",\"budget\":{\"tokens\":250}}");
    o = t ? ggi_task_to_json(t) : NULL;
    CHECK(o && cJSON_GetObjectItem(cJSON_GetObjectItem(o, "budget"), "tokens") &&
          cJSON_GetObjectItem(cJSON_GetObjectItem(o, "budget"), "tokens")->valuedouble == 250);
    cJSON_Delete(o);
    ggi_task_free(t);
    CHECK(ggi_task_to_json(NULL) == NULL);
}

/* What the scheduler stores of a task: nothing for a task that sets no needs, else the
 * needs it sets and only those. */
static void test_needs(void)
{
    ggi_task *t = NULL;
    char *needs = (char *)"unset";
    const char *plain = "{\"task_id\":\"a\",\"language\":\"python\",\"prompt\":\"p\"}";
    CHECK_RC(ggi_task_parse(plain, strlen(plain), &t), 0);
    CHECK_RC(ggi_task_needs(t, &needs), 0);
    CHECK(needs == NULL);
    ggi_task_free(t);
    t = NULL;
    const char *full = "{\"task_id\":\"b\",\"language\":\"c\",\"budget\":{\"max_attempts\":4,"
                       "\"wall_s\":9.5,\"tokens\":300},\"resources\":{\"memory_mb\":64},"
                       "\"requirements\":{\"gpus\":2,\"labels\":{\"zone\":\"eu\"}},"
                       "\"isolation\":\"namespaces\"}";
    CHECK_RC(ggi_task_parse(full, strlen(full), &t), 0);
    CHECK_RC(ggi_task_needs(t, &needs), 0);
    cJSON *n = needs ? cJSON_Parse(needs) : NULL;
    CHECK(n != NULL);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(n, "max_attempts")) == 4);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(n, "wall_s")) == 9.5);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(n, "tokens")) == 300);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(n, "memory_mb")) == 64);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(n, "gpus")) == 2);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(n, "labels"), "zone")),
              "eu");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(n, "isolation")), "namespaces");
    CHECK(cJSON_GetArraySize(n) == 7);
    cJSON_Delete(n);
    free(needs);
    ggi_task_free(t);
    CHECK_RC(ggi_task_needs(NULL, &needs), GG_EINVAL);
    CHECK(needs == NULL);
}

/* "requires": the shapes refused, each naming the field; the limits; the round trip and the
 * scheduler's needs; what a machine finds it has, and the cover check. */
static void test_requires(void)
{
    const char *m;
    m = parse_fail("{\"task_id\":\"r\",\"language\":\"go\",\"requires\":\"testify\"}", GG_EINVAL);
    CHECK_CONTAINS(m, "field 'requires' must be an array of strings, not a string");
    m = parse_fail("{\"task_id\":\"r\",\"language\":\"go\",\"requires\":[\"boost\",3]}",
                   GG_EINVAL);
    CHECK_CONTAINS(m, "field 'requires' entry 2 must be a string");
    m = parse_fail("{\"task_id\":\"r\",\"language\":\"go\",\"requires\":[\"pip:numpy\"]}",
                   GG_EINVAL);
    CHECK_CONTAINS(m, "field 'requires' entry 'pip:numpy' has an unknown ecosystem");
    m = parse_fail("{\"task_id\":\"r\",\"language\":\"go\",\"requires\":[\"rust:\"]}", GG_EINVAL);
    CHECK_CONTAINS(m, "field 'requires' entry 'rust:' has an empty name");
    m = parse_fail("{\"task_id\":\"r\",\"language\":\"go\",\"requires\":[\"go:a/../b\"]}",
                   GG_EINVAL);
    CHECK_CONTAINS(m, "is not a package name");
    m = parse_fail("{\"task_id\":\"r\",\"language\":\"go\",\"requires\":[\"npm:a b\"]}",
                   GG_EINVAL);
    CHECK_CONTAINS(m, "has a character outside");
    m = parse_fail("{\"task_id\":\"r\",\"language\":\"c\",\"requires\":[\"boost\",\"boost\"]}",
                   GG_EINVAL);
    CHECK_CONTAINS(m, "field 'requires' names 'boost' twice");
    char buf[1024];
    int k = snprintf(buf, sizeof buf, "{\"task_id\":\"r\",\"language\":\"c\",\"requires\":[");
    for (int i = 0; i <= GGI_TASK_MAX_REQUIRES; i++)
        k += snprintf(buf + k, sizeof buf - (size_t)k, "%s\"lib%d\"", i ? "," : "", i);
    snprintf(buf + k, sizeof buf - (size_t)k, "]}");
    m = parse_fail(buf, GG_ETOOBIG);
    CHECK_CONTAINS(m, "field 'requires' has more than 32 entries");
    char *big = big_field("requires", GGI_TASK_MAX_REQUIRE_BYTES + 1, 1);
    m = big ? parse_fail(big, GG_ETOOBIG) : "";
    CHECK_CONTAINS(m, "field 'requires' entry 2 is longer than 128 bytes");
    free(big);

    const char *ok = "{\"task_id\":\"r\",\"language\":\"go\",\"requires\":"
                     "[\"go:github.com/stretchr/testify/assert\",\"rust:regex\","
                     "\"npm:@scope/js-md5\",\"boost\"]}";
    round_trip(ok);
    ggi_task *t = parse(ok);
    char *needs = NULL;
    CHECK_RC(t ? ggi_task_needs(t, &needs) : -1, 0);
    cJSON *n = needs ? cJSON_Parse(needs) : NULL;
    const cJSON *req = cJSON_GetObjectItem(n, "requires");
    CHECK(cJSON_GetArraySize(req) == 4);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetArrayItem(req, 2)), "npm:@scope/js-md5");
    /* The cover check: a Go package inside an announced repository counts. */
    cJSON *have = cJSON_Parse("[\"boost\",\"go:github.com/stretchr/testify\",\"npm:@scope/js-md5\","
                              "\"rust:regex\"]");
    const char *missing = "unset";
    CHECK(ggi_lang_deps_cover(have, req, &missing) == 1);
    CHECK(missing == NULL);
    cJSON_DeleteItemFromArray(have, 3);
    CHECK(ggi_lang_deps_cover(have, req, &missing) == 0);
    CHECK_STR(missing, "rust:regex");
    cJSON *prefix_only = cJSON_Parse("[\"go:github.com/stretchr/test\"]");
    cJSON *go_req = cJSON_Parse("[\"go:github.com/stretchr/testify\"]");
    CHECK(ggi_lang_deps_cover(prefix_only, go_req, NULL) == 0);
    cJSON_Delete(prefix_only);
    cJSON_Delete(go_req);
    cJSON_Delete(have);
    cJSON_Delete(n);
    free(needs);
    ggi_task_free(t);
}

/* What a worker finds: npm packages (and scoped ones) on GRYPHGEN_NODE_PATH, sorted, no
 * name twice; a directory that is no package (a file, a hidden one) is not announced. */
static void test_deps_present(void)
{
    char root[] = "/tmp/gg-deps-XXXXXX", p[256];
    CHECK(mkdtemp(root) != NULL);
    const char *dirs[] = { "a", "b", "a/zz-pkg", "a/@sc", "a/@sc/inner", "b/zz-pkg",
                           "a/.hidden" };
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", root, dirs[i]);
        CHECK(mkdir(p, 0700) == 0);
    }
    snprintf(p, sizeof p, "%s/a/file-pkg", root);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    if (f)
        fclose(f);
    char np[600];
    snprintf(np, sizeof np, "%s/a:%s/b:%s/none", root, root, root);
    char *old = getenv("GRYPHGEN_NODE_PATH") ? strdup(getenv("GRYPHGEN_NODE_PATH")) : NULL;
    setenv("GRYPHGEN_NODE_PATH", np, 1);
    cJSON *have = ggi_lang_deps_present();
    CHECK(have != NULL);
    int zz = 0, scoped = 0, bad = 0, sorted = 1;
    const cJSON *e, *prev = NULL;
    cJSON_ArrayForEach(e, have)
    {
        const char *s = cJSON_GetStringValue(e);
        zz += !strcmp(s, "npm:zz-pkg");
        scoped += !strcmp(s, "npm:@sc/inner");
        bad += !strcmp(s, "npm:file-pkg") || !strcmp(s, "npm:.hidden") || !strcmp(s, "npm:@sc");
        if (prev && strcmp(prev->valuestring, s) >= 0)
            sorted = 0;
        prev = e;
    }
    CHECK(zz == 1);
    CHECK(scoped == 1);
    CHECK(bad == 0);
    CHECK(sorted);
    cJSON_Delete(have);
    if (old)
        setenv("GRYPHGEN_NODE_PATH", old, 1);
    else
        unsetenv("GRYPHGEN_NODE_PATH");
    free(old);
    snprintf(p, sizeof p, "%s/a/file-pkg", root);
    unlink(p);
    for (size_t i = sizeof dirs / sizeof dirs[0]; i-- > 0;) {
        snprintf(p, sizeof p, "%s/%s", root, dirs[i]);
        rmdir(p);
    }
    CHECK(rmdir(root) == 0);
}

/* The workspace fields: each bad shape named by its field. */
static void test_workspace_fields(void)
{
    const char *m;
    const char *ws = "\"workspace\":{\"repo\":\"/r\"}";
    char buf[2048];
#define WS_FAIL(extra, want) \
    (snprintf(buf, sizeof buf, "%s,%s", ws, extra), field_fail(buf, want))
    m = WS_FAIL("\"test_command\":5", GG_EINVAL);
    CHECK_CONTAINS(m, "field 'test_command' must be an array of strings (argv) or a string");
    m = WS_FAIL("\"test_command\":[]", GG_EINVAL);
    CHECK_CONTAINS(m, "field 'test_command' must not be an empty array");
    m = WS_FAIL("\"test_command\":[\"\"]", GG_EINVAL);
    CHECK_CONTAINS(m, "field 'test_command[0]' (the program) must not be empty");
    m = WS_FAIL("\"test_command\":[\"sh\",3]", GG_EINVAL);
    CHECK_CONTAINS(m, "field 'test_command[1]' must be a string, not a number");
    m = WS_FAIL("\"test_command\":\"  \"", GG_EINVAL);
    CHECK_CONTAINS(m, "field 'test_command' must not be empty");
    m = WS_FAIL("\"test_command\":\"t\",\"setup_command\":{}", GG_EINVAL);
    CHECK_CONTAINS(m, "field 'setup_command' must be an array of strings");
    m = WS_FAIL("\"test_command\":\"t\",\"deliver\":\"x\"", GG_EINVAL);
    CHECK_CONTAINS(m, "field 'deliver' must be an object");
    m = WS_FAIL("\"test_command\":\"t\",\"deliver\":{}", GG_EINVAL);
    CHECK_CONTAINS(m, "missing field 'deliver.branch'");
    m = WS_FAIL("\"test_command\":\"t\",\"deliver\":{\"branch\":7}", GG_EINVAL);
    CHECK_CONTAINS(m, "field 'deliver.branch' must be a string");
    m = WS_FAIL("\"test_command\":\"t\",\"deliver\":{\"branch\":\"a b\"}", GG_EINVAL);
    CHECK_CONTAINS(m, "field 'deliver.branch' may not hold spaces");
    m = WS_FAIL("\"test_command\":\"t\",\"deliver\":{\"branch\":\"a/../b\"}", GG_EINVAL);
    CHECK_CONTAINS(m, "field 'deliver.branch' is not a usable branch name");
    m = WS_FAIL("\"test_command\":\"t\",\"deliver\":{\"branch\":\"x\",\"y\":1}", GG_EINVAL);
    CHECK_CONTAINS(m, "field 'deliver.y' is unknown");
    m = WS_FAIL("\"test_command\":\"t\",\"canonical_patch\":[1]", GG_EINVAL);
    CHECK_CONTAINS(m, "field 'canonical_patch' must be a string");
    m = WS_FAIL("\"prompt\":\"p\"", GG_EINVAL);
    CHECK_CONTAINS(m, "missing field 'test_command'");
    m = WS_FAIL("\"test_command\":\"t\",\"test\":\"assert 1\"", GG_EINVAL);
    CHECK_CONTAINS(m, "field 'test' cannot be used with 'workspace'");
    m = WS_FAIL("\"test_command\":\"t\",\"stub\":\"def f():\"", GG_EINVAL);
    CHECK_CONTAINS(m, "field 'stub' cannot be used with 'workspace'");
#undef WS_FAIL
    static const bad_field ws_bad[] = {
        /* the workspace itself: ggi_ws_check's messages, with the task named */
        { "\"workspace\":5,\"test_command\":\"t\"", GG_EINVAL, "workspace", 0 },
        { "\"workspace\":{},\"test_command\":\"t\"", GG_EINVAL, "workspace", 0 },
        { "\"workspace\":{\"repo\":\"/r\",\"dir\":\"/d\"},\"test_command\":\"t\"", GG_EINVAL,
          "workspace", 0 },
        { "\"workspace\":{\"files\":{\"../x\":\"y\"}},\"test_command\":\"t\"", GG_EINVAL,
          "workspace.files", 0 },
        { "\"workspace\":{\"repo\":\"/r\",\"commit\":\"xyz\"},\"test_command\":\"t\"", GG_EINVAL,
          "workspace.commit", 0 },
        /* workspace-only fields without a workspace */
        { "\"test_command\":\"t\"", GG_EINVAL, "field 'test_command' needs a 'workspace'", 0 },
        { "\"deliver\":{\"branch\":\"b\"}", GG_EINVAL, "field 'deliver' needs a 'workspace'", 0 },
        { "\"canonical_patch\":\"x\"", GG_EINVAL,
          "field 'canonical_patch' needs a 'workspace'", 0 },
    };
    check_bad_fields(ws_bad, sizeof ws_bad / sizeof ws_bad[0]);
    /* caps */
    {
        size_t n = GGI_TASK_MAX_COMMAND_BYTES + 10;
        char *big = malloc(n + 200);
        if (big) {
            int k = snprintf(big, n + 200, "{\"task_id\":\"T1\",\"language\":\"python\",%s,"
                             "\"test_command\":\"", ws);
            memset(big + k, 'e', n);
            strcpy(big + k + n, "\"}");
            m = parse_fail(big, GG_ETOOBIG);
            CHECK_CONTAINS(m, "field 'test_command' is");
            free(big);
        }
    }
    /* the parsed values, and the string form's argv */
    ggi_task *t = parse("{\"language\":\"python\",\"workspace\":{\"dir\":\"/d\"},"
                        "\"test_command\":\"python3 -m unittest\",\"setup_command\":[\"make\"],"
                        "\"deliver\":{\"branch\":\"gryphgen/x\"},\"canonical_patch\":\"P\"}");
    CHECK(t != NULL);
    if (t) {
        CHECK(cJSON_IsObject(t->workspace));
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(t->workspace, "dir")), "/d");
        CHECK(cJSON_IsString(t->test_command));
        CHECK(cJSON_IsArray(t->setup_command));
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(t->deliver, "branch")), "gryphgen/x");
        CHECK_STR(t->canonical_patch, "P");
        cJSON *argv = NULL;
        CHECK_RC(ggi_task_command_argv(t->test_command, &argv), 0);
        char *a = argv ? cJSON_PrintUnformatted(argv) : NULL;
        CHECK_STR(a, "[\"sh\",\"-c\",\"python3 -m unittest\"]");
        cJSON_free(a);
        cJSON_Delete(argv);
        CHECK_RC(ggi_task_command_argv(t->setup_command, &argv), 0);
        a = argv ? cJSON_PrintUnformatted(argv) : NULL;
        CHECK_STR(a, "[\"make\"]");
        cJSON_free(a);
        cJSON_Delete(argv);
        CHECK_RC(ggi_task_command_argv(t->workspace, &argv), GG_EINVAL);
        CHECK(argv == NULL);
        ggi_task_free(t);
    }
    /* a task without workspace fields keeps its normalised form: none of them written */
    t = parse("{\"language\":\"c\"}");
    cJSON *o = t ? ggi_task_to_json(t) : NULL;
    CHECK(o && !cJSON_GetObjectItem(o, "workspace") && !cJSON_GetObjectItem(o, "test_command") &&
          !cJSON_GetObjectItem(o, "deliver") && !cJSON_GetObjectItem(o, "canonical_patch"));
    cJSON_Delete(o);
    ggi_task_free(t);
}

int main(void)
{
    test_minimal();
    test_full();
    test_nulls_are_absent();
    test_field_errors();
    test_size_limits();
    test_malformed();
    test_humaneval();
    test_round_trip();
    test_needs();
    test_workspace_fields();
    test_requires();
    test_deps_present();
    return test_exit();
}
