/*
 * log.c - log level names, delivery of log lines to a host's callback, and lines that
 * repeat told once with their count.
 */
#include <stdio.h>
#include <string.h>

#include "ggi.h"

static const char *const level_names[] = { "error", "warn", "info", "debug" };

const char *gg_log_level_name(int level)
{
    if (level < GG_LOG_ERROR || level > GG_LOG_DEBUG)
        return "unknown";
    return level_names[level];
}

int gg_log_level_parse(const char *name)
{
    if (!name)
        return ggi_error(GG_EINVAL, "log level name is NULL");
    for (int i = GG_LOG_ERROR; i <= GG_LOG_DEBUG; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return ggi_error(GG_EINVAL, "unknown log level '%s' (error, warn, info, debug)", name);
}

void ggi_log(const ggi_logger *lg, int level, const char *fmt, ...)
{
    if (!lg || !lg->fn || level > lg->level)
        return;
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    lg->fn(lg->user, level, line);
}

void ggi_log_repeat_flush(const ggi_logger *lg, ggi_log_repeat *r)
{
    if (r->repeats > 0)
        ggi_log(lg, r->level, "%s (repeated %lu more time%s)", r->last, r->repeats,
                r->repeats == 1 ? "" : "s");
    r->repeats = 0;
    r->last[0] = 0;
}

void ggi_log_repeated(const ggi_logger *lg, ggi_log_repeat *r, int level, const char *fmt, ...)
{
    char line[sizeof r->last];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    double now = ggi_now_ms();
    if (r->last[0] && level == r->level && strcmp(line, r->last) == 0) {
        r->repeats++;
        if (now - r->logged_ms < GGI_LOG_REPEAT_MS)
            return;
        ggi_log(lg, level, "%s (repeated %lu time%s in %.0f s)", line, r->repeats,
                r->repeats == 1 ? "" : "s", (now - r->logged_ms) / 1000.0);
        r->repeats = 0;
        r->logged_ms = now;
        return;
    }
    ggi_log_repeat_flush(lg, r);
    ggi_log(lg, level, "%s", line);
    memcpy(r->last, line, sizeof line);
    r->level = level;
    r->logged_ms = now;
}
