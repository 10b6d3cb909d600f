/*
 * retriever.c - the retriever handle: wraps a backend's vtable (built-in or a host's) behind
 * gg_retriever_*, copying only the slots the vtable's version has and calling its destroy
 * exactly once, plus the built-in "none" backend, which finds nothing and ignores feedback,
 * and the choice among the built-in backends ("none", "fts5", "http").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/ggi.h"
#include "../core/options.h"
#include "retriever_none.h"
#include "fts5.h"
#include "gryphgen/sys/retriever.h"
#include "http_backend.h"

/* Largest query or feedback the built-in backend reads. */
#define MAX_INPUT (16u << 20)

struct gg_retriever {
    gg_retriever_vtable vt;
    void *self;
    const char *name;
};

/* Bytes of gg_retriever_vtable that each known version has. */
static size_t vtable_size(uint32_t version)
{
    switch (version) {
    case 1:
        return offsetof(gg_retriever_vtable, name) + sizeof(((gg_retriever_vtable *)0)->name);
    case 2:
        return offsetof(gg_retriever_vtable, add) + sizeof(((gg_retriever_vtable *)0)->add);
    default:
        return 0;
    }
}

GGI_OPTIONS_LAYOUT(retriever_options, gg_retriever_options, GG_RETRIEVER_OPTIONS_VERSION,
                   GGI_OPTIONS_END(gg_retriever_options, backend),
                   GGI_OPTIONS_END(gg_retriever_options, max_response));

int gg_retriever_options_init(gg_retriever_options *opts, unsigned version)
{
    gg_retriever_options d = GG_RETRIEVER_OPTIONS_INIT;
    return ggi_options_init(&retriever_options, opts, &d, version);
}

int gg_retriever_new_custom(gg_retriever_t **out, const gg_retriever_vtable *vtable, void *self)
{
    if (out)
        *out = NULL;
    if (!vtable)
        return ggi_error(GG_EINVAL, "gg_retriever_new_custom: vtable is NULL");
    /* Ownership of self has passed: every failure below releases it. */
    void (*destroy)(void *) = vtable->destroy;
    int rc = GG_OK;
    size_t size = vtable_size(vtable->version);
    gg_retriever_t *r = NULL;
    if (!out)
        rc = ggi_error(GG_EINVAL, "gg_retriever_new_custom: out is NULL");
    else if (!size)
        rc = ggi_error(GG_EVERSION,
                       "retriever vtable version %u is not known (this library knows 1 to %d)",
                       (unsigned)vtable->version, GG_RETRIEVER_VTABLE_VERSION);
    else if (!vtable->search)
        rc = ggi_error(GG_EINVAL, "retriever vtable: the search slot is required");
    else if (!(r = calloc(1, sizeof *r)))
        rc = ggi_error(GG_ENOMEM, "out of memory creating a retriever");
    if (rc) {
        if (destroy)
            destroy(self);
        return rc;
    }
    memcpy(&r->vt, vtable, size);
    r->self = self;
    r->name = r->vt.name ? r->vt.name : "custom";
    *out = r;
    return GG_OK;
}

/* ---- the "none" backend ---- */

static int check_object(const char *what, const char *json)
{
    size_t len = strlen(json);
    if (len > MAX_INPUT)
        return ggi_error(GG_ETOOBIG, "retriever %s is %zu bytes, the limit is %u", what, len,
                         (unsigned)MAX_INPUT);
    cJSON *v = NULL;
    if (ggi_json_parse(json, len, &v))
        return ggi_error_wrap("retriever %s: ", what);
    int ok = cJSON_IsObject(v);
    cJSON_Delete(v);
    return ok ? GG_OK : ggi_error(GG_EINVAL, "retriever %s must be a JSON object", what);
}

static int none_search(void *self, const char *query_json, char **out_results_json)
{
    (void)self;
    int rc = check_object("query", query_json);
    if (rc)
        return rc;
    *out_results_json = gg_strdup("{\"results\":[]}");
    return *out_results_json ? GG_OK : ggi_error(GG_ENOMEM, "out of memory");
}

static int none_feedback(void *self, const char *feedback_json)
{
    (void)self;
    return check_object("feedback", feedback_json);
}

int gg_retriever_new(gg_retriever_t **out, const gg_retriever_options *opts)
{
    if (!out)
        return ggi_error(GG_EINVAL, "gg_retriever_new: out is NULL");
    *out = NULL;
    gg_retriever_options o = GG_RETRIEVER_OPTIONS_INIT;
    int rc = ggi_options_accept(&retriever_options, &o, opts); /* later fields: defaults */
    if (rc)
        return rc;
    rc = gg_init();
    if (rc)
        return rc;
    const char *backend = o.backend ? o.backend : "none";
    if (strcmp(backend, "none") == 0) {
        gg_retriever_vtable vt = GG_RETRIEVER_VTABLE_INIT;
        vt.search = none_search;
        vt.feedback = none_feedback;
        vt.name = "none";
        return gg_retriever_new_custom(out, &vt, NULL);
    }
    if (strcmp(backend, "fts5") == 0 || strcmp(backend, "http") == 0) {
        gg_retriever_vtable vt = GG_RETRIEVER_VTABLE_INIT;
        void *self = NULL;
        rc = backend[0] == 'f' ? ggi_fts5_retriever_new(&o, &vt, &self)
                               : ggi_http_retriever_new(&o, &vt, &self);
        if (rc)
            return rc;
        return gg_retriever_new_custom(out, &vt, self);
    }
    char shown[64];
    snprintf(shown, sizeof shown, "%s", backend);
    for (char *p = shown; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = '?';
    return ggi_error(GG_EINVAL, "unknown retriever backend '%s%s' (valid: \"none\", \"fts5\", \"http\")", shown,
                     strlen(backend) >= sizeof shown ? "..." : "");
}

int gg_retriever_search(gg_retriever_t *r, const char *query_json, char **out_results_json)
{
    if (out_results_json)
        *out_results_json = NULL;
    if (!r || !query_json || !out_results_json)
        return ggi_error(GG_EINVAL, "gg_retriever_search: %s is NULL",
                         !r ? "r" : !query_json ? "query_json" : "out_results_json");
    gg_error_clear();
    char *res = NULL;
    int rc = r->vt.search(r->self, query_json, &res);
    if (rc > 0)
        rc = GG_EINTERNAL;
    if (rc < 0) {
        gg_free(res);
        if (!gg_error_last()[0] || gg_error_last_code() != rc)
            return ggi_error(rc, "retriever '%s' failed: %s", r->name, gg_strerror(rc));
        return rc;
    }
    if (!res)
        return ggi_error(GG_EIO, "retriever '%s' returned no results", r->name);
    *out_results_json = res;
    return GG_OK;
}

int gg_retriever_feedback(gg_retriever_t *r, const char *feedback_json)
{
    if (!r || !feedback_json)
        return ggi_error(GG_EINVAL, "gg_retriever_feedback: %s is NULL",
                         !r ? "r" : "feedback_json");
    if (!r->vt.feedback)
        return GG_OK; /* optional: a backend that does not learn ignores it */
    gg_error_clear();
    int rc = r->vt.feedback(r->self, feedback_json);
    if (rc > 0)
        rc = GG_EINTERNAL;
    if (rc < 0 && (!gg_error_last()[0] || gg_error_last_code() != rc))
        return ggi_error(rc, "retriever '%s' failed: %s", r->name, gg_strerror(rc));
    return rc;
}

int gg_retriever_add(gg_retriever_t *r, const char *doc_json, char **out_result_json)
{
    if (out_result_json)
        *out_result_json = NULL;
    if (!r || !doc_json)
        return ggi_error(GG_EINVAL, "gg_retriever_add: %s is NULL", !r ? "r" : "doc_json");
    if (!r->vt.add)
        return ggi_error(GG_EUNSUPPORTED, "retriever '%s' cannot add documents", r->name);
    gg_error_clear();
    char *res = NULL;
    int rc = r->vt.add(r->self, doc_json, &res);
    if (rc > 0)
        rc = GG_EINTERNAL;
    if (rc < 0) {
        gg_free(res);
        if (!gg_error_last()[0] || gg_error_last_code() != rc)
            return ggi_error(rc, "retriever '%s' failed: %s", r->name, gg_strerror(rc));
        return rc;
    }
    if (out_result_json)
        *out_result_json = res ? res : gg_strdup("{}");
    else
        gg_free(res);
    if (out_result_json && !*out_result_json)
        return ggi_error(GG_ENOMEM, "out of memory");
    return GG_OK;
}

int ggi_retriever_is_none(const gg_retriever_t *r)
{
    return !r || r->vt.search == none_search;
}

const char *gg_retriever_name(const gg_retriever_t *r)
{
    return r ? r->name : "";
}

void gg_retriever_destroy(gg_retriever_t **pr)
{
    if (!pr || !*pr)
        return;
    gg_retriever_t *r = *pr;
    *pr = NULL;
    if (r->vt.destroy)
        r->vt.destroy(r->self);
    free(r);
}
