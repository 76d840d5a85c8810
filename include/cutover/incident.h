/* Incidents: the markdown report written on every rollback (automatic or by
 * hand) — trigger, timeline from the rollout event log, metrics at the
 * decision vs the baseline, requests affected, sample failing pairs, and the
 * post-rollback checklist — stored with co_store_incident_add and shown by
 * `cutover report incident ID|latest`.
 *
 * Rendering reads only the store and the config, so it is deterministic for
 * a given store (golden-file tests). Library code never prints. */
#ifndef CUTOVER_INCIDENT_H
#define CUTOVER_INCIDENT_H

#include <stdint.h>

#include "cutover/buf.h"
#include "cutover/config.h"
#include "cutover/store.h"

typedef struct co_incident_input {
    const char *workload;
    const char *trigger;       /* "error_rate" | "latency_p95" | "cost" | "quality" | "feedback" | "manual" | "drill" */
    const char *reason;        /* one line: what breached, value vs threshold */
    const char *actor;         /* "controller" | "user:NAME" */
    const char *metrics_json;  /* snapshot behind the decision (trigger values, windows); may be NULL */
    int64_t ts_ms;             /* decision time; <= 0: now */
    int64_t window_since_ms;   /* start of the window the decision looked at (the stage start) */
} co_incident_input;

/* Renders the report (appended to out). */
int co_incident_render(co_buf *out, co_store *st, const co_config *cfg, const co_incident_input *in);
/* Renders and stores it; *out_id (may be NULL) receives the incident id. */
int co_incident_write(co_store *st, const co_config *cfg, const co_incident_input *in, int64_t *out_id);

#endif
