/*
 * sandbox.c - the namespace sandbox of the process executor: level names, a one-time probe
 * of what the host allows (a test clone into fresh namespaces with the same mounts a job
 * gets), and the async-signal-safe steps a cloned child takes: make its mount tree private,
 * assemble a root of its own on a small tmpfs (the runtime directories /usr, /bin, /sbin,
 * /lib* and the program's own prefix bound from the host, the few files of /etc the loader,
 * libc and Python read, made-up passwd/group/hosts, the harmless devices, a fresh /proc) and
 * pivot into it, so nothing else of the host (homes, /srv, /var, databases) exists there;
 * put a size-capped tmpfs on /tmp (the workspace lives in it, so a job cannot fill the host's
 * disk), write the job's files there, turn the whole tree read-only (mount_setattr,
 * recursive) but /tmp and /dev/shm, bring up loopback in its empty network namespace, and
 * finally, in the job process, drop to an unprivileged uid with no capabilities.
 */
#include <dirent.h>
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../core/ggi.h"
#include "sandbox.h"

#define KEYCTL_JOIN_SESSION_KEYRING_NR 1 /* <linux/keyctl.h>, which libc does not wrap */
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#endif
#ifndef MOUNT_ATTR_NOSUID
#define MOUNT_ATTR_NOSUID 0x00000002
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

/* Our own copy of the kernel's struct mount_attr (glibc headers may lack it). */
typedef struct gg_mount_attr {
    uint64_t attr_set, attr_clr, propagation, userns_fd;
} gg_mount_attr;

/* Capability syscall structures (linux/capability.h without the include). */
typedef struct gg_cap_header {
    uint32_t version;
    int pid;
} gg_cap_header;
typedef struct gg_cap_data {
    uint32_t effective, permitted, inheritable;
} gg_cap_data;
#define GG_CAP_VERSION_3 0x20080522
#define ZYGOTE_TMPFS_BYTES (1u << 20)
#define ROOT_TMPFS_BYTES (1u << 20)
/* Where the job's root is assembled before pivot_root: a mount point every host has, and one
 * the job never sees as the host's anyway (its /tmp is a tmpfs of its own). */
#define STAGE "/tmp"
#define STAGE_LEN 4
#define SHM_MAX_BYTES (64ull << 20)
#define PATH_BUF 4096

int ggi_isolation_parse(const char *name, int *level)
{
    static const char *const names[] = { "none", "rlimits", "namespaces", "container" };
    for (int i = 0; name && i < 4; i++) {
        if (!strcmp(name, names[i])) {
            *level = i;
            return GG_OK;
        }
    }
    return ggi_error(GG_EINVAL, "unknown isolation level '%s' (none, rlimits, namespaces, "
                                "container)", name ? name : "(null)");
}

const char *ggi_isolation_name(int level)
{
    switch (level) {
    case GGI_ISO_NONE: return "none";
    case GGI_ISO_RLIMITS: return "rlimits";
    case GGI_ISO_NAMESPACES: return "namespaces";
    case GGI_ISO_CONTAINER: return "container";
    default: return "unknown";
    }
}

pid_t ggi_sandbox_raw_clone(unsigned long flags)
{
    return (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
}

int ggi_sandbox_clone_flags(const ggi_sandbox_spec *s)
{
    /* (A zygote gets a PID namespace of its own too: it makes one per job below it and
     * must be allowed to return to its own after each.) */
    int f = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWPID;
    if (s->userns)
        f |= CLONE_NEWUSER;
    return f;
}

void ggi_sandbox_spec_init(ggi_sandbox_spec *s)
{
    memset(s, 0, sizeof *s);
    s->uid = GGI_SANDBOX_UID;
    s->gid = GGI_SANDBOX_GID;
    const ggi_sandbox_caps *c = ggi_sandbox_probe();
    s->userns = c->use_userns;
    s->userns_fd = -1;
    s->host_ws_fd = -1;
    s->hide_dir = c->use_userns && c->hide_dir[0] ? c->hide_dir : NULL;
}

int ggi_sandbox_userns_pipe(const ggi_sandbox_spec *s, int *rd, int *wr)
{
    *rd = *wr = -1;
    if (!s->userns)
        return 0;
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return errno;
    /* Above 2, so the child's dup2 onto its standard streams cannot clobber it. */
    for (int i = 0; i < 2; i++) {
        if (p[i] <= 2) {
            int n = fcntl(p[i], F_DUPFD_CLOEXEC, 3);
            int e = errno;
            close(p[i]);
            p[i] = n;
            if (n < 0) {
                if (i == 0 && p[1] >= 0)
                    close(p[1]);
                if (i == 1)
                    close(p[0]);
                return e;
            }
        }
    }
    *rd = p[0];
    *wr = p[1];
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* child side: async-signal-safe only (no malloc, no stdio)                                 */

static size_t u64_dec(uint64_t v, char *out)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && n < sizeof tmp);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
    return n;
}

static int mount_tmpfs(const char *where, uint64_t bytes, const char *mode)
{
    char opts[96] = "size=";
    size_t n = 5 + u64_dec(bytes, opts + 5);
    size_t ml = strlen(mode);
    if (n + 6 + ml + 1 > sizeof opts)
        return EINVAL;
    memcpy(opts + n, ",mode=", 6);
    memcpy(opts + n + 6, mode, ml + 1);
    if (mount("tmpfs", where, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
        return errno;
    return 0;
}

/* Makes every directory of path from below "/tmp/" on (root-owned, 0755). */
static int mkdirs(char *buf, size_t n, size_t from)
{
    for (size_t i = from; i < n; i++) {
        if (buf[i] != '/')
            continue;
        buf[i] = '\0';
        int bad = mkdir(buf, 0755) < 0 && errno != EEXIST;
        int e = errno;
        buf[i] = '/';
        if (bad)
            return e;
    }
    return 0;
}

static int write_one(const char *ws, size_t wl, const ggi_sandbox_file *f, uid_t uid, gid_t gid)
{
    char buf[PATH_BUF];
    size_t pl = strlen(f->path);
    if (wl + 1 + pl + 1 > sizeof buf)
        return ENAMETOOLONG;
    memcpy(buf, ws, wl);
    buf[wl] = '/';
    memcpy(buf + wl + 1, f->path, pl + 1);
    size_t n = wl + 1 + pl;
    for (size_t i = wl + 1; i < n; i++) {
        if (buf[i] != '/')
            continue;
        buf[i] = '\0';
        if (mkdir(buf, 0755) == 0) {
            if (chown(buf, uid, gid) < 0) {
                buf[i] = '/';
                return errno;
            }
        } else if (errno != EEXIST) {
            int e = errno;
            buf[i] = '/';
            return e;
        }
        buf[i] = '/';
    }
    int fd = open(buf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return errno;
    const char *p = f->content;
    size_t left = f->len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            return e;
        }
        p += w;
        left -= (size_t)w;
    }
    int e = fchown(fd, uid, gid) < 0 ? errno : 0;
    close(fd);
    return e;
}

/* Writes one file into a "workdir" (ws, a host directory bound there): each directory
 * component is opened without following a symbolic link (made when missing), and a file
 * already there is unlinked first, never written into (it may be a hard link to a
 * read-only base). 0 or an errno value. */
static int write_one_into(const char *ws, const ggi_sandbox_file *f, uid_t uid, gid_t gid)
{
    char buf[PATH_BUF];
    size_t pl = strlen(f->path);
    if (pl + 1 > sizeof buf)
        return ENAMETOOLONG;
    memcpy(buf, f->path, pl + 1);
    int dfd = open(ws, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return errno;
    int e = 0;
    char *comp = buf;
    for (;;) {
        char *slash = strchr(comp, '/');
        if (slash)
            *slash = '\0';
        if (!slash) {
            if (!comp[0] || !strcmp(comp, ".")) {
                e = EINVAL;
                break;
            }
            if (unlinkat(dfd, comp, 0) < 0 && errno != ENOENT) {
                e = errno;
                break;
            }
            int fd = openat(dfd, comp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                            0644);
            if (fd < 0) {
                e = errno;
                break;
            }
            const char *p = f->content;
            size_t left = f->len;
            while (left && !e) {
                ssize_t w = write(fd, p, left);
                if (w < 0 && errno != EINTR)
                    e = errno;
                if (w > 0) {
                    p += w;
                    left -= (size_t)w;
                }
            }
            if (!e && fchown(fd, uid, gid) < 0)
                e = errno;
            close(fd);
            break;
        }
        if (comp[0] && strcmp(comp, ".")) {
            if (mkdirat(dfd, comp, 0755) == 0) {
                if (fchownat(dfd, comp, uid, gid, AT_SYMLINK_NOFOLLOW) < 0) {
                    e = errno;
                    break;
                }
            } else if (errno != EEXIST) {
                e = errno;
                break;
            }
            int nfd = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (nfd < 0) {
                e = errno;
                break;
            }
            close(dfd);
            dfd = nfd;
        }
        comp = slash + 1;
    }
    close(dfd);
    return e;
}

static int loopback_up(void)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, "lo", 3);
    int e = 0;
    if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
        e = errno;
    } else {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
            e = errno;
    }
    close(s);
    return e;
}

static int setattr(const char *path, unsigned flags, uint64_t set, uint64_t clr)
{
    gg_mount_attr a;
    memset(&a, 0, sizeof a);
    a.attr_set = set;
    a.attr_clr = clr;
    if (syscall(SYS_mount_setattr, AT_FDCWD, path, flags, &a, sizeof a) < 0)
        return errno;
    return 0;
}

/* ---- the job's root ---- */

/* What every job gets from the host: the runtime (programs, libraries, the dynamic loader),
 * and from /etc only what the loader, libc's name service and locale and Python read. */
static const char *const RUNTIME_DIRS[] = { "/usr", "/bin", "/sbin", "/lib", "/lib32",
                                            "/lib64", "/libx32", NULL };
static const char *const ETC_ENTRIES[] = {
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime", "timezone",
    "nsswitch.conf", "locale.alias", "locale.conf", "os-release", "gai.conf", "host.conf",
    "mime.types", NULL
};
static const char *const DEV_NODES[] = { "null", "zero", "full", "random", "urandom", "tty",
                                         NULL };
#define MAX_ETC_EXTRA 8
/* /etc/python3* (sitecustomize and the like) and /etc/java-* (the JDK's conf/ links there),
 * found by the probe before any clone. */
static char etc_extra[MAX_ETC_EXTRA][64];

static const char PASSWD[] = "root:x:0:0:root:/root:/usr/sbin/nologin\n"
                             "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
static const char GROUP[] = "root:x:0:\nnogroup:x:65534:\n";
static const char HOSTS[] = "127.0.0.1\tlocalhost gg-sandbox\n"
                            "::1\tlocalhost ip6-localhost ip6-loopback\n";

/* out = a + b; 0 or ENAMETOOLONG. */
static int join2(char *out, const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la + lb + 1 > PATH_BUF)
        return ENAMETOOLONG;
    memcpy(out, a, la);
    memcpy(out + la, b, lb + 1);
    return 0;
}

/* Makes the directories above path that lie below the stage (0755). */
static int mkparents(char *path)
{
    size_t n = strlen(path);
    for (size_t i = STAGE_LEN + 1; i < n; i++) {
        if (path[i] != '/')
            continue;
        path[i] = '\0';
        int bad = mkdir(path, 0755) < 0 && errno != EEXIST;
        int e = errno;
        path[i] = '/';
        if (bad)
            return e;
    }
    return 0;
}

static int write_small(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return errno;
    size_t n = strlen(text);
    int e = write(fd, text, n) == (ssize_t)n ? 0 : errno ? errno : EIO;
    close(fd);
    return e;
}

/* Shows host path at the same place below the stage, read-only: a symbolic link is copied,
 * a directory or another file is bound (with the mounts below it: in a user namespace a bind
 * must take them along). A path that does not exist is skipped. */
static int expose(const char *path)
{
    char dst[PATH_BUF];
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT || errno == ENOTDIR ? 0 : errno;
    int e = join2(dst, STAGE, path);
    if (!e)
        e = mkparents(dst);
    if (e)
        return e;
    if (S_ISLNK(st.st_mode)) {
        char target[PATH_BUF];
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n < 0)
            return errno;
        target[n] = '\0';
        return symlink(target, dst) < 0 && errno != EEXIST ? errno : 0;
    }
    if (S_ISDIR(st.st_mode)) {
        if (mkdir(dst, 0755) < 0 && errno != EEXIST)
            return errno;
    } else {
        int fd = open(dst, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0)
            return errno;
        close(fd);
    }
    if (mount(path, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
        return errno;
    /* Read-only at once, so nothing made later below the stage can reach the host. */
    return setattr(dst, AT_RECURSIVE, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, 0);
}

/* Assembles the job's root below the stage and pivots into it; the host's tree is then
 * detached from this mount namespace. */
static int build_root(const ggi_sandbox_spec *s, const char **step)
{
    int e;
    char p[PATH_BUF];
    *step = "mount the tmpfs of its root";
    if ((e = mount_tmpfs(STAGE, ROOT_TMPFS_BYTES, "0755")))
        return e;
    /* The program's own prefix first: its parents are made in the tmpfs, never inside a
     * bound host directory. */
    *step = "bind the program's directories";
    for (int i = 0; s->binds && i < s->binds->n; i++) {
        if ((e = expose(s->binds->path[i])))
            return e;
    }
    *step = "bind the runtime's directories";
    for (int i = 0; RUNTIME_DIRS[i]; i++) {
        if ((e = expose(RUNTIME_DIRS[i])))
            return e;
    }
    *step = "fill its /etc";
    if (mkdir(STAGE "/etc", 0755) < 0 && errno != EEXIST)
        return errno;
    for (int i = 0; ETC_ENTRIES[i]; i++) {
        if ((e = join2(p, "/etc/", ETC_ENTRIES[i])) || (e = expose(p)))
            return e;
    }
    for (int i = 0; i < MAX_ETC_EXTRA && etc_extra[i][0]; i++) {
        if ((e = join2(p, "/etc/", etc_extra[i])) || (e = expose(p)))
            return e;
    }
    if ((e = write_small(STAGE "/etc/passwd", PASSWD)) ||
        (e = write_small(STAGE "/etc/group", GROUP)) ||
        (e = write_small(STAGE "/etc/hosts", HOSTS)))
        return e;
    *step = "fill its /dev";
    if (mkdir(STAGE "/dev", 0755) < 0 && errno != EEXIST)
        return errno;
    for (int i = 0; DEV_NODES[i]; i++) {
        if ((e = join2(p, "/dev/", DEV_NODES[i])) || (e = expose(p)))
            return e;
    }
    static const char *const links[][2] = { { "/proc/self/fd", STAGE "/dev/fd" },
                                            { "/proc/self/fd/0", STAGE "/dev/stdin" },
                                            { "/proc/self/fd/1", STAGE "/dev/stdout" },
                                            { "/proc/self/fd/2", STAGE "/dev/stderr" } };
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        if (symlink(links[i][0], links[i][1]) < 0 && errno != EEXIST)
            return errno;
    }
    if (mkdir(STAGE "/dev/shm", 01777) < 0 && errno != EEXIST)
        return errno;
    if (mkdir(STAGE "/tmp", 01777) < 0 && errno != EEXIST)
        return errno;
    /* A fresh /proc of the job's PID namespace, mounted while the host's is still in this
     * namespace (the kernel lets a user namespace mount proc only then). */
    *step = "mount /proc";
    if (mkdir(STAGE "/proc", 0555) < 0 && errno != EEXIST)
        return errno;
    if (mount("proc", STAGE "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        return errno;
    *step = "pivot into its root";
    if (chdir(STAGE) < 0)
        return errno;
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        return errno;
    if (umount2(".", MNT_DETACH) < 0)
        return errno;
    if (chdir("/") < 0)
        return errno;
    return 0;
}

/* Writes text into /proc/<pid>/<name>; 0 or an errno value. */
static int proc_write(pid_t pid, const char *name, const char *text)
{
    char path[64] = "/proc/";
    size_t n = 6 + u64_dec((uint64_t)pid, path + 6);
    size_t nl = strlen(name);
    if (n + 1 + nl + 1 > sizeof path)
        return ENAMETOOLONG;
    path[n] = '/';
    memcpy(path + n + 1, name, nl + 1);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    size_t tl = strlen(text);
    int e = write(fd, text, tl) == (ssize_t)tl ? 0 : errno ? errno : EIO;
    close(fd);
    return e;
}

/* "<inside> <outside> 1\n" */
static void id_line(char *out, unsigned inside, unsigned outside)
{
    size_t n = u64_dec(inside, out);
    out[n++] = ' ';
    n += u64_dec(outside, out + n);
    memcpy(out + n, " 1\n", 4);
}

int ggi_sandbox_userns_map(pid_t pid, int wr)
{
    if (wr < 0)
        return 0;
    /* Root maps the sandbox ids onto the host's "nobody"; anyone else may map only their own
     * ids, and must give up setgroups first. */
    int root = geteuid() == 0;
    char line[64];
    int e;
    id_line(line, GGI_SANDBOX_UID, root ? GGI_SANDBOX_UID : (unsigned)geteuid());
    e = proc_write(pid, "uid_map", line);
    if (!e && !root)
        e = proc_write(pid, "setgroups", "deny");
    if (!e) {
        id_line(line, GGI_SANDBOX_GID, root ? GGI_SANDBOX_GID : (unsigned)getegid());
        e = proc_write(pid, "gid_map", line);
    }
    if (!e && write(wr, "m", 1) != 1)
        e = errno;
    close(wr);
    return e;
}

/* In a child cloned with a user namespace: waits until the host has mapped it, then becomes
 * the sandbox uid/gid (it keeps its capabilities there: the ids it had are not mapped). */
static int enter_userns(const ggi_sandbox_spec *s, const char **step)
{
    *step = "get its user namespace mapped";
    char c = 0;
    ssize_t n;
    while ((n = read(s->userns_fd, &c, 1)) < 0 && errno == EINTR) {
    }
    if (n != 1)
        return n < 0 ? errno : EPERM;
    close(s->userns_fd);
    *step = "become the sandbox's uid";
    if (syscall(SYS_setgroups, 0, NULL) < 0 && errno != EPERM)
        return errno;
    if (syscall(SYS_setresgid, s->gid, s->gid, s->gid) < 0)
        return errno;
    if (syscall(SYS_setresuid, s->uid, s->uid, s->uid) < 0)
        return errno;
    return 0;
}

int ggi_sandbox_child_keep_caps(void)
{
    gg_cap_header h = { GG_CAP_VERSION_3, 0 };
    gg_cap_data d[2];
    memset(d, 0, sizeof d);
    if (syscall(SYS_capget, &h, d) < 0)
        return errno;
    d[0].inheritable = d[0].permitted;
    d[1].inheritable = d[1].permitted;
    if (syscall(SYS_capset, &h, d) < 0)
        return errno;
    for (int c = 0; c < 64; c++) {
        if (!(d[c / 32].permitted & (1u << (c % 32))))
            continue;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0 && errno != EINVAL)
            return errno;
    }
    return 0;
}

int ggi_sandbox_child_setup(const ggi_sandbox_spec *s, const char **step)
{
    int e;
    for (int i = 0; i < s->ncgroup_fds; i++) {
        *step = "join its cgroup";
        if (write(s->cgroup_fds[i], "0", 1) < 0)
            return errno;
    }
    /* A workdir is taken (a detached copy of its mount) while the child still has the host's
     * ids, so the directories above it need not be searchable by the sandbox's uid; it is
     * attached at the workspace path once /tmp is the sandbox's own. */
    int ws_tree = -1;
    if (s->host_ws && !s->zygote && s->host_ws_fd >= 0) {
        ws_tree = s->host_ws_fd; /* this child's copy of the descriptor */
    } else if (s->host_ws && !s->zygote) {
        *step = "take its workdir";
        ws_tree = (int)syscall(SYS_open_tree, AT_FDCWD, s->host_ws,
                               OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE |
                                   AT_SYMLINK_NOFOLLOW);
        if (ws_tree < 0)
            return errno;
    }
    if (s->userns && (e = enter_userns(s, step)))
        return e;
    *step = "make its mounts private";
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return errno;
    if ((e = build_root(s, step)))
        return e;
    *step = "mount a tmpfs on /tmp";
    if ((e = mount_tmpfs("/tmp", s->zygote ? ZYGOTE_TMPFS_BYTES : s->tmpfs_bytes, "1777")))
        return e;
    int shm = 0;
    if (!s->zygote) {
        *step = "mount a tmpfs on /dev/shm";
        uint64_t b = s->tmpfs_bytes < SHM_MAX_BYTES ? s->tmpfs_bytes : SHM_MAX_BYTES;
        if ((e = mount_tmpfs("/dev/shm", b, "1777")))
            return e;
        shm = 1;
    }
    if (!s->zygote) {
        *step = "make its workspace";
        char buf[PATH_BUF];
        size_t wl = strlen(s->inner_ws);
        if (wl + 2 > sizeof buf || strncmp(s->inner_ws, "/tmp/", 5) != 0)
            return EINVAL;
        memcpy(buf, s->inner_ws, wl);
        buf[wl] = '/';
        buf[wl + 1] = '\0';
        if ((e = mkdirs(buf, wl + 1, 5)))
            return e;
        if (ws_tree >= 0) {
            *step = "bind its workdir";
            if (syscall(SYS_move_mount, ws_tree, "", AT_FDCWD, s->inner_ws,
                        MOVE_MOUNT_F_EMPTY_PATH) < 0)
                return errno;
            close(ws_tree);
            if (mount(NULL, s->inner_ws, NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return errno;
        } else if (chown(s->inner_ws, s->uid, s->gid) < 0) {
            return errno;
        }
        *step = "write its files";
        for (size_t i = 0; i < s->nfiles; i++) {
            if ((e = s->host_ws ? write_one_into(s->inner_ws, &s->files[i], s->uid, s->gid)
                                : write_one(s->inner_ws, wl, &s->files[i], s->uid, s->gid)))
                return e;
        }
    }
    *step = "make its root read-only";
    if ((e = setattr("/", AT_RECURSIVE, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, 0)))
        return e;
    if ((e = setattr("/tmp", 0, 0, MOUNT_ATTR_RDONLY)))
        return e;
    if (shm && (e = setattr("/dev/shm", 0, 0, MOUNT_ATTR_RDONLY)))
        return e;
    if (s->host_ws && !s->zygote &&
        (e = setattr(s->inner_ws, 0, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, MOUNT_ATTR_RDONLY)))
        return e;
    *step = "bring up loopback";
    if ((e = loopback_up()))
        return e;
    *step = "set its hostname";
    if (sethostname("gg-sandbox", 10) < 0)
        return errno;
    return 0;
}

/* Kernel keyring calls refused with ENOSYS (add_key, request_key, and keyctl but for joining
 * a new anonymous session keyring) by a seccomp filter: without a user namespace of its own a
 * job shares its uid's user keyring with every other job, as the host's uid 65534 processes
 * do. The native numbers, and on x86-64 the i386 ones (x32 calls are refused whole); calls of
 * another architecture are refused whole. */
#if defined(__x86_64__) || defined(__aarch64__)
#define GG_KEYS_FILTER 1
#if defined(__x86_64__)
#define GG_AUDIT_ARCH AUDIT_ARCH_X86_64
#define GG_NR_ADD_KEY 248
#define GG_NR_REQUEST_KEY 249
#define GG_NR_KEYCTL 250
#else
#define GG_AUDIT_ARCH AUDIT_ARCH_AARCH64
#define GG_NR_ADD_KEY 217
#define GG_NR_REQUEST_KEY 218
#define GG_NR_KEYCTL 219
#endif
#define GG_DENY (SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA))
#define GG_ARG_LO(n) (offsetof(struct seccomp_data, args) + 8 * (n))
#define GG_ARG_HI(n) (GG_ARG_LO(n) + 4) /* (little-endian) */

int ggi_sandbox_child_deny_keys(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
#if defined(__x86_64__)
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_I386, 0, 6),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 286, 3, 0), /* i386 add_key */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 287, 2, 0), /* request_key */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 288, 1, 0), /* keyctl */
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, GG_DENY),
#endif
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, GG_AUDIT_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, GG_DENY),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
#if defined(__x86_64__)
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 11, 0), /* x32 */
#endif
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, GG_NR_ADD_KEY, 10, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, GG_NR_REQUEST_KEY, 9, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, GG_NR_KEYCTL, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        /* keyctl: only KEYCTL_JOIN_SESSION_KEYRING (1) with no name */
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, GG_ARG_LO(0)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, KEYCTL_JOIN_SESSION_KEYRING_NR, 0, 5),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, GG_ARG_LO(1)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, GG_ARG_HI(1)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, GG_DENY),
    };
    struct sock_fprog prog = { (unsigned short)(sizeof f / sizeof f[0]), f };
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
        return errno;
    return 0;
}
#else
int ggi_sandbox_child_deny_keys(void)
{
    return 0; /* (no filter written for this architecture) */
}
#endif

int ggi_sandbox_child_drop(const ggi_sandbox_spec *s)
{
    for (int c = 0; c < 64; c++) {
        if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
            return errno;
    }
    /* (In a user namespace made without root, setgroups is denied: the host user's own
     * groups stay, as they would for any process of theirs.) */
    if (syscall(SYS_setgroups, 0, NULL) < 0 && !(s->userns && errno == EPERM))
        return errno;
    if (syscall(SYS_setresgid, s->gid, s->gid, s->gid) < 0)
        return errno;
    if (syscall(SYS_setresuid, s->uid, s->uid, s->uid) < 0)
        return errno;
    /* A session keyring of its own, the job's uid's: the one it inherited is the host's, whose
     * keys a possessor may read. (A kernel without keys has none to leak.) */
    if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING_NR, NULL) < 0 && errno != ENOSYS)
        return errno;
    if (s->userns && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 &&
        errno != EINVAL)
        return errno;
    gg_cap_header h = { GG_CAP_VERSION_3, 0 };
    gg_cap_data d[2];
    memset(d, 0, sizeof d);
    if (syscall(SYS_capset, &h, d) < 0)
        return errno;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return errno;
    if (!s->userns)
        return ggi_sandbox_child_deny_keys();
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* host side: what a program needs in the job's root                                        */

/* 1 when path (resolved) is in the job's root anyway, or must not be bound: "/", the
 * runtime's directories, /tmp (the job's own). */
static int bind_needless(const char *path)
{
    if (!strcmp(path, "/") || !strcmp(path, "/tmp") || !strncmp(path, "/tmp/", 5))
        return 1;
    for (int i = 0; RUNTIME_DIRS[i]; i++) {
        size_t n = strlen(RUNTIME_DIRS[i]);
        if (!strncmp(path, RUNTIME_DIRS[i], n) && (path[n] == '\0' || path[n] == '/'))
            return 1;
    }
    return 0;
}

static void add_bind(ggi_sandbox_binds *b, const char *path)
{
    char *real = realpath(path, NULL);
    if (!real)
        return;
    size_t rl = strlen(real);
    int skip = bind_needless(real) || rl >= sizeof b->path[0];
    for (int i = 0; i < b->n && !skip; i++) {
        size_t n = strlen(b->path[i]);
        /* Already there, or below one that is. */
        skip = !strncmp(real, b->path[i], n) && (real[n] == '\0' || real[n] == '/');
        if (!skip && !strncmp(b->path[i], real, rl) && b->path[i][rl] == '/') {
            /* It holds one already there: it takes that one's place. */
            memcpy(b->path[i], real, rl + 1);
            skip = 1;
        }
    }
    if (!skip && b->n < GGI_SANDBOX_MAX_BINDS)
        memcpy(b->path[b->n++], real, rl + 1);
    free(real);
}

/* 1 when dir is a home directory: /root, /home/NAME or the host user's $HOME. */
static int is_home(const char *dir)
{
    char *real = realpath(dir, NULL);
    const char *d = real ? real : dir;
    const char *h = getenv("HOME");
    char *hreal = h && *h ? realpath(h, NULL) : NULL;
    int home = !strcmp(d, "/root") ||
               (!strncmp(d, "/home/", 6) && d[6] && !strchr(d + 6, '/')) ||
               (hreal && !strcmp(d, hreal));
    free(real);
    free(hreal);
    return home;
}

/* The prefix of program: the directory above its bin/ or sbin/ (unless that is a home),
 * else the file itself. */
static void add_prefix(ggi_sandbox_binds *b, const char *program)
{
    char buf[PATH_MAX];
    if (!program || program[0] != '/' || strlen(program) >= sizeof buf)
        return;
    memcpy(buf, program, strlen(program) + 1);
    char *slash = strrchr(buf, '/');
    *slash = '\0';
    char *up = strrchr(buf, '/');
    const char *dir_name = up ? up + 1 : buf;
    if (up && up != buf && (!strcmp(dir_name, "bin") || !strcmp(dir_name, "sbin"))) {
        /* ~/bin is no prefix: a home stays out, only its bin/ comes along. */
        *up = '\0';
        int home = is_home(buf);
        *up = '/';
        if (!home)
            *up = '\0';
        add_bind(b, buf);
    } else {
        add_bind(b, program);
    }
}

void ggi_sandbox_program_binds(ggi_sandbox_binds *b, const char *program)
{
    add_prefix(b, program);
    char *real = program ? realpath(program, NULL) : NULL;
    if (real)
        add_prefix(b, real);
    free(real);
}

/* ---------------------------------------------------------------------------------------- */
/* probe                                                                                    */

static ggi_sandbox_caps caps;
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;

/* Forks a sandbox exactly as a job gets it (with or without a user namespace), runs the drop
 * step, and reports: 1 when it worked, else 0 with the reason in why. */
static int probe_namespaces(int userns, char *why, size_t why_len)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        snprintf(why, why_len, "pipe: %s", strerror(errno));
        return 0;
    }
    ggi_sandbox_spec s;
    memset(&s, 0, sizeof s);
    s.inner_ws = "/tmp/gg-probe/ws";
    s.tmpfs_bytes = 1u << 20;
    s.uid = GGI_SANDBOX_UID;
    s.gid = GGI_SANDBOX_GID;
    s.userns = userns;
    ggi_sandbox_file f = { "x/probe.txt", "ok", 2 };
    s.files = &f;
    s.nfiles = 1;
    int sync_wr = -1, e0 = ggi_sandbox_userns_pipe(&s, &s.userns_fd, &sync_wr);
    if (e0) {
        close(p[0]);
        close(p[1]);
        snprintf(why, why_len, "pipe: %s", strerror(e0));
        return 0;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = ggi_sandbox_raw_clone((unsigned long)ggi_sandbox_clone_flags(&s));
    if (pid == 0) {
        const char *step = "clone";
        if (sync_wr >= 0)
            close(sync_wr);
        int e = ggi_sandbox_child_setup(&s, &step);
        if (!e) {
            step = "drop its privileges";
            e = ggi_sandbox_child_drop(&s);
        }
        if (!e && (access("/etc", W_OK) == 0 || getuid() != GGI_SANDBOX_UID)) {
            step = "check read-only /etc";
            e = EPERM;
        }
        char msg[200];
        size_t n = 0;
        if (e) {
            const char *what = strerror(e);
            size_t a = strlen(step), b = strlen(what);
            if (a + b + 3 < sizeof msg) {
                memcpy(msg, step, a);
                memcpy(msg + a, ": ", 2);
                memcpy(msg + a + 2, what, b);
                n = a + b + 2;
            }
        }
        ssize_t w = write(p[1], msg, n);
        (void)w;
        _exit(e ? 1 : 0);
    }
    int clone_errno = errno;
    int map_errno = pid > 0 ? ggi_sandbox_userns_map(pid, sync_wr) : 0;
    if (pid < 0 && sync_wr >= 0)
        close(sync_wr);
    if (s.userns_fd >= 0)
        close(s.userns_fd);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(p[1]);
    if (pid < 0) {
        snprintf(why, why_len, "cannot make namespaces (clone: %s)%s", strerror(clone_errno),
                 caps.root || userns ? "" : "; not running as root");
        close(p[0]);
        return 0;
    }
    char msg[200];
    ssize_t n = read(p[0], msg, sizeof msg - 1);
    close(p[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (map_errno) {
        snprintf(why, why_len, "cannot map the sandbox's user namespace: %s",
                 strerror(map_errno));
        return 0;
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 1;
    msg[n > 0 ? n : 0] = '\0';
    snprintf(why, why_len, "a test sandbox failed to %s", n > 0 ? msg : "start");
    return 0;
}

static void probe(void)
{
    memset(&caps, 0, sizeof caps);
    DIR *etc = opendir("/etc");
    struct dirent *de;
    int n_extra = 0;
    while (etc && n_extra < MAX_ETC_EXTRA && (de = readdir(etc)) != NULL) {
        if ((!strncmp(de->d_name, "python", 6) || !strncmp(de->d_name, "java-", 5)) &&
            strlen(de->d_name) < sizeof etc_extra[0])
            snprintf(etc_extra[n_extra++], sizeof etc_extra[0], "%s", de->d_name);
    }
    if (etc)
        closedir(etc);
    caps.root = geteuid() == 0;
    gg_mount_attr a;
    memset(&a, 0, sizeof a);
    errno = 0;
    /* An invalid call: ENOSYS tells the syscall is missing, anything else that it exists. */
    caps.mount_setattr = !(syscall(SYS_mount_setattr, -1, "", 0, &a, sizeof a) < 0 &&
                           errno == ENOSYS);
    FILE *f = fopen("/proc/sys/user/max_user_namespaces", "r");
    long maxns = -1;
    if (f) {
        if (fscanf(f, "%ld", &maxns) != 1)
            maxns = -1;
        fclose(f);
    }
    /* GRYPHGEN_USERNS=0 keeps a root host on the sandbox without a user namespace. */
    const char *env = getenv("GRYPHGEN_USERNS");
    int off = caps.root && env && !strcmp(env, "0");
    char uwhy[200] = "";
    if (maxns > 0 && caps.mount_setattr && !off)
        caps.userns = probe_namespaces(1, uwhy, sizeof uwhy);
    if (caps.userns) {
        caps.use_userns = 1;
        /* Without root the jobs keep the host user's ids, so that user's own files would be
         * readable: their HOME is hidden (/tmp is the sandbox's own already). */
        const char *home = getenv("HOME");
        char *real = !caps.root && home ? realpath(home, NULL) : NULL;
        if (real && strcmp(real, "/") && strncmp(real, "/tmp/", 5) && strlen(real) < 1024)
            snprintf(caps.hide_dir, sizeof caps.hide_dir, "%s", real);
        free(real);
        snprintf(caps.userns_why, sizeof caps.userns_why,
                 "user namespaces work: each job gets its own, in which only uid/gid %d "
                 "exists (mapped to %s on the host)%s%.300s", GGI_SANDBOX_UID,
                 caps.root ? "65534" : "the host user's own ids",
                 caps.hide_dir[0] ? "; jobs do not see the host user's home " : "",
                 caps.hide_dir);
    } else {
        snprintf(caps.userns_why, sizeof caps.userns_why, "%s",
                 maxns == 0 ? "user namespaces are disabled (max_user_namespaces is 0)"
                 : !caps.mount_setattr ? "not tried (no mount_setattr)"
                 : off ? "turned off by GRYPHGEN_USERNS=0"
                 : *uwhy ? uwhy : "user namespaces are not available");
    }
    if (!caps.mount_setattr) {
        snprintf(caps.namespaces_why, sizeof caps.namespaces_why,
                 "the kernel lacks mount_setattr (Linux 5.12+), needed for a read-only host");
    } else if (caps.userns) {
        caps.namespaces = 1;
    } else if (!caps.root) {
        snprintf(caps.namespaces_why, sizeof caps.namespaces_why,
                 "not running as root and no user namespace could be made (%.150s)",
                 caps.userns_why);
    } else {
        caps.namespaces = probe_namespaces(0, caps.namespaces_why, sizeof caps.namespaces_why);
    }
    if (caps.namespaces)
        snprintf(caps.namespaces_why, sizeof caps.namespaces_why,
                 "%sPID, mount, network, IPC and UTS namespaces work; jobs run as uid %d "
                 "with no capabilities in a read-only root holding only the runtime",
                 caps.use_userns ? "user, " : "", GGI_SANDBOX_UID);
    caps.best = caps.namespaces ? GGI_ISO_NAMESPACES : GGI_ISO_RLIMITS;
}

const ggi_sandbox_caps *ggi_sandbox_probe(void)
{
    pthread_once(&probe_once, probe);
    return &caps;
}
