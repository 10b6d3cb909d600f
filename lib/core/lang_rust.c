/*
 * lang_rust.c - Rust: main.rs is program + test (HumanEval-X's Rust: its declaration's `use`
 * lines and signature are in the stub, its test is a #[cfg(test)] module), with an empty
 * `fn main(){}` put first when the program has none. rustc (edition 2021) compiles it, as a
 * test harness (--test) when the test has #[test] functions, else as a program; the compile
 * is the analysis (its short-form "FILE:LINE:COL: error[Ennnn]: message" lines become
 * findings; nothing runs when it fails). The crates rand, regex and md5 are prebuilt once
 * from Debian's registry (lang_prep.c) and given to every job with --extern, read-only:
 * a job compiles only its own file. The standard library is linked dynamically
 * (-C prefer-dynamic -C rpath: Debian's libstd .so under /usr, which every job's root has),
 * which halves the compile: a 50 KB test binary is linked instead of an 18 MB one. A panic (a failed assert!) fails the run and reads as
 * its message and line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lang_impl.h"

#define RUST_MIN_MEMORY_MB 1024

static int has_main(const char *program)
{
    for (const char *l = program; *l; l = ggi_lang_next_line(l)) {
        const char *p = l, *q;
        while (ggi_lang_is_blank(*p))
            p++;
        if ((q = ggi_lang_match_word(p, "fn")) && ggi_lang_is_blank(*q)) {
            while (ggi_lang_is_blank(*q))
                q++;
            const char *r = ggi_lang_match_word(q, "main");
            if (r) {
                while (ggi_lang_is_blank(*r))
                    r++;
                if (*r == '(')
                    return 1;
            }
        }
    }
    return 0;
}

static int rust_test(const ggi_task *t, const char *program, const ggi_runtimes *rt,
                     cJSON **out)
{
    int rc;
    if ((rc = ggi_lang_need(rt, GGI_TOOL_RUSTC)))
        return rc;
    const char *dir = ggi_lang_prepared_rust(rt);
    if (!dir)
        return GG_EIO;
    const char *test = t->test ? t->test : "";
    int harness = strstr(test, "#[test]") != NULL;
    char *src = ggi_asprintf("%s%s\n%s", has_main(program) || has_main(test) ? ""
                                                                              : "fn main(){}\n",
                             program, test);
    char *script = ggi_asprintf(
        "\"$GG_RUSTC\" --edition 2021 %s--error-format short -C debuginfo=0 -C prefer-dynamic "
        "-C rpath -o prog "
        "-L dependency=%s/deps%s main.rs >&2 || " GGI_LANG_FAIL_ANALYSIS "\nexec ./prog%s",
        harness ? "--test " : "", dir, ggi_lang_rust_externs(),
        harness ? " -q --test-threads=1 >&2" : "");
    if (!src || !script) {
        free(src);
        free(script);
        return ggi_lang_oom();
    }
    const char *files[] = { "main.rs", src, NULL };
    const char *env[] = { "GG_RUSTC", rt->tool[GGI_TOOL_RUSTC], "HOME", ".",
                          "RUST_BACKTRACE", "0", NULL };
    rc = ggi_lang_sh_job(t, dir, script, files, env, RUST_MIN_MEMORY_MB, out);
    free(src);
    free(script);
    return rc;
}

/* thread 'tests::x' panicked at 'assertion failed: ...', main.rs:12:9   (rustc 1.63)
 * thread 'tests::x' panicked at main.rs:12:9:\nassertion failed: ...     (later rustc) */
static int rust_failure(const ggi_task *t, const cJSON *r, ggi_verdict *v)
{
    (void)t;
    const char *err = ggi_lang_str(r, "stderr");
    const char *p = strstr(err, "panicked at ");
    if (!p)
        return 0;
    const char *m = strstr(p, "main.rs:");
    long line = 0;
    if (m)
        ggi_lang_digits(m + 8, m + strlen(m), &line);
    const char *s = p + 12;
    const char *eol = strchr(s, '\n');
    if (strncmp(s, "main.rs:", 8) == 0 && eol) { /* the message is on the next line */
        s = eol + 1;
        eol = strchr(s, '\n');
    }
    /* rustc 1.63's assert_eq! spreads left/right over the next two lines: keep them */
    const char *end = eol ? eol : s + strlen(s);
    for (int i = 0; i < 2 && *end && strstr(s, "(left == right)"); i++) {
        const char *n = strchr(end + 1, '\n');
        end = n ? n : end + 1 + strlen(end + 1);
    }
    char *what = ggi_lang_trimmed(s, (size_t)(end - s), GGI_LANG_MAX_REASON_LINE);
    if (!what)
        return -1;
    for (char *c = what; *c; c++)
        if (*c == '\n')
            *c = ' ';
    v->reason = line ? ggi_asprintf("panicked at main.rs line %ld: %s", line, what)
                     : ggi_asprintf("panicked: %s", what);
    v->signature = ggi_asprintf("panic@main.rs:%ld", line);
    free(what);
    return 1;
}

static const char *const rust_aliases[] = { "rs", NULL };
static const int rust_tools[] = { GGI_TOOL_RUSTC, GGI_TOOL_CARGO, -1 };

const ggi_lang_ops ggi_lang_rust = {
    .name = "rust",
    .aliases = rust_aliases,
    .task_prefix = "Rust/",
    .tools = rust_tools,
    .test = rust_test,
    .failure = rust_failure,
};
