/* Import of CMU-MultimodalSDK computational sequences: each modality is aligned to the
 * segments of the label sequence and written in the euar-bench layout.
 *
 * The alignment follows the SDK's mmdataset.align() in mmsdk/mmdatasdk/dataset/dataset.py.
 * Label row i of video entry V is segment "V[i]", unless its duration is below CSD_EPSILON.
 * A modality row belongs to a segment when the two intervals overlap by more than
 * CSD_EPSILON seconds. The rows of a segment, in order of start time, become its steps. A
 * segment with n > T rows is averaged in T consecutive groups of near-equal size (group j
 * takes rows floor(j n / T) up to floor((j + 1) n / T) - 1), so the steps still cover the
 * whole segment, where the SDK's get_tensors() would cut it to seq_len rows. With T = 1 every
 * segment becomes the mean of its rows, like the SDK's average collapse function. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "datasets/dataset_internal.h"
#include "datasets/import_csd.h"
#include "datasets/import_util.h"

const char *const csd_modality_names[CSD_MODALITIES] = {"text", "audio", "vision"};
static const char *const option_names[CSD_MODALITIES] = {"--text", "--audio", "--vision"};

/* The rows of one video in one sequence, in order of start time. */
typedef struct {
    char *video;       /* NULL when nothing is loaded */
    int rows;
    double *intervals; /* [rows, 2] */
    double *features;  /* [rows, D], NULL when loaded without features */
} VideoRows;

/* One input sequence with its entries indexed by video id. */
typedef struct {
    CsdFile file;
    char **videos;     /* [num_entries] video id of each entry */
    int *by_video;     /* entry indices sorted by video id, then name */
    VideoRows cache;
} Source;

typedef struct {
    int entry, row;
    int aligned; /* the entry is one already aligned segment "<video>[<k>]" of one row */
    uint8_t split;
    float label;
    double start, end;
    int count[CSD_MODALITIES]; /* rows of the segment in each modality */
} Segment;

/* Writes the sample id of segment `s` of label entry `entry`: "<entry>[<row>]" as the SDK's
 * align() names it, or the entry name itself when the entry is one aligned segment. */
static void segment_id(char *buf, size_t cap, const char *entry, const Segment *s) {
    if (s->aligned)
        snprintf(buf, cap, "%s", entry);
    else
        snprintf(buf, cap, "%s[%d]", entry, s->row);
}

/* Video id of an entry: its name up to the first '[' (already aligned entries are named
 * "<video>[<k>]"). */
static char *video_of(const char *entry) {
    size_t len = strcspn(entry, "[");
    char *v = xmalloc(len + 1);
    memcpy(v, entry, len);
    v[len] = '\0';
    return v;
}

static const Source *sort_source; /* qsort has no context argument */

static int compare_by_video(const void *a, const void *b) {
    int ea = *(const int *)a, eb = *(const int *)b;
    int c = strcmp(sort_source->videos[ea], sort_source->videos[eb]);
    return c != 0 ? c : ea - eb;
}

static int source_open(Source *s, const char *path, const char *option) {
    memset(s, 0, sizeof(*s));
    if (csd_open(&s->file, path, option) != 0)
        return -1;
    int n = s->file.num_entries;
    s->videos = xmalloc((size_t)n * sizeof(char *));
    s->by_video = xmalloc((size_t)n * sizeof(int));
    for (int e = 0; e < n; e++) {
        s->videos[e] = video_of(s->file.entries[e]);
        s->by_video[e] = e;
    }
    sort_source = s;
    qsort(s->by_video, (size_t)n, sizeof(int), compare_by_video);
    return 0;
}

static void rows_clear(VideoRows *v) {
    free(v->video);
    free(v->intervals);
    free(v->features);
    memset(v, 0, sizeof(*v));
}

static void source_close(Source *s) {
    for (int e = 0; e < s->file.num_entries; e++)
        free(s->videos[e]);
    free(s->videos);
    free(s->by_video);
    rows_clear(&s->cache);
    csd_close(&s->file);
}

static const double *sort_intervals;

static int compare_by_start(const void *a, const void *b) {
    int ra = *(const int *)a, rb = *(const int *)b;
    double sa = sort_intervals[2 * ra], sb = sort_intervals[2 * rb];
    if (sa != sb)
        return sa < sb ? -1 : 1;
    return ra - rb; /* stable: rows that start together keep their stored order */
}

/* Loads the rows of every entry of `video` into s->cache, sorted by start time. A video
 * without entries gets 0 rows. */
static int source_load(Source *s, const char *video, int with_features) {
    VideoRows *c = &s->cache;
    if (c->video && strcmp(c->video, video) == 0 && (c->features || !with_features))
        return 0;
    rows_clear(c);
    int n = s->file.num_entries, lo = 0, hi = n;
    while (lo < hi) { /* first entry whose video id is >= video */
        int mid = lo + (hi - lo) / 2;
        if (strcmp(s->videos[s->by_video[mid]], video) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t d = (size_t)s->file.dim;
    int rows = 0;
    double *iv = NULL, *ft = NULL;
    for (int k = lo; k < n && strcmp(s->videos[s->by_video[k]], video) == 0; k++) {
        int r;
        double *part_iv, *part_ft = NULL;
        if (csd_read_entry(&s->file, s->by_video[k], &r, &part_iv,
                           with_features ? &part_ft : NULL) != 0) {
            free(iv);
            free(ft);
            return -1;
        }
        iv = xrealloc(iv, (size_t)(rows + r) * 2 * sizeof(double) + sizeof(double));
        memcpy(iv + (size_t)rows * 2, part_iv, (size_t)r * 2 * sizeof(double));
        if (with_features) {
            ft = xrealloc(ft, (size_t)(rows + r) * d * sizeof(double) + sizeof(double));
            memcpy(ft + (size_t)rows * d, part_ft, (size_t)r * d * sizeof(double));
        }
        free(part_iv);
        free(part_ft);
        rows += r;
    }

    int *order = xmalloc((size_t)EUAR_MAX(rows, 1) * sizeof(int));
    for (int r = 0; r < rows; r++)
        order[r] = r;
    sort_intervals = iv;
    qsort(order, (size_t)rows, sizeof(int), compare_by_start);
    c->intervals = xmalloc((size_t)EUAR_MAX(rows, 1) * 2 * sizeof(double));
    if (with_features)
        c->features = xmalloc((size_t)EUAR_MAX(rows, 1) * d * sizeof(double));
    for (int r = 0; r < rows; r++) {
        memcpy(c->intervals + 2 * (size_t)r, iv + 2 * (size_t)order[r], 2 * sizeof(double));
        if (with_features)
            memcpy(c->features + (size_t)r * d, ft + (size_t)order[r] * d, d * sizeof(double));
    }
    free(order);
    free(iv);
    free(ft);
    c->rows = rows;
    c->video = xstrdup(video);
    return 0;
}

/* Writes the indices of the rows of `v` that overlap [start, end] by more than CSD_EPSILON
 * into `out` (at least v->rows entries) and returns their count. */
static int overlapping_rows(const VideoRows *v, double start, double end, int *out) {
    int n = 0;
    for (int r = 0; r < v->rows; r++) {
        double lo = fmax(v->intervals[2 * r], start), hi = fmin(v->intervals[2 * r + 1], end);
        if (hi - lo > CSD_EPSILON) {
            if (out)
                out[n] = r;
            n++;
        }
    }
    return n;
}

/* Rows [*first, *last) of n rows feed step j of t: near-equal groups in order. */
static void bin_bounds(int n, int t, int j, int *first, int *last) {
    *first = (int)((long long)j * n / t);
    *last = (int)((long long)(j + 1) * n / t);
}

static int row_is_finite(const VideoRows *v, int row, int d) {
    const double *x = v->features + (size_t)row * (size_t)d;
    for (int k = 0; k < d; k++)
        if (!isfinite(x[k]))
            return 0;
    return 1;
}

/* Writes the mean of rows idx[first..last) of `v` to `step` [D], summing in `sum` [D]. With
 * `skip_nonfinite`, rows with a NaN or Inf value are left out and added to *skipped, unless
 * every row of the group has one: then the plain mean is kept, non-finite. */
static void average_rows(float *step, double *sum, const VideoRows *v, const int *idx,
                         int first, int last, int d, int skip_nonfinite, size_t *skipped) {
    int used = 0;
    memset(sum, 0, (size_t)d * sizeof(double));
    for (int r = first; r < last; r++) {
        if (skip_nonfinite && !row_is_finite(v, idx[r], d))
            continue;
        const double *x = v->features + (size_t)idx[r] * (size_t)d;
        for (int k = 0; k < d; k++)
            sum[k] += x[k];
        used++;
    }
    if (used == 0) {
        for (int r = first; r < last; r++)
            for (int k = 0; k < d; k++)
                sum[k] += v->features[(size_t)idx[r] * (size_t)d + (size_t)k];
        used = last - first;
    } else {
        *skipped += (size_t)(last - first - used);
    }
    for (int k = 0; k < d; k++)
        step[k] = (float)(sum[k] / used);
}

/* Fills one sample [T, D] from the rows `idx[0..n)` of `v`: row by row when n <= T, else
 * averaged in T groups (see average_rows()); steps from min(n, T) on are 0. Returns the
 * count of non-finite values written and adds the rows left out to *skipped. */
static size_t fill_sample(float *out, const VideoRows *v, const int *idx, int n, int t, int d,
                          int skip_nonfinite, size_t *skipped) {
    size_t bad = 0;
    double *sum = xmalloc((size_t)d * sizeof(double));
    memset(out, 0, (size_t)t * (size_t)d * sizeof(float));
    for (int j = 0; j < EUAR_MIN(n, t); j++) {
        int first = j, last = j + 1;
        if (n > t)
            bin_bounds(n, t, j, &first, &last);
        float *step = out + (size_t)j * (size_t)d;
        average_rows(step, sum, v, idx, first, last, d, skip_nonfinite && n > t, skipped);
        for (int k = 0; k < d; k++)
            bad += !isfinite(step[k]);
    }
    free(sum);
    return bad;
}

typedef struct {
    const CsdImportOptions *opt;
    CsdImportReport *rep;
    CsdFolds folds;
    Source labels;
    Source mods[CSD_MODALITIES];
    int present[CSD_MODALITIES];
    Segment *segs;
    int num_segs, cap_segs;
    int *idx; /* scratch row indices */
    int idx_cap;
} Import;

static int *scratch_indices(Import *im, int rows) {
    if (rows > im->idx_cap) {
        im->idx_cap = rows;
        im->idx = xrealloc(im->idx, (size_t)rows * sizeof(int));
    }
    return im->idx;
}

/* Counts the rows of segment `s` in every modality. Returns 1 when some modality has none,
 * 0 when all have rows, and -1 with err_set() on a read error or, with --strict, on the
 * first segment without rows. */
static int count_modality_rows(Import *im, Segment *s, const char *video) {
    const char *entry = im->labels.file.entries[s->entry];
    int missing = 0;
    for (int m = 0; m < CSD_MODALITIES; m++) {
        if (!im->present[m])
            continue;
        if (source_load(&im->mods[m], video, 0) != 0)
            return -1;
        s->count[m] = overlapping_rows(&im->mods[m].cache, s->start, s->end, NULL);
        if (s->count[m] > 0)
            continue;
        missing = 1;
        char id[160];
        segment_id(id, sizeof(id), entry, s);
        if (im->rep->missing[m]++ == 0)
            snprintf(im->rep->first_missing[m], sizeof(im->rep->first_missing[m]), "%s", id);
        if (im->opt->strict) {
            char why[160];
            if (im->mods[m].cache.rows == 0)
                snprintf(why, sizeof(why), "video '%s' has no entry in /%s/data", video,
                         im->mods[m].file.root);
            else
                snprintf(why, sizeof(why), "none of the %d rows of video '%s' overlaps it",
                         im->mods[m].cache.rows, video);
            return err_set("%s %s: label segment '%s' ([%.3f, %.3f] s) has no row: %s. "
                           "Without --strict such segments are dropped and counted",
                           option_names[m], im->mods[m].file.path, id, s->start, s->end, why);
        }
    }
    return missing;
}

/* Counts a segment of a video in no fold. `last_video` is the video of the previous such
 * segment, so that consecutive segments of one video count it once. */
static void count_no_fold(CsdImportReport *rep, const char *video, char **last_video) {
    rep->no_fold_segments++;
    if (*last_video && strcmp(*last_video, video) == 0)
        return;
    if (rep->no_fold_videos++ == 0)
        snprintf(rep->first_no_fold, sizeof(rep->first_no_fold), "%s", video);
    free(*last_video);
    *last_video = xstrdup(video);
}

/* Appends segment `s` to the segments to write. */
static void keep_segment(Import *im, const Segment *s) {
    if (im->num_segs == im->cap_segs) {
        im->cap_segs = im->cap_segs ? 2 * im->cap_segs : 1024;
        im->segs = xrealloc(im->segs, (size_t)im->cap_segs * sizeof(Segment));
    }
    im->segs[im->num_segs++] = *s;
}

/* Handles row i of label entry e (`rows` rows, intervals `iv`, label features `ft`): skips
 * or drops it with a count, or keeps it as a segment. Returns 0 or -1 with err_set(). */
static int take_label_row(Import *im, int e, int i, int rows, const double *iv,
                          const double *ft, char **last_no_fold) {
    CsdImportReport *rep = im->rep;
    const Source *lab = &im->labels;
    const char *entry = lab->file.entries[e], *video = lab->videos[e];
    rep->label_segments++;
    Segment s = {.entry = e, .row = i, .start = iv[2 * i], .end = iv[2 * i + 1]};
    s.aligned = rows == 1 && strchr(entry, '[') != NULL;
    if (s.end - s.start < CSD_EPSILON) {
        rep->zero_length++;
        return 0;
    }
    double y = ft[(size_t)i * (size_t)lab->file.dim];
    if (!isfinite(y))
        return err_set("--labels %s: /%s/data/%s/features: row %d has sentiment %g; labels "
                       "must be finite, so fix or remove that row",
                       lab->file.path, lab->file.root, entry, i, y);
    int split = csd_folds_find(&im->folds, video);
    if (split < 0) {
        count_no_fold(rep, video, last_no_fold);
        return 0;
    }
    s.split = (uint8_t)split;
    if (y < -EUAR_LABEL_MAX || y > EUAR_LABEL_MAX) {
        rep->clipped_labels++;
        rep->clipped_min = fmin(rep->clipped_min, y);
        rep->clipped_max = fmax(rep->clipped_max, y);
    }
    s.label = (float)fmin(fmax(y, -EUAR_LABEL_MAX), EUAR_LABEL_MAX);

    int missing = count_modality_rows(im, &s, video);
    if (missing < 0)
        return -1;
    if (missing)
        rep->dropped_missing++;
    else
        keep_segment(im, &s);
    return 0;
}

/* Pass 1: reads every label row and keeps the segments that every modality covers. */
static int collect_segments(Import *im) {
    char *last_no_fold = NULL;
    im->rep->clipped_min = INFINITY;
    im->rep->clipped_max = -INFINITY;
    int rc = 0;
    for (int e = 0; e < im->labels.file.num_entries && rc == 0; e++) {
        int rows;
        double *iv, *ft;
        if (csd_read_entry(&im->labels.file, e, &rows, &iv, &ft) != 0) {
            rc = -1;
            break;
        }
        for (int i = 0; i < rows && rc == 0; i++)
            rc = take_label_row(im, e, i, rows, iv, ft, &last_no_fold);
        free(iv);
        free(ft);
    }
    free(last_no_fold);
    return rc;
}

/* Checks what pass 1 kept before anything is written. */
static int check_segments(Import *im) {
    CsdImportReport *rep = im->rep;
    if (im->num_segs == 0)
        return err_set("--labels %s: no segment remains after matching %d label rows to the "
                       "folds '%s' and the modalities (%d in no fold, %d without rows in a "
                       "modality); check that the files and --folds belong to the same dataset",
                       im->labels.file.path, rep->label_segments, im->opt->folds,
                       rep->no_fold_segments, rep->dropped_missing);
    for (int i = 0; i < im->num_segs; i++)
        rep->split_samples[im->segs[i].split]++;
    for (int s = 0; s < EUAR_SPLIT_COUNT; s++)
        if (rep->split_samples[s] == 0)
            return err_set("--folds %s: no segment of the %s split remains (train %d, valid "
                           "%d, test %d); check that --folds matches the label sequence",
                           im->opt->folds, split_name((SplitId)s), rep->split_samples[0],
                           rep->split_samples[1], rep->split_samples[2]);
    return 0;
}

/* Builds the in-memory description of the output: ids, splits, labels, and per modality
 * lengths and availability, with the feature data left to pass 2. */
static void build_header(Import *im, Dataset *ds) {
    memset(ds, 0, sizeof(*ds));
    snprintf(ds->name, sizeof(ds->name), "%s", im->rep->name);
    ds->task = EUAR_TASK_REGRESSION;
    ds->n = im->num_segs;
    ds->ids = xmalloc((size_t)ds->n * sizeof(char *));
    ds->split = xmalloc((size_t)ds->n);
    ds->labels = xmalloc((size_t)ds->n * sizeof(float));
    for (int i = 0; i < ds->n; i++) {
        const Segment *s = &im->segs[i];
        const char *entry = im->labels.file.entries[s->entry];
        size_t len = strlen(entry) + 16;
        ds->ids[i] = xmalloc(len);
        segment_id(ds->ids[i], len, entry, s);
        ds->split[i] = s->split;
        ds->labels[i] = s->label;
    }
    for (int m = 0; m < CSD_MODALITIES; m++) {
        if (!im->present[m])
            continue;
        Modality *md = &ds->mod[ds->num_modalities++];
        snprintf(md->name, sizeof(md->name), "%s", csd_modality_names[m]);
        md->kind = EUAR_KIND_FEATURES;
        md->t = im->opt->steps;
        md->d = im->mods[m].file.dim;
        md->lengths = xmalloc((size_t)ds->n * sizeof(int32_t));
        md->available = xmalloc((size_t)ds->n);
        for (int i = 0; i < ds->n; i++) {
            md->lengths[i] = EUAR_MIN(im->segs[i].count[m], md->t);
            md->available[i] = 1;
            im->rep->averaged[m] += im->segs[i].count[m] > md->t;
        }
        im->rep->dims[m] = md->d;
    }
}

/* Pass 2: aligns and writes the features of modality m (output index k) in chunks. */
static int write_modality(Import *im, H5Writer *w, const Dataset *ds, int m, int k) {
    Source *src = &im->mods[m];
    const Modality *md = &ds->mod[k];
    size_t per_sample = (size_t)md->t * (size_t)md->d;
    float *block = xmalloc((size_t)EUAR_CHUNK_SAMPLES * per_sample * sizeof(float));
    int rc = 0;
    for (int first = 0; first < ds->n && rc == 0; first += EUAR_CHUNK_SAMPLES) {
        int count = EUAR_MIN(EUAR_CHUNK_SAMPLES, ds->n - first);
        for (int i = 0; i < count && rc == 0; i++) {
            const Segment *s = &im->segs[first + i];
            if (source_load(src, im->labels.videos[s->entry], 1) != 0) {
                rc = -1;
                break;
            }
            int *idx = scratch_indices(im, src->cache.rows);
            int n = overlapping_rows(&src->cache, s->start, s->end, idx);
            EUAR_ASSERT(n == s->count[m]);
            size_t bad = fill_sample(block + (size_t)i * per_sample, &src->cache, idx, n, md->t,
                                     md->d, im->opt->skip_nonfinite_rows,
                                     &im->rep->skipped_rows[m]);
            im->rep->nonfinite[m] += bad;
            im->rep->nonfinite_samples[m] += bad > 0;
        }
        if (rc == 0)
            rc = h5_writer_write_rows(w, ds, k, first, count, block);
    }
    free(block);
    rows_clear(&src->cache); /* frees the features of the last video */
    return rc;
}

/* Rejects an output path that is one of the inputs (the rename would replace it), a
 * modality file that is also the label file (the label would leak into the input), and two
 * modalities read from one file. Files are compared by device and inode, so two spellings of
 * one path are caught. */
static int check_paths(const CsdImportOptions *opt) {
    if (import_check_out(opt->out_path) != 0)
        return -1;
    const char *inputs[CSD_MODALITIES + 1] = {opt->modality_paths[0], opt->modality_paths[1],
                                              opt->modality_paths[2], opt->labels_path};
    for (int i = 0; i < CSD_MODALITIES + 1; i++) {
        if (!inputs[i])
            continue;
        if (same_file(inputs[i], opt->out_path))
            return err_set("--out %s is also an input file; write the dataset to a new file",
                           opt->out_path);
        for (int j = i + 1; j < CSD_MODALITIES + 1; j++) {
            if (!inputs[j] || !same_file(inputs[i], inputs[j]))
                continue;
            const char *other = j == CSD_MODALITIES ? "--labels" : option_names[j];
            if (j == CSD_MODALITIES)
                return err_set("%s %s and --labels %s are the same file, so the label would be "
                               "an input feature; pass the label sequence only as --labels",
                               option_names[i], inputs[i], inputs[j]);
            return err_set("%s %s and %s %s are the same file; give each modality its own "
                           "computational sequence",
                           option_names[i], inputs[i], other, inputs[j]);
        }
    }
    return 0;
}

/* Picks the dataset name: --name, "cmu-mosi"/"cmu-mosei" for standard folds, else the
 * output file name without folder and extension. */
static int choose_name(const CsdImportOptions *opt, char name[64]) {
    if (opt->name) {
        if (import_check_name(opt->name) != 0)
            return -1;
        snprintf(name, 64, "%s", opt->name);
        return 0;
    }
    if (strcmp(opt->folds, "mosi") == 0 || strcmp(opt->folds, "mosei") == 0) {
        snprintf(name, 64, "cmu-%s", opt->folds);
        return 0;
    }
    const char *base = strrchr(opt->out_path, '/');
    base = base ? base + 1 : opt->out_path;
    size_t len = strcspn(base, ".");
    snprintf(name, 64, "%.*s", (int)EUAR_MIN(len, 63), len > 0 ? base : "csd-import");
    return 0;
}

static int check_options(const CsdImportOptions *opt) {
    int any = 0;
    for (int m = 0; m < CSD_MODALITIES; m++)
        any |= opt->modality_paths[m] != NULL;
    if (!any)
        return err_set("no modality given; pass at least one of --text, --audio, --vision");
    if (!opt->labels_path || !opt->folds || !opt->out_path)
        return err_set("--labels, --folds and --out are required");
    if (opt->steps < 1 || opt->steps > CSD_MAX_STEPS)
        return err_set("--steps %d is invalid; use 1 to %d steps", opt->steps, CSD_MAX_STEPS);
    return 0;
}

/* Opens every input; returns 0 or -1 with the first error. */
static int open_inputs(Import *im) {
    const CsdImportOptions *opt = im->opt;
    if (csd_folds_load(opt->folds, &im->folds) != 0 ||
        source_open(&im->labels, opt->labels_path, "--labels") != 0)
        return -1;
    int width = im->labels.file.dim;
    if (width != 1 && width != 7)
        return err_set("--labels %s: the features of /%s/data have %d columns; a label "
                       "sequence has 1 column (CMU-MOSI opinion labels) or 7 (CMU-MOSEI "
                       "labels, sentiment first), so pass feature sequences as --text, "
                       "--audio or --vision and the labels .csd as --labels",
                       opt->labels_path, im->labels.file.root, width);
    for (int m = 0; m < CSD_MODALITIES; m++) {
        if (!opt->modality_paths[m])
            continue;
        if (source_open(&im->mods[m], opt->modality_paths[m], option_names[m]) != 0)
            return -1;
        im->present[m] = 1;
    }
    return 0;
}

static char *const *sort_ids; /* qsort has no context argument */

static int compare_ids(const void *a, const void *b) {
    int ia = *(const int *)a, ib = *(const int *)b;
    int c = strcmp(sort_ids[ia], sort_ids[ib]);
    return c != 0 ? c : ia - ib; /* equal ids keep sample order, so messages are stable */
}

/* Rejects two label entries that give the same sample id, such as an entry "v" and an
 * already aligned entry "v[0]", each of one row. */
static int check_unique_ids(const Import *im, const Dataset *ds) {
    int *order = xmalloc((size_t)ds->n * sizeof(int));
    for (int i = 0; i < ds->n; i++)
        order[i] = i;
    sort_ids = ds->ids;
    qsort(order, (size_t)ds->n, sizeof(int), compare_ids);
    int rc = 0;
    for (int k = 1; k < ds->n && rc == 0; k++) {
        int a = order[k - 1], b = order[k];
        if (strcmp(ds->ids[a], ds->ids[b]) == 0)
            rc = err_set("--labels %s: entries '%s' and '%s' both give the sample id '%s'; "
                         "rename one of them so that every sample id is unique",
                         im->labels.file.path, im->labels.file.entries[im->segs[a].entry],
                         im->labels.file.entries[im->segs[b].entry], ds->ids[a]);
    }
    free(order);
    return rc;
}

static int write_output(Import *im) {
    Dataset ds;
    build_header(im, &ds);
    const char *where = im->opt->out_path;
    int rc = check_unique_ids(im, &ds);
    if (rc == 0)
        rc = check_sample_ids(where, ds.ids, ds.n);
    if (rc == 0)
        rc = check_labels(where, &ds);
    H5Writer w;
    if (rc == 0)
        rc = h5_writer_open(&w, where);
    if (rc == 0) {
        rc = h5_writer_write_layout(&w, &ds);
        for (int m = 0, k = 0; m < CSD_MODALITIES && rc == 0; m++)
            if (im->present[m])
                rc = write_modality(im, &w, &ds, m, k++);
        if (rc == 0)
            rc = h5_writer_commit(&w);
        else
            h5_writer_abort(&w);
    }
    im->rep->samples = ds.n;
    dataset_free(&ds);
    return rc;
}

int csd_import(const CsdImportOptions *opt, CsdImportReport *report) {
    memset(report, 0, sizeof(*report));
    if (check_options(opt) != 0 || check_paths(opt) != 0 ||
        choose_name(opt, report->name) != 0)
        return -1;
    Import im;
    memset(&im, 0, sizeof(im));
    im.opt = opt;
    im.rep = report;
    int rc = open_inputs(&im);
    if (rc == 0)
        rc = collect_segments(&im);
    if (rc == 0)
        rc = check_segments(&im);
    if (rc == 0)
        rc = write_output(&im);

    csd_folds_free(&im.folds);
    if (im.labels.file.entries || im.labels.videos)
        source_close(&im.labels);
    for (int m = 0; m < CSD_MODALITIES; m++)
        if (im.mods[m].videos)
            source_close(&im.mods[m]);
    free(im.segs);
    free(im.idx);
    return rc;
}
