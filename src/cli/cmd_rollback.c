/* `cutover rollback WORKLOAD`: back to the incumbent, at once, audited.
 * `cutover rollback --drill WORKLOAD`: rehearses it — flips the workload to
 * the incumbent and back, both through the store as any rollback would go,
 * and measures how long until every live gateway serves each flip (from the
 * heartbeats gateways write with the mode version they apply). The drill is
 * logged as a rollout event and, when it passes, as plan evidence
 * ("rollback.drilled"): a rollback plan is real only once rehearsed. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_control.h"
#include "cutover/util.h"

/* A gateway is live when it beat this recently (they beat every second). */
#define DRILL_LIVE_MS 3000
#define DRILL_POLL_US 2000
#define DRILL_MAX_GW 256

static const co_cli_opt opts[] = {
    {"config", 'c', "FILE", "config file (default: $CUTOVER_CONFIG or cutover.yaml)"},
    {"reason", 'r', "TEXT", "why, for the audit log and the incident report"},
    {"gateway", 0, "URL", "admin API of the gateway (default: from the config)"},
    {"drill", 0, NULL, "rehearse: flip to the incumbent and back, and time every gateway"},
    {"timeout", 't', "DURATION", "drill: how long each flip may take to reach every gateway (default 5s)"},
    {NULL, 0, NULL, NULL},
};

typedef struct drill_gw {
    char *id;
    int64_t seen_ms;       /* last beat before the drill */
    double ms[2];          /* per flip; < 0 while not applied */
    int left;              /* stopped cleanly during the drill */
} drill_gw;

typedef struct drill {
    drill_gw gw[DRILL_MAX_GW];
    size_t n;
    double fleet_ms[2];    /* slowest gateway per flip; < 0 when some never applied */
    int64_t version[2];
} drill;

static double since_ms(int64_t t0_us) { return (double)(co_mono_us() - t0_us) / 1000.0; }

/* Polls the heartbeats until every gateway of the drill reports version v
 * (or left the fleet), or the timeout. 0 when all did. */
static int wait_applied(co_store *st, drill *d, int flip, int64_t v, int64_t t0_us, int64_t timeout_ms,
                        int64_t live_since)
{
    for (;;) {
        co_gateway_beat *b = NULL;
        size_t n = 0;
        if (co_store_gateways(st, live_since, &b, &n) < 0)
            return -1;
        double now = since_ms(t0_us);
        size_t pending = 0;
        for (size_t i = 0; i < d->n; i++) {
            drill_gw *g = &d->gw[i];
            if (g->ms[flip] >= 0 || g->left)
                continue;
            const co_gateway_beat *mine = NULL;
            for (size_t k = 0; k < n && !mine; k++)
                if (!strcmp(b[k].id, g->id))
                    mine = &b[k];
            if (!mine)
                g->left = 1; /* a clean stop moves its last beat out of the live window */
            else if (mine->applied_version >= v)
                g->ms[flip] = now;
            else
                pending++;
        }
        co_gateway_beats_free(b, n);
        if (!pending)
            return 0;
        if (now >= (double)timeout_ms)
            return 1;
        struct timespec ts = {0, DRILL_POLL_US * 1000L};
        nanosleep(&ts, NULL);
    }
}

static void mode_text(char *buf, size_t n, int mode, double pct)
{
    if (mode == CO_MODE_CANARY)
        snprintf(buf, n, "canary %g%%", pct);
    else
        snprintf(buf, n, "%s", co_modes[mode]);
}

static int run_drill(co_cli_ctx *ctx, const co_config *cfg)
{
    const char *name = ctx->argv[0];
    int64_t timeout_ms = 5000;
    const char *t = co_cli_get(ctx, "timeout");
    if (t && (co_parse_duration_ms(t, &timeout_ms) < 0 || timeout_ms <= 0)) {
        fprintf(ctx->err, "cutover rollback: --timeout: %s\n", timeout_ms > 0 ? co_error_last() : "must be positive");
        return CO_EXIT_USAGE;
    }
    const co_workload_conf *w = co_config_workload(cfg, name);
    if (!w) {
        fprintf(ctx->err, "cutover rollback: no workload '%s' in %s\n", name, cfg->path ? cfg->path : "the config");
        return CO_EXIT_USAGE;
    }
    co_store *st = NULL;
    int rc = co_cli_open_store(ctx, cfg, &st);
    if (rc)
        return rc;
    drill *d = calloc(1, sizeof *d);
    co_gateway_beat *beats = NULL;
    size_t nb = 0;
    char *mj = NULL;
    if (!d) {
        fprintf(ctx->err, "cutover rollback: out of memory\n");
        rc = CO_EXIT_FAIL;
        goto done;
    }
    int64_t start_ms = co_now_ms(), live_since = start_ms - DRILL_LIVE_MS;
    if (co_store_gateways(st, live_since, &beats, &nb) < 0)
        goto store_err;
    if (nb == 0) {
        fprintf(ctx->err,
                "cutover rollback: no gateway has reported to %s in the last %d s; a drill without a running "
                "gateway proves nothing (start `cutover serve` on this store first)\n",
                cfg->store, DRILL_LIVE_MS / 1000);
        rc = CO_EXIT_FAIL;
        goto done;
    }
    for (size_t i = 0; i < nb && d->n < DRILL_MAX_GW; i++) {
        drill_gw *g = &d->gw[d->n++];
        g->id = strdup(beats[i].id ? beats[i].id : "?");
        g->seen_ms = beats[i].seen_ms;
        g->ms[0] = g->ms[1] = -1;
    }
    int prev_mode;
    double prev_pct;
    int64_t prev_version;
    if (co_control_current(st, w, &prev_mode, &prev_pct, &prev_version) < 0)
        goto store_err;
    char prev[48];
    mode_text(prev, sizeof prev, prev_mode, prev_pct);
    const char *why = co_cli_get(ctx, "reason");
    char reason[512];
    snprintf(reason, sizeof reason, "rollback drill%s%s", why ? ": " : "", why ? why : "");

    /* flip 1: to the incumbent */
    co_mode_change ch = {.workload = name, .mode = CO_MODE_INCUMBENT, .actor = "drill", .reason = reason};
    int64_t t0 = co_mono_us();
    if (co_control_set_mode(st, cfg, &ch, &d->version[0]) < 0)
        goto store_err;
    int late0 = wait_applied(st, d, 0, d->version[0], t0, timeout_ms, live_since);
    if (late0 < 0)
        goto store_err;

    /* flip 2: back, unless someone else changed the mode meanwhile */
    int restored = 0, late1 = 0;
    co_workload_state now = {0};
    if (co_store_workload_state_get(st, name, &now) < 0)
        goto store_err;
    if (now.version != d->version[0]) {
        fprintf(ctx->err,
                "cutover rollback: %s changed during the drill (now %s, version %lld, by %s); not restoring %s\n",
                name, now.mode, (long long)now.version, now.updated_by ? now.updated_by : "?", prev);
    } else {
        co_mode_change back = {.workload = name, .mode = prev_mode, .percent = prev_pct, .actor = "drill",
                               .reason = "rollback drill: restoring the previous mode"};
        t0 = co_mono_us();
        if (co_control_set_mode(st, cfg, &back, &d->version[1]) < 0) {
            co_workload_state_clear(&now);
            goto store_err;
        }
        restored = 1;
        late1 = wait_applied(st, d, 1, d->version[1], t0, timeout_ms, live_since);
        if (late1 < 0) {
            co_workload_state_clear(&now);
            goto store_err;
        }
    }
    co_workload_state_clear(&now);

    /* the figures */
    size_t served[2] = {0, 0}, left = 0;
    for (int f = 0; f < 2; f++) {
        d->fleet_ms[f] = 0;
        for (size_t i = 0; i < d->n; i++) {
            if (d->gw[i].ms[f] >= 0) {
                served[f]++;
                if (d->gw[i].ms[f] > d->fleet_ms[f])
                    d->fleet_ms[f] = d->gw[i].ms[f];
            } else if (!d->gw[i].left) {
                d->fleet_ms[f] = -1;
            }
        }
    }
    for (size_t i = 0; i < d->n; i++)
        left += d->gw[i].left;
    int ok = !late0 && restored && !late1 && served[0] > 0;
    char tout[32];
    co_format_duration(timeout_ms, tout, sizeof tout);

    fprintf(ctx->out, "%s: rollback served by %zu/%zu gateway%s", name, served[0], d->n, d->n == 1 ? "" : "s");
    if (d->fleet_ms[0] >= 0)
        fprintf(ctx->out, " in %.0f ms", d->fleet_ms[0]);
    if (restored) {
        fprintf(ctx->out, "; restored (%s) on %zu/%zu", prev, served[1], d->n);
        if (d->fleet_ms[1] >= 0)
            fprintf(ctx->out, " in %.0f ms", d->fleet_ms[1]);
    }
    fprintf(ctx->out, "\n");
    for (size_t i = 0; i < d->n; i++) {
        const drill_gw *g = &d->gw[i];
        fprintf(ctx->out, "  %-40s", g->id);
        for (int f = 0; f < 2; f++) {
            if (f == 1 && !restored)
                break;
            if (g->ms[f] >= 0)
                fprintf(ctx->out, "  %s %6.0f ms", f ? "restore" : "rollback", g->ms[f]);
            else
                fprintf(ctx->out, "  %s %s", f ? "restore" : "rollback", g->left ? "(stopped during the drill)"
                                                                                   : "NOT APPLIED");
        }
        fprintf(ctx->out, "\n");
    }
    for (size_t i = 0; i < d->n; i++) {
        const drill_gw *g = &d->gw[i];
        for (int f = 0; f < 2; f++)
            if (g->ms[f] < 0 && !g->left && (f == 0 || restored))
                fprintf(ctx->err,
                        "cutover rollback: gateway %s did not apply the %s (version %lld) within %s; its last "
                        "heartbeat before the drill was %lld ms old\n",
                        g->id, f ? "restore" : "rollback", (long long)d->version[f], tout,
                        (long long)(start_ms - g->seen_ms));
    }
    if (left)
        fprintf(ctx->err, "cutover rollback: %zu gateway(s) stopped during the drill\n", left);

    /* the record: a rollout event always, plan evidence when it passed */
    json_t *gws = json_array();
    for (size_t i = 0; i < d->n; i++) {
        const drill_gw *g = &d->gw[i];
        json_t *o = json_pack("{s:s,s:b}", "id", g->id, "left", g->left);
        json_object_set_new(o, "rollback_ms", g->ms[0] >= 0 ? json_real(g->ms[0]) : json_null());
        json_object_set_new(o, "restore_ms", g->ms[1] >= 0 ? json_real(g->ms[1]) : json_null());
        json_array_append_new(gws, o);
    }
    json_t *m = json_pack("{s:b,s:I,s:I,s:I,s:I,s:I,s:s,s:o}", "ok", ok, "gateways", (json_int_t)d->n,
                          "rollback_served", (json_int_t)served[0], "restore_served", (json_int_t)served[1],
                          "timeout_ms", (json_int_t)timeout_ms, "rollback_version", (json_int_t)d->version[0],
                          "previous_mode", prev, "per_gateway", gws);
    if (m) {
        json_object_set_new(m, "rollback_ms", d->fleet_ms[0] >= 0 ? json_real(d->fleet_ms[0]) : json_null());
        json_object_set_new(m, "restore_ms", restored && d->fleet_ms[1] >= 0 ? json_real(d->fleet_ms[1]) : json_null());
        json_object_set_new(m, "restore_version", restored ? json_integer(d->version[1]) : json_null());
        mj = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(6));
        json_decref(m);
    }
    char verdict[160];
    if (ok)
        snprintf(verdict, sizeof verdict, "rollback drill passed on %zu gateway(s)", served[0]);
    else
        snprintf(verdict, sizeof verdict, "rollback drill FAILED: %s", !restored ? "the mode was not restored"
                                                                      : "a gateway did not apply a flip in time");
    co_rollout_event ev = {.workload = (char *)name, .actor = "drill", .kind = "drill", .from_state = prev,
                           .to_state = prev, .reason = verdict, .metrics_json = mj};
    if (co_store_rollout_event_add(st, &ev) < 0)
        goto store_err;
    if (ok) {
        co_evidence e = {.item = "rollback.drilled", .workload = (char *)name, .data_json = mj};
        if (co_store_evidence_add(st, &e) < 0)
            goto store_err;
    }
    rc = ok ? CO_EXIT_OK : CO_EXIT_FAIL;
    goto done;
store_err:
    fprintf(ctx->err, "cutover rollback: store %s: %s\n", cfg->store, co_error_last());
    rc = CO_EXIT_FAIL;
done:
    if (d)
        for (size_t i = 0; i < d->n; i++)
            free(d->gw[i].id);
    free(d);
    free(mj);
    co_gateway_beats_free(beats, nb);
    co_store_close(st);
    return rc;
}

static int run(co_cli_ctx *ctx)
{
    if (!co_cli_flag(ctx, "drill") && co_cli_get(ctx, "timeout")) {
        fprintf(ctx->err, "cutover rollback: --timeout goes with --drill\n");
        return CO_EXIT_USAGE;
    }
    co_config *cfg = NULL;
    int rc = co_cli_load_config(ctx, &cfg);
    if (rc)
        return rc;
    if (co_cli_flag(ctx, "drill")) {
        rc = run_drill(ctx, cfg);
        co_config_free(cfg);
        return rc;
    }
    co_mode_change ch = {.workload = ctx->argv[0], .mode = CO_MODE_INCUMBENT, .actor = "user:cli",
                         .reason = co_cli_get(ctx, "reason"), .rollback = 1};
    rc = co_cli_apply_mode(ctx, cfg, &ch);
    co_config_free(cfg);
    return rc;
}

const co_cli_cmd co_cmd_rollback = {
    .name = "rollback",
    .summary = "send a workload back to its incumbent model, at once (or rehearse it with --drill)",
    .usage = "cutover rollback WORKLOAD [--reason TEXT]\n       cutover rollback --drill WORKLOAD [--timeout 5s]",
    .details = "Served by every worker of the running gateway from its next request; recorded\n"
               "in the rollout log with who and why.\n\n"
               "--drill flips the workload to the incumbent and back to its current mode through\n"
               "the store, and measures how long until every gateway that reported in the last\n"
               "3 s serves each flip. It prints the times, logs the drill as a rollout event and,\n"
               "when it passes, as plan evidence (rollback.drilled). Exit 1 when a gateway did\n"
               "not apply a flip within --timeout, or when no gateway is running.",
    .opts = opts,
    .min_args = 1,
    .max_args = 1,
    .run = run,
};
