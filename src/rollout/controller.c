/* The rollout state machine and its controller (include/cutover/rollout.h):
 * user commands (start, pause, resume, promote, abort, finalize), status,
 * and the controller that — holding the store lease, a lock the store
 * releases when its holder's handle, process or database session ends, so
 * one acts at a time across a fleet and a standby takes over at its next
 * tick — steps every active rollout each `interval`: credits the
 * hold with the time it watched, judges the stage window, rolls back on a
 * breach, promotes when the hold is over and every trigger is ok, extends
 * the hold when the evidence is still inconclusive, and after promotion
 * probes the retained incumbent.
 *
 * Hold accounting: hold_elapsed_ms is rollout time a controller has watched
 * the stage. A controller credits only the time between two of its own ticks;
 * when it adopts a rollout (start, takeover after a crash, a change by a
 * user) it starts counting from that moment, so time with nobody watching
 * never counts as healthy time, and a restart resumes with the hold that was
 * left at the last tick.
 *
 * Controller-only state lives in data_json: tick_ms and controller (who
 * watched last), time_scale, extensions, awaiting (hold over, waiting for a
 * manual promote), paused_from, promoted_ms, probe_* after promotion. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cutover/control.h"
#include "cutover/rollout.h"
#include "cutover/util.h"

/* indexes into co_log_levels */
enum { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* ---- stored state helpers -------------------------------------------------------- */

static json_t *data_of(const co_rollout_state *r)
{
    json_t *j = r->data_json ? json_loads(r->data_json, 0, NULL) : NULL;
    if (!json_is_object(j)) {
        json_decref(j);
        j = json_object();
    }
    return j;
}

static int data_set(co_rollout_state *r, json_t *d)
{
    char *s = json_dumps(d, JSON_COMPACT);
    if (!s)
        return co_error_set(CO_ENOMEM, "out of memory");
    free(r->data_json);
    r->data_json = s;
    return 0;
}

static int64_t jint(json_t *d, const char *k)
{
    json_t *v = json_object_get(d, k);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : json_is_real(v) ? (int64_t)json_real_value(v) : 0;
}

static const char *jstr(json_t *d, const char *k)
{
    return json_string_value(json_object_get(d, k));
}

static int set_str(char **field, const char *v)
{
    char *c = strdup(v);
    if (!c)
        return co_error_set(CO_ENOMEM, "out of memory");
    free(*field);
    *field = c;
    return 0;
}

static int add_event(co_store *st, const char *workload, int64_t ts, const char *actor, const char *kind,
                     const char *from, const char *to, const char *reason, const char *metrics)
{
    co_rollout_event ev = {
        .workload = (char *)workload,
        .ts_ms = ts,
        .actor = (char *)actor,
        .kind = (char *)kind,
        .from_state = (char *)from,
        .to_state = (char *)to,
        .reason = (char *)reason,
        .metrics_json = (char *)metrics,
    };
    return co_store_rollout_event_add(st, &ev);
}

static int find_workload(const co_config *cfg, const char *name, const co_workload_conf **out)
{
    const co_workload_conf *w = name ? co_config_workload(cfg, name) : NULL;
    if (!w) {
        char list[1024] = "";
        size_t used = 0;
        for (size_t i = 0; i < cfg->workloads.n && used < sizeof list; i++)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
                                     ((const co_workload_conf *)cfg->workloads.v)[i].name);
        return co_error_set(CO_ENOENT, "no workload '%s' (workloads: %s)", name ? name : "", list);
    }
    if (!w->candidate)
        return co_error_set(CO_EINVAL, "workload '%s' has no candidate to roll out", w->name);
    *out = w;
    return 0;
}

static int64_t stage_hold(const co_rollout_conf *rc, const co_rollout_state *r)
{
    if (!strcmp(r->state, "promoted") || !strcmp(r->state, "finalized"))
        return rc->retain_incumbent_ms;
    if (r->stage < 0 || (size_t)r->stage >= rc->stages.n)
        return 0;
    return ((const co_stage_conf *)rc->stages.v)[r->stage].hold_ms;
}

/* The state a paused rollout returns to. */
static const char *running_state(const co_rollout_conf *rc, const co_rollout_state *r)
{
    const char *st = "canary";
    co_rollout_stage_info(rc, r->stage, &st, NULL, NULL, NULL, 0);
    return st;
}

/* Enters stage `stage` of the plan: applies its mode (no separate mode
 * event: the rollout event below says it), resets the hold, writes the state
 * with compare-and-set on r->version (0: create) and logs `kind`. */
static int enter_stage(co_store *st, const co_config *cfg, const co_workload_conf *w, co_rollout_state *r, int stage,
                       int64_t now, double scale, const char *actor, const char *kind, const char *reason,
                       const char *metrics)
{
    const co_rollout_conf *rc = co_workload_rollout(cfg, w);
    const char *state;
    int mode;
    double pct;
    char to[48], from[64];
    int rcode = co_rollout_stage_info(rc, stage, &state, &mode, &pct, to, sizeof to);
    if (rcode < 0)
        return rcode;
    co_rollout_state_label(rc, r, from, sizeof from);
    co_mode_change ch = {.workload = w->name, .mode = mode, .percent = pct, .actor = actor, .reason = reason,
                         .no_event = 1};
    if ((rcode = co_control_set_mode(st, cfg, &ch, NULL)) < 0)
        return rcode;
    json_t *old = data_of(r), *d = json_object();
    json_object_set_new(d, "time_scale", json_real(scale));
    if (json_object_get(old, "controller"))
        json_object_set(d, "controller", json_object_get(old, "controller"));
    if (!strcmp(state, "promoted"))
        json_object_set_new(d, "promoted_ms", json_integer(now));
    json_decref(old);
    int64_t expected = r->version;
    r->stage = stage;
    r->stage_started_ms = now;
    r->hold_elapsed_ms = 0;
    rcode = set_str(&r->state, state);
    if (rcode == 0)
        rcode = data_set(r, d);
    json_decref(d);
    if (rcode == 0)
        rcode = co_store_rollout_put(st, r, expected);
    if (rcode == 0)
        rcode = add_event(st, w->name, now, actor, kind, from, !strcmp(state, "promoted") ? "promoted" : to, reason,
                          metrics);
    return rcode;
}

/* ---- commands ---------------------------------------------------------------------------- */

static const char *actor_of(const co_rollout_cmd *cmd)
{
    return cmd->actor ? cmd->actor : "user";
}

static int load(co_store *st, const co_config *cfg, const co_rollout_cmd *cmd, const co_workload_conf **w,
                co_rollout_state *r)
{
    int rc = find_workload(cfg, cmd->workload, w);
    if (rc < 0)
        return rc;
    rc = co_store_rollout_get(st, (*w)->name, r);
    if (rc == CO_ENOENT)
        return co_error_set(CO_ESTATE, "workload '%s' has no rollout; start one with `cutover rollout start %s`",
                            (*w)->name, (*w)->name);
    return rc;
}

int co_rollout_start(co_store *st, const co_config *cfg, const co_rollout_cmd *cmd)
{
    const co_workload_conf *w = NULL;
    int rc = find_workload(cfg, cmd->workload, &w);
    if (rc < 0)
        return rc;
    const co_rollout_conf *plan = co_workload_rollout(cfg, w);
    if (!plan->stages.n)
        return co_error_set(CO_EINVAL, "workload '%s' has a rollout plan with no stages", w->name);
    co_rollout_state r = {0};
    rc = co_store_rollout_get(st, w->name, &r);
    if (rc < 0 && rc != CO_ENOENT)
        return rc;
    if (rc == 0 && co_rollout_state_active(r.state)) {
        char label[64];
        co_rollout_state_label(plan, &r, label, sizeof label);
        co_rollout_state_clear(&r);
        return co_error_set(CO_ESTATE, "workload '%s' already has a rollout (%s); abort it first", w->name, label);
    }
    int64_t expected = rc == 0 ? r.version : 0;
    co_error_clear();
    int64_t now = co_rollout_now(cmd->clock);
    const char *actor = actor_of(cmd);
    co_rollout_state_clear(&r);
    r.workload = strdup(w->name);
    r.state = strdup("pending");
    r.version = expected;
    if (!r.workload || !r.state) {
        co_rollout_state_clear(&r);
        return co_error_set(CO_ENOMEM, "out of memory");
    }
    r.stage_started_ms = now;
    rc = co_store_rollout_put(st, &r, expected);
    if (rc == 0) {
        char plan_txt[256] = "";
        size_t used = 0;
        for (size_t i = 0; i < plan->stages.n && used < sizeof plan_txt; i++) {
            char label[48], hold[32];
            co_rollout_stage_info(plan, (int)i, NULL, NULL, NULL, label, sizeof label);
            int64_t h = ((const co_stage_conf *)plan->stages.v)[i].hold_ms;
            used += (size_t)snprintf(plan_txt + used, sizeof plan_txt - used, "%s%s%s%s", i ? " → " : "", label,
                                     h ? " " : "", h ? co_format_duration(h, hold, sizeof hold) : "");
        }
        char reason[400];
        snprintf(reason, sizeof reason, "%s%s%s", cmd->reason ? cmd->reason : "", cmd->reason ? "; plan: " : "plan: ",
                 plan_txt);
        rc = add_event(st, w->name, now, actor, "start", NULL, "pending", reason, NULL);
    }
    if (rc == 0)
        rc = enter_stage(st, cfg, w, &r, 0, now, co_rollout_scale(cmd->clock), actor, "begin", cmd->reason, NULL);
    if (rc == CO_ECONFLICT) {
        /* a controller began the pending rollout meanwhile: it is started */
        co_rollout_state_clear(&r);
        if (co_store_rollout_get(st, w->name, &r) == 0 && co_rollout_state_active(r.state) &&
            strcmp(r.state, "pending"))
            rc = 0;
    }
    co_rollout_state_clear(&r);
    return rc;
}

int co_rollout_pause(co_store *st, const co_config *cfg, const co_rollout_cmd *cmd)
{
    const co_workload_conf *w = NULL;
    co_rollout_state r = {0};
    int rc = load(st, cfg, cmd, &w, &r);
    if (rc < 0)
        return rc;
    if (strcmp(r.state, "shadow") && strcmp(r.state, "canary")) {
        rc = co_error_set(CO_ESTATE, "the rollout of '%s' is %s: only a shadow or canary stage can be paused",
                          w->name, r.state);
        goto done;
    }
    char label[64];
    co_rollout_state_label(co_workload_rollout(cfg, w), &r, label, sizeof label);
    json_t *d = data_of(&r);
    json_object_set_new(d, "paused_from", json_string(r.state));
    rc = data_set(&r, d);
    json_decref(d);
    if (rc == 0)
        rc = set_str(&r.state, "paused");
    if (rc == 0)
        rc = co_store_rollout_put(st, &r, r.version);
    if (rc == 0) {
        char to[80];
        snprintf(to, sizeof to, "paused at %s", label);
        rc = add_event(st, w->name, co_rollout_now(cmd->clock), actor_of(cmd), "pause", label, to, cmd->reason, NULL);
    }
done:
    co_rollout_state_clear(&r);
    return rc;
}

int co_rollout_resume(co_store *st, const co_config *cfg, const co_rollout_cmd *cmd)
{
    const co_workload_conf *w = NULL;
    co_rollout_state r = {0};
    int rc = load(st, cfg, cmd, &w, &r);
    if (rc < 0)
        return rc;
    if (strcmp(r.state, "paused")) {
        rc = co_error_set(CO_ESTATE, "the rollout of '%s' is %s, not paused", w->name, r.state);
        goto done;
    }
    char from[64], to[64];
    co_rollout_state_label(co_workload_rollout(cfg, w), &r, from, sizeof from);
    json_t *d = data_of(&r);
    const char *back = jstr(d, "paused_from");
    rc = set_str(&r.state, back ? back : running_state(co_workload_rollout(cfg, w), &r));
    json_object_del(d, "paused_from");
    if (rc == 0)
        rc = data_set(&r, d);
    json_decref(d);
    if (rc == 0)
        rc = co_store_rollout_put(st, &r, r.version);
    co_rollout_state_label(co_workload_rollout(cfg, w), &r, to, sizeof to);
    if (rc == 0)
        rc = add_event(st, w->name, co_rollout_now(cmd->clock), actor_of(cmd), "resume", from, to, cmd->reason, NULL);
done:
    co_rollout_state_clear(&r);
    return rc;
}

int co_rollout_promote(co_store *st, const co_config *cfg, const co_rollout_cmd *cmd)
{
    const co_workload_conf *w = NULL;
    co_rollout_state r = {0};
    co_buf metrics;
    co_buf_init(&metrics, 1u << 20);
    int rc = load(st, cfg, cmd, &w, &r);
    if (rc < 0)
        goto done;
    const co_rollout_conf *plan = co_workload_rollout(cfg, w);
    if (!strcmp(r.state, "paused")) {
        rc = co_error_set(CO_ESTATE, "the rollout of '%s' is paused; resume it first", w->name);
        goto done;
    }
    if (strcmp(r.state, "shadow") && strcmp(r.state, "canary") && strcmp(r.state, "pending")) {
        rc = co_error_set(CO_ESTATE, "the rollout of '%s' is %s: nothing to promote%s", w->name, r.state,
                          !strcmp(r.state, "promoted") ? " (finalize it once the incumbent's retention is over)" : "");
        goto done;
    }
    int next = !strcmp(r.state, "pending") ? 0 : r.stage + 1;
    if ((size_t)next >= plan->stages.n) {
        rc = co_error_set(CO_ESTATE, "the rollout of '%s' is at its last stage; the plan has no stage after it",
                          w->name);
        goto done;
    }
    int64_t now = co_rollout_now(cmd->clock);
    char reason[600];
    if (strcmp(r.state, "pending")) {
        co_rollout_analysis a;
        int stage_mode = CO_MODE_CANARY;
        co_rollout_stage_info(plan, r.stage, NULL, &stage_mode, NULL, NULL, 0);
        if ((rc = co_rollout_analyze(&a, st, cfg, w, r.stage_started_ms, 0, stage_mode != CO_MODE_SHADOW)) < 0)
            goto done;
        if ((rc = co_rollout_analysis_json(&metrics, &a)) < 0)
            goto done;
        int64_t hold = stage_hold(plan, &r), left = hold - r.hold_elapsed_ms;
        if (!cmd->force) {
            char why[300] = "";
            if (a.verdict == CO_TRIGGER_BREACH)
                co_rollout_breach_reason(&a, a.breach, why, sizeof why);
            else if (left > 0) {
                char l[32];
                co_format_duration_left(left, l, sizeof l);
                snprintf(why, sizeof why, "%s of the hold left", l);
            } else if (a.verdict != CO_TRIGGER_OK) {
                for (int i = 0; i < CO_TRIG__N; i++)
                    if (a.t[i].applies && a.t[i].verdict != CO_TRIGGER_OK) {
                        snprintf(why, sizeof why, "%s is inconclusive: %s", co_rollout_trigger_names[i], a.t[i].note);
                        break;
                    }
            }
            if (why[0]) {
                rc = co_error_set(CO_ESTATE, "not promoting '%s': %s (--force to promote anyway)", w->name, why);
                goto done;
            }
        }
        snprintf(reason, sizeof reason, "%s%s%s", cmd->force ? "forced by hand" : "promoted by hand",
                 cmd->reason ? ": " : "", cmd->reason ? cmd->reason : "");
    } else {
        snprintf(reason, sizeof reason, "%s", cmd->reason ? cmd->reason : "begun by hand");
    }
    json_t *d = data_of(&r);
    json_t *ts = json_object_get(d, "time_scale");
    double scale = json_is_number(ts) ? json_number_value(ts) : co_rollout_scale(cmd->clock);
    json_decref(d);
    rc = enter_stage(st, cfg, w, &r, next, now, scale, actor_of(cmd), "promote", reason,
                     metrics.len ? metrics.p : NULL);
done:
    co_buf_free(&metrics);
    co_rollout_state_clear(&r);
    return rc;
}

int co_rollout_abort(co_store *st, const co_config *cfg, const co_rollout_cmd *cmd)
{
    const co_workload_conf *w = NULL;
    co_rollout_state r = {0};
    int rc = load(st, cfg, cmd, &w, &r);
    if (rc < 0)
        return rc;
    if (!co_rollout_state_active(r.state)) {
        rc = co_error_set(CO_ESTATE, "the rollout of '%s' is %s: nothing to abort", w->name, r.state);
        co_rollout_state_clear(&r);
        return rc;
    }
    co_rollout_state_clear(&r);
    char reason[400];
    snprintf(reason, sizeof reason, "aborted%s%s", cmd->reason ? ": " : "", cmd->reason ? cmd->reason : "");
    co_mode_change ch = {.workload = w->name, .mode = CO_MODE_INCUMBENT, .actor = actor_of(cmd), .reason = reason,
                         .rollback = 1, .trigger = "manual", .kind = "abort"};
    return co_control_set_mode(st, cfg, &ch, NULL);
}

int co_rollout_finalize(co_store *st, const co_config *cfg, const co_rollout_cmd *cmd)
{
    const co_workload_conf *w = NULL;
    co_rollout_state r = {0};
    int rc = load(st, cfg, cmd, &w, &r);
    if (rc < 0)
        return rc;
    const co_rollout_conf *plan = co_workload_rollout(cfg, w);
    if (strcmp(r.state, "promoted")) {
        rc = co_error_set(CO_ESTATE, "the rollout of '%s' is %s: only a promoted rollout can be finalized", w->name,
                          r.state);
        goto done;
    }
    int64_t left = plan->retain_incumbent_ms - r.hold_elapsed_ms;
    char l[32], keep[32];
    co_format_duration_left(left, l, sizeof l);
    co_format_duration(plan->retain_incumbent_ms, keep, sizeof keep);
    if (left > 0 && !cmd->force) {
        rc = co_error_set(CO_ESTATE,
                          "the incumbent of '%s' is retained for %s after promotion: %s left (--force to finalize now)",
                          w->name, keep, l);
        goto done;
    }
    int64_t expected = r.version;
    if ((rc = set_str(&r.state, "finalized")) == 0)
        rc = co_store_rollout_put(st, &r, expected);
    if (rc == 0) {
        char reason[400];
        if (left > 0)
            snprintf(reason, sizeof reason, "forced with %s of the %s retention left%s%s", l, keep,
                     cmd->reason ? ": " : "", cmd->reason ? cmd->reason : "");
        else
            snprintf(reason, sizeof reason, "the incumbent was retained %s%s%s", keep, cmd->reason ? ": " : "",
                     cmd->reason ? cmd->reason : "");
        rc = add_event(st, w->name, co_rollout_now(cmd->clock), actor_of(cmd), "finalize", "promoted", "finalized",
                       reason, NULL);
    }
done:
    co_rollout_state_clear(&r);
    return rc;
}

/* ---- status ---------------------------------------------------------------------------------- */

void co_rollout_status_clear(co_rollout_status *s)
{
    co_rollout_state_clear(&s->s);
    free(s->controller);
    free(s->probe_error);
    memset(s, 0, sizeof *s);
}

int co_rollout_status_get(co_rollout_status *out, co_store *st, const co_config *cfg, const char *workload,
                          const co_rollout_clock *clock)
{
    memset(out, 0, sizeof *out);
    const co_workload_conf *w = NULL;
    int rc = find_workload(cfg, workload, &w);
    if (rc < 0)
        return rc;
    const co_rollout_conf *plan = co_workload_rollout(cfg, w);
    out->n_stages = (int)plan->stages.n;
    out->time_scale = 1;
    rc = co_store_rollout_get(st, w->name, &out->s);
    if (rc == CO_ENOENT) {
        co_error_clear();
        return 0;
    }
    if (rc < 0)
        return rc;
    out->exists = 1;
    co_rollout_state_label(plan, &out->s, out->label, sizeof out->label);
    json_t *d = data_of(&out->s);
    json_t *ts = json_object_get(d, "time_scale");
    if (json_is_number(ts) && json_number_value(ts) > 0)
        out->time_scale = json_number_value(ts);
    out->extensions = (int)jint(d, "extensions");
    out->awaiting_promotion = json_is_true(json_object_get(d, "awaiting"));
    out->last_tick_ms = jint(d, "tick_ms");
    out->probe_failures = (int)jint(d, "probe_failures");
    out->probe_ms = jint(d, "probe_ms");
    if (jstr(d, "controller"))
        out->controller = strdup(jstr(d, "controller"));
    if (jstr(d, "probe_error"))
        out->probe_error = strdup(jstr(d, "probe_error"));
    json_decref(d);
    const char *state = out->s.state;
    int mode = CO_MODE_INCUMBENT;
    double pct = 0;
    if (co_rollout_stage_info(plan, out->s.stage, NULL, &mode, &pct, NULL, 0) == 0 &&
        (co_rollout_state_active(state) || !strcmp(state, "finalized")) && strcmp(state, "pending"))
        out->percent = mode == CO_MODE_SHADOW ? 0 : pct;
    out->hold_ms = stage_hold(plan, &out->s);
    out->hold_left_ms = out->hold_ms > out->s.hold_elapsed_ms ? out->hold_ms - out->s.hold_elapsed_ms : 0;
    if (!strcmp(state, "shadow") || !strcmp(state, "canary") || !strcmp(state, "paused")) {
        (void)clock;
        rc = co_rollout_analyze(&out->a, st, cfg, w, out->s.stage_started_ms, 0, mode != CO_MODE_SHADOW);
        if (rc < 0)
            return rc;
        out->analyzed = 1;
    }
    return 0;
}

static json_t *jnum(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

json_t *co__rollout_analysis_to_json(const co_rollout_analysis *a);

int co_rollout_status_json(co_buf *out, const co_config *cfg, const co_rollout_status *s)
{
    (void)cfg;
    json_t *j = json_object();
    json_object_set_new(j, "exists", json_boolean(s->exists));
    if (s->exists) {
        json_object_set_new(j, "workload", json_string(s->s.workload));
        json_object_set_new(j, "state", json_string(s->s.state));
        json_object_set_new(j, "label", json_string(s->label));
        json_object_set_new(j, "stage", json_integer(s->s.stage));
        json_object_set_new(j, "stages", json_integer(s->n_stages));
        json_object_set_new(j, "percent", jnum(s->percent));
        json_object_set_new(j, "stage_started_ms", json_integer(s->s.stage_started_ms));
        json_object_set_new(j, "hold_ms", json_integer(s->hold_ms));
        json_object_set_new(j, "hold_elapsed_ms", json_integer(s->s.hold_elapsed_ms));
        json_object_set_new(j, "hold_left_ms", json_integer(s->hold_left_ms));
        json_object_set_new(j, "time_scale", jnum(s->time_scale));
        json_object_set_new(j, "awaiting_promotion", json_boolean(s->awaiting_promotion));
        json_object_set_new(j, "extensions", json_integer(s->extensions));
        json_object_set_new(j, "last_tick_ms", s->last_tick_ms ? json_integer(s->last_tick_ms) : json_null());
        json_object_set_new(j, "controller", s->controller ? json_string(s->controller) : json_null());
        json_object_set_new(j, "version", json_integer(s->s.version));
        if (!strcmp(s->s.state, "promoted") || !strcmp(s->s.state, "finalized")) {
            json_object_set_new(j, "probe_failures", json_integer(s->probe_failures));
            json_object_set_new(j, "probe_ms", s->probe_ms ? json_integer(s->probe_ms) : json_null());
            json_object_set_new(j, "probe_error", s->probe_error ? json_string(s->probe_error) : json_null());
        }
        if (s->analyzed)
            json_object_set_new(j, "analysis", co__rollout_analysis_to_json(&s->a));
    }
    char *txt = json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    json_decref(j);
    if (!txt)
        return co_error_set(CO_ENOMEM, "out of memory");
    int rc = co_buf_puts(out, txt);
    free(txt);
    return rc;
}

/* ---- the controller ------------------------------------------------------------------------------ */

typedef struct watch {
    char *workload;
    int64_t version;     /* the state version we last wrote or adopted */
    int64_t anchor_ms;   /* real time the hold was last credited up to */
    int64_t judged_ms;   /* real time of the last analysis (0: never) */
} watch;

struct co_controller {
    const co_config *cfg;       /* borrowed, or own_cfg */
    co_config *own_cfg;
    char *config_path;
    struct timespec cfg_mtime;
    co_store *st;
    co_rollout_clock clock;
    char holder[160];
    char lease[64];
    co_controller_log_fn log;
    void *log_ud;
    co_probe_fn probe;
    void *probe_ud;
    int held;
    watch *w;
    size_t nw;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    pthread_t th;
    int th_on;
};

static void clog_(co_controller *c, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void clog_(co_controller *c, int level, const char *fmt, ...)
{
    if (!c->log || level > c->cfg->log_level)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->log(c->log_ud, level, msg);
}

static void forget_all(co_controller *c)
{
    for (size_t i = 0; i < c->nw; i++)
        free(c->w[i].workload);
    free(c->w);
    c->w = NULL;
    c->nw = 0;
}

static watch *watch_of(co_controller *c, const char *workload, int create)
{
    for (size_t i = 0; i < c->nw; i++)
        if (!strcmp(c->w[i].workload, workload))
            return &c->w[i];
    if (!create)
        return NULL;
    watch *nw = realloc(c->w, (c->nw + 1) * sizeof *nw);
    if (!nw)
        return NULL;
    c->w = nw;
    watch *x = &c->w[c->nw];
    memset(x, 0, sizeof *x);
    x->workload = strdup(workload);
    if (!x->workload)
        return NULL;
    c->nw++;
    return x;
}

static void forget(co_controller *c, const char *workload)
{
    for (size_t i = 0; i < c->nw; i++)
        if (!strcmp(c->w[i].workload, workload)) {
            free(c->w[i].workload);
            c->w[i] = c->w[--c->nw];
            return;
        }
}

static int64_t min_interval_real(const co_controller *c)
{
    int64_t best = 0;
    const co_config *cfg = c->cfg;
    for (size_t i = 0; i < cfg->workloads.n; i++) {
        const co_workload_conf *w = (const co_workload_conf *)cfg->workloads.v + i;
        int64_t iv = co_rollout_to_real_ms(&c->clock, co_workload_rollout(cfg, w)->interval_ms);
        if (!best || iv < best)
            best = iv;
    }
    if (!best)
        best = co_rollout_to_real_ms(&c->clock, cfg->rollout.interval_ms);
    return best;
}

int64_t co_controller_period_ms(const co_controller *c)
{
    int64_t p = min_interval_real(c);
    return p < 100 ? 100 : p > 1000 ? 1000 : p;
}

/* The lease is a lock (store.h): it is never lost by timing out. This is only
 * the expiry written into the informational leases row — three missed
 * renewals — so someone reading the table can tell a stale row. */
int64_t co_controller_lease_ttl_ms(const co_controller *c)
{
    return 3 * co_controller_period_ms(c);
}

/* How long a pending rollout (a start that may still be writing its second
 * step) is left alone before the controller begins it. */
static int64_t pending_grace_ms(const co_controller *c)
{
    int64_t a = 6 * min_interval_real(c), b = 6 * co_controller_period_ms(c);
    int64_t g = a > b ? a : b;
    return g < 5000 ? 5000 : g;
}

static void maybe_reload(co_controller *c)
{
    if (!c->config_path)
        return;
    struct stat sb;
    if (stat(c->config_path, &sb) != 0)
        return;
    if (sb.st_mtim.tv_sec == c->cfg_mtime.tv_sec && sb.st_mtim.tv_nsec == c->cfg_mtime.tv_nsec)
        return;
    co_diags d = {0};
    co_config *cfg = NULL;
    if (co_config_load(&cfg, c->config_path, &d) < 0) {
        clog_(c, LOG_WARN, "rollout controller: keeping the running config: %s:%d: %s", c->config_path,
              d.n ? d.v[0].line : 0, d.n ? d.v[0].msg : co_error_last());
        co_diags_free(&d);
        c->cfg_mtime = sb.st_mtim;
        return;
    }
    co_diags_free(&d);
    co_config_free(c->own_cfg);
    c->own_cfg = cfg;
    c->cfg = cfg;
    c->cfg_mtime = sb.st_mtim;
    clog_(c, LOG_INFO, "rollout controller: config %s reloaded", c->config_path);
}

int co_controller_new(co_controller **out, const co_config *cfg, const co_controller_opts *o)
{
    *out = NULL;
    co_controller_opts none = {0};
    if (!o)
        o = &none;
    co_controller *c = calloc(1, sizeof *c);
    if (!c)
        return co_error_set(CO_ENOMEM, "out of memory");
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->clock = o->clock;
    c->log = o->log;
    c->log_ud = o->log_ud;
    c->probe = o->probe ? o->probe : co_rollout_probe_incumbent;
    c->probe_ud = o->probe ? o->probe_ud : NULL;
    c->cfg = cfg;
    int rc = 0;
    if (o->config_path) {
        c->config_path = strdup(o->config_path);
        co_diags d = {0};
        struct stat sb;
        if (!c->config_path) {
            rc = co_error_set(CO_ENOMEM, "out of memory");
            goto done;
        }
        if (stat(c->config_path, &sb) == 0)
            c->cfg_mtime = sb.st_mtim;
        if ((rc = co_config_load(&c->own_cfg, c->config_path, &d)) < 0) {
            if (d.n)
                co_error_set(rc, "%s:%d:%d: %s", d.v[0].file ? d.v[0].file : c->config_path, d.v[0].line,
                             d.v[0].col, d.v[0].msg);
            co_diags_free(&d);
            goto done;
        }
        co_diags_free(&d);
        c->cfg = c->own_cfg;
    }
    if (!c->cfg) {
        rc = co_error_set(CO_EINVAL, "the controller needs a config");
        goto done;
    }
    if (o->holder) {
        snprintf(c->holder, sizeof c->holder, "%s", o->holder);
    } else {
        char host[64] = "host";
        gethostname(host, sizeof host - 1);
        snprintf(c->holder, sizeof c->holder, "%s:%ld:%lld", host, (long)getpid(), (long long)co_now_ms());
    }
    snprintf(c->lease, sizeof c->lease, "%s", o->lease ? o->lease : "rollout-controller");
    if ((rc = co_store_open(&c->st, c->cfg->store)) < 0)
        goto done;
    *out = c;
    c = NULL;
done:
    co_controller_free(c);
    return rc;
}

void co__controller_abandon(co_controller *c)
{
    if (!c)
        return;
    co_controller_join(c);
    co_store_close(c->st); /* no lease_drop: the store's lock goes with the handle */
    c->st = NULL;
    c->held = 0;
    co_controller_free(c);
}

void co_controller_free(co_controller *c)
{
    if (!c)
        return;
    co_controller_join(c);
    if (c->st) {
        if (c->held)
            co_store_lease_drop(c->st, c->lease, c->holder);
        co_store_close(c->st);
    }
    forget_all(c);
    co_config_free(c->own_cfg);
    free(c->config_path);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
}

/* Writes the state the controller computed; a conflict means a person (or
 * another controller) changed it in between: their change stands, and the
 * next tick starts from it. */
static int put(co_controller *c, co_rollout_state *r, watch *wt)
{
    int rc = co_store_rollout_put(c->st, r, r->version);
    if (rc == CO_ECONFLICT) {
        clog_(c, LOG_DEBUG, "rollout %s: changed by someone else meanwhile; re-reading next tick", r->workload);
        forget(c, r->workload);
        return 0;
    }
    if (rc == 0 && wt)
        wt->version = r->version;
    return rc;
}

/* "error_rate (+44 candidate), latency_p95 (+499 candidate, +499 incumbent)" */
static void inconclusive_summary(const co_rollout_analysis *a, char *out, size_t n)
{
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < CO_TRIG__N && used < n; i++) {
        const co_trigger_eval *t = &a->t[i];
        if (!t->applies || t->verdict == CO_TRIGGER_OK)
            continue;
        char c[48] = "", in[48] = "";
        if (t->need_cand == CO_STATS_NEVER || t->need_inc == CO_STATS_NEVER)
            snprintf(c, sizeof c, "on the threshold");
        else {
            if (t->need_cand)
                snprintf(c, sizeof c, "+%llu candidate", (unsigned long long)t->need_cand);
            if (t->need_inc)
                snprintf(in, sizeof in, "%s+%llu incumbent", c[0] ? ", " : "", (unsigned long long)t->need_inc);
        }
        used += (size_t)snprintf(out + used, n - used, "%s%s (%s%s)", used ? ", " : "", co_rollout_trigger_names[i],
                                 c, in);
    }
}

static int step_stage(co_controller *c, const co_workload_conf *w, co_rollout_state *r, watch *wt, json_t *d,
                      int64_t now)
{
    const co_config *cfg = c->cfg;
    const co_rollout_conf *plan = co_workload_rollout(cfg, w);
    int mode = CO_MODE_CANARY;
    co_rollout_stage_info(plan, r->stage, NULL, &mode, NULL, NULL, 0);
    co_rollout_analysis a;
    int rc = co_rollout_analyze(&a, c->st, cfg, w, r->stage_started_ms, 0, mode != CO_MODE_SHADOW);
    if (rc < 0)
        return rc;
    co_buf m;
    co_buf_init(&m, 1u << 20);
    if ((rc = co_rollout_analysis_json(&m, &a)) < 0)
        goto done;
    char label[64];
    co_rollout_state_label(plan, r, label, sizeof label);
    if (a.verdict == CO_TRIGGER_BREACH) {
        char reason[400];
        co_rollout_breach_reason(&a, a.breach, reason, sizeof reason);
        co_mode_change ch = {.workload = w->name, .mode = CO_MODE_INCUMBENT, .actor = "controller",
                             .reason = reason, .rollback = 1, .trigger = co_rollout_trigger_names[a.breach],
                             .metrics_json = m.p, .window_since_ms = r->stage_started_ms};
        rc = co_control_set_mode(c->st, cfg, &ch, NULL);
        if (rc == 0)
            clog_(c, LOG_WARN, "rollout %s: rolled back at %s: %s", w->name, label, reason);
        forget(c, w->name);
        goto done;
    }
    int64_t hold = stage_hold(plan, r);
    int paused = !strcmp(r->state, "paused");
    if (!paused && r->hold_elapsed_ms >= hold) {
        char hold_txt[32];
        co_format_duration(hold, hold_txt, sizeof hold_txt);
        if (a.verdict == CO_TRIGGER_OK && (size_t)r->stage + 1 < plan->stages.n) {
            if (plan->auto_promote) {
                char reason[200], from[64], to[48];
                snprintf(reason, sizeof reason, "the %s hold passed with every trigger ok", hold_txt);
                snprintf(from, sizeof from, "%s", label);
                co_rollout_stage_info(plan, r->stage + 1, NULL, NULL, NULL, to, sizeof to);
                double scale = co_rollout_scale(&c->clock);
                rc = enter_stage(c->st, cfg, w, r, r->stage + 1, now, scale, "controller", "promote", reason, m.p);
                if (rc == CO_ECONFLICT) {
                    forget(c, w->name);
                    rc = 0;
                    goto done;
                }
                if (rc == 0) {
                    clog_(c, LOG_INFO, "rollout %s: %s → %s (%s)", w->name, from, to, reason);
                    wt->version = r->version;
                    wt->anchor_ms = now;
                }
                goto done;
            }
            if (!json_is_true(json_object_get(d, "awaiting"))) {
                json_object_set_new(d, "awaiting", json_true());
                char reason[200];
                snprintf(reason, sizeof reason, "the %s hold passed with every trigger ok; waiting for "
                                                "`cutover rollout promote %s`", hold_txt, w->name);
                add_event(c->st, w->name, now, "controller", "hold-complete", label, label, reason, m.p);
                clog_(c, LOG_INFO, "rollout %s: %s", w->name, reason);
            }
        } else if (a.verdict != CO_TRIGGER_OK) {
            /* an event when the hold ends, then after 1, 3, 7... more hold
             * lengths: the story of a long wait, not one line per tick */
            int64_t ext = jint(d, "extensions");
            int64_t period = hold > 0 ? hold : plan->interval_ms;
            double due = (double)hold + (double)period * (ldexp(1.0, (int)(ext < 60 ? ext : 60)) - 1);
            if ((double)r->hold_elapsed_ms >= due) {
                char why[600], reason[800];
                inconclusive_summary(&a, why, sizeof why);
                snprintf(reason, sizeof reason,
                         "the %s hold is over but the evidence is inconclusive; samples still needed: %s", hold_txt,
                         why);
                json_object_set_new(d, "extensions", json_integer(ext + 1));
                add_event(c->st, w->name, now, "controller", "hold-extended", label, label, reason, m.p);
                clog_(c, LOG_INFO, "rollout %s: hold extended: %s", w->name, why);
            }
        }
    }
    json_object_set_new(d, "verdict", json_string(co_trigger_verdict_name(a.verdict)));
    if ((rc = data_set(r, d)) == 0)
        rc = put(c, r, wt);
done:
    co_buf_free(&m);
    return rc;
}

static int step_promoted(co_controller *c, const co_workload_conf *w, co_rollout_state *r, watch *wt, json_t *d,
                         int64_t now)
{
    const co_rollout_conf *plan = co_workload_rollout(c->cfg, w);
    int failures = (int)jint(d, "probe_failures");
    co_error_clear();
    int prc = c->probe(c->probe_ud, c->cfg, w);
    json_object_set_new(d, "probe_ms", json_integer(now));
    if (prc < 0) {
        char why[600];
        snprintf(why, sizeof why, "%s", co_error_last());
        failures++;
        json_object_set_new(d, "probe_failures", json_integer(failures));
        json_object_set_new(d, "probe_error", json_string(why));
        /* the first failure and then every tenth in a row: a down incumbent is one story, not thousands */
        if (failures == 1 || failures % 10 == 0) {
            char reason[700];
            snprintf(reason, sizeof reason, "the retained incumbent '%s' did not answer a probe (%d in a row): %s",
                     w->incumbent, failures, why);
            add_event(c->st, w->name, now, "controller", "probe-failed", "promoted", "promoted", reason, NULL);
            clog_(c, LOG_WARN, "rollout %s: %s", w->name, reason);
        }
    } else {
        if (failures > 0) {
            char reason[200];
            snprintf(reason, sizeof reason, "the retained incumbent '%s' answers again after %d failed probe%s",
                     w->incumbent, failures, failures == 1 ? "" : "s");
            add_event(c->st, w->name, now, "controller", "probe-ok", "promoted", "promoted", reason, NULL);
            clog_(c, LOG_INFO, "rollout %s: %s", w->name, reason);
        }
        json_object_set_new(d, "probe_failures", json_integer(0));
        json_object_del(d, "probe_error");
    }
    if (r->hold_elapsed_ms >= plan->retain_incumbent_ms && !json_is_true(json_object_get(d, "retention_over"))) {
        char keep[32], reason[200];
        co_format_duration(plan->retain_incumbent_ms, keep, sizeof keep);
        snprintf(reason, sizeof reason, "the incumbent was retained %s; `cutover rollout finalize %s` may retire it",
                 keep, w->name);
        json_object_set_new(d, "retention_over", json_true());
        add_event(c->st, w->name, now, "controller", "retention-over", "promoted", "promoted", reason, NULL);
    }
    int rc = data_set(r, d);
    return rc ? rc : put(c, r, wt);
}

static int step(co_controller *c, const co_workload_conf *w, int64_t now)
{
    co_rollout_state r = {0};
    int rc = co_store_rollout_get(c->st, w->name, &r);
    if (rc == CO_ENOENT) {
        co_error_clear();
        forget(c, w->name);
        return 0;
    }
    if (rc < 0)
        return rc;
    json_t *d = NULL;
    if (!co_rollout_state_active(r.state)) {
        forget(c, w->name);
        goto done;
    }
    const co_rollout_conf *plan = co_workload_rollout(c->cfg, w);
    if (!strcmp(r.state, "pending")) {
        /* A start that stopped half way (its process died between the two
         * writes): begin it — but only once it is clearly abandoned, never
         * racing a start that is still in progress. */
        if (now - r.stage_started_ms < pending_grace_ms(c))
            goto done;
        rc = enter_stage(c->st, c->cfg, w, &r, 0, now, co_rollout_scale(&c->clock), "controller", "begin",
                         "a pending rollout, begun by the controller", NULL);
        if (rc == CO_ECONFLICT)
            rc = 0;
        forget(c, w->name);
        goto done;
    }
    watch *wt = watch_of(c, w->name, 0);
    int64_t interval = co_rollout_to_real_ms(&c->clock, plan->interval_ms);
    d = data_of(&r);
    if (!wt || wt->version != r.version) {
        /* adopt: count the hold from now on */
        int fresh = !wt;
        if (!wt && !(wt = watch_of(c, w->name, 1))) {
            rc = co_error_set(CO_ENOMEM, "out of memory");
            goto done;
        }
        const char *prev = jstr(d, "controller");
        if (fresh && prev && strcmp(prev, c->holder)) {
            char reason[400], left[32], label[64];
            co_format_duration_left(stage_hold(plan, &r) - r.hold_elapsed_ms, left, sizeof left);
            co_rollout_state_label(plan, &r, label, sizeof label);
            snprintf(reason, sizeof reason, "controller %s took over from %s; %s of the hold left", c->holder, prev,
                     left);
            add_event(c->st, w->name, now, "controller", "takeover", label, label, reason, NULL);
            clog_(c, LOG_INFO, "rollout %s: %s", w->name, reason);
        }
        wt->version = r.version;
        wt->anchor_ms = now;
        wt->judged_ms = 0;
    } else if (wt->judged_ms && now - wt->judged_ms < interval) {
        goto done; /* not due yet */
    }
    /* credit the hold with the time this controller watched */
    int64_t watched = now - wt->anchor_ms;
    wt->anchor_ms = now;
    wt->judged_ms = now;
    if (strcmp(r.state, "paused"))
        r.hold_elapsed_ms += co_rollout_to_rollout_ms(&c->clock, watched);
    json_object_set_new(d, "tick_ms", json_integer(now));
    json_object_set_new(d, "controller", json_string(c->holder));
    json_object_set_new(d, "time_scale", json_real(co_rollout_scale(&c->clock)));
    if (!strcmp(r.state, "promoted"))
        rc = step_promoted(c, w, &r, wt, d, now);
    else
        rc = step_stage(c, w, &r, wt, d, now);
done:
    json_decref(d);
    co_rollout_state_clear(&r);
    return rc;
}

int co_controller_tick(co_controller *c, int *held)
{
    int64_t now = co_rollout_now(&c->clock);
    int h = 0;
    int rc = co_store_lease_take(c->st, c->lease, c->holder, co_controller_lease_ttl_ms(c), &h);
    if (rc < 0) {
        /* cannot tell whether we still hold it: act as if not */
        if (c->held)
            clog_(c, LOG_WARN, "rollout controller %s: lease: %s", c->holder, co_error_last());
        c->held = 0;
        forget_all(c);
        if (held)
            *held = 0;
        return rc;
    }
    if (h != c->held) {
        clog_(c, LOG_INFO, "rollout controller %s: %s the lease '%s'", c->holder, h ? "holds" : "lost", c->lease);
        forget_all(c);
    }
    c->held = h;
    if (held)
        *held = h;
    if (!h)
        return 0;
    maybe_reload(c);
    int first = 0;
    for (size_t i = 0; i < c->cfg->workloads.n; i++) {
        const co_workload_conf *w = (const co_workload_conf *)c->cfg->workloads.v + i;
        if (!w->candidate)
            continue;
        /* A store call that lost the connection lost the lock with it, and the
         * next call would run on a new session that does not hold it: stop
         * acting until the next tick takes the lease again. */
        if (!co_store_lease_held(c->st, c->lease, c->holder)) {
            clog_(c, LOG_WARN, "rollout controller %s: lost the lease '%s' with the store connection",
                  c->holder, c->lease);
            c->held = 0;
            forget_all(c);
            if (held)
                *held = 0;
            break;
        }
        int r = step(c, w, now);
        if (r < 0) {
            clog_(c, LOG_ERROR, "rollout %s: %s", w->name, co_error_last());
            if (!first)
                first = r;
        }
    }
    return first;
}

void co_controller_stop(co_controller *c)
{
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

int co_controller_run(co_controller *c)
{
    clog_(c, LOG_INFO,
          "rollout controller %s: ticking every %lld ms (lease '%s': a store lock, taken over at a standby's "
          "next tick when its holder ends; time scale %g)",
          c->holder, (long long)co_controller_period_ms(c), c->lease, co_rollout_scale(&c->clock));
    for (;;) {
        pthread_mutex_lock(&c->mu);
        int stop = c->stop;
        pthread_mutex_unlock(&c->mu);
        if (stop)
            break;
        co_controller_tick(c, NULL);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t p = co_controller_period_ms(c);
        ts.tv_sec += p / 1000;
        ts.tv_nsec += (p % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&c->mu);
        while (!c->stop && pthread_cond_timedwait(&c->cv, &c->mu, &ts) != ETIMEDOUT)
            ;
        pthread_mutex_unlock(&c->mu);
    }
    if (c->held) {
        co_store_lease_drop(c->st, c->lease, c->holder);
        c->held = 0;
        clog_(c, LOG_INFO, "rollout controller %s: released the lease", c->holder);
    }
    return 0;
}

static void *thread_main(void *arg)
{
    co_controller_run(arg);
    return NULL;
}

int co_controller_start_thread(co_controller *c)
{
    if (c->th_on)
        return co_error_set(CO_ESTATE, "the controller thread already runs");
    c->stop = 0;
    if (pthread_create(&c->th, NULL, thread_main, c))
        return co_error_set(CO_ENOMEM, "cannot start the controller thread");
    c->th_on = 1;
    return 0;
}

void co_controller_join(co_controller *c)
{
    if (!c || !c->th_on)
        return;
    co_controller_stop(c);
    pthread_join(c->th, NULL);
    c->th_on = 0;
}
