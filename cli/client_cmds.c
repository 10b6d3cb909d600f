/*
 * client_cmds.c - the client commands of the grid: `gryphgen submit`, `status`, `cancel` and
 * `watch`, each talking to `gryphgen serve` through gg_client_t, plus the helpers
 * `eval --connect` uses.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "jsonl_reader.h"

enum { OPT_CONNECT = 0x200, OPT_NAME, OPT_WAIT, OPT_TIMEOUT, OPT_BATCH };

#define SUBMIT_BATCH 1000
#define NO_TIMEOUT UINT_MAX /* --timeout-ms not given */
#define SUBMIT_BATCH_BYTES ((size_t)4 << 20)

cli_security cli_sec;

int cli_security_option(int c, const char *arg)
{
    switch (c) {
    case CLI_OPT_KEY:
    case CLI_OPT_SERVER_KEY:
    case CLI_OPT_AUTHORIZED_KEYS:
        if (!arg || !*arg) {
            cli_errorf("option %s: empty value", c == CLI_OPT_KEY ? "--key"
                       : c == CLI_OPT_SERVER_KEY ? "--server-key" : "--authorized-keys");
            return -1;
        }
        if (c == CLI_OPT_KEY)
            cli_sec.key_file = arg;
        else if (c == CLI_OPT_SERVER_KEY)
            cli_sec.server_key = arg;
        else
            cli_sec.authorized_keys = arg;
        return 1;
    case CLI_OPT_INSECURE:
        cli_sec.insecure = 1;
        return 1;
    default:
        return 0;
    }
}

static int security_check_one(const char *command, const char *endpoint);

int cli_security_check(const char *command, const char *endpoint)
{
    /* A list "EP1,EP2" (a primary and its backup, docs/protocol.md "Failover"): each entry
     * by the same rule; an empty entry or too many are the library's to refuse. */
    if (!endpoint || !strchr(endpoint, ','))
        return security_check_one(command, endpoint);
    for (const char *p = endpoint;;) {
        size_t len = strcspn(p, ",");
        while (len > 0 && (*p == ' ' || *p == '\t')) {
            p++;
            len--;
        }
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        char one[1024];
        if (len > 0 && len < sizeof one) {
            memcpy(one, p, len);
            one[len] = '\0';
            if (security_check_one(command, one) != CLI_EXIT_OK)
                return CLI_EXIT_USAGE;
        }
        p += strcspn(p, ",");
        if (!*p)
            return CLI_EXIT_OK;
        p++;
    }
}

static int security_check_one(const char *command, const char *endpoint)
{
    /* Unencrypted only when asked for with --insecure, and then on loopback only. */
    if (!cli_sec.key_file && !cli_sec.insecure && endpoint &&
        strncmp(endpoint, "inproc://", 9) != 0) {
        cli_errorf("%s: %s: no CURVE keys and no --insecure: refusing unencrypted operation; "
                   "give keys made by 'gryphgen keygen' (serve: --key and --authorized-keys; "
                   "worker and clients: --key and --server-key), or --insecure (loopback "
                   "endpoints only)", command, endpoint);
        return CLI_EXIT_USAGE;
    }
    if (gg_security_check(endpoint, cli_sec.key_file != NULL, cli_sec.insecure) != 0) {
        cli_errorf("%s: %s", command, gg_error_last());
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

int cli_client_open(const char *endpoint, const char *name, gg_client_t **out)
{
    gg_client_options co = GG_CLIENT_OPTIONS_INIT;
    co.connect = endpoint;
    co.name = name;
    co.curve_key_file = cli_sec.key_file;
    co.curve_server_key = cli_sec.server_key;
    co.insecure = cli_sec.insecure;
    if (cli_security_check("connect", endpoint) != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
    if (gg_client_new(out, &co) != 0) {
        cli_errorf("cannot connect to '%s': %s", endpoint, gg_error_last());
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

int cli_client_result(gg_client_t *c, const char *task_id, char **out_result)
{
    char *st = NULL;
    *out_result = NULL;
    int rc = gg_client_status(c, task_id, &st);
    if (rc != 0)
        return rc;
    cJSON *s = cJSON_Parse(st);
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(s, "status");
    int ended = cJSON_IsString(status) && strcmp(status->valuestring, "queued") != 0 &&
                strcmp(status->valuestring, "running") != 0;
    cJSON_Delete(s);
    gg_free(st);
    if (!ended)
        return GG_EAGAIN;
    return gg_client_wait(c, task_id, 10000, out_result);
}

/* The usage of submit, status, cancel and watch (--help, -h). */
static void client_usage(const char *cmd, FILE *f)
{
    static const struct {
        const char *cmd, *args, *what;
    } usages[] = {
        {"submit", "[--wait [--timeout-ms N]] FILE|-",
         "submits the tasks of FILE (JSON lines; - reads stdin) and prints their ids, one a\n"
         "line; with --wait, then waits for each and prints its result JSON (--timeout-ms:\n"
         "how long to wait for each, default without end)"},
        {"status", "[TASK_ID]",
         "prints a task's status as JSON, or without TASK_ID the orchestrator's counters\n"
         "and connected nodes"},
        {"cancel", "TASK_ID", "cancels a task that has not ended"},
        {"watch", "[--timeout-ms N]",
         "prints the orchestrator's events as JSON lines (docs/events.md) until interrupted,\n"
         "or for N ms"},
    };
    for (size_t i = 0; i < sizeof usages / sizeof usages[0]; i++) {
        if (strcmp(usages[i].cmd, cmd) != 0)
            continue;
        fprintf(f, "usage: gryphgen %s --connect ENDPOINT [--name NAME] %s\n"
                   "       [--key FILE --server-key Z85|FILE] [--insecure]\n"
                   "%s.\n"
                   "  --connect ENDPOINT  the orchestrator (`gryphgen serve`), e.g. "
                   "tcp://127.0.0.1:5555;\n"
                   "                      or EP1,EP2: a primary and its backup (the active one "
                   "is used)\n"
                   "  --name NAME         the submitter's name, for fair share (default "
                   "user@host)\n"
                   "  --key FILE          this client's CURVE key pair (`gryphgen keygen`)\n"
                   "  --server-key KEY    the orchestrator's public key (Z85 text or its .pub "
                   "file)\n"
                   "  --insecure          no encryption (loopback endpoints only)\n",
                cmd, usages[i].args, usages[i].what);
    }
}

/* Parses the options every client command has; returns -1 on a usage error, 1 when the
 * usage was asked for (and printed). */
static int common_opts(const char *cmd, int argc, char **argv, const char *shortopts,
                       const struct option *longopts, const char **connect, const char **name,
                       int *wait, unsigned *timeout_ms)
{
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        switch (c) {
        case OPT_CONNECT:
            *connect = optarg;
            break;
        case OPT_NAME:
            *name = optarg;
            break;
        case OPT_WAIT:
            *wait = 1;
            break;
        case OPT_TIMEOUT:
            if (cli_parse_uint("--timeout-ms", optarg, 0, 2000000000u, timeout_ms) != 0)
                return -1;
            break;
        case 'h':
        case CLI_OPT_HELP:
            client_usage(cmd, stdout);
            return 1;
        default:
            if (c != '?' && c != ':') {
                int handled = cli_security_option(c, optarg);
                if (handled > 0)
                    break;
                if (handled < 0)
                    return -1;
            }
            cli_bad_option(cmd, c, argv, optind, optopt);
            return -1;
        }
    }
    if (!*connect || !**connect) {
        cli_errorf("%s: give --connect ENDPOINT (e.g. tcp://127.0.0.1:5555)", cmd);
        return -1;
    }
    return 0;
}

static const struct option client_longopts[] = {
    {"connect", required_argument, NULL, OPT_CONNECT},
    {"name", required_argument, NULL, OPT_NAME},
    {"wait", no_argument, NULL, OPT_WAIT},
    {"timeout-ms", required_argument, NULL, OPT_TIMEOUT},
    CLI_SECURITY_LONG_OPTIONS,
    {"help", no_argument, NULL, CLI_OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* The exit code of a failed request: a refusal by the orchestrator (this key's role may not
 * send it) or a bad request is the caller's to fix (2); anything else is infrastructure (1). */
static int refused_status(int rc)
{
    return rc == GG_EUNSUPPORTED || rc == GG_EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_INFRA;
}

/* Sends one batch; prints the ids (or errors) in order. Returns an exit code. */
static int send_batch(gg_client_t *c, cJSON *batch, cJSON *all_ids)
{
    char *text = cJSON_PrintUnformatted(batch);
    if (!text) {
        cli_errorf("out of memory");
        return CLI_EXIT_INFRA;
    }
    char *reply = NULL;
    int rc;
    for (;;) {
        rc = gg_client_submit_batch(c, text, &reply);
        if (rc != GG_EBUSY || cli_interrupted)
            break;
        usleep(200 * 1000); /* the orchestrator's queue is full: wait and try again */
    }
    cJSON_free(text);
    if (rc != 0) {
        cli_errorf("submit: %s", gg_error_last());
        return refused_status(rc);
    }
    cJSON *r = cJSON_Parse(reply);
    gg_free(reply);
    const cJSON *id, *e;
    int status = CLI_EXIT_OK;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(r, "errors"))
    {
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
        cli_errorf("task %d of the batch: %s",
                   (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(e, "index")) + 1,
                   cJSON_IsString(msg) ? msg->valuestring : "refused");
        status = CLI_EXIT_USAGE;
    }
    cJSON_ArrayForEach(id, cJSON_GetObjectItemCaseSensitive(r, "ids"))
    {
        if (cJSON_IsString(id)) {
            printf("%s\n", id->valuestring);
            cJSON_AddItemToArray(all_ids, cJSON_CreateString(id->valuestring));
        }
    }
    fflush(stdout);
    cJSON_Delete(r);
    return status;
}

int cli_cmd_submit(int argc, char **argv)
{
    const char *connect = NULL, *name = NULL;
    int wait = 0, status = CLI_EXIT_OK;
    unsigned timeout_ms = NO_TIMEOUT;
    int r = common_opts("submit", argc, argv, ":h", client_longopts, &connect, &name, &wait,
                        &timeout_ms);
    if (r)
        return r > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    if (timeout_ms != NO_TIMEOUT && !wait) {
        cli_errorf("submit: --timeout-ms is how long --wait waits; give --wait too");
        return CLI_EXIT_USAGE;
    }
    if (timeout_ms == NO_TIMEOUT)
        timeout_ms = 0;
    if (argc - optind != 1) {
        cli_errorf("submit: give one task file (JSON lines; - reads stdin)");
        return CLI_EXIT_USAGE;
    }
    const char *path = argv[optind];
    int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cli_errorf("submit: cannot open '%s': %s", path, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    gg_client_t *c = NULL;
    jsonl_reader *reader = NULL;
    cJSON *batch = cJSON_CreateArray(), *ids = cJSON_CreateArray();
    size_t bytes = 0;
    cli_catch_signals();
    if ((status = cli_client_open(connect, name, &c)) != CLI_EXIT_OK)
        goto out;
    if (!batch || !ids || jsonl_reader_new(&reader, fd, CLI_MAX_TASK_BYTES) != 0) {
        cli_errorf("out of memory");
        status = CLI_EXIT_INFRA;
        goto out;
    }
    while (!cli_interrupted) {
        const char *line;
        size_t len;
        unsigned long long lineno;
        int kind = jsonl_reader_next(reader, &line, &len, &lineno);
        if (kind == JSONL_EOF)
            break;
        if (kind < 0 || kind == JSONL_TOO_LONG) {
            cli_errorf("submit: line %llu cannot be read", lineno);
            status = CLI_EXIT_USAGE;
            continue;
        }
        cJSON *t = cJSON_ParseWithLength(line, len);
        if (!cJSON_IsObject(t)) {
            cli_errorf("submit: line %llu is not a JSON object", lineno);
            cJSON_Delete(t);
            status = CLI_EXIT_USAGE;
            continue;
        }
        cJSON_AddItemToArray(batch, t);
        bytes += len;
        if (cJSON_GetArraySize(batch) >= SUBMIT_BATCH || bytes >= SUBMIT_BATCH_BYTES) {
            int s = send_batch(c, batch, ids);
            if (s != CLI_EXIT_OK)
                status = s;
            if (s == CLI_EXIT_INFRA)
                goto out;
            cJSON_Delete(batch);
            batch = cJSON_CreateArray();
            bytes = 0;
        }
    }
    if (batch && cJSON_GetArraySize(batch) > 0) {
        int s = send_batch(c, batch, ids);
        if (s != CLI_EXIT_OK)
            status = s;
        if (s == CLI_EXIT_INFRA)
            goto out;
    }
    if (wait) {
        const cJSON *id;
        cJSON_ArrayForEach(id, ids)
        {
            char *result = NULL;
            int rc = gg_client_wait(c, id->valuestring, timeout_ms ? (int)timeout_ms : -1,
                                    &result);
            if (rc != 0) {
                cli_errorf("task '%s': %s", id->valuestring, gg_error_last());
                status = CLI_EXIT_INFRA;
                break;
            }
            printf("%s\n", result);
            gg_free(result);
        }
    }
out:
    jsonl_reader_destroy(&reader);
    cJSON_Delete(batch);
    cJSON_Delete(ids);
    gg_client_destroy(&c);
    if (fd > STDIN_FILENO)
        close(fd);
    return status;
}

/*
 * The start of status, cancel and watch: parses the options, checks that between min_ids and
 * max_ids task ids follow (ids_usage says how many otherwise) and opens the client. *go is 1
 * when the command goes on with *c open; else the command is over with the returned status
 * (--help, bad usage, no connection).
 */
static int client_command_begin(const char *cmd, int argc, char **argv, int min_ids,
                                int max_ids, const char *ids_usage, unsigned *timeout_ms,
                                gg_client_t **c, int *go)
{
    const char *connect = NULL, *name = NULL;
    int wait = 0;
    *go = 0;
    *c = NULL;
    *timeout_ms = NO_TIMEOUT;
    int r = common_opts(cmd, argc, argv, ":h", client_longopts, &connect, &name, &wait,
                        timeout_ms);
    if (r)
        return r > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    /* The shared table knows every client option; refuse those this command has no use for. */
    if (wait || (*timeout_ms != NO_TIMEOUT && strcmp(cmd, "watch") != 0)) {
        cli_errorf("%s: %s is not an option of %s (see 'gryphgen %s --help')", cmd,
                   wait ? "--wait" : "--timeout-ms", cmd, cmd);
        return CLI_EXIT_USAGE;
    }
    if (*timeout_ms == NO_TIMEOUT)
        *timeout_ms = 0;
    if (argc - optind < min_ids || argc - optind > max_ids) {
        cli_errorf("%s: %s", cmd, ids_usage);
        return CLI_EXIT_USAGE;
    }
    int status = cli_client_open(connect, name, c);
    *go = status == CLI_EXIT_OK;
    return status;
}

int cli_cmd_status(int argc, char **argv)
{
    gg_client_t *c;
    unsigned timeout_ms = 0;
    int go, status = client_command_begin("status", argc, argv, 0, 1,
                                          "give at most one task id", &timeout_ms, &c, &go);
    if (!go)
        return status;
    char *out = NULL;
    int rc = gg_client_status(c, argc > optind ? argv[optind] : NULL, &out);
    if (rc == 0) {
        printf("%s\n", out);
    } else {
        cli_errorf("status: %s", gg_error_last());
        status = rc == GG_ENOTFOUND ? CLI_EXIT_USAGE : refused_status(rc);
    }
    gg_free(out);
    gg_client_destroy(&c);
    return status;
}

int cli_cmd_cancel(int argc, char **argv)
{
    gg_client_t *c;
    unsigned timeout_ms = 0;
    int go, status = client_command_begin("cancel", argc, argv, 1, 1, "give one task id",
                                          &timeout_ms, &c, &go);
    if (!go)
        return status;
    int rc = gg_client_cancel(c, argv[optind]);
    if (rc != 0) {
        cli_errorf("cancel: %s", gg_error_last());
        status = rc == GG_ENOTFOUND || rc == GG_ESTATE ? CLI_EXIT_USAGE : refused_status(rc);
    }
    gg_client_destroy(&c);
    return status;
}

static int print_event(void *user, const char *event_json)
{
    (void)user;
    printf("%s\n", event_json);
    fflush(stdout);
    return cli_interrupted;
}

int cli_cmd_watch(int argc, char **argv)
{
    gg_client_t *c;
    unsigned timeout_ms = 0;
    int go, status = client_command_begin("watch", argc, argv, 0, 0, "takes no task id",
                                          &timeout_ms, &c, &go);
    if (!go)
        return status;
    cli_catch_signals();
    /* In slices, so that an interrupt is noticed even when no event comes. */
    double left = timeout_ms ? (double)timeout_ms : -1;
    while (!cli_interrupted && (left < 0 || left > 0)) {
        int slice = left < 0 || left > 500 ? 500 : (int)left;
        int rc = gg_client_watch(c, print_event, NULL, slice);
        if (rc != 0) {
            cli_errorf("watch: %s", gg_error_last());
            status = refused_status(rc);
            break;
        }
        if (left > 0)
            left -= slice;
    }
    gg_client_destroy(&c);
    return status;
}
