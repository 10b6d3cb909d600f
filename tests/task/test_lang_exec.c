/*
 * test_lang_exec.c - lang.c's requests run through the real process executor
 * (gg_executor_run) with runtimes found by ggi_runtimes_resolve: a HumanEval-style Python task
 * passing and failing, a syntax error stopped by the harness, a timeout, C analysis and
 * tests passing and failing, and which linker links a C++ job's program (gold where the
 * job runs has ld.gold, unless GRYPHGEN_LINKER=default). Parts whose runtime is missing are
 * skipped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gryphgen.h>

#include "core/lang.h"
#include "testutil.h"

static gg_executor_t *ex;
static ggi_runtimes rt;

static cJSON *run(const cJSON *req)
{
    char *text = ggi_json_print(req);
    char *out = NULL;
    int rc = text ? gg_executor_run(ex, text, &out) : GG_ENOMEM;
    free(text);
    CHECK_RC(rc, 0);
    if (rc)
        return NULL;
    cJSON *res = cJSON_Parse(out);
    gg_free(out);
    CHECK(res != NULL);
    return res;
}

static ggi_task *make_task(const char *lang, const char *entry, const char *stub,
                           const char *test, double timeout_s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "task_id", "exec");
    cJSON_AddStringToObject(o, "language", lang);
    if (entry)
        cJSON_AddStringToObject(o, "entry_point", entry);
    if (stub)
        cJSON_AddStringToObject(o, "stub", stub);
    if (test)
        cJSON_AddStringToObject(o, "test", test);
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(o, "resources"), "timeout_s", timeout_s);
    char *s = cJSON_PrintUnformatted(o);
    ggi_task *t = NULL;
    if (!s || ggi_task_parse(s, strlen(s), &t))
        fprintf(stderr, "task: %s\n", gg_error_last());
    cJSON_free(s);
    cJSON_Delete(o);
    return t;
}

static void verdict(const ggi_task *t, const char *completion, ggi_verdict *v)
{
    char *prog = NULL;
    cJSON *req = NULL, *res = NULL;
    memset(v, 0, sizeof *v);
    CHECK_RC(ggi_lang_program(t, completion, &prog), 0);
    CHECK_RC(ggi_lang_test_request(t, prog ? prog : "", &rt, &req), 0);
    res = req ? run(req) : NULL;
    if (res) {
        CHECK_RC(ggi_lang_evaluate(t, res, v), 0);
        if (!v->passed)
            fprintf(stderr, "(verdict: %s; stderr: %.300s)\n", v->reason,
                    cJSON_GetObjectItem(res, "stderr")->valuestring);
    }
    cJSON_Delete(res);
    cJSON_Delete(req);
    free(prog);
}

static void test_python(void)
{
    ggi_task *t = make_task("python", "inc", "import math\n\n\ndef inc(x):\n    \"\"\"x + 1\"\"\"\n",
                            "def check(candidate):\n    assert candidate(1) == 2\n"
                            "    assert candidate(-1) == 0\n", 60);
    if (!t)
        return;
    ggi_verdict v;
    verdict(t, "    return x + 1\n", &v);
    CHECK(v.passed == 1);
    ggi_verdict_free(&v);
    verdict(t, "def inc(x):\n    return math.floor(x) + 1\n", &v);
    CHECK(v.passed == 1);
    ggi_verdict_free(&v);
    verdict(t, "    return x\n", &v);
    CHECK(v.passed == 0);
    CHECK_STR(v.signature, "AssertionError@test.py:2");
    ggi_verdict_free(&v);
    verdict(t, "def inc(x):\n    return (x\n", &v);
    CHECK(v.passed == 0 && v.analysis_failed == 1 && cJSON_GetArraySize(v.findings) == 1);
    ggi_verdict_free(&v);
    ggi_task_free(t);

    t = make_task("python", NULL, NULL, NULL, 1);
    verdict(t, "import time\ntime.sleep(30)\n", &v);
    CHECK(v.passed == 0);
    CHECK_STR(v.signature, "timeout");
    CHECK_STR(v.reason, "timed out after 1 s");
    ggi_verdict_free(&v);
    ggi_task_free(t);
}

static void test_c(void)
{
    ggi_task *t = make_task("c", "mul", "int mul(int a, int b)\n{\n",
                            "#include <assert.h>\n#include <math.h>\nint main(void)\n{\n"
                            "    assert(mul(3, 4) == 12);\n    return (int)sqrt(0.0);\n}\n", 60);
    if (!t)
        return;
    /* analysis */
    cJSON *req = NULL, *res = NULL, *findings = NULL;
    int ok = 1;
    CHECK_RC(ggi_lang_analysis_request(t, "int mul(int a, int b)\n{\n    return a * b\n}\n", &rt,
                                       &req),
             0);
    res = req ? run(req) : NULL;
    if (res) {
        CHECK_RC(ggi_lang_analysis_read(t, res, &findings, &ok), 0);
        CHECK(ok == 0 && cJSON_GetArraySize(findings) >= 1);
        cJSON_Delete(findings);
    }
    cJSON_Delete(res);
    cJSON_Delete(req);
    CHECK_RC(ggi_lang_analysis_request(t, "int mul(int a, int b)\n{\n    return a * b;\n}\n", &rt,
                                       &req),
             0);
    res = req ? run(req) : NULL;
    if (res) {
        CHECK_RC(ggi_lang_analysis_read(t, res, &findings, &ok), 0);
        CHECK(ok == 1 && cJSON_GetArraySize(findings) == 0);
        cJSON_Delete(findings);
    }
    cJSON_Delete(res);
    cJSON_Delete(req);

    ggi_verdict v;
    verdict(t, "    return a * b;\n}\n", &v);
    CHECK(v.passed == 1);
    ggi_verdict_free(&v);
    verdict(t, "    return a + b;\n}\n", &v);
    CHECK(v.passed == 0);
    CHECK_STR(v.signature, "assert@test.c:5");
    ggi_verdict_free(&v);
    verdict(t, "    return a * b\n}\n", &v);
    CHECK(v.passed == 0);
    CHECK_CONTAINS(v.signature, "compile@solution.c:");
    ggi_verdict_free(&v);
    ggi_task_free(t);
}

/* Which linker made a C++ test job's program: gold where the runtimes chose it (its
 * binary carries gold's note section), else the compiler's own; GRYPHGEN_LINKER=default
 * takes the compiler's own. Either way the task passes. */
static void cpp_linked_by(const ggi_runtimes *r, const char *expect)
{
    ggi_task *t = make_task("cpp", "add", "#include <cstdio>\nint add(int a, int b)\n{\n",
                            "#include <algorithm>\n#include <fstream>\n#include <sstream>\n"
                            "#include <string>\n"
                            "int main()\n{\n"
                            "    std::ifstream f(\"prog\", std::ios::binary);\n"
                            "    std::stringstream s;\n    s << f.rdbuf();\n"
                            "    std::string note = \"noisrev-dlog.ung.eton.\";  // reversed: not\n"
                            "    std::reverse(note.begin(), note.end());        // in .rodata\n"
                            "    bool gold = s.str().find(note) != std::string::npos;\n"
                            "    if (s.str().size() < 1000) return 2;\n"
                            "    std::printf(gold ? \"linker: gold\\n\" : \"linker: other\\n\");\n"
                            "    return add(1, 2) == 3 ? 0 : 1;\n}\n", 120);
    if (!t)
        return;
    char *prog = NULL;
    cJSON *req = NULL, *res = NULL;
    CHECK_RC(ggi_lang_program(t, "    return a + b;\n}\n", &prog), 0);
    CHECK_RC(ggi_lang_test_request(t, prog ? prog : "", r, &req), 0);
    res = req ? run(req) : NULL;
    if (res) {
        ggi_verdict v;
        memset(&v, 0, sizeof v);
        CHECK_RC(ggi_lang_evaluate(t, res, &v), 0);
        CHECK(v.passed == 1);
        CHECK_STR(cJSON_GetObjectItem(res, "stdout")->valuestring, expect);
        ggi_verdict_free(&v);
    }
    cJSON_Delete(res);
    cJSON_Delete(req);
    free(prog);
    ggi_task_free(t);
}

static void test_cpp_linker(void)
{
    /* (The job runs in this host's sandbox, whose PATH holds /usr/bin.) */
    int gold = access("/usr/bin/ld.gold", X_OK) == 0;
    CHECK_STR(rt.link_flag, "-fuse-ld=gold");
    cpp_linked_by(&rt, gold ? "linker: gold\n" : "linker: other\n");
    setenv("GRYPHGEN_LINKER", "default", 1);
    ggi_runtimes plain;
    if (ggi_runtimes_resolve(&plain, NULL, NULL) == 0) {
        CHECK_STR(plain.link_flag, "");
        cpp_linked_by(&plain, "linker: other\n");
        ggi_runtimes_free(&plain);
    }
    unsetenv("GRYPHGEN_LINKER");
}

int main(void)
{
    if (ggi_runtimes_resolve(&rt, NULL, NULL)) {
        fprintf(stderr, "runtimes: %s\n", gg_error_last());
        return 1;
    }
    int rc = gg_executor_new(&ex, NULL);
    CHECK_RC(rc, 0);
    if (rc) {
        ggi_runtimes_free(&rt);
        return test_exit();
    }
    if (!rt.python && !rt.cc) {
        fprintf(stderr, "no python3 and no cc: skipped\n");
        gg_executor_destroy(&ex);
        return 77;
    }
    if (rt.python)
        test_python();
    else
        fprintf(stderr, "note: no python3, Python jobs skipped\n");
    if (rt.cc)
        test_c();
    else
        fprintf(stderr, "note: no cc, C jobs skipped\n");
    if (rt.tool[GGI_TOOL_CXX])
        test_cpp_linker();
    else
        fprintf(stderr, "note: no g++, C++ jobs skipped\n");
    gg_executor_destroy(&ex);
    ggi_runtimes_free(&rt);
    return test_exit();
}
