/* Eval reports (include/cutover/report.h): the format list, dispatch to the
 * renderers (report_md.c, report_html.c, report_json.c, report_junit.c),
 * atomic writes into the output directory, and the escaping every renderer
 * shares. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cutover/error.h"
#include "cutover/report.h"
#include "cutover/util.h"
#include "eval/report_int.h"

/* ------------------------------------------------------------ formats */

static const struct {
    const char *name, *file;
    unsigned bit;
} formats[] = {
    {"md", "report.md", CO_REPORT_MD},
    {"html", "report.html", CO_REPORT_HTML},
    {"json", "report.json", CO_REPORT_JSON},
    {"junit", "junit.xml", CO_REPORT_JUNIT},
};
#define N_FORMATS (sizeof formats / sizeof *formats)

int co_report_formats_parse(unsigned *out, const char *list)
{
    unsigned set = 0;
    const char *p = list ? list : "";
    while (*p) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, ", ");
        size_t i;
        if (n == 3 && strncmp(p, "all", 3) == 0) {
            set |= CO_REPORT_ALL;
        } else {
            for (i = 0; i < N_FORMATS; i++)
                if (strlen(formats[i].name) == n && strncmp(p, formats[i].name, n) == 0)
                    break;
            if (i == N_FORMATS)
                return co_error_set(CO_EINVAL, "unknown report format '%.*s' (md, html, json, junit, all)",
                                    (int)n, p);
            set |= formats[i].bit;
        }
        p += n;
        while (*p == ' ')
            p++;
        if (*p == ',')
            p++;
    }
    if (!set)
        return co_error_set(CO_EINVAL, "no report format given (md, html, json, junit, all)");
    *out = set;
    return 0;
}

int co_report_render(co_buf *out, const co_eval_analysis *a, unsigned format)
{
    switch (format) {
    case CO_REPORT_MD: return co__render_md(out, a);
    case CO_REPORT_HTML: return co__render_html(out, a);
    case CO_REPORT_JSON: return co__render_json(out, a);
    case CO_REPORT_JUNIT: return co__render_junit(out, a);
    default: break;
    }
    return co_error_set(CO_EINVAL, "render one report format at a time (got 0x%x)", format);
}

int co_report_write(const co_eval_analysis *a, const char *dir, unsigned formats_set)
{
    int rc;
    if (!dir || !*dir)
        return co_error_set(CO_EINVAL, "no report directory given");
    if (!(formats_set & CO_REPORT_ALL))
        return co_error_set(CO_EINVAL, "no report format chosen");
    if ((rc = co_mkdirs(dir, 0755)))
        return co_error_set(CO_EIO, "creating the report directory %s: %s", dir, co_error_last());
    for (size_t i = 0; i < N_FORMATS; i++) {
        if (!(formats_set & formats[i].bit))
            continue;
        co_buf b;
        co_buf_init(&b, CO_BUF_UNLIMITED);
        char path[4096];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, formats[i].file) >= sizeof path) {
            co_buf_free(&b);
            return co_error_set(CO_EINVAL, "report directory path too long");
        }
        rc = co_report_render(&b, a, formats[i].bit);
        if (!rc && (rc = co_write_file(path, b.p, b.len, 1)))
            rc = co_error_set(CO_EIO, "writing %s: %s", path, co_error_last());
        co_buf_free(&b);
        if (rc)
            return rc;
    }
    return 0;
}

/* ------------------------------------------------------------ shared */

double co__group_rate(const co__group *g, int arm)
{
    return g->rate[arm].n ? (double)g->rate[arm].passed / (double)g->rate[arm].n : NAN;
}

const char *co__verdict_of(const co_eval_analysis *a)
{
    return a->compared ? co_gate_verdict_name(a->verdict) : "none";
}

/* Length of the valid UTF-8 sequence at s (1..4), 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t left)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    /* U+FFFE and U+FFFF are not XML characters */
    if (cp == 0xFFFE || cp == 0xFFFF)
        return 0;
    return n;
}

int co__esc_xml_attr(co_buf *b, const char *s)
{
    int rc = 0;
    if (!s)
        return 0;
    /* line breaks and tabs as character references: a parser would fold
     * them into spaces in an attribute value */
    for (const char *p = s; *p && !rc;) {
        size_t n = strcspn(p, "\n\r\t");
        if (n) {
            char *part = strndup(p, n);
            if (!part)
                return co_error_set(CO_ENOMEM, "out of memory");
            rc = co__esc_xml(b, part);
            free(part);
            p += n;
            continue;
        }
        rc = co_buf_puts(b, *p == '\n' ? "&#10;" : *p == '\r' ? "&#13;" : "&#9;");
        p++;
    }
    return rc;
}

void co__rw_put(co__rw *w, const char *s)
{
    if (!w->rc)
        w->rc = co_buf_puts(w->b, s);
}

void co__rw_printf(co__rw *w, const char *fmt, ...)
{
    if (w->rc)
        return;
    va_list ap;
    va_start(ap, fmt);
    w->rc = co_buf_vprintf(w->b, fmt, ap);
    va_end(ap);
}

int co__esc_xml(co_buf *b, const char *s)
{
    if (!s)
        return 0;
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strlen(s), run = 0;
    int rc = 0;
    for (size_t i = 0; i < len && !rc;) {
        const char *rep = NULL;
        size_t n = 1;
        unsigned char c = p[i];
        switch (c) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default:
            if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
                rep = "\xef\xbf\xbd";
            } else if (c == 0x7F) {
                rep = "\xef\xbf\xbd";
            } else if (c >= 0x80) {
                n = utf8_len(p + i, len - i);
                if (!n) {
                    rep = "\xef\xbf\xbd";
                    n = 1;
                }
            }
        }
        if (!rep) {
            i += n;
            run += n;
            continue;
        }
        if (run)
            rc = co_buf_append(b, p + i - run, run);
        run = 0;
        if (!rc)
            rc = co_buf_puts(b, rep);
        i += n;
    }
    if (!rc && run)
        rc = co_buf_append(b, p + len - run, run);
    return rc;
}

char *co__utf8_clean(const char *s)
{
    size_t len = strlen(s);
    co_buf b;
    co_buf_init(&b, CO_BUF_UNLIMITED);
    int rc = 0;
    for (size_t i = 0; i < len && !rc;) {
        size_t n = utf8_len((const unsigned char *)s + i, len - i);
        /* U+FFFE/U+FFFF are valid UTF-8 (only not XML): keep them here */
        if (!n && (unsigned char)s[i] == 0xEF && i + 2 < len && (unsigned char)s[i + 1] == 0xBF &&
            ((unsigned char)s[i + 2] == 0xBE || (unsigned char)s[i + 2] == 0xBF))
            n = 3;
        if (n) {
            rc = co_buf_append(&b, s + i, n);
            i += n;
        } else {
            rc = co_buf_puts(&b, "\xef\xbf\xbd");
            i++;
        }
    }
    if (rc) {
        co_buf_free(&b);
        return NULL;
    }
    return co_buf_detach(&b);
}

int co__esc_md(co_buf *b, const char *s)
{
    int rc = 0;
    if (!s)
        return 0;
    for (const char *p = s; *p && !rc; p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t')
            rc = co_buf_puts(b, " ");
        else if (strchr("\\`*_[]{}<>|#!~", *p))
            rc = co_buf_printf(b, "\\%c", *p);
        else
            rc = co_buf_append(b, p, 1);
    }
    return rc;
}

int co__md_fence(co_buf *b, const char *s)
{
    size_t longest = 0, run = 0;
    if (!s)
        s = "";
    for (const char *p = s; *p; p++) {
        run = *p == '`' ? run + 1 : 0;
        if (run > longest)
            longest = run;
    }
    size_t n = longest >= 3 ? longest + 1 : 3, len = strlen(s);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++)
        rc = co_buf_puts(b, "`");
    if (!rc)
        rc = co_buf_puts(b, "\n");
    if (!rc)
        rc = co_buf_append(b, s, len);
    if (!rc && (len == 0 || s[len - 1] != '\n'))
        rc = co_buf_puts(b, "\n");
    for (size_t i = 0; i < n && !rc; i++)
        rc = co_buf_puts(b, "`");
    if (!rc)
        rc = co_buf_puts(b, "\n");
    return rc;
}
