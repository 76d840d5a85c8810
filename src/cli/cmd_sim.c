/* `cutover sim`: runs the simulated model providers (OpenAI, Anthropic,
 * Gemini wire protocols) on a local port for the demo, tests and benchmarks.
 * Prints one "listening on" line once bound, stops on SIGINT/SIGTERM. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cutover/buf.h"
#include "cutover/conf.h"
#include "cutover/sim.h"
#include "cutover/util.h"

static const co_cli_opt opts[] = {
    {"listen", 'l', "ADDR", "address to listen on (default 127.0.0.1:0, an ephemeral port)"},
    {"scenario", 's', "FILE", "scenario YAML (default: the built-in sim/default.yaml)"},
    {"seed", 0, "N", "seed for every random decision, overriding the scenario's"},
    {"threads", 't', "N", "event-loop threads sharing the port (default 1)"},
    {"record", 0, NULL, "keep the last 256 requests for GET /_sim/requests"},
    {"port-file", 0, "FILE", "write the bound port to FILE once listening"},
    {"check", 0, NULL, "validate the scenario, print its models and exit"},
    {"reference", 0, NULL, "print the scenario keys (Markdown) and exit"},
    {NULL, 0, NULL, NULL},
};

static int run(co_cli_ctx *ctx)
{
    long long seed = 0, threads = 1;
    if (co_cli_int(ctx, "seed", 0, INT64_MIN, INT64_MAX, &seed) ||
        co_cli_int(ctx, "threads", 1, 1, 64, &threads))
        return CO_EXIT_USAGE;
    if (co_cli_flag(ctx, "reference")) {
        co_buf md;
        co_buf_init(&md, CO_BUF_UNLIMITED);
        int rc = co_conf_markdown(co_sim_scenario_schema(), "cutover sim scenario", &md);
        if (!rc)
            fputs(md.p ? md.p : "", ctx->out);
        co_buf_free(&md);
        return rc ? CO_EXIT_FAIL : CO_EXIT_OK;
    }
    const char *scenario = co_cli_get(ctx, "scenario");
    co_diags diags = {0};
    if (co_cli_flag(ctx, "check")) {
        co_sim_scenario *sc = NULL;
        int rc = co_sim_scenario_load(&sc, scenario, &diags);
        co_diags_print(&diags, ctx->err);
        co_diags_free(&diags);
        if (rc) {
            fprintf(ctx->err, "cutover sim: %s\n", co_error_last());
            return rc == CO_ECONFIG ? CO_EXIT_FAIL : CO_EXIT_USAGE;
        }
        fprintf(ctx->out, "%s: ok\n", scenario ? scenario : "sim/default.yaml (built in)");
        co_sim_scenario_print(sc, ctx->out);
        co_sim_scenario_free(sc);
        return CO_EXIT_OK;
    }

    co_sim_opts o = {
        .listen = co_cli_get(ctx, "listen"),
        .scenario_path = scenario,
        .threads = (int)threads,
        .seed = seed,
        .set_seed = co_cli_get(ctx, "seed") != NULL,
        .record = co_cli_flag(ctx, "record"),
        .handle_signals = 1,
    };
    /* a client that hangs up mid-stream must not kill the sim */
    signal(SIGPIPE, SIG_IGN);
    co_sim *sim = NULL;
    int rc = co_sim_new(&sim, &o, &diags);
    if (rc) {
        co_diags_print(&diags, ctx->err);
        co_diags_free(&diags);
        fprintf(ctx->err, "cutover sim: %s\n", co_error_last());
        return rc == CO_ECONFIG || rc == CO_EINVAL ? CO_EXIT_USAGE : CO_EXIT_FAIL;
    }
    co_diags_free(&diags);
    const char *port_file = co_cli_get(ctx, "port-file");
    if (port_file) {
        char port[16];
        int n = snprintf(port, sizeof port, "%d\n", co_sim_port(sim));
        if (co_write_file(port_file, port, (size_t)n, 1)) {
            fprintf(ctx->err, "cutover sim: %s\n", co_error_last());
            co_sim_free(sim);
            return CO_EXIT_FAIL;
        }
    }
    char addr[160];
    fprintf(ctx->out, "cutover sim listening on %s\n", co_sim_address(sim, addr, sizeof addr));
    fflush(ctx->out);
    co_sim_run(sim);
    co_sim_free(sim);
    return CO_EXIT_OK;
}

const co_cli_cmd co_cmd_sim = {
    .name = "sim",
    .summary = "run simulated OpenAI, Anthropic and Gemini endpoints locally",
    .usage = "cutover sim [--listen ADDR] [--scenario FILE] [--seed N] [--threads N] [--record] "
             "[--port-file FILE]",
    .details =
        "Serves POST /v1/chat/completions (OpenAI), POST /v1/messages (Anthropic) and\n"
        "POST /v1beta/models/MODEL:generateContent | :streamGenerateContent?alt=sse (Gemini),\n"
        "JSON and streaming, with each API's auth, validation and error shapes, plus the model\n"
        "lists. A scenario YAML says what each model answers and how it misbehaves (latency,\n"
        "500/429/overloaded, timeouts, resets, truncated replies), deterministically per seed.\n"
        "Test hooks: GET /_sim/stats, GET|DELETE /_sim/requests (with --record),\n"
        "GET|POST /_sim/models/NAME (patch latency, faults, accuracy at run time).\n"
        "`cutover sim --reference` prints every scenario key.",
    .opts = opts,
    .min_args = 0,
    .max_args = 0,
    .run = run,
};
