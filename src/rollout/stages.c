/* The rollout clock (real or injected, with a time scale) and what each
 * configured stage serves (include/cutover/rollout.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cutover/rollout.h"
#include "cutover/util.h"

int64_t co_rollout_now(const co_rollout_clock *c)
{
    return c && c->now_ms ? c->now_ms(c->ud) : co_now_ms();
}

double co_rollout_scale(const co_rollout_clock *c)
{
    return c && c->scale > 0 && isfinite(c->scale) ? c->scale : 1.0;
}

int64_t co_rollout_to_rollout_ms(const co_rollout_clock *c, int64_t real_ms)
{
    if (real_ms <= 0)
        return 0;
    double v = (double)real_ms * co_rollout_scale(c);
    return v > 9e18 ? INT64_MAX : (int64_t)llround(v);
}

int64_t co_rollout_to_real_ms(const co_rollout_clock *c, int64_t rollout_ms)
{
    if (rollout_ms <= 0)
        return 0;
    double v = (double)rollout_ms / co_rollout_scale(c);
    int64_t r = (int64_t)ceil(v);
    return r < 1 ? 1 : r;
}

int co_rollout_stage_info(const co_rollout_conf *r, int stage, const char **state, int *mode, double *percent,
                          char *label, size_t label_n)
{
    if (!r || stage < 0 || (size_t)stage >= r->stages.n)
        return co_error_set(CO_EINVAL, "no stage %d (the plan has %zu)", stage + 1, r ? r->stages.n : (size_t)0);
    const co_stage_conf *s = (const co_stage_conf *)r->stages.v + stage;
    const char *st;
    int m;
    double p;
    if (s->kind == CO_STAGE_SHADOW) {
        st = "shadow", m = CO_MODE_SHADOW, p = 0;
    } else if (s->percent >= 100) {
        st = "promoted", m = CO_MODE_CANDIDATE, p = 100;
    } else {
        st = "canary", m = CO_MODE_CANARY, p = s->percent;
    }
    if (state)
        *state = st;
    if (mode)
        *mode = m;
    if (percent)
        *percent = p;
    if (label && label_n) {
        if (m == CO_MODE_CANARY)
            snprintf(label, label_n, "canary %g%%", p);
        else if (m == CO_MODE_CANDIDATE)
            snprintf(label, label_n, "100%%");
        else
            snprintf(label, label_n, "shadow");
    }
    return 0;
}

int co_rollout_state_active(const char *state)
{
    static const char *const active[] = {"pending", "shadow", "canary", "paused", "promoted", NULL};
    return state && co_enum_index(active, state) >= 0;
}

void co_rollout_state_label(const co_rollout_conf *r, const co_rollout_state *s, char *out, size_t n)
{
    char stage[48] = "";
    if (co_rollout_stage_info(r, s->stage, NULL, NULL, NULL, stage, sizeof stage) < 0)
        snprintf(stage, sizeof stage, "stage %d", s->stage + 1);
    if (!strcmp(s->state, "shadow") || !strcmp(s->state, "canary"))
        snprintf(out, n, "%s", stage);
    else if (!strcmp(s->state, "paused"))
        snprintf(out, n, "paused at %s", stage);
    else if (!strcmp(s->state, "rolled_back"))
        snprintf(out, n, "rolled back");
    else
        snprintf(out, n, "%s", s->state);
}
