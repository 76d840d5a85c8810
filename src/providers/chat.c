/* The canonical chat model: constructors and destructors, builders, shared
 * JSON helpers, the per-API dispatchers, the generic parts of the stream
 * decoder and encoder, the accumulator, the fast path (peek + model rewrite)
 * and cost. The wire formats themselves live in openai.c, anthropic.c and
 * gemini.c. */
#define CO__CHAT_INTERNAL 1
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cutover/chat.h"
#include "cutover/error.h"
#include "cutover/util.h"

/* ---- APIs ----------------------------------------------------------------- */

const char *co_api_name(co_api api)
{
    switch (api) {
    case CO_API_OPENAI: return "openai";
    case CO_API_ANTHROPIC: return "anthropic";
    case CO_API_GEMINI: return "gemini";
    }
    return "?";
}

int co_api_from_name(co_api *out, const char *name)
{
    if (name && (!strcmp(name, "openai") || !strcmp(name, "openai-compatible")))
        *out = CO_API_OPENAI;
    else if (name && !strcmp(name, "anthropic"))
        *out = CO_API_ANTHROPIC;
    else if (name && !strcmp(name, "gemini"))
        *out = CO_API_GEMINI;
    else
        return co_error_set(CO_EINVAL, "unknown API '%s' (use openai, anthropic or gemini)", name ? name : "");
    return 0;
}

/* ---- strings -------------------------------------------------------------- */

char *co__strdup(const char *s) { return s ? strdup(s) : NULL; }

char *co__strndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static int oom(void) { return co_error_set(CO_ENOMEM, "out of memory"); }

int co_chat_strv_push(co_chat_strv *sv, const char *s)
{
    if (sv->n == sv->cap) {
        size_t cap = sv->cap ? sv->cap * 2 : 8;
        char **v = realloc(sv->v, cap * sizeof *v);
        if (!v)
            return oom();
        sv->v = v;
        sv->cap = cap;
    }
    char *c = strdup(s);
    if (!c)
        return oom();
    sv->v[sv->n++] = c;
    return 0;
}

static int strv_pushv(co_chat_strv *sv, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static int strv_pushv(co_chat_strv *sv, const char *fmt, va_list ap)
{
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        return oom();
    int rc = co_chat_strv_push(sv, s);
    free(s);
    return rc;
}

int co_chat_strv_pushf(co_chat_strv *sv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = strv_pushv(sv, fmt, ap);
    va_end(ap);
    return rc;
}

int co_chat_strv_has(const co_chat_strv *sv, const char *s)
{
    for (size_t i = 0; i < sv->n; i++)
        if (!strcmp(sv->v[i], s))
            return 1;
    return 0;
}

void co_chat_strv_free(co_chat_strv *sv)
{
    for (size_t i = 0; i < sv->n; i++)
        free(sv->v[i]);
    free(sv->v);
    sv->v = NULL;
    sv->n = sv->cap = 0;
}

/* ---- request -------------------------------------------------------------- */

int co_chat_request_new(co_chat_request **out)
{
    co_chat_request *r = calloc(1, sizeof *r);
    if (!r)
        return oom();
    r->parallel_tool_calls = -1;
    r->format_strict = -1;
    *out = r;
    return 0;
}

static void free_parts(co_chat_part *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(p[i].text);
        free(p[i].url);
        free(p[i].media_type);
        free(p[i].data);
    }
    free(p);
}

static void free_calls(co_chat_tool_call *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(c[i].id);
        free(c[i].name);
        free(c[i].arguments);
    }
    free(c);
}

void co_chat_request_free(co_chat_request *req)
{
    if (!req)
        return;
    free(req->model);
    free(req->system);
    for (size_t i = 0; i < req->n_messages; i++) {
        co_chat_message *m = &req->messages[i];
        free_parts(m->parts, m->n_parts);
        free_calls(m->tool_calls, m->n_tool_calls);
        free(m->tool_call_id);
    }
    free(req->messages);
    for (size_t i = 0; i < req->n_tools; i++) {
        free(req->tools[i].name);
        free(req->tools[i].description);
        free(req->tools[i].parameters);
    }
    free(req->tools);
    free(req->tool_choice_name);
    co_chat_strv_free(&req->stop);
    free(req->user);
    free(req->format_name);
    free(req->format_schema);
    co_chat_strv_free(&req->dropped);
    free(req);
}

int co_chat_request_set_str(char **field, const char *s)
{
    char *c = NULL;
    if (s && !(c = strdup(s)))
        return oom();
    free(*field);
    *field = c;
    return 0;
}

/* Grows a (v, n) array by one zeroed element. */
static void *grow1(void *v, size_t n, size_t size)
{
    void *p = realloc(v, (n + 1) * size);
    if (!p)
        return NULL;
    memset((char *)p + n * size, 0, size);
    return p;
}

int co_chat_request_add_message(co_chat_request *req, co_chat_role role, co_chat_message **out)
{
    co_chat_message *v = grow1(req->messages, req->n_messages, sizeof *v);
    if (!v)
        return oom();
    req->messages = v;
    co_chat_message *m = &v[req->n_messages++];
    m->role = role;
    if (out)
        *out = m;
    return 0;
}

int co_chat_request_add_tool(co_chat_request *req, const char *name, const char *description,
                             const char *parameters_json)
{
    co_chat_tool *v = grow1(req->tools, req->n_tools, sizeof *v);
    if (!v)
        return oom();
    req->tools = v;
    co_chat_tool *t = &v[req->n_tools];
    t->name = co__strdup(name);
    t->description = co__strdup(description);
    t->parameters = co__strdup(parameters_json);
    req->n_tools++;
    if (!t->name || (description && !t->description) || (parameters_json && !t->parameters))
        return oom(); /* the half-made tool is freed with the request */
    return 0;
}

static co_chat_part *add_part(co_chat_message *m, co_chat_part_kind kind)
{
    co_chat_part *v = grow1(m->parts, m->n_parts, sizeof *v);
    if (!v)
        return NULL;
    m->parts = v;
    v[m->n_parts].kind = kind;
    return &v[m->n_parts++];
}

int co_chat_message_add_text(co_chat_message *m, const char *text, size_t len)
{
    co_chat_part *p = add_part(m, CO_CHAT_PART_TEXT);
    if (!p || !(p->text = co__strndup(text, len)))
        return oom();
    return 0;
}

int co_chat_message_add_image_url(co_chat_message *m, const char *url, const char *media_type)
{
    co_chat_part *p = add_part(m, CO_CHAT_PART_IMAGE);
    if (!p || !(p->url = strdup(url)) || (media_type && !(p->media_type = strdup(media_type))))
        return oom();
    return 0;
}

int co_chat_message_add_image_data(co_chat_message *m, const char *media_type, const char *base64)
{
    co_chat_part *p = add_part(m, CO_CHAT_PART_IMAGE);
    if (!p || !(p->media_type = strdup(media_type ? media_type : "image/png")) || !(p->data = strdup(base64)))
        return oom();
    return 0;
}

int co_chat_message_add_tool_call(co_chat_message *m, const char *id, const char *name, const char *arguments)
{
    co_chat_tool_call *v = grow1(m->tool_calls, m->n_tool_calls, sizeof *v);
    if (!v)
        return oom();
    m->tool_calls = v;
    co_chat_tool_call *c = &v[m->n_tool_calls++];
    c->id = strdup(id ? id : "");
    c->name = strdup(name ? name : "");
    c->arguments = strdup(arguments ? arguments : "");
    if (!c->id || !c->name || !c->arguments)
        return oom();
    return 0;
}

int co_chat_message_text(char **out, const co_chat_message *m, const char *sep)
{
    co_buf b;
    co_buf_init(&b, CO_BUF_UNLIMITED);
    int rc = 0, first = 1;
    for (size_t i = 0; i < m->n_parts && !rc; i++) {
        if (m->parts[i].kind != CO_CHAT_PART_TEXT)
            continue;
        if (!first && sep)
            rc = co_buf_puts(&b, sep);
        if (!rc)
            rc = co_buf_puts(&b, m->parts[i].text ? m->parts[i].text : "");
        first = 0;
    }
    if (rc) {
        co_buf_free(&b);
        return rc;
    }
    *out = co_buf_detach(&b);
    return *out ? 0 : oom();
}

int co__append_system(co_chat_request *req, const char *text, const char *sep)
{
    if (!req->system)
        return co_chat_request_set_str(&req->system, text);
    char *s = NULL;
    if (asprintf(&s, "%s%s%s", req->system, sep, text) < 0)
        return oom();
    free(req->system);
    req->system = s;
    return 0;
}

/* ---- response ------------------------------------------------------------- */

int co_chat_response_new(co_chat_response **out)
{
    co_chat_response *r = calloc(1, sizeof *r);
    if (!r)
        return oom();
    *out = r;
    return 0;
}

void co_chat_response_free(co_chat_response *r)
{
    if (!r)
        return;
    free(r->id);
    free(r->model);
    free(r->text);
    free_calls(r->tool_calls, r->n_tool_calls);
    free(r->finish_raw);
    free(r->stop_sequence);
    free(r);
}

const char *co_chat_finish_name(co_chat_finish f)
{
    switch (f) {
    case CO_CHAT_FINISH_NONE: return "none";
    case CO_CHAT_FINISH_STOP: return "stop";
    case CO_CHAT_FINISH_LENGTH: return "length";
    case CO_CHAT_FINISH_TOOL_CALLS: return "tool_calls";
    case CO_CHAT_FINISH_CONTENT_FILTER: return "content_filter";
    case CO_CHAT_FINISH_ERROR: return "error";
    case CO_CHAT_FINISH_OTHER: return "other";
    }
    return "other";
}

/* ---- JSON helpers --------------------------------------------------------- */

int co__json_load(json_t **out, const char *body, size_t len, const char *what)
{
    json_error_t err;
    json_t *root = json_loadb(body ? body : "", body ? len : 0, 0, &err);
    if (!root) {
        if (len == 0 || !body)
            return co_error_set(CO_EPARSE, "%s is empty: expected a JSON object", what);
        return co_error_set(CO_EPARSE, "%s is not valid JSON: %s (line %d, column %d)", what, err.text,
                            err.line, err.column);
    }
    if (!json_is_object(root)) {
        json_decref(root);
        return co_error_set(CO_EPARSE, "%s must be a JSON object", what);
    }
    *out = root;
    return 0;
}

struct dump_ctx {
    co_buf *b;
    int rc;
};

static int dump_cb(const char *buf, size_t size, void *data)
{
    struct dump_ctx *c = data;
    c->rc = co_buf_append(c->b, buf, size);
    return c->rc ? -1 : 0;
}

int co__json_dump(co_buf *out, const json_t *j)
{
    struct dump_ctx c = {out, 0};
    size_t before = out->len;
    if (json_dump_callback(j, dump_cb, &c, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15)) < 0) {
        out->len = before;
        if (out->p)
            out->p[before] = '\0';
        return c.rc ? c.rc : co_error_set(CO_ENOMEM, "could not encode JSON");
    }
    return 0;
}

char *co__json_text(const json_t *j)
{
    return json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
}

int co__drop(co_chat_strv *sv, const json_t *v, const char *fmt, ...)
{
    if (!sv || !v || json_is_null(v))
        return 0;
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        return oom();
    int rc = co_chat_strv_has(sv, s) ? 0 : co_chat_strv_push(sv, s);
    free(s);
    return rc;
}

int co__drop_unknown(co_chat_strv *sv, const json_t *obj, const char *prefix, const char *const *known)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        int k = 0;
        for (const char *const *p = known; *p; p++)
            if (!strcmp(*p, key)) {
                k = 1;
                break;
            }
        if (!k) {
            int rc = co__drop(sv, v, "%s%s", prefix, key);
            if (rc)
                return rc;
        }
    }
    return 0;
}

const char *co__json_type(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "a value";
}

int co__opt_string(const json_t *obj, const char *key, const char *path, const char **out)
{
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return co_error_set(CO_EPARSE, "%s must be a string, not %s", path, co__json_type(v));
    *out = json_string_value(v);
    return 0;
}

int co__opt_bool(const json_t *obj, const char *key, const char *path, int *out)
{
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return co_error_set(CO_EPARSE, "%s must be a boolean, not %s", path, co__json_type(v));
    *out = json_is_true(v);
    return 0;
}

int co__opt_number(const json_t *obj, const char *key, const char *path, double *out, int *has)
{
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_number(v))
        return co_error_set(CO_EPARSE, "%s must be a number, not %s", path, co__json_type(v));
    *out = json_number_value(v);
    if (has)
        *has = 1;
    return 0;
}

int co__opt_posint(const json_t *obj, const char *key, const char *path, int64_t *out)
{
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    double d = json_is_real(v) ? json_real_value(v) : 0;
    if (json_is_integer(v) && json_integer_value(v) >= 1) {
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_real(v) && d >= 1 && d < 9e15 && d == (double)(int64_t)d) {
        *out = (int64_t)d;
        return 0;
    }
    return co_error_set(CO_EPARSE, "%s must be an integer >= 1", path);
}

/* json_*_set_new take (and on failure release) v, even when obj is NULL */
void co__jset(int *err, json_t *obj, const char *key, json_t *v)
{
    if (!v || json_object_set_new(obj, key, v))
        *err = 1;
}

void co__jpush(int *err, json_t *arr, json_t *v)
{
    if (!v || json_array_append_new(arr, v))
        *err = 1;
}

json_t *co__jstr(const char *s) { return s ? json_string(s) : json_null(); }

json_t *co__jraw(const char *text)
{
    if (!text)
        return NULL;
    return json_loads(text, JSON_DECODE_ANY, NULL);
}

int co__data_url(const char *s, char **media, char **data)
{
    if (strncmp(s, "data:", 5))
        return 0;
    const char *b64 = strstr(s, ";base64,");
    if (!b64)
        return 0;
    const char *m = s + 5;
    size_t ml = (size_t)(b64 - m);
    const char *semi = memchr(m, ';', ml); /* parameters before ;base64 are not kept */
    if (semi)
        ml = (size_t)(semi - m);
    *media = co__strndup(m, ml);
    *data = strdup(b64 + 8);
    if (!*media || !*data) {
        free(*media);
        free(*data);
        *media = *data = NULL;
        return oom();
    }
    return 1;
}

char *co__make_id(const char *prefix)
{
    char hex[CO_ID_LEN];
    co_id_new(hex);
    char *s = NULL;
    if (asprintf(&s, "%s%.24s", prefix, hex) < 0)
        return NULL;
    return s;
}

char *co__safe_id(const char *id)
{
    if (!id || !*id)
        return strdup("toolu_none");
    char *s = strdup(id);
    if (!s)
        return NULL;
    for (char *p = s; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            *p = '_';
    }
    return s;
}

/* ---- dispatch: requests and responses ------------------------------------- */

int co_chat_request_parse(co_chat_request **out, co_api api, const char *body, size_t len,
                          const co_chat_parse_opts *opts)
{
    int rc = 0;
    json_t *root = NULL;
    co_chat_request *req = NULL;
    *out = NULL;
    if ((rc = co__json_load(&root, body, len, "request body")))
        goto done;
    if ((rc = co_chat_request_new(&req)))
        goto done;
    switch (api) {
    case CO_API_OPENAI: rc = co__openai_request_parse(req, root); break;
    case CO_API_ANTHROPIC: rc = co__anthropic_request_parse(req, root); break;
    case CO_API_GEMINI:
        if (opts && opts->model && (rc = co_chat_request_set_str(&req->model, opts->model)))
            goto done;
        req->stream = opts ? opts->stream : 0;
        req->include_usage = 1;
        rc = co__gemini_request_parse(req, root);
        break;
    default: rc = co_error_set(CO_EINVAL, "unknown API %d", (int)api); break;
    }
    if (rc)
        goto done;
    *out = req;
    req = NULL;
done:
    co_chat_request_free(req);
    json_decref(root);
    return rc;
}

int co_chat_request_emit(co_buf *out, const co_chat_request *req, co_api api, const co_chat_emit_opts *opts)
{
    co_chat_emit_opts def = {0};
    json_t *j = NULL;
    int rc;
    if (!opts)
        opts = &def;
    switch (api) {
    case CO_API_OPENAI: rc = co__openai_request_emit(&j, req, opts); break;
    case CO_API_ANTHROPIC: rc = co__anthropic_request_emit(&j, req, opts); break;
    case CO_API_GEMINI: rc = co__gemini_request_emit(&j, req, opts); break;
    default: rc = co_error_set(CO_EINVAL, "unknown API %d", (int)api); break;
    }
    if (!rc)
        rc = co__json_dump(out, j);
    json_decref(j);
    return rc;
}

int co_chat_response_parse(co_chat_response **out, co_api api, const char *body, size_t len)
{
    int rc = 0;
    json_t *root = NULL;
    co_chat_response *r = NULL;
    *out = NULL;
    if ((rc = co__json_load(&root, body, len, "response body")))
        goto done;
    if ((rc = co_chat_response_new(&r)))
        goto done;
    r->finish_api = api;
    switch (api) {
    case CO_API_OPENAI: rc = co__openai_response_parse(r, root); break;
    case CO_API_ANTHROPIC: rc = co__anthropic_response_parse(r, root); break;
    case CO_API_GEMINI: rc = co__gemini_response_parse(r, root); break;
    default: rc = co_error_set(CO_EINVAL, "unknown API %d", (int)api); break;
    }
    if (rc)
        goto done;
    *out = r;
    r = NULL;
done:
    co_chat_response_free(r);
    json_decref(root);
    return rc;
}

int co_chat_response_emit(co_buf *out, const co_chat_response *r, co_api api)
{
    json_t *j = NULL;
    int rc;
    switch (api) {
    case CO_API_OPENAI: rc = co__openai_response_emit(&j, r); break;
    case CO_API_ANTHROPIC: rc = co__anthropic_response_emit(&j, r); break;
    case CO_API_GEMINI: rc = co__gemini_response_emit(&j, r); break;
    default: rc = co_error_set(CO_EINVAL, "unknown API %d", (int)api); break;
    }
    if (!rc)
        rc = co__json_dump(out, j);
    json_decref(j);
    return rc;
}

int co_chat_gemini_path(co_buf *out, const char *model, int stream)
{
    if (!model || !*model || strchr(model, '/') || strchr(model, '?') || strchr(model, ':'))
        return co_error_set(CO_EINVAL, "'%s' is not a Gemini model name", model ? model : "");
    return co_buf_printf(out, "models/%s:%s", model,
                         stream ? "streamGenerateContent?alt=sse" : "generateContent");
}

int co_chat_gemini_path_parse(char **model, int *stream, const char *path)
{
    const char *m = strstr(path, "models/");
    if (!m)
        return co_error_set(CO_EPARSE, "'%s' is not a Gemini models/<model>:generateContent path", path);
    m += 7;
    const char *colon = strchr(m, ':');
    if (!colon || colon == m)
        return co_error_set(CO_EPARSE, "'%s' is not a Gemini models/<model>:generateContent path", path);
    const char *verb = colon + 1;
    size_t vl = strcspn(verb, "?");
    if (vl == 15 && !strncmp(verb, "generateContent", 15))
        *stream = 0;
    else if (vl == 21 && !strncmp(verb, "streamGenerateContent", 21))
        *stream = 1;
    else
        return co_error_set(CO_EPARSE, "'%.*s' is not generateContent or streamGenerateContent", (int)vl, verb);
    if (!(*model = co__strndup(m, (size_t)(colon - m))))
        return oom();
    return 0;
}

/* ---- errors --------------------------------------------------------------- */

static const char *const err_kind_names[] = {
    "invalid_request_error", "authentication_error", "permission_error", "not_found_error",
    "request_too_large",     "rate_limit_error",     "api_error",        "overloaded_error",
};

const char *co_chat_err_kind_name(co_chat_err_kind k)
{
    if ((unsigned)k < sizeof err_kind_names / sizeof *err_kind_names)
        return err_kind_names[k];
    return "api_error";
}

int co_chat_err_status(co_api api, co_chat_err_kind k)
{
    switch (k) {
    case CO_CHAT_ERR_INVALID_REQUEST: return 400;
    case CO_CHAT_ERR_AUTHENTICATION: return 401;
    case CO_CHAT_ERR_PERMISSION: return 403;
    case CO_CHAT_ERR_NOT_FOUND: return 404;
    case CO_CHAT_ERR_REQUEST_TOO_LARGE: return 413;
    case CO_CHAT_ERR_RATE_LIMIT: return 429;
    case CO_CHAT_ERR_API: return 500;
    case CO_CHAT_ERR_OVERLOADED: return api == CO_API_ANTHROPIC ? 529 : 503;
    }
    return 500;
}

co_chat_err_kind co_chat_err_kind_of_status(int status)
{
    switch (status) {
    case 400: case 422: return CO_CHAT_ERR_INVALID_REQUEST;
    case 401: return CO_CHAT_ERR_AUTHENTICATION;
    case 402: case 403: return CO_CHAT_ERR_PERMISSION;
    case 404: return CO_CHAT_ERR_NOT_FOUND;
    case 413: return CO_CHAT_ERR_REQUEST_TOO_LARGE;
    case 429: return CO_CHAT_ERR_RATE_LIMIT;
    case 503: case 529: return CO_CHAT_ERR_OVERLOADED;
    default: return status >= 400 && status < 500 ? CO_CHAT_ERR_INVALID_REQUEST : CO_CHAT_ERR_API;
    }
}

int co__err_kind_of_type(const char *type)
{
    static const struct {
        const char *type;
        co_chat_err_kind kind;
    } map[] = {
        /* Anthropic */
        {"invalid_request_error", CO_CHAT_ERR_INVALID_REQUEST},
        {"authentication_error", CO_CHAT_ERR_AUTHENTICATION},
        {"permission_error", CO_CHAT_ERR_PERMISSION},
        {"billing_error", CO_CHAT_ERR_PERMISSION},
        {"not_found_error", CO_CHAT_ERR_NOT_FOUND},
        {"request_too_large", CO_CHAT_ERR_REQUEST_TOO_LARGE},
        {"rate_limit_error", CO_CHAT_ERR_RATE_LIMIT},
        {"api_error", CO_CHAT_ERR_API},
        {"timeout_error", CO_CHAT_ERR_API},
        {"overloaded_error", CO_CHAT_ERR_OVERLOADED},
        /* OpenAI codes and types */
        {"invalid_api_key", CO_CHAT_ERR_AUTHENTICATION},
        {"model_not_found", CO_CHAT_ERR_NOT_FOUND},
        {"rate_limit_exceeded", CO_CHAT_ERR_RATE_LIMIT},
        {"insufficient_quota", CO_CHAT_ERR_RATE_LIMIT},
        {"server_error", CO_CHAT_ERR_API},
        {"service_unavailable", CO_CHAT_ERR_OVERLOADED},
        /* Google RPC status */
        {"INVALID_ARGUMENT", CO_CHAT_ERR_INVALID_REQUEST},
        {"FAILED_PRECONDITION", CO_CHAT_ERR_INVALID_REQUEST},
        {"OUT_OF_RANGE", CO_CHAT_ERR_INVALID_REQUEST},
        {"UNAUTHENTICATED", CO_CHAT_ERR_AUTHENTICATION},
        {"PERMISSION_DENIED", CO_CHAT_ERR_PERMISSION},
        {"NOT_FOUND", CO_CHAT_ERR_NOT_FOUND},
        {"RESOURCE_EXHAUSTED", CO_CHAT_ERR_RATE_LIMIT},
        {"INTERNAL", CO_CHAT_ERR_API},
        {"UNKNOWN", CO_CHAT_ERR_API},
        {"DEADLINE_EXCEEDED", CO_CHAT_ERR_API},
        {"UNAVAILABLE", CO_CHAT_ERR_OVERLOADED},
    };
    if (!type)
        return -1;
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (!strcmp(map[i].type, type))
            return (int)map[i].kind;
    return -1;
}

void co__err_copy(char *dst, size_t n, const char *src, size_t len)
{
    if (len >= n) {
        len = n - 1;
        /* do not cut a UTF-8 sequence in half */
        while (len > 0 && ((unsigned char)src[len] & 0xC0) == 0x80)
            len--;
    }
    memcpy(dst, src, len);
    dst[len] = '\0';
}

int co_chat_error_format(co_buf *out, co_api api, int status, co_chat_err_kind kind, const char *message,
                         const char *param)
{
    json_t *j = NULL;
    int rc;
    if (!status)
        status = co_chat_err_status(api, kind);
    if (!message)
        message = "";
    switch (api) {
    case CO_API_OPENAI: rc = co__openai_error_format(&j, status, kind, message, param); break;
    case CO_API_ANTHROPIC: rc = co__anthropic_error_format(&j, status, kind, message); break;
    case CO_API_GEMINI: rc = co__gemini_error_format(&j, status, kind, message); break;
    default: rc = co_error_set(CO_EINVAL, "unknown API %d", (int)api); break;
    }
    if (!rc)
        rc = co__json_dump(out, j);
    json_decref(j);
    return rc;
}

void co_chat_error_parse(co_chat_error *out, co_api api, int status, const char *body, size_t len)
{
    memset(out, 0, sizeof *out);
    out->status = status;
    out->kind = co_chat_err_kind_of_status(status);
    json_t *root = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    if (root && json_is_object(root)) {
        /* an API may sit behind another's proxy: try its own shape first, then the others */
        switch (api) {
        case CO_API_OPENAI: co__openai_error_parse(out, root); break;
        case CO_API_ANTHROPIC: co__anthropic_error_parse(out, root); break;
        case CO_API_GEMINI: co__gemini_error_parse(out, root); break;
        }
        if (!out->message[0]) {
            co__anthropic_error_parse(out, root);
            if (!out->message[0])
                co__openai_error_parse(out, root);
            if (!out->message[0])
                co__gemini_error_parse(out, root);
        }
    }
    json_decref(root);
    /* "invalid_request_error" is generic (OpenAI uses it for 401, 404, 413...):
     * a more telling status wins over it */
    if (out->kind == CO_CHAT_ERR_INVALID_REQUEST && status >= 400)
        out->kind = co_chat_err_kind_of_status(status);
    if (!out->message[0]) {
        if (body && len) {
            /* not JSON (an HTML page from a proxy...): keep the start of it, one line */
            co__err_copy(out->message, 200, body, len);
            for (char *p = out->message; *p; p++)
                if (*p == '\n' || *p == '\r' || *p == '\t')
                    *p = ' ';
        } else {
            snprintf(out->message, sizeof out->message, "upstream returned HTTP %d", status);
        }
    }
}

/* ---- stream decoder ------------------------------------------------------- */

static int dec_sse(void *ctx, const co_sse_event *ev)
{
    co_chat_decoder *d = ctx;
    return co_chat_decoder_event(d, ev);
}

int co_chat_decoder_new(co_chat_decoder **out, co_api api, size_t max_event, co_chat_event_fn fn, void *ctx)
{
    if ((unsigned)api > CO_API_GEMINI)
        return co_error_set(CO_EINVAL, "unknown API %d", (int)api);
    co_chat_decoder *d = calloc(1, sizeof *d);
    if (!d)
        return oom();
    d->api = api;
    d->fn = fn;
    d->ctx = ctx;
    co_sse_init(&d->sse, max_event, dec_sse, d);
    *out = d;
    return 0;
}

int co__deliver(co_chat_decoder *d, co_chat_event *ev)
{
    if (!d->started && ev->kind != CO_CHAT_EV_START && ev->kind != CO_CHAT_EV_ERROR) {
        co_chat_event st = {.kind = CO_CHAT_EV_START, .id = "", .model = ""};
        int rc = co__deliver(d, &st);
        if (rc)
            return rc;
    }
    switch (ev->kind) {
    case CO_CHAT_EV_START: d->started = 1; break;
    case CO_CHAT_EV_FINISH: d->finished = 1; break;
    case CO_CHAT_EV_END: d->ended = 1; break;
    case CO_CHAT_EV_ERROR: d->errored = 1; break;
    default: break;
    }
    return d->fn ? d->fn(d->ctx, ev) : 0;
}

int co_chat_decoder_event(co_chat_decoder *d, const co_sse_event *ev)
{
    if (d->ended || d->errored)
        return 0; /* trailing bytes after the end are ignored */
    d->n_events++;
    switch (d->api) {
    case CO_API_OPENAI: return co__openai_decode(d, ev);
    case CO_API_ANTHROPIC: return co__anthropic_decode(d, ev);
    case CO_API_GEMINI: return co__gemini_decode(d, ev);
    }
    return co_error_set(CO_EINVAL, "unknown API");
}

int co_chat_decoder_feed(co_chat_decoder *d, const void *data, size_t n)
{
    if (d->ended || d->errored)
        return 0;
    return co_sse_feed(&d->sse, data, n);
}

int co_chat_decoder_finish(co_chat_decoder *d)
{
    int rc = 0;
    if (!d->ended && !d->errored && (rc = co_sse_finish(&d->sse)))
        return rc;
    if (d->ended || d->errored)
        return 0;
    const char *name = co_api_name(d->api);
    if (!d->started)
        return co_error_set(CO_EUPSTREAM, "%s stream ended before any event", name);
    if (!d->finished) {
        const char *what = d->api == CO_API_OPENAI      ? "a finish_reason"
                           : d->api == CO_API_ANTHROPIC ? "message_delta/message_stop"
                                                        : "a finishReason";
        return co_error_set(CO_EUPSTREAM, "%s stream ended before %s (truncated)", name, what);
    }
    /* finished but without its terminator ([DONE], message_stop); Gemini has none */
    if (d->has_usage && d->api == CO_API_GEMINI) {
        co_chat_event u = {.kind = CO_CHAT_EV_USAGE, .usage = d->usage};
        if ((rc = co__deliver(d, &u)))
            return rc;
    }
    co_chat_event end = {.kind = CO_CHAT_EV_END};
    return co__deliver(d, &end);
}

int co_chat_decoder_done(const co_chat_decoder *d) { return d->ended || d->errored; }

void co_chat_decoder_free(co_chat_decoder *d)
{
    if (!d)
        return;
    co_sse_free(&d->sse);
    free(d->block_tool);
    free(d->id);
    free(d);
}

/* ---- stream encoder ------------------------------------------------------- */

int co_chat_encoder_new(co_chat_encoder **out, co_api api, const co_chat_encode_opts *opts)
{
    if ((unsigned)api > CO_API_GEMINI)
        return co_error_set(CO_EINVAL, "unknown API %d", (int)api);
    co_chat_encoder *e = calloc(1, sizeof *e);
    if (!e)
        return oom();
    e->api = api;
    if (opts)
        e->opts = *opts;
    e->opts.model = NULL; /* copied below: the encoder outlives the caller's string */
    if (opts && opts->model && !(e->model = strdup(opts->model))) {
        free(e);
        return oom();
    }
    e->open_block = -1;
    e->open_tool = -1;
    *out = e;
    return 0;
}

co__enc_tool *co__enc_tool_get(co_chat_encoder *e, int index)
{
    for (size_t i = 0; i < e->n_tools; i++)
        if (e->tools[i].index == index)
            return &e->tools[i];
    return NULL;
}

int co__enc_tool_add(co_chat_encoder *e, const co_chat_event *ev, co__enc_tool **out)
{
    if (co__enc_tool_get(e, ev->index))
        return co_error_set(CO_EPARSE, "tool call %d started twice", ev->index);
    co__enc_tool *v = grow1(e->tools, e->n_tools, sizeof *v);
    if (!v)
        return oom();
    e->tools = v;
    co__enc_tool *t = &v[e->n_tools++];
    t->index = ev->index;
    t->block = -1;
    co_buf_init(&t->args, CO_BUF_UNLIMITED);
    t->id = strdup(ev->tool_id ? ev->tool_id : "");
    t->name = strdup(ev->tool_name ? ev->tool_name : "");
    if (!t->id || !t->name)
        return oom();
    *out = t;
    return 0;
}

int co__sse_write(co_buf *out, const char *name, const json_t *j, const char *eol)
{
    int rc = 0;
    if (name)
        rc = co_buf_printf(out, "event: %s\n", name);
    if (!rc)
        rc = co_buf_puts(out, "data: ");
    if (!rc)
        rc = co__json_dump(out, j);
    if (!rc)
        rc = co_buf_puts(out, eol);
    return rc;
}

static int set_owned(char **dst, const char *s)
{
    char *c = s ? strdup(s) : NULL;
    if (s && !c)
        return oom();
    free(*dst);
    *dst = c;
    return 0;
}

int co_chat_encoder_event(co_chat_encoder *e, co_buf *out, const co_chat_event *ev)
{
    int rc = 0;
    if (e->ended)
        return 0;
    switch (ev->kind) {
    case CO_CHAT_EV_START:
        if (e->started)
            return 0;
        if (!e->model && (rc = set_owned(&e->model, ev->model && *ev->model ? ev->model : NULL)))
            return rc;
        if ((rc = set_owned(&e->id, ev->id && *ev->id ? ev->id : NULL)))
            return rc;
        e->created = e->opts.created ? e->opts.created : ev->created ? ev->created : co_now_ms() / 1000;
        if (ev->usage.known)
            e->start_usage = ev->usage;
        break;
    case CO_CHAT_EV_FINISH:
        e->finish = ev->finish;
        e->finish_api = ev->finish_api;
        if ((rc = set_owned(&e->finish_raw, ev->finish_raw)) || (rc = set_owned(&e->stop_sequence, ev->stop_sequence)))
            return rc;
        break;
    case CO_CHAT_EV_USAGE:
        e->usage = ev->usage;
        e->has_usage = 1;
        break;
    case CO_CHAT_EV_TOOL_START:
    case CO_CHAT_EV_TOOL_ARGS:
        if (ev->index < 0 || ev->index > 4096)
            return co_error_set(CO_EPARSE, "tool call index %d out of range", ev->index);
        break;
    default:
        break;
    }
    if (ev->kind != CO_CHAT_EV_START && ev->kind != CO_CHAT_EV_ERROR && !e->started) {
        co_chat_event st = {.kind = CO_CHAT_EV_START, .id = "", .model = ""};
        if ((rc = co_chat_encoder_event(e, out, &st)))
            return rc;
    }
    switch (e->api) {
    case CO_API_OPENAI: rc = co__openai_encode(e, out, ev); break;
    case CO_API_ANTHROPIC: rc = co__anthropic_encode(e, out, ev); break;
    case CO_API_GEMINI: rc = co__gemini_encode(e, out, ev); break;
    }
    if (rc)
        return rc;
    if (ev->kind == CO_CHAT_EV_START)
        e->started = 1;
    if (ev->kind == CO_CHAT_EV_FINISH)
        e->finished = 1;
    if (ev->kind == CO_CHAT_EV_END || ev->kind == CO_CHAT_EV_ERROR)
        e->ended = 1;
    return 0;
}

void co_chat_encoder_free(co_chat_encoder *e)
{
    if (!e)
        return;
    free(e->id);
    free(e->model);
    free(e->finish_raw);
    free(e->stop_sequence);
    for (size_t i = 0; i < e->n_tools; i++) {
        free(e->tools[i].id);
        free(e->tools[i].name);
        co_buf_free(&e->tools[i].args);
    }
    free(e->tools);
    free(e);
}

/* ---- accumulator ---------------------------------------------------------- */

typedef struct acc_tool {
    char *id, *name;
    co_buf args;
    int used;
} acc_tool;

struct co_chat_accum {
    size_t max, used;
    co_chat_response *r;
    co_buf text;
    int has_text;
    acc_tool *tools;
    size_t n_tools;
    int complete;
};

int co_chat_accum_new(co_chat_accum **out, size_t max_bytes)
{
    co_chat_accum *a = calloc(1, sizeof *a);
    if (!a)
        return oom();
    if (co_chat_response_new(&a->r)) {
        free(a);
        return oom();
    }
    a->max = max_bytes;
    co_buf_init(&a->text, CO_BUF_UNLIMITED);
    *out = a;
    return 0;
}

static int acc_charge(co_chat_accum *a, size_t n)
{
    if (n > a->max || a->used > a->max - n)
        return co_error_set(CO_ETOOBIG, "streamed response larger than %zu bytes", a->max);
    a->used += n;
    return 0;
}

static int acc_tool_at(co_chat_accum *a, int index, acc_tool **out)
{
    if (index < 0 || index > 4096)
        return co_error_set(CO_EPARSE, "tool call index %d out of range", index);
    while (a->n_tools <= (size_t)index) {
        acc_tool *v = grow1(a->tools, a->n_tools, sizeof *v);
        if (!v)
            return oom();
        a->tools = v;
        co_buf_init(&v[a->n_tools].args, CO_BUF_UNLIMITED);
        a->n_tools++;
    }
    *out = &a->tools[index];
    return 0;
}

int co_chat_accum_event(void *accum, const co_chat_event *ev)
{
    co_chat_accum *a = accum;
    co_chat_response *r = a->r;
    acc_tool *t = NULL;
    int rc = 0;
    switch (ev->kind) {
    case CO_CHAT_EV_START:
        if ((ev->id && *ev->id && (rc = set_owned(&r->id, ev->id))) ||
            (ev->model && *ev->model && (rc = set_owned(&r->model, ev->model))))
            return rc;
        r->created = ev->created;
        if (ev->usage.known)
            r->usage = ev->usage;
        break;
    case CO_CHAT_EV_TEXT:
        if ((rc = acc_charge(a, ev->len)) || (rc = co_buf_append(&a->text, ev->text, ev->len)))
            return rc;
        a->has_text = 1;
        break;
    case CO_CHAT_EV_TOOL_START:
        if ((rc = acc_tool_at(a, ev->index, &t)))
            return rc;
        if ((rc = acc_charge(a, (ev->tool_id ? strlen(ev->tool_id) : 0) + (ev->tool_name ? strlen(ev->tool_name) : 0))))
            return rc;
        if ((rc = set_owned(&t->id, ev->tool_id ? ev->tool_id : "")) ||
            (rc = set_owned(&t->name, ev->tool_name ? ev->tool_name : "")))
            return rc;
        t->used = 1;
        break;
    case CO_CHAT_EV_TOOL_ARGS:
        if ((rc = acc_tool_at(a, ev->index, &t)))
            return rc;
        if ((rc = acc_charge(a, ev->len)) || (rc = co_buf_append(&t->args, ev->text, ev->len)))
            return rc;
        t->used = 1;
        break;
    case CO_CHAT_EV_FINISH:
        r->finish = ev->finish;
        r->finish_api = ev->finish_api;
        if ((rc = set_owned(&r->finish_raw, ev->finish_raw)) || (rc = set_owned(&r->stop_sequence, ev->stop_sequence)))
            return rc;
        break;
    case CO_CHAT_EV_USAGE:
        r->usage = ev->usage;
        break;
    case CO_CHAT_EV_ERROR:
        r->has_error = 1;
        if (ev->error)
            r->error = *ev->error;
        if (r->finish == CO_CHAT_FINISH_NONE)
            r->finish = CO_CHAT_FINISH_ERROR;
        a->complete = 1;
        break;
    case CO_CHAT_EV_END:
        a->complete = 1;
        break;
    }
    return 0;
}

int co_chat_accum_complete(const co_chat_accum *a) { return a->complete; }

int co_chat_accum_take(co_chat_accum *a, co_chat_response **out)
{
    co_chat_response *r = a->r;
    int rc = 0;
    if (a->has_text) {
        free(r->text);
        if (!(r->text = co__strndup(a->text.p ? a->text.p : "", a->text.len)))
            return oom();
    }
    free_calls(r->tool_calls, r->n_tool_calls);
    r->tool_calls = NULL;
    r->n_tool_calls = 0;
    for (size_t i = 0; i < a->n_tools; i++) {
        acc_tool *t = &a->tools[i];
        if (!t->used)
            continue;
        co_chat_tool_call *v = grow1(r->tool_calls, r->n_tool_calls, sizeof *v);
        if (!v)
            return oom();
        r->tool_calls = v;
        co_chat_tool_call *c = &v[r->n_tool_calls++];
        c->id = strdup(t->id ? t->id : "");
        c->name = strdup(t->name ? t->name : "");
        c->arguments = t->args.len ? co__strndup(t->args.p, t->args.len) : strdup("{}");
        if (!c->id || !c->name || !c->arguments)
            return oom();
    }
    /* the accumulator starts over with a fresh response */
    if ((rc = co_chat_response_new(&a->r))) {
        a->r = r;
        return rc;
    }
    *out = r;
    co_buf_reset(&a->text);
    a->has_text = 0;
    a->used = 0;
    for (size_t i = 0; i < a->n_tools; i++) {
        free(a->tools[i].id);
        free(a->tools[i].name);
        co_buf_free(&a->tools[i].args);
    }
    free(a->tools);
    a->tools = NULL;
    a->n_tools = 0;
    return 0;
}

void co_chat_accum_free(co_chat_accum *a)
{
    if (!a)
        return;
    co_chat_response_free(a->r);
    co_buf_free(&a->text);
    for (size_t i = 0; i < a->n_tools; i++) {
        free(a->tools[i].id);
        free(a->tools[i].name);
        co_buf_free(&a->tools[i].args);
    }
    free(a->tools);
    free(a);
}

/* ---- fast path ------------------------------------------------------------ */

int co_chat_peek_parse(co_chat_peek *out, co_api api, const char *body, size_t len)
{
    json_t *root = NULL;
    int rc;
    const char *model = NULL, *user = NULL;
    memset(out, 0, sizeof *out);
    if ((rc = co__json_load(&root, body, len, "request body")))
        return rc;
    out->include_usage = api != CO_API_OPENAI;
    if ((rc = co__opt_string(root, "model", "model", &model)) ||
        (rc = co__opt_bool(root, "stream", "stream", &out->stream)))
        goto done;
    if (api == CO_API_OPENAI) {
        json_t *so = json_object_get(root, "stream_options");
        if (so && !json_is_null(so) && !json_is_object(so)) {
            rc = co_error_set(CO_EPARSE, "stream_options must be an object, not %s", co__json_type(so));
            goto done;
        }
        if ((rc = co__opt_bool(so, "include_usage", "stream_options.include_usage", &out->include_usage)) ||
            (rc = co__opt_string(root, "user", "user", &user)))
            goto done;
        if (!user && (rc = co__opt_string(root, "safety_identifier", "safety_identifier", &user)))
            goto done;
    } else if (api == CO_API_ANTHROPIC) {
        json_t *md = json_object_get(root, "metadata");
        if (md && !json_is_null(md) && !json_is_object(md)) {
            rc = co_error_set(CO_EPARSE, "metadata must be an object, not %s", co__json_type(md));
            goto done;
        }
        if ((rc = co__opt_string(md, "user_id", "metadata.user_id", &user)))
            goto done;
    } else {
        model = NULL; /* Gemini: the model is in the URL */
    }
    if ((model && !(out->model = strdup(model))) || (user && !(out->user = strdup(user)))) {
        rc = oom();
        goto done;
    }
done:
    if (rc)
        co_chat_peek_free(out);
    json_decref(root);
    return rc;
}

void co_chat_peek_free(co_chat_peek *p)
{
    free(p->model);
    free(p->user);
    p->model = p->user = NULL;
}

/* A minimal scanner over JSON that jansson already accepted. */
static size_t ws(const char *p, size_t i, size_t n)
{
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
        i++;
    return i;
}

/* p[i] == '"': returns the index after the closing quote; *esc when it had escapes. */
static size_t skip_str(const char *p, size_t i, size_t n, int *esc)
{
    for (i++; i < n; i++) {
        if (p[i] == '\\') {
            if (esc)
                *esc = 1;
            i++;
        } else if (p[i] == '"') {
            return i + 1;
        }
    }
    return n;
}

static size_t skip_value(const char *p, size_t i, size_t n)
{
    if (i >= n)
        return n;
    if (p[i] == '"')
        return skip_str(p, i, n, NULL);
    if (p[i] == '{' || p[i] == '[') {
        int depth = 0;
        while (i < n) {
            char c = p[i];
            if (c == '"') {
                i = skip_str(p, i, n, NULL);
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if (c == '}' || c == ']') {
                if (--depth == 0)
                    return i + 1;
            }
            i++;
        }
        return n;
    }
    while (i < n && p[i] != ',' && p[i] != '}' && p[i] != ']' && p[i] != ' ' && p[i] != '\t' && p[i] != '\n' &&
           p[i] != '\r')
        i++;
    return i;
}

int co_chat_rewrite_model(co_buf *out, const char *body, size_t len, const char *model)
{
    json_t *root = NULL, *mv = NULL;
    char *enc = NULL;
    int rc = 0;
    struct {
        size_t s, e;
    } spans[8];
    size_t n_spans = 0;
    int escaped = 0;
    if ((rc = co__json_load(&root, body, len, "request body")))
        return rc;
    if (!(mv = json_string(model ? model : "")) || !(enc = co__json_text(mv))) {
        rc = co_error_set(CO_EINVAL, "model name is not valid UTF-8");
        goto done;
    }
    /* find the top-level "model" values */
    size_t i = ws(body, 0, len);
    size_t open = i; /* body[open] == '{' (jansson said it is an object) */
    i = ws(body, i + 1, len);
    while (i < len && body[i] == '"') {
        int esc = 0;
        size_t ks = i;
        i = skip_str(body, i, len, &esc);
        size_t ke = i;
        escaped |= esc;
        i = ws(body, i, len);
        i = ws(body, i + 1, len); /* ':' */
        size_t vs = i;
        i = skip_value(body, i, len);
        if (!esc && ke - ks == 7 && !memcmp(body + ks, "\"model\"", 7)) {
            if (n_spans == sizeof spans / sizeof *spans) {
                escaped = 1; /* absurd duplicate keys: take the safe path */
            } else {
                spans[n_spans].s = vs;
                spans[n_spans].e = i;
                n_spans++;
            }
        }
        i = ws(body, i, len);
        if (i < len && body[i] == ',')
            i = ws(body, i + 1, len);
    }
    if (escaped) {
        /* a key with escapes might spell "model": let jansson decide, keep key order */
        if (json_object_set(root, "model", mv)) {
            rc = oom();
            goto done;
        }
        rc = co__json_dump(out, root);
        goto done;
    }
    size_t before = out->len;
    if (n_spans == 0) {
        size_t rest = ws(body, open + 1, len);
        int empty = rest < len && body[rest] == '}';
        rc = co_buf_append(out, body, open + 1);
        if (!rc)
            rc = co_buf_printf(out, "\"model\":%s%s", enc, empty ? "" : ",");
        if (!rc)
            rc = co_buf_append(out, body + open + 1, len - open - 1);
    } else {
        size_t at = 0;
        for (size_t k = 0; k < n_spans && !rc; k++) {
            rc = co_buf_append(out, body + at, spans[k].s - at);
            if (!rc)
                rc = co_buf_puts(out, enc);
            at = spans[k].e;
        }
        if (!rc)
            rc = co_buf_append(out, body + at, len - at);
    }
    if (rc) {
        out->len = before;
        if (out->p)
            out->p[before] = '\0';
    }
done:
    free(enc);
    json_decref(mv);
    json_decref(root);
    return rc;
}

/* ---- cost ----------------------------------------------------------------- */

double co_chat_cost_usd(const co_chat_usage *u, const co_chat_prices *p)
{
    double cached = (double)(u->cached_input_tokens > 0 ? u->cached_input_tokens : 0);
    double written = (double)(u->cache_write_tokens > 0 ? u->cache_write_tokens : 0);
    double uncached = (double)u->input_tokens - cached - written;
    if (uncached < 0)
        uncached = 0;
    double output = (double)(u->output_tokens > 0 ? u->output_tokens : 0);
    double cw = p->cache_write > 0 ? p->cache_write : p->input;
    return (uncached * p->input + cached * p->cached_input + written * cw + output * p->output) / 1e6;
}

int co__chat_bad(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    co_error_setv(CO_EPARSE, fmt, ap);
    va_end(ap);
    return CO_EPARSE;
}

int co__chat_built(int err, const char *api, const char *what)
{
    return err ? co_error_set(CO_ENOMEM, "could not build the %s %s (out of memory or invalid UTF-8)", api, what) : 0;
}

co_chat_finish co_chat_finish_of(co_api api, const char *reason)
{
    switch (api) {
    case CO_API_ANTHROPIC: return co__anthropic_finish(reason);
    case CO_API_GEMINI: return co__gemini_finish(reason);
    default: return co__openai_finish(reason);
    }
}
