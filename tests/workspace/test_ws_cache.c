/*
 * test_ws_cache.c - ggi_ws_cache: a base from a pack (its source gone), from a fetch of a
 * file:// URL and of a path, from inline files; exported read-only (files 0444 or 0555,
 * directories 0555, links kept); many threads on two handles of one root export a base
 * once; a temporary directory left by a crash is removed; bad packs, missing commits and a
 * commit that does not match the files are refused; a commit the store holds is given only
 * to a task whose own source holds it (a pack, a URL, a path), and inline files are cached
 * by their content (no lock taken the second time).
 */
#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wstest.h"

static char tmp[] = "/tmp/gg_ws_cache_XXXXXX";
static char *head, *feature, *head_tree, *feature_tree;

static char *git_out(const char *fmt, const char *arg)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, fmt, tmp, arg);
    return sh_out(cmd);
}

static int make_repo(void)
{
    if (sh("set -e; cd %s; git init -q -b main repo; cd repo; printf 'hello\\n' > a.txt; "
           "mkdir -p src/deep; printf 'print(1)\\n' > src/m.py; printf d > src/deep/d.txt; "
           "printf '#!/bin/sh\\n' > run.sh; chmod +x run.sh; ln -s src/m.py link; "
           "git add -A; git commit -q -m one; git checkout -q -b feature; "
           "printf 'two\\n' > b.txt; git add -A; git commit -q -m two; git checkout -q main",
           tmp) != 0)
        return -1;
    head = git_out("git -C %s/repo rev-parse %s", "main");
    feature = git_out("git -C %s/repo rev-parse %s", "feature");
    head_tree = git_out("git -C %s/repo rev-parse %s", "main^{tree}");
    feature_tree = git_out("git -C %s/repo rev-parse %s", "feature^{tree}");
    return head && feature && head_tree && feature_tree ? 0 : -1;
}

static cJSON *resolved(const char *text)
{
    cJSON *ws = js(text), *out = NULL;
    CHECK_RC(ggi_ws_resolve(ws, &out), GG_OK);
    cJSON_Delete(ws);
    return out;
}

static mode_t mode_of(const char *dir, const char *rel)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    struct stat st;
    return lstat(p, &st) == 0 ? st.st_mode : 0;
}

static void check_export(const char *dir, int with_feature)
{
    CHECK((mode_of(dir, ".") & 07777) == 0555);
    CHECK((mode_of(dir, "src") & 07777) == 0555);
    CHECK((mode_of(dir, "src/deep") & 07777) == 0555);
    CHECK(S_ISREG(mode_of(dir, "a.txt")) && (mode_of(dir, "a.txt") & 07777) == 0444);
    CHECK((mode_of(dir, "run.sh") & 07777) == 0555);
    CHECK(S_ISLNK(mode_of(dir, "link")));
    CHECK(with_feature ? mode_of(dir, "b.txt") != 0 : mode_of(dir, "b.txt") == 0);
    char p[1024];
    snprintf(p, sizeof p, "%s/a.txt", dir);
    char *a = read_file(p);
    CHECK_STR(a, "hello\n");
    free(a);
    snprintf(p, sizeof p, "%s/link", dir);
    char target[64] = "";
    ssize_t n = readlink(p, target, sizeof target - 1);
    CHECK(n > 0 && strcmp(target, "src/m.py") == 0);
    /* The git command sees the same tree in the export. */
    CHECK(sh("cd %s && test \"$(cat src/deep/d.txt)\" = d", dir) == 0);
}

static int count_entries(const char *dir, int hidden)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && (e->d_name[0] == '.') == hidden)
            n++;
    closedir(d);
    return n;
}

static void from_pack(void)
{
    char text[1024], root[600];
    snprintf(text, sizeof text, "{\"repo\": \"%s/repo\", \"ref\": \"feature\"}", tmp);
    cJSON *r = resolved(text);
    /* The pack travels alone: the repository is not reachable where the base is made. */
    cJSON_ReplaceItemInObject(r, "repo", cJSON_CreateString("/nonexistent/repo"));
    snprintf(root, sizeof root, "%s/cache1", tmp);
    ggi_ws_cache *c = NULL;
    CHECK_RC(ggi_ws_cache_open(root, &c), GG_OK);
    CHECK((mode_of(root, ".") & 0777) == 0700);
    char *dir = NULL, tree[41];
    CHECK_RC(ggi_ws_cache_base(c, r, &dir, tree), GG_OK);
    CHECK_STR(tree, feature_tree);
    if (dir) {
        CHECK_CONTAINS(dir, feature_tree);
        check_export(dir, 1);
    }
    /* Again: the same directory, nothing new. */
    char *dir2 = NULL, tree2[41];
    CHECK_RC(ggi_ws_cache_base(c, r, &dir2, tree2), GG_OK);
    CHECK_STR(dir, dir2);
    free(dir2);
    char trees[700];
    snprintf(trees, sizeof trees, "%s/trees", root);
    CHECK(count_entries(trees, 0) == 1);
    CHECK(count_entries(trees, 1) == 0);
    ggi_ws_cache_close(&c);
    CHECK(c == NULL);
    ggi_ws_cache_close(&c);
    /* Reopened, the base is still there. */
    CHECK_RC(ggi_ws_cache_open(root, &c), GG_OK);
    CHECK_RC(ggi_ws_cache_base(c, r, &dir2, tree2), GG_OK);
    CHECK_STR(dir, dir2);
    free(dir2);

    /* A pack that does not hold the commit, and one that is no pack. */
    cJSON *bad = cJSON_Duplicate(r, 1);
    cJSON_ReplaceItemInObject(bad, "commit",
                              cJSON_CreateString("0123456789abcdef0123456789abcdef01234567"));
    CHECK_RC(ggi_ws_cache_base(c, bad, &dir2, tree2), GG_ENOTFOUND);
    CHECK_CONTAINS(gg_error_last(), "'workspace.commit'");
    CHECK(dir2 == NULL);
    cJSON_ReplaceItemInObject(bad, "pack", cJSON_CreateString("bm90IGEgcGFjaw=="));
    CHECK_RC(ggi_ws_cache_base(c, bad, &dir2, tree2), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "'workspace.pack'");
    cJSON_ReplaceItemInObject(bad, "pack", cJSON_CreateString("QUJD="));
    CHECK_RC(ggi_ws_cache_base(c, bad, &dir2, tree2), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "not base64");
    cJSON_Delete(bad);
    /* A second task whose own pack (of another repository) does not hold the commit the
     * store already has: refused; its own commit with its own pack is fine. */
    CHECK(sh("set -e; cd %s; git init -q -b main stranger; cd stranger; printf s > s.txt; "
             "git add -A; git commit -q -m s", tmp) == 0);
    snprintf(text, sizeof text, "{\"repo\": \"%s/stranger\"}", tmp);
    cJSON *other = resolved(text);
    if (other) {
        cJSON *thief = cJSON_Duplicate(other, 1);
        cJSON_ReplaceItemInObject(thief, "commit", cJSON_CreateString(feature));
        CHECK_RC(ggi_ws_cache_base(c, thief, &dir2, tree2), GG_ENOTFOUND);
        CHECK_CONTAINS(gg_error_last(), "not in the pack");
        CHECK(dir2 == NULL);
        CHECK_RC(ggi_ws_cache_base(c, thief, &dir2, tree2), GG_ENOTFOUND); /* not recorded */
        cJSON_Delete(thief);
        CHECK_RC(ggi_ws_cache_base(c, other, &dir2, tree2), GG_OK);
        free(dir2);
        dir2 = NULL;
    }
    cJSON_Delete(other);
    /* The first task's pack again: recorded as holding its commit, so no check is redone. */
    snprintf(trees, sizeof trees, "%s/verified", root);
    CHECK(count_entries(trees, 0) >= 2);
    CHECK_RC(ggi_ws_cache_base(c, r, &dir2, tree2), GG_OK);
    free(dir2);
    ggi_ws_cache_close(&c);
    free(dir);
    cJSON_Delete(r);
}

static void from_fetch(void)
{
    char text[1024], root[600];
    snprintf(root, sizeof root, "%s/cache2", tmp);
    ggi_ws_cache *c = NULL;
    CHECK_RC(ggi_ws_cache_open(root, &c), GG_OK);
    /* A file:// URL: resolved by listing its refs, fetched by the cache. */
    snprintf(text, sizeof text, "{\"repo\": \"file://%s/repo\", \"ref\": \"feature\"}", tmp);
    cJSON *r = resolved(text);
    CHECK(cJSON_GetObjectItemCaseSensitive(r, "pack") == NULL);
    char *dir = NULL, tree[41];
    CHECK_RC(ggi_ws_cache_base(c, r, &dir, tree), GG_OK);
    CHECK_STR(tree, feature_tree);
    if (dir)
        check_export(dir, 1);
    free(dir);
    dir = NULL;
    cJSON_Delete(r);
    /* A path at a commit given as it is (no pack), and an unresolved one. */
    snprintf(text, sizeof text, "{\"repo\": \"%s/repo\", \"commit\": \"%s\"}", tmp, head);
    r = js(text);
    CHECK_RC(ggi_ws_cache_base(c, r, &dir, tree), GG_OK);
    CHECK_STR(tree, head_tree);
    if (dir)
        check_export(dir, 0);
    free(dir);
    dir = NULL;
    cJSON_Delete(r);
    snprintf(text, sizeof text, "{\"repo\": \"%s/repo\", \"ref\": \"main\"}", tmp);
    r = js(text);
    CHECK_RC(ggi_ws_cache_base(c, r, &dir, tree), GG_OK);
    CHECK_STR(tree, head_tree);
    free(dir);
    dir = NULL;
    cJSON_Delete(r);
    /* A commit the repository does not have. */
    snprintf(text, sizeof text, "{\"repo\": \"file://%s/repo\", \"commit\": "
             "\"0123456789abcdef0123456789abcdef01234567\"}", tmp);
    r = js(text);
    CHECK_RC(ggi_ws_cache_base(c, r, &dir, tree), GG_ENOTFOUND);
    CHECK_CONTAINS(gg_error_last(), "0123456789abcdef0123456789abcdef01234567");
    CHECK(dir == NULL);
    cJSON_Delete(r);
    /* A commit already in the store is no capability: a URL that cannot be reached does
     * not get it, nor does a path of a repository without it. */
    snprintf(text, sizeof text, "{\"repo\": \"file://%s/gone\", \"commit\": \"%s\"}", tmp, head);
    r = js(text);
    CHECK_RC(ggi_ws_cache_base(c, r, &dir, tree), GG_ENOTFOUND);
    CHECK_CONTAINS(gg_error_last(), head);
    CHECK(dir == NULL);
    cJSON_Delete(r);
    CHECK(sh("set -e; cd %s; git init -q -b main other; cd other; printf o > o.txt; "
             "git add -A; git commit -q -m other", tmp) == 0);
    snprintf(text, sizeof text, "{\"repo\": \"%s/other\", \"commit\": \"%s\"}", tmp, head);
    r = js(text);
    CHECK_RC(ggi_ws_cache_base(c, r, &dir, tree), GG_ENOTFOUND);
    CHECK_CONTAINS(gg_error_last(), "'workspace.commit'");
    CHECK(dir == NULL);
    cJSON_Delete(r);
    /* A URL whose repository holds the commit below its tips (fetched apart to check), and
     * a path that holds it: they get the base. */
    CHECK(sh("set -e; cd %s; git clone -q repo later; cd later; git checkout -q main; "
             "printf 3 > c.txt; git add -A; git commit -q -m three", tmp) == 0);
    const char *holders[] = { "file://%s/later", "%s/later" };
    for (int i = 0; i < 2; i++) {
        char url[700];
        snprintf(url, sizeof url, holders[i], tmp);
        snprintf(text, sizeof text, "{\"repo\": \"%s\", \"commit\": \"%s\"}", url, head);
        r = js(text);
        CHECK_RC(ggi_ws_cache_base(c, r, &dir, tree), GG_OK);
        CHECK_STR(tree, head_tree);
        free(dir);
        dir = NULL;
        cJSON_Delete(r);
    }
    snprintf(text, sizeof text, "{\"repo\": \"file://%s/gone\", \"commit\": "
             "\"1123456789abcdef0123456789abcdef01234567\"}", tmp);
    r = js(text);
    CHECK_RC(ggi_ws_cache_base(c, r, &dir, tree), GG_ENOTFOUND);
    CHECK_CONTAINS(gg_error_last(), "'workspace.repo'");
    cJSON_Delete(r);
    ggi_ws_cache_close(&c);
}

static void from_files(void)
{
    char root[600];
    snprintf(root, sizeof root, "%s/cache3", tmp);
    ggi_ws_cache *c = NULL;
    CHECK_RC(ggi_ws_cache_open(root, &c), GG_OK);
    const char *text = "{\"files\": {\"main.py\": \"print(2)\\n\", \"pkg/util.py\": \"x = 1\\n\"}}";
    cJSON *r = resolved(text);
    char *dir = NULL, tree[41];
    CHECK_RC(ggi_ws_cache_base(c, r, &dir, tree), GG_OK);
    if (dir) {
        char p[1024];
        snprintf(p, sizeof p, "%s/pkg/util.py", dir);
        char *s = read_file(p);
        CHECK_STR(s, "x = 1\n");
        free(s);
        CHECK((mode_of(dir, "main.py") & 07777) == 0444);
        CHECK((mode_of(dir, "pkg") & 07777) == 0555);
    }
    free(dir);
    dir = NULL;
    /* Unresolved files work too, and give the same tree. */
    cJSON *u = js(text);
    char tree2[41];
    CHECK_RC(ggi_ws_cache_base(c, u, &dir, tree2), GG_OK);
    CHECK_STR(tree, tree2);
    free(dir);
    dir = NULL;
    cJSON_Delete(u);
    /* Cached by their content: with the cache's lock held elsewhere, the same files (with
     * or without their commit) still get their base at once (a child, under an alarm that
     * ends it if it waits on the lock). */
    char lockp[700];
    snprintf(lockp, sizeof lockp, "%s/lock", root);
    int lfd = open(lockp, O_RDWR | O_CLOEXEC);
    CHECK(lfd >= 0 && flock(lfd, LOCK_EX) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(60);
        char *d = NULL, t3[41];
        cJSON *u2 = js(text);
        int ok = ggi_ws_cache_base(c, u2, &d, t3) == GG_OK && strcmp(t3, tree) == 0 &&
                 ggi_ws_cache_base(c, r, &d, t3) == GG_OK;
        _exit(ok ? 0 : 1);
    }
    int st = 0;
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    if (lfd >= 0)
        close(lfd);
    /* A commit that the files do not make. */
    cJSON_ReplaceItemInObject(r, "commit",
                              cJSON_CreateString("0123456789abcdef0123456789abcdef01234567"));
    CHECK_RC(ggi_ws_cache_base(c, r, &dir, tree), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "'workspace.commit'");
    cJSON_Delete(r);
    ggi_ws_cache_close(&c);
}

/* Resolved without packs (one machine): the cache reads the sources themselves. */
static void without_pack(void)
{
    char text[1024], root[600];
    snprintf(root, sizeof root, "%s/cache5", tmp);
    ggi_ws_cache *c = NULL;
    CHECK_RC(ggi_ws_cache_open(root, &c), GG_OK);
    cJSON *ws = NULL, *r = NULL;
    char *dir = NULL, tree[41];
    snprintf(text, sizeof text, "{\"repo\": \"%s/repo\", \"ref\": \"feature\"}", tmp);
    ws = js(text);
    CHECK_RC(ggi_ws_resolve_ex(ws, 7, &r), GG_EINVAL);
    CHECK(r == NULL);
    CHECK_RC(ggi_ws_resolve_ex(ws, GGI_WS_RESOLVE_NO_PACK, &r), GG_OK);
    CHECK(r && !cJSON_GetObjectItemCaseSensitive(r, "pack"));
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "commit")), feature);
    CHECK_RC(ggi_ws_cache_base(c, r, &dir, tree), GG_OK);
    CHECK_STR(tree, feature_tree);
    free(dir);
    dir = NULL;
    cJSON_Delete(ws);
    cJSON_Delete(r);
    r = NULL;
    /* A directory: read again by the cache; changed in between, refused. */
    CHECK(sh("mkdir -p %s/nd/sub && printf 1 > %s/nd/sub/one", tmp, tmp) == 0);
    snprintf(text, sizeof text, "{\"dir\": \"%s/nd\"}", tmp);
    ws = js(text);
    CHECK_RC(ggi_ws_resolve_ex(ws, GGI_WS_RESOLVE_NO_PACK, &r), GG_OK);
    CHECK(r && !cJSON_GetObjectItemCaseSensitive(r, "pack"));
    CHECK_RC(ggi_ws_cache_base(c, r, &dir, tree), GG_OK);
    if (dir) {
        char p[1024];
        snprintf(p, sizeof p, "%s/sub/one", dir);
        char *s1 = read_file(p);
        CHECK_STR(s1, "1");
        free(s1);
    }
    free(dir);
    dir = NULL;
    /* The commit pins the content: a cache that holds it keeps giving that base, and one
     * that does not yet refuses a directory that changed since. */
    CHECK(sh("printf 2 > %s/nd/sub/one", tmp) == 0);
    CHECK_RC(ggi_ws_cache_base(c, r, &dir, tree), GG_OK);
    free(dir);
    dir = NULL;
    ggi_ws_cache_close(&c);
    snprintf(root, sizeof root, "%s/cache6", tmp);
    CHECK_RC(ggi_ws_cache_open(root, &c), GG_OK);
    CHECK_RC(ggi_ws_cache_base(c, r, &dir, tree), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "changed since it was resolved");
    CHECK(dir == NULL);
    cJSON_Delete(ws);
    cJSON_Delete(r);
    ggi_ws_cache_close(&c);
}

/* ---- many at once ---- */

typedef struct {
    ggi_ws_cache *c;
    const cJSON *ws;
    char *dir;
    int rc;
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    char tree[41];
    j->rc = ggi_ws_cache_base(j->c, j->ws, &j->dir, tree);
    return NULL;
}

static void concurrent(void)
{
    char text[1024], root[600], trees[700];
    snprintf(root, sizeof root, "%s/cache4", tmp);
    snprintf(trees, sizeof trees, "%s/trees", root);
    snprintf(text, sizeof text, "{\"repo\": \"%s/repo\"}", tmp);
    cJSON *r = resolved(text);
    /* Two handles on one root stand for two processes (their flocks exclude each other). */
    ggi_ws_cache *a = NULL, *b = NULL;
    CHECK_RC(ggi_ws_cache_open(root, &a), GG_OK);
    CHECK_RC(ggi_ws_cache_open(root, &b), GG_OK);
    /* A crash left a half export behind, read-only like a real one. */
    CHECK(sh("mkdir -p %s/.tmp-%s-99999/x && touch %s/.tmp-%s-99999/x/f && "
             "chmod -R a-w %s/.tmp-%s-99999", trees, head_tree, trees, head_tree, trees,
             head_tree) == 0);
    enum { N = 8 };
    job jobs[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        jobs[i] = (job){.c = i % 2 ? a : b, .ws = r};
        pthread_create(&th[i], NULL, run_job, &jobs[i]);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        CHECK_RC(jobs[i].rc, GG_OK);
        CHECK_STR(jobs[i].dir, jobs[0].dir);
    }
    CHECK(count_entries(trees, 0) == 1);
    CHECK(count_entries(trees, 1) == 0); /* the leftover is gone, no new one stays */
    if (jobs[0].dir)
        check_export(jobs[0].dir, 0);
    for (int i = 0; i < N; i++)
        free(jobs[i].dir);
    ggi_ws_cache_close(&a);
    ggi_ws_cache_close(&b);
    cJSON_Delete(r);
}

/* Processes sharing one root: each opens the cache and asks for the same base from a pack;
 * all get one directory, made once. */
static void processes(void)
{
    char text[1024], root[600], trees[700];
    snprintf(root, sizeof root, "%s/cache7", tmp);
    snprintf(trees, sizeof trees, "%s/trees", root);
    snprintf(text, sizeof text, "{\"dir\": \"%s/repo\"}", tmp);
    cJSON *r = resolved(text);
    char want[800] = "";
    enum { N = 4 };
    int fds[N][2];
    pid_t pids[N];
    for (int i = 0; i < N; i++) {
        CHECK(pipe(fds[i]) == 0);
        pids[i] = fork();
        if (pids[i] == 0) {
            ggi_ws_cache *c = NULL;
            char *dir = NULL, tree[41];
            int ok = ggi_ws_cache_open(root, &c) == 0 &&
                     ggi_ws_cache_base(c, r, &dir, tree) == 0;
            if (!ok)
                fprintf(stderr, "child %d: %s\n", i, gg_error_last());
            if (ok && write(fds[i][1], dir, strlen(dir)) < 0)
                ok = 0;
            _exit(ok ? 0 : 1);
        }
        close(fds[i][1]);
    }
    for (int i = 0; i < N; i++) {
        int st = 0;
        CHECK(pids[i] > 0 && waitpid(pids[i], &st, 0) == pids[i]);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        char got[800] = "";
        ssize_t n = read(fds[i][0], got, sizeof got - 1);
        close(fds[i][0]);
        got[n > 0 ? n : 0] = '\0';
        if (i == 0)
            memcpy(want, got, sizeof want);
        CHECK(got[0] && strcmp(got, want) == 0);
    }
    CHECK(count_entries(trees, 0) == 1);
    CHECK(count_entries(trees, 1) == 0);
    cJSON_Delete(r);
}

int main(void)
{
    if (sh("git --version > /dev/null") != 0) {
        fprintf(stderr, "no git command: skipped\n");
        return 77;
    }
    if (!test_make_dir(tmp))
        return 1;
    CHECK(make_repo() == 0);
    from_pack();
    from_fetch();
    from_files();
    without_pack();
    concurrent();
    processes();
    ggi_ws_cache *c = NULL;
    CHECK_RC(ggi_ws_cache_open("/proc/no/such/root", &c), GG_EIO);
    CHECK(c == NULL);
    free(head);
    free(feature);
    free(head_tree);
    free(feature_tree);
    CHECK_RC(ggi_ws_remove(tmp), GG_OK); /* read-only bases inside */
    CHECK(access(tmp, F_OK) != 0);
    return test_exit();
}
