/*
 * test_workdir.c - the request field "workdir" of the process backend, once per isolation
 * level (argv[1]: none, rlimits, namespaces): a job runs in a directory the caller prepared
 * (an attempt's copy of a workspace base, lib/workspace), what it writes is there on the host
 * after, the request's files replace what is there (never writing into a hard-linked base
 * file), the directory is not removed; in the namespace sandbox a job cannot write into the
 * base's files (root's, 0444) that the copy links to; bad workdir values are refused. An
 * "overlay" workdir (root only): the job writes into a base file in place and deletes one
 * through the merged view, which lands in the upper directory while the base stays as it
 * was; the lower directory's real path cannot be written from the job; the request's files
 * are written through the overlay; nothing stays mounted on the host; bad overlay values are
 * refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gryphgen.h>

#include "core/ggi.h"
#include "execution/overlay.h"
#include "execution/sandbox.h"
#include "testutil.h"
#include "common/testfiles.h"
#include "workspace/workspace.h"

static char tmp[] = "/tmp/gg-test-workdir-XXXXXX";
static gg_executor_t *ex;
static const char *level = "rlimits";
static char base[100], outside[100];

/* Runs request text: the result object (caller deletes) or NULL with *rc set. */
static cJSON *run(const char *req, int *rc)
{
    char *out = NULL;
    *rc = gg_executor_run(ex, req, &out);
    if (*rc)
        return NULL;
    cJSON *r = cJSON_Parse(out);
    gg_free(out);
    return r;
}

static const char *field(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static int exit_code(const cJSON *o)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "exit_code");
    return cJSON_IsNumber(v) ? v->valueint : -12345;
}

static int make_base(void)
{
    snprintf(base, sizeof base, "%s/base", tmp);
    snprintf(outside, sizeof outside, "%s/outside", tmp);
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "set -e; mkdir -p %s/src %s; printf 'base\\n' > %s/base.txt; "
             "printf 'old\\n' > %s/src/replace.txt; ln -s %s %s/out; "
             "chmod 444 %s/base.txt %s/src/replace.txt; chmod 555 %s/src %s",
             base, outside, base, base, outside, base, base, base, base, base);
    return system(cmd) == 0 ? 0 : -1;
}

static void job_in_copy(void)
{
    char copy[700], req[4096];
    snprintf(copy, sizeof copy, "%s/copy1", tmp);
    CHECK_RC(ggi_ws_copy(base, copy, GGI_WS_COPY_LINK), GG_OK);
    snprintf(req, sizeof req,
             "{\"argv\": [\"/bin/sh\", \"-c\", \"pwd; cat base.txt src/replace.txt given.txt; "
             "echo made > made.txt; mkdir -p new/dir && echo deep > new/dir/f\"], "
             "\"workdir\": \"%s\", \"files\": [{\"path\": \"given.txt\", \"content\": \"g\\n\"}, "
             "{\"path\": \"src/replace.txt\", \"content\": \"new\\n\"}]}",
             copy);
    int rc;
    cJSON *r = run(req, &rc);
    CHECK_RC(rc, 0);
    if (r) {
        CHECK(exit_code(r) == 0);
        CHECK_CONTAINS(field(r, "stdout"), "base\nnew\ng\n");
        CHECK_CONTAINS(field(r, "stdout"), "copy1");
        if (exit_code(r) != 0)
            fprintf(stderr, "stderr: %s\n", field(r, "stderr"));
    }
    cJSON_Delete(r);
    /* The host sees what the job wrote; the directory stays. */
    CHECK_FILE(copy, "made.txt", "made\n");
    CHECK_FILE(copy, "new/dir/f", "deep\n");
    CHECK_FILE(copy, "src/replace.txt", "new\n");
    /* The base file the copy linked to was replaced in the copy, not written into. */
    CHECK_FILE(base, "src/replace.txt", "old\n");
    CHECK_RC(ggi_ws_remove(copy), GG_OK);
}

static void base_protected(void)
{
    /* Only the sandbox runs jobs as a uid that cannot write the base's files (root owns
     * them); elsewhere the caller copies with GGI_WS_COPY_FULL. */
    if (strcmp(level, "namespaces") != 0 || geteuid() != 0)
        return;
    char copy[700], req[2048];
    snprintf(copy, sizeof copy, "%s/copy2", tmp);
    CHECK_RC(ggi_ws_copy(base, copy, GGI_WS_COPY_LINK), GG_OK);
    snprintf(req, sizeof req,
             "{\"argv\": [\"/bin/sh\", \"-c\", \"echo evil >> base.txt; echo rc=$?; "
             "chmod 666 base.txt; echo chmod=$?\"], \"workdir\": \"%s\"}", copy);
    int rc;
    cJSON *r = run(req, &rc);
    CHECK_RC(rc, 0);
    if (r) {
        CHECK_CONTAINS(field(r, "stderr"), "Permission denied");
        CHECK_CONTAINS(field(r, "stdout"), "rc=");
        CHECK(!strstr(field(r, "stdout"), "rc=0"));
        CHECK_CONTAINS(field(r, "stdout"), "chmod=");
        CHECK(!strstr(field(r, "stdout"), "chmod=0"));
    }
    cJSON_Delete(r);
    CHECK_FILE(base, "base.txt", "base\n");
    struct stat st;
    CHECK(stat(base, &st) == 0);
    char p[800];
    snprintf(p, sizeof p, "%s/base.txt", base);
    CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0444);
    CHECK_RC(ggi_ws_remove(copy), GG_OK);
}

static void files_not_through_links(void)
{
    char copy[700], req[2048];
    snprintf(copy, sizeof copy, "%s/copy3", tmp);
    CHECK_RC(ggi_ws_copy(base, copy, GGI_WS_COPY_FULL), GG_OK);
    snprintf(req, sizeof req,
             "{\"argv\": [\"/bin/true\"], \"workdir\": \"%s\", "
             "\"files\": [{\"path\": \"out/evil\", \"content\": \"x\"}]}", copy);
    int rc;
    cJSON *r = run(req, &rc);
    CHECK(rc != 0);
    cJSON_Delete(r);
    char p[800];
    snprintf(p, sizeof p, "%s/evil", outside);
    CHECK(access(p, F_OK) != 0);
    CHECK_RC(ggi_ws_remove(copy), GG_OK);
}

static void bad_workdirs(void)
{
    char file[700], link[700], req[2048];
    snprintf(file, sizeof file, "%s/afile", tmp);
    snprintf(link, sizeof link, "%s/alink", tmp);
    FILE *f = fopen(file, "w");
    if (f)
        fclose(f);
    CHECK(symlink(base, link) == 0);
    const char *values[][2] = {
        {"\"relative/dir\"", "absolute"},
        {"\"/\"", "'/'"},
        {"\"/nonexistent/gg/dir\"", "No such file"},
        {file, "not a directory"},
        {link, "symbolic link"},
        {"3", "'workdir'"},
    };
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        const char *v = values[i][0];
        if (v[0] == '/')
            snprintf(req, sizeof req, "{\"argv\": [\"/bin/true\"], \"workdir\": \"%s\"}", v);
        else
            snprintf(req, sizeof req, "{\"argv\": [\"/bin/true\"], \"workdir\": %s}", v);
        int rc;
        cJSON *r = run(req, &rc);
        CHECK_RC(rc, GG_EINVAL);
        CHECK_CONTAINS(gg_error_last(), "workdir");
        CHECK_CONTAINS(gg_error_last(), values[i][1]);
        cJSON_Delete(r);
    }
}

static void overlay_workdir(void)
{
    char copy[200], req[4096], p[400];
    snprintf(copy, sizeof copy, "%s/ovl", tmp);
    const char *why = NULL;
    if (geteuid() != 0 || !ggi_overlay_probe(tmp, &why)) {
        printf("note: no overlay here (%s); the overlay workdir is not checked\n",
               why ? why : "not root");
        return;
    }
    /* The lower layer a job may write (as an attempt's is): the base given to the job. */
    char lower[200];
    snprintf(lower, sizeof lower, "%s/lower", tmp);
    CHECK_RC(ggi_ws_copy_owned(base, lower, GGI_WS_COPY_FULL, GGI_SANDBOX_UID, GGI_SANDBOX_GID),
             GG_OK);
    CHECK_RC(ggi_ws_copy(lower, copy, GGI_WS_COPY_OVERLAY), GG_OK);
    CHECK(chown(copy, 0, 0) == 0);
    char up[300];
    snprintf(up, sizeof up, "%s/upper", copy);
    CHECK(chown(up, GGI_SANDBOX_UID, GGI_SANDBOX_GID) == 0);
    snprintf(p, sizeof p, "%s/merged", copy);
    CHECK(chown(p, GGI_SANDBOX_UID, GGI_SANDBOX_GID) == 0);
    snprintf(req, sizeof req,
             "{\"argv\": [\"/bin/sh\", \"-c\", \"echo more >> base.txt && rm src/replace.txt && "
             "cat given.txt && if echo x > %s/base.txt 2>/dev/null; then echo LOWER-WRITTEN; "
             "fi; echo done\"], \"workdir\": \"%s/merged\", \"overlay\": {\"lower\": \"%s\", "
             "\"upper\": \"%s/upper\", \"work\": \"%s/work\"}, "
             "\"files\": [{\"path\": \"given.txt\", \"content\": \"g\\n\"}]}",
             lower, copy, lower, copy, copy);
    int rc;
    cJSON *r = run(req, &rc);
    CHECK_RC(rc, GG_OK);
    CHECK(exit_code(r) == 0);
    CHECK_CONTAINS(field(r, "stdout"), "g\ndone");
    CHECK(!strstr(field(r, "stdout"), "LOWER-WRITTEN"));
    cJSON_Delete(r);
    /* On the host: the upper directory holds what the job did; base and lower as they were;
     * the mount point is an empty directory (the mount lived in the job's namespace). */
    CHECK_FILE(up, "base.txt", "base\nmore\n");
    struct stat st;
    snprintf(p, sizeof p, "%s/src/replace.txt", up);
    CHECK(lstat(p, &st) == 0 && S_ISCHR(st.st_mode)); /* a whiteout */
    CHECK_FILE(up, "given.txt", "g\n");
    CHECK_FILE(lower, "base.txt", "base\n");
    CHECK_FILE(base, "src/replace.txt", "old\n");
    snprintf(p, sizeof p, "%s/merged/base.txt", copy);
    CHECK(access(p, F_OK) != 0);
    /* Bad overlay values. */
    const char *bad[][2] = {
        {"\"overlay\": {\"lower\": \"%s\", \"upper\": \"%s/upper\", \"work\": \"%s/work\"}",
         "needs a 'workdir'"},
        {"\"workdir\": \"%s\", \"overlay\": 5", "must be an object"},
        {"\"workdir\": \"%s\", \"overlay\": {\"lower\": \"rel\", \"upper\": \"/\", \"work\": \"/\"}",
         "'overlay.lower' must be an absolute path"},
        {"\"workdir\": \"%s\", \"overlay\": {\"upper\": \"/tmp\", \"work\": \"/tmp\"}",
         "lower"},
        {"\"workdir\": \"%s\", \"overlay\": {\"lower\": \"/nonexistent/gg\", \"upper\": \"/tmp\", "
         "\"work\": \"/tmp\"}", "'overlay.lower'"},
        {"\"workdir\": \"%s\", \"overlay\": {\"lower\": \"/tmp\", \"upper\": \"/tmp\", "
         "\"work\": \"/tmp\", \"extra\": \"/tmp\"}", "'overlay.extra' is unknown"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char fields[1024];
        snprintf(fields, sizeof fields, bad[i][0], i == 0 ? lower : copy, copy, copy);
        snprintf(req, sizeof req, "{\"argv\": [\"/bin/true\"], %s}", fields);
        r = run(req, &rc);
        CHECK_RC(rc, GG_EINVAL);
        CHECK_CONTAINS(gg_error_last(), bad[i][1]);
        cJSON_Delete(r);
    }
    CHECK_RC(ggi_ws_remove(copy), GG_OK);
    CHECK_RC(ggi_ws_remove(lower), GG_OK);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        level = argv[1];
    if (!strcmp(level, "namespaces")) {
        if (!ggi_sandbox_probe()->namespaces) {
            printf("SKIP: no namespace sandbox here: %s\n", ggi_sandbox_probe()->namespaces_why);
            return 77;
        }
        setenv("GRYPHGEN_ZYGOTE", "0", 1);
    }
    if (!test_make_dir(tmp))
        return 1;
    gg_executor_options o;
    gg_executor_options_init(&o, GG_EXECUTOR_OPTIONS_VERSION);
    o.isolation = level;
    o.min_isolation = level;
    o.default_timeout_s = 120;
    if (gg_executor_new(&ex, &o) != 0) {
        fprintf(stderr, "gg_executor_new: %s\n", gg_error_last());
        return 1;
    }
    CHECK(make_base() == 0);
    job_in_copy();
    base_protected();
    files_not_through_links();
    bad_workdirs();
    overlay_workdir();
    gg_executor_destroy(&ex);
    CHECK_RC(ggi_ws_remove(tmp), GG_OK);
    return test_exit();
}
