/*
 * attempt.c - one attempt of a task, as a worker thread runs it: retrieve context, ask the
 * generator for code, assemble the program, analyse it, run it against the task's test and
 * read the verdict. The outcome is a JSON record (docs/tasks.md); faults of the
 * infrastructure (generator or executor down, a runtime missing) are reported as such and
 * never as a failure of the code.
 */
#include <stdlib.h>
#include <string.h>

#include "orq.h"
#include "../core/lang.h"
#include "../generation/hooks.h"
#include "../execution/executor_caps.h"
#include "../retrieval/credit.h"
#include "../retrieval/retriever_none.h"

#define CONTEXT_K 5
#define CONTEXT_BUDGET 8000 /* characters of retrieved text passed to the generator */

static int transient(int status)
{
    return status == GG_EGENERATOR || status == GG_ETIMEDOUT || status == GG_EIO ||
           status == GG_EBUSY || status == GG_EEXEC || status == GG_ECANCELLED ||
           status == GG_ETRANSPORT;
}

/* Marks the record as an infrastructure fault of a stage; retry says whether asking again
 * may help. Returns 0 (the attempt is reported, not failed). */
static int infra_retry(cJSON *rec, const char *stage, int status, const char *message,
                       int retry)
{
    cJSON *in = cJSON_AddObjectToObject(rec, "infra");
    if (!in)
        return ggi_error(GG_ENOMEM, "out of memory");
    cJSON_AddStringToObject(in, "stage", stage);
    cJSON_AddNumberToObject(in, "status", status);
    cJSON_AddStringToObject(in, "message", message && *message ? message : gg_strerror(status));
    cJSON_AddBoolToObject(in, "retry", retry);
    if (!retry && transient(status))
        cJSON_AddBoolToObject(in, "permanent", 1);
    return GG_OK;
}

static int infra(cJSON *rec, const char *stage, int status, const char *message)
{
    return infra_retry(rec, stage, status, message, transient(status));
}

int ggi_attempt_infra(cJSON *rec, const char *stage, int status, const char *message,
                      int retry)
{
    return infra_retry(rec, stage, status, message, retry < 0 ? transient(status) : retry);
}

/* Context from the retriever, within the budget; failures only cost the context. The query
 * names the task's kind (per-kind usefulness) and what led earlier failed attempts of the
 * task, which goes last (retries as experiments): both are recorded (docs/retrieval.md). */
static cJSON *retrieve(const ggi_attempt_env *env, const ggi_task *t, const cJSON *job,
                       cJSON *rec)
{
    cJSON *ctx = cJSON_CreateArray();
    if (!ctx || ggi_retriever_is_none(env->retriever))
        return ctx;
    char kind[GGI_CREDIT_KIND_MAX];
    ggi_credit_kind(t->prompt, t->language, kind);
    cJSON_AddStringToObject(rec, "context_kind", kind);
    cJSON *q = cJSON_CreateObject();
    cJSON_AddStringToObject(q, "text", t->prompt ? t->prompt : "");
    cJSON_AddStringToObject(q, "language", t->language);
    cJSON_AddNumberToObject(q, "k", CONTEXT_K);
    cJSON_AddStringToObject(q, "kind", kind);
    const cJSON *demote = cJSON_GetObjectItem(job, "demote");
    if (cJSON_IsArray(demote))
        cJSON_AddItemToObject(q, "demote", cJSON_Duplicate(demote, 1));
    char *qtext = ggi_json_print(q);
    cJSON_Delete(q);
    char *rtext = NULL;
    if (!qtext || gg_retriever_search(env->retriever, qtext, &rtext) != GG_OK) {
        ggi_log(env->log, GG_LOG_WARN, "retrieval failed, going on without context: %s",
                gg_error_last());
        free(qtext);
        return ctx;
    }
    free(qtext);
    cJSON *res = cJSON_Parse(rtext);
    gg_free(rtext);
    size_t used = 0;
    cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItem(res, "results"))
    {
        const char *text = cJSON_GetStringValue(cJSON_GetObjectItem(item, "text"));
        if (!text || used + strlen(text) > CONTEXT_BUDGET)
            continue;
        used += strlen(text);
        cJSON_AddItemToArray(ctx, cJSON_Duplicate(item, 1));
    }
    cJSON_Delete(res);
    cJSON *demoted = cJSON_CreateArray();
    ggi_credit_demote(ctx, demote, demoted); /* for backends that do not know "demote" */
    if (cJSON_GetArraySize(demoted) > 0)
        cJSON_AddItemToObject(rec, "demoted", demoted);
    else
        cJSON_Delete(demoted);
    return ctx;
}

/* What an executor request carries of its task: the task's minimum isolation, and its
 * language (the container backend picks the image by it; the process backend ignores it). */
int ggi_attempt_task_request(const ggi_task *t, cJSON *req)
{
    int rc = GG_OK;
    if (t->isolation)
        rc = ggi_json_add_str(req, "min_isolation", t->isolation);
    if (!rc && t->language && !cJSON_GetObjectItemCaseSensitive(req, "language"))
        rc = ggi_json_add_str(req, "language", t->language);
    return rc;
}

/* Runs one executor request; *out gets the parsed result. */
int ggi_attempt_execute(const ggi_attempt_env *env, const cJSON *request, cJSON **out)
{
    *out = NULL;
    char *text = ggi_json_print(request);
    if (!text)
        return ggi_error(GG_ENOMEM, "out of memory");
    char *result = NULL;
    int rc = gg_executor_run(env->executor, text, &result);
    free(text);
    if (rc != GG_OK)
        return rc;
    *out = cJSON_Parse(result);
    gg_free(result);
    return *out ? GG_OK : ggi_error(GG_EEXEC, "the executor returned unreadable JSON");
}

static char *analysis_reason(const cJSON *findings)
{
    const cJSON *f;
    cJSON_ArrayForEach(f, findings)
    {
        const char *sev = cJSON_GetStringValue(cJSON_GetObjectItem(f, "severity"));
        if (sev && strcmp(sev, "error") == 0) {
            const char *msg = cJSON_GetStringValue(cJSON_GetObjectItem(f, "message"));
            const cJSON *line = cJSON_GetObjectItem(f, "line");
            if (cJSON_IsNumber(line))
                return ggi_asprintf("does not compile: %s (line %d)", msg ? msg : "error",
                                    line->valueint);
            return ggi_asprintf("does not compile: %s", msg ? msg : "error");
        }
    }
    return ggi_strdup("does not compile");
}

/* Generates the code; returns the completion or NULL after marking the record. The request's
 * task is the full normalised form (docs/generator.md: every field, absent ones null), not
 * the compact form the job carries: a generator reads fields without knowing which ones a
 * task left out. */
static char *generate(const ggi_attempt_env *env, const cJSON *job, const ggi_task *t,
                      cJSON *context, cJSON *rec)
{
    return ggi_attempt_generate(env, job, ggi_task_to_json(t), context, NULL, rec);
}

char *ggi_attempt_generate(const ggi_attempt_env *env, const cJSON *job, cJSON *task,
                           cJSON *context, cJSON *workspace, cJSON *rec)
{
    cJSON *req = cJSON_CreateObject();
    if (!req || !task) {
        cJSON_Delete(req);
        cJSON_Delete(task);
        cJSON_Delete(workspace);
        infra(rec, "generate", GG_ENOMEM, "out of memory");
        return NULL;
    }
    cJSON_AddItemToObject(req, "task", task);
    if (workspace)
        cJSON_AddItemToObject(req, "workspace", workspace);
    cJSON_AddItemToObject(req, "attempt", cJSON_Duplicate(cJSON_GetObjectItem(job, "n"), 1));
    const cJSON *fb = cJSON_GetObjectItem(job, "feedback");
    if (fb)
        cJSON_AddItemReferenceToObject(req, "feedback", (cJSON *)fb);
    else
        cJSON_AddItemToObject(req, "feedback", cJSON_CreateArray());
    cJSON_AddItemReferenceToObject(req, "context", context);
    /* The Task Monitor's changed strategy after a stuck loop (docs/generator.md). */
    const cJSON *strategy = cJSON_GetObjectItem(job, "strategy");
    if (cJSON_IsObject(strategy)) {
        cJSON_AddItemReferenceToObject(req, "strategy", (cJSON *)strategy);
        cJSON_AddItemToObject(rec, "strategy", cJSON_Duplicate(strategy, 1));
    }
    char *text = ggi_json_print(req);
    cJSON_Delete(req);
    if (!text)
        return NULL;
    char *resp = NULL;
    int rc = gg_generator_generate(env->generator, text, &resp);
    free(text);
    if (rc == GG_EEXHAUSTED) {
        cJSON_AddBoolToObject(rec, "exhausted", 1);
        cJSON_AddStringToObject(rec, "reason", gg_error_last());
        return NULL;
    }
    if (rc != GG_OK) {
        /* A refusal (a bad key, an unknown model) would be the same when asked again. */
        infra_retry(rec, "generate", rc, gg_error_last(),
                    transient(rc) && !ggi_generator_permanent());
        return NULL;
    }
    cJSON *r = cJSON_Parse(resp);
    gg_free(resp);
    const char *code = cJSON_GetStringValue(cJSON_GetObjectItem(r, "code"));
    char *out = ggi_strdup(code);
    if (!out)
        infra(rec, "generate", GG_EGENERATOR, "the generator's response has no 'code' string");
    const cJSON *usage = cJSON_GetObjectItem(r, "usage");
    if (usage)
        cJSON_AddItemToObject(rec, "usage", cJSON_Duplicate(usage, 1));
    /* The references the generator says it relied on: only ids of its context count. */
    cJSON *cited = NULL;
    if (cJSON_GetObjectItem(r, "cited") && ggi_credit_cited(cJSON_GetObjectItem(r, "cited"),
                                                            context, &cited) == GG_OK)
        cJSON_AddItemToObject(rec, "cited", cited);
    /* The strategy that answered (openai: endpoint, model, temperature), for the record and
     * the feedback that teaches the generator's bandit. */
    const cJSON *arm = cJSON_GetObjectItem(r, "arm");
    if (cJSON_IsObject(arm))
        cJSON_AddItemToObject(rec, "arm", cJSON_Duplicate(arm, 1));
    if (cJSON_IsTrue(cJSON_GetObjectItem(r, "journal")))
        cJSON_AddBoolToObject(rec, "journal", 1);
    cJSON_Delete(r);
    return out;
}

void ggi_attempt_finish(const ggi_attempt_env *env, cJSON *rec, double t0, double t_gen,
                        double t_gen_end, double analyze_ms, double execute_ms)
{
    cJSON *d = cJSON_AddObjectToObject(rec, "durations");
    if (d) {
        cJSON_AddNumberToObject(d, "retrieve_ms", t_gen - t0);
        cJSON_AddNumberToObject(d, "generate_ms", t_gen_end - t_gen);
        cJSON_AddNumberToObject(d, "analyze_ms", analyze_ms);
        cJSON_AddNumberToObject(d, "execute_ms", execute_ms);
        cJSON_AddNumberToObject(d, "total_ms", ggi_now_ms() - t0);
    }
    /* The tests' verdict back to the generator that wrote the code (hooks.h). */
    if (cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(rec, "passed")))
        ggi_generator_feedback(env->generator, rec);
}

/* The benchmark backend: the attempt passes without generating or running code, and without
 * reading the task (the orchestrator validated it at submission). */
static int skipped_record(const cJSON *njson, cJSON **out_record)
{
    cJSON *rec = cJSON_CreateObject();
    cJSON *d = NULL;
    if (!rec || !cJSON_AddNumberToObject(rec, "n", njson->valueint) ||
        !cJSON_AddStringToObject(rec, "generator", "none") ||
        !cJSON_AddBoolToObject(rec, "passed", 1) ||
        !cJSON_AddStringToObject(rec, "reason", "noop executor") ||
        !(d = cJSON_AddObjectToObject(rec, "durations")) ||
        !cJSON_AddNumberToObject(d, "total_ms", 0)) {
        cJSON_Delete(rec);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    *out_record = rec;
    return GG_OK;
}

/* The record names the context passages the generator was given, for the learner's credit. */
static void add_context_ids(cJSON *rec, const cJSON *context)
{
    cJSON *used = cJSON_AddArrayToObject(rec, "context_ids");
    const cJSON *c;
    cJSON_ArrayForEach(c, context)
    {
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(c, "id"));
        if (id)
            cJSON_AddItemToArray(used, cJSON_CreateString(id));
    }
}

/* A failed analysis ends the attempt: no execution, not passed, the findings as reason. */
static void analysis_failed(cJSON *rec, const cJSON *findings)
{
    char *why = analysis_reason(findings);
    cJSON_AddNullToObject(rec, "execution");
    cJSON_AddBoolToObject(rec, "passed", 0);
    ggi_json_add_str(rec, "reason", why);
    cJSON_AddStringToObject(rec, "signature", "analysis");
    free(why);
}

/* Analysis: a separate job where the language has one. Returns the record's "analysis"
 * object when the attempt goes on to execution, NULL when it ended here (recorded). */
static cJSON *run_analysis(const ggi_attempt_env *env, const ggi_task *t,
                           const char *program, cJSON *rec, double *analyze_ms)
{
    cJSON *findings = NULL, *areq = NULL;
    int ok = 1;
    double ta = ggi_now_ms();
    int rc = ggi_lang_analysis_request(t, program, env->runtimes, &areq);
    if (rc == GG_OK && areq)
        rc = ggi_attempt_task_request(t, areq);
    if (rc == GG_OK && areq) {
        cJSON *ares = NULL;
        rc = ggi_attempt_execute(env, areq, &ares);
        if (rc == GG_OK)
            rc = ggi_lang_analysis_read(t, ares, &findings, &ok);
        cJSON_Delete(ares);
    }
    cJSON_Delete(areq);
    *analyze_ms = ggi_now_ms() - ta;
    if (rc != GG_OK) {
        infra(rec, "analyze", rc, gg_error_last());
        return NULL;
    }
    cJSON *analysis = cJSON_AddObjectToObject(rec, "analysis");
    cJSON_AddBoolToObject(analysis, "ok", ok);
    cJSON_AddItemToObject(analysis, "findings", findings ? findings : cJSON_CreateArray());
    if (!ok) {
        analysis_failed(rec, findings);
        return NULL;
    }
    return analysis;
}

/* Execution against the test, and the verdict into the record. */
static void run_test(const ggi_attempt_env *env, const ggi_task *t, const char *program,
                     cJSON *rec, cJSON *analysis, double *execute_ms)
{
    cJSON *treq = NULL, *tres = NULL;
    double te = ggi_now_ms();
    int rc = ggi_lang_test_request(t, program, env->runtimes, &treq);
    if (rc == GG_OK)
        rc = ggi_attempt_task_request(t, treq);
    if (rc == GG_OK)
        rc = ggi_attempt_execute(env, treq, &tres);
    cJSON_Delete(treq);
    *execute_ms = ggi_now_ms() - te;
    if (rc != GG_OK) {
        cJSON_DeleteItemFromObject(rec, "analysis");
        infra(rec, "execute", rc, gg_error_last());
        return;
    }
    ggi_verdict v;
    memset(&v, 0, sizeof v);
    rc = ggi_lang_evaluate(t, tres, &v);
    if (rc != GG_OK) {
        cJSON_Delete(tres);
        cJSON_DeleteItemFromObject(rec, "analysis");
        infra(rec, "evaluate", rc, gg_error_last());
        return;
    }
    if (v.analysis_failed) {
        /* The harness found the program does not compile; nothing of it ran. */
        cJSON_ReplaceItemInObject(analysis, "ok", cJSON_CreateBool(0));
        cJSON_ReplaceItemInObject(analysis, "findings",
                                  v.findings ? v.findings : cJSON_CreateArray());
        v.findings = NULL;
        analysis_failed(rec, cJSON_GetObjectItem(analysis, "findings"));
        cJSON_Delete(tres);
    } else {
        cJSON_AddItemToObject(rec, "execution", tres);
        cJSON_AddBoolToObject(rec, "passed", v.passed);
        ggi_json_add_str(rec, "reason", v.reason);
        ggi_json_add_str(rec, "signature", v.signature);
    }
    ggi_verdict_free(&v);
}

int ggi_attempt_run(const ggi_attempt_env *env, const cJSON *job, cJSON **out_record)
{
    *out_record = NULL;
    const cJSON *task_json = cJSON_GetObjectItem(job, "task");
    const cJSON *njson = cJSON_GetObjectItem(job, "n");
    if (!cJSON_IsObject(task_json) || !cJSON_IsNumber(njson))
        return ggi_error(GG_EINVAL, "malformed job: needs 'task' and 'n'");
    if (ggi_executor_caps(env->executor) & GG_EXECUTOR_CAP_SKIP_ATTEMPTS)
        return skipped_record(njson, out_record);
    ggi_task *t = NULL;
    int rc = ggi_task_from_json(task_json, &t);
    if (rc != GG_OK)
        return ggi_error_wrap("malformed job: ");
    cJSON *rec = cJSON_CreateObject();
    if (!rec) {
        ggi_task_free(t);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    cJSON_AddNumberToObject(rec, "n", njson->valueint);
    cJSON_AddStringToObject(rec, "generator", gg_generator_name(env->generator));
    cJSON_AddStringToObject(rec, "language", t->language);
    if (t->workspace) {
        /* A workspace task: its own flow (attempt_workspace.c). */
        ggi_attempt_workspace(env, job, t, rec);
        ggi_task_free(t);
        *out_record = rec;
        return GG_OK;
    }
    double t0 = ggi_now_ms();
    cJSON *context = retrieve(env, t, job, rec);
    double t_gen = ggi_now_ms();
    char *completion = generate(env, job, t, context, rec);
    double t_gen_end = ggi_now_ms();
    double analyze_ms = 0, execute_ms = 0;
    char *program = NULL;
    add_context_ids(rec, context);
    /* No completion: exhausted or an infrastructure fault, already in the record. */
    if (completion && (rc = ggi_lang_program(t, completion, &program)) != GG_OK) {
        infra(rec, "assemble", rc, gg_error_last());
        free(program);
        program = NULL;
    }
    if (program) {
        cJSON_AddStringToObject(rec, "code", program);
        cJSON *analysis = run_analysis(env, t, program, rec, &analyze_ms);
        if (analysis)
            run_test(env, t, program, rec, analysis, &execute_ms);
    }
    ggi_attempt_finish(env, rec, t0, t_gen, t_gen_end, analyze_ms, execute_ms);
    cJSON_Delete(context);
    free(completion);
    free(program);
    ggi_task_free(t);
    *out_record = rec;
    return GG_OK;
}
