/*
 * openai_http.c - the HTTP exchange of the "openai" generator backend: one chat-completions
 * POST over libcurl (timeouts, no redirect, http and https only, interruptible), its failure
 * told apart as retry, failover or fatal with the server's words scrubbed of secrets, and
 * asking one arm with retries (backoff with jitter, Retry-After). Cut here because it is the
 * one place that touches the network.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "../core/ggi.h"
#include "builtin.h"
#include "hooks.h"
#include "journal.h"
#include "openai.h"
#include "citations.h"
#include "prompt.h"
#include "redact.h"
#include "strategy.h"
#include "openai_internal.h"

/* curl's progress callback: a nonzero return aborts the transfer once interrupted. */
static int on_progress(void *p, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    return atomic_load((atomic_int *)p) ? 1 : 0;
}

static int interrupted_error(const endpoint *e)
{
    return ggi_error(GG_ECANCELLED, "openai: %s: interrupted (the task was cancelled or its "
                     "budget ended)", e->shown);
}

/* Copies the server's own words for an error, scrubbed of the key, the parts of the URL that
 * are not shown, and control characters. */
void ggi_openai_server_message(const openai *g, const endpoint *e, const exchange *x, char *out,
                           size_t cap)
{
    out[0] = '\0';
    if (!x->reply.body.len)
        return;
    const char *msg = NULL;
    cJSON *j = cJSON_ParseWithLength(x->reply.body.data, x->reply.body.len);
    if (j) {
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
        if (cJSON_IsString(err))
            msg = err->valuestring;
        else if (cJSON_IsObject(err))
            msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(err, "message"));
        if (!msg)
            msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "message"));
        if (!msg)
            msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "detail"));
    }
    snprintf(out, cap, "%s", msg ? msg : x->reply.body.data);
    cJSON_Delete(j);
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    ggi_scrub_secret(out, g->key);
    ggi_scrub_secret(out, e->hidden[0]);
    ggi_scrub_secret(out, e->hidden[1]);
}

/* The transfer's settings: the URL, headers and body, the reply's sinks, the timeouts, no
 * redirect (the key goes nowhere else), http and https only, and the interrupt's check. */
static void set_request(CURL *c, const openai *g, const endpoint *e, struct curl_slist *h,
                        const char *body, exchange *x, char *errbuf)
{
    curl_easy_setopt(c, CURLOPT_URL, e->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, ggi_http_reply_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &x->reply);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, ggi_http_reply_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &x->reply);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, g->connect_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, g->total_ms);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L); /* the key goes nowhere else */
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    if (x->stop) {
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, x->stop);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    }
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
}

/* An HTTP status other than 200: RETRY for 429, 408 and 5xx (the endpoint may answer
 * later), else FATAL (asking again gets the same answer), with the server's words. */
static enum outcome http_failure(const openai *g, const endpoint *e, const char *model,
                                 exchange *x, long http, int *status)
{
    char msg[SERVER_MSG_MAX];
    ggi_openai_server_message(g, e, x, msg, sizeof msg);
    const char *sep = msg[0] ? ": " : "";
    if (http == 429 || http == 408 || http >= 500) {
        *status = ggi_error(GG_EGENERATOR, "openai: %s: HTTP %ld%s%s%s", e->shown, http,
                            http == 429 ? " (rate limited)" : "", sep, msg);
        return RETRY;
    }
    x->permanent = http >= 400; /* refused as asked: asking again gets the same answer */
    if (http == 401 || http == 403)
        *status = ggi_error(GG_EGENERATOR,
                            "openai: %s: HTTP %ld: authentication failed (check "
                            "GRYPHGEN_LLM_API_KEY)%s%s",
                            e->shown, http, sep, msg);
    else if (http == 404 && !ggi_openai_v1_path(e->shown))
        /* The common first mistake: a base URL without /v1 (Ollama, vLLM and llama.cpp's
         * server all answer a bare 404 to /chat/completions). */
        *status = ggi_error(GG_EGENERATOR,
                            "openai: %s: HTTP 404%s%s (the URL has no /v1: OpenAI-compatible "
                            "servers serve /v1/chat/completions; try the base URL %.*s/v1 in "
                            "GRYPHGEN_LLM_URL)",
                            e->shown, sep, msg, (int)(strlen(e->shown) - strlen(COMPLETIONS)),
                            e->shown);
    else if (http == 404)
        *status = ggi_error(GG_EGENERATOR,
                            "openai: %s: HTTP 404 (check the URL, which should end in /v1, and "
                            "the model '%s')%s%s",
                            e->shown, model, sep, msg);
    else
        *status = ggi_error(GG_EGENERATOR, "openai: %s: HTTP %ld%s%s", e->shown, http, sep,
                            msg);
    return FATAL;
}

/* Posts body to endpoint e once; on OK, x->reply.body holds a 200 reply. */
static enum outcome post_once(const openai *g, const endpoint *e, const char *model,
                              const char *body, exchange *x, int *status, int *net_fault)
{
    *net_fault = 0;
    ggi_http_reply_reset(&x->reply);
    x->permanent = 0;
    CURL *c = curl_easy_init();
    if (!c) {
        ggi_error(GG_ENOMEM, "openai: curl_easy_init failed");
        *status = GG_ENOMEM;
        return FATAL;
    }
    struct curl_slist *h = NULL, *t;
    int ok = 1;
#define ADD_HEADER(s)                          \
    do {                                       \
        if (ok && !(t = curl_slist_append(h, s))) \
            ok = 0;                            \
        else if (ok)                           \
            h = t;                             \
    } while (0)
    ADD_HEADER("Content-Type: application/json");
    ADD_HEADER("Accept: application/json");
    ADD_HEADER("Expect:");
    if (g->auth_header)
        ADD_HEADER(g->auth_header);
#undef ADD_HEADER
    if (!ok) {
        curl_slist_free_all(h);
        curl_easy_cleanup(c);
        ggi_error(GG_ENOMEM, "out of memory");
        *status = GG_ENOMEM;
        return FATAL;
    }
    char errbuf[CURL_ERROR_SIZE];
    errbuf[0] = '\0';
    set_request(c, g, e, h, body, x, errbuf);
    CURLcode cc = curl_easy_perform(c);
    long http = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &http);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);

    if (x->reply.too_big) {
        *status = ggi_error(GG_EGENERATOR, "openai: %s: the response is larger than %u MiB",
                            e->shown, (unsigned)(GGI_OPENAI_MAX_BODY >> 20));
        return FATAL;
    }
    if (cc == CURLE_ABORTED_BY_CALLBACK) {
        *status = interrupted_error(e);
        return FATAL;
    }
    if (cc != CURLE_OK) {
        const char *what = errbuf[0] ? errbuf : curl_easy_strerror(cc);
        if (cc == CURLE_OPERATION_TIMEDOUT) {
            *net_fault = 1;
            *status = ggi_error(GG_ETIMEDOUT, "openai: %s: no complete answer within %.1f s (%s)",
                                e->shown, g->total_ms / 1000.0, what);
            return FAILOVER;
        }
        if (cc == CURLE_OUT_OF_MEMORY || cc == CURLE_WRITE_ERROR) {
            *status = ggi_error(GG_ENOMEM, "openai: out of memory reading the response");
            return FATAL;
        }
        if (cc == CURLE_UNSUPPORTED_PROTOCOL || cc == CURLE_URL_MALFORMAT) {
            x->permanent = 1;
            *status = ggi_error(GG_EGENERATOR, "openai: %s: %s", e->shown, what);
            return FATAL;
        }
        *net_fault = 1;
        *status = ggi_error(GG_EGENERATOR, "openai: %s: %s%s", e->shown,
                            cc == CURLE_PARTIAL_FILE ? "the response was cut off: " : "", what);
        return RETRY; /* refused, reset, cut off, TLS trouble: the endpoint may come back */
    }
    if (http == 200)
        return OK;
    return http_failure(g, e, model, x, http, status);
}

/* Waits ms between tries; 1 (at once) when the call is interrupted meanwhile. */
static int wait_or_stop(long ms, atomic_int *stop)
{
    while (ms > 0) {
        if (stop && atomic_load(stop))
            return 1;
        long step = ms < 20 ? ms : 20;
        ggi_sleep_ms(step);
        ms -= step;
    }
    return stop && atomic_load(stop);
}

/* Asks arm i (its endpoint with retries); 0 with the response, or the failure. *dead: the
 * endpoint counts as dead now, so the next endpoint is worth asking. */
int ggi_openai_ask_arm(openai *g, int i, const cJSON *messages, double override,
                   const cJSON *req, exchange *x, uint64_t *rng, int more_endpoints,
                   int *fatal, char **out)
{
    const arm *a = &g->arms[i];
    const endpoint *e = &g->eps[a->ep];
    double temperature = override >= 0 ? override : a->temperature;
    *fatal = 0;
    char *body = ggi_openai_body_text(g, messages, a->model, temperature);
    if (!body) {
        *fatal = 1;
        return GG_ENOMEM;
    }
    int rc = GG_EGENERATOR;
    for (int try = 0; try <= g->max_retries; try++) {
        int status = GG_OK, net_fault = 0;
        enum outcome oc = post_once(g, e, a->model, body, x, &status, &net_fault);
        if (oc == OK) {
            cJSON *aj = ggi_openai_arm_json(g, i, temperature, override >= 0);
            rc = aj ? ggi_openai_read_reply(g, e, x, req, aj, out)
                    : ggi_error(GG_ENOMEM, "out of memory building a generator response");
            cJSON_Delete(aj);
            ggi_openai_mark(g, a->ep, 0);
            *fatal = 1; /* answered: no other arm is asked, whatever the answer */
            break;
        }
        rc = status;
        if (oc == FATAL) {
            *fatal = 1;
            break;
        }
        if (oc == FAILOVER || try == g->max_retries || (more_endpoints && net_fault)) {
            /* Timed out, retries spent, or a connection error with another endpoint to go
             * to: this one counts as dead for a while. */
            ggi_openai_mark(g, a->ep, 1);
            break;
        }
        if (wait_or_stop(ggi_retry_wait_ms(try, BACKOFF_BASE_MS, BACKOFF_CAP_MS,
                                           x->reply.retry_after_s, RETRY_AFTER_CAP_S, rng),
                         x->stop)) {
            rc = interrupted_error(e);
            *fatal = 1;
            break;
        }
    }
    free(body);
    return rc;
}
