/*
 * scale.h - what `gryphgen scale` (scale.c) shares with its engines: the settings of a run,
 * and the small interface each engine implements (scale_slurm.c, scale_k8s.c). scale.c
 * decides how many workers the queue can use; an engine only counts its workers and moves
 * their number toward that target in its own way.
 */
#ifndef GG_CLI_SCALE_H
#define GG_CLI_SCALE_H

#include <stddef.h>

/* The most workers one scaler keeps, and the most options forwarded to each worker. */
#define SCALE_MAX_JOBS 10000
#define SCALE_MAX_WORKER_ARGS 256

/** The settings of one scaler, read by the engines. */
typedef struct scale_config {
    const char *id;          /* this scaler's id: tags its Slurm jobs (gryphgen-<id>) */
    const char *connect;     /* the orchestrator's endpoint, given to the workers */
    unsigned slots;          /* each worker's --slots (and a Slurm job's CPUs) */
    unsigned idle_s;         /* each worker's --idle-s */
    const char *worker_exe;  /* the gryphgen binary the workers run */
    /* options for `gryphgen worker` after --connect, --slots and --idle-s */
    const char *worker_args[SCALE_MAX_WORKER_ARGS + 1];
    unsigned n_worker_args;
    /* slurm: extra arguments for sbatch, in order */
    const char *sbatch_args[SCALE_MAX_WORKER_ARGS + 1];
    unsigned n_sbatch_args;
    /* kubernetes: the Deployment of workers and how to reach the API server */
    const char *k8s_namespace, *k8s_deployment, *k8s_server, *k8s_token_file, *k8s_ca,
        *kubeconfig;
} scale_config;

/** What an engine sees of its workers now. */
typedef struct scale_count {
    unsigned pending; /* asked for, not started yet (a pending job, a pod not ready) */
    unsigned running; /* started */
} scale_count;

typedef struct scale_engine scale_engine;

/** One engine. Every function returns 0, or prints why (cli_errorf) and returns -1. */
typedef struct scale_engine_vt {
    const char *name;
    /** Checks the settings and what the engine needs (commands, API server); *out. */
    int (*open)(scale_engine **out, const scale_config *cfg);
    /** Counts this scaler's workers. */
    int (*count)(scale_engine *e, scale_count *out);
    /**
     * Moves toward target workers from what count() saw (c): up by starting workers; down
     * only in ways that lose no work the engine cannot hand back (Slurm cancels pending
     * jobs only: running workers leave by --idle-s; Kubernetes lowers the replicas, its pods
     * get SIGTERM and hand their jobs back).
     */
    int (*apply)(scale_engine *e, const scale_count *c, unsigned target);
    /** Ends every worker this scaler started and waits (bounded) until none is left. */
    int (*stop_all)(scale_engine *e);
    void (*close)(scale_engine *e);
} scale_engine_vt;

extern const scale_engine_vt scale_slurm_engine; /* scale_slurm.c */
extern const scale_engine_vt scale_k8s_engine;   /* scale_k8s.c */

/**
 * Runs argv (argv[0] looked up on PATH) with stdin_text on its stdin (NULL: /dev/null),
 * and gives its stdout (at most 1 MiB, NUL-terminated, malloc'd) in *out when out is not
 * NULL; stderr goes to ours. Returns its exit status, or -1 when it could not run (printed).
 */
int scale_run(const char *const *argv, const char *stdin_text, char **out);

#endif
