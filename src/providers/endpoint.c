/* Provider endpoints (endpoint.h): URL and header lines of a provider's chat
 * calls, shared by the gateway and the eval runner. */
#include "cutover/endpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cutover/buf.h"
#include "cutover/error.h"

co_api co_api_of_provider(int kind)
{
    switch (kind) {
    case CO_PROVIDER_ANTHROPIC: return CO_API_ANTHROPIC;
    case CO_PROVIDER_GEMINI: return CO_API_GEMINI;
    default: return CO_API_OPENAI;
    }
}

static void wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

/* base_url may or may not carry the API's version path ("/v1", "/v1beta"):
 * both spellings users copy from provider docs are accepted. */
static char *chat_url(const co_provider_conf *p, co_api api)
{
    const char *base = p->base_url ? p->base_url : "";
    size_t n = strlen(base);
    while (n && base[n - 1] == '/')
        n--;
    const char *scheme = strstr(base, "://");
    const char *path = scheme ? memchr(scheme + 3, '/', n - (size_t)(scheme + 3 - base)) : NULL;
    int has_path = path != NULL;
    int ends_v1 = n >= 3 && !memcmp(base + n - 3, "/v1", 3);
    int ends_v1beta = n >= 7 && !memcmp(base + n - 7, "/v1beta", 7);
    char *url = NULL;
    int rc = -1;
    switch (api) {
    case CO_API_OPENAI:
        rc = asprintf(&url, "%.*s%s/chat/completions", (int)n, base, has_path ? "" : "/v1");
        break;
    case CO_API_ANTHROPIC:
        rc = asprintf(&url, "%.*s%s/messages", (int)n, base, ends_v1 ? "" : "/v1");
        break;
    case CO_API_GEMINI:
        rc = asprintf(&url, "%.*s%s/", (int)n, base, ends_v1 || ends_v1beta ? "" : "/v1beta");
        break;
    }
    return rc < 0 ? NULL : url;
}

void co_endpoint_clear(co_endpoint *e)
{
    if (!e)
        return;
    wipe_free(e->key);
    wipe_free(e->hdr_auth);
    free(e->hdr_version);
    free(e->url);
    memset(e, 0, sizeof *e);
}

int co_endpoint_init(co_endpoint *e, const co_provider_conf *p)
{
    memset(e, 0, sizeof *e);
    e->conf = p;
    e->api = co_api_of_provider(p->kind);
    int rc = 0;
    if ((p->api_key_env && p->api_key_env[0]) || (p->api_key_file && p->api_key_file[0])) {
        if ((rc = co_provider_api_key(p, &e->key)) < 0)
            goto done;
    }
    if (!(e->url = chat_url(p, e->api)))
        goto oom;
    size_t k = 0;
    e->hdrs[k++] = "Content-Type: application/json";
    if (e->key) {
        int n = e->api == CO_API_OPENAI      ? asprintf(&e->hdr_auth, "Authorization: Bearer %s", e->key)
                : e->api == CO_API_ANTHROPIC ? asprintf(&e->hdr_auth, "x-api-key: %s", e->key)
                                             : asprintf(&e->hdr_auth, "x-goog-api-key: %s", e->key);
        if (n < 0) {
            e->hdr_auth = NULL;
            goto oom;
        }
        e->hdrs[k++] = e->hdr_auth;
    }
    if (e->api == CO_API_ANTHROPIC) {
        const char *v = p->anthropic_version && p->anthropic_version[0] ? p->anthropic_version : "2023-06-01";
        if (asprintf(&e->hdr_version, "anthropic-version: %s", v) < 0) {
            e->hdr_version = NULL;
            goto oom;
        }
        e->hdrs[k++] = e->hdr_version;
    }
    e->hdrs[k] = NULL;
    return 0;
oom:
    rc = co_error_set(CO_ENOMEM, "out of memory");
done:
    co_endpoint_clear(e);
    return rc;
}

int co_endpoint_call_url(char **out, const co_endpoint *e, const char *upstream_model, int stream)
{
    *out = NULL;
    if (e->api != CO_API_GEMINI) {
        if (!(*out = strdup(e->url)))
            return co_error_set(CO_ENOMEM, "out of memory");
        return 0;
    }
    co_buf path;
    co_buf_init(&path, 4096);
    int rc = co_chat_gemini_path(&path, upstream_model, stream);
    if (rc == 0 && asprintf(out, "%s%s", e->url, path.p) < 0) {
        *out = NULL;
        rc = co_error_set(CO_ENOMEM, "out of memory");
    }
    co_buf_free(&path);
    return rc;
}
