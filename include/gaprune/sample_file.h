/*
 * sample_file.h — the layout of OUT/sample-<corpus>.h5, the record of one calibration sample
 * (sample.h): every dataset and attribute name, in one place for its writer and its reader
 * (both in sample.c, which skips a sample that is already complete). A name changed here
 * changes the file; raise GP_SAMPLE_FORMAT_VERSION then.
 *
 *   /                provenance (format = "gaprune-sample", format_version, gaprune_version,
 *                    command, created_utc, n_ranks) and the GP_SAMPLE_ATTR_* below (the k-means
 *                    ones only for method kmeans); `complete` (h5.h) last
 *   /centroids       float32 [k_effective, dim]      } k-means only
 *   /assignment      int32 [n_candidates]            }
 *   /nearest         int64 [k_effective]             }
 *   /inertia         float64 [iterations_run + 1]    }
 *   /moved           int64 [iterations_run + 1]      }
 *   /reseeded        int64 [iterations_run + 1]      }
 *   /selected        int64 [n_selected]: candidate index of each triplet of sample_path
 *   /selected_line   int64 [n_selected]: 1-based line of corpus_path where each starts
 * Every dataset carries `description` and `units`.
 *
 * Usage:
 *     snprintf(name, sizeof name, GP_SAMPLE_FILE_FMT, "domain");          // "sample-domain.h5"
 *     char *hash = gp_h5_read_attr_str(f, GP_SAMPLE_ATTR_SETTINGS_HASH);
 */
#pragma once

#define GP_SAMPLE_FILE_FMT "sample-%s.h5"        /* printf format of the corpus (domain, general) */
#define GP_SAMPLE_JSONL_FMT "sample-%s.jsonl"    /* the sample itself, next to it */
#define GP_SAMPLE_FORMAT "gaprune-sample"
#define GP_SAMPLE_FORMAT_VERSION 1

/* ---- root attributes (besides provenance, description and complete) ---- */
#define GP_SAMPLE_ATTR_CORPUS "corpus"                   /* string: domain or general */
#define GP_SAMPLE_ATTR_CORPUS_PATH "corpus_path"         /* string: the triplet file sampled */
#define GP_SAMPLE_ATTR_CORPUS_SHA256 "corpus_sha256"     /* string: its SHA-256 */
#define GP_SAMPLE_ATTR_N_RECORDS "n_records"             /* integer: records in corpus_path */
#define GP_SAMPLE_ATTR_N_SKIPPED "n_skipped"             /* integer: bad records skipped */
#define GP_SAMPLE_ATTR_N_CANDIDATES "n_candidates"       /* integer: valid triplets, the candidates */
#define GP_SAMPLE_ATTR_METHOD "method"                   /* string: sample.method, kmeans or random */
#define GP_SAMPLE_ATTR_K "k"                             /* integer: sample.k, triplets wanted */
#define GP_SAMPLE_ATTR_SEED "seed"                       /* integer: sample.seed */
#define GP_SAMPLE_ATTR_ITERATIONS "iterations"           /* integer: sample.iterations, Lloyd updates at most (kmeans) */
#define GP_SAMPLE_ATTR_MODEL_PATH "model_path"           /* string: the model that embedded the queries (kmeans) */
#define GP_SAMPLE_ATTR_MODEL_SHA256 "model_sha256"       /* string: SHA-256 of its files (kmeans) */
#define GP_SAMPLE_ATTR_MAX_LENGTH "max_length"           /* integer: tokens per query, at most (kmeans) */
#define GP_SAMPLE_ATTR_BATCH "batch"                     /* integer: queries per forward pass (kmeans) */
#define GP_SAMPLE_ATTR_QUERIES "queries"                 /* string: how the queries were embedded (kmeans) */
#define GP_SAMPLE_ATTR_K_EFFECTIVE "k_effective"         /* integer: clusters, min(k, n_candidates) (k-means run) */
#define GP_SAMPLE_ATTR_ITERATIONS_RUN "iterations_run"   /* integer: Lloyd updates done (k-means run) */
#define GP_SAMPLE_ATTR_INERTIA_FINAL "inertia_final"     /* float: last /inertia row, squared distance (k-means run) */
#define GP_SAMPLE_ATTR_SECONDS_SEEDING "seconds_seeding" /* float: k-means++ seeding, in seconds (k-means run) */
#define GP_SAMPLE_ATTR_SECONDS_ITERATIONS "seconds_iterations" /* float: the Lloyd updates, in seconds (k-means run) */
#define GP_SAMPLE_ATTR_SETTINGS_HASH "settings_hash"     /* string: SHA-256 of the settings of this sample */
#define GP_SAMPLE_ATTR_SAMPLE_PATH "sample_path"         /* string: the sample-<corpus>.jsonl written */
#define GP_SAMPLE_ATTR_SAMPLE_SHA256 "sample_sha256"     /* string: its SHA-256 */
#define GP_SAMPLE_ATTR_N_SELECTED "n_selected"           /* integer: triplets in the sample */

/* ---- datasets ---- */
#define GP_SAMPLE_CENTROIDS "centroids"         /* final centroids, unit-vector embedding space */
#define GP_SAMPLE_ASSIGNMENT "assignment"       /* nearest final centroid of every candidate */
#define GP_SAMPLE_NEAREST "nearest"             /* the candidate nearest each final centroid */
#define GP_SAMPLE_INERTIA "inertia"             /* Σ squared distance to the nearest centroid per update */
#define GP_SAMPLE_MOVED "moved"                 /* candidates that changed cluster per update */
#define GP_SAMPLE_RESEEDED "reseeded"           /* empty clusters re-seeded per update */
#define GP_SAMPLE_SELECTED "selected"           /* candidate index of each sampled triplet */
#define GP_SAMPLE_SELECTED_LINE "selected_line" /* its 1-based line in corpus_path */
