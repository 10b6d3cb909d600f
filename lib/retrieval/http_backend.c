/*
 * http_backend.c - the "http" retriever backend (http_backend.h): configuration and its
 * checks, template expansion (URL-encoded or JSON-escaped), one HTTP exchange with size cap
 * and Retry-After, the retry loop, RFC 6901 pointers, and the reading of results. The token
 * lives in the Authorization header only; every message quoted from a server is scrubbed of
 * it before it reaches an error.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "../core/ggi.h"
#include "http_backend.h"

#define DEFAULT_TIMEOUT_S 10.0
#define DEFAULT_MAX_RESPONSE ((size_t)4 << 20)
#define CONNECT_TIMEOUT_CAP_MS 5000L
#define MAX_RETRIES_CAP 10
#define BACKOFF_BASE_MS 100.0
#define BACKOFF_CAP_MS 2000.0
#define RETRY_AFTER_CAP_S 5.0
#define MAX_HEADERS 32
#define TOKEN_MAX 4096
#define SERVER_MSG_MAX 200
#define MAX_QUERY_BYTES (1u << 20)
#define MAX_K 100

typedef struct http_ret {
    char *url_tpl, *body_tpl, *feedback_url;
    int post;
    char *headers[MAX_HEADERS];
    int n_headers;
    char *token, *auth_header;
    char *ptr_results, *ptr_id, *ptr_text, *ptr_score, *ptr_source;
    long timeout_ms, connect_ms;
    int max_retries;
    size_t max_response, max_chars;
} http_ret;

static void secret_free(char *s)
{
    if (s) {
        memset(s, 0, strlen(s));
        free(s);
    }
}

static void http_destroy(void *self)
{
    http_ret *h = self;
    if (!h)
        return;
    free(h->url_tpl);
    free(h->body_tpl);
    free(h->feedback_url);
    for (int i = 0; i < h->n_headers; i++)
        free(h->headers[i]);
    secret_free(h->token);
    secret_free(h->auth_header);
    free(h->ptr_results);
    free(h->ptr_id);
    free(h->ptr_text);
    free(h->ptr_score);
    free(h->ptr_source);
    free(h);
}

/* ---- configuration ---- */

static int check_pointer(const char *name, const char *p)
{
    if (*p && *p != '/')
        return ggi_error(GG_EINVAL, "http retriever: %s '%.60s' is not a JSON pointer (it must "
                                    "be empty or start with '/')",
                         name, p);
    return GG_OK;
}

static int check_url(const char *name, const char *url)
{
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return ggi_error(GG_EINVAL, "http retriever: %s must start with http:// or https://",
                         name);
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return ggi_error(GG_EINVAL,
                             "http retriever: %s holds white space or control characters",
                             name);
    return GG_OK;
}

static int read_token_file(const char *path, char **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return ggi_error(errno == ENOENT ? GG_ENOTFOUND : GG_EIO,
                         "http retriever: cannot open the token file %s: %s", path,
                         strerror(errno));
    char *buf = malloc(TOKEN_MAX + 1);
    if (!buf) {
        fclose(f);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    size_t n = fread(buf, 1, TOKEN_MAX + 1, f);
    int err = ferror(f);
    fclose(f);
    if (err || n > TOKEN_MAX) {
        memset(buf, 0, TOKEN_MAX + 1);
        free(buf);
        return ggi_error(err ? GG_EIO : GG_ETOOBIG, "http retriever: the token file %s %s",
                         path, err ? "cannot be read" : "is larger than 4 KiB");
    }
    buf[n] = '\0';
    *out = buf;
    return GG_OK;
}

static int resolve_token(http_ret *h, const gg_retriever_options *o)
{
    char *tok = NULL;
    const char *source = NULL;
    int rc = GG_OK;
    const char *ev = o->token_env && *o->token_env ? getenv(o->token_env) : NULL;
    if (ev && *ev) {
        tok = ggi_strdup(ev);
        source = "token_env";
        if (!tok)
            return ggi_error(GG_ENOMEM, "out of memory");
    } else if (o->token_file && *o->token_file) {
        source = "token_file";
        if ((rc = read_token_file(o->token_file, &tok)))
            return rc;
    } else if (o->token_env && *o->token_env) {
        return ggi_error(GG_EINVAL,
                         "http retriever: token_env names $%.64s, which is not set (and no "
                         "token_file is given)",
                         o->token_env);
    } else {
        return GG_OK;
    }
    /* Trim white space around it; what is left must be printable ASCII. */
    size_t len = strlen(tok);
    while (len && isspace((unsigned char)tok[len - 1]))
        tok[--len] = '\0';
    size_t lead = strspn(tok, " \t\r\n");
    memmove(tok, tok + lead, len - lead + 1);
    for (const char *p = tok; *p && !rc; p++)
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
            rc = ggi_error(GG_EINVAL,
                           "http retriever: the token from %s holds white space or characters "
                           "outside printable ASCII",
                           source);
    if (!rc && !*tok)
        rc = ggi_error(GG_EINVAL, "http retriever: the token from %s is empty", source);
    if (!rc && !(h->auth_header = ggi_asprintf("Authorization: Bearer %s", tok)))
        rc = ggi_error(GG_ENOMEM, "out of memory");
    if (rc) {
        secret_free(tok);
        return rc;
    }
    h->token = tok;
    return GG_OK;
}

static int parse_headers(http_ret *h, const char *text)
{
    const char *p = text;
    while (*p) {
        size_t len = strcspn(p, "\n");
        size_t l = len;
        while (l && (p[l - 1] == '\r' || p[l - 1] == ' ' || p[l - 1] == '\t'))
            l--;
        if (l) {
            const char *colon = memchr(p, ':', l);
            if (!colon || colon == p)
                return ggi_error(GG_EINVAL, "http retriever: header line %d is not 'Name: "
                                            "value'",
                                 h->n_headers + 1);
            for (size_t i = 0; i < l; i++)
                if ((unsigned char)p[i] < 0x20 && p[i] != '\t')
                    return ggi_error(GG_EINVAL,
                                     "http retriever: a header holds control characters");
            if (h->n_headers >= MAX_HEADERS)
                return ggi_error(GG_EINVAL, "http retriever: more than %d headers",
                                 MAX_HEADERS);
            if (!(h->headers[h->n_headers] = ggi_strndup(p, l)))
                return ggi_error(GG_ENOMEM, "out of memory");
            h->n_headers++;
        }
        p += len;
        if (*p)
            p++;
    }
    return GG_OK;
}

static int dup_opt(char **dst, const char *v, const char *dflt)
{
    *dst = ggi_strdup(v ? v : dflt);
    return *dst ? GG_OK : ggi_error(GG_ENOMEM, "out of memory");
}

static int configure(http_ret *h, const gg_retriever_options *o)
{
    int rc;
    if (!o->url || !*o->url)
        return ggi_error(GG_EINVAL, "http retriever: no URL template (option url, for example "
                                    "http://127.0.0.1:8080/v1/search?q={query}&k={k})");
    if ((rc = check_url("url", o->url)) || (rc = dup_opt(&h->url_tpl, o->url, NULL)))
        return rc;
    const char *m = o->method ? o->method : "GET";
    if (strcasecmp(m, "GET") == 0)
        h->post = 0;
    else if (strcasecmp(m, "POST") == 0)
        h->post = 1;
    else
        return ggi_error(GG_EINVAL, "http retriever: method must be GET or POST");
    if (h->post && (rc = dup_opt(&h->body_tpl, o->body, GGI_HTTP_DEFAULT_BODY)))
        return rc;
    if (o->feedback_url && *o->feedback_url &&
        ((rc = check_url("feedback_url", o->feedback_url)) ||
         (rc = dup_opt(&h->feedback_url, o->feedback_url, NULL))))
        return rc;
    if (o->headers && (rc = parse_headers(h, o->headers)))
        return rc;
    if ((rc = dup_opt(&h->ptr_results, o->results_pointer, "/results")) ||
        (rc = dup_opt(&h->ptr_id, o->id_pointer, "/id")) ||
        (rc = dup_opt(&h->ptr_text, o->text_pointer, "/text")) ||
        (rc = dup_opt(&h->ptr_score, o->score_pointer, "/score")) ||
        (rc = dup_opt(&h->ptr_source, o->source_pointer, "/source")))
        return rc;
    if ((rc = check_pointer("results_pointer", h->ptr_results)) ||
        (rc = check_pointer("id_pointer", h->ptr_id)) ||
        (rc = check_pointer("text_pointer", h->ptr_text)) ||
        (rc = check_pointer("score_pointer", h->ptr_score)) ||
        (rc = check_pointer("source_pointer", h->ptr_source)))
        return rc;
    if (!(o->timeout_s >= 0 && o->timeout_s <= 3600))
        return ggi_error(GG_EINVAL, "http retriever: timeout_s must be from 0 to 3600");
    double t = o->timeout_s > 0 ? o->timeout_s : DEFAULT_TIMEOUT_S;
    h->timeout_ms = (long)ceil(t * 1000);
    h->connect_ms = h->timeout_ms < CONNECT_TIMEOUT_CAP_MS ? h->timeout_ms
                                                           : CONNECT_TIMEOUT_CAP_MS;
    h->max_retries = o->max_retries < 0 ? 0
                     : o->max_retries > MAX_RETRIES_CAP ? MAX_RETRIES_CAP
                                                        : o->max_retries;
    h->max_response = o->max_response ? o->max_response : DEFAULT_MAX_RESPONSE;
    h->max_chars = o->max_chars;
    return resolve_token(h, o);
}

/* ---- templates ---- */

static int put_urlenc(ggi_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char e[3];
        if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            if (ggi_buf_append(b, p, 1))
                return GG_ENOMEM;
            continue;
        }
        e[0] = '%';
        e[1] = hex[*p >> 4];
        e[2] = hex[*p & 15];
        if (ggi_buf_append(b, e, 3))
            return GG_ENOMEM;
    }
    return GG_OK;
}

static int put_jsonesc(ggi_buf *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int rc;
        if (*p == '"' || *p == '\\')
            rc = ggi_buf_printf(b, "\\%c", *p);
        else if (*p < 0x20)
            rc = ggi_buf_printf(b, "\\u%04x", *p);
        else
            rc = ggi_buf_append(b, p, 1);
        if (rc)
            return GG_ENOMEM;
    }
    return GG_OK;
}

/* Replaces {query}, {k} and {language} in tpl; json selects the escaping. */
static char *expand(const char *tpl, const char *query, long long k, const char *lang,
                    int json)
{
    ggi_buf b = GGI_BUF_INIT;
    int rc = ggi_buf_puts(&b, "");
    const char *p = tpl;
    while (*p && !rc) {
        if (strncmp(p, "{query}", 7) == 0) {
            rc = json ? put_jsonesc(&b, query) : put_urlenc(&b, query);
            p += 7;
        } else if (strncmp(p, "{k}", 3) == 0) {
            rc = ggi_buf_printf(&b, "%lld", k);
            p += 3;
        } else if (strncmp(p, "{language}", 10) == 0) {
            rc = json ? put_jsonesc(&b, lang ? lang : "") : put_urlenc(&b, lang ? lang : "");
            p += 10;
        } else {
            rc = ggi_buf_append(&b, p, 1);
            p++;
        }
    }
    if (rc) {
        ggi_buf_free(&b);
        return NULL;
    }
    return ggi_buf_steal(&b);
}

/* "http://user:pw@host:1/path?q#f" -> "http://host:1/path" into out. */
static void shown_url(const char *url, char *out, size_t cap)
{
    const char *host = strstr(url, "://");
    host = host ? host + 3 : url;
    const char *path = host + strcspn(host, "/?#");
    const char *at = NULL;
    for (const char *p = host; p < path; p++)
        if (*p == '@')
            at = p;
    const char *h = at ? at + 1 : host;
    snprintf(out, cap, "%.*s%.*s%.*s", (int)(host - url), url, (int)(path - h), h,
             (int)strcspn(path, "?#"), path);
}

/* ---- one exchange ---- */

typedef ggi_http_reply exchange;

static void server_words(const http_ret *h, const exchange *x, char *out, size_t cap)
{
    out[0] = '\0';
    if (!x->body.len)
        return;
    snprintf(out, cap, "%s", x->body.data);
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    ggi_scrub_secret(out, h->token);
}

static int transient_curl(CURLcode cc)
{
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        return 1;
    default:
        return 0;
    }
}

/*
 * Sends one request (POST when body is not NULL) with the retry loop; on success x->body
 * holds a 2xx reply. what names the request in errors ("search", "feedback").
 */
static int request(http_ret *h, const char *what, const char *url, const char *body,
                   exchange *x)
{
    char shown[256];
    shown_url(url, shown, sizeof shown);
    const char *verb = body ? "POST" : "GET";
    uint64_t rng = (uint64_t)(ggi_now_ms() * 1e3) ^ (uint64_t)(uintptr_t)&rng;
    for (int attempt = 0;; attempt++) {
        ggi_http_reply_reset(x);
        CURL *c = curl_easy_init();
        if (!c)
            return ggi_error(GG_ENOMEM, "http retriever: curl_easy_init failed");
        struct curl_slist *hl = NULL, *t;
        int ok = 1;
        const char *fixed[3] = { "Accept: application/json", body ? "Content-Type: "
                                                                    "application/json"
                                                                  : NULL,
                                 "Expect:" };
        for (int i = 0; i < 3 && ok; i++)
            if (fixed[i])
                ok = (t = curl_slist_append(hl, fixed[i])) ? (hl = t, 1) : 0;
        for (int i = 0; i < h->n_headers && ok; i++)
            ok = (t = curl_slist_append(hl, h->headers[i])) ? (hl = t, 1) : 0;
        if (ok && h->auth_header)
            ok = (t = curl_slist_append(hl, h->auth_header)) ? (hl = t, 1) : 0;
        if (!ok) {
            curl_slist_free_all(hl);
            curl_easy_cleanup(c);
            return ggi_error(GG_ENOMEM, "out of memory");
        }
        char errbuf[CURL_ERROR_SIZE];
        errbuf[0] = '\0';
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
        if (body) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
        }
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, ggi_http_reply_on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, ggi_http_reply_on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, h->connect_ms);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, h->timeout_ms);
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L); /* the token goes nowhere else */
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
#if LIBCURL_VERSION_NUM >= 0x075500
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
        curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
        CURLcode cc = curl_easy_perform(c);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_slist_free_all(hl);
        curl_easy_cleanup(c);
        if (cc == CURLE_OK && status >= 200 && status < 300)
            return GG_OK;
        const char *tries = attempt ? " (after retries)" : "";
        if (x->too_big)
            return ggi_error(GG_ETOOBIG,
                             "http retriever: %s %s %s: the reply is larger than %zu bytes",
                             what, verb, shown, x->cap);
        if (cc == CURLE_OPERATION_TIMEDOUT)
            return ggi_error(GG_ETIMEDOUT, "http retriever: %s %s %s: no reply within %.1f s%s",
                             what, verb, shown, h->timeout_ms / 1000.0, tries);
        int retry = cc == CURLE_OK ? (status >= 500 || status == 429) : transient_curl(cc);
        if (!retry || attempt >= h->max_retries) {
            if (cc != CURLE_OK) {
                ggi_scrub_secret(errbuf, h->token);
                return ggi_error(GG_EIO, "http retriever: %s %s %s failed: %s%s", what, verb,
                                 shown, errbuf[0] ? errbuf : curl_easy_strerror(cc), tries);
            }
            char words[SERVER_MSG_MAX];
            server_words(h, x, words, sizeof words);
            return ggi_error(GG_EIO, "http retriever: %s %s %s: HTTP %ld%s%s%s", what, verb,
                             shown, status, words[0] ? " (the server says: " : "", words,
                             words[0] ? ")" : "");
        }
        ggi_sleep_ms(ggi_retry_wait_ms(attempt, BACKOFF_BASE_MS, BACKOFF_CAP_MS,
                                       x->retry_after_s, RETRY_AFTER_CAP_S, &rng));
    }
}

/* ---- JSON pointers ---- */

const cJSON *ggi_json_pointer(const cJSON *root, const char *ptr)
{
    if (!root || !ptr)
        return NULL;
    const cJSON *cur = root;
    const char *p = ptr;
    if (*p && *p != '/')
        return NULL;
    for (int depth = 0; *p == '/' && cur; depth++) {
        if (depth > 64)
            return NULL;
        p++;
        char tok[256];
        size_t n = 0;
        while (*p && *p != '/') {
            char ch = *p++;
            if (ch == '~') {
                if (*p == '0')
                    ch = '~';
                else if (*p == '1')
                    ch = '/';
                else
                    return NULL;
                p++;
            }
            if (n + 1 >= sizeof tok)
                return NULL;
            tok[n++] = ch;
        }
        tok[n] = '\0';
        if (cJSON_IsObject(cur)) {
            cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
        } else if (cJSON_IsArray(cur)) {
            if (!n || n > 9 || (n > 1 && tok[0] == '0'))
                return NULL;
            int idx = 0;
            for (size_t i = 0; i < n; i++) {
                if (tok[i] < '0' || tok[i] > '9')
                    return NULL;
                idx = idx * 10 + (tok[i] - '0');
            }
            cur = cJSON_GetArrayItem(cur, idx);
        } else {
            return NULL;
        }
    }
    return cur;
}

/* ---- search and feedback ---- */

static int http_search(void *self, const char *query_json, char **out)
{
    http_ret *h = self;
    *out = NULL;
    size_t qlen = strlen(query_json);
    if (qlen > MAX_QUERY_BYTES)
        return ggi_error(GG_ETOOBIG, "retriever query is %zu bytes, the limit is %u", qlen,
                         MAX_QUERY_BYTES);
    cJSON *q = NULL;
    if (ggi_json_parse(query_json, qlen, &q))
        return ggi_error_wrap("retriever query: ");
    const char *text = NULL, *lang = NULL;
    long long k = 5;
    int rc = cJSON_IsObject(q) ? GG_OK
                               : ggi_error(GG_EINVAL, "retriever query must be a JSON object");
    if (!rc)
        rc = ggi_json_string(q, "text", 1, 0, &text);
    if (!rc)
        rc = ggi_json_string(q, "language", 0, 64, &lang);
    if (!rc && cJSON_GetObjectItemCaseSensitive(q, "k"))
        rc = ggi_json_int(q, "k", 1, 1, MAX_K, &k);
    if (rc) {
        cJSON_Delete(q);
        return ggi_error_wrap("retriever query: ");
    }
    char *url = expand(h->url_tpl, text, k, lang, 0);
    char *body = h->post ? expand(h->body_tpl, text, k, lang, 1) : NULL;
    cJSON_Delete(q);
    exchange x = { GGI_BUF_INIT, h->max_response, 0, -1 };
    cJSON *reply = NULL, *res = NULL;
    char shown[256] = "";
    if (!url || (h->post && !body)) {
        rc = ggi_error(GG_ENOMEM, "out of memory");
        goto done;
    }
    shown_url(url, shown, sizeof shown);
    if ((rc = request(h, "search", url, body, &x)))
        goto done;
    /* ggi_json_parse also refuses a NUL (it would cut a document's text short unseen) and
     * bytes that are not UTF-8 (they would reach prompts and results as they are). */
    if (!x.body.len || ggi_json_parse(x.body.data, x.body.len, &reply) != GG_OK) {
        char why[512]; /* the message is formatted into the buffer gg_error_last() reads */
        snprintf(why, sizeof why, "%s", x.body.len ? gg_error_last() : "an empty body");
        rc = ggi_error(GG_EIO, "http retriever: the reply of %s is not JSON: %s", shown, why);
        goto done;
    }
    const cJSON *list = ggi_json_pointer(reply, h->ptr_results);
    if (!cJSON_IsArray(list)) {
        rc = ggi_error(GG_EIO,
                       "http retriever: the reply of %s has no array at results_pointer '%.60s'",
                       shown, h->ptr_results);
        goto done;
    }
    res = cJSON_CreateObject();
    cJSON *arr = res ? cJSON_AddArrayToObject(res, "results") : NULL;
    if (!arr) {
        rc = ggi_error(GG_ENOMEM, "out of memory");
        goto done;
    }
    int seen = 0, got = 0;
    size_t used = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, list)
    {
        if (got >= k)
            break;
        seen++;
        const cJSON *id = ggi_json_pointer(it, h->ptr_id);
        const cJSON *tx = ggi_json_pointer(it, h->ptr_text);
        const cJSON *sc = ggi_json_pointer(it, h->ptr_score);
        const cJSON *so = ggi_json_pointer(it, h->ptr_source);
        char idbuf[32];
        const char *ids = cJSON_GetStringValue(id);
        if (!ids && cJSON_IsNumber(id)) {
            snprintf(idbuf, sizeof idbuf, "%.17g", id->valuedouble);
            ids = idbuf;
        }
        const char *t = cJSON_GetStringValue(tx);
        if (!ids || !t)
            continue;
        size_t tl = strlen(t);
        if (h->max_chars && used + tl > h->max_chars)
            continue;
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            rc = ggi_error(GG_ENOMEM, "out of memory");
            goto done;
        }
        if (ggi_json_add_str(o, "id", ids) || ggi_json_add_str(o, "text", t) ||
            ggi_json_add_num(o, "score", cJSON_IsNumber(sc) ? sc->valuedouble : 0.0) ||
            (cJSON_IsString(so) && ggi_json_add_str(o, "source", so->valuestring))) {
            rc = ggi_error(GG_ENOMEM, "out of memory");
            goto done;
        }
        used += tl;
        got++;
    }
    if (seen > 0 && got == 0 && !h->max_chars) {
        rc = ggi_error(GG_EIO,
                       "http retriever: none of the %d results of %s has a string or number "
                       "at id_pointer '%.40s' and a string at text_pointer '%.40s'",
                       seen, shown, h->ptr_id, h->ptr_text);
        goto done;
    }
    if (!(*out = ggi_json_print(res)))
        rc = ggi_error(GG_ENOMEM, "out of memory");
done:
    cJSON_Delete(reply);
    cJSON_Delete(res);
    ggi_buf_free(&x.body);
    free(url);
    free(body);
    return rc;
}

static int http_feedback(void *self, const char *feedback_json)
{
    http_ret *h = self;
    size_t len = strlen(feedback_json);
    if (len > MAX_QUERY_BYTES)
        return ggi_error(GG_ETOOBIG, "retriever feedback is %zu bytes, the limit is %u", len,
                         MAX_QUERY_BYTES);
    cJSON *fb = NULL;
    if (ggi_json_parse(feedback_json, len, &fb))
        return ggi_error_wrap("retriever feedback: ");
    int is_obj = cJSON_IsObject(fb);
    cJSON_Delete(fb);
    if (!is_obj)
        return ggi_error(GG_EINVAL, "retriever feedback must be a JSON object");
    if (!h->feedback_url)
        return GG_OK;
    exchange x = { GGI_BUF_INIT, 64 * 1024, 0, -1 };
    int rc = request(h, "feedback", h->feedback_url, feedback_json, &x);
    ggi_buf_free(&x.body);
    return rc;
}

int ggi_http_retriever_new(const gg_retriever_options *o, gg_retriever_vtable *vt, void **self)
{
    http_ret *h = calloc(1, sizeof *h);
    if (!h)
        return ggi_error(GG_ENOMEM, "out of memory");
    int rc = configure(h, o);
    if (rc) {
        http_destroy(h);
        return rc;
    }
    vt->search = http_search;
    vt->feedback = http_feedback;
    vt->destroy = http_destroy;
    vt->name = "http";
    *self = h;
    return GG_OK;
}
