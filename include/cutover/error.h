/* cutover error convention: every library function returns 0 (CO_OK) or a
 * negative code from CO_ERRNO_MAP. Details (what, where) go to a per-thread
 * error slot the caller reads with co_error_last(). Library code never prints
 * or exits on ordinary errors. */
#ifndef CUTOVER_ERROR_H
#define CUTOVER_ERROR_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#define CO_ERRNO_MAP(X)                                                    \
    X(EINVAL,    "invalid argument")                                       \
    X(ENOMEM,    "out of memory")                                          \
    X(EIO,       "input/output error")                                     \
    X(ENOENT,    "no such file or object")                                 \
    X(EEXIST,    "already exists")                                         \
    X(ECONFIG,   "invalid configuration")                                  \
    X(EPARSE,    "malformed input")                                        \
    X(ETOOBIG,   "size limit exceeded")                                    \
    X(ESTORE,    "store error")                                            \
    X(ESCHEMA,   "store schema is newer than this cutover")                \
    X(EBUSY,     "resource busy")                                          \
    X(ECONFLICT, "concurrent update conflict")                             \
    X(ENOTSUP,   "not supported")                                          \
    X(ENET,      "network error")                                          \
    X(ETIMEDOUT, "timed out")                                              \
    X(EUPSTREAM, "upstream error")                                         \
    X(EUSAGE,    "usage error")                                            \
    X(ESTATE,    "operation not allowed in the current state")

enum co_status {
    CO_OK = 0,
    CO__ERR_FIRST = -1000,
#define CO__ERR_ENUM(name, msg) CO_##name,
    CO_ERRNO_MAP(CO__ERR_ENUM)
#undef CO__ERR_ENUM
    CO__ERR_LAST
};

/* "EINVAL" etc. for a status; "OK" for 0, "EUNKNOWN" otherwise. Static strings. */
const char *co_err_name(int status);
/* The fixed message for a status ("invalid argument"). Static string. */
const char *co_strerror(int status);

/* Sets this thread's error slot to the formatted message and returns status,
 * so callers can write `return co_error_set(CO_EINVAL, "bad %s", x);`. */
int co_error_set(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int co_error_setv(int status, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* The detail of the last error on this thread, or co_strerror() of it when no
 * detail was set. Valid until the next co_error_set on this thread. Never NULL. */
const char *co_error_last(void);
/* The status of the last co_error_set on this thread (0 after clear). */
int co_error_last_status(void);
void co_error_clear(void);

/* A list of located diagnostics (config and eval-set errors: all of them,
 * not just the first). The list owns its strings. */
typedef struct co_diag {
    char *file;     /* may be NULL */
    int line, col;  /* 1-based; 0 when unknown */
    char *msg;
} co_diag;

typedef struct co_diags {
    co_diag *v;
    size_t n, cap;
} co_diags;

void co_diags_add(co_diags *d, const char *file, int line, int col,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Writes "file:line:col: msg\n" for each diagnostic. */
void co_diags_print(const co_diags *d, FILE *out);
void co_diags_free(co_diags *d);

#endif
