/* plan_cmd.c — `gaprune plan JOB.ini [--ranks R] [--threads T] [--mem-per-rank SIZE]`: the
 * memory per rank each stage will need (plan.h), from config.json and the job, without
 * loading weights; a table, then one JSON line. Exit 2 naming the stage when one will not fit
 * the limit: --mem-per-rank, else Slurm's SLURM_MEM_PER_NODE over the ranks per node. */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gaprune/cli.h"
#include "gaprune/dist.h"
#include "gaprune/fs.h"
#include "gaprune/job.h"
#include "gaprune/log.h"
#include "gaprune/model.h"
#include "gaprune/plan.h"
#include "gaprune/stats.h"

/* The stages gp_plan_* does not cover yet, named in the output so that a plan is not read as
 * complete. */
static const char *const k_not_covered[] = {"sample", "score", "retrain", "eval", NULL};

static double tokenizer_bytes(const char *dir) {
    static const char *const files[] = {"tokenizer.json", "vocab.txt", "vocab.json", "merges.txt", NULL};
    double sum = 0;
    for (int i = 0; files[i]; i++) {
        char *p = gp_path_join(dir, files[i]);
        struct stat st;
        if (stat(p, &st) == 0) sum += (double)st.st_size;
        free(p);
    }
    return sum;
}

/* Ranks sharing a node: Slurm's count when set, else those of this run on this node when the
 * plan is for this run's size, else all of them (one node). */
static int ranks_per_node(int ranks) {
    const char *s = getenv("SLURM_NTASKS_PER_NODE");
    if (s && atoi(s) > 0) return atoi(s);
    if (ranks == gp_nranks()) return gp_ranks_on_node();
    return ranks;
}

int gp_cmd_plan(int argc, char **argv) {
    int ranks = 0, threads = 0;
    const char *mem = NULL;
    const gp_opt extra[] = {
        {"ranks", GP_OPT_INT, &ranks, "R", "plan for R ranks (default: this run's)"},
        {"threads", GP_OPT_INT, &threads, "T", "OpenMP threads per rank (default: OMP_NUM_THREADS or 1)"},
        {"mem-per-rank", GP_OPT_STR, &mem, "SIZE", "limit per rank, e.g. 24G, 512M (default: SLURM_MEM_PER_NODE / ranks per node)"},
        {NULL, 0, NULL, NULL, NULL},
    };
    gp_job job;
    gp_status rc = gp_cli_job("plan", "JOB.ini [--ranks R] [--threads T] [--mem-per-rank SIZE] [--set section.key=value ...]",
                              extra, argc, argv, &job);
    if (rc == GP_ESTOPPED) return GP_OK;
    if (rc) {
        gp_job_free(&job);
        return rc;
    }
    gp_err err = {0};
    if (ranks <= 0) ranks = gp_nranks();
    if (threads <= 0) threads = getenv("OMP_NUM_THREADS") && atoi(getenv("OMP_NUM_THREADS")) > 0 ? atoi(getenv("OMP_NUM_THREADS")) : 1;
    double limit = 0;
    const char *limit_from = "none";
    if (mem) {
        if (!gp_plan_parse_size(mem, &limit) || limit <= 0)
            rc = gp_errf(&err, GP_EINPUT, "gaprune plan: --mem-per-rank expects a size such as 24G or 512M, got \"%s\"", mem);
        limit_from = "--mem-per-rank";
    } else if (getenv("SLURM_MEM_PER_NODE") && atof(getenv("SLURM_MEM_PER_NODE")) > 0) {
        limit = atof(getenv("SLURM_MEM_PER_NODE")) * 1048576.0 / ranks_per_node(ranks);
        limit_from = "SLURM_MEM_PER_NODE / ranks per node";
    }
    gp_model_config cfg;
    gp_param_table table = {0};
    int model_max = 0;
    if (!rc) rc = gp_model_config_load(job.model.path, &cfg, &err);
    if (!rc) rc = gp_model_default_max_length(job.model.path, cfg.max_positions, &model_max, &err);
    if ((rc = gp_agree(rc, &err))) {
        gp_job_free(&job);
        return rc;
    }
    gp_model_build_table(&cfg, &table);
    gp_stats_opts so;
    gp_stats_opts_from_job(&so, &job);
    /* auto accumulators decide on the node's share as stats.c will: the limit when known */
    const double share = limit > 0 ? limit : gp_memory_per_rank() * gp_nranks() / ranks;
    const gp_plan_model pm = {&cfg, &table, model_max, tokenizer_bytes(job.model.path)};
    gp_plan_stats_out p;
    gp_plan_stats(&pm, &so, ranks, threads, share, &p);
    const bool fits = limit <= 0 || p.total <= limit;
    if (gp_rank() == 0) {
        printf("plan: %s, %d rank%s x %d thread%s; stage stats: %lld parameters, %lld selected (prune.layers = %s), "
               "units of %d texts x %d tokens, %s accumulators\n",
               job.model.path, ranks, ranks > 1 ? "s" : "", p.threads, p.threads > 1 ? "s" : "", (long long)p.params,
               (long long)p.selected, gp_layers_name(so.layers), p.texts, p.seq_len, p.sharded ? "sharded" : "replicated");
        printf("  %-18s %12s  %s\n", "component", "MiB/rank", "formula");
        for (int k = 0; k < p.nparts; k++)
            printf("  %-18s %12.1f  %s\n", p.part[k].name, p.part[k].bytes / 1048576.0, p.part[k].formula);
        printf("  %-18s %12.1f  %s\n", "stats total", p.total / 1048576.0, fits ? "fits" : "DOES NOT FIT");
        if (limit > 0) printf("  limit: %.1f MiB per rank (%s)\n", limit / 1048576.0, limit_from);
        printf("  not covered yet:");
        for (int i = 0; k_not_covered[i]; i++) printf(" %s", k_not_covered[i]);
        printf("\n");
        printf("{\"command\":\"plan\",\"ranks\":%d,\"threads\":%d,\"limit_bytes\":%.0f,\"stages\":[{\"stage\":\"stats\","
               "\"bytes\":%.0f,\"fits\":%s,\"accumulators\":\"%s\",\"selected\":%lld,\"params\":%lld,\"seq_len\":%d,"
               "\"texts\":%d,\"parts\":{",
               ranks, p.threads, limit, p.total, fits ? "true" : "false", p.sharded ? "sharded" : "replicated",
               (long long)p.selected, (long long)p.params, p.seq_len, p.texts);
        for (int k = 0; k < p.nparts; k++) printf("%s\"%s\":%.0f", k ? "," : "", p.part[k].name, p.part[k].bytes);
        printf("}}],\"not_covered\":[");
        for (int i = 0; k_not_covered[i]; i++) printf("%s\"%s\"", i ? "," : "", k_not_covered[i]);
        printf("]}\n");
        fflush(stdout);
        if (!fits)
            fprintf(stderr,
                    "gaprune plan: stage stats needs %.1f MiB per rank, over the limit of %.1f MiB (%s); "
                    "try more ranks with stats.accumulators = sharded, a smaller stats.fisher_batch or model.max_length\n",
                    p.total / 1048576.0, limit / 1048576.0, limit_from);
    }
    gp_param_table_free(&table);
    gp_job_free(&job);
    return fits ? GP_OK : GP_EINPUT;
}
