/*
 * ggi.h - internal helpers shared by every component of libgryphgen: error recording,
 * growable buffers, clocks, strings and checked access to cJSON values. Never installed.
 */
#ifndef GGI_H
#define GGI_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "gryphgen/common.h"
#include "gryphgen/log.h"

#define GGI_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* ---- errors (error.c) ---- */

/** Records status and a formatted message as the thread's last error; returns status. */
int ggi_error(int status, const char *fmt, ...) GGI_PRINTF(2, 3);

/**
 * Prefixes the thread's last error message with context ("line 3: " ...), keeps its code,
 * and returns that code. Used as errors travel outwards.
 */
int ggi_error_wrap(const char *fmt, ...) GGI_PRINTF(1, 2);

/* ---- memory and strings (util.c) ---- */

/** strdup that accepts NULL (gives NULL). */
char *ggi_strdup(const char *s);
/** Copies at most n bytes and terminates; NULL when out of memory. */
char *ggi_strndup(const char *s, size_t n);
/** printf into a new malloc'd string; NULL when out of memory. */
char *ggi_asprintf(const char *fmt, ...) GGI_PRINTF(1, 2);

/** Monotonic clock in milliseconds. */
double ggi_now_ms(void);
/** Wall clock in seconds since the epoch. */
double ggi_wall_s(void);
/** Sleeps for ms milliseconds (restarts after signals). */
void ggi_sleep_ms(double ms);
/** Initialises cv to time its waits on CLOCK_MONOTONIC (as ggi_now_ms does). */
void ggi_cond_init_monotonic(pthread_cond_t *cv);
/** The time ms milliseconds from now on clock (CLOCK_MONOTONIC for a condition variable made
 *  by ggi_cond_init_monotonic, CLOCK_REALTIME for pthread_timedjoin_np), as an absolute
 *  timespec for the timed waits. */
struct timespec ggi_timespec_in(clockid_t clock, double ms);

/** Writes all len bytes of data to fd (short writes continued, EINTR retried): 0, or -1
 *  with errno set (a write of 0 bytes is EIO). */
int ggi_write_all(int fd, const void *data, size_t len);

/** 64-bit FNV-1a hash of bytes, rendered as 16 hex digits into out[17]. */
void ggi_hash_hex(const void *data, size_t len, char out[17]);

/* ---- growable byte buffer (buf.c) ---- */

typedef struct ggi_buf {
    char *data;  /* always NUL-terminated when non-NULL */
    size_t len;
    size_t cap;
} ggi_buf;

#define GGI_BUF_INIT { NULL, 0, 0 }

/** Makes room for extra more bytes (and the NUL) without writing; GG_ENOMEM (no message
 * set) when it cannot. */
int ggi_buf_reserve(ggi_buf *b, size_t extra);
/** Appends n bytes; GG_ENOMEM on failure (the buffer is unchanged). */
int ggi_buf_append(ggi_buf *b, const void *data, size_t n);
/** Appends a string. */
int ggi_buf_puts(ggi_buf *b, const char *s);
/** Appends formatted text. */
int ggi_buf_printf(ggi_buf *b, const char *fmt, ...) GGI_PRINTF(2, 3);
/** Returns the malloc'd string (never NULL on success: "" for empty) and resets b. */
char *ggi_buf_steal(ggi_buf *b);
/** Frees the data and resets b. */
void ggi_buf_free(ggi_buf *b);

/* ---- checked cJSON access (json.c) ---- */

/*
 * Each getter looks up key in obj. A missing key gives *out the default and returns 0 when
 * required is 0, else GG_EINVAL "missing field 'key'". A value of the wrong type is
 * GG_EINVAL "field 'key' must be a string" (and so on); a string longer than max_len bytes
 * (0: no limit) is GG_ETOOBIG "field 'key' is N bytes, the limit is M". A JSON null counts
 * as missing.
 */
int ggi_json_string(const cJSON *obj, const char *key, int required, size_t max_len,
                    const char **out);
int ggi_json_number(const cJSON *obj, const char *key, int required, double lo, double hi,
                    double *out);
int ggi_json_int(const cJSON *obj, const char *key, int required, long long lo,
                 long long hi, long long *out);
int ggi_json_bool(const cJSON *obj, const char *key, int required, int *out);

/** Prints unformatted JSON into malloc'd memory (never cJSON's hooks); NULL on ENOMEM. */
char *ggi_json_print(const cJSON *item);

/**
 * Appends item as compact JSON text to b (json_write.c): the same text as cJSON's unformatted
 * printer, except that integral numbers below 2^53 are written as integers and any number
 * reads back as the same double. GG_EINVAL for an item that cannot be written (unknown type,
 * a raw item without text, nesting deeper than 1000), GG_ENOMEM; on failure b is unchanged.
 */
int ggi_json_write(ggi_buf *b, const cJSON *item);
/** Appends s as a JSON string (quoted, escaped as ggi_json_write escapes; NULL as ""). */
int ggi_json_write_string(ggi_buf *b, const char *s);
/**
 * Parses at most len bytes of JSON from outside. On failure GG_EINVAL: "malformed JSON near
 * byte N", "JSON nested too deeply (limit 1000) near byte N", or, from ggi_json_check_strings,
 * a string (or key) that holds a NUL or is not UTF-8, named by its path.
 */
int ggi_json_parse(const char *text, size_t len, cJSON **out);
/** ggi_json_parse without ggi_json_check_strings (for callers that check, then name more);
 * *value_len (when not NULL) gets the length of the text up to the end of the value. */
int ggi_json_parse_syntax(const char *text, size_t len, cJSON **out, size_t *value_len);
/**
 * Checks the strings and keys of JSON text that cJSON has accepted (len: up to the end of
 * its value): cJSON ends a string at a NUL, so an escaped \u0000 or a raw NUL byte would cut
 * it short unseen, and it copies bytes that are not UTF-8 into strings that are then written
 * out as they are. Either is GG_EINVAL "field 'a.b[2]' holds a NUL character (\u0000), which
 * no string may hold" / "field 'x' is not valid UTF-8 (byte 0xff at byte N of the JSON
 * text)". When path is not NULL it receives the field's path ("" for the top value).
 * Text without bytes over 0x7f, NUL bytes or "\u0000" is passed by a quick scan.
 */
int ggi_json_check_strings(const char *text, size_t len, char *path, size_t path_size);
/** Adds a string that may be NULL (added as JSON null). Returns 0 or GG_ENOMEM. */
int ggi_json_add_str(cJSON *obj, const char *key, const char *value);
/** 1 when an element of the array arr (objects; NULL: none) has the string "id" equal to id. */
int ggi_json_array_has_id(const cJSON *arr, const char *id);
/** Adds a number. Returns 0 or GG_ENOMEM. */
int ggi_json_add_num(cJSON *obj, const char *key, double value);
/** Adds a boolean. Returns 0 or GG_ENOMEM. */
int ggi_json_add_bool(cJSON *obj, const char *key, int value);

/* ---- UTF-8 (utf8.c) ---- */
/** The length of the valid UTF-8 sequence at s (1 to 4, at most avail), or 0 when the bytes
 * there are not one (overlong, surrogate, beyond U+10FFFF, cut short, stray). */
size_t ggi_utf8_seq(const unsigned char *s, size_t avail);
/** The offset of the first byte of text that is not valid UTF-8, or len when all of it is. */
size_t ggi_utf8_invalid_at(const char *text, size_t len);

/* ---- random draws for Thompson sampling (sampling.c) ---- */
/* The next 64 random bits of a splitmix64 state (any value, 0 included, is a valid state). */
uint64_t ggi_rand_next(uint64_t *state);
/* A uniform draw in (0, 1), never 0 or 1. */
double ggi_rand_uniform(uint64_t *state);
/* A draw from Beta(a, b) for a, b >= 1 (smaller shapes are taken as 1). */
double ggi_rand_beta(uint64_t *state, double a, double b);

/* ---- around libcurl: a reply, retry waits, secrets (http_reply.c) ---- */
/* A reply being received: CURLOPT_WRITEFUNCTION ggi_http_reply_on_body and
 * CURLOPT_HEADERFUNCTION ggi_http_reply_on_header, both with the reply as their data. */
typedef struct ggi_http_reply {
    ggi_buf body;          /* the body so far */
    size_t cap;            /* the largest body accepted */
    int too_big;           /* the body went over cap, so the transfer was stopped */
    double retry_after_s;  /* the Retry-After header in seconds; negative: none */
} ggi_http_reply;
/* Empties the reply before a (new) try; cap is kept. */
void ggi_http_reply_reset(ggi_http_reply *r);
size_t ggi_http_reply_on_body(char *data, size_t size, size_t nmemb, void *reply);
size_t ggi_http_reply_on_header(char *data, size_t size, size_t nmemb, void *reply);
/* How long to wait before retry attempt+1: the server's Retry-After (capped) when it sent
 * one, else base_ms doubled per attempt up to cap_ms, with jitter in its upper half. */
double ggi_retry_wait_ms(int attempt, double base_ms, double cap_ms, double retry_after_s,
                         double retry_after_cap_s, uint64_t *rng);
/* Overwrites every occurrence of secret in text with '*', and every 8-byte piece of a
 * longer secret (servers like to echo keys in part). */
void ggi_scrub_secret(char *text, const char *secret);

/* ---- logging to a host callback (log.c) ---- */

typedef struct ggi_logger {
    gg_log_fn fn;
    void *user;
    int level;
} ggi_logger;

/** Formats and delivers a log line when lg has a callback and level is enabled. */
void ggi_log(const ggi_logger *lg, int level, const char *fmt, ...) GGI_PRINTF(3, 4);

/* A line that may come again and again (a database that stays locked or full): the same
 * line within GGI_LOG_REPEAT_MS of the time it was logged is only counted, and the count is
 * told in one line when the interval is over, when another line comes, or on flush. One per
 * source of such lines, used by one thread at a time; zero it before use. */
#define GGI_LOG_REPEAT_MS 10000.0
typedef struct ggi_log_repeat {
    char last[1024];
    int level;
    unsigned long repeats; /* the same line since it was last logged */
    double logged_ms;
} ggi_log_repeat;

void ggi_log_repeated(const ggi_logger *lg, ggi_log_repeat *r, int level, const char *fmt, ...)
    GGI_PRINTF(4, 5);
/** Tells how often the last line came again unlogged, if it did, and forgets it. */
void ggi_log_repeat_flush(const ggi_logger *lg, ggi_log_repeat *r);

#endif
