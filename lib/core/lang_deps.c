/*
 * lang_deps.c - the libraries a task may name in "requires" (docs/tasks.md) that this machine
 * has, found where the language runners look for them: Go packages under the GOPATH Go jobs
 * get (Debian's golang-*-dev), crates of Debian's cargo registry the Rust jobs build against
 * offline, npm packages on the NODE_PATH JavaScript jobs get, and the system libraries C and
 * C++ jobs compile against (Boost's headers, OpenSSL's libcrypto). A worker announces the
 * list in its hello; the scheduler and local runs compare a task's "requires" with it.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lang.h"

#define GO_SRC "/usr/share/gocode/src"
#define CARGO_REGISTRY "/usr/share/cargo/registry"

typedef struct names {
    char **v;
    size_t n, cap;
    int oom;
} names;

static void add(names *l, char *s)
{
    if (!s) {
        l->oom = 1;
        return;
    }
    if (l->n >= GGI_LANG_MAX_DEPS) {
        free(s);
        return;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            free(s);
            l->oom = 1;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = s;
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Calls fn for each visible subdirectory of dir (at most 4096 looked at). */
static void each_subdir(const char *dir, void (*fn)(names *, const char *, const char *, int),
                        names *l, int depth)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    int seen = 0;
    while ((e = readdir(d)) && seen++ < 4096 && !l->oom) {
        if (e->d_name[0] == '.')
            continue;
        char *path = ggi_asprintf("%s/%s", dir, e->d_name);
        if (path && is_dir(path))
            fn(l, path, e->d_name, depth);
        l->oom |= path == NULL;
        free(path);
    }
    closedir(d);
}

/* Go: host/owner/repo (gopkg.in/name.vN: host/name), as "go:..." relative to GO_SRC. */
static void go_dir(names *l, const char *path, const char *name, int depth)
{
    (void)name;
    int want = strncmp(path + strlen(GO_SRC) + 1, "gopkg.in/", 9) == 0 ? 2 : 3;
    if (depth + 1 >= want)
        add(l, ggi_asprintf("go:%s", path + strlen(GO_SRC) + 1));
    else
        each_subdir(path, go_dir, l, depth + 1);
}

/* A registry directory is name-version: the name is what comes before the last '-' that a
 * digit follows. */
static void crate_dir(names *l, const char *path, const char *name, int depth)
{
    (void)path;
    (void)depth;
    const char *cut = NULL;
    for (const char *p = name; (p = strchr(p, '-')); p++)
        if (p[1] >= '0' && p[1] <= '9')
            cut = p;
    if (cut && cut > name)
        add(l, ggi_asprintf("rust:%.*s", (int)(cut - name), name));
}

/* npm: a package directory, or a scope (@scope) holding them. */
static void npm_dir(names *l, const char *path, const char *name, int depth)
{
    if (name[0] == '@' && depth == 0) {
        each_subdir(path, npm_dir, l, 1);
        return;
    }
    if (depth == 1) {
        const char *scope = strrchr(path, '/');
        const char *start = scope;
        while (start > path && start[-1] != '/')
            start--;
        add(l, ggi_asprintf("npm:%.*s/%s", (int)(scope - start), start, name));
    } else
        add(l, ggi_asprintf("npm:%s", name));
}

static int by_text(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

cJSON *ggi_lang_deps_present(void)
{
    names l = { 0 };
    /* System libraries by the header that says they are installed. */
    static const char *const system[][2] = { { "boost", "/usr/include/boost/version.hpp" },
                                             { "openssl", "/usr/include/openssl/md5.h" } };
    for (size_t i = 0; i < sizeof system / sizeof system[0]; i++)
        if (access(system[i][1], R_OK) == 0)
            add(&l, strdup(system[i][0]));
    each_subdir(GO_SRC, go_dir, &l, 0);
    each_subdir(CARGO_REGISTRY, crate_dir, &l, 0);
    char *np = strdup(ggi_lang_js_node_path()), *save = NULL;
    l.oom |= np == NULL;
    for (char *dir = np ? strtok_r(np, ":", &save) : NULL; dir; dir = strtok_r(NULL, ":", &save))
        each_subdir(dir, npm_dir, &l, 0);
    free(np);
    if (l.n)
        qsort(l.v, l.n, sizeof *l.v, by_text);
    cJSON *out = l.oom ? NULL : cJSON_CreateArray();
    for (size_t i = 0; i < l.n; i++) {
        if (out && (i == 0 || strcmp(l.v[i], l.v[i - 1])) &&
            !cJSON_AddItemToArray(out, cJSON_CreateString(l.v[i]))) {
            cJSON_Delete(out);
            out = NULL;
        }
    }
    for (size_t i = 0; i < l.n; i++)
        free(l.v[i]);
    free(l.v);
    return out;
}

int ggi_lang_deps_has(const cJSON *have, const char *need)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, have)
    {
        const char *h = cJSON_GetStringValue(e);
        if (!h)
            continue;
        size_t n = strlen(h);
        if (!strcmp(h, need) ||
            (!strncmp(h, "go:", 3) && !strncmp(h, need, n) && need[n] == '/'))
            return 1;
    }
    return 0;
}

int ggi_lang_deps_cover(const cJSON *have, const cJSON *requires, const char **missing)
{
    const cJSON *e;
    if (missing)
        *missing = NULL;
    cJSON_ArrayForEach(e, requires)
    {
        const char *need = cJSON_GetStringValue(e);
        if (need && !ggi_lang_deps_has(have, need)) {
            if (missing)
                *missing = need;
            return 0;
        }
    }
    return 1;
}
