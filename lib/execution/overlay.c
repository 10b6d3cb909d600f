/*
 * overlay.c - detached overlay mounts for attempts' copies (overlay.h): made with the new
 * mount API so that a crash can never leave one attached to the host, probed once per
 * process, and attached by a forked child inside a mount namespace of its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "overlay.h"

int ggi_overlay_mount(const char *lower, const char *upper, const char *work, int *out_fd)
{
    *out_fd = -1;
    if (!lower || !upper || !work)
        return ggi_error(GG_EINVAL, "overlay: a directory is NULL");
    int fs = (int)syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC);
    if (fs < 0)
        return ggi_error(GG_EUNSUPPORTED, "overlay: cannot open an overlay filesystem: %s",
                         strerror(errno));
    const char *step = "set its lower directory";
    int rc = GG_OK;
    /* volatile: the copy is thrown away after its job, even after a crash, so nothing is
     * ever synced (a sync of the upper filesystem at every unmount costs more than all the
     * rest). The kernel marks a volatile work directory (work/incompat/volatile) and refuses
     * to mount it again until the mark is gone: the attempt's upper directory is mounted
     * again for its job right after the answer was applied through it, by this process
     * (page cache and all), so the mark of the mount before is removed. index=off: nothing
     * here needs hard links kept across layers, and an index would tie the upper directory
     * to one mount. */
    char mark[4200];
    snprintf(mark, sizeof mark, "%.4000s/work/incompat/volatile", work);
    int mfd = open(mark, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (mfd >= 0) {
        (void)unlinkat(mfd, "dirty", 0);
        close(mfd);
        (void)rmdir(mark);
    }
    (void)syscall(SYS_fsconfig, fs, FSCONFIG_SET_FLAG, "volatile", NULL, 0); /* (5.10+) */
    if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "lowerdir", lower, 0) < 0 ||
        (step = "set its upper directory",
         syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "upperdir", upper, 0) < 0) ||
        (step = "set its work directory",
         syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "workdir", work, 0) < 0) ||
        (step = "turn its index off",
         syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "index", "off", 0) < 0) ||
        (step = "create it", syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0))
        rc = ggi_error(GG_EUNSUPPORTED, "overlay: cannot %s (lower '%.512s', upper '%.512s'): %s",
                       step, lower, upper, strerror(errno));
    if (rc == GG_OK) {
        int m = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NODEV);
        if (m < 0)
            rc = ggi_error(GG_EUNSUPPORTED, "overlay: cannot mount it: %s", strerror(errno));
        else
            *out_fd = m;
    }
    close(fs);
    return rc;
}

/* ---- the probe ---- */

static pthread_mutex_t probe_mu = PTHREAD_MUTEX_INITIALIZER;
static int probed, probe_ok;
static char probe_why[512];

static void probe_once(const char *scratch)
{
    char dir[4096], l[4200], u[4200], w[4200], ww[4300];
    snprintf(dir, sizeof dir, "%s/ovlprobe-%ld", scratch, (long)getpid());
    snprintf(l, sizeof l, "%s/l", dir);
    snprintf(u, sizeof u, "%s/u", dir);
    snprintf(w, sizeof w, "%s/w", dir);
    snprintf(ww, sizeof ww, "%s/work", w);
    if (mkdir(dir, 0700) != 0 || mkdir(l, 0700) != 0 || mkdir(u, 0700) != 0 ||
        mkdir(w, 0700) != 0) {
        snprintf(probe_why, sizeof probe_why, "cannot make '%.300s': %s", dir, strerror(errno));
    } else {
        int fd = -1;
        if (ggi_overlay_mount(l, u, w, &fd) == GG_OK) {
            probe_ok = 1;
            close(fd);
        } else {
            snprintf(probe_why, sizeof probe_why, "%s", gg_error_last());
            gg_error_clear();
        }
    }
    /* The kernel leaves work/work (mode 000) holding the volatile mount's mark. */
    const char *left[] = { "/incompat/volatile/dirty", "/incompat/volatile", "/incompat", "" };
    for (size_t i = 0; i < sizeof left / sizeof left[0]; i++) {
        char p[4400];
        snprintf(p, sizeof p, "%s%s", ww, left[i]);
        if (i == 0)
            unlink(p);
        else
            rmdir(p);
    }
    rmdir(w);
    rmdir(u);
    rmdir(l);
    rmdir(dir);
}

int ggi_overlay_probe(const char *scratch, const char **why)
{
    pthread_mutex_lock(&probe_mu);
    if (!probed) {
        probed = 1;
        if (!scratch || strlen(scratch) > 3000)
            snprintf(probe_why, sizeof probe_why, "no usable scratch directory");
        else
            probe_once(scratch);
    }
    int ok = probe_ok;
    pthread_mutex_unlock(&probe_mu);
    if (why)
        *why = ok ? "" : probe_why;
    return ok;
}

/* ---- the child ---- */

int ggi_overlay_child_attach(const ggi_overlay_attach *a, const char **step)
{
    *step = "enter a mount namespace of its own";
    if (unshare(CLONE_NEWNS) < 0)
        return errno;
    *step = "make its mounts private";
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return errno;
    *step = "attach its overlay";
    if (syscall(SYS_move_mount, a->fd, "", AT_FDCWD, a->target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
        return errno;
    if (a->ro_path) {
        *step = "make the overlay's lower directory read-only";
        if (mount(a->ro_path, a->ro_path, NULL, MS_BIND | MS_REC, NULL) < 0 ||
            mount(NULL, a->ro_path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0)
            return errno;
    }
    return 0;
}
