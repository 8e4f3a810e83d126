#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* Model kinds, defined in core/models/. A new model adds its file there and one line here. */
extern const ModelKind model_euar, model_euar_no_kl, model_euar_no_u, model_euar_no_kl_no_u,
    model_mlp_moe, model_concat, model_late, model_tmc, model_qmf;

static const ModelKind *const kinds[] = {
    &model_euar,   &model_concat,     &model_late,       &model_mlp_moe,
    &model_euar_no_kl, &model_euar_no_u, &model_euar_no_kl_no_u,
    &model_tmc,        &model_qmf,
};

const ModelKind *model_kind_find(const char *name) {
    for (size_t i = 0; i < EUAR_ARRAY_LEN(kinds); i++)
        if (strcmp(kinds[i]->name, name) == 0)
            return kinds[i];
    return NULL;
}

int model_exists(const char *name) {
    return model_kind_find(name) != NULL;
}

const char *model_names(void) {
    static char names[512];
    if (!names[0]) {
        size_t used = 0;
        for (size_t i = 0; i < EUAR_ARRAY_LEN(kinds); i++)
            used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s", i ? ", " : "",
                                     kinds[i]->name);
    }
    return names;
}


int model_supports_task(const char *name, int classification, char *why, int cap) {
    const ModelKind *kind = model_kind_find(name);
    if (classification || !kind || !kind->classification_only)
        return 1;
    snprintf(why, (size_t)cap, "model '%s' needs a classification dataset, but this dataset is "
             "regression; choose a classification dataset or a model that supports regression",
             name);
    return 0;
}

void param_declare(ParamTable *t, const char *name, int count, int fan_in, float **value,
                   float **grad) {
    if (t->count == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 32;
        t->entries = xrealloc(t->entries, sizeof(ParamEntry) * (size_t)t->cap);
    }
    ParamEntry *p = &t->entries[t->count++];
    snprintf(p->name, sizeof(p->name), "%s", name);
    /* Each tensor starts on a 16-float boundary so vector loads stay aligned. */
    p->offset = t->total;
    p->count = (size_t)count;
    p->fan_in = fan_in;
    p->value = value;
    p->grad = grad;
    t->total += ((size_t)count + 15) / 16 * 16;
}

void act_declare(ActTable *t, size_t count, float **slot) {
    if (t->count == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->slots = xrealloc(t->slots, sizeof(float **) * (size_t)t->cap);
        t->offsets = xrealloc(t->offsets, sizeof(size_t) * (size_t)t->cap);
    }
    t->slots[t->count] = slot;
    t->offsets[t->count] = t->total;
    t->count++;
    t->total += (count + 15) / 16 * 16;
}

/* Uniform(-s/sqrt(fan_in), s/sqrt(fan_in)) for weights and biases alike, the bound of
 * PyTorch 1.13's nn.Linear.reset_parameters at s = 1. Tensor i draws from counter (i, 0). */
static void init_params(Model *m) {
    ParamTable *t = &m->params;
    RngStream st = rng_stream(m->set.seed, EUAR_RNG_INIT);
    size_t max_count = 0;
    for (int i = 0; i < t->count; i++)
        max_count = EUAR_MAX(max_count, t->entries[i].count);
    float *host = xmalloc(sizeof(float) * max_count);
    for (int i = 0; i < t->count; i++) {
        ParamEntry *p = &t->entries[i];
        float bound = m->set.init_scale / sqrtf((float)p->fan_in);
        rng_fill_uniform(st, (uint32_t)i, 0, host, p->count);
        for (size_t j = 0; j < p->count; j++)
            host[j] = bound * (2.0f * host[j] - 1.0f);
        m->be->upload(t->value + p->offset, host, sizeof(float) * p->count);
    }
    free(host);
}

Model *model_create(const char *name, const Settings *set, const ModelShape *shape,
                    const Backend *be) {
    const ModelKind *kind = model_kind_find(name);
    if (!kind) {
        err_set("unknown model '%s'; valid models are: %s", name, model_names());
        return NULL;
    }
    if (settings_check(set) != 0)
        return NULL;
    if (set->experts > EUAR_MODEL_MAX_EXPERTS) {
        err_set("invalid setting experts=%d: at most %d", set->experts, EUAR_MODEL_MAX_EXPERTS);
        return NULL;
    }
    char why[256];
    if (!model_supports_task(name, shape->output == EUAR_OUT_CLASSIFICATION, why, sizeof(why))) {
        err_set("%s", why);
        return NULL;
    }
    if (shape->output == EUAR_OUT_CLASSIFICATION && shape->num_classes < 2) {
        err_set("model '%s' needs at least 2 classes, but the dataset has %d", name,
                shape->num_classes);
        return NULL;
    }
    EUAR_ASSERT(shape->num_modalities >= 1 && shape->num_modalities <= EUAR_MODEL_MAX_MODALITIES);

    Model *m = xcalloc(1, sizeof(Model));
    m->kind = kind;
    m->be = be;
    m->set = *set;
    m->shape = *shape;
    m->out_dim = shape->output == EUAR_OUT_REGRESSION ? 1 : shape->num_classes;
    m->reparam = rng_stream(set->seed, EUAR_RNG_REPARAM);
    size_t b = (size_t)shape->max_batch;
    act_declare(&m->acts, b * m->out_dim, &m->out);
    act_declare(&m->acts, b * m->out_dim, &m->dout);
    act_declare(&m->acts, b * m->out_dim, &m->prob);
    if (kind->build(m) != 0) {
        model_free(m);
        return NULL;
    }

    /* One allocation per category: values, gradients, Adam m and v, activations. */
    ParamTable *t = &m->params;
    t->value = be->alloc(sizeof(float) * t->total);
    t->grad = be->alloc(sizeof(float) * t->total);
    t->adam_m = be->alloc(sizeof(float) * t->total);
    t->adam_v = be->alloc(sizeof(float) * t->total);
    for (int i = 0; i < t->count; i++) {
        *t->entries[i].value = t->value + t->entries[i].offset;
        *t->entries[i].grad = t->grad + t->entries[i].offset;
    }
    m->acts.base = be->alloc(sizeof(float) * m->acts.total);
    for (int i = 0; i < m->acts.count; i++)
        *m->acts.slots[i] = m->acts.base + m->acts.offsets[i];
    init_params(m);
    return m;
}

void model_free(Model *m) {
    if (!m)
        return;
    if (m->kind && m->kind->destroy)
        m->kind->destroy(m);
    const Backend *be = m->be;
    if (m->params.value) {
        be->release(m->params.value);
        be->release(m->params.grad);
        be->release(m->params.adam_m);
        be->release(m->params.adam_v);
    }
    if (m->acts.base)
        be->release(m->acts.base);
    free(m->params.entries);
    free(m->acts.slots);
    free(m->acts.offsets);
    free(m->state);
    free(m);
}

void model_zero_grad(Model *m) {
    m->be->zero(m->params.grad, sizeof(float) * m->params.total);
}

void model_forward(Model *m, const Batch *batch, int training) {
    EUAR_ASSERT(batch->b >= 1 && batch->b <= m->shape.max_batch);
    memset(&m->loss, 0, sizeof(m->loss));
    m->kind->forward(m, batch, training);
}

void model_backward(Model *m, const Batch *batch) {
    m->kind->backward(m, batch);
}

void model_adam_step(Model *m, int t) {
    const Settings *s = &m->set;
    m->be->adam(m->params.value, m->params.adam_m, m->params.adam_v, m->params.grad,
                m->params.total, s->lr, s->adam_beta1, s->adam_beta2, s->adam_eps,
                s->weight_decay, t);
}

void model_task_loss(Model *m, const Batch *batch, int with_grad) {
    double task;
    if (m->shape.output == EUAR_OUT_REGRESSION)
        task = m->be->mse(with_grad ? m->dout : NULL, m->out, batch->y, batch->b, 1.0f);
    else
        task = m->be->cross_entropy(with_grad ? m->dout : NULL, m->prob, m->out, batch->cls,
                                    batch->b, m->out_dim, 1.0f);
    m->loss.task = task;
    m->loss.total = task + m->set.alpha * m->loss.kl + m->set.beta * m->loss.balance +
                    m->set.lambda * m->loss.u;
}
