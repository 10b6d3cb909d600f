/*
 * diff_parse.c - reads a generator's answer: the diff or {"files": ...} in it (fenced or
 * not, with prose around it) and the diff's file sections and hunks (diff_parse.h). Models
 * get counts wrong, drop the space of empty context lines and leave prose after a diff, so
 * a hunk's body is read by its lines, with the header's counts only deciding where an
 * ambiguous tail ends.
 */
#include <stdlib.h>
#include <string.h>

#include "diff_parse.h"
#include "patch.h"

/* A line of the text: [p, p + len), without its newline. */
typedef struct line {
    const char *p;
    size_t len;
} line;

static int starts(const line *l, const char *prefix)
{
    size_t n = strlen(prefix);
    return l->len >= n && memcmp(l->p, prefix, n) == 0;
}

static int split_lines(const char *text, size_t len, line **out, size_t *out_n)
{
    size_t n = 0, cap = 0;
    line *ls = NULL;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            line *g = realloc(ls, nc * sizeof *g);
            if (!g) {
                free(ls);
                return GG_ENOMEM;
            }
            ls = g;
            cap = nc;
        }
        ls[n].p = p;
        ls[n].len = (size_t)(e - p);
        n++;
        p = nl ? nl + 1 : end;
    }
    *out = ls;
    *out_n = n;
    return 0;
}

/* ---- paths in headers ---- */

/* Undoes git's C-style quoting of a path ("a/x\ty" with \t, \", \\, \NNN octal). Returns
 * a malloc'd string (NULL on a malformed quote or ENOMEM); *used gets the bytes consumed. */
static char *unquote(const char *p, size_t len, size_t *used)
{
    char *o = malloc(len + 1);
    if (!o)
        return NULL;
    size_t k = 0, i = 1;
    while (i < len && p[i] != '"') {
        char c = p[i++];
        if (c == '\\') {
            if (i >= len)
                break;
            c = p[i++];
            switch (c) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'a': c = '\a'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'v': c = '\v'; break;
            case '0': case '1': case '2': case '3': {
                unsigned v = (unsigned)(c - '0');
                for (int d = 0; d < 2 && i < len && p[i] >= '0' && p[i] <= '7'; d++)
                    v = v * 8 + (unsigned)(p[i++] - '0');
                c = (char)v;
                break;
            }
            default: break; /* \" \\ and anything else: the character itself */
            }
        }
        o[k++] = c;
    }
    if (i >= len) { /* no closing quote */
        free(o);
        return NULL;
    }
    o[k] = '\0';
    if (used)
        *used = i + 1;
    return o;
}

/* The path of a "--- X" / "+++ X" line's rest: unquoted, cut at a tab (diff -u puts a
 * timestamp there), trailing blanks dropped. "/dev/null" gives *is_null. NULL on ENOMEM or
 * a malformed quote (then *bad is set). */
static char *header_path(const char *p, size_t len, int *is_null, int *bad)
{
    *is_null = 0;
    *bad = 0;
    if (len && p[0] == '"') {
        char *s = unquote(p, len, NULL);
        if (!s)
            *bad = 1;
        return s;
    }
    const char *tab = memchr(p, '\t', len);
    if (tab)
        len = (size_t)(tab - p);
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\r'))
        len--;
    if (len == 9 && memcmp(p, "/dev/null", 9) == 0) {
        *is_null = 1;
        return NULL;
    }
    return ggi_strndup(p, len);
}

/* Takes "a/X b/Y" of a diff --git line apart when both names are the same (the only case
 * that can be split without the --- and +++ lines), or when quoted. 0 when it cannot. */
static int git_line_paths(const char *p, size_t len, char **a, char **b)
{
    *a = *b = NULL;
    if (len && p[0] == '"') {
        size_t used = 0;
        *a = unquote(p, len, &used);
        if (!*a || used >= len || p[used] != ' ')
            goto fail;
        p += used + 1;
        len -= used + 1;
        *b = len && p[0] == '"' ? unquote(p, len, NULL) : ggi_strndup(p, len);
        if (!*b)
            goto fail;
        return 1;
    }
    if (len < 5 || (len - 1) % 2 != 0)
        return 0;
    size_t half = (len - 1) / 2;
    if (p[half] != ' ' || memcmp(p, "a/", 2) != 0 || memcmp(p + half + 1, "b/", 2) != 0 ||
        memcmp(p + 2, p + half + 3, half - 2) != 0)
        return 0;
    *a = ggi_strndup(p, half);
    *b = ggi_strndup(p + half + 1, half);
    if (!*a || !*b)
        goto fail;
    return 1;
fail:
    free(*a);
    free(*b);
    *a = *b = NULL;
    return 0;
}

static int strip_prefix(char **s, const char *prefix)
{
    if (!*s)
        return 1;
    size_t n = strlen(prefix);
    if (strncmp(*s, prefix, n) != 0)
        return 0;
    memmove(*s, *s + n, strlen(*s + n) + 1);
    return 1;
}

/* ---- sections and hunks ---- */

static ggi_file_patch *new_section(ggi_diff *d)
{
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 8;
        ggi_file_patch *g = realloc(d->files, nc * sizeof *g);
        if (!g)
            return NULL;
        d->files = g;
        d->cap = nc;
    }
    ggi_file_patch *f = &d->files[d->n++];
    memset(f, 0, sizeof *f);
    return f;
}

static ggi_hunk *new_hunk(ggi_file_patch *f)
{
    if (f->n_hunks == f->cap) {
        size_t nc = f->cap ? f->cap * 2 : 4;
        ggi_hunk *g = realloc(f->hunks, nc * sizeof *g);
        if (!g)
            return NULL;
        f->hunks = g;
        f->cap = nc;
    }
    ggi_hunk *h = &f->hunks[f->n_hunks++];
    memset(h, 0, sizeof *h);
    return h;
}

static int hunk_add(ggi_hunk *h, char op, const char *text, size_t len)
{
    if (h->n == h->cap) {
        size_t nc = h->cap ? h->cap * 2 : 16;
        ggi_hunk_line *g = realloc(h->lines, nc * sizeof *g);
        if (!g)
            return GG_ENOMEM;
        h->lines = g;
        h->cap = nc;
    }
    h->lines[h->n++] = (ggi_hunk_line){op, 0, text, len};
    return 0;
}

/* Reads a decimal number at *p (advancing it); -1 when there is none. */
static long read_num(const char **p, const char *end)
{
    long v = 0;
    int any = 0;
    while (*p < end && **p >= '0' && **p <= '9') {
        if (v < 100000000L)
            v = v * 10 + (**p - '0');
        (*p)++;
        any = 1;
    }
    return any ? v : -1;
}

/* Parses "@@ -a[,b] +c[,d] @@" into h; a header without numbers leaves has_pos 0. The
 * counts are returned for deciding where the body ends (-1: unknown). */
static void parse_hunk_header(const line *l, ggi_hunk *h, long *old_n, long *new_n)
{
    const char *p = l->p + 2, *end = l->p + l->len;
    *old_n = *new_n = -1;
    h->old_count = 1;
    while (p < end && *p == ' ')
        p++;
    if (p >= end || *p != '-')
        return;
    p++;
    long a = read_num(&p, end), b = 1;
    if (a < 0)
        return;
    if (p < end && *p == ',') {
        p++;
        b = read_num(&p, end);
        if (b < 0)
            return;
    }
    while (p < end && *p == ' ')
        p++;
    if (p >= end || *p != '+')
        return;
    p++;
    long c = read_num(&p, end), dd = 1;
    if (c < 0)
        return;
    if (p < end && *p == ',') {
        p++;
        dd = read_num(&p, end);
        if (dd < 0)
            return;
    }
    h->has_pos = 1;
    h->old_start = a;
    h->old_count = b;
    *old_n = b;
    *new_n = dd;
}

static int is_section_start(const line *ls, size_t n, size_t i)
{
    if (starts(&ls[i], "diff --git "))
        return 1;
    return starts(&ls[i], "--- ") && i + 1 < n && starts(&ls[i + 1], "+++ ");
}

static int is_body_line(const line *l)
{
    return l->len > 0 && (l->p[0] == ' ' || l->p[0] == '+' || l->p[0] == '-');
}

/* Reads the body of hunk h starting at ls[i]; returns the index after it. */
static size_t parse_body(const line *ls, size_t n, size_t i, ggi_hunk *h, long old_n,
                         long new_n, int *err)
{
    long old_seen = 0, new_seen = 0;
    int known = old_n >= 0 && new_n >= 0;
    while (i < n) {
        const line *l = &ls[i];
        int satisfied = known && old_seen >= old_n && new_seen >= new_n;
        if (l->len && l->p[0] == '\\') { /* "\ No newline at end of file" */
            if (h->n)
                h->lines[h->n - 1].no_eol = 1;
            i++;
            continue;
        }
        if (starts(l, "@@") || starts(l, "diff --git "))
            break;
        /* "--- x" then "+++ y" is the next file's header when a hunk follows it (a removed
         * "-- x" and an added "++ y" otherwise), unless they are exactly what the header's
         * counts still lack. */
        if (i + 2 < n && is_section_start(ls, n, i) && starts(&ls[i + 2], "@@") &&
            !(known && old_n - old_seen == 1 && new_n - new_seen == 1))
            break;
        if (satisfied && is_section_start(ls, n, i))
            break;
        if (l->len == 0) {
            /* A run of empty lines is empty context (models drop the space) only when the
             * body goes on after it and the counts are not yet met. */
            size_t k = i;
            while (k < n && ls[k].len == 0)
                k++;
            if (satisfied || k >= n || !is_body_line(&ls[k]) || starts(&ls[k], "@@") ||
                is_section_start(ls, n, k))
                break;
            for (; i < k; i++) {
                if (hunk_add(h, ' ', ls[i].p, 0)) {
                    *err = GG_ENOMEM;
                    return i;
                }
                old_seen++;
                new_seen++;
            }
            continue;
        }
        if (!is_body_line(l))
            break;
        /* A format-patch signature ("-- " then a version) after a complete hunk. */
        if (satisfied && l->len == 3 && memcmp(l->p, "-- ", 3) == 0 &&
            (i + 1 >= n || !is_body_line(&ls[i + 1])))
            break;
        char op = l->p[0];
        if (hunk_add(h, op, l->p + 1, l->len - 1)) {
            *err = GG_ENOMEM;
            return i;
        }
        if (op != '+')
            old_seen++;
        if (op != '-')
            new_seen++;
        i++;
    }
    return i;
}

static unsigned parse_mode(const line *l, size_t skip)
{
    unsigned v = 0;
    for (size_t i = skip; i < l->len && l->p[i] >= '0' && l->p[i] <= '7'; i++)
        v = v * 8 + (unsigned)(l->p[i] - '0');
    return v;
}

static int set_bad(ggi_file_patch *f, const char *why)
{
    if (!f->bad)
        f->bad = ggi_strdup(why);
    return f->bad ? 0 : GG_ENOMEM;
}

/* Parses the hunks of f from ls[i] on; returns the index after them. */
static size_t parse_hunks(const line *ls, size_t n, size_t i, ggi_file_patch *f, int *err)
{
    while (i < n) {
        if (!starts(&ls[i], "@@")) {
            /* Blank lines between hunks are allowed; anything else ends the section. */
            size_t k = i;
            while (k < n && ls[k].len == 0)
                k++;
            if (k < n && k > i && starts(&ls[k], "@@")) {
                i = k;
                continue;
            }
            break;
        }
        ggi_hunk *h = new_hunk(f);
        if (!h) {
            *err = GG_ENOMEM;
            return i;
        }
        long on, nn;
        parse_hunk_header(&ls[i], h, &on, &nn);
        i = parse_body(ls, n, i + 1, h, on, nn, err);
        if (*err)
            return i;
        if (h->n == 0) { /* an empty hunk changes nothing */
            free(h->lines);
            f->n_hunks--;
        }
    }
    return i;
}

/* The extended header lines after "diff --git" (modes, renames, copies, binary), from ls[i]
 * on; returns the index of the first line that is not one of them (or of the bad one, with
 * *err set). */
static size_t parse_git_headers(const line *ls, size_t n, size_t i, ggi_file_patch *f, int *err)
{
    for (; i < n; i++) {
        const line *l = &ls[i];
        int bad = 0, is_null = 0;
        if (starts(l, "new file mode ")) {
            f->is_new = 1;
            f->new_mode = parse_mode(l, 14);
        } else if (starts(l, "deleted file mode ")) {
            f->is_delete = 1;
            f->old_mode = parse_mode(l, 18);
        } else if (starts(l, "old mode ")) {
            f->old_mode = parse_mode(l, 9);
        } else if (starts(l, "new mode ")) {
            f->new_mode = parse_mode(l, 9);
        } else if (starts(l, "rename from ") || starts(l, "copy from ")) {
            size_t k = starts(l, "rename from ") ? 12 : 10;
            f->is_rename |= k == 12;
            f->is_copy |= k == 10;
            free(f->old_path);
            f->old_path = header_path(l->p + k, l->len - k, &is_null, &bad);
            if (bad || is_null)
                *err = set_bad(f, "a malformed rename or copy header");
        } else if (starts(l, "rename to ") || starts(l, "copy to ")) {
            size_t k = starts(l, "rename to ") ? 10 : 8;
            free(f->new_path);
            f->new_path = header_path(l->p + k, l->len - k, &is_null, &bad);
            if (bad || is_null)
                *err = set_bad(f, "a malformed rename or copy header");
        } else if (starts(l, "similarity index ") || starts(l, "dissimilarity index ") ||
                   starts(l, "index ")) {
            /* nothing to take */
        } else if (starts(l, "GIT binary patch") || starts(l, "Binary files ")) {
            f->binary = 1;
        } else {
            break;
        }
        if (*err)
            break;
    }
    return i;
}

/* The "--- OLD" and "+++ NEW" lines l0 and l1: the file names, with a/ and b/ stripped when
 * the two sides both carry them (or one is /dev/null); /dev/null makes the file new or
 * deleted. A malformed pair marks the section bad. */
static void parse_file_lines(const line *l0, const line *l1, ggi_file_patch *f, int *err)
{
    int on = 0, nn = 0, b1 = 0, b2 = 0;
    char *o = header_path(l0->p + 4, l0->len - 4, &on, &b1);
    char *nw = header_path(l1->p + 4, l1->len - 4, &nn, &b2);
    if (b1 || b2 || (!o && !on) || (!nw && !nn)) {
        free(o);
        free(nw);
        if (!b1 && !b2 && ((!o && !on) || (!nw && !nn)))
            *err = GG_ENOMEM;
        else
            *err = set_bad(f, "a malformed '---' or '+++' line");
        return;
    }
    int strip = (on || strncmp(o, "a/", 2) == 0) && (nn || strncmp(nw, "b/", 2) == 0) &&
                !(on && nn);
    if (strip) {
        strip_prefix(&o, "a/");
        strip_prefix(&nw, "b/");
    } else if (o && nw && strncmp(o, "a/", 2) == 0 && strcmp(o + 2, nw) == 0) {
        strip_prefix(&o, "a/"); /* "--- a/x" with "+++ x" */
    } else if (o && nw && strncmp(nw, "b/", 2) == 0 && strcmp(nw + 2, o) == 0) {
        strip_prefix(&nw, "b/");
    }
    if (!f->is_rename && !f->is_copy) {
        free(f->old_path);
        free(f->new_path);
        f->old_path = o;
        f->new_path = nw;
    } else {
        free(o);
        free(nw);
    }
    if (on)
        f->is_new = 1;
    if (nn)
        f->is_delete = 1;
    if (on && nn)
        *err = set_bad(f, "both sides are /dev/null");
}

/* The section's two names settled: a new file has no old one, a deleted file no new one,
 * otherwise a missing name is the other's. */
static void settle_names(ggi_file_patch *f, int *err)
{
    /* Only rename and copy headers make two names mean two files. */
    f->traditional = !f->is_rename && !f->is_copy;
    if (f->is_new && f->is_delete) {
        *err = set_bad(f, "a section that both creates and deletes its file");
        if (*err)
            return;
    }
    if (f->is_new) {
        free(f->old_path);
        f->old_path = NULL;
    }
    if (f->is_delete) {
        free(f->new_path);
        f->new_path = NULL;
    }
    if (!f->is_new && !f->old_path)
        f->old_path = ggi_strdup(f->new_path);
    if (!f->is_delete && !f->new_path)
        f->new_path = ggi_strdup(f->old_path);
    if ((!f->is_new && !f->old_path) || (!f->is_delete && !f->new_path))
        *err = f->bad ? 0 : set_bad(f, "a section without file names");
}

/* Parses one section starting at ls[i] (a section start); returns the index after it. */
static size_t parse_section(const line *ls, size_t n, size_t i, ggi_diff *d, int *err)
{
    ggi_file_patch *f = new_section(d);
    if (!f) {
        *err = GG_ENOMEM;
        return n;
    }
    char *git_a = NULL, *git_b = NULL;
    int git = 0;
    if (starts(&ls[i], "diff --git ")) {
        git = 1;
        git_line_paths(ls[i].p + 11, ls[i].len - 11, &git_a, &git_b);
        i = parse_git_headers(ls, n, i + 1, f, err);
        if (*err)
            goto out;
    }
    if (i + 1 < n && starts(&ls[i], "--- ") && starts(&ls[i + 1], "+++ ")) {
        parse_file_lines(&ls[i], &ls[i + 1], f, err);
        if (*err)
            goto out;
        i += 2;
    } else if (git) {
        /* A git section without --- and +++ (a mode change, a rename, an empty file): the
         * names come from the rename lines or the diff --git line. */
        if (!f->old_path && git_a && strip_prefix(&git_a, "a/"))
            f->old_path = git_a, git_a = NULL;
        if (!f->new_path && git_b && strip_prefix(&git_b, "b/"))
            f->new_path = git_b, git_b = NULL;
        if (!f->old_path && !f->new_path)
            *err = set_bad(f, "a 'diff --git' line whose file names cannot be read");
        if (*err)
            goto out;
    }
    settle_names(f, err);
    if (*err)
        goto out;
    if (f->binary) { /* skip the binary data up to the next section */
        while (i < n && !is_section_start(ls, n, i))
            i++;
        goto out;
    }
    i = parse_hunks(ls, n, i, f, err);
out:
    free(git_a);
    free(git_b);
    return i;
}

int ggi_diff_parse(const char *text, size_t len, ggi_diff *d)
{
    line *ls = NULL;
    size_t n = 0;
    int err = split_lines(text, len, &ls, &n);
    if (err)
        return err;
    size_t i = 0;
    while (i < n && !err) {
        if (is_section_start(ls, n, i)) {
            i = parse_section(ls, n, i, d, &err);
        } else if (starts(&ls[i], "Binary files ") && ls[i].len > 20 &&
                   memcmp(ls[i].p + ls[i].len - 7, " differ", 7) == 0) {
            /* diff -r's note of a binary change, outside a git section: refused later. */
            ggi_file_patch *f = new_section(d);
            if (!f) {
                err = GG_ENOMEM;
                break;
            }
            f->binary = 1;
            const char *p = ls[i].p + 13, *e = ls[i].p + ls[i].len - 7;
            const char *and = memmem(p, (size_t)(e - p), " and ", 5);
            f->old_path = ggi_strndup(p, and ? (size_t)(and - p) : (size_t)(e - p));
            f->new_path = ggi_strdup(f->old_path);
            if (!f->old_path || !f->new_path)
                err = GG_ENOMEM;
            i++;
        } else if (d->n && starts(&ls[i], "@@") && i + 1 < n && is_body_line(&ls[i + 1]) &&
                   !is_section_start(ls, n, i + 1) && !d->files[d->n - 1].binary) {
            /* Hunks after prose, or in a fence of their own, continue the last file. */
            i = parse_hunks(ls, n, i, &d->files[d->n - 1], &err);
        } else {
            i++;
        }
    }
    free(ls);
    return err;
}

void ggi_diff_free(ggi_diff *d)
{
    for (size_t i = 0; i < d->n; i++) {
        ggi_file_patch *f = &d->files[i];
        for (size_t k = 0; k < f->n_hunks; k++)
            free(f->hunks[k].lines);
        free(f->hunks);
        free(f->old_path);
        free(f->new_path);
        free(f->bad);
    }
    free(d->files);
    memset(d, 0, sizeof *d);
}

/* ---- the answer ---- */

/* Tries the JSON object at text[0, len) (leading blanks skipped): 1 and *out when it is an
 * object holding "files", 0 when it is not; a parse error of something that names "files"
 * is kept in a->json_error. */
static int try_json(const char *text, size_t len, ggi_answer *a, cJSON **out)
{
    while (len && (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r'))
        text++, len--;
    *out = NULL;
    if (!len || *text != '{')
        return 0;
    cJSON *j = NULL;
    if (ggi_json_parse(text, len, &j) != GG_OK) {
        /* Trailing prose after the object: parse just the value. */
        size_t vlen = 0;
        cJSON *t = NULL;
        if (ggi_json_parse_syntax(text, len, &t, &vlen) == GG_OK) {
            cJSON_Delete(t);
            if (ggi_json_parse(text, vlen, &j) != GG_OK)
                j = NULL;
        }
        if (!j) {
            if (!a->json_error && memmem(text, len, "\"files\"", 7))
                a->json_error = ggi_strdup(gg_error_last());
            return 0;
        }
    }
    if (!cJSON_IsObject(j) || !cJSON_GetObjectItemCaseSensitive(j, "files")) {
        cJSON_Delete(j);
        return 0;
    }
    *out = j;
    return 1;
}

/* The indentation (0 to 3 spaces) of a fence line "```..." at p, or -1 when the line is
 * not one. */
static int fence_indent(const char *p, const char *end)
{
    int ind = 0;
    while (ind < 3 && p + ind < end && p[ind] == ' ')
        ind++;
    return end - (p + ind) >= 3 && memcmp(p + ind, "```", 3) == 0 ? ind : -1;
}

/*
 * Reads the fenced blocks of t[0, *len) whose fences are indented as indented says (0: at
 * column 0; 1: by one to three spaces, as inside a markdown list, the block's lines losing
 * that indentation in place). Diffs are appended to a->diff; the first {"files": ...}
 * object of a block without a diff goes to *json. *fences is set when a block was seen.
 */
static int read_fences(ggi_answer *a, char *t, char *end, int indented, cJSON **json,
                       int *fences)
{
    char *p = t;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *next = nl ? nl + 1 : end;
        int ind = fence_indent(p, end);
        if (ind < 0 || (indented ? ind == 0 : ind != 0)) {
            p = next;
            continue;
        }
        *fences = 1;
        char *body = next, *q = next, *body_end = end;
        while (q < end) {
            char *nl2 = memchr(q, '\n', (size_t)(end - q));
            char *next2 = nl2 ? nl2 + 1 : end;
            if (fence_indent(q, end) == ind) {
                body_end = q;
                q = next2;
                break;
            }
            q = next2;
        }
        if (ind > 0) { /* dedent in place; what is left over becomes empty lines */
            char *w = body;
            for (char *r = body; r < body_end;) {
                char *e = memchr(r, '\n', (size_t)(body_end - r));
                char *stop = e ? e + 1 : body_end;
                for (int k = 0; k < ind && r < stop && *r == ' '; k++)
                    r++;
                memmove(w, r, (size_t)(stop - r));
                w += stop - r;
                r = stop;
            }
            memset(w, '\n', (size_t)(body_end - w));
            body_end = w;
        }
        size_t before = a->diff.n;
        int err = ggi_diff_parse(body, (size_t)(body_end - body), &a->diff);
        if (err)
            return err;
        if (a->diff.n == before && !*json)
            try_json(body, (size_t)(body_end - body), a, json);
        p = q;
    }
    return 0;
}

int ggi_answer_read(const char *answer, size_t len, ggi_answer *a)
{
    memset(a, 0, sizeof *a);
    a->text = malloc(len + 1);
    if (!a->text)
        return GG_ENOMEM;
    /* An answer whose every line ends in CRLF went through a CRLF conversion: read it as
     * LF. Otherwise a CR before a newline is content (a diff of a file with CRLF lines). */
    size_t lines = 0, crlf = 0;
    for (const char *p = answer; (p = memchr(p, '\n', len - (size_t)(p - answer))); p++) {
        lines++;
        crlf += p > answer && p[-1] == '\r';
    }
    int strip_cr = lines > 0 && crlf == lines;
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (strip_cr && answer[i] == '\r' && i + 1 < len && answer[i + 1] == '\n')
            continue;
        a->text[k++] = answer[i];
    }
    a->text[k] = '\0';
    const char *t = a->text, *end = a->text + k;
    int err = 0;

    /* Fenced blocks: every one that holds a diff counts; else the first files object.
     * Fences at column 0 first; then indented ones (a block inside a markdown list). */
    cJSON *json = NULL;
    for (int indented = 0; indented < 2; indented++) {
        int fences = 0;
        if ((err = read_fences(a, a->text, a->text + k, indented, &json, &fences))) {
            cJSON_Delete(json);
            return err;
        }
        if (fences && a->diff.n) {
            cJSON_Delete(json);
            a->kind = GGI_PATCH_DIFF;
            return 0;
        }
        if (json) {
            a->json = json;
            a->kind = GGI_PATCH_FILES;
            return 0;
        }
        ggi_diff_free(&a->diff); /* continuation hunks without a file */
    }
    /* No fence held either: the whole text. */
    ggi_diff_free(&a->diff);
    if ((err = ggi_diff_parse(t, k, &a->diff)))
        return err;
    if (a->diff.n) {
        a->kind = GGI_PATCH_DIFF;
        return 0;
    }
    /* A JSON object somewhere in prose: try the first few '{' at a line start or at 0. */
    int tries = 0;
    for (const char *b = t; b && b < end && tries < 16; tries++) {
        if (try_json(b, (size_t)(end - b), a, &json)) {
            a->json = json;
            a->kind = GGI_PATCH_FILES;
            return 0;
        }
        const char *nb = memchr(b + 1, '{', (size_t)(end - b - 1));
        b = nb;
    }
    return 0;
}

void ggi_answer_free(ggi_answer *a)
{
    ggi_diff_free(&a->diff);
    cJSON_Delete(a->json);
    free(a->json_error);
    free(a->text);
    memset(a, 0, sizeof *a);
}
