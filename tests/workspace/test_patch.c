/*
 * test_patch.c - applying generators' answers to a workspace copy (ggi_patch_apply): git and
 * plain diffs, fences and prose, CRLF, wrong counts and line numbers, new, deleted, renamed
 * files, whole-files answers; and the hostile ones (paths that leave the copy, symbolic
 * links, .git, caps, binary patches, hunks that do not apply), where nothing may be written.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gryphgen.h>

#include "testutil.h"
#include "workspace/patch.h"

static char root[256];
static char dir[300];   /* the copy answers are applied to */
static char out[300];   /* outside the copy */

/* Writes root-relative content, making directories. */
static void put(const char *base, const char *rel, const char *content, mode_t mode)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", base, rel);
    for (char *s = path + strlen(base) + 1; (s = strchr(s, '/')); s++) {
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
    fputs(content, f);
    fclose(f);
    chmod(path, mode);
}

/* Reads a file (malloc'd) or NULL when it is not there. */
static char *get(const char *base, const char *rel)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", base, rel);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

static int exists(const char *base, const char *rel)
{
    char path[1024];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", base, rel);
    return lstat(path, &st) == 0;
}

static mode_t mode_of(const char *base, const char *rel)
{
    char path[1024];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", base, rel);
    return stat(path, &st) == 0 ? st.st_mode & 0777 : 0;
}

#define CHECK_FILE(base, rel, want)                                                    \
    do {                                                                               \
        char *got_ = get(base, rel);                                                   \
        CHECK_STR(got_, want);                                                         \
        free(got_);                                                                    \
    } while (0)

/* A fresh copy with a few files. */
static void fresh(void)
{
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s' && mkdir -p '%s' '%s'", dir, out, dir, out);
    if (system(cmd) != 0)
        exit(1);
    put(dir, "hello.c",
        "#include <stdio.h>\n"
        "\n"
        "int main(void)\n"
        "{\n"
        "    printf(\"hello\\n\");\n"
        "    return 0;\n"
        "}\n",
        0644);
    put(dir, "src/lib.py", "def f(x):\n    return x\n\n\ndef g(y):\n    return y\n", 0644);
    put(dir, "run.sh", "#!/bin/sh\necho run\n", 0755);
}

static int apply_s(const char *answer, int *kind, cJSON **changed, cJSON **findings)
{
    return ggi_patch_apply(dir, answer, strlen(answer), kind, changed, findings);
}

/* The message of the first finding (borrowed from f). */
static const char *first_msg(const cJSON *f)
{
    return cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(f, 0), "message"));
}

/* Applies an answer that must fail with status want and a first message holding needle;
 * checks that nothing in the copy changed. */
static void expect_refused(const char *answer, int want, const char *needle)
{
    fresh();
    cJSON *changed = NULL, *findings = NULL;
    int kind = -1;
    CHECK_RC(apply_s(answer, &kind, &changed, &findings), want);
    CHECK(findings != NULL && cJSON_GetArraySize(findings) >= 1);
    CHECK(changed == NULL);
    if (findings) {
        CHECK_CONTAINS(first_msg(findings), needle);
        CHECK_STR(gg_error_last(), first_msg(findings));
        const cJSON *sev = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(findings, 0),
                                                            "severity");
        CHECK_STR(cJSON_GetStringValue(sev), "error");
    }
    cJSON_Delete(findings);
    CHECK_FILE(dir, "hello.c",
               "#include <stdio.h>\n\nint main(void)\n{\n    printf(\"hello\\n\");\n"
               "    return 0;\n}\n");
    CHECK_FILE(dir, "src/lib.py", "def f(x):\n    return x\n\n\ndef g(y):\n    return y\n");
    CHECK_FILE(dir, "run.sh", "#!/bin/sh\necho run\n");
}

static const char *HELLO_DIFF =
    "diff --git a/hello.c b/hello.c\n"
    "index 1234567..89abcde 100644\n"
    "--- a/hello.c\n"
    "+++ b/hello.c\n"
    "@@ -3,5 +3,5 @@\n"
    " int main(void)\n"
    " {\n"
    "-    printf(\"hello\\n\");\n"
    "+    printf(\"hello, world\\n\");\n"
    "     return 0;\n"
    " }\n";

static const char *HELLO_AFTER =
    "#include <stdio.h>\n\nint main(void)\n{\n    printf(\"hello, world\\n\");\n"
    "    return 0;\n}\n";

static void test_git_diff(void)
{
    fresh();
    cJSON *changed = NULL, *findings = NULL;
    int kind = 0;
    CHECK_RC(apply_s(HELLO_DIFF, &kind, &changed, &findings), 0);
    CHECK(kind == GGI_PATCH_DIFF);
    CHECK(findings == NULL);
    CHECK_FILE(dir, "hello.c", HELLO_AFTER);
    CHECK(cJSON_GetArraySize(changed) == 1);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetArrayItem(changed, 0)), "hello.c");
    cJSON_Delete(changed);
    CHECK(mode_of(dir, "hello.c") == 0644);
}

static void test_fences_and_prose(void)
{
    /* Prose, a code block that is not a diff, then the diff in a ```diff fence. */
    ggi_buf b = GGI_BUF_INIT;
    ggi_buf_printf(&b, "Here is the fix. First the idea:\n\n```c\nprintf(\"x\");\n```\n\n"
                       "And the patch:\n\n```diff\n%s```\n\nThis changes the greeting.\n",
                   HELLO_DIFF);
    fresh();
    cJSON *findings = NULL;
    int kind = 0;
    CHECK_RC(apply_s(b.data, &kind, NULL, &findings), 0);
    CHECK(kind == GGI_PATCH_DIFF);
    CHECK_FILE(dir, "hello.c", HELLO_AFTER);
    ggi_buf_free(&b);

    /* A plain ``` fence and a ```patch fence: both diffs apply, in order. */
    ggi_buf_printf(&b, "```\n%s```\ntext between\n```patch\n"
                       "--- a/src/lib.py\n+++ b/src/lib.py\n@@ -1,2 +1,2 @@\n def f(x):\n"
                       "-    return x\n+    return x + 1\n```\n",
                   HELLO_DIFF);
    fresh();
    CHECK_RC(apply_s(b.data, &kind, NULL, &findings), 0);
    CHECK_FILE(dir, "hello.c", HELLO_AFTER);
    CHECK_FILE(dir, "src/lib.py", "def f(x):\n    return x + 1\n\n\ndef g(y):\n    return y\n");
    ggi_buf_free(&b);

    /* One file's hunks in two fences, with prose between. */
    fresh();
    CHECK_RC(apply_s("First:\n```diff\n--- a/src/lib.py\n+++ b/src/lib.py\n@@ -1,2 +1,2 @@\n"
                     " def f(x):\n-    return x\n+    return 10\n```\nThen:\n```diff\n"
                     "@@ -5,2 +5,2 @@\n def g(y):\n-    return y\n+    return 20\n```\n",
                     &kind, NULL, &findings), 0);
    CHECK_FILE(dir, "src/lib.py", "def f(x):\n    return 10\n\n\ndef g(y):\n    return 20\n");

    /* A fence inside a markdown list: indented, with its lines. */
    fresh();
    ggi_buf_puts(&b, "Steps:\n\n1. Apply this patch:\n\n   ```diff\n");
    for (const char *p = HELLO_DIFF; *p;) {
        const char *nl = strchr(p, '\n');
        ggi_buf_puts(&b, "   ");
        ggi_buf_append(&b, p, (size_t)(nl - p + 1));
        p = nl + 1;
    }
    ggi_buf_puts(&b, "   ```\n\n2. Run the tests.\n");
    CHECK_RC(apply_s(b.data, &kind, NULL, &findings), 0);
    CHECK_FILE(dir, "hello.c", HELLO_AFTER);
    ggi_buf_free(&b);

    /* A column-0 fence wins; a markdown file's indented fence inside it is content. */
    fresh();
    put(dir, "README.md", "# T\n\n   ```sh\n   make\n   ```\n", 0644);
    CHECK_RC(apply_s("```diff\n--- a/README.md\n+++ b/README.md\n@@ -3,3 +3,4 @@\n    ```sh\n"
                     "    make\n+   make test\n    ```\n```\n",
                     &kind, NULL, &findings), 0);
    CHECK_FILE(dir, "README.md", "# T\n\n   ```sh\n   make\n   make test\n   ```\n");

    /* No fence, prose before and after (a bullet list after a blank line). */
    ggi_buf_printf(&b, "Sure! Apply this:\n%s\nChanges:\n- the greeting\n", HELLO_DIFF);
    fresh();
    CHECK_RC(apply_s(b.data, &kind, NULL, &findings), 0);
    CHECK_FILE(dir, "hello.c", HELLO_AFTER);
    ggi_buf_free(&b);
}

static void test_crlf_answer(void)
{
    ggi_buf b = GGI_BUF_INIT;
    for (const char *p = HELLO_DIFF; *p; p++) {
        if (*p == '\n')
            ggi_buf_append(&b, "\r", 1);
        ggi_buf_append(&b, p, 1);
    }
    fresh();
    cJSON *findings = NULL;
    CHECK_RC(apply_s(b.data, NULL, NULL, &findings), 0);
    CHECK_FILE(dir, "hello.c", HELLO_AFTER);
    ggi_buf_free(&b);

    /* A CRLF file: context matches ignoring the \r, added lines get CRLF too. */
    fresh();
    put(dir, "w.txt", "one\r\ntwo\r\nthree\r\n", 0644);
    CHECK_RC(apply_s("--- a/w.txt\n+++ b/w.txt\n@@ -1,3 +1,3 @@\n one\n-two\n+TWO\n three\n",
                     NULL, NULL, &findings), 0);
    CHECK_FILE(dir, "w.txt", "one\r\nTWO\r\nthree\r\n");

    /* git's diff of a CRLF file: LF headers, CR in the lines; the CRs are content. */
    CHECK_RC(apply_s("diff --git a/w.txt b/w.txt\n--- a/w.txt\n+++ b/w.txt\n@@ -1,3 +1,3 @@\n"
                     " one\r\n-TWO\r\n+2\r\n three\r\n",
                     NULL, NULL, &findings), 0);
    CHECK_FILE(dir, "w.txt", "one\r\n2\r\nthree\r\n");
    /* ... and a line with a CR added to an LF file keeps it. */
    CHECK_RC(apply_s("--- a/run.sh\n+++ b/run.sh\n@@ -2 +2,2 @@\n echo run\n+echo cr\r\n",
                     NULL, NULL, &findings), 0);
    CHECK_FILE(dir, "run.sh", "#!/bin/sh\necho run\necho cr\r\n");
}

static void test_counts_and_offsets(void)
{
    cJSON *findings = NULL;
    /* Counts that are wrong (the body says 5/5). */
    fresh();
    CHECK_RC(apply_s("--- a/hello.c\n+++ b/hello.c\n@@ -3,9 +3,2 @@\n int main(void)\n {\n"
                     "-    printf(\"hello\\n\");\n+    printf(\"hello, world\\n\");\n"
                     "     return 0;\n }\n",
                     NULL, NULL, &findings), 0);
    CHECK_FILE(dir, "hello.c", HELLO_AFTER);

    /* A header without counts, at a wrong line, with no trailing context. */
    fresh();
    CHECK_RC(apply_s("--- a/hello.c\n+++ b/hello.c\n@@ -1 +1 @@\n"
                     "-    printf(\"hello\\n\");\n+    printf(\"hello, world\\n\");\n",
                     NULL, NULL, &findings), 0);
    CHECK_FILE(dir, "hello.c", HELLO_AFTER);

    /* A hunk 40 lines off still applies by offset; the next hunk follows the offset. */
    fresh();
    ggi_buf b = GGI_BUF_INIT, want = GGI_BUF_INIT;
    for (int i = 1; i <= 100; i++) {
        ggi_buf_printf(&b, "line %d\n", i);
        if (i == 50)
            ggi_buf_puts(&want, "LINE 50\n");
        else if (i == 90)
            ggi_buf_puts(&want, "LINE 90\n");
        else
            ggi_buf_printf(&want, "line %d\n", i);
    }
    put(dir, "n.txt", b.data, 0644);
    CHECK_RC(apply_s("--- a/n.txt\n+++ b/n.txt\n"
                     "@@ -8,7 +8,7 @@\n line 47\n line 48\n line 49\n-line 50\n+LINE 50\n"
                     " line 51\n line 52\n line 53\n"
                     "@@ -48,7 +48,7 @@\n line 87\n line 88\n line 89\n-line 90\n+LINE 90\n"
                     " line 91\n line 92\n line 93\n",
                     NULL, NULL, &findings), 0);
    CHECK_FILE(dir, "n.txt", want.data);
    ggi_buf_free(&b);
    ggi_buf_free(&want);

    /* Trailing whitespace differs (the file has it, the diff does not). */
    fresh();
    put(dir, "ws.txt", "a  \nb\t\nc\n", 0644);
    CHECK_RC(apply_s("--- a/ws.txt\n+++ b/ws.txt\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n", NULL,
                     NULL, &findings), 0);
    CHECK_FILE(dir, "ws.txt", "a  \nB\nc\n");

    /* Tabs the model turned into spaces: the context keeps the file's tabs. */
    fresh();
    put(dir, "tab.c", "int f(void)\n{\n\treturn 1;\n}\n", 0644);
    CHECK_RC(apply_s("--- a/tab.c\n+++ b/tab.c\n@@ -1,4 +1,5 @@\n int f(void)\n {\n"
                     "+\tint x = 2;\n     return 1;\n }\n",
                     NULL, NULL, &findings), 0);
    CHECK_FILE(dir, "tab.c", "int f(void)\n{\n\tint x = 2;\n\treturn 1;\n}\n");
    /* ... but different words are not whitespace. */
    expect_refused("--- a/hello.c\n+++ b/hello.c\n@@ -6 +6 @@\n-    return0;\n+    return 1;\n",
                   GG_EINVAL, "hunk 1 does not apply");

    /* Empty context lines without their space (models drop it). */
    fresh();
    CHECK_RC(apply_s("--- a/src/lib.py\n+++ b/src/lib.py\n@@ -1,6 +1,6 @@\n def f(x):\n"
                     "     return x\n\n\n def g(y):\n-    return y\n+    return -y\n",
                     NULL, NULL, &findings), 0);
    CHECK_FILE(dir, "src/lib.py", "def f(x):\n    return x\n\n\ndef g(y):\n    return -y\n");

    /* Hunk headers without numbers: placed by their context. */
    fresh();
    CHECK_RC(apply_s("--- a/src/lib.py\n+++ b/src/lib.py\n@@ ... @@\n def g(y):\n"
                     "-    return y\n+    return 2 * y\n",
                     NULL, NULL, &findings), 0);
    CHECK_FILE(dir, "src/lib.py", "def f(x):\n    return x\n\n\ndef g(y):\n    return 2 * y\n");
}

static void test_model_mistakes(void)
{
    cJSON *findings = NULL;
    /* diff -u hello.c.orig hello.c: one file changes, no rename. */
    fresh();
    CHECK_RC(apply_s("--- hello.c.orig\t2024-01-01 10:00:00.000000000 +0000\n"
                     "+++ hello.c\t2024-01-01 10:01:00.000000000 +0000\n"
                     "@@ -3,5 +3,5 @@\n int main(void)\n {\n-    printf(\"hello\\n\");\n"
                     "+    printf(\"hello, world\\n\");\n     return 0;\n }\n",
                     NULL, NULL, &findings), 0);
    CHECK_FILE(dir, "hello.c", HELLO_AFTER);
    CHECK(!exists(dir, "hello.c.orig"));

    /* Names that disagree on their prefixes, and a git section without --- and +++. */
    fresh();
    CHECK_RC(apply_s("diff --git a/run.sh b/run.sh\n--- a/run.sh\n+++ run.sh\n@@ -2 +2 @@\n"
                     "-echo run\n+echo ran\n"
                     "diff --git a/src/lib.py b/src/lib.py\n@@ -1,2 +1,2 @@\n def f(x):\n"
                     "-    return x\n+    return 7\n",
                     NULL, NULL, &findings), 0);
    CHECK_FILE(dir, "run.sh", "#!/bin/sh\necho ran\n");
    CHECK_FILE(dir, "src/lib.py", "def f(x):\n    return 7\n\n\ndef g(y):\n    return y\n");

    /* A new file written as a change of a file that does not exist. */
    fresh();
    CHECK_RC(apply_s("--- a/notes.txt\n+++ b/notes.txt\n@@ -0,0 +1,2 @@\n+one\n+two\n", NULL,
                     NULL, &findings), 0);
    CHECK_FILE(dir, "notes.txt", "one\ntwo\n");

    /* Removed "-- x" and added "++ y" lines inside a hunk are not a new file's header. */
    fresh();
    put(dir, "q.sql", "select 1;\n-- old comment\nselect 2;\n", 0644);
    CHECK_RC(apply_s("--- a/q.sql\n+++ b/q.sql\n@@ -1,3 +1,3 @@\n select 1;\n--- old comment\n"
                     "+++ new comment\n select 2;\n",
                     NULL, NULL, &findings), 0);
    CHECK_FILE(dir, "q.sql", "select 1;\n++ new comment\nselect 2;\n");

    /* ... even right before the next hunk, when the counts say they belong to the hunk. */
    put(dir, "q.txt", "a\n-- x\nc\nd\ne\nf\n", 0644);
    CHECK_RC(apply_s("--- a/q.txt\n+++ b/q.txt\n@@ -1,2 +1,2 @@\n a\n--- x\n+++ y\n"
                     "@@ -5,2 +5,2 @@\n e\n-f\n+F\n",
                     NULL, NULL, &findings), 0);
    CHECK_FILE(dir, "q.txt", "a\n++ y\nc\nd\ne\nF\n");

    /* Two sections for the same file apply one after the other. */
    fresh();
    CHECK_RC(apply_s("--- a/run.sh\n+++ b/run.sh\n@@ -2 +2 @@\n-echo run\n+echo one\n"
                     "--- a/run.sh\n+++ b/run.sh\n@@ -2 +2 @@\n-echo one\n+echo two\n",
                     NULL, NULL, &findings), 0);
    CHECK_FILE(dir, "run.sh", "#!/bin/sh\necho two\n");
    CHECK(mode_of(dir, "run.sh") == 0755);

    expect_refused("diff --git a/x b/x\nnew file mode 100644\ndeleted file mode 100644\n",
                   GG_EINVAL, "both creates and deletes");
}

static void test_no_newline(void)
{
    cJSON *findings = NULL;
    fresh();
    put(dir, "t.txt", "a\nb", 0644);
    CHECK_RC(apply_s("--- a/t.txt\n+++ b/t.txt\n@@ -1,2 +1,2 @@\n a\n-b\n"
                     "\\ No newline at end of file\n+c\n",
                     NULL, NULL, &findings), 0);
    CHECK_FILE(dir, "t.txt", "a\nc\n");
    CHECK_RC(apply_s("--- a/t.txt\n+++ b/t.txt\n@@ -1,2 +1,2 @@\n a\n-c\n+d\n"
                     "\\ No newline at end of file\n",
                     NULL, NULL, &findings), 0);
    CHECK_FILE(dir, "t.txt", "a\nd");
}

static void test_new_delete_rename(void)
{
    cJSON *findings = NULL, *changed = NULL;
    fresh();
    CHECK_RC(apply_s("diff --git a/pkg/new/tool.sh b/pkg/new/tool.sh\n"
                     "new file mode 100755\nindex 0000000..1111111\n"
                     "--- /dev/null\n+++ b/pkg/new/tool.sh\n@@ -0,0 +1,2 @@\n+#!/bin/sh\n+echo hi\n"
                     "diff --git a/run.sh b/run.sh\ndeleted file mode 100755\n"
                     "--- a/run.sh\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-#!/bin/sh\n-echo run\n"
                     "diff --git a/src/lib.py b/src/core.py\nsimilarity index 90%\n"
                     "rename from src/lib.py\nrename to src/core.py\n"
                     "--- a/src/lib.py\n+++ b/src/core.py\n@@ -1,2 +1,2 @@\n def f(x):\n"
                     "-    return x\n+    return x * 2\n",
                     NULL, &changed, &findings), 0);
    CHECK_FILE(dir, "pkg/new/tool.sh", "#!/bin/sh\necho hi\n");
    CHECK(mode_of(dir, "pkg/new/tool.sh") == 0755);
    CHECK(!exists(dir, "run.sh"));
    CHECK(!exists(dir, "src/lib.py"));
    CHECK_FILE(dir, "src/core.py", "def f(x):\n    return x * 2\n\n\ndef g(y):\n    return y\n");
    char *ch = ggi_json_print(changed);
    CHECK_STR(ch, "[\"pkg/new/tool.sh\",\"run.sh\",\"src/core.py\",\"src/lib.py\"]");
    free(ch);
    cJSON_Delete(changed);

    /* A pure rename (no hunks) and a mode change. */
    fresh();
    CHECK_RC(apply_s("diff --git a/hello.c b/greet.c\nsimilarity index 100%\n"
                     "rename from hello.c\nrename to greet.c\n"
                     "diff --git a/src/lib.py b/src/lib.py\nold mode 100644\nnew mode 100755\n",
                     NULL, NULL, &findings), 0);
    CHECK(!exists(dir, "hello.c"));
    CHECK(exists(dir, "greet.c"));
    CHECK(mode_of(dir, "src/lib.py") == 0755);

    /* A copy keeps its source and its mode. */
    fresh();
    CHECK_RC(apply_s("diff --git a/run.sh b/bin/run2.sh\nsimilarity index 100%\n"
                     "copy from run.sh\ncopy to bin/run2.sh\n",
                     NULL, NULL, &findings), 0);
    CHECK_FILE(dir, "run.sh", "#!/bin/sh\necho run\n");
    CHECK_FILE(dir, "bin/run2.sh", "#!/bin/sh\necho run\n");
    CHECK(mode_of(dir, "bin/run2.sh") == 0755);

    /* Deleting the last file of a directory removes the directory, as git does. */
    fresh();
    CHECK_RC(apply_s("--- a/src/lib.py\n+++ /dev/null\n@@ -1,6 +0,0 @@\n-def f(x):\n"
                     "-    return x\n-\n-\n-def g(y):\n-    return y\n",
                     NULL, NULL, &findings), 0);
    CHECK(!exists(dir, "src"));

    /* An empty new file (git writes no hunk for it). */
    fresh();
    CHECK_RC(apply_s("diff --git a/empty.txt b/empty.txt\nnew file mode 100644\n"
                     "index 0000000..e69de29\n",
                     NULL, NULL, &findings), 0);
    CHECK_FILE(dir, "empty.txt", "");

    expect_refused("--- /dev/null\n+++ b/hello.c\n@@ -0,0 +1 @@\n+x\n", GG_EINVAL,
                   "creates it but it already exists");
    expect_refused("--- a/gone.c\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n", GG_EINVAL,
                   "deletes it but it does not exist");
    expect_refused("--- a/run.sh\n+++ /dev/null\n@@ -1 +0,0 @@\n-#!/bin/sh\n", GG_EINVAL,
                   "holds lines the diff does not remove");
    expect_refused("--- a/missing.c\n+++ b/missing.c\n@@ -1 +1 @@\n-x\n+y\n", GG_EINVAL,
                   "changes it but it does not exist");
    expect_refused("diff --git a/hello.c b/run.sh\nrename from hello.c\nrename to run.sh\n",
                   GG_EINVAL, "already exists");
    expect_refused("diff --git a/l b/l\nnew file mode 120000\n--- /dev/null\n+++ b/l\n"
                   "@@ -0,0 +1 @@\n+/etc/passwd\n\\ No newline at end of file\n",
                   GG_EINVAL, "symbolic link");
}

static void test_hunk_fails(void)
{
    /* The second file's second hunk does not apply: nothing is written (not even the first
     * file), and the finding names the file, the hunk and the line. */
    ggi_buf b = GGI_BUF_INIT;
    ggi_buf_printf(&b, "%s--- a/src/lib.py\n+++ b/src/lib.py\n@@ -1,2 +1,2 @@\n def f(x):\n"
                       "-    return x\n+    return 0\n@@ -5,2 +5,2 @@\n def h(z):\n"
                       "-    return z\n+    return 1\n",
                   HELLO_DIFF);
    expect_refused(b.data, GG_EINVAL, "file 'src/lib.py': hunk 2 does not apply");
    cJSON *findings = NULL;
    fresh();
    CHECK_RC(apply_s(b.data, NULL, NULL, &findings), GG_EINVAL);
    CHECK_CONTAINS(first_msg(findings), "'def h(z):'");
    CHECK_CONTAINS(first_msg(findings), "(expected at line 5)");
    const cJSON *f0 = cJSON_GetArrayItem(findings, 0);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(f0, "path")),
              "src/lib.py");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(f0, "hunk")) == 2);
    cJSON_Delete(findings);
    ggi_buf_free(&b);

    /* A hunk that nearly fits says where and how it differs. */
    fresh();
    CHECK_RC(apply_s("--- a/hello.c\n+++ b/hello.c\n@@ -3,4 +3,4 @@\n int main(void)\n {\n"
                     "-    printf(\"hi\\n\");\n+    puts(\"hi\");\n     return 0;\n",
                     NULL, NULL, &findings), GG_EINVAL);
    CHECK_CONTAINS(first_msg(findings),
                   "nearest: from line 3 its first 2 lines match, then it has "
                   "'    printf(\"hi\\n\");' where the file has '    printf(\"hello\\n\");'");
    cJSON_Delete(findings);

    /* Two failing files: both are reported. */
    fresh();
    CHECK_RC(apply_s("--- a/hello.c\n+++ b/hello.c\n@@ -1 +1 @@\n-nope\n+x\n"
                     "--- a/run.sh\n+++ b/run.sh\n@@ -1 +1 @@\n-nope either\n+y\n",
                     NULL, NULL, &findings), GG_EINVAL);
    CHECK(cJSON_GetArraySize(findings) == 2);
    cJSON_Delete(findings);

    /* A hunk may not apply before the previous one. */
    expect_refused("--- a/src/lib.py\n+++ b/src/lib.py\n@@ -5,2 +5,2 @@\n def g(y):\n"
                   "-    return y\n+    return 1\n@@ -1,2 +1,2 @@\n def f(x):\n"
                   "-    return x\n+    return 0\n",
                   GG_EINVAL, "hunk 2 does not apply");
}

static void test_not_a_diff(void)
{
    expect_refused("I think the bug is in line 3, you should change printf.", GG_EINVAL,
                   "the answer is neither a unified diff nor {\"files\": ...}");
    expect_refused("", GG_EINVAL, "neither");
    expect_refused("```python\ndef f():\n    pass\n```\n", GG_EINVAL, "neither");
    expect_refused("{\"files\": {\"a.txt\": \"unterminated}", GG_EINVAL, "files");
    expect_refused("diff --git a/img.png b/img.png\nindex 1111111..2222222 100644\n"
                   "GIT binary patch\nliteral 10\nRcmZ?wbhEHbRA6LB00BSz\n\nliteral 0\n"
                   "HcmV?d00001\n\n",
                   GG_EINVAL, "binary patches are not supported");
    expect_refused("diff --git a/img.png b/img.png\nindex 1111111..2222222 100644\n"
                   "Binary files a/img.png and b/img.png differ\n",
                   GG_EINVAL, "binary");
    /* diff -ru's note of a binary file beside a text change: the whole answer is refused. */
    ggi_buf b = GGI_BUF_INIT;
    ggi_buf_printf(&b, "%sBinary files a/logo.png and b/logo.png differ\n", HELLO_DIFF);
    expect_refused(b.data, GG_EINVAL, "file 'a/logo.png': binary patches are not supported");
    ggi_buf_free(&b);
    static const char nul[] = "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\0\n+b\n";
    fresh();
    cJSON *findings = NULL;
    CHECK_RC(ggi_patch_apply(dir, nul, sizeof nul - 1, NULL, NULL, &findings), GG_EINVAL);
    CHECK_CONTAINS(first_msg(findings), "NUL");
    cJSON_Delete(findings);
}

static void test_whole_files(void)
{
    cJSON *findings = NULL, *changed = NULL;
    int kind = 0;
    fresh();
    CHECK_RC(apply_s("Here you go:\n```json\n{\"files\": {"
                     "\"hello.c\": \"int main(void) { return 1; }\\n\","
                     " \"docs/new.md\": \"# New\\n\", \"src/lib.py\": null,"
                     " \"run.sh\": \"#!/bin/sh\\n\"}}\n```\n",
                     &kind, &changed, &findings), 0);
    CHECK(kind == GGI_PATCH_FILES);
    CHECK_FILE(dir, "hello.c", "int main(void) { return 1; }\n");
    CHECK_FILE(dir, "docs/new.md", "# New\n");
    CHECK(mode_of(dir, "docs/new.md") == 0644);
    CHECK(mode_of(dir, "run.sh") == 0755); /* the exec bit is kept */
    CHECK(!exists(dir, "src/lib.py"));
    CHECK(cJSON_GetArraySize(changed) == 4);
    cJSON_Delete(changed);

    /* Unfenced, with no prose. */
    fresh();
    CHECK_RC(apply_s("{\"files\": {\"a.txt\": \"A\"}}", &kind, NULL, &findings), 0);
    CHECK_FILE(dir, "a.txt", "A");

    expect_refused("{\"files\": {\"hello.c\": 3}}", GG_EINVAL,
                   "field 'files.hello.c' must be a string");
    expect_refused("{\"files\": {\"nope.c\": null}}", GG_EINVAL, "does not exist");
    expect_refused("{\"files\": {\"ok.txt\": \"x\", \"../escape.txt\": \"x\"}}", GG_EINVAL,
                   "leaves the workspace");
    expect_refused("{\"files\": {\"src\": \"x\"}}", GG_EINVAL, "is a directory");
    expect_refused("{\"files\": [1]}", GG_EINVAL, "must be an object");
    CHECK(!exists(dir, "ok.txt"));
}

static void test_hostile_paths(void)
{
    expect_refused("--- a/../escape.txt\n+++ b/../escape.txt\n@@ -0,0 +1 @@\n+x\n",
                   GG_EINVAL, "leaves the workspace");
    expect_refused("--- /dev/null\n+++ /tmp/abs.txt\n@@ -0,0 +1 @@\n+x\n", GG_EINVAL,
                   "is absolute");
    expect_refused("diff --git a/.git/hooks/pre-commit b/.git/hooks/pre-commit\n"
                   "new file mode 100755\n--- /dev/null\n+++ b/.git/hooks/pre-commit\n"
                   "@@ -0,0 +1 @@\n+rm -rf /\n",
                   GG_EINVAL, ".git");
    expect_refused("--- /dev/null\n+++ b/sub/.GIT/config\n@@ -0,0 +1 @@\n+x\n", GG_EINVAL,
                   ".git");
    expect_refused("--- /dev/null\n+++ b/a/./b\n@@ -0,0 +1 @@\n+x\n", GG_EINVAL,
                   "'.' component");
    expect_refused("--- /dev/null\n+++ b/a//b\n@@ -0,0 +1 @@\n+x\n", GG_EINVAL,
                   "empty component");
    expect_refused("--- /dev/null\n+++ \"b/a\\001b\"\n@@ -0,0 +1 @@\n+x\n", GG_EINVAL,
                   "control character");
    /* A rename to outside (the renamed-from file must stay). */
    expect_refused("diff --git a/hello.c b/../hello.c\nrename from hello.c\n"
                   "rename to ../hello.c\n",
                   GG_EINVAL, "leaves the workspace");
    ggi_buf b = GGI_BUF_INIT;
    ggi_buf_puts(&b, "--- /dev/null\n+++ b/");
    for (int i = 0; i < 1100; i++)
        ggi_buf_puts(&b, "x");
    ggi_buf_puts(&b, "\n@@ -0,0 +1 @@\n+x\n");
    expect_refused(b.data, GG_EINVAL, "longer than 1024");
    ggi_buf_free(&b);
    ggi_buf_puts(&b, "--- /dev/null\n+++ b/");
    for (int i = 0; i < 130; i++)
        ggi_buf_puts(&b, "d/");
    ggi_buf_puts(&b, "f\n@@ -0,0 +1 @@\n+x\n");
    expect_refused(b.data, GG_EINVAL, "nested more than 128");
    ggi_buf_free(&b);
}

static void test_symlinks(void)
{
    char target[700];
    /* A directory link pointing outside: a diff creating a file through it. */
    fresh();
    snprintf(target, sizeof target, "%s/d", dir);
    CHECK(symlink(out, target) == 0);
    cJSON *findings = NULL;
    CHECK_RC(apply_s("--- /dev/null\n+++ b/d/planted.txt\n@@ -0,0 +1 @@\n+x\n", NULL, NULL,
                     &findings), GG_EINVAL);
    CHECK_CONTAINS(first_msg(findings), "symbolic link");
    cJSON_Delete(findings);
    CHECK(!exists(out, "planted.txt"));

    /* A rename into the linked directory: refused, the source stays. */
    CHECK_RC(apply_s("diff --git a/hello.c b/d/hello.c\nrename from hello.c\n"
                     "rename to d/hello.c\n", NULL, NULL, &findings), GG_EINVAL);
    CHECK_CONTAINS(first_msg(findings), "symbolic link");
    cJSON_Delete(findings);
    CHECK(!exists(out, "hello.c"));
    CHECK(exists(dir, "hello.c"));

    /* A file link pointing outside: a diff modifying it; the outside file stays. */
    fresh();
    put(out, "victim.txt", "secret\n", 0644);
    snprintf(target, sizeof target, "%s/victim.txt", out);
    char link[700];
    snprintf(link, sizeof link, "%s/v.txt", dir);
    CHECK(symlink(target, link) == 0);
    CHECK_RC(apply_s("--- a/v.txt\n+++ b/v.txt\n@@ -1 +1 @@\n-secret\n+owned\n", NULL, NULL,
                     &findings), GG_EINVAL);
    CHECK_CONTAINS(first_msg(findings), "symbolic link");
    cJSON_Delete(findings);
    CHECK_FILE(out, "victim.txt", "secret\n");
    /* ... nor through whole files, nor by deleting the link. */
    CHECK_RC(apply_s("{\"files\": {\"v.txt\": \"owned\"}}", NULL, NULL, &findings), GG_EINVAL);
    cJSON_Delete(findings);
    CHECK_RC(apply_s("{\"files\": {\"v.txt\": null}}", NULL, NULL, &findings), GG_EINVAL);
    cJSON_Delete(findings);
    CHECK_FILE(out, "victim.txt", "secret\n");
    CHECK(exists(dir, "v.txt"));

    /* A link inside the copy pointing inside it is refused too (to anywhere). */
    fresh();
    snprintf(link, sizeof link, "%s/h.c", dir);
    CHECK(symlink("hello.c", link) == 0);
    CHECK_RC(apply_s("--- a/h.c\n+++ b/h.c\n@@ -1 +1 @@\n-#include <stdio.h>\n+x\n", NULL,
                     NULL, &findings), GG_EINVAL);
    cJSON_Delete(findings);
    CHECK_FILE(dir, "hello.c",
               "#include <stdio.h>\n\nint main(void)\n{\n    printf(\"hello\\n\");\n"
               "    return 0;\n}\n");
}

static void test_hard_link(void)
{
    /* The copy's file is a hard link to a read-only file outside: it is replaced, never
     * written into. */
    fresh();
    put(out, "base.c", "#include <stdio.h>\n\nint main(void)\n{\n    printf(\"hello\\n\");\n"
                       "    return 0;\n}\n", 0444);
    char a[700], l[700];
    snprintf(a, sizeof a, "%s/base.c", out);
    snprintf(l, sizeof l, "%s/hello.c", dir);
    unlink(l);
    CHECK(link(a, l) == 0);
    cJSON *findings = NULL;
    CHECK_RC(apply_s(HELLO_DIFF, NULL, NULL, &findings), 0);
    CHECK_FILE(dir, "hello.c", HELLO_AFTER);
    CHECK_FILE(out, "base.c", "#include <stdio.h>\n\nint main(void)\n{\n    printf(\"hello\\n\");\n"
                              "    return 0;\n}\n");
    struct stat st;
    CHECK(stat(a, &st) == 0 && st.st_nlink == 1 && (st.st_mode & 0777) == 0444);
    CHECK(mode_of(dir, "hello.c") == 0644);
}

static void test_filesystem_faults(void)
{
    /* The copy is missing. */
    cJSON *findings = NULL;
    char missing[400];
    snprintf(missing, sizeof missing, "%s/no-such-copy", root);
    CHECK_RC(ggi_patch_apply(missing, HELLO_DIFF, strlen(HELLO_DIFF), NULL, NULL, &findings),
             GG_EIO);
    CHECK_CONTAINS(first_msg(findings), "cannot open the workspace copy");
    cJSON_Delete(findings);
    /* Without a place for findings, the message is still the last error. */
    CHECK_RC(ggi_patch_apply(missing, HELLO_DIFF, strlen(HELLO_DIFF), NULL, NULL, NULL), GG_EIO);
    CHECK_CONTAINS(gg_error_last(), "cannot open the workspace copy");

    /* A FIFO where a file should be (a job could leave one): refused, not opened. */
    fresh();
    char fifo[700];
    snprintf(fifo, sizeof fifo, "%s/pipe", dir);
    CHECK(mkfifo(fifo, 0644) == 0);
    CHECK_RC(apply_s("{\"files\": {\"pipe\": \"x\"}}", NULL, NULL, &findings), GG_EINVAL);
    CHECK_CONTAINS(first_msg(findings), "not a regular file");
    cJSON_Delete(findings);

    /* A file where a directory should be. */
    CHECK_RC(apply_s("--- /dev/null\n+++ b/hello.c/x\n@@ -0,0 +1 @@\n+x\n", NULL, NULL,
                     &findings), GG_EINVAL);
    CHECK_CONTAINS(first_msg(findings), "not a directory");
    cJSON_Delete(findings);
}

static void test_caps(void)
{
    /* Over the text cap. */
    size_t n = GGI_PATCH_MAX_TEXT + 1;
    char *big = malloc(n + 1);
    memset(big, '+', n);
    memcpy(big, "--- a/x\n+++ b/x\n@@ -0,0 +1 @@\n", 30);
    big[n] = '\0';
    fresh();
    cJSON *findings = NULL;
    CHECK_RC(ggi_patch_apply(dir, big, n, NULL, NULL, &findings), GG_ETOOBIG);
    CHECK_CONTAINS(first_msg(findings), "the limit is");
    cJSON_Delete(findings);
    free(big);

    /* Over the file count. */
    ggi_buf b = GGI_BUF_INIT;
    for (int i = 0; i <= GGI_PATCH_MAX_FILES; i++)
        ggi_buf_printf(&b, "--- /dev/null\n+++ b/f%d\n@@ -0,0 +1 @@\n+x\n", i);
    expect_refused(b.data, GG_ETOOBIG, "the limit is 1000");
    CHECK(!exists(dir, "f0"));
    ggi_buf_free(&b);

    /* A hunk that almost matches everywhere in a file of equal lines: the search stops at
     * its budget with a finding instead of running for minutes. */
    fresh();
    ggi_buf_puts(&b, "--- a/same.txt\n+++ b/same.txt\n@@ -1,5001 +1,5001 @@\n");
    for (int i = 0; i < 5000; i++)
        ggi_buf_puts(&b, " a\n");
    ggi_buf_puts(&b, "-b\n+c\n");
    ggi_buf same = GGI_BUF_INIT;
    for (int i = 0; i < 40000; i++)
        ggi_buf_puts(&same, "a\n");
    put(dir, "same.txt", same.data, 0644);
    ggi_buf_free(&same);
    CHECK_RC(apply_s(b.data, NULL, NULL, &findings), GG_EINVAL);
    CHECK_CONTAINS(first_msg(findings), "the search for its lines was too long");
    cJSON_Delete(findings);
    ggi_buf_free(&b);

    /* Copies of one large file add up past the cap of all files touched. */
    fresh();
    {
        ggi_buf one = GGI_BUF_INIT;
        for (int i = 0; i < (1 << 20) / 16; i++)
            ggi_buf_puts(&one, "0123456789abcde\n");
        put(dir, "one.txt", one.data, 0644);
        ggi_buf_free(&one);
    }
    for (int i = 0; i < 100; i++)
        ggi_buf_printf(&b, "diff --git a/one.txt b/c%d.txt\ncopy from one.txt\ncopy to c%d.txt\n",
                       i, i);
    CHECK_RC(apply_s(b.data, NULL, NULL, &findings), GG_ETOOBIG);
    CHECK_CONTAINS(first_msg(findings), "the files the answer writes hold more than");
    cJSON_Delete(findings);
    CHECK(!exists(dir, "c0.txt"));
    ggi_buf_free(&b);

    /* A file that would grow over its cap: nothing written. */
    fresh();
    char path[700];
    snprintf(path, sizeof path, "%s/big.txt", dir);
    FILE *f = fopen(path, "wb");
    static char line[1024];
    memset(line, 'y', sizeof line - 1);
    line[sizeof line - 1] = '\n';
    for (unsigned i = 0; i < GGI_PATCH_MAX_FILE_BYTES / sizeof line - 1; i++)
        fwrite(line, 1, sizeof line, f);
    fputs("end\n", f);
    fclose(f);
    ggi_buf_puts(&b, "--- a/big.txt\n+++ b/big.txt\n@@ -1 +1,3 @@\n end\n");
    for (int i = 0; i < 4; i++) {
        ggi_buf_puts(&b, "+");
        ggi_buf_append(&b, line, sizeof line);
    }
    CHECK_RC(apply_s(b.data, NULL, NULL, &findings), GG_ETOOBIG);
    CHECK_CONTAINS(first_msg(findings), "big.txt");
    cJSON_Delete(findings);
    ggi_buf_free(&b);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (size_t)st.st_size < GGI_PATCH_MAX_FILE_BYTES);
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/gg-test-patch-XXXXXX");
    if (!test_make_dir(root))
        return 1;
    snprintf(dir, sizeof dir, "%s/copy", root);
    snprintf(out, sizeof out, "%s/outside", root);
    test_git_diff();
    test_fences_and_prose();
    test_crlf_answer();
    test_counts_and_offsets();
    test_model_mistakes();
    test_no_newline();
    test_new_delete_rename();
    test_hunk_fails();
    test_not_a_diff();
    test_whole_files();
    test_hostile_paths();
    test_symlinks();
    test_hard_link();
    test_filesystem_faults();
    test_caps();
    test_remove_dir(root);
    return test_exit();
}
