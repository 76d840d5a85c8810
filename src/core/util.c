/* Shared helpers: clocks, ids, hashing, suggestions, duration/size parsing,
 * whole-file I/O. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "cutover/error.h"
#include "cutover/util.h"

int64_t co_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t co_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void co_hex_u64(char *out, uint64_t v, int digits)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; i--, v >>= 4)
        out[i] = hex[v & 15];
}

void co_id_new(char out[CO_ID_LEN])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char r[16];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        /* getrandom cannot fail for 16 bytes after boot; mix clocks if it does */
        uint64_t a = (uint64_t)co_mono_us(), b = (uint64_t)co_now_ms() ^ (uint64_t)(uintptr_t)out;
        memcpy(r, &a, 8);
        memcpy(r + 8, &b, 8);
    }
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[r[i] >> 4];
        out[2 * i + 1] = hex[r[i] & 15];
    }
    out[32] = '\0';
}

uint64_t co_hash64(const void *data, size_t len, uint64_t seed)
{
    return XXH64(data, len, seed);
}

unsigned co_bucket(const char *salt, const char *key)
{
    uint64_t h = XXH64(salt, strlen(salt), 0);
    h = XXH64(key, strlen(key), h);
    return (unsigned)(h % 10000u);
}

/* libfyaml 0.7 silently cuts a document short at invalid bytes (and can
 * spin on some), so YAML readers refuse them first with this. */
size_t co_utf8_bad_offset(const unsigned char *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        size_t n;
        unsigned min;
        if (c == 0)
            return i;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) n = 2, min = 0x80;
        else if ((c & 0xf0) == 0xe0) n = 3, min = 0x800;
        else if ((c & 0xf8) == 0xf0) n = 4, min = 0x10000;
        else return i;
        if (i + n > len)
            return i;
        unsigned cp = c & (0xff >> (n + 1));
        for (size_t k = 1; k < n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return i;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return i;
        i += n;
    }
    return len;
}

int co_edit_distance(const char *a, const char *b)
{
    if (strcmp(a, b) == 0)
        return 0;
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return 255;
    int row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int prev = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int cur = row[j];
            int cost = a[i - 1] == b[j - 1] ? 0 : 1;
            int best = prev + cost;
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            prev = cur;
        }
    }
    return row[lb] > 255 ? 255 : row[lb];
}

const char *co_suggest(const char *word, const char *const *candidates)
{
    const char *best = NULL;
    int best_d = 256;
    for (const char *const *c = candidates; *c; c++) {
        int d = co_edit_distance(word, *c);
        if (d < best_d) {
            best_d = d;
            best = *c;
        }
    }
    int len = (int)strlen(word);
    int limit = len / 3 > 2 ? len / 3 : 2;
    return best && best_d <= limit ? best : NULL;
}

static int duration_unit(const char *u, size_t n, double *mult)
{
    if (n == 0 || (n == 1 && u[0] == 's')) *mult = 1000;
    else if (n == 2 && !strncmp(u, "ms", 2)) *mult = 1;
    else if (n == 1 && u[0] == 'm') *mult = 60e3;
    else if (n == 1 && u[0] == 'h') *mult = 3600e3;
    else if (n == 1 && u[0] == 'd') *mult = 86400e3;
    else return -1;
    return 0;
}

/* "48h", "1h30m", "1s234ms", "250ms", "1.5h", or bare seconds. */
int co_parse_duration_ms(const char *s, int64_t *out_ms)
{
    if (!s || !*s)
        return co_error_set(CO_EPARSE, "empty duration");
    const char *p = s;
    double total = 0;
    int parts = 0;
    while (*p) {
        if (!isdigit((unsigned char)*p) && *p != '.')
            goto bad;
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || !isfinite(v) || v < 0)
            goto bad;
        const char *u = end;
        while (*end && isalpha((unsigned char)*end))
            end++;
        double mult;
        if (duration_unit(u, (size_t)(end - u), &mult) < 0)
            return co_error_set(CO_EPARSE, "'%s' has an unknown unit '%.*s' (use ms, s, m, h or d)", s,
                                (int)(end - u), u);
        if (end == u && (parts > 0 || *end))
            goto bad; /* a bare number only stands alone */
        total += v * mult;
        parts++;
        p = end;
    }
    if (total > 9.2e18)
        return co_error_set(CO_EPARSE, "'%s' is too long a duration", s);
    *out_ms = (int64_t)(total + 0.5);
    return 0;
bad:
    return co_error_set(CO_EPARSE, "'%s' is not a duration (e.g. 250ms, 30s, 5m, 48h, 1h30m, 14d)", s);
}

int co_parse_size(const char *s, int64_t *out_bytes)
{
    if (!s || !*s)
        return co_error_set(CO_EPARSE, "empty size");
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v) || v < 0 || !isdigit((unsigned char)s[0]))
        return co_error_set(CO_EPARSE, "'%s' is not a size (e.g. 512, 64k, 10MB, 1MiB)", s);
    double mult;
    if (!*end || strcmp(end, "B") == 0) mult = 1;
    else if (!strcasecmp(end, "k") || !strcasecmp(end, "kb") || !strcasecmp(end, "kib")) mult = 1024;
    else if (!strcasecmp(end, "m") || !strcasecmp(end, "mb") || !strcasecmp(end, "mib")) mult = 1024.0 * 1024;
    else if (!strcasecmp(end, "g") || !strcasecmp(end, "gb") || !strcasecmp(end, "gib")) mult = 1024.0 * 1024 * 1024;
    else
        return co_error_set(CO_EPARSE, "'%s' has an unknown unit '%s' (use k, MB, GiB…)", s, end);
    double bytes = v * mult;
    if (bytes > 4.6e18)
        return co_error_set(CO_EPARSE, "'%s' is too large a size", s);
    *out_bytes = (int64_t)bytes;
    return 0;
}

const char *co_format_size(int64_t bytes, char *buf, size_t n)
{
    static const char *const units[] = {"GiB", "MiB", "KiB"};
    for (int i = 0; i < 3; i++) {
        int64_t unit = (int64_t)1 << (10 * (3 - i));
        if (bytes > 0 && bytes % unit == 0) {
            snprintf(buf, n, "%lld%s", (long long)(bytes / unit), units[i]);
            return buf;
        }
    }
    snprintf(buf, n, "%lld", (long long)bytes);
    return buf;
}

/* Exact and parseable again: "48h", "1h30m", "1s234ms", "250ms". */
const char *co_format_duration(int64_t ms, char *buf, size_t n)
{
    static const struct { int64_t ms; const char *unit; } units[] = {
        {86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"},
    };
    size_t used = 0;
    if (ms <= 0) {
        snprintf(buf, n, "0ms");
        return buf;
    }
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof units / sizeof units[0] && ms > 0; i++) {
        int64_t q = ms / units[i].ms;
        if (q == 0)
            continue;
        ms -= q * units[i].ms;
        int w = snprintf(buf + used, used < n ? n - used : 0, "%lld%s", (long long)q, units[i].unit);
        if (w < 0 || (size_t)w >= n - used)
            break;
        used += (size_t)w;
    }
    return buf;
}

const char *co_format_duration_left(int64_t ms, char *buf, size_t n)
{
    int64_t s = (ms + 999) / 1000;
    if (ms <= 0)
        snprintf(buf, n, "0s");
    else if (ms < 1000)
        snprintf(buf, n, "%lldms", (long long)ms);
    else if (s >= 86400)
        snprintf(buf, n, "%lldd%lldh", (long long)(s / 86400), (long long)(s % 86400 / 3600));
    else if (s >= 3600)
        snprintf(buf, n, "%lldh%lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
    else if (s >= 60)
        snprintf(buf, n, "%lldm%llds", (long long)(s / 60), (long long)(s % 60));
    else
        snprintf(buf, n, "%llds", (long long)s);
    return buf;
}

int co_read_file(const char *path, size_t max, char **out, size_t *out_len)
{
    int rc = 0;
    char *data = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return co_error_set(errno == ENOENT ? CO_ENOENT : CO_EIO, "%s: %s", path, strerror(errno));
    size_t cap = 4096, len = 0;
    data = malloc(cap);
    if (!data) {
        rc = co_error_set(CO_ENOMEM, "out of memory reading %s", path);
        goto done;
    }
    for (;;) {
        if (len + 1 >= cap) {
            cap *= 2;
            char *p = realloc(data, cap);
            if (!p) {
                rc = co_error_set(CO_ENOMEM, "out of memory reading %s", path);
                goto done;
            }
            data = p;
        }
        size_t n = fread(data + len, 1, cap - len - 1, f);
        len += n;
        if (len > max) {
            rc = co_error_set(CO_ETOOBIG, "%s is larger than %zu bytes", path, max);
            goto done;
        }
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        rc = co_error_set(CO_EIO, "%s: read error", path);
        goto done;
    }
    data[len] = '\0';
    *out = data;
    if (out_len)
        *out_len = len;
    data = NULL;
done:
    free(data);
    fclose(f);
    return rc;
}

int co_write_file(const char *path, const char *data, size_t len, int overwrite)
{
    int rc = 0, fd = -1;
    char *tmp = NULL;
    if (!overwrite && access(path, F_OK) == 0)
        return co_error_set(CO_EEXIST, "%s already exists", path);
    if (asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0)
        return co_error_set(CO_ENOMEM, "out of memory");
    fd = mkostemp(tmp, O_CLOEXEC); /* O_EXCL: never follows a planted link */
    if (fd >= 0 && fchmod(fd, 0644) < 0) {
        rc = co_error_set(CO_EIO, "%s: %s", tmp, strerror(errno));
        goto done;
    }
    if (fd < 0) {
        rc = co_error_set(CO_EIO, "%s: %s", tmp, strerror(errno));
        goto done;
    }
    for (size_t off = 0; off < len;) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = co_error_set(CO_EIO, "%s: %s", tmp, strerror(errno));
            goto done;
        }
        off += (size_t)n;
    }
    if (close(fd) < 0) {
        fd = -1;
        rc = co_error_set(CO_EIO, "%s: %s", tmp, strerror(errno));
        goto done;
    }
    fd = -1;
    if (overwrite) {
        if (rename(tmp, path) < 0)
            rc = co_error_set(CO_EIO, "%s: %s", path, strerror(errno));
    } else {
        /* link() fails if the name appeared meanwhile: no silent overwrite */
        if (link(tmp, path) < 0)
            rc = co_error_set(errno == EEXIST ? CO_EEXIST : CO_EIO, "%s: %s", path,
                              errno == EEXIST ? "already exists" : strerror(errno));
        unlink(tmp);
    }
done:
    if (fd >= 0)
        close(fd);
    if (rc)
        unlink(tmp);
    free(tmp);
    return rc;
}

int co_mkdirs(const char *path, int mode)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return co_error_set(CO_EINVAL, "bad directory path");
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, (mode_t)mode) < 0 && errno != EEXIST)
            return co_error_set(CO_EIO, "mkdir %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, (mode_t)mode) < 0 && errno != EEXIST)
        return co_error_set(CO_EIO, "mkdir %s: %s", buf, strerror(errno));
    struct stat st;
    if (stat(buf, &st) < 0 || !S_ISDIR(st.st_mode))
        return co_error_set(CO_EEXIST, "%s exists and is not a directory", buf);
    return 0;
}
