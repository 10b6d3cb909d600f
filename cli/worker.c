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
               "                     seconds (1-604800; default: run until a signal)\n"
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

/* What the watching thread needs: the worker, and --idle-s (0: none). */
typedef struct watch_ctx {
    gg_worker_t *w;
    unsigned idle_s;
    int idled; /* set when the worker stopped for being idle */
} watch_ctx;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* While the worker holds nothing: its counters of jobs taken and results sent, in mark[2];
 * returns 0 then, else -1 (busy, or its stats unreadable). */
static int idle_mark(gg_worker_t *w, double mark[2])
{
    char *js = NULL;
    int rc = -1;
    if (gg_worker_stats(w, &js) == 0) {
        cJSON *st = cJSON_Parse(js);
        const cJSON *held = cJSON_GetObjectItemCaseSensitive(st, "held");
        const cJSON *jobs = cJSON_GetObjectItemCaseSensitive(st, "jobs");
        const cJSON *results = cJSON_GetObjectItemCaseSensitive(st, "results");
        if (cJSON_IsNumber(held) && held->valuedouble == 0 && cJSON_IsNumber(jobs) &&
            cJSON_IsNumber(results))
        {
            mark[0] = jobs->valuedouble;
            mark[1] = results->valuedouble;
            rc = 0;
        }
        cJSON_Delete(st);
    }
    gg_free(js);
    return rc;
}

/* Stops the worker when a signal arrived (the handler only sets cli_interrupted), or with
 * --idle-s once it has held no job, and neither taken a job nor sent a result, for that long. */
static void *watch_signals(void *arg)
{
    watch_ctx *x = arg;
    double last[2] = {-1, -1}, idle_since = now_s();
    while (!cli_interrupted) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
        if (!x->idle_s)
            continue;
        double mark[2] = {-1, -1}, t = now_s();
        if (idle_mark(x->w, mark) != 0 || mark[0] != last[0] || mark[1] != last[1])
            idle_since = t; /* busy, or something moved since the last look */
        last[0] = mark[0];
        last[1] = mark[1];
        if (t - idle_since >= x->idle_s) {
            x->idled = 1;
            break;
        }
    }
    gg_worker_stop(x->w);
    return NULL;
}

int cli_cmd_worker(int argc, char **argv)
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
        {"log-level", required_argument, NULL, CLI_OPT_LOG_LEVEL},
        CLI_LOG_FORMAT_LONG_OPTION,
        CLI_SECURITY_LONG_OPTIONS,
        {"help", no_argument, NULL, CLI_OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    cli_log_component = "worker";
    cli_run_options opts;
    const char *connect = NULL, *name = NULL, *executor = "process";
    const char *index_url = NULL, *index_token_env = NULL;
    const char *labels[MAX_LABELS + 1];
    unsigned n_labels = 0, slots = 0, queue = 0, idle_s = 0;
    int c;
    cli_run_options_init(&opts);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
        case CLI_OPT_HELP:
            worker_usage(stdout);
            return CLI_EXIT_OK;
        case OPT_CONNECT:
            connect = optarg;
            continue;
        case OPT_NAME:
            name = optarg;
            continue;
        case OPT_EXECUTOR:
            executor = optarg;
            continue;
        case OPT_INDEX_URL:
            index_url = optarg;
            continue;
        case OPT_INDEX_TOKEN_ENV:
            if (!*optarg) {
                cli_errorf("worker: option --index-token-env: give the name of a variable");
                return CLI_EXIT_USAGE;
            }
            index_token_env = optarg;
            continue;
        case OPT_JOURNAL:
            /* read by the openai generator, like every other of its settings */
            if (!*optarg || setenv("GRYPHGEN_LLM_JOURNAL", optarg, 1) != 0) {
                cli_errorf("worker: option --journal: give a file path");
                return CLI_EXIT_USAGE;
            }
            continue;
        case OPT_SLOTS:
            if (cli_parse_uint("--slots", optarg, 1, 1024, &slots) != 0)
                return CLI_EXIT_USAGE;
            continue;
        case OPT_IDLE_S:
            if (cli_parse_uint("--idle-s", optarg, 1, 604800, &idle_s) != 0)
                return CLI_EXIT_USAGE;
            continue;
        case OPT_QUEUE:
            if (cli_parse_uint("--queue", optarg, 0, 100000, &queue) != 0)
                return CLI_EXIT_USAGE;
            continue;
        case OPT_LABEL:
            if (n_labels >= MAX_LABELS || !strchr(optarg, '=') || optarg[0] == '=') {
                cli_errorf("worker: option --label: '%s' must be KEY=VALUE (at most %d labels)",
                           optarg, MAX_LABELS);
                return CLI_EXIT_USAGE;
            }
            labels[n_labels++] = optarg;
            continue;
        case '?':
        case ':':
            return cli_bad_option("worker", c, argv, optind, optopt);
        default: {
            int handled = cli_security_option(c, optarg);
            if (handled > 0)
                continue;
            if (handled == 0)
                handled = cli_run_option(&opts, c, optarg);
            if (handled < 0)
                return CLI_EXIT_USAGE;
            if (handled == 0)
                return cli_bad_option("worker", c, argv, optind, optopt);
        }
        }
    }
    labels[n_labels] = NULL;
    if (optind != argc) {
        cli_errorf("worker: unexpected argument '%s'", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    if (!connect || !*connect) {
        cli_errorf("worker: give --connect ENDPOINT (e.g. tcp://127.0.0.1:5555)");
        worker_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (cli_sec.key_file && !cli_sec.server_key) {
        cli_errorf("worker: --key needs --server-key (the orchestrator's public key)");
        return CLI_EXIT_USAGE;
    }
    if (cli_security_check("worker", connect) != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
    if (index_token_env && !index_url) {
        cli_errorf("worker: --index-token-env goes with --index-url URL");
        return CLI_EXIT_USAGE;
    }
    /* --index-url: the http retriever, search only. No feedback_url: the attempt records
     * reach the orchestrator, whose learner credits each one into the index once; feedback
     * from here as well would count every attempt twice. */
    gg_retriever_t *ret = NULL;
    if (index_url) {
        char tpl[MAX_INDEX_URL + sizeof SEARCH_PATH + sizeof SEARCH_PARAMS + 2];
        if (index_template(index_url, tpl, sizeof tpl) != 0)
            return CLI_EXIT_USAGE;
        gg_retriever_options ro = GG_RETRIEVER_OPTIONS_INIT;
        ro.backend = "http";
        ro.url = tpl;
        ro.token_env = index_token_env;
        ro.feedback_url = NULL;
        if (gg_retriever_new(&ret, &ro) != 0) {
            cli_errorf("worker: option --index-url: %s", gg_error_last());
            return CLI_EXIT_USAGE;
        }
    }
    gg_generator_options gopts = GG_GENERATOR_OPTIONS_INIT;
    gg_executor_options eopts = GG_EXECUTOR_OPTIONS_INIT;
    gg_generator_t *gen = NULL;
    gg_executor_t *ex = NULL;
    gg_worker_t *w = NULL;
    int status = CLI_EXIT_OK;
    gopts.spec = opts.generator;
    eopts.backend = executor;
    eopts.isolation = opts.isolation;
    eopts.min_isolation = opts.isolation;
    if (gg_generator_new(&gen, &gopts) != 0) {
        cli_errorf("generator '%s': %s", opts.generator, gg_error_last());
        gg_retriever_destroy(&ret);
        return CLI_EXIT_USAGE;
    }
    if (gg_executor_new(&ex, &eopts) != 0) {
        cli_errorf("executor '%s': %s", executor, gg_error_last());
        gg_generator_destroy(&gen);
        gg_retriever_destroy(&ret);
        return CLI_EXIT_USAGE;
    }
    if (opts.isolation && strcmp(executor, "process") == 0) {
        /* Once, before joining: a host that cannot give the level refuses to start rather
         * than failing every job it would take. */
        char *out = NULL;
        int rc = gg_executor_run(ex, "{\"argv\": [\"true\"]}", &out);
        gg_free(out);
        if (rc != 0) {
            cli_errorf("worker: --isolation %s: %s", opts.isolation, gg_error_last());
            gg_executor_destroy(&ex);
            gg_generator_destroy(&gen);
            gg_retriever_destroy(&ret);
            return CLI_EXIT_INFRA;
        }
    }
    gg_worker_options wo = GG_WORKER_OPTIONS_INIT;
    wo.connect = connect;
    wo.name = name;
    wo.slots = slots;
    wo.queue = queue;
    wo.labels = labels;
    wo.executor = ex;
    wo.generator = gen;
    wo.retriever = ret;
    wo.python = opts.python;
    wo.cc = opts.cc;
    wo.log_fn = cli_log_stderr;
    wo.log_level = opts.log_level;
    wo.curve_key_file = cli_sec.key_file;
    wo.curve_server_key = cli_sec.server_key;
    wo.insecure = cli_sec.insecure;
    if (gg_worker_new(&w, &wo) != 0) {
        cli_errorf("worker: %s", gg_error_last());
        status = CLI_EXIT_USAGE;
        goto out;
    }
    cli_catch_signals();
    pthread_t th;
    watch_ctx wx = {w, idle_s, 0};
    int watching = pthread_create(&th, NULL, watch_signals, &wx) == 0;
    if (gg_worker_run(w) != 0) {
        cli_errorf("worker: %s", gg_error_last());
        status = CLI_EXIT_INFRA;
    }
    if (watching) {
        cli_interrupted = 1;
        pthread_join(th, NULL);
        if (wx.idled && status == CLI_EXIT_OK && opts.log_level >= GG_LOG_INFO)
            cli_log_stderr(NULL, GG_LOG_INFO, "worker: held no job for --idle-s; exiting");
    }
out:
    gg_worker_destroy(&w);
    gg_executor_destroy(&ex);
    gg_generator_destroy(&gen);
    gg_retriever_destroy(&ret);
    return status;
}
