/*
 * http_server.h - the HTTP endpoint module of libgryphgen, on libmicrohttpd: a small server
 * with a route table (exact method and path), JSON replies, an optional bearer token, and the
 * retrieval route GET /v1/search. It uses only the public API (gryphgen.h), so the library
 * and the gryphgen command can both link it. Never installed.
 *
 * Against clients that hold connections open without finishing a request (slowloris), it
 * caps connections per client address and in total, closes a connection idle for a few
 * seconds, and closes one whose request has not arrived whole within a deadline, so one
 * client (or a few) cannot keep the others out. A server on an address that is not loopback
 * needs a bearer token: ggi_http_server_start() refuses to start without one.
 *
 * THREAD SAFETY: routes are registered before ggi_http_server_start(); handlers then run on
 * libmicrohttpd's threads, several at once, so they must be thread-safe (a retriever is).
 * ggi_http_server_destroy() stops the server and waits for running handlers.
 */
#ifndef GGI_HTTP_SERVER_H
#define GGI_HTTP_SERVER_H

#include <stddef.h>

#include "gryphgen/retriever.h"

/**
 * Sets the library's last error (gg_error_last()) to the formatted message with the status
 * and returns the status: the module's errors, which link only the public error API.
 */
int ggi_http_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Largest request body read; larger ones get 413. */
#define GGI_HTTP_MAX_BODY ((size_t)1 << 20)
/** Most routes one server holds. */
#define GGI_HTTP_MAX_ROUTES 48

typedef struct ggi_http_server ggi_http_server;

/** Connection limits; ggi_http_limits_default() fills the ones a server starts with. */
typedef struct ggi_http_limits {
    unsigned max_connections;    /* open connections of all clients together */
    unsigned per_ip;             /* open connections of one client address */
    unsigned idle_timeout_s;     /* a connection without traffic this long is closed */
    unsigned request_deadline_s; /* a request (headers and body) must arrive whole this long
                                  * after the connection opened or the previous reply */
    unsigned threads;            /* polling threads, each serving its share of connections */
} ggi_http_limits;

/** The defaults: 32 per address, 1,024 in all (fewer when descriptors are short), 10 s idle,
 * 15 s per request, 4 threads. */
void ggi_http_limits_default(ggi_http_limits *l);

/** Sets the limits (before start; zero fields keep the default). */
int ggi_http_server_set_limits(ggi_http_server *s, const ggi_http_limits *l);

/** Roles, each allowed what the one before it is: a route names the least it needs. */
enum { GGI_ROLE_NONE = 0, GGI_ROLE_OBSERVER = 1, GGI_ROLE_SUBMITTER = 2, GGI_ROLE_ADMIN = 3 };

/** Who sent a request, as the authenticator found it. */
typedef struct ggi_http_principal {
    int role;       /* GGI_ROLE_* */
    char name[64];  /* a name standing for the token (never the token itself) */
} ggi_http_principal;

/**
 * Authenticates a token (never NULL): fills *out and returns 1 when it is known, else 0.
 * Runs on the server's threads, several at once.
 */
typedef int (*ggi_http_auth_fn)(void *user, const char *token, ggi_http_principal *out);

/** One request as a handler sees it; every pointer is borrowed for the call. */
typedef struct ggi_http_request {
    const char *method;  /* "GET", "POST", ... */
    const char *path;    /* without the query string, URL-decoded */
    const char *rest;    /* for a prefix route, the path after the prefix; else "" */
    const char *body;    /* NUL-terminated; "" when none */
    size_t body_len;
    const ggi_http_principal *who; /* the sender (role admin, name "local" without auth) */
    const char *query_token; /* the token came as ?token= (the dashboard's first visit) */
    void *conn_;         /* private: the connection, for ggi_http_query() */
} ggi_http_request;

/** A streamed body (Server-Sent Events): read() as libmicrohttpd's content reader
 * (bytes written, 0 after suspending the connection, or -1 at the end); free() once. */
typedef struct ggi_http_stream {
    long (*read)(void *cls, unsigned long long pos, char *buf, size_t max);
    void (*free)(void *cls);
    void *cls;
} ggi_http_stream;

/** What a handler answers: status and a malloc'd body the server frees (NULL: empty). */
typedef struct ggi_http_response {
    int status;
    char *body;
    const char *content_type; /* static; NULL: application/json */
    char *set_cookie;         /* malloc'd Set-Cookie value the server frees, or NULL */
    ggi_http_stream stream;   /* read set: a streamed body instead of body */
} ggi_http_response;

/** A route's handler; fills resp (status 200 and body NULL beforehand). */
typedef void (*ggi_http_handler)(void *user, const ggi_http_request *req,
                                 ggi_http_response *resp);

/**
 * Adds a route needing role (GGI_ROLE_NONE: anyone, even where tokens are required). A path
 * ending in '*' is a prefix: the handler's req->rest is what follows it. Exact routes are
 * matched first. Errors as ggi_http_server_route().
 */
int ggi_http_server_route_role(ggi_http_server *s, const char *method, const char *path,
                               int role, ggi_http_handler fn, void *user);

/**
 * Requires a token known to fn on every request to a route that needs a role (before start):
 * "Authorization: Bearer TOKEN", else the cookie gg_token, else (GET / only) ?token=.
 * Without a token: 401; a role below the route's: 403.
 */
int ggi_http_server_set_auth(ggi_http_server *s, ggi_http_auth_fn fn, void *user);

/** A request header's value, or NULL. */
const char *ggi_http_header(const ggi_http_request *req, const char *name);

/** Resumes a connection a stream reader suspended (any thread). */
void ggi_http_resume(void *conn);

/** Suspends the connection of the stream being read (from its read() only). */
void ggi_http_suspend(void *conn);

/** Requests answered since start, by status class: out[0] 2xx, [1] 3xx, [2] 4xx, [3] 5xx. */
void ggi_http_counts(const ggi_http_server *s, unsigned long long out[4]);

/** 1 when the server serves HTTPS. */
int ggi_http_server_tls(const ggi_http_server *s);

/** Creates a stopped server. Returns 0 or GG_ENOMEM. */
int ggi_http_server_new(ggi_http_server **out);

/**
 * Adds a route (before start): method and path are copied. GG_ESTATE once started,
 * GG_EBUSY when the table is full.
 */
int ggi_http_server_route(ggi_http_server *s, const char *method, const char *path,
                          ggi_http_handler fn, void *user);

/**
 * Requires "Authorization: Bearer <token>" on every request (before start; NULL: none).
 * The token is copied and never logged.
 */
int ggi_http_server_set_token(ggi_http_server *s, const char *token);

/**
 * Serves HTTPS with this certificate chain and private key (PEM texts, copied; before start).
 * GG_EUNSUPPORTED when libmicrohttpd was built without TLS. A token is still needed off
 * loopback: TLS keeps it and the answers secret, it does not tell who the client is.
 */
int ggi_http_server_set_tls(ggi_http_server *s, const char *cert_pem, const char *key_pem);

/**
 * Starts listening on address (an IPv4 or IPv6 literal; NULL: 127.0.0.1) and port (0: an
 * ephemeral port; ggi_http_server_port() tells which). GG_EIO when it cannot bind;
 * GG_EINVAL for an address that is not loopback (127.0.0.0/8, ::1) when no token is set.
 */
int ggi_http_server_start(ggi_http_server *s, const char *address, unsigned port);

/** 1 when address (an IPv4 or IPv6 literal) is a loopback address, else 0. */
int ggi_http_address_is_loopback(const char *address);

/** The bound port of a started server, else 0. */
unsigned ggi_http_server_port(const ggi_http_server *s);

/** Stops (when started) and frees the server; sets *ps to NULL. Accepts NULL. */
void ggi_http_server_destroy(ggi_http_server **ps);

/** A URL-decoded query-string argument of the request, or NULL. */
const char *ggi_http_query(const ggi_http_request *req, const char *key);

/** Fills resp with status and {"error": message}. */
void ggi_http_error(ggi_http_response *resp, int status, const char *message);

/**
 * Registers GET /v1/search?q=TEXT&k=N&language=L answering {"results": [...]} from r
 * (borrowed: it must outlive the server). k defaults to 5 (1 to 100).
 */
int ggi_http_search_route(ggi_http_server *s, gg_retriever_t *r);

#endif
