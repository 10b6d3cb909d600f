/*
 * cli.h - what the parts of the gryphgen command share: the command table entry, exit codes,
 * the options common to the commands that run tasks, and the helpers that parse them and
 * turn them into a generator and an orchestrator. The command is built on the public API of
 * libgryphgen only.
 */
#ifndef GG_CLI_H
#define GG_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "gryphgen.h"

/* Exit codes of the command. */
#define CLI_EXIT_OK 0      /* every task ran, whatever it scored */
#define CLI_EXIT_INFRA 1   /* the database, a runtime or the library failed */
#define CLI_EXIT_USAGE 2   /* unknown option, missing file, bad number, bad task file */
#define CLI_EXIT_SIGINT 130

/* The largest line of a task set and the largest task file; larger ones are not read. */
#define CLI_MAX_TASK_BYTES ((size_t)8 << 20)

/** One command of the dispatch table in main.c. */
typedef struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the command's name */
    const char *args;                  /* argument synopsis for the usage text */
    const char *summary;               /* one line for the usage text */
} cli_command;

/** Options shared by the commands that run tasks (eval, run). */
typedef struct cli_run_options {
    const char *generator;  /* "replay" (default), "reference" or "command:PROG" */
    const char *db_path;    /* NULL: a temporary database */
    unsigned jobs;          /* 0: the number of cores */
    unsigned max_attempts;  /* 0: the library's default */
    const char *python;     /* NULL: the library's default */
    const char *cc;         /* NULL: the library's default */
    int log_level;          /* gg_log_level */
    int quiet;
    const char *isolation;  /* --isolation: level and minimum of the jobs; NULL: default */
    /* Settings that were the environment's only, now options too (docs/configuration.md);
     * each unset value leaves the library to read the environment. */
    long long max_tokens;   /* --max-tokens: the run's token budget; 0: unset */
    int zygote;             /* --zygote on|off: 1, -1; 0: unset */
    const char *llm_arms;   /* --llm-arms SPEC */
    const char *llm_journal; /* --llm-journal PATH (worker: also --journal) */
    long long llm_bandit_seed; /* --llm-bandit-seed N; -1: unset */
    double llm_cost_per_second; /* --llm-cost-per-second C; -1: unset */
} cli_run_options;

/** The generator options the shared flags set (spec and the openai backend's settings). */
void cli_generator_options_fill(const cli_run_options *o, gg_generator_options *g);

/** Fills *o with the defaults. */
void cli_run_options_init(cli_run_options *o);

/** Prints "gryphgen: <message>" and a newline on stderr (under the output lock). */
void cli_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Writes all len bytes of data to fd (short writes continued, EINTR retried): 0, or -1 with
 * errno set. (The library's ggi_write_all is internal; the command links the public API.) */
int cli_write_all(int fd, const void *data, size_t len);

/**
 * Parses a decimal unsigned number from lo to hi for option name; on failure prints why and
 * returns -1.
 */
int cli_parse_uint(const char *name, const char *text, unsigned lo, unsigned hi,
                   unsigned *out);

/**
 * Handles one of the shared options by its getopt_long value (see CLI_RUN_LONG_OPTIONS).
 * Returns 1 when handled, 0 when c is not a shared option, -1 on a bad value (printed).
 */
int cli_run_option(cli_run_options *o, int c, const char *arg);

/* getopt_long values of the shared options, and their table entries. */
enum {
    CLI_OPT_GENERATOR = 0x100,
    CLI_OPT_DB,
    CLI_OPT_JOBS,
    CLI_OPT_MAX_ATTEMPTS,
    CLI_OPT_PYTHON,
    CLI_OPT_CC,
    CLI_OPT_LOG_LEVEL,
    CLI_OPT_QUIET,
    CLI_OPT_RESULTS,
    CLI_OPT_HELP,
    CLI_OPT_ISOLATION,
    CLI_OPT_LOG_FORMAT,
    CLI_OPT_MAX_TOKENS,
    CLI_OPT_ZYGOTE
};
/* The table entries of --max-tokens N (eval, run, serve) and --zygote on|off (eval, run,
 * worker), handled by cli_run_option(). */
#define CLI_MAX_TOKENS_LONG_OPTION {"max-tokens", required_argument, NULL, CLI_OPT_MAX_TOKENS}
#define CLI_ZYGOTE_LONG_OPTION {"zygote", required_argument, NULL, CLI_OPT_ZYGOTE}

/* The table entry of --log-format (text or json), handled by cli_run_option(). */
#define CLI_LOG_FORMAT_LONG_OPTION {"log-format", required_argument, NULL, CLI_OPT_LOG_FORMAT}

/* The options of a command that runs the pipeline in this process (eval, run): the
 * generator and its settings, the database, the budgets, the toolchains, the isolation and
 * the logs, all handled by cli_run_option(). */
#define CLI_PIPELINE_LONG_OPTIONS                                       \
    {"generator", required_argument, NULL, CLI_OPT_GENERATOR},          \
    CLI_LLM_LONG_OPTIONS,                                               \
    {"db", required_argument, NULL, CLI_OPT_DB},                        \
    {"max-attempts", required_argument, NULL, CLI_OPT_MAX_ATTEMPTS},    \
    {"python", required_argument, NULL, CLI_OPT_PYTHON},                \
    {"cc", required_argument, NULL, CLI_OPT_CC},                        \
    {"isolation", required_argument, NULL, CLI_OPT_ISOLATION},          \
    CLI_ZYGOTE_LONG_OPTION,                                             \
    CLI_MAX_TOKENS_LONG_OPTION,                                         \
    {"log-level", required_argument, NULL, CLI_OPT_LOG_LEVEL},          \
    CLI_LOG_FORMAT_LONG_OPTION

/**
 * Reports an unknown option ('?') or a missing value (':') the way getopt_long left them
 * (opterr off, optstring starting with ':') and returns CLI_EXIT_USAGE.
 */
int cli_bad_option(const char *command, int c, char **argv, int optind_now, int optopt_now);

/**
 * Warms the interpreter of Python jobs (their zygote) in the background when task (JSON
 * text, len bytes) is the first Python task the command reads; once per run, and only with
 * the default executor (--isolation and --zygote check the interpreter at start-up). A set
 * without a Python task starts no interpreter. Call from the reading thread.
 */
void cli_warm_python_for(const char *task, size_t len);

/**
 * Creates the generator and the orchestrator the options describe, with the log callback
 * writing to stderr and the given event callback. On failure prints why and returns the
 * exit code (CLI_EXIT_USAGE for a bad generator spec, CLI_EXIT_INFRA otherwise); both
 * outputs are then NULL.
 */
int cli_orchestrator_open(const cli_run_options *o, gg_event_fn event_fn, void *event_user,
                          gg_generator_t **out_gen, gg_orchestrator_t **out_orch);

/**
 * Locks and unlocks stderr against concurrent log lines and progress redraws. The progress
 * display registers a clear function that is called (under the lock) before a log line is
 * written, so a bar on a terminal is wiped first and drawn again later.
 */
void cli_output_lock(void);
void cli_output_unlock(void);
void cli_output_set_clear(void (*clear)(void *user), void *user);

/** The log callback: "gryphgen: warn: message" on stderr, or a JSON line with
 *  --log-format json. */
void cli_log_stderr(void *user, int level, const char *message);

/** Like cli_errorf() for a notice that is not an error (level "info" in JSON lines). */
void cli_noticef(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* --log-format json (log_json.c): set by cli_log_format_parse(); lines name
 * cli_log_component (the command: "serve", "worker", ...) unless they name their own. */
extern int cli_log_json;
extern const char *cli_log_component;
/** Parses "text" or "json"; prints why and returns -1 for anything else. */
int cli_log_format_parse(const char *arg);
/** Writes one JSON log line on stderr (the caller holds the output lock). */
void cli_log_json_line(const char *level, const char *message);

/* Set by SIGINT/SIGTERM; commands that wait poll it. */
extern volatile int cli_interrupted;
/** Installs the SIGINT/SIGTERM handler that sets cli_interrupted. */
void cli_catch_signals(void);

/* The commands. */
int cli_cmd_eval(int argc, char **argv);
int cli_cmd_run(int argc, char **argv);
int cli_cmd_doctor(int argc, char **argv);
/* The grid's commands (serve.c, worker.c, client_cmds.c). */
int cli_cmd_serve(int argc, char **argv);

/** Opens the fts5 index (retriever) in db; weight/exploration < 0 keep the defaults.
 *  Prints the error and returns CLI_EXIT_INFRA on failure (index.c). */
int cli_open_index(const char *db, double weight, double exploration, gg_retriever_t **out);

/** Parses ADDRESS:PORT or [V6]:PORT; prints "WHAT wants ..." and returns CLI_EXIT_USAGE on
 *  a bad value (index.c). */
int cli_parse_listen(const char *what, const char *listen, char *host, size_t host_size,
                     unsigned *port);
/** 0 when host (an address literal) is loopback; else prints why an HTTP server there needs
 *  a token, naming option (the way to give one), and returns 1 (index.c). */
int cli_http_needs_token(const char *what, const char *host, const char *option);
/** Reads a TLS certificate chain and private key (PEM files; the key must not be readable by
 *  group or others) into malloc'd texts; both NULL when neither file is given. Prints why
 *  and returns CLI_EXIT_USAGE on a problem (index.c). */
int cli_read_tls(const char *what, const char *cert_file, const char *key_file, char **cert,
                 char **key);
/** Frees what cli_read_tls() returned, wiping the key. */
void cli_free_tls(char **cert, char **key);
int cli_cmd_worker(int argc, char **argv);
int cli_cmd_scale(int argc, char **argv); /* scale.c */
int cli_cmd_submit(int argc, char **argv);
int cli_cmd_status(int argc, char **argv);
int cli_cmd_cancel(int argc, char **argv);
int cli_cmd_watch(int argc, char **argv);
/** Connects a client (printing why not); returns an exit code. */
int cli_client_open(const char *endpoint, const char *name, gg_client_t **out);
/* The grid's security options (client_cmds.c): --key FILE (alias --curve-key),
 * --server-key Z85|FILE, --authorized-keys FILE (serve only) and --insecure. */
enum { CLI_OPT_KEY = 0x180, CLI_OPT_SERVER_KEY, CLI_OPT_AUTHORIZED_KEYS, CLI_OPT_INSECURE };
#define CLI_SECURITY_LONG_OPTIONS                                   \
    {"key", required_argument, NULL, CLI_OPT_KEY},                  \
    {"curve-key", required_argument, NULL, CLI_OPT_KEY},            \
    {"server-key", required_argument, NULL, CLI_OPT_SERVER_KEY},    \
    {"insecure", no_argument, NULL, CLI_OPT_INSECURE}
/* The openai generator's per-run settings, shared by eval, run, serve and worker: the first
 * two set the environment variable the generator reads (docs/generator.md), so a flag and
 * the variable are the same setting; the others fill the generator's options, which win over
 * the environment (cli_generator_options_fill). */
enum {
    CLI_OPT_LLM_TIMEOUT = 0x1c0,
    CLI_OPT_LLM_MAX_TOKENS,
    CLI_OPT_LLM_ARMS,
    CLI_OPT_LLM_JOURNAL,
    CLI_OPT_LLM_BANDIT_SEED,
    CLI_OPT_LLM_COST_PER_SECOND
};
#define CLI_LLM_LONG_OPTIONS                                                  \
    {"llm-timeout", required_argument, NULL, CLI_OPT_LLM_TIMEOUT},           \
    {"llm-max-tokens", required_argument, NULL, CLI_OPT_LLM_MAX_TOKENS},     \
    {"llm-arms", required_argument, NULL, CLI_OPT_LLM_ARMS},                 \
    {"llm-journal", required_argument, NULL, CLI_OPT_LLM_JOURNAL},           \
    {"llm-bandit-seed", required_argument, NULL, CLI_OPT_LLM_BANDIT_SEED},   \
    {"llm-cost-per-second", required_argument, NULL, CLI_OPT_LLM_COST_PER_SECOND}
typedef struct cli_security {
    const char *key_file;        /* this process's key pair (PREFIX.key) */
    const char *server_key;      /* the orchestrator's public key (peers) */
    const char *authorized_keys; /* the admitted keys (serve) */
    int insecure;
} cli_security;
/** The security options given to this command (one command per process). */
extern cli_security cli_sec;
/** Handles a security option by its getopt_long value: 1 handled, 0 not one, -1 bad. */
int cli_security_option(int c, const char *arg);
/**
 * Applies the rule for unencrypted operation (gryphgen/security.h) to an endpoint with the
 * options given: prints why and returns CLI_EXIT_USAGE when refused, else CLI_EXIT_OK.
 */
int cli_security_check(const char *command, const char *endpoint);
/** A task's result when it has ended; GG_EAGAIN while it runs. */
int cli_client_result(gg_client_t *c, const char *task_id, char **out_result);

/** Prints the usage text (all commands and options) on f. */
void cli_usage(FILE *f);

#endif
