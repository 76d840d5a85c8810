/* co_buf: a growable byte buffer with a hard limit (request bodies, upstream
 * streams, reports). Appending past `max` fails with CO_ETOOBIG and leaves the
 * buffer as it was. The buffer owns `p`; co_buf_free releases it. The content
 * is always NUL-terminated (the NUL is not counted in len). */
#ifndef CUTOVER_BUF_H
#define CUTOVER_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct co_buf {
    char *p;
    size_t len, cap, max;
} co_buf;

#define CO_BUF_UNLIMITED ((size_t)-1)

void co_buf_init(co_buf *b, size_t max);
int co_buf_append(co_buf *b, const void *data, size_t n);
int co_buf_puts(co_buf *b, const char *s);
int co_buf_printf(co_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int co_buf_vprintf(co_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Room for n more bytes without another allocation (a caller that knows
 * the size it is about to append saves the doublings). CO_ETOOBIG past
 * `max`, the buffer unchanged. */
int co_buf_reserve(co_buf *b, size_t n);
void co_buf_reset(co_buf *b);
/* Hands the bytes to the caller (free() them) and resets the buffer. Never
 * NULL on success: an empty buffer yields "". */
char *co_buf_detach(co_buf *b);
void co_buf_free(co_buf *b);

#endif
