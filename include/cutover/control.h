/* Workload mode changes as a stored, audited fact: every way of changing a
 * mode (admin API, `cutover mode`, `cutover rollback`, the rollout
 * controller) goes through co_control_set_mode, which validates the change
 * against the config, writes the workload state (its version is what every
 * gateway polls) and appends an event to the rollout log.
 *
 * A rollback (by a person, the admin API or the controller) is one act
 * everywhere: the mode goes back to the incumbent first (so gateways serve it
 * on their next poll), then an active rollout moves to rolled_back, the event
 * is logged with the metrics behind it, and an incident report is written
 * (incident.h). A drill (actor "drill") flips the mode only: it is put back
 * by the drill itself, so the rollout and the incident log are left alone. */
#ifndef CUTOVER_CONTROL_H
#define CUTOVER_CONTROL_H

#include <stdint.h>

#include "cutover/config.h"
#include "cutover/store.h"

typedef struct co_mode_change {
    const char *workload;
    int mode;              /* enum co_mode */
    double percent;        /* canary percent, 0 < p <= 100 for canary */
    const char *actor;     /* "user:NAME" | "admin-api" | "controller" | "drill" */
    const char *reason;    /* may be NULL */
    int rollback;          /* 1: logged as a rollback (mode must be incumbent) */
    /* Rollbacks only (all optional): */
    const char *trigger;   /* what fired: "error_rate", "latency_p95", ...; NULL: "manual" */
    const char *metrics_json; /* snapshot behind the decision, kept with the event and the incident */
    int64_t window_since_ms;  /* start of the window the decision looked at; 0: the rollout stage's start */
    /* Logging: */
    const char *kind;      /* event kind instead of "mode" / "rollback" (e.g. "abort") */
    int no_event;          /* the caller logs the change itself (the rollout controller's stage changes) */
} co_mode_change;

/* Validates and stores a change. CO_ENOENT for an unknown workload (the
 * message lists the workloads), CO_EINVAL for a change the workload cannot
 * take (no candidate, percent out of range). out_version may be NULL. */
int co_control_set_mode(co_store *st, const co_config *cfg, const co_mode_change *ch, int64_t *out_version);

/* The mode a workload is in: the stored state when there is one, else the
 * config's. *mode is enum co_mode; version 0 means "as configured". */
int co_control_current(co_store *st, const co_workload_conf *w, int *mode, double *percent, int64_t *version);

/* Parses "incumbent" | "candidate" | "shadow" | "canary" (+ percent text). */
int co_control_parse_mode(const char *mode, const char *percent, int *out_mode, double *out_percent);

#endif
