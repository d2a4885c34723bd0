/*
 * rng.h — the one random-number source of gaprune: splitmix64 (Steele, Lea & Flood 2014).
 *
 * Every random draw (random scores, record selection keys, k-means seeding, the retraining
 * shuffle, random initial weights) is a pure function of a seed and a counter, so results are
 * the same on every rank and every rank count, and a rerun repeats them bit for bit. The
 * helpers below are the exact expressions the callers always used; changing any of them
 * changes samples, masks, k-means centres and retrained weights.
 *
 * Usage:
 *     uint64_t s = seed;                          // a sequential stream
 *     uint64_t r = gp_rng_next(&s);               // s += golden; mix(s)
 *     int64_t j = (int64_t)gp_rng_below(&s, n);   // uniform in [0, n)
 *     double u = gp_rng_unit(gp_rng_next(&s));    // uniform in [0, 1)
 *     uint64_t base = gp_rng_seed(seed, stream);  // independent sub-stream `stream` of `seed`
 *     uint64_t key = gp_record_key(seed, i);      // selection key of record i
 */
#pragma once

#include <stdint.h>

/* 2^64 / golden ratio: splitmix64's increment, also used to spread seeds and counters. */
#define GP_RNG_GOLDEN 0x9e3779b97f4a7c15ull

/* splitmix64's output function (a bijection of 64-bit words). Inline, as the next two: the paired
 * comparisons draw hundreds of millions of them. */
static inline uint64_t gp_rng_mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
/* One splitmix64 step: *state += GP_RNG_GOLDEN, returns gp_rng_mix(*state). */
static inline uint64_t gp_rng_next(uint64_t *state) { return gp_rng_mix(*state += GP_RNG_GOLDEN); }
/* Many draws of one bound (a bootstrap resample draws n of [0, n)): gp_rng_below's rejection
 * threshold computed once, and its remainder r % bound taken without a division, exactly, by
 * Lemire, Kaser & Kurz's direct computation ("Faster remainder by direct computation", 2019):
 * m = ceil(2^128 / bound), r % bound = ((m · r) mod 2^128) · bound / 2^128. */
typedef struct {
    uint64_t bound, threshold;
    unsigned __int128 m;
} gp_rng_bound;

static inline gp_rng_bound gp_rng_bound_of(uint64_t bound) {
    return (gp_rng_bound){bound, (0 - bound) % bound, ~(unsigned __int128)0 / bound + 1};
}

/* gp_rng_below(state, b->bound): the same values. */
static inline uint64_t gp_rng_below_b(uint64_t *state, const gp_rng_bound *b) {
    for (;;) {
        const uint64_t r = gp_rng_next(state);
        if (r < b->threshold) continue;
        const unsigned __int128 low = b->m * r;
        const unsigned __int128 bottom = ((low & UINT64_MAX) * b->bound) >> 64, top = (low >> 64) * b->bound;
        return (uint64_t)((bottom + top) >> 64);
    }
}
/* Uniform in [0, bound), bound >= 1, without modulo bias (rejects below 2^64 mod bound). */
uint64_t gp_rng_below(uint64_t *state, uint64_t bound);
/* gp_rng_mix(seed * GP_RNG_GOLDEN + stream + 1): the start of sub-stream `stream` of `seed`
 * (a tensor's random scores, an epoch's shuffle). */
uint64_t gp_rng_seed(uint64_t seed, uint64_t stream);
/* The top 53 bits of r as a double in [0, 1). */
double gp_rng_unit(uint64_t r);
/* The top 53 bits of r as a double in (0, 1): never 0, so log() of it is finite. */
double gp_rng_unit_open(uint64_t r);
/* The selection key of record i of a corpus: gp_rng_mix(seed ^ GP_RNG_GOLDEN * (i + 1)). */
uint64_t gp_record_key(uint64_t seed, int64_t i);
