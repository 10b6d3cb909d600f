/*
 * lang_impl.h - what the per-language files (lang_python.c, lang_c.c, lang_java.c, lang_js.c,
 * lang_go.c, lang_rust.c, lang_bash.c) give the dispatcher in lang.c: one descriptor per
 * language, and the helpers they share (lang_util.c) and the prepared toolchain directories
 * (lang_prep.c). Internal to lib/core/lang*.c.
 */
#ifndef GGI_LANG_IMPL_H
#define GGI_LANG_IMPL_H

#include <stddef.h>

#include "lang.h"

#define GGI_LANG_DEFAULT_TIMEOUT_S 10.0
#define GGI_LANG_DEFAULT_MEMORY_MB 1024
#define GGI_LANG_ANALYSIS_TIMEOUT_S 30.0
#define GGI_LANG_MAX_FINDINGS 100
#define GGI_LANG_MAX_MESSAGE 500
#define GGI_LANG_MAX_REASON_LINE 300
/* A compiled language's test job prints this line (stderr) and exits GGI_LANG_ANALYSIS_EXIT
 * when its compile step (the analysis) fails; nothing has run then. */
#define GGI_LANG_ANALYSIS_MARKER "GG-ANALYSIS-FAILED"
#define GGI_LANG_STR2(x) #x
#define GGI_LANG_STR(x) GGI_LANG_STR2(x)
/* The shell text that ends a failed compile step: marker line, exit code. */
#define GGI_LANG_FAIL_ANALYSIS                                                                  \
    "{ echo " GGI_LANG_ANALYSIS_MARKER " >&2; exit " GGI_LANG_STR(GGI_LANG_ANALYSIS_EXIT) "; }"

/** One language: its names and the steps that differ. */
typedef struct ggi_lang_ops {
    const char *name;                 /* the canonical name, as tasks carry it */
    const char *const *aliases;       /* other names accepted in "language", NULL-ended */
    const char *task_prefix;          /* HumanEval-X task_id prefix ("CPP/"), or NULL */
    const int *tools;                 /* GGI_TOOL_* it needs, ended by -1 (python, cc: none) */
    /* the program for a completion; NULL: stub + completion */
    int (*program)(const ggi_task *t, const char *completion, char **out);
    /* the separate analysis job, or NULL when the test job analyses first */
    int (*analysis)(const ggi_task *t, const char *program, const ggi_runtimes *rt,
                    cJSON **out);
    int (*test)(const ggi_task *t, const char *program, const ggi_runtimes *rt, cJSON **out);
    /* 1 when a job that exited 0 still failed (an assertion that only printed) */
    int (*failed_quietly)(const cJSON *result);
    /* the language's reading of a failed run: 1 when it filled v->reason and v->signature,
     * 0 when the generic reading should, -1 on ENOMEM */
    int (*failure)(const ggi_task *t, const cJSON *result, ggi_verdict *v);
    /* one line of analysis output as a finding: 1 when it was one (added), 0 not, -1 ENOMEM;
     * NULL: compiler-style "FILE:LINE[:COL]: error|warning: message" only */
    int (*finding)(const char *line, size_t n, cJSON *arr);
} ggi_lang_ops;

extern const ggi_lang_ops ggi_lang_python, ggi_lang_c, ggi_lang_cpp, ggi_lang_java,
    ggi_lang_javascript, ggi_lang_typescript, ggi_lang_go, ggi_lang_rust, ggi_lang_bash;

/* ---- lang_util.c ---- */
int ggi_lang_oom(void);
int ggi_lang_is_ident(int c);
int ggi_lang_is_blank(int c);
const char *ggi_lang_next_line(const char *p);
const char *ggi_lang_prev_line(const char *text, const char *p);
const char *ggi_lang_match_word(const char *p, const char *word);
int ggi_lang_add_file(cJSON *files, const char *path, const char *content);
int ggi_lang_add_argv(cJSON *req, const char *const *argv, size_t n);
int ggi_lang_add_limits(cJSON *req, double timeout_s, int memory_mb, double cpu_s);
double ggi_lang_timeout(const ggi_task *t);
int ggi_lang_memory(const ggi_task *t);
double ggi_lang_num(const cJSON *r, const char *key, double dflt);
int ggi_lang_bool(const cJSON *r, const char *key);
const char *ggi_lang_str(const cJSON *r, const char *key);
char *ggi_lang_trimmed(const char *p, size_t n, size_t max);
const char *ggi_lang_last_line(const char *text, size_t *len);
char *ggi_lang_tail(const char *text, size_t max);
int ggi_lang_add_finding(cJSON *arr, const char *severity, long line, long col,
                         const char *msg, size_t msg_len);
int ggi_lang_harness_finding(const char *p, size_t n, cJSON *arr, int *rc);
const char *ggi_lang_digits(const char *p, const char *end, long *out);
const char *ggi_lang_diagnostic(const char *p, size_t n, long *line, long *col,
                                const char **msg, size_t *msg_len, size_t *file_len);
const char *ggi_lang_signal_name(int sig);
/* stub + completion; when the completion itself defines the entry point (found by find,
 * which may be NULL), only the stub's text before its own definition + the completion */
int ggi_lang_program_with(const ggi_task *t, const char *completion,
                          const char *(*find)(const char *, const char *), char **out);
/* A C assert() message in err: 1 (file, line, *expr malloc'd), 0 none, -1 ENOMEM */
int ggi_lang_c_assert(const char *err, char *file, size_t file_cap, long *line, char **expr);
/* 1 when any finding in arr is an error */
int ggi_lang_has_error(const cJSON *arr);

/*
 * A test job that runs script under sh (argv[0] is sh, or prefix/bin/sh when prefix is not
 * NULL: a prepared directory the sandbox then binds read-only), with the given files
 * (path, content pairs, NULL-ended), env (name, value pairs, NULL-ended), the task's timeout
 * and its memory limit raised to at least min_memory_mb.
 */
int ggi_lang_sh_job(const ggi_task *t, const char *prefix, const char *script,
                    const char *const *files, const char *const *env, int min_memory_mb,
                    cJSON **out);

/* A missing tool's error (GG_ENOTFOUND naming the GRYPHGEN_TOOLCHAIN_* variable). */
int ggi_lang_need(const ggi_runtimes *rt, int tool);

/* The first line of text that contains needle, trimmed (malloc'd), or NULL. */
char *ggi_lang_line_with(const char *text, const char *needle);

/* ---- lang_prep.c: prepared, read-only toolchain directories shared by jobs ---- */

/*
 * The directory prepared for a language's jobs (Go: a warm build cache; Rust: prebuilt
 * crates), made once per host and toolchain version below the cache root
 * ($GRYPHGEN_TOOLCHAIN_CACHE, else /var/cache/gryphgen as root, else
 * /var/tmp/gryphgen-UID), and once per process looked up. It holds bin/sh, so a job whose
 * argv[0] is DIR/bin/sh gets DIR bound read-only into its sandbox. Static string, or NULL
 * with the error set (GG_EIO) when it cannot be made.
 */
const char *ggi_lang_prepared_go(const ggi_runtimes *rt);
const char *ggi_lang_prepared_rust(const ggi_runtimes *rt);
const char *ggi_lang_prepared_java(const ggi_runtimes *rt);
/* The environment every Go step runs with (NAME=value strings, NULL-ended). */
extern const char *ggi_lang_go_env_fmt[];
/* rustc's --extern arguments for the prebuilt crates ("--extern rand=DIR/... ..."). */
const char *ggi_lang_rust_externs(void);

#endif
