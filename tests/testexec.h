/*
 * testexec.h - what the C tests that run jobs through an executor share: making an executor
 * that insists on the namespace sandbox (or skipping where there is none), running one
 * request and parsing its result (a failure is a CHECK of testutil.h), and reading fields of
 * that result.
 */
#ifndef GG_TESTEXEC_H
#define GG_TESTEXEC_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gryphgen.h>

#include "core/ggi.h"
#include "execution/sandbox.h"
#include "testutil.h"

/* A new executor in *out that runs jobs in the namespace sandbox and nowhere less
 * (min_isolation). 0, or what main returns: 77 (skipped: no sandbox here, said on stdout) or
 * 1 (it could not be made, said on stderr). */
static inline int test_exec_new_sandboxed(gg_executor_t **out)
{
    if (!ggi_sandbox_probe()->namespaces) {
        printf("SKIP: no namespace sandbox here: %s\n", ggi_sandbox_probe()->namespaces_why);
        return 77;
    }
    gg_executor_options o;
    gg_executor_options_init(&o, GG_EXECUTOR_OPTIONS_VERSION);
    o.min_isolation = "namespaces";
    if (gg_executor_new(out, &o) != 0) {
        fprintf(stderr, "gg_executor_new: %s\n", gg_error_last());
        return 1;
    }
    return 0;
}

/* Runs req (a request object, consumed) on ex: its parsed result, or NULL after a failed
 * CHECK. */
static inline cJSON *test_exec_run(gg_executor_t *ex, cJSON *req)
{
    char *text = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    char *out = NULL;
    int rc = gg_executor_run(ex, text, &out);
    free(text);
    CHECK_RC(rc, 0);
    cJSON *r = NULL;
    if (!rc)
        CHECK_RC(ggi_json_parse(out, strlen(out), &r), 0);
    gg_free(out);
    return r;
}

/* Field k of result o: a string ("" when it is not one), a number (-12345 when not one), and
 * whether it is true. */
static inline const char *test_str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static inline double test_num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -12345;
}

static inline int test_true(const cJSON *o, const char *k)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, k));
}

#endif
