/* Internal to the gateway (server.c, admin.c): the pieces admin.c needs from
 * the server — replies with the common headers, the control-thread job queue
 * and the control-plane calls that report a version. Not a public API. */
#ifndef CUTOVER_GATEWAY_SERVER_INT_H
#define CUTOVER_GATEWAY_SERVER_INT_H

#include <stddef.h>
#include <stdint.h>

#include "cutover/buf.h"
#include "cutover/chat.h"
#include "cutover/gateway.h"
#include "cutover/store.h"

#include "gateway/http.h"
typedef struct gw_worker gw_worker;

/* ---- replies ------------------------------------------------------------- */

/* Sends a complete reply with X-Cutover-Request-Id (fresh), X-Cutover-Arm
 * "none" and Content-Type application/json. w may be NULL (the admin
 * listener on the control thread). */
void gw_reply_json(gw_worker *w, gw_hreq *ev, int status, const char *body, size_t len);
/* {"error":{"message":..., "type":...}} with status. */
void gw_reply_admin_error(gw_worker *w, gw_hreq *ev, int status, const char *type,
                          const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* ---- control-thread jobs -------------------------------------------------- */

/* A piece of control-plane work asked for by a worker (admin API): run()
 * runs on the control thread (it may block on the store), then done() runs
 * back on the worker's thread, which still owns the HTTP request. */
typedef struct gw_job {
    struct gw_job *next;
    void (*run)(co_gateway *gw, struct gw_job *j);
    void (*done)(co_gateway *gw, struct gw_job *j);
    gw_worker *w;   /* NULL: submitted on the control thread itself; both run at once */
    int orphan;     /* set for done(): the request is gone, only free the job */
} gw_job;

/* Queues j (the worker counts it as in flight until done() returns). */
void gw_job_submit(co_gateway *gw, gw_job *j);

/* ---- control plane with the stored version -------------------------------- */

/* co_gateway_set_mode / co_gateway_rollback with the version the store gave
 * the change (out_version may be NULL). */
int gw_set_mode_v(co_gateway *gw, const char *workload, int mode, double percent, const char *actor,
                  const char *reason, int rollback, int64_t *out_version);

/* co_gateway_workloads_json, from a worker without the control mutex (w may
 * be NULL: the control thread). */
int gw_workloads_json_w(co_gateway *gw, gw_worker *w, co_buf *out);

/* An error in the client API's own shape (co_chat_error_format), with the
 * common headers. */
void gw_reply_api_error(gw_worker *w, gw_hreq *ev, co_api api, int status, co_chat_err_kind kind,
                        const char *msg);

/* ---- user feedback (feedback.c; storage and counters in server.c) ---------- */

/* Why a feedback request was refused (cutover_feedback_rejected_total). */
enum { GW_FB_INVALID = 0, GW_FB_BUSY, GW_FB_STORE, GW_FB__COUNT };
/* Feedback jobs queued or running on the control thread, per gateway, above
 * which POST /v1/feedback answers 503 instead of queueing more. */
#define GW_FB_PENDING_MAX 1024

/* POST /v1/feedback on a worker. */
void gw_feedback_handle(co_gateway *gw, gw_worker *w, gw_hreq *ev);
/* Stores one piece of feedback (comment redacted like recorded text) and
 * counts it. On the control thread only (it may block on the store). */
int gw_feedback_store(co_gateway *gw, const co_feedback *f);
/* Counts a refusal; reserves/releases a pending slot (0 when full). */
void gw_feedback_rejected(co_gateway *gw, int why);
int gw_feedback_reserve(co_gateway *gw);
void gw_feedback_release(co_gateway *gw);

/* ---- admin (admin.c) ------------------------------------------------------ */

/* Whether path is under /admin/. */
int gw_admin_path(const char *path);
/* Handles one /admin/... request. loopback: the listener that received it is
 * bound to a loopback address. token: the configured admin token (NULL when
 * none). w: the worker that received it (NULL on the admin listener's control
 * thread). */
void gw_admin_handle(co_gateway *gw, gw_worker *w, gw_hreq *ev, const char *path, int loopback,
                     const char *token);

#endif
