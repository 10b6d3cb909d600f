/*
 * container_executor.c - the "container" executor backend (container_executor.h): runs each
 * job in a container of its own through the Docker Engine API (Docker or Podman) over a unix
 * socket. This file holds the backend as the executor layer sees it: the configuration
 * (socket, images by language), the check of a job request, the vtable, and interrupt
 * (running jobs sit in a mutex-protected list so gg_executor_interrupt() can flag and kill
 * them). Cut here because it is the part that knows nothing of HTTP or archives; the rest:
 * container_http.c (the engine's HTTP client), container_run.c (one container's life:
 * create, upload, start, wait, logs, remove) and container_archive.c (the ustar archive, the
 * multiplexed logs, the result). container_internal.h lists what they share.
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
        rc = ggi_ce_run_job(ce, &j, &slot, out);
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
            ggi_ce_kill_container(&h, ids[i]);
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
