/* `cutover rollback WORKLOAD`: back to the incumbent, at once, audited. */
#include <stdio.h>

#include "cli_control.h"

static const co_cli_opt opts[] = {
    {"config", 'c', "FILE", "config file (default: $CUTOVER_CONFIG or cutover.yaml)"},
    {"reason", 'r', "TEXT", "why, for the audit log and the incident report"},
    {"gateway", 0, "URL", "admin API of the gateway (default: from the config)"},
    {NULL, 0, NULL, NULL},
};

static int run(co_cli_ctx *ctx)
{
    co_config *cfg = NULL;
    int rc = co_cli_load_config(ctx, &cfg);
    if (rc)
        return rc;
    co_mode_change ch = {.workload = ctx->argv[0], .mode = CO_MODE_INCUMBENT, .actor = "user:cli",
                         .reason = co_cli_get(ctx, "reason"), .rollback = 1};
    rc = co_cli_apply_mode(ctx, cfg, &ch);
    co_config_free(cfg);
    return rc;
}

const co_cli_cmd co_cmd_rollback = {
    .name = "rollback",
    .summary = "send a workload back to its incumbent model, at once",
    .usage = "cutover rollback WORKLOAD [--reason TEXT]",
    .details = "Served by every worker of the running gateway from its next request; recorded\n"
               "in the rollout log with who and why.",
    .opts = opts,
    .min_args = 1,
    .max_args = 1,
    .run = run,
};
