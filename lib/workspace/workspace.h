/*
 * workspace.h - the base a workspace task's attempts start from (docs/tasks.md, "Workspace
 * tasks"): checking a task's "workspace" value, resolving it where its source can be read
 * (a git ref pinned to a commit; a local repository or directory packed so that it reaches a
 * worker anywhere), a cache that holds each base once per machine as a read-only tree named by
 * its git tree id, and the cheap copy each attempt runs in. Internal.
 *
 * Everything is a git tree underneath (libgit2): a repository at a commit, a directory or
 * inline files become a commit in an object store, so a base has one name (its tree id)
 * wherever it is used, and ships as a packfile.
 *
 * The forms a task may give (after ggi_ws_check):
 *   {"repo": PATH_OR_URL, "ref": REV}        REV defaults to "HEAD"
 *   {"dir": PATH}
 *   {"files": {"rel/path": "content", ...}}
 * and what ggi_ws_resolve adds (the form jobs carry; ggi_ws_check accepts it too):
 *   "commit": 40 hex digits  the commit the base is (always)
 *   "pack": base64 text      a git packfile holding the commit and its tree (not its
 *                            history: a base is a tree; a repository's history may be far
 *                            over the cap) (local repositories and directories; never for a
 *                            URL, which the worker fetches itself)
 *
 * THREAD SAFETY: ggi_ws_check, ggi_ws_resolve(_ex), ggi_ws_copy and ggi_ws_remove are
 * reentrant. One
 * ggi_ws_cache may be used from many threads at once, and several processes may share one
 * cache root (file locks; a base is exported into a temporary directory and renamed into
 * place, so a crash leaves no half base behind).
 *
 * libgit2 is initialised once per process on first use (git_libgit2_init() under a
 * pthread_once); that reference is kept for the life of the process and never given back,
 * so a host that uses libgit2 itself is not disturbed.
 */
#ifndef GGI_WORKSPACE_H
#define GGI_WORKSPACE_H

#include <stddef.h>
#include <sys/types.h>

#include "../core/ggi.h"

/* Caps. Exceeding one is GG_ETOOBIG with a message naming the field and the limit. */
#define GGI_WS_MAX_FILES 20000               /* files in a base */
#define GGI_WS_MAX_BYTES (256u << 20)        /* bytes of all files of a base */
#define GGI_WS_MAX_FILE_BYTES (16u << 20)    /* one file */
#define GGI_WS_MAX_PACK (12u << 20)          /* a packfile shipped in a task (before base64) */
#define GGI_WS_MAX_INLINE_BYTES (4u << 20)   /* all "files" of an inline workspace */
#define GGI_WS_MAX_PATH 1024                 /* a relative path in a workspace */
#define GGI_WS_MAX_LOCATION 4096             /* "repo" (a path or URL) and "dir" */
#define GGI_WS_MAX_REF 256                   /* "ref" */

/**
 * Checks the shape of a task's "workspace" value without touching the filesystem: an object
 * with exactly one of repo, dir or files and no other keys than those, ref, commit and pack;
 * "ref" (only with repo) a non-empty string without control characters, at most
 * GGI_WS_MAX_REF bytes; repo and dir non-empty strings of at most GGI_WS_MAX_LOCATION bytes;
 * files an object of strings whose keys are safe relative paths (not absolute, no "..", no
 * ".git" component in any letter case, no empty or "." component, no NUL, at most
 * GGI_WS_MAX_PATH bytes), none given twice nor both a file and another's directory, at most
 * GGI_WS_MAX_FILES of them within GGI_WS_MAX_INLINE_BYTES; "commit" when present 40
 * lower-case hex digits; "pack" when present a base64 string within the cap, only with
 * "commit" and not with files. GG_EINVAL or GG_ETOOBIG with a message naming the field,
 * e.g. "field 'workspace.files' path '../x' leaves the workspace".
 */
int ggi_ws_check(const cJSON *ws);

/**
 * Resolves a checked workspace where its source is readable: a repository (a local path, or a
 * URL that libgit2 can clone: https://, http://, ssh://, git://, file://) has its ref resolved
 * to "commit"; a local repository and a directory are also packed into "pack"; inline files
 * become a commit ("commit" only: the files travel as they are). A workspace that already has
 * "commit" is returned as it is (copied). Commits made here are deterministic (fixed author,
 * time and message), so the same directory gives the same commit id anywhere.
 * A local repository is opened at the path itself (no search upwards); ref is anything git
 * rev-parse takes that peels to a commit (branch, annotated or light tag, short id,
 * "main~2"). A URL's refs are listed without fetching: its ref is HEAD, a branch, a tag
 * (peeled) or a full commit id (taken as it is; the fetch checks it).
 * A directory is read without following symbolic links inside it (a link is kept as a link,
 * git mode 120000, wherever it points); ".git" entries are skipped; empty directories
 * vanish (git holds none); the executable bit of the owner gives mode 100755; a fifo,
 * socket or device is refused (GG_EINVAL naming it).
 * *out is a new object (cJSON_Delete it). Errors name the field: GG_ENOTFOUND "field
 * 'workspace.repo': no git repository at '...'" or "field 'workspace.ref': no commit 'x' in
 * '...'" or "field 'workspace.dir': ...", GG_ETOOBIG for the caps, GG_EIO.
 */
int ggi_ws_resolve(const cJSON *ws, cJSON **out);

/** Flags of ggi_ws_resolve_ex. */
enum {
    /* No "pack" for a local repository or directory: the base is made on this machine
     * (ggi_ws_cache_base fetches the repository from its path, or reads the directory again
     * and checks it still makes "commit"), so no size cap of a pack applies. */
    GGI_WS_RESOLVE_NO_PACK = 1
};

/** ggi_ws_resolve with flags (GGI_WS_RESOLVE_*; 0 is ggi_ws_resolve). GG_EINVAL for an
 * unknown flag. */
int ggi_ws_resolve_ex(const cJSON *ws, int flags, cJSON **out);

/** A machine's cache of bases. */
typedef struct ggi_ws_cache ggi_ws_cache;

/**
 * Opens (making it when missing, mode 0700) the cache under root. It holds a bare object
 * store and the exported bases. GG_EIO with the path named.
 */
int ggi_ws_cache_open(const char *root, ggi_ws_cache **out);

/** Closes a cache and sets *c to NULL. Accepts NULL. */
void ggi_ws_cache_close(ggi_ws_cache **c);

/**
 * Makes sure the base of a resolved workspace (ggi_ws_resolve's form) is exported in the
 * cache and returns its directory (*out_dir, malloc'd: the caller frees the string; the
 * directory stays while the cache exists: nothing here removes bases) and its tree id
 * (out_tree, 40 hex digits and a NUL; may be NULL). Imports "pack", or fetches "repo" at
 * "commit" (a URL or a path this machine reaches: the commit by its id, else every branch
 * and tag), or writes "files" (checked against "commit" when given); then exports the tree
 * once. Unresolved forms are accepted too (a repo's ref is resolved here, a dir read here).
 * Exported bases are read-only: files are mode 0444 (0555 when executable in git),
 * directories 0555, owned by the process's user; symbolic links are kept as links; a
 * submodule is an empty directory. Bases are never removed here: remove the whole root
 * with ggi_ws_remove when no cache is open on it.
 * GG_ENOTFOUND (commit not in the pack or not fetchable), GG_ETOOBIG (caps), GG_EIO.
 */
int ggi_ws_cache_base(ggi_ws_cache *c, const cJSON *resolved, char **out_dir,
                      char out_tree[41]);

/** How ggi_ws_copy makes an attempt's copy. */
enum {
    /* Directories are made anew (mode 0777: a sandboxed job, running as another uid, can
     * create, rename and delete entries); files are hard links to the base's read-only
     * files. Safe only when the job runs as a uid that neither owns nor can write the base's
     * files (the namespace sandbox on a root host): the caller decides, and makes dest_dir
     * below a private (0700) directory, since its directories are writable by anyone who
     * reaches them. A writer must replace a file (write a new one, rename it over), never
     * write into it. A file that cannot be linked (another filesystem, too many links) is
     * copied instead. */
    GGI_WS_COPY_LINK = 1,
    /* Every file copied (modes kept, with the owner's write bit added; directories keep
     * their mode with the owner's rwx added). Always safe, but a job running as another uid
     * (the sandbox) cannot write into the copy's directories. */
    GGI_WS_COPY_FULL = 2,
    /* Nothing copied: dest_dir gets the three directories of an overlay whose lower layer is
     * base_dir (GGI_WS_OVERLAY_UPPER, with the mode of base_dir's root and the owner's rwx
     * added; GGI_WS_OVERLAY_WORK, 0700; GGI_WS_OVERLAY_MERGED, 0755, the mount point). The
     * caller mounts it (lib/execution/overlay.h); dest_dir must be on a filesystem overlay
     * takes as upper (ext4, xfs, tmpfs, ...). The kernel leaves a work/work directory of
     * mode 000 in it, and whiteouts (0/0 character devices) in upper: ggi_ws_remove copes. */
    GGI_WS_COPY_OVERLAY = 3
};

/* The directories of an overlay copy (GGI_WS_COPY_OVERLAY), below dest_dir. */
#define GGI_WS_OVERLAY_UPPER "upper"
#define GGI_WS_OVERLAY_WORK "work"
#define GGI_WS_OVERLAY_MERGED "merged"

/**
 * Copies the tree at base_dir into dest_dir (which must not exist; made here) the way mode
 * says; symbolic links are copied as links. On failure dest_dir is removed. GG_EEXIST when
 * dest_dir exists, GG_ENOTFOUND when base_dir does not, GG_EINVAL for a fifo, socket or
 * device in the tree, GG_EIO with the path named (e.g. "No space left on device").
 */
int ggi_ws_copy(const char *base_dir, const char *dest_dir, int mode);

/**
 * ggi_ws_copy that also gives every entry it makes to uid:gid in the same walk (FULL: every
 * file, link and directory; OVERLAY: the upper directory and the mount point). (uid_t)-1 and
 * (gid_t)-1 keep the process's; a LINK copy cannot be given (its files are the base's):
 * GG_EINVAL. Changing the owner needs the privilege to (root): GG_EIO otherwise.
 */
int ggi_ws_copy_owned(const char *base_dir, const char *dest_dir, int mode, uid_t uid,
                      gid_t gid);

/**
 * Removes a tree made by ggi_ws_copy (or any tree: a job may have left read-only directories
 * in it), without following symbolic links. Accepts a path that does not exist.
 */
int ggi_ws_remove(const char *dir);

#endif
