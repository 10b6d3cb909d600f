/*
 * executor.c - the public executor handle: a copy of a backend's vtable plus its state. The
 * built-in "process" backend and a host's own (gg_executor_new_custom) are wrapped the same
 * way; the handle checks arguments and results so backends need not.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gryphgen/sys/executor.h"

#include "../core/ggi.h"
#include "../core/options.h"
#include "container_executor.h"
#include "executor_caps.h"
#include "process_executor.h"

int ggi_noop_executor_new(gg_executor_vtable *vt, void **self); /* noop_executor.c */

struct gg_executor {
    gg_executor_vtable vt; /* only the slots of a known version are ever filled */
    void *self;
};

GGI_OPTIONS_LAYOUT(executor_options, gg_executor_options, GG_EXECUTOR_OPTIONS_VERSION,
                   GGI_OPTIONS_END(gg_executor_options, default_timeout_s),
                   GGI_OPTIONS_END(gg_executor_options, min_isolation),
                   GGI_OPTIONS_END(gg_executor_options, zygote));

int gg_executor_options_init(gg_executor_options *opts, unsigned version)
{
    gg_executor_options init = GG_EXECUTOR_OPTIONS_INIT;
    return ggi_options_init(&executor_options, opts, &init, version);
}

#define KNOWN_CAPS                                                                         \
    (GG_EXECUTOR_CAP_ISOLATION_RLIMITS | GG_EXECUTOR_CAP_ISOLATION_NAMESPACES |             \
     GG_EXECUTOR_CAP_ISOLATION_CONTAINER | GG_EXECUTOR_CAP_UNPRIVILEGED_JOBS |              \
     GG_EXECUTOR_CAP_SKIP_ATTEMPTS | GG_EXECUTOR_CAP_OVERLAY_WORKDIR)

uint32_t ggi_executor_caps(const gg_executor_t *ex)
{
    return ex ? ex->vt.caps : 0;
}

/* Takes ownership of self: on failure destroy(self) has been called. */
static int wrap(gg_executor_t **out, const gg_executor_vtable *vt, void *self)
{
    gg_executor_t *ex = calloc(1, sizeof *ex);
    if (!ex) {
        if (vt->destroy)
            vt->destroy(self);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    ex->vt.version = GG_EXECUTOR_VTABLE_VERSION;
    /* Slots are only appended: read those of the vtable's own version. A version 1 backend
     * said nothing of its isolation; it counts as rlimits, as it always did. */
    ex->vt.run = vt->run;
    ex->vt.interrupt = vt->interrupt;
    ex->vt.destroy = vt->destroy;
    ex->vt.name = vt->name;
    ex->vt.caps = vt->version >= 2 ? vt->caps : GG_EXECUTOR_CAP_ISOLATION_RLIMITS;
    ex->self = self;
    *out = ex;
    return GG_OK;
}

int gg_executor_new(gg_executor_t **out, const gg_executor_options *opts)
{
    if (!out)
        return ggi_error(GG_EINVAL, "out is NULL");
    *out = NULL;
    int rc = gg_init();
    if (rc)
        return rc;
    /* Backends see a whole struct of this version: the caller's fields as far as its version
     * has them, defaults for the rest. */
    gg_executor_options full = GG_EXECUTOR_OPTIONS_INIT;
    if (ggi_options_accept(&executor_options, &full, opts))
        return GG_EVERSION;
    if (opts)
        opts = &full;
    const char *backend = opts && opts->backend ? opts->backend : "process";
    int container = !strcmp(backend, "container");
    int noop = !strcmp(backend, "noop"); /* noop_executor.c: for benchmarks */
    if (strcmp(backend, "process") != 0 && !container && !noop)
        return ggi_error(GG_ENOTFOUND, "unknown executor backend '%s' (built in: process, "
                                       "container, noop)", backend);
    gg_executor_vtable vt = GG_EXECUTOR_VTABLE_INIT;
    void *self = NULL;
    rc = noop ? ggi_noop_executor_new(&vt, &self)
         : container ? ggi_container_executor_new(opts, &vt, &self)
                     : ggi_process_executor_new(opts, &vt, &self);
    if (rc)
        return rc;
    return wrap(out, &vt, self);
}

int gg_executor_new_custom(gg_executor_t **out, const gg_executor_vtable *vtable, void *self)
{
    if (out)
        *out = NULL;
    if (!vtable)
        return ggi_error(GG_EINVAL, "vtable is NULL");
    /* Only the destroy slot is trusted before the version is known to be good; every version
     * keeps it at the same place, since slots are only appended. */
    int rc = GG_OK;
    if (vtable->version < 1 || vtable->version > GG_EXECUTOR_VTABLE_VERSION)
        rc = ggi_error(GG_EVERSION, "gg_executor_vtable version %u is not known (this library "
                                    "knows 1 to %d)", (unsigned)vtable->version,
                       GG_EXECUTOR_VTABLE_VERSION);
    else if (!out)
        rc = ggi_error(GG_EINVAL, "out is NULL");
    else if (!vtable->run)
        rc = ggi_error(GG_EINVAL, "the vtable's run slot is NULL");
    else if (vtable->version >= 2 && (vtable->caps & ~KNOWN_CAPS))
        rc = ggi_error(GG_EINVAL, "gg_executor_vtable: unknown capability bits 0x%x",
                       (unsigned)(vtable->caps & ~KNOWN_CAPS));
    else
        rc = gg_init();
    if (rc) {
        if (vtable->destroy)
            vtable->destroy(self);
        return rc;
    }
    return wrap(out, vtable, self);
}

int gg_executor_run(gg_executor_t *ex, const char *request_json, char **out_result_json)
{
    if (out_result_json)
        *out_result_json = NULL;
    if (!ex || !request_json || !out_result_json)
        return ggi_error(GG_EINVAL, "gg_executor_run: executor, request and result pointer "
                                    "must not be NULL");
    gg_error_clear();
    char *res = NULL;
    int rc = ex->vt.run(ex->self, request_json, &res);
    if (rc == GG_OK && !res)
        return ggi_error(GG_EEXEC, "executor backend '%s' gave no result",
                         gg_executor_backend(ex));
    if (rc != GG_OK) {
        gg_free(res);
        if (rc > 0) {
            return ggi_error(GG_EEXEC, "executor backend '%s' returned status %d",
                             gg_executor_backend(ex), rc);
        }
        if (gg_error_last_code() == 0)
            return ggi_error(rc, "executor backend '%s' failed: %s", gg_executor_backend(ex),
                             gg_strerror(rc));
        if (gg_error_last_code() != rc) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", gg_error_last());
            gg_error_set(rc, msg);
        }
        return rc;
    }
    *out_result_json = res;
    return GG_OK;
}

int gg_executor_interrupt(gg_executor_t *ex)
{
    if (!ex)
        return ggi_error(GG_EINVAL, "executor is NULL");
    if (!ex->vt.interrupt)
        return ggi_error(GG_EUNSUPPORTED, "executor backend '%s' cannot interrupt jobs",
                         gg_executor_backend(ex));
    return ex->vt.interrupt(ex->self);
}

const char *gg_executor_backend(const gg_executor_t *ex)
{
    if (!ex)
        return "";
    return ex->vt.name ? ex->vt.name : "custom";
}

void gg_executor_destroy(gg_executor_t **pex)
{
    if (!pex || !*pex)
        return;
    gg_executor_t *ex = *pex;
    *pex = NULL;
    if (ex->vt.destroy)
        ex->vt.destroy(ex->self);
    free(ex);
}
