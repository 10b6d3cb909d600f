/*
 * auth.h - the HTTP face's tokens (`serve --http-tokens FILE`): lines "TOKEN ROLE [NAME]"
 * read from a file only its owner may read, and the authenticator the HTTP server asks
 * (ggi_http_auth_fn). Internal; never installed.
 *
 * THREAD SAFETY: a loaded table is read-only; ggi_http_tokens_auth() may run on any threads.
 */
#ifndef GGI_HTTP_AUTH_H
#define GGI_HTTP_AUTH_H

#include "http_server.h"

/** Most tokens one file holds. */
#define GGI_HTTP_MAX_TOKENS 256
/** Shortest token accepted (bytes). */
#define GGI_HTTP_MIN_TOKEN 16

typedef struct ggi_http_tokens ggi_http_tokens;

/**
 * Reads the token file. GG_EINVAL when others than its owner may read or write it (it must be
 * mode 0600 or stricter), GG_EINVAL naming the line for a malformed one (a role other than
 * observer, submitter or admin, a token shorter than GGI_HTTP_MIN_TOKEN, a duplicate),
 * GG_EIO when it cannot be read. The tokens never appear in a message.
 */
int ggi_http_tokens_load(const char *path, ggi_http_tokens **out);

/** The authenticator over a table (user: the table). Compares in constant time. */
int ggi_http_tokens_auth(void *user, const char *token, ggi_http_principal *out);

/** Number of tokens in the table. */
int ggi_http_tokens_count(const ggi_http_tokens *t);

/** Wipes and frees the table; sets *pt to NULL. Accepts NULL. */
void ggi_http_tokens_free(ggi_http_tokens **pt);

/** A role's name ("observer", ...) from GGI_ROLE_*. */
const char *ggi_http_role_name(int role);

#endif
