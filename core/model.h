/* Models: the registry of model kinds, the parameter and activation tables, and the calls the
 * trainer makes. A model sees only the Backend table, never which device runs it. */
#ifndef EUAR_MODEL_H
#define EUAR_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "ops.h"
#include "settings.h"

#define EUAR_MODEL_MAX_MODALITIES 4
#define EUAR_MODEL_MAX_EXPERTS 256

typedef enum { EUAR_OUT_REGRESSION, EUAR_OUT_CLASSIFICATION } OutputKind;

/* How a modality reaches a model: a row of floats (features pooled over time, images
 * flattened and scaled to [0, 1]) or a row of token ids with a length. */
typedef enum { EUAR_INPUT_DENSE, EUAR_INPUT_TOKENS } InputKind;

/* What the data looks like to a model. */
typedef struct {
    int num_modalities;
    int in_dim[EUAR_MODEL_MAX_MODALITIES]; /* floats per row, or token steps T */
    InputKind input[EUAR_MODEL_MAX_MODALITIES];
    int vocab[EUAR_MODEL_MAX_MODALITIES];  /* tokens: vocabulary size */
    char names[EUAR_MODEL_MAX_MODALITIES][32];
    OutputKind output;
    int num_classes; /* classification only */
    int max_batch;
    int num_train;   /* training samples; Batch.sample indexes them in training */
} ModelShape;

/* One batch as the model reads it. */
typedef struct {
    int b;                                         /* rows in this batch, <= max_batch */
    const float *x[EUAR_MODEL_MAX_MODALITIES];     /* device [B, in_dim[m]] */
    const int32_t *tok[EUAR_MODEL_MAX_MODALITIES]; /* device [B, T] token ids */
    const int32_t *len[EUAR_MODEL_MAX_MODALITIES]; /* device [B] valid tokens */
    const float *y;                                /* device [B] regression labels */
    const int32_t *cls;                            /* host [B] class indices */
    const int32_t *sample;                         /* host [B] sample index within its split */
    uint32_t step;                                 /* optimizer step, keys the eps draws */
    int epoch;                                     /* 1-based epoch of a training batch */
    int epochs;                                    /* epochs of the run */
} Batch;

/* Loss terms of the last forward pass, host values. total = task + alpha KL + beta balance
 * + lambda U, each term summed over modalities. */
typedef struct {
    double task, kl, balance, u, total;
} LossTerms;

/* Table of parameters: one allocation each for values, gradients and the two Adam moments. */
typedef struct {
    char name[48];
    size_t offset, count;
    int fan_in;
    float **value, **grad; /* pointers patched once the table is allocated */
} ParamEntry;

typedef struct {
    ParamEntry *entries;
    int count, cap;
    size_t total;
    float *value, *grad, *adam_m, *adam_v;
} ParamTable;

/* Table of activation buffers, one allocation sized for max_batch. */
typedef struct {
    float ***slots;
    size_t *offsets;
    int count, cap;
    size_t total;
    float *base;
} ActTable;

/* Routing statistics gathered during evaluation, per modality and expert. */
typedef struct {
    double load[EUAR_MODEL_MAX_MODALITIES][EUAR_MODEL_MAX_EXPERTS];   /* selections */
    double sigma2[EUAR_MODEL_MAX_MODALITIES][EUAR_MODEL_MAX_EXPERTS]; /* sum of mean sigma^2 */
    double samples;
    int enabled;
} RoutingStats;

typedef struct Model Model;

typedef struct {
    const char *name;
    const char *summary;
    int has_experts;
    /* Declares parameters and activations into m->params and m->acts and keeps its own
     * state in m->state. Returns 0, or -1 with err_set() for settings it cannot use. */
    int (*build)(Model *m);
    /* Computes m->out [B, out_dim] and m->loss; training enables eps draws. */
    void (*forward)(Model *m, const Batch *batch, int training);
    /* Adds the gradients of m->loss.total into m->params.grad. */
    void (*backward)(Model *m, const Batch *batch);
    void (*destroy)(Model *m);
    /* 1 for models without a regression head; model_create rejects them on regression
     * data, and every classification model needs at least 2 classes. */
    int classification_only;
} ModelKind;

struct Model {
    const ModelKind *kind;
    const Backend *be;
    Settings set;
    ModelShape shape;
    int out_dim;
    ParamTable params;
    ActTable acts;
    float *out, *dout;   /* device [B, out_dim] */
    float *prob;         /* device [B, out_dim], class probabilities */
    float *joint;        /* device [B, joint_dim], the fused representation before the head */
    int joint_dim;
    LossTerms loss;
    RoutingStats stats;
    RngStream reparam;
    float host_scratch[4096];
    void *state;
};

/* Returns 1 when `name` is a registered model. */
int model_exists(const char *name);

/* Comma-separated names of the registered models. */
const char *model_names(void);

/* Returns 1 when model `name` can be trained on a dataset of this task (classification 1,
 * regression 0). Returns 0 and writes the reason and the fix into why otherwise. */
int model_supports_task(const char *name, int classification, char *why, int cap);

/* Looks a model kind up by name. */
const ModelKind *model_kind_find(const char *name);

/* Builds a model with all parameters initialised from set->seed. Returns NULL with err_set()
 * on an unknown model or settings it cannot use. */
Model *model_create(const char *name, const Settings *set, const ModelShape *shape,
                    const Backend *be);
void model_free(Model *m);

void model_zero_grad(Model *m);
void model_forward(Model *m, const Batch *batch, int training);
void model_backward(Model *m, const Batch *batch);
/* One Adam step over all parameters; t is the 1-based step count. Leaves the gradients zero
 * (they start zero after model_create), so training needs no model_zero_grad per step. */
void model_adam_step(Model *m, int t);

/* Adds the task loss of m->out against the labels of `batch` to m->loss and, when dout is
 * not NULL, writes its gradient into m->dout. */
void model_task_loss(Model *m, const Batch *batch, int with_grad);

/* Table helpers used by model builders. */
void param_declare(ParamTable *t, const char *name, int count, int fan_in, float **value,
                   float **grad);
void act_declare(ActTable *t, size_t count, float **slot);

#endif
