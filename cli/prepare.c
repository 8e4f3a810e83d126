#include "cli/prepare.h"

#include <stdlib.h>
#include <string.h>

#include "core/common.h"

static void *keep(PreparedData *p, void *ptr) {
    EUAR_ASSERT(p->owned_count < (int)EUAR_ARRAY_LEN(p->owned));
    p->owned[p->owned_count++] = ptr;
    return ptr;
}

/* Copies the samples of split `sid` into contiguous rows. */
static int fill_split(PreparedData *p, SplitData *out, SplitId sid) {
    const Dataset *ds = &p->ds;
    int n = dataset_split_count(ds, sid);
    int32_t *rows = xmalloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    int at = 0;
    for (int i = 0; i < ds->n; i++)
        if (ds->split[i] == sid)
            rows[at++] = i;
    memset(out, 0, sizeof(*out));
    out->n = n;
    for (int m = 0; m < ds->num_modalities; m++) {
        const Modality *mod = &ds->mod[m];
        if (mod->kind == EUAR_KIND_FEATURES) {
            int d = mod->d;
            float *x = keep(p, xmalloc(sizeof(float) * (size_t)n * d + 1));
            for (int r = 0; r < n; r++)
                memcpy(x + (size_t)r * d, mod->features + (size_t)rows[r] * d,
                       sizeof(float) * (size_t)d);
            out->x[m] = x;
            p->checksum = hash_fnv1a64(x, sizeof(float) * (size_t)n * d, p->checksum);
        } else if (mod->kind == EUAR_KIND_IMAGE) {
            size_t d = (size_t)mod->c * mod->h * mod->w;
            uint8_t *x = keep(p, xmalloc(d * (size_t)n + 1));
            for (int r = 0; r < n; r++)
                memcpy(x + (size_t)r * d, mod->pixels + (size_t)rows[r] * d, d);
            out->u8[m] = x;
            p->checksum = hash_fnv1a64(x, d * (size_t)n, p->checksum);
        } else {
            int t = mod->t;
            int32_t *tok = keep(p, xmalloc(sizeof(int32_t) * (size_t)n * t + 1));
            int32_t *len = keep(p, xmalloc(sizeof(int32_t) * (size_t)n + 1));
            for (int r = 0; r < n; r++) {
                memcpy(tok + (size_t)r * t, mod->tokens + (size_t)rows[r] * t,
                       sizeof(int32_t) * (size_t)t);
                len[r] = mod->lengths[rows[r]];
            }
            out->tok[m] = tok;
            out->len[m] = len;
            p->checksum = hash_fnv1a64(tok, sizeof(int32_t) * (size_t)n * t, p->checksum);
            p->checksum = hash_fnv1a64(len, sizeof(int32_t) * (size_t)n, p->checksum);
        }
    }
    if (ds->task == EUAR_TASK_REGRESSION) {
        float *y = keep(p, xmalloc(sizeof(float) * (size_t)n + 1));
        for (int r = 0; r < n; r++)
            y[r] = ds->labels[rows[r]];
        out->y = y;
        p->checksum = hash_fnv1a64(y, sizeof(float) * (size_t)n, p->checksum);
    } else {
        int32_t *c = keep(p, xmalloc(sizeof(int32_t) * (size_t)n + 1));
        for (int r = 0; r < n; r++)
            c[r] = ds->classes[rows[r]];
        out->cls = c;
        p->checksum = hash_fnv1a64(c, sizeof(int32_t) * (size_t)n, p->checksum);
    }
    free(rows);
    return 0;
}

/* First pass for Gaussian noise: reads the file once for the dataset's name (which sets the
 * default image scale) and the per-dimension std of its training features, which the noise
 * on features scales by. Fills ctx->feature_std with arrays owned by `p`. */
static int gaussian_first_pass(PreparedData *p, const char *path, NonFinitePolicy nonfinite,
                               NoiseContext *ctx) {
    NoiseFeatureStats stats;
    memset(&stats, 0, sizeof(stats));
    DatasetLoadOptions opt = {0};
    opt.nonfinite = nonfinite;
    opt.pool_features = 1;
    opt.on_chunk = noise_stats_chunk;
    opt.ctx = &stats;
    Dataset ds;
    if (dataset_load_h5(path, &opt, &ds) != 0) {
        noise_stats_free(&stats);
        return -1;
    }
    int rc = noise_check_dataset(&p->noise, &ds);
    if (rc == 0)
        rc = noise_resolve_scales(&p->noise, &ds);
    for (int m = 0; rc == 0 && m < ds.num_modalities; m++) {
        if (!noise_needs_feature_std(&p->noise, &ds, m))
            continue;
        float *std = keep(p, xmalloc(sizeof(float) * (size_t)ds.mod[m].d));
        rc = noise_stats_std(&stats, &ds, m, std);
        ctx->feature_std[m] = std;
    }
    noise_stats_free(&stats);
    dataset_free(&ds);
    return rc == 0 ? 0 : err_prefix("%s", path);
}

int prepare_data(PreparedData *p, const char *path, const char *noise, uint64_t noise_seed,
                 NonFinitePolicy nonfinite) {
    memset(p, 0, sizeof(*p));
    p->checksum = EUAR_FNV_OFFSET;
    if (noise_parse(noise, &p->noise) != 0)
        return -1; /* noise_parse() quotes the spec */
    NoiseContext ctx = {.spec = &p->noise, .seed = noise_seed};
    int gaussian = 0;
    for (int t = 0; t < p->noise.count; t++)
        gaussian |= p->noise.term[t].type == EUAR_NOISE_GAUSSIAN && p->noise.term[t].eps > 0;
    if (gaussian && gaussian_first_pass(p, path, nonfinite, &ctx) != 0) {
        prepared_data_free(p);
        return -1;
    }
    DatasetLoadOptions opt = {0};
    opt.nonfinite = nonfinite;
    opt.pool_features = 1;
    opt.on_chunk = noise_apply_chunk;
    opt.ctx = &ctx;
    if (dataset_load_h5(path, &opt, &p->ds) != 0) {
        prepared_data_free(p);
        return -1;
    }
    if (noise_check_dataset(&p->noise, &p->ds) != 0) {
        dataset_free(&p->ds);
        return err_prefix("%s", path);
    }
    ModelShape *shape = &p->data.shape;
    shape->num_modalities = p->ds.num_modalities;
    shape->output = p->ds.task == EUAR_TASK_REGRESSION ? EUAR_OUT_REGRESSION
                                                       : EUAR_OUT_CLASSIFICATION;
    shape->num_classes = p->ds.num_classes;
    for (int m = 0; m < p->ds.num_modalities; m++) {
        const Modality *mod = &p->ds.mod[m];
        shape->in_dim[m] = mod->kind == EUAR_KIND_IMAGE    ? mod->c * mod->h * mod->w
                           : mod->kind == EUAR_KIND_TOKENS ? mod->t
                                                           : mod->d;
        shape->input[m] = mod->kind == EUAR_KIND_TOKENS ? EUAR_INPUT_TOKENS : EUAR_INPUT_DENSE;
        shape->vocab[m] = mod->vocab;
        snprintf(shape->names[m], sizeof(shape->names[m]), "%s", mod->name);
    }
    if (fill_split(p, &p->data.train, EUAR_SPLIT_TRAIN) != 0 ||
        fill_split(p, &p->data.valid, EUAR_SPLIT_VALID) != 0 ||
        fill_split(p, &p->data.test, EUAR_SPLIT_TEST) != 0) {
        prepared_data_free(p);
        return -1;
    }
    /* The split copies are all the trainer reads: drop the per-sample arrays of the dataset
     * and keep its metadata (names, kinds, shapes). */
    for (int m = 0; m < p->ds.num_modalities; m++) {
        Modality *mod = &p->ds.mod[m];
        free(mod->features);
        free(mod->pixels);
        free(mod->tokens);
        mod->features = NULL;
        mod->pixels = NULL;
        mod->tokens = NULL;
    }
    return 0;
}

void prepared_data_free(PreparedData *p) {
    for (int i = 0; i < p->owned_count; i++)
        free(p->owned[i]);
    p->owned_count = 0;
    dataset_free(&p->ds);
}
