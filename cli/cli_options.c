/* Helpers for the option parsers of the subcommands. */
#include <string.h>

#include "cli/cli.h"
#include "core/common.h"

int options_seen_add(OptionsSeen *seen, const char *option) {
    for (int i = 0; i < seen->count; i++)
        if (strcmp(seen->names[i], option) == 0)
            return err_set("%s given twice; pass each option once", option);
    EUAR_ASSERT(seen->count < (int)EUAR_ARRAY_LEN(seen->names));
    seen->names[seen->count++] = option;
    return 0;
}
