/* eval.c — distributed retrieval and STS evaluation (see eval.h). */
#include <errno.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/dist.h"
#include "gaprune/eval.h"
#include "gaprune/fs.h"
#include "gaprune/hash.h"
#include "gaprune/json.h"
#include "gaprune/kernels.h"
#include "gaprune/kmeans.h"
#include "gaprune/log.h"
#include "gaprune/strmap.h"
#include "gaprune/taskmetrics.h"
#include "gaprune/testhook.h"
#include "gaprune/textfile.h"

static int64_t share(int64_t n, int r, int P) { return n * r / P; }

/* Embeds texts [0, n) (this rank's share), truncated at the job's model.max_length (capped by
 * the model's own), and L2-normalises them: cosine = dot product. */
static float *embed(gp_model *m, char **texts, int64_t n, int batch, int max_length, const char *prefix,
                    gp_progress *prog, int64_t before) {
    const int D = gp_model_dim(m);
    float *e = gp_malloc((size_t)(n ? n : 1) * D * sizeof(float));
    for (int64_t i = 0; i < n; i += batch) {
        int k = (int)(n - i < batch ? n - i : batch);
        gp_model_encode(m, (const char *const *)texts + i, k, batch, max_length, prefix, e + i * D);
        /* rank 0's share times the ranks: the shares differ by one text at most */
        const int64_t done = before + (i + k) * gp_nranks();
        gp_progress_update(prog, done < prog->total ? done : prog->total);
    }
    float *norm = gp_malloc((size_t)(n ? n : 1) * sizeof(float));
    gp_l2norm_forward(e, norm, e, (int)n, D);
    free(norm);
    return e;
}

/* One untimed batch of the longest texts an evaluation can hold (batch texts of max_length words,
 * each at least a token): the activation buffers grow to their largest once, so the encode
 * throughput is the model's and not the first evaluation's page faults (the dense model's, in
 * `gaprune run`, measured half as fast as the masked ones that followed it). */
static void warm_up(const gp_eval_opts *o, gp_model *m) {
    const int len = o->max_length < m->max_length ? o->max_length : m->max_length, n = o->batch;
    char *text = gp_malloc((size_t)(2 * (len > 0 ? len : 1) + 1));
    for (int i = 0; i < len; i++) memcpy(text + 2 * i, "a ", 2);
    text[2 * (len > 0 ? len : 0)] = '\0';
    const char **texts = gp_malloc((size_t)n * sizeof(char *));
    for (int i = 0; i < n; i++) texts[i] = text;
    float *e = gp_malloc((size_t)n * (size_t)gp_model_dim(m) * sizeof(float));
    gp_model_encode(m, texts, n, n, len, NULL, e);
    free(e), free(texts), free(text);
}

/* ---- top-k -------------------------------------------------------------------------------------- */

typedef struct {
    float s;
    int64_t doc;
} hit;

/* a worse than b: lower score, or equal score and a higher corpus index */
static int worse(const hit *a, const hit *b) { return a->s < b->s || (a->s == b->s && a->doc > b->doc); }

/* Min-heap (the worst on top) of at most k hits. */
static void heap_offer(hit *h, int *n, int k, hit x) {
    if (*n < k) {
        int i = (*n)++;
        h[i] = x;
        while (i > 0 && worse(&h[i], &h[(i - 1) / 2])) {
            hit t = h[i];
            h[i] = h[(i - 1) / 2];
            h[(i - 1) / 2] = t;
            i = (i - 1) / 2;
        }
        return;
    }
    if (!worse(&h[0], &x)) return;
    h[0] = x;
    for (int i = 0;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < *n && worse(&h[l], &h[w])) w = l;
        if (r < *n && worse(&h[r], &h[w])) w = r;
        if (w == i) break;
        hit t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

static int better_first(const void *a, const void *b) {
    const hit *x = a, *y = b;
    return worse(x, y) ? 1 : worse(y, x) ? -1 : 0;
}

/* MPI_Reduce operator on per-query lists of GP_EVAL_TOPK hits, each sorted best first: inout
 * becomes the best GP_EVAL_TOPK of both, in order. Scores and then corpus indices order the hits
 * totally, so the merge is associative and commutative and any reduction tree gives the
 * ranking one sort of every rank's lists would: rank 0 never holds the ranks' lists at once. */
static void merge_topk(void *in, void *inout, int *len, MPI_Datatype *type) {
    (void)type;
    enum { K = GP_EVAL_TOPK };
    const hit *a = in;
    hit *b = inout, m[K];
    for (int q = 0; q < *len; q++, a += K, b += K) {
        int i = 0, j = 0;
        for (int k = 0; k < K; k++) m[k] = worse(&b[j], &a[i]) ? a[i++] : b[j++];
        memcpy(b, m, sizeof m);
    }
}

/* ---- BEIR ------------------------------------------------------------------------------------ */

typedef struct {
    int64_t query; /* index in queries.jsonl */
    int n;
    gp_qrel *q;
} query_qrels;

/* Rank 0: qrels/test.tsv to per-query lists, in queries.jsonl order. */
/* The physical line of record idx of a JSONL file (blank lines are not records), for messages. */
static long long record_line(const char *path, int64_t idx) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char *buf = NULL;
    size_t cap = 0;
    long long line = 0, at = -1;
    while (getline(&buf, &cap, f) >= 0) {
        line++;
        bool blank = true;
        for (const char *c = buf; *c && blank; c++) blank = *c == ' ' || *c == '\t' || *c == '\r' || *c == '\n';
        if (!blank && ++at == idx) break;
    }
    free(buf);
    fclose(f);
    return line;
}

/* Every _id once: a repeated one would make its qrels judge whichever copy the map kept. */
static gp_status map_ids(const char *dir, const char *file, const gp_texts *t, gp_strmap *map, gp_err *err) {
    for (int64_t i = 0; i < t->n; i++) {
        if (gp_strmap_put(map, t->id[i], strlen(t->id[i]), (int32_t)i)) continue;
        int32_t first = 0;
        for (int64_t k = 0; k < i; k++)
            if (strcmp(t->id[k], t->id[i]) == 0) {
                first = (int32_t)k;
                break;
            }
        char *path = gp_path_join(dir, file);
        gp_status rc = gp_errf(err, GP_EINPUT, "%s:%lld: _id \"%s\" appears twice (first on line %lld)", path,
                               record_line(path, i), t->id[i], record_line(path, first));
        free(path);
        return rc;
    }
    return GP_OK;
}

static gp_status read_qrels(const char *dir, const gp_texts *queries, const gp_texts *corpus, query_qrels **out,
                            int64_t *nout, gp_err *err) {
    char *qdir = gp_path_join(dir, "qrels"), *path = gp_path_join(qdir, "test.tsv");
    free(qdir);
    char *text;
    size_t len;
    gp_status rc = gp_read_file(path, &text, &len, err);
    if (rc) {
        free(path);
        return rc;
    }
    gp_strmap *qid = gp_strmap_init((size_t)queries->n), *did = gp_strmap_init((size_t)corpus->n);
    rc = map_ids(dir, "queries.jsonl", queries, qid, err);
    if (!rc) rc = map_ids(dir, "corpus.jsonl", corpus, did, err);
    query_qrels *per = gp_calloc((size_t)(queries->n ? queries->n : 1), sizeof *per);
    int64_t line = 0, unknown = 0;
    for (char *p = text; *p && !rc;) {
        char *eol = strchr(p, '\n');
        if (eol) *eol = '\0';
        line++;
        size_t l = strlen(p);
        if (l && p[l - 1] == '\r') p[--l] = '\0';
        char *f1 = p, *f2 = strchr(f1, '\t'), *f3 = f2 ? strchr(f2 + 1, '\t') : NULL;
        if (l == 0) {
        } else if (!f2 || !f3) {
            rc = gp_errf(err, GP_EINPUT, "%s:%lld: expected query-id<TAB>corpus-id<TAB>score", path, (long long)line);
        } else {
            *f2++ = '\0';
            *f3++ = '\0';
            char *end;
            long g = strtol(f3, &end, 10);
            if (line == 1 && (end == f3 || *end)) { /* the header row */
            } else if (end == f3 || (*end && *end != '\t' && *end != ' ')) {
                rc = gp_errf(err, GP_EINPUT, "%s:%lld: score \"%s\" is not an integer", path, (long long)line, f3);
            } else {
                int32_t q, d;
                if (!gp_strmap_get(qid, f1, strlen(f1), &q) || !gp_strmap_get(did, f2, strlen(f2), &d)) {
                    unknown++;
                } else {
                    query_qrels *x = &per[q];
                    x->q = gp_realloc(x->q, (size_t)(x->n + 1) * sizeof(gp_qrel));
                    x->q[x->n++] = (gp_qrel){d, (int)g};
                }
            }
        }
        p = eol ? eol + 1 : p + l;
    }
    if (!rc && unknown)
        gp_warn("%s: %lld rows name a query or document that is not in the folder; ignored", path, (long long)unknown);
    /* compacting makes two slots share one list, so an error must free the lists before it */
    int64_t n = 0;
    if (!rc) {
        for (int64_t i = 0; i < queries->n; i++)
            if (per[i].n) per[n] = per[i], per[n].query = i, n++;
        if (n == 0) rc = gp_errf(err, GP_EINPUT, "%s: no judged query", path);
    }
    gp_strmap_free(qid);
    gp_strmap_free(did);
    free(text);
    free(path);
    if (rc) {
        for (int64_t i = 0; i < queries->n; i++) free(per[i].q);
        free(per);
        return rc;
    }
    *out = per;
    *nout = n;
    return GP_OK;
}

/* The records of a set's corpus.jsonl and queries.jsonl; neither may be empty (an empty
 * queries.jsonl would only show later as qrels that judge nothing). */
static gp_status retrieval_count(const char *cpath, const char *qpath, int64_t *nc, int64_t *nq, gp_err *err) {
    gp_status rc = gp_texts_count(cpath, nc, err);
    if (!rc) rc = gp_texts_count(qpath, nq, err);
    if (!rc && *nc == 0) rc = gp_errf(err, GP_EINPUT, "%s: no documents (an empty file)", cpath);
    if (!rc && *nq == 0) rc = gp_errf(err, GP_EINPUT, "%s: no queries (an empty file)", qpath);
    return rc;
}

/* Rank 0 (and the up-front check): every record of corpus.jsonl and queries.jsonl parsed for
 * its _id (a bad line is file:line), then qrels/test.tsv to the judged queries. */
static gp_status retrieval_judged(const char *dir, int64_t nc, int64_t nq, gp_texts *cid, gp_texts *qid,
                                  query_qrels **qr, int64_t *nj, gp_err *err) {
    char *cpath = gp_path_join(dir, "corpus.jsonl"), *qpath = gp_path_join(dir, "queries.jsonl");
    gp_status rc = gp_texts_read(cpath, 0, nc, false, true, cid, err);
    if (!rc) rc = gp_texts_read(qpath, 0, nq, false, true, qid, err);
    if (!rc) rc = read_qrels(dir, qid, cid, qr, nj, err);
    free(cpath), free(qpath);
    return rc;
}

static const char *query_prefix(const gp_eval_opts *o, const gp_model *m) {
    if (o->query_instruction && *o->query_instruction) return o->query_instruction;
    return m->query_prompt; /* the model's own query prompt, or none */
}

void gp_eval_units_free(gp_eval_units *u) {
    for (int64_t i = 0; u->ids && i < u->n; i++) free(u->ids[i]);
    free(u->ids), free(u->metrics), free(u->cosine), free(u->gold);
    memset(u, 0, sizeof *u);
}

gp_status gp_eval_retrieval(const gp_eval_opts *o, gp_model *m, const char *dir, gp_retrieval_metrics *out,
                            int64_t *n_queries, gp_eval_units *units, gp_err *err) {
    *out = (gp_retrieval_metrics){0};
    if (units) memset(units, 0, sizeof *units);
    const int rank = gp_rank(), P = gp_nranks(), D = gp_model_dim(m);
    char *cpath = gp_path_join(dir, "corpus.jsonl"), *qpath = gp_path_join(dir, "queries.jsonl");
    int64_t nc = 0, nq = 0;
    gp_status rc = retrieval_count(cpath, qpath, &nc, &nq, err);
    if ((rc = gp_agree(rc, err))) {
        free(cpath), free(qpath);
        return rc;
    }
    gp_texts corpus = {0}, queries = {0}, cid = {0}, qid = {0};
    int64_t clo = share(nc, rank, P), chi = share(nc, rank + 1, P), qlo = share(nq, rank, P), qhi = share(nq, rank + 1, P);
    rc = gp_texts_read(cpath, clo, chi - clo, true, false, &corpus, err);
    if (!rc) rc = gp_texts_read(qpath, qlo, qhi - qlo, true, false, &queries, err);
    query_qrels *qr = NULL;
    int64_t nj = 0;
    if (!rc && rank == 0) rc = retrieval_judged(dir, nc, nq, &cid, &qid, &qr, &nj, err);
    if ((rc = gp_agree(rc, err))) goto done;

    gp_progress prog;
    gp_progress_init(&prog, "eval corpus", nc, "texts");
    float *cemb = embed(m, corpus.text, corpus.n, o->batch, o->max_length, NULL, &prog, 0);
    gp_progress_done(&prog);
    gp_progress_init(&prog, "eval queries", nq, "texts");
    float *qmine = embed(m, queries.text, queries.n, o->batch, o->max_length, query_prefix(o, m), &prog, 0);
    gp_progress_done(&prog);
    /* queries in blocks of GP_EVAL_QUERY_BLOCK: each block's embeddings gathered everywhere, the
     * best K of every rank's corpus share for each, merged up a reduction tree to rank 0, which
     * scores the block's judged queries; memory is bounded by the block, not by the queries */
    const int K = GP_EVAL_TOPK;
    const int64_t QBLK = gp_testhook_get()->eval_query_block > 0 ? gp_testhook_get()->eval_query_block : GP_EVAL_QUERY_BLOCK;
    hit *local = gp_malloc((size_t)QBLK * K * sizeof(hit));
    int *cnt = gp_malloc((size_t)QBLK * sizeof(int));
    hit *all = rank == 0 ? gp_malloc((size_t)QBLK * K * sizeof(hit)) : NULL;
    gp_retrieval_metrics *per = rank == 0 ? gp_calloc((size_t)(nj ? nj : 1), sizeof *per) : NULL;
    MPI_Datatype lists = MPI_DATATYPE_NULL;
    MPI_Op op = MPI_OP_NULL;
    if (P > 1) {
        GP_MPI(MPI_Type_contiguous((int)(K * sizeof(hit)), MPI_BYTE, &lists));
        GP_MPI(MPI_Type_commit(&lists));
        GP_MPI(MPI_Op_create(merge_topk, 1, &op));
    }
    const int QB = 64, DB = 2048;
    float *S = gp_malloc((size_t)QB * DB * sizeof(float));
    for (int64_t b0 = 0; b0 < nq; b0 += QBLK) {
        const int64_t b1 = nq - b0 < QBLK ? nq : b0 + QBLK, bn = b1 - b0;
        /* this rank's queries inside the block; the shares are contiguous in rank order, so the
         * gathered rows are the block's queries in order */
        const int64_t m0 = qlo > b0 ? qlo : b0, m1 = qhi < b1 ? qhi : b1;
        float *qemb = gp_allgather_rows_f32(qmine + (m1 > m0 ? (m0 - qlo) * D : 0), m1 > m0 ? m1 - m0 : 0, D, NULL);
        memset(cnt, 0, (size_t)bn * sizeof(int));
        for (int64_t q0 = 0; q0 < bn; q0 += QB) {
            int qn = (int)(bn - q0 < QB ? bn - q0 : QB);
            for (int64_t d0 = 0; d0 < corpus.n; d0 += DB) {
                int dn = (int)(corpus.n - d0 < DB ? corpus.n - d0 : DB);
                gp_sgemm(0, 1, qn, dn, D, 1.0f, qemb + q0 * D, D, cemb + d0 * D, D, 0.0f, S, dn);
                for (int i = 0; i < qn; i++)
                    for (int j = 0; j < dn; j++)
                        heap_offer(local + (q0 + i) * K, &cnt[q0 + i], K, (hit){S[(size_t)i * dn + j], clo + d0 + j});
            }
        }
        free(qemb);
        for (int64_t q = 0; q < bn; q++) {
            for (int j = cnt[q]; j < K; j++) local[q * K + j] = (hit){-INFINITY, -1};
            qsort(local + q * K, K, sizeof(hit), better_first);
        }
        if (P > 1) GP_MPI(MPI_Reduce(local, all, (int)bn, lists, op, 0, MPI_COMM_WORLD));
        else memcpy(all, local, (size_t)bn * K * sizeof(hit));
        for (int64_t j = 0; rank == 0 && j < nj; j++) {
            if (qr[j].query < b0 || qr[j].query >= b1) continue;
            const hit *best = all + (qr[j].query - b0) * K; /* sorted, the fill (doc -1) last */
            int64_t ranked[GP_EVAL_TOPK];
            int n = 0;
            while (n < K && best[n].doc >= 0) ranked[n] = best[n].doc, n++;
            gp_query_metrics(ranked, n, qr[j].q, qr[j].n, &per[j]);
        }
    }
    free(S);
    free(qmine);
    if (P > 1) {
        MPI_Op_free(&op);
        MPI_Type_free(&lists);
    }
    if (rank == 0) { /* summed in the qrels' order, whatever the blocks */
        gp_retrieval_metrics sum = {0};
        for (int64_t j = 0; j < nj; j++) {
            const gp_retrieval_metrics *mq = &per[j];
            sum.ndcg_at_10 += mq->ndcg_at_10, sum.mrr_at_10 += mq->mrr_at_10, sum.recall_at_10 += mq->recall_at_10;
            sum.recall_at_100 += mq->recall_at_100, sum.map_at_100 += mq->map_at_100;
        }
        out->ndcg_at_10 = sum.ndcg_at_10 / (double)nj;
        out->mrr_at_10 = sum.mrr_at_10 / (double)nj;
        out->recall_at_10 = sum.recall_at_10 / (double)nj;
        out->recall_at_100 = sum.recall_at_100 / (double)nj;
        out->map_at_100 = sum.map_at_100 / (double)nj;
    }
    gp_bcast_bytes(out, sizeof *out, 0);
    gp_bcast_bytes(&nj, sizeof nj, 0);
    *n_queries = nj;
    if (units && rank == 0) {
        units->n = nj;
        units->metrics = per, per = NULL;
        units->ids = gp_malloc((size_t)(nj ? nj : 1) * sizeof(char *));
        for (int64_t j = 0; j < nj; j++) units->ids[j] = gp_strdup(qid.id[qr[j].query]);
    }
    free(all), free(local), free(cnt), free(cemb), free(per);
done:
    if (qr)
        for (int64_t i = 0; i < nj; i++) free(qr[i].q);
    free(qr);
    gp_texts_free(&corpus), gp_texts_free(&queries), gp_texts_free(&cid), gp_texts_free(&qid);
    free(cpath), free(qpath);
    return rc;
}

/* ---- STS ------------------------------------------------------------------------------------- */

/* An STS file's pairs (every rank reads the file: pairs are small); a bad line is file:line. */
static gp_status sts_read(const char *path, int64_t *n_out, char ***s1_out, char ***s2_out, double **gold_out,
                          gp_err *err) {
    char *text = NULL;
    size_t len = 0;
    gp_status rc = gp_read_file(path, &text, &len, err);
    int64_t n = 0, cap = 0, line = 0;
    char **s1 = NULL, **s2 = NULL;
    double *gold = NULL;
    for (char *p = text; !rc && p && *p;) {
        char *eol = strchr(p, '\n');
        if (eol) *eol = '\0';
        line++;
        cJSON *j = NULL;
        size_t l = strlen(p);
        bool blank = true;
        for (size_t i = 0; i < l; i++) blank &= p[i] == ' ' || p[i] == '\t' || p[i] == '\r';
        if (!blank) {
            j = cJSON_ParseWithLength(p, l);
            const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "sentence1"), *b = cJSON_GetObjectItemCaseSensitive(j, "sentence2"),
                        *s = cJSON_GetObjectItemCaseSensitive(j, "score");
            /* the first key that is missing or of the wrong type is named: a misspelt one shows */
            const char *bad = !cJSON_IsObject(j)  ? NULL
                              : !cJSON_IsString(a) ? "sentence1"
                              : !cJSON_IsString(b) ? "sentence2"
                              : !cJSON_IsNumber(s) ? "score"
                                                   : "";
            if (!bad) {
                rc = gp_errf(err, GP_EINPUT, "%s:%lld: not a JSON object: expected {\"sentence1\": str, \"sentence2\": "
                             "str, \"score\": number}", path, (long long)line);
            } else if (*bad) {
                rc = gp_errf(err, GP_EINPUT, "%s:%lld: \"%s\" is %s: expected {\"sentence1\": str, \"sentence2\": str, "
                             "\"score\": number}", path, (long long)line, bad,
                             cJSON_GetObjectItemCaseSensitive(j, bad) ? "of the wrong type" : "missing");
            } else {
                if (n == cap) {
                    cap = cap ? 2 * cap : 256;
                    s1 = gp_realloc(s1, (size_t)cap * sizeof(char *));
                    s2 = gp_realloc(s2, (size_t)cap * sizeof(char *));
                    gold = gp_realloc(gold, (size_t)cap * sizeof(double));
                }
                s1[n] = gp_strdup(a->valuestring);
                s2[n] = gp_strdup(b->valuestring);
                gold[n++] = s->valuedouble;
            }
            cJSON_Delete(j);
        }
        p = eol ? eol + 1 : NULL;
    }
    free(text);
    if (!rc && n < 2) rc = gp_errf(err, GP_EINPUT, "%s: fewer than 2 sentence pairs", path);
    *n_out = n, *s1_out = s1, *s2_out = s2, *gold_out = gold;
    return rc;
}

static void sts_free(int64_t n, char **s1, char **s2, double *gold) {
    for (int64_t i = 0; i < n; i++) free(s1[i]), free(s2[i]);
    free(s1), free(s2), free(gold);
}

gp_status gp_eval_sts(const gp_eval_opts *o, gp_model *m, const char *path, double *spearman, double *pearson,
                      int64_t *n_pairs, gp_eval_units *units, gp_err *err) {
    if (units) memset(units, 0, sizeof *units);
    const int rank = gp_rank(), P = gp_nranks(), D = gp_model_dim(m);
    /* every rank reads the file (pairs are small) and embeds its share */
    int64_t n = 0;
    char **s1 = NULL, **s2 = NULL;
    double *gold = NULL;
    gp_status rc = sts_read(path, &n, &s1, &s2, &gold, err);
    if ((rc = gp_agree(rc, err))) goto done;
    {
        int64_t lo = share(n, rank, P), hi = share(n, rank + 1, P);
        gp_progress prog;
        gp_progress_init(&prog, "eval sts", 2 * n, "texts");
        float *e1 = embed(m, s1 + lo, hi - lo, o->batch, o->max_length, NULL, &prog, 0),
              *e2 = embed(m, s2 + lo, hi - lo, o->batch, o->max_length, NULL, &prog, n);
        gp_progress_done(&prog);
        double *cos = gp_calloc((size_t)n, sizeof(double));
        for (int64_t i = lo; i < hi; i++) {
            double dot = 0;
            for (int k = 0; k < D; k++) dot += (double)e1[(i - lo) * D + k] * e2[(i - lo) * D + k];
            cos[i] = dot;
        }
        gp_allreduce_sum_f64(cos, (size_t)n); /* each pair is filled by exactly one rank */
        *spearman = gp_spearman(cos, gold, n);
        *pearson = gp_pearson(cos, gold, n);
        *n_pairs = n;
        if (units && rank == 0) {
            units->n = n;
            units->cosine = cos, cos = NULL;
            units->gold = gp_malloc((size_t)n * sizeof(double));
            memcpy(units->gold, gold, (size_t)n * sizeof(double));
        }
        free(cos), free(e1), free(e2);
    }
done:
    sts_free(n, s1, s2, gold);
    return rc;
}

/* ---- every configured set ------------------------------------------------------------------------ */

static const char *base_name(const char *p) {
    static char buf[256];
    snprintf(buf, sizeof buf, "%s", p);
    size_t l = strlen(buf);
    while (l > 1 && buf[l - 1] == '/') buf[--l] = '\0';
    const char *b = strrchr(buf, '/');
    return b ? b + 1 : buf;
}

/* JSON has no NaN: an undefined score is null */
static void add_score(cJSON *o, const char *key, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(o, key, v);
    else cJSON_AddNullToObject(o, key);
}

/* A retrieval set's "per_query": the judged queries' ids and each metric's per-query values, in
 * queries.jsonl order (the paired comparisons of the report read them). */
static void add_per_query(cJSON *set, const gp_eval_units *u) {
    cJSON *pq = cJSON_AddObjectToObject(set, "per_query");
    cJSON_AddItemToObject(pq, "ids", cJSON_CreateStringArray((const char *const *)u->ids, (int)u->n));
    static const char *const names[5] = {"ndcg_at_10", "mrr_at_10", "recall_at_10", "recall_at_100", "map_at_100"};
    double *v = gp_malloc((size_t)(u->n ? u->n : 1) * sizeof(double));
    for (int k = 0; k < 5; k++) {
        for (int64_t j = 0; j < u->n; j++) {
            const gp_retrieval_metrics *x = &u->metrics[j];
            const double val[5] = {x->ndcg_at_10, x->mrr_at_10, x->recall_at_10, x->recall_at_100, x->map_at_100};
            v[j] = val[k];
        }
        cJSON_AddItemToObject(pq, names[k], cJSON_CreateDoubleArray(v, (int)u->n));
    }
    free(v);
}

void gp_eval_opts_from_job(gp_eval_opts *o, const gp_job *job) {
    *o = (gp_eval_opts){.retrieval = (const char *const *)job->eval.retrieval.v,
                        .n_retrieval = job->eval.retrieval.n,
                        .sts = (const char *const *)job->eval.sts.v,
                        .n_sts = job->eval.sts.n,
                        .batch = job->eval.batch,
                        .max_length = job->model.max_length,
                        .query_instruction = job->model.query_instruction,
                        .job_path = job->path};
    for (int t = 0; t < GP_TASK_NTYPES; t++) {
        const gp_path_list *l = gp_task_info_of((gp_task_type)t)->paths(job);
        o->tasks[t] = (const char *const *)l->v, o->n_tasks[t] = l->n;
    }
}

bool gp_eval_has_sets(const gp_eval_opts *o) {
    int n = o->n_retrieval + o->n_sts;
    for (int t = 0; t < GP_TASK_NTYPES; t++) n += o->n_tasks[t];
    return n > 0;
}

/* ---- MTEB's other task types --------------------------------------------------------------------- */

static double dot(const float *a, const float *b, int d) {
    double s = 0;
    for (int k = 0; k < d; k++) s += (double)a[k] * b[k];
    return s;
}

static cJSON *double_array(const double *v, int64_t n) { return cJSON_CreateDoubleArray(v, (int)n); }

gp_status gp_eval_task(const gp_eval_opts *o, gp_model *m, gp_task_type type, const char *path, cJSON *out, double *main,
                       gp_err *err) {
    const gp_task_info *info = gp_task_info_of(type);
    gp_task_set s;
    gp_status rc = gp_agree(gp_task_load(type, path, &s, err), err);
    if (rc) return rc;
    const int rank = gp_rank(), P = gp_nranks(), D = gp_model_dim(m);
    const int64_t n = s.n_texts, lo = share(n, rank, P), hi = share(n, rank + 1, P);
    char label[64];
    snprintf(label, sizeof label, "eval %s", info->key);
    gp_progress prog;
    gp_progress_init(&prog, label, n, "texts");
    float *mine = embed(m, s.texts + lo, hi - lo, o->batch, o->max_length, NULL, &prog, 0);
    gp_progress_done(&prog);
    float *E = gp_allgather_rows_f32(mine, hi - lo, D, NULL); /* every text, L2-normalised, on every rank */
    free(mine);
    const int64_t U = s.n_units;
    double *unit = gp_calloc((size_t)(U ? U : 1), sizeof(double)); /* each unit's value: the main score is their mean */
    double score = NAN;
    cJSON *extra = cJSON_CreateObject();
    switch (type) {
    case GP_TASK_CLASSIFICATION: {
        double acc = NAN, f1 = NAN;
        if (rank == 0)
            rc = gp_logreg_experiments(E, s.label, s.n_train, E + (size_t)s.n_train * D, s.label + s.n_train, U, D, s.n_labels,
                                       GP_EVAL_CLS_EXPERIMENTS, GP_EVAL_CLS_PER_LABEL, GP_EVAL_SEED, &acc, &f1, unit, err);
        score = acc;
        cJSON_AddNumberToObject(extra, "f1", f1);
        cJSON_AddNumberToObject(extra, "n_train", (double)s.n_train);
        cJSON_AddNumberToObject(extra, "n_labels", s.n_labels);
        cJSON_AddNumberToObject(extra, "n_experiments", GP_EVAL_CLS_EXPERIMENTS);
        cJSON_AddNumberToObject(extra, "samples_per_label", GP_EVAL_CLS_PER_LABEL);
        break;
    }
    case GP_TASK_CLUSTERING: /* k-means over the ranks, each its share of the set's points */
        for (int64_t u = 0; u < U && !rc; u++) {
            const int64_t a = s.unit_off[u], b = s.unit_off[u + 1], np = b - a;
            int32_t k = 0;
            for (int64_t i = a; i < b; i++) k = s.label[i] + 1 > k ? s.label[i] + 1 : k;
            gp_kmeans_opts ko = {.k = k, .iterations = GP_EVAL_KMEANS_ITERATIONS, .seed = GP_EVAL_SEED + (uint64_t)u};
            gp_kmeans_result kr;
            const int64_t l0 = share(np, rank, P), l1 = share(np, rank + 1, P);
            rc = gp_kmeans_run(E + (size_t)(a + l0) * D, l1 - l0, D, &ko, MPI_COMM_WORLD, &kr, err);
            if (rc) break;
            unit[u] = gp_v_measure(s.label + a, kr.assign, np);
            gp_kmeans_result_free(&kr);
        }
        break;
    case GP_TASK_PAIR: {
        double *cos = gp_malloc((size_t)U * sizeof(double)), *lab = gp_malloc((size_t)U * sizeof(double));
        uint8_t *l8 = gp_malloc((size_t)U);
        for (int64_t u = 0; u < U; u++) {
            cos[u] = dot(E + (size_t)(2 * u) * D, E + (size_t)(2 * u + 1) * D, D);
            l8[u] = (uint8_t)s.label[2 * u], lab[u] = l8[u];
        }
        score = gp_average_precision(cos, l8, U);
        if (rank == 0) {
            cJSON *pp = cJSON_AddObjectToObject(extra, "per_pair");
            cJSON_AddItemToObject(pp, "cosine", double_array(cos, U));
            cJSON_AddItemToObject(pp, "label", double_array(lab, U));
        }
        free(cos), free(lab), free(l8);
        break;
    }
    case GP_TASK_RERANKING: {
        double rr = 0;
        for (int64_t u = 0; u < U; u++) {
            const int64_t a = s.unit_off[u], c = s.unit_off[u + 1] - a - 1; /* the query, then its candidates */
            double *sc = gp_malloc((size_t)c * sizeof(double));
            uint8_t *rel = gp_malloc((size_t)c);
            for (int64_t j = 0; j < c; j++) {
                sc[j] = dot(E + (size_t)a * D, E + (size_t)(a + 1 + j) * D, D);
                rel[j] = s.role[a + 1 + j] == GP_ROLE_POSITIVE;
            }
            double ap, r10;
            gp_rerank_query(sc, rel, c, &ap, &r10);
            unit[u] = ap, rr += r10;
            free(sc), free(rel);
        }
        cJSON_AddNumberToObject(extra, "mrr_at_10", U ? rr / (double)U : NAN);
        break;
    }
    case GP_TASK_SUMMARIZATION: { /* texts whose relevance scores are all equal have no correlation: left out */
        int64_t kept = 0;
        for (int64_t u = 0; u < U; u++) {
            const int64_t a = s.unit_off[u], b = s.unit_off[u + 1];
            int64_t h = 0;
            while (a + h < b && s.role[a + h] == GP_ROLE_HUMAN) h++;
            const int64_t mm = b - a - h;
            double *cos = gp_malloc((size_t)(mm * h) * sizeof(double));
            for (int64_t i = 0; i < mm; i++)
                for (int64_t j = 0; j < h; j++) cos[i * h + j] = dot(E + (size_t)(a + h + i) * D, E + (size_t)(a + j) * D, D);
            const double r = gp_summary_spearman(cos, mm, h, s.relevance + a + h);
            free(cos);
            bool constant = true;
            for (int64_t i = 1; i < mm; i++) constant &= s.relevance[a + h + i] == s.relevance[a + h];
            if (constant) continue;
            unit[kept++] = isnan(r) ? 0 : r; /* a constant set of cosines: no correlation with them */
        }
        cJSON_AddNumberToObject(extra, "n_texts_scored", (double)kept);
        for (int64_t u = kept; u < U; u++) unit[u] = NAN;
        s.n_units = kept;
        break;
    }
    case GP_TASK_BITEXT: {
        float *a = gp_malloc((size_t)U * D * sizeof(float)), *b = gp_malloc((size_t)U * D * sizeof(float));
        uint8_t *ok = gp_malloc((size_t)U);
        for (int64_t u = 0; u < U; u++) {
            memcpy(a + (size_t)u * D, E + (size_t)(2 * u) * D, (size_t)D * sizeof(float));
            memcpy(b + (size_t)u * D, E + (size_t)(2 * u + 1) * D, (size_t)D * sizeof(float));
        }
        gp_bitext_nearest(a, b, U, D, ok);
        for (int64_t u = 0; u < U; u++) unit[u] = ok[u];
        free(a), free(b), free(ok);
        break;
    }
    default: GP_CHECK(false, "task type %d", (int)type);
    }
    rc = gp_agree(rc, err);
    if (!rc && type != GP_TASK_PAIR && type != GP_TASK_CLASSIFICATION) {
        double sum = 0;
        for (int64_t u = 0; u < s.n_units; u++) sum += unit[u];
        score = s.n_units ? sum / (double)s.n_units : NAN;
    }
    if (!rc && out && rank == 0) {
        cJSON_AddStringToObject(out, "path", path);
        cJSON_AddStringToObject(out, "type", info->mteb);
        add_score(out, "main_score", score);
        add_score(out, info->main, score);
        for (cJSON *x = extra->child; x;) {
            cJSON *next = x->next;
            cJSON_AddItemToObject(out, x->string, cJSON_DetachItemViaPointer(extra, x));
            x = next;
        }
        cJSON_AddNumberToObject(out, "n_units", (double)s.n_units);
        if (type != GP_TASK_PAIR) {
            cJSON *pu = cJSON_AddObjectToObject(out, "per_unit");
            cJSON_AddStringToObject(pu, "unit", info->unit);
            cJSON_AddItemToObject(pu, "values", double_array(unit, s.n_units));
        }
    }
    *main = score;
    cJSON_Delete(extra);
    free(unit), free(E);
    gp_task_set_free(&s);
    return rc;
}

gp_status gp_eval_model(const gp_eval_opts *o, gp_model *m, const char *tag, const char *folder, const char *source,
                        const char *json_path, const char *settings_hash, cJSON **result, gp_err *err) {
    if (result) *result = NULL;
    const char *const *rs = o->retrieval, *const *ss = o->sts;
    const int nr = o->n_retrieval, ns = o->n_sts;
    double t0 = gp_now();
    /* results are keyed by each set's base name: two sets of one name would overwrite each other */
    for (int k = 0; k < 2; k++) {
        const char *const *v = k ? ss : rs;
        for (int i = 0, n = k ? ns : nr; i < n; i++)
            for (int j = 0; j < i; j++) {
                char a[256];
                snprintf(a, sizeof a, "%s", base_name(v[j]));
                if (strcmp(a, base_name(v[i])) == 0)
                    return gp_agree(gp_errf(err, GP_EINPUT,
                                            "%s: [eval] %s names two sets called \"%s\" (%s and %s): results are keyed "
                                            "by that name; rename one",
                                            o->job_path, k ? "sts" : "retrieval", a, v[j], v[i]),
                                    err);
            }
    }
    cJSON *doc = cJSON_CreateObject(), *jr = cJSON_CreateObject(), *js = cJSON_CreateObject();
    gp_status rc = GP_OK;
    warm_up(o, m);
    m->encoded = 0, m->encode_s = 0;
    double main_sum = 0;
    int n_scored = 0;
    for (int i = 0; i < nr && !rc; i++) {
        gp_retrieval_metrics r;
        int64_t nq = 0;
        gp_eval_units u;
        if ((rc = gp_eval_retrieval(o, m, rs[i], &r, &nq, &u, err))) break;
        cJSON *set = cJSON_AddObjectToObject(jr, base_name(rs[i]));
        cJSON_AddStringToObject(set, "path", rs[i]);
        cJSON_AddNumberToObject(set, "main_score", r.ndcg_at_10);
        cJSON_AddNumberToObject(set, "ndcg_at_10", r.ndcg_at_10);
        cJSON_AddNumberToObject(set, "mrr_at_10", r.mrr_at_10);
        cJSON_AddNumberToObject(set, "recall_at_10", r.recall_at_10);
        cJSON_AddNumberToObject(set, "recall_at_100", r.recall_at_100);
        cJSON_AddNumberToObject(set, "map_at_100", r.map_at_100);
        cJSON_AddNumberToObject(set, "n_queries", (double)nq);
        if (gp_rank() == 0) add_per_query(set, &u);
        gp_eval_units_free(&u);
        main_sum += r.ndcg_at_10, n_scored++;
        gp_log0("eval %s: %s nDCG@10 %.4f MRR@10 %.4f R@10 %.4f R@100 %.4f MAP@100 %.4f (%lld queries)", tag,
                base_name(rs[i]), r.ndcg_at_10, r.mrr_at_10, r.recall_at_10, r.recall_at_100, r.map_at_100, (long long)nq);
    }
    for (int i = 0; i < ns && !rc; i++) {
        double sp, pe;
        int64_t np = 0;
        gp_eval_units u;
        if ((rc = gp_eval_sts(o, m, ss[i], &sp, &pe, &np, &u, err))) break;
        cJSON *set = cJSON_AddObjectToObject(js, base_name(ss[i]));
        cJSON_AddStringToObject(set, "path", ss[i]);
        add_score(set, "main_score", sp);
        add_score(set, "cosine_spearman", sp);
        add_score(set, "cosine_pearson", pe);
        cJSON_AddNumberToObject(set, "n_pairs", (double)np);
        if (gp_rank() == 0) {
            cJSON *pp = cJSON_AddObjectToObject(set, "per_pair");
            cJSON_AddItemToObject(pp, "cosine", cJSON_CreateDoubleArray(u.cosine, (int)u.n));
            cJSON_AddItemToObject(pp, "gold", cJSON_CreateDoubleArray(u.gold, (int)u.n));
        }
        gp_eval_units_free(&u);
        /* a correlation with a constant is undefined: say so, and leave the set out of the mean */
        if (isfinite(sp)) main_sum += sp, n_scored++;
        else
            gp_warn("%s: the gold scores (or the model's cosines) are all equal, so the correlation is undefined; "
                     "main_score is null and the set is left out of main_score_mean",
                     ss[i]);
        gp_log0("eval %s: %s Spearman %.4f Pearson %.4f (%lld pairs)", tag, base_name(ss[i]), sp, pe, (long long)np);
    }
    /* MTEB's other task types, each under its key; the mean of every type's sets, and of the types */
    cJSON *jt[GP_TASK_NTYPES] = {NULL};
    double type_sum[2 + GP_TASK_NTYPES] = {0};
    int type_n[2 + GP_TASK_NTYPES] = {0};
    for (const cJSON *x = jr->child; x; x = x->next) type_sum[0] += cJSON_GetObjectItem(x, "main_score")->valuedouble, type_n[0]++;
    for (const cJSON *x = js->child; x; x = x->next) {
        const cJSON *v = cJSON_GetObjectItem(x, "main_score");
        if (cJSON_IsNumber(v)) type_sum[1] += v->valuedouble, type_n[1]++;
    }
    int n_tasks = 0;
    for (int t = 0; t < GP_TASK_NTYPES && !rc; t++) {
        const gp_task_info *info = gp_task_info_of((gp_task_type)t);
        jt[t] = cJSON_CreateObject();
        for (int i = 0; i < o->n_tasks[t] && !rc; i++, n_tasks++) {
            cJSON *set = gp_rank() == 0 ? cJSON_AddObjectToObject(jt[t], base_name(o->tasks[t][i])) : NULL;
            double v;
            if ((rc = gp_eval_task(o, m, (gp_task_type)t, o->tasks[t][i], set, &v, err))) break;
            if (isfinite(v)) main_sum += v, n_scored++, type_sum[2 + t] += v, type_n[2 + t]++;
            gp_log0("eval %s: %s %s %.4f (%s)", tag, base_name(o->tasks[t][i]), info->main, v, info->mteb);
        }
    }
    if (!rc && nr + ns + n_tasks == 0)
        rc = gp_agree(gp_errf(err, GP_EINPUT, "%s: [eval] names no evaluation set", o->job_path), err);
    if (rc) {
        cJSON_Delete(doc), cJSON_Delete(jr), cJSON_Delete(js);
        for (int t = 0; t < GP_TASK_NTYPES; t++) cJSON_Delete(jt[t]);
        return rc;
    }
    char utc[32];
    gp_utc_now(utc, sizeof utc);
    cJSON_AddNumberToObject(doc, "format_version", GP_EVAL_FORMAT_VERSION);
    cJSON_AddStringToObject(doc, "tag", tag);
    cJSON_AddStringToObject(doc, "model", folder ? folder : m->dir);
    cJSON_AddStringToObject(doc, "source_model", source ? source : m->dir);
    cJSON_AddStringToObject(doc, "gaprune_version", GP_VERSION);
    cJSON_AddStringToObject(doc, "created_utc", utc);
    cJSON_AddNumberToObject(doc, "n_ranks", gp_nranks());
    add_score(doc, "main_score_mean", n_scored ? main_sum / n_scored : NAN);
    cJSON_AddItemToObject(doc, "retrieval", jr);
    cJSON_AddItemToObject(doc, "sts", js);
    for (int t = 0; t < GP_TASK_NTYPES; t++) cJSON_AddItemToObject(doc, gp_task_info_of((gp_task_type)t)->key, jt[t]);
    /* FinMTEB's and ChemTEB's figure: the mean over task types of each type's mean over its sets */
    cJSON *tm = cJSON_AddObjectToObject(doc, "type_means");
    double types = 0;
    int ntypes = 0;
    for (int t = 0; t < 2 + GP_TASK_NTYPES; t++) {
        if (!type_n[t]) continue;
        const double mean = type_sum[t] / type_n[t];
        cJSON_AddNumberToObject(tm, t == 0 ? "Retrieval" : t == 1 ? "STS" : gp_task_info_of((gp_task_type)(t - 2))->mteb, mean);
        types += mean, ntypes++;
    }
    add_score(doc, "main_score_type_mean", ntypes ? types / ntypes : NAN);
    cJSON_AddNumberToObject(doc, "seconds", gp_now() - t0);
    /* encode throughput: every text embedded by all ranks over the slowest rank's encoding time */
    int64_t texts = m->encoded;
    gp_allreduce_sum_i64(&texts, 1);
    const double enc_s = gp_allreduce_max_f64(m->encode_s);
    cJSON *enc = cJSON_AddObjectToObject(doc, "encode");
    cJSON_AddNumberToObject(enc, "texts", (double)texts);
    cJSON_AddNumberToObject(enc, "seconds", enc_s);
    if (enc_s > 0) cJSON_AddNumberToObject(enc, "texts_per_s", (double)texts / enc_s);
    cJSON_AddNumberToObject(enc, "threads", gp_threads());
    cJSON_AddStringToObject(enc, "compute", gp_compute_names[gp_compute_get()]);
    if (settings_hash) cJSON_AddStringToObject(doc, "settings_hash", settings_hash);
    /* the caller gets the document as printed and parsed back (cJSON prints 15 digits where they
     * nearly give the value back): the numbers a later run reads from the file, so that a report
     * made from files equals one made in the same run */
    char *txt = gp_rank() == 0 ? cJSON_Print(doc) : NULL;
    cJSON_Delete(doc);
    if (gp_rank() == 0 && json_path) {
        FILE *f = gp_file_create(json_path, err);
        if (!f) {
            rc = GP_EINPUT;
        } else {
            fputs(txt, f);
            fputc('\n', f);
            rc = gp_file_commit(f, json_path, err);
        }
    }
    rc = gp_agree(rc, err);
    if (!rc && result && gp_rank() == 0) *result = cJSON_Parse(txt);
    free(txt);
    return rc;
}

cJSON *gp_eval_load_current(const char *json_path, const char *settings_hash) {
    cJSON *j = NULL;
    gp_err err;
    if (!gp_file_exists(json_path) || gp_json_load(json_path, &j, &err)) return NULL;
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(j, "settings_hash"),
                *v = cJSON_GetObjectItemCaseSensitive(j, "format_version");
    if (!cJSON_IsString(h) || strcmp(h->valuestring, settings_hash) || !cJSON_IsNumber(v) ||
        v->valuedouble != GP_EVAL_FORMAT_VERSION) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

/* "a,b,c" (malloc'd) */
static char *joined(const char *const *v, int n) {
    size_t len = 1;
    for (int i = 0; i < n; i++) len += strlen(v[i]) + 1;
    char *s = gp_malloc(len), *at = s;
    *s = '\0';
    for (int i = 0; i < n; i++) at += sprintf(at, "%s%s", i ? "," : "", v[i]);
    return s;
}

gp_status gp_eval_hash(const gp_eval_opts *o, char hex[65], gp_err *err) {
    gp_sha256 *h = gp_sha256_init();
    const char *const *rs = o->retrieval, *const *ss = o->sts;
    const int nr = o->n_retrieval, ns = o->n_sts;
    char *rl = joined(rs, nr), *sl = joined(ss, ns);
    char *head = gp_malloc(strlen(rl) + strlen(sl) + strlen(o->query_instruction) + 128);
    sprintf(head, "gaprune-eval v2; max_length %d; query_instruction %s; retrieval %s; sts %s%s", o->max_length,
            o->query_instruction, rl, sl, gp_compute_tag());
    gp_sha256_update(h, head, strlen(head));
    free(head);
    gp_status rc = GP_OK;
    static const char *files[] = {"corpus.jsonl", "queries.jsonl", "qrels/test.tsv"};
    for (int i = 0; i < nr && !rc; i++)
        for (int k = 0; k < 3 && !rc; k++) {
            char *p = gp_path_join(rs[i], files[k]);
            rc = gp_sha256_update_file(h, p, err);
            free(p);
        }
    for (int i = 0; i < ns && !rc; i++) rc = gp_sha256_update_file(h, ss[i], err);
    /* MTEB's other types: the key, each set's path and bytes (gp_eval_check reads them) */
    for (int t = 0; t < GP_TASK_NTYPES && !rc; t++)
        for (int i = 0; i < o->n_tasks[t] && !rc; i++) {
            const char *key = gp_task_info_of((gp_task_type)t)->key, *path = o->tasks[t][i];
            gp_sha256_update(h, key, strlen(key));
            gp_sha256_update(h, path, strlen(path));
            if (t == GP_TASK_CLASSIFICATION)
                for (int k = 0; k < 2 && !rc; k++) {
                    char *p = gp_path_join(path, k ? "test.jsonl" : "train.jsonl");
                    rc = gp_sha256_update_file(h, p, err);
                    free(p);
                }
            else rc = gp_sha256_update_file(h, path, err);
        }
    gp_sha256_final(h, hex);
    free(rl), free(sl);
    return rc;
}

/* Whether this rank can open path for reading (the message is the loaders' own). */
static gp_status can_read(const char *path, gp_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return gp_errf(err, GP_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    fclose(f);
    return GP_OK;
}

gp_status gp_eval_check(const gp_eval_opts *o, gp_err *err) {
    gp_status rc = GP_OK;
    const bool full = gp_rank() == 0;
    static const char *files[] = {"corpus.jsonl", "queries.jsonl", "qrels/test.tsv"};
    for (int i = 0; i < o->n_retrieval && !rc; i++) {
        const char *dir = o->retrieval[i];
        /* every rank reads a share of the corpus and of the queries */
        for (int k = 0; k < 2 && !rc && !full; k++) {
            char *p = gp_path_join(dir, files[k]);
            rc = can_read(p, err);
            free(p);
        }
        if (rc || !full) continue;
        char *cpath = gp_path_join(dir, files[0]), *qpath = gp_path_join(dir, files[1]);
        int64_t nc = 0, nq = 0, nj = 0;
        gp_texts cid = {0}, qid = {0};
        query_qrels *qr = NULL;
        rc = retrieval_count(cpath, qpath, &nc, &nq, err);
        if (!rc) rc = retrieval_judged(dir, nc, nq, &cid, &qid, &qr, &nj, err);
        for (int64_t j = 0; qr && j < nj; j++) free(qr[j].q);
        free(qr);
        gp_texts_free(&cid), gp_texts_free(&qid);
        free(cpath), free(qpath);
    }
    /* STS files and the MTEB task types' sets: every rank loads them whole, so every rank checks */
    for (int i = 0; i < o->n_sts && !rc; i++) {
        int64_t n = 0;
        char **s1 = NULL, **s2 = NULL;
        double *gold = NULL;
        rc = sts_read(o->sts[i], &n, &s1, &s2, &gold, err);
        sts_free(n, s1, s2, gold);
    }
    for (int t = 0; t < GP_TASK_NTYPES && !rc; t++)
        for (int i = 0; i < o->n_tasks[t] && !rc; i++) {
            gp_task_set s;
            if ((rc = gp_task_load((gp_task_type)t, o->tasks[t][i], &s, err))) break;
            gp_task_set_free(&s);
        }
    return gp_agree(rc, err);
}
