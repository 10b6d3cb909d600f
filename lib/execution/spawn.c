/*
 * spawn.c - runs one child process to its end: everything the child needs (resolved program
 * path, rlimits, descriptors) is prepared before fork so the child only makes
 * async-signal-safe calls before exec; a close-on-exec pipe carries an exec failure back;
 * the parent multiplexes stdin, stdout, stderr and a pidfd in one poll loop with the
 * wall-clock timeout and the cancel flag, kills the child's whole process group when it
 * ends, and drains the pipes for a bounded time so a grandchild holding them cannot hang us.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "overlay.h"
#include "sandbox.h"
#include "spawn.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* How long the pipes are still drained after the group was killed (a process that left the
 * group may hold them open forever). */
#define DRAIN_MS 500.0
/* How long we wait for a SIGKILLed child to be reapable before giving up on it. */
#define REAP_GRACE_MS 10000.0
/* Poll tick while a cancel flag must be watched or no pidfd is available. */
#define CANCEL_TICK_MS 20
#define NOPIDFD_TICK_MS 10
#define READ_CHUNK 65536
#define MAX_LIMITS 5
#define ENV_SCAN_MAX 100000

enum { STAGE_SETSID = 1, STAGE_DUP, STAGE_CHDIR, STAGE_RLIMIT, STAGE_EXEC, STAGE_SANDBOX,
       STAGE_FORK, STAGE_DROP, STAGE_OVERLAY };

typedef struct child_msg {
    int stage;
    int err;
    const char *step; /* a string literal of the sandbox step (same address in the parent) */
} child_msg;

/* What a sandbox's init reports about the job when it ends. */
typedef struct init_msg {
    int status;
    long maxrss;
} init_msg;

typedef struct prepared_limit {
    int resource;
    struct rlimit lim;
} prepared_limit;

/* Everything the child needs, computed before fork. */
typedef struct child_plan {
    const char *path;
    char *const *argv;
    char *const *envp;
    const char *cwd;
    int in_fd, out_fd, err_fd, report_fd;
    pid_t parent;
    const ggi_sandbox_spec *sb;
    const ggi_overlay_attach *overlay;
    int status_fd;
    int userns_wr;    /* the host's end of the user namespace pipe (closed in the child) */
    prepared_limit limits[MAX_LIMITS];
    int nlimits;
} child_plan;

/* ---------------------------------------------------------------------------------------- */
/* helpers                                                                                  */

const char *ggi_spawn_env_get(const char *const *envp, const char *name)
{
    if (!envp || !name)
        return NULL;
    size_t n = strlen(name);
    for (size_t i = 0; i < ENV_SCAN_MAX && envp[i]; i++) {
        if (strncmp(envp[i], name, n) == 0 && envp[i][n] == '=')
            return envp[i] + n + 1;
    }
    return NULL;
}

static int is_executable_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

int ggi_spawn_find_program(const char *name, const char *path_env, char **out)
{
    *out = NULL;
    if (!name || !*name)
        return ggi_error(GG_EINVAL, "program name is empty");
    if (strchr(name, '/')) {
        *out = strdup(name);
        return *out ? GG_OK : ggi_error(GG_ENOMEM, "out of memory");
    }
    const char *p = path_env ? path_env : "/usr/bin:/bin";
    size_t nlen = strlen(name);
    char cand[PATH_MAX];
    while (*p) {
        const char *colon = strchr(p, ':');
        size_t dlen = colon ? (size_t)(colon - p) : strlen(p);
        /* An empty entry would mean the child's cwd, which is not known here: skip it. */
        if (dlen > 0 && dlen + 1 + nlen < sizeof cand) {
            memcpy(cand, p, dlen);
            cand[dlen] = '/';
            memcpy(cand + dlen + 1, name, nlen + 1);
            if (is_executable_file(cand)) {
                *out = strdup(cand);
                return *out ? GG_OK : ggi_error(GG_ENOMEM, "out of memory");
            }
        }
        if (!colon)
            break;
        p = colon + 1;
    }
    return ggi_error(GG_ENOTFOUND, "program '%s' not found", name);
}

void ggi_spawn_signal_name(int sig, char out[24])
{
    const char *abbrev = sig > 0 ? sigabbrev_np(sig) : NULL;
    if (abbrev)
        snprintf(out, 24, "SIG%s", abbrev);
    else
        snprintf(out, 24, "SIG%d", sig);
}

/* Length of the well-formed UTF-8 sequence at s (n bytes available), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c >= 0x01 && c < 0x80)
        return 1;
    size_t len;
    uint32_t cp, min;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, cp = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

int ggi_utf8_sanitize(const char *data, size_t len, char **out)
{
    *out = NULL;
    if (!data)
        len = 0;
    if (len > (SIZE_MAX - 1) / 3)
        return ggi_error(GG_ENOMEM, "text too large to sanitise");
    /* Each bad byte grows to 3 bytes at most. */
    char *o = malloc(len * 3 + 1);
    if (!o)
        return ggi_error(GG_ENOMEM, "out of memory sanitising %zu bytes of output", len);
    const unsigned char *s = (const unsigned char *)data;
    size_t i = 0, j = 0;
    while (i < len) {
        size_t k = utf8_seq(s + i, len - i);
        if (k) {
            memcpy(o + j, s + i, k);
            i += k, j += k;
        } else {
            o[j++] = (char)0xEF, o[j++] = (char)0xBF, o[j++] = (char)0xBD;
            i++;
        }
    }
    o[j] = '\0';
    *out = o;
    return GG_OK;
}

void ggi_spawn_result_free(ggi_spawn_result *res)
{
    if (!res)
        return;
    ggi_buf_free(&res->out);
    ggi_buf_free(&res->err);
    memset(res, 0, sizeof *res);
}

/* ---------------------------------------------------------------------------------------- */
/* preparation                                                                              */

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* Moves fd above 2 so the child's dup2 onto 0/1/2 can never clobber a source. */
static int lift_fd(int *fd)
{
    if (*fd > 2)
        return GG_OK;
    int n = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
    if (n < 0)
        return ggi_error(GG_EIO, "fcntl(F_DUPFD_CLOEXEC) failed: %s", strerror(errno));
    close(*fd);
    *fd = n;
    return GG_OK;
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return ggi_error(GG_EIO, "fcntl(O_NONBLOCK) failed: %s", strerror(errno));
    return GG_OK;
}

/* Adds a limit of want (0: none) capped at the inherited hard limit; the hard limit is set
 * extra units above the soft one when the inherited hard limit allows. */
static int plan_limit(child_plan *pl, int resource, uint64_t want, uint64_t extra)
{
    if (!want)
        return GG_OK;
    struct rlimit cur;
    if (getrlimit(resource, &cur) != 0)
        return ggi_error(GG_EIO, "getrlimit failed: %s", strerror(errno));
    rlim_t v = want >= (uint64_t)RLIM_INFINITY ? RLIM_INFINITY - 1 : (rlim_t)want;
    if (cur.rlim_max != RLIM_INFINITY && v > cur.rlim_max)
        v = cur.rlim_max;
    rlim_t hard = v;
    if (extra && v <= RLIM_INFINITY - 1 - extra &&
        (cur.rlim_max == RLIM_INFINITY || v + extra <= cur.rlim_max))
        hard = v + (rlim_t)extra;
    if (pl->nlimits >= MAX_LIMITS)
        return ggi_error(GG_EINTERNAL, "too many rlimits");
    pl->limits[pl->nlimits].resource = resource;
    pl->limits[pl->nlimits].lim.rlim_cur = v;
    pl->limits[pl->nlimits].lim.rlim_max = hard;
    pl->nlimits++;
    return GG_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* the child: async-signal-safe calls only                                                  */

static void child_fail_step(int fd, int stage, int err, const char *step)
{
    child_msg m = { stage, err, step };
    ssize_t w = write(fd, &m, sizeof m);
    (void)w;
    _exit(127);
}

static void child_fail(int fd, int stage, int err)
{
    child_msg m = { stage, err, NULL };
    ssize_t w = write(fd, &m, sizeof m);
    (void)w;
    _exit(127);
}

__attribute__((noreturn)) static void child_run(const child_plan *pl)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++) {
        if (s != SIGKILL && s != SIGSTOP)
            (void)sigaction(s, &dfl, NULL); /* glibc's internal signals refuse: fine */
    }
    if (setsid() < 0)
        child_fail(pl->report_fd, STAGE_SETSID, errno);
    /* If the host dies (crash, SIGKILL) the job dies with it. The forking thread stays in
     * ggi_spawn_run until the job ends, so its exit cannot trigger this early. */
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != pl->parent)
        _exit(127);
    if (dup2(pl->in_fd, 0) < 0 || dup2(pl->out_fd, 1) < 0 || dup2(pl->err_fd, 2) < 0)
        child_fail(pl->report_fd, STAGE_DUP, errno);
    /* Descriptors the host left inheritable must not reach the job. */
    (void)syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
    if (pl->overlay) {
        const char *step = "attach its overlay";
        int e = ggi_overlay_child_attach(pl->overlay, &step);
        if (e)
            child_fail_step(pl->report_fd, STAGE_OVERLAY, e, step);
    }
    if (pl->cwd && chdir(pl->cwd) < 0)
        child_fail(pl->report_fd, STAGE_CHDIR, errno);
    for (int i = 0; i < pl->nlimits; i++) {
        if (setrlimit(pl->limits[i].resource, &pl->limits[i].lim) < 0)
            child_fail(pl->report_fd, STAGE_RLIMIT, errno);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(pl->path, pl->argv, pl->envp);
    child_fail(pl->report_fd, STAGE_EXEC, errno);
    _exit(127);
}

/* The sandbox: this child is PID 1 of fresh namespaces. It builds the sandbox as root, then
 * forks the job (which drops its privileges and execs) and stays as a minimal init: it
 * reaps every orphan, and when the job ends reports its status and exits, which makes the
 * kernel kill whatever is left in the namespace. PID 1 ignores signals it has no handler
 * for, so the job must not be PID 1 itself: its signals must act as they do outside. */
__attribute__((noreturn)) static void child_sandbox(const child_plan *pl)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++) {
        if (s != SIGKILL && s != SIGSTOP)
            (void)sigaction(s, &dfl, NULL);
    }
    if (setsid() < 0)
        child_fail(pl->report_fd, STAGE_SETSID, errno);
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (pl->userns_wr >= 0)
        close(pl->userns_wr);
    const char *step = "start";
    int e = ggi_sandbox_child_setup(pl->sb, &step);
    if (e)
        child_fail_step(pl->report_fd, STAGE_SANDBOX, e, step);
    pid_t job = ggi_sandbox_raw_clone(0);
    if (job == 0) {
        (void)setsid();
        if (dup2(pl->in_fd, 0) < 0 || dup2(pl->out_fd, 1) < 0 || dup2(pl->err_fd, 2) < 0)
            child_fail(pl->report_fd, STAGE_DUP, errno);
        (void)syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
        if (pl->cwd && chdir(pl->cwd) < 0)
            child_fail(pl->report_fd, STAGE_CHDIR, errno);
        for (int i = 0; i < pl->nlimits; i++) {
            if (setrlimit(pl->limits[i].resource, &pl->limits[i].lim) < 0)
                child_fail(pl->report_fd, STAGE_RLIMIT, errno);
        }
        if ((e = ggi_sandbox_child_drop(pl->sb)))
            child_fail(pl->report_fd, STAGE_DROP, e);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(pl->path, pl->argv, pl->envp);
        child_fail(pl->report_fd, STAGE_EXEC, errno);
    }
    if (job < 0)
        child_fail(pl->report_fd, STAGE_FORK, errno);
    /* The init never execs, so close-on-exec does not help: it must drop every descriptor
     * it inherited (the job's stdin writer, other jobs' pipes) but its status pipe. */
    if (pl->status_fd > 3)
        (void)syscall(SYS_close_range, 3U, (unsigned)pl->status_fd - 1, 0U);
    (void)syscall(SYS_close_range, (unsigned)pl->status_fd + 1, ~0U, 0U);
    close(0);
    close(1);
    close(2);
    for (;;) {
        int st = 0;
        struct rusage ru;
        memset(&ru, 0, sizeof ru);
        pid_t w = wait4(-1, &st, 0, &ru);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            _exit(125);
        if (w == job) {
            init_msg m = { st, ru.ru_maxrss };
            ssize_t n = write(pl->status_fd, &m, sizeof m);
            (void)n;
            _exit(0);
        }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* the parent                                                                               */

static void kill_group(pid_t pid)
{
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL); /* in case it has not called setsid yet */
}

/* Reads once from *fd into b (keeping at most cap bytes); closes *fd at EOF or error. */
static int pump_out(int *fd, ggi_buf *b, size_t cap, int *truncated)
{
    char chunk[READ_CHUNK];
    ssize_t n = read(*fd, chunk, sizeof chunk);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return GG_OK;
        close_fd(fd);
        return GG_OK;
    }
    if (n == 0) {
        close_fd(fd);
        return GG_OK;
    }
    size_t keep = (size_t)n;
    if (b->len >= cap)
        keep = 0;
    else if (keep > cap - b->len)
        keep = cap - b->len;
    if (keep < (size_t)n)
        *truncated = 1;
    if (keep)
        return ggi_buf_append(b, chunk, keep);
    return GG_OK;
}

static const char *stage_what(int stage)
{
    switch (stage) {
    case STAGE_SETSID: return "start a session";
    case STAGE_DUP: return "set up its standard streams";
    case STAGE_CHDIR: return "enter its working directory";
    case STAGE_RLIMIT: return "apply its resource limits";
    case STAGE_SANDBOX: return "build its sandbox";
    case STAGE_FORK: return "fork inside its sandbox";
    case STAGE_DROP: return "drop its privileges";
    default: return "execute";
    }
}

/* One run's state, shared by the steps of ggi_spawn_run. Every descriptor is -1 when not
 * open; release() closes whatever is left. */
typedef struct spawn_run {
    const ggi_spawn_opts *o;
    ggi_spawn_result *res;
    const ggi_spawn_external *ext;
    char *path;                /* the resolved program (NULL for an external start) */
    child_plan pl;
    ggi_sandbox_spec sb_copy;  /* carries the child's end of the user namespace pipe */
    int in_w, out_r, err_r, rep_r, pidfd, st_r;
    int own_pidfd;             /* 0: pidfd belongs to the external starter */
    pid_t pid;
    double start;              /* when the child was started (ggi_now_ms) */
    /* the I/O loop's state */
    const char *in_data;
    size_t in_left;
    double deadline, kill_at, drain_until;
    int exited, killed, group_cleared, stuck;
    int fail_rc;               /* a failure seen while the child ran (it is then killed) */
} spawn_run;

/* Checks the options and makes res's buffers non-NULL so callers can always read .data. */
static int check_opts(const ggi_spawn_opts *o, ggi_spawn_result *res)
{
    if (!res)
        return ggi_error(GG_EINVAL, "spawn: result is NULL");
    memset(res, 0, sizeof *res);
    if (!o || !o->argv || !o->argv[0] || !o->argv[0][0])
        return ggi_error(GG_EINVAL, "spawn: argv is empty");
    if (!isfinite(o->timeout_s) || !isfinite(o->cpu_s) || o->cpu_s < 0)
        return ggi_error(GG_EINVAL, "spawn: timeout_s and cpu_s must be finite");
    if (o->stdin_len && !o->stdin_data)
        return ggi_error(GG_EINVAL, "spawn: stdin_len without stdin_data");
    if (ggi_buf_append(&res->out, "", 0) || ggi_buf_append(&res->err, "", 0)) {
        ggi_spawn_result_free(res);
        return GG_ENOMEM;
    }
    return GG_OK;
}

/* Resolves the program and fills the child's plan: argv, environment, cwd, rlimits. */
static int plan_child(spawn_run *s)
{
    static const char *const empty_env[] = { NULL };
    const ggi_spawn_opts *o = s->o;
    const char *const *envp = o->envp ? o->envp : empty_env;
    child_plan *pl = &s->pl;
    pl->in_fd = pl->out_fd = pl->err_fd = pl->report_fd = pl->status_fd = pl->userns_wr = -1;
    s->in_w = s->out_r = s->err_r = s->rep_r = s->pidfd = s->st_r = -1;
    s->own_pidfd = 1;
    s->sb_copy.userns_fd = -1;
    int rc = s->ext ? GG_OK
                    : ggi_spawn_find_program(o->argv[0], ggi_spawn_env_get(envp, "PATH"),
                                             &s->path);
    if (rc)
        return rc;
    pl->path = s->path;
    pl->argv = (char *const *)o->argv;
    pl->envp = (char *const *)envp;
    pl->cwd = o->cwd;
    pl->sb = o->sandbox;
    pl->overlay = o->sandbox ? NULL : o->overlay;
    if (o->sandbox && !s->ext) {
        s->sb_copy = *o->sandbox;
        s->sb_copy.userns_fd = -1;
        pl->sb = &s->sb_copy;
    }
    if (s->ext)
        return GG_OK;
    if ((rc = plan_limit(pl, RLIMIT_CPU, (uint64_t)ceil(o->cpu_s), 1)) ||
        (rc = plan_limit(pl, RLIMIT_AS, o->as_bytes, 0)) ||
        (rc = plan_limit(pl, RLIMIT_FSIZE, o->fsize_bytes, 0)) ||
        (rc = plan_limit(pl, RLIMIT_NOFILE, o->nofile, 0)) ||
        (rc = plan_limit(pl, RLIMIT_NPROC, o->nproc, 0)))
        return rc;
    return GG_OK;
}

/* A sandbox's pipes: its init's status report and the user namespace hand-shake. */
static int open_sandbox_pipes(spawn_run *s)
{
    if (!s->pl.sb || s->ext)
        return GG_OK;
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return ggi_error(GG_EIO, "pipe2 failed: %s", strerror(errno));
    s->st_r = p[0], s->pl.status_fd = p[1];
    int rc = set_nonblock(s->st_r);
    if (rc)
        return rc;
    int e = ggi_sandbox_userns_pipe(s->pl.sb, &s->sb_copy.userns_fd, &s->pl.userns_wr);
    if (e)
        return ggi_error(GG_EIO, "pipe2 failed: %s", strerror(e));
    return GG_OK;
}

/* The child's stdin, stdout, stderr and exec report; the child's ends lifted above 2. */
static int open_std_pipes(spawn_run *s)
{
    child_plan *pl = &s->pl;
    int p[2], rc;
    /* stdin: a socket pair, so a write after the child has gone gives EPIPE without
     * raising SIGPIPE in the host (MSG_NOSIGNAL); /dev/null when there is nothing to send. */
    if (s->o->stdin_data && s->o->stdin_len) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) < 0)
            return ggi_error(GG_EIO, "socketpair failed: %s", strerror(errno));
        pl->in_fd = p[0];
        s->in_w = p[1];
        shutdown(s->in_w, SHUT_RD);
        if ((rc = set_nonblock(s->in_w)))
            return rc;
    } else {
        pl->in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (pl->in_fd < 0)
            return ggi_error(GG_EIO, "cannot open /dev/null: %s", strerror(errno));
    }
    int *reads[3] = { &s->out_r, &s->err_r, &s->rep_r };
    int *writes[3] = { &pl->out_fd, &pl->err_fd, &pl->report_fd };
    for (int i = 0; i < 3; i++) {
        if (pipe2(p, O_CLOEXEC) < 0)
            return ggi_error(GG_EIO, "pipe2 failed: %s", strerror(errno));
        *reads[i] = p[0], *writes[i] = p[1];
    }
    if ((rc = lift_fd(&pl->in_fd)) || (rc = lift_fd(&pl->out_fd)) ||
        (rc = lift_fd(&pl->err_fd)) || (rc = lift_fd(&pl->report_fd)) ||
        (pl->status_fd >= 0 && (rc = lift_fd(&pl->status_fd))) ||
        (rc = set_nonblock(s->out_r)) || (rc = set_nonblock(s->err_r)))
        return rc;
    return GG_OK;
}

/* Closes the parent's copies of the child's ends. */
static void close_child_ends(spawn_run *s)
{
    close_fd(&s->pl.in_fd);
    close_fd(&s->pl.out_fd);
    close_fd(&s->pl.err_fd);
    close_fd(&s->pl.report_fd);
    close_fd(&s->pl.status_fd);
}

/* Hands the job to its external starter (a zygote). */
static int start_external(spawn_run *s)
{
    s->start = ggi_now_ms();
    int rc = s->ext->start(s->ext->ctx, s->pl.in_fd, s->pl.out_fd, s->pl.err_fd, &s->pidfd);
    s->own_pidfd = 0;
    close_child_ends(s);
    return rc;
}

/* Forks (or clones into the sandbox's namespaces) and maps the user namespace. */
static int start_child(spawn_run *s)
{
    child_plan *pl = &s->pl;
    /* Block every signal around fork so the host's handlers never run in the child before
     * it has reset them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pl->parent = getpid();
    s->start = ggi_now_ms();
    pid_t pid = pl->sb ? ggi_sandbox_raw_clone((unsigned long)ggi_sandbox_clone_flags(pl->sb))
                       : fork();
    if (pid == 0) {
        if (pl->sb)
            child_sandbox(pl);
        child_run(pl);
    }
    int fork_errno = errno;
    /* The child waits for its user namespace's maps (a failure shows in its report). */
    if (pid > 0 && pl->userns_wr >= 0)
        (void)ggi_sandbox_userns_map(pid, pl->userns_wr);
    else
        close_fd(&pl->userns_wr);
    pl->userns_wr = -1;
    if (pl->sb == &s->sb_copy)
        close_fd(&s->sb_copy.userns_fd);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close_child_ends(s);
    if (pid < 0)
        return pl->sb ? ggi_error(GG_EIO, "cannot make the job's namespaces: %s",
                                  strerror(fork_errno))
                      : ggi_error(GG_EIO, "fork failed: %s", strerror(fork_errno));
    s->pid = pid;
    return GG_OK;
}

/* Did exec succeed? The report pipe closes on exec; a message means it did not (the child
 * is then reaped and the error names the step that failed). */
static int await_exec(spawn_run *s)
{
    child_msg msg;
    size_t got = 0;
    for (int tries = 0; tries < 1000 && got < sizeof msg; tries++) {
        ssize_t n = read(s->rep_r, (char *)&msg + got, sizeof msg - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close_fd(&s->rep_r);
    if (got != sizeof msg) {
        s->pidfd = (int)syscall(SYS_pidfd_open, s->pid, 0);
        return GG_OK;
    }
    int st;
    while (waitpid(s->pid, &st, 0) < 0 && errno == EINTR) {
    }
    const char *prog = s->o->argv[0];
    if (msg.stage == STAGE_EXEC && (msg.err == ENOENT || msg.err == ENOTDIR))
        return ggi_error(GG_ENOTFOUND, "program '%s' not found", prog);
    if (msg.stage == STAGE_OVERLAY)
        return ggi_error(GG_EIO, "could not set up the overlay of '%s': cannot %s: %s", prog,
                         msg.step ? msg.step : "attach it", strerror(msg.err));
    if (msg.stage == STAGE_SANDBOX)
        return ggi_error(GG_EIO, "could not build the sandbox of '%s': cannot %s: %s", prog,
                         msg.step ? msg.step : "set it up", strerror(msg.err));
    return ggi_error(GG_EIO, "could not %s '%s': %s", stage_what(msg.stage), prog,
                     strerror(msg.err));
}

/* Kills the job when its deadline passed, it was cancelled or the loop failed; once it has
 * ended, clears its group and starts the bounded drain. */
static void watch_child(spawn_run *s, double now)
{
    if (!s->exited && s->pidfd < 0) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        int wr = waitid(P_PID, (id_t)s->pid, &si, WEXITED | WNOHANG | WNOWAIT);
        if ((wr == 0 && si.si_pid == s->pid) || (wr < 0 && errno == ECHILD))
            s->exited = 1; /* (ECHILD: someone else reaped it; wait4 later reports) */
    }
    if (!s->exited && !s->killed) {
        int stop = 0;
        if (s->deadline && now >= s->deadline) {
            s->res->timed_out = 1;
            stop = 1;
        } else if (s->o->cancel && __atomic_load_n(s->o->cancel, __ATOMIC_ACQUIRE)) {
            s->res->cancelled = 1;
            stop = 1;
        } else if (s->fail_rc) {
            stop = 1;
        }
        if (stop) {
            if (s->ext)
                s->ext->kill(s->ext->ctx);
            else
                kill_group(s->pid);
            s->killed = 1;
            s->kill_at = now;
        }
    }
    if (s->exited && !s->group_cleared) {
        /* The main child is a zombie, so its pid (and the group id) cannot be reused yet:
         * killing the group now cannot hit a stranger. */
        if (!s->ext)
            kill(-s->pid, SIGKILL);
        s->group_cleared = 1;
        s->drain_until = now + DRAIN_MS;
    }
}

/* How long the next poll may wait (ms). */
static double poll_wait(const spawn_run *s, double now)
{
    double wait = 1000;
    if (s->deadline && !s->killed)
        wait = fmin(wait, s->deadline - now);
    if (s->o->cancel && !s->killed)
        wait = fmin(wait, CANCEL_TICK_MS);
    if (s->pidfd < 0 && !s->exited)
        wait = fmin(wait, NOPIDFD_TICK_MS);
    if (s->exited)
        wait = fmin(wait, s->drain_until - now);
    if (s->killed && !s->exited)
        wait = fmin(wait, REAP_GRACE_MS - (now - s->kill_at));
    return wait < 0 ? 0 : wait;
}

/* Writes the next piece of stdin (closing it at the end or when the child stops reading). */
static void feed_stdin(spawn_run *s, short revents)
{
    if (revents & (POLLERR | POLLHUP | POLLNVAL)) {
        close_fd(&s->in_w);
        return;
    }
    size_t chunk = s->in_left > READ_CHUNK ? READ_CHUNK : s->in_left;
    ssize_t w = send(s->in_w, s->in_data, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) {
        s->in_data += w;
        s->in_left -= (size_t)w;
        if (!s->in_left)
            close_fd(&s->in_w); /* EOF for the child */
    } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
        close_fd(&s->in_w); /* the child stopped reading: not our failure */
    }
}

/* One poll over the pipes and the pidfd, and what it found. */
static int poll_once(spawn_run *s, double now)
{
    struct pollfd fds[4];
    int nfds = 0, i_out = -1, i_err = -1, i_in = -1, i_pid = -1;
    if (s->out_r >= 0)
        i_out = nfds, fds[nfds++] = (struct pollfd){ s->out_r, POLLIN, 0 };
    if (s->err_r >= 0)
        i_err = nfds, fds[nfds++] = (struct pollfd){ s->err_r, POLLIN, 0 };
    if (s->in_w >= 0 && !s->exited)
        i_in = nfds, fds[nfds++] = (struct pollfd){ s->in_w, POLLOUT, 0 };
    if (s->pidfd >= 0 && !s->exited)
        i_pid = nfds, fds[nfds++] = (struct pollfd){ s->pidfd, POLLIN, 0 };
    int n = poll(fds, (nfds_t)nfds, (int)ceil(poll_wait(s, now)));
    if (n < 0)
        return errno == EINTR ? GG_OK : ggi_error(GG_EIO, "poll failed: %s", strerror(errno));
    if (n == 0)
        return GG_OK;
    if (i_pid >= 0 && (fds[i_pid].revents & (POLLIN | POLLHUP | POLLERR)))
        s->exited = 1;
    ggi_spawn_result *res = s->res;
    if (i_out >= 0 && fds[i_out].revents) {
        int r = pump_out(&s->out_r, &res->out, s->o->max_stdout, &res->out_truncated);
        if (r && !s->fail_rc)
            s->fail_rc = r;
    }
    if (i_err >= 0 && fds[i_err].revents) {
        int r = pump_out(&s->err_r, &res->err, s->o->max_stderr, &res->err_truncated);
        if (r && !s->fail_rc)
            s->fail_rc = r;
    }
    if (i_in >= 0 && fds[i_in].revents)
        feed_stdin(s, fds[i_in].revents);
    return GG_OK;
}

/* Runs the child to its end: I/O, timeout, cancel, then the bounded drain. A failure
 * returned here leaves the child to abort_running(). */
static int io_loop(spawn_run *s)
{
    s->deadline = s->o->timeout_s > 0 ? s->start + s->o->timeout_s * 1000.0 : 0;
    s->in_data = s->o->stdin_data;
    s->in_left = s->o->stdin_len;
    for (;;) {
        double now = ggi_now_ms();
        watch_child(s, now);
        if (s->exited && s->out_r < 0 && s->err_r < 0)
            return GG_OK;
        if (s->exited && now >= s->drain_until)
            return GG_OK;
        if (s->killed && !s->exited && now - s->kill_at > REAP_GRACE_MS) {
            s->stuck = 1;
            return ggi_error(GG_EIO, "'%s' (pid %d) did not die after SIGKILL",
                             s->o->argv[0], (int)s->pid);
        }
        int rc = poll_once(s, now);
        if (rc)
            return rc;
    }
}

/* Kills a child the loop gave up on and reaps it (a zombie is left only in the pathological
 * case that SIGKILL did not take). */
static void abort_running(spawn_run *s)
{
    if (s->ext) {
        s->ext->kill(s->ext->ctx);
        return;
    }
    kill_group(s->pid);
    if (s->stuck)
        (void)waitpid(s->pid, NULL, WNOHANG);
    else
        while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR) {
        }
}

/* Reaps the child and fills the result's status; the sandbox's init reports the job's own
 * status (without a report, the init was killed: timeout, cancel, OOM, its own stands). */
static int reap_child(spawn_run *s)
{
    ggi_spawn_result *res = s->res;
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    pid_t w;
    while ((w = wait4(s->pid, &status, 0, &ru)) < 0 && errno == EINTR) {
    }
    int wait_errno = errno;
    res->duration_ms = ggi_now_ms() - s->start;
    if (w >= 0 && s->st_r >= 0) {
        init_msg m;
        ssize_t n = read(s->st_r, &m, sizeof m);
        if (n == (ssize_t)sizeof m) {
            status = m.status;
            if (m.maxrss > ru.ru_maxrss)
                ru.ru_maxrss = m.maxrss;
        }
    }
    if (w < 0)
        return ggi_error(GG_EIO, "could not reap '%s': %s (is SIGCHLD ignored?)",
                         s->o->argv[0], strerror(wait_errno));
    res->max_rss_kb = ru.ru_maxrss;
    if (WIFEXITED(status)) {
        res->exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        res->exit_code = -1;
        res->term_signal = WTERMSIG(status);
    } else {
        res->exit_code = -1;
    }
    return GG_OK;
}

/* Closes every descriptor still open and frees the program path. */
static void release(spawn_run *s)
{
    close_child_ends(s);
    close_fd(&s->pl.userns_wr);
    if (s->pl.sb == &s->sb_copy)
        close_fd(&s->sb_copy.userns_fd);
    close_fd(&s->in_w);
    close_fd(&s->out_r);
    close_fd(&s->err_r);
    close_fd(&s->rep_r);
    close_fd(&s->st_r);
    if (s->own_pidfd)
        close_fd(&s->pidfd);
    free(s->path);
    s->path = NULL;
}

/* Starts the child (itself or through the external starter) and runs it to its end. */
static int run_child(spawn_run *s)
{
    int rc;
    if ((rc = plan_child(s)) || (rc = open_sandbox_pipes(s)) || (rc = open_std_pipes(s)))
        return rc;
    if (s->ext)
        rc = start_external(s);
    else if (!(rc = start_child(s)))
        rc = await_exec(s);
    if (rc)
        return rc;
    if ((rc = io_loop(s))) {
        abort_running(s);
        return rc;
    }
    if (s->ext) {
        rc = s->ext->finish(s->ext->ctx, s->killed, s->res);
        s->res->duration_ms = ggi_now_ms() - s->start;
    } else {
        rc = reap_child(s);
    }
    return rc ? rc : s->fail_rc;
}

int ggi_spawn_run(const ggi_spawn_opts *o, ggi_spawn_result *res)
{
    int rc = check_opts(o, res);
    if (rc)
        return rc;
    spawn_run s;
    memset(&s, 0, sizeof s);
    s.o = o;
    s.res = res;
    s.ext = o->external;
    rc = run_child(&s);
    release(&s);
    if (rc)
        ggi_spawn_result_free(res);
    return rc;
}
