/*
 * workspace_copy.c - bench/workspace_copy.sh drives this: preparing an attempt's copy of a
 * workspace base (lib/workspace) with GGI_WS_COPY_LINK and GGI_WS_COPY_FULL against
 * `git worktree add --detach` of the same repository, rounds interleaved so load on a shared
 * machine falls on all three alike; prints each median in ms and the ratios.
 *
 * usage: workspace_copy_bench REPO SCRATCH_DIR [ROUNDS [separate]]
 * "separate" runs all rounds of one method before the next (each then meets only its own
 * filesystem traffic, e.g. ext4's journal catching up after the full copies).
 */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "workspace/workspace.h"

extern char **environ;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Runs argv; *cpu (may be NULL) gets the CPU time (user + system) the child used. */
static int run(char *const argv[], double *cpu)
{
    pid_t pid;
    if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ) != 0)
        return -1;
    int st;
    struct rusage ru;
    if (wait4(pid, &st, 0, &ru) < 0)
        return -1;
    if (cpu)
        *cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
               (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
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

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s REPO SCRATCH_DIR [ROUNDS]\n", argv[0]);
        return 2;
    }
    const char *repo = argv[1], *scratch = argv[2];
    int rounds = argc > 3 ? atoi(argv[3]) : 21;
    if (rounds < 1 || rounds > 10000)
        rounds = 21;
    char cache_root[4096], dest[4200];
    snprintf(cache_root, sizeof cache_root, "%s/cache", scratch);

    /* The base: the repository resolved at HEAD and exported once (timed apart). */
    cJSON *ws = cJSON_CreateObject(), *resolved = NULL;
    cJSON_AddStringToObject(ws, "repo", repo);
    double t0 = now_ms();
    if (ggi_ws_resolve(ws, &resolved) != 0) {
        fprintf(stderr, "resolve: %s\n", gg_error_last());
        return 1;
    }
    double t_resolve = now_ms() - t0;
    ggi_ws_cache *cache = NULL;
    char *base = NULL, tree[41];
    t0 = now_ms();
    if (ggi_ws_cache_open(cache_root, &cache) != 0 ||
        ggi_ws_cache_base(cache, resolved, &base, tree) != 0) {
        fprintf(stderr, "cache: %s\n", gg_error_last());
        return 1;
    }
    double t_export = now_ms() - t0;

    double *link = calloc((size_t)rounds, sizeof *link);
    double *full = calloc((size_t)rounds, sizeof *full);
    double *wt = calloc((size_t)rounds, sizeof *wt);
    double *link_cpu = calloc((size_t)rounds, sizeof *wt);
    double *full_cpu = calloc((size_t)rounds, sizeof *wt);
    double *wt_cpu = calloc((size_t)rounds, sizeof *wt);
    const int separate = argc > 4 && strcmp(argv[4], "separate") == 0;
    /* Interleaved: one of each method per round. Separate: every round of a method, then
     * the next method. */
    int steps = separate ? 3 * rounds : rounds;
    for (int step = 0; step < steps; step++) {
        int i = separate ? step % rounds : step;
        for (int m = 0; m < 3; m++) {
            if (separate && m != step / rounds)
                continue;
            if (m < 2) {
                int mode = m == 0 ? GGI_WS_COPY_LINK : GGI_WS_COPY_FULL;
                snprintf(dest, sizeof dest, "%s/%s-%d", scratch, m == 0 ? "link" : "full", i);
                double c0 = cpu_ms();
                t0 = now_ms();
                if (ggi_ws_copy(base, dest, mode) != 0) {
                    fprintf(stderr, "copy: %s\n", gg_error_last());
                    return 1;
                }
                (m == 0 ? link : full)[i] = now_ms() - t0;
                (m == 0 ? link_cpu : full_cpu)[i] = cpu_ms() - c0;
                ggi_ws_remove(dest);
                continue;
            }
            snprintf(dest, sizeof dest, "%s/wt-%d", scratch, i);
            char *add[] = {"git", "-C", (char *)repo, "worktree", "add", "-q", "--detach",
                           dest, "HEAD", NULL};
            t0 = now_ms();
            if (run(add, &wt_cpu[i]) != 0) {
                fprintf(stderr, "git worktree add failed\n");
                return 1;
            }
            wt[i] = now_ms() - t0;
            char *rm[] = {"git", "-C", (char *)repo, "worktree", "remove", "--force", dest,
                          NULL};
            if (run(rm, NULL) != 0) {
                fprintf(stderr, "git worktree remove failed\n");
                return 1;
            }
        }
    }
    double ml = median(link, rounds), mf = median(full, rounds), mw = median(wt, rounds);
    double cl = median(link_cpu, rounds), cf = median(full_cpu, rounds),
           cw = median(wt_cpu, rounds);
    printf("base: tree %s, resolve+pack %.1f ms, import+export %.1f ms (once per machine)\n",
           tree, t_resolve, t_export);
    printf("rounds: %d (%s)\n", rounds,
           separate ? "each method's rounds together" : "interleaved");
    printf("                         wall median (min)       CPU median (user+system)\n");
    printf("copy, GGI_WS_COPY_LINK   %8.2f ms (%7.2f)    %8.2f ms\n", ml, link[0], cl);
    printf("copy, GGI_WS_COPY_FULL   %8.2f ms (%7.2f)    %8.2f ms\n", mf, full[0], cf);
    printf("git worktree add         %8.2f ms (%7.2f)    %8.2f ms\n", mw, wt[0], cw);
    printf("ratio link/worktree %.3f (CPU %.3f), full/worktree %.3f (CPU %.3f)\n", ml / mw,
           cl / cw, mf / mw, cf / cw);
    int ok = ml <= 20.0 && ml <= 0.5 * mw;
    printf("target (link <= 20 ms and <= 0.5x git worktree add): %s\n", ok ? "met" : "NOT met");
    ggi_ws_cache_close(&cache);
    free(base);
    cJSON_Delete(ws);
    cJSON_Delete(resolved);
    free(link);
    free(full);
    free(wt);
    free(link_cpu);
    free(full_cpu);
    free(wt_cpu);
    return ok ? 0 : 3;
}
