/*
 * run.c - `gryphgen run`: runs one task read from a file (one JSON object, possibly
 * pretty-printed over many lines) and prints its result JSON, pretty-printed, on stdout.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"

#define WAIT_SLICE_MS 100

/*
 * Reads all of fd into a NUL-terminated buffer of at most limit bytes. Returns 0, -1 with
 * errno on a read error, or -2 when the input is over the limit.
 */
static int read_bounded(int fd, size_t limit, char **out, size_t *out_len)
{
    size_t cap = 64 * 1024, len = 0;
    char *buf = malloc(cap);
    *out = NULL;
    if (!buf)
        return -1;
    for (;;) {
        ssize_t n;
        if (cap - len < 2) {
            size_t ncap = cap * 2;
            char *p;
            if (ncap > limit + 2)
                ncap = limit + 2;
            p = ncap > cap ? realloc(buf, ncap) : NULL;
            if (!p) {
                free(buf);
                if (ncap <= cap)
                    return -2;
                errno = ENOMEM;
                return -1;
            }
            buf = p;
            cap = ncap;
        }
        n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            free(buf);
            return -1;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > limit) {
            free(buf);
            return -2;
        }
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return 0;
}

/* Reads the task file (or stdin for "-"). Returns 0 or an exit code after printing why. */
static int read_task_file(const char *path, char **out)
{
    int fd = STDIN_FILENO, rc;
    size_t len = 0;
    struct stat st;

    if (strcmp(path, "-") != 0) {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            cli_errorf("run: cannot open '%s': %s", path, strerror(errno));
            return CLI_EXIT_USAGE;
        }
        if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
            cli_errorf("run: '%s' is a directory, not a task file", path);
            close(fd);
            return CLI_EXIT_USAGE;
        }
    }
    rc = read_bounded(fd, CLI_MAX_TASK_BYTES, out, &len);
    if (fd != STDIN_FILENO)
        close(fd);
    if (rc == -2) {
        cli_errorf("run: '%s' is over the limit of %zu bytes", path, CLI_MAX_TASK_BYTES);
        return CLI_EXIT_USAGE;
    }
    if (rc != 0) {
        cli_errorf("run: cannot read '%s': %s", path, strerror(errno));
        return CLI_EXIT_INFRA;
    }
    if (strlen(*out) != len) {
        cli_errorf("run: '%s' holds a NUL byte", path);
        free(*out);
        *out = NULL;
        return CLI_EXIT_USAGE;
    }
    return 0;
}

static void run_usage(FILE *f)
{
    fprintf(f, "usage: gryphgen run [--generator SPEC] [--db PATH] [--max-attempts N]\n"
               "                    [--python PATH] [--cc PATH] [--isolation LEVEL]\n"
               "                    [--zygote on|off] [--max-tokens N] [--llm-...]\n"
               "                    [--log-level LEVEL] [--log-format text|json] TASK.json|-\n"
               "(see 'gryphgen help' for what each option does)\n");
}

/* Prints the result pretty-printed; falls back to the text as it is. */
static int print_result(const char *result)
{
    cJSON *r = cJSON_Parse(result);
    char *pretty = r ? cJSON_Print(r) : NULL;
    int ok = printf("%s\n", pretty ? pretty : result) >= 0;
    cJSON_free(pretty);
    cJSON_Delete(r);
    return ok ? 0 : -1;
}

int cli_cmd_run(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_PIPELINE_LONG_OPTIONS,
        {"help", no_argument, NULL, CLI_OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    cli_log_component = "run";
    cli_run_options opts;
    char *task = NULL, *id = NULL, *result = NULL;
    gg_generator_t *gen = NULL;
    gg_orchestrator_t *orch = NULL;
    int c, status, rc;

    cli_run_options_init(&opts);
    opts.jobs = 1;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        int handled;
        if (c == 'h' || c == CLI_OPT_HELP) {
            run_usage(stdout);
            return CLI_EXIT_OK;
        }
        if (c == '?' || c == ':')
            return cli_bad_option("run", c, argv, optind, optopt);
        handled = cli_run_option(&opts, c, optarg);
        if (handled < 0)
            return CLI_EXIT_USAGE;
        if (handled == 0)
            return cli_bad_option("run", c, argv, optind, optopt);
    }
    if (argc - optind != 1) {
        cli_errorf(argc - optind == 0 ? "run: which task? give a TASK.json file, or - for stdin"
                                      : "run: give one task file, not %d", argc - optind);
        run_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    status = read_task_file(argv[optind], &task);
    if (status != 0)
        return status;

    cli_catch_signals();
    status = cli_orchestrator_open(&opts, NULL, NULL, &gen, &orch);
    if (status != CLI_EXIT_OK)
        goto out;
    cli_warm_python_for(task, strlen(task));
    rc = gg_orchestrator_submit(orch, task, &id);
    if (rc != 0) {
        const char *msg = gg_error_last();
        cli_errorf("run: %s: %s", argv[optind], *msg ? msg : gg_strerror(rc));
        status = rc == GG_EINVAL || rc == GG_ETOOBIG || rc == GG_EEXIST ||
                         rc == GG_EUNSUPPORTED
                     ? CLI_EXIT_USAGE
                     : CLI_EXIT_INFRA;
        goto out;
    }
    while ((rc = gg_orchestrator_wait(orch, id, WAIT_SLICE_MS, &result)) == GG_ETIMEDOUT &&
           !cli_interrupted)
        ;
    if (rc == GG_ETIMEDOUT && cli_interrupted) {
        cli_errorf(opts.db_path ? "interrupted; the task resumes when run again with the same "
                                  "--db"
                                : "interrupted");
        status = CLI_EXIT_SIGINT;
        goto out;
    }
    if (rc != 0) {
        const char *msg = gg_error_last();
        cli_errorf("run: waiting for task '%s' failed: %s", id, *msg ? msg : gg_strerror(rc));
        status = CLI_EXIT_INFRA;
        goto out;
    }
    if (print_result(result) != 0) {
        cli_errorf("cannot write to stdout");
        status = CLI_EXIT_INFRA;
    }

out:
    gg_orchestrator_destroy(&orch);
    gg_generator_destroy(&gen);
    gg_free(result);
    gg_free(id);
    free(task);
    return status;
}
