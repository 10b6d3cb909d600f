/*
 * chunker.c - splits documents into retrieval chunks (chunker.h). Each language has a small
 * scanner that finds its units as line ranges: Python tracks strings, brackets and line
 * continuations to see top-level statements; C matches braces while skipping strings,
 * character literals, comments and preprocessor lines; Markdown skips fenced code when it
 * looks for headings. The ranges between units become chunks too, blank lines are trimmed,
 * and anything over the size cap is cut at line (or, for one huge line, UTF-8) boundaries.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/ggi.h"
#include "chunker.h"

#define DEFAULT_MAX_CHUNK 4000
#define DEFAULT_MAX_CHUNKS 10000
#define TEXT_MIN_CHUNK 200 /* short paragraphs are merged up to about this size */

typedef struct lines {
    const char *t;
    size_t len;
    size_t *start; /* line i is t[start[i], end[i]) without its newline */
    size_t *end;
    int n;
} lines;

typedef struct out {
    ggi_chunk *v;
    size_t n, cap, max_n, max_chunk;
    int rc;
} out;

static int lines_split(const char *t, size_t len, lines *L)
{
    memset(L, 0, sizeof *L);
    L->t = t;
    L->len = len;
    size_t n = 1;
    for (size_t i = 0; i < len; i++)
        if (t[i] == '\n')
            n++;
    if (n > (size_t)1 << 30)
        return ggi_error(GG_ETOOBIG, "document has too many lines");
    L->start = malloc(n * sizeof *L->start);
    L->end = malloc(n * sizeof *L->end);
    if (!L->start || !L->end) {
        free(L->start);
        free(L->end);
        return ggi_error(GG_ENOMEM, "out of memory chunking a document");
    }
    size_t s = 0;
    int k = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || t[i] == '\n') {
            if (i == len && s == len && k > 0)
                break; /* a final newline does not start another line */
            L->start[k] = s;
            L->end[k] = (i > s && t[i - 1] == '\r') ? i - 1 : i;
            k++;
            s = i + 1;
        }
    }
    L->n = k;
    return GG_OK;
}

static void lines_free(lines *L)
{
    free(L->start);
    free(L->end);
}

static int blank(const lines *L, int i)
{
    for (size_t p = L->start[i]; p < L->end[i]; p++)
        if (L->t[p] != ' ' && L->t[p] != '\t' && L->t[p] != '\f' && L->t[p] != '\v')
            return 0;
    return 1;
}

static void push(out *o, size_t off, size_t len, int ls, int le, const char *title)
{
    if (o->rc || !len)
        return;
    if (o->n >= o->max_n) {
        o->rc = ggi_error(GG_ETOOBIG, "document has more than %zu chunks", o->max_n);
        return;
    }
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 16;
        ggi_chunk *v = realloc(o->v, cap * sizeof *v);
        if (!v) {
            o->rc = ggi_error(GG_ENOMEM, "out of memory chunking a document");
            return;
        }
        o->v = v;
        o->cap = cap;
    }
    ggi_chunk *c = &o->v[o->n++];
    c->off = off;
    c->len = len;
    c->line_start = ls;
    c->line_end = le;
    snprintf(c->title, sizeof c->title, "%s", title ? title : "");
}

/* Emits lines [a, b] (0-based, inclusive) trimmed of blank lines, cut to the size cap. */
static void emit(out *o, const lines *L, int a, int b, const char *title)
{
    while (a <= b && blank(L, a))
        a++;
    while (b >= a && blank(L, b))
        b--;
    if (a > b)
        return;
    size_t max = o->max_chunk;
    int s = a;
    while (s <= b && !o->rc) {
        /* Longest run of whole lines from s that fits. */
        int e = s;
        while (e + 1 <= b && L->end[e + 1] - L->start[s] <= max)
            e++;
        if (L->end[e] - L->start[s] <= max) {
            push(o, L->start[s], L->end[e] - L->start[s], s + 1, e + 1, title);
            s = e + 1;
            continue;
        }
        /* Line s alone is too long: cut it into pieces on UTF-8 boundaries. */
        size_t p = L->start[s], end = L->end[s];
        while (p < end && !o->rc) {
            size_t q = end - p > max ? p + max : end;
            while (q > p + 1 && q < end && ((unsigned char)L->t[q] & 0xC0) == 0x80)
                q--;
            push(o, p, q - p, s + 1, s + 1, title);
            p = q;
        }
        s++;
    }
}

/* Copies "prefix name" into title, name being the identifier at t[p...]. */
static void title_ident(char *title, size_t cap, const char *prefix, const char *t, size_t p,
                        size_t end)
{
    size_t q = p;
    while (q < end && q - p < 64 &&
           ((t[q] >= 'a' && t[q] <= 'z') || (t[q] >= 'A' && t[q] <= 'Z') ||
            (t[q] >= '0' && t[q] <= '9') || t[q] == '_' || (unsigned char)t[q] >= 0x80))
        q++;
    snprintf(title, cap, "%s%s%.*s", prefix, *prefix ? " " : "", (int)(q - p), t + p);
}

/* ---- Python ---- */

enum pykind { PY_NONE, PY_OTHER, PY_DEF, PY_DECO };

static int starts_word(const char *t, size_t p, size_t end, const char *w)
{
    size_t n = strlen(w);
    return end - p > n && memcmp(t + p, w, n) == 0 && (t[p + n] == ' ' || t[p + n] == '\t');
}

static void chunk_python(out *o, const lines *L)
{
    const char *t = L->t;
    char quote = 0;   /* in a triple-quoted string: its quote character */
    int depth = 0;    /* open brackets */
    int cont = 0;     /* the previous line ended with a backslash */
    enum pykind *kind = calloc((size_t)L->n, sizeof *kind);
    unsigned char *comment0 = calloc((size_t)L->n, 1);
    char (*titles)[GGI_CHUNK_TITLE_MAX] = NULL;
    if (!kind || !comment0) {
        o->rc = ggi_error(GG_ENOMEM, "out of memory chunking a document");
        goto done;
    }
    for (int i = 0; i < L->n; i++) {
        size_t p = L->start[i], end = L->end[i];
        int top = !quote && depth == 0 && !cont;
        cont = 0;
        if (top && !blank(L, i) && t[p] != ' ' && t[p] != '\t') {
            if (t[p] == '#')
                comment0[i] = 1;
            else if (t[p] == '@')
                kind[i] = PY_DECO;
            else if (starts_word(t, p, end, "def") || starts_word(t, p, end, "class") ||
                     starts_word(t, p, end, "async"))
                kind[i] = PY_DEF;
            else
                kind[i] = PY_OTHER;
        }
        while (p < end) {
            char c = t[p];
            if (quote) {
                if (c == '\\') {
                    p += 2;
                } else if (c == quote && end - p >= 3 && t[p + 1] == quote && t[p + 2] == quote) {
                    quote = 0;
                    p += 3;
                } else {
                    p++;
                }
                continue;
            }
            if (c == '#')
                break;
            if (c == '"' || c == '\'') {
                if (end - p >= 3 && t[p + 1] == c && t[p + 2] == c) {
                    quote = c;
                    p += 3;
                    continue;
                }
                p++;
                while (p < end && t[p] != c)
                    p += t[p] == '\\' ? 2 : 1;
                p++;
                continue;
            }
            if (c == '(' || c == '[' || c == '{')
                depth++;
            else if ((c == ')' || c == ']' || c == '}') && depth > 0)
                depth--;
            else if (c == '\\' && p + 1 == end)
                cont = 1;
            p++;
        }
    }
    /* Segments: each unit (decorators + def/class) starts one, a run of other statements
     * another; each start takes the comment lines just above it. */
    int *seg = malloc(((size_t)L->n + 1) * sizeof *seg);
    titles = calloc((size_t)L->n + 1, sizeof *titles);
    if (!seg || !titles) {
        free(seg);
        o->rc = ggi_error(GG_ENOMEM, "out of memory chunking a document");
        goto done;
    }
    int nseg = 0;
    enum pykind prev = PY_NONE;
    for (int i = 0; i < L->n; i++) {
        enum pykind k = kind[i];
        if (k == PY_NONE)
            continue;
        int starts = (k == PY_DECO || k == PY_DEF) ? prev != PY_DECO
                                                   : (prev != PY_OTHER);
        if (starts) {
            int s = i;
            while (s > 0 && comment0[s - 1])
                s--;
            if (nseg > 0 && s <= seg[nseg - 1])
                s = i;
            seg[nseg] = s;
            titles[nseg][0] = '\0';
            nseg++;
        }
        if (k == PY_DEF && !titles[nseg - 1][0]) {
            size_t p = L->start[i], end = L->end[i];
            const char *what = "def";
            if (starts_word(t, p, end, "async")) {
                p += 5;
                while (p < end && (t[p] == ' ' || t[p] == '\t'))
                    p++;
            }
            if (starts_word(t, p, end, "class"))
                what = "class";
            p += strlen(what);
            while (p < end && (t[p] == ' ' || t[p] == '\t'))
                p++;
            title_ident(titles[nseg - 1], GGI_CHUNK_TITLE_MAX, what, t, p, end);
        }
        prev = k;
    }
    if (nseg == 0 || seg[0] > 0)
        emit(o, L, 0, nseg ? seg[0] - 1 : L->n - 1, "");
    for (int s = 0; s < nseg; s++)
        emit(o, L, seg[s], s + 1 < nseg ? seg[s + 1] - 1 : L->n - 1, titles[s]);
    free(seg);
done:
    free(titles);
    free(kind);
    free(comment0);
}

/* ---- C ---- */

typedef struct range {
    size_t from, to; /* bytes [from, to) */
    char title[GGI_CHUNK_TITLE_MAX];
} range;

static int line_of(const lines *L, size_t off)
{
    int lo = 0, hi = L->n - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (L->start[mid] <= off)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

/* Skips what holds no braces that count, starting at t[i]: a preprocessor line (with its
 * backslash continuations; only at a line's start), a comment, a string or character
 * literal. Returns the offset after it, or i when t[i] starts none of them. *quote is set to
 * the quote character when a literal was skipped. */
static size_t skip_c_trivia(const char *t, size_t len, size_t i, int line_start, char *quote)
{
    char c = t[i];
    *quote = 0;
    if (line_start && c == '#') {
        while (i < len && t[i] != '\n') {
            if (t[i] == '\\' && i + 1 < len && t[i + 1] == '\n')
                i++;
            else if (t[i] == '\\' && i + 2 < len && t[i + 1] == '\r' && t[i + 2] == '\n')
                i += 2;
            i++;
        }
        return i;
    }
    if (c == '/' && i + 1 < len && t[i + 1] == '/') {
        while (i < len && t[i] != '\n')
            i++;
        return i;
    }
    if (c == '/' && i + 1 < len && t[i + 1] == '*') {
        i += 2;
        while (i + 1 < len && !(t[i] == '*' && t[i + 1] == '/'))
            i++;
        return i + 2 < len ? i + 2 : len;
    }
    if (c == '"' || c == '\'') {
        i++;
        while (i < len && t[i] != c && t[i] != '\n')
            i += (t[i] == '\\' && i + 1 < len) ? 2 : 1;
        if (i < len && t[i] == c)
            i++;
        *quote = c;
        return i;
    }
    return i;
}

/* The functions found so far, as byte ranges titled with their names. */
typedef struct fn_list {
    range *v;
    size_t n, cap;
} fn_list;

/* Adds the function whose text is t[from, to); its name is the identifier before the
 * parenthesis at paren ((size_t)-1: none, untitled). */
static int add_c_function(out *o, fn_list *fl, const char *t, size_t from, size_t paren,
                          size_t to)
{
    if (fl->n == fl->cap) {
        size_t cap = fl->cap ? fl->cap * 2 : 16;
        range *v = realloc(fl->v, cap * sizeof *v);
        if (!v)
            return o->rc = ggi_error(GG_ENOMEM, "out of memory chunking a document");
        fl->v = v;
        fl->cap = cap;
    }
    range *r = &fl->v[fl->n++];
    r->from = from;
    r->to = to;
    r->title[0] = '\0';
    if (paren != (size_t)-1) {
        size_t q = paren;
        while (q > from && (t[q - 1] == ' ' || t[q - 1] == '\t'))
            q--;
        size_t s = q;
        while (s > from && ((t[s - 1] >= 'a' && t[s - 1] <= 'z') ||
                            (t[s - 1] >= 'A' && t[s - 1] <= 'Z') ||
                            (t[s - 1] >= '0' && t[s - 1] <= '9') || t[s - 1] == '_'))
            s--;
        if (s < q)
            title_ident(r->title, sizeof r->title, "", t, s, q);
    }
    return GG_OK;
}

/* Finds the function definitions: a brace at depth 0 right after a ')' opens one, from the
 * end of the declaration before it to its matching brace. */
static void find_c_functions(out *o, const lines *L, fn_list *fl)
{
    const char *t = L->t;
    size_t len = L->len;
    int depth = 0, in_fn = 0, line_start = 1;
    size_t decl = 0, paren = (size_t)-1, fn_from = 0, fn_paren = (size_t)-1;
    char last = 0; /* last code character at depth 0 */
    size_t i = 0;
    while (i < len && !o->rc) {
        char c = t[i], quote;
        if (c == '\n' || c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
            line_start = line_start || c == '\n';
            i++;
            continue;
        }
        size_t after = skip_c_trivia(t, len, i, line_start, &quote);
        if (after != i) {
            if (line_start && c == '#' && depth == 0) {
                decl = after;
                paren = (size_t)-1;
            }
            if (quote && depth == 0)
                last = quote;
            line_start = c == '#' && line_start;
            i = after;
            continue;
        }
        line_start = 0;
        if (depth == 0) {
            if (c == '(' && paren == (size_t)-1)
                paren = i;
            if (c == ';') {
                decl = i + 1;
                paren = (size_t)-1;
            } else if (c == '{') {
                if (last == ')') {
                    in_fn = 1;
                    fn_from = decl;
                    fn_paren = paren;
                }
                depth++;
            } else if (c == '}') {
                decl = i + 1; /* a stray brace */
            }
            last = c;
        } else if (c == '{') {
            depth++;
        } else if (c == '}' && --depth == 0) {
            last = '}';
            if (in_fn) {
                if (add_c_function(o, fl, t, fn_from, fn_paren, i + 1))
                    break;
                in_fn = 0;
                decl = i + 1;
                paren = (size_t)-1;
            }
        }
        i++;
    }
}

static void chunk_c(out *o, const lines *L)
{
    const char *t = L->t;
    fn_list fl = {NULL, 0, 0};
    find_c_functions(o, L, &fl);
    /* Functions as line ranges; the lines between them as chunks of their own. */
    int next = 0; /* first line not yet emitted */
    for (size_t k = 0; k < fl.n && !o->rc; k++) {
        size_t from = fl.v[k].from;
        while (from < fl.v[k].to && (t[from] == ' ' || t[from] == '\t' || t[from] == '\n' ||
                                     t[from] == '\r'))
            from++;
        int a = line_of(L, from), b = line_of(L, fl.v[k].to - 1);
        if (a < next)
            a = next;
        if (next <= a - 1)
            emit(o, L, next, a - 1, "");
        emit(o, L, a, b, fl.v[k].title);
        next = b + 1;
    }
    if (next < L->n)
        emit(o, L, next, L->n - 1, "");
    free(fl.v);
}

/* ---- Markdown and text ---- */

static int t_is_space(char c)
{
    return c == ' ' || c == '\t';
}

static int fence_line(const lines *L, int i)
{
    size_t p = L->start[i], end = L->end[i];
    for (int k = 0; k < 3 && p < end && t_is_space(L->t[p]); k++)
        p++;
    return end - p >= 3 && ((memcmp(L->t + p, "```", 3) == 0) || memcmp(L->t + p, "~~~", 3) == 0);
}

static void chunk_markdown(out *o, const lines *L)
{
    int in_fence = 0, from = 0;
    char title[GGI_CHUNK_TITLE_MAX] = "";
    for (int i = 0; i < L->n && !o->rc; i++) {
        if (fence_line(L, i)) {
            in_fence = !in_fence;
            continue;
        }
        if (in_fence)
            continue;
        size_t p = L->start[i], end = L->end[i];
        size_t h = 0;
        while (p + h < end && L->t[p + h] == '#')
            h++;
        if (h >= 1 && h <= 6 && (p + h == end || L->t[p + h] == ' ' || L->t[p + h] == '\t')) {
            if (i > from)
                emit(o, L, from, i - 1, title);
            from = i;
            size_t len = end - p;
            if (len > GGI_CHUNK_TITLE_MAX - 1)
                len = GGI_CHUNK_TITLE_MAX - 1;
            while (len && ((unsigned char)L->t[p + len] & 0xC0) == 0x80 && p + len < end)
                len--;
            snprintf(title, sizeof title, "%.*s", (int)len, L->t + p);
        }
    }
    if (from < L->n)
        emit(o, L, from, L->n - 1, title);
}

static void chunk_paragraphs(out *o, const lines *L)
{
    int i = 0;
    while (i < L->n && !o->rc) {
        while (i < L->n && blank(L, i))
            i++;
        if (i >= L->n)
            break;
        int a = i, b = i;
        /* One paragraph, then more while the chunk is short. */
        for (;;) {
            while (b + 1 < L->n && !blank(L, b + 1))
                b++;
            size_t size = L->end[b] - L->start[a];
            int nb = b + 1;
            while (nb < L->n && blank(L, nb))
                nb++;
            if (size >= TEXT_MIN_CHUNK || nb >= L->n)
                break;
            int ne = nb;
            while (ne + 1 < L->n && !blank(L, ne + 1))
                ne++;
            if (L->end[ne] - L->start[a] > o->max_chunk)
                break;
            b = nb;
        }
        emit(o, L, a, b, "");
        i = b + 1;
    }
}

const char *ggi_chunk_language_of(const char *path)
{
    const char *base = path ? strrchr(path, '/') : NULL;
    base = base ? base + 1 : path ? path : "";
    const char *dot = strrchr(base, '.');
    if (!dot)
        return "text";
    dot++;
    if (strcasecmp(dot, "py") == 0 || strcasecmp(dot, "pyi") == 0)
        return "python";
    if (strcasecmp(dot, "c") == 0 || strcasecmp(dot, "h") == 0)
        return "c";
    if (strcasecmp(dot, "md") == 0 || strcasecmp(dot, "markdown") == 0)
        return "markdown";
    return "text";
}

int ggi_chunk_text(const char *text, size_t len, const char *language, size_t max_chunk,
                   size_t max_chunks, ggi_chunk **out_v, size_t *n_out)
{
    *out_v = NULL;
    *n_out = 0;
    if (!text)
        return ggi_error(GG_EINVAL, "chunking: text is NULL");
    out o = { NULL, 0, 0, max_chunks ? max_chunks : DEFAULT_MAX_CHUNKS,
              max_chunk ? max_chunk : DEFAULT_MAX_CHUNK, GG_OK };
    if (len == 0)
        return GG_OK;
    lines L;
    int rc = lines_split(text, len, &L);
    if (rc)
        return rc;
    const char *lang = language ? language : "text";
    if (strcmp(lang, "python") == 0)
        chunk_python(&o, &L);
    else if (strcmp(lang, "c") == 0)
        chunk_c(&o, &L);
    else if (strcmp(lang, "markdown") == 0)
        chunk_markdown(&o, &L);
    else
        chunk_paragraphs(&o, &L);
    lines_free(&L);
    if (o.rc) {
        free(o.v);
        return o.rc;
    }
    *out_v = o.v;
    *n_out = o.n;
    return GG_OK;
}
