/* The retained incumbent's health probe (include/cutover/rollout.h): after
 * promotion the incumbent must stay deployable, so the controller sends it
 * one small real request every interval through the same provider code the
 * gateway uses (endpoint.h for URL and key headers, chat.h for the wire
 * format), as a blocking libcurl call on the controller's own thread. */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "cutover/buf.h"
#include "cutover/chat.h"
#include "cutover/endpoint.h"
#include "cutover/rollout.h"

static size_t sink(char *p, size_t size, size_t n, void *ud)
{
    return co_buf_append(ud, p, size * n) == 0 ? size * n : 0;
}

int co_rollout_probe_incumbent(void *ud, const co_config *cfg, const co_workload_conf *w)
{
    (void)ud;
    const co_model_conf *m = co_config_model(cfg, w->incumbent);
    const co_provider_conf *p = m ? co_config_provider(cfg, m->provider) : NULL;
    if (!m || !p)
        return co_error_set(CO_ENOENT, "the incumbent '%s' is no longer configured", w->incumbent);
    const char *upstream = m->upstream ? m->upstream : m->name;
    co_endpoint e;
    co_chat_request *req = NULL;
    char *url = NULL;
    CURL *c = NULL;
    struct curl_slist *hl = NULL;
    co_buf body, resp;
    co_buf_init(&body, 64 * 1024);
    co_buf_init(&resp, 4u << 20);
    int rc = co_endpoint_init(&e, p);
    if (rc < 0)
        return rc;
    co_chat_message *msg = NULL;
    if ((rc = co_chat_request_new(&req)) < 0 || (rc = co_chat_request_set_str(&req->model, upstream)) < 0 ||
        (rc = co_chat_request_add_message(req, CO_CHAT_USER, &msg)) < 0 ||
        (rc = co_chat_message_add_text(msg, "ping", 4)) < 0)
        goto done;
    req->max_tokens = 1;
    if ((rc = co_chat_request_emit(&body, req, e.api, NULL)) < 0 ||
        (rc = co_endpoint_call_url(&url, &e, upstream, 0)) < 0)
        goto done;
    if (!(c = curl_easy_init())) {
        rc = co_error_set(CO_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; e.hdrs[i]; i++)
        hl = curl_slist_append(hl, e.hdrs[i]);
    hl = curl_slist_append(hl, "Content-Type: application/json");
    hl = curl_slist_append(hl, "Expect:");
    long connect_ms = p->connect_timeout_ms > 0 ? (long)p->connect_timeout_ms : 5000L;
    long total_ms = p->timeout_ms > 0 && p->timeout_ms < 30000 ? (long)p->timeout_ms : 30000L;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.p);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body.len);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, total_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROXY, ""); /* as the gateway: no proxy from the environment */
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        rc = co_error_set(cc == CURLE_OPERATION_TIMEDOUT ? CO_ETIMEDOUT : CO_ENET, "probe of %s: %s", url,
                          curl_easy_strerror(cc));
        goto done;
    }
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status >= 300) {
        rc = co_error_set(CO_EUPSTREAM, "probe of %s: HTTP %ld: %.200s", url, status, resp.p ? resp.p : "");
        goto done;
    }
    co_chat_response *r = NULL;
    if (co_chat_response_parse(&r, e.api, resp.p ? resp.p : "", resp.len) < 0) {
        rc = co_error_set(CO_EUPSTREAM, "probe of %s: the answer does not parse: %s", url, co_error_last());
        goto done;
    }
    co_chat_response_free(r);
done:
    if (c)
        curl_easy_cleanup(c);
    curl_slist_free_all(hl);
    free(url);
    co_chat_request_free(req);
    co_endpoint_clear(&e);
    co_buf_free(&body);
    co_buf_free(&resp);
    return rc;
}
