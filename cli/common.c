/*
 * common.c - helpers the commands share: error messages and the stderr lock, parsing of the
 * options of the commands that run tasks, the log callback, signal handling, and creating
 * the generator and orchestrator from the options.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"

static pthread_mutex_t output_mutex = PTHREAD_MUTEX_INITIALIZER;
static void (*output_clear)(void *user);
static void *output_clear_user;

volatile int cli_interrupted;

void cli_output_lock(void)
{
    pthread_mutex_lock(&output_mutex);
}

void cli_output_unlock(void)
{
    pthread_mutex_unlock(&output_mutex);
}

void cli_output_set_clear(void (*clear)(void *user), void *user)
{
    cli_output_lock();
    output_clear = clear;
    output_clear_user = user;
    cli_output_unlock();
}

/* Called with the lock held. */
static void clear_progress(void)
{
    if (output_clear)
        output_clear(output_clear_user);
}

static void vmessage(const char *level, const char *fmt, va_list ap)
{
    cli_output_lock();
    clear_progress();
    if (cli_log_json) {
        char line[4096];
        vsnprintf(line, sizeof line, fmt, ap);
        cli_log_json_line(level, line);
    } else {
        fputs("gryphgen: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
    }
    fflush(stderr);
    cli_output_unlock();
}

void cli_errorf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage("error", fmt, ap);
    va_end(ap);
}

void cli_noticef(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage("info", fmt, ap);
    va_end(ap);
}

void cli_log_stderr(void *user, int level, const char *message)
{
    (void)user;
    cli_output_lock();
    clear_progress();
    if (cli_log_json)
        cli_log_json_line(gg_log_level_name(level), message);
    else
        fprintf(stderr, "gryphgen: %s: %s\n", gg_log_level_name(level),
                message ? message : "");
    fflush(stderr);
    cli_output_unlock();
}

void cli_run_options_init(cli_run_options *o)
{
    memset(o, 0, sizeof *o);
    o->generator = "replay";
    o->log_level = GG_LOG_WARN;
    o->llm_bandit_seed = -1;
    o->llm_cost_per_second = -1;
}

void cli_generator_options_fill(const cli_run_options *o, gg_generator_options *g)
{
    g->spec = o->generator;
    g->arms = o->llm_arms;
    g->journal = o->llm_journal;
    g->bandit_seed = o->llm_bandit_seed;
    g->cost_per_second = o->llm_cost_per_second;
}

/* A number from lo to hi (whole when whole) for option name; -1 after printing why. */
static int parse_number(const char *name, const char *arg, double lo, double hi, int whole,
                        double *out)
{
    char *end = NULL;
    errno = 0;
    double d = strtod(arg, &end);
    if (!*arg || errno || *end || !(d >= lo && d <= hi) || (whole && d != (double)(long long)d)) {
        cli_errorf("option --%s: '%s' is not a %s from %g to %g", name, arg,
                   whole ? "whole number" : "number", lo, hi);
        return -1;
    }
    *out = d;
    return 0;
}

/* The options of settings that were the environment's only (docs/configuration.md). */
static int settings_option(cli_run_options *o, int c, const char *arg)
{
    double d = 0;
    switch (c) {
    case CLI_OPT_MAX_TOKENS:
        if (parse_number("max-tokens", arg, 1, 1e12, 1, &d))
            return -1;
        o->max_tokens = (long long)d;
        return 1;
    case CLI_OPT_ZYGOTE:
        if (strcmp(arg, "on") && strcmp(arg, "off")) {
            cli_errorf("option --zygote: '%s' is not on or off", arg);
            return -1;
        }
        o->zygote = strcmp(arg, "on") ? -1 : 1;
        return 1;
    case CLI_OPT_LLM_ARMS:
    case CLI_OPT_LLM_JOURNAL:
        if (!*arg) {
            cli_errorf("option --%s: empty value", c == CLI_OPT_LLM_ARMS ? "llm-arms"
                                                                         : "llm-journal");
            return -1;
        }
        *(c == CLI_OPT_LLM_ARMS ? &o->llm_arms : &o->llm_journal) = arg;
        return 1;
    case CLI_OPT_LLM_BANDIT_SEED:
        if (parse_number("llm-bandit-seed", arg, 0, 9007199254740991.0, 1, &d))
            return -1;
        o->llm_bandit_seed = (long long)d;
        return 1;
    case CLI_OPT_LLM_COST_PER_SECOND:
        if (parse_number("llm-cost-per-second", arg, 0, 1e9, 0, &d))
            return -1;
        o->llm_cost_per_second = d;
        return 1;
    default:
        return 0;
    }
}

int cli_parse_uint(const char *name, const char *text, unsigned lo, unsigned hi,
                   unsigned *out)
{
    char *end = NULL;
    unsigned long v;
    if (!text || !*text || *text < '0' || *text > '9')
        goto bad;
    errno = 0;
    v = strtoul(text, &end, 10);
    if (errno || *end || v < lo || v > hi)
        goto bad;
    *out = (unsigned)v;
    return 0;
bad:
    /* name is given with its dashes ("-k", "--slots") or without ("jobs") */
    cli_errorf("option %s%s: '%s' is not a number from %u to %u", name[0] == '-' ? "" : "--",
               name, text ? text : "", lo, hi);
    return -1;
}

/* A program given by path must exist and be executable; a bare name is searched later. */
static int check_program(const char *option, const char *arg)
{
    if (!*arg) {
        cli_errorf("option --%s: empty value", option);
        return -1;
    }
    if (strchr(arg, '/') && access(arg, X_OK) != 0) {
        cli_errorf("option --%s: '%s' is not an executable program: %s", option, arg,
                   strerror(errno));
        return -1;
    }
    return 0;
}

int cli_run_option(cli_run_options *o, int c, const char *arg)
{
    switch (c) {
    case CLI_OPT_GENERATOR:
        if (!*arg) {
            cli_errorf("option --generator: empty value");
            return -1;
        }
        o->generator = arg;
        return 1;
    case CLI_OPT_DB:
        if (!*arg) {
            cli_errorf("option --db: empty path");
            return -1;
        }
        o->db_path = arg;
        return 1;
    case CLI_OPT_JOBS:
        return cli_parse_uint("jobs", arg, 1, 1024, &o->jobs) ? -1 : 1;
    case CLI_OPT_MAX_ATTEMPTS:
        return cli_parse_uint("max-attempts", arg, 1, 100, &o->max_attempts) ? -1 : 1;
    case CLI_OPT_PYTHON:
        if (check_program("python", arg) != 0)
            return -1;
        o->python = arg;
        return 1;
    case CLI_OPT_CC:
        if (check_program("cc", arg) != 0)
            return -1;
        o->cc = arg;
        return 1;
    case CLI_OPT_LOG_LEVEL: {
        int level = gg_log_level_parse(arg);
        if (level < 0) {
            cli_errorf("option --log-level: '%s' is not one of error, warn, info, debug", arg);
            return -1;
        }
        o->log_level = level;
        return 1;
    }
    case CLI_OPT_QUIET:
        o->quiet = 1;
        return 1;
    case CLI_OPT_LOG_FORMAT:
        return cli_log_format_parse(arg) ? -1 : 1;
    case CLI_OPT_LLM_TIMEOUT:
    case CLI_OPT_LLM_MAX_TOKENS: {
        /* Checked here so a typo is a usage error; the generator reads the variable. */
        int timeout = c == CLI_OPT_LLM_TIMEOUT;
        const char *name = timeout ? "llm-timeout" : "llm-max-tokens";
        char *end = NULL;
        errno = 0;
        double d = strtod(arg, &end);
        if (!*arg || errno || *end || !(timeout ? d > 0 && d <= 86400
                                                 : d >= 1 && d <= 1e9 && d == (long)d)) {
            cli_errorf("option --%s: '%s' is not %s", name, arg,
                       timeout ? "a number of seconds from 0.001 to 86400"
                               : "a whole number of tokens from 1 to 1000000000");
            return -1;
        }
        if (setenv(timeout ? "GRYPHGEN_LLM_TIMEOUT_S" : "GRYPHGEN_LLM_MAX_TOKENS", arg, 1)) {
            cli_errorf("option --%s: %s", name, strerror(errno));
            return -1;
        }
        return 1;
    }
    case CLI_OPT_ISOLATION:
        if (strcmp(arg, "none") && strcmp(arg, "rlimits") && strcmp(arg, "namespaces")) {
            cli_errorf("option --isolation: '%s' is not one of none, rlimits, namespaces", arg);
            return -1;
        }
        o->isolation = arg;
        return 1;
    default:
        return settings_option(o, c, arg);
    }
}

int cli_bad_option(const char *command, int c, char **argv, int optind_now,
                   int optopt_now)
{
    const char *arg = optind_now > 0 ? argv[optind_now - 1] : "";
    if (c == ':')
        cli_errorf("%s: option '%s' needs a value", command, arg);
    else if (optopt_now > 0 && optopt_now < 0x100)
        cli_errorf("%s: unknown option '-%c' (try 'gryphgen help')", command, optopt_now);
    else
        cli_errorf("%s: unknown option '%s' (try 'gryphgen help')", command, arg);
    return CLI_EXIT_USAGE;
}

static void on_signal(int sig)
{
    (void)sig;
    cli_interrupted = 1;
}

void cli_catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* The command makes the executor itself (the orchestrator borrows it); it is destroyed at
 * exit, after the orchestrator (and after the warm-up below has ended). The warm-up of the
 * Python jobs' interpreter starts with the first Python task the command reads
 * (cli_warm_python_for), never for a set without one. */
static gg_executor_t *cli_executor;
static pthread_t warm_thread;
static int warm_started;
static int warm_armed;     /* the default executor is made: the first Python task warms it */
static char *warm_python;  /* --python, for the warm-up (NULL: the library's choice) */
static int warm_log_level; /* --log-level: the warm-up says what it did at debug */

static void destroy_executor(void)
{
    if (warm_started)
        pthread_join(warm_thread, NULL);
    warm_started = 0;
    warm_armed = 0;
    free(warm_python);
    warm_python = NULL;
    gg_executor_destroy(&cli_executor);
}

/* The interpreter Python jobs will use (as the library picks it): --python, else
 * $GRYPHGEN_PYTHON, else python3's sys.executable; NULL when none is found. malloc'd. */
static char *job_python(const char *python)
{
    const char *env = getenv("GRYPHGEN_PYTHON");
    if (python || (env && *env))
        return strdup(python ? python : env);
    FILE *p = popen("python3 -c 'import sys; print(sys.executable)' 2>/dev/null", "r");
    if (!p)
        return NULL;
    char buf[4096] = "";
    char *got = fgets(buf, sizeof buf, p);
    pclose(p);
    buf[strcspn(buf, "\n")] = '\0';
    return got && buf[0] == '/' ? strdup(buf) : NULL;
}

/* A `python -c pass` job in the environment of Python test jobs (lib/core/lang.c) for py:
 * at the namespaces level it starts the very zygote those jobs are forked from. *zygote
 * (may be NULL) tells whether the job ran in one. */
static int run_python_pass(const char *py, int *zygote)
{
    cJSON *req = cJSON_CreateObject(), *argv = cJSON_AddArrayToObject(req, "argv");
    cJSON_AddItemToArray(argv, cJSON_CreateString(py));
    cJSON_AddItemToArray(argv, cJSON_CreateString("-c"));
    cJSON_AddItemToArray(argv, cJSON_CreateString("pass"));
    cJSON *env = cJSON_AddObjectToObject(req, "env");
    cJSON_AddStringToObject(env, "PYTHONHASHSEED", "0");
    cJSON_AddStringToObject(env, "PYTHONDONTWRITEBYTECODE", "1");
    char *text = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    char *out = NULL;
    int rc = text ? gg_executor_run(cli_executor, text, &out) : GG_ENOMEM;
    free(text);
    if (zygote) {
        cJSON *r = rc == 0 && out ? cJSON_Parse(out) : NULL;
        *zygote = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "zygote"));
        cJSON_Delete(r);
    }
    gg_free(out);
    return rc;
}

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void *warm_main(void *arg)
{
    (void)arg;
    double t0 = mono_ms();
    char *py = job_python(warm_python);
    int zygote = 0, rc = py ? run_python_pass(py, &zygote) : GG_ENOTFOUND;
    if (warm_log_level >= GG_LOG_DEBUG) {
        char msg[PATH_MAX + 160];
        snprintf(msg, sizeof msg, "python warm-up: %s %s in %.0f ms (zygote: %s)",
                 py ? py : "no interpreter", rc == 0 ? "ready" : "failed", mono_ms() - t0,
                 zygote ? "yes" : "no");
        cli_log_stderr(NULL, GG_LOG_DEBUG, msg);
    }
    free(py);
    return NULL;
}

/* Makes cli_executor with the default level; its Python jobs' interpreter (the zygote they
 * are forked from) is warmed once the first Python task is read (cli_warm_python_for).
 * Returns an exit code. */
static int open_default_executor(const char *python, int log_level)
{
    if (gg_executor_new(&cli_executor, NULL) != 0) {
        cli_errorf("cannot make the executor: %s", gg_error_last());
        return CLI_EXIT_INFRA;
    }
    atexit(destroy_executor);
    warm_python = python ? strdup(python) : NULL;
    warm_armed = !python || warm_python; /* out of memory: no warm-up, no harm */
    warm_log_level = log_level;
    return CLI_EXIT_OK;
}

void cli_warm_python_for(const char *task, size_t len)
{
    if (!warm_armed || warm_started || !task)
        return;
    /* Most lines of a set without Python are passed over without parsing. */
    int maybe = 0;
    for (size_t i = 0; i + 6 <= len && !maybe; i++)
        maybe = memcmp(task + i, "python", 6) == 0;
    if (!maybe)
        return;
    cJSON *t = cJSON_ParseWithLength(task, len);
    const char *lang = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "language"));
    int python = lang && strcmp(lang, "python") == 0;
    cJSON_Delete(t);
    if (!python)
        return;
    /* In the background: the warm-up overlaps reading the rest and the first jobs (a
     * failure there is the first job's to report). */
    warm_armed = 0;
    warm_started = pthread_create(&warm_thread, NULL, warm_main, NULL) == 0;
}

/* Makes cli_executor for --isolation LEVEL (the level jobs run at and their minimum; NULL:
 * the default) and --zygote, and checks once that this host can give it, to the
 * interpreter jobs will use. Returns an exit code. */
static int open_executor(const char *level, int zygote, const char *python)
{
    gg_executor_options eo = GG_EXECUTOR_OPTIONS_INIT;
    eo.isolation = level;
    eo.min_isolation = level;
    eo.zygote = zygote;
    int rc = gg_executor_new(&cli_executor, &eo);
    char *out = NULL;
    if (rc == 0)
        rc = gg_executor_run(cli_executor, "{\"argv\": [\"true\"]}", &out);
    gg_free(out);
    out = NULL;
    char *py = rc == 0 ? job_python(python) : NULL;
    if (py) {
        rc = run_python_pass(py, NULL);
        free(py);
    }
    if (rc != 0) {
        if (level)
            cli_errorf("--isolation %s: %s", level, gg_error_last());
        else
            cli_errorf("executor: %s", gg_error_last());
        gg_executor_destroy(&cli_executor);
        return CLI_EXIT_INFRA;
    }
    atexit(destroy_executor);
    return CLI_EXIT_OK;
}

int cli_orchestrator_open(const cli_run_options *o, gg_event_fn event_fn, void *event_user,
                          gg_generator_t **out_gen, gg_orchestrator_t **out_orch)
{
    gg_generator_options gopts = GG_GENERATOR_OPTIONS_INIT;
    gg_orchestrator_options oopts = GG_ORCHESTRATOR_OPTIONS_INIT;
    gg_generator_t *gen = NULL;
    gg_orchestrator_t *orch = NULL;
    int rc;

    *out_gen = NULL;
    *out_orch = NULL;
    cli_generator_options_fill(o, &gopts);
    rc = gg_generator_new(&gen, &gopts);
    if (rc != 0) {
        const char *msg = gg_error_last();
        cli_errorf("generator '%s': %s", o->generator, *msg ? msg : gg_strerror(rc));
        return rc == GG_EINVAL || rc == GG_ENOTFOUND ? CLI_EXIT_USAGE : CLI_EXIT_INFRA;
    }

    if (!cli_executor &&
        (rc = o->isolation || o->zygote ? open_executor(o->isolation, o->zygote, o->python)
                                        : open_default_executor(o->python, o->log_level)) !=
                                          CLI_EXIT_OK) {
        gg_generator_destroy(&gen);
        return rc;
    }
    oopts.executor = cli_executor;
    oopts.db_path = o->db_path;
    oopts.workers = o->jobs;
    oopts.max_attempts = o->max_attempts;
    oopts.max_tokens = o->max_tokens;
    oopts.generator = gen;
    oopts.python = o->python;
    oopts.cc = o->cc;
    oopts.log_fn = cli_log_stderr;
    oopts.log_level = o->log_level;
    oopts.event_fn = event_fn;
    oopts.event_user = event_user;
    rc = gg_orchestrator_new(&orch, &oopts);
    if (rc != 0) {
        const char *msg = gg_error_last();
        if (o->db_path && strstr(msg, o->db_path))
            cli_errorf("%s", msg); /* the library's message names the database already */
        else if (o->db_path)
            cli_errorf("cannot open database '%s': %s", o->db_path,
                       *msg ? msg : gg_strerror(rc));
        else
            cli_errorf("cannot start the orchestrator: %s", *msg ? msg : gg_strerror(rc));
        gg_generator_destroy(&gen);
        return CLI_EXIT_INFRA;
    }
    *out_gen = gen;
    *out_orch = orch;
    return CLI_EXIT_OK;
}

int cli_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}
