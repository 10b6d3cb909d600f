/*
 * face.h - the grid's HTTP face (`gryphgen serve --http`): the state its routes share (the
 * orchestrator, one in-process client per token name, the event relay) and the functions
 * that register each concern's routes: metrics.c (GET /metrics), rest_tasks.c (/v1/tasks,
 * /v1/nodes, /healthz), rest_events.c (GET /v1/events, Server-Sent Events) and dashboard.c
 * (GET /). Every request goes through the scheduler's own entry points (gg_client_t on the
 * orchestrator's in-process endpoint: submit, status, cancel, watch), except the task list,
 * which reads a page of the database (gg_orchestrator_tasks). Public API only. Internal.
 *
 * THREAD SAFETY: handlers run on the server's threads, several at once; the face's state is
 * guarded inside. Order at the end: ggi_http_face_stop(), then ggi_http_server_destroy(),
 * then ggi_http_face_free(), then the orchestrator.
 */
#ifndef GGI_HTTP_FACE_H
#define GGI_HTTP_FACE_H

#include "gryphgen/orchestrator.h"
#include "http_server.h"

typedef struct ggi_http_face ggi_http_face;

/** Creates the face over o (borrowed: it must outlive the face). */
int ggi_http_face_new(ggi_http_face **out, gg_orchestrator_t *o);

/** The in-process client named name (created on first use; owned by the face). The caller
 * keeps it for one request (calls on one client are serialised by the client). */
int ggi_http_face_client(ggi_http_face *f, const char *name, gg_client_t **out);

/** The orchestrator. */
gg_orchestrator_t *ggi_http_face_orchestrator(ggi_http_face *f);

/** The server the routes are on (set by ggi_http_face_routes). */
ggi_http_server *ggi_http_face_server(ggi_http_face *f);

/** Registers every route of the face on s (before start). */
int ggi_http_face_routes(ggi_http_face *f, ggi_http_server *s);

/** Ends the event streams (their connections close) and stops the relay thread. */
void ggi_http_face_stop(ggi_http_face *f);

/** Frees the face and its clients; sets *pf to NULL. Accepts NULL. */
void ggi_http_face_free(ggi_http_face **pf);

/** HTTP status for a gg status code (GG_EINVAL 400, GG_ENOTFOUND 404, ...). */
int ggi_http_status_of(int gg_code);

/* Each concern's routes (called by ggi_http_face_routes). */
int ggi_http_metrics_routes(ggi_http_face *f, ggi_http_server *s);
int ggi_http_tasks_routes(ggi_http_face *f, ggi_http_server *s);
int ggi_http_events_routes(ggi_http_face *f, ggi_http_server *s);
int ggi_http_dashboard_routes(ggi_http_face *f, ggi_http_server *s);

/* The event relay (rest_events.c), made and ended by the face. */
typedef struct ggi_http_events ggi_http_events;
int ggi_http_events_new(ggi_http_events **out, ggi_http_face *f);
void ggi_http_events_stop(ggi_http_events *e);
void ggi_http_events_free(ggi_http_events **pe);
ggi_http_events *ggi_http_face_events(ggi_http_face *f);

#endif
