/* Stored, audited workload mode changes (include/cutover/control.h),
 * including what a rollback does to an active rollout: rolled_back, logged,
 * and an incident report written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cutover/control.h"
#include "cutover/incident.h"
#include "cutover/rollout.h"
#include "cutover/util.h"

static int unknown_workload(const co_config *cfg, const char *name)
{
    char list[1024] = "";
    size_t used = 0;
    for (size_t i = 0; i < cfg->workloads.n && used < sizeof list; i++) {
        const co_workload_conf *w = (const co_workload_conf *)cfg->workloads.v + i;
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", w->name);
    }
    return co_error_set(CO_ENOENT, "no workload '%s' (workloads: %s)", name, list);
}

int co_control_parse_mode(const char *mode, const char *percent, int *out_mode, double *out_percent)
{
    int m = co_enum_index(co_modes, mode);
    if (m < 0) {
        const char *near = co_suggest(mode, co_modes);
        return co_error_set(CO_EINVAL, "unknown mode '%s'%s%s%s (incumbent, candidate, shadow, canary PERCENT)", mode,
                            near ? "; did you mean '" : "", near ? near : "", near ? "'?" : "");
    }
    double p = 0;
    if (m == CO_MODE_CANARY) {
        if (!percent)
            return co_error_set(CO_EINVAL, "canary needs a percent, e.g. 'canary 10'");
        char *end;
        p = strtod(percent, &end);
        if (end == percent || (*end && strcmp(end, "%") != 0) || !(p > 0 && p <= 100))
            return co_error_set(CO_EINVAL, "canary percent must be above 0 and at most 100, got '%s'", percent);
    } else if (percent) {
        return co_error_set(CO_EINVAL, "only canary takes a percent");
    }
    *out_mode = m;
    *out_percent = p;
    return 0;
}

int co_control_current(co_store *st, const co_workload_conf *w, int *mode, double *percent, int64_t *version)
{
    co_workload_state s = {0};
    int rc = co_store_workload_state_get(st, w->name, &s);
    if (rc == CO_ENOENT) {
        *mode = w->mode;
        *percent = w->percent;
        *version = 0;
        return 0;
    }
    if (rc < 0)
        return rc;
    int m = co_enum_index(co_modes, s.mode);
    *mode = m < 0 ? w->mode : m;
    *percent = s.percent;
    *version = s.version;
    co_workload_state_clear(&s);
    return 0;
}

/* After a rollback's mode change: an active rollout becomes rolled_back
 * (compare-and-set, retried when a controller wrote in between), the event
 * says from which stage, and the incident report is written. The mode is
 * already served by then; a failure to write the report is logged as an
 * event of its own rather than undoing the rollback. */
static int rollback_rollout(co_store *st, const co_config *cfg, const co_workload_conf *w, const co_mode_change *ch,
                            const char *actor, const char *from_mode)
{
    int64_t now = co_now_ms();
    char from[96];
    snprintf(from, sizeof from, "%s", from_mode);
    const char *to = "incumbent";
    int64_t since = ch->window_since_ms;
    int rc = 0;
    for (int attempt = 0; attempt < 8; attempt++) {
        co_rollout_state r = {0};
        rc = co_store_rollout_get(st, w->name, &r);
        if (rc == CO_ENOENT) {
            rc = 0;
            co_error_clear();
            break;
        }
        if (rc < 0)
            return rc;
        if (!strcmp(r.state, "rolled_back")) {
            co_rollout_state_clear(&r);
            break;
        }
        char label[64];
        co_rollout_state_label(co_workload_rollout(cfg, w), &r, label, sizeof label);
        if (!since)
            since = r.stage_started_ms;
        free(r.state);
        r.state = strdup("rolled_back");
        rc = r.state ? co_store_rollout_put(st, &r, r.version) : co_error_set(CO_ENOMEM, "out of memory");
        co_rollout_state_clear(&r);
        if (rc == CO_ECONFLICT)
            continue;
        if (rc < 0)
            return rc;
        snprintf(from, sizeof from, "%s", label);
        to = "rolled_back";
        break;
    }
    if (rc < 0)
        return rc;
    co_rollout_event ev = {
        .workload = (char *)w->name,
        .ts_ms = now,
        .actor = (char *)actor,
        .kind = (char *)(ch->kind ? ch->kind : "rollback"),
        .from_state = from,
        .to_state = (char *)to,
        .reason = (char *)ch->reason,
        .metrics_json = (char *)ch->metrics_json,
    };
    if ((rc = co_store_rollout_event_add(st, &ev)) < 0)
        return rc;
    co_incident_input in = {
        .workload = w->name,
        .trigger = ch->trigger ? ch->trigger : "manual",
        .reason = ch->reason ? ch->reason : "rolled back by hand",
        .actor = actor,
        .metrics_json = ch->metrics_json,
        .ts_ms = now,
        .window_since_ms = since ? since : now - 3600 * 1000,
    };
    int64_t id = 0;
    if (co_incident_write(st, cfg, &in, &id) < 0) {
        char why[600];
        snprintf(why, sizeof why, "the incident report could not be written: %s", co_error_last());
        co_rollout_event fail = {.workload = (char *)w->name, .ts_ms = co_now_ms(), .actor = (char *)actor,
                                 .kind = "incident-failed", .reason = why};
        return co_store_rollout_event_add(st, &fail);
    }
    return 0;
}

int co_control_set_mode(co_store *st, const co_config *cfg, const co_mode_change *ch, int64_t *out_version)
{
    const co_workload_conf *w = co_config_workload(cfg, ch->workload);
    if (!w)
        return unknown_workload(cfg, ch->workload);
    if (ch->mode < CO_MODE_INCUMBENT || ch->mode > CO_MODE_CANARY)
        return co_error_set(CO_EINVAL, "bad mode");
    if (ch->mode != CO_MODE_INCUMBENT && !w->candidate)
        return co_error_set(CO_EINVAL, "workload '%s' has no candidate, so it can only serve the incumbent", w->name);
    if (ch->mode == CO_MODE_CANARY && !(ch->percent > 0 && ch->percent <= 100))
        return co_error_set(CO_EINVAL, "canary percent must be above 0 and at most 100");
    if (ch->rollback && ch->mode != CO_MODE_INCUMBENT)
        return co_error_set(CO_EINVAL, "a rollback returns to the incumbent");

    int old_mode;
    double old_pct;
    int64_t old_version, version = 0;
    int rc = co_control_current(st, w, &old_mode, &old_pct, &old_version);
    if (rc < 0)
        return rc;
    double pct = ch->mode == CO_MODE_CANARY ? ch->percent : 0;
    const char *actor = ch->actor ? ch->actor : "user";
    rc = co_store_workload_state_set(st, w->name, co_modes[ch->mode], pct, actor, &version);
    if (rc < 0)
        return rc;
    char from[48], to[48];
    if (old_mode == CO_MODE_CANARY)
        snprintf(from, sizeof from, "canary %g%%", old_pct);
    else
        snprintf(from, sizeof from, "%s", co_modes[old_mode]);
    if (ch->mode == CO_MODE_CANARY)
        snprintf(to, sizeof to, "canary %g%%", pct);
    else
        snprintf(to, sizeof to, "%s", co_modes[ch->mode]);
    if (out_version)
        *out_version = version;
    if (ch->rollback && strncmp(actor, "drill", 5) != 0)
        return rollback_rollout(st, cfg, w, ch, actor, from);
    if (!ch->no_event) {
        co_rollout_event ev = {
            .workload = (char *)w->name,
            .ts_ms = co_now_ms(),
            .actor = (char *)actor,
            .kind = (char *)(ch->kind ? ch->kind : ch->rollback ? "rollback" : "mode"),
            .from_state = from,
            .to_state = to,
            .reason = (char *)ch->reason,
            .metrics_json = (char *)ch->metrics_json,
        };
        rc = co_store_rollout_event_add(st, &ev);
        if (rc < 0)
            return rc;
    }
    return 0;
}
