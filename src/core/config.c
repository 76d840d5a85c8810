/* cutover.yaml: the key table (one place for names, types, bounds, defaults
 * and help), cross-field validation, lookups and API key loading. */
#include <ctype.h>
#include <jansson.h>
#include <regex.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cutover/config.h"
#include "cutover/util.h"

const char *const co_provider_kinds[] = {"openai", "anthropic", "gemini", "openai-compatible", NULL};
const char *const co_modes[] = {"incumbent", "candidate", "shadow", "canary", NULL};
const char *const co_stage_kinds[] = {"canary", "shadow", NULL};
const char *const co_contract_formats[] = {"any", "text", "json", NULL};
const char *const co_log_levels[] = {"error", "warn", "info", "debug", NULL};
const char *const co_recorder_priorities[] = {"background", "normal", NULL};

#define SECRET_HINT(var, file) \
    "inline secrets are refused so they never land in a repository; put the key in an " \
    "environment variable and name it with '" var "', or in a file named with '" file "'"

#define F(type, field) offsetof(type, field)
#define END {.name = NULL}
#define OPTN(n, t, off, lo, hi, d, h) \
    {.name = n, .type = t, .offset = off, .min = lo, .max = hi, .def = d, .help = h}

/* ---- providers ----------------------------------------------------------- */

static void provider_check(void *item, co_conf_ctx *ctx, co_mark at);

static const co_opt provider_opts[] = {
    {"kind", CO_T_ENUM, F(co_provider_conf, kind), .enums = co_provider_kinds, .flags = CO_OPT_REQUIRED,
     .help = "wire protocol the provider speaks"},
    {"base_url", CO_T_STR, F(co_provider_conf, base_url), .flags = CO_OPT_NONEMPTY,
     .help = "API root, e.g. https://api.openai.com/v1; defaults to the vendor's public endpoint"},
    {"api_key_env", CO_T_STR, F(co_provider_conf, api_key_env),
     .help = "environment variable holding the provider's API key"},
    {"api_key_file", CO_T_STR, F(co_provider_conf, api_key_file),
     .help = "file holding the provider's API key (e.g. a mounted secret)"},
    {"anthropic_version", CO_T_STR, F(co_provider_conf, anthropic_version), .def = "2023-06-01",
     .help = "anthropic-version header sent to Anthropic providers"},
    OPTN("connect_timeout", CO_T_DURATION, F(co_provider_conf, connect_timeout_ms), 1, 600000, "5s",
     "time allowed to open a connection"),
    OPTN("first_byte_timeout", CO_T_DURATION, F(co_provider_conf, first_byte_timeout_ms), 1, 3600000, "60s",
     "time allowed until the first response byte"),
    OPTN("timeout", CO_T_DURATION, F(co_provider_conf, timeout_ms), 1, 3600000, "300s",
     "time allowed for a whole request, streaming included"),
    OPTN("max_connections", CO_T_INT, F(co_provider_conf, max_connections), 1, 100000, "256",
     "keep-alive connections kept open to this provider, per worker"),
    {"api_key", CO_T_FORBIDDEN, 0, .help = SECRET_HINT("api_key_env", "api_key_file")},
    {"key", CO_T_FORBIDDEN, 0, .help = SECRET_HINT("api_key_env", "api_key_file")},
    END,
};

static const co_schema provider_schema = {
    .name = "provider",
    .size = sizeof(co_provider_conf),
    .opts = provider_opts,
    .name_offset = CO_MARK_AT(F(co_provider_conf, name)),
    .mark_offset = CO_MARK_AT(F(co_provider_conf, mark)),
    .check = provider_check,
};

/* ---- models -------------------------------------------------------------- */

static const co_opt model_opts[] = {
    {"provider", CO_T_STR, F(co_model_conf, provider), .flags = CO_OPT_REQUIRED | CO_OPT_NONEMPTY,
     .mark_offset = CO_MARK_AT(F(co_model_conf, provider_mark)), .help = "name of an entry under providers"},
    {"upstream", CO_T_STR, F(co_model_conf, upstream), .flags = CO_OPT_NONEMPTY,
     .help = "model id sent upstream; defaults to this entry's name"},
    OPTN("price_input", CO_T_DOUBLE, F(co_model_conf, price_input), 0, 10000, "0",
     "USD per 1M input tokens"),
    OPTN("price_output", CO_T_DOUBLE, F(co_model_conf, price_output), 0, 10000, "0",
     "USD per 1M output tokens"),
    OPTN("price_cached", CO_T_DOUBLE, F(co_model_conf, price_cached), 0, 10000, "0",
     "USD per 1M cached input tokens"),
    END,
};

static const co_schema model_schema = {
    .name = "model",
    .size = sizeof(co_model_conf),
    .opts = model_opts,
    .name_offset = CO_MARK_AT(F(co_model_conf, name)),
    .mark_offset = CO_MARK_AT(F(co_model_conf, mark)),
};

/* ---- rollout ------------------------------------------------------------- */

static const co_opt triggers_opts[] = {
    OPTN("error_rate_delta", CO_T_DOUBLE, F(co_triggers_conf, error_rate_delta), 0, 100, "5",
     "roll back when the candidate's error rate is this many points above the incumbent's"),
    OPTN("latency_p95_ratio", CO_T_DOUBLE, F(co_triggers_conf, latency_p95_ratio), 1, 100, "1.5",
     "roll back when the candidate's p95 latency exceeds the incumbent's times this"),
    OPTN("cost_over_forecast", CO_T_PERCENT, F(co_triggers_conf, cost_over_forecast), 0, 10000, "10",
     "roll back when cost per request is this many percent over the forecast"),
    OPTN("quality_fail_delta", CO_T_DOUBLE, F(co_triggers_conf, quality_fail_delta), 0, 100, "5",
     "roll back when the output contract fails on this many points more candidate outputs"),
    OPTN("feedback_negative_rel", CO_T_PERCENT, F(co_triggers_conf, feedback_negative_rel), 0, 10000, "20",
     "roll back when the negative feedback rate is this many percent higher (relative)"),
    OPTN("min_samples", CO_T_INT, F(co_triggers_conf, min_samples), 1, 100000000, "200",
     "requests per arm before a trigger can judge"),
    OPTN("min_feedback", CO_T_INT, F(co_triggers_conf, min_feedback), 1, 100000000, "50",
     "feedback ratings per arm before the feedback trigger can judge"),
    OPTN("confidence", CO_T_DOUBLE, F(co_triggers_conf, confidence), 0.5, 0.9999, "0.95",
     "confidence of each trigger's statistical test"),
    END,
};

static const co_schema triggers_schema = {.name = "triggers", .opts = triggers_opts,
                                          .size = sizeof(co_triggers_conf)};

static void stage_check(void *item, co_conf_ctx *ctx, co_mark at)
{
    co_stage_conf *st = item;
    if (st->kind == CO_STAGE_CANARY && st->percent <= 0)
        co_conf_error(ctx, at, "a canary stage needs a percent above 0 (or 'mode: shadow')");
}

static const co_opt stage_opts[] = {
    {"mode", CO_T_ENUM, F(co_stage_conf, kind), .enums = co_stage_kinds, .def = "canary",
     .help = "shadow (both arms run, incumbent serves) or canary (percent of users on the candidate)"},
    {"percent", CO_T_PERCENT, F(co_stage_conf, percent), .help = "share of users on the candidate"},
    OPTN("hold", CO_T_DURATION, F(co_stage_conf, hold_ms), 0, 31536000000.0, "0s",
     "time the stage must stay healthy before promotion"),
    END,
};

static const co_schema stage_schema = {
    .name = "stage",
    .size = sizeof(co_stage_conf),
    .opts = stage_opts,
    .mark_offset = CO_MARK_AT(F(co_stage_conf, mark)),
    .scalar_key = "percent",
    .check = stage_check,
};

static void rollout_check(void *item, co_conf_ctx *ctx, co_mark at);

static const co_opt rollout_opts[] = {
    {"stages", CO_T_LIST, F(co_rollout_conf, stages), .sub = &stage_schema,
     .def = "[{mode: shadow, hold: 14d}, {percent: 1, hold: 48h}, {percent: 10, hold: 24h}, "
            "{percent: 50, hold: 24h}, {percent: 100}]",
     .help = "the stages in order; each holds until healthy, the last should be 100"},
    {"auto_promote", CO_T_BOOL, F(co_rollout_conf, auto_promote), .def = "true",
     .help = "promote when a hold ends healthy; false waits for `cutover rollout promote`"},
    OPTN("interval", CO_T_DURATION, F(co_rollout_conf, interval_ms), 100, 86400000, "30s",
     "how often the controller judges the triggers"),
    OPTN("retain_incumbent", CO_T_DURATION, F(co_rollout_conf, retain_incumbent_ms), 0, 31536000000.0, "30d",
     "how long after promotion the incumbent stays configured and deployable"),
    {"salt", CO_T_STR, F(co_rollout_conf, salt), .def = "",
     .help = "sticky bucketing salt; empty means the workload name"},
    {"triggers", CO_T_SECTION, F(co_rollout_conf, triggers), .sub = &triggers_schema,
     .help = "automatic rollback triggers"},
    END,
};

static const co_schema rollout_schema = {.name = "rollout", .opts = rollout_opts,
                                         .size = sizeof(co_rollout_conf), .check = rollout_check};

static void rollout_check(void *item, co_conf_ctx *ctx, co_mark at)
{
    co_rollout_conf *r = item;
    double last = -1;
    int seen_canary = 0;
    for (size_t i = 0; i < r->stages.n; i++) {
        co_stage_conf *st = (co_stage_conf *)r->stages.v + i;
        co_mark m = st->mark.line ? st->mark : at;
        if (st->kind == CO_STAGE_SHADOW) {
            if (seen_canary)
                co_conf_error(ctx, m, "a shadow stage must come before the canary stages");
            continue;
        }
        seen_canary = 1;
        if (st->percent <= last)
            co_conf_error(ctx, m, "stage percents must rise: %g%% follows %g%%", st->percent, last);
        last = st->percent;
    }
}

/* ---- workloads ------------------------------------------------------------ */

static const co_opt gate_opts[] = {
    OPTN("pass_rate_drop_max", CO_T_DOUBLE, F(co_gate_conf, pass_rate_drop_max), 0, 100, "2",
     "largest acceptable drop of the pass rate, in points (candidate vs incumbent)"),
    OPTN("critical_pass_rate_drop_max", CO_T_DOUBLE, F(co_gate_conf, critical_pass_rate_drop_max), 0, 100, "0",
     "largest acceptable drop on the critical cases, in points"),
    OPTN("cost_increase_max", CO_T_PERCENT, F(co_gate_conf, cost_increase_max), 0, 100000, "0",
     "largest acceptable cost-per-request increase in percent; 0 = not gated"),
    OPTN("latency_p95_ratio_max", CO_T_DOUBLE, F(co_gate_conf, latency_p95_ratio_max), 0, 100, "0",
     "largest acceptable p95 latency ratio; 0 = not gated"),
    END,
};
static const co_schema gate_schema = {.name = "gate", .opts = gate_opts, .size = sizeof(co_gate_conf)};

static void contract_check(void *item, co_conf_ctx *ctx, co_mark at)
{
    co_contract_conf *c = item;
    if (c->regex) {
        regex_t re;
        int rc = regcomp(&re, c->regex, REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
            char msg[200];
            regerror(rc, &re, msg, sizeof msg);
            co_conf_error(ctx, c->regex_mark.line ? c->regex_mark : at, "contract regex '%s' does not compile: %s", c->regex, msg);
        } else {
            regfree(&re);
        }
    }
    if (c->json_schema && !json_is_object((json_t *)c->json_schema))
        co_conf_error(ctx, at, "contract json_schema must be a mapping (a JSON Schema object)");
    if (c->assertions && !json_is_array((json_t *)c->assertions))
        co_conf_error(ctx, at, "contract assert must be a list of assertions");
}

static const co_opt contract_opts[] = {
    {"format", CO_T_ENUM, F(co_contract_conf, format), .enums = co_contract_formats, .def = "any",
     .help = "json: every output must parse as JSON"},
    {"regex", CO_T_STR, F(co_contract_conf, regex), .mark_offset = CO_MARK_AT(F(co_contract_conf, regex_mark)),
     .help = "POSIX extended regex every output must match"},
    {"json_schema", CO_T_JSON, F(co_contract_conf, json_schema),
     .help = "JSON Schema (inline) every JSON output must satisfy"},
    OPTN("max_chars", CO_T_INT, F(co_contract_conf, max_chars), 0, 100000000, "0",
     "longest acceptable output in characters; 0 = no limit"),
    {"assert", CO_T_JSON, F(co_contract_conf, assertions),
     .help = "assertions in the eval vocabulary checked on every output"},
    END,
};
static const co_schema contract_schema = {.name = "contract", .opts = contract_opts,
                                          .size = sizeof(co_contract_conf), .check = contract_check};

static const co_opt match_opts[] = {
    {"models", CO_T_STRLIST, F(co_match_conf, models),
     .help = "request `model` values that select this workload (aliases)"},
    {"api_keys_env", CO_T_STRLIST, F(co_match_conf, api_keys_env),
     .help = "environment variables holding gateway API keys that select this workload"},
    {"header", CO_T_STR, F(co_match_conf, header), .help = "'Name: value' request header that selects it"},
    {"api_keys", CO_T_FORBIDDEN, 0, .help = SECRET_HINT("api_keys_env", "api_keys_env")},
    END,
};
static const co_schema match_schema = {.name = "match", .opts = match_opts, .size = sizeof(co_match_conf)};

static const co_opt workload_opts[] = {
    {"match", CO_T_SECTION, F(co_workload_conf, match), .sub = &match_schema,
     .help = "how requests are routed here besides the X-Cutover-Workload header"},
    {"incumbent", CO_T_STR, F(co_workload_conf, incumbent), .flags = CO_OPT_REQUIRED | CO_OPT_NONEMPTY,
     .mark_offset = CO_MARK_AT(F(co_workload_conf, incumbent_mark)),
     .help = "the model serving today (a name under models)"},
    {"candidate", CO_T_STR, F(co_workload_conf, candidate), .flags = CO_OPT_NONEMPTY,
     .mark_offset = CO_MARK_AT(F(co_workload_conf, candidate_mark)),
     .help = "the model being migrated to (a name under models)"},
    {"mode", CO_T_ENUM, F(co_workload_conf, mode), .enums = co_modes, .def = "incumbent",
     .mark_offset = CO_MARK_AT(F(co_workload_conf, mode_mark)), .help = "which arm serves"},
    {"percent", CO_T_PERCENT, F(co_workload_conf, percent), .def = "0",
     .help = "canary mode: share of users served by the candidate"},
    {"shadow_sample", CO_T_PERCENT, F(co_workload_conf, shadow_sample), .def = "100",
     .help = "shadow mode: share of requests also sent to the candidate (bounds cost)"},
    {"fallback", CO_T_BOOL, F(co_workload_conf, fallback), .def = "true",
     .help = "retry a candidate failure once on the incumbent before any byte reached the client"},
    {"gate", CO_T_SECTION, F(co_workload_conf, gate), .sub = &gate_schema,
     .help = "non-regression thresholds for `cutover eval`"},
    {"contract", CO_T_SECTION, F(co_workload_conf, contract), .sub = &contract_schema,
     .help = "what every output must satisfy (format drift, quality trigger)"},
    {"triggers", CO_T_SECTION, F(co_workload_conf, triggers), .sub = &triggers_schema,
     .present_offset = CO_MARK_AT(F(co_workload_conf, has_triggers)),
     .help = "rollback triggers for this workload (replace rollout.triggers)"},
    {"rollout", CO_T_SECTION, F(co_workload_conf, rollout), .sub = &rollout_schema,
     .present_offset = CO_MARK_AT(F(co_workload_conf, has_rollout)),
     .help = "rollout plan for this workload (replaces the top-level rollout as a whole)"},
    END,
};

static const co_schema workload_schema = {
    .name = "workload",
    .size = sizeof(co_workload_conf),
    .opts = workload_opts,
    .name_offset = CO_MARK_AT(F(co_workload_conf, name)),
    .mark_offset = CO_MARK_AT(F(co_workload_conf, mark)),
};

/* ---- top level ------------------------------------------------------------- */

static const co_opt admin_opts[] = {
    {"listen", CO_T_STR, F(co_admin_conf, listen), .def = "", .mark_offset = CO_MARK_AT(F(co_admin_conf, listen_mark)),
     .help = "separate address for the admin API and dashboard; empty = the main listener"},
    {"token_env", CO_T_STR, F(co_admin_conf, token_env), .def = "CUTOVER_ADMIN_TOKEN",
     .help = "environment variable holding the admin token (required unless loopback-only)"},
    {"token_file", CO_T_STR, F(co_admin_conf, token_file), .help = "file holding the admin token"},
    {"token", CO_T_FORBIDDEN, 0, .help = SECRET_HINT("token_env", "token_file")},
    END,
};
static const co_schema admin_schema = {.name = "admin", .opts = admin_opts, .size = sizeof(co_admin_conf)};

static const co_opt limits_opts[] = {
    OPTN("max_body", CO_T_SIZE, F(co_limits_conf, max_body), 1024, 1073741824.0, "4MiB",
     "largest request body accepted (larger gets 413)"),
    OPTN("max_upstream_body", CO_T_SIZE, F(co_limits_conf, max_upstream_body), 1024, 1073741824.0, "16MiB",
     "largest upstream response kept (streams included)"),
    OPTN("header_timeout", CO_T_DURATION, F(co_limits_conf, header_timeout_ms), 100, 600000, "10s",
     "time a client has from a request's first byte to its last header line (a deadline), and at most between two "
     "reads of its body; also how long an idle keep-alive connection stays open"),
    OPTN("max_connections", CO_T_INT, F(co_limits_conf, max_connections), 0, 10000000, "10000",
     "client connections open at once per worker; a connection beyond it is closed as it is accepted (0: no limit)"),
    OPTN("max_shadow_in_flight", CO_T_INT, F(co_limits_conf, max_shadow_in_flight), 1, 1000000, "256",
         "shadow calls in flight per worker; beyond it a request is served without its shadow (counted)"),
    END,
};
static const co_schema limits_schema = {.name = "limits", .opts = limits_opts, .size = sizeof(co_limits_conf)};

static const co_opt recorder_opts[] = {
    OPTN("queue", CO_T_INT, F(co_recorder_conf, queue), 16, 10000000, "65536",
     "records held in memory for the writer; overflow is counted and logged"),
    OPTN("batch", CO_T_INT, F(co_recorder_conf, batch), 1, 100000, "512", "records written per transaction"),
    OPTN("flush_interval", CO_T_DURATION, F(co_recorder_conf, flush_interval_ms), 1, 60000, "200ms",
     "longest a record waits before it is written"),
    {"record_text", CO_T_BOOL, F(co_recorder_conf, record_text), .def = "true",
     .help = "store request messages and outputs (after redaction); false keeps only metrics"},
    {"priority", CO_T_ENUM, F(co_recorder_conf, priority), .enums = co_recorder_priorities, .def = "background",
     .help = "background: the writer runs on CPU time nothing else wants (SCHED_IDLE), at nice 10 while half of "
             "background_backlog waits, at normal priority while all of it waits, its loop stalls for 2 x "
             "flush_interval + 500ms, or a flush or shutdown waits (needs CAP_SYS_NICE or RLIMIT_NICE >= "
             "20 to return to normal; without either it stays normal); normal: always normal priority"},
    OPTN("background_backlog", CO_T_SIZE, F(co_recorder_conf, background_backlog), 65536, 1073741824.0, "4MiB",
         "records waiting for a background writer, in bytes, that lift it to normal priority (half of it: to "
         "nice 10) until it has caught up; bounds the memory and delay background writing can add"),
    END,
};
static const co_schema recorder_schema = {.name = "recorder", .opts = recorder_opts,
                                          .size = sizeof(co_recorder_conf)};

static const co_opt redact_opts[] = {
    {"email", CO_T_BOOL, F(co_redact_conf, email), .def = "false", .help = "mask e-mail addresses before storage"},
    {"phone", CO_T_BOOL, F(co_redact_conf, phone), .def = "false", .help = "mask phone numbers before storage"},
    {"card", CO_T_BOOL, F(co_redact_conf, card), .def = "false", .help = "mask payment card numbers before storage"},
    {"patterns", CO_T_STRLIST, F(co_redact_conf, patterns),
     .help = "further POSIX extended regexes masked before storage"},
    END,
};
static const co_schema redact_schema = {.name = "redact", .opts = redact_opts, .size = sizeof(co_redact_conf)};

static const co_opt eval_opts[] = {
    {"judge", CO_T_STR, F(co_eval_conf, judge), .flags = CO_OPT_NONEMPTY,
     .mark_offset = CO_MARK_AT(F(co_eval_conf, judge_mark)),
     .help = "model (under models) that grades llm-rubric assertions; without one they are load errors"},
    OPTN("concurrency", CO_T_INT, F(co_eval_conf, concurrency), 1, 4096, "16",
     "model calls in flight during an eval, both arms together (--concurrency overrides)"),
    OPTN("retries", CO_T_INT, F(co_eval_conf, retries), 0, 100, "3",
     "retries of a call answered 429, 503 or 529, honouring Retry-After"),
    OPTN("retry_max_wait", CO_T_DURATION, F(co_eval_conf, retry_max_wait_ms), 1, 3600000, "60s",
     "longest wait before one retry (a longer Retry-After is capped to it)"),
    END,
};
static const co_schema eval_schema = {.name = "eval", .opts = eval_opts, .size = sizeof(co_eval_conf)};

static void config_check(void *item, co_conf_ctx *ctx, co_mark at);

static const co_opt config_opts[] = {
    {"listen", CO_T_STR, F(co_config, listen), .def = "127.0.0.1:8080", .flags = CO_OPT_NONEMPTY,
     .mark_offset = CO_MARK_AT(F(co_config, listen_mark)),
     .help = "address the gateway listens on (HOST:PORT)"},
    OPTN("workers", CO_T_INT, F(co_config, workers), 0, 1024, "0",
     "event-loop worker threads; 0 = one per core"),
    {"store", CO_T_STR, F(co_config, store), .def = "sqlite:cutover.db", .flags = CO_OPT_NONEMPTY,
     .mark_offset = CO_MARK_AT(F(co_config, store_mark)),
     .help = "where records and state live: sqlite:PATH, or postgres://user@host/db for a fleet"},
    {"log_level", CO_T_ENUM, F(co_config, log_level), .enums = co_log_levels, .def = "info",
     .help = "least severe log messages written"},
    {"admin", CO_T_SECTION, F(co_config, admin), .sub = &admin_schema, .help = "admin API and dashboard"},
    {"limits", CO_T_SECTION, F(co_config, limits), .sub = &limits_schema, .help = "request limits"},
    {"recorder", CO_T_SECTION, F(co_config, recorder), .sub = &recorder_schema,
     .help = "how exchanges are written to the store"},
    {"providers", CO_T_MAP, F(co_config, providers), .sub = &provider_schema,
     .flags = CO_OPT_REQUIRED | CO_OPT_NONEMPTY, .help = "upstream APIs, by name"},
    {"models", CO_T_MAP, F(co_config, models), .sub = &model_schema, .flags = CO_OPT_REQUIRED | CO_OPT_NONEMPTY,
     .help = "models, by name, with their provider and prices"},
    {"workloads", CO_T_MAP, F(co_config, workloads), .sub = &workload_schema,
     .flags = CO_OPT_REQUIRED | CO_OPT_NONEMPTY, .help = "workloads being migrated, by name"},
    {"rollout", CO_T_SECTION, F(co_config, rollout), .sub = &rollout_schema,
     .help = "default rollout plan and triggers for every workload"},
    {"redact", CO_T_SECTION, F(co_config, redact), .sub = &redact_schema,
     .help = "what is masked before exchanges are stored"},
    {"eval", CO_T_SECTION, F(co_config, eval), .sub = &eval_schema,
     .help = "how `cutover eval` calls the models: the llm-rubric judge, concurrency, retries"},
    END,
};

static const co_schema config_schema = {.name = "cutover.yaml", .opts = config_opts,
                                        .size = sizeof(co_config), .check = config_check};

const co_schema *co_config_schema(void) { return &config_schema; }

/* ---- cross-field validation ----------------------------------------------- */

static int valid_env_name(const char *s)
{
    if (!s || !(isalpha((unsigned char)*s) || *s == '_'))
        return 0;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_'))
            return 0;
    return 1;
}

static void provider_check(void *item, co_conf_ctx *ctx, co_mark at)
{
    co_provider_conf *p = item;
    if (p->api_key_env && !valid_env_name(p->api_key_env))
        co_conf_error(ctx, at,
                      "provider '%s': api_key_env names an environment variable (like OPENAI_API_KEY), "
                      "not the key itself; '%.6s…' is not a variable name",
                      p->name, p->api_key_env);
    if (p->api_key_env && p->api_key_file)
        co_conf_error(ctx, at, "provider '%s': set api_key_env or api_key_file, not both", p->name);
    if (p->base_url && strncmp(p->base_url, "http://", 7) != 0 && strncmp(p->base_url, "https://", 8) != 0)
        co_conf_error(ctx, at, "provider '%s': base_url must start with http:// or https://, found '%s'",
                      p->name, p->base_url);
    if (!p->base_url && p->kind == CO_PROVIDER_OPENAI_COMPAT)
        co_conf_error(ctx, at, "provider '%s': an openai-compatible provider needs a base_url", p->name);
}

static int host_port_ok(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || !colon[1])
        return 0;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    return !*end && port >= 0 && port <= 65535;
}

static void check_model_ref(co_conf_ctx *ctx, const co_config *cfg, const char *wl, const char *role,
                            const char *name, co_mark m)
{
    if (!name || co_config_model(cfg, name))
        return;
    const char *names[128];
    size_t n = 0;
    for (size_t i = 0; i < cfg->models.n && n < 127; i++)
        names[n++] = ((co_model_conf *)cfg->models.v)[i].name;
    names[n] = NULL;
    const char *near = co_suggest(name, names);
    co_conf_error(ctx, m, "workload '%s': %s '%s' is not a model under 'models'%s%s%s", wl, role, name,
                  near ? "; did you mean '" : "", near ? near : "", near ? "'?" : "");
}

static void config_check(void *item, co_conf_ctx *ctx, co_mark at)
{
    co_config *cfg = item;
    (void)at;
    if (cfg->listen && !host_port_ok(cfg->listen))
        co_conf_error(ctx, cfg->listen_mark, "listen must be HOST:PORT, found '%s'", cfg->listen);
    if (cfg->admin.listen && cfg->admin.listen[0] && !host_port_ok(cfg->admin.listen))
        co_conf_error(ctx, cfg->admin.listen_mark, "admin.listen must be HOST:PORT, found '%s'", cfg->admin.listen);
    if (cfg->store) {
        const char *s = cfg->store;
        if (!strncmp(s, "postgres://", 11) || !strncmp(s, "postgresql://", 13)) {
            const char *auth = strstr(s, "://") + 3;
            const char *atsign = strchr(auth, '@');
            const char *colon = strchr(auth, ':');
            if (atsign && colon && colon < atsign)
                co_conf_error(ctx, cfg->store_mark,
                              "the store URL contains a password; remove it and set PGPASSWORD or use "
                              "a ~/.pgpass file (inline secrets are refused)");
        } else if (strncmp(s, "sqlite:", 7) != 0) {
            co_conf_error(ctx, cfg->store_mark, "store must be sqlite:PATH or postgres://user@host/db, found '%s'", s);
        }
    }
    for (size_t i = 0; i < cfg->models.n; i++) {
        co_model_conf *m = (co_model_conf *)cfg->models.v + i;
        if (m->provider && !co_config_provider(cfg, m->provider))
            co_conf_error(ctx, m->provider_mark.line ? m->provider_mark : m->mark,
                          "model '%s': provider '%s' is not defined under 'providers'", m->name, m->provider);
    }
    if (cfg->eval.judge && !co_config_model(cfg, cfg->eval.judge))
        co_conf_error(ctx, cfg->eval.judge_mark, "eval.judge '%s' is not a model under 'models'", cfg->eval.judge);
    for (size_t i = 0; i < cfg->workloads.n; i++) {
        co_workload_conf *w = (co_workload_conf *)cfg->workloads.v + i;
        check_model_ref(ctx, cfg, w->name, "incumbent", w->incumbent, w->incumbent_mark);
        check_model_ref(ctx, cfg, w->name, "candidate", w->candidate, w->candidate_mark);
        co_mark mm = w->mode_mark.line ? w->mode_mark : w->mark;
        if (!w->candidate && w->mode != CO_MODE_INCUMBENT)
            co_conf_error(ctx, mm, "workload '%s': mode %s needs a candidate model", w->name, co_modes[w->mode]);
        if (w->candidate && w->incumbent && strcmp(w->candidate, w->incumbent) == 0)
            co_conf_error(ctx, w->candidate_mark, "workload '%s': candidate and incumbent are the same model",
                          w->name);
        if (w->mode == CO_MODE_CANARY && w->percent <= 0 && ctx->errors == 0)
            co_conf_error(ctx, mm, "workload '%s': canary mode needs 'percent' above 0", w->name);
        for (size_t k = 0; k < w->match.api_keys_env.n; k++)
            if (!valid_env_name(w->match.api_keys_env.v[k]))
                co_conf_error(ctx, w->mark,
                              "workload '%s': api_keys_env lists environment variable names, not keys", w->name);
        if (w->match.header && !strchr(w->match.header, ':'))
            co_conf_error(ctx, w->mark, "workload '%s': match.header must be 'Name: value'", w->name);
        /* a model alias may select one workload only */
        for (size_t a = 0; a < w->match.models.n; a++)
            for (size_t j = 0; j < i; j++) {
                co_workload_conf *o = (co_workload_conf *)cfg->workloads.v + j;
                for (size_t b = 0; b < o->match.models.n; b++)
                    if (!strcmp(w->match.models.v[a], o->match.models.v[b]))
                        co_conf_error(ctx, w->mark, "workload '%s': model alias '%s' already selects '%s'",
                                      w->name, w->match.models.v[a], o->name);
            }
    }
}

/* ---- loading ---------------------------------------------------------------- */

static const char *const vendor_base_url[] = {
    [CO_PROVIDER_OPENAI] = "https://api.openai.com/v1",
    [CO_PROVIDER_ANTHROPIC] = "https://api.anthropic.com",
    [CO_PROVIDER_GEMINI] = "https://generativelanguage.googleapis.com",
    [CO_PROVIDER_OPENAI_COMPAT] = NULL,
};

static void fill_derived(co_config *cfg)
{
    for (size_t i = 0; i < cfg->providers.n; i++) {
        co_provider_conf *p = (co_provider_conf *)cfg->providers.v + i;
        if (!p->base_url && vendor_base_url[p->kind])
            p->base_url = strdup(vendor_base_url[p->kind]);
    }
    for (size_t i = 0; i < cfg->models.n; i++) {
        co_model_conf *m = (co_model_conf *)cfg->models.v + i;
        if (!m->upstream && m->name)
            m->upstream = strdup(m->name);
    }
}

static int load_common(co_config **out, const char *text, size_t len, const char *name, co_diags *diags)
{
    int rc;
    *out = NULL;
    co_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return co_error_set(CO_ENOMEM, "out of memory");
    rc = co_conf_defaults(&config_schema, cfg);
    if (rc < 0)
        goto done;
    rc = co_conf_load_string(&config_schema, cfg, text, len, name, diags);
    if (rc < 0)
        goto done;
    cfg->path = strdup(name);
    fill_derived(cfg);
    *out = cfg;
    cfg = NULL;
done:
    if (cfg)
        co_config_free(cfg);
    return rc;
}

int co_config_load_string(co_config **out, const char *text, const char *name, co_diags *diags)
{
    return load_common(out, text, strlen(text), name, diags);
}

int co_config_load(co_config **out, const char *path, co_diags *diags)
{
    char *text = NULL;
    size_t len = 0;
    *out = NULL;
    int rc = co_read_file(path, 16u << 20, &text, &len);
    if (rc < 0) {
        co_diags_add(diags, path, 0, 0, "%s", co_error_last());
        return rc;
    }
    rc = load_common(out, text, len, path, diags);
    free(text);
    return rc;
}

void co_config_free(co_config *cfg)
{
    if (!cfg)
        return;
    co_conf_free(&config_schema, cfg);
    free(cfg->path);
    free(cfg);
}

#define FIND_BY_NAME(vec, type, name)                        \
    do {                                                     \
        for (size_t i_ = 0; name && i_ < (vec).n; i_++) {    \
            const type *e_ = (const type *)(vec).v + i_;     \
            if (e_->name && strcmp(e_->name, name) == 0)     \
                return e_;                                   \
        }                                                    \
        return NULL;                                         \
    } while (0)

const co_provider_conf *co_config_provider(const co_config *cfg, const char *name)
{
    FIND_BY_NAME(cfg->providers, co_provider_conf, name);
}

const co_model_conf *co_config_model(const co_config *cfg, const char *name)
{
    FIND_BY_NAME(cfg->models, co_model_conf, name);
}

const co_workload_conf *co_config_workload(const co_config *cfg, const char *name)
{
    FIND_BY_NAME(cfg->workloads, co_workload_conf, name);
}

const co_triggers_conf *co_workload_triggers(const co_config *cfg, const co_workload_conf *w)
{
    if (w->has_triggers)
        return &w->triggers;
    return w->has_rollout ? &w->rollout.triggers : &cfg->rollout.triggers;
}

const co_rollout_conf *co_workload_rollout(const co_config *cfg, const co_workload_conf *w)
{
    return w->has_rollout ? &w->rollout : &cfg->rollout;
}

int co_provider_api_key(const co_provider_conf *p, char **out)
{
    *out = NULL;
    if (p->api_key_env) {
        const char *v = getenv(p->api_key_env);
        if (!v || !*v)
            return co_error_set(CO_ENOENT, "provider '%s': environment variable %s is not set", p->name,
                                p->api_key_env);
        *out = strdup(v);
        return *out ? 0 : co_error_set(CO_ENOMEM, "out of memory");
    }
    if (p->api_key_file) {
        char *text = NULL;
        size_t len = 0;
        int rc = co_read_file(p->api_key_file, 64 * 1024, &text, &len);
        if (rc < 0)
            return co_error_set(rc == CO_ENOENT ? CO_ENOENT : rc, "provider '%s': api_key_file: %s", p->name,
                                co_error_last());
        while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
            text[--len] = '\0';
        if (len == 0) {
            free(text);
            return co_error_set(CO_ENOENT, "provider '%s': %s is empty", p->name, p->api_key_file);
        }
        *out = text;
        return 0;
    }
    return co_error_set(CO_ENOENT, "provider '%s' has no api_key_env or api_key_file", p->name);
}

void co_config_warnings(const co_config *cfg, co_diags *out)
{
    for (size_t i = 0; i < cfg->providers.n; i++) {
        const co_provider_conf *p = (const co_provider_conf *)cfg->providers.v + i;
        char *key = NULL;
        if (!p->api_key_env && !p->api_key_file)
            continue; /* keyless servers (local vLLM, Ollama) are fine */
        if (co_provider_api_key(p, &key) < 0)
            co_diags_add(out, cfg->path, p->mark.line, p->mark.col, "warning: %s", co_error_last());
        free(key);
    }
    for (size_t i = 0; i < cfg->workloads.n; i++) {
        const co_workload_conf *w = (const co_workload_conf *)cfg->workloads.v + i;
        if (!w->candidate)
            co_diags_add(out, cfg->path, w->mark.line, w->mark.col,
                         "warning: workload '%s' has no candidate yet; it can only serve the incumbent", w->name);
        const co_rollout_conf *r = co_workload_rollout(cfg, w);
        if (r->stages.n) {
            const co_stage_conf *last = (const co_stage_conf *)r->stages.v + r->stages.n - 1;
            if (last->kind != CO_STAGE_CANARY || last->percent < 100)
                co_diags_add(out, cfg->path, w->mark.line, w->mark.col,
                             "warning: workload '%s': the last rollout stage is not 100%%, so it never fully "
                             "promotes", w->name);
        }
    }
}
