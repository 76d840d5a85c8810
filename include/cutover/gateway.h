/* The gateway (`cutover serve`): N worker threads, each with its own libevent
 * event_base, HTTP/1.1 listener (gateway/http.h; SO_REUSEPORT on one address) and upstream
 * client; a shared router (route.h) whose table is swapped atomically on mode
 * changes; per-worker metrics (metrics.h); a recorder (recorder.h) writing
 * every served and shadow exchange to the store. One request lives on one
 * worker thread from start to finish.
 *
 * Ownership: co_gateway_new copies nothing from opts beyond the call, but
 * takes ownership of `cfg` (freed by co_gateway_free or replaced by
 * co_gateway_reload). The control-plane functions are thread-safe and may be
 * called from any thread (admin handlers, signal events, tests). */
#ifndef CUTOVER_GATEWAY_H
#define CUTOVER_GATEWAY_H

#include <stdint.h>

#include "cutover/buf.h"
#include "cutover/config.h"

typedef struct co_gateway co_gateway;

typedef void (*co_gateway_log_fn)(void *ud, int level, const char *msg); /* level: index into co_log_levels */

typedef struct co_gateway_opts {
    const char *listen;        /* overrides cfg->listen when set ("127.0.0.1:0" = ephemeral) */
    int workers;               /* overrides cfg->workers when > 0 */
    int handle_signals;        /* SIGINT/SIGTERM stop, SIGHUP reloads cfg->path */
    co_gateway_log_fn log;     /* NULL: stderr lines with a timestamp */
    void *log_ud;
} co_gateway_opts;

/* Binds the listener(s), opens the store, reads the providers' API keys (a
 * missing one is an error naming the variable or file) and applies the
 * stored workload states. Takes ownership of cfg on success only: on error
 * cfg is still the caller's. */
int co_gateway_new(co_gateway **out, co_config *cfg, const co_gateway_opts *opts);
/* The bound port (useful with port 0). */
int co_gateway_port(const co_gateway *gw);
/* Runs the workers until co_gateway_stop; returns 0 after a clean stop. */
int co_gateway_run(co_gateway *gw);
/* Asks a running gateway to stop (in-flight requests finish, bounded wait). */
void co_gateway_stop(co_gateway *gw);
void co_gateway_free(co_gateway *gw);

/* ---- control plane ------------------------------------------------------- */

/* Sets a workload's mode (and canary percent): written to the store (so every
 * gateway sharing it follows) and published to this gateway's workers at
 * once. actor: "user:NAME" | "controller" | "admin-api"; reason may be NULL.
 * CO_ENOENT for an unknown workload, CO_EINVAL for a mode the workload cannot
 * take (no candidate). */
int co_gateway_set_mode(co_gateway *gw, const char *workload, int mode, double percent,
                        const char *actor, const char *reason);
/* Rollback: mode incumbent, recorded as a rollback event with the reason. */
int co_gateway_rollback(co_gateway *gw, const char *workload, const char *actor, const char *reason);
/* Replaces the configuration (SIGHUP does this with the file re-read); runtime
 * mode overrides from the store are kept. Takes ownership of cfg on success. */
int co_gateway_reload(co_gateway *gw, co_config *cfg);
/* JSON array of workloads with mode, percent, version and per-arm traffic,
 * error rate and p95 from the metrics (the admin API and `cutover status`). */
int co_gateway_workloads_json(co_gateway *gw, co_buf *out);
/* Prometheus text of /metrics. */
int co_gateway_metrics(co_gateway *gw, co_buf *out);

#endif
