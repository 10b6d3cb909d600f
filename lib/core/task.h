/*
 * task.h - the task format: parsing and validating task JSON (native and HumanEval lines)
 * into a ggi_task, and writing its normalised JSON. Limits on every field. Internal.
 */
#ifndef GGI_TASK_H
#define GGI_TASK_H

#include <stddef.h>

#include "ggi.h"

/* Limits (bytes, counts). Exceeding one is GG_ETOOBIG naming the field. */
/* One task's JSON text. A resolved workspace task carries its base as a packfile
 * (GGI_WS_MAX_PACK, 12 MiB, is 16 MiB in base64) beside its other fields: 24 MiB holds it. */
#define GGI_TASK_MAX_JSON (24u << 20)
#define GGI_TASK_MAX_ID 256
#define GGI_TASK_MAX_TEXT (1u << 20)       /* prompt, stub, test, canonical_solution, each candidate */
#define GGI_TASK_MAX_CANDIDATES 64
#define GGI_TASK_MAX_ATTEMPTS 100
#define GGI_TASK_MAX_TOKENS 1000000000000LL /* budget.tokens */
#define GGI_TASK_MAX_COMMAND_ARGS 256      /* test_command, setup_command as argv */
#define GGI_TASK_MAX_COMMAND_BYTES (64u << 10) /* all of a command's text */
#define GGI_TASK_MAX_BRANCH 256            /* deliver.branch */
#define GGI_TASK_MAX_REQUIRES 32           /* names in "requires" */
#define GGI_TASK_MAX_REQUIRE_BYTES 128     /* one name of "requires" (GGP_MAX_NAME) */

typedef struct ggi_task {
    char *task_id;            /* NULL when the JSON had none (the caller assigns one) */
    char *language;           /* "python" or "c" */
    char *prompt;             /* the instruction ("" when absent) */
    char *stub;               /* code the completion continues, or NULL */
    char *entry_point;        /* or NULL */
    char *test;               /* or NULL (then passing means: runs without error) */
    char **candidates;        /* n_candidates strings, for the replay generator */
    size_t n_candidates;
    char *canonical_solution; /* or NULL */
    int max_attempts;         /* 0: the orchestrator's default */
    double wall_s;            /* 0: no wall budget */
    long long tokens;         /* generator tokens (responses' usage) for the task; 0: no limit */
    double timeout_s;         /* per execution; 0: the default */
    int memory_mb;            /* 0: the default */
    double cpu_s;             /* 0: the default */
    int priority;             /* higher runs first; default 0 */
    int humaneval;            /* 1 when read from a HumanEval line */
    cJSON *requirements;      /* {"labels": {k: v}, "gpus": n} for the grid's scheduler, or NULL */
    char *isolation;          /* the minimum isolation level its jobs need ("none", "rlimits",
                               * "namespaces", "container"), or NULL */
    cJSON *requires;          /* "requires": names of libraries a worker must have
                               * ("go:...", "rust:...", "npm:...", or a system library), or
                               * NULL when it names none */
    /* Workspace tasks (docs/tasks.md, "Workspace tasks"); all NULL for other tasks. */
    cJSON *workspace;         /* as ggi_ws_check accepts it (resolved: with commit, pack) */
    cJSON *test_command;      /* an array of strings (argv) or a string (run by sh -c);
                               * required with a workspace, refused without one */
    cJSON *setup_command;     /* same forms, optional */
    cJSON *deliver;           /* {"branch": name}, for delivery (gryphgen/workspace.h) */
    char *canonical_patch;    /* a diff or {"files": ...} text, for the reference generator */
} ggi_task;

/**
 * Parses one task from JSON text. A native task needs "language"; a line without it that has
 * HumanEval's fields (prompt, canonical_solution, test, entry_point) is a HumanEval problem:
 * Python, with its prompt also as its stub. Unknown fields are ignored. Errors (GG_EINVAL,
 * GG_ETOOBIG) name the task (when its id could be read) and the field, e.g.
 * "task 'x': field 'budget.max_attempts' must be an integer from 1 to 100".
 */
int ggi_task_parse(const char *json, size_t len, ggi_task **out);

/** Same, from an already parsed object. */
int ggi_task_from_json(const cJSON *obj, ggi_task **out);

/** A check of a task's "workspace" beyond its shape: 0, or an error code with the message set
 * (naming the field). */
typedef int (*ggi_task_workspace_check_fn)(const cJSON *ws);

/**
 * Registers the check the task reader runs on a "workspace" after checking its shape (an
 * object with one of repo, dir or files, and only known keys): lib/workspace registers
 * ggi_ws_check when it is linked in (a constructor), so lib/core does not depend on it.
 * NULL: the shape only. Thread-safe (an atomic pointer).
 */
void ggi_task_set_workspace_check(ggi_task_workspace_check_fn fn);

/** The normalised task as a cJSON object (every field, defaults filled); NULL on ENOMEM. */
cJSON *ggi_task_to_json(const ggi_task *t);

/**
 * The same task with only what it sets: no nulls, no empty candidates, budget or resources,
 * no priority 0 or humaneval false. ggi_task_from_json reads it back to the same task (the
 * same ggi_task_to_json), in a quarter of the bytes and JSON values for a small task: what
 * the grid stores and sends with every job. NULL on ENOMEM.
 */
cJSON *ggi_task_to_json_compact(const ggi_task *t);

/** Turns a tree of ggi_task_to_json into that compact form, in place (NULL: nothing). */
void ggi_task_json_compact(cJSON *o);

/**
 * What a scheduler needs of a task beyond its language, as compact JSON: the keys
 * max_attempts, wall_s, tokens, memory_mb, gpus, labels, isolation and requires, each only
 * when the task sets it. *out is NULL when it sets none (the common case), else malloc'd.
 * GG_OK or GG_ENOMEM.
 */
int ggi_task_needs(const ggi_task *t, char **out);

/**
 * The argv of a task's test_command or setup_command value: an array as it is, a string as
 * ["sh", "-c", string]. *out is a new array (cJSON_Delete it); GG_EINVAL when cmd is neither,
 * GG_ENOMEM.
 */
int ggi_task_command_argv(const cJSON *cmd, cJSON **out);

/** Frees a task. Accepts NULL. */
void ggi_task_free(ggi_task *t);

#endif
