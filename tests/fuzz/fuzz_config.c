/* Fuzz target: arbitrary bytes as cutover.yaml. Loads them, prints the
 * diagnostics (into memory), asks for warnings on success, frees it all.
 * Built with corpus_main.c for ctest, or with clang -fsanitize=fuzzer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cutover/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 20))
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    if (size)
        memcpy(text, data, size);
    text[size] = '\0';

    co_diags d = {0};
    co_config *cfg = NULL;
    int rc = co_config_load_string(&cfg, text, "fuzz.yaml", &d);
    if (rc == 0 && cfg) {
        co_config_warnings(cfg, &d);
        co_config_free(cfg);
    } else if (cfg) {
        abort(); /* the contract: on error *out is NULL */
    }
    if (rc == CO_ECONFIG && d.n == 0)
        abort(); /* the contract: on CO_ECONFIG every problem is in diags */
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (f) {
        co_diags_print(&d, f);
        fclose(f);
    }
    free(out);
    co_diags_free(&d);
    co_error_clear();
    free(text);
    return 0;
}
