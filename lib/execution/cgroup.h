/*
 * cgroup.h - one control group per job (cgroup v1 controllers or the v2 unified hierarchy),
 * made below the host process's own groups: memory limit (swap included when the host
 * accounts it), process-count limit, out-of-memory kill count, kill-all, and removal.
 * Internal.
 *
 * THREAD SAFETY: ggi_cgroup_probe may be called from any thread (computed once); one
 * ggi_cgroup belongs to one job and one thread.
 */
#ifndef GGI_CGROUP_H
#define GGI_CGROUP_H

#include <stdint.h>

/** What the host's cgroups allow; filled once. */
typedef struct ggi_cgroup_caps {
    int version;         /* 1 or 2 when usable, 0 when not */
    int memory, pids;    /* the controller is writable */
    int swap;            /* swap is accounted (memsw / memory.swap.max) */
    char why[320];       /* a sentence for `gryphgen doctor` */
} ggi_cgroup_caps;

/** Probes once (makes and removes a test group) and returns the result. */
const ggi_cgroup_caps *ggi_cgroup_probe(void);

typedef struct ggi_cgroup ggi_cgroup;

/**
 * Makes a job's group with the given limits (0: no limit). GG_EUNSUPPORTED when cgroups are
 * not usable, GG_EIO when making or configuring it fails.
 */
int ggi_cgroup_new(ggi_cgroup **out, uint64_t memory_bytes, uint64_t pids_max);

/**
 * Opens the groups' cgroup.procs files for writing (close-on-exec) into fds (at most max);
 * a process writing "0" into each joins the job's group. Returns the count or GG_EIO.
 */
int ggi_cgroup_open_procs(ggi_cgroup *cg, int *fds, int max);

/** The group's number (the n of its name gg-job-<pid>-<n>; unique in this process). */
unsigned long ggi_cgroup_id(const ggi_cgroup *cg);

/**
 * Opens the files that set the group's limits for writing (close-on-exec) into fds (at most
 * max), in a fixed order: memory limit, swap limit (when accounted), process limit. A group
 * made ahead of its job is limited through them once its job's limits are known (the
 * descriptors keep the host's right to write them). Returns the count or GG_EIO.
 */
int ggi_cgroup_open_limits(ggi_cgroup *cg, int *fds, int max);

/**
 * The values to write, in the order of ggi_cgroup_open_limits, for these limits (0: none).
 * Returns the count.
 */
int ggi_cgroup_limit_values(uint64_t memory_bytes, uint64_t pids_max, char vals[][24], int max);

/** How many processes the kernel's OOM killer killed in the group. */
long ggi_cgroup_oom_kills(const ggi_cgroup *cg);

/** The group's peak memory use in KiB (its processes' pages and the files they wrote to
 * tmpfs; v2 memory.peak, v1 memory.max_usage_in_bytes); 0 when unknown. */
long ggi_cgroup_peak_kb(const ggi_cgroup *cg);

/** SIGKILLs every process in the group (a few rounds, for processes being forked). */
void ggi_cgroup_kill(ggi_cgroup *cg);

/** Kills what is left, removes the group (waiting briefly for it to empty), frees, NULLs. */
void ggi_cgroup_destroy(ggi_cgroup **pcg);

#endif
