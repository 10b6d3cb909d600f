/*
 * lang.h - what differs per language: how a completion becomes a program, which analysis job
 * checks it, which job runs it against the task's test, and how a job's result reads as a
 * verdict with feedback. Python, C, C++, Java, JavaScript, TypeScript, Go, Rust, Bash; the
 * languages' own code is in lang_*.c (lang_impl.h), this is the interface. Internal.
 *
 * Python: the program is run by a small harness (inside the test job) that byte-compiles it
 * first and stops with an analysis finding (exit code GGI_LANG_ANALYSIS_EXIT) before executing
 * anything when it does not compile, then executes program and test in one namespace and calls
 * check(<entry_point>) when the test defines check. So Python pays one interpreter start per
 * attempt, and code that fails analysis is still never executed. The namespace's __name__ is
 * "solution" when the task names an entry point (a `if __name__ == "__main__":` demo block
 * does not run, as in HumanEval's own evaluation) and "__main__" when it names none.
 * C: a separate analysis job (cc -fsyntax-only -Wall) and then a job that compiles program and
 * test as one translation unit (cc -std=c11 -Wall) and runs it.
 * The other languages: one test job whose first step (compile, type check or syntax check)
 * is the analysis: when it fails it prints GG-ANALYSIS-FAILED and exits
 * GGI_LANG_ANALYSIS_EXIT, its diagnostics become findings and nothing has run.
 */
#ifndef GGI_LANG_H
#define GGI_LANG_H

#include "ggi.h"
#include "task.h"
#include "../execution/runtimes.h"

/** Exit code by which the Python harness reports that the program did not compile. */
#define GGI_LANG_ANALYSIS_EXIT 90

/**
 * Exit code of a C test job whose compile step failed (after a "GG-COMPILE-FAILED" line on
 * stderr, so the program's own exit 91 is not mistaken for it).
 */
#define GGI_LANG_COMPILE_EXIT 91

/** 1 when the language (a name or an alias, any case) is supported. */
int ggi_lang_supported(const char *language);

/** The canonical name of a language or alias ("C++" -> "cpp"), or NULL when unknown. */
const char *ggi_lang_canonical(const char *language);

/** The language a HumanEval-X task_id's prefix names ("CPP/0" -> "cpp"), or NULL. */
const char *ggi_lang_from_task_id(const char *task_id);

/** The supported languages' names, comma-separated (for messages). */
const char *ggi_lang_names(void);

/** How many languages there are, and the i-th one's canonical name (NULL past the end). */
size_t ggi_lang_count(void);
const char *ggi_lang_name_at(size_t i);

/** The NODE_PATH JavaScript jobs get: $GRYPHGEN_NODE_PATH, else npm's and Debian's dirs. */
const char *ggi_lang_js_node_path(void);

#define GGI_LANG_MAX_DEPS 1024 /* names a worker announces (caps.deps) */

/**
 * The libraries tasks may name in "requires" (docs/tasks.md) that this machine has, sorted:
 * "go:HOST/OWNER/REPO" under Debian's GOPATH, "rust:CRATE" in Debian's cargo registry,
 * "npm:NAME" (and "npm:@SCOPE/NAME") on ggi_lang_js_node_path(), and the system libraries
 * "boost" and "openssl" when their headers are installed; at most GGI_LANG_MAX_DEPS. A new
 * array, NULL on ENOMEM.
 */
cJSON *ggi_lang_deps_present(void);

/**
 * 1 when have (an array of names, as ggi_lang_deps_present) holds every name of requires (a
 * task's "requires"; a Go package also counts as present inside an announced repository);
 * else 0 with *missing (when not NULL) the first name absent, pointing into requires.
 */
int ggi_lang_deps_cover(const cJSON *have, const cJSON *requires, const char **missing);

/** 1 when have (as above) holds need: the same name, or for Go a package inside an
 * announced repository ("go:github.com/stretchr/testify/assert" in ".../testify"). */
int ggi_lang_deps_has(const cJSON *have, const char *need);

/** 1 when rt has every toolchain the language needs. */
int ggi_lang_available(const char *language, const ggi_runtimes *rt);

/**
 * The program for a completion: stub + completion, unless the completion itself defines the
 * entry point (models often return whole functions): then the stub's text before the entry
 * point's definition (imports, helpers) + the completion. *out is malloc'd.
 */
int ggi_lang_program(const ggi_task *t, const char *completion, char **out);

/**
 * The executor request of the separate analysis job, or *out = NULL when the language has
 * none (Python: see above). GG_ENOTFOUND when the runtime is missing (message names it).
 */
int ggi_lang_analysis_request(const ggi_task *t, const char *program, const ggi_runtimes *rt,
                              cJSON **out);

/**
 * Reads an analysis job's result JSON into findings, an array of
 * {"severity": "error"|"warning", "line": n, "column": n, "message": "..."}; *out_ok is 0
 * when any finding is an error (the program is then not executed).
 */
int ggi_lang_analysis_read(const ggi_task *t, const cJSON *exec_result, cJSON **out_findings,
                           int *out_ok);

/**
 * The executor request that runs the program against the task's test, with the task's
 * resources as limits. GG_ENOTFOUND when the runtime is missing.
 */
int ggi_lang_test_request(const ggi_task *t, const char *program, const ggi_runtimes *rt,
                          cJSON **out);

/** How a test job ended, in words a next attempt can use. */
typedef struct ggi_verdict {
    int passed;            /* exit 0, no signal, no timeout */
    int analysis_failed;   /* the test job's analysis step reported that the program did not
                              compile (the Python harness, a compile step) */
    cJSON *findings;       /* analysis findings when analysis_failed, else NULL */
    char *reason;          /* NULL when passed; e.g. "timed out after 10 s",
                              "AssertionError at test line 12", "killed by signal 11" */
    char *signature;       /* a short stable string of the failure, for stuck-loop detection */
} ggi_verdict;

/** Reads a test job's result. v must be zeroed; free with ggi_verdict_free. */
int ggi_lang_evaluate(const ggi_task *t, const cJSON *exec_result, ggi_verdict *v);

void ggi_verdict_free(ggi_verdict *v);

#endif
