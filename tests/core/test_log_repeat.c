/*
 * test_log_repeat.c - a log line that comes again and again (ggi_log_repeated) is delivered
 * once, and its count is told in one line when another line comes or on flush; lines below
 * the logger's level are not delivered at all.
 */
#include <stdio.h>
#include <string.h>

#include "../../lib/core/ggi.h"
#include "testutil.h"

typedef struct lines {
    int n;
    char text[8][256];
} lines;

static void collect(void *user, int level, const char *message)
{
    (void)level;
    lines *l = user;
    if (l->n < 8)
        snprintf(l->text[l->n], sizeof l->text[0], "%s", message);
    l->n++;
}

int main(void)
{
    lines got;
    memset(&got, 0, sizeof got);
    ggi_logger lg = { collect, &got, GG_LOG_WARN };
    ggi_log_repeat r;
    memset(&r, 0, sizeof r);

    /* A thousand times the same line, as fast as a retry loop would: one line. */
    for (int i = 0; i < 1000; i++)
        ggi_log_repeated(&lg, &r, GG_LOG_ERROR, "writer: %s", "database or disk is full");
    CHECK(got.n == 1);
    CHECK_STR(got.text[0], "writer: database or disk is full");

    /* Another line: the count first, then the new line. */
    ggi_log_repeated(&lg, &r, GG_LOG_ERROR, "writer: giving up");
    CHECK(got.n == 3);
    CHECK_STR(got.text[1], "writer: database or disk is full (repeated 999 more times)");
    CHECK_STR(got.text[2], "writer: giving up");

    /* Flush tells a count only when there is one. */
    ggi_log_repeat_flush(&lg, &r);
    CHECK(got.n == 3);
    ggi_log_repeated(&lg, &r, GG_LOG_ERROR, "again");
    ggi_log_repeated(&lg, &r, GG_LOG_ERROR, "again");
    ggi_log_repeat_flush(&lg, &r);
    CHECK(got.n == 5);
    CHECK_STR(got.text[4], "again (repeated 1 more time)");

    /* Below the logger's level: nothing. */
    ggi_log_repeated(&lg, &r, GG_LOG_DEBUG, "quiet");
    ggi_log_repeated(&lg, &r, GG_LOG_DEBUG, "quiet");
    ggi_log_repeat_flush(&lg, &r);
    CHECK(got.n == 5);
    return test_exit();
}
