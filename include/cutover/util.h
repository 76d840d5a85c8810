/* Small shared helpers: clocks, ids, hashing, string distance for
 * "did you mean" suggestions, duration/size parsing, file reading. */
#ifndef CUTOVER_UTIL_H
#define CUTOVER_UTIL_H

#include <stddef.h>
#include <stdint.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Wall clock in milliseconds since the epoch. */
int64_t co_now_ms(void);
/* Monotonic clock in microseconds (for latencies). */
int64_t co_mono_us(void);

/* A random 128-bit id as 32 lowercase hex chars + NUL (request ids, pair ids). */
#define CO_ID_LEN 33
void co_id_new(char out[CO_ID_LEN]);

/* The low `digits` hex digits (1..16, lowercase, zero-padded) of v into out;
 * no NUL. For ids on hot paths, where snprintf("%016llx") costs a
 * thousand instructions. */
void co_hex_u64(char *out, uint64_t v, int digits);

/* xxHash64 of bytes with a seed. */
uint64_t co_hash64(const void *data, size_t len, uint64_t seed);
/* Sticky bucket in [0, 10000): xxHash64 of (salt, key). */
unsigned co_bucket(const char *salt, const char *key);

/* Offset of the first byte that is not valid UTF-8 (overlong forms,
 * surrogates and code points above U+10FFFF included) or is NUL; len when
 * the whole text is valid. */
size_t co_utf8_bad_offset(const unsigned char *p, size_t len);

/* End of the run of "plain" JSON string bytes starting at p[i]: the index of
 * the first byte that is a quote, a backslash, a control character or
 * non-ASCII (or n). Sixteen bytes per step with SSE2, eight on other
 * little-endian machines, so the request and response scanners on the
 * gateway's hot path do not pay a branch per byte for ordinary text. */
static inline size_t co_json_plain_end(const unsigned char *p, size_t i, size_t n)
{
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'), ctl = _mm_set1_epi8(0x1f);
    while (n - i >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                                   _mm_cmpeq_epi8(_mm_max_epu8(v, ctl), ctl)); /* v <= 0x1f */
        int mask = _mm_movemask_epi8(hit) | _mm_movemask_epi8(v); /* high bit: non-ASCII */
        if (mask)
            return i + (size_t)__builtin_ctz((unsigned)mask);
        i += 16;
    }
#endif
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t ones = UINT64_C(0x0101010101010101), high = UINT64_C(0x8080808080808080);
    while (n - i >= 8) {
        uint64_t w;
        __builtin_memcpy(&w, p + i, 8);
        uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
        /* a byte's flag is exact for the lowest flagged byte of each test:
         * borrows only ever carry upwards */
        uint64_t hit = (((q - ones) & ~q) | ((b - ones) & ~b) | ((w - ones * 0x20) & ~w) | w) & high;
        if (hit)
            return i + ((size_t)__builtin_ctzll(hit) >> 3);
        i += 8;
    }
#endif
    while (i < n && p[i] >= 0x20 && p[i] < 0x80 && p[i] != '"' && p[i] != '\\')
        i++;
    return i;
}

/* Edit distance (Levenshtein) between two strings, capped at 255. */
int co_edit_distance(const char *a, const char *b);
/* The candidate closest to `word` when it is close enough to be a plausible
 * typo (distance <= max(2, len/3)), else NULL. `candidates` ends with NULL. */
const char *co_suggest(const char *word, const char *const *candidates);

/* "250ms", "30s", "5m", "48h", "1h30m", "14d", or a bare number of seconds -> ms.
 * Returns 0 or CO_EPARSE (with co_error_last set). */
int co_parse_duration_ms(const char *s, int64_t *out_ms);
/* "512", "64k", "10MB", "1MiB" -> bytes. */
int co_parse_size(const char *s, int64_t *out_bytes);
/* Formats bytes exactly in the largest binary unit that divides them:
 * "1GiB", "4MiB", "64KiB", "1500" (parseable again by co_parse_size). */
const char *co_format_size(int64_t bytes, char *buf, size_t n);
/* Formats ms exactly as "48h", "1h30m", "1s234ms", "250ms" (parseable again). */
const char *co_format_duration(int64_t ms, char *buf, size_t n);
/* Formats a time left for people: rounded up to the second, at most two
 * units ("3d4h", "2h15m", "1m40s", "40s"), "250ms" under a second, "0s" when
 * none is left. */
const char *co_format_duration_left(int64_t ms, char *buf, size_t n);

/* Reads a whole file (at most max bytes) into a malloc'd NUL-terminated
 * string the caller frees. */
int co_read_file(const char *path, size_t max, char **out, size_t *out_len);
/* Writes a file atomically (temp + rename). Refuses to overwrite unless
 * overwrite is set (CO_EEXIST). */
int co_write_file(const char *path, const char *data, size_t len, int overwrite);
/* mkdir -p. */
int co_mkdirs(const char *path, int mode);

/* Embedded data/ files (generated at build time). NULL when absent. */
const char *co_data_get(const char *name, size_t *len);

#endif
