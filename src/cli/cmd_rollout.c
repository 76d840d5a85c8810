/* `cutover rollout start|status|promote|pause|resume|abort|finalize WORKLOAD`
 * and `cutover rollout run`: the staged move of a workload from its
 * incumbent to its candidate, and the controller that watches it (the same
 * controller `cutover serve` runs in the gateway process; whichever holds the
 * store lease acts). Commands write the store, so every gateway sharing it
 * follows. */
#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_control.h"
#include "cli_rollout.h"
#include "cutover/rollout.h"
#include "cutover/util.h"

static const co_cli_opt opts[] = {
    {"config", 'c', "FILE", "config file (default: $CUTOVER_CONFIG or cutover.yaml)"},
    {"reason", 'r', "TEXT", "why, for the rollout log (start, promote, pause, resume, abort, finalize)"},
    {"force", 'f', NULL, "promote before the hold is over or with triggers not ok; finalize inside the retention"},
    {"json", 0, NULL, "status: print JSON"},
    {"time-scale", 0, "N", "run: rollout time per real time (3600: an hour of hold in a second)"},
    {"once", 0, NULL, "run: one controller pass, then exit"},
    {NULL, 0, NULL, NULL},
};

int co_cli_time_scale(co_cli_ctx *ctx, double *out)
{
    const char *v = co_cli_get(ctx, "time-scale");
    *out = 1;
    if (!v)
        return 0;
    char *end;
    double d = strtod(v, &end);
    if (end == v || *end || !isfinite(d) || d <= 0 || d > 1e9) {
        fprintf(ctx->err, "cutover %s: --time-scale must be a number above 0 (e.g. 3600), got '%s'\n",
                ctx->cmd->name, v);
        return CO_EXIT_USAGE;
    }
    *out = d;
    return 0;
}

void co_cli_log_line(void *ud, int level, const char *msg)
{
    FILE *f = ud;
    char ts[40];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(f, "%s.%03ldZ %-5s %s\n", ts, now.tv_nsec / 1000000, co_log_levels[level < 0 || level > 3 ? 0 : level],
            msg);
    fflush(f);
}

static void actor(char *out, size_t n)
{
    const char *u = getenv("USER");
    snprintf(out, n, "user:%s", u && *u ? u : "cli");
}

static void fmt_need(uint64_t v, char *buf, size_t n)
{
    if (v == CO_STATS_NEVER)
        snprintf(buf, n, "never");
    else
        snprintf(buf, n, "%llu", (unsigned long long)v);
}

static void print_value(FILE *out, int trig, double v)
{
    char b[32];
    if (!isfinite(v))
        snprintf(b, sizeof b, "-");
    else if (trig == CO_TRIG_ERROR_RATE || trig == CO_TRIG_QUALITY)
        snprintf(b, sizeof b, "%+.1f pts", v);
    else
        snprintf(b, sizeof b, "%.2fx", v);
    fprintf(out, " %-11s", b);
}

static void print_status(FILE *out, const co_config *cfg, const co_rollout_status *s, const char *workload)
{
    if (!s->exists) {
        fprintf(out, "%s: no rollout (start one with `cutover rollout start %s`)\n", workload, workload);
        return;
    }
    const co_workload_conf *w = co_config_workload(cfg, workload);
    const co_rollout_conf *plan = co_workload_rollout(cfg, w);
    fprintf(out, "%s: %s (%s → %s)\n", workload, s->label, w->incumbent, w->candidate);
    /* the plan, with where we are */
    fprintf(out, "  stages     ");
    int done = !strcmp(s->s.state, "finalized"), rolled = !strcmp(s->s.state, "rolled_back");
    for (int i = 0; i < s->n_stages; i++) {
        char label[48];
        co_rollout_stage_info(plan, i, NULL, NULL, NULL, label, sizeof label);
        const char *mark = "";
        if (done || i < s->s.stage)
            mark = " ok";
        else if (i == s->s.stage)
            mark = rolled ? " ROLLED BACK" : !strcmp(s->s.state, "promoted") ? " ok" : " <";
        fprintf(out, "%s[%s%s]", i ? " - " : "", label, mark);
    }
    fprintf(out, "\n");
    /* progress through the plan: finished stages plus the share of this hold */
    double frac = 0;
    if (s->n_stages > 0) {
        double in_stage = s->hold_ms > 0 ? (double)s->s.hold_elapsed_ms / (double)s->hold_ms : 1;
        if (in_stage > 1)
            in_stage = 1;
        frac = done ? 1 : ((double)s->s.stage + (strcmp(s->s.state, "promoted") ? in_stage : 1)) / s->n_stages;
        if (rolled)
            frac = (double)s->s.stage / s->n_stages;
    }
    char bar[41];
    int fill = (int)lround(frac * 40);
    for (int i = 0; i < 40; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[40] = '\0';
    fprintf(out, "  progress   [%s] %3.0f%%\n", bar, frac * 100);
    if (rolled || done) {
        fprintf(out, "  serving    %s\n", rolled ? w->incumbent : w->candidate);
        return;
    }
    char hold[32], left[32], real[32];
    co_format_duration(s->hold_ms, hold, sizeof hold);
    co_format_duration_left(s->hold_left_ms, left, sizeof left);
    co_format_duration_left((int64_t)ceil((double)s->hold_left_ms / s->time_scale), real, sizeof real);
    int promoted = !strcmp(s->s.state, "promoted");
    if (s->time_scale != 1)
        fprintf(out, "  %-10s %s: %s left (%s real at time scale %g)\n", promoted ? "retention" : "hold", hold, left,
                real, s->time_scale);
    else
        fprintf(out, "  %-10s %s: %s left\n", promoted ? "retention" : "hold", hold, left);
    if (s->extensions)
        fprintf(out, "  extended   %d time%s: the evidence was inconclusive when the hold ended\n", s->extensions,
                s->extensions == 1 ? "" : "s");
    if (s->awaiting_promotion)
        fprintf(out, "  waiting    hold over, every trigger ok: `cutover rollout promote %s`\n", workload);
    if (s->last_tick_ms) {
        char ago[32];
        co_format_duration_left(co_now_ms() - s->last_tick_ms, ago, sizeof ago);
        fprintf(out, "  controller %s, last judged %s ago\n", s->controller ? s->controller : "?", ago);
    } else {
        fprintf(out, "  controller none has watched it yet (run `cutover serve` or `cutover rollout run`)\n");
    }
    if (promoted) {
        char ago[32];
        co_format_duration_left(co_now_ms() - s->probe_ms, ago, sizeof ago);
        if (s->probe_ms)
            fprintf(out, "  incumbent  %s, probed %s ago%s%s\n", s->probe_failures ? "NOT ANSWERING" : "answers", ago,
                    s->probe_error ? ": " : "", s->probe_error ? s->probe_error : "");
        return;
    }
    if (!s->analyzed)
        return;
    const co_rollout_analysis *a = &s->a;
    fprintf(out, "  window     %llu incumbent and %llu candidate requests since the stage began\n",
            (unsigned long long)a->inc.requests, (unsigned long long)a->cand.requests);
    fprintf(out, "  %-12s %-11s %-11s %-13s %-10s %s\n", "trigger", "value", "threshold", "verdict", "confidence",
            "needs (cand/inc)");
    for (int i = 0; i < CO_TRIG__N; i++) {
        const co_trigger_eval *t = &a->t[i];
        fprintf(out, "  %-12s", co_rollout_trigger_names[i]);
        if (!t->applies) {
            fprintf(out, " %-11s %-11s %-13s %-10s %s\n", "-", "-", "n/a", "-", t->note);
            continue;
        }
        print_value(out, i, t->value);
        char th[24], conf[16] = "-", nc[24], ni[24];
        if (i == CO_TRIG_ERROR_RATE || i == CO_TRIG_QUALITY)
            snprintf(th, sizeof th, "%g pts", t->threshold);
        else
            snprintf(th, sizeof th, "%gx", t->threshold);
        if (t->confidence > 0)
            snprintf(conf, sizeof conf, "%.1f%%", t->confidence * 100);
        fmt_need(t->need_cand, nc, sizeof nc);
        fmt_need(t->need_inc, ni, sizeof ni);
        fprintf(out, " %-11s %-13s %-10s", th, co_trigger_verdict_name(t->verdict), conf);
        if (t->verdict == CO_TRIGGER_INCONCLUSIVE)
            fprintf(out, " %s/%s: %s", nc, ni, t->note);
        fprintf(out, "\n");
    }
    if (a->contract_example[0])
        fprintf(out, "  contract   e.g. %s\n", a->contract_example);
}

/* The last n events of the rollout log, oldest first. */
static void print_events(FILE *out, co_store *st, const char *workload, size_t n)
{
    co_rollout_event_list l = {0};
    if (co_store_rollout_events(st, workload, 0, &l) < 0 || !l.n) {
        co_rollout_event_list_free(&l);
        return;
    }
    fprintf(out, "  recent events\n");
    for (size_t i = l.n > n ? l.n - n : 0; i < l.n; i++) {
        const co_rollout_event *e = &l.v[i];
        char ts[32];
        time_t t = (time_t)(e->ts_ms / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", &tm);
        fprintf(out, "    %s  %-14s %-13s %s%s%s%s%.110s\n", ts, e->actor ? e->actor : "", e->kind ? e->kind : "",
                e->from_state ? e->from_state : "", e->to_state ? " → " : "", e->to_state ? e->to_state : "",
                e->reason ? ": " : "", e->reason ? e->reason : "");
    }
    co_rollout_event_list_free(&l);
}

static int status(co_cli_ctx *ctx, co_store *st, const co_config *cfg, const char *workload)
{
    int json = co_cli_flag(ctx, "json"), rc = CO_EXIT_OK;
    co_buf b;
    co_buf_init(&b, CO_BUF_UNLIMITED);
    if (json && !workload)
        co_buf_puts(&b, "[");
    int first = 1;
    for (size_t i = 0; i < cfg->workloads.n; i++) {
        const co_workload_conf *w = (const co_workload_conf *)cfg->workloads.v + i;
        if (workload ? strcmp(w->name, workload) != 0 : !w->candidate)
            continue;
        co_rollout_status s;
        if (co_rollout_status_get(&s, st, cfg, w->name, NULL) < 0) {
            int e = co_error_last_status();
            fprintf(ctx->err, "cutover rollout status: %s\n", co_error_last());
            co_rollout_status_clear(&s);
            rc = e == CO_ENOENT || e == CO_EINVAL ? CO_EXIT_USAGE : CO_EXIT_FAIL;
            goto done;
        }
        if (json) {
            if (!workload && !first)
                co_buf_puts(&b, ",");
            co_rollout_status_json(&b, cfg, &s);
        } else {
            if (!first)
                fprintf(ctx->out, "\n");
            print_status(ctx->out, cfg, &s, w->name);
            if (s.exists)
                print_events(ctx->out, st, w->name, 5);
        }
        first = 0;
        co_rollout_status_clear(&s);
    }
    if (workload && first) {
        fprintf(ctx->err, "cutover rollout status: no workload '%s'\n", workload);
        rc = CO_EXIT_USAGE;
        goto done;
    }
    if (json) {
        if (!workload)
            co_buf_puts(&b, "]");
        fprintf(ctx->out, "%s\n", b.p ? b.p : "");
    } else if (first) {
        fprintf(ctx->out, "no workload has a candidate to roll out\n");
    }
done:
    co_buf_free(&b);
    return rc;
}

/* ---- run: a foreground controller ---------------------------------------------------- */

static int run_controller(co_cli_ctx *ctx)
{
    double scale;
    if (co_cli_time_scale(ctx, &scale))
        return CO_EXIT_USAGE;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(ctx->err, "cutover rollout run: curl_global_init failed\n");
        return CO_EXIT_FAIL;
    }
    co_controller_opts o = {
        .clock = {.scale = scale},
        .config_path = co_cli_config_path(ctx),
        .log = co_cli_log_line,
        .log_ud = ctx->err,
    };
    co_controller *c = NULL;
    int rc = CO_EXIT_OK;
    if (co_controller_new(&c, NULL, &o) < 0) {
        int e = co_error_last_status();
        fprintf(ctx->err, "cutover rollout run: %s\n", co_error_last());
        curl_global_cleanup();
        return e == CO_ECONFIG || e == CO_EINVAL || e == CO_ENOENT ? CO_EXIT_USAGE : CO_EXIT_FAIL;
    }
    if (co_cli_flag(ctx, "once")) {
        int held = 0;
        if (co_controller_tick(c, &held) < 0)
            rc = CO_EXIT_FAIL;
        fprintf(ctx->out, "%s\n", held ? "one pass done (held the lease)" : "another controller holds the lease");
        co_controller_free(c);
        curl_global_cleanup();
        return rc;
    }
    /* signals arrive here, on this thread, while the controller ticks on its own */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    if (co_controller_start_thread(c) < 0) {
        fprintf(ctx->err, "cutover rollout run: %s\n", co_error_last());
        rc = CO_EXIT_FAIL;
    } else {
        fprintf(ctx->out, "cutover rollout controller running (time scale %g); Ctrl-C stops it\n", scale);
        fflush(ctx->out);
        int sig = 0;
        sigwait(&set, &sig);
        co_controller_join(c);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    co_controller_free(c);
    curl_global_cleanup();
    return rc;
}

/* ---- dispatch ------------------------------------------------------------------------------ */

static const char *const subs[] = {"start", "status", "promote", "pause", "resume", "abort", "finalize", "run", NULL};

static int run(co_cli_ctx *ctx)
{
    const char *sub = ctx->argv[0];
    if (co_enum_index(subs, sub) < 0) {
        const char *near = co_suggest(sub, subs);
        fprintf(ctx->err, "cutover rollout: unknown action '%s'%s%s%s\nusage: %s\n", sub,
                near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "", ctx->cmd->usage);
        return CO_EXIT_USAGE;
    }
    if (!strcmp(sub, "run")) {
        if (ctx->argc > 1) {
            fprintf(ctx->err, "cutover rollout run watches every workload; it takes no workload name\n");
            return CO_EXIT_USAGE;
        }
        return run_controller(ctx);
    }
    const char *workload = ctx->argc > 1 ? ctx->argv[1] : NULL;
    if (!workload && strcmp(sub, "status")) {
        fprintf(ctx->err, "cutover rollout %s: which workload?\nusage: %s\n", sub, ctx->cmd->usage);
        return CO_EXIT_USAGE;
    }
    double scale;
    if (co_cli_time_scale(ctx, &scale))
        return CO_EXIT_USAGE;
    co_config *cfg = NULL;
    co_store *st = NULL;
    int rc = co_cli_load_config(ctx, &cfg);
    if (rc)
        return rc;
    rc = co_cli_open_store(ctx, cfg, &st);
    if (rc)
        goto done;
    if (!strcmp(sub, "status")) {
        rc = status(ctx, st, cfg, workload);
        goto done;
    }
    char who[80];
    actor(who, sizeof who);
    co_rollout_clock clk = {.scale = scale};
    co_rollout_cmd cmd = {.workload = workload, .actor = who, .reason = co_cli_get(ctx, "reason"),
                          .force = co_cli_flag(ctx, "force"), .clock = &clk};
    int r;
    if (!strcmp(sub, "start"))
        r = co_rollout_start(st, cfg, &cmd);
    else if (!strcmp(sub, "promote"))
        r = co_rollout_promote(st, cfg, &cmd);
    else if (!strcmp(sub, "pause"))
        r = co_rollout_pause(st, cfg, &cmd);
    else if (!strcmp(sub, "resume"))
        r = co_rollout_resume(st, cfg, &cmd);
    else if (!strcmp(sub, "abort"))
        r = co_rollout_abort(st, cfg, &cmd);
    else
        r = co_rollout_finalize(st, cfg, &cmd);
    if (r < 0) {
        int e = co_error_last_status();
        fprintf(ctx->err, "cutover rollout %s: %s\n", sub, co_error_last());
        rc = e == CO_ENOENT || e == CO_EINVAL ? CO_EXIT_USAGE : CO_EXIT_FAIL;
        goto done;
    }
    co_rollout_status s;
    if (co_rollout_status_get(&s, st, cfg, workload, NULL) == 0) {
        if (!strcmp(sub, "abort"))
            fprintf(ctx->out, "%s: rolled back to %s; incident report: `cutover report incident latest -w %s`\n",
                    workload, co_config_workload(cfg, workload)->incumbent, workload);
        else
            fprintf(ctx->out, "%s: %s\n", workload, s.label);
    }
    co_rollout_status_clear(&s);
done:
    co_store_close(st);
    co_config_free(cfg);
    return rc;
}

const co_cli_cmd co_cmd_rollout = {
    .name = "rollout",
    .summary = "staged rollout: shadow, canary stages with holds, promote, automatic rollback on triggers",
    .usage = "cutover rollout start|status|promote|pause|resume|abort|finalize WORKLOAD [-c FILE] [--reason TEXT] "
             "[--force] [--json] | cutover rollout run [--time-scale N] [--once]",
    .details =
        "start      begins the workload's plan (rollout.stages) at its first stage\n"
        "status     stage, percent, hold left, each trigger's value vs threshold, verdict and the sample\n"
        "           still needed, and progress through the stages (every workload when none is named)\n"
        "promote    the next stage now (refused before the hold is over or with a trigger not ok: --force)\n"
        "pause      freeze the hold (triggers still roll back on a breach); resume continues it\n"
        "abort      back to the incumbent: rolled back, logged, incident report written\n"
        "finalize   after promotion, once retain_incumbent has passed (--force before)\n"
        "run        the controller in the foreground (cutover serve runs one too; one acts at a time)",
    .opts = opts,
    .min_args = 1,
    .max_args = 2,
    .run = run,
};
