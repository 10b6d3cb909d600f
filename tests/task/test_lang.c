/*
 * test_lang.c - per-language logic that needs no process: program assembly (stub + body,
 * whole functions keeping the stub's imports and helpers), the shape of analysis and test
 * requests, reading compiler diagnostics, and verdicts (reasons and signatures) from
 * hand-written executor results.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gryphgen.h>

#include "core/lang.h"
#include "testutil.h"

static ggi_task *task(const char *json)
{
    ggi_task *t = NULL;
    if (ggi_task_parse(json, strlen(json), &t))
        fprintf(stderr, "task: %s\n", gg_error_last());
    return t;
}

static void check_program(const ggi_task *t, const char *completion, const char *want)
{
    char *p = NULL;
    CHECK_RC(ggi_lang_program(t, completion, &p), 0);
    CHECK_STR(p, want);
    free(p);
}

static void test_program_python(void)
{
    ggi_task *t = task("{\"language\":\"python\",\"entry_point\":\"add\","
                       "\"stub\":\"import math\\n\\ndef helper(x):\\n    return x\\n\\n\\n"
                       "def add(a, b):\\n    \\\"\\\"\\\"Adds.\\\"\\\"\\\"\\n\"}");
    CHECK(t != NULL);
    if (!t)
        return;
    /* a body continues the stub */
    check_program(t, "    return a + b\n",
                  "import math\n\ndef helper(x):\n    return x\n\n\ndef add(a, b):\n"
                  "    \"\"\"Adds.\"\"\"\n    return a + b\n");
    /* a whole function replaces the stub's definition, keeping imports and helpers */
    check_program(t, "def add(a, b):\n    return helper(a) + b\n",
                  "import math\n\ndef helper(x):\n    return x\n\n\n"
                  "def add(a, b):\n    return helper(a) + b\n");
    /* also after the completion's own imports, with spacing, async */
    check_program(t, "import os\n\nasync  def add (a, b):\n    return 1\n",
                  "import math\n\ndef helper(x):\n    return x\n\n\n"
                  "import os\n\nasync  def add (a, b):\n    return 1\n");
    /* an indented def or another function's name is not the entry point */
    check_program(t, "    def add(a, b):\n        pass\n    return 0\n",
                  "import math\n\ndef helper(x):\n    return x\n\n\ndef add(a, b):\n"
                  "    \"\"\"Adds.\"\"\"\n    def add(a, b):\n        pass\n    return 0\n");
    check_program(t, "def adder(a):\n    pass\n",
                  "import math\n\ndef helper(x):\n    return x\n\n\ndef add(a, b):\n"
                  "    \"\"\"Adds.\"\"\"\ndef adder(a):\n    pass\n");
    ggi_task_free(t);

    /* a stub without a final newline gets one before a body */
    t = task("{\"language\":\"python\",\"entry_point\":\"f\",\"stub\":\"def f():\"}");
    check_program(t, "    return 1\n", "def f():\n    return 1\n");
    ggi_task_free(t);

    /* decorators above the stub's definition go with it */
    t = task("{\"language\":\"python\",\"entry_point\":\"f\","
             "\"stub\":\"import functools\\n@functools.cache\\ndef f(n):\\n\"}");
    check_program(t, "def f(n):\n    return n\n", "import functools\ndef f(n):\n    return n\n");
    ggi_task_free(t);

    /* no stub: the completion alone; no entry point: stub + completion */
    t = task("{\"language\":\"python\",\"entry_point\":\"f\"}");
    check_program(t, "def f():\n    return 2\n", "def f():\n    return 2\n");
    ggi_task_free(t);
    t = task("{\"language\":\"python\",\"stub\":\"x = 1\"}");
    check_program(t, "def x():\n    pass\n", "x = 1\ndef x():\n    pass\n");
    ggi_task_free(t);

    /* the stub does not define the entry point: all of it is kept */
    t = task("{\"language\":\"python\",\"entry_point\":\"f\",\"stub\":\"import re\\n\"}");
    check_program(t, "def f():\n    pass\n", "import re\ndef f():\n    pass\n");
    ggi_task_free(t);

    char *p = (char *)1;
    t = task("{\"language\":\"python\"}");
    CHECK_RC(ggi_lang_program(t, NULL, &p), GG_EINVAL);
    CHECK(p == NULL);
    CHECK_RC(ggi_lang_program(NULL, "x", &p), GG_EINVAL);
    ggi_task_free(t);
}

static void test_program_c(void)
{
    ggi_task *t = task("{\"language\":\"c\",\"entry_point\":\"add\","
                       "\"stub\":\"#include <stdio.h>\\n\\nstatic int twice(int x) { return 2 * x; }\\n\\n"
                       "int add(int a, int b)\\n{\\n\"}");
    CHECK(t != NULL);
    if (!t)
        return;
    check_program(t, "    return a + b;\n}\n",
                  "#include <stdio.h>\n\nstatic int twice(int x) { return 2 * x; }\n\n"
                  "int add(int a, int b)\n{\n    return a + b;\n}\n");
    check_program(t, "#include <stdlib.h>\nint add(int a, int b) {\n    return twice(a) + b;\n}\n",
                  "#include <stdio.h>\n\nstatic int twice(int x) { return 2 * x; }\n\n"
                  "#include <stdlib.h>\nint add(int a, int b) {\n    return twice(a) + b;\n}\n");
    /* GNU style: the type alone on the line above */
    check_program(t, "static int\nadd (int a, int b)\n{\n    return a + b;\n}\n",
                  "#include <stdio.h>\n\nstatic int twice(int x) { return 2 * x; }\n\n"
                  "static int\nadd (int a, int b)\n{\n    return a + b;\n}\n");
    /* a prototype or a call is not a definition */
    check_program(t, "int add(int a, int b);\n    return a + b;\n}\n",
                  "#include <stdio.h>\n\nstatic int twice(int x) { return 2 * x; }\n\n"
                  "int add(int a, int b)\n{\nint add(int a, int b);\n    return a + b;\n}\n");
    check_program(t, "int x = add(1, 2);\n",
                  "#include <stdio.h>\n\nstatic int twice(int x) { return 2 * x; }\n\n"
                  "int add(int a, int b)\n{\nint x = add(1, 2);\n");
    ggi_task_free(t);

    /* pointer return types and a stub that ends inside the parameter list */
    t = task("{\"language\":\"c\",\"entry_point\":\"dup\","
             "\"stub\":\"#include <string.h>\\nconst char *dup(const char *s\"}");
    check_program(t, "const char *dup(const char *s) { return s; }\n",
                  "#include <string.h>\nconst char *dup(const char *s) { return s; }\n");
    check_program(t, ") { return s; }\n",
                  "#include <string.h>\nconst char *dup(const char *s\n) { return s; }\n");
    ggi_task_free(t);
}

static void test_requests(void)
{
    ggi_runtimes rt = { .python = "/usr/bin/python3", .python_source = "test",
                        .cc = "/usr/bin/cc", .cc_source = "test" };
    ggi_runtimes none = { .python = NULL };
    ggi_task *py = task("{\"task_id\":\"p\",\"language\":\"python\",\"entry_point\":\"f\","
                        "\"test\":\"T\"}");
    ggi_task *py2 = task("{\"language\":\"python\",\"resources\":{\"timeout_s\":2,"
                         "\"memory_mb\":300,\"cpu_s\":1.5}}");
    ggi_task *c = task("{\"language\":\"c\",\"test\":\"int main(void){return 0;}\"}");
    CHECK(py && py2 && c);
    if (!py || !py2 || !c)
        return;
    cJSON *req = (cJSON *)1;
    /* Python: no separate analysis job */
    CHECK_RC(ggi_lang_analysis_request(py, "x = 1\n", &rt, &req), 0);
    CHECK(req == NULL);

    CHECK_RC(ggi_lang_test_request(py, "PROG", &rt, &req), 0);
    CHECK(req != NULL);
    if (req) {
        const cJSON *argv = cJSON_GetObjectItem(req, "argv");
        CHECK(cJSON_GetArraySize(argv) == 4);
        CHECK_STR(cJSON_GetArrayItem(argv, 0)->valuestring, "/usr/bin/python3");
        CHECK_STR(cJSON_GetArrayItem(argv, 1)->valuestring, "-c");
        CHECK_CONTAINS(cJSON_GetArrayItem(argv, 2)->valuestring, "solution.py");
        CHECK_STR(cJSON_GetArrayItem(argv, 3)->valuestring, "f");
        const cJSON *files = cJSON_GetObjectItem(req, "files");
        CHECK(cJSON_GetArraySize(files) == 2);
        CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(files, 0), "path")->valuestring,
                  "solution.py");
        CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(files, 0), "content")->valuestring,
                  "PROG");
        CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(files, 1), "path")->valuestring,
                  "test.py");
        CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(files, 1), "content")->valuestring,
                  "T");
        const cJSON *lim = cJSON_GetObjectItem(req, "limits");
        CHECK(cJSON_GetObjectItem(lim, "timeout_s")->valuedouble == 10);
        CHECK(cJSON_GetObjectItem(lim, "memory_mb")->valuedouble == 1024);
        CHECK(cJSON_GetObjectItem(lim, "cpu_s") == NULL);
        CHECK(cJSON_GetObjectItem(lim, "isolation") == NULL);
        CHECK(cJSON_GetObjectItem(req, "isolation") == NULL);
        cJSON_Delete(req);
    }
    CHECK_RC(ggi_lang_test_request(py2, "PROG", &rt, &req), 0);
    if (req) {
        CHECK_STR(cJSON_GetArrayItem(cJSON_GetObjectItem(req, "argv"), 3)->valuestring, "");
        const cJSON *files = cJSON_GetObjectItem(req, "files");
        CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(files, 1), "content")->valuestring, "");
        const cJSON *lim = cJSON_GetObjectItem(req, "limits");
        CHECK(cJSON_GetObjectItem(lim, "timeout_s")->valuedouble == 2);
        CHECK(cJSON_GetObjectItem(lim, "memory_mb")->valuedouble == 300);
        CHECK(cJSON_GetObjectItem(lim, "cpu_s")->valuedouble == 1.5);
        cJSON_Delete(req);
    }
    CHECK_RC(ggi_lang_test_request(py, "PROG", &none, &req), GG_ENOTFOUND);
    CHECK(req == NULL);
    CHECK_STR(gg_error_last(), "no Python interpreter found (set GRYPHGEN_PYTHON)");
    CHECK_RC(ggi_lang_test_request(py, "PROG", NULL, &req), GG_ENOTFOUND);

    /* C */
    CHECK_RC(ggi_lang_analysis_request(c, "int x;", &rt, &req), 0);
    CHECK(req != NULL);
    if (req) {
        const cJSON *argv = cJSON_GetObjectItem(req, "argv");
        const char *want[] = { "/usr/bin/cc", "-std=c11", "-Wall", "-fsyntax-only", "solution.c" };
        CHECK(cJSON_GetArraySize(argv) == 5);
        for (int i = 0; i < 5 && i < cJSON_GetArraySize(argv); i++)
            CHECK_STR(cJSON_GetArrayItem(argv, i)->valuestring, want[i]);
        const cJSON *f = cJSON_GetArrayItem(cJSON_GetObjectItem(req, "files"), 0);
        CHECK_STR(cJSON_GetObjectItem(f, "path")->valuestring, "solution.c");
        CHECK_STR(cJSON_GetObjectItem(f, "content")->valuestring, "int x;");
        cJSON_Delete(req);
    }
    CHECK_RC(ggi_lang_test_request(c, "int x;", &rt, &req), 0);
    if (req) {
        const cJSON *argv = cJSON_GetObjectItem(req, "argv");
        CHECK_STR(cJSON_GetArrayItem(argv, 0)->valuestring, "/bin/sh");
        CHECK_STR(cJSON_GetArrayItem(argv, 1)->valuestring, "-c");
        CHECK_CONTAINS(cJSON_GetArrayItem(argv, 2)->valuestring, "\"$GG_CC\" -std=c11 -Wall -o prog main.c -lm");
        const cJSON *f = cJSON_GetArrayItem(cJSON_GetObjectItem(req, "files"), 0);
        CHECK_STR(cJSON_GetObjectItem(f, "path")->valuestring, "main.c");
        CHECK_STR(cJSON_GetObjectItem(f, "content")->valuestring,
                  "#line 1 \"solution.c\"\nint x;\n#line 1 \"test.c\"\nint main(void){return 0;}");
        CHECK_STR(cJSON_GetObjectItem(cJSON_GetObjectItem(req, "env"), "GG_CC")->valuestring,
                  "/usr/bin/cc");
        CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(req, "limits"), "timeout_s")->valuedouble == 10);
        cJSON_Delete(req);
    }
    CHECK_RC(ggi_lang_analysis_request(c, "int x;", &none, &req), GG_ENOTFOUND);
    CHECK_CONTAINS(gg_error_last(), "no C compiler found");
    CHECK_RC(ggi_lang_test_request(c, "int x;", &none, &req), GG_ENOTFOUND);
    CHECK(req == NULL);

    CHECK(ggi_lang_supported("python") && ggi_lang_supported("c"));
    CHECK(!ggi_lang_supported("cobol") && !ggi_lang_supported(NULL));
    ggi_task_free(py);
    ggi_task_free(py2);
    ggi_task_free(c);
}

static cJSON *result(int exit_code, int sig, int timed_out, const char *err)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddNumberToObject(r, "exit_code", exit_code);
    cJSON_AddNumberToObject(r, "signal", sig);
    cJSON_AddBoolToObject(r, "timed_out", timed_out);
    cJSON_AddBoolToObject(r, "cancelled", 0);
    cJSON_AddNumberToObject(r, "duration_ms", 12);
    cJSON_AddStringToObject(r, "stdout", "");
    cJSON_AddStringToObject(r, "stderr", err);
    return r;
}

static void test_analysis_read(void)
{
    ggi_task *c = task("{\"language\":\"c\"}");
    cJSON *r = result(1, 0, 0,
                      "solution.c: In function 'add':\n"
                      "solution.c:3:5: warning: unused variable 'y' [-Wunused-variable]\n"
                      "    3 |     int y;\n      |     ^\n"
                      "solution.c:4:12: error: expected ';' before '}' token\n"
                      "solution.c:9: error: no column here\n"
                      "solution.c:1:10: fatal error: nope.h: No such file or directory\n"
                      "solution.c:5:1: note: declared here\n");
    cJSON *f = NULL;
    int ok = 1;
    CHECK_RC(ggi_lang_analysis_read(c, r, &f, &ok), 0);
    CHECK(ok == 0);
    CHECK(cJSON_GetArraySize(f) == 4);
    const cJSON *w = cJSON_GetArrayItem(f, 0), *e = cJSON_GetArrayItem(f, 1);
    CHECK_STR(cJSON_GetObjectItem(w, "severity")->valuestring, "warning");
    CHECK(cJSON_GetObjectItem(w, "line")->valuedouble == 3);
    CHECK(cJSON_GetObjectItem(w, "column")->valuedouble == 5);
    CHECK_STR(cJSON_GetObjectItem(w, "message")->valuestring, "unused variable 'y' [-Wunused-variable]");
    CHECK_STR(cJSON_GetObjectItem(e, "severity")->valuestring, "error");
    CHECK(cJSON_GetObjectItem(e, "line")->valuedouble == 4);
    CHECK_STR(cJSON_GetObjectItem(e, "message")->valuestring, "expected ';' before '}' token");
    CHECK(cJSON_GetObjectItem(cJSON_GetArrayItem(f, 2), "line")->valuedouble == 9);
    CHECK(cJSON_GetObjectItem(cJSON_GetArrayItem(f, 2), "column")->valuedouble == 0);
    CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(f, 3), "message")->valuestring,
              "nope.h: No such file or directory");
    cJSON_Delete(f);
    cJSON_Delete(r);

    /* warnings only: ok */
    r = result(0, 0, 0, "solution.c:2:7: warning: unused variable 'x' [-Wunused-variable]\n");
    CHECK_RC(ggi_lang_analysis_read(c, r, &f, &ok), 0);
    CHECK(ok == 1 && cJSON_GetArraySize(f) == 1);
    cJSON_Delete(f);
    cJSON_Delete(r);

    /* clean */
    r = result(0, 0, 0, "");
    CHECK_RC(ggi_lang_analysis_read(c, r, &f, &ok), 0);
    CHECK(ok == 1 && cJSON_GetArraySize(f) == 0);
    cJSON_Delete(f);
    cJSON_Delete(r);

    /* failed without a parsable diagnostic: one finding with the tail of stderr */
    r = result(4, 0, 0, "cc1: out of memory allocating 1234 bytes\n");
    CHECK_RC(ggi_lang_analysis_read(c, r, &f, &ok), 0);
    CHECK(ok == 0 && cJSON_GetArraySize(f) == 1);
    CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(f, 0), "message")->valuestring,
              "cc1: out of memory allocating 1234 bytes");
    CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(f, 0), "severity")->valuestring, "error");
    cJSON_Delete(f);
    cJSON_Delete(r);
    r = result(-1, 9, 1, "");
    CHECK_RC(ggi_lang_analysis_read(c, r, &f, &ok), 0);
    CHECK(ok == 0 && cJSON_GetArraySize(f) == 1);
    CHECK_CONTAINS(cJSON_GetObjectItem(cJSON_GetArrayItem(f, 0), "message")->valuestring,
                   "timed out");
    cJSON_Delete(f);
    cJSON_Delete(r);

    /* a long stderr: the tail, bounded */
    char big[4000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    big[100] = '\n';
    r = result(1, 0, 0, big);
    CHECK_RC(ggi_lang_analysis_read(c, r, &f, &ok), 0);
    CHECK(ok == 0 && strlen(cJSON_GetObjectItem(cJSON_GetArrayItem(f, 0), "message")->valuestring) <= 500);
    cJSON_Delete(f);
    cJSON_Delete(r);

    /* many diagnostics: bounded */
    char *many = malloc(200 * 64);
    if (many) {
        many[0] = '\0';
        for (int i = 1; i <= 200; i++) {
            char line[64];
            snprintf(line, sizeof line, "solution.c:%d:1: error: bad\n", i);
            strcat(many, line);
        }
        r = result(1, 0, 0, many);
        CHECK_RC(ggi_lang_analysis_read(c, r, &f, &ok), 0);
        CHECK(ok == 0 && cJSON_GetArraySize(f) == 100);
        cJSON_Delete(f);
        cJSON_Delete(r);
        free(many);
    }
    CHECK_RC(ggi_lang_analysis_read(c, NULL, &f, &ok), GG_EINVAL);
    ggi_task_free(c);
}

/* Evaluates and checks reason and signature (NULL: passed). */
static void check_verdict(const ggi_task *t, cJSON *r, const char *reason, const char *sig)
{
    ggi_verdict v;
    memset(&v, 0, sizeof v);
    CHECK_RC(ggi_lang_evaluate(t, r, &v), 0);
    if (!reason) {
        CHECK(v.passed == 1);
        CHECK(v.reason == NULL && v.signature == NULL);
    } else {
        CHECK(v.passed == 0);
        CHECK_STR(v.reason, reason);
        CHECK_STR(v.signature, sig);
    }
    ggi_verdict_free(&v);
    CHECK(v.reason == NULL && v.findings == NULL);
    cJSON_Delete(r);
}

static void test_evaluate(void)
{
    ggi_task *py = task("{\"language\":\"python\",\"entry_point\":\"f\"}");
    ggi_task *py5 = task("{\"language\":\"python\",\"resources\":{\"timeout_s\":2.5}}");
    ggi_task *c = task("{\"language\":\"c\"}");
    check_verdict(py, result(0, 0, 0, "some warning\n"), NULL, NULL);
    check_verdict(py, result(-1, 0, 1, ""), "timed out after 10 s", "timeout");
    check_verdict(py5, result(-1, 0, 1, ""), "timed out after 2.5 s", "timeout");
    check_verdict(py, result(-1, 11, 0, ""), "killed by signal 11 (SIGSEGV)", "signal:11");
    check_verdict(c, result(-1, 24, 0, ""), "killed by signal 24 (SIGXCPU): CPU time limit exceeded",
                  "signal:24");
    check_verdict(py, result(3, 0, 0, ""), "exit code 3", "exit:3");
    check_verdict(py, result(2, 0, 0, "usage: something\nbad thing happened\n\n"),
                  "exit code 2: bad thing happened", "exit:2");
    /* a cancelled job */
    cJSON *r = result(-1, 9, 0, "");
    cJSON_ReplaceItemInObject(r, "cancelled", cJSON_CreateTrue());
    check_verdict(py, r, "cancelled", "cancelled");

    const char *tb_assert =
        "Traceback (most recent call last):\n"
        "  File \"<string>\", line 30, in _gg_harness\n"
        "  File \"test.py\", line 12, in check\n"
        "    assert candidate(1) == 2\n"
        "AssertionError\n";
    check_verdict(py, result(1, 0, 0, tb_assert), "AssertionError at test.py line 12",
                  "AssertionError@test.py:12");
    const char *tb_name =
        "Traceback (most recent call last):\n"
        "  File \"<string>\", line 27, in _gg_harness\n"
        "  File \"test.py\", line 4, in check\n"
        "    assert candidate(1) == 2\n"
        "  File \"solution.py\", line 3, in f\n"
        "    return x + 1\n"
        "           ^\n"
        "NameError: name 'x' is not defined\n";
    check_verdict(py, result(1, 0, 0, tb_name),
                  "NameError: name 'x' is not defined at solution.py line 3",
                  "NameError@solution.py:3");
    /* the same failure with other values has the same signature */
    const char *tb_msg1 = "Traceback (most recent call last):\n  File \"test.py\", line 2, in "
                          "<module>\nAssertionError: got 41\n";
    const char *tb_msg2 = "Traceback (most recent call last):\n  File \"test.py\", line 2, in "
                          "<module>\nAssertionError: got 42\n";
    check_verdict(py, result(1, 0, 0, tb_msg1), "AssertionError: got 41 at test.py line 2",
                  "AssertionError@test.py:2");
    check_verdict(py, result(1, 0, 0, tb_msg2), "AssertionError: got 42 at test.py line 2",
                  "AssertionError@test.py:2");
    /* a frame only in a library: no location */
    check_verdict(py, result(1, 0, 0, "Traceback (most recent call last):\n  File "
                                      "\"/usr/lib/python3.11/json/__init__.py\", line 346\n"
                                      "json.decoder.JSONDecodeError: Expecting value\n"),
                  "json.decoder.JSONDecodeError: Expecting value",
                  "json.decoder.JSONDecodeError");
    /* a syntax error in the test's own file */
    check_verdict(py, result(1, 0, 0, "Traceback (most recent call last):\n"
                                      "  File \"<string>\", line 24, in _gg_harness\n"
                                      "  File \"test.py\", line 3\n    def (:\n        ^\n"
                                      "SyntaxError: invalid syntax\n"),
                  "SyntaxError: invalid syntax at test.py line 3", "SyntaxError@test.py:3");

    /* the harness's analysis finding */
    ggi_verdict v;
    memset(&v, 0, sizeof v);
    r = result(GGI_LANG_ANALYSIS_EXIT, 0, 0,
               "GG-FINDING {\"severity\": \"error\", \"line\": 2, \"column\": 5, \"message\": "
               "\"SyntaxError: invalid syntax\"}\n");
    CHECK_RC(ggi_lang_evaluate(py, r, &v), 0);
    CHECK(v.passed == 0 && v.analysis_failed == 1);
    CHECK(cJSON_GetArraySize(v.findings) == 1);
    const cJSON *f = cJSON_GetArrayItem(v.findings, 0);
    CHECK(cJSON_GetObjectItem(f, "line")->valuedouble == 2);
    CHECK(cJSON_GetObjectItem(f, "column")->valuedouble == 5);
    CHECK_STR(cJSON_GetObjectItem(f, "severity")->valuestring, "error");
    CHECK_STR(cJSON_GetObjectItem(f, "message")->valuestring, "SyntaxError: invalid syntax");
    CHECK_STR(v.reason, "SyntaxError: invalid syntax at solution.py line 2");
    CHECK_STR(v.signature, "syntax@solution.py:2");
    ggi_verdict_free(&v);
    cJSON_Delete(r);
    /* exit 90 without the finding line is the program's own exit code */
    memset(&v, 0, sizeof v);
    r = result(GGI_LANG_ANALYSIS_EXIT, 0, 0, "");
    CHECK_RC(ggi_lang_evaluate(py, r, &v), 0);
    CHECK(v.analysis_failed == 0 && v.findings == NULL);
    CHECK_STR(v.reason, "exit code 90");
    ggi_verdict_free(&v);
    cJSON_Delete(r);

    /* C: compile errors in the test job, assertions, link errors */
    check_verdict(c, result(91, 0, 0, "test.c: In function 'main':\n"
                                      "test.c:3:5: error: implicit declaration of function 'sub'\n"
                                      "GG-COMPILE-FAILED\n"),
                  "compile error at test.c line 3: implicit declaration of function 'sub'",
                  "compile@test.c:3");
    check_verdict(c, result(91, 0, 0, "/usr/bin/ld: /tmp/ccX.o: in function `main':\n"
                                      "test.c:(.text+0x1e): undefined reference to `sub'\n"
                                      "collect2: error: ld returned 1 exit status\n"
                                      "GG-COMPILE-FAILED\n"),
                  "link error: undefined reference to `sub'", "link:undefined reference to `sub'");
    check_verdict(c, result(91, 0, 0, "cc: fatal: something odd\nGG-COMPILE-FAILED\n"),
                  "compile error: cc: fatal: something odd", "compile");
    check_verdict(c, result(-1, 6, 0, "prog: test.c:5: main: Assertion `add(1, 2) == 4' failed.\n"),
                  "assertion `add(1, 2) == 4' failed at test.c line 5 (SIGABRT)", "assert@test.c:5");
    check_verdict(c, result(91, 0, 0, "plain exit 91 from the program\n"),
                  "exit code 91: plain exit 91 from the program", "exit:91");

    /* bad input */
    memset(&v, 0, sizeof v);
    CHECK_RC(ggi_lang_evaluate(py, NULL, &v), GG_EINVAL);
    r = cJSON_CreateArray();
    CHECK_RC(ggi_lang_evaluate(py, r, &v), GG_EINVAL);
    cJSON_Delete(r);
    ggi_verdict_free(&v);
    ggi_verdict_free(NULL);
    ggi_task_free(py);
    ggi_task_free(py5);
    ggi_task_free(c);
}

int main(void)
{
    test_program_python();
    test_program_c();
    test_requests();
    test_analysis_read();
    test_evaluate();
    return test_exit();
}
