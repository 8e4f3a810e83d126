/* CUDA kernels that move rows by index: gathers with host index arrays, the scatter-add of
 * the sparse experts and the token-embedding mean. Index arrays are staged into the device
 * scratch. Scatters whose indices may repeat do not use atomics: the host groups the sources
 * by destination row (a counting sort, in source order), and one thread per destination
 * element adds its sources in that order, the order of the CPU loop. The result is therefore
 * deterministic and equal to the CPU's. */
#include <stdlib.h>
#include <string.h>

#include "ops_cuda_impl.h"

__global__ void gather_rows_kernel(float *dst, int ldd, const float *src, int lds,
                                   const int32_t *idx, int n, int cols) {
    CUDA_FOR(i, (size_t)n * cols) {
        size_t r = i / cols, c = i % cols;
        dst[r * ldd + c] = src[(size_t)idx[r] * lds + c];
    }
}

void cuda_gather_rows(float *dst, int ldd, const float *src, int lds, const int32_t *idx, int n,
                      int cols) {
    size_t count = (size_t)n * cols;
    if (count == 0)
        return;
    const int32_t *d_idx = cuda_stage_i32(EUAR_SCRATCH_INDEX, idx, (size_t)n);
    gather_rows_kernel<<<cuda_blocks(count), EUAR_CUDA_THREADS>>>(dst, ldd, src, lds, d_idx, n,
                                                                   cols);
    CUDA_LAUNCH_CHECK(gather_rows_kernel);
}

__global__ void gather_rows_u8_kernel(float *dst, int ldd, const uint8_t *src, int lds,
                                      const int32_t *idx, int n, int cols, float scale) {
    CUDA_FOR(i, (size_t)n * cols) {
        size_t r = i / cols, c = i % cols;
        dst[r * ldd + c] = scale * (float)src[(size_t)idx[r] * lds + c];
    }
}

void cuda_gather_rows_u8(float *dst, int ldd, const uint8_t *src, int lds, const int32_t *idx,
                         int n, int cols, float scale) {
    size_t count = (size_t)n * cols;
    if (count == 0)
        return;
    const int32_t *d_idx = cuda_stage_i32(EUAR_SCRATCH_INDEX, idx, (size_t)n);
    gather_rows_u8_kernel<<<cuda_blocks(count), EUAR_CUDA_THREADS>>>(dst, ldd, src, lds, d_idx,
                                                                      n, cols, scale);
    CUDA_LAUNCH_CHECK(gather_rows_u8_kernel);
}

__global__ void gather_rows_i32_kernel(int32_t *dst, int ldd, const int32_t *src, int lds,
                                       const int32_t *idx, int n, int cols) {
    CUDA_FOR(i, (size_t)n * cols) {
        size_t r = i / cols, c = i % cols;
        dst[r * ldd + c] = src[(size_t)idx[r] * lds + c];
    }
}

void cuda_gather_rows_i32(int32_t *dst, int ldd, const int32_t *src, int lds,
                          const int32_t *idx, int n, int cols) {
    size_t count = (size_t)n * cols;
    if (count == 0)
        return;
    const int32_t *d_idx = cuda_stage_i32(EUAR_SCRATCH_INDEX, idx, (size_t)n);
    gather_rows_i32_kernel<<<cuda_blocks(count), EUAR_CUDA_THREADS>>>(dst, ldd, src, lds, d_idx,
                                                                       n, cols);
    CUDA_LAUNCH_CHECK(gather_rows_i32_kernel);
}

/* Host grouping of n keys: groups[0, u) are the distinct keys in increasing order,
 * groups[u, 2u + 1) the offsets of each key's items, groups[2u + 1, 2u + 1 + n) the item
 * positions grouped by key, increasing within a key. Buffers grow and are kept. */
typedef struct {
    int32_t *packed;
    size_t packed_cap;
    int32_t *count;
    size_t count_cap;
    int groups;
} KeyGroups;

static KeyGroups grouping;

/* Groups positions i < n with key keys[i] (skipping i where keep is given and keep[i] is 0).
 * Returns the number of packed values; grouping.groups is the distinct key count. */
static size_t group_keys(const int32_t *keys, const unsigned char *keep, int n) {
    KeyGroups *g = &grouping;
    int max_key = -1, items = 0;
    for (int i = 0; i < n; i++) {
        if (keep && !keep[i])
            continue;
        EUAR_ASSERT(keys[i] >= 0);
        max_key = keys[i] > max_key ? keys[i] : max_key;
        items++;
    }
    size_t range = (size_t)max_key + 2;
    if (range > g->count_cap) {
        g->count = (int32_t *)xrealloc(g->count, range * sizeof(int32_t));
        g->count_cap = range;
    }
    memset(g->count, 0, range * sizeof(int32_t));
    for (int i = 0; i < n; i++)
        if (!keep || keep[i])
            g->count[keys[i]]++;
    int u = 0;
    for (int key = 0; key <= max_key; key++)
        u += g->count[key] > 0;
    size_t total = 2 * (size_t)u + 1 + (size_t)items;
    if (total > g->packed_cap) {
        g->packed = (int32_t *)xrealloc(g->packed, total * sizeof(int32_t));
        g->packed_cap = total;
    }
    int32_t *uniq = g->packed, *offs = g->packed + u, *list = g->packed + 2 * u + 1;
    /* count[key] becomes the key's next write position in list. */
    int at = 0, group = 0;
    for (int key = 0; key <= max_key; key++) {
        if (g->count[key] == 0)
            continue;
        uniq[group] = key;
        offs[group] = at;
        at += g->count[key];
        g->count[key] = offs[group];
        group++;
    }
    offs[u] = at;
    for (int i = 0; i < n; i++)
        if (!keep || keep[i])
            list[g->count[keys[i]]++] = i;
    g->groups = u;
    return total;
}

extern "C" long backend_cuda_group_host(const int32_t *keys, const unsigned char *keep, int n,
                                        int32_t *packed, size_t cap, int *groups) {
    size_t total = group_keys(keys, keep, n);
    if (total > cap)
        return -1;
    memcpy(packed, grouping.packed, total * sizeof(int32_t));
    *groups = grouping.groups;
    return (long)total;
}

__global__ void scatter_add_rows_kernel(float *dst, int ldd, const float *src, int lds,
                                        const int32_t *packed, int groups, int cols) {
    const int32_t *uniq = packed, *offs = packed + groups, *list = packed + 2 * groups + 1;
    CUDA_FOR(i, (size_t)groups * cols) {
        size_t g = i / cols, c = i % cols;
        float *d = dst + (size_t)uniq[g] * ldd + c;
        float acc = *d;
        for (int t = offs[g]; t < offs[g + 1]; t++)
            acc += src[(size_t)list[t] * lds + c];
        *d = acc;
    }
}

void cuda_scatter_add_rows(float *dst, int ldd, const float *src, int lds, const int32_t *idx,
                           int n, int cols) {
    if (n == 0 || cols == 0)
        return;
    size_t total = group_keys(idx, NULL, n);
    const int32_t *packed = cuda_stage_i32(EUAR_SCRATCH_INDEX, grouping.packed, total);
    int groups = grouping.groups;
    scatter_add_rows_kernel<<<cuda_blocks((size_t)groups * cols), EUAR_CUDA_THREADS>>>(
        dst, ldd, src, lds, packed, groups, cols);
    CUDA_LAUNCH_CHECK(scatter_add_rows_kernel);
}

/* out[r, d] = mean over s < len[r] of emb[tok[r, s], d], tokens in order as on the CPU. */
__global__ void embedding_mean_forward_kernel(float *out, const float *emb, const int32_t *tok,
                                              const int32_t *len, int b, int t, int h) {
    CUDA_FOR(i, (size_t)b * h) {
        size_t r = i / h, d = i % h;
        int n = len[r];
        float acc = 0.0f;
        for (int s = 0; s < n; s++)
            acc += emb[(size_t)tok[r * t + s] * h + d];
        if (n > 0)
            acc *= 1.0f / (float)n;
        out[i] = acc;
    }
}

void cuda_embedding_mean_forward(float *out, const float *emb, const int32_t *tok,
                                 const int32_t *len, int b, int t, int h) {
    size_t n = (size_t)b * h;
    if (n == 0)
        return;
    embedding_mean_forward_kernel<<<cuda_blocks(n), EUAR_CUDA_THREADS>>>(out, emb, tok, len, b,
                                                                          t, h);
    CUDA_LAUNCH_CHECK(embedding_mean_forward_kernel);
}

/* demb[v, d] += sum over the positions p = r T + s holding token v of dout[r, d] / len[r],
 * positions in increasing order. */
__global__ void embedding_mean_backward_kernel(float *demb, const float *dout,
                                               const int32_t *len, const int32_t *packed,
                                               int groups, int t, int h) {
    const int32_t *uniq = packed, *offs = packed + groups, *list = packed + 2 * groups + 1;
    CUDA_FOR(i, (size_t)groups * h) {
        size_t g = i / h, d = i % h;
        float *e = demb + (size_t)uniq[g] * h + d;
        float acc = *e;
        for (int p = offs[g]; p < offs[g + 1]; p++) {
            int r = list[p] / t;
            float inv = 1.0f / (float)len[r];
            acc += inv * dout[(size_t)r * h + d];
        }
        *e = acc;
    }
}

/* Host copies of the token ids and lengths of a batch, grown and kept. */
static struct {
    int32_t *tok, *len;
    unsigned char *keep;
    size_t cap_tok, cap_len;
} tokens_host;

void cuda_embedding_mean_backward(float *demb, const float *dout, const int32_t *tok,
                                  const int32_t *len, int b, int t, int h) {
    size_t n = (size_t)b * t;
    if (n == 0 || h == 0)
        return;
    if (n > tokens_host.cap_tok) {
        tokens_host.tok = (int32_t *)xrealloc(tokens_host.tok, n * sizeof(int32_t));
        tokens_host.keep = (unsigned char *)xrealloc(tokens_host.keep, n);
        tokens_host.cap_tok = n;
    }
    if ((size_t)b > tokens_host.cap_len) {
        tokens_host.len = (int32_t *)xrealloc(tokens_host.len, (size_t)b * sizeof(int32_t));
        tokens_host.cap_len = (size_t)b;
    }
    /* The grouping needs the token ids on the host: one small copy of [B, T] ids. */
    CUDA_CHECK(cudaMemcpy(tokens_host.tok, tok, n * sizeof(int32_t), cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(tokens_host.len, len, (size_t)b * sizeof(int32_t),
                          cudaMemcpyDeviceToHost));
    for (int r = 0; r < b; r++)
        for (int s = 0; s < t; s++)
            tokens_host.keep[(size_t)r * t + s] = s < tokens_host.len[r];
    size_t total = group_keys(tokens_host.tok, tokens_host.keep, (int)n);
    int groups = grouping.groups;
    if (groups == 0)
        return;
    const int32_t *packed = cuda_stage_i32(EUAR_SCRATCH_INDEX, grouping.packed, total);
    embedding_mean_backward_kernel<<<cuda_blocks((size_t)groups * h), EUAR_CUDA_THREADS>>>(
        demb, dout, len, packed, groups, t, h);
    CUDA_LAUNCH_CHECK(embedding_mean_backward_kernel);
}
