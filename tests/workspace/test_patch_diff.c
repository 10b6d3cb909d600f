/*
 * test_patch_diff.c - the unified diff of what an attempt changed (ggi_patch_diff), checked
 * by independent appliers: the git command (git apply --check, then git apply, against a
 * repository of the base), libgit2 (git_diff_from_buffer + git_apply_to_tree, the way
 * delivery applies it), and ggi_patch_apply on a fresh copy of the base (the round trip).
 * Skipped (77) when git is not installed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>
#include <gryphgen.h>

#include "testutil.h"
#include "workspace/patch.h"

static char root[256];
static char base[300], copy[300], repo[300], again[300];

static int sh(const char *fmt, ...) GGI_PRINTF(1, 2);
static int sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void put(const char *dir, const char *rel, const void *data, size_t len, mode_t mode)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    for (char *s = path + strlen(dir) + 1; (s = strchr(s, '/')); s++) {
        *s = '\0';
        mkdir(path, 0755);
        *s = '/';
    }
    unlink(path);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
    fwrite(data, 1, len, f);
    fclose(f);
    chmod(path, mode);
}

static void puts_file(const char *dir, const char *rel, const char *s, mode_t mode)
{
    put(dir, rel, s, strlen(s), mode);
}

static void rm(const char *dir, const char *rel)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    CHECK(unlink(path) == 0);
}

static mode_t mode_of(const char *dir, const char *rel)
{
    char path[1024];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    return stat(path, &st) == 0 ? st.st_mode & 0111 : 0777;
}

static const char *first_msg_or(const cJSON *f)
{
    const char *m = cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(f, 0), "message"));
    return m ? m : "?";
}

/* A text of n numbered lines. */
static char *numbered(int n, int changed_at, const char *changed)
{
    ggi_buf b = GGI_BUF_INIT;
    for (int i = 1; i <= n; i++) {
        if (i == changed_at)
            ggi_buf_printf(&b, "%s\n", changed);
        else
            ggi_buf_printf(&b, "line %d of the file\n", i);
    }
    return ggi_buf_steal(&b);
}

/* The base tree and the attempt's changes to it (in copy). */
static void make_trees(void)
{
    char *t = numbered(60, 0, NULL);
    puts_file(base, "src/long.txt", t, 0644);
    free(t);
    puts_file(base, "hello.c", "int main(void)\n{\n    return 0;\n}\n", 0644);
    puts_file(base, "old.txt", "to be deleted\n", 0644);
    puts_file(base, "empty_old", "", 0644);
    puts_file(base, "tool.sh", "#!/bin/sh\necho tool\n", 0644);
    puts_file(base, "lose_exec.sh", "#!/bin/sh\n", 0755);
    puts_file(base, "noeol.txt", "a\nb", 0644);
    puts_file(base, "gets_noeol.txt", "x\ny\n", 0644);
    puts_file(base, "with space.txt", "one\ntwo\n", 0644);
    puts_file(base, "same.txt", "unchanged\n", 0644);
    puts_file(base, "q\"uote.txt", "q1\n", 0644);
    put(base, "same.bin", "\x00\x01\x02", 3, 0644);
    puts_file(base, "crlf.txt", "a\r\nb\r\nc\r\n", 0644);
    puts_file(base, ".git/config", "not a real repository: skipped\n", 0644);
    CHECK(sh("cp -a '%s' '%s'", base, copy) == 0);

    /* The attempt: */
    char *a = numbered(60, 10, "LINE TEN");
    char *a2 = a; /* and another hunk far away */
    char *p = strstr(a2, "line 50 of the file");
    memcpy(p, "LINE", 4);
    puts_file(copy, "src/long.txt", a, 0644);
    free(a);
    puts_file(copy, "hello.c", "#include <stdio.h>\nint main(void)\n{\n    puts(\"hi\");\n"
                               "    return 0;\n}\n", 0644);
    rm(copy, "old.txt");
    rm(copy, "empty_old");
    puts_file(copy, "new/dir/added.py", "print('added')\n", 0644);
    puts_file(copy, "new/run.sh", "#!/bin/sh\necho new\n", 0755);
    puts_file(copy, "new/empty", "", 0644);
    puts_file(copy, "tool.sh", "#!/bin/sh\necho tool\n", 0755);   /* mode only */
    puts_file(copy, "lose_exec.sh", "#!/bin/sh\nexit 0\n", 0644); /* mode and content */
    puts_file(copy, "noeol.txt", "a\nB", 0644);
    puts_file(copy, "gets_noeol.txt", "x\ny", 0644);
    puts_file(copy, "with space.txt", "one\nTWO\n", 0644);
    puts_file(copy, "crlf.txt", "a\r\nB\r\nc\r\n", 0644);
    puts_file(copy, "q\"uote.txt", "q2\n", 0644);
    puts_file(copy, "\xc3\xbcn\xc3\xaf.txt", "unicode name\n", 0644);
    puts_file(copy, ".git/config", "changed but skipped\n", 0644);
}

/* Applies the patch with libgit2 to the base commit's tree in repo; 1 when the resulting
 * tree is the one `git write-tree` gave for the tree the git command produced (want). */
static int libgit2_applies(const char *patch, const char *want_tree)
{
    git_repository *r = NULL;
    git_diff *diff = NULL;
    git_object *head = NULL;
    git_tree *tree = NULL;
    git_index *idx = NULL;
    git_oid oid;
    int ok = 0;
    if (git_repository_open(&r, repo) != 0 ||
        git_diff_from_buffer(&diff, patch, strlen(patch)) != 0 ||
        git_revparse_single(&head, r, "HEAD^{tree}") != 0 ||
        git_tree_lookup(&tree, r, git_object_id(head)) != 0 ||
        git_apply_to_tree(&idx, r, tree, diff, NULL) != 0 ||
        git_index_write_tree_to(&oid, idx, r) != 0) {
        const git_error *e = git_error_last();
        fprintf(stderr, "libgit2: %s\n", e && e->message ? e->message : "?");
        goto out;
    }
    char hex[GIT_OID_HEXSZ + 1];
    git_oid_tostr(hex, sizeof hex, &oid);
    ok = strcmp(hex, want_tree) == 0;
    if (!ok)
        fprintf(stderr, "libgit2 tree %s, git tree %s\n", hex, want_tree);
out:
    git_index_free(idx);
    git_tree_free(tree);
    git_object_free(head);
    git_diff_free(diff);
    git_repository_free(r);
    return ok;
}

static void test_against_git(void)
{
    make_trees();
    char *patch = NULL;
    CHECK_RC(ggi_patch_diff(base, copy, NULL, &patch), 0);
    if (!patch)
        return;
    /* The format, as git writes it. */
    CHECK_CONTAINS(patch, "diff --git a/hello.c b/hello.c\nindex 58fe692..6efb244 100644\n"
                          "--- a/hello.c\n+++ b/hello.c\n"
                          "@@ -1,4 +1,6 @@\n+#include <stdio.h>\n int main(void)\n {\n"
                          "+    puts(\"hi\");\n     return 0;\n");
    CHECK_CONTAINS(patch, "diff --git a/old.txt b/old.txt\ndeleted file mode 100644\n"
                          "index ");
    CHECK_CONTAINS(patch, "diff --git a/new/dir/added.py b/new/dir/added.py\n"
                          "new file mode 100644\nindex 0000000..");
    CHECK_CONTAINS(patch, "diff --git a/new/empty b/new/empty\nnew file mode 100644\n"
                          "index 0000000..e69de29\n--- /dev/null\n+++ b/new/empty\ndiff --git");
    CHECK_CONTAINS(patch, "--- /dev/null\n+++ b/new/dir/added.py\n@@ -0,0 +1 @@\n"
                          "+print('added')\n");
    CHECK_CONTAINS(patch, "new file mode 100755\nindex 0000000..");
    CHECK_CONTAINS(patch, "..0000000\n--- a/old.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n"
                          "-to be deleted\n");
    CHECK_CONTAINS(patch, "diff --git a/tool.sh b/tool.sh\nold mode 100644\nnew mode 100755\n"
                          "diff --git");
    CHECK_CONTAINS(patch, "-b\n\\ No newline at end of file\n+B\n"
                          "\\ No newline at end of file\n");
    CHECK_CONTAINS(patch, "@@ -7,7 +7,7 @@\n line 7 of the file\n");
    CHECK_CONTAINS(patch, "@@ -47,7 +47,7 @@\n");
    /* Names quoted as git quotes them. */
    CHECK_CONTAINS(patch, "diff --git \"a/q\\\"uote.txt\" \"b/q\\\"uote.txt\"\n");
    CHECK_CONTAINS(patch, "+++ \"b/\\303\\274n\\303\\257.txt\"\n");
    CHECK(strstr(patch, "same.txt") == NULL);
    CHECK(strstr(patch, "same.bin") == NULL);
    CHECK(strstr(patch, ".git/config") == NULL);

    /* The git command accepts it against a repository of the base and makes the copy. */
    char pfile[400];
    snprintf(pfile, sizeof pfile, "%s/attempt.patch", root);
    FILE *f = fopen(pfile, "wb");
    fputs(patch, f);
    fclose(f);
    CHECK(sh("cp -a '%s' '%s' && rm -rf '%s/.git' && cd '%s' && git init -q . && "
             "git add -A && git -c user.name=t -c user.email=t@e -c commit.gpgsign=false "
             "commit -qm base",
             base, repo, repo, repo) == 0);
    CHECK(sh("cd '%s' && git apply --check '%s'", repo, pfile) == 0);
    CHECK(sh("cd '%s' && git apply '%s'", repo, pfile) == 0);
    CHECK(sh("diff -r -x .git '%s' '%s'", repo, copy) == 0);
    CHECK(mode_of(repo, "tool.sh") != 0 && mode_of(repo, "lose_exec.sh") == 0);
    CHECK(mode_of(repo, "new/run.sh") != 0);

    /* libgit2 (how delivery applies it) gives the same tree. */
    char tree[64] = "";
    char tfile[400];
    snprintf(tfile, sizeof tfile, "%s/tree.txt", root);
    CHECK(sh("cd '%s' && git add -A && git write-tree > '%s'", repo, tfile) == 0);
    f = fopen(tfile, "r");
    if (f) {
        if (!fgets(tree, sizeof tree, f))
            tree[0] = '\0';
        fclose(f);
    }
    tree[strcspn(tree, "\n")] = '\0';
    CHECK(strlen(tree) == 40);
    CHECK(libgit2_applies(patch, tree));

    /* The round trip: our own applier on a fresh copy of the base. */
    CHECK(sh("cp -a '%s' '%s'", base, again) == 0);
    cJSON *changed = NULL, *findings = NULL;
    int kind = 0;
    CHECK_RC(ggi_patch_apply(again, patch, strlen(patch), &kind, &changed, &findings), 0);
    if (findings)
        fprintf(stderr, "findings: %s\n", first_msg_or(findings));
    CHECK(kind == GGI_PATCH_DIFF);
    /* Only .git/config differs (it was skipped). */
    CHECK(sh("diff -r -x .git '%s' '%s'", again, copy) == 0);
    CHECK(mode_of(again, "tool.sh") != 0 && mode_of(again, "lose_exec.sh") == 0);
    CHECK(mode_of(again, "new/run.sh") != 0);

    /* The diff of the paths the applier reported is the same diff. */
    char *again_patch = NULL;
    CHECK_RC(ggi_patch_diff(base, again, changed, &again_patch), 0);
    CHECK_STR(again_patch, patch);
    free(again_patch);
    cJSON_Delete(changed);
    cJSON_Delete(findings);
    free(patch);
}

static void test_paths_and_edge_cases(void)
{
    char *patch = NULL;
    /* Only the given paths; a path that is in neither tree gives nothing. */
    cJSON *paths = cJSON_CreateArray();
    cJSON_AddItemToArray(paths, cJSON_CreateString("hello.c"));
    cJSON_AddItemToArray(paths, cJSON_CreateString("nowhere.txt"));
    cJSON_AddItemToArray(paths, cJSON_CreateString("../escape"));
    CHECK_RC(ggi_patch_diff(base, copy, paths, &patch), 0);
    CHECK(patch && strncmp(patch, "diff --git a/hello.c b/hello.c\n", 31) == 0);
    CHECK(patch && strstr(patch + 1, "diff --git") == NULL);
    free(patch);
    cJSON_Delete(paths);

    /* Nothing differs: "". */
    CHECK_RC(ggi_patch_diff(base, base, NULL, &patch), 0);
    CHECK_STR(patch, "");
    free(patch);

    /* A binary change is named, not written. */
    put(copy, "same.bin", "\x00\x09\x02", 3, 0644);
    paths = cJSON_CreateArray();
    cJSON_AddItemToArray(paths, cJSON_CreateString("same.bin"));
    CHECK_RC(ggi_patch_diff(base, copy, paths, &patch), 0);
    CHECK_STR(patch, "diff --git a/same.bin b/same.bin\nindex 8352675..c5793f9 100644\n"
                     "Binary files a/same.bin and b/same.bin differ\n");
    free(patch);
    cJSON_Delete(paths);

    /* A copy made of hard links (ggi_ws_copy's LINK mode): linked files are unchanged; a
     * file replaced by a new one (even with the same size) is compared. */
    char lbase[400], lcopy[400];
    snprintf(lbase, sizeof lbase, "%s/lbase", root);
    snprintf(lcopy, sizeof lcopy, "%s/lcopy", root);
    CHECK(mkdir(lbase, 0755) == 0);
    puts_file(lbase, "a.txt", "aaa\n", 0444);
    puts_file(lbase, "d/b.txt", "bbb\n", 0444);
    CHECK(sh("cp -al '%s' '%s'", lbase, lcopy) == 0);
    CHECK_RC(ggi_patch_diff(lbase, lcopy, NULL, &patch), 0);
    CHECK_STR(patch, "");
    free(patch);
    puts_file(lcopy, "d/b.txt", "BBB\n", 0644);
    CHECK_RC(ggi_patch_diff(lbase, lcopy, NULL, &patch), 0);
    CHECK_CONTAINS(patch, "-bbb\n+BBB\n");
    CHECK(patch && strstr(patch, "a.txt") == NULL);
    free(patch);

    /* A missing tree is GG_EIO. */
    char missing[400];
    snprintf(missing, sizeof missing, "%s/missing", root);
    CHECK_RC(ggi_patch_diff(missing, copy, NULL, &patch), GG_EIO);
    CHECK(patch == NULL);
}

int main(void)
{
    if (sh("git --version >/dev/null 2>&1") != 0) {
        fprintf(stderr, "git is not installed: skipped\n");
        return 77;
    }
    git_libgit2_init();
    snprintf(root, sizeof root, "/tmp/gg-test-pdiff-XXXXXX");
    if (!test_make_dir(root))
        return 1;
    snprintf(base, sizeof base, "%s/base", root);
    snprintf(copy, sizeof copy, "%s/copy", root);
    snprintf(repo, sizeof repo, "%s/repo", root);
    snprintf(again, sizeof again, "%s/again", root);
    CHECK(mkdir(base, 0755) == 0);
    test_against_git();
    test_paths_and_edge_cases();
    test_remove_dir(root);
    git_libgit2_shutdown();
    return test_exit();
}
