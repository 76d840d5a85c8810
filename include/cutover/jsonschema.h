/* JSON Schema validation (draft 2020-12 subset) for the eval engine's
 * `json-schema` / `is-json` / `is-valid-openai-tools-call` assertions, plus
 * the JSON equality and the regex dialect the assertions share.
 *
 * Supported keywords
 *   type (a name or an array of names; "integer" accepts 1.0 as 2020-12 does),
 *   properties, required, additionalProperties (boolean or schema),
 *   enum, const, items (a schema: applies after prefixItems), prefixItems,
 *   minItems, maxItems, uniqueItems, minProperties, maxProperties,
 *   minLength, maxLength (in Unicode code points, not bytes),
 *   minimum, maximum, exclusiveMinimum, exclusiveMaximum (numbers, 2020-12
 *   style), multipleOf, pattern, anyOf, allOf, oneOf, not, boolean schemas
 *   (true / false), $defs (and the legacy `definitions`), and $ref.
 * Annotations (accepted and ignored): title, description, examples, default,
 *   $schema, $id, $comment, deprecated, readOnly, writeOnly, format (an
 *   annotation in 2020-12 unless the format-assertion vocabulary is on),
 *   contentEncoding, contentMediaType, contentSchema.
 * Anything else (if/then/else, patternProperties, dependentRequired,
 *   unevaluatedProperties, contains, $anchor, $dynamicRef, ...) is an error
 *   at compile time naming the keyword and its location, never silently
 *   ignored; so are draft-07-isms with another meaning in 2020-12 (items as
 *   an array, boolean exclusiveMinimum).
 *
 * $ref: local references only, resolved against the root document (a
 *   subschema's $id does not change the base): "#" and JSON pointers
 *   "#/$defs/name/..." (~0 ~1 escapes and %-encoding are decoded). The target
 *   must be a schema reached by compilation (in $defs, properties, items...).
 *   A cycle of $ref / allOf / anyOf / oneOf / not that never descends into
 *   the instance (it would recurse forever) is a compile error; recursion
 *   that does descend (trees, linked lists) is bounded at validation by
 *   CO_JSONSCHEMA_MAX_DEPTH nested schema applications (then the instance is
 *   reported invalid with "nesting deeper than ..."), and all work by
 *   CO_JSONSCHEMA_MAX_STEPS.
 *
 * Errors name the instance location as a JSON pointer. A failing anyOf /
 * oneOf at the top level lists the first error of each branch (up to 4);
 * nested inside another branch it is summarised ("matches none of the 2
 * anyOf schemas"), so that explaining a failure never costs more than
 * validating twice.
 *
 * pattern dialect: JSON Schema specifies ECMA-262 regular expressions; we
 *   compile POSIX extended regular expressions (regcomp REG_EXTENDED) after
 *   translating the common ECMA-isms (see co_regex_compile). Patterns are not
 *   anchored (like ECMA `test`): "a+" matches "xxaayy". Differences that
 *   remain: `.` also matches a newline; matching is byte-wise in the C locale,
 *   so `.` and {n} count bytes of a multi-byte UTF-8 character and non-ASCII
 *   characters inside [...] stand for their bytes; lookaround and \p{...}
 *   are rejected at compile time.
 *
 * Ownership: co_jsonschema_compile deep-copies the schema (the caller keeps
 * and may change its own json_t). A compiled schema is immutable: any number
 * of threads may validate with it at once (glibc's regexec serialises
 * concurrent matches of one pattern on an internal lock). Errors returned
 * by validation are owned by the co_jsonschema_errors the caller passed
 * (co_jsonschema_errors_free). */
#ifndef CUTOVER_JSONSCHEMA_H
#define CUTOVER_JSONSCHEMA_H

#include <jansson.h>
#include <regex.h>
#include <stddef.h>

#include "cutover/buf.h"

typedef struct co_jsonschema co_jsonschema;

/* Nested schema applications a validation follows before giving up. */
#define CO_JSONSCHEMA_MAX_DEPTH 256
/* How deeply a schema document itself may nest (compile time). */
#define CO_JSONSCHEMA_MAX_SCHEMA_DEPTH 128
/* Work bound of one validation (schema applications plus uniqueItems
 * comparisons): anyOf/oneOf over recursive schemas can branch
 * exponentially. Past it the instance is reported invalid with "validation
 * gave up after ... steps". */
#define CO_JSONSCHEMA_MAX_STEPS 1000000
/* Errors a validation records before it stops ("the first few"). */
#define CO_JSONSCHEMA_MAX_ERRORS 5

/* Compiles `schema` (an object or a boolean). Every problem is an error
 * (CO_EINVAL) whose message starts with `where` (e.g. "suite.yaml:12:5",
 * NULL: none) followed by the schema location: "suite.yaml:12:5: schema
 * /properties/price/type: unknown type 'numbr' (did you mean 'number'?)".
 * *out is the caller's to co_jsonschema_free. */
int co_jsonschema_compile(co_jsonschema **out, const json_t *schema, const char *where);
void co_jsonschema_free(co_jsonschema *s);

typedef struct co_jsonschema_error {
    char *pointer; /* JSON pointer into the instance: "" is the root, "/items/2/price" */
    char *message; /* "expected number, got string" */
} co_jsonschema_error;

typedef struct co_jsonschema_errors {
    co_jsonschema_error v[CO_JSONSCHEMA_MAX_ERRORS];
    size_t n;  /* recorded errors, in instance order */
    int more;  /* validation stopped with errors left unreported */
} co_jsonschema_errors;

/* Validates `instance`. *valid is 1 or 0. errs may be NULL (validation then
 * stops at the first error); otherwise it must be zeroed (or freed) before
 * the call and receives the first CO_JSONSCHEMA_MAX_ERRORS errors. Returns 0,
 * or CO_ENOMEM (then *valid is 0). */
int co_jsonschema_validate(const co_jsonschema *s, const json_t *instance, int *valid,
                           co_jsonschema_errors *errs);
/* Frees the messages and zeroes errs (safe on a zeroed struct). */
void co_jsonschema_errors_free(co_jsonschema_errors *errs);
/* Appends "/items/2/price: expected number, got string; (root): missing
 * required property 'id'" (and "; ..." when errs->more) to out. */
int co_jsonschema_errors_format(const co_jsonschema_errors *errs, co_buf *out);

/* JSON equality as JSON Schema defines it (enum, const): numbers compare by
 * value (1 == 1.0), object key order does not matter, strings byte-exact.
 * 1 when equal. NULLs equal only each other. */
int co_json_equal(const json_t *a, const json_t *b);

/* "null", "boolean", "object", "array", "integer" (a JSON integer),
 * "number" (a JSON real), "string". Static string. */
const char *co_json_type_name(const json_t *v);

/* Compiles an ECMA-262-style pattern (what JSON Schema `pattern` and
 * promptfoo `regex` users write) as a POSIX extended regex. Translated:
 * \d \D \w \W \s \S (ASCII classes, also inside [...]), \t \n \r \f \v,
 * \xHH, \uHHHH (UTF-8), escaped punctuation, (?:...) and named groups
 * (?<name>...) as plain groups, lazy quantifiers (*? +? ?? {n,m}?: they do
 * not change whether a pattern matches), a literal `{` that is not a
 * quantifier, and a leading (?i) (case-insensitive, ASCII). Passed through
 * to glibc: \b \B, backreferences \1-\9 and [[:alpha:]] classes. Rejected
 * with a reason: lookaround, \p{...}, other unknown escapes, inline flags
 * other than a leading (?i). `cflags` is or-ed into REG_EXTENDED (e.g.
 * REG_NOSUB). On error returns CO_EINVAL and writes the reason (regerror's
 * or ours) to err[errn]; nothing to free. On success the caller regfree()s. */
int co_regex_compile(regex_t *re, const char *pattern, int cflags, char *err, size_t errn);

#endif
