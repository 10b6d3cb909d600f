/*
 * lang_go.c - Go: `go test` of a package main made of solution.go (the program) and
 * main_test.go (the task's test: a Go test file with its package clause and imports, as
 * HumanEval-X's test_setup + test give it).
 *
 * solution.go is assembled: the package clause and every import declaration of stub +
 * completion are taken out, and `package main` with the imports its code uses put back (an
 * import declared but unused is a compile error in Go, and models often leave one out or
 * add one): a package is used when NAME. appears outside comments and strings, for the
 * imports the text declared and a list of standard packages (fmt, math, strings, strconv,
 * sort, ...). The test file gets the same treatment (HumanEval-X's tests call math.Abs and
 * the like without importing them). The test job builds the test binary (`go test -c`, which also runs go vet's
 * default checks: the analysis; its "FILE:LINE:COL: message" lines become findings) and then
 * runs it: t.Errorf, t.Fatal, a failed testify assertion or a panic fails it. Dependencies
 * come from GOPATH=/usr/share/gocode (Debian's golang-*-dev packages, such as
 * golang-github-stretchr-testify-dev), GO111MODULE=off and GOPROXY=off: nothing is fetched.
 * GOCACHE is the prepared read-only cache (lang_prep.c), so the standard library and
 * testify are not compiled again by every job.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lang_impl.h"

#define GO_MIN_MEMORY_MB 1024
#define MAX_IMPORTS 64

static const char *const GO_STD[] = { "fmt", "math", "strings", "strconv", "sort", "bytes",
                                      "unicode", "regexp", "math/rand", "crypto/md5",
                                      "encoding/hex", "math/big", "errors", "time", "reflect",
                                      "unicode/utf8", "math/bits", "container/heap", NULL };

typedef struct import_spec {
    char name[64];  /* what the code calls it */
    char spec[256]; /* the line to write: `"math"` or `m "math"` */
} import_spec;

static void add_import(import_spec *im, int *n, const char *p, size_t len)
{
    while (len && isspace((unsigned char)*p))
        p++, len--;
    while (len && isspace((unsigned char)p[len - 1]))
        len--;
    const char *q1 = memchr(p, '"', len);
    if (!q1 || *n >= MAX_IMPORTS || len >= sizeof im[0].spec)
        return;
    const char *q2 = memchr(q1 + 1, '"', len - (size_t)(q1 + 1 - p));
    if (!q2)
        return;
    import_spec s;
    memset(&s, 0, sizeof s);
    snprintf(s.spec, sizeof s.spec, "%.*s", (int)len, p);
    const char *alias_end = q1;
    while (alias_end > p && isspace((unsigned char)alias_end[-1]))
        alias_end--;
    if (alias_end > p) {
        snprintf(s.name, sizeof s.name, "%.*s", (int)(alias_end - p), p);
    } else {
        const char *b = q2;
        while (b > q1 + 1 && b[-1] != '/')
            b--;
        snprintf(s.name, sizeof s.name, "%.*s", (int)(q2 - b), b);
    }
    for (int i = 0; i < *n; i++)
        if (!strcmp(im[i].spec, s.spec) || !strcmp(im[i].name, s.name))
            return;
    im[(*n)++] = s;
}

/* Takes the package clause and import declarations out of text into im; the rest to body. */
static int split_go(const char *text, import_spec *im, int *n, ggi_buf *body)
{
    int in_block = 0;
    for (const char *l = text; *l; l = ggi_lang_next_line(l)) {
        const char *eol = strchr(l, '\n');
        size_t len = eol ? (size_t)(eol - l) + 1 : strlen(l);
        const char *p = l;
        while (ggi_lang_is_blank(*p))
            p++;
        if (in_block) {
            if (*p == ')')
                in_block = 0;
            else
                add_import(im, n, p, (size_t)(l + len - p));
            continue;
        }
        const char *q;
        if ((q = ggi_lang_match_word(p, "package")) && ggi_lang_is_blank(*q))
            continue;
        if ((q = ggi_lang_match_word(p, "import"))) {
            while (ggi_lang_is_blank(*q))
                q++;
            if (*q == '(') {
                in_block = 1;
                const char *r = q + 1;
                const char *close = memchr(r, ')', (size_t)(l + len - r));
                if (close) {
                    add_import(im, n, r, (size_t)(close - r));
                    in_block = 0;
                }
                continue;
            }
            if (*q == '"' || ggi_lang_is_ident((unsigned char)*q)) {
                add_import(im, n, q, (size_t)(l + len - q));
                continue;
            }
        }
        if (ggi_buf_append(body, l, len))
            return GG_ENOMEM;
    }
    return GG_OK;
}

/* body with comments and string/rune literals blanked out */
static char *code_only(const char *s)
{
    char *c = ggi_strdup(s);
    if (!c)
        return NULL;
    for (char *p = c; *p; p++) {
        if (p[0] == '/' && p[1] == '/') {
            while (*p && *p != '\n')
                *p++ = ' ';
            if (!*p)
                break;
        } else if (p[0] == '/' && p[1] == '*') {
            char *e = strstr(p + 2, "*/");
            char *end = e ? e + 2 : p + strlen(p);
            for (; p < end; p++)
                if (*p != '\n')
                    *p = ' ';
            p--;
        } else if (*p == '"' || *p == '`' || *p == '\'') {
            char q = *p;
            *p++ = ' ';
            while (*p && *p != q && !(q != '`' && *p == '\n')) {
                if (q != '`' && *p == '\\' && p[1])
                    *p++ = ' ';
                *p++ = ' ';
            }
            if (!*p)
                break;
            *p = ' ';
        }
    }
    return c;
}

static int uses(const char *code, const char *name)
{
    size_t k = strlen(name);
    for (const char *p = strstr(code, name); p; p = strstr(p + 1, name))
        if ((p == code || (!ggi_lang_is_ident((unsigned char)p[-1]) && p[-1] != '.')) &&
            p[k] == '.')
            return 1;
    return 0;
}

/* text with `package main` and only the imports its code uses (see above) */
static int fix_imports(char *text, char **out)
{
    if (!text)
        return ggi_lang_oom();
    int rc;
    import_spec im[MAX_IMPORTS];
    int n = 0;
    ggi_buf body = GGI_BUF_INIT, b = GGI_BUF_INIT;
    rc = split_go(text, im, &n, &body);
    free(text);
    for (size_t i = 0; GO_STD[i]; i++) {
        char q[64];
        snprintf(q, sizeof q, "\"%s\"", GO_STD[i]);
        add_import(im, &n, q, strlen(q));
    }
    char *code = rc ? NULL : code_only(body.data ? body.data : "");
    if (!code)
        rc = GG_ENOMEM;
    int any = 0;
    if (!rc)
        rc = ggi_buf_puts(&b, "package main\n\n");
    for (int i = 0; !rc && i < n; i++) {
        if (!uses(code, im[i].name))
            continue;
        rc = ggi_buf_puts(&b, any ? "    " : "import (\n    ");
        if (!rc)
            rc = ggi_buf_puts(&b, im[i].spec);
        if (!rc)
            rc = ggi_buf_puts(&b, "\n");
        any = 1;
    }
    if (!rc && any)
        rc = ggi_buf_puts(&b, ")\n\n");
    if (!rc)
        rc = ggi_buf_puts(&b, body.data ? body.data : "");
    free(code);
    ggi_buf_free(&body);
    if (rc) {
        ggi_buf_free(&b);
        return ggi_lang_oom();
    }
    *out = ggi_buf_steal(&b);
    return *out ? GG_OK : ggi_lang_oom();
}

static int go_program(const ggi_task *t, const char *completion, char **out)
{
    char *text = NULL;
    int rc = ggi_lang_program_with(t, completion, NULL, &text);
    return rc ? rc : fix_imports(text, out);
}

static int go_test(const ggi_task *t, const char *program, const ggi_runtimes *rt, cJSON **out)
{
    int rc;
    if ((rc = ggi_lang_need(rt, GGI_TOOL_GO)))
        return rc;
    const char *dir = ggi_lang_prepared_go(rt);
    if (!dir)
        return GG_EIO;
    char *cache = ggi_asprintf("%s/gocache", dir);
    if (!cache)
        return ggi_lang_oom();
    const char *env[40] = { "GG_GO", rt->tool[GGI_TOOL_GO], "GOCACHE", cache, "HOME", "." };
    size_t k = 6;
    char names[16][32];
    for (size_t i = 0; ggi_lang_go_env_fmt[i] && i < 16 && k + 2 < 39; i++) {
        const char *eq = strchr(ggi_lang_go_env_fmt[i], '=');
        snprintf(names[i], sizeof names[i], "%.*s", (int)(eq - ggi_lang_go_env_fmt[i]),
                 ggi_lang_go_env_fmt[i]);
        env[k++] = names[i];
        env[k++] = eq + 1;
    }
    env[k] = NULL;
    char *test = NULL;
    if ((rc = fix_imports(ggi_strdup(t->test ? t->test : ""), &test))) {
        free(cache);
        return rc;
    }
    const char *files[] = { "solution.go", program, "main_test.go", test, NULL };
    rc = ggi_lang_sh_job(t, dir,
                         "\"$GG_GO\" test -c -o prog.test . >&2 || " GGI_LANG_FAIL_ANALYSIS
                         "\nexec ./prog.test -test.count=1 >&2",
                         files, env, GO_MIN_MEMORY_MB, out);
    free(test);
    free(cache);
    return rc;
}

/* go's "./solution.go:5:2: undefined: x" (no severity word: an error) */
static int go_finding(const char *p, size_t n, cJSON *arr)
{
    const char *end = p + n, *g = NULL;
    for (const char *q = p; q + 4 <= end; q++)
        if (strncmp(q, ".go:", 4) == 0) {
            g = q;
            break;
        }
    if (!g || memchr(p, ' ', (size_t)(g - p)))
        return 0;
    long line = 0, col = 0;
    const char *q = ggi_lang_digits(g + 4, end, &line);
    if (!q || q >= end || *q != ':')
        return 0;
    const char *r = ggi_lang_digits(q + 1, end, &col);
    if (r && r < end && *r == ':')
        q = r;
    q++;
    while (q < end && *q == ' ')
        q++;
    return ggi_lang_add_finding(arr, "error", line, col, q, (size_t)(end - q)) ? -1 : 1;
}

/* "--- FAIL: TestX", testify's "Error:" and the first "FILE_test.go:N" or a panic. */
static int go_failure(const ggi_task *t, const cJSON *r, ggi_verdict *v)
{
    (void)t;
    const char *err = ggi_lang_str(r, "stderr");
    char *panic = ggi_lang_line_with(err, "panic: ");
    const char *fail = strstr(err, "--- FAIL: ");
    if (!fail && !panic)
        return 0;
    char test[128] = "";
    if (fail)
        sscanf(fail + 10, "%127s", test);
    const char *from = fail ? fail : err;
    long line = 0;
    const char *at = strstr(from, "_test.go:");
    if (at)
        ggi_lang_digits(at + 9, at + strlen(at), &line);
    char *what = NULL;
    const char *e = strstr(from, "Error:");
    if (panic) {
        what = ggi_strdup(panic);
    } else if (e) {
        /* "Error: Not equal:" and the expected/actual lines after it */
        ggi_buf b = GGI_BUF_INIT;
        const char *p = e;
        for (int i = 0; i < 3 && *p; i++, p = ggi_lang_next_line(p)) {
            const char *s = i ? p : p + 6;
            const char *eol = strchr(s, '\n');
            char *m = ggi_lang_trimmed(s, eol ? (size_t)(eol - s) : strlen(s), 120);
            if (!m || (i && !strstr(m, "expected") && !strstr(m, "actual"))) {
                free(m);
                break;
            }
            for (char *c = m; *c; c++)
                if (*c == '\t')
                    *c = ' ';
            if ((i && ggi_buf_puts(&b, " ")) || ggi_buf_puts(&b, m)) {
                free(m);
                break;
            }
            free(m);
        }
        what = ggi_buf_steal(&b);
    } else {
        const char *s = at;
        while (s && s > err && s[-1] != '\n')
            s--;
        what = s ? ggi_lang_line_with(s, "_test.go:") : ggi_strdup("the test failed");
    }
    free(panic);
    if (!what)
        return -1;
    if (test[0])
        v->reason = line ? ggi_asprintf("%s failed at main_test.go line %ld: %s", test, line,
                                        what)
                         : ggi_asprintf("%s failed: %s", test, what);
    else
        v->reason = ggi_strdup(what);
    v->signature = ggi_asprintf("%s@%ld", test[0] ? test : "panic", line);
    free(what);
    return 1;
}

static const char *const go_aliases[] = { "golang", NULL };
static const int go_tools[] = { GGI_TOOL_GO, -1 };

const ggi_lang_ops ggi_lang_go = {
    .name = "go",
    .aliases = go_aliases,
    .task_prefix = "Go/",
    .tools = go_tools,
    .program = go_program,
    .test = go_test,
    .failure = go_failure,
    .finding = go_finding,
};
