/*
 * workspace_copy.c - bench/workspace_copy.sh drives this: preparing an attempt's copy of a
 * workspace base (lib/workspace) with GGI_WS_COPY_OVERLAY, GGI_WS_COPY_LINK and
 * GGI_WS_COPY_FULL against `git worktree add --detach` of the same repository, rounds
 * interleaved so load on a shared machine falls on all of them alike; prints each median in
 * ms and the ratios.
 *
 * An overlay copy is measured the whole way an attempt takes it: its directories made, the
 * overlay mounted (detached) as the attempt does to apply the answer, let go, mounted again
 * and attached by a forked child in a mount namespace of its own, as the executor's job
 * does (the child enters it and exits), then the copy removed. Its lower layer is made once
 * per base (timed apart, like the export). Where no overlay mounts (not root) it is left
 * out, said, and the target applies to the link copy.
 *
 * usage: workspace_copy_bench REPO SCRATCH_DIR [ROUNDS [separate]]
 * "separate" runs all rounds of one method before the next (each then meets only its own
 * filesystem traffic, e.g. ext4's journal catching up after the full copies).
 */
#include <spawn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "execution/overlay.h"
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

/* One overlay copy the way an attempt makes, uses and removes it (see above). 0 or -1. */
static int overlay_round(const char *lower, const char *dest)
{
    char upper[4300], work[4300], merged[4300];
    snprintf(upper, sizeof upper, "%s/" GGI_WS_OVERLAY_UPPER, dest);
    snprintf(work, sizeof work, "%s/" GGI_WS_OVERLAY_WORK, dest);
    snprintf(merged, sizeof merged, "%s/" GGI_WS_OVERLAY_MERGED, dest);
    if (ggi_ws_copy(lower, dest, GGI_WS_COPY_OVERLAY) != 0)
        return -1;
    int fd = -1;
    if (ggi_overlay_mount(lower, upper, work, &fd) != 0)
        return -1;
    char view[64];
    snprintf(view, sizeof view, "/proc/self/fd/%d", fd);
    int dfd = open(view, O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* the answer's writes go here */
    if (dfd < 0)
        return -1;
    close(dfd);
    close(fd);
    if (ggi_overlay_mount(lower, upper, work, &fd) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        ggi_overlay_attach a = { fd, merged, lower };
        const char *step;
        _exit(ggi_overlay_child_attach(&a, &step) == 0 && chdir(merged) == 0 ? 0 : 1);
    }
    int st = 0;
    close(fd);
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return -1;
    return ggi_ws_remove(dest) == 0 ? 0 : -1;
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

    /* The overlay's lower layer, once per base (an attempt's is given to the job's user). */
    char lower[4200];
    const char *why = "";
    snprintf(lower, sizeof lower, "%s/lower", scratch);
    int have_ovl = ggi_overlay_probe(scratch, &why);
    t0 = now_ms();
    if (have_ovl && ggi_ws_copy(base, lower, GGI_WS_COPY_FULL) != 0) {
        fprintf(stderr, "lower: %s\n", gg_error_last());
        return 1;
    }
    double t_lower = now_ms() - t0;

    enum { OVL, LINK, FULL, WT, METHODS };
    static const char *const names[METHODS] = { "copy, GGI_WS_COPY_OVERLAY", "copy, GGI_WS_COPY_LINK",
                                                "copy, GGI_WS_COPY_FULL", "git worktree add" };
    double *wall[METHODS], *cpu[METHODS], first[METHODS];
    for (int m = 0; m < METHODS; m++) {
        wall[m] = calloc((size_t)rounds, sizeof **wall);
        cpu[m] = calloc((size_t)rounds, sizeof **cpu);
        if (!wall[m] || !cpu[m])
            return 1;
    }
    const int separate = argc > 4 && strcmp(argv[4], "separate") == 0;
    /* Interleaved: one of each method per round. Separate: every round of a method, then
     * the next method. */
    int steps = separate ? METHODS * rounds : rounds;
    for (int step = 0; step < steps; step++) {
        int i = separate ? step % rounds : step;
        for (int m = 0; m < METHODS; m++) {
            if ((separate && m != step / rounds) || (m == OVL && !have_ovl))
                continue;
            if (m == OVL) {
                snprintf(dest, sizeof dest, "%s/ovl-%d", scratch, i);
                double c0 = cpu_ms();
                t0 = now_ms();
                if (overlay_round(lower, dest) != 0) {
                    fprintf(stderr, "overlay: %s\n", gg_error_last());
                    return 1;
                }
                wall[m][i] = now_ms() - t0;
                cpu[m][i] = cpu_ms() - c0;
                continue;
            }
            if (m != WT) {
                int mode = m == LINK ? GGI_WS_COPY_LINK : GGI_WS_COPY_FULL;
                snprintf(dest, sizeof dest, "%s/%s-%d", scratch, m == LINK ? "link" : "full", i);
                double c0 = cpu_ms();
                t0 = now_ms();
                if (ggi_ws_copy(base, dest, mode) != 0) {
                    fprintf(stderr, "copy: %s\n", gg_error_last());
                    return 1;
                }
                wall[m][i] = now_ms() - t0;
                cpu[m][i] = cpu_ms() - c0;
                ggi_ws_remove(dest);
                continue;
            }
            snprintf(dest, sizeof dest, "%s/wt-%d", scratch, i);
            char *add[] = {"git", "-C", (char *)repo, "worktree", "add", "-q", "--detach",
                           dest, "HEAD", NULL};
            t0 = now_ms();
            if (run(add, &cpu[m][i]) != 0) {
                fprintf(stderr, "git worktree add failed\n");
                return 1;
            }
            wall[m][i] = now_ms() - t0;
            char *rm[] = {"git", "-C", (char *)repo, "worktree", "remove", "--force", dest,
                          NULL};
            if (run(rm, NULL) != 0) {
                fprintf(stderr, "git worktree remove failed\n");
                return 1;
            }
        }
    }
    double med[METHODS], cmed[METHODS];
    for (int m = 0; m < METHODS; m++) {
        first[m] = wall[m][0];
        med[m] = median(wall[m], rounds);
        cmed[m] = median(cpu[m], rounds);
    }
    printf("base: tree %s, resolve+pack %.1f ms, import+export %.1f ms (once per machine)\n",
           tree, t_resolve, t_export);
    if (have_ovl)
        printf("overlay lower layer: %.1f ms (once per base)\n", t_lower);
    else
        printf("overlay: not measured, none mounts here (%s)\n", why);
    printf("rounds: %d (%s)\n", rounds,
           separate ? "each method's rounds together" : "interleaved");
    printf("                            wall median (first)     CPU median (user+system)\n");
    for (int m = 0; m < METHODS; m++) {
        if (m == OVL && !have_ovl)
            continue;
        printf("%-27s %8.2f ms (%7.2f)    %8.2f ms\n", names[m], med[m], first[m], cmed[m]);
    }
    if (have_ovl)
        printf("ratio overlay/worktree %.4f (CPU %.4f), ", med[OVL] / med[WT],
               cmed[OVL] / cmed[WT]);
    printf("link/worktree %.3f (CPU %.3f), full/worktree %.3f (CPU %.3f)\n",
           med[LINK] / med[WT], cmed[LINK] / cmed[WT], med[FULL] / med[WT],
           cmed[FULL] / cmed[WT]);
    int judged = have_ovl ? OVL : LINK;
    int ok = med[judged] <= 20.0 && med[judged] <= 0.5 * med[WT];
    printf("target (%s <= 20 ms and <= 0.5x git worktree add): %s\n",
           judged == OVL ? "overlay" : "link", ok ? "met" : "NOT met");
    if (have_ovl)
        ggi_ws_remove(lower);
    for (int m = 0; m < METHODS; m++) {
        free(wall[m]);
        free(cpu[m]);
    }
    ggi_ws_cache_close(&cache);
    free(base);
    cJSON_Delete(ws);
    cJSON_Delete(resolved);
    return ok ? 0 : 3;
}
