/* Unit tests of sim scenarios: the built-in default, binding of every key,
 * errors located at file:line:col, canned answers from eval sets (YAML list,
 * cases: mapping, JSONL) with deterministic accuracy, and answer styles. */
#include "sim_fixture.h"

static char *answer_of(fx *f, const char *model, const char *prompt)
{
    json_t *body = json_pack("{s:s,s:[{s:s,s:s}]}", "model", model, "messages", "role", "user", "content", prompt);
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    co__sim_reply *r = fx_openai(f, s);
    free(s);
    if (r->status != 200)
        fprintf(stderr, "%d %s\n", r->status, r->body.p);
    assert_int_equal(r->status, 200);
    json_t *j = fx_json(r);
    char *out = strdup(jstr(j, "choices.0.message.content"));
    json_decref(j);
    return out;
}

static void assert_answer(fx *f, const char *model, const char *prompt, const char *want)
{
    char *got = answer_of(f, model, prompt);
    assert_string_equal(got, want);
    free(got);
}

static void test_default_scenario(void **state)
{
    (void)state;
    fx *f = fx_new(NULL);
    assert_true(f->sc->models.n >= 5);
    assert_int_equal(co__sim_model_at(f->sc, co__sim_scenario_find(f->sc, "gpt-4o"))->provider, CO__SIM_V_OPENAI);
    assert_int_equal(co__sim_model_at(f->sc, co__sim_scenario_find(f->sc, "claude-sonnet-4"))->provider, CO__SIM_V_ANTHROPIC);
    assert_int_equal(co__sim_model_at(f->sc, co__sim_scenario_find(f->sc, "gemini-2.5-flash"))->provider, CO__SIM_V_GEMINI);
    assert_int_equal(co__sim_scenario_find(f->sc, "no-such-model"), -1);
    assert_answer(f, "gpt-4o", "Hi", "Answer from gpt-4o: Hi");
    assert_int_equal(fx_anthropic(f, "{\"model\":\"claude-sonnet-4\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}")->status, 200);
    assert_int_equal(fx_gemini(f, "gemini-2.5-flash", "generateContent", "{\"contents\":[{\"parts\":[{\"text\":\"x\"}]}]}")->status, 200);
    fx_free(f);
}

static void test_all_keys_bind(void **state)
{
    (void)state;
    fx *f = fx_new("seed: 9\n"
                   "api_key: k\n"
                   "max_body: 64k\n"
                   "models:\n"
                   "  m:\n"
                   "    provider: openai\n"
                   "    answer: template\n"
                   "    template: \"T {{turns}} {{protocol}}\"\n"
                   "    markdown: true\n"
                   "    verbosity: 2.5\n"
                   "    refusal_rate: 0.25\n"
                   "    refusal: \"No.\"\n"
                   "    tools: never\n"
                   "    tool_args: {a: 1}\n"
                   "    context_window: 1000\n"
                   "    latency: {ttft: 1.5s, per_token: 20ms, jitter: 0.1}\n"
                   "    faults: {error_500: 0.1, error_429: 0.2, overloaded: 0.3, retry_after: 2s, timeout: 0.01, reset: 0.02, truncate: 0.03}\n"
                   "    tokens: {chars_per_token: 3.5, cached_fraction: 0.2}\n"
                   "  '*': {}\n");
    co_sim_scenario *sc = f->sc;
    assert_int_equal(sc->seed, 9);
    assert_string_equal(sc->api_key, "k");
    assert_int_equal(sc->max_body, 65536);
    co__sim_model *m = co__sim_model_at(sc, 0);
    assert_string_equal(m->name, "m");
    assert_int_equal(m->provider, CO__SIM_V_OPENAI);
    assert_int_equal(m->answer, CO__SIM_A_TEMPLATE);
    assert_true(m->markdown);
    assert_true(m->verbosity == 2.5);
    assert_true(m->refusal_rate == 0.25);
    assert_string_equal(m->refusal, "No.");
    assert_int_equal(m->tools, CO__SIM_TOOLS_NEVER);
    assert_int_equal(json_integer_value(json_object_get(m->tool_args, "a")), 1);
    assert_int_equal(m->context_window, 1000);
    assert_int_equal(m->latency.ttft_ms, 1500);
    assert_int_equal(m->latency.per_token_ms, 20);
    assert_true(m->latency.jitter == 0.1);
    assert_true(m->faults.error_500 == 0.1 && m->faults.error_429 == 0.2 && m->faults.overloaded == 0.3);
    assert_int_equal(m->faults.retry_after_ms, 2000);
    assert_true(m->faults.timeout == 0.01 && m->faults.reset == 0.02 && m->faults.truncate == 0.03);
    assert_true(m->tokens.chars_per_token == 3.5 && m->tokens.cached_fraction == 0.2);
    /* defaults of an empty model */
    co__sim_model *w = co__sim_model_at(sc, 1);
    assert_int_equal(w->answer, CO__SIM_A_ECHO);
    assert_int_equal(w->provider, CO__SIM_V_ANY);
    assert_true(w->tokens.chars_per_token == 4);
    assert_int_equal(w->faults.retry_after_ms, 1000);
    assert_true(w->canned.accuracy == 1);
    /* "*" answers any other name */
    assert_int_equal(co__sim_scenario_find(sc, "whatever"), 1);
    fx_free(f);
}

static int has_diag(const co_diags *d, int line, int col, const char *needle)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->v[i].line == line && (col == 0 || d->v[i].col == col) && strstr(d->v[i].msg, needle))
            return 1;
    return 0;
}

static void test_errors_located(void **state)
{
    (void)state;
    char *dir = co_test_tmpdir();
    char *path = co_test_write(dir,
                               "bad.yaml",
                               "seed: 1\n"
                               "models:\n"
                               "  m1:\n"
                               "    latncy: {ttft: 5ms}\n"
                               "    faults: {error_500: 1.5}\n"
                               "  m2:\n"
                               "    template: \"hi {{nope}}\"\n"
                               "  m3:\n"
                               "    answer: canned\n");
    co_diags d = {0};
    co_sim_scenario *sc = NULL;
    int rc = co_sim_scenario_load(&sc, path, &d);
    assert_int_equal(rc, CO_ECONFIG);
    assert_null(sc);
    co_diags_print(&d, stderr);
    assert_true(has_diag(&d, 4, 5, "latency"));     /* did you mean */
    assert_true(has_diag(&d, 5, 0, "error_500"));
    assert_true(has_diag(&d, 7, 16, "{{nope}}")); /* inside the quotes */
    assert_true(has_diag(&d, 8, 3, "canned"));
    for (size_t i = 0; i < d.n; i++)
        assert_string_equal(d.v[i].file, path);
    co_diags_free(&d);

    /* YAML syntax errors are located too */
    char *p2 = co_test_write(dir, "syntax.yaml", "models:\n  m: {a: [1, 2}\n");
    assert_int_equal(co_sim_scenario_load(&sc, p2, &d), CO_ECONFIG);
    assert_true(d.n > 0);
    assert_int_equal(d.v[0].line, 2);
    co_diags_free(&d);

    /* ... and so are syntax errors inside a canned eval set */
    char *ev = co_test_write(dir, "ev.yaml", "- id: a\n  ideal: x\n- id: b\n  ideal: [1, 2}\n");
    char *p2b = co_test_write(dir, "canned.yaml", "models:\n  m: {canned: {file: ev.yaml}}\n");
    assert_int_equal(co_sim_scenario_load(&sc, p2b, &d), CO_ECONFIG);
    assert_true(has_diag(&d, 4, 15, "mismatched"));
    co_diags_free(&d);
    free(ev);
    free(p2b);

    /* models is required and not empty */
    char *p3 = co_test_write(dir, "empty.yaml", "seed: 3\n");
    assert_int_equal(co_sim_scenario_load(&sc, p3, &d), CO_ECONFIG);
    assert_true(has_diag(&d, 0, 0, "models") || (d.n && strstr(d.v[0].msg, "models")));
    co_diags_free(&d);
    free(path);
    free(p2);
    free(p3);
    co_test_rmtree(dir);
    free(dir);
}

static const char *EVALS =
    "- id: c1\n"
    "  tags: [billing]\n"
    "  messages:\n"
    "    - {role: system, content: \"sys\"}\n"
    "    - {role: user, content: \"What is my balance?\"}\n"
    "  ideal: \"Your balance is $5.\"\n"
    "- id: c2\n"
    "  tags: support\n"
    "  prompt: \"Capital of {{ country }}?\"\n"
    "  vars: {country: France}\n"
    "  assert:\n"
    "    - {type: llm-rubric, value: \"mentions Paris\"}\n"
    "    - {type: icontains, value: \"Paris\"}\n"
    "- id: c3\n"
    "  prompt: \"no answer known\"\n";

static void test_canned(void **state)
{
    (void)state;
    char *dir = co_test_tmpdir();
    free(co_test_write(dir, "evals.yaml", EVALS));
    char *sp = co_test_write(dir, "s.yaml",
                             "models:\n"
                             "  good: {canned: {file: evals.yaml}}\n"
                             "  bad: {canned: {file: evals.yaml, accuracy: 0, wrong: dunno}}\n"
                             "  tagged: {canned: {file: evals.yaml, tag_accuracy: {billing: 0}}}\n"
                             "  tmpl: {template: \"T: {{last_user}}\", answer: canned, canned: {file: evals.yaml}}\n");
    co_diags d = {0};
    fx g = {0};
    int rc = co_sim_scenario_load(&g.sc, sp, &d);
    co_diags_print(&d, stderr);
    assert_int_equal(rc, 0);
    co_diags_free(&d);
    assert_int_equal(co__sim_shared_init(&g.sh, g.sc, 42, 0, 1), 0);
    assert_int_equal(co__sim_core_init(&g.core, &g.sh), 0);
    co__sim_reply_init(&g.r);
    /* the models share one parsed set */
    assert_ptr_equal(co__sim_model_at(g.sc, 0)->cases, co__sim_model_at(g.sc, 1)->cases);
    assert_int_equal(co__sim_model_at(g.sc, 0)->cases->n, 3);

    assert_answer(&g, "good", "What is my balance?", "Your balance is $5.");
    assert_answer(&g, "good", "  What is my balance?\n", "Your balance is $5.");
    assert_answer(&g, "good", "Capital of France?", "Paris");
    assert_answer(&g, "good", "no answer known", "no answer known");    /* nothing checkable: echo */
    assert_answer(&g, "good", "not in the set", "not in the set");
    assert_answer(&g, "tmpl", "not in the set", "T: not in the set"); /* or the template */
    assert_answer(&g, "bad", "What is my balance?", "dunno");
    assert_answer(&g, "tagged", "What is my balance?", "I am not sure.");
    assert_answer(&g, "tagged", "Capital of France?", "Paris");

    /* a patched accuracy applies to every case, tags or not */
    co__sim_reply *r = fx_call(&g, "POST", "/_sim/models/tagged", NULL, "{\"accuracy\": 1}");
    assert_int_equal(r->status, 200);
    assert_answer(&g, "tagged", "What is my balance?", "Your balance is $5.");

    co__sim_reply_free(&g.r);
    co__sim_core_destroy(&g.core);
    co__sim_shared_destroy(&g.sh);
    co_sim_scenario_free(g.sc);
    free(sp);
    co_test_rmtree(dir);
    free(dir);
}

/* 200 cases answered at 50%: the outcome of a case depends on seed, model
 * and case id only, never on order. */
static char *outcomes(const char *dir, int seed, int reverse)
{
    char yaml[512];
    snprintf(yaml, sizeof yaml, "seed: %d\nmodels:\n  half: {canned: {file: set.jsonl, accuracy: 0.5}}\n  other: {canned: {file: set.jsonl, accuracy: 0.5}}\n", seed);
    char *sp = co_test_write(dir, "half.yaml", yaml);
    fx g = {0};
    co_diags d = {0};
    assert_int_equal(co_sim_scenario_load(&g.sc, sp, &d), 0);
    co_diags_free(&d);
    assert_int_equal(co__sim_shared_init(&g.sh, g.sc, (uint64_t)g.sc->seed, 0, 1), 0);
    assert_int_equal(co__sim_core_init(&g.core, &g.sh), 0);
    co__sim_reply_init(&g.r);
    char *v = calloc(201, 1);
    for (int k = 0; k < 200; k++) {
        int i = reverse ? 199 - k : k;
        char q[64], want[64];
        snprintf(q, sizeof q, "question %d", i);
        snprintf(want, sizeof want, "answer %d", i);
        char *a = answer_of(&g, "half", q);
        v[i] = strcmp(a, want) == 0 ? '1' : '0';
        if (v[i] == '0')
            assert_string_equal(a, "I am not sure.");
        free(a);
    }
    co__sim_reply_free(&g.r);
    co__sim_core_destroy(&g.core);
    co__sim_shared_destroy(&g.sh);
    co_sim_scenario_free(g.sc);
    free(sp);
    return v;
}

static void test_canned_determinism(void **state)
{
    (void)state;
    char *dir = co_test_tmpdir();
    char *set = malloc(200 * 100);
    set[0] = '\0';
    for (int i = 0; i < 200; i++)
        sprintf(set + strlen(set), "{\"id\":\"q%d\",\"prompt\":\"question %d\",\"ideal\":\"answer %d\"}\n%s", i, i, i,
                i == 100 ? "\n" : "");
    free(co_test_write(dir, "set.jsonl", set));
    free(set);
    char *a = outcomes(dir, 42, 0), *b = outcomes(dir, 42, 1), *c = outcomes(dir, 43, 0);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    int right = 0;
    for (int i = 0; i < 200; i++)
        right += a[i] == '1';
    assert_in_range(right, 70, 130);
    free(a);
    free(b);
    free(c);
    co_test_rmtree(dir);
    free(dir);
}

static void test_evalset_errors(void **state)
{
    (void)state;
    char *dir = co_test_tmpdir();
    free(co_test_write(dir, "bad.jsonl", "{\"id\":\"a\",\"prompt\":\"p\"}\n{\"id\": oops}\n"));
    free(co_test_write(dir, "bad.yaml", "cases:\n  - id: a\n    prompt: p\n  - id: b\n    ideal: x\n"));
    free(co_test_write(dir, "notalist.yaml", "id: a\n"));
    char *sp = co_test_write(dir, "s.yaml",
                             "models:\n"
                             "  a: {canned: {file: bad.jsonl}}\n"
                             "  b: {canned: {file: bad.yaml}}\n"
                             "  c: {canned: {file: missing.yaml}}\n"
                             "  d: {canned: {file: notalist.yaml}}\n");
    co_diags d = {0};
    co_sim_scenario *sc = NULL;
    assert_int_equal(co_sim_scenario_load(&sc, sp, &d), CO_ECONFIG);
    co_diags_print(&d, stderr);
    int jsonl = 0, yaml = 0, missing = 0, where = 0, notalist = 0;
    for (size_t i = 0; i < d.n; i++) {
        const co_diag *g = &d.v[i];
        if (g->file && strstr(g->file, "bad.jsonl") && g->line == 2)
            jsonl = 1;
        if (g->file && strstr(g->file, "bad.yaml") && g->line == 4 && g->col == 5 && strstr(g->msg, "'b'"))
            yaml = 1;
        if (g->file && strstr(g->file, "missing.yaml"))
            missing = 1;
        if (g->file && strstr(g->file, "notalist.yaml") && g->line == 1)
            notalist = 1;
        if (g->file && !strcmp(g->file, sp) && g->line == 4 && g->col == 22)
            where = 1; /* the scenario line naming the missing set */
    }
    assert_true(jsonl);
    assert_true(yaml);
    assert_true(missing);
    assert_true(where);
    assert_true(notalist);
    co_diags_free(&d);
    free(sp);
    co_test_rmtree(dir);
    free(dir);
}

static void test_styles(void **state)
{
    (void)state;
    fx *f = fx_new("models:\n"
                   "  md: {markdown: true}\n"
                   "  long: {verbosity: 3}\n"
                   "  short: {verbosity: 0.5}\n"
                   "  js: {json: {status: ok, n: [1, 2]}}\n"
                   "  jsmd: {json: {status: ok}, markdown: true}\n"
                   "  refuse: {refusal_rate: 1, refusal: \"Cannot.\"}\n"
                   "  some: {refusal_rate: 0.5}\n");
    assert_answer(f, "md", "First point. Second point!", "## Answer\n\n- First point.\n- Second point!");
    char *l = answer_of(f, "long", "Tell me more about it.");
    assert_true(strlen(l) >= 3 * strlen("Tell me more about it."));
    assert_true(!strncmp(l, "Tell me more about it. ", 23));
    free(l);
    assert_answer(f, "short", "one two three four", "one two");
    assert_answer(f, "js", "anything", "{\"status\":\"ok\",\"n\":[1,2]}");
    assert_answer(f, "jsmd", "anything", "```json\n{\"status\":\"ok\"}\n```");
    assert_answer(f, "refuse", "do it", "Cannot.");
    /* the same prompt is always refused or always answered */
    for (int i = 0; i < 20; i++) {
        char p[32];
        snprintf(p, sizeof p, "prompt %d", i);
        char *a = answer_of(f, "some", p), *b = answer_of(f, "some", p);
        assert_string_equal(a, b);
        free(a);
        free(b);
    }
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_scenario),
        cmocka_unit_test(test_all_keys_bind),
        cmocka_unit_test(test_errors_located),
        cmocka_unit_test(test_canned),
        cmocka_unit_test(test_canned_determinism),
        cmocka_unit_test(test_evalset_errors),
        cmocka_unit_test(test_styles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
