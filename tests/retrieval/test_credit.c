/*
 * test_credit.c - credit assignment in retrieval learning (lib/retrieval/credit.h, the fts5
 * backend's weighted and per-kind feedback, the learner's feedback and solutions): position
 * weights separate a misleading first reference from a helpful later one; cited references
 * get the credit; the leads of a failed attempt go last in the next context; usefulness per
 * kind of task does not punish a reference globally; a passing solution is found by the next
 * task of its kind, one per task and a few per kind, and is demoted when it later misleads;
 * citations from outside are sanitised; bad feedback is refused.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "gryphgen.h"
#include "orchestrator/learner.h"
#include "retrieval/credit.h"
#include "retrieval/fts5.h"
#include "testdb.h"
#include "testutil.h"

static char dir[64];
static char db[128];
static int db_n;

static gg_retriever_t *open_r(double weight)
{
    snprintf(db, sizeof db, "%s/c%d.db", dir, ++db_n);
    gg_retriever_options o = GG_RETRIEVER_OPTIONS_INIT;
    o.backend = "fts5";
    o.db_path = db;
    o.usefulness_weight = weight;
    o.exploration = 0;
    o.seed = 5;
    gg_retriever_t *r = NULL;
    CHECK_RC(gg_retriever_new(&r, &o), 0);
    return r;
}

/* Adds a one-chunk document; copies its id into id. */
static void add(gg_retriever_t *r, const char *source, const char *text, char id[24])
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "source", source);
    cJSON_AddStringToObject(d, "text", text);
    cJSON_AddStringToObject(d, "language", "text");
    char *j = cJSON_PrintUnformatted(d);
    cJSON_Delete(d);
    char *out = NULL;
    CHECK_RC(gg_retriever_add(r, j, &out), 0);
    free(j);
    cJSON *res = out ? cJSON_Parse(out) : NULL;
    const char *v = cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(res, "ids"), 0));
    snprintf(id, 24, "%s", v ? v : "");
    cJSON_Delete(res);
    gg_free(out);
}

/* Searches (python, k 5, the kind of text unless kind is given); returns the parsed reply. */
static cJSON *search(gg_retriever_t *r, const char *text, const char *kind)
{
    cJSON *q = cJSON_CreateObject();
    cJSON_AddStringToObject(q, "text", text);
    cJSON_AddStringToObject(q, "language", "python");
    if (kind)
        cJSON_AddStringToObject(q, "kind", kind);
    char *j = cJSON_PrintUnformatted(q);
    cJSON_Delete(q);
    char *out = NULL;
    CHECK_RC(gg_retriever_search(r, j, &out), 0);
    free(j);
    cJSON *res = out ? cJSON_Parse(out) : NULL;
    gg_free(out);
    return res;
}

static const char *first_id(const cJSON *res)
{
    const cJSON *it = cJSON_GetArrayItem(cJSON_GetObjectItem(res, "results"), 0);
    return cJSON_GetStringValue(cJSON_GetObjectItem(it, "id"));
}

static const cJSON *result_by_id(const cJSON *res, const char *id)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(res, "results"))
    {
        const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(it, "id"));
        if (v && strcmp(v, id) == 0)
            return it;
    }
    return NULL;
}

/* The id of the first solution among the results, or "". */
static const char *first_solution(const cJSON *res)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(res, "results"))
    {
        const char *k = cJSON_GetStringValue(cJSON_GetObjectItem(it, "kind"));
        if (k && strcmp(k, "solution") == 0)
            return cJSON_GetStringValue(cJSON_GetObjectItem(it, "id"));
    }
    return "";
}

static double field(const cJSON *o, const char *k)
{
    return cJSON_GetNumberValue(cJSON_GetObjectItem(o, k));
}

/* A task's result as the scheduler hands it to the learner: one attempt per entry of
 * contexts ("A,B"), each failing but the last when passed; cited (or NULL) on the last. */
static cJSON *result(const char *task_id, const char *prompt, const char *kind, int passed,
                     const char *const *contexts, int n, const char *cited, const char *code)
{
    cJSON *res = cJSON_CreateObject();
    cJSON_AddStringToObject(res, "task_id", task_id);
    cJSON_AddStringToObject(res, "status", passed ? "passed" : "failed");
    if (code)
        cJSON_AddStringToObject(res, "code", code);
    cJSON *spec = cJSON_CreateObject();
    cJSON_AddStringToObject(spec, "prompt", prompt);
    char *st = cJSON_PrintUnformatted(spec);
    cJSON_AddStringToObject(res, "task_spec", st);
    free(st);
    cJSON_Delete(spec);
    cJSON *h = cJSON_AddArrayToObject(res, "history");
    for (int i = 0; i < n; i++) {
        cJSON *rec = cJSON_CreateObject();
        cJSON_AddBoolToObject(rec, "passed", passed && i == n - 1);
        cJSON_AddStringToObject(rec, "language", "python");
        cJSON_AddStringToObject(rec, "context_kind", kind);
        cJSON *ids = cJSON_AddArrayToObject(rec, "context_ids");
        char buf[256];
        snprintf(buf, sizeof buf, "%s", contexts[i]);
        for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ","))
            cJSON_AddItemToArray(ids, cJSON_CreateString(tok));
        if (cited && i == n - 1) {
            cJSON *c = cJSON_AddArrayToObject(rec, "cited");
            cJSON_AddItemToArray(c, cJSON_CreateString(cited));
        }
        cJSON_AddItemToArray(h, rec);
    }
    return res;
}

static void learn(gg_retriever_t *r, cJSON *res)
{
    ggi_learn_from_result(r, NULL, res);
    cJSON_Delete(res);
}

static const char *PROMPT = "What is the current zorblax port?";

/* Two references, a misleading one that BM25 ranks first (M) and a helpful one (H). A
 * trusting model fails with M first and passes with H first (the retry demoted M). */
static void test_position_separates(void)
{
    gg_retriever_t *r = open_r(0.5);
    char m[24], h[24], ctx_mh[64], ctx_hm[64];
    add(r, "/c/m.md", "zorblax port zorblax port: 11", m);
    add(r, "/c/h.md", "The zorblax port is now 42 (moved).", h);
    static const char *const other[] = { "quimby timeout is 30 seconds", "vantor quota: 5 GB",
                                         "plexa region eu-west", "drumlin codec opus",
                                         "fennic cipher aes", "gossam threshold 0.7" };
    for (int i = 0; i < 6; i++) {
        char src[32], oid[24];
        snprintf(src, sizeof src, "/c/o%d.md", i);
        add(r, src, other[i], oid);
    }
    char kind[GGI_CREDIT_KIND_MAX];
    ggi_credit_kind(PROMPT, "python", kind);
    cJSON *res = search(r, PROMPT, NULL);
    CHECK_STR(first_id(res), m); /* plain BM25 order before any outcome */
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(res, "kind")), kind);
    cJSON_Delete(res);
    snprintf(ctx_mh, sizeof ctx_mh, "%s,%s", m, h);
    snprintf(ctx_hm, sizeof ctx_hm, "%s,%s", h, m);
    const char *attempts[] = { ctx_mh, ctx_hm };
    /* Equal credit (what every id got before) would leave M and H tied: each in a failure and
     * a pass. By position, M takes the failure and H the pass. */
    learn(r, result("t1", PROMPT, kind, 1, attempts, 2, NULL, "return 42"));
    res = search(r, PROMPT, NULL);
    const cJSON *rm = result_by_id(res, m), *rh = result_by_id(res, h);
    CHECK(rm && rh);
    CHECK(fabs(field(rm, "failures") - 1.0) < 1e-9 && fabs(field(rm, "successes") - 1.0 / 3) < 1e-9);
    CHECK(fabs(field(rh, "successes") - 1.0) < 1e-9 && fabs(field(rh, "failures") - 1.0 / 3) < 1e-9);
    CHECK(field(rh, "usefulness") > field(rm, "usefulness"));
    cJSON_Delete(res);
    /* A few more such tasks: H comes first for the kind (the solution aside). */
    for (int i = 2; i <= 4; i++) {
        char id[8];
        snprintf(id, sizeof id, "t%d", i);
        learn(r, result(id, PROMPT, kind, 1, attempts, 2, NULL, "return 42"));
    }
    res = search(r, PROMPT, NULL);
    const cJSON *it;
    const char *first_doc = NULL;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(res, "results"))
    {
        const char *k = cJSON_GetStringValue(cJSON_GetObjectItem(it, "kind"));
        if (k && strcmp(k, "solution") != 0 && !first_doc)
            first_doc = cJSON_GetStringValue(cJSON_GetObjectItem(it, "id"));
    }
    CHECK(first_doc && strcmp(first_doc, h) == 0);
    cJSON_Delete(res);
    gg_retriever_destroy(&r);
}

/* Citations: the cited reference gets the whole outcome, the uncited one nothing. */
static void test_cited_credit(void)
{
    gg_retriever_t *r = open_r(0.5);
    char a[24], b[24], ctx[64];
    add(r, "/c/a.md", "walrus checksum walrus checksum", a);
    add(r, "/c/b.md", "The walrus checksum adds the digits of a number.", b);
    snprintf(ctx, sizeof ctx, "%s,%s", a, b);
    const char *attempts[] = { ctx };
    char kind[GGI_CREDIT_KIND_MAX];
    ggi_credit_kind("walrus checksum", "python", kind);
    learn(r, result("w1", "walrus checksum", kind, 1, attempts, 1, b, "return 6"));
    cJSON *res = search(r, "walrus checksum", NULL);
    const cJSON *ra = result_by_id(res, a), *rb = result_by_id(res, b);
    CHECK(ra && rb);
    CHECK(field(ra, "successes") == 0 && field(ra, "failures") == 0);
    CHECK(field(rb, "successes") == 1 && field(rb, "kind_successes") == 1);
    cJSON_Delete(res);
    /* A citation of something not in the context counts as none: position weights. */
    double w[2];
    cJSON *ids = cJSON_CreateArray(), *cited = cJSON_CreateArray();
    cJSON_AddItemToArray(ids, cJSON_CreateString("7"));
    cJSON_AddItemToArray(ids, cJSON_CreateString("9"));
    cJSON_AddItemToArray(cited, cJSON_CreateString("1234"));
    ggi_credit_weights(ids, cited, w, 2);
    CHECK(w[0] == 1.0 && fabs(w[1] - GGI_CREDIT_DECAY) < 1e-12);
    cJSON_AddItemToArray(cited, cJSON_CreateString("9"));
    ggi_credit_weights(ids, cited, w, 2);
    CHECK(w[0] == GGI_CREDIT_UNCITED && w[1] == 1.0);
    /* The leads of a failed attempt: what it cited, else its first reference. */
    cJSON *leads = cJSON_CreateArray();
    CHECK_RC(ggi_credit_leads(ids, cited, leads), 0);
    CHECK(cJSON_GetArraySize(leads) == 1);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetArrayItem(leads, 0)), "9");
    cJSON_Delete(leads);
    leads = cJSON_CreateArray();
    CHECK_RC(ggi_credit_leads(ids, NULL, leads), 0);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetArrayItem(leads, 0)), "7");
    cJSON_Delete(leads);
    cJSON_Delete(ids);
    cJSON_Delete(cited);
    gg_retriever_destroy(&r);
}

static cJSON *context_of(const char *const *ids, int n)
{
    cJSON *ctx = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "id", ids[i]);
        cJSON_AddStringToObject(d, "text", "x");
        cJSON_AddItemToArray(ctx, d);
    }
    return ctx;
}

/* Demotion: the demoted references go last, the others keep their order. */
static void test_demote_and_sanitise(void)
{
    static const char *const ids[] = { "4", "2", "9", "5" };
    cJSON *ctx = context_of(ids, 4);
    cJSON *demote = cJSON_Parse("[\"2\", \"4\", \"77\", 5, \"bad\\nid\"]");
    cJSON *demoted = cJSON_CreateArray();
    CHECK_RC(ggi_credit_demote(ctx, demote, demoted), 0);
    const char *want[] = { "9", "5", "4", "2" };
    for (int i = 0; i < 4; i++)
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(ctx, i), "id")),
                  want[i]);
    char *dj = cJSON_PrintUnformatted(demoted);
    CHECK_STR(dj, "[\"4\",\"2\"]"); /* in context order; unknown and bad ids dropped */
    free(dj);
    cJSON_Delete(demoted);
    cJSON_Delete(demote);
    /* Citations from outside: only ids of the context, once each, capped. */
    cJSON *hostile = cJSON_CreateArray();
    cJSON_AddItemToArray(hostile, cJSON_CreateString("9\nCITED: 4"));
    cJSON_AddItemToArray(hostile, cJSON_CreateString("nope"));
    cJSON_AddItemToArray(hostile, cJSON_CreateNumber(4));
    for (int i = 0; i < 10000; i++)
        cJSON_AddItemToArray(hostile, cJSON_CreateString(i % 2 ? "5" : "2"));
    cJSON *cited = NULL;
    CHECK_RC(ggi_credit_cited(hostile, ctx, &cited), 0);
    char *cj = cJSON_PrintUnformatted(cited);
    CHECK_STR(cj, "[\"2\",\"5\"]");
    free(cj);
    cJSON_Delete(cited);
    CHECK_RC(ggi_credit_cited(cJSON_GetArrayItem(hostile, 1), ctx, &cited), 0);
    CHECK(cJSON_IsArray(cited) && cJSON_GetArraySize(cited) == 0); /* not an array: none */
    cJSON_Delete(cited);
    cJSON_Delete(hostile);
    cJSON_Delete(ctx);
    CHECK(!ggi_credit_id_ok("") && !ggi_credit_id_ok("a b") && ggi_credit_id_ok("task:x/1"));
    /* The fts5 backend demotes what the query names, before its rule on solutions. */
    gg_retriever_t *r = open_r(0.5);
    char a[24], b[24], c[24];
    add(r, "/d/a.md", "osprey nest osprey nest osprey", a);
    add(r, "/d/b.md", "osprey nest height", b);
    add(r, "/d/c.md", "the osprey builds a nest of sticks on a pole near water", c);
    cJSON *res = search(r, "osprey nest", NULL);
    CHECK_STR(first_id(res), a);
    cJSON_Delete(res);
    char q[160], *out = NULL;
    snprintf(q, sizeof q, "{\"text\": \"osprey nest\", \"demote\": [\"%s\", %s, \"x\"]}", a, b);
    CHECK_RC(gg_retriever_search(r, q, &out), 0);
    res = cJSON_Parse(out);
    gg_free(out);
    const cJSON *rs = cJSON_GetObjectItem(res, "results");
    CHECK(cJSON_GetArraySize(rs) == 3);
    CHECK_STR(first_id(res), c);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(rs, 1), "id")), a);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(rs, 2), "id")), b);
    cJSON_Delete(res);
    gg_retriever_destroy(&r);
}

/* A reference that helps one kind of task and misleads another keeps its place for the
 * first: the second kind's failures do not cost it globally beyond the back-off. */
static void test_per_kind(void)
{
    gg_retriever_t *r = open_r(0.5);
    char s[24], t[24];
    add(r, "/k/s.md", "heron ledger rounding rule: round half to even", s);
    add(r, "/k/t.md", "heron ledger rounding rule heron ledger notes: round half up", t);
    const char *kx = "python:kindx", *ky = "python:kindy";
    cJSON *res = search(r, "heron ledger rounding", kx);
    CHECK_STR(first_id(res), t); /* BM25 prefers T */
    cJSON_Delete(res);
    char fb[256];
    for (int i = 0; i < 4; i++) {
        snprintf(fb, sizeof fb, "{\"passed\": true, \"ids\": [\"%s\"], \"kind\": \"%s\"}", s, kx);
        CHECK_RC(gg_retriever_feedback(r, fb), 0);
        snprintf(fb, sizeof fb, "{\"passed\": false, \"ids\": [\"%s\"], \"kind\": \"%s\"}", s, ky);
        CHECK_RC(gg_retriever_feedback(r, fb), 0);
        snprintf(fb, sizeof fb, "{\"passed\": false, \"ids\": [\"%s\"], \"kind\": \"%s\"}", t, kx);
        CHECK_RC(gg_retriever_feedback(r, fb), 0);
        snprintf(fb, sizeof fb, "{\"passed\": true, \"ids\": [\"%s\"], \"kind\": \"%s\"}", t, ky);
        CHECK_RC(gg_retriever_feedback(r, fb), 0);
    }
    res = search(r, "heron ledger rounding", kx);
    CHECK_STR(first_id(res), s);
    CHECK(field(result_by_id(res, s), "kind_successes") == 4);
    cJSON_Delete(res);
    res = search(r, "heron ledger rounding", ky);
    CHECK_STR(first_id(res), t);
    cJSON_Delete(res);
    /* A kind never seen backs off to the global counts: 4 and 4 each, BM25 decides. */
    res = search(r, "heron ledger rounding", "python:kindz");
    CHECK_STR(first_id(res), t);
    const cJSON *rs = result_by_id(res, s);
    CHECK(fabs(field(rs, "usefulness") - 0.5) < 1e-9);
    cJSON_Delete(res);
    /* Weighted feedback: shares add up; bad shares, lengths and kinds are refused. */
    snprintf(fb, sizeof fb, "{\"passed\": true, \"ids\": [\"%s\", \"%s\"], \"weights\": [0.25, 0]}",
             s, t);
    CHECK_RC(gg_retriever_feedback(r, fb), 0);
    res = search(r, "heron ledger rounding", kx);
    CHECK(fabs(field(result_by_id(res, s), "successes") - 4.25) < 1e-9);
    CHECK(field(result_by_id(res, t), "successes") == 4);
    cJSON_Delete(res);
    CHECK_RC(gg_retriever_feedback(r, "{\"passed\": true, \"ids\": [\"1\"], \"weights\": [2]}"),
             GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "weights");
    CHECK_RC(gg_retriever_feedback(r, "{\"passed\": true, \"ids\": [\"1\"], \"weights\": [1, 1]}"),
             GG_EINVAL);
    CHECK_RC(gg_retriever_feedback(r, "{\"passed\": true, \"ids\": [\"1\"], \"weights\": [\"x\"]}"),
             GG_EINVAL);
    CHECK_RC(gg_retriever_feedback(r, "{\"passed\": true, \"ids\": [\"1\"], \"kind\": \"a b\"}"),
             GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "kind");
    char *out = NULL;
    CHECK_RC(gg_retriever_search(r, "{\"text\": \"heron\", \"kind\": \"x\\ny\"}", &out), GG_EINVAL);
    CHECK(out == NULL);
    gg_retriever_destroy(&r);
}

/* A passing task's solution is found by the next task of its kind, first; one per task, a
 * few per kind; when it later misleads it is demoted like any reference. */
static void test_solutions(void)
{
    gg_retriever_t *r = open_r(0.5);
    char d[24];
    add(r, "/s/doc.md", "pelican tariff table: the pelican tariff is listed per region", d);
    const char *prompt = "Compute the pelican tariff for a region.";
    char kind[GGI_CREDIT_KIND_MAX];
    ggi_credit_kind(prompt, "python", kind);
    const char *ctx[] = { d };
    learn(r, result("p1", prompt, kind, 1, ctx, 1, NULL, "def tariff(r):\n    return 7\n"));
    /* A similar task (other numbers, same words): the solution comes first. */
    cJSON *res = search(r, "Compute the pelican tariff for region 12.", NULL);
    const cJSON *top = cJSON_GetArrayItem(cJSON_GetObjectItem(res, "results"), 0);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(top, "source")), "task:p1");
    CHECK_CONTAINS(cJSON_GetStringValue(cJSON_GetObjectItem(top, "text")), "pelican tariff");
    CHECK_CONTAINS(cJSON_GetStringValue(cJSON_GetObjectItem(top, "text")), "return 7");
    char sol[24];
    snprintf(sol, sizeof sol, "%s", first_id(res));
    cJSON_Delete(res);
    /* The same task passing again with other code keeps one solution: the last. */
    learn(r, result("p1", prompt, kind, 1, ctx, 1, NULL, "def tariff(r):\n    return 8\n"));
    /* More tasks of the kind: only the newest few stay. */
    for (int i = 2; i <= 6; i++) {
        char id[16], code[64];
        snprintf(id, sizeof id, "p%d", i);
        snprintf(code, sizeof code, "def tariff(r):\n    return %d\n", 100 + i);
        learn(r, result(id, prompt, kind, 1, ctx, 1, NULL, code));
    }
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM rag_solutions WHERE kind = '%s'", kind);
    CHECK(test_db_int(db, sql) == GGI_FTS5_SOLUTIONS_PER_KIND);
    CHECK(test_db_int(db, "SELECT count(*) FROM rag_solutions WHERE task_id = 'p1'") == 0);
    CHECK(test_db_int(db, "SELECT count(*) FROM rag_chunks WHERE kind = 'solution'") ==
          GGI_FTS5_SOLUTIONS_PER_KIND);
    /* A solution that misleads the tasks of its kind goes down like any reference: the
     * first solution of the results falls behind the others. */
    res = search(r, prompt, NULL);
    CHECK(first_solution(res)[0] != '\0');
    snprintf(sol, sizeof sol, "%s", first_solution(res));
    double before = field(result_by_id(res, sol), "usefulness");
    cJSON_Delete(res);
    const char *sctx[] = { sol };
    for (int i = 0; i < 6; i++) {
        char id[16];
        snprintf(id, sizeof id, "f%d", i);
        learn(r, result(id, prompt, kind, 0, sctx, 1, NULL, NULL));
    }
    res = search(r, prompt, NULL);
    CHECK(strcmp(first_solution(res), sol) != 0);
    CHECK(field(result_by_id(res, sol), "kind_failures") == 6);
    CHECK(field(result_by_id(res, sol), "usefulness") < before);
    cJSON_Delete(res);
    /* Another kind of task sees at most one solution, never first while anything else is. */
    res = search(r, "pelican tariff region table listed", "python:otherkind");
    int sols = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(res, "results"))
        sols += strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(it, "kind")), "solution") == 0;
    CHECK(sols == 1);
    CHECK_STR(first_id(res), d);
    cJSON_Delete(res);
    gg_retriever_destroy(&r);
}

/* The kind key: numbers and word order do not count, language does. */
static void test_kind_key(void)
{
    char a[GGI_CREDIT_KIND_MAX], b[GGI_CREDIT_KIND_MAX], c[GGI_CREDIT_KIND_MAX];
    ggi_credit_kind("Return 3 plus 4, the sum.", "python", a);
    ggi_credit_kind("the sum: return 5 plus 9", "python", b);
    ggi_credit_kind("Return 3 plus 4, the sum.", "c", c);
    CHECK_STR(a, b);
    CHECK(strcmp(a, c) != 0);
    CHECK(strncmp(a, "python:", 7) == 0 && strlen(a) == 7 + 16);
    ggi_credit_kind("1 2 3 !!", NULL, a);
    CHECK_STR(a, "any:-");
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/gg-credit-XXXXXX");
    if (!test_make_dir(dir))
        return 1;
    test_kind_key();
    test_position_separates();
    test_cited_credit();
    test_demote_and_sanitise();
    test_per_kind();
    test_solutions();
    test_remove_dir(dir);
    return test_exit();
}
