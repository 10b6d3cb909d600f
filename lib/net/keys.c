/*
 * keys.c - CURVE key files and authorized-keys lists: generation through libzmq, the
 * key-file format with its permission rule (a secret is only read from a file that group
 * and others can neither read nor write), and the parsing of "ROLE Z85PUBKEY [comment]"
 * lists with an error that names the file and line for every malformed entry.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zmq.h>

#include "keys.h"

static const char z85_chars[] =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

void ggi_wipe(void *p, size_t n)
{
    if (p && n)
        explicit_bzero(p, n);
}

int ggi_key_z85_valid(const char *s, size_t len)
{
    if (!s || len != GGI_KEY_Z85_LEN)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '\0' || !strchr(z85_chars, s[i]))
            return 0;
    char text[GGI_KEY_Z85_LEN + 1];
    memcpy(text, s, len);
    text[len] = '\0';
    uint8_t raw[32];
    /* Z85 of 40 characters may still overflow a 32-bit group; the decoder says so. */
    int ok = zmq_z85_decode(raw, text) != NULL;
    ggi_wipe(raw, sizeof raw);
    ggi_wipe(text, sizeof text);
    return ok;
}

void ggi_key_fingerprint(const char *z85, char out[GGI_FINGERPRINT_LEN])
{
    size_t n = z85 ? strnlen(z85, GGI_FINGERPRINT_LEN - 1) : 0;
    if (n)
        memcpy(out, z85, n);
    out[n] = '\0';
}

void ggi_key_fingerprint_raw(const uint8_t key[32], char out[GGI_FINGERPRINT_LEN])
{
    char text[GGI_KEY_Z85_LEN + 1];
    if (!zmq_z85_encode(text, key, 32))
        snprintf(text, sizeof text, "?");
    ggi_key_fingerprint(text, out);
}

int ggi_keys_generate(ggi_keypair *out)
{
    memset(out, 0, sizeof *out);
    if (!zmq_has("curve"))
        return ggi_error(GG_EUNSUPPORTED, "this libzmq was built without CURVE support");
    if (zmq_curve_keypair(out->public_key, out->secret_key) != 0)
        return ggi_error(GG_EIO, "cannot generate a CURVE key pair: %s",
                         zmq_strerror(zmq_errno()));
    return GG_OK;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int ggi_keys_write(const char *path, const ggi_keypair *kp, int with_secret)
{
    if (!path || !*path)
        return ggi_error(GG_EINVAL, "key file path is empty");
    if (!ggi_key_z85_valid(kp->public_key, strlen(kp->public_key)) ||
        (with_secret && !ggi_key_z85_valid(kp->secret_key, strlen(kp->secret_key))))
        return ggi_error(GG_EINVAL, "refusing to write a malformed key to %s", path);
    char text[128];
    int n = with_secret ? snprintf(text, sizeof text, "public: %s\nsecret: %s\n",
                                   kp->public_key, kp->secret_key)
                        : snprintf(text, sizeof text, "public: %s\n", kp->public_key);
    char *tmp = ggi_asprintf("%s.tmp.%ld", path, (long)getpid());
    if (!tmp || n < 0 || (size_t)n >= sizeof text) {
        free(tmp);
        ggi_wipe(text, sizeof text);
        return ggi_error(GG_ENOMEM, "out of memory writing %s", path);
    }
    int rc = GG_OK;
    /* Written under a temporary name, then linked into place: link() never replaces an
     * existing file, and the key appears complete or not at all. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, with_secret ? 0600 : 0644);
    if (fd < 0) {
        rc = ggi_error(GG_EIO, "cannot create %s: %s", tmp, strerror(errno));
    } else {
        /* The umask may only remove bits; set the mode exactly. */
        if (fchmod(fd, with_secret ? 0600 : 0644) != 0 || write_all(fd, text, (size_t)n) != 0 ||
            fsync(fd) != 0)
            rc = ggi_error(GG_EIO, "cannot write %s: %s", tmp, strerror(errno));
        if (close(fd) != 0 && rc == GG_OK)
            rc = ggi_error(GG_EIO, "cannot write %s: %s", tmp, strerror(errno));
        if (rc == GG_OK && link(tmp, path) != 0) {
            if (errno == EEXIST)
                rc = ggi_error(GG_EEXIST, "%s already exists; not overwriting a key file", path);
            else
                rc = ggi_error(GG_EIO, "cannot create %s: %s", path, strerror(errno));
        }
        unlink(tmp);
    }
    free(tmp);
    ggi_wipe(text, sizeof text);
    return rc;
}

/* Reads a whole regular file of at most limit bytes into a NUL-terminated buffer. */
static int read_file(const char *path, size_t limit, const char *what, char **out,
                     size_t *out_len, struct stat *st)
{
    *out = NULL;
    *out_len = 0;
    if (!path || !*path)
        return ggi_error(GG_EINVAL, "%s path is empty", what);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return ggi_error(e == ENOENT ? GG_ENOTFOUND : GG_EIO, "%s %s: %s", what, path,
                         strerror(e));
    }
    if (fstat(fd, st) != 0) {
        int e = errno;
        close(fd);
        return ggi_error(GG_EIO, "%s %s: %s", what, path, strerror(e));
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        return ggi_error(GG_EINVAL, "%s %s is not a regular file", what, path);
    }
    if ((uint64_t)st->st_size > limit) {
        close(fd);
        return ggi_error(GG_ETOOBIG, "%s %s is %lld bytes, the limit is %zu", what, path,
                         (long long)st->st_size, limit);
    }
    char *buf = malloc(limit + 1);
    if (!buf) {
        close(fd);
        return ggi_error(GG_ENOMEM, "out of memory reading %s", path);
    }
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, limit + 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            ggi_wipe(buf, len);
            free(buf);
            return ggi_error(GG_EIO, "%s %s: %s", what, path, strerror(e));
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > limit) {
            close(fd);
            ggi_wipe(buf, len);
            free(buf);
            return ggi_error(GG_ETOOBIG, "%s %s grew past the limit of %zu bytes", what,
                             path, limit);
        }
    }
    close(fd);
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return GG_OK;
}

/* Splits the next line off *p (bounded by end); returns its start and sets *n, trimmed. */
static const char *next_line(const char **p, const char *end, size_t *n)
{
    const char *s = *p;
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    const char *e = nl ? nl : end;
    *p = nl ? nl + 1 : end;
    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        e--;
    *n = (size_t)(e - s);
    return s;
}

static int parse_key_value(const char *line, size_t n, const char *label, const char *path,
                           int lineno, char out[GGI_KEY_Z85_LEN + 1])
{
    size_t ll = strlen(label);
    const char *v = line + ll;
    size_t vn = n - ll;
    while (vn > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        vn--;
    }
    if (out[0])
        return ggi_error(GG_EINVAL, "key file %s line %d: second '%s' line", path, lineno,
                         label);
    if (!ggi_key_z85_valid(v, vn))
        return ggi_error(GG_EINVAL,
                         "key file %s line %d: '%s' must be followed by a 40-character Z85 key",
                         path, lineno, label);
    memcpy(out, v, vn);
    out[vn] = '\0';
    return GG_OK;
}

int ggi_keys_parse(const char *text, size_t len, const char *path, ggi_keypair *out)
{
    memset(out, 0, sizeof *out);
    int rc = GG_OK;
    if (len > GGI_KEY_FILE_MAX)
        return ggi_error(GG_ETOOBIG, "key file %s is %zu bytes, the limit is %u", path, len,
                         GGI_KEY_FILE_MAX);
    if (memchr(text, '\0', len))
        return ggi_error(GG_EINVAL, "key file %s contains a NUL byte", path);
    const char *p = text, *end = text + len;
    int lineno = 0;
    while (rc == GG_OK && p < end) {
        size_t n;
        const char *line = next_line(&p, end, &n);
        lineno++;
        if (n == 0 || line[0] == '#')
            continue;
        if (n >= 7 && memcmp(line, "public:", 7) == 0)
            rc = parse_key_value(line, n, "public:", path, lineno, out->public_key);
        else if (n >= 7 && memcmp(line, "secret:", 7) == 0)
            rc = parse_key_value(line, n, "secret:", path, lineno, out->secret_key);
        else
            rc = ggi_error(GG_EINVAL, "key file %s line %d: expected 'public: KEY' or "
                           "'secret: KEY'", path, lineno);
    }
    if (rc == GG_OK && !out->public_key[0])
        rc = ggi_error(GG_EINVAL, "key file %s has no 'public:' line", path);
    if (rc == GG_OK && out->secret_key[0]) {
        char derived[GGI_KEY_Z85_LEN + 1];
        if (zmq_curve_public(derived, out->secret_key) != 0)
            rc = ggi_error(GG_EUNSUPPORTED, "this libzmq was built without CURVE support");
        else if (strcmp(derived, out->public_key) != 0)
            rc = ggi_error(GG_EINVAL, "key file %s: the secret key does not belong to the "
                           "public key", path);
        ggi_wipe(derived, sizeof derived);
    }
    if (rc != GG_OK)
        ggi_wipe(out, sizeof *out);
    return rc;
}

int ggi_keys_read(const char *path, int need_secret, ggi_keypair *out)
{
    memset(out, 0, sizeof *out);
    char *buf;
    size_t len;
    struct stat st;
    int rc = read_file(path, GGI_KEY_FILE_MAX, "key file", &buf, &len, &st);
    if (rc != GG_OK)
        return rc;
    rc = ggi_keys_parse(buf, len, path, out);
    ggi_wipe(buf, len);
    free(buf);
    if (rc == GG_OK && need_secret && !out->secret_key[0])
        rc = ggi_error(GG_EINVAL, "key file %s has no 'secret:' line (a .pub file was given "
                       "where a key pair is needed)", path);
    if (rc == GG_OK && out->secret_key[0] && (st.st_mode & 077))
        rc = ggi_error(GG_EINVAL, "key file %s holds a secret key but has mode %04o: group or "
                       "others may access it; run 'chmod 600 %s'", path,
                       (unsigned)(st.st_mode & 07777), path);
    if (rc != GG_OK)
        ggi_wipe(out, sizeof *out);
    return rc;
}

int ggi_keys_resolve_public(const char *text_or_path, char out[GGI_KEY_Z85_LEN + 1])
{
    out[0] = '\0';
    if (!text_or_path || !*text_or_path)
        return ggi_error(GG_EINVAL, "no server public key given");
    size_t n = strlen(text_or_path);
    if (n == GGI_KEY_Z85_LEN && ggi_key_z85_valid(text_or_path, n)) {
        struct stat st;
        if (stat(text_or_path, &st) != 0) { /* a file of that exact name wins */
            memcpy(out, text_or_path, n + 1);
            return GG_OK;
        }
    }
    ggi_keypair kp;
    int rc = ggi_keys_read(text_or_path, 0, &kp);
    if (rc != GG_OK)
        return ggi_error_wrap("server public key (40 Z85 characters or a key file): ");
    memcpy(out, kp.public_key, sizeof kp.public_key);
    ggi_wipe(&kp, sizeof kp);
    return GG_OK;
}

static int key_cmp(const void *a, const void *b)
{
    return memcmp(((const ggi_auth_key *)a)->key, ((const ggi_auth_key *)b)->key, 32);
}

static int append_key(ggi_auth_keys *ak, const char *z85, const char *role)
{
    if (!z85 || !ggi_key_z85_valid(z85, strlen(z85)))
        return ggi_error(GG_EINVAL, "not a 40-character Z85 key");
    if (ak->n >= GGI_AUTH_MAX_KEYS)
        return ggi_error(GG_ETOOBIG, "more than %d authorized keys", GGI_AUTH_MAX_KEYS);
    if (ak->n == ak->cap) {
        size_t cap = ak->cap ? ak->cap * 2 : 16;
        ggi_auth_key *k = realloc(ak->keys, cap * sizeof *k);
        if (!k)
            return ggi_error(GG_ENOMEM, "out of memory");
        ak->keys = k;
        ak->cap = cap;
    }
    ggi_auth_key *e = &ak->keys[ak->n];
    memset(e, 0, sizeof *e);
    if (!zmq_z85_decode(e->key, z85))
        return ggi_error(GG_EINVAL, "not a 40-character Z85 key");
    snprintf(e->role, sizeof e->role, "%s", role);
    ak->n++;
    return GG_OK;
}

int ggi_auth_keys_add(ggi_auth_keys *ak, const char *z85, const char *role)
{
    int rc = append_key(ak, z85, role);
    /* Kept sorted so lookups are a binary search and duplicates are neighbours. */
    if (rc == GG_OK)
        qsort(ak->keys, ak->n, sizeof *ak->keys, key_cmp);
    return rc;
}

const char *ggi_auth_keys_find(const ggi_auth_keys *ak, const uint8_t key[32])
{
    if (!ak || !ak->n)
        return NULL;
    ggi_auth_key probe;
    memcpy(probe.key, key, 32);
    const ggi_auth_key *hit = bsearch(&probe, ak->keys, ak->n, sizeof *ak->keys, key_cmp);
    return hit ? hit->role : NULL;
}

void ggi_auth_keys_free(ggi_auth_keys *ak)
{
    if (!ak)
        return;
    free(ak->keys);
    memset(ak, 0, sizeof *ak);
}

static int known_role(const char *s, size_t n)
{
    static const char *const roles[] = {"worker", "submitter", "admin"};
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (strlen(roles[i]) == n && memcmp(roles[i], s, n) == 0)
            return 1;
    return 0;
}

int ggi_auth_keys_parse(const char *text, size_t len, const char *path, ggi_auth_keys *out)
{
    memset(out, 0, sizeof *out);
    if (len > GGI_AUTH_FILE_MAX)
        return ggi_error(GG_ETOOBIG, "authorized keys file %s is %zu bytes, the limit is %u",
                         path, len, GGI_AUTH_FILE_MAX);
    int rc = GG_OK;
    const char *p = text, *end = text + len;
    int lineno = 0;
    while (rc == GG_OK && p < end) {
        size_t n;
        const char *line = next_line(&p, end, &n);
        lineno++;
        if (n == 0 || line[0] == '#')
            continue;
        if (memchr(line, '\0', n)) {
            rc = ggi_error(GG_EINVAL, "authorized keys file %s line %d: contains a NUL byte",
                           path, lineno);
            break;
        }
        size_t rn = 0;
        while (rn < n && line[rn] != ' ' && line[rn] != '\t')
            rn++;
        const char *k = line + rn;
        while (k < line + n && (*k == ' ' || *k == '\t'))
            k++;
        size_t kn = 0;
        while (k + kn < line + n && k[kn] != ' ' && k[kn] != '\t')
            kn++;
        if (!known_role(line, rn)) {
            rc = ggi_error(GG_EINVAL, "authorized keys file %s line %d: unknown role '%.*s' "
                           "(expected worker, submitter or admin, then the key)", path,
                           lineno, (int)(rn > 32 ? 32 : rn), line);
        } else if (!ggi_key_z85_valid(k, kn)) {
            rc = ggi_error(GG_EINVAL, "authorized keys file %s line %d: expected a "
                           "40-character Z85 public key after the role", path, lineno);
        } else {
            char key[GGI_KEY_Z85_LEN + 1], role[GGI_ROLE_MAX];
            memcpy(key, k, kn);
            key[kn] = '\0';
            memcpy(role, line, rn);
            role[rn] = '\0';
            rc = append_key(out, key, role);
            if (rc != GG_OK)
                rc = ggi_error_wrap("authorized keys file %s line %d: ", path, lineno);
        }
    }
    if (rc == GG_OK && out->n > 1)
        qsort(out->keys, out->n, sizeof *out->keys, key_cmp);
    for (size_t i = 1; rc == GG_OK && i < out->n; i++) {
        if (memcmp(out->keys[i - 1].key, out->keys[i].key, 32) == 0) {
            char fp[GGI_FINGERPRINT_LEN];
            ggi_key_fingerprint_raw(out->keys[i].key, fp);
            rc = ggi_error(GG_EINVAL, "authorized keys file %s lists key %s... twice", path,
                           fp);
        }
    }
    if (rc != GG_OK)
        ggi_auth_keys_free(out);
    return rc;
}

int ggi_auth_keys_load(const char *path, ggi_auth_keys *out)
{
    memset(out, 0, sizeof *out);
    char *buf;
    size_t len;
    struct stat st;
    int rc = read_file(path, GGI_AUTH_FILE_MAX, "authorized keys file", &buf, &len, &st);
    if (rc != GG_OK)
        return rc;
    if (st.st_mode & 022)
        rc = ggi_error(GG_EINVAL, "authorized keys file %s has mode %04o: group or others "
                       "may add keys to it; run 'chmod go-w %s'", path,
                       (unsigned)(st.st_mode & 07777), path);
    else
        rc = ggi_auth_keys_parse(buf, len, path, out);
    free(buf);
    return rc;
}
