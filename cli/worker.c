/*
 * worker.c - `gryphgen worker`: a grid worker. Connects to `gryphgen serve`, announces its
 * capacity and labels, runs the attempts it is given and reconnects by itself when the
 * orchestrator restarts; with --index-url its attempts get context from serve's search
 * route. Runs until SIGINT or SIGTERM, or with --idle-s until it has held no job for that
 * long (a worker started by `gryphgen scale` ends its Slurm job or pod that way).
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cli.h"

enum { OPT_CONNECT = 0x200, OPT_SLOTS, OPT_QUEUE, OPT_LABEL, OPT_NAME, OPT_EXECUTOR,
       OPT_JOURNAL, OPT_INDEX_URL, OPT_INDEX_TOKEN_ENV, OPT_IDLE_S };

#define MAX_LABELS 64
/* The longest --index-url taken (the search template built from it is a little longer). */
#define MAX_INDEX_URL 2048
/* What --index-url gets when it names no query: serve --http's search route and parameters. */
#define SEARCH_PATH "/v1/search"
#define SEARCH_PARAMS "q={query}&k={k}&language={language}"

static void worker_usage(FILE *f)
{
    fprintf(f, "usage: gryphgen worker --connect ENDPOINT [--slots N] [--queue N]\n"
               "                       [--label KEY=VALUE...] [--name NAME] [--journal PATH]\n"
               "                       [--executor process|container|noop] [--generator SPEC]\n"
               "                       [--python PATH] [--cc PATH] [--isolation LEVEL]\n"
               "                       [--zygote on|off] [--llm-... (see below)]\n"
               "                       [--log-level LEVEL] [--log-format text|json]\n"
               "                       [--idle-s S]\n"
               "                       [--index-url URL [--index-token-env VAR]]\n"
               "                       [--key FILE --server-key Z85|FILE] [--insecure]\n"
               "  --connect ENDPOINT the orchestrator, or EP1,EP2,... (at most 16): a primary\n"
               "                     and its backup; the worker follows the active one\n"
               "  --key FILE         this worker's CURVE key pair (PREFIX.key, `gryphgen keygen`)\n"
               "  --server-key KEY   the orchestrator's public key (Z85 text or its .pub file)\n"
               "  --insecure         no encryption (loopback endpoints only)\n"
               "  --idle-s S         exit (status 0) once this worker has held no job for S\n"
               "                     seconds since it joined (or since it started, while it\n"
               "                     reaches no orchestrator) (1-604800; default: run until\n"
               "                     a signal); --log-level info logs each (re)start of\n"
               "                     that clock: idle since T (monotonic clock, s)\n"
               "  --executor NAME    process: a sandboxed child process (default); container:\n"
               "                     a container of the Docker or Podman engine whose socket\n"
               "                     is $DOCKER_HOST, /var/run/docker.sock or\n"
               "                     /run/podman/podman.sock; noop: passes every job, runs\n"
               "                     nothing (benchmarks)\n"
               "  --isolation LEVEL  none, rlimits or namespaces: this worker's jobs run at\n"
               "                     LEVEL and never weaker (process executor; default: the\n"
               "                     strongest this host gives)\n"
               "  --generator SPEC   replay (default), reference, command:PROG or openai\n"
               "                     (see 'gryphgen help'): the worker generates the code\n"
               "  --journal PATH     openai generator: keep the journal of model answers and\n"
               "                     the strategy bandit in this SQLite file\n"
               "                     (default: $GRYPHGEN_LLM_JOURNAL, else none)\n"
               "  --llm-timeout S --llm-max-tokens N  openai generator: seconds per request,\n"
               "                     completion token limit (GRYPHGEN_LLM_TIMEOUT_S, _MAX_TOKENS)\n"
               "  --llm-arms SPEC --llm-journal PATH --llm-bandit-seed N\n"
               "  --llm-cost-per-second C  openai generator: explicit arms, journal file (as\n"
               "                     --journal), bandit seed, cost of a second (each wins over\n"
               "                     GRYPHGEN_LLM_ARMS, _JOURNAL, _BANDIT_SEED, _COST_PER_SECOND)\n"
               "  --zygote on|off    Python jobs start in pre-started interpreters (process\n"
               "                     executor; default: $GRYPHGEN_ZYGOTE, else on)\n"
               "  --index-url URL    attempts get context from this search route: the URL\n"
               "                     `gryphgen serve --index PATH --http ADDR:PORT` prints\n"
               "                     (http://ADDR:PORT/v1/search; a URL without a path gets\n"
               "                     that route), or a template with {query}, {k} and\n"
               "                     {language}. Search only: serve's learner credits the\n"
               "                     outcomes into its index\n"
               "  --index-token-env VAR  the bearer token serve --http-token-env asks for, from\n"
               "                     $VAR (plain http sends it in clear text: use https://\n"
               "                     off loopback)\n");
}

/* The http retriever's URL template for --index-url: a URL with {query} is one already,
 * otherwise serve --http's route (when the URL has no path) and its parameters are added.
 * Returns 0, or prints why the URL is refused and returns -1. */
static int index_template(const char *url, char *out, size_t cap)
{
    size_t n = strlen(url);
    const char *host = strstr(url, "://");
    if (n == 0 || n > MAX_INDEX_URL ||
        (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) ||
        !host || !host[3] || host[3] == '/' || host[3] == '?' || strpbrk(url, " \t\r\n#")) {
        cli_errorf("worker: option --index-url: '%.*s' is not an http:// or https:// URL of "
                   "a search route (e.g. http://127.0.0.1:8080/v1/search, as `gryphgen serve "
                   "--http` prints it)", n > 200 ? 200 : (int)n, url);
        return -1;
    }
    if (strstr(url, "{query}")) {
        snprintf(out, cap, "%s", url);
        return 0;
    }
    while (n > 0 && url[n - 1] == '/')
        n--; /* http://host:port/ is http://host:port */
    const char *path = strpbrk(host + 3, "/?");
    int bare = !path || path >= url + n; /* no path: serve's route */
    const char *sep = memchr(url, '?', n) ? (url[n - 1] == '?' || url[n - 1] == '&' ? "" : "&")
                                          : "?";
    snprintf(out, cap, "%.*s%s%s%s", (int)n, url, bare ? SEARCH_PATH : "", sep, SEARCH_PARAMS);
    return 0;
}

/* What the watching thread needs: the worker, --idle-s (0: none) and the log level (the
 * idle clock's changes are logged at info). */
typedef struct watch_ctx {
    gg_worker_t *w;
    unsigned idle_s;
    int log_level;
    int idled; /* set when the worker stopped for being idle */
} watch_ctx;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The longest endpoint kept for the idle mark: the library takes endpoints of up to 1000
 * bytes (a longer one would only be compared by its first bytes). */
#define IDLE_ENDPOINT_MAX 1024

/* What the worker shows while it holds nothing: its counters of jobs taken and results
 * sent, and which orchestrator welcomed it ("" before any did). The idle clock restarts
 * whenever this changes. */
typedef struct idle_mark {
    double jobs, results;
    char endpoint[IDLE_ENDPOINT_MAX];
} idle_mark;

/* Reads the mark of an idle worker into *m and returns 0; returns -1 when it is busy (or
 * its stats are unreadable). A join moves the mark, so a worker that took long to reach its
 * orchestrator gets the whole --idle-s after joining to be given a job, while one that
 * never reaches any still idles out. */
static int read_idle_mark(gg_worker_t *w, idle_mark *m)
{
    char *js = NULL;
    int rc = -1;
    if (gg_worker_stats(w, &js) == 0) {
        cJSON *st = cJSON_Parse(js);
        const cJSON *held = cJSON_GetObjectItemCaseSensitive(st, "held");
        const cJSON *jobs = cJSON_GetObjectItemCaseSensitive(st, "jobs");
        const cJSON *results = cJSON_GetObjectItemCaseSensitive(st, "results");
        const cJSON *ep = cJSON_GetObjectItemCaseSensitive(st, "endpoint");
        if (cJSON_IsNumber(held) && held->valuedouble == 0 && cJSON_IsNumber(jobs) &&
            cJSON_IsNumber(results))
        {
            m->jobs = jobs->valuedouble;
            m->results = results->valuedouble;
            snprintf(m->endpoint, sizeof m->endpoint, "%s",
                     cJSON_IsString(ep) ? ep->valuestring : "");
            rc = 0;
        }
        cJSON_Delete(st);
    }
    gg_free(js);
    return rc;
}

static int same_mark(const idle_mark *a, const idle_mark *b)
{
    return a->jobs == b->jobs && a->results == b->results &&
           strcmp(a->endpoint, b->endpoint) == 0;
}

/* Logs a change of the idle clock, so that an operator (and a test) sees the state a
 * decision to exit rests on: "idle since T" with T on the monotonic clock (the one
 * CLOCK_MONOTONIC and Python's time.monotonic() read) and why it (re)started, or "busy"
 * when it stopped. was is the mark of the last idle look (NULL: the worker starts). */
static void log_idle_clock(const watch_ctx *x, int idle, double since, const idle_mark *m,
                           const idle_mark *was)
{
    if (x->log_level < GG_LOG_INFO)
        return;
    char msg[IDLE_ENDPOINT_MAX + 160];
    if (!idle) {
        snprintf(msg, sizeof msg, "worker: busy: the idle clock is stopped while it holds a job");
    } else {
        /* why: it started or a job ended, and it joined or left an orchestrator */
        const char *job = !was ? "started"
                          : m->jobs != was->jobs || m->results != was->results ? "a job ended"
                                                                                : NULL;
        const char *link = NULL, *ep = "";
        if (was && m->endpoint[0] && strcmp(m->endpoint, was->endpoint) != 0) {
            link = "joined ";
            ep = m->endpoint;
        } else if (was && !m->endpoint[0] && was->endpoint[0]) {
            link = "left ";
            ep = was->endpoint;
        }
        if (!job && !link)
            job = "idle again";
        char why[IDLE_ENDPOINT_MAX + 32];
        snprintf(why, sizeof why, "%s%s%s%s", job ? job : "", job && link ? ", " : "",
                 link ? link : "", ep);
        snprintf(msg, sizeof msg, "worker: idle since %.3f (monotonic clock, s): %s; exits "
                 "after %u s without a job", since, why, x->idle_s);
    }
    cli_log_stderr(NULL, GG_LOG_INFO, msg);
}

/* Stops the worker when a signal arrived (the handler only sets cli_interrupted), or with
 * --idle-s once it has held no job, and neither taken a job, sent a result nor joined an
 * orchestrator, for that long. */
static void *watch_signals(void *arg)
{
    watch_ctx *x = arg;
    /* a worker starts idle, with nothing taken or sent and no orchestrator */
    idle_mark last = {0, 0, ""}, mark;
    int was_idle = 1;
    double idle_since = now_s();
    if (x->idle_s)
        log_idle_clock(x, 1, idle_since, &last, NULL);
    while (!cli_interrupted) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
        if (!x->idle_s)
            continue;
        double t = now_s();
        int idle = read_idle_mark(x->w, &mark) == 0;
        if (!idle || !was_idle || !same_mark(&mark, &last))
            idle_since = t; /* busy, or something moved since the last look */
        if (idle ? !was_idle || !same_mark(&mark, &last) : was_idle)
            log_idle_clock(x, idle, idle_since, &mark, &last);
        if (idle)
            last = mark;
        was_idle = idle;
        if (t - idle_since >= x->idle_s) {
            x->idled = 1;
            break;
        }
    }
    gg_worker_stop(x->w);
    return NULL;
}

/* What the command line asked for. */
typedef struct worker_args {
    cli_run_options opts;
    const char *connect, *name, *executor;
    const char *index_url, *index_token_env;
    const char *labels[MAX_LABELS + 1];
    unsigned n_labels, slots, queue, idle_s;
} worker_args;

/* One of worker's own options: 1 taken, 0 not one of them, or an exit status + 1000. */
static int worker_option(worker_args *a, int c)
{
    switch (c) {
    case OPT_CONNECT:
        a->connect = optarg;
        return 1;
    case OPT_NAME:
        a->name = optarg;
        return 1;
    case OPT_EXECUTOR:
        a->executor = optarg;
        return 1;
    case OPT_INDEX_URL:
        a->index_url = optarg;
        return 1;
    case OPT_INDEX_TOKEN_ENV:
        if (!*optarg) {
            cli_errorf("worker: option --index-token-env: give the name of a variable");
            return 1000 + CLI_EXIT_USAGE;
        }
        a->index_token_env = optarg;
        return 1;
    case OPT_JOURNAL:
        /* the openai generator's option journal, as --llm-journal */
        if (!*optarg) {
            cli_errorf("worker: option --journal: give a file path");
            return 1000 + CLI_EXIT_USAGE;
        }
        a->opts.llm_journal = optarg;
        return 1;
    case OPT_SLOTS:
        return cli_parse_uint("--slots", optarg, 1, 1024, &a->slots) != 0
                   ? 1000 + CLI_EXIT_USAGE : 1;
    case OPT_IDLE_S:
        return cli_parse_uint("--idle-s", optarg, 1, 604800, &a->idle_s) != 0
                   ? 1000 + CLI_EXIT_USAGE : 1;
    case OPT_QUEUE:
        return cli_parse_uint("--queue", optarg, 0, 100000, &a->queue) != 0
                   ? 1000 + CLI_EXIT_USAGE : 1;
    case OPT_LABEL:
        if (a->n_labels >= MAX_LABELS || !strchr(optarg, '=') || optarg[0] == '=') {
            cli_errorf("worker: option --label: '%s' must be KEY=VALUE (at most %d labels)",
                       optarg, MAX_LABELS);
            return 1000 + CLI_EXIT_USAGE;
        }
        a->labels[a->n_labels++] = optarg;
        return 1;
    default:
        return 0;
    }
}

/* The combinations of options that cannot work, refused before anything starts. */
static int check_worker_args(int argc, char **argv, const worker_args *a)
{
    if (optind != argc) {
        cli_errorf("worker: unexpected argument '%s'", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    if (!a->connect || !*a->connect) {
        cli_errorf("worker: give --connect ENDPOINT (e.g. tcp://127.0.0.1:5555)");
        worker_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (cli_sec.key_file && !cli_sec.server_key) {
        cli_errorf("worker: --key needs --server-key (the orchestrator's public key)");
        return CLI_EXIT_USAGE;
    }
    if (cli_security_check("worker", a->connect) != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
    if (a->index_token_env && !a->index_url) {
        cli_errorf("worker: --index-token-env goes with --index-url URL");
        return CLI_EXIT_USAGE;
    }
    return -1;
}

/* Reads the command line into a; -1 to go on, else the exit status (help, usage error). */
static int parse_worker_args(int argc, char **argv, worker_args *a)
{
    static const struct option longopts[] = {
        {"connect", required_argument, NULL, OPT_CONNECT},
        {"slots", required_argument, NULL, OPT_SLOTS},
        {"queue", required_argument, NULL, OPT_QUEUE},
        {"label", required_argument, NULL, OPT_LABEL},
        {"name", required_argument, NULL, OPT_NAME},
        {"executor", required_argument, NULL, OPT_EXECUTOR},
        {"journal", required_argument, NULL, OPT_JOURNAL},
        {"index-url", required_argument, NULL, OPT_INDEX_URL},
        {"index-token-env", required_argument, NULL, OPT_INDEX_TOKEN_ENV},
        {"idle-s", required_argument, NULL, OPT_IDLE_S},
        {"generator", required_argument, NULL, CLI_OPT_GENERATOR},
        CLI_LLM_LONG_OPTIONS,
        {"python", required_argument, NULL, CLI_OPT_PYTHON},
        {"cc", required_argument, NULL, CLI_OPT_CC},
        {"isolation", required_argument, NULL, CLI_OPT_ISOLATION},
        CLI_ZYGOTE_LONG_OPTION,
        {"log-level", required_argument, NULL, CLI_OPT_LOG_LEVEL},
        CLI_LOG_FORMAT_LONG_OPTION,
        CLI_SECURITY_LONG_OPTIONS,
        {"help", no_argument, NULL, CLI_OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    int c;
    memset(a, 0, sizeof *a);
    a->executor = "process";
    cli_run_options_init(&a->opts);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (c == 'h' || c == CLI_OPT_HELP) {
            worker_usage(stdout);
            return CLI_EXIT_OK;
        }
        if (c == '?' || c == ':')
            return cli_bad_option("worker", c, argv, optind, optopt);
        int handled = worker_option(a, c);
        if (handled >= 1000)
            return handled - 1000;
        if (handled)
            continue;
        handled = cli_security_option(c, optarg);
        if (handled > 0)
            continue;
        if (handled == 0)
            handled = cli_run_option(&a->opts, c, optarg);
        if (handled < 0)
            return CLI_EXIT_USAGE;
        if (handled == 0)
            return cli_bad_option("worker", c, argv, optind, optopt);
    }
    a->labels[a->n_labels] = NULL;
    return check_worker_args(argc, argv, a);
}

/* --index-url: the http retriever, search only. No feedback_url: the attempt records reach
 * the orchestrator, whose learner credits each one into the index once; feedback from here as
 * well would count every attempt twice. */
static int open_index(const worker_args *a, gg_retriever_t **ret)
{
    if (!a->index_url)
        return CLI_EXIT_OK;
    char tpl[MAX_INDEX_URL + sizeof SEARCH_PATH + sizeof SEARCH_PARAMS + 2];
    if (index_template(a->index_url, tpl, sizeof tpl) != 0)
        return CLI_EXIT_USAGE;
    gg_retriever_options ro = GG_RETRIEVER_OPTIONS_INIT;
    ro.backend = "http";
    ro.url = tpl;
    ro.token_env = a->index_token_env;
    ro.feedback_url = NULL;
    if (gg_retriever_new(ret, &ro) != 0) {
        cli_errorf("worker: option --index-url: %s", gg_error_last());
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

/* The generator and the executor; with --isolation the process executor runs one job first,
 * once, before joining: a host that cannot give the level refuses to start rather than
 * failing every job it would take. */
static int open_backends(const worker_args *a, gg_generator_t **gen, gg_executor_t **ex)
{
    gg_generator_options gopts = GG_GENERATOR_OPTIONS_INIT;
    gg_executor_options eopts = GG_EXECUTOR_OPTIONS_INIT;
    cli_generator_options_fill(&a->opts, &gopts);
    eopts.backend = a->executor;
    eopts.isolation = a->opts.isolation;
    eopts.min_isolation = a->opts.isolation;
    eopts.zygote = a->opts.zygote;
    if (gg_generator_new(gen, &gopts) != 0) {
        cli_errorf("generator '%s': %s", a->opts.generator, gg_error_last());
        return CLI_EXIT_USAGE;
    }
    if (gg_executor_new(ex, &eopts) != 0) {
        cli_errorf("executor '%s': %s", a->executor, gg_error_last());
        return CLI_EXIT_USAGE;
    }
    if (a->opts.isolation && strcmp(a->executor, "process") == 0) {
        char *out = NULL;
        int rc = gg_executor_run(*ex, "{\"argv\": [\"true\"]}", &out);
        gg_free(out);
        if (rc != 0) {
            cli_errorf("worker: --isolation %s: %s", a->opts.isolation, gg_error_last());
            return CLI_EXIT_INFRA;
        }
    }
    return CLI_EXIT_OK;
}

/* Joins the grid and serves until stopped: by a signal, by --idle-s, or by the link. */
static int run_worker(const worker_args *a, gg_generator_t *gen, gg_executor_t *ex,
                      gg_retriever_t *ret)
{
    gg_worker_t *w = NULL;
    int status = CLI_EXIT_OK;
    gg_worker_options wo = GG_WORKER_OPTIONS_INIT;
    wo.connect = a->connect;
    wo.name = a->name;
    wo.slots = a->slots;
    wo.queue = a->queue;
    wo.labels = a->labels;
    wo.executor = ex;
    wo.generator = gen;
    wo.retriever = ret;
    wo.python = a->opts.python;
    wo.cc = a->opts.cc;
    wo.log_fn = cli_log_stderr;
    wo.log_level = a->opts.log_level;
    wo.curve_key_file = cli_sec.key_file;
    wo.curve_server_key = cli_sec.server_key;
    wo.insecure = cli_sec.insecure;
    if (gg_worker_new(&w, &wo) != 0) {
        cli_errorf("worker: %s", gg_error_last());
        return CLI_EXIT_USAGE;
    }
    cli_catch_signals();
    pthread_t th;
    watch_ctx wx = {w, a->idle_s, a->opts.log_level, 0};
    int watching = pthread_create(&th, NULL, watch_signals, &wx) == 0;
    if (gg_worker_run(w) != 0) {
        cli_errorf("worker: %s", gg_error_last());
        status = CLI_EXIT_INFRA;
    }
    if (watching) {
        cli_interrupted = 1;
        pthread_join(th, NULL);
        if (wx.idled && status == CLI_EXIT_OK && a->opts.log_level >= GG_LOG_INFO)
            cli_log_stderr(NULL, GG_LOG_INFO, "worker: held no job for --idle-s; exiting");
    }
    gg_worker_destroy(&w);
    return status;
}

int cli_cmd_worker(int argc, char **argv)
{
    cli_log_component = "worker";
    worker_args a;
    int status = parse_worker_args(argc, argv, &a);
    if (status >= 0)
        return status;
    gg_retriever_t *ret = NULL;
    gg_generator_t *gen = NULL;
    gg_executor_t *ex = NULL;
    status = open_index(&a, &ret);
    if (status == CLI_EXIT_OK)
        status = open_backends(&a, &gen, &ex);
    if (status == CLI_EXIT_OK)
        status = run_worker(&a, gen, ex, ret);
    gg_executor_destroy(&ex);
    gg_generator_destroy(&gen);
    gg_retriever_destroy(&ret);
    return status;
}
