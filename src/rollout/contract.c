/* A workload's output contract, compiled once and checked on recorded
 * outputs (include/cutover/rollout.h): the quality trigger counts how many
 * candidate outputs fail it against how many incumbent ones do. The regex is
 * POSIX extended, as the config validates it; assertions are the eval
 * engine's (assert.h), so a contract means the same thing online and in an
 * eval. */
#include <jansson.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "cutover/assert.h"
#include "cutover/error.h"
#include "cutover/jsonschema.h"
#include "cutover/rollout.h"

struct co_contract {
    int format;              /* enum co_contract_format */
    int has_regex;
    regex_t re;
    char *regex;
    co_jsonschema *schema;
    int64_t max_chars;
    co_assert_set *asserts;
};

void co_contract_free(co_contract *c)
{
    if (!c)
        return;
    if (c->has_regex)
        regfree(&c->re);
    free(c->regex);
    co_jsonschema_free(c->schema);
    co_assert_set_free(c->asserts);
    free(c);
}

int co_contract_new(co_contract **out, const co_contract_conf *cc, const char *where)
{
    *out = NULL;
    const json_t *asserts = cc->assertions;
    int empty = cc->format == CO_FORMAT_ANY && !(cc->regex && cc->regex[0]) && !cc->json_schema &&
                cc->max_chars <= 0 && !(asserts && json_array_size(asserts));
    if (empty)
        return 0;
    if (!where)
        where = "contract";
    co_contract *c = calloc(1, sizeof *c);
    if (!c)
        return co_error_set(CO_ENOMEM, "out of memory");
    int rc = 0;
    c->format = cc->format;
    c->max_chars = cc->max_chars;
    if (cc->regex && cc->regex[0]) {
        int e = regcomp(&c->re, cc->regex, REG_EXTENDED | REG_NOSUB);
        if (e) {
            char msg[200];
            regerror(e, &c->re, msg, sizeof msg);
            rc = co_error_set(CO_EINVAL, "%s: regex '%s' does not compile: %s", where, cc->regex, msg);
            goto done;
        }
        c->has_regex = 1;
        c->regex = strdup(cc->regex);
        if (!c->regex) {
            rc = co_error_set(CO_ENOMEM, "out of memory");
            goto done;
        }
    }
    if (cc->json_schema && (rc = co_jsonschema_compile(&c->schema, cc->json_schema, where)) < 0)
        goto done;
    if (asserts && json_array_size(asserts)) {
        char w[256];
        snprintf(w, sizeof w, "%s: assert", where);
        if ((rc = co_assert_set_new(&c->asserts)) < 0 || (rc = co_assert_set_add_list(c->asserts, asserts, w, NULL)) < 0)
            goto done;
    }
    *out = c;
    c = NULL;
done:
    co_contract_free(c);
    return rc;
}

static size_t code_points(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        n += (*p & 0xC0) != 0x80;
    return n;
}

int co_contract_check(const co_contract *c, const char *output, double latency_ms, double cost_usd, int *pass,
                      co_buf *why)
{
    *pass = 1;
    if (!c)
        return 0;
    if (!output)
        output = "";
    size_t len = strlen(output);
    int rc = 0;
    json_t *doc = NULL;
    json_error_t jerr;
    int need_json = c->format == CO_FORMAT_JSON || c->format == CO_FORMAT_TEXT || c->schema;
    if (need_json)
        doc = json_loadb(output, len, JSON_DECODE_ANY, &jerr);
    if (c->format == CO_FORMAT_JSON && !doc) {
        *pass = 0;
        if (why)
            co_buf_printf(why, "not JSON: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
        goto done;
    }
    if (c->format == CO_FORMAT_TEXT && doc && (json_is_object(doc) || json_is_array(doc))) {
        *pass = 0;
        if (why)
            co_buf_printf(why, "JSON %s where text is expected", json_is_object(doc) ? "object" : "array");
        goto done;
    }
    if (c->schema) {
        if (!doc) {
            *pass = 0;
            if (why)
                co_buf_printf(why, "not JSON, so the schema cannot hold: %s", jerr.text);
            goto done;
        }
        int valid = 0;
        co_jsonschema_errors errs = {0};
        if ((rc = co_jsonschema_validate(c->schema, doc, &valid, why ? &errs : NULL)) < 0)
            goto done;
        if (!valid) {
            *pass = 0;
            if (why) {
                co_buf_puts(why, "schema: ");
                co_jsonschema_errors_format(&errs, why);
            }
            co_jsonschema_errors_free(&errs);
            goto done;
        }
        co_jsonschema_errors_free(&errs);
    }
    if (c->max_chars > 0) {
        size_t n = code_points(output);
        if (n > (size_t)c->max_chars) {
            *pass = 0;
            if (why)
                co_buf_printf(why, "%zu characters, over max_chars %lld", n, (long long)c->max_chars);
            goto done;
        }
    }
    if (c->has_regex && regexec(&c->re, output, 0, NULL, 0) != 0) {
        *pass = 0;
        if (why)
            co_buf_printf(why, "regex '%s' does not match", c->regex);
        goto done;
    }
    if (c->asserts) {
        co_assert_input in = {.output = output, .output_len = len, .has_latency = 1, .latency_ms = latency_ms,
                              .has_cost = 1, .cost_usd = cost_usd};
        co_assert_case_result r = {0};
        rc = co_assert_set_eval(c->asserts, &in, &r);
        if (rc == 0 && !r.pass) {
            *pass = 0;
            for (size_t i = 0; why && i < r.n; i++)
                if (!r.v[i].pass) {
                    co_buf_printf(why, "%s: %s", co_assertion_type(co_assert_set_get(c->asserts, i)),
                                  r.v[i].reason ? r.v[i].reason : "failed");
                    break;
                }
        }
        co_assert_case_result_free(&r);
    }
done:
    json_decref(doc);
    return rc;
}
