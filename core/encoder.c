#include "encoder.h"

#include <stdio.h>

#include "common.h"

void encoder_declare(Encoder *enc, Model *m, int modality) {
    const ModelShape *shape = &m->shape;
    int h = m->set.hidden;
    char name[48];
    snprintf(name, sizeof(name), "%.24s.encoder", shape->names[modality]);
    enc->modality = modality;
    enc->input = shape->input[modality];
    enc->act = m->set.activation;
    enc->h = h;
    if (enc->input == EUAR_INPUT_DENSE) {
        dense_declare(&enc->dense, m, name, shape->in_dim[modality], h, enc->act);
        return;
    }
    EUAR_ASSERT(shape->vocab[modality] > 0);
    enc->vocab = shape->vocab[modality];
    enc->steps = shape->in_dim[modality];
    char full[56];
    /* fan_in 1: embedding rows start uniform in [-1, 1], of the order of nn.Embedding's
     * N(0, 1) initialisation. */
    snprintf(full, sizeof(full), "%.36s.embedding", name);
    param_declare(&m->params, full, enc->vocab * h, 1, &enc->emb, &enc->demb);
    snprintf(full, sizeof(full), "%.36s.b", name);
    param_declare(&m->params, full, h, h, &enc->bias, &enc->dbias);
    size_t rows = (size_t)shape->max_batch * h;
    act_declare(&m->acts, rows, &enc->pre);
    act_declare(&m->acts, rows, &enc->y);
    act_declare(&m->acts, rows, &enc->dpre);
}

void encoder_forward(Model *m, Encoder *enc, const Batch *batch) {
    const Backend *be = m->be;
    int i = enc->modality, b = batch->b, h = enc->h;
    if (enc->input == EUAR_INPUT_DENSE) {
        dense_forward(be, &enc->dense, batch->x[i], m->shape.in_dim[i], b);
        return;
    }
    be->embedding_mean_forward(enc->pre, enc->emb, batch->tok[i], batch->len[i], b, enc->steps,
                               h);
    be->bias_add(enc->pre, enc->bias, b, h, h);
    be->act_forward(enc->act, enc->y, enc->pre, (size_t)b * h);
}

void encoder_backward(Model *m, Encoder *enc, const float *dy, const Batch *batch) {
    const Backend *be = m->be;
    int i = enc->modality, b = batch->b, h = enc->h;
    if (enc->input == EUAR_INPUT_DENSE) {
        dense_backward(be, NULL, 0, 0, &enc->dense, dy, batch->x[i], m->shape.in_dim[i], b);
        return;
    }
    be->act_backward(enc->act, enc->dpre, dy, enc->pre, (size_t)b * h);
    be->bias_grad(enc->dbias, enc->dpre, b, h, h);
    be->embedding_mean_backward(enc->demb, enc->dpre, batch->tok[i], batch->len[i], b,
                                enc->steps, h);
}

float *encoder_output(Encoder *enc) {
    return enc->input == EUAR_INPUT_DENSE ? enc->dense.y : enc->y;
}
