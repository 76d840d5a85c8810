/* `cutover mode WORKLOAD MODE [PERCENT]`: switches which arm serves. */
#include <stdio.h>

#include "cli_control.h"

static const co_cli_opt opts[] = {
    {"config", 'c', "FILE", "config file (default: $CUTOVER_CONFIG or cutover.yaml)"},
    {"reason", 'r', "TEXT", "why, for the audit log"},
    {"gateway", 0, "URL", "admin API of the gateway (default: from the config)"},
    {NULL, 0, NULL, NULL},
};

static int run(co_cli_ctx *ctx)
{
    int mode;
    double percent;
    if (co_control_parse_mode(ctx->argv[1], ctx->argc > 2 ? ctx->argv[2] : NULL, &mode, &percent) < 0) {
        fprintf(ctx->err, "cutover mode: %s\n", co_error_last());
        return CO_EXIT_USAGE;
    }
    co_config *cfg = NULL;
    int rc = co_cli_load_config(ctx, &cfg);
    if (rc)
        return rc;
    co_mode_change ch = {.workload = ctx->argv[0], .mode = mode, .percent = percent, .actor = "user:cli",
                         .reason = co_cli_get(ctx, "reason")};
    rc = co_cli_apply_mode(ctx, cfg, &ch);
    co_config_free(cfg);
    return rc;
}

const co_cli_cmd co_cmd_mode = {
    .name = "mode",
    .summary = "switch a workload to incumbent, candidate, shadow or canary PERCENT",
    .usage = "cutover mode WORKLOAD incumbent|candidate|shadow|canary PERCENT [--reason TEXT]",
    .details = "The running gateway applies the change to its next request on every worker;\n"
               "when none answers, the change is stored and gateways pick it up on their next\n"
               "poll. Every change is logged with its actor and reason.",
    .opts = opts,
    .min_args = 2,
    .max_args = 3,
    .run = run,
};
