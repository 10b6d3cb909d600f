/*
 * retrieval.c - the retrieval benchmark (bench/retrieval.sh runs it). Indexes N chunks of
 * synthetic text generated from a fixed seed (Zipf-distributed words, 100 paragraphs a
 * document) through the fts5 backend, gives a fifth of them learned usefulness, then runs the
 * same queries two ways, alternating per query: the fts5 search with usefulness blended in
 * (the whole call: JSON query in, JSON results with text out) and a plain FTS5 bm25() query
 * over the same table (ids and scores only, the limit; its connection gets the backend's
 * pragmas). Prints the settings that ran (query, SQLite, machine load), indexing chunks/s,
 * p50/p99 latency and queries/s of both, how often the weight-0 search returns exactly the
 * plain bm25() top k (the screen is a heuristic), and whether the targets hold.
 * Usage: retrieval DIR [CHUNKS] [QUERIES] [RANK_LO RANK_HI]
 * (query words are drawn from frequency ranks RANK_LO to RANK_HI of the vocabulary; lower
 * ranks are commoner words, which match more chunks and cost more).
 */
#include <math.h>
#include <sqlite3.h>
#include <time.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/ggi.h"
#include "retrieval/fts5.h"

#define VOCAB 20000
#define PARAS_PER_DOC 100
#define SEED 20240611ull
static int QUERY_RANK_LO = 100, QUERY_RANK_HI = 5000;
#define K 5
#define WARMUP 200

static uint64_t rng = SEED;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static char words[VOCAB][16]; /* up to 5 syllables and 2 digits */
static double cdf[VOCAB];

static int zipf(void)
{
    double u = (double)(next() >> 11) / 9007199254740992.0;
    int lo = 0, hi = VOCAB - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* CPU time of this thread in ms: unlike wall time, barely moved by other processes. */
static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
    int i = (int)ceil(p * n) - 1;
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: retrieval DIR [CHUNKS] [QUERIES] [RANK_LO RANK_HI]\n");
        return 2;
    }
    long chunks = argc > 2 ? atol(argv[2]) : 100000;
    int queries = argc > 3 ? atoi(argv[3]) : 2000;
    if (argc > 5) {
        QUERY_RANK_LO = atoi(argv[4]);
        QUERY_RANK_HI = atoi(argv[5]);
    }
    if (QUERY_RANK_LO < 0 || QUERY_RANK_HI <= QUERY_RANK_LO || QUERY_RANK_HI > VOCAB) {
        fprintf(stderr, "retrieval: need 0 <= RANK_LO < RANK_HI <= %d\n", VOCAB);
        return 2;
    }
    if (chunks < PARAS_PER_DOC || queries < 10) {
        fprintf(stderr, "retrieval: CHUNKS must be >= %d and QUERIES >= 10\n", PARAS_PER_DOC);
        return 2;
    }
    char db[512];
    snprintf(db, sizeof db, "%s/bench.db", argv[1]);
    remove(db);

    /* Vocabulary: pronounceable words, Zipf(1) frequencies. */
    static const char cons[] = "bcdfghjklmnprstvz", vow[] = "aeiou";
    double h = 0;
    for (int i = 0; i < VOCAB; i++) {
        int len = 2 + (int)(next() % 4);
        char *w = words[i];
        for (int j = 0; j < len; j++) {
            *w++ = cons[next() % (sizeof cons - 1)];
            *w++ = vow[next() % (sizeof vow - 1)];
        }
        snprintf(w, 3, "%d", i % 100); /* distinct words */
        h += 1.0 / (i + 1);
        cdf[i] = h;
    }
    for (int i = 0; i < VOCAB; i++)
        cdf[i] /= h;

    ggi_fts5_config cfg = { db, 0.5, 0.1, 42, 0, 0 };
    ggi_fts5 *x = NULL;
    if (ggi_fts5_open(&cfg, &x)) {
        fprintf(stderr, "retrieval: %s\n", gg_error_last());
        return 1;
    }
    /* Index. */
    long docs = chunks / PARAS_PER_DOC, added = 0;
    double t0 = ggi_now_ms();
    ggi_buf text = GGI_BUF_INIT;
    for (long d = 0; d < docs; d++) {
        ggi_buf_free(&text);
        for (int p = 0; p < PARAS_PER_DOC; p++) {
            int n = 40 + (int)(next() % 20);
            for (int w = 0; w < n; w++)
                ggi_buf_printf(&text, "%s%s", words[zipf()], w + 1 < n ? " " : ".\n\n");
        }
        cJSON *doc = cJSON_CreateObject();
        char src[64];
        snprintf(src, sizeof src, "/bench/doc%05ld.txt", d);
        cJSON_AddStringToObject(doc, "source", src);
        cJSON_AddStringToObject(doc, "text", text.data ? text.data : "");
        char *json = cJSON_PrintUnformatted(doc);
        cJSON_Delete(doc);
        char *out = NULL;
        if (!json || ggi_fts5_add(x, json, &out)) {
            fprintf(stderr, "retrieval: adding: %s\n", gg_error_last());
            return 1;
        }
        cJSON *r = cJSON_Parse(out);
        added += (long)cJSON_GetNumberValue(cJSON_GetObjectItem(r, "added"));
        cJSON_Delete(r);
        free(out);
        cJSON_free(json);
    }
    ggi_buf_free(&text);
    double index_ms = ggi_now_ms() - t0;

    sqlite3 *h2 = NULL;
    sqlite3_stmt *plain = NULL;
    if (sqlite3_open(db, &h2) != SQLITE_OK ||
        sqlite3_exec(h2, GGI_FTS5_PRAGMAS, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(h2,
                     "UPDATE rag_chunks SET successes = (id * 7919) % 11,"
                     " failures = (id * 104729) % 7 WHERE id % 5 = 0",
                     NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(h2,
                           "SELECT rowid, " GGI_FTS5_BM25 " AS b FROM rag_fts"
                           " WHERE rag_fts MATCH ?1 ORDER BY b LIMIT ?2",
                           -1, &plain, NULL) != SQLITE_OK) {
        fprintf(stderr, "retrieval: %s\n", sqlite3_errmsg(h2));
        return 1;
    }

    /* Queries: three words from the middle of the frequency range. */
    int total = queries + WARMUP;
    char (*q)[128] = malloc((size_t)total * sizeof *q);
    double *lb = malloc((size_t)queries * sizeof *lb), *lp = malloc((size_t)queries * sizeof *lp);
    double *cb = malloc((size_t)queries * sizeof *cb), *cp = malloc((size_t)queries * sizeof *cp);
    if (!q || !lb || !lp || !cb || !cp)
        return 1;
    for (int i = 0; i < total; i++) {
        int a = QUERY_RANK_LO + (int)(next() % (QUERY_RANK_HI - QUERY_RANK_LO));
        int b = QUERY_RANK_LO + (int)(next() % (QUERY_RANK_HI - QUERY_RANK_LO));
        int c = QUERY_RANK_LO + (int)(next() % (QUERY_RANK_HI - QUERY_RANK_LO));
        snprintf(q[i], sizeof q[i], "%s %s %s", words[a], words[b], words[c]);
    }
    double sum_b = 0, sum_p = 0;
    long matched = 0;
    for (int i = 0; i < total; i++) {
        char qj[256], *match = NULL;
        snprintf(qj, sizeof qj, "{\"text\":\"%s\",\"k\":%d}", q[i], K);
        ggi_fts5_match_expr(q[i], &match);
        for (int pass = 0; pass < 2; pass++) {
            int blended = (pass == 0) == (i % 2 == 0); /* alternate which runs first */
            double s = ggi_now_ms(), sc = cpu_ms();
            if (blended) {
                char *out = NULL;
                if (ggi_fts5_search(x, qj, &out)) {
                    fprintf(stderr, "retrieval: search: %s\n", gg_error_last());
                    return 1;
                }
                if (i >= WARMUP && strstr(out, "\"id\""))
                    matched++;
                free(out);
            } else {
                sqlite3_bind_text(plain, 1, match, -1, SQLITE_STATIC);
                sqlite3_bind_int(plain, 2, K);
                while (sqlite3_step(plain) == SQLITE_ROW)
                    (void)sqlite3_column_int64(plain, 0);
                sqlite3_reset(plain);
            }
            double e = ggi_now_ms() - s, ec = cpu_ms() - sc;
            if (i >= WARMUP) {
                if (blended) {
                    lb[i - WARMUP] = e;
                    cb[i - WARMUP] = ec;
                    sum_b += e;
                } else {
                    lp[i - WARMUP] = e;
                    cp[i - WARMUP] = ec;
                    sum_p += e;
                }
            }
        }
        free(match);
    }
    /* Agreement: the weight-0 search against the plain top k, over the first queries. */
    ggi_fts5_config cfg0 = { db, 0.0, 0.0, 42, 0, 0 };
    ggi_fts5 *x0 = NULL;
    int checked = 0, same_top = 0, same_ids = 0, total_ids = 0;
    if (ggi_fts5_open(&cfg0, &x0)) {
        fprintf(stderr, "retrieval: %s\n", gg_error_last());
        return 1;
    }
    for (int i = WARMUP; i < total && checked < 500; i++, checked++) {
        char qj[256], *match = NULL, *out = NULL;
        snprintf(qj, sizeof qj, "{\"text\":\"%s\",\"k\":%d}", q[i], K);
        long long want[K];
        int nw = 0, ok = 1, hit = 0;
        ggi_fts5_match_expr(q[i], &match);
        sqlite3_bind_text(plain, 1, match, -1, SQLITE_STATIC);
        sqlite3_bind_int(plain, 2, K);
        while (sqlite3_step(plain) == SQLITE_ROW && nw < K)
            want[nw++] = sqlite3_column_int64(plain, 0);
        sqlite3_reset(plain);
        free(match);
        if (ggi_fts5_search(x0, qj, &out)) {
            fprintf(stderr, "retrieval: search: %s\n", gg_error_last());
            return 1;
        }
        cJSON *r = cJSON_Parse(out);
        const cJSON *arr = cJSON_GetObjectItem(r, "results");
        ok = cJSON_GetArraySize(arr) == nw;
        for (int j = 0; j < nw; j++) {
            long long got = atoll(cJSON_GetStringValue(
                                      cJSON_GetObjectItem(cJSON_GetArrayItem(arr, j), "id"))
                                      ?: "0");
            ok = ok && got == want[j];
            for (int m = 0; m < nw; m++)
                hit += atoll(cJSON_GetStringValue(cJSON_GetObjectItem(
                                 cJSON_GetArrayItem(arr, m), "id"))
                                 ?: "0") == want[j];
        }
        same_top += ok;
        same_ids += hit;
        total_ids += nw;
        cJSON_Delete(r);
        free(out);
    }
    ggi_fts5_close(&x0);

    qsort(lb, (size_t)queries, sizeof *lb, cmp_double);
    qsort(lp, (size_t)queries, sizeof *lp, cmp_double);
    qsort(cb, (size_t)queries, sizeof *cb, cmp_double);
    qsort(cp, (size_t)queries, sizeof *cp, cmp_double);
    double qps_b = queries / (sum_b / 1000.0), qps_p = queries / (sum_p / 1000.0);
    double p99 = pct(lb, queries, 0.99), ratio = qps_b / qps_p;
    double load[3] = { 0, 0, 0 };
    getloadavg(load, 3);
    printf("settings: k=%d, candidate pool max(%dk, %d) <= %d from a screen %dx the pool, "
           "usefulness "
           "weight %.2f, exploration %.2f, a fifth of the chunks with learned counts\n",
           K, GGI_FTS5_POOL_PER_K, GGI_FTS5_POOL_MIN, GGI_FTS5_POOL_MAX,
           GGI_FTS5_SCREEN_PER_POOL, cfg.weight, cfg.exploration);
    printf("SQLite %s, both connections: %s\n", sqlite3_libversion(), GGI_FTS5_PRAGMAS);
    char model[128] = "unknown CPU";
    FILE *ci = fopen("/proc/cpuinfo", "r");
    char line[256];
    while (ci && fgets(line, sizeof line, ci))
        if (strncmp(line, "model name", 10) == 0 && strchr(line, ':')) {
            snprintf(model, sizeof model, "%s", strchr(line, ':') + 2);
            model[strcspn(model, "\n")] = '\0';
            break;
        }
    if (ci)
        fclose(ci);
    printf("machine: %s, %ld CPUs online, load average %.2f %.2f %.2f at the end (shared "
           "machines make wall-clock p99 noisy)\n",
           model, sysconf(_SC_NPROCESSORS_ONLN), load[0], load[1], load[2]);
    printf("indexed %ld chunks (%ld documents) in %.1f s: %.0f chunks/s\n", added, docs,
           index_ms / 1000.0, added / (index_ms / 1000.0));
    printf("%d queries of 3 words (ranks %d-%d of %d), k=%d, %ld with results\n", queries,
           QUERY_RANK_LO, QUERY_RANK_HI, VOCAB, K, matched);
    printf("blended (bm25 + usefulness, JSON in/out): p50 %.3f ms  p99 %.3f ms  %.0f q/s\n",
           pct(lb, queries, 0.5), p99, qps_b);
    printf("plain FTS5 bm25() query:                   p50 %.3f ms  p99 %.3f ms  %.0f q/s\n",
           pct(lp, queries, 0.5), pct(lp, queries, 0.99), qps_p);
    printf("thread CPU time (less noisy on a shared machine): blended p50 %.3f ms p99 %.3f ms;"
           " plain p50 %.3f ms p99 %.3f ms\n",
           pct(cb, queries, 0.5), pct(cb, queries, 0.99), pct(cp, queries, 0.5),
           pct(cp, queries, 0.99));
    printf("weight-0 search vs plain bm25() top %d over %d queries: identical lists %.1f%%, "
           "ids found %.1f%%\n",
           K, checked, checked ? 100.0 * same_top / checked : 0.0,
           total_ids ? 100.0 * same_ids / total_ids : 0.0);
    printf("target p99 <= 2 ms: %s (%.3f ms)\n", p99 <= 2.0 ? "met" : "NOT met", p99);
    printf("target >= 70%% of the plain rate: %s (%.0f%%)\n", ratio >= 0.7 ? "met" : "NOT met",
           ratio * 100);
    sqlite3_finalize(plain);
    sqlite3_close(h2);
    ggi_fts5_close(&x);
    free(q);
    free(lb);
    free(lp);
    free(cb);
    free(cp);
    return p99 <= 2.0 && ratio >= 0.7 ? 0 : 3;
}
