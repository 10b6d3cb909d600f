/*
 * lang.c - what differs per language (Python, C): assembling a program from a task's stub and
 * a completion, the executor requests that analyse and test it, and reading a job's result
 * back as findings or a verdict (reason and failure signature) that the next attempt can use.
 *
 * Python's test job runs an embedded harness (PY_HARNESS below). It compiles solution.py
 * and, when that fails, prints one "GG-FINDING {json}" line to stderr and exits with
 * GGI_LANG_ANALYSIS_EXIT before anything is executed. Otherwise it executes the program and
 * then the test in one namespace, so the test sees the program's functions as globals, as
 * HumanEval's tests expect. The namespace is a module registered in sys.modules (so
 * dataclasses, typing and `from solution import f` in a test work). Its __name__ is
 * "solution" when the task names an entry point (a function task: a demo block under
 * `if __name__ == "__main__":` does not run, as in HumanEval's own evaluation) and
 * "__main__" when it names none (a script task: the program runs as the script it is). When the test defines a callable check and the
 * task names an entry point, check(namespace[entry_point]) is called. An uncaught exception
 * prints a normal traceback and exits 1; exit() called by the program before the test ran
 * is a failure (it would otherwise skip the test), exit() called by the test is honoured.
 *
 * C's analysis job is `cc -std=c11 -Wall -fsyntax-only solution.c`; its test job compiles
 * program and test as one translation unit (with #line markers, so diagnostics and assert()
 * messages name solution.c or test.c) and runs it. A compile failure there exits with
 * GGI_LANG_COMPILE_EXIT after a marker line, so it is told apart from the program's own
 * exit codes. Compile and run share the job's limits; the memory limit of a C test job is
 * at least 256 MB so the compiler itself fits.
 */
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lang.h"

#define DEFAULT_TIMEOUT_S 10.0
#define DEFAULT_MEMORY_MB 1024
#define C_MIN_MEMORY_MB 256
#define ANALYSIS_TIMEOUT_S 30.0
#define MAX_FINDINGS 100
#define MAX_MESSAGE 500
#define MAX_REASON_LINE 300
#define COMPILE_MARKER "GG-COMPILE-FAILED"
#define GGI_STR2(x) #x
#define GGI_STR(x) GGI_STR2(x)

/* The Python harness; argv[1] is the entry point or "". Kept short: it is sent with every
 * test job. */
static const char PY_HARNESS[] =
    "import sys\n"
    "\n"
    "\n"
    "def _gg_harness():\n"
    "    entry = sys.argv[1] if len(sys.argv) > 1 else ''\n"
    "    try:\n"
    "        with open('solution.py', 'rb') as f:\n"
    "            program = compile(f.read(), 'solution.py', 'exec', dont_inherit=True)\n"
    "    except (SyntaxError, ValueError) as e:\n"
    "        import json\n"
    "        if isinstance(e, SyntaxError):\n"
    "            line, col = e.lineno or 0, e.offset or 0\n"
    "            msg = '%s: %s' % (type(e).__name__, e.msg)\n"
    "        else:\n"
    "            line, col, msg = 0, 0, '%s: %s' % (type(e).__name__, e)\n"
    "        sys.stderr.write('GG-FINDING %s\\n' % json.dumps({'severity': 'error',\n"
    "                         'line': line, 'column': col, 'message': msg}))\n"
    "        return 90\n"
    "    import types\n"
    "    mod = types.ModuleType('solution' if entry else '__main__')\n"
    "    mod.__file__ = 'solution.py'\n"
    "    sys.modules[mod.__name__] = mod\n"
    "    ns = mod.__dict__\n"
    "    stage = 'solution.py'\n"
    "    try:\n"
    "        with open('test.py', 'rb') as f:\n"
    "            test = compile(f.read(), 'test.py', 'exec', dont_inherit=True)\n"
    "        exec(program, ns)\n"
    "        stage = 'test.py'\n"
    "        exec(test, ns)\n"
    "        if entry and callable(ns.get('check')):\n"
    "            if entry not in ns:\n"
    "                raise NameError(\"the solution does not define the entry point '%s'\"\n"
    "                                % entry)\n"
    "            ns['check'](ns[entry])\n"
    "    except SystemExit as e:\n"
    "        if stage == 'solution.py':\n"
    "            sys.stderr.write('SystemExit: solution.py called exit(%r) before the test '\n"
    "                             'ran\\n' % (e.code,))\n"
    "            return 1\n"
    "        raise\n"
    "    except BaseException:\n"
    "        import traceback\n"
    "        traceback.print_exc()\n"
    "        return 1\n"
    "    return 0\n"
    "\n"
    "\n"
    "sys.exit(_gg_harness())\n";

static int oom(void)
{
    return ggi_error(GG_ENOMEM, "out of memory");
}

int ggi_lang_supported(const char *language)
{
    return language && (strcmp(language, "python") == 0 || strcmp(language, "c") == 0);
}

static int is_python(const ggi_task *t)
{
    return strcmp(t->language, "python") == 0;
}

static int check_task(const ggi_task *t)
{
    if (!t || !t->language)
        return ggi_error(GG_EINVAL, "no task or task without a language");
    if (!ggi_lang_supported(t->language))
        return ggi_error(GG_EINVAL, "language '%s' is not supported (supported: python, c)",
                         t->language);
    return GG_OK;
}

/* ---- program assembly ---- */

static int is_ident_char(int c)
{
    return isalnum(c) || c == '_';
}

static int is_blank(int c)
{
    return c == ' ' || c == '\t';
}

/* Start of the line after p's line, or the end of text. */
static const char *next_line(const char *p)
{
    const char *nl = strchr(p, '\n');
    return nl ? nl + 1 : p + strlen(p);
}

/* Start of the line before the line starting at p (p must be a line start > text). */
static const char *prev_line(const char *text, const char *p)
{
    const char *q = p - 1; /* the '\n' ending the previous line */
    while (q > text && q[-1] != '\n')
        q--;
    return q;
}

/* Matches word at p followed by a non-identifier character; returns the end or NULL. */
static const char *match_word(const char *p, const char *word)
{
    size_t n = strlen(word);
    if (strncmp(p, word, n) != 0 || is_ident_char((unsigned char)p[n]))
        return NULL;
    return p + n;
}

/* The line (at column 0) where Python text defines entry point ep, including decorators
 * right above it; NULL when none. */
static const char *py_find_def(const char *text, const char *ep)
{
    for (const char *line = text; *line; line = next_line(line)) {
        const char *p = line, *q;
        if ((q = match_word(p, "async")) && is_blank(*q)) {
            p = q;
            while (is_blank(*p))
                p++;
        }
        if (!(q = match_word(p, "def")) || !is_blank(*q))
            continue;
        p = q;
        while (is_blank(*p))
            p++;
        if (!(q = match_word(p, ep)))
            continue;
        while (is_blank(*q))
            q++;
        if (*q != '(')
            continue;
        while (line > text) {
            const char *prev = prev_line(text, line);
            if (*prev != '@')
                break;
            line = prev;
        }
        return line;
    }
    return NULL;
}

static int is_c_type_char(int c)
{
    return is_ident_char(c) || is_blank(c) || c == '*';
}

/* 1 when the parenthesis at p (the one after a function's name) is followed by something
 * other than ';' once it is closed: a definition rather than a prototype or a call. */
static int c_is_definition(const char *p)
{
    int depth = 0;
    for (; *p; p++) {
        if (*p == '(')
            depth++;
        else if (*p == ')' && --depth == 0)
            break;
    }
    if (!*p)
        return 1; /* the text ends inside the parameter list: a stub that stops there */
    p++;
    while (isspace((unsigned char)*p))
        p++;
    return *p != ';' && *p != ',' && *p != ')';
}

/* The line (at column 0) where C text defines function ep: `<type...> ep(` with the return
 * type on that line or alone on the line before. NULL when none. */
static const char *c_find_def(const char *text, const char *ep)
{
    for (const char *line = text; *line; line = next_line(line)) {
        if (!is_ident_char((unsigned char)*line))
            continue; /* preprocessor lines, comments, indented code, braces */
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        const char *p = line, *end = line + len;
        /* the first whole-word occurrence of ep on this line */
        const char *at = NULL;
        for (; p < end; p++) {
            if ((p == line || !is_ident_char((unsigned char)p[-1])) && match_word(p, ep)) {
                at = p;
                break;
            }
        }
        if (!at)
            continue;
        int typed = 0, ok = 1;
        for (const char *q = line; q < at; q++) {
            if (!is_c_type_char((unsigned char)*q))
                ok = 0;
            if (is_ident_char((unsigned char)*q))
                typed = 1;
        }
        if (!ok)
            continue;
        const char *q = at + strlen(ep);
        while (is_blank(*q))
            q++;
        if (*q != '(' || !c_is_definition(q))
            continue;
        if (!typed) {
            /* GNU style: the return type alone on the line before. */
            if (line == text)
                continue;
            const char *prev = prev_line(text, line);
            int type_line = prev < line - 1 && is_ident_char((unsigned char)*prev);
            for (const char *r = prev; type_line && r < line - 1; r++)
                if (!is_c_type_char((unsigned char)*r))
                    type_line = 0;
            if (!type_line)
                continue;
            line = prev;
        }
        return line;
    }
    return NULL;
}

int ggi_lang_program(const ggi_task *t, const char *completion, char **out)
{
    if (!out)
        return ggi_error(GG_EINVAL, "no output pointer");
    *out = NULL;
    int rc = check_task(t);
    if (rc)
        return rc;
    if (!completion)
        return ggi_error(GG_EINVAL, "no completion");
    ggi_buf b = GGI_BUF_INIT;
    const char *stub = t->stub;
    if (stub && *stub) {
        size_t keep = strlen(stub);
        if (t->entry_point) {
            const char *(*find)(const char *, const char *) =
                is_python(t) ? py_find_def : c_find_def;
            if (find(completion, t->entry_point)) {
                /* A whole function: keep what the stub has before its own definition. */
                const char *def = find(stub, t->entry_point);
                if (def)
                    keep = (size_t)(def - stub);
            }
        }
        rc = ggi_buf_append(&b, stub, keep);
        if (!rc && keep > 0 && stub[keep - 1] != '\n')
            rc = ggi_buf_puts(&b, "\n");
    }
    if (!rc)
        rc = ggi_buf_puts(&b, completion);
    if (rc) {
        ggi_buf_free(&b);
        return oom();
    }
    *out = ggi_buf_steal(&b);
    return *out ? GG_OK : oom();
}

/* ---- executor requests ---- */

static int add_file(cJSON *files, const char *path, const char *content)
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

static int add_argv(cJSON *req, const char *const *argv, size_t n)
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

static int add_limits(cJSON *req, double timeout_s, int memory_mb, double cpu_s)
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

static double task_timeout(const ggi_task *t)
{
    return t->timeout_s > 0 ? t->timeout_s : DEFAULT_TIMEOUT_S;
}

static int task_memory(const ggi_task *t)
{
    return t->memory_mb > 0 ? t->memory_mb : DEFAULT_MEMORY_MB;
}

static int need_cc(const ggi_runtimes *rt)
{
    if (!rt || !rt->cc)
        return ggi_error(GG_ENOTFOUND, "no C compiler found (set GRYPHGEN_CC or CC)");
    return GG_OK;
}

int ggi_lang_analysis_request(const ggi_task *t, const char *program, const ggi_runtimes *rt,
                              cJSON **out)
{
    if (!out)
        return ggi_error(GG_EINVAL, "no output pointer");
    *out = NULL;
    int rc = check_task(t);
    if (rc)
        return rc;
    if (!program)
        return ggi_error(GG_EINVAL, "no program");
    if (is_python(t))
        return GG_OK; /* the test job's harness compiles first */
    if ((rc = need_cc(rt)))
        return rc;
    cJSON *req = cJSON_CreateObject();
    if (!req)
        return oom();
    const char *argv[] = { rt->cc, "-std=c11", "-Wall", "-fsyntax-only", "solution.c" };
    cJSON *files = NULL;
    rc = add_argv(req, argv, sizeof argv / sizeof argv[0]);
    if (!rc)
        rc = (files = cJSON_AddArrayToObject(req, "files")) ? GG_OK : GG_ENOMEM;
    if (!rc)
        rc = add_file(files, "solution.c", program);
    int mem = task_memory(t);
    if (!rc)
        rc = add_limits(req, ANALYSIS_TIMEOUT_S, mem > DEFAULT_MEMORY_MB ? mem : DEFAULT_MEMORY_MB,
                        0);
    if (rc) {
        cJSON_Delete(req);
        return oom();
    }
    *out = req;
    return GG_OK;
}

int ggi_lang_test_request(const ggi_task *t, const char *program, const ggi_runtimes *rt,
                          cJSON **out)
{
    if (!out)
        return ggi_error(GG_EINVAL, "no output pointer");
    *out = NULL;
    int rc = check_task(t);
    if (rc)
        return rc;
    if (!program)
        return ggi_error(GG_EINVAL, "no program");
    cJSON *req = NULL, *files = NULL, *env = NULL;
    if (is_python(t)) {
        if (!rt || !rt->python)
            return ggi_error(GG_ENOTFOUND, "no Python interpreter found (set GRYPHGEN_PYTHON)");
        if (!(req = cJSON_CreateObject()))
            return oom();
        const char *argv[] = { rt->python, "-c", PY_HARNESS,
                               t->entry_point ? t->entry_point : "" };
        rc = add_argv(req, argv, sizeof argv / sizeof argv[0]);
        if (!rc)
            rc = (files = cJSON_AddArrayToObject(req, "files")) ? GG_OK : GG_ENOMEM;
        if (!rc)
            rc = add_file(files, "solution.py", program);
        if (!rc)
            rc = add_file(files, "test.py", t->test ? t->test : "");
        /* A fixed hash seed makes set and dict-of-str orders, and so failures, repeatable. */
        if (!rc)
            rc = (env = cJSON_AddObjectToObject(req, "env")) ? GG_OK : GG_ENOMEM;
        if (!rc)
            rc = ggi_json_add_str(env, "PYTHONHASHSEED", "0");
        if (!rc)
            rc = ggi_json_add_str(env, "PYTHONDONTWRITEBYTECODE", "1");
        if (!rc)
            rc = add_limits(req, task_timeout(t), task_memory(t), t->cpu_s);
    } else {
        if ((rc = need_cc(rt)))
            return rc;
        if (!(req = cJSON_CreateObject()))
            return oom();
        ggi_buf src = GGI_BUF_INIT;
        rc = ggi_buf_puts(&src, "#line 1 \"solution.c\"\n");
        if (!rc)
            rc = ggi_buf_puts(&src, program);
        if (!rc)
            rc = ggi_buf_puts(&src, "\n#line 1 \"test.c\"\n");
        if (!rc)
            rc = ggi_buf_puts(&src, t->test ? t->test : "");
        const char *argv[] = {
            "/bin/sh", "-c",
            "\"$GG_CC\" -std=c11 -Wall -o prog main.c -lm || { echo " COMPILE_MARKER
            " >&2; exit " GGI_STR(GGI_LANG_COMPILE_EXIT) "; }\nexec ./prog"
        };
        if (!rc)
            rc = add_argv(req, argv, sizeof argv / sizeof argv[0]);
        if (!rc)
            rc = (files = cJSON_AddArrayToObject(req, "files")) ? GG_OK : GG_ENOMEM;
        if (!rc)
            rc = add_file(files, "main.c", src.data ? src.data : "");
        ggi_buf_free(&src);
        if (!rc)
            rc = (env = cJSON_AddObjectToObject(req, "env")) ? GG_OK : GG_ENOMEM;
        if (!rc)
            rc = ggi_json_add_str(env, "GG_CC", rt->cc);
        int mem = task_memory(t);
        if (!rc)
            rc = add_limits(req, task_timeout(t), mem < C_MIN_MEMORY_MB ? C_MIN_MEMORY_MB : mem,
                            t->cpu_s);
    }
    if (rc) {
        cJSON_Delete(req);
        return oom();
    }
    *out = req;
    return GG_OK;
}

/* ---- reading results ---- */

static double num_of(const cJSON *r, const char *key, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, key);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static int bool_of(const cJSON *r, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, key);
    return cJSON_IsTrue(v) || (cJSON_IsNumber(v) && v->valuedouble != 0);
}

static const char *str_of(const cJSON *r, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, key);
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : "";
}

/* Copies at most max bytes of [p, p+n) with trailing white space removed. */
static char *trimmed(const char *p, size_t n, size_t max)
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
static const char *last_line(const char *text, size_t *len)
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
static char *tail_of(const char *text, size_t max)
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
    return trimmed(p, strlen(p), max);
}

static int add_finding(cJSON *arr, const char *severity, long line, long col, const char *msg,
                       size_t msg_len)
{
    if (cJSON_GetArraySize(arr) >= MAX_FINDINGS)
        return GG_OK;
    char *m = trimmed(msg, msg_len, MAX_MESSAGE);
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
static int parse_harness_finding(const char *p, size_t n, cJSON *arr, int *rc)
{
    static const char tag[] = "GG-FINDING ";
    if (n < sizeof tag - 1 || strncmp(p, tag, sizeof tag - 1) != 0)
        return 0;
    cJSON *f = NULL;
    if (ggi_json_parse(p + sizeof tag - 1, n - (sizeof tag - 1), &f) || !cJSON_IsObject(f)) {
        cJSON_Delete(f);
        return 0;
    }
    const char *sev = str_of(f, "severity");
    const char *msg = str_of(f, "message");
    *rc = add_finding(arr, strcmp(sev, "warning") == 0 ? "warning" : "error",
                      (long)num_of(f, "line", 0), (long)num_of(f, "column", 0), msg,
                      strlen(msg));
    cJSON_Delete(f);
    return 1;
}

static const char *parse_digits(const char *p, const char *end, long *out)
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
static const char *parse_diagnostic(const char *p, size_t n, long *line, long *col,
                                    const char **msg, size_t *msg_len, size_t *file_len)
{
    const char *end = p + n, *q = p;
    while (q < end && *q != ':' && !isspace((unsigned char)*q))
        q++;
    if (q == p || q >= end || *q != ':')
        return NULL;
    *file_len = (size_t)(q - p);
    if (!(q = parse_digits(q + 1, end, line)) || q >= end || *q != ':')
        return NULL;
    *col = 0;
    const char *r = parse_digits(q + 1, end, col);
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
    if (!sev)
        return NULL;
    while (q < end && *q == ' ')
        q++;
    *msg = q;
    *msg_len = (size_t)(end - q);
    return sev;
}

/* Adds every finding in text (harness lines and compiler diagnostics) to arr. */
static int collect_findings(const char *text, cJSON *arr)
{
    for (const char *p = text; *p; p = next_line(p)) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        int rc = GG_OK;
        if (parse_harness_finding(p, n, arr, &rc)) {
            if (rc)
                return rc;
            continue;
        }
        long line = 0, col = 0;
        const char *msg = NULL;
        size_t msg_len = 0, file_len = 0;
        const char *sev = parse_diagnostic(p, n, &line, &col, &msg, &msg_len, &file_len);
        if (sev && (rc = add_finding(arr, sev, line, col, msg, msg_len)))
            return rc;
    }
    return GG_OK;
}

static int has_error(const cJSON *arr)
{
    const cJSON *f;
    cJSON_ArrayForEach(f, arr)
    {
        if (strcmp(str_of(f, "severity"), "error") == 0)
            return 1;
    }
    return 0;
}

int ggi_lang_analysis_read(const ggi_task *t, const cJSON *exec_result, cJSON **out_findings,
                           int *out_ok)
{
    (void)t;
    if (!out_findings || !out_ok)
        return ggi_error(GG_EINVAL, "no output pointer");
    *out_findings = NULL;
    *out_ok = 0;
    if (!cJSON_IsObject(exec_result))
        return ggi_error(GG_EINVAL, "the analysis result must be a JSON object");
    cJSON *arr = cJSON_CreateArray();
    if (!arr)
        return oom();
    const char *err = str_of(exec_result, "stderr");
    int rc = collect_findings(err, arr);
    int failed = bool_of(exec_result, "timed_out") || bool_of(exec_result, "cancelled") ||
                 num_of(exec_result, "exit_code", 0) != 0 || num_of(exec_result, "signal", 0) != 0;
    if (!rc && failed && !has_error(arr)) {
        /* The analyser failed without a diagnostic we can read: say what it said. */
        char *tail = NULL;
        if (bool_of(exec_result, "timed_out"))
            tail = ggi_strdup("the analysis timed out");
        else if (bool_of(exec_result, "cancelled"))
            tail = ggi_strdup("the analysis was cancelled");
        else if (*err)
            tail = tail_of(err, MAX_MESSAGE);
        else
            tail = ggi_asprintf("the analysis failed with exit code %d and no message",
                                (int)num_of(exec_result, "exit_code", 0));
        rc = tail ? add_finding(arr, "error", 0, 0, tail, strlen(tail)) : GG_ENOMEM;
        free(tail);
    }
    if (rc) {
        cJSON_Delete(arr);
        return oom();
    }
    *out_ok = !has_error(arr);
    *out_findings = arr;
    return GG_OK;
}

/* ---- verdicts ---- */

static const char *signal_name(int sig)
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

/* A Python traceback's gist: its last line (the exception) and its innermost frame in
 * solution.py or test.py. */
typedef struct py_failure {
    char *exc_line;   /* "AssertionError" or "NameError: name 'x' is not defined" */
    char exc_type[128];
    char file[16];    /* "test.py", "solution.py" or "" */
    long line;
} py_failure;

static int read_traceback(const char *err, py_failure *pf)
{
    const char *tb = NULL;
    for (const char *p = strstr(err, "Traceback (most recent call last):"); p;
         p = strstr(p + 1, "Traceback (most recent call last):"))
        tb = p;
    if (!tb)
        return 0;
    /* Frames: `  File "NAME", line N[, in F]`. */
    for (const char *p = tb; *p; p = next_line(p)) {
        const char *q = p;
        while (is_blank(*q))
            q++;
        static const char *const names[] = { "test.py", "solution.py" };
        if (strncmp(q, "File \"", 6) != 0)
            continue;
        q += 6;
        for (size_t i = 0; i < 2; i++) {
            size_t k = strlen(names[i]);
            if (strncmp(q, names[i], k) == 0 && strncmp(q + k, "\", line ", 8) == 0) {
                long ln = 0;
                const char *e = q + k + 8;
                if (parse_digits(e, e + strlen(e), &ln)) {
                    snprintf(pf->file, sizeof pf->file, "%s", names[i]);
                    pf->line = ln;
                }
            }
        }
    }
    /* The exception: the last line of the traceback that is not indented. */
    const char *last = NULL;
    size_t last_len = 0;
    for (const char *p = next_line(tb); *p; p = next_line(p)) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        if (n > 0 && !isspace((unsigned char)*p)) {
            last = p;
            last_len = n;
        }
    }
    if (!last)
        return 0;
    pf->exc_line = trimmed(last, last_len, MAX_REASON_LINE);
    if (!pf->exc_line)
        return -1;
    size_t k = 0;
    while (pf->exc_line[k] && (is_ident_char((unsigned char)pf->exc_line[k]) ||
                               pf->exc_line[k] == '.') &&
           k < sizeof pf->exc_type - 1)
        k++;
    memcpy(pf->exc_type, pf->exc_line, k);
    pf->exc_type[k] = '\0';
    if (!k)
        snprintf(pf->exc_type, sizeof pf->exc_type, "exception");
    return 1;
}

/* A C assert() message: "...: FILE:LINE: FUNC: Assertion `EXPR' failed." */
static int read_c_assert(const char *err, char *file, size_t file_cap, long *line, char **expr)
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
    *expr = ggi_strndup(a + 11, (size_t)(e - (a + 11)) > MAX_REASON_LINE
                                    ? MAX_REASON_LINE
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
        if (c < a && *c == ':' && (d = parse_digits(c + 1, a, &ln)) && *d == ':') {
            snprintf(file, file_cap, "%.*s", (int)(c - p), p);
            *line = ln;
            break;
        }
    }
    return 1;
}

/* The first compiler diagnostic that is an error, or else a linker's complaint, or else the
 * last line of the compiler's output. */
static int read_compile_error(const char *err, char **reason, char **sig)
{
    for (const char *p = err; *p; p = next_line(p)) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        long line = 0, col = 0;
        const char *msg = NULL;
        size_t msg_len = 0, file_len = 0;
        const char *sev = parse_diagnostic(p, n, &line, &col, &msg, &msg_len, &file_len);
        if (sev && strcmp(sev, "error") == 0) {
            char *m = trimmed(msg, msg_len, MAX_REASON_LINE);
            if (!m)
                return -1;
            *reason = ggi_asprintf("compile error at %.*s line %ld: %s", (int)file_len, p,
                                   line, m);
            *sig = ggi_asprintf("compile@%.*s:%ld", (int)file_len, p, line);
            free(m);
            return (*reason && *sig) ? 1 : -1;
        }
    }
    const char *u = strstr(err, "undefined reference to ");
    if (u) {
        const char *eol = strchr(u, '\n');
        char *m = trimmed(u, eol ? (size_t)(eol - u) : strlen(u), MAX_REASON_LINE);
        if (!m)
            return -1;
        *reason = ggi_asprintf("link error: %s", m);
        *sig = ggi_asprintf("link:%s", m);
        free(m);
        return (*reason && *sig) ? 1 : -1;
    }
    /* the last line the compiler wrote (our marker line comes after it) */
    const char *l = NULL;
    size_t n = 0;
    for (const char *p = err; *p; p = next_line(p)) {
        const char *eol = strchr(p, '\n');
        size_t k = eol ? (size_t)(eol - p) : strlen(p);
        const char *q = p;
        while (q < p + k && isspace((unsigned char)*q))
            q++;
        if (q < p + k && strncmp(p, COMPILE_MARKER, strlen(COMPILE_MARKER)) != 0) {
            l = p;
            n = k;
        }
    }
    char *m = l ? trimmed(l, n, MAX_REASON_LINE) : ggi_strdup("no message");
    if (!m)
        return -1;
    *reason = ggi_asprintf("compile error: %s", m);
    *sig = ggi_strdup("compile");
    free(m);
    return (*reason && *sig) ? 1 : -1;
}

static int fill_verdict(const ggi_task *t, const cJSON *r, ggi_verdict *v)
{
    const char *err = str_of(r, "stderr");
    int exit_code = (int)num_of(r, "exit_code", 0);
    int sig = (int)num_of(r, "signal", 0);

    if (bool_of(r, "cancelled")) {
        v->reason = ggi_strdup("cancelled");
        v->signature = ggi_strdup("cancelled");
        return GG_OK;
    }
    if (bool_of(r, "timed_out")) {
        v->reason = ggi_asprintf("timed out after %g s", task_timeout(t));
        v->signature = ggi_strdup("timeout");
        return GG_OK;
    }
    if (is_python(t) && sig == 0 && exit_code == GGI_LANG_ANALYSIS_EXIT &&
        strstr(err, "GG-FINDING ")) {
        cJSON *arr = cJSON_CreateArray();
        if (!arr || collect_findings(err, arr)) {
            cJSON_Delete(arr);
            return GG_ENOMEM;
        }
        v->analysis_failed = 1;
        v->findings = arr;
        const cJSON *f = cJSON_GetArrayItem(arr, 0);
        long line = (long)num_of(f, "line", 0);
        const char *msg = f ? str_of(f, "message") : "";
        if (line > 0)
            v->reason = ggi_asprintf("%s at solution.py line %ld", *msg ? msg : "SyntaxError",
                                     line);
        else
            v->reason = ggi_asprintf("%s in solution.py", *msg ? msg : "SyntaxError");
        v->signature = ggi_asprintf("syntax@solution.py:%ld", line);
        return GG_OK;
    }
    if (!is_python(t) && sig == 0 && exit_code == GGI_LANG_COMPILE_EXIT &&
        strstr(err, COMPILE_MARKER)) {
        int rc = read_compile_error(err, &v->reason, &v->signature);
        return rc < 0 ? GG_ENOMEM : GG_OK;
    }
    if (sig != 0) {
        const char *name = str_of(r, "signal_name");
        if (!*name)
            name = signal_name(sig);
        char file[64];
        long line = 0;
        char *expr = NULL;
        int a = read_c_assert(err, file, sizeof file, &line, &expr);
        if (a < 0)
            return GG_ENOMEM;
        if (a > 0) {
            char how[48];
            if (name)
                snprintf(how, sizeof how, "%s", name);
            else
                snprintf(how, sizeof how, "signal %d", sig);
            if (file[0])
                v->reason = ggi_asprintf("assertion `%s' failed at %s line %ld (%s)", expr, file,
                                         line, how);
            else
                v->reason = ggi_asprintf("assertion `%s' failed (%s)", expr, how);
            v->signature = file[0] ? ggi_asprintf("assert@%s:%ld", file, line)
                                   : ggi_strdup("assert");
            free(expr);
            return GG_OK;
        }
        const char *why = sig == SIGXCPU   ? ": CPU time limit exceeded"
                          : sig == SIGXFSZ ? ": file size limit exceeded"
                                           : "";
        if (name)
            v->reason = ggi_asprintf("killed by signal %d (%s)%s", sig, name, why);
        else
            v->reason = ggi_asprintf("killed by signal %d%s", sig, why);
        v->signature = ggi_asprintf("signal:%d", sig);
        return GG_OK;
    }
    if (is_python(t)) {
        py_failure pf;
        memset(&pf, 0, sizeof pf);
        int rc = read_traceback(err, &pf);
        if (rc < 0)
            return GG_ENOMEM;
        if (rc > 0) {
            if (pf.file[0]) {
                v->reason = ggi_asprintf("%s at %s line %ld", pf.exc_line, pf.file, pf.line);
                v->signature = ggi_asprintf("%s@%s:%ld", pf.exc_type, pf.file, pf.line);
            } else {
                v->reason = ggi_strdup(pf.exc_line);
                v->signature = ggi_strdup(pf.exc_type);
            }
            free(pf.exc_line);
            return GG_OK;
        }
    }
    size_t n = 0;
    const char *l = last_line(err, &n);
    char *m = l ? trimmed(l, n, MAX_REASON_LINE) : NULL;
    if (l && !m)
        return GG_ENOMEM;
    v->reason = m ? ggi_asprintf("exit code %d: %s", exit_code, m)
                  : ggi_asprintf("exit code %d", exit_code);
    v->signature = ggi_asprintf("exit:%d", exit_code);
    free(m);
    return GG_OK;
}

int ggi_lang_evaluate(const ggi_task *t, const cJSON *exec_result, ggi_verdict *v)
{
    if (!v)
        return ggi_error(GG_EINVAL, "no verdict");
    int rc = check_task(t);
    if (rc)
        return rc;
    if (!cJSON_IsObject(exec_result))
        return ggi_error(GG_EINVAL, "the test job's result must be a JSON object");
    memset(v, 0, sizeof *v);
    const cJSON *ec = cJSON_GetObjectItemCaseSensitive(exec_result, "exit_code");
    v->passed = cJSON_IsNumber(ec) && ec->valuedouble == 0 &&
                num_of(exec_result, "signal", 0) == 0 && !bool_of(exec_result, "timed_out") &&
                !bool_of(exec_result, "cancelled");
    if (v->passed)
        return GG_OK;
    rc = fill_verdict(t, exec_result, v);
    if (!rc && (!v->reason || !v->signature))
        rc = GG_ENOMEM;
    if (rc) {
        ggi_verdict_free(v);
        return oom();
    }
    return GG_OK;
}

void ggi_verdict_free(ggi_verdict *v)
{
    if (!v)
        return;
    cJSON_Delete(v->findings);
    free(v->reason);
    free(v->signature);
    memset(v, 0, sizeof *v);
}
