/* Shared helpers: edit distance and suggestions, duration/size parsing and
 * formatting, ids, sticky buckets, whole-file I/O and mkdir -p. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cutover/error.h"
#include "cutover/util.h"

/* ---- temp dirs ------------------------------------------------------------ */

static void rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d))) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                    continue;
                char sub[4096];
                snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
                rm_rf(sub);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

static int setup_tmp(void **state)
{
    char *dir = strdup("/tmp/co_test_util_XXXXXX");
    if (!dir || !mkdtemp(dir)) {
        free(dir);
        return -1;
    }
    *state = dir;
    return 0;
}

static int teardown_tmp(void **state)
{
    rm_rf(*state);
    free(*state);
    return 0;
}

/* Number of entries in a directory other than . and .. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static void write_raw(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* ---- edit distance and suggestions ---------------------------------------- */

static void test_edit_distance(void **state)
{
    (void)state;
    assert_int_equal(co_edit_distance("", ""), 0);
    assert_int_equal(co_edit_distance("abc", ""), 3);
    assert_int_equal(co_edit_distance("", "abcd"), 4);
    assert_int_equal(co_edit_distance("listen", "listen"), 0);
    assert_int_equal(co_edit_distance("listn", "listen"), 1);      /* insertion */
    assert_int_equal(co_edit_distance("listeen", "listen"), 1);    /* deletion */
    assert_int_equal(co_edit_distance("lusten", "listen"), 1);     /* substitution */
    assert_int_equal(co_edit_distance("kitten", "sitting"), 3);
    assert_int_equal(co_edit_distance("flaw", "lawn"), 2);
    assert_int_equal(co_edit_distance("opneai", "openai"), 2);     /* a swap is two edits */
    /* symmetric */
    assert_int_equal(co_edit_distance("sitting", "kitten"), co_edit_distance("kitten", "sitting"));
    assert_int_equal(co_edit_distance("abc", "xyz"), 3);
    /* 64 chars is still computed exactly */
    char a[65], b[65];
    memset(a, 'a', 64);
    a[64] = '\0';
    memcpy(b, a, sizeof a);
    b[10] = 'b';
    b[50] = 'c';
    assert_int_equal(co_edit_distance(a, b), 2);
    assert_int_equal(co_edit_distance(a, ""), 64);
}

static void test_suggest(void **state)
{
    (void)state;
    static const char *const keys[] = {"listen", "workers", "store", "log_level", "admin",
                                       "providers", "models", "workloads", NULL};
    assert_string_equal(co_suggest("listn", keys), "listen");
    assert_string_equal(co_suggest("wrokers", keys), "workers");
    assert_string_equal(co_suggest("provider", keys), "providers");
    assert_string_equal(co_suggest("workload", keys), "workloads");
    assert_string_equal(co_suggest("stor", keys), "store");
    /* longer words tolerate more edits: len/3 */
    assert_string_equal(co_suggest("workloadzzz", keys), "workloads");
    assert_null(co_suggest("wrklodsx", keys)); /* 3 edits, 8 chars: too far */
    /* far words get nothing */
    assert_null(co_suggest("zzzzzzzzzz", keys));
    assert_null(co_suggest("temperature", keys));
    assert_null(co_suggest("x", (const char *const[]){"abcdef", NULL}));
    /* no candidates at all */
    assert_null(co_suggest("listen", (const char *const[]){NULL}));
    /* the closest wins */
    static const char *const kinds[] = {"openai", "anthropic", "gemini", "openai_compat", NULL};
    assert_string_equal(co_suggest("opneai", kinds), "openai");
    assert_string_equal(co_suggest("antropic", kinds), "anthropic");
    assert_string_equal(co_suggest("gemin", kinds), "gemini");
}

/* ---- durations and sizes --------------------------------------------------- */

static void test_parse_duration(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int64_t ms;
    } ok[] = {
        {"250ms", 250},          {"0ms", 0},           {"30s", 30000},
        {"5m", 300000},          {"48h", 172800000},   {"14d", 1209600000},
        {"30", 30000},           {"0", 0},             {"1.5h", 5400000},
        {"0.5s", 500},           {"2.5m", 150000},     {"1.5ms", 2}, /* rounded */
        {"365d", 31536000000LL},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t v = -12345;
        int rc = co_parse_duration_ms(ok[i].in, &v);
        if (rc != 0)
            fail_msg("'%s' rejected: %s", ok[i].in, co_error_last());
        if (v != ok[i].ms)
            fail_msg("'%s' -> %lld, want %lld", ok[i].in, (long long)v, (long long)ok[i].ms);
    }
    static const char *const bad[] = {"", "5x", "-1s", "abc", "s", "ms", "5 s", "5sec", "1e999s",
                                      "-0.5m", "5S", "5h30", NULL};
    for (size_t i = 0; bad[i]; i++) {
        int64_t v = -12345;
        co_error_clear();
        int rc = co_parse_duration_ms(bad[i], &v);
        if (rc != CO_EPARSE)
            fail_msg("'%s' accepted (rc %d, %lld ms)", bad[i], rc, (long long)v);
        assert_int_equal(v, -12345); /* output untouched on error */
        assert_int_equal(co_error_last_status(), CO_EPARSE);
        assert_true(strlen(co_error_last()) > 0);
    }
    assert_int_equal(co_parse_duration_ms(NULL, &(int64_t){0}), CO_EPARSE);
    /* the unit is named in the message */
    int64_t v;
    assert_int_equal(co_parse_duration_ms("5x", &v), CO_EPARSE);
    assert_non_null(strstr(co_error_last(), "'5x'"));
    assert_non_null(strstr(co_error_last(), "unknown unit"));
    /* absurdly long durations are refused rather than overflowing */
    assert_int_equal(co_parse_duration_ms("1e300d", &v), CO_EPARSE);
}

/* "nan" and "inf" pass strtod; the result must not be cast to int64_t. */
static void test_parse_duration_not_a_number(void **state)
{
    (void)state;
    static const char *const bad[] = {"inf", "infs", "nan", "NAN", "nanms", "nan(1)h", NULL};
    for (size_t i = 0; bad[i]; i++) {
        int64_t v = -12345;
        int rc = co_parse_duration_ms(bad[i], &v);
        if (rc != CO_EPARSE)
            fail_msg("duration '%s' accepted (rc %d, %lld ms)", bad[i], rc, (long long)v);
    }
}

static void test_parse_size(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int64_t bytes;
    } ok[] = {
        {"512", 512},           {"0", 0},               {"512B", 512},
        {"64k", 65536},         {"64K", 65536},         {"64kb", 65536},
        {"1KiB", 1024},         {"10MB", 10485760},     {"10mb", 10485760},
        {"1MiB", 1048576},      {"4m", 4194304},        {"1GiB", 1073741824},
        {"2GB", 2147483648LL},  {"1.5k", 1536},         {"0.5MiB", 524288},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t v = -12345;
        int rc = co_parse_size(ok[i].in, &v);
        if (rc != 0)
            fail_msg("'%s' rejected: %s", ok[i].in, co_error_last());
        if (v != ok[i].bytes)
            fail_msg("'%s' -> %lld, want %lld", ok[i].in, (long long)v, (long long)ok[i].bytes);
    }
    static const char *const bad[] = {"", "k", "MB", "-1", "-1k", "10TB", "10 MB", "abc", "5x",
                                      "1e999", "10MiBs", NULL};
    for (size_t i = 0; bad[i]; i++) {
        int64_t v = -12345;
        int rc = co_parse_size(bad[i], &v);
        if (rc != CO_EPARSE)
            fail_msg("size '%s' accepted (rc %d, %lld)", bad[i], rc, (long long)v);
        assert_int_equal(v, -12345);
        assert_int_equal(co_error_last_status(), CO_EPARSE);
    }
    assert_int_equal(co_parse_size(NULL, &(int64_t){0}), CO_EPARSE);
    int64_t v;
    assert_int_equal(co_parse_size("10TB", &v), CO_EPARSE);
    assert_non_null(strstr(co_error_last(), "'TB'"));
}

/* Sizes that do not fit an int64_t (or are not numbers) must be refused, not
 * cast: on x86-64 the cast yields INT64_MIN, a negative "size". */
static void test_parse_size_out_of_range(void **state)
{
    (void)state;
    static const char *const bad[] = {"1e30", "9999999999G", "8589934592G", "inf", "nan", "infk", NULL};
    for (size_t i = 0; bad[i]; i++) {
        int64_t v = 12345;
        int rc = co_parse_size(bad[i], &v);
        if (rc != CO_EPARSE)
            fail_msg("size '%s' accepted (rc %d, %lld bytes)", bad[i], rc, (long long)v);
    }
}

static void test_format_duration_left(void **state)
{
    (void)state;
    char b[32];
    assert_string_equal(co_format_duration_left(-5, b, sizeof b), "0s");
    assert_string_equal(co_format_duration_left(0, b, sizeof b), "0s");
    assert_string_equal(co_format_duration_left(250, b, sizeof b), "250ms");
    assert_string_equal(co_format_duration_left(1001, b, sizeof b), "2s"); /* rounded up */
    assert_string_equal(co_format_duration_left(100000, b, sizeof b), "1m40s");
    assert_string_equal(co_format_duration_left(3600000, b, sizeof b), "1h0m");
    assert_string_equal(co_format_duration_left(8100000 + 1, b, sizeof b), "2h15m");
    assert_string_equal(co_format_duration_left(3LL * 86400000 + 4 * 3600000, b, sizeof b), "3d4h");
}

static void test_format_duration(void **state)
{
    (void)state;
    char b[32];
    assert_string_equal(co_format_duration(0, b, sizeof b), "0ms");
    assert_string_equal(co_format_duration(250, b, sizeof b), "250ms");
    assert_string_equal(co_format_duration(999, b, sizeof b), "999ms");
    assert_string_equal(co_format_duration(1000, b, sizeof b), "1s");
    assert_string_equal(co_format_duration(1500, b, sizeof b), "1s500ms"); /* exact, parseable */
    assert_string_equal(co_format_duration(30000, b, sizeof b), "30s");
    assert_string_equal(co_format_duration(300000, b, sizeof b), "5m");
    assert_string_equal(co_format_duration(3600000, b, sizeof b), "1h");
    assert_string_equal(co_format_duration(48LL * 3600000, b, sizeof b), "2d");
    assert_string_equal(co_format_duration(25LL * 3600000, b, sizeof b), "1d1h");
    assert_string_equal(co_format_duration(14LL * 86400000, b, sizeof b), "14d");
    assert_string_equal(co_format_duration(5400000, b, sizeof b), "1h30m");
    /* returns its buffer, and truncates rather than overflowing a small one */
    char small[4];
    assert_ptr_equal(co_format_duration(123456, small, sizeof small), small);
    assert_int_equal(strlen(small), 3);
}

static void test_format_size(void **state)
{
    (void)state;
    char b[32];
    int64_t v;
    assert_string_equal(co_format_size(0, b, sizeof b), "0");
    assert_string_equal(co_format_size(1500, b, sizeof b), "1500");
    assert_string_equal(co_format_size(65536, b, sizeof b), "64KiB");
    assert_string_equal(co_format_size(4 * 1024 * 1024, b, sizeof b), "4MiB");
    assert_string_equal(co_format_size(1073741824, b, sizeof b), "1GiB");
    assert_string_equal(co_format_size(1536LL * 1024 * 1024, b, sizeof b), "1536MiB"); /* exact, not 1.5GiB */
    const int64_t back[] = {1, 1023, 1024, 1025, 65536, 3 * 1048576 + 1024, 1073741824, 5LL << 30};
    for (size_t i = 0; i < sizeof back / sizeof back[0]; i++) {
        assert_int_equal(co_parse_size(co_format_size(back[i], b, sizeof b), &v), 0);
        assert_int_equal(v, back[i]);
    }
}

/* What co_format_duration writes, co_parse_duration_ms reads back to the
 * same value (bounds in error messages, `cutover config` output). */
static void test_format_duration_round_trip(void **state)
{
    (void)state;
    static const int64_t ms[] = {
        0, 1, 100, 250, 999, 1000, 1500, 2500, 30000, 61000, 90000, 300000, 600000,
        3599000, 3600000, 48LL * 3600000, 25LL * 3600000, 86400000, 14LL * 86400000,
        30LL * 86400000, 5400000 /* "1h30m" */, 9000000 /* "2h30m" */,
    };
    char bad[1024] = "";
    size_t used = 0;
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        char b[32];
        int64_t back = -1;
        co_format_duration(ms[i], b, sizeof b);
        int rc = co_parse_duration_ms(b, &back);
        if ((rc != 0 || back != ms[i]) && used < sizeof bad)
            used += (size_t)snprintf(bad + used, sizeof bad - used, " %lld->'%s'->%s", (long long)ms[i], b,
                                     rc ? co_err_name(rc) : "other value");
    }
    if (used)
        fail_msg("durations that do not round-trip:%s", bad);
}

/* ---- ids, hashes, buckets --------------------------------------------------- */

static void test_id_new(void **state)
{
    (void)state;
    char a[CO_ID_LEN], b[CO_ID_LEN];
    memset(a, 'X', sizeof a);
    memset(b, 'X', sizeof b);
    co_id_new(a);
    co_id_new(b);
    assert_int_equal(strlen(a), 32);
    assert_int_equal(strlen(b), 32);
    for (int i = 0; i < 32; i++) {
        assert_true((a[i] >= '0' && a[i] <= '9') || (a[i] >= 'a' && a[i] <= 'f'));
        assert_true((b[i] >= '0' && b[i] <= '9') || (b[i] >= 'a' && b[i] <= 'f'));
    }
    assert_string_not_equal(a, b);
    /* 1000 ids: all distinct, and every hex digit shows up */
    enum { N = 1000 };
    char(*ids)[CO_ID_LEN] = calloc(N, CO_ID_LEN);
    assert_non_null(ids);
    int seen[16] = {0};
    for (int i = 0; i < N; i++) {
        co_id_new(ids[i]);
        for (int j = 0; j < 32; j++)
            seen[ids[i][j] <= '9' ? ids[i][j] - '0' : ids[i][j] - 'a' + 10]++;
    }
    for (int i = 0; i < 16; i++)
        assert_true(seen[i] > 0);
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            assert_int_not_equal(memcmp(ids[i], ids[j], 32), 0);
    free(ids);
}

static void test_hex_u64(void **state)
{
    (void)state;
    const uint64_t vals[] = {0, 1, 0xabcdef, UINT64_C(0x0123456789abcdef), UINT64_MAX};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        for (int digits = 1; digits <= 16; digits++) {
            char want[24], got[24];
            snprintf(want, sizeof want, "%016llx", (unsigned long long)vals[i]);
            memset(got, 'X', sizeof got);
            co_hex_u64(got, vals[i], digits);
            assert_memory_equal(got, want + 16 - digits, (size_t)digits); /* the low digits */
            assert_int_equal(got[digits], 'X');                        /* nothing past them */
        }
    }
}

static void test_hash64(void **state)
{
    (void)state;
    assert_true(co_hash64("abc", 3, 0) == co_hash64("abc", 3, 0));
    assert_true(co_hash64("abc", 3, 0) != co_hash64("abc", 3, 1));
    assert_true(co_hash64("abc", 3, 0) != co_hash64("abd", 3, 0));
    assert_true(co_hash64("abc", 2, 0) == co_hash64("abX", 2, 0)); /* only len bytes count */
    /* known xxHash64 vector: empty input, seed 0 */
    assert_true(co_hash64("", 0, 0) == 0xEF46DB3751D8E999ULL);
}

static void test_bucket(void **state)
{
    (void)state;
    enum { N = 100000 };
    unsigned decile[10] = {0};
    unsigned differ = 0;
    char key[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "user-%d", i);
        unsigned b = co_bucket("rollout-1", key);
        assert_true(b < 10000);
        assert_int_equal(b, co_bucket("rollout-1", key)); /* deterministic */
        decile[b / 1000]++;
        if (b != co_bucket("rollout-2", key))
            differ++;
    }
    for (int d = 0; d < 10; d++) {
        if (decile[d] < N * 9 / 100 || decile[d] > N * 11 / 100)
            fail_msg("decile %d holds %u of %d keys", d, decile[d], N);
    }
    /* a new salt reshuffles: nearly every key moves */
    assert_true(differ > N * 99 / 100);
    /* salt and key are not simply concatenated: ("ab5", "c") and ("a", "b5c")
     * would then always share a bucket */
    unsigned same = 0;
    for (int i = 0; i < 1000; i++) {
        char s1[32], k2[32];
        snprintf(s1, sizeof s1, "ab%d", i);
        snprintf(k2, sizeof k2, "b%dc", i);
        if (co_bucket(s1, "c") == co_bucket("a", k2))
            same++;
    }
    assert_true(same < 20);
    /* the empty key and empty salt are fine */
    assert_true(co_bucket("", "") < 10000);
    assert_int_equal(co_bucket("", "k"), co_bucket("", "k"));
}

static void test_clocks(void **state)
{
    (void)state;
    int64_t now = co_now_ms();
    assert_true(now > 1577836800000LL); /* after 2020-01-01 */
    int64_t a = co_mono_us();
    usleep(2000);
    int64_t b = co_mono_us();
    assert_true(b - a >= 2000);
    assert_true(b - a < 5000000);
    assert_true(co_now_ms() >= now);
}

/* ---- files ------------------------------------------------------------------ */

static void test_read_file(void **state)
{
    const char *dir = *state;
    char path[4096];
    char *out = NULL;
    size_t len = 0;

    snprintf(path, sizeof path, "%s/hello.txt", dir);
    write_raw(path, "hello\nworld\n", 12);
    assert_int_equal(co_read_file(path, 1024, &out, &len), 0);
    assert_int_equal(len, 12);
    assert_string_equal(out, "hello\nworld\n");
    free(out);
    out = NULL;
    /* out_len may be NULL */
    assert_int_equal(co_read_file(path, 1024, &out, NULL), 0);
    assert_string_equal(out, "hello\nworld\n");
    free(out);
    out = NULL;
    /* exactly at the limit is fine; one byte under is too big */
    assert_int_equal(co_read_file(path, 12, &out, &len), 0);
    free(out);
    out = NULL;
    assert_int_equal(co_read_file(path, 11, &out, &len), CO_ETOOBIG);
    assert_null(out);
    assert_non_null(strstr(co_error_last(), "hello.txt"));

    /* an empty file is "" */
    snprintf(path, sizeof path, "%s/empty", dir);
    write_raw(path, "", 0);
    assert_int_equal(co_read_file(path, 0, &out, &len), 0);
    assert_int_equal(len, 0);
    assert_string_equal(out, "");
    free(out);
    out = NULL;

    /* binary content with NULs, larger than the first read chunk */
    size_t big = 200000;
    unsigned char *data = malloc(big);
    assert_non_null(data);
    for (size_t i = 0; i < big; i++)
        data[i] = (unsigned char)(i * 7 + (i >> 8));
    snprintf(path, sizeof path, "%s/big.bin", dir);
    write_raw(path, data, big);
    assert_int_equal(co_read_file(path, big, &out, &len), 0);
    assert_int_equal(len, big);
    assert_memory_equal(out, data, big);
    assert_int_equal(out[big], '\0');
    free(out);
    out = NULL;
    assert_int_equal(co_read_file(path, big - 1, &out, &len), CO_ETOOBIG);
    assert_int_equal(co_read_file(path, 4096, &out, &len), CO_ETOOBIG);
    assert_null(out);
    free(data);

    /* missing */
    snprintf(path, sizeof path, "%s/nope/missing.yaml", dir);
    assert_int_equal(co_read_file(path, 1024, &out, &len), CO_ENOENT);
    assert_null(out);
    assert_int_equal(co_error_last_status(), CO_ENOENT);
    assert_non_null(strstr(co_error_last(), "missing.yaml"));
    /* a directory is not a file */
    assert_true(co_read_file(dir, 1024, &out, &len) < 0);
    assert_null(out);
}

static void test_write_file(void **state)
{
    const char *dir = *state;
    char path[4096];
    char *out = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/report.md", dir);

    assert_int_equal(co_write_file(path, "first\n", 6, 0), 0);
    assert_int_equal(co_read_file(path, 1024, &out, &len), 0);
    assert_string_equal(out, "first\n");
    free(out);
    out = NULL;
    /* no temp file left next to it */
    assert_int_equal(count_entries(dir), 1);

    /* refuses to overwrite */
    co_error_clear();
    assert_int_equal(co_write_file(path, "second\n", 7, 0), CO_EEXIST);
    assert_int_equal(co_error_last_status(), CO_EEXIST);
    assert_non_null(strstr(co_error_last(), "report.md"));
    assert_int_equal(co_read_file(path, 1024, &out, &len), 0);
    assert_string_equal(out, "first\n");
    free(out);
    out = NULL;
    assert_int_equal(count_entries(dir), 1);

    /* overwrite when asked, shorter content truncates */
    assert_int_equal(co_write_file(path, "2\n", 2, 1), 0);
    assert_int_equal(co_read_file(path, 1024, &out, &len), 0);
    assert_int_equal(len, 2);
    assert_string_equal(out, "2\n");
    free(out);
    out = NULL;
    assert_int_equal(count_entries(dir), 1);

    /* empty and binary content */
    snprintf(path, sizeof path, "%s/empty", dir);
    assert_int_equal(co_write_file(path, "", 0, 0), 0);
    assert_int_equal(co_read_file(path, 1024, &out, &len), 0);
    assert_int_equal(len, 0);
    free(out);
    out = NULL;
    snprintf(path, sizeof path, "%s/bin", dir);
    assert_int_equal(co_write_file(path, "a\0b\xff", 4, 0), 0);
    assert_int_equal(co_read_file(path, 1024, &out, &len), 0);
    assert_int_equal(len, 4);
    assert_memory_equal(out, "a\0b\xff", 4);
    free(out);
    out = NULL;
    assert_int_equal(count_entries(dir), 3);

    /* a missing directory: an error, and nothing left behind */
    snprintf(path, sizeof path, "%s/missing/x.txt", dir);
    int rc = co_write_file(path, "x", 1, 0);
    assert_true(rc < 0);
    assert_int_not_equal(rc, CO_EEXIST);
    assert_int_equal(count_entries(dir), 3);

    /* the target is a directory: refused; with overwrite, rename fails and
     * the temp file is removed */
    snprintf(path, sizeof path, "%s/sub", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    assert_int_equal(co_write_file(path, "x", 1, 0), CO_EEXIST);
    assert_true(co_write_file(path, "x", 1, 1) < 0);
    assert_int_equal(count_entries(dir), 4);
    assert_int_equal(count_entries(path), 0);
}

static void test_mkdirs(void **state)
{
    const char *dir = *state;
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/a/b/c/d", dir);
    assert_int_equal(co_mkdirs(path, 0755), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    /* again: already there is fine */
    assert_int_equal(co_mkdirs(path, 0755), 0);
    /* a trailing slash and doubled slashes */
    snprintf(path, sizeof path, "%s/x//y/", dir);
    assert_int_equal(co_mkdirs(path, 0700), 0);
    snprintf(path, sizeof path, "%s/x/y", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0077, 0); /* the mode is used (the umask only removes bits) */
    /* a file in the way */
    snprintf(path, sizeof path, "%s/file", dir);
    write_raw(path, "x", 1);
    snprintf(path, sizeof path, "%s/file/sub", dir);
    assert_true(co_mkdirs(path, 0755) < 0);
    /* bad paths */
    assert_int_equal(co_mkdirs("", 0755), CO_EINVAL);
    char *huge = malloc(5000);
    assert_non_null(huge);
    memset(huge, 'a', 4999);
    huge[4999] = '\0';
    assert_int_equal(co_mkdirs(huge, 0755), CO_EINVAL);
    free(huge);
}

/* mkdir -p on an existing regular file fails ("File exists"); co_mkdirs
 * reports success and the caller fails later with ENOTDIR. */
static void test_mkdirs_onto_a_file(void **state)
{
    const char *dir = *state;
    char path[4096];
    snprintf(path, sizeof path, "%s/plain", dir);
    write_raw(path, "x", 1);
    int rc = co_mkdirs(path, 0755);
    if (rc == 0)
        fail_msg("co_mkdirs(\"%s\") returned 0 although it is a regular file", path);
}

/* The word-at-a-time scan stops exactly where a byte-by-byte one does, for
 * every start offset and every kind of stopping byte at every position. */
static size_t plain_end_bytewise(const unsigned char *p, size_t i, size_t n)
{
    while (i < n && p[i] >= 0x20 && p[i] < 0x80 && p[i] != '"' && p[i] != '\\')
        i++;
    return i;
}

static void test_json_plain_end(void **state)
{
    (void)state;
    static const unsigned char stops[] = {'"', '\\', 0x00, 0x1f, 0x0a, 0x80, 0xc3, 0xff};
    static const unsigned char plain[] = {' ', 'a', '~', 0x7f, '!', '#', '[', ']', '0', 0x21, 0x5b, 0x5d};
    unsigned char buf[48];
    for (size_t k = 0; k < sizeof stops; k++)
        for (size_t pos = 0; pos < sizeof buf; pos++) {
            for (size_t j = 0; j < sizeof buf; j++)
                buf[j] = plain[(j * 7 + k) % sizeof plain];
            buf[pos] = stops[k];
            for (size_t start = 0; start <= sizeof buf; start++)
                for (size_t n = start; n <= sizeof buf; n += 5)
                    assert_int_equal(co_json_plain_end(buf, start, n), plain_end_bytewise(buf, start, n));
        }
    /* pseudo-random bytes, mostly plain with stops sprinkled in */
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (int round = 0; round < 2000; round++) {
        for (size_t j = 0; j < sizeof buf; j++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[j] = (x & 15) ? plain[(x >> 8) % sizeof plain] : (unsigned char)(x >> 16);
        }
        size_t start = (size_t)(x >> 40) % sizeof buf;
        assert_int_equal(co_json_plain_end(buf, start, sizeof buf), plain_end_bytewise(buf, start, sizeof buf));
    }
}

static void test_utf8_bad_offset(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t len, want;
    } cases[] = {
        {"plain ascii", 11, 11},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, 14}, /* 2-, 3- and 4-byte forms */
        {"ab\xff" "cd", 5, 2},
        {"ab\x80", 3, 2},                 /* lone continuation byte */
        {"a\xc0\xaf", 3, 1},              /* overlong '/' */
        {"a\xed\xa0\x80", 4, 1},          /* surrogate U+D800 */
        {"a\xf4\x90\x80\x80", 5, 1},      /* above U+10FFFF */
        {"abc\xe2\x82", 5, 3},            /* truncated sequence */
        {"a\0b", 3, 1},                   /* NUL */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(co_utf8_bad_offset((const unsigned char *)cases[i].s, cases[i].len), cases[i].want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edit_distance),
        cmocka_unit_test(test_suggest),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_format_duration),
        cmocka_unit_test(test_format_duration_left),
        cmocka_unit_test(test_format_size),
        cmocka_unit_test(test_id_new),
        cmocka_unit_test(test_utf8_bad_offset),
        cmocka_unit_test(test_json_plain_end),
        cmocka_unit_test(test_hex_u64),
        cmocka_unit_test(test_hash64),
        cmocka_unit_test(test_bucket),
        cmocka_unit_test(test_clocks),
        cmocka_unit_test_setup_teardown(test_read_file, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_write_file, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_mkdirs, setup_tmp, teardown_tmp),
        /* regressions found by the first review of the helpers */
        cmocka_unit_test_setup_teardown(test_mkdirs_onto_a_file, setup_tmp, teardown_tmp),
        cmocka_unit_test(test_format_duration_round_trip),
        cmocka_unit_test(test_parse_duration_not_a_number),
        cmocka_unit_test(test_parse_size_out_of_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
