/*
 * custom_transport.c - a host's transport (gryphgen/sys/transport.h) wrapped in a
 * gg_transport_t handle: the vtable checked and copied, ownership of its state taken, and
 * the handle lent to the orchestrators, workers and clients whose options name it.
 */
#include <stdlib.h>
#include <string.h>

#include "transport.h"

int gg_transport_new_custom(gg_transport_t **out, const gg_transport_vtable *vtable, void *self)
{
    if (out)
        *out = NULL;
    if (!vtable)
        return ggi_error(GG_EINVAL, "gg_transport_new_custom: vtable is NULL");
    /* Ownership of self has passed: every failure below releases it. destroy keeps its place
     * in every version, since slots are only appended. */
    void (*destroy)(void *) = vtable->destroy;
    const char *missing = !vtable->hub_open    ? "hub_open"
                          : !vtable->hub_recv  ? "hub_recv"
                          : !vtable->hub_send  ? "hub_send"
                          : !vtable->peer_open ? "peer_open"
                          : !vtable->peer_recv ? "peer_recv"
                          : !vtable->peer_send ? "peer_send"
                          : !vtable->close     ? "close"
                                               : NULL;
    int rc = GG_OK;
    gg_transport_t *t = NULL;
    if (!out)
        rc = ggi_error(GG_EINVAL, "gg_transport_new_custom: out is NULL");
    else if (vtable->version < 1 || vtable->version > GG_TRANSPORT_VTABLE_VERSION)
        rc = ggi_error(GG_EVERSION, "gg_transport_vtable version %u is not known (this library "
                       "knows 1 to %d)", (unsigned)vtable->version, GG_TRANSPORT_VTABLE_VERSION);
    else if (missing)
        rc = ggi_error(GG_EINVAL, "transport vtable: the %s slot is required", missing);
    else if (!(t = calloc(1, sizeof *t)))
        rc = ggi_error(GG_ENOMEM, "out of memory creating a transport");
    if (rc) {
        if (destroy)
            destroy(self);
        return rc;
    }
    t->t.vt = *vtable;
    t->t.self = self;
    *out = t;
    return GG_OK;
}

void ggi_transport_borrow(ggi_transport *dst, const gg_transport_t *src)
{
    *dst = src->t;
    dst->borrowed = 1;
}

void gg_transport_destroy(gg_transport_t **pt)
{
    if (!pt || !*pt)
        return;
    gg_transport_t *t = *pt;
    *pt = NULL;
    ggi_transport_destroy(&t->t);
    free(t);
}
