/*
 * auth.c - the HTTP face's token table (auth.h): reading "TOKEN ROLE [NAME]" lines from a
 * file that must be private to its owner (like CURVE key files), and authenticating a
 * request's token against every entry without an early exit, so neither the answer's time
 * nor a log line tells anything about the tokens.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gryphgen.h"
#include "auth.h"

#define LINE_MAX_BYTES 1024

typedef struct entry {
    char *token;
    int role;
    char name[64];
} entry;

struct ggi_http_tokens {
    entry e[GGI_HTTP_MAX_TOKENS];
    int n;
};


const char *ggi_http_role_name(int role)
{
    switch (role) {
    case GGI_ROLE_OBSERVER: return "observer";
    case GGI_ROLE_SUBMITTER: return "submitter";
    case GGI_ROLE_ADMIN: return "admin";
    default: return "none";
    }
}

static int role_of(const char *s)
{
    if (strcmp(s, "observer") == 0)
        return GGI_ROLE_OBSERVER;
    if (strcmp(s, "submitter") == 0)
        return GGI_ROLE_SUBMITTER;
    if (strcmp(s, "admin") == 0)
        return GGI_ROLE_ADMIN;
    return GGI_ROLE_NONE;
}

void ggi_http_tokens_free(ggi_http_tokens **pt)
{
    if (!pt || !*pt)
        return;
    ggi_http_tokens *t = *pt;
    for (int i = 0; i < t->n; i++) {
        memset(t->e[i].token, 0, strlen(t->e[i].token));
        free(t->e[i].token);
    }
    free(t);
    *pt = NULL;
}

int ggi_http_tokens_count(const ggi_http_tokens *t)
{
    return t ? t->n : 0;
}

/* One line's fields; 0, or -1 with the error set (line numbers, never the token). */
static int parse_line(ggi_http_tokens *t, char *line, int lineno, const char *path)
{
    char *save = NULL;
    char *tok = strtok_r(line, " \t\r\n", &save);
    if (!tok || tok[0] == '#')
        return 0;
    char *role = strtok_r(NULL, " \t\r\n", &save);
    char *name = strtok_r(NULL, " \t\r\n", &save);
    if (!role || strtok_r(NULL, " \t\r\n", &save))
        return ggi_http_fail(GG_EINVAL, "%s line %d: expected 'TOKEN ROLE [NAME]'", path, lineno);
    int r = role_of(role);
    if (r == GGI_ROLE_NONE)
        return ggi_http_fail(GG_EINVAL,
                             "%s line %d: role '%.32s' is not observer, submitter or admin",
                             path, lineno, role);
    if (strlen(tok) < GGI_HTTP_MIN_TOKEN)
        return ggi_http_fail(GG_EINVAL, "%s line %d: the token is shorter than %d characters", path,
                             lineno, GGI_HTTP_MIN_TOKEN);
    if (name && strlen(name) > 48)
        return ggi_http_fail(GG_EINVAL, "%s line %d: the name is longer than 48 characters", path,
                             lineno);
    if (t->n >= GGI_HTTP_MAX_TOKENS)
        return ggi_http_fail(GG_EINVAL, "%s: more than %d tokens", path, GGI_HTTP_MAX_TOKENS);
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->e[i].token, tok) == 0)
            return ggi_http_fail(GG_EINVAL, "%s line %d: the same token as an earlier line", path,
                                 lineno);
    entry *e = &t->e[t->n];
    if (!(e->token = strdup(tok)))
        return ggi_http_fail(GG_ENOMEM, "out of memory");
    e->role = r;
    snprintf(e->name, sizeof e->name, "http-%s", name ? name : "");
    if (!name)
        snprintf(e->name, sizeof e->name, "http-token%d", lineno);
    t->n++;
    return 0;
}

int ggi_http_tokens_load(const char *path, ggi_http_tokens **out)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ggi_http_fail(errno == ENOENT ? GG_ENOTFOUND : GG_EIO, "cannot open %s: %s", path,
                             strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ggi_http_fail(GG_EINVAL, "%s is not a regular file", path);
    }
    if (st.st_mode & 077) {
        close(fd);
        return ggi_http_fail(GG_EINVAL, "%s may be read or written by others (mode %03o): it holds "
                             "secrets; chmod 600 it", path, (unsigned)(st.st_mode & 0777));
    }
    FILE *f = fdopen(fd, "r");
    ggi_http_tokens *t = f ? calloc(1, sizeof *t) : NULL;
    if (!t) {
        if (f)
            fclose(f);
        else
            close(fd);
        return ggi_http_fail(GG_ENOMEM, "out of memory");
    }
    char line[LINE_MAX_BYTES];
    int lineno = 0, rc = 0;
    while (!rc && fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f))
            rc = ggi_http_fail(GG_EINVAL, "%s line %d: longer than %d bytes", path, lineno,
                               LINE_MAX_BYTES - 2);
        else
            rc = parse_line(t, line, lineno, path);
    }
    memset(line, 0, sizeof line);
    fclose(f);
    if (!rc && t->n == 0)
        rc = ggi_http_fail(GG_EINVAL, "%s holds no tokens (lines 'TOKEN ROLE [NAME]')", path);
    if (rc) {
        ggi_http_tokens_free(&t);
        return rc;
    }
    *out = t;
    return GG_OK;
}

/* Equal strings, in time that depends on the lengths only. */
static int same(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d = (unsigned char)(la != lb);
    for (size_t i = 0; i < la; i++)
        d |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
    return d == 0;
}

int ggi_http_tokens_auth(void *user, const char *token, ggi_http_principal *out)
{
    const ggi_http_tokens *t = user;
    int found = -1;
    for (int i = 0; i < t->n; i++) { /* every entry, whatever matched */
        int m = same(token, t->e[i].token);
        found = m && found < 0 ? i : found;
    }
    if (found < 0)
        return 0;
    out->role = t->e[found].role;
    snprintf(out->name, sizeof out->name, "%s", t->e[found].name);
    return 1;
}
