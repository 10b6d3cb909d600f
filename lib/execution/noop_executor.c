/*
 * noop_executor.c - the "noop" executor backend, for benchmarks of the grid: every job
 * succeeds at once without running anything. A worker whose executor is noop passes every
 * attempt without asking its generator (see attempt.c), so tasks finish without Python.
 */
#include <stdlib.h>

#include "gryphgen/sys/executor.h"

#include "../core/ggi.h"

/* Fills the vtable of the noop backend (called by gg_executor_new in executor.c). */
int ggi_noop_executor_new(gg_executor_vtable *vt, void **self);

static int noop_run(void *self, const char *request_json, char **out_result_json)
{
    (void)self;
    (void)request_json;
    *out_result_json = gg_strdup("{\"exit_code\":0,\"signal\":0,\"timed_out\":false,"
                                 "\"stdout\":\"\",\"stderr\":\"\",\"wall_ms\":0}");
    return *out_result_json ? GG_OK : ggi_error(GG_ENOMEM, "out of memory");
}

static int noop_interrupt(void *self)
{
    (void)self;
    return GG_OK;
}

int ggi_noop_executor_new(gg_executor_vtable *vt, void **self)
{
    vt->run = noop_run;
    vt->interrupt = noop_interrupt;
    vt->destroy = NULL;
    vt->name = "noop";
    vt->caps = GG_EXECUTOR_CAP_SKIP_ATTEMPTS;
    *self = NULL;
    return GG_OK;
}
