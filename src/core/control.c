/* Stored, audited workload mode changes (include/cutover/control.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cutover/control.h"
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
    co_rollout_event ev = {
        .workload = (char *)w->name,
        .ts_ms = co_now_ms(),
        .actor = (char *)actor,
        .kind = ch->rollback ? "rollback" : "mode",
        .from_state = from,
        .to_state = to,
        .reason = (char *)ch->reason,
    };
    rc = co_store_rollout_event_add(st, &ev);
    if (rc < 0)
        return rc;
    if (out_version)
        *out_version = version;
    return 0;
}
