/*
 * ws_internal.h - what the files of lib/workspace share: libgit2's one-time set-up, libgit2
 * errors turned into ggi errors, the base64 codec of "pack", the check of a relative path,
 * and the builder that turns a directory or inline files into a deterministic commit in an
 * object store. Internal to lib/workspace.
 *
 * THREAD SAFETY: every function is reentrant; a git_repository passed in is used by one
 * thread at a time (the caller's lock).
 */
#ifndef GGI_WS_INTERNAL_H
#define GGI_WS_INTERNAL_H

#include <stddef.h>

#include <git2.h>

#include "workspace.h"

/**
 * Initialises libgit2 once per process (pthread_once around git_libgit2_init()). libgit2
 * counts its users; this reference is held for the life of the process and never given
 * back (git_libgit2_shutdown is not called), so a host that also uses libgit2 is not
 * disturbed. Returns 0 or GG_EIO.
 */
int ggi_ws_git_init(void);

/**
 * Sets the thread's last error to status with the message fmt... followed by ": " and
 * libgit2's last error message (when there is one). Returns status.
 */
int ggi_ws_git_error(int status, const char *fmt, ...) GGI_PRINTF(2, 3);

/** Bytes that base64 text of len characters decodes to at most. */
#define GGI_WS_B64_DECODED_MAX(len) (((len) / 4 + 1) * 3)

/**
 * Encodes n bytes as standard base64 (RFC 4648, "=" padding, no line breaks). *out is
 * malloc'd and NUL-terminated. GG_ENOMEM.
 */
int ggi_ws_b64_encode(const void *data, size_t n, char **out);

/**
 * Decodes standard base64 text (padding optional; ASCII whitespace ignored). *out is
 * malloc'd (*out_len bytes). GG_EINVAL "field 'workspace.pack' is not base64 ..." for other
 * characters or a bad length.
 */
int ggi_ws_b64_decode(const char *text, size_t len, unsigned char **out, size_t *out_len);

/**
 * Checks one relative path of a workspace: not empty, not absolute, no empty, "." or ".."
 * component, no ".git" component (in any letter case), no NUL within len, at most
 * GGI_WS_MAX_PATH bytes. Returns NULL when safe, else a static text saying why ("leaves
 * the workspace", ...).
 */
const char *ggi_ws_path_problem(const char *path, size_t len);

/** 1 when name is a safe single path component (ggi_ws_path_problem, and no '/'). */
int ggi_ws_name_ok(const char *name);

/** The fixed author, time and message of commits made from directories and inline files. */
#define GGI_WS_COMMIT_NAME "gryphgen"
#define GGI_WS_COMMIT_EMAIL "gryphgen@localhost"
#define GGI_WS_COMMIT_MESSAGE "gryphgen workspace base\n"

/**
 * Reads the directory dir (not following symbolic links inside it; links are kept as
 * links) into repo's object store and makes the deterministic commit of it in *out. ".git"
 * entries are skipped, empty directories vanish (git keeps no directories); a special file
 * (fifo, socket, device) is GG_EINVAL naming it. Caps as workspace.h; errors name
 * 'workspace.dir'.
 */
int ggi_ws_build_dir(git_repository *repo, const char *dir, git_oid *out);

/**
 * Writes the inline files (a checked "files" object) into repo's object store and makes
 * the deterministic commit of them in *out.
 */
int ggi_ws_build_files(git_repository *repo, const cJSON *files, git_oid *out);

/**
 * Checks the tree of commit (counting files and bytes against the caps of workspace.h),
 * naming field in errors. *out_tree gets the tree id (may be NULL).
 */
int ggi_ws_check_tree_caps(git_repository *repo, const git_oid *commit, const char *field,
                           git_oid *out_tree);

/** 1 when s looks like a URL that libgit2 fetches (scheme://... or user@host:path). */
int ggi_ws_is_url(const char *s);

#endif
