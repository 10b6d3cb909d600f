/*
 * protocol.h - ggp/1, the messages between an orchestrator, its workers and its clients:
 * the envelope ({"ggp": 1, "t": TYPE, ...}), the message types, the hard size cap, and the
 * decoder that validates every field before anyone reads it. docs/protocol.md is the
 * reference. Internal.
 */
#ifndef GGI_PROTOCOL_H
#define GGI_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#include "../core/ggi.h"

/** The protocol version this library speaks (and the only one it accepts). */
#define GGP_VERSION 1
/** Largest message in bytes; larger ones are dropped unread. A job of a workspace task
 * carries its base's packfile (a task is at most GGI_TASK_MAX_JSON, 24 MiB) and its
 * feedback; the transport's own cap (GGI_ZMQ_MAX_MESSAGE, 64 MiB) is above it. */
#define GGP_MAX_MESSAGE (32u << 20)
/** Largest batch of tasks in one submit message and of jobs/results in one message. */
#define GGP_MAX_BATCH 10000
/** Largest names, ids and labels. */
#define GGP_MAX_NAME 128
#define GGP_MAX_DEPS 1024 /* names in a hello's caps.deps (GGI_LANG_MAX_DEPS) */
#define GGP_MAX_LABELS 64

/** Message types. */
typedef enum ggp_type {
    GGP_UNKNOWN = 0,
    /* worker -> orchestrator */
    GGP_HELLO,     /* both workers and clients: {"role", "name", "versions", worker: "slots", "caps"} */
    GGP_HB,        /* heartbeat, both ways */
    GGP_RESULTS,   /* {"results": [{"lease", "seq", "n", "record"}]} */
    GGP_BYE,       /* a worker leaves: its jobs are requeued at once */
    /* client -> orchestrator */
    GGP_SUBMIT,    /* {"rid", "tasks": [task...]} */
    GGP_WAIT,      /* {"rid", "id"} */
    GGP_STATUS,    /* {"rid", "id"?} */
    GGP_CANCEL,    /* {"rid"?, "id", "seq"?} */
    GGP_WATCH,     /* {"rid", "types"?: [type or prefix...]} (event_filter.h) */
    GGP_WAKE,      /* embedded host threads: new tasks are in the database */
    /* orchestrator -> peers */
    GGP_WELCOME,   /* {"version", "hb_ms", "node"} */
    GGP_JOBS,      /* {"jobs": [{"lease", "seq", "n", "task", "feedback"}]} */
    GGP_RESET,     /* "say hello again" */
    GGP_REPLY,     /* {"rid", "ok": bool, ...} answer to a client request */
    GGP_EVENT,     /* {"event": {...}} to a watching client */
    GGP_TYPE_COUNT_
} ggp_type;

/** The role a message type belongs to (for role checks). */
#define GGP_CLASS_WORKER 1
#define GGP_CLASS_CLIENT 2
#define GGP_CLASS_HUB 4

/** The name of a type ("hello", ...); "?" for unknown. */
const char *ggp_type_name(ggp_type t);

/** The class(es) of peers that may send a type to the orchestrator (GGP_CLASS_*). */
int ggp_type_class(ggp_type t);

/** A decoded message: the parsed body (owned) and its type. */
typedef struct ggp_msg {
    ggp_type type;
    cJSON *body;
} ggp_msg;

/**
 * Decodes and validates one message: size (GG_ETOOBIG above GGP_MAX_MESSAGE), JSON, the
 * envelope (ggp must be 1, GG_EVERSION otherwise), a known type (GG_EINVAL otherwise) and
 * every field the type defines (names, types, ranges, sizes). On failure nothing is kept and
 * the thread's error says what was wrong. Free with ggp_msg_free.
 */
int ggp_decode(const void *data, size_t len, ggp_msg *out);

/** Frees the body. */
void ggp_msg_free(ggp_msg *m);

/** One result of a results message read by ggp_results_scan. */
typedef struct ggp_result {
    char lease[65];
    int64_t seq;
    int n;
    cJSON *record;    /* parsed */
    const char *text; /* the record as the worker wrote it: len bytes inside the message */
    size_t len;
} ggp_result;

/**
 * Reads a results message written as this library's workers write it
 * ({"ggp":1,"t":"results","results":[{"lease":"..","seq":N,"n":N,"record":{..}},..]}: no
 * white space around the envelope's keys, the keys in this order, a lease without escapes,
 * no control bytes in a record) without a tree for its envelope, keeping each record's text. GG_OK with *out (*n of them; ggp_results_free) when
 * the message is one, and then it is one ggp_decode accepts with the same results;
 * GG_ENOTFOUND for any other message (ggp_decode reads it, and says why when it is bad);
 * GG_ENOMEM.
 */
int ggp_results_scan(const void *data, size_t len, ggp_result **out, int *n);

/** Frees what ggp_results_scan returned. */
void ggp_results_free(ggp_result *v, int n);

/** A new message object with the envelope filled in; NULL on ENOMEM. */
cJSON *ggp_new(ggp_type t);

/** Prints a message; NULL on ENOMEM or when the text exceeds GGP_MAX_MESSAGE. */
char *ggp_print(const cJSON *m, size_t *out_len);

/**
 * Prints JSON (unformatted) into b, replacing what it held, with no allocation when b is
 * already large enough (b is meant to be kept and reused: the hot paths print into one
 * buffer each instead of a fresh malloc'd text every time). b->data is NUL-terminated and
 * b->len its length. GG_ENOMEM, or GG_ETOOBIG beyond GGP_MAX_MESSAGE (b is then empty).
 */
int ggp_print_buf(const cJSON *item, ggi_buf *b);

#endif
