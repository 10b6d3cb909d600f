/*
 * openai.c - the "openai" generator backend (openai.h): configuration from options and the
 * environment (endpoints, the API key, models and temperatures into arms among which the
 * strategy bandit (strategy.h) chooses for each request), the generate call (journal first,
 * then the arms in the bandit's order, with failover to the next endpoint), interrupt, and
 * the vtable. Cut here because it is the backend as the generation layer sees it; the
 * exchange over libcurl with its retries is in openai_http.c, request building and response
 * parsing in openai_message.c, the bandit and journal glue in openai_bandit.c
 * (openai_internal.h lists what they share). The API key lives in one place, the
 * Authorization header of the request; server messages quoted in errors are scrubbed of it.
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

/* Whether a shown URL (path ending in /chat/completions) has /v1 before that ending. */
int ggi_openai_v1_path(const char *shown)
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
void ggi_openai_load_arms(openai *g, ggi_journal *j)
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
        ggi_openai_load_arms(g, g->journal);
    return GG_OK;
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
    cJSON *messages = ggi_openai_body_messages(g, req, &override);
    ggi_journal *journal = ggi_openai_journal_of(g);
    char *key = messages && journal ? ggi_openai_journal_key(g, messages, override) : NULL;
    if (!messages || (journal && !key)) {
        cJSON_Delete(messages);
        cJSON_Delete(req);
        return gg_error_last_code() ? gg_error_last_code() : GG_ENOMEM;
    }
    if (journal && ggi_openai_journal_hit(journal, key, out_response_json)) {
        free(key);
        cJSON_Delete(messages);
        cJSON_Delete(req);
        return GG_OK;
    }
    int order[GGI_BANDIT_MAX_ARMS];
    ggi_openai_pick_order(g, order);
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
        rc = ggi_openai_ask_arm(g, order[k], messages, override, req, &x, &rng, n_tried < g->n_eps,
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
