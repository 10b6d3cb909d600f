/*
 * test_fts5.c - the fts5 retriever through the public API: incremental re-indexing, BM25
 * order, ranking that moves with feedback, exploration that still surfaces an unseen chunk,
 * weight 0 as the plain FTS5 bm25() order (checked against SQL on the same table, also with
 * more matches than the ranking pass screens), solutions deduplicated by hash, the text
 * budget, pruning the sources gone below a root, concurrent use, and bad input.
 */
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "gryphgen.h"
#include "gryphgen/sys/retriever.h"
#include "retrieval/fts5.h"
#include "testutil.h"

static char dir[64];
static char db[128];
static int db_n;

static void new_db(void)
{
    snprintf(db, sizeof db, "%s/r%d.db", dir, ++db_n);
}

static gg_retriever_t *open_r(double weight, double exploration, uint64_t seed)
{
    gg_retriever_options o = GG_RETRIEVER_OPTIONS_INIT;
    o.backend = "fts5";
    o.db_path = db;
    o.usefulness_weight = weight;
    o.exploration = exploration;
    o.seed = seed;
    gg_retriever_t *r = NULL;
    CHECK_RC(gg_retriever_new(&r, &o), 0);
    return r;
}

/* Adds a document; returns the parsed report (caller deletes). */
static cJSON *add(gg_retriever_t *r, const char *source, const char *text, const char *kind)
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "source", source);
    cJSON_AddStringToObject(d, "text", text);
    if (kind)
        cJSON_AddStringToObject(d, "kind", kind);
    char *j = cJSON_PrintUnformatted(d);
    cJSON_Delete(d);
    char *out = NULL;
    CHECK_RC(gg_retriever_add(r, j, &out), 0);
    free(j);
    cJSON *res = out ? cJSON_Parse(out) : NULL;
    gg_free(out);
    return res;
}

static int num(const cJSON *o, const char *k)
{
    return (int)cJSON_GetNumberValue(cJSON_GetObjectItem(o, k));
}

static const char *id_at(const cJSON *o, int i)
{
    return cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "ids"), i));
}

/* Searches; fills ids (up to cap) and returns how many results came back. */
static int search(gg_retriever_t *r, const char *text, int k, char ids[][24], int cap)
{
    char q[512];
    snprintf(q, sizeof q, "{\"text\": \"%s\", \"k\": %d}", text, k);
    char *out = NULL;
    int rc = gg_retriever_search(r, q, &out);
    CHECK_RC(rc, 0);
    if (rc)
        return -1;
    cJSON *res = cJSON_Parse(out);
    gg_free(out);
    int n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(res, "results"))
    {
        if (n < cap)
            snprintf(ids[n], 24, "%s", cJSON_GetStringValue(cJSON_GetObjectItem(it, "id")));
        n++;
    }
    cJSON_Delete(res);
    return n;
}

static void feedback(gg_retriever_t *r, const char *id, int passed, int times)
{
    char fb[256];
    snprintf(fb, sizeof fb, "{\"task_id\": \"t\", \"passed\": %s, \"ids\": [\"%s\", \"%s\"]}",
             passed ? "true" : "false", id, id);
    for (int i = 0; i < times; i++)
        CHECK_RC(gg_retriever_feedback(r, fb), 0);
}

static const char *V1 = "import os\n\n"
                        "def load_config(path):\n    return open(path).read()\n\n"
                        "def save_config(path, text):\n    open(path, 'w').write(text)\n\n"
                        "def parse_config(text):\n    return text.split()\n";

static void test_incremental(void)
{
    new_db();
    gg_retriever_t *r = open_r(0.5, 0, 1);
    cJSON *a = add(r, "/src/config.py", V1, NULL);
    CHECK(num(a, "added") == 4 && num(a, "unchanged") == 0 && num(a, "removed") == 0);
    char save_id[24];
    snprintf(save_id, sizeof save_id, "%s", id_at(a, 2) ? id_at(a, 2) : "?");
    cJSON *b = add(r, "/src/config.py", V1, NULL);
    CHECK(num(b, "added") == 0 && num(b, "unchanged") == 4 && num(b, "removed") == 0);
    CHECK_STR(id_at(b, 2), save_id);
    cJSON_Delete(a);
    cJSON_Delete(b);
    /* Change one function and move the others: one added, one removed, ids kept. */
    const char *v2 = "import os\n\n\n\n"
                     "def load_config(path):\n    return open(path).read()\n\n"
                     "def save_config(path, text):\n    open(path, 'w').write(text)\n\n"
                     "def parse_config(text):\n    return text.split(',')\n";
    cJSON *c = add(r, "/src/config.py", v2, NULL);
    CHECK(num(c, "added") == 1 && num(c, "unchanged") == 3 && num(c, "removed") == 1);
    CHECK_STR(id_at(c, 2), save_id);
    cJSON_Delete(c);
    /* The stale chunk is gone from the index; the moved one reports its new lines. */
    char q[] = "{\"text\": \"parse_config split\", \"k\": 10}";
    char *out = NULL;
    CHECK_RC(gg_retriever_search(r, q, &out), 0);
    CHECK_CONTAINS(out, "split(',')");
    CHECK(out && !strstr(out, "text.split()\\n"));
    CHECK(out && !strstr(out, "return text.split()\""));
    gg_free(out);
    CHECK_RC(gg_retriever_search(r, "{\"text\": \"save_config\", \"k\": 1}", &out), 0);
    cJSON *res = cJSON_Parse(out);
    const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItem(res, "results"), 0);
    CHECK(num(first, "line_start") == 8 && num(first, "line_end") == 9);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(first, "source")), "/src/config.py");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(first, "title")), "def save_config");
    cJSON_Delete(res);
    gg_free(out);
    /* An empty text empties the document. */
    cJSON *e = add(r, "/src/config.py", "", NULL);
    CHECK(num(e, "removed") == 4 && num(e, "added") == 0);
    cJSON_Delete(e);
    char ids[4][24];
    CHECK(search(r, "load_config", 5, ids, 4) == 0);
    gg_retriever_destroy(&r);
}

static void test_bm25_and_learning(void)
{
    new_db();
    gg_retriever_t *r = open_r(0.5, 0, 7);
    /* F matches slightly better than P; both match far better than N. */
    cJSON *f = add(r, "/k/f.txt", "merge sorted lists quickly: merge merge the sorted lists", NULL);
    cJSON *p = add(r, "/k/p.txt", "merge sorted lists quickly: merge the sorted lists", NULL);
    cJSON *n = add(r, "/k/n.txt", "lists of things, unrelated words about cooking and more "
                                  "merge",
                   NULL);
    char fid[24], pid[24], nid[24];
    snprintf(fid, sizeof fid, "%s", id_at(f, 0));
    snprintf(pid, sizeof pid, "%s", id_at(p, 0));
    snprintf(nid, sizeof nid, "%s", id_at(n, 0));
    cJSON_Delete(f);
    cJSON_Delete(p);
    cJSON_Delete(n);
    char ids[8][24];
    CHECK(search(r, "merge sorted lists", 3, ids, 8) == 3);
    CHECK_STR(ids[0], fid);
    CHECK_STR(ids[1], pid);
    CHECK_STR(ids[2], nid);
    /* P keeps leading to passes, F to failures: P rises above F. */
    feedback(r, pid, 1, 5);
    feedback(r, fid, 0, 5);
    CHECK(search(r, "merge sorted lists", 3, ids, 8) == 3);
    CHECK_STR(ids[0], pid);
    CHECK_STR(ids[1], fid);
    char *out = NULL;
    CHECK_RC(gg_retriever_search(r, "{\"text\": \"merge sorted lists\", \"k\": 1}", &out), 0);
    CHECK_CONTAINS(out, "\"successes\":5");
    CHECK_CONTAINS(out, "\"failures\":0");
    gg_free(out);
    gg_retriever_destroy(&r);
    /* Usefulness persists; with weight 0 the order is plain BM25 again. */
    r = open_r(0, 0, 7);
    CHECK(search(r, "merge sorted lists", 3, ids, 8) == 3);
    CHECK_STR(ids[0], fid);
    CHECK_STR(ids[1], pid);
    gg_retriever_destroy(&r);
}

/* Weight 0 gives exactly the order of a plain FTS5 bm25() query on the same table. */
static void test_plain_order(void)
{
    new_db();
    gg_retriever_t *r = open_r(0.5, 0, 3);
    static const char *words[] = { "alpha", "beta", "gamma", "delta", "omega", "sigma" };
    uint64_t s = 12345;
    for (int d = 0; d < 60; d++) {
        char text[600] = "";
        for (int w = 0; w < 30; w++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            strcat(text, words[(s >> 33) % 6]);
            strcat(text, w % 7 == 6 ? ".\n" : " ");
        }
        char src[32];
        snprintf(src, sizeof src, "/p/%d.txt", d);
        cJSON_Delete(add(r, src, text, NULL));
    }
    /* Some learned usefulness that the weight-0 ranking must ignore. */
    feedback(r, "3", 1, 4);
    feedback(r, "5", 0, 4);
    gg_retriever_destroy(&r);
    r = open_r(0, 0.5, 3);
    char ids[20][24];
    int n = search(r, "alpha omega", 20, ids, 20);
    CHECK(n == 20);
    sqlite3 *h = NULL;
    CHECK(sqlite3_open(db, &h) == SQLITE_OK);
    sqlite3_stmt *st = NULL;
    CHECK(sqlite3_prepare_v2(h,
                             "SELECT rowid FROM rag_fts WHERE rag_fts MATCH '\"alpha\" OR "
                             "\"omega\"' ORDER BY " GGI_FTS5_BM25 " LIMIT 20",
                             -1, &st, NULL) == SQLITE_OK);
    int i = 0, same = 0;
    while (st && sqlite3_step(st) == SQLITE_ROW && i < 20) {
        char want[24];
        snprintf(want, sizeof want, "%lld", (long long)sqlite3_column_int64(st, 0));
        same += strcmp(want, ids[i]) == 0;
        i++;
    }
    CHECK(i == 20 && same == 20);
    sqlite3_finalize(st);
    sqlite3_close(h);
    gg_retriever_destroy(&r);
}

static void test_exploration(void)
{
    new_db();
    gg_retriever_t *r = open_r(1.0, 0, 11);
    cJSON *a = add(r, "/e/a.txt", "binary search over a sorted array", NULL);
    cJSON *u = add(r, "/e/u.txt", "binary search over a sorted array", NULL);
    char aid[24], uid[24];
    snprintf(aid, sizeof aid, "%s", id_at(a, 0));
    snprintf(uid, sizeof uid, "%s", id_at(u, 0));
    cJSON_Delete(a);
    cJSON_Delete(u);
    feedback(r, aid, 1, 8);
    char ids[2][24];
    int u_top = 0;
    for (int i = 0; i < 100; i++)
        if (search(r, "binary search sorted array", 1, ids, 2) == 1)
            u_top += strcmp(ids[0], uid) == 0;
    CHECK(u_top == 0); /* without exploration the proven chunk always wins */
    gg_retriever_destroy(&r);
    r = open_r(1.0, 1.0, 11);
    int draws = 300;
    u_top = 0;
    for (int i = 0; i < draws; i++)
        if (search(r, "binary search sorted array", 1, ids, 2) == 1)
            u_top += strcmp(ids[0], uid) == 0;
    fprintf(stderr, "unseen chunk on top in %d of %d explored draws\n", u_top, draws);
    CHECK(u_top > 0);          /* Beta(1,1) beats Beta(9,1) about 1 time in 10 */
    CHECK(u_top < draws / 3);  /* but the proven chunk still wins most */
    gg_retriever_destroy(&r);
}

static void test_solutions_and_budget(void)
{
    new_db();
    gg_retriever_t *r = open_r(0.5, 0, 5);
    const char *sol = "def fizz(n):\n    return 'fizz' if n % 3 == 0 else str(n)\n";
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "source", "task:fizz");
    cJSON_AddStringToObject(d, "text", sol);
    cJSON_AddStringToObject(d, "language", "python");
    cJSON_AddStringToObject(d, "kind", "solution");
    char *j = cJSON_PrintUnformatted(d);
    cJSON_Delete(d);
    char *out = NULL;
    CHECK_RC(gg_retriever_add(r, j, &out), 0);
    cJSON *a = cJSON_Parse(out);
    gg_free(out);
    CHECK(num(a, "added") == 1);
    CHECK_RC(gg_retriever_add(r, j, NULL), 0);
    CHECK_RC(gg_retriever_add(r, j, &out), 0);
    cJSON *b = cJSON_Parse(out);
    gg_free(out);
    CHECK(num(b, "added") == 0 && num(b, "unchanged") == 1);
    CHECK_STR(id_at(b, 0), id_at(a, 0));
    cJSON_Delete(a);
    cJSON_Delete(b);
    free(j);
    char ids[4][24];
    CHECK(search(r, "fizz", 5, ids, 4) == 1);
    CHECK_RC(gg_retriever_search(r, "{\"text\": \"fizz\", \"language\": \"c\"}", &out), 0);
    /* python chunks are not offered to a C task */
    CHECK_STR(out, "{\"results\":[],\"kind\":\"c:ce98637fc0389ca4\"}");
    gg_free(out);
    CHECK_RC(gg_retriever_search(r, "{\"text\": \"fizz\", \"language\": \"python\"}", &out), 0);
    CHECK_CONTAINS(out, "\"kind\":\"solution\"");
    gg_free(out);
    gg_retriever_destroy(&r);
    /* The character budget skips results that do not fit. */
    gg_retriever_options o = GG_RETRIEVER_OPTIONS_INIT;
    o.backend = "fts5";
    o.db_path = db;
    o.max_chars = 20;
    CHECK_RC(gg_retriever_new(&r, &o), 0);
    CHECK(search(r, "fizz", 5, ids, 4) == 0);
    gg_retriever_destroy(&r);
}

/* More matching chunks than the ranking pass keeps (k 1: pool 20, screen 320), of varied
 * lengths: the results and their bm25 values are FTS5's own bm25() over the same table. */
static void test_screen_matches_bm25(void)
{
    new_db();
    gg_retriever_t *r = open_r(0, 0, 9);
    static const char *words[] = { "alpha", "beta", "gamma", "delta", "omega", "sigma",
                                   "kappa", "theta", "lambda", "zeta" };
    uint64_t s = 777;
    for (int d = 0; d < 40; d++) {
        char text[40000] = "";
        for (int p = 0; p < 25; p++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            int len = 3 + (int)((s >> 33) % 60); /* 3 to 62 words: lengths vary */
            for (int w = 0; w < len; w++) {
                s = s * 6364136223846793005ull + 1442695040888963407ull;
                unsigned v = (unsigned)(s >> 33) % 100;
                strcat(text, words[v < 40 ? 0 : v < 60 ? 1 : v < 75 ? 2 : 3 + v % 7]);
                strcat(text, " ");
            }
            strcat(text, ".\n\n");
        }
        char src[32];
        snprintf(src, sizeof src, "/s/%d.txt", d);
        cJSON_Delete(add(r, src, text, NULL));
    }
    sqlite3 *h = NULL;
    CHECK(sqlite3_open(db, &h) == SQLITE_OK);
    sqlite3_stmt *st = NULL;
    static const char *queries[] = { "alpha beta", "alpha", "beta gamma", "alpha zeta",
                                     "gamma delta omega", "alpha beta gamma delta" };
    int same = 0, close_bm25 = 0, total = 0;
    for (size_t qi = 0; qi < sizeof queries / sizeof queries[0]; qi++) {
        char q[128], *match = NULL, *out = NULL;
        snprintf(q, sizeof q, "{\"text\": \"%s\", \"k\": 1}", queries[qi]);
        CHECK_RC(ggi_fts5_match_expr(queries[qi], &match), 0);
        CHECK_RC(gg_retriever_search(r, q, &out), 0);
        cJSON *res = cJSON_Parse(out);
        gg_free(out);
        const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItem(res, "results"), 0);
        sqlite3_stmt *pl = NULL;
        CHECK(sqlite3_prepare_v2(h,
                                 "SELECT rowid, " GGI_FTS5_BM25 " AS b FROM rag_fts WHERE "
                                 "rag_fts MATCH ?1 ORDER BY b LIMIT 1",
                                 -1, &pl, NULL) == SQLITE_OK);
        sqlite3_bind_text(pl, 1, match, -1, SQLITE_STATIC);
        if (pl && sqlite3_step(pl) == SQLITE_ROW && first) {
            char want[24];
            snprintf(want, sizeof want, "%lld", (long long)sqlite3_column_int64(pl, 0));
            same += strcmp(want, cJSON_GetStringValue(cJSON_GetObjectItem(first, "id"))) == 0;
            double b = cJSON_GetNumberValue(cJSON_GetObjectItem(first, "bm25"));
            close_bm25 += fabs(b - sqlite3_column_double(pl, 1)) < 1e-9;
        }
        total++;
        sqlite3_finalize(pl);
        cJSON_Delete(res);
        free(match);
    }
    CHECK(sqlite3_prepare_v2(h, "SELECT count(*) FROM rag_fts WHERE rag_fts MATCH 'alpha'", -1,
                             &st, NULL) == SQLITE_OK);
    CHECK(st && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) > 320);
    sqlite3_finalize(st);
    sqlite3_close(h);
    fprintf(stderr, "screen: %d of %d top results are bm25()'s, %d with its value\n", same,
            total, close_bm25);
    CHECK(same == total && close_bm25 == total);
    gg_retriever_destroy(&r);
}

/* Pruning: the documents below a root that are not kept go, with their chunks and learned
 * counts; sibling prefixes, other roots and solutions stay. */
static void test_prune(void)
{
    new_db();
    gg_retriever_t *r = open_r(0.5, 0, 4);
    cJSON_Delete(add(r, "/t/a/x.txt", "xylophone music notes", NULL));
    cJSON *y = add(r, "/t/a/y.txt", "yodel mountain song", NULL);
    char yid[24];
    snprintf(yid, sizeof yid, "%s", id_at(y, 0));
    cJSON_Delete(y);
    cJSON_Delete(add(r, "/t/a/sub/z.txt", "zebra stripes savanna", NULL));
    cJSON_Delete(add(r, "/t/ab.txt", "yodel abroad", NULL));
    cJSON_Delete(add(r, "task:y", "yodel solution", "solution"));
    feedback(r, yid, 1, 3);
    char *out = NULL;
    CHECK_RC(gg_retriever_add(r, "{\"kind\": \"prune\", \"source\": \"/t/a/\", "
                                 "\"keep\": [\"/t/a/x.txt\", \"/elsewhere\"]}",
                              &out),
             0);
    cJSON *p = cJSON_Parse(out);
    gg_free(out);
    CHECK(num(p, "removed_documents") == 2 && num(p, "removed") == 2);
    cJSON_Delete(p);
    char ids[8][24];
    CHECK(search(r, "xylophone", 5, ids, 8) == 1);
    CHECK(search(r, "zebra", 5, ids, 8) == 0);
    CHECK(search(r, "yodel", 5, ids, 8) == 2); /* /t/ab.txt and the solution */
    for (int i = 0; i < 2; i++)
        CHECK(strcmp(ids[i], yid) != 0);
    /* Added again, y starts over: new chunk, no learned counts. */
    cJSON *y2 = add(r, "/t/a/y.txt", "yodel mountain song", NULL);
    CHECK(num(y2, "added") == 1);
    cJSON_Delete(y2);
    CHECK_RC(gg_retriever_search(r, "{\"text\": \"mountain\", \"k\": 1}", &out), 0);
    CHECK_CONTAINS(out, "\"successes\":0");
    gg_free(out);
    /* A prune of "/" with nothing kept empties every source but keeps solutions. */
    CHECK_RC(gg_retriever_add(r, "{\"kind\": \"prune\", \"source\": \"/\"}", &out), 0);
    CHECK_CONTAINS(out, "\"removed_documents\":3");
    gg_free(out);
    CHECK(search(r, "yodel", 5, ids, 8) == 1);
    /* Bad input. */
    CHECK_RC(gg_retriever_add(r, "{\"kind\": \"prune\", \"source\": \"t/a\"}", &out), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "absolute");
    CHECK_RC(gg_retriever_add(r, "{\"kind\": \"prune\", \"source\": \"/t\", \"keep\": 1}", &out),
             GG_EINVAL);
    CHECK_RC(gg_retriever_add(r, "{\"kind\": \"prune\", \"source\": \"/t\", \"keep\": [1]}",
                              &out),
             GG_EINVAL);
    CHECK_RC(gg_retriever_add(r, "{\"kind\": \"prune\"}", &out), GG_EINVAL);
    CHECK(out == NULL);
    gg_retriever_destroy(&r);
}

typedef struct worker_arg {
    gg_retriever_t *r;
    int failures;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *w = p;
    for (int i = 0; i < 50; i++) {
        char *out = NULL;
        if (gg_retriever_search(w->r, "{\"text\": \"merge sorted\", \"k\": 3}", &out) != 0)
            w->failures++;
        gg_free(out);
        if (gg_retriever_feedback(w->r, "{\"task_id\": \"x\", \"passed\": true, \"ids\": "
                                        "[\"1\", 2, \"nope\", \"999999\"]}") != 0)
            w->failures++;
    }
    return NULL;
}

static void test_concurrent(void)
{
    new_db();
    gg_retriever_t *r = open_r(0.5, 0.2, 9);
    cJSON_Delete(add(r, "/c/1.txt", "merge sorted runs", NULL));
    cJSON_Delete(add(r, "/c/2.txt", "sorted merge of runs", NULL));
    pthread_t t[4];
    worker_arg w[4];
    for (int i = 0; i < 4; i++) {
        w[i].r = r;
        w[i].failures = 0;
        CHECK(pthread_create(&t[i], NULL, worker, &w[i]) == 0);
    }
    int failures = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        failures += w[i].failures;
    }
    CHECK(failures == 0);
    char *out = NULL;
    CHECK_RC(gg_retriever_search(r, "{\"text\": \"merge runs\", \"k\": 2}", &out), 0);
    CHECK_CONTAINS(out, "\"successes\":200");
    gg_free(out);
    gg_retriever_destroy(&r);
}

static void test_bad_input(void)
{
    new_db();
    gg_retriever_t *r = open_r(0.5, 0, 1);
    char *out = NULL;
    CHECK_RC(gg_retriever_search(r, "{\"k\": 3}", &out), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "text");
    CHECK_RC(gg_retriever_search(r, "not json", &out), GG_EINVAL);
    CHECK_RC(gg_retriever_search(r, "{\"text\": \"x\", \"k\": 1000}", &out), GG_EINVAL);
    CHECK(out == NULL);
    CHECK_RC(gg_retriever_search(r, "{\"text\": \"!!! ,,, a\"}", &out), 0);
    CHECK_STR(out, "{\"results\":[],\"kind\":\"any:-\"}");
    gg_free(out);
    CHECK_RC(gg_retriever_feedback(r, "{\"passed\": \"yes\", \"ids\": []}"), GG_EINVAL);
    CHECK_RC(gg_retriever_feedback(r, "{\"passed\": true, \"ids\": 3}"), GG_EINVAL);
    CHECK_RC(gg_retriever_add(r, "{\"text\": \"x\"}", NULL), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "source");
    CHECK_RC(gg_retriever_add(r, "{\"source\": \"a\", \"text\": \"x\", \"language\": \"Py "
                                 "thon\"}",
                              NULL),
             GG_EINVAL);
    gg_retriever_destroy(&r);
    gg_retriever_options o = GG_RETRIEVER_OPTIONS_INIT;
    o.backend = "fts5";
    CHECK_RC(gg_retriever_new(&r, &o), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "db_path");
    o.db_path = db;
    o.exploration = 2;
    CHECK_RC(gg_retriever_new(&r, &o), GG_EINVAL);
    o.exploration = 0;
    o.db_path = "/nonexistent-dir/x.db";
    CHECK_RC(gg_retriever_new(&r, &o), GG_ESTORE);
    CHECK(r == NULL);
    /* Tables of a newer schema are refused, not misread. */
    sqlite3 *h = NULL;
    CHECK(sqlite3_open(db, &h) == SQLITE_OK);
    CHECK(sqlite3_exec(h, "UPDATE rag_meta SET value = '99' WHERE key = 'schema_version'", NULL,
                       NULL, NULL) == SQLITE_OK);
    sqlite3_close(h);
    o.db_path = db;
    CHECK_RC(gg_retriever_new(&r, &o), GG_EVERSION);
    /* The none backend cannot add. */
    CHECK_RC(gg_retriever_new(&r, NULL), 0);
    CHECK_RC(gg_retriever_add(r, "{\"source\": \"a\", \"text\": \"b\"}", &out), GG_EUNSUPPORTED);
    CHECK(out == NULL);
    gg_retriever_destroy(&r);
    /* A version 1 options struct still selects a backend (later fields take defaults). */
    gg_retriever_options v1 = GG_RETRIEVER_OPTIONS_INIT;
    v1.version = 1;
    v1.backend = "fts5";
    CHECK_RC(gg_retriever_new(&r, &v1), GG_EINVAL); /* db_path is a version 2 field */
    CHECK_RC(gg_retriever_options_init(&v1, 1), 0);
    CHECK_RC(gg_retriever_options_init(&v1, 3), GG_EVERSION);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/gg-fts5-XXXXXX");
    if (!test_make_dir(dir))
        return 1;
    test_incremental();
    test_bm25_and_learning();
    test_plain_order();
    test_exploration();
    test_solutions_and_budget();
    test_screen_matches_bm25();
    test_prune();
    test_concurrent();
    test_bad_input();
    test_remove_dir(dir);
    return test_exit();
}
