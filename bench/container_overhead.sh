#!/bin/sh
# container_overhead.sh - per-job overhead of the "container" executor against `podman run
# --rm`, in one run on the same Podman service and image: the median wall time of
# `python3 -c pass` over N jobs each (N=15 unless given), the ratio, and whether the target
# (the executor no slower than podman run) was met. The service and the image come from
# tests/container/run_engine_tests.sh (a private storage in a temporary directory, removed
# afterwards); the driver is a small C program built here against the build's libgryphgen.
#
# usage: bench/container_overhead.sh        (BUILD=dir, N=count, CC=compiler)
# The last line is CSV for other bench scripts:
#   container_overhead,<executor median ms>,<podman run median ms>,<ratio>
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build}
n=${N:-15}
cc=${CC:-cc}

if [ ! -d "$build" ]; then
    meson setup "$build" "$root" >/dev/null
fi
ninja -C "$build" >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/gg-bench-XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

cat > "$work/driver.c" <<'CEOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <gryphgen.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(void)
{
    const char *sock = getenv("GG_CONTAINER_SOCKET"), *image = getenv("GG_CONTAINER_IMAGE");
    int n = atoi(getenv("BENCH_N") ? getenv("BENCH_N") : "15");
    if (!sock || !image || n < 1 || n > 1000)
        return 2;
    char images[256], url[512];
    snprintf(images, sizeof images, "python=%s", image);
    snprintf(url, sizeof url, "unix://%s", sock);
    gg_executor_options o = GG_EXECUTOR_OPTIONS_INIT;
    o.backend = "container";
    o.container_socket = sock;
    o.container_images = images;
    gg_executor_t *ex = NULL;
    if (gg_executor_new(&ex, &o)) {
        fprintf(stderr, "executor: %s\n", gg_error_last());
        return 1;
    }
    double *a = calloc((size_t)n, sizeof *a), *b = calloc((size_t)n, sizeof *b);
    if (!a || !b)
        return 1;
    /* Interleaved, one warm-up each, so both sides see the same machine state. */
    for (int i = -1; i < n; i++) {
        char *res = NULL;
        double t0 = now_ms();
        int rc = gg_executor_run(ex, "{\"argv\": [\"python3\", \"-c\", \"pass\"]}", &res);
        double t1 = now_ms();
        if (rc || !strstr(res, "\"exit_code\":0")) {
            fprintf(stderr, "executor run failed: %s %s\n", gg_error_last(), res ? res : "");
            return 1;
        }
        gg_free(res);
        pid_t p = fork();
        if (p == 0) {
            execlp("podman", "podman", "--remote", "--url", url, "run", "--rm", "--network",
                   "none", "--read-only", "--user", "65534:65534", "--cap-drop", "ALL",
                   "--security-opt", "no-new-privileges", "--memory", "512m", "--pids-limit",
                   "256", "--ulimit", "nofile=256:256", "--ulimit", "nproc=4096:4096", image,
                   "/usr/bin/python3", "-c", "pass", (char *)NULL);
            _exit(127);
        }
        int st = 0;
        waitpid(p, &st, 0);
        double t2 = now_ms();
        if (!WIFEXITED(st) || WEXITSTATUS(st)) {
            fprintf(stderr, "podman run failed (status %d)\n", st);
            return 1;
        }
        if (i >= 0) {
            a[i] = t1 - t0;
            b[i] = t2 - t1;
        }
    }
    double ma = median(a, n), mb = median(b, n);
    printf("jobs per side:              %d (python3 -c pass)\n", n);
    printf("container executor median:  %.1f ms\n", ma);
    printf("podman run --rm median:     %.1f ms\n", mb);
    printf("ratio executor/podman run:  %.2f (target <= 1.00: %s)\n", ma / mb,
           ma <= mb ? "met" : "NOT met");
    printf("container_overhead,%.1f,%.1f,%.3f\n", ma, mb, ma / mb);
    gg_executor_destroy(&ex);
    free(a);
    free(b);
    return 0;
}
CEOF
"$cc" -std=c11 -O2 -D_GNU_SOURCE -I"$root/include" -o "$work/driver" "$work/driver.c" \
    -L"$build/lib" -lgryphgen -Wl,-rpath,"$build/lib"
BENCH_N=$n "$root/tests/container/run_engine_tests.sh" "$work/driver"
