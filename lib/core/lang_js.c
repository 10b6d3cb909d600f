/*
 * lang_js.c - JavaScript (node) and TypeScript (tsc, then node).
 *
 * The program is stub + completion, and the test job's main.js is program + test (as
 * HumanEval-X's JavaScript problems are run). node runs a small runner (gg_run.js, written
 * beside it) that first compiles main.js without running it (the analysis: a SyntaxError
 * becomes a GG-FINDING line and exit GGI_LANG_ANALYSIS_EXIT, nothing ran), makes a failing
 * console.assert set the exit code to 1 (it only prints "Assertion failed" and carries on,
 * as usual, but the attempt fails), then requires main.js as `node main.js` would run it.
 * A job that still exits 0 with "Assertion failed" on stderr fails too. Packages are found
 * on NODE_PATH: $GRYPHGEN_NODE_PATH, else /usr/local/lib/node_modules, /usr/lib/node_modules
 * and /usr/share/nodejs (a worker installs what tasks require there, e.g. `npm install -g
 * js-md5`; the sandbox has no network).
 *
 * TypeScript: main.ts (program + test) is compiled by tsc (--strict off, target ES2020,
 * CommonJS modules); a type or syntax error is the analysis failure (tsc's "FILE(LINE,COL):
 * error TSnnnn: message" lines become findings); the output runs as JavaScript's does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lang_impl.h"

#define JS_MIN_MEMORY_MB 512
#define DEFAULT_NODE_PATH "/usr/local/lib/node_modules:/usr/lib/node_modules:/usr/share/nodejs"

static const char JS_RUNNER[] =
    "'use strict';\n"
    "const fs = require('fs'), path = require('path'), vm = require('vm');\n"
    "const file = path.resolve(process.argv[2]);\n"
    "const src = fs.readFileSync(file, 'utf8');\n"
    "try {\n"
    "  new vm.Script(require('module').wrap(src), { filename: file });\n"
    "} catch (e) {\n"
    "  if (!(e instanceof SyntaxError)) throw e;\n"
    "  const m = /:(\\d+)\\n/.exec(String(e.stack));\n"
    "  process.stderr.write('GG-FINDING ' + JSON.stringify({ severity: 'error',\n"
    "    line: m ? Number(m[1]) : 0, column: 0, message: 'SyntaxError: ' + e.message }) +\n"
    "    '\\n" GGI_LANG_ANALYSIS_MARKER "\\n');\n"
    "  process.exit(" GGI_LANG_STR(GGI_LANG_ANALYSIS_EXIT) ");\n"
    "}\n"
    "const assert = console.assert;\n"
    "console.assert = function (ok, ...rest) {\n"
    "  if (!ok) process.exitCode = 1;\n"
    "  return assert.call(console, ok, ...rest);\n"
    "};\n"
    "process.argv.splice(1, 1);\n"
    "require(file);\n";

const char *ggi_lang_js_node_path(void)
{
    const char *p = getenv("GRYPHGEN_NODE_PATH");
    return p && *p ? p : DEFAULT_NODE_PATH;
}

static char *joined(const char *program, const char *test)
{
    return ggi_asprintf("%s\n%s", program, test ? test : "");
}

static int js_test(const ggi_task *t, const char *program, const ggi_runtimes *rt, cJSON **out)
{
    int rc;
    if ((rc = ggi_lang_need(rt, GGI_TOOL_NODE)))
        return rc;
    char *src = joined(program, t->test);
    if (!src)
        return ggi_lang_oom();
    const char *files[] = { "main.js", src, "gg_run.js", JS_RUNNER, NULL };
    const char *env[] = { "GG_NODE", rt->tool[GGI_TOOL_NODE], "NODE_PATH",
                          ggi_lang_js_node_path(), "HOME", ".", NULL };
    rc = ggi_lang_sh_job(t, NULL, "exec \"$GG_NODE\" gg_run.js main.js", files, env,
                         JS_MIN_MEMORY_MB, out);
    free(src);
    return rc;
}

static int ts_test(const ggi_task *t, const char *program, const ggi_runtimes *rt, cJSON **out)
{
    int rc;
    if ((rc = ggi_lang_need(rt, GGI_TOOL_NODE)) || (rc = ggi_lang_need(rt, GGI_TOOL_TSC)))
        return rc;
    char *src = joined(program, t->test);
    if (!src)
        return ggi_lang_oom();
    const char *files[] = { "main.ts", src, "gg_run.js", JS_RUNNER, NULL };
    const char *env[] = { "GG_NODE", rt->tool[GGI_TOOL_NODE], "GG_TSC", rt->tool[GGI_TOOL_TSC],
                          "NODE_PATH", ggi_lang_js_node_path(), "HOME", ".", NULL };
    rc = ggi_lang_sh_job(t, NULL,
                         "\"$GG_NODE\" \"$GG_TSC\" --pretty false --target es2020 "
                         "--module commonjs --skipLibCheck --outDir out main.ts >&2 || "
                         GGI_LANG_FAIL_ANALYSIS "\nexec \"$GG_NODE\" gg_run.js out/main.js",
                         files, env, JS_MIN_MEMORY_MB, out);
    free(src);
    return rc;
}

static int js_failed_quietly(const cJSON *r)
{
    return strstr(ggi_lang_str(r, "stderr"), "Assertion failed") != NULL;
}

/* "Assertion failed[: message]", else an uncaught error's "Name: message" line with the
 * "FILE:LINE" node prints above it. */
static int js_failure(const ggi_task *t, const cJSON *r, ggi_verdict *v)
{
    (void)t;
    const char *err = ggi_lang_str(r, "stderr");
    int n = 0;
    for (const char *p = strstr(err, "Assertion failed"); p; p = strstr(p + 1, "Assertion failed"))
        n++;
    if (n) {
        char *first = ggi_lang_line_with(err, "Assertion failed");
        if (!first)
            return -1;
        v->reason = n > 1 ? ggi_asprintf("%s (and %d more failed assertions)", first, n - 1)
                          : ggi_strdup(first);
        v->signature = ggi_asprintf("assert:%s", first);
        free(first);
        return 1;
    }
    /* node: "/path/main.js:12\n<code>\n   ^\n\nTypeError: message\n    at ..." */
    const char *at = strstr(err, "main.js:");
    long line = 0;
    if (at)
        ggi_lang_digits(at + 8, at + strlen(at), &line);
    for (const char *p = err; *p; p = ggi_lang_next_line(p)) {
        const char *c = p;
        while (ggi_lang_is_ident((unsigned char)*c))
            c++;
        if (c - p >= 5 && strncmp(c - 5, "Error", 5) == 0 &&
            (c[0] == ':' || c[0] == '\n' || c[0] == '\0')) {
            const char *eol = strchr(p, '\n');
            char *m = ggi_lang_trimmed(p, eol ? (size_t)(eol - p) : strlen(p),
                                       GGI_LANG_MAX_REASON_LINE);
            if (!m)
                return -1;
            v->reason = line ? ggi_asprintf("%s at main.js line %ld", m, line)
                             : ggi_strdup(m);
            v->signature = ggi_asprintf("%.*s@%ld", (int)(c - p), p, line);
            free(m);
            return 1;
        }
    }
    return 0;
}

/* tsc: "main.ts(3,7): error TS2322: message" */
static int ts_finding(const char *p, size_t n, cJSON *arr)
{
    const char *end = p + n, *q = memchr(p, '(', n);
    long line = 0, col = 0;
    if (!q || !(q = ggi_lang_digits(q + 1, end, &line)) || q >= end || *q != ',' ||
        !(q = ggi_lang_digits(q + 1, end, &col)) || q + 3 > end || strncmp(q, "): ", 3) != 0)
        return 0;
    q += 3;
    const char *sev = strncmp(q, "error", 5) == 0 ? "error"
                      : strncmp(q, "warning", 7) == 0 ? "warning" : NULL;
    if (!sev)
        return 0;
    return ggi_lang_add_finding(arr, sev, line, col, q, (size_t)(end - q)) ? -1 : 1;
}

static const char *const js_aliases[] = { "js", "node", "nodejs", NULL };
static const char *const ts_aliases[] = { "ts", NULL };
static const int js_tools[] = { GGI_TOOL_NODE, -1 };
static const int ts_tools[] = { GGI_TOOL_NODE, GGI_TOOL_TSC, -1 };

const ggi_lang_ops ggi_lang_javascript = {
    .name = "javascript",
    .aliases = js_aliases,
    .task_prefix = "JavaScript/",
    .tools = js_tools,
    .test = js_test,
    .failed_quietly = js_failed_quietly,
    .failure = js_failure,
};

const ggi_lang_ops ggi_lang_typescript = {
    .name = "typescript",
    .aliases = ts_aliases,
    .task_prefix = "TypeScript/",
    .tools = ts_tools,
    .test = ts_test,
    .failed_quietly = js_failed_quietly,
    .failure = js_failure,
    .finding = ts_finding,
};
