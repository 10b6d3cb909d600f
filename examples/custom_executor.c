/*
 * custom_executor.c - bringing your own executor through the vtable of
 * <gryphgen/sys/executor.h>. This one audits: it counts and prints every job the orchestrator
 * sends (its argv) and hands the job to the built-in "process" executor, the way a host would
 * put a container engine or a batch system behind the same three slots (run, interrupt,
 * destroy). It then runs one task whose first replay candidate is wrong.
 *
 * Build against an installed libgryphgen:
 *     cc -o custom_executor custom_executor.c $(pkg-config --cflags --libs gryphgen)
 * Exit status: 0 when the task passed and went through this executor, 1 otherwise, 2 when a
 * call failed.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gryphgen.h>
#include <gryphgen/sys/executor.h>

/* The backend's state: the executor it delegates to and how many jobs it saw. */
typedef struct audit_executor {
    gg_executor_t *inner;
    atomic_int jobs;
} audit_executor;

/* run may be called from several worker threads at once: only atomics and the (thread-safe)
 * inner executor are touched. */
static int audit_run(void *self, const char *request_json, char **out_result_json)
{
    audit_executor *a = self;
    int n = atomic_fetch_add(&a->jobs, 1) + 1;
    const char *argv = strstr(request_json, "\"argv\"");
    /* A real host would parse the JSON; the first 60 characters of argv do for a log line. */
    fprintf(stderr, "custom_executor: job %d: %.60s\n", n, argv ? argv : "(no argv)");
    int rc = gg_executor_run(a->inner, request_json, out_result_json);
    if (rc != 0) /* keep the inner executor's message, say who failed */
        return gg_error_set(rc, gg_error_last());
    return 0;
}

static int audit_interrupt(void *self)
{
    audit_executor *a = self;
    return gg_executor_interrupt(a->inner);
}

static void audit_destroy(void *self)
{
    audit_executor *a = self;
    gg_executor_destroy(&a->inner);
    free(a);
}

static const char *const task =
    "{\"task_id\": \"custom_executor/max\", \"language\": \"python\","
    " \"stub\": \"def biggest(xs):\\n\", \"entry_point\": \"biggest\","
    " \"test\": \"def check(candidate):\\n    assert candidate([3, 9, 2]) == 9\\n\","
    " \"candidates\": [\"    return xs[0]\\n\", \"    return max(xs)\\n\"]}";

static int fail(const char *what, int rc)
{
    fprintf(stderr, "custom_executor: %s failed: %s (%s)\n", what, gg_strerror(rc),
            gg_error_last());
    return 2;
}

int main(void)
{
    audit_executor *a = calloc(1, sizeof *a);
    if (!a)
        return fail("calloc", GG_ENOMEM);
    atomic_init(&a->jobs, 0);
    int rc = gg_executor_new(&a->inner, NULL);
    if (rc != 0) {
        free(a);
        return fail("gg_executor_new", rc);
    }

    gg_executor_vtable vt = GG_EXECUTOR_VTABLE_INIT;
    vt.run = audit_run;
    vt.interrupt = audit_interrupt;
    vt.destroy = audit_destroy;
    vt.name = "audit";
    gg_executor_t *ex = NULL;
    rc = gg_executor_new_custom(&ex, &vt, a); /* a belongs to the library from here on */
    if (rc != 0)
        return fail("gg_executor_new_custom", rc);

    gg_orchestrator_options opts = GG_ORCHESTRATOR_OPTIONS_INIT;
    opts.executor = ex; /* borrowed: destroyed after the orchestrator */
    opts.workers = 1;
    gg_orchestrator_t *o = NULL;
    char *id = NULL, *result = NULL;
    int status = 2;
    rc = gg_orchestrator_new(&o, &opts);
    if (rc != 0) {
        status = fail("gg_orchestrator_new", rc);
        goto out;
    }
    if ((rc = gg_orchestrator_submit(o, task, &id)) != 0) {
        status = fail("gg_orchestrator_submit", rc);
        goto out;
    }
    if ((rc = gg_orchestrator_wait(o, id, 60000, &result)) != 0) {
        status = fail("gg_orchestrator_wait", rc);
        goto out;
    }
    printf("%s\n", result);
    int jobs = atomic_load(&a->jobs);
    printf("executor '%s' ran %d jobs\n", gg_executor_backend(ex), jobs);
    status = strstr(result, "\"status\":\"passed\"") && jobs > 0 ? 0 : 1;

out:
    gg_free(result);
    gg_free(id);
    gg_orchestrator_destroy(&o);
    gg_executor_destroy(&ex); /* calls audit_destroy */
    return status;
}
