/*
 * dashboard.c - GET /: the live dashboard, one self-contained page (dashboard.html, compiled
 * in) that reads /v1/nodes, /v1/tasks and /v1/events itself. A browser cannot send a bearer
 * header when it opens a page, so the first visit may carry ?token=; the answer keeps it in
 * an HttpOnly, SameSite=Strict cookie (Secure over TLS) that the page's own requests send.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gryphgen.h"
#include "face.h"

extern const char ggi_dashboard_page[];
extern const size_t ggi_dashboard_page_len;

static void dashboard_handler(void *user, const ggi_http_request *req, ggi_http_response *resp)
{
    ggi_http_face *f = user;
    resp->body = malloc(ggi_dashboard_page_len + 1);
    if (!resp->body) {
        ggi_http_error(resp, 500, "out of memory");
        return;
    }
    memcpy(resp->body, ggi_dashboard_page, ggi_dashboard_page_len);
    resp->body[ggi_dashboard_page_len] = '\0';
    resp->content_type = "text/html; charset=utf-8";
    /* Only a token made of cookie-safe characters goes into the cookie (a token with ';'
     * or ',' would not survive as a cookie value: such a browser sends ?token= again). */
    static const char safe[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                               "0123456789-._~+/=!#$%&'*^`|";
    if (req->query_token && strspn(req->query_token, safe) == strlen(req->query_token)) {
        size_t n = strlen(req->query_token) + 96;
        resp->set_cookie = malloc(n);
        if (resp->set_cookie)
            snprintf(resp->set_cookie, n, "gg_token=%s; Path=/; HttpOnly; SameSite=Strict%s",
                     req->query_token,
                     ggi_http_server_tls(ggi_http_face_server(f)) ? "; Secure" : "");
    }
}

int ggi_http_dashboard_routes(ggi_http_face *f, ggi_http_server *s)
{
    return ggi_http_server_route_role(s, "GET", "/", GGI_ROLE_OBSERVER, dashboard_handler, f);
}
