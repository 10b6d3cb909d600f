/*
 * fts5_search.c - search and ranking of the "fts5" retriever backend: the match expression
 * of a query, the gg_rank() candidate screen, the blend of relevance with learned
 * usefulness, and the JSON results. Cut here because ranking is the backend's one piece of
 * arithmetic and reads the tables without writing them.
 *
 * Candidates of one query come from one pass over the FTS5 matches with our own auxiliary
 * function gg_rank() (below), which screens rows by BM25 computed as if every chunk had the
 * average length (no per-row length lookup: that lookup is what makes FTS5's own bm25() slow
 * on common words) and reads the length, for the exact bm25() value, only of rows that enter
 * the screen and whose best possible score could still enter the pool. The candidates are
 * the best `pool` rows by exact bm25(). Then:
 *   rel(c)   = -bm25(c) / max over the pool of -bm25          (in (0, 1]; FTS5's bm25 is
 *                                                             negative, lower is better)
 *   g(c)     = (s+1)/(s+f+2)                                 (s, f: weighted successes and
 *                                                             failures over every kind)
 *   use(c)   = mean of Beta(ks + 2 g, kf + 2 (1 - g))          (ks, kf: for the query's kind;
 *              or, in a share `exploration` of queries,        the back-off to g)
 *              a draw from it
 *   score(c) = rel(c) * (2 use(c))^weight
 * With weight 0 the order is the BM25 order of the candidates (docs/retrieval.md).
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "../core/ggi.h"
#include "credit.h"
#include "fts5_internal.h"

/* ---- search scratch (the FTS5 extension interface is declared in sqlite3.h) ---- */

/* Column weights of GGI_FTS5_BM25, in column order (text, title, source, lang). */
static const double col_weight[] = { 1.0, 2.0, 0.5, 0.0 };

/* ---- gg_rank(): the candidate screen ---- */

static int count_cb(const Fts5ExtensionApi *api, Fts5Context *fts, void *user)
{
    (void)api;
    (void)fts;
    (*(sqlite3_int64 *)user)++;
    return SQLITE_OK;
}

/* Per query: FTS5's bm25() IDF of each phrase and the average row length in tokens. */
static int rank_prepare(const Fts5ExtensionApi *api, Fts5Context *fts, rank_pass *p)
{
    sqlite3_int64 rows = 0, tokens = 0;
    int rc = api->xRowCount(fts, &rows);
    if (rc == SQLITE_OK)
        rc = api->xColumnTotalSize(fts, -1, &tokens);
    int n = api->xPhraseCount(fts);
    if (n > MAX_TERMS)
        n = MAX_TERMS; /* the match expression never has more */
    for (int i = 0; i < n && rc == SQLITE_OK; i++) {
        sqlite3_int64 hits = 0;
        rc = api->xQueryPhrase(fts, i, &hits, count_cb);
        double idf = log(((double)rows - (double)hits + 0.5) / ((double)hits + 0.5));
        p->idf[i] = idf > 0 ? idf : 1e-6;
    }
    p->n_phrase = n;
    p->avgdl = rows > 0 && tokens > 0 ? (double)tokens / (double)rows : 1.0;
    p->ready = 1;
    return rc;
}

/* Min-heaps of screened rows, on approx (by_score 0) or on score (1). */
static double key(const screened *e, int by_score)
{
    return by_score ? e->score : e->approx;
}

static void heap_down(screened *h, int n, int i, int by_score)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && key(&h[l], by_score) < key(&h[m], by_score))
            m = l;
        if (r < n && key(&h[r], by_score) < key(&h[m], by_score))
            m = r;
        if (m == i)
            return;
        screened t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void heap_up(screened *h, int i, int by_score)
{
    while (i > 0) {
        int up = (i - 1) / 2;
        if (key(&h[up], by_score) <= key(&h[i], by_score))
            return;
        screened t = h[i];
        h[i] = h[up];
        h[up] = t;
        i = up;
    }
}

/* Adds e to the min-heap h of *n rows (at most cap), replacing its least row when full. */
static void heap_offer(screened *h, int *n, int cap, screened e, int by_score)
{
    if (*n < cap) {
        h[*n] = e;
        heap_up(h, (*n)++, by_score);
    } else if (key(&e, by_score) > key(&h[0], by_score)) {
        h[0] = e;
        heap_down(h, *n, 0, by_score);
    }
}

/*
 * gg_rank(rag_fts, pass): called for every matching row. Scores the row with bm25() (k1 =
 * 1.2, b = 0.75, FTS5's IDF and our column weights) as if it had the average length, which
 * needs no lookup; a row that does not beat the weakest of the screen is dropped. Otherwise
 * its real length is read (one lookup: the costly part of FTS5's bm25()) and its exact score
 * computed, unless the pass keeps a top set (top_cap > 0) and even the row's best possible
 * score (its length no shorter than its last hit in each column allows) cannot enter it.
 * Returns NULL; the pass's heaps are the result.
 */
static void gg_rank(const Fts5ExtensionApi *api, Fts5Context *fts, sqlite3_context *ctx,
                    int n_val, sqlite3_value **val)
{
    rank_pass *p = n_val == 1 ? sqlite3_value_pointer(val[0], "gg_rank_pass") : NULL;
    if (!p || p->failed)
        return;
    int rc = p->ready ? SQLITE_OK : rank_prepare(api, fts, p);
    double freq[MAX_TERMS] = { 0 };
    int n_inst = 0, end[4] = { 0, 0, 0, 0 }; /* per column, past the last hit */
    if (rc == SQLITE_OK)
        rc = api->xInstCount(fts, &n_inst);
    for (int i = 0; i < n_inst && rc == SQLITE_OK; i++) {
        int ph = 0, col = 0, off = 0;
        rc = api->xInst(fts, i, &ph, &col, &off);
        if (rc == SQLITE_OK && ph >= 0 && ph < p->n_phrase && col >= 0 && col < 4) {
            freq[ph] += col_weight[col];
            if (off >= end[col])
                end[col] = off + 1;
        }
    }
    if (rc != SQLITE_OK) {
        p->failed = 1;
        sqlite3_result_error_code(ctx, rc);
        return;
    }
    double approx = 0;
    for (int i = 0; i < p->n_phrase; i++)
        approx += p->idf[i] * ((freq[i] * (BM25_K1 + 1.0)) / (freq[i] + BM25_K1));
    if (p->n == p->cap && approx <= p->heap[0].approx)
        return;
    screened e = { api->xRowid(fts), approx, 0 };
    if (p->top_cap && p->top_n == p->top_cap) {
        int least = end[0] + end[1] + end[2] + end[3];
        double norm = BM25_K1 * (1.0 - BM25_B + BM25_B * (double)least / p->avgdl), bound = 0;
        for (int i = 0; i < p->n_phrase; i++)
            bound += p->idf[i] * ((freq[i] * (BM25_K1 + 1.0)) / (freq[i] + norm));
        if (bound <= p->top[0].score) {
            heap_offer(p->heap, &p->n, p->cap, e, 0);
            return;
        }
    }
    int tokens = 0;
    if ((rc = api->xColumnSize(fts, -1, &tokens)) != SQLITE_OK) {
        p->failed = 1;
        sqlite3_result_error_code(ctx, rc);
        return;
    }
    double norm = BM25_K1 * (1.0 - BM25_B + BM25_B * (double)tokens / p->avgdl);
    for (int i = 0; i < p->n_phrase; i++)
        e.score += p->idf[i] * ((freq[i] * (BM25_K1 + 1.0)) / (freq[i] + norm));
    heap_offer(p->heap, &p->n, p->cap, e, 0);
    if (p->top_cap)
        heap_offer(p->top, &p->top_n, p->top_cap, e, 1);
}

int ggi_fts5_register_rank(sqlite3 *db)
{
    fts5_api *api = NULL;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_pointer(s, 1, (void *)&api, "fts5_api_ptr", NULL);
        sqlite3_step(s);
    }
    sqlite3_finalize(s);
    if (!api || api->iVersion < 2)
        return ggi_error(GG_EUNSUPPORTED, "fts5 retriever: this SQLite lacks FTS5");
    if (api->xCreateFunction(api, "gg_rank", NULL, gg_rank, NULL) != SQLITE_OK)
        return ggi_fts5_fail_db(db, "registering gg_rank()");
    return GG_OK;
}

/* ---- search ---- */

static int is_word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c >= 0x80;
}

int ggi_fts5_stop_word(const char *w, size_t n)
{
    static const char *const words[] = {
        "the", "and", "for", "that", "this", "with", "from", "are", "was", "were", "will",
        "its", "into", "not", "but", "all", "any", "can", "has", "have", "had", "you", "your",
        "our", "their", "they", "them", "than", "then", "there", "these", "those", "which",
        "who", "what", "when", "where", "how", "also", "each", "such", "may", "should", "would",
        "could", "been", "being", "over", "only", "other", "some", "one", "two", "out", "use",
        "used", "using", "via", "per", "given", "returns", "return", "an", "as", "at", "be",
        "by", "if", "in", "is", "it", "of", "on", "or", "so", "to", "we", "do", "no",
    };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strlen(words[i]) == n && memcmp(words[i], w, n) == 0)
            return 1;
    return 0;
}

int ggi_fts5_match_expr(const char *text, char **out)
{
    *out = NULL;
    char terms[MAX_TERMS][65];
    int n = 0;
    const unsigned char *p = (const unsigned char *)text;
    while (*p && n < MAX_TERMS) {
        while (*p && !is_word_byte(*p))
            p++;
        const unsigned char *s = p;
        while (*p && is_word_byte(*p))
            p++;
        size_t len = (size_t)(p - s);
        if (len < 2 || len > 64)
            continue;
        char w[65];
        for (size_t i = 0; i < len; i++)
            w[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] + 32) : (char)s[i];
        w[len] = '\0';
        if (ggi_fts5_stop_word(w, len))
            continue;
        int dup = 0;
        for (int i = 0; i < n && !dup; i++)
            dup = strcmp(terms[i], w) == 0;
        if (!dup)
            memcpy(terms[n++], w, len + 1);
    }
    ggi_buf b = GGI_BUF_INIT;
    int rc = ggi_buf_puts(&b, "");
    for (int i = 0; i < n && !rc; i++)
        rc = ggi_buf_printf(&b, "%s\"%s\"", i ? " OR " : "", terms[i]);
    if (rc) {
        ggi_buf_free(&b);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    *out = ggi_buf_steal(&b);
    return GG_OK;
}

static int cand_cmp(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->rank - y->rank; /* ties keep the BM25 order */
}

static int lang_ok(const char *want, const char *have)
{
    return !want || !have || strcmp(want, have) == 0 || strcmp(have, "text") == 0 ||
           strcmp(have, "markdown") == 0;
}

/* Appends result c (its stored fields) to arr; *used counts text characters. */
static int add_result(conn *co, const cand *c, cJSON *arr, size_t budget, size_t *used,
                      int *added)
{
    *added = 0;
    sqlite3_stmt *s;
    int rc = ggi_fts5_stmt(co, S_CHUNK_GET, &s);
    if (rc)
        return rc;
    sqlite3_bind_int64(s, 1, c->id);
    int r = sqlite3_step(s);
    if (r == SQLITE_DONE) { /* deleted since the ranking query */
        sqlite3_reset(s);
        return GG_OK;
    }
    if (r != SQLITE_ROW) {
        rc = ggi_fts5_fail_db(co->db, "reading a chunk");
        sqlite3_reset(s);
        return rc;
    }
    const char *text = (const char *)sqlite3_column_text(s, 6);
    size_t tl = text ? (size_t)sqlite3_column_bytes(s, 6) : 0;
    if (budget && *used + tl > budget) {
        sqlite3_reset(s);
        return GG_OK;
    }
    cJSON *o = cJSON_CreateObject();
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)c->id);
    int line_start = sqlite3_column_int(s, 1), line_end = sqlite3_column_int(s, 2);
    const char *src = (const char *)sqlite3_column_text(s, 0);
    int bad = !o || !cJSON_AddItemToArray(arr, o);
    if (bad) {
        cJSON_Delete(o);
    } else {
        bad = ggi_json_add_str(o, "id", id) || ggi_json_add_str(o, "text", text ? text : "") ||
              ggi_json_add_num(o, "score", c->score) || ggi_json_add_str(o, "source", src) ||
              ggi_json_add_num(o, "line_start", line_start) ||
              ggi_json_add_num(o, "line_end", line_end) ||
              ggi_json_add_str(o, "title", (const char *)sqlite3_column_text(s, 3)) ||
              ggi_json_add_str(o, "kind", (const char *)sqlite3_column_text(s, 4)) ||
              ggi_json_add_str(o, "hash", (const char *)sqlite3_column_text(s, 5)) ||
              ggi_json_add_num(o, "bm25", c->bm25) ||
              ggi_json_add_num(o, "usefulness", c->use) ||
              ggi_json_add_num(o, "successes", c->s) ||
              ggi_json_add_num(o, "failures", c->f) ||
              ggi_json_add_num(o, "kind_successes", c->ks) ||
              ggi_json_add_num(o, "kind_failures", c->kf);
    }
    sqlite3_reset(s);
    if (bad)
        return ggi_error(GG_ENOMEM, "out of memory");
    *used += tl;
    *added = 1;
    return GG_OK;
}

static int screened_cmp(const void *a, const void *b)
{
    const screened *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id; /* ties: FTS5's order, by rowid */
}

static int grow(screened **v, int *alloc, int want)
{
    if (*alloc >= want)
        return GG_OK;
    screened *h = realloc(*v, (size_t)want * sizeof *h);
    if (!h)
        return ggi_error(GG_ENOMEM, "out of memory");
    *v = h;
    *alloc = want;
    return GG_OK;
}

/*
 * The candidates of a match expression: one gg_rank() pass screens the best SCREEN_PER_POOL *
 * pool rows by average-length BM25 and keeps the best pool of those by exact bm25() (without
 * a language; with one, every screened row is scored, so that the pool can be filled from
 * the rows whose language fits). They become co->cands[0 .. *n), in BM25 order, with their
 * learned counts.
 */
static int candidates(conn *co, const char *match, const char *lang, const char *kind,
                      int kind_counts, int pool, int *n_out)
{
    *n_out = 0;
    rank_pass *p = &co->rp;
    int screen = pool * SCREEN_PER_POOL;
    int rc = grow(&p->heap, &p->heap_alloc, screen);
    if (!rc && !lang)
        rc = grow(&p->top, &p->top_alloc, pool);
    if (!rc && co->cap_cands < pool) {
        cand *c = realloc(co->cands, (size_t)pool * sizeof *c);
        if (!c)
            return ggi_error(GG_ENOMEM, "out of memory");
        co->cands = c;
        co->cap_cands = pool;
    }
    if (rc)
        return rc;
    p->ready = p->failed = 0;
    p->n = p->top_n = 0;
    p->cap = screen;
    p->top_cap = lang ? 0 : pool;
    sqlite3_stmt *s;
    if ((rc = ggi_fts5_stmt(co, S_CANDIDATES, &s)))
        return rc;
    sqlite3_bind_text(s, 1, match, -1, SQLITE_STATIC);
    sqlite3_bind_pointer(s, 2, p, "gg_rank_pass", NULL);
    int r = sqlite3_step(s);
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        rc = ggi_fts5_fail_db(co->db, "searching");
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc)
        return rc;
    screened *best = p->top_cap ? p->top : p->heap;
    int n_best = p->top_cap ? p->top_n : p->n;
    qsort(best, (size_t)n_best, sizeof *best, screened_cmp);
    if ((rc = ggi_fts5_stmt(co, S_CHUNK_META, &s)))
        return rc;
    int n = 0;
    for (int i = 0; i < n_best && n < pool; i++) {
        sqlite3_bind_int64(s, 1, best[i].id);
        r = sqlite3_step(s);
        if (r == SQLITE_ROW && lang_ok(lang, (const char *)sqlite3_column_text(s, 2))) {
            cand *c = &co->cands[n];
            c->id = best[i].id;
            c->bm25 = -best[i].score;
            c->s = sqlite3_column_double(s, 0);
            c->f = sqlite3_column_double(s, 1);
            c->ks = c->kf = 0;
            c->demoted = 0;
            const char *sk = (const char *)sqlite3_column_text(s, 4);
            c->foreign = kind && sqlite3_column_int(s, 3) && (!sk || strcmp(sk, kind) != 0);
            c->rank = n++;
        }
        sqlite3_reset(s);
        if (r != SQLITE_ROW && r != SQLITE_DONE) /* DONE: deleted since the pass */
            return ggi_fts5_fail_db(co->db, "reading a chunk's counts");
    }
    /* The counts for the query's kind, where it has any. */
    if (kind && kind_counts && n > 0) {
        if ((rc = ggi_fts5_stmt(co, S_KIND_META, &s)))
            return rc;
        sqlite3_bind_text(s, 2, kind, -1, SQLITE_STATIC);
        for (int i = 0; i < n; i++) {
            sqlite3_bind_int64(s, 1, co->cands[i].id);
            r = sqlite3_step(s);
            if (r == SQLITE_ROW) {
                co->cands[i].ks = sqlite3_column_double(s, 0);
                co->cands[i].kf = sqlite3_column_double(s, 1);
            }
            sqlite3_reset(s);
            if (r != SQLITE_ROW && r != SQLITE_DONE) {
                sqlite3_clear_bindings(s);
                return ggi_fts5_fail_db(co->db, "reading a chunk's counts for a kind");
            }
        }
        sqlite3_clear_bindings(s);
    }
    *n_out = n;
    return GG_OK;
}

/* The query's fields, checked; q holds the strings. */
typedef struct query {
    cJSON *q;
    const char *text, *lang, *kind_in;
    long long k;
} query;

static int parse_query(const char *query_json, query *qr)
{
    memset(qr, 0, sizeof *qr);
    qr->k = DEFAULT_K;
    size_t qlen = strlen(query_json);
    if (qlen > MAX_QUERY_BYTES)
        return ggi_error(GG_ETOOBIG, "retriever query is %zu bytes, the limit is %u", qlen,
                         MAX_QUERY_BYTES);
    int rc = ggi_json_parse(query_json, qlen, &qr->q);
    if (rc)
        return ggi_error_wrap("retriever query: ");
    cJSON *q = qr->q;
    if (!cJSON_IsObject(q))
        rc = ggi_error(GG_EINVAL, "retriever query must be a JSON object");
    if (!rc)
        rc = ggi_json_string(q, "text", 1, 0, &qr->text);
    if (!rc)
        rc = ggi_json_string(q, "language", 0, 64, &qr->lang);
    if (!rc)
        rc = ggi_json_int(q, "k", 0, 1, MAX_K, &qr->k);
    if (!rc)
        rc = ggi_json_string(q, "kind", 0, GGI_CREDIT_KIND_MAX - 1, &qr->kind_in);
    if (!rc && qr->kind_in && !ggi_credit_kind_ok(qr->kind_in))
        rc = ggi_error(GG_EINVAL, "field 'kind' may hold only letters, digits and _-.:+");
    if (!rc && !cJSON_GetObjectItemCaseSensitive(q, "k"))
        qr->k = DEFAULT_K;
    if (rc) {
        cJSON_Delete(qr->q);
        qr->q = NULL;
        return ggi_error_wrap("retriever query: ");
    }
    return GG_OK;
}

/* Blends relevance and usefulness into each candidate's score, then sorts; in a share of
 * queries the usefulness is a Thompson draw. */
static void score_candidates(ggi_fts5 *x, cand *cs, int n)
{
    double best = 0;
    for (int i = 0; i < n; i++)
        if (-cs[i].bm25 > best)
            best = -cs[i].bm25;
    uint64_t rng = 0;
    int explore = 0;
    if (x->weight > 0 && n > 0) {
        pthread_mutex_lock(&x->mu);
        rng = ggi_rand_next(&x->rng);
        pthread_mutex_unlock(&x->mu);
        explore = x->exploration > 0 && ggi_rand_uniform(&rng) < x->exploration;
    }
    for (int i = 0; i < n; i++) {
        cand *c = &cs[i];
        c->rel = best > 0 ? -c->bm25 / best : 1.0;
        /* Per kind with back-off (docs/retrieval.md): the kind's counts on a prior worth
         * KIND_PRIOR outcomes centred on the chunk's usefulness over every kind. */
        double global = (c->s + 1.0) / (c->s + c->f + 2.0);
        double a = c->ks + KIND_PRIOR * global, b = c->kf + KIND_PRIOR * (1.0 - global);
        c->use = a / (a + b);
        double u = explore ? ggi_rand_beta(&rng, a, b) : c->use;
        /* Usefulness relative to an unproven chunk's (0.5) scales the relevance: evidence
         * can overturn any BM25 lead, and weight 0 is the BM25 order. */
        c->score = c->rel * pow(2.0 * u, x->weight);
    }
    qsort(cs, (size_t)n, sizeof *cs, cand_cmp);
}

/* What led a failed attempt of the task goes last, in its order (retries as experiments),
 * before the rule on solutions below, so that the retry does not start with another kind's
 * solution. */
static int demote_candidates(const cJSON *q, cand *cs, int n)
{
    const cJSON *demote = cJSON_GetObjectItemCaseSensitive(q, "demote");
    int n_demoted = 0;
    for (int i = 0; i < n && cJSON_IsArray(demote); i++) {
        const cJSON *it;
        int seen = 0;
        cJSON_ArrayForEach(it, demote)
        {
            sqlite3_int64 id;
            if (++seen > GGI_CREDIT_MAX_DEMOTE)
                break;
            if (ggi_fts5_parse_id(it, &id) && id == cs[i].id) {
                cs[i].demoted = 1;
                n_demoted++;
                break;
            }
        }
    }
    if (n_demoted == 0 || n_demoted >= n)
        return GG_OK;
    cand *tmp = malloc((size_t)n * sizeof *tmp);
    if (!tmp)
        return ggi_error(GG_ENOMEM, "out of memory");
    int j = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n; i++)
            if (cs[i].demoted == pass)
                tmp[j++] = cs[i];
    memcpy(cs, tmp, (size_t)n * sizeof *tmp);
    free(tmp);
    return GG_OK;
}

/* Solutions of other kinds of task do not swamp the results: at most one, and not first
 * while anything else is there (docs/retrieval.md, "Solutions found again"). The others get
 * a negative score: dropped. */
static void limit_foreign(const ggi_fts5 *x, cand *cs, int n)
{
    int foreign_at = -1;
    for (int i = 0; i < n && x->weight > 0; i++) {
        if (!cs[i].foreign)
            continue;
        if (foreign_at < 0)
            foreign_at = i;
        else
            cs[i].score = -1;
    }
    int next = 1;
    while (foreign_at == 0 && next < n && cs[next].score < 0)
        next++;
    if (foreign_at == 0 && next < n) { /* it goes after the first other result */
        cand t = cs[0];
        memmove(&cs[0], &cs[1], (size_t)next * sizeof *cs);
        cs[next] = t;
    }
}

/* The candidates for match, ranked, the first k of them into arr. */
static int rank_into(ggi_fts5 *x, conn *co, const query *qr, const char *match,
                     const char *kind, cJSON *arr)
{
    long long pool = qr->k * POOL_PER_K;
    pool = pool < POOL_MIN ? POOL_MIN : pool > POOL_MAX ? POOL_MAX : pool;
    int n = 0;
    /* Solutions of other kinds are told apart only when the query's kind is a task's. */
    int rc = candidates(co, match, qr->lang, qr->kind_in || qr->lang ? kind : NULL,
                        x->weight > 0, (int)pool, &n);
    if (rc)
        return rc;
    cand *cs = co->cands;
    score_candidates(x, cs, n);
    if ((rc = demote_candidates(qr->q, cs, n)))
        return rc;
    limit_foreign(x, cs, n);
    size_t used = 0;
    int got = 0;
    for (int i = 0; i < n && got < qr->k && !rc; i++) {
        if (cs[i].score < 0)
            continue;
        int added = 0;
        rc = add_result(co, &cs[i], arr, x->max_chars, &used, &added);
        got += added;
    }
    return rc;
}

int ggi_fts5_search(ggi_fts5 *x, const char *query_json, char **out_json)
{
    *out_json = NULL;
    query qr;
    int rc = parse_query(query_json, &qr);
    if (rc)
        return rc;
    char *match = NULL;
    if ((rc = ggi_fts5_match_expr(qr.text, &match))) {
        cJSON_Delete(qr.q);
        return rc;
    }
    char kind[GGI_CREDIT_KIND_MAX];
    if (qr.kind_in)
        snprintf(kind, sizeof kind, "%s", qr.kind_in);
    else
        ggi_credit_kind(qr.text, qr.lang, kind);
    cJSON *res = cJSON_CreateObject();
    cJSON *arr = res ? cJSON_AddArrayToObject(res, "results") : NULL;
    if (!arr || ggi_json_add_str(res, "kind", kind)) {
        free(match);
        cJSON_Delete(qr.q);
        cJSON_Delete(res);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    conn *co = NULL;
    if (*match) { /* else nothing to look for */
        rc = ggi_fts5_conn_get(x, &co);
        if (!rc)
            rc = rank_into(x, co, &qr, match, kind, arr);
    }
    if (!rc && !(*out_json = ggi_json_print(res)))
        rc = ggi_error(GG_ENOMEM, "out of memory");
    ggi_fts5_conn_put(x, co);
    free(match);
    cJSON_Delete(res);
    cJSON_Delete(qr.q);
    return rc;
}
