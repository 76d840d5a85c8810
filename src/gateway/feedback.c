/* POST /v1/feedback: a user's verdict on one answer, joined later (by
 * request id) to the exchange that produced it — the rollout's "negative
 * feedback" trigger reads it from the store.
 *
 *   {"request_id": "<X-Cutover-Request-Id of the answer>", "score": -1|0|1, "comment": "..."}
 *
 * Validation (400 in the OpenAI error shape when it fails): the body is a
 * JSON object of at most FB_BODY_MAX bytes (413 beyond); request_id is the
 * 32 hex characters the gateway puts in X-Cutover-Request-Id (case-folded);
 * score is the integer -1, 0 or 1; comment is optional, a string of at most
 * FB_COMMENT_MAX bytes (null = none). Other members are ignored, so clients
 * may send their own context without breaking. The request id is not looked
 * up: the exchange may still sit in the recorder's queue, and feedback on an
 * id nobody recorded simply never joins a window. A second vote on the same
 * request replaces the first.
 *
 * The store write never runs on the worker: the worker validates, hands a
 * job to the control thread (as admin changes do) and answers 200 once the
 * feedback is stored — nothing acknowledged is lost. At most
 * GW_FB_PENDING_MAX jobs wait at a time; beyond that the answer is 503. */
#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>


#include "cutover/util.h"
#include "gateway/server_int.h"

#define FB_BODY_MAX (16 * 1024)
#define FB_COMMENT_MAX 4000

typedef struct fb_job {
    gw_job base; /* first: the server hands back this pointer */
    gw_hreq *ev;
    char request_id[CO_ID_LEN];
    int score;
    char *comment;
    int64_t ts_ms;
    int rc;
} fb_job;

static void fb_run(co_gateway *gw, gw_job *j)
{
    fb_job *f = (fb_job *)j;
    co_feedback fb = {.request_id = f->request_id, .score = f->score, .comment = f->comment, .ts_ms = f->ts_ms};
    f->rc = gw_feedback_store(gw, &fb);
}

static void fb_done(co_gateway *gw, gw_job *j)
{
    fb_job *f = (fb_job *)j;
    gw_feedback_release(gw);
    if (j->orphan)
        goto out;
    if (f->rc < 0) {
        gw_reply_api_error(j->w, f->ev, CO_API_OPENAI, 503, CO_CHAT_ERR_OVERLOADED,
                           "the feedback could not be stored right now; retry");
        goto out;
    }
    json_t *r = json_pack("{s:s,s:s,s:i}", "status", "recorded", "request_id", f->request_id, "score", f->score);
    char *s = r ? json_dumps(r, JSON_COMPACT) : NULL;
    json_decref(r);
    if (s)
        gw_reply_json(j->w, f->ev, 200, s, strlen(s));
    else
        gw_reply_api_error(j->w, f->ev, CO_API_OPENAI, 500, CO_CHAT_ERR_API, "out of memory");
    free(s);
out:
    free(f->comment);
    free(f);
}

static void bad(co_gateway *gw, gw_worker *w, gw_hreq *ev, int status, const char *msg)
{
    gw_feedback_rejected(gw, GW_FB_INVALID);
    gw_reply_api_error(w, ev, CO_API_OPENAI, status,
                       status == 413 ? CO_CHAT_ERR_REQUEST_TOO_LARGE : CO_CHAT_ERR_INVALID_REQUEST, msg);
}

/* 32 hex characters, lowercased into out. */
static int request_id_ok(const char *s, size_t len, char out[CO_ID_LEN])
{
    if (len != CO_ID_LEN - 1)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (!isxdigit((unsigned char)s[i]))
            return 0;
        out[i] = (char)tolower((unsigned char)s[i]);
    }
    out[len] = '\0';
    return 1;
}

void gw_feedback_handle(co_gateway *gw, gw_worker *w, gw_hreq *ev)
{
    json_t *body = NULL;
    size_t len = 0;
    const char *p = gw_hreq_body(ev, &len);
    if (len > FB_BODY_MAX) {
        char msg[128];
        snprintf(msg, sizeof msg, "the feedback body is %zu bytes, over the limit of %d", len, FB_BODY_MAX);
        bad(gw, w, ev, 413, msg);
        return;
    }
    json_error_t jerr;
    body = json_loadb(p, len, 0, &jerr);
    if (!body) {
        char msg[300];
        snprintf(msg, sizeof msg, "the body is not valid JSON (line %d, column %d): %.200s", jerr.line, jerr.column,
                 jerr.text);
        bad(gw, w, ev, 400, msg);
        return;
    }
    if (!json_is_object(body)) {
        bad(gw, w, ev, 400, "the body must be a JSON object: {\"request_id\": \"...\", \"score\": -1|0|1}");
        goto out;
    }
    json_t *id = json_object_get(body, "request_id"), *score = json_object_get(body, "score"),
           *comment = json_object_get(body, "comment");
    char rid[CO_ID_LEN];
    if (!id || json_is_null(id)) {
        bad(gw, w, ev, 400, "request_id is required: the X-Cutover-Request-Id header of the answer");
        goto out;
    }
    if (!json_is_string(id) || !request_id_ok(json_string_value(id), json_string_length(id), rid)) {
        bad(gw, w, ev, 400,
            "request_id must be the 32 hexadecimal characters of an answer's X-Cutover-Request-Id header");
        goto out;
    }
    if (!score || json_is_null(score)) {
        bad(gw, w, ev, 400, "score is required: -1 (bad), 0 (neutral) or 1 (good)");
        goto out;
    }
    if (!json_is_integer(score) || json_integer_value(score) < -1 || json_integer_value(score) > 1) {
        bad(gw, w, ev, 400, "score must be the integer -1 (bad), 0 (neutral) or 1 (good)");
        goto out;
    }
    if (comment && !json_is_null(comment)) {
        if (!json_is_string(comment)) {
            bad(gw, w, ev, 400, "comment must be a string");
            goto out;
        }
        if (json_string_length(comment) > FB_COMMENT_MAX ||
            strlen(json_string_value(comment)) != json_string_length(comment)) {
            char msg[128];
            snprintf(msg, sizeof msg, "comment must be text of at most %d bytes", FB_COMMENT_MAX);
            bad(gw, w, ev, 400, msg);
            goto out;
        }
    } else {
        comment = NULL;
    }
    if (!gw_feedback_reserve(gw)) {
        gw_feedback_rejected(gw, GW_FB_BUSY);
        gw_hreq_add_header(ev, "Retry-After", "1");
        gw_reply_api_error(w, ev, CO_API_OPENAI, 503, CO_CHAT_ERR_OVERLOADED,
                           "too much feedback waiting to be stored; retry");
        goto out;
    }
    fb_job *f = calloc(1, sizeof *f);
    if (!f || (comment && !(f->comment = strdup(json_string_value(comment))))) {
        free(f);
        gw_feedback_release(gw);
        gw_reply_api_error(w, ev, CO_API_OPENAI, 500, CO_CHAT_ERR_API, "out of memory");
        goto out;
    }
    f->base.run = fb_run;
    f->base.done = fb_done;
    f->base.w = w;
    f->ev = ev;
    memcpy(f->request_id, rid, sizeof rid);
    f->score = (int)json_integer_value(score);
    f->ts_ms = co_now_ms();
    gw_job_submit(gw, &f->base);
out:
    json_decref(body);
}
