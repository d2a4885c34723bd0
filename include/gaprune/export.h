/*
 * export.h — writing a model folder back: every file of the input folder copied unchanged,
 * except the safetensors weights, which are rewritten from the model's current parameters
 * with the same tensor names, shapes, dtypes and shards (tensors gaprune does not use, such as
 * the pooler, are copied byte for byte), and __metadata__ extended with provenance. Weights in
 * other formats (pytorch_model.bin, ONNX, ...) are left out: they would still be dense, and so
 * is GP_INIT_MARKER, which describes the folder gaprune train initialised, not its output.
 * The folder is built as <out>.tmp and renamed into place, so <out> is always complete.
 *
 * Usage:
 *     const char *meta[] = {"gaprune.method", "gaprune", "gaprune.sparsity", "0.5"};
 *     gp_export_model(model, "out/job/pruned-gaprune-0.5", meta, 2, &err);
 */
#pragma once

#include "gaprune/check.h"
#include "gaprune/model.h"

/* Written by `gaprune train` into the model it initialises: the hash of what that model was made from. */
#define GP_INIT_MARKER "gaprune-init.txt"

/* meta: nmeta key/value pairs (2·nmeta strings). */
gp_status gp_export_model(const gp_model *m, const char *out_dir, const char *const *meta, int nmeta, gp_err *err);
