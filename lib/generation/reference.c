/*
 * reference.c - the "reference" generator backend: answers with the task's canonical
 * solution (a workspace task's canonical_patch), once. It checks that a task's tests accept its own reference, and gives the
 * pipeline a known-good generator for tests.
 */
#include "../core/ggi.h"
#include "builtin.h"

static int reference_generate(void *self, const char *request_json, char **out_response_json)
{
    (void)self;
    cJSON *req = NULL;
    const cJSON *task = NULL;
    const char *id = NULL;
    int attempt = 0;
    int rc = ggi_generator_read_request(request_json, &req, &task, &id, &attempt);
    if (rc)
        return rc;
    const cJSON *ws = cJSON_GetObjectItemCaseSensitive(task, "workspace");
    const char *field = ws && !cJSON_IsNull(ws) ? "canonical_patch" : "canonical_solution";
    const cJSON *sol = cJSON_GetObjectItemCaseSensitive(task, field);
    if (sol && !cJSON_IsNull(sol) && !cJSON_IsString(sol))
        rc = ggi_error(GG_EINVAL, "task '%s': field '%s' must be a string", id, field);
    else if (!cJSON_IsString(sol) || !sol->valuestring)
        rc = ggi_error(GG_EEXHAUSTED, "task '%s' has no %s for the reference generator", id,
                       field);
    else if (attempt > 1)
        rc = ggi_error(GG_EEXHAUSTED,
                       "task '%s': the reference generator has one answer; attempt %d would "
                       "repeat the same code",
                       id, attempt);
    else
        rc = ggi_generator_response(sol->valuestring, "reference", out_response_json);
    cJSON_Delete(req);
    return rc;
}

int ggi_reference_generator_new(gg_generator_vtable *vt_out, void **self_out)
{
    gg_generator_vtable vt = GG_GENERATOR_VTABLE_INIT;
    vt.generate = reference_generate;
    vt.name = "reference";
    *vt_out = vt;
    *self_out = NULL;
    return GG_OK;
}
