/* The OpenAI Chat Completions wire protocol of `cutover sim`: request
 * validation with OpenAI's error shapes and codes, the chat.completion JSON
 * reply, the chat.completion.chunk SSE stream (tool_calls deltas, the usage
 * chunk, [DONE]) and GET /v1/models. */
#include <stdio.h>
#include <string.h>

#include "sim/sim_int.h"

#define OA_FINGERPRINT "fp_c0sim0001"

static void oa_err(co__sim_reply *r, int status, const char *type, const char *code,
                   const char *param, const char *msg)
{
    co_buf_reset(&r->body);
    r->status = status;
    r->stream = 0;
    r->ctype = "application/json";
    co__sim_out o = {&r->body, 0};
    co__sim_put(&o, "{\"error\":{\"message\":");
    co__sim_jstrz(&o, msg);
    co__sim_put(&o, ",\"type\":");
    co__sim_jstrz(&o, type);
    co__sim_put(&o, ",\"param\":");
    if (param)
        co__sim_jstrz(&o, param);
    else
        co__sim_put(&o, "null");
    co__sim_put(&o, ",\"code\":");
    if (code)
        co__sim_jstrz(&o, code);
    else
        co__sim_put(&o, "null");
    co__sim_put(&o, "}}\n");
}

static void oa_errf(co__sim_reply *r, int status, const char *code, const char *param,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void oa_errf(co__sim_reply *r, int status, const char *code, const char *param,
                    const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    oa_err(r, status, "invalid_request_error", code, param, msg);
}

static void oa_error(co__sim_reply *r, int kind, const char *detail)
{
    char msg[512];
    const char *d = detail ? detail : "";
    switch (kind) {
    case CO__SIM_E_AUTH_MISSING:
        oa_err(r, 401, "invalid_request_error", NULL, NULL,
               "You didn't provide an API key. You need to provide your API key in an "
               "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or "
               "as the password field (with blank username) if you're accessing the API from your "
               "browser and are prompted for a username and password. You can obtain an API key "
               "from https://platform.openai.com/account/api-keys.");
        break;
    case CO__SIM_E_AUTH_INVALID: {
        /* OpenAI shows the key's first and last characters only */
        size_t n = strlen(d);
        if (n > 8)
            snprintf(msg, sizeof msg,
                     "Incorrect API key provided: %.3s%s%.4s. You can find your API key at "
                     "https://platform.openai.com/account/api-keys.",
                     d, "********", d + n - 4);
        else
            snprintf(msg, sizeof msg,
                     "Incorrect API key provided: ********. You can find your API key at "
                     "https://platform.openai.com/account/api-keys.");
        oa_err(r, 401, "invalid_request_error", "invalid_api_key", NULL, msg);
        break;
    }
    case CO__SIM_E_MALFORMED:
        oa_err(r, 400, "invalid_request_error", NULL, NULL,
               "We could not parse the JSON body of your request. (HINT: This likely means you "
               "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
               "but what was sent was not valid JSON. If you have trouble figuring out how to fix "
               "this, please contact us through our help center at help.openai.com.)");
        break;
    case CO__SIM_E_TOO_BIG:
        oa_err(r, 413, "invalid_request_error", "request_too_large", NULL, d);
        break;
    case CO__SIM_E_MODEL:
        snprintf(msg, sizeof msg, "The model `%.200s` does not exist or you do not have access to it.", d);
        oa_err(r, 404, "invalid_request_error", "model_not_found", NULL, msg);
        break;
    case CO__SIM_E_RATE:
        snprintf(msg, sizeof msg,
                 "Rate limit reached for %.200s in organization org-sim on requests per min (RPM): "
                 "Limit 500, Used 500, Requested 1. Please try again later. Visit "
                 "https://platform.openai.com/account/rate-limits to learn more.",
                 d);
        oa_err(r, 429, "requests", "rate_limit_exceeded", NULL, msg);
        break;
    case CO__SIM_E_SERVER:
        oa_err(r, 500, "server_error", NULL, NULL,
               "The server had an error while processing your request. Sorry about that!");
        break;
    case CO__SIM_E_OVERLOADED:
        oa_err(r, 503, "server_error", NULL, NULL,
               "The engine is currently overloaded, please try again later.");
        break;
    case CO__SIM_E_CONTEXT:
        oa_err(r, 400, "invalid_request_error", "context_length_exceeded", "messages", d);
        break;
    case CO__SIM_E_ROUTE:
        snprintf(msg, sizeof msg, "Invalid URL (%.300s)", d);
        oa_err(r, 404, "invalid_request_error", NULL, NULL, msg);
        break;
    case CO__SIM_E_METHOD:
        snprintf(msg, sizeof msg, "Invalid method for URL (%.300s)", d);
        oa_err(r, 405, "invalid_request_error", NULL, NULL, msg);
        break;
    case CO__SIM_E_INVALID:
    case CO__SIM_E_VERSION:
    default:
        oa_err(r, 400, "invalid_request_error", NULL, NULL, d);
        break;
    }
}

static const char *a_type(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a decimal";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

static int bad_type(co__sim_reply *r, const char *param, const char *want, const json_t *got)
{
    oa_errf(r, 400, "invalid_type", param, "Invalid type for '%s': expected %s, but got %s instead.",
            param, want, a_type(got));
    return -1;
}

static int missing(co__sim_reply *r, const char *param)
{
    oa_errf(r, 400, "missing_required_parameter", param, "Missing required parameter: '%s'.", param);
    return -1;
}

static int int_param(co__sim_reply *r, json_t *root, const char *name, int64_t *out)
{
    json_t *v = json_object_get(root, name);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v))
        return bad_type(r, name, "an integer", v);
    if (json_integer_value(v) < 1) {
        oa_errf(r, 400, "integer_below_min_value", name,
                "Invalid '%s': integer below minimum value. Expected a value >= 1, but got %lld "
                "instead.",
                name, (long long)json_integer_value(v));
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

/* The parameter path of an error (messages[3].role, tools[0].type), formatted only when
 * there is an error to name: a valid request never pays for it. */
__attribute__((format(printf, 3, 4))) static const char *msg_path(char *p, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p, n, fmt, ap);
    va_end(ap);
    return p;
}

static int oa_tools(co__sim_reply *r, json_t *root, co__sim_req *req)
{
    json_t *tools = json_object_get(root, "tools");
    json_t *choice = json_object_get(root, "tool_choice");
    char p[64];
    if (tools && !json_is_null(tools)) {
        if (!json_is_array(tools))
            return bad_type(r, "tools", "an array", tools);
        size_t i;
        json_t *t;
        json_array_foreach(tools, i, t) {
            if (!json_is_object(t))
                return bad_type(r, msg_path(p, sizeof p, "tools[%zu]", i), "an object", t);
            json_t *type = json_object_get(t, "type");
            if (!type) {
                snprintf(p, sizeof p, "tools[%zu].type", i);
                return missing(r, p);
            }
            if (!json_is_string(type) || strcmp(json_string_value(type), "function")) {
                snprintf(p, sizeof p, "tools[%zu].type", i);
                oa_errf(r, 400, "invalid_value", p,
                        "Invalid value: '%.100s'. Supported values are: 'function' and 'custom'.",
                        json_is_string(type) ? json_string_value(type) : "?");
                return -1;
            }
            json_t *fn = json_object_get(t, "function");
            if (!fn) {
                snprintf(p, sizeof p, "tools[%zu].function", i);
                return missing(r, p);
            }
            json_t *name = json_object_get(fn, "name");
            if (!json_is_string(name)) {
                snprintf(p, sizeof p, "tools[%zu].function.name", i);
                return name ? bad_type(r, p, "a string", name) : missing(r, p);
            }
            if (!req->tool_name) {
                req->tool_name = json_string_value(name);
                req->tool_schema = json_object_get(fn, "parameters");
            }
        }
        if (json_array_size(tools) == 0) {
            oa_errf(r, 400, "empty_array", "tools",
                    "Invalid 'tools': empty array. Expected an array with minimum length 1, but got "
                    "an empty array instead.");
            return -1;
        }
    }
    if (!choice || json_is_null(choice))
        return 0;
    if (!req->tool_name) {
        oa_errf(r, 400, NULL, "tool_choice",
                "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are "
                "specified.");
        return -1;
    }
    if (json_is_string(choice)) {
        const char *s = json_string_value(choice);
        if (!strcmp(s, "none"))
            req->tool_choice = 1;
        else if (!strcmp(s, "required"))
            req->tool_choice = 2;
        else if (strcmp(s, "auto")) {
            oa_errf(r, 400, "invalid_value", "tool_choice",
                    "Invalid value: '%.100s'. Supported values are: 'none', 'auto', and 'required'.", s);
            return -1;
        }
        return 0;
    }
    const char *want = json_string_value(json_object_get(json_object_get(choice, "function"), "name"));
    if (!want)
        return missing(r, "tool_choice.function.name");
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        json_t *fn = json_object_get(t, "function");
        if (!strcmp(json_string_value(json_object_get(fn, "name")), want)) {
            req->tool_name = json_string_value(json_object_get(fn, "name"));
            req->tool_schema = json_object_get(fn, "parameters");
            req->tool_choice = 2;
            return 0;
        }
    }
    oa_errf(r, 400, "invalid_value", "tool_choice",
            "Invalid value for 'tool_choice': function '%.100s' not found in 'tools'.", want);
    return -1;
}

static int oa_parse(co__sim_core *c, const co__sim_http *in, json_t *root, co__sim_req *req,
                    co__sim_reply *r)
{
    (void)c;
    (void)in;
    char p[64];
    if (!json_is_object(root)) {
        oa_error(r, CO__SIM_E_MALFORMED, NULL);
        return -1;
    }
    json_t *model = json_object_get(root, "model");
    if (!model)
        return missing(r, "model");
    if (!json_is_string(model))
        return bad_type(r, "model", "a string", model);
    req->model = json_string_value(model);

    json_t *msgs = json_object_get(root, "messages");
    if (!msgs)
        return missing(r, "messages");
    if (!json_is_array(msgs))
        return bad_type(r, "messages", "an array", msgs);
    if (json_array_size(msgs) == 0) {
        oa_errf(r, 400, "empty_array", "messages",
                "Invalid 'messages': empty array. Expected an array with minimum length 1, but got "
                "an empty array instead.");
        return -1;
    }
    size_t i;
    json_t *m;
    int open_calls = 0; /* a tool message must answer an assistant's tool_calls */
    json_array_foreach(msgs, i, m) {
        if (!json_is_object(m))
            return bad_type(r, msg_path(p, sizeof p, "messages[%zu]", i), "an object", m);
        json_t *role = json_object_get(m, "role");
        if (!role)
            return missing(r, msg_path(p, sizeof p, "messages[%zu].role", i));
        if (!json_is_string(role))
            return bad_type(r, msg_path(p, sizeof p, "messages[%zu].role", i), "a string", role);
        const char *rs = json_string_value(role);
        int is_user = !strcmp(rs, "user"), is_sys = !strcmp(rs, "system") || !strcmp(rs, "developer");
        int is_asst = !strcmp(rs, "assistant"), is_tool = !strcmp(rs, "tool");
        if (!is_user && !is_sys && !is_asst && !is_tool && strcmp(rs, "function")) {
            oa_errf(r, 400, "invalid_value", msg_path(p, sizeof p, "messages[%zu].role", i),
                    "Invalid value: '%.100s'. Supported values are: 'system', 'assistant', 'user', "
                    "'function', 'tool', and 'developer'.",
                    rs);
            return -1;
        }
        json_t *content = json_object_get(m, "content");
        if (!content && !is_asst)
            return missing(r, msg_path(p, sizeof p, "messages[%zu].content", i));
        if (content && !json_is_string(content) && !json_is_array(content) &&
            !(is_asst && json_is_null(content)))
            return bad_type(r, msg_path(p, sizeof p, "messages[%zu].content", i),
                            "one of a string or array of objects", content);
        if (is_tool) {
            if (!json_object_get(m, "tool_call_id"))
                return missing(r, msg_path(p, sizeof p, "messages[%zu].tool_call_id", i));
            if (!open_calls) {
                oa_errf(r, 400, NULL, msg_path(p, sizeof p, "messages.[%zu].role", i),
                        "Invalid parameter: messages with role 'tool' must be a response to a "
                        "preceeding message with 'tool_calls'.");
                return -1;
            }
        } else {
            open_calls = is_asst && json_array_size(json_object_get(m, "tool_calls")) > 0;
        }
        if (is_asst) {
            size_t k;
            json_t *tc;
            json_array_foreach(json_object_get(m, "tool_calls"), k, tc) {
                const char *args = json_string_value(json_object_get(json_object_get(tc, "function"), "arguments"));
                req->prompt_chars += args ? strlen(args) : 0;
            }
        }
        co_buf *dst = is_user ? req->last_user : is_sys ? req->system : is_tool ? req->tool_result : NULL;
        if (is_user)
            co_buf_reset(req->last_user);
        if (is_tool)
            co_buf_reset(req->tool_result);
        if (dst) {
            if (is_sys && dst->len)
                co_buf_append(dst, "\n", 1);
            req->prompt_chars += co__sim_content_text(content, dst);
        } else {
            co_buf tmp;
            co_buf_init(&tmp, CO_BUF_UNLIMITED);
            req->prompt_chars += co__sim_content_text(content, &tmp);
            co_buf_free(&tmp);
        }
        req->after_tool = is_tool;
    }
    req->n_messages = (int)json_array_size(msgs);

    json_t *stream = json_object_get(root, "stream");
    if (stream && !json_is_null(stream)) {
        if (!json_is_boolean(stream))
            return bad_type(r, "stream", "a boolean", stream);
        req->stream = json_is_true(stream);
    }
    json_t *so = json_object_get(root, "stream_options");
    if (so && !json_is_null(so)) {
        if (!req->stream) {
            oa_errf(r, 400, "invalid_value", "stream_options",
                    "The 'stream_options' parameter is only allowed when 'stream' is enabled.");
            return -1;
        }
        if (!json_is_object(so))
            return bad_type(r, "stream_options", "an object", so);
        json_t *iu = json_object_get(so, "include_usage");
        if (iu && !json_is_boolean(iu))
            return bad_type(r, "stream_options.include_usage", "a boolean", iu);
        req->include_usage = json_is_true(iu);
    }
    if (int_param(r, root, "max_tokens", &req->max_tokens) ||
        int_param(r, root, "max_completion_tokens", &req->max_tokens))
        return -1;
    json_t *temp = json_object_get(root, "temperature");
    if (temp && !json_is_null(temp)) {
        if (!json_is_number(temp))
            return bad_type(r, "temperature", "a decimal", temp);
        if (json_number_value(temp) < 0 || json_number_value(temp) > 2) {
            oa_errf(r, 400, json_number_value(temp) < 0 ? "decimal_below_min_value" : "decimal_above_max_value",
                    "temperature",
                    "Invalid 'temperature': decimal %s value. Expected a value %s, but got %g instead.",
                    json_number_value(temp) < 0 ? "below minimum" : "above maximum",
                    json_number_value(temp) < 0 ? ">= 0" : "<= 2", json_number_value(temp));
            return -1;
        }
    }
    return oa_tools(r, root, req);
}

/* ---- rendering ----------------------------------------------------------- */

static const char *oa_finish(int f)
{
    return f == CO__SIM_LENGTH ? "length" : f == CO__SIM_TOOL ? "tool_calls" : "stop";
}

static void oa_usage(co__sim_out *o, const co__sim_answer *a)
{
    co__sim_put(o, "{\"prompt_tokens\":");
    co__sim_putll(o, a->prompt_tokens);
    co__sim_put(o, ",\"completion_tokens\":");
    co__sim_putll(o, a->completion_tokens);
    co__sim_put(o, ",\"total_tokens\":");
    co__sim_putll(o, a->prompt_tokens + a->completion_tokens);
    co__sim_put(o, ",\"prompt_tokens_details\":{\"cached_tokens\":");
    co__sim_putll(o, a->cached_tokens);
    co__sim_put(o, ",\"audio_tokens\":0},"
                   "\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,"
                   "\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}");
}

static void chunk_head(co__sim_out *o, const co__sim_answer *a)
{
    co__sim_put(o, "data: {\"id\":\"chatcmpl-");
    co__sim_put(o, a->id);
    co__sim_put(o, "\",\"object\":\"chat.completion.chunk\",\"created\":");
    co__sim_putll(o, a->created);
    co__sim_put(o, ",\"model\":");
    co__sim_jstrz(o, a->model);
    co__sim_put(o, ",\"service_tier\":\"default\",\"system_fingerprint\":\"" OA_FINGERPRINT "\",\"choices\":");
}

static void chunk_tail(co__sim_out *o, const co__sim_req *req)
{
    co__sim_put(o, req->include_usage ? ",\"usage\":null}\n\n" : "}\n\n");
}

static int oa_render(co__sim_core *c, const co__sim_req *req, const co__sim_answer *a, co__sim_reply *r)
{
    (void)c;
    co__sim_out o = {&r->body, 0};
    const char *t = a->text->p ? a->text->p : "";
    size_t tn = a->text->len;
    r->status = 200;
    if (!req->stream) {
        r->ctype = "application/json";
        co__sim_put(&o, "{\"id\":\"chatcmpl-");
        co__sim_put(&o, a->id);
        co__sim_put(&o, "\",\"object\":\"chat.completion\",\"created\":");
        co__sim_putll(&o, a->created);
        co__sim_put(&o, ",\"model\":");
        co__sim_jstrz(&o, a->model);
        co__sim_put(&o, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
        if (a->tool) {
            co__sim_printf(&o, "null,\"tool_calls\":[{\"id\":\"call_%s\",\"type\":\"function\",\"function\":{\"name\":",
                       a->tool_id);
            co__sim_jstrz(&o, a->tool_name);
            co__sim_put(&o, ",\"arguments\":");
            co__sim_jstr(&o, t, tn);
            co__sim_put(&o, "}}]");
        } else {
            co__sim_jstr(&o, t, tn);
        }
        co__sim_put(&o, ",\"refusal\":null,\"annotations\":[]},\"logprobs\":null,\"finish_reason\":\"");
        co__sim_put(&o, oa_finish(a->finish));
        co__sim_put(&o, "\"}],\"usage\":");
        oa_usage(&o, a);
        co__sim_put(&o, ",\"service_tier\":\"default\",\"system_fingerprint\":\"" OA_FINGERPRINT "\"}\n");
        return o.err;
    }
    r->stream = 1;
    r->ctype = "text/event-stream; charset=utf-8";
    int rc = 0;
    if (a->tool) {
        chunk_head(&o, a);
        co__sim_printf(&o, "[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,"
                       "\"id\":\"call_%s\",\"type\":\"function\",\"function\":{\"name\":",
                   a->tool_id);
        co__sim_jstrz(&o, a->tool_name);
        co__sim_put(&o, ",\"arguments\":\"\"}}],\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}]");
        chunk_tail(&o, req);
        rc |= co__sim_reply_cut(r, 1);
        for (size_t off = 0, n; off < tn; off += n) {
            n = co__sim_next_json_piece(t, tn, off);
            chunk_head(&o, a);
            co__sim_put(&o, "[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":");
            co__sim_jstr(&o, t + off, n);
            co__sim_put(&o, "}}]},\"logprobs\":null,\"finish_reason\":null}]");
            chunk_tail(&o, req);
            rc |= co__sim_reply_cut(r, 1);
        }
    } else {
        chunk_head(&o, a);
        co__sim_put(&o, "[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},"
                    "\"logprobs\":null,\"finish_reason\":null}]");
        chunk_tail(&o, req);
        rc |= co__sim_reply_cut(r, 0);
        for (size_t off = 0, n; off < tn; off += n) {
            n = co__sim_next_piece(t, tn, off, a->chars_per_token);
            chunk_head(&o, a);
            co__sim_put(&o, "[{\"index\":0,\"delta\":{\"content\":");
            co__sim_jstr(&o, t + off, n);
            co__sim_put(&o, "},\"logprobs\":null,\"finish_reason\":null}]");
            chunk_tail(&o, req);
            rc |= co__sim_reply_cut(r, 1);
        }
    }
    chunk_head(&o, a);
    co__sim_printf(&o, "[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"%s\"}]", oa_finish(a->finish));
    chunk_tail(&o, req);
    rc |= co__sim_reply_cut(r, 0);
    if (req->include_usage) {
        chunk_head(&o, a);
        co__sim_put(&o, "[],\"usage\":");
        oa_usage(&o, a);
        co__sim_put(&o, "}\n\n");
        rc |= co__sim_reply_cut(r, 0);
    }
    co__sim_put(&o, "data: [DONE]\n\n");
    rc |= co__sim_reply_cut(r, 0);
    return o.err ? o.err : rc ? CO_ETOOBIG : 0;
}

void co__sim_openai_models(co__sim_core *c, co__sim_reply *r, const char *one)
{
    const co_sim_scenario *sc = c->sh->sc;
    co__sim_out o = {&r->body, 0};
    r->status = 200;
    r->ctype = "application/json";
    if (one) {
        int i = co__sim_scenario_find(sc, one);
        if (i < 0) {
            oa_error(r, CO__SIM_E_MODEL, one);
            return;
        }
        co__sim_put(&o, "{\"id\":");
        co__sim_jstrz(&o, one);
        co__sim_put(&o, ",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"system\"}\n");
        return;
    }
    co__sim_put(&o, "{\"object\":\"list\",\"data\":[");
    int first = 1;
    for (size_t i = 0; i < sc->models.n; i++) {
        const co__sim_model *m = co__sim_model_at(sc, (int)i);
        if (!strcmp(m->name, "*") || (m->provider != CO__SIM_V_ANY && m->provider != CO__SIM_V_OPENAI))
            continue;
        co__sim_put(&o, first ? "{\"id\":" : ",{\"id\":");
        co__sim_jstrz(&o, m->name);
        co__sim_put(&o, ",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"system\"}");
        first = 0;
    }
    co__sim_put(&o, "]}\n");
}

const co__sim_proto co__sim_openai = {
    .name = "openai",
    .error = oa_error,
    .parse = oa_parse,
    .render = oa_render,
};
