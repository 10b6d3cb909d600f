/*
 * diff_parse.h - reading a generator's answer (patch.h): finding the unified diff or the
 * {"files": ...} object in text that may hold prose and markdown fences, and parsing a
 * unified diff (git's extended headers or plain diff -u) into file sections and hunks whose
 * counts come from their bodies. Nothing here touches the filesystem. Internal to
 * lib/workspace.
 *
 * THREAD SAFETY: reentrant.
 */
#ifndef GGI_DIFF_PARSE_H
#define GGI_DIFF_PARSE_H

#include <stddef.h>

#include "../core/ggi.h"

/** One line of a hunk's body; text points into the answer's normalised copy. */
typedef struct ggi_hunk_line {
    char op;          /* ' ' context, '-' removed, '+' added */
    int no_eol;       /* followed by "\ No newline at end of file" */
    const char *text; /* without the op and the newline */
    size_t len;
} ggi_hunk_line;

/** A hunk: where its header says it goes (when it says) and its body. */
typedef struct ggi_hunk {
    long old_start;   /* from "@@ -old_start,old_count"; 0 when has_pos is 0 */
    long old_count;   /* as the header says (1 when the header gives no count) */
    int has_pos;      /* the header had line numbers */
    ggi_hunk_line *lines;
    size_t n, cap;
} ggi_hunk;

/** What one file section of a diff does. */
typedef struct ggi_file_patch {
    char *old_path;   /* NULL for /dev/null (a new file); prefixes a/ b/ stripped */
    char *new_path;   /* NULL for /dev/null (a deleted file) */
    int is_new, is_delete, is_rename, is_copy;
    int traditional;  /* no rename or copy header: differing names do not mean a rename */
    unsigned old_mode, new_mode; /* git modes (0100644 ...) from the extended headers; 0 */
    int binary;       /* "GIT binary patch" or "Binary files ... differ" */
    char *bad;        /* why the section's header cannot be used, or NULL */
    ggi_hunk *hunks;
    size_t n_hunks, cap;
} ggi_file_patch;

/** A parsed diff: its file sections in order. */
typedef struct ggi_diff {
    ggi_file_patch *files;
    size_t n, cap;
} ggi_diff;

/**
 * Parses the unified diff in text[0, len) (LF line ends; prose before, between and after
 * file sections is skipped) and appends its sections to d. Hunk lines point into text,
 * which must outlive d. 0 or GG_ENOMEM.
 */
int ggi_diff_parse(const char *text, size_t len, ggi_diff *d);

/** Frees what d holds and empties it. */
void ggi_diff_free(ggi_diff *d);

/** A generator's answer as read. */
typedef struct ggi_answer {
    char *text;        /* the copy the diff points into (CRLF -> LF when every line had
                        * CRLF) */
    int kind;          /* GGI_PATCH_DIFF, GGI_PATCH_FILES, or 0: neither */
    ggi_diff diff;     /* kind GGI_PATCH_DIFF */
    cJSON *json;       /* kind GGI_PATCH_FILES: the object holding "files" */
    char *json_error;  /* an object that looked like {"files": ...} but failed, or NULL */
} ggi_answer;

/**
 * Reads answer: fenced blocks first (those that hold a diff, else the first {"files": ...}),
 * then the whole text as a diff, then as a JSON object. *a is filled even when the answer
 * is neither (kind 0). 0 or GG_ENOMEM.
 */
int ggi_answer_read(const char *answer, size_t len, ggi_answer *a);

/** Frees what a holds. */
void ggi_answer_free(ggi_answer *a);

#endif
