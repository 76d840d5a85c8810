/* Eval reports: an analysis (compare.h) written as report.md, a
 * self-contained report.html (inline SVG charts, no external resource),
 * report.json (stable schema, documented in docs/eval.md) and junit.xml (a
 * testsuite per workload gate, a testcase per case and arm).
 *
 * Rendering is deterministic: the same stored run renders byte for byte the
 * same files (timestamps come from the run, never from the clock), which
 * golden-file tests rely on. Library code never prints. */
#ifndef CUTOVER_REPORT_H
#define CUTOVER_REPORT_H

#include "cutover/buf.h"
#include "cutover/compare.h"

enum {
    CO_REPORT_MD = 1u << 0,
    CO_REPORT_HTML = 1u << 1,
    CO_REPORT_JSON = 1u << 2,
    CO_REPORT_JUNIT = 1u << 3,
    CO_REPORT_ALL = 0xfu,
};

/* "md,html,json,junit" (any subset, any order; "all") into a bit set.
 * CO_EINVAL naming the unknown format and the valid ones. */
int co_report_formats_parse(unsigned *out, const char *list);

/* Renders one format into out (appended). */
int co_report_render(co_buf *out, const co_eval_analysis *a, unsigned format);

/* Writes the chosen formats into dir (created if missing) as report.md,
 * report.html, report.json, junit.xml; each file is written to a temporary
 * name and renamed, so a reader never sees half a report. CO_EIO naming the
 * path on failure. */
int co_report_write(const co_eval_analysis *a, const char *dir, unsigned formats);

#endif
