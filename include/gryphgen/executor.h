/*
 * gryphgen/executor.h - SYMAUG: runs jobs (programs with their files) on a target, with limits.
 *
 * A job and its result cross this API as JSON (docs/executor.md):
 *   request  {"argv": [...], "files": [{"path","content"}], "env": {...}, "stdin": "...",
 *             "limits": {"timeout_s", "cpu_s", "memory_mb", "max_output", "nproc", "nofile",
 *             "fsize_mb"}}
 *   result   {"exit_code", "signal", "timed_out", "duration_ms", "max_rss_kb",
 *             "stdout", "stdout_truncated", "stderr", "stderr_truncated"}
 *
 * THREAD SAFETY: gg_executor_run() may be called concurrently from many threads on one
 * executor; gg_executor_interrupt() may be called from any thread at any time.
 * gg_executor_destroy() must not race with other calls on the same executor.
 */
#ifndef GRYPHGEN_EXECUTOR_H
#define GRYPHGEN_EXECUTOR_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** An executor: the built-in "process" backend or a host's vtable (gryphgen/sys/executor.h). */
typedef struct gg_executor gg_executor_t;

/** Version of gg_executor_options this header describes. */
#define GG_EXECUTOR_OPTIONS_VERSION 3 /* 2 added container_socket and the fields after it;
                                        3 zygote */

/** Options for gg_executor_new(). Fields are only ever appended. */
typedef struct gg_executor_options {
    uint32_t version;          /**< GG_EXECUTOR_OPTIONS_VERSION */
    const char *backend;       /**< "process" (default when NULL) or "container" */
    const char *workdir_root;  /**< where job workspaces are made; NULL: $TMPDIR or /tmp */
    size_t max_output;         /**< default cap per stream in bytes; 0: 64 KiB */
    double default_timeout_s;  /**< when a request gives none; 0: 10 s */
    /** Backend "container": the engine's unix socket (a path or unix://path); NULL:
     *  $DOCKER_HOST when it is unix://..., else /var/run/docker.sock, else
     *  /run/podman/podman.sock (the first that exists). */
    const char *container_socket;
    /** Backend "container": image per language, "python=img:tag,c=img:tag" or a JSON object
     *  {"python": "img:tag"} or {"python": {"image": ..., "interpreter": ...}}; key "*" is
     *  the fallback. NULL: "python=gryphgen-python:latest,c=gryphgen-c:latest". */
    const char *container_images;
    /** Backend "process": isolation level of jobs whose request names none: "none",
     *  "rlimits" or "namespaces"; NULL: the strongest this host gives (docs/executor.md). */
    const char *isolation;
    /** Backend "process": the weakest level any job may run at; a job (or the default) below
     *  it, or a level the host cannot give, fails with GG_EUNSUPPORTED. NULL: no minimum. */
    const char *min_isolation;
    /* ---- version 3 ---- */
    /** Backend "process": Python jobs at level "namespaces" start in pre-started
     *  interpreters (zygotes, docs/executor.md): 1 yes, -1 no; 0 (default): $GRYPHGEN_ZYGOTE
     *  ("0": no), else yes. */
    int zygote;
} gg_executor_options;

/** Static initialiser with defaults. */
#define GG_EXECUTOR_OPTIONS_INIT \
    { GG_EXECUTOR_OPTIONS_VERSION, NULL, NULL, 0, 0.0, NULL, NULL, NULL, NULL, 0 }

/**
 * Fills *opts with defaults for the given version (pass GG_EXECUTOR_OPTIONS_VERSION).
 * Returns GG_EVERSION for a version this library does not know.
 */
GG_API int gg_executor_options_init(gg_executor_options *opts, unsigned version);

/**
 * Creates an executor. opts may be NULL for defaults. On success *out owns a new executor
 * (free it with gg_executor_destroy()); on failure *out is NULL and a negative code returned.
 */
GG_API int gg_executor_new(gg_executor_t **out, const gg_executor_options *opts);

/**
 * Runs one job synchronously and stores its result JSON in *out_result_json (free with
 * gg_free()). A job that runs and fails (non-zero exit, signal, timeout) is a success of this
 * call: the result says how it ended. Negative codes mean the job could not be run:
 * GG_EINVAL (bad request, with the field named), GG_ENOTFOUND (program not found),
 * GG_ECANCELLED (interrupted), GG_EEXEC (other infrastructure faults).
 */
GG_API int gg_executor_run(gg_executor_t *ex, const char *request_json, char **out_result_json);

/**
 * Kills every job running on this executor; their gg_executor_run() calls return
 * GG_ECANCELLED promptly. Returns 0, or GG_EUNSUPPORTED when the backend cannot.
 */
GG_API int gg_executor_interrupt(gg_executor_t *ex);

/**
 * Describes what this host gives the "process" backend, as JSON in *out_json (free with
 * gg_free()): {"best": level, "levels": [...], "namespaces": {"available", "why"},
 * "user_namespaces": {...}, "cgroups": {"version", "memory", "pids", "swap", "why"},
 * "runtimes": {"python", "python_source", "cc", "cc_source"}, "container_socket": {...}}.
 * The first call probes (forks a test sandbox, a few ms); later calls reuse the answer.
 */
GG_API int gg_executor_probe(char **out_json);

/** The backend's name, such as "process"; borrowed, valid while the executor lives. */
GG_API const char *gg_executor_backend(const gg_executor_t *ex);

/** Destroys the executor and sets *pex to NULL. Accepts NULL and a pointer to NULL. */
GG_API void gg_executor_destroy(gg_executor_t **pex);

#ifdef __cplusplus
}
#endif
#endif
