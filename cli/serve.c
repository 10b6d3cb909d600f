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
       OPT_REQ_TIMEOUT };

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
               "  --req-timeout S   a front-door request's code gets S seconds (default 300)\n");
}

int cli_cmd_serve(int argc, char **argv)
{
    static const struct option longopts[] = {
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
    cli_log_component = "serve";
    cli_run_options opts;
    char bind[4096] = "";
    unsigned local = 0, max_queued = 0, http_port = 0;
    double index_weight = -1, index_exploration = -1;
    int index_frozen = 0, http_learn = 0, search_only = 0;
    const char *index_db = NULL, *http = NULL, *http_token_env = NULL, *http_token = NULL;
    const char *http_cert_file = NULL, *http_key_file = NULL, *http_tokens_file = NULL;
    char http_host[128] = "";
    const char *jobs_option = NULL; /* an option of where jobs run (--generator, ...) */
    const char *webhooks[MAX_WEBHOOKS + 1] = { NULL };
    int n_webhooks = 0;
    double stall_alert = 0, req_timeout = 0;
    const char *req = NULL;
    int c;
    cli_run_options_init(&opts);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (c == 'h' || c == CLI_OPT_HELP) {
            serve_usage(stdout);
            return CLI_EXIT_OK;
        }
        if (c == OPT_BIND) {
            size_t have = strlen(bind);
            if (!*optarg || have + strlen(optarg) + 2 > sizeof bind) {
                cli_errorf("serve: option --bind: empty or too long");
                return CLI_EXIT_USAGE;
            }
            snprintf(bind + have, sizeof bind - have, "%s%s", have ? "," : "", optarg);
            continue;
        }
        if (c == OPT_LOCAL) {
            if (cli_parse_uint("--local", optarg, 0, 1024, &local) != 0)
                return CLI_EXIT_USAGE;
            continue;
        }
        if (c == OPT_MAX_QUEUED) {
            if (cli_parse_uint("--max-queued", optarg, 1, 2000000000u, &max_queued) != 0)
                return CLI_EXIT_USAGE;
            continue;
        }
        if (c == OPT_INDEX) {
            index_db = optarg;
            continue;
        }
        if (c == OPT_HTTP_LEARN) {
            http_learn = 1;
            continue;
        }
        if (c == OPT_INDEX_FROZEN) {
            index_frozen = 1;
            continue;
        }
        if (c == OPT_INDEX_WEIGHT || c == OPT_INDEX_EXPLORATION) {
            int weight = c == OPT_INDEX_WEIGHT;
            char *end = NULL;
            double v = strtod(optarg, &end);
            if (!*optarg || *end || !(v >= 0 && v <= (weight ? 1e6 : 1))) {
                cli_errorf("serve: option --index-%s: not a number from 0 to %s: '%s'",
                           weight ? "weight" : "exploration", weight ? "1e6" : "1", optarg);
                return CLI_EXIT_USAGE;
            }
            *(weight ? &index_weight : &index_exploration) = v;
            continue;
        }
        if (c == OPT_HTTP) {
            http = optarg;
            if (cli_parse_listen("serve: --http", optarg, http_host, sizeof http_host,
                                 &http_port) != 0)
                return CLI_EXIT_USAGE;
            continue;
        }
        if (c == OPT_WEBHOOK) {
            if (strncmp(optarg, "http://", 7) != 0 && strncmp(optarg, "https://", 8) != 0) {
                cli_errorf("serve: option --webhook: '%s' is not an http:// or https:// URL",
                           optarg);
                return CLI_EXIT_USAGE;
            }
            if (n_webhooks >= MAX_WEBHOOKS) {
                cli_errorf("serve: option --webhook: at most %d", MAX_WEBHOOKS);
                return CLI_EXIT_USAGE;
            }
            webhooks[n_webhooks++] = optarg;
            continue;
        }
        if (c == OPT_STALL_ALERT || c == OPT_REQ_TIMEOUT) {
            char *end = NULL;
            double v = strtod(optarg, &end);
            int stall = c == OPT_STALL_ALERT;
            if (!*optarg || *end || !(v >= (stall ? 0 : 0.001) && v <= 30 * 86400.0)) {
                cli_errorf("serve: option --%s: not a number of seconds from %s to 2592000: "
                           "'%s'", stall ? "stall-alert" : "req-timeout", stall ? "0" : "0.001",
                           optarg);
                return CLI_EXIT_USAGE;
            }
            if (stall)
                stall_alert = v == 0 ? -1 : v;
            else
                req_timeout = v;
            continue;
        }
        if (c == OPT_REQ) {
            req = optarg;
            continue;
        }
        if (c == OPT_HTTP_TOKEN_ENV) {
            http_token_env = optarg;
            continue;
        }
        if (c == OPT_HTTP_TOKENS) {
            http_tokens_file = optarg;
            continue;
        }
        if (c == OPT_HTTP_CERT || c == OPT_HTTP_KEY) {
            *(c == OPT_HTTP_CERT ? &http_cert_file : &http_key_file) = optarg;
            continue;
        }
        if (c == '?' || c == ':')
            return cli_bad_option("serve", c, argv, optind, optopt);
        int handled = cli_security_option(c, optarg);
        if (handled < 0)
            return CLI_EXIT_USAGE;
        if (handled > 0)
            continue;
        handled = cli_run_option(&opts, c, optarg);
        if (handled < 0)
            return CLI_EXIT_USAGE;
        if (handled == 0)
            return cli_bad_option("serve", c, argv, optind, optopt);
        if (c == CLI_OPT_GENERATOR || c == CLI_OPT_PYTHON || c == CLI_OPT_CC)
            jobs_option = c == CLI_OPT_GENERATOR ? "--generator"
                          : c == CLI_OPT_PYTHON  ? "--python" : "--cc";
    }
    if (jobs_option && local == 0) {
        /* Remote workers generate and run with their own settings: without --local nothing
         * here would use it. */
        cli_errorf("serve: %s applies to the jobs of --local N workers only; remote workers "
                   "take their own: gryphgen worker %s", jobs_option, jobs_option);
        return CLI_EXIT_USAGE;
    }
    if (optind != argc) {
        cli_errorf("serve: unexpected argument '%s'", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    if (!bind[0]) {
        cli_errorf("serve: give at least one --bind ENDPOINT (e.g. tcp://127.0.0.1:5555)");
        serve_usage(stderr);
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
    for (const char *p = bind; *p;) {
        char ep[4096];
        size_t n = strcspn(p, ",");
        snprintf(ep, sizeof ep, "%.*s", (int)n, p);
        if (cli_security_check("serve", ep) != CLI_EXIT_OK)
            return CLI_EXIT_USAGE;
        p += n + (p[n] == ',');
    }
    if (req && cli_security_check("serve: --req", req) != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
    if (req_timeout > 0 && !req) {
        cli_errorf("serve: --req-timeout goes with --req ENDPOINT");
        return CLI_EXIT_USAGE;
    }
    if (stall_alert != 0 && !n_webhooks) {
        cli_errorf("serve: --stall-alert goes with --webhook URL");
        return CLI_EXIT_USAGE;
    }
    if ((http_token_env || http_tokens_file || http_cert_file || http_key_file) && !http) {
        cli_errorf("serve: --http-tokens, --http-token-env, --http-cert and --http-key go with "
                   "--http ADDRESS:PORT");
        return CLI_EXIT_USAGE;
    }
    if (http_token_env && !((http_token = getenv(http_token_env)) && *http_token)) {
        cli_errorf("serve: --http-token-env names $%s, which is not set", http_token_env);
        return CLI_EXIT_USAGE;
    }
    if (http && !http_token && !http_tokens_file && !ggi_http_address_is_loopback(http_host)) {
        cli_errorf("serve: --http %s: refusing to serve without authentication on an address "
                   "that is not loopback (anyone who reaches it could submit tasks and read "
                   "learned solutions); give --http-tokens FILE (lines 'TOKEN ROLE') or "
                   "--http-token-env VAR, with --http-cert and --http-key, or listen on "
                   "127.0.0.1", http_host);
        return CLI_EXIT_USAGE;
    }
    if (http && !http_cert_file && !ggi_http_address_is_loopback(http_host)) {
        cli_errorf("serve: --http %s is not a loopback address: the REST API, metrics and "
                   "tokens would cross the network in clear text; give --http-cert FILE "
                   "--http-key FILE (or listen on 127.0.0.1)", http);
        return CLI_EXIT_USAGE;
    }
    if (http && !http_token && !http_tokens_file && !cli_sec.insecure) {
        cli_errorf("serve: --http without tokens lets anyone on this machine submit and cancel "
                   "tasks: give --http-tokens FILE (lines 'TOKEN ROLE'), or --insecure on a "
                   "loopback address");
        return CLI_EXIT_USAGE;
    }
    ggi_http_tokens *http_tokens = NULL;
    if (http_tokens_file && ggi_http_tokens_load(http_tokens_file, &http_tokens) != GG_OK) {
        cli_errorf("serve: --http-tokens: %s", gg_error_last());
        return CLI_EXIT_USAGE;
    }
    if (http_learn && (!http || index_db)) {
        cli_errorf("serve: --http-learn makes --db the index of --http; it goes with --http "
                   "and without --index (an --index learns already)");
        ggi_http_tokens_free(&http_tokens);
        return CLI_EXIT_USAGE;
    }
    /* --http without --index serves --db at /v1/search; the grid uses it (retrieves from it
     * and learns into it) only with --http-learn, since learning costs every task a read of
     * its result after its commit (several times the cost of a no-op task). */
    if (http && !index_db) {
        index_db = opts.db_path;
        search_only = !http_learn && !index_frozen;
    }
    if (http && !index_db) {
        cli_errorf("serve: --http serves an index: give --index PATH or --db PATH");
        return CLI_EXIT_USAGE;
    }
    char *http_cert = NULL, *http_key = NULL;
    if (cli_read_tls("serve: --http", http_cert_file, http_key_file, &http_cert, &http_key) !=
        CLI_EXIT_OK) {
        ggi_http_tokens_free(&http_tokens);
        return CLI_EXIT_USAGE;
    }
    gg_retriever_t *index = NULL;
    if ((index_weight >= 0 || index_exploration >= 0 || index_frozen) && !index_db) {
        cli_errorf("serve: --index-weight, --index-exploration and --index-frozen go with "
                   "--index PATH");
        cli_free_tls(&http_cert, &http_key);
        ggi_http_tokens_free(&http_tokens);
        return CLI_EXIT_USAGE;
    }
    if (index_db &&
        cli_open_index(index_db, index_weight, index_exploration, &index) != CLI_EXIT_OK) {
        cli_free_tls(&http_cert, &http_key);
        ggi_http_tokens_free(&http_tokens);
        return CLI_EXIT_INFRA;
    }
    gg_retriever_t *frozen = NULL;
    if (index_frozen && freeze(index, &frozen) != GG_OK) {
        cli_errorf("serve: --index-frozen: %s", gg_error_last());
        gg_retriever_destroy(&index);
        cli_free_tls(&http_cert, &http_key);
        ggi_http_tokens_free(&http_tokens);
        return CLI_EXIT_INFRA;
    }
    gg_generator_options gopts = GG_GENERATOR_OPTIONS_INIT;
    gg_generator_t *gen = NULL;
    cli_generator_options_fill(&opts, &gopts);
    if (gg_generator_new(&gen, &gopts) != 0) {
        cli_errorf("generator '%s': %s", opts.generator, gg_error_last());
        gg_retriever_destroy(&frozen);
        gg_retriever_destroy(&index);
        cli_free_tls(&http_cert, &http_key);
        ggi_http_tokens_free(&http_tokens);
        return CLI_EXIT_USAGE;
    }
    gg_orchestrator_options oo = GG_ORCHESTRATOR_OPTIONS_INIT;
    oo.retriever = search_only ? NULL : frozen ? frozen : index;
    oo.db_path = opts.db_path;
    oo.max_attempts = opts.max_attempts;
    oo.max_tokens = opts.max_tokens;
    oo.generator = gen;
    oo.python = opts.python;
    oo.cc = opts.cc;
    oo.log_fn = cli_log_stderr;
    oo.log_level = opts.log_level;
    oo.bind = bind;
    oo.local_workers = local > 0;
    oo.workers = local;
    oo.max_queued = max_queued;
    oo.curve_key_file = cli_sec.key_file;
    oo.authorized_keys_file = cli_sec.authorized_keys;
    oo.insecure = cli_sec.insecure;
    oo.webhooks = n_webhooks ? webhooks : NULL;
    oo.stall_alert_s = stall_alert;
    oo.front_door = req;
    oo.front_door_timeout_s = req_timeout;
    gg_orchestrator_t *orch = NULL;
    cli_catch_signals();
    if (gg_orchestrator_new(&orch, &oo) != 0) {
        cli_errorf("serve: %s", gg_error_last());
        gg_generator_destroy(&gen);
        gg_retriever_destroy(&frozen);
        gg_retriever_destroy(&index);
        cli_free_tls(&http_cert, &http_key);
        ggi_http_tokens_free(&http_tokens);
        return CLI_EXIT_INFRA;
    }
    ggi_http_server *hs = NULL;
    ggi_http_face *face = NULL;
    if (http) {
        int failed = ggi_http_server_new(&hs) || ggi_http_search_route(hs, index) ||
                     ggi_http_face_new(&face, orch) || ggi_http_face_routes(face, hs) ||
                     (http_token && ggi_http_server_set_token(hs, http_token)) ||
                     (http_tokens &&
                      ggi_http_server_set_auth(hs, ggi_http_tokens_auth, http_tokens)) ||
                     (http_cert && ggi_http_server_set_tls(hs, http_cert, http_key)) ||
                     ggi_http_server_start(hs, http_host, http_port);
        cli_free_tls(&http_cert, &http_key);
        if (failed) {
            cli_errorf("serve: --http %s: %s", http, gg_error_last());
            ggi_http_face_stop(face);
            ggi_http_server_destroy(&hs);
            ggi_http_face_free(&face);
            ggi_http_tokens_free(&http_tokens);
            gg_orchestrator_destroy(&orch);
            gg_generator_destroy(&gen);
            gg_retriever_destroy(&frozen);
            gg_retriever_destroy(&index);
            return CLI_EXIT_INFRA;
        }
        cli_noticef("search on http%s://%s%s%s:%u/v1/search", http_cert_file ? "s" : "",
                   strchr(http_host, ':') ? "[" : "",
                   http_host, strchr(http_host, ':') ? "]" : "", ggi_http_server_port(hs));
        cli_errorf("http api on http%s://%s%s%s:%u/ (%s)", http_cert_file ? "s" : "",
                   strchr(http_host, ':') ? "[" : "", http_host,
                   strchr(http_host, ':') ? "]" : "", ggi_http_server_port(hs),
                   http_tokens ? "tokens required" : http_token ? "token required"
                                                                : "NO TOKENS (loopback)");
    }
    if (http && search_only)
        cli_noticef("/v1/search reads %s; tasks neither retrieve from it nor teach it "
                    "(--http-learn: both)", index_db);
    if (req)
        cli_noticef("front door on %s", req);
    cli_noticef("serving on %s (database %s, %s)", bind,
               opts.db_path ? opts.db_path : "temporary",
               cli_sec.key_file ? "CURVE encrypted" : "UNENCRYPTED");
    /* Until a signal, or until the database stops the scheduler (full, deleted, locked for
     * good): a hub that records nothing must not go on serving (asked about once a second). */
    int status = CLI_EXIT_OK;
    for (unsigned tick = 1; !cli_interrupted; tick++) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
        if (tick % 20 == 0 && gg_orchestrator_drain(orch, 0) == GG_ESTORE) {
            cli_errorf("serve: %s", gg_error_last());
            status = CLI_EXIT_INFRA;
            break;
        }
    }
    ggi_http_face_stop(face);
    ggi_http_server_destroy(&hs);
    ggi_http_face_free(&face);
    ggi_http_tokens_free(&http_tokens);
    gg_orchestrator_destroy(&orch);
    gg_generator_destroy(&gen);
    gg_retriever_destroy(&frozen);
    gg_retriever_destroy(&index);
    return status;
}
