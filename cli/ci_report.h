/*
 * ci_report.h - what `gryphgen eval` hands to CI/CD besides its summary (docs/ci.md): the
 * JUnit XML of the run (--junit), the summary as JSON (--summary-json), the pass-rate gate
 * (--fail-under), each passing workspace task's patch as a `git format-patch` file
 * (--patches) and its delivery onto a branch of its repository (--deliver branch, or the
 * task's own "deliver" field). Tasks are told to it in the set's order once they have ended;
 * the task lines that deliveries and patches need are kept meanwhile in an unlinked temporary
 * file, not in memory.
 *
 * THREAD SAFETY: for the main thread only.
 */
#ifndef GG_CLI_CI_REPORT_H
#define GG_CLI_CI_REPORT_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* getopt_long values of the options (eval's table). */
enum { CI_OPT_DELIVER = 0x220, CI_OPT_PATCHES, CI_OPT_JUNIT, CI_OPT_FAIL_UNDER,
       CI_OPT_SUMMARY_JSON };
#define CI_LONG_OPTIONS                                                  \
    {"deliver", required_argument, NULL, CI_OPT_DELIVER},                \
    {"patches", required_argument, NULL, CI_OPT_PATCHES},                \
    {"junit", required_argument, NULL, CI_OPT_JUNIT},                    \
    {"fail-under", required_argument, NULL, CI_OPT_FAIL_UNDER},          \
    {"summary-json", required_argument, NULL, CI_OPT_SUMMARY_JSON}

/** The options as given. */
typedef struct ci_options {
    int deliver;              /* --deliver branch */
    const char *patches_dir;  /* --patches DIR */
    const char *junit_path;   /* --junit PATH */
    const char *summary_path; /* --summary-json PATH */
    int has_fail_under;
    double fail_under;        /* --fail-under PERCENT, 0 to 100 */
} ci_options;

/** The run's counts: eval's summary, kept as the run goes and handed to the reports. */
typedef struct ci_counts {
    unsigned long total, passed_first, passed_repair, failed, errors, bad_lines, cancelled;
    unsigned long attempts;
    unsigned long error_tasks; /* tasks (not bad lines) that ended in error */
    double wall_s;             /* set before the reports are written */
} ci_counts;

typedef struct ci_report ci_report;

/**
 * Handles one of the options above by its getopt_long value: 1 when handled, 0 when c is
 * not one of them, -1 after printing why the value is bad (a usage error).
 */
int ci_option(ci_options *o, int c, const char *arg);

/**
 * Checks before the run what can be checked (the places to write exist or can be made):
 * 0, or -1 after printing why (a usage error).
 */
int ci_options_check(const ci_options *o);

/** Creates the report. Returns 0, or -1 after printing why. */
int ci_report_new(ci_report **out, const ci_options *o);

/**
 * Looks at an input line before it is submitted: -1 with *reason (malloc'd) when its
 * "deliver" field is malformed (the line is bad input), else 0.
 */
int ci_report_check_line(const char *line, size_t len, char **reason);

/**
 * A line was submitted as task_id: keeps the line when a delivery or a patch may need it.
 * Returns 0, or -1 after printing why (the temporary file failed).
 */
int ci_report_submitted(ci_report *r, const char *task_id, const char *line, size_t len);

/**
 * A task has ended (called in the set's order, each submitted task once): its JUnit case,
 * and, when complete (the run finished, not interrupted) and it passed, its patch file and
 * its delivery. result is its result JSON, parsed is the same parsed.
 */
void ci_report_task(ci_report *r, const char *task_id, const char *result,
                    const cJSON *parsed, int complete);

/** A bad input line (task_id may be NULL): a JUnit error case. */
void ci_report_bad(ci_report *r, unsigned long long line, const char *task_id,
                   const char *reason);

/** A submitted task whose result could not be read (in the set's order, instead of
 * ci_report_task): a JUnit error case; it is not handed over. */
void ci_report_no_result(ci_report *r, unsigned long long line, const char *task_id,
                         const char *reason);

/**
 * Writes the JUnit file and the summary JSON (each atomically) and applies --fail-under.
 * interrupted: the run stopped early (the files hold what ended; the gate is not applied).
 * Returns 0, or 1 when a delivery or a patch failed, the pass rate is under the gate, or a
 * file could not be written (each said on stderr).
 */
int ci_report_finish(ci_report *r, const ci_counts *c, int interrupted);

/** Frees the report and sets *pr to NULL. Accepts NULL. */
void ci_report_destroy(ci_report **pr);

#endif
