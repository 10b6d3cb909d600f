/*
 * dbfile.c - a database's files as the operating system sees them (dbfile.h): created
 * private, and the reason in words when they cannot be opened or written.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dbfile.h"
#include "ggi.h"

/* Names SQLite does not take as a plain file path. */
static int is_special(const char *path)
{
    return !path || !*path || path[0] == ':' || strncmp(path, "file:", 5) == 0;
}

/* The directory part of path ("." when it has none). */
static void dir_of(const char *path, char *dir, size_t n)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(dir, n, ".");
        return;
    }
    size_t len = slash == path ? 1 : (size_t)(slash - path);
    snprintf(dir, n, "%.*s", (int)len, path);
}

/* Why the file (or directory) at p cannot be used as asked (mode for faccessat), or NULL. */
static const char *refused(const char *p, int mode)
{
    if (faccessat(AT_FDCWD, p, mode, AT_EACCESS) == 0)
        return NULL;
    switch (errno) {
    case EROFS: return "it is on a read-only filesystem";
    case EACCES:
    case EPERM: return "permission denied";
    default: return strerror(errno);
    }
}

/* "'p' cannot be written: why", with its owner and mode when permissions are the cause. */
static void file_refused(char *buf, size_t n, const char *p, const struct stat *st,
                         const char *why)
{
    if (strcmp(why, "permission denied") == 0)
        snprintf(buf, n, "'%s' cannot be written: %s (mode %04o, owner uid %u; this process "
                 "runs as uid %u)", p, why, (unsigned)(st->st_mode & 07777),
                 (unsigned)st->st_uid, (unsigned)geteuid());
    else
        snprintf(buf, n, "'%s' cannot be written: %s", p, why);
}

char *ggi_dbfile_explain(const char *path, char *buf, size_t n)
{
    if (!buf || n == 0)
        return buf;
    buf[0] = 0;
    if (is_special(path))
        return buf;
    char dir[4096];
    dir_of(path, dir, sizeof dir);
    struct stat st, ds;
    if (stat(path, &st) != 0) {
        if (errno != ENOENT)
            snprintf(buf, n, "cannot look at '%s': %s", path, strerror(errno));
        else if (stat(dir, &ds) != 0)
            snprintf(buf, n, errno == ENOENT ? "the directory '%s' does not exist"
                                             : "the directory '%s' cannot be used: %s",
                     dir, strerror(errno));
        else if (!S_ISDIR(ds.st_mode))
            snprintf(buf, n, "'%s' is not a directory", dir);
        else if (refused(dir, W_OK | X_OK))
            snprintf(buf, n, "the file does not exist and cannot be created in the directory "
                     "'%s': %s", dir, refused(dir, W_OK | X_OK));
        return buf;
    }
    if (S_ISDIR(st.st_mode)) {
        snprintf(buf, n, "'%s' is a directory", path);
        return buf;
    }
    const char *why = refused(path, R_OK | W_OK);
    if (why) {
        file_refused(buf, n, path, &st, why);
        return buf;
    }
    /* WAL mode also writes path-wal and path-shm, created in the same directory. */
    static const char *const sides[] = { "-wal", "-shm" };
    for (size_t i = 0; i < sizeof sides / sizeof sides[0]; i++) {
        char side[4200];
        snprintf(side, sizeof side, "%s%s", path, sides[i]);
        if (stat(side, &st) == 0) {
            if ((why = refused(side, R_OK | W_OK)) != NULL) {
                file_refused(buf, n, side, &st, why);
                return buf;
            }
        } else if ((why = refused(dir, W_OK | X_OK)) != NULL) {
            snprintf(buf, n, "the database needs to create '%s' in the directory '%s': %s",
                     side, dir, why);
            return buf;
        }
    }
    return buf;
}

int ggi_dbfile_create_private(const char *path)
{
    if (is_special(path))
        return GG_OK;
    /* The mode is set again after the open: the umask may have taken bits from it. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int e = errno;
        if (e == EEXIST)
            return GG_OK;
        char why[1024];
        ggi_dbfile_explain(path, why, sizeof why);
        return ggi_error(GG_ESTORE, "cannot create database '%s': %s", path,
                         why[0] ? why : strerror(e));
    }
    int rc = GG_OK;
    if (fchmod(fd, 0600) != 0)
        rc = ggi_error(GG_ESTORE, "cannot make database '%s' private (mode 0600): %s", path,
                       strerror(errno));
    close(fd);
    return rc;
}
