/*
 * metrics.h - the orchestrator's counters for Prometheus (metrics.c): attempts by outcome,
 * attempt stage durations, tokens, model requests by arm, node gauges and database write
 * latency. The scheduler and writer threads add to them with relaxed atomics (no lock on the
 * hot path); gg_orchestrator_metrics() reads them, with the task counts from the database,
 * into the text exposition format. Internal.
 */
#ifndef GGI_METRICS_H
#define GGI_METRICS_H

#include <stdatomic.h>

#include <cjson/cJSON.h>

#include "../core/ggi.h"

/* Histogram bucket bounds (seconds) shared by every duration histogram. */
#define GGI_HIST_BOUNDS 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, \
                        10, 30, 60, 120, 300
#define GGI_HIST_N 17
/* Distinct model arms counted by name; more are counted as "other". */
#define GGI_METRICS_ARMS 32
#define GGI_METRICS_ARM_NAME 64
/* Task end causes counted by name (GGI_END_* of store.h); the last slot: any other. */
#define GGI_METRICS_CAUSES 12

typedef enum { GGI_STAGE_RETRIEVE, GGI_STAGE_GENERATE, GGI_STAGE_ANALYZE, GGI_STAGE_EXECUTE,
               GGI_STAGES } ggi_stage;
typedef enum { GGI_OUTCOME_PASSED, GGI_OUTCOME_FAILED, GGI_OUTCOME_INFRA,
               GGI_OUTCOME_EXHAUSTED, GGI_OUTCOMES } ggi_outcome;

/** A duration histogram: per-bucket counts (not cumulative; the last is +Inf), sum in us. */
typedef struct ggi_hist {
    atomic_ullong bucket[GGI_HIST_N + 1];
    atomic_ullong count;
    atomic_ullong sum_us;
} ggi_hist;

typedef struct ggi_arm_count {
    char name[GGI_METRICS_ARM_NAME]; /* written once before n_arms counts it */
    atomic_ullong ok, error;
} ggi_arm_count;

typedef struct ggi_metrics {
    atomic_ullong attempts[GGI_OUTCOMES];
    ggi_hist stage[GGI_STAGES];
    ggi_hist db_write;
    atomic_ullong tokens;
    ggi_arm_count arms[GGI_METRICS_ARMS + 1]; /* the last: "other" */
    atomic_int n_arms;
    atomic_ullong ends[GGI_METRICS_CAUSES + 1]; /* tasks ended, by end cause */
    /* Gauges the scheduler publishes on its liveness tick. */
    atomic_int nodes_ready, nodes_quarantined, slots_total, slots_busy;
    double started_wall; /* seconds since the epoch, set once at start */
} ggi_metrics;

/** Zeroes m and notes the start time. */
void ggi_metrics_init(ggi_metrics *m);

/** Adds one observation in milliseconds (negative and NaN are ignored). */
void ggi_hist_observe_ms(ggi_hist *h, double ms);

/**
 * Counts one attempt's record as the scheduler received it: its outcome, stage durations,
 * tokens and model request (arm, ok or error). Only the scheduler thread calls it (arm names
 * have one writer).
 */
void ggi_metrics_attempt(ggi_metrics *m, const cJSON *rec);

/** Counts a task's end by its cause (GGI_END_*; NULL or unknown: "other"). */
void ggi_metrics_task_end(ggi_metrics *m, const char *cause);

/** Publishes the node gauges (scheduler thread). */
void ggi_metrics_nodes(ggi_metrics *m, int ready, int quarantined, int slots, int busy);

#endif
