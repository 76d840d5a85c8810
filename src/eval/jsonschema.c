/* JSON Schema (draft 2020-12 subset) compiler and validator, JSON equality,
 * and the ECMA-262 -> POSIX ERE pattern translation (see
 * include/cutover/jsonschema.h). */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cutover/buf.h"
#include "cutover/error.h"
#include "cutover/jsonschema.h"
#include "cutover/util.h"

/* ---- JSON helpers ----------------------------------------------------------- */

const char *co_json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

/* -1, 0, 1; exact for integers, long double (64-bit mantissa: exact for
 * int64) when a real is involved. */
static int num_cmp(const json_t *a, const json_t *b)
{
    if (json_is_integer(a) && json_is_integer(b)) {
        json_int_t x = json_integer_value(a), y = json_integer_value(b);
        return x < y ? -1 : x > y;
    }
    long double x = json_is_integer(a) ? (long double)json_integer_value(a) : (long double)json_real_value(a);
    long double y = json_is_integer(b) ? (long double)json_integer_value(b) : (long double)json_real_value(b);
    return x < y ? -1 : x > y;
}

int co_json_equal(const json_t *a, const json_t *b)
{
    if (!a || !b)
        return a == b;
    if (json_is_number(a) && json_is_number(b))
        return num_cmp(a, b) == 0;
    if (json_typeof(a) != json_typeof(b))
        return 0;
    switch (json_typeof(a)) {
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    case JSON_ARRAY: {
        size_t n = json_array_size(a);
        if (n != json_array_size(b))
            return 0;
        for (size_t i = 0; i < n; i++)
            if (!co_json_equal(json_array_get(a, i), json_array_get(b, i)))
                return 0;
        return 1;
    }
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b))
            return 0;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)a, k, v) {
            if (!co_json_equal(v, json_object_get(b, k)))
                return 0;
        }
        return 1;
    }
    default:
        return 1; /* true, false, null: same type */
    }
}

/* Shortest text that reads back as the same number. */
static const char *fmt_num(const json_t *v, char *buf, size_t n)
{
    if (json_is_integer(v)) {
        snprintf(buf, n, "%lld", (long long)json_integer_value(v));
        return buf;
    }
    double d = json_real_value(v);
    snprintf(buf, n, "%.15g", d);
    if (strtod(buf, NULL) != d)
        snprintf(buf, n, "%.17g", d);
    return buf;
}

/* Compact JSON of v, cut at `max` bytes with "..." (on a UTF-8 boundary). */
static void put_json_short(co_buf *b, const json_t *v, size_t max)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s) {
        co_buf_puts(b, "?");
        return;
    }
    size_t n = strlen(s);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
        co_buf_append(b, s, n);
        co_buf_puts(b, "...");
    } else {
        co_buf_append(b, s, n);
    }
    free(s);
}

/* Code points of a UTF-8 string (continuation bytes are not counted). */
static size_t utf8_len(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

/* Appends "/" + key with JSON-pointer escapes (~0, ~1). */
static int ptr_push(co_buf *b, const char *key)
{
    int rc = co_buf_puts(b, "/");
    for (const char *p = key; !rc && *p; p++) {
        if (*p == '~')
            rc = co_buf_puts(b, "~0");
        else if (*p == '/')
            rc = co_buf_puts(b, "~1");
        else
            rc = co_buf_append(b, p, 1);
    }
    return rc;
}

static void buf_truncate(co_buf *b, size_t len)
{
    b->len = len;
    if (b->p)
        b->p[len] = '\0';
}

/* ---- regex: ECMA-262 -> POSIX ERE -------------------------------------------- */

static const char ere_special[] = ".[]()*+?{}|^$\\";

static int is_hex(int c) { return (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'f'); }
static unsigned hex_val(int c) { return c <= '9' ? (unsigned)(c - '0') : (unsigned)((c | 32) - 'a' + 10); }

static size_t utf8_encode(unsigned long cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Reads \xHH, \uHHHH (with a surrogate pair), \u{H...} at p (pointing at
 * 'x' or 'u'). Returns the number of bytes consumed after the backslash, 0
 * when malformed. */
static size_t read_hex_escape(const char *p, unsigned long *cp)
{
    if (p[0] == 'x') {
        if (!is_hex(p[1]) || !is_hex(p[2]))
            return 0;
        *cp = hex_val(p[1]) * 16 + hex_val(p[2]);
        return 3;
    }
    if (p[1] == '{') {
        unsigned long v = 0;
        size_t i = 2;
        for (; is_hex(p[i]) && i < 9; i++)
            v = v * 16 + hex_val(p[i]);
        if (i == 2 || p[i] != '}' || v > 0x10FFFF)
            return 0;
        *cp = v;
        return i + 1;
    }
    for (int i = 1; i <= 4; i++)
        if (!is_hex(p[i]))
            return 0;
    unsigned long v = (hex_val(p[1]) << 12) | (hex_val(p[2]) << 8) | (hex_val(p[3]) << 4) | hex_val(p[4]);
    if (v >= 0xD800 && v < 0xDC00 && p[5] == '\\' && p[6] == 'u') {
        int ok = 1;
        for (int i = 7; i <= 10; i++)
            ok = ok && is_hex(p[i]);
        if (ok) {
            unsigned long lo = (hex_val(p[7]) << 12) | (hex_val(p[8]) << 8) | (hex_val(p[9]) << 4) | hex_val(p[10]);
            if (lo >= 0xDC00 && lo < 0xE000) {
                *cp = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
                return 11;
            }
        }
    }
    if (v >= 0xD800 && v < 0xE000)
        return 0; /* a lone surrogate cannot be matched in UTF-8 text */
    *cp = v;
    return 5;
}

typedef struct ere {
    const char *pat;
    co_buf *o;
    char *err;
    size_t errn;
    int rc;
} ere;

static int ere_fail(ere *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int ere_fail(ere *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (e->errn)
        vsnprintf(e->err, e->errn, fmt, ap);
    va_end(ap);
    e->rc = CO_EINVAL;
    return -1;
}

static void ere_put(ere *e, const char *s, size_t n)
{
    if (!e->rc && co_buf_append(e->o, s, n))
        e->rc = co_error_last_status() ? co_error_last_status() : CO_ENOMEM;
}

static void ere_puts(ere *e, const char *s) { ere_put(e, s, strlen(s)); }

/* One literal code point outside a bracket expression. */
static void ere_literal(ere *e, unsigned long cp)
{
    char u[4];
    if (cp < 0x80 && strchr(ere_special, (int)cp) && cp)
        ere_put(e, "\\", 1);
    ere_put(e, u, utf8_encode(cp, u));
}

/* A {n}, {n,}, {n,m} quantifier at p: its length, else 0. */
static size_t quantifier_len(const char *p)
{
    size_t i = 1;
    if (!(p[i] >= '0' && p[i] <= '9'))
        return 0;
    while (p[i] >= '0' && p[i] <= '9')
        i++;
    if (p[i] == ',') {
        i++;
        while (p[i] >= '0' && p[i] <= '9')
            i++;
    }
    return p[i] == '}' ? i + 1 : 0;
}

/* The bracket expression starting at pat[*i] == '['. */
static int ere_class(ere *e, size_t *i)
{
    const char *p = e->pat;
    size_t j = *i + 1;
    int neg = 0, rb = 0, dash = 0, caret = 0, lbr = 0, first = 1;
    co_buf items;
    co_buf_init(&items, CO_BUF_UNLIMITED);
    if (p[j] == '^') {
        neg = 1;
        j++;
    }
    if (p[j] == ']') {
        co_buf_free(&items);
        return ere_fail(e, "an empty class [%s] is not supported", neg ? "^" : "");
    }
    for (;; first = 0) {
        char c = p[j];
        if (!c) {
            co_buf_free(&items);
            return ere_fail(e, "unterminated [ at offset %zu", *i);
        }
        if (c == ']')
            break;
        if (c == '\\') {
            char x = p[j + 1];
            unsigned long cp = 0;
            size_t used = 0;
            j += 2;
            switch (x) {
            case 'd': co_buf_puts(&items, "0-9"); continue;
            case 'w': co_buf_puts(&items, "A-Za-z0-9_"); continue;
            case 's': co_buf_puts(&items, " \t\n\r\f\v"); continue;
            case 't': cp = '\t'; break;
            case 'n': cp = '\n'; break;
            case 'r': cp = '\r'; break;
            case 'f': cp = '\f'; break;
            case 'v': cp = '\v'; break;
            case 'b': cp = '\b'; break;
            case 'x':
            case 'u':
                used = read_hex_escape(p + j - 1, &cp);
                if (!used || cp == 0) {
                    co_buf_free(&items);
                    return ere_fail(e, "malformed or unsupported \\%c escape at offset %zu", x, j - 2);
                }
                j += used - 1;
                break;
            case '\0':
                co_buf_free(&items);
                return ere_fail(e, "pattern ends with a backslash");
            default:
                if ((x >= 'a' && x <= 'z') || (x >= 'A' && x <= 'Z') || (x >= '0' && x <= '9')) {
                    co_buf_free(&items);
                    return ere_fail(e, "escape \\%c inside [...] is not supported by POSIX ERE", x);
                }
                cp = (unsigned char)x;
            }
            if (cp == ']')
                rb = 1;
            else if (cp == '-')
                dash = 1;
            else if (cp == '^')
                caret = 1;
            else if (cp == '[')
                lbr = 1;
            else {
                char u[4];
                co_buf_append(&items, u, utf8_encode(cp, u));
            }
            continue;
        }
        if (c == '[') {
            const char *end = p[j + 1] == ':' ? strstr(p + j + 2, ":]") : NULL;
            if (end) {
                co_buf_append(&items, p + j, (size_t)(end + 2 - (p + j)));
                j = (size_t)(end + 2 - p);
            } else {
                lbr = 1;
                j++;
            }
            continue;
        }
        if (c == '-' && (first || p[j + 1] == ']')) {
            dash = 1;
            j++;
            continue;
        }
        co_buf_append(&items, &p[j], 1);
        j++;
    }
    if (!neg && !rb && items.len == 0 && caret) {
        if (!lbr && !dash)
            ere_puts(e, "\\^");
        else
            ere_puts(e, dash ? (lbr ? "[-[^]" : "[-^]") : "[[^]");
    } else {
        ere_puts(e, neg ? "[^" : "[");
        if (rb)
            ere_puts(e, "]");
        if (items.len)
            ere_put(e, items.p, items.len);
        if (caret)
            ere_puts(e, "^");
        if (lbr)
            ere_puts(e, "[");
        if (dash)
            ere_puts(e, "-");
        ere_puts(e, "]");
    }
    co_buf_free(&items);
    *i = j + 1;
    return 0;
}

/* Skips a lazy '?' after a quantifier. */
static void skip_lazy(const char *p, size_t *i)
{
    if (p[*i] == '?')
        (*i)++;
}

static int ere_translate(ere *e, int *icase)
{
    const char *p = e->pat;
    size_t i = 0;
    if (strncmp(p, "(?i)", 4) == 0) {
        *icase = 1;
        i = 4;
    }
    while (p[i] && !e->rc) {
        char c = p[i];
        if (c == '\\') {
            char x = p[i + 1];
            unsigned long cp = 0;
            size_t used;
            switch (x) {
            case 'd': ere_puts(e, "[0-9]"); break;
            case 'D': ere_puts(e, "[^0-9]"); break;
            case 'w': ere_puts(e, "[A-Za-z0-9_]"); break;
            case 'W': ere_puts(e, "[^A-Za-z0-9_]"); break;
            case 's': ere_puts(e, "[ \t\n\r\f\v]"); break;
            case 'S': ere_puts(e, "[^ \t\n\r\f\v]"); break;
            case 'b': ere_puts(e, "\\b"); break;
            case 'B': ere_puts(e, "\\B"); break;
            case 't': ere_puts(e, "\t"); break;
            case 'n': ere_puts(e, "\n"); break;
            case 'r': ere_puts(e, "\r"); break;
            case 'f': ere_puts(e, "\f"); break;
            case 'v': ere_puts(e, "\v"); break;
            case 'x':
            case 'u':
                used = read_hex_escape(p + i + 1, &cp);
                if (!used || cp == 0)
                    return ere_fail(e, "malformed or unsupported \\%c escape at offset %zu", x, i);
                ere_literal(e, cp);
                i += used + 1;
                continue;
            case '\0':
                return ere_fail(e, "pattern ends with a backslash");
            case 'p':
            case 'P':
                return ere_fail(e, "Unicode property escapes (\\%c{...}) are not supported by POSIX ERE", x);
            case 'k':
                return ere_fail(e, "named backreferences (\\k<...>) are not supported");
            default:
                if (x >= '1' && x <= '9') {
                    ere_put(e, p + i, 2); /* backreference: a glibc extension */
                } else if ((x >= 'a' && x <= 'z') || (x >= 'A' && x <= 'Z') || x == '0') {
                    return ere_fail(e, "escape \\%c is not supported by POSIX ERE", x);
                } else {
                    ere_literal(e, (unsigned char)x);
                }
            }
            i += 2;
            continue;
        }
        if (c == '[') {
            if (ere_class(e, &i) < 0)
                return -1;
            continue;
        }
        if (c == '(' && p[i + 1] == '?') {
            char x = p[i + 2];
            if (x == ':') {
                ere_puts(e, "(");
                i += 3;
            } else if (x == '=' || x == '!' || (x == '<' && (p[i + 3] == '=' || p[i + 3] == '!'))) {
                return ere_fail(e, "lookaround (?%c...) at offset %zu is not supported by POSIX ERE",
                                x == '<' ? p[i + 3] : x, i);
            } else if (x == '<' || (x == 'P' && p[i + 3] == '<')) {
                const char *gt = strchr(p + i, '>');
                if (!gt)
                    return ere_fail(e, "unterminated group name at offset %zu", i);
                ere_puts(e, "(");
                i = (size_t)(gt + 1 - p);
            } else {
                return ere_fail(e, "(?%c at offset %zu is not supported (only a leading (?i) flag)", x ? x : ' ', i);
            }
            continue;
        }
        if (c == '*' || c == '+' || c == '?') {
            ere_put(e, &c, 1);
            i++;
            skip_lazy(p, &i);
            continue;
        }
        if (c == '{') {
            size_t q = quantifier_len(p + i);
            if (q) {
                ere_put(e, p + i, q);
                i += q;
                skip_lazy(p, &i);
            } else {
                ere_puts(e, "\\{");
                i++;
            }
            continue;
        }
        if (c == '}') {
            ere_puts(e, "\\}");
            i++;
            continue;
        }
        ere_put(e, &c, 1);
        i++;
    }
    return e->rc ? -1 : 0;
}

int co_regex_compile(regex_t *re, const char *pattern, int cflags, char *err, size_t errn)
{
    int rc = 0, icase = 0;
    co_buf o;
    co_buf_init(&o, (size_t)1 << 20);
    ere e = {.pat = pattern ? pattern : "", .o = &o, .err = err, .errn = errn};
    if (errn)
        err[0] = '\0';
    if (ere_translate(&e, &icase) < 0 || e.rc) {
        rc = e.rc ? e.rc : CO_EINVAL;
        if (errn && !err[0])
            snprintf(err, errn, "%s", co_error_last());
        goto done;
    }
    int r = regcomp(re, o.p ? o.p : "", REG_EXTENDED | cflags | (icase ? REG_ICASE : 0));
    if (r) {
        if (errn)
            regerror(r, re, err, errn);
        rc = r == REG_ESPACE ? CO_ENOMEM : CO_EINVAL;
    }
done:
    co_buf_free(&o);
    return rc;
}

/* ---- compiled schema ---------------------------------------------------------- */

enum {
    T_NULL = 1 << 0,
    T_BOOLEAN = 1 << 1,
    T_OBJECT = 1 << 2,
    T_ARRAY = 1 << 3,
    T_NUMBER = 1 << 4,
    T_STRING = 1 << 5,
    T_INTEGER = 1 << 6,
};

static const char *const type_names[] = {"null", "boolean", "object", "array", "number", "string", "integer", NULL};

typedef struct node node;

typedef struct prop {
    const char *name; /* borrowed from the schema's copy of the document */
    node *schema;
} prop;

struct node {
    const json_t *src;
    char *loc;           /* schema pointer ("" = root) */
    int boolean;         /* -1: an object schema; 0: false; 1: true */
    unsigned types;      /* 0 = no type keyword */
    prop *props;         /* sorted by name */
    size_t n_props;
    const json_t *required;
    node *addl;          /* additionalProperties */
    const json_t *enum_vals;
    const json_t *const_val;
    node *items;
    node **prefix;
    size_t n_prefix;
    long long min_items, max_items, min_len, max_len, min_props, max_props; /* -1 = none */
    int unique;
    const json_t *minimum, *maximum, *xmin, *xmax, *multiple_of;
    regex_t pattern;
    int has_pattern;
    const char *pattern_src;
    node **all_of, **any_of, **one_of;
    size_t n_all, n_any, n_one;
    node *not_;
    const char *ref;
    node *ref_target;
    int mark; /* cycle detection: 0 unseen, 1 on the path, 2 done */
};

struct co_jsonschema {
    json_t *doc;
    node **nodes;
    size_t n_nodes, cap_nodes;
    node *root;
};

static void node_free(node *n)
{
    if (!n)
        return;
    if (n->has_pattern)
        regfree(&n->pattern);
    free(n->loc);
    free(n->props);
    free(n->prefix);
    free(n->all_of);
    free(n->any_of);
    free(n->one_of);
    free(n);
}

void co_jsonschema_free(co_jsonschema *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_nodes; i++)
        node_free(s->nodes[i]);
    free(s->nodes);
    json_decref(s->doc);
    free(s);
}

typedef struct cctx {
    co_jsonschema *s;
    const char *where;
    co_buf loc;
    int depth;
} cctx;

static int cerr(cctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int cerr(cctx *c, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return co_error_set(CO_EINVAL, "%s%sschema %s: %s", c->where ? c->where : "", c->where ? ": " : "",
                        c->loc.len ? c->loc.p : "(root)", msg);
}

static int cpush(cctx *c, const char *key)
{
    if (ptr_push(&c->loc, key))
        return co_error_set(CO_ENOMEM, "out of memory compiling a schema");
    return 0;
}

static const char *const keywords[] = {
    "type", "properties", "required", "additionalProperties", "enum", "const", "items",
    "prefixItems", "minItems", "maxItems", "uniqueItems", "minProperties", "maxProperties",
    "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "multipleOf", "pattern", "anyOf", "allOf", "oneOf", "not", "$ref", "$defs", "definitions",
    "title", "description", "examples", "default", "$schema", "$id", "$comment", "deprecated",
    "readOnly", "writeOnly", "format", "contentEncoding", "contentMediaType", "contentSchema",
    NULL,
};

/* Annotations: accepted, no effect on validation. */
static const char *const annotations[] = {
    "title", "description", "examples", "default", "$schema", "$id", "$comment", "deprecated",
    "readOnly", "writeOnly", "format", "contentEncoding", "contentMediaType", "contentSchema",
    NULL,
};

/* Keywords of 2020-12 (and earlier drafts) we do not implement: named as
 * unsupported, never "corrected" to a similar-looking supported one. */
static const char *const known_unsupported[] = {
    "if", "then", "else", "patternProperties", "propertyNames", "dependentRequired", "dependentSchemas",
    "dependencies", "contains", "minContains", "maxContains", "unevaluatedItems", "unevaluatedProperties",
    "additionalItems", "$anchor", "$dynamicRef", "$dynamicAnchor", "$recursiveRef", "$recursiveAnchor",
    "$vocabulary", NULL,
};

static int is_annotation(const char *k)
{
    for (size_t i = 0; annotations[i]; i++)
        if (strcmp(annotations[i], k) == 0)
            return 1;
    return 0;
}

static node *compile_node(cctx *c, const json_t *sch, int *rc);

/* A compiled subschema at loc + "/" + key (and + "/" + sub when sub != NULL). */
static node *compile_at(cctx *c, const json_t *sch, const char *key, const char *sub, int *rc)
{
    size_t mark = c->loc.len;
    node *n = NULL;
    if ((*rc = cpush(c, key)) == 0 && (!sub || (*rc = cpush(c, sub)) == 0))
        n = compile_node(c, sch, rc);
    buf_truncate(&c->loc, mark);
    return n;
}

/* A non-empty array of schemas (allOf, anyOf, oneOf, prefixItems). */
static int compile_list(cctx *c, const char *key, const json_t *v, node ***out, size_t *n_out)
{
    if (!json_is_array(v) || json_array_size(v) == 0)
        return cerr(c, "%s must be a non-empty array of schemas, got %s", key,
                    json_is_array(v) ? "an empty array" : co_json_type_name(v));
    size_t n = json_array_size(v);
    *out = calloc(n, sizeof **out);
    if (!*out)
        return co_error_set(CO_ENOMEM, "out of memory compiling a schema");
    *n_out = n;
    for (size_t i = 0; i < n; i++) {
        char idx[24];
        int rc = 0;
        snprintf(idx, sizeof idx, "%zu", i);
        (*out)[i] = compile_at(c, json_array_get(v, i), idx, NULL, &rc);
        if (rc)
            return rc;
    }
    return 0;
}

static int nonneg_int(cctx *c, const char *key, const json_t *v, long long *out)
{
    double d;
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (long long)json_integer_value(v);
        return 0;
    }
    if (json_is_real(v) && (d = json_real_value(v)) >= 0 && d == floor(d) && d < 9e18) {
        *out = (long long)d;
        return 0;
    }
    return cerr(c, "%s must be a non-negative integer, got %s", key,
                json_is_number(v) ? "a negative or fractional number" : co_json_type_name(v));
}

static int cmp_prop(const void *a, const void *b)
{
    return strcmp(((const prop *)a)->name, ((const prop *)b)->name);
}

static int compile_type(cctx *c, const json_t *v, unsigned *types)
{
    const json_t *one = v;
    size_t n = 1;
    if (json_is_array(v)) {
        n = json_array_size(v);
        if (n == 0)
            return cerr(c, "type must be a type name or a non-empty array of them");
    } else if (!json_is_string(v)) {
        return cerr(c, "type must be a type name or an array of them, got %s", co_json_type_name(v));
    }
    for (size_t i = 0; i < n; i++) {
        if (json_is_array(v))
            one = json_array_get(v, i);
        if (!json_is_string(one))
            return cerr(c, "type names must be strings, got %s", co_json_type_name(one));
        const char *name = json_string_value(one);
        size_t t = 0;
        while (type_names[t] && strcmp(type_names[t], name) != 0)
            t++;
        if (!type_names[t]) {
            const char *sug = co_suggest(name, type_names);
            if (sug)
                return cerr(c, "unknown type '%s' (did you mean '%s'?)", name, sug);
            return cerr(c, "unknown type '%s' (null, boolean, object, array, number, string, integer)", name);
        }
        *types |= 1u << t;
    }
    return 0;
}

static int compile_keyword(cctx *c, node *n, const char *k, const json_t *v)
{
    int rc = 0;
    if (strcmp(k, "type") == 0)
        return compile_type(c, v, &n->types);
    if (strcmp(k, "properties") == 0) {
        if (!json_is_object(v))
            return cerr(c, "properties must be an object, got %s", co_json_type_name(v));
        size_t cnt = json_object_size(v), i = 0;
        n->props = calloc(cnt ? cnt : 1, sizeof *n->props);
        if (!n->props)
            return co_error_set(CO_ENOMEM, "out of memory compiling a schema");
        const char *pk;
        json_t *pv;
        json_object_foreach((json_t *)v, pk, pv) {
            n->props[i].name = pk;
            n->props[i].schema = compile_at(c, pv, pk, NULL, &rc);
            if (rc)
                return rc;
            i++;
        }
        n->n_props = i;
        qsort(n->props, n->n_props, sizeof *n->props, cmp_prop);
        return 0;
    }
    if (strcmp(k, "required") == 0) {
        if (!json_is_array(v))
            return cerr(c, "required must be an array of property names, got %s", co_json_type_name(v));
        for (size_t i = 0; i < json_array_size(v); i++)
            if (!json_is_string(json_array_get(v, i)))
                return cerr(c, "required[%zu] must be a string, got %s", i,
                            co_json_type_name(json_array_get(v, i)));
        n->required = v;
        return 0;
    }
    if (strcmp(k, "additionalProperties") == 0) {
        n->addl = compile_node(c, v, &rc);
        return rc;
    }
    if (strcmp(k, "enum") == 0) {
        if (!json_is_array(v) || json_array_size(v) == 0)
            return cerr(c, "enum must be a non-empty array, got %s",
                        json_is_array(v) ? "an empty array" : co_json_type_name(v));
        n->enum_vals = v;
        return 0;
    }
    if (strcmp(k, "const") == 0) {
        n->const_val = v;
        return 0;
    }
    if (strcmp(k, "items") == 0) {
        if (json_is_array(v))
            return cerr(c, "items as an array is draft 2019-09 and earlier; in 2020-12 use prefixItems "
                           "(and items for the rest)");
        n->items = compile_node(c, v, &rc);
        return rc;
    }
    if (strcmp(k, "prefixItems") == 0)
        return compile_list(c, k, v, &n->prefix, &n->n_prefix);
    if (strcmp(k, "allOf") == 0)
        return compile_list(c, k, v, &n->all_of, &n->n_all);
    if (strcmp(k, "anyOf") == 0)
        return compile_list(c, k, v, &n->any_of, &n->n_any);
    if (strcmp(k, "oneOf") == 0)
        return compile_list(c, k, v, &n->one_of, &n->n_one);
    if (strcmp(k, "not") == 0) {
        n->not_ = compile_node(c, v, &rc);
        return rc;
    }
    if (strcmp(k, "minItems") == 0) return nonneg_int(c, k, v, &n->min_items);
    if (strcmp(k, "maxItems") == 0) return nonneg_int(c, k, v, &n->max_items);
    if (strcmp(k, "minLength") == 0) return nonneg_int(c, k, v, &n->min_len);
    if (strcmp(k, "maxLength") == 0) return nonneg_int(c, k, v, &n->max_len);
    if (strcmp(k, "minProperties") == 0) return nonneg_int(c, k, v, &n->min_props);
    if (strcmp(k, "maxProperties") == 0) return nonneg_int(c, k, v, &n->max_props);
    if (strcmp(k, "uniqueItems") == 0) {
        if (!json_is_boolean(v))
            return cerr(c, "uniqueItems must be a boolean, got %s", co_json_type_name(v));
        n->unique = json_is_true(v);
        return 0;
    }
    if (strcmp(k, "minimum") == 0 || strcmp(k, "maximum") == 0 || strcmp(k, "exclusiveMinimum") == 0 ||
        strcmp(k, "exclusiveMaximum") == 0 || strcmp(k, "multipleOf") == 0) {
        if (json_is_boolean(v) && k[0] == 'e')
            return cerr(c, "a boolean %s is draft-04; in 2020-12 it is the bound itself "
                           "(e.g. \"exclusiveMinimum\": 0)", k);
        if (!json_is_number(v))
            return cerr(c, "%s must be a number, got %s", k, co_json_type_name(v));
        if (k[0] == 'm' && k[1] == 'u') {
            if (json_number_value(v) <= 0)
                return cerr(c, "multipleOf must be greater than 0");
            n->multiple_of = v;
        } else if (strcmp(k, "minimum") == 0) {
            n->minimum = v;
        } else if (strcmp(k, "maximum") == 0) {
            n->maximum = v;
        } else if (strcmp(k, "exclusiveMinimum") == 0) {
            n->xmin = v;
        } else {
            n->xmax = v;
        }
        return 0;
    }
    if (strcmp(k, "pattern") == 0) {
        char why[256];
        if (!json_is_string(v))
            return cerr(c, "pattern must be a string, got %s", co_json_type_name(v));
        int r = co_regex_compile(&n->pattern, json_string_value(v), REG_NOSUB, why, sizeof why);
        if (r == CO_ENOMEM)
            return co_error_set(CO_ENOMEM, "out of memory compiling pattern");
        if (r)
            return cerr(c, "pattern \"%s\" does not compile: %s", json_string_value(v), why);
        n->has_pattern = 1;
        n->pattern_src = json_string_value(v);
        return 0;
    }
    if (strcmp(k, "$ref") == 0) {
        if (!json_is_string(v))
            return cerr(c, "$ref must be a string, got %s", co_json_type_name(v));
        n->ref = json_string_value(v);
        return 0;
    }
    if (strcmp(k, "$defs") == 0 || strcmp(k, "definitions") == 0) {
        if (!json_is_object(v))
            return cerr(c, "%s must be an object of schemas, got %s", k, co_json_type_name(v));
        const char *dk;
        json_t *dv;
        json_object_foreach((json_t *)v, dk, dv) {
            compile_at(c, dv, dk, NULL, &rc);
            if (rc)
                return rc;
        }
        return 0;
    }
    if (is_annotation(k))
        return 0;
    int known = 0;
    for (size_t i = 0; known_unsupported[i] && !known; i++)
        known = strcmp(known_unsupported[i], k) == 0;
    const char *sug = known ? NULL : co_suggest(k, keywords);
    if (sug)
        return cerr(c, "unsupported keyword '%s' (did you mean '%s'?)", k, sug);
    return cerr(c, "unsupported keyword '%s' (cutover validates a draft 2020-12 subset: type, properties, "
                   "required, additionalProperties, enum, const, items, prefixItems, min/maxItems, uniqueItems, "
                   "min/maxProperties, min/maxLength, minimum, maximum, exclusiveMinimum/Maximum, multipleOf, "
                   "pattern, anyOf, allOf, oneOf, not, $ref, $defs)", k);
}

static node *compile_node(cctx *c, const json_t *sch, int *rc)
{
    *rc = 0;
    if (c->depth >= CO_JSONSCHEMA_MAX_SCHEMA_DEPTH) {
        *rc = cerr(c, "the schema nests deeper than %d levels", CO_JSONSCHEMA_MAX_SCHEMA_DEPTH);
        return NULL;
    }
    if (!json_is_object(sch) && !json_is_boolean(sch)) {
        *rc = cerr(c, "a schema must be an object or a boolean, got %s", co_json_type_name(sch));
        return NULL;
    }
    co_jsonschema *s = c->s;
    if (s->n_nodes == s->cap_nodes) {
        size_t cap = s->cap_nodes ? s->cap_nodes * 2 : 16;
        node **v = realloc(s->nodes, cap * sizeof *v);
        if (!v) {
            *rc = co_error_set(CO_ENOMEM, "out of memory compiling a schema");
            return NULL;
        }
        s->nodes = v;
        s->cap_nodes = cap;
    }
    node *n = calloc(1, sizeof *n);
    if (!n || !(n->loc = strdup(c->loc.len ? c->loc.p : ""))) {
        free(n);
        *rc = co_error_set(CO_ENOMEM, "out of memory compiling a schema");
        return NULL;
    }
    s->nodes[s->n_nodes++] = n;
    n->src = sch;
    n->min_items = n->max_items = n->min_len = n->max_len = n->min_props = n->max_props = -1;
    if (json_is_boolean(sch)) {
        n->boolean = json_is_true(sch);
        return n;
    }
    n->boolean = -1;
    c->depth++;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)sch, k, v) {
        size_t mark = c->loc.len;
        if ((*rc = cpush(c, k)) == 0)
            *rc = compile_keyword(c, n, k, v);
        buf_truncate(&c->loc, mark);
        if (*rc)
            break;
    }
    c->depth--;
    return *rc ? NULL : n;
}

/* The value a local "#..." reference names inside doc, or NULL. */
static const json_t *resolve_pointer(const json_t *doc, const char *ref, char *why, size_t whyn)
{
    if (ref[0] != '#') {
        snprintf(why, whyn, "only local references (\"#\", \"#/$defs/name\") are supported");
        return NULL;
    }
    const char *p = ref + 1;
    if (*p == '\0')
        return doc;
    if (*p != '/') {
        snprintf(why, whyn, "anchors (\"#name\") are not supported; use a JSON pointer such as \"#/$defs/name\"");
        return NULL;
    }
    /* percent-decode the fragment, then walk the pointer */
    size_t n = strlen(p);
    char *dec = malloc(n + 1), *seg = malloc(n + 1);
    const json_t *cur = doc;
    if (!dec || !seg) {
        snprintf(why, whyn, "out of memory");
        cur = NULL;
        goto done;
    }
    size_t dn = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '%' && is_hex(p[i + 1]) && is_hex(p[i + 2])) {
            dec[dn++] = (char)(hex_val(p[i + 1]) * 16 + hex_val(p[i + 2]));
            i += 2;
        } else {
            dec[dn++] = p[i];
        }
    }
    dec[dn] = '\0';
    for (const char *q = dec; cur && *q == '/';) {
        q++;
        size_t sn = 0;
        for (; *q && *q != '/'; q++) {
            if (*q == '~' && q[1] == '0') {
                seg[sn++] = '~';
                q++;
            } else if (*q == '~' && q[1] == '1') {
                seg[sn++] = '/';
                q++;
            } else {
                seg[sn++] = *q;
            }
        }
        seg[sn] = '\0';
        if (json_is_object(cur)) {
            cur = json_object_get(cur, seg);
        } else if (json_is_array(cur)) {
            char *end;
            unsigned long long idx = strtoull(seg, &end, 10);
            if (!sn || *end || (sn > 1 && seg[0] == '0') || seg[0] == '-' || seg[0] == '+')
                cur = NULL;
            else
                cur = json_array_get(cur, (size_t)idx);
        } else {
            cur = NULL;
        }
        if (!cur)
            snprintf(why, whyn, "nothing at '%s'", seg);
    }
done:
    free(dec);
    free(seg);
    return cur;
}

static int resolve_refs(cctx *c)
{
    co_jsonschema *s = c->s;
    for (size_t i = 0; i < s->n_nodes; i++) {
        node *n = s->nodes[i];
        if (!n->ref)
            continue;
        char why[160] = "";
        const json_t *t = resolve_pointer(s->doc, n->ref, why, sizeof why);
        buf_truncate(&c->loc, 0);
        co_buf_puts(&c->loc, n->loc);
        co_buf_puts(&c->loc, "/$ref");
        if (!t)
            return cerr(c, "cannot resolve \"%s\": %s", n->ref, why);
        for (size_t j = 0; j < s->n_nodes && !n->ref_target; j++)
            if (s->nodes[j]->src == t)
                n->ref_target = s->nodes[j];
        if (!n->ref_target)
            return cerr(c, "\"%s\" does not point to a schema (put shared schemas under $defs)", n->ref);
    }
    return 0;
}

/* A cycle of schema applications at the same instance location. */
static int find_cycle(cctx *c, node *n, int depth)
{
    if (n->mark == 2)
        return 0;
    if (n->mark == 1) {
        buf_truncate(&c->loc, 0);
        co_buf_puts(&c->loc, n->loc);
        return cerr(c, "$ref cycle that never descends into the instance (it would recurse forever)");
    }
    if (depth > 10000) {
        buf_truncate(&c->loc, 0);
        co_buf_puts(&c->loc, n->loc);
        return cerr(c, "too long a chain of $ref");
    }
    n->mark = 1;
    int rc = 0;
    if (n->ref_target)
        rc = find_cycle(c, n->ref_target, depth + 1);
    for (size_t i = 0; !rc && i < n->n_all; i++)
        rc = find_cycle(c, n->all_of[i], depth + 1);
    for (size_t i = 0; !rc && i < n->n_any; i++)
        rc = find_cycle(c, n->any_of[i], depth + 1);
    for (size_t i = 0; !rc && i < n->n_one; i++)
        rc = find_cycle(c, n->one_of[i], depth + 1);
    if (!rc && n->not_)
        rc = find_cycle(c, n->not_, depth + 1);
    n->mark = 2;
    return rc;
}

int co_jsonschema_compile(co_jsonschema **out, const json_t *schema, const char *where)
{
    int rc = 0;
    cctx c = {.where = where};
    co_buf_init(&c.loc, CO_BUF_UNLIMITED);
    *out = NULL;
    if (!schema)
        return co_error_set(CO_EINVAL, "%s%sno schema given", where ? where : "", where ? ": " : "");
    c.s = calloc(1, sizeof *c.s);
    if (!c.s)
        return co_error_set(CO_ENOMEM, "out of memory compiling a schema");
    c.s->doc = json_deep_copy(schema);
    if (!c.s->doc) {
        rc = co_error_set(CO_ENOMEM, "out of memory compiling a schema");
        goto done;
    }
    c.s->root = compile_node(&c, c.s->doc, &rc);
    if (rc)
        goto done;
    if ((rc = resolve_refs(&c)))
        goto done;
    for (size_t i = 0; i < c.s->n_nodes && !rc; i++)
        rc = find_cycle(&c, c.s->nodes[i], 0);
    if (rc)
        goto done;
    *out = c.s;
    c.s = NULL;
done:
    co_jsonschema_free(c.s);
    co_buf_free(&c.loc);
    return rc;
}

/* ---- validation ---------------------------------------------------------------- */

/* State shared by a validation and its quiet sub-validations. */
typedef struct vshared {
    co_buf path;     /* the instance pointer being validated */
    size_t steps;    /* schema applications and item comparisons so far */
    int exhausted;   /* CO_JSONSCHEMA_MAX_STEPS reached */
    int oom;
} vshared;

typedef struct vctx {
    co_jsonschema_errors *errs; /* may be NULL */
    size_t stop_after;          /* errors after which validation stops */
    size_t nerr;
    co_buf *path;
    vshared *sh;
    int depth;
    int detail; /* failing anyOf/oneOf describe each branch (top level only) */
} vctx;

static int stopping(const vctx *v) { return v->nerr >= v->stop_after || v->sh->oom || v->sh->exhausted; }

/* Counts work; 0 once the step budget is spent. */
static int step(vctx *v)
{
    if (++v->sh->steps > CO_JSONSCHEMA_MAX_STEPS)
        v->sh->exhausted = 1;
    return !v->sh->exhausted;
}

static void verr(vctx *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void verr(vctx *v, const char *fmt, ...)
{
    if (stopping(v))
        return;
    v->nerr++;
    if (!v->errs)
        return;
    if (v->errs->n >= CO_JSONSCHEMA_MAX_ERRORS) {
        v->errs->more = 1;
        return;
    }
    co_jsonschema_error *e = &v->errs->v[v->errs->n];
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&e->message, fmt, ap) < 0)
        e->message = NULL;
    va_end(ap);
    e->pointer = strdup(v->path->len ? v->path->p : "");
    if (!e->message || !e->pointer) {
        free(e->message);
        free(e->pointer);
        e->message = e->pointer = NULL;
        v->sh->oom = 1;
        return;
    }
    v->errs->n++;
}

static int validate(vctx *v, const node *n, const json_t *inst);

static unsigned inst_types(const json_t *x)
{
    switch (json_typeof(x)) {
    case JSON_NULL: return T_NULL;
    case JSON_TRUE:
    case JSON_FALSE: return T_BOOLEAN;
    case JSON_OBJECT: return T_OBJECT;
    case JSON_ARRAY: return T_ARRAY;
    case JSON_STRING: return T_STRING;
    case JSON_INTEGER: return T_NUMBER | T_INTEGER;
    case JSON_REAL: {
        double d = json_real_value(x);
        return T_NUMBER | (isfinite(d) && d == floor(d) ? T_INTEGER : 0);
    }
    }
    return 0;
}

static void put_types(co_buf *b, unsigned types)
{
    int k = 0, total = __builtin_popcount(types);
    for (int t = 0; type_names[t]; t++) {
        if (!(types & (1u << t)))
            continue;
        if (k)
            co_buf_puts(b, k == total - 1 ? " or " : ", ");
        co_buf_puts(b, type_names[t]);
        k++;
    }
}

/* Runs n on inst in a quiet sub-validation; the first error (if any) is
 * described into why. 1 when valid. */
static int probe(vctx *v, const node *n, const json_t *inst, co_buf *why)
{
    co_jsonschema_errors e = {0};
    vctx sub = {.errs = why ? &e : NULL, .stop_after = 1, .path = v->path, .sh = v->sh, .depth = v->depth};
    size_t mark = v->path->len;
    int ok = validate(&sub, n, inst);
    buf_truncate(v->path, mark);
    if (!ok && why && e.n) {
        const char *here = mark ? v->path->p : "";
        if (strcmp(e.v[0].pointer, here) != 0)
            co_buf_printf(why, "at %s: ", e.v[0].pointer[0] ? e.v[0].pointer : "(root)");
        co_buf_puts(why, e.v[0].message);
    }
    co_jsonschema_errors_free(&e);
    return ok;
}

static void check_combinators(vctx *v, const node *n, const json_t *inst)
{
    for (size_t i = 0; i < n->n_all && !stopping(v); i++)
        validate(v, n->all_of[i], inst);
    if (stopping(v))
        return;
    if (n->n_any) {
        int any = 0;
        for (size_t i = 0; i < n->n_any && !any && !v->sh->oom; i++)
            any = probe(v, n->any_of[i], inst, NULL);
        if (!any && !v->detail) {
            verr(v, "matches none of the %zu anyOf schemas", n->n_any);
        } else if (!any && !v->sh->oom) {
            co_buf why;
            co_buf_init(&why, 4096);
            for (size_t i = 0; i < n->n_any && i < 4; i++) {
                co_buf_printf(&why, "%s[%zu] ", i ? "; " : "", i);
                probe(v, n->any_of[i], inst, &why);
            }
            if (n->n_any > 4)
                co_buf_puts(&why, "; ...");
            verr(v, "matches none of the %zu anyOf schemas: %s", n->n_any, why.p ? why.p : "");
            co_buf_free(&why);
        }
    }
    if (stopping(v))
        return;
    if (n->n_one) {
        size_t first = 0, count = 0, second = 0;
        for (size_t i = 0; i < n->n_one && count < 2 && !v->sh->oom; i++) {
            if (probe(v, n->one_of[i], inst, NULL)) {
                if (count++ == 0)
                    first = i;
                else
                    second = i;
            }
        }
        if (count == 0 && !v->detail) {
            verr(v, "matches none of the %zu oneOf schemas", n->n_one);
        } else if (count == 0 && !v->sh->oom) {
            co_buf why;
            co_buf_init(&why, 4096);
            for (size_t i = 0; i < n->n_one && i < 4; i++) {
                co_buf_printf(&why, "%s[%zu] ", i ? "; " : "", i);
                probe(v, n->one_of[i], inst, &why);
            }
            if (n->n_one > 4)
                co_buf_puts(&why, "; ...");
            verr(v, "matches none of the %zu oneOf schemas: %s", n->n_one, why.p ? why.p : "");
            co_buf_free(&why);
        } else if (count > 1) {
            verr(v, "matches oneOf schemas %zu and %zu; exactly one must match", first, second);
        }
    }
    if (stopping(v))
        return;
    if (n->not_ && probe(v, n->not_, inst, NULL) && !v->sh->oom)
        verr(v, "must not match the schema in 'not'");
}

static void check_number(vctx *v, const node *n, const json_t *inst)
{
    char a[40], b[40];
    if (n->minimum && num_cmp(inst, n->minimum) < 0)
        verr(v, "%s is less than minimum %s", fmt_num(inst, a, sizeof a), fmt_num(n->minimum, b, sizeof b));
    if (n->maximum && num_cmp(inst, n->maximum) > 0)
        verr(v, "%s is greater than maximum %s", fmt_num(inst, a, sizeof a), fmt_num(n->maximum, b, sizeof b));
    if (n->xmin && num_cmp(inst, n->xmin) <= 0)
        verr(v, "%s is not greater than exclusiveMinimum %s", fmt_num(inst, a, sizeof a),
             fmt_num(n->xmin, b, sizeof b));
    if (n->xmax && num_cmp(inst, n->xmax) >= 0)
        verr(v, "%s is not less than exclusiveMaximum %s", fmt_num(inst, a, sizeof a),
             fmt_num(n->xmax, b, sizeof b));
    if (n->multiple_of) {
        int ok;
        if (json_is_integer(inst) && json_is_integer(n->multiple_of)) {
            ok = json_integer_value(inst) % json_integer_value(n->multiple_of) == 0;
        } else {
            double q = json_number_value(inst) / json_number_value(n->multiple_of);
            double tol = fmax(1e-9, fabs(q) * 8 * DBL_EPSILON);
            ok = isfinite(q) && fabs(q - nearbyint(q)) <= tol;
        }
        if (!ok)
            verr(v, "%s is not a multiple of %s", fmt_num(inst, a, sizeof a), fmt_num(n->multiple_of, b, sizeof b));
    }
}

static void check_string(vctx *v, const node *n, const json_t *inst)
{
    const char *s = json_string_value(inst);
    size_t bytes = json_string_length(inst);
    if (n->min_len >= 0 || n->max_len >= 0) {
        size_t cps = utf8_len(s, bytes);
        if (n->min_len >= 0 && cps < (size_t)n->min_len)
            verr(v, "string is %zu characters, fewer than minLength %lld", cps, n->min_len);
        if (n->max_len >= 0 && cps > (size_t)n->max_len)
            verr(v, "string is %zu characters, more than maxLength %lld", cps, n->max_len);
    }
    if (n->has_pattern && bytes > INT_MAX) {
        verr(v, "string of %zu bytes is too long to match a pattern", bytes);
    } else if (n->has_pattern) {
        regmatch_t m[1] = {{.rm_so = 0, .rm_eo = (regoff_t)bytes}};
        if (regexec(&n->pattern, s, 1, m, REG_STARTEND) != 0) {
            co_buf b;
            co_buf_init(&b, 4096);
            put_json_short(&b, inst, 60);
            verr(v, "%s does not match pattern \"%s\"", b.p ? b.p : "?", n->pattern_src);
            co_buf_free(&b);
        }
    }
}

static void check_array(vctx *v, const node *n, const json_t *inst)
{
    size_t cnt = json_array_size(inst);
    if (n->min_items >= 0 && cnt < (size_t)n->min_items)
        verr(v, "array has %zu items, fewer than minItems %lld", cnt, n->min_items);
    if (n->max_items >= 0 && cnt > (size_t)n->max_items)
        verr(v, "array has %zu items, more than maxItems %lld", cnt, n->max_items);
    if (n->unique) {
        for (size_t i = 0; i < cnt && !stopping(v); i++)
            for (size_t j = i + 1; j < cnt && step(v); j++)
                if (co_json_equal(json_array_get(inst, i), json_array_get(inst, j))) {
                    verr(v, "items %zu and %zu are equal (uniqueItems)", i, j);
                    break;
                }
    }
    for (size_t i = 0; i < cnt && !stopping(v); i++) {
        const node *sub = i < n->n_prefix ? n->prefix[i] : n->items;
        if (!sub)
            continue;
        size_t mark = v->path->len;
        if (co_buf_printf(v->path, "/%zu", i)) {
            v->sh->oom = 1;
            return;
        }
        if (sub->boolean == 0)
            verr(v, "no item allowed at index %zu (%s)", i, i < n->n_prefix ? "prefixItems" : "items is false");
        else
            validate(v, sub, json_array_get(inst, i));
        buf_truncate(v->path, mark);
    }
}

static const node *find_prop(const node *n, const char *key)
{
    size_t lo = 0, hi = n->n_props;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(key, n->props[mid].name);
        if (c == 0)
            return n->props[mid].schema;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static void check_object(vctx *v, const node *n, const json_t *inst)
{
    size_t cnt = json_object_size(inst);
    if (n->min_props >= 0 && cnt < (size_t)n->min_props)
        verr(v, "object has %zu properties, fewer than minProperties %lld", cnt, n->min_props);
    if (n->max_props >= 0 && cnt > (size_t)n->max_props)
        verr(v, "object has %zu properties, more than maxProperties %lld", cnt, n->max_props);
    for (size_t i = 0; n->required && i < json_array_size(n->required) && !stopping(v); i++) {
        const char *r = json_string_value(json_array_get(n->required, i));
        if (!json_object_get(inst, r))
            verr(v, "missing required property '%s'", r);
    }
    const char *k;
    json_t *val;
    json_object_foreach((json_t *)inst, k, val) {
        if (stopping(v))
            return;
        const node *sub = find_prop(n, k);
        if (!sub && !n->addl)
            continue;
        if (!sub && n->addl->boolean == 0) {
            verr(v, "property '%s' is not allowed (additionalProperties is false)", k);
            continue;
        }
        size_t mark = v->path->len;
        if (ptr_push(v->path, k)) {
            v->sh->oom = 1;
            return;
        }
        validate(v, sub ? sub : n->addl, val);
        buf_truncate(v->path, mark);
    }
}

static int validate(vctx *v, const node *n, const json_t *inst)
{
    size_t before = v->nerr;
    if (stopping(v))
        return 0;
    if (!step(v))
        return 0;
    if (v->depth >= CO_JSONSCHEMA_MAX_DEPTH) {
        verr(v, "nesting deeper than %d schema levels (recursive $ref?)", CO_JSONSCHEMA_MAX_DEPTH);
        return 0;
    }
    if (n->boolean == 0) {
        verr(v, "no value is allowed here (the schema is false)");
        return 0;
    }
    if (n->boolean == 1)
        return 1;
    v->depth++;
    unsigned it = inst_types(inst);
    if (n->types && !(n->types & it)) {
        co_buf b;
        co_buf_init(&b, 1024);
        put_types(&b, n->types);
        verr(v, "expected %s, got %s", b.p ? b.p : "?", co_json_type_name(inst));
        co_buf_free(&b);
    }
    if (n->enum_vals && !stopping(v)) {
        size_t i, cnt = json_array_size(n->enum_vals);
        for (i = 0; i < cnt && !co_json_equal(inst, json_array_get(n->enum_vals, i)); i++)
            ;
        if (i == cnt) {
            co_buf b;
            co_buf_init(&b, 4096);
            put_json_short(&b, inst, 40);
            co_buf_puts(&b, " is not one of ");
            put_json_short(&b, n->enum_vals, 120);
            verr(v, "%s", b.p ? b.p : "value is not in enum");
            co_buf_free(&b);
        }
    }
    if (n->const_val && !stopping(v) && !co_json_equal(inst, n->const_val)) {
        co_buf b;
        co_buf_init(&b, 4096);
        co_buf_puts(&b, "must equal ");
        put_json_short(&b, n->const_val, 120);
        verr(v, "%s", b.p ? b.p : "must equal const");
        co_buf_free(&b);
    }
    if (!stopping(v)) {
        if (it & T_NUMBER)
            check_number(v, n, inst);
        else if (it & T_STRING)
            check_string(v, n, inst);
        else if (it & T_ARRAY)
            check_array(v, n, inst);
        else if (it & T_OBJECT)
            check_object(v, n, inst);
    }
    if (n->ref_target && !stopping(v))
        validate(v, n->ref_target, inst);
    if (!stopping(v))
        check_combinators(v, n, inst);
    v->depth--;
    return v->nerr == before && !v->sh->oom && !v->sh->exhausted;
}

int co_jsonschema_validate(const co_jsonschema *s, const json_t *instance, int *valid,
                           co_jsonschema_errors *errs)
{
    vshared sh = {0};
    co_buf_init(&sh.path, CO_BUF_UNLIMITED);
    vctx v = {.errs = errs, .stop_after = errs ? CO_JSONSCHEMA_MAX_ERRORS + 1 : 1, .path = &sh.path, .sh = &sh,
              .detail = 1};
    *valid = 0;
    if (!s || !instance)
        return co_error_set(CO_EINVAL, "no schema or no instance to validate");
    int ok = validate(&v, s->root, instance);
    if (sh.exhausted && !sh.oom) {
        ok = 0;
        buf_truncate(&sh.path, 0);
        v.stop_after = (size_t)-1;
        sh.exhausted = 0; /* so that verr records the reason */
        verr(&v, "validation gave up after %d steps (the schema branches too much for this instance)",
             CO_JSONSCHEMA_MAX_STEPS);
    }
    co_buf_free(&sh.path);
    if (sh.oom)
        return co_error_set(CO_ENOMEM, "out of memory validating against a schema");
    *valid = ok;
    return 0;
}

void co_jsonschema_errors_free(co_jsonschema_errors *errs)
{
    if (!errs)
        return;
    for (size_t i = 0; i < errs->n; i++) {
        free(errs->v[i].pointer);
        free(errs->v[i].message);
    }
    memset(errs, 0, sizeof *errs);
}

int co_jsonschema_errors_format(const co_jsonschema_errors *errs, co_buf *out)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < errs->n; i++)
        rc = co_buf_printf(out, "%s%s: %s", i ? "; " : "", errs->v[i].pointer[0] ? errs->v[i].pointer : "(root)",
                           errs->v[i].message);
    if (!rc && errs->more)
        rc = co_buf_puts(out, "; ...");
    return rc;
}
