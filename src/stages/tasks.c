/* tasks.c — the evaluation sets of MTEB's other task types: registry and readers (see tasks.h). */
#include "gaprune/tasks.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/fs.h"
#include "gaprune/json.h"

static const gp_path_list *classification_paths(const gp_job *j) { return &j->eval.classification; }
static const gp_path_list *clustering_paths(const gp_job *j) { return &j->eval.clustering; }
static const gp_path_list *pair_paths(const gp_job *j) { return &j->eval.pair_classification; }
static const gp_path_list *reranking_paths(const gp_job *j) { return &j->eval.reranking; }
static const gp_path_list *summarization_paths(const gp_job *j) { return &j->eval.summarization; }
static const gp_path_list *bitext_paths(const gp_job *j) { return &j->eval.bitext; }

static const gp_task_info k_tasks[GP_TASK_NTYPES] = {
    {GP_TASK_CLASSIFICATION, "classification", "Classification", "accuracy", "test texts", classification_paths},
    {GP_TASK_CLUSTERING, "clustering", "Clustering", "v_measure", "clustering sets", clustering_paths},
    {GP_TASK_PAIR, "pair_classification", "PairClassification", "ap", "pairs", pair_paths},
    {GP_TASK_RERANKING, "reranking", "Reranking", "map", "queries", reranking_paths},
    {GP_TASK_SUMMARIZATION, "summarization", "Summarization", "cosine_spearman", "texts", summarization_paths},
    {GP_TASK_BITEXT, "bitext", "BitextMining", "accuracy", "pairs", bitext_paths},
};

const gp_task_info *gp_task_info_of(gp_task_type t) {
    GP_CHECK(t >= 0 && t < GP_TASK_NTYPES, "task type %d", (int)t);
    return &k_tasks[t];
}

void gp_task_set_free(gp_task_set *s) {
    for (int64_t i = 0; i < s->n_texts; i++) free(s->texts[i]);
    for (int i = 0; i < s->n_labels; i++) free(s->label_names[i]);
    free(s->texts), free(s->unit_off), free(s->unit_line), free(s->label), free(s->role), free(s->relevance);
    free(s->label_names), free(s->path);
    memset(s, 0, sizeof *s);
}

/* ---- building a set ---------------------------------------------------------------------------- */

static int64_t grow(int64_t cap, int64_t need) {
    while (cap < need) cap = cap ? 2 * cap : 256;
    return cap;
}

/* Appends a text with its label, role and relevance. */
static void add_text(gp_task_set *s, int64_t *cap, const char *t, int32_t label, uint8_t role, double rel) {
    if (s->n_texts == *cap) {
        *cap = grow(*cap, s->n_texts + 1);
        s->texts = gp_realloc(s->texts, (size_t)*cap * sizeof(char *));
        s->label = gp_realloc(s->label, (size_t)*cap * sizeof(int32_t));
        s->role = gp_realloc(s->role, (size_t)*cap);
        s->relevance = gp_realloc(s->relevance, (size_t)*cap * sizeof(double));
    }
    s->texts[s->n_texts] = gp_strdup(t);
    s->label[s->n_texts] = label, s->role[s->n_texts] = role, s->relevance[s->n_texts] = rel;
    s->n_texts++;
}

/* Closes the unit that began at text `from`, read from `line`. */
static void end_unit(gp_task_set *s, int64_t *cap, int64_t from, int64_t line) {
    if (s->n_units + 2 > *cap) {
        *cap = grow(*cap, s->n_units + 2);
        s->unit_off = gp_realloc(s->unit_off, (size_t)*cap * sizeof(int64_t));
        s->unit_line = gp_realloc(s->unit_line, (size_t)*cap * sizeof(int64_t));
    }
    s->unit_off[s->n_units] = from;
    s->unit_line[s->n_units++] = line;
    s->unit_off[s->n_units] = s->n_texts;
}

/* A string field, or GP_EINPUT naming file:line and the layout. */
static gp_status str_field(const cJSON *j, const char *key, const char **out, const char *path, int64_t line,
                           const char *layout, gp_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsString(v))
        return gp_errf(err, GP_EINPUT, "%s:%lld: \"%s\" %s: expected %s", path, (long long)line, key,
                       v ? "is not a string" : "is missing", layout);
    *out = v->valuestring;
    return GP_OK;
}

/* A non-empty array of strings. */
static gp_status str_array(const cJSON *j, const char *key, const cJSON **out, const char *path, int64_t line,
                           const char *layout, gp_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key), *x;
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) == 0)
        return gp_errf(err, GP_EINPUT, "%s:%lld: \"%s\" %s: expected %s", path, (long long)line, key,
                       !v ? "is missing" : cJSON_IsArray(v) ? "is an empty list" : "is not a list", layout);
    cJSON_ArrayForEach(x, v) if (!cJSON_IsString(x)) return gp_errf(
        err, GP_EINPUT, "%s:%lld: \"%s\" holds something that is not a string: expected %s", path, (long long)line, key, layout);
    *out = v;
    return GP_OK;
}

/* A label: a string, or an integer written as its decimal text. */
static gp_status label_text(const cJSON *j, const char *key, char *buf, size_t n, const char *path, int64_t line,
                            const char *layout, gp_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (cJSON_IsString(v)) snprintf(buf, n, "%s", v->valuestring);
    else if (cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && fabs(v->valuedouble) < 1e15)
        snprintf(buf, n, "%.0f", v->valuedouble);
    else
        return gp_errf(err, GP_EINPUT, "%s:%lld: \"%s\" %s: expected %s", path, (long long)line, key,
                       v ? "is not a string or an integer" : "is missing", layout);
    return GP_OK;
}

/* Calls fn for every non-blank line of a JSONL file, parsed; stops at the first error. */
typedef gp_status (*line_fn)(void *ctx, const cJSON *j, const char *path, int64_t line, gp_err *err);

static gp_status each_line(const char *path, line_fn fn, void *ctx, gp_err *err) {
    char *text = NULL;
    size_t len = 0;
    gp_status rc = gp_read_file(path, &text, &len, err);
    int64_t line = 0;
    for (char *p = text; !rc && p && *p;) {
        char *eol = strchr(p, '\n');
        if (eol) *eol = '\0';
        line++;
        const size_t l = strlen(p);
        bool blank = true;
        for (size_t i = 0; i < l; i++) blank &= p[i] == ' ' || p[i] == '\t' || p[i] == '\r';
        if (!blank) {
            cJSON *j = cJSON_ParseWithLength(p, l);
            if (!cJSON_IsObject(j)) rc = gp_errf(err, GP_EINPUT, "%s:%lld: not a JSON object", path, (long long)line);
            else rc = fn(ctx, j, path, line, err);
            cJSON_Delete(j);
        }
        p = eol ? eol + 1 : NULL;
    }
    free(text);
    return rc;
}

typedef struct {
    gp_task_set *s;
    int64_t tcap, ucap;
    bool test;         /* classification: reading test.jsonl */
    int64_t positives; /* pair classification */
} reader;

/* Classification: the id of a label, added when reading train.jsonl, required when reading test. */
static gp_status label_id(reader *r, const char *name, int32_t *id, const char *path, int64_t line, gp_err *err) {
    gp_task_set *s = r->s;
    for (int i = 0; i < s->n_labels; i++)
        if (!strcmp(s->label_names[i], name)) {
            *id = i;
            return GP_OK;
        }
    if (r->test)
        return gp_errf(err, GP_EINPUT, "%s:%lld: label \"%s\" does not occur in train.jsonl: a classifier cannot learn it",
                       path, (long long)line, name);
    s->label_names = gp_realloc(s->label_names, (size_t)(s->n_labels + 1) * sizeof(char *));
    s->label_names[s->n_labels] = gp_strdup(name);
    *id = s->n_labels++;
    return GP_OK;
}

static const char k_classification[] = "{\"text\": str, \"label\": str or int}";
static const char k_clustering[] = "{\"sentences\": [str, ...], \"labels\": [str or int, ...]} of one length";
static const char k_pair[] = "{\"sentence1\": str, \"sentence2\": str, \"label\": 0 or 1}";
static const char k_reranking[] = "{\"query\": str, \"positive\": [str, ...], \"negative\": [str, ...]}";
static const char k_summarization[] =
    "{\"text\": str, \"human_summaries\": [str, ...], \"machine_summaries\": [str, ...], \"relevance\": [number, ...]}";
static const char k_bitext[] = "{\"sentence1\": str, \"sentence2\": str}";

static gp_status read_classification(void *ctx, const cJSON *j, const char *path, int64_t line, gp_err *err) {
    reader *r = ctx;
    const char *t = NULL;
    char name[256];
    int32_t id = 0;
    gp_status rc;
    if ((rc = str_field(j, "text", &t, path, line, k_classification, err)) ||
        (rc = label_text(j, "label", name, sizeof name, path, line, k_classification, err)) ||
        (rc = label_id(r, name, &id, path, line, err)))
        return rc;
    const int64_t from = r->s->n_texts;
    add_text(r->s, &r->tcap, t, id, 0, 0);
    if (r->test) end_unit(r->s, &r->ucap, from, line);
    return GP_OK;
}

static gp_status read_clustering(void *ctx, const cJSON *j, const char *path, int64_t line, gp_err *err) {
    reader *r = ctx;
    const cJSON *sent, *labels = cJSON_GetObjectItemCaseSensitive(j, "labels");
    gp_status rc = str_array(j, "sentences", &sent, path, line, k_clustering, err);
    if (rc) return rc;
    const int n = cJSON_GetArraySize(sent);
    if (!cJSON_IsArray(labels) || cJSON_GetArraySize(labels) != n)
        return gp_errf(err, GP_EINPUT, "%s:%lld: \"labels\" %s: expected %s", path, (long long)line,
                       !labels ? "is missing" : !cJSON_IsArray(labels) ? "is not a list" : "differs in length from \"sentences\"",
                       k_clustering);
    /* the line's label ids: the order of first appearance */
    char **names = gp_calloc((size_t)n, sizeof(char *));
    int32_t *ids = gp_malloc((size_t)n * sizeof(int32_t));
    int distinct = 0;
    const cJSON *x = labels->child;
    for (int i = 0; i < n && !rc; i++, x = x->next) {
        char buf[256];
        if (cJSON_IsString(x)) snprintf(buf, sizeof buf, "%s", x->valuestring);
        else if (cJSON_IsNumber(x) && x->valuedouble == floor(x->valuedouble)) snprintf(buf, sizeof buf, "%.0f", x->valuedouble);
        else {
            rc = gp_errf(err, GP_EINPUT, "%s:%lld: label %d is not a string or an integer: expected %s", path, (long long)line,
                         i, k_clustering);
            break;
        }
        int k = 0;
        while (k < distinct && strcmp(names[k], buf)) k++;
        if (k == distinct) names[distinct++] = gp_strdup(buf);
        ids[i] = k;
    }
    if (!rc && distinct < 2)
        rc = gp_errf(err, GP_EINPUT, "%s:%lld: the clustering set has one label only: V-measure needs at least two",
                     path, (long long)line);
    if (!rc) {
        const int64_t from = r->s->n_texts;
        x = sent->child;
        for (int i = 0; i < n; i++, x = x->next) add_text(r->s, &r->tcap, x->valuestring, ids[i], 0, 0);
        end_unit(r->s, &r->ucap, from, line);
    }
    for (int k = 0; k < distinct; k++) free(names[k]);
    free(names), free(ids);
    return rc;
}

static gp_status read_pair(void *ctx, const cJSON *j, const char *path, int64_t line, gp_err *err) {
    reader *r = ctx;
    const char *a = NULL, *b = NULL;
    gp_status rc;
    const char *layout = r->s->type == GP_TASK_PAIR ? k_pair : k_bitext;
    if ((rc = str_field(j, "sentence1", &a, path, line, layout, err)) ||
        (rc = str_field(j, "sentence2", &b, path, line, layout, err)))
        return rc;
    int32_t label = 0;
    if (r->s->type == GP_TASK_PAIR) {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(j, "label");
        if (!cJSON_IsNumber(l) || (l->valuedouble != 0 && l->valuedouble != 1))
            return gp_errf(err, GP_EINPUT, "%s:%lld: \"label\" %s: expected %s", path, (long long)line,
                           l ? "is not 0 or 1" : "is missing", k_pair);
        label = (int32_t)l->valuedouble;
        r->positives += label;
    }
    const int64_t from = r->s->n_texts;
    add_text(r->s, &r->tcap, a, label, 0, 0);
    add_text(r->s, &r->tcap, b, label, 0, 0);
    end_unit(r->s, &r->ucap, from, line);
    return GP_OK;
}

static gp_status read_reranking(void *ctx, const cJSON *j, const char *path, int64_t line, gp_err *err) {
    reader *r = ctx;
    const char *q = NULL;
    const cJSON *pos, *neg, *x;
    gp_status rc;
    if ((rc = str_field(j, "query", &q, path, line, k_reranking, err)) ||
        (rc = str_array(j, "positive", &pos, path, line, k_reranking, err)) ||
        (rc = str_array(j, "negative", &neg, path, line, k_reranking, err)))
        return rc;
    const int64_t from = r->s->n_texts;
    add_text(r->s, &r->tcap, q, 0, GP_ROLE_QUERY, 0);
    cJSON_ArrayForEach(x, pos) add_text(r->s, &r->tcap, x->valuestring, 1, GP_ROLE_POSITIVE, 0);
    cJSON_ArrayForEach(x, neg) add_text(r->s, &r->tcap, x->valuestring, 0, GP_ROLE_NEGATIVE, 0);
    end_unit(r->s, &r->ucap, from, line);
    return GP_OK;
}

static gp_status read_summarization(void *ctx, const cJSON *j, const char *path, int64_t line, gp_err *err) {
    reader *r = ctx;
    const char *t = NULL;
    const cJSON *hum, *mach, *rel = cJSON_GetObjectItemCaseSensitive(j, "relevance"), *x, *y;
    gp_status rc;
    if ((rc = str_field(j, "text", &t, path, line, k_summarization, err)) ||
        (rc = str_array(j, "human_summaries", &hum, path, line, k_summarization, err)) ||
        (rc = str_array(j, "machine_summaries", &mach, path, line, k_summarization, err)))
        return rc;
    if (!cJSON_IsArray(rel) || cJSON_GetArraySize(rel) != cJSON_GetArraySize(mach))
        return gp_errf(err, GP_EINPUT, "%s:%lld: \"relevance\" %s: expected %s", path, (long long)line,
                       !rel ? "is missing" : !cJSON_IsArray(rel) ? "is not a list" : "differs in length from \"machine_summaries\"",
                       k_summarization);
    cJSON_ArrayForEach(y, rel) if (!cJSON_IsNumber(y) || !isfinite(y->valuedouble)) return gp_errf(
        err, GP_EINPUT, "%s:%lld: \"relevance\" holds something that is not a number: expected %s", path, (long long)line,
        k_summarization);
    const int64_t from = r->s->n_texts;
    cJSON_ArrayForEach(x, hum) add_text(r->s, &r->tcap, x->valuestring, 0, GP_ROLE_HUMAN, 0);
    y = rel->child;
    cJSON_ArrayForEach(x, mach) {
        add_text(r->s, &r->tcap, x->valuestring, 0, GP_ROLE_MACHINE, y->valuedouble);
        y = y->next;
    }
    end_unit(r->s, &r->ucap, from, line);
    return GP_OK;
}

gp_status gp_task_load(gp_task_type type, const char *path, gp_task_set *s, gp_err *err) {
    memset(s, 0, sizeof *s);
    s->type = type;
    s->path = gp_strdup(path);
    s->unit_off = gp_calloc(1, sizeof(int64_t));
    reader r = {.s = s, .ucap = 1};
    gp_status rc = GP_OK;
    switch (type) {
    case GP_TASK_CLASSIFICATION: {
        char *tr = gp_path_join(path, "train.jsonl"), *te = gp_path_join(path, "test.jsonl");
        if (!gp_dir_exists(path)) rc = gp_errf(err, GP_EINPUT, "%s: not a folder (expected train.jsonl and test.jsonl in it)", path);
        if (!rc) rc = each_line(tr, read_classification, &r, err);
        s->n_train = s->n_texts;
        if (!rc && s->n_train == 0) rc = gp_errf(err, GP_EINPUT, "%s: no training text", tr);
        if (!rc && s->n_labels < 2) rc = gp_errf(err, GP_EINPUT, "%s: one label only: nothing to classify", tr);
        r.test = true;
        if (!rc) rc = each_line(te, read_classification, &r, err);
        if (!rc && s->n_units == 0) rc = gp_errf(err, GP_EINPUT, "%s: no test text", te);
        free(tr), free(te);
        break;
    }
    case GP_TASK_CLUSTERING: rc = each_line(path, read_clustering, &r, err); break;
    case GP_TASK_PAIR:
    case GP_TASK_BITEXT: rc = each_line(path, read_pair, &r, err); break;
    case GP_TASK_RERANKING: rc = each_line(path, read_reranking, &r, err); break;
    case GP_TASK_SUMMARIZATION: rc = each_line(path, read_summarization, &r, err); break;
    default: GP_CHECK(false, "task type %d", (int)type);
    }
    if (!rc && s->n_units == 0) rc = gp_errf(err, GP_EINPUT, "%s: no record", path);
    if (!rc && type == GP_TASK_PAIR && r.positives == 0)
        rc = gp_errf(err, GP_EINPUT, "%s: no pair has label 1: average precision is undefined", path);
    if (!rc && type == GP_TASK_BITEXT && s->n_units < 2)
        rc = gp_errf(err, GP_EINPUT, "%s: one pair only: nothing to mine it from", path);
    if (rc) gp_task_set_free(s);
    return rc;
}
