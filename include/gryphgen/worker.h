/*
 * gryphgen/worker.h - a grid worker: connects to an orchestrator (`gryphgen serve`, or a host
 * that gave gg_orchestrator_options.bind), announces what it can run, and runs the attempts
 * the orchestrator hands it, one per slot, with its own generator, executor and retriever.
 * The protocol is ggp/1 (docs/protocol.md).
 *
 *     gg_worker_options wo = GG_WORKER_OPTIONS_INIT;
 *     wo.connect = "tcp://127.0.0.1:5555";
 *     gg_worker_t *w = NULL;
 *     gg_worker_new(&w, &wo);
 *     gg_worker_run(w);          // until gg_worker_stop(w) from another thread
 *     gg_worker_destroy(&w);
 *
 * THREAD SAFETY: gg_worker_run() runs on one host thread; gg_worker_stop() may be called from
 * any thread (and from a signal handler: it only stores to an atomic flag). destroy must not
 * race with run. The log callback runs on the thread of gg_worker_run() or on a slot thread.
 */
#ifndef GRYPHGEN_WORKER_H
#define GRYPHGEN_WORKER_H

#include "common.h"
#include "log.h"
#include "executor.h"
#include "generator.h"
#include "retriever.h"
#include "transport.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A grid worker. */
typedef struct gg_worker gg_worker_t;

/** Version of gg_worker_options this header describes. */
#define GG_WORKER_OPTIONS_VERSION 2

/** Options for gg_worker_new(). Fields are only ever appended. */
typedef struct gg_worker_options {
    uint32_t version;              /**< GG_WORKER_OPTIONS_VERSION */
    const char *connect;           /**< the orchestrator's endpoint, e.g. tcp://host:5555;
                                        or several, comma-separated ("EP1,EP2": a primary
                                        and its backup, at most 16, each checked as one is),
                                        of which the worker follows the active one
                                        (docs/protocol.md "Failover"). Since 1.3 */
    const char *name;              /**< node name for scores; NULL: the host name */
    unsigned slots;                /**< attempts run at once; 0: the number of online cores */
    unsigned queue;                /**< jobs held ahead of the slots; 0: as many as slots */
    const char *const *labels;     /**< NULL-terminated "key=value" strings, or NULL */
    gg_executor_t *executor;       /**< borrowed; NULL: the process executor */
    gg_generator_t *generator;     /**< borrowed; NULL: replay */
    gg_retriever_t *retriever;     /**< borrowed; NULL: none */
    const char *python;            /**< Python interpreter; NULL: $GRYPHGEN_PYTHON, python3 */
    const char *cc;                /**< C compiler; NULL: $GRYPHGEN_CC, $CC, cc */
    gg_log_fn log_fn;              /**< NULL: no logging */
    void *log_user;                /**< passed to log_fn */
    int log_level;                 /**< highest gg_log_level delivered; default GG_LOG_WARN */
    const char *curve_key_file;    /**< this worker's CURVE key pair (PREFIX.key from
                                        `gryphgen keygen`), listed with role worker in the
                                        orchestrator's authorized keys; NULL: no encryption
                                        (see insecure). docs/security.md */
    const char *curve_server_key;  /**< the orchestrator's public key: 40-character Z85 text
                                        or the path of its .pub or .key file; required with
                                        curve_key_file */
    int insecure;                  /**< 1: allow connecting without keys, to a loopback
                                        endpoint only; 0 (default): tcp:// or ipc:// without
                                        keys is GG_EINVAL. Without keys an endpoint that is not
                                        loopback is GG_EINVAL even with 1; inproc:// needs
                                        neither keys nor insecure */
    /* version 2 */
    gg_transport_t *custom_transport; /**< a host's transport (gg_transport_new_custom()),
                                        borrowed: it must outlive the worker; connect is then
                                        the orchestrator's endpoint name in that transport,
                                        and the key options must be NULL. NULL: ZeroMQ */
} gg_worker_options;

/** Static initialiser with defaults. */
#define GG_WORKER_OPTIONS_INIT \
    { GG_WORKER_OPTIONS_VERSION, NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
      NULL, GG_LOG_WARN, NULL, NULL, 0, NULL }

/** Fills *opts with defaults for the given version; GG_EVERSION for an unknown version. */
GG_API int gg_worker_options_init(gg_worker_options *opts, unsigned version);

/**
 * Creates a worker: checks the options, finds runtimes, GPUs and the host's capacity. Does
 * not connect yet. GG_EINVAL when connect is missing or a label is not key=value.
 */
GG_API int gg_worker_new(gg_worker_t **out, const gg_worker_options *opts);

/**
 * Connects and serves jobs until gg_worker_stop(). Reconnects by itself when the
 * orchestrator goes silent (3 missed heartbeats of the interval its welcome gave), its
 * connection closes (a killed orchestrator is seen at once over ZeroMQ) or it restarts; with
 * several endpoints it moves to the next (round robin, with a backoff of 100 ms doubling to
 * 2 s after each round that found none) also when the orchestrator answers "passive:" or
 * nobody listens. Jobs held and their results are kept: the results go to the new
 * orchestrator after its welcome (it records those whose lease it knows). Returns 0 after a
 * stop, or a negative code when the first endpoint cannot be used at all.
 */
GG_API int gg_worker_run(gg_worker_t *w);

/** Asks gg_worker_run() to return soon (running attempts are interrupted). Signal-safe. */
GG_API void gg_worker_stop(gg_worker_t *w);

/**
 * Counters as JSON: {"jobs": n, "results": n, "reconnects": n, "dropped": n, "held": n,
 * "failovers": n, "aborted": n, "endpoint": "EP" or null} (held: the jobs queued or running
 * in this worker now, and their results not yet on their way; failovers: moves to another
 * endpoint of the list (since 1.3); aborted: jobs the orchestrator stopped with an abort
 * message, queued or running, since 1.3; endpoint: the one whose orchestrator welcomed this worker, null while
 * none has). *out_json is freed with gg_free(). May be called from any thread.
 */
GG_API int gg_worker_stats(gg_worker_t *w, char **out_json);

/** Frees the worker and sets *pw to NULL. Accepts NULL and a pointer to NULL. */
GG_API void gg_worker_destroy(gg_worker_t **pw);

#ifdef __cplusplus
}
#endif
#endif
