/* Small shared helpers: clocks, ids, hashing, string distance for
 * "did you mean" suggestions, duration/size parsing, file reading. */
#ifndef CUTOVER_UTIL_H
#define CUTOVER_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Wall clock in milliseconds since the epoch. */
int64_t co_now_ms(void);
/* Monotonic clock in microseconds (for latencies). */
int64_t co_mono_us(void);

/* A random 128-bit id as 32 lowercase hex chars + NUL (request ids, pair ids). */
#define CO_ID_LEN 33
void co_id_new(char out[CO_ID_LEN]);

/* xxHash64 of bytes with a seed. */
uint64_t co_hash64(const void *data, size_t len, uint64_t seed);
/* Sticky bucket in [0, 10000): xxHash64 of (salt, key). */
unsigned co_bucket(const char *salt, const char *key);

/* Offset of the first byte that is not valid UTF-8 (overlong forms,
 * surrogates and code points above U+10FFFF included) or is NUL; len when
 * the whole text is valid. */
size_t co_utf8_bad_offset(const unsigned char *p, size_t len);

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
