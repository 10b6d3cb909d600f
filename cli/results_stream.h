/*
 * results_stream.h - the --results file of `gryphgen eval`, written while the run goes: each
 * task's line is appended, in one write, as soon as the task is known to have ended, so an
 * interrupted run (Ctrl-C or kill -9) leaves the lines of the tasks that finished. A task is
 * written once per run whatever tells of its end (its event, a look at its result, the last
 * sweep), and every line is valid UTF-8 JSON whatever bytes its strings held.
 *
 * THREAD SAFETY: results_stream_on_event may run on another thread (the orchestrator's event
 * callback) at the same time as the other calls; everything else is for one thread.
 */
#ifndef GG_CLI_RESULTS_STREAM_H
#define GG_CLI_RESULTS_STREAM_H

#include <stddef.h>

typedef struct results_stream results_stream;

/** Takes fd (a regular file opened for writing; closed by destroy). Returns 0 or -1. */
int results_stream_new(results_stream **out, int fd);

/** Empties the file (a run rewrites it: see docs/tasks.md). Returns 0 or -1 (errno). */
int results_stream_truncate(results_stream *s);

/** An event of the orchestrator: the id of a task.finished is queued for the main thread. */
void results_stream_on_event(results_stream *s, const char *event_json);

/** Takes the next queued id (malloc'd, the caller frees it), or NULL when none is left. */
char *results_stream_next_ended(results_stream *s);

/** Whether the task's line was written already in this run. */
int results_stream_written(const results_stream *s, const char *task_id);

/** Appends a task's result (JSON text) as one line unless it was written already; marks it
 * written. Returns 0 or -1 (errno). */
int results_stream_put_result(results_stream *s, const char *task_id, const char *result);

/** Appends the error line of a bad input line (task_id may be NULL). Returns 0 or -1. */
int results_stream_put_bad(results_stream *s, unsigned long long line, const char *task_id,
                           const char *reason);

/**
 * For the last pass of a completed run: the lines from here on go to a new file next to
 * path (the set's order, each task once), which results_stream_commit puts in its place in
 * one rename, so the file is whole at every moment. When no file can be made there, the file
 * is emptied and rewritten in place instead. Returns 0 or -1 (errno).
 */
int results_stream_rewrite(results_stream *s, const char *path);

/** Puts the rewritten file in place (see results_stream_rewrite). Returns 0 or -1. */
int results_stream_commit(results_stream *s);

/** Closes the file (a rewrite not committed is removed); -1 (errno) when that fails.
 * Accepts NULL. */
int results_stream_close(results_stream **ps);

/** Copies len bytes into a new string where every byte that is not valid UTF-8 (and every
 * NUL) is U+FFFD; NULL when out of memory. */
char *results_utf8_clean(const char *text, size_t len);

#endif
