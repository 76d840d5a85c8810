/* The guarded YAML document reader shared by every YAML input of cutover
 * (include/cutover/yaml.h). */
#include <libfyaml.h>
#include <string.h>

#include "cutover/util.h"
#include "cutover/yaml.h"

co_mark co_yaml_token_mark(struct fy_token *t)
{
    co_mark m = {0, 0};
    if (t) {
        const struct fy_mark *fm = fy_token_start_mark(t);
        if (fm) {
            m.line = fm->line + 1;
            m.col = fm->column + 1;
        }
    }
    return m;
}

co_mark co_yaml_node_mark(struct fy_node *n, co_mark fallback)
{
    if (!n)
        return fallback;
    switch (fy_node_get_type(n)) {
    case FYNT_SCALAR: {
        co_mark m = co_yaml_token_mark(fy_node_get_scalar_token(n));
        return m.line ? m : fallback;
    }
    case FYNT_MAPPING: {
        void *it = NULL;
        struct fy_node_pair *p = fy_node_mapping_iterate(n, &it);
        return p ? co_yaml_node_mark(fy_node_pair_key(p), fallback) : fallback;
    }
    case FYNT_SEQUENCE: {
        void *it = NULL;
        struct fy_node *i = fy_node_sequence_iterate(n, &it);
        return i ? co_yaml_node_mark(i, fallback) : fallback;
    }
    }
    return fallback;
}

static co_mark offset_mark(const char *text, size_t off)
{
    co_mark m = {1, 1};
    for (size_t i = 0; i < off; i++) {
        if (text[i] == '\n') {
            m.line++;
            m.col = 1;
        } else if (((unsigned char)text[i] & 0xc0) != 0x80) {
            m.col++;
        }
    }
    return m;
}

/* Counts nodes as if every alias were expanded; stops past the limit. */
static size_t expanded_size(struct fy_node *n, size_t limit, int depth)
{
    if (!n || depth > 256)
        return limit + 1;
    if (fy_node_is_alias(n))
        return expanded_size(fy_node_resolve_alias(n), limit, depth + 1);
    size_t total = 1;
    void *it = NULL;
    if (fy_node_get_type(n) == FYNT_SEQUENCE) {
        struct fy_node *i;
        while (total <= limit && (i = fy_node_sequence_iterate(n, &it)))
            total += expanded_size(i, limit - total, depth + 1);
    } else if (fy_node_get_type(n) == FYNT_MAPPING) {
        struct fy_node_pair *p;
        while (total <= limit && (p = fy_node_mapping_iterate(n, &it))) {
            total += expanded_size(fy_node_pair_key(p), limit - total, depth + 1);
            if (total <= limit)
                total += expanded_size(fy_node_pair_value(p), limit - total, depth + 1);
        }
    }
    return total;
}

void co_yaml_close(co_yaml *y)
{
    if (y->doc)
        fy_parse_document_destroy(y->parser, y->doc);
    if (y->parser)
        fy_parser_destroy(y->parser);
    if (y->diag)
        fy_diag_destroy(y->diag);
    memset(y, 0, sizeof *y);
}

static int collect_errors(struct fy_diag *diag, const char *name, co_diags *diags)
{
    void *it = NULL;
    struct fy_diag_error *e;
    int n = 0;
    while ((e = fy_diag_errors_iterate(diag, &it))) {
        if (e->type < FYET_ERROR)
            continue;
        co_diags_add(diags, name, e->line, e->column, "YAML syntax error: %s", e->msg); /* already 1-based */
        n++;
    }
    return n;
}

/* Parses exactly one YAML document with aliases resolved. Errors go to diags;
 * y->doc is NULL after an error and for empty input. */
int co_yaml_parse(co_yaml *y, const char *text, size_t len, const char *name, size_t max_expanded,
                  co_diags *diags)
{
    memset(y, 0, sizeof *y);
    size_t bad = co_utf8_bad_offset((const unsigned char *)text, len);
    if (bad < len) {
        co_mark m = offset_mark(text, bad);
        if (text[bad] == 0)
            co_diags_add(diags, name, m.line, m.col, "the file contains a NUL byte; a config is UTF-8 text");
        else
            co_diags_add(diags, name, m.line, m.col,
                         "byte 0x%02x is not valid UTF-8; save the file as UTF-8 text",
                         (unsigned char)text[bad]);
        return CO_ECONFIG;
    }
    struct fy_diag_cfg dcfg;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.output_fn = NULL;
    dcfg.colorize = false;
    y->diag = fy_diag_create(&dcfg);
    if (!y->diag)
        goto oom;
    fy_diag_set_collect_errors(y->diag, true);
    struct fy_parse_cfg pcfg = {.flags = FYPCF_QUIET | FYPCF_DEFAULT_VERSION_AUTO, .diag = y->diag};
    y->parser = fy_parser_create(&pcfg);
    if (!y->parser || fy_parser_set_string(y->parser, text, len) != 0)
        goto oom;
    y->doc = fy_parse_load_document(y->parser);
    int n = collect_errors(y->diag, name, diags);
    if (n == 0 && y->doc) {
        struct fy_document *second = fy_parse_load_document(y->parser);
        n = collect_errors(y->diag, name, diags);
        if (second) {
            struct fy_node *r = fy_document_root(second);
            co_mark m = co_yaml_node_mark(r, (co_mark){0, 0});
            co_diags_add(diags, name, m.line, m.col,
                         "a second YAML document starts here; the file must hold exactly one");
            fy_parse_document_destroy(y->parser, second);
            n++;
        }
    }
    if (n == 0 && y->doc) {
        struct fy_node *r = fy_document_root(y->doc);
        size_t limit = max_expanded ? max_expanded : CO_YAML_MAX_EXPANDED;
        if (expanded_size(r, limit, 0) > limit) {
            co_diags_add(diags, name, 1, 1, "YAML aliases expand to more than %zu nodes; refusing the file", limit);
            n++;
        } else if (fy_document_resolve(y->doc) != 0) {
            n += collect_errors(y->diag, name, diags);
            if (n == 0) {
                co_diags_add(diags, name, 1, 1, "YAML aliases could not be resolved");
                n++;
            }
        }
    }
    if (n == 0 && !y->doc && fy_diag_got_error(y->diag)) {
        co_diags_add(diags, name, 1, 1, "YAML syntax error");
        n++;
    }
    if (n > 0) {
        if (y->doc) {
            fy_parse_document_destroy(y->parser, y->doc);
            y->doc = NULL;
        }
        return CO_ECONFIG;
    }
    return 0;
oom:
    co_diags_add(diags, name, 0, 0, "out of memory parsing YAML");
    return CO_ENOMEM;
}

