/*
 * metrics.c - GET /metrics: the orchestrator's metrics (gg_orchestrator_metrics) in
 * Prometheus' text format, followed by the HTTP face's own (requests answered by status
 * class). Role observer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gryphgen.h"
#include "face.h"

static void metrics_handler(void *user, const ggi_http_request *req, ggi_http_response *resp)
{
    (void)req;
    ggi_http_face *f = user;
    char *text = NULL;
    int rc = gg_orchestrator_metrics(ggi_http_face_orchestrator(f), &text);
    if (rc) {
        ggi_http_error(resp, ggi_http_status_of(rc), gg_error_last());
        return;
    }
    unsigned long long n[4];
    ggi_http_counts(ggi_http_face_server(f), n);
    static const char *const cls[4] = { "2xx", "3xx", "4xx", "5xx" };
    size_t len = strlen(text), cap = len + 512;
    char *out = malloc(cap);
    if (!out) {
        gg_free(text);
        ggi_http_error(resp, 500, "out of memory");
        return;
    }
    memcpy(out, text, len);
    gg_free(text);
    len += (size_t)snprintf(out + len, cap - len,
                            "# HELP gryphgen_http_responses_total HTTP answers of the grid's "
                            "HTTP face, by status class.\n"
                            "# TYPE gryphgen_http_responses_total counter\n");
    for (int i = 0; i < 4; i++)
        len += (size_t)snprintf(out + len, cap - len,
                                "gryphgen_http_responses_total{code=\"%s\"} %llu\n", cls[i],
                                n[i]);
    resp->body = out;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

int ggi_http_metrics_routes(ggi_http_face *f, ggi_http_server *s)
{
    return ggi_http_server_route_role(s, "GET", "/metrics", GGI_ROLE_OBSERVER, metrics_handler,
                                      f);
}
