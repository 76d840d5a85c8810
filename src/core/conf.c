/* The declarative config engine (include/cutover/conf.h): binds a YAML
 * document onto C structs from a table of keys, collects every error with
 * its file:line:col, fills defaults, frees, and renders the same table as
 * template comments and Markdown reference docs. libfyaml's own diagnostics
 * are collected into our list instead of going to stderr. */
#include <ctype.h>
#include <errno.h>
#include <libfyaml.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cutover/conf.h"
#include "cutover/util.h"
#include "cutover/yaml.h"

#define CO__CONF_MAX_FILE (16u << 20)
#define CO__CONF_MAX_OPTS 64

typedef struct bind_ctx {
    co_conf_ctx pub;        /* handed to check callbacks */
    char path[512];         /* dotted path of the node being bound, for messages */
    int defaults;           /* binding a table default: stored marks stay 0 */
} bind_ctx;

static void bind_value(bind_ctx *c, const co_opt *o, void *field, struct fy_node *val, co_mark at);
static void bind_mapping(bind_ctx *c, const co_schema *s, void *obj, struct fy_node *map, co_mark at);

void co_conf_error(co_conf_ctx *ctx, co_mark at, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    co_diags_add(ctx->diags, ctx->file, at.line, at.col, "%s", msg);
    ctx->errors++;
}

/* ---- small helpers -------------------------------------------------------- */

static void *field_at(void *obj, size_t off) { return (char *)obj + off; }

static const char *node_kind(struct fy_node *n)
{
    switch (fy_node_get_type(n)) {
    case FYNT_SCALAR: return "a scalar";
    case FYNT_MAPPING: return "a mapping";
    case FYNT_SEQUENCE: return "a sequence";
    }
    return "something else";
}

/* A scalar's text, NUL-terminated, in a caller buffer (truncated if huge). */
static const char *scalar_text(struct fy_node *n, char *buf, size_t cap)
{
    size_t len = 0;
    const char *s = fy_node_get_scalar(n, &len);
    if (!s)
        s = "";
    if (len >= cap)
        len = cap - 1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return buf;
}

static int is_plain(struct fy_node *n) { return fy_node_get_style(n) == FYNS_PLAIN; }

static int is_null(struct fy_node *n)
{
    if (!n)
        return 1;
    if (fy_node_get_type(n) != FYNT_SCALAR || !is_plain(n))
        return 0;
    size_t len = 0;
    const char *s = fy_node_get_scalar(n, &len);
    return len == 0 || (len == 1 && s[0] == '~') ||
           (len == 4 && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) || !memcmp(s, "NULL", 4)));
}

int co_enum_index(const char *const *names, const char *name)
{
    for (int i = 0; names && names[i]; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

const char *co_enum_name(const char *const *names, int idx)
{
    for (int i = 0; names && names[i]; i++)
        if (i == idx)
            return names[i];
    return "?";
}

static void enum_list(const char *const *names, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; names && names[i]; i++) {
        int n = snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", names[i]);
        if (n < 0 || (size_t)n >= cap - used)
            break;
        used += (size_t)n;
    }
}

static const char *type_name(const co_opt *o)
{
    switch (o->type) {
    case CO_T_STR: return "string";
    case CO_T_INT: return "integer";
    case CO_T_DOUBLE: return "number";
    case CO_T_PERCENT: return "percent";
    case CO_T_BOOL: return "boolean";
    case CO_T_DURATION: return "duration";
    case CO_T_SIZE: return "size";
    case CO_T_ENUM: return "enum";
    case CO_T_STRLIST: return "list of strings";
    case CO_T_JSON: return "any value";
    case CO_T_SECTION: return "section";
    case CO_T_MAP: return "map of named entries";
    case CO_T_LIST: return "list";
    case CO_T_FORBIDDEN: return "not allowed";
    }
    return "?";
}

static int has_bounds(const co_opt *o) { return o->min != 0 || o->max != 0; }

static void push_path(bind_ctx *c, const char *part, size_t *saved)
{
    *saved = strlen(c->path);
    size_t room = sizeof c->path - *saved;
    snprintf(c->path + *saved, room, "%s%s", *saved ? "." : "", part);
}

static void pop_path(bind_ctx *c, size_t saved) { c->path[saved] = '\0'; }

/* ---- scalar conversion ------------------------------------------------------ */

static int parse_number(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", NULL};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", NULL};
    if (co_enum_index(yes, s) >= 0) { *out = 1; return 0; }
    if (co_enum_index(no, s) >= 0) { *out = 0; return 0; }
    return -1;
}

static void bounds_text(const co_opt *o, char *buf, size_t cap)
{
    char a[32], b[32];
    switch (o->type) {
    case CO_T_DURATION:
    case CO_T_SIZE: {
        const char *(*fmt)(int64_t, char *, size_t) = o->type == CO_T_SIZE ? co_format_size : co_format_duration;
        snprintf(buf, cap, "from %s to %s", fmt((int64_t)o->min, a, sizeof a), fmt((int64_t)o->max, b, sizeof b));
        break;
    }
    case CO_T_PERCENT:
        snprintf(buf, cap, "from %g%% to %g%%", o->min, o->max);
        break;
    case CO_T_INT:
        snprintf(buf, cap, "from %.0f to %.0f", o->min, o->max);
        break;
    default:
        snprintf(buf, cap, "from %g to %g", o->min, o->max);
    }
}

static void bind_scalar(bind_ctx *c, const co_opt *o, void *field, struct fy_node *val, co_mark at)
{
    char text[4096], bt[96];
    if (fy_node_get_type(val) != FYNT_SCALAR) {
        co_conf_error(&c->pub, at, "'%s' expects a %s, found %s", c->path, type_name(o), node_kind(val));
        return;
    }
    scalar_text(val, text, sizeof text);
    switch (o->type) {
    case CO_T_STR: {
        if ((o->flags & CO_OPT_NONEMPTY) && !text[0]) {
            co_conf_error(&c->pub, at, "'%s' must not be empty", c->path);
            return;
        }
        char **p = field;
        size_t len = 0;
        const char *s = fy_node_get_scalar(val, &len);
        char *copy = strndup(s ? s : "", len);
        if (!copy) {
            co_conf_error(&c->pub, at, "out of memory");
            return;
        }
        free(*p);
        *p = copy;
        return;
    }
    case CO_T_INT: {
        double v;
        if (parse_number(text, &v) < 0 || v != floor(v) || fabs(v) > 9e15) {
            co_conf_error(&c->pub, at, "'%s' expects an integer, found '%s'", c->path, text);
            return;
        }
        if (has_bounds(o) && (v < o->min || v > o->max)) {
            bounds_text(o, bt, sizeof bt);
            co_conf_error(&c->pub, at, "'%s' must be %s, found %s", c->path, bt, text);
            return;
        }
        *(int64_t *)field = (int64_t)v;
        return;
    }
    case CO_T_DOUBLE:
    case CO_T_PERCENT: {
        double v;
        size_t n = strlen(text);
        int pct = o->type == CO_T_PERCENT && n > 0 && text[n - 1] == '%';
        if (pct)
            text[n - 1] = '\0';
        if (parse_number(text, &v) < 0) {
            co_conf_error(&c->pub, at, "'%s' expects a %s, found '%s%s'", c->path,
                          o->type == CO_T_PERCENT ? "percentage (e.g. 5 or 5%)" : "number", text, pct ? "%" : "");
            return;
        }
        double lo = o->min, hi = o->max;
        if (o->type == CO_T_PERCENT && !has_bounds(o))
            lo = 0, hi = 100;
        if ((has_bounds(o) || o->type == CO_T_PERCENT) && (v < lo || v > hi)) {
            co_opt tmp = *o;
            tmp.min = lo, tmp.max = hi;
            bounds_text(&tmp, bt, sizeof bt);
            co_conf_error(&c->pub, at, "'%s' must be %s, found %s%s", c->path, bt, text, pct ? "%" : "");
            return;
        }
        *(double *)field = v;
        return;
    }
    case CO_T_BOOL: {
        int b;
        if (!is_plain(val) || parse_bool(text, &b) < 0) {
            co_conf_error(&c->pub, at, "'%s' expects true or false, found '%s'", c->path, text);
            return;
        }
        *(int *)field = b;
        return;
    }
    case CO_T_DURATION:
    case CO_T_SIZE: {
        int64_t v;
        int rc = o->type == CO_T_DURATION ? co_parse_duration_ms(text, &v) : co_parse_size(text, &v);
        if (rc < 0) {
            co_conf_error(&c->pub, at, "'%s': %s", c->path, co_error_last());
            return;
        }
        if (has_bounds(o) && ((double)v < o->min || (double)v > o->max)) {
            bounds_text(o, bt, sizeof bt);
            co_conf_error(&c->pub, at, "'%s' must be %s, found %s", c->path, bt, text);
            return;
        }
        *(int64_t *)field = v;
        return;
    }
    case CO_T_ENUM: {
        int idx = co_enum_index(o->enums, text);
        if (idx < 0) {
            char list[512];
            enum_list(o->enums, list, sizeof list);
            const char *near = co_suggest(text, o->enums);
            co_conf_error(&c->pub, at, "'%s' must be one of %s; found '%s'%s%s%s", c->path, list, text,
                          near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
            return;
        }
        *(int *)field = idx;
        return;
    }
    default:
        return;
    }
}

static void strv_free(co_strv *v)
{
    for (size_t i = 0; i < v->n; i++)
        free(v->v[i]);
    free(v->v);
    v->v = NULL;
    v->n = 0;
}

static void bind_strlist(bind_ctx *c, const co_opt *o, co_strv *out, struct fy_node *val, co_mark at)
{
    co_strv nv = {0};
    size_t count = fy_node_get_type(val) == FYNT_SEQUENCE ? (size_t)fy_node_sequence_item_count(val) : 1;
    if (fy_node_get_type(val) == FYNT_MAPPING) {
        co_conf_error(&c->pub, at, "'%s' expects a list of strings, found a mapping", c->path);
        return;
    }
    nv.v = calloc(count ? count : 1, sizeof *nv.v);
    if (!nv.v) {
        co_conf_error(&c->pub, at, "out of memory");
        return;
    }
    struct fy_node *item = val;
    void *it = NULL;
    for (size_t i = 0; i < count; i++) {
        if (fy_node_get_type(val) == FYNT_SEQUENCE)
            item = fy_node_sequence_iterate(val, &it);
        co_mark im = co_yaml_node_mark(item, at);
        if (fy_node_get_type(item) != FYNT_SCALAR) {
            co_conf_error(&c->pub, im, "'%s' items must be strings, found %s", c->path, node_kind(item));
            strv_free(&nv);
            return;
        }
        size_t len = 0;
        const char *s = fy_node_get_scalar(item, &len);
        nv.v[nv.n++] = strndup(s ? s : "", len);
    }
    if ((o->flags & CO_OPT_NONEMPTY) && nv.n == 0) {
        co_conf_error(&c->pub, at, "'%s' must not be empty", c->path);
        strv_free(&nv);
        return;
    }
    strv_free(out);
    *out = nv;
}

static json_t *node_to_json(struct fy_node *n)
{
    if (!n)
        return json_null();
    switch (fy_node_get_type(n)) {
    case FYNT_SCALAR: {
        size_t len = 0;
        const char *s = fy_node_get_scalar(n, &len);
        if (is_plain(n)) {
            char text[128];
            if (is_null(n))
                return json_null();
            if (len < sizeof text) {
                memcpy(text, s, len);
                text[len] = '\0';
                int b;
                if (parse_bool(text, &b) == 0)
                    return json_boolean(b);
                char *end;
                errno = 0;
                long long iv = strtoll(text, &end, 10);
                if (end != text && !*end && !errno)
                    return json_integer(iv);
                double d;
                if (parse_number(text, &d) == 0)
                    return json_real(d);
            }
        }
        return json_stringn(s ? s : "", len);
    }
    case FYNT_SEQUENCE: {
        json_t *a = json_array();
        void *it = NULL;
        struct fy_node *i;
        while ((i = fy_node_sequence_iterate(n, &it)))
            json_array_append_new(a, node_to_json(i));
        return a;
    }
    case FYNT_MAPPING: {
        json_t *o = json_object();
        void *it = NULL;
        struct fy_node_pair *p;
        while ((p = fy_node_mapping_iterate(n, &it))) {
            char key[256];
            struct fy_node *k = fy_node_pair_key(p);
            if (!k || fy_node_get_type(k) != FYNT_SCALAR)
                continue;
            json_object_set_new(o, scalar_text(k, key, sizeof key), node_to_json(fy_node_pair_value(p)));
        }
        return o;
    }
    }
    return json_null();
}

/* ---- collections ------------------------------------------------------------ */

static void free_obj(const co_schema *s, void *obj);

static void free_field(const co_opt *o, void *field)
{
    switch (o->type) {
    case CO_T_STR:
        free(*(char **)field);
        *(char **)field = NULL;
        break;
    case CO_T_STRLIST:
        strv_free(field);
        break;
    case CO_T_JSON:
        json_decref(*(json_t **)field);
        *(json_t **)field = NULL;
        break;
    case CO_T_SECTION:
        free_obj(o->sub, field);
        break;
    case CO_T_MAP:
    case CO_T_LIST: {
        co_vec *v = field;
        for (size_t i = 0; i < v->n; i++)
            free_obj(o->sub, (char *)v->v + i * o->sub->size);
        free(v->v);
        v->v = NULL;
        v->n = 0;
        break;
    }
    default:
        break;
    }
}

static void free_obj(const co_schema *s, void *obj)
{
    for (const co_opt *o = s->opts; o->name; o++)
        free_field(o, field_at(obj, o->offset));
    if (s->name_offset) {
        char **name = field_at(obj, s->name_offset - 1);
        free(*name);
        *name = NULL;
    }
}

void co_conf_free(const co_schema *root, void *obj)
{
    if (root && obj)
        free_obj(root, obj);
}

static int defaults_into(const co_schema *s, void *obj, co_diags *diags);

/* One item of a MAP or LIST: defaults, then the node (a mapping, or a bare
 * scalar as shorthand for {scalar_key: value}). */
static void bind_item(bind_ctx *c, const co_schema *sub, void *item, struct fy_node *val, co_mark at)
{
    if (sub->mark_offset && !c->defaults)
        *(co_mark *)field_at(item, sub->mark_offset - 1) = at;
    if (fy_node_get_type(val) == FYNT_MAPPING) {
        bind_mapping(c, sub, item, val, at);
        return;
    }
    if (sub->scalar_key && fy_node_get_type(val) == FYNT_SCALAR) {
        for (const co_opt *o = sub->opts; o->name; o++) {
            if (strcmp(o->name, sub->scalar_key) != 0)
                continue;
            size_t saved;
            push_path(c, o->name, &saved);
            bind_value(c, o, field_at(item, o->offset), val, at);
            pop_path(c, saved);
            /* other required keys cannot be given in shorthand */
            for (const co_opt *r = sub->opts; r->name; r++)
                if ((r->flags & CO_OPT_REQUIRED) && r != o)
                    co_conf_error(&c->pub, at, "'%s' needs '%s'; write it as a mapping", c->path, r->name);
            if (sub->check)
                sub->check(item, &c->pub, at);
            return;
        }
    }
    co_conf_error(&c->pub, at, "'%s' expects a mapping, found %s", c->path, node_kind(val));
}

static void bind_collection(bind_ctx *c, const co_opt *o, co_vec *out, struct fy_node *val, co_mark at)
{
    const co_schema *sub = o->sub;
    int is_map = o->type == CO_T_MAP;
    enum fy_node_type want = is_map ? FYNT_MAPPING : FYNT_SEQUENCE;
    if (fy_node_get_type(val) != want) {
        co_conf_error(&c->pub, at, "'%s' expects %s, found %s", c->path,
                      is_map ? "a mapping of named entries" : "a sequence", node_kind(val));
        return;
    }
    size_t count = is_map ? (size_t)fy_node_mapping_item_count(val) : (size_t)fy_node_sequence_item_count(val);
    free_field(o, out);
    if (count == 0) {
        if (o->flags & CO_OPT_NONEMPTY)
            co_conf_error(&c->pub, at, "'%s' must not be empty", c->path);
        return;
    }
    out->v = calloc(count, sub->size);
    if (!out->v) {
        co_conf_error(&c->pub, at, "out of memory");
        return;
    }
    void *it = NULL;
    for (size_t i = 0; i < count; i++) {
        void *item = (char *)out->v + i * sub->size;
        struct fy_node *node;
        char part[160];
        co_mark im;
        defaults_into(sub, item, c->pub.diags);
        out->n++;
        if (is_map) {
            struct fy_node_pair *p = fy_node_mapping_iterate(val, &it);
            struct fy_node *k = fy_node_pair_key(p);
            node = fy_node_pair_value(p);
            im = co_yaml_node_mark(k, at);
            if (!k || fy_node_get_type(k) != FYNT_SCALAR) {
                co_conf_error(&c->pub, im, "'%s' entry names must be strings", c->path);
                continue;
            }
            scalar_text(k, part, sizeof part);
            if (sub->name_offset) {
                char **name = field_at(item, sub->name_offset - 1);
                *name = strdup(part);
            }
        } else {
            node = fy_node_sequence_iterate(val, &it);
            im = co_yaml_node_mark(node, at);
            snprintf(part, sizeof part, "%zu", i);
        }
        size_t saved;
        push_path(c, part, &saved);
        if (is_null(node) && is_map)
            node = NULL;
        /* a map entry is located at its name; a list item at its first scalar */
        if (node)
            bind_item(c, sub, item, node, is_map ? im : co_yaml_node_mark(node, im));
        else {
            if (sub->mark_offset && !c->defaults)
                *(co_mark *)field_at(item, sub->mark_offset - 1) = im;
            bind_mapping(c, sub, item, NULL, im);
        }
        pop_path(c, saved);
    }
}

static void bind_value(bind_ctx *c, const co_opt *o, void *field, struct fy_node *val, co_mark at)
{
    if (o->type == CO_T_FORBIDDEN) {
        co_conf_error(&c->pub, at, "'%s' is not allowed here: %s", c->path, o->help);
        return;
    }
    if (is_null(val) && o->type != CO_T_JSON) {
        if (o->flags & CO_OPT_REQUIRED)
            co_conf_error(&c->pub, at, "'%s' needs a value", c->path);
        return; /* empty: keep the default */
    }
    co_mark vm = co_yaml_node_mark(val, at);
    switch (o->type) {
    case CO_T_STRLIST:
        bind_strlist(c, o, field, val, vm);
        break;
    case CO_T_JSON: {
        json_t *j = node_to_json(val);
        json_decref(*(json_t **)field);
        *(json_t **)field = j;
        break;
    }
    case CO_T_SECTION:
        if (fy_node_get_type(val) != FYNT_MAPPING) {
            co_conf_error(&c->pub, vm, "'%s' expects a mapping, found %s", c->path, node_kind(val));
            break;
        }
        bind_mapping(c, o->sub, field, val, at);
        break;
    case CO_T_MAP:
    case CO_T_LIST:
        bind_collection(c, o, field, val, at);
        break;
    default:
        bind_scalar(c, o, field, val, vm);
    }
}

static void bind_mapping(bind_ctx *c, const co_schema *s, void *obj, struct fy_node *map, co_mark at)
{
    unsigned char seen[CO__CONF_MAX_OPTS] = {0};
    const char *names[CO__CONF_MAX_OPTS + 1];
    size_t nopts = 0;
    for (const co_opt *o = s->opts; o->name && nopts < CO__CONF_MAX_OPTS; o++)
        if (o->type != CO_T_FORBIDDEN && !(o->flags & CO_OPT_HIDDEN))
            names[nopts++] = o->name;
    names[nopts] = NULL;

    void *it = NULL;
    struct fy_node_pair *p;
    while (map && (p = fy_node_mapping_iterate(map, &it))) {
        struct fy_node *k = fy_node_pair_key(p), *v = fy_node_pair_value(p);
        co_mark km = co_yaml_node_mark(k, at);
        char key[160];
        if (!k || fy_node_get_type(k) != FYNT_SCALAR) {
            co_conf_error(&c->pub, km, "keys in '%s' must be plain names", c->path[0] ? c->path : "the file");
            continue;
        }
        scalar_text(k, key, sizeof key);
        const co_opt *o = NULL;
        size_t idx = 0;
        for (const co_opt *q = s->opts; q->name; q++, idx++)
            if (strcmp(q->name, key) == 0) {
                o = q;
                break;
            }
        if (!o) {
            const char *near = co_suggest(key, names);
            char where[600];
            if (c->path[0])
                snprintf(where, sizeof where, "in '%s'", c->path);
            else
                snprintf(where, sizeof where, "at the top level");
            if (near)
                co_conf_error(&c->pub, km, "unknown key '%s' %s; did you mean '%s'?", key, where, near);
            else {
                char list[512];
                enum_list(names, list, sizeof list);
                co_conf_error(&c->pub, km, "unknown key '%s' %s (known keys: %s)", key, where, list);
            }
            continue;
        }
        if (idx < CO__CONF_MAX_OPTS)
            seen[idx] = 1;
        size_t saved;
        push_path(c, key, &saved);
        void *field = field_at(obj, o->offset);
        if (o->mark_offset && !c->defaults)
            *(co_mark *)field_at(obj, o->mark_offset - 1) = co_yaml_node_mark(v, km);
        if (o->present_offset && !is_null(v))
            *(int *)field_at(obj, o->present_offset - 1) = 1;
        bind_value(c, o, field, v, km);
        pop_path(c, saved);
    }
    size_t idx = 0;
    for (const co_opt *o = s->opts; o->name; o++, idx++) {
        if (!(o->flags & CO_OPT_REQUIRED) || (idx < CO__CONF_MAX_OPTS && seen[idx]))
            continue;
        if (c->path[0])
            co_conf_error(&c->pub, at, "'%s' is missing the required key '%s' (%s)", c->path, o->name, o->help);
        else
            co_conf_error(&c->pub, at, "the required key '%s' is missing (%s)", o->name, o->help);
    }
    if (s->check)
        s->check(obj, &c->pub, at);
}

/* ---- documents --------------------------------------------------------------- */

int co_conf_load_string(const co_schema *root, void *obj, const char *text, size_t len,
                        const char *name, co_diags *diags)
{
    size_t before = diags->n;
    co_yaml y;
    if (co_yaml_parse(&y, text, len, name, 0, diags) == 0) {
        bind_ctx c = {.pub = {.file = name, .diags = diags}};
        struct fy_node *r = y.doc ? fy_document_root(y.doc) : NULL;
        co_mark top = {1, 1};
        if (r && !is_null(r) && fy_node_get_type(r) != FYNT_MAPPING)
            co_conf_error(&c.pub, co_yaml_node_mark(r, top), "the file must be a mapping of keys, found %s", node_kind(r));
        else
            bind_mapping(&c, root, obj, is_null(r) ? NULL : r, top);
    }
    co_yaml_close(&y);
    return diags->n > before ? co_error_set(CO_ECONFIG, "%zu error(s) in %s", diags->n - before, name) : 0;
}

int co_conf_load_file(const co_schema *root, void *obj, const char *path, co_diags *diags)
{
    char *text = NULL;
    size_t len = 0;
    int rc = co_read_file(path, CO__CONF_MAX_FILE, &text, &len);
    if (rc < 0) {
        co_diags_add(diags, path, 0, 0, "%s", co_error_last());
        return rc;
    }
    rc = co_conf_load_string(root, obj, text, len, path, diags);
    free(text);
    return rc;
}

static int defaults_into(const co_schema *s, void *obj, co_diags *diags)
{
    int rc = 0;
    for (const co_opt *o = s->opts; o->name; o++) {
        void *field = field_at(obj, o->offset);
        if (o->type == CO_T_SECTION) {
            if (defaults_into(o->sub, field, diags) < 0)
                rc = CO_EINVAL;
            continue;
        }
        if (!o->def || o->type == CO_T_FORBIDDEN)
            continue;
        if (!o->def[0]) {
            if (o->type == CO_T_STR && !*(char **)field)
                *(char **)field = strdup("");
            continue;
        }
        char name[200];
        snprintf(name, sizeof name, "<default of %s.%s: %s>", s->name ? s->name : "", o->name, o->def);
        size_t before = diags->n;
        co_yaml y;
        if (co_yaml_parse(&y, o->def, strlen(o->def), name, 0, diags) == 0 && y.doc) {
            bind_ctx c = {.pub = {.file = name, .diags = diags}, .defaults = 1};
            snprintf(c.path, sizeof c.path, "%s", o->name);
            co_mark none = {0, 0};
            bind_value(&c, o, field, fy_document_root(y.doc), none);
        }
        co_yaml_close(&y);
        if (diags->n > before)
            rc = CO_EINVAL;
    }
    return rc;
}

int co_conf_defaults(const co_schema *root, void *obj)
{
    co_diags d = {0};
    int rc = defaults_into(root, obj, &d);
    if (rc < 0)
        co_error_set(CO_EINVAL, "bad default in the config table: %s", d.n ? d.v[0].msg : "?");
    co_diags_free(&d);
    return rc;
}

/* ---- introspection: lookup, templates, docs ---------------------------------- */

const co_opt *co_conf_find(const co_schema *root, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const co_schema *s = root;
    const co_opt *found = NULL;
    char *save = NULL;
    for (char *part = strtok_r(buf, ".", &save); part; part = strtok_r(NULL, ".", &save)) {
        if (strcmp(part, "*") == 0)
            continue; /* crossing a map/list level */
        if (!s)
            return NULL;
        found = NULL;
        for (const co_opt *o = s->opts; o->name; o++)
            if (strcmp(o->name, part) == 0) {
                found = o;
                break;
            }
        if (!found)
            return NULL;
        s = found->sub;
    }
    return found;
}

static void default_text(const co_opt *o, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (o->def)
        snprintf(buf, cap, "%s", o->def);
}

int co_conf_describe(const co_opt *o, co_buf *out)
{
    char def[256], extra[600] = "";
    size_t used = 0;
    default_text(o, def, sizeof def);
    if (def[0])
        used += (size_t)snprintf(extra + used, sizeof extra - used, "default: %s", def);
    if (o->type == CO_T_ENUM) {
        char list[400];
        enum_list(o->enums, list, sizeof list);
        used += (size_t)snprintf(extra + used, sizeof extra - used, "%sone of: %s", used ? "; " : "", list);
    } else if (has_bounds(o) && used < sizeof extra) {
        char bt[96];
        bounds_text(o, bt, sizeof bt);
        used += (size_t)snprintf(extra + used, sizeof extra - used, "%s%s", used ? "; " : "", bt);
    }
    if (o->flags & CO_OPT_REQUIRED && used < sizeof extra)
        used += (size_t)snprintf(extra + used, sizeof extra - used, "%srequired", used ? "; " : "");
    if (used && used < sizeof extra)
        return co_buf_printf(out, "%s (%s)", o->help ? o->help : "", extra);
    return co_buf_puts(out, o->help ? o->help : "");
}

/* Writes text as "# "-comment lines no wider than ~78 columns. */
static int comment_wrap(co_buf *out, const char *indent, const char *text)
{
    const char *p = text;
    int rc = 0;
    size_t width = 76 - (strlen(indent) < 40 ? strlen(indent) : 40);
    while (*p && !rc) {
        size_t n = strlen(p);
        size_t take = n;
        if (n > width) {
            take = width;
            while (take > 0 && p[take] != ' ')
                take--;
            if (take == 0)
                take = width;
        }
        rc = co_buf_printf(out, "%s# %.*s\n", indent, (int)take, p);
        p += take;
        while (*p == ' ')
            p++;
    }
    return rc;
}

int co_conf_render_template(const co_schema *root, const char *tmpl, co_buf *out)
{
    int rc = 0;
    const char *line = tmpl;
    co_buf desc;
    co_buf_init(&desc, 8192);
    while (*line && !rc) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        const char *mark = memmem(line, len, "{{help:", 7);
        if (!mark) {
            rc = co_buf_append(out, line, len);
            if (!rc && eol)
                rc = co_buf_puts(out, "\n");
        } else {
            const char *end = memmem(mark, len - (size_t)(mark - line), "}}", 2);
            char path[200], indent[64];
            size_t ind = 0;
            while (ind < len && ind < sizeof indent - 1 && (line[ind] == ' ')) {
                indent[ind] = ' ';
                ind++;
            }
            indent[ind] = '\0';
            if (!end || (size_t)(end - mark - 7) >= sizeof path) {
                rc = co_error_set(CO_EINVAL, "unterminated {{help:...}} in the template");
                break;
            }
            snprintf(path, sizeof path, "%.*s", (int)(end - mark - 7), mark + 7);
            const co_opt *o = co_conf_find(root, path);
            if (!o) {
                rc = co_error_set(CO_EINVAL, "the template names an unknown key '%s'", path);
                break;
            }
            co_buf_reset(&desc);
            rc = co_conf_describe(o, &desc);
            if (!rc)
                rc = comment_wrap(out, indent, desc.p ? desc.p : "");
        }
        line = eol ? eol + 1 : line + len;
    }
    co_buf_free(&desc);
    return rc;
}

typedef struct md_seen {
    const co_schema *schema[64];
    char path[64][256];
    size_t n;
} md_seen;

/* One table per (sub-)schema; a schema reached again by another path (the
 * triggers of a workload and of the rollout) points at its first table. */
static int markdown_schema(const co_schema *s, const char *prefix, md_seen *seen, co_buf *out)
{
    for (size_t i = 0; i < seen->n; i++)
        if (seen->schema[i] == s)
            return co_buf_printf(out, "\n### `%s`\n\nThe same keys as `%s`.\n", prefix, seen->path[i]);
    if (seen->n < 64) {
        seen->schema[seen->n] = s;
        snprintf(seen->path[seen->n], sizeof seen->path[0], "%s", prefix);
        seen->n++;
    }
    int rc = co_buf_printf(out, "\n### `%s`\n\n| key | type | default | description |\n|---|---|---|---|\n",
                           prefix[0] ? prefix : "(top level)");
    for (const co_opt *o = s->opts; o->name && !rc; o++) {
        if (o->flags & CO_OPT_HIDDEN || o->type == CO_T_FORBIDDEN)
            continue;
        char type[600], def[256];
        if (o->type == CO_T_ENUM) {
            char list[500];
            enum_list(o->enums, list, sizeof list);
            snprintf(type, sizeof type, "one of: %s", list);
        } else if (has_bounds(o)) {
            char bt[96];
            bounds_text(o, bt, sizeof bt);
            snprintf(type, sizeof type, "%s, %s", type_name(o), bt);
        } else {
            snprintf(type, sizeof type, "%s", type_name(o));
        }
        default_text(o, def, sizeof def);
        rc = co_buf_printf(out, "| `%s` | %s | %s%s%s | %s%s |\n", o->name, type, def[0] ? "`" : "", def,
                           def[0] ? "`" : "", (o->flags & CO_OPT_REQUIRED) ? "**Required.** " : "",
                           o->help ? o->help : "");
    }
    for (const co_opt *o = s->opts; o->name && !rc; o++) {
        if (!o->sub || (o->flags & CO_OPT_HIDDEN))
            continue;
        char path[256];
        if (o->type == CO_T_MAP)
            snprintf(path, sizeof path, "%s%s%s.NAME", prefix, prefix[0] ? "." : "", o->name);
        else if (o->type == CO_T_LIST)
            snprintf(path, sizeof path, "%s%s%s[]", prefix, prefix[0] ? "." : "", o->name);
        else
            snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "", o->name);
        rc = markdown_schema(o->sub, path, seen, out);
    }
    return rc;
}

int co_conf_markdown(const co_schema *root, const char *title, co_buf *out)
{
    md_seen *seen = calloc(1, sizeof *seen);
    if (!seen)
        return co_error_set(CO_ENOMEM, "out of memory");
    int rc = co_buf_printf(out,
                           "# %s\n\nGenerated from the key table by `cutover config`; every key's type, "
                           "bounds, default and meaning.\nDurations take ms, s, m, h or d (`30s`, `48h`); "
                           "sizes k, MB, MiB; percents `5` or `5%%`.\n",
                           title);
    if (!rc)
        rc = markdown_schema(root, "", seen, out);
    free(seen);
    return rc;
}
