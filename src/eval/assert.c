/* Eval assertions: parsing and compiling promptfoo-style definitions, and
 * evaluating them against one output (see include/cutover/assert.h). */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cutover/assert.h"
#include "cutover/buf.h"
#include "cutover/error.h"
#include "cutover/jsonschema.h"
#include "cutover/util.h"

/* Work bound of one levenshtein comparison (DP cells; about a second). */
#define LEV_MAX_CELLS 400000000ull
/* Bytes the contains-json scan may examine (each candidate '{' or '[' is
 * scanned until its value ends or breaks), as a multiple of the output
 * length plus a constant, before it gives up: bounded work on pathological
 * text such as megabytes of unclosed brackets. */
#define CJ_BUDGET_FACTOR 16
#define CJ_BUDGET_CONST (1u << 20)
/* Longest quoted excerpt in a reason, in bytes. */
#define QUOTE_MAX 80
/* Reasons are bounded. */
#define REASON_MAX 8192

typedef enum kind {
    K_EQUALS,
    K_CONTAINS,
    K_ICONTAINS,
    K_CONTAINS_ANY,
    K_CONTAINS_ALL,
    K_ICONTAINS_ANY,
    K_ICONTAINS_ALL,
    K_STARTS_WITH,
    K_REGEX,
    K_IS_JSON,
    K_CONTAINS_JSON,
    K_TOOLS_CALL,
    K_LEVENSHTEIN,
    K_LATENCY,
    K_COST,
    K_LLM_RUBRIC,
    K_JSON_SCHEMA,
    K__COUNT
} kind;

static const char *const kind_names[] = {
    "equals", "contains", "icontains", "contains-any", "contains-all", "icontains-any",
    "icontains-all", "starts-with", "regex", "is-json", "contains-json",
    "is-valid-openai-tools-call", "levenshtein", "latency", "cost", "llm-rubric", "json-schema",
    NULL,
};

/* promptfoo types we know and do not implement: named as such, not as typos. */
static const char *const unsupported_types[] = {
    "javascript", "python", "webhook", "similar", "classifier", "moderation",
    "model-graded-closedqa", "model-graded-factuality", "factuality", "answer-relevance",
    "context-faithfulness", "context-recall", "context-relevance", "select-best", "perplexity",
    "perplexity-score", "rouge-n", "bleu", "gleu", "meteor", "is-sql", "contains-sql", "is-xml",
    "contains-xml", "is-valid-openai-function-call", "g-eval", "is-refusal", "finish-reason",
    "guardrails", NULL,
};

static const char *const def_keys[] = {"type", "value", "threshold", "weight", "metric", NULL};
static const char *const unsupported_keys[] = {"provider", "rubricPrompt", "transform", "contextTransform",
                                               "config", NULL};

const char *const *co_assert_type_names(void) { return kind_names; }

typedef struct tool {
    char *name;
    co_jsonschema *params; /* NULL: any arguments object */
} tool;

struct co_assertion {
    kind k;
    int negate;
    char *type;
    char *metric;
    double weight;
    int has_threshold;
    double threshold;
    char **vals;   /* text values (case-folded for the i* types) */
    size_t *lens;
    size_t n_vals;
    char *raw;     /* regex: the pattern as written */
    json_t *jval;  /* equals (JSON), contains-json */
    regex_t re;
    int has_re;
    co_jsonschema *schema;
    tool *tools;
    size_t n_tools;
    co_judge_fn judge;
    void *judge_ud;
};

struct co_assert_set {
    co_assertion **v;
    size_t n, cap;
};

/* ---- text helpers -------------------------------------------------------------- */

static uint32_t fold_cp(uint32_t cp)
{
    if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7)
        return cp + 0x20;
    if (cp >= 0x100 && cp <= 0x17F) {
        if (cp == 0x130 || cp == 0x131 || cp == 0x138 || cp == 0x149 || cp == 0x17F)
            return cp;
        if (cp == 0x178)
            return 0xFF;
        if ((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E))
            return (cp & 1) ? cp + 1 : cp;
        return (cp & 1) ? cp : cp + 1;
    }
    if (cp >= 0x386 && cp <= 0x3AB) {
        if (cp == 0x386) return 0x3AC;
        if (cp >= 0x388 && cp <= 0x38A) return cp + 37;
        if (cp == 0x38C) return 0x3CC;
        if (cp == 0x38E || cp == 0x38F) return cp + 63;
        if (cp >= 0x391 && cp != 0x3A2) return cp + 32;
        return cp;
    }
    if (cp >= 0x400 && cp <= 0x40F) return cp + 0x50;
    if (cp >= 0x410 && cp <= 0x42F) return cp + 0x20;
    if ((cp >= 0x460 && cp <= 0x481) || (cp >= 0x48A && cp <= 0x4BF) || (cp >= 0x4D0 && cp <= 0x52F))
        return (cp & 1) ? cp : cp + 1;
    if (cp >= 0x4C1 && cp <= 0x4CE)
        return (cp & 1) ? cp + 1 : cp;
    if (cp >= 0x531 && cp <= 0x556) return cp + 0x30;
    if ((cp >= 0x1E00 && cp <= 0x1E95) || (cp >= 0x1EA0 && cp <= 0x1EFF))
        return (cp & 1) ? cp : cp + 1;
    if (cp >= 0xFF21 && cp <= 0xFF3A) return cp + 0x20;
    return cp;
}

void co_utf8_fold(char *s, size_t len)
{
    unsigned char *u = (unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned c = u[i];
        if (c < 0x80) {
            if (c >= 'A' && c <= 'Z')
                u[i] = (unsigned char)(c + 32);
            i++;
        } else if ((c & 0xE0) == 0xC0 && i + 1 < len && (u[i + 1] & 0xC0) == 0x80) {
            uint32_t cp = ((c & 0x1Fu) << 6) | (u[i + 1] & 0x3Fu);
            uint32_t lc = cp >= 0x80 ? fold_cp(cp) : cp;
            if (lc != cp) {
                u[i] = (unsigned char)(0xC0 | (lc >> 6));
                u[i + 1] = (unsigned char)(0x80 | (lc & 0x3F));
            }
            i += 2;
        } else if ((c & 0xF0) == 0xE0 && i + 2 < len && (u[i + 1] & 0xC0) == 0x80 && (u[i + 2] & 0xC0) == 0x80) {
            uint32_t cp = ((c & 0x0Fu) << 12) | ((u[i + 1] & 0x3Fu) << 6) | (u[i + 2] & 0x3Fu);
            uint32_t lc = cp >= 0x800 ? fold_cp(cp) : cp;
            if (lc != cp) {
                u[i] = (unsigned char)(0xE0 | (lc >> 12));
                u[i + 1] = (unsigned char)(0x80 | ((lc >> 6) & 0x3F));
                u[i + 2] = (unsigned char)(0x80 | (lc & 0x3F));
            }
            i += 3;
        } else {
            i++; /* 4-byte sequences (no mapping) and invalid bytes */
        }
    }
}

/* The next code point; an invalid byte is 0x110000 + its value (unique,
 * never equal to a real code point) and takes one byte. */
static uint32_t utf8_next(const unsigned char *s, size_t n, size_t *i)
{
    unsigned c = s[*i];
    size_t need;
    uint32_t cp, min;
    if (c < 0x80) {
        (*i)++;
        return c;
    }
    if ((c & 0xE0) == 0xC0) {
        need = 1, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        need = 2, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        need = 3, cp = c & 0x07, min = 0x10000;
    } else {
        (*i)++;
        return 0x110000 + c;
    }
    if (*i + need >= n) {
        (*i)++;
        return 0x110000 + c;
    }
    for (size_t k = 1; k <= need; k++) {
        unsigned cc = s[*i + k];
        if ((cc & 0xC0) != 0x80) {
            (*i)++;
            return 0x110000 + c;
        }
        cp = (cp << 6) | (cc & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000)) {
        (*i)++;
        return 0x110000 + c;
    }
    *i += need + 1;
    return cp;
}

static size_t cp_count(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; k++)
        utf8_next((const unsigned char *)s, n, &i);
    return k;
}

int co_levenshtein(const char *a, size_t alen, const char *b, size_t blen, size_t max, size_t *dist)
{
    size_t na = cp_count(a, alen), nb = cp_count(b, blen);
    if (nb > na) { /* a: the longer text, read sequentially; b: the shorter, kept decoded */
        const char *t = a;
        a = b;
        b = t;
        size_t tl = alen;
        alen = blen;
        blen = tl;
        tl = na;
        na = nb;
        nb = tl;
    }
    if (na - nb > max) {
        *dist = max + 1;
        return 0;
    }
    if (nb == 0) {
        *dist = na;
        return 0;
    }
    size_t k = max < na ? max : na; /* the distance never exceeds na */
    size_t band = 2 * k + 1 < nb ? 2 * k + 1 : nb;
    if ((unsigned long long)na * band > LEV_MAX_CELLS)
        return co_error_set(CO_ETOOBIG, "levenshtein: comparing %zu with %zu characters within %zu edits is "
                            "too much work (limit %llu cells)", na, nb, k, LEV_MAX_CELLS);
    uint32_t *sb = malloc(nb * sizeof *sb);
    size_t *row = malloc((nb + 1) * sizeof *row);
    if (!sb || !row) {
        free(sb);
        free(row);
        return co_error_set(CO_ENOMEM, "out of memory computing an edit distance");
    }
    size_t cap = k + 1, result = cap;
    for (size_t j = 0, pos = 0; j < nb; j++)
        sb[j] = utf8_next((const unsigned char *)b, blen, &pos);
    for (size_t j = 0; j <= nb; j++)
        row[j] = j < cap ? j : cap;
    size_t i = 0, pos = 0;
    while (pos < alen) {
        uint32_t ca = utf8_next((const unsigned char *)a, alen, &pos);
        i++;
        size_t lo = i > k ? i - k : 1, hi = i + k < nb ? i + k : nb;
        if (lo > hi)
            goto done; /* result stays cap: beyond reach */
        size_t diag = row[lo - 1], left;
        if (lo == 1) {
            left = i < cap ? i : cap;
            row[0] = left;
        } else {
            left = cap;
            row[lo - 1] = cap;
        }
        size_t best = cap;
        for (size_t j = lo; j <= hi; j++) {
            size_t up = row[j];
            size_t v = diag + (ca != sb[j - 1]);
            if (up + 1 < v)
                v = up + 1;
            if (left + 1 < v)
                v = left + 1;
            if (v > cap)
                v = cap;
            diag = up;
            row[j] = v;
            left = v;
            if (v < best)
                best = v;
        }
        if (best >= cap)
            goto done;
    }
    result = row[nb];
done:
    free(sb);
    free(row);
    *dist = result > k ? max + 1 : result;
    return 0;
}

/* Appends s[0..n) quoted, escaped, cut at `max` bytes on a character boundary. */
static void put_q(co_buf *b, const char *s, size_t n, size_t max)
{
    const unsigned char *u = (const unsigned char *)s;
    co_buf_puts(b, "\"");
    size_t i = 0;
    while (i < n) {
        if (i >= max) {
            co_buf_puts(b, "...");
            break;
        }
        unsigned c = u[i];
        if (c == '"') {
            co_buf_puts(b, "\\\"");
        } else if (c == '\\') {
            co_buf_puts(b, "\\\\");
        } else if (c == '\n') {
            co_buf_puts(b, "\\n");
        } else if (c == '\t') {
            co_buf_puts(b, "\\t");
        } else if (c == '\r') {
            co_buf_puts(b, "\\r");
        } else if (c < 0x20 || c == 0x7F) {
            co_buf_printf(b, "\\x%02x", c);
        } else if (c >= 0x80) {
            size_t j = i;
            uint32_t cp = utf8_next(u, n, &j);
            if (cp >= 0x110000)
                co_buf_printf(b, "\\x%02x", c);
            else
                co_buf_append(b, s + i, j - i);
            i = j;
            continue;
        } else {
            co_buf_append(b, s + i, 1);
        }
        i++;
    }
    co_buf_puts(b, "\"");
}

static void put_qs(co_buf *b, const char *s, size_t n) { put_q(b, s, n, QUOTE_MAX); }

static void put_json(co_buf *b, const json_t *v, size_t max)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s) {
        co_buf_puts(b, "?");
        return;
    }
    size_t n = strlen(s);
    if (n > max) {
        while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
            max--;
        co_buf_append(b, s, max);
        co_buf_puts(b, "...");
    } else {
        co_buf_append(b, s, n);
    }
    free(s);
}

static const char *fmt_num(double d, char *buf, size_t n)
{
    snprintf(buf, n, "%.15g", d);
    if (strtod(buf, NULL) != d)
        snprintf(buf, n, "%.17g", d);
    return buf;
}

/* ---- parsing ------------------------------------------------------------------- */

typedef struct pctx {
    const char *where;
    const char *type; /* as written, once known */
} pctx;

static int perr(const pctx *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int perr(const pctx *p, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (p->type)
        return co_error_set(CO_EINVAL, "%s: %s: %s", p->where, p->type, msg);
    return co_error_set(CO_EINVAL, "%s: %s", p->where, msg);
}

static int oom(void) { return co_error_set(CO_ENOMEM, "out of memory compiling an assertion"); }

/* A string (or a number, as its text) as a malloc'd value. 1 when v is
 * neither. */
static int value_text(const json_t *v, char **out, size_t *len)
{
    char num[40];
    const char *s;
    size_t n;
    if (json_is_string(v)) {
        s = json_string_value(v);
        n = json_string_length(v);
    } else if (json_is_integer(v)) {
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
        s = num;
        n = strlen(num);
    } else if (json_is_real(v)) {
        s = fmt_num(json_real_value(v), num, sizeof num);
        n = strlen(num);
    } else {
        return 1;
    }
    *out = malloc(n + 1);
    if (!*out)
        return oom();
    memcpy(*out, s, n);
    (*out)[n] = '\0';
    *len = n;
    return 0;
}

static int add_val(co_assertion *a, char *s, size_t n)
{
    char **v = realloc(a->vals, (a->n_vals + 1) * sizeof *v);
    if (!v) {
        free(s);
        return oom();
    }
    a->vals = v;
    size_t *l = realloc(a->lens, (a->n_vals + 1) * sizeof *l);
    if (!l) {
        free(s);
        return oom();
    }
    a->lens = l;
    a->vals[a->n_vals] = s;
    a->lens[a->n_vals] = n;
    a->n_vals++;
    return 0;
}

static int parse_text_value(const pctx *p, co_assertion *a, const json_t *v, int fold)
{
    char *s = NULL;
    size_t n = 0;
    int rc = value_text(v, &s, &n);
    if (rc == 1)
        return perr(p, "value must be a string, got %s", co_json_type_name(v));
    if (rc)
        return rc;
    if (n == 0) {
        free(s);
        return perr(p, "value must not be empty");
    }
    if (fold)
        co_utf8_fold(s, n);
    return add_val(a, s, n);
}

static int parse_list_value(const pctx *p, co_assertion *a, const json_t *v, int fold)
{
    if (!json_is_array(v))
        return perr(p, "value must be a list of strings, got %s%s", co_json_type_name(v),
                    json_is_string(v) ? " (write [\"a\", \"b\"] or a YAML list)" : "");
    if (json_array_size(v) == 0)
        return perr(p, "value must be a non-empty list of strings");
    for (size_t i = 0; i < json_array_size(v); i++) {
        char *s = NULL;
        size_t n = 0;
        int rc = value_text(json_array_get(v, i), &s, &n);
        if (rc == 1)
            return perr(p, "value[%zu] must be a string, got %s", i, co_json_type_name(json_array_get(v, i)));
        if (rc)
            return rc;
        if (n == 0) {
            free(s);
            return perr(p, "value[%zu] must not be empty", i);
        }
        if (fold)
            co_utf8_fold(s, n);
        if ((rc = add_val(a, s, n)))
            return rc;
    }
    return 0;
}

static int compile_schema(const pctx *p, co_jsonschema **out, const json_t *schema, const char *what)
{
    char w[512];
    snprintf(w, sizeof w, "%s: %s%s%s", p->where, p->type, what ? ": " : "", what ? what : "");
    return co_jsonschema_compile(out, schema, w);
}

/* The tools the case offers, with their parameter schemas compiled. */
static int parse_tools(const pctx *p, co_assertion *a, const json_t *tools)
{
    if (!tools || !json_is_array(tools) || json_array_size(tools) == 0)
        return perr(p, "the case offers no tools to check the calls against (give the case `tools`)");
    size_t n = json_array_size(tools);
    a->tools = calloc(n, sizeof *a->tools);
    if (!a->tools)
        return oom();
    for (size_t i = 0; i < n; i++) {
        const json_t *t = json_array_get(tools, i), *fn = t, *params = NULL, *name;
        if (json_is_object(json_object_get(t, "function")))
            fn = json_object_get(t, "function");
        name = json_object_get(fn, "name");
        if (!json_is_object(t) || !json_is_string(name))
            return perr(p, "tools[%zu] has no name (expected {\"type\": \"function\", \"function\": {\"name\", "
                           "\"parameters\"}})", i);
        params = json_object_get(fn, "parameters");
        if (!params)
            params = json_object_get(fn, "input_schema");
        if (!(a->tools[i].name = strdup(json_string_value(name))))
            return oom();
        a->n_tools = i + 1;
        json_t *parsed = NULL;
        if (json_is_string(params)) {
            json_error_t je;
            parsed = json_loads(json_string_value(params), 0, &je);
            if (!parsed)
                return perr(p, "tool '%s': parameters are not valid JSON: %s", a->tools[i].name, je.text);
            params = parsed;
        }
        int rc = 0;
        if (params && !json_is_null(params)) {
            char what[300];
            snprintf(what, sizeof what, "tool '%s' parameters", a->tools[i].name);
            rc = compile_schema(p, &a->tools[i].params, params, what);
        }
        json_decref(parsed);
        if (rc)
            return rc;
    }
    return 0;
}

static int check_keys(const pctx *p, const json_t *def)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)def, k, v) {
        size_t i;
        for (i = 0; def_keys[i] && strcmp(def_keys[i], k) != 0; i++)
            ;
        if (def_keys[i])
            continue;
        for (i = 0; unsupported_keys[i] && strcmp(unsupported_keys[i], k) != 0; i++)
            ;
        if (unsupported_keys[i])
            return perr(p, "'%s' is a promptfoo option cutover does not support", k);
        const char *sug = co_suggest(k, def_keys);
        if (sug)
            return perr(p, "unknown key '%s' (did you mean '%s'?)", k, sug);
        return perr(p, "unknown key '%s' (an assertion has type, value, threshold, weight, metric)", k);
    }
    return 0;
}

static int parse_type(pctx *p, co_assertion *a, const json_t *def)
{
    const json_t *t = json_object_get(def, "type");
    if (!t)
        return perr(p, "assertion has no type");
    if (!json_is_string(t))
        return perr(p, "assertion type must be a string, got %s", co_json_type_name(t));
    const char *name = json_string_value(t), *base = name;
    if (strncmp(name, "not-", 4) == 0) {
        a->negate = 1;
        base = name + 4;
    }
    for (int k = 0; k < K__COUNT; k++)
        if (strcmp(kind_names[k], base) == 0) {
            a->k = (kind)k;
            if (!(a->type = strdup(name)))
                return oom();
            p->type = a->type;
            return 0;
        }
    for (size_t i = 0; unsupported_types[i]; i++)
        if (strcmp(unsupported_types[i], base) == 0)
            return perr(p, "assertion type '%s' is a promptfoo type cutover does not support", name);
    const char *sug = co_suggest(base, kind_names);
    if (sug)
        return perr(p, "unknown assertion type '%s' (did you mean '%s%s'?)", name, a->negate ? "not-" : "", sug);
    return perr(p, "unknown assertion type '%s' (known: equals, contains, icontains, contains-any, contains-all, "
                   "icontains-any, icontains-all, starts-with, regex, is-json, contains-json, "
                   "is-valid-openai-tools-call, levenshtein, latency, cost, llm-rubric, json-schema; "
                   "each also as not-...)", name);
}

static int parse_numbers(const pctx *p, co_assertion *a, const json_t *def)
{
    const json_t *w = json_object_get(def, "weight"), *t = json_object_get(def, "threshold");
    a->weight = 1;
    if (w) {
        if (!json_is_number(w) || !isfinite(json_number_value(w)) || json_number_value(w) < 0)
            return perr(p, "weight must be a number >= 0, got %s",
                        json_is_number(w) ? "a negative number" : co_json_type_name(w));
        a->weight = json_number_value(w);
    }
    if (!t || json_is_null(t))
        return 0;
    if (a->k != K_LEVENSHTEIN && a->k != K_LATENCY && a->k != K_COST && a->k != K_LLM_RUBRIC)
        return perr(p, "threshold does not apply to %s (only levenshtein, latency, cost and llm-rubric take one)",
                    kind_names[a->k]);
    if (!json_is_number(t) || !isfinite(json_number_value(t)))
        return perr(p, "threshold must be a number, got %s", co_json_type_name(t));
    double d = json_number_value(t);
    if (d < 0)
        return perr(p, "threshold must not be negative");
    if (a->k == K_LLM_RUBRIC && d > 1)
        return perr(p, "threshold is a score between 0 and 1, got %g", d);
    a->has_threshold = 1;
    a->threshold = d;
    return 0;
}

static int parse_value(const pctx *p, co_assertion *a, const json_t *def, const co_assert_opts *opts)
{
    const json_t *v = json_object_get(def, "value");
    if (json_is_null(v))
        v = NULL;
    int rc;
    switch (a->k) {
    case K_EQUALS:
        if (!v)
            return perr(p, "needs a value");
        if (json_is_string(v)) {
            size_t n = json_string_length(v);
            char *s = malloc(n + 1);
            if (!s)
                return oom();
            memcpy(s, json_string_value(v), n + 1);
            return add_val(a, s, n);
        }
        if (!(a->jval = json_deep_copy(v)))
            return oom();
        return 0;
    case K_CONTAINS:
    case K_STARTS_WITH:
    case K_ICONTAINS:
        if (!v)
            return perr(p, "needs a value (the text to look for)");
        return parse_text_value(p, a, v, a->k == K_ICONTAINS);
    case K_CONTAINS_ANY:
    case K_CONTAINS_ALL:
    case K_ICONTAINS_ANY:
    case K_ICONTAINS_ALL:
        if (!v)
            return perr(p, "needs a value (a list of strings)");
        return parse_list_value(p, a, v, a->k == K_ICONTAINS_ANY || a->k == K_ICONTAINS_ALL);
    case K_REGEX: {
        char why[256];
        if (!v)
            return perr(p, "needs a value (the pattern)");
        if (!json_is_string(v))
            return perr(p, "value must be a pattern string, got %s", co_json_type_name(v));
        rc = co_regex_compile(&a->re, json_string_value(v), 0, why, sizeof why);
        if (rc == CO_ENOMEM)
            return oom();
        if (rc)
            return perr(p, "pattern \"%s\" does not compile: %s", json_string_value(v), why);
        a->has_re = 1;
        if (!(a->raw = strdup(json_string_value(v))))
            return oom();
        return 0;
    }
    case K_IS_JSON:
        if (!v)
            return 0;
        if (!json_is_object(v) && !json_is_boolean(v))
            return perr(p, "value, when given, is a JSON Schema (an object), got %s", co_json_type_name(v));
        return compile_schema(p, &a->schema, v, NULL);
    case K_JSON_SCHEMA:
        if (!v)
            return perr(p, "needs a value (the JSON Schema)");
        if (!json_is_object(v) && !json_is_boolean(v))
            return perr(p, "value must be a JSON Schema (an object), got %s", co_json_type_name(v));
        return compile_schema(p, &a->schema, v, NULL);
    case K_CONTAINS_JSON:
        if (v && !json_is_object(v) && !json_is_array(v))
            return perr(p, "value, when given, is the JSON object or array expected in the output, got %s",
                        co_json_type_name(v));
        if (v && !(a->jval = json_deep_copy(v)))
            return oom();
        return 0;
    case K_TOOLS_CALL:
        if (v)
            return perr(p, "takes no value (the tools come from the case)");
        return parse_tools(p, a, opts ? opts->tools : NULL);
    case K_LEVENSHTEIN:
        if (!v)
            return perr(p, "needs a value (the expected text)");
        {
            char *s = NULL;
            size_t n = 0;
            if ((rc = value_text(v, &s, &n)) == 1)
                return perr(p, "value must be a string, got %s", co_json_type_name(v));
            if (rc || (rc = add_val(a, s, n)))
                return rc;
        }
        if (!a->has_threshold) {
            a->has_threshold = 1;
            a->threshold = 5;
        }
        return 0;
    case K_LATENCY:
    case K_COST:
        if (v)
            return perr(p, "takes no value: give the limit as threshold (%s)", a->k == K_LATENCY ? "ms" : "USD");
        if (!a->has_threshold)
            return perr(p, "needs a threshold (%s)", a->k == K_LATENCY ? "the most milliseconds allowed"
                                                                         : "the most USD allowed");
        return 0;
    case K_LLM_RUBRIC:
        if (!v)
            return perr(p, "needs a value (the rubric)");
        if (!json_is_string(v) || json_string_length(v) == 0)
            return perr(p, "value must be a non-empty rubric string, got %s",
                        json_is_string(v) ? "an empty string" : co_json_type_name(v));
        if (!opts || !opts->judge)
            return perr(p, "needs a judge model, and none is configured (set the eval judge in cutover.yaml)");
        a->judge = opts->judge;
        a->judge_ud = opts->judge_ud;
        return parse_text_value(p, a, v, 0);
    case K__COUNT:
        break;
    }
    return perr(p, "internal error: unhandled type");
}

int co_assertion_new(co_assertion **out, const json_t *def, const char *where, const co_assert_opts *opts)
{
    int rc = 0;
    pctx p = {.where = where ? where : "assertion"};
    co_assertion *a = NULL;
    *out = NULL;
    if (!json_is_object(def))
        return perr(&p, "an assertion must be an object with a type, got %s", def ? co_json_type_name(def) : "nothing");
    a = calloc(1, sizeof *a);
    if (!a)
        return oom();
    if ((rc = parse_type(&p, a, def)))
        goto done;
    if ((rc = check_keys(&p, def)))
        goto done;
    if ((rc = parse_numbers(&p, a, def)))
        goto done;
    if ((rc = parse_value(&p, a, def, opts)))
        goto done;
    const json_t *m = json_object_get(def, "metric");
    if (m && !json_is_null(m)) {
        if (!json_is_string(m)) {
            rc = perr(&p, "metric must be a string, got %s", co_json_type_name(m));
            goto done;
        }
        if (!(a->metric = strdup(json_string_value(m)))) {
            rc = oom();
            goto done;
        }
    }
    *out = a;
    a = NULL;
done:
    co_assertion_free(a);
    return rc;
}

void co_assertion_free(co_assertion *a)
{
    if (!a)
        return;
    free(a->type);
    free(a->metric);
    for (size_t i = 0; i < a->n_vals; i++)
        free(a->vals[i]);
    free(a->vals);
    free(a->lens);
    free(a->raw);
    json_decref(a->jval);
    if (a->has_re)
        regfree(&a->re);
    co_jsonschema_free(a->schema);
    for (size_t i = 0; i < a->n_tools; i++) {
        free(a->tools[i].name);
        co_jsonschema_free(a->tools[i].params);
    }
    free(a->tools);
    free(a);
}

const char *co_assertion_type(const co_assertion *a) { return a->type; }
const char *co_assertion_metric(const co_assertion *a) { return a->metric; }
double co_assertion_weight(const co_assertion *a) { return a->weight; }
int co_assertion_negated(const co_assertion *a) { return a->negate; }

/* ---- evaluation ---------------------------------------------------------------- */

/* What several assertions of one case share: computed at most once. */
typedef struct ectx {
    const co_assert_input *in;
    const char *out;
    size_t len;
    char *folded;
    int folded_done;
    json_t *json;
    int json_done;
    char json_err[200];
} ectx;

static void ectx_init(ectx *e, const co_assert_input *in)
{
    memset(e, 0, sizeof *e);
    e->in = in;
    e->out = in->output ? in->output : "";
    e->len = in->output ? in->output_len : 0;
}

static void ectx_free(ectx *e)
{
    free(e->folded);
    json_decref(e->json);
}

static const char *folded(ectx *e)
{
    if (!e->folded_done) {
        e->folded = malloc(e->len + 1);
        if (!e->folded)
            return NULL;
        memcpy(e->folded, e->out, e->len);
        e->folded[e->len] = '\0';
        co_utf8_fold(e->folded, e->len);
        e->folded_done = 1;
    }
    return e->folded;
}

/* The whole output parsed as one JSON value, or NULL (json_err says why). */
static const json_t *out_json(ectx *e)
{
    if (!e->json_done) {
        json_error_t je;
        e->json = json_loadb(e->out, e->len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        if (!e->json)
            snprintf(e->json_err, sizeof e->json_err, "%s (line %d, column %d)", je.text, je.line, je.column);
        e->json_done = 1;
    }
    return e->json;
}

/* 1 when `got` matches `want`; otherwise writes the first difference to why
 * (with its JSON pointer). subset: objects may have extra keys. */
static const char *ptr_or_root(const co_buf *path, size_t mark)
{
    return mark && path->p ? path->p : "(root)";
}

static void path_cut(co_buf *path, size_t mark)
{
    path->len = mark;
    if (path->p)
        path->p[mark] = '\0';
}

static int json_match(const json_t *want, const json_t *got, int subset, co_buf *path, co_buf *why)
{
    size_t mark = path->len;
    if (json_is_object(want) && json_is_object(got)) {
        const char *k;
        json_t *wv;
        json_object_foreach((json_t *)want, k, wv) {
            const json_t *gv = json_object_get(got, k);
            co_buf_puts(path, "/");
            for (const char *c = k; *c; c++)
                co_buf_puts(path, *c == '~' ? "~0" : *c == '/' ? "~1" : (char[2]){*c, 0});
            if (!gv) {
                co_buf_printf(why, "at %s: missing", ptr_or_root(path, path->len));
                return 0;
            }
            if (!json_match(wv, gv, subset, path, why))
                return 0;
            path_cut(path, mark);
        }
        if (!subset && json_object_size(got) != json_object_size(want)) {
            json_object_foreach((json_t *)got, k, wv) {
                if (!json_object_get(want, k)) {
                    co_buf_printf(why, "at %s: unexpected key '%s'", ptr_or_root(path, mark), k);
                    return 0;
                }
            }
        }
        return 1;
    }
    if (json_is_array(want) && json_is_array(got)) {
        if (json_array_size(want) != json_array_size(got)) {
            co_buf_printf(why, "at %s: expected %zu items, got %zu", ptr_or_root(path, mark), json_array_size(want),
                          json_array_size(got));
            return 0;
        }
        for (size_t i = 0; i < json_array_size(want); i++) {
            co_buf_printf(path, "/%zu", i);
            if (!json_match(json_array_get(want, i), json_array_get(got, i), subset, path, why))
                return 0;
            path_cut(path, mark);
        }
        return 1;
    }
    if (co_json_equal(want, got))
        return 1;
    co_buf_printf(why, "at %s: expected ", ptr_or_root(path, mark));
    put_json(why, want, 60);
    co_buf_puts(why, ", got ");
    put_json(why, got, 60);
    return 0;
}

typedef struct res {
    int pass, error;
    double score;
    co_buf why;
} res;

static int eval_contains(const co_assertion *a, ectx *e, res *r)
{
    int fold = a->k == K_ICONTAINS || a->k == K_ICONTAINS_ANY || a->k == K_ICONTAINS_ALL;
    const char *hay = fold ? folded(e) : e->out;
    if (!hay)
        return co_error_set(CO_ENOMEM, "out of memory evaluating %s", a->type);
    const char *what = fold ? "(ignoring case) " : "";
    if (a->k == K_CONTAINS || a->k == K_ICONTAINS) {
        const char *at = memmem(hay, e->len, a->vals[0], a->lens[0]);
        r->pass = at != NULL;
        co_buf_printf(&r->why, "output %s%s", at ? "contains " : "does not contain ", what);
        put_qs(&r->why, a->vals[0], a->lens[0]);
        if (at)
            co_buf_printf(&r->why, " at byte %zu", (size_t)(at - hay));
        return 0;
    }
    if (a->k == K_CONTAINS_ANY || a->k == K_ICONTAINS_ANY) {
        for (size_t i = 0; i < a->n_vals; i++) {
            const char *at = memmem(hay, e->len, a->vals[i], a->lens[i]);
            if (at) {
                r->pass = 1;
                co_buf_printf(&r->why, "output contains %s", what);
                put_qs(&r->why, a->vals[i], a->lens[i]);
                co_buf_printf(&r->why, " at byte %zu", (size_t)(at - hay));
                return 0;
            }
        }
        co_buf_printf(&r->why, "output contains none of %s", what);
        for (size_t i = 0; i < a->n_vals && i < 5; i++) {
            if (i)
                co_buf_puts(&r->why, ", ");
            put_qs(&r->why, a->vals[i], a->lens[i]);
        }
        if (a->n_vals > 5)
            co_buf_printf(&r->why, ", ... (%zu in all)", a->n_vals);
        return 0;
    }
    /* contains-all */
    size_t missing = 0;
    for (size_t i = 0; i < a->n_vals; i++) {
        if (memmem(hay, e->len, a->vals[i], a->lens[i]))
            continue;
        if (missing == 0)
            co_buf_printf(&r->why, "output is missing %s", what);
        if (missing < 5) {
            if (missing)
                co_buf_puts(&r->why, ", ");
            put_qs(&r->why, a->vals[i], a->lens[i]);
        }
        missing++;
    }
    r->pass = missing == 0;
    if (missing)
        co_buf_printf(&r->why, "%s (%zu of %zu)", missing > 5 ? ", ..." : "", missing, a->n_vals);
    else
        co_buf_printf(&r->why, "output contains all %zu values %s", a->n_vals, what);
    return 0;
}

static int eval_equals(const co_assertion *a, ectx *e, res *r)
{
    if (!a->jval) {
        size_t n = a->lens[0], i = 0;
        r->pass = e->len == n && memcmp(e->out, a->vals[0], n) == 0;
        if (r->pass) {
            co_buf_puts(&r->why, "output equals ");
            put_qs(&r->why, a->vals[0], n);
            return 0;
        }
        while (i < n && i < e->len && e->out[i] == a->vals[0][i])
            i++;
        co_buf_puts(&r->why, "output ");
        put_qs(&r->why, e->out, e->len);
        co_buf_puts(&r->why, " differs from ");
        put_qs(&r->why, a->vals[0], n);
        co_buf_printf(&r->why, " from byte %zu (lengths %zu and %zu)", i, e->len, n);
        return 0;
    }
    const json_t *j = out_json(e);
    if (!j) {
        co_buf_printf(&r->why, "output is not JSON: %s", e->json_err);
        return 0;
    }
    co_buf path;
    co_buf_init(&path, 1 << 16);
    r->pass = json_match(a->jval, j, 0, &path, &r->why);
    co_buf_free(&path);
    if (r->pass) {
        co_buf_puts(&r->why, "output JSON equals ");
        put_json(&r->why, a->jval, QUOTE_MAX);
    } else {
        co_buf_puts(&r->why, " (output JSON differs from the expected value)");
    }
    return 0;
}

static int eval_regex(const co_assertion *a, ectx *e, res *r)
{
    if (e->len > INT_MAX) { /* regoff_t is an int in glibc */
        r->error = 1;
        co_buf_printf(&r->why, "output of %zu bytes is too long for a regex", e->len);
        return 0;
    }
    regmatch_t m[1] = {{.rm_so = 0, .rm_eo = (regoff_t)e->len}};
    int x = regexec(&a->re, e->out, 1, m, REG_STARTEND);
    r->pass = x == 0;
    co_buf_printf(&r->why, "output %s /%s/", r->pass ? "matches" : "does not match", a->raw);
    if (r->pass) {
        co_buf_printf(&r->why, " at byte %zu: ", (size_t)m[0].rm_so);
        put_qs(&r->why, e->out + m[0].rm_so, (size_t)(m[0].rm_eo - m[0].rm_so));
    } else if (x != REG_NOMATCH) {
        r->error = 1;
        co_buf_printf(&r->why, " (regexec failed: %d)", x);
    }
    return 0;
}

static int validate_into(const co_jsonschema *s, const json_t *j, res *r, const char *prefix)
{
    co_jsonschema_errors errs = {0};
    int valid = 0, rc = co_jsonschema_validate(s, j, &valid, &errs);
    if (rc) {
        co_jsonschema_errors_free(&errs);
        return rc;
    }
    r->pass = valid;
    if (!valid) {
        co_buf_puts(&r->why, prefix);
        co_jsonschema_errors_format(&errs, &r->why);
    }
    co_jsonschema_errors_free(&errs);
    return 0;
}

static int eval_json_kinds(const co_assertion *a, ectx *e, res *r)
{
    const json_t *j = out_json(e);
    if (!j) {
        co_buf_printf(&r->why, "output is not valid JSON: %s", e->json_err);
        return 0;
    }
    if (!a->schema) {
        r->pass = 1;
        co_buf_printf(&r->why, "output is valid JSON (%s)", co_json_type_name(j));
        return 0;
    }
    int rc = validate_into(a->schema, j, r, "output JSON does not match the schema: ");
    if (!rc && r->pass)
        co_buf_printf(&r->why, "output is JSON (%s) that matches the schema", co_json_type_name(j));
    return rc;
}

/* A cheap, allocation-free JSON grammar check of the object or array at
 * s[0] (jansson's nesting limit). 1 with *end just past the value; 0 with
 * *end the bytes examined. What it accepts jansson may still refuse (invalid
 * UTF-8, \u0000, integers beyond 64 bits): the caller parses afterwards. */
#define JSCAN_DEPTH 2048

static int scan_string(const char *s, size_t n, size_t *i)
{
    size_t k = *i + 1;
    while (k < n) {
        unsigned char c = (unsigned char)s[k];
        if (c == '"') {
            *i = k + 1;
            return 1;
        }
        if (c < 0x20)
            break;
        if (c == '\\') {
            if (k + 1 >= n)
                break;
            char x = s[k + 1];
            if (x == 'u') {
                if (k + 5 >= n || !isxdigit((unsigned char)s[k + 2]) || !isxdigit((unsigned char)s[k + 3]) ||
                    !isxdigit((unsigned char)s[k + 4]) || !isxdigit((unsigned char)s[k + 5]))
                    break;
                k += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", x) || !x)
                break;
            k += 2;
            continue;
        }
        k++;
    }
    *i = k;
    return 0;
}

static int scan_number(const char *s, size_t n, size_t *i)
{
    size_t k = *i;
#define DIG(p) ((p) < n && s[p] >= '0' && s[p] <= '9')
    if (k < n && s[k] == '-')
        k++;
    if (!DIG(k))
        goto bad;
    if (s[k] == '0')
        k++;
    else
        while (DIG(k))
            k++;
    if (k < n && s[k] == '.') {
        k++;
        if (!DIG(k))
            goto bad;
        while (DIG(k))
            k++;
    }
    if (k < n && (s[k] == 'e' || s[k] == 'E')) {
        k++;
        if (k < n && (s[k] == '+' || s[k] == '-'))
            k++;
        if (!DIG(k))
            goto bad;
        while (DIG(k))
            k++;
    }
#undef DIG
    *i = k;
    return 1;
bad:
    *i = k;
    return 0;
}

static int json_scan(const char *s, size_t n, size_t *end)
{
    enum { S_VALUE, S_VALUE_OR_CLOSE, S_KEY, S_KEY_OR_CLOSE, S_COLON, S_AFTER } st = S_VALUE;
    unsigned char stack[JSCAN_DEPTH / 8] = {0}; /* bit set: an object at this depth */
    size_t depth = 0, i = 0;
    for (;;) {
        while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
            i++;
        if (i >= n)
            break;
        char c = s[i];
        int obj = depth && (stack[(depth - 1) / 8] >> ((depth - 1) % 8) & 1);
        if (st == S_VALUE_OR_CLOSE && c == ']') {
            depth--, i++, st = S_AFTER;
        } else if (st == S_KEY_OR_CLOSE && c == '}') {
            depth--, i++, st = S_AFTER;
        } else if (st == S_VALUE || st == S_VALUE_OR_CLOSE) {
            if (c == '{' || c == '[') {
                if (depth >= JSCAN_DEPTH)
                    break;
                if (c == '{')
                    stack[depth / 8] |= (unsigned char)(1u << (depth % 8));
                else
                    stack[depth / 8] &= (unsigned char)~(1u << (depth % 8));
                depth++, i++;
                st = c == '{' ? S_KEY_OR_CLOSE : S_VALUE_OR_CLOSE;
                continue;
            }
            if (depth == 0)
                break; /* only objects and arrays are documents here */
            if (c == '"') {
                if (!scan_string(s, n, &i))
                    break;
            } else if (c == '-' || (c >= '0' && c <= '9')) {
                if (!scan_number(s, n, &i))
                    break;
            } else if (n - i >= 4 && memcmp(s + i, "true", 4) == 0) {
                i += 4;
            } else if (n - i >= 5 && memcmp(s + i, "false", 5) == 0) {
                i += 5;
            } else if (n - i >= 4 && memcmp(s + i, "null", 4) == 0) {
                i += 4;
            } else {
                break;
            }
            st = S_AFTER;
            continue;
        } else if (st == S_KEY || st == S_KEY_OR_CLOSE) {
            if (c != '"' || !scan_string(s, n, &i))
                break;
            st = S_COLON;
            continue;
        } else if (st == S_COLON) {
            if (c != ':')
                break;
            i++, st = S_VALUE;
            continue;
        } else { /* S_AFTER */
            if (c == ',') {
                i++, st = obj ? S_KEY : S_VALUE;
                continue;
            }
            if (c != (obj ? '}' : ']'))
                break;
            depth--, i++;
        }
        if (depth == 0) {
            *end = i;
            return 1;
        }
    }
    *end = i < n ? i + 1 : n;
    return 0;
}

static int eval_contains_json(const co_assertion *a, ectx *e, res *r)
{
    size_t budget = e->len * CJ_BUDGET_FACTOR + CJ_BUDGET_CONST, spent = 0, found = 0, first_at = 0;
    co_buf diff, path;
    co_buf_init(&diff, 2048);
    co_buf_init(&path, 1 << 16);
    int gave_up = 0;
    for (size_t i = 0; i < e->len && !r->pass; i++) {
        char c = e->out[i];
        if (c != '{' && c != '[')
            continue;
        if (spent > budget) {
            gave_up = 1;
            break;
        }
        size_t end = 0;
        int ok = json_scan(e->out + i, e->len - i, &end);
        spent += end ? end : 1;
        if (!ok)
            continue;
        json_error_t je;
        json_t *v = json_loadb(e->out + i, end, JSON_ALLOW_NUL, &je);
        if (!v)
            continue; /* e.g. invalid UTF-8 inside: not a document */
        if (found++ == 0)
            first_at = i;
        if (!a->jval) {
            r->pass = 1;
            co_buf_printf(&r->why, "output contains a JSON %s at byte %zu", co_json_type_name(v), i);
        } else {
            co_buf_reset(&path);
            co_buf tmp;
            co_buf_init(&tmp, 2048);
            if (json_match(a->jval, v, 1, &path, &tmp)) {
                r->pass = 1;
                co_buf_printf(&r->why, "output contains a JSON %s at byte %zu that matches the expected value",
                              co_json_type_name(v), i);
            } else if (found == 1) {
                co_buf_puts(&diff, tmp.p ? tmp.p : "");
            }
            co_buf_free(&tmp);
        }
        i += end - 1; /* skip the value: its insides are not candidates */
        json_decref(v);
    }
    if (!r->pass) {
        if (found)
            co_buf_printf(&r->why, "output contains %zu JSON value%s, none matching the expected value "
                                   "(the first, at byte %zu: %s)",
                          found, found == 1 ? "" : "s", first_at, diff.p ? diff.p : "");
        else
            co_buf_puts(&r->why, "output contains no JSON object or array");
        if (gave_up)
            co_buf_puts(&r->why, " (stopped searching: too many candidate positions)");
    }
    co_buf_free(&diff);
    co_buf_free(&path);
    return 0;
}

static int eval_tools(const co_assertion *a, ectx *e, res *r)
{
    const json_t *calls = e->in->tool_calls;
    if (calls && !json_is_array(calls))
        return co_error_set(CO_EINVAL, "tool_calls must be a JSON array, got %s", co_json_type_name(calls));
    size_t n = calls ? json_array_size(calls) : 0;
    if (n == 0) {
        co_buf_puts(&r->why, "output has no tool calls");
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *c = json_array_get(calls, i), *fn = c;
        if (json_is_object(json_object_get(c, "function")))
            fn = json_object_get(c, "function");
        const json_t *name = json_object_get(fn, "name"), *args = json_object_get(fn, "arguments");
        if (!json_is_string(name)) {
            co_buf_printf(&r->why, "tool call %zu has no name", i);
            return 0;
        }
        const char *nm = json_string_value(name);
        const tool *t = NULL;
        for (size_t k = 0; k < a->n_tools && !t; k++)
            if (strcmp(a->tools[k].name, nm) == 0)
                t = &a->tools[k];
        if (!t) {
            co_buf_printf(&r->why, "tool call %zu names '%s', which the case does not offer (offered: ", i, nm);
            for (size_t k = 0; k < a->n_tools && k < 10; k++)
                co_buf_printf(&r->why, "%s%s", k ? ", " : "", a->tools[k].name);
            co_buf_puts(&r->why, a->n_tools > 10 ? ", ...)" : ")");
            return 0;
        }
        json_t *parsed = NULL;
        if (!args || json_is_null(args) || (json_is_string(args) && json_string_length(args) == 0)) {
            parsed = json_object();
        } else if (json_is_string(args)) {
            json_error_t je;
            parsed = json_loadb(json_string_value(args), json_string_length(args), JSON_ALLOW_NUL, &je);
            if (!parsed) {
                co_buf_printf(&r->why, "tool call %zu (%s): arguments are not valid JSON: %s (column %d)", i, nm,
                              je.text, je.column);
                return 0;
            }
        } else {
            parsed = json_incref((json_t *)args);
        }
        if (!parsed)
            return co_error_set(CO_ENOMEM, "out of memory evaluating %s", a->type);
        if (!json_is_object(parsed)) {
            co_buf_printf(&r->why, "tool call %zu (%s): arguments must be a JSON object, got %s", i, nm,
                          co_json_type_name(parsed));
            json_decref(parsed);
            return 0;
        }
        if (t->params) {
            char prefix[300];
            snprintf(prefix, sizeof prefix, "tool call %zu (%s): arguments do not match its parameters: ", i, nm);
            int rc = validate_into(t->params, parsed, r, prefix);
            json_decref(parsed);
            if (rc)
                return rc;
            if (!r->pass)
                return 0;
        } else {
            json_decref(parsed);
        }
    }
    r->pass = 1;
    co_buf_printf(&r->why, "%zu tool call%s, each naming an offered tool with valid arguments (", n,
                  n == 1 ? "" : "s");
    for (size_t i = 0; i < n && i < 10; i++) {
        const json_t *c = json_array_get(calls, i), *fn = c;
        if (json_is_object(json_object_get(c, "function")))
            fn = json_object_get(c, "function");
        co_buf_printf(&r->why, "%s%s", i ? ", " : "", json_string_value(json_object_get(fn, "name")));
    }
    co_buf_puts(&r->why, n > 10 ? ", ...)" : ")");
    return 0;
}

static int eval_levenshtein(const co_assertion *a, ectx *e, res *r)
{
    size_t max = a->threshold >= 1e15 ? (size_t)1e15 : (size_t)a->threshold, d = 0;
    int rc = co_levenshtein(e->out, e->len, a->vals[0], a->lens[0], max, &d);
    if (rc == CO_ETOOBIG) {
        r->error = 1;
        co_buf_puts(&r->why, co_error_last());
        return 0;
    }
    if (rc)
        return rc;
    r->pass = d <= max;
    if (r->pass)
        co_buf_printf(&r->why, "edit distance %zu <= %zu from ", d, max);
    else
        co_buf_printf(&r->why, "edit distance > %zu from ", max);
    put_qs(&r->why, a->vals[0], a->lens[0]);
    return 0;
}

static int eval_limit(const co_assertion *a, ectx *e, res *r)
{
    char x[40], y[40];
    if (a->k == K_LATENCY) {
        if (!e->in->has_latency) {
            r->error = 1;
            co_buf_puts(&r->why, "latency unknown");
            return 0;
        }
        r->pass = e->in->latency_ms <= a->threshold;
        co_buf_printf(&r->why, "latency %s ms %s %s ms", fmt_num(e->in->latency_ms, x, sizeof x),
                      r->pass ? "<=" : ">", fmt_num(a->threshold, y, sizeof y));
        return 0;
    }
    if (!e->in->has_cost) {
        r->error = 1;
        co_buf_puts(&r->why, "cost unknown");
        return 0;
    }
    r->pass = e->in->cost_usd <= a->threshold;
    co_buf_printf(&r->why, "cost $%s %s $%s", fmt_num(e->in->cost_usd, x, sizeof x), r->pass ? "<=" : ">",
                  fmt_num(a->threshold, y, sizeof y));
    return 0;
}

static int eval_rubric(const co_assertion *a, ectx *e, res *r)
{
    co_judge_fn judge = e->in->judge ? e->in->judge : a->judge;
    void *ud = e->in->judge ? e->in->judge_ud : a->judge_ud;
    if (!judge) {
        r->error = 1;
        co_buf_puts(&r->why, "no judge configured");
        return 0;
    }
    int pass = 0;
    double score = 0;
    char *reason = NULL;
    co_error_clear();
    int rc = judge(ud, a->vals[0], e->out, &pass, &score, &reason);
    if (rc) {
        r->error = 1;
        co_buf_printf(&r->why, "judge failed: %s", co_error_last());
        free(reason);
        return 0;
    }
    if (!(score >= 0)) /* also NaN */
        score = 0;
    if (score > 1)
        score = 1;
    r->pass = pass != 0;
    r->score = score;
    if (r->pass && a->has_threshold && score < a->threshold) {
        r->pass = 0;
        co_buf_printf(&r->why, "score %.2f below threshold %.2f: ", score, a->threshold);
    }
    co_buf_puts(&r->why, reason && *reason ? reason : (r->pass ? "the judge passed it" : "the judge failed it"));
    free(reason);
    return 0;
}

static int eval_one(const co_assertion *a, ectx *e, co_assert_result *out)
{
    res r = {0};
    int rc = 0;
    co_buf_init(&r.why, REASON_MAX);
    memset(out, 0, sizeof *out);
    out->weight = a->weight;
    switch (a->k) {
    case K_EQUALS: rc = eval_equals(a, e, &r); break;
    case K_CONTAINS:
    case K_ICONTAINS:
    case K_CONTAINS_ANY:
    case K_CONTAINS_ALL:
    case K_ICONTAINS_ANY:
    case K_ICONTAINS_ALL: rc = eval_contains(a, e, &r); break;
    case K_STARTS_WITH:
        r.pass = e->len >= a->lens[0] && memcmp(e->out, a->vals[0], a->lens[0]) == 0;
        co_buf_puts(&r.why, "output starts with ");
        if (r.pass) {
            put_qs(&r.why, a->vals[0], a->lens[0]);
        } else {
            put_qs(&r.why, e->out, e->len < a->lens[0] ? e->len : a->lens[0]);
            co_buf_puts(&r.why, ", not ");
            put_qs(&r.why, a->vals[0], a->lens[0]);
        }
        break;
    case K_REGEX: rc = eval_regex(a, e, &r); break;
    case K_IS_JSON:
    case K_JSON_SCHEMA: rc = eval_json_kinds(a, e, &r); break;
    case K_CONTAINS_JSON: rc = eval_contains_json(a, e, &r); break;
    case K_TOOLS_CALL: rc = eval_tools(a, e, &r); break;
    case K_LEVENSHTEIN: rc = eval_levenshtein(a, e, &r); break;
    case K_LATENCY:
    case K_COST: rc = eval_limit(a, e, &r); break;
    case K_LLM_RUBRIC: rc = eval_rubric(a, e, &r); break;
    case K__COUNT: rc = co_error_set(CO_EINVAL, "internal error: unhandled assertion type"); break;
    }
    if (rc) {
        co_buf_free(&r.why);
        return rc;
    }
    if (a->k != K_LLM_RUBRIC)
        r.score = r.pass ? 1 : 0;
    if (r.error) {
        r.pass = 0;
        r.score = 0;
    } else if (a->negate) {
        r.pass = !r.pass;
        r.score = 1 - r.score;
    }
    out->pass = r.pass;
    out->error = r.error;
    out->score = r.score;
    out->reason = co_buf_detach(&r.why);
    if (!out->reason)
        return co_error_set(CO_ENOMEM, "out of memory evaluating %s", a->type);
    return 0;
}

int co_assertion_eval(const co_assertion *a, const co_assert_input *in, co_assert_result *out)
{
    ectx e;
    memset(out, 0, sizeof *out);
    if (!a || !in)
        return co_error_set(CO_EINVAL, "no assertion or no input");
    ectx_init(&e, in);
    int rc = eval_one(a, &e, out);
    ectx_free(&e);
    return rc;
}

void co_assert_result_free(co_assert_result *r)
{
    if (!r)
        return;
    free(r->reason);
    r->reason = NULL;
}

/* ---- sets ---------------------------------------------------------------------- */

int co_assert_set_new(co_assert_set **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : co_error_set(CO_ENOMEM, "out of memory");
}

void co_assert_set_free(co_assert_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++)
        co_assertion_free(set->v[i]);
    free(set->v);
    free(set);
}

int co_assert_set_add(co_assert_set *set, const json_t *def, const char *where, const co_assert_opts *opts)
{
    co_assertion *a = NULL;
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 4;
        co_assertion **v = realloc(set->v, cap * sizeof *v);
        if (!v)
            return co_error_set(CO_ENOMEM, "out of memory");
        set->v = v;
        set->cap = cap;
    }
    int rc = co_assertion_new(&a, def, where, opts);
    if (rc)
        return rc;
    set->v[set->n++] = a;
    return 0;
}

int co_assert_set_add_list(co_assert_set *set, const json_t *defs, const char *where, const co_assert_opts *opts)
{
    const char *w = where ? where : "assert";
    if (!json_is_array(defs))
        return co_error_set(CO_EINVAL, "%s: assert must be a list of assertions, got %s", w,
                            defs ? co_json_type_name(defs) : "nothing");
    for (size_t i = 0; i < json_array_size(defs); i++) {
        char iw[512];
        snprintf(iw, sizeof iw, "%s: assert[%zu]", w, i);
        int rc = co_assert_set_add(set, json_array_get(defs, i), iw, opts);
        if (rc)
            return rc;
    }
    return 0;
}

size_t co_assert_set_len(const co_assert_set *set) { return set->n; }

const co_assertion *co_assert_set_get(const co_assert_set *set, size_t i)
{
    return i < set->n ? set->v[i] : NULL;
}

int co_assert_set_eval(const co_assert_set *set, const co_assert_input *in, co_assert_case_result *out)
{
    int rc = 0;
    ectx e;
    memset(out, 0, sizeof *out);
    if (!set || !in)
        return co_error_set(CO_EINVAL, "no assertions or no input");
    ectx_init(&e, in);
    out->pass = 1;
    if (set->n && !(out->v = calloc(set->n, sizeof *out->v))) {
        rc = co_error_set(CO_ENOMEM, "out of memory");
        goto done;
    }
    double wsum = 0, ssum = 0;
    for (size_t i = 0; i < set->n; i++) {
        co_assert_result *r = &out->v[i];
        if ((rc = eval_one(set->v[i], &e, r)))
            goto done;
        out->n = i + 1;
        if (!r->pass) {
            out->pass = 0;
            out->n_failed++;
        }
        if (r->error)
            out->n_errors++;
        wsum += r->weight;
        ssum += r->weight * r->score;
    }
    out->score = wsum > 0 ? ssum / wsum : (out->pass ? 1 : 0);
done:
    if (rc)
        out->pass = 0;
    ectx_free(&e);
    return rc;
}

void co_assert_case_result_free(co_assert_case_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        co_assert_result_free(&r->v[i]);
    free(r->v);
    memset(r, 0, sizeof *r);
}
