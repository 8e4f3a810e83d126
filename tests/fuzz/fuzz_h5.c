/* libFuzzer target of the HDF5 dataset reader. Each input is written to a temporary file and
 * read in full with pooled features (dataset_load_h5, what training reads), which covers the
 * metadata checks of dataset_read_info as well. Any bytes must load or give an error
 * message, never a crash, a leak or undefined behaviour in this project's code. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"
#include "datasets/dataset.h"

static char path[64];

static void write_input(const uint8_t *data, size_t size) {
    if (!path[0])
        snprintf(path, sizeof(path), "/tmp/euar-fuzz-h5-%ld.h5", (long)getpid());
    FILE *f = fopen(path, "wb");
    EUAR_ASSERT(f != NULL);
    EUAR_ASSERT(fwrite(data, 1, size, f) == size);
    EUAR_ASSERT(fclose(f) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    write_input(data, size);
    Dataset ds;
    DatasetLoadOptions opt = {.nonfinite = EUAR_NONFINITE_REJECT, .pool_features = 1};
    if (dataset_load_h5(path, &opt, &ds) == 0)
        dataset_free(&ds);
    unlink(path);
    return 0;
}
