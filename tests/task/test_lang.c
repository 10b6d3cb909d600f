/*
 * test_lang.c - per-language logic that needs no process: program assembly (stub + body,
 * whole functions keeping the stub's imports and helpers), the shape of analysis and test
 * requests, reading compiler diagnostics, and verdicts (reasons and signatures) from
 * hand-written executor results.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
        CHECK_CONTAINS(cJSON_GetArrayItem(argv, 2)->valuestring,
                       "\"$GG_CC\" -std=c11 -Wall $GG_LINK -o prog main.c -lm");
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

static void test_names(void)
{
    CHECK_STR(ggi_lang_canonical("C++"), "cpp");
    CHECK_STR(ggi_lang_canonical("js"), "javascript");
    CHECK_STR(ggi_lang_canonical("golang"), "go");
    CHECK_STR(ggi_lang_canonical("sh"), "bash");
    CHECK(ggi_lang_canonical("cobol") == NULL && ggi_lang_canonical(NULL) == NULL);
    CHECK_STR(ggi_lang_from_task_id("CPP/12"), "cpp");
    CHECK_STR(ggi_lang_from_task_id("JavaScript/0"), "javascript");
    CHECK_STR(ggi_lang_from_task_id("Java/3"), "java");
    CHECK(ggi_lang_from_task_id("Jav/3") == NULL && ggi_lang_from_task_id("HumanEval/1") == NULL);
    /* a HumanEval-X line without language: from the prefix; Go's test_setup heads the test */
    ggi_task *g = task("{\"task_id\":\"Go/1\",\"prompt\":\"import (\\n    \\\"math\\\"\\n)\\n"
                       "func F() float64 {\\n\",\"test\":\"func TestF(t *testing.T) {}\\n\","
                       "\"test_setup\":\"package main\\n\",\"canonical_solution\":\"}\"}");
    CHECK(g != NULL);
    if (g) {
        CHECK_STR(g->language, "go");
        CHECK(g->humaneval == 1);
        CHECK_STR(g->test, "package main\n\nfunc TestF(t *testing.T) {}\n");
        /* solution.go: package main and only the imports the code uses */
        check_program(g, "    return math.Abs(-1) + float64(len(strings.Fields(\"a\")))\n}\n",
                      "package main\n\nimport (\n    \"math\"\n    \"strings\"\n)\n\n"
                      "func F() float64 {\n    return math.Abs(-1) + "
                      "float64(len(strings.Fields(\"a\")))\n}\n");
        check_program(g, "    return 1 // math.Pi\n}\n",
                      "package main\n\nfunc F() float64 {\n    return 1 // math.Pi\n}\n");
        ggi_task_free(g);
    }
    ggi_task *r = task("{\"task_id\":\"Rust/1\",\"prompt\":\"/* doc */\\n\",\"test\":\"\","
                       "\"declaration\":\"use std::cmp;\\nfn f() -> i32 {\\n\","
                       "\"canonical_solution\":\"1 }\"}");
    CHECK(r && !strcmp(r->language, "rust") &&
          !strcmp(r->stub, "/* doc */\nuse std::cmp;\nfn f() -> i32 {\n") &&
          !strcmp(r->prompt, r->stub));
    ggi_task_free(r);
    ggi_task *c = task("{\"task_id\":\"CPP/1\",\"prompt\":\"#include<vector>\\nint f(){\\n\","
                       "\"test\":\"\",\"declaration\":\"#include<vector>\\n#include<algorithm>\\n"
                       "int f(){\\n\",\"canonical_solution\":\"return 1;}\"}");
    CHECK(c && !strcmp(c->stub, "#include<algorithm>\n#include<vector>\nint f(){\n"));
    ggi_task_free(c);
}

static void test_more_requests(void)
{
    ggi_runtimes none = { .python = NULL };
    const char *langs[] = { "cpp", "java", "javascript", "typescript", "go", "rust", "bash" };
    for (size_t i = 0; i < sizeof langs / sizeof langs[0]; i++) {
        char json[128];
        snprintf(json, sizeof json, "{\"language\":\"%s\",\"test\":\"T\"}", langs[i]);
        ggi_task *t = task(json);
        cJSON *req = (cJSON *)1;
        CHECK_RC(ggi_lang_test_request(t, "P", &none, &req), GG_ENOTFOUND);
        CHECK(req == NULL);
        CHECK_CONTAINS(gg_error_last(), "GRYPHGEN_TOOLCHAIN_");
        CHECK(!ggi_lang_available(langs[i], &none));
        ggi_task_free(t);
    }
    ggi_runtimes rt = { .python = NULL };
    rt.tool[GGI_TOOL_NODE] = "/usr/bin/node";
    rt.tool[GGI_TOOL_JAVAC] = "/usr/bin/javac";
    rt.tool[GGI_TOOL_JAVA] = "/usr/bin/java";
    CHECK(ggi_lang_available("js", &rt) && !ggi_lang_available("typescript", &rt));
    ggi_task *js = task("{\"language\":\"javascript\",\"test\":\"console.assert(f() === 1)\","
                        "\"resources\":{\"memory_mb\":128}}");
    cJSON *req = NULL;
    CHECK_RC(ggi_lang_test_request(js, "const f = () => 1\n", &rt, &req), 0);
    char *text = req ? cJSON_PrintUnformatted(req) : NULL;
    CHECK_CONTAINS(text, "const f = () => 1\\n\\nconsole.assert(f() === 1)");
    CHECK_CONTAINS(text, "\"memory_mb\":512"); /* raised to the language's minimum */
    CHECK_CONTAINS(text, "NODE_PATH");
    free(text);
    cJSON_Delete(req);
    ggi_task *java = task("{\"language\":\"java\",\"test\":\"public class Check { }\"}");
    if (access("/usr/bin/javac", X_OK) == 0) { /* the runner is prepared with javac */
        CHECK_RC(ggi_lang_test_request(java, "class Solution {}", &rt, &req), 0);
        text = req ? cJSON_PrintUnformatted(req) : NULL;
        CHECK_CONTAINS(text, "\"path\":\"Check.java\"");
        CHECK_CONTAINS(text, "GgJavaRun Check.java Check");
        free(text);
        cJSON_Delete(req);
    }
    ggi_task_free(js);
    ggi_task_free(java);
}

static void test_more_verdicts(void)
{
    ggi_task *js = task("{\"language\":\"javascript\"}");
    ggi_task *java = task("{\"language\":\"java\"}");
    ggi_task *rs = task("{\"language\":\"rust\"}");
    ggi_task *go = task("{\"language\":\"go\"}");
    ggi_task *ts = task("{\"language\":\"typescript\"}");
    ggi_task *sh = task("{\"language\":\"bash\"}");
    ggi_task *cpp = task("{\"language\":\"cpp\"}");
    /* console.assert only prints and the job exits 0: still a failure */
    check_verdict(js, result(0, 0, 0, "Assertion failed\nAssertion failed: x\n"),
                  "Assertion failed (and 1 more failed assertions)", "assert:Assertion failed");
    check_verdict(js, result(1, 0, 0, "/tmp/w/main.js:7\n  throw new Error('no');\n  ^\n\n"
                                "TypeError: f is not a function\n    at x (main.js:7:3)\n"),
                  "TypeError: f is not a function at main.js line 7", "TypeError@7");
    check_verdict(js, result(0, 0, 0, "just a warning\n"), NULL, NULL);
    check_verdict(java, result(1, 0, 0, "Exception in thread \"main\" java.lang.AssertionError\n"
                                  "\tat Main.main(Main.java:12)\n"),
                  "java.lang.AssertionError at Main.java line 12",
                  "java.lang.AssertionError@Main.java:12");
    check_verdict(rs, result(101, 0, 0, "thread 'tests::t' panicked at 'assertion failed: `(left == "
                                  "right)`\n  left: `1`,\n right: `2`', main.rs:9:5\n"),
                  "panicked at main.rs line 9: 'assertion failed: `(left == right)`   left: "
                  "`1`,  right: `2`', main.rs:9:5",
                  "panic@main.rs:9");
    check_verdict(go, result(1, 0, 0, "--- FAIL: TestF (0.00s)\n    main_test.go:11: \n"
                                "        \tError Trace:\tmain_test.go:11\n"
                                "        \tError:      \tNot equal: \n"
                                "        \t            \texpected: 1\n"
                                "        \t            \tactual  : 2\nFAIL\n"),
                  "TestF failed at main_test.go line 11: Not equal: expected: 1 actual  : 2",
                  "TestF@11");
    /* a compile step that failed: findings, nothing ran */
    const char *langs_err[][3] = {
        { "go", "./solution.go:3:2: undefined: x\n", "undefined: x" },
        { "rust", "main.rs:3:5: error[E0425]: cannot find value `y`\n",
          "cannot find value `y`" },
        { "typescript", "main.ts(3,7): error TS2322: Type 'string' is not assignable\n",
          "error TS2322: Type 'string' is not assignable" },
        { "bash", "solution.sh: line 3: syntax error near unexpected token `fi'\n",
          "syntax error near unexpected token `fi'" },
        { "cpp", "solution.cpp:3:5: error: expected ';'\n", "expected ';'" },
    };
    ggi_task *ts_for[] = { go, rs, ts, sh, cpp };
    for (size_t i = 0; i < 5; i++) {
        char err[256];
        snprintf(err, sizeof err, "%s" "GG-ANALYSIS-FAILED\n", langs_err[i][1]);
        ggi_verdict v;
        memset(&v, 0, sizeof v);
        cJSON *r = result(GGI_LANG_ANALYSIS_EXIT, 0, 0, err);
        CHECK_RC(ggi_lang_evaluate(ts_for[i], r, &v), 0);
        CHECK(v.passed == 0 && v.analysis_failed == 1);
        const cJSON *f = cJSON_GetArrayItem(v.findings, 0);
        int line3 = f && cJSON_GetObjectItem(f, "line")->valueint == 3;
        CHECK(line3);
        if (!line3)
            fprintf(stderr, "%s: %d findings\n", langs_err[i][0],
                    cJSON_GetArraySize(v.findings));
        CHECK_STR(f ? cJSON_GetStringValue(cJSON_GetObjectItem(f, "message")) : "",
                  langs_err[i][2]);
        CHECK_CONTAINS(v.reason, "does not compile: ");
        if (cJSON_GetArraySize(v.findings) != 1)
            fprintf(stderr, "%s: %d findings\n", langs_err[i][0],
                    cJSON_GetArraySize(v.findings));
        ggi_verdict_free(&v);
        cJSON_Delete(r);
    }
    /* exit 90 without the marker is the program's own exit code */
    check_verdict(go, result(90, 0, 0, "bye\n"), "exit code 90: bye", "exit:90");
    ggi_task *all[] = { js, java, rs, go, ts, sh, cpp };
    for (size_t i = 0; i < 7; i++)
        ggi_task_free(all[i]);
}

int main(void)
{
    test_names();
    test_more_requests();
    test_more_verdicts();
    test_program_python();
    test_program_c();
    test_requests();
    test_analysis_read();
    test_evaluate();
    return test_exit();
}
