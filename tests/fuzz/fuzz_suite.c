/* libFuzzer target of the suite file parser: any bytes must give a parsed suite or an error
 * message, never a crash, a leak or undefined behaviour. A suite that parses is also expanded
 * into cells, quick variant included. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "suites/suite.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = xmalloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    Suite suite;
    if (suite_parse_text(text, "fuzz.json", &suite) == 0) {
        for (int quick = 0; quick <= suite.has_quick; quick++) {
            SuiteCell *cells = NULL;
            int count = 0;
            if (suite_expand(&suite, quick, &cells, &count) == 0)
                suite_cells_free(cells, count);
        }
        suite_free(&suite);
    }
    free(text);
    return 0;
}
