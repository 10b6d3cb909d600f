/*
 * scale_k8s.c - the kubernetes engine of `gryphgen scale`: sets the replicas of the workers'
 * Deployment through the API server's scale subresource
 * (/apis/apps/v1/namespaces/NS/deployments/NAME/scale: GET to count, a merge PATCH of
 * spec.replicas to move). The server and credentials come from --k8s-server and
 * --k8s-token-file (and --k8s-ca), else a kubeconfig (its first cluster's server and CA and
 * its first user's token: a minimal reading, no exec plugins or client certificates), else
 * the pod's service account. The token file is read again for each request (service-account
 * tokens rotate). Lowering the replicas sends SIGTERM to pods Kubernetes picks: their
 * workers hand their jobs back (bye) and the tasks run elsewhere.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "cli.h"
#include "scale.h"

#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define MAX_TOKEN 16384
#define MAX_REPLY ((size_t)1 << 20)
#define MAX_KUBECONFIG ((size_t)1 << 20)
#define REQUEST_TIMEOUT_S 10L

struct scale_engine {
    char url[2048];        /* .../deployments/NAME/scale */
    char *server;          /* https://host:port */
    char *token_file;      /* read for each request; NULL: token holds it */
    char *token;           /* from a kubeconfig */
    char *ca_file;         /* NULL: the system's CAs */
    char *ca_pem;          /* certificate-authority-data, decoded */
};

/* Reads a whole small file; NULL (said) when it cannot or it is over max bytes. */
static char *read_small(const char *what, const char *path, size_t max)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        cli_errorf("scale: cannot read the %s '%s'", what, path);
        return NULL;
    }
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    fclose(f);
    if (!buf || n > max) {
        cli_errorf("scale: the %s '%s' is larger than %zu bytes", what, path, max);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

/* Trims white space at both ends, in place. */
static char *trim(char *s)
{
    while (*s && isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* A DNS-1123 name (a namespace, a Deployment): lower case, digits, - and ., at most 253. */
static int k8s_name_ok(const char *what, const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 253 || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-.") != n ||
        name[0] == '-' || name[0] == '.') {
        cli_errorf("scale: %s '%s' is not a Kubernetes name (lower-case letters, digits, - "
                   "and .)", what, name);
        return -1;
    }
    return 0;
}

/* The value of the first "key: value" line of a kubeconfig (any depth), unquoted, malloc'd;
 * NULL when there is none. */
static char *yaml_first(const char *text, const char *key)
{
    size_t kn = strlen(key);
    for (const char *line = text; line && *line; line = strchr(line, '\n')) {
        if (*line == '\n')
            line++;
        const char *p = line;
        while (*p == ' ' || *p == '\t' || *p == '-')
            p++;
        if (strncmp(p, key, kn) != 0 || p[kn] != ':')
            continue;
        p += kn + 1;
        size_t n = strcspn(p, "\r\n");
        char *v = malloc(n + 1);
        if (!v)
            return NULL;
        memcpy(v, p, n);
        v[n] = '\0';
        char *t = trim(v);
        size_t tn = strlen(t);
        if (tn >= 2 && (t[0] == '"' || t[0] == '\'') && t[tn - 1] == t[0]) {
            t[tn - 1] = '\0';
            t++;
        }
        memmove(v, t, strlen(t) + 1);
        return v;
    }
    return NULL;
}

/* Decodes base64 text (certificate-authority-data); NULL when it is not base64. */
static char *base64_decode(const char *in)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(in);
    char *out = malloc(n / 4 * 3 + 4);
    if (!out)
        return NULL;
    size_t o = 0;
    unsigned acc = 0, bits = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i] == '=' || isspace((unsigned char)in[i]))
            continue;
        const char *p = strchr(tbl, in[i]);
        if (!p || !in[i]) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (unsigned)(p - tbl);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[o] = '\0';
    return out;
}

/* Fills the server and credentials from a kubeconfig. */
static int from_kubeconfig(scale_engine *e, const char *path)
{
    char *text = read_small("kubeconfig", path, MAX_KUBECONFIG);
    if (!text)
        return -1;
    e->server = yaml_first(text, "server");
    e->token = yaml_first(text, "token");
    char *ca = yaml_first(text, "certificate-authority");
    char *ca_data = yaml_first(text, "certificate-authority-data");
    char *token_file = yaml_first(text, "tokenFile");
    free(text);
    if (ca_data) {
        e->ca_pem = base64_decode(ca_data);
        free(ca_data);
        if (!e->ca_pem) {
            cli_errorf("scale: the kubeconfig's certificate-authority-data is not base64");
            free(ca);
            free(token_file);
            return -1;
        }
    }
    e->ca_file = ca;
    if (!e->token)
        e->token_file = token_file;
    else
        free(token_file);
    if (!e->server || (!e->token && !e->token_file)) {
        cli_errorf("scale: the kubeconfig '%s' names no cluster server or no user token "
                   "(exec plugins and client certificates are not read: give --k8s-server "
                   "and --k8s-token-file)", path);
        return -1;
    }
    return 0;
}

/* Fills the server and credentials from the pod's service account. */
static int from_service_account(scale_engine *e)
{
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    struct stat st;
    if (!host || !*host || stat(SA_DIR "/token", &st) != 0) {
        cli_errorf("scale: --engine kubernetes: no API server: give --k8s-server URL and "
                   "--k8s-token-file FILE, or --kubeconfig FILE, or run in a pod with a "
                   "service account");
        return -1;
    }
    size_t n = strlen(host) + 32;
    e->server = malloc(n);
    e->token_file = strdup(SA_DIR "/token");
    e->ca_file = strdup(SA_DIR "/ca.crt");
    if (!e->server || !e->token_file || !e->ca_file)
        return -1;
    snprintf(e->server, n, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host,
             port && *port ? port : "443");
    return 0;
}

/* http:// only to loopback: the token would travel in clear text. */
static int server_ok(const char *server)
{
    int https = strncmp(server, "https://", 8) == 0;
    int loop = strncmp(server, "http://127.", 11) == 0 || strncmp(server, "http://[::1]", 12) == 0 ||
               strncmp(server, "http://localhost", 16) == 0;
    if (!https && !loop) {
        cli_errorf("scale: the API server '%s' must be an https:// URL (http:// only on "
                   "loopback)", server);
        return -1;
    }
    return 0;
}

static void k8s_close(scale_engine *e)
{
    if (!e)
        return;
    free(e->server);
    free(e->token_file);
    if (e->token) {
        memset(e->token, 0, strlen(e->token));
        free(e->token);
    }
    free(e->ca_file);
    free(e->ca_pem);
    free(e);
}

static int k8s_open(scale_engine **out, const scale_config *cfg)
{
    *out = NULL;
    scale_engine *e = calloc(1, sizeof *e);
    if (!e) {
        cli_errorf("scale: out of memory");
        return -1;
    }
    const char *kubeconfig = cfg->kubeconfig ? cfg->kubeconfig : getenv("KUBECONFIG");
    int rc;
    if (cfg->k8s_server) {
        if (!cfg->k8s_token_file) {
            cli_errorf("scale: --k8s-server needs --k8s-token-file FILE");
            k8s_close(e);
            return -1;
        }
        e->server = strdup(cfg->k8s_server);
        e->token_file = strdup(cfg->k8s_token_file);
        e->ca_file = cfg->k8s_ca ? strdup(cfg->k8s_ca) : NULL;
        rc = e->server && e->token_file && (!cfg->k8s_ca || e->ca_file) ? 0 : -1;
    } else if (kubeconfig && *kubeconfig) {
        rc = from_kubeconfig(e, kubeconfig);
    } else {
        rc = from_service_account(e);
    }
    char *ns_file = NULL;
    const char *ns = cfg->k8s_namespace;
    if (rc == 0 && !ns) {
        struct stat st;
        if (!cfg->k8s_server && stat(SA_DIR "/namespace", &st) == 0 &&
            (ns_file = read_small("namespace file", SA_DIR "/namespace", 256)))
            ns = trim(ns_file);
        else
            ns = "default";
    }
    if (rc == 0)
        rc = server_ok(e->server);
    if (rc == 0 && e->token_file) { /* read now, so that a wrong path is said at once */
        char *t = read_small("token file", e->token_file, MAX_TOKEN);
        rc = t ? 0 : -1;
        if (t) {
            memset(t, 0, strlen(t));
            free(t);
        }
    }
    if (rc == 0)
        rc = k8s_name_ok("namespace", ns) || k8s_name_ok("deployment", cfg->k8s_deployment);
    if (rc == 0) {
        size_t sn = strlen(e->server);
        while (sn > 0 && e->server[sn - 1] == '/')
            e->server[--sn] = '\0';
        int n = snprintf(e->url, sizeof e->url, "%s/apis/apps/v1/namespaces/%s/deployments/%s"
                         "/scale", e->server, ns, cfg->k8s_deployment);
        if (n < 0 || (size_t)n >= sizeof e->url) {
            cli_errorf("scale: the API server URL is too long");
            rc = -1;
        }
    }
    free(ns_file);
    if (rc != 0) {
        k8s_close(e);
        return -1;
    }
    *out = e;
    return 0;
}

typedef struct reply {
    char *data;
    size_t len;
} reply;

static size_t on_body(char *p, size_t size, size_t n, void *user)
{
    reply *r = user;
    size_t k = size * n;
    if (r->len + k > MAX_REPLY)
        return 0;
    char *nd = realloc(r->data, r->len + k + 1);
    if (!nd)
        return 0;
    memcpy(nd + r->len, p, k);
    r->len += k;
    nd[r->len] = '\0';
    r->data = nd;
    return k;
}

/* One request on the scale subresource; *out gets the parsed reply. Returns 0 or -1 (said). */
static int k8s_request(scale_engine *e, const char *method, const char *body, cJSON **out)
{
    *out = NULL;
    char *token = e->token ? strdup(e->token) : read_small("token file", e->token_file, MAX_TOKEN);
    if (!token)
        return -1;
    char *t = trim(token);
    size_t hn = strlen(t) + 32;
    char *auth = malloc(hn);
    CURL *h = curl_easy_init();
    reply r = {NULL, 0};
    int rc = -1;
    if (!auth || !h) {
        cli_errorf("scale: out of memory");
        goto out;
    }
    snprintf(auth, hn, "Authorization: Bearer %s", t);
    struct curl_slist *hdr = curl_slist_append(NULL, auth);
    hdr = curl_slist_append(hdr, "Accept: application/json");
    if (body)
        hdr = curl_slist_append(hdr, "Content-Type: application/merge-patch+json");
    curl_easy_setopt(h, CURLOPT_URL, e->url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_TIMEOUT, REQUEST_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
    if (body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    if (e->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, e->ca_file);
    if (e->ca_pem) {
        struct curl_blob blob = {e->ca_pem, strlen(e->ca_pem), CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
    }
    CURLcode cc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hdr);
    if (cc != CURLE_OK) {
        cli_errorf("scale: %s %s: %s", method, e->url, curl_easy_strerror(cc));
    } else if (code / 100 != 2) {
        cli_errorf("scale: %s %s: HTTP %ld%s%.300s", method, e->url, code, r.data ? ": " : "",
                   r.data ? r.data : "");
    } else if (!(*out = cJSON_Parse(r.data ? r.data : ""))) {
        cli_errorf("scale: %s %s: the reply is not JSON", method, e->url);
    } else {
        rc = 0;
    }
out:
    if (auth) {
        memset(auth, 0, strlen(auth));
        free(auth);
    }
    memset(token, 0, strlen(token));
    free(token);
    free(r.data);
    curl_easy_cleanup(h);
    return rc;
}

/* The number at obj.a.b, or -1. */
static long number_at(const cJSON *obj, const char *a, const char *b)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, a), b);
    return cJSON_IsNumber(v) && v->valuedouble >= 0 ? (long)v->valuedouble : -1;
}

/* The Deployment's replicas as asked (spec) count as its workers: Kubernetes brings the pods
 * to that number; those not yet running (status below spec) are the pending ones. */
static int k8s_count(scale_engine *e, scale_count *out)
{
    out->pending = out->running = 0;
    cJSON *s = NULL;
    if (k8s_request(e, "GET", NULL, &s) != 0)
        return -1;
    long spec = number_at(s, "spec", "replicas");
    long now = number_at(s, "status", "replicas");
    cJSON_Delete(s);
    if (spec < 0) {
        cli_errorf("scale: GET %s: no spec.replicas in the reply", e->url);
        return -1;
    }
    if (now < 0)
        now = 0;
    out->running = (unsigned)(now < spec ? now : spec);
    out->pending = (unsigned)(spec - (long)out->running);
    return 0;
}

static int set_replicas(scale_engine *e, unsigned n)
{
    char body[64];
    snprintf(body, sizeof body, "{\"spec\":{\"replicas\":%u}}", n);
    cJSON *s = NULL;
    int rc = k8s_request(e, "PATCH", body, &s);
    if (rc == 0 && number_at(s, "spec", "replicas") != (long)n) {
        cli_errorf("scale: PATCH %s: the reply does not show %u replicas", e->url, n);
        rc = -1;
    }
    cJSON_Delete(s);
    return rc;
}

static int k8s_apply(scale_engine *e, const scale_count *c, unsigned target)
{
    (void)c;
    return set_replicas(e, target);
}

static int k8s_stop_all(scale_engine *e)
{
    if (set_replicas(e, 0) != 0)
        return -1;
    fprintf(stderr, "gryphgen: scale: the Deployment's replicas are 0\n");
    return 0;
}

const scale_engine_vt scale_k8s_engine = {
    "kubernetes", k8s_open, k8s_count, k8s_apply, k8s_stop_all, k8s_close,
};
