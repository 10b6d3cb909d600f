/*
 * overlay.h - an attempt's copy as an overlay (docs/tasks.md, "What an attempt's copy
 * costs"): a read-only lower tree, an upper and a work directory made per attempt, and the
 * merged view of them mounted where a job runs. The mount is always made detached (the new
 * mount API: fsopen, fsconfig, fsmount), so it is never attached to the host's mount table:
 * the caller reaches it through its descriptor (/proc/self/fd/N) and a job gets it moved into
 * a mount namespace of its own, where it lives as long as that namespace. Internal.
 *
 * THREAD SAFETY: every function is reentrant; ggi_overlay_probe caches its answer once per
 * process. ggi_overlay_child_attach is async-signal-safe (for a forked child).
 */
#ifndef GGI_OVERLAY_H
#define GGI_OVERLAY_H

#include "../core/ggi.h"

/**
 * Mounts the overlay of lower (read-only), upper and work (on one filesystem), detached:
 * *out_fd is a close-on-exec descriptor of the mount's root (closing the last reference
 * unmounts it). Needs CAP_SYS_ADMIN (a root host). GG_EUNSUPPORTED when the kernel or the
 * filesystems refuse (message says which step and why), GG_EINVAL for a NULL path.
 */
int ggi_overlay_mount(const char *lower, const char *upper, const char *work, int *out_fd);

/**
 * 1 when an overlay can be mounted here with its lower, upper and work directories on the
 * filesystem of scratch (an existing directory this process may write), else 0 with *why
 * (may be NULL) set to a text saying why. Tried once per process (a few empty directories
 * made under scratch, named ovlprobe-<pid>, and removed); later calls return the first
 * answer whatever scratch they name.
 */
int ggi_overlay_probe(const char *scratch, const char **why);

/** What a forked child does with an overlay before it runs its program. */
typedef struct ggi_overlay_attach {
    int fd;               /* a detached overlay mount (ggi_overlay_mount) */
    const char *target;   /* an existing empty directory it is attached at */
    const char *ro_path;  /* a directory made read-only in the child's namespace, or NULL */
} ggi_overlay_attach;

/**
 * In a forked child, before exec: enters a mount namespace of its own (every mount private),
 * attaches the overlay at a->target and binds a->ro_path read-only over itself, so the job
 * writes only through the overlay. Returns 0 or an errno value (*step names the step).
 * Async-signal-safe.
 */
int ggi_overlay_child_attach(const ggi_overlay_attach *a, const char **step);

#endif
