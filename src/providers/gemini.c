/* The Gemini generateContent wire format <-> the canonical chat model:
 * GenerateContentRequest bodies (camelCase or snake_case keys), responses,
 * streamGenerateContent?alt=sse streams (each event a whole
 * GenerateContentResponse) and {"error":{code,message,status}} bodies.
 * The model and the stream flag are in the URL, not the body. */
#define CO__CHAT_INTERNAL 1
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cutover/chat.h"
#include "cutover/error.h"

#define bad co__chat_bad

static int built(int err, const char *what) { return co__chat_built(err, "Gemini", what); }

/* Proto JSON accepts both spellings. */
static const json_t *get2(const json_t *o, const char *camel, const char *snake)
{
    const json_t *v = json_object_get(o, camel);
    return v ? v : json_object_get(o, snake);
}

/* The id a function call gets when Gemini gives none: stable for a response. */
static char *call_id(const char *given, const char *resp_id, int k)
{
    char *s = NULL;
    if (given && *given)
        return strdup(given);
    if (resp_id && *resp_id ? asprintf(&s, "call_%s_%d", resp_id, k) < 0 : asprintf(&s, "call_%d", k) < 0)
        return NULL;
    return s;
}

/* ---- request: parse ------------------------------------------------------- */

/* The text a functionResponse.response carries. */
static char *response_text(const json_t *resp, int *is_error)
{
    if (json_is_object(resp) && json_object_size(resp) == 1) {
        const char *keys[] = {"content", "result", "output", "error"};
        for (size_t i = 0; i < 4; i++) {
            const json_t *v = json_object_get(resp, keys[i]);
            if (json_is_string(v)) {
                *is_error = i == 3;
                return strdup(json_string_value(v));
            }
        }
    }
    return resp ? co__json_text(resp) : strdup("");
}

/* The latest earlier call named `name` (for a functionResponse without id). */
static const char *find_call(const co_chat_request *req, const char *name)
{
    for (size_t i = req->n_messages; i-- > 0;) {
        const co_chat_message *m = &req->messages[i];
        for (size_t k = m->n_tool_calls; k-- > 0;)
            if (!strcmp(m->tool_calls[k].name, name))
                return m->tool_calls[k].id;
    }
    return NULL;
}

static int media_part(co_chat_request *req, co_chat_message *m, const json_t *p, const char *path, int inline_data)
{
    const json_t *d = inline_data ? get2(p, "inlineData", "inline_data") : get2(p, "fileData", "file_data");
    if (!json_is_object(d))
        return bad("%s.%s must be an object", path, inline_data ? "inlineData" : "fileData");
    const char *mime = json_string_value(get2(d, "mimeType", "mime_type"));
    const char *val = json_string_value(inline_data ? json_object_get(d, "data") : get2(d, "fileUri", "file_uri"));
    if (!val)
        return bad("%s.%s.%s is required and must be a string", path, inline_data ? "inlineData" : "fileData",
                   inline_data ? "data" : "fileUri");
    if (inline_data && !mime)
        return bad("%s.inlineData.mimeType is required and must be a string", path);
    if (mime && strncmp(mime, "image/", 6))
        return co__drop(&req->dropped, d, "contents[].parts[].%s (%s)", inline_data ? "inlineData" : "fileData", mime);
    return inline_data ? co_chat_message_add_image_data(m, mime, val) : co_chat_message_add_image_url(m, val, mime);
}

static int parse_content(co_chat_request *req, const json_t *c, size_t i, int system, co_buf *sys)
{
    char path[96];
    int rc;
    if (!json_is_object(c))
        return system ? bad("systemInstruction must be an object") : bad("contents[%zu] must be an object", i);
    const json_t *rv = json_object_get(c, "role");
    const char *role = json_string_value(rv);
    if (rv && !json_is_null(rv) && !role)
        return bad("contents[%zu].role must be a string", i);
    int model = role && !strcmp(role, "model");
    if (!system && role && !model && strcmp(role, "user") && strcmp(role, "function"))
        return bad("contents[%zu].role must be 'user' or 'model' (got '%.64s')", i, role);
    const json_t *parts = json_object_get(c, "parts");
    if (!json_is_array(parts))
        return system ? bad("systemInstruction.parts must be an array") : bad("contents[%zu].parts must be an array", i);
    size_t cur = (size_t)-1;
    if (model && !system) {
        if ((rc = co_chat_request_add_message(req, CO_CHAT_ASSISTANT, NULL)))
            return rc;
        cur = req->n_messages - 1;
    }
    size_t j;
    json_t *p;
    json_array_foreach(parts, j, p) {
        if (system)
            snprintf(path, sizeof path, "systemInstruction.parts[%zu]", j);
        else
            snprintf(path, sizeof path, "contents[%zu].parts[%zu]", i, j);
        if (!json_is_object(p))
            return bad("%s must be an object", path);
        const json_t *text = json_object_get(p, "text");
        const json_t *fc = get2(p, "functionCall", "function_call");
        const json_t *fr = get2(p, "functionResponse", "function_response");
        if (text && !json_is_string(text))
            return bad("%s.text must be a string", path);
        if (json_is_true(json_object_get(p, "thought"))) {
            if ((rc = co__drop(&req->dropped, p, "contents[].parts[].thought")))
                return rc;
            continue;
        }
        if (system) {
            if (!text) {
                if ((rc = co__drop(&req->dropped, p, "systemInstruction.parts[] (not text)")))
                    return rc;
                continue;
            }
            if ((sys->len && (rc = co_buf_puts(sys, "\n"))) ||
                (rc = co_buf_append(sys, json_string_value(text), json_string_length(text))))
                return rc;
            continue;
        }
        if (fr) {
            if (model)
                return bad("%s.functionResponse is only allowed in user contents", path);
            const char *name = json_string_value(json_object_get(fr, "name"));
            if (!name)
                return bad("%s.functionResponse.name is required and must be a string", path);
            const char *id = json_string_value(json_object_get(fr, "id"));
            if (!id || !*id)
                id = find_call(req, name);
            if (!id)
                id = name; /* answers no earlier call: the name is all there is to link it */
            co_chat_message *m;
            int is_error = 0;
            char *t = response_text(json_object_get(fr, "response"), &is_error);
            if (!t)
                return co_error_set(CO_ENOMEM, "out of memory");
            if ((rc = co_chat_request_add_message(req, CO_CHAT_TOOL, &m)) ||
                (rc = co_chat_request_set_str(&m->tool_call_id, id)) ||
                (rc = co_chat_message_add_text(m, t, strlen(t)))) {
                free(t);
                return rc;
            }
            free(t);
            m->is_error = is_error;
            cur = (size_t)-1;
            continue;
        }
        if (cur == (size_t)-1) {
            if ((rc = co_chat_request_add_message(req, CO_CHAT_USER, NULL)))
                return rc;
            cur = req->n_messages - 1;
        }
        co_chat_message *m = &req->messages[cur];
        if (text) {
            if ((rc = co_chat_message_add_text(m, json_string_value(text), json_string_length(text))))
                return rc;
        } else if (fc) {
            if (!model)
                return bad("%s.functionCall is only allowed in model contents", path);
            const char *name = json_string_value(json_object_get(fc, "name"));
            if (!name)
                return bad("%s.functionCall.name is required and must be a string", path);
            const json_t *args = json_object_get(fc, "args");
            char *a = args ? co__json_text(args) : strdup("{}");
            char prefix[32];
            snprintf(prefix, sizeof prefix, "c%zu", i);
            char *id = call_id(json_string_value(json_object_get(fc, "id")), prefix, (int)m->n_tool_calls);
            if (!a || !id) {
                free(a);
                free(id);
                return co_error_set(CO_ENOMEM, "out of memory");
            }
            rc = co_chat_message_add_tool_call(m, id, name, a);
            free(a);
            free(id);
            if (rc)
                return rc;
        } else if (get2(p, "inlineData", "inline_data")) {
            if ((rc = media_part(req, m, p, path, 1)))
                return rc;
        } else if (get2(p, "fileData", "file_data")) {
            if ((rc = media_part(req, m, p, path, 0)))
                return rc;
        } else {
            const char *key = NULL;
            json_t *v;
            json_object_foreach((json_t *)p, key, v) {
                break;
            }
            if ((rc = co__drop(&req->dropped, p, "contents[].parts[].%s", key ? key : "?")))
                return rc;
        }
    }
    return 0;
}

static int parse_gen_config(co_chat_request *req, const json_t *gc)
{
    int rc;
    if (!json_is_object(gc))
        return bad("generationConfig must be an object");
    static const char *const known[] = {
        "temperature", "topP", "top_p", "maxOutputTokens", "max_output_tokens", "stopSequences", "stop_sequences",
        "candidateCount", "candidate_count", "responseMimeType", "response_mime_type", "responseSchema",
        "response_schema", "responseJsonSchema", "response_json_schema", NULL,
    };
    if ((rc = co__opt_number(gc, "temperature", "generationConfig.temperature", &req->temperature, &req->has_temperature)) ||
        (rc = co__opt_number(gc, json_object_get(gc, "topP") ? "topP" : "top_p", "generationConfig.topP", &req->top_p,
                             &req->has_top_p)) ||
        (rc = co__opt_posint(gc, json_object_get(gc, "maxOutputTokens") ? "maxOutputTokens" : "max_output_tokens",
                             "generationConfig.maxOutputTokens", &req->max_tokens)))
        return rc;
    const json_t *stop = get2(gc, "stopSequences", "stop_sequences");
    if (stop && !json_is_null(stop)) {
        if (!json_is_array(stop))
            return bad("generationConfig.stopSequences must be an array of strings");
        size_t i;
        json_t *s;
        json_array_foreach(stop, i, s) {
            if (!json_is_string(s))
                return bad("generationConfig.stopSequences[%zu] must be a string", i);
            if ((rc = co_chat_strv_push(&req->stop, json_string_value(s))))
                return rc;
        }
    }
    const json_t *cc = get2(gc, "candidateCount", "candidate_count");
    if (cc && json_integer_value(cc) != 1 && (rc = co__drop(&req->dropped, cc, "generationConfig.candidateCount")))
        return rc;
    const char *mime = json_string_value(get2(gc, "responseMimeType", "response_mime_type"));
    const json_t *schema = get2(gc, "responseJsonSchema", "response_json_schema");
    if (!schema)
        schema = get2(gc, "responseSchema", "response_schema");
    if (schema && !json_is_null(schema)) {
        if (!json_is_object(schema))
            return bad("generationConfig.responseJsonSchema must be an object");
        req->format = CO_CHAT_FORMAT_JSON_SCHEMA;
        if (!(req->format_schema = co__json_text(schema)))
            return co_error_set(CO_ENOMEM, "out of memory");
    } else if (mime && !strcmp(mime, "application/json")) {
        req->format = CO_CHAT_FORMAT_JSON_OBJECT;
    } else if (mime && !strcmp(mime, "text/plain")) {
        req->format = CO_CHAT_FORMAT_TEXT;
    } else if (mime && (rc = co__drop(&req->dropped, json_true(), "generationConfig.responseMimeType"))) {
        return rc;
    }
    return co__drop_unknown(&req->dropped, gc, "generationConfig.", known);
}

static int parse_tools(co_chat_request *req, const json_t *tools)
{
    int rc;
    if (!json_is_array(tools))
        return bad("tools must be an array");
    size_t i, k;
    json_t *t, *fd;
    json_array_foreach(tools, i, t) {
        static const char *const known[] = {"functionDeclarations", "function_declarations", NULL};
        if (!json_is_object(t))
            return bad("tools[%zu] must be an object", i);
        const json_t *decls = get2(t, "functionDeclarations", "function_declarations");
        if (decls && !json_is_array(decls))
            return bad("tools[%zu].functionDeclarations must be an array", i);
        json_array_foreach(decls, k, fd) {
            const json_t *name = json_object_get(fd, "name");
            if (!json_is_string(name) || !json_string_length(name))
                return bad("tools[%zu].functionDeclarations[%zu].name is required and must be a non-empty string", i, k);
            const json_t *desc = json_object_get(fd, "description");
            if (desc && !json_is_null(desc) && !json_is_string(desc))
                return bad("tools[%zu].functionDeclarations[%zu].description must be a string", i, k);
            const json_t *params = get2(fd, "parametersJsonSchema", "parameters_json_schema");
            if (!params)
                params = json_object_get(fd, "parameters");
            if (params && !json_is_null(params) && !json_is_object(params))
                return bad("tools[%zu].functionDeclarations[%zu].parameters must be an object", i, k);
            char *ptext = json_is_object(params) ? co__json_text(params) : NULL;
            if (json_is_object(params) && !ptext)
                return co_error_set(CO_ENOMEM, "out of memory");
            rc = co_chat_request_add_tool(req, json_string_value(name), json_string_value(desc), ptext);
            free(ptext);
            if (rc)
                return rc;
        }
        if ((rc = co__drop_unknown(&req->dropped, t, "tools[].", known)))
            return rc;
    }
    return 0;
}

static int parse_tool_config(co_chat_request *req, const json_t *tc)
{
    if (!json_is_object(tc))
        return bad("toolConfig must be an object");
    const json_t *fcc = get2(tc, "functionCallingConfig", "function_calling_config");
    if (!fcc)
        return 0;
    if (!json_is_object(fcc))
        return bad("toolConfig.functionCallingConfig must be an object");
    const char *mode = json_string_value(json_object_get(fcc, "mode"));
    const json_t *allowed = get2(fcc, "allowedFunctionNames", "allowed_function_names");
    if (!mode || !strcmp(mode, "MODE_UNSPECIFIED"))
        return 0;
    if (!strcmp(mode, "AUTO") || !strcmp(mode, "VALIDATED"))
        req->tool_choice = CO_CHAT_TOOLS_AUTO;
    else if (!strcmp(mode, "NONE"))
        req->tool_choice = CO_CHAT_TOOLS_NONE;
    else if (!strcmp(mode, "ANY")) {
        req->tool_choice = CO_CHAT_TOOLS_REQUIRED;
        if (json_array_size(allowed) == 1 && json_is_string(json_array_get(allowed, 0))) {
            req->tool_choice = CO_CHAT_TOOLS_NAMED;
            return co_chat_request_set_str(&req->tool_choice_name, json_string_value(json_array_get(allowed, 0)));
        }
    } else {
        return bad("toolConfig.functionCallingConfig.mode must be AUTO, ANY, NONE or VALIDATED (got '%.64s')", mode);
    }
    if (json_array_size(allowed))
        return co__drop(&req->dropped, allowed, "toolConfig.functionCallingConfig.allowedFunctionNames");
    return 0;
}

static const char *const gm_known[] = {
    "contents", "systemInstruction", "system_instruction", "generationConfig", "generation_config", "tools",
    "toolConfig", "tool_config", "model", NULL,
};

int co__gemini_request_parse(co_chat_request *req, json_t *root)
{
    int rc = 0;
    co_buf sys;
    co_buf_init(&sys, CO_BUF_UNLIMITED);
    const json_t *contents = json_object_get(root, "contents");
    const json_t *v;
    if (!contents) {
        rc = bad("contents is required");
        goto done;
    }
    if (!json_is_array(contents)) {
        rc = bad("contents must be an array");
        goto done;
    }
    if (json_array_size(contents) == 0) {
        rc = bad("contents must contain at least one content");
        goto done;
    }
    if (!req->model) {
        const char *model = json_string_value(json_object_get(root, "model")); /* Vertex batch style */
        if (model && (rc = co_chat_request_set_str(&req->model, strncmp(model, "models/", 7) ? model : model + 7)))
            goto done;
    }
    v = get2(root, "systemInstruction", "system_instruction");
    if (json_is_string(v)) {
        if ((rc = co__append_system(req, json_string_value(v), "\n\n")))
            goto done;
    } else if (v && !json_is_null(v)) {
        if ((rc = parse_content(req, v, 0, 1, &sys)))
            goto done;
        if (sys.len && (rc = co__append_system(req, sys.p, "\n\n")))
            goto done;
    }
    size_t i;
    json_t *c;
    json_array_foreach(contents, i, c) {
        if (!json_is_object(c)) {
            rc = bad("contents[%zu] must be an object", i);
            goto done;
        }
        if ((rc = parse_content(req, c, i, 0, NULL)))
            goto done;
    }
    v = get2(root, "generationConfig", "generation_config");
    if (v && !json_is_null(v) && (rc = parse_gen_config(req, v)))
        goto done;
    v = json_object_get(root, "tools");
    if (v && !json_is_null(v) && (rc = parse_tools(req, v)))
        goto done;
    v = get2(root, "toolConfig", "tool_config");
    if (v && !json_is_null(v) && (rc = parse_tool_config(req, v)))
        goto done;
    rc = co__drop_unknown(&req->dropped, root, "", gm_known);
done:
    co_buf_free(&sys);
    return rc;
}

/* ---- request: emit -------------------------------------------------------- */

static json_t *text_part(const char *s)
{
    json_t *p = json_object();
    int err = 0;
    co__jset(&err, p, "text", json_string(s ? s : ""));
    if (err) {
        json_decref(p);
        return NULL;
    }
    return p;
}

static const char *guess_mime(const char *url)
{
    const char *dot = url ? strrchr(url, '.') : NULL;
    if (dot && (!strcasecmp(dot, ".png")))
        return "image/png";
    if (dot && (!strcasecmp(dot, ".gif")))
        return "image/gif";
    if (dot && (!strcasecmp(dot, ".webp")))
        return "image/webp";
    return "image/jpeg";
}

static json_t *image_part(const co_chat_part *p)
{
    int err = 0;
    json_t *o = json_object(), *d = json_object();
    if (p->data) {
        co__jset(&err, d, "mimeType", json_string(p->media_type ? p->media_type : "image/png"));
        co__jset(&err, d, "data", json_string(p->data));
        co__jset(&err, o, "inlineData", d);
    } else {
        co__jset(&err, d, "mimeType", json_string(p->media_type ? p->media_type : guess_mime(p->url)));
        co__jset(&err, d, "fileUri", json_string(p->url ? p->url : ""));
        co__jset(&err, o, "fileData", d);
    }
    if (err) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* An arguments string as an object ({} when it is not one). */
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

/* A tool result as the Struct functionResponse.response wants. */
static json_t *result_struct(const co_chat_message *m)
{
    char *t = NULL;
    if (co_chat_message_text(&t, m, "\n"))
        return NULL;
    json_t *j = !m->is_error ? json_loads(t, 0, NULL) : NULL;
    if (j && json_is_object(j)) {
        free(t);
        return j;
    }
    json_decref(j);
    json_t *o = json_object();
    int err = 0;
    co__jset(&err, o, m->is_error ? "error" : "content", json_string(t));
    free(t);
    if (err) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static const char *call_name(const co_chat_request *req, size_t before, const char *id)
{
    for (size_t i = before; i-- > 0;) {
        const co_chat_message *m = &req->messages[i];
        for (size_t k = 0; k < m->n_tool_calls; k++)
            if (id && !strcmp(m->tool_calls[k].id, id))
                return m->tool_calls[k].name;
    }
    return NULL;
}

int co__gemini_request_emit(json_t **out, const co_chat_request *req, const co_chat_emit_opts *o)
{
    int err = 0, rc = 0, invalid = 0;
    json_t *root = json_object(), *contents = json_array();
    json_t *results = NULL; /* parts of the current run of tool results */
    co_chat_strv *dropped = o->dropped;
    for (size_t i = 0; i < req->n_messages; i++) {
        const co_chat_message *m = &req->messages[i];
        if (m->role == CO_CHAT_TOOL) {
            if (!results) {
                json_t *c = json_object();
                results = json_array();
                co__jset(&err, c, "role", json_string("user"));
                co__jset(&err, c, "parts", results);
                co__jpush(&err, contents, c);
            }
            const char *name = call_name(req, i, m->tool_call_id);
            json_t *p = json_object(), *fr = json_object();
            co__jset(&err, fr, "name", json_string(name ? name : m->tool_call_id ? m->tool_call_id : ""));
            co__jset(&err, fr, "response", result_struct(m));
            co__jset(&err, p, "functionResponse", fr);
            co__jpush(&err, results, p);
            for (size_t k = 0; k < m->n_parts; k++)
                if (m->parts[k].kind == CO_CHAT_PART_IMAGE &&
                    (rc = co__drop(dropped, json_true(), "messages[].tool_result.image")))
                    goto done;
            continue;
        }
        json_t *c, *parts = json_array();
        for (size_t k = 0; k < m->n_parts; k++) {
            const co_chat_part *p = &m->parts[k];
            if (p->kind == CO_CHAT_PART_TEXT) {
                if (p->text && *p->text)
                    co__jpush(&err, parts, text_part(p->text));
            } else {
                co__jpush(&err, parts, image_part(p));
            }
        }
        for (size_t k = 0; k < m->n_tool_calls; k++) {
            json_t *p = json_object(), *fc = json_object();
            co__jset(&err, fc, "name", json_string(m->tool_calls[k].name));
            co__jset(&err, fc, "args", args_object(m->tool_calls[k].arguments, &invalid));
            co__jset(&err, p, "functionCall", fc);
            co__jpush(&err, parts, p);
        }
        if (json_array_size(parts) == 0) {
            /* Gemini refuses contents without parts: skip it, and say so */
            json_decref(parts);
            if ((rc = co__drop(dropped, json_true(), "messages[] (empty, skipped)")))
                goto done;
            continue;
        }
        results = NULL;
        c = json_object();
        co__jset(&err, c, "role", json_string(m->role == CO_CHAT_USER ? "user" : "model"));
        co__jset(&err, c, "parts", parts);
        co__jpush(&err, contents, c);
    }
    if (json_array_size(contents) == 0) {
        rc = co_error_set(CO_EPARSE, "no message has content Gemini can take (all are empty)");
        goto done;
    }
    co__jset(&err, root, "contents", contents);
    contents = NULL;
    if (invalid && (rc = co__drop(dropped, json_true(), "messages[].tool_calls[].arguments (not a JSON object)")))
        goto done;
    if (req->system && *req->system) {
        json_t *si = json_object(), *parts = json_array();
        co__jpush(&err, parts, text_part(req->system));
        co__jset(&err, si, "parts", parts);
        co__jset(&err, root, "systemInstruction", si);
    }
    if (req->n_tools) {
        json_t *tools = json_array(), *t = json_object(), *decls = json_array();
        for (size_t i = 0; i < req->n_tools; i++) {
            json_t *fd = json_object();
            co__jset(&err, fd, "name", json_string(req->tools[i].name));
            if (req->tools[i].description)
                co__jset(&err, fd, "description", json_string(req->tools[i].description));
            if (req->tools[i].parameters)
                co__jset(&err, fd, "parametersJsonSchema", co__jraw(req->tools[i].parameters));
            co__jpush(&err, decls, fd);
        }
        co__jset(&err, t, "functionDeclarations", decls);
        co__jpush(&err, tools, t);
        co__jset(&err, root, "tools", tools);
        if (req->tool_choice != CO_CHAT_TOOLS_UNSET) {
            json_t *tc = json_object(), *fcc = json_object();
            const char *mode = req->tool_choice == CO_CHAT_TOOLS_AUTO   ? "AUTO"
                               : req->tool_choice == CO_CHAT_TOOLS_NONE ? "NONE"
                                                                        : "ANY";
            co__jset(&err, fcc, "mode", json_string(mode));
            if (req->tool_choice == CO_CHAT_TOOLS_NAMED) {
                json_t *names = json_array();
                co__jpush(&err, names, json_string(req->tool_choice_name ? req->tool_choice_name : ""));
                co__jset(&err, fcc, "allowedFunctionNames", names);
            }
            co__jset(&err, tc, "functionCallingConfig", fcc);
            co__jset(&err, root, "toolConfig", tc);
        }
        if (req->parallel_tool_calls == 0 && (rc = co__drop(dropped, json_true(), "parallel_tool_calls")))
            goto done;
    }
    json_t *gc = json_object();
    if (req->has_temperature)
        co__jset(&err, gc, "temperature", json_real(req->temperature));
    if (req->has_top_p)
        co__jset(&err, gc, "topP", json_real(req->top_p));
    if (req->max_tokens > 0)
        co__jset(&err, gc, "maxOutputTokens", json_integer(req->max_tokens));
    if (req->stop.n) {
        json_t *stop = json_array();
        for (size_t i = 0; i < req->stop.n; i++)
            co__jpush(&err, stop, json_string(req->stop.v[i]));
        co__jset(&err, gc, "stopSequences", stop);
    }
    if (req->format == CO_CHAT_FORMAT_JSON_OBJECT || req->format == CO_CHAT_FORMAT_JSON_SCHEMA)
        co__jset(&err, gc, "responseMimeType", json_string("application/json"));
    if (req->format == CO_CHAT_FORMAT_JSON_SCHEMA && req->format_schema)
        co__jset(&err, gc, "responseJsonSchema", co__jraw(req->format_schema));
    if (json_object_size(gc))
        co__jset(&err, root, "generationConfig", gc);
    else
        json_decref(gc);
    if (req->user && (rc = co__drop(dropped, json_true(), "user")))
        goto done;
done:
    json_decref(contents);
    if (!rc && !(rc = built(err, "request"))) {
        *out = root;
        return 0;
    }
    json_decref(root);
    return rc;
}

/* ---- responses ------------------------------------------------------------ */

co_chat_finish co__gemini_finish(const char *s)
{
    if (!s || !strcmp(s, "FINISH_REASON_UNSPECIFIED"))
        return CO_CHAT_FINISH_NONE;
    if (!strcmp(s, "STOP"))
        return CO_CHAT_FINISH_STOP;
    if (!strcmp(s, "MAX_TOKENS"))
        return CO_CHAT_FINISH_LENGTH;
    if (!strcmp(s, "SAFETY") || !strcmp(s, "RECITATION") || !strcmp(s, "BLOCKLIST") ||
        !strcmp(s, "PROHIBITED_CONTENT") || !strcmp(s, "SPII") || !strcmp(s, "IMAGE_SAFETY"))
        return CO_CHAT_FINISH_CONTENT_FILTER;
    if (!strcmp(s, "MALFORMED_FUNCTION_CALL") || !strcmp(s, "UNEXPECTED_TOOL_CALL"))
        return CO_CHAT_FINISH_ERROR;
    return CO_CHAT_FINISH_OTHER; /* LANGUAGE, OTHER... */
}

static const char *finish_str(co_chat_finish f, const char *raw, co_api api)
{
    switch (f) {
    case CO_CHAT_FINISH_NONE:
    case CO_CHAT_FINISH_STOP:
    case CO_CHAT_FINISH_TOOL_CALLS: return "STOP";
    case CO_CHAT_FINISH_LENGTH: return "MAX_TOKENS";
    case CO_CHAT_FINISH_CONTENT_FILTER: return api == CO_API_GEMINI && raw ? raw : "SAFETY";
    default: return api == CO_API_GEMINI && raw ? raw : "OTHER";
    }
}

void co__gemini_usage(co_chat_usage *u, const json_t *usage)
{
    if (!json_is_object(usage))
        return;
    memset(u, 0, sizeof *u);
    u->known = 1;
    /* promptTokenCount includes the cached part; thoughts are billed as output */
    u->input_tokens = json_integer_value(get2(usage, "promptTokenCount", "prompt_token_count")) +
                      json_integer_value(get2(usage, "toolUsePromptTokenCount", "tool_use_prompt_token_count"));
    u->cached_input_tokens = json_integer_value(get2(usage, "cachedContentTokenCount", "cached_content_token_count"));
    u->output_tokens = json_integer_value(get2(usage, "candidatesTokenCount", "candidates_token_count")) +
                       json_integer_value(get2(usage, "thoughtsTokenCount", "thoughts_token_count"));
}

int co__gemini_response_parse(co_chat_response *r, json_t *root)
{
    int rc = 0;
    const json_t *cands = json_object_get(root, "candidates");
    if (cands && !json_is_array(cands))
        return bad("response body: candidates must be an array");
    const char *rid = json_string_value(get2(root, "responseId", "response_id"));
    if ((rc = co_chat_request_set_str(&r->id, rid)) ||
        (rc = co_chat_request_set_str(&r->model, json_string_value(get2(root, "modelVersion", "model_version")))))
        return rc;
    co__gemini_usage(&r->usage, get2(root, "usageMetadata", "usage_metadata"));
    r->finish_api = CO_API_GEMINI;
    const json_t *c0 = json_array_get(cands, 0);
    if (!c0) {
        const char *block = json_string_value(json_object_get(get2(root, "promptFeedback", "prompt_feedback"), "blockReason"));
        if (block) {
            r->finish = CO_CHAT_FINISH_CONTENT_FILTER;
            return co_chat_request_set_str(&r->finish_raw, block);
        }
        if (!cands)
            return bad("response body: candidates must be an array");
        return 0;
    }
    co_buf text;
    co_buf_init(&text, CO_BUF_UNLIMITED);
    int has_text = 0;
    size_t k;
    json_t *p;
    json_array_foreach(json_object_get(json_object_get(c0, "content"), "parts"), k, p) {
        const json_t *t = json_object_get(p, "text");
        const json_t *fc = get2(p, "functionCall", "function_call");
        if (json_is_true(json_object_get(p, "thought")))
            continue;
        if (json_is_string(t)) {
            if ((rc = co_buf_append(&text, json_string_value(t), json_string_length(t))))
                goto done;
            has_text = 1;
        } else if (json_is_object(fc)) {
            const char *name = json_string_value(json_object_get(fc, "name"));
            const json_t *args = json_object_get(fc, "args");
            co_chat_tool_call *v = realloc(r->tool_calls, (r->n_tool_calls + 1) * sizeof *v);
            if (!v) {
                rc = co_error_set(CO_ENOMEM, "out of memory");
                goto done;
            }
            r->tool_calls = v;
            co_chat_tool_call *c = &v[r->n_tool_calls];
            c->id = call_id(json_string_value(json_object_get(fc, "id")), rid, (int)r->n_tool_calls);
            r->n_tool_calls++;
            c->name = strdup(name ? name : "");
            c->arguments = args ? co__json_text(args) : strdup("{}");
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
    const char *fr = json_string_value(get2(c0, "finishReason", "finish_reason"));
    r->finish = co__gemini_finish(fr);
    if (r->finish == CO_CHAT_FINISH_STOP && r->n_tool_calls)
        r->finish = CO_CHAT_FINISH_TOOL_CALLS; /* Gemini says STOP after function calls */
    rc = co_chat_request_set_str(&r->finish_raw, fr);
done:
    co_buf_free(&text);
    return rc;
}

static json_t *usage_json(const co_chat_usage *u)
{
    int err = 0;
    json_t *o = json_object();
    co__jset(&err, o, "promptTokenCount", json_integer(u->input_tokens));
    co__jset(&err, o, "candidatesTokenCount", json_integer(u->output_tokens));
    co__jset(&err, o, "totalTokenCount", json_integer(u->input_tokens + u->output_tokens));
    if (u->cached_input_tokens)
        co__jset(&err, o, "cachedContentTokenCount", json_integer(u->cached_input_tokens));
    if (err) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *call_part(const char *id, const char *name, const char *args)
{
    int err = 0, invalid = 0;
    json_t *p = json_object(), *fc = json_object();
    if (id && *id)
        co__jset(&err, fc, "id", json_string(id));
    co__jset(&err, fc, "name", json_string(name ? name : ""));
    co__jset(&err, fc, "args", args_object(args, &invalid));
    co__jset(&err, p, "functionCall", fc);
    if (err) {
        json_decref(p);
        return NULL;
    }
    return p;
}

/* One GenerateContentResponse with `parts` (taken) and an optional finish. */
static json_t *gm_response(json_t *parts, const char *finish, const co_chat_usage *usage, const char *model,
                           const char *id, int *err)
{
    json_t *root = json_object(), *cands = json_array(), *c = json_object(), *content = json_object();
    if (json_array_size(parts) == 0)
        co__jpush(err, parts, text_part(""));
    co__jset(err, content, "parts", parts);
    co__jset(err, content, "role", json_string("model"));
    co__jset(err, c, "content", content);
    if (finish)
        co__jset(err, c, "finishReason", json_string(finish));
    co__jset(err, c, "index", json_integer(0));
    co__jpush(err, cands, c);
    co__jset(err, root, "candidates", cands);
    if (usage)
        co__jset(err, root, "usageMetadata", usage_json(usage));
    co__jset(err, root, "modelVersion", json_string(model ? model : ""));
    if (id)
        co__jset(err, root, "responseId", json_string(id));
    return root;
}

int co__gemini_response_emit(json_t **out, const co_chat_response *r)
{
    int err = 0;
    json_t *parts = json_array();
    if (r->text && *r->text)
        co__jpush(&err, parts, text_part(r->text));
    for (size_t k = 0; k < r->n_tool_calls; k++)
        co__jpush(&err, parts, call_part(r->tool_calls[k].id, r->tool_calls[k].name, r->tool_calls[k].arguments));
    json_t *root = gm_response(parts, finish_str(r->finish, r->finish_raw, r->finish_api), &r->usage, r->model,
                               r->id, &err);
    int rc = built(err, "response");
    if (rc) {
        json_decref(root);
        return rc;
    }
    *out = root;
    return 0;
}

/* ---- errors --------------------------------------------------------------- */

static const char *rpc_status(co_chat_err_kind kind)
{
    switch (kind) {
    case CO_CHAT_ERR_INVALID_REQUEST: return "INVALID_ARGUMENT";
    case CO_CHAT_ERR_AUTHENTICATION: return "UNAUTHENTICATED";
    case CO_CHAT_ERR_PERMISSION: return "PERMISSION_DENIED";
    case CO_CHAT_ERR_NOT_FOUND: return "NOT_FOUND";
    case CO_CHAT_ERR_REQUEST_TOO_LARGE: return "INVALID_ARGUMENT";
    case CO_CHAT_ERR_RATE_LIMIT: return "RESOURCE_EXHAUSTED";
    case CO_CHAT_ERR_API: return "INTERNAL";
    case CO_CHAT_ERR_OVERLOADED: return "UNAVAILABLE";
    }
    return "INTERNAL";
}

int co__gemini_error_format(json_t **out, int status, co_chat_err_kind kind, const char *msg)
{
    int err = 0;
    json_t *root = json_object(), *e = json_object();
    co__jset(&err, e, "code", json_integer(status));
    co__jset(&err, e, "message", json_string(msg));
    co__jset(&err, e, "status", json_string(rpc_status(kind)));
    co__jset(&err, root, "error", e);
    int rc = built(err, "error");
    if (rc) {
        json_decref(root);
        return rc;
    }
    *out = root;
    return 0;
}

void co__gemini_error_parse(co_chat_error *e, const json_t *root)
{
    const json_t *err = json_object_get(root, "error");
    if (!json_is_object(err))
        return;
    const char *status = json_string_value(json_object_get(err, "status"));
    const json_t *msg = json_object_get(err, "message");
    const json_t *code = json_object_get(err, "code");
    int k = co__err_kind_of_type(status);
    if (k >= 0)
        e->kind = (co_chat_err_kind)k;
    if (json_is_integer(code) && !e->status)
        e->status = (int)json_integer_value(code);
    /* a bad key is a 400 INVALID_ARGUMENT with reason API_KEY_INVALID */
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(err, "details"), i, d) {
        const char *reason = json_string_value(json_object_get(d, "reason"));
        if (reason && !strcmp(reason, "API_KEY_INVALID"))
            e->kind = CO_CHAT_ERR_AUTHENTICATION;
    }
    if (status)
        co__err_copy(e->type, sizeof e->type, status, strlen(status));
    if (json_is_string(msg))
        co__err_copy(e->message, sizeof e->message, json_string_value(msg), json_string_length(msg));
}

/* ---- stream: decode ------------------------------------------------------- */

int co__gemini_decode(co_chat_decoder *d, const co_sse_event *sev)
{
    int rc = 0;
    json_error_t jerr;
    json_t *root = json_loadb(sev->data, sev->data_len, 0, &jerr);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return co_error_set(CO_EPARSE, "gemini stream: event %d is not a JSON object: %s", d->n_events,
                            root ? "wrong type" : jerr.text);
    }
    if (json_is_object(json_object_get(root, "error"))) {
        co_chat_error e;
        memset(&e, 0, sizeof e);
        e.kind = CO_CHAT_ERR_API;
        co__gemini_error_parse(&e, root);
        if (!e.message[0])
            snprintf(e.message, sizeof e.message, "upstream stream error");
        co_chat_event ev = {.kind = CO_CHAT_EV_ERROR, .error = &e};
        rc = co__deliver(d, &ev);
        goto done;
    }
    const char *rid = json_string_value(get2(root, "responseId", "response_id"));
    if (!d->started) {
        const char *model = json_string_value(get2(root, "modelVersion", "model_version"));
        if (rid && !(d->id = strdup(rid))) {
            rc = co_error_set(CO_ENOMEM, "out of memory");
            goto done;
        }
        co_chat_event st = {.kind = CO_CHAT_EV_START, .id = rid ? rid : "", .model = model ? model : ""};
        if ((rc = co__deliver(d, &st)))
            goto done;
    }
    const json_t *usage = get2(root, "usageMetadata", "usage_metadata");
    if (json_is_object(usage)) {
        co__gemini_usage(&d->usage, usage);
        d->has_usage = 1;
    }
    const json_t *c0 = json_array_get(json_object_get(root, "candidates"), 0);
    size_t k;
    json_t *p;
    json_array_foreach(json_object_get(json_object_get(c0, "content"), "parts"), k, p) {
        const json_t *t = json_object_get(p, "text");
        const json_t *fc = get2(p, "functionCall", "function_call");
        if (json_is_true(json_object_get(p, "thought")))
            continue;
        if (json_is_string(t) && json_string_length(t)) {
            co_chat_event ev = {.kind = CO_CHAT_EV_TEXT, .text = json_string_value(t), .len = json_string_length(t)};
            if ((rc = co__deliver(d, &ev)))
                goto done;
        } else if (json_is_object(fc)) {
            int ti = d->n_tools++;
            const char *name = json_string_value(json_object_get(fc, "name"));
            const json_t *args = json_object_get(fc, "args");
            char *id = call_id(json_string_value(json_object_get(fc, "id")), d->id, ti);
            char *a = args ? co__json_text(args) : strdup("{}");
            if (!id || !a) {
                free(id);
                free(a);
                rc = co_error_set(CO_ENOMEM, "out of memory");
                goto done;
            }
            co_chat_event ev = {.kind = CO_CHAT_EV_TOOL_START, .index = ti, .tool_id = id, .tool_name = name ? name : ""};
            co_chat_event av = {.kind = CO_CHAT_EV_TOOL_ARGS, .index = ti, .text = a, .len = strlen(a)};
            rc = co__deliver(d, &ev);
            if (!rc)
                rc = co__deliver(d, &av);
            free(id);
            free(a);
            if (rc)
                goto done;
        }
    }
    const char *fr = json_string_value(get2(c0, "finishReason", "finish_reason"));
    const char *block = json_string_value(json_object_get(get2(root, "promptFeedback", "prompt_feedback"), "blockReason"));
    co_chat_finish f = co__gemini_finish(fr);
    if (f == CO_CHAT_FINISH_NONE && block) {
        f = CO_CHAT_FINISH_CONTENT_FILTER;
        fr = block;
    }
    if (f != CO_CHAT_FINISH_NONE && !d->finished) {
        if (f == CO_CHAT_FINISH_STOP && d->n_tools)
            f = CO_CHAT_FINISH_TOOL_CALLS;
        co_chat_event ev = {.kind = CO_CHAT_EV_FINISH, .finish = f, .finish_raw = fr, .finish_api = CO_API_GEMINI};
        rc = co__deliver(d, &ev);
    }
done:
    json_decref(root);
    return rc;
}

/* ---- stream: encode ------------------------------------------------------- */

#define GM_MAX_ARGS (16u << 20)

static int write_resp(co_chat_encoder *e, co_buf *out, json_t *parts, const char *finish, const co_chat_usage *u)
{
    int err = 0;
    json_t *root = gm_response(parts, finish, u, e->model, e->id, &err);
    int rc = built(err, "stream event");
    if (!rc)
        rc = co__sse_write(out, NULL, root, "\r\n\r\n");
    json_decref(root);
    return rc;
}

int co__gemini_encode(co_chat_encoder *e, co_buf *out, const co_chat_event *ev)
{
    int rc = 0, err = 0;
    co__enc_tool *t;
    json_t *parts;
    switch (ev->kind) {
    case CO_CHAT_EV_START:
        if (!e->id && !(e->id = co__make_id("")))
            return co_error_set(CO_ENOMEM, "out of memory");
        return 0; /* Gemini has no opening event */
    case CO_CHAT_EV_TEXT:
        if (!ev->len)
            return 0;
        parts = json_array();
        json_t *p = json_object();
        co__jset(&err, p, "text", json_stringn(ev->text, ev->len));
        co__jpush(&err, parts, p);
        if (err) {
            json_decref(parts);
            return built(err, "stream event");
        }
        return write_resp(e, out, parts, NULL, NULL);
    case CO_CHAT_EV_TOOL_START:
        if ((rc = co__enc_tool_add(e, ev, &t)))
            return rc;
        t->args.max = GM_MAX_ARGS;
        return 0;
    case CO_CHAT_EV_TOOL_ARGS:
        if (!(t = co__enc_tool_get(e, ev->index)))
            return co_error_set(CO_EPARSE, "arguments for tool call %d before its start", ev->index);
        t->has_args = 1;
        return co_buf_append(&t->args, ev->text, ev->len); /* Gemini sends whole calls */
    case CO_CHAT_EV_FINISH:
        if (!e->n_tools)
            return 0;
        parts = json_array();
        for (size_t i = 0; i < e->n_tools; i++)
            co__jpush(&err, parts, call_part(e->tools[i].id, e->tools[i].name, e->tools[i].args.p));
        if (err) {
            json_decref(parts);
            return built(err, "stream event");
        }
        return write_resp(e, out, parts, NULL, NULL);
    case CO_CHAT_EV_USAGE:
        return 0;
    case CO_CHAT_EV_END:
        parts = json_array();
        return write_resp(e, out, parts, finish_str(e->finished ? e->finish : CO_CHAT_FINISH_STOP, e->finish_raw,
                                                    e->finish_api),
                          e->has_usage ? &e->usage : NULL);
    case CO_CHAT_EV_ERROR: {
        json_t *j = NULL;
        const co_chat_error *x = ev->error;
        co_chat_err_kind kind = x ? x->kind : CO_CHAT_ERR_API;
        int status = x && x->status ? x->status : co_chat_err_status(CO_API_GEMINI, kind);
        if ((rc = co__gemini_error_format(&j, status, kind, x ? x->message : "upstream error")))
            return rc;
        rc = co__sse_write(out, NULL, j, "\r\n\r\n");
        json_decref(j);
        return rc;
    }
    }
    return 0;
}
