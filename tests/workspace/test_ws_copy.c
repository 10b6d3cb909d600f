/*
 * test_ws_copy.c - ggi_ws_copy in both modes (hard links with directories made anew 0777;
 * full copies with modes kept and the owner's write bit), symbolic links copied as links,
 * an existing destination refused, failures that leave no half copy; ggi_ws_remove on
 * read-only and unreadable directories and on links to outside, which are not followed.
 */
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wstest.h"

static char tmp[] = "/tmp/gg_ws_copy_XXXXXX";
static char base[600];

static int make_base(void)
{
    snprintf(base, sizeof base, "%s/base", tmp);
    return sh("set -e; cd %s; mkdir -p base/src/deep outside; printf 'hello\\n' > base/a.txt; "
              "printf 'x' > base/src/m.py; printf d > base/src/deep/d.txt; "
              "printf '#!/bin/sh\\n' > base/run.sh; ln -s src/m.py base/link; "
              "ln -s ../outside base/out; printf keep > outside/keep.txt; "
              "chmod 444 base/a.txt base/src/m.py base/src/deep/d.txt; chmod 555 base/run.sh; "
              "chmod 555 base/src/deep base/src base", tmp);
}

static struct stat st_of(const char *dir, const char *rel)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    struct stat st;
    memset(&st, 0, sizeof st);
    lstat(p, &st);
    return st;
}

static void check_common(const char *dest)
{
    char p[1024], target[64] = "";
    snprintf(p, sizeof p, "%s/link", dest);
    CHECK(readlink(p, target, sizeof target - 1) > 0 && strcmp(target, "src/m.py") == 0);
    snprintf(p, sizeof p, "%s/out", dest);
    CHECK(S_ISLNK(st_of(dest, "out").st_mode));
    snprintf(p, sizeof p, "%s/src/deep/d.txt", dest);
    char *s = read_file(p);
    CHECK_STR(s, "d");
    free(s);
}

static void link_mode(void)
{
    char dest[700];
    snprintf(dest, sizeof dest, "%s/link_copy", tmp);
    CHECK_RC(ggi_ws_copy(base, dest, GGI_WS_COPY_LINK), GG_OK);
    check_common(dest);
    CHECK(st_of(dest, "a.txt").st_ino == st_of(base, "a.txt").st_ino);
    CHECK(st_of(dest, "src/deep/d.txt").st_ino == st_of(base, "src/deep/d.txt").st_ino);
    CHECK((st_of(dest, ".").st_mode & 07777) == 0777);
    CHECK((st_of(dest, "src").st_mode & 07777) == 0777);
    CHECK((st_of(dest, "src/deep").st_mode & 07777) == 0777);
    CHECK(st_of(dest, "src").st_ino != st_of(base, "src").st_ino);
    /* A writer replaces a file (new file, rename): the base keeps its content. */
    CHECK(sh("printf new > %s/a.txt.new && mv -f %s/a.txt.new %s/a.txt", dest, dest, dest) == 0);
    char p[1024];
    snprintf(p, sizeof p, "%s/a.txt", base);
    char *s = read_file(p);
    CHECK_STR(s, "hello\n");
    free(s);
    /* Again onto the same destination: refused, the copy untouched. */
    CHECK_RC(ggi_ws_copy(base, dest, GGI_WS_COPY_LINK), GG_EEXIST);
    CHECK_CONTAINS(gg_error_last(), dest);
    snprintf(p, sizeof p, "%s/a.txt", dest);
    s = read_file(p);
    CHECK_STR(s, "new");
    free(s);
    CHECK_RC(ggi_ws_remove(dest), GG_OK);
    CHECK(access(dest, F_OK) != 0);
    s = read_file(p);
    CHECK(s == NULL);
    snprintf(p, sizeof p, "%s/a.txt", base);
    CHECK(access(p, F_OK) == 0); /* removing the copy leaves the base */
}

static void full_mode(void)
{
    char dest[700];
    snprintf(dest, sizeof dest, "%s/full_copy", tmp);
    CHECK_RC(ggi_ws_copy(base, dest, GGI_WS_COPY_FULL), GG_OK);
    check_common(dest);
    CHECK(st_of(dest, "a.txt").st_ino != st_of(base, "a.txt").st_ino);
    CHECK((st_of(dest, "a.txt").st_mode & 07777) == 0644);
    CHECK((st_of(dest, "run.sh").st_mode & 07777) == 0755);
    CHECK((st_of(dest, "src").st_mode & 07777) == 0755);
    CHECK(st_of(dest, "a.txt").st_size == 6);
    /* Writing into a file of the copy leaves the base alone. */
    CHECK(sh("printf changed >> %s/a.txt", dest) == 0);
    char p[1024];
    snprintf(p, sizeof p, "%s/a.txt", base);
    char *s = read_file(p);
    CHECK_STR(s, "hello\n");
    free(s);
    CHECK_RC(ggi_ws_remove(dest), GG_OK);
    CHECK(access(dest, F_OK) != 0);
}

static void failures(void)
{
    char dest[700], bad[700];
    snprintf(dest, sizeof dest, "%s/no/such/parent", tmp);
    CHECK_RC(ggi_ws_copy(base, dest, GGI_WS_COPY_LINK), GG_EIO);
    CHECK_CONTAINS(gg_error_last(), "no/such/parent");
    snprintf(dest, sizeof dest, "%s/c1", tmp);
    snprintf(bad, sizeof bad, "%s/missing_base", tmp);
    CHECK_RC(ggi_ws_copy(bad, dest, GGI_WS_COPY_FULL), GG_ENOTFOUND);
    CHECK(access(dest, F_OK) != 0);
    CHECK_RC(ggi_ws_copy(base, dest, 7), GG_EINVAL);
    CHECK(access(dest, F_OK) != 0);
    /* A fifo deep in a tree: refused, and no half copy is left. */
    snprintf(bad, sizeof bad, "%s/withfifo", tmp);
    CHECK(sh("mkdir -p %s/a/b && printf x > %s/a/x && mkfifo %s/a/b/pipe", bad, bad, bad) == 0);
    for (int mode = GGI_WS_COPY_LINK; mode <= GGI_WS_COPY_FULL; mode++) {
        CHECK_RC(ggi_ws_copy(bad, dest, mode), GG_EINVAL);
        CHECK_CONTAINS(gg_error_last(), "a/b/pipe");
        CHECK(access(dest, F_OK) != 0);
    }
    /* A file the process cannot read (not for root, who reads anything). */
    if (geteuid() != 0) {
        CHECK(sh("chmod 000 %s/a/x && rm %s/a/b/pipe", bad, bad) == 0);
        CHECK_RC(ggi_ws_copy(bad, dest, GGI_WS_COPY_FULL), GG_EIO);
        CHECK_CONTAINS(gg_error_last(), "a/x");
        CHECK(access(dest, F_OK) != 0);
    }
}

/* A destination without room (a 64 KiB tmpfs, mounted in a mount namespace of a child of
 * its own, so the host sees nothing): GG_EIO naming the cause, and no half copy left.
 * Needs root (else said and skipped). Exit status of the child: 0 as wanted, 1 not,
 * 2 no tmpfs could be had. */
static void no_space(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "no_space: not root, skipped\n");
        return;
    }
    char big[700], small[700], dest[800];
    snprintf(big, sizeof big, "%s/bigbase", tmp);
    snprintf(small, sizeof small, "%s/small", tmp);
    snprintf(dest, sizeof dest, "%s/copy", small);
    CHECK(sh("mkdir -p %s/sub %s && head -c 300000 /dev/zero > %s/sub/big && "
             "printf x > %s/a", big, small, big, big) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
            mount("tmpfs", small, "tmpfs", 0, "size=64k") != 0)
            _exit(2);
        int ok = 1;
        for (int mode = GGI_WS_COPY_LINK; mode <= GGI_WS_COPY_FULL; mode++) {
            /* (A link copy across filesystems falls back to copying: the same failure.) */
            int rc = ggi_ws_copy(big, dest, mode);
            if (rc != GG_EIO || !strstr(gg_error_last(), "No space left") ||
                access(dest, F_OK) == 0) {
                fprintf(stderr, "mode %d: rc %d, %s\n", mode, rc, gg_error_last());
                ok = 0;
            }
        }
        _exit(ok ? 0 : 1);
    }
    int st = 0;
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) != 1);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 2)
        fprintf(stderr, "no_space: no tmpfs could be mounted, skipped\n");
}

static void removal(void)
{
    char t[700];
    snprintf(t, sizeof t, "%s/rm", tmp);
    /* Read-only and unreadable directories, a link to an outside directory and one to an
     * outside file. */
    CHECK(sh("set -e; mkdir -p %s/a/b/c %s/d; printf 1 > %s/a/b/c/f; printf 2 > %s/d/g; "
             "ln -s %s/outside %s/a/out; ln -s %s/outside/keep.txt %s/d/outfile; "
             "chmod 555 %s/a/b/c %s/a/b; chmod 000 %s/d; chmod 500 %s",
             t, t, t, t, tmp, t, tmp, t, t, t, t, t) == 0);
    CHECK_RC(ggi_ws_remove(t), GG_OK);
    CHECK(access(t, F_OK) != 0);
    char p[800];
    snprintf(p, sizeof p, "%s/outside/keep.txt", tmp);
    char *s = read_file(p);
    CHECK_STR(s, "keep");
    free(s);
    /* Nothing there, a file, a link to a directory (the link goes, not what it names). */
    CHECK_RC(ggi_ws_remove(t), GG_OK);
    CHECK(write_file(t, "x") == 0);
    CHECK_RC(ggi_ws_remove(t), GG_OK);
    CHECK(access(t, F_OK) != 0);
    snprintf(p, sizeof p, "%s/outside", tmp);
    CHECK(symlink(p, t) == 0);
    CHECK_RC(ggi_ws_remove(t), GG_OK);
    snprintf(p, sizeof p, "%s/outside/keep.txt", tmp);
    CHECK(access(p, F_OK) == 0);
    CHECK_RC(ggi_ws_remove(""), GG_EINVAL);
}

int main(void)
{
    if (!test_make_dir(tmp))
        return 1;
    CHECK(make_base() == 0);
    link_mode();
    full_mode();
    failures();
    no_space();
    removal();
    CHECK_RC(ggi_ws_remove(tmp), GG_OK);
    CHECK(access(tmp, F_OK) != 0);
    return test_exit();
}
