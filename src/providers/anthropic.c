/* The Anthropic Messages wire format <-> the canonical chat model: request
 * bodies, message responses, the SSE event sequence (message_start,
 * content_block_start/delta/stop, message_delta, message_stop, ping, error)
 * and {"type":"error",...} bodies. See docs/translation.md for the mapping. */
#define CO__CHAT_INTERNAL 1
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cutover/chat.h"
#include "cutover/error.h"

#define bad co__chat_bad

static int built(int err, const char *what) { return co__chat_built(err, "Anthropic", what); }

/* ---- request: parse ------------------------------------------------------- */

static int image_block(co_chat_message *m, const json_t *b, const char *path)
{
    const json_t *src = json_object_get(b, "source");
    if (!json_is_object(src))
        return bad("%s.source is required and must be an object", path);
    const char *type = json_string_value(json_object_get(src, "type"));
    if (type && !strcmp(type, "base64")) {
        const char *media = json_string_value(json_object_get(src, "media_type"));
        const char *data = json_string_value(json_object_get(src, "data"));
        if (!media)
            return bad("%s.source.media_type is required and must be a string", path);
        if (!data)
            return bad("%s.source.data is required and must be a string", path);
        return co_chat_message_add_image_data(m, media, data);
    }
    if (type && !strcmp(type, "url")) {
        const char *url = json_string_value(json_object_get(src, "url"));
        if (!url)
            return bad("%s.source.url is required and must be a string", path);
        return co_chat_message_add_image_url(m, url, NULL);
    }
    return bad("%s.source.type must be 'base64' or 'url'", path);
}

static const char *const blk_known[] = {"type", "text", "source", "id", "name", "input", "tool_use_id",
                                        "content", "is_error", NULL};

/* The content of a tool_result: a string or text/image blocks. */
static int result_content(co_chat_request *req, co_chat_message *m, const json_t *c, const char *path)
{
    int rc;
    if (!c || json_is_null(c))
        return 0;
    if (json_is_string(c))
        return co_chat_message_add_text(m, json_string_value(c), json_string_length(c));
    if (!json_is_array(c))
        return bad("%s must be a string or an array of content blocks", path);
    size_t k;
    json_t *b;
    char sub[160];
    json_array_foreach(c, k, b) {
        snprintf(sub, sizeof sub, "%s[%zu]", path, k);
        if (!json_is_object(b))
            return bad("%s must be an object", sub);
        const char *type = json_string_value(json_object_get(b, "type"));
        if (!type)
            return bad("%s.type is required and must be a string", sub);
        if (!strcmp(type, "text")) {
            const json_t *t = json_object_get(b, "text");
            if (!json_is_string(t))
                return bad("%s.text must be a string", sub);
            if ((rc = co_chat_message_add_text(m, json_string_value(t), json_string_length(t))))
                return rc;
        } else if (!strcmp(type, "image")) {
            if ((rc = image_block(m, b, sub)))
                return rc;
        } else if ((rc = co__drop(&req->dropped, b, "messages[].content[].tool_result.content[].%s", type))) {
            return rc;
        }
    }
    return 0;
}

static int parse_message(co_chat_request *req, const json_t *jm, size_t i)
{
    char path[96];
    int rc;
    if (!json_is_object(jm))
        return bad("messages[%zu] must be an object", i);
    const json_t *rv = json_object_get(jm, "role");
    if (!rv)
        return bad("messages[%zu].role is required", i);
    const char *role = json_string_value(rv);
    if (!role)
        return bad("messages[%zu].role must be a string", i);
    int user = !strcmp(role, "user");
    if (!user && strcmp(role, "assistant"))
        return bad("messages[%zu].role must be 'user' or 'assistant' (got '%.64s')", i, role);
    const json_t *content = json_object_get(jm, "content");
    if (!content || json_is_null(content))
        return bad("messages[%zu].content is required", i);
    static const char *const msg_known[] = {"role", "content", NULL};
    if ((rc = co__drop_unknown(&req->dropped, jm, "messages[].", msg_known)))
        return rc;
    co_chat_message *m = NULL;
    if (json_is_string(content)) {
        if ((rc = co_chat_request_add_message(req, user ? CO_CHAT_USER : CO_CHAT_ASSISTANT, &m)))
            return rc;
        if (!user && !json_string_length(content))
            return 0;
        return co_chat_message_add_text(m, json_string_value(content), json_string_length(content));
    }
    if (!json_is_array(content))
        return bad("messages[%zu].content must be a string or an array of content blocks", i);
    size_t j;
    json_t *b;
    /* m is the message text/images go to; tool results make their own */
    size_t cur = (size_t)-1;
    if (!user || json_array_size(content) == 0) {
        if ((rc = co_chat_request_add_message(req, user ? CO_CHAT_USER : CO_CHAT_ASSISTANT, NULL)))
            return rc;
        cur = req->n_messages - 1;
    }
    json_array_foreach(content, j, b) {
        snprintf(path, sizeof path, "messages[%zu].content[%zu]", i, j);
        if (!json_is_object(b))
            return bad("%s must be an object", path);
        const json_t *tv = json_object_get(b, "type");
        if (!json_is_string(tv))
            return bad("%s.type is required and must be a string", path);
        const char *type = json_string_value(tv);
        if ((rc = co__drop(&req->dropped, json_object_get(b, "cache_control"), "messages[].content[].cache_control")) ||
            (rc = co__drop(&req->dropped, json_object_get(b, "citations"), "messages[].content[].citations")))
            return rc;
        if (!strcmp(type, "tool_result")) {
            if (!user)
                return bad("%s: tool_result blocks are only allowed in user messages", path);
            const json_t *id = json_object_get(b, "tool_use_id");
            if (!id || json_is_null(id))
                return bad("%s.tool_use_id is required", path);
            if (!json_is_string(id))
                return bad("%s.tool_use_id must be a string", path);
            int is_error = 0;
            char sub[128];
            snprintf(sub, sizeof sub, "%s.is_error", path);
            if ((rc = co__opt_bool(b, "is_error", sub, &is_error)))
                return rc;
            if ((rc = co_chat_request_add_message(req, CO_CHAT_TOOL, &m)) ||
                (rc = co_chat_request_set_str(&m->tool_call_id, json_string_value(id))))
                return rc;
            m->is_error = is_error;
            snprintf(sub, sizeof sub, "%s.content", path);
            if ((rc = result_content(req, m, json_object_get(b, "content"), sub)))
                return rc;
            cur = (size_t)-1;
            continue;
        }
        if (!strcmp(type, "text") || !strcmp(type, "image") || !strcmp(type, "tool_use")) {
            if (cur == (size_t)-1) {
                if ((rc = co_chat_request_add_message(req, CO_CHAT_USER, NULL)))
                    return rc;
                cur = req->n_messages - 1;
            }
            m = &req->messages[cur];
        }
        if (!strcmp(type, "text")) {
            const json_t *t = json_object_get(b, "text");
            if (!json_is_string(t))
                return bad("%s.text must be a string", path);
            if ((rc = co_chat_message_add_text(m, json_string_value(t), json_string_length(t))))
                return rc;
        } else if (!strcmp(type, "image")) {
            if (!user)
                return bad("%s: image blocks are only allowed in user messages", path);
            if ((rc = image_block(m, b, path)))
                return rc;
        } else if (!strcmp(type, "tool_use")) {
            if (user)
                return bad("%s: tool_use blocks are only allowed in assistant messages", path);
            const json_t *id = json_object_get(b, "id"), *name = json_object_get(b, "name");
            const json_t *input = json_object_get(b, "input");
            if (!json_is_string(id))
                return bad("%s.id is required and must be a string", path);
            if (!json_is_string(name))
                return bad("%s.name is required and must be a string", path);
            if (input && !json_is_object(input))
                return bad("%s.input must be an object", path);
            char *args = input ? co__json_text(input) : strdup("{}");
            if (!args)
                return co_error_set(CO_ENOMEM, "out of memory");
            rc = co_chat_message_add_tool_call(m, json_string_value(id), json_string_value(name), args);
            free(args);
            if (rc)
                return rc;
        } else {
            /* document, thinking, redacted_thinking, server tool blocks...: no counterpart */
            if ((rc = co__drop(&req->dropped, b, "messages[].content[].%s", type)))
                return rc;
            continue;
        }
        if ((rc = co__drop_unknown(&req->dropped, b, "messages[].content[].", blk_known)))
            return rc;
    }
    return 0;
}

static int parse_system(co_chat_request *req, const json_t *sys)
{
    int rc;
    if (json_is_string(sys))
        return json_string_length(sys) ? co__append_system(req, json_string_value(sys), "\n\n") : 0;
    if (!json_is_array(sys))
        return bad("system must be a string or an array of text blocks");
    size_t i;
    json_t *b;
    json_array_foreach(sys, i, b) {
        const char *type = json_string_value(json_object_get(b, "type"));
        const json_t *t = json_object_get(b, "text");
        if (!json_is_object(b) || !type || strcmp(type, "text") || !json_is_string(t))
            return bad("system[%zu] must be a text block ({\"type\":\"text\",\"text\":...})", i);
        if ((rc = co__drop(&req->dropped, json_object_get(b, "cache_control"), "system[].cache_control")) ||
            (rc = co__append_system(req, json_string_value(t), "\n\n")))
            return rc;
    }
    return 0;
}

static int parse_tools(co_chat_request *req, const json_t *tools)
{
    int rc;
    if (!json_is_array(tools))
        return bad("tools must be an array");
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        static const char *const known[] = {"type", "name", "description", "input_schema", NULL};
        if (!json_is_object(t))
            return bad("tools[%zu] must be an object", i);
        const char *type = json_string_value(json_object_get(t, "type"));
        if (type && strcmp(type, "custom")) {
            /* server tools (web_search_..., bash_..., text_editor_...) */
            if ((rc = co__drop(&req->dropped, t, "tools[].%s", type)))
                return rc;
            continue;
        }
        const json_t *name = json_object_get(t, "name");
        if (!json_is_string(name) || !json_string_length(name))
            return bad("tools[%zu].name is required and must be a non-empty string", i);
        const json_t *desc = json_object_get(t, "description");
        if (desc && !json_is_null(desc) && !json_is_string(desc))
            return bad("tools[%zu].description must be a string", i);
        const json_t *schema = json_object_get(t, "input_schema");
        if (!json_is_object(schema))
            return bad("tools[%zu].input_schema is required and must be an object", i);
        char *ptext = co__json_text(schema);
        if (!ptext)
            return co_error_set(CO_ENOMEM, "out of memory");
        rc = co_chat_request_add_tool(req, json_string_value(name), json_string_value(desc), ptext);
        free(ptext);
        if (rc || (rc = co__drop_unknown(&req->dropped, t, "tools[].", known)))
            return rc;
    }
    return 0;
}

static int parse_tool_choice(co_chat_request *req, const json_t *tc)
{
    if (!json_is_object(tc))
        return bad("tool_choice must be an object");
    const char *type = json_string_value(json_object_get(tc, "type"));
    if (!type)
        return bad("tool_choice.type is required and must be a string");
    if (!strcmp(type, "auto"))
        req->tool_choice = CO_CHAT_TOOLS_AUTO;
    else if (!strcmp(type, "any"))
        req->tool_choice = CO_CHAT_TOOLS_REQUIRED;
    else if (!strcmp(type, "none"))
        req->tool_choice = CO_CHAT_TOOLS_NONE;
    else if (!strcmp(type, "tool")) {
        const char *name = json_string_value(json_object_get(tc, "name"));
        if (!name)
            return bad("tool_choice.name is required when tool_choice.type is 'tool'");
        req->tool_choice = CO_CHAT_TOOLS_NAMED;
        int rc = co_chat_request_set_str(&req->tool_choice_name, name);
        if (rc)
            return rc;
    } else {
        return bad("tool_choice.type must be one of auto, any, tool, none (got '%.64s')", type);
    }
    const json_t *dp = json_object_get(tc, "disable_parallel_tool_use");
    if (dp && !json_is_null(dp)) {
        if (!json_is_boolean(dp))
            return bad("tool_choice.disable_parallel_tool_use must be a boolean");
        req->parallel_tool_calls = !json_is_true(dp);
    }
    return 0;
}

static const char *const an_known[] = {
    "model", "messages", "system", "max_tokens", "temperature", "top_p", "stop_sequences",
    "stream", "metadata", "tools", "tool_choice", NULL,
};

int co__anthropic_request_parse(co_chat_request *req, json_t *root)
{
    int rc;
    const char *model = NULL;
    const json_t *v;
    if (!json_object_get(root, "model"))
        return bad("model is required");
    if ((rc = co__opt_string(root, "model", "model", &model)))
        return rc;
    if (!model)
        return bad("model must be a string");
    if ((rc = co_chat_request_set_str(&req->model, model)))
        return rc;
    v = json_object_get(root, "max_tokens");
    if (!v || json_is_null(v))
        return bad("max_tokens is required");
    if ((rc = co__opt_posint(root, "max_tokens", "max_tokens", &req->max_tokens)))
        return rc;
    const json_t *msgs = json_object_get(root, "messages");
    if (!msgs)
        return bad("messages is required");
    if (!json_is_array(msgs))
        return bad("messages must be an array");
    if (json_array_size(msgs) == 0)
        return bad("messages must contain at least one message");
    v = json_object_get(root, "system");
    if (v && !json_is_null(v) && (rc = parse_system(req, v)))
        return rc;
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        if ((rc = parse_message(req, m, i)))
            return rc;
    }
    if ((rc = co__opt_number(root, "temperature", "temperature", &req->temperature, &req->has_temperature)) ||
        (rc = co__opt_number(root, "top_p", "top_p", &req->top_p, &req->has_top_p)) ||
        (rc = co__opt_bool(root, "stream", "stream", &req->stream)))
        return rc;
    req->include_usage = 1; /* Anthropic streams always carry usage */
    v = json_object_get(root, "stop_sequences");
    if (v && !json_is_null(v)) {
        if (!json_is_array(v))
            return bad("stop_sequences must be an array of strings");
        json_t *s;
        json_array_foreach(v, i, s) {
            if (!json_is_string(s))
                return bad("stop_sequences[%zu] must be a string", i);
            if ((rc = co_chat_strv_push(&req->stop, json_string_value(s))))
                return rc;
        }
    }
    v = json_object_get(root, "metadata");
    if (v && !json_is_null(v)) {
        static const char *const md_known[] = {"user_id", NULL};
        const char *user = NULL;
        if (!json_is_object(v))
            return bad("metadata must be an object");
        if ((rc = co__opt_string(v, "user_id", "metadata.user_id", &user)) ||
            (rc = co_chat_request_set_str(&req->user, user)) ||
            (rc = co__drop_unknown(&req->dropped, v, "metadata.", md_known)))
            return rc;
    }
    v = json_object_get(root, "tools");
    if (v && !json_is_null(v) && (rc = parse_tools(req, v)))
        return rc;
    v = json_object_get(root, "tool_choice");
    if (v && !json_is_null(v) && (rc = parse_tool_choice(req, v)))
        return rc;
    return co__drop_unknown(&req->dropped, root, "", an_known);
}

/* ---- request: emit -------------------------------------------------------- */

static json_t *image_json(const co_chat_part *p)
{
    int err = 0;
    json_t *b = json_object(), *src = json_object();
    co__jset(&err, b, "type", json_string("image"));
    if (p->data) {
        co__jset(&err, src, "type", json_string("base64"));
        co__jset(&err, src, "media_type", json_string(p->media_type ? p->media_type : "image/png"));
        co__jset(&err, src, "data", json_string(p->data));
    } else {
        co__jset(&err, src, "type", json_string("url"));
        co__jset(&err, src, "url", json_string(p->url ? p->url : ""));
    }
    co__jset(&err, b, "source", src);
    if (err) {
        json_decref(b);
        return NULL;
    }
    return b;
}

static json_t *text_block(const char *text)
{
    int err = 0;
    json_t *b = json_object();
    co__jset(&err, b, "type", json_string("text"));
    co__jset(&err, b, "text", json_string(text));
    if (err) {
        json_decref(b);
        return NULL;
    }
    return b;
}

/* Text (non-empty: Anthropic refuses empty text blocks) and image blocks. */
static void parts_json(int *err, json_t *arr, const co_chat_message *m)
{
    for (size_t k = 0; k < m->n_parts; k++) {
        const co_chat_part *p = &m->parts[k];
        if (p->kind == CO_CHAT_PART_TEXT) {
            if (p->text && *p->text)
                co__jpush(err, arr, text_block(p->text));
        } else {
            co__jpush(err, arr, image_json(p));
        }
    }
}

/* An arguments string as the object Anthropic wants ({} when it is not one). */
static json_t *args_object(const char *args, int *invalid)
{
    json_t *j = args && *args ? json_loads(args, 0, NULL) : NULL;
    if (j && json_is_object(j))
        return j;
    if (args && *args)
        *invalid = 1;
    json_decref(j);
    return json_object();
}

/* A single text block becomes a plain string. */
static void simplify_content(json_t *msgs)
{
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        json_t *c = json_object_get(m, "content");
        json_t *b = json_array_get(c, 0);
        if (json_array_size(c) == 1 && json_object_size(b) == 2 &&
            !strcmp(json_string_value(json_object_get(b, "type")) ? json_string_value(json_object_get(b, "type")) : "", "text")) {
            json_t *t = json_incref(json_object_get(b, "text"));
            if (json_object_set_new(m, "content", t))
                continue; /* out of memory: the block form is as valid */
        }
    }
}

static int all_space(const char *s)
{
    for (; *s; s++)
        if (!isspace((unsigned char)*s))
            return 0;
    return 1;
}

int co__anthropic_request_emit(json_t **out, const co_chat_request *req, const co_chat_emit_opts *o)
{
    int err = 0, rc = 0, invalid = 0;
    json_t *root = json_object(), *msgs = json_array();
    co_chat_strv *dropped = o->dropped;
    json_t *last = NULL;     /* the last user message's content array */
    int last_results = 0;    /* ...and it holds only tool results so far */
    co__jset(&err, root, "model", json_string(req->model ? req->model : ""));
    co__jset(&err, root, "max_tokens",
             json_integer(req->max_tokens > 0 ? req->max_tokens
                                              : o->default_max_tokens > 0 ? o->default_max_tokens
                                                                          : CO_CHAT_DEFAULT_MAX_TOKENS));
    if (req->system && *req->system)
        co__jset(&err, root, "system", json_string(req->system));
    for (size_t i = 0; i < req->n_messages; i++) {
        const co_chat_message *m = &req->messages[i];
        if (m->role == CO_CHAT_TOOL) {
            json_t *b = json_object();
            char *id = co__safe_id(m->tool_call_id);
            co__jset(&err, b, "type", json_string("tool_result"));
            co__jset(&err, b, "tool_use_id", id ? json_string(id) : NULL);
            free(id);
            if (m->n_parts == 1 && m->parts[0].kind == CO_CHAT_PART_TEXT) {
                co__jset(&err, b, "content", json_string(m->parts[0].text ? m->parts[0].text : ""));
            } else if (m->n_parts) {
                json_t *c = json_array();
                parts_json(&err, c, m);
                co__jset(&err, b, "content", c);
            }
            if (m->is_error)
                co__jset(&err, b, "is_error", json_true());
            if (!last || !last_results) {
                json_t *jm = json_object();
                last = json_array();
                co__jset(&err, jm, "role", json_string("user"));
                co__jset(&err, jm, "content", last);
                co__jpush(&err, msgs, jm);
                last_results = 1;
            }
            co__jpush(&err, last, b);
        } else if (m->role == CO_CHAT_USER) {
            json_t *c = json_array();
            parts_json(&err, c, m);
            if (json_array_size(c) == 0) {
                /* Anthropic refuses empty turns: skip it, and say so */
                json_decref(c);
                if ((rc = co__drop(dropped, json_true(), "messages[] (empty, skipped)")))
                    goto done;
                continue;
            }
            if (!last || !last_results) {
                json_t *jm = json_object();
                last = json_array();
                co__jset(&err, jm, "role", json_string("user"));
                co__jset(&err, jm, "content", last);
                co__jpush(&err, msgs, jm);
            }
            last_results = 0;
            json_array_extend(last, c);
            json_decref(c);
        } else {
            json_t *c = json_array();
            parts_json(&err, c, m);
            if (json_array_size(c) == 0 && m->n_tool_calls == 0) {
                json_decref(c);
                if ((rc = co__drop(dropped, json_true(), "messages[] (empty, skipped)")))
                    goto done;
                continue;
            }
            json_t *jm = json_object();
            last = NULL;
            last_results = 0;
            co__jset(&err, jm, "role", json_string("assistant"));
            for (size_t k = 0; k < m->n_tool_calls; k++) {
                const co_chat_tool_call *tc = &m->tool_calls[k];
                json_t *b = json_object();
                char *id = co__safe_id(tc->id);
                co__jset(&err, b, "type", json_string("tool_use"));
                co__jset(&err, b, "id", id ? json_string(id) : NULL);
                free(id);
                co__jset(&err, b, "name", json_string(tc->name ? tc->name : ""));
                co__jset(&err, b, "input", args_object(tc->arguments, &invalid));
                co__jpush(&err, c, b);
            }
            co__jset(&err, jm, "content", c);
            co__jpush(&err, msgs, jm);
        }
    }
    if (json_array_size(msgs) == 0) {
        rc = co_error_set(CO_EPARSE, "no message has content Anthropic can take (all are empty)");
        goto done;
    }
    simplify_content(msgs);
    co__jset(&err, root, "messages", msgs);
    msgs = NULL;
    if (invalid && (rc = co__drop(dropped, json_true(), "messages[].tool_calls[].arguments (not a JSON object)")))
        goto done;
    if (req->n_tools) {
        json_t *tools = json_array();
        for (size_t i = 0; i < req->n_tools; i++) {
            const co_chat_tool *t = &req->tools[i];
            json_t *jt = json_object();
            json_t *schema = t->parameters ? co__jraw(t->parameters) : NULL;
            if (!schema) {
                schema = json_object();
                co__jset(&err, schema, "type", json_string("object"));
                co__jset(&err, schema, "properties", json_object());
            }
            co__jset(&err, jt, "name", json_string(t->name));
            if (t->description)
                co__jset(&err, jt, "description", json_string(t->description));
            co__jset(&err, jt, "input_schema", schema);
            co__jpush(&err, tools, jt);
        }
        co__jset(&err, root, "tools", tools);
        json_t *tc = NULL;
        switch (req->tool_choice) {
        case CO_CHAT_TOOLS_UNSET:
            if (req->parallel_tool_calls == 0) {
                tc = json_object();
                co__jset(&err, tc, "type", json_string("auto"));
            }
            break;
        case CO_CHAT_TOOLS_AUTO:
            tc = json_object();
            co__jset(&err, tc, "type", json_string("auto"));
            break;
        case CO_CHAT_TOOLS_NONE:
            tc = json_object();
            co__jset(&err, tc, "type", json_string("none"));
            break;
        case CO_CHAT_TOOLS_REQUIRED:
            tc = json_object();
            co__jset(&err, tc, "type", json_string("any"));
            break;
        case CO_CHAT_TOOLS_NAMED:
            tc = json_object();
            co__jset(&err, tc, "type", json_string("tool"));
            co__jset(&err, tc, "name", json_string(req->tool_choice_name ? req->tool_choice_name : ""));
            break;
        }
        if (tc && req->parallel_tool_calls >= 0 && req->tool_choice != CO_CHAT_TOOLS_NONE)
            co__jset(&err, tc, "disable_parallel_tool_use", json_boolean(!req->parallel_tool_calls));
        if (tc)
            co__jset(&err, root, "tool_choice", tc);
    }
    if (req->has_temperature) {
        double t = req->temperature;
        if (t > 1) {
            t = 1; /* Anthropic's range is [0, 1]; OpenAI's and Gemini's [0, 2] */
            if ((rc = co__drop(dropped, json_true(), "temperature (above 1, clamped to 1)")))
                goto done;
        }
        co__jset(&err, root, "temperature", json_real(t));
    }
    if (req->has_top_p)
        co__jset(&err, root, "top_p", json_real(req->top_p));
    if (req->stop.n) {
        json_t *stop = json_array();
        for (size_t i = 0; i < req->stop.n; i++) {
            if (all_space(req->stop.v[i])) {
                /* Anthropic rejects whitespace-only stop sequences */
                if ((rc = co__drop(dropped, json_true(), "stop[] (whitespace-only)"))) {
                    json_decref(stop);
                    goto done;
                }
                continue;
            }
            co__jpush(&err, stop, json_string(req->stop.v[i]));
        }
        if (json_array_size(stop))
            co__jset(&err, root, "stop_sequences", stop);
        else
            json_decref(stop);
    }
    if (req->stream)
        co__jset(&err, root, "stream", json_true());
    if (req->user) {
        json_t *md = json_object();
        co__jset(&err, md, "user_id", json_string(req->user));
        co__jset(&err, root, "metadata", md);
    }
    if ((req->format == CO_CHAT_FORMAT_JSON_OBJECT || req->format == CO_CHAT_FORMAT_JSON_SCHEMA) &&
        (rc = co__drop(dropped, json_true(), "response_format")))
        goto done;
    if (req->tool_choice != CO_CHAT_TOOLS_UNSET && !req->n_tools &&
        req->tool_choice != CO_CHAT_TOOLS_NONE && (rc = co__drop(dropped, json_true(), "tool_choice (no tools)")))
        goto done;
done:
    json_decref(msgs);
    if (!rc && !(rc = built(err, "request"))) {
        *out = root;
        return 0;
    }
    json_decref(root);
    return rc;
}

/* ---- responses ------------------------------------------------------------ */

co_chat_finish co__anthropic_finish(const char *s)
{
    if (!s)
        return CO_CHAT_FINISH_NONE;
    if (!strcmp(s, "end_turn") || !strcmp(s, "stop_sequence"))
        return CO_CHAT_FINISH_STOP;
    if (!strcmp(s, "max_tokens") || !strcmp(s, "model_context_window_exceeded"))
        return CO_CHAT_FINISH_LENGTH;
    if (!strcmp(s, "tool_use"))
        return CO_CHAT_FINISH_TOOL_CALLS;
    if (!strcmp(s, "refusal"))
        return CO_CHAT_FINISH_CONTENT_FILTER;
    return CO_CHAT_FINISH_OTHER; /* pause_turn... */
}

static const char *stop_str(co_chat_finish f, const char *raw, co_api api, const char *stop_seq)
{
    switch (f) {
    case CO_CHAT_FINISH_STOP: return stop_seq ? "stop_sequence" : "end_turn";
    case CO_CHAT_FINISH_LENGTH: return "max_tokens";
    case CO_CHAT_FINISH_TOOL_CALLS: return "tool_use";
    case CO_CHAT_FINISH_CONTENT_FILTER: return "refusal";
    default: return api == CO_API_ANTHROPIC && raw ? raw : "end_turn";
    }
}

void co__anthropic_usage(co_chat_usage *u, const json_t *usage)
{
    if (!json_is_object(usage))
        return;
    /* Anthropic's input_tokens exclude cache reads and writes: add them back */
    int64_t in = json_integer_value(json_object_get(usage, "input_tokens"));
    int64_t rd = json_integer_value(json_object_get(usage, "cache_read_input_tokens"));
    int64_t wr = json_integer_value(json_object_get(usage, "cache_creation_input_tokens"));
    memset(u, 0, sizeof *u);
    u->known = 1;
    u->input_tokens = in + rd + wr;
    u->cached_input_tokens = rd;
    u->cache_write_tokens = wr;
    u->output_tokens = json_integer_value(json_object_get(usage, "output_tokens"));
}

int co__anthropic_response_parse(co_chat_response *r, json_t *root)
{
    int rc;
    const json_t *content = json_object_get(root, "content");
    if (!json_is_array(content))
        return bad("response body: content must be an array");
    if ((rc = co_chat_request_set_str(&r->id, json_string_value(json_object_get(root, "id")))) ||
        (rc = co_chat_request_set_str(&r->model, json_string_value(json_object_get(root, "model")))))
        return rc;
    co_buf text;
    co_buf_init(&text, CO_BUF_UNLIMITED);
    int has_text = 0;
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b) {
        const char *type = json_string_value(json_object_get(b, "type"));
        if (!type)
            continue;
        if (!strcmp(type, "text")) {
            const json_t *t = json_object_get(b, "text");
            if (json_is_string(t) && (rc = co_buf_append(&text, json_string_value(t), json_string_length(t))))
                goto done;
            has_text = 1;
        } else if (!strcmp(type, "tool_use")) {
            const char *id = json_string_value(json_object_get(b, "id"));
            const char *name = json_string_value(json_object_get(b, "name"));
            if (!name) {
                rc = bad("response body: content[%zu].name must be a string", i);
                goto done;
            }
            co_chat_tool_call *v = realloc(r->tool_calls, (r->n_tool_calls + 1) * sizeof *v);
            if (!v) {
                rc = co_error_set(CO_ENOMEM, "out of memory");
                goto done;
            }
            r->tool_calls = v;
            co_chat_tool_call *c = &v[r->n_tool_calls++];
            const json_t *input = json_object_get(b, "input");
            c->id = strdup(id ? id : "");
            c->name = strdup(name);
            c->arguments = input ? co__json_text(input) : strdup("{}");
            if (!c->id || !c->name || !c->arguments) {
                rc = co_error_set(CO_ENOMEM, "out of memory");
                goto done;
            }
        }
    }
    if (has_text && !(r->text = co__strndup(text.p ? text.p : "", text.len))) {
        rc = co_error_set(CO_ENOMEM, "out of memory");
        goto done;
    }
    const char *sr = json_string_value(json_object_get(root, "stop_reason"));
    r->finish = co__anthropic_finish(sr);
    r->finish_api = CO_API_ANTHROPIC;
    if ((rc = co_chat_request_set_str(&r->finish_raw, sr)) ||
        (rc = co_chat_request_set_str(&r->stop_sequence, json_string_value(json_object_get(root, "stop_sequence")))))
        goto done;
    co__anthropic_usage(&r->usage, json_object_get(root, "usage"));
done:
    co_buf_free(&text);
    return rc;
}

static json_t *usage_json(const co_chat_usage *u, int with_output_only)
{
    int err = 0;
    json_t *o = json_object();
    int64_t in = u->input_tokens - u->cached_input_tokens - u->cache_write_tokens;
    if (!with_output_only) {
        co__jset(&err, o, "input_tokens", json_integer(in > 0 ? in : 0));
        co__jset(&err, o, "cache_creation_input_tokens", json_integer(u->cache_write_tokens));
        co__jset(&err, o, "cache_read_input_tokens", json_integer(u->cached_input_tokens));
    }
    co__jset(&err, o, "output_tokens", json_integer(u->output_tokens));
    if (err) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *tool_use_json(const char *id, const char *name, const char *args, int *invalid)
{
    int err = 0;
    json_t *b = json_object();
    char *sid = co__safe_id(id);
    co__jset(&err, b, "type", json_string("tool_use"));
    co__jset(&err, b, "id", sid ? json_string(sid) : NULL);
    free(sid);
    co__jset(&err, b, "name", json_string(name ? name : ""));
    co__jset(&err, b, "input", args ? args_object(args, invalid) : json_object());
    if (err) {
        json_decref(b);
        return NULL;
    }
    return b;
}

int co__anthropic_response_emit(json_t **out, const co_chat_response *r)
{
    int err = 0, invalid = 0;
    char *made = r->id ? NULL : co__make_id("msg_");
    json_t *root = json_object(), *content = json_array();
    co__jset(&err, root, "id", json_string(r->id ? r->id : made ? made : "msg_0"));
    free(made);
    co__jset(&err, root, "type", json_string("message"));
    co__jset(&err, root, "role", json_string("assistant"));
    co__jset(&err, root, "model", json_string(r->model ? r->model : ""));
    if (r->text && *r->text)
        co__jpush(&err, content, text_block(r->text));
    for (size_t k = 0; k < r->n_tool_calls; k++)
        co__jpush(&err, content, tool_use_json(r->tool_calls[k].id, r->tool_calls[k].name,
                                               r->tool_calls[k].arguments, &invalid));
    co__jset(&err, root, "content", content);
    co__jset(&err, root, "stop_reason",
             json_string(stop_str(r->finish, r->finish_raw, r->finish_api, r->stop_sequence)));
    co__jset(&err, root, "stop_sequence", co__jstr(r->finish == CO_CHAT_FINISH_STOP ? r->stop_sequence : NULL));
    co__jset(&err, root, "usage", usage_json(&r->usage, 0));
    int rc = built(err, "response");
    if (rc) {
        json_decref(root);
        return rc;
    }
    *out = root;
    return 0;
}

/* ---- errors --------------------------------------------------------------- */

int co__anthropic_error_format(json_t **out, int status, co_chat_err_kind kind, const char *msg)
{
    int err = 0;
    (void)status;
    json_t *root = json_object(), *e = json_object();
    co__jset(&err, root, "type", json_string("error"));
    co__jset(&err, e, "type", json_string(co_chat_err_kind_name(kind)));
    co__jset(&err, e, "message", json_string(msg));
    co__jset(&err, root, "error", e);
    int rc = built(err, "error");
    if (rc) {
        json_decref(root);
        return rc;
    }
    *out = root;
    return 0;
}

void co__anthropic_error_parse(co_chat_error *e, const json_t *root)
{
    const json_t *err = json_object_get(root, "error");
    if (!json_is_object(err))
        return;
    const char *type = json_string_value(json_object_get(err, "type"));
    const json_t *msg = json_object_get(err, "message");
    int k = co__err_kind_of_type(type);
    if (k >= 0)
        e->kind = (co_chat_err_kind)k;
    if (type)
        co__err_copy(e->type, sizeof e->type, type, strlen(type));
    if (json_is_string(msg))
        co__err_copy(e->message, sizeof e->message, json_string_value(msg), json_string_length(msg));
}

/* ---- stream: decode ------------------------------------------------------- */

#define BLK_TEXT (-1)
#define BLK_IGNORED (-2)

static int set_block(co_chat_decoder *d, json_int_t index, int what)
{
    if (index < 0 || index > 1024)
        return co_error_set(CO_EPARSE, "anthropic stream: content block index %lld out of range", (long long)index);
    if ((size_t)index >= d->n_blocks) {
        size_t n = (size_t)index + 1;
        int *v = realloc(d->block_tool, n * sizeof *v);
        if (!v)
            return co_error_set(CO_ENOMEM, "out of memory");
        for (size_t i = d->n_blocks; i < n; i++)
            v[i] = BLK_IGNORED;
        d->block_tool = v;
        d->n_blocks = n;
    }
    d->block_tool[index] = what;
    return 0;
}

static int block_of(const co_chat_decoder *d, json_int_t index)
{
    if (index < 0 || (size_t)index >= d->n_blocks)
        return BLK_IGNORED;
    return d->block_tool[index];
}

int co__anthropic_decode(co_chat_decoder *d, const co_sse_event *sev)
{
    int rc = 0;
    json_error_t jerr;
    json_t *root = json_loadb(sev->data, sev->data_len, 0, &jerr);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return co_error_set(CO_EPARSE, "anthropic stream: event %d (%s) is not a JSON object: %s", d->n_events,
                            sev->event, root ? "wrong type" : jerr.text);
    }
    const char *type = json_string_value(json_object_get(root, "type"));
    if (!type)
        type = sev->event;
    if (!strcmp(type, "message_start")) {
        const json_t *msg = json_object_get(root, "message");
        co_chat_event ev = {
            .kind = CO_CHAT_EV_START,
            .id = json_string_value(json_object_get(msg, "id")),
            .model = json_string_value(json_object_get(msg, "model")),
        };
        if (!ev.id)
            ev.id = "";
        if (!ev.model)
            ev.model = "";
        co__anthropic_usage(&d->usage, json_object_get(msg, "usage"));
        d->usage.output_tokens = 0; /* the final count comes with message_delta */
        d->has_usage = d->usage.known;
        ev.usage = d->usage;
        if (!d->started)
            rc = co__deliver(d, &ev);
    } else if (!strcmp(type, "content_block_start")) {
        json_int_t index = json_integer_value(json_object_get(root, "index"));
        const json_t *cb = json_object_get(root, "content_block");
        const char *bt = json_string_value(json_object_get(cb, "type"));
        if (bt && !strcmp(bt, "text")) {
            if ((rc = set_block(d, index, BLK_TEXT)))
                goto done;
            const json_t *t = json_object_get(cb, "text");
            if (json_is_string(t) && json_string_length(t)) {
                co_chat_event ev = {.kind = CO_CHAT_EV_TEXT, .text = json_string_value(t), .len = json_string_length(t)};
                rc = co__deliver(d, &ev);
            }
        } else if (bt && !strcmp(bt, "tool_use")) {
            int ti = d->n_tools++;
            if ((rc = set_block(d, index, ti)))
                goto done;
            const char *id = json_string_value(json_object_get(cb, "id"));
            const char *name = json_string_value(json_object_get(cb, "name"));
            co_chat_event ev = {.kind = CO_CHAT_EV_TOOL_START, .index = ti, .tool_id = id ? id : "",
                                .tool_name = name ? name : ""};
            if ((rc = co__deliver(d, &ev)))
                goto done;
            const json_t *input = json_object_get(cb, "input");
            if (json_is_object(input) && json_object_size(input)) {
                char *s = co__json_text(input);
                if (!s) {
                    rc = co_error_set(CO_ENOMEM, "out of memory");
                    goto done;
                }
                co_chat_event a = {.kind = CO_CHAT_EV_TOOL_ARGS, .index = ti, .text = s, .len = strlen(s)};
                rc = co__deliver(d, &a);
                free(s);
            }
        } else {
            rc = set_block(d, index, BLK_IGNORED); /* thinking, server tools... */
        }
    } else if (!strcmp(type, "content_block_delta")) {
        json_int_t index = json_integer_value(json_object_get(root, "index"));
        const json_t *delta = json_object_get(root, "delta");
        const char *dt = json_string_value(json_object_get(delta, "type"));
        int blk = block_of(d, index);
        if (dt && !strcmp(dt, "text_delta") && blk == BLK_TEXT) {
            const json_t *t = json_object_get(delta, "text");
            if (json_is_string(t) && json_string_length(t)) {
                co_chat_event ev = {.kind = CO_CHAT_EV_TEXT, .text = json_string_value(t), .len = json_string_length(t)};
                rc = co__deliver(d, &ev);
            }
        } else if (dt && !strcmp(dt, "input_json_delta") && blk >= 0) {
            const json_t *pj = json_object_get(delta, "partial_json");
            if (json_is_string(pj) && json_string_length(pj)) {
                co_chat_event ev = {.kind = CO_CHAT_EV_TOOL_ARGS, .index = blk, .text = json_string_value(pj),
                                    .len = json_string_length(pj)};
                rc = co__deliver(d, &ev);
            }
        }
    } else if (!strcmp(type, "message_delta")) {
        const json_t *delta = json_object_get(root, "delta");
        const char *sr = json_string_value(json_object_get(delta, "stop_reason"));
        const char *seq = json_string_value(json_object_get(delta, "stop_sequence"));
        co_chat_event ev = {.kind = CO_CHAT_EV_FINISH, .finish = co__anthropic_finish(sr), .finish_raw = sr,
                            .finish_api = CO_API_ANTHROPIC, .stop_sequence = seq};
        if (ev.finish == CO_CHAT_FINISH_NONE)
            ev.finish = CO_CHAT_FINISH_STOP;
        if ((rc = co__deliver(d, &ev)))
            goto done;
        const json_t *usage = json_object_get(root, "usage");
        if (json_is_object(usage)) {
            co_chat_event u = {.kind = CO_CHAT_EV_USAGE, .usage = d->usage};
            u.usage.known = 1;
            u.usage.output_tokens = json_integer_value(json_object_get(usage, "output_tokens"));
            /* newer API versions repeat the input side here: it wins when present */
            if (json_object_get(usage, "input_tokens")) {
                co_chat_usage full;
                co__anthropic_usage(&full, usage);
                full.output_tokens = u.usage.output_tokens;
                u.usage = full;
            }
            d->usage = u.usage;
            rc = co__deliver(d, &u);
        }
    } else if (!strcmp(type, "message_stop")) {
        co_chat_event ev = {.kind = CO_CHAT_EV_END};
        rc = co__deliver(d, &ev);
    } else if (!strcmp(type, "error")) {
        co_chat_error e;
        memset(&e, 0, sizeof e);
        e.kind = CO_CHAT_ERR_API;
        co__anthropic_error_parse(&e, root);
        if (!e.message[0])
            snprintf(e.message, sizeof e.message, "upstream stream error");
        co_chat_event ev = {.kind = CO_CHAT_EV_ERROR, .error = &e};
        rc = co__deliver(d, &ev);
    }
    /* ping, content_block_stop and unknown events carry nothing */
done:
    json_decref(root);
    return rc;
}

/* ---- stream: encode ------------------------------------------------------- */

static int write_ev(co_buf *out, const char *name, json_t *j, int err)
{
    int rc = built(err, "stream event");
    if (!rc)
        rc = co__sse_write(out, name, j, "\n\n");
    json_decref(j);
    return rc;
}

static int close_block(co_chat_encoder *e, co_buf *out)
{
    if (e->open_block < 0)
        return 0;
    int err = 0;
    json_t *j = json_object();
    co__jset(&err, j, "type", json_string("content_block_stop"));
    co__jset(&err, j, "index", json_integer(e->open_block));
    e->open_block = -1;
    e->open_tool = -1;
    return write_ev(out, "content_block_stop", j, err);
}

static int open_block(co_chat_encoder *e, co_buf *out, json_t *cb, int tool)
{
    int err = 0;
    json_t *j = json_object();
    e->open_block = e->n_blocks++;
    e->open_tool = tool;
    co__jset(&err, j, "type", json_string("content_block_start"));
    co__jset(&err, j, "index", json_integer(e->open_block));
    co__jset(&err, j, "content_block", cb);
    return write_ev(out, "content_block_start", j, err);
}

static int delta_ev(co_chat_encoder *e, co_buf *out, const char *dtype, const char *key, const char *s, size_t n)
{
    int err = 0;
    json_t *j = json_object(), *d = json_object();
    co__jset(&err, j, "type", json_string("content_block_delta"));
    co__jset(&err, j, "index", json_integer(e->open_block));
    co__jset(&err, d, "type", json_string(dtype));
    co__jset(&err, d, key, json_stringn(s, n));
    co__jset(&err, j, "delta", d);
    return write_ev(out, "content_block_delta", j, err);
}

int co__anthropic_encode(co_chat_encoder *e, co_buf *out, const co_chat_event *ev)
{
    int err = 0, rc = 0;
    json_t *j, *cb;
    co__enc_tool *t;
    switch (ev->kind) {
    case CO_CHAT_EV_START: {
        if (!e->id && !(e->id = co__make_id("msg_")))
            return co_error_set(CO_ENOMEM, "out of memory");
        json_t *msg = json_object();
        j = json_object();
        co__jset(&err, j, "type", json_string("message_start"));
        co__jset(&err, msg, "id", json_string(e->id));
        co__jset(&err, msg, "type", json_string("message"));
        co__jset(&err, msg, "role", json_string("assistant"));
        co__jset(&err, msg, "model", json_string(e->model ? e->model : ""));
        co__jset(&err, msg, "content", json_array());
        co__jset(&err, msg, "stop_reason", json_null());
        co__jset(&err, msg, "stop_sequence", json_null());
        co__jset(&err, msg, "usage", usage_json(&e->start_usage, 0));
        co__jset(&err, j, "message", msg);
        if ((rc = write_ev(out, "message_start", j, err)))
            return rc;
        j = json_object();
        co__jset(&err, j, "type", json_string("ping"));
        return write_ev(out, "ping", j, err);
    }
    case CO_CHAT_EV_TEXT:
        if (!ev->len)
            return 0;
        if (e->open_block < 0 || e->open_tool >= 0) {
            if ((rc = close_block(e, out)))
                return rc;
            cb = json_object();
            co__jset(&err, cb, "type", json_string("text"));
            co__jset(&err, cb, "text", json_string(""));
            if (err) {
                json_decref(cb);
                return built(err, "stream event");
            }
            if ((rc = open_block(e, out, cb, -1)))
                return rc;
        }
        return delta_ev(e, out, "text_delta", "text", ev->text, ev->len);
    case CO_CHAT_EV_TOOL_START:
        if ((rc = co__enc_tool_add(e, ev, &t)) || (rc = close_block(e, out)))
            return rc;
        t->block = e->n_blocks;
        cb = tool_use_json(ev->tool_id, ev->tool_name, NULL, &err);
        if (!cb)
            return built(1, "stream event");
        return open_block(e, out, cb, ev->index);
    case CO_CHAT_EV_TOOL_ARGS:
        if (!ev->len)
            return 0;
        t = co__enc_tool_get(e, ev->index);
        if (!t)
            return co_error_set(CO_EPARSE, "arguments for tool call %d before its start", ev->index);
        if (e->open_tool != ev->index)
            return co_error_set(CO_EPARSE, "arguments for tool call %d arrived after another content block began "
                                           "(interleaved tool calls cannot be re-streamed to an Anthropic client)",
                                ev->index);
        t->has_args = 1;
        return delta_ev(e, out, "input_json_delta", "partial_json", ev->text, ev->len);
    case CO_CHAT_EV_FINISH:
        return close_block(e, out);
    case CO_CHAT_EV_USAGE:
        return 0; /* sent with message_delta */
    case CO_CHAT_EV_END: {
        if ((rc = close_block(e, out)))
            return rc;
        json_t *d = json_object();
        co_chat_finish f = e->finished ? e->finish : CO_CHAT_FINISH_STOP;
        j = json_object();
        co__jset(&err, j, "type", json_string("message_delta"));
        co__jset(&err, d, "stop_reason", json_string(stop_str(f, e->finish_raw, e->finish_api, e->stop_sequence)));
        co__jset(&err, d, "stop_sequence", co__jstr(f == CO_CHAT_FINISH_STOP ? e->stop_sequence : NULL));
        co__jset(&err, j, "delta", d);
        co__jset(&err, j, "usage", usage_json(e->has_usage ? &e->usage : &e->start_usage, 0));
        if ((rc = write_ev(out, "message_delta", j, err)))
            return rc;
        j = json_object();
        co__jset(&err, j, "type", json_string("message_stop"));
        return write_ev(out, "message_stop", j, err);
    }
    case CO_CHAT_EV_ERROR: {
        const co_chat_error *x = ev->error;
        if ((rc = co__anthropic_error_format(&j, 0, x ? x->kind : CO_CHAT_ERR_API, x ? x->message : "upstream error")))
            return rc;
        return write_ev(out, "error", j, 0);
    }
    }
    return 0;
}
