/*
 * ws_cache.c - a machine's cache of bases (workspace.h): a bare repository under the root
 * holds the objects (imported packs, fetched commits, written inline files), and each base
 * is exported once as a read-only tree under root/trees/<tree id>.
 *
 * Layout:  root/objects.git   bare repository (objects only; no refs are written)
 *          root/trees/<tree>  exported bases (files 0444 or 0555, directories 0555)
 *          root/trees/.tmp-*  an export in progress (or left by a crash)
 *          root/verified/<k>  a source known to hold a commit (see below)
 *          root/lock          flock()ed while importing, fetching and exporting
 *
 * A commit id is no capability: a task gets a base only when its own source holds the
 * commit (its pack, its repository, its directory; inline files make theirs). The first
 * time a source is seen with a commit it is checked under the lock (the pack indexed apart
 * when the store already holds the commit, the repository asked, the directory read, the
 * files built); then root/verified/<k> records it, k the SHA-1 of the source's kind, text
 * (the whole pack text, the URL or path, the files' JSON) and the commit, and later calls
 * take the fast path (no lock, nothing rebuilt): one hash of the source's text. For inline
 * files the record holds the commit they make, so they need no "commit" to be fast.
 *
 * Threads of one process are serialised by a mutex (a git_repository is not for sharing),
 * processes by the lock file. An export is written into a temporary directory and renamed
 * into place, so a reader sees a whole base or none; temporary directories found while the
 * lock is held belong to no live exporter and are removed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2/sys/odb_backend.h>
#include <git2/indexer.h>

#include "ws_internal.h"

struct ggi_ws_cache {
    char *root;
    char *trees;
    git_repository *repo;
    int lock_fd;
    pthread_mutex_t mu;
};

static int mkdir_p(const char *path, mode_t mode)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n >= sizeof buf)
        return -1;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char ch = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, mode) != 0 && errno != EEXIST)
            return -1;
        buf[i] = ch;
    }
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

int ggi_ws_cache_open(const char *root, ggi_ws_cache **out)
{
    *out = NULL;
    if (!root || !root[0])
        return ggi_error(GG_EINVAL, "workspace cache: no root given");
    if (strlen(root) > 3000)
        return ggi_error(GG_ETOOBIG, "workspace cache: the root path is too long");
    int rc = ggi_ws_git_init();
    if (rc != GG_OK)
        return rc;
    if (mkdir_p(root, 0700) != 0)
        return ggi_error(GG_EIO, "workspace cache: cannot make '%s': %s", root, strerror(errno));
    ggi_ws_cache *c = calloc(1, sizeof *c);
    if (!c)
        return ggi_error(GG_ENOMEM, "out of memory");
    c->lock_fd = -1;
    c->root = ggi_strdup(root);
    c->trees = ggi_asprintf("%s/trees", root);
    char *objects = ggi_asprintf("%s/objects.git", root);
    char *lock = ggi_asprintf("%s/lock", root);
    if (!c->root || !c->trees || !objects || !lock) {
        rc = ggi_error(GG_ENOMEM, "out of memory");
        goto fail;
    }
    if (mkdir(c->trees, 0700) != 0 && errno != EEXIST) {
        rc = ggi_error(GG_EIO, "workspace cache: cannot make '%s': %s", c->trees,
                       strerror(errno));
        goto fail;
    }
    c->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (c->lock_fd < 0) {
        rc = ggi_error(GG_EIO, "workspace cache: cannot open '%s': %s", lock, strerror(errno));
        goto fail;
    }
    /* Two processes may make the store at once: under the lock. */
    if (flock(c->lock_fd, LOCK_EX) != 0) {
        rc = ggi_error(GG_EIO, "workspace cache: cannot lock '%s': %s", lock, strerror(errno));
        goto fail;
    }
    if (git_repository_open_bare(&c->repo, objects) < 0 &&
        git_repository_init(&c->repo, objects, 1) < 0)
        rc = ggi_ws_git_error(GG_EIO, "workspace cache: cannot make the object store '%s'",
                              objects);
    flock(c->lock_fd, LOCK_UN);
    if (rc != GG_OK)
        goto fail;
    pthread_mutex_init(&c->mu, NULL);
    free(objects);
    free(lock);
    *out = c;
    return GG_OK;
fail:
    free(objects);
    free(lock);
    if (c->lock_fd >= 0)
        close(c->lock_fd);
    git_repository_free(c->repo);
    free(c->root);
    free(c->trees);
    free(c);
    return rc;
}

void ggi_ws_cache_close(ggi_ws_cache **pc)
{
    if (!pc || !*pc)
        return;
    ggi_ws_cache *c = *pc;
    git_repository_free(c->repo);
    if (c->lock_fd >= 0)
        close(c->lock_fd);
    pthread_mutex_destroy(&c->mu);
    free(c->root);
    free(c->trees);
    free(c);
    *pc = NULL;
}

/* ---- importing ---- */

/* A task's workspace.pack (base64) decoded into *data (malloc'd), within the size cap. */
static int decode_pack(const char *b64, unsigned char **data, size_t *n)
{
    int rc = ggi_ws_b64_decode(b64, strlen(b64), data, n);
    if (rc != GG_OK)
        return rc;
    if (*n > GGI_WS_MAX_PACK) {
        free(*data);
        *data = NULL;
        return ggi_error(GG_ETOOBIG, "field 'workspace.pack' is %zu bytes, the limit is %u", *n,
                         GGI_WS_MAX_PACK);
    }
    return GG_OK;
}

static int import_pack(ggi_ws_cache *c, const char *b64)
{
    unsigned char *data = NULL;
    size_t n = 0;
    int rc = decode_pack(b64, &data, &n);
    if (rc != GG_OK)
        return rc;
    git_odb *odb = NULL;
    git_odb_writepack *wp = NULL;
    git_indexer_progress stats;
    memset(&stats, 0, sizeof stats);
    if (git_repository_odb(&odb, c->repo) < 0 || git_odb_write_pack(&wp, odb, NULL, NULL) < 0)
        rc = ggi_ws_git_error(GG_EIO, "workspace cache: cannot write a pack");
    else if (wp->append(wp, data, n, &stats) < 0 || wp->commit(wp, &stats) < 0)
        rc = ggi_ws_git_error(GG_EINVAL, "field 'workspace.pack' is not a valid git packfile");
    if (wp)
        wp->free(wp);
    git_odb_free(odb);
    free(data);
    return rc;
}

#define FETCH_NS "refs/gryphgen-fetch/"

static void drop_fetch_refs(ggi_ws_cache *c)
{
    git_reference_iterator *it = NULL;
    git_reference *ref = NULL;
    if (git_reference_iterator_glob_new(&it, c->repo, FETCH_NS "*") < 0)
        return;
    while (git_reference_next(&ref, it) == 0) {
        git_reference_delete(ref);
        git_reference_free(ref);
    }
    git_reference_iterator_free(it);
}

static int fetch_commit(ggi_ws_cache *c, const char *url, const git_oid *commit)
{
    char hex[GIT_OID_HEXSZ + 1];
    git_oid_tostr(hex, sizeof hex, commit);
    git_remote *remote = NULL;
    /* An anonymous remote without url.<base>.insteadOf rewriting: the URL is used as given
     * (and libgit2 1.5 leaks the regex match data of that lookup). */
    git_remote_create_options ro;
    git_remote_create_options_init(&ro, GIT_REMOTE_CREATE_OPTIONS_VERSION);
    ro.repository = c->repo;
    ro.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
    if (git_remote_create_with_opts(&remote, url, &ro) < 0)
        return ggi_ws_git_error(GG_ENOTFOUND, "field 'workspace.repo': '%.1024s' is not a git "
                                "URL or path", url);
    git_fetch_options fo;
    git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
    fo.update_fetchhead = 0;
    fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
    /* The commit by its id first (servers that allow it); else every branch and tag, whose
     * objects then include the commit when it is reachable from them. Their refs land in a
     * namespace of their own and are deleted after: the store keeps objects, no refs. */
    char *by_id[] = {hex};
    char *all[] = {"+refs/heads/*:" FETCH_NS "heads/*", "+refs/tags/*:" FETCH_NS "tags/*",
                   "+HEAD:" FETCH_NS "HEAD"};
    git_strarray a = {by_id, 1}, b = {all, 3};
    int rc = GG_OK;
    git_odb *odb = NULL;
    if (git_repository_odb(&odb, c->repo) < 0) {
        rc = ggi_ws_git_error(GG_EIO, "workspace cache: no object store");
        goto done;
    }
    if (git_remote_fetch(remote, &a, &fo, NULL) == 0) {
        git_odb_refresh(odb);
        if (git_odb_exists(odb, commit))
            goto done;
    }
    if (git_remote_fetch(remote, &b, &fo, NULL) < 0) {
        rc = ggi_ws_git_error(GG_ENOTFOUND, "field 'workspace.repo': cannot fetch from "
                              "'%.1024s'", url);
        goto done;
    }
    drop_fetch_refs(c);
    git_odb_refresh(odb);
    if (!git_odb_exists(odb, commit))
        rc = ggi_error(GG_ENOTFOUND, "field 'workspace.commit': %s is not in '%.1024s'", hex,
                       url);
done:
    git_odb_free(odb);
    git_remote_free(remote);
    return rc;
}

/* ---- exporting ---- */

static int write_all(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Writes tree into the directory open at dfd (closed here), then makes it 0555. */
static int export_tree(ggi_ws_cache *c, git_tree *tree, int dfd, int depth)
{
    int rc = GG_OK;
    if (depth > 256) {
        close(dfd);
        return ggi_error(GG_ETOOBIG, "workspace cache: the tree is nested too deep");
    }
    size_t n = git_tree_entrycount(tree);
    for (size_t i = 0; i < n && rc == GG_OK; i++) {
        const git_tree_entry *e = git_tree_entry_byindex(tree, i);
        const char *name = git_tree_entry_name(e);
        if (!ggi_ws_name_ok(name)) {
            rc = ggi_error(GG_EINVAL, "workspace cache: the tree holds an unsafe name '%.200s'",
                           name);
            break;
        }
        git_filemode_t mode = git_tree_entry_filemode(e);
        if (mode == GIT_FILEMODE_TREE) {
            git_tree *sub = NULL;
            int fd = -1;
            if (git_tree_lookup(&sub, c->repo, git_tree_entry_id(e)) < 0)
                rc = ggi_ws_git_error(GG_ENOTFOUND, "workspace cache: the tree of '%s' is "
                                      "missing", name);
            else if (mkdirat(dfd, name, 0700) != 0 ||
                     (fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                                                 O_CLOEXEC)) < 0)
                rc = ggi_error(GG_EIO, "workspace cache: cannot make '%s': %s", name,
                               strerror(errno));
            else
                rc = export_tree(c, sub, fd, depth + 1);
            git_tree_free(sub);
        } else if (mode == GIT_FILEMODE_COMMIT) {
            /* A submodule: an empty directory, as git leaves it before it is updated. */
            if (mkdirat(dfd, name, 0555) != 0)
                rc = ggi_error(GG_EIO, "workspace cache: cannot make '%s': %s", name,
                               strerror(errno));
        } else {
            git_blob *blob = NULL;
            if (git_blob_lookup(&blob, c->repo, git_tree_entry_id(e)) < 0) {
                rc = ggi_ws_git_error(GG_ENOTFOUND, "workspace cache: the file '%s' is missing",
                                      name);
                break;
            }
            const void *data = git_blob_rawcontent(blob);
            size_t size = (size_t)git_blob_rawsize(blob);
            if (mode == GIT_FILEMODE_LINK) {
                char target[4097];
                if (size == 0 || size >= sizeof target || memchr(data, '\0', size))
                    rc = ggi_error(GG_EINVAL, "workspace cache: the link '%s' has a bad target",
                                   name);
                else {
                    memcpy(target, data, size);
                    target[size] = '\0';
                    if (symlinkat(target, dfd, name) != 0)
                        rc = ggi_error(GG_EIO, "workspace cache: cannot make the link '%s': %s",
                                       name, strerror(errno));
                }
            } else {
                mode_t m = mode == GIT_FILEMODE_BLOB_EXECUTABLE ? 0555 : 0444;
                int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                                0600);
                if (fd < 0 || write_all(fd, data, size) != 0 || fchmod(fd, m) != 0)
                    rc = ggi_error(GG_EIO, "workspace cache: cannot write '%s': %s", name,
                                   strerror(errno));
                if (fd >= 0 && close(fd) != 0 && rc == GG_OK)
                    rc = ggi_error(GG_EIO, "workspace cache: cannot write '%s': %s", name,
                                   strerror(errno));
            }
            git_blob_free(blob);
        }
    }
    if (rc == GG_OK && fchmod(dfd, 0555) != 0)
        rc = ggi_error(GG_EIO, "workspace cache: cannot make a directory read-only: %s",
                       strerror(errno));
    close(dfd);
    return rc;
}

/* Removes the temporary directories no live exporter owns (the lock is held). */
static void clean_leftovers(ggi_ws_cache *c)
{
    DIR *d = opendir(c->trees);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, ".tmp-", 5) != 0)
            continue;
        char *p = ggi_asprintf("%s/%s", c->trees, e->d_name);
        if (p)
            ggi_ws_remove(p);
        free(p);
    }
    closedir(d);
}

static int export_base(ggi_ws_cache *c, const git_oid *tree_id, const char *final)
{
    char hex[GIT_OID_HEXSZ + 1];
    git_oid_tostr(hex, sizeof hex, tree_id);
    clean_leftovers(c);
    char *tmp = ggi_asprintf("%s/.tmp-%s-%ld", c->trees, hex, (long)getpid());
    if (!tmp)
        return ggi_error(GG_ENOMEM, "out of memory");
    git_tree *tree = NULL;
    int rc = GG_OK, fd = -1;
    if (git_tree_lookup(&tree, c->repo, tree_id) < 0) {
        rc = ggi_ws_git_error(GG_ENOTFOUND, "workspace cache: tree %s is missing", hex);
        goto done;
    }
    if (mkdir(tmp, 0700) != 0 ||
        (fd = open(tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
        rc = ggi_error(GG_EIO, "workspace cache: cannot make '%s': %s", tmp, strerror(errno));
        goto done;
    }
    if ((rc = export_tree(c, tree, fd, 0)) != GG_OK)
        goto done;
    if (rename(tmp, final) != 0) {
        struct stat st;
        if (!(errno == EEXIST || errno == ENOTEMPTY) || stat(final, &st) != 0)
            rc = ggi_error(GG_EIO, "workspace cache: cannot put the base in place at '%s': %s",
                           final, strerror(errno));
    }
done:
    git_tree_free(tree);
    ggi_ws_remove(tmp); /* nothing when renamed */
    free(tmp);
    return rc;
}

/* ---- verified sources ---- */

/* The record of (kind, text, commit): root/verified/<SHA-1 of the three>. commit may be
 * NULL (inline files: the record holds their commit). */
static char *verified_path(ggi_ws_cache *c, const char *kind, const char *text,
                           const git_oid *commit)
{
    git_oid h;
    char hex[GIT_OID_HEXSZ + 1], key[200];
    if (git_odb_hash(&h, text, strlen(text), GIT_OBJECT_BLOB) < 0)
        return NULL;
    git_oid_tostr(hex, sizeof hex, &h);
    char chex[GIT_OID_HEXSZ + 1] = "-";
    if (commit)
        git_oid_tostr(chex, sizeof chex, commit);
    int n = snprintf(key, sizeof key, "%s\n%s\n%s", kind, hex, chex);
    if (git_odb_hash(&h, key, (size_t)n, GIT_OBJECT_BLOB) < 0)
        return NULL;
    git_oid_tostr(hex, sizeof hex, &h);
    return ggi_asprintf("%s/verified/%s", c->root, hex);
}

/* The source a task names for its base: kind and text (borrowed from ws), or 0 when it
 * has none to check (it is then always built: a directory without a pack). */
static int source_of(const cJSON *ws, const char **kind, const char **text)
{
    const char *keys[] = { "pack", "repo", "dir", "files" };
    for (int i = 0; i < 4; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(ws, keys[i]);
        if (cJSON_IsString(v)) {
            *kind = keys[i];
            *text = v->valuestring;
            return 1;
        }
    }
    return 0;
}

/* Whether ws's source is recorded as holding commit (1), or not yet (0). Inline files:
 * *commit is set from the record (and must equal a "commit" the task gives). */
static int source_verified(ggi_ws_cache *c, const cJSON *ws, git_oid *commit, int have_commit)
{
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(ws, "files");
    char *printed = files ? ggi_json_print(files) : NULL;
    const char *kind = "files", *text = printed;
    if (files ? !printed : !have_commit || !source_of(ws, &kind, &text)) {
        free(printed);
        return 0;
    }
    char *p = verified_path(c, kind, text, files ? NULL : commit);
    free(printed);
    if (!p)
        return 0;
    int ok = 0;
    if (!files) {
        ok = access(p, F_OK) == 0;
    } else {
        char hex[GIT_OID_HEXSZ + 1] = "";
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        git_oid made;
        if (fd >= 0 && read(fd, hex, GIT_OID_HEXSZ) == GIT_OID_HEXSZ &&
            git_oid_fromstr(&made, hex) == 0 && (!have_commit || git_oid_equal(&made, commit))) {
            *commit = made;
            ok = 1;
        }
        if (fd >= 0)
            close(fd);
    }
    free(p);
    return ok;
}

/* Records that ws's source holds commit (the lock is held). Failing to is harmless: the
 * next call checks again. */
static void mark_verified(ggi_ws_cache *c, const cJSON *ws, const git_oid *commit)
{
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(ws, "files");
    char *printed = files ? ggi_json_print(files) : NULL;
    const char *kind = "files", *text = printed;
    if (files ? !printed : !source_of(ws, &kind, &text)) {
        free(printed);
        return;
    }
    char *p = verified_path(c, kind, text, files ? NULL : commit);
    free(printed);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/verified", c->root);
    (void)mkdir(dir, 0700);
    /* Written in place: a record is made only once its check passed, so one cut short by a
     * crash still says the truth (inline files' short record is read as none, and made
     * again). */
    int fd = p ? open(p, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600) : -1;
    if (fd >= 0) {
        char hex[GIT_OID_HEXSZ + 1];
        git_oid_tostr(hex, sizeof hex, commit);
        if (write_all(fd, hex, GIT_OID_HEXSZ) != 0)
            (void)unlink(p);
        close(fd);
    }
    free(p);
}

/* Whether the packfile in b64 holds commit, the store holding it already: the pack is
 * indexed apart, in a temporary directory under the root. 1, 0, or an error. */
static int pack_holds(ggi_ws_cache *c, const char *b64, const git_oid *commit)
{
    unsigned char *data = NULL;
    size_t n = 0;
    int rc = decode_pack(b64, &data, &n);
    if (rc != GG_OK)
        return rc;
    char *tmp = ggi_asprintf("%s/trees/.tmp-verify-%ld", c->root, (long)getpid());
    git_indexer *idx = NULL;
    git_odb *odb = NULL;
    git_odb_backend *be = NULL;
    git_indexer_progress stats;
    memset(&stats, 0, sizeof stats);
    if (!tmp) {
        rc = ggi_error(GG_ENOMEM, "out of memory");
        goto done;
    }
    ggi_ws_remove(tmp);
    if (mkdir(tmp, 0700) != 0) {
        rc = ggi_error(GG_EIO, "workspace cache: cannot make '%s': %s", tmp, strerror(errno));
        goto done;
    }
    if (git_indexer_new(&idx, tmp, 0, NULL, NULL) < 0 ||
        git_indexer_append(idx, data, n, &stats) < 0 || git_indexer_commit(idx, &stats) < 0) {
        rc = ggi_ws_git_error(GG_EINVAL, "field 'workspace.pack' is not a valid git packfile");
        goto done;
    }
    char *index = ggi_asprintf("%s/pack-%s.idx", tmp, git_indexer_name(idx));
    if (!index || git_odb_backend_one_pack(&be, index) < 0 || git_odb_new(&odb) < 0 ||
        git_odb_add_backend(odb, be, 1) < 0) {
        rc = ggi_ws_git_error(GG_EIO, "workspace cache: cannot read the pack it indexed");
        if (!odb && be)
            be->free(be);
    } else {
        rc = git_odb_exists(odb, commit) ? 1 : 0;
    }
    free(index);
done:
    git_odb_free(odb);
    git_indexer_free(idx);
    if (tmp)
        ggi_ws_remove(tmp);
    free(tmp);
    free(data);
    return rc;
}

/* Whether the repository at url (a URL or a path) holds commit, the store holding it
 * already: a path is opened and asked; a URL's advertised refs are listed (a branch or tag
 * at the commit is enough), else it is fetched from into a scratch repository of its own.
 * 1, 0, or an error. */
static int repo_holds(ggi_ws_cache *c, const char *url, const git_oid *commit)
{
    int rc = 0;
    if (!ggi_ws_is_url(url)) {
        git_repository *r = NULL;
        git_odb *odb = NULL;
        if (git_repository_open_ext(&r, url, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) == 0 &&
            git_repository_odb(&odb, r) == 0)
            rc = git_odb_exists(odb, commit) ? 1 : 0;
        git_odb_free(odb);
        git_repository_free(r);
        return rc;
    }
    git_remote *remote = NULL;
    git_remote_create_options ro;
    git_remote_create_options_init(&ro, GIT_REMOTE_CREATE_OPTIONS_VERSION);
    ro.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
    const git_remote_head **heads = NULL;
    size_t nheads = 0;
    if (git_remote_create_with_opts(&remote, url, &ro) == 0 &&
        git_remote_connect(remote, GIT_DIRECTION_FETCH, NULL, NULL, NULL) == 0 &&
        git_remote_ls(&heads, &nheads, remote) == 0) {
        for (size_t i = 0; i < nheads && !rc; i++)
            rc = git_oid_equal(&heads[i]->oid, commit);
    }
    git_remote_free(remote);
    if (rc)
        return 1;
    /* Not at a tip: fetched into a scratch repository, which shares nothing with the store. */
    char *tmp = ggi_asprintf("%s/trees/.tmp-verify-%ld", c->root, (long)getpid());
    if (!tmp)
        return ggi_error(GG_ENOMEM, "out of memory");
    ggi_ws_remove(tmp);
    ggi_ws_cache scratch;
    memset(&scratch, 0, sizeof scratch);
    if (git_repository_init(&scratch.repo, tmp, 1) < 0) {
        rc = ggi_ws_git_error(GG_EIO, "workspace cache: cannot make '%s'", tmp);
    } else {
        rc = fetch_commit(&scratch, url, commit);
        rc = rc == GG_OK ? 1 : rc == GG_ENOTFOUND ? 0 : rc;
        gg_error_clear();
    }
    git_repository_free(scratch.repo);
    ggi_ws_remove(tmp);
    free(tmp);
    return rc;
}

/* ---- the base ---- */

/* The commit's tree when the commit is in the store (0), else 1. */
static int commit_tree(ggi_ws_cache *c, const git_oid *commit, git_oid *tree)
{
    git_commit *cm = NULL;
    if (git_commit_lookup(&cm, c->repo, commit) < 0)
        return 1;
    *tree = *git_commit_tree_id(cm);
    git_commit_free(cm);
    return 0;
}

static int locked_base(ggi_ws_cache *c, const cJSON *ws, git_oid *commit, int have_commit,
                       git_oid *tree)
{
    const cJSON *pack = cJSON_GetObjectItemCaseSensitive(ws, "pack");
    const cJSON *repo = cJSON_GetObjectItemCaseSensitive(ws, "repo");
    const cJSON *dir = cJSON_GetObjectItemCaseSensitive(ws, "dir");
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(ws, "files");
    git_odb *odb = NULL;
    if (git_repository_odb(&odb, c->repo) == 0) {
        git_odb_refresh(odb);
        git_odb_free(odb);
    }
    int rc = GG_OK;
    if (files || (dir && !pack)) {
        git_oid made;
        rc = files ? ggi_ws_build_files(c->repo, files, &made)
                   : ggi_ws_build_dir(c->repo, dir->valuestring, &made);
        if (rc != GG_OK)
            return rc;
        if (have_commit && !git_oid_equal(&made, commit)) {
            char a[41], b[41];
            git_oid_tostr(a, sizeof a, commit);
            git_oid_tostr(b, sizeof b, &made);
            return ggi_error(GG_EINVAL, "field 'workspace.commit' is %s but the %s make%s %s%s",
                             a, files ? "files" : "directory", files ? "" : "s", b,
                             files ? "" : " (it changed since it was resolved)");
        }
        *commit = made;
    } else if (commit_tree(c, commit, tree) != 0) {
        /* Imported or fetched from the task's own source: that it is there now proves it. */
        if (pack)
            rc = import_pack(c, pack->valuestring);
        else if (repo)
            rc = fetch_commit(c, repo->valuestring, commit);
        if (rc != GG_OK)
            return rc;
    } else if (pack || repo) {
        /* Already in the store (another task brought it): this task's source must hold it
         * too, or the commit id would open any base to whoever names it. */
        int has = pack ? pack_holds(c, pack->valuestring, commit)
                       : repo_holds(c, repo->valuestring, commit);
        if (has < 0)
            return has;
        if (!has) {
            char a[41];
            git_oid_tostr(a, sizeof a, commit);
            return ggi_error(GG_ENOTFOUND, "field 'workspace.commit': %s is not in the %s", a,
                             pack ? "pack" : "repository 'workspace.repo' names");
        }
    }
    if (commit_tree(c, commit, tree) != 0) {
        char a[41];
        git_oid_tostr(a, sizeof a, commit);
        return ggi_error(GG_ENOTFOUND, "field 'workspace.commit': %s is not in the %s", a,
                         pack ? "pack" : "repository");
    }
    return ggi_ws_check_tree_caps(c->repo, commit, pack ? "workspace.pack" : repo ?
                                  "workspace.repo" : dir ? "workspace.dir" : "workspace.files",
                                  tree);
}

int ggi_ws_cache_base(ggi_ws_cache *c, const cJSON *resolved, char **out_dir,
                      char out_tree[41])
{
    *out_dir = NULL;
    if (out_tree)
        out_tree[0] = '\0';
    if (!c)
        return ggi_error(GG_EINVAL, "workspace cache: no cache");
    int rc = ggi_ws_check(resolved);
    if (rc != GG_OK)
        return rc;
    cJSON *owned = NULL;
    const cJSON *ws = resolved;
    const cJSON *jc = cJSON_GetObjectItemCaseSensitive(ws, "commit");
    if (!jc && cJSON_GetObjectItemCaseSensitive(ws, "repo")) {
        /* Not resolved yet: the ref is resolved here. */
        if ((rc = ggi_ws_resolve(ws, &owned)) != GG_OK)
            return rc;
        ws = owned;
        jc = cJSON_GetObjectItemCaseSensitive(ws, "commit");
    }
    git_oid commit, tree;
    int have_commit = jc != NULL;
    if (have_commit)
        git_oid_fromstr(&commit, jc->valuestring);
    pthread_mutex_lock(&c->mu);
    char hex[GIT_OID_HEXSZ + 1];
    char *final = NULL;
    struct stat st;
    /* The fast path: a source already known to hold its commit, whose base is exported. */
    int fast = source_verified(c, ws, &commit, have_commit) && commit_tree(c, &commit, &tree) == 0;
    if (fast) {
        git_oid_tostr(hex, sizeof hex, &tree);
        final = ggi_asprintf("%s/%s", c->trees, hex);
        if (!final) {
            rc = ggi_error(GG_ENOMEM, "out of memory");
            goto done;
        }
        if (lstat(final, &st) == 0 && S_ISDIR(st.st_mode))
            goto done;
        free(final);
        final = NULL;
    }
    if (flock(c->lock_fd, LOCK_EX) != 0) {
        rc = ggi_error(GG_EIO, "workspace cache: cannot lock '%s': %s", c->root,
                       strerror(errno));
        goto done;
    }
    rc = locked_base(c, ws, &commit, have_commit, &tree);
    if (rc == GG_OK)
        mark_verified(c, ws, &commit);
    if (rc == GG_OK) {
        git_oid_tostr(hex, sizeof hex, &tree);
        final = ggi_asprintf("%s/%s", c->trees, hex);
        if (!final)
            rc = ggi_error(GG_ENOMEM, "out of memory");
        else if (!(lstat(final, &st) == 0 && S_ISDIR(st.st_mode)))
            rc = export_base(c, &tree, final);
    }
    flock(c->lock_fd, LOCK_UN);
done:
    pthread_mutex_unlock(&c->mu);
    cJSON_Delete(owned);
    if (rc != GG_OK) {
        free(final);
        return rc;
    }
    *out_dir = final;
    if (out_tree)
        memcpy(out_tree, hex, 41);
    return GG_OK;
}
