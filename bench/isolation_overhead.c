/*
 * isolation_overhead.c - helper of bench/isolation.sh: the per-job cost of `PYTHON -c pass`
 * as a plain fork/exec, through the process executor at each isolation level (with and
 * without the zygote), and wrapped in bubblewrap when it is installed. Prints one line per
 * way: name, median ms, ratio to plain. Usage: isolation_overhead PYTHON RUNS
 */
#include <math.h>
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

/* fork/exec argv and wait; -1 on failure. */
static double run_argv(char *const *argv)
{
    double t0 = now_ms();
    pid_t p = fork();
    if (p == 0) {
        execv(argv[0], argv);
        _exit(127);
    }
    int st = 0;
    if (p < 0 || waitpid(p, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return -1;
    return now_ms() - t0;
}

static double run_executor(gg_executor_t *ex, const char *req)
{
    char *out = NULL;
    double t0 = now_ms();
    int rc = gg_executor_run(ex, req, &out);
    double t = now_ms() - t0;
    int ok = rc == 0 && strstr(out, "\"exit_code\":0,");
    gg_free(out);
    return ok ? t : -1;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s PYTHON RUNS [BWRAP]\n", argv[0]);
        return 2;
    }
    const char *py = argv[1];
    int runs = atoi(argv[2]);
    const char *bwrap = argc > 3 ? argv[3] : NULL;
    if (runs < 3 || runs > 10000)
        runs = 50;
    double *v = calloc((size_t)runs, sizeof *v);
    if (!v)
        return 1;
    double plain = 0;

    char *pa[] = { (char *)py, "-c", "pass", NULL };
    for (int i = 0; i < runs; i++)
        if ((v[i] = run_argv(pa)) < 0) {
            fprintf(stderr, "plain run failed\n");
            return 1;
        }
    plain = median(v, runs);
    printf("%-34s %8.2f ms  %5.2fx\n", "plain fork/exec", plain, 1.0);

    static const char *const levels[] = { "none", "rlimits", "namespaces" };
    for (int l = 0; l < 3; l++) {
        for (int z = 0; z < 2; z++) {
            if (z == 1 && l < 2)
                continue; /* the zygote serves the sandbox only */
            gg_executor_options o = GG_EXECUTOR_OPTIONS_INIT;
            o.isolation = levels[l];
            gg_executor_t *ex = NULL;
            if (gg_executor_new(&ex, &o) != 0) {
                printf("%-34s unavailable: %s\n", levels[l], gg_error_last());
                continue;
            }
            char req[512];
            snprintf(req, sizeof req, "{\"argv\": [\"%s\", \"-c\", \"pass\"], \"zygote\": %s}",
                     py, z ? "true" : "false");
            double warm = run_executor(ex, req); /* starts the zygote */
            int bad = warm < 0;
            for (int i = 0; i < runs && !bad; i++)
                bad = (v[i] = run_executor(ex, req)) < 0;
            char name[64];
            snprintf(name, sizeof name, "executor %s%s", levels[l],
                     l == 2 ? (z ? " + zygote" : " (direct)") : "");
            if (bad)
                printf("%-34s failed: %s\n", name, gg_error_last());
            else {
                double m = median(v, runs);
                printf("%-34s %8.2f ms  %5.2fx\n", name, m, m / plain);
            }
            gg_executor_destroy(&ex);
        }
    }

    if (bwrap) {
        char *ba[] = { (char *)bwrap, "--unshare-all", "--ro-bind", "/", "/", "--tmpfs", "/tmp",
                       "--proc", "/proc", "--dev", "/dev", "--die-with-parent",
                       (char *)py, "-c", "pass", NULL };
        int bad = 0;
        for (int i = 0; i < runs && !bad; i++)
            bad = (v[i] = run_argv(ba)) < 0;
        if (bad)
            printf("%-34s failed\n", "bwrap --unshare-all");
        else {
            double m = median(v, runs);
            printf("%-34s %8.2f ms  %5.2fx\n", "bwrap --unshare-all", m, m / plain);
        }
    }
    free(v);
    return 0;
}
