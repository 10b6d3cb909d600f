/*
 * main.c - the gryphgen command: the table of commands, the usage text, and dispatch.
 * Adding a command is one entry in `commands` plus its function.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);
int cli_cmd_index(int argc, char **argv);        /* index.c */
int cli_cmd_search(int argc, char **argv);       /* index.c */
int cli_cmd_search_serve(int argc, char **argv); /* index.c */
int cli_cmd_keygen(int argc, char **argv); /* keygen.c */

static const cli_command commands[] = {
    {"eval", cli_cmd_eval, "[OPTIONS] FILE|-",
     "run a task set (JSON lines; - reads stdin) and print a summary"},
    {"run", cli_cmd_run, "[OPTIONS] TASK.json",
     "run one task (a file holding one JSON object) and print its result"},
    {"keygen", cli_cmd_keygen, "[--out PREFIX]",
     "make a CURVE key pair for a grid node: PREFIX.key (secret) and PREFIX.pub"},
    {"index", cli_cmd_index, "[--db PATH] PATH...",
     "add source files and documents to the retrieval index (incremental)"},
    {"search", cli_cmd_search, "[--db PATH] [-k N] QUERY",
     "print the best-ranked chunks of the retrieval index for a query"},
    {"search-serve", cli_cmd_search_serve, "[--db PATH] [--listen A:P]",
     "serve GET /v1/search from the retrieval index over HTTP"},
    {"serve", cli_cmd_serve, "--bind ENDPOINT [--db PATH]",
     "run the orchestrator as a grid hub for remote workers and clients"},
    {"worker", cli_cmd_worker, "--connect ENDPOINT [--slots N] [--label K=V]",
     "run a grid worker that takes jobs from an orchestrator"},
    {"scale", cli_cmd_scale, "--connect ENDPOINT --engine slurm|kubernetes",
     "run workers as Slurm jobs or Kubernetes pods, as many as the queue needs"},
    {"submit", cli_cmd_submit, "--connect ENDPOINT [--wait] FILE|-",
     "submit tasks (JSON lines) to an orchestrator and print their ids"},
    {"status", cli_cmd_status, "--connect ENDPOINT [TASK_ID]",
     "print a task's status, or the orchestrator's counters and nodes"},
    {"cancel", cli_cmd_cancel, "--connect ENDPOINT TASK_ID", "cancel a task"},
    {"watch", cli_cmd_watch, "--connect ENDPOINT [--timeout-ms N]",
     "print the orchestrator's events as JSON lines"},
    {"doctor", cli_cmd_doctor, "[--json]",
     "print what isolation, cgroups and runtimes this host gives jobs, and why"},
    {"version", cmd_version, "", "print the versions of the command and the library"},
    {"help", cmd_help, "", "print this text"},
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

void cli_usage(FILE *f)
{
    fprintf(f, "usage: gryphgen COMMAND [OPTIONS] [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++) {
        char head[64];
        snprintf(head, sizeof head, "%s %s", commands[i].name, commands[i].args);
        if (strlen(head) > 28) /* its own line, the summary under it */
            fprintf(f, "  %s\n  %-28s %s\n", head, "", commands[i].summary);
        else
            fprintf(f, "  %-28s %s\n", head, commands[i].summary);
    }
    fprintf(f,
            "\noptions of eval and run:\n"
            "  --generator SPEC      replay (default: the task's candidates in order),\n"
            "                        reference (the task's canonical_solution),\n"
            "                        command:PROG (PROG gets the request JSON on stdin), or\n"
            "                        openai (an OpenAI-compatible chat-completions server,\n"
            "                        configured by $GRYPHGEN_LLM_URL, $GRYPHGEN_LLM_MODEL...)\n"
            "  --db PATH             SQLite database to keep tasks and attempts in; re-running\n"
            "                        a set on the same database resumes it (default: temporary)\n"
            "  --max-attempts N      attempts for tasks whose budget names none (1-100)\n"
            "  --python PATH         Python interpreter (default: $GRYPHGEN_PYTHON, python3)\n"
            "  --cc PATH             C compiler (default: $GRYPHGEN_CC, $CC, cc)\n"
            "  --isolation LEVEL     none, rlimits or namespaces: jobs run at LEVEL and never\n"
            "                        weaker (default: the strongest this host gives)\n"
            "  --log-level LEVEL     error, warn (default), info or debug\n"
            "  --log-format FORMAT   text (default) or json: one JSON object per line on\n"
            "                        stderr (time, level, component, message, task, node)\n"
            "\noptions of eval only:\n"
            "  --jobs N              tasks run at once (default: the number of cores)\n"
            "  --results PATH        write one JSON line per task, in the set's order\n"
            "  --quiet               no progress output\n"
            "  --connect ENDPOINT    run the set on a grid (`gryphgen serve`); the options of\n"
            "                        where tasks run then belong to serve and worker, and\n"
            "                        eval refuses them\n"
            "  --junit PATH          write a JUnit XML report, one testcase per task\n"
            "  --summary-json PATH   write the summary as JSON\n"
            "  --fail-under PERCENT  exit 1 when less than PERCENT (0-100) of the tasks passed\n"
            "  --patches DIR         write DIR/<task_id>.patch (git format-patch form) for each\n"
            "                        passing task that has a patch (workspace tasks)\n"
            "  --deliver branch      commit each passing workspace task's patch onto a new\n"
            "                        branch gryphgen/<task_id> of its local repository (a task's\n"
            "                        \"deliver\": {\"branch\": NAME} asks for it by itself)\n"
            "\noptions of worker (more: gryphgen worker --help):\n"
            "  --index-url URL       attempts get context from serve's search route (the URL\n"
            "                        `serve --index PATH --http ADDR:PORT` prints); serve's\n"
            "                        learner credits their outcomes into its index\n"
            "  --index-token-env VAR its bearer token (serve --http-token-env), from $VAR\n"
            "\nexecutors of worker (--executor NAME):\n"
            "  process               a sandboxed child process on this host (default)\n"
            "  container             a container of a Docker or Podman engine (its socket)\n"
            "  noop                  passes every job at once, runs nothing (benchmarks)\n"
            "\nexit status of eval and run: 0 when every task in the input was read and ran\n"
            "to its end, whatever it scored; 1 when the run itself failed (database, results\n"
            "file, the library), and for eval also when a delivery or a patch file failed or\n"
            "the share of passed tasks is under --fail-under; 2 on a usage error or bad\n"
            "input (an unknown option or bad value, an unreadable input,\n"
            "any line or task that is not a valid task: the valid ones still run and are\n"
            "reported); 130 when interrupted.\n");
}

static int cmd_version(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: gryphgen version\n"
               "Prints the versions of the command and of the library it runs on.\n");
        return CLI_EXIT_OK;
    }
    if (argc > 1) {
        cli_errorf("version: takes no arguments");
        return CLI_EXIT_USAGE;
    }
    printf("gryphgen %s (libgryphgen %s)\n", GG_VERSION_STRING, gg_version_string());
    return CLI_EXIT_OK;
}

static int cmd_help(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_usage(stdout);
    return CLI_EXIT_OK;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        cli_usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0)
        return cmd_version(1, argv + 1);
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(argv[1], commands[i].name) == 0) {
            int rc = commands[i].run(argc - 1, argv + 1);
            if (fflush(stdout) != 0 && rc == CLI_EXIT_OK) {
                cli_errorf("cannot write to stdout");
                rc = CLI_EXIT_INFRA;
            }
            return rc;
        }
    }
    cli_errorf("unknown command '%s' (try 'gryphgen help')", argv[1]);
    return CLI_EXIT_USAGE;
}
