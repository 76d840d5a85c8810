/* The declarative config engine: a table of keys (name, type, bounds,
 * default, help) binds a YAML document onto a C struct. One table drives
 * parsing, validation, defaults, freeing, the `init` template's comments and
 * the generated reference docs. Used by cutover.yaml (config.c) and by sim
 * scenarios (sim/scenario.c).
 *
 * Every error is collected (not just the first) into a co_diags list with the
 * file:line:col of the offending node, what was expected and what was found;
 * unknown keys get a "did you mean" suggestion. */
#ifndef CUTOVER_CONF_H
#define CUTOVER_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "cutover/buf.h"
#include "cutover/error.h"

typedef enum co_opt_type {
    CO_T_STR,       /* char *                                      */
    CO_T_INT,       /* int64_t, bounds min..max                    */
    CO_T_DOUBLE,    /* double, bounds min..max                     */
    CO_T_PERCENT,   /* double 0..100; accepts 5, 5%, "2.5%"        */
    CO_T_BOOL,      /* int 0/1; true/false/yes/no/on/off           */
    CO_T_DURATION,  /* int64_t ms; "250ms", "30s", "48h", "14d"    */
    CO_T_SIZE,      /* int64_t bytes; "64k", "4MiB"                */
    CO_T_ENUM,      /* int index into opt->enums                   */
    CO_T_STRLIST,   /* co_strv: a sequence of scalars (a lone scalar is a list of one) */
    CO_T_JSON,      /* json_t * (jansson): any YAML value, converted */
    CO_T_SECTION,   /* nested struct at offset, described by opt->sub */
    CO_T_MAP,       /* co_vec of opt->sub structs; mapping of name -> entry */
    CO_T_LIST,      /* co_vec of opt->sub structs; sequence of entries */
    CO_T_FORBIDDEN, /* the key must not appear; opt->help is the error text */
} co_opt_type;

/* A sequence of strings; owned by the struct it lives in. */
typedef struct co_strv {
    char **v;
    size_t n;
} co_strv;

/* A vector of sub-structs (MAP and LIST); items are sub->size bytes each. */
typedef struct co_vec {
    void *v;
    size_t n;
} co_vec;

/* Where a node stood in its file. */
typedef struct co_mark {
    int line, col;  /* 1-based; 0 when the value came from a default */
} co_mark;

struct co_schema;
struct co_conf_ctx;

enum co_opt_flags {
    CO_OPT_REQUIRED = 1 << 0,  /* must be present                              */
    CO_OPT_NONEMPTY = 1 << 1,  /* strings/lists must not be empty              */
    CO_OPT_HIDDEN   = 1 << 2,  /* not shown in templates or docs               */
};

typedef struct co_opt {
    const char *name;
    co_opt_type type;
    size_t offset;                 /* of the field inside the struct */
    double min, max;               /* bounds for INT/DOUBLE/DURATION(ms)/SIZE; min==max==0: none */
    const char *def;               /* default as YAML text (NULL: zero / absent) */
    const char *help;              /* one line; FORBIDDEN: the whole error message */
    const char *const *enums;      /* ENUM: NULL-terminated names */
    const struct co_schema *sub;   /* SECTION, MAP, LIST */
    unsigned flags;
    size_t mark_offset;            /* CO_MARK_AT(off) to record the value's co_mark; 0 = none */
    size_t present_offset;         /* CO_MARK_AT(off) of an int set to 1 when the key appears */
} co_opt;

/* Offsets in mark_offset/present_offset are stored +1 so 0 can mean "none". */
#define CO_MARK_AT(off) ((size_t)(off) + 1)

typedef struct co_schema {
    const char *name;              /* for docs: "provider", "workload"... */
    size_t size;                   /* sizeof the struct (MAP/LIST items) */
    const co_opt *opts;            /* terminated by an entry with name NULL */
    size_t name_offset;            /* MAP items: CO_MARK_AT(offset of char *name) */
    size_t mark_offset;            /* CO_MARK_AT(offset of co_mark) where the item starts */
    const char *scalar_key;        /* LIST/MAP items: a bare scalar is shorthand for {scalar_key: value} */
    /* Cross-field checks after the item is bound; add diagnostics via co_conf_error. */
    void (*check)(void *item, struct co_conf_ctx *ctx, co_mark at);
} co_schema;

/* Parsing context handed to check callbacks. */
typedef struct co_conf_ctx {
    const char *file;
    co_diags *diags;
    int errors;                    /* number of errors added so far */
} co_conf_ctx;

void co_conf_error(co_conf_ctx *ctx, co_mark at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fills obj (a zeroed struct of the root schema) with defaults. */
int co_conf_defaults(const co_schema *root, void *obj);
/* Parses YAML text (name is used in diagnostics) onto obj, which must hold
 * defaults already (co_conf_defaults). Returns 0, or CO_ECONFIG with every
 * problem in diags. On error obj still holds whatever was bound and must be
 * freed with co_conf_free. */
int co_conf_load_string(const co_schema *root, void *obj, const char *text, size_t len,
                        const char *name, co_diags *diags);
int co_conf_load_file(const co_schema *root, void *obj, const char *path, co_diags *diags);
/* Frees every string, list, JSON value and sub-struct the schema describes. */
void co_conf_free(const co_schema *root, void *obj);

/* Looks up a dotted key path ("providers.*.kind", "rollout.stages.hold").
 * Map and list levels are crossed with or without "*". NULL if unknown. */
const co_opt *co_conf_find(const co_schema *root, const char *path);
/* "One line of help (default: 30s; 1ms..10m)" for a key path into buf. */
int co_conf_describe(const co_opt *opt, co_buf *out);
/* Renders a template: each line "{{help:PATH}}" becomes comment lines with
 * that key's description, indented like the line. Unknown paths: CO_EINVAL. */
int co_conf_render_template(const co_schema *root, const char *tmpl, co_buf *out);
/* The Markdown reference of every key of the schema. */
int co_conf_markdown(const co_schema *root, const char *title, co_buf *out);

/* The index of `name` in a NULL-terminated list, or -1. */
int co_enum_index(const char *const *names, const char *name);
/* The name of an enum field's value. */
const char *co_enum_name(const char *const *names, int idx);

#endif
