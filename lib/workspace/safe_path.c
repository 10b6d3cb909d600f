/*
 * safe_path.c - checks relative paths from outside and reaches them inside a copy without
 * following symbolic links (safe_path.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/ggi.h"
#include "safe_path.h"

const char *ggi_safe_path_problem(const char *p)
{
    size_t len = strlen(p);
    if (len == 0)
        return "is empty";
    if (len > GGI_SAFE_MAX_PATH)
        return "is longer than 1024 bytes";
    if (p[0] == '/')
        return "is absolute";
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
            return "holds a control character";
    const char *s = p;
    for (int depth = 1;; depth++) {
        if (depth > GGI_SAFE_MAX_DEPTH)
            return "is nested more than 128 directories deep";
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0)
            return "has an empty component";
        if (n == 1 && s[0] == '.')
            return "has a '.' component";
        if (n == 2 && s[0] == '.' && s[1] == '.')
            return "leaves the workspace ('..')";
        if (n == 4 && strncasecmp(s, ".git", 4) == 0)
            return "reaches into a .git directory";
        if (!e)
            break;
        s = e + 1;
    }
    return NULL;
}

int ggi_safe_path_split(char *buf, char **comps)
{
    int n = 0;
    for (char *s = buf; n < GGI_SAFE_MAX_DEPTH;) { /* path_problem refused deeper paths */
        comps[n++] = s;
        char *e = strchr(s, '/');
        if (!e)
            break;
        *e = '\0';
        s = e + 1;
    }
    return n;
}

/* What a failed openat(O_DIRECTORY | O_NOFOLLOW) of a component means. */
static int open_error(void)
{
    return errno == ELOOP ? GGI_WALK_LINK : errno == ENOTDIR ? GGI_WALK_NOTDIR : GGI_WALK_ERR;
}

int ggi_safe_walk_parent(int root, char *buf, int create, int *fds, int *nfd,
                         const char **last)
{
    char *comps[GGI_SAFE_MAX_DEPTH];
    int n = ggi_safe_path_split(buf, comps);
    *nfd = 0;
    int cur = root;
    for (int i = 0; i < n - 1; i++) {
        struct stat st;
        if (fstatat(cur, comps[i], &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno != ENOENT)
                return GGI_WALK_ERR;
            if (!create)
                return GGI_WALK_MISSING;
            /* A new directory gets its parent's mode (a copy's directories may be 0777
             * for a job running as another user; mkdir's mode is cut by the umask). */
            struct stat pst;
            mode_t mode = fstat(cur, &pst) == 0 ? (pst.st_mode & 0777) | 0700 : 0755;
            int made = mkdirat(cur, comps[i], 0700) == 0;
            if (!made && errno != EEXIST)
                return GGI_WALK_ERR;
            int d = openat(cur, comps[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (d < 0)
                return open_error();
            if (made && fchmod(d, mode) != 0) {
                close(d);
                return GGI_WALK_ERR;
            }
            fds[(*nfd)++] = cur = d;
            continue;
        }
        if (S_ISLNK(st.st_mode))
            return GGI_WALK_LINK;
        if (!S_ISDIR(st.st_mode))
            return GGI_WALK_NOTDIR;
        int d = openat(cur, comps[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (d < 0)
            return open_error();
        fds[(*nfd)++] = cur = d;
    }
    *last = comps[n - 1];
    return GGI_WALK_OK;
}

void ggi_safe_close(int *fds, int n)
{
    for (int i = 0; i < n; i++)
        close(fds[i]);
}

int ggi_safe_read_fd(int fd, size_t size, char **out, size_t *out_len)
{
    char *b = malloc(size + 1);
    if (!b)
        return GG_ENOMEM;
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, b + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    b[got] = '\0';
    *out = b;
    *out_len = got;
    return 0;
}
