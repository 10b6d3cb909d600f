/*
 * test_learning.c - the orchestrator learns from outcomes through the fts5 retriever: the
 * chunks an attempt used are credited when it passes and debited when it fails, and a
 * passing solution is indexed so a later task retrieves it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <gryphgen.h>

#include "testutil.h"

static cJSON *search(gg_retriever_t *r, const char *text)
{
    char q[256], *out = NULL;
    snprintf(q, sizeof q, "{\"text\":\"%s\",\"k\":10}", text);
    if (gg_retriever_search(r, q, &out) != GG_OK)
        return NULL;
    cJSON *res = cJSON_Parse(out);
    gg_free(out);
    return res;
}

/* The result whose source is source, or NULL. */
static const cJSON *by_source(const cJSON *res, const char *source)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(res, "results"))
    {
        const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(it, "source"));
        if (s && strcmp(s, source) == 0)
            return it;
    }
    return NULL;
}

static double field(const cJSON *o, const char *k)
{
    return cJSON_GetNumberValue(cJSON_GetObjectItem(o, k));
}

static cJSON *run(gg_orchestrator_t *o, const char *task)
{
    char *id = NULL, *res = NULL;
    if (gg_orchestrator_submit(o, task, &id) != GG_OK) {
        fprintf(stderr, "submit: %s\n", gg_error_last());
        return NULL;
    }
    int rc = gg_orchestrator_wait(o, id, 60000, &res);
    gg_free(id);
    if (rc != GG_OK)
        return NULL;
    cJSON *r = cJSON_Parse(res);
    gg_free(res);
    return r;
}

int main(void)
{
    setenv("GRYPHGEN_PYTHON", "/usr/bin/python3", 0);
    char dir[] = "/tmp/gg-test-learning-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char db[128];
    snprintf(db, sizeof db, "%s/rag.db", dir);

    gg_retriever_options ro = GG_RETRIEVER_OPTIONS_INIT;
    ro.backend = "fts5";
    ro.db_path = db;
    ro.exploration = 0;
    gg_retriever_t *r = NULL;
    CHECK_RC(gg_retriever_new(&r, &ro), GG_OK);
    CHECK_RC(gg_retriever_add(r, "{\"source\":\"notes/walrus.md\",\"text\":\"The walrus "
                                 "checksum adds the digits of a number.\"}", NULL), GG_OK);

    gg_orchestrator_options oo = GG_ORCHESTRATOR_OPTIONS_INIT;
    oo.workers = 1;
    oo.retriever = r;
    gg_orchestrator_t *o = NULL;
    CHECK_RC(gg_orchestrator_new(&o, &oo), GG_OK);

    /* A failing attempt, then a passing one; both used the walrus note. */
    cJSON *res = run(o, "{\"task_id\":\"walrus-1\",\"language\":\"python\","
                        "\"prompt\":\"walrus checksum of the digits\",\"entry_point\":\"walrus\","
                        "\"test\":\"def check(f):\\n    assert f(123) == 6\\n\","
                        "\"candidates\":[\"def walrus(n):\\n    return 0\\n\","
                        "\"def walrus(n):\\n    return sum(int(c) for c in str(n))\\n\"]}");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(res, "status")), "passed");
    const cJSON *h0 = cJSON_GetArrayItem(cJSON_GetObjectItem(res, "history"), 0);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(h0, "context_ids")) >= 1);
    cJSON_Delete(res);
    CHECK_RC(gg_orchestrator_drain(o, 10000), GG_OK);

    cJSON *found = search(r, "walrus checksum");
    const cJSON *note = by_source(found, "notes/walrus.md");
    CHECK(note != NULL);
    CHECK(field(note, "successes") == 1); /* the passing attempt */
    CHECK(field(note, "failures") == 1);  /* the failing one */
    /* The passing solution is now knowledge. */
    const cJSON *sol = by_source(found, "task:walrus-1");
    CHECK(sol != NULL);
    CHECK_CONTAINS(cJSON_GetStringValue(cJSON_GetObjectItem(sol, "text")), "sum(int(c)");
    cJSON_Delete(found);

    /* A task that fails all its attempts indexes nothing. */
    res = run(o, "{\"task_id\":\"walrus-2\",\"language\":\"python\","
                 "\"prompt\":\"walrus checksum again\",\"test\":\"assert False\\n\","
                 "\"candidates\":[\"x = 1\\n\"]}");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(res, "status")), "failed");
    cJSON_Delete(res);
    CHECK_RC(gg_orchestrator_drain(o, 10000), GG_OK);
    found = search(r, "walrus");
    CHECK(by_source(found, "task:walrus-2") == NULL);
    CHECK(field(by_source(found, "notes/walrus.md"), "failures") == 2);
    cJSON_Delete(found);

    gg_orchestrator_destroy(&o);
    gg_retriever_destroy(&r);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    return test_exit();
}
