/* Importer of NYU Depth V2 scene recognition as QMF prepares it: <root>/train/<class>/ and
 * <root>/test/<class>/ hold PNG files (found recursively, as torchvision's make_dataset does)
 * whose left half is the RGB image and right half the depth image. Classes are the folder
 * names under train/ in byte order. A seeded permutation moves a share of train to valid. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/common.h"
#include "core/rng.h"
#include "datasets/import_images.h"
#include "datasets/import_util.h"

/* Lists the names in folder `path`, sorted, without hidden names (".", "..", ".DS_Store") and
 * "__MACOSX", the folder of resource forks that macOS's zip adds to an archive. */
static int list_names(const char *path, StrList *out) {
    memset(out, 0, sizeof(*out));
    DIR *d = opendir(path);
    if (!d)
        return err_set("%s: cannot read the folder: %s", path, strerror(errno));
    for (struct dirent *e = readdir(d); e; e = readdir(d))
        if (e->d_name[0] != '.' && strcmp(e->d_name, "__MACOSX") != 0)
            strlist_push(out, xstrdup(e->d_name));
    closedir(d);
    if (out->count > 0)
        qsort(out->items, (size_t)out->count, sizeof(char *), compare_strings);
    return 0;
}

static int has_png_suffix(const char *name) {
    size_t n = strlen(name);
    return n > 4 && strcasecmp(name + n - 4, ".png") == 0;
}

/* Appends the PNG files under `rel` (relative to `root`), subfolders included, in sorted
 * order, as paths relative to `root`. */
static int collect_pngs(const char *root, const char *rel, StrList *out) {
    char *path = join_path(root, rel);
    StrList names;
    int rc = list_names(path, &names);
    for (int i = 0; i < names.count && rc == 0; i++) {
        char *child_rel = join_path(rel, names.items[i]);
        char *child = join_path(root, child_rel);
        if (is_dir(child)) {
            rc = collect_pngs(root, child_rel, out);
            free(child_rel);
        } else if (has_png_suffix(names.items[i])) {
            strlist_push(out, child_rel);
        } else {
            free(child_rel);
        }
        free(child);
    }
    strlist_free(&names);
    free(path);
    return rc;
}

/* The image files of the import: paths relative to the root, their class and split. */
typedef struct {
    StrList classes;
    StrList files;
    int32_t *class_of; /* [files.count] */
    uint8_t *split_of; /* [files.count] */
} NyudListing;

static void listing_free(NyudListing *l) {
    strlist_free(&l->classes);
    strlist_free(&l->files);
    free(l->class_of);
    free(l->split_of);
}

static int find_class(const StrList *classes, const char *name) {
    for (int c = 0; c < classes->count; c++)
        if (strcmp(classes->items[c], name) == 0)
            return c;
    return -1;
}

/* Adds the files of split folder `root`/`split` (train or test) to the listing. In train, each
 * subfolder becomes a class; in test, each subfolder must name a class of train. */
static int list_split(const char *root, const char *split, SplitId id, NyudListing *l) {
    char *folder = join_path(root, split);
    if (!is_dir(folder)) {
        err_set("%s: folder not found; an NYU Depth V2 root holds train/<class>/*.png and "
                "test/<class>/*.png",
                folder);
        free(folder);
        return -1;
    }
    StrList names;
    int rc = list_names(folder, &names);
    int folders = 0;
    for (int i = 0; i < names.count && rc == 0; i++) {
        char *class_dir = join_path(folder, names.items[i]);
        int dir = is_dir(class_dir);
        free(class_dir);
        if (!dir)
            continue;
        folders++;
        int c = find_class(&l->classes, names.items[i]);
        if (id == EUAR_SPLIT_TRAIN) {
            c = l->classes.count;
            strlist_push(&l->classes, xstrdup(names.items[i]));
        } else if (c < 0) {
            rc = err_set("%s/%s: class folder '%s' is not in %s/train; every test class needs "
                         "training images, so add them or remove the folder",
                         folder, names.items[i], names.items[i], root);
            break;
        }
        char *rel = join_path(split, names.items[i]);
        int before = l->files.count;
        rc = collect_pngs(root, rel, &l->files);
        if (rc == 0 && l->files.count == before)
            rc = err_set("%s/%s: empty class folder (no .png file); add its images or remove "
                         "the folder",
                         root, rel);
        free(rel);
        if (rc != 0)
            break;
        l->class_of = xrealloc(l->class_of, (size_t)l->files.count * sizeof(int32_t));
        l->split_of = xrealloc(l->split_of, (size_t)l->files.count);
        for (int k = before; k < l->files.count; k++) {
            l->class_of[k] = c;
            l->split_of[k] = (uint8_t)id;
        }
    }
    if (rc == 0 && folders == 0)
        rc = err_set("%s: no class folders; put each class's PNG files in %s/<class>/",
                     folder, folder);
    strlist_free(&names);
    free(folder);
    return rc;
}

/* Moves round(fraction * train) training samples, chosen by a permutation from `seed`, to
 * the valid split. */
static int cut_valid(uint8_t *split, int n, double fraction, uint64_t seed, const char *root) {
    int n_train = 0;
    for (int i = 0; i < n; i++)
        n_train += split[i] == EUAR_SPLIT_TRAIN;
    int n_valid = (int)floor(fraction * n_train + 0.5);
    if (n_valid < 1 || n_valid >= n_train)
        return err_set("%s/train: %d images with --valid-fraction %g give %d valid and %d "
                       "train images; each split needs at least one, so change the fraction "
                       "or add images",
                       root, n_train, fraction, n_valid, n_train - n_valid);
    int32_t *train_index = xmalloc((size_t)n_train * sizeof(int32_t));
    int32_t *perm = xmalloc((size_t)n_train * sizeof(int32_t));
    for (int i = 0, k = 0; i < n; i++)
        if (split[i] == EUAR_SPLIT_TRAIN)
            train_index[k++] = i;
    rng_permutation(rng_stream(seed, EUAR_RNG_SPLIT), 0, 0, perm, n_train);
    for (int j = 0; j < n_valid; j++)
        split[train_index[perm[j]]] = EUAR_SPLIT_VALID;
    free(perm);
    free(train_index);
    return 0;
}

static void set_image_modality(Modality *m, const char *name, int channels, int size, int n) {
    snprintf(m->name, sizeof(m->name), "%s", name);
    m->kind = EUAR_KIND_IMAGE;
    m->c = channels;
    m->h = size;
    m->w = size;
    m->pixels = xmalloc((size_t)n * (size_t)channels * (size_t)size * (size_t)size);
    m->available = xmalloc((size_t)n);
    memset(m->available, 1, (size_t)n);
}

/* Decodes one side-by-side image and writes its RGB half to `rgb` [3, S, S] and the mean of
 * the three channels of its depth half to `depth` [1, S, S]. */
static int load_pair(const char *path, int size, uint8_t *rgb, uint8_t *depth) {
    RgbImage img;
    if (image_load_rgb(path, &img) != 0)
        return -1;
    if (img.w < 2 || img.w % 2 != 0) {
        free(img.rgb);
        return err_set("%s: image width %d is %s; each image holds RGB on the left half and "
                       "depth on the right half, so its width must be even and at least 2",
                       path, img.w, img.w < 2 ? "too small to split" : "odd");
    }
    int half = img.w / 2, stride = img.w * 3;
    image_resize_area(rgb, size, size, img.rgb, half, img.h, 3, stride);
    /* The depth half becomes one channel: the rounded mean of R, G and B, which is the grey
     * level itself when depth is stored as grey in an RGB file. */
    uint8_t *grey = xmalloc((size_t)half * (size_t)img.h);
    for (int y = 0; y < img.h; y++)
        for (int x = 0; x < half; x++) {
            const uint8_t *p = img.rgb + (size_t)y * stride + (size_t)(half + x) * 3;
            grey[(size_t)y * half + x] = (uint8_t)((p[0] + p[1] + p[2] + 1) / 3);
        }
    image_resize_area(depth, size, size, grey, half, img.h, 1, half);
    free(grey);
    free(img.rgb);
    return 0;
}

void nyud_import_defaults(NyudImportOptions *o) {
    o->size = IMPORT_DEFAULT_SIZE;
    o->seed = 1;
    o->valid_fraction = NYUD_DEFAULT_VALID_FRACTION;
    o->name = NULL;
}

static int build_dataset(Dataset *ds, const char *root, NyudListing *l,
                         const NyudImportOptions *o) {
    int n = l->files.count;
    memset(ds, 0, sizeof(*ds));
    snprintf(ds->name, sizeof(ds->name), "%s", o->name ? o->name : "nyud-v2");
    ds->task = EUAR_TASK_CLASSIFICATION;
    ds->num_classes = l->classes.count;
    ds->class_names = l->classes.items;
    memset(&l->classes, 0, sizeof(l->classes));
    ds->n = n;
    ds->ids = l->files.items;
    memset(&l->files, 0, sizeof(l->files));
    ds->classes = l->class_of;
    ds->split = l->split_of;
    l->class_of = NULL;
    l->split_of = NULL;
    if (ds->num_classes < 2)
        return err_set("%s/train: %d class folder; classification needs at least 2",
                       root, ds->num_classes);
    if (cut_valid(ds->split, n, o->valid_fraction, o->seed, root) != 0)
        return -1;

    ds->num_modalities = 2;
    set_image_modality(&ds->mod[0], "rgb", 3, o->size, n);
    set_image_modality(&ds->mod[1], "depth", 1, o->size, n);
    size_t plane = (size_t)o->size * (size_t)o->size;
    for (int i = 0; i < n; i++) {
        char *path = join_path(root, ds->ids[i]);
        int rc = load_pair(path, o->size, ds->mod[0].pixels + (size_t)i * 3 * plane,
                           ds->mod[1].pixels + (size_t)i * plane);
        free(path);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* Records the folders of `root` other than train/ and test/, which the import ignores. */
static int note_ignored_folders(const char *root, ImportSummary *s) {
    StrList names;
    if (list_names(root, &names) != 0)
        return -1;
    for (int i = 0; i < names.count; i++) {
        const char *name = names.items[i];
        char *path = join_path(root, name);
        int folder = is_dir(path);
        free(path);
        if (!folder || strcmp(name, "train") == 0 || strcmp(name, "test") == 0)
            continue;
        size_t used = strlen(s->ignored_names);
        snprintf(s->ignored_names + used, sizeof(s->ignored_names) - used, "%s%s",
                 s->ignored_folders ? ", " : "", name);
        s->ignored_folders++;
    }
    strlist_free(&names);
    return 0;
}

/* Counts the classes of train/ that have no test image. */
static void count_classes_without_test(const NyudListing *l, ImportSummary *s) {
    for (int c = 0; c < l->classes.count; c++) {
        int test = 0;
        for (int k = 0; k < l->files.count && !test; k++)
            test = l->class_of[k] == c && l->split_of[k] == EUAR_SPLIT_TEST;
        if (test)
            continue;
        if (s->classes_without_test++ == 0)
            snprintf(s->first_class_without_test, sizeof(s->first_class_without_test), "%s",
                     l->classes.items[c]);
    }
}

int nyud_import(const char *root, const char *out, const NyudImportOptions *o,
                ImportSummary *summary) {
    if (o->size < 1 || o->size > IMPORT_MAX_SIZE)
        return err_set("--size %d is out of range; use 1 to %d", o->size, IMPORT_MAX_SIZE);
    if (!(o->valid_fraction > 0 && o->valid_fraction < 1))
        return err_set("--valid-fraction %g is out of range; use a value in (0, 1)",
                       o->valid_fraction);
    if (!is_dir(root))
        return err_set("%s: folder not found; pass the folder that holds train/ and test/",
                       root);
    if ((o->name && import_check_name(o->name) != 0) || import_check_out(out) != 0)
        return -1;
    ImportSummary s;
    memset(&s, 0, sizeof(s));
    NyudListing l;
    memset(&l, 0, sizeof(l));
    int rc = note_ignored_folders(root, &s);
    if (rc == 0)
        rc = list_split(root, "train", EUAR_SPLIT_TRAIN, &l);
    if (rc == 0)
        rc = list_split(root, "test", EUAR_SPLIT_TEST, &l);
    if (rc == 0)
        count_classes_without_test(&l, &s);
    Dataset ds;
    memset(&ds, 0, sizeof(ds));
    if (rc == 0)
        rc = build_dataset(&ds, root, &l, o);
    listing_free(&l);
    if (rc == 0)
        rc = dataset_save_h5(out, &ds);
    if (rc == 0 && summary) {
        s.n = ds.n;
        s.num_classes = ds.num_classes;
        for (int k = 0; k < EUAR_SPLIT_COUNT; k++)
            s.split_counts[k] = dataset_split_count(&ds, (SplitId)k);
        *summary = s;
    }
    dataset_free(&ds);
    return rc;
}
