/*
 * test_task_hook.c - the task reader without the workspace module (this program links only
 * lib/core): a workspace's shape is checked (one source of the right type, known keys), the
 * rest is the check the workspace module registers; here a stand-in is registered, seen
 * refusing, and taken away again.
 */
#include "testutil.h"
#include "core/task.h"

static const char *parse_msg(const char *json, int want)
{
    ggi_task *t = NULL;
    int rc = ggi_task_parse(json, strlen(json), &t);
    CHECK_RC(rc, want);
    ggi_task_free(t);
    return gg_error_last();
}

static int calls;

static int refuse_files(const cJSON *ws)
{
    calls++;
    if (cJSON_GetObjectItemCaseSensitive(ws, "files"))
        return ggi_error(GG_EINVAL, "field 'workspace.files' refused by the stand-in");
    return GG_OK;
}

#define TASK(ws) "{\"task_id\":\"h\",\"language\":\"python\",\"workspace\":" ws \
                 ",\"test_command\":\"true\"}"

int main(void)
{
    /* Shapes: refused without any registered check. */
    CHECK_CONTAINS(parse_msg(TASK("5"), GG_EINVAL), "field 'workspace' must be an object");
    CHECK_CONTAINS(parse_msg(TASK("{}"), GG_EINVAL), "exactly one of");
    CHECK_CONTAINS(parse_msg(TASK("{\"repo\":\"/r\",\"dir\":\"/d\"}"), GG_EINVAL),
                   "exactly one of");
    CHECK_CONTAINS(parse_msg(TASK("{\"repo\":3}"), GG_EINVAL),
                   "field 'workspace.repo' must be a string");
    CHECK_CONTAINS(parse_msg(TASK("{\"files\":[]}"), GG_EINVAL),
                   "field 'workspace.files' must be an object");
    CHECK_CONTAINS(parse_msg(TASK("{\"dir\":\"/d\",\"ref\":1}"), GG_EINVAL),
                   "field 'workspace.ref' must be a string");
    CHECK_CONTAINS(parse_msg(TASK("{\"dir\":\"/d\",\"x\":\"y\"}"), GG_EINVAL),
                   "field 'workspace.x' is unknown");
    CHECK_CONTAINS(parse_msg(TASK("{\"dir\":\"/d\",\"x\":\"y\"}"), GG_EINVAL), "task 'h'");
    /* The deeper check is the workspace module's: without it a hostile path gets through
     * the reader (the module refuses it wherever the workspace is used). */
    parse_msg(TASK("{\"files\":{\"../x\":\"y\"}}"), GG_OK);
    /* Registered: it runs after the shape, and its refusal names the task. */
    ggi_task_set_workspace_check(refuse_files);
    CHECK_CONTAINS(parse_msg(TASK("{\"files\":{\"a\":\"y\"}}"), GG_EINVAL), "stand-in");
    CHECK_CONTAINS(parse_msg(TASK("{\"files\":{\"a\":\"y\"}}"), GG_EINVAL), "task 'h'");
    parse_msg(TASK("{\"repo\":\"/r\"}"), GG_OK);
    CHECK(calls == 3);
    parse_msg(TASK("{\"repo\":3}"), GG_EINVAL); /* the shape first: not called */
    CHECK(calls == 3);
    ggi_task_set_workspace_check(NULL);
    parse_msg(TASK("{\"files\":{\"a\":\"y\"}}"), GG_OK);
    CHECK(calls == 3);
    return test_exit();
}
