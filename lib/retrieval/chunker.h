/*
 * chunker.h - splits a document into retrieval chunks by its structure: Python by top-level
 * def/class (with decorators and the comment just above), C by top-level function definition,
 * Markdown by heading, other text by paragraph. Code between those units becomes chunks of its
 * own; any chunk larger than the size cap is cut at line boundaries. Pure functions, no state:
 * safe from any thread.
 */
#ifndef GGI_CHUNKER_H
#define GGI_CHUNKER_H

#include <stddef.h>

/** Largest title kept for a chunk (function name or heading), terminator included. */
#define GGI_CHUNK_TITLE_MAX 96

/** One chunk: a byte range of the text and the lines it covers. */
typedef struct ggi_chunk {
    size_t off, len;       /* bytes [off, off + len) of the text */
    int line_start;        /* first line, 1-based */
    int line_end;          /* last line, inclusive */
    char title[GGI_CHUNK_TITLE_MAX]; /* "def name", "## Heading", ""; NUL-terminated */
} ggi_chunk;

/**
 * The language a path's extension suggests: "python", "c", "markdown" or "text". Borrowed
 * static string.
 */
const char *ggi_chunk_language_of(const char *path);

/**
 * Chunks len bytes of text as language ("python", "c", "markdown"; anything else or NULL is
 * text). Chunks larger than max_chunk bytes (0: 4000) are cut; more than max_chunks chunks
 * (0: 10000) is GG_ETOOBIG. Blank-only chunks are left out. *out (free()) holds *n_out chunks
 * in text order; NULL when there are none.
 */
int ggi_chunk_text(const char *text, size_t len, const char *language, size_t max_chunk,
                   size_t max_chunks, ggi_chunk **out, size_t *n_out);

#endif
