/*
 * patch.h - a generator's answer to a workspace task, applied to an attempt's copy: a unified
 * diff (git's format, or plain diff -u), possibly wrapped in prose and markdown fences and
 * with wrong line numbers or counts, or whole files ({"files": {"path": "content"}}); and the
 * unified diff of what an attempt changed, against its base, for the result. Internal.
 *
 * Applying follows git apply: each hunk is placed where its context and removed lines match,
 * first at the line its header names, then at the nearest offset above or below; then again
 * ignoring whitespace at line ends. Counts in "@@" headers are recomputed from the hunk's
 * body. New, deleted and renamed files (git's extended headers) are understood; binary
 * patches are refused. A hunk that matches nowhere fails the whole answer and names itself
 * (file, hunk number, the first context line it looked for): that message is the feedback.
 *
 * Safety: every path the answer names is checked before anything is written: absolute
 * paths, "..", a ".git" component, and paths that reach through a symbolic link (to anywhere)
 * are refused with a finding; nothing is ever written outside the copy. A file is written by
 * creating a new file and renaming it over the old one (never by writing into it: the copy's
 * files may be hard links to a read-only base, workspace.h).
 *
 * THREAD SAFETY: reentrant.
 */
#ifndef GGI_PATCH_H
#define GGI_PATCH_H

#include <stddef.h>

#include "../core/ggi.h"

#define GGI_PATCH_MAX_TEXT (8u << 20)  /* an answer's text */
#define GGI_PATCH_MAX_FILES 1000       /* files one answer touches */
#define GGI_PATCH_MAX_FILE_BYTES (16u << 20) /* one file, before or after the answer */
#define GGI_PATCH_MAX_BYTES (64u << 20) /* all files one answer touches, held in memory */

/** What a generator's answer was read as. */
enum { GGI_PATCH_DIFF = 1, GGI_PATCH_FILES = 2 };

/**
 * Applies answer (a diff or whole files; see above) to the tree at dir. answer may be a
 * diff's text, a JSON object text {"files": {...}}, or either inside markdown fences.
 * In {"files": {...}} each value is the file's whole new content (a string), or null to
 * delete the file (which must exist); other keys of the object are ignored. A fenced block
 * that holds a diff wins over one that holds {"files": ...}; several diff blocks are
 * applied in order. Whole-file writes keep an existing file's mode; new files are 0644
 * (0755 for a diff's "new file mode 100755"); directories are made as needed.
 * Nothing is written unless the whole answer applies (all new contents are computed first;
 * every hunk that does not apply gets its own finding).
 * On success *out_kind says which it was and *out_changed (may be NULL) is an array of the
 * relative paths written or removed, sorted. On failure returns GG_EINVAL and sets
 * *out_findings (never NULL then) to an array of {"severity": "error", "path": p or null,
 * "hunk": n or absent, "message": "..."}; the message of the first is also the error message
 * (gg_error_last). A failure while writing (GG_EIO) may leave files already written: the
 * caller throws the copy away. GG_ETOOBIG over the caps; GG_EIO for the filesystem; a
 * finding's "path" is null when it concerns the whole answer.
 */
int ggi_patch_apply(const char *dir, const char *answer, size_t len, int *out_kind,
                    cJSON **out_changed, cJSON **out_findings);

/**
 * The unified diff (git's format: "diff --git a/p b/p", index-less, new/deleted file modes,
 * "\ No newline at end of file") that turns the tree at base_dir into the tree at dir, for
 * the given relative paths only (those ggi_patch_apply reported; NULL: compare the whole
 * trees, skipping ".git"). *out is malloc'd ("" when nothing differs). A binary file is
 * written as "Binary files a/p and b/p differ". GG_EIO, GG_ENOMEM.
 */
int ggi_patch_diff(const char *base_dir, const char *dir, const cJSON *paths, char **out);

#endif
