/*
 * spawn.h - runs one child process with a timeout, rlimits, captured and capped output, and
 * kills its whole process group when it ends. Shared by the process executor, the analyzer's
 * compiler runs and the command generator. Internal.
 */
#ifndef GGI_SPAWN_H
#define GGI_SPAWN_H

#include <stddef.h>
#include <stdint.h>

#include "../core/ggi.h"

typedef struct ggi_spawn_opts {
    const char *const *argv;  /* argv[0]: a path, or a name looked up in PATH of envp */
    const char *const *envp;  /* full environment of the child; NULL: an empty one */
    const char *cwd;          /* NULL: inherit */
    const char *stdin_data;   /* NULL: stdin is /dev/null */
    size_t stdin_len;
    double timeout_s;         /* wall clock; <= 0: none */
    size_t max_stdout;        /* bytes kept of stdout; the rest is read and dropped */
    size_t max_stderr;        /* bytes kept of stderr */
    /* rlimits, applied in the child before exec; 0 leaves a limit as inherited. A value above
     * the inherited hard limit is lowered to it (never raised). */
    double cpu_s;             /* RLIMIT_CPU (rounded up to whole seconds) */
    uint64_t as_bytes;        /* RLIMIT_AS */
    uint64_t fsize_bytes;     /* RLIMIT_FSIZE */
    uint64_t nofile;          /* RLIMIT_NOFILE */
    uint64_t nproc;           /* RLIMIT_NPROC */
    const volatile int *cancel; /* optional: when *cancel becomes non-zero the job is killed */
    /* Optional (additions): run the child in fresh namespaces as this spec says (sandbox.h).
     * The child is then the init (PID 1) of its PID namespace and the program runs as its
     * child, so killing it on a timeout kills everything the job started. cwd must be the
     * spec's inner workspace. */
    const struct ggi_sandbox_spec *sandbox;
    /* Optional (addition; without sandbox only): the child enters a mount namespace of its
     * own and attaches this overlay (overlay.h) before it enters cwd. */
    const struct ggi_overlay_attach *overlay;
    /* Optional: the job is started by someone else (a zygote); argv is then only a label
     * and no rlimits are applied here. */
    const struct ggi_spawn_external *external;
} ggi_spawn_opts;

struct ggi_spawn_result;

/** A job started by someone other than ggi_spawn_run (a zygote), driven by its I/O loop. */
typedef struct ggi_spawn_external {
    /* Starts the job on the given standard streams (borrowed: the callee hands them on; the
     * caller closes its copies after the call). On success *done_fd is a descriptor (owned by
     * ctx) that polls readable once the job has ended. */
    int (*start)(void *ctx, int in_fd, int out_fd, int err_fd, int *done_fd);
    /* Kills the whole job (everything it started). */
    void (*kill)(void *ctx);
    /* After the end: fills exit_code, term_signal and max_rss_kb of res. */
    int (*finish)(void *ctx, int killed, struct ggi_spawn_result *res);
    void *ctx;
} ggi_spawn_external;

typedef struct ggi_spawn_result {
    int exit_code;       /* exit status, or -1 when killed by a signal */
    int term_signal;     /* the signal that ended it, or 0 */
    int timed_out;       /* 1 when the wall-clock timeout killed it */
    int cancelled;       /* 1 when *cancel killed it */
    double duration_ms;  /* from fork to reaping */
    long max_rss_kb;     /* peak resident set of the child (wait4) */
    ggi_buf out;         /* captured stdout (at most max_stdout bytes) */
    ggi_buf err;         /* captured stderr (at most max_stderr bytes) */
    int out_truncated;
    int err_truncated;
} ggi_spawn_result;

/**
 * Runs the child to its end. Returns 0 when it ran (however it ended); GG_ENOTFOUND when
 * argv[0] could not be executed because it does not exist (message names it); GG_EIO for
 * other failures to start it; GG_EINVAL for bad options. The child is its own session and
 * process group leader; when it ends, times out or is cancelled the whole group is killed
 * with SIGKILL. All descriptors the library creates are close-on-exec, so concurrent spawns
 * from several threads do not leak pipes into each other's children.
 * res must be zeroed (or freshly freed) before the call; free it with ggi_spawn_result_free.
 */
int ggi_spawn_run(const ggi_spawn_opts *opts, ggi_spawn_result *res);

/** Frees the captured output and zeroes res. */
void ggi_spawn_result_free(ggi_spawn_result *res);

/* ---- helpers shared by the users of spawn (additions) ---- */

/**
 * Finds a program the way exec would: a name containing '/' is taken as it is; otherwise
 * each directory of path_env (a PATH value; NULL: "/usr/bin:/bin") is tried for an
 * executable regular file. *out is malloc'd. GG_ENOTFOUND "program 'x' not found".
 */
int ggi_spawn_find_program(const char *name, const char *path_env, char **out);

/** The value of NAME in an environment array ("NAME=value" strings), or NULL. */
const char *ggi_spawn_env_get(const char *const *envp, const char *name);

/** Writes the signal's name, such as "SIGSEGV" (or "SIG42" when it has none), into out. */
void ggi_spawn_signal_name(int sig, char out[24]);

/**
 * Copies len bytes into a new NUL-terminated, valid UTF-8 string (*out, malloc'd): every
 * byte that does not start a well-formed sequence (overlong forms, surrogates, values above
 * U+10FFFF, cut sequences) and every NUL byte becomes U+FFFD, so the text can go into JSON.
 */
int ggi_utf8_sanitize(const char *data, size_t len, char **out);

#endif
