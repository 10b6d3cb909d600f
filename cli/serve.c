/*
 * serve.c - `gryphgen serve`: runs an orchestrator as a grid hub. Remote workers (`gryphgen
 * worker`) and clients (`submit`, `status`, `cancel`, `watch`, `eval --connect`) connect to
 * the endpoints given with --bind. Runs until SIGINT or SIGTERM, or until its database stops
 * the scheduler (exit 1, saying why); unfinished tasks stay in the database and resume on
 * the next start.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "gryphgen/sys/retriever.h"
#include "http/auth.h"
#include "http/face.h"
#include "http/http_server.h"

enum { OPT_BIND = 0x200, OPT_LOCAL, OPT_MAX_QUEUED, OPT_INDEX, OPT_HTTP, OPT_HTTP_TOKEN_ENV,
       OPT_HTTP_CERT, OPT_HTTP_KEY, OPT_INDEX_WEIGHT, OPT_INDEX_EXPLORATION,
       OPT_INDEX_FROZEN, OPT_HTTP_LEARN, OPT_HTTP_TOKENS, OPT_WEBHOOK, OPT_STALL_ALERT, OPT_REQ,
       OPT_REQ_TIMEOUT, OPT_HA_ROLE, OPT_HA_PEER, OPT_HA_TIMEOUT };

/* --webhook URLs at most (the library's limit). */
#define MAX_WEBHOOKS 16

/* --index-frozen: the index searched as it is, learning nothing (no feedback, no solutions):
 * the baseline of bench/learning.sh. self is the index, which the caller owns. */
static int frozen_search(void *self, const char *query_json, char **out)
{
    return gg_retriever_search(self, query_json, out);
}

static int freeze(gg_retriever_t *index, gg_retriever_t **out)
{
    gg_retriever_vtable vt = GG_RETRIEVER_VTABLE_INIT;
    vt.search = frozen_search;
    vt.name = "fts5-frozen";
    return gg_retriever_new_custom(out, &vt, index);
}

static void serve_usage(FILE *f)
{
    fprintf(f, "usage: gryphgen serve --bind ENDPOINT [--bind ENDPOINT...] [--db PATH]\n"
               "                      [--local N] [--max-queued N] [--max-attempts N] [--max-tokens N]\n"
               "                      [--generator SPEC] [--python PATH] [--cc PATH]\n"
               "                      [--log-level LEVEL] [--log-format text|json]\n"
               "                      [--key FILE --authorized-keys FILE] [--insecure]\n"
               "                      [--index PATH [--index-weight W] [--index-exploration E]\n"
               "                      [--index-frozen]]\n"
               "                      [--http ADDRESS:PORT [--http-tokens FILE]\n"
               "                      [--http-token-env VAR] [--http-cert FILE --http-key FILE]\n"
               "                      [--http-learn]]\n"
               "                      [--webhook URL...] [--stall-alert SECONDS]\n"
               "                      [--req ENDPOINT [--req-timeout SECONDS]]\n"
               "                      [--ha-role primary|backup --ha-peer ENDPOINT\n"
               "                      [--ha-timeout-ms MS]]\n"
               "  --bind ENDPOINT   tcp://127.0.0.1:5555 or ipc:///path (repeatable)\n"
               "  --key FILE        this server's CURVE key pair (PREFIX.key, `gryphgen keygen`)\n"
               "  --authorized-keys FILE  the admitted keys: lines \"ROLE Z85KEY [comment]\"\n"
               "  --insecure        no encryption (loopback endpoints only)\n"
               "  --local N         also run N worker threads in this process (default 0);\n"
               "                    --generator, --python and --cc are theirs (remote\n"
               "                    workers take their own), so they need --local\n"
               "  --max-queued N    queued tasks beyond which submissions are answered busy\n"
               "  --index PATH      retrieve context from this fts5 index (`gryphgen index`)\n"
               "                    and learn from outcomes into it\n"
               "  --index-weight W  weight of learned usefulness in its ranking (default 0.5;\n"
               "                    0: plain BM25)\n"
               "  --index-exploration E  share of searches ranked by Thompson draws (0-1,\n"
               "                    default 0.1)\n"
               "  --index-frozen    search the index but learn nothing into it (a baseline)\n"
               "  --http ADDR:PORT  also serve HTTP: the REST API (/v1/tasks, /v1/nodes,\n"
               "                    /v1/events), /metrics, the dashboard (/), /healthz and\n"
               "                    /v1/search?q=...&k=... from the index (docs/http.md;\n"
               "                    port 0 picks a free one; the URL is printed). Off\n"
               "                    loopback it needs --http-cert/--http-key and tokens;\n"
               "                    without tokens, --insecure and a loopback address\n"
               "  --http-learn      make --db the grid's index as --index would: context\n"
               "                    from it and outcomes learned into it (without it,\n"
               "                    --http's /v1/search only reads --db; learning costs\n"
               "                    every task a read of its result)\n"
               "  --http-tokens FILE  lines 'TOKEN ROLE [NAME]' (ROLE: observer, submitter\n"
               "                    or admin); the file must be mode 0600\n"
               "  --http-token-env VAR  also admit the token in $VAR, as an admin\n"
               "  --http-cert FILE --http-key FILE  serve --http as HTTPS with this PEM\n"
               "                    certificate chain and private key (chmod 600)\n"
               "  --webhook URL     POST alerts as JSON to this http(s) URL (repeatable):\n"
               "                    task.failed, budget.exhausted, node.lost,\n"
               "                    node.quarantined, queue.stalled (docs/alerts.md)\n"
               "  --stall-alert S   queue.stalled after S seconds without a dispatch or an\n"
               "                    end while tasks wait (default 300; 0: never)\n"
               "  --req ENDPOINT    a front door for plain ZeroMQ REQ clients:\n"
               "                    {\"code\": ..., \"query\": ...} gets one JSON reply\n"
               "                    (docs/front_door.md); the same key rules as --bind\n"
               "  --req-timeout S   a front-door request's code gets S seconds (default 300)\n"
               "  --ha-role primary|backup  one of a standby pair (docs/ha.md): the active\n"
               "                    one streams its state to the other, which takes over\n"
               "                    when it falls silent; needs --ha-peer, no --local\n"
               "  --ha-peer ENDPOINT  the other server's --bind endpoint\n"
               "  --ha-timeout-ms MS  the peer is dead after MS without heartbeats (400 to\n"
               "                    600000; default 500)\n");
}

/* What the command line says, parsed (parse_args) and checked (check_args). */
typedef struct serve_args {
    cli_run_options opts;
    char bind[4096];
    unsigned local, max_queued, http_port, ha_timeout_ms;
    double index_weight, index_exploration;
    int index_frozen, http_learn, search_only;
    const char *index_db, *http, *http_token_env, *http_token;
    const char *http_cert_file, *http_key_file, *http_tokens_file;
    char http_host[128];
    const char *jobs_option; /* an option of where jobs run (--generator, ...) */
    const char *webhooks[MAX_WEBHOOKS + 1];
    int n_webhooks;
    double stall_alert, req_timeout;
    const char *req;
    const char *ha_role, *ha_peer;
} serve_args;

/* What serve runs, made from the arguments (open_parts) and undone by close_parts. */
typedef struct serve_parts {
    ggi_http_tokens *http_tokens;
    char *http_cert, *http_key;
    gg_retriever_t *index, *frozen;
    gg_generator_t *gen;
    gg_orchestrator_t *orch;
    ggi_http_server *hs;
    ggi_http_face *face;
} serve_parts;

static const struct option serve_longopts[] = {
    {"bind", required_argument, NULL, OPT_BIND},
    {"local", required_argument, NULL, OPT_LOCAL},
    {"max-queued", required_argument, NULL, OPT_MAX_QUEUED},
    {"index", required_argument, NULL, OPT_INDEX},
    {"index-weight", required_argument, NULL, OPT_INDEX_WEIGHT},
    {"index-exploration", required_argument, NULL, OPT_INDEX_EXPLORATION},
    {"index-frozen", no_argument, NULL, OPT_INDEX_FROZEN},
    {"http", required_argument, NULL, OPT_HTTP},
    {"http-learn", no_argument, NULL, OPT_HTTP_LEARN},
    {"http-token-env", required_argument, NULL, OPT_HTTP_TOKEN_ENV},
    {"http-tokens", required_argument, NULL, OPT_HTTP_TOKENS},
    {"http-cert", required_argument, NULL, OPT_HTTP_CERT},
    {"http-key", required_argument, NULL, OPT_HTTP_KEY},
    {"webhook", required_argument, NULL, OPT_WEBHOOK},
    {"stall-alert", required_argument, NULL, OPT_STALL_ALERT},
    {"req", required_argument, NULL, OPT_REQ},
    {"req-timeout", required_argument, NULL, OPT_REQ_TIMEOUT},
    {"ha-role", required_argument, NULL, OPT_HA_ROLE},
    {"ha-peer", required_argument, NULL, OPT_HA_PEER},
    {"ha-timeout-ms", required_argument, NULL, OPT_HA_TIMEOUT},
    {"generator", required_argument, NULL, CLI_OPT_GENERATOR},
    CLI_LLM_LONG_OPTIONS,
    CLI_MAX_TOKENS_LONG_OPTION,
    {"db", required_argument, NULL, CLI_OPT_DB},
    {"max-attempts", required_argument, NULL, CLI_OPT_MAX_ATTEMPTS},
    {"python", required_argument, NULL, CLI_OPT_PYTHON},
    {"cc", required_argument, NULL, CLI_OPT_CC},
    {"log-level", required_argument, NULL, CLI_OPT_LOG_LEVEL},
    CLI_LOG_FORMAT_LONG_OPTION,
    {"authorized-keys", required_argument, NULL, CLI_OPT_AUTHORIZED_KEYS},
    CLI_SECURITY_LONG_OPTIONS,
    {"help", no_argument, NULL, CLI_OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* A number of seconds for --stall-alert or --req-timeout. */
static int parse_seconds(serve_args *a, int c, const char *arg)
{
    char *end = NULL;
    double v = strtod(arg, &end);
    int stall = c == OPT_STALL_ALERT;
    if (!*arg || *end || !(v >= (stall ? 0 : 0.001) && v <= 30 * 86400.0)) {
        cli_errorf("serve: option --%s: not a number of seconds from %s to 2592000: '%s'",
                   stall ? "stall-alert" : "req-timeout", stall ? "0" : "0.001", arg);
        return -1;
    }
    if (stall)
        a->stall_alert = v == 0 ? -1 : v;
    else
        a->req_timeout = v;
    return 0;
}

/* The options of the index, the HTTP API and the webhooks: 1 handled, 0 not one of them,
 * -1 a bad value (said). */
static int parse_service_option(serve_args *a, int c, const char *arg)
{
    switch (c) {
    case OPT_INDEX: a->index_db = arg; return 1;
    case OPT_INDEX_FROZEN: a->index_frozen = 1; return 1;
    case OPT_HTTP_LEARN: a->http_learn = 1; return 1;
    case OPT_INDEX_WEIGHT:
    case OPT_INDEX_EXPLORATION: {
        int weight = c == OPT_INDEX_WEIGHT;
        char *end = NULL;
        double v = strtod(arg, &end);
        if (!*arg || *end || !(v >= 0 && v <= (weight ? 1e6 : 1))) {
            cli_errorf("serve: option --index-%s: not a number from 0 to %s: '%s'",
                       weight ? "weight" : "exploration", weight ? "1e6" : "1", arg);
            return -1;
        }
        *(weight ? &a->index_weight : &a->index_exploration) = v;
        return 1;
    }
    case OPT_HTTP:
        a->http = arg;
        return cli_parse_listen("serve: --http", arg, a->http_host, sizeof a->http_host,
                                &a->http_port) != 0 ? -1 : 1;
    case OPT_WEBHOOK:
        if (strncmp(arg, "http://", 7) != 0 && strncmp(arg, "https://", 8) != 0) {
            cli_errorf("serve: option --webhook: '%s' is not an http:// or https:// URL", arg);
            return -1;
        }
        if (a->n_webhooks >= MAX_WEBHOOKS) {
            cli_errorf("serve: option --webhook: at most %d", MAX_WEBHOOKS);
            return -1;
        }
        a->webhooks[a->n_webhooks++] = arg;
        return 1;
    case OPT_STALL_ALERT:
    case OPT_REQ_TIMEOUT: return parse_seconds(a, c, arg) ? -1 : 1;
    case OPT_REQ: a->req = arg; return 1;
    case OPT_HTTP_TOKEN_ENV: a->http_token_env = arg; return 1;
    case OPT_HTTP_TOKENS: a->http_tokens_file = arg; return 1;
    case OPT_HTTP_CERT: a->http_cert_file = arg; return 1;
    case OPT_HTTP_KEY: a->http_key_file = arg; return 1;
    }
    return 0;
}

/* The options of the hub itself (endpoints, local workers, the standby pair): 1 handled,
 * 0 not one of them, -1 a bad value (said). */
static int parse_hub_option(serve_args *a, int c, const char *arg)
{
    switch (c) {
    case OPT_BIND: {
        size_t have = strlen(a->bind);
        if (!*arg || have + strlen(arg) + 2 > sizeof a->bind) {
            cli_errorf("serve: option --bind: empty or too long");
            return -1;
        }
        snprintf(a->bind + have, sizeof a->bind - have, "%s%s", have ? "," : "", arg);
        return 1;
    }
    case OPT_LOCAL:
        return cli_parse_uint("--local", arg, 0, 1024, &a->local) != 0 ? -1 : 1;
    case OPT_MAX_QUEUED:
        return cli_parse_uint("--max-queued", arg, 1, 2000000000u, &a->max_queued) != 0 ? -1
                                                                                        : 1;
    case OPT_HA_ROLE:
        if (strcmp(arg, "primary") != 0 && strcmp(arg, "backup") != 0) {
            cli_errorf("serve: option --ha-role: 'primary' or 'backup', not '%s'", arg);
            return -1;
        }
        a->ha_role = arg;
        return 1;
    case OPT_HA_PEER: a->ha_peer = arg; return 1;
    case OPT_HA_TIMEOUT:
        return cli_parse_uint("--ha-timeout-ms", arg, 400, 600000, &a->ha_timeout_ms) != 0
                   ? -1 : 1;
    }
    return 0;
}

/* Reads the command line into a: CLI_EXIT_OK, or the exit code (help printed: -1 for OK). */
static int parse_args(serve_args *a, int argc, char **argv)
{
    memset(a, 0, sizeof *a);
    a->index_weight = a->index_exploration = -1;
    cli_run_options_init(&a->opts);
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", serve_longopts, NULL)) != -1) {
        if (c == 'h' || c == CLI_OPT_HELP) {
            serve_usage(stdout);
            return -1;
        }
        int handled = parse_hub_option(a, c, optarg);
        if (handled == 0)
            handled = parse_service_option(a, c, optarg);
        if (handled < 0)
            return CLI_EXIT_USAGE;
        if (handled > 0)
            continue;
        if (c == '?' || c == ':')
            return cli_bad_option("serve", c, argv, optind, optopt);
        handled = cli_security_option(c, optarg);
        if (handled < 0)
            return CLI_EXIT_USAGE;
        if (handled > 0)
            continue;
        handled = cli_run_option(&a->opts, c, optarg);
        if (handled < 0)
            return CLI_EXIT_USAGE;
        if (handled == 0)
            return cli_bad_option("serve", c, argv, optind, optopt);
        if (c == CLI_OPT_GENERATOR || c == CLI_OPT_PYTHON || c == CLI_OPT_CC)
            a->jobs_option = c == CLI_OPT_GENERATOR ? "--generator"
                             : c == CLI_OPT_PYTHON  ? "--python" : "--cc";
    }
    if (optind != argc) {
        cli_errorf("serve: unexpected argument '%s'", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

/* The hub's arguments fit together: endpoints, keys, local workers, the standby pair. */
static int check_hub_args(const serve_args *a)
{
    if (a->jobs_option && a->local == 0) {
        /* Remote workers generate and run with their own settings: without --local nothing
         * here would use it. */
        cli_errorf("serve: %s applies to the jobs of --local N workers only; remote workers "
                   "take their own: gryphgen worker %s", a->jobs_option, a->jobs_option);
        return CLI_EXIT_USAGE;
    }
    if (!a->bind[0]) {
        cli_errorf("serve: give at least one --bind ENDPOINT (e.g. tcp://127.0.0.1:5555)");
        serve_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if ((a->ha_role != NULL) != (a->ha_peer != NULL) || (a->ha_timeout_ms && !a->ha_role)) {
        cli_errorf("serve: --ha-role and --ha-peer go together (--ha-timeout-ms with them)");
        return CLI_EXIT_USAGE;
    }
    if (a->ha_role && a->local) {
        cli_errorf("serve: --ha-role runs no --local workers (a standby runs no work; start "
                   "workers with --connect naming both servers)");
        return CLI_EXIT_USAGE;
    }
    if (cli_sec.server_key) {
        cli_errorf("serve: --server-key is for workers and clients (the orchestrator's public "
                   "key); serve takes --key and --authorized-keys");
        return CLI_EXIT_USAGE;
    }
    if (cli_sec.key_file && !cli_sec.authorized_keys) {
        cli_errorf("serve: --key needs --authorized-keys FILE (the keys admitted, with roles)");
        return CLI_EXIT_USAGE;
    }
    for (const char *p = a->bind; *p;) {
        char ep[4096];
        size_t n = strcspn(p, ",");
        snprintf(ep, sizeof ep, "%.*s", (int)n, p);
        if (cli_security_check("serve", ep) != CLI_EXIT_OK)
            return CLI_EXIT_USAGE;
        p += n + (p[n] == ',');
    }
    if (a->ha_peer && cli_security_check("serve: --ha-peer", a->ha_peer) != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
    if (a->req && cli_security_check("serve: --req", a->req) != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
    if (a->req_timeout > 0 && !a->req) {
        cli_errorf("serve: --req-timeout goes with --req ENDPOINT");
        return CLI_EXIT_USAGE;
    }
    if (a->stall_alert != 0 && !a->n_webhooks) {
        cli_errorf("serve: --stall-alert goes with --webhook URL");
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

/* The HTTP API's arguments fit together (and its token is read from the environment). */
static int check_http_args(serve_args *a)
{
    if ((a->http_token_env || a->http_tokens_file || a->http_cert_file || a->http_key_file) &&
        !a->http) {
        cli_errorf("serve: --http-tokens, --http-token-env, --http-cert and --http-key go with "
                   "--http ADDRESS:PORT");
        return CLI_EXIT_USAGE;
    }
    if (a->http_token_env && !((a->http_token = getenv(a->http_token_env)) && *a->http_token)) {
        cli_errorf("serve: --http-token-env names $%s, which is not set", a->http_token_env);
        return CLI_EXIT_USAGE;
    }
    int loopback = a->http && ggi_http_address_is_loopback(a->http_host);
    if (a->http && !a->http_token && !a->http_tokens_file && !loopback) {
        cli_errorf("serve: --http %s: refusing to serve without authentication on an address "
                   "that is not loopback (anyone who reaches it could submit tasks and read "
                   "learned solutions); give --http-tokens FILE (lines 'TOKEN ROLE') or "
                   "--http-token-env VAR, with --http-cert and --http-key, or listen on "
                   "127.0.0.1", a->http_host);
        return CLI_EXIT_USAGE;
    }
    if (a->http && !a->http_cert_file && !loopback) {
        cli_errorf("serve: --http %s is not a loopback address: the REST API, metrics and "
                   "tokens would cross the network in clear text; give --http-cert FILE "
                   "--http-key FILE (or listen on 127.0.0.1)", a->http);
        return CLI_EXIT_USAGE;
    }
    if (a->http && !a->http_token && !a->http_tokens_file && !cli_sec.insecure) {
        cli_errorf("serve: --http without tokens lets anyone on this machine submit and cancel "
                   "tasks: give --http-tokens FILE (lines 'TOKEN ROLE'), or --insecure on a "
                   "loopback address");
        return CLI_EXIT_USAGE;
    }
    if (a->http_learn && (!a->http || a->index_db)) {
        cli_errorf("serve: --http-learn makes --db the index of --http; it goes with --http "
                   "and without --index (an --index learns already)");
        return CLI_EXIT_USAGE;
    }
    /* --http without --index serves --db at /v1/search; the grid uses it (retrieves from it
     * and learns into it) only with --http-learn, since learning costs every task a read of
     * its result after its commit (several times the cost of a no-op task). */
    if (a->http && !a->index_db) {
        a->index_db = a->opts.db_path;
        a->search_only = !a->http_learn && !a->index_frozen;
    }
    if (a->http && !a->index_db) {
        cli_errorf("serve: --http serves an index: give --index PATH or --db PATH");
        return CLI_EXIT_USAGE;
    }
    if ((a->index_weight >= 0 || a->index_exploration >= 0 || a->index_frozen) &&
        !a->index_db) {
        cli_errorf("serve: --index-weight, --index-exploration and --index-frozen go with "
                   "--index PATH");
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

static void close_parts(serve_parts *p)
{
    ggi_http_face_stop(p->face);
    ggi_http_server_destroy(&p->hs);
    ggi_http_face_free(&p->face);
    ggi_http_tokens_free(&p->http_tokens);
    cli_free_tls(&p->http_cert, &p->http_key);
    gg_orchestrator_destroy(&p->orch);
    gg_generator_destroy(&p->gen);
    gg_retriever_destroy(&p->frozen);
    gg_retriever_destroy(&p->index);
}

/* Tokens, TLS files, the index and the generator: CLI_EXIT_OK or the exit code (said). */
static int open_resources(const serve_args *a, serve_parts *p)
{
    if (a->http_tokens_file && ggi_http_tokens_load(a->http_tokens_file, &p->http_tokens) !=
                                   GG_OK) {
        cli_errorf("serve: --http-tokens: %s", gg_error_last());
        return CLI_EXIT_USAGE;
    }
    if (cli_read_tls("serve: --http", a->http_cert_file, a->http_key_file, &p->http_cert,
                     &p->http_key) != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
    if (a->index_db && cli_open_index(a->index_db, a->index_weight, a->index_exploration,
                                      &p->index) != CLI_EXIT_OK)
        return CLI_EXIT_INFRA;
    if (a->index_frozen && freeze(p->index, &p->frozen) != GG_OK) {
        cli_errorf("serve: --index-frozen: %s", gg_error_last());
        return CLI_EXIT_INFRA;
    }
    gg_generator_options gopts = GG_GENERATOR_OPTIONS_INIT;
    cli_generator_options_fill(&a->opts, &gopts);
    if (gg_generator_new(&p->gen, &gopts) != 0) {
        cli_errorf("generator '%s': %s", a->opts.generator, gg_error_last());
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

/* The orchestrator itself, from the arguments. */
static int start_orchestrator(const serve_args *a, serve_parts *p)
{
    gg_orchestrator_options oo = GG_ORCHESTRATOR_OPTIONS_INIT;
    oo.retriever = a->search_only ? NULL : p->frozen ? p->frozen : p->index;
    oo.db_path = a->opts.db_path;
    oo.max_attempts = a->opts.max_attempts;
    oo.max_tokens = a->opts.max_tokens;
    oo.generator = p->gen;
    oo.python = a->opts.python;
    oo.cc = a->opts.cc;
    oo.log_fn = cli_log_stderr;
    oo.log_level = a->opts.log_level;
    oo.bind = a->bind;
    oo.local_workers = a->local > 0;
    oo.workers = a->local;
    oo.max_queued = a->max_queued;
    oo.curve_key_file = cli_sec.key_file;
    oo.authorized_keys_file = cli_sec.authorized_keys;
    oo.insecure = cli_sec.insecure;
    oo.webhooks = a->n_webhooks ? a->webhooks : NULL;
    oo.stall_alert_s = a->stall_alert;
    oo.front_door = a->req;
    oo.front_door_timeout_s = a->req_timeout;
    oo.ha_role = a->ha_role;
    oo.ha_peer = a->ha_peer;
    oo.ha_timeout_ms = a->ha_timeout_ms;
    if (gg_orchestrator_new(&p->orch, &oo) != 0) {
        cli_errorf("serve: %s", gg_error_last());
        return CLI_EXIT_INFRA;
    }
    return CLI_EXIT_OK;
}

/* The HTTP API over the orchestrator, when --http asks for it; its address is printed. */
static int start_http(const serve_args *a, serve_parts *p)
{
    if (!a->http)
        return CLI_EXIT_OK;
    int failed = ggi_http_server_new(&p->hs) || ggi_http_search_route(p->hs, p->index) ||
                 ggi_http_face_new(&p->face, p->orch) || ggi_http_face_routes(p->face, p->hs) ||
                 (a->http_token && ggi_http_server_set_token(p->hs, a->http_token)) ||
                 (p->http_tokens &&
                  ggi_http_server_set_auth(p->hs, ggi_http_tokens_auth, p->http_tokens)) ||
                 (p->http_cert && ggi_http_server_set_tls(p->hs, p->http_cert, p->http_key)) ||
                 ggi_http_server_start(p->hs, a->http_host, a->http_port);
    cli_free_tls(&p->http_cert, &p->http_key);
    if (failed) {
        cli_errorf("serve: --http %s: %s", a->http, gg_error_last());
        return CLI_EXIT_INFRA;
    }
    const char *host = a->http_host;
    int v6 = strchr(host, ':') != NULL;
    cli_noticef("search on http%s://%s%s%s:%u/v1/search", a->http_cert_file ? "s" : "",
                v6 ? "[" : "", host, v6 ? "]" : "", ggi_http_server_port(p->hs));
    cli_errorf("http api on http%s://%s%s%s:%u/ (%s)", a->http_cert_file ? "s" : "",
               v6 ? "[" : "", host, v6 ? "]" : "", ggi_http_server_port(p->hs),
               p->http_tokens ? "tokens required" : a->http_token ? "token required"
                                                                  : "NO TOKENS (loopback)");
    return CLI_EXIT_OK;
}

int cli_cmd_serve(int argc, char **argv)
{
    cli_log_component = "serve";
    static serve_args a; /* large; one serve per process */
    int rc = parse_args(&a, argc, argv);
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    if ((rc = check_hub_args(&a)) != CLI_EXIT_OK || (rc = check_http_args(&a)) != CLI_EXIT_OK)
        return rc;
    serve_parts p;
    memset(&p, 0, sizeof p);
    if ((rc = open_resources(&a, &p)) == CLI_EXIT_OK) {
        cli_catch_signals();
        rc = start_orchestrator(&a, &p);
    }
    if (rc == CLI_EXIT_OK)
        rc = start_http(&a, &p);
    if (rc != CLI_EXIT_OK) {
        close_parts(&p);
        return rc;
    }
    if (a.http && a.search_only)
        cli_noticef("/v1/search reads %s; tasks neither retrieve from it nor teach it "
                    "(--http-learn: both)", a.index_db);
    if (a.req)
        cli_noticef("front door on %s", a.req);
    cli_noticef("serving on %s (database %s, %s%s%s)", a.bind,
                a.opts.db_path ? a.opts.db_path : "temporary",
                cli_sec.key_file ? "CURVE encrypted" : "UNENCRYPTED",
                a.ha_role ? ", ha " : "", a.ha_role ? a.ha_role : "");
    /* Until a signal, or until the database stops the scheduler (full, deleted, locked for
     * good): a hub that records nothing must not go on serving (asked about once a second). */
    int status = CLI_EXIT_OK;
    for (unsigned tick = 1; !cli_interrupted; tick++) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
        if (tick % 20 == 0 && gg_orchestrator_drain(p.orch, 0) == GG_ESTORE) {
            cli_errorf("serve: %s", gg_error_last());
            status = CLI_EXIT_INFRA;
            break;
        }
    }
    close_parts(&p);
    return status;
}
