/* Eval assertions: promptfoo-named checks of one model output, parsed and
 * compiled once from an eval set (regexes, JSON schemas, tool schemas),
 * evaluated many times (per arm, per repeat).
 *
 * An assertion definition is a JSON object (the eval-set loader turns YAML
 * into json_t):
 *   {"type": "icontains", "value": "paris", "weight": 2}
 *   {"type": "not-regex", "value": "(?i)as an ai"}
 *   {"type": "levenshtein", "value": "Hello world", "threshold": 3}
 *   {"type": "llm-rubric", "value": "is polite and cites a source", "threshold": 0.7}
 * Keys: type (required), value, threshold, weight (a number >= 0, default 1),
 * metric (a label, kept as is). Any other key is an error (promptfoo's
 * provider / transform / rubricPrompt / config are named as unsupported).
 *
 * Types (each also negated with a "not-" prefix: the pass flips and the
 * score becomes 1 - score; the reason states the fact either way):
 *   equals          value a string: the output is exactly it (byte for byte).
 *                   Any other JSON value (object, array, number, boolean,
 *                   null): the output, parsed as JSON (surrounding whitespace
 *                   allowed), is equal to it (numbers by value, key order
 *                   ignored).
 *   contains, icontains, starts-with
 *                   value a string (or a number, taken as its text).
 *   contains-any, contains-all, icontains-any, icontains-all
 *                   value a non-empty list of strings (numbers as text).
 *   regex           value a pattern in the dialect of co_regex_compile
 *                   (jsonschema.h): ECMA-style escapes translated to POSIX
 *                   ERE; a leading (?i) makes it case-insensitive; it
 *                   matches anywhere unless anchored.
 *   is-json         the whole output (surrounding whitespace allowed) is one
 *                   JSON value; a value, when given, is a JSON Schema it must
 *                   satisfy (promptfoo's is-json with a schema). A ```json
 *                   fence around the JSON fails: that is format drift.
 *   contains-json   the output contains a JSON object or array somewhere (in
 *                   a ```json fence, after prose...); when a value is given,
 *                   one of those found must match it: objects by subset
 *                   (every key of the value present in the found object and
 *                   matching, recursively; extra keys allowed), arrays by
 *                   length and item by item, scalars by JSON equality.
 *                   (promptfoo treats this value as a schema; use json-schema
 *                   or is-json for that.)
 *   json-schema     value a JSON Schema (draft 2020-12 subset, jsonschema.h)
 *                   the whole output, parsed as JSON, must satisfy.
 *   is-valid-openai-tools-call
 *                   there is at least one tool call; each names a tool the
 *                   case offers (co_assert_opts.tools) and its arguments parse
 *                   as a JSON object ("" counts as {}) that satisfies that
 *                   tool's parameters schema. No value.
 *   levenshtein     value a string; threshold the largest edit distance that
 *                   passes (default 5). Distance in Unicode code points
 *                   (invalid UTF-8 bytes count one each).
 *   latency         threshold (required) in ms: passes when latency <= it.
 *   cost            threshold (required) in USD: passes when cost <= it.
 *   llm-rubric      value the rubric; the judge (co_assert_opts.judge) grades
 *                   the output; with a threshold (0..1) it must also score at
 *                   least that. Without a judge the definition is an error.
 * threshold is accepted only by levenshtein, latency, cost and llm-rubric.
 *
 * Scores: 1 or 0 except llm-rubric (the judge's score, clamped to 0..1).
 * A case passes when every assertion passes (promptfoo semantics, weight 0
 * included); its score is the weight-weighted mean of the scores (when all
 * weights are 0: 1 if it passes, else 0).
 *
 * Case-insensitive types (icontains*) fold both sides with simple
 * one-to-one lower-casing: ASCII, plus Latin-1, Latin Extended-A, Latin
 * Extended Additional (Vietnamese), Greek, Cyrillic, Armenian and fullwidth
 * Latin capitals; every mapping keeps the UTF-8 byte length, so reported
 * byte offsets hold for the original text. Not done: full case folding
 * (German sharp s does not match "ss"; Turkish dotted/dotless i), Unicode
 * normalisation (a precomposed e-acute does not match e + U+0301). Invalid
 * UTF-8 is left as is and compared byte for byte.
 *
 * Errors: definitions are checked completely at load time; a problem is
 * CO_EINVAL with a message that starts with the caller's `where` (e.g.
 * "suite.yaml:12:5"), names the assertion type and the problem, and suggests
 * the closest type or key for a misspelling ("unknown assertion type
 * 'contians' (did you mean 'contains'?)"). At evaluation, an assertion that
 * cannot be judged (latency or cost unknown, the judge failed, input too
 * large for levenshtein) is a failed result with `error` set: never a pass,
 * negated or not.
 *
 * Ownership and threads: a co_assertion / co_assert_set owns everything it
 * compiled (it copies the JSON it was given) and is freed with its _free. It
 * is not modified by evaluation: several threads may evaluate the same set at
 * once (the judge callback must then be thread-safe, or pass a per-thread
 * judge in co_assert_input). Results own their reason strings: free them with
 * co_assert_result_free / co_assert_case_result_free. Library code never
 * prints. */
#ifndef CUTOVER_ASSERT_H
#define CUTOVER_ASSERT_H

#include <jansson.h>
#include <stddef.h>

/* The judge for llm-rubric: grades `output` against `rubric`. Sets *pass (0
 * or 1), *score (0..1; clamped, NaN is 0) and *reason (a malloc'd string the
 * evaluator takes over and frees, or NULL). Returns 0, or a negative CO_*
 * code with co_error_set detail: the result is then an error ("judge failed:
 * ...") and *reason, if set, is freed unread. */
typedef int (*co_judge_fn)(void *ud, const char *rubric, const char *output, int *pass, double *score,
                           char **reason);

/* What a definition is compiled against. All fields may be zero / NULL. */
typedef struct co_assert_opts {
    co_judge_fn judge;  /* NULL: llm-rubric assertions are load errors */
    void *judge_ud;
    /* The tools the case offers (for is-valid-openai-tools-call): a JSON
     * array of OpenAI tools ({"type":"function","function":{"name",
     * "parameters"}}), flat ones ({"name","parameters"}; parameters may also
     * be JSON text) or Anthropic ones ({"name","input_schema"}). A tool
     * without parameters accepts any arguments object. Borrowed: read (and
     * the schemas compiled) during the call only. */
    const json_t *tools;
} co_assert_opts;

/* One model output to judge. */
typedef struct co_assert_input {
    const char *output;      /* the text; NULL is "". Must be NUL-terminated at output_len */
    size_t output_len;       /* bytes */
    /* The output's tool calls, a JSON array of {"id", "name", "arguments"}
     * (arguments: JSON text, or an already parsed object) or OpenAI's
     * {"id", "type", "function": {"name", "arguments"}}. NULL: none. */
    const json_t *tool_calls;
    int has_latency;         /* 0: latency unknown (latency assertions are errors) */
    double latency_ms;
    int has_cost;            /* 0: cost unknown */
    double cost_usd;
    /* When set, used instead of the judge given at load time (e.g. a judge
     * bound to this worker thread's provider loop). */
    co_judge_fn judge;
    void *judge_ud;
} co_assert_input;

typedef struct co_assert_result {
    int pass;
    int error;      /* could not be evaluated: pass is 0 */
    double score;   /* 0..1 */
    double weight;  /* the assertion's weight, copied for reports */
    char *reason;   /* malloc'd, never NULL after a successful evaluation */
} co_assert_result;

typedef struct co_assert_case_result {
    int pass;                /* every assertion passed (1 when there are none) */
    size_t n_failed;         /* assertions that did not pass (errors included) */
    size_t n_errors;         /* of which could not be evaluated */
    double score;            /* weighted mean of scores */
    co_assert_result *v;     /* one per assertion, in order */
    size_t n;
} co_assert_case_result;

/* ---- one assertion ------------------------------------------------------------- */

typedef struct co_assertion co_assertion;

/* Parses and compiles one definition. opts may be NULL. `where` prefixes
 * every error message (NULL: "assertion"). CO_EINVAL on a bad definition,
 * CO_ENOMEM. *out is the caller's to co_assertion_free. */
int co_assertion_new(co_assertion **out, const json_t *def, const char *where, const co_assert_opts *opts);
void co_assertion_free(co_assertion *a);

/* The type as written ("not-icontains"), the metric label (NULL when none),
 * the weight, and whether it is negated. */
const char *co_assertion_type(const co_assertion *a);
const char *co_assertion_metric(const co_assertion *a);
double co_assertion_weight(const co_assertion *a);
int co_assertion_negated(const co_assertion *a);

/* Evaluates one assertion into *out (which the caller then frees with
 * co_assert_result_free). Returns 0 (pass or fail is in *out), CO_EINVAL when
 * the input is malformed (tool_calls not an array), CO_ENOMEM. */
int co_assertion_eval(const co_assertion *a, const co_assert_input *in, co_assert_result *out);
void co_assert_result_free(co_assert_result *r);

/* ---- the assertions of one case ------------------------------------------------ */

typedef struct co_assert_set co_assert_set;

int co_assert_set_new(co_assert_set **out);
void co_assert_set_free(co_assert_set *set);
/* Parses, compiles and appends one definition (see co_assertion_new). On
 * error the set is unchanged. */
int co_assert_set_add(co_assert_set *set, const json_t *def, const char *where, const co_assert_opts *opts);
/* Appends every definition of a JSON array; `where` names the list and each
 * error says which item ("suite.yaml:12:5: assert[2]: ..."). Stops at the
 * first error (the set keeps the items before it). */
int co_assert_set_add_list(co_assert_set *set, const json_t *defs, const char *where,
                           const co_assert_opts *opts);
size_t co_assert_set_len(const co_assert_set *set);
const co_assertion *co_assert_set_get(const co_assert_set *set, size_t i);

/* Evaluates every assertion (the output is lower-cased and parsed as JSON at
 * most once for all of them). *out is the caller's to
 * co_assert_case_result_free, also after an error. */
int co_assert_set_eval(const co_assert_set *set, const co_assert_input *in, co_assert_case_result *out);
void co_assert_case_result_free(co_assert_case_result *r);

/* ---- helpers (exposed for the loader, reports and tests) ------------------------ */

/* The supported type names (without "not-"), NULL-terminated. */
const char *const *co_assert_type_names(void);

/* Lower-cases UTF-8 text in place with the mapping described above. */
void co_utf8_fold(char *s, size_t len);

/* Levenshtein distance in code points between a and b when it is at most
 * `max`; otherwise max + 1. Memory O(code points of the shorter text); time
 * O(n * min(m, 2 * max + 1)). Returns 0 and sets *dist, or CO_ENOMEM. */
int co_levenshtein(const char *a, size_t alen, const char *b, size_t blen, size_t max, size_t *dist);

#endif
