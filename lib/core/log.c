/*
 * log.c - log level names and delivery of log lines to a host's callback.
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
