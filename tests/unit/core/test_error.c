/* The error convention: a name and a message for every status in
 * CO_ERRNO_MAP, the per-thread error slot, and the located diagnostics list. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cutover/error.h"

static const struct {
    int status;
    const char *name, *msg;
} all[] = {
#define ROW(n, m) {CO_##n, #n, m},
    CO_ERRNO_MAP(ROW)
#undef ROW
};
#define NALL (sizeof all / sizeof all[0])

static void test_names_and_messages(void **state)
{
    (void)state;
    assert_int_equal(NALL, CO__ERR_LAST - CO__ERR_FIRST - 1);
    for (size_t i = 0; i < NALL; i++) {
        assert_true(all[i].status < 0);
        assert_string_equal(co_err_name(all[i].status), all[i].name);
        assert_string_equal(co_strerror(all[i].status), all[i].msg);
        assert_true(strlen(all[i].msg) > 0);
        /* names and codes are distinct */
        for (size_t j = i + 1; j < NALL; j++) {
            assert_int_not_equal(all[i].status, all[j].status);
            assert_string_not_equal(all[i].name, all[j].name);
        }
    }
    assert_string_equal(co_err_name(CO_EINVAL), "EINVAL");
    assert_string_equal(co_strerror(CO_ETOOBIG), "size limit exceeded");
    assert_string_equal(co_err_name(CO_OK), "OK");
    assert_string_equal(co_strerror(CO_OK), "success");
    /* outside the map */
    static const int unknown[] = {CO__ERR_FIRST, CO__ERR_LAST, 1, -1, -22, 12345, -2000000};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        assert_string_equal(co_err_name(unknown[i]), "EUNKNOWN");
        assert_string_equal(co_strerror(unknown[i]), "unknown error");
    }
}

static void test_error_slot(void **state)
{
    (void)state;
    co_error_clear();
    assert_int_equal(co_error_last_status(), 0);
    assert_string_equal(co_error_last(), "success");

    assert_int_equal(co_error_set(CO_ENOENT, "no file %s at line %d", "a.yaml", 3), CO_ENOENT);
    assert_int_equal(co_error_last_status(), CO_ENOENT);
    assert_string_equal(co_error_last(), "no file a.yaml at line 3");

    /* the newest wins */
    assert_int_equal(co_error_set(CO_EBUSY, "busy"), CO_EBUSY);
    assert_string_equal(co_error_last(), "busy");
    assert_int_equal(co_error_last_status(), CO_EBUSY);

    /* no detail: the status's message */
    assert_int_equal(co_error_set(CO_ETIMEDOUT, NULL), CO_ETIMEDOUT);
    assert_string_equal(co_error_last(), "timed out");
    assert_int_equal(co_error_set(CO_EIO, "%s", ""), CO_EIO);
    assert_string_equal(co_error_last(), "input/output error");

    /* every status with no detail falls back to its own message */
    for (size_t i = 0; i < NALL; i++) {
        co_error_set(all[i].status, NULL);
        assert_string_equal(co_error_last(), all[i].msg);
    }

    /* very long messages are truncated, not overflowed */
    char *big = malloc(10000);
    assert_non_null(big);
    memset(big, 'x', 9999);
    big[9999] = '\0';
    co_error_set(CO_EINVAL, "%s", big);
    size_t n = strlen(co_error_last());
    assert_true(n > 100 && n < 9999);
    assert_int_equal(co_error_last()[0], 'x');
    free(big);

    co_error_clear();
    assert_int_equal(co_error_last_status(), 0);
    assert_string_equal(co_error_last(), "success");
}

static void *other_thread(void *arg)
{
    (void)arg;
    /* a fresh thread starts clean */
    int clean = co_error_last_status() == 0;
    co_error_set(CO_ENET, "thread error");
    return (void *)(intptr_t)clean;
}

static void test_error_slot_is_per_thread(void **state)
{
    (void)state;
    co_error_set(CO_ECONFIG, "main thread");
    pthread_t t;
    void *clean = NULL;
    assert_int_equal(pthread_create(&t, NULL, other_thread, NULL), 0);
    assert_int_equal(pthread_join(t, &clean), 0);
    assert_true((intptr_t)clean);
    assert_string_equal(co_error_last(), "main thread");
    assert_int_equal(co_error_last_status(), CO_ECONFIG);
    co_error_clear();
}

static void test_diags(void **state)
{
    (void)state;
    co_diags d = {0};
    co_diags_add(&d, "cutover.yaml", 3, 7, "unknown key '%s'", "listn");
    co_diags_add(&d, "cutover.yaml", 0, 0, "file-level problem");
    co_diags_add(&d, NULL, 0, 0, "no file at all %d", 42);
    assert_int_equal(d.n, 3);
    assert_string_equal(d.v[0].file, "cutover.yaml");
    assert_int_equal(d.v[0].line, 3);
    assert_int_equal(d.v[0].col, 7);
    assert_string_equal(d.v[0].msg, "unknown key 'listn'");
    assert_null(d.v[2].file);

    /* the list owns copies of its strings */
    char file[] = "temp.yaml";
    co_diags_add(&d, file, 1, 1, "copied");
    file[0] = 'X';
    assert_string_equal(d.v[3].file, "temp.yaml");

    /* many: grows past its first allocation, order kept */
    for (int i = 0; i < 100; i++)
        co_diags_add(&d, "many.yaml", i + 1, 1, "error %d", i);
    assert_int_equal(d.n, 104);
    assert_int_equal(d.v[103].line, 100);
    assert_string_equal(d.v[103].msg, "error 99");
    assert_string_equal(d.v[4].msg, "error 0");

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    co_diags_print(&d, f);
    assert_int_equal(fclose(f), 0);
    assert_non_null(text);
    const char *expect_head =
        "cutover.yaml:3:7: unknown key 'listn'\n"
        "cutover.yaml: file-level problem\n"
        "no file at all 42\n"
        "temp.yaml:1:1: copied\n"
        "many.yaml:1:1: error 0\n";
    assert_memory_equal(text, expect_head, strlen(expect_head));
    assert_non_null(strstr(text, "many.yaml:100:1: error 99\n"));
    /* one line per diagnostic */
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    assert_int_equal(lines, d.n);
    free(text);

    co_diags_free(&d);
    assert_null(d.v);
    assert_int_equal(d.n, 0);
    assert_int_equal(d.cap, 0);
    /* reusable after free; printing an empty list prints nothing */
    text = NULL;
    f = open_memstream(&text, &len);
    assert_non_null(f);
    co_diags_print(&d, f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(len, 0);
    free(text);
    co_diags_add(&d, "x", 1, 2, "again");
    assert_int_equal(d.n, 1);
    co_diags_free(&d);
    co_diags_free(&d); /* twice is harmless */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_and_messages),
        cmocka_unit_test(test_error_slot),
        cmocka_unit_test(test_error_slot_is_per_thread),
        cmocka_unit_test(test_diags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
