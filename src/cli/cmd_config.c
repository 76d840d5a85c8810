/* `cutover config`: prints the reference of every cutover.yaml key (name,
 * type, bounds, default, help), from the same table the parser uses. */
#include "cli.h"
#include "cutover/config.h"
#include "cutover/sim.h"

static const co_cli_opt opts[] = {
    {"scenario", 0, NULL, "the sim scenario keys instead of cutover.yaml's"},
    {NULL, 0, NULL, NULL},
};

static int run(co_cli_ctx *ctx)
{
    co_buf b;
    co_buf_init(&b, 1u << 20);
    int sim = co_cli_flag(ctx, "scenario");
    int rc = co_conf_markdown(sim ? co_sim_scenario_schema() : co_config_schema(),
                              sim ? "cutover sim scenario reference" : "cutover.yaml reference", &b);
    if (rc < 0) {
        fprintf(ctx->err, "cutover config: %s\n", co_error_last());
        co_buf_free(&b);
        return CO_EXIT_FAIL;
    }
    fputs(b.p, ctx->out);
    co_buf_free(&b);
    return CO_EXIT_OK;
}

const co_cli_cmd co_cmd_config = {
    .name = "config",
    .summary = "print the reference of every configuration key (Markdown)",
    .usage = "cutover config [--scenario]",
    .details = "docs/config.md is this output; a test keeps the two identical.",
    .opts = opts,
    .min_args = 0,
    .max_args = 0,
    .run = run,
};
