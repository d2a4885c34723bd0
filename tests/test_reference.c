/* test_reference.c — gaprune against the PyTorch references (tests/reference/make_bert_fixtures.py,
 * make_qwen3_fixtures.py).
 *
 * For each fixture model (BERT and Qwen3; one F32 single file, one BF16 in two shards with the
 * "bert." / "model." names of other checkpoint classes; BERT also as transformers' prune_heads leaves a
 * folder, 2 of 4 heads a layer): token ids and mask exactly; embeddings
 * within 1e-5 absolute; the InfoNCE loss within 1e-5 relative; the gradient of every parameter
 * within 1e-4 relative (‖diff‖ / ‖ref‖). Qwen3 is checked on a right-padded batch (as gaprune's
 * tokenizer pads) and on a left-padded one (as Qwen3's tokenizer pads).
 */
#include "test_util.h"

#include <hdf5.h>

#include "gaprune/loss.h"
#include "gaprune/model.h"

typedef struct {
    int n, T, B, max_length;
    char **texts;
    int32_t *ids;
    uint8_t *mask;
    float *emb;
    double loss;
    hid_t file;
} expected;

static void read_attr(hid_t f, const char *name, hid_t type, void *out) {
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    assert_true(a >= 0);
    assert_true(H5Aread(a, type, out) >= 0);
    H5Aclose(a);
}

/* side: "" or "_left" (the datasets of the left-padded batch) */
static void load_expected(const char *path, const char *side, expected *e) {
    char nm[64];
    e->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(e->file >= 0);
    read_attr(e->file, "max_length", H5T_NATIVE_INT, &e->max_length);
    read_attr(e->file, "n_triplets", H5T_NATIVE_INT, &e->B);
    snprintf(nm, sizeof nm, "loss%s", side);
    read_attr(e->file, nm, H5T_NATIVE_DOUBLE, &e->loss);
    snprintf(nm, sizeof nm, "ids%s", side);
    hid_t d = H5Dopen2(e->file, nm, H5P_DEFAULT);
    hid_t sp = H5Dget_space(d);
    hsize_t dims[2];
    H5Sget_simple_extent_dims(sp, dims, NULL);
    e->n = (int)dims[0];
    e->T = (int)dims[1];
    e->ids = malloc(dims[0] * dims[1] * sizeof(int32_t));
    assert_true(H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, e->ids) >= 0);
    H5Sclose(sp);
    H5Dclose(d);
    e->mask = malloc(dims[0] * dims[1]);
    snprintf(nm, sizeof nm, "mask%s", side);
    d = H5Dopen2(e->file, nm, H5P_DEFAULT);
    assert_true(H5Dread(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, e->mask) >= 0);
    H5Dclose(d);
    snprintf(nm, sizeof nm, "embeddings%s", side);
    d = H5Dopen2(e->file, nm, H5P_DEFAULT);
    sp = H5Dget_space(d);
    H5Sget_simple_extent_dims(sp, dims, NULL);
    e->emb = malloc(dims[0] * dims[1] * sizeof(float));
    assert_true(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, e->emb) >= 0);
    H5Sclose(sp);
    H5Dclose(d);
    d = H5Dopen2(e->file, "texts", H5P_DEFAULT);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    e->texts = calloc((size_t)e->n, sizeof(char *));
    assert_true(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, e->texts) >= 0);
    H5Tclose(t);
    H5Dclose(d);
}

static void free_expected(expected *e) {
    for (int i = 0; i < e->n; i++) free(e->texts[i]); /* HDF5 allocated them with malloc */
    free(e->texts);
    free(e->ids);
    free(e->mask);
    free(e->emb);
    H5Fclose(e->file);
}

/* side "": the batch gaprune's tokenizer makes must equal the reference's ids and mask; side
 * "_left": the reference's left-padded batch is fed as it is. */
static void check_model(const char *name, const char *side) {
    char dir[256], path[256], grads[64];
    snprintf(dir, sizeof dir, FIXTURES "/%s", name);
    snprintf(path, sizeof path, FIXTURES "/%s.expected.h5", name);
    snprintf(grads, sizeof grads, "grad%s", side);
    expected e;
    load_expected(path, side, &e);
    gp_model *m;
    gp_err err = {0};
    if (gp_model_load(dir, &m, &err)) fail_msg("%s", err.msg);

    gp_batch b;
    if (!*side) {
        gp_tokenizer_batch(m->tok, (const char *const *)e.texts, e.n, e.max_length, &b);
        assert_int_equal(b.B, e.n);
        assert_int_equal(b.T, e.T);
        for (int i = 0; i < e.n * e.T; i++) {
            if (b.ids[i] != e.ids[i] || b.mask[i] != e.mask[i])
                fail_msg("%s: text %d position %d: id %d mask %d, reference %d %d", name, i / e.T, i % e.T, b.ids[i],
                         b.mask[i], e.ids[i], e.mask[i]);
        }
    } else {
        b.B = e.n, b.T = e.T;
        b.ids = malloc((size_t)e.n * e.T * sizeof(int32_t));
        b.mask = malloc((size_t)e.n * e.T);
        memcpy(b.ids, e.ids, (size_t)e.n * e.T * sizeof(int32_t));
        memcpy(b.mask, e.mask, (size_t)e.n * e.T);
    }

    const int D = gp_model_dim(m), B = e.B;
    float *emb = malloc((size_t)e.n * D * sizeof(float));
    gp_model_forward(m, &b, emb);
    double emb_err = tu_max_abs(emb, e.emb, (size_t)e.n * D);

    gp_infonce L = {0};
    float loss = gp_infonce_forward(&L, emb, emb + (size_t)B * D, B, e.n - B, D, 20.0f);
    double loss_err = fabs(loss - e.loss) / fabs(e.loss);
    float *demb = calloc((size_t)e.n * D, sizeof(float));
    gp_infonce_backward(&L, demb, demb + (size_t)B * D);
    gp_model_zero_grad(m);
    gp_model_backward(m, demb);

    printf("    %s%s: embeddings max abs err %.2e, loss %.7f vs %.7f (rel err %.2e)\n", name, side, emb_err, loss,
           e.loss, loss_err);
    assert_true(emb_err < 1e-5);
    assert_true(loss_err < 1e-5);

    /* Read every reference gradient first: the check needs the global norm. */
    hid_t g = H5Gopen2(e.file, grads, H5P_DEFAULT);
    assert_true(g >= 0);
    float **ref = calloc((size_t)m->table.n, sizeof(float *));
    double total = 0;
    for (int i = 0; i < m->table.n; i++) {
        const gp_param *p = &m->table.p[i];
        hid_t d = H5Dopen2(g, p->name, H5P_DEFAULT);
        if (d < 0) fail_msg("reference has no gradient for %s", p->name);
        ref[i] = malloc(p->numel * sizeof(float));
        assert_true(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, ref[i]) >= 0);
        H5Dclose(d);
        for (size_t k = 0; k < p->numel; k++) total += (double)ref[i][k] * ref[i][k];
    }
    H5Gclose(g);
    total = sqrt(total);
    /* A tensor whose true gradient is zero (the attention key bias: softmax ignores a constant
     * added to every score of a row) has no relative error to speak of; it must instead be
     * zero to within float rounding of the whole gradient. */
    double worst = 0;
    const char *worst_name = "";
    int zero = 0;
    for (int i = 0; i < m->table.n; i++) {
        const gp_param *p = &m->table.p[i];
        const float *ours = gp_model_grad(m, i);
        double rn = 0, on = 0;
        for (size_t k = 0; k < p->numel; k++) rn += (double)ref[i][k] * ref[i][k], on += (double)ours[k] * ours[k];
        if (sqrt(rn) < 1e-9 * total) {
            zero++;
            if (sqrt(on) > 1e-6 * total) fail_msg("%s: gradient of %s should be 0, has norm %.3e", name, p->name, sqrt(on));
            continue;
        }
        double rel = tu_rel_err(ours, ref[i], p->numel);
        if (rel > worst) worst = rel, worst_name = p->name;
        if (rel >= 1e-4) fail_msg("%s: gradient of %s: rel err %.3e", name, p->name, rel);
    }
    for (int i = 0; i < m->table.n; i++) free(ref[i]);
    free(ref);
    printf("    %s%s: %d parameter gradients, worst rel err %.2e (%s); %d gradients that are zero in exact arithmetic are below 1e-6 of the total\n",
           name, side, m->table.n - zero, worst, worst_name, zero);

    /* The inference path (no activations kept; batches of 4, padded on the right) gives the
     * same embeddings. */
    float *emb2 = malloc((size_t)e.n * D * sizeof(float));
    gp_model_encode(m, (const char *const *)e.texts, e.n, 4, e.max_length, NULL, emb2);
    double enc_err = tu_rel_err(emb2, emb, (size_t)e.n * D);
    if (enc_err >= 1e-6) fail_msg("%s%s: encode differs from forward by %.2e", name, side, enc_err);

    free(emb2);
    gp_infonce_free(&L);
    free(demb);
    free(emb);
    gp_batch_free(&b);
    gp_model_free(m);
    free_expected(&e);
}

static void test_bert_f32(void **state) {
    (void)state;
    check_model("bert-f32", "");
}

static void test_bert_bf16_sharded(void **state) {
    (void)state;
    check_model("bert-bf16", "");
}

/* a folder as transformers' prune_heads leaves it (config.json pruned_heads, 2 of 4 heads a layer) */
static void test_bert_pruned_heads(void **state) {
    (void)state;
    check_model("bert-heads", "");
}

static void test_qwen3_f32(void **state) {
    (void)state;
    check_model("qwen3-f32", "");
    check_model("qwen3-f32", "_left");
}

static void test_qwen3_bf16_sharded(void **state) {
    (void)state;
    check_model("qwen3-bf16", "");
    check_model("qwen3-bf16", "_left");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bert_f32),
        cmocka_unit_test(test_bert_bf16_sharded), cmocka_unit_test(test_bert_pruned_heads),
        cmocka_unit_test(test_qwen3_f32),
        cmocka_unit_test(test_qwen3_bf16_sharded),
    };
    return cmocka_run_group_tests_name("reference", tests, NULL, NULL);
}
