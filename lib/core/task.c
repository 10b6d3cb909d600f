/*
 * task.c - the task format: reads a task's JSON (the native format, or one HumanEval line)
 * into a ggi_task with every field checked against its type and limits, and writes the
 * normalised JSON that reads back to an equal task. Errors name the task (once its id has
 * been read) and the field by its dotted path, so a user can find the mistake in a file of
 * thousands of tasks. A "workspace" is checked for its shape here; the workspace module,
 * when it is linked in, registers the rest of the check (ggi_task_set_workspace_check), so
 * the task format does not depend on it.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "task.h"
#include "lang.h"

#define MAX_ENTRY_POINT 256

/* Limits of the numeric fields; the messages below quote them. */
#define MAX_TIMEOUT_S 3600.0
#define MAX_CPU_S 3600.0
#define MAX_WALL_S (30.0 * 24 * 3600)
#define MIN_MEMORY_MB 16
#define MAX_MEMORY_MB 65536
#define MAX_PRIORITY 1000

/* Reading context: which task the errors name. */
typedef struct reader {
    const char *id; /* NULL until the id has been read */
} reader;

static int fail(const reader *r, int status, const char *fmt, ...) GGI_PRINTF(3, 4);

static int fail(const reader *r, int status, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (r->id)
        return ggi_error(status, "task '%s': %s", r->id, msg);
    return ggi_error(status, "task: %s", msg);
}

static const char *json_type_name(const cJSON *v)
{
    if (cJSON_IsString(v))
        return "a string";
    if (cJSON_IsNumber(v))
        return "a number";
    if (cJSON_IsBool(v))
        return "a boolean";
    if (cJSON_IsArray(v))
        return "an array";
    if (cJSON_IsObject(v))
        return "an object";
    if (cJSON_IsNull(v))
        return "null";
    return "an unknown value";
}

/* A field, or NULL when absent or JSON null (null counts as absent everywhere). */
static const cJSON *field(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return (v && !cJSON_IsNull(v)) ? v : NULL;
}

/* A text field: copied into *out (left NULL when absent). */
static int read_text(const reader *r, const cJSON *obj, const char *key, const char *path,
                     size_t max, char **out)
{
    const cJSON *v = field(obj, key);
    *out = NULL;
    if (!v)
        return GG_OK;
    if (!cJSON_IsString(v) || !v->valuestring)
        return fail(r, GG_EINVAL, "field '%s' must be a string, not %s", path,
                    json_type_name(v));
    size_t n = strlen(v->valuestring);
    if (n > max)
        return fail(r, GG_ETOOBIG, "field '%s' is %zu bytes, the limit is %zu", path, n, max);
    *out = strdup(v->valuestring);
    return *out ? GG_OK : ggi_error(GG_ENOMEM, "out of memory reading a task");
}

static int is_ident_start(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_ident_char(int c)
{
    return is_ident_start(c) || (c >= '0' && c <= '9');
}

static int read_task_id(reader *r, const cJSON *obj, char **out)
{
    int rc = read_text(r, obj, "task_id", "task_id", GGI_TASK_MAX_ID, out);
    if (rc)
        return rc;
    if (!*out)
        return GG_OK;
    if (!**out)
        return fail(r, GG_EINVAL, "field 'task_id' must not be empty");
    for (const unsigned char *p = (const unsigned char *)*out; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return fail(r, GG_EINVAL,
                        "field 'task_id' must be printable text (control character 0x%02x at "
                        "byte %zu)",
                        *p, (size_t)(p - (const unsigned char *)*out));
    }
    r->id = *out;
    return GG_OK;
}

static int read_entry_point(const reader *r, const cJSON *obj, char **out)
{
    int rc = read_text(r, obj, "entry_point", "entry_point", MAX_ENTRY_POINT, out);
    if (rc || !*out)
        return rc;
    const char *s = *out;
    int ok = is_ident_start((unsigned char)s[0]);
    for (const char *p = s; ok && *p; p++)
        ok = is_ident_char((unsigned char)*p);
    if (!ok)
        return fail(r, GG_EINVAL,
                    "field 'entry_point' must be an identifier (letters, digits and '_', not "
                    "starting with a digit)");
    return GG_OK;
}

/* Integer in [lo, hi]; *out unchanged when absent. */
static int read_int(const reader *r, const cJSON *obj, const char *key, const char *path,
                    long long lo, long long hi, int *out)
{
    const cJSON *v = field(obj, key);
    if (!v)
        return GG_OK;
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!isfinite(d) || d != floor(d) || d < (double)lo || d > (double)hi)
        return fail(r, GG_EINVAL, "field '%s' must be an integer from %lld to %lld", path, lo,
                    hi);
    *out = (int)d;
    return GG_OK;
}

/* Integer in [lo, hi] that may exceed an int; *out unchanged when absent. */
static int read_count(const reader *r, const cJSON *obj, const char *key, const char *path,
                      long long lo, long long hi, long long *out)
{
    const cJSON *v = field(obj, key);
    if (!v)
        return GG_OK;
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!isfinite(d) || d != floor(d) || d < (double)lo || d > (double)hi)
        return fail(r, GG_EINVAL, "field '%s' must be an integer from %lld to %lld", path, lo,
                    hi);
    *out = (long long)d;
    return GG_OK;
}

/* Number in (lo, hi] (lo exclusive: every such field must be positive); unchanged when absent. */
static int read_positive(const reader *r, const cJSON *obj, const char *key, const char *path,
                         double hi, double *out)
{
    const cJSON *v = field(obj, key);
    if (!v)
        return GG_OK;
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!isfinite(d) || d <= 0 || d > hi)
        return fail(r, GG_EINVAL, "field '%s' must be a number greater than 0 and at most %g",
                    path, hi);
    *out = d;
    return GG_OK;
}

/* An optional sub-object ("budget", "resources"); *out NULL when absent. */
static int read_object(const reader *r, const cJSON *obj, const char *key, const cJSON **out)
{
    const cJSON *v = field(obj, key);
    *out = NULL;
    if (v && !cJSON_IsObject(v))
        return fail(r, GG_EINVAL, "field '%s' must be an object, not %s", key, json_type_name(v));
    *out = v;
    return GG_OK;
}

static int read_candidates(const reader *r, const cJSON *obj, ggi_task *t)
{
    const cJSON *v = field(obj, "candidates");
    if (!v)
        return GG_OK;
    if (!cJSON_IsArray(v))
        return fail(r, GG_EINVAL, "field 'candidates' must be an array of strings, not %s",
                    json_type_name(v));
    int n = cJSON_GetArraySize(v);
    if (n < 0 || (size_t)n > GGI_TASK_MAX_CANDIDATES)
        return fail(r, GG_ETOOBIG, "field 'candidates' has %d entries, the limit is %u", n,
                    (unsigned)GGI_TASK_MAX_CANDIDATES);
    if (n == 0)
        return GG_OK;
    t->candidates = calloc((size_t)n, sizeof *t->candidates);
    if (!t->candidates)
        return ggi_error(GG_ENOMEM, "out of memory reading a task");
    size_t i = 0;
    for (const cJSON *c = v->child; c && i < (size_t)n; c = c->next, i++) {
        if (!cJSON_IsString(c) || !c->valuestring)
            return fail(r, GG_EINVAL, "field 'candidates[%zu]' must be a string, not %s", i,
                        json_type_name(c));
        size_t len = strlen(c->valuestring);
        if (len > GGI_TASK_MAX_TEXT)
            return fail(r, GG_ETOOBIG, "field 'candidates[%zu]' is %zu bytes, the limit is %u",
                        i, len, (unsigned)GGI_TASK_MAX_TEXT);
        t->candidates[i] = strdup(c->valuestring);
        if (!t->candidates[i])
            return ggi_error(GG_ENOMEM, "out of memory reading a task");
        t->n_candidates = i + 1;
    }
    return GG_OK;
}

/* A command: a non-empty array of strings (argv, the first non-empty) or a non-empty string
 * (run by sh -c), within the caps; *out a copy, NULL when absent. */
static int read_command(const reader *r, const cJSON *obj, const char *key, cJSON **out)
{
    const cJSON *v = field(obj, key);
    *out = NULL;
    if (!v)
        return GG_OK;
    size_t bytes = 0;
    if (cJSON_IsString(v) && v->valuestring) {
        bytes = strlen(v->valuestring);
        if (!bytes || strspn(v->valuestring, " \t\r\n") == bytes)
            return fail(r, GG_EINVAL, "field '%s' must not be empty", key);
    } else if (cJSON_IsArray(v)) {
        int n = cJSON_GetArraySize(v), i = 0;
        if (n == 0)
            return fail(r, GG_EINVAL, "field '%s' must not be an empty array (an argv array of "
                        "strings, or a string run by sh -c)", key);
        if (n > GGI_TASK_MAX_COMMAND_ARGS)
            return fail(r, GG_ETOOBIG, "field '%s' has %d arguments, the limit is %d", key, n,
                        GGI_TASK_MAX_COMMAND_ARGS);
        const cJSON *a;
        cJSON_ArrayForEach(a, v)
        {
            if (!cJSON_IsString(a) || !a->valuestring)
                return fail(r, GG_EINVAL, "field '%s[%d]' must be a string, not %s", key, i,
                            json_type_name(a));
            if (i == 0 && !*a->valuestring)
                return fail(r, GG_EINVAL, "field '%s[0]' (the program) must not be empty", key);
            bytes += strlen(a->valuestring) + 1;
            i++;
        }
    } else {
        return fail(r, GG_EINVAL, "field '%s' must be an array of strings (argv) or a string "
                    "(run by sh -c), not %s", key, json_type_name(v));
    }
    if (bytes > GGI_TASK_MAX_COMMAND_BYTES)
        return fail(r, GG_ETOOBIG, "field '%s' is %zu bytes, the limit is %u", key, bytes,
                    (unsigned)GGI_TASK_MAX_COMMAND_BYTES);
    *out = cJSON_Duplicate(v, 1);
    return *out ? GG_OK : ggi_error(GG_ENOMEM, "out of memory reading a task");
}

/* "deliver": {"branch": name}, the branch a passing task's patch is committed on. Git checks
 * the full ref name when delivering; this refuses what can never be one. */
static int read_deliver(const reader *r, const cJSON *obj, ggi_task *t)
{
    const cJSON *d = NULL;
    int rc = read_object(r, obj, "deliver", &d);
    if (rc || !d)
        return rc;
    const cJSON *m;
    cJSON_ArrayForEach(m, d)
    {
        if (strcmp(m->string, "branch") != 0)
            return fail(r, GG_EINVAL, "field 'deliver.%.64s' is unknown (deliver has only "
                        "'branch')", m->string);
    }
    const cJSON *b = field(d, "branch");
    if (!b)
        return fail(r, GG_EINVAL, "missing field 'deliver.branch' (the branch to create)");
    if (!cJSON_IsString(b) || !b->valuestring)
        return fail(r, GG_EINVAL, "field 'deliver.branch' must be a string, not %s",
                    json_type_name(b));
    size_t n = strlen(b->valuestring);
    if (n == 0 || n > GGI_TASK_MAX_BRANCH)
        return fail(r, GG_EINVAL, "field 'deliver.branch' must be 1 to %d bytes",
                    GGI_TASK_MAX_BRANCH);
    for (const unsigned char *p = (const unsigned char *)b->valuestring; *p; p++)
        if (*p <= 0x20 || *p == 0x7f || strchr("~^:?*[\\", *p))
            return fail(r, GG_EINVAL, "field 'deliver.branch' may not hold spaces, control "
                        "characters or any of ~^:?*[\\");
    if (b->valuestring[0] == '/' || b->valuestring[0] == '-' || b->valuestring[n - 1] == '/' ||
        strstr(b->valuestring, "..") || strstr(b->valuestring, "//") ||
        strstr(b->valuestring, "@{") || (n >= 5 && strcmp(b->valuestring + n - 5, ".lock") == 0))
        return fail(r, GG_EINVAL, "field 'deliver.branch' is not a usable branch name: '%s'",
                    b->valuestring);
    t->deliver = cJSON_Duplicate(d, 1);
    return t->deliver ? GG_OK : ggi_error(GG_ENOMEM, "out of memory reading a task");
}

static _Atomic(ggi_task_workspace_check_fn) workspace_check;

void ggi_task_set_workspace_check(ggi_task_workspace_check_fn fn)
{
    atomic_store(&workspace_check, fn);
}

/* The shape of a "workspace": an object with exactly one source (repo, dir or files) of
 * the right type, and no keys but those, ref, commit and pack. */
static int workspace_shape(const reader *r, const cJSON *ws)
{
    if (!cJSON_IsObject(ws))
        return fail(r, GG_EINVAL, "field 'workspace' must be an object");
    static const char *const sources[] = { "repo", "dir", "files" };
    int n = 0;
    for (size_t i = 0; i < 3; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(ws, sources[i]);
        if (!v)
            continue;
        n++;
        if (i < 2 ? !cJSON_IsString(v) : !cJSON_IsObject(v))
            return fail(r, GG_EINVAL, "field 'workspace.%s' must be %s", sources[i],
                        i < 2 ? "a string" : "an object");
    }
    if (n != 1)
        return fail(r, GG_EINVAL, "field 'workspace' must have exactly one of 'repo', 'dir' "
                    "and 'files'");
    const cJSON *k;
    cJSON_ArrayForEach(k, ws)
    {
        static const char *const known[] = { "repo", "dir", "files", "ref", "commit", "pack" };
        size_t i = 0;
        while (i < 6 && strcmp(k->string, known[i]) != 0)
            i++;
        if (i == 6)
            return fail(r, GG_EINVAL, "field 'workspace.%.64s' is unknown", k->string);
        if (i >= 3 && !cJSON_IsString(k))
            return fail(r, GG_EINVAL, "field 'workspace.%s' must be a string", known[i]);
    }
    return GG_OK;
}

/* The workspace fields, after everything else was read. */
static int read_workspace(const reader *r, const cJSON *obj, ggi_task *t)
{
    const cJSON *ws = field(obj, "workspace");
    int rc;
    if (ws) {
        if ((rc = workspace_shape(r, ws)))
            return rc;
        ggi_task_workspace_check_fn check = atomic_load(&workspace_check);
        if (check && check(ws) != GG_OK)
            return r->id ? ggi_error_wrap("task '%s': ", r->id) : ggi_error_wrap("task: ");
        t->workspace = cJSON_Duplicate(ws, 1);
        if (!t->workspace)
            return ggi_error(GG_ENOMEM, "out of memory reading a task");
    }
    if ((rc = read_command(r, obj, "test_command", &t->test_command)))
        return rc;
    if ((rc = read_command(r, obj, "setup_command", &t->setup_command)))
        return rc;
    if ((rc = read_deliver(r, obj, t)))
        return rc;
    if ((rc = read_text(r, obj, "canonical_patch", "canonical_patch", GGI_TASK_MAX_TEXT,
                        &t->canonical_patch)))
        return rc;
    if (!ws) {
        const char *only[] = { "test_command", "setup_command", "deliver", "canonical_patch" };
        for (size_t i = 0; i < sizeof only / sizeof only[0]; i++)
            if (field(obj, only[i]))
                return fail(r, GG_EINVAL, "field '%s' needs a 'workspace' (it belongs to "
                            "workspace tasks)", only[i]);
        return GG_OK;
    }
    if (!t->test_command)
        return fail(r, GG_EINVAL, "missing field 'test_command' (a workspace task's tests: an "
                    "argv array, or a string run by sh -c, in the workspace root)");
    const char *not_with[] = { "test", "stub", "entry_point" };
    for (size_t i = 0; i < sizeof not_with / sizeof not_with[0]; i++)
        if (field(obj, not_with[i]))
            return fail(r, GG_EINVAL, "field '%s' cannot be used with 'workspace' (a workspace "
                        "task is checked by its 'test_command')", not_with[i]);
    return GG_OK;
}

/* One name of "requires": [ecosystem:]name, the ecosystem one of go, rust, npm (none: a
 * system library, such as boost or openssl); the name of letters, digits and ._+-/@, not
 * starting or ending with '/' and without "..". NULL when it is fine, else what is wrong. */
static const char *requires_name_problem(const char *s)
{
    const char *colon = strchr(s, ':');
    const char *name = s;
    if (colon) {
        size_t k = (size_t)(colon - s);
        if (!((k == 2 && !strncmp(s, "go", 2)) || (k == 4 && !strncmp(s, "rust", 4)) ||
              (k == 3 && !strncmp(s, "npm", 3))))
            return "has an unknown ecosystem (known: go:, rust:, npm:, or none for a system "
                   "library)";
        name = colon + 1;
    }
    size_t n = strlen(name);
    if (n == 0)
        return "has an empty name";
    if (name[0] == '/' || name[n - 1] == '/' || strstr(name, ".."))
        return "is not a package name";
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("._+-/@", c)))
            return "has a character outside letters, digits and ._+-/@";
    }
    return NULL;
}

/* "requires": the libraries its tests need that a worker must have beforehand (a job has no
 * network), as an array of names (requires_name_problem), at most GGI_TASK_MAX_REQUIRES of
 * at most GGI_TASK_MAX_REQUIRE_BYTES each, no name twice. */
static int read_requires(const reader *r, const cJSON *obj, ggi_task *t)
{
    const cJSON *req = field(obj, "requires"), *e;
    if (!req)
        return GG_OK;
    if (!cJSON_IsArray(req))
        return fail(r, GG_EINVAL, "field 'requires' must be an array of strings, not %s",
                    json_type_name(req));
    int n = 0;
    cJSON_ArrayForEach(e, req)
    {
        if (++n > GGI_TASK_MAX_REQUIRES)
            return fail(r, GG_ETOOBIG, "field 'requires' has more than %d entries",
                        GGI_TASK_MAX_REQUIRES);
        if (!cJSON_IsString(e))
            return fail(r, GG_EINVAL, "field 'requires' entry %d must be a string, not %s", n,
                        json_type_name(e));
        if (strlen(e->valuestring) > GGI_TASK_MAX_REQUIRE_BYTES)
            return fail(r, GG_ETOOBIG, "field 'requires' entry %d is longer than %d bytes", n,
                        GGI_TASK_MAX_REQUIRE_BYTES);
        const char *why = requires_name_problem(e->valuestring);
        if (why)
            return fail(r, GG_EINVAL, "field 'requires' entry '%s' %s", e->valuestring, why);
        for (const cJSON *p = req->child; p != e; p = p->next)
            if (!strcmp(p->valuestring, e->valuestring))
                return fail(r, GG_EINVAL, "field 'requires' names '%s' twice", e->valuestring);
    }
    if (n == 0)
        return GG_OK;
    t->requires = cJSON_Duplicate(req, 1);
    return t->requires ? GG_OK : ggi_error(GG_ENOMEM, "out of memory reading a task");
}

/* A HumanEval-X line (task_id "CPP/0", "Go/0", ...): its language from the prefix. */
static const char *humaneval_x_language(const cJSON *obj)
{
    const cJSON *id = field(obj, "task_id");
    if (!cJSON_IsString(id) || !cJSON_IsString(field(obj, "prompt")) ||
        !cJSON_IsString(field(obj, "test")))
        return NULL;
    return ggi_lang_from_task_id(id->valuestring);
}

static int read_language(const reader *r, const cJSON *obj, ggi_task *t, int *humaneval)
{
    const cJSON *v = field(obj, "language");
    *humaneval = 0;
    if (!v) {
        const char *x = humaneval_x_language(obj);
        if (x) {
            *humaneval = 2;
            t->language = strdup(x);
            return t->language ? GG_OK : ggi_error(GG_ENOMEM, "out of memory reading a task");
        }
        /* A HumanEval line has no language but all four of its fields. */
        const char *he[] = { "prompt", "canonical_solution", "test", "entry_point" };
        int all = 1;
        for (size_t i = 0; i < sizeof he / sizeof he[0]; i++) {
            const cJSON *f = field(obj, he[i]);
            if (!f || !cJSON_IsString(f))
                all = 0;
        }
        if (!all)
            return fail(r, GG_EINVAL,
                        "missing field 'language' (one of: %s; a HumanEval line needs prompt, "
                        "canonical_solution, test and entry_point instead, a HumanEval-X line "
                        "a task_id starting with CPP/, Go/, Java/, JavaScript/, Rust/ or "
                        "Python/)",
                        ggi_lang_names());
        *humaneval = 1;
        t->language = strdup("python");
        return t->language ? GG_OK : ggi_error(GG_ENOMEM, "out of memory reading a task");
    }
    if (!cJSON_IsString(v) || !v->valuestring)
        return fail(r, GG_EINVAL, "field 'language' must be a string, not %s",
                    json_type_name(v));
    const char *canon = ggi_lang_canonical(v->valuestring);
    if (!canon) {
        char shown[40];
        snprintf(shown, sizeof shown, "%s", v->valuestring);
        for (char *p = shown; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = '?';
        return fail(r, GG_EINVAL, "field 'language' is '%s%s', supported are: %s", shown,
                    strlen(v->valuestring) >= sizeof shown ? "..." : "", ggi_lang_names());
    }
    t->language = strdup(canon);
    return t->language ? GG_OK : ggi_error(GG_ENOMEM, "out of memory reading a task");
}

/* Appends the lines of add that start with #include and are not in text already. */
static int add_missing_includes(ggi_buf *b, const char *text, const char *add)
{
    for (const char *l = add; l && *l;) {
        const char *eol = strchr(l, '\n');
        size_t n = eol ? (size_t)(eol - l) : strlen(l);
        if (n > 8 && strncmp(l, "#include", 8) == 0) {
            char line[512];
            snprintf(line, sizeof line, "%.*s", (int)(n < 511 ? n : 511), l);
            if (!strstr(text, line) && (ggi_buf_puts(b, line) || ggi_buf_puts(b, "\n")))
                return GG_ENOMEM;
        }
        l = eol ? eol + 1 : NULL;
    }
    return GG_OK;
}

/* HumanEval-X's fields as this task format has them: the prompt is the stub (C++: with the
 * declaration's extra #include lines first; Rust: prompt + declaration, which holds the
 * `use` lines and the signature), and Go's test_setup (package clause, imports) heads its
 * test. */
static int adopt_humaneval_x(const cJSON *obj, ggi_task *t)
{
    const cJSON *decl = field(obj, "declaration"), *setup = field(obj, "test_setup");
    const char *d = cJSON_IsString(decl) ? decl->valuestring : NULL;
    ggi_buf b = GGI_BUF_INIT;
    int rc = GG_OK;
    if (!strcmp(t->language, "cpp") && d)
        rc = add_missing_includes(&b, t->prompt, d);
    if (!rc)
        rc = ggi_buf_puts(&b, t->prompt);
    if (!rc && !strcmp(t->language, "rust") && d)
        rc = ggi_buf_puts(&b, d);
    char *stub = rc ? NULL : ggi_buf_steal(&b);
    ggi_buf_free(&b);
    if (!stub)
        return ggi_error(GG_ENOMEM, "out of memory reading a task");
    free(t->stub);
    t->stub = stub;
    if (!strcmp(t->language, "rust")) {
        free(t->prompt);
        if (!(t->prompt = strdup(stub)))
            return ggi_error(GG_ENOMEM, "out of memory reading a task");
    }
    if (!strcmp(t->language, "go") && cJSON_IsString(setup) && t->test) {
        char *test = ggi_asprintf("%s\n%s", setup->valuestring, t->test);
        if (!test)
            return ggi_error(GG_ENOMEM, "out of memory reading a task");
        free(t->test);
        t->test = test;
    }
    return GG_OK;
}

/* "budget" and "resources": what the task may spend, in all and per execution. */
static int read_limits(reader *r, const cJSON *obj, ggi_task *t)
{
    int rc;
    const cJSON *budget = NULL, *res = NULL;
    if ((rc = read_object(r, obj, "budget", &budget)))
        return rc;
    if (budget) {
        if ((rc = read_int(r, budget, "max_attempts", "budget.max_attempts", 1,
                           GGI_TASK_MAX_ATTEMPTS, &t->max_attempts)))
            return rc;
        if ((rc = read_positive(r, budget, "wall_s", "budget.wall_s", MAX_WALL_S, &t->wall_s)))
            return rc;
        if ((rc = read_count(r, budget, "tokens", "budget.tokens", 1, GGI_TASK_MAX_TOKENS,
                             &t->tokens)))
            return rc;
    }
    if ((rc = read_object(r, obj, "resources", &res)))
        return rc;
    if (res) {
        if ((rc = read_positive(r, res, "timeout_s", "resources.timeout_s", MAX_TIMEOUT_S,
                                &t->timeout_s)))
            return rc;
        if ((rc = read_int(r, res, "memory_mb", "resources.memory_mb", MIN_MEMORY_MB,
                           MAX_MEMORY_MB, &t->memory_mb)))
            return rc;
        if ((rc = read_positive(r, res, "cpu_s", "resources.cpu_s", MAX_CPU_S, &t->cpu_s)))
            return rc;
    }
    return GG_OK;
}

/* "requirements": where the task may run on a grid (labels a worker must carry, GPUs). */
static int read_requirements(reader *r, const cJSON *obj, ggi_task *t)
{
    int rc;
    const cJSON *req = NULL;
    if ((rc = read_object(r, obj, "requirements", &req)))
        return rc;
    if (req) {
        int gpus = 0, n = 0;
        if ((rc = read_int(r, req, "gpus", "requirements.gpus", 0, 64, &gpus)))
            return rc;
        const cJSON *labels = field(req, "labels"), *l;
        if (labels && !cJSON_IsObject(labels))
            return fail(r, GG_EINVAL, "field 'requirements.labels' must be an object, not %s",
                        json_type_name(labels));
        cJSON_ArrayForEach(l, labels)
        {
            if (++n > 64)
                return fail(r, GG_ETOOBIG, "field 'requirements.labels' has more than 64 "
                            "entries");
            if (!cJSON_IsString(l) || strlen(l->string) > 128 || strlen(l->valuestring) > 128)
                return fail(r, GG_EINVAL, "field 'requirements.labels.%.64s' must be a string "
                            "of at most 128 bytes", l->string);
        }
        t->requirements = cJSON_CreateObject();
        if (!t->requirements ||
            (labels && !cJSON_AddItemToObject(t->requirements, "labels",
                                              cJSON_Duplicate(labels, 1))) ||
            (gpus && !cJSON_AddNumberToObject(t->requirements, "gpus", gpus)))
            return ggi_error(GG_ENOMEM, "out of memory reading a task");
    }
    return GG_OK;
}

/* "isolation": the weakest isolation level the task's jobs may run at. */
static int read_isolation(reader *r, const cJSON *obj, ggi_task *t)
{
    int rc;
    if ((rc = read_text(r, obj, "isolation", "isolation", 16, &t->isolation)))
        return rc;
    if (t->isolation) {
        static const char *const levels[] = { "none", "rlimits", "namespaces", "container" };
        size_t k = 0;
        while (k < 4 && strcmp(levels[k], t->isolation))
            k++;
        if (k == 4)
            return fail(r, GG_EINVAL, "field 'isolation' must be one of none, rlimits, "
                        "namespaces, container, not '%s'", t->isolation);
    }
    return GG_OK;
}

static int read_all(const cJSON *obj, ggi_task *t)
{
    reader r = { NULL };
    int rc, humaneval = 0;
    if ((rc = read_task_id(&r, obj, &t->task_id)))
        return rc;
    if ((rc = read_language(&r, obj, t, &humaneval)))
        return rc;
    if ((rc = read_text(&r, obj, "prompt", "prompt", GGI_TASK_MAX_TEXT, &t->prompt)))
        return rc;
    if ((rc = read_text(&r, obj, "stub", "stub", GGI_TASK_MAX_TEXT, &t->stub)))
        return rc;
    if ((rc = read_entry_point(&r, obj, &t->entry_point)))
        return rc;
    if ((rc = read_text(&r, obj, "test", "test", GGI_TASK_MAX_TEXT, &t->test)))
        return rc;
    if ((rc = read_candidates(&r, obj, t)))
        return rc;
    if ((rc = read_text(&r, obj, "canonical_solution", "canonical_solution", GGI_TASK_MAX_TEXT,
                        &t->canonical_solution)))
        return rc;

    if ((rc = read_limits(&r, obj, t)))
        return rc;
    if ((rc = read_int(&r, obj, "priority", "priority", -MAX_PRIORITY, MAX_PRIORITY,
                       &t->priority)))
        return rc;

    /* "humaneval" is written by ggi_task_to_json so the flag survives a round trip. */
    const cJSON *he = field(obj, "humaneval");
    if (he && !cJSON_IsBool(he))
        return fail(&r, GG_EINVAL, "field 'humaneval' must be true or false, not %s",
                    json_type_name(he));
    t->humaneval = humaneval || cJSON_IsTrue(he);

    if ((rc = read_requirements(&r, obj, t)))
        return rc;

    if ((rc = read_requires(&r, obj, t)))
        return rc;

    if ((rc = read_isolation(&r, obj, t)))
        return rc;

    if ((rc = read_workspace(&r, obj, t)))
        return rc;

    if (humaneval == 2) {
        if ((rc = adopt_humaneval_x(obj, t)))
            return rc;
    } else if (humaneval) {
        /* HumanEval's prompt is the function's signature and docstring: the completion
         * continues it, and it is also the instruction. */
        free(t->stub);
        t->stub = strdup(t->prompt);
        if (!t->stub)
            return ggi_error(GG_ENOMEM, "out of memory reading a task");
    }
    if (!t->prompt) {
        t->prompt = strdup("");
        if (!t->prompt)
            return ggi_error(GG_ENOMEM, "out of memory reading a task");
    }
    return GG_OK;
}

int ggi_task_from_json(const cJSON *obj, ggi_task **out)
{
    if (!out)
        return ggi_error(GG_EINVAL, "task: no output pointer");
    *out = NULL;
    if (!obj)
        return ggi_error(GG_EINVAL, "task: no JSON value");
    if (!cJSON_IsObject(obj))
        return ggi_error(GG_EINVAL, "task: the JSON value must be an object, not %s",
                         json_type_name(obj));
    ggi_task *t = calloc(1, sizeof *t);
    if (!t)
        return ggi_error(GG_ENOMEM, "out of memory reading a task");
    int rc = read_all(obj, t);
    if (rc) {
        ggi_task_free(t);
        return rc;
    }
    *out = t;
    return GG_OK;
}

int ggi_task_parse(const char *json, size_t len, ggi_task **out)
{
    if (!out)
        return ggi_error(GG_EINVAL, "task: no output pointer");
    *out = NULL;
    if (!json)
        return ggi_error(GG_EINVAL, "task: JSON text is NULL");
    if (len > GGI_TASK_MAX_JSON)
        return ggi_error(GG_ETOOBIG, "task: the JSON text is %zu bytes, the limit is %u", len,
                         (unsigned)GGI_TASK_MAX_JSON);
    cJSON *obj = NULL;
    size_t value_len = 0;
    int rc = ggi_json_parse_syntax(json, len, &obj, &value_len);
    if (rc)
        return ggi_error_wrap("task: ");
    /* A NUL would cut a field short (a test losing its later assertions), bytes that are not
     * UTF-8 would be echoed into results that are then not JSON: refused, naming the task
     * when its id is not the field at fault. */
    char path[256];
    rc = ggi_json_check_strings(json, value_len, path, sizeof path);
    if (rc) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(obj, "task_id");
        int named = cJSON_IsString(id) && strcmp(path, "task_id") != 0 && *id->valuestring &&
                    strlen(id->valuestring) <= GGI_TASK_MAX_ID &&
                    ggi_utf8_invalid_at(id->valuestring, strlen(id->valuestring)) ==
                        strlen(id->valuestring);
        for (const char *p = named ? id->valuestring : ""; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                named = 0;
        rc = named ? ggi_error_wrap("task '%s': ", id->valuestring) : ggi_error_wrap("task: ");
        cJSON_Delete(obj);
        return rc;
    }
    rc = ggi_task_from_json(obj, out);
    cJSON_Delete(obj);
    return rc;
}

/* Adds a number, or null when the field has its "not set" value 0. */
static int add_num_or_null(cJSON *obj, const char *key, double v)
{
    if (v == 0)
        return cJSON_AddNullToObject(obj, key) ? GG_OK : GG_ENOMEM;
    return ggi_json_add_num(obj, key, v);
}

cJSON *ggi_task_to_json(const ggi_task *t)
{
    if (!t)
        return NULL;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON *cands = NULL, *budget = NULL, *res = NULL;
    int rc = ggi_json_add_str(o, "task_id", t->task_id);
    rc = rc ? rc : ggi_json_add_str(o, "language", t->language);
    rc = rc ? rc : ggi_json_add_str(o, "prompt", t->prompt ? t->prompt : "");
    rc = rc ? rc : ggi_json_add_str(o, "stub", t->stub);
    rc = rc ? rc : ggi_json_add_str(o, "entry_point", t->entry_point);
    rc = rc ? rc : ggi_json_add_str(o, "test", t->test);
    if (!rc) {
        cands = cJSON_AddArrayToObject(o, "candidates");
        rc = cands ? GG_OK : GG_ENOMEM;
    }
    for (size_t i = 0; !rc && i < t->n_candidates; i++) {
        cJSON *s = cJSON_CreateString(t->candidates[i] ? t->candidates[i] : "");
        if (!s || !cJSON_AddItemToArray(cands, s)) {
            cJSON_Delete(s);
            rc = GG_ENOMEM;
        }
    }
    rc = rc ? rc : ggi_json_add_str(o, "canonical_solution", t->canonical_solution);
    if (!rc) {
        budget = cJSON_AddObjectToObject(o, "budget");
        rc = budget ? GG_OK : GG_ENOMEM;
    }
    rc = rc ? rc : add_num_or_null(budget, "max_attempts", t->max_attempts);
    rc = rc ? rc : add_num_or_null(budget, "wall_s", t->wall_s);
    /* Only when set, so that tasks without it keep their normalised form (and ids). */
    if (!rc && t->tokens > 0)
        rc = ggi_json_add_num(budget, "tokens", (double)t->tokens);
    if (!rc) {
        res = cJSON_AddObjectToObject(o, "resources");
        rc = res ? GG_OK : GG_ENOMEM;
    }
    rc = rc ? rc : add_num_or_null(res, "timeout_s", t->timeout_s);
    rc = rc ? rc : add_num_or_null(res, "memory_mb", t->memory_mb);
    rc = rc ? rc : add_num_or_null(res, "cpu_s", t->cpu_s);
    rc = rc ? rc : ggi_json_add_num(o, "priority", t->priority);
    rc = rc ? rc : ggi_json_add_bool(o, "humaneval", t->humaneval);
    /* Only when present, so that tasks without it keep their normalised form (and ids). */
    if (!rc && t->requirements &&
        !cJSON_AddItemToObject(o, "requirements", cJSON_Duplicate(t->requirements, 1)))
        rc = GG_ENOMEM;
    if (!rc && t->isolation)
        rc = ggi_json_add_str(o, "isolation", t->isolation);
    if (!rc && t->requires &&
        !cJSON_AddItemToObject(o, "requires", cJSON_Duplicate(t->requires, 1)))
        rc = GG_ENOMEM;
    /* The workspace fields, likewise only when present. */
    const struct { const char *key; const cJSON *v; } ws_fields[] = {
        { "workspace", t->workspace }, { "test_command", t->test_command },
        { "setup_command", t->setup_command }, { "deliver", t->deliver },
    };
    for (size_t i = 0; !rc && i < sizeof ws_fields / sizeof ws_fields[0]; i++)
        if (ws_fields[i].v &&
            !cJSON_AddItemToObject(o, ws_fields[i].key, cJSON_Duplicate(ws_fields[i].v, 1)))
            rc = GG_ENOMEM;
    if (!rc && t->canonical_patch)
        rc = ggi_json_add_str(o, "canonical_patch", t->canonical_patch);
    if (rc) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* Removes obj's members that are JSON null; then obj itself from parent when empty. */
static void drop_nulls(cJSON *parent, cJSON *obj)
{
    cJSON *m = obj ? obj->child : NULL;
    while (m) {
        cJSON *next = m->next;
        if (cJSON_IsNull(m))
            cJSON_Delete(cJSON_DetachItemViaPointer(obj, m));
        m = next;
    }
    if (obj && !obj->child)
        cJSON_Delete(cJSON_DetachItemViaPointer(parent, obj));
}

void ggi_task_json_compact(cJSON *o)
{
    if (!o)
        return;
    /* What reads back the same when absent: nulls, no candidates, budget and resources with
     * nothing set, priority 0, humaneval false (the reader infers it from the same fields
     * and finds false again). requirements, isolation and requires are written only when set. */
    drop_nulls(NULL, o);
    cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "candidates");
    if (cJSON_IsArray(c) && cJSON_GetArraySize(c) == 0)
        cJSON_DeleteItemFromObjectCaseSensitive(o, "candidates");
    drop_nulls(o, cJSON_GetObjectItemCaseSensitive(o, "budget"));
    drop_nulls(o, cJSON_GetObjectItemCaseSensitive(o, "resources"));
    const cJSON *prio = cJSON_GetObjectItemCaseSensitive(o, "priority");
    if (cJSON_IsNumber(prio) && prio->valuedouble == 0)
        cJSON_DeleteItemFromObjectCaseSensitive(o, "priority");
    if (cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(o, "humaneval")))
        cJSON_DeleteItemFromObjectCaseSensitive(o, "humaneval");
}

cJSON *ggi_task_to_json_compact(const ggi_task *t)
{
    cJSON *o = ggi_task_to_json(t);
    ggi_task_json_compact(o);
    return o;
}

int ggi_task_needs(const ggi_task *t, char **out)
{
    *out = NULL;
    if (!t)
        return ggi_error(GG_EINVAL, "ggi_task_needs: t is NULL");
    const cJSON *gpus = cJSON_GetObjectItemCaseSensitive(t->requirements, "gpus");
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(t->requirements, "labels");
    int has_gpus = cJSON_IsNumber(gpus) && gpus->valuedouble > 0;
    int has_labels = cJSON_IsObject(labels) && labels->child;
    if (t->max_attempts <= 0 && t->wall_s <= 0 && t->tokens <= 0 && t->memory_mb <= 0 &&
        !has_gpus && !has_labels && !t->isolation && !t->requires)
        return GG_OK;
    cJSON *o = cJSON_CreateObject();
    int ok = o != NULL;
    if (ok && t->max_attempts > 0)
        ok = cJSON_AddNumberToObject(o, "max_attempts", t->max_attempts) != NULL;
    if (ok && t->wall_s > 0)
        ok = cJSON_AddNumberToObject(o, "wall_s", t->wall_s) != NULL;
    if (ok && t->tokens > 0)
        ok = cJSON_AddNumberToObject(o, "tokens", (double)t->tokens) != NULL;
    if (ok && t->memory_mb > 0)
        ok = cJSON_AddNumberToObject(o, "memory_mb", t->memory_mb) != NULL;
    if (ok && has_gpus)
        ok = cJSON_AddNumberToObject(o, "gpus", gpus->valuedouble) != NULL;
    if (ok && has_labels) {
        cJSON *copy = cJSON_Duplicate(labels, 1);
        ok = copy && cJSON_AddItemToObject(o, "labels", copy);
        if (!ok)
            cJSON_Delete(copy);
    }
    if (ok && t->isolation)
        ok = cJSON_AddStringToObject(o, "isolation", t->isolation) != NULL;
    if (ok && t->requires) {
        cJSON *copy = cJSON_Duplicate(t->requires, 1);
        ok = copy && cJSON_AddItemToObject(o, "requires", copy);
        if (!ok)
            cJSON_Delete(copy);
    }
    *out = ok ? ggi_json_print(o) : NULL;
    cJSON_Delete(o);
    return *out ? GG_OK : ggi_error(GG_ENOMEM, "out of memory");
}

int ggi_task_command_argv(const cJSON *cmd, cJSON **out)
{
    *out = NULL;
    if (cJSON_IsArray(cmd))
        *out = cJSON_Duplicate(cmd, 1);
    else if (cJSON_IsString(cmd) && cmd->valuestring) {
        const char *argv[] = { "sh", "-c", cmd->valuestring };
        *out = cJSON_CreateStringArray(argv, 3);
    } else
        return ggi_error(GG_EINVAL, "a command must be an array of strings or a string");
    return *out ? GG_OK : ggi_error(GG_ENOMEM, "out of memory");
}

void ggi_task_free(ggi_task *t)
{
    if (!t)
        return;
    free(t->task_id);
    free(t->language);
    free(t->prompt);
    free(t->stub);
    free(t->entry_point);
    free(t->test);
    for (size_t i = 0; i < t->n_candidates; i++)
        free(t->candidates[i]);
    free(t->candidates);
    free(t->canonical_solution);
    cJSON_Delete(t->requirements);
    cJSON_Delete(t->requires);
    free(t->isolation);
    cJSON_Delete(t->workspace);
    cJSON_Delete(t->test_command);
    cJSON_Delete(t->setup_command);
    cJSON_Delete(t->deliver);
    free(t->canonical_patch);
    free(t);
}
