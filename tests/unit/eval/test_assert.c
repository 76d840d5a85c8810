/* Unit tests of eval assertions: every type passing and failing, edge cases
 * (empty, unicode, huge outputs, case folding), negation, weights and
 * thresholds, the case result, the llm-rubric judge callback, tool-call
 * validation, and load-time errors with the where prefix and did-you-mean. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cutover/assert.h"
#include "cutover/error.h"

#define WHERE "suite.yaml:12:5"

static json_t *parse(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
    if (!j)
        fail_msg("bad test JSON %s: %s", text, je.text);
    return j;
}

static co_assertion *mk_opts(const char *def, const co_assert_opts *opts)
{
    json_t *j = parse(def);
    co_assertion *a = NULL;
    int rc = co_assertion_new(&a, j, WHERE, opts);
    json_decref(j);
    if (rc)
        fail_msg("%s did not load: %s", def, co_error_last());
    return a;
}

static co_assertion *mk(const char *def) { return mk_opts(def, NULL); }

static co_assert_input text_input(const char *out)
{
    co_assert_input in = {.output = out, .output_len = out ? strlen(out) : 0};
    return in;
}

/* Evaluates `def` on `out` and checks pass; returns the reason (caller frees). */
static char *eval_in(const char *def, const co_assert_opts *opts, const co_assert_input *in, int want_pass)
{
    co_assertion *a = mk_opts(def, opts);
    co_assert_result r;
    int rc = co_assertion_eval(a, in, &r);
    if (rc)
        fail_msg("%s: eval failed: %s", def, co_error_last());
    assert_non_null(r.reason);
    if (r.pass != want_pass)
        fail_msg("%s on \"%.200s\": pass=%d, want %d (reason: %s)", def, in->output ? in->output : "(null)", r.pass,
                 want_pass, r.reason);
    assert_true(r.score >= 0 && r.score <= 1);
    if (r.pass)
        assert_int_equal(r.error, 0);
    char *reason = r.reason;
    co_assertion_free(a);
    return reason;
}

static void check(const char *def, const char *out, int want_pass)
{
    co_assert_input in = text_input(out);
    free(eval_in(def, NULL, &in, want_pass));
}

/* Pass/fail plus a substring of the reason. */
static void check_why(const char *def, const char *out, int want_pass, const char *why)
{
    co_assert_input in = text_input(out);
    char *r = eval_in(def, NULL, &in, want_pass);
    if (!strstr(r, why))
        fail_msg("%s on \"%.200s\": reason \"%s\" lacks \"%s\"", def, out, r, why);
    free(r);
}

/* Both the type and its not- form, with opposite results. */
static void check_both(const char *type, const char *rest, const char *out, int want_pass)
{
    char def[2048];
    snprintf(def, sizeof def, "{\"type\":\"%s\"%s}", type, rest);
    check(def, out, want_pass);
    snprintf(def, sizeof def, "{\"type\":\"not-%s\"%s}", type, rest);
    check(def, out, !want_pass);
}

/* Loading fails with CO_EINVAL, the where prefix, and `want` in the message. */
static void load_err_opts(const char *def, const co_assert_opts *opts, const char *want)
{
    json_t *j = parse(def);
    co_assertion *a = NULL;
    int rc = co_assertion_new(&a, j, WHERE, opts);
    json_decref(j);
    if (rc == 0) {
        co_assertion_free(a);
        fail_msg("%s should not load", def);
    }
    assert_int_equal(rc, CO_EINVAL);
    assert_null(a);
    const char *m = co_error_last();
    if (strncmp(m, WHERE ": ", strlen(WHERE) + 2) != 0 || !strstr(m, want))
        fail_msg("load error for %s\n   got: %s\n  want: \"" WHERE ": ...%s...\"", def, m, want);
}

static void load_err(const char *def, const char *want) { load_err_opts(def, NULL, want); }

/* ---- text assertions ------------------------------------------------------------ */

static void test_equals(void **state)
{
    (void)state;
    check_both("equals", ",\"value\":\"Paris\"", "Paris", 1);
    check_both("equals", ",\"value\":\"Paris\"", "Paris.", 0);
    check_both("equals", ",\"value\":\"Paris\"", "paris", 0);
    check_both("equals", ",\"value\":\"Paris\"", "", 0);
    check_both("equals", ",\"value\":\"Paris\"", " Paris", 0);
    check_why("{\"type\":\"equals\",\"value\":\"Hello!\"}", "Hello", 0,
              "output \"Hello\" differs from \"Hello!\" from byte 5 (lengths 5 and 6)");
    check_why("{\"type\":\"equals\",\"value\":\"a\\nb\"}", "a\nb", 1, "output equals \"a\\nb\"");
    check("{\"type\":\"equals\",\"value\":\"\\u00e9t\\u00e9 \\ud83c\\udf1e\"}", "\xc3\xa9t\xc3\xa9 \xf0\x9f\x8c\x9e", 1);
    check("{\"type\":\"equals\",\"value\":\"\"}", "", 1); /* equals "" is how to require an empty output */
    check("{\"type\":\"equals\",\"value\":\"\"}", "x", 0);
    /* JSON values compare as JSON */
    check_both("equals", ",\"value\":{\"a\":1,\"b\":[1,2]}", "{\"b\": [1, 2.0], \"a\": 1}", 1);
    check_both("equals", ",\"value\":{\"a\":1}", " {\"a\":1}\n", 1);
    check_both("equals", ",\"value\":{\"a\":1}", "{\"a\":1,\"b\":2}", 0);
    check_why("{\"type\":\"equals\",\"value\":{\"a\":{\"b\":[1,2]}}}", "{\"a\":{\"b\":[1,3]}}", 0,
              "at /a/b/1: expected 2, got 3");
    check_why("{\"type\":\"equals\",\"value\":{\"a\":1}}", "{\"a\":1,\"zz\":2}", 0, "unexpected key 'zz'");
    check_why("{\"type\":\"equals\",\"value\":{\"a\":1}}", "```json\n{\"a\":1}\n```", 0, "output is not JSON");
    check_both("equals", ",\"value\":[1,\"two\"]", "[1,\"two\"]", 1);
    check_both("equals", ",\"value\":42", "42", 1);
    check_both("equals", ",\"value\":42", "42.0", 1);
    check_both("equals", ",\"value\":42", "\"42\"", 0);
    check_both("equals", ",\"value\":true", "true", 1);
    load_err("{\"type\":\"equals\",\"value\":null}", "equals: needs a value"); /* null is no value */
}

static void test_contains(void **state)
{
    (void)state;
    check_both("contains", ",\"value\":\"Paris\"", "The capital is Paris.", 1);
    check_both("contains", ",\"value\":\"Paris\"", "The capital is paris.", 0);
    check_both("contains", ",\"value\":\"Paris\"", "", 0);
    check_why("{\"type\":\"contains\",\"value\":\"is\"}", "This", 1, "output contains \"is\" at byte 2");
    check_why("{\"type\":\"contains\",\"value\":\"xyz\"}", "abc", 0, "output does not contain \"xyz\"");
    check_why("{\"type\":\"not-contains\",\"value\":\"sorry\"}", "I'm sorry", 0, "output contains \"sorry\" at byte 4");
    check_both("contains", ",\"value\":42", "the answer is 42", 1);
    check_both("contains", ",\"value\":2.5", "costs 2.5 USD", 1);
    /* unicode: byte-exact UTF-8 matching */
    check_both("contains", ",\"value\":\"\\u6771\\u4eac\"", "\xe9\xa6\x96\xe9\x83\xbd\xe6\x98\xaf\xe6\x9d\xb1\xe4\xba\xac", 1);
    check_both("contains", ",\"value\":\"\\ud83d\\ude00\"", "ok \xf0\x9f\x98\x80!", 1);
    /* a quoted reason escapes control characters and cuts long text */
    char long_needle[300];
    memset(long_needle, 'q', sizeof long_needle - 1);
    long_needle[sizeof long_needle - 1] = '\0';
    char def[512];
    snprintf(def, sizeof def, "{\"type\":\"contains\",\"value\":\"%s\"}", long_needle);
    check_why(def, "abc", 0, "qqq...\"");
    /* starts-with */
    check_both("starts-with", ",\"value\":\"Yes\"", "Yes, it is.", 1);
    check_both("starts-with", ",\"value\":\"Yes\"", " Yes, it is.", 0);
    check_both("starts-with", ",\"value\":\"Yes\"", "Ye", 0);
    check_both("starts-with", ",\"value\":\"Yes\"", "", 0);
    check_why("{\"type\":\"starts-with\",\"value\":\"Yes\"}", "No way", 0, "output starts with \"No \", not \"Yes\"");
    check_both("starts-with", ",\"value\":\"\\u00c9t\\u00e9\"", "\xc3\x89t\xc3\xa9 chaud", 1);
}

static void test_icontains_folding(void **state)
{
    (void)state;
    check_both("icontains", ",\"value\":\"PARIS\"", "the capital is paris", 1);
    check_both("icontains", ",\"value\":\"paris\"", "THE CAPITAL IS PARIS", 1);
    check_why("{\"type\":\"icontains\",\"value\":\"PaRiS\"}", "xx PARIS", 1,
              "output contains (ignoring case) \"paris\" at byte 3");
    check_both("icontains", ",\"value\":\"Paris\"", "Pari", 0);
    check_both("icontains", ",\"value\":\"Paris\"", "", 0);
    /* Latin-1, Latin Extended-A, Greek, Cyrillic, Armenian, Vietnamese, fullwidth */
    check_both("icontains", ",\"value\":\"\\u00c9COLE\"", "une \xc3\xa9" "cole", 1);            /* ÉCOLE / école */
    check_both("icontains", ",\"value\":\"\\u0141\\u00d3D\\u0179\"", "\xc5\x82\xc3\xb3" "d\xc5\xba", 1); /* ŁÓDŹ */
    check_both("icontains", ",\"value\":\"\\u0391\\u0398\\u0389\\u039d\\u0391\"",
               "\xce\xb1\xce\xb8\xce\xae\xce\xbd\xce\xb1", 1);                                         /* ΑΘΉΝΑ / αθήνα */
    check_both("icontains", ",\"value\":\"\\u041c\\u041e\\u0421\\u041a\\u0412\\u0410\"",
               "\xd0\xbc\xd0\xbe\xd1\x81\xd0\xba\xd0\xb2\xd0\xb0", 1);                                 /* МОСКВА / москва */
    check_both("icontains", ",\"value\":\"\\u0401\\u0416\"", "\xd1\x91\xd0\xb6", 1);              /* ЁЖ / ёж */
    check_both("icontains", ",\"value\":\"\\u0540\\u0531\\u0545\"", "\xd5\xb0\xd5\xa1\xd5\xb5", 1); /* ՀԱՅ / հայ */
    check_both("icontains", ",\"value\":\"VI\\u1ec6T\"", "vi\xe1\xbb\x87t", 1);                   /* VIỆT / việt */
    check_both("icontains", ",\"value\":\"\\uff21\\uff22\"", "\xef\xbd\x81\xef\xbd\x82", 1);      /* ＡＢ / ａｂ */
    check_both("icontains", ",\"value\":\"\\u0178\"", "\xc3\xbf", 1);                             /* Ÿ / ÿ */
    /* documented limits: no full folding, no normalisation */
    check_both("icontains", ",\"value\":\"STRASSE\"", "stra\xc3\x9f" "e", 0);                     /* straße */
    check_both("icontains", ",\"value\":\"caf\\u00e9\"", "CAFE\xcc\x81", 0);                      /* e + U+0301 */
    /* × (U+00D7) is not a letter and stays as is */
    check_both("icontains", ",\"value\":\"2\\u00d73\"", "2\xc3\x97" "3", 1);
    /* invalid UTF-8 is compared byte for byte, never crashes */
    check_both("icontains", ",\"value\":\"AB\"", "\xff\xc3(ab\xe2\x82", 1);
    /* folding keeps byte offsets of the original text */
    check_why("{\"type\":\"icontains\",\"value\":\"\\u00e9T\\u00e9\"}", "\xc3\x89T\xc3\x89 ok \xc3\x89t\xc3\xa9", 1,
              "at byte 0");
    /* co_utf8_fold directly */
    char s[] = "HeLLo \xc3\x80\xc3\x9e \xce\xa3 \xd0\xaf \xe1\xba\xa0 \xef\xbc\xba \xc4\xb0 \xf0\x9f\x98\x80 \xff";
    co_utf8_fold(s, strlen(s));
    assert_string_equal(s, "hello \xc3\xa0\xc3\xbe \xcf\x83 \xd1\x8f \xe1\xba\xa1 \xef\xbd\x9a \xc4\xb0 \xf0\x9f\x98\x80 \xff");
}

static void test_contains_any_all(void **state)
{
    (void)state;
    check_both("contains-any", ",\"value\":[\"cat\",\"dog\"]", "a dog barked", 1);
    check_both("contains-any", ",\"value\":[\"cat\",\"dog\"]", "a bird sang", 0);
    check_both("contains-any", ",\"value\":[\"cat\",\"dog\"]", "", 0);
    check_why("{\"type\":\"contains-any\",\"value\":[\"cat\",\"dog\"]}", "a bird", 0,
              "output contains none of \"cat\", \"dog\"");
    check_why("{\"type\":\"contains-any\",\"value\":[\"cat\",\"dog\"]}", "hotdog", 1, "output contains \"dog\" at byte 3");
    check_why("{\"type\":\"contains-any\",\"value\":[\"a1\",\"a2\",\"a3\",\"a4\",\"a5\",\"a6\",\"a7\"]}", "x", 0,
              "... (7 in all)");
    check_both("contains-all", ",\"value\":[\"cat\",\"dog\"]", "cat and dog", 1);
    check_both("contains-all", ",\"value\":[\"cat\",\"dog\"]", "cat only", 0);
    check_why("{\"type\":\"contains-all\",\"value\":[\"cat\",\"dog\",\"eel\"]}", "cat", 0,
              "output is missing \"dog\", \"eel\" (2 of 3)");
    check_why("{\"type\":\"contains-all\",\"value\":[\"cat\",\"dog\"]}", "dog cat", 1, "contains all 2 values");
    check_both("icontains-any", ",\"value\":[\"CAT\",\"DOG\"]", "A Dog", 1);
    check_both("icontains-any", ",\"value\":[\"CAT\",\"DOG\"]", "A Bird", 0);
    check_both("icontains-all", ",\"value\":[\"CAT\",\"dog\"]", "Cat & DOG", 1);
    check_both("icontains-all", ",\"value\":[\"CAT\",\"dog\"]", "Cat & frog", 0);
    check_both("icontains-all", ",\"value\":[\"\\u00c9T\\u00c9\",1]", "\xc3\xa9t\xc3\xa9 1", 1);
    /* bad values at load time */
    load_err("{\"type\":\"contains-any\",\"value\":\"cat,dog\"}",
             "contains-any: value must be a list of strings, got string (write [\"a\", \"b\"] or a YAML list)");
    load_err("{\"type\":\"contains-all\",\"value\":[]}", "contains-all: value must be a non-empty list");
    load_err("{\"type\":\"icontains-all\",\"value\":[\"a\",{}]}", "value[1] must be a string, got object");
    load_err("{\"type\":\"contains-any\",\"value\":[\"a\",\"\"]}", "value[1] must not be empty");
    load_err("{\"type\":\"contains-any\"}", "contains-any: needs a value");
}

static void test_regex(void **state)
{
    (void)state;
    check_both("regex", ",\"value\":\"^\\\\d{3}-\\\\d{4}$\"", "555-1234", 1);
    check_both("regex", ",\"value\":\"^\\\\d{3}-\\\\d{4}$\"", "555-12345", 0);
    check_both("regex", ",\"value\":\"(?i)as an ai\"", "As An AI model, I", 1);
    check_both("regex", ",\"value\":\"as an ai\"", "As An AI model, I", 0);
    check_both("regex", ",\"value\":\"^$\"", "", 1);
    check_both("regex", ",\"value\":\"x\"", "", 0);
    check_why("{\"type\":\"regex\",\"value\":\"[0-9]+\"}", "order 1234 shipped", 1,
              "output matches /[0-9]+/ at byte 6: \"1234\"");
    check_why("{\"type\":\"regex\",\"value\":\"^yes\"}", "no", 0, "output does not match /^yes/");
    /* multi-line output: ^ and $ anchor the whole text */
    check_both("regex", ",\"value\":\"^line2$\"", "line1\nline2", 0);
    check_both("regex", ",\"value\":\"line2$\"", "line1\nline2", 1);
    /* UTF-8 literal */
    check_both("regex", ",\"value\":\"caf\\u00e9s?\"", "deux caf\xc3\xa9s", 1);
    load_err("{\"type\":\"regex\",\"value\":\"(unclosed\"}", "regex: pattern \"(unclosed\" does not compile:");
    load_err("{\"type\":\"regex\",\"value\":\"(?<=a)b\"}", "lookaround");
    load_err("{\"type\":\"regex\",\"value\":[\"a\"]}", "regex: value must be a pattern string, got array");
    load_err("{\"type\":\"not-regex\"}", "not-regex: needs a value (the pattern)");
}

/* ---- huge outputs ------------------------------------------------------------------ */

static void test_huge_output(void **state)
{
    (void)state;
    size_t n = 8u << 20;
    char *big = malloc(n + 1);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 23);
    memcpy(big + n - 6, "NEEDLE", 6);
    big[n] = '\0';
    co_assert_input in = {.output = big, .output_len = n};
    free(eval_in("{\"type\":\"contains\",\"value\":\"NEEDLE\"}", NULL, &in, 1));
    free(eval_in("{\"type\":\"icontains\",\"value\":\"needle\"}", NULL, &in, 1));
    free(eval_in("{\"type\":\"not-contains\",\"value\":\"zzzz\"}", NULL, &in, 1));
    free(eval_in("{\"type\":\"regex\",\"value\":\"NEEDLE$\"}", NULL, &in, 1));
    free(eval_in("{\"type\":\"contains-all\",\"value\":[\"abc\",\"NEEDLE\"]}", NULL, &in, 1));
    free(eval_in("{\"type\":\"is-json\"}", NULL, &in, 0));
    free(eval_in("{\"type\":\"contains-json\"}", NULL, &in, 0));
    char *r = eval_in("{\"type\":\"equals\",\"value\":\"abc\"}", NULL, &in, 0);
    assert_true(strlen(r) < 1000); /* reasons quote excerpts, not the output */
    free(r);
    /* levenshtein against a short value fails fast on the length difference */
    clock_t t0 = clock();
    free(eval_in("{\"type\":\"levenshtein\",\"value\":\"abc\",\"threshold\":10}", NULL, &in, 0));
    assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 2.0);
    /* a JSON document at the end of megabytes of prose */
    memcpy(big + n - 20, "{\"found\": [1, 2, 3]}", 20);
    free(eval_in("{\"type\":\"contains-json\",\"value\":{\"found\":[1,2,3]}}", NULL, &in, 1));
    /* pathological: megabytes of unclosed brackets end (bounded work), no match */
    memset(big, '[', n);
    clock_t t1 = clock();
    free(eval_in("{\"type\":\"contains-json\"}", NULL, &in, 0));
    assert_true((double)(clock() - t1) / CLOCKS_PER_SEC < 20.0);
    free(big);
}

/* ---- JSON assertions ------------------------------------------------------------- */

static void test_is_json(void **state)
{
    (void)state;
    check_both("is-json", "", "{\"a\": 1}", 1);
    check_both("is-json", "", "  [1, 2]\n", 1);
    check_both("is-json", "", "42", 1);
    check_both("is-json", "", "\"str\"", 1);
    check_both("is-json", "", "", 0);
    check_both("is-json", "", "{\"a\": 1", 0);
    check_both("is-json", "", "{\"a\": 1} trailing", 0);
    check_both("is-json", "", "```json\n{\"a\": 1}\n```", 0);
    check_why("{\"type\":\"is-json\"}", "{\"a\":1}", 1, "output is valid JSON (object)");
    check_why("{\"type\":\"is-json\"}", "{'a':1}", 0, "output is not valid JSON: ");
    /* with a schema (promptfoo's is-json value) */
    const char *sch = ",\"value\":{\"type\":\"object\",\"required\":[\"name\"],\"properties\":{\"name\":{\"type\":\"string\"}}}";
    check_both("is-json", sch, "{\"name\":\"Ada\"}", 1);
    check_both("is-json", sch, "{\"name\":7}", 0);
    char def[512];
    snprintf(def, sizeof def, "{\"type\":\"is-json\"%s}", sch);
    check_why(def, "{}", 0, "output JSON does not match the schema: (root): missing required property 'name'");
    load_err("{\"type\":\"is-json\",\"value\":\"object\"}", "is-json: value, when given, is a JSON Schema");
    load_err("{\"type\":\"is-json\",\"value\":{\"type\":\"obj\"}}",
             WHERE ": is-json: schema /type: unknown type 'obj'");
}

static void test_contains_json(void **state)
{
    (void)state;
    check_both("contains-json", "", "Here you go:\n```json\n{\"a\": 1}\n```\nAnything else?", 1);
    check_both("contains-json", "", "The list is [1, 2, 3].", 1);
    check_both("contains-json", "", "{\"a\": 1}", 1);
    check_both("contains-json", "", "no json {here} or [there", 0);
    check_both("contains-json", "", "", 0);
    check_both("contains-json", "", "the answer is 42", 0); /* scalars in prose are not JSON documents */
    check_why("{\"type\":\"contains-json\"}", "x {\"a\": 1}", 1, "output contains a JSON object at byte 2");
    check_why("{\"type\":\"contains-json\"}", "nothing", 0, "output contains no JSON object or array");
    /* broken JSON before a valid one */
    check_both("contains-json", "", "{\"a\": oops} then {\"b\": 2}", 1);
    /* with an expected value: subset match for objects */
    const char *v = ",\"value\":{\"name\":\"Ada\",\"langs\":[\"en\",\"fr\"]}";
    check_both("contains-json", v, "```json\n{\"name\": \"Ada\", \"age\": 36, \"langs\": [\"en\", \"fr\"]}\n```", 1);
    check_both("contains-json", v, "{\"name\": \"Ada\", \"langs\": [\"en\"]}", 0);
    check_both("contains-json", v, "{\"name\": \"Bob\", \"langs\": [\"en\", \"fr\"]}", 0);
    /* the second JSON value matches */
    check_both("contains-json", ",\"value\":{\"id\":2}", "first {\"id\":1} then {\"id\":2.0,\"x\":true}", 1);
    check_why("{\"type\":\"contains-json\",\"value\":{\"user\":{\"id\":2}}}", "got {\"user\":{\"id\":1}} ok", 0,
              "output contains 1 JSON value, none matching the expected value (the first, at byte 4: at /user/id: "
              "expected 2, got 1)");
    check_why("{\"type\":\"contains-json\",\"value\":{\"a\":1}}", "{\"b\":1}", 0, "at /a: missing");
    /* nested objects in an array, subset inside items */
    check_both("contains-json", ",\"value\":[{\"id\":1},{\"id\":2}]", "[{\"id\":1,\"n\":\"a\"},{\"id\":2,\"n\":\"b\"}]", 1);
    check_both("contains-json", ",\"value\":[{\"id\":1}]", "[{\"id\":1},{\"id\":2}]", 0);
    /* unicode and escapes inside */
    check_both("contains-json", ",\"value\":{\"city\":\"Z\\u00fcrich\"}", "-> {\"city\": \"Z\\u00fcrich\"}", 1);
    check_both("contains-json", ",\"value\":{\"city\":\"Z\\u00fcrich\"}", "-> {\"city\": \"Z\xc3\xbcrich\"}", 1);
    /* the value's own JSON is what is looked for, not a schema */
    check_both("contains-json", ",\"value\":{\"type\":\"object\"}", "{\"a\":1}", 0);
    load_err("{\"type\":\"contains-json\",\"value\":\"{\\\"a\\\":1}\"}",
             "contains-json: value, when given, is the JSON object or array expected in the output, got string");
    load_err("{\"type\":\"contains-json\",\"value\":3}", "got integer");
}

static void test_json_schema(void **state)
{
    (void)state;
    const char *sch = ",\"value\":{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\",\"items\":{"
                      "\"type\":\"object\",\"required\":[\"price\"],\"properties\":{\"price\":{\"type\":\"number\","
                      "\"minimum\":0}}}}},\"required\":[\"items\"],\"additionalProperties\":false}";
    check_both("json-schema", sch, "{\"items\":[{\"price\":1},{\"price\":0.5}]}", 1);
    check_both("json-schema", sch, "{\"items\":[]}", 1);
    check_both("json-schema", sch, "{\"items\":[{\"price\":\"1\"}]}", 0);
    check_both("json-schema", sch, "not json", 0);
    check_both("json-schema", sch, "", 0);
    char def[1024];
    snprintf(def, sizeof def, "{\"type\":\"json-schema\"%s}", sch);
    check_why(def, "{\"items\":[{\"price\":1},{\"price\":2},{\"price\":\"3\"}]}", 0,
              "/items/2/price: expected number, got string");
    check_why(def, "{\"items\":[{\"price\":-1}],\"extra\":1}", 0,
              "/items/0/price: -1 is less than minimum 0; (root): property 'extra' is not allowed "
              "(additionalProperties is false)");
    check_why(def, "{\"items\":[]}", 1, "output is JSON (object) that matches the schema");
    check_why(def, "[1", 0, "output is not valid JSON");
    load_err("{\"type\":\"json-schema\"}", "json-schema: needs a value (the JSON Schema)");
    load_err("{\"type\":\"json-schema\",\"value\":\"string\"}", "json-schema: value must be a JSON Schema");
    load_err("{\"type\":\"json-schema\",\"value\":{\"if\":{}}}",
             WHERE ": json-schema: schema /if: unsupported keyword 'if'");
    load_err("{\"type\":\"json-schema\",\"value\":{\"properties\":{\"a\":{\"minLenght\":1}}}}",
             "schema /properties/a/minLenght: unsupported keyword 'minLenght' (did you mean 'minLength'?)");
}

/* ---- tools ---------------------------------------------------------------------------- */

static const char *tools_json =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"d\",\"parameters\":{"
    "\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"},\"unit\":{\"enum\":[\"c\",\"f\"]}},"
    "\"required\":[\"city\"],\"additionalProperties\":false}}},"
    "{\"name\":\"get_time\",\"input_schema\":{\"type\":\"object\",\"properties\":{\"tz\":{\"type\":\"string\"}}}},"
    "{\"name\":\"ping\"},"
    "{\"name\":\"lookup\",\"parameters\":\"{\\\"type\\\":\\\"object\\\",\\\"required\\\":[\\\"q\\\"]}\"}]";

static char *tools_eval(const char *calls, int want_pass)
{
    json_t *tools = parse(tools_json);
    json_t *tc = calls ? parse(calls) : NULL;
    co_assert_opts opts = {.tools = tools};
    co_assert_input in = {.output = "", .output_len = 0, .tool_calls = tc};
    char *r = eval_in("{\"type\":\"is-valid-openai-tools-call\"}", &opts, &in, want_pass);
    co_assert_input in2 = in;
    free(eval_in("{\"type\":\"not-is-valid-openai-tools-call\"}", &opts, &in2, !want_pass));
    json_decref(tools);
    json_decref(tc);
    return r;
}

static void tools_check(const char *calls, int want_pass, const char *why)
{
    char *r = tools_eval(calls, want_pass);
    if (!strstr(r, why))
        fail_msg("tool calls %s: reason \"%s\" lacks \"%s\"", calls ? calls : "(none)", r, why);
    free(r);
}

static void test_tools_call(void **state)
{
    (void)state;
    tools_check("[{\"id\":\"c1\",\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\",\\\"unit\\\":\\\"c\\\"}\"}]",
                1, "1 tool call, each naming an offered tool with valid arguments (get_weather)");
    /* OpenAI's wire shape, an Anthropic-style tool, a tool without parameters, parsed arguments */
    tools_check("[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"arguments\":\"{}\"}},"
                "{\"id\":\"c2\",\"name\":\"ping\",\"arguments\":\"{\\\"anything\\\":[1]}\"},"
                "{\"id\":\"c3\",\"name\":\"lookup\",\"arguments\":{\"q\":\"x\"}}]",
                1, "3 tool calls");
    tools_check(NULL, 0, "output has no tool calls");
    tools_check("[]", 0, "output has no tool calls");
    tools_check("[{\"id\":\"c1\",\"name\":\"get_wether\",\"arguments\":\"{}\"}]", 0,
                "tool call 0 names 'get_wether', which the case does not offer (offered: get_weather, get_time, ping, "
                "lookup)");
    tools_check("[{\"id\":\"c1\",\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\"}]", 0,
                "tool call 0 (get_weather): arguments are not valid JSON");
    tools_check("[{\"id\":\"c1\",\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":7}\"}]", 0,
                "tool call 0 (get_weather): arguments do not match its parameters: /city: expected string, got integer");
    tools_check("[{\"id\":\"c1\",\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"x\\\",\\\"unit\\\":\\\"k\\\"}\"}]",
                0, "/unit: \"k\" is not one of [\"c\",\"f\"]");
    tools_check("[{\"id\":\"c1\",\"name\":\"get_weather\",\"arguments\":\"\"}]", 0,
                "(root): missing required property 'city'"); /* "" counts as {} */
    tools_check("[{\"id\":\"c1\",\"name\":\"ping\",\"arguments\":\"[1]\"}]", 0,
                "arguments must be a JSON object, got array");
    tools_check("[{\"id\":\"c1\",\"name\":\"ping\"},{\"id\":\"c2\",\"arguments\":\"{}\"}]", 0, "tool call 1 has no name");
    /* the second call is the bad one */
    tools_check("[{\"id\":\"a\",\"name\":\"ping\",\"arguments\":\"{}\"},"
                "{\"id\":\"b\",\"name\":\"lookup\",\"arguments\":\"{}\"}]",
                0, "tool call 1 (lookup): arguments do not match its parameters: (root): missing required property 'q'");
    /* malformed input: tool_calls not an array */
    json_t *tools = parse(tools_json), *bad = parse("{\"name\":\"ping\"}");
    co_assert_opts opts = {.tools = tools};
    co_assertion *a = mk_opts("{\"type\":\"is-valid-openai-tools-call\"}", &opts);
    co_assert_input in = {.tool_calls = bad};
    co_assert_result r;
    assert_int_equal(co_assertion_eval(a, &in, &r), CO_EINVAL);
    co_assert_result_free(&r);
    co_assertion_free(a);
    json_decref(bad);
    /* load errors */
    load_err("{\"type\":\"is-valid-openai-tools-call\"}", "the case offers no tools");
    json_t *empty = parse("[]");
    co_assert_opts eo = {.tools = empty};
    load_err_opts("{\"type\":\"is-valid-openai-tools-call\"}", &eo, "the case offers no tools");
    json_decref(empty);
    load_err_opts("{\"type\":\"is-valid-openai-tools-call\",\"value\":1}", &opts, "takes no value");
    json_t *badtools = parse("[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\","
                             "\"properties\":{\"a\":{\"type\":\"strng\"}}}}}]");
    co_assert_opts bo = {.tools = badtools};
    load_err_opts("{\"type\":\"is-valid-openai-tools-call\"}", &bo,
                  "is-valid-openai-tools-call: tool 'f' parameters: schema /properties/a/type: unknown type 'strng' "
                  "(did you mean 'string'?)");
    json_decref(badtools);
    json_t *noname = parse("[{\"type\":\"function\",\"function\":{\"parameters\":{}}}]");
    co_assert_opts no = {.tools = noname};
    load_err_opts("{\"type\":\"is-valid-openai-tools-call\"}", &no, "tools[0] has no name");
    json_decref(noname);
    json_t *badtext = parse("[{\"name\":\"f\",\"parameters\":\"{oops\"}]");
    co_assert_opts bt = {.tools = badtext};
    load_err_opts("{\"type\":\"is-valid-openai-tools-call\"}", &bt, "tool 'f': parameters are not valid JSON");
    json_decref(badtext);
    json_decref(tools);
}

/* ---- levenshtein ------------------------------------------------------------------------- */

/* Plain full-matrix Levenshtein on code points, for cross-checking. */
static size_t naive_lev(const uint32_t *a, size_t n, const uint32_t *b, size_t m)
{
    size_t *d = malloc((n + 1) * (m + 1) * sizeof *d);
    for (size_t i = 0; i <= n; i++)
        d[i * (m + 1)] = i;
    for (size_t j = 0; j <= m; j++)
        d[j] = j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            size_t v = d[(i - 1) * (m + 1) + j - 1] + (a[i - 1] != b[j - 1]);
            if (d[(i - 1) * (m + 1) + j] + 1 < v)
                v = d[(i - 1) * (m + 1) + j] + 1;
            if (d[i * (m + 1) + j - 1] + 1 < v)
                v = d[i * (m + 1) + j - 1] + 1;
            d[i * (m + 1) + j] = v;
        }
    size_t r = d[n * (m + 1) + m];
    free(d);
    return r;
}

static size_t lev(const char *a, const char *b, size_t max)
{
    size_t d = 12345;
    assert_int_equal(co_levenshtein(a, strlen(a), b, strlen(b), max, &d), 0);
    return d;
}

static void test_levenshtein(void **state)
{
    (void)state;
    assert_int_equal(lev("kitten", "sitting", 10), 3);
    assert_int_equal(lev("sitting", "kitten", 10), 3);
    assert_int_equal(lev("flaw", "lawn", 10), 2);
    assert_int_equal(lev("", "abc", 10), 3);
    assert_int_equal(lev("abc", "", 10), 3);
    assert_int_equal(lev("", "", 0), 0);
    assert_int_equal(lev("same", "same", 0), 0);
    assert_int_equal(lev("kitten", "sitting", 2), 3); /* beyond max: max + 1 */
    assert_int_equal(lev("kitten", "sitting", 3), 3);
    assert_int_equal(lev("a", "abcdefgh", 3), 4);
    /* code points, not bytes: é vs e is one edit, 日本 vs 日本語 one */
    assert_int_equal(lev("caf\xc3\xa9", "cafe", 5), 1);
    assert_int_equal(lev("\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 5), 1);
    assert_int_equal(lev("\xf0\x9f\x98\x80", "\xf0\x9f\x98\x81", 5), 1);
    /* invalid bytes count one each */
    assert_int_equal(lev("a\xff" "b", "ab", 5), 1);
    /* cross-check the banded algorithm against the full matrix */
    srand(7);
    for (int t = 0; t < 500; t++) {
        uint32_t a[24], b[24];
        char sa[24 * 2 + 1], sb[24 * 2 + 1];
        size_t n = (size_t)(rand() % 20), m = (size_t)(rand() % 20), pa = 0, pb = 0;
        for (size_t i = 0; i < n; i++) {
            int k = rand() % 4;
            a[i] = k == 3 ? 0xE9 : (uint32_t)('a' + k);
            if (a[i] == 0xE9) {
                sa[pa++] = (char)0xC3;
                sa[pa++] = (char)0xA9;
            } else {
                sa[pa++] = (char)a[i];
            }
        }
        for (size_t i = 0; i < m; i++) {
            int k = rand() % 4;
            b[i] = k == 3 ? 0xE9 : (uint32_t)('a' + k);
            if (b[i] == 0xE9) {
                sb[pb++] = (char)0xC3;
                sb[pb++] = (char)0xA9;
            } else {
                sb[pb++] = (char)b[i];
            }
        }
        sa[pa] = sb[pb] = '\0';
        size_t want = naive_lev(a, n, b, m);
        for (size_t max = 0; max <= 21; max += 3) {
            size_t got = lev(sa, sb, max);
            size_t exp = want <= max ? want : max + 1;
            if (got != exp)
                fail_msg("lev(\"%s\", \"%s\", max %zu) = %zu, want %zu", sa, sb, max, got, exp);
        }
    }
    /* long inputs with a small threshold are cheap (banded), in bounded memory */
    size_t n = 2u << 20;
    char *x = malloc(n + 1), *y = malloc(n + 1);
    memset(x, 'a', n);
    memset(y, 'a', n);
    x[n] = y[n] = '\0';
    y[n / 2] = 'b';
    size_t d = 0;
    assert_int_equal(co_levenshtein(x, n, y, n, 3, &d), 0);
    assert_int_equal(d, 1);
    /* and a comparison that would take too long is refused, not run */
    assert_int_equal(co_levenshtein(x, n, y, n, n, &d), CO_ETOOBIG);
    free(x);
    free(y);

    /* the assertion */
    check_both("levenshtein", ",\"value\":\"Hello world\"", "Hello world", 1);
    check_both("levenshtein", ",\"value\":\"Hello world\"", "Helo wrld", 1);        /* default threshold 5 */
    check_both("levenshtein", ",\"value\":\"Hello world\"", "Goodbye all", 0);
    check_both("levenshtein", ",\"value\":\"Hello world\",\"threshold\":1", "Helo wrld", 0);
    check_both("levenshtein", ",\"value\":\"Hello world\",\"threshold\":2", "Helo wrld", 1);
    check_both("levenshtein", ",\"value\":\"Hello world\",\"threshold\":2.9", "Helo wrld", 1);
    check_both("levenshtein", ",\"value\":\"abc\",\"threshold\":0", "abc", 1);
    check_both("levenshtein", ",\"value\":\"abc\",\"threshold\":0", "abd", 0);
    check_both("levenshtein", ",\"value\":\"abc\",\"threshold\":3", "", 1);
    check_both("levenshtein", ",\"value\":\"\\u00e9t\\u00e9\",\"threshold\":1", "\xc3\xa9t\xc3\xa8", 1);
    check_why("{\"type\":\"levenshtein\",\"value\":\"kitten\",\"threshold\":5}", "sitting", 1,
              "edit distance 3 <= 5 from \"kitten\"");
    check_why("{\"type\":\"levenshtein\",\"value\":\"kitten\",\"threshold\":2}", "sitting", 0,
              "edit distance > 2 from \"kitten\"");
    load_err("{\"type\":\"levenshtein\"}", "levenshtein: needs a value");
    load_err("{\"type\":\"levenshtein\",\"value\":{}}", "levenshtein: value must be a string, got object");
    load_err("{\"type\":\"levenshtein\",\"value\":\"a\",\"threshold\":-1}", "threshold must not be negative");
    load_err("{\"type\":\"levenshtein\",\"value\":\"a\",\"threshold\":\"3\"}", "threshold must be a number, got string");
}

/* ---- latency, cost ---------------------------------------------------------------------------- */

static void test_latency_cost(void **state)
{
    (void)state;
    co_assert_input in = {.output = "ok", .output_len = 2, .has_latency = 1, .latency_ms = 850, .has_cost = 1,
                          .cost_usd = 0.0042};
    char *r = eval_in("{\"type\":\"latency\",\"threshold\":1000}", NULL, &in, 1);
    assert_string_equal(r, "latency 850 ms <= 1000 ms");
    free(r);
    r = eval_in("{\"type\":\"latency\",\"threshold\":500}", NULL, &in, 0);
    assert_string_equal(r, "latency 850 ms > 500 ms");
    free(r);
    free(eval_in("{\"type\":\"latency\",\"threshold\":850}", NULL, &in, 1));
    free(eval_in("{\"type\":\"not-latency\",\"threshold\":500}", NULL, &in, 1));
    r = eval_in("{\"type\":\"cost\",\"threshold\":0.01}", NULL, &in, 1);
    assert_string_equal(r, "cost $0.0042 <= $0.01");
    free(r);
    free(eval_in("{\"type\":\"cost\",\"threshold\":0.001}", NULL, &in, 0));
    free(eval_in("{\"type\":\"not-cost\",\"threshold\":0.001}", NULL, &in, 1));
    /* zero is a real measurement */
    co_assert_input zero = {.has_latency = 1, .latency_ms = 0, .has_cost = 1, .cost_usd = 0};
    free(eval_in("{\"type\":\"cost\",\"threshold\":0}", NULL, &zero, 1));
    /* unknown: an error, never a pass, negated or not */
    co_assert_input unk = {.output = "ok", .output_len = 2};
    co_assertion *a = mk("{\"type\":\"not-latency\",\"threshold\":1}");
    co_assert_result res;
    assert_int_equal(co_assertion_eval(a, &unk, &res), 0);
    assert_int_equal(res.pass, 0);
    assert_int_equal(res.error, 1);
    assert_true(res.score == 0);
    assert_string_equal(res.reason, "latency unknown");
    co_assert_result_free(&res);
    co_assertion_free(a);
    a = mk("{\"type\":\"cost\",\"threshold\":1}");
    assert_int_equal(co_assertion_eval(a, &unk, &res), 0);
    assert_int_equal(res.error, 1);
    assert_string_equal(res.reason, "cost unknown");
    co_assert_result_free(&res);
    co_assertion_free(a);
    load_err("{\"type\":\"latency\"}", "latency: needs a threshold (the most milliseconds allowed)");
    load_err("{\"type\":\"cost\"}", "cost: needs a threshold (the most USD allowed)");
    load_err("{\"type\":\"latency\",\"value\":100}", "latency: takes no value: give the limit as threshold (ms)");
}

/* ---- llm-rubric ---------------------------------------------------------------------------------- */

typedef struct judge_state {
    int calls;
    int pass;
    double score;
    const char *reason;
    int fail;
    char rubric[128];
    char output[128];
} judge_state;

static int fake_judge(void *ud, const char *rubric, const char *output, int *pass, double *score, char **reason)
{
    judge_state *j = ud;
    j->calls++;
    snprintf(j->rubric, sizeof j->rubric, "%s", rubric);
    snprintf(j->output, sizeof j->output, "%s", output);
    *reason = j->reason ? strdup(j->reason) : NULL;
    if (j->fail)
        return co_error_set(CO_EUPSTREAM, "judge model returned 503");
    *pass = j->pass;
    *score = j->score;
    return 0;
}

static void test_llm_rubric(void **state)
{
    (void)state;
    judge_state js = {.pass = 1, .score = 0.9, .reason = "polite and cites a source"};
    co_assert_opts opts = {.judge = fake_judge, .judge_ud = &js};
    co_assert_input in = text_input("Thanks! See [1].");
    char *r = eval_in("{\"type\":\"llm-rubric\",\"value\":\"is polite\"}", &opts, &in, 1);
    assert_string_equal(r, "polite and cites a source");
    assert_string_equal(js.rubric, "is polite");
    assert_string_equal(js.output, "Thanks! See [1].");
    free(r);
    /* score kept as is (not 0/1), negation flips it */
    co_assertion *a = mk_opts("{\"type\":\"not-llm-rubric\",\"value\":\"is rude\"}", &opts);
    co_assert_result res;
    assert_int_equal(co_assertion_eval(a, &in, &res), 0);
    assert_int_equal(res.pass, 0);
    assert_true(fabs(res.score - 0.1) < 1e-9);
    co_assert_result_free(&res);
    co_assertion_free(a);
    /* threshold */
    js.score = 0.6;
    r = eval_in("{\"type\":\"llm-rubric\",\"value\":\"is polite\",\"threshold\":0.7}", &opts, &in, 0);
    assert_string_equal(r, "score 0.60 below threshold 0.70: polite and cites a source");
    free(r);
    free(eval_in("{\"type\":\"llm-rubric\",\"value\":\"is polite\",\"threshold\":0.6}", &opts, &in, 1));
    /* judge says fail */
    js.pass = 0;
    js.score = 0.2;
    js.reason = NULL;
    r = eval_in("{\"type\":\"llm-rubric\",\"value\":\"is polite\"}", &opts, &in, 0);
    assert_string_equal(r, "the judge failed it");
    free(r);
    /* out-of-range scores are clamped */
    js.pass = 1;
    js.score = 7;
    a = mk_opts("{\"type\":\"llm-rubric\",\"value\":\"x\"}", &opts);
    assert_int_equal(co_assertion_eval(a, &in, &res), 0);
    assert_true(res.score == 1);
    co_assert_result_free(&res);
    js.score = NAN;
    assert_int_equal(co_assertion_eval(a, &in, &res), 0);
    assert_true(res.score == 0);
    co_assert_result_free(&res);
    /* judge error: an error result (reason freed, no leak), even when negated */
    js.fail = 1;
    js.reason = "partial";
    assert_int_equal(co_assertion_eval(a, &in, &res), 0);
    assert_int_equal(res.pass, 0);
    assert_int_equal(res.error, 1);
    assert_string_equal(res.reason, "judge failed: judge model returned 503");
    co_assert_result_free(&res);
    co_assertion_free(a);
    a = mk_opts("{\"type\":\"not-llm-rubric\",\"value\":\"x\"}", &opts);
    assert_int_equal(co_assertion_eval(a, &in, &res), 0);
    assert_int_equal(res.pass, 0);
    assert_int_equal(res.error, 1);
    co_assert_result_free(&res);
    /* a per-call judge overrides the load-time one */
    judge_state other = {.pass = 1, .score = 1, .reason = "other judge"};
    co_assert_input in2 = in;
    in2.judge = fake_judge;
    in2.judge_ud = &other;
    assert_int_equal(co_assertion_eval(a, &in2, &res), 0);
    assert_int_equal(other.calls, 1);
    assert_int_equal(res.pass, 0); /* negated */
    assert_string_equal(res.reason, "other judge");
    co_assert_result_free(&res);
    co_assertion_free(a);
    /* load errors */
    load_err("{\"type\":\"llm-rubric\",\"value\":\"is polite\"}",
             "llm-rubric: needs a judge model, and none is configured");
    load_err_opts("{\"type\":\"llm-rubric\"}", &opts, "llm-rubric: needs a value (the rubric)");
    load_err_opts("{\"type\":\"llm-rubric\",\"value\":\"\"}", &opts, "non-empty rubric string, got an empty string");
    load_err_opts("{\"type\":\"llm-rubric\",\"value\":\"x\",\"threshold\":1.5}", &opts,
                  "threshold is a score between 0 and 1");
}

/* ---- sets, weights, case results --------------------------------------------------------------------- */

static co_assert_set *mkset(const char *defs, const co_assert_opts *opts)
{
    json_t *j = parse(defs);
    co_assert_set *s = NULL;
    assert_int_equal(co_assert_set_new(&s), 0);
    if (co_assert_set_add_list(s, j, WHERE, opts))
        fail_msg("%s did not load: %s", defs, co_error_last());
    json_decref(j);
    return s;
}

static void test_case_result(void **state)
{
    (void)state;
    co_assert_set *s = mkset("[{\"type\":\"contains\",\"value\":\"Paris\",\"weight\":3},"
                             "{\"type\":\"icontains\",\"value\":\"FRANCE\"},"
                             "{\"type\":\"not-contains\",\"value\":\"sorry\",\"metric\":\"tone\"}]",
                             NULL);
    assert_int_equal(co_assert_set_len(s), 3);
    assert_string_equal(co_assertion_type(co_assert_set_get(s, 2)), "not-contains");
    assert_string_equal(co_assertion_metric(co_assert_set_get(s, 2)), "tone");
    assert_null(co_assertion_metric(co_assert_set_get(s, 0)));
    assert_true(co_assertion_weight(co_assert_set_get(s, 0)) == 3);
    assert_true(co_assertion_weight(co_assert_set_get(s, 1)) == 1);
    assert_int_equal(co_assertion_negated(co_assert_set_get(s, 2)), 1);
    assert_null(co_assert_set_get(s, 3));

    co_assert_input in = text_input("Paris is in France.");
    co_assert_case_result cr;
    assert_int_equal(co_assert_set_eval(s, &in, &cr), 0);
    assert_int_equal(cr.pass, 1);
    assert_int_equal(cr.n, 3);
    assert_int_equal(cr.n_failed, 0);
    assert_true(cr.score == 1);
    co_assert_case_result_free(&cr);

    in = text_input("sorry, Paris.");
    assert_int_equal(co_assert_set_eval(s, &in, &cr), 0);
    assert_int_equal(cr.pass, 0);             /* every assertion must pass */
    assert_int_equal(cr.n_failed, 2);
    assert_true(fabs(cr.score - 0.6) < 1e-9); /* (3*1 + 1*0 + 1*0) / 5 */
    assert_int_equal(cr.v[0].pass, 1);
    assert_true(cr.v[0].weight == 3);
    assert_int_equal(cr.v[1].pass, 0);
    assert_int_equal(cr.v[2].pass, 0);
    assert_string_equal(cr.v[2].reason, "output contains \"sorry\" at byte 0");
    co_assert_case_result_free(&cr);
    co_assert_set_free(s);

    /* weight 0: not in the score, still must pass */
    s = mkset("[{\"type\":\"contains\",\"value\":\"a\"},{\"type\":\"contains\",\"value\":\"zzz\",\"weight\":0}]", NULL);
    in = text_input("abc");
    assert_int_equal(co_assert_set_eval(s, &in, &cr), 0);
    assert_int_equal(cr.pass, 0);
    assert_true(cr.score == 1);
    co_assert_case_result_free(&cr);
    co_assert_set_free(s);

    /* all weights 0 */
    s = mkset("[{\"type\":\"contains\",\"value\":\"a\",\"weight\":0}]", NULL);
    assert_int_equal(co_assert_set_eval(s, &in, &cr), 0);
    assert_int_equal(cr.pass, 1);
    assert_true(cr.score == 1);
    co_assert_case_result_free(&cr);
    co_assert_set_free(s);

    /* an empty set passes */
    s = mkset("[]", NULL);
    assert_int_equal(co_assert_set_eval(s, &in, &cr), 0);
    assert_int_equal(cr.pass, 1);
    assert_true(cr.score == 1);
    assert_int_equal(cr.n, 0);
    co_assert_case_result_free(&cr);
    co_assert_set_free(s);

    /* rubric scores in the weighted mean; errors counted */
    judge_state js = {.pass = 1, .score = 0.5};
    co_assert_opts opts = {.judge = fake_judge, .judge_ud = &js};
    s = mkset("[{\"type\":\"llm-rubric\",\"value\":\"r\",\"weight\":2},{\"type\":\"is-json\"},"
              "{\"type\":\"json-schema\",\"value\":{\"type\":\"object\"}},{\"type\":\"latency\",\"threshold\":10}]",
              &opts);
    in = text_input("{\"a\":1}");
    assert_int_equal(co_assert_set_eval(s, &in, &cr), 0);
    assert_int_equal(cr.pass, 0);
    assert_int_equal(cr.n_failed, 1);
    assert_int_equal(cr.n_errors, 1);
    assert_true(fabs(cr.score - (2 * 0.5 + 1 + 1 + 0) / 5.0) < 1e-9);
    co_assert_case_result_free(&cr);
    in.has_latency = 1;
    in.latency_ms = 3;
    assert_int_equal(co_assert_set_eval(s, &in, &cr), 0);
    assert_int_equal(cr.pass, 1);
    assert_int_equal(cr.n_errors, 0);
    co_assert_case_result_free(&cr);
    /* the same compiled set evaluates many outputs */
    for (int i = 0; i < 50; i++) {
        in = text_input(i % 2 ? "[1]" : "nope");
        in.has_latency = 1;
        assert_int_equal(co_assert_set_eval(s, &in, &cr), 0);
        assert_int_equal(cr.pass, 0);
        co_assert_case_result_free(&cr);
    }
    co_assert_set_free(s);

    /* NULL output is "" */
    s = mkset("[{\"type\":\"equals\",\"value\":\"\"},{\"type\":\"not-contains-json\"}]", NULL);
    co_assert_input none = {0};
    assert_int_equal(co_assert_set_eval(s, &none, &cr), 0);
    assert_int_equal(cr.pass, 1);
    co_assert_case_result_free(&cr);
    co_assert_set_free(s);

    /* add_list names the failing item; items before it stay */
    assert_int_equal(co_assert_set_new(&s), 0);
    json_t *defs = parse("[{\"type\":\"contains\",\"value\":\"a\"},{\"type\":\"contians\",\"value\":\"b\"}]");
    assert_int_equal(co_assert_set_add_list(s, defs, WHERE, NULL), CO_EINVAL);
    assert_string_equal(co_error_last(),
                        WHERE ": assert[1]: unknown assertion type 'contians' (did you mean 'contains'?)");
    assert_int_equal(co_assert_set_len(s), 1);
    json_decref(defs);
    defs = parse("{\"type\":\"contains\"}");
    assert_int_equal(co_assert_set_add_list(s, defs, WHERE, NULL), CO_EINVAL);
    assert_non_null(strstr(co_error_last(), "assert must be a list"));
    json_decref(defs);
    co_assert_set_free(s);
}

/* ---- load errors ---------------------------------------------------------------------------------------- */

static void test_load_errors(void **state)
{
    (void)state;
    load_err("{\"type\":\"contians\",\"value\":\"x\"}", "unknown assertion type 'contians' (did you mean 'contains'?)");
    load_err("{\"type\":\"not-icontain\",\"value\":\"x\"}",
             "unknown assertion type 'not-icontain' (did you mean 'not-icontains'?)");
    load_err("{\"type\":\"is_json\"}", "(did you mean 'is-json'?)");
    load_err("{\"type\":\"levenstein\",\"value\":\"x\"}", "(did you mean 'levenshtein'?)");
    load_err("{\"type\":\"startswith\",\"value\":\"x\"}", "(did you mean 'starts-with'?)");
    load_err("{\"type\":\"frobnicate\"}", "unknown assertion type 'frobnicate' (known: equals, contains");
    load_err("{\"type\":\"similar\",\"value\":\"x\"}", "assertion type 'similar' is a promptfoo type cutover does not support");
    load_err("{\"type\":\"not-javascript\",\"value\":\"x\"}", "'not-javascript' is a promptfoo type cutover does not support");
    load_err("{\"value\":\"x\"}", "assertion has no type");
    load_err("{\"type\":3}", "assertion type must be a string, got integer");
    load_err("[\"contains\"]", "an assertion must be an object with a type, got array");
    load_err("{\"type\":\"contains\",\"value\":\"x\",\"thresold\":1}",
             "contains: unknown key 'thresold' (did you mean 'threshold'?)");
    load_err("{\"type\":\"contains\",\"value\":\"x\",\"bogus\":1}", "unknown key 'bogus' (an assertion has type");
    load_err("{\"type\":\"contains\",\"value\":\"x\",\"transform\":\"output.trim()\"}",
             "contains: 'transform' is a promptfoo option cutover does not support");
    load_err("{\"type\":\"llm-rubric\",\"value\":\"x\",\"provider\":\"openai:gpt-4o\"}", "'provider' is a promptfoo option");
    load_err("{\"type\":\"contains\",\"value\":\"x\",\"weight\":-1}", "contains: weight must be a number >= 0, got a negative number");
    load_err("{\"type\":\"contains\",\"value\":\"x\",\"weight\":\"2\"}", "weight must be a number >= 0, got string");
    load_err("{\"type\":\"contains\",\"value\":\"x\",\"threshold\":0.5}",
             "contains: threshold does not apply to contains (only levenshtein, latency, cost and llm-rubric");
    load_err("{\"type\":\"not-regex\",\"value\":\"x\",\"threshold\":1}", "not-regex: threshold does not apply to regex");
    load_err("{\"type\":\"contains\"}", "contains: needs a value");
    load_err("{\"type\":\"contains\",\"value\":\"\"}", "contains: value must not be empty");
    load_err("{\"type\":\"contains\",\"value\":[\"a\"]}", "contains: value must be a string, got array");
    load_err("{\"type\":\"icontains\",\"value\":true}", "value must be a string, got boolean");
    load_err("{\"type\":\"starts-with\",\"value\":{}}", "starts-with: value must be a string, got object");
    load_err("{\"type\":\"equals\"}", "equals: needs a value");
    load_err("{\"type\":\"contains\",\"value\":\"x\",\"metric\":7}", "metric must be a string");
    /* a NULL where still gives a prefix */
    json_t *j = parse("{\"type\":\"contians\"}");
    co_assertion *a = NULL;
    assert_int_equal(co_assertion_new(&a, j, NULL, NULL), CO_EINVAL);
    assert_string_equal(co_error_last(), "assertion: unknown assertion type 'contians' (did you mean 'contains'?)");
    json_decref(j);
    /* type names are exposed for the loader */
    const char *const *names = co_assert_type_names();
    size_t n = 0;
    while (names[n])
        n++;
    assert_int_equal(n, 17);
    assert_string_equal(names[0], "equals");
    /* null optional keys are as if absent */
    co_assertion *b = mk("{\"type\":\"contains\",\"value\":\"x\",\"threshold\":null,\"metric\":null}");
    co_assertion_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equals),
        cmocka_unit_test(test_contains),
        cmocka_unit_test(test_icontains_folding),
        cmocka_unit_test(test_contains_any_all),
        cmocka_unit_test(test_regex),
        cmocka_unit_test(test_huge_output),
        cmocka_unit_test(test_is_json),
        cmocka_unit_test(test_contains_json),
        cmocka_unit_test(test_json_schema),
        cmocka_unit_test(test_tools_call),
        cmocka_unit_test(test_levenshtein),
        cmocka_unit_test(test_latency_cost),
        cmocka_unit_test(test_llm_rubric),
        cmocka_unit_test(test_case_result),
        cmocka_unit_test(test_load_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
