/* The canonical chat model and the provider adapters' pure core: requests,
 * responses, streams and errors of the OpenAI chat.completions, Anthropic
 * Messages and Gemini generateContent APIs, translated to and from one
 * canonical form. No I/O: every function works on bytes and structs.
 *
 * Ownership: a co_chat_request / co_chat_response owns every string and
 * array inside it (malloc'd); co_chat_request_free / co_chat_response_free
 * release them. Parsers allocate (`*out` is the caller's to free); emitters
 * append to a caller-owned co_buf, whose limit bounds the output (CO_ETOOBIG).
 * Stream events handed to a callback borrow their strings: valid only for the
 * duration of the call.
 *
 * Errors: 0 or a negative CO_* code; the detail is in co_error_last(). A
 * malformed client body gives CO_EPARSE with a message safe to show the
 * client (e.g. "messages[2].content must be a string or an array of content
 * parts"); the caller maps it to a 400 in the client's API format with
 * co_chat_error_format. The complete field-by-field mapping, and every field
 * dropped in each direction, is in docs/translation.md. */
#ifndef CUTOVER_CHAT_H
#define CUTOVER_CHAT_H

#include <stddef.h>
#include <stdint.h>

#include "cutover/buf.h"

/* ---- APIs ----------------------------------------------------------------- */

/* The wire protocols. Values equal enum co_provider_kind's first three
 * (openai-compatible providers speak CO_API_OPENAI). */
typedef enum co_api { CO_API_OPENAI = 0, CO_API_ANTHROPIC = 1, CO_API_GEMINI = 2 } co_api;

/* "openai", "anthropic", "gemini". Static string; "?" when out of range. */
const char *co_api_name(co_api api);
/* Name -> api ("openai-compatible" is CO_API_OPENAI). CO_EINVAL when unknown. */
int co_api_from_name(co_api *out, const char *name);

/* ---- string vector -------------------------------------------------------- */

/* A growable list of owned strings (stop sequences, dropped field names). */
typedef struct co_chat_strv {
    char **v;
    size_t n, cap;
} co_chat_strv;

int co_chat_strv_push(co_chat_strv *sv, const char *s);
int co_chat_strv_pushf(co_chat_strv *sv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* 1 when s is in the list. */
int co_chat_strv_has(const co_chat_strv *sv, const char *s);
void co_chat_strv_free(co_chat_strv *sv);

/* ---- canonical request ---------------------------------------------------- */

typedef enum co_chat_role { CO_CHAT_USER, CO_CHAT_ASSISTANT, CO_CHAT_TOOL } co_chat_role;

typedef enum co_chat_part_kind { CO_CHAT_PART_TEXT, CO_CHAT_PART_IMAGE } co_chat_part_kind;

/* One piece of content. An image is either by URL (url set) or inline
 * (data = base64 without any "data:" prefix, media_type set). */
typedef struct co_chat_part {
    co_chat_part_kind kind;
    char *text;       /* TEXT */
    char *url;        /* IMAGE by URL, else NULL */
    char *media_type; /* IMAGE: "image/png"...; always set with data, may be NULL with url */
    char *data;       /* IMAGE inline: base64, else NULL */
} co_chat_part;

/* A tool call the assistant made. arguments is JSON text (normally an
 * object), exactly as received; "" means none. */
typedef struct co_chat_tool_call {
    char *id;
    char *name;
    char *arguments;
} co_chat_tool_call;

typedef struct co_chat_message {
    co_chat_role role;
    co_chat_part *parts;           /* USER: text/images; ASSISTANT: text; TOOL: the result */
    size_t n_parts;
    co_chat_tool_call *tool_calls; /* ASSISTANT only */
    size_t n_tool_calls;
    char *tool_call_id;            /* TOOL: the call this result answers (never NULL) */
    int is_error;                  /* TOOL: the tool failed */
} co_chat_message;

typedef struct co_chat_tool {
    char *name;
    char *description; /* may be NULL */
    char *parameters;  /* JSON Schema (object) as JSON text; NULL = no parameters */
} co_chat_tool;

typedef enum co_chat_tool_choice {
    CO_CHAT_TOOLS_UNSET,    /* not given: the API's default (auto when tools exist) */
    CO_CHAT_TOOLS_AUTO,
    CO_CHAT_TOOLS_NONE,
    CO_CHAT_TOOLS_REQUIRED, /* OpenAI "required", Anthropic "any", Gemini ANY */
    CO_CHAT_TOOLS_NAMED,    /* tool_choice_name */
} co_chat_tool_choice;

typedef enum co_chat_format {
    CO_CHAT_FORMAT_UNSET,
    CO_CHAT_FORMAT_TEXT,
    CO_CHAT_FORMAT_JSON_OBJECT, /* "JSON mode" */
    CO_CHAT_FORMAT_JSON_SCHEMA, /* format_schema (+ format_name, format_strict) */
} co_chat_format;

typedef struct co_chat_request {
    char *model;                  /* NULL only when the body had none (Gemini: from the URL) */
    char *system;                 /* system/developer text; NULL when none */
    co_chat_message *messages;
    size_t n_messages;
    co_chat_tool *tools;
    size_t n_tools;
    co_chat_tool_choice tool_choice;
    char *tool_choice_name;       /* NAMED */
    int parallel_tool_calls;      /* -1 unset, 0 one call at most, 1 parallel allowed */
    int has_temperature, has_top_p;
    double temperature, top_p;
    int64_t max_tokens;           /* 0 = not given */
    co_chat_strv stop;            /* stop sequences */
    int stream;
    int include_usage;            /* OpenAI stream_options.include_usage */
    char *user;                   /* OpenAI user, Anthropic metadata.user_id; NULL when none */
    co_chat_format format;
    char *format_name;            /* JSON_SCHEMA: the schema's name, may be NULL */
    char *format_schema;          /* JSON_SCHEMA: JSON text */
    int format_strict;            /* JSON_SCHEMA: -1 unset, 0, 1 */
    /* Names of the fields the parser met but could not carry into the
     * canonical form ("frequency_penalty", "messages[].content[].cache_control":
     * array indexes are left out so that names can be counted), each once, in
     * body order: the gateway logs and counts them. */
    co_chat_strv dropped;
} co_chat_request;

/* An empty request (tool_choice UNSET, parallel_tool_calls and format_strict
 * -1). Free with co_chat_request_free. */
int co_chat_request_new(co_chat_request **out);
void co_chat_request_free(co_chat_request *req);

/* Builders, for code that makes requests itself (eval, replay) and for the
 * parsers. Returned pointers stay valid until the next add to the same array. */
int co_chat_request_set_str(char **field, const char *s); /* replaces *field with a copy (NULL clears) */
int co_chat_request_add_message(co_chat_request *req, co_chat_role role, co_chat_message **out);
int co_chat_request_add_tool(co_chat_request *req, const char *name, const char *description,
                             const char *parameters_json);
int co_chat_message_add_text(co_chat_message *m, const char *text, size_t len);
int co_chat_message_add_image_url(co_chat_message *m, const char *url, const char *media_type);
int co_chat_message_add_image_data(co_chat_message *m, const char *media_type, const char *base64);
int co_chat_message_add_tool_call(co_chat_message *m, const char *id, const char *name,
                                  const char *arguments);
/* All the text parts of a message, concatenated with `sep` between them, as a
 * malloc'd string ("" when there is none). */
int co_chat_message_text(char **out, const co_chat_message *m, const char *sep);

typedef struct co_chat_parse_opts {
    const char *model;  /* Gemini: the model named in the URL path (the body has none) */
    int stream;         /* Gemini: the URL was :streamGenerateContent */
} co_chat_parse_opts;

/* Parses a client request body of `api` (OpenAI chat.completions, Anthropic
 * messages, Gemini generateContent) into the canonical form. opts may be NULL.
 * CO_EPARSE with a client-safe message on invalid JSON or an invalid field. */
int co_chat_request_parse(co_chat_request **out, co_api api, const char *body, size_t len,
                          const co_chat_parse_opts *opts);

#define CO_CHAT_DEFAULT_MAX_TOKENS 4096

typedef struct co_chat_emit_opts {
    /* Anthropic requires max_tokens: used when the request has none.
     * 0 = CO_CHAT_DEFAULT_MAX_TOKENS. */
    int64_t default_max_tokens;
    /* OpenAI: write the legacy "max_tokens" instead of "max_completion_tokens"
     * (for OpenAI-compatible servers that only know the old name). */
    int openai_legacy_max_tokens;
    /* When not NULL, receives the names of canonical fields the target API
     * cannot carry (e.g. "user" to Gemini, "messages[].is_error" to OpenAI),
     * each once. */
    co_chat_strv *dropped;
} co_chat_emit_opts;

/* Appends the request body for `api` to out (Gemini: the model and the stream
 * flag go in the URL, see co_chat_gemini_path). opts may be NULL. */
int co_chat_request_emit(co_buf *out, const co_chat_request *req, co_api api,
                         const co_chat_emit_opts *opts);

/* "models/<model>:generateContent" or "models/<model>:streamGenerateContent?alt=sse". */
int co_chat_gemini_path(co_buf *out, const char *model, int stream);
/* The model and stream flag of a Gemini path ("/v1beta/models/gemini-2.5-pro:generateContent").
 * *model is malloc'd. CO_EPARSE when the path is not a generate call. */
int co_chat_gemini_path_parse(char **model, int *stream, const char *path);

/* ---- canonical response --------------------------------------------------- */

typedef enum co_chat_finish {
    CO_CHAT_FINISH_NONE,           /* not known (yet) */
    CO_CHAT_FINISH_STOP,           /* natural end or a stop sequence */
    CO_CHAT_FINISH_LENGTH,         /* max tokens */
    CO_CHAT_FINISH_TOOL_CALLS,
    CO_CHAT_FINISH_CONTENT_FILTER, /* safety / refusal */
    CO_CHAT_FINISH_ERROR,
    CO_CHAT_FINISH_OTHER,          /* finish_raw says what */
} co_chat_finish;

/* "stop", "length", "tool_calls", "content_filter", "error", "other", "none". */
const char *co_chat_finish_name(co_chat_finish f);
/* An API's own finish/stop reason string ("stop", "end_turn", "MAX_TOKENS"...) as canonical. */
co_chat_finish co_chat_finish_of(co_api api, const char *reason);

/* Token counts, normalised: input_tokens is the whole prompt INCLUDING cached
 * reads and cache writes (OpenAI's convention); cached_input_tokens and
 * cache_write_tokens are parts of it. output_tokens includes reasoning. */
typedef struct co_chat_usage {
    int known;                  /* the upstream reported usage */
    int64_t input_tokens;
    int64_t output_tokens;
    int64_t cached_input_tokens;
    int64_t cache_write_tokens; /* Anthropic cache_creation_input_tokens */
} co_chat_usage;

/* Error kinds, after Anthropic's list (the richest of the three). */
typedef enum co_chat_err_kind {
    CO_CHAT_ERR_INVALID_REQUEST,   /* 400 */
    CO_CHAT_ERR_AUTHENTICATION,    /* 401 */
    CO_CHAT_ERR_PERMISSION,        /* 403 */
    CO_CHAT_ERR_NOT_FOUND,         /* 404 */
    CO_CHAT_ERR_REQUEST_TOO_LARGE, /* 413 */
    CO_CHAT_ERR_RATE_LIMIT,        /* 429 */
    CO_CHAT_ERR_API,               /* 500 */
    CO_CHAT_ERR_OVERLOADED,        /* 529 Anthropic, 503 others */
} co_chat_err_kind;

/* Anthropic's type string for a kind ("rate_limit_error"). */
const char *co_chat_err_kind_name(co_chat_err_kind k);
/* The HTTP status `api` uses for a kind. */
int co_chat_err_status(co_api api, co_chat_err_kind k);
/* The kind for an HTTP status (4xx/5xx; anything else -> API). */
co_chat_err_kind co_chat_err_kind_of_status(int status);

typedef struct co_chat_error {
    int status;               /* HTTP status (0 when unknown, e.g. an in-stream error) */
    co_chat_err_kind kind;
    char type[64];            /* the upstream's own type/status/code string, "" when none */
    char message[1024];       /* truncated to fit */
} co_chat_error;

typedef struct co_chat_response {
    char *id;
    char *model;
    int64_t created;               /* unix seconds (OpenAI); 0 when unknown */
    char *text;                    /* the answer text; NULL when there is none */
    co_chat_tool_call *tool_calls;
    size_t n_tool_calls;
    co_chat_finish finish;
    char *finish_raw;              /* the upstream's own string ("end_turn", "MAX_TOKENS") */
    co_api finish_api;             /* whose string finish_raw is */
    char *stop_sequence;           /* the stop sequence that matched, when known */
    co_chat_usage usage;
    int has_error;                 /* a stream ended with an error event */
    co_chat_error error;
} co_chat_response;

int co_chat_response_new(co_chat_response **out);
void co_chat_response_free(co_chat_response *r);

/* Parses a non-streaming 2xx response body of `api`. CO_EPARSE when it is not
 * one. */
int co_chat_response_parse(co_chat_response **out, co_api api, const char *body, size_t len);
/* Appends the non-streaming response body for a client of `api`. Missing id
 * or created are made up (ids: "chatcmpl-"/"msg_" + random hex). */
int co_chat_response_emit(co_buf *out, const co_chat_response *r, co_api api);

/* ---- errors --------------------------------------------------------------- */

/* Appends an error body in `api`'s shape: OpenAI {"error":{message,type,param,
 * code}}, Anthropic {"type":"error","error":{type,message}}, Gemini
 * {"error":{code,message,status}}. status 0 = co_chat_err_status(api, kind).
 * param (OpenAI only) may be NULL. */
int co_chat_error_format(co_buf *out, co_api api, int status, co_chat_err_kind kind,
                         const char *message, const char *param);
/* Reads an upstream error body of `api` (or anything else a proxy put there:
 * HTML, text, nothing) into status, kind and message. Never fails on bad input;
 * the kind comes from the body's type when it has one, else from the status. */
void co_chat_error_parse(co_chat_error *out, co_api api, int status, const char *body, size_t len);

/* ---- streams -------------------------------------------------------------- */

/* Incremental SSE parser (WHATWG event-stream rules): feed byte chunks split
 * anywhere; LF, CRLF or CR line ends; ':' comments; multi-line data joined
 * with '\n'; `event:` names ("message" when absent); a leading BOM is skipped.
 * A single event (its lines and data) larger than max_event -> CO_ETOOBIG. */
typedef struct co_sse_event {
    const char *event;  /* never NULL */
    const char *data;   /* NUL-terminated; data_len excludes the NUL */
    size_t data_len;
    const char *id;     /* last event id seen; "" when none */
} co_sse_event;

/* Return 0 to go on; anything else stops the parser and is returned by feed. */
typedef int (*co_sse_fn)(void *ctx, const co_sse_event *ev);

typedef struct co_sse_parser {
    co_sse_fn fn;
    void *ctx;
    size_t max_event;
    co_buf line, data, event, id;
    int has_data;     /* a data field was seen since the last dispatch */
    int after_cr;     /* the last byte was CR: a following LF ends nothing */
    int bom_checked;
    int failed;       /* a previous error: further feeds return it */
} co_sse_parser;

void co_sse_init(co_sse_parser *p, size_t max_event, co_sse_fn fn, void *ctx);
int co_sse_feed(co_sse_parser *p, const void *data, size_t n);
/* End of input: an unterminated last line is taken as a line and a pending
 * event is dispatched (lenient: upstreams sometimes omit the final blank line). */
int co_sse_finish(co_sse_parser *p);
void co_sse_free(co_sse_parser *p);

typedef enum co_chat_ev_kind {
    CO_CHAT_EV_START,      /* id, model, created; usage when the upstream tells it up front */
    CO_CHAT_EV_TEXT,       /* text, len: a piece of the answer */
    CO_CHAT_EV_TOOL_START, /* index, tool_id, tool_name: a new tool call */
    CO_CHAT_EV_TOOL_ARGS,  /* index, text, len: a piece of that call's arguments JSON */
    CO_CHAT_EV_FINISH,     /* finish, finish_raw, finish_api, stop_sequence */
    CO_CHAT_EV_USAGE,      /* usage (may repeat: the last one holds the totals) */
    CO_CHAT_EV_ERROR,      /* error: the upstream sent an error event */
    CO_CHAT_EV_END,        /* the stream is complete */
} co_chat_ev_kind;

/* A canonical stream event. Order: START, then TEXT / TOOL_START / TOOL_ARGS,
 * then FINISH, USAGE, END. ERROR may come at any point and ends the stream. */
typedef struct co_chat_event {
    co_chat_ev_kind kind;
    const char *id, *model;     /* START */
    int64_t created;            /* START (OpenAI; 0 otherwise) */
    const char *text;           /* TEXT, TOOL_ARGS */
    size_t len;
    int index;                  /* TOOL_*: 0-based tool call index in this answer */
    const char *tool_id;        /* TOOL_START */
    const char *tool_name;      /* TOOL_START */
    co_chat_finish finish;      /* FINISH */
    const char *finish_raw;     /* FINISH: upstream string, may be NULL */
    co_api finish_api;          /* FINISH */
    const char *stop_sequence;  /* FINISH, may be NULL */
    co_chat_usage usage;        /* USAGE; START (usage.known when set) */
    const co_chat_error *error; /* ERROR */
} co_chat_event;

/* Return 0 to go on; anything else stops the decoder and is returned. */
typedef int (*co_chat_event_fn)(void *ctx, const co_chat_event *ev);

/* An upstream SSE stream of `api` -> canonical events. */
typedef struct co_chat_decoder co_chat_decoder;

int co_chat_decoder_new(co_chat_decoder **out, co_api api, size_t max_event, co_chat_event_fn fn,
                        void *ctx);
/* Feeds raw bytes as they arrive. */
int co_chat_decoder_feed(co_chat_decoder *d, const void *data, size_t n);
/* Feeds one already-split SSE event. */
int co_chat_decoder_event(co_chat_decoder *d, const co_sse_event *ev);
/* End of the upstream body: flushes (Gemini has no terminator: its USAGE and
 * END come from here). CO_EUPSTREAM when the stream stopped before finishing. */
int co_chat_decoder_finish(co_chat_decoder *d);
/* 1 once END or ERROR was delivered. */
int co_chat_decoder_done(const co_chat_decoder *d);
void co_chat_decoder_free(co_chat_decoder *d);

typedef struct co_chat_encode_opts {
    int include_usage;   /* OpenAI: send the usage chunk (stream_options.include_usage) */
    const char *model;   /* report this model instead of the upstream's (NULL: upstream's) */
    int64_t created;     /* OpenAI "created"; 0: START's, else the current time */
} co_chat_encode_opts;

/* Canonical events -> the SSE bytes a client of `api` expects, event by event. */
typedef struct co_chat_encoder co_chat_encoder;

int co_chat_encoder_new(co_chat_encoder **out, co_api api, const co_chat_encode_opts *opts);
/* Appends the bytes for ev (possibly none: some are held until a later event). */
int co_chat_encoder_event(co_chat_encoder *e, co_buf *out, const co_chat_event *ev);
void co_chat_encoder_free(co_chat_encoder *e);

/* Canonical events -> a complete co_chat_response (collecting a shadow stream). */
typedef struct co_chat_accum co_chat_accum;

/* max_bytes bounds the text and arguments collected (CO_ETOOBIG). */
int co_chat_accum_new(co_chat_accum **out, size_t max_bytes);
/* A co_chat_event_fn: pass the accumulator as ctx. */
int co_chat_accum_event(void *accum, const co_chat_event *ev);
/* 1 once END or ERROR was seen. */
int co_chat_accum_complete(const co_chat_accum *a);
/* Hands over the response collected so far (a call without argument bytes
 * gets "{}") and starts the accumulator over empty. *out is the caller's. */
int co_chat_accum_take(co_chat_accum *a, co_chat_response **out);
void co_chat_accum_free(co_chat_accum *a);

/* ---- fast path ------------------------------------------------------------ */

/* What the gateway needs from a body without translating it. */
typedef struct co_chat_peek {
    char *model;       /* NULL when absent (always for Gemini) */
    char *user;        /* OpenAI user (or safety_identifier), Anthropic metadata.user_id */
    int stream;
    int include_usage; /* OpenAI stream_options.include_usage (Anthropic/Gemini: 1) */
} co_chat_peek;

/* CO_EPARSE when the body is not a JSON object or a read field has the wrong type. */
int co_chat_peek_parse(co_chat_peek *out, co_api api, const char *body, size_t len);
void co_chat_peek_free(co_chat_peek *p);

/* Appends body to out with its top-level "model" string replaced by model
 * (added first when absent). Only the model value's bytes change when the key
 * is found literally; otherwise the body is parsed and dumped with key order
 * kept. CO_EPARSE when the body is not a JSON object. */
int co_chat_rewrite_model(co_buf *out, const char *body, size_t len, const char *model);

/* ---- cost ----------------------------------------------------------------- */

typedef struct co_chat_prices {
    double input;        /* USD per 1M uncached input tokens */
    double output;       /* USD per 1M output tokens */
    double cached_input; /* USD per 1M cached input tokens (cache reads) */
    double cache_write;  /* USD per 1M cache-write tokens; 0 = the input price */
} co_chat_prices;

/* USD for usage: cached tokens at the cached price and not again as input.
 * (Usage is normalised at parse time, see co_chat_usage.) */
double co_chat_cost_usd(const co_chat_usage *u, const co_chat_prices *p);

/* ---- internal to src/providers ------------------------------------------- */
#ifdef CO__CHAT_INTERNAL
#include <jansson.h>

#include "cutover/error.h"

/* JSON helpers (chat.c). */
int co__json_load(json_t **out, const char *body, size_t len, const char *what);
int co__json_dump(co_buf *out, const json_t *j);
/* Dumps any JSON value compactly into a malloc'd string. */
char *co__json_text(const json_t *j);
char *co__strdup(const char *s);
char *co__strndup(const char *s, size_t n);
/* Adds a dropped-field name to the list unless v is NULL or null, or the name
 * is there already (sv may be NULL: nothing is recorded). */
int co__drop(co_chat_strv *sv, const json_t *v, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Records every key of obj not in known (NULL-terminated), as prefix+key. */
int co__drop_unknown(co_chat_strv *sv, const json_t *obj, const char *prefix, const char *const *known);
const char *co__json_type(const json_t *v);
/* Optional typed fields: 0 when absent or null (the output left as is). */
int co__opt_string(const json_t *obj, const char *key, const char *path, const char **out);
int co__opt_bool(const json_t *obj, const char *key, const char *path, int *out);
int co__opt_number(const json_t *obj, const char *key, const char *path, double *out, int *has);
int co__opt_posint(const json_t *obj, const char *key, const char *path, int64_t *out);
/* Builders that collect failure in *err (1) instead of checking each call. */
void co__jset(int *err, json_t *obj, const char *key, json_t *v);
void co__jpush(int *err, json_t *arr, json_t *v);
json_t *co__jstr(const char *s);        /* json_string, or null for NULL */
json_t *co__jraw(const char *text);     /* parsed JSON text, or NULL */
/* "data:<media>;base64,<data>" -> parts; 0 when s is such a URL. */
int co__data_url(const char *s, char **media, char **data);
/* Makes up a response id with prefix. */
char *co__make_id(const char *prefix);
/* Sets req->system / appends to it with sep. */
int co__append_system(co_chat_request *req, const char *text, const char *sep);
/* Tool-call id for a canonical id made safe for Anthropic ([A-Za-z0-9_-]+). */
char *co__safe_id(const char *id);
/* Error kind from a type string ("rate_limit_error", "RESOURCE_EXHAUSTED"); -1 when unknown. */
int co__err_kind_of_type(const char *type);
/* Copies a message into a fixed co_chat_error field. */
void co__err_copy(char *dst, size_t n, const char *src, size_t len);

/* Per-API entry points (openai.c, anthropic.c, gemini.c). */
int co__openai_request_parse(co_chat_request *req, json_t *root);
int co__anthropic_request_parse(co_chat_request *req, json_t *root);
int co__gemini_request_parse(co_chat_request *req, json_t *root);
int co__openai_request_emit(json_t **out, const co_chat_request *req, const co_chat_emit_opts *o);
int co__anthropic_request_emit(json_t **out, const co_chat_request *req, const co_chat_emit_opts *o);
int co__gemini_request_emit(json_t **out, const co_chat_request *req, const co_chat_emit_opts *o);
int co__openai_response_parse(co_chat_response *r, json_t *root);
int co__anthropic_response_parse(co_chat_response *r, json_t *root);
int co__gemini_response_parse(co_chat_response *r, json_t *root);
int co__openai_response_emit(json_t **out, const co_chat_response *r);
int co__anthropic_response_emit(json_t **out, const co_chat_response *r);
int co__gemini_response_emit(json_t **out, const co_chat_response *r);
int co__openai_error_format(json_t **out, int status, co_chat_err_kind kind, const char *msg, const char *param);
int co__anthropic_error_format(json_t **out, int status, co_chat_err_kind kind, const char *msg);
int co__gemini_error_format(json_t **out, int status, co_chat_err_kind kind, const char *msg);
void co__openai_error_parse(co_chat_error *e, const json_t *root);
void co__anthropic_error_parse(co_chat_error *e, const json_t *root);
void co__gemini_error_parse(co_chat_error *e, const json_t *root);
co_chat_finish co__openai_finish(const char *s);
co_chat_finish co__anthropic_finish(const char *s);
co_chat_finish co__gemini_finish(const char *s);
void co__openai_usage(co_chat_usage *u, const json_t *usage);
void co__anthropic_usage(co_chat_usage *u, const json_t *usage);
void co__gemini_usage(co_chat_usage *u, const json_t *usage);

/* Stream decoder state (all APIs; each uses its part). */
struct co_chat_decoder {
    co_api api;
    co_sse_parser sse;
    co_chat_event_fn fn;
    void *ctx;
    int started, finished, ended, errored;
    int n_events;          /* SSE events seen, for messages */
    int n_tools;           /* tool calls started */
    co_chat_usage usage;   /* Anthropic: message_start's; Gemini: the last seen */
    int has_usage;
    int *block_tool;       /* Anthropic: content block index -> tool index (-1: not a tool) */
    size_t n_blocks;
    char *id;              /* Gemini: responseId for made-up tool ids */
};
int co__deliver(co_chat_decoder *d, co_chat_event *ev);
int co__openai_decode(co_chat_decoder *d, const co_sse_event *ev);
int co__anthropic_decode(co_chat_decoder *d, const co_sse_event *ev);
int co__gemini_decode(co_chat_decoder *d, const co_sse_event *ev);

/* Stream encoder state. */
typedef struct co__enc_tool {
    int index;        /* canonical index */
    char *id, *name;
    co_buf args;      /* Gemini: held until the call is complete */
    int has_args;
    int block;        /* Anthropic: content block index */
} co__enc_tool;

struct co_chat_encoder {
    co_api api;
    co_chat_encode_opts opts;
    char *id, *model;
    int64_t created;
    int started, finished, ended;
    co_chat_finish finish;
    char *finish_raw;
    co_api finish_api;
    char *stop_sequence;
    co_chat_usage usage;
    int has_usage;
    co_chat_usage start_usage;
    co__enc_tool *tools;
    size_t n_tools;
    int open_block;   /* Anthropic: index of the open content block, -1 none */
    int open_tool;    /* Anthropic: canonical tool index of the open block, -1 text */
    int n_blocks;
};
int co__openai_encode(co_chat_encoder *e, co_buf *out, const co_chat_event *ev);
int co__anthropic_encode(co_chat_encoder *e, co_buf *out, const co_chat_event *ev);
int co__gemini_encode(co_chat_encoder *e, co_buf *out, const co_chat_event *ev);
co__enc_tool *co__enc_tool_get(co_chat_encoder *e, int index);
int co__enc_tool_add(co_chat_encoder *e, const co_chat_event *ev, co__enc_tool **out);
/* Writes "event: name\n" (when name) + "data: " + JSON + eol to out. */
int co__sse_write(co_buf *out, const char *name, const json_t *j, const char *eol);
/* Sets a CO_EPARSE detail (safe to show a client) and returns CO_EPARSE. */
int co__chat_bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* err != 0 after building JSON: CO_ENOMEM naming the API and what was built. */
int co__chat_built(int err, const char *api, const char *what);
#endif /* CO__CHAT_INTERNAL */

#endif
