/*
 * generator.c - the generator handle: wraps a backend's vtable (a built-in one or a host's)
 * behind gg_generator_*, copying only the slots the vtable's version has and calling its
 * destroy exactly once. Also picks the built-in backend an options spec names, and holds
 * the request/response helpers the built-in backends share.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/ggi.h"
#include "../core/options.h"
#include "../core/options.h"
#include "builtin.h"
#include "command.h"
#include "hooks.h"
#include "openai.h"
#include "gryphgen/sys/generator.h"

/* Largest request accepted by the built-in backends: a task (8 MiB at most) plus context. */
#define MAX_REQUEST (64u << 20)

struct gg_generator {
    gg_generator_vtable vt;
    void *self;
    const char *name;
};

/* Bytes of gg_generator_vtable that each known version has. */
static size_t vtable_size(uint32_t version)
{
    switch (version) {
    case 1:
        return offsetof(gg_generator_vtable, name) + sizeof(((gg_generator_vtable *)0)->name);
    case 2:
        return offsetof(gg_generator_vtable, permanent) +
               sizeof(((gg_generator_vtable *)0)->permanent);
    case 3:
        return sizeof(gg_generator_vtable);
    default:
        return 0;
    }
}

GGI_OPTIONS_LAYOUT(generator_options, gg_generator_options, GG_GENERATOR_OPTIONS_VERSION,
                   GGI_OPTIONS_END(gg_generator_options, prompt_template_file),
                   GGI_OPTIONS_END(gg_generator_options, cost_per_second));

int gg_generator_options_init(gg_generator_options *opts, unsigned version)
{
    gg_generator_options d = GG_GENERATOR_OPTIONS_INIT;
    return ggi_options_init(&generator_options, opts, &d, version);
}

/* A capability bit promises its slot: GG_EINVAL naming both when the slot is missing. */
static int check_caps(const gg_generator_vtable *vt)
{
    /* (A version 2 vtable has no interrupt slot: the bit is unknown to it.) */
    const uint32_t known = GG_GENERATOR_CAP_FEEDBACK | GG_GENERATOR_CAP_JOURNAL |
                           GG_GENERATOR_CAP_PERMANENT_ERRORS |
                           (vt->version >= 3 ? GG_GENERATOR_CAP_INTERRUPT : 0u);
    if (vt->caps & ~known)
        return ggi_error(GG_EINVAL, "generator vtable: unknown capability bits 0x%x",
                         (unsigned)(vt->caps & ~known));
    if ((vt->caps & GG_GENERATOR_CAP_FEEDBACK) && !vt->feedback)
        return ggi_error(GG_EINVAL, "generator vtable: GG_GENERATOR_CAP_FEEDBACK needs the "
                         "feedback slot");
    if ((vt->caps & GG_GENERATOR_CAP_JOURNAL) && !vt->attach_journal)
        return ggi_error(GG_EINVAL, "generator vtable: GG_GENERATOR_CAP_JOURNAL needs the "
                         "attach_journal slot");
    if ((vt->caps & GG_GENERATOR_CAP_PERMANENT_ERRORS) && !vt->permanent)
        return ggi_error(GG_EINVAL, "generator vtable: GG_GENERATOR_CAP_PERMANENT_ERRORS needs "
                         "the permanent slot");
    if ((vt->caps & GG_GENERATOR_CAP_INTERRUPT) && !vt->interrupt)
        return ggi_error(GG_EINVAL, "generator vtable: GG_GENERATOR_CAP_INTERRUPT needs the "
                         "interrupt slot");
    return GG_OK;
}

int gg_generator_new_custom(gg_generator_t **out, const gg_generator_vtable *vtable, void *self)
{
    if (out)
        *out = NULL;
    if (!vtable)
        return ggi_error(GG_EINVAL, "gg_generator_new_custom: vtable is NULL");
    /* Ownership of self has passed: every failure below releases it. The destroy slot is
     * part of version 1, which every version extends. */
    void (*destroy)(void *) = vtable->destroy;
    int rc = GG_OK;
    size_t size = vtable_size(vtable->version);
    gg_generator_t *g = NULL;
    if (!out)
        rc = ggi_error(GG_EINVAL, "gg_generator_new_custom: out is NULL");
    else if (!size)
        rc = ggi_error(GG_EVERSION,
                       "generator vtable version %u is not known (this library knows 1 to %d)",
                       (unsigned)vtable->version, GG_GENERATOR_VTABLE_VERSION);
    else if (!vtable->generate)
        rc = ggi_error(GG_EINVAL, "generator vtable: the generate slot is required");
    else if (vtable->version >= 2 && (rc = check_caps(vtable)) != GG_OK)
        ;
    else if (!(g = calloc(1, sizeof *g)))
        rc = ggi_error(GG_ENOMEM, "out of memory creating a generator");
    if (rc) {
        if (destroy)
            destroy(self);
        return rc;
    }
    memcpy(&g->vt, vtable, size);
    g->self = self;
    g->name = g->vt.name ? g->vt.name : "custom";
    *out = g;
    return GG_OK;
}

static const char *const valid_specs =
    "\"replay\", \"reference\", \"command:PROGRAM\", \"openai\"";

int gg_generator_new(gg_generator_t **out, const gg_generator_options *opts)
{
    if (!out)
        return ggi_error(GG_EINVAL, "gg_generator_new: out is NULL");
    *out = NULL;
    gg_generator_options o = GG_GENERATOR_OPTIONS_INIT;
    int rc = ggi_options_accept(&generator_options, &o, opts);
    if (rc)
        return rc;
    rc = gg_init();
    if (rc)
        return rc;
    if (o.timeout_s < 0 || o.timeout_s != o.timeout_s)
        return ggi_error(GG_EINVAL, "generator option timeout_s must not be negative");
    const char *spec = o.spec ? o.spec : "replay";
    gg_generator_vtable vt = GG_GENERATOR_VTABLE_INIT;
    void *self = NULL;
    if (strcmp(spec, "replay") == 0) {
        rc = ggi_replay_generator_new(&vt, &self);
    } else if (strcmp(spec, "reference") == 0) {
        rc = ggi_reference_generator_new(&vt, &self);
    } else if (strncmp(spec, "command:", 8) == 0) {
        const char *program = spec + 8;
        while (*program == ' ' || *program == '\t')
            program++;
        if (!*program)
            return ggi_error(GG_EINVAL, "generator spec 'command:' names no program (write "
                                        "command:PROGRAM)");
        rc = ggi_command_generator_new(program, o.timeout_s, o.max_output, &vt, &self);
    } else if (strcmp(spec, "openai") == 0) {
        rc = ggi_openai_generator_new(&o, &vt, &self);
    } else {
        char shown[64];
        snprintf(shown, sizeof shown, "%s", spec);
        for (char *p = shown; *p; p++)
            if ((unsigned char)*p < 0x20)
                *p = '?';
        return ggi_error(GG_EINVAL, "unknown generator '%s%s' (valid: %s)", shown,
                         strlen(spec) >= sizeof shown ? "..." : "", valid_specs);
    }
    if (rc)
        return rc;
    return gg_generator_new_custom(out, &vt, self);
}

int gg_generator_generate(gg_generator_t *gen, const char *request_json,
                          char **out_response_json)
{
    if (out_response_json)
        *out_response_json = NULL;
    if (!gen || !request_json || !out_response_json)
        return ggi_error(GG_EINVAL, "gg_generator_generate: %s is NULL",
                         !gen ? "gen" : !request_json ? "request_json" : "out_response_json");
    gg_error_clear();
    ggi_generator_set_permanent(0);
    char *resp = NULL;
    int rc = gen->vt.generate(gen->self, request_json, &resp);
    if (rc > 0) {
        gg_free(resp);
        return ggi_error(GG_EGENERATOR, "generator '%s' returned the invalid status %d",
                         gen->name, rc);
    }
    if (rc < 0) {
        gg_free(resp);
        /* Asked at once, on this thread, before anything else can fail here. */
        if ((gen->vt.caps & GG_GENERATOR_CAP_PERMANENT_ERRORS) && gen->vt.permanent(gen->self))
            ggi_generator_set_permanent(1);
        if (!gg_error_last()[0] || gg_error_last_code() != rc)
            return ggi_error(rc, "generator '%s' failed: %s", gen->name, gg_strerror(rc));
        return rc;
    }
    if (!resp)
        return ggi_error(GG_EGENERATOR, "generator '%s' returned no response", gen->name);
    *out_response_json = resp;
    return GG_OK;
}

const char *gg_generator_name(const gg_generator_t *gen)
{
    return gen ? gen->name : "";
}

void gg_generator_destroy(gg_generator_t **pgen)
{
    if (!pgen || !*pgen)
        return;
    gg_generator_t *g = *pgen;
    *pgen = NULL;
    if (g->vt.destroy)
        g->vt.destroy(g->self);
    free(g);
}

/* ---- internal hooks (hooks.h) ---- */

static _Thread_local int last_permanent;

int ggi_generator_permanent(void)
{
    return last_permanent;
}

void ggi_generator_set_permanent(int permanent)
{
    last_permanent = permanent != 0;
}

void ggi_generator_feedback(gg_generator_t *gen, const cJSON *record)
{
    if (!gen || !record || !(gen->vt.caps & GG_GENERATOR_CAP_FEEDBACK))
        return;
    char *text = cJSON_PrintUnformatted(record);
    if (text)
        gen->vt.feedback(gen->self, text);
    cJSON_free(text);
}

int ggi_generator_attach_journal(gg_generator_t *gen, const char *db_path)
{
    if (!gen || !db_path || !*db_path || !(gen->vt.caps & GG_GENERATOR_CAP_JOURNAL))
        return GG_OK;
    return gen->vt.attach_journal(gen->self, db_path);
}

int ggi_generator_interrupt(gg_generator_t *gen, const char *task_id)
{
    if (!gen || !(gen->vt.caps & GG_GENERATOR_CAP_INTERRUPT))
        return 0;
    gen->vt.interrupt(gen->self, task_id);
    return 1;
}

/* ---- shared by the built-in backends (builtin.h) ---- */

int ggi_generator_read_request(const char *request_json, cJSON **out_req,
                               const cJSON **out_task, const char **out_task_id,
                               int *out_attempt)
{
    *out_req = NULL;
    *out_task = NULL;
    *out_task_id = "?";
    *out_attempt = 0;
    size_t len = strlen(request_json);
    if (len > MAX_REQUEST)
        return ggi_error(GG_ETOOBIG, "generator request is %zu bytes, the limit is %u", len,
                         (unsigned)MAX_REQUEST);
    cJSON *req = NULL;
    if (ggi_json_parse(request_json, len, &req))
        return ggi_error_wrap("generator request: ");
    int rc = GG_OK;
    const cJSON *task = cJSON_GetObjectItemCaseSensitive(req, "task");
    long long attempt = 0;
    if (!cJSON_IsObject(req))
        rc = ggi_error(GG_EINVAL, "generator request: must be a JSON object");
    else if (!cJSON_IsObject(task))
        rc = ggi_error(GG_EINVAL, "generator request: field 'task' must be an object");
    else if (ggi_json_int(req, "attempt", 1, 1, 1000000, &attempt))
        rc = ggi_error_wrap("generator request: ");
    if (rc) {
        cJSON_Delete(req);
        return rc;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(task, "task_id");
    if (cJSON_IsString(id) && id->valuestring)
        *out_task_id = id->valuestring;
    *out_req = req;
    *out_task = task;
    *out_attempt = (int)attempt;
    return GG_OK;
}

int ggi_generator_response(const char *code, const char *name, char **out_response_json)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || ggi_json_add_str(o, "code", code) || ggi_json_add_str(o, "generator", name)) {
        cJSON_Delete(o);
        return ggi_error(GG_ENOMEM, "out of memory building a generator response");
    }
    char *s = ggi_json_print(o);
    cJSON_Delete(o);
    if (!s)
        return ggi_error(GG_ENOMEM, "out of memory building a generator response");
    *out_response_json = s;
    return GG_OK;
}
