/*
 * patch.c - applies a generator's answer to an attempt's copy (ggi_patch_apply, patch.h) in
 * three steps, so that a refused or failing answer writes nothing: every path is checked;
 * every file's new content is computed in memory (an overlay of the files the answer
 * touches); then the overlay is written, each file as a new file renamed over the old one,
 * every directory reached by openat without following symbolic links (safe_path.h). The
 * answer is read by diff_parse.c; the diff of an attempt is patch_diff.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diff_parse.h"
#include "patch.h"
#include "safe_path.h"

/* Line comparisons one answer may spend placing its hunks (a hostile file and hunk could
 * otherwise cost lines x lines). */
#define SEARCH_BUDGET (64L << 20)

/* ---- findings ---- */

typedef struct ctx {
    int dirfd;          /* the copy's root */
    cJSON *findings;
    int status;         /* the first finding's status */
    long budget;
    size_t total;       /* bytes held by the overlay */
} ctx;

/* Adds a finding; the first one becomes the error message. Returns its status. */
static int finding(ctx *c, int status, const char *path, int hunk, const char *fmt, ...)
    GGI_PRINTF(5, 6);
static int finding(ctx *c, int status, const char *path, int hunk, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *f = cJSON_CreateObject();
    if (!f || ggi_json_add_str(f, "severity", "error") || ggi_json_add_str(f, "path", path) ||
        (hunk > 0 && ggi_json_add_num(f, "hunk", hunk)) ||
        ggi_json_add_str(f, "message", msg)) {
        cJSON_Delete(f);
        return GG_ENOMEM;
    }
    cJSON_AddItemToArray(c->findings, f);
    if (!c->status) {
        c->status = status;
        ggi_error(status, "%s", msg);
    }
    return status;
}

/* ---- the overlay of files the answer touches ---- */

typedef struct entry {
    char *path;
    int disk_exists;    /* the file was there before */
    mode_t disk_mode;
    int exists;         /* after the answer */
    char *data;         /* content after the answer (exists) */
    size_t len;
    mode_t mode;
    int touched;
} entry;

typedef struct overlay {
    entry *e;
    size_t n, cap;
} overlay;

static void overlay_free(overlay *o)
{
    for (size_t i = 0; i < o->n; i++) {
        free(o->e[i].path);
        free(o->e[i].data);
    }
    free(o->e);
}

/* Finds path in the overlay, loading it from the copy the first time. NULL after a finding
 * or an error (c->status set, or *err for ENOMEM). */
static entry *get_entry(ctx *c, overlay *o, const char *path, int *err)
{
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->e[i].path, path) == 0)
            return &o->e[i];
    if (o->n >= GGI_PATCH_MAX_FILES) {
        finding(c, GG_ETOOBIG, path, 0, "the answer touches more than %d files",
                GGI_PATCH_MAX_FILES);
        return NULL;
    }
    if (o->n == o->cap) {
        size_t nc = o->cap ? o->cap * 2 : 16;
        entry *g = realloc(o->e, nc * sizeof *g);
        if (!g) {
            *err = GG_ENOMEM;
            return NULL;
        }
        o->e = g;
        o->cap = nc;
    }
    entry e = {0};
    e.path = ggi_strdup(path);
    char *buf = ggi_strdup(path);
    if (!e.path || !buf) {
        free(e.path);
        free(buf);
        *err = GG_ENOMEM;
        return NULL;
    }
    int fds[GGI_SAFE_MAX_DEPTH], nfd = 0;
    const char *last = NULL;
    int w = ggi_safe_walk_parent(c->dirfd, buf, 0, fds, &nfd, &last);
    int parent = nfd ? fds[nfd - 1] : c->dirfd;
    int bad = 0;
    if (w == GGI_WALK_LINK) {
        finding(c, GG_EINVAL, path, 0, "path '%s' goes through a symbolic link", path);
        bad = 1;
    } else if (w == GGI_WALK_NOTDIR) {
        finding(c, GG_EINVAL, path, 0, "path '%s' goes through a file that is not a directory",
                path);
        bad = 1;
    } else if (w == GGI_WALK_ERR) {
        finding(c, GG_EIO, path, 0, "cannot reach '%s': %s", path, strerror(errno));
        bad = 1;
    } else if (w == GGI_WALK_OK) {
        struct stat st;
        if (fstatat(parent, last, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            if (S_ISLNK(st.st_mode)) {
                finding(c, GG_EINVAL, path, 0, "path '%s' is a symbolic link", path);
                bad = 1;
            } else if (S_ISDIR(st.st_mode)) {
                finding(c, GG_EINVAL, path, 0, "path '%s' is a directory", path);
                bad = 1;
            } else if (!S_ISREG(st.st_mode)) {
                finding(c, GG_EINVAL, path, 0, "path '%s' is not a regular file", path);
                bad = 1;
            } else if ((size_t)st.st_size > GGI_PATCH_MAX_FILE_BYTES) {
                finding(c, GG_ETOOBIG, path, 0, "file '%s' is %lld bytes, the limit is %u",
                        path, (long long)st.st_size, GGI_PATCH_MAX_FILE_BYTES);
                bad = 1;
            } else if (c->total + (size_t)st.st_size > GGI_PATCH_MAX_BYTES) {
                finding(c, GG_ETOOBIG, path, 0,
                        "the files the answer touches hold more than %u bytes",
                        GGI_PATCH_MAX_BYTES);
                bad = 1;
            } else {
                int fd = openat(parent, last, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0) {
                    finding(c, GG_EIO, path, 0, "cannot open '%s': %s", path, strerror(errno));
                    bad = 1;
                } else {
                    *err = ggi_safe_read_fd(fd, (size_t)st.st_size, &e.data, &e.len);
                    close(fd);
                    e.disk_exists = e.exists = !*err;
                    e.disk_mode = e.mode = st.st_mode & 0777;
                    c->total += e.len;
                }
            }
        } else if (errno != ENOENT) {
            finding(c, GG_EIO, path, 0, "cannot reach '%s': %s", path, strerror(errno));
            bad = 1;
        }
    }
    ggi_safe_close(fds, nfd);
    free(buf);
    if (bad || *err) {
        free(e.path);
        free(e.data);
        return NULL;
    }
    o->e[o->n] = e;
    return &o->e[o->n++];
}

/* Sets an entry's new content (taking data), counting it against the caps. */
static int set_content(ctx *c, entry *e, char *data, size_t len, mode_t mode)
{
    if (len > GGI_PATCH_MAX_FILE_BYTES) {
        free(data);
        return finding(c, GG_ETOOBIG, e->path, 0,
                       "file '%s' would be %zu bytes, the limit is %u", e->path, len,
                       GGI_PATCH_MAX_FILE_BYTES);
    }
    if (c->total + len > GGI_PATCH_MAX_BYTES) {
        free(data);
        return finding(c, GG_ETOOBIG, e->path, 0,
                       "the files the answer writes hold more than %u bytes",
                       GGI_PATCH_MAX_BYTES);
    }
    c->total += len;
    c->total -= e->data ? e->len : 0;
    free(e->data);
    e->data = data;
    e->len = len;
    e->mode = mode;
    e->exists = 1;
    e->touched = 1;
    return 0;
}

static void set_deleted(entry *e)
{
    free(e->data);
    e->data = NULL;
    e->len = 0;
    e->exists = 0;
    e->touched = 1;
}

/* ---- applying hunks ---- */

typedef struct fline {
    const char *p;
    size_t len;  /* without the newline */
    int nl;      /* ends with a newline */
} fline;

typedef struct oline {
    const char *p;
    size_t len;
    int nl;
    int cr;      /* add "\r" (an added line in a CRLF file) */
} oline;

static int split_file(const char *data, size_t len, fline **out, size_t *n)
{
    size_t cap = 16, k = 0;
    fline *ls = malloc(cap * sizeof *ls);
    if (!ls)
        return GG_ENOMEM;
    const char *p = data, *end = data + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (k == cap) {
            fline *g = realloc(ls, (cap *= 2) * sizeof *g);
            if (!g) {
                free(ls);
                return GG_ENOMEM;
            }
            ls = g;
        }
        ls[k].p = p;
        ls[k].len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        ls[k].nl = nl != NULL;
        k++;
        p = nl ? nl + 1 : end;
    }
    *out = ls;
    *n = k;
    return 0;
}

static size_t rtrim_len(const char *p, size_t len)
{
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t' || p[len - 1] == '\r' ||
                   p[len - 1] == '\v' || p[len - 1] == '\f'))
        len--;
    return len;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Compares a file line with a hunk line: exactly (loose 0), ignoring whitespace at the end
 * (1), or ignoring indentation and the length of runs of whitespace (2: tabs that became
 * spaces); words run together never match words apart. */
static int line_eq(const fline *f, const ggi_hunk_line *h, int loose)
{
    if (!loose)
        return f->len == h->len && memcmp(f->p, h->text, f->len) == 0;
    size_t a = rtrim_len(f->p, f->len), b = rtrim_len(h->text, h->len);
    if (loose == 1)
        return a == b && memcmp(f->p, h->text, a) == 0;
    size_t i = 0, k = 0;
    while (i < a && is_blank(f->p[i]))
        i++;
    while (k < b && is_blank(h->text[k]))
        k++;
    while (i < a && k < b) {
        int wi = is_blank(f->p[i]), wk = is_blank(h->text[k]);
        if (wi != wk)
            return 0;
        if (wi) { /* a run of blanks matches a run of any length, never none */
            while (i < a && is_blank(f->p[i]))
                i++;
            while (k < b && is_blank(h->text[k]))
                k++;
            continue;
        }
        if (f->p[i++] != h->text[k++])
            return 0;
    }
    return i == a && k == b;
}

/* Does the hunk's preimage (pre[0..m)) match the file at line at? */
/* How many of the hunk's preimage lines (pre[0..m)) match the file from line at on (m:
 * the hunk fits there). */
static size_t match_at(ctx *c, const fline *fl, size_t at, const ggi_hunk_line **pre, size_t m,
                       int loose)
{
    for (size_t i = 0; i < m; i++) {
        if (--c->budget < 0)
            return i;
        if (!line_eq(&fl[at + i], pre[i], loose))
            return i;
    }
    return m;
}

static int push_out(oline **o, size_t *n, size_t *cap, oline l)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        oline *g = realloc(*o, nc * sizeof *g);
        if (!g)
            return GG_ENOMEM;
        *o = g;
        *cap = nc;
    }
    (*o)[(*n)++] = l;
    return 0;
}

/* Shows at most 80 bytes of a line in a message. */
static void excerpt(char *dst, size_t size, const char *p, size_t len)
{
    size_t n = len < 80 ? len : 80;
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < size; i++)
        dst[k++] = (unsigned char)p[i] < 0x20 ? '?' : p[i];
    if (n < len && k + 4 < size) {
        memcpy(dst + k, "...", 3);
        k += 3;
    }
    dst[k] = '\0';
}

/* The output lines being built, and the file's lines they come from. */
typedef struct hunk_out {
    oline *ol;
    size_t on, ocap;
} hunk_out;

/* Where the preimage pre[0..m) of a hunk fits in fl[0..n), searching from want outwards,
 * never before floor: exactly, then ignoring whitespace at line ends, then ignoring changes
 * in whitespace. -1 when nowhere; *best and *best_at then say the longest run of its first
 * lines found, and where. */
static long place_hunk(ctx *c, const fline *fl, size_t n, const ggi_hunk_line **pre, size_t m,
                       long want, size_t floor, size_t *best, long *best_at)
{
    long found = -1;
    *best = 0;
    *best_at = -1;
    if (m == 0)
        return want > (long)n ? (long)n : want;
    if (n < m || n - m < floor)
        return -1;
    long hi = (long)(n - m);
    if (want > hi)
        want = hi;
    for (int loose = 0; loose < 3 && found < 0 && c->budget > 0; loose++) {
        for (long d = 0; found < 0 && c->budget > 0; d++) {
            long up = want - d, down = want + d;
            int any = 0;
            long tries[2] = {down <= hi ? down : -1, d > 0 && up >= (long)floor ? up : -1};
            for (int t = 0; t < 2 && found < 0; t++) {
                if (tries[t] < 0)
                    continue;
                any = 1;
                size_t got = match_at(c, fl, (size_t)tries[t], pre, m, loose);
                if (got == m)
                    found = tries[t];
                else if (loose == 2 && got > *best)
                    *best = got, *best_at = tries[t];
            }
            if (!any)
                break;
        }
    }
    return found;
}

/* A hunk that fits nowhere: the finding says where it nearly fits, so the next attempt can
 * correct the hunk. */
static void hunk_unplaced(ctx *c, const char *path, size_t k, const ggi_hunk *h,
                          const fline *fl, const ggi_hunk_line **pre, size_t m, size_t best,
                          long best_at)
{
    char ex[100] = "";
    if (m)
        excerpt(ex, sizeof ex, pre[0]->text, pre[0]->len);
    if (c->budget <= 0) {
        finding(c, GG_EINVAL, path, (int)k + 1,
                "file '%s': hunk %zu could not be placed (the search for its lines was too "
                "long)", path, k + 1);
        return;
    }
    char near[400] = "", want_l[100], have_l[100];
    if (best_at >= 0) {
        const fline *fh = &fl[(size_t)best_at + best];
        excerpt(want_l, sizeof want_l, pre[best]->text, pre[best]->len);
        excerpt(have_l, sizeof have_l, fh->p, fh->len);
        snprintf(near, sizeof near,
                 "; nearest: from line %ld its first %zu line%s match, then it has '%s' where "
                 "the file has '%s'", best_at + 1, best, best == 1 ? "" : "s", want_l, have_l);
    }
    char where[48] = "";
    if (h->has_pos)
        snprintf(where, sizeof where, " (expected at line %ld)", h->old_start);
    finding(c, GG_EINVAL, path, (int)k + 1,
            "file '%s': hunk %zu does not apply: its lines starting with '%s'%s are not in "
            "the file%s", path, k + 1, ex, where, near);
}

/* The file's lines from floor up to found, then the hunk's: context lines keep the file's
 * text, removed ones go, added ones take the file's line ends. */
static int emit_hunk(hunk_out *o, const fline *fl, size_t floor, size_t found,
                     const ggi_hunk *h, int crlf)
{
    int err = 0;
    for (size_t i = floor; i < found && !err; i++)
        err = push_out(&o->ol, &o->on, &o->ocap, (oline){fl[i].p, fl[i].len, fl[i].nl, 0});
    size_t at = found;
    for (size_t i = 0; i < h->n && !err; i++) {
        const ggi_hunk_line *hl = &h->lines[i];
        if (hl->op == ' ') {
            err = push_out(&o->ol, &o->on, &o->ocap,
                           (oline){fl[at].p, fl[at].len, hl->no_eol ? 0 : fl[at].nl, 0});
            at++;
        } else if (hl->op == '-') {
            at++;
        } else {
            int cr = crlf && !(hl->len && hl->text[hl->len - 1] == '\r');
            err = push_out(&o->ol, &o->on, &o->ocap, (oline){hl->text, hl->len, !hl->no_eol, cr});
        }
    }
    return err;
}

/* The output lines as one text, within the file size limit. */
static int join_lines(ctx *c, const char *path, const hunk_out *o, char **out, size_t *out_len)
{
    int err = 0;
    ggi_buf b = GGI_BUF_INIT;
    for (size_t i = 0; i < o->on && !err; i++) {
        if (b.len + o->ol[i].len + 2 > GGI_PATCH_MAX_FILE_BYTES + 2) {
            err = finding(c, GG_ETOOBIG, path, 0, "file '%s' would be over %u bytes", path,
                          GGI_PATCH_MAX_FILE_BYTES);
            break;
        }
        err = ggi_buf_append(&b, o->ol[i].p, o->ol[i].len);
        if (!err && o->ol[i].cr)
            err = ggi_buf_append(&b, "\r", 1);
        if (!err && (o->ol[i].nl || i + 1 < o->on))
            err = ggi_buf_append(&b, "\n", 1);
    }
    if (err) {
        ggi_buf_free(&b);
        return err;
    }
    *out_len = b.len;
    *out = ggi_buf_steal(&b);
    return *out ? 0 : GG_ENOMEM;
}

/*
 * Applies the hunks of f to data[0, len): each placed at its header's line (moved by the
 * offset the previous hunk was found at), then at the nearest line above or below, then
 * again ignoring whitespace at line ends, then ignoring changes in whitespace (git apply
 * --ignore-whitespace), never before the end of the previous hunk. Context lines keep the
 * file's text.
 * *out gets the new content (malloc'd). A hunk that fits nowhere is a finding.
 */
static int apply_hunks(ctx *c, const char *path, const ggi_file_patch *f, const char *data,
                       size_t len, char **out, size_t *out_len)
{
    fline *fl = NULL;
    size_t n = 0;
    int err = split_file(data, len, &fl, &n);
    if (err)
        return err;
    size_t crs = 0;
    for (size_t i = 0; i < n; i++)
        crs += fl[i].len && fl[i].p[fl[i].len - 1] == '\r';
    int crlf = n > 0 && crs * 2 > n;

    hunk_out o = {NULL, 0, 0};
    const ggi_hunk_line **pre = NULL;
    size_t floor = 0;      /* original lines before this are placed */
    long offset = 0;       /* where the last hunk was found relative to its header */
    for (size_t k = 0; k < f->n_hunks && !err; k++) {
        const ggi_hunk *h = &f->hunks[k];
        free(pre);
        pre = malloc((h->n + 1) * sizeof *pre);
        if (!pre) {
            err = GG_ENOMEM;
            break;
        }
        size_t m = 0;
        for (size_t i = 0; i < h->n; i++)
            if (h->lines[i].op != '+')
                pre[m++] = &h->lines[i];
        long want;
        if (!h->has_pos)
            want = (long)floor;
        else
            want = (h->old_count == 0 ? h->old_start : h->old_start - 1) + offset;
        if (want < (long)floor)
            want = (long)floor;
        size_t best;
        long best_at;
        long found = place_hunk(c, fl, n, pre, m, want, floor, &best, &best_at);
        if (found < 0) {
            hunk_unplaced(c, path, k, h, fl, pre, m, best, best_at);
            break;
        }
        if (h->has_pos)
            offset = found - (h->old_count == 0 ? h->old_start : h->old_start - 1);
        err = emit_hunk(&o, fl, floor, (size_t)found, h, crlf);
        floor = (size_t)found + m;
    }
    for (size_t i = floor; i < n && !err && !c->status; i++)
        err = push_out(&o.ol, &o.on, &o.ocap, (oline){fl[i].p, fl[i].len, fl[i].nl, 0});
    if (!err && !c->status)
        err = join_lines(c, path, &o, out, out_len);
    free(pre);
    free(o.ol);
    free(fl);
    if (!err && c->status)
        err = c->status;
    return err;
}

/* ---- one section of a diff ---- */

static mode_t git_mode_bits(unsigned git_mode, mode_t base)
{
    if (git_mode == 0100755)
        return (base | 0100 | ((base & 040) ? 010 : 0) | ((base & 04) ? 01 : 0)) & 0777;
    if (git_mode == 0100644)
        return base & 0666;
    return base;
}

static int check_git_mode(ctx *c, const char *path, unsigned m)
{
    if (m == 0 || m == 0100644 || m == 0100755 || m == 0100664)
        return 0;
    if (m == 0120000)
        return finding(c, GG_EINVAL, path, 0,
                       "file '%s': the diff makes a symbolic link, which answers may not do",
                       path);
    return finding(c, GG_EINVAL, path, 0, "file '%s': mode %o is not a file mode", path, m);
}

/* Does every hunk of f only add lines (so that it can only mean a new file)? */
static int hunks_only_add(const ggi_file_patch *f)
{
    if (f->n_hunks == 0)
        return 0;
    for (size_t k = 0; k < f->n_hunks; k++)
        for (size_t i = 0; i < f->hunks[k].n; i++)
            if (f->hunks[k].lines[i].op != '+')
                return 0;
    return 1;
}

static int apply_section(ctx *c, overlay *o, const ggi_file_patch *f)
{
    const char *name = f->new_path ? f->new_path : f->old_path;
    int err = 0;
    const char *old_path = f->old_path, *new_path = f->new_path;
    if (!f->bad && ((!f->is_new && !old_path) || (!f->is_delete && !new_path)))
        return finding(c, GG_EINVAL, name, 0, "the diff has a section without file names");
    if (f->bad)
        return finding(c, GG_EINVAL, name, 0, "the diff has %s%s%s", f->bad,
                       name ? " for " : "", name ? name : "");
    if (f->binary)
        return finding(c, GG_EINVAL, name, 0,
                       "file '%s': binary patches are not supported; answer with text "
                       "changes", name);
    if ((err = check_git_mode(c, name, f->new_mode)) ||
        (err = check_git_mode(c, name, f->old_mode)))
        return err;
    entry *src = NULL, *dst = NULL;
    if (f->traditional && !f->is_new && !f->is_delete && strcmp(old_path, new_path) != 0) {
        /* diff -u x.orig x: one file changes; take the name that exists (the new one
         * first), as patch(1) does. */
        entry *e = get_entry(c, o, new_path, &err);
        if (!e)
            return err ? err : c->status;
        if (e->exists)
            old_path = new_path;
        else
            new_path = old_path;
    }
    if (old_path && !(src = get_entry(c, o, old_path, &err)))
        return err ? err : c->status;
    if (f->is_new) {
        if (!(dst = get_entry(c, o, new_path, &err)))
            return err ? err : c->status;
        if (dst->exists)
            return finding(c, GG_EINVAL, new_path, 0,
                           "file '%s': the diff creates it but it already exists", new_path);
        char *data = NULL;
        size_t len = 0;
        if ((err = apply_hunks(c, new_path, f, "", 0, &data, &len)))
            return err;
        mode_t mode = f->new_mode == 0100755 ? 0755 : 0644;
        return set_content(c, dst, data, len, mode);
    }
    if (!src->exists && !f->is_delete && hunks_only_add(f)) {
        /* A new file written as a change ("--- a/x" instead of /dev/null): create it. */
        char *data = NULL;
        size_t len = 0;
        if (strcmp(old_path, new_path) != 0)
            return finding(c, GG_EINVAL, old_path, 0,
                           "file '%s': the diff renames it but it does not exist", old_path);
        if ((err = apply_hunks(c, new_path, f, "", 0, &data, &len)))
            return err;
        return set_content(c, src, data, len, f->new_mode == 0100755 ? 0755 : 0644);
    }
    if (!src->exists)
        return finding(c, GG_EINVAL, old_path, 0,
                       f->is_delete ? "file '%s': the diff deletes it but it does not exist"
                                    : "file '%s': the diff changes it but it does not exist",
                       old_path);
    char *data = NULL;
    size_t len = 0;
    if ((err = apply_hunks(c, old_path, f, src->data, src->len, &data, &len)))
        return err;
    if (f->is_delete) {
        free(data);
        if (len != 0)
            return finding(c, GG_EINVAL, old_path, 0,
                           "file '%s': the diff deletes it but the file holds lines the diff "
                           "does not remove", old_path);
        set_deleted(src);
        return 0;
    }
    mode_t mode = git_mode_bits(f->new_mode, (src->mode & 0777) | 0200);
    if (strcmp(old_path, new_path) != 0) {
        if (!(dst = get_entry(c, o, new_path, &err))) {
            free(data);
            return err ? err : c->status;
        }
        /* get_entry may have moved the array */
        src = get_entry(c, o, old_path, &err);
        if (dst->exists) {
            free(data);
            return finding(c, GG_EINVAL, new_path, 0,
                           "file '%s': the diff %s '%s' onto it but it already exists",
                           new_path, f->is_copy ? "copies" : "renames", old_path);
        }
        if (!f->is_copy)
            set_deleted(src);
        return set_content(c, dst, data, len, mode);
    }
    return set_content(c, src, data, len, mode);
}

/* ---- whole files ---- */

static int apply_files(ctx *c, overlay *o, const cJSON *files)
{
    if (!cJSON_IsObject(files))
        return finding(c, GG_EINVAL, NULL, 0, "field 'files' must be an object of paths");
    int err = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, files) {
        const char *p = it->string ? it->string : "";
        if (cJSON_IsNull(it)) {
            entry *e = get_entry(c, o, p, &err);
            if (!e)
                return err ? err : c->status;
            if (!e->exists)
                return finding(c, GG_EINVAL, p, 0,
                               "field 'files.%s' is null (delete) but the file does not exist",
                               p);
            set_deleted(e);
            continue;
        }
        if (!cJSON_IsString(it))
            return finding(c, GG_EINVAL, p, 0,
                           "field 'files.%s' must be a string (the content) or null (delete)",
                           p);
        entry *e = get_entry(c, o, p, &err);
        if (!e)
            return err ? err : c->status;
        size_t len = strlen(it->valuestring);
        char *data = ggi_strndup(it->valuestring, len);
        if (!data)
            return GG_ENOMEM;
        mode_t mode = e->disk_exists ? (e->disk_mode & 0777) | 0200 : 0644;
        if ((err = set_content(c, e, data, len, mode)))
            return err;
    }
    return 0;
}

/* ---- writing ---- */

/* Writes data as a new file next to the old one and renames it over, in parent. */
static int write_replace(int parent, const char *name, const char *data, size_t len,
                         mode_t mode)
{
    char tmp[64];
    int fd = -1;
    static unsigned long seq;
    for (int tries = 0; tries < 100 && fd < 0; tries++) {
        snprintf(tmp, sizeof tmp, ".gg-patch-%ld-%lu", (long)getpid(),
                 __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
        fd = openat(parent, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST)
            return -1;
    }
    if (fd < 0)
        return -1;
    if (ggi_write_all(fd, data, len) != 0)
        goto fail;
    if (fchmod(fd, mode) != 0)
        goto fail;
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (renameat(parent, tmp, parent, name) != 0)
        goto fail;
    return 0;
fail:;
    int e = errno;
    if (fd >= 0)
        close(fd);
    unlinkat(parent, tmp, 0);
    errno = e;
    return -1;
}

static int write_entry(ctx *c, const entry *e)
{
    char *buf = ggi_strdup(e->path);
    if (!buf)
        return GG_ENOMEM;
    int fds[GGI_SAFE_MAX_DEPTH], nfd = 0, err = 0;
    const char *last = NULL;
    int w = ggi_safe_walk_parent(c->dirfd, buf, e->exists, fds, &nfd, &last);
    int parent = nfd ? fds[nfd - 1] : c->dirfd;
    if (w == GGI_WALK_LINK || w == GGI_WALK_NOTDIR) {
        err = finding(c, GG_EINVAL, e->path, 0, "path '%s' goes through a %s", e->path,
                      w == GGI_WALK_LINK ? "symbolic link" : "file that is not a directory");
    } else if (w == GGI_WALK_ERR) {
        err = finding(c, GG_EIO, e->path, 0, "cannot reach '%s': %s", e->path, strerror(errno));
    } else if (w == GGI_WALK_MISSING) {
        err = 0; /* deleting something whose directory is gone already */
    } else {
        struct stat st;
        int there = fstatat(parent, last, &st, AT_SYMLINK_NOFOLLOW) == 0;
        if (there && (S_ISLNK(st.st_mode) || S_ISDIR(st.st_mode))) {
            err = finding(c, GG_EINVAL, e->path, 0, "path '%s' is a %s", e->path,
                          S_ISLNK(st.st_mode) ? "symbolic link" : "directory");
        } else if (e->exists) {
            if (write_replace(parent, last, e->data, e->len, e->mode) != 0)
                err = finding(c, GG_EIO, e->path, 0, "cannot write '%s': %s", e->path,
                              strerror(errno));
        } else if (there) {
            if (unlinkat(parent, last, 0) != 0)
                err = finding(c, GG_EIO, e->path, 0, "cannot delete '%s': %s", e->path,
                              strerror(errno));
            /* Directories the deletion emptied go too, as git apply does. */
            char *comps[GGI_SAFE_MAX_DEPTH];
            char *b2 = ggi_strdup(e->path);
            int n = b2 ? ggi_safe_path_split(b2, comps) : 0;
            for (int i = nfd - 1; !err && i >= 0 && n >= 2; i--) {
                int up = i ? fds[i - 1] : c->dirfd;
                if (unlinkat(up, comps[i], AT_REMOVEDIR) != 0)
                    break;
            }
            free(b2);
        }
    }
    ggi_safe_close(fds, nfd);
    free(buf);
    return err;
}

static int cmp_entry_path(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->path, ((const entry *)b)->path);
}

/* ---- the entry point ---- */

/* The answer, read: refused (a finding) when missing, too long, holding a NUL byte, or
 * neither a unified diff nor {"files": ...}. */
static int read_answer(ctx *c, const char *answer, size_t len, ggi_answer *a)
{
    if (!answer)
        return finding(c, GG_EINVAL, NULL, 0, "the answer is missing");
    if (len > GGI_PATCH_MAX_TEXT)
        return finding(c, GG_ETOOBIG, NULL, 0, "the answer is %zu bytes, the limit is %u", len,
                       GGI_PATCH_MAX_TEXT);
    if (memchr(answer, '\0', len))
        return finding(c, GG_EINVAL, NULL, 0, "the answer holds a NUL byte");
    int err = ggi_answer_read(answer, len, a);
    if (err)
        return err;
    if (a->kind == 0) {
        if (a->json_error)
            return finding(c, GG_EINVAL, NULL, 0, "the answer's {\"files\": ...} object: %s",
                           a->json_error);
        return finding(c, GG_EINVAL, NULL, 0,
                       "the answer is neither a unified diff nor {\"files\": ...}");
    }
    return 0;
}

/* Every path, before anything else: each unsafe one is a finding (all of them named). */
static int check_paths(ctx *c, const ggi_answer *a)
{
    if (a->kind == GGI_PATCH_DIFF) {
        if (a->diff.n > GGI_PATCH_MAX_FILES)
            return finding(c, GG_ETOOBIG, NULL, 0,
                           "the diff has %zu file sections, the limit is %d", a->diff.n,
                           GGI_PATCH_MAX_FILES);
        for (size_t i = 0; i < a->diff.n; i++) {
            const char *ps[2] = {a->diff.files[i].old_path, a->diff.files[i].new_path};
            for (int s = 0; s < 2; s++) {
                const char *why = ps[s] ? ggi_safe_path_problem(ps[s]) : NULL;
                if (why)
                    finding(c, GG_EINVAL, ps[s], 0, "path '%.100s%s' in the diff %s", ps[s],
                            strlen(ps[s]) > 100 ? "..." : "", why);
            }
        }
        return c->status;
    }
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(a->json, "files");
    if (!cJSON_IsObject(files))
        return finding(c, GG_EINVAL, NULL, 0, "field 'files' must be an object of paths");
    if (cJSON_GetArraySize(files) > GGI_PATCH_MAX_FILES)
        return finding(c, GG_ETOOBIG, NULL, 0, "field 'files' has %d files, the limit is %d",
                       cJSON_GetArraySize(files), GGI_PATCH_MAX_FILES);
    const cJSON *it;
    cJSON_ArrayForEach(it, files) {
        const char *p = it->string ? it->string : "";
        const char *why = ggi_safe_path_problem(p);
        if (why)
            finding(c, GG_EINVAL, p, 0, "field 'files' path '%.100s%s' %s", p,
                    strlen(p) > 100 ? "..." : "", why);
    }
    return c->status;
}

/* The new content of every file, in memory. After a hunk that does not apply it goes on, so
 * the feedback names them all. */
static int compute_overlay(ctx *c, overlay *o, const ggi_answer *a)
{
    int err = 0;
    if (a->kind == GGI_PATCH_DIFF) {
        for (size_t i = 0; i < a->diff.n && !err; i++) {
            err = apply_section(c, o, &a->diff.files[i]);
            if (err == GG_EINVAL && c->status == GG_EINVAL)
                err = 0;
        }
    } else {
        err = apply_files(c, o, cJSON_GetObjectItemCaseSensitive(a->json, "files"));
    }
    return err ? err : c->status;
}

/* Write: deletions first (a file may make way for a directory), then files. */
static int write_overlay(ctx *c, overlay *o)
{
    int err = 0;
    if (o->n)
        qsort(o->e, o->n, sizeof *o->e, cmp_entry_path);
    for (int pass = 0; pass < 2 && !err; pass++)
        for (size_t i = 0; i < o->n && !err; i++) {
            const entry *e = &o->e[i];
            if (!e->touched || (pass == 0) != !e->exists || (!e->exists && !e->disk_exists))
                continue;
            err = write_entry(c, e);
        }
    return err;
}

/* The paths the answer changed, sorted. */
static int list_changed(const overlay *o, cJSON **out_changed)
{
    cJSON *ch = cJSON_CreateArray();
    for (size_t i = 0; ch && i < o->n; i++) {
        const entry *e = &o->e[i];
        if (!e->touched || (!e->exists && !e->disk_exists))
            continue;
        cJSON *s = cJSON_CreateString(e->path);
        if (!s) {
            cJSON_Delete(ch);
            ch = NULL;
            break;
        }
        cJSON_AddItemToArray(ch, s);
    }
    *out_changed = ch;
    return ch ? 0 : ggi_error(GG_ENOMEM, "out of memory listing changed files");
}

/* A refusal: the first finding is the error; the findings go to the caller. */
static int refuse(ctx *c, int err, cJSON **out_changed, cJSON **out_findings)
{
    if (err == GG_ENOMEM && !c->status)
        ggi_error(GG_ENOMEM, "out of memory applying an answer");
    if (cJSON_GetArraySize(c->findings) == 0)
        finding(c, err, NULL, 0, "%s", gg_error_last());
    if (c->status)
        ggi_error(c->status, "%s",
                  cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
                      cJSON_GetArrayItem(c->findings, 0), "message")));
    if (out_findings)
        *out_findings = c->findings;
    else
        cJSON_Delete(c->findings);
    if (out_changed) {
        cJSON_Delete(*out_changed);
        *out_changed = NULL;
    }
    return c->status ? c->status : err;
}

int ggi_patch_apply(const char *dir, const char *answer, size_t len, int *out_kind,
                    cJSON **out_changed, cJSON **out_findings)
{
    if (out_kind)
        *out_kind = 0;
    if (out_changed)
        *out_changed = NULL;
    if (out_findings)
        *out_findings = NULL;
    ctx c = {.dirfd = -1, .budget = SEARCH_BUDGET};
    c.findings = cJSON_CreateArray();
    if (!c.findings)
        return ggi_error(GG_ENOMEM, "out of memory applying an answer");
    ggi_answer a;
    memset(&a, 0, sizeof a);
    overlay o = {0};
    int err = read_answer(&c, answer, len, &a);
    if (!err && out_kind)
        *out_kind = a.kind;
    if (!err)
        err = check_paths(&c, &a);
    if (!err) {
        c.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (c.dirfd < 0)
            err = finding(&c, GG_EIO, NULL, 0, "cannot open the workspace copy '%s': %s", dir,
                          strerror(errno));
    }
    if (!err)
        err = compute_overlay(&c, &o, &a);
    if (!err)
        err = write_overlay(&c, &o);
    if (!err && out_changed)
        err = list_changed(&o, out_changed);
    if (c.dirfd >= 0)
        close(c.dirfd);
    overlay_free(&o);
    ggi_answer_free(&a);
    if (err)
        return refuse(&c, err, out_changed, out_findings);
    cJSON_Delete(c.findings);
    return 0;
}
