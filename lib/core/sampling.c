/*
 * sampling.c - the random draws of the learning parts (Thompson sampling in the fts5
 * retriever and in the generator's strategy bandit): splitmix64 as the generator, uniform
 * draws in (0, 1), and Beta draws through two Gamma draws (Marsaglia and Tsang's method, with
 * its boost U^(1/a) for shapes below 1) with a Box-Muller normal. Callers hold the state and
 * guard it themselves; nothing here is shared.
 */
#include <math.h>

#include "ggi.h"

uint64_t ggi_rand_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double ggi_rand_uniform(uint64_t *state)
{
    return ((double)(ggi_rand_next(state) >> 11) + 0.5) / 9007199254740992.0;
}

static double normal(uint64_t *s)
{
    double u = ggi_rand_uniform(s), v = ggi_rand_uniform(s);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* Gamma(a, 1); a bounded number of rejections, then the mean. A shape below 1 (at least
 * 1e-3) is drawn as Gamma(a + 1) * U^(1/a). */
static double gamma_draw(uint64_t *s, double a)
{
    if (!(a >= 1e-3))
        a = 1e-3;
    if (a < 1.0)
        return gamma_draw(s, a + 1.0) * pow(ggi_rand_uniform(s), 1.0 / a);
    double d = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (int i = 0; i < 64; i++) {
        double z = normal(s), v = 1.0 + c * z;
        if (v <= 0)
            continue;
        v = v * v * v;
        double u = ggi_rand_uniform(s);
        if (log(u) < 0.5 * z * z + d - d * v + d * log(v))
            return d * v;
    }
    return a;
}

double ggi_rand_beta(uint64_t *state, double a, double b)
{
    double x = gamma_draw(state, a), y = gamma_draw(state, b);
    return x + y > 0 ? x / (x + y) : 0.5;
}
