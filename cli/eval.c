/*
 * eval.c - `gryphgen eval`: streams a task set (JSON lines) into one orchestrator, reports bad
 * lines and keeps going, waits for the set with a progress display, then reads every task's
 * result back from the database for the summary. The --results file gets each task's line as
 * the task ends (results_stream.c). The set itself is never held in memory: only one line at
 * a time, and the ids in an unlinked temporary file.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "ci_report.h"
#include "cli.h"
#include "idlog.h"
#include "jsonl_reader.h"
#include "progress.h"
#include "results_stream.h"

#define DRAIN_SLICE_MS 100
#define BUSY_RETRY_MS 20
#define MAX_ERRORS_SHOWN 5
#define OPT_CONNECT 0x200

/* With --connect: the client of a remote orchestrator (`gryphgen serve`), else NULL. */
static gg_client_t *eval_client;

/* With --results: the file, written as tasks end, and its path for messages; else NULL. */
static results_stream *eval_results;
static const char *eval_results_path;

/* The JUnit file, summary JSON, gate, patches and deliveries (ci_report.h). */
static ci_report *eval_ci;

/* What the orchestrator's events feed: the progress display and the results file. */
typedef struct eval_events {
    progress *prog;
    results_stream *results;
} eval_events;

static void eval_on_event(void *user, const char *event_json)
{
    eval_events *e = user;
    progress_on_event(e->prog, event_json);
    if (e->results)
        results_stream_on_event(e->results, event_json);
}

static int fetch_result(gg_orchestrator_t *o, const char *id, char **result)
{
    return eval_client ? cli_client_result(eval_client, id, result)
                       : gg_orchestrator_result(o, id, result);
}

static int results_write_failed(void)
{
    cli_errorf("cannot write %s: %s", eval_results_path, strerror(errno));
    return -1;
}

/* Appends the result of a task that has ended, unless its line is there. Returns 0 or -1
 * after printing why. */
static int results_put(const char *id, const char *result)
{
    if (!eval_results || !result)
        return 0;
    return results_stream_put_result(eval_results, id, result) == 0 ? 0
                                                                     : results_write_failed();
}

/* Writes the lines of the tasks whose end was reported since the last call. Returns 0 or -1
 * after printing why. */
static int results_put_ended(gg_orchestrator_t *o)
{
    char *id;
    while (eval_results && (id = results_stream_next_ended(eval_results))) {
        char *result = NULL;
        int rc = 0;
        if (!results_stream_written(eval_results, id) && fetch_result(o, id, &result) == 0)
            rc = results_put(id, result);
        gg_free(result);
        free(id);
        if (rc)
            return -1;
    }
    return 0;
}

/* The run's counts are ci_report.h's ci_counts (the reports read them as they are). */
typedef ci_counts eval_summary;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The task_id of a line that failed to submit, when the line is an object that has one. */
static char *line_task_id(const char *line, size_t len)
{
    cJSON *obj = cJSON_ParseWithLength(line, len);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(obj, "task_id");
    char *out = NULL;
    if (cJSON_IsString(id) && strlen(id->valuestring) <= 256) {
        /* shown as it is only when it is valid UTF-8 (else the reason names the field) */
        char *clean = results_utf8_clean(id->valuestring, strlen(id->valuestring));
        if (clean && strcmp(clean, id->valuestring) == 0)
            out = clean;
        else
            free(clean);
    }
    cJSON_Delete(obj);
    return out;
}

/* Whether a submit error is the line's fault (reported, the run goes on) or the system's. */
static int is_input_error(int rc)
{
    return rc == GG_EINVAL || rc == GG_ETOOBIG || rc == GG_EEXIST || rc == GG_ENOTFOUND ||
           rc == GG_EUNSUPPORTED;
}

static int report_bad_line(idlog *ids, progress *prog, unsigned long long line,
                           const char *task_id, const char *reason)
{
    cli_errorf("line %llu: %s", line, reason);
    progress_add_bad(prog);
    if (idlog_add_bad(ids, line, task_id, reason) != 0) {
        cli_errorf("cannot write the temporary list of task ids: %s", strerror(errno));
        return -1;
    }
    if (eval_results && results_stream_put_bad(eval_results, line, task_id, reason) != 0)
        return results_write_failed();
    return 0;
}

/* Submits one line, retrying while the orchestrator says it is busy. */
static int submit_line(gg_orchestrator_t *o, progress *prog, const char *line, char **id)
{
    for (;;) {
        int rc = eval_client ? gg_client_submit(eval_client, line, id)
                             : gg_orchestrator_submit(o, line, id);
        if (rc != GG_EBUSY || cli_interrupted)
            return rc;
        progress_tick(prog, 0);
        sleep_ms(BUSY_RETRY_MS);
    }
}

/* After a submit: a task an earlier run finished has ended already; count it as done and
 * write its line. Returns 0 or -1 after printing why. */
static int note_if_ended(gg_orchestrator_t *o, progress *prog, const char *id)
{
    char *result = NULL;
    int rc = 0;
    if (fetch_result(o, id, &result) == 0 && result) {
        cJSON *r = cJSON_Parse(result);
        const cJSON *status = cJSON_GetObjectItemCaseSensitive(r, "status");
        progress_add_ended(prog, id, cJSON_IsString(status) ? status->valuestring : NULL);
        cJSON_Delete(r);
        rc = results_put(id, result);
    }
    gg_free(result);
    return rc;
}

/*
 * Reads the input and submits every line. Returns CLI_EXIT_OK, or CLI_EXIT_INFRA after
 * printing why.
 */
static int submit_all(gg_orchestrator_t *o, int fd, const char *input_name, idlog *ids,
                      progress *prog)
{
    jsonl_reader *reader = NULL;
    int status = CLI_EXIT_OK;

    if (jsonl_reader_new(&reader, fd, CLI_MAX_TASK_BYTES) != 0) {
        cli_errorf("out of memory");
        return CLI_EXIT_INFRA;
    }
    while (!cli_interrupted) {
        const char *line;
        size_t len;
        unsigned long long lineno;
        int kind = jsonl_reader_next(reader, &line, &len, &lineno);
        char *id = NULL, *reason = NULL;
        int rc;

        if (kind == JSONL_EOF)
            break;
        if (kind < 0) {
            cli_errorf("cannot read %s: %s", input_name, strerror(errno));
            status = CLI_EXIT_INFRA;
            break;
        }
        if (kind == JSONL_TOO_LONG) {
            char msg[160];
            snprintf(msg, sizeof msg, "the line is %zu bytes, over the limit of %zu bytes; skipped",
                     len, CLI_MAX_TASK_BYTES);
            if (report_bad_line(ids, prog, lineno, NULL, msg) != 0) {
                status = CLI_EXIT_INFRA;
                break;
            }
            progress_tick(prog, 0);
            continue;
        }
        if (strlen(line) != len) {
            if (report_bad_line(ids, prog, lineno, NULL, "the line holds a NUL byte") != 0) {
                status = CLI_EXIT_INFRA;
                break;
            }
            continue;
        }

        if (ci_report_check_line(line, len, &reason) != 0) {
            char *task_id = line_task_id(line, len);
            rc = report_bad_line(ids, prog, lineno, task_id,
                                 reason ? reason : "field 'deliver' is malformed");
            free(reason);
            reason = NULL;
            free(task_id);
            if (rc != 0) {
                status = CLI_EXIT_INFRA;
                break;
            }
            continue;
        }
        cli_warm_python_for(line, len); /* the first Python task starts the warm-up */
        rc = submit_line(o, prog, line, &id);
        if (rc == 0) {
            progress_add_task(prog);
            if (ci_report_submitted(eval_ci, id, line, len) != 0) {
                gg_free(id);
                status = CLI_EXIT_INFRA;
                break;
            }
            if (idlog_add_task(ids, lineno, id) != 0) {
                cli_errorf("cannot write the temporary list of task ids: %s", strerror(errno));
                gg_free(id);
                status = CLI_EXIT_INFRA;
                break;
            }
            rc = note_if_ended(o, prog, id);
            gg_free(id);
            if (rc != 0) {
                status = CLI_EXIT_INFRA;
                break;
            }
        } else if (is_input_error(rc)) {
            const char *msg = gg_error_last();
            char *task_id = line_task_id(line, len);
            if (!*msg)
                msg = gg_strerror(rc);
            /* the library names the task; add it when it could not */
            if (task_id && !strstr(msg, "task '")) {
                size_t n = strlen(task_id) + strlen(msg) + 16;
                reason = malloc(n);
                if (reason)
                    snprintf(reason, n, "task '%s': %s", task_id, msg);
            }
            rc = report_bad_line(ids, prog, lineno, task_id, reason ? reason : msg);
            free(reason);
            free(task_id);
            if (rc != 0) {
                status = CLI_EXIT_INFRA;
                break;
            }
        } else if (rc == GG_ECANCELLED && cli_interrupted) {
            break;
        } else {
            const char *msg = gg_error_last();
            cli_errorf("line %llu: cannot submit the task: %s", lineno,
                       *msg ? msg : gg_strerror(rc));
            status = CLI_EXIT_INFRA;
            break;
        }
        if (results_put_ended(o) != 0) {
            status = CLI_EXIT_INFRA;
            break;
        }
        progress_tick(prog, 0);
    }
    jsonl_reader_destroy(&reader);
    return status;
}

/* With --connect: waits for each task in turn. Returns an exit code. */
static int wait_all_remote(idlog *ids, progress *prog)
{
    idlog_entry e;
    int rc;
    if (idlog_rewind(ids) != 0) {
        cli_errorf("cannot read the temporary list of task ids: %s", strerror(errno));
        return CLI_EXIT_INFRA;
    }
    while ((rc = idlog_next(ids, &e)) == 1) {
        if (e.bad)
            continue;
        for (;;) {
            char *result = NULL;
            int wrc = gg_client_wait(eval_client, e.task_id, DRAIN_SLICE_MS * 5, &result);
            if (cli_interrupted) {
                gg_free(result);
                return CLI_EXIT_SIGINT;
            }
            if (wrc == GG_ETIMEDOUT) {
                progress_tick(prog, 1);
                continue;
            }
            if (wrc != 0) {
                cli_errorf("waiting for task '%s' failed: %s", e.task_id, gg_error_last());
                return CLI_EXIT_INFRA;
            }
            cJSON *r = cJSON_Parse(result);
            const cJSON *st = cJSON_GetObjectItemCaseSensitive(r, "status");
            progress_add_ended(prog, e.task_id, cJSON_IsString(st) ? st->valuestring : NULL);
            cJSON_Delete(r);
            wrc = results_put(e.task_id, result);
            gg_free(result);
            if (wrc != 0)
                return CLI_EXIT_INFRA;
            break;
        }
    }
    return rc < 0 ? CLI_EXIT_INFRA : CLI_EXIT_OK;
}

/* Waits for every task, redrawing the progress. Returns an exit code. */
static int wait_all(gg_orchestrator_t *o, progress *prog)
{
    for (;;) {
        int rc = gg_orchestrator_drain(o, DRAIN_SLICE_MS);
        if (results_put_ended(o) != 0)
            return CLI_EXIT_INFRA;
        if (rc == 0)
            return CLI_EXIT_OK;
        if (cli_interrupted)
            return CLI_EXIT_SIGINT;
        if (rc != GG_ETIMEDOUT) {
            const char *msg = gg_error_last();
            cli_errorf("waiting for the tasks failed: %s", *msg ? msg : gg_strerror(rc));
            return CLI_EXIT_INFRA;
        }
        progress_tick(prog, 1);
    }
}

static void count_result(eval_summary *s, const cJSON *r)
{
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(r, "status");
    const cJSON *passed_attempt = cJSON_GetObjectItemCaseSensitive(r, "passed_attempt");
    const cJSON *attempts = cJSON_GetObjectItemCaseSensitive(r, "attempts");
    const char *st = cJSON_IsString(status) ? status->valuestring : "";

    if (cJSON_IsNumber(attempts) && attempts->valuedouble > 0)
        s->attempts += (unsigned long)attempts->valuedouble;
    if (strcmp(st, "passed") == 0) {
        if (cJSON_IsNumber(passed_attempt) && passed_attempt->valuedouble > 1)
            s->passed_repair++;
        else
            s->passed_first++;
    } else if (strcmp(st, "failed") == 0) {
        s->failed++;
    } else if (strcmp(st, "cancelled") == 0) {
        s->cancelled++;
    } else {
        s->errors++;
    }
}

/* Shows why the first few tasks ended in error (a missing runtime, a generator failing). */
static void report_error_task(eval_summary *s, const cJSON *r, unsigned long long line)
{
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(r, "status");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(r, "task_id");
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(r, "reason");
    if (!cJSON_IsString(status) || strcmp(status->valuestring, "error") != 0)
        return;
    s->error_tasks++;
    if (s->error_tasks <= MAX_ERRORS_SHOWN)
        cli_errorf("line %llu: task '%s' ended in error: %s", line,
                   cJSON_IsString(id) ? id->valuestring : "?",
                   cJSON_IsString(reason) ? reason->valuestring : "no reason given");
    else if (s->error_tasks == MAX_ERRORS_SHOWN + 1)
        cli_errorf("more tasks ended in error; --results PATH writes every reason");
}

/*
 * Reads every task's result in the set's order, counting them and writing the results file
 * when one is open. Returns an exit code.
 */
static int collect_results(gg_orchestrator_t *o, idlog *ids, eval_summary *s)
{
    idlog_entry e;
    int rc;

    if (idlog_rewind(ids) != 0) {
        cli_errorf("cannot read the temporary list of task ids: %s", strerror(errno));
        return CLI_EXIT_INFRA;
    }
    while ((rc = idlog_next(ids, &e)) == 1) {
        int wrc = 0;
        s->total++;
        if (e.bad) {
            s->errors++;
            s->bad_lines++;
            ci_report_bad(eval_ci, e.line, e.task_id, e.reason);
            if (eval_results &&
                results_stream_put_bad(eval_results, e.line, e.task_id, e.reason) != 0)
                wrc = results_write_failed();
        } else {
            char *result = NULL;
            int grc = fetch_result(o, e.task_id, &result);
            cJSON *parsed = grc == 0 && result ? cJSON_Parse(result) : NULL;
            if (parsed) {
                count_result(s, parsed);
                report_error_task(s, parsed, e.line);
                wrc = results_put(e.task_id, result);
                ci_report_task(eval_ci, e.task_id, result, parsed, 1);
            } else {
                char reason[512];
                const char *msg = grc ? gg_error_last() : "";
                snprintf(reason, sizeof reason, "no result: %s",
                         grc ? (*msg ? msg : gg_strerror(grc)) : "the result is not JSON");
                s->errors++;
                cli_errorf("line %llu: task '%s': %s", e.line, e.task_id, reason);
                ci_report_no_result(eval_ci, e.line, e.task_id, reason);
                if (eval_results &&
                    results_stream_put_bad(eval_results, e.line, e.task_id, reason) != 0)
                    wrc = results_write_failed();
            }
            cJSON_Delete(parsed);
            gg_free(result);
        }
        if (wrc != 0)
            return CLI_EXIT_INFRA;
    }
    if (rc < 0) {
        cli_errorf("cannot read the temporary list of task ids: %s", strerror(errno));
        return CLI_EXIT_INFRA;
    }
    return CLI_EXIT_OK;
}

/*
 * After an interrupt: counts the tasks that ended (the rest are left out) and tells them to
 * the CI report, for the JUnit file and the summary JSON of what ended.
 */
static void collect_ended(gg_orchestrator_t *o, idlog *ids, eval_summary *s)
{
    idlog_entry e;
    if (idlog_rewind(ids) != 0)
        return;
    while (idlog_next(ids, &e) == 1) {
        if (e.bad) {
            s->total++;
            s->errors++;
            s->bad_lines++;
            ci_report_bad(eval_ci, e.line, e.task_id, e.reason);
            continue;
        }
        char *result = NULL;
        cJSON *parsed = fetch_result(o, e.task_id, &result) == 0 && result
                            ? cJSON_Parse(result) : NULL;
        if (parsed) {
            s->total++;
            count_result(s, parsed);
            ci_report_task(eval_ci, e.task_id, result, parsed, 0);
        }
        cJSON_Delete(parsed);
        gg_free(result);
    }
}

static void print_summary(const eval_summary *s, unsigned long attempts_run, double wall)
{
    printf("tasks:                   %lu\n", s->total);
    printf("passed at first attempt: %lu\n", s->passed_first);
    printf("passed after repair:     %lu\n", s->passed_repair);
    printf("failed:                  %lu\n", s->failed);
    printf("errors:                  %lu (bad lines: %lu)\n", s->errors, s->bad_lines);
    printf("cancelled:               %lu\n", s->cancelled);
    printf("attempts:                %lu (this run: %lu)\n", s->attempts, attempts_run);
    printf("wall time:               %.2f s\n", wall);
    printf("tasks/s:                 %.1f\n", wall > 0 ? (double)s->total / wall : 0.0);
}

static void eval_usage(FILE *f)
{
    fprintf(f, "usage: gryphgen eval [--generator SPEC] [--jobs N] [--db PATH] "
               "[--results PATH]\n"
               "                     [--max-attempts N] [--python PATH] [--cc PATH]\n"
               "                     [--isolation LEVEL] [--log-level LEVEL] [--quiet]\n"
               "                     [--log-format text|json] [--zygote on|off] [--max-tokens N]\n"
               "                     [--junit PATH] [--summary-json PATH] [--fail-under PCT]\n"
               "                     [--patches DIR] [--deliver branch] FILE|-\n"
               "       gryphgen eval --connect ENDPOINT [--key FILE --server-key KEY] "
               "[--insecure]\n"
               "                     [--results PATH] [--quiet] FILE|-\n"
               "  --connect ENDPOINT  run the set on a grid (`gryphgen serve`) instead of here;\n"
               "                      the options of where tasks run go to serve and worker\n"
               "                      (EP1,EP2: a primary and its backup; the active one)\n"
               "  --key FILE --server-key KEY  CURVE keys for --connect (see `gryphgen keygen`)\n"
               "  --llm-timeout S --llm-max-tokens N  openai generator: seconds per request,\n"
               "                      completion token limit (GRYPHGEN_LLM_TIMEOUT_S, _MAX_TOKENS)\n"
               "  --llm-arms SPEC --llm-journal PATH --llm-bandit-seed N --llm-cost-per-second C\n"
               "                      openai generator: arms, journal, bandit (each wins over\n"
               "                      GRYPHGEN_LLM_ARMS, _JOURNAL, _BANDIT_SEED, _COST_PER_SECOND)\n"
               "  --max-tokens N      the run's token budget (wins over GRYPHGEN_MAX_TOKENS)\n"
               "  --zygote on|off     Python jobs start in pre-started interpreters (default:\n"
               "                      GRYPHGEN_ZYGOTE, else on)\n"
               "CI/CD (docs/ci.md; with or without --connect):\n"
               "  --junit PATH        JUnit XML, one testcase per task\n"
               "  --summary-json PATH the summary as JSON\n"
               "  --fail-under PERCENT  exit 1 when under PERCENT of the tasks passed\n"
               "  --patches DIR       DIR/<task_id>.patch (git format-patch) per passing\n"
               "                      workspace task\n"
               "  --deliver branch    commit each passing workspace task's patch onto a new\n"
               "                      branch gryphgen/<task_id> of its (local) repository\n"
               "exit status: 0 every task ran (whatever it scored); 1 the run failed, a\n"
               "delivery or patch file failed, or the pass rate is under --fail-under; 2 usage\n"
               "error or bad input; 130 interrupted\n"
               "(see 'gryphgen help' for what each option does)\n");
}

/* The options of where tasks run (every shared option of eval and run but --quiet), which
 * mean nothing to a client of a grid: with --connect they are refused, naming where they
 * belong, rather than silently ignored. One not listed here goes to the workers. */
static const struct {
    int opt;
    const char *where;
} remote_only[] = {
    {CLI_OPT_GENERATOR, "on the workers: gryphgen worker --generator SPEC"},
    {CLI_OPT_PYTHON, "on the workers: gryphgen worker --python PATH"},
    {CLI_OPT_CC, "on the workers: gryphgen worker --cc PATH"},
    {CLI_OPT_ISOLATION,
     "on the workers: gryphgen worker --isolation LEVEL (or per task, its \"isolation\" field)"},
    {CLI_OPT_JOBS, "on the workers: gryphgen worker --slots N"},
    {CLI_OPT_MAX_TOKENS, "on the orchestrator: gryphgen serve --max-tokens N"},
    {CLI_OPT_DB, "on the orchestrator: gryphgen serve --db PATH"},
    {CLI_OPT_MAX_ATTEMPTS,
     "on the orchestrator: gryphgen serve --max-attempts N (or per task, its "
     "\"budget\": {\"max_attempts\": N})"},
    {CLI_OPT_LOG_LEVEL,
     "on the orchestrator and the workers: gryphgen serve|worker --log-level LEVEL"},
};

/* With --connect: refuses opt (its long name), an option of where tasks run. */
static int refuse_remote_only(int opt, const char *name)
{
    const char *where = NULL;
    for (size_t i = 0; i < sizeof remote_only / sizeof remote_only[0]; i++)
        if (remote_only[i].opt == opt)
            where = remote_only[i].where;
    if (where)
        cli_errorf("eval: --%s does not apply with --connect: the grid's orchestrator and "
                   "workers run the tasks; give it %s", name, where);
    else
        cli_errorf("eval: --%s does not apply with --connect: the grid's orchestrator and "
                   "workers run the tasks; give it on the workers: gryphgen worker --%s "
                   "(see gryphgen worker --help)", name, name);
    return CLI_EXIT_USAGE;
}

/* Opens the input: a path, or "-" for stdin. Returns the fd or -1 after printing why. */
static int open_input(const char *path)
{
    struct stat st;
    int fd;
    if (strcmp(path, "-") == 0)
        return STDIN_FILENO;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cli_errorf("eval: cannot open '%s': %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        cli_errorf("eval: '%s' is a directory, not a task set", path);
        close(fd);
        return -1;
    }
    return fd;
}

/* What the command line asked for. */
typedef struct eval_args {
    cli_run_options opts;
    ci_options ci_opts;
    const char *results_path;
    const char *connect;
    const char *input;
    int remote_opt;          /* the first option given of where tasks run ... */
    const char *remote_name; /* ... and its long name */
} eval_args;

static const struct option eval_longopts[] = {
    CLI_PIPELINE_LONG_OPTIONS,
    {"jobs", required_argument, NULL, CLI_OPT_JOBS},
    {"results", required_argument, NULL, CLI_OPT_RESULTS},
    {"quiet", no_argument, NULL, CLI_OPT_QUIET},
    {"connect", required_argument, NULL, OPT_CONNECT},
    CI_LONG_OPTIONS,
    CLI_SECURITY_LONG_OPTIONS,
    {"help", no_argument, NULL, CLI_OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* One option: 1 taken, 0 not eval's, or an exit status + 1000 (help, usage error). The
 * options shared with run go through cli_run_option; the first of where tasks run is noted
 * for the --connect check. */
static int eval_option(eval_args *a, int c, int li)
{
    int handled;
    if (c == CLI_OPT_RESULTS) {
        if (!*optarg) {
            cli_errorf("eval: option --results: empty path");
            return 1000 + CLI_EXIT_USAGE;
        }
        a->results_path = optarg;
        return 1;
    }
    if (c == OPT_CONNECT) {
        a->connect = optarg;
        return 1;
    }
    handled = ci_option(&a->ci_opts, c, optarg);
    if (handled != 0)
        return handled < 0 ? 1000 + CLI_EXIT_USAGE : 1;
    handled = cli_security_option(c, optarg);
    if (handled != 0)
        return handled < 0 ? 1000 + CLI_EXIT_USAGE : 1;
    handled = cli_run_option(&a->opts, c, optarg);
    if (handled < 0)
        return 1000 + CLI_EXIT_USAGE;
    if (handled == 0)
        return 0;
    if (c != CLI_OPT_QUIET && !a->remote_opt) {
        a->remote_opt = c;
        a->remote_name = li >= 0 ? eval_longopts[li].name : "jobs"; /* -j */
    }
    return 1;
}

/* Reads the command line into a; -1 to go on, else the exit status (help, usage error). */
static int parse_eval_args(int argc, char **argv, eval_args *a)
{
    int c, li;
    memset(a, 0, sizeof *a);
    cli_run_options_init(&a->opts);
    optind = 1;
    opterr = 0;
    while ((li = -1, c = getopt_long(argc, argv, ":hqj:", eval_longopts, &li)) != -1) {
        if (c == 'j')
            c = CLI_OPT_JOBS;
        else if (c == 'q')
            c = CLI_OPT_QUIET;
        if (c == 'h' || c == CLI_OPT_HELP) {
            eval_usage(stdout);
            return CLI_EXIT_OK;
        }
        if (c == '?' || c == ':')
            return cli_bad_option("eval", c, argv, optind, optopt);
        int taken = eval_option(a, c, li);
        if (taken >= 1000)
            return taken - 1000;
        if (taken == 0)
            return cli_bad_option("eval", c, argv, optind, optopt);
    }
    if (a->connect && a->remote_opt)
        return refuse_remote_only(a->remote_opt, a->remote_name);
    if (!a->connect && (cli_sec.key_file || cli_sec.server_key || cli_sec.insecure)) {
        /* the keys and --insecure are the grid client's; here nothing would use them */
        cli_errorf("eval: %s applies only with --connect ENDPOINT (a grid); without it the "
                   "set runs in this process", cli_sec.insecure ? "--insecure"
                   : cli_sec.key_file ? "--key" : "--server-key");
        return CLI_EXIT_USAGE;
    }
    if (argc - optind != 1) {
        cli_errorf(argc - optind == 0 ? "eval: which task set? give a FILE, or - for stdin"
                                      : "eval: give one task set, not %d", argc - optind);
        eval_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (ci_options_check(&a->ci_opts) != 0)
        return CLI_EXIT_USAGE;
    a->input = argv[optind];
    return -1;
}

/* The run's outputs, before anything runs: the results file (opened now so a bad path fails
 * before the run; emptied once the orchestrator is open, so a run that cannot start leaves an
 * earlier file as it was; then each task's line is appended as it ends), the id log, the CI
 * reports and the progress display. */
static int open_outputs(const eval_args *a, idlog **ids, progress **prog)
{
    if (a->results_path) {
        int rfd = open(a->results_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
        if (rfd < 0 || results_stream_new(&eval_results, rfd) != 0) {
            cli_errorf("eval: cannot create the results file '%s': %s", a->results_path,
                       rfd < 0 ? strerror(errno) : "out of memory");
            if (rfd >= 0)
                close(rfd);
            return CLI_EXIT_INFRA;
        }
        eval_results_path = a->results_path;
    }
    if (idlog_new(ids) != 0) {
        cli_errorf("cannot create a temporary file for the task ids: %s", strerror(errno));
        return CLI_EXIT_INFRA;
    }
    if (ci_report_new(&eval_ci, &a->ci_opts) != 0)
        return CLI_EXIT_INFRA;
    if (progress_new(prog, a->opts.quiet) != 0) {
        cli_errorf("out of memory");
        return CLI_EXIT_INFRA;
    }
    return CLI_EXIT_OK;
}

/* Interrupted: the tasks that ended meanwhile keep their lines, the JUnit file and summary
 * cover what ended, and the message says how to resume. */
static void finish_interrupted(gg_orchestrator_t *orch, idlog *ids, const eval_args *a,
                               double start)
{
    results_put_ended(orch);
    if (a->ci_opts.junit_path || a->ci_opts.summary_path) {
        eval_summary summary;
        memset(&summary, 0, sizeof summary);
        collect_ended(orch, ids, &summary);
        summary.wall_s = now_s() - start;
        ci_report_finish(eval_ci, &summary, 1);
    }
    if (a->opts.db_path)
        cli_errorf("interrupted; unfinished tasks resume when the set is run again with "
                   "--db %s", a->opts.db_path);
    else
        cli_errorf("interrupted");
}

/* The set is complete: the results file, the summary, the CI reports, the exit status. */
static int finish_complete(gg_orchestrator_t *orch, idlog *ids, progress *prog,
                           const eval_args *a, double wall)
{
    eval_summary summary;
    progress_counts counts;
    memset(&summary, 0, sizeof summary);
    /* The file is written once more in the set's order (and put in place in one rename), so
     * a finished run's file does not depend on timing. */
    if (eval_results && results_stream_rewrite(eval_results, a->results_path) != 0) {
        results_write_failed();
        return CLI_EXIT_INFRA;
    }
    int status = collect_results(orch, ids, &summary);
    if (status != CLI_EXIT_OK)
        return status;
    if (eval_results && (results_stream_commit(eval_results) != 0 ||
                         results_stream_close(&eval_results) != 0)) {
        results_write_failed();
        return CLI_EXIT_INFRA;
    }
    progress_get(prog, &counts);
    /* Remotely the events are not seen here: this run's attempts are the set's. */
    print_summary(&summary, eval_client ? summary.attempts : counts.attempts, wall);
    /* The JUnit file and summary JSON; a delivery or patch that failed, or a pass rate under
     * --fail-under, is exit status 1 (gryphgen help). */
    summary.wall_s = wall;
    if (ci_report_finish(eval_ci, &summary, 0) != 0)
        status = CLI_EXIT_INFRA;
    /* Bad input is a usage error even though the valid tasks ran (gryphgen help). */
    if (summary.bad_lines > 0) {
        cli_errorf("%lu line(s) of %s are not valid tasks (exit status 2)", summary.bad_lines,
                   strcmp(a->input, "-") == 0 ? "stdin" : a->input);
        status = CLI_EXIT_USAGE;
    }
    return status;
}

int cli_cmd_eval(int argc, char **argv)
{
    cli_log_component = "eval";
    eval_args a;
    eval_events events;
    double start = now_s();
    idlog *ids = NULL;
    progress *prog = NULL;
    gg_generator_t *gen = NULL;
    gg_orchestrator_t *orch = NULL;

    int status = parse_eval_args(argc, argv, &a);
    if (status >= 0)
        return status;
    int fd = open_input(a.input);
    if (fd < 0)
        return CLI_EXIT_USAGE;
    status = open_outputs(&a, &ids, &prog);
    if (status == CLI_EXIT_OK) {
        cli_catch_signals();
        events.prog = prog;
        events.results = eval_results;
        if (a.connect)
            status = cli_client_open(a.connect, NULL, &eval_client);
        else
            status = cli_orchestrator_open(&a.opts, eval_on_event, &events, &gen, &orch);
    }
    if (status == CLI_EXIT_OK && eval_results && results_stream_truncate(eval_results) != 0) {
        results_write_failed();
        status = CLI_EXIT_INFRA;
    }
    if (status == CLI_EXIT_OK) {
        status = submit_all(orch, fd, strcmp(a.input, "-") == 0 ? "stdin" : a.input, ids, prog);
        if (status == CLI_EXIT_OK)
            status = eval_client ? wait_all_remote(ids, prog) : wait_all(orch, prog);
        progress_finish(prog);
        if (status == CLI_EXIT_OK && cli_interrupted)
            status = CLI_EXIT_SIGINT;
        if (status == CLI_EXIT_SIGINT)
            finish_interrupted(orch, ids, &a, start);
        else if (status == CLI_EXIT_OK)
            status = finish_complete(orch, ids, prog, &a, now_s() - start);
    }
    /* the orchestrator first: its callback writes into the progress counters */
    gg_orchestrator_destroy(&orch);
    gg_client_destroy(&eval_client);
    gg_generator_destroy(&gen);
    progress_destroy(&prog);
    idlog_destroy(&ids);
    ci_report_destroy(&eval_ci);
    results_stream_close(&eval_results);
    if (fd > STDIN_FILENO)
        close(fd);
    return status;
}
