/*
 * sandbox.h - isolation levels of the process executor and the namespace sandbox: what this
 * host can give (probed once), and the steps a freshly cloned child takes to become an
 * isolated job (a root of its own holding only what programs need from the host, read-only,
 * size-capped tmpfs for /tmp and the workspace, fresh /proc, loopback-only network,
 * unprivileged uid without capabilities). Internal.
 *
 * THREAD SAFETY: ggi_sandbox_probe may be called from any thread (computed once). The
 * ggi_sandbox_child_* functions run in a forked child and make async-signal-safe calls only.
 */
#ifndef GGI_SANDBOX_H
#define GGI_SANDBOX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/** Isolation levels, weakest first. */
enum {
    GGI_ISO_NONE = 0,       /* only the timeout and output caps */
    GGI_ISO_RLIMITS = 1,    /* + rlimits */
    GGI_ISO_NAMESPACES = 2, /* + namespaces, own read-only root, no network, cgroups when writable */
    GGI_ISO_CONTAINER = 3   /* a container engine (another backend) */
};

/** The uid and gid jobs run as inside the namespace sandbox ("nobody"). */
#define GGI_SANDBOX_UID 65534
#define GGI_SANDBOX_GID 65534

/** Parses "none", "rlimits", "namespaces" or "container" into *level; GG_EINVAL otherwise. */
int ggi_isolation_parse(const char *name, int *level);

/** The name of a level ("none" ...); "unknown" for others. Static. */
const char *ggi_isolation_name(int level);

/** What this host gives the process backend; filled once by ggi_sandbox_probe. */
typedef struct ggi_sandbox_caps {
    int best;             /* strongest level available to the process backend */
    int namespaces;       /* 1: the namespaces level works here */
    char namespaces_why[256];
    int root;             /* running with euid 0 */
    int userns;           /* 1: user namespaces can be made */
    char userns_why[512];
    int use_userns;       /* 1: job sandboxes get a user namespace of their own (sandbox specs
                           * built with ggi_sandbox_spec_init ask for one) */
    char hide_dir[1024];  /* without root: the host user's HOME, hidden from jobs; else "" */
    int mount_setattr;    /* 1: the kernel has mount_setattr (recursive read-only) */
} ggi_sandbox_caps;

/** Probes once (the first call forks a test sandbox, a few ms) and returns the result. */
const ggi_sandbox_caps *ggi_sandbox_probe(void);

/** Most host paths a job gets besides the runtime's own (ggi_sandbox_program_binds). */
#define GGI_SANDBOX_MAX_BINDS 4

/** Host paths bound read-only into a job's root at the same place (absolute, resolved). */
typedef struct ggi_sandbox_binds {
    int n;
    char path[GGI_SANDBOX_MAX_BINDS][1024];
} ggi_sandbox_binds;

/**
 * Host side: adds to b what running program (an absolute path) needs beyond the runtime
 * directories every job gets (/usr, /bin, /sbin, /lib*, a few files of /etc): the program's
 * prefix (the directory above its bin/ or sbin/, else the file itself), both for the path as
 * given and resolved, so an interpreter in /opt/python or a virtual environment keeps its
 * libraries. Paths below /tmp are skipped (a job's /tmp is its own). Never fails: what does
 * not fit or cannot be resolved is left out.
 */
void ggi_sandbox_program_binds(ggi_sandbox_binds *b, const char *program);

/** One file written into the job's workspace by the sandbox child. */
typedef struct ggi_sandbox_file {
    const char *path;     /* relative, checked (no "..", not absolute) */
    const char *content;
    size_t len;
} ggi_sandbox_file;

/** Everything the child needs to build its sandbox, prepared before the clone. */
typedef struct ggi_sandbox_spec {
    const char *inner_ws;       /* absolute workspace path inside, below /tmp/ */
    uint64_t tmpfs_bytes;       /* size of the tmpfs holding /tmp and the workspace */
    uid_t uid;
    gid_t gid;
    const ggi_sandbox_file *files;
    size_t nfiles;
    const int *cgroup_fds;      /* cgroup.procs files open for writing; the child joins them */
    int ncgroup_fds;
    int zygote;                 /* 1: set up a zygote's base (no workspace, no /proc) */
    /* Addition: 1 clones the sandbox into a user namespace of its own in which only uid and
     * gid GGI_SANDBOX_UID/GID exist, mapped to 65534 on a root host and to the host's own
     * euid/egid otherwise; nothing is root inside. The child waits on userns_fd (the read end
     * of a pipe, see ggi_sandbox_userns_pipe) until the host has written its maps. */
    int userns;
    int userns_fd;
    /* Addition: formerly a host directory hidden under an empty tmpfs (a non-root host user's
     * HOME); the job's root no longer holds any home, so it is unused. */
    const char *hide_dir;
    /* Addition: host paths bound into the job's root besides the runtime's own, or NULL. */
    const ggi_sandbox_binds *binds;
    /* Addition: a host directory (the request's "workdir") bound read-write at inner_ws
     * instead of a fresh directory, or NULL. It is taken before the child leaves the host's
     * ids; files are written into it by replacing (unlink, then create), never through a
     * symbolic link, and it is neither chowned nor removed. */
    const char *host_ws;
    /* Addition: with host_ws, a detached mount (an overlay, overlay.h) attached at inner_ws
     * instead of a copy of host_ws's mount; -1 (ggi_sandbox_spec_init) when none. */
    int host_ws_fd;
} ggi_sandbox_spec;

/** Zeroes s and sets the fields every job shares (sandbox uid/gid, userns as probed). */
void ggi_sandbox_spec_init(ggi_sandbox_spec *s);

/**
 * Host side, before the clone: when s->userns, makes the close-on-exec pipe the child waits on
 * (*rd goes into s->userns_fd, *wr stays with the host); else both are -1. 0 or an errno value.
 */
int ggi_sandbox_userns_pipe(const ggi_sandbox_spec *s, int *rd, int *wr);

/**
 * Host side, just after the clone: writes the child's uid_map, setgroups and gid_map, then
 * releases it through wr (closed here in any case; a child whose maps failed sees EOF and
 * fails). Does nothing for wr < 0. Returns 0 or an errno value. Async-signal-safe.
 */
int ggi_sandbox_userns_map(pid_t pid, int wr);

/**
 * In a cloned zygote base, before exec: keeps every capability the child holds in its user
 * namespace across exec (inheritable + ambient), since it runs as a non-root uid there.
 * Returns 0 or an errno value.
 */
int ggi_sandbox_child_keep_caps(void);

/**
 * In a child, before exec (with no_new_privs set, or CAP_SYS_ADMIN): a seccomp filter that
 * refuses the kernel keyring calls with ENOSYS (add_key, request_key, and keyctl except
 * joining a new anonymous session keyring). For jobs without a user namespace of their own,
 * which would otherwise share their uid's user keyring. Returns 0 or an errno value.
 * Async-signal-safe.
 */
int ggi_sandbox_child_deny_keys(void);

/** Namespaces a sandbox is cloned with (a zygote's too: mount, network, IPC, UTS, PID and,
 * when used, user). */
int ggi_sandbox_clone_flags(const ggi_sandbox_spec *s);

/**
 * In the cloned child, still root: joins the cgroups, builds the job's root (a tmpfs holding
 * the runtime directories and s->binds bound read-only from the host, a few files of /etc,
 * the usual devices, a fresh /proc) and pivots into it, makes /tmp and the workspace, writes
 * the files, turns everything read-only but /tmp and /dev/shm, brings up loopback and sets
 * the hostname. Returns 0 or an errno value (*step names it).
 */
int ggi_sandbox_child_setup(const ggi_sandbox_spec *s, const char **step);

/**
 * In the job process just before exec: drops every capability (bounding set too), sets
 * no_new_privs and becomes s->uid/s->gid with no supplementary groups. 0 or an errno value.
 */
int ggi_sandbox_child_drop(const ggi_sandbox_spec *s);

/** Raw fork (clone syscall) usable in a child of a multithreaded process. */
pid_t ggi_sandbox_raw_clone(unsigned long flags);

#endif
