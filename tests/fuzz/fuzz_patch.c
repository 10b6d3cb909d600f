/*
 * fuzz_patch.c - libFuzzer target for applying generators' answers (ggi_patch_apply): any
 * bytes, applied to a scratch copy that holds files, a directory link and a file link
 * pointing outside it, must give a result or findings, never a crash, a leak or undefined
 * behaviour, and must never write outside the copy: the file outside keeps its content and
 * nothing appears beside it. An answer that applies must also round trip: the diff of what
 * it changed (ggi_patch_diff), applied to a second fresh copy, gives the same files with
 * the same exec bits. The copies are made again after an answer that changed them.
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

static char root[64], copy[96], again[96], pristine[96], outside[96], sentinel[128];
static const char SENTINEL[] = "outside: must never change\n";

static void put(const char *dir, const char *rel, const char *content)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
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

static void make_tree(const char *dir)
{
    remove_tree(dir);
    if (mkdir(dir, 0755) != 0)
        abort();
    char path[256];
    put(dir, "a.txt", "one\ntwo\nthree\n");
    put(dir, "b.c", "int main(void)\n{\n    return 0;\n}\n");
    put(dir, "run.sh", "#!/bin/sh\necho run");
    snprintf(path, sizeof path, "%s/run.sh", dir);
    chmod(path, 0755);
    snprintf(path, sizeof path, "%s/src", dir);
    mkdir(path, 0755);
    put(dir, "src/m.py", "def f():\n    return 1\n");
    snprintf(path, sizeof path, "%s/out", dir);
    if (symlink(outside, path) != 0)
        abort();
    snprintf(path, sizeof path, "%s/secret.txt", dir);
    if (symlink(sentinel, path) != 0)
        abort();
}

static void make_copy(void)
{
    make_tree(copy);
    make_tree(again);
}

static void setup(void)
{
    snprintf(root, sizeof root, "/tmp/gg-fuzz-patch-XXXXXX");
    if (!mkdtemp(root))
        abort();
    snprintf(copy, sizeof copy, "%s/copy", root);
    snprintf(again, sizeof again, "%s/again", root);
    snprintf(pristine, sizeof pristine, "%s/pristine", root);
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
    make_tree(pristine);
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
    if (strcmp(buf, SENTINEL) != 0 || entries(outside) != 1 || entries(root) != 4)
        __builtin_trap(); /* something was written outside the copy */
}

/* Reads dir/rel whole (malloc'd; *len) and whether it is executable; NULL when absent. */
static char *slurp(const char *dir, const char *rel, size_t *len, int *exec)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return NULL;
    *exec = (st.st_mode & 0100) != 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *b = malloc((size_t)st.st_size + 1);
    *len = b ? fread(b, 1, (size_t)st.st_size, f) : 0;
    fclose(f);
    return b;
}

/* The round trip: the diff of what the answer changed, applied to a fresh copy, gives the
 * same files. */
static void round_trip(const cJSON *changed)
{
    char *diff = NULL;
    if (ggi_patch_diff(pristine, copy, changed, &diff) != GG_OK)
        __builtin_trap();
    cJSON *findings = NULL;
    if (diff[0] && ggi_patch_apply(again, diff, strlen(diff), NULL, NULL, &findings) != GG_OK)
        __builtin_trap(); /* our own diff does not apply */
    const cJSON *it;
    cJSON_ArrayForEach(it, changed) {
        size_t la = 0, lb = 0;
        int xa = 0, xb = 0;
        char *a = slurp(copy, it->valuestring, &la, &xa);
        char *b = slurp(again, it->valuestring, &lb, &xb);
        if (!a != !b || (a && (la != lb || xa != xb || memcmp(a, b, la) != 0)))
            __builtin_trap(); /* the diff does not give the answer's result */
        free(a);
        free(b);
    }
    cJSON_Delete(findings);
    free(diff);
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
    if (rc == 0)
        round_trip(changed);
    if (rc == 0 || rc == GG_EIO)
        make_copy();
    cJSON_Delete(changed);
    cJSON_Delete(findings);
    return 0;
}
