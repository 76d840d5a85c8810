/* Incremental Server-Sent Events parser (the WHATWG event-stream rules):
 * bytes arrive in chunks split anywhere; lines end with LF, CRLF or CR (a
 * CRLF split across two chunks is one line end); lines starting with ':' are
 * comments; "data" lines accumulate, joined with '\n'; a blank line
 * dispatches the event. Every event is bounded: its lines and data together
 * may not exceed max_event bytes (CO_ETOOBIG). */
#include <string.h>

#include "cutover/chat.h"
#include "cutover/error.h"

void co_sse_init(co_sse_parser *p, size_t max_event, co_sse_fn fn, void *ctx)
{
    memset(p, 0, sizeof *p);
    p->fn = fn;
    p->ctx = ctx;
    p->max_event = max_event;
    co_buf_init(&p->line, max_event);
    co_buf_init(&p->data, max_event);
    co_buf_init(&p->event, max_event);
    co_buf_init(&p->id, max_event);
}

void co_sse_free(co_sse_parser *p)
{
    co_buf_free(&p->line);
    co_buf_free(&p->data);
    co_buf_free(&p->event);
    co_buf_free(&p->id);
}

static int too_big(co_sse_parser *p)
{
    return co_error_set(CO_ETOOBIG, "stream event larger than %zu bytes", p->max_event);
}

static int dispatch(co_sse_parser *p)
{
    int rc = 0;
    if (p->has_data) {
        if (p->data.len && p->data.p[p->data.len - 1] == '\n')
            p->data.p[--p->data.len] = '\0';
        co_sse_event ev = {
            .event = p->event.len ? p->event.p : "message",
            .data = p->data.p ? p->data.p : "",
            .data_len = p->data.len,
            .id = p->id.p ? p->id.p : "",
        };
        rc = p->fn ? p->fn(p->ctx, &ev) : 0;
    }
    co_buf_reset(&p->data);
    co_buf_reset(&p->event);
    p->has_data = 0;
    return rc;
}

static int process_line(co_sse_parser *p)
{
    char *line = p->line.p ? p->line.p : "";
    size_t len = p->line.len;
    int rc = 0;
    if (!p->bom_checked) {
        p->bom_checked = 1;
        if (len >= 3 && !memcmp(line, "\xEF\xBB\xBF", 3)) {
            line += 3;
            len -= 3;
        }
    }
    if (len == 0) {
        rc = dispatch(p);
        goto done;
    }
    if (line[0] == ':')
        goto done; /* comment (keep-alives) */
    const char *colon = memchr(line, ':', len);
    size_t flen = colon ? (size_t)(colon - line) : len;
    const char *val = colon ? colon + 1 : line + len;
    size_t vlen = (size_t)(line + len - val);
    if (vlen && *val == ' ') {
        val++;
        vlen--;
    }
    if (flen == 4 && !memcmp(line, "data", 4)) {
        if (p->data.len + vlen + 1 > p->max_event) {
            rc = too_big(p);
            goto done;
        }
        if (!(rc = co_buf_append(&p->data, val, vlen)))
            rc = co_buf_append(&p->data, "\n", 1);
        p->has_data = 1;
    } else if (flen == 5 && !memcmp(line, "event", 5)) {
        co_buf_reset(&p->event);
        rc = co_buf_append(&p->event, val, vlen);
    } else if (flen == 2 && !memcmp(line, "id", 2)) {
        if (!memchr(val, '\0', vlen)) {
            co_buf_reset(&p->id);
            rc = co_buf_append(&p->id, val, vlen);
        }
    }
    /* "retry" and unknown fields are ignored */
done:
    co_buf_reset(&p->line);
    return rc;
}

int co_sse_feed(co_sse_parser *p, const void *data, size_t n)
{
    const char *s = data;
    size_t i = 0;
    int rc = 0;
    if (p->failed)
        return p->failed;
    while (i < n) {
        if (p->after_cr) {
            p->after_cr = 0;
            if (s[i] == '\n') {
                i++;
                continue;
            }
        }
        size_t j = i;
        while (j < n && s[j] != '\n' && s[j] != '\r')
            j++;
        if (j > i) {
            if (p->line.len + (j - i) + p->data.len > p->max_event) {
                rc = too_big(p);
                break;
            }
            if ((rc = co_buf_append(&p->line, s + i, j - i)))
                break;
        }
        if (j == n)
            break;
        if (s[j] == '\r')
            p->after_cr = 1;
        i = j + 1;
        if ((rc = process_line(p)))
            break;
    }
    if (rc)
        p->failed = rc;
    return rc;
}

int co_sse_finish(co_sse_parser *p)
{
    int rc = 0;
    if (p->failed)
        return p->failed;
    if (p->line.len)
        rc = process_line(p);
    if (!rc && p->has_data)
        rc = dispatch(p);
    if (rc)
        p->failed = rc;
    return rc;
}
