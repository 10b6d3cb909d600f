/*
 * workspace.c - checking a task's "workspace" value and resolving it where its source can
 * be read (workspace.h), plus the small helpers lib/workspace shares (ws_internal.h):
 * libgit2's set-up, its errors, and the check of a relative path.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <git2/sys/mempack.h>
#include <git2/sys/odb_backend.h>

#include "../core/task.h"
#include "ws_internal.h"

/* ---- libgit2 ---- */

static pthread_once_t git_once = PTHREAD_ONCE_INIT;
static int git_init_rc;

static void git_init_once(void)
{
    git_init_rc = git_libgit2_init();
}

int ggi_ws_git_init(void)
{
    pthread_once(&git_once, git_init_once);
    if (git_init_rc < 0)
        return ggi_error(GG_EIO, "libgit2 could not be initialised");
    return GG_OK;
}

int ggi_ws_git_error(int status, const char *fmt, ...)
{
    char what[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const git_error *e = git_error_last();
    if (e && e->message && e->message[0])
        return ggi_error(status, "%s: %s", what, e->message);
    return ggi_error(status, "%s", what);
}

/* ---- paths ---- */

#define WS_STR2(x) #x
#define WS_STR(x) WS_STR2(x)

const char *ggi_ws_path_problem(const char *path, size_t len)
{
    if (len == 0)
        return "is empty";
    if (memchr(path, '\0', len))
        return "holds a NUL character";
    if (len > GGI_WS_MAX_PATH)
        return "is longer than the limit of " WS_STR(GGI_WS_MAX_PATH) " bytes";
    if (path[0] == '/')
        return "is absolute";
    size_t i = 0;
    while (i <= len) {
        size_t j = i;
        while (j < len && path[j] != '/')
            j++;
        size_t n = j - i;
        if (n == 0)
            return "has an empty component";
        if (n == 1 && path[i] == '.')
            return "has a '.' component";
        if (n == 2 && path[i] == '.' && path[i + 1] == '.')
            return "leaves the workspace";
        if (n == 4 && strncasecmp(path + i, ".git", 4) == 0)
            return "names git's own directory (.git)";
        i = j + 1;
        if (j == len)
            break;
    }
    return NULL;
}

int ggi_ws_name_ok(const char *name)
{
    return !strchr(name, '/') && ggi_ws_path_problem(name, strlen(name)) == NULL;
}

int ggi_ws_is_url(const char *s)
{
    if (strstr(s, "://"))
        return 1;
    /* git's scp-like form, user@host:path: a ':' before any '/'. */
    const char *colon = strchr(s, ':');
    const char *slash = strchr(s, '/');
    return colon && colon != s && (!slash || colon < slash) && s[0] != '.';
}

/* ---- check ---- */

static int is_hex40(const char *s)
{
    if (strlen(s) != 40)
        return 0;
    for (int i = 0; i < 40; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int check_files(const cJSON *files)
{
    if (!cJSON_IsObject(files))
        return ggi_error(GG_EINVAL, "field 'workspace.files' must be an object of path: content");
    size_t count = 0, bytes = 0;
    for (const cJSON *f = files->child; f; f = f->next) {
        if (++count > GGI_WS_MAX_FILES)
            return ggi_error(GG_ETOOBIG, "field 'workspace.files' holds more than %d files, "
                             "the limit", GGI_WS_MAX_FILES);
        const char *key = f->string ? f->string : "";
        const char *why = ggi_ws_path_problem(key, strlen(key));
        if (why)
            return ggi_error(GG_EINVAL, "field 'workspace.files' path '%.200s' %s", key, why);
        if (!cJSON_IsString(f) || !f->valuestring)
            return ggi_error(GG_EINVAL, "field 'workspace.files' path '%.200s' must have a "
                             "string (the file's content)", key);
        size_t n = strlen(f->valuestring);
        if (n > GGI_WS_MAX_FILE_BYTES)
            return ggi_error(GG_ETOOBIG, "field 'workspace.files' path '%.200s' is %zu bytes, "
                             "the limit is %u", key, n, GGI_WS_MAX_FILE_BYTES);
        bytes += n;
        if (bytes > GGI_WS_MAX_INLINE_BYTES)
            return ggi_error(GG_ETOOBIG, "field 'workspace.files' holds more than %u bytes, "
                             "the limit", GGI_WS_MAX_INLINE_BYTES);
    }
    if (count == 0)
        return GG_OK;
    /* No path given twice, and no path that is also another's directory ("a", "a/b"). */
    const char **keys = malloc(count * sizeof *keys);
    if (!keys)
        return ggi_error(GG_ENOMEM, "out of memory");
    size_t k = 0;
    for (const cJSON *f = files->child; f; f = f->next)
        keys[k++] = f->string;
    qsort(keys, count, sizeof *keys, cmp_str);
    int rc = GG_OK;
    char prefix[GGI_WS_MAX_PATH + 1];
    for (size_t i = 0; i < count && rc == GG_OK; i++) {
        if (i > 0 && strcmp(keys[i - 1], keys[i]) == 0) {
            rc = ggi_error(GG_EINVAL, "field 'workspace.files' path '%.200s' is given twice",
                           keys[i]);
            break;
        }
        for (const char *s = strchr(keys[i], '/'); s; s = strchr(s + 1, '/')) {
            size_t n = (size_t)(s - keys[i]);
            memcpy(prefix, keys[i], n);
            prefix[n] = '\0';
            const char *p = prefix;
            if (bsearch(&p, keys, count, sizeof *keys, cmp_str)) {
                rc = ggi_error(GG_EINVAL, "field 'workspace.files' path '%.200s' is a file and "
                               "also the directory of '%.200s'", prefix, keys[i]);
                break;
            }
        }
    }
    free(keys);
    return rc;
}

static int check_location(const cJSON *v, const char *field)
{
    if (!cJSON_IsString(v) || !v->valuestring || !v->valuestring[0])
        return ggi_error(GG_EINVAL, "field 'workspace.%s' must be a non-empty string", field);
    size_t n = strlen(v->valuestring);
    if (n > GGI_WS_MAX_LOCATION)
        return ggi_error(GG_ETOOBIG, "field 'workspace.%s' is %zu bytes, the limit is %d",
                         field, n, GGI_WS_MAX_LOCATION);
    return GG_OK;
}

/* The task reader (lib/core/task.c) runs the whole check of a "workspace" once this module
 * is linked in; lib/core does not call into it. */
__attribute__((constructor)) static void register_task_check(void)
{
    ggi_task_set_workspace_check(ggi_ws_check);
}

int ggi_ws_check(const cJSON *ws)
{
    static const char *const known[] = {"repo", "ref", "dir", "files", "commit", "pack"};
    if (!cJSON_IsObject(ws))
        return ggi_error(GG_EINVAL, "field 'workspace' must be an object with one of repo, "
                         "dir or files");
    const cJSON *seen[6] = {0};
    for (const cJSON *c = ws->child; c; c = c->next) {
        size_t k = 0;
        while (k < 6 && (!c->string || strcmp(c->string, known[k]) != 0))
            k++;
        if (k == 6)
            return ggi_error(GG_EINVAL, "field 'workspace.%.64s' is not known (repo, ref, dir, "
                             "files, commit, pack)", c->string ? c->string : "");
        if (seen[k])
            return ggi_error(GG_EINVAL, "field 'workspace.%s' is given twice", known[k]);
        seen[k] = c;
    }
    const cJSON *repo = seen[0], *ref = seen[1], *dir = seen[2], *files = seen[3],
                *commit = seen[4], *pack = seen[5];
    int forms = !!repo + !!dir + !!files;
    if (forms != 1)
        return ggi_error(GG_EINVAL, "field 'workspace' must have exactly one of repo, dir or "
                         "files (it has %d)", forms);
    int rc;
    if (repo && (rc = check_location(repo, "repo")) != GG_OK)
        return rc;
    if (dir && (rc = check_location(dir, "dir")) != GG_OK)
        return rc;
    if (ref) {
        if (!repo)
            return ggi_error(GG_EINVAL, "field 'workspace.ref' goes only with "
                             "'workspace.repo'");
        if (!cJSON_IsString(ref) || !ref->valuestring || !ref->valuestring[0])
            return ggi_error(GG_EINVAL, "field 'workspace.ref' must be a non-empty string");
        size_t n = strlen(ref->valuestring);
        if (n > GGI_WS_MAX_REF)
            return ggi_error(GG_ETOOBIG, "field 'workspace.ref' is %zu bytes, the limit is %d",
                             n, GGI_WS_MAX_REF);
        for (const char *p = ref->valuestring; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                return ggi_error(GG_EINVAL, "field 'workspace.ref' holds a control character");
    }
    if (files && (rc = check_files(files)) != GG_OK)
        return rc;
    if (commit && (!cJSON_IsString(commit) || !commit->valuestring ||
                   !is_hex40(commit->valuestring)))
        return ggi_error(GG_EINVAL, "field 'workspace.commit' must be 40 lower-case hex "
                         "digits");
    if (pack) {
        if (!cJSON_IsString(pack) || !pack->valuestring)
            return ggi_error(GG_EINVAL, "field 'workspace.pack' must be a base64 string");
        if (!commit)
            return ggi_error(GG_EINVAL, "field 'workspace.pack' needs 'workspace.commit'");
        if (files)
            return ggi_error(GG_EINVAL, "field 'workspace.pack' does not go with "
                             "'workspace.files'");
        size_t n = strlen(pack->valuestring);
        size_t max = ((size_t)GGI_WS_MAX_PACK + 2) / 3 * 4;
        if (n > max + max / 16) /* room for line breaks */
            return ggi_error(GG_ETOOBIG, "field 'workspace.pack' is %zu bytes of base64, the "
                             "limit is %u bytes of packfile", n, GGI_WS_MAX_PACK);
        for (const char *p = pack->valuestring; *p; p++) {
            unsigned char ch = (unsigned char)*p;
            if (!(isalnum(ch) || ch == '+' || ch == '/' || ch == '=' || isspace(ch)))
                return ggi_error(GG_EINVAL, "field 'workspace.pack' is not base64 (character "
                                 "%zu)", (size_t)(p - pack->valuestring));
        }
    }
    return GG_OK;
}

/* ---- resolve ---- */

/* A repository whose objects live in memory only. */
static int mem_repo(git_repository **out)
{
    git_odb *odb = NULL;
    git_odb_backend *mp = NULL;
    *out = NULL;
    if (git_odb_new(&odb) < 0 || git_mempack_new(&mp) < 0)
        goto fail;
    if (git_odb_add_backend(odb, mp, 999) < 0) {
        mp->free(mp);
        goto fail;
    }
    if (git_repository_wrap_odb(out, odb) < 0)
        goto fail;
    git_odb_free(odb);
    return GG_OK;
fail:
    git_odb_free(odb);
    return ggi_ws_git_error(GG_EIO, "workspace: cannot make an object store in memory");
}

/* The commit and its tree (not its history: the base is the tree) as base64 packfile. */
static int pack_commit(git_repository *repo, const git_oid *commit, const char *field,
                       char **out)
{
    git_packbuilder *pb = NULL;
    git_buf buf = {0};
    int rc;
    *out = NULL;
    if (git_packbuilder_new(&pb, repo) < 0 || git_packbuilder_insert_commit(pb, commit) < 0 ||
        git_packbuilder_write_buf(&buf, pb) < 0) {
        rc = ggi_ws_git_error(GG_EIO, "field '%s': cannot pack the base", field);
        goto done;
    }
    if (buf.size > GGI_WS_MAX_PACK) {
        rc = ggi_error(GG_ETOOBIG, "field 'workspace.pack': the base of '%s' packs to %zu "
                       "bytes, the limit is %u (give a repository URL the workers can fetch)",
                       field, buf.size, GGI_WS_MAX_PACK);
        goto done;
    }
    rc = ggi_ws_b64_encode(buf.ptr, buf.size, out);
done:
    git_buf_dispose(&buf);
    git_packbuilder_free(pb);
    return rc;
}

static int resolve_local(const char *path, const char *ref, git_oid *out, char **pack)
{
    git_repository *repo = NULL;
    git_object *obj = NULL, *peeled = NULL;
    struct stat st;
    int rc;
    if (stat(path, &st) != 0)
        return ggi_error(GG_ENOTFOUND, "field 'workspace.repo': no git repository at '%.1024s' "
                         "(%s)", path, strerror(errno));
    int e = git_repository_open_ext(&repo, path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL);
    if (e < 0)
        return ggi_ws_git_error(GG_ENOTFOUND, "field 'workspace.repo': no git repository at "
                                "'%.1024s'", path);
    e = git_revparse_single(&obj, repo, ref);
    if (e == GIT_EAMBIGUOUS) {
        rc = ggi_error(GG_EINVAL, "field 'workspace.ref': '%s' is ambiguous in '%.1024s' "
                       "(give more digits)", ref, path);
        goto done;
    }
    if (e < 0) {
        rc = ggi_error(GG_ENOTFOUND, "field 'workspace.ref': no commit '%s' in '%.1024s'", ref,
                       path);
        goto done;
    }
    if (git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT) < 0) {
        rc = ggi_error(GG_ENOTFOUND, "field 'workspace.ref': '%s' in '%.1024s' is a %s, not a "
                       "commit", ref, path, git_object_type2string(git_object_type(obj)));
        goto done;
    }
    *out = *git_object_id(peeled);
    if ((rc = ggi_ws_check_tree_caps(repo, out, "workspace.repo", NULL)) != GG_OK)
        goto done;
    if (pack)
        rc = pack_commit(repo, out, "workspace.repo", pack);
done:
    git_object_free(peeled);
    git_object_free(obj);
    git_repository_free(repo);
    return rc;
}

/* A URL: its refs are listed (no objects are fetched here; the worker fetches). */
static int resolve_url(const char *url, const char *ref, git_oid *out)
{
    size_t rlen = strlen(ref);
    if (rlen == 40 && is_hex40(ref))
        return git_oid_fromstr(out, ref) < 0 ? ggi_error(GG_EINVAL, "field 'workspace.ref' "
                                                         "is not a commit id") : GG_OK;
    git_remote *remote = NULL;
    git_remote_callbacks cb;
    const git_remote_head **heads = NULL;
    size_t n = 0;
    int rc;
    git_remote_init_callbacks(&cb, GIT_REMOTE_CALLBACKS_VERSION);
    if (git_remote_create_detached(&remote, url) < 0)
        return ggi_ws_git_error(GG_ENOTFOUND, "field 'workspace.repo': '%.1024s' is not a git "
                                "URL", url);
    if (git_remote_connect(remote, GIT_DIRECTION_FETCH, &cb, NULL, NULL) < 0 ||
        git_remote_ls(&heads, &n, remote) < 0) {
        rc = ggi_ws_git_error(GG_ENOTFOUND, "field 'workspace.repo': no git repository "
                              "reachable at '%.1024s'", url);
        goto done;
    }
    /* In git's order: the name itself, then refs/, refs/tags/, refs/heads/; a tag's
     * peeled entry ("^{}") wins over the tag object. */
    static const char *const pre[] = {"", "refs/", "refs/tags/", "refs/heads/"};
    rc = ggi_error(GG_ENOTFOUND, "field 'workspace.ref': no branch or tag '%s' at '%.1024s' "
                   "(the ref of a URL is HEAD, a branch, a tag or a full commit id)", ref, url);
    for (size_t p = 0; p < 4 && rc != GG_OK; p++) {
        size_t plen = strlen(pre[p]);
        const git_remote_head *hit = NULL;
        int peeled = 0;
        for (size_t i = 0; i < n; i++) {
            const char *name = heads[i]->name;
            if (strncmp(name, pre[p], plen) != 0 || strncmp(name + plen, ref, rlen) != 0)
                continue;
            const char *rest = name + plen + rlen;
            if (rest[0] == '\0' && !peeled)
                hit = heads[i];
            else if (strcmp(rest, "^{}") == 0) {
                hit = heads[i];
                peeled = 1;
            }
        }
        if (hit) {
            *out = hit->oid;
            rc = GG_OK;
        }
    }
done:
    git_remote_free(remote);
    return rc;
}

int ggi_ws_resolve(const cJSON *ws, cJSON **out)
{
    return ggi_ws_resolve_ex(ws, 0, out);
}

int ggi_ws_resolve_ex(const cJSON *ws, int flags, cJSON **out)
{
    *out = NULL;
    if (flags & ~GGI_WS_RESOLVE_NO_PACK)
        return ggi_error(GG_EINVAL, "workspace: unknown resolve flags 0x%x", (unsigned)flags);
    const int want_pack = !(flags & GGI_WS_RESOLVE_NO_PACK);
    int rc = ggi_ws_check(ws);
    if (rc != GG_OK)
        return rc;
    if (cJSON_GetObjectItemCaseSensitive(ws, "commit")) {
        *out = cJSON_Duplicate(ws, 1);
        return *out ? GG_OK : ggi_error(GG_ENOMEM, "out of memory");
    }
    if ((rc = ggi_ws_git_init()) != GG_OK)
        return rc;
    const cJSON *repo = cJSON_GetObjectItemCaseSensitive(ws, "repo");
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(ws, "ref");
    const cJSON *dir = cJSON_GetObjectItemCaseSensitive(ws, "dir");
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(ws, "files");
    git_oid commit;
    char *pack = NULL;
    if (repo) {
        const char *r = ref ? ref->valuestring : "HEAD";
        if (ggi_ws_is_url(repo->valuestring))
            rc = resolve_url(repo->valuestring, r, &commit);
        else
            rc = resolve_local(repo->valuestring, r, &commit, want_pack ? &pack : NULL);
    } else {
        git_repository *mem = NULL;
        if ((rc = mem_repo(&mem)) != GG_OK)
            return rc;
        if (dir) {
            rc = ggi_ws_build_dir(mem, dir->valuestring, &commit);
            if (rc == GG_OK && want_pack)
                rc = pack_commit(mem, &commit, "workspace.dir", &pack);
        } else {
            rc = ggi_ws_build_files(mem, files, &commit);
        }
        git_repository_free(mem);
    }
    if (rc != GG_OK) {
        free(pack);
        return rc;
    }
    char hex[GIT_OID_HEXSZ + 1];
    git_oid_tostr(hex, sizeof hex, &commit);
    cJSON *o = cJSON_Duplicate(ws, 1);
    if (!o || ggi_json_add_str(o, "commit", hex) != GG_OK ||
        (pack && ggi_json_add_str(o, "pack", pack) != GG_OK)) {
        cJSON_Delete(o);
        free(pack);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    free(pack);
    *out = o;
    return GG_OK;
}
