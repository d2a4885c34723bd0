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
/* In a folder whose blocks keep different numbers of neurons: what it is and who reads it. */
#define GP_EXPORT_NOTICE "GAPRUNE-ONLY.md"

/* The structures a structured export keeps: counts[l] of block l (the same number in every
 * block but for scope neurons-global), index[] block after block the kept neurons or heads of
 * each in increasing order (gp_mask_kept_structs). */
typedef struct {
    gp_struct_kind kind;
    int layers;
    const int64_t *counts;
    const int32_t *index;
} gp_export_structs;

/* meta: nmeta key/value pairs (2·nmeta strings). structs: NULL writes every tensor at its shape;
 * else the tensors that index those structures (gp_model_struct_axis) keep only their rows or
 * columns (head_dim of them per head), and config.json records it: intermediate_size = the
 * kept count for neurons, transformers' "pruned_heads" (the removed heads of every layer) for
 * heads. A smaller model that transformers, sentence-transformers and gaprune load as it is;
 * a sharded folder's index gets the new total_size. Neurons kept in different numbers by the
 * blocks: intermediate_size is the largest, GP_CONFIG_INTER_SIZES (model.h) lists every block's
 * and GP_EXPORT_NOTICE says in the folder that only gaprune reads it. */
gp_status gp_export_model(const gp_model *m, const char *out_dir, const char *const *meta, int nmeta,
                          const gp_export_structs *structs, gp_err *err);
