/*
 * options.c - accepting options structs of every known version (options.h): the size each
 * version covers, defaults for the fields a caller's version does not have, and one message
 * for versions the library does not know.
 */
#include "options.h"

#include <string.h>

#include "ggi.h"

size_t ggi_options_size(const ggi_options_layout *l, uint32_t version)
{
    if (version < 1 || version > l->current)
        return 0;
    /* The newest version is the whole struct, trailing padding included. */
    return version == l->current ? l->size : l->ends[version - 1];
}

static int unknown(const ggi_options_layout *l, uint32_t version)
{
    return ggi_error(GG_EVERSION, "%s version %u is not known (this library knows 1 to %u)",
                     l->name, (unsigned)version, l->current);
}

int ggi_options_init(const ggi_options_layout *l, void *opts, const void *defaults,
                     unsigned version)
{
    if (!opts)
        return ggi_error(GG_EINVAL, "%s: the options pointer is NULL", l->name);
    size_t size = ggi_options_size(l, version);
    if (!size)
        return unknown(l, version);
    memcpy(opts, defaults, size);
    uint32_t v = version;
    memcpy(opts, &v, sizeof v);
    return GG_OK;
}

int ggi_options_accept(const ggi_options_layout *l, void *full, const void *caller)
{
    if (!caller)
        return GG_OK;
    uint32_t version;
    memcpy(&version, caller, sizeof version);
    size_t size = ggi_options_size(l, version);
    if (!size)
        return unknown(l, version);
    memcpy(full, caller, size);
    uint32_t current = l->current;
    memcpy(full, &current, sizeof current);
    return GG_OK;
}
