/*
 * strategy.h - the strategy bandit of the "openai" backend: one arm per (endpoint, model,
 * temperature), each with a Beta posterior on its pass rate and a running mean of its cost.
 * Thompson sampling orders the arms for a request: every arm draws a pass rate from its
 * posterior, and the draw divided by the arm's mean cost (tokens, optionally plus latency)
 * ranks it, so the arm that passes most per cost is asked most often while the others are
 * still tried now and then. Pure bookkeeping: persistence lives in journal.h, the wiring in
 * openai_bandit.c. Internal.
 *
 * THREAD SAFETY: every function may be called from several threads at once (a mutex guards
 * the statistics and the random state), except ggi_bandit_free.
 */
#ifndef GGI_STRATEGY_H
#define GGI_STRATEGY_H

#include <stdint.h>

/** Most arms one backend has (endpoints x models x temperatures, capped). */
#define GGI_BANDIT_MAX_ARMS 64

/** What is known of one arm; also the unit of persistence (journal.h). */
typedef struct ggi_arm_stats {
    double n;        /* judged answers */
    double passes;   /* of which passed their tests */
    double cost_sum; /* summed cost of the answers whose cost is known */
    double cost_n;   /* how many answers cost_sum covers */
} ggi_arm_stats;

typedef struct ggi_bandit ggi_bandit;

/** Creates a bandit of n_arms (1 to GGI_BANDIT_MAX_ARMS) arms without data, its random
 * state seeded from seed (0: from the clock). 0, GG_EINVAL or GG_ENOMEM. */
int ggi_bandit_new(int n_arms, uint64_t seed, ggi_bandit **out);

/** Frees the bandit and sets *pb to NULL; accepts NULL. */
void ggi_bandit_free(ggi_bandit **pb);

/**
 * Fills order[0..n_arms-1] with every arm index once, best first by one Thompson draw:
 * score = draw from Beta(1 + passes, 1 + n - passes) / mean cost, where the mean cost of an
 * arm is (cost_sum + prior) / (cost_n + 1) and the prior is the mean cost over all arms (1
 * when no cost is known yet), so an arm without data is neither cheap nor dear.
 */
void ggi_bandit_order(ggi_bandit *b, int *order);

/** Records one judged answer of arm: passed or not, and its cost (negative: unknown). */
void ggi_bandit_update(ggi_bandit *b, int arm, int passed, double cost);

/** Copies the statistics of arm into *out. */
void ggi_bandit_get(ggi_bandit *b, int arm, ggi_arm_stats *out);

/** Replaces the statistics of arm (loaded from the database). Negative or non-finite
 * fields are read as 0 and passes is capped at n. */
void ggi_bandit_set(ggi_bandit *b, int arm, const ggi_arm_stats *in);

#endif
