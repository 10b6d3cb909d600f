/*
 * sandbox.c - the namespace sandbox of the process executor: level names, a one-time probe
 * of what the host allows (a test clone into fresh namespaces with the same mounts a job
 * gets), and the async-signal-safe steps a cloned child takes: make its mount tree private,
 * put a size-capped tmpfs on /tmp (the workspace lives in it, so a job cannot fill the host's
 * disk), write the job's files there, mount a fresh /proc, turn the whole host tree
 * read-only (mount_setattr, recursive), bring up loopback in its empty network namespace,
 * and finally, in the job process, drop to an unprivileged uid with no capabilities.
 */
#include <errno.h>
#include <fcntl.h>
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
    if (s->userns && (e = enter_userns(s, step)))
        return e;
    *step = "make its mounts private";
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return errno;
    *step = "mount a tmpfs on /tmp";
    if ((e = mount_tmpfs("/tmp", s->zygote ? ZYGOTE_TMPFS_BYTES : s->tmpfs_bytes, "1777")))
        return e;
    int shm = 0;
    struct stat st;
    if (!s->zygote && stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode)) {
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
        if (chown(s->inner_ws, s->uid, s->gid) < 0)
            return errno;
        *step = "write its files";
        for (size_t i = 0; i < s->nfiles; i++) {
            if ((e = write_one(s->inner_ws, wl, &s->files[i], s->uid, s->gid)))
                return e;
        }
        *step = "mount /proc";
        if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
            return errno;
    }
    if (s->hide_dir) {
        *step = "hide the host user's home";
        if ((e = mount_tmpfs(s->hide_dir, 4096, "0555")))
            return e;
    }
    *step = "make the host filesystem read-only";
    if ((e = setattr("/", AT_RECURSIVE, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, 0)))
        return e;
    if ((e = setattr("/tmp", 0, 0, MOUNT_ATTR_RDONLY)))
        return e;
    if (shm && (e = setattr("/dev/shm", 0, 0, MOUNT_ATTR_RDONLY)))
        return e;
    *step = "bring up loopback";
    if ((e = loopback_up()))
        return e;
    *step = "set its hostname";
    if (sethostname("gg-sandbox", 10) < 0)
        return errno;
    return 0;
}

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
    return 0;
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
                 "with no capabilities on a read-only host",
                 caps.use_userns ? "user, " : "", GGI_SANDBOX_UID);
    caps.best = caps.namespaces ? GGI_ISO_NAMESPACES : GGI_ISO_RLIMITS;
}

const ggi_sandbox_caps *ggi_sandbox_probe(void)
{
    pthread_once(&probe_once, probe);
    return &caps;
}
