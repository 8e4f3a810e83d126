/* Writer of the euar-bench HDF5 layout (docs/format.md). Files are written under a temporary
 * name and renamed when complete, so a failed or interrupted write leaves no partial file.
 * Modification times are not stored, so the same dataset gives the same bytes. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"
#include "datasets/dataset.h"
#include "datasets/dataset_internal.h"

void h5_silence_errors(void) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

typedef struct {
    char *buf;
    size_t cap;
} ErrorText;

static herr_t take_first_error(unsigned n, const H5E_error2_t *e, void *data) {
    ErrorText *t = data;
    if (n == 0 && e->desc)
        snprintf(t->buf, t->cap, "%s", e->desc);
    return 0;
}

void h5_last_error(char *buf, size_t cap) {
    ErrorText t = {buf, cap};
    buf[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, take_first_error, &t);
}

/* Sets the error for a failed HDF5 call on `h5path` of the file being written. */
static int writer_fail(const H5Writer *w, const char *h5path) {
    char why[256];
    h5_last_error(why, sizeof(why));
    return err_set("cannot write %s: %s: HDF5 failed (%s); check free disk space and "
                   "permissions",
                   w->path, h5path, why[0] ? why : "no detail");
}

int h5_writer_open(H5Writer *w, const char *path) {
    memset(w, 0, sizeof(*w));
    w->file = H5I_INVALID_HID;
    h5_silence_errors();
    size_t len = strlen(path) + 32;
    w->path = xstrdup(path);
    w->tmp_path = xmalloc(len);
    snprintf(w->tmp_path, len, "%s.tmp.%ld", path, (long)getpid());
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    /* STRONG closes every object still open when the file is closed, so error paths only
     * need to close the file. */
    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    errno = 0;
    w->file = H5Fcreate(w->tmp_path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (w->file < 0) {
        err_set("cannot create %s: %s; check that the folder exists and is writable",
                w->tmp_path, strerror(errno ? errno : EIO));
        h5_writer_abort(w);
        return -1;
    }
    return 0;
}

static hid_t string_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

static int write_attr(hid_t obj, const char *name, hid_t type, hid_t space, const void *value) {
    hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0)
        return -1;
    herr_t rc = H5Awrite(a, type, value);
    H5Aclose(a);
    return rc < 0 ? -1 : 0;
}

static int write_attr_string(hid_t obj, const char *name, const char *value) {
    hid_t t = string_type(), s = H5Screate(H5S_SCALAR);
    int rc = write_attr(obj, name, t, s, &value);
    H5Sclose(s);
    H5Tclose(t);
    return rc;
}

static int write_attr_strings(hid_t obj, const char *name, const char *const *values, int n) {
    hsize_t dims[1] = {(hsize_t)n};
    hid_t t = string_type(), s = H5Screate_simple(1, dims, NULL);
    int rc = write_attr(obj, name, t, s, values);
    H5Sclose(s);
    H5Tclose(t);
    return rc;
}

static int write_attr_int(hid_t obj, const char *name, int value) {
    hid_t s = H5Screate(H5S_SCALAR);
    int32_t v = value;
    int rc = write_attr(obj, name, H5T_STD_I32LE, s, &v);
    H5Sclose(s);
    return rc;
}

static hid_t create_group(hid_t loc, const char *name) {
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    H5Pset_obj_track_times(gcpl, 0);
    hid_t g = H5Gcreate2(loc, name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
    H5Pclose(gcpl);
    return g;
}

/* Creates dataset `name` in `loc` with file type `ftype`; chunked by `chunk_rows` samples
 * (0: contiguous), gzip level `gzip` (0: none). Writes `data` (memory type `mtype`) if set. */
static int write_array(hid_t loc, const char *name, hid_t ftype, hid_t mtype, int rank,
                       const hsize_t *dims, hsize_t chunk_rows, int gzip, const void *data) {
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_obj_track_times(dcpl, 0);
    if (chunk_rows > 0) {
        hsize_t chunk[4];
        chunk[0] = EUAR_MIN(chunk_rows, dims[0]);
        for (int r = 1; r < rank; r++)
            chunk[r] = dims[r];
        H5Pset_chunk(dcpl, rank, chunk);
        if (gzip > 0)
            H5Pset_deflate(dcpl, (unsigned)gzip);
    }
    hid_t d = H5Dcreate2(loc, name, ftype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    H5Sclose(space);
    if (d < 0)
        return -1;
    herr_t rc = 0;
    if (data)
        rc = H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    H5Dclose(d);
    return rc < 0 ? -1 : 0;
}

static int write_root_attrs(H5Writer *w, const Dataset *ds) {
    hid_t f = w->file;
    if (write_attr_string(f, "format", EUAR_FORMAT_NAME) != 0 ||
        write_attr_int(f, "format_version", EUAR_FORMAT_VERSION) != 0 ||
        write_attr_string(f, "name", ds->name) != 0 ||
        write_attr_string(f, "task", ds->task == EUAR_TASK_REGRESSION ? "regression"
                                                                      : "classification") != 0)
        return writer_fail(w, "/ (root attributes)");
    if (ds->task == EUAR_TASK_CLASSIFICATION &&
        (write_attr_int(f, "num_classes", ds->num_classes) != 0 ||
         write_attr_strings(f, "class_names", (const char *const *)ds->class_names,
                            ds->num_classes) != 0))
        return writer_fail(w, "/ (class attributes)");
    const char *names[EUAR_MAX_MODALITIES];
    for (int m = 0; m < ds->num_modalities; m++)
        names[m] = ds->mod[m].name;
    if (write_attr_strings(f, "modalities", names, ds->num_modalities) != 0)
        return writer_fail(w, "/ (attribute modalities)");
    return 0;
}

static int write_samples(H5Writer *w, const Dataset *ds) {
    hsize_t n[1] = {(hsize_t)ds->n};
    hid_t g = create_group(w->file, "samples");
    if (g < 0)
        return writer_fail(w, "/samples");
    hid_t st = string_type();
    int rc = write_array(g, "id", st, st, 1, n, 0, 0, ds->ids);
    H5Tclose(st);
    if (rc != 0)
        return writer_fail(w, "/samples/id");
    if (write_array(g, "split", H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, n, 0, 0, ds->split) != 0)
        return writer_fail(w, "/samples/split");
    H5Gclose(g);
    if (ds->task == EUAR_TASK_REGRESSION)
        rc = write_array(w->file, "labels", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, n, 0, 0,
                         ds->labels);
    else
        rc = write_array(w->file, "labels", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, n, 0, 0,
                         ds->classes);
    return rc != 0 ? writer_fail(w, "/labels") : 0;
}

static int write_modality(H5Writer *w, hid_t parent, const Dataset *ds, const Modality *m) {
    char path[96];
    snprintf(path, sizeof(path), "/modalities/%s", m->name);
    hid_t g = create_group(parent, m->name);
    if (g < 0)
        return writer_fail(w, path);
    if (write_attr_string(g, "kind", modality_kind_name(m->kind)) != 0)
        return writer_fail(w, path);
    if (m->kind == EUAR_KIND_TOKENS && write_attr_int(g, "vocab_size", m->vocab) != 0)
        return writer_fail(w, path);

    hsize_t n[1] = {(hsize_t)ds->n};
    hsize_t dims[4] = {(hsize_t)ds->n, 0, 0, 0};
    int rc;
    snprintf(path, sizeof(path), "/modalities/%s/data", m->name);
    if (m->kind == EUAR_KIND_FEATURES) {
        dims[1] = (hsize_t)m->t;
        dims[2] = (hsize_t)m->d;
        rc = write_array(g, "data", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 3, dims,
                         EUAR_CHUNK_SAMPLES, 0, m->features);
    } else if (m->kind == EUAR_KIND_IMAGE) {
        dims[1] = (hsize_t)m->c;
        dims[2] = (hsize_t)m->h;
        dims[3] = (hsize_t)m->w;
        rc = write_array(g, "data", H5T_STD_U8LE, H5T_NATIVE_UINT8, 4, dims,
                         EUAR_CHUNK_SAMPLES_SMALL, 4, m->pixels);
    } else {
        dims[1] = (hsize_t)m->t;
        rc = write_array(g, "data", H5T_STD_I32LE, H5T_NATIVE_INT32, 2, dims,
                         EUAR_CHUNK_SAMPLES_SMALL, 0, m->tokens);
    }
    if (rc != 0)
        return writer_fail(w, path);

    if (m->kind != EUAR_KIND_IMAGE) {
        snprintf(path, sizeof(path), "/modalities/%s/lengths", m->name);
        if (write_array(g, "lengths", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, n, 0, 0,
                        m->lengths) != 0)
            return writer_fail(w, path);
    }
    snprintf(path, sizeof(path), "/modalities/%s/available", m->name);
    if (write_array(g, "available", H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, n, 0, 0,
                    m->available) != 0)
        return writer_fail(w, path);
    H5Gclose(g);
    return 0;
}

int h5_writer_write_layout(H5Writer *w, const Dataset *ds) {
    if (write_root_attrs(w, ds) != 0 || write_samples(w, ds) != 0)
        return -1;
    hid_t g = create_group(w->file, "modalities");
    if (g < 0)
        return writer_fail(w, "/modalities");
    for (int m = 0; m < ds->num_modalities; m++)
        if (write_modality(w, g, ds, &ds->mod[m]) != 0)
            return -1;
    H5Gclose(g);
    return 0;
}

int h5_writer_write_rows(H5Writer *w, const Dataset *ds, int m, int first, int count,
                         const void *data) {
    const Modality *md = &ds->mod[m];
    char path[96];
    snprintf(path, sizeof(path), "/modalities/%s/data", md->name);
    hid_t d = H5Dopen2(w->file, path, H5P_DEFAULT);
    if (d < 0)
        return writer_fail(w, path);
    hid_t fspace = H5Dget_space(d);
    int rank = H5Sget_simple_extent_ndims(fspace);
    hsize_t start[4] = {(hsize_t)first, 0, 0, 0}, dims[4];
    H5Sget_simple_extent_dims(fspace, dims, NULL);
    dims[0] = (hsize_t)count;
    H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, dims, NULL);
    hid_t mspace = H5Screate_simple(rank, dims, NULL);
    hid_t mtype = md->kind == EUAR_KIND_FEATURES ? H5T_NATIVE_FLOAT
                  : md->kind == EUAR_KIND_IMAGE  ? H5T_NATIVE_UINT8
                                                 : H5T_NATIVE_INT32;
    herr_t rc = H5Dwrite(d, mtype, mspace, fspace, H5P_DEFAULT, data);
    H5Sclose(mspace);
    H5Sclose(fspace);
    H5Dclose(d);
    return rc < 0 ? writer_fail(w, path) : 0;
}

int h5_writer_write_extra_f32(H5Writer *w, const char *h5path, const float *values, int n) {
    hsize_t dims[1] = {(hsize_t)n};
    if (write_array(w->file, h5path, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, dims, 0, 0,
                    values) != 0)
        return writer_fail(w, h5path);
    return 0;
}

int h5_writer_write_extra_strings(H5Writer *w, const char *h5path, const char *const *values,
                                  int n) {
    hsize_t dims[1] = {(hsize_t)n};
    hid_t st = string_type();
    int rc = write_array(w->file, h5path, st, st, 1, dims, 0, 0, values);
    H5Tclose(st);
    return rc != 0 ? writer_fail(w, h5path) : 0;
}

int h5_writer_commit(H5Writer *w) {
    herr_t rc = H5Fclose(w->file);
    w->file = H5I_INVALID_HID;
    if (rc < 0) {
        writer_fail(w, "/ (closing the file)");
        h5_writer_abort(w);
        return -1;
    }
    int fd = open(w->tmp_path, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0) {
        err_set("cannot flush %s: %s; check free disk space", w->tmp_path, strerror(errno));
        if (fd >= 0)
            close(fd);
        h5_writer_abort(w);
        return -1;
    }
    close(fd);
    if (rename(w->tmp_path, w->path) != 0) {
        err_set("cannot rename %s to %s: %s", w->tmp_path, w->path, strerror(errno));
        h5_writer_abort(w);
        return -1;
    }
    free(w->tmp_path);
    free(w->path);
    memset(w, 0, sizeof(*w));
    w->file = H5I_INVALID_HID;
    return 0;
}

void h5_writer_abort(H5Writer *w) {
    if (w->file >= 0)
        H5Fclose(w->file);
    if (w->tmp_path)
        unlink(w->tmp_path);
    free(w->tmp_path);
    free(w->path);
    memset(w, 0, sizeof(*w));
    w->file = H5I_INVALID_HID;
}

int dataset_save_h5(const char *path, const Dataset *ds) {
    if (dataset_validate(ds, path) != 0)
        return -1;
    H5Writer w;
    if (h5_writer_open(&w, path) != 0)
        return -1;
    if (h5_writer_write_layout(&w, ds) != 0) {
        h5_writer_abort(&w);
        return -1;
    }
    return h5_writer_commit(&w);
}
