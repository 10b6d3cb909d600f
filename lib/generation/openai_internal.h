/*
 * openai_internal.h - what the files of the "openai" generator backend share, and nothing
 * else includes: its limits, the endpoints, arms and state of the backend, a call in
 * progress, one HTTP exchange, and the few functions more than one file calls.
 *
 * The backend is cut by concern (each file's opening comment says why there):
 *   openai.c          configuration (options, environment, key, arms), the generate call
 *                     and the vtable;
 *   openai_http.c     the HTTP exchange with one endpoint, its retries and failover;
 *   openai_message.c  request building (the prompt's messages, the body) and response
 *                     parsing (the reply into a generator response);
 *   openai_bandit.c   bandit and journal glue: the order of arms, dead endpoints, the
 *                     journal's key and hits, feedback, attaching a journal.
 * The type names below (openai, arm, ...) are private to these files; every shared function
 * carries the ggi_openai_ prefix.
 */
#ifndef GGI_OPENAI_INTERNAL_H
#define GGI_OPENAI_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <curl/curl.h>

#include "../core/ggi.h"
#include "journal.h"
#include "openai.h"
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

/* The path every chat-completions URL ends with. */
#define COMPLETIONS "/chat/completions"
/* ---- one HTTP exchange (openai_http.c) ---- */
typedef struct exchange {
    ggi_http_reply reply;
    int permanent; /* the failure would be the same if asked again (HTTP 4xx) */
    atomic_int *stop; /* set: the call was interrupted */
} exchange;

/* Outcome of one try, as the retry loop sees it. */
enum outcome { OK, RETRY, FAILOVER, FATAL };

/* ---- shared functions ---- */

/* Whether a shown URL (path ending in /chat/completions) has /v1 before that ending
 * (openai.c). */
int ggi_openai_v1_path(const char *shown);

/* Adds what the bandit learnt before the journal was there to the journal's rows, then
 * takes the rows (this and earlier runs) as the bandit's knowledge (openai.c). */
void ggi_openai_load_arms(openai *g, ggi_journal *j);

/* Copies the server's own words for an error, scrubbed of the key, the parts of the URL that
 * are not shown, and control characters (openai_http.c). */
void ggi_openai_server_message(const openai *g, const endpoint *e, const exchange *x, char *out,
                               size_t cap);

/* Asks arm i (its endpoint with retries); 0 with the response, or the failure. *fatal set:
 * no other arm is to be asked (this one answered, or failed for good) (openai_http.c). */
int ggi_openai_ask_arm(openai *g, int i, const cJSON *messages, double override,
                       const cJSON *req, exchange *x, uint64_t *rng, int more_endpoints,
                       int *fatal, char **out);

/* The prompt's messages for req, with the temperature a strategy overrides (or -1); the
 * request body for a model and temperature around them (openai_message.c). */
cJSON *ggi_openai_body_messages(const openai *g, const cJSON *req, double *override);
char *ggi_openai_body_text(const openai *g, const cJSON *messages, const char *model,
                           double temperature);

/* A 200 reply into the generator response *out (openai_message.c). */
int ggi_openai_read_reply(const openai *g, const endpoint *e, const exchange *x,
                          const cJSON *req, const cJSON *arm_json, char **out);

/* What the response says of the arm that answered (openai_message.c). */
cJSON *ggi_openai_arm_json(const openai *g, int i, double temperature, int overridden);

/* The order in which a request tries the arms; marking an endpoint dead or alive
 * (openai_bandit.c). */
void ggi_openai_pick_order(openai *g, int order[GGI_BANDIT_MAX_ARMS]);
void ggi_openai_mark(openai *g, int i, int dead);

/* The journal's key of a request, a recorded response for it, the journal attached now
 * (openai_bandit.c). */
char *ggi_openai_journal_key(const openai *g, const cJSON *messages, double override);
int ggi_openai_journal_hit(ggi_journal *j, const char *body, char **out);
ggi_journal *ggi_openai_journal_of(openai *g);

#endif
