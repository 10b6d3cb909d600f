/*
 * patch_diff.c - the unified diff of what an attempt changed (ggi_patch_diff, patch.h):
 * libgit2's xdiff finds the hunks of each file that differs; the headers (git's extended
 * ones, index lines, quoting) are written here as git writes them, so that both `git apply`
 * and libgit2's parser take the result.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>

#include "patch.h"
#include "safe_path.h"

static pthread_once_t git_once = PTHREAD_ONCE_INIT;
static void git_init(void)
{
    git_libgit2_init();
}

/* A file as the diff sees it. */
typedef struct side {
    int exists;
    dev_t dev;      /* of a regular file */
    ino_t ino;
    unsigned mode;  /* git mode */
    char *data;
    size_t len;
} side;

/* Reads root/path without following links (a link's content is its target). */
static int read_side(int root, const char *path, side *s, int with_data)
{
    memset(s, 0, sizeof *s);
    char *buf = ggi_strdup(path);
    if (!buf)
        return GG_ENOMEM;
    int fds[GGI_SAFE_MAX_DEPTH], nfd = 0, err = 0;
    const char *last = NULL;
    if (ggi_safe_path_problem(path) ||
        ggi_safe_walk_parent(root, buf, 0, fds, &nfd, &last) != GGI_WALK_OK)
        goto out; /* not a file of the tree: absent */
    int parent = nfd ? fds[nfd - 1] : root;
    struct stat st;
    if (fstatat(parent, last, &st, AT_SYMLINK_NOFOLLOW) != 0)
        goto out;
    if (!with_data) {
        s->exists = S_ISLNK(st.st_mode) || S_ISREG(st.st_mode);
        s->dev = st.st_dev;
        s->ino = st.st_ino;
        s->mode = S_ISLNK(st.st_mode) ? 0120000 : (st.st_mode & 0100) ? 0100755 : 0100644;
        goto out;
    }
    if (S_ISLNK(st.st_mode)) {
        char target[4096];
        ssize_t n = readlinkat(parent, last, target, sizeof target);
        if (n < 0) {
            err = ggi_error(GG_EIO, "cannot read link '%s': %s", path, strerror(errno));
            goto out;
        }
        s->data = ggi_strndup(target, (size_t)n);
        if (!s->data) {
            err = GG_ENOMEM;
            goto out;
        }
        s->len = (size_t)n;
        s->mode = 0120000;
        s->exists = 1;
    } else if (S_ISREG(st.st_mode)) {
        if ((size_t)st.st_size > GGI_PATCH_MAX_FILE_BYTES) {
            err = ggi_error(GG_ETOOBIG, "file '%s' is %lld bytes, the limit is %u", path,
                            (long long)st.st_size, GGI_PATCH_MAX_FILE_BYTES);
            goto out;
        }
        int fd = openat(parent, last, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            err = ggi_error(GG_EIO, "cannot open '%s': %s", path, strerror(errno));
            goto out;
        }
        err = ggi_safe_read_fd(fd, (size_t)st.st_size, &s->data, &s->len);
        close(fd);
        s->mode = (st.st_mode & 0100) ? 0100755 : 0100644;
        s->exists = !err;
    }
out:
    ggi_safe_close(fds, nfd);
    free(buf);
    return err;
}

static int is_binary(const side *s)
{
    size_t n = s->len < 8000 ? s->len : 8000;
    return s->exists && memchr(s->data, '\0', n) != NULL;
}

/* The first 7 hex digits of a file's git blob id. */
static int blob_abbrev(const side *s, char out[8])
{
    git_oid oid;
    char hex[GIT_OID_HEXSZ + 1];
    if (git_odb_hash(&oid, s->data, s->len, GIT_OBJECT_BLOB) != 0)
        return -1;
    git_oid_tostr(hex, sizeof hex, &oid);
    memcpy(out, hex, 7);
    out[7] = '\0';
    return 0;
}

/* Writes a path as git does in headers: quoted when it holds unusual bytes. */
static int put_path(ggi_buf *b, const char *prefix, const char *path)
{
    /* A name ending in a space is quoted too: readers trim the end of "---" lines. */
    size_t len = strlen(path);
    int quote = len && path[len - 1] == ' ';
    for (const unsigned char *p = (const unsigned char *)path; *p; p++)
        if (*p < 0x20 || *p == '"' || *p == '\\' || *p >= 0x7f)
            quote = 1;
    if (!quote)
        return ggi_buf_printf(b, "%s%s", prefix, path);
    int err = ggi_buf_printf(b, "\"%s", prefix);
    for (const unsigned char *p = (const unsigned char *)path; *p && !err; p++) {
        switch (*p) {
        case '"': err = ggi_buf_puts(b, "\\\""); break;
        case '\\': err = ggi_buf_puts(b, "\\\\"); break;
        case '\n': err = ggi_buf_puts(b, "\\n"); break;
        case '\t': err = ggi_buf_puts(b, "\\t"); break;
        default:
            err = *p < 0x20 || *p >= 0x7f ? ggi_buf_printf(b, "\\%03o", *p)
                                          : ggi_buf_append(b, p, 1);
        }
    }
    return err ? err : ggi_buf_puts(b, "\"");
}

static void hunk_range(ggi_buf *b, char sign, int start, int count, int *err)
{
    if (*err)
        return;
    if (count == 1)
        *err = ggi_buf_printf(b, "%c%d", sign, start);
    else
        *err = ggi_buf_printf(b, "%c%d,%d", sign, start, count);
}

/* Appends the git diff of one path (nothing when both sides are the same). */
static int diff_one(ggi_buf *b, const char *path, const side *o, const side *n)
{
    if (!o->exists && !n->exists)
        return 0;
    int same_data = o->exists && n->exists && o->len == n->len &&
                    memcmp(o->data, n->data, o->len) == 0;
    if (same_data && o->mode == n->mode)
        return 0;
    if (o->exists && n->exists && (o->mode == 0120000) != (n->mode == 0120000)) {
        /* A file that became a link (or back): a deletion and a creation, as git writes. */
        side none = {0};
        int err = diff_one(b, path, o, &none);
        return err ? err : diff_one(b, path, &none, n);
    }
    int err = ggi_buf_puts(b, "diff --git ");
    if (!err) err = put_path(b, "a/", path);
    if (!err) err = ggi_buf_puts(b, " ");
    if (!err) err = put_path(b, "b/", path);
    if (!err) err = ggi_buf_puts(b, "\n");
    if (!err && !o->exists)
        err = ggi_buf_printf(b, "new file mode %06o\n", n->mode);
    else if (!err && !n->exists)
        err = ggi_buf_printf(b, "deleted file mode %06o\n", o->mode);
    else if (!err && o->mode != n->mode)
        err = ggi_buf_printf(b, "old mode %06o\nnew mode %06o\n", o->mode, n->mode);
    if (err || same_data)
        return err;
    /* The index line, as git writes it. */
    char ho[8] = "0000000", hn[8] = "0000000";
    if ((o->exists && blob_abbrev(o, ho)) || (n->exists && blob_abbrev(n, hn)))
        return ggi_error(GG_EIO, "diff of '%s': cannot hash a blob", path);
    if (o->exists && n->exists && o->mode == n->mode)
        err = ggi_buf_printf(b, "index %s..%s %06o\n", ho, hn, o->mode);
    else
        err = ggi_buf_printf(b, "index %s..%s\n", ho, hn);
    if (err)
        return err;
    /* An empty file's creation or deletion still gets its --- and +++ lines (and no
     * hunk): libgit2 1.5's parser refuses a section that ends at its index line. */
    if (is_binary(o) || is_binary(n)) {
        err = ggi_buf_puts(b, "Binary files ");
        if (!err) err = o->exists ? put_path(b, "a/", path) : ggi_buf_puts(b, "/dev/null");
        if (!err) err = ggi_buf_puts(b, " and ");
        if (!err) err = n->exists ? put_path(b, "b/", path) : ggi_buf_puts(b, "/dev/null");
        if (!err) err = ggi_buf_puts(b, " differ\n");
        return err;
    }
    git_diff_options opts;
    git_diff_options_init(&opts, GIT_DIFF_OPTIONS_VERSION);
    opts.context_lines = 3;
    opts.interhunk_lines = 0;
    opts.flags = GIT_DIFF_FORCE_TEXT;
    git_patch *patch = NULL;
    if (git_patch_from_buffers(&patch, o->exists ? o->data : NULL, o->exists ? o->len : 0,
                               path, n->exists ? n->data : NULL, n->exists ? n->len : 0, path,
                               &opts) != 0) {
        const git_error *ge = git_error_last();
        return ggi_error(GG_EIO, "diff of '%s': %s", path,
                         ge && ge->message ? ge->message : "libgit2 failed");
    }
    err = ggi_buf_puts(b, "--- ");
    if (!err) err = o->exists ? put_path(b, "a/", path) : ggi_buf_puts(b, "/dev/null");
    if (!err) err = ggi_buf_puts(b, "\n+++ ");
    if (!err) err = n->exists ? put_path(b, "b/", path) : ggi_buf_puts(b, "/dev/null");
    if (!err) err = ggi_buf_puts(b, "\n");
    size_t nh = git_patch_num_hunks(patch);
    for (size_t h = 0; h < nh && !err; h++) {
        const git_diff_hunk *hk = NULL;
        size_t nl = 0;
        if (git_patch_get_hunk(&hk, &nl, patch, h) != 0) {
            err = ggi_error(GG_EIO, "diff of '%s': cannot read a hunk", path);
            break;
        }
        err = ggi_buf_puts(b, "@@ ");
        hunk_range(b, '-', hk->old_start, hk->old_lines, &err);
        if (!err) err = ggi_buf_puts(b, " ");
        hunk_range(b, '+', hk->new_start, hk->new_lines, &err);
        if (!err) err = ggi_buf_puts(b, " @@\n");
        for (size_t l = 0; l < nl && !err; l++) {
            const git_diff_line *ln = NULL;
            if (git_patch_get_line_in_hunk(&ln, patch, h, l) != 0) {
                err = ggi_error(GG_EIO, "diff of '%s': cannot read a line", path);
                break;
            }
            switch (ln->origin) {
            case GIT_DIFF_LINE_CONTEXT:
            case GIT_DIFF_LINE_ADDITION:
            case GIT_DIFF_LINE_DELETION: {
                char op = ln->origin == GIT_DIFF_LINE_CONTEXT ? ' ' : (char)ln->origin;
                err = ggi_buf_append(b, &op, 1);
                if (!err) err = ggi_buf_append(b, ln->content, ln->content_len);
                if (!err && (ln->content_len == 0 || ln->content[ln->content_len - 1] != '\n'))
                    err = ggi_buf_puts(b, "\n");
                break;
            }
            case GIT_DIFF_LINE_CONTEXT_EOFNL:
            case GIT_DIFF_LINE_ADD_EOFNL:
            case GIT_DIFF_LINE_DEL_EOFNL:
                err = ggi_buf_puts(b, "\\ No newline at end of file\n");
                break;
            default:
                break;
            }
        }
    }
    git_patch_free(patch);
    return err;
}

/* Collects the relative paths of the files and links under root/rel, skipping .git. */
static int collect(const char *root, const char *rel, cJSON *out, int depth)
{
    if (depth > GGI_SAFE_MAX_DEPTH)
        return 0;
    char *full = rel[0] ? ggi_asprintf("%s/%s", root, rel) : ggi_strdup(root);
    if (!full)
        return GG_ENOMEM;
    int fd = open(full, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    free(full);
    if (fd < 0)
        return 0;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return 0;
    }
    int err = 0;
    struct dirent *de;
    while (!err && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
            !strcasecmp(de->d_name, ".git"))
            continue;
        char *p = rel[0] ? ggi_asprintf("%s/%s", rel, de->d_name) : ggi_strdup(de->d_name);
        if (!p) {
            err = GG_ENOMEM;
            break;
        }
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            if (S_ISDIR(st.st_mode))
                err = collect(root, p, out, depth + 1);
            else if ((S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) &&
                     cJSON_GetArraySize(out) >= GGI_PATCH_MAX_TREE_FILES)
                err = ggi_error(GG_ETOOBIG, "the trees to compare hold more than %d files",
                                GGI_PATCH_MAX_TREE_FILES);
            else if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode))
                err = cJSON_AddItemToArray(out, cJSON_CreateString(p)) ? 0 : GG_ENOMEM;
        }
        free(p);
    }
    closedir(d);
    return err;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int ggi_patch_diff(const char *base_dir, const char *dir, const cJSON *paths, char **out)
{
    *out = NULL;
    pthread_once(&git_once, git_init);
    cJSON *all = NULL;
    int err = 0;
    if (!paths) {
        all = cJSON_CreateArray();
        if (!all)
            return ggi_error(GG_ENOMEM, "out of memory listing files");
        if ((err = collect(base_dir, "", all, 0)) || (err = collect(dir, "", all, 0))) {
            cJSON_Delete(all);
            return err == GG_ENOMEM ? ggi_error(err, "out of memory listing files") : err;
        }
        paths = all;
    }
    size_t n = (size_t)cJSON_GetArraySize(paths), k = 0;
    const char **list = malloc((n + 1) * sizeof *list);
    if (!list) {
        cJSON_Delete(all);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, paths)
        if (cJSON_IsString(it))
            list[k++] = it->valuestring;
    qsort(list, k, sizeof *list, cmp_str);
    int bfd = open(base_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ggi_buf b = GGI_BUF_INIT;
    if (bfd < 0 || dfd < 0)
        err = ggi_error(GG_EIO, "cannot open '%s': %s", bfd < 0 ? base_dir : dir,
                        strerror(errno));
    for (size_t i = 0; i < k && !err; i++) {
        if (i && strcmp(list[i], list[i - 1]) == 0)
            continue;
        side so, sn;
        /* A file of the copy that is still a hard link to the base's file is unchanged
         * (ggi_ws_copy's links): no need to read either. */
        if ((err = read_side(bfd, list[i], &so, 0)) || (err = read_side(dfd, list[i], &sn, 0)))
            break;
        if (so.exists && sn.exists && so.mode != 0120000 && so.mode == sn.mode &&
            so.dev == sn.dev && so.ino == sn.ino)
            continue;
        err = read_side(bfd, list[i], &so, 1);
        if (!err) {
            err = read_side(dfd, list[i], &sn, 1);
            if (!err)
                err = diff_one(&b, list[i], &so, &sn);
            free(sn.data);
        }
        free(so.data);
        if (!err && b.len > GGI_PATCH_MAX_BYTES)
            err = ggi_error(GG_ETOOBIG, "the diff is over %u bytes", GGI_PATCH_MAX_BYTES);
    }
    if (bfd >= 0)
        close(bfd);
    if (dfd >= 0)
        close(dfd);
    free(list);
    cJSON_Delete(all);
    if (err) {
        ggi_buf_free(&b);
        return err == GG_ENOMEM ? ggi_error(err, "out of memory writing a diff") : err;
    }
    *out = ggi_buf_steal(&b);
    if (!*out)
        return ggi_error(GG_ENOMEM, "out of memory writing a diff");
    return 0;
}
