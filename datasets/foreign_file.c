/* Recognition of the importers' input files, so that the reader can say which importer
 * converts a file given to it in place of a dataset file. */
#include <stdio.h>
#include <string.h>

#include "core/common.h"
#include "datasets/dataset_internal.h"

int foreign_pickle_error(const char *path) {
    unsigned char head[2] = {0, 0};
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(head, 1, sizeof(head), f) : 0;
    if (f)
        fclose(f);
    /* Pickle protocols 2 to 5 start with the PROTO opcode 0x80 and the protocol number. */
    if (got < 2 || head[0] != 0x80 || head[1] < 2 || head[1] > 5)
        return 0;
    return err_set("%s: a Python pickle (protocol %d), not a euar-bench dataset file; convert "
                   "it with 'euar data import-pickle --format mmsa|mib %s --out OUT.h5' "
                   "(docs/import.md)",
                   path, head[1], path);
}

/* Stores the name of the first link of `loc` in `data`, a buffer of 256 bytes. */
static herr_t first_link(hid_t loc, const char *name, const H5L_info_t *info, void *data) {
    (void)loc;
    (void)info;
    char *first = data;
    if (first[0] == '\0')
        snprintf(first, 256, "%s", name);
    return 0;
}

int foreign_csd_error(hid_t file, const char *path) {
    /* A computational sequence has one top-level group holding `data` and `metadata`. */
    H5G_info_t info;
    if (H5Gget_info(file, &info) < 0 || info.nlinks != 1)
        return 0;
    char root[256] = "";
    hsize_t idx = 0;
    if (H5Literate(file, H5_INDEX_NAME, H5_ITER_INC, &idx, first_link, root) < 0)
        return 0;
    char data[300], metadata[300];
    snprintf(data, sizeof(data), "%s/data", root);
    snprintf(metadata, sizeof(metadata), "%s/metadata", root);
    if (H5Lexists(file, root, H5P_DEFAULT) <= 0 || H5Lexists(file, data, H5P_DEFAULT) <= 0 ||
        H5Lexists(file, metadata, H5P_DEFAULT) <= 0)
        return 0;
    return err_set("%s: a CMU-MultimodalSDK computational sequence (root group '%s'), not a "
                   "euar-bench dataset file; convert it with 'euar data import-csd' "
                   "(docs/import.md)",
                   path, root);
}
