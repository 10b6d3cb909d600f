/*
 * openai.c - the "openai" generator backend (openai.h): configuration from options and the
 * environment, the arms (endpoint x model x temperature) among which the strategy bandit
 * (strategy.h) chooses for each request, the chat-completions exchange over libcurl with
 * timeouts, retries (backoff with jitter, Retry-After) and failover to the next endpoint,
 * the reading of the reply into a generator response, and the feedback that teaches the
 * bandit. The API key lives in one place, the Authorization header of the request; server
 * messages quoted in errors are scrubbed of it.
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

#define DEFAULT_MAX_CODE (1024u * 1024u)
#define BACKOFF_BASE_MS 250.0
#define BACKOFF_CAP_MS 8000.0
#define RETRY_AFTER_CAP_S 30.0
#define DEAD_FOR_MS 30000.0
#define MAX_RETRIES_CAP 10
#define KEY_MAX 4096
#define SERVER_MSG_MAX 300
#define MAX_TEMPERATURES 8
#define MAX_MODELS 16
#define MODEL_MAX 256

typedef struct endpoint {
    char *url;          /* the chat-completions URL requests go to */
    char *shown;        /* the same without credentials, query or fragment */
    char *hidden[2];    /* what shown leaves out (user info, query): scrubbed from messages */
    double dead_until;  /* ggi_now_ms() before which it is tried last; guarded by mu */
} endpoint;

/* One strategy: an endpoint, a model it serves and a temperature. */
typedef struct arm {
    int ep;             /* index into eps */
    char *model;
    double temperature;
    char *key;          /* "shown URL|model|temperature": its row in llm_arms */
} arm;

typedef struct openai {
    endpoint eps[GGI_OPENAI_MAX_ENDPOINTS];
    int n_eps;
    arm arms[GGI_BANDIT_MAX_ARMS];
    int n_arms;
    int one_pair;       /* every arm has the same model and temperature */
    ggi_bandit *bandit;
    double cost_per_s;  /* tokens a second of latency is worth in the bandit's cost */
    char *model;        /* the first arm's, for messages */
    char *key;          /* NULL: no Authorization header */
    char *auth_header;  /* "Authorization: Bearer <key>" */
    double temperature;
    int max_tokens;
    long long seed;
    long connect_ms, total_ms;
    int max_retries;
    size_t max_code;
    ggi_prompt_template *tpl;
    ggi_journal *journal; /* NULL: every request goes to a model; set once, under mu */
    ggi_redactor *redactor; /* secrets taken out of context and feedback (redact.h) */
    pthread_mutex_t mu;
    struct call *calls;   /* the generate calls in progress (under mu), for interrupt */
} openai;

/* A generate call in progress: interrupt sets stop, which the transfer and the waits between
 * tries look at. */
typedef struct call {
    const char *task_id;  /* the request's, or NULL */
    atomic_int stop;
    struct call *next;
} call;

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
    for (int i = 0; i < g->n_arms; i++) {
        free(g->arms[i].model);
        free(g->arms[i].key);
    }
    ggi_bandit_free(&g->bandit);
    free(g->model);
    ggi_prompt_template_free(&g->tpl);
    ggi_journal_close(&g->journal);
    ggi_redactor_free(&g->redactor);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

/* ---- configuration ---- */

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

#define COMPLETIONS "/chat/completions"

/* Whether a shown URL (path ending in /chat/completions) has /v1 before that ending. */
static int v1_path(const char *shown)
{
    size_t n = strlen(shown), cl = strlen(COMPLETIONS);
    if (n < cl || strcmp(shown + n - cl, COMPLETIONS) != 0)
        return 1; /* not ours to judge */
    return n >= cl + 3 && memcmp(shown + n - cl - 3, "/v1", 3) == 0;
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
    const char *suffix = COMPLETIONS;
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

/* Splits list at sep into at most max trimmed, non-empty, malloc'd items. */
static int split_items(const char *list, char sep, char **items, int max, int *n,
                       const char *source)
{
    *n = 0;
    for (const char *p = list;;) {
        const char *end = strchr(p, sep);
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *q = p;
        while (len && (*q == ' ' || *q == '\t' || *q == '\n')) {
            q++;
            len--;
        }
        while (len && (q[len - 1] == ' ' || q[len - 1] == '\t' || q[len - 1] == '\n'))
            len--;
        if (len) {
            if (*n >= max)
                return ggi_error(GG_EINVAL, "openai generator: %s names more than %d items",
                                 source, max);
            if (!(items[*n] = ggi_strndup(q, len)))
                return ggi_error(GG_ENOMEM, "out of memory");
            (*n)++;
        }
        if (!end)
            return GG_OK;
        p = end + 1;
    }
}

static void free_items(char **items, int n)
{
    for (int i = 0; i < n; i++)
        free(items[i]);
}

static int check_model(const char *model, const char *source)
{
    if (strlen(model) > MODEL_MAX)
        return ggi_error(GG_EINVAL, "openai generator: %s: a model name is longer than %d "
                                    "bytes", source, MODEL_MAX);
    for (const char *p = model; *p; p++)
        if ((unsigned char)*p < 0x20)
            return ggi_error(GG_EINVAL, "openai generator: the model name holds control "
                                        "characters");
    return GG_OK;
}

/* Reads a comma-separated list of temperatures from 0 to 10. */
static int parse_temperatures(const char *list, const char *source, double *out, int *n)
{
    char *items[MAX_TEMPERATURES];
    int k = 0;
    int rc = split_items(list, ',', items, MAX_TEMPERATURES, &k, source);
    *n = 0;
    for (int i = 0; !rc && i < k; i++) {
        char *end = NULL;
        errno = 0;
        double d = strtod(items[i], &end);
        if (errno || end == items[i] || *end || !isfinite(d) || d < 0 || d > 10)
            rc = ggi_error(GG_EINVAL, "openai generator: %s: '%.20s' is not a temperature "
                                      "from 0 to 10", source, items[i]);
        else
            out[(*n)++] = d;
    }
    free_items(items, k);
    if (!rc && !*n)
        rc = ggi_error(GG_EINVAL, "openai generator: %s names no temperature", source);
    return rc;
}

static int add_arm(openai *g, int ep, const char *model, double temperature,
                   const char *source)
{
    if (g->n_arms >= GGI_BANDIT_MAX_ARMS)
        return ggi_error(GG_EINVAL, "openai generator: %s makes more than %d arms (endpoints "
                                    "x models x temperatures)", source, GGI_BANDIT_MAX_ARMS);
    arm *a = &g->arms[g->n_arms];
    a->ep = ep;
    a->temperature = temperature;
    a->model = ggi_strdup(model);
    a->key = ggi_asprintf("%s|%s|%g", g->eps[ep].shown, model, temperature);
    if (!a->model || !a->key) {
        free(a->model);
        free(a->key);
        memset(a, 0, sizeof *a);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    g->n_arms++;
    return GG_OK;
}

/*
 * The arms: the entries of GRYPHGEN_LLM_ARMS ("N MODEL [T,T...]; ..." with N the 1-based
 * endpoint), else every endpoint with every model of the list with every temperature.
 */
static int build_arms(openai *g, const char *spec, const char *src, const char *models,
                      const char *model_source, const double *temps, int n_temps)
{
    int rc = GG_OK;
    if (spec) {
        char *entries[GGI_BANDIT_MAX_ARMS];
        int n = 0;
        rc = split_items(spec, ';', entries, GGI_BANDIT_MAX_ARMS, &n, src);
        for (int i = 0; !rc && i < n; i++) {
            char *save = NULL;
            char *idx = strtok_r(entries[i], " \t", &save);
            char *model = idx ? strtok_r(NULL, " \t", &save) : NULL;
            char *tl = model ? strtok_r(NULL, " \t", &save) : NULL;
            char *extra = tl ? strtok_r(NULL, " \t", &save) : NULL;
            char *end = NULL;
            long ep = idx ? strtol(idx, &end, 10) : 0;
            if (!model || extra || !end || *end || ep < 1 || ep > g->n_eps) {
                rc = ggi_error(GG_EINVAL,
                               "openai generator: %s entry %d must be 'N MODEL [T,T...]' with "
                               "N an endpoint from 1 to %d", src, i + 1, g->n_eps);
                break;
            }
            double t[MAX_TEMPERATURES];
            int nt = n_temps;
            memcpy(t, temps, (size_t)n_temps * sizeof *t);
            if (!(rc = check_model(model, src)) && tl)
                rc = parse_temperatures(tl, src, t, &nt);
            for (int k = 0; !rc && k < nt; k++)
                rc = add_arm(g, (int)ep - 1, model, t[k], src);
        }
        free_items(entries, n);
        if (!rc && !g->n_arms)
            rc = ggi_error(GG_EINVAL, "openai generator: %s names no arm", src);
    } else {
        char *names[MAX_MODELS];
        int n = 0;
        rc = split_items(models, ',', names, MAX_MODELS, &n, model_source);
        for (int i = 0; !rc && i < n; i++)
            rc = check_model(names[i], model_source);
        for (int e = 0; !rc && e < g->n_eps; e++)
            for (int m = 0; !rc && m < n; m++)
                for (int k = 0; !rc && k < n_temps; k++)
                    rc = add_arm(g, e, names[m], temps[k], model_source);
        free_items(names, n);
        if (!rc && !g->n_arms)
            rc = ggi_error(GG_EINVAL, "openai generator: %s names no model", model_source);
    }
    if (rc)
        return rc;
    g->one_pair = 1;
    for (int i = 1; i < g->n_arms; i++)
        if (strcmp(g->arms[i].model, g->arms[0].model) != 0 ||
            g->arms[i].temperature != g->arms[0].temperature)
            g->one_pair = 0;
    if (!(g->model = ggi_strdup(g->arms[0].model)))
        return ggi_error(GG_ENOMEM, "out of memory");
    return GG_OK;
}

/* Adds what the bandit learnt before the journal was there to the journal's rows, then
 * takes the rows (this and earlier runs) as the bandit's knowledge. */
static void load_arms(openai *g, ggi_journal *j)
{
    for (int i = 0; i < g->n_arms; i++) {
        ggi_arm_stats mine, stored;
        ggi_bandit_get(g->bandit, i, &mine);
        if (mine.n > 0 || mine.cost_n > 0)
            ggi_journal_arm_add(j, g->arms[i].key, &mine);
        if (ggi_journal_arm_get(j, g->arms[i].key, &stored) == GG_OK)
            ggi_bandit_set(g->bandit, i, &stored);
    }
    gg_error_clear();
}

/* The bandit: the cost of a second and the seed of its draws, each from the option when the
 * host set it (not negative), else the environment, else the default. */
static int bandit_settings(openai *g, const gg_generator_options *o)
{
    int rc, set = 0;
    double d = 0;
    if (!(o->cost_per_second < 0) && !(o->cost_per_second <= 1e9))
        return ggi_error(GG_EINVAL, "openai generator: option cost_per_second must be a "
                                    "number from 0 to 1e9");
    if (o->cost_per_second >= 0) {
        g->cost_per_s = o->cost_per_second;
    } else {
        if ((rc = env_number("GRYPHGEN_LLM_COST_PER_SECOND", 0, 1e9, &d, &set)))
            return rc;
        g->cost_per_s = set ? d : 0;
    }
    uint64_t seed = 0;
    if (o->bandit_seed >= 0) {
        seed = (uint64_t)o->bandit_seed;
    } else {
        if ((rc = env_number("GRYPHGEN_LLM_BANDIT_SEED", 0, 9007199254740991.0, &d, &set)))
            return rc;
        seed = set ? (uint64_t)d : 0;
    }
    return ggi_bandit_new(g->n_arms, seed, &g->bandit);
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
    const char *model_source = o->model ? "option model" : "GRYPHGEN_LLM_MODEL";
    /* Each setting: the option set by the host, else the environment, else the default. */
    const char *arms = o->arms ? o->arms : env("GRYPHGEN_LLM_ARMS");
    const char *arms_source = o->arms ? "option arms" : "GRYPHGEN_LLM_ARMS";
    if ((!model || !*model) && !arms)
        return ggi_error(GG_EINVAL,
                         "openai generator: no model (set GRYPHGEN_LLM_MODEL, for example "
                         "qwen2.5-coder:7b)");

    if ((rc = resolve_key(g, o)))
        return rc;

    int set = 0;
    double d = 0;
    g->temperature = GGI_OPENAI_DEFAULT_TEMPERATURE;
    double temps[MAX_TEMPERATURES];
    int n_temps = 0;
    if (o->temperature >= 0 && isfinite(o->temperature))
        g->temperature = o->temperature;
    else if (env("GRYPHGEN_LLM_TEMPERATURES")) {
        if ((rc = parse_temperatures(env("GRYPHGEN_LLM_TEMPERATURES"),
                                     "GRYPHGEN_LLM_TEMPERATURES", temps, &n_temps)))
            return rc;
        g->temperature = temps[0];
    } else if ((rc = env_number("GRYPHGEN_LLM_TEMPERATURE", 0, 10, &d, &set)))
        return rc;
    else if (set)
        g->temperature = d;
    if (!n_temps)
        temps[n_temps++] = g->temperature;
    if ((rc = build_arms(g, arms, arms_source, model ? model : "", model_source, temps,
                         n_temps)))
        return rc;
    if ((rc = bandit_settings(g, o)))
        return rc;

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
    /* An option set by the host wins; else the environment; else the default. */
    double ct = o->connect_timeout_s, tt = o->timeout_s;
    if (!(ct > 0)) {
        if ((rc = env_number("GRYPHGEN_LLM_CONNECT_TIMEOUT_S", 0.001, 86400, &d, &set)))
            return rc;
        ct = set ? d : GGI_OPENAI_DEFAULT_CONNECT_TIMEOUT_S;
    }
    if (!(tt > 0)) {
        if ((rc = env_number("GRYPHGEN_LLM_TIMEOUT_S", 0.001, 86400, &d, &set)))
            return rc;
        tt = set ? d : GGI_OPENAI_DEFAULT_TIMEOUT_S;
    }
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
    const char *journal = o->journal ? o->journal : env("GRYPHGEN_LLM_JOURNAL");
    if (journal && !*journal)
        return ggi_error(GG_EINVAL, "openai generator: %s is empty: give a file path",
                         o->journal ? "option journal" : "GRYPHGEN_LLM_JOURNAL");
    if (journal && (rc = ggi_journal_open(journal, &g->journal)))
        return rc;
    if (g->journal)
        load_arms(g, g->journal);
    return GG_OK;
}

/* ---- one HTTP exchange ---- */

typedef struct exchange {
    ggi_http_reply reply;
    int permanent; /* the failure would be the same if asked again (HTTP 4xx) */
    atomic_int *stop; /* set: the call was interrupted */
} exchange;

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

/* Outcome of one try, as the retry loop sees it. */
enum outcome { OK, RETRY, FAILOVER, FATAL };

/* Copies the server's own words for an error, scrubbed of the key, the parts of the URL that
 * are not shown, and control characters. */
static void server_message(const openai *g, const endpoint *e, const exchange *x, char *out,
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
    server_message(g, e, x, msg, sizeof msg);
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
    else if (http == 404 && !v1_path(e->shown))
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

/* ---- arm choice ---- */

/*
 * The order in which this request tries the arms: the bandit's Thompson draw ranks them
 * (strategy.h); arms on endpoints marked dead go after the others, soonest back first.
 */
static void pick_order(openai *g, int order[GGI_BANDIT_MAX_ARMS])
{
    int ranked[GGI_BANDIT_MAX_ARMS];
    ggi_bandit_order(g->bandit, ranked);
    double now = ggi_now_ms();
    double until[GGI_BANDIT_MAX_ARMS];
    pthread_mutex_lock(&g->mu);
    for (int i = 0; i < g->n_arms; i++)
        until[i] = g->eps[g->arms[i].ep].dead_until;
    pthread_mutex_unlock(&g->mu);
    int k = 0;
    for (int i = 0; i < g->n_arms; i++)
        if (until[ranked[i]] <= now)
            order[k++] = ranked[i];
    int first_dead = k;
    for (int i = 0; i < g->n_arms; i++)
        if (until[ranked[i]] > now)
            order[k++] = ranked[i];
    for (int i = first_dead + 1; i < k; i++) /* a few entries: insertion sort, stable */
        for (int j = i; j > first_dead && until[order[j]] < until[order[j - 1]]; j--) {
            int tmp = order[j];
            order[j] = order[j - 1];
            order[j - 1] = tmp;
        }
}

static void mark(openai *g, int i, int dead)
{
    pthread_mutex_lock(&g->mu);
    g->eps[i].dead_until = dead ? ggi_now_ms() + DEAD_FOR_MS : 0;
    pthread_mutex_unlock(&g->mu);
}

/* ---- the reply ---- */

static int read_reply(const openai *g, const endpoint *e, const exchange *x, const cJSON *req,
                      const cJSON *arm_json, char **out)
{
    const cJSON *task = cJSON_GetObjectItemCaseSensitive(req, "task");
    /* ggi_json_parse also refuses a NUL or bytes that are not UTF-8 in any string: cJSON
     * alone would end the code at the NUL, and the program run would not be the model's. */
    cJSON *j = NULL;
    if (ggi_json_parse(x->reply.body.data ? x->reply.body.data : "", x->reply.body.len, &j) !=
            GG_OK ||
        !cJSON_IsObject(j)) {
        char why[512];
        snprintf(why, sizeof why, "%s", j ? "another JSON value" : gg_error_last());
        cJSON_Delete(j);
        return ggi_error(GG_EGENERATOR,
                         "openai: %s: the response is not a JSON object (%zu bytes): %s",
                         e->shown, x->reply.body.len, why);
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
    char *code = NULL, *answer = NULL;
    cJSON *cited = NULL;
    /* The "CITED:" lines the prompt asks for are taken out before the code is. */
    if (!rc)
        rc = ggi_citations_take(content->valuestring,
                                cJSON_GetObjectItemCaseSensitive(req, "context"), &answer, &cited);
    if (!rc) {
        const char *lang = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(task,
                                                                                  "language"));
        const char *entry =
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(task, "entry_point"));
        const cJSON *ws = cJSON_GetObjectItemCaseSensitive(task, "workspace");
        /* A workspace task's answer is a diff or whole files: kept as the model wrote it
         * (the patch reader takes it out of fences and prose itself, patch.h). */
        code = cJSON_IsObject(ws) ? ggi_strdup(answer)
                                  : ggi_prompt_extract_code(answer, entry, lang);
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
        if (!model) /* the server did not say: the one asked for */
            model = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(arm_json, "model"));
        const char *finish =
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c0, "finish_reason"));
        r = cJSON_CreateObject();
        int bad = !r || ggi_json_add_str(r, "code", code) ||
                  ggi_json_add_str(r, "generator", "openai") ||
                  ggi_json_add_str(r, "model", model ? model : g->model) ||
                  ggi_json_add_str(r, "endpoint", e->shown) ||
                  ggi_json_add_str(r, "finish_reason", finish);
        if (!bad && cJSON_GetArraySize(cited) > 0) {
            if (cJSON_AddItemToObject(r, "cited", cited))
                cited = NULL;
            else
                bad = 1;
        }
        cJSON *armj = bad ? NULL : cJSON_Duplicate(arm_json, 1);
        if (!bad && (!armj || !cJSON_AddItemToObject(r, "arm", armj))) {
            cJSON_Delete(armj);
            bad = 1;
        }
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
    cJSON_Delete(cited);
    free(answer);
    free(code);
    cJSON_Delete(j);
    return rc;
}

/* ---- generate ---- */

/* The prompt's messages for req (cJSON_Delete them); *override gets the temperature the
 * Task Monitor's strategy asks for after a stuck loop, or -1. */
static cJSON *body_messages(const openai *g, const cJSON *req, double *override)
{
    *override = -1;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(req, "strategy");
    double want = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(st, "temperature"));
    if (isfinite(want) && want >= 0 && want <= 2)
        *override = want;
    cJSON *messages = NULL;
    if (ggi_prompt_messages(g->tpl, req, &messages))
        return NULL;
    return messages;
}

/* The request body for model and temperature (negative: left out) around messages. */
static char *body_text(const openai *g, const cJSON *messages, const char *model,
                       double temperature)
{
    cJSON *b = cJSON_CreateObject();
    int bad = !b || ggi_json_add_str(b, "model", model) ||
              !cJSON_AddItemReferenceToObject(b, "messages", (cJSON *)messages);
    if (!bad && temperature >= 0)
        bad = ggi_json_add_num(b, "temperature", temperature);
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

/*
 * The text the journal knows this request by: with a single model and temperature the body
 * itself; with several arms the body with the list of the arms' model@temperature pairs in
 * place of the model, so that whichever arm answered, a rerun finds the answer.
 */
static char *journal_key(const openai *g, const cJSON *messages, double override)
{
    if (g->one_pair)
        return body_text(g, messages, g->arms[0].model,
                         override >= 0 ? override : g->arms[0].temperature);
    ggi_buf sig = GGI_BUF_INIT;
    int bad = 0;
    for (int i = 0; i < g->n_arms && !bad; i++) {
        int seen = 0;
        for (int k = 0; k < i && !seen; k++)
            seen = strcmp(g->arms[k].model, g->arms[i].model) == 0 &&
                   g->arms[k].temperature == g->arms[i].temperature;
        if (!seen)
            bad = ggi_buf_printf(&sig, "%s%s@%g", sig.len ? "," : "", g->arms[i].model,
                                 g->arms[i].temperature) != GG_OK;
    }
    char *text = bad ? NULL : body_text(g, messages, sig.data ? sig.data : "", override);
    ggi_buf_free(&sig);
    return text;
}

/* What the response says of the arm that answered. */
static cJSON *arm_json(const openai *g, int i, double temperature, int overridden)
{
    const arm *a = &g->arms[i];
    cJSON *j = cJSON_CreateObject();
    if (!j || ggi_json_add_num(j, "index", i) ||
        ggi_json_add_str(j, "endpoint", g->eps[a->ep].shown) ||
        ggi_json_add_num(j, "endpoint_index", a->ep) || ggi_json_add_str(j, "model", a->model) ||
        ggi_json_add_num(j, "temperature", temperature) ||
        (overridden && ggi_json_add_bool(j, "strategy", 1))) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

/* A response recorded for exactly this request body, marked "journal": true. A journal that
 * fails is passed by: the model is asked instead. */
static int journal_hit(ggi_journal *j, const char *body, char **out)
{
    char *text = NULL;
    if (ggi_journal_get(j, body, &text) != GG_OK)
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

static ggi_journal *journal_of(openai *g)
{
    pthread_mutex_lock(&g->mu);
    ggi_journal *j = g->journal;
    pthread_mutex_unlock(&g->mu);
    return j;
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
static int ask_arm(openai *g, int i, const cJSON *messages, double override,
                   const cJSON *req, exchange *x, uint64_t *rng, int more_endpoints,
                   int *fatal, char **out)
{
    const arm *a = &g->arms[i];
    const endpoint *e = &g->eps[a->ep];
    double temperature = override >= 0 ? override : a->temperature;
    *fatal = 0;
    char *body = body_text(g, messages, a->model, temperature);
    if (!body) {
        *fatal = 1;
        return GG_ENOMEM;
    }
    int rc = GG_EGENERATOR;
    for (int try = 0; try <= g->max_retries; try++) {
        int status = GG_OK, net_fault = 0;
        enum outcome oc = post_once(g, e, a->model, body, x, &status, &net_fault);
        if (oc == OK) {
            cJSON *aj = arm_json(g, i, temperature, override >= 0);
            rc = aj ? read_reply(g, e, x, req, aj, out)
                    : ggi_error(GG_ENOMEM, "out of memory building a generator response");
            cJSON_Delete(aj);
            mark(g, a->ep, 0);
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
            mark(g, a->ep, 1);
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

/* A generate call joins the list interrupt walks on entry and leaves it on return. */
static void calls_add(openai *g, call *c, const char *task_id)
{
    c->task_id = task_id;
    atomic_init(&c->stop, 0);
    pthread_mutex_lock(&g->mu);
    c->next = g->calls;
    g->calls = c;
    pthread_mutex_unlock(&g->mu);
}

static void calls_remove(openai *g, call *c)
{
    pthread_mutex_lock(&g->mu);
    for (call **p = &g->calls; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    pthread_mutex_unlock(&g->mu);
}

/* The interrupt slot (GG_GENERATOR_CAP_INTERRUPT): the calls for task_id (NULL: all) stop
 * their transfer and their waits between tries, and return GG_ECANCELLED. */
static int openai_interrupt(void *self, const char *task_id)
{
    openai *g = self;
    pthread_mutex_lock(&g->mu);
    for (call *c = g->calls; c; c = c->next)
        if (!task_id || (c->task_id && strcmp(c->task_id, task_id) == 0))
            atomic_store(&c->stop, 1);
    pthread_mutex_unlock(&g->mu);
    return 0;
}

/* The permanent slot (GG_GENERATOR_CAP_PERMANENT_ERRORS): set by openai_generate on the
 * failing thread, read on it right after. */
static _Thread_local int last_permanent;

static int openai_generate(void *self, const char *request_json, char **out_response_json)
{
    last_permanent = 0;
    openai *g = self;
    cJSON *req = NULL;
    const cJSON *task = NULL;
    const char *id = NULL;
    int attempt = 0;
    int rc = ggi_generator_read_request(request_json, &req, &task, &id, &attempt);
    if (rc)
        return rc;
    /* Nothing secret leaves the host inside a prompt (and the journal keeps no secret). */
    if (ggi_redact_request(g->redactor, req) < 0) {
        cJSON_Delete(req);
        return GG_ENOMEM;
    }
    double override = -1;
    cJSON *messages = body_messages(g, req, &override);
    ggi_journal *journal = journal_of(g);
    char *key = messages && journal ? journal_key(g, messages, override) : NULL;
    if (!messages || (journal && !key)) {
        cJSON_Delete(messages);
        cJSON_Delete(req);
        return gg_error_last_code() ? gg_error_last_code() : GG_ENOMEM;
    }
    if (journal && journal_hit(journal, key, out_response_json)) {
        free(key);
        cJSON_Delete(messages);
        cJSON_Delete(req);
        return GG_OK;
    }
    int order[GGI_BANDIT_MAX_ARMS];
    pick_order(g, order);
    uint64_t rng = (uint64_t)(ggi_now_ms() * 1e3) ^ (uint64_t)(uintptr_t)&rng;
    call me;
    calls_add(g, &me, id);
    exchange x = { { GGI_BUF_INIT, GGI_OPENAI_MAX_BODY, 0, -1 }, 0, &me.stop };
    int tried[GGI_OPENAI_MAX_ENDPOINTS] = { 0 };
    int n_tried = 0, fatal = 0;
    rc = GG_EGENERATOR;
    /* Each endpoint once, with the best-ranked arm it has. */
    for (int k = 0; k < g->n_arms && !fatal; k++) {
        int ep = g->arms[order[k]].ep;
        if (tried[ep])
            continue;
        tried[ep] = 1;
        n_tried++;
        rc = ask_arm(g, order[k], messages, override, req, &x, &rng, n_tried < g->n_eps,
                     &fatal, out_response_json);
    }
    calls_remove(g, &me);
    if (rc && !fatal && g->n_eps > 1)
        rc = ggi_error_wrap("openai: all %d endpoints failed; the last: ", g->n_eps);
    last_permanent = rc && fatal && x.permanent;
    if (!rc && journal)
        ggi_journal_put(journal, key, *out_response_json); /* best effort */
    ggi_buf_free(&x.reply.body);
    free(key);
    cJSON_Delete(messages);
    cJSON_Delete(req);
    return rc;
}

/* ---- the hooks (hooks.h) ---- */

/* The feedback slot (GG_GENERATOR_CAP_FEEDBACK): the record comes as JSON text. */
static void openai_feedback(void *self, const char *record_json)
{
    cJSON *rec = NULL;
    if (ggi_json_parse(record_json, strlen(record_json), &rec) == GG_OK)
        ggi_openai_feedback(self, rec);
    cJSON_Delete(rec);
}

static int openai_permanent(void *self)
{
    (void)self;
    return last_permanent;
}

void ggi_openai_feedback(void *self, const cJSON *rec)
{
    openai *g = self;
    const cJSON *passed = cJSON_GetObjectItemCaseSensitive(rec, "passed");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(rec, "arm");
    if (!g || !cJSON_IsBool(passed) || !cJSON_IsObject(a) ||
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "journal")) ||
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "strategy")))
        return;
    double idx = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(a, "index"));
    if (!(idx >= 0 && idx < g->n_arms) || idx != (double)(int)idx)
        return;
    const arm *arm = &g->arms[(int)idx];
    const char *model = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "model"));
    const char *ep = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "endpoint"));
    if (!model || !ep || strcmp(model, arm->model) != 0 || strcmp(ep, g->eps[arm->ep].shown))
        return; /* another generator's answer */
    /* cost: the tokens of the answer, plus latency when GRYPHGEN_LLM_COST_PER_SECOND says */
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(rec, "usage");
    double tokens = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(u, "total_tokens"));
    if (!isfinite(tokens)) {
        double p = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens"));
        double c = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(u, "completion_tokens"));
        tokens = isfinite(p) || isfinite(c) ? (isfinite(p) ? p : 0) + (isfinite(c) ? c : 0)
                                            : NAN;
    }
    double ms = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(rec, "durations"), "generate_ms"));
    double cost = -1;
    if (isfinite(tokens) && tokens >= 0)
        cost = tokens;
    if (g->cost_per_s > 0 && isfinite(ms) && ms >= 0)
        cost = (cost > 0 ? cost : 0) + g->cost_per_s * ms / 1000.0;
    int ok = cJSON_IsTrue(passed);
    ggi_bandit_update(g->bandit, (int)idx, ok, cost);
    ggi_journal *j = journal_of(g);
    if (j) {
        ggi_arm_stats d = { 1, ok ? 1 : 0, cost >= 0 ? cost : 0, cost >= 0 ? 1 : 0 };
        if (ggi_journal_arm_add(j, arm->key, &d) != GG_OK)
            gg_error_clear(); /* best effort: the bandit in memory has it */
    }
}

int ggi_openai_attach_journal(void *self, const char *db_path)
{
    openai *g = self;
    if (journal_of(g))
        return GG_OK;
    ggi_journal *j = NULL;
    int rc = ggi_journal_open(db_path, &j);
    if (rc)
        return rc;
    pthread_mutex_lock(&g->mu);
    int taken = g->journal == NULL;
    if (taken)
        g->journal = j;
    pthread_mutex_unlock(&g->mu);
    if (!taken) {
        ggi_journal_close(&j);
        return GG_OK;
    }
    load_arms(g, j);
    return GG_OK;
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
    if (!rc)
        rc = ggi_redactor_new(&g->redactor, g->key, NULL);
    if (rc) {
        openai_destroy(g);
        return rc;
    }
    gg_generator_vtable vt = GG_GENERATOR_VTABLE_INIT;
    vt.generate = openai_generate;
    vt.destroy = openai_destroy;
    vt.name = "openai";
    vt.caps = GG_GENERATOR_CAP_FEEDBACK | GG_GENERATOR_CAP_JOURNAL |
              GG_GENERATOR_CAP_PERMANENT_ERRORS | GG_GENERATOR_CAP_INTERRUPT;
    vt.feedback = openai_feedback;
    vt.attach_journal = ggi_openai_attach_journal;
    vt.permanent = openai_permanent;
    vt.interrupt = openai_interrupt;
    *vt_out = vt;
    *self_out = g;
    return GG_OK;
}
