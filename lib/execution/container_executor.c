/*
 * container_executor.c - the "container" executor backend: checks a job request, picks the
 * image by language, and drives one container per job through the Docker Engine API over a
 * unix socket (libcurl): create with the limits in HostConfig, upload the files as a ustar
 * archive built in memory, start, wait with the job's timeout, read and decode the
 * multiplexed logs, inspect for an OOM kill, and always remove the container. Running jobs
 * sit in a mutex-protected list so gg_executor_interrupt() can flag and kill them.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "../core/ggi.h"
#include "container_executor.h"
#include "exec_request.h"
#include "job_registry.h"
#include "process_executor.h"
#include "spawn.h"

#define DEFAULT_TIMEOUT_S 10.0
#define MAX_TIMEOUT_S 86400.0
#define DEFAULT_MAX_OUTPUT (64u * 1024u)
#define MAX_BYTES GGI_EXEC_MAX_BYTES
#define MAX_FILES GGI_EXEC_MAX_FILES
#define DEFAULT_NOFILE 256
#define DEFAULT_FSIZE_MB 64
#define DEFAULT_MEMORY_MB 512
#define MIN_MEMORY_MB 8
#define DEFAULT_PIDS 256
#define DEFAULT_NPROC_ULIMIT 4096 /* below the engines' own limits (podman keeps 32768) */
#define MAX_IMAGES 32
#define MAX_REPLY (4u * 1024u * 1024u)  /* JSON replies of the engine */
#define LOG_SLACK (16u << 20) /* log bytes the engine keeps beyond the caps */
#define API "http://engine/v1.41"
#define WORKDIR "/work"
#define STDIN_PATH "/gg-stdin"
#define DEFAULT_IMAGES "python=gryphgen-python:latest,c=gryphgen-c:latest"
#define CLEANUP_TIMEOUT_MS 20000L
#define REMOVE_TRIES 8 /* a refused removal is asked again (remove_container) */
#define CONNECT_TIMEOUT_MS 5000L
#define OOM_MARKER "GG-OOM-KILLED\n"
#define NOTFOUND_MARKER "GG-NOT-FOUND\n"
#define PEAK_MARKER "GG-PEAK=" /* then the cgroup's peak memory in bytes and a newline */
/* The job's wrapper: $0 and $@ are the job's argv. */
#define WRAPPER_BODY(redirect)                                                             \
    "command -v \"$0\" >/dev/null || { printf '" NOTFOUND_MARKER "' >&2; exit 127; }\n"      \
    "\"$0\" \"$@\"" redirect "\ns=$?\nn=0\n"                                                \
    "for f in /sys/fs/cgroup/memory.events /sys/fs/cgroup/memory/memory.oom_control; do\n"  \
    "  [ -r \"$f\" ] && while read -r k v; do [ \"$k\" = oom_kill ] && n=$v; done < \"$f\"\n" \
    "done\n"                                                                               \
    "p=\nfor f in /sys/fs/cgroup/memory.peak /sys/fs/cgroup/memory/memory.max_usage_in_bytes; do\n" \
    "  [ -z \"$p\" ] && [ -r \"$f\" ] && read -r p < \"$f\"\n"                             \
    "done\n"                                                                               \
    "if [ \"$n\" -gt 0 ] 2>/dev/null; then printf '" OOM_MARKER "' >&2\n"                   \
    "elif [ -n \"$p\" ]; then printf '" PEAK_MARKER "%s\\n' \"$p\" >&2; fi\n"                \
    "exit $s\n"
#define WRAPPER WRAPPER_BODY("")
#define WRAPPER_STDIN WRAPPER_BODY(" < " STDIN_PATH)

typedef struct image_entry {
    char *lang;        /* "python", "c", "*" */
    char *image;
    char *interpreter; /* replaces argv[0] when it is this language's interpreter; may be NULL */
} image_entry;

typedef struct cont_exec {
    char *socket;
    image_entry images[MAX_IMAGES];
    size_t n_images;
    size_t max_output;
    double default_timeout_s;
    char exec_id[17];
    ggi_job_registry reg; /* the running jobs (with their containers' ids), for interrupt */
    int engine;           /* 0 not asked yet, 1 Docker-compatible, 2 Podman (atomic) */
} cont_exec;

/* One checked request; strings point into the parsed cJSON tree or into cont_exec. */
typedef struct job {
    ggi_exec_request r;      /* the checked common fields */
    const char *image;
    const char *interpreter; /* replaces argv[0], or NULL */
    unsigned uid, gid;
} job;

/* ---------------------------------------------------------------------------------------- */
/* ustar archive                                                                            */

#define TAR_BLOCK 512

/* width-1 octal digits, zero-padded, then NUL; -1 when v does not fit. */
static int tar_octal(char *field, size_t width, unsigned long long v)
{
    field[width - 1] = '\0';
    for (size_t i = width - 1; i-- > 0;) {
        field[i] = (char)('0' + (v & 7));
        v >>= 3;
    }
    return v ? -1 : 0;
}

static int tar_header(ggi_buf *b, const char *name, size_t name_len, char type, size_t size,
                      unsigned mode, unsigned uid, unsigned gid)
{
    char h[TAR_BLOCK];
    memset(h, 0, sizeof h);
    /* ustar splits a long path at a '/' into prefix (155) and name (100). */
    if (name_len <= 100) {
        memcpy(h, name, name_len);
    } else {
        size_t cut = name_len - 1;
        while (cut > 0 && (name[cut] != '/' || name_len - cut - 1 > 100))
            cut--;
        if (cut == 0 || cut > 155 || name_len - cut - 1 == 0)
            return GG_EINVAL; /* the caller uses a PAX header instead */
        memcpy(h + 345, name, cut);
        memcpy(h, name + cut + 1, name_len - cut - 1);
    }
    if (tar_octal(h + 100, 8, mode & 07777) || tar_octal(h + 108, 8, uid) ||
        tar_octal(h + 116, 8, gid) || tar_octal(h + 124, 12, size) || tar_octal(h + 136, 12, 0))
        return GG_ETOOBIG;
    h[156] = type;
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (size_t i = 0; i < sizeof h; i++)
        sum += (unsigned char)h[i];
    (void)tar_octal(h + 148, 7, sum); /* six digits, NUL, then the space already there */
    return ggi_buf_append(b, h, sizeof h);
}

static int tar_pad(ggi_buf *b, size_t len)
{
    static const char zeros[TAR_BLOCK];
    size_t pad = (TAR_BLOCK - len % TAR_BLOCK) % TAR_BLOCK;
    return pad ? ggi_buf_append(b, zeros, pad) : GG_OK;
}

/* One entry; a name ustar cannot hold goes first into a PAX "path" record. */
static int tar_entry(ggi_buf *b, const char *name, char type, const char *data, size_t len,
                     unsigned mode, unsigned uid, unsigned gid)
{
    size_t nl = strlen(name);
    ggi_buf probe = GGI_BUF_INIT;
    int rc = tar_header(&probe, name, nl, type, len, mode, uid, gid);
    if (rc == GG_EINVAL) {
        /* "<len> path=<name>\n", where len counts itself. */
        size_t body = strlen(" path=\n") + nl, digits = 1, total;
        for (;;) {
            total = body + digits;
            size_t d = 1;
            for (size_t t = total; t >= 10; t /= 10)
                d++;
            if (d == digits)
                break;
            digits = d;
        }
        char *rec = ggi_asprintf("%zu path=%s\n", total, name);
        if (!rec)
            return GG_ENOMEM;
        rc = tar_header(b, "PaxHeader", 9, 'x', total, 0644, uid, gid);
        if (!rc)
            rc = ggi_buf_append(b, rec, total);
        if (!rc)
            rc = tar_pad(b, total);
        free(rec);
        /* The entry's own header carries a short stand-in name. */
        if (!rc)
            rc = tar_header(b, "gg-long-name", 12, type, len, mode, uid, gid);
    } else if (!rc) {
        rc = ggi_buf_append(b, probe.data, probe.len);
    }
    ggi_buf_free(&probe);
    if (!rc && len) {
        rc = ggi_buf_append(b, data, len);
        if (!rc)
            rc = tar_pad(b, len);
    }
    return rc;
}

static int dir_seen(char **dirs, size_t n, const char *d)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(dirs[i], d))
            return 1;
    return 0;
}

int ggi_tar_build(const ggi_tar_entry *files, size_t n, unsigned uid, unsigned gid,
                  char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = files[i].path;
        if (!p || !*p || p[0] == '/')
            return ggi_error(GG_EINVAL, "archive path '%s' must be relative and not empty",
                             p ? p : "");
        for (const char *c = p; (c = strstr(c, "..")) != NULL; c += 2)
            if ((c == p || c[-1] == '/') && (c[2] == '/' || c[2] == '\0'))
                return ggi_error(GG_EINVAL, "archive path '%s' must not contain '..'", p);
    }
    ggi_buf b = GGI_BUF_INIT;
    char **dirs = NULL;
    size_t n_dirs = 0, cap_dirs = 0;
    int rc = GG_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        const char *p = files[i].path;
        /* Every parent directory, outermost first, once. */
        for (const char *s = strchr(p, '/'); s && !rc; s = strchr(s + 1, '/')) {
            char *d = ggi_strndup(p, (size_t)(s - p) + 1); /* with the trailing '/' */
            if (!d) {
                rc = GG_ENOMEM;
                break;
            }
            if (dir_seen(dirs, n_dirs, d)) {
                free(d);
                continue;
            }
            if (n_dirs == cap_dirs) {
                size_t nc = cap_dirs ? cap_dirs * 2 : 16;
                char **nd = realloc(dirs, nc * sizeof *nd);
                if (!nd) {
                    free(d);
                    rc = GG_ENOMEM;
                    break;
                }
                dirs = nd;
                cap_dirs = nc;
            }
            dirs[n_dirs++] = d;
            rc = tar_entry(&b, d, '5', NULL, 0, 0755, uid, gid);
        }
        if (rc)
            break;
        size_t pl = strlen(p);
        if (p[pl - 1] == '/') { /* an explicit directory, with its own mode */
            if (dir_seen(dirs, n_dirs, p))
                continue;
            rc = tar_entry(&b, p, '5', NULL, 0, files[i].mode, uid, gid);
        } else {
            rc = tar_entry(&b, p, '0', files[i].data, files[i].len, files[i].mode, uid, gid);
        }
    }
    static const char end[2 * TAR_BLOCK];
    if (!rc)
        rc = ggi_buf_append(&b, end, sizeof end);
    for (size_t i = 0; i < n_dirs; i++)
        free(dirs[i]);
    free(dirs);
    if (rc) {
        ggi_buf_free(&b);
        return rc == GG_ETOOBIG
                   ? ggi_error(GG_EINVAL, "uid %u, gid %u or a file size does not fit a ustar "
                                          "archive", uid, gid)
                   : ggi_error(GG_ENOMEM, "out of memory building the archive");
    }
    *out_len = b.len;
    *out = ggi_buf_steal(&b);
    return GG_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* multiplexed log stream                                                                   */

void ggi_mux_init(ggi_mux_decoder *d, size_t cap_out, size_t cap_err)
{
    memset(d, 0, sizeof *d);
    d->cap_out = cap_out;
    d->cap_err = cap_err;
}

static int mux_keep(char **buf, size_t *len, size_t cap, int *trunc, const char *p, size_t n)
{
    size_t room = cap - *len;
    if (n > room) {
        *trunc = 1;
        n = room;
    }
    if (!n)
        return GG_OK;
    char *nb = realloc(*buf, *len + n + 1);
    if (!nb)
        return GG_ENOMEM;
    memcpy(nb + *len, p, n);
    *len += n;
    nb[*len] = '\0';
    *buf = nb;
    return GG_OK;
}

static int mux_release(ggi_mux_decoder *d)
{
    int rc = GG_OK;
    if (d->holding)
        rc = mux_keep(&d->err, &d->err_len, d->cap_err, &d->err_truncated, d->held,
                      d->held_len);
    d->holding = 0;
    d->held_len = 0;
    if (rc)
        d->oom = 1;
    return rc;
}

int ggi_mux_feed(ggi_mux_decoder *d, const char *data, size_t n)
{
    while (n) {
        if (d->remaining == 0 && d->holding == 1)
            d->holding = 2; /* the held frame is complete */
        if (d->remaining == 0) {
            size_t take = 8 - d->hdr_len;
            if (take > n)
                take = n;
            memcpy(d->hdr + d->hdr_len, data, take);
            d->hdr_len += take;
            data += take;
            n -= take;
            if (d->hdr_len < 8)
                break;
            d->hdr_len = 0;
            d->stream = d->hdr[0] == 2 ? 2 : 1; /* 0 (stdin) and 1 count as stdout */
            d->remaining = ((size_t)d->hdr[4] << 24) | ((size_t)d->hdr[5] << 16) |
                           ((size_t)d->hdr[6] << 8) | (size_t)d->hdr[7];
            if (mux_release(d))
                return GG_ENOMEM;
            if (d->stream == 2 && d->remaining > 0 && d->remaining <= sizeof d->held)
                d->holding = 1;
            continue;
        }
        size_t take = d->remaining < n ? d->remaining : n;
        if (d->holding == 1) {
            memcpy(d->held + d->held_len, data, take);
            d->held_len += take;
            d->remaining -= take;
            data += take;
            n -= take;
            continue;
        }
        int rc = d->stream == 2
                     ? mux_keep(&d->err, &d->err_len, d->cap_err, &d->err_truncated, data, take)
                     : mux_keep(&d->out, &d->out_len, d->cap_out, &d->out_truncated, data, take);
        if (rc) {
            d->oom = 1;
            return rc;
        }
        d->remaining -= take;
        data += take;
        n -= take;
    }
    return GG_OK;
}

int ggi_mux_finish(ggi_mux_decoder *d, const char *const *markers, size_t n)
{
    if (d->holding && d->remaining == 0) {
        for (size_t i = 0; i < n; i++) {
            if (strlen(markers[i]) == d->held_len && !memcmp(markers[i], d->held, d->held_len)) {
                d->holding = 0;
                d->held_len = 0;
                return (int)i + 1;
            }
        }
    }
    (void)mux_release(d);
    return 0;
}

int ggi_mux_take_value(ggi_mux_decoder *d, const char *prefix, long long *value)
{
    size_t pl = strlen(prefix);
    if (!(d->holding && d->remaining == 0) || d->held_len < pl + 2 ||
        memcmp(d->held, prefix, pl) != 0 || d->held[d->held_len - 1] != '\n')
        return 0;
    long long v = 0;
    for (size_t i = pl; i + 1 < d->held_len; i++) {
        char c = d->held[i];
        if (c < '0' || c > '9' || v > (LLONG_MAX - 9) / 10)
            return 0;
        v = v * 10 + (c - '0');
    }
    *value = v;
    d->holding = 0;
    d->held_len = 0;
    return 1;
}

void ggi_mux_free(ggi_mux_decoder *d)
{
    free(d->out);
    free(d->err);
    memset(d, 0, sizeof *d);
}

/* ---------------------------------------------------------------------------------------- */
/* HTTP over the unix socket                                                                */

typedef struct http_reply {
    long status;
    ggi_buf body;       /* JSON replies (capped at MAX_REPLY) */
    ggi_mux_decoder *mux; /* when set, the body goes to the decoder instead */
    size_t fed;         /* bytes given to mux */
    size_t feed_limit;  /* stop reading logs after this many bytes */
    int too_big;
} http_reply;

typedef struct http_ctx {
    CURL *curl;
    const char *socket;
    const volatile int *cancel; /* aborts a transfer when non-zero */
} http_ctx;

static size_t on_body(char *p, size_t size, size_t nmemb, void *user)
{
    http_reply *r = user;
    size_t n = size * nmemb;
    if (r->mux) {
        if (r->fed + n > r->feed_limit) {
            r->too_big = 1;
            return 0; /* enough read: everything beyond the caps is dropped anyway */
        }
        r->fed += n;
        return ggi_mux_feed(r->mux, p, n) ? 0 : n;
    }
    if (r->body.len + n > MAX_REPLY) {
        r->too_big = 1;
        return 0;
    }
    return ggi_buf_append(&r->body, p, n) ? 0 : n;
}

static int on_progress(void *user, curl_off_t dlt, curl_off_t dln, curl_off_t ult,
                       curl_off_t uln)
{
    (void)dlt, (void)dln, (void)ult, (void)uln;
    const volatile int *cancel = user;
    return cancel && __atomic_load_n(cancel, __ATOMIC_ACQUIRE) ? 1 : 0;
}

/*
 * One request. body may be NULL (no body). timeout_ms 0: none. Returns the CURLcode (0 when
 * a reply came, whatever its status); r->status holds the HTTP status.
 */
static CURLcode http_prepare(CURL *c, http_ctx *h, const char *method, const char *path,
                             const char *ctype, const char *body, size_t body_len,
                             long timeout_ms, int cancellable, http_reply *r,
                             struct curl_slist **hdrs_out)
{
    char url[256];
    if ((size_t)snprintf(url, sizeof url, API "%s", path) >= sizeof url)
        return CURLE_URL_MALFORMAT;
    r->status = 0;
    curl_easy_reset(c);
    struct curl_slist *hdrs = NULL, *t;
    char ct[128];
    if (ctype) {
        snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
        if ((t = curl_slist_append(hdrs, ct)))
            hdrs = t;
    }
    if ((t = curl_slist_append(hdrs, "Expect:")))
        hdrs = t;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, h->socket);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    if (timeout_ms > 0)
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    if (cancellable && h->cancel) {
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)h->cancel);
    }
    if (!strcmp(method, "GET")) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else {
        if (strcmp(method, "POST"))
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        if (body || !strcmp(method, "POST") || !strcmp(method, "PUT")) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
        }
    }
    *hdrs_out = hdrs;
    /* The URL is copied by libcurl. */
    return CURLE_OK;
}

static CURLcode http_do(http_ctx *h, const char *method, const char *path, const char *ctype,
                        const char *body, size_t body_len, long timeout_ms, int cancellable,
                        http_reply *r)
{
    struct curl_slist *hdrs = NULL;
    CURLcode cc = http_prepare(h->curl, h, method, path, ctype, body, body_len, timeout_ms,
                               cancellable, r, &hdrs);
    if (cc == CURLE_OK)
        cc = curl_easy_perform(h->curl);
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hdrs);
    return cc;
}

/* The engine's error message of a reply ({"message": ...}), or its body, or "". */
static const char *reply_message(http_reply *r, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (!r->body.data)
        return buf;
    cJSON *j = cJSON_ParseWithLength(r->body.data, r->body.len);
    const cJSON *m = j ? cJSON_GetObjectItemCaseSensitive(j, "message") : NULL;
    if (cJSON_IsString(m) && m->valuestring)
        snprintf(buf, cap, "%s", m->valuestring);
    else
        snprintf(buf, cap, "%.*s", (int)(r->body.len < 300 ? r->body.len : 300), r->body.data);
    cJSON_Delete(j);
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    return buf;
}

static void reply_reset(http_reply *r)
{
    ggi_buf_free(&r->body);
    r->status = 0;
    r->too_big = 0;
}

/* ---------------------------------------------------------------------------------------- */
/* configuration                                                                            */

static void images_free(cont_exec *ce)
{
    for (size_t i = 0; i < ce->n_images; i++) {
        free(ce->images[i].lang);
        free(ce->images[i].image);
        free(ce->images[i].interpreter);
    }
    ce->n_images = 0;
}

static const char *default_interpreter(const char *lang)
{
    if (!strcmp(lang, "python"))
        return "/usr/bin/python3";
    if (!strcmp(lang, "c"))
        return "/usr/bin/cc";
    return NULL;
}

static int image_add(cont_exec *ce, const char *lang, size_t lang_len, const char *image,
                     size_t image_len, const char *interp)
{
    if (ce->n_images == MAX_IMAGES)
        return ggi_error(GG_EINVAL, "container_images names more than %d images", MAX_IMAGES);
    if (!lang_len || !image_len)
        return ggi_error(GG_EINVAL, "container_images: an entry has an empty language or image");
    image_entry *e = &ce->images[ce->n_images];
    e->lang = ggi_strndup(lang, lang_len);
    e->image = ggi_strndup(image, image_len);
    if (e->lang && !interp)
        interp = default_interpreter(e->lang);
    e->interpreter = interp ? strdup(interp) : NULL;
    if (!e->lang || !e->image || (interp && !e->interpreter)) {
        free(e->lang);
        free(e->image);
        free(e->interpreter);
        memset(e, 0, sizeof *e);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    ce->n_images++;
    return GG_OK;
}

static int parse_images(cont_exec *ce, const char *spec)
{
    while (*spec == ' ' || *spec == '\t' || *spec == '\n')
        spec++;
    if (*spec == '{') {
        cJSON *j = NULL;
        if (ggi_json_parse(spec, strlen(spec), &j))
            return ggi_error_wrap("container_images: ");
        int rc = GG_OK;
        const cJSON *e;
        cJSON_ArrayForEach(e, j) {
            const char *img = NULL, *interp = NULL;
            if (cJSON_IsString(e)) {
                img = e->valuestring;
            } else if (cJSON_IsObject(e)) {
                if (ggi_json_string(e, "image", 1, 0, &img) ||
                    ggi_json_string(e, "interpreter", 0, 0, &interp)) {
                    rc = ggi_error_wrap("container_images['%s']: ", e->string);
                    break;
                }
            } else {
                rc = ggi_error(GG_EINVAL, "container_images['%s'] must be an image name or "
                                          "an object with image and interpreter", e->string);
                break;
            }
            if ((rc = image_add(ce, e->string, strlen(e->string), img, strlen(img), interp)))
                break;
        }
        cJSON_Delete(j);
        return rc;
    }
    const char *p = spec;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (!eq)
            return ggi_error(GG_EINVAL, "container_images: entry '%.*s' is not language=image",
                             (int)len, p);
        const char *l = p, *le = eq, *i = eq + 1, *ie = p + len;
        while (l < le && *l == ' ')
            l++;
        while (le > l && le[-1] == ' ')
            le--;
        while (i < ie && *i == ' ')
            i++;
        while (ie > i && ie[-1] == ' ')
            ie--;
        int rc = image_add(ce, l, (size_t)(le - l), i, (size_t)(ie - i), NULL);
        if (rc)
            return rc;
        p = end ? end + 1 : p + len;
    }
    return GG_OK;
}

static const image_entry *image_for(const cont_exec *ce, const char *lang)
{
    for (size_t i = 0; lang && i < ce->n_images; i++)
        if (!strcmp(ce->images[i].lang, lang))
            return &ce->images[i];
    return NULL;
}

/* The language argv[0] is the interpreter or compiler of, or NULL. */
static const char *lang_of_program(const char *argv0)
{
    const char *base = strrchr(argv0, '/');
    base = base ? base + 1 : argv0;
    if (!strncmp(base, "python", 6)) {
        const char *v = base + 6;
        while (*v && (((*v >= '0' && *v <= '9')) || *v == '.'))
            v++;
        if (!*v)
            return "python";
    }
    static const char *const cc[] = { "cc", "gcc", "clang", "c99", "c11", "tcc" };
    for (size_t i = 0; i < sizeof cc / sizeof cc[0]; i++) {
        size_t n = strlen(cc[i]);
        if (!strncmp(base, cc[i], n) && (base[n] == '\0' || base[n] == '-'))
            return "c";
    }
    return NULL;
}

static char *default_socket(void)
{
    const char *dh = getenv("DOCKER_HOST");
    if (dh && !strncmp(dh, "unix://", 7) && dh[7])
        return strdup(dh + 7);
    static const char *const tries[] = { "/var/run/docker.sock", "/run/podman/podman.sock" };
    struct stat st;
    for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++)
        if (stat(tries[i], &st) == 0)
            return strdup(tries[i]);
    return strdup(tries[0]);
}

/* ---------------------------------------------------------------------------------------- */
/* request checking                                                                         */

static int parse_user(const char *s, unsigned *uid, unsigned *gid)
{
    unsigned long u, g;
    char *end;
    errno = 0;
    u = strtoul(s, &end, 10);
    if (end == s || *end != ':' || errno)
        return -1;
    const char *gs = end + 1;
    g = strtoul(gs, &end, 10);
    if (end == gs || *end || errno || u > 0x7fffffffUL || g > 0x7fffffffUL)
        return -1;
    *uid = (unsigned)u;
    *gid = (unsigned)g;
    return 0;
}

static int check_request(const cont_exec *ce, const cJSON *req, job *j)
{
    memset(j, 0, sizeof *j);
    ggi_exec_policy pol = { ce->default_timeout_s, (long long)ce->max_output, DEFAULT_NOFILE,
                            DEFAULT_FSIZE_MB, DEFAULT_MEMORY_MB, DEFAULT_PIDS, 1.0, 1, 1 };
    int rc = ggi_exec_request_check(req, &pol, &j->r);
    if (rc)
        return rc;
    const cJSON *argv = j->r.argv;
    if (j->r.memory_mb < MIN_MEMORY_MB)
        j->r.memory_mb = MIN_MEMORY_MB; /* engines refuse less */

    const char *iso = NULL;
    if (ggi_json_string(req, "isolation", 0, 0, &iso))
        return gg_error_last_code();
    if (iso && strcmp(iso, "container") && strcmp(iso, "namespaces") && strcmp(iso, "rlimits") &&
        strcmp(iso, "none"))
        return ggi_error(GG_EINVAL, "isolation '%s' is not known (the container backend "
                                    "gives 'container')", iso);
    /* min_isolation (checked above): a container satisfies every level. */

    const char *user = NULL;
    j->uid = j->gid = 65534;
    if (ggi_json_string(req, "user", 0, 64, &user))
        return gg_error_last_code();
    if (user && parse_user(user, &j->uid, &j->gid))
        return ggi_error(GG_EINVAL, "field 'user' must be \"uid:gid\" in numbers, not '%s'",
                         user);
    /* Root owns a workspace base's files: as their owner it could chmod and write them
     * through the hard links of a workdir. */
    if (j->r.ovl_lower)
        return ggi_error(GG_EUNSUPPORTED, "field 'overlay': the container backend binds a "
                         "workdir as it is and mounts no overlay");
    if (j->r.workdir && j->uid == 0)
        return ggi_error(GG_EINVAL, "field 'user' must not be uid 0 with 'workdir' (the base's "
                         "files a workdir links to are root's)");

    const char *lang = NULL, *image = NULL;
    if (ggi_json_string(req, "language", 0, 64, &lang) ||
        ggi_json_string(req, "image", 0, 512, &image))
        return gg_error_last_code();
    const char *argv0 = cJSON_GetArrayItem(argv, 0)->valuestring;
    const char *prog_lang = lang_of_program(argv0);
    if (!lang)
        lang = prog_lang;
    const image_entry *e = image_for(ce, lang);
    if (!e && !image)
        e = image_for(ce, "*");
    if (!e && !image)
        return ggi_error(GG_EINVAL, "no container image for %s%s%s (set container_images or "
                                    "the request's 'image')",
                         lang ? "language '" : "program '", lang ? lang : argv0, "'");
    j->image = image ? image : e->image;
    if (e && prog_lang && !strcmp(prog_lang, e->lang) && e->interpreter)
        j->interpreter = e->interpreter;
    if (image && *image == '\0')
        return ggi_error(GG_EINVAL, "field 'image' is empty");
    return GG_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* the create request                                                                       */

static long long clamp_rlimit(int resource, long long want)
{
    struct rlimit rl;
    if (getrlimit(resource, &rl) == 0 && rl.rlim_max != RLIM_INFINITY &&
        (unsigned long long)want > (unsigned long long)rl.rlim_max)
        return (long long)rl.rlim_max;
    return want;
}

static int add_ulimit(cJSON *arr, const char *name, long long v)
{
    cJSON *u = cJSON_CreateObject();
    if (!u || !cJSON_AddItemToArray(arr, u)) {
        cJSON_Delete(u);
        return GG_ENOMEM;
    }
    if (ggi_json_add_str(u, "Name", name) || ggi_json_add_num(u, "Soft", (double)v) ||
        ggi_json_add_num(u, "Hard", (double)v))
        return GG_ENOMEM;
    return GG_OK;
}

static int add_strings(cJSON *obj, const char *key, const char *const *v, size_t n)
{
    cJSON *a = cJSON_AddArrayToObject(obj, key);
    if (!a)
        return GG_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        cJSON *s = cJSON_CreateString(v[i]);
        if (!s || !cJSON_AddItemToArray(a, s)) {
            cJSON_Delete(s);
            return GG_ENOMEM;
        }
    }
    return GG_OK;
}

static int build_create(const cont_exec *ce, const job *j, char **out)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return GG_ENOMEM;
    int rc = GG_ENOMEM;
    cJSON *cmd, *envs, *labels, *hc, *tmpfs, *ul, *s;
    char user[32], sz[64];
    snprintf(user, sizeof user, "%u:%u", j->uid, j->gid);
    if (ggi_json_add_str(o, "Image", j->image) || ggi_json_add_str(o, "User", user) ||
        ggi_json_add_str(o, "WorkingDir", WORKDIR) || ggi_json_add_bool(o, "Tty", 0) ||
        ggi_json_add_bool(o, "OpenStdin", 0) || ggi_json_add_bool(o, "AttachStdin", 0) ||
        ggi_json_add_bool(o, "NetworkDisabled", 1))
        goto done;
    /* The image's entrypoint is replaced by a small shell wrapper (the image needs
     * /bin/sh): as PID 1 it leaves the job an ordinary process (signals act on it as on the
     * host), redirects stdin from the uploaded file, and after the job reads the cgroup's
     * oom_kill count, since engines do not always report an OOM kill (State.OOMKilled). */
    static const char *const wrap[] = { "/bin/sh", "-c" };
    if (add_strings(o, "Entrypoint", wrap, 2) || !(cmd = cJSON_AddArrayToObject(o, "Cmd")))
        goto done;
    if (!(s = cJSON_CreateString(j->r.stdin_data ? WRAPPER_STDIN : WRAPPER)) ||
        !cJSON_AddItemToArray(cmd, s))
        goto done;
    const cJSON *a;
    int first = 1;
    cJSON_ArrayForEach(a, j->r.argv) {
        const char *v = first && j->interpreter ? j->interpreter : a->valuestring;
        first = 0;
        if (!(s = cJSON_CreateString(v)) || !cJSON_AddItemToArray(cmd, s))
            goto done;
    }
    /* A scrubbed environment, as the process backend's, with the container's paths. */
    if (!(envs = cJSON_AddArrayToObject(o, "Env")))
        goto done;
    const char *base[][2] = { { "PATH", "/usr/local/bin:/usr/bin:/bin" },
                              { "HOME", WORKDIR },
                              { "TMPDIR", "/tmp" },
                              { "LANG", "C.UTF-8" } };
    for (size_t i = 0; i < sizeof base / sizeof base[0]; i++) {
        if (j->r.env && cJSON_GetObjectItemCaseSensitive(j->r.env, base[i][0]))
            continue;
        char *kv = ggi_asprintf("%s=%s", base[i][0], base[i][1]);
        s = kv ? cJSON_CreateString(kv) : NULL;
        free(kv);
        if (!s || !cJSON_AddItemToArray(envs, s))
            goto done;
    }
    if (j->r.env) {
        cJSON_ArrayForEach(a, j->r.env) {
            char *kv = ggi_asprintf("%s=%s", a->string, a->valuestring);
            s = kv ? cJSON_CreateString(kv) : NULL;
            free(kv);
            if (!s || !cJSON_AddItemToArray(envs, s))
                goto done;
        }
    }
    if (!(labels = cJSON_AddObjectToObject(o, "Labels")) ||
        ggi_json_add_str(labels, "gryphgen.job", "1") ||
        ggi_json_add_str(labels, "gryphgen.executor", ce->exec_id))
        goto done;

    if (!(hc = cJSON_AddObjectToObject(o, "HostConfig")))
        goto done;
    double mem = (double)j->r.memory_mb * 1048576.0;
    if (ggi_json_add_num(hc, "Memory", mem) || ggi_json_add_num(hc, "MemorySwap", mem) ||
        ggi_json_add_num(hc, "NanoCpus", round(j->r.cpus * 1e9)) ||
        ggi_json_add_num(hc, "PidsLimit", (double)j->r.nproc) ||
        ggi_json_add_str(hc, "NetworkMode", "none") ||
        ggi_json_add_bool(hc, "ReadonlyRootfs", 1) || ggi_json_add_bool(hc, "Privileged", 0) ||
        ggi_json_add_bool(hc, "AutoRemove", 0))
        goto done;
    static const char *const drop[] = { "ALL" };
    static const char *const secopt[] = { "no-new-privileges" };
    if (add_strings(hc, "CapDrop", drop, 1) || add_strings(hc, "SecurityOpt", secopt, 1))
        goto done;
    snprintf(sz, sizeof sz, "rw,nosuid,nodev,size=%lldm,mode=1777", j->r.fsize_mb);
    if (!(tmpfs = cJSON_AddObjectToObject(hc, "Tmpfs")) ||
        (!j->r.workdir && ggi_json_add_str(tmpfs, WORKDIR, sz)) ||
        ggi_json_add_str(tmpfs, "/tmp", sz))
        goto done;
    /* A caller's workdir is bound read-write at the workspace instead of a tmpfs. */
    if (j->r.workdir) {
        cJSON *mounts = cJSON_AddArrayToObject(hc, "Mounts"), *m = cJSON_CreateObject();
        if (!mounts || !m || !cJSON_AddItemToArray(mounts, m)) {
            cJSON_Delete(m);
            goto done;
        }
        if (ggi_json_add_str(m, "Type", "bind") || ggi_json_add_str(m, "Source", j->r.workdir) ||
            ggi_json_add_str(m, "Target", WORKDIR) || ggi_json_add_bool(m, "ReadOnly", 0))
            goto done;
    }
    /* Root may be unable to raise a hard rlimit, and the engine applies every ulimit (and
     * defaults nproc, above what it may set, when it is not given), so each is clamped to
     * this process's hard limits and nproc is always present. The engine's own limits may be
     * lower still (podman lowers its nproc to 32768), hence the modest nproc. The per-job
     * process cap is PidsLimit; nproc counts the user across all jobs. */
    if (!(ul = cJSON_AddArrayToObject(hc, "Ulimits")))
        goto done;
    long long nofile = clamp_rlimit(RLIMIT_NOFILE, j->r.nofile);
    long long nproc = clamp_rlimit(RLIMIT_NPROC, DEFAULT_NPROC_ULIMIT);
    long long fsize = clamp_rlimit(RLIMIT_FSIZE, j->r.fsize_mb << 20);
    if (add_ulimit(ul, "nofile", nofile) || add_ulimit(ul, "nproc", nproc) ||
        add_ulimit(ul, "fsize", fsize))
        goto done;
    if (j->r.cpu_s > 0 && add_ulimit(ul, "cpu", clamp_rlimit(RLIMIT_CPU, (long long)ceil(j->r.cpu_s))))
        goto done;
    /* The engine's log file is what logs reads back; capping it keeps an output flood from
     * filling the host's disk. */
    cJSON *lc = cJSON_AddObjectToObject(hc, "LogConfig"), *lcc;
    if (!lc || !(lcc = cJSON_AddObjectToObject(lc, "Config")))
        goto done;
    snprintf(sz, sizeof sz, "%lld", 2 * j->r.max_output + (long long)LOG_SLACK);
    if (ggi_json_add_str(lc, "Type", "k8s-file") || ggi_json_add_str(lcc, "max-size", sz))
        goto done;
    *out = ggi_json_print(o);
    rc = *out ? GG_OK : GG_ENOMEM;
done:
    cJSON_Delete(o);
    return rc;
}

/* The files, relative to the workspace; NULL (and 0) when there are none. */
static int build_files_archive(const job *j, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (!j->r.files || cJSON_GetArraySize(j->r.files) == 0)
        return GG_OK;
    ggi_tar_entry ents[MAX_FILES];
    size_t n = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, j->r.files) {
        if (n == MAX_FILES)
            break;
        const char *c = cJSON_GetObjectItemCaseSensitive(f, "content")->valuestring;
        ents[n].path = cJSON_GetObjectItemCaseSensitive(f, "path")->valuestring;
        ents[n].data = c;
        ents[n].len = strlen(c);
        ents[n].mode = 0644;
        n++;
    }
    return ggi_tar_build(ents, n, j->uid, j->gid, out, len);
}

static int engine_error(const cont_exec *ce, CURLcode cc, http_reply *r, const char *what);

/* Uploads an archive into the container, extracted at dir. */
static int upload(const cont_exec *ce, http_ctx *h, const char *id, const char *dir,
                  const char *tar, size_t len)
{
    char path[200];
    snprintf(path, sizeof path, "/containers/%s/archive?path=%s&copyUIDGID=1", id, dir);
    http_reply r;
    memset(&r, 0, sizeof r);
    CURLcode cc = http_do(h, "PUT", path, "application/x-tar", tar, len, CLEANUP_TIMEOUT_MS, 0,
                          &r);
    int rc = cc == CURLE_OK && r.status == 200
                 ? GG_OK
                 : engine_error(ce, cc, &r, "uploading the job's files");
    ggi_buf_free(&r.body);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* result                                                                                   */

static int add_text(cJSON *o, const char *key, const char *data, size_t len)
{
    char *clean = NULL;
    int rc = ggi_utf8_sanitize(data ? data : "", len, &clean);
    if (rc)
        return rc;
    rc = ggi_json_add_str(o, key, clean);
    free(clean);
    return rc;
}

typedef struct outcome {
    long status;       /* the engine's exit status */
    long long peak_kb; /* the container's peak memory (its cgroup), or 0 when unknown */
    int timed_out, oom_killed;
    double duration_ms;
    ggi_mux_decoder mux;
} outcome;

static int build_result(const job *j, const outcome *oc, char **out)
{
    /* Engines report a death by signal as 128 + the signal, like a shell. */
    int sig = 0, code = (int)oc->status;
    if (oc->status > 128 && oc->status < 128 + 65) {
        sig = (int)oc->status - 128;
        code = -1;
    }
    char name[24];
    ggi_spawn_signal_name(sig, name);
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return ggi_error(GG_ENOMEM, "out of memory building the result");
    int rc;
    if ((rc = ggi_json_add_num(o, "exit_code", code)) ||
        (rc = ggi_json_add_num(o, "signal", sig)) ||
        (rc = ggi_json_add_str(o, "signal_name", sig ? name : NULL)) ||
        (rc = ggi_json_add_bool(o, "timed_out", oc->timed_out)) ||
        (rc = ggi_json_add_bool(o, "cancelled", 0)) ||
        (rc = ggi_json_add_num(o, "duration_ms", round(oc->duration_ms * 1000.0) / 1000.0)) ||
        (rc = ggi_json_add_num(o, "max_rss_kb", (double)oc->peak_kb)) ||
        (rc = add_text(o, "stdout", oc->mux.out, oc->mux.out_len)) ||
        (rc = ggi_json_add_bool(o, "stdout_truncated", oc->mux.out_truncated)) ||
        (rc = add_text(o, "stderr", oc->mux.err, oc->mux.err_len)) ||
        (rc = ggi_json_add_bool(o, "stderr_truncated", oc->mux.err_truncated)) ||
        (rc = ggi_json_add_str(o, "isolation", "container")) ||
        (rc = ggi_json_add_bool(o, "oom_killed", oc->oom_killed)) ||
        (rc = ggi_json_add_str(o, "image", j->image))) {
        cJSON_Delete(o);
        return ggi_error(GG_ENOMEM, "out of memory building the result");
    }
    char *s = ggi_json_print(o);
    cJSON_Delete(o);
    if (!s)
        return ggi_error(GG_ENOMEM, "out of memory printing the result");
    *out = s;
    return GG_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* one job                                                                                  */

static int engine_error(const cont_exec *ce, CURLcode cc, http_reply *r, const char *what)
{
    char msg[512];
    if (cc != CURLE_OK)
        return ggi_error(GG_EEXEC, "container engine at '%s': %s failed: %s", ce->socket, what,
                         curl_easy_strerror(cc));
    return ggi_error(GG_EEXEC, "container engine at '%s': %s failed (HTTP %ld): %s", ce->socket,
                     what, r->status, reply_message(r, msg, sizeof msg));
}

/* Kills and removes the container. An engine may refuse a forced removal while the
 * container is still being killed (an interrupt's kill racing this removal: Podman answers
 * 409 or 500 then), so a refusal is asked again, REMOVE_TRIES times in all, briefly apart,
 * before the container counts as leaked. On failure returns GG_EEXEC and writes into why
 * (why_cap bytes) the tries and the engine's last answer; sets no error itself. */
static int remove_container(const cont_exec *ce, http_ctx *h, const char *id, char *why,
                            size_t why_cap)
{
    char path[160];
    snprintf(path, sizeof path, "/containers/%s?force=1&v=1", id);
    for (int tries = 0; tries < REMOVE_TRIES; tries++) {
        if (tries)
            ggi_sleep_ms(20.0 * tries);
        http_reply r;
        memset(&r, 0, sizeof r);
        CURLcode cc = http_do(h, "DELETE", path, NULL, NULL, 0, CLEANUP_TIMEOUT_MS, 0, &r);
        int ok = cc == CURLE_OK && (r.status == 204 || r.status == 200 || r.status == 404);
        if (!ok && tries == REMOVE_TRIES - 1) {
            char msg[256], said[200];
            if (cc != CURLE_OK)
                snprintf(msg, sizeof msg, "%s", curl_easy_strerror(cc));
            else
                snprintf(msg, sizeof msg, "HTTP %ld: %s", r.status,
                         reply_message(&r, said, sizeof said));
            snprintf(why, why_cap, "container engine at '%s': could not remove container %.12s "
                     "after %d tries (last: %s)", ce->socket, id, REMOVE_TRIES, msg);
        }
        ggi_buf_free(&r.body);
        if (ok)
            return GG_OK;
    }
    return GG_EEXEC;
}

static void kill_container(http_ctx *h, const char *id)
{
    char path[160];
    snprintf(path, sizeof path, "/containers/%s/kill?signal=KILL", id);
    http_reply r;
    memset(&r, 0, sizeof r);
    (void)http_do(h, "POST", path, NULL, NULL, 0, CLEANUP_TIMEOUT_MS, 0, &r);
    ggi_buf_free(&r.body);
}

/*
 * The wait request. Podman's compatible wait polls the container's state slowly (a quarter
 * second or more per job); its own API takes a poll interval, so on Podman that one is used.
 * The engine is asked once per executor (GET /version).
 */
static void wait_path(cont_exec *ce, http_ctx *h, const char *id, char *path, size_t cap)
{
    int kind = __atomic_load_n(&ce->engine, __ATOMIC_ACQUIRE);
    if (!kind) {
        http_reply r;
        memset(&r, 0, sizeof r);
        kind = 1;
        if (http_do(h, "GET", "/version", NULL, NULL, 0, CLEANUP_TIMEOUT_MS, 0, &r) == CURLE_OK &&
            r.status == 200 && r.body.data && strstr(r.body.data, "\"Podman Engine\""))
            kind = 2;
        ggi_buf_free(&r.body);
        __atomic_store_n(&ce->engine, kind, __ATOMIC_RELEASE);
    }
    if (kind == 2)
        snprintf(path, cap, "/../v4.0.0/libpod/containers/%s/wait?condition=stopped&"
                            "condition=exited&interval=10ms", id);
    else
        snprintf(path, cap, "/containers/%s/wait", id);
}

/* The exit status in a wait reply: {"StatusCode": n} (Docker API) or n (Podman's API). */
static int wait_status(const http_reply *r, long *status)
{
    cJSON *j = r->body.data ? cJSON_ParseWithLength(r->body.data, r->body.len) : NULL;
    const cJSON *sc = cJSON_IsNumber(j) ? j : j ? cJSON_GetObjectItemCaseSensitive(j, "StatusCode")
                                                : NULL;
    int ok = cJSON_IsNumber(sc);
    if (ok)
        *status = (long)sc->valuedouble;
    cJSON_Delete(j);
    return ok ? 0 : -1;
}

/* Waits for the container's end; *status is its exit status. CURLE_OPERATION_TIMEDOUT when
 * timeout_ms ran out, CURLE_ABORTED_BY_CALLBACK when cancelled. */
static CURLcode wait_container(cont_exec *ce, http_ctx *h, const char *id, long timeout_ms,
                               int cancellable, long *status, int *rc_out)
{
    char path[256];
    wait_path(ce, h, id, path, sizeof path);
    http_reply r;
    memset(&r, 0, sizeof r);
    *rc_out = GG_OK;
    CURLcode cc = http_do(h, "POST", path, NULL, NULL, 0, timeout_ms, cancellable, &r);
    if (cc == CURLE_OK && r.status == 200) {
        if (wait_status(&r, status))
            *rc_out = ggi_error(GG_EEXEC, "container engine at '%s': wait gave no status",
                                ce->socket);
    } else if (cc != CURLE_OPERATION_TIMEDOUT && cc != CURLE_ABORTED_BY_CALLBACK) {
        *rc_out = engine_error(ce, cc, &r, "wait");
    }
    ggi_buf_free(&r.body);
    return cc;
}

static void inspect_oom(http_ctx *h, const char *id, int *oom)
{
    char path[160];
    snprintf(path, sizeof path, "/containers/%s/json", id);
    http_reply r;
    memset(&r, 0, sizeof r);
    if (http_do(h, "GET", path, NULL, NULL, 0, CLEANUP_TIMEOUT_MS, 0, &r) == CURLE_OK &&
        r.status == 200 && r.body.data) {
        cJSON *j = cJSON_ParseWithLength(r.body.data, r.body.len);
        const cJSON *st = j ? cJSON_GetObjectItemCaseSensitive(j, "State") : NULL;
        const cJSON *o = st ? cJSON_GetObjectItemCaseSensitive(st, "OOMKilled") : NULL;
        *oom = cJSON_IsTrue(o);
        cJSON_Delete(j);
    }
    ggi_buf_free(&r.body);
}

/*
 * Waits for the container's end within timeout_ms while following its logs, so the head of
 * a flood is kept whatever the engine's (size-capped) log file later drops; bytes beyond the
 * caps are read and dropped. Engines do not always end a follow when the container ends
 * (Podman without events), so it is dropped when the wait returns. Returns the wait's CURLcode (CURLE_OPERATION_TIMEDOUT when the
 * time ran out, CURLE_ABORTED_BY_CALLBACK when cancelled); *status is the exit status and
 * *rc_out holds other errors.
 */
static CURLcode wait_and_follow(cont_exec *ce, http_ctx *h, const char *id,
                                ggi_mux_decoder *mux, long timeout_ms, long *status,
                                int *rc_out)
{
    *rc_out = GG_OK;
    char wpath[256], lpath[160];
    wait_path(ce, h, id, wpath, sizeof wpath);
    snprintf(lpath, sizeof lpath, "/containers/%s/logs?stdout=1&stderr=1&follow=1", id);
    http_reply wr, lr;
    memset(&wr, 0, sizeof wr);
    memset(&lr, 0, sizeof lr);
    lr.mux = mux;
    lr.feed_limit = SIZE_MAX;
    CURL *lc = curl_easy_init();
    CURLM *m = curl_multi_init();
    struct curl_slist *wh = NULL, *lh = NULL;
    CURLcode wcc = CURLE_OUT_OF_MEMORY;
    if (!lc || !m) {
        *rc_out = ggi_error(GG_ENOMEM, "cannot make curl handles");
        goto out;
    }
    if ((wcc = http_prepare(h->curl, h, "POST", wpath, NULL, NULL, 0, timeout_ms, 1, &wr, &wh)) ||
        (wcc = http_prepare(lc, h, "GET", lpath, NULL, NULL, 0, 0, 1, &lr, &lh))) {
        *rc_out = ggi_error(GG_EEXEC, "cannot prepare requests: %s", curl_easy_strerror(wcc));
        goto out;
    }
    curl_multi_add_handle(m, h->curl);
    curl_multi_add_handle(m, lc);
    int wait_done = 0;
    for (;;) {
        int running = 0;
        if (curl_multi_perform(m, &running) != CURLM_OK)
            break;
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            if (msg->easy_handle == h->curl) {
                wait_done = 1;
                wcc = msg->data.result;
            }
        }
        /* At the end the caller reads the whole log once more, so the follow only has to
         * have kept the head of the output. */
        if (wait_done)
            break;
        curl_multi_poll(m, NULL, 0, 50, NULL);
    }
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &wr.status);
    curl_easy_getinfo(lc, CURLINFO_RESPONSE_CODE, &lr.status);
    curl_multi_remove_handle(m, h->curl);
    curl_multi_remove_handle(m, lc);
    if (mux->oom) {
        *rc_out = ggi_error(GG_ENOMEM, "out of memory reading the job's output");
    } else if (wcc == CURLE_OK && wr.status == 200) {
        if (wait_status(&wr, status))
            *rc_out = ggi_error(GG_EEXEC, "container engine at '%s': wait gave no status",
                                ce->socket);
        if (!*rc_out && lr.status != 200 && lr.status != 0) {
            lr.mux = NULL;
            *rc_out = engine_error(ce, CURLE_OK, &lr, "logs");
        }
    } else if (wcc == CURLE_OK || (wcc != CURLE_OPERATION_TIMEDOUT &&
                                   wcc != CURLE_ABORTED_BY_CALLBACK)) {
        *rc_out = engine_error(ce, wcc, &wr, "wait");
    }
out:
    curl_slist_free_all(wh);
    curl_slist_free_all(lh);
    if (m)
        curl_multi_cleanup(m);
    if (lc)
        curl_easy_cleanup(lc);
    ggi_buf_free(&wr.body);
    ggi_buf_free(&lr.body);
    return wcc;
}

/*
 * Reads the whole log once (the container has ended) into mux; *fed is the number of bytes
 * the engine sent. Reading stops, without error, after limit bytes.
 */
static int read_logs(const cont_exec *ce, http_ctx *h, const char *id, ggi_mux_decoder *mux,
                     size_t limit, size_t *fed)
{
    char path[160];
    snprintf(path, sizeof path, "/containers/%s/logs?stdout=1&stderr=1&follow=0", id);
    http_reply r;
    memset(&r, 0, sizeof r);
    r.mux = mux;
    r.feed_limit = limit;
    CURLcode cc = http_do(h, "GET", path, NULL, NULL, 0, CLEANUP_TIMEOUT_MS, 0, &r);
    int rc = GG_OK;
    if (mux->oom) {
        rc = ggi_error(GG_ENOMEM, "out of memory reading the job's output");
    } else if (!r.too_big && (cc != CURLE_OK || r.status != 200)) {
        r.mux = NULL;
        rc = engine_error(ce, cc, &r, "logs");
    }
    *fed = r.too_big ? limit : r.fed;
    ggi_buf_free(&r.body);
    return rc;
}

/* The inputs of one job: the create request, the files (written into a workdir, or an
 * archive for the engine to upload) and stdin's archive. Into a workdir the files are written
 * here, by replacing (the engine's archive upload would write into a file that may be a hard
 * link to a read-only base), and handed to the job's user. */
static int prepare_inputs(const cont_exec *ce, const job *j, char **create, char **tar,
                          size_t *tar_len, char **stdin_tar, size_t *stdin_tar_len)
{
    int rc = build_create(ce, j, create) ? ggi_error(GG_ENOMEM, "out of memory") : GG_OK;
    if (!rc && j->r.workdir)
        rc = ggi_exec_write_files(j->r.workdir, j->r.files, 1,
                                  geteuid() == 0 ? (uid_t)j->uid : (uid_t)-1,
                                  geteuid() == 0 ? (gid_t)j->gid : (gid_t)-1);
    else if (!rc)
        rc = build_files_archive(j, tar, tar_len);
    if (!rc && j->r.stdin_data) {
        ggi_tar_entry in = { STDIN_PATH + 1, j->r.stdin_data, strlen(j->r.stdin_data), 0444 };
        rc = ggi_tar_build(&in, 1, j->uid, j->gid, stdin_tar, stdin_tar_len);
    }
    return rc;
}

/* Creates the container; its Id (checked: hex, short) goes into id and the registry, so an
 * interrupt can reach it. */
static int create_container(cont_exec *ce, http_ctx *h, const job *j, ggi_job_slot *slot,
                            const char *create, char id[80])
{
    http_reply r;
    memset(&r, 0, sizeof r);
    char msg[512];
    int rc = GG_OK;
    CURLcode cc = http_do(h, "POST", "/containers/create", "application/json", create,
                          strlen(create), CLEANUP_TIMEOUT_MS, 0, &r);
    if (cc == CURLE_OK && r.status == 201) {
        cJSON *jr = r.body.data ? cJSON_ParseWithLength(r.body.data, r.body.len) : NULL;
        const cJSON *idj = jr ? cJSON_GetObjectItemCaseSensitive(jr, "Id") : NULL;
        if (cJSON_IsString(idj) && idj->valuestring && strlen(idj->valuestring) < 80 &&
            strspn(idj->valuestring, "0123456789abcdef") == strlen(idj->valuestring))
            snprintf(id, 80, "%s", idj->valuestring);
        cJSON_Delete(jr);
        if (!id[0])
            rc = ggi_error(GG_EEXEC, "container engine at '%s': create gave no valid Id",
                           ce->socket);
        else
            ggi_job_set_id(&ce->reg, slot, id);
    } else if (cc == CURLE_OK && r.status == 404) {
        rc = ggi_error(GG_EEXEC, "container engine at '%s': image '%s' not found: %s",
                       ce->socket, j->image, reply_message(&r, msg, sizeof msg));
    } else {
        rc = engine_error(ce, cc, &r, "create");
    }
    reply_reset(&r);
    return rc;
}

/* Starts the container; a program missing from the image is GG_ENOTFOUND, naming both. */
static int start_container(const cont_exec *ce, http_ctx *h, const job *j, const char *id)
{
    http_reply r;
    memset(&r, 0, sizeof r);
    char msg[512], path[160];
    int rc = GG_OK;
    snprintf(path, sizeof path, "/containers/%s/start", id);
    CURLcode cc = http_do(h, "POST", path, NULL, NULL, 0, CLEANUP_TIMEOUT_MS, 0, &r);
    if (cc == CURLE_OK && (r.status == 204 || r.status == 304)) {
        /* started */
    } else if (cc == CURLE_OK) {
        reply_message(&r, msg, sizeof msg);
        if (strstr(msg, "not found") || strstr(msg, "no such file"))
            rc = ggi_error(GG_ENOTFOUND, "program '%s' not found in image '%s': %s",
                           cJSON_GetArrayItem(j->r.argv, 0)->valuestring, j->image, msg);
        else
            rc = engine_error(ce, cc, &r, "start");
    } else {
        rc = engine_error(ce, cc, &r, "start");
    }
    reply_reset(&r);
    return rc;
}

/* Waits for the end within the job's timeout (counted from t0), following the logs
 * meanwhile; a timed-out container is killed. *marker: which wrapper marker the output held
 * (1 OOM, 2 program not found). */
static int await_container(cont_exec *ce, http_ctx *h, const job *j, ggi_job_slot *slot,
                           const char *id, double t0, outcome *oc, int *marker)
{
    int rc = GG_OK;
    long left = (long)ceil(j->r.timeout_s * 1000.0 - (ggi_now_ms() - t0));
    int wrc = GG_OK;
    CURLcode cc = wait_and_follow(ce, h, id, &oc->mux, left > 1 ? left : 1, &oc->status, &wrc);
    oc->duration_ms = ggi_now_ms() - t0;
    if (cc == CURLE_ABORTED_BY_CALLBACK || ggi_job_cancelled(slot)) {
        rc = ggi_error(GG_ECANCELLED, "job cancelled by gg_executor_interrupt()");
    } else if (cc == CURLE_OPERATION_TIMEDOUT) {
        oc->timed_out = 1;
        kill_container(h, id);
        int rc2 = GG_OK;
        CURLcode cc2 = wait_container(ce, h, id, CLEANUP_TIMEOUT_MS, 0, &oc->status, &rc2);
        if (cc2 != CURLE_OK || rc2)
            oc->status = 128 + 9;
    } else {
        rc = wrc;
    }
    /* The follow may lag behind the end. When the engine's log file cannot have been cut (it
     * holds less than its cap), one more read of all of it is complete and replaces what the
     * follow saw; after a flood the follow's head stands. */
    if (!rc) {
        ggi_mux_decoder whole;
        ggi_mux_init(&whole, (size_t)j->r.max_output, (size_t)j->r.max_output);
        size_t fed = 0, log_max = 2 * (size_t)j->r.max_output + LOG_SLACK;
        rc = read_logs(ce, h, id, &whole, log_max, &fed);
        if (!rc && fed < log_max) {
            ggi_mux_free(&oc->mux);
            oc->mux = whole;
        } else {
            ggi_mux_free(&whole);
        }
    }
    static const char *const markers[] = { OOM_MARKER, NOTFOUND_MARKER };
    long long peak = 0;
    if (ggi_mux_take_value(&oc->mux, PEAK_MARKER, &peak))
        oc->peak_kb = peak / 1024;
    *marker = ggi_mux_finish(&oc->mux, markers, 2);
    return rc;
}

/* Whatever happened, the container goes. A failed removal is an error of its own when nothing
 * else failed, and is added to the other error when something did: a leaked container is a
 * fault the host must hear of. */
static int remove_after(cont_exec *ce, http_ctx *h, ggi_job_slot *slot, const char *id, int rc,
                        char **out)
{
    int saved_code = gg_error_last_code();
    char saved[1024], why[512] = "";
    snprintf(saved, sizeof saved, "%s", gg_error_last());
    int rrc = remove_container(ce, h, id, why, sizeof why);
    if (rc && rrc) {
        ggi_error(saved_code, "%s; and %s", saved, why);
    } else if (rc) {
        gg_error_set(saved_code, saved);
    } else if (rrc) {
        free(*out);
        *out = NULL;
        rc = ggi_error(GG_EEXEC, "%s", why);
    }
    ggi_job_set_id(&ce->reg, slot, "");
    return rc;
}

static int run_job(cont_exec *ce, const job *j, ggi_job_slot *slot, char **out)
{
    http_ctx h = { curl_easy_init(), ce->socket, &slot->cancel };
    if (!h.curl)
        return ggi_error(GG_ENOMEM, "cannot make a curl handle");
    char *create = NULL, *tar = NULL, *stdin_tar = NULL;
    size_t tar_len = 0, stdin_tar_len = 0;
    char id[80] = "";
    outcome oc;
    memset(&oc, 0, sizeof oc);
    ggi_mux_init(&oc.mux, (size_t)j->r.max_output, (size_t)j->r.max_output);
    int rc = prepare_inputs(ce, j, &create, &tar, &tar_len, &stdin_tar, &stdin_tar_len);
    if (!rc)
        rc = create_container(ce, &h, j, slot, create, id);
    if (!rc && ggi_job_cancelled(slot))
        rc = ggi_error(GG_ECANCELLED, "job cancelled by gg_executor_interrupt()");
    /* The files go into the workspace (Podman copies them into the tmpfs mounted there when
     * the container starts; an archive holding the workspace directory itself would reset its
     * mode), stdin beside it, outside the workspace. */
    if (!rc && tar)
        rc = upload(ce, &h, id, WORKDIR, tar, tar_len);
    if (!rc && stdin_tar)
        rc = upload(ce, &h, id, "/", stdin_tar, stdin_tar_len);
    if (!rc && ggi_job_cancelled(slot))
        rc = ggi_error(GG_ECANCELLED, "job cancelled by gg_executor_interrupt()");
    double t0 = ggi_now_ms();
    if (!rc)
        rc = start_container(ce, &h, j, id);
    int marker = 0;
    if (!rc)
        rc = await_container(ce, &h, j, slot, id, t0, &oc, &marker);
    if (!rc && marker == 2 && oc.status == 127)
        rc = ggi_error(GG_ENOTFOUND, "program '%s' not found in image '%s'",
                       cJSON_GetArrayItem(j->r.argv, 0)->valuestring, j->image);
    /* An OOM kill is a SIGKILL; only then is the engine asked as well as the wrapper. */
    if (!rc && !oc.timed_out && oc.status == 128 + 9)
        inspect_oom(&h, id, &oc.oom_killed);
    oc.oom_killed |= marker == 1;
    if (!rc)
        rc = build_result(j, &oc, out);
    if (id[0])
        rc = remove_after(ce, &h, slot, id, rc, out);
    ggi_mux_free(&oc.mux);
    free(create);
    free(tar);
    free(stdin_tar);
    curl_easy_cleanup(h.curl);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* the backend                                                                              */

static int ce_run(void *self, const char *request_json, char **out)
{
    cont_exec *ce = self;
    *out = NULL;
    cJSON *req = NULL;
    int rc = ggi_exec_request_parse(request_json, &req);
    if (rc)
        return rc;
    job j;
    rc = check_request(ce, req, &j);
    if (!rc) {
        ggi_job_slot slot;
        ggi_job_register(&ce->reg, &slot);
        rc = run_job(ce, &j, &slot, out);
        ggi_job_unregister(&ce->reg, &slot);
    }
    cJSON_Delete(req);
    return rc;
}

static int ce_interrupt(void *self)
{
    cont_exec *ce = self;
    /* Flag every job (its wait aborts), then kill the containers so they stop at once even
     * between two requests. Ids are copied out: the runs remove their containers
     * concurrently, and a kill of a removed one is harmless. */
    char (*ids)[GGI_JOB_ID_MAX] = NULL;
    size_t n = ggi_job_registry_cancel_all(&ce->reg, &ids);
    if (n) {
        http_ctx h = { curl_easy_init(), ce->socket, NULL };
        for (size_t i = 0; h.curl && i < n; i++)
            kill_container(&h, ids[i]);
        if (h.curl)
            curl_easy_cleanup(h.curl);
    }
    free(ids);
    return GG_OK;
}

static void ce_destroy(void *self)
{
    cont_exec *ce = self;
    if (!ce)
        return;
    images_free(ce);
    ggi_job_registry_destroy(&ce->reg);
    free(ce->socket);
    free(ce);
}

const char *ggi_container_executor_id(const void *self)
{
    return self ? ((const cont_exec *)self)->exec_id : "";
}

int ggi_container_executor_new(const gg_executor_options *opts, gg_executor_vtable *vt_out,
                               void **self_out)
{
    *self_out = NULL;
    size_t max_output = opts && opts->max_output ? opts->max_output : DEFAULT_MAX_OUTPUT;
    if (max_output > MAX_BYTES)
        return ggi_error(GG_EINVAL, "max_output is %zu bytes, the limit is %u", max_output,
                         MAX_BYTES);
    double timeout = opts ? opts->default_timeout_s : 0;
    if (!isfinite(timeout) || timeout < 0 || timeout > MAX_TIMEOUT_S)
        return ggi_error(GG_EINVAL, "default_timeout_s must be from 0 to %g", MAX_TIMEOUT_S);
    cont_exec *ce = calloc(1, sizeof *ce);
    if (!ce)
        return ggi_error(GG_ENOMEM, "out of memory");
    const char *sock = opts ? opts->container_socket : NULL;
    if (sock && !strncmp(sock, "unix://", 7))
        sock += 7;
    if (sock && !*sock) {
        free(ce);
        return ggi_error(GG_EINVAL, "container_socket is empty");
    }
    ce->socket = sock ? strdup(sock) : default_socket();
    if (!ce->socket) {
        free(ce);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    const char *images = opts && opts->container_images ? opts->container_images
                                                        : DEFAULT_IMAGES;
    int rc = parse_images(ce, images);
    if (rc) {
        images_free(ce);
        free(ce->socket);
        free(ce);
        return rc;
    }
    if (ggi_job_registry_init(&ce->reg) != GG_OK) {
        images_free(ce);
        free(ce->socket);
        free(ce);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    ce->max_output = max_output;
    ce->default_timeout_s = timeout > 0 ? timeout : DEFAULT_TIMEOUT_S;
    /* An id unique enough to tell this executor's containers from any other's. */
    static unsigned counter;
    struct {
        pid_t pid;
        unsigned n;
        double t, w;
        void *p;
    } seed;
    memset(&seed, 0, sizeof seed);
    seed.pid = getpid();
    seed.n = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
    seed.t = ggi_now_ms();
    seed.w = ggi_wall_s();
    seed.p = ce;
    ggi_hash_hex(&seed, sizeof seed, ce->exec_id);

    gg_executor_vtable vt = GG_EXECUTOR_VTABLE_INIT;
    vt.run = ce_run;
    vt.interrupt = ce_interrupt;
    vt.destroy = ce_destroy;
    vt.name = "container";
    vt.caps = GG_EXECUTOR_CAP_ISOLATION_RLIMITS | GG_EXECUTOR_CAP_ISOLATION_NAMESPACES |
              GG_EXECUTOR_CAP_ISOLATION_CONTAINER;
    *vt_out = vt;
    *self_out = ce;
    return GG_OK;
}
