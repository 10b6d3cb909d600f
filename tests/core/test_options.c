/*
 * test_options.c - lib/core/options.c: a struct of every known version is accepted with
 * defaults for the fields its version lacks, no byte beyond a version's end is read or
 * written (the struct is placed against an inaccessible page), and versions 0 and newer
 * than the library's are refused with GG_EVERSION naming the struct.
 */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/ggi.h"
#include "core/options.h"
#include "testutil.h"

/* A made-up options struct with three versions. */
typedef struct demo_options {
    uint32_t version;
    const char *name;     /* v1 */
    int level;            /* v2 */
    double ratio;         /* v2 */
    const char *extra;    /* v3 */
    char flag;            /* v3, followed by padding */
} demo_options;

typedef struct demo_options_v1 {
    uint32_t version;
    const char *name;
} demo_options_v1;

#define DEMO_INIT { 3, "default", 7, 0.5, "more", 'y' }

GGI_OPTIONS_LAYOUT(demo_layout, demo_options, 3, GGI_OPTIONS_END(demo_options, name),
                   GGI_OPTIONS_END(demo_options, ratio), GGI_OPTIONS_END(demo_options, flag));

static unsigned char *guard;
static size_t page;

static void *at_guard(size_t size)
{
    return guard + page - size;
}

static void test_sizes(void)
{
    CHECK(ggi_options_size(&demo_layout, 0) == 0);
    CHECK(ggi_options_size(&demo_layout, 1) == sizeof(demo_options_v1));
    CHECK(ggi_options_size(&demo_layout, 2) == offsetof(demo_options, extra));
    CHECK(ggi_options_size(&demo_layout, 3) == sizeof(demo_options));
    CHECK(ggi_options_size(&demo_layout, 4) == 0);
}

/* An old caller: only its bytes are read, every later field keeps the default. */
static void test_accept_old(void)
{
    demo_options_v1 *old = at_guard(sizeof *old);
    old->version = 1;
    old->name = "mine";
    demo_options full = DEMO_INIT;
    CHECK_RC(ggi_options_accept(&demo_layout, &full, old), GG_OK);
    CHECK(full.version == 3);
    CHECK_STR(full.name, "mine");
    CHECK(full.level == 7 && full.ratio == 0.5 && full.flag == 'y');
    CHECK_STR(full.extra, "more");

    /* A version 2 caller whose struct ends right after ratio. */
    size_t v2 = offsetof(demo_options, extra);
    unsigned char *p = at_guard(v2);
    demo_options two = DEMO_INIT;
    two.version = 2;
    two.level = 9;
    memcpy(p, &two, v2);
    demo_options got = DEMO_INIT;
    got.extra = "kept";
    CHECK_RC(ggi_options_accept(&demo_layout, &got, p), GG_OK);
    CHECK(got.level == 9 && got.version == 3);
    CHECK_STR(got.extra, "kept");
}

static void test_accept_current_and_null(void)
{
    demo_options mine = DEMO_INIT;
    mine.extra = "x";
    mine.flag = 'n';
    demo_options full = DEMO_INIT;
    CHECK_RC(ggi_options_accept(&demo_layout, &full, &mine), GG_OK);
    CHECK(full.flag == 'n');
    CHECK_STR(full.extra, "x");
    demo_options untouched = DEMO_INIT;
    CHECK_RC(ggi_options_accept(&demo_layout, &untouched, NULL), GG_OK);
    CHECK_STR(untouched.name, "default");
}

static void test_refused(void)
{
    uint32_t versions[] = { 0, 4, 0xffffffffu };
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        demo_options bad = DEMO_INIT;
        bad.version = versions[i];
        bad.name = "bad";
        demo_options full = DEMO_INIT;
        CHECK_RC(ggi_options_accept(&demo_layout, &full, &bad), GG_EVERSION);
        CHECK_STR(full.name, "default"); /* untouched */
        CHECK_CONTAINS(gg_error_last(), "demo_options version");
        CHECK_CONTAINS(gg_error_last(), "1 to 3");
    }
}

/* init writes only as far as the version asked for reaches. */
static void test_init(void)
{
    demo_options d = DEMO_INIT;
    demo_options_v1 *old = at_guard(sizeof *old);
    memset(old, 0, sizeof *old);
    CHECK_RC(ggi_options_init(&demo_layout, old, &d, 1), GG_OK);
    CHECK(old->version == 1);
    CHECK_STR(old->name, "default");
    demo_options whole;
    memset(&whole, 0, sizeof whole);
    CHECK_RC(ggi_options_init(&demo_layout, &whole, &d, 3), GG_OK);
    CHECK(whole.version == 3 && whole.level == 7 && whole.flag == 'y');
    CHECK_RC(ggi_options_init(&demo_layout, &whole, &d, 0), GG_EVERSION);
    CHECK_RC(ggi_options_init(&demo_layout, &whole, &d, 4), GG_EVERSION);
    CHECK_RC(ggi_options_init(&demo_layout, NULL, &d, 3), GG_EINVAL);
}

int main(void)
{
    long ps = sysconf(_SC_PAGESIZE);
    page = ps > 0 ? (size_t)ps : 4096;
    void *m = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED);
    if (m == MAP_FAILED)
        return test_exit();
    guard = m;
    CHECK(mprotect(guard + page, page, PROT_NONE) == 0);
    test_sizes();
    test_accept_old();
    test_accept_current_and_null();
    test_refused();
    test_init();
    munmap(m, 2 * page);
    return test_exit();
}
