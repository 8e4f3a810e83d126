/* EUAR (Gao et al., ACM MM 2024): per modality an encoder, a router with top-k selection and
 * Gaussian experts; the modality outputs are concatenated and a Linear layer predicts.
 * Loss: task + alpha KL + beta balance + lambda U, each summed over modalities. The same
 * skeleton with MLP experts and no KL or U-loss is the mlp-moe baseline, and the loss
 * ablations set alpha or lambda to zero. */
#include <stdio.h>
#include <stdlib.h>

#include "core/common.h"
#include "core/encoder.h"
#include "core/moe.h"

typedef struct {
    Encoder enc[EUAR_MODEL_MAX_MODALITIES];
    MoeBlock moe[EUAR_MODEL_MAX_MODALITIES];
    Linear head;
    float *fused, *dfused; /* [B, M H] */
    float *dh;             /* [B, H] gradient at an encoder output */
} MoeModel;

static int build_moe_model(Model *m, ExpertKind expert) {
    MoeModel *st = xcalloc(1, sizeof(MoeModel));
    m->state = st;
    int nm = m->shape.num_modalities, h = m->set.hidden;
    size_t b = (size_t)m->shape.max_batch;
    for (int i = 0; i < nm; i++) {
        char name[40];
        encoder_declare(&st->enc[i], m, i);
        snprintf(name, sizeof(name), "%.24s.moe", m->shape.names[i]);
        moe_declare(&st->moe[i], m, name, i, expert);
    }
    linear_declare(&st->head, &m->params, "head", nm * h, m->out_dim);
    act_declare(&m->acts, b * nm * h, &st->fused);
    act_declare(&m->acts, b * nm * h, &st->dfused);
    act_declare(&m->acts, b * h, &st->dh);
    m->joint_dim = nm * h;
    return 0;
}

static void moe_model_forward(Model *m, const Batch *batch, int training) {
    MoeModel *st = m->state;
    const Backend *be = m->be;
    int nm = m->shape.num_modalities, h = m->set.hidden, b = batch->b;
    for (int i = 0; i < nm; i++) {
        encoder_forward(m, &st->enc[i], batch);
        moe_forward(m, &st->moe[i], st->fused + (size_t)i * h, nm * h,
                    encoder_output(&st->enc[i]), h, batch, training);
        m->loss.kl += st->moe[i].kl_value;
        m->loss.balance += st->moe[i].balance_value;
        m->loss.u += st->moe[i].u_value;
    }
    m->joint = st->fused;
    linear_forward(be, m->out, m->out_dim, st->fused, nm * h, &st->head, b);
    model_task_loss(m, batch, 1);
}

static void moe_model_backward(Model *m, const Batch *batch) {
    MoeModel *st = m->state;
    const Backend *be = m->be;
    int nm = m->shape.num_modalities, h = m->set.hidden, b = batch->b;
    linear_backward(be, st->dfused, nm * h, 0, &st->head, m->dout, m->out_dim, st->fused,
                    nm * h, b);
    for (int i = 0; i < nm; i++) {
        moe_backward(m, &st->moe[i], st->dh, h, st->dfused + (size_t)i * h, nm * h,
                     encoder_output(&st->enc[i]), h, batch);
        encoder_backward(m, &st->enc[i], st->dh, batch);
    }
}

static void moe_model_destroy(Model *m) {
    MoeModel *st = m->state;
    if (!st)
        return;
    for (int i = 0; i < m->shape.num_modalities; i++)
        moe_destroy(&st->moe[i]);
}

static int build_euar(Model *m) {
    return build_moe_model(m, EUAR_EXPERT_GAUSSIAN);
}

static int build_euar_no_kl(Model *m) {
    m->set.alpha = 0.0f;
    return build_moe_model(m, EUAR_EXPERT_GAUSSIAN);
}

static int build_euar_no_u(Model *m) {
    m->set.lambda = 0.0f;
    return build_moe_model(m, EUAR_EXPERT_GAUSSIAN);
}

static int build_euar_no_kl_no_u(Model *m) {
    m->set.alpha = 0.0f;
    m->set.lambda = 0.0f;
    return build_moe_model(m, EUAR_EXPERT_GAUSSIAN);
}

static int build_mlp_moe(Model *m) {
    m->set.alpha = 0.0f;
    m->set.lambda = 0.0f;
    return build_moe_model(m, EUAR_EXPERT_MLP);
}

const ModelKind model_euar = {"euar", "Gaussian experts, uncertainty-aware routing", 1,
                              build_euar, moe_model_forward, moe_model_backward,
                              moe_model_destroy, 0};
const ModelKind model_euar_no_kl = {"euar-no-kl", "EUAR without the KL term", 1,
                                    build_euar_no_kl, moe_model_forward, moe_model_backward,
                                    moe_model_destroy, 0};
const ModelKind model_euar_no_u = {"euar-no-u", "EUAR without the U-loss", 1, build_euar_no_u,
                                   moe_model_forward, moe_model_backward, moe_model_destroy, 0};
const ModelKind model_euar_no_kl_no_u = {"euar-no-kl-no-u", "EUAR without KL and U-loss", 1,
                                         build_euar_no_kl_no_u, moe_model_forward,
                                         moe_model_backward, moe_model_destroy, 0};
const ModelKind model_mlp_moe = {"mlp-moe", "EUAR's router with two-layer MLP experts", 1,
                                 build_mlp_moe, moe_model_forward, moe_model_backward,
                                 moe_model_destroy, 0};
