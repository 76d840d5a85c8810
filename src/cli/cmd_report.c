/* `cutover report incident ID|latest [--workload W]`: prints a stored
 * incident report (markdown, written on every rollback) as it was written. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli_control.h"
#include "cutover/util.h"

static const co_cli_opt opts[] = {
    {"config", 'c', "FILE", "config file (default: $CUTOVER_CONFIG or cutover.yaml)"},
    {"workload", 'w', "NAME", "with 'latest': the latest incident of this workload"},
    {"output", 'o', "FILE", "write the report to FILE instead of stdout"},
    {NULL, 0, NULL, NULL},
};

static int incident(co_cli_ctx *ctx)
{
    if (ctx->argc != 2) {
        fprintf(ctx->err, "cutover report incident: which one? give an incident id or 'latest'\nusage: %s\n",
                ctx->cmd->usage);
        return CO_EXIT_USAGE;
    }
    const char *which = ctx->argv[1], *wl = co_cli_get(ctx, "workload");
    int64_t id = 0;
    if (strcmp(which, "latest") != 0) {
        char *end;
        errno = 0;
        long long v = strtoll(which, &end, 10);
        if (end == which || *end || errno || v <= 0) {
            fprintf(ctx->err,
                    "cutover report incident: '%s' is neither an incident id (a positive number) nor 'latest'\n",
                    which);
            return CO_EXIT_USAGE;
        }
        if (wl) {
            fprintf(ctx->err, "cutover report incident: --workload goes with 'latest'\n");
            return CO_EXIT_USAGE;
        }
        id = v;
    }
    co_config *cfg = NULL;
    co_store *st = NULL;
    co_incident inc = {0};
    int rc = co_cli_load_config(ctx, &cfg);
    if (rc)
        return rc;
    if (wl && !co_config_workload(cfg, wl)) {
        fprintf(ctx->err, "cutover report incident: no workload '%s'\n", wl);
        rc = CO_EXIT_USAGE;
        goto done;
    }
    rc = co_cli_open_store(ctx, cfg, &st);
    if (rc)
        goto done;
    if (co_store_incident_get(st, id, wl, &inc) < 0) {
        fprintf(ctx->err, "cutover report incident: %s\n", co_error_last());
        rc = CO_EXIT_FAIL;
        goto done;
    }
    const char *md = inc.report_md ? inc.report_md : "";
    const char *out = co_cli_get(ctx, "output");
    if (out) {
        if (co_write_file(out, md, strlen(md), 1) < 0) {
            fprintf(ctx->err, "cutover report incident: %s: %s\n", out, co_error_last());
            rc = CO_EXIT_FAIL;
            goto done;
        }
        fprintf(ctx->out, "incident %lld (%s) written to %s\n", (long long)inc.id, inc.workload, out);
    } else {
        fputs(md, ctx->out);
        if (*md && md[strlen(md) - 1] != '\n')
            fputc('\n', ctx->out);
    }
done:
    co_incident_clear(&inc);
    co_store_close(st);
    co_config_free(cfg);
    return rc;
}

static int run(co_cli_ctx *ctx)
{
    if (!strcmp(ctx->argv[0], "incident"))
        return incident(ctx);
    static const char *const kinds[] = {"incident", NULL};
    const char *near = co_suggest(ctx->argv[0], kinds);
    fprintf(ctx->err, "cutover report: unknown report '%s'%s%s%s (reports: incident)\n", ctx->argv[0],
            near ? "; did you mean '" : "", near ? near : "", near ? "'?" : "");
    return CO_EXIT_USAGE;
}

const co_cli_cmd co_cmd_report = {
    .name = "report",
    .summary = "show a stored report: the incident report of a rollback",
    .usage = "cutover report incident ID|latest [--workload NAME] [-o FILE]",
    .details = "An incident report is written on every rollback, automatic or by hand: the\n"
               "trigger, the timeline from the rollout log, the metrics behind the decision vs\n"
               "the baseline, the requests affected, sample failing pairs and the checklist\n"
               "for after the rollback. Markdown, printed as stored.",
    .opts = opts,
    .min_args = 1,
    .max_args = 2,
    .run = run,
};
