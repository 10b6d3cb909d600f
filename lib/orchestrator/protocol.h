/*
 * protocol.h - ggp/1, the messages between an orchestrator, its workers and its clients:
 * the envelope ({"ggp": 1, "t": TYPE, ...}), the message types, the hard size cap, the
 * decoder that validates every field before anyone reads it, and the one codec every side
 * writes its messages with (no other file spells the envelope or a type name). protocol.c
 * decodes, protocol_encode.c builds, protocol_stream.c holds the hot paths (the jobs and
 * results streams, events) with their fast readers. docs/protocol.md is the reference.
 * Internal.
 *
 * THREAD SAFETY: no state; every function may be called from any thread.
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
    GGP_ABORT,     /* hub -> worker: {"leases": [lease...], "reason"?}: stop these jobs */
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

/** A new message object with the envelope filled in; NULL on ENOMEM. For a type without a
 * builder below (the builders are what the library's sides use). */
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

/* ---- messages without fields (protocol_encode.c) ---- */

/** The text of a hb, bye, wake or reset (without a reason) message: static, *len bytes;
 * the bytes ggp_print(ggp_new(t)) gives. NULL for any other type. */
const char *ggp_encode_bare(ggp_type t, size_t *len);

/* ---- builders (protocol_encode.c): a message with the fields its type requires; the
 * caller may add optional ones (a reply's "ids", "result", ...) and prints it with
 * ggp_print. NULL on ENOMEM (or a required argument NULL); arguments are copied unless
 * said otherwise. ---- */

/** hello from a client: {"role":"client","name","versions":[1]}. */
cJSON *ggp_build_hello_client(const char *name);
/** hello from a worker: the client's fields, "slots", "queue" and "caps" (caps referenced,
 * not copied: it must outlive the message; NULL: none). */
cJSON *ggp_build_hello_worker(const char *name, int slots, int queue, const cJSON *caps);
/** Adds to a worker's hello what lets the hub resume it: "instance" (the worker object's
 * random id, kept across reconnects) and "leases" (the leases it still holds, an array the
 * hello takes; NULL: none). GG_OK, GG_ENOMEM (leases is freed either way). */
int ggp_hello_add_resume(cJSON *hello, const char *instance, cJSON *leases);
/** welcome: "version", "hb_ms" and, to a worker, its "node" name (NULL: none). */
cJSON *ggp_build_welcome(int hb_ms, const char *node);
/** reset with its "reason" (NULL: none). */
cJSON *ggp_build_reset(const char *reason);
/** reply to request rid: "rid", "ok". */
cJSON *ggp_build_reply(long long rid, int ok);
/** refusing reply: "rid", "ok":false, "code", "message" (NULL: gg_strerror(code)). */
cJSON *ggp_build_reply_error(long long rid, int code, const char *message);
/** submit of the array tasks (taken, also on failure). The client's "rid" is added later. */
cJSON *ggp_build_submit(cJSON *tasks);
/** wait for task id. */
cJSON *ggp_build_wait(const char *id);
/** status of task id (NULL: of the grid). */
cJSON *ggp_build_status(const char *id);
/** cancel of task id; seq > 0 adds the task's "seq" (the orchestrator's own control
 * socket knows it). */
cJSON *ggp_build_cancel(const char *id, long long seq);
/** abort to a worker: stop the jobs of these leases (the array, taken also on failure: 1 to
 * GGP_MAX_BATCH strings) and send no result for them; "reason" (NULL: none) says why. */
cJSON *ggp_build_abort(cJSON *leases, const char *reason);
/** Sets (or replaces) a client request's "rid", after its other fields. GG_ENOMEM. */
int ggp_set_rid(cJSON *req, long long rid);
/** watch, with the "types" filter (referenced, not copied; NULL: every event). */
cJSON *ggp_build_watch(const cJSON *types);

/* ---- the hot paths (protocol_stream.c; its opening comment states the invariant between
 * the results writer and ggp_results_scan) ---- */

/** One job of a jobs message, as the hub writes it. */
typedef struct ggp_job_out {
    const char *lease;       /* hex: written without escaping */
    int64_t seq;
    int n;                   /* the attempt's number, from 1 */
    const char *task;        /* the stored task's JSON text, written verbatim */
    const cJSON *feedback;   /* array; left out while empty or NULL */
    const cJSON *strategy;   /* left out when NULL */
    const cJSON *demote;     /* array; left out while empty or NULL */
} ggp_job_out;

/** Appends the head of a jobs message to b. GG_ENOMEM. */
int ggp_encode_jobs_begin(ggi_buf *b);
/** Appends one job (after a comma unless first). On failure (GG_ENOMEM) nothing of it is
 * left in b. */
int ggp_encode_jobs_add(ggi_buf *b, int first, const ggp_job_out *j);
/** Ends the jobs message in b. GG_ENOMEM, GG_ETOOBIG beyond GGP_MAX_MESSAGE. */
int ggp_encode_jobs_end(ggi_buf *b);

/** Appends one result item ({"lease","seq","n"} copied from job, then "record") as compact
 * JSON, the bytes ggi_json_write gives for that tree. GG_ENOMEM or GG_EINVAL (b unchanged). */
int ggp_encode_result(ggi_buf *b, const cJSON *job, const cJSON *record);
/** Empties b and writes the head of a results message. GG_ENOMEM. */
int ggp_encode_results_begin(ggi_buf *b);
/** Appends a result item's text (from ggp_encode_result; after a comma unless first).
 * GG_ETOOBIG, with nothing appended and no error recorded, when the message would then
 * exceed GGP_MAX_MESSAGE once ended; GG_ENOMEM. */
int ggp_encode_results_add(ggi_buf *b, int first, const char *item, size_t len);
/** Ends the results message in b. GG_ENOMEM. */
int ggp_encode_results_end(ggi_buf *b);

/** A watcher's event message around the event's JSON text (len bytes): malloc'd,
 * NUL-terminated, *out_len bytes; NULL on ENOMEM. What ggp_print would give for
 * ggp_new(GGP_EVENT) with "event", without a tree per watcher. */
char *ggp_encode_event(const char *event, size_t len, size_t *out_len);
/** 1 when data is an event message as ggp_encode_event writes it, with *event and
 * *event_len its event's text (inside data); 0 otherwise. It does not validate the event:
 * only for messages from a hub in this process (anything else goes to ggp_decode). */
int ggp_event_peek(const void *data, size_t len, const char **event, size_t *event_len);

#endif
