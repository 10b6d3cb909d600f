/*
 * ws_copy.c - an attempt's copy of a base and its removal (workspace.h): a walk relative to
 * directory file descriptors (openat, fstatat, linkat, never following a symbolic link),
 * so a tree that changes under the walk cannot lead it outside; entries are given to the
 * job's user in the same walk. An overlay copy is only its three empty directories.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ws_internal.h"

#define WS_MAX_DEPTH 512

typedef struct {
    int mode;
    uid_t uid; /* (uid_t)-1: entries keep the process's owner */
    gid_t gid;
    char path[4096]; /* the relative path being copied, for messages */
} copy_ctx;

static int copy_data(int in, int out)
{
    int plain = 0;
    char buf[65536];
    for (;;) {
        if (!plain) {
            ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
            if (n > 0)
                continue;
            if (n == 0)
                return 0;
            if (errno == EINTR)
                continue;
            if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP)
                return -1;
            plain = 1;
        }
        ssize_t r = read(in, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return 0;
        for (ssize_t w = 0; w < r;) {
            ssize_t k = write(out, buf + w, (size_t)(r - w));
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0)
                return -1;
            w += k;
        }
    }
}

static int copy_file(copy_ctx *c, int sfd, int dfd, const char *name, const struct stat *st)
{
    if (c->mode == GGI_WS_COPY_LINK) {
        if (linkat(sfd, name, dfd, name, 0) == 0)
            return GG_OK;
        /* Another filesystem, too many links, or links refused: a full copy is always safe. */
        if (errno != EXDEV && errno != EMLINK && errno != EPERM)
            return ggi_error(GG_EIO, "workspace copy: cannot link '%s': %s", c->path,
                             strerror(errno));
    }
    int in = openat(sfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (in < 0)
        return ggi_error(GG_EIO, "workspace copy: cannot read '%s': %s", c->path,
                         strerror(errno));
    mode_t m = (st->st_mode & 07777) | S_IWUSR;
    int out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) {
        int e = errno;
        close(in);
        return ggi_error(GG_EIO, "workspace copy: cannot write '%s': %s", c->path, strerror(e));
    }
    int rc = GG_OK;
    if (copy_data(in, out) != 0)
        rc = ggi_error(GG_EIO, "workspace copy: cannot copy '%s': %s", c->path,
                       strerror(errno));
    else if (fchmod(out, m) != 0)
        rc = ggi_error(GG_EIO, "workspace copy: cannot set the mode of '%s': %s", c->path,
                       strerror(errno));
    else if (c->uid != (uid_t)-1 && fchown(out, c->uid, c->gid) != 0)
        rc = ggi_error(GG_EIO, "workspace copy: cannot give '%s' to %u: %s", c->path,
                       (unsigned)c->uid, strerror(errno));
    close(in);
    if (close(out) != 0 && rc == GG_OK)
        rc = ggi_error(GG_EIO, "workspace copy: cannot write '%s': %s", c->path,
                       strerror(errno));
    return rc;
}

/* Copies the entries of the directory open at sfd into the one open at dfd. Both closed. */
static int copy_dir(copy_ctx *c, int sfd, int dfd, size_t plen, int depth)
{
    int rc = GG_OK;
    DIR *d = NULL;
    if (depth > WS_MAX_DEPTH) {
        rc = ggi_error(GG_ETOOBIG, "workspace copy: '%s' is nested too deep", c->path);
        goto done;
    }
    d = fdopendir(sfd);
    if (!d) {
        rc = ggi_error(GG_EIO, "workspace copy: cannot read '%s': %s", c->path,
                       strerror(errno));
        goto done;
    }
    sfd = -1;
    struct dirent *e;
    while (rc == GG_OK && (errno = 0, e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        size_t nlen = strlen(name);
        if (plen + nlen + 2 > sizeof c->path) {
            rc = ggi_error(GG_ETOOBIG, "workspace copy: a path under '%s' is too long", c->path);
            break;
        }
        size_t sub = plen;
        if (plen)
            c->path[sub++] = '/';
        memcpy(c->path + sub, name, nlen + 1);
        sub += nlen;
        /* A hard link needs no stat: the entry's type from readdir is enough (the common
         * case of a link copy: one linkat per file). */
        if (c->mode == GGI_WS_COPY_LINK && e->d_type == DT_REG) {
            if (linkat(dirfd(d), name, dfd, name, 0) == 0) {
                c->path[plen] = '\0';
                continue;
            }
            if (errno != EXDEV && errno != EMLINK && errno != EPERM) {
                rc = ggi_error(GG_EIO, "workspace copy: cannot link '%s': %s", c->path,
                               strerror(errno));
                break;
            }
        }
        struct stat st;
        if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            rc = ggi_error(GG_EIO, "workspace copy: cannot read '%s': %s", c->path,
                           strerror(errno));
        } else if (S_ISDIR(st.st_mode)) {
            mode_t m = c->mode == GGI_WS_COPY_LINK ? 0777 : (st.st_mode & 07777) | S_IRWXU;
            int s2 = -1, d2 = -1;
            if (mkdirat(dfd, name, 0700) != 0 ||
                (d2 = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
                fchmod(d2, m) != 0 ||
                (c->uid != (uid_t)-1 && fchown(d2, c->uid, c->gid) != 0))
                rc = ggi_error(GG_EIO, "workspace copy: cannot make the directory '%s': %s",
                               c->path, strerror(errno));
            else if ((s2 = openat(dirfd(d), name,
                                  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
                rc = ggi_error(GG_EIO, "workspace copy: cannot read '%s': %s", c->path,
                               strerror(errno));
            if (rc == GG_OK) {
                rc = copy_dir(c, s2, d2, sub, depth + 1);
            } else {
                if (s2 >= 0)
                    close(s2);
                if (d2 >= 0)
                    close(d2);
            }
        } else if (S_ISLNK(st.st_mode)) {
            char target[4097];
            ssize_t n = readlinkat(dirfd(d), name, target, sizeof target - 1);
            if (n < 0) {
                rc = ggi_error(GG_EIO, "workspace copy: cannot read the link '%s': %s", c->path,
                               strerror(errno));
            } else {
                target[n] = '\0';
                if (symlinkat(target, dfd, name) != 0 ||
                    (c->uid != (uid_t)-1 &&
                     fchownat(dfd, name, c->uid, c->gid, AT_SYMLINK_NOFOLLOW) != 0))
                    rc = ggi_error(GG_EIO, "workspace copy: cannot make the link '%s': %s",
                                   c->path, strerror(errno));
            }
        } else if (S_ISREG(st.st_mode)) {
            rc = copy_file(c, dirfd(d), dfd, name, &st);
        } else {
            rc = ggi_error(GG_EINVAL, "workspace copy: '%s' is not a file, directory or "
                           "symbolic link", c->path);
        }
        c->path[plen] = '\0';
    }
    if (rc == GG_OK && errno != 0)
        rc = ggi_error(GG_EIO, "workspace copy: cannot read '%s': %s", c->path,
                       strerror(errno));
done:
    if (d)
        closedir(d);
    if (sfd >= 0)
        close(sfd);
    close(dfd);
    return rc;
}

/* The directories of an overlay copy in dest (open at dfd, closed here). */
static int make_overlay_dirs(int dfd, const char *dest, const struct stat *base, uid_t uid,
                             gid_t gid)
{
    const struct {
        const char *name;
        mode_t mode;
        int give;
    } dirs[] = { { GGI_WS_OVERLAY_UPPER, (base->st_mode & 07777) | S_IRWXU, 1 },
                 { GGI_WS_OVERLAY_WORK, 0700, 0 },
                 { GGI_WS_OVERLAY_MERGED, 0755, 1 } };
    int rc = GG_OK;
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0] && rc == GG_OK; i++) {
        int fd = -1;
        if (mkdirat(dfd, dirs[i].name, 0700) != 0 ||
            (fd = openat(dfd, dirs[i].name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
            fchmod(fd, dirs[i].mode) != 0 ||
            (dirs[i].give && uid != (uid_t)-1 && fchown(fd, uid, gid) != 0))
            rc = ggi_error(GG_EIO, "workspace copy: cannot make '%.1024s/%s': %s", dest,
                           dirs[i].name, strerror(errno));
        if (fd >= 0)
            close(fd);
    }
    close(dfd);
    return rc;
}

int ggi_ws_copy(const char *base_dir, const char *dest_dir, int mode)
{
    return ggi_ws_copy_owned(base_dir, dest_dir, mode, (uid_t)-1, (gid_t)-1);
}

int ggi_ws_copy_owned(const char *base_dir, const char *dest_dir, int mode, uid_t uid,
                      gid_t gid)
{
    if (!base_dir || !dest_dir)
        return ggi_error(GG_EINVAL, "workspace copy: a directory is NULL");
    if (mode != GGI_WS_COPY_LINK && mode != GGI_WS_COPY_FULL && mode != GGI_WS_COPY_OVERLAY)
        return ggi_error(GG_EINVAL, "workspace copy: unknown mode %d", mode);
    if (mode == GGI_WS_COPY_LINK && uid != (uid_t)-1)
        return ggi_error(GG_EINVAL, "workspace copy: a link copy's files are the base's and "
                         "cannot be given to another user");
    if (uid == (uid_t)-1)
        gid = (gid_t)-1;
    int sfd = open(base_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sfd < 0)
        return ggi_error(errno == ENOENT ? GG_ENOTFOUND : GG_EIO,
                         "workspace copy: cannot read the base '%.1024s': %s", base_dir,
                         strerror(errno));
    if (mkdir(dest_dir, 0700) != 0) {
        int e = errno;
        close(sfd);
        return ggi_error(e == EEXIST ? GG_EEXIST : GG_EIO,
                         "workspace copy: cannot make '%.1024s': %s", dest_dir, strerror(e));
    }
    int rc = GG_OK;
    int dfd = open(dest_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    /* An overlay copy's own directory stays private (0700, this user's): only its upper
     * directory and mount point are the job's. */
    mode_t top = mode == GGI_WS_COPY_LINK      ? 0777
                 : mode == GGI_WS_COPY_OVERLAY ? 0700
                                               : 0;
    if (dfd < 0 || fstat(sfd, &st) != 0 ||
        fchmod(dfd, top ? top : (st.st_mode & 07777) | S_IRWXU) != 0 ||
        (mode == GGI_WS_COPY_FULL && uid != (uid_t)-1 && fchown(dfd, uid, gid) != 0)) {
        rc = ggi_error(GG_EIO, "workspace copy: cannot make '%.1024s': %s", dest_dir,
                       strerror(errno));
        close(sfd);
        if (dfd >= 0)
            close(dfd);
    } else if (mode == GGI_WS_COPY_OVERLAY) {
        close(sfd);
        rc = make_overlay_dirs(dfd, dest_dir, &st, uid, gid);
    } else {
        copy_ctx *c = malloc(sizeof *c);
        if (!c) {
            close(sfd);
            close(dfd);
            rc = ggi_error(GG_ENOMEM, "out of memory");
        } else {
            c->mode = mode;
            c->uid = uid;
            c->gid = gid;
            c->path[0] = '\0';
            rc = copy_dir(c, sfd, dfd, 0, 0);
            free(c);
        }
    }
    if (rc != GG_OK) {
        char keep[1024];
        snprintf(keep, sizeof keep, "%s", gg_error_last());
        ggi_ws_remove(dest_dir);
        ggi_error(rc, "%s", keep);
    }
    return rc;
}

/* ---- removal ---- */

/* Opens the directory name under parent for reading, making it readable and writable
 * (rwx for the owner) when it is not; never through a symbolic link. */
static int open_dir_rw(int parent, const char *name)
{
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == EACCES) {
        /* An O_PATH descriptor needs no permission and is the directory itself (O_DIRECTORY
         * with O_NOFOLLOW refuses a link), so chmod through it cannot reach elsewhere. */
        int pfd = openat(parent, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (pfd < 0)
            return -1;
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", pfd);
        struct stat st;
        if (fstat(pfd, &st) != 0 || chmod(proc, (st.st_mode & 07777) | S_IRWXU) != 0) {
            close(pfd);
            return -1;
        }
        fd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        close(pfd);
    }
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) == 0 && (st.st_mode & S_IRWXU) != S_IRWXU)
        (void)fchmod(fd, (st.st_mode & 07777) | S_IRWXU);
    return fd;
}

/* Empties the directory open at fd (closed here). */
static int empty_dir(int fd, char *path, size_t plen, int depth)
{
    if (depth > WS_MAX_DEPTH) {
        close(fd);
        return ggi_error(GG_EIO, "workspace remove: '%s' is nested too deep", path);
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return ggi_error(GG_EIO, "workspace remove: cannot read '%s': %s", path,
                         strerror(errno));
    }
    int rc = GG_OK;
    /* Entries removed while reading may shift what readdir returns: go round until a pass
     * finds nothing (a bound against a job that keeps adding). */
    for (int pass = 0; pass < 8; pass++) {
        int found = 0;
        rewinddir(d);
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            const char *name = e->d_name;
            if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                continue;
            found = 1;
            size_t nlen = strlen(name), sub = plen;
            if (plen + nlen + 2 < 4096) {
                path[sub++] = '/';
                memcpy(path + sub, name, nlen + 1);
            }
            if (unlinkat(dirfd(d), name, 0) == 0 || errno == ENOENT) {
                path[plen] = '\0';
                continue;
            }
            if (errno == EISDIR || errno == EPERM) {
                int cfd = open_dir_rw(dirfd(d), name);
                if (cfd >= 0) {
                    int r = empty_dir(cfd, path, plen + 1 + nlen < 4096 ? plen + 1 + nlen : plen,
                                      depth + 1);
                    if (r != GG_OK && rc == GG_OK)
                        rc = r;
                }
                if (unlinkat(dirfd(d), name, AT_REMOVEDIR) != 0 && errno != ENOENT &&
                    rc == GG_OK)
                    rc = ggi_error(GG_EIO, "workspace remove: cannot remove '%s': %s", path,
                                   strerror(errno));
            } else if (rc == GG_OK) {
                rc = ggi_error(GG_EIO, "workspace remove: cannot remove '%s': %s", path,
                               strerror(errno));
            }
            path[plen] = '\0';
        }
        if (!found || rc != GG_OK)
            break;
    }
    closedir(d);
    return rc;
}

int ggi_ws_remove(const char *dir)
{
    if (!dir || !dir[0])
        return ggi_error(GG_EINVAL, "workspace remove: no directory given");
    struct stat st;
    if (lstat(dir, &st) != 0)
        return errno == ENOENT ? GG_OK
                               : ggi_error(GG_EIO, "workspace remove: '%.1024s': %s", dir,
                                           strerror(errno));
    if (!S_ISDIR(st.st_mode)) {
        if (unlink(dir) != 0 && errno != ENOENT)
            return ggi_error(GG_EIO, "workspace remove: cannot remove '%.1024s': %s", dir,
                             strerror(errno));
        return GG_OK;
    }
    int fd = open_dir_rw(AT_FDCWD, dir);
    if (fd < 0)
        return ggi_error(GG_EIO, "workspace remove: cannot open '%.1024s': %s", dir,
                         strerror(errno));
    char *path = malloc(4096);
    if (!path) {
        close(fd);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    snprintf(path, 4096, "%s", dir);
    int rc = empty_dir(fd, path, strlen(path), 0);
    free(path);
    if (rc == GG_OK && rmdir(dir) != 0 && errno != ENOENT)
        rc = ggi_error(GG_EIO, "workspace remove: cannot remove '%.1024s': %s", dir,
                       strerror(errno));
    return rc;
}
