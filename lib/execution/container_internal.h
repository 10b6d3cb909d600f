/*
 * container_internal.h - what the files of the "container" executor backend share, and
 * nothing else includes: its limits and defaults, the wrapper script, the backend's state,
 * a checked job, an engine reply, an outcome, and the few functions more than one file calls.
 *
 * The backend is cut by concern (each file's opening comment says why there):
 *   container_executor.c  configuration, request checking, the vtable and interrupt;
 *   container_http.c      the engine's HTTP client (libcurl over the unix socket);
 *   container_run.c       one job: create, upload, start, wait, logs, always remove;
 *   container_archive.c   output and archive handling: the ustar archive, the multiplexed
 *                         log stream, the JSON result.
 * The type names below (cont_exec, job, ...) are private to these files; every shared
 * function carries the ggi_ce_ prefix.
 */
#ifndef GGI_CONTAINER_INTERNAL_H
#define GGI_CONTAINER_INTERNAL_H

#include <stddef.h>

#include <curl/curl.h>

#include "../core/ggi.h"
#include "container_executor.h"
#include "exec_request.h"
#include "job_registry.h"

#define DEFAULT_TIMEOUT_S 10.0
#define MAX_TIMEOUT_S 86400.0
#define DEFAULT_MAX_OUTPUT (64u * 1024u)
#define MAX_BYTES GGI_EXEC_MAX_BYTES
#define MAX_FILES GGI_EXEC_MAX_FILES
#define DEFAULT_NOFILE 256
#define DEFAULT_FSIZE_MB 64
#define DEFAULT_MEMORY_MB 512
#define MIN_MEMORY_MB 8
#define DEFAULT_PIDS 256
#define DEFAULT_NPROC_ULIMIT 4096 /* below the engines' own limits (podman keeps 32768) */
#define MAX_IMAGES 32
#define MAX_REPLY (4u * 1024u * 1024u)  /* JSON replies of the engine */
#define LOG_SLACK (16u << 20) /* log bytes the engine keeps beyond the caps */
#define API "http://engine/v1.41"
#define WORKDIR "/work"
#define STDIN_PATH "/gg-stdin"
#define DEFAULT_IMAGES "python=gryphgen-python:latest,c=gryphgen-c:latest"
#define CLEANUP_TIMEOUT_MS 20000L
#define REMOVE_TRIES 8 /* a refused removal is asked again (remove_container) */
#define CONNECT_TIMEOUT_MS 5000L
#define OOM_MARKER "GG-OOM-KILLED\n"
#define NOTFOUND_MARKER "GG-NOT-FOUND\n"
#define PEAK_MARKER "GG-PEAK=" /* then the cgroup's peak memory in bytes and a newline */
/* The job's wrapper: $0 and $@ are the job's argv. */
#define WRAPPER_BODY(redirect)                                                             \
    "command -v \"$0\" >/dev/null || { printf '" NOTFOUND_MARKER "' >&2; exit 127; }\n"      \
    "\"$0\" \"$@\"" redirect "\ns=$?\nn=0\n"                                                \
    "for f in /sys/fs/cgroup/memory.events /sys/fs/cgroup/memory/memory.oom_control; do\n"  \
    "  [ -r \"$f\" ] && while read -r k v; do [ \"$k\" = oom_kill ] && n=$v; done < \"$f\"\n" \
    "done\n"                                                                               \
    "p=\nfor f in /sys/fs/cgroup/memory.peak /sys/fs/cgroup/memory/memory.max_usage_in_bytes; do\n" \
    "  [ -z \"$p\" ] && [ -r \"$f\" ] && read -r p < \"$f\"\n"                             \
    "done\n"                                                                               \
    "if [ \"$n\" -gt 0 ] 2>/dev/null; then printf '" OOM_MARKER "' >&2\n"                   \
    "elif [ -n \"$p\" ]; then printf '" PEAK_MARKER "%s\\n' \"$p\" >&2; fi\n"                \
    "exit $s\n"
#define WRAPPER WRAPPER_BODY("")
#define WRAPPER_STDIN WRAPPER_BODY(" < " STDIN_PATH)

typedef struct image_entry {
    char *lang;        /* "python", "c", "*" */
    char *image;
    char *interpreter; /* replaces argv[0] when it is this language's interpreter; may be NULL */
} image_entry;

typedef struct cont_exec {
    char *socket;
    image_entry images[MAX_IMAGES];
    size_t n_images;
    size_t max_output;
    double default_timeout_s;
    char exec_id[17];
    ggi_job_registry reg; /* the running jobs (with their containers' ids), for interrupt */
    int engine;           /* 0 not asked yet, 1 Docker-compatible, 2 Podman (atomic) */
} cont_exec;

/* One checked request; strings point into the parsed cJSON tree or into cont_exec. */
typedef struct job {
    ggi_exec_request r;      /* the checked common fields */
    const char *image;
    const char *interpreter; /* replaces argv[0], or NULL */
    unsigned uid, gid;
} job;

/* ---- the engine's replies (container_http.c) ---- */

typedef struct http_reply {
    long status;
    ggi_buf body;       /* JSON replies (capped at MAX_REPLY) */
    ggi_mux_decoder *mux; /* when set, the body goes to the decoder instead */
    size_t fed;         /* bytes given to mux */
    size_t feed_limit;  /* stop reading logs after this many bytes */
    int too_big;
} http_reply;

typedef struct http_ctx {
    CURL *curl;
    const char *socket;
    const volatile int *cancel; /* aborts a transfer when non-zero */
} http_ctx;
/* ---- what one job came to (container_run.c, container_archive.c) ---- */
typedef struct outcome {
    long status;       /* the engine's exit status */
    long long peak_kb; /* the container's peak memory (its cgroup), or 0 when unknown */
    int timed_out, oom_killed;
    double duration_ms;
    ggi_mux_decoder mux;
} outcome;

/* ---- shared functions ---- */

/* One request to the engine, prepared on c but not performed (container_http.c). */
CURLcode ggi_ce_http_prepare(CURL *c, http_ctx *h, const char *method, const char *path,
                             const char *ctype, const char *body, size_t body_len,
                             long timeout_ms, int cancellable, http_reply *r,
                             struct curl_slist **hdrs_out);

/* One request to the engine, performed; the CURLcode (0 when a reply came, whatever its
 * status); r->status holds the HTTP status (container_http.c). */
CURLcode ggi_ce_http_do(http_ctx *h, const char *method, const char *path, const char *ctype,
                        const char *body, size_t body_len, long timeout_ms, int cancellable,
                        http_reply *r);

/* The engine's error message of a reply ({"message": ...}), or its body, or "";
 * and the reset of a reply for the next request (container_http.c). */
const char *ggi_ce_reply_message(http_reply *r, char *buf, size_t cap);
void ggi_ce_reply_reset(http_reply *r);

/* The JSON result of job j from its outcome (container_archive.c). */
int ggi_ce_build_result(const job *j, const outcome *oc, char **out);

/* Runs checked job j in a container of its own, always removed; *out the JSON result
 * (container_run.c). */
int ggi_ce_run_job(cont_exec *ce, const job *j, ggi_job_slot *slot, char **out);

/* Asks the engine to kill container id (container_run.c). */
void ggi_ce_kill_container(http_ctx *h, const char *id);

#endif
