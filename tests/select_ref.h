/* select_ref.h — the sort-based reference of the exact selection (prune.h), and scores with many
 * ties, for the tests of gp_select_smallest on one rank (test_prune) and over ranks
 * (test_mpi_score). */
#pragma once

#include "test_util.h"

#include "gaprune/prune.h"

typedef struct {
    uint32_t key;
    int64_t pos; /* global position */
} sr_kp;

static inline int sr_cmp_kp(const void *a, const void *b) {
    const sr_kp *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

/* pruned[pos] = 1 for the k first of all n scores sorted by (key, position): the lowest scores,
 * ties lowest position first, as gp_select_smallest promises. */
static inline void sr_reference(const float *s, int64_t n, int64_t k, uint8_t *pruned) {
    sr_kp *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++) v[i] = (sr_kp){gp_float_key(s[i]), i};
    qsort(v, (size_t)n, sizeof *v, sr_cmp_kp);
    memset(pruned, 0, (size_t)n);
    for (int64_t i = 0; i < k; i++) pruned[v[i].pos] = 1;
    free(v);
}

/* Half the values from a few repeated ones (signed zeros, equal pairs, extremes), half continuous. */
static inline float sr_tie_score(uint64_t *s) {
    static const float vals[] = {-1.0f, -0.0f, 0.0f, 0.25f, 0.25f, 0.5f, 1.0f, 3.0f, 1e-30f, 1e30f};
    double r = tu_rand(s);
    if (r < 0) return vals[(int)(-r * 10) % 10];
    return (float)(r * 4.0 - 1.0);
}
