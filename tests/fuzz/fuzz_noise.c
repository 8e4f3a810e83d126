/* libFuzzer target of the noise spec parser: any text must parse or give an error message.
 * A spec that parses must describe itself as canonical text that parses again to the same
 * canonical text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "noise/noise.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = xmalloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    NoiseSpec spec;
    if (noise_parse(text, &spec) == 0) {
        char canonical[EUAR_NOISE_TEXT_LEN], again[EUAR_NOISE_TEXT_LEN];
        noise_describe(&spec, canonical, sizeof(canonical));
        NoiseSpec reparsed;
        EUAR_ASSERT(noise_parse(canonical, &reparsed) == 0);
        noise_describe(&reparsed, again, sizeof(again));
        EUAR_ASSERT(strcmp(canonical, again) == 0);
    }
    free(text);
    return 0;
}
