/*
 * jsonl_reader.h - a bounded reader of JSON lines from a file descriptor: one line in memory
 * at a time, lines longer than a limit skipped without being stored, blank lines skipped,
 * line numbers counted.
 */
#ifndef GG_CLI_JSONL_READER_H
#define GG_CLI_JSONL_READER_H

#include <stddef.h>

typedef struct jsonl_reader jsonl_reader;

/** What jsonl_reader_next() found. */
enum {
    JSONL_EOF = 0,      /* no more lines */
    JSONL_LINE = 1,     /* a non-blank line */
    JSONL_TOO_LONG = 2  /* a line over the limit; it was skipped, *len says how long it was */
};

/**
 * Creates a reader of fd (not closed by the reader) that keeps lines of at most max_line
 * bytes (without the newline). Returns 0, or -1 when out of memory.
 */
int jsonl_reader_new(jsonl_reader **out, int fd, size_t max_line);

/**
 * Reads the next non-blank line. On JSONL_LINE, *line is the line without its newline (and
 * without a trailing carriage return), NUL-terminated, borrowed until the next call; *len is
 * its length (a NUL byte inside makes strlen(*line) < *len). On JSONL_TOO_LONG, *line is NULL
 * and *len the skipped line's length. *lineno is the line's number (from 1). Returns -1 when
 * reading failed (errno says why).
 */
int jsonl_reader_next(jsonl_reader *r, const char **line, size_t *len,
                      unsigned long long *lineno);

/** Frees the reader and sets *pr to NULL. Accepts NULL. */
void jsonl_reader_destroy(jsonl_reader **pr);

#endif
