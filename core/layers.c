#include "layers.h"

#include <stdio.h>

void linear_declare(Linear *l, ParamTable *t, const char *name, int in, int out) {
    char full[48];
    l->in = in;
    l->out = out;
    snprintf(full, sizeof(full), "%s.w", name);
    param_declare(t, full, in * out, in, &l->w, &l->dw);
    snprintf(full, sizeof(full), "%s.b", name);
    param_declare(t, full, out, in, &l->b, &l->db);
}

void linear_forward(const Backend *be, float *y, int ldy, const float *x, int ldx,
                    const Linear *l, int b) {
    /* y [B, out] = x [B, in] W [in, out] */
    be->gemm(0, 0, b, l->out, l->in, 1.0f, x, ldx, l->w, l->out, 0.0f, y, ldy);
    be->bias_add(y, l->b, b, l->out, ldy);
}

void linear_backward(const Backend *be, float *dx, int lddx, int accumulate, const Linear *l,
                     const float *dy, int lddy, const float *x, int ldx, int b) {
    /* dW [in, out] += x^T [in, B] dy [B, out] */
    be->gemm(1, 0, l->in, l->out, b, 1.0f, x, ldx, dy, lddy, 1.0f, l->dw, l->out);
    be->bias_grad(l->db, dy, b, l->out, lddy);
    /* dx [B, in] (+)= dy [B, out] W^T [out, in] */
    if (dx)
        be->gemm(0, 1, b, l->in, l->out, 1.0f, dy, lddy, l->w, l->out, accumulate ? 1.0f : 0.0f,
                 dx, lddx);
}

void dense_declare(Dense *d, Model *m, const char *name, int in, int out, ActKind act) {
    size_t rows = (size_t)m->shape.max_batch;
    linear_declare(&d->lin, &m->params, name, in, out);
    d->act = act;
    act_declare(&m->acts, rows * out, &d->pre);
    act_declare(&m->acts, rows * out, &d->y);
    act_declare(&m->acts, rows * out, &d->dpre);
}

void dense_forward(const Backend *be, Dense *d, const float *x, int ldx, int b) {
    linear_forward(be, d->pre, d->lin.out, x, ldx, &d->lin, b);
    be->act_forward(d->act, d->y, d->pre, (size_t)b * d->lin.out);
}

void dense_backward(const Backend *be, float *dx, int lddx, int accumulate, Dense *d,
                    const float *dy, const float *x, int ldx, int b) {
    be->act_backward(d->act, d->dpre, dy, d->pre, (size_t)b * d->lin.out);
    linear_backward(be, dx, lddx, accumulate, &d->lin, d->dpre, d->lin.out, x, ldx, b);
}
