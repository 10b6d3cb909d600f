/*
 * options.h - one way to accept a public options struct of any version this library knows.
 *
 * Options structs only ever grow at the end, and each version's struct ends at a known
 * field. A caller compiled against older headers passes a shorter struct: the library must
 * read only the bytes that version has, take defaults for the rest, and refuse versions it
 * does not know (0, or newer than its own). Every *_options_init and *_new that takes
 * options goes through these helpers, so a new version is one more entry in a layout, not
 * a new check written by hand. Internal.
 */
#ifndef GGI_OPTIONS_H
#define GGI_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

/** Bytes of struct type up to and including field: the size a version ending there has. */
#define GGI_OPTIONS_END(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))

/** The known versions of one options struct (its first member is `uint32_t version`). */
typedef struct ggi_options_layout {
    const char *name;     /* "gg_worker_options", for messages */
    size_t size;          /* sizeof the struct as this library knows it */
    unsigned current;     /* the newest version: the header's *_OPTIONS_VERSION */
    const size_t *ends;   /* ends[v - 1]: the bytes a version v struct has */
} ggi_options_layout;

/**
 * Declares `static const ggi_options_layout name` for type, whose newest version is current;
 * the remaining arguments are the ends of versions 1, 2, ... current, oldest first (each
 * GGI_OPTIONS_END(type, the last field of that version)). The compiler checks there is one
 * end per version.
 */
#define GGI_OPTIONS_LAYOUT(name, type, current, ...)                                        \
    static const size_t name##_ends[] = { __VA_ARGS__ };                                    \
    _Static_assert(sizeof name##_ends / sizeof name##_ends[0] == (current),                 \
                   #type ": one end per version, oldest first");                            \
    _Static_assert(offsetof(type, version) == 0, #type ": version comes first");            \
    static const ggi_options_layout name = { #type, sizeof(type), (current), name##_ends }

/** Bytes a struct of that version has; 0 for a version the layout does not know. */
size_t ggi_options_size(const ggi_options_layout *l, uint32_t version);

/**
 * The body of a public *_options_init(opts, version): writes defaults (a whole struct of
 * the current version) into opts as far as a struct of that version reaches, with its
 * version field set to version. GG_EINVAL when opts is NULL, GG_EVERSION for an unknown
 * version (nothing written).
 */
int ggi_options_init(const ggi_options_layout *l, void *opts, const void *defaults,
                     unsigned version);

/**
 * Takes a caller's options: full holds the defaults (a whole struct of the current version);
 * the caller's fields are copied over them as far as the caller's version reaches, and
 * full's version becomes the current one, so the code after reads a whole struct. caller
 * NULL leaves the defaults. GG_EVERSION, naming the struct, for an unknown version (full
 * untouched).
 */
int ggi_options_accept(const ggi_options_layout *l, void *full, const void *caller);

#endif
