/* The OpenAI chat.completions wire format <-> the canonical chat model:
 * request bodies, chat.completion responses, chat.completion.chunk streams
 * and {"error":{...}} bodies. See docs/translation.md for the mapping. */
#define CO__CHAT_INTERNAL 1
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cutover/chat.h"
#include "cutover/error.h"
#include "cutover/util.h"

#define bad co__chat_bad

static int built(int err, const char *what) { return co__chat_built(err, "OpenAI", what); }

/* ---- request: parse ------------------------------------------------------- */

/* Text of a system/developer/tool message: a string or text parts. */
static int text_content(co_chat_request *req, const json_t *content, const char *path, co_buf *out)
{
    if (json_is_string(content))
        return co_buf_append(out, json_string_value(content), json_string_length(content));
    if (!json_is_array(content))
        return bad("%s must be a string or an array of content parts", path);
    size_t j;
    json_t *p;
    json_array_foreach(content, j, p) {
        if (!json_is_object(p))
            return bad("%s[%zu] must be an object", path, j);
        const char *type = NULL;
        int rc = co__opt_string(p, "type", "type", &type);
        if (rc || !type)
            return bad("%s[%zu].type is required and must be a string", path, j);
        if (strcmp(type, "text")) {
            if ((rc = co__drop(&req->dropped, p, "%s[].%s", path, type)))
                return rc;
            continue;
        }
        json_t *t = json_object_get(p, "text");
        if (!json_is_string(t))
            return bad("%s[%zu].text must be a string", path, j);
        if (out->len && (rc = co_buf_puts(out, "\n")))
            return rc;
        if ((rc = co_buf_append(out, json_string_value(t), json_string_length(t))))
            return rc;
    }
    return 0;
}

static int image_part(co_chat_message *m, const json_t *p, const char *path, size_t j, co_chat_strv *dropped)
{
    static const char *const known[] = {"url", "detail", NULL};
    const json_t *iu = json_object_get(p, "image_url");
    const char *url = NULL;
    int rc;
    if (json_is_string(iu)) {
        url = json_string_value(iu);
    } else if (json_is_object(iu)) {
        url = json_string_value(json_object_get(iu, "url"));
        if ((rc = co__drop(dropped, json_object_get(iu, "detail"), "messages[].content[].image_url.detail")) ||
            (rc = co__drop_unknown(dropped, iu, "messages[].content[].image_url.", known)))
            return rc;
    }
    if (!url)
        return bad("%s[%zu].image_url.url must be a string", path, j);
    char *media = NULL, *data = NULL;
    rc = co__data_url(url, &media, &data);
    if (rc < 0)
        return rc;
    if (rc == 1) {
        rc = co_chat_message_add_image_data(m, media, data);
        free(media);
        free(data);
        return rc;
    }
    return co_chat_message_add_image_url(m, url, NULL);
}

static int user_content(co_chat_request *req, co_chat_message *m, const json_t *content, const char *path)
{
    int rc;
    if (json_is_string(content))
        return co_chat_message_add_text(m, json_string_value(content), json_string_length(content));
    if (!json_is_array(content))
        return bad("%s must be a string or an array of content parts", path);
    size_t j;
    json_t *p;
    json_array_foreach(content, j, p) {
        static const char *const known[] = {"type", "text", "image_url", NULL};
        if (!json_is_object(p))
            return bad("%s[%zu] must be an object", path, j);
        const json_t *tv = json_object_get(p, "type");
        if (!json_is_string(tv))
            return bad("%s[%zu].type is required and must be a string", path, j);
        const char *type = json_string_value(tv);
        if (!strcmp(type, "text")) {
            json_t *t = json_object_get(p, "text");
            if (!json_is_string(t))
                return bad("%s[%zu].text must be a string", path, j);
            if ((rc = co_chat_message_add_text(m, json_string_value(t), json_string_length(t))))
                return rc;
        } else if (!strcmp(type, "image_url")) {
            if ((rc = image_part(m, p, path, j, &req->dropped)))
                return rc;
        } else if (!strcmp(type, "input_audio") || !strcmp(type, "file") || !strcmp(type, "refusal")) {
            if ((rc = co__drop(&req->dropped, p, "messages[].content[].%s", type)))
                return rc;
            continue;
        } else {
            return bad("%s[%zu].type must be one of text, image_url, input_audio, file (got '%.64s')", path, j,
                       type);
        }
        if ((rc = co__drop_unknown(&req->dropped, p, "messages[].content[].", known)))
            return rc;
    }
    return 0;
}

static int assistant_msg(co_chat_request *req, co_chat_message *m, const json_t *jm, size_t i)
{
    char path[64];
    int rc;
    const json_t *content = json_object_get(jm, "content");
    snprintf(path, sizeof path, "messages[%zu].content", i);
    if (content && !json_is_null(content)) {
        if (json_is_string(content)) {
            if (json_string_length(content) &&
                (rc = co_chat_message_add_text(m, json_string_value(content), json_string_length(content))))
                return rc;
        } else if (json_is_array(content)) {
            size_t j;
            json_t *p;
            json_array_foreach(content, j, p) {
                if (!json_is_object(p))
                    return bad("%s[%zu] must be an object", path, j);
                const char *type = json_string_value(json_object_get(p, "type"));
                if (!type)
                    return bad("%s[%zu].type is required and must be a string", path, j);
                const char *key = !strcmp(type, "text") ? "text" : !strcmp(type, "refusal") ? "refusal" : NULL;
                if (!key)
                    return bad("%s[%zu].type must be text or refusal (got '%.64s')", path, j, type);
                json_t *t = json_object_get(p, key);
                if (!json_is_string(t))
                    return bad("%s[%zu].%s must be a string", path, j, key);
                if ((rc = co_chat_message_add_text(m, json_string_value(t), json_string_length(t))))
                    return rc;
            }
        } else {
            return bad("%s must be a string or an array of content parts", path);
        }
    }
    const json_t *calls = json_object_get(jm, "tool_calls");
    if (calls && !json_is_null(calls)) {
        if (!json_is_array(calls))
            return bad("messages[%zu].tool_calls must be an array", i);
        size_t k;
        json_t *c;
        json_array_foreach(calls, k, c) {
            if (!json_is_object(c))
                return bad("messages[%zu].tool_calls[%zu] must be an object", i, k);
            const json_t *id = json_object_get(c, "id");
            if (!json_is_string(id))
                return bad("messages[%zu].tool_calls[%zu].id is required and must be a string", i, k);
            const char *type = json_string_value(json_object_get(c, "type"));
            if (type && strcmp(type, "function")) {
                if ((rc = co__drop(&req->dropped, c, "messages[].tool_calls[].%s", type)))
                    return rc;
                continue;
            }
            const json_t *fn = json_object_get(c, "function");
            if (!json_is_object(fn))
                return bad("messages[%zu].tool_calls[%zu].function is required and must be an object", i, k);
            const json_t *name = json_object_get(fn, "name");
            if (!json_is_string(name))
                return bad("messages[%zu].tool_calls[%zu].function.name is required and must be a string", i, k);
            const json_t *args = json_object_get(fn, "arguments");
            if (args && !json_is_null(args) && !json_is_string(args))
                return bad("messages[%zu].tool_calls[%zu].function.arguments must be a string", i, k);
            if ((rc = co_chat_message_add_tool_call(m, json_string_value(id), json_string_value(name),
                                                    args ? json_string_value(args) : "")))
                return rc;
        }
    }
    return 0;
}

static const char *const oa_msg_known[] = {"role", "content", "tool_calls", "tool_call_id", NULL};

static int parse_messages(co_chat_request *req, const json_t *msgs)
{
    size_t i;
    json_t *jm;
    int rc = 0;
    char path[64];
    co_buf text;
    co_buf_init(&text, CO_BUF_UNLIMITED);
    json_array_foreach(msgs, i, jm) {
        if (!json_is_object(jm)) {
            rc = bad("messages[%zu] must be an object", i);
            goto done;
        }
        const json_t *rv = json_object_get(jm, "role");
        if (!rv) {
            rc = bad("messages[%zu].role is required", i);
            goto done;
        }
        if (!json_is_string(rv)) {
            rc = bad("messages[%zu].role must be a string", i);
            goto done;
        }
        const char *role = json_string_value(rv);
        const json_t *content = json_object_get(jm, "content");
        snprintf(path, sizeof path, "messages[%zu].content", i);
        co_chat_message *m = NULL;
        if (!strcmp(role, "system") || !strcmp(role, "developer")) {
            if (!content || json_is_null(content)) {
                rc = bad("%s is required for a %s message", path, role);
                goto done;
            }
            co_buf_reset(&text);
            if ((rc = text_content(req, content, path, &text)) ||
                (rc = co__append_system(req, text.p ? text.p : "", "\n\n")))
                goto done;
        } else if (!strcmp(role, "user")) {
            if (!content || json_is_null(content)) {
                rc = bad("%s is required for a user message", path);
                goto done;
            }
            if ((rc = co_chat_request_add_message(req, CO_CHAT_USER, &m)) ||
                (rc = user_content(req, m, content, path)))
                goto done;
        } else if (!strcmp(role, "assistant")) {
            if ((rc = co_chat_request_add_message(req, CO_CHAT_ASSISTANT, &m)) || (rc = assistant_msg(req, m, jm, i)))
                goto done;
        } else if (!strcmp(role, "tool")) {
            const json_t *id = json_object_get(jm, "tool_call_id");
            if (!id || json_is_null(id)) {
                rc = bad("messages[%zu].tool_call_id is required for a tool message", i);
                goto done;
            }
            if (!json_is_string(id)) {
                rc = bad("messages[%zu].tool_call_id must be a string", i);
                goto done;
            }
            if (!content || json_is_null(content)) {
                rc = bad("%s is required for a tool message", path);
                goto done;
            }
            co_buf_reset(&text);
            if ((rc = text_content(req, content, path, &text)) ||
                (rc = co_chat_request_add_message(req, CO_CHAT_TOOL, &m)) ||
                (rc = co_chat_message_add_text(m, text.p ? text.p : "", text.len)) ||
                (rc = co_chat_request_set_str(&m->tool_call_id, json_string_value(id))))
                goto done;
        } else if (!strcmp(role, "function")) {
            rc = bad("messages[%zu].role 'function' is deprecated and not supported: use 'tool'", i);
            goto done;
        } else {
            rc = bad("messages[%zu].role must be one of system, developer, user, assistant, tool (got '%.64s')", i,
                     role);
            goto done;
        }
        if ((rc = co__drop_unknown(&req->dropped, jm, "messages[].", oa_msg_known)))
            goto done;
    }
done:
    co_buf_free(&text);
    return rc;
}

static int parse_tools(co_chat_request *req, const json_t *tools)
{
    size_t i;
    json_t *t;
    int rc;
    if (!json_is_array(tools))
        return bad("tools must be an array");
    json_array_foreach(tools, i, t) {
        static const char *const fn_known[] = {"name", "description", "parameters", "strict", NULL};
        if (!json_is_object(t))
            return bad("tools[%zu] must be an object", i);
        const char *type = json_string_value(json_object_get(t, "type"));
        if (type && strcmp(type, "function")) {
            if ((rc = co__drop(&req->dropped, t, "tools[].%s", type)))
                return rc;
            continue;
        }
        const json_t *fn = json_object_get(t, "function");
        if (!json_is_object(fn))
            return bad("tools[%zu].function is required and must be an object", i);
        const json_t *name = json_object_get(fn, "name");
        if (!json_is_string(name) || !json_string_length(name))
            return bad("tools[%zu].function.name is required and must be a non-empty string", i);
        const json_t *desc = json_object_get(fn, "description");
        if (desc && !json_is_null(desc) && !json_is_string(desc))
            return bad("tools[%zu].function.description must be a string", i);
        const json_t *params = json_object_get(fn, "parameters");
        if (params && !json_is_null(params) && !json_is_object(params))
            return bad("tools[%zu].function.parameters must be an object (a JSON Schema)", i);
        char *ptext = params && json_is_object(params) ? co__json_text(params) : NULL;
        if (params && json_is_object(params) && !ptext)
            return co_error_set(CO_ENOMEM, "out of memory");
        rc = co_chat_request_add_tool(req, json_string_value(name), json_string_value(desc), ptext);
        free(ptext);
        if (rc)
            return rc;
        if (json_is_true(json_object_get(fn, "strict")) &&
            (rc = co__drop(&req->dropped, json_true(), "tools[].function.strict")))
            return rc;
        if ((rc = co__drop_unknown(&req->dropped, fn, "tools[].function.", fn_known)))
            return rc;
    }
    return 0;
}

static int parse_tool_choice(co_chat_request *req, const json_t *tc)
{
    if (json_is_string(tc)) {
        const char *s = json_string_value(tc);
        if (!strcmp(s, "auto"))
            req->tool_choice = CO_CHAT_TOOLS_AUTO;
        else if (!strcmp(s, "none"))
            req->tool_choice = CO_CHAT_TOOLS_NONE;
        else if (!strcmp(s, "required"))
            req->tool_choice = CO_CHAT_TOOLS_REQUIRED;
        else
            return bad("tool_choice must be 'auto', 'none', 'required' or an object naming a function (got '%.64s')", s);
        return 0;
    }
    if (json_is_object(tc)) {
        const char *type = json_string_value(json_object_get(tc, "type"));
        if (type && !strcmp(type, "function")) {
            const char *name = json_string_value(json_object_get(json_object_get(tc, "function"), "name"));
            if (!name)
                return bad("tool_choice.function.name is required and must be a string");
            req->tool_choice = CO_CHAT_TOOLS_NAMED;
            return co_chat_request_set_str(&req->tool_choice_name, name);
        }
        if (type && !strcmp(type, "allowed_tools"))
            return co__drop(&req->dropped, tc, "tool_choice.allowed_tools");
    }
    return bad("tool_choice must be 'auto', 'none', 'required' or {\"type\":\"function\",\"function\":{\"name\":...}}");
}

static int parse_response_format(co_chat_request *req, const json_t *rf)
{
    if (!json_is_object(rf))
        return bad("response_format must be an object");
    const char *type = json_string_value(json_object_get(rf, "type"));
    if (!type)
        return bad("response_format.type is required and must be a string");
    if (!strcmp(type, "text")) {
        req->format = CO_CHAT_FORMAT_TEXT;
    } else if (!strcmp(type, "json_object")) {
        req->format = CO_CHAT_FORMAT_JSON_OBJECT;
    } else if (!strcmp(type, "json_schema")) {
        const json_t *js = json_object_get(rf, "json_schema");
        if (!json_is_object(js))
            return bad("response_format.json_schema is required and must be an object");
        const json_t *schema = json_object_get(js, "schema");
        if (schema && !json_is_object(schema))
            return bad("response_format.json_schema.schema must be an object");
        const char *name = json_string_value(json_object_get(js, "name"));
        req->format = CO_CHAT_FORMAT_JSON_SCHEMA;
        if (schema && !(req->format_schema = co__json_text(schema)))
            return co_error_set(CO_ENOMEM, "out of memory");
        const json_t *strict = json_object_get(js, "strict");
        if (json_is_boolean(strict))
            req->format_strict = json_is_true(strict);
        return co_chat_request_set_str(&req->format_name, name);
    } else {
        return bad("response_format.type must be text, json_object or json_schema (got '%.64s')", type);
    }
    return 0;
}

static const char *const oa_known[] = {
    "model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens", "temperature",
    "top_p", "stop", "tools", "tool_choice", "parallel_tool_calls", "user", "safety_identifier",
    "response_format", "n", NULL,
};

int co__openai_request_parse(co_chat_request *req, json_t *root)
{
    int rc;
    const char *model = NULL, *user = NULL;
    const json_t *v;
    if (!json_object_get(root, "model"))
        return bad("model is required");
    if ((rc = co__opt_string(root, "model", "model", &model)))
        return rc;
    if (!model)
        return bad("model must be a string");
    if ((rc = co_chat_request_set_str(&req->model, model)))
        return rc;
    const json_t *msgs = json_object_get(root, "messages");
    if (!msgs)
        return bad("messages is required");
    if (!json_is_array(msgs))
        return bad("messages must be an array");
    if (json_array_size(msgs) == 0)
        return bad("messages must contain at least one message");
    if ((rc = parse_messages(req, msgs)))
        return rc;
    if ((rc = co__opt_bool(root, "stream", "stream", &req->stream)))
        return rc;
    v = json_object_get(root, "stream_options");
    if (v && !json_is_null(v)) {
        if (!json_is_object(v))
            return bad("stream_options must be an object");
        static const char *const so_known[] = {"include_usage", NULL};
        if ((rc = co__opt_bool(v, "include_usage", "stream_options.include_usage", &req->include_usage)) ||
            (rc = co__drop_unknown(&req->dropped, v, "stream_options.", so_known)))
            return rc;
    }
    if ((rc = co__opt_posint(root, "max_tokens", "max_tokens", &req->max_tokens)) ||
        (rc = co__opt_posint(root, "max_completion_tokens", "max_completion_tokens", &req->max_tokens)))
        return rc;
    if ((rc = co__opt_number(root, "temperature", "temperature", &req->temperature, &req->has_temperature)) ||
        (rc = co__opt_number(root, "top_p", "top_p", &req->top_p, &req->has_top_p)))
        return rc;
    v = json_object_get(root, "stop");
    if (json_is_string(v)) {
        if ((rc = co_chat_strv_push(&req->stop, json_string_value(v))))
            return rc;
    } else if (json_is_array(v)) {
        size_t i;
        json_t *s;
        json_array_foreach(v, i, s) {
            if (!json_is_string(s))
                return bad("stop[%zu] must be a string", i);
            if ((rc = co_chat_strv_push(&req->stop, json_string_value(s))))
                return rc;
        }
    } else if (v && !json_is_null(v)) {
        return bad("stop must be a string or an array of strings");
    }
    v = json_object_get(root, "tools");
    if (v && !json_is_null(v) && (rc = parse_tools(req, v)))
        return rc;
    v = json_object_get(root, "tool_choice");
    if (v && !json_is_null(v) && (rc = parse_tool_choice(req, v)))
        return rc;
    v = json_object_get(root, "parallel_tool_calls");
    if (v && !json_is_null(v)) {
        if (!json_is_boolean(v))
            return bad("parallel_tool_calls must be a boolean");
        req->parallel_tool_calls = json_is_true(v);
    }
    if ((rc = co__opt_string(root, "user", "user", &user)))
        return rc;
    const char *sid = NULL;
    if ((rc = co__opt_string(root, "safety_identifier", "safety_identifier", &sid)))
        return rc;
    if (!user)
        user = sid;
    else if ((rc = co__drop(&req->dropped, json_object_get(root, "safety_identifier"), "safety_identifier")))
        return rc;
    if ((rc = co_chat_request_set_str(&req->user, user)))
        return rc;
    v = json_object_get(root, "response_format");
    if (v && !json_is_null(v) && (rc = parse_response_format(req, v)))
        return rc;
    v = json_object_get(root, "n");
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 1)
            return bad("n must be an integer >= 1");
        if (json_integer_value(v) != 1 && (rc = co__drop(&req->dropped, v, "n")))
            return rc;
    }
    return co__drop_unknown(&req->dropped, root, "", oa_known);
}

/* ---- request: emit -------------------------------------------------------- */

static json_t *image_json(const co_chat_part *p)
{
    json_t *o = json_object(), *iu = json_object();
    int err = 0;
    if (p->data) {
        char *url = NULL;
        if (asprintf(&url, "data:%s;base64,%s", p->media_type ? p->media_type : "image/png", p->data) < 0)
            url = NULL;
        co__jset(&err, iu, "url", url ? json_string(url) : NULL);
        free(url);
    } else {
        co__jset(&err, iu, "url", json_string(p->url ? p->url : ""));
    }
    co__jset(&err, o, "type", json_string("image_url"));
    co__jset(&err, o, "image_url", iu);
    if (err) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* content for a user message: a string when it is one text part. */
static json_t *user_json(const co_chat_message *m)
{
    if (m->n_parts == 1 && m->parts[0].kind == CO_CHAT_PART_TEXT)
        return json_string(m->parts[0].text);
    json_t *arr = json_array();
    int err = 0;
    for (size_t i = 0; i < m->n_parts; i++) {
        const co_chat_part *p = &m->parts[i];
        if (p->kind == CO_CHAT_PART_TEXT) {
            json_t *o = json_object();
            co__jset(&err, o, "type", json_string("text"));
            co__jset(&err, o, "text", json_string(p->text ? p->text : ""));
            co__jpush(&err, arr, o);
        } else {
            co__jpush(&err, arr, image_json(p));
        }
    }
    if (err) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

static json_t *text_json(const co_chat_message *m, const char *sep)
{
    char *t = NULL;
    if (co_chat_message_text(&t, m, sep))
        return NULL;
    json_t *s = json_string(t);
    free(t);
    return s;
}

static int has_text(const co_chat_message *m)
{
    for (size_t i = 0; i < m->n_parts; i++)
        if (m->parts[i].kind == CO_CHAT_PART_TEXT)
            return 1;
    return 0;
}

int co__openai_request_emit(json_t **out, const co_chat_request *req, const co_chat_emit_opts *o)
{
    int err = 0, rc = 0;
    json_t *root = json_object(), *msgs = json_array();
    co_chat_strv *dropped = o->dropped;
    co__jset(&err, root, "model", json_string(req->model ? req->model : ""));
    if (req->system) {
        json_t *sm = json_object();
        co__jset(&err, sm, "role", json_string("system"));
        co__jset(&err, sm, "content", json_string(req->system));
        co__jpush(&err, msgs, sm);
    }
    for (size_t i = 0; i < req->n_messages; i++) {
        const co_chat_message *m = &req->messages[i];
        if (m->role == CO_CHAT_TOOL) {
            for (size_t k = 0; k < m->n_parts; k++)
                if (m->parts[k].kind == CO_CHAT_PART_IMAGE &&
                    (rc = co__drop(dropped, json_true(), "messages[].tool_result.image")))
                    goto done;
            if (m->is_error && (rc = co__drop(dropped, json_true(), "messages[].is_error")))
                goto done;
        }
        json_t *jm = json_object();
        if (m->role == CO_CHAT_USER) {
            co__jset(&err, jm, "role", json_string("user"));
            co__jset(&err, jm, "content", user_json(m));
        } else if (m->role == CO_CHAT_ASSISTANT) {
            co__jset(&err, jm, "role", json_string("assistant"));
            /* content may be null only beside tool calls */
            co__jset(&err, jm, "content", has_text(m) ? text_json(m, "") : m->n_tool_calls ? json_null() : json_string(""));
            if (m->n_tool_calls) {
                json_t *calls = json_array();
                for (size_t k = 0; k < m->n_tool_calls; k++) {
                    const co_chat_tool_call *c = &m->tool_calls[k];
                    json_t *jc = json_object(), *fn = json_object();
                    co__jset(&err, jc, "id", json_string(c->id));
                    co__jset(&err, jc, "type", json_string("function"));
                    co__jset(&err, fn, "name", json_string(c->name));
                    co__jset(&err, fn, "arguments", json_string(c->arguments && *c->arguments ? c->arguments : "{}"));
                    co__jset(&err, jc, "function", fn);
                    co__jpush(&err, calls, jc);
                }
                co__jset(&err, jm, "tool_calls", calls);
            }
        } else {
            co__jset(&err, jm, "role", json_string("tool"));
            co__jset(&err, jm, "tool_call_id", json_string(m->tool_call_id ? m->tool_call_id : ""));
            co__jset(&err, jm, "content", text_json(m, "\n"));
        }
        co__jpush(&err, msgs, jm);
    }
    co__jset(&err, root, "messages", msgs);
    msgs = NULL;
    if (req->n_tools) {
        json_t *tools = json_array();
        for (size_t i = 0; i < req->n_tools; i++) {
            const co_chat_tool *t = &req->tools[i];
            json_t *jt = json_object(), *fn = json_object();
            co__jset(&err, jt, "type", json_string("function"));
            co__jset(&err, fn, "name", json_string(t->name));
            if (t->description)
                co__jset(&err, fn, "description", json_string(t->description));
            if (t->parameters)
                co__jset(&err, fn, "parameters", co__jraw(t->parameters));
            co__jset(&err, jt, "function", fn);
            co__jpush(&err, tools, jt);
        }
        co__jset(&err, root, "tools", tools);
    }
    switch (req->tool_choice) {
    case CO_CHAT_TOOLS_UNSET: break;
    case CO_CHAT_TOOLS_AUTO: co__jset(&err, root, "tool_choice", json_string("auto")); break;
    case CO_CHAT_TOOLS_NONE: co__jset(&err, root, "tool_choice", json_string("none")); break;
    case CO_CHAT_TOOLS_REQUIRED: co__jset(&err, root, "tool_choice", json_string("required")); break;
    case CO_CHAT_TOOLS_NAMED: {
        json_t *tc = json_object(), *fn = json_object();
        co__jset(&err, tc, "type", json_string("function"));
        co__jset(&err, fn, "name", json_string(req->tool_choice_name ? req->tool_choice_name : ""));
        co__jset(&err, tc, "function", fn);
        co__jset(&err, root, "tool_choice", tc);
        break;
    }
    }
    if (req->parallel_tool_calls >= 0 && req->n_tools)
        co__jset(&err, root, "parallel_tool_calls", json_boolean(req->parallel_tool_calls));
    if (req->has_temperature)
        co__jset(&err, root, "temperature", json_real(req->temperature));
    if (req->has_top_p)
        co__jset(&err, root, "top_p", json_real(req->top_p));
    if (req->max_tokens > 0)
        co__jset(&err, root, o->openai_legacy_max_tokens ? "max_tokens" : "max_completion_tokens",
                 json_integer(req->max_tokens));
    if (req->stop.n) {
        json_t *stop = json_array();
        for (size_t i = 0; i < req->stop.n; i++)
            co__jpush(&err, stop, json_string(req->stop.v[i]));
        co__jset(&err, root, "stop", stop);
    }
    if (req->format != CO_CHAT_FORMAT_UNSET) {
        json_t *rf = json_object();
        if (req->format == CO_CHAT_FORMAT_TEXT) {
            co__jset(&err, rf, "type", json_string("text"));
        } else if (req->format == CO_CHAT_FORMAT_JSON_OBJECT) {
            co__jset(&err, rf, "type", json_string("json_object"));
        } else {
            json_t *js = json_object();
            co__jset(&err, rf, "type", json_string("json_schema"));
            co__jset(&err, js, "name", json_string(req->format_name ? req->format_name : "response"));
            if (req->format_schema)
                co__jset(&err, js, "schema", co__jraw(req->format_schema));
            if (req->format_strict >= 0)
                co__jset(&err, js, "strict", json_boolean(req->format_strict));
            co__jset(&err, rf, "json_schema", js);
        }
        co__jset(&err, root, "response_format", rf);
    }
    if (req->stream) {
        co__jset(&err, root, "stream", json_true());
        if (req->include_usage) {
            json_t *so = json_object();
            co__jset(&err, so, "include_usage", json_true());
            co__jset(&err, root, "stream_options", so);
        }
    }
    if (req->user)
        co__jset(&err, root, "user", json_string(req->user));
done:
    json_decref(msgs);
    if (!rc && (rc = built(err, "request")) == 0) {
        *out = root;
        return 0;
    }
    json_decref(root);
    return rc;
}

/* ---- responses ------------------------------------------------------------ */

co_chat_finish co__openai_finish(const char *s)
{
    if (!s)
        return CO_CHAT_FINISH_NONE;
    if (!strcmp(s, "stop"))
        return CO_CHAT_FINISH_STOP;
    if (!strcmp(s, "length"))
        return CO_CHAT_FINISH_LENGTH;
    if (!strcmp(s, "tool_calls") || !strcmp(s, "function_call"))
        return CO_CHAT_FINISH_TOOL_CALLS;
    if (!strcmp(s, "content_filter"))
        return CO_CHAT_FINISH_CONTENT_FILTER;
    return CO_CHAT_FINISH_OTHER;
}

static const char *finish_str(co_chat_finish f, const char *raw, co_api api)
{
    switch (f) {
    case CO_CHAT_FINISH_STOP: return "stop";
    case CO_CHAT_FINISH_LENGTH: return "length";
    case CO_CHAT_FINISH_TOOL_CALLS: return "tool_calls";
    case CO_CHAT_FINISH_CONTENT_FILTER: return "content_filter";
    default: return api == CO_API_OPENAI && raw ? raw : "stop";
    }
}

void co__openai_usage(co_chat_usage *u, const json_t *usage)
{
    if (!json_is_object(usage))
        return;
    memset(u, 0, sizeof *u);
    u->known = 1;
    u->input_tokens = json_integer_value(json_object_get(usage, "prompt_tokens"));
    u->output_tokens = json_integer_value(json_object_get(usage, "completion_tokens"));
    u->cached_input_tokens =
        json_integer_value(json_object_get(json_object_get(usage, "prompt_tokens_details"), "cached_tokens"));
}

int co__openai_response_parse(co_chat_response *r, json_t *root)
{
    int rc;
    const json_t *choices = json_object_get(root, "choices");
    if (!json_is_array(choices))
        return bad("response body: choices must be an array");
    if ((rc = co_chat_request_set_str(&r->id, json_string_value(json_object_get(root, "id")))) ||
        (rc = co_chat_request_set_str(&r->model, json_string_value(json_object_get(root, "model")))))
        return rc;
    r->created = json_integer_value(json_object_get(root, "created"));
    co__openai_usage(&r->usage, json_object_get(root, "usage"));
    const json_t *c0 = json_array_get(choices, 0);
    if (!c0)
        return 0;
    if (!json_is_object(c0))
        return bad("response body: choices[0] must be an object");
    const json_t *msg = json_object_get(c0, "message");
    if (!json_is_object(msg))
        return bad("response body: choices[0].message must be an object");
    const json_t *content = json_object_get(msg, "content");
    const json_t *refusal = json_object_get(msg, "refusal");
    if (json_is_string(content))
        rc = co_chat_request_set_str(&r->text, json_string_value(content));
    else if (json_is_string(refusal))
        rc = co_chat_request_set_str(&r->text, json_string_value(refusal));
    else if (content && !json_is_null(content))
        return bad("response body: choices[0].message.content must be a string or null");
    if (rc)
        return rc;
    const json_t *calls = json_object_get(msg, "tool_calls");
    size_t k;
    json_t *c;
    json_array_foreach(calls, k, c) {
        const json_t *fn = json_object_get(c, "function");
        const char *name = json_string_value(json_object_get(fn, "name"));
        if (!name)
            return bad("response body: choices[0].message.tool_calls[%zu].function.name must be a string", k);
        co_chat_tool_call *v = realloc(r->tool_calls, (r->n_tool_calls + 1) * sizeof *v);
        if (!v)
            return co_error_set(CO_ENOMEM, "out of memory");
        r->tool_calls = v;
        co_chat_tool_call *tc = &v[r->n_tool_calls++];
        const char *id = json_string_value(json_object_get(c, "id"));
        const char *args = json_string_value(json_object_get(fn, "arguments"));
        tc->id = strdup(id ? id : "");
        tc->name = strdup(name);
        tc->arguments = strdup(args ? args : "");
        if (!tc->id || !tc->name || !tc->arguments)
            return co_error_set(CO_ENOMEM, "out of memory");
    }
    const char *fr = json_string_value(json_object_get(c0, "finish_reason"));
    r->finish = co__openai_finish(fr);
    r->finish_api = CO_API_OPENAI;
    return co_chat_request_set_str(&r->finish_raw, fr);
}

static json_t *usage_json(const co_chat_usage *u)
{
    json_t *o = json_object(), *d = json_object();
    int err = 0;
    co__jset(&err, o, "prompt_tokens", json_integer(u->input_tokens));
    co__jset(&err, o, "completion_tokens", json_integer(u->output_tokens));
    co__jset(&err, o, "total_tokens", json_integer(u->input_tokens + u->output_tokens));
    co__jset(&err, d, "cached_tokens", json_integer(u->cached_input_tokens));
    co__jset(&err, o, "prompt_tokens_details", d);
    if (err) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *calls_json(const co_chat_tool_call *calls, size_t n, int with_index)
{
    json_t *arr = json_array();
    int err = 0;
    for (size_t k = 0; k < n; k++) {
        json_t *jc = json_object(), *fn = json_object();
        if (with_index)
            co__jset(&err, jc, "index", json_integer((json_int_t)k));
        co__jset(&err, jc, "id", json_string(calls[k].id ? calls[k].id : ""));
        co__jset(&err, jc, "type", json_string("function"));
        co__jset(&err, fn, "name", json_string(calls[k].name ? calls[k].name : ""));
        co__jset(&err, fn, "arguments",
                 json_string(calls[k].arguments && *calls[k].arguments ? calls[k].arguments : "{}"));
        co__jset(&err, jc, "function", fn);
        co__jpush(&err, arr, jc);
    }
    if (err) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

int co__openai_response_emit(json_t **out, const co_chat_response *r)
{
    int err = 0;
    char *made = r->id ? NULL : co__make_id("chatcmpl-");
    json_t *root = json_object(), *choice = json_object(), *msg = json_object(), *choices = json_array();
    co__jset(&err, root, "id", json_string(r->id ? r->id : made ? made : "chatcmpl-0"));
    free(made);
    co__jset(&err, root, "object", json_string("chat.completion"));
    co__jset(&err, root, "created", json_integer(r->created ? r->created : co_now_ms() / 1000));
    co__jset(&err, root, "model", json_string(r->model ? r->model : ""));
    co__jset(&err, msg, "role", json_string("assistant"));
    co__jset(&err, msg, "content", co__jstr(r->text));
    if (r->n_tool_calls)
        co__jset(&err, msg, "tool_calls", calls_json(r->tool_calls, r->n_tool_calls, 0));
    co__jset(&err, msg, "refusal", json_null());
    co__jset(&err, choice, "index", json_integer(0));
    co__jset(&err, choice, "message", msg);
    co__jset(&err, choice, "logprobs", json_null());
    co__jset(&err, choice, "finish_reason", json_string(finish_str(r->finish, r->finish_raw, r->finish_api)));
    co__jpush(&err, choices, choice);
    co__jset(&err, root, "choices", choices);
    co__jset(&err, root, "usage", usage_json(&r->usage));
    int rc = built(err, "response");
    if (rc) {
        json_decref(root);
        return rc;
    }
    *out = root;
    return 0;
}

/* ---- errors --------------------------------------------------------------- */

int co__openai_error_format(json_t **out, int status, co_chat_err_kind kind, const char *msg, const char *param)
{
    const char *type = "invalid_request_error", *code = NULL;
    (void)status;
    switch (kind) {
    case CO_CHAT_ERR_INVALID_REQUEST: break;
    case CO_CHAT_ERR_AUTHENTICATION: code = "invalid_api_key"; break;
    case CO_CHAT_ERR_PERMISSION: type = "permission_error"; break;
    case CO_CHAT_ERR_NOT_FOUND: code = "not_found"; break;
    case CO_CHAT_ERR_REQUEST_TOO_LARGE: code = "request_too_large"; break;
    case CO_CHAT_ERR_RATE_LIMIT: type = "requests"; code = "rate_limit_exceeded"; break;
    case CO_CHAT_ERR_API: type = "server_error"; break;
    case CO_CHAT_ERR_OVERLOADED: type = "server_error"; code = "service_unavailable"; break;
    }
    int err = 0;
    json_t *root = json_object(), *e = json_object();
    co__jset(&err, e, "message", json_string(msg));
    co__jset(&err, e, "type", json_string(type));
    co__jset(&err, e, "param", co__jstr(param));
    co__jset(&err, e, "code", co__jstr(code));
    co__jset(&err, root, "error", e);
    int rc = built(err, "error");
    if (rc) {
        json_decref(root);
        return rc;
    }
    *out = root;
    return 0;
}

void co__openai_error_parse(co_chat_error *e, const json_t *root)
{
    const json_t *err = json_object_get(root, "error");
    const json_t *msg = NULL;
    if (json_is_string(err)) {
        msg = err; /* {"error": "..."} from OpenAI-compatible servers */
    } else if (json_is_object(err)) {
        msg = json_object_get(err, "message");
        const char *code = json_string_value(json_object_get(err, "code"));
        const char *type = json_string_value(json_object_get(err, "type"));
        int k = co__err_kind_of_type(code);
        if (k < 0)
            k = co__err_kind_of_type(type);
        if (k >= 0)
            e->kind = (co_chat_err_kind)k;
        const char *t = code ? code : type;
        if (t)
            co__err_copy(e->type, sizeof e->type, t, strlen(t));
    } else if (json_is_string(json_object_get(root, "detail"))) {
        msg = json_object_get(root, "detail"); /* FastAPI-style servers */
    }
    if (json_is_string(msg))
        co__err_copy(e->message, sizeof e->message, json_string_value(msg), json_string_length(msg));
}

/* ---- stream: decode ------------------------------------------------------- */

static int tool_started(co_chat_decoder *d, int index, int set)
{
    if ((size_t)index >= d->n_blocks) {
        if (!set)
            return 0;
        size_t n = (size_t)index + 1;
        int *v = realloc(d->block_tool, n * sizeof *v);
        if (!v)
            return co_error_set(CO_ENOMEM, "out of memory");
        for (size_t i = d->n_blocks; i < n; i++)
            v[i] = 0;
        d->block_tool = v;
        d->n_blocks = n;
    }
    if (set)
        d->block_tool[index] = 1;
    return d->block_tool[index];
}

static int decode_error(co_chat_decoder *d, const json_t *root)
{
    co_chat_error e;
    memset(&e, 0, sizeof e);
    e.kind = CO_CHAT_ERR_API;
    co__openai_error_parse(&e, root);
    if (!e.message[0])
        snprintf(e.message, sizeof e.message, "upstream stream error");
    co_chat_event ev = {.kind = CO_CHAT_EV_ERROR, .error = &e};
    return co__deliver(d, &ev);
}

int co__openai_decode(co_chat_decoder *d, const co_sse_event *sev)
{
    int rc = 0;
    json_t *root = NULL;
    if (sev->data_len == 6 && !memcmp(sev->data, "[DONE]", 6)) {
        co_chat_event end = {.kind = CO_CHAT_EV_END};
        return co__deliver(d, &end);
    }
    json_error_t jerr;
    root = json_loadb(sev->data, sev->data_len, 0, &jerr);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return co_error_set(CO_EPARSE, "openai stream: event %d is not a JSON object: %s", d->n_events,
                            root ? "wrong type" : jerr.text);
    }
    if (json_object_get(root, "error")) {
        rc = decode_error(d, root);
        goto done;
    }
    const json_t *choices = json_object_get(root, "choices");
    const char *id = json_string_value(json_object_get(root, "id"));
    if (!d->started && ((id && *id) || json_array_size(choices))) {
        co_chat_event st = {
            .kind = CO_CHAT_EV_START,
            .id = id ? id : "",
            .model = json_string_value(json_object_get(root, "model")),
            .created = json_integer_value(json_object_get(root, "created")),
        };
        if (!st.model)
            st.model = "";
        if ((rc = co__deliver(d, &st)))
            goto done;
    }
    size_t ci;
    json_t *c;
    json_array_foreach(choices, ci, c) {
        const json_t *idx = json_object_get(c, "index");
        if (idx && json_integer_value(idx) != 0)
            continue; /* n > 1: only the first choice is carried */
        const json_t *delta = json_object_get(c, "delta");
        const json_t *content = json_object_get(delta, "content");
        if (json_is_string(content) && json_string_length(content)) {
            co_chat_event ev = {.kind = CO_CHAT_EV_TEXT, .text = json_string_value(content), .len = json_string_length(content)};
            if ((rc = co__deliver(d, &ev)))
                goto done;
        }
        const json_t *refusal = json_object_get(delta, "refusal");
        if (json_is_string(refusal) && json_string_length(refusal)) {
            co_chat_event ev = {.kind = CO_CHAT_EV_TEXT, .text = json_string_value(refusal), .len = json_string_length(refusal)};
            if ((rc = co__deliver(d, &ev)))
                goto done;
        }
        size_t k;
        json_t *tc;
        json_array_foreach(json_object_get(delta, "tool_calls"), k, tc) {
            const json_t *ti = json_object_get(tc, "index");
            json_int_t index = ti ? json_integer_value(ti) : (json_int_t)k;
            if (!json_is_integer(ti) && ti) {
                rc = co_error_set(CO_EPARSE, "openai stream: tool_calls[%zu].index must be an integer", k);
                goto done;
            }
            if (index < 0 || index > 1024) {
                rc = co_error_set(CO_EPARSE, "openai stream: tool call index %lld out of range", (long long)index);
                goto done;
            }
            const json_t *fn = json_object_get(tc, "function");
            const char *tid = json_string_value(json_object_get(tc, "id"));
            const char *name = json_string_value(json_object_get(fn, "name"));
            const char *args = json_string_value(json_object_get(fn, "arguments"));
            if (!tool_started(d, (int)index, 0)) {
                if ((rc = tool_started(d, (int)index, 1)) < 0)
                    goto done;
                co_chat_event ev = {.kind = CO_CHAT_EV_TOOL_START, .index = (int)index, .tool_id = tid ? tid : "",
                                    .tool_name = name ? name : ""};
                if ((rc = co__deliver(d, &ev)))
                    goto done;
                d->n_tools++;
            }
            if (args && *args) {
                co_chat_event ev = {.kind = CO_CHAT_EV_TOOL_ARGS, .index = (int)index, .text = args, .len = strlen(args)};
                if ((rc = co__deliver(d, &ev)))
                    goto done;
            }
        }
        const char *fr = json_string_value(json_object_get(c, "finish_reason"));
        if (fr) {
            co_chat_event ev = {.kind = CO_CHAT_EV_FINISH, .finish = co__openai_finish(fr), .finish_raw = fr,
                                .finish_api = CO_API_OPENAI};
            if ((rc = co__deliver(d, &ev)))
                goto done;
        }
    }
    const json_t *usage = json_object_get(root, "usage");
    if (json_is_object(usage)) {
        co_chat_event ev = {.kind = CO_CHAT_EV_USAGE};
        co__openai_usage(&ev.usage, usage);
        if ((rc = co__deliver(d, &ev)))
            goto done;
    }
done:
    json_decref(root);
    return rc;
}

/* ---- stream: encode ------------------------------------------------------- */

/* One chat.completion.chunk with choices [ {index 0, delta, finish_reason} ]
 * (delta NULL: choices is [] and usage is set). */
static int chunk(co_chat_encoder *e, co_buf *out, json_t *delta, const char *finish, const co_chat_usage *usage)
{
    int err = 0;
    json_t *root = json_object(), *choices = json_array();
    co__jset(&err, root, "id", json_string(e->id ? e->id : "chatcmpl-0"));
    co__jset(&err, root, "object", json_string("chat.completion.chunk"));
    co__jset(&err, root, "created", json_integer(e->created));
    co__jset(&err, root, "model", json_string(e->model ? e->model : ""));
    if (delta) {
        json_t *c = json_object();
        co__jset(&err, c, "index", json_integer(0));
        co__jset(&err, c, "delta", delta);
        co__jset(&err, c, "logprobs", json_null());
        co__jset(&err, c, "finish_reason", co__jstr(finish));
        co__jpush(&err, choices, c);
    }
    co__jset(&err, root, "choices", choices);
    if (usage)
        co__jset(&err, root, "usage", usage_json(usage));
    int rc = built(err, "stream chunk");
    if (!rc)
        rc = co__sse_write(out, NULL, root, "\n\n");
    json_decref(root);
    return rc;
}

static json_t *tool_delta(int index, const char *id, const char *name, const char *args, size_t len)
{
    int err = 0;
    json_t *delta = json_object(), *calls = json_array(), *tc = json_object(), *fn = json_object();
    co__jset(&err, tc, "index", json_integer(index));
    if (id) {
        co__jset(&err, tc, "id", json_string(id));
        co__jset(&err, tc, "type", json_string("function"));
        co__jset(&err, fn, "name", json_string(name ? name : ""));
    }
    co__jset(&err, fn, "arguments", json_stringn(args ? args : "", args ? len : 0));
    co__jset(&err, tc, "function", fn);
    co__jpush(&err, calls, tc);
    co__jset(&err, delta, "tool_calls", calls);
    if (err) {
        json_decref(delta);
        return NULL;
    }
    return delta;
}

int co__openai_encode(co_chat_encoder *e, co_buf *out, const co_chat_event *ev)
{
    int err = 0, rc = 0;
    json_t *delta = NULL;
    co__enc_tool *t;
    switch (ev->kind) {
    case CO_CHAT_EV_START:
        if (!e->id && !(e->id = co__make_id("chatcmpl-")))
            return co_error_set(CO_ENOMEM, "out of memory");
        delta = json_object();
        co__jset(&err, delta, "role", json_string("assistant"));
        co__jset(&err, delta, "content", json_string(""));
        if (err) {
            json_decref(delta);
            return built(err, "stream chunk");
        }
        return chunk(e, out, delta, NULL, NULL);
    case CO_CHAT_EV_TEXT:
        delta = json_object();
        co__jset(&err, delta, "content", json_stringn(ev->text ? ev->text : "", ev->text ? ev->len : 0));
        if (err) {
            json_decref(delta);
            return built(err, "stream chunk");
        }
        return chunk(e, out, delta, NULL, NULL);
    case CO_CHAT_EV_TOOL_START:
        if ((rc = co__enc_tool_add(e, ev, &t)))
            return rc;
        if (!(delta = tool_delta(ev->index, ev->tool_id ? ev->tool_id : "", ev->tool_name, "", 0)))
            return built(1, "stream chunk");
        return chunk(e, out, delta, NULL, NULL);
    case CO_CHAT_EV_TOOL_ARGS:
        if ((t = co__enc_tool_get(e, ev->index)))
            t->has_args = 1;
        if (!ev->len)
            return 0;
        if (!(delta = tool_delta(ev->index, NULL, NULL, ev->text, ev->len)))
            return built(1, "stream chunk");
        return chunk(e, out, delta, NULL, NULL);
    case CO_CHAT_EV_FINISH:
        /* a call that got no argument bytes (an Anthropic tool_use with empty input) */
        for (size_t i = 0; i < e->n_tools; i++) {
            if (e->tools[i].has_args)
                continue;
            e->tools[i].has_args = 1;
            if (!(delta = tool_delta(e->tools[i].index, NULL, NULL, "{}", 2)))
                return built(1, "stream chunk");
            if ((rc = chunk(e, out, delta, NULL, NULL)))
                return rc;
        }
        if (!(delta = json_object()))
            return built(1, "stream chunk");
        return chunk(e, out, delta, finish_str(ev->finish, ev->finish_raw, ev->finish_api), NULL);
    case CO_CHAT_EV_USAGE:
        return 0; /* held for END: OpenAI sends usage last */
    case CO_CHAT_EV_END:
        if (!e->finished) {
            co_chat_event f = {.kind = CO_CHAT_EV_FINISH, .finish = CO_CHAT_FINISH_STOP};
            if ((rc = co__openai_encode(e, out, &f)))
                return rc;
        }
        if (e->opts.include_usage && (rc = chunk(e, out, NULL, NULL, &e->usage)))
            return rc;
        return co_buf_puts(out, "data: [DONE]\n\n");
    case CO_CHAT_EV_ERROR: {
        json_t *j = NULL;
        const co_chat_error *x = ev->error;
        if ((rc = co__openai_error_format(&j, x ? x->status : 500, x ? x->kind : CO_CHAT_ERR_API,
                                          x ? x->message : "upstream error", NULL)))
            return rc;
        rc = co__sse_write(out, NULL, j, "\n\n");
        json_decref(j);
        return rc;
    }
    }
    return 0;
}
