/* Image decoding (stb_image from Debian's libstb-dev) and area-averaging resize for the
 * image importers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <stb/stb_image.h>

#include "core/common.h"
#include "datasets/import_images.h"

int image_load_rgb(const char *path, RgbImage *img) {
    memset(img, 0, sizeof(*img));
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT)
            return err_set("%s: image file not found; check the path or restore the file", path);
        return err_set("%s: cannot open the image: %s", path, strerror(errno));
    }
    int channels_in_file = 0;
    img->rgb = stbi_load_from_file(f, &img->w, &img->h, &channels_in_file, 3);
    fclose(f);
    if (!img->rgb) {
        const char *why = stbi_failure_reason();
        return err_set("%s: not a readable image (stb_image: %s); the file is truncated, "
                       "corrupt or not a PNG/JPEG, so replace it with an intact copy",
                       path, why ? why : "no detail");
    }
    return 0;
}

/* Overlap, in units of 1/(sw*dw) of the axis, of source cell s with destination cell d:
 * source cell s spans [s*dw, (s+1)*dw) and destination cell d spans [d*sw, (d+1)*sw). */
static long cell_overlap(int s, int d, int sw, int dw) {
    long lo = EUAR_MAX((long)s * dw, (long)d * sw);
    long hi = EUAR_MIN((long)(s + 1) * dw, (long)(d + 1) * sw);
    return hi > lo ? hi - lo : 0;
}

void image_resize_area(uint8_t *dst, int dw, int dh, const uint8_t *src, int sw, int sh,
                       int channels, int stride) {
    EUAR_ASSERT(dw > 0 && dh > 0 && sw > 0 && sh > 0 && channels > 0);
    /* The horizontal pass: rows[(y*dw + x)*channels + c] is the overlap-weighted sum of
     * source row y over destination column x, at most sw*255. */
    uint64_t *rows = xcalloc((size_t)sh * (size_t)dw * (size_t)channels, sizeof(uint64_t));
    for (int x = 0; x < dw; x++) {
        int first = (int)((long)x * sw / dw);
        int last = (int)(((long)(x + 1) * sw - 1) / dw);
        for (int y = 0; y < sh; y++) {
            const uint8_t *row = src + (size_t)y * (size_t)stride;
            uint64_t *out = rows + ((size_t)y * dw + x) * channels;
            for (int s = first; s <= last; s++) {
                long weight = cell_overlap(s, x, sw, dw);
                for (int c = 0; c < channels; c++)
                    out[c] += (uint64_t)weight * row[(size_t)s * channels + c];
            }
        }
    }
    /* The vertical pass sums at most sw*sh*255 per pixel; the total weight is sw*sh. */
    uint64_t total = (uint64_t)sw * (uint64_t)sh;
    for (int y = 0; y < dh; y++) {
        int first = (int)((long)y * sh / dh);
        int last = (int)(((long)(y + 1) * sh - 1) / dh);
        for (int x = 0; x < dw; x++)
            for (int c = 0; c < channels; c++) {
                uint64_t sum = 0;
                for (int s = first; s <= last; s++)
                    sum += (uint64_t)cell_overlap(s, y, sh, dh) *
                           rows[((size_t)s * dw + x) * channels + c];
                dst[((size_t)c * dh + y) * dw + x] = (uint8_t)((2 * sum + total) / (2 * total));
            }
    }
    free(rows);
}
