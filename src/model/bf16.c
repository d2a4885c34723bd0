/* bf16.c — BF16 conversion and the BF16 matrix product on oneDNN (see bf16.h).
 *
 * The conversion is written here (bf16.h): it is three integer operations per element, and
 * oneDNN's reorder would need a primitive per length. The product is oneDNN's matmul primitive with
 * strided memory descriptors (a transposed operand is the same buffer with its strides swapped)
 * and, for beta = 1, a sum post-op. Making a primitive costs tens of microseconds (a JIT kernel
 * the first time), about what a small product itself costs, so primitives are kept in a small
 * table keyed by everything their descriptors hold; the token counts of packed batches vary, so
 * the table holds several M per weight shape and replaces its oldest entry when full.
 */
#include "gaprune/bf16.h"

#include <cblas.h>
#include <dnnl.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/check.h"

#define DNNL(call)                                                                                 \
    do {                                                                                           \
        dnnl_status_t dnnl_rc_ = (call);                                                           \
        GP_CHECK(dnnl_rc_ == dnnl_success, "oneDNN %s: status %d", #call, (int)dnnl_rc_);          \
    } while (0)

void gp_bf16_from_f32(gp_bf16 *out, const float *x, int64_t n) {
#pragma omp parallel for if (n >= (1 << 16)) schedule(static)
    for (int64_t i = 0; i < n; i++) out[i] = gp_bf16_round(x[i]);
}

void gp_bf16_to_f32(float *out, const gp_bf16 *x, int64_t n) {
#pragma omp parallel for if (n >= (1 << 16)) schedule(static)
    for (int64_t i = 0; i < n; i++) out[i] = gp_bf16_value(x[i]);
}

/* A primitive is made with M and K left to run time (DNNL_RUNTIME_DIM_VAL): a packed batch's
 * token count is M of the forward and input-gradient products and K of the weight-gradient one,
 * and it changes with nearly every batch, so primitives made per exact shape would be made (and
 * JIT-compiled, about a millisecond and a few hundred KiB each) per call. N is a weight's side and
 * stays in the key, with the strides, beta and the thread count the primitive was made for. */
typedef struct {
    int ta, tb, N, lda, ldb, ldc, threads;
    float beta;
} gemm_key;

typedef struct {
    gemm_key key;
    dnnl_primitive_t prim; /* NULL: oneDNN has no BF16 matmul for this CPU (emulated below) */
} gemm_entry;

#define CACHE 64
static dnnl_engine_t engine;
static dnnl_stream_t stream;
static gemm_entry cache[CACHE];
static int cache_used, cache_next;

static void engine_init(void) {
    if (engine) return;
    DNNL(dnnl_engine_create(&engine, dnnl_cpu, 0));
    DNNL(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
}

static void entry_free(gemm_entry *e) {
    if (e->prim) dnnl_primitive_destroy(e->prim);
    memset(e, 0, sizeof *e);
}

/* rows x cols, row-major with leading dimension ld, or its transpose when trans; a dimension may
 * be DNNL_RUNTIME_DIM_VAL */
static void desc(dnnl_memory_desc_t *md, int64_t rows, int64_t cols, int ld, int trans, dnnl_data_type_t t) {
    const dnnl_dims_t dims = {rows, cols};
    const dnnl_dims_t strides = {trans ? 1 : ld, trans ? ld : 1};
    DNNL(dnnl_memory_desc_init_by_strides(md, 2, dims, t, strides));
}

static gemm_entry *entry_make(const gemm_key *k) {
    engine_init();
    const int64_t R = DNNL_RUNTIME_DIM_VAL;
    dnnl_memory_desc_t a, b, c;
    desc(&a, R, R, k->lda, k->ta, dnnl_bf16);
    desc(&b, R, k->N, k->ldb, k->tb, dnnl_bf16);
    desc(&c, R, k->N, k->ldc, 0, dnnl_f32);
    dnnl_matmul_desc_t md;
    DNNL(dnnl_matmul_desc_init(&md, &a, &b, NULL, &c));
    dnnl_primitive_attr_t attr;
    DNNL(dnnl_primitive_attr_create(&attr));
    if (k->beta != 0.0f) {
        dnnl_post_ops_t po;
        DNNL(dnnl_post_ops_create(&po));
        DNNL(dnnl_post_ops_append_sum(po, 1.0f));
        DNNL(dnnl_primitive_attr_set_post_ops(attr, po));
        dnnl_post_ops_destroy(po);
    }
    dnnl_primitive_desc_t pd;
    const dnnl_status_t st = dnnl_primitive_desc_create(&pd, &md, attr, engine, NULL);
    dnnl_primitive_attr_destroy(attr);
    GP_CHECK(st == dnnl_success || st == dnnl_unimplemented, "oneDNN dnnl_primitive_desc_create: status %d", (int)st);
    if (cache_used == CACHE) entry_free(&cache[cache_next]);
    else cache_used++;
    gemm_entry *e = &cache[cache_next];
    cache_next = (cache_next + 1) % CACHE;
    e->key = *k;
    if (st == dnnl_unimplemented) return e;
    DNNL(dnnl_primitive_create(&e->prim, pd));
    dnnl_primitive_desc_destroy(pd);
    return e;
}

/* Below AVX512 oneDNN 2.6 has no BF16 matmul: the same product in float32 on the operands'
 * float32 values. A product of two BF16 numbers is exact in float32, so this is what BF16
 * hardware computes up to the order of the float32 sums; the price is the conversion, and the
 * float32 rate instead of BF16's. */
static void emulate(int ta, int tb, int M, int N, int K, const gp_bf16 *A, int lda, const gp_bf16 *B, int ldb,
                    float beta, float *C, int ldc) {
    const int64_t na = (int64_t)(ta ? K : M) * lda, nb = (int64_t)(tb ? N : K) * ldb;
    float *a = gp_malloc((size_t)na * sizeof(float)), *b = gp_malloc((size_t)nb * sizeof(float));
    gp_bf16_to_f32(a, A, na);
    gp_bf16_to_f32(b, B, nb);
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, a, lda,
                b, ldb, beta, C, ldc);
    free(a);
    free(b);
}

void gp_bf16_gemm(int trans_a, int trans_b, int M, int N, int K, const gp_bf16 *A, int lda, const gp_bf16 *B,
                  int ldb, float beta, float *C, int ldc) {
    GP_CHECK(beta == 0.0f || beta == 1.0f, "beta %g (0 or 1)", (double)beta);
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        if (beta == 0.0f)
            for (int i = 0; i < M; i++) memset(C + (size_t)i * ldc, 0, (size_t)N * sizeof(float));
        return;
    }
    gemm_key k;
    memset(&k, 0, sizeof k); /* the key is compared bytewise */
    k.ta = !!trans_a, k.tb = !!trans_b, k.N = N, k.lda = lda, k.ldb = ldb, k.ldc = ldc;
    k.threads = omp_get_max_threads(), k.beta = beta;
    gemm_entry *e = NULL;
    for (int i = 0; i < cache_used && !e; i++)
        if (!memcmp(&cache[i].key, &k, sizeof k)) e = &cache[i];
    if (!e) e = entry_make(&k);
    if (!e->prim) {
        emulate(k.ta, k.tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    dnnl_memory_desc_t ad, bd, cd;
    desc(&ad, M, K, lda, k.ta, dnnl_bf16);
    desc(&bd, K, N, ldb, k.tb, dnnl_bf16);
    desc(&cd, M, N, ldc, 0, dnnl_f32);
    dnnl_memory_t am, bm, cm;
    DNNL(dnnl_memory_create(&am, &ad, engine, (void *)A));
    DNNL(dnnl_memory_create(&bm, &bd, engine, (void *)B));
    DNNL(dnnl_memory_create(&cm, &cd, engine, C));
    const dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}};
    DNNL(dnnl_primitive_execute(e->prim, stream, 3, args));
    DNNL(dnnl_stream_wait(stream));
    dnnl_memory_destroy(am);
    dnnl_memory_destroy(bm);
    dnnl_memory_destroy(cm);
}

int gp_bf16_native(void) {
    const dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return (isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16;
}

/* oneDNN's ISA values are nested bit sets: each adds bits to the one below it */
static const struct {
    dnnl_cpu_isa_t isa;
    const char *name;
} isa_names[] = {
    {dnnl_cpu_isa_avx512_core_amx, "avx512_core_amx"}, {dnnl_cpu_isa_avx512_core_bf16, "avx512_core_bf16"},
    {dnnl_cpu_isa_avx512_core, "avx512_core"},         {dnnl_cpu_isa_avx2, "avx2"},
};

const char *gp_bf16_isa(void) {
    const dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    for (size_t i = 0; i < sizeof isa_names / sizeof isa_names[0]; i++)
        if ((isa & isa_names[i].isa) == isa_names[i].isa) return isa_names[i].name;
    return "below avx2";
}

void gp_bf16_release(void) {
    for (int i = 0; i < cache_used; i++) entry_free(&cache[i]);
    cache_used = cache_next = 0;
    if (stream) dnnl_stream_destroy(stream);
    if (engine) dnnl_engine_destroy(engine);
    stream = NULL;
    engine = NULL;
}
