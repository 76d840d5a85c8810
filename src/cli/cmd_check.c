/* `cutover check`: validates cutover.yaml and prints a summary, or every
 * error found with its file:line:col. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cutover/config.h"
#include "cutover/util.h"

static const co_cli_opt opts[] = {
    {"config", 'c', "FILE", "config file (default: $CUTOVER_CONFIG or cutover.yaml)"},
    {"quiet", 'q', NULL, "print nothing when the config is valid"},
    {NULL, 0, NULL, NULL},
};

static void summary(const co_config *cfg, FILE *out)
{
    fprintf(out, "%s: ok\n", cfg->path);
    fprintf(out, "  listen %s, %lld worker(s)%s, store %s\n", cfg->listen, (long long)cfg->workers,
            cfg->workers == 0 ? " (one per core)" : "", cfg->store);
    fprintf(out, "providers (%zu):\n", cfg->providers.n);
    for (size_t i = 0; i < cfg->providers.n; i++) {
        const co_provider_conf *p = (const co_provider_conf *)cfg->providers.v + i;
        fprintf(out, "  %-18s %-17s %s%s%s\n", p->name, co_provider_kinds[p->kind], p->base_url ? p->base_url : "",
                p->api_key_env ? "  key from $" : (p->api_key_file ? "  key from " : ""),
                p->api_key_env ? p->api_key_env : (p->api_key_file ? p->api_key_file : ""));
    }
    fprintf(out, "models (%zu):\n", cfg->models.n);
    for (size_t i = 0; i < cfg->models.n; i++) {
        const co_model_conf *m = (const co_model_conf *)cfg->models.v + i;
        fprintf(out, "  %-18s via %-12s upstream %-22s $%.2f in / $%.2f out / $%.2f cached per 1M\n", m->name,
                m->provider, m->upstream, m->price_input, m->price_output, m->price_cached);
    }
    fprintf(out, "workloads (%zu):\n", cfg->workloads.n);
    for (size_t i = 0; i < cfg->workloads.n; i++) {
        const co_workload_conf *w = (const co_workload_conf *)cfg->workloads.v + i;
        char mode[64];
        if (w->mode == CO_MODE_CANARY)
            snprintf(mode, sizeof mode, "canary %g%%", w->percent);
        else if (w->mode == CO_MODE_SHADOW && w->shadow_sample < 100)
            snprintf(mode, sizeof mode, "shadow (%g%% sampled)", w->shadow_sample);
        else
            snprintf(mode, sizeof mode, "%s", co_modes[w->mode]);
        fprintf(out, "  %-18s %s -> %s, mode %s, gate: pass rate drop <= %g pts\n", w->name, w->incumbent,
                w->candidate ? w->candidate : "(no candidate)", mode, w->gate.pass_rate_drop_max);
    }
    const co_rollout_conf *r = &cfg->rollout;
    fprintf(out, "rollout: ");
    for (size_t i = 0; i < r->stages.n; i++) {
        const co_stage_conf *s = (const co_stage_conf *)r->stages.v + i;
        char hold[32];
        if (s->kind == CO_STAGE_SHADOW)
            fprintf(out, "%sshadow", i ? " -> " : "");
        else
            fprintf(out, "%s%g%%", i ? " -> " : "", s->percent);
        if (s->hold_ms)
            fprintf(out, " (%s)", co_format_duration(s->hold_ms, hold, sizeof hold));
    }
    fprintf(out, "%s\n", r->auto_promote ? ", auto-promote" : ", manual promotion");
}

static int run(co_cli_ctx *ctx)
{
    const char *path = co_cli_config_path(ctx);
    co_diags diags = {0}, warn = {0};
    co_config *cfg = NULL;
    int rc = co_config_load(&cfg, path, &diags);
    if (rc < 0) {
        co_diags_print(&diags, ctx->err);
        if (rc == CO_ECONFIG)
            fprintf(ctx->err, "%zu error(s) found\n", diags.n);
        co_diags_free(&diags);
        return rc == CO_ECONFIG ? CO_EXIT_FAIL : CO_EXIT_USAGE;
    }
    co_config_warnings(cfg, &warn);
    co_diags_print(&warn, ctx->err);
    if (!co_cli_flag(ctx, "quiet"))
        summary(cfg, ctx->out);
    co_diags_free(&warn);
    co_config_free(cfg);
    return CO_EXIT_OK;
}

const co_cli_cmd co_cmd_check = {
    .name = "check",
    .summary = "validate cutover.yaml and summarize providers, models and workloads",
    .usage = "cutover check [-c FILE]",
    .details = "Every error is reported with its file:line:col, what was expected and what was\n"
               "found. Exit status: 0 valid, 1 errors found, 2 the file could not be read.",
    .opts = opts,
    .min_args = 0,
    .max_args = 0,
    .run = run,
};
