/* Shared by the report renderers (report*.c): escaping and one entry point
 * per format. Internal to libcutover. */
#ifndef CO_EVAL_REPORT_INT_H
#define CO_EVAL_REPORT_INT_H

#include <stddef.h>

#include "cutover/buf.h"
#include "eval/compare_int.h"

/* A sticky writer: the first failed append is kept in rc and every later
 * write is skipped, so a renderer checks rc once at the end. */
typedef struct co__rw {
    co_buf *b;
    int rc;
} co__rw;
void co__rw_put(co__rw *w, const char *s);
void co__rw_printf(co__rw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Text for HTML and XML content and attribute values: & < > " ' escaped;
 * bytes XML 1.0 does not allow (controls other than tab, LF, CR) and
 * invalid UTF-8 become U+FFFD, so any stored output renders safely. */
int co__esc_xml(co_buf *b, const char *s);
/* The same for an XML attribute value, with line breaks and tabs kept as
 * character references. */
int co__esc_xml_attr(co_buf *b, const char *s);
/* Text for a Markdown paragraph or table cell: punctuation Markdown would
 * act on is backslash-escaped, line breaks become spaces. */
int co__esc_md(co_buf *b, const char *s);
/* A fenced code block around arbitrary text: the fence is longer than any
 * run of backticks inside. */
int co__md_fence(co_buf *b, const char *s);

/* A malloc'd copy of s with invalid UTF-8 replaced by U+FFFD (jansson
 * refuses strings that are not UTF-8); NULL when out of memory. */
char *co__utf8_clean(const char *s);

/* A group's pass rate on one arm (NAN when it has no result there). */
double co__group_rate(const co__group *g, int arm);
/* "pass" / "fail" / "inconclusive", or "none" when nothing was compared. */
const char *co__verdict_of(const co_eval_analysis *a);

int co__render_md(co_buf *b, const co_eval_analysis *a);
int co__render_html(co_buf *b, const co_eval_analysis *a);
int co__render_json(co_buf *b, const co_eval_analysis *a);
int co__render_junit(co_buf *b, const co_eval_analysis *a);

#endif
