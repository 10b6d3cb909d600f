/*
 * gryphgen/log.h - log levels and the log and event callback types.
 *
 * THREAD SAFETY: the functions here are pure and may be called from any thread. Each
 * callback type documents, where it is installed, which thread calls it.
 */
#ifndef GRYPHGEN_LOG_H
#define GRYPHGEN_LOG_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Log levels, most severe first. A logger set to a level receives that level and above. */
typedef enum gg_log_level {
    GG_LOG_ERROR = 0,
    GG_LOG_WARN = 1,
    GG_LOG_INFO = 2,
    GG_LOG_DEBUG = 3
} gg_log_level;

/**
 * Receives one log line (no trailing newline). The message is borrowed: valid only during
 * the call. Must not call back into the object that logs.
 */
typedef void (*gg_log_fn)(void *user, int level, const char *message);

/**
 * Receives one event as a JSON object with at least "type", "ts" (seconds since the epoch)
 * and, for task events, "task_id". The text is borrowed: valid only during the call. Event
 * types are documented in docs/events.md. Must not block for long and must not call back into
 * the object that emits it.
 */
typedef void (*gg_event_fn)(void *user, const char *event_json);

/** "error", "warn", "info" or "debug"; "unknown" for other values. */
GG_API const char *gg_log_level_name(int level);

/** Parses a level name as gg_log_level_name() prints it; returns the level or GG_EINVAL. */
GG_API int gg_log_level_parse(const char *name);

#ifdef __cplusplus
}
#endif
#endif
