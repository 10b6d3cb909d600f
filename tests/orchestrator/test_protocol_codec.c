/*
 * test_protocol_codec.c - the ggp/1 codec (lib/orchestrator/protocol*.c) byte for byte: each
 * message a side writes is compared with the text peers of earlier releases wrote and read
 * (spelled out here, so a change of the wire shows up as a failed check), decoded back with
 * the same fields; the jobs and results streams and the event message with their fast
 * readers; and the failure paths: a message past the size limit, a builder given no id, a
 * fast reader given a message a little off the writer's shape (the decoder then decides).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gryphgen.h>

#include "core/ggi.h"
#include "orchestrator/protocol.h"
#include "testutil.h"

/* Prints m (taken), compares the text with want and decodes it: the type must be t. */
static void check_msg(cJSON *m, ggp_type t, const char *want)
{
    CHECK(m != NULL);
    size_t len = 0;
    char *text = m ? ggp_print(m, &len) : NULL;
    cJSON_Delete(m);
    CHECK_STR(text, want);
    if (text) {
        CHECK(len == strlen(want));
        ggp_msg d;
        CHECK_RC(ggp_decode(text, len, &d), GG_OK);
        CHECK(d.type == t);
        ggp_msg_free(&d);
    }
    free(text);
}

static void test_builders(void)
{
    check_msg(ggp_build_hello_client("cli"), GGP_HELLO,
              "{\"ggp\":1,\"t\":\"hello\",\"role\":\"client\",\"name\":\"cli\",\"versions\":[1]}");
    cJSON *caps = cJSON_Parse("{\"cores\":4,\"runtimes\":[\"python3\"]}");
    check_msg(ggp_build_hello_worker("w1", 2, 64, caps), GGP_HELLO,
              "{\"ggp\":1,\"t\":\"hello\",\"role\":\"worker\",\"name\":\"w1\",\"versions\":[1],"
              "\"slots\":2,\"queue\":64,\"caps\":{\"cores\":4,\"runtimes\":[\"python3\"]}}");
    CHECK(cJSON_GetObjectItemCaseSensitive(caps, "cores") != NULL); /* referenced, not taken */
    cJSON *resumed = ggp_build_hello_worker("w2", 1, 0, NULL);
    CHECK(ggp_hello_add_resume(resumed, "abc", cJSON_Parse("[\"0123456789abcdef0123456789abcdef\"]")) == GG_OK);
    check_msg(resumed, GGP_HELLO,
              "{\"ggp\":1,\"t\":\"hello\",\"role\":\"worker\",\"name\":\"w2\",\"versions\":[1],"
              "\"slots\":1,\"queue\":0,\"instance\":\"abc\",\"leases\":[\"0123456789abcdef0123456789abcdef\"]}");
    cJSON_Delete(caps);
    check_msg(ggp_build_welcome(1000, NULL), GGP_WELCOME,
              "{\"ggp\":1,\"t\":\"welcome\",\"version\":1,\"hb_ms\":1000}");
    check_msg(ggp_build_welcome(250, "w1"), GGP_WELCOME,
              "{\"ggp\":1,\"t\":\"welcome\",\"version\":1,\"hb_ms\":250,\"node\":\"w1\"}");
    check_msg(ggp_build_reset("say hello first"), GGP_RESET,
              "{\"ggp\":1,\"t\":\"reset\",\"reason\":\"say hello first\"}");
    check_msg(ggp_build_reply(7, 1), GGP_REPLY, "{\"ggp\":1,\"t\":\"reply\",\"rid\":7,\"ok\":true}");
    check_msg(ggp_build_reply_error(8, GG_EBUSY, "too many watchers"), GGP_REPLY,
              "{\"ggp\":1,\"t\":\"reply\",\"rid\":8,\"ok\":false,\"code\":-9,"
              "\"message\":\"too many watchers\"}");
    cJSON *r = ggp_build_reply_error(9, GG_EINVAL, NULL);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "message")),
              gg_strerror(GG_EINVAL));
    cJSON_Delete(r);

    /* A client's requests get their "rid" after the builder's fields. */
    cJSON *tasks = cJSON_Parse("[{\"id\":\"a\"}]");
    cJSON *m = ggp_build_submit(tasks);
    CHECK_RC(ggp_set_rid(m, 2), GG_OK);
    CHECK_RC(ggp_set_rid(m, 3), GG_OK); /* replaced, not repeated */
    check_msg(m, GGP_SUBMIT, "{\"ggp\":1,\"t\":\"submit\",\"tasks\":[{\"id\":\"a\"}],\"rid\":3}");
    m = ggp_build_wait("a");
    ggp_set_rid(m, 4);
    check_msg(m, GGP_WAIT, "{\"ggp\":1,\"t\":\"wait\",\"id\":\"a\",\"rid\":4}");
    m = ggp_build_status(NULL);
    ggp_set_rid(m, 5);
    check_msg(m, GGP_STATUS, "{\"ggp\":1,\"t\":\"status\",\"rid\":5}");
    m = ggp_build_cancel("a", 0);
    ggp_set_rid(m, 6);
    check_msg(m, GGP_CANCEL, "{\"ggp\":1,\"t\":\"cancel\",\"id\":\"a\",\"rid\":6}");
    /* the orchestrator's own control socket knows the seq */
    check_msg(ggp_build_cancel("a", 12), GGP_CANCEL,
              "{\"ggp\":1,\"t\":\"cancel\",\"seq\":12,\"id\":\"a\"}");
    cJSON *types = cJSON_Parse("[\"task.\"]");
    m = ggp_build_watch(types);
    ggp_set_rid(m, 7);
    check_msg(m, GGP_WATCH, "{\"ggp\":1,\"t\":\"watch\",\"types\":[\"task.\"],\"rid\":7}");
    cJSON_Delete(types);

    /* the hub's abort to a worker: the leases, then the reason when given */
    check_msg(ggp_build_abort(cJSON_Parse("[\"0123456789abcdef0123456789abcdef\"]"), "cancelled"),
              GGP_ABORT, "{\"ggp\":1,\"t\":\"abort\",\"leases\":"
              "[\"0123456789abcdef0123456789abcdef\"],\"reason\":\"cancelled\"}");
    check_msg(ggp_build_abort(cJSON_Parse("[\"a1\",\"b2\"]"), NULL), GGP_ABORT,
              "{\"ggp\":1,\"t\":\"abort\",\"leases\":[\"a1\",\"b2\"]}");
    CHECK(ggp_type_class(GGP_ABORT) == GGP_CLASS_HUB);

    /* failure paths: what a message requires cannot be left out */
    CHECK(ggp_build_abort(NULL, "x") == NULL);
    CHECK(ggp_build_wait(NULL) == NULL);
    CHECK(ggp_build_cancel(NULL, 3) == NULL);
    CHECK(ggp_build_submit(NULL) == NULL);
}

static void test_bare(void)
{
    static const struct {
        ggp_type t;
        const char *text;
    } bare[] = {
        { GGP_HB, "{\"ggp\":1,\"t\":\"hb\"}" },
        { GGP_BYE, "{\"ggp\":1,\"t\":\"bye\"}" },
        { GGP_WAKE, "{\"ggp\":1,\"t\":\"wake\"}" },
        { GGP_RESET, "{\"ggp\":1,\"t\":\"reset\"}" },
    };
    for (size_t i = 0; i < sizeof bare / sizeof bare[0]; i++) {
        size_t len = 0;
        const char *s = ggp_encode_bare(bare[i].t, &len);
        CHECK_STR(s, bare[i].text);
        CHECK(s && len == strlen(bare[i].text));
        /* the bytes ggp_new gives */
        cJSON *m = ggp_new(bare[i].t);
        char *p = ggp_print(m, NULL);
        CHECK_STR(p, bare[i].text);
        free(p);
        cJSON_Delete(m);
        ggp_msg d;
        CHECK_RC(ggp_decode(s, len, &d), GG_OK);
        CHECK(d.type == bare[i].t);
        ggp_msg_free(&d);
    }
    CHECK(ggp_encode_bare(GGP_SUBMIT, NULL) == NULL);
    CHECK(ggp_encode_bare(GGP_UNKNOWN, NULL) == NULL);
}

static void test_jobs(void)
{
    ggi_buf b = GGI_BUF_INIT;
    cJSON *fb = cJSON_Parse("[{\"n\":1,\"passed\":false}]"), *empty = cJSON_CreateArray();
    cJSON *strategy = cJSON_Parse("{\"temperature\":0.5}"), *demote = cJSON_Parse("[\"c1\"]");
    ggp_job_out a = { "0a1b", 5, 1, "{\"id\":\"t1\"}", NULL, NULL, NULL };
    ggp_job_out c = { "ff00", 6, 3, "{\"id\":\"t2\"}", fb, strategy, demote };
    ggp_job_out d = { "ee11", 1LL << 40, 2, "{\"id\":\"t3\"}", empty, NULL, empty };
    CHECK_RC(ggp_encode_jobs_begin(&b), GG_OK);
    CHECK_RC(ggp_encode_jobs_add(&b, 1, &a), GG_OK);
    CHECK_RC(ggp_encode_jobs_add(&b, 0, &c), GG_OK);
    CHECK_RC(ggp_encode_jobs_add(&b, 0, &d), GG_OK);
    CHECK_RC(ggp_encode_jobs_end(&b), GG_OK);
    CHECK_STR(b.data,
              "{\"ggp\":1,\"t\":\"jobs\",\"jobs\":["
              "{\"lease\":\"0a1b\",\"seq\":5,\"n\":1,\"task\":{\"id\":\"t1\"}},"
              "{\"lease\":\"ff00\",\"seq\":6,\"n\":3,\"task\":{\"id\":\"t2\"},"
              "\"feedback\":[{\"n\":1,\"passed\":false}],\"strategy\":{\"temperature\":0.5},"
              "\"demote\":[\"c1\"]},"
              "{\"lease\":\"ee11\",\"seq\":1099511627776,\"n\":2,\"task\":{\"id\":\"t3\"}}]}");
    ggp_msg m;
    CHECK_RC(ggp_decode(b.data, b.len, &m), GG_OK);
    CHECK(m.type == GGP_JOBS);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(m.body, "jobs")) == 3);
    ggp_msg_free(&m);

    /* past the limit: refused whole, with the size said */
    ggi_buf big = GGI_BUF_INIT;
    char *task = malloc(GGP_MAX_MESSAGE + 16);
    if (task) {
        memset(task, ' ', GGP_MAX_MESSAGE + 15);
        task[0] = '{';
        task[GGP_MAX_MESSAGE + 14] = '}';
        task[GGP_MAX_MESSAGE + 15] = 0;
        ggp_job_out huge = { "aa", 1, 1, task, NULL, NULL, NULL };
        CHECK_RC(ggp_encode_jobs_begin(&big), GG_OK);
        CHECK_RC(ggp_encode_jobs_add(&big, 1, &huge), GG_OK);
        CHECK_RC(ggp_encode_jobs_end(&big), GG_ETOOBIG);
        CHECK(strstr(gg_error_last(), "exceeds the limit") != NULL);
        free(task);
    }
    ggi_buf_free(&big);
    ggi_buf_free(&b);
    cJSON_Delete(fb);
    cJSON_Delete(empty);
    cJSON_Delete(strategy);
    cJSON_Delete(demote);
}

/* A results message from items: what the worker sends. */
static void results_of(ggi_buf *out, const char *const *items, int n)
{
    CHECK_RC(ggp_encode_results_begin(out), GG_OK);
    for (int i = 0; i < n; i++)
        CHECK_RC(ggp_encode_results_add(out, i == 0, items[i], strlen(items[i])), GG_OK);
    CHECK_RC(ggp_encode_results_end(out), GG_OK);
}

static void test_results(void)
{
    cJSON *job = cJSON_Parse("{\"lease\":\"0a1b\",\"seq\":5,\"n\":2,\"task\":{\"id\":\"t1\"}}");
    cJSON *rec = cJSON_Parse("{\"passed\":true,\"code\":\"x = 1\\n\",\"ms\":1.5}");
    ggi_buf item = GGI_BUF_INIT, out = GGI_BUF_INIT;
    CHECK_RC(ggp_encode_result(&item, job, rec), GG_OK);
    const char *want_item = "{\"lease\":\"0a1b\",\"seq\":5,\"n\":2,"
                            "\"record\":{\"passed\":true,\"code\":\"x = 1\\n\",\"ms\":1.5}}";
    CHECK_STR(item.data, want_item);
    /* the same bytes as the tree the worker printed before */
    cJSON *tree = cJSON_CreateObject();
    cJSON_AddStringToObject(tree, "lease", "0a1b");
    cJSON_AddNumberToObject(tree, "seq", 5);
    cJSON_AddNumberToObject(tree, "n", 2);
    cJSON_AddItemReferenceToObject(tree, "record", rec);
    char *printed = ggi_json_print(tree);
    CHECK_STR(printed, item.data);
    free(printed);
    cJSON_Delete(tree);

    const char *items[] = { item.data, item.data };
    results_of(&out, items, 2);
    CHECK(strncmp(out.data, "{\"ggp\":1,\"t\":\"results\",\"results\":[{\"lease\"", 42) == 0);
    ggp_result *v = NULL;
    int n = 0;
    CHECK_RC(ggp_results_scan(out.data, out.len, &v, &n), GG_OK);
    CHECK(n == 2);
    for (int i = 0; v && i < n; i++) {
        CHECK_STR(v[i].lease, "0a1b");
        CHECK(v[i].seq == 5 && v[i].n == 2);
        CHECK(v[i].len == strlen(want_item) - strlen("{\"lease\":\"0a1b\",\"seq\":5,\"n\":2,"
                                                      "\"record\":") - 1);
        CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v[i].record, "passed")));
    }
    ggp_results_free(v, n);
    ggp_msg m;
    CHECK_RC(ggp_decode(out.data, out.len, &m), GG_OK);
    CHECK(m.type == GGP_RESULTS);
    ggp_msg_free(&m);

    /* A job without a lease: the field is left out (as the tree left it), and neither
     * reader takes the message. */
    cJSON *nolease = cJSON_Parse("{\"seq\":5,\"n\":2}");
    item.len = 0;
    CHECK_RC(ggp_encode_result(&item, nolease, rec), GG_OK);
    CHECK(strncmp(item.data, "{\"seq\":5,", 9) == 0);
    const char *one[] = { item.data };
    results_of(&out, one, 1);
    CHECK_RC(ggp_results_scan(out.data, out.len, &v, &n), GG_ENOTFOUND);
    CHECK_RC(ggp_decode(out.data, out.len, &m), GG_EINVAL);
    CHECK(strstr(gg_error_last(), "lease") != NULL);
    cJSON_Delete(nolease);

    /* Off the writer's shape by a little: the fast reader leaves each to the decoder. */
    static const char *const off[] = {
        "{\"ggp\":1,\"t\":\"results\",\"results\":[{\"lease\":\"a\\u0062\",\"seq\":1,\"n\":1,\"record\":{}}]}",
        "{\"ggp\":1,\"t\":\"results\",\"results\":[{\"seq\":1,\"lease\":\"ab\",\"n\":1,\"record\":{}}]}",
        "{\"ggp\": 1,\"t\":\"results\",\"results\":[{\"lease\":\"ab\",\"seq\":1,\"n\":1,\"record\":{}}]}",
        "{\"ggp\":1,\"t\":\"results\",\"results\":[{\"lease\":\"ab\",\"seq\":1.0,\"n\":1,\"record\":{}}]}",
        "{\"ggp\":1,\"t\":\"results\",\"results\":[{\"lease\":\"ab\",\"seq\":1,\"n\":1,\"record\":{}}]} ",
    };
    for (size_t i = 0; i < sizeof off / sizeof off[0]; i++) {
        CHECK_RC(ggp_results_scan(off[i], strlen(off[i]), &v, &n), GG_ENOTFOUND);
        CHECK(v == NULL && n == 0);
        CHECK_RC(ggp_decode(off[i], strlen(off[i]), &m), GG_OK);
        ggp_msg_free(&m);
    }
    /* out of range for both */
    const char *zero = "{\"ggp\":1,\"t\":\"results\",\"results\":[{\"lease\":\"ab\",\"seq\":0,"
                       "\"n\":1,\"record\":{}}]}";
    CHECK_RC(ggp_results_scan(zero, strlen(zero), &v, &n), GG_ENOTFOUND);
    CHECK_RC(ggp_decode(zero, strlen(zero), &m), GG_EINVAL);

    /* The writer keeps a message within the limit: an item that would pass it is refused
     * with nothing appended (the worker sends it alone, or its infrastructure fault). */
    size_t big_len = GGP_MAX_MESSAGE;
    char *big = malloc(big_len + 1);
    if (big) {
        memset(big, 'x', big_len);
        big[big_len] = 0;
        CHECK_RC(ggp_encode_results_begin(&out), GG_OK);
        size_t before = out.len;
        CHECK_RC(ggp_encode_results_add(&out, 1, big, big_len), GG_ETOOBIG);
        CHECK(out.len == before);
        size_t fits = GGP_MAX_MESSAGE - before - 3;
        CHECK_RC(ggp_encode_results_add(&out, 1, big, fits), GG_OK);
        CHECK_RC(ggp_encode_results_add(&out, 0, "{}", 2), GG_ETOOBIG);
        CHECK_RC(ggp_encode_results_end(&out), GG_OK);
        CHECK(out.len <= GGP_MAX_MESSAGE);
        free(big);
    }
    ggi_buf_free(&item);
    ggi_buf_free(&out);
    cJSON_Delete(job);
    cJSON_Delete(rec);
}

static void test_event(void)
{
    const char *ev = "{\"type\":\"task.finished\",\"ts\":1.5,\"task_id\":\"t1\"}";
    size_t len = 0;
    char *m = ggp_encode_event(ev, strlen(ev), &len);
    CHECK_STR(m, "{\"ggp\":1,\"t\":\"event\",\"event\":{\"type\":\"task.finished\",\"ts\":1.5,"
                 "\"task_id\":\"t1\"}}");
    CHECK(m && len == strlen(m));
    /* what ggp_print gives for the tree */
    cJSON *tree = ggp_new(GGP_EVENT);
    cJSON_AddItemToObject(tree, "event", cJSON_Parse(ev));
    char *p = ggp_print(tree, NULL);
    CHECK_STR(p, m);
    free(p);
    cJSON_Delete(tree);
    const char *got = NULL;
    size_t got_len = 0;
    CHECK(m && ggp_event_peek(m, len, &got, &got_len) == 1);
    CHECK(got_len == strlen(ev) && got && memcmp(got, ev, got_len) == 0);
    ggp_msg d;
    CHECK_RC(ggp_decode(m, len, &d), GG_OK);
    CHECK(d.type == GGP_EVENT);
    ggp_msg_free(&d);
    free(m);
    /* not an event as the hub writes it: left to the decoder */
    static const char *const off[] = {
        "{\"ggp\":1,\"t\":\"event\",\"event\":[]}",
        "{\"ggp\":1,\"t\":\"event\",\"event\":{}",
        "{\"ggp\":1,\"t\":\"events\",\"event\":{}}",
        "{\"ggp\":1,\"t\":\"event\"}",
        "",
    };
    for (size_t i = 0; i < sizeof off / sizeof off[0]; i++)
        CHECK(ggp_event_peek(off[i], strlen(off[i]), &got, &got_len) == 0);
}

int main(void)
{
    test_builders();
    test_bare();
    test_jobs();
    test_results();
    test_event();
    return test_exit();
}
