/*
 * patch.h - a generator's answer to a workspace task, applied to an attempt's copy: a unified
 * diff (git's format, or plain diff -u), possibly wrapped in prose and markdown fences and
 * with wrong line numbers or counts, or whole files ({"files": {"path": "content"}}); and the
 * unified diff of what an attempt changed, against its base, for the result. Internal.
 *
 * Applying follows git apply: each hunk is placed where its context and removed lines match,
 * first at the line its header names, then at the nearest offset above or below; then again
 * ignoring whitespace at line ends; then ignoring changes in whitespace (tabs a model turned
 * into spaces), context lines keeping the file's own text. Counts in "@@" headers are
 * recomputed from the hunk's body. New, deleted and renamed files (git's extended headers)
 * are understood; binary patches are refused. A hunk that matches nowhere fails the whole
 * answer and names itself (file, hunk number, the first context line it looked for): that
 * message is the feedback. Leniencies for models: prose and fences around the diff, CRLF,
 * "@@ -3 +3 @@" and "@@ ... @@" headers, empty context lines without their space, a plain
 * "diff -u x.orig x" (one file changes), a new file written as "--- a/x" with only added
 * lines.
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
#define GGI_PATCH_MAX_BYTES (64u << 20) /* all files one answer touches, held in memory;
                                          * and a diff ggi_patch_diff writes */
#define GGI_PATCH_MAX_TREE_FILES 100000 /* files of both trees ggi_patch_diff compares */

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
 * On success returns 0, *out_kind says which it was and *out_changed (may be NULL) is an
 * array of the relative paths written or removed, sorted. On failure returns GG_EINVAL (the
 * answer cannot be applied), GG_ETOOBIG (over the caps) or GG_EIO (the filesystem), and
 * sets *out_findings (never NULL then; out_findings itself may be NULL) to an array of
 * {"severity": "error", "path": p or null (the whole answer), "hunk": n or absent,
 * "message": "..."}; the message of the first is also the error message (gg_error_last).
 * A failure while writing (GG_EIO) may leave files already written: the caller throws the
 * copy away.
 */
int ggi_patch_apply(const char *dir, const char *answer, size_t len, int *out_kind,
                    cJSON **out_changed, cJSON **out_findings);

/**
 * The unified diff (git's format: "diff --git a/p b/p", index-less, new/deleted file modes,
 * "\ No newline at end of file") that turns the tree at base_dir into the tree at dir, for
 * the given relative paths only (those ggi_patch_apply reported; NULL: compare the whole
 * trees, skipping every ".git" directory). *out is malloc'd ("" when nothing differs).
 * Each section has an "index" line of abbreviated blob ids, as git writes; a new or deleted
 * empty file gets its "---"/"+++" lines without a hunk (libgit2 1.5 needs them); symbolic
 * links are compared as links (mode 120000, content = target; ggi_patch_apply refuses to
 * make them); a file whose type changes is a deletion and a creation. A file of dir that is
 * the same inode as its base file (a hard-linked copy) is unchanged without being read.
 * Paths that are not safe relative paths (patch_apply's rules) are skipped. Accepted by
 * `git apply` and by libgit2's git_diff_from_buffer + git_apply_to_tree (tested). A binary
 * file is written as "Binary files a/p and b/p differ" (which neither applier accepts).
 * GG_EIO, GG_ENOMEM; GG_ETOOBIG for a file over GGI_PATCH_MAX_FILE_BYTES, more than
 * GGI_PATCH_MAX_TREE_FILES files, or a diff over GGI_PATCH_MAX_BYTES.
 */
int ggi_patch_diff(const char *base_dir, const char *dir, const cJSON *paths, char **out);

#endif
