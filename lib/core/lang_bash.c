/*
 * lang_bash.c - Bash: solution.sh is the program (stub + completion) and test.sh the task's
 * test. The test job first checks solution.sh with `bash -n` and, when the host has it,
 * `shellcheck -S error` (the analysis: their "solution.sh: line N: message" and
 * "solution.sh:LINE:COL: error: message" lines become findings; nothing runs when either
 * fails), then runs `. ./solution.sh; . ./test.sh` in one bash: the test calls the
 * program's functions, and the attempt passes when that bash exits 0 (the test's last
 * command, or its own `exit 1` on a failed check, decides).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lang_impl.h"

#define BASH_MIN_MEMORY_MB 256

static int bash_test(const ggi_task *t, const char *program, const ggi_runtimes *rt,
                     cJSON **out)
{
    int rc;
    if ((rc = ggi_lang_need(rt, GGI_TOOL_BASH)))
        return rc;
    const char *sc = rt->tool[GGI_TOOL_SHELLCHECK];
    const char *files[] = { "solution.sh", program, "test.sh", t->test ? t->test : "", NULL };
    const char *env[] = { "GG_BASH", rt->tool[GGI_TOOL_BASH], "GG_SHELLCHECK", sc ? sc : "",
                          "HOME", ".", NULL };
    return ggi_lang_sh_job(
        t, NULL,
        "\"$GG_BASH\" -n solution.sh || " GGI_LANG_FAIL_ANALYSIS "\n"
        "if [ -n \"$GG_SHELLCHECK\" ]; then \"$GG_SHELLCHECK\" -s bash -S error -f gcc "
        "solution.sh >&2 || " GGI_LANG_FAIL_ANALYSIS "; fi\n"
        "exec \"$GG_BASH\" -c '. ./solution.sh; . ./test.sh'",
        files, env, BASH_MIN_MEMORY_MB, out);
}

/* bash -n: "solution.sh: line 3: syntax error near unexpected token `fi'" */
static int bash_finding(const char *p, size_t n, cJSON *arr)
{
    const char *end = p + n, *l = NULL;
    for (const char *q = p; q + 7 <= end; q++)
        if (strncmp(q, ": line ", 7) == 0) {
            l = q;
            break;
        }
    if (!l || memchr(p, ' ', (size_t)(l - p)))
        return 0;
    long line = 0;
    const char *q = ggi_lang_digits(l + 7, end, &line);
    if (!q || q + 2 > end || q[0] != ':')
        return 0;
    q += 2;
    return ggi_lang_add_finding(arr, "error", line, 0, q, q < end ? (size_t)(end - q) : 0)
               ? -1
               : 1;
}

static const char *const bash_aliases[] = { "sh", "shell", NULL };
static const int bash_tools[] = { GGI_TOOL_BASH, -1 };

const ggi_lang_ops ggi_lang_bash = {
    .name = "bash",
    .aliases = bash_aliases,
    .tools = bash_tools,
    .test = bash_test,
    .finding = bash_finding,
};
