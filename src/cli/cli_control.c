/* Config/store loading and admin API calls shared by status, mode and
 * rollback (see cli_control.h). */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "cli_control.h"
#include "cutover/util.h"

int co_cli_load_config(co_cli_ctx *ctx, co_config **out)
{
    co_diags d = {0};
    const char *path = co_cli_config_path(ctx);
    int rc = co_config_load(out, path, &d);
    if (rc < 0) {
        co_diags_print(&d, ctx->err);
        co_diags_free(&d);
        return rc == CO_ECONFIG ? CO_EXIT_FAIL : CO_EXIT_USAGE;
    }
    co_diags_free(&d);
    return 0;
}

int co_cli_open_store(co_cli_ctx *ctx, const co_config *cfg, co_store **out)
{
    if (co_store_open(out, cfg->store) < 0) {
        fprintf(ctx->err, "cutover %s: store %s: %s\n", ctx->cmd->name, cfg->store, co_error_last());
        return CO_EXIT_FAIL;
    }
    return 0;
}

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
    return co_buf_append(ud, p, size * n) == 0 ? size * n : 0;
}

static char *admin_token(const co_config *cfg)
{
    if (cfg->admin.token_file && cfg->admin.token_file[0]) {
        char *t = NULL;
        size_t len = 0;
        if (co_read_file(cfg->admin.token_file, 64 * 1024, &t, &len) == 0) {
            while (len && (t[len - 1] == '\n' || t[len - 1] == '\r'))
                t[--len] = '\0';
            return t;
        }
        return NULL;
    }
    const char *v = cfg->admin.token_env ? getenv(cfg->admin.token_env) : NULL;
    return v && *v ? strdup(v) : NULL;
}

int co_cli_admin_post(co_cli_ctx *ctx, const co_config *cfg, const char *path, const char *json,
                      long *status, char **body)
{
    int rc = 0;
    char url[512], *token = NULL, *auth = NULL;
    const char *base = co_cli_get(ctx, "gateway");
    if (base)
        snprintf(url, sizeof url, "%s%s", base, path);
    else
        snprintf(url, sizeof url, "http://%s%s",
                 cfg->admin.listen && cfg->admin.listen[0] ? cfg->admin.listen : cfg->listen, path);
    co_buf b;
    co_buf_init(&b, 1u << 20);
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    token = admin_token(cfg);
    if (token && asprintf(&auth, "Authorization: Bearer %s", token) > 0)
        hdrs = curl_slist_append(hdrs, auth);
    CURL *c = curl_easy_init();
    if (!c) {
        rc = co_error_set(CO_ENOMEM, "out of memory");
        goto done;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    CURLcode cc = curl_easy_perform(c);
    if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST || cc == CURLE_OPERATION_TIMEDOUT) {
        rc = co_error_set(CO_ENET, "no gateway answered at %s (%s)", url, curl_easy_strerror(cc));
        goto done;
    }
    if (cc != CURLE_OK) {
        rc = co_error_set(CO_EIO, "%s: %s", url, curl_easy_strerror(cc));
        goto done;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    *body = co_buf_detach(&b);
done:
    if (c)
        curl_easy_cleanup(c);
    curl_slist_free_all(hdrs);
    co_buf_free(&b);
    if (auth) {
        memset(auth, 0, strlen(auth));
        free(auth);
    }
    if (token) {
        memset(token, 0, strlen(token));
        free(token);
    }
    return rc;
}

#include <jansson.h>

int co_cli_apply_mode(co_cli_ctx *ctx, const co_config *cfg, const co_mode_change *ch)
{
    int rc = CO_EXIT_OK;
    char path[600];
    json_t *req = json_object();
    if (ch->rollback) {
        snprintf(path, sizeof path, "/admin/workloads/%s/rollback", ch->workload);
    } else {
        snprintf(path, sizeof path, "/admin/workloads/%s/mode", ch->workload);
        json_object_set_new(req, "mode", json_string(co_modes[ch->mode]));
        if (ch->mode == CO_MODE_CANARY)
            json_object_set_new(req, "percent", json_real(ch->percent));
    }
    if (ch->reason)
        json_object_set_new(req, "reason", json_string(ch->reason));
    json_object_set_new(req, "actor", json_string(ch->actor));
    char *body_json = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    long status = 0;
    char *resp = NULL;
    int64_t t0 = co_mono_us();
    int err = co_cli_admin_post(ctx, cfg, path, body_json ? body_json : "{}", &status, &resp);
    double ms = (double)(co_mono_us() - t0) / 1000.0;
    free(body_json);
    char what[64];
    if (ch->mode == CO_MODE_CANARY)
        snprintf(what, sizeof what, "canary %g%%", ch->percent);
    else
        snprintf(what, sizeof what, "%s", co_modes[ch->mode]);
    if (err == 0 && status >= 200 && status < 300) {
        json_t *j = json_loads(resp, 0, NULL);
        json_t *v = j ? json_object_get(j, "version") : NULL;
        fprintf(ctx->out, "%s: %s %s — served by the gateway in %.1f ms%s%lld%s\n", ch->workload,
                ch->rollback ? "rolled back to" : "now", what, ms, v ? " (version " : "",
                v ? (long long)json_integer_value(v) : 0LL, v ? ")" : "");
        json_decref(j);
        goto done;
    }
    if (err == 0) {
        json_t *j = json_loads(resp, 0, NULL);
        json_t *e = j ? json_object_get(j, "error") : NULL;
        json_t *m = e ? json_object_get(e, "message") : NULL;
        fprintf(ctx->err, "cutover %s: the gateway refused (HTTP %ld): %s\n", ctx->cmd->name, status,
                m && json_is_string(m) ? json_string_value(m) : (resp ? resp : ""));
        json_decref(j);
        rc = status == 404 || status == 400 ? CO_EXIT_USAGE : CO_EXIT_FAIL;
        goto done;
    }
    if (err != CO_ENET) {
        fprintf(ctx->err, "cutover %s: %s\n", ctx->cmd->name, co_error_last());
        rc = CO_EXIT_FAIL;
        goto done;
    }
    /* no gateway here: the store is the source of truth every gateway polls */
    fprintf(ctx->err, "cutover %s: %s; writing the change to the store\n", ctx->cmd->name, co_error_last());
    co_store *st = NULL;
    rc = co_cli_open_store(ctx, cfg, &st);
    if (rc)
        goto done;
    int64_t version = 0;
    if (co_control_set_mode(st, cfg, ch, &version) < 0) {
        int s = co_error_last_status();
        fprintf(ctx->err, "cutover %s: %s\n", ctx->cmd->name, co_error_last());
        rc = s == CO_ENOENT || s == CO_EINVAL ? CO_EXIT_USAGE : CO_EXIT_FAIL;
    } else {
        fprintf(ctx->out, "%s: %s %s (stored as version %lld; running gateways apply it within a second)\n",
                ch->workload, ch->rollback ? "rolled back to" : "now", what, (long long)version);
    }
    co_store_close(st);
done:
    free(resp);
    return rc;
}
