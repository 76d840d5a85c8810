/* Fixture for the sim unit tests: a scenario from YAML text, one core (the
 * transport-free request handler) and helpers to call it and read the reply
 * back as JSON or SSE. No sockets: what the server would send is exactly
 * reply.status, its headers and reply.body. */
#ifndef CO_SIM_FIXTURE_H
#define CO_SIM_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "co_test.h"
#include "cutover/sim.h"
#include "sim/sim_int.h"

typedef struct fx {
    char *dir;
    co_sim_scenario *sc;
    co__sim_shared sh;
    co__sim_core core;
    co__sim_reply r;
    int ready;
} fx;

static inline void fx_diags_dump(const co_diags *d)
{
    co_diags_print(d, stderr);
}

/* Loads the scenario text (NULL: the built-in default) and a core. */
static inline fx *fx_new(const char *yaml)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = co_test_tmpdir();
    assert_non_null(f->dir);
    co_diags d = {0};
    char *path = NULL;
    if (yaml) {
        path = co_test_write(f->dir, "scenario.yaml", yaml);
        assert_non_null(path);
    }
    int rc = co_sim_scenario_load(&f->sc, path, &d);
    if (rc)
        fx_diags_dump(&d);
    assert_int_equal(rc, 0);
    co_diags_free(&d);
    free(path);
    assert_int_equal(co__sim_shared_init(&f->sh, f->sc, (uint64_t)f->sc->seed, 1, 1), 0);
    assert_int_equal(co__sim_core_init(&f->core, &f->sh), 0);
    co__sim_reply_init(&f->r);
    f->ready = 1;
    return f;
}

static inline void fx_free(fx *f)
{
    if (!f)
        return;
    co__sim_reply_free(&f->r);
    co__sim_core_destroy(&f->core);
    co__sim_shared_destroy(&f->sh);
    co_sim_scenario_free(f->sc);
    co_test_rmtree(f->dir);
    free(f->dir);
    free(f);
}

/* One request; headers are "Name: value" strings ending with NULL. */
static inline co__sim_reply *fx_callv(fx *f, const char *method, const char *uri, const char *const *headers,
                                      const char *body, size_t body_len)
{
    co__sim_http in;
    memset(&in, 0, sizeof in);
    static char hbuf[CO__SIM_MAX_HEADERS][512];
    in.method = method;
    in.uri = uri;
    for (size_t i = 0; headers && headers[i] && i < CO__SIM_MAX_HEADERS; i++) {
        snprintf(hbuf[i], sizeof hbuf[i], "%s", headers[i]);
        char *colon = strchr(hbuf[i], ':');
        assert_non_null(colon);
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ')
            v++;
        in.hname[in.nh] = hbuf[i];
        in.hval[in.nh] = v;
        in.nh++;
    }
    in.body = body ? body : "";
    in.body_len = body ? body_len : 0;
    co__sim_handle(&f->core, &in, &f->r);
    return &f->r;
}

static inline co__sim_reply *fx_call(fx *f, const char *method, const char *uri, const char *const *headers,
                                     const char *body)
{
    return fx_callv(f, method, uri, headers, body, body ? strlen(body) : 0);
}

static const char *const OPENAI_H[] = {"Authorization: Bearer sk-test", "Content-Type: application/json", NULL};
static const char *const ANTHROPIC_H[] = {"x-api-key: sk-ant-test", "anthropic-version: 2023-06-01",
                                          "content-type: application/json", NULL};
static const char *const GEMINI_H[] = {"x-goog-api-key: AIza-test", "Content-Type: application/json", NULL};

static inline co__sim_reply *fx_openai(fx *f, const char *body)
{
    return fx_call(f, "POST", "/v1/chat/completions", OPENAI_H, body);
}

static inline co__sim_reply *fx_anthropic(fx *f, const char *body)
{
    return fx_call(f, "POST", "/v1/messages", ANTHROPIC_H, body);
}

static inline co__sim_reply *fx_gemini(fx *f, const char *model, const char *method, const char *body)
{
    char uri[256];
    snprintf(uri, sizeof uri, "/v1beta/models/%s:%s", model, method);
    return fx_call(f, "POST", uri, GEMINI_H, body);
}

/* The reply body as JSON (asserts it parses); the caller decrefs. */
static inline json_t *fx_json(const co__sim_reply *r)
{
    json_error_t e;
    json_t *j = json_loadb(r->body.p ? r->body.p : "", r->body.len, 0, &e);
    if (!j)
        fprintf(stderr, "not JSON (%s): %.*s\n", e.text, (int)r->body.len, r->body.p ? r->body.p : "");
    assert_non_null(j);
    return j;
}

/* Value at a path like "choices.0.message.content" (numbers index arrays). */
static inline json_t *jpath(json_t *j, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ".", &save); tok && j; tok = strtok_r(NULL, ".", &save)) {
        if (json_is_array(j)) {
            char *end;
            long i = strtol(tok, &end, 10);
            j = *end ? NULL : json_array_get(j, (size_t)i);
        } else {
            j = json_object_get(j, tok);
        }
    }
    return j;
}

static inline const char *jstr(json_t *j, const char *path)
{
    json_t *v = jpath(j, path);
    if (!json_is_string(v)) {
        char *s = json_dumps(j, JSON_COMPACT);
        fprintf(stderr, "no string at %s in %s\n", path, s ? s : "?");
        free(s);
    }
    assert_true(json_is_string(v));
    return json_string_value(v);
}

static inline long long jint(json_t *j, const char *path)
{
    json_t *v = jpath(j, path);
    if (!json_is_integer(v)) {
        char *s = json_dumps(j, JSON_COMPACT);
        fprintf(stderr, "no integer at %s in %s\n", path, s ? s : "?");
        free(s);
    }
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

/* The reply body as SSE events, asserting every event is complete. */
static inline void fx_sse(const co__sim_reply *r, co_test_sse *out)
{
    assert_int_equal(co_test_sse_parse(r->body.p ? r->body.p : "", r->body.len, out), 0);
    assert_true(out->complete);
    assert_true(out->n > 0);
}

static inline json_t *sse_json(const co_test_sse *s, size_t i)
{
    json_error_t e;
    json_t *j = json_loads(s->v[i].data, 0, &e);
    if (!j)
        fprintf(stderr, "event %zu data is not JSON: %s\n", i, s->v[i].data);
    assert_non_null(j);
    return j;
}

#endif
