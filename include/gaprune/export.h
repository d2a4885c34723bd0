/*
 * export.h — writing a model folder back: every file of the input folder copied unchanged,
 * except the safetensors weights, which are rewritten from the model's current parameters
 * with the same tensor names, shapes, dtypes and shards (tensors gaprune does not use, such as
 * the pooler, are copied byte for byte), and __metadata__ extended with provenance. Weights in
 * other formats (pytorch_model.bin, ONNX, ...) are left out: they would still be dense, and so
 * is GP_INIT_MARKER, which describes the folder gaprune train initialised, not its output.
 * The folder is built as <out>.tmp and renamed into place, so <out> is always complete. With
 * neurons (structured pruning) the MLP projections are written at their reduced shapes and
 * config.json says the new intermediate_size.
 *
 * Usage:
 *     const char *meta[] = {"gaprune.method", "gaprune", "gaprune.sparsity", "0.5"};
 *     gp_export_model(model, "out/job/pruned-gaprune-0.5", meta, 2, NULL, &err);
 */
#pragma once

#include "gaprune/check.h"
#include "gaprune/model.h"

/* Written by `gaprune train` into the model it initialises: the hash of what that model was made from. */
#define GP_INIT_MARKER "gaprune-init.txt"

/* The MLP neurons a structured export keeps: the same number in every block (transformers'
 * configs have one intermediate_size), index[l·kept + j] the j-th kept neuron of block l, in
 * increasing order (gp_mask_kept_neurons). */
typedef struct {
    int layers;
    int64_t kept;
    const int32_t *index;
} gp_export_neurons;

/* meta: nmeta key/value pairs (2·nmeta strings). neurons: NULL writes every tensor at its shape;
 * else the tensors that index MLP neurons (gp_model_neuron_axis) keep only those rows or
 * columns, and config.json gets intermediate_size = neurons->kept: a smaller model that
 * transformers, sentence-transformers and gaprune load as it is. */
gp_status gp_export_model(const gp_model *m, const char *out_dir, const char *const *meta, int nmeta,
                          const gp_export_neurons *neurons, gp_err *err);
