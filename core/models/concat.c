/* concat: early fusion. The encoded modalities are concatenated, then one hidden layer and a
 * Linear head predict. */
#include <stdio.h>

#include "core/common.h"
#include "core/encoder.h"

typedef struct {
    Encoder enc[EUAR_MODEL_MAX_MODALITIES];
    Dense hidden;
    Linear head;
    float *cat, *dcat; /* [B, M H] */
    float *dhid, *dh;  /* [B, H] */
} ConcatModel;

static int concat_build(Model *m) {
    ConcatModel *st = xcalloc(1, sizeof(ConcatModel));
    m->state = st;
    int nm = m->shape.num_modalities, h = m->set.hidden;
    size_t b = (size_t)m->shape.max_batch;
    for (int i = 0; i < nm; i++)
        encoder_declare(&st->enc[i], m, i);
    dense_declare(&st->hidden, m, "fusion", nm * h, h, m->set.activation);
    linear_declare(&st->head, &m->params, "head", h, m->out_dim);
    act_declare(&m->acts, b * nm * h, &st->cat);
    act_declare(&m->acts, b * nm * h, &st->dcat);
    act_declare(&m->acts, b * h, &st->dhid);
    act_declare(&m->acts, b * h, &st->dh);
    m->joint_dim = h;
    return 0;
}

static void concat_forward(Model *m, const Batch *batch, int training) {
    ConcatModel *st = m->state;
    const Backend *be = m->be;
    int nm = m->shape.num_modalities, h = m->set.hidden, b = batch->b;
    for (int i = 0; i < nm; i++) {
        encoder_forward(m, &st->enc[i], batch);
        be->copy_block(st->cat + (size_t)i * h, nm * h, encoder_output(&st->enc[i]), h, b, h, 0);
    }
    dense_forward(be, &st->hidden, st->cat, nm * h, b);
    m->joint = st->hidden.y;
    linear_forward(be, m->out, m->out_dim, st->hidden.y, h, &st->head, b);
    model_task_loss(m, batch, 1);
}

static void concat_backward(Model *m, const Batch *batch) {
    ConcatModel *st = m->state;
    const Backend *be = m->be;
    int nm = m->shape.num_modalities, h = m->set.hidden, b = batch->b;
    linear_backward(be, st->dhid, h, 0, &st->head, m->dout, m->out_dim, st->hidden.y, h, b);
    dense_backward(be, st->dcat, nm * h, 0, &st->hidden, st->dhid, st->cat, nm * h, b);
    for (int i = 0; i < nm; i++) {
        be->copy_block(st->dh, h, st->dcat + (size_t)i * h, nm * h, b, h, 0);
        encoder_backward(m, &st->enc[i], st->dh, batch);
    }
}

const ModelKind model_concat = {"concat", "early fusion MLP", 0, concat_build, concat_forward,
                                concat_backward, NULL, 0};
