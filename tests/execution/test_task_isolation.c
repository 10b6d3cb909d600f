/*
 * test_task_isolation.c - a task's "isolation" field through the orchestrator and the
 * process executor: a task that needs the container level fails at once with a clear reason
 * (an infrastructure fault that is not retried), one that needs rlimits runs and passes, and
 * an unknown level is refused when the task is submitted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gryphgen.h>

#include "testutil.h"

static char *wait_task(gg_orchestrator_t *o, const char *task, int submit_rc)
{
    char *id = NULL, *res = NULL;
    CHECK_RC(gg_orchestrator_submit(o, task, &id), submit_rc);
    if (id)
        CHECK_RC(gg_orchestrator_wait(o, id, 60000, &res), GG_OK);
    gg_free(id);
    return res;
}

#define TASK(id, iso)                                                                      \
    "{\"task_id\":\"" id "\",\"language\":\"python\",\"isolation\":\"" iso "\","            \
    "\"stub\":\"def add(a, b):\\n\",\"entry_point\":\"add\","                              \
    "\"test\":\"def check(f):\\n    assert f(2, 3) == 5\\n\","                             \
    "\"budget\":{\"max_attempts\":3},\"candidates\":[\"    return a + b\\n\"]}"

int main(void)
{
    gg_executor_options eo = GG_EXECUTOR_OPTIONS_INIT;
    eo.backend = "process";
    gg_executor_t *ex = NULL;
    CHECK_RC(gg_executor_new(&ex, &eo), GG_OK);
    if (!ex)
        return test_exit();
    gg_orchestrator_options oo = GG_ORCHESTRATOR_OPTIONS_INIT;
    oo.executor = ex;
    oo.workers = 1;
    gg_orchestrator_t *o = NULL;
    CHECK_RC(gg_orchestrator_new(&o, &oo), GG_OK);
    if (o) {
        char *r = wait_task(o, TASK("needs-container", "container"), GG_OK);
        CHECK_CONTAINS(r, "isolation 'container' (the job's minimum) is not available on the "
                          "process backend");
        /* An error of the task, at once: the fault is permanent, so it is not retried and
         * no attempt of the code is counted. */
        CHECK_CONTAINS(r, "\"status\":\"error\"");
        CHECK_CONTAINS(r, "\"attempts\":0");
        gg_free(r);
        r = wait_task(o, TASK("needs-rlimits", "rlimits"), GG_OK);
        CHECK_CONTAINS(r, "\"status\":\"passed\"");
        CHECK_CONTAINS(r, "\"passed_attempt\":1");
        gg_free(r);
        r = wait_task(o, TASK("needs-magic", "magic"), GG_EINVAL);
        CHECK(r == NULL);
        CHECK_CONTAINS(gg_error_last(), "field 'isolation' must be one of none, rlimits, "
                                        "namespaces, container, not 'magic'");
        gg_orchestrator_destroy(&o);
    }
    gg_executor_destroy(&ex);
    return test_exit();
}
