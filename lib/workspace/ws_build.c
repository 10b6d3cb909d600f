/*
 * ws_build.c - what turns a source into git objects and back into numbers: the base64 codec
 * of "pack", the deterministic commit of a directory or of inline files, and the caps
 * counted over a commit's tree (ws_internal.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ws_internal.h"

/* ---- base64 ---- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int ggi_ws_b64_encode(const void *data, size_t n, char **out)
{
    const unsigned char *p = data;
    size_t len = (n + 2) / 3 * 4;
    char *s = malloc(len + 1);
    if (!s)
        return ggi_error(GG_ENOMEM, "out of memory");
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        s[o++] = b64_alphabet[v >> 18];
        s[o++] = b64_alphabet[(v >> 12) & 63];
        s[o++] = b64_alphabet[(v >> 6) & 63];
        s[o++] = b64_alphabet[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0);
        s[o++] = b64_alphabet[v >> 18];
        s[o++] = b64_alphabet[(v >> 12) & 63];
        s[o++] = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
        s[o++] = '=';
    }
    s[o] = '\0';
    *out = s;
    return GG_OK;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int ggi_ws_b64_decode(const char *text, size_t len, unsigned char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    unsigned char *b = malloc(GGI_WS_B64_DECODED_MAX(len) + 1);
    if (!b)
        return ggi_error(GG_ENOMEM, "out of memory");
    size_t o = 0, pad = 0, digits = 0;
    unsigned acc = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        int v = b64_value(c);
        if (v < 0 || pad) {
            free(b);
            return ggi_error(GG_EINVAL, "field 'workspace.pack' is not base64 (character %zu)",
                             i);
        }
        acc = acc << 6 | (unsigned)v;
        if (++digits % 4 == 0) {
            b[o++] = (unsigned char)(acc >> 16);
            b[o++] = (unsigned char)(acc >> 8);
            b[o++] = (unsigned char)acc;
            acc = 0;
        }
    }
    size_t rest = digits % 4;
    if (rest == 1 || pad > 2 || (pad && (rest + pad) % 4 != 0)) {
        free(b);
        return ggi_error(GG_EINVAL, "field 'workspace.pack' is not base64 (its length)");
    }
    if (rest == 2) {
        b[o++] = (unsigned char)(acc >> 4);
    } else if (rest == 3) {
        b[o++] = (unsigned char)(acc >> 10);
        b[o++] = (unsigned char)(acc >> 2);
    }
    *out = b;
    *out_len = o;
    return GG_OK;
}

/* ---- trees ---- */

typedef struct {
    git_repository *repo;
    git_index *index;
    const char *field;
    size_t files, bytes;
    int rc;
} build_ctx;

static int add_blob(build_ctx *b, const char *path, unsigned mode, const void *data,
                    size_t n)
{
    git_index_entry e;
    memset(&e, 0, sizeof e);
    if (git_blob_create_from_buffer(&e.id, b->repo, data, n) < 0)
        return ggi_ws_git_error(GG_EIO, "field '%s': cannot store '%.200s'", b->field, path);
    e.path = path;
    e.mode = mode;
    if (git_index_add(b->index, &e) < 0)
        return ggi_ws_git_error(GG_EINVAL, "field '%s': cannot hold '%.200s'", b->field, path);
    return GG_OK;
}

static int count_file(build_ctx *b, const char *path, size_t size)
{
    if (size > GGI_WS_MAX_FILE_BYTES)
        return ggi_error(GG_ETOOBIG, "field '%s': '%.200s' is %zu bytes, the limit is %u",
                         b->field, path, size, GGI_WS_MAX_FILE_BYTES);
    if (++b->files > GGI_WS_MAX_FILES)
        return ggi_error(GG_ETOOBIG, "field '%s' holds more than %d files, the limit",
                         b->field, GGI_WS_MAX_FILES);
    b->bytes += size;
    if (b->bytes > GGI_WS_MAX_BYTES)
        return ggi_error(GG_ETOOBIG, "field '%s' holds more than %u bytes, the limit",
                         b->field, GGI_WS_MAX_BYTES);
    return GG_OK;
}

static int read_all(int fd, size_t size, char **out, size_t *out_len)
{
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return -1;
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            free(buf);
            return -1;
        }
        if (r == 0)
            break; /* shrank while read: what was there */
        got += (size_t)r;
    }
    *out = buf;
    *out_len = got;
    return 0;
}

static const char *kind_of(mode_t m)
{
    if (S_ISFIFO(m))
        return "fifo";
    if (S_ISSOCK(m))
        return "socket";
    if (S_ISCHR(m) || S_ISBLK(m))
        return "device";
    return "special file";
}

/* Reads the directory open at dfd (closed here), whose path in the base is prefix. */
static int read_dir(build_ctx *b, int dfd, char *path, size_t plen, int depth)
{
    if (depth > 256) {
        close(dfd);
        return ggi_error(GG_ETOOBIG, "field '%s': '%.200s' is nested deeper than 256 "
                         "directories", b->field, path);
    }
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return ggi_error(GG_EIO, "field '%s': cannot read '%.200s': %s", b->field,
                         plen ? path : ".", strerror(errno));
    }
    int rc = GG_OK;
    struct dirent *e;
    while (rc == GG_OK && (errno = 0, e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strcasecmp(name, ".git") == 0)
            continue;
        size_t nlen = strlen(name);
        if (plen + 1 + nlen > GGI_WS_MAX_PATH) {
            rc = ggi_error(GG_ETOOBIG, "field '%s': a path under '%.200s' is longer than %d "
                           "bytes, the limit", b->field, plen ? path : ".", GGI_WS_MAX_PATH);
            break;
        }
        size_t sub = plen;
        if (plen)
            path[sub++] = '/';
        memcpy(path + sub, name, nlen + 1);
        sub += nlen;
        struct stat st;
        if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            rc = ggi_error(GG_EIO, "field '%s': cannot read '%.200s': %s", b->field, path,
                           strerror(errno));
        } else if (S_ISDIR(st.st_mode)) {
            int fd = openat(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0)
                rc = ggi_error(GG_EIO, "field '%s': cannot read '%.200s': %s", b->field, path,
                               strerror(errno));
            else
                rc = read_dir(b, fd, path, sub, depth + 1);
        } else if (S_ISLNK(st.st_mode)) {
            char target[4097];
            ssize_t n = readlinkat(dirfd(d), name, target, sizeof target - 1);
            if (n < 0)
                rc = ggi_error(GG_EIO, "field '%s': cannot read the link '%.200s': %s",
                               b->field, path, strerror(errno));
            else if ((rc = count_file(b, path, (size_t)n)) == GG_OK)
                rc = add_blob(b, path, GIT_FILEMODE_LINK, target, (size_t)n);
        } else if (S_ISREG(st.st_mode)) {
            int fd = openat(dirfd(d), name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
            struct stat fst;
            char *data = NULL;
            size_t n = 0;
            if (fd < 0 || fstat(fd, &fst) != 0 || !S_ISREG(fst.st_mode))
                rc = ggi_error(GG_EIO, "field '%s': cannot read '%.200s': %s", b->field, path,
                               fd < 0 ? strerror(errno) : "it changed while read");
            else if ((rc = count_file(b, path, (size_t)fst.st_size)) == GG_OK) {
                if (read_all(fd, (size_t)fst.st_size, &data, &n) != 0)
                    rc = ggi_error(GG_EIO, "field '%s': cannot read '%.200s': %s", b->field,
                                   path, strerror(errno));
                else
                    rc = add_blob(b, path, (fst.st_mode & S_IXUSR) ? GIT_FILEMODE_BLOB_EXECUTABLE
                                                                   : GIT_FILEMODE_BLOB,
                                  data, n);
            }
            free(data);
            if (fd >= 0)
                close(fd);
        } else {
            rc = ggi_error(GG_EINVAL, "field '%s': '%.200s' is a %s, which a workspace cannot "
                           "hold", b->field, path, kind_of(st.st_mode));
        }
        path[plen] = '\0';
    }
    if (rc == GG_OK && errno != 0)
        rc = ggi_error(GG_EIO, "field '%s': cannot read '%.200s': %s", b->field,
                       plen ? path : ".", strerror(errno));
    closedir(d);
    return rc;
}

static int make_commit(build_ctx *b, git_oid *out)
{
    git_oid tree_id;
    git_tree *tree = NULL;
    git_signature *sig = NULL;
    int rc = GG_OK;
    if (git_index_write_tree_to(&tree_id, b->index, b->repo) < 0 ||
        git_tree_lookup(&tree, b->repo, &tree_id) < 0 ||
        git_signature_new(&sig, GGI_WS_COMMIT_NAME, GGI_WS_COMMIT_EMAIL, 0, 0) < 0 ||
        git_commit_create(out, b->repo, NULL, sig, sig, NULL, GGI_WS_COMMIT_MESSAGE, tree, 0,
                          NULL) < 0)
        rc = ggi_ws_git_error(GG_EIO, "field '%s': cannot make the base's commit", b->field);
    git_signature_free(sig);
    git_tree_free(tree);
    return rc;
}

int ggi_ws_build_dir(git_repository *repo, const char *dir, git_oid *out)
{
    int rc = ggi_ws_git_init();
    if (rc != GG_OK)
        return rc;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return ggi_error(errno == ENOENT || errno == ENOTDIR ? GG_ENOTFOUND : GG_EIO,
                         "field 'workspace.dir': no directory at '%.1024s' (%s)", dir,
                         strerror(errno));
    build_ctx b = {.repo = repo, .field = "workspace.dir"};
    if (git_index_new(&b.index) < 0) {
        close(fd);
        return ggi_ws_git_error(GG_ENOMEM, "field 'workspace.dir': no index");
    }
    char path[GGI_WS_MAX_PATH + 2];
    path[0] = '\0';
    rc = read_dir(&b, fd, path, 0, 0);
    if (rc == GG_OK)
        rc = make_commit(&b, out);
    git_index_free(b.index);
    return rc;
}

int ggi_ws_build_files(git_repository *repo, const cJSON *files, git_oid *out)
{
    int rc = ggi_ws_git_init();
    if (rc != GG_OK)
        return rc;
    build_ctx b = {.repo = repo, .field = "workspace.files"};
    if (git_index_new(&b.index) < 0)
        return ggi_ws_git_error(GG_ENOMEM, "field 'workspace.files': no index");
    for (const cJSON *f = files ? files->child : NULL; f && rc == GG_OK; f = f->next) {
        size_t n = strlen(f->valuestring);
        if ((rc = count_file(&b, f->string, n)) == GG_OK)
            rc = add_blob(&b, f->string, GIT_FILEMODE_BLOB, f->valuestring, n);
    }
    if (rc == GG_OK)
        rc = make_commit(&b, out);
    git_index_free(b.index);
    return rc;
}

/* ---- caps of a commit's tree ---- */

typedef struct {
    build_ctx b;
    git_odb *odb;
} caps_ctx;

static int caps_cb(const char *root, const git_tree_entry *entry, void *payload)
{
    caps_ctx *c = payload;
    const char *name = git_tree_entry_name(entry);
    char path[2 * GGI_WS_MAX_PATH + 2];
    if (!ggi_ws_name_ok(name)) {
        c->b.rc = ggi_error(GG_EINVAL, "field '%s': the tree holds an unsafe name '%.200s%.200s'",
                            c->b.field, root, name);
        return -1;
    }
    if (strlen(root) + strlen(name) > GGI_WS_MAX_PATH) {
        c->b.rc = ggi_error(GG_ETOOBIG, "field '%s': a path under '%.200s' is longer than %d "
                            "bytes, the limit", c->b.field, root, GGI_WS_MAX_PATH);
        return -1;
    }
    snprintf(path, sizeof path, "%s%s", root, name);
    git_object_t type = git_tree_entry_type(entry);
    if (type != GIT_OBJECT_BLOB)
        return 0;
    size_t len = 0;
    git_object_t t;
    if (git_odb_read_header(&len, &t, c->odb, git_tree_entry_id(entry)) < 0) {
        c->b.rc = ggi_ws_git_error(GG_ENOTFOUND, "field '%s': '%.200s' is missing from the "
                                   "object store", c->b.field, path);
        return -1;
    }
    if ((c->b.rc = count_file(&c->b, path, len)) != GG_OK)
        return -1;
    return 0;
}

int ggi_ws_check_tree_caps(git_repository *repo, const git_oid *commit, const char *field,
                           git_oid *out_tree)
{
    git_commit *cm = NULL;
    git_tree *tree = NULL;
    caps_ctx c = {.b = {.repo = repo, .field = field}};
    int rc = GG_OK;
    if (git_commit_lookup(&cm, repo, commit) < 0 || git_commit_tree(&tree, cm) < 0) {
        rc = ggi_ws_git_error(GG_ENOTFOUND, "field '%s': the commit or its tree is missing",
                              field);
        goto done;
    }
    if (git_repository_odb(&c.odb, repo) < 0) {
        rc = ggi_ws_git_error(GG_EIO, "field '%s': no object store", field);
        goto done;
    }
    if (git_tree_walk(tree, GIT_TREEWALK_PRE, caps_cb, &c) < 0)
        rc = c.b.rc ? c.b.rc : ggi_ws_git_error(GG_EIO, "field '%s': cannot walk the tree", field);
    if (rc == GG_OK && out_tree)
        *out_tree = *git_tree_id(tree);
done:
    git_odb_free(c.odb);
    git_tree_free(tree);
    git_commit_free(cm);
    return rc;
}
