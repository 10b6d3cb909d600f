/*
 * test_ws_copy.c - ggi_ws_copy in its modes (hard links with directories made anew 0777;
 * full copies with modes kept and the owner's write bit, given to another user in the same
 * walk; overlay copies: three empty directories, then, where an overlay mounts, writes,
 * a deletion and a rename through it that leave the base as it was, and a removal that copes
 * with the kernel's work/work and whiteouts), symbolic links copied as links,
 * an existing destination refused, failures that leave no half copy; ggi_ws_remove on
 * read-only and unreadable directories and on links to outside, which are not followed.
 */
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wstest.h"
#include "execution/overlay.h"

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

/* Every entry of a tree (links too) owned by uid (a shell walk: an independent check). */
static int all_owned(const char *dir, unsigned uid)
{
    return sh("[ -z \"$(find %s ! -uid %u | head -1)\" ]", dir, uid) == 0;
}

static void owned_copy(void)
{
    char dest[700];
    snprintf(dest, sizeof dest, "%s/owned_copy", tmp);
    CHECK_RC(ggi_ws_copy_owned(base, dest, GGI_WS_COPY_LINK, 65534, 65534), GG_EINVAL);
    CHECK(access(dest, F_OK) != 0);
    if (geteuid() != 0) {
        /* Giving files away needs root: refused, and no half copy is left. */
        CHECK_RC(ggi_ws_copy_owned(base, dest, GGI_WS_COPY_FULL, 65534, 65534), GG_EIO);
        CHECK(access(dest, F_OK) != 0);
        return;
    }
    CHECK_RC(ggi_ws_copy_owned(base, dest, GGI_WS_COPY_FULL, 65534, 65534), GG_OK);
    check_common(dest);
    CHECK(all_owned(dest, 65534));
    CHECK(st_of(dest, "out").st_uid == 65534); /* the link itself, not what it names */
    CHECK((st_of(dest, "a.txt").st_mode & 07777) == 0644);
    CHECK(all_owned(base, 0)); /* the base is left as it was */
    CHECK_RC(ggi_ws_remove(dest), GG_OK);
    /* (uid_t)-1 keeps this user's, as ggi_ws_copy does. */
    CHECK_RC(ggi_ws_copy_owned(base, dest, GGI_WS_COPY_FULL, (uid_t)-1, (gid_t)-1), GG_OK);
    CHECK(all_owned(dest, 0));
    CHECK_RC(ggi_ws_remove(dest), GG_OK);
}

/* What the kernel does through an overlay copy: a write into a file of the base, a deletion
 * and a rename, all seen through the merged view and none in the base. Needs root. */
static void overlay_writes(const char *dest)
{
    char upper[800], work[800], view[64], p[900];
    snprintf(upper, sizeof upper, "%s/" GGI_WS_OVERLAY_UPPER, dest);
    snprintf(work, sizeof work, "%s/" GGI_WS_OVERLAY_WORK, dest);
    const char *why = NULL;
    if (!ggi_overlay_probe(tmp, &why)) {
        fprintf(stderr, "overlay: cannot mount one here (%s), writes skipped\n", why);
        return;
    }
    CHECK(sh("! ls -A %s | grep -q ovlprobe", tmp) == 0); /* the probe left nothing */
    int fd = -1;
    CHECK_RC(ggi_overlay_mount(base, upper, work, &fd), GG_OK);
    if (fd < 0)
        return;
    /* (The shell reaches the mount through this process's descriptor.) */
    snprintf(view, sizeof view, "/proc/%ld/fd/%d", (long)getpid(), fd);
    CHECK(sh("set -e; cd %s; printf more >> a.txt; rm src/m.py; mv run.sh run2.sh; "
             "mkdir new; printf n > new/f", view) == 0);
    snprintf(p, sizeof p, "%s/a.txt", view);
    char *s = read_file(p);
    CHECK_STR(s, "hello\nmore");
    free(s);
    CHECK(access((snprintf(p, sizeof p, "%s/src/m.py", view), p), F_OK) != 0);
    CHECK(access((snprintf(p, sizeof p, "%s/run2.sh", view), p), X_OK) == 0);
    CHECK(S_ISLNK(st_of(view, "out").st_mode));
    close(fd);
    /* The base: as it was. */
    snprintf(p, sizeof p, "%s/a.txt", base);
    s = read_file(p);
    CHECK_STR(s, "hello\n");
    free(s);
    CHECK(access((snprintf(p, sizeof p, "%s/src/m.py", base), p), F_OK) == 0);
    CHECK(access((snprintf(p, sizeof p, "%s/run.sh", base), p), F_OK) == 0);
    /* The upper layer holds whiteouts for what went (0/0 character devices). */
    CHECK(S_ISCHR(st_of(upper, "src/m.py").st_mode));
    CHECK(S_ISCHR(st_of(upper, "run.sh").st_mode));
    /* Mounted again over the same layers: the same merged view (what the job gets). */
    CHECK_RC(ggi_overlay_mount(base, upper, work, &fd), GG_OK);
    snprintf(p, sizeof p, "/proc/self/fd/%d/a.txt", fd);
    s = read_file(p);
    CHECK_STR(s, "hello\nmore");
    free(s);
    close(fd);
}

static void overlay_mode(void)
{
    char dest[700];
    snprintf(dest, sizeof dest, "%s/overlay_copy", tmp);
    CHECK_RC(ggi_ws_copy(base, dest, GGI_WS_COPY_OVERLAY), GG_OK);
    CHECK((st_of(dest, ".").st_mode & 07777) == 0700);
    CHECK((st_of(dest, GGI_WS_OVERLAY_UPPER).st_mode & 07777) == 0755); /* the base's 0555 */
    CHECK((st_of(dest, GGI_WS_OVERLAY_WORK).st_mode & 07777) == 0700);
    CHECK((st_of(dest, GGI_WS_OVERLAY_MERGED).st_mode & 07777) == 0755);
    CHECK(sh("[ -z \"$(ls -A %s/" GGI_WS_OVERLAY_UPPER ")\" ]", dest) == 0); /* nothing copied */
    CHECK_RC(ggi_ws_copy(base, dest, GGI_WS_COPY_OVERLAY), GG_EEXIST);
    if (geteuid() == 0) {
        overlay_writes(dest);
    } else {
        const char *why = NULL;
        CHECK(!ggi_overlay_probe(tmp, &why));
        CHECK(why && *why);
    }
    /* Removal copes with work/work (mode 000, the kernel's) and the whiteouts. */
    CHECK_RC(ggi_ws_remove(dest), GG_OK);
    CHECK(access(dest, F_OK) != 0);
    /* Given to another user: the upper directory and the mount point only. */
    if (geteuid() == 0) {
        CHECK_RC(ggi_ws_copy_owned(base, dest, GGI_WS_COPY_OVERLAY, 65534, 65534), GG_OK);
        CHECK(st_of(dest, ".").st_uid == 0);
        CHECK(st_of(dest, GGI_WS_OVERLAY_UPPER).st_uid == 65534);
        CHECK(st_of(dest, GGI_WS_OVERLAY_WORK).st_uid == 0);
        CHECK(st_of(dest, GGI_WS_OVERLAY_MERGED).st_uid == 65534);
        CHECK_RC(ggi_ws_remove(dest), GG_OK);
    }
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
    owned_copy();
    overlay_mode();
    failures();
    no_space();
    removal();
    CHECK_RC(ggi_ws_remove(tmp), GG_OK);
    CHECK(access(tmp, F_OK) != 0);
    return test_exit();
}
