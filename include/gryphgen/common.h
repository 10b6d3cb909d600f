/*
 * gryphgen/common.h - status codes, error reporting, memory and version of libgryphgen.
 *
 * THREAD SAFETY: every function here may be called from any thread at any time.
 * gg_error_last() reports the last error of the calling thread only.
 */
#ifndef GRYPHGEN_COMMON_H
#define GRYPHGEN_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Marks a function exported from libgryphgen; everything else is hidden. */
#if defined(GG_BUILDING_LIBRARY)
#define GG_API __attribute__((visibility("default")))
#else
#define GG_API
#endif

/** Compile-time version of the headers; gg_version() gives the library's. */
#define GG_VERSION_MAJOR 1
#define GG_VERSION_MINOR 3
#define GG_VERSION_PATCH 0
#define GG_VERSION_STRING "1.3.0"
/** One number that orders versions: major * 10000 + minor * 100 + patch. */
#define GG_VERSION_NUMBER (GG_VERSION_MAJOR * 10000 + GG_VERSION_MINOR * 100 + GG_VERSION_PATCH)

/**
 * Status codes. 0 is success; failures are negative. A code, once published, keeps its
 * number and meaning forever; new codes are appended.
 */
typedef enum gg_status {
    GG_OK = 0,
    GG_EINVAL = -1,       /**< an argument or input is malformed or out of range */
    GG_ENOMEM = -2,       /**< out of memory */
    GG_EIO = -3,          /**< an operating-system call failed */
    GG_ENOTFOUND = -4,    /**< no such task, file, program or backend */
    GG_ETIMEDOUT = -5,    /**< a wait or a job ran out of time */
    GG_EEXIST = -6,       /**< already exists with different content */
    GG_EVERSION = -7,     /**< a struct or vtable version the library does not know */
    GG_ECANCELLED = -8,   /**< cancelled by request or by shutdown */
    GG_EBUSY = -9,        /**< a queue or limit is full; try again later */
    GG_ESTATE = -10,      /**< the call does not fit the object's current state */
    GG_EEXEC = -11,       /**< an executor could not run a job (infrastructure) */
    GG_EGENERATOR = -12,  /**< a code generator failed (infrastructure) */
    GG_ESTORE = -13,      /**< the database failed */
    GG_ETRANSPORT = -14,  /**< messaging failed */
    GG_EEXHAUSTED = -15,  /**< a generator has no more candidates */
    GG_ETOOBIG = -16,     /**< an input exceeds a documented size limit */
    GG_EAGAIN = -17,      /**< not ready yet (for example a task still running) */
    GG_EUNSUPPORTED = -18,/**< the host or backend cannot do what was asked */
    GG_EINTERNAL = -19    /**< a bug in libgryphgen; please report it */
} gg_status;

/**
 * A static, human-readable description of a status code. Never NULL; unknown codes give
 * "unknown error".
 */
GG_API const char *gg_strerror(int status);

/**
 * The message of the last error raised on the calling thread, with its context (which
 * task, line or field). Never NULL: "" when there is none. Valid until the next libgryphgen
 * call on this thread.
 */
GG_API const char *gg_error_last(void);

/** The status code that went with gg_error_last(), or 0. */
GG_API int gg_error_last_code(void);

/**
 * Sets the calling thread's error message, for host backends (gryphgen/sys/) that report why they
 * failed; message may be NULL.
 * Returns status, so a backend may write `return gg_error_set(GG_EEXEC, "...")`.
 */
GG_API int gg_error_set(int status, const char *message);

/** Forgets the calling thread's last error. */
GG_API void gg_error_clear(void);

/**
 * Allocates memory that libgryphgen may later free with gg_free(). Backends written by a
 * host return their strings in such memory. Returns NULL when out of memory.
 */
GG_API void *gg_malloc(size_t size);

/** Copies a NUL-terminated string into gg_malloc() memory; NULL when out of memory or s is NULL. */
GG_API char *gg_strdup(const char *s);

/** Frees memory that libgryphgen handed to the caller. Accepts NULL. */
GG_API void gg_free(void *p);

/** The library's version as GG_VERSION_NUMBER computes it (the library's, not the headers'). */
GG_API unsigned gg_version(void);

/** The library's version as a static string such as "1.0.0". */
GG_API const char *gg_version_string(void);

/**
 * Initialises process-wide state of the dependencies (libcurl's global init). Called by
 * every *_new function, so hosts need not call it; a host that uses libcurl itself may call
 * it first from its main thread. Idempotent and thread-safe. Returns 0 or a negative code.
 */
GG_API int gg_init(void);

#ifdef __cplusplus
}
#endif
#endif
