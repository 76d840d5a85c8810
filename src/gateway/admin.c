/* The admin API of the gateway:
 *
 *   GET  /admin/workloads                  every workload: mode, percent, version, per-arm figures
 *   POST /admin/workloads/NAME/mode        {"mode":"canary","percent":10,"reason":"...","actor":"..."}
 *   POST /admin/workloads/NAME/rollback    {"reason":"...","actor":"..."}
 *
 * Mode changes and rollbacks are written to the store and published to every
 * worker before the answer goes out (which reports the stored version), so
 * the very next request anywhere sees them. The store write runs on the
 * control thread, never on a worker: a worker hands the change over as a job
 * and answers when it comes back.
 *
 * Auth: "Authorization: Bearer TOKEN" with the token from admin.token_env /
 * admin.token_file, compared in constant time. With no token configured the
 * admin API answers only on a loopback listener (127.0.0.0/8, ::1); anywhere
 * else it refuses with 403. Errors are JSON: {"error":{"message","type"}}. */
#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h> /* evhttp_uridecode */

#include "cutover/config.h"
#include "cutover/error.h"
#include "cutover/gateway.h"
#include "gateway/server_int.h"

#define ADMIN_BODY_MAX (64 * 1024)

int gw_admin_path(const char *path)
{
    return path && (!strcmp(path, "/admin") || !strncmp(path, "/admin/", 7));
}

/* Equal strings, in time that depends only on the lengths. */
static int ct_equal(const char *a, size_t al, const char *b, size_t bl)
{
    size_t n = al > bl ? al : bl;
    unsigned char d = (unsigned char)(al != bl);
    for (size_t i = 0; i < n; i++) {
        unsigned char x = i < al ? (unsigned char)a[i] : 0, y = i < bl ? (unsigned char)b[i] : 0;
        d |= (unsigned char)(x ^ y);
    }
    return d == 0;
}

/* Printable ASCII copy for messages (names come from the URL). */
static void safe_copy(char *dst, size_t n, const char *src)
{
    size_t i = 0;
    for (; src && src[i] && i + 1 < n; i++)
        dst[i] = isprint((unsigned char)src[i]) && src[i] != '"' && src[i] != '\\' ? src[i] : '?';
    dst[i] = '\0';
}

typedef struct admin_job {
    gw_job base; /* first: the server hands back this pointer */
    gw_hreq *ev;
    char workload[256];
    int mode;
    double percent;
    int rollback;
    char actor[96];
    char *reason;
    int rc;
    int64_t version;
    char err[1024];
} admin_job;

static void job_run(co_gateway *gw, gw_job *j)
{
    admin_job *a = (admin_job *)j;
    a->rc = gw_set_mode_v(gw, a->workload, a->mode, a->percent, a->actor, a->reason, a->rollback, &a->version);
    if (a->rc < 0)
        snprintf(a->err, sizeof a->err, "%s", co_error_last());
}

static void job_done(co_gateway *gw, gw_job *j)
{
    (void)gw;
    admin_job *a = (admin_job *)j;
    if (j->orphan)
        goto out;
    if (a->rc < 0) {
        int status = a->rc == CO_ENOENT ? 404 : a->rc == CO_EINVAL ? 400 : 500;
        const char *type = status == 404   ? "not_found_error"
                           : status == 400 ? "invalid_request_error"
                                           : "api_error";
        char msg[1024];
        safe_copy(msg, sizeof msg, a->err);
        gw_reply_admin_error(j->w, a->ev, status, type, "%s", msg);
        goto out;
    }
    json_t *r = json_pack("{s:s,s:s,s:f,s:I,s:b}", "workload", a->workload, "mode", co_modes[a->mode], "percent",
                          a->mode == CO_MODE_CANARY ? a->percent : a->mode == CO_MODE_CANDIDATE ? 100.0 : 0.0,
                          "version", (json_int_t)a->version, "rolled_back", a->rollback);
    char *s = r ? json_dumps(r, JSON_COMPACT) : NULL;
    json_decref(r);
    if (s)
        gw_reply_json(j->w, a->ev, 200, s, strlen(s));
    else
        gw_reply_admin_error(j->w, a->ev, 500, "api_error", "out of memory");
    free(s);
out:
    free(a->reason);
    free(a);
}

/* Reads the JSON object body; NULL after an error reply. */
static json_t *read_body(gw_worker *w, gw_hreq *ev)
{
    size_t len = 0;
    const char *p = gw_hreq_body(ev, &len);
    if (len > ADMIN_BODY_MAX) {
        gw_reply_admin_error(w, ev, 413, "request_too_large", "the body is over %d bytes", ADMIN_BODY_MAX);
        return NULL;
    }
    if (len == 0)
        return json_object();
    json_error_t err;
    json_t *j = json_loadb(p, len, 0, &err);
    if (!j) {
        char msg[256];
        safe_copy(msg, sizeof msg, err.text);
        gw_reply_admin_error(w, ev, 400, "invalid_request_error", "the body is not valid JSON (line %d, column %d): %s",
                             err.line, err.column, msg);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        gw_reply_admin_error(w, ev, 400, "invalid_request_error", "the body must be a JSON object");
        return NULL;
    }
    return j;
}

static int opt_string(gw_worker *w, gw_hreq *ev, json_t *body, const char *key, const char **out)
{
    json_t *v = json_object_get(body, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        gw_reply_admin_error(w, ev, 400, "invalid_request_error", "%s must be a string", key);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

static void change(co_gateway *gw, gw_worker *w, gw_hreq *ev, const char *name, int rollback)
{
    json_t *body = read_body(w, ev);
    if (!body)
        return;
    const char *mode = NULL, *reason = NULL, *actor = NULL;
    if (opt_string(w, ev, body, "mode", &mode) || opt_string(w, ev, body, "reason", &reason) ||
        opt_string(w, ev, body, "actor", &actor))
        goto out;
    int m = CO_MODE_INCUMBENT;
    double pct = 0;
    if (!rollback) {
        if (!mode) {
            gw_reply_admin_error(w, ev, 400, "invalid_request_error",
                                 "mode is required: incumbent, candidate, shadow or canary (with percent)");
            goto out;
        }
        m = co_enum_index(co_modes, mode);
        if (m < 0) {
            char safe[64];
            safe_copy(safe, sizeof safe, mode);
            gw_reply_admin_error(w, ev, 400, "invalid_request_error",
                                 "unknown mode '%s': use incumbent, candidate, shadow or canary", safe);
            goto out;
        }
        json_t *p = json_object_get(body, "percent");
        if (p && !json_is_null(p)) {
            if (!json_is_number(p)) {
                gw_reply_admin_error(w, ev, 400, "invalid_request_error", "percent must be a number");
                goto out;
            }
            pct = json_number_value(p);
        }
        if (m == CO_MODE_CANARY && !(pct > 0 && pct <= 100)) {
            gw_reply_admin_error(w, ev, 400, "invalid_request_error",
                                 "canary needs a percent above 0 and at most 100");
            goto out;
        }
    }
    admin_job *a = calloc(1, sizeof *a);
    if (!a || (reason && !(a->reason = strdup(reason)))) {
        free(a);
        gw_reply_admin_error(w, ev, 500, "api_error", "out of memory");
        goto out;
    }
    a->base.run = job_run;
    a->base.done = job_done;
    a->base.w = w;
    a->ev = ev;
    snprintf(a->workload, sizeof a->workload, "%s", name);
    a->mode = m;
    a->percent = pct;
    a->rollback = rollback;
    /* the CLI says who asked ("user:NAME"); anything else is the admin API */
    if (actor && *actor && strlen(actor) < sizeof a->actor && json_string_length(json_object_get(body, "actor")) ==
                                                                     strlen(actor))
        safe_copy(a->actor, sizeof a->actor, actor);
    else
        snprintf(a->actor, sizeof a->actor, "admin-api");
    gw_job_submit(gw, &a->base);
out:
    json_decref(body);
}

void gw_admin_handle(co_gateway *gw, gw_worker *w, gw_hreq *ev, const char *path, int loopback,
                     const char *token)
{
    if (token && *token) {
        const char *h = gw_hreq_header(ev, "Authorization");
        if (!h) {
            gw_hreq_add_header(ev, "WWW-Authenticate", "Bearer realm=\"cutover admin\"");
            gw_reply_admin_error(w, ev, 401, "authentication_error",
                                 "the admin API needs an Authorization: Bearer TOKEN header");
            return;
        }
        while (*h == ' ')
            h++;
        const char *given = !strncasecmp(h, "Bearer ", 7) ? h + 7 : "";
        while (*given == ' ')
            given++;
        size_t gl = strlen(given);
        while (gl && (given[gl - 1] == ' ' || given[gl - 1] == '\t'))
            gl--;
        if (!ct_equal(given, gl, token, strlen(token))) {
            gw_reply_admin_error(w, ev, 403, "permission_error", "the admin token is not valid");
            return;
        }
    } else if (!loopback) {
        gw_reply_admin_error(w, ev, 403, "permission_error",
                             "the admin API is off: no admin token is configured (admin.token_env or "
                             "admin.token_file) and the listener is not loopback-only");
        return;
    }

    int cmd = gw_hreq_method(ev);
    if (!strcmp(path, "/admin/workloads") || !strcmp(path, "/admin/workloads/")) {
        if (cmd != GW_HTTP_GET) {
            gw_hreq_add_header(ev, "Allow", "GET");
            gw_reply_admin_error(w, ev, 405, "invalid_request_error", "use GET on /admin/workloads");
            return;
        }
        co_buf b;
        co_buf_init(&b, CO_BUF_UNLIMITED);
        if (gw_workloads_json_w(gw, w, &b) < 0)
            gw_reply_admin_error(w, ev, 500, "api_error", "out of memory");
        else
            gw_reply_json(w, ev, 200, b.p, b.len);
        co_buf_free(&b);
        return;
    }
    static const char pre[] = "/admin/workloads/";
    if (!strncmp(path, pre, sizeof pre - 1)) {
        const char *rest = path + sizeof pre - 1;
        const char *slash = strchr(rest, '/');
        if (slash && slash > rest && (!strcmp(slash, "/mode") || !strcmp(slash, "/rollback"))) {
            int rollback = !strcmp(slash, "/rollback");
            if (cmd != GW_HTTP_POST) {
                gw_hreq_add_header(ev, "Allow", "POST");
                gw_reply_admin_error(w, ev, 405, "invalid_request_error", "use POST on %s", rollback ? "rollback" : "mode");
                return;
            }
            char enc[512];
            size_t el = (size_t)(slash - rest);
            if (el >= sizeof enc) {
                gw_reply_admin_error(w, ev, 404, "not_found_error", "no such workload");
                return;
            }
            memcpy(enc, rest, el);
            enc[el] = '\0';
            size_t nl = 0;
            char *name = evhttp_uridecode(enc, 0, &nl);
            if (!name || nl != strlen(name) || nl == 0 || nl >= 256) {
                free(name);
                gw_reply_admin_error(w, ev, 404, "not_found_error", "no such workload");
                return;
            }
            change(gw, w, ev, name, rollback);
            free(name);
            return;
        }
    }
    char safe[200];
    safe_copy(safe, sizeof safe, path);
    gw_reply_admin_error(w, ev, 404, "not_found_error",
                         "no admin route %s; the admin API serves GET /admin/workloads, POST "
                         "/admin/workloads/NAME/mode and POST /admin/workloads/NAME/rollback",
                         safe);
}
