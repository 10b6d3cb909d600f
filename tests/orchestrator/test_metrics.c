/*
 * test_metrics.c - what embedders read since 1.2 (issue 19): gg_orchestrator_metrics() counts
 * tasks by status from the database (also after a restart on the same database), attempts
 * by outcome, stage histograms whose counts agree with their +Inf buckets;
 * gg_orchestrator_tasks() pages the task list by status and rejects bad queries;
 * gg_orchestrator_connect() gives an in-process client that submits, asks and cancels
 * through the scheduler under its own submitter name. Bad arguments are GG_EINVAL.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "gryphgen.h"
#include "testutil.h"

static double metric(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, name, n) == 0 && p[n] == ' ')
            return atof(p + n + 1);
    }
    return -1;
}

static char *task(const char *id, int passes)
{
    char *t = malloc(512);
    snprintf(t, 512, "{\"task_id\":\"%s\",\"language\":\"python\",\"prompt\":\"one\","
             "\"entry_point\":\"f\",\"test\":\"def check(f):\\n    assert f() == 1\\n\","
             "\"candidates\":[\"def f():\\n    return %d\\n\"]}", id, passes ? 1 : 2);
    return t;
}

static gg_orchestrator_t *open_orch(const char *db)
{
    gg_orchestrator_options opts = GG_ORCHESTRATOR_OPTIONS_INIT;
    opts.db_path = db;
    opts.workers = 1;
    opts.max_attempts = 1;
    if (access("/usr/bin/python3", X_OK) == 0)
        opts.python = "/usr/bin/python3";
    gg_orchestrator_t *o = NULL;
    CHECK_RC(gg_orchestrator_new(&o, &opts), GG_OK);
    return o;
}

static void check_metrics(gg_orchestrator_t *o, int restarted)
{
    char *m = NULL;
    CHECK_RC(gg_orchestrator_metrics(o, &m), GG_OK);
    if (!m)
        return;
    CHECK(metric(m, "gryphgen_tasks_total{status=\"passed\"}") == 2);
    CHECK(metric(m, "gryphgen_tasks_total{status=\"failed\"}") == 1);
    CHECK(metric(m, "gryphgen_tasks{status=\"queued\"}") == 0);
    CHECK(metric(m, "gryphgen_queue_depth") == 0);
    if (!restarted) {
        CHECK(metric(m, "gryphgen_attempts_total{outcome=\"passed\"}") == 2);
        CHECK(metric(m, "gryphgen_attempts_total{outcome=\"failed\"}") == 1);
        double count = metric(m, "gryphgen_attempt_stage_duration_seconds_count{stage=\"execute\"}");
        double inf = metric(m, "gryphgen_attempt_stage_duration_seconds_bucket{stage=\"execute\","
                               "le=\"+Inf\"}");
        CHECK(count == 3 && inf == count);
        CHECK(metric(m, "gryphgen_model_requests_total{arm=\"replay\",status=\"ok\"}") == 3);
        CHECK(metric(m, "gryphgen_db_write_duration_seconds_count") > 0);
    } else {
        CHECK(metric(m, "gryphgen_attempts_total{outcome=\"passed\"}") == 0);
    }
    CHECK(strstr(m, "# TYPE gryphgen_tasks_total counter\n") != NULL);
    gg_free(m);
}

static void check_list(gg_orchestrator_t *o)
{
    char *out = NULL;
    CHECK_RC(gg_orchestrator_tasks(o, "{\"status\":\"passed\",\"limit\":1}", &out), GG_OK);
    cJSON *r = cJSON_Parse(out);
    gg_free(out);
    const cJSON *t = cJSON_GetArrayItem(cJSON_GetObjectItem(r, "tasks"), 0);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(t, "task_id")), "m/1");
    double next = cJSON_GetNumberValue(cJSON_GetObjectItem(r, "next"));
    CHECK(next > 0);
    char q[128];
    snprintf(q, sizeof q, "{\"status\":\"passed\",\"limit\":1,\"after\":%.0f}", next);
    cJSON_Delete(r);
    CHECK_RC(gg_orchestrator_tasks(o, q, &out), GG_OK);
    r = cJSON_Parse(out);
    gg_free(out);
    t = cJSON_GetArrayItem(cJSON_GetObjectItem(r, "tasks"), 0);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(t, "task_id")), "m/3");
    cJSON_Delete(r);
    CHECK_RC(gg_orchestrator_tasks(o, "{\"task_id\":\"m/2\"}", &out), GG_OK);
    CHECK(out && strstr(out, "\"status\":\"failed\"") && strstr(out, "\"next\":null"));
    gg_free(out);
    CHECK_RC(gg_orchestrator_tasks(o, NULL, &out), GG_OK);
    CHECK(out && strstr(out, "m/3"));
    gg_free(out);
    /* Bad queries. */
    CHECK_RC(gg_orchestrator_tasks(o, "{\"status\":\"done\"}", &out), GG_EINVAL);
    CHECK(out == NULL);
    CHECK_RC(gg_orchestrator_tasks(o, "{\"limit\":0}", &out), GG_EINVAL);
    CHECK_RC(gg_orchestrator_tasks(o, "{\"limit\":100000}", &out), GG_EINVAL);
    CHECK_RC(gg_orchestrator_tasks(o, "[1,2]", &out), GG_EINVAL);
    CHECK_RC(gg_orchestrator_tasks(o, "{not json", &out), GG_EINVAL);
    CHECK_RC(gg_orchestrator_tasks(o, "{}", NULL), GG_EINVAL);
    CHECK_RC(gg_orchestrator_tasks(NULL, "{}", &out), GG_EINVAL);
    CHECK_RC(gg_orchestrator_metrics(NULL, &out), GG_EINVAL);
    CHECK_RC(gg_orchestrator_metrics(o, NULL), GG_EINVAL);
}

static void check_client(gg_orchestrator_t *o)
{
    gg_client_t *c = NULL;
    CHECK_RC(gg_orchestrator_connect(o, NULL, &c), GG_EINVAL);
    CHECK_RC(gg_orchestrator_connect(o, "", &c), GG_EINVAL);
    CHECK_RC(gg_orchestrator_connect(NULL, "x", &c), GG_EINVAL);
    CHECK_RC(gg_orchestrator_connect(o, "embedder", &c), GG_OK);
    if (!c)
        return;
    char *t = task("m/4", 1), *id = NULL, *res = NULL, *st = NULL;
    CHECK_RC(gg_client_submit(c, t, &id), GG_OK);
    CHECK_STR(id, "m/4");
    CHECK_RC(gg_client_wait(c, "m/4", (int)TEST_DEADLINE_MS, &res), GG_OK);
    CHECK(res && strstr(res, "\"passed\""));
    CHECK_RC(gg_client_status(c, "m/4", &st), GG_OK);
    CHECK(st && strstr(st, "\"passed\""));
    CHECK_RC(gg_client_cancel(c, "m/4"), GG_ESTATE);
    gg_free(st);
    CHECK_RC(gg_client_status(c, "no/such", &st), GG_ENOTFOUND);
    char *out = NULL;
    CHECK_RC(gg_orchestrator_tasks(o, "{\"submitter\":\"embedder\"}", &out), GG_OK);
    CHECK(out && strstr(out, "\"m/4\"") && !strstr(out, "\"m/1\""));
    gg_free(out);
    free(t);
    gg_free(id);
    gg_free(res);
    gg_free(st);
    gg_client_destroy(&c);
    CHECK(c == NULL);
}

int main(void)
{
    char dir[] = "/tmp/gg-metrics-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char db[256];
    snprintf(db, sizeof db, "%s/m.db", dir);
    gg_orchestrator_t *o = open_orch(db);
    if (o) {
        for (int i = 1; i <= 3; i++) {
            char id[16];
            snprintf(id, sizeof id, "m/%d", i);
            char *t = task(id, i != 2);
            CHECK_RC(gg_orchestrator_submit(o, t, NULL), GG_OK);
            free(t);
        }
        CHECK_RC(gg_orchestrator_drain(o, (int)TEST_DEADLINE_MS), GG_OK);
        check_metrics(o, 0);
        check_list(o);
        check_client(o);
        gg_orchestrator_destroy(&o);
    }
    /* A restart on the same database: the task counters are read back from it. */
    o = open_orch(db);
    if (o) {
        char *m = NULL;
        CHECK_RC(gg_orchestrator_metrics(o, &m), GG_OK);
        CHECK(m && metric(m, "gryphgen_tasks_total{status=\"passed\"}") == 3);
        gg_free(m);
        gg_orchestrator_destroy(&o);
    }
    test_remove_dir(dir);
    return test_exit();
}
