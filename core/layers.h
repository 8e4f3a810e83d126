/* Dense layers built on the Backend table: Linear and Linear followed by an activation. */
#ifndef EUAR_LAYERS_H
#define EUAR_LAYERS_H

#include "model.h"

/* y = x W + b with W [in, out] row-major. */
typedef struct {
    int in, out;
    float *w, *b, *dw, *db;
} Linear;

/* Declares W and b of a Linear in the parameter table (fan_in = in). */
void linear_declare(Linear *l, ParamTable *t, const char *name, int in, int out);

/* y[B, out] (row stride ldy) = x[B, in] (row stride ldx) W + b */
void linear_forward(const Backend *be, float *y, int ldy, const float *x, int ldx,
                    const Linear *l, int b);

/* dW += x^T dy, db += sum of dy rows, and dx = dy W^T (dx += when accumulate) unless dx is
 * NULL. dy [B, out] with stride lddy, x [B, in] with stride ldx. */
void linear_backward(const Backend *be, float *dx, int lddx, int accumulate, const Linear *l,
                     const float *dy, int lddy, const float *x, int ldx, int b);

/* y = act(x W + b): keeps the pre-activation for backward. */
typedef struct {
    Linear lin;
    ActKind act;
    float *pre, *y, *dpre; /* [max_batch, out] */
} Dense;

void dense_declare(Dense *d, Model *m, const char *name, int in, int out, ActKind act);
void dense_forward(const Backend *be, Dense *d, const float *x, int ldx, int b);
/* Writes (or adds into) dx from dy [B, out] (stride out); dy may be d->y's gradient buffer. */
void dense_backward(const Backend *be, float *dx, int lddx, int accumulate, Dense *d,
                    const float *dy, const float *x, int ldx, int b);

#endif
