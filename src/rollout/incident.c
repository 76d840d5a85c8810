/* Incident reports (include/cutover/incident.h): the markdown written on every
 * rollback, rendered from the store alone so that one store always gives the
 * same report (no clock but in->ts_ms, UTC times, sorted keys).
 *
 * metrics_json is the controller's snapshot behind the decision. Recognised
 * shape (anything else is shown as pretty JSON):
 *   {"triggers": {NAME: {"value"|"est": x, "threshold": t, "verdict": "breach",
 *                        "incumbent": x, "candidate": x, "confidence": c,
 *                        "n_candidate": n, "n_incumbent": n, "note": "..."}, ...}
 *    ...other keys...}
 * "triggers" may also be an array of such objects, each with a "name". */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cutover/incident.h"
#include "cutover/util.h"

/* How far after the decision the timeline reaches: the rollback itself is
 * logged right after the decision that caused it. */
#define TIMELINE_AFTER_MS 60000
#define TIMELINE_MAX 50
#define SAMPLES_MAX 5
#define SAMPLE_TEXT_MAX 300
/* Bounded scan for failing candidate exchanges (newest first). */
#define SCAN_PAGE 200
#define SCAN_MAX 5000
/* Fallback rows searched for the incumbent's rescue of a failed sample. */
#define FALLBACK_SCAN 1000
#define REPORT_MAX (4u << 20)
#define ISO_LEN 40

/* "2025-01-02T03:04:05.678Z" */
static const char *iso_utc(int64_t ms, char *buf, size_t n)
{
    time_t s = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int frac = (int)(ms - (int64_t)s * 1000);
    struct tm tm;
    if (!gmtime_r(&s, &tm)) {
        snprintf(buf, n, "%lld", (long long)ms);
        return buf;
    }
    char day[24];
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, n, "%.20s.%03uZ", day, (unsigned)frac % 1000u);
    return buf;
}

/* Text for one markdown table cell: no newlines, pipes escaped, bounded. */
static int md_cell(co_buf *b, const char *s, size_t max)
{
    int rc = 0;
    if (!s || !*s)
        return co_buf_puts(b, "—");
    size_t i = 0;
    for (; s[i] && i < max && !rc; i++) {
        char c = s[i];
        if (c == '|')
            rc = co_buf_puts(b, "\\|");
        else if (c == '\n' || c == '\r' || c == '\t')
            rc = co_buf_puts(b, " ");
        else
            rc = co_buf_append(b, &c, 1);
    }
    if (!rc && s[i]) {
        /* do not cut a UTF-8 sequence in half */
        while (b->len && ((unsigned char)b->p[b->len - 1] & 0xC0) == 0x80)
            b->len--;
        if (b->len && ((unsigned char)b->p[b->len - 1] & 0xC0) == 0xC0)
            b->len--;
        b->p[b->len] = '\0';
        rc = co_buf_puts(b, "…");
    }
    return rc;
}

/* A fenced block that survives any backticks inside the text. */
static int md_fenced(co_buf *b, const char *text, size_t max)
{
    if (!text)
        text = "";
    size_t len = strlen(text), cut = len > max ? max : len;
    while (cut < len && cut > 0 && ((unsigned char)text[cut] & 0xC0) == 0x80)
        cut--;
    size_t run = 0, best = 0;
    for (size_t i = 0; i < cut; i++) {
        run = text[i] == '`' ? run + 1 : 0;
        if (run > best)
            best = run;
    }
    char fence[32];
    size_t nf = best + 1 < 3 ? 3 : best + 1;
    if (nf >= sizeof fence)
        nf = sizeof fence - 1;
    memset(fence, '`', nf);
    fence[nf] = '\0';
    int rc = co_buf_printf(b, "%stext\n%.*s%s\n%s\n", fence, (int)cut, text, cut < len ? "…" : "", fence);
    return rc;
}

/* A JSON scalar as report text. */
static void json_scalar(const json_t *v, char *buf, size_t n)
{
    if (!v || json_is_null(v))
        snprintf(buf, n, "—");
    else if (json_is_integer(v))
        snprintf(buf, n, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, n, "%.4g", json_real_value(v));
    else if (json_is_string(v))
        snprintf(buf, n, "%s", json_string_value(v));
    else if (json_is_true(v))
        snprintf(buf, n, "true");
    else if (json_is_false(v))
        snprintf(buf, n, "false");
    else {
        char *d = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
        snprintf(buf, n, "%s", d ? d : "?");
        free(d);
    }
}

static int pretty_json(co_buf *b, const json_t *j)
{
    char *d = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (!d)
        return co_error_set(CO_ENOMEM, "out of memory");
    int rc = co_buf_printf(b, "```json\n%s\n```\n", d);
    free(d);
    return rc;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* The object's keys, sorted (jansson keeps insertion order; reports must
 * not depend on it). Caller frees the array (not the strings). */
static const char **sorted_keys(const json_t *obj, size_t *n)
{
    *n = json_object_size(obj);
    const char **k = calloc(*n ? *n : 1, sizeof *k);
    if (!k)
        return NULL;
    size_t i = 0;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        (void)v;
        k[i++] = key;
    }
    qsort(k, *n, sizeof *k, cmp_str);
    return k;
}

/* One trigger row: name | value | threshold | verdict | incumbent | candidate | confidence | samples */
static int trigger_row(co_buf *b, const char *name, const json_t *t)
{
    char v[64], th[64], verdict[64], inc[64], cand[64], conf[64], nc[32], ni[32];
    const json_t *val = json_object_get(t, "value");
    if (!val)
        val = json_object_get(t, "est");
    json_scalar(val, v, sizeof v);
    json_scalar(json_object_get(t, "threshold"), th, sizeof th);
    json_scalar(json_object_get(t, "verdict"), verdict, sizeof verdict);
    json_scalar(json_object_get(t, "incumbent"), inc, sizeof inc);
    json_scalar(json_object_get(t, "candidate"), cand, sizeof cand);
    json_scalar(json_object_get(t, "confidence"), conf, sizeof conf);
    json_scalar(json_object_get(t, "n_candidate"), nc, sizeof nc);
    json_scalar(json_object_get(t, "n_incumbent"), ni, sizeof ni);
    int breach = strcmp(verdict, "breach") == 0;
    int rc = co_buf_puts(b, "| ");
    if (!rc)
        rc = md_cell(b, name, 64);
    if (!rc)
        rc = co_buf_printf(b, " | %s | %s | %s%s%s | %s | %s | %s | %s / %s |", v, th, breach ? "**" : "", verdict,
                           breach ? "**" : "", inc, cand, conf, nc, ni);
    const json_t *note = json_object_get(t, "note");
    if (!rc)
        rc = co_buf_puts(b, " ");
    if (!rc)
        rc = md_cell(b, json_is_string(note) ? json_string_value(note) : NULL, 200);
    if (!rc)
        rc = co_buf_puts(b, " |\n");
    return rc;
}

static int render_metrics(co_buf *b, const char *metrics_json)
{
    int rc = co_buf_puts(b, "## Metrics at the decision\n\n");
    if (rc)
        return rc;
    if (!metrics_json || !*metrics_json)
        return co_buf_puts(b, "No metrics snapshot was recorded with the decision.\n\n");
    json_error_t jerr;
    json_t *j = json_loads(metrics_json, 0, &jerr);
    if (!j) {
        rc = co_buf_puts(b, "The snapshot is not valid JSON; as recorded:\n\n");
        if (!rc)
            rc = md_fenced(b, metrics_json, 4000);
        if (!rc)
            rc = co_buf_puts(b, "\n");
        return rc;
    }
    json_t *trig = json_is_object(j) ? json_object_get(j, "triggers") : NULL;
    json_t *rest = NULL;
    if (trig && (json_is_object(trig) || json_is_array(trig))) {
        rc = co_buf_puts(b, "| trigger | value | threshold | verdict | incumbent | candidate | confidence | samples "
                            "(cand / inc) | note |\n|---|---|---|---|---|---|---|---|---|\n");
        if (json_is_object(trig)) {
            size_t n;
            const char **keys = sorted_keys(trig, &n);
            if (!keys)
                rc = co_error_set(CO_ENOMEM, "out of memory");
            for (size_t i = 0; !rc && i < n; i++) {
                json_t *t = json_object_get(trig, keys[i]);
                rc = json_is_object(t) ? trigger_row(b, keys[i], t) : 0;
            }
            free(keys);
        } else {
            size_t i;
            json_t *t;
            json_array_foreach(trig, i, t) {
                if (rc || !json_is_object(t))
                    continue;
                json_t *nm = json_object_get(t, "name");
                rc = trigger_row(b, json_is_string(nm) ? json_string_value(nm) : "?", t);
            }
        }
        if (!rc)
            rc = co_buf_puts(b, "\n");
        rest = json_deep_copy(j);
        if (rest)
            json_object_del(rest, "triggers");
        if (!rc && rest && json_object_size(rest) > 0) {
            rc = co_buf_puts(b, "Other figures in the snapshot:\n\n");
            if (!rc)
                rc = pretty_json(b, rest);
            if (!rc)
                rc = co_buf_puts(b, "\n");
        }
    } else {
        rc = pretty_json(b, j);
        if (!rc)
            rc = co_buf_puts(b, "\n");
    }
    json_decref(rest);
    json_decref(j);
    return rc;
}

static int render_baseline(co_buf *b, co_store *st, const char *workload)
{
    char *bj = NULL;
    int64_t run_id = 0;
    int rc = co_store_baseline_get(st, workload, &bj, &run_id);
    if (rc == CO_ENOENT) {
        co_error_clear();
        return co_buf_printf(b, "### Baseline\n\nNo baseline saved for `%s` (`cutover eval --arm incumbent "
                                "--save-baseline` records one).\n\n",
                             workload);
    }
    if (rc < 0)
        return rc;
    rc = run_id > 0 ? co_buf_printf(b, "### Baseline (eval run %lld)\n\n", (long long)run_id)
                    : co_buf_puts(b, "### Baseline\n\n");
    json_t *j = rc ? NULL : json_loads(bj, 0, NULL);
    if (rc) {
    } else if (!j) {
        rc = md_fenced(b, bj, 4000);
    } else if (json_is_object(j)) {
        size_t n;
        const char **keys = sorted_keys(j, &n);
        if (!keys)
            rc = co_error_set(CO_ENOMEM, "out of memory");
        int table = 0;
        json_t *nested = json_object();
        for (size_t i = 0; !rc && i < n; i++) {
            json_t *v = json_object_get(j, keys[i]);
            if (json_is_object(v) || json_is_array(v)) {
                json_object_set(nested, keys[i], v);
                continue;
            }
            if (!table++)
                rc = co_buf_puts(b, "| metric | baseline |\n|---|---|\n");
            char val[128];
            json_scalar(v, val, sizeof val);
            if (!rc)
                rc = co_buf_puts(b, "| ");
            if (!rc)
                rc = md_cell(b, keys[i], 80);
            if (!rc)
                rc = co_buf_puts(b, " | ");
            if (!rc)
                rc = md_cell(b, val, 120);
            if (!rc)
                rc = co_buf_puts(b, " |\n");
        }
        if (!rc && table)
            rc = co_buf_puts(b, "\n");
        if (!rc && json_object_size(nested))
            rc = pretty_json(b, nested);
        json_decref(nested);
        free(keys);
    } else {
        rc = pretty_json(b, j);
    }
    if (!rc)
        rc = co_buf_puts(b, "\n");
    json_decref(j);
    free(bj);
    return rc;
}

typedef struct arm_fig {
    co_window_summary s;
    double p95;
    int64_t fb_total, fb_negative;
} arm_fig;

static int arm_figures(co_store *st, const co_window_query *q, arm_fig *f)
{
    double *lat = NULL;
    size_t n = 0;
    memset(f, 0, sizeof *f);
    int rc = co_store_window_summary(st, q, &f->s);
    if (!rc)
        rc = co_store_window_latencies(st, q, &lat, &n);
    if (!rc)
        rc = co_store_feedback_summary(st, q, &f->fb_total, &f->fb_negative);
    if (rc)
        return rc;
    f->p95 = n ? lat[(size_t)ceil(0.95 * (double)n) - 1] : NAN;
    free(lat);
    return 0;
}

static void fmt_rate(char *buf, size_t n, int64_t k, int64_t total)
{
    if (total <= 0)
        snprintf(buf, n, "—");
    else
        snprintf(buf, n, "%.2f%% (%lld/%lld)", 100.0 * (double)k / (double)total, (long long)k, (long long)total);
}

static int render_observed(co_buf *b, co_store *st, const char *workload, int64_t since, int64_t until)
{
    arm_fig a[2];
    static const char *const arms[2] = {"incumbent", "candidate"};
    for (int i = 0; i < 2; i++) {
        co_window_query q = {.workload = workload, .arm = arms[i], .since_ms = since, .until_ms = until};
        int rc = arm_figures(st, &q, &a[i]);
        if (rc)
            return rc;
    }
    int rc = co_buf_puts(b, "### Observed in the window (every role of each arm)\n\n"
                            "| | incumbent | candidate |\n|---|---|---|\n");
    char x[2][96];
    for (int i = 0; i < 2; i++)
        snprintf(x[i], sizeof x[i], "%lld", (long long)a[i].s.count);
    if (!rc)
        rc = co_buf_printf(b, "| exchanges | %s | %s |\n", x[0], x[1]);
    for (int i = 0; i < 2; i++)
        fmt_rate(x[i], sizeof x[i], a[i].s.errors, a[i].s.count);
    if (!rc)
        rc = co_buf_printf(b, "| error rate | %s | %s |\n", x[0], x[1]);
    for (int i = 0; i < 2; i++)
        if (isnan(a[i].p95))
            snprintf(x[i], sizeof x[i], "—");
        else
            snprintf(x[i], sizeof x[i], "%.0f ms", a[i].p95);
    if (!rc)
        rc = co_buf_printf(b, "| latency p95 | %s | %s |\n", x[0], x[1]);
    for (int i = 0; i < 2; i++)
        if (a[i].s.count)
            snprintf(x[i], sizeof x[i], "$%.6f", a[i].s.cost_usd / (double)a[i].s.count);
        else
            snprintf(x[i], sizeof x[i], "—");
    if (!rc)
        rc = co_buf_printf(b, "| cost per exchange | %s | %s |\n", x[0], x[1]);
    for (int i = 0; i < 2; i++)
        fmt_rate(x[i], sizeof x[i], a[i].fb_negative, a[i].fb_total);
    if (!rc)
        rc = co_buf_printf(b, "| negative feedback | %s | %s |\n\n", x[0], x[1]);
    return rc;
}

static int render_timeline(co_buf *b, co_store *st, const char *workload, int64_t ts)
{
    co_rollout_event_list l = {0};
    int rc = co_store_rollout_events(st, workload, 0, &l);
    if (rc)
        return rc;
    size_t end = 0;
    for (size_t i = 0; i < l.n; i++)
        if (l.v[i].ts_ms <= ts + TIMELINE_AFTER_MS)
            end = i + 1;
    size_t start = end > TIMELINE_MAX ? end - TIMELINE_MAX : 0;
    rc = co_buf_puts(b, "## Timeline\n\n");
    if (!rc && end == 0)
        rc = co_buf_puts(b, "The rollout log has no events for this workload.\n\n");
    if (!rc && start > 0)
        rc = co_buf_printf(b, "%zu earlier events are left out (`cutover rollout status` lists them).\n\n", start);
    if (!rc && end > 0)
        rc = co_buf_puts(b, "| time (UTC) | actor | event | from → to | reason |\n|---|---|---|---|---|\n");
    for (size_t i = start; !rc && i < end; i++) {
        const co_rollout_event *e = &l.v[i];
        char t[ISO_LEN];
        rc = co_buf_printf(b, "| %s | ", iso_utc(e->ts_ms, t, sizeof t));
        if (!rc)
            rc = md_cell(b, e->actor, 64);
        if (!rc)
            rc = co_buf_puts(b, " | ");
        if (!rc)
            rc = md_cell(b, e->kind, 64);
        if (!rc)
            rc = co_buf_puts(b, " | ");
        if (!rc && (e->from_state || e->to_state)) {
            rc = md_cell(b, e->from_state, 64);
            if (!rc)
                rc = co_buf_puts(b, " → ");
            if (!rc)
                rc = md_cell(b, e->to_state, 64);
        } else if (!rc) {
            rc = co_buf_puts(b, "—");
        }
        if (!rc)
            rc = co_buf_puts(b, " | ");
        if (!rc)
            rc = md_cell(b, e->reason, 300);
        if (!rc)
            rc = co_buf_puts(b, " |\n");
    }
    if (!rc && end > 0)
        rc = co_buf_puts(b, "\n");
    co_rollout_event_list_free(&l);
    return rc;
}

static int render_affected(co_buf *b, co_store *st, const char *workload, int64_t since, int64_t until)
{
    static const char *const roles[3] = {"served", "fallback", "shadow"};
    co_window_summary s[3];
    for (int i = 0; i < 3; i++) {
        /* the incumbent's fallback rows are the requests the candidate failed and the incumbent rescued */
        co_window_query q = {.workload = workload, .arm = i == 1 ? "incumbent" : "candidate", .role = roles[i],
                             .since_ms = since, .until_ms = until};
        int rc = co_store_window_summary(st, &q, &s[i]);
        if (rc)
            return rc;
    }
    char a[ISO_LEN], z[ISO_LEN];
    int rc = co_buf_printf(b, "## Requests affected\n\nWindow: %s to %s.\n\n", iso_utc(since, a, sizeof a),
                           iso_utc(until - 1, z, sizeof z));
    if (!rc)
        rc = co_buf_printf(b,
                           "- Served by the candidate: **%lld** requests, **%lld** of them failed%s\n"
                           "- Rescued by the incumbent after a candidate failure (fallback): %lld\n"
                           "- Candidate shadow calls (never seen by clients): %lld, %lld failed\n\n",
                           (long long)s[0].count, (long long)s[0].errors,
                           s[0].count ? "" : " (the candidate served no client traffic in the window)",
                           (long long)s[1].count, (long long)s[2].count, (long long)s[2].errors);
    return rc;
}

static int render_exchange(co_buf *b, const char *label, const co_exchange *x)
{
    char t[ISO_LEN];
    int rc = co_buf_printf(b, "- **%s** `%s` (%s), %s, HTTP %d%s%s, %.0f ms\n\n", label, x->model ? x->model : "?",
                           x->role, iso_utc(x->ts_ms, t, sizeof t), x->status,
                           x->error_class ? ", error: " : "", x->error_class ? x->error_class : "", x->latency_ms);
    if (!rc)
        rc = md_fenced(b, x->output_text ? x->output_text : "(no output recorded)", SAMPLE_TEXT_MAX);
    if (!rc)
        rc = co_buf_puts(b, "\n");
    return rc;
}

static int render_samples(co_buf *b, co_store *st, const char *workload, int64_t since, int64_t until)
{
    co_exchange_list pages[SCAN_MAX / SCAN_PAGE];
    size_t npages = 0, scanned = 0;
    const co_exchange_row *pick[SAMPLES_MAX];
    size_t npick = 0;
    int rc = 0;
    int64_t upto = until;
    /* newest first, page by page, until SAMPLES_MAX failures or the scan bound */
    while (npick < SAMPLES_MAX && npages < sizeof pages / sizeof pages[0]) {
        co_window_query q = {.workload = workload, .arm = "candidate", .since_ms = since, .until_ms = upto,
                             .limit = SCAN_PAGE, .with_text = 1};
        co_exchange_list *l = &pages[npages];
        memset(l, 0, sizeof *l);
        if ((rc = co_store_exchanges(st, &q, l)))
            goto done;
        npages++;
        for (size_t i = 0; i < l->n && npick < SAMPLES_MAX; i++)
            if (l->v[i].x.error_class)
                pick[npick++] = &l->v[i];
        scanned += l->n;
        if (l->n < SCAN_PAGE)
            break;
        /* rows sharing the last timestamp may be skipped: a sample, not a census */
        upto = l->v[l->n - 1].x.ts_ms;
    }
    int failing = npick > 0;
    if (!failing)
        for (size_t i = 0; npages && i < pages[0].n && npick < SAMPLES_MAX; i++)
            pick[npick++] = &pages[0].v[i];
    rc = co_buf_puts(b, failing ? "## Sample failing pairs\n\n" : "## Sample candidate outputs\n\n");
    if (!rc && !failing)
        rc = co_buf_printf(b, "No candidate exchange in the window has an error%s; the most recent candidate "
                              "outputs instead.\n\n",
                           scanned >= SCAN_MAX ? " among the newest scanned" : "");
    if (!rc && npick == 0)
        rc = co_buf_puts(b, "No candidate exchanges were recorded in the window.\n\n");
    co_exchange_list fb = {0};
    if (!rc && failing) {
        co_window_query q = {.workload = workload, .arm = "incumbent", .role = "fallback", .since_ms = since,
                             .until_ms = until, .limit = FALLBACK_SCAN, .with_text = 1};
        rc = co_store_exchanges(st, &q, &fb);
    }
    for (size_t i = 0; !rc && i < npick; i++) {
        const co_exchange *x = &pick[i]->x;
        rc = co_buf_printf(b, "### %s `%s`\n\nrequest `%s`\n\n", x->pair_id[0] ? "pair" : "exchange",
                           x->pair_id[0] ? x->pair_id : x->request_id, x->request_id[0] ? x->request_id : "—");
        if (!rc)
            rc = render_exchange(b, "candidate", x);
        if (rc || !x->pair_id[0])
            continue;
        /* the incumbent's answer to the same request, when it was recorded */
        co_pair p = {0};
        int prc = co_store_pair(st, x->pair_id, &p);
        if (prc == 0) {
            const co_exchange *other = NULL;
            if (p.served.id && strcmp(p.served.x.arm, "incumbent") == 0)
                other = &p.served.x;
            else if (p.shadow.id && strcmp(p.shadow.x.arm, "incumbent") == 0)
                other = &p.shadow.x;
            if (other)
                rc = render_exchange(b, "incumbent", other);
        } else if (prc != CO_ENOENT) {
            rc = prc;
        } else {
            co_error_clear();
        }
        co_pair_clear(&p);
        /* a canary's failed candidate call the incumbent answered instead */
        for (size_t k = 0; !rc && k < fb.n; k++)
            if (!strcmp(fb.v[k].x.pair_id, x->pair_id)) {
                rc = render_exchange(b, "incumbent", &fb.v[k].x);
                break;
            }
    }
    co_exchange_list_free(&fb);
done:
    for (size_t i = 0; i < npages; i++)
        co_exchange_list_free(&pages[i]);
    return rc;
}

static int render_checklist(co_buf *b, const char *workload)
{
    return co_buf_printf(
        b,
        "## After the rollback\n\n"
        "- [ ] Confirm every gateway serves the incumbent and `%s` gets no candidate traffic (`cutover status`)\n"
        "- [ ] Confirm the incumbent is healthy: error rate, p95 latency and cost back at their baseline\n"
        "- [ ] Notify the workload's owners and the teams downstream of it, with this report\n"
        "- [ ] Find and write down the root cause **before any re-attempt**\n"
        "- [ ] Add the failing requests above to the golden set\n"
        "- [ ] Re-run `cutover eval` and a shadow phase with the fix; compare against the baseline\n"
        "- [ ] Review the triggers: did they fire early enough, on the right signal?\n"
        "- [ ] Keep the incumbent deployable until the next attempt is promoted and its retention window has "
        "passed\n",
        workload);
}

int co_incident_render(co_buf *out, co_store *st, const co_config *cfg, const co_incident_input *in)
{
    if (!out || !st || !in || !in->workload || !*in->workload)
        return co_error_set(CO_EINVAL, "incident: a workload is required");
    int64_t ts = in->ts_ms > 0 ? in->ts_ms : co_now_ms();
    int64_t since = in->window_since_ms > 0 && in->window_since_ms <= ts ? in->window_since_ms : ts;
    int64_t until = ts + 1; /* the window includes the decision's own millisecond */
    const char *trigger = in->trigger && *in->trigger ? in->trigger : "manual";
    char t[ISO_LEN], s[ISO_LEN], d[32];
    int rc = co_buf_printf(out, "# Incident: `%s` rolled back — %s\n\n", in->workload, iso_utc(ts, t, sizeof t));
    if (!rc)
        rc = co_buf_puts(out, "| | |\n|---|---|\n| workload | ");
    if (!rc)
        rc = md_cell(out, in->workload, 200);
    const co_workload_conf *w = cfg ? co_config_workload(cfg, in->workload) : NULL;
    if (!rc && w)
        rc = co_buf_printf(out, " |\n| incumbent → candidate | `%s` → `%s`", w->incumbent,
                           w->candidate ? w->candidate : "(none)");
    if (!rc)
        rc = co_buf_printf(out, " |\n| decided at | %s |\n| trigger | **", t);
    if (!rc)
        rc = md_cell(out, trigger, 64);
    if (!rc)
        rc = co_buf_puts(out, "** |\n| decided by | ");
    if (!rc)
        rc = md_cell(out, in->actor, 100);
    if (!rc)
        rc = co_buf_printf(out, " |\n| window | since %s (%s) |\n\n", iso_utc(since, s, sizeof s),
                           co_format_duration(ts - since, d, sizeof d));
    if (!rc)
        rc = co_buf_puts(out, "## Trigger\n\n");
    if (!rc)
        rc = co_buf_printf(out, "**%s**: ", trigger);
    if (!rc) /* one line, whatever the caller passed */
        rc = md_cell(out, in->reason && *in->reason ? in->reason : "(no reason given)", 1000);
    if (!rc)
        rc = co_buf_puts(out, "\n\n");
    if (!rc)
        rc = render_timeline(out, st, in->workload, ts);
    if (!rc)
        rc = render_metrics(out, in->metrics_json);
    if (!rc)
        rc = render_observed(out, st, in->workload, since, until);
    if (!rc)
        rc = render_baseline(out, st, in->workload);
    if (!rc)
        rc = render_affected(out, st, in->workload, since, until);
    if (!rc)
        rc = render_samples(out, st, in->workload, since, until);
    if (!rc)
        rc = render_checklist(out, in->workload);
    return rc;
}

int co_incident_write(co_store *st, const co_config *cfg, const co_incident_input *in, int64_t *out_id)
{
    co_buf b;
    co_buf_init(&b, REPORT_MAX);
    co_incident_input fixed = *in;
    if (fixed.ts_ms <= 0)
        fixed.ts_ms = co_now_ms();
    char *data = NULL;
    int rc = co_incident_render(&b, st, cfg, &fixed);
    if (rc)
        goto done;
    json_t *d = json_pack("{s:s?, s:s?, s:s?, s:I, s:I}", "trigger", fixed.trigger, "reason", fixed.reason, "actor",
                          fixed.actor, "ts_ms", (json_int_t)fixed.ts_ms, "window_since_ms",
                          (json_int_t)fixed.window_since_ms);
    json_t *m = fixed.metrics_json ? json_loads(fixed.metrics_json, 0, NULL) : NULL;
    if (d && m)
        json_object_set_new(d, "metrics", m);
    else
        json_decref(m);
    data = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(d);
    co_incident inc = {
        .workload = (char *)fixed.workload,
        .ts_ms = fixed.ts_ms,
        .trigger = (char *)(fixed.trigger && *fixed.trigger ? fixed.trigger : "manual"),
        .report_md = b.p,
        .data_json = data,
    };
    rc = co_store_incident_add(st, &inc);
    if (!rc && out_id)
        *out_id = inc.id;
done:
    free(data);
    co_buf_free(&b);
    return rc;
}
