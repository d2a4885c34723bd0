/* plan_cmd.c — `gaprune plan JOB.ini [--ranks R] [--threads T] [--mem-per-rank SIZE]`: the
 * memory per rank each stage the job runs will need (plan.h), from config.json, the job and its
 * files' sizes, without loading weights; a table per stage, then one JSON line. Exit 2 naming the
 * stage when one will not fit the limit: --mem-per-rank, else Slurm's SLURM_MEM_PER_NODE, else the
 * node's physical memory, over the ranks per node (gp_plan_limit; the refusal is gp_plan_refusal,
 * which the stage commands use). */
#include <stdlib.h>
#include <string.h>

#include "gaprune/cli.h"
#include "gaprune/dist.h"
#include "gaprune/job.h"
#include "gaprune/log.h"
#include "gaprune/plan.h"

int gp_cmd_plan(int argc, char **argv) {
    int ranks = 0, threads = 0;
    const char *mem = NULL;
    const gp_opt extra[] = {
        {"ranks", GP_OPT_INT, &ranks, "R", "plan for R ranks (default: this run's)"},
        {"threads", GP_OPT_INT, &threads, "T", "OpenMP threads per rank (default: OMP_NUM_THREADS or 1)"},
        {"mem-per-rank", GP_OPT_STR, &mem, "SIZE",
         "limit per rank, e.g. 24G, 512M (default: SLURM_MEM_PER_NODE, else the physical memory, over the ranks per node)"},
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
    /* no --mem-per-rank and no Slurm: the node's physical memory over the ranks that share it,
     * what stats and run refuse against, so "fits" here means they will not refuse */
    rc = gp_plan_limit(mem, true, ranks, &limit, &limit_from, &err);
    /* auto accumulators decide on the node's share as stats.c will: the limit when known */
    const double share = limit > 0 ? limit : gp_memory_per_rank() * gp_nranks() / ranks;
    gp_plan p;
    if (!rc) rc = gp_plan_job(&job, ranks, threads, share, &p, &err);
    if ((rc = gp_agree(rc, &err))) {
        gp_job_free(&job);
        return rc;
    }
    const unsigned every = (1u << GP_PLAN_NSTAGES) - 1;
    rc = gp_plan_refusal(&p, limit, limit_from, "plan", every, &err);
    /* gaprune stats' own peak: the model's load, the sample when it runs, the statistics */
    double stats_cmd = 0;
    for (int s = GP_PLAN_LOAD; s <= GP_PLAN_STATS; s++)
        if (p.stage[s].runs && p.stage[s].total > stats_cmd) stats_cmd = p.stage[s].total;
    if (gp_rank() == 0) {
        printf("plan: %s, %d rank%s x %d thread%s; peak %.1f MiB per rank (stage %s)\n", job.model.path, ranks,
               ranks > 1 ? "s" : "", p.threads, p.threads > 1 ? "s" : "", p.peak / 1048576.0, p.stage[p.peak_stage].name);
        for (int s = 0; s < GP_PLAN_NSTAGES; s++) {
            const gp_plan_stage_out *o = &p.stage[s];
            if (!o->runs) continue;
            printf("stage %s: %s\n", o->name, o->what);
            printf("  %-21s %12s  %s\n", "component", "MiB/rank", "formula");
            for (int k = 0; k < o->nparts; k++)
                printf("  %-21s %12.1f  %s\n", o->part[k].name, o->part[k].bytes / 1048576.0, o->part[k].formula);
            printf("  %-21s %12.1f  %s\n", "total", o->total / 1048576.0,
                   limit <= 0 ? "" : o->total <= limit ? "fits" : "DOES NOT FIT");
        }
        if (limit > 0) printf("limit: %.1f MiB per rank (%s)\n", limit / 1048576.0, limit_from);
        printf("{\"command\":\"plan\",\"ranks\":%d,\"threads\":%d,\"limit_bytes\":%.0f,\"peak_bytes\":%.0f,\"peak_stage\":\"%s\","
               "\"stats_command_bytes\":%.0f,\"accumulators\":\"%s\",\"activations\":\"%s\",\"selected\":%lld,\"params\":%lld,\"stages\":[",
               ranks, p.threads, limit, p.peak, p.stage[p.peak_stage].name, stats_cmd, p.stats.sharded ? "sharded" : "replicated",
               p.stats.lean ? "lean" : "all", (long long)p.stats.selected, (long long)p.stats.params);
        int first = 1;
        for (int s = 0; s < GP_PLAN_NSTAGES; s++) {
            const gp_plan_stage_out *o = &p.stage[s];
            if (!o->runs) continue;
            printf("%s{\"stage\":\"%s\",\"bytes\":%.0f,\"fits\":%s,\"parts\":{", first ? "" : ",", o->name, o->total,
                   limit <= 0 || o->total <= limit ? "true" : "false");
            for (int k = 0; k < o->nparts; k++) printf("%s\"%s\":%.0f", k ? "," : "", o->part[k].name, o->part[k].bytes);
            printf("}}");
            first = 0;
        }
        printf("]}\n");
        fflush(stdout);
    }
    rc = gp_agree(rc, &err);
    gp_job_free(&job);
    return rc;
}
