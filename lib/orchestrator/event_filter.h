/*
 * event_filter.h - which event types a watcher asks for (docs/events.md, docs/protocol.md
 * `watch` "types"): a set of the known types as a bit mask, parsed from names or prefixes
 * ("task.finished", "node."), so the scheduler can skip building events nobody wants.
 */
#ifndef GGI_EVENT_FILTER_H
#define GGI_EVENT_FILTER_H

#include <stdint.h>

#include <stddef.h>

#include <cjson/cJSON.h>

#include "gryphgen/common.h"

/* Limits of a filter: entries, and bytes of one entry. */
#define GGI_EVENT_FILTER_MAX 32
#define GGI_EVENT_FILTER_NAME_MAX 64

/* Every known type (and, for an event of a type this list lacks, every watcher). */
#define GGI_EVENT_ALL UINT32_MAX

/* grid.summary (docs/events.md): the scheduler's coalesced account of the tasks' course, at
 * most once a second. Unlike the others it goes only to the filters that name it (by name
 * or "grid."), never to a watcher of every type nor to the host's event callback. */
#define GGI_EVENT_SUMMARY ((uint32_t)1 << 11)

/* The types of one event each, all of them (the bits below GGI_EVENT_SUMMARY). */
#define GGI_EVENT_EVERY (GGI_EVENT_SUMMARY - 1)

/* Whether a watcher with this mask hears an event of the type with this bit. */
static inline int ggi_event_mask_hears(uint32_t mask, uint32_t bit)
{
    return bit == GGI_EVENT_SUMMARY ? mask != GGI_EVENT_ALL && (mask & bit) != 0
                                    : (mask & bit) != 0;
}

/* The bit of an event type; GGI_EVENT_ALL for a type not in the list (nobody filters it
 * out). */
uint32_t ggi_event_type_bit(const char *type);

/* The mask of one entry: a known type, or a prefix ending in '.' that names at least one
 * ("task."); 0 when it names none. */
uint32_t ggi_event_entry_mask(const char *entry, size_t len);

/* Parses a watch's "types" (absent or null: all). An array of 1 to GGI_EVENT_FILTER_MAX
 * strings, each known (ggi_event_entry_mask). GG_EINVAL naming what is wrong otherwise. */
int ggi_event_filter_json(const cJSON *types, uint32_t *out_mask);

/* The same from a comma-separated list ("task.finished,node."); NULL or "": all. */
int ggi_event_filter_list(const char *list, uint32_t *out_mask);

/* The known types of a mask as a comma-separated list into buf (cap bytes; 256 hold every
 * type); "" for GGI_EVENT_ALL. Returns the length it needed. */
size_t ggi_event_filter_names(uint32_t mask, char *buf, size_t cap);

#endif
