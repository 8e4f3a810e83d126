/* late: late fusion. Each modality has its own encoder, hidden layer and head; the
 * predictions (regression) or logits (classification) are averaged. */
#include "core/branches.h"
#include "core/common.h"

typedef struct {
    Branches br;
    float *outs;   /* [M, B, C] per-modality outputs */
    float *dshare; /* [B, C] gradient of each modality's output: dout / M */
} LateModel;

static int late_build(Model *m) {
    LateModel *st = xcalloc(1, sizeof(LateModel));
    m->state = st;
    int nm = m->shape.num_modalities, c = m->out_dim;
    size_t b = (size_t)m->shape.max_batch;
    branches_declare(&st->br, m, c);
    act_declare(&m->acts, (size_t)nm * b * c, &st->outs);
    act_declare(&m->acts, b * c, &st->dshare);
    return 0;
}

static void late_forward(Model *m, const Batch *batch, int training) {
    LateModel *st = m->state;
    const Backend *be = m->be;
    int nm = m->shape.num_modalities, c = m->out_dim, b = batch->b;
    size_t plane = (size_t)m->shape.max_batch * c;
    branches_forward(m, &st->br, batch, st->outs, plane);
    be->zero(m->out, sizeof(float) * (size_t)b * c);
    for (int i = 0; i < nm; i++)
        be->copy_block(m->out, c, st->outs + i * plane, c, b, c, 1);
    be->scale(m->out, 1.0f / (float)nm, (size_t)b * c);
    model_task_loss(m, batch, 1);
}

static void late_backward(Model *m, const Batch *batch) {
    LateModel *st = m->state;
    const Backend *be = m->be;
    int nm = m->shape.num_modalities, c = m->out_dim, b = batch->b;
    be->copy_block(st->dshare, c, m->dout, c, b, c, 0);
    be->scale(st->dshare, 1.0f / (float)nm, (size_t)b * c);
    branches_backward(m, &st->br, batch, st->dshare, 0);
}

const ModelKind model_late = {"late", "late fusion: one head per modality, outputs averaged", 0,
                              late_build, late_forward, late_backward, NULL, 0};
