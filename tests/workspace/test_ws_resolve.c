/*
 * test_ws_resolve.c - ggi_ws_resolve on repositories the test makes with the git command
 * (branch, annotated tag, short id, HEAD, missing ref, missing repository, a directory that
 * is not one, a file:// URL), on directories (symbolic links kept as links, ".git" skipped,
 * special files refused, the same content giving the same commit anywhere) and on inline
 * files. The packs are read back by the git command (index-pack), the independent client.
 */
#include <fcntl.h>
#include <unistd.h>

#include "wstest.h"
#include "workspace/ws_internal.h"

static char tmp[] = "/tmp/gg_ws_resolve_XXXXXX";
static char *head, *feature, *tag_commit;

static int make_repo(void)
{
    int rc = sh("set -e; cd %s; git init -q -b main repo; cd repo; "
                "printf 'hello\\n' > a.txt; mkdir -p src; printf 'print(1)\\n' > src/m.py; "
                "printf '#!/bin/sh\\n' > run.sh; chmod +x run.sh; ln -s a.txt link; "
                "git add -A; git commit -q -m one; git tag -a v1 -m tag1; "
                "git checkout -q -b feature; printf 'two\\n' > b.txt; git add -A; "
                "git commit -q -m two; git checkout -q main", tmp);
    if (rc != 0)
        return -1;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "git -C %s/repo rev-parse main", tmp);
    head = sh_out(cmd);
    snprintf(cmd, sizeof cmd, "git -C %s/repo rev-parse feature", tmp);
    feature = sh_out(cmd);
    snprintf(cmd, sizeof cmd, "git -C %s/repo rev-parse 'v1^{commit}'", tmp);
    tag_commit = sh_out(cmd);
    return head && feature && tag_commit && strlen(head) == 40 ? 0 : -1;
}

/* Resolves text; the commit (malloc'd) on success, NULL after checking the failure. */
static char *resolve(const char *text, int want, const char *needle, int want_pack)
{
    cJSON *ws = js(text), *out = NULL;
    int rc = ggi_ws_resolve(ws, &out);
    if (rc != want)
        fprintf(stderr, "for %s\n", text);
    CHECK_RC(rc, want);
    char *commit = NULL;
    if (rc == GG_OK && out) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(out, "commit");
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(out, "pack");
        CHECK(cJSON_IsString(c));
        CHECK(want_pack ? cJSON_IsString(p) : p == NULL);
        CHECK_RC(ggi_ws_check(out), GG_OK);
        if (cJSON_IsString(c))
            commit = strdup(c->valuestring);
    } else if (needle) {
        CHECK_CONTAINS(gg_error_last(), needle);
        CHECK(out == NULL);
    }
    cJSON_Delete(out);
    cJSON_Delete(ws);
    return commit;
}

/* Indexes the pack of a resolved workspace into a new bare repository at dest with the git
 * command; 0 when git took it. */
static int index_pack(const char *text, const char *dest)
{
    cJSON *ws = js(text), *out = NULL;
    int rc = ggi_ws_resolve(ws, &out);
    cJSON_Delete(ws);
    if (rc != GG_OK)
        return -1;
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(out, "pack");
    unsigned char *data = NULL;
    size_t n = 0;
    rc = cJSON_IsString(p) ? ggi_ws_b64_decode(p->valuestring, strlen(p->valuestring), &data, &n)
                           : -1;
    cJSON_Delete(out);
    if (rc != GG_OK)
        return -1;
    char path[600];
    snprintf(path, sizeof path, "%s/pack.bin", tmp);
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, n, f);
    fclose(f);
    free(data);
    return sh("git init -q --bare %s && git -C %s index-pack --stdin < %s > /dev/null", dest, dest,
              path);
}

static void repos(void)
{
    char text[1024];
    snprintf(text, sizeof text, "{\"repo\": \"%s/repo\"}", tmp);
    char *c = resolve(text, GG_OK, NULL, 1);
    CHECK_STR(c, head);
    free(c);
    snprintf(text, sizeof text, "{\"repo\": \"%s/repo\", \"ref\": \"feature\"}", tmp);
    c = resolve(text, GG_OK, NULL, 1);
    CHECK_STR(c, feature);
    free(c);
    snprintf(text, sizeof text, "{\"repo\": \"%s/repo\", \"ref\": \"v1\"}", tmp);
    c = resolve(text, GG_OK, NULL, 1);
    CHECK_STR(c, tag_commit); /* peeled: the commit, not the tag object */
    free(c);
    snprintf(text, sizeof text, "{\"repo\": \"%s/repo\", \"ref\": \"%.8s\"}", tmp, feature);
    c = resolve(text, GG_OK, NULL, 1);
    CHECK_STR(c, feature);
    free(c);
    snprintf(text, sizeof text, "{\"repo\": \"%s/repo\", \"ref\": \"feature~1\"}", tmp);
    c = resolve(text, GG_OK, NULL, 1);
    CHECK_STR(c, head);
    free(c);

    snprintf(text, sizeof text, "{\"repo\": \"%s/repo\", \"ref\": \"nope\"}", tmp);
    resolve(text, GG_ENOTFOUND, "field 'workspace.ref': no commit 'nope'", 0);
    snprintf(text, sizeof text, "{\"repo\": \"%s/repo\", \"ref\": \"HEAD:a.txt\"}", tmp);
    resolve(text, GG_ENOTFOUND, "not a commit", 0);
    snprintf(text, sizeof text, "{\"repo\": \"%s/missing\"}", tmp);
    resolve(text, GG_ENOTFOUND, "field 'workspace.repo': no git repository", 0);
    snprintf(text, sizeof text, "{\"repo\": \"%s/plain\"}", tmp);
    sh("mkdir -p %s/plain", tmp);
    resolve(text, GG_ENOTFOUND, "field 'workspace.repo': no git repository", 0);
    /* Inside a repository is not a repository (no search upwards). */
    snprintf(text, sizeof text, "{\"repo\": \"%s/repo/src\"}", tmp);
    resolve(text, GG_ENOTFOUND, "'workspace.repo'", 0);

    /* The pack holds the commit and its tree; git reads it. */
    char dest[600], cmd[900];
    snprintf(text, sizeof text, "{\"repo\": \"%s/repo\", \"ref\": \"feature\"}", tmp);
    snprintf(dest, sizeof dest, "%s/check1.git", tmp);
    CHECK(index_pack(text, dest) == 0);
    snprintf(cmd, sizeof cmd, "git -C %s rev-parse %s^{tree}", dest, feature);
    char *t1 = sh_out(cmd);
    snprintf(cmd, sizeof cmd, "git -C %s/repo rev-parse feature^{tree}", tmp);
    char *t2 = sh_out(cmd);
    CHECK(t1 && strlen(t1) == 40);
    CHECK_STR(t1, t2);
    CHECK(sh("git -C %s ls-tree -r %s | grep -q '^120000 blob .*\tlink$'", dest, feature) == 0);
    CHECK(sh("git -C %s ls-tree -r %s | grep -q '^100755 blob .*\trun.sh$'", dest, feature) == 0);
    free(t1);
    free(t2);
}

static void urls(void)
{
    char text[1024];
    snprintf(text, sizeof text, "{\"repo\": \"file://%s/repo\"}", tmp);
    char *c = resolve(text, GG_OK, NULL, 0);
    CHECK_STR(c, head);
    free(c);
    snprintf(text, sizeof text, "{\"repo\": \"file://%s/repo\", \"ref\": \"feature\"}", tmp);
    c = resolve(text, GG_OK, NULL, 0);
    CHECK_STR(c, feature);
    free(c);
    snprintf(text, sizeof text, "{\"repo\": \"file://%s/repo\", \"ref\": \"v1\"}", tmp);
    c = resolve(text, GG_OK, NULL, 0);
    CHECK_STR(c, tag_commit);
    free(c);
    snprintf(text, sizeof text, "{\"repo\": \"file://%s/repo\", \"ref\": \"%s\"}", tmp, feature);
    c = resolve(text, GG_OK, NULL, 0);
    CHECK_STR(c, feature);
    free(c);
    snprintf(text, sizeof text, "{\"repo\": \"file://%s/repo\", \"ref\": \"nope\"}", tmp);
    resolve(text, GG_ENOTFOUND, "field 'workspace.ref'", 0);
    snprintf(text, sizeof text, "{\"repo\": \"file://%s/missing\"}", tmp);
    resolve(text, GG_ENOTFOUND, "field 'workspace.repo'", 0);
}

static void dirs(void)
{
    CHECK(sh("set -e; cd %s; mkdir -p outside d/sub/deeper d/empty d/.git; "
             "printf secret > outside/s.txt; printf 'x\\n' > d/a.txt; printf 'y' > d/sub/b.txt; "
             "printf z > d/sub/deeper/c; printf '#!/bin/sh\\n' > d/run.sh; chmod 755 d/run.sh; "
             "ln -s a.txt d/inlink; ln -s ../outside d/outlink; ln -s /etc/passwd d/abslink; "
             "printf junk > d/.git/config", tmp) == 0);
    char text[1024];
    snprintf(text, sizeof text, "{\"dir\": \"%s/d\"}", tmp);
    char *c1 = resolve(text, GG_OK, NULL, 1);
    char *c2 = resolve(text, GG_OK, NULL, 1);
    CHECK(c1 && strlen(c1) == 40);
    CHECK_STR(c1, c2);
    /* The same content elsewhere, with other times: the same commit. */
    CHECK(sh("cp -r %s/d %s/d2 && touch -d 2001-01-01 %s/d2/a.txt", tmp, tmp, tmp) == 0);
    snprintf(text, sizeof text, "{\"dir\": \"%s/d2\"}", tmp);
    char *c3 = resolve(text, GG_OK, NULL, 1);
    CHECK_STR(c1, c3);
    /* A change makes another commit. */
    CHECK(sh("printf changed > %s/d2/a.txt", tmp) == 0);
    char *c4 = resolve(text, GG_OK, NULL, 1);
    CHECK(c4 && c1 && strcmp(c1, c4) != 0);

    /* Git reads the pack: links are links (mode 120000) and nothing of outside/ came in. */
    char dest[600];
    snprintf(text, sizeof text, "{\"dir\": \"%s/d\"}", tmp);
    snprintf(dest, sizeof dest, "%s/check2.git", tmp);
    CHECK(index_pack(text, dest) == 0);
    CHECK(sh("git -C %s ls-tree -r %s > %s/ls.txt", dest, c1, tmp) == 0);
    char path[600];
    snprintf(path, sizeof path, "%s/ls.txt", tmp);
    char *ls = read_file(path);
    CHECK_CONTAINS(ls, "120000 blob");
    CHECK_CONTAINS(ls, "\toutlink\n");
    CHECK_CONTAINS(ls, "\tabslink\n");
    CHECK_CONTAINS(ls, "100755 blob");
    CHECK_CONTAINS(ls, "\tsub/deeper/c\n");
    CHECK(ls && !strstr(ls, "s.txt") && !strstr(ls, ".git") && !strstr(ls, "empty"));
    free(ls);
    CHECK(sh("test \"$(git -C %s cat-file -p %s:outlink)\" = ../outside", dest, c1) == 0);
    CHECK(sh("git -C %s cat-file -p %s | grep -q '^author gryphgen <gryphgen@localhost> 0 "
             "+0000$'", dest, c1) == 0);

    /* Inline files with the same content as a directory of plain files: the same commit. */
    CHECK(sh("mkdir -p %s/d3/src && printf hi > %s/d3/x.txt && printf 'p' > %s/d3/src/m.py",
             tmp, tmp, tmp) == 0);
    snprintf(text, sizeof text, "{\"dir\": \"%s/d3\"}", tmp);
    char *c5 = resolve(text, GG_OK, NULL, 1);
    char *c6 = resolve("{\"files\": {\"x.txt\": \"hi\", \"src/m.py\": \"p\"}}", GG_OK, NULL, 0);
    CHECK(c5 && strlen(c5) == 40);
    CHECK_STR(c5, c6);

    /* A fifo is refused, named. */
    CHECK(sh("mkdir -p %s/d4 && mkfifo %s/d4/pipe && printf x > %s/d4/x", tmp, tmp, tmp) == 0);
    snprintf(text, sizeof text, "{\"dir\": \"%s/d4\"}", tmp);
    resolve(text, GG_EINVAL, "'pipe' is a fifo", 0);
    snprintf(text, sizeof text, "{\"dir\": \"%s/nodir\"}", tmp);
    resolve(text, GG_ENOTFOUND, "field 'workspace.dir'", 0);
    snprintf(text, sizeof text, "{\"dir\": \"%s/d/a.txt\"}", tmp);
    resolve(text, GG_ENOTFOUND, "field 'workspace.dir'", 0);

    /* A file over the cap (sparse: no disk used). */
    CHECK(sh("mkdir -p %s/d5 && truncate -s %u %s/d5/big", tmp, GGI_WS_MAX_FILE_BYTES + 1,
             tmp) == 0);
    snprintf(text, sizeof text, "{\"dir\": \"%s/d5\"}", tmp);
    resolve(text, GG_ETOOBIG, "'big' is", 0);
    free(c1);
    free(c2);
    free(c3);
    free(c4);
    free(c5);
    free(c6);
}

/* A repository whose base packs over the cap (13 MB that do not compress): GG_ETOOBIG
 * naming the pack; resolved without a pack it is fine. */
static void big_pack(void)
{
    CHECK(sh("set -e; cd %s; git init -q -b main big; cd big; "
             "head -c 13000000 /dev/urandom > blob.bin; git add -A; git commit -q -m big",
             tmp) == 0);
    char text[1024];
    snprintf(text, sizeof text, "{\"repo\": \"%s/big\"}", tmp);
    resolve(text, GG_ETOOBIG, "field 'workspace.pack'", 0);
    cJSON *ws = js(text), *out = NULL;
    CHECK_RC(ggi_ws_resolve_ex(ws, GGI_WS_RESOLVE_NO_PACK, &out), GG_OK);
    CHECK(out && cJSON_GetObjectItemCaseSensitive(out, "commit") &&
          !cJSON_GetObjectItemCaseSensitive(out, "pack"));
    cJSON_Delete(out);
    cJSON_Delete(ws);
}

static void resolved_stays(void)
{
    const char *text = "{\"repo\": \"/nowhere\", \"commit\": "
                       "\"0123456789abcdef0123456789abcdef01234567\"}";
    char *c = resolve(text, GG_OK, NULL, 0);
    CHECK_STR(c, "0123456789abcdef0123456789abcdef01234567");
    free(c);
    resolve("{\"files\": {\"../x\": \"\"}}", GG_EINVAL, "leaves the workspace", 0);
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
    repos();
    urls();
    dirs();
    big_pack();
    resolved_stays();
    free(head);
    free(feature);
    free(tag_commit);
    test_remove_dir(tmp);
    return test_exit();
}
