/*
 * idlog.h - the record of a task set as eval read it, kept in an unlinked temporary file
 * rather than in memory: for each non-blank line, either the id of the task it submitted or
 * the error that made it a bad line. Read back in order to write the results file and the
 * summary.
 */
#ifndef GG_CLI_IDLOG_H
#define GG_CLI_IDLOG_H

#include <stddef.h>

typedef struct idlog idlog;

/** One record as idlog_next() gives it back; the strings are borrowed until the next call. */
typedef struct idlog_entry {
    unsigned long long line;
    int bad;               /* 1: a bad line (reason set), 0: a submitted task */
    const char *task_id;   /* NULL for a bad line whose id could not be read */
    const char *reason;    /* NULL for a submitted task */
} idlog_entry;

/** Creates the log in $TMPDIR (else /tmp), already unlinked. Returns 0 or -1 (errno). */
int idlog_new(idlog **out);

/** Appends a submitted task. Returns 0 or -1 (errno). */
int idlog_add_task(idlog *l, unsigned long long line, const char *task_id);

/** Appends a bad line; task_id may be NULL. Returns 0 or -1 (errno). */
int idlog_add_bad(idlog *l, unsigned long long line, const char *task_id, const char *reason);

/** Starts reading from the first record (flushes what was written). Returns 0 or -1. */
int idlog_rewind(idlog *l);

/** Reads the next record: 1 when *e was filled, 0 at the end, -1 on error (errno). */
int idlog_next(idlog *l, idlog_entry *e);

/** Number of records appended so far. */
size_t idlog_count(const idlog *l);

/** Closes the file and sets *pl to NULL. Accepts NULL. */
void idlog_destroy(idlog **pl);

#endif
