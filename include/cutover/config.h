/* cutover.yaml: the configuration structs and their declarative key table
 * (src/core/config.c). The table drives parsing, validation, the `init`
 * template's comments and docs/config.md. A co_config is immutable once
 * loaded; reloads build a new one. co_config_load allocates, co_config_free
 * releases everything inside. */
#ifndef CUTOVER_CONFIG_H
#define CUTOVER_CONFIG_H

#include <stdint.h>

#include "cutover/conf.h"

enum co_provider_kind {
    CO_PROVIDER_OPENAI,
    CO_PROVIDER_ANTHROPIC,
    CO_PROVIDER_GEMINI,
    CO_PROVIDER_OPENAI_COMPAT,
};
extern const char *const co_provider_kinds[];   /* "openai", "anthropic", ... */

enum co_mode { CO_MODE_INCUMBENT, CO_MODE_CANDIDATE, CO_MODE_SHADOW, CO_MODE_CANARY };
extern const char *const co_modes[];            /* "incumbent", "candidate", "shadow", "canary" */

enum co_stage_kind { CO_STAGE_CANARY, CO_STAGE_SHADOW };
extern const char *const co_stage_kinds[];

enum co_contract_format { CO_FORMAT_ANY, CO_FORMAT_TEXT, CO_FORMAT_JSON };
extern const char *const co_contract_formats[];

typedef struct co_provider_conf {
    char *name;
    co_mark mark;
    int kind;                       /* enum co_provider_kind */
    char *base_url;
    char *api_key_env;
    char *api_key_file;
    char *anthropic_version;
    int64_t connect_timeout_ms;
    int64_t first_byte_timeout_ms;
    int64_t timeout_ms;
    int64_t max_connections;
} co_provider_conf;

typedef struct co_model_conf {
    char *name;
    co_mark mark;
    char *provider;
    co_mark provider_mark;
    char *upstream;                 /* upstream model id; defaults to name */
    double price_input;             /* USD per 1M input tokens */
    double price_output;
    double price_cached;
} co_model_conf;

typedef struct co_stage_conf {
    co_mark mark;
    int kind;                       /* enum co_stage_kind */
    double percent;
    int64_t hold_ms;
} co_stage_conf;

typedef struct co_triggers_conf {
    double error_rate_delta;        /* points above the incumbent */
    double latency_p95_ratio;       /* candidate p95 / incumbent p95 */
    double cost_over_forecast;      /* percent over forecast per request */
    double quality_fail_delta;      /* points more contract failures */
    double feedback_negative_rel;   /* percent higher (relative) negative rate */
    int64_t min_samples;
    int64_t min_feedback;           /* ratings per arm before the feedback trigger judges */
    double confidence;
} co_triggers_conf;

typedef struct co_rollout_conf {
    co_vec stages;                  /* co_stage_conf */
    int auto_promote;
    int64_t interval_ms;
    int64_t retain_incumbent_ms;
    char *salt;                     /* sticky bucketing salt; "" = workload name */
    co_triggers_conf triggers;
} co_rollout_conf;

typedef struct co_gate_conf {
    double pass_rate_drop_max;          /* points */
    double critical_pass_rate_drop_max; /* points, critical cases */
    double cost_increase_max;           /* percent; 0 = not gated */
    double latency_p95_ratio_max;       /* 0 = not gated */
} co_gate_conf;

typedef struct co_contract_conf {
    int format;                     /* enum co_contract_format */
    char *regex;
    co_mark regex_mark;
    void *json_schema;              /* json_t *, inline schema */
    int64_t max_chars;              /* 0 = no limit */
    void *assertions;               /* json_t * list in the eval vocabulary */
} co_contract_conf;

typedef struct co_match_conf {
    co_strv models;                 /* request `model` aliases */
    co_strv api_keys_env;           /* env vars holding gateway API keys */
    char *header;                   /* "Name: value" */
} co_match_conf;

typedef struct co_workload_conf {
    char *name;
    co_mark mark;
    co_match_conf match;
    char *incumbent;
    co_mark incumbent_mark;
    char *candidate;
    co_mark candidate_mark;
    int mode;                       /* enum co_mode */
    co_mark mode_mark;
    double percent;                 /* canary percent */
    double shadow_sample;           /* percent of requests shadowed */
    int fallback;                   /* retry a failed candidate on the incumbent */
    co_gate_conf gate;
    co_contract_conf contract;
    co_triggers_conf triggers;
    int has_triggers;
    co_rollout_conf rollout;
    int has_rollout;
} co_workload_conf;

typedef struct co_admin_conf {
    char *listen;                   /* "" = on the main listener */
    co_mark listen_mark;
    char *token_env;
    char *token_file;
} co_admin_conf;

typedef struct co_limits_conf {
    int64_t max_body;
    int64_t max_upstream_body;
    int64_t header_timeout_ms;
    int64_t max_shadow_in_flight;   /* per worker; beyond it a shadow call is skipped and counted */
    int64_t max_connections;        /* client connections per worker; 0: no limit */
} co_limits_conf;

typedef struct co_recorder_conf {
    int64_t queue;
    int64_t batch;
    int64_t flush_interval_ms;
    int record_text;
    int priority;               /* CO_RECORDER_BACKGROUND (0) or CO_RECORDER_NORMAL */
    int64_t background_backlog; /* bytes waiting that lift a background writer; 0 = 4 MiB */
} co_recorder_conf;
enum { CO_RECORDER_BACKGROUND = 0, CO_RECORDER_NORMAL = 1 };
extern const char *const co_recorder_priorities[]; /* "background", "normal" */

typedef struct co_redact_conf {
    int email, phone, card;
    co_strv patterns;
} co_redact_conf;

/* `eval:` — how `cutover eval` calls the models (command-line flags override). */
typedef struct co_eval_conf {
    char *judge;                    /* model that grades llm-rubric assertions; NULL = none */
    co_mark judge_mark;
    int64_t concurrency;            /* model calls in flight, both arms together */
    int64_t retries;                /* retries of a rate-limited or overloaded call */
    int64_t retry_max_wait_ms;      /* longest single wait before a retry (caps Retry-After) */
} co_eval_conf;

typedef struct co_config {
    char *path;                     /* file it came from */
    char *listen;
    co_mark listen_mark;
    int64_t workers;                /* 0 = one per core */
    char *store;
    co_mark store_mark;
    int log_level;
    co_admin_conf admin;
    co_limits_conf limits;
    co_recorder_conf recorder;
    co_vec providers;               /* co_provider_conf */
    co_vec models;                  /* co_model_conf */
    co_vec workloads;               /* co_workload_conf */
    co_rollout_conf rollout;        /* defaults for every workload */
    co_redact_conf redact;
    co_eval_conf eval;
} co_config;

extern const char *const co_log_levels[];

/* The root key table (for docs, templates and `cutover config`). */
const co_schema *co_config_schema(void);

/* Loads and validates a config file. On success *out is the caller's to
 * co_config_free. On CO_ECONFIG every problem is in diags; *out is NULL. */
int co_config_load(co_config **out, const char *path, co_diags *diags);
/* The same from text (name is used in messages). */
int co_config_load_string(co_config **out, const char *text, const char *name, co_diags *diags);
void co_config_free(co_config *cfg);

const co_provider_conf *co_config_provider(const co_config *cfg, const char *name);
const co_model_conf *co_config_model(const co_config *cfg, const char *name);
const co_workload_conf *co_config_workload(const co_config *cfg, const char *name);
/* The triggers and rollout a workload runs with (its own or the defaults). */
const co_triggers_conf *co_workload_triggers(const co_config *cfg, const co_workload_conf *w);
const co_rollout_conf *co_workload_rollout(const co_config *cfg, const co_workload_conf *w);

/* Reads a provider's API key from api_key_env or api_key_file into a
 * malloc'd string (trailing newline stripped). CO_ENOENT with a message
 * naming the variable or file when it is missing or empty. */
int co_provider_api_key(const co_provider_conf *p, char **out);

/* Non-fatal findings worth showing (unset key variables, a workload with no
 * candidate...). */
void co_config_warnings(const co_config *cfg, co_diags *out);

#endif
