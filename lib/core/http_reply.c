/*
 * http_reply.c - what the library's HTTP clients (the openai generator, the http retriever)
 * share around libcurl: a reply buffer with a size cap and the Retry-After header, filled by
 * two write callbacks; the wait before a retry (exponential backoff with jitter, or the
 * server's Retry-After); and scrubbing a secret out of text that may reach a log. Nothing here
 * includes curl: the callbacks have the plain signatures CURLOPT_WRITEFUNCTION and
 * CURLOPT_HEADERFUNCTION expect.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ggi.h"

void ggi_http_reply_reset(ggi_http_reply *r)
{
    ggi_buf_free(&r->body);
    r->too_big = 0;
    r->retry_after_s = -1;
}

size_t ggi_http_reply_on_body(char *data, size_t size, size_t nmemb, void *reply)
{
    ggi_http_reply *r = reply;
    size_t n = size * nmemb;
    if (r->body.len + n > r->cap) {
        r->too_big = 1;
        return 0; /* stops the transfer */
    }
    return ggi_buf_append(&r->body, data, n) ? 0 : n;
}

size_t ggi_http_reply_on_header(char *data, size_t size, size_t nmemb, void *reply)
{
    ggi_http_reply *r = reply;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    size_t nl = sizeof name - 1;
    if (n > nl && n < 200 && strncasecmp(data, name, nl) == 0) {
        char v[200];
        memcpy(v, data + nl, n - nl);
        v[n - nl] = '\0';
        char *end = NULL;
        double s = strtod(v, &end);
        while (end && (*end == ' ' || *end == '\r' || *end == '\n' || *end == '\t'))
            end++;
        if (end && end != v && !*end && isfinite(s) && s >= 0)
            r->retry_after_s = s; /* an HTTP date is ignored: the backoff applies */
    }
    return n;
}

double ggi_retry_wait_ms(int attempt, double base_ms, double cap_ms, double retry_after_s,
                         double retry_after_cap_s, uint64_t *rng)
{
    if (retry_after_s >= 0)
        return fmin(retry_after_s, retry_after_cap_s) * 1000.0;
    double d = base_ms;
    for (int i = 0; i < attempt && d < cap_ms; i++)
        d *= 2;
    if (d > cap_ms)
        d = cap_ms;
    return d / 2 + ggi_rand_uniform(rng) * d / 2; /* jitter: somewhere in the upper half */
}

void ggi_scrub_secret(char *text, const char *secret)
{
    size_t kl = secret ? strlen(secret) : 0;
    if (!text || !kl)
        return;
    for (char *p = strstr(text, secret); p; p = strstr(p, secret))
        memset(p, '*', kl);
    for (size_t i = 0; kl >= 8 && i + 8 <= kl; i++)
        for (char *p = text; (p = memmem(p, strlen(p), secret + i, 8)) != NULL;)
            memset(p, '*', 8);
}
