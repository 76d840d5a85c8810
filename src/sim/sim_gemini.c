/* The Gemini generateContent wire protocol of `cutover sim`: request
 * validation with Google's error shape ({"error":{code,message,status}}),
 * the GenerateContentResponse JSON reply, streamGenerateContent as SSE
 * (alt=sse) or as a streamed JSON array, and the Gemini model list. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/sim_int.h"

static void gm_err_details(co__sim_reply *r, int code, const char *status, const char *msg,
                           const char *details)
{
    co_buf_reset(&r->body);
    r->status = code;
    r->stream = 0;
    r->ctype = "application/json; charset=UTF-8";
    co__sim_out o = {&r->body, 0};
    co__sim_printf(&o, "{\"error\":{\"code\":%d,\"message\":", code);
    co__sim_jstrz(&o, msg);
    co__sim_put(&o, ",\"status\":");
    co__sim_jstrz(&o, status);
    if (details) {
        co__sim_put(&o, ",\"details\":");
        co__sim_put(&o, details);
    }
    co__sim_put(&o, "}}\n");
}

static int gm_invalid(co__sim_reply *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int gm_invalid(co__sim_reply *r, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    gm_err_details(r, 400, "INVALID_ARGUMENT", msg, NULL);
    return -1;
}

static void gm_error(co__sim_reply *r, int kind, const char *detail)
{
    char msg[512], det[256];
    const char *d = detail ? detail : "";
    switch (kind) {
    case CO__SIM_E_AUTH_MISSING:
        gm_err_details(r, 401, "UNAUTHENTICATED",
                       "Method doesn't allow unregistered callers (callers without established "
                       "identity). Please use API Key or other form of API consumer identity to call "
                       "this API.",
                       NULL);
        break;
    case CO__SIM_E_AUTH_INVALID:
        gm_err_details(r, 400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.",
                       "[{\"@type\":\"type.googleapis.com/google.rpc.ErrorInfo\",\"reason\":\"API_KEY_INVALID\","
                       "\"domain\":\"googleapis.com\",\"metadata\":{\"service\":\"generativelanguage.googleapis.com\"}}]");
        break;
    case CO__SIM_E_MALFORMED:
        gm_err_details(r, 400, "INVALID_ARGUMENT", "Invalid JSON payload received. Unexpected token.", NULL);
        break;
    case CO__SIM_E_TOO_BIG:
        gm_err_details(r, 413, "INVALID_ARGUMENT", d, NULL);
        break;
    case CO__SIM_E_MODEL:
        snprintf(msg, sizeof msg,
                 "models/%.200s is not found for API version v1beta, or is not supported for "
                 "generateContent. Call ListModels to see the list of available models and their "
                 "supported methods.",
                 d);
        gm_err_details(r, 404, "NOT_FOUND", msg, NULL);
        break;
    case CO__SIM_E_RATE: {
        long long s = r->retry_after_ms > 0 ? (r->retry_after_ms + 999) / 1000 : 1;
        snprintf(det, sizeof det,
                 "[{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":\"%llds\"}]", s);
        gm_err_details(r, 429, "RESOURCE_EXHAUSTED",
                       "You exceeded your current quota, please check your plan and billing details.", det);
        break;
    }
    case CO__SIM_E_SERVER:
        gm_err_details(r, 500, "INTERNAL",
                       "An internal error has occurred. Please retry or report in "
                       "https://developers.generativeai.google/guide/troubleshooting",
                       NULL);
        break;
    case CO__SIM_E_OVERLOADED:
        gm_err_details(r, 503, "UNAVAILABLE", "The model is overloaded. Please try again later.", NULL);
        break;
    case CO__SIM_E_ROUTE:
    case CO__SIM_E_METHOD:
        snprintf(msg, sizeof msg, "Method not found: %.300s", d);
        gm_err_details(r, 404, "NOT_FOUND", msg, NULL);
        break;
    case CO__SIM_E_CONTEXT:
    case CO__SIM_E_INVALID:
    case CO__SIM_E_VERSION:
    default:
        gm_err_details(r, 400, "INVALID_ARGUMENT", d, NULL);
        break;
    }
}

static const char *const gm_fields[] = {
    "contents", "systemInstruction", "system_instruction", "generationConfig", "generation_config",
    "tools", "toolConfig", "tool_config", "safetySettings", "safety_settings", "cachedContent",
    "cached_content", "labels", "model", NULL,
};

static const json_t *get2(const json_t *o, const char *camel, const char *snake)
{
    const json_t *v = json_object_get(o, camel);
    return v ? v : json_object_get(o, snake);
}

/* Parts of one Content; text goes to dst (when not NULL). */
static int gm_parts(co__sim_reply *r, const char *where, const json_t *content, co__sim_req *req,
                    co_buf *dst, int *has_text, int *has_result)
{
    const json_t *parts = json_object_get(content, "parts");
    if (!json_is_array(parts) || json_array_size(parts) == 0)
        return gm_invalid(r, "* GenerateContentRequest.%s.parts: contents.parts must not be empty.\n", where);
    size_t k;
    const json_t *p;
    int reset = 0;
    json_array_foreach(parts, k, p) {
        if (!json_is_object(p))
            return gm_invalid(r, "Invalid value at '%s.parts[%zu]' (type.googleapis.com/google.ai.generativelanguage.v1beta.Part)", where, k);
        const json_t *t = json_object_get(p, "text");
        const json_t *fr = get2(p, "functionResponse", "function_response");
        const json_t *fc = get2(p, "functionCall", "function_call");
        if (t) {
            if (!json_is_string(t))
                return gm_invalid(r, "Invalid value at '%s.parts[%zu].text' (TYPE_STRING)", where, k);
            if (dst) {
                if (!reset)
                    co_buf_reset(dst);
                else
                    co_buf_append(dst, "\n", 1);
                reset = 1;
                co_buf_append(dst, json_string_value(t), json_string_length(t));
            }
            req->prompt_chars += json_string_length(t);
            *has_text = 1;
        } else if (fr) {
            char *s = json_dumps(json_object_get(fr, "response"), JSON_COMPACT | JSON_ENCODE_ANY);
            co_buf_reset(req->tool_result);
            if (s) {
                co_buf_puts(req->tool_result, s);
                req->prompt_chars += strlen(s);
                free(s);
            }
            *has_result = 1;
        } else if (fc) {
            char *s = json_dumps(json_object_get(fc, "args"), JSON_COMPACT | JSON_ENCODE_ANY);
            req->prompt_chars += s ? strlen(s) : 0;
            free(s);
        }
    }
    return 0;
}

static int gm_tools(co__sim_reply *r, const json_t *root, co__sim_req *req)
{
    const json_t *tools = json_object_get(root, "tools");
    if (tools && !json_is_array(tools))
        return gm_invalid(r, "Invalid value at 'tools' (type.googleapis.com/google.ai.generativelanguage.v1beta.Tool)");
    const char *allowed = NULL;
    const json_t *cfg = json_object_get(get2(root, "toolConfig", "tool_config"), "functionCallingConfig");
    if (!cfg)
        cfg = json_object_get(get2(root, "toolConfig", "tool_config"), "function_calling_config");
    if (cfg) {
        const char *mode = json_string_value(json_object_get(cfg, "mode"));
        if (mode && !strcmp(mode, "NONE"))
            req->tool_choice = 1;
        else if (mode && !strcmp(mode, "ANY"))
            req->tool_choice = 2;
        else if (mode && strcmp(mode, "AUTO") && strcmp(mode, "MODE_UNSPECIFIED") && strcmp(mode, "VALIDATED"))
            return gm_invalid(r, "Invalid value at 'tool_config.function_calling_config.mode' "
                                 "(type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), \"%.60s\"", mode);
        allowed = json_string_value(json_array_get(get2(cfg, "allowedFunctionNames", "allowed_function_names"), 0));
    }
    size_t i, k;
    const json_t *t, *fd;
    json_array_foreach(tools, i, t) {
        const json_t *decls = get2(t, "functionDeclarations", "function_declarations");
        json_array_foreach(decls, k, fd) {
            const char *name = json_string_value(json_object_get(fd, "name"));
            if (!name)
                return gm_invalid(r, "* GenerateContentRequest.tools[%zu].function_declarations[%zu].name: "
                                     "[FIELD_INVALID] Invalid function name.\n", i, k);
            if (!req->tool_name && (!allowed || !strcmp(allowed, name))) {
                req->tool_name = name;
                req->tool_schema = get2(fd, "parameters", "parametersJsonSchema");
            }
        }
    }
    return 0;
}

static int gm_parse(co__sim_core *c, const co__sim_http *in, json_t *root, co__sim_req *req,
                    co__sim_reply *r)
{
    (void)c;
    (void)in;
    if (!json_is_object(root)) {
        gm_error(r, CO__SIM_E_MALFORMED, NULL);
        return -1;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (co_enum_index(gm_fields, key) < 0)
            return gm_invalid(r, "Invalid JSON payload received. Unknown name \"%.100s\": Cannot find field.", key);
    }
    const json_t *contents = json_object_get(root, "contents");
    if (!contents || (json_is_array(contents) && json_array_size(contents) == 0))
        return gm_invalid(r, "* GenerateContentRequest.contents: contents is not specified\n");
    if (!json_is_array(contents))
        return gm_invalid(r, "Invalid value at 'contents' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content)");
    size_t i;
    const json_t *ct;
    char where[48];
    json_array_foreach(contents, i, ct) {
        snprintf(where, sizeof where, "contents[%zu]", i);
        if (!json_is_object(ct))
            return gm_invalid(r, "Invalid value at '%s' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content)", where);
        const char *role = json_string_value(json_object_get(ct, "role"));
        if (json_object_get(ct, "role") && (!role || (strcmp(role, "user") && strcmp(role, "model") && strcmp(role, "function"))))
            return gm_invalid(r, "Please use a valid role: user, model.");
        int is_user = !role || !strcmp(role, "user");
        int has_text = 0, has_result = 0;
        if (gm_parts(r, where, ct, req, is_user ? req->last_user : NULL, &has_text, &has_result))
            return -1;
        req->after_tool = has_result && !has_text;
    }
    req->n_messages = (int)json_array_size(contents);
    const json_t *sys = get2(root, "systemInstruction", "system_instruction");
    if (sys) {
        int ht = 0, hr = 0;
        if (!json_is_object(sys))
            return gm_invalid(r, "Invalid value at 'system_instruction' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content)");
        if (gm_parts(r, "system_instruction", sys, req, req->system, &ht, &hr))
            return -1;
    }
    const json_t *gc = get2(root, "generationConfig", "generation_config");
    if (gc) {
        const json_t *mt = get2(gc, "maxOutputTokens", "max_output_tokens");
        if (mt) {
            if (!json_is_integer(mt))
                return gm_invalid(r, "Invalid value at 'generation_config.max_output_tokens' (TYPE_INT32)");
            if (json_integer_value(mt) < 1)
                return gm_invalid(r, "* GenerateContentRequest.generation_config.max_output_tokens: "
                                     "max_output_tokens must be positive.\n");
            req->max_tokens = json_integer_value(mt);
        }
        const json_t *temp = json_object_get(gc, "temperature");
        if (temp && (!json_is_number(temp) || json_number_value(temp) < 0 || json_number_value(temp) > 2))
            return gm_invalid(r, "* GenerateContentRequest.generation_config.temperature: "
                                 "temperature must be in the range [0.0, 2.0].\n");
    }
    return gm_tools(r, root, req);
}

/* ---- rendering ----------------------------------------------------------- */

static void gm_usage(co__sim_out *o, const co__sim_answer *a, int64_t cand)
{
    co__sim_printf(o, "{\"promptTokenCount\":%lld,\"candidatesTokenCount\":%lld,\"totalTokenCount\":%lld",
               (long long)a->prompt_tokens, (long long)cand, (long long)(a->prompt_tokens + cand));
    if (a->cached_tokens > 0)
        co__sim_printf(o, ",\"cachedContentTokenCount\":%lld", (long long)a->cached_tokens);
    co__sim_printf(o, ",\"promptTokensDetails\":[{\"modality\":\"TEXT\",\"tokenCount\":%lld}]}",
               (long long)a->prompt_tokens);
}

static void gm_tail(co__sim_out *o, const co__sim_answer *a)
{
    co__sim_put(o, ",\"modelVersion\":");
    co__sim_jstrz(o, a->model);
    co__sim_printf(o, ",\"responseId\":\"%.22s\"}", a->id);
}

/* One GenerateContentResponse; text [off, off+n) or the function call. */
static void gm_response(co__sim_out *o, const co__sim_answer *a, size_t off, size_t n, int last,
                        int64_t cand)
{
    const char *t = a->text->p ? a->text->p : "";
    co__sim_put(o, "{\"candidates\":[{\"content\":{\"parts\":[");
    if (a->tool) {
        co__sim_put(o, "{\"functionCall\":{\"name\":");
        co__sim_jstrz(o, a->tool_name);
        co__sim_put(o, ",\"args\":");
        co__sim_putn(o, t, a->text->len);
        co__sim_put(o, "}}");
    } else {
        co__sim_put(o, "{\"text\":");
        co__sim_jstr(o, t + off, n);
        co__sim_put(o, "}");
    }
    co__sim_put(o, "],\"role\":\"model\"}");
    if (last)
        co__sim_printf(o, ",\"finishReason\":\"%s\"", a->finish == CO__SIM_LENGTH ? "MAX_TOKENS" : "STOP");
    co__sim_put(o, ",\"index\":0}],\"usageMetadata\":");
    gm_usage(o, a, cand);
    gm_tail(o, a);
}

static int gm_render(co__sim_core *c, const co__sim_req *req, const co__sim_answer *a, co__sim_reply *r)
{
    (void)c;
    co__sim_out o = {&r->body, 0};
    const char *t = a->text->p ? a->text->p : "";
    size_t tn = a->text->len;
    r->status = 200;
    if (!req->stream) {
        r->ctype = "application/json; charset=UTF-8";
        gm_response(&o, a, 0, tn, 1, a->completion_tokens);
        co__sim_put(&o, "\n");
        return o.err;
    }
    r->stream = 1;
    int sse = req->sse;
    r->ctype = sse ? "text/event-stream" : "application/json; charset=UTF-8";
    int rc = 0;
    if (!sse)
        co__sim_put(&o, "[");
    size_t off = 0, n;
    int first = 1;
    do {
        n = a->tool ? tn : co__sim_next_piece(t, tn, off, a->chars_per_token);
        int last = off + n >= tn;
        int64_t cand = last ? a->completion_tokens : co__sim_tokens_of(off + n, a->chars_per_token);
        if (sse)
            co__sim_put(&o, "data: ");
        else if (!first)
            co__sim_put(&o, ",\r\n");
        gm_response(&o, a, off, n, last, cand);
        if (sse)
            co__sim_put(&o, "\n\n");
        else if (last)
            co__sim_put(&o, "]");
        rc |= co__sim_reply_cut(r, 1);
        off += n;
        first = 0;
    } while (off < tn);
    return o.err ? o.err : rc ? CO_ETOOBIG : 0;
}

void co__sim_gemini_models(co__sim_core *c, co__sim_reply *r, const char *one)
{
    const co_sim_scenario *sc = c->sh->sc;
    co__sim_out o = {&r->body, 0};
    co_buf nm;
    co_buf_init(&nm, 4096);
    r->status = 200;
    r->ctype = "application/json; charset=UTF-8";
    if (one) {
        if (co__sim_scenario_find(sc, one) < 0) {
            gm_error(r, CO__SIM_E_MODEL, one);
            co_buf_free(&nm);
            return;
        }
    } else {
        co__sim_put(&o, "{\"models\":[");
    }
    int first = 1;
    for (size_t i = 0; i < sc->models.n; i++) {
        const co__sim_model *m = co__sim_model_at(sc, (int)i);
        const char *name = one ? one : m->name;
        if (!one && (!strcmp(m->name, "*") || (m->provider != CO__SIM_V_ANY && m->provider != CO__SIM_V_GEMINI)))
            continue;
        co_buf_reset(&nm);
        co_buf_printf(&nm, "models/%s", name);
        if (!first)
            co__sim_put(&o, ",");
        co__sim_put(&o, "{\"name\":");
        co__sim_jstr(&o, nm.p, nm.len);
        co__sim_put(&o, ",\"version\":\"001\",\"displayName\":");
        co__sim_jstrz(&o, name);
        co__sim_put(&o, ",\"inputTokenLimit\":1048576,\"outputTokenLimit\":65536,"
                    "\"supportedGenerationMethods\":[\"generateContent\",\"countTokens\"]}");
        first = 0;
        if (one)
            break;
    }
    if (!one)
        co__sim_put(&o, "]}");
    co__sim_put(&o, "\n");
    co_buf_free(&nm);
}

const co__sim_proto co__sim_gemini = {
    .name = "gemini",
    .error = gm_error,
    .parse = gm_parse,
    .render = gm_render,
};
