/*
 * test_retriever.c - the retriever handle: options, the "none" backend, unknown backends, and
 * the vtable rules for a host's backend.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gryphgen.h>
#include <gryphgen/sys/retriever.h>

#include <cjson/cJSON.h>

#include "testutil.h"

static void test_none(void)
{
    gg_retriever_options o;
    CHECK_RC(gg_retriever_options_init(&o, GG_RETRIEVER_OPTIONS_VERSION), 0);
    CHECK(o.version == GG_RETRIEVER_OPTIONS_VERSION && o.backend == NULL);
    CHECK_RC(gg_retriever_options_init(&o, 7), GG_EVERSION);
    CHECK_RC(gg_retriever_options_init(NULL, 1), GG_EINVAL);

    gg_retriever_t *r = (gg_retriever_t *)1;
    o.backend = "faiss";
    CHECK_RC(gg_retriever_new(&r, &o), GG_EINVAL);
    CHECK(r == NULL);
    CHECK_CONTAINS(gg_error_last(), "unknown retriever backend 'faiss'");
    CHECK_CONTAINS(gg_error_last(), "\"none\"");
    o.backend = NULL;
    o.version = 3;
    CHECK_RC(gg_retriever_new(&r, &o), GG_EVERSION);
    CHECK_RC(gg_retriever_new(NULL, NULL), GG_EINVAL);

    CHECK_RC(gg_retriever_new(&r, NULL), 0);
    if (!r)
        return;
    CHECK_STR(gg_retriever_name(r), "none");
    char *res = NULL;
    CHECK_RC(gg_retriever_search(r, "{\"text\":\"sort a list\",\"language\":\"python\",\"k\":5}",
                                 &res),
             0);
    cJSON *j = res ? cJSON_Parse(res) : NULL;
    CHECK(j && cJSON_IsArray(cJSON_GetObjectItem(j, "results")) &&
          cJSON_GetArraySize(cJSON_GetObjectItem(j, "results")) == 0);
    cJSON_Delete(j);
    gg_free(res);
    res = (char *)1;
    CHECK_RC(gg_retriever_search(r, "{bad", &res), GG_EINVAL);
    CHECK(res == NULL);
    CHECK_CONTAINS(gg_error_last(), "malformed JSON");
    CHECK_RC(gg_retriever_search(r, "[1]", &res), GG_EINVAL);
    CHECK_RC(gg_retriever_search(r, NULL, &res), GG_EINVAL);
    CHECK_RC(gg_retriever_search(NULL, "{}", &res), GG_EINVAL);
    CHECK_RC(gg_retriever_search(r, "{}", NULL), GG_EINVAL);
    CHECK_RC(gg_retriever_feedback(r, "{\"task_id\":\"t\",\"passed\":true,\"ids\":[\"a\"]}"), 0);
    CHECK_RC(gg_retriever_feedback(r, "nope"), GG_EINVAL);
    CHECK_RC(gg_retriever_feedback(r, NULL), GG_EINVAL);
    CHECK_RC(gg_retriever_feedback(NULL, "{}"), GG_EINVAL);
    gg_retriever_destroy(&r);
    CHECK(r == NULL);
    gg_retriever_destroy(&r);
    gg_retriever_destroy(NULL);
    o.version = GG_RETRIEVER_OPTIONS_VERSION;
    o.backend = "none";
    CHECK_RC(gg_retriever_new(&r, &o), 0);
    gg_retriever_destroy(&r);
}

typedef struct host {
    int destroyed;
    int searches;
    int feedbacks;
    int fail;
} host;

static int host_search(void *self, const char *q, char **out)
{
    host *h = self;
    (void)q;
    h->searches++;
    if (h->fail == 1)
        return gg_error_set(GG_EIO, "index file unreadable");
    if (h->fail == 2)
        return 0; /* success without results: a backend bug */
    *out = gg_strdup("{\"results\":[{\"id\":\"d1\",\"text\":\"t\",\"score\":1,\"source\":\"s\"}]}");
    return 0;
}

static int host_feedback(void *self, const char *fb)
{
    host *h = self;
    (void)fb;
    h->feedbacks++;
    return h->fail == 1 ? GG_ESTORE : 0;
}

static void host_destroy(void *self)
{
    ((host *)self)->destroyed++;
}

static void test_custom(void)
{
    host h = { 0, 0, 0, 0 };
    gg_retriever_vtable vt = GG_RETRIEVER_VTABLE_INIT;
    vt.search = host_search;
    vt.feedback = host_feedback;
    vt.destroy = host_destroy;
    gg_retriever_t *r = (gg_retriever_t *)1;
    vt.version = 0;
    CHECK_RC(gg_retriever_new_custom(&r, &vt, &h), GG_EVERSION);
    CHECK(r == NULL && h.destroyed == 1);
    vt.version = GG_RETRIEVER_VTABLE_VERSION + 1;
    CHECK_RC(gg_retriever_new_custom(&r, &vt, &h), GG_EVERSION);
    CHECK(h.destroyed == 2);
    vt.version = GG_RETRIEVER_VTABLE_VERSION;
    vt.search = NULL;
    CHECK_RC(gg_retriever_new_custom(&r, &vt, &h), GG_EINVAL);
    CHECK(r == NULL && h.destroyed == 3);
    CHECK_CONTAINS(gg_error_last(), "search");
    vt.search = host_search;
    CHECK_RC(gg_retriever_new_custom(NULL, &vt, &h), GG_EINVAL);
    CHECK(h.destroyed == 4);
    CHECK_RC(gg_retriever_new_custom(&r, NULL, &h), GG_EINVAL);

    h.destroyed = 0;
    CHECK_RC(gg_retriever_new_custom(&r, &vt, &h), 0);
    CHECK_STR(gg_retriever_name(r), "custom");
    char *res = NULL;
    CHECK_RC(gg_retriever_search(r, "{}", &res), 0);
    CHECK_CONTAINS(res, "\"d1\"");
    gg_free(res);
    CHECK_RC(gg_retriever_feedback(r, "{}"), 0);
    CHECK(h.feedbacks == 1);
    h.fail = 1;
    CHECK_RC(gg_retriever_search(r, "{}", &res), GG_EIO);
    CHECK_STR(gg_error_last(), "index file unreadable");
    CHECK_RC(gg_retriever_feedback(r, "{}"), GG_ESTORE);
    CHECK_CONTAINS(gg_error_last(), "retriever 'custom' failed");
    h.fail = 2;
    res = (char *)1;
    CHECK_RC(gg_retriever_search(r, "{}", &res), GG_EIO);
    CHECK(res == NULL);
    CHECK_CONTAINS(gg_error_last(), "returned no results");
    gg_retriever_destroy(&r);
    CHECK(r == NULL && h.destroyed == 1);

    /* feedback is optional: without it feedback is accepted */
    gg_retriever_vtable vt2 = GG_RETRIEVER_VTABLE_INIT;
    vt2.search = host_search;
    vt2.name = "vectors";
    CHECK_RC(gg_retriever_new_custom(&r, &vt2, &h), 0);
    CHECK_STR(gg_retriever_name(r), "vectors");
    CHECK_RC(gg_retriever_feedback(r, "{}"), 0);
    gg_retriever_destroy(&r);
    CHECK(h.destroyed == 1);
    CHECK_STR(gg_retriever_name(NULL), "");
}

int main(void)
{
    test_none();
    test_custom();
    return test_exit();
}
