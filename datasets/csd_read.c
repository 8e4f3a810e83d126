/* Reader of CMU-MultimodalSDK computational sequences. The SDK writes one top-level group
 * named after the sequence, with `data/<entry>/features` [n, D] and
 * `data/<entry>/intervals` [n, 2] (start and end in seconds) per entry, and
 * `metadata/<key>` JSON strings (write_CSD in mmsdk/mmdatasdk/computational_sequence/
 * file_ops.py). Only the data group is read here: the metadata does not change the import. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/common.h"
#include "datasets/dataset_internal.h"
#include "datasets/import_csd.h"

typedef struct {
    int count;
    char **names;
    int groups; /* children that are groups */
    char *first_group;
} Children;

static herr_t collect_child(hid_t loc, const char *name, const H5L_info_t *info, void *data) {
    Children *c = data;
    c->names = xrealloc(c->names, (size_t)(c->count + 1) * sizeof(char *));
    c->names[c->count++] = xstrdup(name);
    /* Opening the object is the type test that works in HDF5 1.10 and later alike. */
    hid_t obj = H5Oopen(loc, name, H5P_DEFAULT);
    if (obj >= 0) {
        if (H5Iget_type(obj) == H5I_GROUP && c->groups++ == 0)
            c->first_group = c->names[c->count - 1];
        H5Oclose(obj);
    }
    return 0;
}

/* Lists the links of group `g` in name order. Returns 0 or -1. */
static int list_children(hid_t g, Children *c) {
    memset(c, 0, sizeof(*c));
    hsize_t idx = 0;
    return H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_child, c) < 0 ? -1 : 0;
}

static void free_children(Children *c) {
    for (int i = 0; i < c->count; i++)
        free(c->names[i]);
    free(c->names);
    memset(c, 0, sizeof(*c));
}

/* Explains why HDF5 cannot open `path`: an empty file, a web page saved under the .csd name
 * (what a failed download leaves), or a truncated or foreign file. */
static int open_error(const char *path, const char *option) {
    char head[256] = {0};
    FILE *fp = fopen(path, "rb");
    size_t got = fp ? fread(head, 1, sizeof(head) - 1, fp) : 0;
    if (fp)
        fclose(fp);
    if (got == 0)
        return err_set("%s %s: the file is empty; download the computational sequence again",
                       option, path);
    const char *p = head;
    if ((unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB && (unsigned char)p[2] == 0xBF)
        p += 3; /* UTF-8 byte order mark */
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    if (strncasecmp(p, "<!doctype html", 14) == 0 || strncasecmp(p, "<html", 5) == 0 ||
        strncasecmp(p, "<?xml", 5) == 0 || strncasecmp(p, "<head", 5) == 0)
        return err_set("%s %s: the file is an HTML page, not HDF5 (a download that returned "
                       "an error page); download the .csd file again and check that it "
                       "starts with the bytes \\x89HDF",
                       option, path);
    char why[256], detail[300] = "";
    h5_last_error(why, sizeof(why));
    if (why[0])
        snprintf(detail, sizeof(detail), " (HDF5: %s)", why);
    return err_set("%s %s: not an HDF5 file or truncated%s; download the .csd file again and "
                   "compare its size with the source",
                   option, path, detail);
}

/* Checks that dataset `name` of entry `entry` has rank 2 and returns its shape. */
static int entry_shape(const CsdFile *f, const char *option, const char *entry, const char *name,
                       hsize_t dims[2], H5T_class_t *cls) {
    char rel[512];
    snprintf(rel, sizeof(rel), "%s/%s", entry, name);
    if (H5Lexists(f->data, rel, H5P_DEFAULT) <= 0)
        return err_set("%s %s: /%s/data/%s is missing; every entry of a computational "
                       "sequence needs 'features' and 'intervals'",
                       option, f->path, f->root, rel);
    hid_t d = H5Dopen2(f->data, rel, H5P_DEFAULT);
    if (d < 0)
        return err_set("%s %s: /%s/data/%s is not a dataset; every entry needs 'features' and "
                       "'intervals' arrays",
                       option, f->path, f->root, rel);
    hid_t space = H5Dget_space(d), type = H5Dget_type(d);
    int rank = H5Sget_simple_extent_ndims(space);
    if (rank == 2)
        H5Sget_simple_extent_dims(space, dims, NULL);
    *cls = H5Tget_class(type);
    H5Tclose(type);
    H5Sclose(space);
    H5Dclose(d);
    if (rank != 2)
        return err_set("%s %s: /%s/data/%s has rank %d; expected a two-dimensional array "
                       "(rows, width)",
                       option, f->path, f->root, rel, rank);
    return 0;
}

/* Checks one entry's arrays against the width of the first entry. */
static int check_entry(CsdFile *f, const char *option, int e) {
    const char *entry = f->entries[e];
    hsize_t fdims[2], idims[2];
    H5T_class_t fcls, icls;
    if (entry_shape(f, option, entry, "features", fdims, &fcls) != 0 ||
        entry_shape(f, option, entry, "intervals", idims, &icls) != 0)
        return -1;

    if (fcls == H5T_STRING)
        return err_set("%s %s: /%s/data/%s/features stores strings (a word sequence such as "
                       "CMU_MOSI_TimestampedWords); import numeric word features instead, "
                       "for example GloVe vectors (CMU_MOSI_TimestampedWordVectors) or BERT "
                       "features as a computational sequence",
                       option, f->path, f->root, entry);
    if (fcls != H5T_FLOAT && fcls != H5T_INTEGER)
        return err_set("%s %s: /%s/data/%s/features has HDF5 type class %d; expected float32 "
                       "or float64 features",
                       option, f->path, f->root, entry, (int)fcls);
    if (icls != H5T_FLOAT && icls != H5T_INTEGER)
        return err_set("%s %s: /%s/data/%s/intervals has HDF5 type class %d; expected float "
                       "start and end times in seconds",
                       option, f->path, f->root, entry, (int)icls);
    if (idims[1] != 2)
        return err_set("%s %s: /%s/data/%s/intervals has shape [%llu, %llu]; expected "
                       "[rows, 2] (start, end)",
                       option, f->path, f->root, entry, (unsigned long long)idims[0],
                       (unsigned long long)idims[1]);

    if (idims[0] != fdims[0])
        return err_set("%s %s: /%s/data/%s: features has %llu rows but intervals has %llu; "
                       "each feature row needs one interval",
                       option, f->path, f->root, entry, (unsigned long long)fdims[0],
                       (unsigned long long)idims[0]);
    if (fdims[1] < 1 || fdims[1] > 1000000)
        return err_set("%s %s: /%s/data/%s/features has width %llu; expected 1 to 1000000",
                       option, f->path, f->root, entry, (unsigned long long)fdims[1]);

    if (e == 0)
        f->dim = (int)fdims[1];
    else if ((int)fdims[1] != f->dim)
        return err_set("%s %s: /%s/data/%s/features has width %llu but /%s/data/%s/features "
                       "has %d; every entry of a sequence needs the same feature width",
                       option, f->path, f->root, entry, (unsigned long long)fdims[1], f->root,
                       f->entries[0], f->dim);
    return 0;
}

/* Finds the only top-level group and its data group. */
static int open_root(CsdFile *f, const char *option) {
    Children top;
    if (list_children(f->file, &top) != 0) {
        free_children(&top);
        return err_set("%s %s: cannot list the top-level groups; the file may be damaged",
                       option, f->path);
    }
    if (top.groups != 1) {
        int n = top.groups;
        char first[160] = "";
        if (n > 1)
            snprintf(first, sizeof(first), " (the first is '%s')", top.first_group);
        free_children(&top);
        return err_set("%s %s: %d top-level groups%s; a computational sequence has exactly "
                       "one, named after the sequence",
                       option, f->path, n, first);
    }
    f->root = xstrdup(top.first_group);
    free_children(&top);
    char rel[512];
    snprintf(rel, sizeof(rel), "%s/data", f->root);
    if (H5Lexists(f->file, rel, H5P_DEFAULT) <= 0)
        return err_set("%s %s: /%s/data is missing; a computational sequence keeps its "
                       "entries in /<root>/data/<entry>",
                       option, f->path, f->root);
    f->data = H5Gopen2(f->file, rel, H5P_DEFAULT);
    if (f->data < 0)
        return err_set("%s %s: /%s/data is not a group", option, f->path, f->root);
    return 0;
}

int csd_open(CsdFile *f, const char *path, const char *option) {
    memset(f, 0, sizeof(*f));
    f->path = path;
    f->option = option;
    f->file = H5I_INVALID_HID;
    f->data = H5I_INVALID_HID;
    h5_silence_errors();
    struct stat st;
    if (stat(path, &st) != 0)
        return err_set("%s %s: %s; check the path", option, path,
                       errno == ENOENT ? "file not found" : strerror(errno));
    if (!S_ISREG(st.st_mode))
        return err_set("%s %s: not a regular file", option, path);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    f->file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (f->file < 0)
        return open_error(path, option);

    Children entries;
    int rc = open_root(f, option);
    if (rc == 0 && list_children(f->data, &entries) != 0) {
        free_children(&entries);
        rc = err_set("%s %s: cannot list /%s/data; the file may be damaged", option, path, f->root);
    } else if (rc == 0) {
        f->num_entries = entries.count;
        f->entries = entries.names;
        if (f->num_entries == 0)
            rc = err_set("%s %s: /%s/data has no entries; the sequence is empty", option, path,
                         f->root);
    }
    for (int e = 0; rc == 0 && e < f->num_entries; e++)
        rc = check_entry(f, option, e);
    if (rc != 0)
        csd_close(f);
    return rc;
}

/* Reads dataset `name` of entry `e` as doubles [rows, width]. */
static double *read_doubles(const CsdFile *f, int e, const char *name, size_t count) {
    char rel[512];
    snprintf(rel, sizeof(rel), "%s/%s", f->entries[e], name);
    double *out = xmalloc(EUAR_MAX(count, 1) * sizeof(double));
    hid_t d = H5Dopen2(f->data, rel, H5P_DEFAULT);
    herr_t rc = d < 0 ? -1 : H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out);
    if (d >= 0)
        H5Dclose(d);
    if (rc < 0) {
        char why[256];
        h5_last_error(why, sizeof(why));
        err_set("%s %s: /%s/data/%s: reading failed (HDF5: %s); the file may be truncated or "
                "damaged, download it again",
                f->option, f->path, f->root, rel, why[0] ? why : "no detail");
        free(out);
        return NULL;
    }
    return out;
}

int csd_read_entry(const CsdFile *f, int e, int *rows, double **intervals, double **features) {
    char rel[512];
    snprintf(rel, sizeof(rel), "%s/intervals", f->entries[e]);
    hid_t d = H5Dopen2(f->data, rel, H5P_DEFAULT);
    if (d < 0)
        return err_set("%s %s: /%s/data/%s cannot be opened", f->option, f->path, f->root,
                       rel);
    hsize_t dims[2] = {0, 0};
    hid_t space = H5Dget_space(d);
    H5Sget_simple_extent_dims(space, dims, NULL);
    H5Sclose(space);
    H5Dclose(d);
    int n = (int)dims[0];

    double *iv = read_doubles(f, e, "intervals", (size_t)n * 2);
    if (!iv)
        return -1;
    for (int i = 0; i < n; i++) {
        double start = iv[2 * i], end = iv[2 * i + 1];
        if (!isfinite(start) || !isfinite(end) || end < start) {
            err_set("%s %s: /%s/data/%s/intervals: row %d is [%g, %g]; an interval needs "
                    "finite start <= end in seconds",
                    f->option, f->path, f->root, f->entries[e], i, start, end);
            free(iv);
            return -1;
        }
    }

    if (features) {
        *features = read_doubles(f, e, "features", (size_t)n * (size_t)f->dim);
        if (!*features) {
            free(iv);
            return -1;
        }
    }
    *rows = n;
    *intervals = iv;
    return 0;
}

void csd_close(CsdFile *f) {
    if (f->data >= 0)
        H5Gclose(f->data);
    if (f->file >= 0)
        H5Fclose(f->file);
    for (int e = 0; e < f->num_entries; e++)
        free(f->entries[e]);
    free(f->entries);
    free(f->root);
    memset(f, 0, sizeof(*f));
    f->file = H5I_INVALID_HID;
    f->data = H5I_INVALID_HID;
}
