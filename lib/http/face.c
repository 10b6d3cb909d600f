/*
 * face.c - the HTTP face's shared state (face.h): the orchestrator, a small table of
 * in-process clients, one per token name (so tasks are recorded under their submitter and
 * ownership can be checked), the event relay, and the route registration of every concern.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gryphgen.h"
#include "face.h"

#define MAX_CLIENTS 300 /* token names (at most GGI_HTTP_MAX_TOKENS) and a few of our own */

typedef struct named_client {
    char name[64];
    gg_client_t *c;
} named_client;

struct ggi_http_face {
    gg_orchestrator_t *o;
    ggi_http_server *s;
    ggi_http_events *events;
    pthread_mutex_t mu; /* guards clients */
    named_client clients[MAX_CLIENTS];
    int n_clients;
};

int ggi_http_face_new(ggi_http_face **out, gg_orchestrator_t *o)
{
    *out = NULL;
    if (!o)
        return gg_error_set(GG_EINVAL, "http face: no orchestrator");
    ggi_http_face *f = calloc(1, sizeof *f);
    if (!f)
        return gg_error_set(GG_ENOMEM, "out of memory");
    pthread_mutex_init(&f->mu, NULL);
    f->o = o;
    int rc = ggi_http_events_new(&f->events, f);
    if (rc) {
        ggi_http_face_free(&f);
        return rc;
    }
    *out = f;
    return GG_OK;
}

int ggi_http_face_client(ggi_http_face *f, const char *name, gg_client_t **out)
{
    *out = NULL;
    pthread_mutex_lock(&f->mu);
    for (int i = 0; i < f->n_clients; i++) {
        if (strcmp(f->clients[i].name, name) == 0) {
            *out = f->clients[i].c;
            pthread_mutex_unlock(&f->mu);
            return GG_OK;
        }
    }
    int rc = GG_OK;
    if (f->n_clients >= MAX_CLIENTS) {
        rc = gg_error_set(GG_EBUSY, "http face: too many submitter names");
    } else {
        named_client *nc = &f->clients[f->n_clients];
        snprintf(nc->name, sizeof nc->name, "%s", name);
        rc = gg_orchestrator_connect(f->o, nc->name, &nc->c);
        if (rc == GG_OK) {
            f->n_clients++;
            *out = nc->c;
        }
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

gg_orchestrator_t *ggi_http_face_orchestrator(ggi_http_face *f)
{
    return f->o;
}

ggi_http_server *ggi_http_face_server(ggi_http_face *f)
{
    return f->s;
}

ggi_http_events *ggi_http_face_events(ggi_http_face *f)
{
    return f->events;
}

int ggi_http_face_routes(ggi_http_face *f, ggi_http_server *s)
{
    f->s = s;
    int rc = ggi_http_metrics_routes(f, s);
    if (!rc)
        rc = ggi_http_tasks_routes(f, s);
    if (!rc)
        rc = ggi_http_events_routes(f, s);
    if (!rc)
        rc = ggi_http_dashboard_routes(f, s);
    return rc;
}

void ggi_http_face_stop(ggi_http_face *f)
{
    if (f && f->events)
        ggi_http_events_stop(f->events);
}

void ggi_http_face_free(ggi_http_face **pf)
{
    if (!pf || !*pf)
        return;
    ggi_http_face *f = *pf;
    ggi_http_events_free(&f->events);
    for (int i = 0; i < f->n_clients; i++)
        gg_client_destroy(&f->clients[i].c);
    pthread_mutex_destroy(&f->mu);
    free(f);
    *pf = NULL;
}

int ggi_http_status_of(int code)
{
    switch (code) {
    case GG_OK: return 200;
    case GG_EINVAL: return 400;
    case GG_ETOOBIG: return 413;
    case GG_ENOTFOUND: return 404;
    case GG_EEXIST:
    case GG_ESTATE: return 409;
    case GG_EBUSY:
    case GG_ESTORE: return 503;
    case GG_ETIMEDOUT: return 504;
    default: return 500;
    }
}
