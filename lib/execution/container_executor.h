/*
 * container_executor.h - the built-in "container" executor backend: each job runs in a fresh
 * container of a Docker Engine API compatible engine (Docker, or Podman's `podman system
 * service`), reached over a unix socket with libcurl. Internal; reached through
 * gg_executor_new(backend "container"). docs/executor.md has the user's view.
 *
 * Request: the process backend's (process_executor.h) plus
 *   language   "python", "c", ... picks the image from options.container_images; without it
 *              argv[0]'s basename decides (python, python3, python3.11 -> "python"; cc, gcc,
 *              clang -> "c"), else the "*" entry
 *   image      an image reference that overrides the language's
 *   user       "uid:gid" (numbers) the job runs as; default "65534:65534"
 *   limits     as the process backend, plus "cpus" (CPUs as a number, default 1)
 *   isolation  absent, "container", or a weaker level ("none", "rlimits", "namespaces"),
 *              which the container satisfies; anything else is GG_EINVAL; min_isolation
 *              likewise (every level is satisfied)
 * When argv[0] is the language's interpreter (a host path such as /usr/bin/python3 or a
 * version manager's), it is replaced by the image's interpreter (python: /usr/bin/python3,
 * c: /usr/bin/cc; a JSON image entry may name another).
 *
 * Each job: POST /containers/create (labels gryphgen.job=1 and gryphgen.executor=<id of
 * this executor>; read-only root, size-capped tmpfs at /work (the cwd and HOME) and /tmp,
 * network none, all capabilities dropped, no-new-privileges, memory = memory+swap, NanoCpus,
 * PidsLimit, ulimits clamped to this process's hard limits), PUT /containers/{id}/archive
 * (the files, and stdin as /gg-stdin, in a ustar archive built in memory), start, wait,
 * logs (the multiplexed stream decoded), inspect (State.OOMKilled), DELETE ?force=1. A
 * timeout, an interrupt or any failure after create kills and removes the container.
 *
 * Result: the process backend's fields, with isolation "container", max_rss_kb the peak
 * memory of the container's cgroup (memory.peak on v2, memory.max_usage_in_bytes on v1: the
 * job, its wrapper shell and its tmpfs files; 0 when the engine hides the cgroup), plus
 * oom_killed (bool) and image (string).
 *
 * THREAD SAFETY: run may be called concurrently; interrupt from any thread at any time.
 */
#ifndef GGI_CONTAINER_EXECUTOR_H
#define GGI_CONTAINER_EXECUTOR_H

#include <stddef.h>

#include "gryphgen/sys/executor.h"

/**
 * Creates a container backend from opts (version already checked by the caller; NULL:
 * defaults) and fills *vt_out and *self_out; the caller owns self and releases it through
 * vt_out->destroy. Does not contact the engine. GG_EINVAL for bad options (an unparsable
 * container_images, max_output above 16 MiB, a bad default_timeout_s).
 */
int ggi_container_executor_new(const gg_executor_options *opts, gg_executor_vtable *vt_out,
                               void **self_out);

/**
 * The label value this executor puts on its containers as gryphgen.executor (16 hex
 * digits), for tests that look for leaked containers. self is what
 * ggi_container_executor_new() gave.
 */
const char *ggi_container_executor_id(const void *self);

/** One file of a ustar archive. */
typedef struct ggi_tar_entry {
    const char *path;    /* relative path inside the archive */
    const char *data;    /* contents (regular file) */
    size_t len;
    unsigned mode;       /* permission bits */
} ggi_tar_entry;

/**
 * Builds a ustar archive in memory holding the given files, preceded by directory entries
 * for every parent directory (mode 0755), all owned by uid:gid. A path ending in '/' is a
 * directory entry with the given mode (put it before the files inside it). Paths too long for ustar's
 * name and prefix fields get a PAX extended header. *out and *out_len receive a malloc'd
 * buffer. GG_EINVAL for a path that is empty or absolute, or one that contains '..'; GG_ENOMEM.
 */
int ggi_tar_build(const ggi_tar_entry *files, size_t n, unsigned uid, unsigned gid,
                  char **out, size_t *out_len);

/**
 * Decodes the engine's multiplexed log stream incrementally: 8-byte frame headers (stream
 * 1 stdout, 2 stderr) each followed by a payload. Bytes beyond a stream's cap are dropped and
 * set the stream's truncated flag.
 */
typedef struct ggi_mux_decoder {
    unsigned char hdr[8];
    size_t hdr_len;
    size_t remaining; /* payload bytes left in the current frame */
    int stream;       /* 1 stdout, 2 stderr */
    size_t cap_out, cap_err;
    char *out, *err;  /* malloc'd, NUL-terminated, at most cap bytes */
    size_t out_len, err_len;
    int out_truncated, err_truncated;
    int oom;          /* set when memory ran out */
    /* A short stderr frame is held back until the next frame, so a status line the job's
     * wrapper prints last can be told apart from the job's output (ggi_mux_finish). */
    char held[32];
    size_t held_len;
    int holding;      /* 1 while a held frame's payload is still arriving, 2 when complete */
} ggi_mux_decoder;

/** Starts a decoder with the given caps. */
void ggi_mux_init(ggi_mux_decoder *d, size_t cap_out, size_t cap_err);
/** Feeds n bytes of the stream. Returns 0, or GG_ENOMEM. */
int ggi_mux_feed(ggi_mux_decoder *d, const char *data, size_t n);
/**
 * Ends the stream: when the last frame was on stderr and is exactly markers[i], it is dropped
 * and i + 1 returned; otherwise the held bytes join stderr and 0 is returned.
 */
int ggi_mux_finish(ggi_mux_decoder *d, const char *const *markers, size_t n);
/**
 * Ends the stream's value line: when the last frame (held, complete) is prefix, decimal
 * digits and a newline, it is dropped, *value gets the number and 1 is returned; else 0 and
 * nothing changes. Call before ggi_mux_finish.
 */
int ggi_mux_take_value(ggi_mux_decoder *d, const char *prefix, long long *value);
/** Frees the buffers and zeroes d. */
void ggi_mux_free(ggi_mux_decoder *d);

#endif
