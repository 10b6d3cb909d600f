/*
 * job_registry.c - the running jobs of a backend (job_registry.h): a doubly linked list of
 * slots on the runs' stacks under one mutex, flagged (and their ids copied out) by an
 * interrupt, and the job scopes that cancel one thread's jobs only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/ggi.h"
#include "job_registry.h"

int ggi_job_registry_init(ggi_job_registry *r)
{
    r->jobs = NULL;
    if (pthread_mutex_init(&r->lock, NULL) != 0)
        return ggi_error(GG_ENOMEM, "out of memory");
    return GG_OK;
}

void ggi_job_registry_destroy(ggi_job_registry *r)
{
    pthread_mutex_destroy(&r->lock);
}

static _Thread_local ggi_job_scope *tls_scope; /* the calling thread's scope */

int ggi_job_scope_init(ggi_job_scope *sc)
{
    sc->cancelled = 0;
    sc->jobs = NULL;
    if (pthread_mutex_init(&sc->lock, NULL) != 0)
        return ggi_error(GG_ENOMEM, "out of memory");
    return GG_OK;
}

void ggi_job_scope_destroy(ggi_job_scope *sc)
{
    pthread_mutex_destroy(&sc->lock);
}

void ggi_job_scope_enter(ggi_job_scope *sc)
{
    tls_scope = sc;
}

void ggi_job_scope_cancel(ggi_job_scope *sc)
{
    pthread_mutex_lock(&sc->lock);
    sc->cancelled = 1;
    for (ggi_job_slot *s = sc->jobs; s; s = s->snext)
        __atomic_store_n(&s->cancel, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&sc->lock);
}

void ggi_job_scope_reset(ggi_job_scope *sc)
{
    pthread_mutex_lock(&sc->lock);
    sc->cancelled = 0;
    pthread_mutex_unlock(&sc->lock);
}

void ggi_job_register(ggi_job_registry *r, ggi_job_slot *s)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_lock(&r->lock);
    s->next = r->jobs;
    if (r->jobs)
        r->jobs->prev = s;
    r->jobs = s;
    pthread_mutex_unlock(&r->lock);
    ggi_job_scope *sc = tls_scope;
    if (sc) {
        pthread_mutex_lock(&sc->lock);
        s->scope = sc;
        s->snext = sc->jobs;
        if (sc->jobs)
            sc->jobs->sprev = s;
        sc->jobs = s;
        if (sc->cancelled)
            __atomic_store_n(&s->cancel, 1, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&sc->lock);
    }
}

void ggi_job_unregister(ggi_job_registry *r, ggi_job_slot *s)
{
    pthread_mutex_lock(&r->lock);
    if (s->prev)
        s->prev->next = s->next;
    else
        r->jobs = s->next;
    if (s->next)
        s->next->prev = s->prev;
    pthread_mutex_unlock(&r->lock);
    ggi_job_scope *sc = s->scope;
    if (sc) {
        pthread_mutex_lock(&sc->lock);
        if (s->sprev)
            s->sprev->snext = s->snext;
        else
            sc->jobs = s->snext;
        if (s->snext)
            s->snext->sprev = s->sprev;
        s->scope = NULL;
        pthread_mutex_unlock(&sc->lock);
    }
}

void ggi_job_set_id(ggi_job_registry *r, ggi_job_slot *s, const char *id)
{
    pthread_mutex_lock(&r->lock);
    snprintf(s->id, sizeof s->id, "%s", id ? id : "");
    pthread_mutex_unlock(&r->lock);
}

int ggi_job_cancelled(const ggi_job_slot *s)
{
    return __atomic_load_n(&s->cancel, __ATOMIC_ACQUIRE) != 0;
}

size_t ggi_job_registry_cancel_all(ggi_job_registry *r, char (**ids)[GGI_JOB_ID_MAX])
{
    size_t n = 0, cap = 0;
    if (ids)
        *ids = NULL;
    pthread_mutex_lock(&r->lock);
    for (ggi_job_slot *s = r->jobs; s; s = s->next) {
        __atomic_store_n(&s->cancel, 1, __ATOMIC_RELEASE);
        if (s->id[0])
            cap++;
    }
    if (ids && cap)
        *ids = calloc(cap, sizeof **ids);
    for (ggi_job_slot *s = r->jobs; ids && *ids && s && n < cap; s = s->next) {
        if (s->id[0])
            memcpy((*ids)[n++], s->id, sizeof s->id);
    }
    pthread_mutex_unlock(&r->lock);
    return n;
}
