/*
 * http_server.c - the HTTP endpoint module (http_server.h) on libmicrohttpd: binding to an
 * address and an ephemeral or given port, reading request bodies up to a cap, the bearer
 * token check, dispatch through the route table with 404/405 answers, the /v1/search
 * route over a retriever, optional TLS, and the defence against slow clients: libmicrohttpd's per-address
 * and total connection limits and idle timeout, plus a watchdog thread that shuts down a
 * connection whose request has not arrived whole by its deadline (the idle timeout alone lets
 * a client that sends a byte now and then hold a connection for ever). Errors are reported
 * through the public gg_error_set(), since the module is linked both into the library and
 * into the gryphgen command.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>

#include "gryphgen.h"
#include "http_server.h"

#if MHD_VERSION >= 0x00097002
typedef enum MHD_Result mhd_result;
#else
typedef int mhd_result;
#endif

#define THREADS 4
#define CONNECTION_LIMIT 1024
#define PER_IP_LIMIT 32
#define IDLE_TIMEOUT_S 10
#define REQUEST_DEADLINE_S 15
#define WATCHDOG_TICK_MS 250
#define MAX_QUERY_TEXT (64u * 1024u)

/* One open connection as the watchdog sees it. fd is a duplicate of the connection's
 * socket, so shutting it down always reaches this connection's socket, even after
 * libmicrohttpd has closed its own descriptor and the number was reused. */
typedef struct tracked {
    struct tracked *prev, *next;
    int fd;
    int receiving;         /* 1 while a request is awaited or arriving */
    struct timespec since; /* when the current request began to be awaited */
} tracked;

typedef struct route {
    char *method, *path;
    size_t prefix;   /* a prefix route: the length matched; 0: exact */
    int role;        /* the least role it needs */
    ggi_http_handler fn;
    void *user;
} route;

struct ggi_http_server {
    struct MHD_Daemon *d;
    route routes[GGI_HTTP_MAX_ROUTES];
    int n_routes;
    char *token;
    ggi_http_auth_fn auth;
    void *auth_user;
    atomic_ullong answered[4]; /* 2xx, 3xx, 4xx, 5xx */
    char *tls_cert, *tls_key;
    unsigned port;
    ggi_http_limits limits;
    pthread_mutex_t mu; /* guards conns and stop */
    pthread_cond_t wake;
    tracked *conns;
    int stop;
    int watchdog_running;
    pthread_t watchdog;
};

/* Per-request state while the body arrives. */
typedef struct pending {
    char *body;
    size_t len;
    int too_big;
} pending;

int ggi_http_fail(int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return gg_error_set(status, msg);
}

void ggi_http_limits_default(ggi_http_limits *l)
{
    l->max_connections = CONNECTION_LIMIT;
    l->per_ip = PER_IP_LIMIT;
    l->idle_timeout_s = IDLE_TIMEOUT_S;
    l->request_deadline_s = REQUEST_DEADLINE_S;
    l->threads = THREADS;
    /* Each connection takes two descriptors (its socket and the watchdog's duplicate): stay
     * well inside the process's limit rather than fail accept() for everyone. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        rlim_t room = rl.rlim_cur > 256 ? (rl.rlim_cur - 128) / 2 : 64;
        if (room < l->max_connections)
            l->max_connections = (unsigned)room;
    }
}

int ggi_http_server_new(ggi_http_server **out)
{
    ggi_http_server *s = calloc(1, sizeof *s);
    *out = NULL;
    if (!s)
        return ggi_http_fail(GG_ENOMEM, "out of memory");
    pthread_condattr_t ca;
    int e = pthread_condattr_init(&ca);
    if (!e) {
        e = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        if (!e)
            e = pthread_cond_init(&s->wake, &ca);
        pthread_condattr_destroy(&ca);
    }
    if (e) {
        free(s);
        return ggi_http_fail(GG_ENOMEM, "http server: cannot make a condition variable");
    }
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        pthread_cond_destroy(&s->wake);
        free(s);
        return ggi_http_fail(GG_ENOMEM, "http server: cannot make a mutex");
    }
    ggi_http_limits_default(&s->limits);
    *out = s;
    return GG_OK;
}

int ggi_http_server_set_limits(ggi_http_server *s, const ggi_http_limits *l)
{
    if (!s || !l)
        return ggi_http_fail(GG_EINVAL, "http server: NULL server or limits");
    if (s->d)
        return ggi_http_fail(GG_ESTATE, "http server: limits must be set before start");
    if (l->max_connections)
        s->limits.max_connections = l->max_connections;
    if (l->per_ip)
        s->limits.per_ip = l->per_ip;
    if (l->idle_timeout_s)
        s->limits.idle_timeout_s = l->idle_timeout_s;
    if (l->request_deadline_s)
        s->limits.request_deadline_s = l->request_deadline_s;
    if (l->threads)
        s->limits.threads = l->threads > 64 ? 64 : l->threads;
    return GG_OK;
}

int ggi_http_server_route(ggi_http_server *s, const char *method, const char *path,
                          ggi_http_handler fn, void *user)
{
    return ggi_http_server_route_role(s, method, path, GGI_ROLE_OBSERVER, fn, user);
}

int ggi_http_server_route_role(ggi_http_server *s, const char *method, const char *path,
                               int role, ggi_http_handler fn, void *user)
{
    if (!s || !method || !path || !fn)
        return ggi_http_fail(GG_EINVAL, "http server: route needs a method, a path and a handler");
    if (s->d)
        return ggi_http_fail(GG_ESTATE, "http server: routes must be added before start");
    if (s->n_routes >= GGI_HTTP_MAX_ROUTES)
        return ggi_http_fail(GG_EBUSY, "http server: more than %d routes", GGI_HTTP_MAX_ROUTES);
    route *r = &s->routes[s->n_routes];
    r->method = strdup(method);
    r->path = strdup(path);
    if (!r->method || !r->path) {
        free(r->method);
        free(r->path);
        r->method = r->path = NULL;
        return ggi_http_fail(GG_ENOMEM, "out of memory");
    }
    size_t len = strlen(r->path);
    r->prefix = len && r->path[len - 1] == '*' ? len - 1 : 0;
    r->role = role;
    r->fn = fn;
    r->user = user;
    s->n_routes++;
    return GG_OK;
}

int ggi_http_server_set_token(ggi_http_server *s, const char *token)
{
    if (!s)
        return ggi_http_fail(GG_EINVAL, "http server: NULL server");
    if (s->d)
        return ggi_http_fail(GG_ESTATE, "http server: the token must be set before start");
    if (s->token) {
        memset(s->token, 0, strlen(s->token));
        free(s->token);
        s->token = NULL;
    }
    if (token && *token && !(s->token = strdup(token)))
        return ggi_http_fail(GG_ENOMEM, "out of memory");
    return GG_OK;
}

int ggi_http_server_set_auth(ggi_http_server *s, ggi_http_auth_fn fn, void *user)
{
    if (!s)
        return ggi_http_fail(GG_EINVAL, "http server: NULL server");
    if (s->d)
        return ggi_http_fail(GG_ESTATE, "http server: the authenticator must be set before start");
    s->auth = fn;
    s->auth_user = user;
    return GG_OK;
}

const char *ggi_http_header(const ggi_http_request *req, const char *name)
{
    return MHD_lookup_connection_value((struct MHD_Connection *)req->conn_, MHD_HEADER_KIND,
                                       name);
}

void ggi_http_resume(void *conn)
{
    MHD_resume_connection(conn);
}

void ggi_http_suspend(void *conn)
{
    MHD_suspend_connection(conn);
}

int ggi_http_server_tls(const ggi_http_server *s)
{
    return s && s->tls_cert != NULL;
}

void ggi_http_counts(const ggi_http_server *s, unsigned long long out[4])
{
    for (int i = 0; i < 4; i++)
        out[i] = atomic_load_explicit(&s->answered[i], memory_order_relaxed);
}

static void free_secret(char **p)
{
    if (*p) {
        memset(*p, 0, strlen(*p));
        free(*p);
        *p = NULL;
    }
}

int ggi_http_server_set_tls(ggi_http_server *s, const char *cert_pem, const char *key_pem)
{
    if (!s || !cert_pem || !key_pem || !*cert_pem || !*key_pem)
        return ggi_http_fail(GG_EINVAL, "http server: TLS needs a certificate and a key");
    if (s->d)
        return ggi_http_fail(GG_ESTATE, "http server: TLS must be set before start");
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        return ggi_http_fail(GG_EUNSUPPORTED,
                             "http server: this libmicrohttpd was built without TLS");
    free_secret(&s->tls_cert);
    free_secret(&s->tls_key);
    s->tls_cert = strdup(cert_pem);
    s->tls_key = strdup(key_pem);
    if (!s->tls_cert || !s->tls_key) {
        free_secret(&s->tls_cert);
        free_secret(&s->tls_key);
        return ggi_http_fail(GG_ENOMEM, "out of memory");
    }
    return GG_OK;
}

const char *ggi_http_query(const ggi_http_request *req, const char *key)
{
    return MHD_lookup_connection_value((struct MHD_Connection *)req->conn_,
                                       MHD_GET_ARGUMENT_KIND, key);
}

void ggi_http_error(ggi_http_response *resp, int status, const char *message)
{
    resp->status = status;
    free(resp->body);
    resp->body = NULL;
    cJSON *o = cJSON_CreateObject();
    if (o && cJSON_AddStringToObject(o, "error", message ? message : "error")) {
        char *t = cJSON_PrintUnformatted(o);
        resp->body = t ? strdup(t) : NULL;
        cJSON_free(t);
    }
    cJSON_Delete(o);
}

/* Compares without an early exit, so timing tells nothing about the token. */
static int same_secret(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d = (unsigned char)(la != lb);
    for (size_t i = 0; i < la; i++)
        d |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
    return d == 0;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    ggi_http_stream *st = cls;
    return (ssize_t)st->read(st->cls, (unsigned long long)pos, buf, max);
}

static void stream_free(void *cls)
{
    ggi_http_stream *st = cls;
    if (st->free)
        st->free(st->cls);
    free(st);
}

static mhd_result send_reply(ggi_http_server *s, struct MHD_Connection *c,
                             ggi_http_response *r)
{
    const char *body = r->body ? r->body : "";
    size_t len = strlen(body);
    struct MHD_Response *m;
    int cls = r->status >= 200 && r->status < 600 ? r->status / 100 - 2 : 3;
    atomic_fetch_add_explicit(&s->answered[cls < 0 ? 3 : cls], 1, memory_order_relaxed);
    if (r->stream.read) {
        ggi_http_stream *st = malloc(sizeof *st);
        if (!st) {
            if (r->stream.free)
                r->stream.free(r->stream.cls);
            r->stream.read = NULL;
            return MHD_NO;
        }
        *st = r->stream;
        r->stream.read = NULL;
        m = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, st,
                                              stream_free);
        if (!m) {
            stream_free(st);
            return MHD_NO;
        }
    } else if (r->body) {
        m = MHD_create_response_from_buffer(len, r->body, MHD_RESPMEM_MUST_FREE);
        if (m)
            r->body = NULL; /* the response owns it now */
    } else {
        m = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (!m)
        return MHD_NO;
    MHD_add_response_header(m, "Content-Type",
                            r->content_type ? r->content_type : "application/json");
    MHD_add_response_header(m, "Cache-Control", "no-store");
    MHD_add_response_header(m, "X-Content-Type-Options", "nosniff");
    if (r->set_cookie)
        MHD_add_response_header(m, "Set-Cookie", r->set_cookie);
    mhd_result ret = MHD_queue_response(c, (unsigned)r->status, m);
    MHD_destroy_response(m);
    return ret;
}

/* ---- the watchdog of slow requests ---- */

static struct timespec now_mono(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t;
}

static tracked *tracked_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* A request has arrived whole (receiving = 0) or the next one is awaited (1). */
static void mark_receiving(ggi_http_server *s, struct MHD_Connection *c, int receiving)
{
    pthread_mutex_lock(&s->mu);
    tracked *t = tracked_of(c);
    if (t) {
        t->receiving = receiving;
        t->since = now_mono();
    }
    pthread_mutex_unlock(&s->mu);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    ggi_http_server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        tracked *t = ci ? calloc(1, sizeof *t) : NULL;
        if (!t)
            return; /* untracked: only the idle timeout applies to it */
        t->fd = fcntl(ci->connect_fd, F_DUPFD_CLOEXEC, 3);
        if (t->fd < 0) {
            free(t);
            return;
        }
        t->receiving = 1;
        t->since = now_mono();
        pthread_mutex_lock(&s->mu);
        t->next = s->conns;
        if (s->conns)
            s->conns->prev = t;
        s->conns = t;
        *socket_context = t;
        pthread_mutex_unlock(&s->mu);
        return;
    }
    pthread_mutex_lock(&s->mu);
    tracked *t = *socket_context;
    if (t) {
        if (t->prev)
            t->prev->next = t->next;
        else
            s->conns = t->next;
        if (t->next)
            t->next->prev = t->prev;
        close(t->fd);
        free(t);
        *socket_context = NULL;
    }
    pthread_mutex_unlock(&s->mu);
}

static void *watchdog_main(void *arg)
{
    ggi_http_server *s = arg;
    const long deadline_ms = (long)s->limits.request_deadline_s * 1000;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        struct timespec now = now_mono();
        for (tracked *t = s->conns; t; t = t->next) {
            long age_ms = (long)(now.tv_sec - t->since.tv_sec) * 1000 +
                          (now.tv_nsec - t->since.tv_nsec) / 1000000;
            if (t->receiving && age_ms >= deadline_ms) {
                /* libmicrohttpd sees the end of the stream and closes the connection. */
                (void)shutdown(t->fd, SHUT_RDWR);
                t->receiving = 0;
            }
        }
        struct timespec until = now;
        until.tv_nsec += WATCHDOG_TICK_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!s->stop && pthread_cond_timedwait(&s->wake, &s->mu, &until) == EINTR) {
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void stop_watchdog(ggi_http_server *s)
{
    if (!s->watchdog_running)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->watchdog, NULL);
    s->watchdog_running = 0;
}

/* The route for url and method (exact routes first, then the longest prefix), or NULL
 * with resp set to 404 or 405. */
static route *find_route(ggi_http_server *s, const char *url, const char *method,
                         const char **rest, ggi_http_response *resp)
{
    int path_known = 0;
    route *hit = NULL;
    size_t best = 0;
    for (int i = 0; i < s->n_routes; i++) {
        route *r = &s->routes[i];
        int match = r->prefix ? strncmp(r->path, url, r->prefix) == 0 && url[r->prefix]
                              : strcmp(r->path, url) == 0;
        if (!match)
            continue;
        path_known = 1;
        size_t weight = r->prefix ? r->prefix : (size_t)-1;
        if (strcmp(r->method, method) == 0 && (!hit || weight > best)) {
            hit = r;
            best = weight;
        }
    }
    if (!hit) {
        ggi_http_error(resp, path_known ? 405 : 404,
                       path_known ? "method not allowed" : "no such path");
        return NULL;
    }
    *rest = hit->prefix ? url + hit->prefix : "";
    return hit;
}

/* The token of a request: the bearer header, else the gg_token cookie, else (the dashboard's
 * first visit) ?token=. */
static const char *request_token(struct MHD_Connection *c, const char *url,
                                 const char **query_token)
{
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (auth)
        return strncmp(auth, "Bearer ", 7) == 0 ? auth + 7 : "";
    const char *cookie = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, "gg_token");
    if (cookie)
        return cookie;
    if (strcmp(url, "/") == 0) {
        const char *q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "token");
        if (q)
            *query_token = q;
        return q;
    }
    return NULL;
}

/* Who sent the request and whether the route allows it: 0, or -1 with resp set (401, 403). */
static int authenticate(ggi_http_server *s, struct MHD_Connection *c, const char *url,
                        const route *r, ggi_http_principal *who, const char **query_token,
                        ggi_http_response *resp)
{
    memset(who, 0, sizeof *who);
    if (!s->token && !s->auth) {
        who->role = GGI_ROLE_ADMIN;
        snprintf(who->name, sizeof who->name, "local");
        return 0;
    }
    const char *tok = request_token(c, url, query_token);
    int known = 0;
    if (tok && *tok) {
        if (s->token && same_secret(tok, s->token)) {
            who->role = GGI_ROLE_ADMIN;
            snprintf(who->name, sizeof who->name, "token");
            known = 1;
        } else if (s->auth) {
            known = s->auth(s->auth_user, tok, who);
        }
    }
    if (r->role == GGI_ROLE_NONE)
        return 0;
    if (!known) {
        memset(who, 0, sizeof *who);
        ggi_http_error(resp, 401, tok && *tok ? "unknown token" : "missing or wrong bearer token");
        return -1;
    }
    if (who->role < r->role) {
        ggi_http_error(resp, 403, "this token's role may not do that");
        return -1;
    }
    return 0;
}

static mhd_result on_request(void *cls, struct MHD_Connection *c, const char *url,
                             const char *method, const char *version, const char *upload,
                             size_t *upload_size, void **con_cls)
{
    (void)version;
    ggi_http_server *s = cls;
    pending *p = *con_cls;
    if (!p) {
        if (!(p = calloc(1, sizeof *p)))
            return MHD_NO;
        *con_cls = p;
        return MHD_YES; /* headers only so far */
    }
    if (*upload_size) {
        if (!p->too_big && p->len + *upload_size <= GGI_HTTP_MAX_BODY) {
            char *nb = realloc(p->body, p->len + *upload_size + 1);
            if (!nb)
                return MHD_NO;
            memcpy(nb + p->len, upload, *upload_size);
            p->len += *upload_size;
            nb[p->len] = '\0';
            p->body = nb;
        } else {
            p->too_big = 1;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    mark_receiving(s, c, 0);
    ggi_http_response resp;
    memset(&resp, 0, sizeof resp);
    resp.status = 200;
    if (p->too_big)
        ggi_http_error(&resp, 413, "request body too large");
    const char *rest = "";
    route *hit = resp.status == 200 ? find_route(s, url, method, &rest, &resp) : NULL;
    ggi_http_principal who;
    const char *query_token = NULL;
    if (hit && authenticate(s, c, url, hit, &who, &query_token, &resp) == 0) {
        ggi_http_request req = { method, url, rest, p->body ? p->body : "", p->len, &who,
                                 query_token, c };
        hit->fn(hit->user, &req, &resp);
    }
    mhd_result ret = send_reply(s, c, &resp);
    free(resp.body);
    free(resp.set_cookie);
    if (resp.stream.read && resp.stream.free) /* not handed over */
        resp.stream.free(resp.stream.cls);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode code)
{
    (void)code;
    /* A kept-alive connection now awaits its next request, on a fresh deadline. */
    mark_receiving(cls, c, 1);
    pending *p = *con_cls;
    if (p) {
        free(p->body);
        free(p);
        *con_cls = NULL;
    }
}

int ggi_http_address_is_loopback(const char *address)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (!address)
        return 0;
    if (inet_pton(AF_INET, address, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, address, &a6) != 1)
        return 0;
    if (IN6_IS_ADDR_LOOPBACK(&a6))
        return 1;
    return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
}

int ggi_http_server_start(ggi_http_server *s, const char *address, unsigned port)
{
    if (!s)
        return ggi_http_fail(GG_EINVAL, "http server: NULL server");
    if (s->d)
        return ggi_http_fail(GG_ESTATE, "http server: already started");
    if (port > 65535)
        return ggi_http_fail(GG_EINVAL, "http server: port %u is out of range", port);
    const char *addr = address && *address ? address : "127.0.0.1";
    struct sockaddr_in v4;
    struct sockaddr_in6 v6;
    const struct sockaddr *sa;
    unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_SUSPEND_RESUME;
    memset(&v4, 0, sizeof v4);
    memset(&v6, 0, sizeof v6);
    if (inet_pton(AF_INET, addr, &v4.sin_addr) == 1) {
        v4.sin_family = AF_INET;
        v4.sin_port = htons((uint16_t)port);
        sa = (const struct sockaddr *)&v4;
    } else if (inet_pton(AF_INET6, addr, &v6.sin6_addr) == 1) {
        v6.sin6_family = AF_INET6;
        v6.sin6_port = htons((uint16_t)port);
        sa = (const struct sockaddr *)&v6;
        flags |= MHD_USE_IPv6;
    } else {
        return ggi_http_fail(GG_EINVAL, "http server: '%.64s' is not an IPv4 or IPv6 address",
                             addr);
    }
    /* The same rule as the grid's: what is reachable from other machines is authenticated
     * (TLS, when set, keeps the token secret on the way; it does not replace it). */
    if (!s->token && !s->auth && !ggi_http_address_is_loopback(addr))
        return ggi_http_fail(GG_EINVAL, "http server: refusing to listen on %.64s without a bearer "
                               "token: it is not a loopback address (127.0.0.0/8, ::1), so "
                               "anyone who reaches it could read the index; set a token "
                               "(clients then send 'Authorization: Bearer TOKEN') or listen "
                               "on 127.0.0.1",
                             addr);
    const ggi_http_limits *l = &s->limits;
    s->stop = 0;
    if (pthread_create(&s->watchdog, NULL, watchdog_main, s) != 0)
        return ggi_http_fail(GG_EIO, "http server: cannot start its watchdog thread");
    s->watchdog_running = 1;
    /* (MHD_OPTION_ARRAY lets the TLS options be there or not with one call.) */
    struct MHD_OptionItem tls[] = {
        { s->tls_cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, s->tls_cert },
        { s->tls_key ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, s->tls_key },
        { MHD_OPTION_END, 0, NULL },
    };
    if (s->tls_cert)
        flags |= MHD_USE_TLS;
    s->d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, s,
                            MHD_OPTION_ARRAY, tls,
                            MHD_OPTION_SOCK_ADDR, sa,
                            MHD_OPTION_THREAD_POOL_SIZE, l->threads,
                            MHD_OPTION_CONNECTION_LIMIT, l->max_connections,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, l->per_ip,
                            MHD_OPTION_CONNECTION_TIMEOUT, l->idle_timeout_s,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_END);
    if (!s->d) {
        stop_watchdog(s);
        return ggi_http_fail(GG_EIO, "http server: cannot listen on %s port %u (in use, or not an "
                            "address of this machine%s)",
                             addr, port, s->tls_cert ? ", or the TLS certificate and key are not "
                                              "valid PEM or do not belong together" : "");
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info && info->port ? info->port : port;
    return GG_OK;
}

unsigned ggi_http_server_port(const ggi_http_server *s)
{
    return s && s->d ? s->port : 0;
}

void ggi_http_server_destroy(ggi_http_server **ps)
{
    if (!ps || !*ps)
        return;
    ggi_http_server *s = *ps;
    *ps = NULL;
    stop_watchdog(s);
    if (s->d)
        MHD_stop_daemon(s->d); /* closes every connection: the table empties */
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->wake);
    for (int i = 0; i < s->n_routes; i++) {
        free(s->routes[i].method);
        free(s->routes[i].path);
    }
    free_secret(&s->token);
    free_secret(&s->tls_cert);
    free_secret(&s->tls_key);
    free(s);
}

/* ---- GET /v1/search ---- */

static int http_status_of(int rc)
{
    switch (rc) {
    case GG_EINVAL: return 400;
    case GG_ETOOBIG: return 413;
    case GG_EBUSY: return 503;
    case GG_ETIMEDOUT: return 504;
    default: return 500;
    }
}

static void search_handler(void *user, const ggi_http_request *req, ggi_http_response *resp)
{
    gg_retriever_t *r = user;
    const char *q = ggi_http_query(req, "q");
    const char *ks = ggi_http_query(req, "k");
    const char *lang = ggi_http_query(req, "language");
    if (!q || !*q) {
        ggi_http_error(resp, 400, "missing query parameter q");
        return;
    }
    if (strlen(q) > MAX_QUERY_TEXT) {
        ggi_http_error(resp, 413, "query parameter q is too long");
        return;
    }
    long k = 5;
    if (ks) {
        char *end = NULL;
        k = strtol(ks, &end, 10);
        if (!*ks || !end || *end || k < 1 || k > 100) {
            ggi_http_error(resp, 400, "query parameter k must be a number from 1 to 100");
            return;
        }
    }
    cJSON *o = cJSON_CreateObject();
    char *qj = NULL;
    if (o && cJSON_AddStringToObject(o, "text", q) && cJSON_AddNumberToObject(o, "k", (double)k) &&
        (!lang || !*lang || cJSON_AddStringToObject(o, "language", lang)))
        qj = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!qj) {
        ggi_http_error(resp, 500, "out of memory");
        return;
    }
    char *res = NULL;
    int rc = gg_retriever_search(r, qj, &res);
    cJSON_free(qj);
    if (rc) {
        ggi_http_error(resp, http_status_of(rc), gg_error_last());
        return;
    }
    resp->status = 200;
    resp->body = strdup(res);
    gg_free(res);
    if (!resp->body)
        ggi_http_error(resp, 500, "out of memory");
}

int ggi_http_search_route(ggi_http_server *s, gg_retriever_t *r)
{
    if (!r)
        return ggi_http_fail(GG_EINVAL, "http server: the search route needs a retriever");
    return ggi_http_server_route(s, "GET", "/v1/search", search_handler, r);
}
