/* select.c — exact k-smallest selection by two 16-bit radix histograms, over the items of every
 * rank (see prune.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/dist.h"
#include "gaprune/prune.h"

static int64_t max_numel(const gp_score_source *s) {
    int64_t m = 1;
    for (int i = 0; i < s->n; i++) m = s->numel[i] > m ? s->numel[i] : m;
    return m;
}

/* Finds the bucket holding the k-th smallest (1-based) of hist; *before = counts below it. */
static uint32_t find_bucket(const uint64_t *hist, uint64_t k, uint64_t *before) {
    uint64_t cum = 0;
    for (uint32_t b = 0; b < 65536; b++) {
        if (cum + hist[b] >= k) {
            *before = cum;
            return b;
        }
        cum += hist[b];
    }
    *before = cum;
    return 65535;
}

gp_status gp_select_smallest(const gp_score_source *src, int64_t k, uint8_t *const *keep, float *threshold, gp_err *err) {
    int64_t total = 0;
    for (int i = 0; i < src->n; i++) total += src->numel[i];
    gp_allreduce_sum_i64(&total, 1);
    GP_CHECK(k >= 0 && k <= total, "k=%lld of %lld", (long long)k, (long long)total);
    for (int i = 0; i < src->n; i++) memset(keep[i], 0xff, (size_t)(src->numel[i] + 7) / 8);
    *threshold = -INFINITY;
    if (k == 0) return GP_OK;
    float *buf = gp_malloc((size_t)max_numel(src) * sizeof(float));
    uint64_t *hist = gp_calloc(65536, sizeof(uint64_t));
    /* 32-bit counts per tensor (256 KiB: stays in L2), added to the 64-bit totals after each */
    uint32_t *local = gp_malloc(65536 * sizeof(uint32_t));
    gp_status rc = GP_OK;
    /* pass 1: top 16 bits, this rank's items, then the sum over ranks */
    for (int i = 0; i < src->n && !rc; i++) {
        if ((rc = src->fn(src->ctx, i, buf, err))) break;
        GP_CHECK(src->numel[i] < ((int64_t)1 << 32), "tensor of %lld elements", (long long)src->numel[i]);
        memset(local, 0, 65536 * sizeof(uint32_t));
        for (int64_t j = 0; j < src->numel[i]; j++) local[gp_float_key(buf[j]) >> 16]++;
        for (int b = 0; b < 65536; b++) hist[b] += local[b];
    }
    if ((rc = gp_agree(rc, err))) goto out;
    gp_allreduce_sum_u64(hist, 65536);
    uint64_t before_hi = 0, before_lo = 0;
    uint32_t hi = find_bucket(hist, (uint64_t)k, &before_hi);
    /* pass 2: low 16 bits inside that bucket */
    memset(hist, 0, 65536 * sizeof(uint64_t));
    for (int i = 0; i < src->n && !rc; i++) {
        if ((rc = src->fn(src->ctx, i, buf, err))) break;
        for (int64_t j = 0; j < src->numel[i]; j++) {
            uint32_t key = gp_float_key(buf[j]);
            if (key >> 16 == hi) hist[key & 0xffff]++;
        }
    }
    if ((rc = gp_agree(rc, err))) goto out;
    /* this rank's keys equal to each candidate threshold, before the sum replaces them */
    uint64_t *mine = gp_malloc(65536 * sizeof(uint64_t));
    memcpy(mine, hist, 65536 * sizeof(uint64_t));
    gp_allreduce_sum_u64(hist, 65536);
    uint32_t lo = find_bucket(hist, (uint64_t)k - before_hi, &before_lo);
    const uint32_t T = hi << 16 | lo;
    /* keys equal to T to prune: the first `ties` in global order. Ranks hold consecutive runs of
     * that order, so the ties of the ranks below come first. */
    const uint64_t ties_all = (uint64_t)k - before_hi - before_lo;
    const uint64_t below = (uint64_t)gp_exscan_sum_i64((int64_t)mine[lo]);
    uint64_t ties = ties_all > below ? ties_all - below : 0;
    ties = ties < mine[lo] ? ties : mine[lo];
    free(mine);
    /* pass 3: the mask, eight weights to a byte */
    for (int i = 0; i < src->n && !rc; i++) {
        if ((rc = src->fn(src->ctx, i, buf, err))) break;
        uint8_t *m = keep[i];
        const int64_t n = src->numel[i];
        for (int64_t j0 = 0; j0 < n; j0 += 8) {
            unsigned byte = 0;
            int64_t j1 = j0 + 8 < n ? j0 + 8 : n;
            for (int64_t j = j0; j < j1; j++) {
                uint32_t key = gp_float_key(buf[j]);
                byte |= (unsigned)(key > T) << (j - j0);
                if (__builtin_expect(key == T, 0)) { /* rare: the threshold's own ties */
                    if (ties) ties--;
                    else byte |= 1u << (j - j0);
                }
            }
            m[j0 >> 3] = (uint8_t)byte;
        }
    }
    rc = gp_agree(rc, err);
    *threshold = gp_key_float(T);
out:
    free(local);
    free(hist);
    free(buf);
    return rc;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

void gp_select_groups(const float *scores, int64_t n, int64_t len, int64_t k, uint8_t *keep, int64_t bit0) {
    GP_CHECK(len > 0 && n % len == 0 && k >= 0 && k <= len, "n=%lld len=%lld k=%lld", (long long)n, (long long)len,
             (long long)k);
    uint64_t *v = gp_malloc((size_t)len * sizeof(uint64_t));
    for (int64_t g = 0; g < n; g += len) {
        /* key in the high half, position in the low half: sorting breaks ties by position */
        for (int64_t j = 0; j < len; j++) v[j] = (uint64_t)gp_float_key(scores[g + j]) << 32 | (uint64_t)j;
        if (len <= 16) {
            for (int64_t a = 1; a < len; a++)
                for (int64_t b = a; b > 0 && v[b] < v[b - 1]; b--) {
                    uint64_t t = v[b];
                    v[b] = v[b - 1];
                    v[b - 1] = t;
                }
        } else {
            qsort(v, (size_t)len, sizeof(uint64_t), cmp_u64);
        }
        for (int64_t j = 0; j < len; j++) gp_bit_set(keep, bit0 + g + j, 1);
        for (int64_t j = 0; j < k; j++) gp_bit_set(keep, bit0 + g + (int64_t)(v[j] & 0xffffffffu), 0);
    }
    free(v);
}
