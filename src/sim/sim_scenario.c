/* Sim scenarios: the schema table the conf engine binds scenario YAML with
 * (models, answers, latency, faults, tokens), the checks that cross fields,
 * and the canned answer sets read from eval-set files (YAML list, mapping
 * with cases:, or JSONL) with a prompt -> case index. */
#include <ctype.h>
#include <errno.h>
#include <libfyaml.h>
#include <libgen.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "cutover/util.h"
#include "cutover/yaml.h"
#include "sim/sim_int.h"

#define CASESET_MAX_BYTES ((size_t)64 << 20)

/* ---- schema -------------------------------------------------------------- */

static const char *const vendor_names[] = {"any", "openai", "anthropic", "gemini", NULL};
static const char *const answer_names[] = {"auto", "echo", "template", "canned", "json", NULL};
static const char *const tools_names[] = {"auto", "never", NULL};

#define RATE(NAME, STRUCT, FIELD, HELP)                                                            \
    {.name = NAME, .type = CO_T_DOUBLE, .offset = offsetof(STRUCT, FIELD), .min = 0, .max = 1,    \
     .def = "0", .help = HELP}

static const co_opt latency_opts[] = {
    {.name = "ttft", .type = CO_T_DURATION, .offset = offsetof(co__sim_latency, ttft_ms), .min = 0,
     .max = 600000, .def = "0ms",
     .help = "time to the first token; for a JSON reply, added before the whole reply"},
    {.name = "per_token", .type = CO_T_DURATION, .offset = offsetof(co__sim_latency, per_token_ms),
     .min = 0, .max = 60000, .def = "0ms",
     .help = "delay between streamed tokens; for a JSON reply, times the completion tokens"},
    {.name = "jitter", .type = CO_T_DOUBLE, .offset = offsetof(co__sim_latency, jitter), .min = 0,
     .max = 1, .def = "0", .help = "random +/- fraction applied to both delays (deterministic per request)"},
    {0},
};
static const co_schema latency_schema = {.name = "latency", .size = sizeof(co__sim_latency), .opts = latency_opts};

static const co_opt faults_opts[] = {
    RATE("error_500", co__sim_faults, error_500, "fraction of requests answered 500 in the API's error shape"),
    RATE("error_429", co__sim_faults, error_429, "fraction answered 429 rate-limited, with a retry-after header"),
    RATE("overloaded", co__sim_faults, overloaded, "fraction answered overloaded (Anthropic 529, others 503)"),
    {.name = "retry_after", .type = CO_T_DURATION, .offset = offsetof(co__sim_faults, retry_after_ms),
     .min = 0, .max = 3600000, .def = "1s", .help = "retry-after sent with a 429"},
    RATE("timeout", co__sim_faults, timeout, "fraction never answered: the connection is held until the client gives up"),
    RATE("reset", co__sim_faults, reset, "fraction whose connection is reset with no response"),
    RATE("truncate", co__sim_faults, truncate, "fraction cut mid-way: a stream stops half-way, a JSON body short"),
    {0},
};
static const co_schema faults_schema = {.name = "faults", .size = sizeof(co__sim_faults), .opts = faults_opts};

static const co_opt tokens_opts[] = {
    {.name = "chars_per_token", .type = CO_T_DOUBLE, .offset = offsetof(co__sim_tokens, chars_per_token),
     .min = 0.5, .max = 100, .def = "4", .help = "characters per token for usage counts and stream pieces"},
    RATE("cached_fraction", co__sim_tokens, cached_fraction, "fraction of prompt tokens reported as cached"),
    {0},
};
static const co_schema tokens_schema = {.name = "tokens", .size = sizeof(co__sim_tokens), .opts = tokens_opts};

static const co_opt tag_acc_opts[] = {
    {.name = "accuracy", .type = CO_T_DOUBLE, .offset = offsetof(co__sim_tag_acc, accuracy), .min = 0,
     .max = 1, .flags = CO_OPT_REQUIRED, .help = "probability a case with this tag is answered correctly"},
    {0},
};
static const co_schema tag_acc_schema = {
    .name = "tag accuracy",
    .size = sizeof(co__sim_tag_acc),
    .opts = tag_acc_opts,
    .name_offset = CO_MARK_AT(offsetof(co__sim_tag_acc, name)),
    .scalar_key = "accuracy",
};

static const co_opt canned_opts[] = {
    {.name = "file", .type = CO_T_STR, .offset = offsetof(co__sim_canned, file),
     .mark_offset = CO_MARK_AT(offsetof(co__sim_canned, file_mark)),
     .help = "eval set (YAML list, mapping with cases:, or JSONL), relative to the scenario"},
    {.name = "accuracy", .type = CO_T_DOUBLE, .offset = offsetof(co__sim_canned, accuracy), .min = 0,
     .max = 1, .def = "1", .help = "probability a case is answered correctly (fixed per seed, model and case id)"},
    {.name = "tag_accuracy", .type = CO_T_MAP, .offset = offsetof(co__sim_canned, tag_accuracy),
     .sub = &tag_acc_schema, .help = "accuracy per case tag, overriding accuracy (tag: 0.6)"},
    {.name = "wrong", .type = CO_T_STR, .offset = offsetof(co__sim_canned, wrong),
     .def = "I am not sure.", .help = "the answer given when a case is answered wrongly"},
    {0},
};
static const co_schema canned_schema = {.name = "canned", .size = sizeof(co__sim_canned), .opts = canned_opts};

#define M(f) offsetof(co__sim_model, f)

static void model_check(void *item, co_conf_ctx *ctx, co_mark at);

static const co_opt model_opts[] = {
    {.name = "provider", .type = CO_T_ENUM, .offset = M(provider), .enums = vendor_names, .def = "any",
     .help = "the API that serves this model (any: all three)"},
    {.name = "answer", .type = CO_T_ENUM, .offset = M(answer), .enums = answer_names, .def = "auto",
     .help = "what the model says: echo the last user message, a template, canned eval answers, "
             "or fixed JSON (auto: whichever of template/canned/json is given, else echo)"},
    {.name = "template", .type = CO_T_STR, .offset = M(template), .mark_offset = CO_MARK_AT(M(template_mark)),
     .help = "answer text with {{model}} {{last_user}} {{system}} {{protocol}} {{turns}} {{tool_result}}"},
    {.name = "canned", .type = CO_T_SECTION, .offset = M(canned), .sub = &canned_schema,
     .help = "answers from an eval set, right with a given accuracy"},
    {.name = "json", .type = CO_T_JSON, .offset = M(json), .help = "a fixed JSON value returned as the answer text"},
    {.name = "markdown", .type = CO_T_BOOL, .offset = M(markdown), .def = "false",
     .help = "answer with a heading and bullets (JSON in a ```json fence)"},
    {.name = "verbosity", .type = CO_T_DOUBLE, .offset = M(verbosity), .min = 0.05, .max = 20, .def = "1",
     .help = "answer length multiplier (filler sentences above 1, fewer words below)"},
    {.name = "refusal_rate", .type = CO_T_DOUBLE, .offset = M(refusal_rate), .min = 0, .max = 1, .def = "0",
     .help = "fraction of prompts refused (fixed per prompt)"},
    {.name = "refusal", .type = CO_T_STR, .offset = M(refusal),
     .def = "I'm sorry, but I can't help with that.", .help = "the refusal text"},
    {.name = "tools", .type = CO_T_ENUM, .offset = M(tools), .enums = tools_names, .def = "auto",
     .help = "auto: call the first offered tool (unless the last message is a tool result); "
             "never: only when tool_choice forces it"},
    {.name = "tool_args", .type = CO_T_JSON, .offset = M(tool_args),
     .help = "fixed tool-call arguments (an object); default: built from the tool's schema"},
    {.name = "context_window", .type = CO_T_INT, .offset = M(context_window), .min = 0, .max = 1e9,
     .def = "0", .help = "prompt tokens beyond this get the API's context-length 400 (0: no limit)"},
    {.name = "latency", .type = CO_T_SECTION, .offset = M(latency), .sub = &latency_schema,
     .help = "time to first token and per-token delay"},
    {.name = "faults", .type = CO_T_SECTION, .offset = M(faults), .sub = &faults_schema,
     .help = "injected errors, timeouts, resets and truncations (rates 0..1)"},
    {.name = "tokens", .type = CO_T_SECTION, .offset = M(tokens), .sub = &tokens_schema,
     .help = "how usage is counted"},
    {0},
};
static const co_schema model_schema = {
    .name = "model",
    .size = sizeof(co__sim_model),
    .opts = model_opts,
    .name_offset = CO_MARK_AT(M(name)),
    .mark_offset = CO_MARK_AT(M(mark)),
    .check = model_check,
};

static const co_opt root_opts[] = {
    {.name = "seed", .type = CO_T_INT, .offset = offsetof(co_sim_scenario, seed), .def = "42", .help = "seed of every random decision (faults, jitter, canned accuracy)"},
    {.name = "api_key", .type = CO_T_STR, .offset = offsetof(co_sim_scenario, api_key),
     .help = "the only API key accepted (default: any non-empty key)"},
    {.name = "max_body", .type = CO_T_SIZE, .offset = offsetof(co_sim_scenario, max_body), .min = 1024,
     .max = 1e9, .def = "4MiB", .help = "request bodies above this get 413"},
    {.name = "models", .type = CO_T_MAP, .offset = offsetof(co_sim_scenario, models), .sub = &model_schema,
     .flags = CO_OPT_REQUIRED | CO_OPT_NONEMPTY,
     .help = "simulated models by the name clients send (\"*\" answers any other name)"},
    {0},
};
static const co_schema root_schema = {.name = "sim scenario", .size = sizeof(co_sim_scenario), .opts = root_opts};

const co_schema *co_sim_scenario_schema(void) { return &root_schema; }

static void model_check(void *item, co_conf_ctx *ctx, co_mark at)
{
    co__sim_model *m = item;
    if (m->answer == CO__SIM_A_AUTO)
        m->answer = m->template ? CO__SIM_A_TEMPLATE
                  : m->canned.file ? CO__SIM_A_CANNED
                  : m->json ? CO__SIM_A_JSON
                            : CO__SIM_A_ECHO;
    if (m->answer == CO__SIM_A_TEMPLATE && (!m->template || !*m->template))
        co_conf_error(ctx, at, "model '%s': answer: template needs a template: text", m->name);
    if (m->answer == CO__SIM_A_CANNED && (!m->canned.file || !*m->canned.file))
        co_conf_error(ctx, at, "model '%s': answer: canned needs canned: {file: EVALSET}", m->name);
    if (m->answer == CO__SIM_A_JSON && !m->json)
        co_conf_error(ctx, at, "model '%s': answer: json needs a json: value", m->name);
    if (m->template) {
        char bad[64];
        if (co__sim_template_check(m->template, bad, sizeof bad))
            co_conf_error(ctx, m->template_mark.line ? m->template_mark : at,
                          "unknown template variable {{%s}} (known: model, last_user, system, protocol, "
                          "turns, tool_result)",
                          bad);
    }
    if (m->tool_args && !json_is_object(m->tool_args))
        co_conf_error(ctx, at, "model '%s': tool_args must be a mapping (the call's arguments)", m->name);
}

/* ---- eval sets for canned answers ---------------------------------------- */


static json_t *plain_scalar(const char *s, size_t n)
{
    char buf[64];
    if (n == 0 || (n == 1 && s[0] == '~') || (n == 4 && !memcmp(s, "null", 4)))
        return json_null();
    if ((n == 4 && !memcmp(s, "true", 4)) || (n == 4 && !memcmp(s, "True", 4)))
        return json_true();
    if ((n == 5 && !memcmp(s, "false", 5)) || (n == 5 && !memcmp(s, "False", 5)))
        return json_false();
    if (n < sizeof buf) {
        memcpy(buf, s, n);
        buf[n] = '\0';
        char *end;
        errno = 0;
        long long v = strtoll(buf, &end, 10);
        if (!*end && !errno)
            return json_integer(v);
        double d = strtod(buf, &end);
        if (!*end && !errno && (isdigit((unsigned char)buf[0]) || buf[0] == '-' || buf[0] == '.'))
            return json_real(d);
    }
    return json_stringn(s, n);
}

static json_t *fy_to_json(struct fy_node *n, int depth)
{
    if (!n || depth > 64)
        return json_null();
    if (fy_node_is_scalar(n)) {
        size_t len;
        const char *s = fy_node_get_scalar(n, &len);
        if (!s)
            return json_null();
        if (fy_node_get_style(n) == FYNS_PLAIN)
            return plain_scalar(s, len);
        return json_stringn(s, len);
    }
    void *it = NULL;
    if (fy_node_is_sequence(n)) {
        json_t *a = json_array();
        struct fy_node *c;
        while ((c = fy_node_sequence_iterate(n, &it)))
            json_array_append_new(a, fy_to_json(c, depth + 1));
        return a;
    }
    json_t *o = json_object();
    struct fy_node_pair *p;
    while ((p = fy_node_mapping_iterate(n, &it))) {
        size_t kl;
        const char *k = fy_node_get_scalar(fy_node_pair_key(p), &kl);
        if (!k)
            continue;
        char *key = strndup(k, kl);
        if (key)
            json_object_set_new(o, key, fy_to_json(fy_node_pair_value(p), depth + 1));
        free(key);
    }
    return o;
}

static char *scalar_text(const json_t *v)
{
    if (json_is_string(v))
        return strndup(json_string_value(v), json_string_length(v));
    if (!v || json_is_null(v) || json_is_object(v) || json_is_array(v))
        return NULL;
    return json_dumps(v, JSON_ENCODE_ANY);
}

static char *trim_dup(const char *s, size_t n)
{
    while (n && isspace((unsigned char)*s))
        s++, n--;
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    return strndup(s, n);
}

/* "Q: {{question}}" with vars {question: ...}. */
static char *render_prompt(const char *tmpl, const json_t *vars)
{
    co_buf b;
    co_buf_init(&b, CASESET_MAX_BYTES);
    const char *p = tmpl;
    for (;;) {
        const char *open = strstr(p, "{{"), *close = open ? strstr(open + 2, "}}") : NULL;
        if (!close) {
            co_buf_puts(&b, p);
            break;
        }
        co_buf_append(&b, p, (size_t)(open - p));
        const char *a = open + 2, *e = close;
        while (a < e && isspace((unsigned char)*a))
            a++;
        while (e > a && isspace((unsigned char)e[-1]))
            e--;
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(e - a), a);
        char *val = scalar_text(json_object_get(vars, name));
        if (val)
            co_buf_puts(&b, val);
        else
            co_buf_append(&b, open, (size_t)(close + 2 - open));
        free(val);
        p = close + 2;
    }
    char *out = trim_dup(b.p ? b.p : "", b.len);
    co_buf_free(&b);
    return out;
}

static char *last_user_text(const json_t *msgs)
{
    for (size_t i = json_array_size(msgs); i-- > 0;) {
        const json_t *m = json_array_get(msgs, i);
        const char *role = json_string_value(json_object_get(m, "role"));
        if (role && strcmp(role, "user"))
            continue;
        co_buf b;
        co_buf_init(&b, CASESET_MAX_BYTES);
        co__sim_content_text(json_object_get(m, "content"), &b);
        char *out = trim_dup(b.p ? b.p : "", b.len);
        co_buf_free(&b);
        return out;
    }
    return NULL;
}

static int case_from_json(co__sim_case *cs, const json_t *j, size_t idx, const char *file, co_mark at,
                          co_diags *d)
{
    memset(cs, 0, sizeof *cs);
    if (!json_is_object(j)) {
        co_diags_add(d, file, at.line, at.col, "a case must be a mapping (id, messages or prompt, ideal or assert)");
        return -1;
    }
    cs->id = scalar_text(json_object_get(j, "id"));
    if (!cs->id && asprintf(&cs->id, "#%zu", idx + 1) < 0)
        cs->id = NULL;
    const json_t *tags = json_object_get(j, "tags");
    if (json_is_string(tags))
        tags = json_pack("[O]", tags);
    else
        json_incref((json_t *)tags);
    if (json_array_size(tags)) {
        cs->tags = calloc(json_array_size(tags), sizeof *cs->tags);
        size_t i;
        const json_t *t;
        json_array_foreach(tags, i, t) {
            char *s = cs->tags ? scalar_text(t) : NULL;
            if (s)
                cs->tags[cs->n_tags++] = s;
        }
    }
    json_decref((json_t *)tags);
    const json_t *msgs = json_object_get(j, "messages");
    const json_t *prompt = json_object_get(j, "prompt");
    if (!prompt)
        prompt = json_object_get(j, "input");
    if (json_is_array(msgs))
        cs->prompt = last_user_text(msgs);
    else if (json_is_string(prompt))
        cs->prompt = render_prompt(json_string_value(prompt), json_object_get(j, "vars"));
    if (!cs->prompt) {
        co_diags_add(d, file, at.line, at.col, "case '%s' has neither messages (with a user message) nor a prompt",
                     cs->id ? cs->id : "?");
        return -1;
    }
    cs->answer = scalar_text(json_object_get(j, "ideal"));
    if (!cs->answer) {
        size_t i;
        const json_t *a;
        json_array_foreach(json_object_get(j, "assert"), i, a) {
            const char *type = json_string_value(json_object_get(a, "type"));
            if (type && (!strcmp(type, "equals") || !strcmp(type, "contains") || !strcmp(type, "icontains"))) {
                cs->answer = scalar_text(json_object_get(a, "value"));
                if (cs->answer)
                    break;
            }
        }
    }
    return 0;
}

static void case_free(co__sim_case *cs)
{
    free(cs->id);
    free(cs->prompt);
    free(cs->answer);
    for (size_t i = 0; i < cs->n_tags; i++)
        free(cs->tags[i]);
    free(cs->tags);
}

void co__sim_caseset_free(co__sim_caseset *cs)
{
    if (!cs)
        return;
    for (size_t i = 0; i < cs->n; i++)
        case_free(&cs->v[i]);
    free(cs->v);
    free(cs->slots);
    free(cs->path);
    free(cs);
}

static int caseset_push(co__sim_caseset *cs, size_t *cap)
{
    if (cs->n < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 32;
    co__sim_case *v = realloc(cs->v, nc * sizeof *v);
    if (!v)
        return co_error_set(CO_ENOMEM, "out of memory");
    cs->v = v;
    *cap = nc;
    return 0;
}

static int caseset_index(co__sim_caseset *cs)
{
    size_t n = 16;
    while (n < cs->n * 2)
        n *= 2;
    cs->slots = calloc(n, sizeof *cs->slots);
    if (!cs->slots)
        return co_error_set(CO_ENOMEM, "out of memory");
    cs->n_slots = n;
    for (size_t i = 0; i < cs->n; i++) {
        const char *p = cs->v[i].prompt;
        size_t at = XXH64(p, strlen(p), 0) & (n - 1);
        int dup = 0;
        while (cs->slots[at]) {
            if (!strcmp(cs->v[cs->slots[at] - 1].prompt, p)) {
                dup = 1; /* the first case with a prompt answers it */
                break;
            }
            at = (at + 1) & (n - 1);
        }
        if (!dup)
            cs->slots[at] = (uint32_t)i + 1;
    }
    return 0;
}

const co__sim_case *co__sim_caseset_find(const co__sim_caseset *cs, const char *text, size_t len)
{
    if (!cs || !cs->n_slots)
        return NULL;
    size_t at = XXH64(text, len, 0) & (cs->n_slots - 1);
    while (cs->slots[at]) {
        const co__sim_case *c = &cs->v[cs->slots[at] - 1];
        if (strlen(c->prompt) == len && !memcmp(c->prompt, text, len))
            return c;
        at = (at + 1) & (cs->n_slots - 1);
    }
    return NULL;
}

static int load_jsonl(co__sim_caseset *cs, const char *path, const char *text, co_diags *d)
{
    size_t cap = 0;
    int line = 0, errs = 0;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        line++;
        const char *s = p;
        p = nl ? nl + 1 : p + len;
        size_t k = 0;
        while (k < len && isspace((unsigned char)s[k]))
            k++;
        if (k == len)
            continue;
        json_error_t je;
        json_t *j = json_loadb(s, len, 0, &je);
        if (!j) {
            co_diags_add(d, path, line, je.column > 0 ? je.column : 1, "%s", je.text);
            errs++;
            continue;
        }
        if (caseset_push(cs, &cap)) {
            json_decref(j);
            return CO_ENOMEM;
        }
        co_mark at = {line, (int)k + 1};
        if (case_from_json(&cs->v[cs->n], j, cs->n, path, at, d) == 0)
            cs->n++;
        else {
            case_free(&cs->v[cs->n]);
            errs++;
        }
        json_decref(j);
    }
    return errs ? CO_ECONFIG : 0;
}

static int load_yaml(co__sim_caseset *cs, const char *path, const char *text, size_t len, co_diags *d)
{
    int rc = 0, errs = 0;
    co_yaml y;
    if ((rc = co_yaml_parse(&y, text, len, path, 2 * len + CO_YAML_MAX_EXPANDED, d)))
        goto done;
    struct fy_document *fyd = y.doc;
    if (!fyd) {
        co_diags_add(d, path, 1, 1, "the eval set is empty");
        rc = CO_ECONFIG;
        goto done;
    }
    struct fy_node *root = fy_document_root(fyd);
    if (root && fy_node_is_mapping(root)) {
        struct fy_node *c = fy_node_mapping_lookup_by_string(root, "cases", (size_t)-1);
        if (!c)
            c = fy_node_mapping_lookup_by_string(root, "tests", (size_t)-1);
        root = c;
    }
    if (!root || !fy_node_is_sequence(root)) {
        co_mark at = co_yaml_node_mark(fy_document_root(fyd), (co_mark){0, 0});
        co_diags_add(d, path, at.line, at.col, "an eval set is a list of cases (or a mapping with cases:)");
        rc = CO_ECONFIG;
        goto done;
    }
    size_t cap = 0;
    void *it = NULL;
    struct fy_node *item;
    while ((item = fy_node_sequence_iterate(root, &it))) {
        if ((rc = caseset_push(cs, &cap)))
            goto done;
        json_t *j = fy_to_json(item, 0);
        if (case_from_json(&cs->v[cs->n], j, cs->n, path, co_yaml_node_mark(item, (co_mark){0, 0}), d) == 0)
            cs->n++;
        else {
            case_free(&cs->v[cs->n]);
            errs++;
        }
        json_decref(j);
    }
    if (errs)
        rc = CO_ECONFIG;
done:
    co_yaml_close(&y);
    return rc;
}

int co__sim_caseset_load(co__sim_caseset **out, const char *path, co_diags *diags)
{
    int rc = 0;
    char *text = NULL;
    size_t len = 0;
    co__sim_caseset *cs = calloc(1, sizeof *cs);
    if (!cs || !(cs->path = strdup(path))) {
        rc = co_error_set(CO_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = co_read_file(path, CASESET_MAX_BYTES, &text, &len))) {
        const char *msg = co_error_last();
        size_t pl = strlen(path);
        if (!strncmp(msg, path, pl) && !strncmp(msg + pl, ": ", 2))
            msg += pl + 2; /* the diagnostic names the file already */
        co_diags_add(diags, path, 0, 0, "%s", msg);
        goto done;
    }
    size_t pl = strlen(path);
    if (pl > 6 && !strcmp(path + pl - 6, ".jsonl"))
        rc = load_jsonl(cs, path, text, diags);
    else
        rc = load_yaml(cs, path, text, len, diags);
    if (!rc)
        rc = caseset_index(cs);
done:
    free(text);
    if (rc) {
        co__sim_caseset_free(cs);
        cs = NULL;
    }
    *out = cs;
    return rc;
}

/* ---- the scenario -------------------------------------------------------- */

int co__sim_scenario_find(const co_sim_scenario *sc, const char *name)
{
    if (!name)
        return -1;
    const co__sim_model *v = sc->models.v;
    for (size_t i = 0; i < sc->models.n; i++)
        if (v[i].name && !strcmp(v[i].name, name))
            return (int)i;
    return sc->wildcard;
}

void co_sim_scenario_free(co_sim_scenario *sc)
{
    if (!sc)
        return;
    for (size_t i = 0; i < sc->models.n; i++)
        free(co__sim_model_at(sc, (int)i)->json_text);
    while (sc->casesets) {
        co__sim_caseset *n = sc->casesets->next;
        co__sim_caseset_free(sc->casesets);
        sc->casesets = n;
    }
    free(sc->source);
    co_conf_free(&root_schema, sc);
    free(sc);
}

void co_sim_scenario_print(const co_sim_scenario *sc, FILE *out)
{
    fprintf(out, "seed %lld, max body %lld bytes%s, %zu model(s):\n", (long long)sc->seed,
            (long long)sc->max_body, sc->api_key ? ", one API key" : "", sc->models.n);
    for (size_t i = 0; i < sc->models.n; i++) {
        const co__sim_model *m = co__sim_model_at(sc, (int)i);
        const co__sim_faults *f = &m->faults;
        char t1[32], t2[32];
        fprintf(out, "  %-20s %-9s %-8s ttft %s, per token %s", m->name, vendor_names[m->provider],
                answer_names[m->answer], co_format_duration(m->latency.ttft_ms, t1, sizeof t1),
                co_format_duration(m->latency.per_token_ms, t2, sizeof t2));
        if (m->answer == CO__SIM_A_CANNED)
            fprintf(out, ", %zu case(s) at %g", m->cases ? m->cases->n : 0, m->canned.accuracy);
        if (f->error_500 + f->error_429 + f->overloaded + f->timeout + f->reset + f->truncate > 0)
            fprintf(out, ", faults 500:%g 429:%g overloaded:%g timeout:%g reset:%g truncate:%g", f->error_500,
                    f->error_429, f->overloaded, f->timeout, f->reset, f->truncate);
        fputc('\n', out);
    }
}

/* Eval-set paths are relative to the scenario file's directory. */
static char *resolve(const char *scenario_path, const char *file)
{
    char *out = NULL;
    if (file[0] == '/' || !scenario_path)
        return strdup(file);
    char *dup = strdup(scenario_path);
    if (!dup)
        return NULL;
    if (asprintf(&out, "%s/%s", dirname(dup), file) < 0)
        out = NULL;
    free(dup);
    return out;
}

static int post_load(co_sim_scenario *sc, const char *path, co_diags *diags)
{
    int errs = 0;
    sc->wildcard = -1;
    for (size_t i = 0; i < sc->models.n; i++) {
        co__sim_model *m = co__sim_model_at(sc, (int)i);
        if (m->answer == CO__SIM_A_AUTO) /* normally resolved by model_check */
            m->answer = m->template ? CO__SIM_A_TEMPLATE
                      : m->canned.file ? CO__SIM_A_CANNED
                      : m->json ? CO__SIM_A_JSON
                                : CO__SIM_A_ECHO;
        if (m->name && !strcmp(m->name, "*"))
            sc->wildcard = (int)i;
        if (m->json) {
            m->json_text = json_dumps(m->json, JSON_COMPACT | JSON_ENCODE_ANY);
            if (!m->json_text)
                return co_error_set(CO_ENOMEM, "out of memory");
        }
        if (m->answer != CO__SIM_A_CANNED || !m->canned.file)
            continue;
        char *full = resolve(path, m->canned.file);
        if (!full)
            return co_error_set(CO_ENOMEM, "out of memory");
        co__sim_caseset *cs = sc->casesets;
        while (cs && strcmp(cs->path, full))
            cs = cs->next;
        if (!cs) {
            co_diags sub = {0};
            if (co__sim_caseset_load(&cs, full, &sub)) {
                /* the eval set's own errors, and where the scenario names it */
                for (size_t k = 0; k < sub.n; k++)
                    co_diags_add(diags, sub.v[k].file, sub.v[k].line, sub.v[k].col, "%s", sub.v[k].msg);
                co_diags_add(diags, sc->source, m->canned.file_mark.line, m->canned.file_mark.col,
                             "model '%s': cannot use canned.file %s", m->name, m->canned.file);
                co_diags_free(&sub);
                errs++;
                free(full);
                continue;
            }
            co_diags_free(&sub);
            cs->next = sc->casesets;
            sc->casesets = cs;
        }
        m->cases = cs;
        free(full);
    }
    return errs ? CO_ECONFIG : 0;
}

int co_sim_scenario_load(co_sim_scenario **out, const char *path, co_diags *diags)
{
    int rc = 0;
    *out = NULL;
    co_sim_scenario *sc = calloc(1, sizeof *sc);
    if (!sc)
        return co_error_set(CO_ENOMEM, "out of memory");
    sc->wildcard = -1;
    if ((rc = co_conf_defaults(&root_schema, sc)))
        goto done;
    sc->source = strdup(path ? path : "sim/default.yaml");
    if (!sc->source) {
        rc = co_error_set(CO_ENOMEM, "out of memory");
        goto done;
    }
    if (path) {
        rc = co_conf_load_file(&root_schema, sc, path, diags);
    } else {
        size_t len = 0;
        const char *text = co_data_get("sim/default.yaml", &len);
        if (!text) {
            rc = co_error_set(CO_ENOENT, "the built-in scenario sim/default.yaml is missing");
            goto done;
        }
        rc = co_conf_load_string(&root_schema, sc, text, len, "sim/default.yaml", diags);
    }
    if (rc)
        goto done;
    rc = post_load(sc, path, diags);
done:
    if (rc) {
        if (rc == CO_ECONFIG && diags->n)
            co_error_set(rc, "%s: %zu problem%s in the scenario", sc->source ? sc->source : "scenario",
                         diags->n, diags->n == 1 ? "" : "s");
        co_sim_scenario_free(sc);
        return rc;
    }
    *out = sc;
    return 0;
}
