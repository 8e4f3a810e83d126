#include "report/joint_file.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"

static int write_string_attr(hid_t loc, const char *name, const char *value) {
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, strlen(value) + 1);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = attr < 0 ? -1 : H5Awrite(attr, type, value);
    if (attr >= 0)
        H5Aclose(attr);
    H5Sclose(space);
    H5Tclose(type);
    return rc < 0 ? -1 : 0;
}

static int write_int_attr(hid_t loc, const char *name, int value) {
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(loc, name, H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = attr < 0 ? -1 : H5Awrite(attr, H5T_NATIVE_INT, &value);
    if (attr >= 0)
        H5Aclose(attr);
    H5Sclose(space);
    return rc < 0 ? -1 : 0;
}

static int write_array(hid_t loc, const char *name, hid_t file_type, hid_t mem_type,
                       const void *data, int rank, const hsize_t *dims) {
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t set = H5Dcreate2(loc, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = set < 0 ? -1 : H5Dwrite(set, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    if (set >= 0)
        H5Dclose(set);
    H5Sclose(space);
    return rc < 0 ? -1 : 0;
}

int joint_file_write(const char *path, const JointFile *jf) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    hid_t file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (file < 0)
        return err_set("cannot create %s: check that the folder exists and is writable", tmp);
    int rc = 0;
    rc |= write_string_attr(file, "format", EUAR_JOINT_FORMAT);
    rc |= write_int_attr(file, "format_version", EUAR_JOINT_VERSION);
    rc |= write_string_attr(file, "model", jf->model);
    rc |= write_string_attr(file, "dataset", jf->dataset);
    rc |= write_string_attr(file, "task", jf->classification ? "classification" : "regression");
    rc |= write_int_attr(file, "num_classes", jf->num_classes);
    rc |= write_int_attr(file, "joint_dim", jf->dim);
    hsize_t n = (hsize_t)jf->n, dims[2] = {(hsize_t)jf->n, (hsize_t)jf->dim};
    if (jf->classification)
        rc |= write_array(file, "labels", H5T_STD_I32LE, H5T_NATIVE_INT32, jf->classes, 1, &n);
    else
        rc |= write_array(file, "labels", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, jf->labels, 1, &n);
    /* Creation order is tracked so that readers list the conditions in the order written. */
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    hid_t group = H5Gcreate2(file, "conditions", H5P_DEFAULT, gcpl, H5P_DEFAULT);
    H5Pclose(gcpl);
    for (int c = 0; rc == 0 && c < jf->count; c++) {
        hid_t g = H5Gcreate2(group, jf->names[c], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        rc |= g < 0 ? -1 : write_array(g, "joint", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT,
                                      jf->joint[c], 2, dims);
        if (g >= 0)
            H5Gclose(g);
    }
    if (group >= 0)
        H5Gclose(group);
    if (H5Fclose(file) < 0)
        rc = -1;
    if (rc != 0) {
        unlink(tmp);
        return err_set("cannot write %s: HDF5 failed; check free disk space", path);
    }
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        return err_set("cannot rename %s to %s", tmp, path);
    }
    return 0;
}

/* Reads a scalar string attribute of / into buf. */
static int read_string_attr(hid_t file, const char *path, const char *name, char *buf,
                            size_t cap) {
    hid_t attr = H5Aopen(file, name, H5P_DEFAULT);
    if (attr < 0)
        return err_set("%s: attribute '%s' of / is missing; rewrite the file with euar train "
                       "--joint-out", path, name);
    hid_t type = H5Aget_type(attr);
    size_t size = H5Tget_size(type);
    int rc = 0;
    if (H5Tget_class(type) != H5T_STRING || H5Tis_variable_str(type) > 0 || size >= cap) {
        rc = err_set("%s: attribute '%s' of / is not a short fixed-length string", path, name);
    } else {
        hid_t mem = H5Tcopy(H5T_C_S1);
        H5Tset_size(mem, size + 1);
        memset(buf, 0, cap);
        if (H5Aread(attr, mem, buf) < 0)
            rc = err_set("%s: cannot read attribute '%s' of /", path, name);
        H5Tclose(mem);
    }
    H5Tclose(type);
    H5Aclose(attr);
    return rc;
}

static int read_int_attr(hid_t file, const char *path, const char *name, int *out) {
    hid_t attr = H5Aopen(file, name, H5P_DEFAULT);
    if (attr < 0)
        return err_set("%s: attribute '%s' of / is missing", path, name);
    herr_t rc = H5Aread(attr, H5T_NATIVE_INT, out);
    H5Aclose(attr);
    return rc < 0 ? err_set("%s: attribute '%s' of / is not an integer", path, name) : 0;
}

/* Reads a dataset of `rank` with the expected dims into a new buffer of `elem` bytes each. */
static void *read_array(hid_t loc, const char *path, const char *h5path, hid_t mem_type,
                        size_t elem, int rank, const hsize_t *want) {
    hid_t set = H5Dopen2(loc, h5path, H5P_DEFAULT);
    if (set < 0) {
        err_set("%s: %s is missing", path, h5path);
        return NULL;
    }
    hid_t space = H5Dget_space(set);
    hsize_t dims[2] = {0, 0};
    int got = H5Sget_simple_extent_ndims(space);
    if (got == rank)
        H5Sget_simple_extent_dims(space, dims, NULL);
    H5Sclose(space);
    size_t count = 1;
    for (int i = 0; i < rank; i++) {
        if (got != rank || dims[i] != want[i]) {
            H5Dclose(set);
            err_set("%s: %s has the wrong shape (expected %d dimensions of %llu x %llu)", path,
                    h5path, rank, (unsigned long long)want[0],
                    (unsigned long long)(rank > 1 ? want[1] : 1));
            return NULL;
        }
        count *= (size_t)dims[i];
    }
    void *data = xmalloc(elem * count + 1);
    if (H5Dread(set, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
        free(data);
        H5Dclose(set);
        err_set("%s: cannot read %s as the expected type", path, h5path);
        return NULL;
    }
    H5Dclose(set);
    return data;
}

typedef struct {
    JointFile *jf;
    int failed;
} ListState;

static herr_t add_name(hid_t group, const char *name, const H5L_info_t *info, void *data) {
    ListState *st = data;
    if (st->jf->count == EUAR_JOINT_MAX_CONDITIONS || strlen(name) >= 64) {
        st->failed = 1;
        return 1;
    }
    snprintf(st->jf->names[st->jf->count++], 64, "%s", name);
    return 0;
}

int joint_file_read(const char *path, JointFile *out) {
    memset(out, 0, sizeof(*out));
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (access(path, R_OK) != 0)
        return err_set("cannot read %s: no such file or not readable", path);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0)
        return err_set("%s: not an HDF5 file or truncated; rewrite it with euar train "
                       "--joint-out", path);
    char format[64], task[32];
    int version = 0, rc = 0;
    rc = read_string_attr(file, path, "format", format, sizeof(format));
    if (rc == 0 && strcmp(format, EUAR_JOINT_FORMAT) != 0)
        rc = err_set("%s: format is '%s', expected '%s'", path, format, EUAR_JOINT_FORMAT);
    if (rc == 0)
        rc = read_int_attr(file, path, "format_version", &version);
    if (rc == 0 && (version < 1 || version > EUAR_JOINT_VERSION))
        rc = err_set("%s: format_version %d is not supported (supported: %d); rewrite the file "
                     "with this build's euar train --joint-out", path, version,
                     EUAR_JOINT_VERSION);
    if (rc == 0)
        rc = read_string_attr(file, path, "model", out->model, sizeof(out->model));
    if (rc == 0)
        rc = read_string_attr(file, path, "dataset", out->dataset, sizeof(out->dataset));
    if (rc == 0)
        rc = read_string_attr(file, path, "task", task, sizeof(task));
    if (rc == 0)
        rc = read_int_attr(file, path, "num_classes", &out->num_classes);
    if (rc == 0)
        rc = read_int_attr(file, path, "joint_dim", &out->dim);
    if (rc == 0 && out->dim < 1)
        rc = err_set("%s: joint_dim %d must be positive", path, out->dim);
    if (rc == 0) {
        out->classification = strcmp(task, "classification") == 0;
        hid_t set = H5Dopen2(file, "labels", H5P_DEFAULT);
        if (set < 0) {
            rc = err_set("%s: /labels is missing", path);
        } else {
            hid_t space = H5Dget_space(set);
            hsize_t n = 0;
            if (H5Sget_simple_extent_ndims(space) == 1)
                H5Sget_simple_extent_dims(space, &n, NULL);
            H5Sclose(space);
            H5Dclose(set);
            out->n = (int)n;
            if (n < 1)
                rc = err_set("%s: /labels must be a non-empty one-dimensional array", path);
        }
    }
    if (rc == 0) {
        hsize_t n = (hsize_t)out->n;
        if (out->classification)
            out->classes = read_array(file, path, "labels", H5T_NATIVE_INT32, 4, 1, &n);
        else
            out->labels = read_array(file, path, "labels", H5T_NATIVE_FLOAT, 4, 1, &n);
        if (!out->classes && !out->labels)
            rc = -1;
    }
    if (rc == 0) {
        ListState st = {out, 0};
        hid_t group = H5Gopen2(file, "conditions", H5P_DEFAULT);
        if (group < 0 ||
            H5Literate(group, H5_INDEX_CRT_ORDER, H5_ITER_INC, NULL, add_name, &st) < 0) {
            /* Files without creation-order tracking list names in alphabetical order. */
            out->count = 0;
            if (group >= 0)
                H5Literate(group, H5_INDEX_NAME, H5_ITER_INC, NULL, add_name, &st);
        }
        if (group >= 0)
            H5Gclose(group);
        if (group < 0 || st.failed || out->count == 0)
            rc = err_set("%s: /conditions is missing, empty or has more than %d groups", path,
                         EUAR_JOINT_MAX_CONDITIONS);
    }
    hsize_t dims[2] = {(hsize_t)out->n, (hsize_t)out->dim};
    for (int c = 0; rc == 0 && c < out->count; c++) {
        char h5path[128];
        snprintf(h5path, sizeof(h5path), "conditions/%s/joint", out->names[c]);
        out->joint[c] = read_array(file, path, h5path, H5T_NATIVE_FLOAT, 4, 2, dims);
        if (!out->joint[c]) {
            rc = -1;
            break;
        }
        for (size_t i = 0; i < (size_t)out->n * out->dim; i++)
            if (!isfinite(out->joint[c][i])) {
                rc = err_set("%s: %s holds NaN or Inf at element %zu", path, h5path, i);
                break;
            }
    }
    H5Fclose(file);
    if (rc != 0) {
        joint_file_free(out);
        return -1;
    }
    return 0;
}

void joint_file_free(JointFile *jf) {
    free(jf->labels);
    free(jf->classes);
    for (int c = 0; c < EUAR_JOINT_MAX_CONDITIONS; c++)
        free(jf->joint[c]);
    memset(jf, 0, sizeof(*jf));
}
