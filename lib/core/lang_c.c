/*
 * lang_c.c - C and C++.
 *
 * C: a separate analysis job (`cc -std=c11 -Wall -fsyntax-only solution.c`), then a test job
 * that compiles program and test as one translation unit (with #line markers, so diagnostics
 * and assert() messages name solution.c or test.c) and runs it. A compile failure there
 * exits with GGI_LANG_COMPILE_EXIT after a marker line, so it is told apart from the
 * program's own exit codes. The memory limit of a C test job is at least 256 MB so the
 * compiler itself fits.
 *
 * C++: no separate job: the test job compiles program and test as one translation unit
 * (`g++ -std=c++17`, #line markers naming solution.cpp and test.cpp, linked with -lcrypto
 * for OpenSSL's MD5 and -lm, by gold where the runtimes found it (runtimes.h, link_flag; C
 * too); Boost's headers are found in /usr/include) and that compile is
 * the analysis: when it fails, its diagnostics become findings and nothing runs. A failed
 * assert() aborts (SIGABRT) and reads as the assertion with its file and line.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lang_impl.h"

#define C_MIN_MEMORY_MB 256
#define CPP_MIN_MEMORY_MB 512
#define COMPILE_MARKER "GG-COMPILE-FAILED"

static int is_c_type_char(int c)
{
    return ggi_lang_is_ident(c) || ggi_lang_is_blank(c) || c == '*';
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
    for (const char *line = text; *line; line = ggi_lang_next_line(line)) {
        if (!ggi_lang_is_ident((unsigned char)*line))
            continue; /* preprocessor lines, comments, indented code, braces */
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        const char *p = line, *end = line + len;
        /* the first whole-word occurrence of ep on this line */
        const char *at = NULL;
        for (; p < end; p++) {
            if ((p == line || !ggi_lang_is_ident((unsigned char)p[-1])) && ggi_lang_match_word(p, ep)) {
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
            if (ggi_lang_is_ident((unsigned char)*q))
                typed = 1;
        }
        if (!ok)
            continue;
        const char *q = at + strlen(ep);
        while (ggi_lang_is_blank(*q))
            q++;
        if (*q != '(' || !c_is_definition(q))
            continue;
        if (!typed) {
            /* GNU style: the return type alone on the line before. */
            if (line == text)
                continue;
            const char *prev = ggi_lang_prev_line(text, line);
            int type_line = prev < line - 1 && ggi_lang_is_ident((unsigned char)*prev);
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

static int c_program(const ggi_task *t, const char *completion, char **out)
{
    return ggi_lang_program_with(t, completion, c_find_def, out);
}

static int need_cc(const ggi_runtimes *rt)
{
    if (!rt || !rt->cc)
        return ggi_error(GG_ENOTFOUND, "no C compiler found (set GRYPHGEN_CC or CC)");
    return GG_OK;
}

static int c_analysis(const ggi_task *t, const char *program, const ggi_runtimes *rt,
                      cJSON **out)
{
    int rc;
    if ((rc = need_cc(rt)))
        return rc;
    cJSON *req = cJSON_CreateObject();
    if (!req)
        return ggi_lang_oom();
    const char *argv[] = { rt->cc, "-std=c11", "-Wall", "-fsyntax-only", "solution.c" };
    cJSON *files = NULL;
    rc = ggi_lang_add_argv(req, argv, sizeof argv / sizeof argv[0]);
    if (!rc)
        rc = (files = cJSON_AddArrayToObject(req, "files")) ? GG_OK : GG_ENOMEM;
    if (!rc)
        rc = ggi_lang_add_file(files, "solution.c", program);
    int mem = ggi_lang_memory(t);
    if (!rc)
        rc = ggi_lang_add_limits(req, GGI_LANG_ANALYSIS_TIMEOUT_S,
                                 mem > GGI_LANG_DEFAULT_MEMORY_MB ? mem
                                                                  : GGI_LANG_DEFAULT_MEMORY_MB,
                                 0);
    if (rc) {
        cJSON_Delete(req);
        return ggi_lang_oom();
    }
    *out = req;
    return GG_OK;
}

/* program and test as one translation unit, with #line markers naming the two parts */
static char *one_unit(const ggi_task *t, const char *program, const char *ext)
{
    ggi_buf src = GGI_BUF_INIT;
    char *head = ggi_asprintf("#line 1 \"solution.%s\"\n", ext);
    char *mid = ggi_asprintf("\n#line 1 \"test.%s\"\n", ext);
    int rc = head && mid ? GG_OK : GG_ENOMEM;
    if (!rc)
        rc = ggi_buf_puts(&src, head);
    if (!rc)
        rc = ggi_buf_puts(&src, program);
    if (!rc)
        rc = ggi_buf_puts(&src, mid);
    if (!rc)
        rc = ggi_buf_puts(&src, t->test ? t->test : "");
    free(head);
    free(mid);
    if (rc) {
        ggi_buf_free(&src);
        return NULL;
    }
    char *s = ggi_buf_steal(&src);
    return s ? s : ggi_strdup("");
}

/* The linker option of the test jobs' links (runtimes.h). Whether gold is there is decided
 * where the job runs (the host's sandbox, a container image): its script drops the option
 * when `command -v` (a shell builtin: no process) finds no ld.gold. */
#define LINK_WHERE_THERE "command -v ld.gold >/dev/null || GG_LINK=\n"
static const char *link_flag(const ggi_runtimes *rt)
{
    return rt->link_flag ? rt->link_flag : "";
}

static int c_test(const ggi_task *t, const char *program, const ggi_runtimes *rt, cJSON **out)
{
    int rc;
    if ((rc = need_cc(rt)))
        return rc;
    char *src = one_unit(t, program, "c");
    if (!src)
        return ggi_lang_oom();
    const char *files[] = { "main.c", src, NULL };
    const char *env[] = { "GG_CC", rt->cc, "GG_LINK", link_flag(rt), NULL };
    rc = ggi_lang_sh_job(t, NULL,
                         LINK_WHERE_THERE
                         "\"$GG_CC\" -std=c11 -Wall $GG_LINK -o prog main.c -lm || { echo " COMPILE_MARKER
                         " >&2; exit " GGI_LANG_STR(GGI_LANG_COMPILE_EXIT) "; }\nexec ./prog",
                         files, env, C_MIN_MEMORY_MB, out);
    free(src);
    return rc;
}

/* The first compiler diagnostic that is an error, or else a linker's complaint, or else the
 * last line of the compiler's output. */
static int read_compile_error(const char *err, char **reason, char **sig)
{
    for (const char *p = err; *p; p = ggi_lang_next_line(p)) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        long line = 0, col = 0;
        const char *msg = NULL;
        size_t msg_len = 0, file_len = 0;
        const char *sev = ggi_lang_diagnostic(p, n, &line, &col, &msg, &msg_len, &file_len);
        if (sev && strcmp(sev, "error") == 0) {
            char *m = ggi_lang_trimmed(msg, msg_len, GGI_LANG_MAX_REASON_LINE);
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
        char *m = ggi_lang_trimmed(u, eol ? (size_t)(eol - u) : strlen(u), GGI_LANG_MAX_REASON_LINE);
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
    for (const char *p = err; *p; p = ggi_lang_next_line(p)) {
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
    char *m = l ? ggi_lang_trimmed(l, n, GGI_LANG_MAX_REASON_LINE) : ggi_strdup("no message");
    if (!m)
        return -1;
    *reason = ggi_asprintf("compile error: %s", m);
    *sig = ggi_strdup("compile");
    free(m);
    return (*reason && *sig) ? 1 : -1;
}

static int c_failure(const ggi_task *t, const cJSON *r, ggi_verdict *v)
{
    (void)t;
    const char *err = ggi_lang_str(r, "stderr");
    if (ggi_lang_num(r, "signal", 0) == 0 &&
        ggi_lang_num(r, "exit_code", 0) == GGI_LANG_COMPILE_EXIT && strstr(err, COMPILE_MARKER))
        return read_compile_error(err, &v->reason, &v->signature);
    return 0;
}

static int cpp_test(const ggi_task *t, const char *program, const ggi_runtimes *rt,
                    cJSON **out)
{
    int rc;
    if ((rc = ggi_lang_need(rt, GGI_TOOL_CXX)))
        return rc;
    char *src = one_unit(t, program, "cpp");
    if (!src)
        return ggi_lang_oom();
    const char *files[] = { "main.cpp", src, NULL };
    const char *env[] = { "GG_CXX", rt->tool[GGI_TOOL_CXX], "GG_LINK", link_flag(rt), NULL };
    rc = ggi_lang_sh_job(t, NULL,
                         LINK_WHERE_THERE
                         "\"$GG_CXX\" -std=c++17 -fdiagnostics-plain-output $GG_LINK -o prog main.cpp "
                         "-lcrypto -lm || " GGI_LANG_FAIL_ANALYSIS "\nexec ./prog",
                         files, env, CPP_MIN_MEMORY_MB, out);
    free(src);
    return rc;
}

static const char *const c_aliases[] = { NULL };
static const char *const cpp_aliases[] = { "c++", "cxx", "cplusplus", NULL };
static const int cpp_tools[] = { GGI_TOOL_CXX, -1 };

const ggi_lang_ops ggi_lang_c = {
    .name = "c",
    .aliases = c_aliases,
    .program = c_program,
    .analysis = c_analysis,
    .test = c_test,
    .failure = c_failure,
};

const ggi_lang_ops ggi_lang_cpp = {
    .name = "cpp",
    .aliases = cpp_aliases,
    .task_prefix = "CPP/",
    .tools = cpp_tools,
    .test = cpp_test,
};
