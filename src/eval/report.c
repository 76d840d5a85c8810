/* Eval reports (include/cutover/report.h). Placeholder so the runner branch
 * links: format parsing works, rendering reports CO_ENOTSUP until the
 * renderers land in the following commits. */
#include <string.h>

#include "cutover/error.h"
#include "cutover/report.h"

int co_report_formats_parse(unsigned *out, const char *list)
{
    static const struct { const char *name; unsigned bit; } fmts[] = {
        {"md", CO_REPORT_MD}, {"html", CO_REPORT_HTML}, {"json", CO_REPORT_JSON},
        {"junit", CO_REPORT_JUNIT}, {"all", CO_REPORT_ALL},
    };
    unsigned set = 0;
    const char *p = list ? list : "";
    while (*p) {
        size_t n = strcspn(p, ",");
        size_t i;
        for (i = 0; i < sizeof fmts / sizeof *fmts; i++)
            if (strlen(fmts[i].name) == n && strncmp(p, fmts[i].name, n) == 0)
                break;
        if (i == sizeof fmts / sizeof *fmts)
            return co_error_set(CO_EINVAL, "unknown report format '%.*s' (md, html, json, junit, all)",
                                (int)n, p);
        set |= fmts[i].bit;
        p += n;
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
    (void)out, (void)a, (void)format;
    return co_error_set(CO_ENOTSUP, "eval reports not implemented yet");
}

int co_report_write(const co_eval_analysis *a, const char *dir, unsigned formats)
{
    (void)a, (void)dir, (void)formats;
    return co_error_set(CO_ENOTSUP, "eval reports not implemented yet");
}
