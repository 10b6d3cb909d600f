/*
 * exec_request.c - the common checks of an executor request (exec_request.h): argv (count,
 * types, bytes together with env), files (relative paths without "..", none given twice,
 * total content), env (names without '=', string values), stdin, the limits object (known
 * keys, ranges, the backend's defaults), min_isolation (a known level) and workdir (an
 * existing directory of the host, given by an absolute path).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "exec_request.h"
#include "sandbox.h"

int ggi_exec_request_parse(const char *json, cJSON **out)
{
    *out = NULL;
    if (!json)
        return ggi_error(GG_EINVAL, "request is NULL");
    size_t len = strlen(json);
    if (len > GGI_EXEC_MAX_REQUEST)
        return ggi_error(GG_EINVAL, "request is %zu bytes, the limit is %u", len,
                         GGI_EXEC_MAX_REQUEST);
    if (ggi_json_parse(json, len, out))
        return ggi_error_wrap("request: ");
    return GG_OK;
}

/* Relative, no "..", names a file (last component not empty or "."); strict: no empty or
 * "." component anywhere. */
static int check_path(const char *p, size_t i, int strict)
{
    size_t n = strlen(p);
    if (n == 0)
        return ggi_error(GG_EINVAL, "files[%zu].path is empty", i);
    if (n > GGI_EXEC_MAX_PATH)
        return ggi_error(GG_EINVAL, "files[%zu].path is longer than %d bytes", i,
                         GGI_EXEC_MAX_PATH);
    if (p[0] == '/')
        return ggi_error(GG_EINVAL, "files[%zu].path '%s' must be relative, not absolute", i, p);
    const char *c = p;
    for (;;) {
        const char *slash = strchr(c, '/');
        size_t len = slash ? (size_t)(slash - c) : strlen(c);
        int empty = len == 0 || (len == 1 && c[0] == '.');
        if (len == 2 && c[0] == '.' && c[1] == '.')
            return ggi_error(GG_EINVAL, "files[%zu].path '%s' must not contain '..'", i, p);
        if (strict && empty)
            return ggi_error(GG_EINVAL, "files[%zu].path '%s' has an empty or '.' component",
                             i, p);
        if (!slash) {
            if (empty)
                return ggi_error(GG_EINVAL, "files[%zu].path '%s' does not name a file", i, p);
            break;
        }
        c = slash + 1;
    }
    return GG_OK;
}

static int check_files(const cJSON *files, int strict)
{
    if (!cJSON_IsArray(files))
        return ggi_error(GG_EINVAL, "field 'files' must be an array");
    int count = cJSON_GetArraySize(files);
    if (count > GGI_EXEC_MAX_FILES)
        return ggi_error(GG_EINVAL, "field 'files' has %d entries, the limit is %d", count,
                         GGI_EXEC_MAX_FILES);
    size_t total = 0, i = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, files) {
        if (!cJSON_IsObject(f))
            return ggi_error(GG_EINVAL, "files[%zu] must be an object with path and content", i);
        const char *path, *content;
        if (ggi_json_string(f, "path", 1, 0, &path) ||
            ggi_json_string(f, "content", 1, 0, &content))
            return ggi_error_wrap("files[%zu]: ", i);
        int rc = check_path(path, i, strict);
        if (rc)
            return rc;
        size_t len = strlen(content);
        if (len > GGI_EXEC_MAX_BYTES - total)
            return ggi_error(GG_EINVAL, "field 'files' holds more than %u bytes of content",
                             GGI_EXEC_MAX_BYTES);
        total += len;
        /* A path given twice, or a file that another path uses as a directory. */
        size_t k = 0, pl = strlen(path);
        const cJSON *g;
        cJSON_ArrayForEach(g, files) {
            if (k++ >= i)
                break;
            const char *q = cJSON_GetObjectItemCaseSensitive(g, "path")->valuestring;
            size_t ql = strlen(q);
            if (!strcmp(q, path) || (ql < pl && !strncmp(q, path, ql) && path[ql] == '/') ||
                (pl < ql && !strncmp(q, path, pl) && q[pl] == '/'))
                return ggi_error(GG_EINVAL, "files[%zu].path '%s' is given twice or is "
                                            "already a directory", i, path);
        }
        i++;
    }
    return GG_OK;
}

static int check_env(const cJSON *env)
{
    if (!cJSON_IsObject(env))
        return ggi_error(GG_EINVAL, "field 'env' must be an object of strings");
    if (cJSON_GetArraySize(env) > GGI_EXEC_MAX_ENV)
        return ggi_error(GG_EINVAL, "field 'env' has more than %d entries", GGI_EXEC_MAX_ENV);
    const cJSON *e;
    cJSON_ArrayForEach(e, env) {
        const char *k = e->string;
        if (!k || !*k || strchr(k, '='))
            return ggi_error(GG_EINVAL, "env: name '%s' is empty or contains '='", k ? k : "");
        if (!cJSON_IsString(e) || !e->valuestring)
            return ggi_error(GG_EINVAL, "env: value of '%s' must be a string", k);
    }
    return GG_OK;
}

static int check_limits(const cJSON *limits, const ggi_exec_policy *p, ggi_exec_request *j)
{
    static const char *const known[] = { "timeout_s", "cpu_s", "memory_mb", "max_output",
                                         "nproc", "nofile", "fsize_mb", "cpus" };
    size_t nknown = sizeof known / sizeof known[0] - (p->allow_cpus ? 0 : 1);
    j->timeout_s = p->timeout_s;
    j->max_output = p->max_output;
    j->nofile = p->nofile;
    j->fsize_mb = p->fsize_mb;
    j->memory_mb = p->memory_mb;
    j->nproc = p->nproc;
    j->cpus = p->cpus;
    if (!limits || cJSON_IsNull(limits))
        return GG_OK;
    if (!cJSON_IsObject(limits))
        return ggi_error(GG_EINVAL, "field 'limits' must be an object");
    const cJSON *l;
    cJSON_ArrayForEach(l, limits) {
        size_t k = 0;
        while (k < nknown && strcmp(known[k], l->string ? l->string : ""))
            k++;
        if (k == nknown)
            return ggi_error(GG_EINVAL, "limits: unknown field '%s'", l->string ? l->string : "");
    }
    int rc;
    if ((rc = ggi_json_number(limits, "timeout_s", 0, 0.001, GGI_EXEC_MAX_TIMEOUT_S,
                              &j->timeout_s)) ||
        (rc = ggi_json_number(limits, "cpu_s", 0, 0.001, GGI_EXEC_MAX_TIMEOUT_S, &j->cpu_s)) ||
        (rc = ggi_json_int(limits, "memory_mb", 0, 1, 1LL << 24, &j->memory_mb)) ||
        (rc = ggi_json_int(limits, "max_output", 0, 0, GGI_EXEC_MAX_BYTES, &j->max_output)) ||
        (rc = ggi_json_int(limits, "nproc", 0, 1, 1LL << 22, &j->nproc)) ||
        (rc = ggi_json_int(limits, "nofile", 0, 3, 1LL << 20, &j->nofile)) ||
        (rc = ggi_json_int(limits, "fsize_mb", 0, 1, 1LL << 24, &j->fsize_mb)) ||
        (p->allow_cpus && (rc = ggi_json_number(limits, "cpus", 0, 0.01, 1024, &j->cpus))))
        return ggi_error_wrap("limits: ");
    return GG_OK;
}

/* One directory of the host a request names (field says which, for messages). */
static int check_host_dir(const char *field, const char *w)
{
    if (w[0] != '/')
        return ggi_error(GG_EINVAL, "field '%s' must be an absolute path, not '%.200s'", field,
                         w);
    if (strcmp(w, "/") == 0)
        return ggi_error(GG_EINVAL, "field '%s' must not be '/'", field);
    struct stat st;
    if (lstat(w, &st) != 0)
        return ggi_error(GG_EINVAL, "field '%s': '%.200s' cannot be used: %s", field, w,
                         strerror(errno));
    if (S_ISLNK(st.st_mode))
        return ggi_error(GG_EINVAL, "field '%s': '%.200s' is a symbolic link", field, w);
    if (!S_ISDIR(st.st_mode))
        return ggi_error(GG_EINVAL, "field '%s': '%.200s' is not a directory", field, w);
    return GG_OK;
}

/* "workdir": a directory the caller prepared (a workspace task's copy of its base), and
 * "overlay": the layers mounted there instead (an overlay copy, overlay.h). */
static int check_workdir(const cJSON *req, ggi_exec_request *j)
{
    const char *w = NULL;
    if (ggi_json_string(req, "workdir", 0, GGI_EXEC_MAX_PATH, &w))
        return gg_error_last_code();
    const cJSON *ov = cJSON_GetObjectItemCaseSensitive(req, "overlay");
    if (ov && cJSON_IsNull(ov))
        ov = NULL;
    if (ov && !w)
        return ggi_error(GG_EINVAL, "field 'overlay' needs a 'workdir' (its mount point)");
    if (!w)
        return GG_OK;
    int rc = check_host_dir("workdir", w);
    if (rc || !ov)
        goto done;
    if (!cJSON_IsObject(ov))
        return ggi_error(GG_EINVAL, "field 'overlay' must be an object");
    const char *names[] = { "lower", "upper", "work" }, *paths[3] = { NULL, NULL, NULL };
    const cJSON *k;
    cJSON_ArrayForEach(k, ov) {
        if (strcmp(k->string, "lower") && strcmp(k->string, "upper") && strcmp(k->string, "work"))
            return ggi_error(GG_EINVAL, "field 'overlay.%.64s' is unknown", k->string);
    }
    for (int i = 0; i < 3 && !rc; i++) {
        char field[32];
        snprintf(field, sizeof field, "overlay.%s", names[i]);
        if (ggi_json_string(ov, names[i], 1, GGI_EXEC_MAX_PATH, &paths[i]))
            return ggi_error_wrap("field 'overlay': ");
        rc = check_host_dir(field, paths[i]);
    }
    j->ovl_lower = paths[0];
    j->ovl_upper = paths[1];
    j->ovl_work = paths[2];
done:
    if (!rc)
        j->workdir = w;
    return rc;
}

int ggi_exec_request_check(const cJSON *req, const ggi_exec_policy *p, ggi_exec_request *j)
{
    memset(j, 0, sizeof *j);
    if (!cJSON_IsObject(req))
        return ggi_error(GG_EINVAL, "request must be a JSON object");
    const cJSON *argv = cJSON_GetObjectItemCaseSensitive(req, "argv");
    if (!argv || cJSON_IsNull(argv))
        return ggi_error(GG_EINVAL, "missing field 'argv'");
    if (!cJSON_IsArray(argv))
        return ggi_error(GG_EINVAL, "field 'argv' must be an array of strings");
    int argc = cJSON_GetArraySize(argv);
    if (argc == 0)
        return ggi_error(GG_EINVAL, "field 'argv' must not be empty");
    if (argc > GGI_EXEC_MAX_ARGV)
        return ggi_error(GG_EINVAL, "field 'argv' has %d entries, the limit is %d", argc,
                         GGI_EXEC_MAX_ARGV);
    size_t arg_bytes = 0;
    int i = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, argv) {
        if (!cJSON_IsString(a) || !a->valuestring)
            return ggi_error(GG_EINVAL, "argv[%d] must be a string", i);
        if (i == 0 && !a->valuestring[0])
            return ggi_error(GG_EINVAL, "argv[0] must not be empty");
        arg_bytes += strlen(a->valuestring) + 1;
        i++;
    }
    j->argv = argv;
    j->argc = argc;

    int rc;
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(req, "files");
    if (files && !cJSON_IsNull(files)) {
        if ((rc = check_files(files, p->strict_paths)))
            return rc;
        j->files = files;
    }
    const cJSON *env = cJSON_GetObjectItemCaseSensitive(req, "env");
    if (env && !cJSON_IsNull(env)) {
        if ((rc = check_env(env)))
            return rc;
        j->env = env;
        cJSON_ArrayForEach(a, env)
            arg_bytes += strlen(a->string) + strlen(a->valuestring) + 2;
    }
    if (arg_bytes > GGI_EXEC_MAX_ARGS_BYTES)
        return ggi_error(GG_EINVAL, "fields 'argv' and 'env' hold more than %u bytes together",
                         GGI_EXEC_MAX_ARGS_BYTES);
    if (ggi_json_string(req, "stdin", 0, 0, &j->stdin_data))
        return gg_error_last_code();
    if (j->stdin_data) {
        j->stdin_len = strlen(j->stdin_data);
        if (j->stdin_len > GGI_EXEC_MAX_BYTES)
            return ggi_error(GG_EINVAL, "field 'stdin' is %zu bytes, the limit is %u",
                             j->stdin_len, GGI_EXEC_MAX_BYTES);
    }
    if ((rc = check_limits(cJSON_GetObjectItemCaseSensitive(req, "limits"), p, j)))
        return rc;
    /* "min_isolation": the weakest level the job may run at (a task's "isolation"). */
    if (ggi_json_string(req, "min_isolation", 0, 0, &j->min_isolation))
        return gg_error_last_code();
    j->min_level = GGI_ISO_NONE;
    if (j->min_isolation && ggi_isolation_parse(j->min_isolation, &j->min_level))
        return ggi_error_wrap("field 'min_isolation': ");
    return check_workdir(req, j);
}
