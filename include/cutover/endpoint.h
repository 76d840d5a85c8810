/* Provider endpoints: where a model call goes and the headers it carries
 * (URL from base_url and the API, the key header, Anthropic's version
 * header). One code path for the gateway, eval, and anything else that calls
 * a model, so a provider configured once is called the same way everywhere.
 *
 * Ownership: co_endpoint_init fills a caller-owned struct with heap strings;
 * co_endpoint_clear wipes the key material and frees them. `conf` is
 * borrowed and must outlive the endpoint. Secrets: the key lives only in
 * `key` and the auth header line; neither is ever logged. */
#ifndef CUTOVER_ENDPOINT_H
#define CUTOVER_ENDPOINT_H

#include "cutover/chat.h"
#include "cutover/config.h"

typedef struct co_endpoint {
    const co_provider_conf *conf;
    co_api api;
    char *key;          /* NULL when the provider has no key configured */
    char *url;          /* OpenAI / Anthropic: the chat endpoint; Gemini: the prefix of models/... */
    char *hdr_auth, *hdr_version;
    const char *hdrs[4];/* "Name: value" lines, NULL-terminated, for co_upstream_req.headers */
} co_endpoint;

/* The wire API a provider kind speaks (OpenAI-compatible servers: OpenAI). */
co_api co_api_of_provider(int kind);

/* Reads the provider's key (api_key_env / api_key_file, when configured) and
 * builds the URL and headers. CO_ENOENT (naming the variable or file) when a
 * configured key is missing, CO_ENOMEM. On error *e is left cleared. */
int co_endpoint_init(co_endpoint *e, const co_provider_conf *p);
void co_endpoint_clear(co_endpoint *e);

/* The URL of one call: the chat URL, or for Gemini the prefix plus
 * "models/<upstream model>:generateContent" (":streamGenerateContent?alt=sse"
 * when streaming). *out is malloc'd. */
int co_endpoint_call_url(char **out, const co_endpoint *e, const char *upstream_model, int stream);

#endif
