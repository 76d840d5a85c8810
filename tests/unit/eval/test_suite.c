/* Unit tests of the eval-set loader: native YAML (list and cases: mapping),
 * native JSONL, the init golden set, directory suites, promptfoo and
 * OpenAI-evals imports (with the named, not-imported items), and every kind
 * of load error with its exact file:line:col. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cutover/assert.h"
#include "cutover/error.h"
#include "cutover/suite.h"

static char g_tmp[256];

static const char *src_dir(void)
{
    const char *s = getenv("CO_SRC_DIR");
    return s && *s ? s : ".";
}

static char *fixture(const char *rel)
{
    static char buf[4][1024];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, sizeof buf[0], "%s/tests/unit/eval/fixtures/suite/%s", src_dir(), rel);
    return b;
}

static char *tmp_file(const char *name, const char *text)
{
    static char buf[4][512];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, sizeof buf[0], "%s/%s", g_tmp, name);
    char *slash = strrchr(b, '/');
    *slash = '\0';
    mkdir(b, 0700);
    *slash = '/';
    FILE *f = fopen(b, "wb");
    assert_non_null(f);
    fwrite(text, 1, strlen(text), f);
    fclose(f);
    return b;
}

static co_suite *load_ok(const char *path)
{
    co_diags d = {0};
    co_suite *s = NULL;
    int rc = co_suite_load(&s, path, NULL, &d);
    if (rc) {
        co_diags_print(&d, stderr);
        fail_msg("%s did not load: %s", path, co_error_last());
    }
    assert_int_equal(d.n, 0);
    co_diags_free(&d);
    return s;
}

/* Loads `path`, expects CO_ECONFIG and exactly the diagnostics given, each as
 * "line:col: message prefix" (file checked against `file` unless NULL). */
static void expect_errors(const char *path, const co_assert_opts *opts, const char *file, const char *const *want)
{
    co_diags d = {0};
    co_suite *s = (co_suite *)1;
    int rc = co_suite_load(&s, path, opts, &d);
    assert_int_equal(rc, CO_ECONFIG);
    assert_null(s);
    size_t n = 0;
    while (want[n])
        n++;
    for (size_t i = 0; i < d.n; i++)
        fprintf(stderr, "  diag %s:%d:%d: %s\n", d.v[i].file ? d.v[i].file : "-", d.v[i].line, d.v[i].col,
                d.v[i].msg);
    assert_int_equal(d.n, n);
    for (size_t w = 0; w < n; w++) {
        int found = 0;
        for (size_t i = 0; i < d.n && !found; i++) {
            char got[2048];
            snprintf(got, sizeof got, "%d:%d: %s", d.v[i].line, d.v[i].col, d.v[i].msg);
            if (!strncmp(got, want[w], strlen(want[w])) && (!file || (d.v[i].file && !strcmp(d.v[i].file, file))))
                found = 1;
        }
        if (!found)
            fail_msg("missing diagnostic: %s", want[w]);
    }
    co_diags_free(&d);
}

static char *msg_text(const co_chat_message *m)
{
    char *t = NULL;
    assert_int_equal(co_chat_message_text(&t, m, ""), 0);
    return t;
}

static void assert_user_text(const co_suite_case *c, size_t i, const char *want)
{
    assert_true(c->request->n_messages > i);
    char *t = msg_text(&c->request->messages[i]);
    assert_string_equal(t, want);
    free(t);
}

static int has_warning(const co_suite *s, const char *needle)
{
    for (size_t i = 0; i < co_suite_n_warnings(s); i++)
        if (strstr(co_suite_warning(s, i), needle))
            return 1;
    return 0;
}

/* ---- formats ---------------------------------------------------------------- */

static void test_native_yaml(void **state)
{
    (void)state;
    co_suite *s = load_ok(fixture("native.yaml"));
    assert_int_equal(co_suite_len(s), 3);
    assert_int_equal(co_suite_n_warnings(s), 0);

    const co_suite_case *c = co_suite_get(s, 0);
    assert_string_equal(c->id, "greet");
    assert_string_equal(c->workload, "chat");
    assert_int_equal(c->n_tags, 2);
    assert_string_equal(c->tags[0], "smalltalk");
    assert_string_equal(c->tags[1], "en");
    assert_false(c->critical);
    assert_int_equal(c->format, CO_SUITE_NATIVE);
    assert_string_equal(c->request->system, "Be brief.");
    assert_int_equal(c->request->n_messages, 1);
    assert_int_equal(c->request->messages[0].role, CO_CHAT_USER);
    assert_user_text(c, 0, "Say hello.");
    assert_string_equal(json_string_value(c->ideal), "Hello!");
    assert_int_equal(co_assert_set_len(c->asserts), 2);
    assert_string_equal(co_assertion_type(co_assert_set_get(c->asserts, 1)), "not-contains");
    assert_int_equal(c->line, 2);
    assert_int_equal(c->col, 3);

    /* the compiled set works */
    co_assert_input in = {.output = "hello there", .output_len = 11};
    co_assert_case_result r;
    assert_int_equal(co_assert_set_eval(c->asserts, &in, &r), 0);
    assert_true(r.pass);
    co_assert_case_result_free(&r);

    c = co_suite_get(s, 1);
    assert_string_equal(c->id, "capital");
    assert_true(c->critical);
    assert_int_equal(c->n_tags, 0);
    assert_null(c->ideal);
    assert_user_text(c, 0, "What is the capital of France?");
    assert_int_equal(co_assert_set_len(c->asserts), 1);

    c = co_suite_get(s, 2);
    assert_string_equal(c->id, "weather-tool");
    assert_int_equal(c->n_tags, 1);
    assert_string_equal(c->tags[0], "tools");
    assert_int_equal(c->request->n_tools, 1);
    assert_string_equal(c->request->tools[0].name, "get_weather");
    assert_string_equal(c->request->tools[0].description, "Current weather");
    assert_non_null(strstr(c->request->tools[0].parameters, "\"required\":[\"city\"]"));
    assert_user_text(c, 0, "Weather in Oslo?");
    assert_true(json_is_array(c->tools));
    /* is-valid-openai-tools-call was compiled against the case's tools */
    json_t *calls = json_loads("[{\"id\":\"1\",\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}]",
                               0, NULL);
    co_assert_input in2 = {.output = "", .tool_calls = calls};
    assert_int_equal(co_assert_set_eval(c->asserts, &in2, &r), 0);
    assert_true(r.pass);
    co_assert_case_result_free(&r);
    json_decref(calls);
    calls = json_loads("[{\"id\":\"1\",\"name\":\"get_weather\",\"arguments\":\"{}\"}]", 0, NULL);
    in2.tool_calls = calls;
    assert_int_equal(co_assert_set_eval(c->asserts, &in2, &r), 0);
    assert_false(r.pass);
    co_assert_case_result_free(&r);
    json_decref(calls);

    assert_ptr_equal(co_suite_find(s, "capital"), co_suite_get(s, 1));
    assert_null(co_suite_find(s, "nope"));
    co_suite_free(s);
}

static void test_cases_mapping(void **state)
{
    (void)state;
    co_suite *s = load_ok(fixture("cases.yaml"));
    assert_int_equal(co_suite_len(s), 2);
    assert_string_equal(co_suite_get(s, 0)->workload, "support");
    assert_user_text(co_suite_get(s, 0), 0, "Refund window?");
    assert_string_equal(co_suite_get(s, 1)->workload, "billing");
    assert_user_text(co_suite_get(s, 1), 0, "Invoice 42");
    assert_int_equal(co_assert_set_len(co_suite_get(s, 1)->asserts), 0);
    co_suite_free(s);
}

static void test_native_jsonl(void **state)
{
    (void)state;
    co_suite *s = load_ok(fixture("native.jsonl"));
    assert_int_equal(co_suite_len(s), 2);
    const co_suite_case *c = co_suite_get(s, 0);
    assert_string_equal(c->id, "j1");
    assert_int_equal(c->line, 1);
    assert_int_equal(co_assert_set_len(c->asserts), 1);
    c = co_suite_get(s, 1);
    assert_string_equal(c->id, "j2");
    assert_int_equal(c->line, 3); /* the blank line counts */
    assert_user_text(c, 0, "Sum 1+2");
    assert_string_equal(json_string_value(c->ideal), "3");
    co_suite_free(s);
}

static void test_golden(void **state)
{
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s/data/init/evals/golden.yaml", src_dir());
    co_suite *s = load_ok(path);
    assert_true(co_suite_len(s) >= 6);
    size_t crit = 0, support = 0;
    for (size_t i = 0; i < co_suite_len(s); i++) {
        const co_suite_case *c = co_suite_get(s, i);
        crit += c->critical;
        support += !strcmp(c->workload, "support");
        assert_true(c->request->n_messages >= 1);
        assert_true(co_assert_set_len(c->asserts) >= 1);
        assert_non_null(c->ideal);
    }
    assert_true(crit >= 2);
    assert_true(support >= 4);
    const co_suite_case *c = co_suite_find(s, "support-refund-window");
    assert_non_null(c);
    assert_string_equal(c->request->system, "You are a concise support agent for Acme.");
    co_suite_free(s);
}

static void test_directory(void **state)
{
    (void)state;
    co_suite *s = load_ok(fixture("dir"));
    assert_int_equal(co_suite_len(s), 3);
    assert_string_equal(co_suite_get(s, 0)->id, "a1"); /* a.yaml, b.jsonl, c.yml; notes.txt ignored */
    assert_string_equal(co_suite_get(s, 1)->id, "b1");
    assert_string_equal(co_suite_get(s, 2)->id, "c1");
    assert_non_null(strstr(co_suite_get(s, 1)->file, "b.jsonl"));
    assert_string_equal(co_suite_get(s, 2)->workload, "w2");
    co_suite_free(s);
}

static void test_promptfoo(void **state)
{
    (void)state;
    co_suite *s = load_ok(fixture("promptfooconfig.yaml"));
    /* 2 importable prompts x 2 importable tests */
    assert_int_equal(co_suite_len(s), 4);
    const co_suite_case *c = co_suite_find(s, "hello#p1");
    assert_non_null(c);
    assert_int_equal(c->format, CO_SUITE_PROMPTFOO);
    assert_string_equal(c->workload, "promptfooconfig");
    assert_user_text(c, 0, "Translate to French: Hello");
    /* defaultTest's not-icontains first, then the test's icontains */
    assert_int_equal(co_assert_set_len(c->asserts), 2);
    assert_string_equal(co_assertion_type(co_assert_set_get(c->asserts, 0)), "not-icontains");
    assert_string_equal(co_assertion_type(co_assert_set_get(c->asserts, 1)), "icontains");

    c = co_suite_find(s, "hello#p2");
    assert_non_null(c);
    assert_user_text(c, 0, "Say Hello in French");

    c = co_suite_find(s, "test-2#p1");
    assert_non_null(c);
    assert_string_equal(c->workload, "translate-de");
    assert_user_text(c, 0, "Translate to German: Thanks"); /* the test's var wins */
    assert_int_equal(co_assert_set_len(c->asserts), 2);  /* not-icontains + contains */
    co_assert_input in = {.output = "Auf German: Danke", .output_len = 17};
    co_assert_case_result r;
    assert_int_equal(co_assert_set_eval(c->asserts, &in, &r), 0);
    assert_true(r.pass); /* "{{lang}}" rendered to German */
    co_assert_case_result_free(&r);

    /* everything that was not imported is named, once */
    assert_true(has_warning(s, "providers are not imported"));
    assert_true(has_warning(s, "prompts[1]: prompt files (file://prompts/other.txt) are not imported"));
    assert_true(has_warning(s, "defaultTest: 'options' is not imported"));
    assert_true(has_warning(s, "defaultTest: assertion type 'javascript' is not supported"));
    assert_true(has_warning(s, "test 'test-2': assertion type 'similar' is not supported"));
    assert_true(has_warning(s, "test 'test-2': assertion 'llm-rubric' uses 'provider'"));
    assert_true(has_warning(s, "test 'test-3': var 'text' is a list"));
    assert_true(has_warning(s, "tests[3]: tests from files (file://tests/more.yaml) are not imported"));
    assert_true(has_warning(s, "no workload given"));
    assert_int_equal(co_suite_n_warnings(s), 9);
    /* each with its location */
    int javascript_at = 0;
    char want[1200];
    snprintf(want, sizeof want, "%s:14:7: defaultTest: assertion type 'javascript'", fixture("promptfooconfig.yaml"));
    for (size_t i = 0; i < co_suite_n_warnings(s); i++)
        javascript_at |= !strncmp(co_suite_warning(s, i), want, strlen(want));
    if (!javascript_at)
        for (size_t i = 0; i < co_suite_n_warnings(s); i++)
            fprintf(stderr, "  warning %s\n", co_suite_warning(s, i));
    assert_true(javascript_at);
    co_suite_free(s);
}

static void test_openai_evals(void **state)
{
    (void)state;
    co_suite *s = load_ok(fixture("capitals.jsonl"));
    assert_int_equal(co_suite_len(s), 3);
    const co_suite_case *c = co_suite_get(s, 0);
    assert_string_equal(c->id, "capitals-1");
    assert_string_equal(c->workload, "capitals");
    assert_int_equal(c->format, CO_SUITE_OPENAI_EVALS);
    assert_string_equal(c->request->system, "Answer with the city only.");
    assert_user_text(c, 0, "Capital of France?");
    assert_int_equal(co_assert_set_len(c->asserts), 1);
    assert_string_equal(co_assertion_type(co_assert_set_get(c->asserts, 0)), "equals");

    c = co_suite_get(s, 1);
    assert_user_text(c, 0, "Capital of Japan?");
    assert_string_equal(co_assertion_type(co_assert_set_get(c->asserts, 0)), "contains-any");
    co_assert_input in = {.output = "It is tokyo.", .output_len = 12};
    co_assert_case_result r;
    assert_int_equal(co_assert_set_eval(c->asserts, &in, &r), 0);
    assert_true(r.pass);
    co_assert_case_result_free(&r);

    c = co_suite_get(s, 2);
    assert_string_equal(c->workload, "geo");
    assert_string_equal(co_assertion_type(co_assert_set_get(c->asserts, 0)), "equals"); /* one-item list */
    assert_true(has_warning(s, "cases are in workload 'capitals'"));
    assert_int_equal(co_suite_n_warnings(s), 1);
    co_suite_free(s);
}

static int judge(void *ud, const char *rubric, const char *output, int *pass, double *score, char **reason)
{
    (void)ud, (void)rubric, (void)output, (void)reason;
    *pass = 1;
    *score = 1;
    return 0;
}

static void test_llm_rubric_needs_judge(void **state)
{
    (void)state;
    const char *p = tmp_file("rubric.yaml", "- id: r\n"
                                            "  workload: w\n"
                                            "  prompt: hi\n"
                                            "  assert:\n"
                                            "    - type: llm-rubric\n"
                                            "      value: polite\n");
    const char *const want[] = {"5:7: case 'r': assert[0]: ", NULL};
    expect_errors(p, NULL, p, want);
    co_assert_opts opts = {.judge = judge};
    co_diags d = {0};
    co_suite *s = NULL;
    assert_int_equal(co_suite_load(&s, p, &opts, &d), 0);
    assert_int_equal(co_suite_len(s), 1);
    co_suite_free(s);
    co_diags_free(&d);
}

/* ---- errors ----------------------------------------------------------------- */

static void test_errors_yaml(void **state)
{
    (void)state;
    const char *p = tmp_file("errors.yaml", "- id: ok\n"                          /* 1 */
                                            "  workload: w\n"                     /* 2 */
                                            "  prompt: hi\n"                      /* 3 */
                                            "- workload: w\n"                     /* 4 */
                                            "  prompt: no id here\n"              /* 5 */
                                            "- id: no-workload\n"                 /* 6 */
                                            "  prompt: hi\n"                      /* 7 */
                                            "- id: bad-assert\n"                  /* 8 */
                                            "  workload: w\n"                     /* 9 */
                                            "  prompt: hi\n"                      /* 10 */
                                            "  assert:\n"                         /* 11 */
                                            "    - {type: icontains, value: x}\n" /* 12 */
                                            "    - {type: contians, value: y}\n"  /* 13 */
                                            "- id: missing-var\n"                 /* 14 */
                                            "  workload: w\n"                     /* 15 */
                                            "  prompt: \"Hi {{name}}\"\n"         /* 16 */
                                            "  vars: {other: 1}\n"                /* 17 */
                                            "- id: ok\n"                          /* 18 */
                                            "  workload: w\n"                     /* 19 */
                                            "  prompt: again\n"                   /* 20 */
                                            "- id: typo\n"                        /* 21 */
                                            "  workload: w\n"                     /* 22 */
                                            "  prompt: x\n"                       /* 23 */
                                            "  asert: []\n"                       /* 24 */
                                            "- id: crit\n"                        /* 25 */
                                            "  workload: w\n"                     /* 26 */
                                            "  prompt: x\n"                       /* 27 */
                                            "  critical: maybe\n"                 /* 28 */
                                            "- id: nothing\n"                     /* 29 */
                                            "  workload: w\n");                   /* 30 */
    char dup[1200];
    snprintf(dup, sizeof dup, "18:3: duplicate case id 'ok' (first at %s:1:3)", p);
    const char *const want[] = {
        "4:3: a case needs an id",
        "6:3: case 'no-workload' has no workload",
        "13:8: case 'bad-assert': assert[1]: unknown assertion type 'contians' (did you mean 'contains'?)",
        "16:11: case 'missing-var': prompt uses {{name}} but vars has no 'name'",
        dup,
        "24:3: case 'typo': unknown key 'asert' (did you mean 'assert'?)",
        "28:13: case 'crit': critical must be true or false",
        "29:3: case 'nothing' has neither messages nor prompt",
        NULL,
    };
    expect_errors(p, NULL, p, want);
}

static void test_error_yaml_syntax(void **state)
{
    (void)state;
    const char *p = tmp_file("syntax.yaml", "- id: x\n"
                                            "  workload: [unclosed\n"
                                            "  prompt: hi\n");
    const char *const want[] = {"4:1: YAML syntax error: flow sequence without a closing bracket", NULL};
    expect_errors(p, NULL, p, want);

    p = tmp_file("dupkey.yaml", "- id: x\n"
                                "  id: y\n");
    const char *const want2[] = {"2:3: YAML syntax error: duplicate key", NULL};
    expect_errors(p, NULL, p, want2);

    p = tmp_file("twodocs.yaml", "- {id: x, workload: w, prompt: a}\n"
                                 "---\n"
                                 "- {id: y, workload: w, prompt: b}\n");
    const char *const want3[] = {"3:4: a second YAML document starts here", NULL};
    expect_errors(p, NULL, p, want3);

    p = tmp_file("empty.yaml", "");
    const char *const want4[] = {"1:1: the file is empty", NULL};
    expect_errors(p, NULL, p, want4);
}

static void test_aliases(void **state)
{
    (void)state;
    const char *p = tmp_file("alias.yaml", "x-defaults: &d\n"
                                           "  workload: w\n"
                                           "  tags: [t]\n"
                                           "cases:\n"
                                           "  - id: a\n"
                                           "    <<: *d\n"
                                           "    prompt: hi\n");
    co_suite *s = load_ok(p);
    assert_int_equal(co_suite_len(s), 1);
    assert_string_equal(co_suite_get(s, 0)->workload, "w");
    assert_int_equal(co_suite_get(s, 0)->n_tags, 1);
    co_suite_free(s);

    /* "billion laughs" is refused */
    p = tmp_file("laughs.yaml", "a: &a [x,x,x,x,x,x,x,x,x,x]\n"
                                "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                                "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
                                "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
                                "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
                                "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
                                "g: [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\n");
    const char *const want[] = {"1:1: YAML aliases expand to more than", NULL};
    expect_errors(p, NULL, p, want);
}

static void test_error_utf8(void **state)
{
    (void)state;
    const char *p = tmp_file("latin1.yaml", "- id: x\n"
                                            "  workload: caf\xe9\n");
    const char *const want[] = {"2:16: byte 0xe9 is not valid UTF-8", NULL};
    expect_errors(p, NULL, p, want);
}

static void test_errors_jsonl(void **state)
{
    (void)state;
    const char *p = tmp_file("errors.jsonl",
                             "{\"id\": \"a\", \"workload\": \"w\", \"prompt\": \"x\"}\n"
                             "{\"id\": \"b\", \"workload\": \n"
                             "  {\"id\": \"c\", \"workload\": \"w\", \"prompt\": \"x\", \"assert\": [{\"type\": \"regexp\"}]}\n"
                             "{\"id\": \"a\", \"workload\": \"w\", \"prompt\": \"{{q}}\"}\n"
                             "[1, 2]\n");
    char dup[1200];
    snprintf(dup, sizeof dup, "4:1: duplicate case id 'a' (first at %s:1:1)", p);
    const char *const want[] = {
        "2:",  /* not JSON */
        "3:47: case 'c': assert[0]: unknown assertion type 'regexp' (did you mean 'regex'?)",
        "4:30: case 'a': prompt uses {{q}} but vars has no 'q'",
        "5:1: a case must be a mapping",
        NULL,
    };
    (void)dup; /* the second 'a' failed, so it is not a duplicate */
    expect_errors(p, NULL, p, want);
}

static void test_dup_across_dir(void **state)
{
    (void)state;
    const char *a = tmp_file("dupdir/one.yaml", "- {id: same, workload: w, prompt: a}\n");
    tmp_file("dupdir/two.jsonl", "\n{\"id\": \"same\", \"workload\": \"w\", \"prompt\": \"b\"}\n");
    char dir[600];
    snprintf(dir, sizeof dir, "%s/dupdir", g_tmp);
    char two[700], want0[1500];
    snprintf(two, sizeof two, "%s/two.jsonl", dir);
    snprintf(want0, sizeof want0, "2:1: duplicate case id 'same' (first at %s:1:4)", a);
    const char *const want[] = {want0, NULL};
    expect_errors(dir, NULL, two, want);
}

static void test_missing_and_empty(void **state)
{
    (void)state;
    co_diags d = {0};
    co_suite *s = NULL;
    char p[600];
    snprintf(p, sizeof p, "%s/does-not-exist.yaml", g_tmp);
    assert_int_equal(co_suite_load(&s, p, NULL, &d), CO_ENOENT);
    assert_null(s);
    assert_int_equal(d.n, 1);
    co_diags_free(&d);

    snprintf(p, sizeof p, "%s/emptydir", g_tmp);
    mkdir(p, 0700);
    const char *const want[] = {"0:0: no eval files", NULL};
    expect_errors(p, NULL, p, want);

    const char *e = tmp_file("nocases.yaml", "cases: []\n");
    const char *const want1[] = {"0:0: the eval set has no cases", NULL};
    expect_errors(e, NULL, e, want1);

    const char *q = tmp_file("scalar.yaml", "just a string\n");
    const char *const want2[] = {"1:1: an eval set is a list of cases", NULL};
    expect_errors(q, NULL, q, want2);
}

static void test_promptfoo_errors(void **state)
{
    (void)state;
    const char *p = tmp_file("pf-bad.yaml", "prompts:\n"                        /* 1 */
                                            "  - \"Hi {{name}}\"\n"             /* 2 */
                                            "tests:\n"                          /* 3 */
                                            "  - vars: {nom: x}\n"              /* 4 */
                                            "  - vars: {name: y}\n"             /* 5 */
                                            "    assert:\n"                     /* 6 */
                                            "      - type: equals\n"            /* 7 */
                                            "        value: a\n"                /* 8 */
                                            "        weight: -1\n");            /* 9 */
    const char *const want[] = {
        "2:5: case 'test-1': prompt uses {{name}} but vars has no 'name'",
        "7:9: case 'test-2': assert[0]: ",
        NULL,
    };
    expect_errors(p, NULL, p, want);
}

static void test_promptfoo_files(void **state)
{
    (void)state;
    const char *p = tmp_file("pf-files.yaml", "prompts: \"Q: {{q}}\"\n"                  /* 1 */
                                              "workload: qa\n"                           /* 2 */
                                              "tests:\n"                                 /* 3 */
                                              "  - vars: {q: file://q.txt}\n"            /* 4 */
                                              "  - vars: {q: two}\n"                     /* 5 */
                                              "    assert:\n"                            /* 6 */
                                              "      - {type: equals, value: file://a.txt}\n" /* 7 */
                                              "      - {type: starts-with, value: Q}\n");    /* 8 */
    co_suite *s = load_ok(p);
    assert_int_equal(co_suite_len(s), 1);
    const co_suite_case *c = co_suite_get(s, 0);
    assert_string_equal(c->id, "test-2");
    assert_string_equal(c->workload, "qa");
    assert_user_text(c, 0, "Q: two");
    assert_int_equal(co_assert_set_len(c->asserts), 1);
    assert_int_equal(co_suite_n_warnings(s), 2);
    char want[700];
    snprintf(want, sizeof want, "%s:4:12: test 'test-1': var 'q' is read from a file (file://q.txt)", p);
    assert_memory_equal(co_suite_warning(s, 0), want, strlen(want));
    snprintf(want, sizeof want, "%s:7:10: test 'test-2': assertion 'equals' reads its value from a file", p);
    assert_memory_equal(co_suite_warning(s, 1), want, strlen(want));
    co_suite_free(s);
}

static void test_bom_and_crlf(void **state)
{
    (void)state;
    const char *p = tmp_file("bom.jsonl", "\xef\xbb\xbf{\"id\": \"x\", \"workload\": \"w\", \"prompt\": \"hi\"}\r\n"
                                          "{\"input\": \"yo\", \"ideal\": \"ok\"}\r\n");
    co_suite *s = load_ok(p);
    assert_int_equal(co_suite_len(s), 2);
    assert_int_equal(co_suite_get(s, 1)->format, CO_SUITE_OPENAI_EVALS);
    assert_string_equal(co_suite_get(s, 1)->id, "bom-2");
    co_suite_free(s);
    p = tmp_file("crlf.yaml", "- id: a\r\n  workload: w\r\n  prompt: hi\r\n");
    s = load_ok(p);
    assert_int_equal(co_suite_len(s), 1);
    assert_user_text(co_suite_get(s, 0), 0, "hi");
    co_suite_free(s);
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_tmp, sizeof g_tmp, "/tmp/co_test_suite_XXXXXX");
    if (!mkdtemp(g_tmp))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_native_yaml),
        cmocka_unit_test(test_cases_mapping),
        cmocka_unit_test(test_native_jsonl),
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_directory),
        cmocka_unit_test(test_promptfoo),
        cmocka_unit_test(test_openai_evals),
        cmocka_unit_test(test_llm_rubric_needs_judge),
        cmocka_unit_test(test_errors_yaml),
        cmocka_unit_test(test_error_yaml_syntax),
        cmocka_unit_test(test_aliases),
        cmocka_unit_test(test_error_utf8),
        cmocka_unit_test(test_errors_jsonl),
        cmocka_unit_test(test_dup_across_dir),
        cmocka_unit_test(test_missing_and_empty),
        cmocka_unit_test(test_promptfoo_errors),
        cmocka_unit_test(test_promptfoo_files),
        cmocka_unit_test(test_bom_and_crlf),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
