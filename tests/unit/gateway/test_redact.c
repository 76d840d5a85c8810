/* Unit tests of redaction: e-mails, phones (international and national
 * formats), payment cards (Luhn-valid masked, invalid left), user patterns,
 * API keys always, no false positives on prices / dates / ids / numbers,
 * JSON stays valid, long and pathological inputs, invalid patterns named. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cutover/error.h"
#include "cutover/redact.h"

static co_redactor *all_on(void)
{
    co_redact_conf c = {.email = 1, .phone = 1, .card = 1};
    co_redactor *r = NULL;
    assert_int_equal(co_redactor_new(&r, &c), 0);
    assert_non_null(r);
    return r;
}

/* Asserts that redacting `in` gives `want`. */
static void expect(const co_redactor *r, const char *in, const char *want)
{
    char *out = NULL;
    assert_int_equal(co_redact(r, in, &out), 0);
    assert_non_null(out);
    if (strcmp(out, want) != 0)
        fail_msg("redact(\"%s\")\n   got \"%s\"\n  want \"%s\"", in, out, want);
    free(out);
}

/* Asserts that `in` comes back unchanged. */
static void untouched(const co_redactor *r, const char *in) { expect(r, in, in); }

/* Occurrences of needle (a plain scan: sanitizer-intercepted strstr would
 * re-measure the 2 MB haystack on every call). */
static size_t count(const char *hay, const char *needle)
{
    size_t k = 0, nl = strlen(needle), hl = strlen(hay);
    for (size_t i = 0; i + nl <= hl; i++) {
        if (hay[i] == needle[0] && memcmp(hay + i, needle, nl) == 0) {
            k++;
            i += nl - 1;
        }
    }
    return k;
}

static void test_email(void **state)
{
    (void)state;
    co_redactor *r = all_on();
    expect(r, "mail bob.smith+tag@example.co.uk now", "mail [email] now");
    expect(r, "<alice@example.org>", "<[email]>");
    expect(r, "a@b.io, c.d@e-f.com.", "[email], [email].");
    expect(r, "first.last@sub.domain.example", "[email]");
    expect(r, "x_y%z@mail.example.com", "[email]");
    untouched(r, "a@b");            /* no dot in the domain */
    untouched(r, "x@y.z");          /* one-letter TLD */
    untouched(r, "user@localhost");
    untouched(r, "@handle and me@");
    untouched(r, "version 1.2@3.4");
    untouched(r, "price@12.50"); /* numeric TLD */
    co_redactor_free(r);

    /* Off unless configured. */
    co_redact_conf c = {.phone = 1};
    assert_int_equal(co_redactor_new(&r, &c), 0);
    untouched(r, "bob@example.com");
    co_redactor_free(r);
}

static void test_phone(void **state)
{
    (void)state;
    co_redactor *r = all_on();
    /* International. */
    expect(r, "+44 20 7946 0958", "[phone]");
    expect(r, "+44 (0)20 7946 0958", "[phone]");
    expect(r, "+1 (555) 123-4567", "[phone]");
    expect(r, "+1-555-123-4567", "[phone]");
    expect(r, "+33 1 23 45 67 89", "[phone]");
    expect(r, "+4915112345678", "[phone]");
    expect(r, "tel:+1-555-123-4567.", "tel:[phone].");
    /* National. */
    expect(r, "call (555) 123-4567 today", "call [phone] today");
    expect(r, "(555)123-4567", "[phone]");
    expect(r, "555-123-4567", "[phone]");
    expect(r, "555.123.4567", "[phone]");
    expect(r, "1-800-555-1234", "[phone]");
    expect(r, "020 7946 0958", "[phone]");
    expect(r, "07700 900123", "[phone]");
    expect(r, "01 23 45 67 89", "[phone]");
    expect(r, "06.12.34.56.78", "[phone]");
    expect(r, "0171 1234567", "[phone]");
    expect(r, "(030) 1234567", "[phone]");
    expect(r, "call 555 123 4567 20 times", "call [phone] 20 times");
    expect(r, "555-123-4567 555-765-4321", "[phone] [phone]");
    expect(r, "555-123-4567,555-765-4321", "[phone],[phone]");
    expect(r, "{\"c\":\"ring\\n555-123-4567\"}", "{\"c\":\"ring\\n[phone]\"}");
    /* Not phone numbers. */
    untouched(r, "555-1234");        /* too short to tell */
    untouched(r, "5551234567");      /* a bare run of digits: an id */
    untouched(r, "+5 points");
    untouched(r, "3+4155551234");    /* arithmetic */
    untouched(r, "12345 67890");
    untouched(r, "1234567.891");
    untouched(r, "10000-20000");
    untouched(r, "1234 5678 9012");
    co_redactor_free(r);
}

static void test_card(void **state)
{
    (void)state;
    co_redactor *r = all_on();
    expect(r, "card 4111 1111 1111 1111 ok", "card [card] ok");
    expect(r, "4111-1111-1111-1111", "[card]");
    expect(r, "4111111111111111", "[card]");
    expect(r, "5500 0000 0000 0004", "[card]");      /* Mastercard */
    expect(r, "2221 0000 0000 0009", "[card]");      /* Mastercard 2-series */
    expect(r, "3782 822463 10005", "[card]");        /* Amex 4-6-5 */
    expect(r, "6011 1111 1111 1117", "[card]");      /* Discover */
    expect(r, "4222222222222", "[card]");            /* 13-digit Visa */
    expect(r, "4111 1111 1111 1111 12/27", "[card] 12/27");
    expect(r, "pay with 4111 1111 1111 1111, thanks", "pay with [card], thanks");
    /* Luhn-invalid: order numbers stay. */
    untouched(r, "4111 1111 1111 1112");
    untouched(r, "order 4111111111111112");
    untouched(r, "order 1234567890123456");
    /* Valid Luhn but no card network prefix: timestamps, ids. */
    assert_true(co_luhn_valid("1700000000004", 13));
    untouched(r, "ts 1700000000004");
    untouched(r, "9999999999999995");
    /* Too long / too short. */
    untouched(r, "41111111111111111111111");
    untouched(r, "411111111111");

    assert_true(co_luhn_valid("4111 1111 1111 1111", 19));
    assert_true(co_luhn_valid("79927398713", 11));
    assert_false(co_luhn_valid("79927398710", 11));
    assert_false(co_luhn_valid("", 0));
    assert_false(co_luhn_valid("abc", 3));
    co_redactor_free(r);

    /* Cards only when asked. */
    co_redact_conf c = {.email = 1};
    assert_int_equal(co_redactor_new(&r, &c), 0);
    untouched(r, "4111 1111 1111 1111");
    co_redactor_free(r);
}

static void test_no_false_positives(void **state)
{
    (void)state;
    co_redactor *r = all_on();
    const char *ordinary[] = {
        "$1,299.99",
        "price 1299.99 USD",
        "1 299,99 \xe2\x82\xac",
        "\xe2\x82\xac" "1234567890",
        "2024-01-15",
        "2024-01-15 10:30:00",
        "2024-01-15T10:30:00Z",
        "on 2024-01-15 12 people came",
        "12/25/2024",
        "15.01.2024",
        "10:30:45.123",
        "year 1999 and 2024",
        "between 2010 2011 2012",
        "1 234 567 890",
        "12.345.678.901",
        "population 12,345,678,901",
        "192.168.100.200",
        "192.168.10.100",
        "10.0.0.1:8080",
        "id 550e8400-e29b-41d4-a716-446655440000",
        "prices 120 450 300 900 1200",
        "v1.2.3 build 20240115",
        "ISBN 978-3-16-148410-0",
        "order #123-456-7890",
        "ticket PROJ-12345678901",
        "ts 1700000000000 and 1700000000000123",
        "3.14159265358979323846",
        "50% of 1000000000000",
        "sha 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "{\"max_tokens\": 1024, \"temperature\": 0.2, \"seed\": 12345678901}",
        "task-abcdefghijklmnopqrstuvwxyz0123",
        "sk-this-is-a-long-hyphenated-word",
    };
    for (size_t i = 0; i < sizeof ordinary / sizeof *ordinary; i++)
        untouched(r, ordinary[i]);
    co_redactor_free(r);
}

static void test_user_patterns(void **state)
{
    (void)state;
    char *pats[] = {"ACME-[0-9]+", "secret_[a-z]+", "^BEGIN", "x*"};
    co_redact_conf c = {.patterns = {pats, 4}};
    co_redactor *r;
    assert_int_equal(co_redactor_new(&r, &c), 0);
    assert_true(co_redactor_enabled(r));
    expect(r, "ref ACME-12345 and ACME-9", "ref [redacted] and [redacted]");
    expect(r, "the secret_sauce is secret_ketchup", "the [redacted] is [redacted]");
    expect(r, "BEGIN here, not BEGIN there", "[redacted] here, not BEGIN there");
    /* A pattern that also matches empty strings masks only real matches. */
    expect(r, "axxb", "a[redacted]b");
    expect(r, "", "");
    /* Built-ins stay off, keys stay on. */
    expect(r, "bob@domain.org sk-abcdefghijklmnop1234567890", "bob@domain.org [api-key]");
    co_redactor_free(r);

    /* Overlaps merge: the strongest type names the union. */
    char *pats2[] = {"mail [a-z]+@"};
    co_redact_conf c2 = {.email = 1, .patterns = {pats2, 1}};
    assert_int_equal(co_redactor_new(&r, &c2), 0);
    expect(r, "mail bob@example.com", "[email]");
    co_redactor_free(r);
}

static void test_invalid_patterns(void **state)
{
    (void)state;
    char *pats[] = {"ok[0-9]+", "([a-z"};
    co_redact_conf c = {.patterns = {pats, 2}};
    co_redactor *r = (co_redactor *)1;
    assert_int_equal(co_redactor_new(&r, &c), CO_ECONFIG);
    assert_null(r);
    assert_non_null(strstr(co_error_last(), "redact pattern 2"));
    assert_non_null(strstr(co_error_last(), "'([a-z'"));
    assert_non_null(strstr(co_error_last(), "POSIX extended"));

    char *empty[] = {""};
    co_redact_conf c2 = {.patterns = {empty, 1}};
    assert_int_equal(co_redactor_new(&r, &c2), CO_ECONFIG);
    assert_non_null(strstr(co_error_last(), "pattern 1 is empty"));

    assert_int_equal(co_redactor_new(NULL, &c), CO_EINVAL);
    char *out = NULL;
    assert_int_equal(co_redact(NULL, NULL, &out), CO_EINVAL);
    assert_int_equal(co_redact(NULL, "x", NULL), CO_EINVAL);
}

static void test_keys_always(void **state)
{
    (void)state;
    const char *in = "use sk-proj-abc123DEF456ghi789JKL012mno or sk-ant-api03-AbC123_def-456ghiJKL789mnoPQR "
                     "or AIzaSyA1234567890abcdefghijklmnopqrstu; not sk-short1 nor disk-abcdefghijklmnopqrstuvw123";
    const char *want = "use [api-key] or [api-key] or [api-key]; not sk-short1 nor "
                       "disk-abcdefghijklmnopqrstuvw123";
    /* No redactor, a redactor with everything off, and the keys-only call. */
    expect(NULL, in, want);
    co_redact_conf off = {0};
    co_redactor *r;
    assert_int_equal(co_redactor_new(&r, &off), 0);
    assert_false(co_redactor_enabled(r));
    expect(r, in, want);
    co_redactor_free(r);
    assert_int_equal(co_redactor_new(&r, NULL), 0);
    expect(r, in, want);
    co_redactor_free(r);
    char *out;
    assert_int_equal(co_redact_keys(in, &out), 0);
    assert_string_equal(out, want);
    free(out);
    /* After a JSON escape, the escape stays intact. */
    expect(NULL, "\"\\nsk-abcdefghijklmnopqrstuvw123\"", "\"\\n[api-key]\"");
    co_redactor_free(NULL);
}

/* co_redact_len masks what co_redact masks, and copies nothing when
 * nothing is masked (the recorder's path). Keys are found at the very start
 * and end of the text, next to each other and inside longer words (not). */
static void test_redact_len(void **state)
{
    (void)state;
    co_redact_conf all = {.email = 1, .phone = 1, .card = 1};
    co_redactor *r;
    assert_int_equal(co_redactor_new(&r, &all), 0);
    const char *cases[] = {
        "plain prose, is this sk- or AIza? nothing to mask here, sir",
        "sk-abcdefghijklmnopqrstuvw123",
        "AIzaSyA1234567890abcdefghijklmnopqrstu",
        "x sk-abcdefghijklmnopqrstuvw123 sk-abcdefghijklmnopqrstuvw456",
        "AIzaSyA1234567890abcdefghijklmnopqrstusk-abcdefghijklmnopqrstuvw123",
        "task-abcdefghijklmnopqrstuvw123 MAIzaSyA1234567890abcdefghijklmnopqrstu",
        "mail ana@example.com or call +1 555 123 4567, card 4111 1111 1111 1111",
        "",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *a = NULL, *b = NULL;
        assert_int_equal(co_redact(r, cases[i], &a), 0);
        assert_int_equal(co_redact_len(r, cases[i], strlen(cases[i]), &b), 0);
        if (strcmp(a, cases[i]) == 0) {
            assert_null(b); /* unchanged: no copy */
        } else {
            assert_non_null(b);
            assert_string_equal(a, b);
        }
        free(a);
        free(b);
    }
    char *o = (char *)1;
    assert_int_equal(co_redact_len(r, "abc", 2, &o), CO_EINVAL); /* not the NUL */
    assert_null(o);
    assert_int_equal(co_redact_len(r, NULL, 0, &o), CO_EINVAL);
    assert_int_equal(co_redact_len(r, "abc", 3, NULL), CO_EINVAL);
    co_redactor_free(r);
}

static void test_json_stays_valid(void **state)
{
    (void)state;
    char *pats[] = {"tok[a-z\\]*"};
    co_redact_conf c = {.email = 1, .phone = 1, .card = 1, .patterns = {pats, 1}};
    co_redactor *r;
    assert_int_equal(co_redactor_new(&r, &c), 0);
    const char *in =
        "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\\nbob@x.com\\t\\u00e9ve@example.org "
        "tokabc\\\"x call\\n+1 555 123 4567\"}],"
        "\"seed\": 4111111111111111, \"ids\": [4111111111111111,5500000000000004],"
        "\"user\":\"4111 1111 1111 1111\"}";
    char *out = NULL;
    assert_int_equal(co_redact(r, in, &out), 0);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    if (!j)
        fail_msg("not JSON any more: %s\n%s", je.text, out);
    json_decref(j);
    assert_null(strstr(out, "bob@"));
    assert_null(strstr(out, "4111"));
    assert_null(strstr(out, "5500"));
    assert_null(strstr(out, "tokabc"));
    assert_null(strstr(out, "555 123"));
    assert_non_null(strstr(out, "hi\\n[email]"));
    assert_non_null(strstr(out, "\\u00e9[email]"));
    assert_non_null(strstr(out, "\"seed\": \"[card]\""));
    assert_non_null(strstr(out, "[\"[card]\",\"[card]\"]"));
    assert_non_null(strstr(out, "\"user\":\"[card]\""));
    free(out);
    /* Outside JSON, a card number followed by a period is not quoted. */
    expect(r, "Card: 4111111111111111.", "Card: [card].");
    co_redactor_free(r);
}

static void test_long_inputs(void **state)
{
    (void)state;
    co_redactor *r = all_on();
    /* 20000 repetitions of a line with one of each, about 2 MB. */
    const char *line = "mail bob@example.com, card 4111 1111 1111 1111, call +44 20 7946 0958, "
                       "order 1234567890123456, on 2024-01-15 at $1,299.99. ";
    size_t ll = strlen(line), reps = 20000;
    char *big = malloc(ll * reps + 1);
    assert_non_null(big);
    for (size_t i = 0; i < reps; i++)
        memcpy(big + i * ll, line, ll);
    big[ll * reps] = '\0';
    char *out = NULL;
    assert_int_equal(co_redact(r, big, &out), 0);
    assert_int_equal(count(out, "[email]"), reps);
    assert_int_equal(count(out, "[card]"), reps);
    assert_int_equal(count(out, "[phone]"), reps);
    assert_int_equal(count(out, "order 1234567890123456"), reps);
    assert_int_equal(count(out, "2024-01-15 at $1,299.99"), reps);
    free(out);

    /* Pathological shapes stay linear (they would take minutes otherwise). */
    size_t n = 1 << 20;
    const char *unit[] = {"1 ", "a@", "1-", "sk-", "(1)", "@a.", "+1 "};
    for (size_t u = 0; u < sizeof unit / sizeof *unit; u++) {
        size_t ul = strlen(unit[u]);
        for (size_t i = 0; i < n; i++)
            big[i] = unit[u][i % ul];
        big[n] = '\0';
        assert_int_equal(co_redact(r, big, &out), 0);
        free(out);
    }
    memset(big, '7', n);
    big[n] = '\0';
    assert_int_equal(co_redact(r, big, &out), 0);
    assert_string_equal(out, big);
    free(out);
    free(big);
    co_redactor_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_email),
        cmocka_unit_test(test_phone),
        cmocka_unit_test(test_card),
        cmocka_unit_test(test_no_false_positives),
        cmocka_unit_test(test_user_patterns),
        cmocka_unit_test(test_invalid_patterns),
        cmocka_unit_test(test_keys_always),
        cmocka_unit_test(test_redact_len),
        cmocka_unit_test(test_json_stays_valid),
        cmocka_unit_test(test_long_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
