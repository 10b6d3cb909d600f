/*
 * test_container_unit.c - the parts of the "container" executor that need no engine: the
 * in-memory ustar writer (read back by a parser here and extracted by the system's tar),
 * the multiplexed log-stream decoder, option and request checking, and the errors given when
 * the engine's socket cannot be reached.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gryphgen.h>

#include "execution/container_executor.h"
#include "testutil.h"

static unsigned long octal(const char *p, size_t n)
{
    unsigned long v = 0;
    for (size_t i = 0; i < n && p[i] >= '0' && p[i] <= '7'; i++)
        v = v * 8 + (unsigned long)(p[i] - '0');
    return v;
}

/* Walks an archive: checks every header's checksum and magic, and returns the full name,
 * type and size of entry `want` (PAX path records applied), or 0 when there is none. */
static int tar_find(const char *tar, size_t len, int want, char *name, size_t name_cap,
                    char *type, size_t *size, const char **data)
{
    size_t off = 0;
    int idx = 0;
    char pax_name[4096] = "";
    while (off + 512 <= len) {
        const char *h = tar + off;
        int zero = 1;
        for (int i = 0; i < 512 && zero; i++)
            zero = h[i] == 0;
        if (zero)
            return 0;
        unsigned sum = 0;
        for (int i = 0; i < 512; i++)
            sum += (i >= 148 && i < 156) ? ' ' : (unsigned char)h[i];
        CHECK(sum == octal(h + 148, 8));
        CHECK(memcmp(h + 257, "ustar", 6) == 0);
        size_t sz = octal(h + 124, 12);
        char t = h[156];
        if (t == 'x') {
            const char *rec = h + 512;
            const char *p = memchr(rec, ' ', sz);
            if (p && !strncmp(p + 1, "path=", 5)) {
                size_t nl = sz - (size_t)(p + 6 - rec) - 1;
                snprintf(pax_name, sizeof pax_name, "%.*s", (int)nl, p + 6);
            }
        } else {
            if (idx == want) {
                if (pax_name[0])
                    snprintf(name, name_cap, "%s", pax_name);
                else if (h[345])
                    snprintf(name, name_cap, "%.155s/%.100s", h + 345, h);
                else
                    snprintf(name, name_cap, "%.100s", h);
                *type = t;
                *size = sz;
                *data = h + 512;
                CHECK(octal(h + 108, 8) == 65534);
                CHECK(octal(h + 116, 8) == 65533);
                return 1;
            }
            pax_name[0] = '\0';
            idx++;
        }
        off += 512 + (sz + 511) / 512 * 512;
    }
    return 0;
}

static void test_tar(void)
{
    char longp[260], longer[400];
    /* 200 bytes: fits ustar's prefix + name; 330 bytes: needs a PAX record. */
    snprintf(longp, sizeof longp, "%0100d/%099d", 1, 2);
    memset(longer, 'x', 330);
    longer[100] = '/';
    longer[330] = '\0';
    ggi_tar_entry files[] = {
        { "a.txt", "hello", 5, 0644 },
        { "d/e/f.txt", "deep\n", 5, 0600 },
        { longp, "long", 4, 0644 },
        { longer, "longer", 6, 0644 },
        { "empty", "", 0, 0444 },
    };
    char *tar = NULL;
    size_t len = 0;
    CHECK_RC(ggi_tar_build(files, 5, 65534, 65533, &tar, &len), GG_OK);
    CHECK(tar && len % 512 == 0 && len >= 1024);
    if (!tar)
        return;
    char name[4096], type = 0;
    size_t size = 0;
    const char *data = NULL;
    /* Entries: a.txt, d/, d/e/, d/e/f.txt, <longp dir>/, longp, <longer dir>/, longer, empty */
    CHECK(tar_find(tar, len, 0, name, sizeof name, &type, &size, &data));
    CHECK_STR(name, "a.txt");
    CHECK(type == '0' && size == 5 && !memcmp(data, "hello", 5));
    CHECK(tar_find(tar, len, 1, name, sizeof name, &type, &size, &data));
    CHECK_STR(name, "d/");
    CHECK(type == '5' && size == 0);
    CHECK(tar_find(tar, len, 2, name, sizeof name, &type, &size, &data));
    CHECK_STR(name, "d/e/");
    CHECK(tar_find(tar, len, 3, name, sizeof name, &type, &size, &data));
    CHECK_STR(name, "d/e/f.txt");
    CHECK(size == 5 && !memcmp(data, "deep\n", 5));
    CHECK(tar_find(tar, len, 5, name, sizeof name, &type, &size, &data));
    CHECK_STR(name, longp);
    CHECK(tar_find(tar, len, 7, name, sizeof name, &type, &size, &data));
    CHECK_STR(name, longer);
    CHECK(size == 6 && !memcmp(data, "longer", 6));
    CHECK(tar_find(tar, len, 8, name, sizeof name, &type, &size, &data));
    CHECK_STR(name, "empty");
    CHECK(!tar_find(tar, len, 9, name, sizeof name, &type, &size, &data));

    /* The system's tar reads it too. */
    char dir[] = "/tmp/gg-tar-XXXXXX";
    if (mkdtemp(dir) && access("/bin/tar", X_OK) == 0) {
        char path[4500];
        snprintf(path, sizeof path, "%s/a.tar", dir);
        FILE *f = fopen(path, "wb");
        CHECK(f != NULL);
        if (f) {
            CHECK(fwrite(tar, 1, len, f) == len);
            fclose(f);
            char cmd[4600];
            snprintf(cmd, sizeof cmd, "cd %s && tar --no-same-owner -xf a.tar 2>&1", dir);
            CHECK(system(cmd) == 0);
            snprintf(path, sizeof path, "%s/%s", dir, longer);
            struct stat st;
            CHECK(stat(path, &st) == 0 && st.st_size == 6);
            snprintf(path, sizeof path, "%s/d/e/f.txt", dir);
            CHECK(stat(path, &st) == 0 && st.st_size == 5 && (st.st_mode & 0777) == 0600);
        }
        snprintf(path, sizeof path, "rm -rf %s", dir);
        CHECK(system(path) == 0);
    }
    free(tar);

    ggi_tar_entry bad[] = { { "/etc/passwd", "x", 1, 0644 } };
    CHECK_RC(ggi_tar_build(bad, 1, 0, 0, &tar, &len), GG_EINVAL);
    CHECK(tar == NULL);
    bad[0].path = "a/../../b";
    CHECK_RC(ggi_tar_build(bad, 1, 0, 0, &tar, &len), GG_EINVAL);
    bad[0].path = "";
    CHECK_RC(ggi_tar_build(bad, 1, 0, 0, &tar, &len), GG_EINVAL);
    bad[0].path = "ok";
    CHECK_RC(ggi_tar_build(bad, 1, 1u << 30, 0, &tar, &len), GG_EINVAL); /* uid too big */
    bad[0].path = "a..b/..c";                                            /* not '..' */
    CHECK_RC(ggi_tar_build(bad, 1, 0, 0, &tar, &len), GG_OK);
    free(tar);
}

static size_t frame(char *p, int stream, const char *s)
{
    size_t n = strlen(s);
    p[0] = (char)stream;
    p[1] = p[2] = p[3] = 0;
    p[4] = (char)(n >> 24);
    p[5] = (char)(n >> 16);
    p[6] = (char)(n >> 8);
    p[7] = (char)n;
    memcpy(p + 8, s, n);
    return 8 + n;
}

static void test_mux(void)
{
    char stream[256];
    size_t n = 0;
    n += frame(stream + n, 1, "hello ");
    n += frame(stream + n, 2, "err1\n");
    n += frame(stream + n, 1, "");
    n += frame(stream + n, 0, "world");
    n += frame(stream + n, 2, "err2\n");

    ggi_mux_decoder d;
    ggi_mux_init(&d, 1024, 1024);
    for (size_t i = 0; i < n; i++) /* byte by byte: headers split anywhere */
        CHECK_RC(ggi_mux_feed(&d, stream + i, 1), GG_OK);
    static const char *const markers[] = { "MARK\n", "OTHER\n" };
    CHECK(ggi_mux_finish(&d, markers, 2) == 0);
    CHECK_STR(d.out, "hello world");
    CHECK_STR(d.err, "err1\nerr2\n");
    CHECK(!d.out_truncated && !d.err_truncated);
    ggi_mux_free(&d);

    /* A marker as the last stderr frame is taken out; one that is not last stays. */
    size_t m = n;
    m += frame(stream + m, 2, "OTHER\n");
    ggi_mux_init(&d, 1024, 1024);
    CHECK_RC(ggi_mux_feed(&d, stream, m), GG_OK);
    CHECK(ggi_mux_finish(&d, markers, 2) == 2);
    CHECK_STR(d.err, "err1\nerr2\n");
    ggi_mux_free(&d);
    m += frame(stream + m, 1, "tail");
    ggi_mux_init(&d, 1024, 1024);
    CHECK_RC(ggi_mux_feed(&d, stream, m), GG_OK);
    CHECK(ggi_mux_finish(&d, markers, 2) == 0);
    CHECK_STR(d.err, "err1\nerr2\nOTHER\n");
    CHECK_STR(d.out, "hello worldtail");
    ggi_mux_free(&d);

    /* A value line (the wrapper's peak memory) as the last stderr frame is taken out and
     * read; a malformed one, or one that is not last, stays the job's stderr. */
    m = n;
    m += frame(stream + m, 2, "GG-PEAK=123456\n");
    ggi_mux_init(&d, 1024, 1024);
    CHECK_RC(ggi_mux_feed(&d, stream, m), GG_OK);
    long long peak = -1;
    CHECK(ggi_mux_take_value(&d, "GG-PEAK=", &peak) == 1);
    CHECK(peak == 123456);
    CHECK(ggi_mux_finish(&d, markers, 2) == 0);
    CHECK_STR(d.err, "err1\nerr2\n");
    ggi_mux_free(&d);
    m = n;
    m += frame(stream + m, 2, "GG-PEAK=12x\n");
    ggi_mux_init(&d, 1024, 1024);
    CHECK_RC(ggi_mux_feed(&d, stream, m), GG_OK);
    peak = -1;
    CHECK(ggi_mux_take_value(&d, "GG-PEAK=", &peak) == 0);
    CHECK(peak == -1);
    CHECK(ggi_mux_finish(&d, markers, 2) == 0);
    CHECK_STR(d.err, "err1\nerr2\nGG-PEAK=12x\n");
    ggi_mux_free(&d);
    m = n;
    m += frame(stream + m, 2, "GG-PEAK=5\n");
    m += frame(stream + m, 1, "x");
    ggi_mux_init(&d, 1024, 1024);
    CHECK_RC(ggi_mux_feed(&d, stream, m), GG_OK);
    CHECK(ggi_mux_take_value(&d, "GG-PEAK=", &peak) == 0);
    CHECK(ggi_mux_finish(&d, markers, 2) == 0);
    CHECK_STR(d.err, "err1\nerr2\nGG-PEAK=5\n");
    ggi_mux_free(&d);

    ggi_mux_init(&d, 4, 0);
    CHECK_RC(ggi_mux_feed(&d, stream, n), GG_OK);
    CHECK(ggi_mux_finish(&d, markers, 2) == 0);
    CHECK_STR(d.out, "hell");
    CHECK(d.out_len == 4 && d.out_truncated);
    CHECK(d.err == NULL && d.err_len == 0 && d.err_truncated);
    ggi_mux_free(&d);

    /* A large frame announced but cut short keeps what came. */
    char big[16] = { 1, 0, 0, 0, 0, 0x10, 0, 0, 'a', 'b', 'c' };
    ggi_mux_init(&d, 100, 100);
    CHECK_RC(ggi_mux_feed(&d, big, 11), GG_OK);
    CHECK_STR(d.out, "abc");
    CHECK(d.remaining == 0x100000 - 3);
    ggi_mux_free(&d);
}

static gg_executor_t *make(const char *sock, const char *images)
{
    gg_executor_options o = GG_EXECUTOR_OPTIONS_INIT;
    o.backend = "container";
    o.container_socket = sock;
    o.container_images = images;
    gg_executor_t *ex = NULL;
    (void)gg_executor_new(&ex, &o);
    return ex;
}

static int run_rc(gg_executor_t *ex, const char *req)
{
    char *res = NULL;
    int rc = gg_executor_run(ex, req, &res);
    CHECK(res == NULL || rc == GG_OK);
    gg_free(res);
    return rc;
}

static void test_options_and_requests(void)
{
    gg_executor_options o = GG_EXECUTOR_OPTIONS_INIT;
    CHECK(o.container_socket == NULL && o.container_images == NULL);
    CHECK_RC(gg_executor_options_init(&o, GG_EXECUTOR_OPTIONS_VERSION), GG_OK);
    CHECK(o.container_socket == NULL && o.container_images == NULL);
    o.backend = "container";
    gg_executor_t *ex = NULL;
    o.container_images = "python";
    CHECK_RC(gg_executor_new(&ex, &o), GG_EINVAL);
    CHECK(ex == NULL);
    o.container_images = "{\"python\": 3}";
    CHECK_RC(gg_executor_new(&ex, &o), GG_EINVAL);
    o.container_images = "{\"python\": {\"interpreter\": \"/x\"}}";
    CHECK_RC(gg_executor_new(&ex, &o), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "image");
    o.container_images = "{not json";
    CHECK_RC(gg_executor_new(&ex, &o), GG_EINVAL);
    o.container_images = "python=,c=x";
    CHECK_RC(gg_executor_new(&ex, &o), GG_EINVAL);
    o.container_images = NULL;
    o.container_socket = "";
    CHECK_RC(gg_executor_new(&ex, &o), GG_EINVAL);
    o.container_socket = NULL;
    o.backend = "kubernetes";
    CHECK_RC(gg_executor_new(&ex, &o), GG_ENOTFOUND);
    CHECK_CONTAINS(gg_error_last(), "container");

    char dir[] = "/tmp/gg-cunit-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char sock[128];
    snprintf(sock, sizeof sock, "unix://%s/missing.sock", dir);
    ex = make(sock, "python = img-py:1 , sh=img-sh:2");
    CHECK(ex != NULL);
    if (!ex)
        return;
    CHECK_STR(gg_executor_backend(ex), "container");
    /* Requests are checked before the engine is asked. */
    CHECK_RC(run_rc(ex, "{}"), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "argv");
    CHECK_RC(run_rc(ex, "{\"argv\": []}"), GG_EINVAL);
    CHECK_RC(run_rc(ex, "{\"argv\": [\"python3\"], \"limits\": {\"bogus\": 1}}"), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "bogus");
    CHECK_RC(run_rc(ex, "{\"argv\": [\"python3\"], \"limits\": {\"cpus\": 0}}"), GG_EINVAL);
    CHECK_RC(run_rc(ex, "{\"argv\": [\"python3\"], \"user\": \"root\"}"), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "user");
    CHECK_RC(run_rc(ex, "{\"argv\": [\"python3\"], \"isolation\": \"vm\"}"), GG_EINVAL);
    CHECK_RC(run_rc(ex, "{\"argv\": [\"python3\"], \"files\": [{\"path\": \"../x\", "
                        "\"content\": \"\"}]}"), GG_EINVAL);
    CHECK_RC(run_rc(ex, "{\"argv\": [\"python3\"], \"files\": [{\"path\": \"a\", \"content\": "
                        "\"\"}, {\"path\": \"a/b\", \"content\": \"\"}]}"), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "twice");
    CHECK_RC(run_rc(ex, "{\"argv\": [\"python3\"], \"env\": {\"A=B\": \"x\"}}"), GG_EINVAL);
    CHECK_RC(run_rc(ex, "{\"argv\": [\"/usr/bin/ruby\"]}"), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "no container image");
    CHECK_RC(run_rc(ex, "{\"argv\": [\"ruby\"], \"language\": \"ruby\"}"), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "ruby");
    /* "workdir" is checked like everywhere. */
    CHECK_RC(run_rc(ex, "{\"argv\": [\"/bin/true\"], \"workdir\": \"rel\"}"), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "workdir");
    CHECK_RC(run_rc(ex, "{\"argv\": [\"/bin/true\"], \"workdir\": \"/nonexistent/w\"}"),
             GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "workdir");
    CHECK_RC(run_rc(ex, "{\"argv\": [\"/bin/true\"], \"workdir\": \"/tmp\", "
                        "\"user\": \"0:0\"}"), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "must not be uid 0 with 'workdir'");
    /* A valid request meets a socket nobody listens on: an execution error naming it. */
    CHECK_RC(run_rc(ex, "{\"argv\": [\"/root/.pyenv/shims/python3\", \"-c\", \"pass\"]}"),
             GG_EEXEC);
    CHECK_CONTAINS(gg_error_last(), "missing.sock");
    CHECK_RC(run_rc(ex, "{\"argv\": [\"/bin/sh\"], \"language\": \"sh\", \"stdin\": \"x\"}"),
             GG_EEXEC);
    CHECK_RC(run_rc(ex, "{\"argv\": [\"anything\"], \"image\": \"some:image\"}"), GG_EEXEC);
    CHECK_RC(gg_executor_interrupt(ex), GG_OK);
    gg_executor_destroy(&ex);

    /* $DOCKER_HOST names the socket when the options do not. */
    char dh[160];
    snprintf(dh, sizeof dh, "unix://%s/from-docker-host.sock", dir);
    setenv("DOCKER_HOST", dh, 1);
    ex = make(NULL, "*=img:any");
    CHECK(ex != NULL);
    CHECK_RC(run_rc(ex, "{\"argv\": [\"/bin/true\"]}"), GG_EEXEC);
    CHECK_CONTAINS(gg_error_last(), "from-docker-host.sock");
    gg_executor_destroy(&ex);
    unsetenv("DOCKER_HOST");
    rmdir(dir);
}

int main(void)
{
    test_tar();
    test_mux();
    test_options_and_requests();
    return test_exit();
}
