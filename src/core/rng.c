/* rng.c — splitmix64 and the draws derived from it (see rng.h). */
#include "gaprune/rng.h"

uint64_t gp_rng_below(uint64_t *state, uint64_t bound) {
    uint64_t threshold = (0 - bound) % bound; /* 2^64 mod bound */
    for (;;) {
        uint64_t r = gp_rng_next(state);
        if (r >= threshold) return r % bound;
    }
}

uint64_t gp_rng_seed(uint64_t seed, uint64_t stream) { return gp_rng_mix(seed * GP_RNG_GOLDEN + stream + 1); }

double gp_rng_unit(uint64_t r) { return (double)(r >> 11) * 0x1p-53; }

double gp_rng_unit_open(uint64_t r) { return ((double)(r >> 11) + 0.5) * 0x1p-53; }

uint64_t gp_record_key(uint64_t seed, int64_t i) { return gp_rng_mix(seed ^ (GP_RNG_GOLDEN * ((uint64_t)i + 1))); }
