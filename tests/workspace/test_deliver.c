/*
 * test_deliver.c - gg_workspace_deliver() and gg_workspace_format_patch() through the shared
 * library only, against repositories this test makes with the `git` command, which also
 * checks every outcome as an independent client: the new branch's one commit, its parent
 * and tree, its message and identities; HEAD, the index and the working tree (with a staged
 * and an unstaged change) untouched; the refusals (an existing branch, a task that did not
 * pass, a patch that does not apply, a repository given by URL, bad JSON); branch names
 * made from task ids git would refuse; and a format-patch mail that `git am` applies onto
 * the base in a clone, giving the same tree.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cjson/cJSON.h>

#include "gryphgen.h"
#include "testutil.h"

static char root[256];
static char repo[300];

/* Runs a shell command (printf-style); returns its exit status and its stdout (trailing
 * newlines removed) in out when out is not NULL (free it). */
static int sh(char **out, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t cap = 1 << 16, len = 0, n;
    char *buf = malloc(cap);
    while (buf && (n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (len + 1 == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb)
                break;
            buf = nb;
        }
    }
    int st = pclose(p);
    if (buf) {
        buf[len] = '\0';
        while (len && buf[len - 1] == '\n')
            buf[--len] = '\0';
    }
    if (out)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The output of a command that must succeed (a CHECK otherwise); "" on failure. */
static char *must(const char *fmt, ...)
{
    char cmd[4096], *out = NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = sh(&out, "%s", cmd);
    if (rc != 0) {
        fprintf(stderr, "command failed (%d): %s\n%s\n", rc, cmd, out ? out : "");
        CHECK(rc == 0);
    }
    if (!out)
        out = strdup("");
    return out;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static char *task_json(const char *id, const char *repo_path, const char *ref,
                       const char *prompt)
{
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "task_id", id);
    cJSON_AddStringToObject(t, "language", "python");
    if (prompt)
        cJSON_AddStringToObject(t, "prompt", prompt);
    cJSON *ws = cJSON_AddObjectToObject(t, "workspace");
    if (repo_path)
        cJSON_AddStringToObject(ws, "repo", repo_path);
    if (ref)
        cJSON_AddStringToObject(ws, "ref", ref);
    cJSON_AddStringToObject(t, "test_command", "true");
    char *s = cJSON_PrintUnformatted(t);
    cJSON_Delete(t);
    return s;
}

static char *result_json(const char *id, const char *status, const char *patch,
                         const char *base)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "task_id", id);
    cJSON_AddStringToObject(r, "status", status);
    cJSON_AddNumberToObject(r, "attempts", 2);
    if (strcmp(status, "passed") == 0)
        cJSON_AddNumberToObject(r, "passed_attempt", 2);
    if (patch)
        cJSON_AddStringToObject(r, "patch", patch);
    if (base)
        cJSON_AddStringToObject(r, "base_commit", base);
    char *s = cJSON_PrintUnformatted(r);
    cJSON_Delete(r);
    return s;
}

/* What must never change in the repository: HEAD, its branch, the index, the worktree. */
typedef struct repo_state {
    char *head, *symref, *status, *cached, *worktree, *index_sum;
} repo_state;

static void state_read(repo_state *s)
{
    s->index_sum = must("sha256sum < %s/.git/index", repo); /* before git reads it */
    s->head = must("git -C %s rev-parse HEAD", repo);
    s->symref = must("git -C %s symbolic-ref HEAD", repo);
    s->status = must("git -C %s status --porcelain", repo);
    s->cached = must("git -C %s diff --cached", repo);
    s->worktree = must("git -C %s diff", repo);
}

static void state_free(repo_state *s)
{
    free(s->head);
    free(s->symref);
    free(s->status);
    free(s->cached);
    free(s->worktree);
    free(s->index_sum);
}

static void check_unchanged(const repo_state *before)
{
    repo_state now;
    state_read(&now);
    CHECK_STR(now.head, before->head);
    CHECK_STR(now.symref, before->symref);
    CHECK_STR(now.status, before->status);
    CHECK_STR(now.cached, before->cached);
    CHECK_STR(now.worktree, before->worktree);
    CHECK_STR(now.index_sum, before->index_sum);
    state_free(&now);
}

static char *base0, *patch;

/*
 * The repository: commit B0 (tagged v0) with a.txt and b.txt; the patch, made in a clone
 * at B0, changes a.txt and adds src/c.txt; then main moves on to B1 (e.txt), b.txt is
 * changed in the working tree and d.txt is staged.
 */
static void make_repo(void)
{
    char *o;
    snprintf(repo, sizeof repo, "%s/repo", root);
    o = must("git init -q -b main %s && cd %s && printf 'one\\ntwo\\nthree\\n' > a.txt && "
             "printf 'b\\n' > b.txt && git add -A && git commit -q -m base && git tag v0",
             repo, repo);
    free(o);
    base0 = must("git -C %s rev-parse HEAD", repo);
    o = must("git clone -q %s %s/work && cd %s/work && printf 'one\\nTWO\\nthree\\n' > a.txt "
             "&& mkdir src && printf 'new file\\n' > src/c.txt && git add -A",
             repo, root, root);
    free(o);
    patch = must("git -C %s/work diff --cached", root);
    CHECK_CONTAINS(patch, "diff --git a/a.txt b/a.txt");
    /* git strips the last newline of the output: a diff ends with one */
    size_t n = strlen(patch);
    char *p = realloc(patch, n + 2);
    if (p) {
        patch = p;
        strcpy(patch + n, "\n");
    }
    o = must("cd %s && printf 'e\\n' > e.txt && git add e.txt && git commit -q -m next && "
             "printf 'b changed\\n' > b.txt && printf 'staged\\n' > d.txt && git add d.txt",
             repo);
    free(o);
}

/* The tree the patch gives on B0, made with git apply in a clone. */
static char *expected_tree(void)
{
    char *o = must("rm -rf %s/check && git clone -q %s %s/check && cd %s/check && "
                   "git checkout -q %s && git apply --index %s/patch.diff && git write-tree",
                   root, repo, root, root, base0, root);
    return o;
}

static void test_deliver_new_branch(void)
{
    repo_state before;
    char *t = task_json("demo/fix-1", repo, NULL,
                        "  Make two loud.  \nThe second line of a.txt must be upper case.\n");
    char *r = result_json("demo/fix-1", "passed", patch, base0);
    char *out = NULL;

    state_read(&before);
    CHECK(strcmp(before.status, "") != 0); /* there is something to keep */
    CHECK_RC(gg_workspace_deliver(t, r, NULL, &out), GG_OK);
    cJSON *o = cJSON_Parse(out ? out : "");
    const cJSON *br = cJSON_GetObjectItem(o, "branch"), *cm = cJSON_GetObjectItem(o, "commit"),
                *pa = cJSON_GetObjectItem(o, "parent");
    CHECK(cJSON_IsString(br) && cJSON_IsString(cm) && cJSON_IsString(pa));
    if (cJSON_IsString(br) && cJSON_IsString(cm) && cJSON_IsString(pa)) {
        CHECK_STR(br->valuestring, "refs/heads/gryphgen/demo/fix-1");
        CHECK_STR(pa->valuestring, base0);
        char *tip = must("git -C %s rev-parse refs/heads/gryphgen/demo/fix-1", repo);
        CHECK_STR(tip, cm->valuestring);
        free(tip);
    }
    char *count = must("git -C %s rev-list --count %s..gryphgen/demo/fix-1", repo, base0);
    CHECK_STR(count, "1");
    char *parent = must("git -C %s rev-parse gryphgen/demo/fix-1^", repo);
    CHECK_STR(parent, base0);
    char *tree = must("git -C %s rev-parse gryphgen/demo/fix-1^{tree}", repo);
    char *want = expected_tree();
    CHECK_STR(tree, want);
    char *shown = must("git -C %s show gryphgen/demo/fix-1:a.txt", repo);
    CHECK_STR(shown, "one\nTWO\nthree");
    free(shown);
    shown = must("git -C %s show gryphgen/demo/fix-1:src/c.txt", repo);
    CHECK_STR(shown, "new file");
    free(shown);
    /* the base's tree: main's later e.txt and the uncommitted d.txt are not in it */
    CHECK(sh(NULL, "git -C %s cat-file -e gryphgen/demo/fix-1:e.txt 2>/dev/null", repo) != 0);
    CHECK(sh(NULL, "git -C %s cat-file -e gryphgen/demo/fix-1:d.txt 2>/dev/null", repo) != 0);
    char *msg = must("git -C %s log -1 --format=%%B gryphgen/demo/fix-1", repo);
    CHECK_STR(msg, "Make two loud.\n\nThe second line of a.txt must be upper case.\n\n"
                   "Gryphgen-Task: demo/fix-1\nGryphgen-Attempt: 2");
    char *trailers = must("git -C %s log -1 --format='%%(trailers:key=Gryphgen-Task,"
                          "valueonly)' gryphgen/demo/fix-1", repo);
    CHECK_STR(trailers, "demo/fix-1");
    char *who = must("git -C %s log -1 --format='%%an <%%ae>|%%cn <%%ce>' "
                     "gryphgen/demo/fix-1", repo);
    CHECK_STR(who, "Ada Author <ada@example.org>|Carl Committer <carl@example.org>");
    char *fsck = must("git -C %s fsck --no-dangling 2>&1", repo);
    free(fsck);
    check_unchanged(&before);

    /* the same branch again: refused, and the branch stays where it was */
    char *tip = must("git -C %s rev-parse gryphgen/demo/fix-1", repo);
    char *out2 = NULL;
    CHECK_RC(gg_workspace_deliver(t, r, NULL, &out2), GG_EEXIST);
    CHECK(out2 == NULL);
    CHECK_CONTAINS(gg_error_last(), "gryphgen/demo/fix-1");
    CHECK_CONTAINS(gg_error_last(), "exists");
    char *tip2 = must("git -C %s rev-parse gryphgen/demo/fix-1", repo);
    CHECK_STR(tip2, tip);
    check_unchanged(&before);

    free(tip);
    free(tip2);
    free(who);
    free(trailers);
    free(msg);
    free(want);
    free(tree);
    free(parent);
    free(count);
    cJSON_Delete(o);
    gg_free(out);
    free(t);
    free(r);
    state_free(&before);
}

/* Without base_commit the task's ref is the base; opts name the branch and the people. */
static void test_deliver_ref_and_options(void)
{
    repo_state before;
    char *t = task_json("demo/fix-2", repo, "v0", NULL);
    char *r = result_json("demo/fix-2", "passed", patch, NULL);
    gg_deliver_options opts = GG_DELIVER_OPTIONS_INIT;
    char *out = NULL;

    state_read(&before);
    opts.branch = "refs/heads/feature/two";
    opts.author_name = "Opt Author";
    opts.author_email = "opt@example.org";
    setenv("GIT_AUTHOR_DATE", "1700000000 +0130", 1);
    CHECK_RC(gg_workspace_deliver(t, r, &opts, &out), GG_OK);
    unsetenv("GIT_AUTHOR_DATE");
    CHECK_CONTAINS(out, "\"branch\":\"refs/heads/feature/two\"");
    char *parent = must("git -C %s rev-parse feature/two^", repo);
    CHECK_STR(parent, base0);
    char *tree1 = must("git -C %s rev-parse feature/two^{tree}", repo);
    char *tree0 = must("git -C %s rev-parse gryphgen/demo/fix-1^{tree}", repo);
    CHECK_STR(tree1, tree0);
    /* no prompt: the subject names the task */
    char *msg = must("git -C %s log -1 --format=%%B feature/two", repo);
    CHECK_STR(msg, "gryphgen: task demo/fix-2\n\nGryphgen-Task: demo/fix-2\n"
                   "Gryphgen-Attempt: 2");
    char *who = must("git -C %s log -1 --format='%%an <%%ae> %%at %%ai|%%cn' feature/two",
                     repo);
    CHECK_STR(who, "Opt Author <opt@example.org> 1700000000 2023-11-14 23:43:20 +0130|"
                   "Carl Committer");
    check_unchanged(&before);

    /* a branch name git refuses, an unknown options version */
    gg_free(out);
    out = NULL;
    opts.branch = "bad..name";
    CHECK_RC(gg_workspace_deliver(t, r, &opts, &out), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "bad..name");
    opts.branch = "feature/three";
    opts.version = 99;
    CHECK_RC(gg_workspace_deliver(t, r, &opts, &out), GG_EVERSION);
    opts.version = GG_DELIVER_OPTIONS_VERSION;
    setenv("GIT_COMMITTER_DATE", "yesterday", 1);
    CHECK_RC(gg_workspace_deliver(t, r, &opts, &out), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "GIT_COMMITTER_DATE");
    unsetenv("GIT_COMMITTER_DATE");
    CHECK(sh(NULL, "git -C %s rev-parse -q --verify refs/heads/feature/three", repo) != 0);
    CHECK(out == NULL);

    free(who);
    free(msg);
    free(tree0);
    free(tree1);
    free(parent);
    free(t);
    free(r);
    state_free(&before);
}

/* Delivers with prompt onto branch and returns the commit's message (free it). */
static char *message_for(const char *prompt, const char *branch)
{
    char *t = task_json("demo/msg", repo, NULL, prompt);
    char *r = result_json("demo/msg", "passed", patch, base0);
    gg_deliver_options opts = GG_DELIVER_OPTIONS_INIT;
    char *out = NULL;
    opts.branch = branch;
    CHECK_RC(gg_workspace_deliver(t, r, &opts, &out), GG_OK);
    gg_free(out);
    free(t);
    free(r);
    return must("git -C %s log -1 --format=%%B %s", repo, branch);
}

/* The subject: the first line whole when it fits (then not repeated), else cut at 72
 * characters with the whole prompt below; a blank prompt names the task. */
static void test_messages(void)
{
    char prompt[400];
    snprintf(prompt, sizeof prompt, "%s\r\nsecond line\r\n\n\n",
             "Replace every \xc3\xa9 in the parser's error messages with plain e, and keep the "
             "line numbers the same");
    char *msg = message_for(prompt, "msg/long");
    char *subject = must("git -C %s log -1 --format=%%s msg/long", repo);
    CHECK_STR(subject, "Replace every \xc3\xa9 in the parser's error messages with plain e, and "
                       "keep");
    char want[600];
    snprintf(want, sizeof want, "%s\n\nReplace every \xc3\xa9 in the parser's error messages "
             "with plain e, and keep the line numbers the same\nsecond line\n\n"
             "Gryphgen-Task: demo/msg\nGryphgen-Attempt: 2", subject);
    CHECK_STR(msg, want);
    free(msg);
    free(subject);
    msg = message_for("  \n\t\n ", "msg/blank");
    CHECK_STR(msg, "gryphgen: task demo/msg\n\nGryphgen-Task: demo/msg\nGryphgen-Attempt: 2");
    free(msg);
    msg = message_for("\n\n   One line only.   \n", "msg/one");
    CHECK_STR(msg, "One line only.\n\nGryphgen-Task: demo/msg\nGryphgen-Attempt: 2");
    free(msg);
}

/* Each refusal leaves no branch and the repository as it was. */
static void test_refusals(void)
{
    repo_state before;
    char *out = NULL;
    state_read(&before);

    char *t = task_json("demo/bad", repo, NULL, "p");
    char *r = result_json("demo/bad", "failed", patch, base0);
    CHECK_RC(gg_workspace_deliver(t, r, NULL, &out), GG_ESTATE);
    CHECK_CONTAINS(gg_error_last(), "demo/bad");
    CHECK_RC(gg_workspace_format_patch(t, r, &out), GG_ESTATE);
    free(r);
    r = result_json("demo/bad", "error", patch, base0);
    CHECK_RC(gg_workspace_deliver(t, r, NULL, &out), GG_ESTATE);
    free(r);
    r = result_json("demo/bad", "passed", NULL, base0); /* passed without a patch */
    CHECK_RC(gg_workspace_deliver(t, r, NULL, &out), GG_ESTATE);
    CHECK_CONTAINS(gg_error_last(), "patch");
    CHECK_RC(gg_workspace_format_patch(t, r, &out), GG_ESTATE);
    free(r);

    /* a patch whose context is not in the base */
    const char *stale = "diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n"
                        "@@ -1,3 +1,3 @@\n one\n-zwei\n+ZWEI\n three\n";
    r = result_json("demo/bad", "passed", stale, base0);
    CHECK_RC(gg_workspace_deliver(t, r, NULL, &out), GG_EIO);
    CHECK_CONTAINS(gg_error_last(), "task 'demo/bad'");
    CHECK_CONTAINS(gg_error_last(), "does not apply");
    free(r);
    /* text that is no diff at all */
    r = result_json("demo/bad", "passed", "just some words\n", base0);
    CHECK_RC(gg_workspace_deliver(t, r, NULL, &out), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "patch");
    free(r);
    /* a base commit that is not in the repository, and one that is not a commit id */
    r = result_json("demo/bad", "passed", patch, "0123456789abcdef0123456789abcdef01234567");
    CHECK_RC(gg_workspace_deliver(t, r, NULL, &out), GG_ENOTFOUND);
    CHECK_CONTAINS(gg_error_last(), "base_commit");
    free(r);
    r = result_json("demo/bad", "passed", patch, "main");
    CHECK_RC(gg_workspace_deliver(t, r, NULL, &out), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "base_commit");
    free(r);
    free(t);
    CHECK(sh(NULL, "git -C %s rev-parse -q --verify refs/heads/gryphgen/demo/bad", repo) != 0);

    /* a ref that is not there */
    t = task_json("demo/bad", repo, "no-such-tag", "p");
    r = result_json("demo/bad", "passed", patch, NULL);
    CHECK_RC(gg_workspace_deliver(t, r, NULL, &out), GG_ENOTFOUND);
    CHECK_CONTAINS(gg_error_last(), "no-such-tag");
    free(t);

    /* repositories by URL, none there, no workspace.repo at all */
    const char *urls[] = {"https://example.org/x.git", "git@example.org:x/y.git",
                          "file:///tmp/x", "ssh://host/x"};
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        t = task_json("demo/bad", urls[i], NULL, "p");
        CHECK_RC(gg_workspace_deliver(t, r, NULL, &out), GG_EINVAL);
        CHECK_CONTAINS(gg_error_last(), "URL");
        free(t);
    }
    char missing[400];
    snprintf(missing, sizeof missing, "%s/nothing-here", root);
    t = task_json("demo/bad", missing, NULL, "p");
    CHECK_RC(gg_workspace_deliver(t, r, NULL, &out), GG_ENOTFOUND);
    CHECK_CONTAINS(gg_error_last(), "nothing-here");
    free(t);
    t = task_json("demo/bad", NULL, NULL, "p");
    CHECK_RC(gg_workspace_deliver(t, r, NULL, &out), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "workspace.repo");
    free(t);

    /* malformed input */
    t = task_json("demo/bad", repo, NULL, "p");
    CHECK_RC(gg_workspace_deliver("{not json", r, NULL, &out), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "task JSON");
    CHECK_RC(gg_workspace_deliver(t, "[1,2]", NULL, &out), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "result JSON");
    CHECK_RC(gg_workspace_deliver(t, NULL, NULL, &out), GG_EINVAL);
    CHECK_RC(gg_workspace_deliver(t, r, NULL, NULL), GG_EINVAL);
    CHECK_RC(gg_workspace_format_patch("{\"task_id\": 5}", r, &out), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "task_id");
    char *other = result_json("demo/other", "passed", patch, NULL);
    CHECK_RC(gg_workspace_deliver(t, other, NULL, &out), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "demo/other");
    free(other);
    CHECK(out == NULL);
    free(t);
    free(r);
    check_unchanged(&before);
    state_free(&before);
}

/* Task ids git would refuse as ref names still give a valid, distinct branch each. */
static void test_branch_names(void)
{
    const char *ids[] = {"a/../b", "x..y", "@{", "with some spaces", "HumanEval/5",
                         ".hidden/x.", "end.lock", "/lead//trail/", "q?*[~^:\\z",
                         "\xc3\xbcmlaut", "@", "a.lock/b", "tab\there", ".."};
    char seen[sizeof ids / sizeof ids[0]][300];
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        char *t = task_json(ids[i], repo, NULL, "p");
        char *r = result_json(ids[i], "passed", patch, base0);
        char *out = NULL;
        seen[i][0] = '\0';
        CHECK_RC(gg_workspace_deliver(t, r, NULL, &out), GG_OK);
        cJSON *o = cJSON_Parse(out ? out : "");
        const cJSON *br = cJSON_GetObjectItem(o, "branch");
        if (cJSON_IsString(br)) {
            const char *name = br->valuestring;
            CHECK(strncmp(name, "refs/heads/gryphgen/", 20) == 0);
            CHECK(sh(NULL, "git check-ref-format '%s'", name) == 0);
            CHECK(sh(NULL, "git check-ref-format --branch '%s' >/dev/null", name + 11) == 0);
            char *tip = must("git -C %s rev-parse '%s^'", repo, name);
            CHECK_STR(tip, base0);
            free(tip);
            snprintf(seen[i], sizeof seen[i], "%s", name);
            for (size_t j = 0; j < i; j++)
                if (strcmp(seen[j], seen[i]) == 0) {
                    fprintf(stderr, "ids '%s' and '%s' both gave %s\n", ids[j], ids[i], name);
                    CHECK(0);
                }
        } else {
            fprintf(stderr, "task id '%s': %s\n", ids[i], gg_error_last());
            CHECK(0);
        }
        cJSON_Delete(o);
        gg_free(out);
        free(t);
        free(r);
    }
}

/* The mail applies with git am onto the base in a clone and gives the delivered tree. */
static void test_format_patch(void)
{
    const char *prompt = "Fix the \xc3\xbcmlaut handling\n\nDetails follow.\n---\n"
                         "diff --git this is prose\nFrom the author\n";
    char *t = task_json("demo/mail", repo, NULL, prompt);
    char *r = result_json("demo/mail", "passed", patch, base0);
    char *text = NULL;
    CHECK_RC(gg_workspace_format_patch(t, r, &text), GG_OK);
    CHECK(text && strncmp(text, "From 0000000000000000000000000000000000000000 Mon Sep 17 "
                                "00:00:00 2001\n", 66) == 0);
    CHECK_CONTAINS(text, "\nFrom: Ada Author <ada@example.org>\n");
    CHECK_CONTAINS(text, "\nSubject: [PATCH] =?UTF-8?q?");
    CHECK_CONTAINS(text, "\n---\n");
    CHECK_CONTAINS(text, "\n-- \ngryphgen ");
    CHECK_CONTAINS(text, gg_version_string());
    char path[400];
    snprintf(path, sizeof path, "%s/mail.patch", root);
    write_file(path, text ? text : "");
    char *o = must("rm -rf %s/am && git clone -q %s %s/am && cd %s/am && "
                   "git checkout -q -b am %s && git -c user.name=T -c user.email=t@x am -q "
                   "%s 2>&1", root, repo, root, root, base0, path);
    free(o);
    char *tree = must("git -C %s/am rev-parse HEAD^{tree}", root);
    char *want = must("git -C %s rev-parse gryphgen/demo/fix-1^{tree}", repo);
    CHECK_STR(tree, want);
    char *parent = must("git -C %s/am rev-parse HEAD^", root);
    CHECK_STR(parent, base0);
    char *subject = must("git -C %s/am log -1 --format=%%s", root);
    CHECK_STR(subject, "Fix the \xc3\xbcmlaut handling");
    char *body = must("git -C %s/am log -1 --format=%%b", root);
    /* the prompt's lines that look like the end of a message came through, indented */
    CHECK_CONTAINS(body, "Details follow.");
    CHECK_CONTAINS(body, " ---\n diff --git this is prose\n From the author");
    CHECK_CONTAINS(body, "Gryphgen-Task: demo/mail\nGryphgen-Attempt: 2");
    char *author = must("git -C %s/am log -1 --format='%%an <%%ae>'", root);
    CHECK_STR(author, "Ada Author <ada@example.org>");

    free(author);
    author = NULL;
    free(body);
    free(subject);
    free(parent);
    free(want);
    free(tree);
    gg_free(text);

    /* an author name that must be quoted in a mail header comes back as it was */
    setenv("GIT_AUTHOR_NAME", "Doe, \"JD\" [bot]", 1);
    text = NULL;
    CHECK_RC(gg_workspace_format_patch(t, r, &text), GG_OK);
    CHECK_CONTAINS(text, "\nFrom: \"Doe, \\\"JD\\\" [bot]\" <ada@example.org>\n");
    write_file(path, text ? text : "");
    o = must("cd %s/am && git checkout -q -b am2 %s && git -c user.name=T -c user.email=t@x "
             "am -q %s 2>&1", root, base0, path);
    free(o);
    author = must("git -C %s/am log -1 --format='%%an <%%ae>'", root);
    CHECK_STR(author, "Doe, \"JD\" [bot] <ada@example.org>");
    free(author);
    setenv("GIT_AUTHOR_NAME", "Ada Author", 1);
    gg_free(text);
    free(t);
    free(r);
}

#define RACERS 6
#define RACE_ROUNDS 10

typedef struct race_arg {
    const char *task, *result, *branch;
    int rc;
    char msg[512];
} race_arg;

static void *race(void *p)
{
    race_arg *a = p;
    char *out = NULL;
    gg_deliver_options opts = GG_DELIVER_OPTIONS_INIT;
    opts.branch = a->branch;
    a->rc = gg_workspace_deliver(a->task, a->result, &opts, &out);
    snprintf(a->msg, sizeof a->msg, "%s", gg_error_last());
    gg_free(out);
    return NULL;
}

/* Deliveries of one branch at once: one creates it, every other gets GG_EEXIST (git's
 * reference lock decides; a check before the lock alone would let two through). */
static void test_race(void)
{
    char *t = task_json("demo/race", repo, NULL, "p");
    char *r = result_json("demo/race", "passed", patch, base0);
    for (int round = 0; round < RACE_ROUNDS; round++) {
        char branch[64];
        race_arg a[RACERS];
        pthread_t th[RACERS];
        snprintf(branch, sizeof branch, "race/%d", round);
        for (int i = 0; i < RACERS; i++) {
            a[i] = (race_arg){t, r, branch, 1, ""};
            CHECK(pthread_create(&th[i], NULL, race, &a[i]) == 0);
        }
        int ok = 0, exist = 0;
        for (int i = 0; i < RACERS; i++) {
            pthread_join(th[i], NULL);
            ok += a[i].rc == GG_OK;
            exist += a[i].rc == GG_EEXIST;
            if (a[i].rc != GG_OK && a[i].rc != GG_EEXIST)
                fprintf(stderr, "race: a delivery returned %d: %s\n", a[i].rc, a[i].msg);
        }
        if (ok != 1 || exist != RACERS - 1)
            fprintf(stderr, "race round %d: %d created the branch, %d found it\n", round, ok,
                    exist);
        CHECK(ok == 1);
        CHECK(exist == RACERS - 1);
        char *parent = must("git -C %s rev-parse %s^", repo, branch);
        CHECK_STR(parent, base0);
        free(parent);
    }
    free(t);
    free(r);
}

int main(void)
{
    if (system("git --version >/dev/null 2>&1") != 0) {
        fprintf(stderr, "skipped: the git command is not installed\n");
        return 77;
    }
    snprintf(root, sizeof root, "%s/gg-deliver-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR")
                                                                        : "/tmp");
    if (!test_make_dir(root))
        return 1;
    /* no user or system configuration in either git (HOME is where both look) */
    setenv("HOME", root, 1);
    setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
    setenv("GIT_OPTIONAL_LOCKS", "0", 1); /* git status must not refresh the index file */
    setenv("GIT_AUTHOR_NAME", "Ada Author", 1);
    setenv("GIT_AUTHOR_EMAIL", "ada@example.org", 1);
    setenv("GIT_COMMITTER_NAME", "Carl Committer", 1);
    setenv("GIT_COMMITTER_EMAIL", "carl@example.org", 1);
    unsetenv("GIT_AUTHOR_DATE");
    unsetenv("GIT_COMMITTER_DATE");
    unsetenv("GIT_DIR");
    unsetenv("GIT_WORK_TREE");
    unsetenv("GIT_INDEX_FILE");

    make_repo();
    char path[400];
    snprintf(path, sizeof path, "%s/patch.diff", root);
    write_file(path, patch);
    test_deliver_new_branch();
    test_deliver_ref_and_options();
    test_messages();
    test_refusals();
    test_branch_names();
    test_format_patch();
    test_race();

    free(base0);
    free(patch);
    if (!test_failures)
        test_remove_dir(root);
    else
        fprintf(stderr, "kept %s\n", root);
    return test_exit();
}
