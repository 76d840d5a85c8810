/* junit.xml for CI test panels: a <testsuite> per workload gate, holding a
 * testcase per gate (pass rate, critical cases, cost, latency) and a
 * testcase per case and arm. A failed case carries its failed assertions'
 * reasons (<failure>) or its call error (<error>); a failed gate carries its
 * numbers. An inconclusive gate is <skipped> unless --inconclusive fail
 * folds it into a failure. Attribute and text content are XML-escaped
 * (invalid characters replaced), in the element set JUnit readers share
 * (Jenkins, GitLab, GitHub actions, Azure). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cutover/error.h"
#include "eval/report_int.h"

typedef co__rw xw;

static void esc(xw *x, const char *s)
{
    if (!x->rc)
        x->rc = co__esc_xml(x->b, s);
}

static void attr(xw *x, const char *name, const char *value)
{
    co__rw_printf(x, " %s=\"", name);
    if (!x->rc)
        x->rc = co__esc_xml_attr(x->b, value ? value : "");
    co__rw_put(x, "\"");
}

/* JUnit's timestamp: ISO 8601 without a zone (the run's start, UTC). */
static void ts(char *buf, size_t n, int64_t ms)
{
    co__fmt_time(buf, n, ms);
    size_t len = strlen(buf);
    if (len && buf[len - 1] == 'Z')
        buf[len - 1] = '\0';
}

typedef struct gate_line {
    const char *name;
    co_gate_verdict verdict;
    char message[256];
    char detail[512];
} gate_line;

static size_t gate_lines(const co__workload *w, gate_line out[4])
{
    size_t n = 0;
    const co__group *gs[2] = {&w->all, w->has_critical ? &w->critical : NULL};
    const char *names[2] = {"pass rate", "critical cases"};
    char d[16], lo[16], hi[16], ex[96];
    for (int k = 0; k < 2; k++) {
        const co__group *g = gs[k];
        if (!g || !g->gated)
            continue;
        gate_line *l = &out[n++];
        l->name = names[k];
        l->verdict = g->verdict;
        co__fmt_pts(d, sizeof d, g->pairs ? g->paired.diff.est : NAN);
        co__fmt_pts(lo, sizeof lo, g->gate_ci.lo);
        co__fmt_pts(hi, sizeof hi, g->gate_ci.hi);
        co__fmt_extra(ex, sizeof ex, g->verdict == CO_GATE_INCONCLUSIVE ? g->extra_cases : 0);
        if (g->zero_tolerance)
            snprintf(l->message, sizeof l->message, "%s: %" PRIu64 " case%s regressed, none allowed",
                     co_gate_verdict_name(g->verdict), g->t.inc_only, g->t.inc_only == 1 ? "" : "s");
        else
            snprintf(l->message, sizeof l->message, "%s: difference %s pts [%s, %s], allowed drop %g pts%s%s",
                     co_gate_verdict_name(g->verdict), d, lo, hi, g->max_drop, *ex ? "; " : "", ex);
        snprintf(l->detail, sizeof l->detail,
                 "pairs %" PRIu64 ": both passed %" PRIu64 ", regressed %" PRIu64 ", improved %" PRIu64
                 ", both failed %" PRIu64 "; exact McNemar p = %.4g",
                 g->pairs, g->t.both, g->t.inc_only, g->t.cand_only, g->t.neither, g->pairs ? g->paired.p_exact : NAN);
    }
    const co__ratio_gate *rg[2] = {&w->cost, &w->latency};
    for (int k = 0; k < 2; k++) {
        const co__ratio_gate *g = rg[k];
        if (!g->gated)
            continue;
        gate_line *l = &out[n++];
        l->name = k == 0 ? "cost per request" : "latency p95 ratio";
        l->verdict = g->verdict;
        co__fmt_extra(ex, sizeof ex, g->verdict == CO_GATE_INCONCLUSIVE ? g->extra_cases : 0);
        if (!g->computed)
            snprintf(l->message, sizeof l->message, "%s: %s", co_gate_verdict_name(g->verdict),
                     g->note ? g->note : "not computed");
        else if (k == 0)
            snprintf(l->message, sizeof l->message, "%s: cost %+.1f%% [%+.1f%%, %+.1f%%], allowed +%g%%%s%s",
                     co_gate_verdict_name(g->verdict), round(g->est * 10) / 10 + 0.0, round(g->lo * 10) / 10 + 0.0,
                     round(g->hi * 10) / 10 + 0.0, g->max, *ex ? "; " : "", ex);
        else
            snprintf(l->message, sizeof l->message, "%s: p95 ratio %.2fx [%.2fx, %.2fx], allowed %gx%s%s",
                     co_gate_verdict_name(g->verdict), g->est, g->lo, g->hi, g->max, *ex ? "; " : "", ex);
        l->detail[0] = '\0';
    }
    return n;
}

static void counts(const co_eval_analysis *a, const co__workload *w, size_t *tests, size_t *fail, size_t *err,
                   size_t *skip, double *secs)
{
    gate_line gl[4];
    size_t ng = gate_lines(w, gl);
    *tests += ng + w->count;
    for (size_t i = 0; i < ng; i++) {
        if (gl[i].verdict == CO_GATE_FAIL || (gl[i].verdict == CO_GATE_INCONCLUSIVE && a->inconclusive_as == 1))
            (*fail)++;
        else if (gl[i].verdict == CO_GATE_INCONCLUSIVE && a->inconclusive_as == 0)
            (*skip)++;
    }
    for (size_t i = w->first; i < w->first + w->count; i++) {
        const co__result *r = &a->results[i];
        if (r->error)
            (*err)++;
        else if (!r->passed)
            (*fail)++;
        if (isfinite(r->latency_ms) && r->latency_ms > 0)
            *secs += r->latency_ms / 1000.0;
    }
}

static void suite(xw *x, const co_eval_analysis *a, const co__workload *w, const char *timestamp)
{
    size_t tests = 0, fail = 0, err = 0, skip = 0;
    double secs = 0;
    counts(a, w, &tests, &fail, &err, &skip, &secs);
    co__rw_put(x, "  <testsuite");
    char *name = NULL;
    if (asprintf(&name, "gate: %s", w->name) < 0) {
        x->rc = co_error_set(CO_ENOMEM, "out of memory");
        return;
    }
    attr(x, "name", name);
    free(name);
    co__rw_printf(x, " tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" skipped=\"%zu\" time=\"%.3f\"", tests, fail, err, skip, secs);
    attr(x, "timestamp", timestamp);
    co__rw_put(x, ">\n    <properties>\n");
    co__rw_put(x, "      <property name=\"verdict\"");
    attr(x, "value", w->compared ? co_gate_verdict_name(w->verdict) : "inconclusive");
    co__rw_put(x, "/>\n");
    for (int arm = 0; arm < 2; arm++) {
        if (!w->arm[arm].present)
            continue;
        co__rw_printf(x, "      <property name=\"%s.model\"", co__arm_name(arm));
        attr(x, "value", w->arm[arm].model ? w->arm[arm].model : "");
        co__rw_printf(x, "/>\n      <property name=\"%s.run\" value=\"%" PRId64 "\"/>\n", co__arm_name(arm), w->arm[arm].run_id);
    }
    co__rw_put(x, "    </properties>\n");

    gate_line gl[4];
    size_t ng = gate_lines(w, gl);
    if (!w->compared) {
        co__rw_put(x, "    <testcase classname=\"");
        esc(x, w->name);
        co__rw_put(x, ".gate\" name=\"compared\" time=\"0\">\n      <skipped message=\"only one arm ran\"/>\n    </testcase>\n");
    }
    for (size_t i = 0; i < ng; i++) {
        co__rw_put(x, "    <testcase");
        char *cls = NULL;
        if (asprintf(&cls, "%s.gate", w->name) < 0) {
            x->rc = co_error_set(CO_ENOMEM, "out of memory");
            return;
        }
        attr(x, "classname", cls);
        free(cls);
        attr(x, "name", gl[i].name);
        co__rw_put(x, " time=\"0\">\n");
        int as_fail = gl[i].verdict == CO_GATE_FAIL || (gl[i].verdict == CO_GATE_INCONCLUSIVE && a->inconclusive_as == 1);
        if (as_fail) {
            co__rw_put(x, "      <failure");
            attr(x, "message", gl[i].message);
            attr(x, "type", gl[i].verdict == CO_GATE_FAIL ? "gate" : "inconclusive");
            co__rw_put(x, ">");
            esc(x, gl[i].detail);
            co__rw_put(x, "</failure>\n");
        } else if (gl[i].verdict == CO_GATE_INCONCLUSIVE && a->inconclusive_as == 0) {
            co__rw_put(x, "      <skipped");
            attr(x, "message", gl[i].message);
            co__rw_put(x, "/>\n");
        } else {
            co__rw_put(x, "      <system-out>");
            esc(x, gl[i].message);
            co__rw_put(x, "</system-out>\n");
        }
        co__rw_put(x, "    </testcase>\n");
    }
    for (size_t i = w->first; i < w->first + w->count; i++) {
        const co__result *r = &a->results[i];
        char *cls = NULL, *nm = NULL;
        int bad = asprintf(&cls, "%s.%s", w->name, co__arm_name(r->arm)) < 0;
        bad |= (a->repeat > 1 ? asprintf(&nm, "%s #%d", r->case_id, r->repeat) : asprintf(&nm, "%s", r->case_id)) < 0;
        if (bad) {
            free(cls);
            free(nm);
            x->rc = co_error_set(CO_ENOMEM, "out of memory");
            return;
        }
        co__rw_put(x, "    <testcase");
        attr(x, "classname", cls);
        attr(x, "name", nm);
        free(cls);
        free(nm);
        co__rw_printf(x, " time=\"%.3f\"", isfinite(r->latency_ms) && r->latency_ms > 0 ? r->latency_ms / 1000.0 : 0.0);
        if (r->passed && !r->error) {
            co__rw_put(x, "/>\n");
            continue;
        }
        co__rw_put(x, ">\n");
        if (r->error) {
            co__rw_put(x, "      <error");
            attr(x, "message", r->error);
            attr(x, "type", "call");
            co__rw_put(x, "/>\n");
        } else {
            co__rw_put(x, "      <failure");
            attr(x, "message", r->n_reasons ? r->reasons[0] : "the case failed");
            attr(x, "type", "assertion");
            co__rw_put(x, ">");
            for (size_t k = 0; k < r->n_reasons; k++) {
                esc(x, r->reasons[k]);
                co__rw_put(x, "\n");
            }
            co__rw_put(x, "output:\n");
            esc(x, r->output ? r->output : "");
            co__rw_put(x, "</failure>\n");
        }
        co__rw_put(x, "    </testcase>\n");
    }
    co__rw_put(x, "  </testsuite>\n");
}

int co__render_junit(co_buf *b, const co_eval_analysis *a)
{
    xw x = {.b = b};
    char stamp[32];
    size_t tests = 0, fail = 0, err = 0, skip = 0;
    double secs = 0;
    for (size_t i = 0; i < a->n_w; i++)
        counts(a, &a->w[i], &tests, &fail, &err, &skip, &secs);
    ts(stamp, sizeof stamp, a->n_runs ? a->runs[0].started_ms : 0);
    co__rw_put(&x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"cutover eval\"");
    co__rw_printf(&x, " tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" skipped=\"%zu\" time=\"%.3f\"", tests, fail, err, skip, secs);
    if (*stamp)
        attr(&x, "timestamp", stamp);
    co__rw_put(&x, ">\n");
    for (size_t i = 0; i < a->n_w && !x.rc; i++)
        suite(&x, a, &a->w[i], stamp);
    co__rw_put(&x, "</testsuites>\n");
    return x.rc;
}
