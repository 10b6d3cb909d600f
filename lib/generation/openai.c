/*
 * openai.c - the "openai" generator backend (openai.h): configuration from options and the
 * environment, the chat-completions exchange over libcurl with timeouts, retries (backoff
 * with jitter, Retry-After) and failover across several endpoints, and the reading of the
 * reply into a generator response. The API key lives in one place, the Authorization
 * header of the request; server messages quoted in errors are scrubbed of it.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "../core/ggi.h"
#include "builtin.h"
#include "journal.h"
#include "openai.h"
#include "prompt.h"

#define DEFAULT_MAX_CODE (1024u * 1024u)
#define BACKOFF_BASE_MS 250.0
#define BACKOFF_CAP_MS 8000.0
#define RETRY_AFTER_CAP_S 30.0
#define DEAD_FOR_MS 30000.0
#define MAX_RETRIES_CAP 10
#define KEY_MAX 4096
#define SERVER_MSG_MAX 300

typedef struct endpoint {
    char *url;          /* the chat-completions URL requests go to */
    char *shown;        /* the same without credentials, query or fragment */
    char *hidden[2];    /* what shown leaves out (user info, query): scrubbed from messages */
    double dead_until;  /* ggi_now_ms() before which it is tried last; guarded by mu */
} endpoint;

typedef struct openai {
    endpoint eps[GGI_OPENAI_MAX_ENDPOINTS];
    int n_eps;
    char *model;
    char *key;          /* NULL: no Authorization header */
    char *auth_header;  /* "Authorization: Bearer <key>" */
    double temperature;
    int max_tokens;
    long long seed;
    long connect_ms, total_ms;
    int max_retries;
    size_t max_code;
    ggi_prompt_template *tpl;
    ggi_journal *journal; /* NULL: every request goes to a model */
    pthread_mutex_t mu;
    unsigned long next; /* round-robin start; guarded by mu */
} openai;

static void openai_destroy(void *self)
{
    openai *g = self;
    if (!g)
        return;
    for (int i = 0; i < g->n_eps; i++) {
        free(g->eps[i].url);
        free(g->eps[i].shown);
        free(g->eps[i].hidden[0]);
        free(g->eps[i].hidden[1]);
    }
    if (g->key) {
        memset(g->key, 0, strlen(g->key));
        free(g->key);
    }
    if (g->auth_header) {
        memset(g->auth_header, 0, strlen(g->auth_header));
        free(g->auth_header);
    }
    free(g->model);
    ggi_prompt_template_free(&g->tpl);
    ggi_journal_close(&g->journal);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

/* ---- configuration ---- */

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* "http://user:pw@host:1/v1?x#y" -> "http://host:1/v1". */
static char *shown_url(const char *url)
{
    const char *scheme_end = strstr(url, "://");
    const char *host = scheme_end ? scheme_end + 3 : url;
    const char *path = host + strcspn(host, "/?#");
    const char *at = NULL;
    for (const char *p = host; p < path; p++)
        if (*p == '@')
            at = p;
    ggi_buf b = GGI_BUF_INIT;
    int rc = ggi_buf_append(&b, url, (size_t)(host - url));
    rc = rc || ggi_buf_append(&b, at ? at + 1 : host, (size_t)(path - (at ? at + 1 : host)));
    rc = rc || ggi_buf_append(&b, path, strcspn(path, "?#"));
    if (rc) {
        ggi_buf_free(&b);
        return NULL;
    }
    return ggi_buf_steal(&b);
}

static int add_endpoint(openai *g, const char *s, size_t len, const char *source)
{
    while (len && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '/'))
        len--;
    if (!len)
        return GG_OK;
    char *base = ggi_strndup(s, len);
    if (!base)
        return ggi_error(GG_ENOMEM, "out of memory");
    int rc = GG_OK;
    for (const char *p = base; *p && !rc; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            rc = ggi_error(GG_EINVAL, "openai generator: %s holds a URL with white space or "
                                      "control characters",
                           source);
    if (!rc && strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0) {
        char *sh = shown_url(base);
        rc = ggi_error(GG_EINVAL,
                       "openai generator: %s: '%.80s' is not an http:// or https:// URL (for "
                       "example http://127.0.0.1:11434/v1)",
                       source, sh ? sh : "?");
        free(sh);
    }
    if (!rc && g->n_eps >= GGI_OPENAI_MAX_ENDPOINTS)
        rc = ggi_error(GG_EINVAL, "openai generator: %s names more than %d endpoints", source,
                       GGI_OPENAI_MAX_ENDPOINTS);
    if (rc) {
        free(base);
        return rc;
    }
    /* The path gets "/chat/completions" unless it has it; a query string stays last. */
    const char *suffix = "/chat/completions";
    size_t sl = strlen(suffix);
    const char *host = strstr(base, "://") + 3;
    size_t path_end = (size_t)(host - base) + strcspn(host, "?#");
    size_t trimmed = path_end;
    while (trimmed > (size_t)(host - base) && base[trimmed - 1] == '/')
        trimmed--;
    endpoint *e = &g->eps[g->n_eps];
    int has = trimmed >= sl && memcmp(base + trimmed - sl, suffix, sl) == 0;
    e->url = ggi_asprintf("%.*s%s%s", (int)trimmed, base, has ? "" : suffix, base + path_end);
    e->shown = e->url ? shown_url(e->url) : NULL;
    const char *at = memchr(host, '@', strcspn(host, "/?#"));
    const char *colon = at ? memchr(host, ':', (size_t)(at - host)) : NULL;
    const char *secret = colon ? colon + 1 : host;
    e->hidden[0] = at && at > secret ? ggi_strndup(secret, (size_t)(at - secret)) : NULL;
    e->hidden[1] = base[path_end] && base[path_end + 1] ? ggi_strdup(base + path_end + 1)
                                                         : NULL;
    int lost = (at && at > secret && !e->hidden[0]) ||
               (base[path_end] && base[path_end + 1] && !e->hidden[1]);
    free(base);
    if (!e->url || !e->shown || lost) {
        free(e->url);
        free(e->shown);
        free(e->hidden[0]);
        free(e->hidden[1]);
        memset(e, 0, sizeof *e);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    e->dead_until = 0;
    g->n_eps++;
    return GG_OK;
}

static int parse_urls(openai *g, const char *list, const char *source)
{
    for (const char *p = list;;) {
        size_t len = strcspn(p, ",");
        int rc = add_endpoint(g, p, len, source);
        if (rc)
            return rc;
        if (!p[len])
            break;
        p += len + 1;
    }
    if (g->n_eps == 0)
        return ggi_error(GG_EINVAL, "openai generator: %s names no endpoint", source);
    return GG_OK;
}

static int read_key_file(const char *path, const char *source, char **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return ggi_error(errno == ENOENT ? GG_ENOTFOUND : GG_EIO,
                         "openai generator: cannot open the API key file %s (%s): %s", path,
                         source, strerror(errno));
    char *buf = malloc(KEY_MAX + 1);
    if (!buf) {
        fclose(f);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    size_t n = fread(buf, 1, KEY_MAX + 1, f);
    int err = ferror(f);
    fclose(f);
    if (err || n > KEY_MAX) {
        memset(buf, 0, KEY_MAX + 1);
        free(buf);
        return ggi_error(err ? GG_EIO : GG_ETOOBIG,
                         "openai generator: the API key file %s (%s) %s", path, source,
                         err ? "cannot be read" : "is larger than 4 KiB");
    }
    buf[n] = '\0';
    *out = buf;
    return GG_OK;
}

/* Trims white space around the key and checks it can travel in a header. */
static int check_key(char *key, const char *source)
{
    size_t len = strlen(key);
    while (len && (key[len - 1] == '\n' || key[len - 1] == '\r' || key[len - 1] == ' ' ||
                   key[len - 1] == '\t'))
        key[--len] = '\0';
    size_t lead = strspn(key, " \t\r\n");
    memmove(key, key + lead, len - lead + 1);
    for (const char *p = key; *p; p++)
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
            return ggi_error(GG_EINVAL,
                             "openai generator: the API key from %s holds white space or "
                             "characters outside printable ASCII",
                             source);
    return GG_OK;
}

static int resolve_key(openai *g, const gg_generator_options *o)
{
    char *key = NULL;
    const char *source = NULL;
    int rc = GG_OK;
    const char *file = NULL, *file_source = NULL;
    if (o->api_key) {
        key = ggi_strdup(o->api_key);
        source = "option api_key";
    } else if (o->api_key_file) {
        file = o->api_key_file;
        file_source = "option api_key_file";
    } else if (env("GRYPHGEN_LLM_API_KEY")) {
        key = ggi_strdup(env("GRYPHGEN_LLM_API_KEY"));
        source = "GRYPHGEN_LLM_API_KEY";
    } else if (env("GRYPHGEN_LLM_API_KEY_FILE")) {
        file = env("GRYPHGEN_LLM_API_KEY_FILE");
        file_source = "GRYPHGEN_LLM_API_KEY_FILE";
    } else if (env("OPENAI_API_KEY")) {
        key = ggi_strdup(env("OPENAI_API_KEY"));
        source = "OPENAI_API_KEY";
    } else {
        return GG_OK; /* local servers need none */
    }
    if (file) {
        source = file_source;
        rc = read_key_file(file, file_source, &key);
        if (rc)
            return rc;
    } else if (!key) {
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    rc = check_key(key, source);
    if (!rc && *key) {
        g->auth_header = ggi_asprintf("Authorization: Bearer %s", key);
        if (!g->auth_header)
            rc = ggi_error(GG_ENOMEM, "out of memory");
    }
    if (rc || !*key) {
        memset(key, 0, strlen(key));
        free(key);
        return rc;
    }
    g->key = key;
    return GG_OK;
}

/* Reads a number from the environment variable name into *out when it is set. */
static int env_number(const char *name, double lo, double hi, double *out, int *set)
{
    *set = 0;
    const char *v = env(name);
    if (!v)
        return GG_OK;
    char *end = NULL;
    errno = 0;
    double d = strtod(v, &end);
    while (end && (*end == ' ' || *end == '\t'))
        end++;
    if (errno || end == v || *end || !isfinite(d) || d < lo || d > hi)
        return ggi_error(GG_EINVAL, "openai generator: %s='%.40s' is not a number from %g to %g",
                         name, v, lo, hi);
    *out = d;
    *set = 1;
    return GG_OK;
}

static int configure(openai *g, const gg_generator_options *o)
{
    int rc;
    const char *url = o->url, *url_source = "option url";
    if (!url && (url = env("GRYPHGEN_LLM_URL")))
        url_source = "GRYPHGEN_LLM_URL";
    if (!url && (url = env("OPENAI_BASE_URL")))
        url_source = "OPENAI_BASE_URL";
    if (!url)
        return ggi_error(GG_EINVAL, "openai generator: no endpoint URL (set GRYPHGEN_LLM_URL, "
                                    "for example http://127.0.0.1:11434/v1)");
    if ((rc = parse_urls(g, url, url_source)))
        return rc;

    const char *model = o->model ? o->model : env("GRYPHGEN_LLM_MODEL");
    if (!model || !*model)
        return ggi_error(GG_EINVAL,
                         "openai generator: no model (set GRYPHGEN_LLM_MODEL, for example "
                         "qwen2.5-coder:7b)");
    for (const char *p = model; *p; p++)
        if ((unsigned char)*p < 0x20)
            return ggi_error(GG_EINVAL, "openai generator: the model name holds control "
                                        "characters");
    if (!(g->model = ggi_strdup(model)))
        return ggi_error(GG_ENOMEM, "out of memory");

    if ((rc = resolve_key(g, o)))
        return rc;

    int set = 0;
    double d = 0;
    g->temperature = GGI_OPENAI_DEFAULT_TEMPERATURE;
    if (o->temperature >= 0 && isfinite(o->temperature))
        g->temperature = o->temperature;
    else if ((rc = env_number("GRYPHGEN_LLM_TEMPERATURE", 0, 10, &d, &set)))
        return rc;
    else if (set)
        g->temperature = d;

    if (o->max_tokens < 0)
        return ggi_error(GG_EINVAL, "openai generator: option max_tokens must not be negative");
    g->max_tokens = o->max_tokens;
    if (!g->max_tokens) {
        if ((rc = env_number("GRYPHGEN_LLM_MAX_TOKENS", 0, 1e9, &d, &set)))
            return rc;
        if (set)
            g->max_tokens = (int)d;
    }
    g->seed = o->seed;
    if (g->seed < 0) {
        if ((rc = env_number("GRYPHGEN_LLM_SEED", 0, 9007199254740991.0, &d, &set)))
            return rc;
        if (set)
            g->seed = (long long)d;
    }

    if (o->connect_timeout_s < 0 || !isfinite(o->connect_timeout_s))
        return ggi_error(GG_EINVAL,
                         "openai generator: option connect_timeout_s must not be negative");
    double ct = o->connect_timeout_s > 0 ? o->connect_timeout_s
                                         : GGI_OPENAI_DEFAULT_CONNECT_TIMEOUT_S;
    double tt = o->timeout_s > 0 ? o->timeout_s : GGI_OPENAI_DEFAULT_TIMEOUT_S;
    if (ct > 86400 || tt > 86400)
        return ggi_error(GG_EINVAL, "openai generator: timeouts above a day are not accepted");
    g->connect_ms = (long)ceil(ct * 1000);
    g->total_ms = (long)ceil(tt * 1000);
    if (g->connect_ms > g->total_ms)
        g->connect_ms = g->total_ms;
    g->max_retries = o->max_retries == 0  ? GGI_OPENAI_DEFAULT_RETRIES
                     : o->max_retries < 0 ? 0
                     : o->max_retries > MAX_RETRIES_CAP ? MAX_RETRIES_CAP
                                                        : o->max_retries;
    g->max_code = o->max_output ? o->max_output : DEFAULT_MAX_CODE;

    const char *tpl = o->prompt_template_file ? o->prompt_template_file
                                              : env("GRYPHGEN_LLM_PROMPT_FILE");
    if ((rc = ggi_prompt_template_load(tpl, &g->tpl)))
        return rc;
    const char *journal = env("GRYPHGEN_LLM_JOURNAL");
    return journal ? ggi_journal_open(journal, &g->journal) : GG_OK;
}

/* ---- one HTTP exchange ---- */

typedef struct exchange {
    ggi_buf body;
    int too_big;
    double retry_after_s; /* from the Retry-After header; negative: none */
} exchange;

static size_t on_body(char *data, size_t size, size_t nmemb, void *user)
{
    exchange *x = user;
    size_t n = size * nmemb;
    if (x->body.len + n > GGI_OPENAI_MAX_BODY) {
        x->too_big = 1;
        return 0;
    }
    return ggi_buf_append(&x->body, data, n) ? 0 : n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *user)
{
    exchange *x = user;
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
            x->retry_after_s = s; /* an HTTP date is ignored: the backoff applies */
    }
    return n;
}

/* Outcome of one try, as the retry loop sees it. */
enum outcome { OK, RETRY, FAILOVER, FATAL };

/* Overwrites every occurrence of secret in out (and, when the secret is long, every 8-byte
 * piece of it, since servers like to echo keys in part). */
static void scrub(char *out, const char *secret)
{
    size_t kl = secret ? strlen(secret) : 0;
    if (!kl)
        return;
    for (char *p = strstr(out, secret); p; p = strstr(p, secret))
        memset(p, '*', kl);
    for (size_t i = 0; kl >= 8 && i + 8 <= kl; i++)
        for (char *p = out; (p = memmem(p, strlen(p), secret + i, 8)) != NULL;)
            memset(p, '*', 8);
}

/* Copies the server's own words for an error, scrubbed of the key, the parts of the URL that
 * are not shown, and control characters. */
static void server_message(const openai *g, const endpoint *e, const exchange *x, char *out,
                           size_t cap)
{
    out[0] = '\0';
    if (!x->body.len)
        return;
    const char *msg = NULL;
    cJSON *j = cJSON_ParseWithLength(x->body.data, x->body.len);
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
    snprintf(out, cap, "%s", msg ? msg : x->body.data);
    cJSON_Delete(j);
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    scrub(out, g->key);
    scrub(out, e->hidden[0]);
    scrub(out, e->hidden[1]);
}

/* Posts body to endpoint e once; on OK, x->body holds a 200 reply. */
static enum outcome post_once(const openai *g, const endpoint *e, const char *body,
                              exchange *x, int *status, int *net_fault)
{
    *net_fault = 0;
    ggi_buf_free(&x->body);
    x->too_big = 0;
    x->retry_after_s = -1;
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
    curl_easy_setopt(c, CURLOPT_URL, e->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, g->connect_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, g->total_ms);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L); /* the key goes nowhere else */
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    CURLcode cc = curl_easy_perform(c);
    long http = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &http);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);

    if (x->too_big) {
        *status = ggi_error(GG_EGENERATOR, "openai: %s: the response is larger than %u MiB",
                            e->shown, (unsigned)(GGI_OPENAI_MAX_BODY >> 20));
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
    char msg[SERVER_MSG_MAX];
    server_message(g, e, x, msg, sizeof msg);
    const char *sep = msg[0] ? ": " : "";
    if (http == 429 || http >= 500) {
        *status = ggi_error(GG_EGENERATOR, "openai: %s: HTTP %ld%s%s%s", e->shown, http,
                            http == 429 ? " (rate limited)" : "", sep, msg);
        return RETRY;
    }
    if (http == 401 || http == 403)
        *status = ggi_error(GG_EGENERATOR,
                            "openai: %s: HTTP %ld: authentication failed (check "
                            "GRYPHGEN_LLM_API_KEY)%s%s",
                            e->shown, http, sep, msg);
    else if (http == 404)
        *status = ggi_error(GG_EGENERATOR,
                            "openai: %s: HTTP 404 (check the URL, which should end in /v1, and "
                            "the model '%s')%s%s",
                            e->shown, g->model, sep, msg);
    else
        *status = ggi_error(GG_EGENERATOR, "openai: %s: HTTP %ld%s%s", e->shown, http, sep,
                            msg);
    return FATAL;
}

/* ---- endpoint choice ---- */

/*
 * The order in which this request tries the endpoints: the healthy ones round-robin from a
 * shared counter, then those marked dead, soonest back first. This is the hook for a learned
 * strategy (a bandit over endpoint, model and temperature scored by task outcomes): it would
 * fill order[] from its scores instead.
 */
static void pick_order(openai *g, int order[GGI_OPENAI_MAX_ENDPOINTS])
{
    double now = ggi_now_ms();
    pthread_mutex_lock(&g->mu);
    unsigned long start = g->next++;
    int k = 0;
    for (int i = 0; i < g->n_eps; i++) {
        int j = (int)((start + (unsigned long)i) % (unsigned long)g->n_eps);
        if (g->eps[j].dead_until <= now)
            order[k++] = j;
    }
    int first_dead = k;
    for (int i = 0; i < g->n_eps; i++)
        if (g->eps[i].dead_until > now)
            order[k++] = i;
    for (int i = first_dead + 1; i < k; i++) /* a few entries: insertion sort */
        for (int j = i; j > first_dead && g->eps[order[j]].dead_until <
                                               g->eps[order[j - 1]].dead_until;
             j--) {
            int tmp = order[j];
            order[j] = order[j - 1];
            order[j - 1] = tmp;
        }
    pthread_mutex_unlock(&g->mu);
}

static void mark(openai *g, int i, int dead)
{
    pthread_mutex_lock(&g->mu);
    g->eps[i].dead_until = dead ? ggi_now_ms() + DEAD_FOR_MS : 0;
    pthread_mutex_unlock(&g->mu);
}

static double backoff_ms(int attempt, unsigned *rng)
{
    double d = BACKOFF_BASE_MS;
    for (int i = 0; i < attempt && d < BACKOFF_CAP_MS; i++)
        d *= 2;
    if (d > BACKOFF_CAP_MS)
        d = BACKOFF_CAP_MS;
    *rng = *rng * 1103515245u + 12345u;
    double u = (double)((*rng >> 8) & 0xFFFF) / 65536.0;
    return d / 2 + u * d / 2; /* jitter: somewhere in the upper half */
}

/* ---- the reply ---- */

static int read_reply(const openai *g, const endpoint *e, const exchange *x, const cJSON *task,
                      char **out)
{
    cJSON *j = cJSON_ParseWithLength(x->body.data ? x->body.data : "", x->body.len);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return ggi_error(GG_EGENERATOR,
                         "openai: %s: the response is not a JSON object (%zu bytes; malformed "
                         "or cut off)",
                         e->shown, x->body.len);
    }
    int rc = GG_OK;
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(j, "choices");
    const cJSON *c0 = cJSON_GetArrayItem(choices, 0);
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(c0, "message");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
    if (!cJSON_IsArray(choices) || !c0) {
        char smsg[SERVER_MSG_MAX];
        server_message(g, e, x, smsg, sizeof smsg);
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
        rc = ggi_error(GG_EGENERATOR, "openai: %s: the response has no choices%s%s", e->shown,
                       err ? ": " : "", err ? smsg : "");
    } else if (!cJSON_IsObject(msg)) {
        rc = ggi_error(GG_EGENERATOR, "openai: %s: the response's choices[0] has no message",
                       e->shown);
    } else if (!cJSON_IsString(content) || !content->valuestring) {
        rc = ggi_error(GG_EGENERATOR,
                       "openai: %s: the response's choices[0].message has no content string",
                       e->shown);
    }
    char *code = NULL;
    if (!rc) {
        const char *lang = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(task,
                                                                                  "language"));
        const char *entry =
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(task, "entry_point"));
        code = ggi_prompt_extract_code(content->valuestring, entry, lang);
        if (!code)
            rc = ggi_error(GG_ENOMEM, "out of memory");
        else if (!code[strspn(code, " \t\r\n")])
            rc = ggi_error(GG_EGENERATOR, "openai: %s: the model's answer holds no code",
                           e->shown);
        else if (strlen(code) > g->max_code)
            rc = ggi_error(GG_ETOOBIG, "openai: %s: the code is %zu bytes, the limit is %zu",
                           e->shown, strlen(code), g->max_code);
    }
    cJSON *r = NULL;
    if (!rc) {
        const char *model = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "model"));
        const char *finish =
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c0, "finish_reason"));
        r = cJSON_CreateObject();
        int bad = !r || ggi_json_add_str(r, "code", code) ||
                  ggi_json_add_str(r, "generator", "openai") ||
                  ggi_json_add_str(r, "model", model ? model : g->model) ||
                  ggi_json_add_str(r, "endpoint", e->shown) ||
                  ggi_json_add_str(r, "finish_reason", finish);
        const cJSON *usage = cJSON_GetObjectItemCaseSensitive(j, "usage");
        if (!bad && cJSON_IsObject(usage)) {
            cJSON *u = cJSON_AddObjectToObject(r, "usage");
            static const char *const keys[] = { "prompt_tokens", "completion_tokens",
                                                "total_tokens" };
            bad = !u;
            for (size_t i = 0; !bad && i < 3; i++) {
                const cJSON *v = cJSON_GetObjectItemCaseSensitive(usage, keys[i]);
                if (cJSON_IsNumber(v) && v->valuedouble >= 0)
                    bad = ggi_json_add_num(u, keys[i], v->valuedouble);
            }
        }
        if (!bad && !(*out = ggi_json_print(r)))
            bad = 1;
        if (bad)
            rc = ggi_error(GG_ENOMEM, "out of memory building a generator response");
    }
    cJSON_Delete(r);
    free(code);
    cJSON_Delete(j);
    return rc;
}

/* ---- generate ---- */

static char *request_body(const openai *g, const cJSON *req)
{
    cJSON *messages = NULL;
    if (ggi_prompt_messages(g->tpl, req, &messages))
        return NULL;
    cJSON *b = cJSON_CreateObject();
    int bad = !b || ggi_json_add_str(b, "model", g->model);
    if (!bad)
        cJSON_AddItemToObject(b, "messages", messages);
    else
        cJSON_Delete(messages);
    /* The Task Monitor asks for another temperature after a stuck loop. */
    double temp = g->temperature;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(req, "strategy");
    double want = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(st, "temperature"));
    if (isfinite(want) && want >= 0 && want <= 2)
        temp = want;
    bad = bad || ggi_json_add_num(b, "temperature", temp);
    if (!bad && g->max_tokens > 0)
        bad = ggi_json_add_num(b, "max_tokens", g->max_tokens);
    if (!bad && g->seed >= 0)
        bad = ggi_json_add_num(b, "seed", (double)g->seed);
    bad = bad || ggi_json_add_bool(b, "stream", 0);
    char *s = bad ? NULL : ggi_json_print(b);
    cJSON_Delete(b);
    if (!s)
        ggi_error(GG_ENOMEM, "out of memory building a model request");
    return s;
}

/* A response recorded for exactly this request body, marked "journal": true. A journal that
 * fails is passed by: the model is asked instead. */
static int journal_hit(const openai *g, const char *body, char **out)
{
    char *text = NULL;
    if (ggi_journal_get(g->journal, body, &text) != GG_OK)
        return 0;
    cJSON *r = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(r) || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(r, "code")) ||
        ggi_json_add_bool(r, "journal", 1) || !(*out = ggi_json_print(r))) {
        cJSON_Delete(r);
        return 0;
    }
    cJSON_Delete(r);
    gg_error_clear();
    return 1;
}

static int openai_generate(void *self, const char *request_json, char **out_response_json)
{
    openai *g = self;
    cJSON *req = NULL;
    const cJSON *task = NULL;
    const char *id = NULL;
    int attempt = 0;
    int rc = ggi_generator_read_request(request_json, &req, &task, &id, &attempt);
    if (rc)
        return rc;
    char *body = request_body(g, req);
    if (!body) {
        cJSON_Delete(req);
        return gg_error_last_code() ? gg_error_last_code() : GG_ENOMEM;
    }
    if (g->journal && journal_hit(g, body, out_response_json)) {
        free(body);
        cJSON_Delete(req);
        return GG_OK;
    }
    int order[GGI_OPENAI_MAX_ENDPOINTS];
    pick_order(g, order);
    unsigned rng = (unsigned)((unsigned long)ggi_now_ms() ^ (unsigned long)(uintptr_t)&rng);
    exchange x = { GGI_BUF_INIT, 0, -1 };
    rc = GG_EGENERATOR;
    int done = 0;
    for (int k = 0; k < g->n_eps && !done; k++) {
        const endpoint *e = &g->eps[order[k]];
        int more_endpoints = k + 1 < g->n_eps;
        for (int try = 0; try <= g->max_retries; try++) {
            int status = GG_OK, net_fault = 0;
            enum outcome oc = post_once(g, e, body, &x, &status, &net_fault);
            if (oc == OK) {
                rc = read_reply(g, e, &x, task, out_response_json);
                mark(g, order[k], 0);
                done = 1;
                break;
            }
            rc = status;
            if (oc == FATAL) {
                done = 1;
                break;
            }
            if (oc == FAILOVER || try == g->max_retries || (more_endpoints && net_fault)) {
                /* Timed out, retries spent, or a connection error with another endpoint to
                 * go to: this one counts as dead for a while. */
                mark(g, order[k], 1);
                break;
            }
            double wait = backoff_ms(try, &rng);
            if (x.retry_after_s >= 0)
                wait = (x.retry_after_s > RETRY_AFTER_CAP_S ? RETRY_AFTER_CAP_S
                                                            : x.retry_after_s) * 1000.0;
            ggi_sleep_ms(wait);
        }
    }
    if (rc && !done && g->n_eps > 1)
        rc = ggi_error_wrap("openai: all %d endpoints failed; the last: ", g->n_eps);
    if (!rc && g->journal)
        ggi_journal_put(g->journal, body, *out_response_json); /* best effort */
    ggi_buf_free(&x.body);
    free(body);
    cJSON_Delete(req);
    return rc;
}

int ggi_openai_generator_new(const gg_generator_options *opts, gg_generator_vtable *vt_out,
                             void **self_out)
{
    *self_out = NULL;
    openai *g = calloc(1, sizeof *g);
    if (!g)
        return ggi_error(GG_ENOMEM, "out of memory creating the openai generator");
    if (pthread_mutex_init(&g->mu, NULL) != 0) {
        free(g);
        return ggi_error(GG_ENOMEM, "cannot create a mutex");
    }
    gg_generator_options d = GG_GENERATOR_OPTIONS_INIT;
    int rc = configure(g, opts ? opts : &d);
    if (rc) {
        openai_destroy(g);
        return rc;
    }
    gg_generator_vtable vt = GG_GENERATOR_VTABLE_INIT;
    vt.generate = openai_generate;
    vt.destroy = openai_destroy;
    vt.name = "openai";
    *vt_out = vt;
    *self_out = g;
    return GG_OK;
}
