/*
 * custom_retriever.c - bringing your own context source through the vtable of
 * <gryphgen/sys/retriever.h>. The retriever here is a tiny in-memory snippet store scored by
 * shared words with the query; a host would put a vector store or a code search service
 * behind the same slots (search, feedback, destroy). The program queries it directly, then
 * plugs it into an orchestrator, whose generator then receives the snippets as "context".
 *
 * Build against an installed libgryphgen:
 *     cc -o custom_retriever custom_retriever.c $(pkg-config --cflags --libs gryphgen)
 * Exit status: 0 when the direct query found the snippet, the orchestrator asked the
 * retriever, the snippet reached the attempt and the task passed; 1 otherwise; 2 when a call
 * failed.
 */
#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gryphgen.h>
#include <gryphgen/sys/retriever.h>

typedef struct snippet {
    const char *id, *keyword, *text;
} snippet;

static const snippet snippets[] = {
    {"py-sum", "sum", "sum(iterable) adds the items of an iterable; sum([]) == 0."},
    {"py-sorted", "sort", "sorted(xs) returns a new sorted list; xs.sort() sorts in place."},
    {"py-reverse", "reverse", "s[::-1] reverses a string or a list."},
};

typedef struct snippet_store {
    atomic_int queries;
} snippet_store;

/* Whether hay contains the lower-case word, ignoring case. */
static int lower_contains(const char *hay, const char *word)
{
    size_t n = strlen(word);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == word[i])
            i++;
        if (i == n)
            return 1;
    }
    return 0;
}

static int store_search(void *self, const char *query_json, char **out_results_json)
{
    snippet_store *s = self;
    atomic_fetch_add(&s->queries, 1);
    /* The snippets hold no quotes or backslashes, so they go into the JSON as they are; a real
     * host would use its JSON library. */
    char buf[2048];
    size_t used = (size_t)snprintf(buf, sizeof buf, "{\"results\": [");
    int first = 1;
    for (size_t i = 0; i < sizeof snippets / sizeof snippets[0]; i++) {
        if (!lower_contains(query_json, snippets[i].keyword))
            continue;
        int n = snprintf(buf + used, sizeof buf - used,
                         "%s{\"id\": \"%s\", \"text\": \"%s\", \"score\": 1.0, "
                         "\"source\": \"snippets\"}",
                         first ? "" : ", ", snippets[i].id, snippets[i].text);
        if (n < 0 || (size_t)n >= sizeof buf - used)
            return gg_error_set(GG_ETOOBIG, "snippet_store: results exceed 2 KiB");
        used += (size_t)n;
        first = 0;
    }
    if (used + 3 > sizeof buf)
        return gg_error_set(GG_ETOOBIG, "snippet_store: results exceed 2 KiB");
    memcpy(buf + used, "]}", 3);
    *out_results_json = gg_strdup(buf);
    return *out_results_json ? 0 : gg_error_set(GG_ENOMEM, "out of memory");
}

static int store_feedback(void *self, const char *feedback_json)
{
    (void)self;
    fprintf(stderr, "custom_retriever: feedback %s\n", feedback_json);
    return 0;
}

static void store_destroy(void *self)
{
    free(self);
}

static const char *const task =
    "{\"task_id\": \"custom_retriever/total\", \"language\": \"python\","
    " \"prompt\": \"Return the sum of the numbers in a list.\","
    " \"stub\": \"def total(xs):\\n\", \"entry_point\": \"total\","
    " \"test\": \"def check(candidate):\\n    assert candidate([1, 2, 3]) == 6\\n"
    "    assert candidate([]) == 0\\n\","
    " \"candidates\": [\"    return sum(xs)\\n\"]}";

static int fail(const char *what, int rc)
{
    fprintf(stderr, "custom_retriever: %s failed: %s (%s)\n", what, gg_strerror(rc),
            gg_error_last());
    return 2;
}

int main(void)
{
    snippet_store *s = calloc(1, sizeof *s);
    if (!s)
        return fail("calloc", GG_ENOMEM);
    atomic_init(&s->queries, 0);
    gg_retriever_vtable vt = GG_RETRIEVER_VTABLE_INIT;
    vt.search = store_search;
    vt.feedback = store_feedback;
    vt.destroy = store_destroy;
    vt.name = "snippets";
    gg_retriever_t *r = NULL;
    int rc = gg_retriever_new_custom(&r, &vt, s); /* s belongs to the library now */
    if (rc != 0)
        return fail("gg_retriever_new_custom", rc);

    int status = 2;
    gg_orchestrator_t *o = NULL;
    char *found = NULL, *id = NULL, *result = NULL;
    rc = gg_retriever_search(r, "{\"text\": \"how to reverse a list\", \"k\": 5}", &found);
    if (rc != 0) {
        status = fail("gg_retriever_search", rc);
        goto out;
    }
    printf("direct query: %s\n", found);
    int direct_ok = strstr(found, "py-reverse") != NULL;

    gg_orchestrator_options opts = GG_ORCHESTRATOR_OPTIONS_INIT;
    opts.retriever = r; /* borrowed: destroyed after the orchestrator */
    opts.workers = 1;
    if ((rc = gg_orchestrator_new(&o, &opts)) != 0) {
        status = fail("gg_orchestrator_new", rc);
        goto out;
    }
    if ((rc = gg_orchestrator_submit(o, task, &id)) != 0) {
        status = fail("gg_orchestrator_submit", rc);
        goto out;
    }
    if ((rc = gg_orchestrator_wait(o, id, 60000, &result)) != 0) {
        status = fail("gg_orchestrator_wait", rc);
        goto out;
    }
    printf("%s\n", result);
    int queries = atomic_load(&s->queries);
    printf("retriever '%s' answered %d queries\n", gg_retriever_name(r), queries);
    /* The attempt's history names the snippets that went into the generator's request. */
    status = direct_ok && queries >= 2 && strstr(result, "\"status\":\"passed\"") &&
                     strstr(result, "\"context_ids\":[\"py-sum\"]")
                 ? 0
                 : 1;

out:
    gg_free(result);
    gg_free(id);
    gg_free(found);
    gg_orchestrator_destroy(&o);
    gg_retriever_destroy(&r); /* calls store_destroy */
    return status;
}
