/* `cutover status`: every workload's mode and, per arm, traffic, error rate
 * and p95 latency over a recent window — read from the store, so it shows
 * the whole fleet, whether or not a gateway runs here. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli_control.h"
#include "cutover/util.h"

static const co_cli_opt opts[] = {
    {"config", 'c', "FILE", "config file (default: $CUTOVER_CONFIG or cutover.yaml)"},
    {"window", 'w', "DURATION", "how far back the traffic figures look (default 1h)"},
    {NULL, 0, NULL, NULL},
};

typedef struct arm_figures {
    int64_t count, errors;
    double p95_ms;
} arm_figures;

static int figures(co_store *st, const char *workload, const char *arm, int64_t since, arm_figures *f)
{
    co_window_query q = {.workload = workload, .arm = arm, .since_ms = since};
    co_window_summary s = {0};
    double *lat = NULL;
    size_t n = 0;
    memset(f, 0, sizeof *f);
    int rc = co_store_window_summary(st, &q, &s);
    if (rc == 0)
        rc = co_store_window_latencies(st, &q, &lat, &n);
    if (rc < 0)
        return rc;
    f->count = s.count;
    f->errors = s.errors;
    /* nearest-rank p95 */
    f->p95_ms = n ? lat[(size_t)ceil(0.95 * (double)n) - 1] : NAN;
    free(lat);
    return 0;
}

static void print_arm(FILE *out, const arm_figures *f)
{
    if (f->count == 0) {
        fprintf(out, " | %8s %7s %8s", "0", "-", "-");
        return;
    }
    fprintf(out, " | %8lld %6.1f%% %6.0fms", (long long)f->count, 100.0 * (double)f->errors / (double)f->count,
            f->p95_ms);
}

static int run(co_cli_ctx *ctx)
{
    int64_t window = 3600000;
    const char *w = co_cli_get(ctx, "window");
    if (w && co_parse_duration_ms(w, &window) < 0) {
        fprintf(ctx->err, "cutover status: --window: %s\n", co_error_last());
        return CO_EXIT_USAGE;
    }
    co_config *cfg = NULL;
    co_store *st = NULL;
    int rc = co_cli_load_config(ctx, &cfg);
    if (rc)
        return rc;
    rc = co_cli_open_store(ctx, cfg, &st);
    if (rc)
        goto done;
    char wbuf[32];
    int64_t since = co_now_ms() - window;
    fprintf(ctx->out, "%-16s %-14s | %-25s | %-25s\n", "", "", "incumbent", "candidate");
    fprintf(ctx->out, "%-16s %-14s | %8s %7s %8s | %8s %7s %8s\n", "workload", "mode", "requests", "errors", "p95",
            "requests", "errors", "p95");
    for (size_t i = 0; i < cfg->workloads.n; i++) {
        const co_workload_conf *wl = (const co_workload_conf *)cfg->workloads.v + i;
        int mode;
        double pct;
        int64_t version;
        arm_figures inc, cand;
        if (co_control_current(st, wl, &mode, &pct, &version) < 0 ||
            figures(st, wl->name, "incumbent", since, &inc) < 0 ||
            figures(st, wl->name, "candidate", since, &cand) < 0) {
            fprintf(ctx->err, "cutover status: %s\n", co_error_last());
            rc = CO_EXIT_FAIL;
            goto done;
        }
        char m[32];
        if (mode == CO_MODE_CANARY)
            snprintf(m, sizeof m, "canary %g%%", pct);
        else
            snprintf(m, sizeof m, "%s", co_modes[mode]);
        fprintf(ctx->out, "%-16s %-14s", wl->name, m);
        print_arm(ctx->out, &inc);
        print_arm(ctx->out, &cand);
        fprintf(ctx->out, "\n");
    }
    fprintf(ctx->out, "(traffic over the last %s, from %s)\n", co_format_duration(window, wbuf, sizeof wbuf),
            cfg->store);
done:
    co_store_close(st);
    co_config_free(cfg);
    return rc;
}

const co_cli_cmd co_cmd_status = {
    .name = "status",
    .summary = "each workload's mode, and per arm its traffic, error rate and p95 latency",
    .usage = "cutover status [-c FILE] [--window 1h]",
    .details = "Figures come from the store, so with a shared store they cover every gateway.",
    .opts = opts,
    .min_args = 0,
    .max_args = 0,
    .run = run,
};
