/*
 * lang.c - the languages (docs/tasks.md, "Languages"): the table of per-language descriptors
 * (lang_*.c), their names and aliases, and the steps every language shares: assembling a
 * program from a task's stub and a completion, asking the language for its analysis and test
 * jobs, and reading a job's result back as findings or a verdict (reason and failure
 * signature) that the next attempt can use.
 *
 * A test job's result reads, in this order: cancelled; timed out; an analysis failure (the
 * Python harness's GG-FINDING lines, or a compiled language's compile step that printed
 * GGI_LANG_ANALYSIS_MARKER: its diagnostics become findings, and nothing ran); killed by a
 * signal (a C or C++ assert() names its expression, file and line); the language's own
 * reading (a Python traceback, a Java exception, a Rust panic, a failed Go test, a failed
 * JavaScript assertion); else the exit code and the last line of stderr.
 */
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lang_impl.h"

static const ggi_lang_ops *const LANGS[] = {
    &ggi_lang_python, &ggi_lang_c,  &ggi_lang_cpp,  &ggi_lang_java, &ggi_lang_javascript,
    &ggi_lang_typescript, &ggi_lang_go, &ggi_lang_rust, &ggi_lang_bash,
};
#define N_LANGS (sizeof LANGS / sizeof LANGS[0])

static const ggi_lang_ops *find_lang(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < N_LANGS; i++) {
        if (strcasecmp(name, LANGS[i]->name) == 0)
            return LANGS[i];
        for (size_t k = 0; LANGS[i]->aliases && LANGS[i]->aliases[k]; k++)
            if (strcasecmp(name, LANGS[i]->aliases[k]) == 0)
                return LANGS[i];
    }
    return NULL;
}

const char *ggi_lang_canonical(const char *language)
{
    const ggi_lang_ops *l = find_lang(language);
    return l ? l->name : NULL;
}

const char *ggi_lang_from_task_id(const char *task_id)
{
    for (size_t i = 0; task_id && i < N_LANGS; i++) {
        const char *p = LANGS[i]->task_prefix;
        if (p && strncmp(task_id, p, strlen(p)) == 0)
            return LANGS[i]->name;
    }
    return NULL;
}

const char *ggi_lang_names(void)
{
    return "python, c, cpp, java, javascript, typescript, go, rust, bash";
}

size_t ggi_lang_count(void)
{
    return N_LANGS;
}

const char *ggi_lang_name_at(size_t i)
{
    return i < N_LANGS ? LANGS[i]->name : NULL;
}

int ggi_lang_supported(const char *language)
{
    return find_lang(language) != NULL;
}

int ggi_lang_available(const char *language, const ggi_runtimes *rt)
{
    const ggi_lang_ops *l = find_lang(language);
    if (!l || !rt)
        return 0;
    if (l == &ggi_lang_python)
        return rt->python != NULL;
    if (l == &ggi_lang_c)
        return rt->cc != NULL;
    for (size_t k = 0; l->tools && l->tools[k] >= 0; k++)
        if (!rt->tool[l->tools[k]])
            return 0;
    return 1;
}

static const ggi_lang_ops *check_task(const ggi_task *t)
{
    if (!t || !t->language) {
        ggi_error(GG_EINVAL, "no task or task without a language");
        return NULL;
    }
    const ggi_lang_ops *l = find_lang(t->language);
    if (!l)
        ggi_error(GG_EINVAL, "language '%s' is not supported (supported: %s)", t->language,
                  ggi_lang_names());
    return l;
}

/* ---- program assembly ---- */

int ggi_lang_program_with(const ggi_task *t, const char *completion,
                          const char *(*find)(const char *, const char *), char **out)
{
    ggi_buf b = GGI_BUF_INIT;
    const char *stub = t->stub;
    int rc = GG_OK;
    if (stub && *stub) {
        size_t keep = strlen(stub);
        if (t->entry_point && find && find(completion, t->entry_point)) {
            /* A whole function: keep what the stub has before its own definition. */
            const char *def = find(stub, t->entry_point);
            if (def)
                keep = (size_t)(def - stub);
        }
        rc = ggi_buf_append(&b, stub, keep);
        if (!rc && keep > 0 && stub[keep - 1] != '\n')
            rc = ggi_buf_puts(&b, "\n");
    }
    if (!rc)
        rc = ggi_buf_puts(&b, completion);
    if (rc) {
        ggi_buf_free(&b);
        return ggi_lang_oom();
    }
    *out = ggi_buf_steal(&b);
    return *out ? GG_OK : ggi_lang_oom();
}

int ggi_lang_program(const ggi_task *t, const char *completion, char **out)
{
    if (!out)
        return ggi_error(GG_EINVAL, "no output pointer");
    *out = NULL;
    const ggi_lang_ops *l = check_task(t);
    if (!l)
        return GG_EINVAL;
    if (!completion)
        return ggi_error(GG_EINVAL, "no completion");
    return l->program ? l->program(t, completion, out)
                      : ggi_lang_program_with(t, completion, NULL, out);
}

/* ---- executor requests ---- */

int ggi_lang_analysis_request(const ggi_task *t, const char *program, const ggi_runtimes *rt,
                              cJSON **out)
{
    if (!out)
        return ggi_error(GG_EINVAL, "no output pointer");
    *out = NULL;
    const ggi_lang_ops *l = check_task(t);
    if (!l)
        return GG_EINVAL;
    if (!program)
        return ggi_error(GG_EINVAL, "no program");
    return l->analysis ? l->analysis(t, program, rt, out) : GG_OK;
}

int ggi_lang_test_request(const ggi_task *t, const char *program, const ggi_runtimes *rt,
                          cJSON **out)
{
    if (!out)
        return ggi_error(GG_EINVAL, "no output pointer");
    *out = NULL;
    const ggi_lang_ops *l = check_task(t);
    if (!l)
        return GG_EINVAL;
    if (!program)
        return ggi_error(GG_EINVAL, "no program");
    return l->test(t, program, rt, out);
}

/* ---- reading results ---- */

/* Adds every finding in text (harness lines, the language's and compiler diagnostics). */
static int collect_findings(const ggi_lang_ops *l, const char *text, cJSON *arr)
{
    for (const char *p = text; *p; p = ggi_lang_next_line(p)) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        int rc = GG_OK;
        if (ggi_lang_harness_finding(p, n, arr, &rc)) {
            if (rc)
                return rc;
            continue;
        }
        if (l && l->finding) {
            int k = l->finding(p, n, arr);
            if (k < 0)
                return GG_ENOMEM;
            if (k > 0)
                continue;
        }
        long line = 0, col = 0;
        const char *msg = NULL;
        size_t msg_len = 0, file_len = 0;
        const char *sev = ggi_lang_diagnostic(p, n, &line, &col, &msg, &msg_len, &file_len);
        if (sev && (rc = ggi_lang_add_finding(arr, sev, line, col, msg, msg_len)))
            return rc;
    }
    return GG_OK;
}

/* When the analyser failed without a diagnostic we can read: what it said, as an error. */
static int add_unread_failure(const cJSON *r, const char *err, cJSON *arr)
{
    char *tail = NULL;
    if (ggi_lang_bool(r, "timed_out"))
        tail = ggi_strdup("the analysis timed out");
    else if (ggi_lang_bool(r, "cancelled"))
        tail = ggi_strdup("the analysis was cancelled");
    else if (*err)
        tail = ggi_lang_tail(err, GGI_LANG_MAX_MESSAGE);
    else
        tail = ggi_asprintf("the analysis failed with exit code %d and no message",
                            (int)ggi_lang_num(r, "exit_code", 0));
    int rc = tail ? ggi_lang_add_finding(arr, "error", 0, 0, tail, strlen(tail)) : GG_ENOMEM;
    free(tail);
    return rc;
}

int ggi_lang_analysis_read(const ggi_task *t, const cJSON *exec_result, cJSON **out_findings,
                           int *out_ok)
{
    if (!out_findings || !out_ok)
        return ggi_error(GG_EINVAL, "no output pointer");
    *out_findings = NULL;
    *out_ok = 0;
    if (!cJSON_IsObject(exec_result))
        return ggi_error(GG_EINVAL, "the analysis result must be a JSON object");
    const ggi_lang_ops *l = t && t->language ? find_lang(t->language) : NULL;
    cJSON *arr = cJSON_CreateArray();
    if (!arr)
        return ggi_lang_oom();
    const char *err = ggi_lang_str(exec_result, "stderr");
    int rc = collect_findings(l, err, arr);
    int failed = ggi_lang_bool(exec_result, "timed_out") ||
                 ggi_lang_bool(exec_result, "cancelled") ||
                 ggi_lang_num(exec_result, "exit_code", 0) != 0 ||
                 ggi_lang_num(exec_result, "signal", 0) != 0;
    if (!rc && failed && !ggi_lang_has_error(arr))
        rc = add_unread_failure(exec_result, err, arr);
    if (rc) {
        cJSON_Delete(arr);
        return ggi_lang_oom();
    }
    *out_ok = !ggi_lang_has_error(arr);
    *out_findings = arr;
    return GG_OK;
}

/* ---- verdicts ---- */

/* The test job's own analysis step failed: findings, and a reason naming the first error. */
static int analysis_verdict(const ggi_lang_ops *l, const cJSON *r, ggi_verdict *v)
{
    const char *err = ggi_lang_str(r, "stderr");
    cJSON *arr = cJSON_CreateArray();
    if (!arr || collect_findings(l, err, arr) ||
        (!ggi_lang_has_error(arr) && add_unread_failure(r, err, arr))) {
        cJSON_Delete(arr);
        return GG_ENOMEM;
    }
    v->analysis_failed = 1;
    v->findings = arr;
    const cJSON *f = NULL, *e;
    cJSON_ArrayForEach(e, arr)
    {
        if (!f && strcmp(ggi_lang_str(e, "severity"), "error") == 0)
            f = e;
    }
    long line = (long)ggi_lang_num(f, "line", 0);
    const char *msg = f ? ggi_lang_str(f, "message") : "";
    if (l == &ggi_lang_python) {
        if (line > 0)
            v->reason = ggi_asprintf("%s at solution.py line %ld", *msg ? msg : "SyntaxError",
                                     line);
        else
            v->reason = ggi_asprintf("%s in solution.py", *msg ? msg : "SyntaxError");
        v->signature = ggi_asprintf("syntax@solution.py:%ld", line);
    } else {
        if (line > 0)
            v->reason = ggi_asprintf("does not compile: %s (line %ld)", msg, line);
        else
            v->reason = ggi_asprintf("does not compile: %s", msg);
        v->signature = ggi_asprintf("analysis:%ld", line);
    }
    return GG_OK;
}

static int signal_verdict(const cJSON *r, int sig, ggi_verdict *v)
{
    const char *err = ggi_lang_str(r, "stderr");
    const char *name = ggi_lang_str(r, "signal_name");
    if (!*name)
        name = ggi_lang_signal_name(sig);
    char file[64];
    long line = 0;
    char *expr = NULL;
    int a = ggi_lang_c_assert(err, file, sizeof file, &line, &expr);
    if (a < 0)
        return GG_ENOMEM;
    if (a > 0) {
        char how[48];
        if (name)
            snprintf(how, sizeof how, "%s", name);
        else
            snprintf(how, sizeof how, "signal %d", sig);
        if (file[0])
            v->reason = ggi_asprintf("assertion `%s' failed at %s line %ld (%s)", expr, file,
                                     line, how);
        else
            v->reason = ggi_asprintf("assertion `%s' failed (%s)", expr, how);
        v->signature = file[0] ? ggi_asprintf("assert@%s:%ld", file, line)
                               : ggi_strdup("assert");
        free(expr);
        return GG_OK;
    }
    const char *why = sig == SIGXCPU   ? ": CPU time limit exceeded"
                      : sig == SIGXFSZ ? ": file size limit exceeded"
                                       : "";
    if (name)
        v->reason = ggi_asprintf("killed by signal %d (%s)%s", sig, name, why);
    else
        v->reason = ggi_asprintf("killed by signal %d%s", sig, why);
    v->signature = ggi_asprintf("signal:%d", sig);
    return GG_OK;
}

static int fill_verdict(const ggi_lang_ops *l, const ggi_task *t, const cJSON *r,
                        ggi_verdict *v)
{
    const char *err = ggi_lang_str(r, "stderr");
    int exit_code = (int)ggi_lang_num(r, "exit_code", 0);
    int sig = (int)ggi_lang_num(r, "signal", 0);

    if (ggi_lang_bool(r, "cancelled")) {
        v->reason = ggi_strdup("cancelled");
        v->signature = ggi_strdup("cancelled");
        return GG_OK;
    }
    if (ggi_lang_bool(r, "timed_out")) {
        v->reason = ggi_asprintf("timed out after %g s", ggi_lang_timeout(t));
        v->signature = ggi_strdup("timeout");
        return GG_OK;
    }
    if (sig == 0 && exit_code == GGI_LANG_ANALYSIS_EXIT &&
        strstr(err, l == &ggi_lang_python ? "GG-FINDING " : GGI_LANG_ANALYSIS_MARKER))
        return analysis_verdict(l, r, v);
    if (sig != 0)
        return signal_verdict(r, sig, v);
    if (l->failure) {
        int k = l->failure(t, r, v);
        if (k < 0)
            return GG_ENOMEM;
        if (k > 0)
            return GG_OK;
    }
    size_t n = 0;
    const char *ll = ggi_lang_last_line(err, &n);
    char *m = ll ? ggi_lang_trimmed(ll, n, GGI_LANG_MAX_REASON_LINE) : NULL;
    if (ll && !m)
        return GG_ENOMEM;
    v->reason = m ? ggi_asprintf("exit code %d: %s", exit_code, m)
                  : ggi_asprintf("exit code %d", exit_code);
    v->signature = ggi_asprintf("exit:%d", exit_code);
    free(m);
    return GG_OK;
}

int ggi_lang_evaluate(const ggi_task *t, const cJSON *exec_result, ggi_verdict *v)
{
    if (!v)
        return ggi_error(GG_EINVAL, "no verdict");
    const ggi_lang_ops *l = check_task(t);
    if (!l)
        return GG_EINVAL;
    if (!cJSON_IsObject(exec_result))
        return ggi_error(GG_EINVAL, "the test job's result must be a JSON object");
    memset(v, 0, sizeof *v);
    const cJSON *ec = cJSON_GetObjectItemCaseSensitive(exec_result, "exit_code");
    v->passed = cJSON_IsNumber(ec) && ec->valuedouble == 0 &&
                ggi_lang_num(exec_result, "signal", 0) == 0 &&
                !ggi_lang_bool(exec_result, "timed_out") &&
                !ggi_lang_bool(exec_result, "cancelled") &&
                !(l->failed_quietly && l->failed_quietly(exec_result));
    if (v->passed)
        return GG_OK;
    int rc = fill_verdict(l, t, exec_result, v);
    if (!rc && (!v->reason || !v->signature))
        rc = GG_ENOMEM;
    if (rc) {
        ggi_verdict_free(v);
        return ggi_lang_oom();
    }
    return GG_OK;
}

void ggi_verdict_free(ggi_verdict *v)
{
    if (!v)
        return;
    cJSON_Delete(v->findings);
    free(v->reason);
    free(v->signature);
    memset(v, 0, sizeof *v);
}
