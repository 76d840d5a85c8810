/* The error convention: status names/messages from CO_ERRNO_MAP, the
 * per-thread error slot, and the located diagnostics list. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cutover/error.h"

static _Thread_local char tl_msg[1024];
static _Thread_local int tl_status;

const char *co_err_name(int status)
{
    switch (status) {
    case CO_OK: return "OK";
#define CO__ERR_NAME(name, msg) case CO_##name: return #name;
    CO_ERRNO_MAP(CO__ERR_NAME)
#undef CO__ERR_NAME
    default: return "EUNKNOWN";
    }
}

const char *co_strerror(int status)
{
    switch (status) {
    case CO_OK: return "success";
#define CO__ERR_MSG(name, msg) case CO_##name: return msg;
    CO_ERRNO_MAP(CO__ERR_MSG)
#undef CO__ERR_MSG
    default: return "unknown error";
    }
}

int co_error_setv(int status, const char *fmt, va_list ap)
{
    tl_status = status;
    if (fmt)
        vsnprintf(tl_msg, sizeof tl_msg, fmt, ap);
    else
        tl_msg[0] = '\0';
    return status;
}

int co_error_set(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    co_error_setv(status, fmt, ap);
    va_end(ap);
    return status;
}

const char *co_error_last(void)
{
    if (tl_msg[0])
        return tl_msg;
    return co_strerror(tl_status);
}

int co_error_last_status(void) { return tl_status; }

void co_error_clear(void)
{
    tl_status = 0;
    tl_msg[0] = '\0';
}

void co_diags_add(co_diags *d, const char *file, int line, int col, const char *fmt, ...)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        co_diag *v = realloc(d->v, cap * sizeof *v);
        if (!v)
            return; /* out of memory: the diagnostics we already hold still stand */
        d->v = v;
        d->cap = cap;
    }
    co_diag *g = &d->v[d->n];
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&g->msg, fmt, ap) < 0)
        g->msg = NULL;
    va_end(ap);
    if (!g->msg)
        return;
    g->file = file ? strdup(file) : NULL;
    g->line = line;
    g->col = col;
    d->n++;
}

void co_diags_print(const co_diags *d, FILE *out)
{
    for (size_t i = 0; i < d->n; i++) {
        const co_diag *g = &d->v[i];
        if (g->file && g->line)
            fprintf(out, "%s:%d:%d: %s\n", g->file, g->line, g->col, g->msg);
        else if (g->file)
            fprintf(out, "%s: %s\n", g->file, g->msg);
        else
            fprintf(out, "%s\n", g->msg);
    }
}

void co_diags_free(co_diags *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->v[i].file);
        free(d->v[i].msg);
    }
    free(d->v);
    d->v = NULL;
    d->n = d->cap = 0;
}
