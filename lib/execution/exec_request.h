/*
 * exec_request.h - the checking of an executor request that the built-in backends share
 * (process and container): size and JSON syntax, argv, files, env, stdin, the limits object
 * and min_isolation, each with a message naming the field. What the backends make of the
 * checked request (isolation, images, users) stays theirs. Internal.
 *
 * THREAD SAFETY: pure functions of their arguments.
 */
#ifndef GGI_EXEC_REQUEST_H
#define GGI_EXEC_REQUEST_H

#include <stddef.h>

#include "../core/ggi.h"

#define GGI_EXEC_MAX_BYTES (16u * 1024u * 1024u) /* output per stream, files, stdin */
#define GGI_EXEC_MAX_FILES 64
#define GGI_EXEC_MAX_ARGV 4096
#define GGI_EXEC_MAX_ENV 256
#define GGI_EXEC_MAX_PATH 4096
#define GGI_EXEC_MAX_ARGS_BYTES (1024u * 1024u) /* argv + env, well under ARG_MAX */
#define GGI_EXEC_MAX_REQUEST (64u * 1024u * 1024u)
#define GGI_EXEC_MAX_TIMEOUT_S 86400.0

/** A backend's defaults and what it accepts beyond the common fields. */
typedef struct ggi_exec_policy {
    double timeout_s;       /* limits the request leaves out take these */
    long long max_output, nofile, fsize_mb, memory_mb, nproc;
    double cpus;
    int allow_cpus;         /* "cpus" is a known limit */
    int strict_paths;       /* every path component must be non-empty and not "." */
} ggi_exec_policy;

/** One checked request; pointers go into the cJSON tree it was checked from. */
typedef struct ggi_exec_request {
    const cJSON *argv;      /* non-empty array of strings */
    int argc;
    const cJSON *files;     /* array of {path, content} or NULL */
    const cJSON *env;       /* object of strings or NULL */
    const char *stdin_data; /* or NULL */
    size_t stdin_len;
    double timeout_s, cpu_s, cpus;
    long long memory_mb, max_output, nproc, nofile, fsize_mb;
    int min_level;          /* min_isolation as a GGI_ISO_* level; GGI_ISO_NONE when absent */
    const char *min_isolation; /* as given, or NULL */
    /* "workdir": an absolute host directory (not a symbolic link) the job runs in instead
     * of a fresh workspace; the request's files are written into it (replacing), and the
     * executor neither makes nor removes it. NULL when absent. */
    const char *workdir;
    /* "overlay" (only with "workdir"): {"lower", "upper", "work"}, absolute host directories
     * whose overlay the job gets mounted at workdir, in a mount namespace of its own
     * (overlay.h); workdir is then only the mount point. NULL when absent. */
    const char *ovl_lower, *ovl_upper, *ovl_work;
} ggi_exec_request;

/**
 * Parses request text (at most GGI_EXEC_MAX_REQUEST bytes) into *out (cJSON_Delete it).
 * GG_EINVAL for NULL, too large or malformed text.
 */
int ggi_exec_request_parse(const char *json, cJSON **out);

/**
 * Checks the common fields of req against policy p and fills *out. GG_EINVAL with a message
 * naming the field (argv, files[i].path, env, stdin, limits: x, min_isolation, workdir).
 * "workdir" is checked on the filesystem: absolute, exists, a directory, not a symbolic
 * link, not "/"; so is each directory of "overlay" (GG_EINVAL naming 'overlay.upper', ...;
 * an overlay without a workdir is refused).
 */
int ggi_exec_request_check(const cJSON *req, const ggi_exec_policy *p, ggi_exec_request *out);

#endif
