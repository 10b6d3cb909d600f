/*
 * lang_util.c - the helpers every language's code shares: scanning text by lines and words,
 * building executor requests (argv, files, env, limits), reading a job's result fields, and
 * turning compiler-style diagnostics into findings. Internal.
 */
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lang_impl.h"

/* the toolchains runtimes.c resolves (here: lib/core names them in messages) */
static const struct {
    const char *name, *env;
} TOOLS[GGI_TOOL_COUNT] = {
    [GGI_TOOL_CXX] = { "g++", "GRYPHGEN_TOOLCHAIN_CXX" },
    [GGI_TOOL_NODE] = { "node", "GRYPHGEN_TOOLCHAIN_NODE" },
    [GGI_TOOL_TSC] = { "tsc", "GRYPHGEN_TOOLCHAIN_TSC" },
    [GGI_TOOL_GO] = { "go", "GRYPHGEN_TOOLCHAIN_GO" },
    [GGI_TOOL_JAVAC] = { "javac", "GRYPHGEN_TOOLCHAIN_JAVAC" },
    [GGI_TOOL_JAVA] = { "java", "GRYPHGEN_TOOLCHAIN_JAVA" },
    [GGI_TOOL_RUSTC] = { "rustc", "GRYPHGEN_TOOLCHAIN_RUSTC" },
    [GGI_TOOL_CARGO] = { "cargo", "GRYPHGEN_TOOLCHAIN_CARGO" },
    [GGI_TOOL_BASH] = { "bash", "GRYPHGEN_TOOLCHAIN_BASH" },
    [GGI_TOOL_SHELLCHECK] = { "shellcheck", "GRYPHGEN_TOOLCHAIN_SHELLCHECK" },
};

const char *ggi_tool_name(int tool)
{
    return tool >= 0 && tool < GGI_TOOL_COUNT ? TOOLS[tool].name : NULL;
}

const char *ggi_tool_env(int tool)
{
    return tool >= 0 && tool < GGI_TOOL_COUNT ? TOOLS[tool].env : NULL;
}

int ggi_lang_oom(void)
{
    return ggi_error(GG_ENOMEM, "out of memory");
}

int ggi_lang_is_ident(int c)
{
    return isalnum(c) || c == '_';
}

int ggi_lang_is_blank(int c)
{
    return c == ' ' || c == '\t';
}

/* Start of the line after p's line, or the end of text. */
const char *ggi_lang_next_line(const char *p)
{
    const char *nl = strchr(p, '\n');
    return nl ? nl + 1 : p + strlen(p);
}

/* Start of the line before the line starting at p (p must be a line start > text). */
const char *ggi_lang_prev_line(const char *text, const char *p)
{
    const char *q = p - 1; /* the '\n' ending the previous line */
    while (q > text && q[-1] != '\n')
        q--;
    return q;
}

/* Matches word at p followed by a non-identifier character; returns the end or NULL. */
const char *ggi_lang_match_word(const char *p, const char *word)
{
    size_t n = strlen(word);
    if (strncmp(p, word, n) != 0 || ggi_lang_is_ident((unsigned char)p[n]))
        return NULL;
    return p + n;
}
int ggi_lang_add_file(cJSON *files, const char *path, const char *content)
{
    cJSON *f = cJSON_CreateObject();
    if (!f || !cJSON_AddItemToArray(files, f)) {
        cJSON_Delete(f);
        return GG_ENOMEM;
    }
    if (ggi_json_add_str(f, "path", path) || ggi_json_add_str(f, "content", content))
        return GG_ENOMEM;
    return GG_OK;
}

int ggi_lang_add_argv(cJSON *req, const char *const *argv, size_t n)
{
    cJSON *a = cJSON_AddArrayToObject(req, "argv");
    if (!a)
        return GG_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        cJSON *s = cJSON_CreateString(argv[i]);
        if (!s || !cJSON_AddItemToArray(a, s)) {
            cJSON_Delete(s);
            return GG_ENOMEM;
        }
    }
    return GG_OK;
}

int ggi_lang_add_limits(cJSON *req, double timeout_s, int memory_mb, double cpu_s)
{
    cJSON *l = cJSON_AddObjectToObject(req, "limits");
    if (!l)
        return GG_ENOMEM;
    if (ggi_json_add_num(l, "timeout_s", timeout_s) || ggi_json_add_num(l, "memory_mb", memory_mb))
        return GG_ENOMEM;
    if (cpu_s > 0 && ggi_json_add_num(l, "cpu_s", cpu_s))
        return GG_ENOMEM;
    return GG_OK;
}

double ggi_lang_timeout(const ggi_task *t)
{
    return t->timeout_s > 0 ? t->timeout_s : GGI_LANG_DEFAULT_TIMEOUT_S;
}

int ggi_lang_memory(const ggi_task *t)
{
    return t->memory_mb > 0 ? t->memory_mb : GGI_LANG_DEFAULT_MEMORY_MB;
}
double ggi_lang_num(const cJSON *r, const char *key, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, key);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

int ggi_lang_bool(const cJSON *r, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, key);
    return cJSON_IsTrue(v) || (cJSON_IsNumber(v) && v->valuedouble != 0);
}

const char *ggi_lang_str(const cJSON *r, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, key);
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : "";
}

/* Copies at most max bytes of [p, p+n) with trailing white space removed. */
char *ggi_lang_trimmed(const char *p, size_t n, size_t max)
{
    while (n > 0 && isspace((unsigned char)p[n - 1]))
        n--;
    while (n > 0 && isspace((unsigned char)*p)) {
        p++;
        n--;
    }
    if (n > max) {
        n = max;
        /* do not cut a UTF-8 sequence in half */
        while (n > 0 && ((unsigned char)p[n] & 0xC0) == 0x80)
            n--;
    }
    return ggi_strndup(p, n);
}

/* The last non-empty line of text (NULL when none); *len gets its length. */
const char *ggi_lang_last_line(const char *text, size_t *len)
{
    const char *end = text + strlen(text);
    while (end > text) {
        while (end > text && isspace((unsigned char)end[-1]))
            end--;
        if (end == text)
            break;
        const char *start = end;
        while (start > text && start[-1] != '\n')
            start--;
        *len = (size_t)(end - start);
        return start;
    }
    return NULL;
}

/* The last bytes of text, starting at a line when one starts within them. */
char *ggi_lang_tail(const char *text, size_t max)
{
    size_t n = strlen(text);
    const char *p = text;
    if (n > max) {
        p = text + n - max;
        const char *nl = strchr(p, '\n');
        if (nl && nl[1])
            p = nl + 1;
        while (((unsigned char)*p & 0xC0) == 0x80)
            p++;
    }
    return ggi_lang_trimmed(p, strlen(p), max);
}

int ggi_lang_add_finding(cJSON *arr, const char *severity, long line, long col, const char *msg,
                       size_t msg_len)
{
    if (cJSON_GetArraySize(arr) >= GGI_LANG_MAX_FINDINGS)
        return GG_OK;
    char *m = ggi_lang_trimmed(msg, msg_len, GGI_LANG_MAX_MESSAGE);
    cJSON *f = m ? cJSON_CreateObject() : NULL;
    if (!f) {
        free(m);
        return GG_ENOMEM;
    }
    cJSON_AddItemToArray(arr, f); /* cannot fail: both are valid */
    int rc = ggi_json_add_str(f, "severity", severity);
    if (!rc)
        rc = ggi_json_add_num(f, "line", (double)line);
    if (!rc)
        rc = ggi_json_add_num(f, "column", (double)col);
    if (!rc)
        rc = ggi_json_add_str(f, "message", m);
    free(m);
    return rc;
}

/* Reads "GG-FINDING {json}" (from the Python harness) at line p; 1 when it was one. */
int ggi_lang_harness_finding(const char *p, size_t n, cJSON *arr, int *rc)
{
    static const char tag[] = "GG-FINDING ";
    if (n < sizeof tag - 1 || strncmp(p, tag, sizeof tag - 1) != 0)
        return 0;
    cJSON *f = NULL;
    if (ggi_json_parse(p + sizeof tag - 1, n - (sizeof tag - 1), &f) || !cJSON_IsObject(f)) {
        cJSON_Delete(f);
        return 0;
    }
    const char *sev = ggi_lang_str(f, "severity");
    const char *msg = ggi_lang_str(f, "message");
    *rc = ggi_lang_add_finding(arr, strcmp(sev, "warning") == 0 ? "warning" : "error",
                      (long)ggi_lang_num(f, "line", 0), (long)ggi_lang_num(f, "column", 0), msg,
                      strlen(msg));
    cJSON_Delete(f);
    return 1;
}

const char *ggi_lang_digits(const char *p, const char *end, long *out)
{
    long v = 0;
    const char *s = p;
    while (p < end && isdigit((unsigned char)*p) && p - s < 9)
        v = v * 10 + (*p++ - '0');
    if (p == s)
        return NULL;
    *out = v;
    return p;
}

/* A compiler diagnostic "FILE:LINE[:COL]: error|fatal error|warning: message". *file_len
 * gets the length of FILE. Returns the severity ("error", "warning") or NULL. */
const char *ggi_lang_diagnostic(const char *p, size_t n, long *line, long *col,
                                    const char **msg, size_t *msg_len, size_t *file_len)
{
    const char *end = p + n, *q = p;
    while (q < end && *q != ':' && !isspace((unsigned char)*q))
        q++;
    if (q == p || q >= end || *q != ':')
        return NULL;
    *file_len = (size_t)(q - p);
    if (!(q = ggi_lang_digits(q + 1, end, line)) || q >= end || *q != ':')
        return NULL;
    *col = 0;
    const char *r = ggi_lang_digits(q + 1, end, col);
    if (r && r < end && *r == ':')
        q = r;
    q++;
    while (q < end && *q == ' ')
        q++;
    const char *sev = NULL;
    static const struct { const char *word; const char *sev; } kinds[] = {
        { "fatal error:", "error" }, { "error:", "error" }, { "warning:", "warning" }
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        size_t k = strlen(kinds[i].word);
        if ((size_t)(end - q) >= k && strncmp(q, kinds[i].word, k) == 0) {
            sev = kinds[i].sev;
            q += k;
            break;
        }
    }
    if (!sev) {
        /* rustc's short form: "error[E0425]: ..." */
        const char *close = NULL;
        if ((size_t)(end - q) > 6 && strncmp(q, "error[", 6) == 0 &&
            (close = memchr(q, ']', (size_t)(end - q))) && close + 1 < end && close[1] == ':') {
            sev = "error";
            q = close + 2;
        } else {
            return NULL;
        }
    }
    while (q < end && *q == ' ')
        q++;
    *msg = q;
    *msg_len = (size_t)(end - q);
    return sev;
}
const char *ggi_lang_signal_name(int sig)
{
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGABRT: return "SIGABRT";
    case SIGKILL: return "SIGKILL";
    case SIGFPE: return "SIGFPE";
    case SIGBUS: return "SIGBUS";
    case SIGILL: return "SIGILL";
    case SIGTERM: return "SIGTERM";
    case SIGXCPU: return "SIGXCPU";
    case SIGXFSZ: return "SIGXFSZ";
    case SIGPIPE: return "SIGPIPE";
    case SIGALRM: return "SIGALRM";
    case SIGTRAP: return "SIGTRAP";
    case SIGSYS: return "SIGSYS";
    case SIGINT: return "SIGINT";
    case SIGHUP: return "SIGHUP";
    case SIGQUIT: return "SIGQUIT";
    default: return NULL;
    }
}

/* A C assert() message: "...: FILE:LINE: FUNC: Assertion `EXPR' failed." */
int ggi_lang_c_assert(const char *err, char *file, size_t file_cap, long *line, char **expr)
{
    const char *a = strstr(err, "Assertion `");
    if (!a)
        return 0;
    const char *ls = a;
    while (ls > err && ls[-1] != '\n')
        ls--;
    const char *e = strstr(a, "' failed");
    const char *eol = strchr(a, '\n');
    if (!e || (eol && e > eol))
        return 0;
    *expr = ggi_strndup(a + 11, (size_t)(e - (a + 11)) > GGI_LANG_MAX_REASON_LINE
                                    ? GGI_LANG_MAX_REASON_LINE
                                    : (size_t)(e - (a + 11)));
    if (!*expr)
        return -1;
    /* find "FILE:LINE:" within the line before the assertion text */
    file[0] = '\0';
    *line = 0;
    for (const char *p = ls; p < a; p++) {
        if (p != ls && p[-1] != ' ')
            continue;
        const char *c = p;
        while (c < a && *c != ':' && *c != ' ')
            c++;
        long ln = 0;
        const char *d;
        if (c < a && *c == ':' && (d = ggi_lang_digits(c + 1, a, &ln)) && *d == ':') {
            snprintf(file, file_cap, "%.*s", (int)(c - p), p);
            *line = ln;
            break;
        }
    }
    return 1;
}

int ggi_lang_has_error(const cJSON *arr)
{
    const cJSON *f;
    cJSON_ArrayForEach(f, arr)
    {
        if (strcmp(ggi_lang_str(f, "severity"), "error") == 0)
            return 1;
    }
    return 0;
}

int ggi_lang_need(const ggi_runtimes *rt, int tool)
{
    if (!rt || !rt->tool[tool])
        return ggi_error(GG_ENOTFOUND, "no %s found (install it in /usr/bin or set %s)",
                         ggi_tool_name(tool), ggi_tool_env(tool));
    return GG_OK;
}

char *ggi_lang_line_with(const char *text, const char *needle)
{
    const char *a = strstr(text, needle);
    if (!a)
        return NULL;
    const char *s = a;
    while (s > text && s[-1] != '\n')
        s--;
    const char *e = strchr(a, '\n');
    return ggi_lang_trimmed(s, e ? (size_t)(e - s) : strlen(s), GGI_LANG_MAX_REASON_LINE);
}

int ggi_lang_sh_job(const ggi_task *t, const char *prefix, const char *script,
                    const char *const *files, const char *const *env, int min_memory_mb,
                    cJSON **out)
{
    cJSON *req = cJSON_CreateObject(), *fa = NULL, *ea = NULL;
    if (!req)
        return ggi_lang_oom();
    char *sh = prefix ? ggi_asprintf("%s/bin/sh", prefix) : ggi_strdup("/bin/sh");
    int rc = sh ? GG_OK : GG_ENOMEM;
    if (!rc) {
        const char *argv[] = { sh, "-c", script };
        rc = ggi_lang_add_argv(req, argv, 3);
    }
    free(sh);
    if (!rc)
        rc = (fa = cJSON_AddArrayToObject(req, "files")) ? GG_OK : GG_ENOMEM;
    for (size_t i = 0; !rc && files && files[i]; i += 2)
        rc = ggi_lang_add_file(fa, files[i], files[i + 1]);
    if (!rc)
        rc = (ea = cJSON_AddObjectToObject(req, "env")) ? GG_OK : GG_ENOMEM;
    for (size_t i = 0; !rc && env && env[i]; i += 2)
        rc = ggi_json_add_str(ea, env[i], env[i + 1] ? env[i + 1] : "");
    int mem = ggi_lang_memory(t);
    if (!rc)
        rc = ggi_lang_add_limits(req, ggi_lang_timeout(t),
                                 mem < min_memory_mb ? min_memory_mb : mem, t->cpu_s);
    if (rc) {
        cJSON_Delete(req);
        return ggi_lang_oom();
    }
    *out = req;
    return GG_OK;
}
