/*
 * orq.h - the orchestrator's internals shared by its three files: orchestrator.c (the public
 * API, run on host threads), scheduler.c (the scheduler thread: the single writer of task
 * state) and attempt.c (one attempt of a task, run on a worker thread). Internal.
 *
 * Data flows one way: submit writes a queued task to the database and wakes the scheduler;
 * the scheduler claims tasks, sends jobs to idle workers over the transport, records each
 * attempt's outcome in one transaction, decides the next step, and finally writes the
 * result; wait/result read it back from the database.
 */
#ifndef GGI_ORQ_H
#define GGI_ORQ_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "gryphgen/orchestrator.h"
#include "../core/ggi.h"
#include "../core/task.h"
#include "../execution/runtimes.h"
#include "../net/transport.h"
#include "../store/store.h"

/* Infrastructure faults (executor, generator) are retried this often per task, with
 * exponential backoff and jitter, before the task ends with status "error". */
#define GGI_INFRA_RETRIES 3
#define GGI_INFRA_BACKOFF_MS 100.0
/* Attempts whose feedback travels with the next job. */
#define GGI_FEEDBACK_ATTEMPTS 3
/* Bytes of stderr/stdout carried in feedback. */
#define GGI_FEEDBACK_TAIL 2000

struct gg_orchestrator {
    ggi_logger log;
    gg_event_fn event_fn;
    void *event_user;
    unsigned max_attempts;
    unsigned n_workers;

    char *db_path;
    int db_is_temp;
    ggi_store *api_store;        /* host threads' connection, under api_mu */
    pthread_mutex_t api_mu;
    ggi_store *sched_store;      /* the scheduler thread's connection */

    ggi_transport transport;
    char endpoint[96];
    void *hub;                   /* scheduler's socket, used by the scheduler thread only */
    void *ctl_peer;              /* host threads' socket to the scheduler, under ctl_mu */
    pthread_mutex_t ctl_mu;
    atomic_int wake_pending;     /* a wake message is on its way */

    gg_generator_t *generator, *own_generator;
    gg_executor_t *executor, *own_executor;
    gg_retriever_t *retriever, *own_retriever;
    ggi_runtimes runtimes;

    pthread_t scheduler;
    int scheduler_started;
    pthread_t *workers;
    unsigned workers_started;
    atomic_int stopping;

    pthread_mutex_t done_mu;     /* guards done_gen; done_cv signals task ends */
    pthread_cond_t done_cv;
    uint64_t done_gen;
};

/* ---- scheduler.c ---- */
/** Thread entry of the scheduler. */
void *ggi_scheduler_main(void *orq);
/** Thread entry of a worker. */
void *ggi_worker_main(void *orq);
/** Wakes waiters after task ends (done_gen++ and broadcast). */
void ggi_orq_signal_done(struct gg_orchestrator *o);

/* ---- attempt.c ---- */

/** What an attempt needs besides the job: borrowed from the orchestrator. */
typedef struct ggi_attempt_env {
    gg_generator_t *generator;
    gg_executor_t *executor;
    gg_retriever_t *retriever;
    const ggi_runtimes *runtimes;
    const ggi_logger *log;
} ggi_attempt_env;

/**
 * Runs attempt n of a task: retrieve, generate, analyse, execute, evaluate. job is the job
 * message ({"task": {...}, "n": n, "feedback": [...]}). *out_record receives the attempt's
 * record (see docs/tasks.md) or, when the attempt could not be made, an object with
 * "exhausted": true or "infra": {"stage", "status", "message", "retry"} instead of an outcome.
 * Returns 0, or GG_ENOMEM / GG_EINVAL for a malformed job.
 */
int ggi_attempt_run(const ggi_attempt_env *env, const cJSON *job, cJSON **out_record);

#endif
