/*
 * test_api.c - the smallest embedding, linked against the shared library only (public
 * symbols), as a host program would use it.
 */
#include <stdio.h>
#include <stdlib.h>

#include <gryphgen.h>

#include "../testutil.h"

int main(void)
{
    setenv("GRYPHGEN_PYTHON", "/usr/bin/python3", 0);
    gg_orchestrator_t *o = NULL;
    char *id = NULL, *result = NULL;
    CHECK_RC(gg_orchestrator_new(&o, NULL), GG_OK);
    CHECK_RC(gg_orchestrator_submit(o,
        "{\"task_id\":\"api-1\",\"language\":\"python\",\"prompt\":\"add\","
        "\"stub\":\"def add(a, b):\\n\",\"entry_point\":\"add\","
        "\"test\":\"def check(f):\\n    assert f(2, 3) == 5\\n\","
        "\"candidates\":[\"    return a + b\\n\"]}", &id), GG_OK);
    CHECK_STR(id, "api-1");
    CHECK_RC(gg_orchestrator_wait(o, id, 60000, &result), GG_OK);
    CHECK_CONTAINS(result, "\"status\":\"passed\"");
    gg_free(result);
    gg_free(id);
    gg_orchestrator_destroy(&o);
    CHECK(o == NULL);
    gg_orchestrator_destroy(&o);
    gg_orchestrator_destroy(NULL);
    return test_exit();
}
