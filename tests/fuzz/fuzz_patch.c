/*
 * fuzz_patch.c - libFuzzer target for applying generators' answers (ggi_patch_apply): any
 * bytes, applied to a scratch copy that holds files, a directory link and a file link
 * pointing outside it, must give a result or findings, never a crash, a leak or undefined
 * behaviour, and must never write outside the copy: the file outside keeps its content and
 * nothing appears beside it. The copy is made again after an answer that changed it.
 */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "workspace/patch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char root[64], copy[96], outside[96], sentinel[128];
static const char SENTINEL[] = "outside: must never change\n";

static void put(const char *rel, const char *content)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", copy, rel);
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    fputs(content, f);
    fclose(f);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        chmod(path, 0700), rmdir(path);
    else
        unlink(path);
    return 0;
}

static void remove_tree(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void cleanup(void)
{
    remove_tree(root);
}

static void make_copy(void)
{
    remove_tree(copy);
    if (mkdir(copy, 0755) != 0)
        abort();
    char path[256];
    put("a.txt", "one\ntwo\nthree\n");
    put("b.c", "int main(void)\n{\n    return 0;\n}\n");
    snprintf(path, sizeof path, "%s/src", copy);
    mkdir(path, 0755);
    put("src/m.py", "def f():\n    return 1\n");
    snprintf(path, sizeof path, "%s/out", copy);
    if (symlink(outside, path) != 0)
        abort();
    snprintf(path, sizeof path, "%s/secret.txt", copy);
    if (symlink(sentinel, path) != 0)
        abort();
}

static void setup(void)
{
    snprintf(root, sizeof root, "/tmp/gg-fuzz-patch-XXXXXX");
    if (!mkdtemp(root))
        abort();
    snprintf(copy, sizeof copy, "%s/copy", root);
    snprintf(outside, sizeof outside, "%s/outside", root);
    snprintf(sentinel, sizeof sentinel, "%s/sentinel.txt", outside);
    if (mkdir(outside, 0755) != 0)
        abort();
    FILE *f = fopen(sentinel, "wb");
    if (!f)
        abort();
    fputs(SENTINEL, f);
    fclose(f);
    make_copy();
    atexit(cleanup);
}

/* The number of entries in dir besides . and .. */
static int entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static void check_outside(void)
{
    char buf[128];
    FILE *f = fopen(sentinel, "rb");
    if (!f)
        __builtin_trap();
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    if (strcmp(buf, SENTINEL) != 0 || entries(outside) != 1 || entries(root) != 2)
        __builtin_trap(); /* something was written outside the copy */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        setup();
        ready = 1;
    }
    int kind = 0;
    cJSON *changed = NULL, *findings = NULL;
    int rc = ggi_patch_apply(copy, (const char *)data, size, &kind, &changed, &findings);
    if (rc == 0 && findings)
        __builtin_trap();
    if (rc != 0 && (!findings || cJSON_GetArraySize(findings) < 1 || changed))
        __builtin_trap();
    check_outside();
    if (rc == 0 || rc == GG_EIO)
        make_copy();
    cJSON_Delete(changed);
    cJSON_Delete(findings);
    return 0;
}
