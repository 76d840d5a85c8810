/* One guarded way to read a YAML document with libfyaml, shared by the config
 * engine (cutover.yaml, sim scenarios) and the eval-set readers: the text must
 * be UTF-8 without NUL (libfyaml 0.7 otherwise cuts documents short or spins),
 * hold exactly one document, and its aliases must not expand past a bound
 * ("billion laughs"); every problem goes to a co_diags list with its
 * file:line:col, never to stderr. */
#ifndef CUTOVER_YAML_H
#define CUTOVER_YAML_H

#include <stddef.h>

#include "cutover/conf.h"

struct fy_diag;
struct fy_parser;
struct fy_document;
struct fy_node;
struct fy_token;

/* A parsed document with the parser and diagnostics it lives with; release
 * with co_yaml_close (also after a failed parse). */
typedef struct co_yaml {
    struct fy_diag *diag;
    struct fy_parser *parser;
    struct fy_document *doc;    /* NULL: empty input, or errors were reported */
} co_yaml;

#define CO_YAML_MAX_EXPANDED 100000  /* default bound on nodes after alias expansion */

/* Parses text (name is used in diagnostics) with aliases resolved. Returns 0
 * (y->doc NULL for empty input), CO_ECONFIG with the problems in diags, or
 * CO_ENOMEM. max_expanded 0 means CO_YAML_MAX_EXPANDED. */
int co_yaml_parse(co_yaml *y, const char *text, size_t len, const char *name, size_t max_expanded,
                  co_diags *diags);
void co_yaml_close(co_yaml *y);

/* Where a token starts (1-based); {0,0} without one. */
co_mark co_yaml_token_mark(struct fy_token *t);
/* Where a node starts: a scalar's token, else the first scalar inside a
 * collection (libfyaml keeps no start mark for collections), else fallback. */
co_mark co_yaml_node_mark(struct fy_node *n, co_mark fallback);

#endif
