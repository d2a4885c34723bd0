/* cli.c — subcommand dispatch, option tables and the job commands' common start (see cli.h). */
#include "gaprune/cli.h"

#include <mpi.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/job.h"
#include "gaprune/dist.h"
#include "gaprune/provenance.h"
#include "gaprune/log.h"
#include "gaprune/pipeline.h"

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} command;

static const command k_commands[] = {
    {"run", gp_cmd_run, "every stage of the job, resumable -> OUT/report.md and OUT/report.json"},
    {"sample", gp_cmd_sample, "representative calibration sample of each corpus (k-means or random) -> OUT/sample-*.jsonl"},
    {"stats", gp_cmd_stats, "Fisher, mean gradients and activation norms of both corpora -> OUT/stats.h5"},
    {"plan", gp_cmd_plan, "memory per rank each stage will need, from config.json and the job (no weights loaded)"},
    {"score", gp_cmd_score, "masks for each method and sparsity -> OUT/mask-M-P.h5 and OUT/pruned-M-P/"},
    {"retrain", gp_cmd_retrain, "masked AdamW retraining from a mask file -> OUT/retrained-<tag>/"},
    {"eval", gp_cmd_eval, "retrieval (nDCG@10, ...) and STS (Spearman) of a model -> OUT/eval-<model>.json"},
    {"encode", gp_cmd_encode, "embed texts (.txt or .jsonl) into an HDF5 file"},
    {"tokenize", gp_cmd_tokenize, "print token ids of texts, one line per text"},
    {"train", gp_cmd_train, "contrastive training, from a model or a config.json -> OUT/model/"},
    {"inspect", gp_cmd_inspect, "per-layer tables (and --svg figures) of a stats or mask file"},
    {"help-job", gp_cmd_help_job, "every job-file key with its default (--value SECTION.KEY JOB.ini: one value)"},
};

static void usage(FILE *f) {
    fprintf(f,
            "gaprune %s — GAPrune pruning of sentence-embedding models (MPI)\n\n"
            "usage: gaprune COMMAND [options]     (run under mpirun or srun for several ranks)\n\n"
            "commands:\n",
            GP_VERSION);
    for (size_t i = 0; i < sizeof k_commands / sizeof k_commands[0]; i++)
        fprintf(f, "  %-10s %s\n", k_commands[i].name, k_commands[i].summary);
    gp_registries_print(f);
    fprintf(f, "\n\n`gaprune COMMAND --help` shows the options of a command; `gaprune help-job` the job-file keys.\n"
               "exit codes: 0 success, 1 internal error, 2 bad input, a refused write (full disk) or the output folder\n"
               "in use, 3 stopped early (requeue)\n");
}

int gp_cli_main(int argc, char **argv) {
    gp_provenance_set_command(argc, argv);

    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        if (gp_rank() == 0) usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? GP_EINPUT : GP_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        if (gp_rank() == 0) printf("gaprune %s\n", GP_VERSION);
        return GP_OK;
    }
    for (size_t i = 0; i < sizeof k_commands / sizeof k_commands[0]; i++)
        if (strcmp(argv[1], k_commands[i].name) == 0) return k_commands[i].fn(argc - 1, argv + 1);
    if (gp_rank() == 0) {
        fprintf(stderr, "gaprune: unknown command \"%s\"\n\n", argv[1]);
        usage(stderr);
    }
    return GP_EINPUT;
}

void gp_opts_help(FILE *f, const char *cmd, const char *use, const gp_opt *opts) {
    fprintf(f, "usage: gaprune %s %s\n\noptions:\n", cmd, use);
    for (const gp_opt *o = opts; o->name; o++) {
        char left[64];
        if (o->type == GP_OPT_FLAG) snprintf(left, sizeof left, "--%s", o->name);
        else snprintf(left, sizeof left, "--%s %s", o->name, o->metavar ? o->metavar : "VALUE");
        fprintf(f, "  %-24s %s\n", left, o->help);
    }
    fprintf(f, "  %-24s %s\n", "--help", "show this help");
}

static gp_status set_opt(const char *cmd, const gp_opt *o, const char *val, gp_err *err) {
    if (o->type == GP_OPT_LIST) {
        gp_opt_list *l = o->dst;
        l->v = gp_realloc(l->v, (size_t)(l->n + 1) * sizeof(char *));
        l->v[l->n++] = val;
        return GP_OK;
    }
    if (o->type == GP_OPT_STR) {
        *(const char **)o->dst = val;
        return GP_OK;
    }
    char *end = NULL;
    long v = strtol(val, &end, 10);
    if (!*val || *end || v < 0 || v > (1L << 30))
        return gp_errf(err, GP_EINPUT, "gaprune %s: --%s expects a non-negative integer, got \"%s\"", cmd, o->name, val);
    *(int *)o->dst = (int)v;
    return GP_OK;
}

gp_status gp_opts_parse(const char *cmd, const char *use, const gp_opt *opts, int argc, char **argv,
                        const char **pos, int max_pos, int *npos, gp_err *err) {
    *npos = 0;
    bool only_pos = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] != '-' || a[2] == '\0') {
            if (!only_pos && strcmp(a, "--") == 0) {
                only_pos = true;
                continue;
            }
            if (*npos >= max_pos)
                return gp_errf(err, GP_EINPUT, "gaprune %s: unexpected argument \"%s\"", cmd, a);
            pos[(*npos)++] = a;
            continue;
        }
        if (strcmp(a, "--help") == 0) {
            if (gp_rank() == 0) gp_opts_help(stdout, cmd, use, opts);
            return GP_ESTOPPED;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nl = eq ? (size_t)(eq - name) : strlen(name);
        const gp_opt *o = NULL;
        for (const gp_opt *p = opts; p->name; p++)
            if (strlen(p->name) == nl && strncmp(p->name, name, nl) == 0) o = p;
        if (!o) return gp_errf(err, GP_EINPUT, "gaprune %s: unknown option \"%.*s\" (see --help)", cmd, (int)nl + 2, a);
        if (o->type == GP_OPT_FLAG) {
            if (eq) return gp_errf(err, GP_EINPUT, "gaprune %s: --%s takes no value", cmd, o->name);
            *(int *)o->dst = 1;
            continue;
        }
        const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!val) return gp_errf(err, GP_EINPUT, "gaprune %s: --%s needs a value", cmd, o->name);
        gp_status rc = set_opt(cmd, o, val, err);
        if (rc) return rc;
    }
    return GP_OK;
}

/* `gaprune help-job` documents every key; `gaprune help-job --value SECTION.KEY JOB.ini [--set ...]`
 * prints one key's effective value (for scripts such as slurm/sweep.sbatch). */
int gp_cmd_help_job(int argc, char **argv) {
    if (argc >= 4 && !strcmp(argv[1], "--value")) {
        const char *key = argv[2], *dot = strchr(key, '.');
        gp_opt_list sets = {0};
        gp_err err = {0};
        gp_status rc = GP_OK;
        for (int i = 4; i < argc && !rc; i++) {
            if (!strcmp(argv[i], "--set") && i + 1 < argc) {
                sets.v = gp_realloc(sets.v, (size_t)(sets.n + 1) * sizeof(char *));
                sets.v[sets.n++] = argv[++i];
            } else if (!strncmp(argv[i], "--set=", 6)) {
                sets.v = gp_realloc(sets.v, (size_t)(sets.n + 1) * sizeof(char *));
                sets.v[sets.n++] = argv[i] + 6;
            } else {
                rc = gp_errf(&err, GP_EINPUT, "gaprune help-job --value: unexpected argument \"%s\"", argv[i]);
            }
        }
        gp_job cfg;
        memset(&cfg, 0, sizeof cfg);
        if (!rc && !dot) rc = gp_errf(&err, GP_EINPUT, "gaprune help-job --value: expected SECTION.KEY, got \"%s\"", key);
        if (!rc) rc = gp_job_load(&cfg, argv[3], sets.v, NULL, sets.n, &err);
        char *v = NULL;
        if (!rc) {
            char *sec = gp_strdup(key);
            sec[dot - key] = '\0';
            v = gp_job_get(&cfg, sec, dot + 1);
            if (!v) rc = gp_errf(&err, GP_EINPUT, "gaprune help-job --value: unknown key \"%s\"", key);
            free(sec);
        }
        if ((rc = gp_agree(rc, &err)) == GP_OK && gp_rank() == 0) printf("%s\n", v);
        free(v);
        free(sets.v);
        gp_job_free(&cfg);
        return rc;
    }
    if (gp_rank() == 0) gp_job_help(stdout);
    return GP_OK;
}

gp_status gp_cli_job(const char *cmd, const char *use, const gp_opt *extra, int argc, char **argv, gp_job *job) {
    gp_opt_list sets = {0};
    enum { MAX_OPTS = 32 };
    gp_opt opts[MAX_OPTS];
    const char *key_value[MAX_OPTS] = {0}; /* the value given to each GP_OPT_KEY option */
    int n = 0;
    for (const gp_opt *o = extra; o && o->name; o++) {
        GP_CHECK(n < MAX_OPTS - 2, "gaprune %s: more than %d options", cmd, MAX_OPTS - 2);
        opts[n] = *o;
        if (o->type == GP_OPT_KEY) opts[n].type = GP_OPT_STR, opts[n].dst = &key_value[n];
        n++;
    }
    const int nextra = n;
    opts[n++] = (gp_opt){"set", GP_OPT_LIST, &sets, "SECTION.KEY=VALUE", "override a job-file key (repeatable)"};
    opts[n] = (gp_opt){NULL, 0, NULL, NULL, NULL};
    const char *pos[2] = {NULL, NULL};
    int npos = 0;
    gp_err err = {0};
    memset(job, 0, sizeof *job);
    gp_status rc = gp_opts_parse(cmd, use, opts, argc, argv, pos, 1, &npos, &err);
    if (rc == GP_ESTOPPED) {
        free(sets.v);
        return GP_ESTOPPED;
    }
    if (!rc && npos != 1) rc = gp_errf(&err, GP_EINPUT, "gaprune %s: expected one job file (see --help)", cmd);
    if ((rc = gp_agree(rc, &err))) {
        free(sets.v);
        return rc;
    }
    /* options that stand for a job key come after the --set overrides, as "key=value" with their
     * own name as the origin of messages */
    const char **origins = gp_calloc((size_t)(sets.n + nextra + 1), sizeof(char *));
    char **owned = gp_calloc((size_t)(2 * nextra + 1), sizeof(char *));
    int nowned = 0;
    for (int i = 0; i < nextra; i++) {
        if (extra[i].type != GP_OPT_KEY || !key_value[i]) continue;
        const char *key = extra[i].dst;
        char *set = gp_malloc(strlen(key) + strlen(key_value[i]) + 2);
        sprintf(set, "%s=%s", key, key_value[i]);
        char *origin = gp_malloc(strlen(extra[i].name) + strlen(key_value[i]) + 4);
        sprintf(origin, "--%s %s", extra[i].name, key_value[i]);
        sets.v = gp_realloc(sets.v, (size_t)(sets.n + 1) * sizeof(char *));
        origins[sets.n] = origin;
        sets.v[sets.n++] = set;
        owned[nowned++] = set, owned[nowned++] = origin;
    }
    rc = gp_job_load(job, pos[0], sets.v, origins, sets.n, &err);
    for (int i = 0; i < nowned; i++) free(owned[i]);
    free(owned);
    free(origins);
    free(sets.v);
    if ((rc = gp_agree(rc, &err))) return rc;
    /* a command planning for another size (plan --ranks R) is named with that size */
    int ranks = gp_nranks();
    for (int i = 0; i < nextra; i++)
        if (extra[i].type == GP_OPT_INT && !strcmp(extra[i].name, "ranks") && *(int *)extra[i].dst > 0) ranks = *(int *)extra[i].dst;
    /* on stderr: stdout is the command's own output (`run --list`, the summary line), which a
     * script reads with $(...) */
    if (gp_rank() == 0 && gp_log_level() >= 1) {
        fprintf(stderr, "gaprune %s %s: job %s %s %d rank%s; effective configuration:\n", GP_VERSION, cmd, job->path,
                ranks == gp_nranks() ? "on" : "for", ranks, ranks > 1 ? "s" : "");
        gp_job_print(job, stderr);
        fflush(stderr);
    }
    return GP_OK;
}
