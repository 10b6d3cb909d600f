/*
 * replay.c - the "replay" generator backend: attempt n answers with the task's n-th
 * candidate, so benchmarks, demos and tests can drive the whole pipeline with code written
 * in the task file instead of a model.
 */
#include <stdio.h>

#include "../core/ggi.h"
#include "builtin.h"

static int replay_generate(void *self, const char *request_json, char **out_response_json)
{
    (void)self;
    cJSON *req = NULL;
    const cJSON *task = NULL;
    const char *id = NULL;
    int attempt = 0;
    int rc = ggi_generator_read_request(request_json, &req, &task, &id, &attempt);
    if (rc)
        return rc;
    const cJSON *cands = cJSON_GetObjectItemCaseSensitive(task, "candidates");
    int n = cJSON_IsArray(cands) ? cJSON_GetArraySize(cands) : 0;
    if (cands && !cJSON_IsNull(cands) && !cJSON_IsArray(cands)) {
        rc = ggi_error(GG_EINVAL, "task '%s': field 'candidates' must be an array of strings",
                       id);
    } else if (n == 0) {
        rc = ggi_error(GG_EEXHAUSTED,
                       "task '%s' has no candidates: the replay generator needs candidates in "
                       "the task (or use another generator, such as reference or "
                       "command:PROGRAM)",
                       id);
    } else if (attempt > n) {
        rc = ggi_error(GG_EEXHAUSTED, "task '%s' has %d candidate%s; attempt %d has none", id, n,
                       n == 1 ? "" : "s", attempt);
    } else {
        const cJSON *c = cJSON_GetArrayItem(cands, attempt - 1);
        if (!cJSON_IsString(c) || !c->valuestring)
            rc = ggi_error(GG_EINVAL, "task '%s': field 'candidates[%d]' must be a string", id,
                           attempt - 1);
        else
            rc = ggi_generator_response(c->valuestring, "replay", out_response_json);
    }
    cJSON_Delete(req);
    return rc;
}

int ggi_replay_generator_new(gg_generator_vtable *vt_out, void **self_out)
{
    gg_generator_vtable vt = GG_GENERATOR_VTABLE_INIT;
    vt.generate = replay_generate;
    vt.name = "replay";
    *vt_out = vt;
    *self_out = NULL;
    return GG_OK;
}
