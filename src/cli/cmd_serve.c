/* `cutover serve`: runs the gateway, and the rollout controller on a thread
 * of its own (it acts only while it holds the store lease, so with many
 * gateways on one store exactly one controller acts). Prints one "listening
 * on" line once bound; SIGINT/SIGTERM stop it cleanly (requests in flight
 * finish, the recorder writes what it holds, the lease is released); SIGHUP
 * reloads the config file (a broken file is reported with file:line:col and
 * the running config stays; the controller re-reads the file when it
 * changes). */
#include <curl/curl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_rollout.h"
#include "cutover/config.h"
#include "cutover/gateway.h"
#include "cutover/rollout.h"
#include "cutover/util.h"

static const co_cli_opt opts[] = {
    {"config", 'c', "FILE", "config file (default: $CUTOVER_CONFIG or cutover.yaml)"},
    {"listen", 'l', "ADDR", "address to listen on, overriding the config's listen (port 0: ephemeral)"},
    {"workers", 'w', "N", "worker threads, overriding the config's workers (0: one per core)"},
    {"port-file", 0, "FILE", "write the bound port to FILE once listening"},
    {"time-scale", 0, "N", "rollout time per real time for the controller (3600: an hour of hold in a second)"},
    {"no-controller", 0, NULL, "do not run the rollout controller here (run `cutover rollout run` elsewhere)"},
    {NULL, 0, NULL, NULL},
};

typedef struct log_ctx {
    FILE *err;
} log_ctx;

static void log_line(void *ud, int level, const char *msg)
{
    log_ctx *l = ud;
    char ts[40];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(l->err, "%s.%03ldZ %-5s %s\n", ts, now.tv_nsec / 1000000,
            co_log_levels[level < 0 || level > 3 ? 0 : level], msg);
    fflush(l->err);
}

static int run(co_cli_ctx *ctx)
{
    long long workers = 0;
    double scale = 1;
    if (co_cli_int(ctx, "workers", 0, 0, 1024, &workers) || co_cli_time_scale(ctx, &scale))
        return CO_EXIT_USAGE;
    const char *path = co_cli_config_path(ctx);
    co_diags diags = {0};
    co_config *cfg = NULL;
    int rc = co_config_load(&cfg, path, &diags);
    if (rc < 0) {
        co_diags_print(&diags, ctx->err);
        if (rc == CO_ECONFIG)
            fprintf(ctx->err, "cutover serve: %zu error(s) in %s\n", diags.n, path);
        else if (!diags.n)
            fprintf(ctx->err, "cutover serve: %s\n", co_error_last());
        co_diags_free(&diags);
        return CO_EXIT_USAGE;
    }
    co_diags_free(&diags);

    /* libcurl's global state, once, before any worker makes a client */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(ctx->err, "cutover serve: curl_global_init failed\n");
        co_config_free(cfg);
        return CO_EXIT_FAIL;
    }
    /* a client that hangs up mid-stream must not kill the gateway */
    signal(SIGPIPE, SIG_IGN);

    log_ctx lc = {ctx->err};
    co_gateway_opts o = {
        .listen = co_cli_get(ctx, "listen"),
        .workers = (int)workers,
        .handle_signals = 1,
        .log = log_line,
        .log_ud = &lc,
    };
    co_gateway *gw = NULL;
    rc = co_gateway_new(&gw, cfg, &o);
    if (rc < 0) {
        fprintf(ctx->err, "cutover serve: %s\n", co_error_last());
        co_config_free(cfg);
        curl_global_cleanup();
        return rc == CO_EINVAL || rc == CO_ECONFIG || rc == CO_ENOENT ? CO_EXIT_USAGE : CO_EXIT_FAIL;
    }
    int port = co_gateway_port(gw);
    const char *port_file = co_cli_get(ctx, "port-file");
    if (port_file) {
        char buf[16];
        int n = snprintf(buf, sizeof buf, "%d\n", port);
        if (co_write_file(port_file, buf, (size_t)n, 1) < 0) {
            fprintf(ctx->err, "cutover serve: %s\n", co_error_last());
            co_gateway_free(gw);
            curl_global_cleanup();
            return CO_EXIT_FAIL;
        }
    }
    /* the host as given (--listen or the config), with the bound port */
    const char *listen = o.listen ? o.listen : cfg->listen;
    const char *colon = strrchr(listen, ':');
    int hl = colon ? (int)(colon - listen) : 0;
    fprintf(ctx->out, "cutover serve listening on %.*s:%d\n", hl ? hl : 7, hl ? listen : "0.0.0.0", port);
    fflush(ctx->out);
    /* the controller loads its own copy of the config (re-read when the file
     * changes) and opens its own store handle */
    co_controller *ctl = NULL;
    if (!co_cli_flag(ctx, "no-controller")) {
        co_controller_opts co = {
            .clock = {.scale = scale},
            .config_path = path,
            .log = log_line,
            .log_ud = &lc,
        };
        if (co_controller_new(&ctl, NULL, &co) < 0 || co_controller_start_thread(ctl) < 0) {
            fprintf(ctx->err, "cutover serve: rollout controller: %s\n", co_error_last());
            co_controller_free(ctl);
            co_gateway_free(gw);
            curl_global_cleanup();
            return CO_EXIT_FAIL;
        }
    }
    rc = co_gateway_run(gw);
    co_controller_free(ctl); /* stops its thread and releases the lease */
    co_gateway_free(gw);
    curl_global_cleanup();
    return rc < 0 ? CO_EXIT_FAIL : CO_EXIT_OK;
}

const co_cli_cmd co_cmd_serve = {
    .name = "serve",
    .summary = "run the gateway: shadow, canary, fallback and rollback between two models",
    .usage = "cutover serve [-c FILE] [--listen ADDR] [--workers N] [--port-file FILE] [--time-scale N] "
             "[--no-controller]",
    .details =
        "Apps point their OpenAI or Anthropic SDK at the gateway (base_url only):\n"
        "POST /v1/chat/completions, POST /v1/messages (JSON and SSE), GET /v1/models,\n"
        "GET /healthz, /readyz, /metrics, and the admin API under /admin/workloads.\n"
        "Each workload runs incumbent, candidate, shadow or canary PERCENT; every exchange\n"
        "is recorded to the store. The rollout controller runs here too (one acts per store,\n"
        "whichever holds the lease). SIGHUP reloads the config; SIGINT/SIGTERM stop cleanly.",
    .opts = opts,
    .min_args = 0,
    .max_args = 0,
    .run = run,
};
