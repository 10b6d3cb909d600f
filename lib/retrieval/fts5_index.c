/*
 * fts5_index.c - indexing and chunk storage of the "fts5" retriever backend: adding a
 * document (chunked, deduplicated by content hash, re-indexed incrementally), solutions
 * (kept per kind of task, the oldest going first) and pruning the documents of sources
 * that are gone. Cut here because it owns every write to documents and chunks.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "../core/ggi.h"
#include "chunker.h"
#include "credit.h"
#include "fts5_internal.h"

/* ---- adding documents ---- */

/* A row read into memory before the rows are changed: a document's chunk (its id, its
 * content hash, whether the new text keeps it) or a document to remove (its id). */
typedef struct row_ref {
    sqlite3_int64 id;
    char hash[17];
    int kept;
} row_ref;

/* The rows a statement listed, in an array that grows by doubling from 64. */
typedef struct row_list {
    row_ref *v;
    size_t n, cap;
} row_list;

/* Appends a row (hash NULL: none) to l. */
static int row_list_add(row_list *l, sqlite3_int64 id, const char *hash)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        row_ref *v = realloc(l->v, nc * sizeof *v);
        if (!v)
            return ggi_error(GG_ENOMEM, "out of memory");
        l->v = v;
        l->cap = nc;
    }
    row_ref *r = &l->v[l->n++];
    r->id = id;
    snprintf(r->hash, sizeof r->hash, "%s", hash ? hash : "");
    r->kept = 0;
    return GG_OK;
}

static int step_done(conn *c, sqlite3_stmt *s, const char *what)
{
    int r = sqlite3_step(s);
    sqlite3_reset(s);
    return r == SQLITE_DONE ? GG_OK : ggi_fts5_fail_db(c->db, what);
}

static int add_id(cJSON *ids, sqlite3_int64 id)
{
    char b[24];
    snprintf(b, sizeof b, "%lld", (long long)id);
    cJSON *s = cJSON_CreateString(b);
    if (!s || !cJSON_AddItemToArray(ids, s)) {
        cJSON_Delete(s);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    return GG_OK;
}

/* Inserts the document row; *doc gets its id. */
static int doc_insert(conn *c, const char *key, const char *source, const char *kind,
                      const char *lang, const char *hash, sqlite3_int64 *doc)
{
    sqlite3_stmt *s;
    int rc = ggi_fts5_stmt(c, S_DOC_INSERT, &s);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, source, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, lang, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, hash, -1, SQLITE_STATIC);
    sqlite3_bind_double(s, 6, ggi_wall_s());
    rc = step_done(c, s, "adding a document");
    sqlite3_clear_bindings(s);
    *doc = sqlite3_last_insert_rowid(c->db);
    return rc;
}

static int chunk_insert(conn *c, sqlite3_int64 doc, const char *lang, const char *hash,
                        const ggi_chunk *ch, const char *kind, const char *source,
                        const char *text, sqlite3_int64 *id)
{
    sqlite3_stmt *s;
    int rc = ggi_fts5_stmt(c, S_CHUNK_INSERT, &s);
    if (rc)
        return rc;
    sqlite3_bind_int64(s, 1, doc);
    sqlite3_bind_text(s, 2, lang, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, hash, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 4, ch->line_start);
    sqlite3_bind_int(s, 5, ch->line_end);
    sqlite3_bind_text(s, 6, kind, -1, SQLITE_STATIC);
    sqlite3_bind_double(s, 7, ggi_wall_s());
    sqlite3_bind_text(s, 8, ch->title, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 9, source, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 10, text + ch->off, (int)ch->len, SQLITE_STATIC);
    rc = step_done(c, s, "adding a chunk");
    sqlite3_clear_bindings(s);
    *id = sqlite3_last_insert_rowid(c->db);
    return rc;
}

/* Finds a chunk with this hash anywhere in the corpus; *id 0 when none. */
static int hash_find(conn *c, const char *hash, sqlite3_int64 *id)
{
    sqlite3_stmt *s;
    int rc = ggi_fts5_stmt(c, S_HASH_FIND, &s);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, hash, -1, SQLITE_STATIC);
    int r = sqlite3_step(s);
    *id = r == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return r == SQLITE_ROW || r == SQLITE_DONE ? GG_OK : ggi_fts5_fail_db(c->db, "looking up a hash");
}

typedef struct add_ctx {
    conn *c;
    const char *source, *kind, *lang, *text;
    const char *task_id, *task_kind; /* a solution's task and its kind key, or NULL */
    const ggi_chunk *ch;
    size_t n;
    cJSON *ids;
    int added, unchanged, removed;
} add_ctx;

static void chunk_hash(const add_ctx *a, const ggi_chunk *ch, char out[17])
{
    ggi_hash_hex(a->text + ch->off, ch->len, out);
}

/* Removes a document with its chunks (their learned counts, its solution row). */
static int doc_remove(conn *c, sqlite3_int64 doc, int *chunks)
{
    sqlite3_stmt *s;
    int rc = ggi_fts5_stmt(c, S_DOC_CHUNKS_DELETE, &s);
    if (!rc) {
        sqlite3_bind_int64(s, 1, doc);
        rc = step_done(c, s, "removing a document's chunks");
        if (!rc && chunks)
            *chunks += sqlite3_changes(c->db);
    }
    if (!rc && !(rc = ggi_fts5_stmt(c, S_DOC_DELETE, &s))) {
        sqlite3_bind_int64(s, 1, doc);
        rc = step_done(c, s, "removing a document");
    }
    return rc;
}

/* The solutions that do not fit any more: a kind keeps its newest GGI_FTS5_SOLUTIONS_PER_KIND,
 * the corpus GGI_FTS5_SOLUTIONS_MAX (the oldest go). */
static int solutions_cap(conn *c, const char *kind, int *removed)
{
    sqlite3_stmt *s;
    sqlite3_int64 over[64];
    int n = 0, r, rc = *kind ? ggi_fts5_stmt(c, S_SOL_OVER, &s) : GG_OK; /* kindless: the total only */
    if (rc)
        return rc;
    if (*kind) {
        sqlite3_bind_text(s, 1, kind, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 2, GGI_FTS5_SOLUTIONS_PER_KIND);
    }
    while (*kind && n < 64 && (r = sqlite3_step(s)) == SQLITE_ROW)
        over[n++] = sqlite3_column_int64(s, 0);
    if (*kind) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
    for (int i = 0; i < n && !rc; i++)
        rc = doc_remove(c, over[i], removed);
    for (int guard = 0; !rc && guard < 64; guard++) {
        if ((rc = ggi_fts5_stmt(c, S_SOL_COUNT, &s)))
            break;
        long long count = 0;
        sqlite3_int64 oldest = 0;
        if ((r = sqlite3_step(s)) == SQLITE_ROW) {
            count = sqlite3_column_int64(s, 0);
            oldest = sqlite3_column_int64(s, 1);
        }
        sqlite3_reset(s);
        if (r != SQLITE_ROW)
            rc = ggi_fts5_fail_db(c->db, "counting solutions");
        if (rc || count <= GGI_FTS5_SOLUTIONS_MAX || !oldest)
            break;
        rc = doc_remove(c, oldest, removed);
    }
    return rc;
}

/* A solution: every chunk whose content is new to the corpus is added. */
static int add_solution(add_ctx *a, const char *doc_hash)
{
    char key[64];
    snprintf(key, sizeof key, "solution:%s", doc_hash);
    sqlite3_int64 doc = 0;
    int rc = GG_OK;
    for (size_t i = 0; i < a->n && !rc; i++) {
        char h[17];
        chunk_hash(a, &a->ch[i], h);
        sqlite3_int64 id = 0;
        if ((rc = hash_find(a->c, h, &id)))
            break;
        if (id) {
            a->unchanged++;
            rc = add_id(a->ids, id);
            continue;
        }
        if (!doc) {
            sqlite3_stmt *s;
            if ((rc = ggi_fts5_stmt(a->c, S_DOC_FIND, &s)))
                break;
            sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
            if (sqlite3_step(s) == SQLITE_ROW)
                doc = sqlite3_column_int64(s, 0);
            sqlite3_reset(s);
            if (!doc && (rc = doc_insert(a->c, key, a->source, a->kind, a->lang, doc_hash, &doc)))
                break;
        }
        rc = chunk_insert(a->c, doc, a->lang, h, &a->ch[i], a->kind, a->source, a->text, &id);
        if (!rc) {
            a->added++;
            rc = add_id(a->ids, id);
        }
    }
    if (!rc && doc && a->task_id && a->task_kind[0]) {
        /* It passed its task's tests once: one success for that kind, per chunk. */
        sqlite3_stmt *k;
        if (!(rc = ggi_fts5_stmt(a->c, S_KIND_CREDIT, &k))) {
            sqlite3_stmt *s;
            if (!(rc = ggi_fts5_stmt(a->c, S_DOC_CHUNKS, &s))) {
                sqlite3_bind_int64(s, 1, doc);
                while (!rc && sqlite3_step(s) == SQLITE_ROW) {
                    sqlite3_bind_int64(k, 1, sqlite3_column_int64(s, 0));
                    sqlite3_bind_text(k, 2, a->task_kind, -1, SQLITE_STATIC);
                    sqlite3_bind_double(k, 3, 1.0);
                    sqlite3_bind_double(k, 4, 0.0);
                    rc = step_done(a->c, k, "crediting a solution");
                }
                sqlite3_reset(s);
            }
            sqlite3_clear_bindings(k);
        }
    }
    if (!rc && doc && a->task_id) {
        /* One solution per task (the last one), a few per kind. */
        sqlite3_stmt *s;
        if (!(rc = ggi_fts5_stmt(a->c, S_SOL_INSERT, &s))) {
            sqlite3_bind_int64(s, 1, doc);
            sqlite3_bind_text(s, 2, a->task_id, -1, SQLITE_STATIC);
            sqlite3_bind_text(s, 3, a->task_kind, -1, SQLITE_STATIC);
            sqlite3_bind_double(s, 4, ggi_wall_s());
            rc = step_done(a->c, s, "recording a solution");
            sqlite3_clear_bindings(s);
        }
        if (!rc)
            rc = solutions_cap(a->c, a->task_kind, &a->removed);
    }
    return rc;
}

/* The solution recorded earlier for task_id, when it is not byte-identical (doc_hash) to the
 * one being added, is removed: a task keeps its last passing solution. */
static int solution_replace(add_ctx *a, const char *doc_hash)
{
    sqlite3_stmt *s;
    int rc = ggi_fts5_stmt(a->c, S_SOL_FIND, &s);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, a->task_id, -1, SQLITE_STATIC);
    int r = sqlite3_step(s);
    sqlite3_int64 old = r == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        return ggi_fts5_fail_db(a->c->db, "looking up a task's solution");
    if (!old)
        return GG_OK;
    char key[64];
    snprintf(key, sizeof key, "solution:%s", doc_hash);
    if ((rc = ggi_fts5_stmt(a->c, S_DOC_FIND, &s)))
        return rc;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    sqlite3_int64 same = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return same == old ? GG_OK : doc_remove(a->c, old, &a->removed);
}

/* A document keyed by its source: unchanged chunks stay, new ones are added, stale ones go. */
static int add_document(add_ctx *a, const char *doc_hash)
{
    sqlite3_stmt *s;
    int rc = ggi_fts5_stmt(a->c, S_DOC_FIND, &s);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, a->source, -1, SQLITE_STATIC);
    sqlite3_int64 doc = 0;
    int same = 0;
    if (sqlite3_step(s) == SQLITE_ROW) {
        doc = sqlite3_column_int64(s, 0);
        const char *h = (const char *)sqlite3_column_text(s, 1);
        same = h && strcmp(h, doc_hash) == 0;
    }
    sqlite3_reset(s);
    if (!doc)
        return ggi_error(GG_EINTERNAL, "unreachable");
    row_list old = {NULL, 0, 0};
    if ((rc = ggi_fts5_stmt(a->c, S_DOC_CHUNKS, &s)))
        return rc;
    sqlite3_bind_int64(s, 1, doc);
    int r = SQLITE_DONE;
    while (!rc && (r = sqlite3_step(s)) == SQLITE_ROW)
        rc = row_list_add(&old, sqlite3_column_int64(s, 0),
                          (const char *)sqlite3_column_text(s, 1));
    if (!rc && r != SQLITE_DONE)
        rc = ggi_fts5_fail_db(a->c->db, "reading a document's chunks");
    sqlite3_reset(s);
    if (!rc && same) {
        /* Byte-identical: nothing to do but report the ids. */
        for (size_t i = 0; i < old.n && !rc; i++)
            rc = add_id(a->ids, old.v[i].id);
        a->unchanged = (int)old.n;
        free(old.v);
        return rc;
    }
    for (size_t i = 0; i < a->n && !rc; i++) {
        char h[17];
        chunk_hash(a, &a->ch[i], h);
        size_t j = 0;
        while (j < old.n && (old.v[j].kept || strcmp(old.v[j].hash, h) != 0))
            j++;
        sqlite3_int64 id;
        if (j < old.n) {
            old.v[j].kept = 1;
            id = old.v[j].id;
            a->unchanged++;
            if (!(rc = ggi_fts5_stmt(a->c, S_CHUNK_LINES, &s))) {
                sqlite3_bind_int64(s, 1, id);
                sqlite3_bind_int(s, 2, a->ch[i].line_start);
                sqlite3_bind_int(s, 3, a->ch[i].line_end);
                rc = step_done(a->c, s, "moving a chunk");
            }
        } else {
            rc = chunk_insert(a->c, doc, a->lang, h, &a->ch[i], a->kind, a->source, a->text,
                              &id);
            a->added++;
        }
        if (!rc)
            rc = add_id(a->ids, id);
    }
    for (size_t j = 0; j < old.n && !rc; j++) {
        if (old.v[j].kept)
            continue;
        if (!(rc = ggi_fts5_stmt(a->c, S_CHUNK_DELETE, &s))) {
            sqlite3_bind_int64(s, 1, old.v[j].id);
            rc = step_done(a->c, s, "removing a stale chunk");
            a->removed++;
        }
    }
    if (!rc && !(rc = ggi_fts5_stmt(a->c, S_DOC_UPDATE, &s))) {
        sqlite3_bind_int64(s, 1, doc);
        sqlite3_bind_text(s, 2, doc_hash, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, a->kind, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, a->lang, -1, SQLITE_STATIC);
        sqlite3_bind_double(s, 5, ggi_wall_s());
        rc = step_done(a->c, s, "updating a document");
        sqlite3_clear_bindings(s);
    }
    free(old.v);
    return rc;
}

static int check_label(const char *what, const char *v)
{
    for (const char *p = v; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' ||
              *p == '+' || *p == '.'))
            return ggi_error(GG_EINVAL,
                             "retriever document: field '%s' may hold only a-z, 0-9, _ - + .",
                             what);
    return *v ? GG_OK : ggi_error(GG_EINVAL, "retriever document: field '%s' is empty", what);
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * {"kind": "prune", "source": ROOT, "keep": [SOURCE, ...]}: removes every document (and its
 * chunks, with their learned counts) whose source is ROOT or lies below ROOT/ and is not in
 * keep. Solutions are never touched. ROOT must be an absolute path.
 */
static int prune(ggi_fts5 *x, const cJSON *d, cJSON *res)
{
    const char *root = NULL;
    int rc = ggi_json_string(d, "source", 1, MAX_SOURCE_BYTES, &root);
    if (rc)
        return ggi_error_wrap("retriever prune: ");
    if (root[0] != '/')
        return ggi_error(GG_EINVAL, "retriever prune: 'source' must be an absolute path");
    const cJSON *keep = cJSON_GetObjectItemCaseSensitive(d, "keep");
    if (keep && !cJSON_IsArray(keep))
        return ggi_error(GG_EINVAL, "retriever prune: field 'keep' must be an array");
    int n_keep = keep ? cJSON_GetArraySize(keep) : 0;
    if (n_keep > MAX_KEEP)
        return ggi_error(GG_ETOOBIG, "retriever prune: more than %d sources to keep", MAX_KEEP);
    const char **kept = n_keep ? malloc((size_t)n_keep * sizeof *kept) : NULL;
    if (n_keep && !kept)
        return ggi_error(GG_ENOMEM, "out of memory");
    int n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, keep)
    {
        const char *v = cJSON_GetStringValue(it);
        if (!v) {
            free(kept);
            return ggi_error(GG_EINVAL, "retriever prune: 'keep' must hold strings");
        }
        kept[n++] = v;
    }
    if (n > 1)
        qsort(kept, (size_t)n, sizeof *kept, str_cmp);
    size_t rl = strlen(root);
    while (rl > 1 && root[rl - 1] == '/')
        rl--; /* "/a/b/" is "/a/b" */
    char *lo = malloc(rl + 2), *hi = malloc(rl + 2), *exact = malloc(rl + 1);
    if (!lo || !hi || !exact) {
        free(lo);
        free(hi);
        free(exact);
        free(kept);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    memcpy(exact, root, rl);
    exact[rl] = '\0';
    /* Below "/" is every absolute path: from "/" up to "0", the byte after '/'. */
    snprintf(lo, rl + 2, "%s%s", exact, rl == 1 ? "" : "/");
    snprintf(hi, rl + 2, "%.*s0", (int)(rl == 1 ? 0 : rl), exact);
    long docs = 0, chunks = 0;
    conn *c = NULL;
    row_list gone = {NULL, 0, 0};
    if (!(rc = ggi_fts5_conn_get(x, &c)) && !(rc = ggi_fts5_exec_simple(c, S_BEGIN))) {
        sqlite3_stmt *s;
        if (!(rc = ggi_fts5_stmt(c, S_DOCS_UNDER, &s))) {
            sqlite3_bind_text(s, 1, exact, -1, SQLITE_STATIC);
            sqlite3_bind_text(s, 2, lo, -1, SQLITE_STATIC);
            sqlite3_bind_text(s, 3, hi, -1, SQLITE_STATIC);
            int r = SQLITE_DONE;
            while (!rc && (r = sqlite3_step(s)) == SQLITE_ROW) {
                const char *key = (const char *)sqlite3_column_text(s, 1);
                if (!key || !n || !bsearch(&key, kept, (size_t)n, sizeof *kept, str_cmp))
                    rc = row_list_add(&gone, sqlite3_column_int64(s, 0), NULL);
            }
            if (!rc && r != SQLITE_DONE)
                rc = ggi_fts5_fail_db(c->db, "listing documents");
            sqlite3_reset(s);
            sqlite3_clear_bindings(s);
        }
        for (size_t i = 0; i < gone.n && !rc; i++) {
            if (!(rc = ggi_fts5_stmt(c, S_DOC_CHUNKS_DELETE, &s))) {
                sqlite3_bind_int64(s, 1, gone.v[i].id);
                rc = step_done(c, s, "removing a document's chunks");
                chunks += sqlite3_changes(c->db);
            }
            if (!rc && !(rc = ggi_fts5_stmt(c, S_DOC_DELETE, &s))) {
                sqlite3_bind_int64(s, 1, gone.v[i].id);
                rc = step_done(c, s, "removing a document");
                docs++;
            }
        }
        if (!rc)
            rc = ggi_fts5_exec_simple(c, S_COMMIT);
    }
    ggi_fts5_conn_put(x, c);
    free(gone.v);
    free(lo);
    free(hi);
    free(exact);
    free(kept);
    if (!rc && (!cJSON_AddArrayToObject(res, "ids") || ggi_json_add_num(res, "added", 0) ||
                ggi_json_add_num(res, "unchanged", 0) ||
                ggi_json_add_num(res, "removed", (double)chunks) ||
                ggi_json_add_num(res, "removed_documents", (double)docs)))
        rc = ggi_error(GG_ENOMEM, "out of memory");
    return rc;
}

/* {"kind": "prune", ...}: removes what the request names; the counts into *out_json. */
static int prune_request(ggi_fts5 *x, cJSON *d, char **out_json)
{
    cJSON *res = cJSON_CreateObject();
    int rc = res ? prune(x, d, res) : ggi_error(GG_ENOMEM, "out of memory");
    if (!rc && !(*out_json = ggi_json_print(res)))
        rc = ggi_error(GG_ENOMEM, "out of memory");
    cJSON_Delete(res);
    return rc;
}

/* A solution is retrieved whole when it fits one chunk: that one chunk (none for an empty
 * text). */
static int whole_chunk(const char *text, size_t tlen, ggi_chunk **ch, size_t *n)
{
    if (!tlen)
        return GG_OK;
    if (!(*ch = calloc(1, sizeof **ch)))
        return ggi_error(GG_ENOMEM, "out of memory");
    int lines = 1;
    for (size_t i = 0; i + 1 < tlen; i++)
        lines += text[i] == '\n';
    (*ch)->off = 0;
    (*ch)->len = tlen;
    (*ch)->line_start = 1;
    (*ch)->line_end = lines;
    *n = 1;
    return GG_OK;
}

/* Inside the add's transaction: a solution replaces the task's earlier one; a document's
 * chunks are brought up to date (a new document starts with an empty row, so one path does
 * both). The document's hash covers its language, kind and text. */
static int write_document(add_ctx *a, int solution)
{
    char doc_hash[17];
    ggi_buf hb = GGI_BUF_INIT;
    int rc = ggi_buf_printf(&hb, "%s\n%s\n", a->lang, a->kind) || ggi_buf_puts(&hb, a->text)
                 ? ggi_error(GG_ENOMEM, "out of memory")
                 : GG_OK;
    if (!rc)
        ggi_hash_hex(hb.data, hb.len, doc_hash);
    ggi_buf_free(&hb);
    if (rc)
        return rc;
    if (solution) {
        if (a->task_id)
            rc = solution_replace(a, doc_hash);
        return rc ? rc : add_solution(a, doc_hash);
    }
    sqlite3_stmt *s;
    sqlite3_int64 doc = 0;
    if (!(rc = ggi_fts5_stmt(a->c, S_DOC_FIND, &s))) {
        sqlite3_bind_text(s, 1, a->source, -1, SQLITE_STATIC);
        int r = sqlite3_step(s);
        doc = r == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
        sqlite3_reset(s);
    }
    if (!rc && !doc)
        rc = doc_insert(a->c, a->source, a->source, a->kind, a->lang, "", &doc);
    return rc ? rc : add_document(a, doc_hash);
}

int ggi_fts5_add(ggi_fts5 *x, const char *doc_json, char **out_json)
{
    *out_json = NULL;
    size_t len = strlen(doc_json);
    if (len > MAX_DOC_BYTES * 2)
        return ggi_error(GG_ETOOBIG, "retriever document is %zu bytes, the limit is %u", len,
                         MAX_DOC_BYTES * 2);
    cJSON *d = NULL;
    if (ggi_json_parse(doc_json, len, &d))
        return ggi_error_wrap("retriever document: ");
    const char *source = NULL, *text = NULL, *lang = NULL, *kind = NULL;
    const char *task_id = NULL, *task_kind = NULL;
    int rc = cJSON_IsObject(d) ? GG_OK
                               : ggi_error(GG_EINVAL, "retriever document must be a JSON object");
    const char *op = rc ? NULL : cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "kind"));
    if (op && strcmp(op, "prune") == 0) {
        rc = prune_request(x, d, out_json);
        cJSON_Delete(d);
        return rc;
    }
    if (!rc)
        rc = ggi_json_string(d, "source", 1, MAX_SOURCE_BYTES, &source);
    if (!rc)
        rc = ggi_json_string(d, "text", 1, MAX_DOC_BYTES, &text);
    if (!rc)
        rc = ggi_json_string(d, "language", 0, 32, &lang);
    if (!rc)
        rc = ggi_json_string(d, "kind", 0, 32, &kind);
    if (!rc)
        rc = ggi_json_string(d, "task_id", 0, 1024, &task_id);
    if (!rc)
        rc = ggi_json_string(d, "task_kind", 0, GGI_CREDIT_KIND_MAX - 1, &task_kind);
    if (rc)
        ggi_error_wrap("retriever document: ");
    if (!rc && task_kind && !ggi_credit_kind_ok(task_kind))
        rc = ggi_error(GG_EINVAL, "retriever document: field 'task_kind' may hold only "
                                  "letters, digits and _-.:+");
    if (!rc && task_id && !*task_id)
        task_id = NULL;
    if (!rc && !*source)
        rc = ggi_error(GG_EINVAL, "retriever document: field 'source' is empty");
    if (!lang)
        lang = ggi_chunk_language_of(source);
    if (!kind)
        kind = "document";
    if (!rc)
        rc = check_label("language", lang);
    if (!rc)
        rc = check_label("kind", kind);
    int solution = !rc && strcmp(kind, "solution") == 0;
    size_t tlen = text ? strlen(text) : 0;
    ggi_chunk *ch = NULL;
    size_t n = 0;
    if (!rc)
        rc = solution && tlen <= x->max_chunk
                 ? whole_chunk(text, tlen, &ch, &n)
                 : ggi_chunk_text(text, tlen, lang, x->max_chunk, 0, &ch, &n);
    cJSON *res = rc ? NULL : cJSON_CreateObject();
    cJSON *ids = res ? cJSON_AddArrayToObject(res, "ids") : NULL;
    if (!rc && !ids)
        rc = ggi_error(GG_ENOMEM, "out of memory");
    conn *c = NULL;
    if (!rc && !(rc = ggi_fts5_conn_get(x, &c)) && !(rc = ggi_fts5_exec_simple(c, S_BEGIN))) {
        add_ctx a = { c, source, kind, lang, text, task_id, task_kind ? task_kind : "", ch, n,
                      ids, 0, 0, 0 };
        rc = write_document(&a, solution);
        if (!rc)
            rc = ggi_fts5_exec_simple(c, S_COMMIT);
        if (!rc && (ggi_json_add_num(res, "added", a.added) ||
                    ggi_json_add_num(res, "unchanged", a.unchanged) ||
                    ggi_json_add_num(res, "removed", a.removed)))
            rc = ggi_error(GG_ENOMEM, "out of memory");
    }
    ggi_fts5_conn_put(x, c);
    if (!rc && !(*out_json = ggi_json_print(res)))
        rc = ggi_error(GG_ENOMEM, "out of memory");
    cJSON_Delete(res);
    cJSON_Delete(d);
    free(ch);
    return rc;
}
