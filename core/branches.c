#include "branches.h"

#include <stdio.h>

void branches_declare(Branches *br, Model *m, int out) {
    int nm = m->shape.num_modalities, h = m->set.hidden;
    size_t b = (size_t)m->shape.max_batch;
    br->count = nm;
    for (int i = 0; i < nm; i++) {
        char name[40];
        encoder_declare(&br->enc[i], m, i);
        snprintf(name, sizeof(name), "%.24s.hidden", m->shape.names[i]);
        dense_declare(&br->hidden[i], m, name, h, h, m->set.activation);
        snprintf(name, sizeof(name), "%.24s.head", m->shape.names[i]);
        linear_declare(&br->head[i], &m->params, name, h, out);
    }
    act_declare(&m->acts, b * h, &br->dhid);
    act_declare(&m->acts, b * h, &br->dh);
    act_declare(&m->acts, b * nm * h, &br->joint);
    m->joint_dim = nm * h;
}

void branches_forward(Model *m, Branches *br, const Batch *batch, float *out, size_t plane) {
    const Backend *be = m->be;
    int h = m->set.hidden, b = batch->b;
    for (int i = 0; i < br->count; i++) {
        int c = br->head[i].out;
        encoder_forward(m, &br->enc[i], batch);
        dense_forward(be, &br->hidden[i], encoder_output(&br->enc[i]), h, b);
        be->copy_block(br->joint + (size_t)i * h, br->count * h, br->hidden[i].y, h, b, h, 0);
        linear_forward(be, out + i * plane, c, br->hidden[i].y, h, &br->head[i], b);
    }
    m->joint = br->joint;
}

void branches_backward(Model *m, Branches *br, const Batch *batch, const float *dout,
                       size_t plane) {
    const Backend *be = m->be;
    int h = m->set.hidden, b = batch->b;
    for (int i = 0; i < br->count; i++) {
        int c = br->head[i].out;
        linear_backward(be, br->dhid, h, 0, &br->head[i], dout + i * plane, c, br->hidden[i].y,
                        h, b);
        dense_backward(be, br->dh, h, 0, &br->hidden[i], br->dhid, encoder_output(&br->enc[i]),
                       h, b);
        encoder_backward(m, &br->enc[i], br->dh, batch);
    }
}
