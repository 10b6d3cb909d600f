/*
 * process_executor.h - the built-in "process" executor backend: each job runs as a child
 * process of the host in a fresh workspace directory, with rlimits, a wall-clock timeout and
 * capped output. Internal; reached through gg_executor_new(backend "process").
 *
 * Request (JSON object; unknown top-level keys are ignored, unknown "limits" keys rejected):
 *   argv       required, non-empty array of strings (at most 4096); argv[0] a path (relative
 *              ones are taken from the workspace) or a name looked up in the job's PATH
 *   files      array (at most 64) of {"path", "content"}: relative paths without "..",
 *              subdirectories created as needed; contents at most 16 MiB in total
 *   env        object of strings added to (or replacing entries of) the scrubbed base
 *              PATH=/usr/local/bin:/usr/bin:/bin, HOME=TMPDIR=<workspace>, LANG=C.UTF-8;
 *              nothing else comes from the host
 *   stdin      string (at most 16 MiB), delivered then closed; none: /dev/null
 *   limits     timeout_s (default options.default_timeout_s, else 10), cpu_s, memory_mb
 *              (RLIMIT_AS), max_output (bytes kept per stream, default options.max_output,
 *              else 64 KiB; at most 16 MiB), nproc, nofile (default 256), fsize_mb (default 64)
 *   isolation  "none" (timeout and output caps only), "rlimits" (+ the limits as rlimits) or
 *              "namespaces" (the sandbox of sandbox.h, a cgroup per job where writable, and
 *              zygotes for `python -c` jobs); absent: options.isolation, else the strongest
 *              level this host gives. Below options.min_isolation, unavailable here, or
 *              "container": GG_EUNSUPPORTED (the job is never run weaker).
 *   min_isolation  the weakest level for this job (a task's "isolation"): a default below it
 *              is raised to it; an explicit isolation below it is GG_EUNSUPPORTED
 *   zygote     false keeps a `python -c` job off the zygote (default true)
 * Every field is checked; a bad one is GG_EINVAL with a message naming it.
 *
 * Result (JSON object):
 *   exit_code         the exit status, or -1 when a signal ended the job (never null)
 *   signal            the terminating signal number, or 0
 *   signal_name       e.g. "SIGSEGV", or null
 *   timed_out, cancelled, stdout_truncated, stderr_truncated   booleans
 *   duration_ms       wall time from start to reaping
 *   max_rss_kb        peak resident set of the job (wait4)
 *   stdout, stderr    captured text; bytes that are not valid UTF-8 (and NUL bytes) are
 *                     replaced by U+FFFD so the result is always valid JSON
 *   isolation         the level that was applied
 *   oom_killed        the job's cgroup ran out of memory (then "reason" says so)
 *   zygote, cgroup    forked from a zygote; had a cgroup of its own
 * A job interrupted by gg_executor_interrupt() gives GG_ECANCELLED rather than a result.
 *
 * The workspace (gg-job-XXXXXX under options.workdir_root, else $TMPDIR as read when the
 * executor was made, else /tmp) is the job's cwd, HOME and TMPDIR, and is removed afterwards,
 * whatever permissions the job left on it, without following symlinks. A request's
 * "workdir" (exec_request.h) replaces it: the caller's directory is the job's cwd (bound into
 * the namespace sandbox, never through a zygote), the request's files replace what is there,
 * and it is left in place afterwards.
 *
 * THREAD SAFETY: run may be called concurrently; interrupt from any thread at any time.
 */
#ifndef GGI_PROCESS_EXECUTOR_H
#define GGI_PROCESS_EXECUTOR_H

#include <sys/types.h>

#include "gryphgen/sys/executor.h"

/** Largest output kept per stream, and largest total of files and of stdin. */
#define GGI_PROCESS_MAX_BYTES (16u * 1024u * 1024u)
/** Most files one request may carry. */
#define GGI_PROCESS_MAX_FILES 64

/**
 * Creates a process backend from opts (already checked for version by the caller; NULL:
 * defaults) and fills *vt_out and *self_out; the caller owns self and releases it through
 * vt_out->destroy. GG_EINVAL for bad options (workdir_root not a directory, max_output above
 * 16 MiB, a negative or non-finite default_timeout_s).
 */
int ggi_process_executor_new(const gg_executor_options *opts, gg_executor_vtable *vt_out,
                             void **self_out);

/**
 * Removes the directory tree at path without following symlinks, making directories
 * accessible first where the job removed their permissions. Returns 0 or GG_EIO (after
 * removing what it could). Used for workspaces; exposed for tests.
 */
int ggi_workspace_remove(const char *path);

/**
 * Writes a checked request's files (exec_request.h) below the directory ws, never through a
 * symbolic link, making directories as needed. With replace (a caller's "workdir") a file
 * already there is unlinked first, never written into; else a file already there is
 * GG_EINVAL. With uid != (uid_t)-1 what is made is handed to uid:gid (root only). GG_EINVAL
 * (a path through a file or link), GG_EEXEC (the filesystem).
 */
int ggi_exec_write_files(const char *ws, const cJSON *files, int replace, uid_t uid, gid_t gid);

#endif
