/* `cutover pairs [WORKLOAD]`: recorded served/shadow pairs side by side —
 * the raw material of diff review. */
#include <stdlib.h>
#include <string.h>

#include "cli_control.h"

static const co_cli_opt opts[] = {
    {"config", 'c', "FILE", "config file (default: $CUTOVER_CONFIG or cutover.yaml)"},
    {"limit", 'n', "N", "how many pairs, newest first (default 5)"},
    {"width", 'w', "N", "characters of each output shown (default 160)"},
    {NULL, 0, NULL, NULL},
};

static void show(FILE *out, const char *label, const co_exchange *x, long long width)
{
    fprintf(out, "  %-8s %-9s %-18s HTTP %d%s%s  %.0f ms  %lld→%lld tokens  $%.6f\n", label, x->arm, x->model,
            x->status, x->error_class ? "  error: " : "", x->error_class ? x->error_class : "", x->latency_ms,
            (long long)x->tokens_in, (long long)x->tokens_out, x->cost_usd);
    const char *t = x->output_text ? x->output_text : "";
    size_t n = strlen(t);
    fprintf(out, "           \"%.*s%s\"\n", (int)(n > (size_t)width ? (size_t)width : n), t,
            n > (size_t)width ? "…" : "");
}

static int run(co_cli_ctx *ctx)
{
    long long limit, width;
    int rc = co_cli_int(ctx, "limit", 5, 1, 10000, &limit);
    if (!rc)
        rc = co_cli_int(ctx, "width", 160, 10, 100000, &width);
    if (rc)
        return rc;
    co_config *cfg = NULL;
    co_store *st = NULL;
    co_pair *pairs = NULL;
    size_t n = 0;
    rc = co_cli_load_config(ctx, &cfg);
    if (rc)
        return rc;
    rc = co_cli_open_store(ctx, cfg, &st);
    if (rc)
        goto done;
    const char *wl = ctx->argc ? ctx->argv[0] : NULL;
    if (wl && !co_config_workload(cfg, wl)) {
        fprintf(ctx->err, "cutover pairs: no workload '%s'\n", wl);
        rc = CO_EXIT_USAGE;
        goto done;
    }
    if (co_store_pairs(st, wl, (size_t)limit, 0, &pairs, &n) < 0) {
        fprintf(ctx->err, "cutover pairs: %s\n", co_error_last());
        rc = CO_EXIT_FAIL;
        goto done;
    }
    if (n == 0)
        fprintf(ctx->out, "no recorded pairs yet%s%s (a workload in shadow mode records one per request)\n",
                wl ? " for " : "", wl ? wl : "");
    for (size_t i = 0; i < n; i++) {
        const co_exchange *s = &pairs[i].served.x;
        fprintf(ctx->out, "pair %s  workload %s  request %s\n", s->pair_id, s->workload, s->request_id);
        show(ctx->out, "served", s, width);
        show(ctx->out, "shadow", &pairs[i].shadow.x, width);
    }
done:
    co_pairs_free(pairs, n);
    co_store_close(st);
    co_config_free(cfg);
    return rc;
}

const co_cli_cmd co_cmd_pairs = {
    .name = "pairs",
    .summary = "show recorded served/shadow pairs side by side",
    .usage = "cutover pairs [WORKLOAD] [-n N] [-c FILE]",
    .details = "Each request a workload served in shadow mode is recorded twice, as one pair:\n"
               "the answer the client got and the candidate's answer to the same request.",
    .opts = opts,
    .min_args = 0,
    .max_args = 1,
    .run = run,
};
