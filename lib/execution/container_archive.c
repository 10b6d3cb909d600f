/*
 * container_archive.c - output and archive handling of the "container" executor backend:
 * the ustar archive (built in memory) that carries a job's files into the container, the
 * decoder of the engine's multiplexed log stream (stdout and stderr frames, capped, with the
 * wrapper's markers), and the JSON result of a job. Cut here because these are pure byte and
 * JSON transformations, with no engine and no I/O, tested directly (container_executor.h).
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
#include "exec_request.h"
#include "job_registry.h"
#include "process_executor.h"
#include "spawn.h"
#include "container_internal.h"

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

int ggi_ce_build_result(const job *j, const outcome *oc, char **out)
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
