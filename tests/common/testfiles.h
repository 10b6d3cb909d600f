/*
 * testfiles.h - files the C tests read back: test_read_file() returns a file under a
 * directory as text (malloc'd, NULL when it is not there), and CHECK_FILE() checks a file's
 * whole content in one line where a test used to read, compare and free by hand. Include
 * after testutil.h (the CHECK macros).
 */
#ifndef GG_TESTFILES_H
#define GG_TESTFILES_H

#include <stdio.h>
#include <stdlib.h>

/* The most a test reads of one file (more is cut: tests' files are small). */
#define TEST_FILE_MAX (64u << 10)

/* dir/rel as text (malloc'd; "" when empty), or NULL when it cannot be opened. */
static inline char *test_read_file(const char *dir, const char *rel)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    FILE *f = fopen(p, "rb");
    if (!f)
        return NULL;
    char *buf = calloc(1, TEST_FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, TEST_FILE_MAX, f) : 0;
    if (buf)
        buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Checks that dir/rel holds exactly want (a missing file fails, printed as "(null)"). */
#define CHECK_FILE(dir, rel, want)                                                     \
    do {                                                                               \
        char *got_ = test_read_file((dir), (rel));                                     \
        CHECK_STR(got_, (want));                                                       \
        free(got_);                                                                    \
    } while (0)

#endif
