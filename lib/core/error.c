/*
 * error.c - status code names, the thread-local last error, memory and version functions of
 * the public API.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "ggi.h"

#define GGI_ERROR_MAX 1024

static _Thread_local char error_message[GGI_ERROR_MAX];
static _Thread_local int error_code;

const char *gg_strerror(int status)
{
    switch (status) {
    case GG_OK: return "success";
    case GG_EINVAL: return "invalid argument or input";
    case GG_ENOMEM: return "out of memory";
    case GG_EIO: return "input/output or system error";
    case GG_ENOTFOUND: return "not found";
    case GG_ETIMEDOUT: return "timed out";
    case GG_EEXIST: return "already exists with different content";
    case GG_EVERSION: return "unknown struct or vtable version";
    case GG_ECANCELLED: return "cancelled";
    case GG_EBUSY: return "busy, try again later";
    case GG_ESTATE: return "not possible in the current state";
    case GG_EEXEC: return "executor failure";
    case GG_EGENERATOR: return "generator failure";
    case GG_ESTORE: return "database failure";
    case GG_ETRANSPORT: return "transport failure";
    case GG_EEXHAUSTED: return "generator exhausted";
    case GG_ETOOBIG: return "input exceeds a size limit";
    case GG_EAGAIN: return "not ready yet";
    case GG_EUNSUPPORTED: return "not supported";
    case GG_EINTERNAL: return "internal error";
    default: return "unknown error";
    }
}

const char *gg_error_last(void)
{
    return error_message;
}

int gg_error_last_code(void)
{
    return error_code;
}

void gg_error_clear(void)
{
    error_message[0] = '\0';
    error_code = 0;
}

int gg_error_set(int status, const char *message)
{
    error_code = status;
    snprintf(error_message, sizeof error_message, "%s",
             message ? message : gg_strerror(status));
    return status;
}

int ggi_error(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_message, sizeof error_message, fmt, ap);
    va_end(ap);
    error_code = status;
    return status;
}

int ggi_error_wrap(const char *fmt, ...)
{
    char prefix[GGI_ERROR_MAX];
    char old[GGI_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, error_message, sizeof old);
    /* A message longer than the buffer is cut; that is acceptable for a message. */
    if (snprintf(error_message, sizeof error_message, "%s%s", prefix,
                 old[0] ? old : gg_strerror(error_code)) >= (int)sizeof error_message)
        error_message[sizeof error_message - 1] = '\0';
    return error_code ? error_code : GG_EINTERNAL;
}

void *gg_malloc(size_t size)
{
    return malloc(size ? size : 1);
}

char *gg_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

void gg_free(void *p)
{
    free(p);
}

unsigned gg_version(void)
{
    return GG_VERSION_NUMBER;
}

const char *gg_version_string(void)
{
    return GG_VERSION_STRING;
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_status;

static void init_dependencies(void)
{
    init_status = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? GG_OK : GG_EIO;
}

int gg_init(void)
{
    pthread_once(&init_once, init_dependencies);
    if (init_status != GG_OK)
        return ggi_error(init_status, "libcurl's global initialisation failed");
    return GG_OK;
}
