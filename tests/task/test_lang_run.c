/*
 * test_lang_run.c - the jobs of lang.c run for real: the Python harness (passing, failing
 * assert, syntax error reported as a finding with nothing executed, exceptions, check() called
 * with the entry point, plain script tests, exit() in the program) and C's analysis and test
 * jobs, each read back through ggi_lang_analysis_read / ggi_lang_evaluate. Jobs run through
 * a small stand-in executor (runjob.h), so this test does not depend on lib/execution.
 * Parts whose interpreter or compiler is missing are skipped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gryphgen.h>

#include "core/lang.h"
#include "runjob.h"
#include "testutil.h"

static ggi_runtimes rt;

static const char *find_exe(const char *env, const char *fallback)
{
    const char *p = env ? getenv(env) : NULL;
    if (p && *p && access(p, X_OK) == 0)
        return p;
    return access(fallback, X_OK) == 0 ? fallback : NULL;
}

static ggi_task *task(const char *json)
{
    ggi_task *t = NULL;
    if (ggi_task_parse(json, strlen(json), &t))
        fprintf(stderr, "task: %s\n", gg_error_last());
    return t;
}

/* Builds a task from its parts (JSON-escaped by cJSON) and parses it. */
static ggi_task *make_task(const char *lang, const char *entry, const char *stub,
                           const char *test)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "task_id", "run");
    cJSON_AddStringToObject(o, "language", lang);
    if (entry)
        cJSON_AddStringToObject(o, "entry_point", entry);
    if (stub)
        cJSON_AddStringToObject(o, "stub", stub);
    if (test)
        cJSON_AddStringToObject(o, "test", test);
    cJSON *res = cJSON_AddObjectToObject(o, "resources");
    cJSON_AddNumberToObject(res, "timeout_s", 60); /* a guard: compilers are slow on a busy machine */
    char *s = cJSON_PrintUnformatted(o);
    ggi_task *t = task(s);
    cJSON_free(s);
    cJSON_Delete(o);
    return t;
}

/* Assembles, runs the test job and evaluates; returns the verdict (caller frees). The
 * result object is returned through *res_out when wanted. */
static int run_test(const ggi_task *t, const char *completion, ggi_verdict *v, cJSON **res_out,
                    char *keep_dir, size_t keep_cap)
{
    char *prog = NULL;
    cJSON *req = NULL, *res = NULL;
    memset(v, 0, sizeof *v);
    int rc = ggi_lang_program(t, completion, &prog);
    if (!rc)
        rc = ggi_lang_test_request(t, prog, &rt, &req);
    if (!rc) {
        res = runjob(req, keep_dir, keep_cap);
        rc = res ? 0 : -1;
    }
    if (!rc)
        rc = ggi_lang_evaluate(t, res, v);
    free(prog);
    cJSON_Delete(req);
    if (res_out)
        *res_out = res;
    else
        cJSON_Delete(res);
    return rc;
}

static const char *stderr_of(const cJSON *res)
{
    const cJSON *e = cJSON_GetObjectItem(res, "stderr");
    return cJSON_IsString(e) ? e->valuestring : "";
}

static void test_python(void)
{
    const char *he_stub = "from typing import List\n\n\ndef helper(x):\n    return x\n\n\n"
                          "def total(xs: List[int]) -> int:\n    \"\"\"Sum.\"\"\"\n";
    const char *he_test = "\n\nMETADATA = {}\n\n\ndef check(candidate):\n"
                          "    assert candidate.__name__ == 'total'\n"
                          "    assert candidate([1, 2, 3]) == 6\n"
                          "    assert candidate([]) == 0\n";
    ggi_task *t = make_task("python", "total", he_stub, he_test);
    CHECK(t != NULL);
    if (!t)
        return;
    ggi_verdict v;
    cJSON *res = NULL;

    /* passing body */
    CHECK_RC(run_test(t, "    return sum(helper(x) for x in xs)\n", &v, &res, NULL, 0), 0);
    CHECK(v.passed == 1);
    if (!v.passed)
        fprintf(stderr, "stderr: %s\n", stderr_of(res));
    ggi_verdict_free(&v);
    cJSON_Delete(res);

    /* passing whole function that uses the stub's import and helper */
    CHECK_RC(run_test(t, "def total(xs: List[int]) -> int:\n    return sum(map(helper, xs))\n",
                      &v, NULL, NULL, 0),
             0);
    CHECK(v.passed == 1);
    ggi_verdict_free(&v);

    /* failing assert: check() was called with the entry point */
    CHECK_RC(run_test(t, "    return 7\n", &v, NULL, NULL, 0), 0);
    CHECK(v.passed == 0 && v.analysis_failed == 0);
    CHECK_STR(v.reason, "AssertionError at test.py line 8");
    CHECK_STR(v.signature, "AssertionError@test.py:8");
    ggi_verdict_free(&v);

    /* an exception inside the solution */
    CHECK_RC(run_test(t, "    return undefined_name + 1\n", &v, NULL, NULL, 0), 0);
    CHECK(v.passed == 0);
    CHECK_STR(v.reason, "NameError: name 'undefined_name' is not defined at solution.py line 10");
    CHECK_STR(v.signature, "NameError@solution.py:10");
    ggi_verdict_free(&v);

    /* a syntax error: reported as a finding; the line before it never ran */
    char dir[256];
    CHECK_RC(run_test(t, "def total(xs):\n    open('created.txt', 'w').write('ran')\n"
                         "    return (\n",
                      &v, &res, dir, sizeof dir),
             0);
    CHECK(v.passed == 0 && v.analysis_failed == 1);
    CHECK(cJSON_GetObjectItem(res, "exit_code")->valuedouble == GGI_LANG_ANALYSIS_EXIT);
    CHECK(cJSON_GetArraySize(v.findings) == 1);
    const cJSON *f = cJSON_GetArrayItem(v.findings, 0);
    CHECK(f && cJSON_GetObjectItem(f, "line")->valuedouble == 10); /* 7 lines kept of the stub */
    CHECK_CONTAINS(f ? cJSON_GetObjectItem(f, "message")->valuestring : NULL, "SyntaxError");
    CHECK_CONTAINS(v.reason, "at solution.py line 10");
    CHECK_STR(v.signature, "syntax@solution.py:10");
    ggi_verdict_free(&v);
    cJSON_Delete(res);
    {
        /* a module-level statement before the error would create the file if anything ran */
        ggi_task *s = make_task("python", NULL, NULL, "");
        CHECK_RC(run_test(s, "open('created.txt', 'w').write('ran')\nprint('hello')\nx = (\n", &v,
                          &res, dir, sizeof dir),
                 0);
        CHECK(v.analysis_failed == 1);
        char path[400];
        snprintf(path, sizeof path, "%s/created.txt", dir);
        CHECK(access(path, F_OK) != 0);
        const cJSON *out = cJSON_GetObjectItem(res, "stdout");
        CHECK(out && strstr(out->valuestring, "hello") == NULL);
        runjob_rmtree(dir);
        ggi_verdict_free(&v);
        cJSON_Delete(res);
        /* the same program without the error does create it (the check above can fail) */
        CHECK_RC(run_test(s, "open('created.txt', 'w').write('ran')\n", &v, NULL, dir,
                          sizeof dir),
                 0);
        CHECK(v.passed == 1);
        snprintf(path, sizeof path, "%s/created.txt", dir);
        CHECK(access(path, F_OK) == 0);
        runjob_rmtree(dir);
        ggi_verdict_free(&v);
        /* NUL bytes cannot reach the file through a C string; a bad encoding declaration is
         * the other compile-time failure that is not a SyntaxError subclass in every version */
        CHECK_RC(run_test(s, "# -*- coding: no-such-codec -*-\nx = 1\n", &v, NULL, NULL, 0), 0);
        CHECK(v.analysis_failed == 1);
        ggi_verdict_free(&v);
        ggi_task_free(s);
    }

    /* a demo block under the main guard does not run in a function task */
    CHECK_RC(run_test(t, "def total(xs):\n    return sum(xs)\n\nif __name__ == '__main__':\n"
                         "    raise SystemExit(3)\n",
                      &v, NULL, NULL, 0),
             0);
    CHECK(v.passed == 1);
    ggi_verdict_free(&v);

    /* exit() in the program before the test ran is a failure, not a pass */
    CHECK_RC(run_test(t, "def total(xs):\n    return 0\n\nimport sys\nsys.exit(0)\n", &v, NULL,
                      NULL, 0),
             0);
    CHECK(v.passed == 0);
    CHECK_CONTAINS(v.reason, "called exit(0) before the test ran");
    ggi_verdict_free(&v);

    /* the solution does not define the entry point */
    CHECK_RC(run_test(t, "def totl(xs):\n    return 0\n", &v, NULL, NULL, 0), 0);
    CHECK(v.passed == 0);
    ggi_verdict_free(&v);
    ggi_task_free(t);

    t = make_task("python", "f", NULL, "def check(candidate):\n    assert False, 'reached'\n");
    CHECK_RC(run_test(t, "def f():\n    pass\n", &v, NULL, NULL, 0), 0);
    CHECK_STR(v.reason, "AssertionError: reached at test.py line 2");
    ggi_verdict_free(&v);
    ggi_task_free(t);

    /* the namespace is a real module: dataclasses with string annotations and imports of
     * the solution by name work */
    t = make_task("python", "area", NULL,
                  "from solution import Box\n\ndef check(candidate):\n"
                  "    assert candidate(Box(2, 3)) == 6\n");
    CHECK_RC(run_test(t, "from __future__ import annotations\nfrom dataclasses import dataclass\n"
                         "\n@dataclass\nclass Box:\n    w: int\n    h: int\n\n"
                         "def area(b: Box) -> int:\n    return b.w * b.h\n",
                      &v, NULL, NULL, 0),
             0);
    CHECK(v.passed == 1);
    if (!v.passed)
        fprintf(stderr, "reason: %s\n", v.reason);
    ggi_verdict_free(&v);
    ggi_task_free(t);

    /* without an entry point, check is not called and the program runs as __main__ */
    t = make_task("python", NULL, NULL,
                  "assert x == 1\nassert __name__ == '__main__'\n"
                  "def check(c):\n    raise RuntimeError('must not be called')\n");
    CHECK_RC(run_test(t, "x = 1\n", &v, NULL, NULL, 0), 0);
    CHECK(v.passed == 1);
    ggi_verdict_free(&v);
    CHECK_RC(run_test(t, "x = 2\n", &v, NULL, NULL, 0), 0);
    CHECK(v.passed == 0);
    CHECK_STR(v.signature, "AssertionError@test.py:1");
    ggi_verdict_free(&v);
    ggi_task_free(t);

    /* no test at all: passing means running without error */
    t = make_task("python", NULL, NULL, NULL);
    CHECK_RC(run_test(t, "print('fine')\n", &v, NULL, NULL, 0), 0);
    CHECK(v.passed == 1);
    ggi_verdict_free(&v);
    CHECK_RC(run_test(t, "raise ValueError('bad value')\n", &v, NULL, NULL, 0), 0);
    CHECK_STR(v.reason, "ValueError: bad value at solution.py line 1");
    ggi_verdict_free(&v);
    /* the test calling exit(code) is honoured */
    ggi_task_free(t);
    t = make_task("python", NULL, NULL, "import sys\nsys.exit(4)\n");
    CHECK_RC(run_test(t, "x = 1\n", &v, NULL, NULL, 0), 0);
    CHECK_STR(v.signature, "exit:4");
    ggi_verdict_free(&v);
    ggi_task_free(t);

    /* a timeout */
    t = task("{\"language\":\"python\",\"resources\":{\"timeout_s\":0.5}}");
    CHECK_RC(run_test(t, "while True:\n    pass\n", &v, NULL, NULL, 0), 0);
    CHECK_STR(v.reason, "timed out after 0.5 s");
    CHECK_STR(v.signature, "timeout");
    ggi_verdict_free(&v);
    ggi_task_free(t);
}

static void test_c(void)
{
    ggi_task *t = make_task("c", "add", "#include <stdio.h>\n\nint add(int a, int b)\n{\n",
                            "#include <assert.h>\nint main(void)\n{\n"
                            "    assert(add(2, 3) == 5);\n    return 0;\n}\n");
    CHECK(t != NULL);
    if (!t)
        return;
    /* analysis: a syntax error and a warning */
    char *prog = NULL;
    cJSON *req = NULL, *res = NULL, *findings = NULL;
    CHECK_RC(ggi_lang_program(t, "    int unused;\n    return a + b\n}\n", &prog), 0);
    CHECK_RC(ggi_lang_analysis_request(t, prog, &rt, &req), 0);
    res = req ? runjob(req, NULL, 0) : NULL;
    CHECK(res != NULL);
    int ok = 1;
    CHECK_RC(ggi_lang_analysis_read(t, res, &findings, &ok), 0);
    CHECK(ok == 0);
    int errors = 0, warnings = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, findings)
    {
        const char *sev = cJSON_GetObjectItem(f, "severity")->valuestring;
        if (strcmp(sev, "error") == 0) {
            errors++;
            /* gcc and clang both place it at line 6 or 7 */
            double line = cJSON_GetObjectItem(f, "line")->valuedouble;
            CHECK(line == 6 || line == 7);
        } else {
            warnings++;
        }
    }
    CHECK(errors >= 1 && warnings >= 1);
    cJSON_Delete(findings);
    cJSON_Delete(res);
    cJSON_Delete(req);
    free(prog);

    /* analysis of good code */
    CHECK_RC(ggi_lang_program(t, "    return a + b;\n}\n", &prog), 0);
    CHECK_RC(ggi_lang_analysis_request(t, prog, &rt, &req), 0);
    res = req ? runjob(req, NULL, 0) : NULL;
    CHECK_RC(ggi_lang_analysis_read(t, res, &findings, &ok), 0);
    CHECK(ok == 1 && cJSON_GetArraySize(findings) == 0);
    cJSON_Delete(findings);
    cJSON_Delete(res);
    cJSON_Delete(req);
    free(prog);

    ggi_verdict v;
    CHECK_RC(run_test(t, "    return a + b;\n}\n", &v, &res, NULL, 0), 0);
    CHECK(v.passed == 1);
    if (!v.passed)
        fprintf(stderr, "stderr: %s\n", stderr_of(res));
    ggi_verdict_free(&v);
    cJSON_Delete(res);
    /* a whole function keeps the stub's include */
    CHECK_RC(run_test(t, "int add(int a, int b) { printf(\"x\"); return a + b; }\n", &v, NULL,
                      NULL, 0),
             0);
    CHECK(v.passed == 1);
    ggi_verdict_free(&v);
    /* failing assert names the test's line */
    CHECK_RC(run_test(t, "    return a - b;\n}\n", &v, NULL, NULL, 0), 0);
    CHECK(v.passed == 0);
    CHECK_STR(v.reason, "assertion `add(2, 3) == 5' failed at test.c line 4 (SIGABRT)");
    CHECK_STR(v.signature, "assert@test.c:4");
    ggi_verdict_free(&v);
    /* a crash */
    CHECK_RC(run_test(t, "    volatile int *p = 0; (void)a; (void)b;\n    return *p;\n}\n", &v, NULL,
                      NULL, 0),
             0);
    CHECK_STR(v.signature, "signal:11");
    CHECK_STR(v.reason, "killed by signal 11 (SIGSEGV)");
    ggi_verdict_free(&v);
    /* a compile error in the test job names the file and line */
    CHECK_RC(run_test(t, "    return a + b\n}\n", &v, NULL, NULL, 0), 0);
    CHECK(v.passed == 0);
    CHECK_CONTAINS(v.reason, "compile error at solution.c line");
    CHECK_CONTAINS(v.signature, "compile@solution.c:");
    ggi_verdict_free(&v);
    /* exit code */
    ggi_task *t2 = make_task("c", NULL, NULL, "int main(void) { return 3; }\n");
    CHECK_RC(run_test(t2, "int unused_global;\n", &v, NULL, NULL, 0), 0);
    CHECK_STR(v.signature, "exit:3");
    ggi_verdict_free(&v);
    /* link error */
    ggi_task_free(t2);
    t2 = make_task("c", NULL, NULL, "int missing(void);\nint main(void) { return missing(); }\n");
    CHECK_RC(run_test(t2, "\n", &v, NULL, NULL, 0), 0);
    CHECK_CONTAINS(v.reason, "undefined reference to");
    ggi_verdict_free(&v);
    ggi_task_free(t2);
    ggi_task_free(t);
}

int main(void)
{
    const char *py = find_exe("GRYPHGEN_PYTHON", "/usr/bin/python3");
    const char *cc = find_exe("GRYPHGEN_CC", "/usr/bin/cc");
    rt.python = (char *)py;
    rt.cc = (char *)cc;
    if (!py && !cc) {
        fprintf(stderr, "no python3 and no cc: skipped\n");
        return 77;
    }
    if (py)
        test_python();
    else
        fprintf(stderr, "note: no python3, Python jobs skipped\n");
    if (cc)
        test_c();
    else
        fprintf(stderr, "note: no cc, C jobs skipped\n");
    return test_exit();
}
