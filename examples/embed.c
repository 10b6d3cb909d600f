/*
 * embed.c - the smallest embedding of libgryphgen: create an orchestrator with every default
 * (temporary database, replay generator, process executor), submit one Python task, wait for
 * its result and print it. The task's replay candidates play the code generator: the first
 * one is wrong, so the result shows the repair loop feeding the failure back and passing on
 * the second attempt.
 *
 * Build against an installed libgryphgen:
 *     cc -o embed embed.c $(pkg-config --cflags --libs gryphgen)
 * Run:  ./embed            (the built-in task)
 *       ./embed TASK_JSON  (any task, docs/tasks.md)
 * Exit status: 0 when the task passed, 1 when it ended otherwise, 2 when a call failed.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include <gryphgen.h>

static const char *const default_task =
    "{\"task_id\": \"embed/add\","
    " \"language\": \"python\","
    " \"prompt\": \"Return the sum of a and b.\","
    " \"stub\": \"def add(a, b):\\n\","
    " \"entry_point\": \"add\","
    " \"test\": \"def check(candidate):\\n"
    "    assert candidate(2, 3) == 5\\n"
    "    assert candidate(-1, 1) == 0\\n\","
    " \"candidates\": [\"    return a - b\\n\", \"    return a + b\\n\"]}";

/* Prints what failed with the library's own message for the calling thread. */
static int fail(const char *what, int rc)
{
    fprintf(stderr, "embed: %s failed: %s (%s)\n", what, gg_strerror(rc), gg_error_last());
    return 2;
}

int main(int argc, char **argv)
{
    const char *task = argc > 1 ? argv[1] : default_task;
    gg_orchestrator_t *o = NULL;
    char *id = NULL, *result = NULL;
    int status = 2;
    int rc;

    rc = gg_orchestrator_new(&o, NULL);
    if (rc != 0)
        return fail("gg_orchestrator_new", rc);

    rc = gg_orchestrator_submit(o, task, &id);
    if (rc != 0) {
        status = fail("gg_orchestrator_submit", rc);
        goto out;
    }
    rc = gg_orchestrator_wait(o, id, -1, &result);
    if (rc != 0) {
        status = fail("gg_orchestrator_wait", rc);
        goto out;
    }
    printf("%s\n", result);
    /* The result is JSON (docs/tasks.md); a real host would parse it. */
    status = strstr(result, "\"status\":\"passed\"") || strstr(result, "\"status\": \"passed\"")
                 ? 0 : 1;

out:
    gg_free(result);
    gg_free(id);
    gg_orchestrator_destroy(&o);
    assert(o == NULL); /* destroy nulls the caller's pointer */
    return status;
}
