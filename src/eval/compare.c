/* Eval comparison (include/cutover/compare.h). Placeholder so the runner
 * branch links: every entry point reports CO_ENOTSUP until the analysis
 * lands in the following commits. */
#include <stdlib.h>

#include "cutover/compare.h"
#include "cutover/error.h"

int co_eval_analyze(co_eval_analysis **out, co_store *st, int64_t run_a, int64_t run_b,
                    const co_compare_opts *opts)
{
    (void)st, (void)run_a, (void)run_b, (void)opts;
    *out = NULL;
    return co_error_set(CO_ENOTSUP, "eval comparison not implemented yet");
}

void co_eval_analysis_free(co_eval_analysis *a)
{
    (void)a;
}

int co_eval_analysis_exit_code(const co_eval_analysis *a)
{
    (void)a;
    return 3;
}

int co_eval_analysis_summary(co_buf *out, const co_eval_analysis *a)
{
    (void)out, (void)a;
    return co_error_set(CO_ENOTSUP, "eval comparison not implemented yet");
}

int co_eval_save_baselines(co_store *st, const co_eval_analysis *a)
{
    (void)st, (void)a;
    return co_error_set(CO_ENOTSUP, "eval comparison not implemented yet");
}
