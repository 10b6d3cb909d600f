/*
 * testutil.h - the few macros the C tests share. A failed CHECK prints where and why and
 * marks the test failed; the test's main returns test_exit(), which meson reads.
 * Exit code 77 means skipped (meson's convention). test_process_gone() waits (up to a
 * second) for a process to end, for the tests that check nothing a job started outlives it.
 */
#ifndef GG_TESTUTIL_H
#define GG_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* 1 when pid ends within about a second (gone, or a zombie waiting for a reaper that is not
 * the test), 0 when it still runs. */
static inline int test_process_gone(long pid)
{
    for (int i = 0; i < 100; i++) {
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        FILE *f = fopen(path, "r");
        if (!f)
            return 1;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        const char *rp = strrchr(buf, ')');
        if (rp && (rp[2] == 'Z' || rp[2] == 'X'))
            return 1;
        usleep(10000);
    }
    return 0;
}

static inline int test_exit(void)
{
    fprintf(stderr, "%d checks, %d failed\n", test_checks, test_failures);
    if (test_checks == 0)
        return 1; /* a test that checked nothing has not tested anything */
    return test_failures ? 1 : 0;
}

#endif
