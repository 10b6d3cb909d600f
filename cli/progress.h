/*
 * progress.h - the progress display of a long run: counters fed by the orchestrator's event
 * callback (on its scheduler thread) and by the main thread, drawn by the main thread as a
 * bar on a terminal (at most ~10 times a second) or as plain lines otherwise (at most one
 * every 2 s), or not at all when quiet.
 */
#ifndef GG_CLI_PROGRESS_H
#define GG_CLI_PROGRESS_H

typedef struct progress progress;

/** Snapshot of the counters. */
typedef struct progress_counts {
    unsigned long total;      /* tasks and bad lines read so far */
    unsigned long done;       /* of those, ended (including bad lines) */
    unsigned long passed, failed, errors, cancelled;
    unsigned long attempts;   /* attempts finished during this run */
    unsigned long finished;   /* tasks that ended during this run */
} progress_counts;

/**
 * Creates the display on stderr: a bar when stderr is a terminal, plain lines otherwise,
 * nothing when quiet. Returns 0, or -1 when out of memory.
 */
int progress_new(progress **out, int quiet);

/** The orchestrator's event callback (user is the progress). Runs on the scheduler thread. */
void progress_on_event(void *user, const char *event_json);

/** A task was submitted (main thread). */
void progress_add_task(progress *p);

/** A bad line was read: counted in total, done and errors (main thread). */
void progress_add_bad(progress *p);

/**
 * A submitted task was found already ended (status as in its result): counts it as done
 * unless its task.finished event was already seen during this run. Main thread.
 */
void progress_add_ended(progress *p, const char *task_id, const char *status);

/** Redraws when due; input_done says whether total is final (main thread). */
void progress_tick(progress *p, int input_done);

/** Wipes a bar from the terminal; later ticks draw nothing. */
void progress_finish(progress *p);

/** Reads the counters. */
void progress_get(progress *p, progress_counts *out);

/** Frees the display (detaching it from stderr first) and sets *pp to NULL. Accepts NULL. */
void progress_destroy(progress **pp);

#endif
