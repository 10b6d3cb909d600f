/*
 * test_http_tokens.c - the HTTP face's token file (lib/http/auth.c): a file others may read
 * is refused, malformed lines are refused naming the line and never the token, roles and
 * names are read, a token is found only when it matches whole (not a prefix, not longer),
 * and role names map both ways.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gryphgen.h"
#include "http/auth.h"
#include "testutil.h"

static char dir[] = "/tmp/gg-tokens-XXXXXX";

static const char *write_file(const char *name, const char *text, mode_t mode)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        return NULL;
    close(fd);
    chmod(path, mode);
    return path;
}

static void refused(const char *text, mode_t mode, const char *says)
{
    ggi_http_tokens *t = NULL;
    int rc = ggi_http_tokens_load(write_file("bad", text, mode), &t);
    CHECK(rc == GG_EINVAL && t == NULL);
    CHECK(strstr(gg_error_last(), says) != NULL);
    CHECK(strstr(gg_error_last(), "0123456789abcdef") == NULL); /* never the token */
    if (!strstr(gg_error_last(), says))
        fprintf(stderr, "  wanted '%s' in: %s\n", says, gg_error_last());
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    refused("0123456789abcdef admin\n", 0644, "chmod 600");
    refused("0123456789abcdef admin\n", 0640, "chmod 600");
    refused("0123456789abcdef root\n", 0600, "line 1");
    refused("# c\n\n0123456789abcdef\n", 0600, "line 3");
    refused("0123456789abcdef admin a b\n", 0600, "line 1");
    refused("short admin\n", 0600, "shorter");
    refused("0123456789abcdef admin\n0123456789abcdef observer\n", 0600, "line 2");
    refused("# nothing\n", 0600, "no tokens");
    ggi_http_tokens *t = NULL;
    CHECK_RC(ggi_http_tokens_load("/nonexistent/tokens", &t), GG_ENOTFOUND);

    const char *good = write_file("good",
                                  "# tokens\n"
                                  "0123456789abcdef-obs observer\n"
                                  "0123456789abcdef-sub submitter alice\n"
                                  "  0123456789abcdef-adm   admin  \n", 0600);
    CHECK_RC(ggi_http_tokens_load(good, &t), GG_OK);
    CHECK(ggi_http_tokens_count(t) == 3);
    ggi_http_principal p;
    CHECK(ggi_http_tokens_auth(t, "0123456789abcdef-obs", &p) == 1);
    CHECK(p.role == GGI_ROLE_OBSERVER);
    CHECK_STR(p.name, "http-token2");
    CHECK(ggi_http_tokens_auth(t, "0123456789abcdef-sub", &p) == 1);
    CHECK(p.role == GGI_ROLE_SUBMITTER);
    CHECK_STR(p.name, "http-alice");
    CHECK(ggi_http_tokens_auth(t, "0123456789abcdef-adm", &p) == 1);
    CHECK(p.role == GGI_ROLE_ADMIN);
    CHECK(ggi_http_tokens_auth(t, "0123456789abcdef-ad", &p) == 0);
    CHECK(ggi_http_tokens_auth(t, "0123456789abcdef-admx", &p) == 0);
    CHECK(ggi_http_tokens_auth(t, "", &p) == 0);
    CHECK_STR(ggi_http_role_name(GGI_ROLE_SUBMITTER), "submitter");
    CHECK_STR(ggi_http_role_name(42), "none");
    ggi_http_tokens_free(&t);
    CHECK(t == NULL);
    ggi_http_tokens_free(&t); /* accepts NULL */
    test_remove_dir(dir);
    return test_exit();
}
