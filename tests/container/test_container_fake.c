/*
 * test_container_fake.c - the "container" executor against a fake engine (fakeengine.h: a
 * small HTTP server on a unix socket in a temporary directory, run by this test in its own
 * threads, that fails the engine's calls on purpose). Checked: a removal refused a few times
 * is asked again until it succeeds; one refused every time ends the run with GG_EEXEC naming
 * the container, the number of tries and the engine's last answer, also when the job had
 * already failed for another reason; garbage JSON, a 500, a reply cut in the middle of its
 * body and a wait that never answers (the job's timeout kills the container). No real
 * engine is needed.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <gryphgen.h>
#include <cJSON.h>

#include "fakeengine.h"
#include "testutil.h"

#define REQ(timeout)                                                                         \
    "{\"language\":\"python\",\"argv\":[\"python3\",\"main.py\"],"                             \
    "\"files\":[{\"path\":\"main.py\",\"content\":\"print('hi')\\n\"}],"                       \
    "\"limits\":{\"timeout_s\":" timeout "}}"

static int run(gg_executor_t *ex, const char *req, cJSON **res)
{
    char *out = NULL;
    int rc = gg_executor_run(ex, req, &out);
    *res = out ? cJSON_Parse(out) : NULL;
    CHECK(rc == GG_OK ? *res != NULL : out == NULL);
    gg_free(out);
    return rc;
}

static void test_fake(const char *sock)
{
    fake_engine fe = { .mu = PTHREAD_MUTEX_INITIALIZER };
    CHECK(fake_engine_start(&fe, sock) == 0);
    gg_executor_options o = GG_EXECUTOR_OPTIONS_INIT;
    o.backend = "container";
    o.container_socket = sock;
    o.container_images = "python=fake:latest";
    gg_executor_t *ex = NULL;
    CHECK_RC(gg_executor_new(&ex, &o), GG_OK);
    if (!ex) {
        fake_engine_stop(&fe);
        return;
    }
    cJSON *res = NULL;

    /* The happy path through the fake: output decoded, one removal. */
    fake_engine_reset(&fe, CREATE_OK, 0, 0);
    CHECK_RC(run(ex, REQ("10"), &res), GG_OK);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(res, "stdout")), "hi\n");
    CHECK(fe.removes == 1);
    cJSON_Delete(res);

    /* Removal refused three times, then done: the run succeeds after four asks. */
    fake_engine_reset(&fe, CREATE_OK, 3, 0);
    CHECK_RC(run(ex, REQ("10"), &res), GG_OK);
    CHECK(fe.removes == 4);
    cJSON_Delete(res);

    /* Refused every time: the run fails after the limit, naming what it tried. */
    fake_engine_reset(&fe, CREATE_OK, -1, 0);
    CHECK_RC(run(ex, REQ("10"), &res), GG_EEXEC);
    CHECK(res == NULL);
    CHECK(fe.removes == REMOVE_TRIES);
    CHECK_CONTAINS(gg_error_last(), "could not remove container 0123456789ab");
    CHECK_CONTAINS(gg_error_last(), "after 8 tries");
    CHECK_CONTAINS(gg_error_last(), "HTTP 500");
    CHECK_CONTAINS(gg_error_last(), "removal already in progress");

    /* Garbage JSON from create: a clear error, and no removal of an id never given. */
    fake_engine_reset(&fe, CREATE_GARBAGE, 0, 0);
    CHECK_RC(run(ex, REQ("10"), &res), GG_EEXEC);
    CHECK_CONTAINS(gg_error_last(), "create gave no valid Id");
    CHECK(fe.creates == 1 && fe.removes == 0);

    /* A 500: the engine's own message comes through. */
    fake_engine_reset(&fe, CREATE_500, 0, 0);
    CHECK_RC(run(ex, REQ("10"), &res), GG_EEXEC);
    CHECK_CONTAINS(gg_error_last(), "create failed (HTTP 500)");
    CHECK_CONTAINS(gg_error_last(), "no space left on device");

    /* The reply cut in the middle of its body. */
    fake_engine_reset(&fe, CREATE_CUT, 0, 0);
    CHECK_RC(run(ex, REQ("10"), &res), GG_EEXEC);
    CHECK_CONTAINS(gg_error_last(), "create failed");
    CHECK_CONTAINS(gg_error_last(), sock);

    /* A wait that never answers: the job's timeout kills the container, which is removed. */
    fake_engine_reset(&fe, CREATE_OK, 0, 1);
    CHECK_RC(run(ex, REQ("1"), &res), GG_OK);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(res, "timed_out")));
    CHECK(fe.kills >= 1 && fe.removes == 1);
    cJSON_Delete(res);

    /* A job that failed (start refused) whose container cannot be removed either: the
     * job's own error stands and the leak is named beside it. */
    fake_engine_reset(&fe, CREATE_OK, -1, 0);
    pthread_mutex_lock(&fe.mu);
    fe.start_fails = 1;
    pthread_mutex_unlock(&fe.mu);
    CHECK_RC(run(ex, REQ("10"), &res), GG_EEXEC);
    CHECK_CONTAINS(gg_error_last(), "start failed (HTTP 500)");
    CHECK_CONTAINS(gg_error_last(), "could not remove container 0123456789ab");
    CHECK(fe.removes == REMOVE_TRIES);

    fake_engine_reset(&fe, CREATE_HANG, 0, 0);
    /* A create that never answers ends by the executor's own request timeout. */
    CHECK_RC(run(ex, REQ("10"), &res), GG_EEXEC);
    CHECK_CONTAINS(gg_error_last(), "create failed");
    CHECK_CONTAINS(gg_error_last(), "imeout");

    gg_executor_destroy(&ex);
    fake_engine_stop(&fe);
}

int main(void)
{
    char dir[] = "/tmp/gg_cfake_XXXXXX";
    CHECK(test_make_dir(dir));
    if (!dir[0] || strstr(dir, "XXXXXX"))
        return test_exit();
    char sock[128];
    snprintf(sock, sizeof sock, "%s/engine.sock", dir);
    test_fake(sock);
    unlink(sock);
    test_remove_dir(dir);
    return test_exit();
}
