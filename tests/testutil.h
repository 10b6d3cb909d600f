/*
 * testutil.h - the few macros the C tests share. A failed CHECK prints where and why and
 * marks the test failed; the test's main returns test_exit(), which meson reads.
 * Exit code 77 means skipped (meson's convention).
 *
 * Tests synchronise on observable state (a file, a row, a counter, a process), never on
 * sleeping for a while: the machine running them may be slow and loaded. TEST_DEADLINE_MS
 * only guards against a hang; test_wait_for() polls a condition until it holds or the
 * deadline passes, test_process_gone() waits for a process to end, for the tests that check
 * nothing a job started outlives it, and test_count_descendants() counts the running
 * descendants of this process with a given command name (how a test sees that a job has
 * started). test_make_dir() and test_remove_dir() make and remove a test's scratch directory.
 */
#ifndef GG_TESTUTIL_H
#define GG_TESTUTIL_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How long a test waits for something that must happen before it calls it a hang. */
#define TEST_DEADLINE_MS 120000.0

static int test_failures;
static int test_checks;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        test_checks++;                                                                 \
        if (!(cond)) {                                                                 \
            test_failures++;                                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
        }                                                                              \
    } while (0)

/* Checks a status code, printing the library's last error when it differs. */
#define CHECK_RC(expr, want)                                                           \
    do {                                                                               \
        int rc_ = (expr);                                                              \
        test_checks++;                                                                 \
        if (rc_ != (want)) {                                                           \
            test_failures++;                                                           \
            fprintf(stderr, "%s:%d: %s returned %d, wanted %d (last error: %s)\n",     \
                    __FILE__, __LINE__, #expr, rc_, (int)(want), gg_error_last());     \
        }                                                                              \
    } while (0)

#define CHECK_STR(a, b)                                                                \
    do {                                                                               \
        const char *a_ = (a), *b_ = (b);                                               \
        test_checks++;                                                                 \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                       \
            test_failures++;                                                           \
            fprintf(stderr, "%s:%d: '%s' != '%s'\n", __FILE__, __LINE__,               \
                    a_ ? a_ : "(null)", b_ ? b_ : "(null)");                           \
        }                                                                              \
    } while (0)

#define CHECK_CONTAINS(hay, needle)                                                    \
    do {                                                                               \
        const char *h_ = (hay), *n_ = (needle);                                        \
        test_checks++;                                                                 \
        if (!h_ || !strstr(h_, n_)) {                                                  \
            test_failures++;                                                           \
            fprintf(stderr, "%s:%d: '%s' does not contain '%s'\n", __FILE__, __LINE__, \
                    h_ ? h_ : "(null)", n_);                                           \
        }                                                                              \
    } while (0)

static inline double test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Polls cond(arg) every few milliseconds until it returns nonzero (then 1) or
 * TEST_DEADLINE_MS pass (then 0). */
static inline int test_wait_for(int (*cond)(void *), void *arg)
{
    double end = test_now_ms() + TEST_DEADLINE_MS;
    for (;;) {
        if (cond(arg))
            return 1;
        if (test_now_ms() > end)
            return 0;
        usleep(2000);
    }
}

/* Reads /proc/<pid>/stat: the state letter, the parent and the command name (comm, up to
 * 15 bytes). 0 on success, -1 when the process is gone. */
static inline int test_proc_stat(long pid, char *state, long *ppid, char comm[32])
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *lp = strchr(buf, '('), *rp = strrchr(buf, ')');
    if (!lp || !rp || rp < lp || sscanf(rp + 2, "%c %ld", state, ppid) != 2)
        return -1;
    size_t len = (size_t)(rp - lp - 1) < 31 ? (size_t)(rp - lp - 1) : 31;
    memcpy(comm, lp + 1, len);
    comm[len] = '\0';
    return 0;
}

static inline int test_process_ended(void *arg)
{
    char state = 0, comm[32];
    long ppid = 0;
    return test_proc_stat(*(long *)arg, &state, &ppid, comm) != 0 || state == 'Z' ||
           state == 'X';
}

/* 1 when pid ends (gone, or a zombie waiting for a reaper that is not the test) before
 * TEST_DEADLINE_MS pass, 0 when it still runs. */
static inline int test_process_gone(long pid)
{
    return test_wait_for(test_process_ended, &pid);
}

/* How many live processes below this one (at any depth) are named comm. */
static inline int test_count_descendants(const char *comm)
{
    DIR *d = opendir("/proc");
    if (!d)
        return -1;
    int found = 0;
    long self = (long)getpid();
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long pid = strtol(e->d_name, NULL, 10);
        char state = 0, name[32];
        long ppid = 0;
        if (pid <= 0 || test_proc_stat(pid, &state, &ppid, name) != 0 ||
            strcmp(name, comm) != 0 || state == 'Z' || state == 'X')
            continue;
        /* Up the tree to this process (or to init: not ours). */
        for (int depth = 0; depth < 64 && ppid > 1 && ppid != self; depth++) {
            char st2 = 0, n2[32];
            if (test_proc_stat(ppid, &st2, &ppid, n2) != 0)
                ppid = 0;
        }
        found += ppid == self;
    }
    closedir(d);
    return found;
}

/* Makes a new private directory from tmpl (a path ending in XXXXXX, completed in place): 1, or
 * 0 after saying why on stderr. */
static inline int test_make_dir(char *tmpl)
{
    if (mkdtemp(tmpl))
        return 1;
    perror("mkdtemp");
    return 0;
}

/* Removes dir and all below it. What cannot be removed is litter, not a failure of the test:
 * it is said on stderr. */
static inline void test_remove_dir(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

static inline int test_exit(void)
{
    fprintf(stderr, "%d checks, %d failed\n", test_checks, test_failures);
    if (test_checks == 0)
        return 1; /* a test that checked nothing has not tested anything */
    return test_failures ? 1 : 0;
}

#endif
