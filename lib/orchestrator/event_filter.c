/*
 * event_filter.c - event type filters of watchers (event_filter.h): names and prefixes of
 * the known event types to a bit mask, with clear errors for unknown names and limits on
 * how many entries and how long each is. Uses only the public API (gg_error_set), so the
 * HTTP module, which the gryphgen command links on its own, can use it too.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "event_filter.h"

/* docs/events.md; the index is the bit. */
static const char *const known[] = {
    "task.started",  "attempt.started", "job.dispatched", "attempt.finished",
    "task.stuck",    "task.finished",   "job.retried",    "job.requeued",
    "node.joined",   "node.lost",       "node.quarantined", "grid.summary",
};
#define N_KNOWN (sizeof known / sizeof known[0])
_Static_assert(N_KNOWN == 12 && GGI_EVENT_SUMMARY == (uint32_t)1 << 11,
               "grid.summary is the known type of bit GGI_EVENT_SUMMARY");

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return gg_error_set(GG_EINVAL, msg);
}

uint32_t ggi_event_type_bit(const char *type)
{
    for (size_t i = 0; type && i < N_KNOWN; i++)
        if (strcmp(type, known[i]) == 0)
            return (uint32_t)1 << i;
    return GGI_EVENT_ALL;
}

uint32_t ggi_event_entry_mask(const char *entry, size_t len)
{
    uint32_t m = 0;
    if (len == 0 || len > GGI_EVENT_FILTER_NAME_MAX)
        return 0;
    int prefix = entry[len - 1] == '.';
    for (size_t i = 0; i < N_KNOWN; i++) {
        size_t k = strlen(known[i]);
        if (prefix ? (k > len && strncmp(known[i], entry, len) == 0)
                   : (k == len && memcmp(known[i], entry, len) == 0))
            m |= (uint32_t)1 << i;
    }
    return m;
}

static int unknown(const char *entry, size_t len)
{
    if (len > GGI_EVENT_FILTER_NAME_MAX)
        return fail("event type filter: an entry is longer than %d bytes",
                         GGI_EVENT_FILTER_NAME_MAX);
    return fail("event type filter: unknown event type '%.*s' (known: "
                     "task.started, attempt.started, job.dispatched, attempt.finished, "
                     "task.stuck, task.finished, job.retried, job.requeued, node.joined, "
                     "node.lost, node.quarantined, grid.summary, or a prefix such as "
                     "'task.')",
                     (int)len, entry);
}

int ggi_event_filter_json(const cJSON *types, uint32_t *out_mask)
{
    *out_mask = GGI_EVENT_ALL;
    if (!types || cJSON_IsNull(types))
        return GG_OK;
    if (!cJSON_IsArray(types))
        return fail("event type filter: 'types' must be an array of strings");
    int n = cJSON_GetArraySize(types);
    if (n < 1 || n > GGI_EVENT_FILTER_MAX)
        return fail("event type filter: 'types' must hold 1 to %d entries "
                         "(it holds %d)", GGI_EVENT_FILTER_MAX, n);
    uint32_t m = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, types) {
        if (!cJSON_IsString(t))
            return fail("event type filter: 'types' must be an array of "
                             "strings");
        size_t len = strlen(t->valuestring);
        uint32_t e = ggi_event_entry_mask(t->valuestring, len);
        if (!e)
            return unknown(t->valuestring, len);
        m |= e;
    }
    *out_mask = m;
    return GG_OK;
}

int ggi_event_filter_list(const char *list, uint32_t *out_mask)
{
    *out_mask = GGI_EVENT_ALL;
    if (!list || !*list)
        return GG_OK;
    uint32_t m = 0;
    int n = 0;
    for (const char *p = list;; ) {
        size_t len = strcspn(p, ",");
        if (++n > GGI_EVENT_FILTER_MAX)
            return fail("event type filter: more than %d entries",
                             GGI_EVENT_FILTER_MAX);
        uint32_t e = ggi_event_entry_mask(p, len);
        if (!e)
            return len ? unknown(p, len)
                       : fail("event type filter: an empty entry in '%s'",
                                   list);
        m |= e;
        if (!p[len])
            break;
        p += len + 1;
    }
    *out_mask = m;
    return GG_OK;
}

size_t ggi_event_filter_names(uint32_t mask, char *buf, size_t cap)
{
    size_t n = 0;
    if (cap)
        buf[0] = '\0';
    if (mask == GGI_EVENT_ALL)
        return 0;
    for (size_t i = 0; i < N_KNOWN; i++) {
        if (!(mask & ((uint32_t)1 << i)))
            continue;
        int k = snprintf(buf + n, cap > n ? cap - n : 0, "%s%s", n ? "," : "", known[i]);
        n += k > 0 ? (size_t)k : 0;
    }
    return n;
}
