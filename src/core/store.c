/* The store front end: parses a store URL into a back end, validates every
 * public call's arguments once (so back ends need not), dispatches through the
 * co_store_ops vtable, and owns the *_free / *_clear functions every back end
 * shares. Back-end specifics live in store_sqlite.c and store_pg.c.
 *
 * Conventions for every call here: output structs and lists are zeroed on
 * entry (callers may pass uninitialised ones) and stay zeroed on error, so a
 * failed call leaves nothing to free. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/store_impl.h"
#include "cutover/error.h"

#define NEED(cond, ...)                                                     \
    do {                                                                    \
        if (!(cond))                                                        \
            return co_error_set(CO_EINVAL, __VA_ARGS__);                    \
    } while (0)

#define NEED_ST(st, fn) NEED((st) != NULL, "%s: store handle is NULL", fn)

/* ---- opening ------------------------------------------------------------ */

/* Length of "scheme" in "scheme://..." (RFC 3986 scheme characters), or 0
 * when the string does not start with one, so a bare path like "./a:b.db"
 * is still a path. */
static size_t url_scheme_len(const char *url)
{
    if (!isalpha((unsigned char)url[0]))
        return 0;
    size_t i = 1;
    while (isalnum((unsigned char)url[i]) || url[i] == '+' || url[i] == '-' || url[i] == '.')
        i++;
    return strncmp(url + i, "://", 3) == 0 ? i : 0;
}

/* True when the authority of a postgres:// URL has "user:password@". Only
 * the presence is reported: the password itself never reaches a message. */
static int pg_url_has_password(const char *url)
{
    const char *auth = strstr(url, "://") + 3;
    size_t alen = strcspn(auth, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++)
        if (auth[i] == '@')
            at = auth + i;
    return at && memchr(auth, ':', (size_t)(at - auth)) != NULL;
}

int co__store_open_at(co_store **out, const char *url, int max_version)
{
    NEED(out != NULL, "co_store_open: out is NULL");
    *out = NULL;
    NEED(url != NULL, "co_store_open: store URL is NULL");
    NEED(url[0] != '\0', "empty store URL (use sqlite:PATH, e.g. sqlite:cutover.db)");

    if (strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0) {
        if (pg_url_has_password(url))
            return co_error_set(CO_EINVAL,
                                "the PostgreSQL store URL carries a password (user:password@): "
                                "remove it and set PGPASSWORD, or use a password file "
                                "(PGPASSFILE, ~/.pgpass, or passfile=PATH in the URL)");
        return co__store_pg_open_at(out, url, max_version);
    }

    const char *path = url;
    if (strncmp(url, "sqlite:", 7) == 0) {
        path = url + 7;
        /* sqlite://PATH and sqlite:///abs/path are common spellings of the
         * same thing; accept them rather than create a file named "//x". */
        if (strncmp(path, "//", 2) == 0)
            path += 2;
    } else {
        size_t sl = url_scheme_len(url);
        if (sl)
            return co_error_set(CO_EINVAL,
                                "unsupported store URL scheme '%.*s' in '%s' "
                                "(use sqlite:PATH, postgres://user@host/db, or a plain file path)",
                                (int)sl, url, url);
    }
    NEED(path[0] != '\0', "store URL '%s' names no file (use sqlite:PATH)", url);
    return co__store_sqlite_open_at(out, path, max_version);
}

int co_store_open(co_store **out, const char *url)
{
    return co__store_open_at(out, url, CO__STORE_SCHEMA_LATEST);
}

void co_store_close(co_store *st)
{
    if (st)
        st->ops->close(st);
}

int co_store_schema_version(co_store *st, int *out_version)
{
    NEED_ST(st, "co_store_schema_version");
    NEED(out_version != NULL, "co_store_schema_version: out_version is NULL");
    *out_version = 0;
    return st->ops->schema_version(st, out_version);
}

int co_store_schema_latest(void) { return CO__STORE_SCHEMA_LATEST; }

const char *co_store_backend(const co_store *st)
{
    return st ? st->ops->name : "none";
}

int co_store_wait_change(co_store *st, int64_t timeout_ms, int *out_changed)
{
    NEED(out_changed != NULL, "co_store_wait_change: out_changed is NULL");
    *out_changed = 0;
    NEED_ST(st, "co_store_wait_change");
    NEED(timeout_ms >= 0, "co_store_wait_change: negative timeout");
    return st->ops->wait_change(st, timeout_ms, out_changed);
}

/* ---- exchanges ---------------------------------------------------------- */

int co_store_record(co_store *st, const co_exchange *xs, size_t n)
{
    NEED_ST(st, "co_store_record");
    if (n == 0)
        return 0;
    NEED(xs != NULL, "co_store_record: %zu exchanges but the array is NULL", n);
    for (size_t i = 0; i < n; i++) {
        /* Checked before anything is written so a bad row never half-lands. */
        NEED(xs[i].workload && xs[i].workload[0], "exchange %zu of %zu has no workload", i + 1, n);
        NEED(xs[i].arm && xs[i].arm[0], "exchange %zu of %zu has no arm", i + 1, n);
        NEED(xs[i].role && xs[i].role[0], "exchange %zu of %zu has no role", i + 1, n);
    }
    return st->ops->record(st, xs, n);
}

int co_store_exchanges(co_store *st, const co_window_query *q, co_exchange_list *out)
{
    NEED(out != NULL, "co_store_exchanges: out is NULL");
    memset(out, 0, sizeof *out);
    NEED_ST(st, "co_store_exchanges");
    NEED(q != NULL, "co_store_exchanges: query is NULL");
    return st->ops->exchanges(st, q, out);
}

int co_store_window_summary(co_store *st, const co_window_query *q, co_window_summary *out)
{
    NEED(out != NULL, "co_store_window_summary: out is NULL");
    memset(out, 0, sizeof *out);
    NEED_ST(st, "co_store_window_summary");
    NEED(q != NULL, "co_store_window_summary: query is NULL");
    return st->ops->window_summary(st, q, out);
}

int co_store_window_latencies(co_store *st, const co_window_query *q, double **out, size_t *n)
{
    NEED(out != NULL && n != NULL, "co_store_window_latencies: out or n is NULL");
    *out = NULL;
    *n = 0;
    NEED_ST(st, "co_store_window_latencies");
    NEED(q != NULL, "co_store_window_latencies: query is NULL");
    return st->ops->window_latencies(st, q, out, n);
}

/* The request is stored once per shadow pair (on the served row): the shadow
 * row shows the served row's. */
static void share_request(co_pair *p)
{
    if (p->shadow.id && !p->shadow.x.request_json)
        p->shadow.x.request_json = p->served.x.request_json;
}

int co_store_pair(co_store *st, const char *pair_id, co_pair *out)
{
    NEED(out != NULL, "co_store_pair: out is NULL");
    memset(out, 0, sizeof *out);
    NEED_ST(st, "co_store_pair");
    NEED(pair_id != NULL && pair_id[0], "co_store_pair: pair_id is empty");
    int rc = st->ops->pair(st, pair_id, out);
    if (rc == 0)
        share_request(out);
    return rc;
}

int co_store_pairs(co_store *st, const char *workload, size_t limit, size_t offset,
                   co_pair **out, size_t *n)
{
    NEED(out != NULL && n != NULL, "co_store_pairs: out or n is NULL");
    *out = NULL;
    *n = 0;
    NEED_ST(st, "co_store_pairs");
    int rc = st->ops->pairs(st, workload, limit, offset, out, n);
    for (size_t i = 0; rc == 0 && i < *n; i++)
        share_request(&(*out)[i]);
    return rc;
}

void co_pair_clear(co_pair *p)
{
    if (!p)
        return;
    free(p->served.strings);
    free(p->shadow.strings);
    memset(p, 0, sizeof *p);
}

void co_exchange_list_free(co_exchange_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].strings);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

void co_pairs_free(co_pair *v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        co_pair_clear(&v[i]);
    free(v);
}

/* ---- eval ---------------------------------------------------------------- */

int co_store_eval_run_begin(co_store *st, co_eval_run *run)
{
    NEED_ST(st, "co_store_eval_run_begin");
    NEED(run != NULL, "co_store_eval_run_begin: run is NULL");
    NEED(run->suite != NULL && run->suite[0], "co_store_eval_run_begin: run has no suite");
    return st->ops->eval_run_begin(st, run);
}

int co_store_eval_results_add(co_store *st, int64_t run_id, const co_eval_result *rs, size_t n)
{
    NEED_ST(st, "co_store_eval_results_add");
    NEED(run_id > 0, "co_store_eval_results_add: bad run id %lld", (long long)run_id);
    if (n == 0)
        return 0;
    NEED(rs != NULL, "co_store_eval_results_add: %zu results but the array is NULL", n);
    for (size_t i = 0; i < n; i++) {
        NEED(rs[i].case_id && rs[i].case_id[0], "eval result %zu of %zu has no case id", i + 1, n);
        NEED(rs[i].arm && rs[i].arm[0], "eval result %zu of %zu has no arm", i + 1, n);
    }
    return st->ops->eval_results_add(st, run_id, rs, n);
}

int co_store_eval_run_finish(co_store *st, int64_t run_id, const char *status,
                             const char *summary_json)
{
    NEED_ST(st, "co_store_eval_run_finish");
    NEED(run_id > 0, "co_store_eval_run_finish: bad run id %lld", (long long)run_id);
    return st->ops->eval_run_finish(st, run_id, status ? status : "done", summary_json);
}

int co_store_eval_run_get(co_store *st, int64_t run_id, co_eval_run *out)
{
    NEED(out != NULL, "co_store_eval_run_get: out is NULL");
    memset(out, 0, sizeof *out);
    NEED_ST(st, "co_store_eval_run_get");
    return st->ops->eval_run_get(st, run_id, out);
}

int co_store_eval_results_each(co_store *st, int64_t run_id, co_eval_result_cb cb, void *ud)
{
    NEED_ST(st, "co_store_eval_results_each");
    NEED(cb != NULL, "co_store_eval_results_each: callback is NULL");
    return st->ops->eval_results_each(st, run_id, cb, ud);
}

void co_eval_run_clear(co_eval_run *r)
{
    if (!r)
        return;
    /* Only runs filled by co_store_eval_run_get own their strings. */
    free((void *)r->suite);
    free((void *)r->config_json);
    free((void *)r->summary_json);
    free((void *)r->status);
    memset(r, 0, sizeof *r);
}

int co_store_baseline_put(co_store *st, const char *workload, int64_t run_id, const char *json)
{
    NEED_ST(st, "co_store_baseline_put");
    NEED(workload != NULL && workload[0], "co_store_baseline_put: workload is empty");
    NEED(json != NULL, "co_store_baseline_put: baseline JSON is NULL");
    return st->ops->baseline_put(st, workload, run_id, json);
}

int co_store_baseline_get(co_store *st, const char *workload, char **out_json, int64_t *out_run_id)
{
    NEED(out_json != NULL, "co_store_baseline_get: out_json is NULL");
    *out_json = NULL;
    if (out_run_id)
        *out_run_id = 0;
    NEED_ST(st, "co_store_baseline_get");
    NEED(workload != NULL && workload[0], "co_store_baseline_get: workload is empty");
    return st->ops->baseline_get(st, workload, out_json, out_run_id);
}

int co_store_cache_get(co_store *st, const char *model, const char *key, char **out_json)
{
    NEED(out_json != NULL, "co_store_cache_get: out_json is NULL");
    *out_json = NULL;
    NEED_ST(st, "co_store_cache_get");
    NEED(model != NULL && key != NULL, "co_store_cache_get: model or key is NULL");
    return st->ops->cache_get(st, model, key, out_json);
}

int co_store_cache_put(co_store *st, const char *model, const char *key, const char *json)
{
    NEED_ST(st, "co_store_cache_put");
    NEED(model != NULL && key != NULL, "co_store_cache_put: model or key is NULL");
    NEED(json != NULL, "co_store_cache_put: JSON is NULL");
    return st->ops->cache_put(st, model, key, json);
}

/* ---- workload mode + rollout -------------------------------------------- */

int co_store_workload_state_get(co_store *st, const char *workload, co_workload_state *out)
{
    NEED(out != NULL, "co_store_workload_state_get: out is NULL");
    memset(out, 0, sizeof *out);
    NEED_ST(st, "co_store_workload_state_get");
    NEED(workload != NULL && workload[0], "co_store_workload_state_get: workload is empty");
    return st->ops->workload_state_get(st, workload, out);
}

int co_store_workload_state_set(co_store *st, const char *workload, const char *mode,
                                double percent, const char *by, int64_t *out_version)
{
    if (out_version)
        *out_version = 0;
    NEED_ST(st, "co_store_workload_state_set");
    NEED(workload != NULL && workload[0], "co_store_workload_state_set: workload is empty");
    NEED(mode != NULL && mode[0], "co_store_workload_state_set: mode is empty");
    return st->ops->workload_state_set(st, workload, mode, percent, by, out_version);
}

int co_store_workload_states(co_store *st, int64_t since_version,
                             co_workload_state **out, size_t *n)
{
    NEED(out != NULL && n != NULL, "co_store_workload_states: out or n is NULL");
    *out = NULL;
    *n = 0;
    NEED_ST(st, "co_store_workload_states");
    return st->ops->workload_states(st, since_version, out, n);
}

void co_workload_state_clear(co_workload_state *s)
{
    if (!s)
        return;
    free(s->workload);
    free(s->mode);
    free(s->updated_by);
    memset(s, 0, sizeof *s);
}

void co_workload_states_free(co_workload_state *v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        co_workload_state_clear(&v[i]);
    free(v);
}

int co_store_rollout_get(co_store *st, const char *workload, co_rollout_state *out)
{
    NEED(out != NULL, "co_store_rollout_get: out is NULL");
    memset(out, 0, sizeof *out);
    NEED_ST(st, "co_store_rollout_get");
    NEED(workload != NULL && workload[0], "co_store_rollout_get: workload is empty");
    return st->ops->rollout_get(st, workload, out);
}

int co_store_rollout_put(co_store *st, co_rollout_state *s, int64_t expected_version)
{
    NEED_ST(st, "co_store_rollout_put");
    NEED(s != NULL, "co_store_rollout_put: state is NULL");
    NEED(s->workload != NULL && s->workload[0], "co_store_rollout_put: workload is empty");
    NEED(s->state != NULL && s->state[0], "co_store_rollout_put: state is empty");
    NEED(expected_version >= 0, "co_store_rollout_put: expected version %lld is negative",
         (long long)expected_version);
    return st->ops->rollout_put(st, s, expected_version);
}

void co_rollout_state_clear(co_rollout_state *s)
{
    if (!s)
        return;
    free(s->workload);
    free(s->state);
    free(s->data_json);
    memset(s, 0, sizeof *s);
}

int co_store_rollout_event_add(co_store *st, co_rollout_event *ev)
{
    NEED_ST(st, "co_store_rollout_event_add");
    NEED(ev != NULL, "co_store_rollout_event_add: event is NULL");
    NEED(ev->workload != NULL && ev->workload[0], "rollout event has no workload");
    NEED(ev->kind != NULL && ev->kind[0], "rollout event has no kind");
    NEED(ev->actor != NULL && ev->actor[0], "rollout event '%s' has no actor", ev->kind);
    return st->ops->rollout_event_add(st, ev);
}

int co_store_rollout_events(co_store *st, const char *workload, int64_t since_id,
                            co_rollout_event_list *out)
{
    NEED(out != NULL, "co_store_rollout_events: out is NULL");
    memset(out, 0, sizeof *out);
    NEED_ST(st, "co_store_rollout_events");
    return st->ops->rollout_events(st, workload, since_id, out);
}

static void rollout_event_clear(co_rollout_event *e)
{
    free(e->workload);
    free(e->actor);
    free(e->kind);
    free(e->from_state);
    free(e->to_state);
    free(e->reason);
    free(e->metrics_json);
    memset(e, 0, sizeof *e);
}

void co_rollout_event_list_free(co_rollout_event_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        rollout_event_clear(&l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

int co_store_incident_add(co_store *st, co_incident *inc)
{
    NEED_ST(st, "co_store_incident_add");
    NEED(inc != NULL, "co_store_incident_add: incident is NULL");
    NEED(inc->workload != NULL && inc->workload[0], "incident has no workload");
    return st->ops->incident_add(st, inc);
}

int co_store_incident_get(co_store *st, int64_t id, const char *workload, co_incident *out)
{
    NEED(out != NULL, "co_store_incident_get: out is NULL");
    memset(out, 0, sizeof *out);
    NEED_ST(st, "co_store_incident_get");
    return st->ops->incident_get(st, id, workload, out);
}

void co_incident_clear(co_incident *inc)
{
    if (!inc)
        return;
    free(inc->workload);
    free(inc->trigger);
    free(inc->report_md);
    free(inc->data_json);
    memset(inc, 0, sizeof *inc);
}

/* ---- reviews, feedback, evidence ---------------------------------------- */

int co_store_review_add(co_store *st, const co_review *r)
{
    NEED_ST(st, "co_store_review_add");
    NEED(r != NULL, "co_store_review_add: review is NULL");
    NEED(r->pair_id != NULL && r->pair_id[0], "review has no pair id");
    NEED(r->reviewer != NULL && r->reviewer[0], "review has no reviewer");
    NEED(r->verdict != NULL && r->verdict[0], "review has no verdict");
    return st->ops->review_add(st, r);
}

int co_store_reviews(co_store *st, const char *pair_id, co_review **out, size_t *n)
{
    NEED(out != NULL && n != NULL, "co_store_reviews: out or n is NULL");
    *out = NULL;
    *n = 0;
    NEED_ST(st, "co_store_reviews");
    return st->ops->reviews(st, pair_id, out, n);
}

void co_reviews_free(co_review *v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++) {
        free(v[i].pair_id);
        free(v[i].reviewer);
        free(v[i].verdict);
        free(v[i].note);
    }
    free(v);
}

int co_store_feedback_add(co_store *st, const co_feedback *f)
{
    NEED_ST(st, "co_store_feedback_add");
    NEED(f != NULL, "co_store_feedback_add: feedback is NULL");
    NEED(f->request_id != NULL && f->request_id[0], "feedback has no request id");
    NEED(f->score >= -1 && f->score <= 1, "feedback score %d is not -1, 0 or 1", f->score);
    return st->ops->feedback_add(st, f);
}

int co_store_feedback_summary(co_store *st, const co_window_query *q,
                              int64_t *out_total, int64_t *out_negative)
{
    NEED(out_total != NULL && out_negative != NULL,
         "co_store_feedback_summary: out_total or out_negative is NULL");
    *out_total = *out_negative = 0;
    NEED_ST(st, "co_store_feedback_summary");
    NEED(q != NULL, "co_store_feedback_summary: query is NULL");
    return st->ops->feedback_summary(st, q, out_total, out_negative);
}

int co_store_evidence_add(co_store *st, co_evidence *e)
{
    NEED_ST(st, "co_store_evidence_add");
    NEED(e != NULL, "co_store_evidence_add: evidence is NULL");
    NEED(e->item != NULL && e->item[0], "evidence has no plan item");
    return st->ops->evidence_add(st, e);
}

int co_store_evidence(co_store *st, const char *item, co_evidence **out, size_t *n)
{
    NEED(out != NULL && n != NULL, "co_store_evidence: out or n is NULL");
    *out = NULL;
    *n = 0;
    NEED_ST(st, "co_store_evidence");
    return st->ops->evidence(st, item, out, n);
}

void co_evidence_free(co_evidence *v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++) {
        free(v[i].item);
        free(v[i].workload);
        free(v[i].data_json);
    }
    free(v);
}

int co_store_gateway_beat(co_store *st, const co_gateway_beat *b)
{
    NEED_ST(st, "co_store_gateway_beat");
    NEED(b != NULL, "co_store_gateway_beat: beat is NULL");
    NEED(b->id != NULL && b->id[0], "gateway heartbeat has no id");
    NEED(b->applied_version >= 0, "gateway heartbeat: negative version");
    return st->ops->gateway_beat(st, b);
}

int co_store_gateways(co_store *st, int64_t seen_since_ms, co_gateway_beat **out, size_t *n)
{
    NEED(out != NULL && n != NULL, "co_store_gateways: out or n is NULL");
    *out = NULL;
    *n = 0;
    NEED_ST(st, "co_store_gateways");
    return st->ops->gateways(st, seen_since_ms, out, n);
}

void co_gateway_beats_free(co_gateway_beat *v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++) {
        free(v[i].id);
        free(v[i].host);
    }
    free(v);
}

int co_store_lease_take(co_store *st, const char *name, const char *holder, int64_t ttl_ms, int *out_held)
{
    NEED(out_held != NULL, "co_store_lease_take: out_held is NULL");
    *out_held = 0;
    NEED_ST(st, "co_store_lease_take");
    NEED(name != NULL && name[0], "lease has no name");
    NEED(holder != NULL && holder[0], "lease has no holder");
    NEED(ttl_ms > 0, "lease ttl must be positive");
    return st->ops->lease_take(st, name, holder, ttl_ms, out_held);
}

int co_store_lease_drop(co_store *st, const char *name, const char *holder)
{
    NEED_ST(st, "co_store_lease_drop");
    NEED(name != NULL && name[0], "lease has no name");
    NEED(holder != NULL && holder[0], "lease has no holder");
    return st->ops->lease_drop(st, name, holder);
}

int co_store_lease_held(co_store *st, const char *name, const char *holder)
{
    if (!st || !name || !holder || !st->ops->lease_held)
        return 0;
    return st->ops->lease_held(st, name, holder);
}
