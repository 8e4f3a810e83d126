/* HDF5 layout of a checkpoint. The root has the attributes format, format_version,
 * fingerprint, epoch, step, selected_epoch, best and time_s. The float32 datasets /value,
 * /adam_m, /adam_v and /best_params are [P], and the float64 /curve is [epochs_run, 10] with
 * the columns of curve_column. */
#include "checkpoint.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <hdf5.h>

#include "common.h"
#include "datasets/dataset_internal.h"

#define CURVE_COLUMNS 10
static const char *const curve_column[CURVE_COLUMNS] = {
    "epoch",      "train_loss",  "train_task",   "train_kl", "train_balance",
    "train_u",    "valid_loss",  "valid_metric", "ms",       "train_ms",
};

static void curve_to_row(const EpochRecord *e, double *row) {
    double values[CURVE_COLUMNS] = {e->epoch,   e->train_loss, e->train_task,   e->train_kl,
                                    e->train_balance, e->train_u, e->valid_loss,
                                    e->valid_metric, e->ms, e->train_ms};
    memcpy(row, values, sizeof(values));
}

static void curve_from_row(EpochRecord *e, const double *row) {
    e->epoch = (int)row[0];
    e->train_loss = row[1];
    e->train_task = row[2];
    e->train_kl = row[3];
    e->train_balance = row[4];
    e->train_u = row[5];
    e->valid_loss = row[6];
    e->valid_metric = row[7];
    e->ms = row[8];
    e->train_ms = row[9];
}

static int attr_write(hid_t file, const char *name, hid_t type, const void *value) {
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, type, value);
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(space);
    return rc < 0 ? -1 : 0;
}

static int array_write(hid_t file, const char *name, hid_t ftype, hid_t mtype, int rank,
                       const hsize_t *dims, const void *data) {
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(file, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = d < 0 ? -1 : H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    if (d >= 0)
        H5Dclose(d);
    H5Sclose(space);
    return rc < 0 ? -1 : 0;
}

/* Names the columns of /curve in its attribute "columns", for readers such as h5py. */
static int columns_write(hid_t file) {
    hid_t d = H5Dopen2(file, "curve", H5P_DEFAULT);
    if (d < 0)
        return -1;
    hid_t str = H5Tcopy(H5T_C_S1);
    H5Tset_size(str, H5T_VARIABLE);
    hsize_t n[1] = {CURVE_COLUMNS};
    hid_t space = H5Screate_simple(1, n, NULL);
    hid_t a = H5Acreate2(d, "columns", str, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, str, curve_column);
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(space);
    H5Tclose(str);
    H5Dclose(d);
    return rc < 0 ? -1 : 0;
}

/* Creates an HDF5 file in memory (the core driver without a backing store). */
static hid_t memory_file_create(void) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_core(fapl, (size_t)1 << 20, 0);
    hid_t file = H5Fcreate("euar-checkpoint-image", H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    return file;
}

/* Writes the checkpoint into an in-memory HDF5 file and returns its image (size in *len), or
 * NULL with err_set(). */
static void *checkpoint_image(const char *path, const Checkpoint *ck, size_t *len) {
    h5_silence_errors();
    hid_t file = memory_file_create();
    if (file < 0) {
        err_set("cannot write the checkpoint %s: HDF5 cannot create a file in memory", path);
        return NULL;
    }
    hid_t str = H5Tcopy(H5T_C_S1);
    H5Tset_size(str, H5T_VARIABLE);
    const char *format = EUAR_CHECKPOINT_FORMAT;
    int32_t version = EUAR_CHECKPOINT_VERSION, epoch = ck->epoch, step = ck->step;
    int32_t selected = ck->selected_epoch;
    int rc = attr_write(file, "format", str, &format);
    H5Tclose(str);
    rc |= attr_write(file, "format_version", H5T_STD_I32LE, &version);
    rc |= attr_write(file, "fingerprint", H5T_STD_U64LE, &ck->fingerprint);
    rc |= attr_write(file, "epoch", H5T_STD_I32LE, &epoch);
    rc |= attr_write(file, "step", H5T_STD_I32LE, &step);
    rc |= attr_write(file, "selected_epoch", H5T_STD_I32LE, &selected);
    rc |= attr_write(file, "best", H5T_IEEE_F64LE, &ck->best);
    rc |= attr_write(file, "time_s", H5T_IEEE_F64LE, &ck->time_s);
    hsize_t p[1] = {ck->num_params};
    const char *names[] = {"value", "adam_m", "adam_v", "best_params"};
    const float *arrays[] = {ck->value, ck->adam_m, ck->adam_v, ck->best_params};
    for (int i = 0; i < 4 && rc == 0; i++)
        rc |= array_write(file, names[i], H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, p, arrays[i]);
    double *rows = xcalloc((size_t)EUAR_MAX(ck->epochs_run, 1) * CURVE_COLUMNS, sizeof(double));
    for (int e = 0; e < ck->epochs_run; e++)
        curve_to_row(&ck->curve[e], rows + (size_t)e * CURVE_COLUMNS);
    hsize_t dims[2] = {(hsize_t)ck->epochs_run, CURVE_COLUMNS};
    if (rc == 0)
        rc |= array_write(file, "curve", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, dims, rows);
    free(rows);
    if (rc == 0)
        rc |= columns_write(file);
    ssize_t size = rc == 0 && H5Fflush(file, H5F_SCOPE_GLOBAL) >= 0
                       ? H5Fget_file_image(file, NULL, 0)
                       : -1;
    void *image = size > 0 ? xmalloc((size_t)size) : NULL;
    if (image && H5Fget_file_image(file, image, (size_t)size) != size) {
        free(image);
        image = NULL;
    }
    if (!image) {
        char why[256];
        h5_last_error(why, sizeof(why));
        err_set("cannot write the checkpoint %s: HDF5 failed in memory (%s)", path,
                why[0] ? why : "no detail");
    }
    H5Fclose(file);
    *len = (size_t)EUAR_MAX(size, 0);
    return image;
}

/* The file is built in memory and written by write_file_atomic(): HDF5 never writes to the
 * disk itself, since libhdf5 1.10.8 crashes at exit after a failed write of a file on disk
 * (a full disk or a file-size limit). */
int checkpoint_write(const char *path, const Checkpoint *ck) {
    size_t len = 0;
    void *image = checkpoint_image(path, ck, &len);
    if (!image)
        return -1;
    int rc = write_file_atomic(path, image, len);
    free(image);
    return rc;
}

/* Reads a scalar attribute converted to `mtype`. Returns 0, or -1 when it is missing or not
 * a scalar. */
static int attr_read(hid_t file, const char *name, hid_t mtype, void *out) {
    if (H5Aexists(file, name) <= 0)
        return -1;
    hid_t a = H5Aopen(file, name, H5P_DEFAULT);
    if (a < 0)
        return -1;
    hid_t space = H5Aget_space(a);
    int scalar = space >= 0 && H5Sget_simple_extent_npoints(space) == 1;
    if (space >= 0)
        H5Sclose(space);
    herr_t rc = scalar ? H5Aread(a, mtype, out) : -1;
    H5Aclose(a);
    return rc < 0 ? -1 : 0;
}

/* Copies the string attribute `name` (variable or fixed length) into buf. */
static int attr_read_string(hid_t file, const char *name, char *buf, size_t cap) {
    buf[0] = '\0';
    if (H5Aexists(file, name) <= 0)
        return -1;
    hid_t a = H5Aopen(file, name, H5P_DEFAULT);
    if (a < 0)
        return -1;
    hid_t type = H5Aget_type(a);
    int rc = -1;
    if (type >= 0 && H5Tget_class(type) == H5T_STRING) {
        if (H5Tis_variable_str(type) > 0) {
            hid_t mem = H5Tcopy(H5T_C_S1);
            H5Tset_size(mem, H5T_VARIABLE);
            char *value = NULL;
            if (H5Aread(a, mem, &value) >= 0 && value) {
                snprintf(buf, cap, "%s", value);
                H5free_memory(value);
                rc = 0;
            }
            H5Tclose(mem);
        } else {
            size_t size = H5Tget_size(type);
            char *value = xcalloc(size + 1, 1);
            if (size > 0 && H5Aread(a, type, value) >= 0) {
                snprintf(buf, cap, "%s", value);
                rc = 0;
            }
            free(value);
        }
    }
    if (type >= 0)
        H5Tclose(type);
    H5Aclose(a);
    return rc;
}

/* Writes "[d0, d1]" for the first `rank` (at most 2) dimensions. */
static void shape_text(const hsize_t *dims, int rank, char *buf, size_t cap) {
    if (rank == 1)
        snprintf(buf, cap, "[%llu]", (unsigned long long)dims[0]);
    else if (rank == 2)
        snprintf(buf, cap, "[%llu, %llu]", (unsigned long long)dims[0],
                 (unsigned long long)dims[1]);
    else
        snprintf(buf, cap, "of rank %d", rank);
}

/* Reads dataset `name` of rank `rank` and shape `dims` as `mtype` into out. */
static int array_read(hid_t file, const char *path, const char *name, hid_t mtype, int rank,
                      const hsize_t *dims, void *out) {
    if (H5Lexists(file, name, H5P_DEFAULT) <= 0)
        return err_set("checkpoint %s: dataset /%s is missing", path, name);
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    if (d < 0)
        return err_set("checkpoint %s: /%s is not a dataset", path, name);
    hid_t space = H5Dget_space(d);
    hsize_t got[2] = {0, 0};
    int got_rank = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    if (got_rank == rank)
        H5Sget_simple_extent_dims(space, got, NULL);
    if (space >= 0)
        H5Sclose(space);
    int same = got_rank == rank;
    for (int i = 0; same && i < rank; i++)
        same = got[i] == dims[i];
    if (!same) {
        H5Dclose(d);
        char got_text[64], want_text[64];
        shape_text(got, got_rank, got_text, sizeof(got_text));
        shape_text(dims, rank, want_text, sizeof(want_text));
        return err_set("checkpoint %s: /%s has shape %s, expected %s", path, name, got_text,
                       want_text);
    }
    herr_t rc = H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, out);
    H5Dclose(d);
    if (rc < 0)
        return err_set("checkpoint %s: cannot read /%s", path, name);
    return 0;
}

static int read_state(hid_t file, const char *path, uint64_t fingerprint, size_t num_params,
                      Checkpoint *ck) {
    char format[64];
    if (attr_read_string(file, "format", format, sizeof(format)) != 0 ||
        strcmp(format, EUAR_CHECKPOINT_FORMAT) != 0)
        return err_set("checkpoint %s: attribute 'format' is \"%s\", expected \"%s\"", path,
                       format, EUAR_CHECKPOINT_FORMAT);
    int32_t version = 0;
    if (attr_read(file, "format_version", H5T_NATIVE_INT32, &version) != 0)
        return err_set("checkpoint %s: attribute 'format_version' is missing", path);
    if (version < 1 || version > EUAR_CHECKPOINT_VERSION)
        return err_set("checkpoint %s has format version %d, and this build reads version %d",
                       path, (int)version, EUAR_CHECKPOINT_VERSION);
    if (attr_read(file, "fingerprint", H5T_NATIVE_UINT64, &ck->fingerprint) != 0)
        return err_set("checkpoint %s: attribute 'fingerprint' is missing", path);
    if (ck->fingerprint != fingerprint)
        return err_set("checkpoint %s belongs to another run (its model, settings, data or "
                       "noise differ)", path);
    int32_t epoch, step, selected;
    if (attr_read(file, "epoch", H5T_NATIVE_INT32, &epoch) != 0 ||
        attr_read(file, "step", H5T_NATIVE_INT32, &step) != 0 ||
        attr_read(file, "selected_epoch", H5T_NATIVE_INT32, &selected) != 0 ||
        attr_read(file, "best", H5T_NATIVE_DOUBLE, &ck->best) != 0 ||
        attr_read(file, "time_s", H5T_NATIVE_DOUBLE, &ck->time_s) != 0)
        return err_set("checkpoint %s: an attribute of epoch, step, selected_epoch, best or "
                       "time_s is missing", path);
    if (epoch < 1 || step < 0 || selected < 0 || selected > epoch)
        return err_set("checkpoint %s: epoch %d, step %d and selected_epoch %d are "
                       "inconsistent", path, (int)epoch, (int)step, (int)selected);
    ck->epoch = epoch;
    ck->step = step;
    ck->selected_epoch = selected;
    ck->num_params = num_params;
    hsize_t p[1] = {num_params};
    const char *names[] = {"value", "adam_m", "adam_v", "best_params"};
    float **arrays[] = {&ck->value, &ck->adam_m, &ck->adam_v, &ck->best_params};
    for (int i = 0; i < 4; i++) {
        *arrays[i] = xmalloc(sizeof(float) * EUAR_MAX(num_params, 1));
        if (array_read(file, path, names[i], H5T_NATIVE_FLOAT, 1, p, *arrays[i]) != 0)
            return -1;
    }
    hsize_t dims[2] = {(hsize_t)epoch, CURVE_COLUMNS};
    double *rows = xmalloc(sizeof(double) * (size_t)epoch * CURVE_COLUMNS);
    if (array_read(file, path, "curve", H5T_NATIVE_DOUBLE, 2, dims, rows) != 0) {
        free(rows);
        return -1;
    }
    ck->curve = xcalloc((size_t)epoch, sizeof(EpochRecord));
    ck->epochs_run = epoch;
    for (int e = 0; e < epoch; e++)
        curve_from_row(&ck->curve[e], rows + (size_t)e * CURVE_COLUMNS);
    free(rows);
    for (int e = 0; e < epoch; e++)
        if (ck->curve[e].epoch != e + 1)
            return err_set("checkpoint %s: /curve row %d is epoch %d, expected %d", path, e,
                           ck->curve[e].epoch, e + 1);
    return 0;
}

int checkpoint_read(const char *path, uint64_t fingerprint, size_t num_params, Checkpoint *ck) {
    memset(ck, 0, sizeof(*ck));
    struct stat st;
    if (stat(path, &st) != 0 && errno == ENOENT)
        return 0;
    h5_silence_errors();
    /* The signature check keeps HDF5 from parsing a file that is not HDF5 at all. */
    if (H5Fis_hdf5(path) <= 0)
        return err_set("checkpoint %s is not an HDF5 file or cannot be read; delete it to "
                       "start the run from epoch 1", path);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (file < 0)
        return err_set("cannot open the checkpoint %s; delete it to start the run from epoch 1",
                       path);
    int rc = read_state(file, path, fingerprint, num_params, ck);
    H5Fclose(file);
    if (rc != 0) {
        checkpoint_free(ck);
        char why[1024];
        snprintf(why, sizeof(why), "%s", err_get());
        return err_set("%s; delete it to start the run from epoch 1", why);
    }
    return 1;
}

void checkpoint_free(Checkpoint *ck) {
    free(ck->value);
    free(ck->adam_m);
    free(ck->adam_v);
    free(ck->best_params);
    free(ck->curve);
    memset(ck, 0, sizeof(*ck));
}
