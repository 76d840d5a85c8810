/* Eval-set loader: native YAML / JSONL cases, promptfoo configs and
 * OpenAI-evals JSONL into chat requests and compiled assertion sets, with
 * every error located (file:line:col) and collected. See cutover/suite.h. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <libfyaml.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cutover/buf.h"
#include "cutover/suite.h"
#include "cutover/util.h"
#include "cutover/yaml.h"

#define SUITE_MAX_FILE ((size_t)64 << 20)
#define SUITE_MAX_DEPTH 64

typedef struct mk {
    int line, col;
} mk;

/* ---- the suite ----------------------------------------------------------- */

typedef struct scase {
    co_suite_case pub;
    char *id, *workload;
    char **tags;
    co_chat_request *req;
    co_assert_set *set;
    json_t *ideal, *tools;
} scase;

struct co_suite {
    scase *v;
    size_t n, cap;
    char **files;
    size_t n_files;
    char **warnings;
    size_t n_warnings;
};

static void scase_free(scase *c)
{
    free(c->id);
    free(c->workload);
    for (size_t i = 0; c->tags && i < c->pub.n_tags; i++)
        free(c->tags[i]);
    free(c->tags);
    co_chat_request_free(c->req);
    co_assert_set_free(c->set);
    json_decref(c->ideal);
    json_decref(c->tools);
}

void co_suite_free(co_suite *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        scase_free(&s->v[i]);
    free(s->v);
    for (size_t i = 0; i < s->n_files; i++)
        free(s->files[i]);
    free(s->files);
    for (size_t i = 0; i < s->n_warnings; i++)
        free(s->warnings[i]);
    free(s->warnings);
    free(s);
}

size_t co_suite_len(const co_suite *s)
{
    return s ? s->n : 0;
}

const co_suite_case *co_suite_get(const co_suite *s, size_t i)
{
    return s && i < s->n ? &s->v[i].pub : NULL;
}

const co_suite_case *co_suite_find(const co_suite *s, const char *id)
{
    for (size_t i = 0; s && id && i < s->n; i++)
        if (!strcmp(s->v[i].id, id))
            return &s->v[i].pub;
    return NULL;
}

size_t co_suite_n_warnings(const co_suite *s)
{
    return s ? s->n_warnings : 0;
}

const char *co_suite_warning(const co_suite *s, size_t i)
{
    return s && i < s->n_warnings ? s->warnings[i] : NULL;
}

const char *co_suite_format_name(co_suite_format f)
{
    switch (f) {
    case CO_SUITE_PROMPTFOO: return "promptfoo";
    case CO_SUITE_OPENAI_EVALS: return "openai-evals";
    default: return "native";
    }
}

/* ---- node locations: json_t pointer (+ key) -> mark ----------------------- */

typedef struct loc_ent {
    const void *p;
    uint64_t k; /* 0: the node itself; else the hash of a key of that object */
    mk m;
} loc_ent;

typedef struct locmap {
    loc_ent *v;
    size_t cap, n;
} locmap;

static uint64_t loc_hash(const void *p, uint64_t k)
{
    uint64_t h = ((uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull) ^ (k * 0xC2B2AE3D27D4EB4Full);
    return h ^ (h >> 29);
}

static uint64_t key_hash(const char *key)
{
    return co_hash64(key, strlen(key), 7) | 1;
}

static int loc_put(locmap *lm, const void *p, uint64_t k, mk m)
{
    if (!p)
        return 0;
    if ((lm->n + 1) * 2 > lm->cap) {
        size_t nc = lm->cap ? lm->cap * 2 : 256;
        loc_ent *nv = calloc(nc, sizeof *nv);
        if (!nv)
            return CO_ENOMEM;
        for (size_t i = 0; i < lm->cap; i++) {
            if (!lm->v[i].p)
                continue;
            size_t j = loc_hash(lm->v[i].p, lm->v[i].k) & (nc - 1);
            while (nv[j].p)
                j = (j + 1) & (nc - 1);
            nv[j] = lm->v[i];
        }
        free(lm->v);
        lm->v = nv;
        lm->cap = nc;
    }
    size_t j = loc_hash(p, k) & (lm->cap - 1);
    while (lm->v[j].p) {
        if (lm->v[j].p == p && lm->v[j].k == k) {
            lm->v[j].m = m;
            return 0;
        }
        j = (j + 1) & (lm->cap - 1);
    }
    lm->v[j] = (loc_ent){p, k, m};
    lm->n++;
    return 0;
}

static const mk *loc_get(const locmap *lm, const void *p, uint64_t k)
{
    if (!lm->cap || !p)
        return NULL;
    size_t j = loc_hash(p, k) & (lm->cap - 1);
    while (lm->v[j].p) {
        if (lm->v[j].p == p && lm->v[j].k == k)
            return &lm->v[j].m;
        j = (j + 1) & (lm->cap - 1);
    }
    return NULL;
}

/* ---- per-file context ------------------------------------------------------ */

typedef struct fctx {
    co_suite *s;
    const char *file; /* owned by s->files */
    char *stem;       /* file name without directory and extension */
    co_diags *d;
    const co_assert_opts *aopts;
    locmap map;
    json_t *keep;     /* every tree and made-up object, alive until the file is done
                         (so no address in the map is reused) */
    const char *line; /* JSONL: the current line (keys are located in it) */
    size_t line_len;
    int line_no;
    const char *def_workload;
    int stem_warned;
    int errs;
    int nomem;
} fctx;

static void ferr(fctx *fc, mk m, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void ferr(fctx *fc, mk m, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    co_diags_add(fc->d, fc->file, m.line, m.col, "%s", buf);
    fc->errs++;
}

static void fwarn(fctx *fc, mk m, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fwarn(fctx *fc, mk m, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    co_buf b;
    co_buf_init(&b, CO_BUF_UNLIMITED);
    co_buf_printf(&b, "%s:%d:%d: %s", fc->file, m.line, m.col, buf);
    for (size_t i = 0; b.p && i < fc->s->n_warnings; i++) {
        if (!strcmp(fc->s->warnings[i], b.p)) { /* said once (defaultTest x tests x prompts) */
            co_buf_free(&b);
            return;
        }
    }
    char **nv = realloc(fc->s->warnings, (fc->s->n_warnings + 1) * sizeof *nv);
    if (!nv || !b.p) {
        co_buf_free(&b);
        if (nv)
            fc->s->warnings = nv;
        fc->nomem = 1;
        return;
    }
    fc->s->warnings = nv;
    nv[fc->s->n_warnings++] = co_buf_detach(&b);
}

static json_t *keep(fctx *fc, json_t *j)
{
    if (j)
        json_array_append_new(fc->keep, j);
    return j;
}

static mk mark_of(fctx *fc, const json_t *j, mk fallback)
{
    const mk *m = loc_get(&fc->map, j, 0);
    return m ? *m : fallback;
}

static mk key_mark(fctx *fc, const json_t *obj, const char *key, mk fallback)
{
    const mk *m = loc_get(&fc->map, obj, key_hash(key));
    if (m)
        return *m;
    if (fc->line) {
        size_t kl = strlen(key);
        for (size_t i = 0; i + kl + 2 <= fc->line_len; i++)
            if (fc->line[i] == '"' && !memcmp(fc->line + i + 1, key, kl) && fc->line[i + 1 + kl] == '"')
                return (mk){fc->line_no, (int)i + 1};
    }
    return fallback;
}

/* ---- YAML -> JSON with marks ------------------------------------------------ */

static mk token_mark(struct fy_token *t)
{
    const struct fy_mark *fm = t ? fy_token_start_mark(t) : NULL;
    return fm ? (mk){fm->line + 1, fm->column + 1} : (mk){0, 0};
}

/* Scalars: their token; collections: their first key or item. */
static mk node_mark(struct fy_node *n)
{
    for (int depth = 0; n && depth < SUITE_MAX_DEPTH; depth++) {
        if (fy_node_is_scalar(n)) {
            mk m = token_mark(fy_node_get_scalar_token(n));
            enum fy_node_style st = fy_node_get_style(n);
            if ((st == FYNS_SINGLE_QUOTED || st == FYNS_DOUBLE_QUOTED) && m.col > 1)
                m.col--; /* the token starts after the quote: point at the quote */
            return m;
        }
        void *it = NULL;
        if (fy_node_is_mapping(n)) {
            struct fy_node_pair *p = fy_node_mapping_iterate(n, &it);
            n = p ? fy_node_pair_key(p) : NULL;
        } else {
            n = fy_node_sequence_iterate(n, &it);
        }
    }
    return (mk){0, 0};
}

static json_t *plain_scalar(const char *s, size_t n)
{
    char buf[64];
    if (n == 0 || (n == 1 && s[0] == '~') || (n == 4 && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) ||
                                                         !memcmp(s, "NULL", 4))))
        return json_null();
    if (n == 4 && (!memcmp(s, "true", 4) || !memcmp(s, "True", 4) || !memcmp(s, "TRUE", 4)))
        return json_true();
    if (n == 5 && (!memcmp(s, "false", 5) || !memcmp(s, "False", 5) || !memcmp(s, "FALSE", 5)))
        return json_false();
    if (n < sizeof buf && (isdigit((unsigned char)s[0]) || s[0] == '-' || s[0] == '.' || s[0] == '+')) {
        memcpy(buf, s, n);
        buf[n] = '\0';
        char *end;
        errno = 0;
        long long v = strtoll(buf, &end, 10);
        if (!*end && !errno)
            return json_integer(v);
        errno = 0;
        double d = strtod(buf, &end);
        if (!*end && !errno && strpbrk(buf, "0123456789") && !strpbrk(buf, "xXnN"))
            return json_real(d);
    }
    return json_stringn(s, n);
}

static json_t *yaml_json(fctx *fc, struct fy_node *n, int depth)
{
    if (!n)
        return json_null();
    if (depth > SUITE_MAX_DEPTH) {
        ferr(fc, node_mark(n), "nested too deeply (more than %d levels)", SUITE_MAX_DEPTH);
        return json_null();
    }
    json_t *j;
    if (fy_node_is_scalar(n)) {
        size_t len = 0;
        const char *s = fy_node_get_scalar(n, &len);
        if (!s)
            j = json_null();
        else if (fy_node_get_style(n) == FYNS_PLAIN)
            j = plain_scalar(s, len);
        else
            j = json_stringn(s, len);
    } else if (fy_node_is_sequence(n)) {
        j = json_array();
        void *it = NULL;
        struct fy_node *c;
        while (j && (c = fy_node_sequence_iterate(n, &it)))
            json_array_append_new(j, yaml_json(fc, c, depth + 1));
    } else {
        j = json_object();
        void *it = NULL;
        struct fy_node_pair *p;
        while (j && (p = fy_node_mapping_iterate(n, &it))) {
            struct fy_node *kn = fy_node_pair_key(p);
            size_t kl = 0;
            const char *k = kn && fy_node_is_scalar(kn) ? fy_node_get_scalar(kn, &kl) : NULL;
            if (!k) {
                ferr(fc, node_mark(kn), "a key must be a plain string");
                continue;
            }
            char *key = strndup(k, kl);
            if (!key) {
                fc->nomem = 1;
                continue;
            }
            json_object_set_new(j, key, yaml_json(fc, fy_node_pair_value(p), depth + 1));
            if (loc_put(&fc->map, j, key_hash(key), token_mark(fy_node_get_scalar_token(kn))))
                fc->nomem = 1;
            free(key);
        }
    }
    if (!j) {
        fc->nomem = 1;
        return json_null();
    }
    if (!json_is_null(j) && !json_is_true(j) && !json_is_false(j) && loc_put(&fc->map, j, 0, node_mark(n)))
        fc->nomem = 1;
    return j;
}

/* ---- text helpers -------------------------------------------------------------- */


/* A scalar as text (strings as is, numbers and booleans as JSON, null as "");
 * objects and arrays as compact JSON. */
static char *value_text(const json_t *v)
{
    if (json_is_string(v))
        return strndup(json_string_value(v), json_string_length(v));
    if (!v || json_is_null(v))
        return strdup("");
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* Replaces {{ name }} with vars[name]. Returns the text, or NULL with
 * *missing set (malloc'd) to the first name vars lacks (or NULL on ENOMEM). */
static char *render(const char *tmpl, const json_t *vars, char **missing)
{
    co_buf b;
    co_buf_init(&b, SUITE_MAX_FILE);
    *missing = NULL;
    const char *p = tmpl;
    int bad = 0;
    for (;;) {
        const char *open = strstr(p, "{{"), *close = open ? strstr(open + 2, "}}") : NULL;
        if (!close) {
            bad |= co_buf_puts(&b, p) != 0;
            break;
        }
        bad |= co_buf_append(&b, p, (size_t)(open - p)) != 0;
        const char *a = open + 2, *e = close;
        while (a < e && isspace((unsigned char)*a))
            a++;
        while (e > a && isspace((unsigned char)e[-1]))
            e--;
        char *name = strndup(a, (size_t)(e - a));
        const json_t *v = name && json_is_object(vars) ? json_object_get(vars, name) : NULL;
        if (!v) {
            *missing = name;
            co_buf_free(&b);
            return NULL;
        }
        free(name);
        char *val = value_text(v);
        bad |= !val || co_buf_puts(&b, val) != 0;
        free(val);
        p = close + 2;
    }
    if (bad) {
        co_buf_free(&b);
        return NULL;
    }
    return co_buf_detach(&b);
}

static char *mk_where(const char *file, mk m)
{
    co_buf b;
    co_buf_init(&b, CO_BUF_UNLIMITED);
    co_buf_printf(&b, "%s:%d:%d", file, m.line, m.col);
    return b.p ? co_buf_detach(&b) : NULL;
}

/* ---- one case ------------------------------------------------------------------- */

static const char *const case_keys[] = {"id",    "workload", "tags",   "critical",    "messages", "prompt",
                                        "vars",  "tools",    "ideal",  "assert",      "description",
                                        "metadata", NULL};

static int append_system(co_chat_request *req, const char *text)
{
    if (!req->system)
        return co_chat_request_set_str(&req->system, text);
    co_buf b;
    co_buf_init(&b, CO_BUF_UNLIMITED);
    co_buf_printf(&b, "%s\n\n%s", req->system, text);
    if (!b.p)
        return CO_ENOMEM;
    free(req->system);
    req->system = co_buf_detach(&b);
    return 0;
}

static void add_messages(fctx *fc, co_chat_request *req, const json_t *msgs, mk at)
{
    if (!json_is_array(msgs) || !json_array_size(msgs)) {
        ferr(fc, mark_of(fc, msgs, at), "messages must be a non-empty list of {role, content}");
        return;
    }
    size_t i;
    const json_t *m;
    json_array_foreach(msgs, i, m) {
        mk mm = mark_of(fc, m, at);
        const char *role = json_string_value(json_object_get(m, "role"));
        const json_t *content = json_object_get(m, "content");
        if (!json_is_object(m) || !role) {
            ferr(fc, mm, "messages[%zu]: a message is a mapping with role and content", i);
            continue;
        }
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)m, k, v) {
            if (strcmp(k, "role") && strcmp(k, "content") && strcmp(k, "name"))
                ferr(fc, key_mark(fc, m, k, mm), "messages[%zu]: unknown key '%s' (role, content)", i, k);
        }
        int is_system = !strcmp(role, "system") || !strcmp(role, "developer");
        co_chat_role r;
        if (!strcmp(role, "user"))
            r = CO_CHAT_USER;
        else if (!strcmp(role, "assistant"))
            r = CO_CHAT_ASSISTANT;
        else if (!is_system) {
            ferr(fc, mark_of(fc, json_object_get(m, "role"), mm),
                 "messages[%zu]: role '%s' is not supported (system, developer, user, assistant)", i, role);
            continue;
        }
        co_chat_message *cm = NULL;
        if (!is_system && co_chat_request_add_message(req, r, &cm)) {
            fc->nomem = 1;
            return;
        }
        if (json_is_string(content)) {
            int rc = is_system ? append_system(req, json_string_value(content))
                               : co_chat_message_add_text(cm, json_string_value(content), json_string_length(content));
            if (rc)
                fc->nomem = 1;
            continue;
        }
        if (!json_is_array(content)) {
            ferr(fc, mark_of(fc, content, mm), "messages[%zu]: content must be a string or a list of parts", i);
            continue;
        }
        size_t pi;
        const json_t *part;
        json_array_foreach(content, pi, part) {
            const char *type = json_string_value(json_object_get(part, "type"));
            const char *text = json_string_value(json_object_get(part, "text"));
            const json_t *iu = json_object_get(part, "image_url");
            const char *url = json_is_string(iu) ? json_string_value(iu) : json_string_value(json_object_get(iu, "url"));
            int rc = 0;
            if (type && !strcmp(type, "text") && text)
                rc = is_system ? append_system(req, text) : co_chat_message_add_text(cm, text, strlen(text));
            else if (type && !strcmp(type, "image_url") && url && !is_system)
                rc = co_chat_message_add_image_url(cm, url, NULL);
            else {
                ferr(fc, mark_of(fc, part, mm),
                     "messages[%zu].content[%zu]: a part is {type: text, text} or {type: image_url, image_url: {url}}",
                     i, pi);
                continue;
            }
            if (rc)
                fc->nomem = 1;
        }
    }
}

static void add_tools(fctx *fc, co_chat_request *req, const json_t *tools, mk at)
{
    if (!json_is_array(tools)) {
        ferr(fc, mark_of(fc, tools, at), "tools must be a list of tools");
        return;
    }
    size_t i;
    const json_t *t;
    json_array_foreach(tools, i, t) {
        mk tm = mark_of(fc, t, at);
        const json_t *f = json_object_get(t, "function");
        if (!json_is_object(f))
            f = t;
        const char *name = json_string_value(json_object_get(f, "name"));
        const json_t *desc = json_object_get(f, "description");
        const json_t *params = json_object_get(f, "parameters");
        if (!params)
            params = json_object_get(f, "input_schema");
        if (!name || !*name) {
            ferr(fc, tm, "tools[%zu]: a tool needs a name ({type: function, function: {name, parameters}})", i);
            continue;
        }
        if (desc && !json_is_string(desc)) {
            ferr(fc, mark_of(fc, desc, tm), "tools[%zu]: description must be a string", i);
            continue;
        }
        if (params && !json_is_object(params)) {
            ferr(fc, mark_of(fc, params, tm), "tools[%zu]: parameters must be a JSON Schema mapping", i);
            continue;
        }
        char *pj = params ? json_dumps(params, JSON_COMPACT) : NULL;
        if ((params && !pj) || co_chat_request_add_tool(req, name, json_string_value(desc), pj))
            fc->nomem = 1;
        free(pj);
    }
}

static int push_case(co_suite *s, const scase *c)
{
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 16;
        scase *nv = realloc(s->v, nc * sizeof *nv);
        if (!nv)
            return CO_ENOMEM;
        s->v = nv;
        s->cap = nc;
    }
    s->v[s->n++] = *c;
    return 0;
}

/* Checks and builds a case from a (native or normalised) object. */
static void add_case(fctx *fc, const json_t *c, mk at, co_suite_format fmt)
{
    int errs0 = fc->errs;
    scase sc;
    memset(&sc, 0, sizeof sc);
    if (!json_is_object(c)) {
        ferr(fc, at, "a case must be a mapping (id, workload, messages or prompt, assert)");
        return;
    }
    const json_t *jid = json_object_get(c, "id");
    if (json_is_integer(jid) || json_is_real(jid)) {
        sc.id = value_text(jid);
    } else if (json_is_string(jid) && json_string_length(jid) && !memchr(json_string_value(jid), 0, json_string_length(jid))) {
        sc.id = strdup(json_string_value(jid));
    } else if (jid) {
        ferr(fc, mark_of(fc, jid, at), "id must be a non-empty string");
    } else {
        ferr(fc, at, "a case needs an id");
    }
    const char *cid = sc.id ? sc.id : "?";
    if (fmt == CO_SUITE_NATIVE) {
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)c, k, v) {
            int known = 0;
            for (size_t i = 0; case_keys[i]; i++)
                known |= !strcmp(k, case_keys[i]);
            if (!known) {
                const char *sug = co_suggest(k, case_keys);
                if (sug)
                    ferr(fc, key_mark(fc, c, k, at), "case '%s': unknown key '%s' (did you mean '%s'?)", cid, k, sug);
                else
                    ferr(fc, key_mark(fc, c, k, at), "case '%s': unknown key '%s'", cid, k);
            }
        }
    }
    const json_t *jw = json_object_get(c, "workload");
    if (json_is_string(jw) && json_string_length(jw))
        sc.workload = strdup(json_string_value(jw));
    else if (jw)
        ferr(fc, mark_of(fc, jw, at), "case '%s': workload must be a non-empty string", cid);
    else if (fc->def_workload)
        sc.workload = strdup(fc->def_workload);
    else
        ferr(fc, at, "case '%s' has no workload (and the file sets no default workload:)", cid);

    const json_t *jt = json_object_get(c, "tags");
    if (jt && !json_is_null(jt)) {
        json_t *one = json_is_string(jt) ? json_pack("[O]", jt) : NULL;
        const json_t *arr = one ? one : jt;
        if (!json_is_array(arr)) {
            ferr(fc, mark_of(fc, jt, at), "case '%s': tags must be a list of strings", cid);
        } else {
            sc.tags = calloc(json_array_size(arr) + 1, sizeof *sc.tags);
            if (!sc.tags)
                fc->nomem = 1;
            size_t i;
            const json_t *t;
            json_array_foreach(arr, i, t) {
                if (!sc.tags)
                    break;
                if (!json_is_string(t)) {
                    ferr(fc, mark_of(fc, t, at), "case '%s': tags[%zu] must be a string", cid, i);
                    continue;
                }
                if (!(sc.tags[sc.pub.n_tags] = strdup(json_string_value(t))))
                    fc->nomem = 1;
                else
                    sc.pub.n_tags++;
            }
        }
        json_decref(one);
    }
    const json_t *jc = json_object_get(c, "critical");
    if (jc && !json_is_boolean(jc) && !json_is_null(jc))
        ferr(fc, mark_of(fc, jc, at), "case '%s': critical must be true or false", cid);
    sc.pub.critical = json_is_true(jc);

    if (co_chat_request_new(&sc.req)) {
        fc->nomem = 1;
        goto done;
    }
    const json_t *msgs = json_object_get(c, "messages"), *prompt = json_object_get(c, "prompt");
    const json_t *vars = json_object_get(c, "vars");
    if (vars && !json_is_object(vars) && !json_is_null(vars))
        ferr(fc, mark_of(fc, vars, at), "case '%s': vars must be a mapping", cid);
    if (msgs && prompt) {
        ferr(fc, key_mark(fc, c, "prompt", at), "case '%s': give messages or prompt, not both", cid);
    } else if (msgs) {
        add_messages(fc, sc.req, msgs, at);
    } else if (prompt) {
        mk pm = mark_of(fc, prompt, key_mark(fc, c, "prompt", at));
        if (!json_is_string(prompt)) {
            ferr(fc, pm, "case '%s': prompt must be a string", cid);
        } else {
            char *missing = NULL;
            char *text = render(json_string_value(prompt), vars, &missing);
            co_chat_message *m = NULL;
            if (!text && missing)
                ferr(fc, pm, "case '%s': prompt uses {{%s}} but vars has no '%s'", cid, missing, missing);
            else if (!text || co_chat_request_add_message(sc.req, CO_CHAT_USER, &m) ||
                     co_chat_message_add_text(m, text, strlen(text)))
                fc->nomem = 1;
            free(missing);
            free(text);
        }
    } else {
        ferr(fc, at, "case '%s' has neither messages nor prompt", cid);
    }
    const json_t *tools = json_object_get(c, "tools");
    if (tools && !json_is_null(tools)) {
        add_tools(fc, sc.req, tools, at);
        sc.tools = json_deep_copy(tools);
    }
    const json_t *ideal = json_object_get(c, "ideal");
    if (ideal)
        sc.ideal = json_deep_copy(ideal);

    if (co_assert_set_new(&sc.set)) {
        fc->nomem = 1;
        goto done;
    }
    const json_t *as = json_object_get(c, "assert");
    mk am = key_mark(fc, c, "assert", at);
    if (as && !json_is_null(as) && !json_is_array(as)) {
        ferr(fc, mark_of(fc, as, am), "case '%s': assert must be a list of assertions", cid);
    } else if (as) {
        co_assert_opts opts = {0};
        if (fc->aopts)
            opts = *fc->aopts;
        opts.tools = json_is_array(sc.tools) ? sc.tools : NULL;
        size_t i;
        const json_t *a;
        json_array_foreach(as, i, a) {
            mk im = mark_of(fc, a, am);
            char *where = mk_where(fc->file, im);
            if (!where) {
                fc->nomem = 1;
                break;
            }
            int rc = co_assert_set_add(sc.set, a, where, &opts);
            if (rc == CO_ENOMEM) {
                fc->nomem = 1;
            } else if (rc) {
                const char *msg = co_error_last();
                size_t wl = strlen(where);
                if (!strncmp(msg, where, wl) && !strncmp(msg + wl, ": ", 2))
                    msg += wl + 2;
                ferr(fc, im, "case '%s': assert[%zu]: %s", cid, i, msg);
            }
            free(where);
        }
    }
done:
    if (fc->errs != errs0 || fc->nomem || !sc.id || !sc.workload) {
        scase_free(&sc);
        return;
    }
    sc.pub.id = sc.id;
    sc.pub.workload = sc.workload;
    sc.pub.tags = (const char *const *)sc.tags;
    sc.pub.request = sc.req;
    sc.pub.asserts = sc.set;
    sc.pub.ideal = sc.ideal;
    sc.pub.tools = sc.tools;
    sc.pub.format = fmt;
    sc.pub.file = fc->file;
    sc.pub.line = at.line;
    sc.pub.col = at.col;
    if (push_case(fc->s, &sc)) {
        scase_free(&sc);
        fc->nomem = 1;
    }
}

/* ---- imports --------------------------------------------------------------------- */

static const char *import_workload(fctx *fc, const json_t *meta, const json_t *meta2, mk at)
{
    const char *w = json_string_value(json_object_get(meta, "workload"));
    if (!w)
        w = json_string_value(json_object_get(meta2, "workload"));
    if (!w)
        w = fc->def_workload;
    if (!w) {
        w = fc->stem;
        if (!fc->stem_warned++)
            fwarn(fc, at, "no workload given (metadata.workload or a top-level workload:): cases are in workload '%s'",
                  w);
    }
    return w;
}

/* OpenAI evals: {"input": "..." | [{role, content}], "ideal": "..." | ["..."]}. */
static void add_openai(fctx *fc, const json_t *j, mk at, size_t n)
{
    json_t *c = keep(fc, json_object());
    if (!c) {
        fc->nomem = 1;
        return;
    }
    char id[64];
    snprintf(id, sizeof id, "%s-%zu", fc->stem, n);
    const json_t *jid = json_object_get(j, "id");
    json_object_set_new(c, "id", jid ? json_incref((json_t *)jid) : json_string(id));
    json_object_set_new(c, "workload", json_string(import_workload(fc, json_object_get(j, "metadata"), j, at)));
    const json_t *in = json_object_get(j, "input");
    if (json_is_string(in)) {
        json_t *msgs = json_pack("[{s:s,s:O}]", "role", "user", "content", in);
        json_object_set_new(c, "messages", msgs);
    } else if (json_is_array(in)) {
        json_object_set(c, "messages", (json_t *)in);
    } else {
        ferr(fc, key_mark(fc, j, "input", at), "input must be a string or a list of {role, content}");
        return;
    }
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)j, k, v) {
        if (strcmp(k, "input") && strcmp(k, "ideal") && strcmp(k, "id") && strcmp(k, "metadata") &&
            strcmp(k, "workload"))
            fwarn(fc, key_mark(fc, j, k, at), "key '%s' is not imported (OpenAI evals: input, ideal)", k);
    }
    const json_t *ideal = json_object_get(j, "ideal");
    mk im = key_mark(fc, j, "ideal", at);
    if (ideal) {
        json_object_set(c, "ideal", (json_t *)ideal);
        json_t *a = NULL;
        if (json_is_string(ideal))
            a = json_pack("{s:s,s:O}", "type", "equals", "value", ideal);
        else if (json_is_array(ideal) && json_array_size(ideal) == 1 && json_is_string(json_array_get(ideal, 0)))
            a = json_pack("{s:s,s:O}", "type", "equals", "value", json_array_get(ideal, 0));
        else if (json_is_array(ideal))
            a = json_pack("{s:s,s:O}", "type", "contains-any", "value", ideal);
        else
            ferr(fc, im, "ideal must be a string or a list of strings");
        if (a) {
            keep(fc, json_incref(a));
            loc_put(&fc->map, a, 0, im);
            json_object_set_new(c, "assert", json_pack("[o]", a));
        }
    } else {
        fwarn(fc, at, "case '%s': no ideal: imported without assertions", json_string_value(json_object_get(c, "id")));
    }
    add_case(fc, c, at, CO_SUITE_OPENAI_EVALS);
}

static int is_supported_type(const char *t)
{
    if (!strncmp(t, "not-", 4))
        t += 4;
    for (const char *const *n = co_assert_type_names(); *n; n++)
        if (!strcmp(*n, t))
            return 1;
    return 0;
}

/* Appends the importable assertions of `list` to `out`, naming the rest. */
static void pf_asserts(fctx *fc, json_t *out, const json_t *list, const json_t *vars, const char *label, mk at)
{
    if (!list || json_is_null(list))
        return;
    if (!json_is_array(list)) {
        ferr(fc, mark_of(fc, list, at), "%s: assert must be a list", label);
        return;
    }
    size_t i;
    const json_t *a;
    json_array_foreach(list, i, a) {
        mk am = mark_of(fc, a, at);
        const char *type = json_string_value(json_object_get(a, "type"));
        if (!json_is_object(a) || !type) {
            json_array_append(out, (json_t *)a); /* the compiler names the problem */
            continue;
        }
        if (!is_supported_type(type)) {
            fwarn(fc, am, "%s: assertion type '%s' is not supported by cutover: not imported", label, type);
            continue;
        }
        const char *k;
        const json_t *v;
        const char *bad = NULL;
        json_object_foreach((json_t *)a, k, v) {
            if (strcmp(k, "type") && strcmp(k, "value") && strcmp(k, "threshold") && strcmp(k, "weight") &&
                strcmp(k, "metric"))
                bad = k;
        }
        if (bad) {
            fwarn(fc, am, "%s: assertion '%s' uses '%s', which cutover does not support: not imported", label, type,
                  bad);
            continue;
        }
        const json_t *val = json_object_get(a, "value");
        if (json_is_string(val) && !strncmp(json_string_value(val), "file://", 7)) {
            fwarn(fc, am, "%s: assertion '%s' reads its value from a file (%s): not imported", label, type,
                  json_string_value(val));
            continue;
        }
        if (json_is_string(val) && strstr(json_string_value(val), "{{")) {
            char *missing = NULL;
            char *text = render(json_string_value(val), vars, &missing);
            if (!text) {
                if (missing)
                    ferr(fc, am, "%s: assertion value uses {{%s}} but vars has no '%s'", label, missing, missing);
                else
                    fc->nomem = 1;
                free(missing);
                continue;
            }
            json_t *copy = keep(fc, json_copy((json_t *)a));
            if (copy) {
                json_object_set_new(copy, "value", json_string(text));
                loc_put(&fc->map, copy, 0, am);
                json_array_append(out, copy);
            }
            free(text);
            continue;
        }
        json_array_append(out, (json_t *)a);
    }
}

static void load_promptfoo(fctx *fc, const json_t *root, mk rm)
{
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)root, k, v) {
        mk km = key_mark(fc, root, k, rm);
        if (!strcmp(k, "prompts") || !strcmp(k, "tests") || !strcmp(k, "defaultTest") || !strcmp(k, "description") ||
            !strcmp(k, "workload"))
            continue;
        if (!strcmp(k, "providers"))
            fwarn(fc, km, "providers are not imported: cutover runs the suite against its own incumbent and candidate");
        else
            fwarn(fc, km, "'%s' is not imported", k);
    }
    const json_t *wl = json_object_get(root, "workload");
    if (json_is_string(wl))
        fc->def_workload = json_string_value(wl);
    /* prompts */
    const json_t *jp = json_object_get(root, "prompts");
    json_t *prompts = keep(fc, json_array());
    if (json_is_string(jp)) {
        json_array_append(prompts, (json_t *)jp);
    } else if (json_is_array(jp)) {
        size_t i;
        const json_t *p;
        json_array_foreach(jp, i, p) {
            mk pm = mark_of(fc, p, rm);
            const json_t *raw = json_object_get(p, "raw");
            if (json_is_object(p) && json_is_string(raw))
                p = raw;
            if (json_is_string(p) && !strncmp(json_string_value(p), "file://", 7))
                fwarn(fc, pm, "prompts[%zu]: prompt files (%s) are not imported", i, json_string_value(p));
            else if (json_is_string(p))
                json_array_append(prompts, (json_t *)p);
            else
                fwarn(fc, pm, "prompts[%zu]: only prompt strings (or {raw: ...}) are imported", i);
        }
    } else if (jp) {
        ferr(fc, mark_of(fc, jp, rm), "prompts must be a string or a list of strings");
    }
    if (!json_array_size(prompts)) {
        ferr(fc, jp ? key_mark(fc, root, "prompts", rm) : rm, "no prompt to import (prompts: a list of strings)");
        return;
    }
    /* defaultTest */
    const json_t *dt = json_object_get(root, "defaultTest");
    mk dm = key_mark(fc, root, "defaultTest", rm);
    if (dt && !json_is_object(dt)) {
        fwarn(fc, dm, "defaultTest: only a mapping is imported (not a file reference)");
        dt = NULL;
    }
    json_object_foreach((json_t *)dt, k, v) {
        if (strcmp(k, "vars") && strcmp(k, "assert") && strcmp(k, "metadata") && strcmp(k, "description"))
            fwarn(fc, key_mark(fc, dt, k, dm), "defaultTest: '%s' is not imported", k);
    }
    const json_t *dvars = json_object_get(dt, "vars");
    if (dvars && !json_is_object(dvars)) {
        ferr(fc, mark_of(fc, dvars, dm), "defaultTest: vars must be a mapping");
        dvars = NULL;
    }
    /* tests */
    const json_t *tests = json_object_get(root, "tests");
    if (json_is_string(tests)) {
        fwarn(fc, mark_of(fc, tests, rm), "tests from files (%s) are not imported", json_string_value(tests));
        return;
    }
    if (tests && !json_is_array(tests)) {
        ferr(fc, mark_of(fc, tests, rm), "tests must be a list");
        return;
    }
    size_t np = json_array_size(prompts);
    size_t ti;
    const json_t *t;
    json_array_foreach(tests, ti, t) {
        mk tm = mark_of(fc, t, rm);
        if (!json_is_object(t)) {
            if (json_is_string(t))
                fwarn(fc, tm, "tests[%zu]: tests from files (%s) are not imported", ti, json_string_value(t));
            else
                ferr(fc, tm, "tests[%zu]: a test is a mapping (vars, assert)", ti);
            continue;
        }
        const json_t *desc = json_object_get(t, "description");
        char label[300];
        if (json_is_string(desc))
            snprintf(label, sizeof label, "%s", json_string_value(desc));
        else
            snprintf(label, sizeof label, "test-%zu", ti + 1);
        json_object_foreach((json_t *)t, k, v) {
            if (strcmp(k, "vars") && strcmp(k, "assert") && strcmp(k, "metadata") && strcmp(k, "description"))
                fwarn(fc, key_mark(fc, t, k, tm), "test '%s': '%s' is not imported", label, k);
        }
        const json_t *tv = json_object_get(t, "vars");
        if (tv && !json_is_object(tv)) {
            ferr(fc, mark_of(fc, tv, tm), "test '%s': vars must be a mapping", label);
            continue;
        }
        json_t *vars = keep(fc, json_object());
        json_object_update(vars, (json_t *)dvars);
        json_object_update(vars, (json_t *)tv);
        int listy = 0;
        json_object_foreach(vars, k, v) {
            if (json_is_string(v) && !strncmp(json_string_value(v), "file://", 7)) {
                fwarn(fc, key_mark(fc, tv && json_object_get(tv, k) ? tv : dvars, k, tm),
                      "test '%s': var '%s' is read from a file (%s): test not imported", label, k,
                      json_string_value(v));
                listy = 1;
            } else if (json_is_array(v)) {
                fwarn(fc, key_mark(fc, tv && json_object_get(tv, k) ? tv : dvars, k, tm),
                      "test '%s': var '%s' is a list (promptfoo expands it into several tests): test not imported",
                      label, k);
                listy = 1;
            }
        }
        if (listy)
            continue;
        for (size_t pi = 0; pi < np; pi++) {
            char tag[340];
            if (np > 1)
                snprintf(tag, sizeof tag, "%s#p%zu", label, pi + 1);
            else
                snprintf(tag, sizeof tag, "%s", label);
            json_t *asserts = keep(fc, json_array());
            pf_asserts(fc, asserts, json_object_get(dt, "assert"), vars, "defaultTest", dm);
            char tlabel[320];
            snprintf(tlabel, sizeof tlabel, "test '%s'", label);
            pf_asserts(fc, asserts, json_object_get(t, "assert"), vars, tlabel, tm);
            const json_t *meta = json_object_get(t, "metadata");
            json_t *c = keep(fc, json_object());
            if (!c || !asserts) {
                fc->nomem = 1;
                return;
            }
            json_object_set_new(c, "id", json_string(tag));
            json_object_set_new(c, "workload",
                                json_string(import_workload(fc, meta, json_object_get(dt, "metadata"), tm)));
            json_object_set(c, "prompt", json_array_get(prompts, pi));
            json_object_set(c, "vars", vars);
            json_object_set(c, "assert", asserts);
            const json_t *tags = json_object_get(meta, "tags");
            if (tags)
                json_object_set(c, "tags", (json_t *)tags);
            const json_t *crit = json_object_get(meta, "critical");
            if (crit)
                json_object_set(c, "critical", (json_t *)crit);
            loc_put(&fc->map, c, key_hash("assert"), key_mark(fc, t, "assert", tm));
            add_case(fc, c, tm, CO_SUITE_PROMPTFOO);
        }
    }
}

/* ---- files --------------------------------------------------------------------- */

static void load_native_list(fctx *fc, const json_t *list, mk at)
{
    if (!json_is_array(list)) {
        ferr(fc, mark_of(fc, list, at), "cases must be a list of cases");
        return;
    }
    size_t i;
    const json_t *c;
    json_array_foreach(list, i, c)
        add_case(fc, c, mark_of(fc, c, at), CO_SUITE_NATIVE);
}

static void load_yaml(fctx *fc, const char *text, size_t len)
{
    co_yaml y;
    size_t before = fc->d->n;
    /* eval sets may be large: allow aliases to expand in proportion to the text */
    int rc = co_yaml_parse(&y, text, len, fc->file, 2 * len + CO_YAML_MAX_EXPANDED, fc->d);
    if (rc == CO_ENOMEM)
        fc->nomem = 1;
    if (rc) {
        fc->errs += (int)(fc->d->n - before);
        goto done;
    }
    struct fy_document *fyd = y.doc;
    struct fy_node *rn = fyd ? fy_document_root(fyd) : NULL;
    mk rm = rn ? node_mark(rn) : (mk){1, 1};
    json_t *root = keep(fc, yaml_json(fc, rn, 0));
    if (json_is_array(root)) {
        load_native_list(fc, root, rm);
    } else if (json_is_object(root) && json_object_get(root, "cases")) {
        const char *k;
        const json_t *v;
        json_object_foreach(root, k, v) {
            if (strcmp(k, "cases") && strcmp(k, "workload") && strcmp(k, "description") && strncmp(k, "x-", 2))
                ferr(fc, key_mark(fc, root, k, rm), "unknown key '%s' (cases, workload, description, x-...)", k);
        }
        const json_t *w = json_object_get(root, "workload");
        if (w && !json_is_string(w))
            ferr(fc, mark_of(fc, w, rm), "workload must be a string");
        fc->def_workload = json_string_value(w);
        load_native_list(fc, json_object_get(root, "cases"), key_mark(fc, root, "cases", rm));
    } else if (json_is_object(root) && (json_object_get(root, "prompts") || json_object_get(root, "tests"))) {
        load_promptfoo(fc, root, rm);
    } else if (!rn) {
        ferr(fc, rm, "the file is empty; an eval set is a list of cases (or a mapping with cases:)");
    } else {
        ferr(fc, rm,
             "an eval set is a list of cases, a mapping with cases:, or a promptfoo config (prompts, tests)");
    }
done:
    co_yaml_close(&y);
}

static void load_jsonl(fctx *fc, const char *text)
{
    size_t n = 0;
    int line = 0;
    if (!strncmp(text, "\xef\xbb\xbf", 3))
        text += 3; /* BOM */
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        const char *s = p;
        p = nl ? nl + 1 : p + len;
        line++;
        size_t k = 0;
        while (k < len && isspace((unsigned char)s[k]))
            k++;
        if (k == len)
            continue;
        mk at = {line, (int)k + 1};
        json_error_t je;
        json_t *j = keep(fc, json_loadb(s, len, 0, &je));
        if (!j) {
            ferr(fc, (mk){line, je.column > 0 ? je.column : 1}, "not a JSON object: %s", je.text);
            continue;
        }
        fc->line = s;
        fc->line_len = len;
        fc->line_no = line;
        n++;
        if (json_is_object(j) && json_object_get(j, "input") && !json_object_get(j, "messages") &&
            !json_object_get(j, "prompt"))
            add_openai(fc, j, at, n);
        else
            add_case(fc, j, at, CO_SUITE_NATIVE);
        fc->line = NULL;
    }
}

static int is_jsonl(const char *text)
{
    const char *p = text;
    if (!strncmp(p, "\xef\xbb\xbf", 3))
        p += 3; /* BOM */
    while (isspace((unsigned char)*p))
        p++;
    if (*p != '{')
        return 0;
    const char *nl = strchr(p, '\n');
    json_t *j = json_loadb(p, nl ? (size_t)(nl - p) : strlen(p), 0, NULL);
    int yes = json_is_object(j) && !json_object_get(j, "cases") && !json_object_get(j, "prompts") &&
              !json_object_get(j, "tests");
    json_decref(j);
    return yes;
}

static int has_ext(const char *name, const char *ext);

static int load_file(co_suite *s, const char *path, const co_assert_opts *aopts, co_diags *d)
{
    int rc = 0;
    char *text = NULL;
    size_t len = 0;
    fctx fc;
    memset(&fc, 0, sizeof fc);
    char **nf = realloc(s->files, (s->n_files + 1) * sizeof *nf);
    if (!nf)
        return co_error_set(CO_ENOMEM, "out of memory");
    s->files = nf;
    if (!(nf[s->n_files] = strdup(path)))
        return co_error_set(CO_ENOMEM, "out of memory");
    fc.file = nf[s->n_files++];
    fc.s = s;
    fc.d = d;
    fc.aopts = aopts;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    fc.stem = strndup(base, dot && dot != base ? (size_t)(dot - base) : strlen(base));
    fc.keep = json_array();
    if (!fc.stem || !fc.keep) {
        rc = co_error_set(CO_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = co_read_file(path, SUITE_MAX_FILE, &text, &len))) {
        const char *msg = co_error_last();
        size_t pl = strlen(path);
        if (!strncmp(msg, path, pl) && !strncmp(msg + pl, ": ", 2))
            msg += pl + 2;
        co_diags_add(d, path, 0, 0, "%s", msg);
        rc = rc == CO_ENOMEM ? rc : CO_ECONFIG;
        goto done;
    }
    size_t bad = co_utf8_bad_offset((const unsigned char *)text, len);
    if (bad < len) {
        mk m = {1, 1};
        for (size_t i = 0; i < bad; i++) {
            if (text[i] == '\n')
                m.line++, m.col = 1;
            else
                m.col++;
        }
        if (text[bad] == 0)
            ferr(&fc, m, "the file contains a NUL byte; an eval set is UTF-8 text");
        else
            ferr(&fc, m, "byte 0x%02x is not valid UTF-8; save the file as UTF-8 text", (unsigned char)text[bad]);
    } else if (has_ext(path, ".jsonl") || is_jsonl(text)) {
        load_jsonl(&fc, text);
    } else {
        load_yaml(&fc, text, len);
    }
    if (fc.nomem)
        rc = co_error_set(CO_ENOMEM, "out of memory");
    else if (fc.errs)
        rc = CO_ECONFIG;
done:
    free(text);
    free(fc.stem);
    free(fc.map.v);
    json_decref(fc.keep);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int has_ext(const char *name, const char *ext)
{
    size_t n = strlen(name), e = strlen(ext);
    return n > e && !strcmp(name + n - e, ext);
}

static int load_dir(co_suite *s, const char *path, const co_assert_opts *aopts, co_diags *d)
{
    DIR *dir = opendir(path);
    if (!dir) {
        co_diags_add(d, path, 0, 0, "cannot open the directory: %s", strerror(errno));
        return CO_ECONFIG;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.' ||
            !(has_ext(e->d_name, ".yaml") || has_ext(e->d_name, ".yml") || has_ext(e->d_name, ".jsonl")))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nv = realloc(names, cap * sizeof *nv);
            if (!nv) {
                rc = co_error_set(CO_ENOMEM, "out of memory");
                goto done;
            }
            names = nv;
        }
        co_buf b;
        co_buf_init(&b, CO_BUF_UNLIMITED);
        co_buf_printf(&b, "%s%s%s", path, has_ext(path, "/") ? "" : "/", e->d_name);
        if (!b.p) {
            rc = co_error_set(CO_ENOMEM, "out of memory");
            goto done;
        }
        names[n++] = co_buf_detach(&b);
    }
    if (!n) {
        co_diags_add(d, path, 0, 0, "no eval files (*.yaml, *.yml, *.jsonl) in this directory");
        rc = CO_ECONFIG;
        goto done;
    }
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        int r = load_file(s, names[i], aopts, d);
        if (r == CO_ENOMEM) {
            rc = r;
            goto done;
        }
        if (r && !rc)
            rc = r;
    }
done:
    closedir(dir);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

/* ---- duplicate ids ----------------------------------------------------------------- */

typedef struct id_ix {
    const char *id;
    size_t i;
} id_ix;

static int cmp_id_ix(const void *a, const void *b)
{
    const id_ix *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c ? c : (x->i > y->i) - (x->i < y->i);
}

static int check_dups(co_suite *s, co_diags *d)
{
    if (s->n < 2)
        return 0;
    id_ix *ix = malloc(s->n * sizeof *ix);
    if (!ix)
        return co_error_set(CO_ENOMEM, "out of memory");
    for (size_t i = 0; i < s->n; i++)
        ix[i] = (id_ix){s->v[i].id, i};
    qsort(ix, s->n, sizeof *ix, cmp_id_ix);
    int rc = 0;
    size_t first = 0;
    for (size_t i = 1; i < s->n; i++) {
        const co_suite_case *a = &s->v[ix[first].i].pub, *b = &s->v[ix[i].i].pub;
        if (strcmp(a->id, b->id)) {
            first = i;
            continue;
        }
        co_diags_add(d, b->file, b->line, b->col, "duplicate case id '%s' (first at %s:%d:%d)", b->id, a->file,
                     a->line, a->col);
        rc = CO_ECONFIG;
    }
    free(ix);
    return rc;
}

/* ---- entry point ---------------------------------------------------------------- */

int co_suite_load(co_suite **out, const char *path, const co_assert_opts *aopts, co_diags *diags)
{
    *out = NULL;
    if (!path || !diags)
        return co_error_set(CO_EINVAL, "co_suite_load: path and diags are required");
    co_suite *s = calloc(1, sizeof *s);
    if (!s)
        return co_error_set(CO_ENOMEM, "out of memory");
    int rc;
    struct stat st;
    if (stat(path, &st)) {
        int e = errno;
        co_diags_add(diags, path, 0, 0, "%s", strerror(e));
        rc = co_error_set(e == ENOENT ? CO_ENOENT : CO_EIO, "%s: %s", path, strerror(e));
    } else if (S_ISDIR(st.st_mode)) {
        rc = load_dir(s, path, aopts, diags);
    } else {
        rc = load_file(s, path, aopts, diags);
    }
    if (rc != CO_ENOMEM && rc != CO_ENOENT && rc != CO_EIO) {
        int r = check_dups(s, diags);
        if (r && (!rc || r == CO_ENOMEM))
            rc = r;
        if (!rc && !s->n) {
            co_diags_add(diags, path, 0, 0, "the eval set has no cases");
            rc = CO_ECONFIG;
        }
    }
    if (rc) {
        if (rc == CO_ECONFIG)
            co_error_set(CO_ECONFIG, "%s: the eval set has errors", path);
        co_suite_free(s);
        return rc;
    }
    *out = s;
    return 0;
}
