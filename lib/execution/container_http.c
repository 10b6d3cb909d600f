/*
 * container_http.c - the engine's HTTP client of the "container" executor backend: one
 * libcurl request over the unix socket, with a reply body capped or fed to the log decoder,
 * a timeout, and cancellation by an interrupt. Cut here because it is the one place that
 * speaks HTTP; what the requests mean is container_run.c's business.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "../core/ggi.h"
#include "container_internal.h"

static size_t on_body(char *p, size_t size, size_t nmemb, void *user)
{
    http_reply *r = user;
    size_t n = size * nmemb;
    if (r->mux) {
        if (r->fed + n > r->feed_limit) {
            r->too_big = 1;
            return 0; /* enough read: everything beyond the caps is dropped anyway */
        }
        r->fed += n;
        return ggi_mux_feed(r->mux, p, n) ? 0 : n;
    }
    if (r->body.len + n > MAX_REPLY) {
        r->too_big = 1;
        return 0;
    }
    return ggi_buf_append(&r->body, p, n) ? 0 : n;
}

static int on_progress(void *user, curl_off_t dlt, curl_off_t dln, curl_off_t ult,
                       curl_off_t uln)
{
    (void)dlt, (void)dln, (void)ult, (void)uln;
    const volatile int *cancel = user;
    return cancel && __atomic_load_n(cancel, __ATOMIC_ACQUIRE) ? 1 : 0;
}

/*
 * One request. body may be NULL (no body). timeout_ms 0: none. Returns the CURLcode (0 when
 * a reply came, whatever its status); r->status holds the HTTP status.
 */
CURLcode ggi_ce_http_prepare(CURL *c, http_ctx *h, const char *method, const char *path,
                             const char *ctype, const char *body, size_t body_len,
                             long timeout_ms, int cancellable, http_reply *r,
                             struct curl_slist **hdrs_out)
{
    char url[256];
    if ((size_t)snprintf(url, sizeof url, API "%s", path) >= sizeof url)
        return CURLE_URL_MALFORMAT;
    r->status = 0;
    curl_easy_reset(c);
    struct curl_slist *hdrs = NULL, *t;
    char ct[128];
    if (ctype) {
        snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
        if ((t = curl_slist_append(hdrs, ct)))
            hdrs = t;
    }
    if ((t = curl_slist_append(hdrs, "Expect:")))
        hdrs = t;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, h->socket);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    if (timeout_ms > 0)
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    if (cancellable && h->cancel) {
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)h->cancel);
    }
    if (!strcmp(method, "GET")) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else {
        if (strcmp(method, "POST"))
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        if (body || !strcmp(method, "POST") || !strcmp(method, "PUT")) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
        }
    }
    *hdrs_out = hdrs;
    /* The URL is copied by libcurl. */
    return CURLE_OK;
}

CURLcode ggi_ce_http_do(http_ctx *h, const char *method, const char *path, const char *ctype,
                        const char *body, size_t body_len, long timeout_ms, int cancellable,
                        http_reply *r)
{
    struct curl_slist *hdrs = NULL;
    CURLcode cc = ggi_ce_http_prepare(h->curl, h, method, path, ctype, body, body_len, timeout_ms,
                               cancellable, r, &hdrs);
    if (cc == CURLE_OK)
        cc = curl_easy_perform(h->curl);
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hdrs);
    return cc;
}

/* The engine's error message of a reply ({"message": ...}), or its body, or "". */
const char *ggi_ce_reply_message(http_reply *r, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (!r->body.data)
        return buf;
    cJSON *j = cJSON_ParseWithLength(r->body.data, r->body.len);
    const cJSON *m = j ? cJSON_GetObjectItemCaseSensitive(j, "message") : NULL;
    if (cJSON_IsString(m) && m->valuestring)
        snprintf(buf, cap, "%s", m->valuestring);
    else
        snprintf(buf, cap, "%.*s", (int)(r->body.len < 300 ? r->body.len : 300), r->body.data);
    cJSON_Delete(j);
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    return buf;
}

void ggi_ce_reply_reset(http_reply *r)
{
    ggi_buf_free(&r->body);
    r->status = 0;
    r->too_big = 0;
}
