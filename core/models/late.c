/* late: late fusion. Each modality has its own encoder, hidden layer and head; the
 * predictions (regression) or logits (classification) are averaged. */
#include <stdio.h>

#include "core/common.h"
#include "core/encoder.h"

typedef struct {
    Encoder enc[EUAR_MODEL_MAX_MODALITIES];
    Dense hidden[EUAR_MODEL_MAX_MODALITIES];
    Linear head[EUAR_MODEL_MAX_MODALITIES];
    float *outs;     /* [M, B, C] per-modality outputs */
    float *dshare;   /* [B, C] gradient of each modality's output: dout / M */
    float *dhid, *dh; /* [B, H] */
    float *joint;    /* [B, M H] hidden layers side by side */
} LateModel;

static int late_build(Model *m) {
    LateModel *st = xcalloc(1, sizeof(LateModel));
    m->state = st;
    int nm = m->shape.num_modalities, h = m->set.hidden, c = m->out_dim;
    size_t b = (size_t)m->shape.max_batch;
    for (int i = 0; i < nm; i++) {
        char name[40];
        encoder_declare(&st->enc[i], m, i);
        snprintf(name, sizeof(name), "%.24s.hidden", m->shape.names[i]);
        dense_declare(&st->hidden[i], m, name, h, h, m->set.activation);
        snprintf(name, sizeof(name), "%.24s.head", m->shape.names[i]);
        linear_declare(&st->head[i], &m->params, name, h, c);
    }
    act_declare(&m->acts, (size_t)nm * b * c, &st->outs);
    act_declare(&m->acts, b * c, &st->dshare);
    act_declare(&m->acts, b * h, &st->dhid);
    act_declare(&m->acts, b * h, &st->dh);
    act_declare(&m->acts, b * nm * h, &st->joint);
    m->joint_dim = nm * h;
    return 0;
}

static void late_forward(Model *m, const Batch *batch, int training) {
    LateModel *st = m->state;
    const Backend *be = m->be;
    int nm = m->shape.num_modalities, h = m->set.hidden, c = m->out_dim, b = batch->b;
    be->zero(m->out, sizeof(float) * (size_t)b * c);
    for (int i = 0; i < nm; i++) {
        float *out_i = st->outs + (size_t)i * m->shape.max_batch * c;
        encoder_forward(m, &st->enc[i], batch);
        dense_forward(be, &st->hidden[i], encoder_output(&st->enc[i]), h, b);
        be->copy_block(st->joint + (size_t)i * h, nm * h, st->hidden[i].y, h, b, h, 0);
        linear_forward(be, out_i, c, st->hidden[i].y, h, &st->head[i], b);
        be->copy_block(m->out, c, out_i, c, b, c, 1);
    }
    be->scale(m->out, 1.0f / (float)nm, (size_t)b * c);
    m->joint = st->joint;
    model_task_loss(m, batch, 1);
}

static void late_backward(Model *m, const Batch *batch) {
    LateModel *st = m->state;
    const Backend *be = m->be;
    int nm = m->shape.num_modalities, h = m->set.hidden, c = m->out_dim, b = batch->b;
    be->copy_block(st->dshare, c, m->dout, c, b, c, 0);
    be->scale(st->dshare, 1.0f / (float)nm, (size_t)b * c);
    for (int i = 0; i < nm; i++) {
        linear_backward(be, st->dhid, h, 0, &st->head[i], st->dshare, c, st->hidden[i].y, h, b);
        dense_backward(be, st->dh, h, 0, &st->hidden[i], st->dhid, encoder_output(&st->enc[i]), h,
                       b);
        encoder_backward(m, &st->enc[i], st->dh, batch);
    }
}

const ModelKind model_late = {"late", "late fusion: one head per modality, outputs averaged", 0,
                              late_build, late_forward, late_backward, NULL};
