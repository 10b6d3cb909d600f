/*
 * scale_slurm.c - the slurm engine of `gryphgen scale`: each worker is one Slurm batch job
 * whose script execs `gryphgen worker --idle-s S`, submitted with sbatch under the job name
 * gryphgen-<scaler id>, counted with squeue and cancelled with scancel (the commands every
 * Slurm install has; docs/deploy.md says why not slurmrestd). Running jobs are never
 * cancelled to scale down: their workers leave by --idle-s and their jobs end. Jobs that end
 * soon after they start while tasks wait (a worker that cannot run there) hold back further
 * submissions, longer each time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "scale.h"

/* Consecutive early ends before submissions are held back, and the longest hold. */
#define FAST_ENDS_HOLD 3
#define HOLD_MAX_S 300.0
/* How long stop_all waits for Slurm to remove the cancelled jobs. */
#define STOP_WAIT_S 120.0

typedef struct job {
    long id;
    double first_running; /* when squeue first showed it running; 0: not yet */
    int running, seen;
} job;

struct scale_engine {
    const scale_config *cfg;
    char name[64]; /* gryphgen-<id> */
    char user[32]; /* our uid, for squeue/scancel --user */
    char *script;
    job *jobs;
    unsigned n_jobs, cap_jobs;
    unsigned fast_ends;
    double hold_until, hold_s;
    int stopping; /* stop_all: ends are expected */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Appends s to the script, single-quoted for sh. Returns 0 or -1 (out of memory). */
static int append_quoted(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t need = *len + 4 * strlen(s) + 4;
    if (need > *cap) {
        size_t ncap = need * 2;
        char *nb = realloc(*buf, ncap);
        if (!nb)
            return -1;
        *buf = nb;
        *cap = ncap;
    }
    char *p = *buf + *len;
    *p++ = ' ';
    *p++ = '\'';
    for (; *s; s++) {
        if (*s == '\'') {
            memcpy(p, "'\\''", 4);
            p += 4;
        } else {
            *p++ = *s;
        }
    }
    *p++ = '\'';
    *p = '\0';
    *len = (size_t)(p - *buf);
    return 0;
}

/* The batch script: a shell that execs the worker, so Slurm's signals reach it. */
static char *make_script(const scale_config *cfg)
{
    size_t len = 0, cap = 512;
    char *b = malloc(cap);
    if (!b)
        return NULL;
    len = (size_t)snprintf(b, cap, "#!/bin/sh\n# gryphgen scale %s: one worker\nexec", cfg->id);
    char slots[16], idle[16];
    snprintf(slots, sizeof slots, "%u", cfg->slots);
    snprintf(idle, sizeof idle, "%u", cfg->idle_s);
    const char *fixed[] = {cfg->worker_exe, "worker", "--connect", cfg->connect, "--slots",
                           slots, "--idle-s", idle};
    int rc = 0;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0] && rc == 0; i++)
        rc = append_quoted(&b, &len, &cap, fixed[i]);
    for (unsigned i = 0; i < cfg->n_worker_args && rc == 0; i++)
        rc = append_quoted(&b, &len, &cap, cfg->worker_args[i]);
    if (rc == 0 && len + 2 <= cap) {
        b[len++] = '\n';
        b[len] = '\0';
        return b;
    }
    free(b);
    return NULL;
}

static int slurm_open(scale_engine **out, const scale_config *cfg)
{
    *out = NULL;
    const char *probe[] = {"squeue", "--version", NULL};
    if (scale_run(probe, NULL, NULL) != 0) {
        cli_errorf("scale: --engine slurm needs Slurm's commands (sbatch, squeue, scancel) "
                   "on PATH");
        return -1;
    }
    scale_engine *e = calloc(1, sizeof *e);
    if (!e || !(e->script = make_script(cfg))) {
        free(e);
        cli_errorf("scale: out of memory");
        return -1;
    }
    e->cfg = cfg;
    snprintf(e->name, sizeof e->name, "gryphgen-%s", cfg->id);
    snprintf(e->user, sizeof e->user, "%lu", (unsigned long)getuid());
    *out = e;
    return 0;
}

/* Lists our jobs (squeue): each line "ID STATE". Returns the text (free()) or NULL (said). */
static char *list_jobs(scale_engine *e)
{
    char name[80], user[48];
    snprintf(name, sizeof name, "--name=%s", e->name);
    snprintf(user, sizeof user, "--user=%s", e->user);
    const char *argv[] = {"squeue", "--noheader", name, user, "--format=%i %T", NULL};
    char *text = NULL;
    int rc = scale_run(argv, NULL, &text);
    if (rc != 0) {
        if (rc > 0)
            cli_errorf("scale: squeue failed (exit %d)", rc);
        free(text);
        return NULL;
    }
    return text;
}

static job *find_job(scale_engine *e, long id)
{
    for (unsigned i = 0; i < e->n_jobs; i++)
        if (e->jobs[i].id == id)
            return &e->jobs[i];
    return NULL;
}

static job *add_job(scale_engine *e, long id)
{
    if (e->n_jobs == e->cap_jobs) {
        unsigned ncap = e->cap_jobs ? e->cap_jobs * 2 : 16;
        job *nj = realloc(e->jobs, ncap * sizeof *nj);
        if (!nj)
            return NULL;
        e->jobs = nj;
        e->cap_jobs = ncap;
    }
    job *j = &e->jobs[e->n_jobs++];
    memset(j, 0, sizeof *j);
    j->id = id;
    return j;
}

/* A job that left squeue: an early end (soon after it started, or before) counts toward
 * holding submissions back; one that lived its idle time resets the count. */
static void job_ended(scale_engine *e, const job *j, double now)
{
    double lived = j->first_running > 0 ? now - j->first_running : 0;
    if (lived * 2 < e->cfg->idle_s) {
        if (++e->fast_ends >= FAST_ENDS_HOLD) {
            e->hold_s = e->hold_s > 0 ? e->hold_s * 2 : 10;
            if (e->hold_s > HOLD_MAX_S)
                e->hold_s = HOLD_MAX_S;
            e->hold_until = now + e->hold_s;
            cli_errorf("scale: %u jobs in a row ended soon after they started (last: job %ld; "
                       "see its output file); no new job for %.0f s", e->fast_ends, j->id,
                       e->hold_s);
            e->fast_ends = 0;
        }
    } else {
        e->fast_ends = 0;
        e->hold_s = 0;
    }
}

static int slurm_count(scale_engine *e, scale_count *out)
{
    out->pending = out->running = 0;
    char *text = list_jobs(e);
    if (!text)
        return -1;
    double now = now_s();
    for (unsigned i = 0; i < e->n_jobs; i++)
        e->jobs[i].seen = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char state[32];
        long id;
        if (sscanf(line, "%ld %31s", &id, state) != 2)
            continue;
        job *j = find_job(e, id);
        if (!j && !(j = add_job(e, id))) /* ours from before (the same --id) */
            continue;
        j->seen = 1;
        if (strcmp(state, "PENDING") == 0 || strcmp(state, "CONFIGURING") == 0 ||
            strcmp(state, "REQUEUED") == 0) {
            out->pending++;
        } else if (strcmp(state, "COMPLETING") != 0) { /* ending: no longer a worker */
            out->running++;
            j->running = 1;
            if (j->first_running == 0)
                j->first_running = now;
        }
    }
    free(text);
    unsigned k = 0;
    for (unsigned i = 0; i < e->n_jobs; i++) {
        if (e->jobs[i].seen)
            e->jobs[k++] = e->jobs[i];
        else if (!e->stopping)
            job_ended(e, &e->jobs[i], now);
    }
    e->n_jobs = k;
    return 0;
}

/* Submits one job; adds it to the list. */
static int submit_one(scale_engine *e)
{
    const scale_config *cfg = e->cfg;
    const char *argv[SCALE_MAX_WORKER_ARGS + 8];
    char name[80], cpus[32];
    snprintf(name, sizeof name, "--job-name=%s", e->name);
    snprintf(cpus, sizeof cpus, "--cpus-per-task=%u", cfg->slots);
    unsigned n = 0;
    argv[n++] = "sbatch";
    argv[n++] = "--parsable";
    argv[n++] = name;
    argv[n++] = cpus;
    for (unsigned i = 0; i < cfg->n_sbatch_args; i++)
        argv[n++] = cfg->sbatch_args[i];
    argv[n] = NULL;
    char *out = NULL;
    int rc = scale_run(argv, e->script, &out);
    long id = -1;
    if (rc == 0 && out)
        id = strtol(out, NULL, 10); /* "ID" or "ID;CLUSTER" */
    free(out);
    if (rc != 0 || id <= 0) {
        cli_errorf("scale: sbatch failed (exit %d)", rc);
        return -1;
    }
    job *j = add_job(e, id);
    if (j)
        j->seen = 1;
    return 0;
}

/* Cancels the given job ids (scancel). */
static int cancel_ids(const long *ids, unsigned n)
{
    if (n == 0)
        return 0;
    const char **argv = calloc(n + 2, sizeof *argv);
    char *texts = calloc(n, 24);
    if (!argv || !texts) {
        free(argv);
        free(texts);
        cli_errorf("scale: out of memory");
        return -1;
    }
    argv[0] = "scancel";
    for (unsigned i = 0; i < n; i++) {
        snprintf(texts + 24 * i, 24, "%ld", ids[i]);
        argv[i + 1] = texts + 24 * i;
    }
    int rc = scale_run(argv, NULL, NULL);
    free(argv);
    free(texts);
    if (rc != 0) {
        cli_errorf("scale: scancel failed (exit %d)", rc);
        return -1;
    }
    return 0;
}

static int slurm_apply(scale_engine *e, const scale_count *c, unsigned target)
{
    unsigned live = c->pending + c->running;
    if (target > live) {
        if (now_s() < e->hold_until)
            return 0; /* said when the hold began */
        for (unsigned i = live; i < target; i++)
            if (submit_one(e) != 0)
                return -1;
        return 0;
    }
    /* Down: only jobs not started yet, the newest first; running ones leave by --idle-s. */
    long ids[64];
    unsigned n = 0, extra = live - target;
    for (unsigned i = e->n_jobs; i-- > 0 && n < extra && n < 64;)
        if (!e->jobs[i].running)
            ids[n++] = e->jobs[i].id;
    return cancel_ids(ids, n);
}

static void nap_500ms(void)
{
    struct timespec ts = {0, 500 * 1000000L};
    nanosleep(&ts, NULL);
}

static int slurm_stop_all(scale_engine *e)
{
    double deadline = now_s() + STOP_WAIT_S, next_ask = 0;
    e->stopping = 1;
    for (;;) {
        scale_count c;
        int counted = slurm_count(e, &c) == 0;
        if (counted && e->n_jobs == 0)
            break;
        if (now_s() > deadline) {
            cli_errorf("scale: %u jobs named %s may still be in squeue after %.0f s",
                       e->n_jobs, e->name, STOP_WAIT_S);
            return -1;
        }
        if (counted && now_s() >= next_ask) { /* at once, then again every 10 s */
            long *ids = malloc(e->n_jobs * sizeof *ids);
            if (ids) {
                for (unsigned i = 0; i < e->n_jobs; i++)
                    ids[i] = e->jobs[i].id;
                cancel_ids(ids, e->n_jobs);
                free(ids);
            }
            next_ask = now_s() + 10;
        }
        nap_500ms();
    }
    fprintf(stderr, "gryphgen: scale: no job named %s is left\n", e->name);
    return 0;
}

static void slurm_close(scale_engine *e)
{
    if (!e)
        return;
    free(e->script);
    free(e->jobs);
    free(e);
}

const scale_engine_vt scale_slurm_engine = {
    "slurm", slurm_open, slurm_count, slurm_apply, slurm_stop_all, slurm_close,
};
