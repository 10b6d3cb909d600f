/*
 * strategy.c - the strategy bandit (strategy.h): Beta posteriors per arm sampled with the
 * library's Thompson-sampling draws (ggi_rand_beta), the random state under one mutex.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../core/ggi.h"
#include "strategy.h"

struct ggi_bandit {
    pthread_mutex_t mu;
    int n_arms;
    uint64_t rng;
    ggi_arm_stats arms[GGI_BANDIT_MAX_ARMS];
};

int ggi_bandit_new(int n_arms, uint64_t seed, ggi_bandit **out)
{
    *out = NULL;
    if (n_arms < 1 || n_arms > GGI_BANDIT_MAX_ARMS)
        return ggi_error(GG_EINVAL, "strategy bandit: %d arms (1 to %d allowed)", n_arms,
                         GGI_BANDIT_MAX_ARMS);
    ggi_bandit *b = calloc(1, sizeof *b);
    if (!b)
        return ggi_error(GG_ENOMEM, "out of memory creating the strategy bandit");
    if (pthread_mutex_init(&b->mu, NULL) != 0) {
        free(b);
        return ggi_error(GG_ENOMEM, "cannot create a mutex");
    }
    b->n_arms = n_arms;
    if (!seed)
        seed = (uint64_t)(ggi_wall_s() * 1e6) ^ ((uint64_t)(uintptr_t)b << 17);
    b->rng = seed;
    *out = b;
    return GG_OK;
}

void ggi_bandit_free(ggi_bandit **pb)
{
    if (!pb || !*pb)
        return;
    pthread_mutex_destroy(&(*pb)->mu);
    free(*pb);
    *pb = NULL;
}

void ggi_bandit_order(ggi_bandit *b, int *order)
{
    double score[GGI_BANDIT_MAX_ARMS];
    pthread_mutex_lock(&b->mu);
    double all_cost = 0, all_n = 0;
    for (int i = 0; i < b->n_arms; i++) {
        all_cost += b->arms[i].cost_sum;
        all_n += b->arms[i].cost_n;
    }
    double prior = all_n > 0 && all_cost > 0 ? all_cost / all_n : 1.0;
    for (int i = 0; i < b->n_arms; i++) {
        const ggi_arm_stats *a = &b->arms[i];
        double theta = ggi_rand_beta(&b->rng, 1.0 + a->passes, 1.0 + (a->n - a->passes));
        double cost = (a->cost_sum + prior) / (a->cost_n + 1.0);
        score[i] = theta / (cost > 0 ? cost : prior);
        order[i] = i;
    }
    pthread_mutex_unlock(&b->mu);
    for (int i = 1; i < b->n_arms; i++) /* at most 64 entries: insertion sort */
        for (int j = i; j > 0 && score[order[j]] > score[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
}

void ggi_bandit_update(ggi_bandit *b, int arm, int passed, double cost)
{
    if (arm < 0 || arm >= b->n_arms)
        return;
    pthread_mutex_lock(&b->mu);
    ggi_arm_stats *a = &b->arms[arm];
    a->n += 1;
    a->passes += passed ? 1 : 0;
    if (cost >= 0 && isfinite(cost)) {
        a->cost_sum += cost;
        a->cost_n += 1;
    }
    pthread_mutex_unlock(&b->mu);
}

void ggi_bandit_get(ggi_bandit *b, int arm, ggi_arm_stats *out)
{
    memset(out, 0, sizeof *out);
    if (arm < 0 || arm >= b->n_arms)
        return;
    pthread_mutex_lock(&b->mu);
    *out = b->arms[arm];
    pthread_mutex_unlock(&b->mu);
}

static double clean(double v)
{
    return isfinite(v) && v > 0 ? v : 0;
}

void ggi_bandit_set(ggi_bandit *b, int arm, const ggi_arm_stats *in)
{
    if (arm < 0 || arm >= b->n_arms)
        return;
    ggi_arm_stats s = { clean(in->n), clean(in->passes), clean(in->cost_sum),
                        clean(in->cost_n) };
    if (s.passes > s.n)
        s.passes = s.n;
    pthread_mutex_lock(&b->mu);
    b->arms[arm] = s;
    pthread_mutex_unlock(&b->mu);
}
