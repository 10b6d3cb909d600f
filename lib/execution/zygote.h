/*
 * zygote.h - warm, already isolated Python interpreters that fork a fresh process per job.
 * A zygote is started once per (interpreter, job environment) inside the namespace sandbox
 * (a read-only root holding only the runtime, own network, IPC, UTS and PID namespaces) and
 * never runs job code itself.
 * Ahead of each job it starts PID 1 of a new PID namespace and the job's process in it:
 * PID 1 is the embedded init program (zinit.c, started with vfork and exec; the zygote forks
 * the job's process as PID 2) or, where that cannot be used (ggi_zygote_init_program), a
 * fork of the zygote that forks the job's process. The job's process enters new mount, IPC,
 * UTS and network namespaces and mounts a fresh /proc, then waits; with
 * its job it puts a size-capped tmpfs on /tmp with the job's workspace and files, enters a
 * user namespace of its own and runs the job's `-c` code as the unprivileged sandbox uid
 * with the job's rlimits and cgroup, so each job gets a fresh process and no state from
 * earlier jobs. Internal.
 *
 * THREAD SAFETY: a pool may be used from many threads at once.
 */
#ifndef GGI_ZYGOTE_H
#define GGI_ZYGOTE_H

#include <stdint.h>

#include "sandbox.h"
#include "spawn.h"

typedef struct ggi_zygote_pool ggi_zygote_pool;

/** Makes an empty pool (zygotes are started on first use). GG_ENOMEM only. */
int ggi_zygote_pool_new(ggi_zygote_pool **out);

/** Stops every zygote of the pool, frees it and NULLs *pp. Accepts NULL. */
void ggi_zygote_pool_destroy(ggi_zygote_pool **pp);

/** When each step of a zygote job began (CLOCK_MONOTONIC ms, ggi_now_ms; 0: unknown): the
 * host's side and what the zygote reported. For stage timings (bench/isolation.sh). The
 * first four are steps the zygote took ahead of the job, before it was sent. */
typedef struct ggi_zygote_times {
    double park;        /* zygote: began to make the job's PID 1 (unshare of a PID ns, fork) */
    double init;        /* PID 1 running (the init program: started) */
    double job;         /* the job's process forked (by PID 1, or by the zygote) */
    double parked;      /* its namespaces and /proc made: waiting for its job */
    double sent;        /* host: the job handed to the zygote */
    double received;    /* zygote: the job received (and handed on to a parked PID 1) */
    double handed;      /* the job's process: the job's descriptors in */
    double request;     /* its cgroup joined and the request read */
    double ready;       /* its tmpfs, workspace, files and user namespace made */
    double replied;     /* host: the "started" reply in */
    double reaped;      /* PID 1: the job's process reaped (the init program: its end seen) */
    double finished;    /* host: the end seen and the report read */
} ggi_zygote_times;

/** One job for a zygote: `python -c code args...` with the direct path's limits. */
typedef struct ggi_zygote_job {
    const char *python;          /* absolute path of the interpreter */
    const char *const *envp;     /* the job's environment (HOME and TMPDIR: the workspace) */
    const char *code;            /* argv[2] */
    const char *const *args;     /* argv[3...], NULL-terminated */
    const ggi_sandbox_spec *sb;  /* workspace, files, uid/gid, tmpfs size, cgroup fds */
    double cpu_s;                /* rlimits as in ggi_spawn_opts; 0: none */
    uint64_t as_bytes, fsize_bytes, nofile, nproc;
    ggi_zygote_times *times;     /* optional: filled with when each step began */
    /* With cgroup set, the job runs in a group of its own, made ahead and joined by the
     * job's process before its job came, limited to cg_memory bytes and cg_pids processes
     * (0: no limit); the group is handed back in *cg_out (the caller kills and destroys it),
     * NULL when the job never started. */
    int cgroup;
    uint64_t cg_memory, cg_pids;
    struct ggi_cgroup **cg_out;
} ggi_zygote_job;

/** Can this argv/environment be served by a zygote (`python -c CODE ...`, no variables that
 * change how the interpreter starts per job)? 1 or 0. python is the resolved argv[0]. */
int ggi_zygote_eligible(const char *const *argv, const char *const *envp);

/**
 * Runs the job on the zygote for (job->python, environment), starting it when needed. o
 * holds the I/O settings (stdin, timeout, output caps, cancel); its argv is used as a label.
 * Returns as ggi_spawn_run. When the zygote could not take the job before it started,
 * returns GG_EUNSUPPORTED with *fallback set: the caller runs the job the direct way.
 */
int ggi_zygote_run(ggi_zygote_pool *pool, const ggi_zygote_job *job, const ggi_spawn_opts *o,
                   ggi_spawn_result *res, int *fallback);

/** How many zygotes have been started by this pool (for tests). */
int ggi_zygote_pool_starts(ggi_zygote_pool *pool);

/**
 * Whether zygotes started from now on make their jobs' PID 1 the embedded init program
 * (zinit.c) and read each job's wait status from a pidfd of its process: the build embedded
 * one for this architecture, the kernel keeps exit statuses for pidfd holders (Linux 6.15),
 * jobs get cgroups (their peak memory is read there) and GRYPHGEN_ZINIT is not "0".
 * Otherwise PID 1 is a fork of the zygote that reports the status itself.
 */
int ggi_zygote_init_program(void);

/**
 * For tests: the bytes of the init program handed to zygotes started from now on instead of
 * the embedded one (NULL: the embedded one again; the bytes must outlive those zygotes). A
 * zygote whose init program cannot be started makes its jobs' PID 1 a fork of itself.
 */
void ggi_zygote_set_init_program(const char *bytes, size_t len);

#endif
