/* co_buf: growth, the hard limit (a refused append leaves the buffer as it
 * was), printf, reset, detach. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cutover/buf.h"
#include "cutover/error.h"

static void test_empty(void **state)
{
    (void)state;
    co_buf b;
    co_buf_init(&b, 100);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.max, 100);
    /* appending nothing still yields a NUL-terminated string */
    assert_int_equal(co_buf_append(&b, "", 0), 0);
    assert_non_null(b.p);
    assert_string_equal(b.p, "");
    co_buf_free(&b);
    assert_null(b.p);
    assert_int_equal(b.len, 0);
    co_buf_free(&b); /* twice is harmless */
}

static void test_append_and_grow(void **state)
{
    (void)state;
    co_buf b;
    co_buf_init(&b, CO_BUF_UNLIMITED);
    assert_int_equal(co_buf_puts(&b, "hello"), 0);
    assert_int_equal(co_buf_append(&b, ", world", 7), 0);
    assert_int_equal(b.len, 12);
    assert_string_equal(b.p, "hello, world");
    /* binary data with NULs is kept; len counts it */
    assert_int_equal(co_buf_append(&b, "\0x", 2), 0);
    assert_int_equal(b.len, 14);
    assert_memory_equal(b.p, "hello, world\0x", 15);
    /* many small appends across several reallocations */
    co_buf_reset(&b);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(co_buf_append(&b, &"0123456789"[i % 10], 1), 0);
    assert_int_equal(b.len, 10000);
    assert_true(b.cap > b.len);
    assert_int_equal(b.p[b.len], '\0');
    for (int i = 0; i < 10000; i++)
        assert_int_equal(b.p[i], '0' + i % 10);
    /* one big append */
    size_t n = 1 << 20;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, 'z', n);
    assert_int_equal(co_buf_append(&b, big, n), 0);
    assert_int_equal(b.len, 10000 + n);
    assert_int_equal(b.p[b.len - 1], 'z');
    assert_int_equal(b.p[b.len], '\0');
    free(big);
    co_buf_free(&b);
}

static void test_limit(void **state)
{
    (void)state;
    co_buf b;
    co_buf_init(&b, 10);
    assert_int_equal(co_buf_puts(&b, "12345"), 0);
    char *before = b.p;
    size_t cap = b.cap;
    /* past the limit: refused, and nothing changes */
    co_error_clear();
    assert_int_equal(co_buf_puts(&b, "678901"), CO_ETOOBIG);
    assert_int_equal(co_error_last_status(), CO_ETOOBIG);
    assert_non_null(strstr(co_error_last(), "10"));
    assert_int_equal(b.len, 5);
    assert_string_equal(b.p, "12345");
    assert_ptr_equal(b.p, before);
    assert_int_equal(b.cap, cap);
    /* exactly up to the limit is allowed */
    assert_int_equal(co_buf_puts(&b, "67890"), 0);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.p, "1234567890");
    /* one more byte is not */
    assert_int_equal(co_buf_append(&b, "x", 1), CO_ETOOBIG);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.p, "1234567890");
    /* an empty append at the limit is fine */
    assert_int_equal(co_buf_append(&b, "", 0), 0);
    /* after a reset the room is back */
    co_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.p, "");
    assert_int_equal(co_buf_puts(&b, "abc"), 0);
    assert_string_equal(b.p, "abc");
    co_buf_free(&b);

    /* a zero limit refuses everything but nothing */
    co_buf_init(&b, 0);
    assert_int_equal(co_buf_puts(&b, "a"), CO_ETOOBIG);
    assert_int_equal(b.len, 0);
    assert_int_equal(co_buf_printf(&b, "%d", 1), CO_ETOOBIG);
    assert_int_equal(b.len, 0);
    co_buf_free(&b);
}

/* A length so large that len + n wraps around must still be refused (a
 * caller's `end - p` gone negative, say); the limit must hold. Runs last: on
 * failure it crashes inside memcpy. */
static void test_limit_length_overflow(void **state)
{
    (void)state;
    co_buf b;
    co_buf_init(&b, 10);
    assert_int_equal(co_buf_puts(&b, "12345"), 0);
    assert_int_equal(co_buf_append(&b, "x", (size_t)-1), CO_ETOOBIG); /* len + n == 4 */
    assert_int_equal(b.len, 5);
    assert_string_equal(b.p, "12345");
    co_buf_free(&b);

    co_buf_init(&b, CO_BUF_UNLIMITED);
    assert_int_equal(co_buf_puts(&b, "keep"), 0);
    assert_int_equal(co_buf_append(&b, "x", (size_t)-2), CO_ETOOBIG); /* len + n == 2 */
    assert_int_equal(b.len, 4);
    assert_string_equal(b.p, "keep");
    co_buf_free(&b);
}

static void test_reserve(void **state)
{
    (void)state;
    co_buf b;
    co_buf_init(&b, 1000);
    assert_int_equal(co_buf_reserve(&b, 600), 0);
    assert_non_null(b.p);
    assert_string_equal(b.p, ""); /* still an empty string */
    assert_true(b.cap >= 601);
    const char *p = b.p;
    char blk[100];
    memset(blk, 'a', sizeof blk);
    for (int i = 0; i < 6; i++)
        assert_int_equal(co_buf_append(&b, blk, sizeof blk), 0);
    assert_ptr_equal(b.p, p); /* no allocation after the reserve */
    assert_int_equal(b.len, 600);
    assert_int_equal(co_buf_reserve(&b, 0), 0);
    /* past max: refused, unchanged */
    assert_int_equal(co_buf_reserve(&b, 401), CO_ETOOBIG);
    assert_int_equal(b.len, 600);
    assert_int_equal(b.p[600], '\0');
    assert_int_equal(co_buf_reserve(&b, 400), 0);
    co_buf_free(&b);
}

static void test_printf(void **state)
{
    (void)state;
    co_buf b;
    co_buf_init(&b, 1 << 20);
    assert_int_equal(co_buf_printf(&b, "%s=%d", "n", 42), 0);
    assert_int_equal(co_buf_printf(&b, ";%05.1f", 3.14159), 0);
    assert_string_equal(b.p, "n=42;003.1");
    assert_int_equal(b.len, strlen("n=42;003.1"));
    assert_int_equal(co_buf_printf(&b, "%s", ""), 0);
    assert_int_equal(b.len, 10);
    /* growth through printf: a 5000-char expansion past the first block */
    assert_int_equal(co_buf_printf(&b, "[%5000d]", 7), 0);
    assert_int_equal(b.len, 10 + 5002);
    assert_int_equal(b.p[10], '[');
    assert_int_equal(b.p[b.len - 2], '7');
    assert_int_equal(b.p[b.len - 1], ']');
    assert_int_equal(b.p[b.len], '\0');
    for (int i = 0; i < 100; i++)
        assert_int_equal(co_buf_printf(&b, "line %d\n", i), 0);
    assert_non_null(strstr(b.p, "line 99\n"));
    co_buf_free(&b);

    /* printf past the limit leaves the buffer as it was */
    co_buf_init(&b, 8);
    assert_int_equal(co_buf_printf(&b, "%d", 1234), 0);
    assert_int_equal(co_buf_printf(&b, "%s", "56789"), CO_ETOOBIG);
    assert_int_equal(b.len, 4);
    assert_string_equal(b.p, "1234");
    assert_int_equal(co_buf_printf(&b, "%s", "5678"), 0);
    assert_string_equal(b.p, "12345678");
    co_buf_free(&b);
}

static int vp(co_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int vp(co_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = co_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

static void test_vprintf(void **state)
{
    (void)state;
    co_buf b;
    co_buf_init(&b, 1000);
    assert_int_equal(vp(&b, "%s-%s-%d", "a", "b", 3), 0);
    assert_string_equal(b.p, "a-b-3");
    co_buf_free(&b);
}

static void test_detach(void **state)
{
    (void)state;
    co_buf b;
    co_buf_init(&b, 100);
    assert_int_equal(co_buf_puts(&b, "owned"), 0);
    char *s = co_buf_detach(&b);
    assert_string_equal(s, "owned");
    /* the buffer is empty again and reusable, with the same limit */
    assert_null(b.p);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.max, 100);
    assert_int_equal(co_buf_puts(&b, "again"), 0);
    assert_string_equal(b.p, "again");
    assert_ptr_not_equal(b.p, s);
    free(s);
    co_buf_free(&b);

    /* an empty buffer yields "" that the caller frees */
    co_buf_init(&b, 100);
    s = co_buf_detach(&b);
    assert_non_null(s);
    assert_string_equal(s, "");
    free(s);
    co_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_append_and_grow),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_reserve),
        cmocka_unit_test(test_printf),
        cmocka_unit_test(test_vprintf),
        cmocka_unit_test(test_detach),
        cmocka_unit_test(test_limit_length_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
