/* cpu-guarded: the CPU operations behind page protection, a test backend that takes the place of
 * a GPU on machines without one. It reports shares_host_memory = 0, so the trainer and models
 * take the path they take on a GPU: data is uploaded, results are downloaded. Its "device"
 * memory is carved from one reserved mmap region whose pages are PROT_NONE. Only while one of
 * its own operations runs do the allocations that its arguments lie in become accessible, so
 * any host read or write of device memory (a model indexing a device array, a loss read in
 * place) stops the process with SIGSEGV at the faulting line.
 * Before each operation it also checks that every device pointer argument lies inside a live
 * allocation with the extent the operation touches, and that every host array argument lies
 * outside device memory, so a host pointer passed where the GPU needs device memory fails too.
 * The arithmetic is the CPU backend's, so results equal the plain CPU backend's bit for bit. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, MAP_NORESERVE, madvise */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend.h"
#include "common.h"

/* Address space reserved once (not memory: pages are committed when first written). */
#define GUARD_RESERVE ((size_t)64 << 30)

typedef struct {
    uintptr_t start;
    size_t bytes; /* requested size */
    size_t span;  /* page-rounded size */
    int live;
} Chunk;

/* Most device arguments of one operation (gemm has three, mixture_backward five). */
#define GUARD_MAX_OPEN 8

static struct {
    uint8_t *base;
    size_t used;
    size_t page;
    Chunk *chunks; /* in address order, since allocation only moves forward */
    int count, cap;
    long ops;
    const Chunk *open[GUARD_MAX_OPEN]; /* the allocations the current operation may touch */
    int open_count;
} arena;

static void arena_init(void) {
    if (arena.base)
        return;
    arena.page = (size_t)sysconf(_SC_PAGESIZE);
    void *p = mmap(NULL, GUARD_RESERVE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED)
        euar_fatal(__FILE__, __LINE__, "cpu-guarded: cannot reserve %zu bytes of address space",
                   GUARD_RESERVE);
    arena.base = p;
}

/* Only the allocations that the operation's arguments lie in become accessible, so an
 * operation that strays outside its arguments faults too. */
static void protect_open(int prot) {
    for (int i = 0; i < arena.open_count; i++)
        if (mprotect((void *)arena.open[i]->start, arena.open[i]->span, prot) != 0)
            euar_fatal(__FILE__, __LINE__, "cpu-guarded: mprotect failed");
}

static void guard_open(void) {
    arena.ops++;
    protect_open(PROT_READ | PROT_WRITE);
}

static void guard_close(void) {
    protect_open(PROT_NONE);
    arena.open_count = 0;
}

static int in_arena(const void *p) {
    uintptr_t a = (uintptr_t)p, base = (uintptr_t)arena.base;
    return arena.base && a >= base && a < base + GUARD_RESERVE;
}

/* Returns the chunk containing p, or NULL. */
static const Chunk *chunk_of(const void *p) {
    uintptr_t a = (uintptr_t)p;
    int lo = 0, hi = arena.count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const Chunk *c = &arena.chunks[mid];
        if (a < c->start)
            hi = mid - 1;
        else if (a >= c->start + c->span)
            lo = mid + 1;
        else
            return c;
    }
    return NULL;
}

/* Checks that [p, p + bytes) is inside one live device allocation. */
static void need_device(const char *op, const char *arg, const void *p, size_t bytes) {
    if (bytes == 0)
        return;
    const Chunk *c = chunk_of(p);
    if (!c)
        euar_fatal(__FILE__, __LINE__, "cpu-guarded %s: argument %s (%p) is not device memory "
                   "of this backend", op, arg, p);
    if (!c->live)
        euar_fatal(__FILE__, __LINE__, "cpu-guarded %s: argument %s (%p) was released", op,
                   arg, p);
    if ((uintptr_t)p + bytes > c->start + c->bytes)
        euar_fatal(__FILE__, __LINE__, "cpu-guarded %s: argument %s (%p) needs %zu bytes, %zu "
                   "past the end of its allocation of %zu", op, arg, p, bytes,
                   (size_t)((uintptr_t)p + bytes - c->start - c->bytes), c->bytes);
    for (int i = 0; i < arena.open_count; i++)
        if (arena.open[i] == c)
            return;
    EUAR_ASSERT(arena.open_count < GUARD_MAX_OPEN);
    arena.open[arena.open_count++] = c;
}

/* Checks that a host array is not device memory. */
static void need_host(const char *op, const char *arg, const void *p) {
    if (p && in_arena(p))
        euar_fatal(__FILE__, __LINE__, "cpu-guarded %s: argument %s (%p) is device memory, but "
                   "the operation reads it as host memory", op, arg, p);
}

/* Bytes of a row-major block of `rows` rows of `cols` elements at leading dimension ld. */
static size_t block_bytes(int rows, int cols, int ld, size_t elem) {
    if (rows <= 0 || cols <= 0)
        return 0;
    return ((size_t)(rows - 1) * (size_t)ld + (size_t)cols) * elem;
}

static int max_index(const int32_t *idx, int n) {
    int m = -1;
    for (int i = 0; i < n; i++) {
        EUAR_ASSERT(idx[i] >= 0);
        m = idx[i] > m ? idx[i] : m;
    }
    return m;
}

static const Backend *cpu(void) {
    return backend_cpu();
}

static void *g_alloc(size_t bytes) {
    arena_init();
    size_t span = (bytes + arena.page - 1) / arena.page * arena.page;
    if (span == 0)
        span = arena.page;
    if (arena.used + span > GUARD_RESERVE)
        euar_fatal(__FILE__, __LINE__, "cpu-guarded: out of reserved address space allocating "
                   "%zu bytes", bytes);
    if (arena.count == arena.cap) {
        arena.cap = arena.cap ? 2 * arena.cap : 64;
        arena.chunks = xrealloc(arena.chunks, sizeof(Chunk) * (size_t)arena.cap);
    }
    Chunk *c = &arena.chunks[arena.count++];
    c->start = (uintptr_t)arena.base + arena.used;
    c->bytes = bytes;
    c->span = span;
    c->live = 1;
    arena.used += span;
    /* Fresh anonymous pages read as zero, as the backend contract requires. */
    return (void *)c->start;
}

static void g_release(void *p) {
    if (!p)
        return;
    Chunk *c = (Chunk *)chunk_of(p);
    if (!c || !c->live || c->start != (uintptr_t)p)
        euar_fatal(__FILE__, __LINE__, "cpu-guarded release: %p is not a live allocation", p);
    c->live = 0;
    /* The pages stay reserved and PROT_NONE, so a use after release faults too. */
    madvise((void *)c->start, c->span, MADV_DONTNEED);
}

static void g_upload(void *dst, const void *src, size_t bytes) {
    need_device("upload", "dst", dst, bytes);
    need_host("upload", "src", src);
    guard_open();
    memcpy(dst, src, bytes);
    guard_close();
}

static void g_download(void *dst, const void *src, size_t bytes) {
    need_host("download", "dst", dst);
    need_device("download", "src", src, bytes);
    guard_open();
    memcpy(dst, src, bytes);
    guard_close();
}

static void g_zero(void *p, size_t bytes) {
    need_device("zero", "p", p, bytes);
    guard_open();
    memset(p, 0, bytes);
    guard_close();
}

static void g_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                   int lda, const float *b, int ldb, float beta, float *c, int ldc) {
    need_device("gemm", "a", a, trans_a ? block_bytes(k, m, lda, 4) : block_bytes(m, k, lda, 4));
    need_device("gemm", "b", b, trans_b ? block_bytes(n, k, ldb, 4) : block_bytes(k, n, ldb, 4));
    need_device("gemm", "c", c, block_bytes(m, n, ldc, 4));
    guard_open();
    cpu()->gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    guard_close();
}

static void g_gemm_strided_batched(int trans_a, int trans_b, int m, int n, int k, float alpha,
                                   const float *a, int lda, size_t stride_a, const float *b,
                                   int ldb, size_t stride_b, float beta, float *c, int ldc,
                                   size_t stride_c, int count) {
    if (count <= 0)
        return;
    size_t last = (size_t)(count - 1);
    size_t a_bytes = trans_a ? block_bytes(k, m, lda, 4) : block_bytes(m, k, lda, 4);
    size_t b_bytes = trans_b ? block_bytes(n, k, ldb, 4) : block_bytes(k, n, ldb, 4);
    need_device("gemm_strided_batched", "a", a, last * stride_a * 4 + a_bytes);
    need_device("gemm_strided_batched", "b", b, last * stride_b * 4 + b_bytes);
    need_device("gemm_strided_batched", "c", c, last * stride_c * 4 + block_bytes(m, n, ldc, 4));
    guard_open();
    cpu()->gemm_strided_batched(trans_a, trans_b, m, n, k, alpha, a, lda, stride_a, b, ldb,
                                stride_b, beta, c, ldc, stride_c, count);
    guard_close();
}

static void g_bias_add(float *y, const float *bias, int rows, int cols, int ldy) {
    need_device("bias_add", "y", y, block_bytes(rows, cols, ldy, 4));
    need_device("bias_add", "bias", bias, (size_t)cols * 4);
    guard_open();
    cpu()->bias_add(y, bias, rows, cols, ldy);
    guard_close();
}

static void g_bias_grad(float *dbias, const float *dy, int rows, int cols, int ldy) {
    need_device("bias_grad", "dbias", dbias, (size_t)cols * 4);
    need_device("bias_grad", "dy", dy, block_bytes(rows, cols, ldy, 4));
    guard_open();
    cpu()->bias_grad(dbias, dy, rows, cols, ldy);
    guard_close();
}

static void g_scale(float *x, float alpha, size_t n) {
    need_device("scale", "x", x, n * 4);
    guard_open();
    cpu()->scale(x, alpha, n);
    guard_close();
}

static void g_act_forward(ActKind kind, float *y, const float *x, size_t n) {
    need_device("act_forward", "y", y, n * 4);
    need_device("act_forward", "x", x, n * 4);
    guard_open();
    cpu()->act_forward(kind, y, x, n);
    guard_close();
}

static void g_act_backward(ActKind kind, float *dx, const float *dy, const float *x, size_t n) {
    need_device("act_backward", "dx", dx, n * 4);
    need_device("act_backward", "dy", dy, n * 4);
    need_device("act_backward", "x", x, n * 4);
    guard_open();
    cpu()->act_backward(kind, dx, dy, x, n);
    guard_close();
}

static void g_gather_rows(float *dst, int ldd, const float *src, int lds, const int32_t *idx,
                          int n, int cols) {
    need_host("gather_rows", "idx", idx);
    need_device("gather_rows", "dst", dst, block_bytes(n, cols, ldd, 4));
    need_device("gather_rows", "src", src, block_bytes(max_index(idx, n) + 1, cols, lds, 4));
    guard_open();
    cpu()->gather_rows(dst, ldd, src, lds, idx, n, cols);
    guard_close();
}

static void g_gather_rows_u8(float *dst, int ldd, const uint8_t *src, int lds,
                             const int32_t *idx, int n, int cols, float scale) {
    need_host("gather_rows_u8", "idx", idx);
    need_device("gather_rows_u8", "dst", dst, block_bytes(n, cols, ldd, 4));
    need_device("gather_rows_u8", "src", src, block_bytes(max_index(idx, n) + 1, cols, lds, 1));
    guard_open();
    cpu()->gather_rows_u8(dst, ldd, src, lds, idx, n, cols, scale);
    guard_close();
}

static void g_gather_rows_i32(int32_t *dst, int ldd, const int32_t *src, int lds,
                              const int32_t *idx, int n, int cols) {
    need_host("gather_rows_i32", "idx", idx);
    need_device("gather_rows_i32", "dst", dst, block_bytes(n, cols, ldd, 4));
    need_device("gather_rows_i32", "src", src, block_bytes(max_index(idx, n) + 1, cols, lds, 4));
    guard_open();
    cpu()->gather_rows_i32(dst, ldd, src, lds, idx, n, cols);
    guard_close();
}

static void g_scatter_add_rows(float *dst, int ldd, const float *src, int lds,
                               const int32_t *idx, int n, int cols) {
    need_host("scatter_add_rows", "idx", idx);
    need_device("scatter_add_rows", "dst", dst,
                block_bytes(max_index(idx, n) + 1, cols, ldd, 4));
    need_device("scatter_add_rows", "src", src, block_bytes(n, cols, lds, 4));
    guard_open();
    cpu()->scatter_add_rows(dst, ldd, src, lds, idx, n, cols);
    guard_close();
}

static void g_copy_block(float *dst, int ldd, const float *src, int lds, int rows, int cols,
                         int accumulate) {
    need_device("copy_block", "dst", dst, block_bytes(rows, cols, ldd, 4));
    need_device("copy_block", "src", src, block_bytes(rows, cols, lds, 4));
    guard_open();
    cpu()->copy_block(dst, ldd, src, lds, rows, cols, accumulate);
    guard_close();
}

static void g_embedding_mean_forward(float *out, const float *emb, const int32_t *tok,
                                     const int32_t *len, int b, int t, int h) {
    need_device("embedding_mean_forward", "out", out, (size_t)b * h * 4);
    need_device("embedding_mean_forward", "emb", emb, (size_t)h * 4);
    need_device("embedding_mean_forward", "tok", tok, (size_t)b * t * 4);
    need_device("embedding_mean_forward", "len", len, (size_t)b * 4);
    guard_open();
    cpu()->embedding_mean_forward(out, emb, tok, len, b, t, h);
    guard_close();
}

static void g_embedding_mean_backward(float *demb, const float *dout, const int32_t *tok,
                                      const int32_t *len, int b, int t, int h) {
    need_device("embedding_mean_backward", "demb", demb, (size_t)h * 4);
    need_device("embedding_mean_backward", "dout", dout, (size_t)b * h * 4);
    need_device("embedding_mean_backward", "tok", tok, (size_t)b * t * 4);
    need_device("embedding_mean_backward", "len", len, (size_t)b * 4);
    guard_open();
    cpu()->embedding_mean_backward(demb, dout, tok, len, b, t, h);
    guard_close();
}

static void g_softmax_topk(float *p, float *gate, int32_t *sel, const float *logits, int b,
                           int e, int k) {
    need_host("softmax_topk", "sel", sel);
    need_device("softmax_topk", "p", p, (size_t)b * e * 4);
    need_device("softmax_topk", "gate", gate, (size_t)b * k * 4);
    need_device("softmax_topk", "logits", logits, (size_t)b * e * 4);
    guard_open();
    cpu()->softmax_topk(p, gate, sel, logits, b, e, k);
    guard_close();
}

static void g_softmax_backward(float *dlogits, const float *dp, const float *p, int b, int e) {
    need_device("softmax_backward", "dlogits", dlogits, (size_t)b * e * 4);
    need_device("softmax_backward", "dp", dp, (size_t)b * e * 4);
    need_device("softmax_backward", "p", p, (size_t)b * e * 4);
    guard_open();
    cpu()->softmax_backward(dlogits, dp, p, b, e);
    guard_close();
}

static void g_expert_forward(float *z, float *sd, float *kl, float *s2, const float *y,
                             const float *eps, int rows, int h, float lv_min, float lv_max) {
    size_t plane = (size_t)rows * h * 4;
    need_device("expert_forward", "z", z, plane);
    if (sd)
        need_device("expert_forward", "sd", sd, plane);
    if (kl)
        need_device("expert_forward", "kl", kl, (size_t)rows * 4);
    if (s2)
        need_device("expert_forward", "s2", s2, (size_t)rows * 4);
    need_device("expert_forward", "y", y, 2 * plane);
    if (eps)
        need_device("expert_forward", "eps", eps, plane);
    guard_open();
    cpu()->expert_forward(z, sd, kl, s2, y, eps, rows, h, lv_min, lv_max);
    guard_close();
}

static void g_expert_backward(float *dy, const float *dz, const float *dkl, const float *ds2,
                              const float *y, const float *sd, const float *eps, int rows, int h,
                              float lv_min, float lv_max) {
    size_t plane = (size_t)rows * h * 4;
    need_device("expert_backward", "dy", dy, 2 * plane);
    if (dz)
        need_device("expert_backward", "dz", dz, plane);
    if (dkl)
        need_device("expert_backward", "dkl", dkl, (size_t)rows * 4);
    if (ds2)
        need_device("expert_backward", "ds2", ds2, (size_t)rows * 4);
    need_device("expert_backward", "y", y, 2 * plane);
    if (sd)
        need_device("expert_backward", "sd", sd, plane);
    if (eps)
        need_device("expert_backward", "eps", eps, plane);
    guard_open();
    cpu()->expert_backward(dy, dz, dkl, ds2, y, sd, eps, rows, h, lv_min, lv_max);
    guard_close();
}

static void g_mixture_forward(float *out, int ldo, const float *w, const float *z, int b, int s,
                              int h) {
    need_device("mixture_forward", "out", out, block_bytes(b, h, ldo, 4));
    need_device("mixture_forward", "w", w, (size_t)b * s * 4);
    need_device("mixture_forward", "z", z, (size_t)b * s * h * 4);
    guard_open();
    cpu()->mixture_forward(out, ldo, w, z, b, s, h);
    guard_close();
}

static void g_mixture_backward(float *dz, float *dw, const float *dout, int ldo, const float *w,
                               const float *z, int b, int s, int h) {
    need_device("mixture_backward", "dz", dz, (size_t)b * s * h * 4);
    need_device("mixture_backward", "dw", dw, (size_t)b * s * 4);
    need_device("mixture_backward", "dout", dout, block_bytes(b, h, ldo, 4));
    need_device("mixture_backward", "w", w, (size_t)b * s * 4);
    need_device("mixture_backward", "z", z, (size_t)b * s * h * 4);
    guard_open();
    cpu()->mixture_backward(dz, dw, dout, ldo, w, z, b, s, h);
    guard_close();
}

static void g_normal_experts(float *eps, RngStream st, uint32_t step, const int32_t *sample,
                             const int32_t *sel, int b, int s, int e, int k, int h) {
    need_host("normal_experts", "sample", sample);
    need_host("normal_experts", "sel", sel);
    need_device("normal_experts", "eps", eps, (size_t)b * s * h * 4);
    guard_open();
    cpu()->normal_experts(eps, st, step, sample, sel, b, s, e, k, h);
    guard_close();
}

static double g_mse(float *dpred, const float *pred, const float *y, int b, float scale) {
    if (dpred)
        need_device("mse", "dpred", dpred, (size_t)b * 4);
    need_device("mse", "pred", pred, (size_t)b * 4);
    need_device("mse", "y", y, (size_t)b * 4);
    guard_open();
    double loss = cpu()->mse(dpred, pred, y, b, scale);
    guard_close();
    return loss;
}

static double g_cross_entropy(float *dlogits, float *prob, const float *logits,
                              const int32_t *cls, int b, int c, float scale) {
    need_host("cross_entropy", "cls", cls);
    if (dlogits)
        need_device("cross_entropy", "dlogits", dlogits, (size_t)b * c * 4);
    need_device("cross_entropy", "prob", prob, (size_t)b * c * 4);
    need_device("cross_entropy", "logits", logits, (size_t)b * c * 4);
    guard_open();
    double loss = cpu()->cross_entropy(dlogits, prob, logits, cls, b, c, scale);
    guard_close();
    return loss;
}

static void g_adam(float *p, float *m, float *v, float *g, size_t n, float lr, float beta1,
                   float beta2, float eps, float wd, int t) {
    need_device("adam", "p", p, n * 4);
    need_device("adam", "m", m, n * 4);
    need_device("adam", "v", v, n * 4);
    need_device("adam", "g", g, n * 4);
    guard_open();
    cpu()->adam(p, m, v, g, n, lr, beta1, beta2, eps, wd, t);
    guard_close();
}

static double g_sum(const float *x, size_t n) {
    need_device("sum", "x", x, n * 4);
    guard_open();
    double s = cpu()->sum(x, n);
    guard_close();
    return s;
}

static double g_sum_squares(const float *x, size_t n) {
    need_device("sum_squares", "x", x, n * 4);
    guard_open();
    double s = cpu()->sum_squares(x, n);
    guard_close();
    return s;
}

static const Backend guarded_backend = {
    .name = "cpu-guarded",
    .shares_host_memory = 0,
    .alloc = g_alloc,
    .release = g_release,
    .upload = g_upload,
    .download = g_download,
    .zero = g_zero,
    .gemm = g_gemm,
    .gemm_strided_batched = g_gemm_strided_batched,
    .bias_add = g_bias_add,
    .bias_grad = g_bias_grad,
    .scale = g_scale,
    .act_forward = g_act_forward,
    .act_backward = g_act_backward,
    .gather_rows = g_gather_rows,
    .gather_rows_u8 = g_gather_rows_u8,
    .gather_rows_i32 = g_gather_rows_i32,
    .scatter_add_rows = g_scatter_add_rows,
    .copy_block = g_copy_block,
    .embedding_mean_forward = g_embedding_mean_forward,
    .embedding_mean_backward = g_embedding_mean_backward,
    .softmax_topk = g_softmax_topk,
    .softmax_backward = g_softmax_backward,
    .expert_forward = g_expert_forward,
    .expert_backward = g_expert_backward,
    .mixture_forward = g_mixture_forward,
    .mixture_backward = g_mixture_backward,
    .normal_experts = g_normal_experts,
    .mse = g_mse,
    .cross_entropy = g_cross_entropy,
    .adam = g_adam,
    .sum = g_sum,
    .sum_squares = g_sum_squares,
};

const Backend *backend_cpu_guarded(void) {
    return &guarded_backend;
}

long backend_cpu_guarded_ops(void) {
    return arena.ops;
}
