/*
 * lang_python.c - Python: the program is run by a small harness (inside the test job) that
 * byte-compiles it first and stops with an analysis finding (GG-FINDING line, exit code
 * GGI_LANG_ANALYSIS_EXIT) before executing anything when it does not compile, then executes
 * program and test in one namespace, so the test sees the program's functions as globals, as
 * HumanEval's tests expect. The namespace is a module registered in sys.modules (so
 * dataclasses, typing and `from solution import f` in a test work). Its __name__ is
 * "solution" when the task names an entry point (a function task: a demo block under
 * `if __name__ == "__main__":` does not run, as in HumanEval's own evaluation) and
 * "__main__" when it names none (a script task). When the test defines a callable check and
 * the task names an entry point, check(namespace[entry_point]) is called. An uncaught
 * exception prints a normal traceback and exits 1; exit() called by the program before the
 * test ran is a failure (it would otherwise skip the test), exit() called by the test is
 * honoured. A failure reads as the traceback's exception and its innermost frame.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lang_impl.h"

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

/* The line (at column 0) where Python text defines entry point ep, including decorators
 * right above it; NULL when none. */
static const char *py_find_def(const char *text, const char *ep)
{
    for (const char *line = text; *line; line = ggi_lang_next_line(line)) {
        const char *p = line, *q;
        if ((q = ggi_lang_match_word(p, "async")) && ggi_lang_is_blank(*q)) {
            p = q;
            while (ggi_lang_is_blank(*p))
                p++;
        }
        if (!(q = ggi_lang_match_word(p, "def")) || !ggi_lang_is_blank(*q))
            continue;
        p = q;
        while (ggi_lang_is_blank(*p))
            p++;
        if (!(q = ggi_lang_match_word(p, ep)))
            continue;
        while (ggi_lang_is_blank(*q))
            q++;
        if (*q != '(')
            continue;
        while (line > text) {
            const char *prev = ggi_lang_prev_line(text, line);
            if (*prev != '@')
                break;
            line = prev;
        }
        return line;
    }
    return NULL;
}

static int py_program(const ggi_task *t, const char *completion, char **out)
{
    return ggi_lang_program_with(t, completion, py_find_def, out);
}

static int py_test(const ggi_task *t, const char *program, const ggi_runtimes *rt, cJSON **out)
{
    if (!rt || !rt->python)
        return ggi_error(GG_ENOTFOUND, "no Python interpreter found (set GRYPHGEN_PYTHON)");
    cJSON *req = cJSON_CreateObject(), *files = NULL, *env = NULL;
    if (!req)
        return ggi_lang_oom();
    const char *argv[] = { rt->python, "-c", PY_HARNESS, t->entry_point ? t->entry_point : "" };
    int rc = ggi_lang_add_argv(req, argv, sizeof argv / sizeof argv[0]);
    if (!rc)
        rc = (files = cJSON_AddArrayToObject(req, "files")) ? GG_OK : GG_ENOMEM;
    if (!rc)
        rc = ggi_lang_add_file(files, "solution.py", program);
    if (!rc)
        rc = ggi_lang_add_file(files, "test.py", t->test ? t->test : "");
    /* A fixed hash seed makes set and dict-of-str orders, and so failures, repeatable. */
    if (!rc)
        rc = (env = cJSON_AddObjectToObject(req, "env")) ? GG_OK : GG_ENOMEM;
    if (!rc)
        rc = ggi_json_add_str(env, "PYTHONHASHSEED", "0");
    if (!rc)
        rc = ggi_json_add_str(env, "PYTHONDONTWRITEBYTECODE", "1");
    if (!rc)
        rc = ggi_lang_add_limits(req, ggi_lang_timeout(t), ggi_lang_memory(t), t->cpu_s);
    if (rc) {
        cJSON_Delete(req);
        return ggi_lang_oom();
    }
    *out = req;
    return GG_OK;
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
    for (const char *p = tb; *p; p = ggi_lang_next_line(p)) {
        const char *q = p;
        while (ggi_lang_is_blank(*q))
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
                if (ggi_lang_digits(e, e + strlen(e), &ln)) {
                    snprintf(pf->file, sizeof pf->file, "%s", names[i]);
                    pf->line = ln;
                }
            }
        }
    }
    /* The exception: the last line of the traceback that is not indented. */
    const char *last = NULL;
    size_t last_len = 0;
    for (const char *p = ggi_lang_next_line(tb); *p; p = ggi_lang_next_line(p)) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        if (n > 0 && !isspace((unsigned char)*p)) {
            last = p;
            last_len = n;
        }
    }
    if (!last)
        return 0;
    pf->exc_line = ggi_lang_trimmed(last, last_len, GGI_LANG_MAX_REASON_LINE);
    if (!pf->exc_line)
        return -1;
    size_t k = 0;
    while (pf->exc_line[k] && (ggi_lang_is_ident((unsigned char)pf->exc_line[k]) ||
                               pf->exc_line[k] == '.') &&
           k < sizeof pf->exc_type - 1)
        k++;
    memcpy(pf->exc_type, pf->exc_line, k);
    pf->exc_type[k] = '\0';
    if (!k)
        snprintf(pf->exc_type, sizeof pf->exc_type, "exception");
    return 1;
}

static int py_read_failure(const ggi_task *t, const cJSON *r, ggi_verdict *v)
{
    (void)t;
    py_failure pf;
    memset(&pf, 0, sizeof pf);
    int rc = read_traceback(ggi_lang_str(r, "stderr"), &pf);
    if (rc <= 0)
        return rc;
    if (pf.file[0]) {
        v->reason = ggi_asprintf("%s at %s line %ld", pf.exc_line, pf.file, pf.line);
        v->signature = ggi_asprintf("%s@%s:%ld", pf.exc_type, pf.file, pf.line);
    } else {
        v->reason = ggi_strdup(pf.exc_line);
        v->signature = ggi_strdup(pf.exc_type);
    }
    free(pf.exc_line);
    return 1;
}

static const char *const py_aliases[] = { "python3", "py", NULL };

const ggi_lang_ops ggi_lang_python = {
    .name = "python",
    .aliases = py_aliases,
    .task_prefix = "Python/",
    .program = py_program,
    .test = py_test,
    .failure = py_read_failure,
};
