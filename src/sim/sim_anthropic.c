/* The Anthropic Messages wire protocol of `cutover sim`: request validation
 * with Anthropic's error shapes ({"type":"error",...}), the message JSON
 * reply, the SSE event sequence (message_start, content_block_start, ping,
 * content_block_delta text_delta / input_json_delta, content_block_stop,
 * message_delta, message_stop) and the Anthropic model list. */
#include <stdio.h>
#include <string.h>

#include "sim/sim_int.h"

static void an_err(co__sim_reply *r, int status, const char *type, const char *msg)
{
    co_buf_reset(&r->body);
    r->status = status;
    r->stream = 0;
    r->ctype = "application/json";
    co__sim_out o = {&r->body, 0};
    co__sim_put(&o, "{\"type\":\"error\",\"error\":{\"type\":");
    co__sim_jstrz(&o, type);
    co__sim_put(&o, ",\"message\":");
    co__sim_jstrz(&o, msg);
    co__sim_printf(&o, "},\"request_id\":\"req_%s\"}\n", r->id);
}

static int an_invalid(co__sim_reply *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int an_invalid(co__sim_reply *r, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    an_err(r, 400, "invalid_request_error", msg);
    return -1;
}

static void an_error(co__sim_reply *r, int kind, const char *detail)
{
    char msg[512];
    const char *d = detail ? detail : "";
    switch (kind) {
    case CO__SIM_E_AUTH_MISSING:
        an_err(r, 401, "authentication_error", "x-api-key header is required");
        break;
    case CO__SIM_E_AUTH_INVALID:
        an_err(r, 401, "authentication_error", "invalid x-api-key");
        break;
    case CO__SIM_E_MALFORMED:
        an_err(r, 400, "invalid_request_error",
               "There was an error parsing the body of your request: it must be valid JSON.");
        break;
    case CO__SIM_E_TOO_BIG:
        an_err(r, 413, "request_too_large", "Request exceeds the maximum allowed number of bytes.");
        break;
    case CO__SIM_E_MODEL:
        snprintf(msg, sizeof msg, "model: %.300s", d);
        an_err(r, 404, "not_found_error", msg);
        break;
    case CO__SIM_E_RATE:
        an_err(r, 429, "rate_limit_error",
               "This request would exceed the rate limit for your organization of 50 requests per "
               "minute. For details, refer to: https://docs.claude.com/en/api/rate-limits. You can "
               "see the response headers for current usage.");
        break;
    case CO__SIM_E_SERVER:
        an_err(r, 500, "api_error", "Internal server error");
        break;
    case CO__SIM_E_OVERLOADED:
        an_err(r, 529, "overloaded_error", "Overloaded");
        break;
    case CO__SIM_E_CONTEXT:
        an_err(r, 400, "invalid_request_error", d);
        break;
    case CO__SIM_E_ROUTE:
        an_err(r, 404, "not_found_error", "Not Found");
        break;
    case CO__SIM_E_METHOD:
        an_err(r, 405, "invalid_request_error", "Method Not Allowed");
        break;
    case CO__SIM_E_VERSION:
        an_err(r, 400, "invalid_request_error", "anthropic-version: header is required");
        break;
    case CO__SIM_E_INVALID:
    default:
        an_err(r, 400, "invalid_request_error", d);
        break;
    }
}

/* Text and tool-result parts of one message's content; returns -1 on a 400. */
static int an_content(co__sim_reply *r, size_t i, const json_t *content, int is_user,
                      co__sim_req *req, int *has_text, int *has_result)
{
    if (json_is_string(content)) {
        if (is_user) {
            co_buf_reset(req->last_user);
            co_buf_append(req->last_user, json_string_value(content), json_string_length(content));
        }
        req->prompt_chars += json_string_length(content);
        *has_text = 1;
        return 0;
    }
    if (!json_is_array(content))
        return an_invalid(r, "messages.%zu.content: Input should be a valid list", i);
    size_t k;
    const json_t *b;
    int reset = 0;
    json_array_foreach(content, k, b) {
        if (!json_is_object(b))
            return an_invalid(r, "messages.%zu.content.%zu: Input should be a valid dictionary", i, k);
        const char *type = json_string_value(json_object_get(b, "type"));
        if (!type)
            return an_invalid(r, "messages.%zu.content.%zu.type: Field required", i, k);
        if (!strcmp(type, "text")) {
            const json_t *t = json_object_get(b, "text");
            if (!json_is_string(t))
                return an_invalid(r, "messages.%zu.content.%zu.text: Field required", i, k);
            if (is_user) {
                if (!reset)
                    co_buf_reset(req->last_user);
                else
                    co_buf_append(req->last_user, "\n", 1);
                reset = 1;
                co_buf_append(req->last_user, json_string_value(t), json_string_length(t));
            }
            req->prompt_chars += json_string_length(t);
            *has_text = 1;
        } else if (!strcmp(type, "tool_result")) {
            if (!is_user)
                return an_invalid(r, "messages.%zu.content.%zu: tool_result blocks are only allowed in user messages", i, k);
            if (!json_object_get(b, "tool_use_id"))
                return an_invalid(r, "messages.%zu.content.%zu.tool_use_id: Field required", i, k);
            co_buf_reset(req->tool_result);
            req->prompt_chars += co__sim_content_text(json_object_get(b, "content"), req->tool_result);
            *has_result = 1;
        } else if (!strcmp(type, "tool_use")) {
            const json_t *in = json_object_get(b, "input");
            char *s = in ? json_dumps(in, JSON_COMPACT) : NULL;
            req->prompt_chars += s ? strlen(s) : 0;
            free(s);
        }
        /* images, documents, thinking: accepted, not read */
    }
    return 0;
}

static int an_tools(co__sim_reply *r, json_t *root, co__sim_req *req)
{
    json_t *tools = json_object_get(root, "tools");
    if (tools && !json_is_array(tools))
        return an_invalid(r, "tools: Input should be a valid list");
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        if (!json_is_object(t))
            return an_invalid(r, "tools.%zu: Input should be a valid dictionary", i);
        const json_t *name = json_object_get(t, "name");
        if (!json_is_string(name))
            return an_invalid(r, "tools.%zu.name: Field required", i);
        const char *type = json_string_value(json_object_get(t, "type"));
        if (type && strcmp(type, "custom"))
            continue; /* a server tool (web_search...): nothing for the client to run */
        const json_t *schema = json_object_get(t, "input_schema");
        if (!json_is_object(schema))
            return an_invalid(r, "tools.%zu.input_schema: Field required", i);
        if (!req->tool_name) {
            req->tool_name = json_string_value(name);
            req->tool_schema = schema;
        }
    }
    json_t *choice = json_object_get(root, "tool_choice");
    if (!choice || json_is_null(choice))
        return 0;
    const char *ct = json_string_value(json_object_get(choice, "type"));
    if (!ct)
        return an_invalid(r, "tool_choice.type: Field required");
    if (!strcmp(ct, "none")) {
        req->tool_choice = 1;
    } else if (!strcmp(ct, "any")) {
        req->tool_choice = 2;
    } else if (!strcmp(ct, "tool")) {
        const char *want = json_string_value(json_object_get(choice, "name"));
        if (!want)
            return an_invalid(r, "tool_choice.tool.name: Field required");
        json_array_foreach(tools, i, t) {
            if (!strcmp(json_string_value(json_object_get(t, "name")), want)) {
                req->tool_name = json_string_value(json_object_get(t, "name"));
                req->tool_schema = json_object_get(t, "input_schema");
                req->tool_choice = 2;
                return 0;
            }
        }
        return an_invalid(r, "Tool '%.100s' not found in provided tools", want);
    } else if (strcmp(ct, "auto")) {
        return an_invalid(r, "tool_choice: Input tag '%.100s' found using 'type' does not match any of "
                             "the expected tags: 'auto', 'any', 'tool', 'none'", ct);
    }
    if (req->tool_choice == 2 && !req->tool_name)
        return an_invalid(r, "tool_choice may only be specified while providing tools.");
    return 0;
}

static int an_parse(co__sim_core *c, const co__sim_http *in, json_t *root, co__sim_req *req,
                    co__sim_reply *r)
{
    (void)c;
    (void)in;
    if (!json_is_object(root)) {
        an_error(r, CO__SIM_E_MALFORMED, NULL);
        return -1;
    }
    json_t *model = json_object_get(root, "model");
    if (!model)
        return an_invalid(r, "model: Field required");
    if (!json_is_string(model))
        return an_invalid(r, "model: Input should be a valid string");
    req->model = json_string_value(model);
    json_t *mt = json_object_get(root, "max_tokens");
    if (!mt)
        return an_invalid(r, "max_tokens: Field required");
    if (!json_is_integer(mt))
        return an_invalid(r, "max_tokens: Input should be a valid integer");
    if (json_integer_value(mt) < 1)
        return an_invalid(r, "max_tokens: Input should be greater than or equal to 1");
    req->max_tokens = json_integer_value(mt);

    json_t *msgs = json_object_get(root, "messages");
    if (!msgs)
        return an_invalid(r, "messages: Field required");
    if (!json_is_array(msgs))
        return an_invalid(r, "messages: Input should be a valid list");
    if (json_array_size(msgs) == 0)
        return an_invalid(r, "messages: at least one message is required");
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        if (!json_is_object(m))
            return an_invalid(r, "messages.%zu: Input should be a valid dictionary", i);
        json_t *role = json_object_get(m, "role");
        if (!role)
            return an_invalid(r, "messages.%zu.role: Field required", i);
        const char *rs = json_string_value(role);
        if (!rs || (strcmp(rs, "user") && strcmp(rs, "assistant")))
            return an_invalid(r, "messages.%zu.role: Input should be 'user' or 'assistant'", i);
        json_t *content = json_object_get(m, "content");
        if (!content)
            return an_invalid(r, "messages.%zu.content: Field required", i);
        int has_text = 0, has_result = 0;
        if (an_content(r, i, content, !strcmp(rs, "user"), req, &has_text, &has_result))
            return -1;
        req->after_tool = has_result && !has_text;
    }
    req->n_messages = (int)json_array_size(msgs);

    json_t *sys = json_object_get(root, "system");
    if (sys && !json_is_null(sys)) {
        if (!json_is_string(sys) && !json_is_array(sys))
            return an_invalid(r, "system: Input should be a valid string");
        req->prompt_chars += co__sim_content_text(sys, req->system);
    }
    json_t *stream = json_object_get(root, "stream");
    if (stream && !json_is_null(stream)) {
        if (!json_is_boolean(stream))
            return an_invalid(r, "stream: Input should be a valid boolean");
        req->stream = json_is_true(stream);
    }
    json_t *temp = json_object_get(root, "temperature");
    if (temp && !json_is_null(temp)) {
        if (!json_is_number(temp))
            return an_invalid(r, "temperature: Input should be a valid number");
        if (json_number_value(temp) < 0)
            return an_invalid(r, "temperature: Input should be greater than or equal to 0");
        if (json_number_value(temp) > 1)
            return an_invalid(r, "temperature: Input should be less than or equal to 1");
    }
    return an_tools(r, root, req);
}

/* ---- rendering ----------------------------------------------------------- */

static const char *an_stop(int f)
{
    return f == CO__SIM_LENGTH ? "max_tokens" : f == CO__SIM_TOOL ? "tool_use" : "end_turn";
}

static void an_usage(co__sim_out *o, const co__sim_answer *a, int64_t output)
{
    /* Anthropic counts cache reads apart: input_tokens is the uncached rest */
    co__sim_printf(o,
               "{\"input_tokens\":%lld,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":%lld,"
               "\"output_tokens\":%lld,\"service_tier\":\"standard\"}",
               (long long)(a->prompt_tokens - a->cached_tokens), (long long)a->cached_tokens,
               (long long)output);
}

static void ev(co__sim_out *o, const char *name)
{
    co__sim_put(o, "event: ");
    co__sim_put(o, name);
    co__sim_put(o, "\ndata: ");
}

static int an_render(co__sim_core *c, const co__sim_req *req, const co__sim_answer *a, co__sim_reply *r)
{
    (void)c;
    co__sim_out o = {&r->body, 0};
    const char *t = a->text->p ? a->text->p : "";
    size_t tn = a->text->len;
    r->status = 200;
    if (!req->stream) {
        r->ctype = "application/json";
        co__sim_printf(&o, "{\"id\":\"msg_%s\",\"type\":\"message\",\"role\":\"assistant\",\"model\":", a->id);
        co__sim_jstrz(&o, a->model);
        if (a->tool) {
            co__sim_printf(&o, ",\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_%s\",\"name\":", a->tool_id);
            co__sim_jstrz(&o, a->tool_name);
            co__sim_put(&o, ",\"input\":");
            co__sim_putn(&o, t, tn); /* already compact JSON */
            co__sim_put(&o, "}]");
        } else {
            co__sim_put(&o, ",\"content\":[{\"type\":\"text\",\"text\":");
            co__sim_jstr(&o, t, tn);
            co__sim_put(&o, "}]");
        }
        co__sim_printf(&o, ",\"stop_reason\":\"%s\",\"stop_sequence\":null,\"usage\":", an_stop(a->finish));
        an_usage(&o, a, a->completion_tokens);
        co__sim_put(&o, "}\n");
        return o.err;
    }
    r->stream = 1;
    r->ctype = "text/event-stream; charset=utf-8";
    int rc = 0;
    ev(&o, "message_start");
    co__sim_printf(&o, "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_%s\",\"type\":\"message\","
                   "\"role\":\"assistant\",\"model\":",
               a->id);
    co__sim_jstrz(&o, a->model);
    co__sim_put(&o, ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":");
    an_usage(&o, a, 1);
    co__sim_put(&o, "}}\n\n");
    rc |= co__sim_reply_cut(r, 0);
    ev(&o, "content_block_start");
    if (a->tool) {
        co__sim_printf(&o, "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\","
                       "\"id\":\"toolu_%s\",\"name\":",
                   a->tool_id);
        co__sim_jstrz(&o, a->tool_name);
        co__sim_put(&o, ",\"input\":{}}}\n\n");
    } else {
        co__sim_put(&o, "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
    }
    rc |= co__sim_reply_cut(r, 0);
    ev(&o, "ping");
    co__sim_put(&o, "{\"type\":\"ping\"}\n\n");
    rc |= co__sim_reply_cut(r, 0);
    for (size_t off = 0, n; off < tn; off += n) {
        n = a->tool ? co__sim_next_json_piece(t, tn, off) : co__sim_next_piece(t, tn, off, a->chars_per_token);
        ev(&o, "content_block_delta");
        if (a->tool)
            co__sim_put(&o, "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":");
        else
            co__sim_put(&o, "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":");
        co__sim_jstr(&o, t + off, n);
        co__sim_put(&o, "}}\n\n");
        rc |= co__sim_reply_cut(r, 1);
    }
    ev(&o, "content_block_stop");
    co__sim_put(&o, "{\"type\":\"content_block_stop\",\"index\":0}\n\n");
    rc |= co__sim_reply_cut(r, 0);
    ev(&o, "message_delta");
    co__sim_printf(&o, "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"%s\",\"stop_sequence\":null},"
                   "\"usage\":{\"output_tokens\":%lld}}\n\n",
               an_stop(a->finish), (long long)a->completion_tokens);
    rc |= co__sim_reply_cut(r, 0);
    ev(&o, "message_stop");
    co__sim_put(&o, "{\"type\":\"message_stop\"}\n\n");
    rc |= co__sim_reply_cut(r, 0);
    return o.err ? o.err : rc ? CO_ETOOBIG : 0;
}

void co__sim_anthropic_models(co__sim_core *c, co__sim_reply *r, const char *one)
{
    const co_sim_scenario *sc = c->sh->sc;
    co__sim_out o = {&r->body, 0};
    r->status = 200;
    r->ctype = "application/json";
    if (one) {
        if (co__sim_scenario_find(sc, one) < 0) {
            an_error(r, CO__SIM_E_MODEL, one);
            return;
        }
        co__sim_put(&o, "{\"type\":\"model\",\"id\":");
        co__sim_jstrz(&o, one);
        co__sim_put(&o, ",\"display_name\":");
        co__sim_jstrz(&o, one);
        co__sim_put(&o, ",\"created_at\":\"2025-05-14T00:00:00Z\"}\n");
        return;
    }
    co__sim_put(&o, "{\"data\":[");
    const char *first = NULL, *last = NULL;
    for (size_t i = 0; i < sc->models.n; i++) {
        const co__sim_model *m = co__sim_model_at(sc, (int)i);
        if (!strcmp(m->name, "*") || (m->provider != CO__SIM_V_ANY && m->provider != CO__SIM_V_ANTHROPIC))
            continue;
        co__sim_put(&o, first ? ",{\"type\":\"model\",\"id\":" : "{\"type\":\"model\",\"id\":");
        co__sim_jstrz(&o, m->name);
        co__sim_put(&o, ",\"display_name\":");
        co__sim_jstrz(&o, m->name);
        co__sim_put(&o, ",\"created_at\":\"2025-05-14T00:00:00Z\"}");
        if (!first)
            first = m->name;
        last = m->name;
    }
    co__sim_put(&o, "],\"has_more\":false,\"first_id\":");
    if (first)
        co__sim_jstrz(&o, first);
    else
        co__sim_put(&o, "null");
    co__sim_put(&o, ",\"last_id\":");
    if (last)
        co__sim_jstrz(&o, last);
    else
        co__sim_put(&o, "null");
    co__sim_put(&o, "}\n");
}

const co__sim_proto co__sim_anthropic = {
    .name = "anthropic",
    .error = an_error,
    .parse = an_parse,
    .render = an_render,
};
