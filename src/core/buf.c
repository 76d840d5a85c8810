/* co_buf: bounded growable buffer (see include/cutover/buf.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cutover/buf.h"
#include "cutover/error.h"

void co_buf_init(co_buf *b, size_t max)
{
    b->p = NULL;
    b->len = b->cap = 0;
    b->max = max;
}

static int grow(co_buf *b, size_t need)
{
    if (need > b->max || need + 1 < need)
        return co_error_set(CO_ETOOBIG, "buffer limit of %zu bytes exceeded", b->max);
    if (need + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return co_error_set(CO_ENOMEM, "out of memory growing a buffer to %zu bytes", cap);
    b->p = p;
    b->cap = cap;
    return 0;
}

int co_buf_append(co_buf *b, const void *data, size_t n)
{
    if (n > b->max || b->len > b->max - n)
        return co_error_set(CO_ETOOBIG, "buffer limit of %zu bytes exceeded", b->max);
    int rc = grow(b, b->len + n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int co_buf_puts(co_buf *b, const char *s) { return co_buf_append(b, s, strlen(s)); }

int co_buf_reserve(co_buf *b, size_t n)
{
    if (n > b->max || b->len > b->max - n)
        return co_error_set(CO_ETOOBIG, "buffer limit of %zu bytes exceeded", b->max);
    if (b->len + n + 1 <= b->cap)
        return 0;
    char *p = realloc(b->p, b->len + n + 1);
    if (!p)
        return co_error_set(CO_ENOMEM, "out of memory growing a buffer to %zu bytes", b->len + n + 1);
    if (!b->p)
        p[0] = '\0';
    b->p = p;
    b->cap = b->len + n + 1;
    return 0;
}

int co_buf_vprintf(co_buf *b, const char *fmt, va_list ap)
{
    /* formatted straight into the room there is: a second pass only when
     * it did not fit (the common case formats once) */
    size_t room = b->cap > b->len ? b->cap - b->len : 0;
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(room ? b->p + b->len : NULL, room, fmt, cp);
    va_end(cp);
    if (n < 0) {
        if (room)
            b->p[b->len] = '\0';
        return co_error_set(CO_EINVAL, "bad format");
    }
    if ((size_t)n > b->max || b->len > b->max - (size_t)n) {
        if (room)
            b->p[b->len] = '\0';
        return co_error_set(CO_ETOOBIG, "buffer limit of %zu bytes exceeded", b->max);
    }
    if ((size_t)n < room) {
        b->len += (size_t)n;
        return 0;
    }
    if (room)
        b->p[b->len] = '\0'; /* as it was, should growing fail */
    int rc = grow(b, b->len + (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int co_buf_printf(co_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = co_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void co_buf_reset(co_buf *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}

char *co_buf_detach(co_buf *b)
{
    char *p = b->p ? b->p : strdup("");
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}

void co_buf_free(co_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}
