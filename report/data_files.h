/* Check that the results of each dataset of a report were made from one version of its data
 * file, by the "data_file_hash" each result records (core/file_hash.h). */
#ifndef EUAR_REPORT_DATA_FILES_H
#define EUAR_REPORT_DATA_FILES_H

#include <stdint.h>

/* Distinct data file hashes seen per (suite, dataset). */
typedef struct {
    int count, cap;
    struct DataFileEntry *items;
} DataFileCheck;

/* Notes that a result of dataset `dataset` of suite `suite`, read from `path`, records the
 * data file hash `hash`. */
void data_files_note(DataFileCheck *check, const char *suite, const char *dataset,
                     uint64_t hash, const char *path);

/* Prints one warning on stderr per dataset whose results record more than one data file hash,
 * naming two result files of different versions. Returns the number of such datasets. */
int data_files_warn(const DataFileCheck *check);

void data_files_free(DataFileCheck *check);

#endif
