/*
 * test_container_e2e.c - the orchestrator passing Python tasks through the "container"
 * executor (public API only): one task passes at once, one is repaired after a failing
 * first candidate whose failure comes back from the container, one times out. Run by
 * run_engine_tests.sh, which gives the engine's socket and image.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gryphgen.h>

#include "testutil.h"

static char *wait_task(gg_orchestrator_t *o, const char *task)
{
    char *id = NULL, *res = NULL;
    CHECK_RC(gg_orchestrator_submit(o, task, &id), GG_OK);
    if (id)
        CHECK_RC(gg_orchestrator_wait(o, id, 120000, &res), GG_OK);
    gg_free(id);
    return res;
}

int main(void)
{
    const char *sock = getenv("GG_CONTAINER_SOCKET"), *image = getenv("GG_CONTAINER_IMAGE");
    if (!sock || !image) {
        fprintf(stderr, "SKIP: GG_CONTAINER_SOCKET and GG_CONTAINER_IMAGE are not set "
                        "(run through run_engine_tests.sh)\n");
        return 77;
    }
    /* The host's interpreter path; the executor maps it to the image's. */
    setenv("GRYPHGEN_PYTHON", "/usr/bin/python3", 0);
    const char *c_image = getenv("GG_CONTAINER_C_IMAGE");
    if (c_image && !*c_image)
        c_image = NULL;
    char images[512];
    snprintf(images, sizeof images, "{\"python\": {\"image\": \"%s\", "
                                    "\"interpreter\": \"/usr/bin/python3.11\"}%s%s%s}", image,
             c_image ? ", \"c\": \"" : "", c_image ? c_image : "", c_image ? "\"" : "");
    gg_executor_options eo = GG_EXECUTOR_OPTIONS_INIT;
    eo.backend = "container";
    eo.container_socket = sock;
    eo.container_images = images;
    gg_executor_t *ex = NULL;
    CHECK_RC(gg_executor_new(&ex, &eo), GG_OK);
    if (!ex)
        return test_exit();
    gg_orchestrator_options oo = GG_ORCHESTRATOR_OPTIONS_INIT;
    oo.executor = ex;
    oo.workers = 2;
    gg_orchestrator_t *o = NULL;
    CHECK_RC(gg_orchestrator_new(&o, &oo), GG_OK);
    if (o) {
        char *r = wait_task(o, "{\"task_id\":\"c1\",\"language\":\"python\","
            "\"stub\":\"def add(a, b):\\n\",\"entry_point\":\"add\","
            "\"test\":\"def check(f):\\n    assert f(2, 3) == 5\\n\","
            "\"candidates\":[\"    return a + b\\n\"]}");
        CHECK_CONTAINS(r, "\"status\":\"passed\"");
        CHECK_CONTAINS(r, "\"passed_attempt\":1");
        gg_free(r);
        r = wait_task(o, "{\"task_id\":\"c2\",\"language\":\"python\","
            "\"stub\":\"def sub(a, b):\\n\",\"entry_point\":\"sub\","
            "\"test\":\"def check(f):\\n    assert f(5, 2) == 3\\n\","
            "\"candidates\":[\"    return a + b\\n\",\"    return a - b\\n\"]}");
        CHECK_CONTAINS(r, "\"status\":\"passed\"");
        CHECK_CONTAINS(r, "\"passed_attempt\":2");
        CHECK_CONTAINS(r, "AssertionError");
        gg_free(r);
        r = wait_task(o, "{\"task_id\":\"c3\",\"language\":\"python\","
            "\"stub\":\"def spin():\\n\",\"entry_point\":\"spin\",\"resources\":{\"timeout_s\":1},"
            "\"budget\":{\"max_attempts\":1},"
            "\"test\":\"def check(f):\\n    f()\\n\","
            "\"candidates\":[\"    while True: pass\\n\"]}");
        CHECK_CONTAINS(r, "\"status\":\"failed\"");
        gg_free(r);
        if (c_image) {
            /* C in the C image: a compile error found by the analysis job, then a program
             * that fails its test, then one that passes; and a task that fails for good. */
            r = wait_task(o, "{\"task_id\":\"cc1\",\"language\":\"c\",\"stub\":\"int sq(int x) {\\n\","
                "\"entry_point\":\"sq\",\"isolation\":\"container\","
                "\"test\":\"#include <assert.h>\\nint main(void) { assert(sq(3) == 9); return 0; }\\n\","
                "\"candidates\":[\"    return x * x\\n}\\n\",\"    return x + x;\\n}\\n\","
                "\"    return x * x;\\n}\\n\"]}");
            CHECK_CONTAINS(r, "\"status\":\"passed\"");
            CHECK_CONTAINS(r, "\"passed_attempt\":3");
            CHECK_CONTAINS(r, "Assertion");
            gg_free(r);
            r = wait_task(o, "{\"task_id\":\"cc2\",\"language\":\"c\",\"stub\":\"int one(void) {\\n\","
                "\"entry_point\":\"one\",\"budget\":{\"max_attempts\":1},"
                "\"test\":\"int main(void) { return one() == 1 ? 0 : 1; }\\n\","
                "\"candidates\":[\"    return 2;\\n}\\n\"]}");
            CHECK_CONTAINS(r, "\"status\":\"failed\"");
            gg_free(r);
        } else {
            fprintf(stderr, "SKIP (C tasks): GG_CONTAINER_C_IMAGE is not set\n");
        }
        gg_orchestrator_destroy(&o);
    }
    gg_executor_destroy(&ex);
    return test_exit();
}
