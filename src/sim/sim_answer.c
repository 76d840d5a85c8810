/* The sim's answer generator: what a simulated model says (echo, template,
 * canned eval answers, JSON), its style (markdown, verbosity, refusals), tool
 * calls built from the offered tool's schema, token counts, and the
 * deterministic RNG every decision draws from. Also the small JSON writer
 * the protocol renderers share. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "cutover/util.h"
#include "sim/sim_int.h"

/* ---- output helpers ------------------------------------------------------ */

void co__sim_putn(co__sim_out *o, const char *s, size_t n)
{
    if (o->err)
        return;
    int rc = co_buf_append(o->b, s, n);
    if (rc)
        o->err = rc;
}

void co__sim_put(co__sim_out *o, const char *s) { co__sim_putn(o, s, strlen(s)); }

void co__sim_putll(co__sim_out *o, long long v)
{
    char d[24];
    size_t k = sizeof d;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        d[--k] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        d[--k] = '-';
    co__sim_putn(o, d + k, sizeof d - k);
}

void co__sim_printf(co__sim_out *o, const char *fmt, ...)
{
    if (o->err)
        return;
    va_list ap;
    va_start(ap, fmt);
    int rc = co_buf_vprintf(o->b, fmt, ap);
    va_end(ap);
    if (rc)
        o->err = rc;
}

void co__sim_jstr(co__sim_out *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    co__sim_putn(o, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        i = co_json_plain_end((const unsigned char *)s, i, n); /* plain ASCII runs, 16 bytes a step */
        if (i >= n)
            break;
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue; /* non-ASCII: kept as it is */
        co__sim_putn(o, s + run, i - run);
        run = i + 1;
        switch (ch) {
        case '"': co__sim_putn(o, "\\\"", 2); break;
        case '\\': co__sim_putn(o, "\\\\", 2); break;
        case '\n': co__sim_putn(o, "\\n", 2); break;
        case '\r': co__sim_putn(o, "\\r", 2); break;
        case '\t': co__sim_putn(o, "\\t", 2); break;
        case '\b': co__sim_putn(o, "\\b", 2); break;
        case '\f': co__sim_putn(o, "\\f", 2); break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
            co__sim_putn(o, u, 6);
        }
        }
    }
    co__sim_putn(o, s + run, n - run);
    co__sim_putn(o, "\"", 1);
}

void co__sim_jval(co__sim_out *o, const json_t *v)
{
    if (!v) {
        co__sim_put(o, "null");
        return;
    }
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s) {
        o->err = CO_ENOMEM;
        return;
    }
    co__sim_put(o, s);
    free(s);
}

size_t co__sim_content_text(const json_t *content, co_buf *out)
{
    size_t before = out->len;
    if (json_is_string(content)) {
        co_buf_append(out, json_string_value(content), json_string_length(content));
        return out->len - before;
    }
    if (!json_is_array(content))
        return 0;
    size_t i;
    const json_t *part;
    json_array_foreach(content, i, part) {
        const json_t *t = json_object_get(part, "text");
        if (!json_is_string(t))
            continue;
        if (out->len > before)
            co_buf_append(out, "\n", 1);
        co_buf_append(out, json_string_value(t), json_string_length(t));
    }
    return out->len - before;
}

/* ---- RNG and hashing ----------------------------------------------------- */

void co__sim_rng_init(co__sim_rng *g, uint64_t seed, const char *model, uint64_t counter)
{
    uint64_t h = XXH64(model, strlen(model), seed);
    g->s = XXH64(&counter, sizeof counter, h);
}

uint64_t co__sim_rng_next(co__sim_rng *g)
{
    uint64_t z = (g->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

double co__sim_rng_unit(co__sim_rng *g) { return (double)(co__sim_rng_next(g) >> 11) * 0x1.0p-53; }

double co__sim_hash_unit(uint64_t seed, const char *a, const char *b, size_t blen)
{
    uint64_t h = XXH64(a, strlen(a), seed);
    h = XXH64(b, blen, h);
    return (double)(h >> 11) * 0x1.0p-53;
}

int64_t co__sim_tokens_of(size_t chars, double chars_per_token)
{
    if (chars == 0)
        return 0;
    if (chars_per_token <= 0)
        chars_per_token = 4;
    return (int64_t)ceil((double)chars / chars_per_token);
}

/* ---- text pieces --------------------------------------------------------- */

size_t co__sim_utf8_floor(const char *s, size_t n)
{
    /* step back over continuation bytes so the cut lands on a lead byte */
    size_t i = n;
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80)
        i--;
    return i;
}

static size_t utf8_ceil(const char *s, size_t len, size_t i)
{
    while (i < len && ((unsigned char)s[i] & 0xC0) == 0x80)
        i++;
    return i;
}

size_t co__sim_next_piece(const char *s, size_t len, size_t off, double chars_per_token)
{
    /* roughly one token: leading spaces plus a word, like BPE tokens */
    size_t cap = (size_t)(chars_per_token * 2);
    if (cap < 4)
        cap = 4;
    size_t i = off;
    while (i < len && isspace((unsigned char)s[i]) && i - off < cap)
        i++;
    while (i < len && !isspace((unsigned char)s[i]) && i - off < cap)
        i++;
    if (i == off)
        i = off + 1;
    i = utf8_ceil(s, len, i);
    return i - off;
}

size_t co__sim_next_json_piece(const char *s, size_t len, size_t off)
{
    size_t i = off + 12 < len ? off + 12 : len;
    i = utf8_ceil(s, len, i);
    return i - off;
}

/* ---- templates ----------------------------------------------------------- */

static const char *const tmpl_vars[] = {"model", "last_user", "system", "protocol", "turns",
                                        "tool_result", NULL};

/* Finds the next {{ name }}; returns its start or NULL, with the name span. */
static const char *next_var(const char *p, const char **name, size_t *nlen, const char **end)
{
    for (;;) {
        const char *open = strstr(p, "{{");
        if (!open)
            return NULL;
        const char *close = strstr(open + 2, "}}");
        if (!close)
            return NULL;
        const char *a = open + 2, *b = close;
        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        *name = a;
        *nlen = (size_t)(b - a);
        *end = close + 2;
        return open;
    }
}

static int var_index(const char *name, size_t n)
{
    for (int i = 0; tmpl_vars[i]; i++)
        if (strlen(tmpl_vars[i]) == n && memcmp(tmpl_vars[i], name, n) == 0)
            return i;
    return -1;
}

int co__sim_template_check(const char *tmpl, char *bad, size_t badn)
{
    const char *p = tmpl, *name, *end;
    size_t n;
    while (next_var(p, &name, &n, &end)) {
        if (var_index(name, n) < 0) {
            snprintf(bad, badn, "%.*s", (int)n, name);
            return -1;
        }
        p = end;
    }
    return 0;
}

static const char *proto_name(int proto)
{
    return proto == CO__SIM_OPENAI ? "openai" : proto == CO__SIM_ANTHROPIC ? "anthropic" : "gemini";
}

static void expand(co__sim_out *o, const char *tmpl, const co__sim_req *req)
{
    const char *p = tmpl, *name, *end, *at;
    size_t n;
    while ((at = next_var(p, &name, &n, &end))) {
        co__sim_putn(o, p, (size_t)(at - p));
        switch (var_index(name, n)) {
        case 0: co__sim_put(o, req->model); break;
        case 1: co__sim_putn(o, req->last_user->p ? req->last_user->p : "", req->last_user->len); break;
        case 2: co__sim_putn(o, req->system->p ? req->system->p : "", req->system->len); break;
        case 3: co__sim_put(o, proto_name(req->proto)); break;
        case 4: co__sim_printf(o, "%d", req->n_messages); break;
        case 5: co__sim_putn(o, req->tool_result->p ? req->tool_result->p : "", req->tool_result->len); break;
        default: co__sim_putn(o, at, (size_t)(end - at)); break;
        }
        p = end;
    }
    co__sim_put(o, p);
}

/* ---- styles -------------------------------------------------------------- */

static const char *const fillers[] = {
    "To put it another way, the point above is the heart of the matter.",
    "It is worth noting that details can vary with the specific circumstances.",
    "In practice, this is what most people find works well.",
    "I hope this helps; let me know if you would like more detail.",
    NULL,
};

/* Longer or shorter than the base answer, by whole words. */
static void apply_verbosity(co_buf *text, co_buf *tmp, double v)
{
    if (v == 1.0 || text->len == 0)
        return;
    if (v > 1.0) {
        size_t target = (size_t)((double)text->len * v);
        for (int i = 0; text->len < target; i = fillers[i + 1] ? i + 1 : 0) {
            if (co_buf_append(text, " ", 1) || co_buf_puts(text, fillers[i]))
                break;
        }
        return;
    }
    size_t words = 0;
    for (size_t i = 0; i < text->len; i++)
        if (!isspace((unsigned char)text->p[i]) &&
            (i == 0 || isspace((unsigned char)text->p[i - 1])))
            words++;
    size_t keep = (size_t)ceil((double)words * v);
    if (keep < 1)
        keep = 1;
    size_t seen = 0;
    for (size_t i = 0; i < text->len; i++) {
        if (!isspace((unsigned char)text->p[i]) && (i == 0 || isspace((unsigned char)text->p[i - 1]))) {
            if (seen == keep) {
                size_t cut = i;
                while (cut > 0 && isspace((unsigned char)text->p[cut - 1]))
                    cut--;
                text->len = cut;
                text->p[cut] = '\0';
                break;
            }
            seen++;
        }
    }
    (void)tmp;
}

/* A heading and one bullet per sentence: the format drift a chattier model shows. */
static void apply_markdown(co_buf *text, co_buf *tmp)
{
    co__sim_out o = {tmp, 0};
    co_buf_reset(tmp);
    co__sim_put(&o, "## Answer\n\n");
    const char *s = text->p ? text->p : "";
    size_t n = text->len, start = 0;
    for (size_t i = 0; i <= n; i++) {
        int end = i == n || s[i] == '\n' ||
                  ((s[i] == '.' || s[i] == '!' || s[i] == '?') && (i + 1 == n || isspace((unsigned char)s[i + 1])));
        if (!end)
            continue;
        size_t a = start, b = i < n && s[i] != '\n' ? i + 1 : i;
        while (a < b && isspace((unsigned char)s[a]))
            a++;
        while (b > a && isspace((unsigned char)s[b - 1]))
            b--;
        if (b > a) {
            co__sim_put(&o, tmp->len > 11 ? "\n- " : "- ");
            co__sim_putn(&o, s + a, b - a);
        }
        start = i + 1;
    }
    if (!o.err) {
        co_buf t = *text;
        *text = *tmp;
        *tmp = t;
    }
}

static void fence_json(co_buf *text, co_buf *tmp)
{
    co__sim_out o = {tmp, 0};
    co_buf_reset(tmp);
    co__sim_put(&o, "```json\n");
    co__sim_putn(&o, text->p ? text->p : "", text->len);
    co__sim_put(&o, "\n```");
    if (!o.err) {
        co_buf t = *text;
        *text = *tmp;
        *tmp = t;
    }
}

/* ---- tool arguments ------------------------------------------------------ */

static json_t *gen_value(const json_t *schema, const char *hint, int depth)
{
    if (depth > 8)
        return json_null();
    const json_t *en = json_object_get(schema, "enum");
    if (json_is_array(en) && json_array_size(en) > 0)
        return json_deep_copy(json_array_get(en, 0));
    const char *type = json_string_value(json_object_get(schema, "type"));
    if (!type) {
        /* {"type": ["string","null"]}: take the first */
        const json_t *tv = json_object_get(schema, "type");
        if (json_is_array(tv))
            type = json_string_value(json_array_get(tv, 0));
    }
    if (!type)
        type = json_object_get(schema, "properties") ? "object" : "string";
    if (!strcasecmp(type, "object")) {
        json_t *obj = json_object();
        const json_t *props = json_object_get(schema, "properties");
        const json_t *req = json_object_get(schema, "required");
        const char *k;
        const json_t *sub;
        json_object_foreach((json_t *)props, k, sub) {
            if (json_is_array(req) && json_array_size(req) > 0) {
                int needed = 0;
                size_t i;
                const json_t *r;
                json_array_foreach(req, i, r)
                    if (json_is_string(r) && !strcmp(json_string_value(r), k))
                        needed = 1;
                if (!needed)
                    continue;
            }
            json_object_set_new(obj, k, gen_value(sub, hint, depth + 1));
        }
        return obj;
    }
    if (!strcasecmp(type, "array")) {
        json_t *arr = json_array();
        json_array_append_new(arr, gen_value(json_object_get(schema, "items"), hint, depth + 1));
        return arr;
    }
    if (!strcasecmp(type, "integer"))
        return json_integer(1);
    if (!strcasecmp(type, "number"))
        return json_real(1.0);
    if (!strcasecmp(type, "boolean"))
        return json_true();
    if (!strcasecmp(type, "null"))
        return json_null();
    /* a string: the user's words, so the call visibly reflects the request */
    size_t n = strlen(hint);
    if (n > 64)
        n = co__sim_utf8_floor(hint, 64);
    return json_stringn(n ? hint : "sim", n ? n : 3);
}

static int tool_args(co_buf *out, const co__sim_model *m, const co__sim_req *req)
{
    char *s;
    if (m->tool_args) {
        s = json_dumps(m->tool_args, JSON_COMPACT | JSON_ENCODE_ANY);
    } else {
        json_t *v = gen_value(req->tool_schema, req->last_user->p ? req->last_user->p : "", 0);
        if (!json_is_object(v)) {
            json_decref(v);
            v = json_object();
        }
        s = json_dumps(v, JSON_COMPACT);
        json_decref(v);
    }
    if (!s)
        return CO_ENOMEM;
    int rc = co_buf_puts(out, s);
    free(s);
    return rc;
}

/* ---- the answer ---------------------------------------------------------- */

static const co__sim_case *find_case(const co__sim_model *m, const co_buf *user)
{
    if (!m->cases || !user->p)
        return NULL;
    const char *s = user->p;
    size_t n = user->len;
    while (n && isspace((unsigned char)*s))
        s++, n--;
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    return co__sim_caseset_find(m->cases, s, n);
}

static double case_accuracy(const co__sim_model *m, const co__sim_knobs *k, const co__sim_case *cs)
{
    if (k->use_tag_accuracy) {
        const co__sim_tag_acc *ta = m->canned.tag_accuracy.v;
        for (size_t t = 0; t < cs->n_tags; t++)
            for (size_t i = 0; i < m->canned.tag_accuracy.n; i++)
                if (!strcmp(ta[i].name, cs->tags[t]))
                    return ta[i].accuracy;
    }
    return k->accuracy;
}

int co__sim_answer_make(co__sim_core *c, const co__sim_model *m, const co__sim_knobs *k,
                        const co__sim_req *req, co__sim_rng *g, co__sim_answer *a)
{
    uint64_t seed = c->sh->seed;
    co_buf *text = &c->text;
    co_buf_reset(text);
    a->text = text;
    a->tool = 0;
    a->tool_name = NULL;
    a->finish = CO__SIM_STOP;
    a->model = req->model;
    uint64_t r1 = co__sim_rng_next(g), r2 = co__sim_rng_next(g);
    co_hex_u64(a->id, r1, 16);
    co_hex_u64(a->id + 16, r2 >> 32, 8);
    a->id[24] = '\0';
    co_hex_u64(a->tool_id, r2 & 0xffffffffu, 8);
    co_hex_u64(a->tool_id + 8, r1 ^ r2, 16);
    a->tool_id[24] = '\0';
    double cpt = m->tokens.chars_per_token;
    a->chars_per_token = cpt;
    a->prompt_tokens = co__sim_tokens_of(req->prompt_chars, cpt);
    if (a->prompt_tokens < 1)
        a->prompt_tokens = 1;
    a->cached_tokens = (int64_t)floor((double)a->prompt_tokens * m->tokens.cached_fraction);
    int rc = 0;

    int call = req->tool_name && !req->after_tool && req->tool_choice != 1 &&
               (m->tools == CO__SIM_TOOLS_AUTO || req->tool_choice == 2);
    if (call) {
        a->tool = 1;
        a->tool_name = req->tool_name;
        a->finish = CO__SIM_TOOL;
        rc = tool_args(text, m, req);
        a->completion_tokens = co__sim_tokens_of(strlen(req->tool_name) + text->len, cpt);
        return rc;
    }

    const char *user = req->last_user->p ? req->last_user->p : "";
    int refused = k->refusal_rate > 0 &&
                  co__sim_hash_unit(seed ^ 0x5eed, req->model, user, req->last_user->len) < k->refusal_rate;
    co__sim_out o = {text, 0};
    if (refused) {
        co__sim_put(&o, m->refusal ? m->refusal : "I'm sorry, but I can't help with that.");
    } else {
        int mode = m->answer;
        const co__sim_case *cs = NULL;
        if (mode == CO__SIM_A_CANNED) {
            cs = find_case(m, req->last_user);
            if (cs && cs->answer) {
                double u = co__sim_hash_unit(seed, req->model, cs->id, strlen(cs->id));
                co__sim_put(&o, u < case_accuracy(m, k, cs) ? cs->answer
                                                        : (m->canned.wrong ? m->canned.wrong : ""));
            } else {
                /* the set knows no answer for this prompt: behave like the plain model */
                mode = m->template ? CO__SIM_A_TEMPLATE : CO__SIM_A_ECHO;
            }
        }
        if (mode == CO__SIM_A_TEMPLATE && m->template)
            expand(&o, m->template, req);
        else if (mode == CO__SIM_A_ECHO || (mode == CO__SIM_A_TEMPLATE && !m->template))
            co__sim_putn(&o, user, req->last_user->len);
        else if (mode == CO__SIM_A_JSON)
            co__sim_put(&o, m->json_text ? m->json_text : "{}");
        if (!o.err && text->len == 0)
            co__sim_put(&o, "OK.");
        if (o.err)
            return o.err;
        if (mode == CO__SIM_A_JSON) {
            if (k->markdown)
                fence_json(text, &c->tmp);
        } else {
            apply_verbosity(text, &c->tmp, k->verbosity);
            if (k->markdown)
                apply_markdown(text, &c->tmp);
        }
    }
    if (o.err)
        return o.err;
    a->completion_tokens = co__sim_tokens_of(text->len, cpt);
    if (req->max_tokens > 0 && a->completion_tokens > req->max_tokens) {
        size_t keep = (size_t)((double)req->max_tokens * cpt);
        if (keep < text->len) {
            keep = co__sim_utf8_floor(text->p, keep);
            text->len = keep;
            text->p[keep] = '\0';
        }
        a->completion_tokens = req->max_tokens;
        a->finish = CO__SIM_LENGTH;
    }
    return rc;
}
