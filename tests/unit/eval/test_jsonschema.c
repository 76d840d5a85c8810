/* Unit tests of the JSON Schema subset: each keyword passing and failing
 * with JSON-pointer paths, $ref (local pointers, escapes, recursion, cycle
 * and depth bounds), unsupported keywords and bad values at compile time,
 * the error cap, cases from the official JSON-Schema-Test-Suite (draft
 * 2020-12) written inline, JSON equality, and the ECMA -> POSIX ERE pattern
 * translation. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cutover/buf.h"
#include "cutover/error.h"
#include "cutover/jsonschema.h"

static json_t *parse(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
    if (!j)
        fail_msg("bad test JSON %s: %s", text, je.text);
    return j;
}

static co_jsonschema *compile_ok(const char *schema)
{
    json_t *j = parse(schema);
    co_jsonschema *s = NULL;
    int rc = co_jsonschema_compile(&s, j, "t.yaml:3:7");
    json_decref(j);
    if (rc)
        fail_msg("schema %s did not compile: %s", schema, co_error_last());
    return s;
}

/* Validates `inst`; 1 when valid. Errors formatted into *text (caller frees). */
static int run(const co_jsonschema *s, const char *inst, char **text)
{
    json_t *j = parse(inst);
    co_jsonschema_errors errs = {0};
    int valid = -1;
    assert_int_equal(co_jsonschema_validate(s, j, &valid, &errs), 0);
    /* the fast path (no error list) agrees */
    int quick = -1;
    assert_int_equal(co_jsonschema_validate(s, j, &quick, NULL), 0);
    assert_int_equal(quick, valid);
    assert_int_equal(valid == 1, errs.n == 0);
    co_buf b;
    co_buf_init(&b, CO_BUF_UNLIMITED);
    co_jsonschema_errors_format(&errs, &b);
    if (text)
        *text = co_buf_detach(&b);
    else
        co_buf_free(&b);
    co_jsonschema_errors_free(&errs);
    json_decref(j);
    return valid;
}

static void valid(const char *schema, const char *inst)
{
    co_jsonschema *s = compile_ok(schema);
    char *t = NULL;
    if (!run(s, inst, &t))
        fail_msg("%s should be valid against %s; errors: %s", inst, schema, t);
    free(t);
    co_jsonschema_free(s);
}

/* Invalid, and the formatted errors are exactly `want` (NULL: don't check). */
static void invalid(const char *schema, const char *inst, const char *want)
{
    co_jsonschema *s = compile_ok(schema);
    char *t = NULL;
    if (run(s, inst, &t))
        fail_msg("%s should be invalid against %s", inst, schema);
    if (want && strcmp(t, want) != 0)
        fail_msg("%s against %s\n   got: %s\n  want: %s", inst, schema, t, want);
    free(t);
    co_jsonschema_free(s);
}

static void compile_err(const char *schema, const char *want_sub)
{
    json_t *j = parse(schema);
    co_jsonschema *s = NULL;
    int rc = co_jsonschema_compile(&s, j, "t.yaml:3:7");
    json_decref(j);
    if (rc == 0) {
        co_jsonschema_free(s);
        fail_msg("schema %s should not compile", schema);
    }
    assert_int_equal(rc, CO_EINVAL);
    assert_null(s);
    const char *msg = co_error_last();
    if (strncmp(msg, "t.yaml:3:7: schema ", 19) != 0 || !strstr(msg, want_sub))
        fail_msg("compile error for %s\n   got: %s\n  want a message with: %s", schema, msg, want_sub);
}

/* ---- keywords ---------------------------------------------------------------- */

static void test_type(void **state)
{
    (void)state;
    valid("{\"type\":\"string\"}", "\"x\"");
    valid("{\"type\":\"integer\"}", "3");
    valid("{\"type\":\"integer\"}", "1.0"); /* 2020-12: zero fractional part is an integer */
    valid("{\"type\":\"number\"}", "3");
    valid("{\"type\":\"number\"}", "-3.5e3");
    valid("{\"type\":\"null\"}", "null");
    valid("{\"type\":\"boolean\"}", "false");
    valid("{\"type\":\"object\"}", "{}");
    valid("{\"type\":\"array\"}", "[]");
    valid("{\"type\":[\"string\",\"null\"]}", "null");
    invalid("{\"type\":\"integer\"}", "1.5", "(root): expected integer, got number");
    invalid("{\"type\":\"string\"}", "1", "(root): expected string, got integer");
    invalid("{\"type\":\"boolean\"}", "0", "(root): expected boolean, got integer");
    invalid("{\"type\":\"null\"}", "false", "(root): expected null, got boolean");
    invalid("{\"type\":[\"string\",\"null\"]}", "[]", "(root): expected null or string, got array");
    invalid("{\"type\":[\"object\",\"array\",\"integer\"]}", "\"s\"",
            "(root): expected object, array or integer, got string");
    /* the brief's example path */
    invalid("{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\",\"items\":{\"type\":\"object\","
            "\"properties\":{\"price\":{\"type\":\"number\"}}}}}}",
            "{\"items\":[{\"price\":1},{\"price\":2.5},{\"price\":\"3\"}]}",
            "/items/2/price: expected number, got string");
}

static void test_properties_required_additional(void **state)
{
    (void)state;
    const char *s = "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"integer\"},\"tags\":{\"type\":\"array\","
                    "\"items\":{\"type\":\"string\"}}},\"required\":[\"id\"],\"additionalProperties\":false}";
    valid(s, "{\"id\":1}");
    valid(s, "{\"id\":1,\"tags\":[\"a\",\"b\"]}");
    invalid(s, "{}", "(root): missing required property 'id'");
    invalid(s, "{\"id\":1,\"x\":2}", "(root): property 'x' is not allowed (additionalProperties is false)");
    invalid(s, "{\"id\":1,\"tags\":[\"a\",2]}", "/tags/1: expected string, got integer");
    invalid(s, "{\"id\":\"1\",\"tags\":3}", "/id: expected integer, got string; /tags: expected array, got integer");
    /* additionalProperties as a schema */
    const char *t = "{\"properties\":{\"a\":{}},\"additionalProperties\":{\"type\":\"number\"}}";
    valid(t, "{\"a\":\"s\",\"b\":1,\"c\":2.5}");
    invalid(t, "{\"a\":\"s\",\"b\":\"x\"}", "/b: expected number, got string");
    /* property names needing pointer escapes */
    invalid("{\"properties\":{\"a/b\":{\"type\":\"string\"},\"c~d\":{\"type\":\"string\"}}}",
            "{\"a/b\":1,\"c~d\":2}", "/a~1b: expected string, got integer; /c~0d: expected string, got integer");
    /* required on non-objects is ignored */
    valid("{\"required\":[\"a\"]}", "[1]");
    /* min/maxProperties */
    invalid("{\"minProperties\":2}", "{\"a\":1}", "(root): object has 1 properties, fewer than minProperties 2");
    invalid("{\"maxProperties\":1}", "{\"a\":1,\"b\":2}", "(root): object has 2 properties, more than maxProperties 1");
    valid("{\"maxProperties\":1}", "{\"a\":1}");
}

static void test_enum_const(void **state)
{
    (void)state;
    valid("{\"enum\":[\"red\",\"green\",1]}", "\"green\"");
    valid("{\"enum\":[\"red\",\"green\",1]}", "1.0");
    invalid("{\"enum\":[\"red\",\"green\"]}", "\"blue\"", "(root): \"blue\" is not one of [\"red\",\"green\"]");
    valid("{\"const\":{\"a\":[1,2],\"b\":null}}", "{\"b\":null,\"a\":[1.0,2]}");
    invalid("{\"const\":{\"a\":[1,2]}}", "{\"a\":[2,1]}", "(root): must equal {\"a\":[1,2]}");
    invalid("{\"const\":false}", "0", "(root): must equal false");
    invalid("{\"properties\":{\"unit\":{\"const\":\"celsius\"}}}", "{\"unit\":\"kelvin\"}",
            "/unit: must equal \"celsius\"");
}

static void test_arrays(void **state)
{
    (void)state;
    valid("{\"items\":{\"type\":\"integer\"}}", "[1,2,3]");
    invalid("{\"items\":{\"type\":\"integer\"}}", "[1,\"2\",3.5]",
            "/1: expected integer, got string; /2: expected integer, got number");
    const char *tuple = "{\"prefixItems\":[{\"type\":\"string\"},{\"type\":\"number\"}],\"items\":false}";
    valid(tuple, "[\"a\",1]");
    valid(tuple, "[\"a\"]");
    invalid(tuple, "[1,1]", "/0: expected string, got integer");
    invalid(tuple, "[\"a\",1,2]", "/2: no item allowed at index 2 (items is false)");
    valid("{\"prefixItems\":[{\"type\":\"string\"}],\"items\":{\"type\":\"integer\"}}", "[\"a\",1,2]");
    invalid("{\"prefixItems\":[{\"type\":\"string\"}],\"items\":{\"type\":\"integer\"}}", "[\"a\",1,\"b\"]",
            "/2: expected integer, got string");
    invalid("{\"minItems\":1}", "[]", "(root): array has 0 items, fewer than minItems 1");
    invalid("{\"maxItems\":2}", "[1,2,3]", "(root): array has 3 items, more than maxItems 2");
    valid("{\"maxItems\":2}", "[1,2]");
    valid("{\"minItems\":1}", "\"not an array\"");
    valid("{\"uniqueItems\":true}", "[1,\"1\",[1],{\"a\":1},{\"a\":2}]");
    invalid("{\"uniqueItems\":true}", "[1,2,1.0]", "(root): items 0 and 2 are equal (uniqueItems)");
    invalid("{\"uniqueItems\":true}", "[{\"a\":1,\"b\":2},{\"b\":2,\"a\":1}]", NULL);
    valid("{\"uniqueItems\":false}", "[1,1]");
}

static void test_strings(void **state)
{
    (void)state;
    valid("{\"minLength\":2,\"maxLength\":3}", "\"ab\"");
    invalid("{\"minLength\":2}", "\"a\"", "(root): string is 1 characters, fewer than minLength 2");
    invalid("{\"maxLength\":3}", "\"abcd\"", "(root): string is 4 characters, more than maxLength 3");
    /* code points, not bytes: "héllo" is 6 bytes, 5 characters */
    valid("{\"maxLength\":5}", "\"h\\u00e9llo\"");
    /* one supplementary character (4 UTF-8 bytes, a surrogate pair in JSON text) */
    invalid("{\"minLength\":2}", "\"\\ud83d\\udca9\"", "(root): string is 1 characters, fewer than minLength 2");
    valid("{\"maxLength\":2}", "\"\\ud83d\\udca9\\ud83d\\udca9\"");
    valid("{\"pattern\":\"^[a-z]+$\"}", "\"abc\"");
    invalid("{\"pattern\":\"^[a-z]+$\"}", "\"abC\"", "(root): \"abC\" does not match pattern \"^[a-z]+$\"");
    valid("{\"pattern\":\"^\\\\d{3}-\\\\d{4}$\"}", "\"555-1234\""); /* ECMA \d */
    invalid("{\"pattern\":\"^\\\\d{3}-\\\\d{4}$\"}", "\"555-12345\"", NULL);
    valid("{\"pattern\":\"a+\"}", "\"xxaayy\""); /* not anchored */
    valid("{\"pattern\":\"^a\"}", "12");          /* ignores non-strings */
    invalid("{\"properties\":{\"email\":{\"type\":\"string\",\"pattern\":\"^[^@]+@[^@]+\\\\.[a-z]{2,}$\"}}}",
            "{\"email\":\"bob@example\"}", "/email: \"bob@example\" does not match pattern \"^[^@]+@[^@]+\\.[a-z]{2,}$\"");
}

static void test_numbers(void **state)
{
    (void)state;
    valid("{\"minimum\":1,\"maximum\":10}", "1");
    valid("{\"minimum\":1,\"maximum\":10}", "10.0");
    invalid("{\"minimum\":1}", "0.5", "(root): 0.5 is less than minimum 1");
    invalid("{\"maximum\":10}", "11", "(root): 11 is greater than maximum 10");
    invalid("{\"exclusiveMinimum\":0}", "0", "(root): 0 is not greater than exclusiveMinimum 0");
    valid("{\"exclusiveMinimum\":0}", "0.0001");
    invalid("{\"exclusiveMaximum\":1.5}", "1.5", "(root): 1.5 is not less than exclusiveMaximum 1.5");
    valid("{\"exclusiveMaximum\":1.5}", "1");
    valid("{\"multipleOf\":2}", "10");
    invalid("{\"multipleOf\":2}", "7", "(root): 7 is not a multiple of 2");
    valid("{\"multipleOf\":0.01}", "19.99");
    invalid("{\"multipleOf\":0.01}", "19.995", "(root): 19.995 is not a multiple of 0.01");
    valid("{\"multipleOf\":0.5}", "4");
    valid("{\"minimum\":5}", "\"abc\""); /* ignores non-numbers */
    /* large integers compare exactly */
    invalid("{\"maximum\":9007199254740992}", "9007199254740993",
            "(root): 9007199254740993 is greater than maximum 9007199254740992");
    valid("{\"maximum\":9007199254740993}", "9007199254740993");
}

static void test_combinators(void **state)
{
    (void)state;
    const char *any = "{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"null\"}]}";
    valid(any, "\"x\"");
    valid(any, "null");
    invalid(any, "3", "(root): matches none of the 2 anyOf schemas: [0] expected string, got integer; "
                      "[1] expected null, got integer");
    const char *all = "{\"allOf\":[{\"required\":[\"a\"]},{\"required\":[\"b\"]}]}";
    valid(all, "{\"a\":1,\"b\":2}");
    invalid(all, "{\"a\":1}", "(root): missing required property 'b'");
    const char *one = "{\"oneOf\":[{\"type\":\"integer\"},{\"minimum\":2}]}";
    valid(one, "1");
    valid(one, "2.5");
    invalid(one, "3", "(root): matches oneOf schemas 0 and 1; exactly one must match");
    invalid(one, "1.5", "(root): matches none of the 2 oneOf schemas: [0] expected integer, got number; "
                        "[1] 1.5 is less than minimum 2");
    valid("{\"not\":{\"type\":\"integer\"}}", "\"foo\"");
    invalid("{\"not\":{\"type\":\"integer\"}}", "1", "(root): must not match the schema in 'not'");
    /* nested pointers inside an anyOf branch are named */
    invalid("{\"anyOf\":[{\"properties\":{\"a\":{\"type\":\"string\"}}},{\"type\":\"array\"}]}", "{\"a\":1}",
            "(root): matches none of the 2 anyOf schemas: [0] at /a: expected string, got integer; "
            "[1] expected array, got object");
    /* boolean schemas */
    valid("true", "{\"anything\":[1]}");
    invalid("false", "1", "(root): no value is allowed here (the schema is false)");
    invalid("{\"properties\":{\"x\":false}}", "{\"x\":1}", "/x: no value is allowed here (the schema is false)");
}

static void test_ref(void **state)
{
    (void)state;
    const char *s = "{\"$defs\":{\"pos\":{\"type\":\"integer\",\"minimum\":1}},"
                    "\"properties\":{\"a\":{\"$ref\":\"#/$defs/pos\"},\"b\":{\"$ref\":\"#/$defs/pos\"}}}";
    valid(s, "{\"a\":1,\"b\":2}");
    invalid(s, "{\"a\":0,\"b\":\"x\"}", "/a: 0 is less than minimum 1; /b: expected integer, got string");
    /* legacy definitions */
    valid("{\"definitions\":{\"s\":{\"type\":\"string\"}},\"items\":{\"$ref\":\"#/definitions/s\"}}", "[\"a\"]");
    /* a ref to a nested subschema */
    invalid("{\"$defs\":{\"o\":{\"properties\":{\"n\":{\"type\":\"number\"}}}},\"$ref\":\"#/$defs/o/properties/n\"}",
            "\"x\"", "(root): expected number, got string");
    /* recursive tree via $ref */
    const char *tree = "{\"$defs\":{\"node\":{\"type\":\"object\",\"required\":[\"v\"],\"properties\":{"
                       "\"v\":{\"type\":\"integer\"},\"kids\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/node\"}}}}},"
                       "\"$ref\":\"#/$defs/node\"}";
    valid(tree, "{\"v\":1,\"kids\":[{\"v\":2},{\"v\":3,\"kids\":[{\"v\":4}]}]}");
    invalid(tree, "{\"v\":1,\"kids\":[{\"v\":2},{\"v\":3,\"kids\":[{\"v\":\"4\"}]}]}",
            "/kids/1/kids/0/v: expected integer, got string");
    /* recursion bound: a list nested deeper than the bound is reported, not a crash */
    co_jsonschema *ls = compile_ok("{\"type\":\"object\",\"properties\":{\"next\":{\"$ref\":\"#\"}}}");
    json_t *deep = json_object();
    for (int i = 0; i < CO_JSONSCHEMA_MAX_DEPTH * 2; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "next", deep);
        deep = o;
    }
    co_jsonschema_errors errs = {0};
    int ok = -1;
    assert_int_equal(co_jsonschema_validate(ls, deep, &ok, &errs), 0);
    assert_int_equal(ok, 0);
    assert_int_equal(errs.n, 1);
    assert_non_null(strstr(errs.v[0].message, "nesting deeper than"));
    assert_int_equal(strncmp(errs.v[0].pointer, "/next/next/next", 15), 0);
    co_jsonschema_errors_free(&errs);
    json_decref(deep);
    /* a shallow list is fine */
    char *t = NULL;
    assert_int_equal(run(ls, "{\"next\":{\"next\":{\"next\":{}}}}", &t), 1);
    free(t);
    co_jsonschema_free(ls);
    /* escaped pointers (test suite: "refs with quote", "escaped pointer ref") */
    const char *esc = "{\"$defs\":{\"tilde~field\":{\"type\":\"integer\"},\"slash/field\":{\"type\":\"integer\"},"
                      "\"percent%field\":{\"type\":\"integer\"}},\"properties\":{"
                      "\"tilde\":{\"$ref\":\"#/$defs/tilde~0field\"},\"slash\":{\"$ref\":\"#/$defs/slash~1field\"},"
                      "\"percent\":{\"$ref\":\"#/$defs/percent%25field\"}}}";
    valid(esc, "{\"tilde\":1,\"slash\":2,\"percent\":3}");
    invalid(esc, "{\"tilde\":\"a\"}", "/tilde: expected integer, got string");
    invalid(esc, "{\"slash\":\"a\"}", "/slash: expected integer, got string");
    invalid(esc, "{\"percent\":\"a\"}", "/percent: expected integer, got string");
    /* 2020-12: $ref applies together with its siblings */
    const char *sib = "{\"$defs\":{\"arr\":{\"type\":\"array\"}},\"properties\":{\"foo\":{\"$ref\":\"#/$defs/arr\","
                      "\"maxItems\":2}}}";
    valid(sib, "{\"foo\":[1,2]}");
    invalid(sib, "{\"foo\":[1,2,3]}", "/foo: array has 3 items, more than maxItems 2");
    invalid(sib, "{\"foo\":\"x\"}", "/foo: expected array, got string");
}

static void test_ref_errors(void **state)
{
    (void)state;
    compile_err("{\"$ref\":\"#/$defs/missing\"}", "/$ref: cannot resolve \"#/$defs/missing\"");
    compile_err("{\"$ref\":\"other.json#/x\"}", "only local references");
    compile_err("{\"$ref\":\"#anchor\"}", "anchors");
    compile_err("{\"required\":[\"a\"],\"$ref\":\"#/required\"}", "does not point to a schema");
    /* cycles that never consume input are refused at compile time */
    compile_err("{\"$defs\":{\"a\":{\"$ref\":\"#/$defs/b\"},\"b\":{\"$ref\":\"#/$defs/a\"}},\"$ref\":\"#/$defs/a\"}",
                "$ref cycle that never descends into the instance");
    compile_err("{\"anyOf\":[{\"$ref\":\"#\"}]}", "$ref cycle");
    compile_err("{\"$defs\":{\"a\":{\"not\":{\"allOf\":[{\"$ref\":\"#/$defs/a\"}]}}}}", "$ref cycle");
    compile_err("{\"$ref\":7}", "$ref must be a string");
}

static void test_unsupported_and_bad_values(void **state)
{
    (void)state;
    compile_err("{\"if\":{},\"then\":{}}", "schema /if: unsupported keyword 'if' (cutover validates");
    compile_err("{\"properties\":{\"a\":{\"maxLenght\":3}}}",
                "schema /properties/a/maxLenght: unsupported keyword 'maxLenght' (did you mean 'maxLength'?)");
    compile_err("{\"patternProperties\":{\"^x\":{}}}", "unsupported keyword 'patternProperties'");
    compile_err("{\"unevaluatedProperties\":false}", "unsupported keyword 'unevaluatedProperties'");
    compile_err("{\"type\":\"numbr\"}", "schema /type: unknown type 'numbr' (did you mean 'number'?)");
    compile_err("{\"type\":\"float\"}", "unknown type 'float' (null, boolean");
    compile_err("{\"type\":[]}", "non-empty array");
    compile_err("{\"items\":[{\"type\":\"string\"}]}", "use prefixItems");
    compile_err("{\"exclusiveMinimum\":true,\"minimum\":0}", "draft-04");
    compile_err("{\"minLength\":-1}", "minLength must be a non-negative integer");
    compile_err("{\"maxItems\":1.5}", "maxItems must be a non-negative integer");
    compile_err("{\"multipleOf\":0}", "multipleOf must be greater than 0");
    compile_err("{\"minimum\":\"3\"}", "minimum must be a number, got string");
    compile_err("{\"pattern\":\"(unclosed\"}", "schema /pattern: pattern \"(unclosed\" does not compile");
    compile_err("{\"pattern\":\"(?=x)\"}", "lookaround");
    compile_err("{\"required\":\"a\"}", "required must be an array");
    compile_err("{\"required\":[1]}", "required[0] must be a string");
    compile_err("{\"enum\":[]}", "enum must be a non-empty array");
    compile_err("{\"anyOf\":{}}", "anyOf must be a non-empty array of schemas");
    compile_err("{\"allOf\":[{\"type\":\"strin\"}]}", "schema /allOf/0/type: unknown type 'strin'");
    compile_err("{\"properties\":[]}", "properties must be an object");
    compile_err("{\"properties\":{\"a\":3}}", "schema /properties/a: a schema must be an object or a boolean");
    compile_err("[]", "schema (root): a schema must be an object or a boolean, got array");
    compile_err("{\"uniqueItems\":1}", "uniqueItems must be a boolean");
    /* annotations are accepted */
    valid("{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"$id\":\"https://x/s\",\"title\":\"T\","
          "\"description\":\"d\",\"examples\":[1],\"default\":1,\"$comment\":\"c\",\"format\":\"email\","
          "\"deprecated\":false,\"readOnly\":true,\"type\":\"integer\"}",
          "3");
    /* without a where prefix */
    json_t *j = parse("{\"iff\":1}");
    co_jsonschema *s = NULL;
    assert_int_equal(co_jsonschema_compile(&s, j, NULL), CO_EINVAL);
    assert_int_equal(strncmp(co_error_last(), "schema /iff: unsupported keyword 'iff'", 38), 0);
    json_decref(j);
    /* the schema is copied: the caller's document may change afterwards */
    j = parse("{\"type\":\"string\"}");
    assert_int_equal(co_jsonschema_compile(&s, j, NULL), 0);
    json_object_set_new(j, "type", json_string("integer"));
    char *t = NULL;
    assert_int_equal(run(s, "\"still a string\"", &t), 1);
    free(t);
    json_decref(j);
    co_jsonschema_free(s);
    /* deeply nested schema documents are refused, not overflowed */
    json_t *deep = json_object();
    for (int i = 0; i < CO_JSONSCHEMA_MAX_SCHEMA_DEPTH + 5; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "not", deep);
        deep = o;
    }
    assert_int_equal(co_jsonschema_compile(&s, deep, NULL), CO_EINVAL);
    assert_non_null(strstr(co_error_last(), "nests deeper than"));
    json_decref(deep);
}

static void test_work_bounds(void **state)
{
    (void)state;
    /* two branches that both recurse and fail only at the leaf: 2^depth work
     * without a bound */
    co_jsonschema *s = compile_ok(
        "{\"$defs\":{\"n\":{\"anyOf\":[{\"type\":\"object\",\"required\":[\"c\"],\"properties\":{\"c\":{\"$ref\":\"#/$defs/n\"}}},"
        "{\"type\":\"object\",\"required\":[\"c\"],\"minProperties\":1,\"properties\":{\"c\":{\"$ref\":\"#/$defs/n\"}}}]}},"
        "\"$ref\":\"#/$defs/n\"}");
    json_t *deep = json_integer(5);
    for (int i = 0; i < 60; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "c", deep);
        deep = o;
    }
    co_jsonschema_errors errs = {0};
    int ok = -1;
    assert_int_equal(co_jsonschema_validate(s, deep, &ok, &errs), 0);
    assert_int_equal(ok, 0);
    assert_true(errs.n >= 1);
    assert_string_equal(errs.v[errs.n - 1].pointer, "");
    assert_non_null(strstr(errs.v[errs.n - 1].message, "validation gave up after"));
    co_jsonschema_errors_free(&errs);
    assert_int_equal(co_jsonschema_validate(s, deep, &ok, NULL), 0);
    assert_int_equal(ok, 0);
    json_decref(deep);
    /* shallow: the nested anyOf is summarised inside the top-level one */
    char *t = NULL;
    assert_int_equal(run(s, "{\"c\":{\"c\":3}}", &t), 0);
    assert_string_equal(t, "(root): matches none of the 2 anyOf schemas: [0] at /c: matches none of the 2 anyOf "
                           "schemas; [1] at /c: matches none of the 2 anyOf schemas");
    free(t);
    co_jsonschema_free(s);
    /* uniqueItems on a large array is bounded too */
    s = compile_ok("{\"uniqueItems\":true}");
    json_t *arr = json_array();
    for (int i = 0; i < 3000; i++)
        json_array_append_new(arr, json_integer(i));
    assert_int_equal(co_jsonschema_validate(s, arr, &ok, NULL), 0);
    assert_int_equal(ok, 0); /* 4.5M comparisons > the bound */
    json_decref(arr);
    arr = json_array();
    for (int i = 0; i < 1000; i++)
        json_array_append_new(arr, json_integer(i));
    assert_int_equal(co_jsonschema_validate(s, arr, &ok, NULL), 0);
    assert_int_equal(ok, 1);
    json_decref(arr);
    co_jsonschema_free(s);
}

static void test_error_cap(void **state)
{
    (void)state;
    co_jsonschema *s = compile_ok("{\"items\":{\"type\":\"string\"}}");
    json_t *j = parse("[1,2,3,4,5,6,7,8]");
    co_jsonschema_errors errs = {0};
    int ok = -1;
    assert_int_equal(co_jsonschema_validate(s, j, &ok, &errs), 0);
    assert_int_equal(ok, 0);
    assert_int_equal(errs.n, CO_JSONSCHEMA_MAX_ERRORS);
    assert_int_equal(errs.more, 1);
    assert_string_equal(errs.v[0].pointer, "/0");
    assert_string_equal(errs.v[4].pointer, "/4");
    co_buf b;
    co_buf_init(&b, CO_BUF_UNLIMITED);
    co_jsonschema_errors_format(&errs, &b);
    assert_non_null(strstr(b.p, "/4: expected string, got integer; ..."));
    co_buf_free(&b);
    co_jsonschema_errors_free(&errs);
    assert_int_equal(errs.n, 0);
    /* exactly the cap: no "more" */
    json_decref(j);
    j = parse("[1,2,3,4,5]");
    assert_int_equal(co_jsonschema_validate(s, j, &ok, &errs), 0);
    assert_int_equal(errs.n, 5);
    assert_int_equal(errs.more, 0);
    co_jsonschema_errors_free(&errs);
    json_decref(j);
    co_jsonschema_free(s);
}

/* ---- cross-checked with JSON-Schema-Test-Suite (tests/draft2020-12) ----------- */

typedef struct suite_case {
    const char *file; /* the suite file the case comes from */
    const char *schema;
    const char *data;
    int valid;
} suite_case;

static const suite_case suite[] = {
    {"type.json", "{\"type\":\"integer\"}", "1", 1},
    {"type.json", "{\"type\":\"integer\"}", "1.0", 1},
    {"type.json", "{\"type\":\"integer\"}", "1.1", 0},
    {"type.json", "{\"type\":\"integer\"}", "\"foo\"", 0},
    {"type.json", "{\"type\":\"integer\"}", "\"1\"", 0},
    {"type.json", "{\"type\":\"number\"}", "1", 1},
    {"type.json", "{\"type\":\"string\"}", "\"\"", 1},
    {"type.json", "{\"type\":\"object\"}", "[]", 0},
    {"type.json", "{\"type\":\"array\"}", "{}", 0},
    {"type.json", "{\"type\":\"boolean\"}", "0", 0},
    {"type.json", "{\"type\":\"null\"}", "0", 0},
    {"type.json", "{\"type\":[\"integer\",\"string\"]}", "1.5", 0},
    {"type.json", "{\"type\":[\"array\",\"object\",\"null\"]}", "null", 1},
    {"properties.json", "{\"properties\":{\"foo\":{\"type\":\"integer\"},\"bar\":{\"type\":\"string\"}}}",
     "{\"foo\":1,\"bar\":{}}", 0},
    {"properties.json", "{\"properties\":{\"foo\":{\"type\":\"integer\"},\"bar\":{\"type\":\"string\"}}}",
     "{\"quux\":[]}", 1},
    {"properties.json", "{\"properties\":{\"foo\":{\"type\":\"integer\"},\"bar\":{\"type\":\"string\"}}}", "[]", 1},
    {"required.json", "{\"properties\":{\"foo\":{},\"bar\":{}},\"required\":[\"foo\"]}", "{\"bar\":1}", 0},
    {"required.json", "{\"properties\":{\"foo\":{},\"bar\":{}},\"required\":[\"foo\"]}", "\"\"", 1},
    {"required.json", "{\"required\":[\"__proto__\",\"toString\"]}", "{\"__proto__\":1}", 0},
    {"additionalProperties.json",
     "{\"properties\":{\"foo\":{},\"bar\":{}},\"additionalProperties\":false}", "{\"foo\":1,\"bar\":2,\"quux\":\"boom\"}", 0},
    {"additionalProperties.json", "{\"properties\":{\"foo\":{},\"bar\":{}},\"additionalProperties\":false}",
     "[1,2,3]", 1},
    {"additionalProperties.json",
     "{\"properties\":{\"foo\":{},\"bar\":{}},\"additionalProperties\":{\"type\":\"boolean\"}}",
     "{\"foo\":1,\"bar\":2,\"quux\":12}", 0},
    {"enum.json", "{\"enum\":[false]}", "0", 0},
    {"enum.json", "{\"enum\":[0]}", "false", 0},
    {"enum.json", "{\"enum\":[1]}", "1.0", 1},
    {"enum.json", "{\"enum\":[[false]]}", "[0]", 0},
    {"enum.json", "{\"enum\":[6,\"foo\",[],true,{\"foo\":12}]}", "{\"foo\":false}", 0},
    {"enum.json", "{\"enum\":[\"foo\\u0000bar\"]}", "\"foo\\u0000bar\"", 1},
    {"enum.json", "{\"enum\":[\"foo\\u0000bar\"]}", "\"foobar\"", 0},
    {"const.json", "{\"const\":{\"foo\":\"bar\",\"baz\":\"bax\"}}", "{\"baz\":\"bax\",\"foo\":\"bar\"}", 1},
    {"const.json", "{\"const\":{\"foo\":\"bar\",\"baz\":\"bax\"}}", "{\"foo\":\"bar\"}", 0},
    {"const.json", "{\"const\":-2.0}", "-2", 1},
    {"const.json", "{\"const\":null}", "0", 0},
    {"items.json", "{\"items\":{\"type\":\"integer\"}}", "[1,\"x\"]", 0},
    {"items.json", "{\"items\":{\"type\":\"integer\"}}", "{\"foo\":\"bar\"}", 1},
    {"items.json", "{\"prefixItems\":[{},{},{}],\"items\":false}", "[1,2,3]", 1},
    {"items.json", "{\"prefixItems\":[{},{},{}],\"items\":false}", "[1,2,3,4]", 0},
    {"prefixItems.json", "{\"prefixItems\":[{\"type\":\"integer\"},{\"type\":\"string\"}]}", "[1,\"foo\",true]", 1},
    {"prefixItems.json", "{\"prefixItems\":[{\"type\":\"integer\"},{\"type\":\"string\"}]}", "[\"foo\",1]", 0},
    {"minLength.json", "{\"minLength\":2}", "\"\\ud83d\\udca9\"", 0},
    {"maxLength.json", "{\"maxLength\":2}", "\"\\ud83d\\udca9\\ud83d\\udca9\"", 1},
    {"minimum.json", "{\"minimum\":-2}", "-2.0001", 0},
    {"minimum.json", "{\"minimum\":1.1}", "1.1", 1},
    {"exclusiveMinimum.json", "{\"exclusiveMinimum\":1.1}", "1.1", 0},
    {"exclusiveMaximum.json", "{\"exclusiveMaximum\":3.0}", "3.0", 0},
    {"multipleOf.json", "{\"multipleOf\":1.5}", "4.5", 1},
    {"multipleOf.json", "{\"multipleOf\":1.5}", "35", 0},
    {"multipleOf.json", "{\"multipleOf\":0.0001}", "0.0075", 1},
    {"multipleOf.json", "{\"multipleOf\":0.0001}", "0.00751", 0},
    {"multipleOf.json", "{\"type\":\"integer\",\"multipleOf\":0.123456789}", "1e308", 0},
    {"pattern.json", "{\"pattern\":\"^a*$\"}", "\"abc\"", 0},
    {"pattern.json", "{\"pattern\":\"a+\"}", "\"xxaayy\"", 1},
    {"pattern.json", "{\"pattern\":\"^a*$\"}", "true", 1},
    {"anyOf.json", "{\"anyOf\":[{\"type\":\"integer\"},{\"minimum\":2}]}", "1", 1},
    {"anyOf.json", "{\"anyOf\":[{\"type\":\"integer\"},{\"minimum\":2}]}", "2.5", 1},
    {"anyOf.json", "{\"anyOf\":[{\"type\":\"integer\"},{\"minimum\":2}]}", "1.5", 0},
    {"anyOf.json", "{\"anyOf\":[true,false]}", "\"foo\"", 1},
    {"oneOf.json", "{\"oneOf\":[{\"type\":\"integer\"},{\"minimum\":2}]}", "3", 0},
    {"oneOf.json", "{\"oneOf\":[true,true,false]}", "\"foo\"", 0},
    {"allOf.json",
     "{\"allOf\":[{\"properties\":{\"bar\":{\"type\":\"integer\"}},\"required\":[\"bar\"]},"
     "{\"properties\":{\"foo\":{\"type\":\"string\"}},\"required\":[\"foo\"]}]}",
     "{\"foo\":\"baz\",\"bar\":\"quux\"}", 0},
    {"allOf.json",
     "{\"allOf\":[{\"properties\":{\"bar\":{\"type\":\"integer\"}},\"required\":[\"bar\"]},"
     "{\"properties\":{\"foo\":{\"type\":\"string\"}},\"required\":[\"foo\"]}]}",
     "{\"foo\":\"baz\",\"bar\":2}", 1},
    {"not.json", "{\"not\":{\"type\":[\"integer\",\"boolean\"]}}", "true", 0},
    {"not.json", "{\"not\":{}}", "1", 0},
    {"boolean_schema.json", "false", "{}", 0},
    {"ref.json", "{\"properties\":{\"foo\":{\"$ref\":\"#\"}},\"additionalProperties\":false}", "{\"foo\":false}", 1},
    {"ref.json", "{\"properties\":{\"foo\":{\"$ref\":\"#\"}},\"additionalProperties\":false}",
     "{\"foo\":{\"foo\":false}}", 1},
    {"ref.json", "{\"properties\":{\"foo\":{\"$ref\":\"#\"}},\"additionalProperties\":false}", "{\"bar\":false}", 0},
    {"ref.json", "{\"properties\":{\"foo\":{\"$ref\":\"#\"}},\"additionalProperties\":false}",
     "{\"foo\":{\"bar\":false}}", 0},
    {"ref.json",
     "{\"properties\":{\"foo\":{\"type\":\"integer\"},\"bar\":{\"$ref\":\"#/properties/foo\"}}}", "{\"bar\":true}", 0},
    {"ref.json", "{\"prefixItems\":[{\"type\":\"integer\"},{\"$ref\":\"#/prefixItems/0\"}]}", "[1,\"foo\"]", 0},
    {"ref.json", "{\"$defs\":{\"a\":{\"type\":\"integer\"},\"b\":{\"$ref\":\"#/$defs/a\"},\"c\":{\"$ref\":\"#/$defs/b\"}},"
                 "\"$ref\":\"#/$defs/c\"}", "\"a\"", 0},
    {"ref.json", "{\"$defs\":{\"bool\":false},\"$ref\":\"#/$defs/bool\"}", "\"foo\"", 0},
    {"uniqueItems.json", "{\"uniqueItems\":true}", "[1,true]", 1},
    {"uniqueItems.json", "{\"uniqueItems\":true}", "[[\"foo\"],[\"foo\"]]", 0},
    {"uniqueItems.json", "{\"uniqueItems\":true}", "[{\"a\":false},{\"a\":0}]", 1},
};

static void test_official_suite_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof suite / sizeof suite[0]; i++) {
        const suite_case *c = &suite[i];
        json_t *sj = json_loads(c->schema, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        json_t *dj = json_loads(c->data, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        assert_non_null(sj);
        assert_non_null(dj);
        co_jsonschema *s = NULL;
        if (co_jsonschema_compile(&s, sj, c->file))
            fail_msg("%s case %zu: schema did not compile: %s", c->file, i, co_error_last());
        int ok = -1;
        assert_int_equal(co_jsonschema_validate(s, dj, &ok, NULL), 0);
        if (ok != c->valid)
            fail_msg("%s case %zu: %s against %s: got %s, suite says %s", c->file, i, c->data, c->schema,
                     ok ? "valid" : "invalid", c->valid ? "valid" : "invalid");
        co_jsonschema_free(s);
        json_decref(sj);
        json_decref(dj);
    }
}

/* ---- JSON equality and type names ------------------------------------------------ */

static int eq(const char *a, const char *b)
{
    json_t *x = parse(a), *y = parse(b);
    int r = co_json_equal(x, y);
    json_decref(x);
    json_decref(y);
    return r;
}

static void test_json_equal(void **state)
{
    (void)state;
    assert_true(eq("1", "1.0"));
    assert_true(eq("{\"a\":1,\"b\":[true,null]}", "{\"b\":[true,null],\"a\":1.0}"));
    assert_false(eq("{\"a\":1}", "{\"a\":1,\"b\":2}"));
    assert_false(eq("[1,2]", "[2,1]"));
    assert_false(eq("0", "false"));
    assert_false(eq("\"1\"", "1"));
    assert_false(eq("null", "false"));
    assert_true(eq("\"\\u00e9\"", "\"\\u00e9\""));
    assert_true(co_json_equal(NULL, NULL));
    json_t *one = json_integer(1);
    assert_false(co_json_equal(one, NULL));
    assert_string_equal(co_json_type_name(one), "integer");
    json_decref(one);
    json_t *r = json_real(1.5);
    assert_string_equal(co_json_type_name(r), "number");
    json_decref(r);
    assert_string_equal(co_json_type_name(json_null()), "null");
    assert_string_equal(co_json_type_name(json_true()), "boolean");
}

/* ---- pattern dialect --------------------------------------------------------------- */

static int pat_match(const char *pattern, const char *text)
{
    regex_t re;
    char err[256];
    int rc = co_regex_compile(&re, pattern, REG_NOSUB, err, sizeof err);
    if (rc)
        fail_msg("pattern %s did not compile: %s", pattern, err);
    int m = regexec(&re, text, 0, NULL, 0) == 0;
    regfree(&re);
    return m;
}

static void re_reject(const char *pattern, const char *want)
{
    regex_t re;
    char err[256];
    int rc = co_regex_compile(&re, pattern, REG_NOSUB, err, sizeof err);
    if (rc == 0) {
        regfree(&re);
        fail_msg("pattern %s should be rejected", pattern);
    }
    assert_int_equal(rc, CO_EINVAL);
    if (!strstr(err, want))
        fail_msg("pattern %s: error \"%s\" lacks \"%s\"", pattern, err, want);
}

static void test_regex_dialect(void **state)
{
    (void)state;
    assert_true(pat_match("^\\d{3}$", "123"));
    assert_false(pat_match("^\\d{3}$", "12a"));
    assert_true(pat_match("^\\D+$", "abc"));
    assert_true(pat_match("^\\w+\\s\\w+$", "hello world"));
    assert_false(pat_match("^\\S+$", "a b"));
    assert_true(pat_match("^[\\d.]+$", "3.14"));       /* class escapes inside [] */
    assert_false(pat_match("^[\\d.]+$", "3,14"));
    assert_true(pat_match("^[\\w-]+$", "snake_case-and-kebab"));
    assert_true(pat_match("^[a\\]]+$", "a]a"));       /* \] inside a class */
    assert_true(pat_match("^[\\^x]+$", "^x^"));       /* \^ inside a class */
    assert_false(pat_match("^[\\^x]+$", "y"));
    assert_true(pat_match("^[^\\]]+$", "abc"));
    assert_false(pat_match("^[^\\]]+$", "a]c"));
    assert_true(pat_match("^[\\[\\]]+$", "[]"));
    assert_true(pat_match("^[-a]+$", "-a-"));
    assert_true(pat_match("^[[:alpha:]]+$", "abc"));  /* POSIX classes pass through */
    assert_true(pat_match("(?:ab)+c", "ababc"));       /* non-capturing group */
    assert_true(pat_match("(?<year>\\d{4})-\\d{2}", "2024-05"));
    assert_true(pat_match("a.*?b", "axxb"));           /* lazy quantifiers */
    assert_true(pat_match("a+?b", "aab"));
    assert_true(pat_match("a{2,3}?b", "aab"));
    assert_true(pat_match("\\{\"a\"", "{\"a\":1}"));
    assert_true(pat_match("{\"a\"", "{\"a\":1}"));     /* a literal { */
    assert_true(pat_match("a}", "a}"));
    assert_true(pat_match("^\\/api\\/v1$", "/api/v1"));
    assert_true(pat_match("\\x41\\u0042", "AB"));
    assert_true(pat_match("caf\\u00e9", "caf\xc3\xa9"));
    assert_true(pat_match("\\ud83d\\udca9", "\xf0\x9f\x92\xa9"));
    assert_true(pat_match("a\\.b", "a.b"));
    assert_false(pat_match("a\\.b", "axb"));
    assert_true(pat_match("^a\\tb$", "a\tb"));
    assert_true(pat_match("(?i)^hello$", "HeLLo"));
    assert_false(pat_match("^hello$", "HeLLo"));
    assert_true(pat_match("\\bcat\\b", "a cat sat"));
    assert_false(pat_match("\\bcat\\b", "concatenate"));
    assert_true(pat_match("(a)\\1", "aa"));
    re_reject("(?=a)b", "lookaround");
    re_reject("(?<!a)b", "lookaround");
    re_reject("\\p{L}+", "Unicode property");
    re_reject("\\k<x>", "named backreferences");
    re_reject("\\q", "escape \\q");
    re_reject("[\\D]", "inside [...]");
    re_reject("[abc", "unterminated [");
    re_reject("abc\\", "ends with a backslash");
    re_reject("(?m)^a", "only a leading (?i)");
    re_reject("[]", "empty class");
    re_reject("\\x4", "malformed");
    re_reject("(abc", "");  /* regcomp's own message */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type),
        cmocka_unit_test(test_properties_required_additional),
        cmocka_unit_test(test_enum_const),
        cmocka_unit_test(test_arrays),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_combinators),
        cmocka_unit_test(test_ref),
        cmocka_unit_test(test_ref_errors),
        cmocka_unit_test(test_unsupported_and_bad_values),
        cmocka_unit_test(test_error_cap),
        cmocka_unit_test(test_work_bounds),
        cmocka_unit_test(test_official_suite_cases),
        cmocka_unit_test(test_json_equal),
        cmocka_unit_test(test_regex_dialect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
