/* Internals of `cutover sim`, shared by the src/sim sources and the sim unit tests:
 * the scenario structs the conf engine binds, the per-worker core that turns
 * one HTTP request into one reply (transport-free, so tests call it without
 * sockets), the answer generator and the three wire protocols. */
#ifndef CO_SIM_INT_H
#define CO_SIM_INT_H

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cutover/buf.h"
#include "cutover/conf.h"
#include "cutover/sim.h"

/* ---- scenario (bound by the conf engine, see sim_scenario.c) ------------- */

enum co__sim_vendor { CO__SIM_V_ANY, CO__SIM_V_OPENAI, CO__SIM_V_ANTHROPIC, CO__SIM_V_GEMINI };
enum co__sim_mode { CO__SIM_A_AUTO, CO__SIM_A_ECHO, CO__SIM_A_TEMPLATE, CO__SIM_A_CANNED, CO__SIM_A_JSON };
enum co__sim_tools { CO__SIM_TOOLS_AUTO, CO__SIM_TOOLS_NEVER };

typedef struct co__sim_latency {
    int64_t ttft_ms, per_token_ms;
    double jitter;
} co__sim_latency;

typedef struct co__sim_faults {
    double error_500, error_429, overloaded, timeout, reset, truncate;
    int64_t retry_after_ms;
} co__sim_faults;

typedef struct co__sim_tokens {
    double chars_per_token, cached_fraction;
} co__sim_tokens;

typedef struct co__sim_tag_acc {
    char *name;
    double accuracy;
} co__sim_tag_acc;

typedef struct co__sim_canned {
    char *file;
    co_mark file_mark;
    double accuracy;
    co_vec tag_accuracy; /* of co__sim_tag_acc */
    char *wrong;
} co__sim_canned;

struct co__sim_caseset;

typedef struct co__sim_model {
    char *name;
    co_mark mark;
    int provider;          /* enum co__sim_vendor */
    int answer;            /* enum co__sim_mode; AUTO resolved at load */
    char *template;
    co_mark template_mark;
    co__sim_canned canned;
    json_t *json;
    int markdown;
    double verbosity;
    double refusal_rate;
    char *refusal;
    int tools;             /* enum co__sim_tools */
    json_t *tool_args;
    int64_t context_window;
    co__sim_latency latency;
    co__sim_faults faults;
    co__sim_tokens tokens;
    /* derived at load, not bound */
    const struct co__sim_caseset *cases;
    char *json_text;
} co__sim_model;

struct co_sim_scenario {
    int64_t seed;
    char *api_key;
    int64_t max_body;
    co_vec models;         /* of co__sim_model */
    /* derived */
    char *source;          /* file name, or "sim/default.yaml" */
    struct co__sim_caseset *casesets;
    int wildcard;          /* index of the "*" model, or -1 */
};

/* One eval-set case the canned mode can answer. */
typedef struct co__sim_case {
    char *id;
    char *prompt;          /* the last user message text, trimmed */
    char *answer;          /* NULL: the set says nothing checkable */
    char **tags;
    size_t n_tags;
} co__sim_case;

typedef struct co__sim_caseset {
    struct co__sim_caseset *next;
    char *path;
    co__sim_case *v;
    size_t n;
    uint32_t *slots;       /* open addressing over prompt hashes; index+1, 0 = empty */
    size_t n_slots;
} co__sim_caseset;

int co__sim_caseset_load(co__sim_caseset **out, const char *path, co_diags *diags);
void co__sim_caseset_free(co__sim_caseset *cs);
const co__sim_case *co__sim_caseset_find(const co__sim_caseset *cs, const char *text, size_t len);

/* The model named `name` (exact), else the "*" model, else -1. */
int co__sim_scenario_find(const co_sim_scenario *sc, const char *name);
static inline co__sim_model *co__sim_model_at(const co_sim_scenario *sc, int i)
{
    return &((co__sim_model *)sc->models.v)[i];
}

/* ---- run-time knobs (patchable through POST /_sim/models/NAME) ----------- */

typedef struct co__sim_knobs {
    co__sim_latency latency;
    co__sim_faults faults;
    double accuracy;
    int use_tag_accuracy;  /* cleared once a patch sets accuracy */
    double refusal_rate;
    double verbosity;
    int markdown;
} co__sim_knobs;

void co__sim_knobs_from_model(co__sim_knobs *k, const co__sim_model *m);
/* Applies a JSON patch; on a bad value returns CO_EINVAL with co_error_last. */
int co__sim_knobs_patch(co__sim_knobs *k, const json_t *patch);
json_t *co__sim_knobs_json(const co__sim_knobs *k);

/* ---- statistics ---------------------------------------------------------- */

enum {
    CO__SIM_S_200, CO__SIM_S_400, CO__SIM_S_401, CO__SIM_S_404, CO__SIM_S_405,
    CO__SIM_S_413, CO__SIM_S_429, CO__SIM_S_500, CO__SIM_S_503, CO__SIM_S_529,
    CO__SIM_S_OTHER, CO__SIM_S_TIMEOUT, CO__SIM_S_RESET, CO__SIM_S_TRUNCATE,
    CO__SIM_NSTAT
};

/* Written only by the owning worker; read by /_sim/stats on any worker, so
 * relaxed atomics are enough (a count may lag by a request). */
typedef struct co__sim_stats {
    _Atomic uint64_t n[CO__SIM_NSTAT];
} co__sim_stats;

/* ---- shared state of one sim (all workers) ------------------------------- */

#define CO__SIM_RING 256
#define CO__SIM_RING_BODY_MAX (64 * 1024)

struct co__sim_core;

typedef struct co__sim_shared {
    const co_sim_scenario *sc;
    uint64_t seed;
    int record;
    size_t n_models;
    _Atomic uint64_t *counters;     /* per model: request number, for the fault RNG */
    pthread_mutex_t mu;             /* guards knobs, ring */
    co__sim_knobs *knobs;           /* master copy */
    _Atomic uint64_t knobs_gen;     /* bumped on every patch; workers re-copy */
    char *ring[CO__SIM_RING];       /* rendered JSON of recorded requests */
    uint64_t ring_total;
    struct co__sim_core **cores;    /* every worker's core, for /_sim/stats */
    size_t n_cores;
} co__sim_shared;

int co__sim_shared_init(co__sim_shared *sh, const co_sim_scenario *sc, uint64_t seed, int record,
                        size_t n_cores);
void co__sim_shared_destroy(co__sim_shared *sh);

/* ---- one HTTP request in, one reply out ---------------------------------- */

#define CO__SIM_MAX_HEADERS 64

typedef struct co__sim_http {
    const char *method;             /* "GET", "POST"... */
    const char *uri;                /* path and query, as received */
    const char *hname[CO__SIM_MAX_HEADERS];
    const char *hval[CO__SIM_MAX_HEADERS];
    size_t nh;
    const char *body;
    size_t body_len;
} co__sim_http;

const char *co__sim_http_header(const co__sim_http *in, const char *name);

enum co__sim_fault { CO__SIM_F_NONE, CO__SIM_F_TIMEOUT, CO__SIM_F_RESET, CO__SIM_F_TRUNCATE };

/* One SSE event (or JSON-array element) ends at `end` in the body; `token`
 * marks events that carry generated tokens (the per-token delay goes before). */
typedef struct co__sim_cut {
    size_t end;
    int token;
} co__sim_cut;

typedef struct co__sim_reply {
    int status;
    const char *ctype;              /* static string */
    const char *id_header;          /* "x-request-id" / "request-id" / NULL */
    char id[48];
    int64_t retry_after_ms;         /* > 0: send retry-after */
    int retry_after_ms_header;      /* also send retry-after-ms (OpenAI) */
    co_buf body;
    co__sim_cut *cuts;              /* stream only */
    size_t n_cuts, cap_cuts;
    int stream;                     /* chunked with cuts */
    int fault;                      /* enum co__sim_fault */
    int64_t ttft_ms, per_token_ms;  /* stream: before the first token, between tokens */
    int64_t delay_ms;               /* JSON: before the whole reply */
} co__sim_reply;

void co__sim_reply_init(co__sim_reply *r);
void co__sim_reply_reset(co__sim_reply *r);
void co__sim_reply_free(co__sim_reply *r);
int co__sim_reply_cut(co__sim_reply *r, int token);

/* ---- per-worker core ----------------------------------------------------- */

#define CO__SIM_PARSED_MAX 8


typedef struct co__sim_core {
    co__sim_shared *sh;
    co__sim_knobs *knobs;           /* this worker's copy */
    uint64_t knobs_gen;
    co__sim_stats *stats;           /* n_models + 1 (the last: requests no model claimed) */
    uint64_t salt, reqno;           /* request ids */
    /* scratch reused by every request (no allocation on the hot path) */
    co_buf last_user, system, tool_result, text, tmp, tmp2;
    char model_buf[256];            /* Gemini: the model named in the path */
    /* request bodies parsed lately: a load test sends the same body again and
     * again, and parsing it once keeps the simulator's own CPU from skewing a
     * proxy benchmark that shares the machine with it */
    struct {
        uint64_t hash;
        size_t len;
        char *body;
        json_t *root;
    } parsed[CO__SIM_PARSED_MAX];
    unsigned parsed_next;
} co__sim_core;

int co__sim_core_init(co__sim_core *c, co__sim_shared *sh);
void co__sim_core_destroy(co__sim_core *c);
/* Routes and answers one request. Never fails: problems become HTTP errors. */
void co__sim_handle(co__sim_core *c, const co__sim_http *in, co__sim_reply *r);

/* ---- canonical request and answer ---------------------------------------- */

enum { CO__SIM_OPENAI, CO__SIM_ANTHROPIC, CO__SIM_GEMINI };

typedef struct co__sim_req {
    int proto;
    const char *model;
    int stream, include_usage;
    int sse;                        /* Gemini: alt=sse (else a streamed JSON array) */
    int64_t max_tokens;             /* 0: no limit */
    size_t prompt_chars;
    int n_messages;
    int after_tool;                 /* the last message is a tool result */
    int tool_choice;                /* 0 auto, 1 none, 2 required/any */
    const char *tool_name;          /* tool to call: the named one or the first offered */
    const json_t *tool_schema;      /* its parameter schema (may be NULL) */
    co_buf *last_user, *system, *tool_result;
} co__sim_req;

enum co__sim_finish { CO__SIM_STOP, CO__SIM_LENGTH, CO__SIM_TOOL };

typedef struct co__sim_answer {
    int finish;                     /* enum co__sim_finish */
    int tool;                       /* 1: a tool call; text holds its arguments JSON */
    const char *tool_name;
    co_buf *text;
    int64_t prompt_tokens, completion_tokens, cached_tokens;
    char id[32];                    /* deterministic id suffix (hex) */
    char tool_id[32];
    const char *model;              /* echoed model name */
    int64_t created;
    double chars_per_token;         /* for splitting the stream into tokens */
} co__sim_answer;

/* Deterministic RNG: splitmix64 seeded from xxHash. */
typedef struct co__sim_rng {
    uint64_t s;
} co__sim_rng;

void co__sim_rng_init(co__sim_rng *g, uint64_t seed, const char *model, uint64_t counter);
uint64_t co__sim_rng_next(co__sim_rng *g);
double co__sim_rng_unit(co__sim_rng *g);
/* [0,1) from xxHash of (seed, a, b): for per-case and per-prompt decisions. */
double co__sim_hash_unit(uint64_t seed, const char *a, const char *b, size_t blen);

int64_t co__sim_tokens_of(size_t chars, double chars_per_token);

/* Generates the answer for req with model m; text goes into a->text. */
int co__sim_answer_make(co__sim_core *c, const co__sim_model *m, const co__sim_knobs *k,
                        const co__sim_req *req, co__sim_rng *g, co__sim_answer *a);
/* Template expansion: {{model}} {{last_user}} {{system}} {{protocol}} {{turns}} {{tool_result}}.
 * NULL req: only validates; returns the first unknown variable via *bad. */
int co__sim_template_check(const char *tmpl, char *bad, size_t badn);

/* Splits text into token-sized pieces for streaming: returns the byte length
 * of the next piece starting at off. */
size_t co__sim_next_piece(const char *s, size_t len, size_t off, double chars_per_token);
/* Largest n' <= n that does not split a UTF-8 sequence. */
size_t co__sim_utf8_floor(const char *s, size_t n);

/* ---- output helpers ------------------------------------------------------ */

/* A co_buf writer with a sticky error, so renderers check once at the end. */
typedef struct co__sim_out {
    co_buf *b;
    int err;
} co__sim_out;

void co__sim_put(co__sim_out *o, const char *s);
void co__sim_putn(co__sim_out *o, const char *s, size_t n);
/* A decimal integer, without printf (rendering runs once per simulated reply). */
void co__sim_putll(co__sim_out *o, long long v);
void co__sim_printf(co__sim_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string literal (quoted, escaped). */
void co__sim_jstr(co__sim_out *o, const char *s, size_t n);
static inline void co__sim_jstrz(co__sim_out *o, const char *s) { co__sim_jstr(o, s ? s : "", s ? strlen(s) : 0); }
/* Any jansson value, compact. */
void co__sim_jval(co__sim_out *o, const json_t *v);

/* ---- protocols ----------------------------------------------------------- */

enum co__sim_err {
    CO__SIM_E_AUTH_MISSING, CO__SIM_E_AUTH_INVALID, CO__SIM_E_MALFORMED, CO__SIM_E_TOO_BIG,
    CO__SIM_E_MODEL, CO__SIM_E_RATE, CO__SIM_E_SERVER, CO__SIM_E_OVERLOADED,
    CO__SIM_E_CONTEXT, CO__SIM_E_INVALID, CO__SIM_E_ROUTE, CO__SIM_E_METHOD, CO__SIM_E_VERSION,
};

typedef struct co__sim_proto {
    const char *name;
    /* Writes the protocol's error for kind; detail is the model name, the
     * validation message, the route... as the kind needs. */
    void (*error)(co__sim_reply *r, int kind, const char *detail);
    /* Validates the parsed body into req; on a problem writes the 400 and returns -1. */
    int (*parse)(co__sim_core *c, const co__sim_http *in, json_t *root, co__sim_req *req,
                 co__sim_reply *r);
    /* Renders the answer (JSON or stream) into r. */
    int (*render)(co__sim_core *c, const co__sim_req *req, const co__sim_answer *a,
                  co__sim_reply *r);
} co__sim_proto;

extern const co__sim_proto co__sim_openai;
extern const co__sim_proto co__sim_anthropic;
extern const co__sim_proto co__sim_gemini;

/* Error with a formatted detail. */
void co__sim_errorf(const co__sim_proto *p, co__sim_reply *r, int kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Appends text parts of a content value (string, or array of blocks with
 * "text") to out; returns the number of bytes appended. */
size_t co__sim_content_text(const json_t *content, co_buf *out);

/* Model lists for GET /v1/models and /v1beta/models. */
void co__sim_openai_models(co__sim_core *c, co__sim_reply *r, const char *one);
void co__sim_anthropic_models(co__sim_core *c, co__sim_reply *r, const char *one);
void co__sim_gemini_models(co__sim_core *c, co__sim_reply *r, const char *one);

/* Splits a tool-argument JSON text into streaming pieces. */
size_t co__sim_next_json_piece(const char *s, size_t len, size_t off);

#endif
