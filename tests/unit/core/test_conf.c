/* The declarative config engine on a schema of its own with every option
 * type and flag: defaults, binding, each error with its exact line:col, check
 * callbacks, freeing on re-bind, key lookup, describe/template/markdown, and
 * odd inputs (anchors, deep nesting, huge values, bad bytes). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cutover/conf.h"
#include "cutover/util.h"

/* ---- the test schema ------------------------------------------------------- */

typedef struct t_endpoint {       /* MAP item: name -> {url, weight} or name -> url */
    char *name;
    co_mark mark;
    char *url;
    co_mark url_mark;
    int64_t weight;
} t_endpoint;

typedef struct t_step {           /* LIST item: {percent, hold} or a bare percent */
    co_mark mark;
    double percent;
    int64_t hold_ms;
} t_step;

typedef struct t_rule {           /* LIST item whose shorthand cannot carry a required key */
    char *match;
    int action;
} t_rule;

typedef struct t_limits {         /* SECTION */
    int64_t max_body;
    int64_t idle_ms;
    co_strv allow;
} t_limits;

typedef struct t_root {
    char *name;
    co_mark name_mark;
    char *label;
    int64_t count;
    int64_t any_int;
    double ratio;
    double free_num;
    double share;
    double band;
    int enabled;
    int64_t timeout_ms;
    int64_t max_body;
    int color;
    co_strv tags;
    co_strv hosts;
    json_t *extra;
    t_limits limits;
    int has_limits;
    co_vec endpoints;
    co_vec steps;
    co_mark steps_mark;
    co_vec rules;
    char *hidden;
} t_root;

#define F(type, field) offsetof(type, field)

static const char *const colors[] = {"red", "green", "blue", NULL};
static const char *const actions[] = {"allow", "deny", NULL};

static int step_checks, root_checks;

static void step_check(void *item, co_conf_ctx *ctx, co_mark at)
{
    t_step *s = item;
    step_checks++;
    if (s->percent == 0)
        co_conf_error(ctx, at, "a step of 0%% sends nothing");
}

static void root_check(void *item, co_conf_ctx *ctx, co_mark at)
{
    t_root *r = item;
    root_checks++;
    const t_step *st = r->steps.v;
    for (size_t i = 1; i < r->steps.n; i++)
        if (st[i].percent <= st[i - 1].percent)
            co_conf_error(ctx, st[i].mark, "step percents must rise: %g%% follows %g%%", st[i].percent,
                          st[i - 1].percent);
    if (!r->enabled && r->count > 50)
        co_conf_error(ctx, at, "count above 50 needs enabled");
}

static const co_opt endpoint_opts[] = {
    {"url", CO_T_STR, F(t_endpoint, url), .flags = CO_OPT_REQUIRED | CO_OPT_NONEMPTY,
     .mark_offset = CO_MARK_AT(F(t_endpoint, url_mark)), .help = "where the endpoint listens"},
    {"weight", CO_T_INT, F(t_endpoint, weight), .min = 1, .max = 10, .def = "1", .help = "share of traffic"},
    {.name = NULL},
};
static const co_schema endpoint_schema = {
    .name = "endpoint",
    .size = sizeof(t_endpoint),
    .opts = endpoint_opts,
    .name_offset = CO_MARK_AT(F(t_endpoint, name)),
    .mark_offset = CO_MARK_AT(F(t_endpoint, mark)),
    .scalar_key = "url",
};

static const co_opt step_opts[] = {
    {"percent", CO_T_PERCENT, F(t_step, percent), .flags = CO_OPT_REQUIRED, .help = "share of traffic"},
    {"hold", CO_T_DURATION, F(t_step, hold_ms), .def = "24h", .help = "how long to stay"},
    {.name = NULL},
};
static const co_schema step_schema = {
    .name = "step",
    .size = sizeof(t_step),
    .opts = step_opts,
    .mark_offset = CO_MARK_AT(F(t_step, mark)),
    .scalar_key = "percent",
    .check = step_check,
};

static const co_opt rule_opts[] = {
    {"match", CO_T_STR, F(t_rule, match), .help = "what to match"},
    {"action", CO_T_ENUM, F(t_rule, action), .enums = actions, .flags = CO_OPT_REQUIRED, .help = "what to do"},
    {.name = NULL},
};
static const co_schema rule_schema = {
    .name = "rule", .size = sizeof(t_rule), .opts = rule_opts, .scalar_key = "match"};

static const co_opt limits_opts[] = {
    {"max_body", CO_T_SIZE, F(t_limits, max_body), .def = "1MiB", .help = "largest request body"},
    {"idle", CO_T_DURATION, F(t_limits, idle_ms), .def = "90s", .min = 1000, .max = 3600000,
     .help = "idle connection timeout"},
    {"allow", CO_T_STRLIST, F(t_limits, allow), .help = "allowed hosts"},
    {.name = NULL},
};
static const co_schema limits_schema = {.name = "limits", .size = sizeof(t_limits), .opts = limits_opts};

static const co_opt root_opts[] = {
    {"name", CO_T_STR, F(t_root, name), .flags = CO_OPT_REQUIRED | CO_OPT_NONEMPTY,
     .mark_offset = CO_MARK_AT(F(t_root, name_mark)), .help = "what this is called"},
    {"label", CO_T_STR, F(t_root, label), .def = "dflt", .help = "a label"},
    {"count", CO_T_INT, F(t_root, count), .min = 1, .max = 100, .def = "10", .help = "how many"},
    {"any_int", CO_T_INT, F(t_root, any_int), .help = "an unbounded integer"},
    {"ratio", CO_T_DOUBLE, F(t_root, ratio), .min = 0, .max = 1, .def = "0.5", .help = "a fraction"},
    {"free_num", CO_T_DOUBLE, F(t_root, free_num), .help = "any number"},
    {"share", CO_T_PERCENT, F(t_root, share), .def = "5%", .help = "a percentage"},
    {"band", CO_T_PERCENT, F(t_root, band), .min = 1, .max = 50, .help = "a bounded percentage"},
    {"enabled", CO_T_BOOL, F(t_root, enabled), .def = "true", .help = "on or off"},
    {"timeout", CO_T_DURATION, F(t_root, timeout_ms), .min = 100, .max = 600000, .def = "30s",
     .help = "request timeout"},
    {"max_body", CO_T_SIZE, F(t_root, max_body), .min = 1024, .max = 1073741824.0, .def = "4MiB",
     .help = "largest body"},
    {"color", CO_T_ENUM, F(t_root, color), .enums = colors, .def = "green", .help = "a color"},
    {"tags", CO_T_STRLIST, F(t_root, tags), .help = "free-form tags"},
    {"hosts", CO_T_STRLIST, F(t_root, hosts), .flags = CO_OPT_NONEMPTY, .def = "[localhost]",
     .help = "hosts to serve"},
    {"extra", CO_T_JSON, F(t_root, extra), .help = "anything at all"},
    {"limits", CO_T_SECTION, F(t_root, limits), .sub = &limits_schema,
     .present_offset = CO_MARK_AT(F(t_root, has_limits)), .help = "limits"},
    {"endpoints", CO_T_MAP, F(t_root, endpoints), .sub = &endpoint_schema, .flags = CO_OPT_NONEMPTY,
     .help = "named endpoints"},
    {"steps", CO_T_LIST, F(t_root, steps), .sub = &step_schema,
     .def = "[10, {percent: 50, hold: 1h}, 100]", .mark_offset = CO_MARK_AT(F(t_root, steps_mark)),
     .help = "rollout steps"},
    {"rules", CO_T_LIST, F(t_root, rules), .sub = &rule_schema, .help = "rules"},
    {"secret", CO_T_FORBIDDEN, 0, .help = "put secrets in an environment variable and name it in secret_env"},
    {"hidden", CO_T_STR, F(t_root, hidden), .flags = CO_OPT_HIDDEN, .help = "internal"},
    {.name = NULL},
};
static const co_schema root_schema = {
    .name = "root", .size = sizeof(t_root), .opts = root_opts, .check = root_check};

/* ---- helpers ----------------------------------------------------------------- */

/* Defaults + load; returns the status. The caller frees r and d. */
static int load_n(t_root *r, co_diags *d, const char *text, size_t len)
{
    memset(r, 0, sizeof *r);
    memset(d, 0, sizeof *d);
    assert_int_equal(co_conf_defaults(&root_schema, r), 0);
    return co_conf_load_string(&root_schema, r, text, len, "t.yaml", d);
}

static int load(t_root *r, co_diags *d, const char *text) { return load_n(r, d, text, strlen(text)); }

static void done(t_root *r, co_diags *d)
{
    co_conf_free(&root_schema, r);
    co_diags_free(d);
}

/* Loads text that must be valid. */
static void load_ok(t_root *r, const char *text)
{
    co_diags d;
    int rc = load(r, &d, text);
    if (rc != 0 || d.n) {
        co_diags_print(&d, stderr);
        fail_msg("expected a clean load, got %s with %zu diagnostics", co_err_name(rc), d.n);
    }
    co_diags_free(&d);
}

/* One diagnostic at line:col holding every fragment; its index. */
static size_t expect_diag(const co_diags *d, int line, int col, const char *frag1, const char *frag2)
{
    for (size_t i = 0; i < d->n; i++) {
        const co_diag *g = &d->v[i];
        if (g->line == line && g->col == col && strstr(g->msg, frag1) && (!frag2 || strstr(g->msg, frag2))) {
            assert_non_null(g->file);
            return i;
        }
    }
    co_diags_print(d, stderr);
    fail_msg("no diagnostic at %d:%d containing '%s'%s%s", line, col, frag1, frag2 ? " and " : "",
             frag2 ? frag2 : "");
    return 0;
}

/* Loads one bad document; exactly one diagnostic, at line:col, with the fragments. */
static void expect_one_error(const char *text, int line, int col, const char *frag1, const char *frag2)
{
    t_root r;
    co_diags d;
    int rc = load(&r, &d, text);
    if (rc != CO_ECONFIG || d.n != 1) {
        co_diags_print(&d, stderr);
        fail_msg("'%s': expected 1 error, got %s with %zu", text, co_err_name(rc), d.n);
    }
    expect_diag(&d, line, col, frag1, frag2);
    assert_string_equal(d.v[0].file, "t.yaml");
    done(&r, &d);
}

#define STEP(r, i) (((t_step *)(r)->steps.v)[i])
#define EP(r, i) (((t_endpoint *)(r)->endpoints.v)[i])
#define RULE(r, i) (((t_rule *)(r)->rules.v)[i])

/* ---- defaults -------------------------------------------------------------------- */

static void test_defaults(void **state)
{
    (void)state;
    t_root r = {0};
    step_checks = 0;
    assert_int_equal(co_conf_defaults(&root_schema, &r), 0);
    assert_null(r.name);
    assert_string_equal(r.label, "dflt");
    assert_int_equal(r.count, 10);
    assert_int_equal(r.any_int, 0);
    assert_true(r.ratio == 0.5);
    assert_true(r.share == 5.0); /* "5%" */
    assert_true(r.band == 0.0);
    assert_int_equal(r.enabled, 1);
    assert_int_equal(r.timeout_ms, 30000);
    assert_int_equal(r.max_body, 4 << 20);
    assert_int_equal(r.color, 1);
    assert_int_equal(r.tags.n, 0);
    assert_int_equal(r.hosts.n, 1);
    assert_string_equal(r.hosts.v[0], "localhost");
    assert_null(r.extra);
    /* a section's defaults are filled although the section is absent */
    assert_int_equal(r.limits.max_body, 1 << 20);
    assert_int_equal(r.limits.idle_ms, 90000);
    assert_int_equal(r.has_limits, 0);
    assert_int_equal(r.endpoints.n, 0);
    /* a LIST default given as YAML text, with shorthand items and item defaults */
    assert_int_equal(r.steps.n, 3);
    assert_true(STEP(&r, 0).percent == 10);
    assert_int_equal(STEP(&r, 0).hold_ms, 24 * 3600000);
    assert_true(STEP(&r, 1).percent == 50);
    assert_int_equal(STEP(&r, 1).hold_ms, 3600000);
    assert_true(STEP(&r, 2).percent == 100);
    assert_int_equal(STEP(&r, 2).hold_ms, 24 * 3600000);
    assert_int_equal(step_checks, 3); /* item checks run on defaults too */
    assert_int_equal(r.rules.n, 0);
    assert_null(r.hidden);
    co_conf_free(&root_schema, &r);
    /* free leaves the struct empty */
    assert_null(r.label);
    assert_null(r.hosts.v);
    assert_int_equal(r.steps.n, 0);
    assert_null(r.steps.v);
}

/* co_mark: "0 when the value came from a default". Items of a LIST default
 * must not carry positions inside the default's own YAML text, or a check
 * would point into the user's file at a line they never wrote. */
static void test_default_marks_are_zero(void **state)
{
    (void)state;
    t_root r = {0};
    assert_int_equal(co_conf_defaults(&root_schema, &r), 0);
    assert_int_equal(r.steps.n, 3);
    co_mark first = STEP(&r, 0).mark, last = STEP(&r, 2).mark;
    co_conf_free(&root_schema, &r);
    if (first.line || first.col || last.line || last.col)
        fail_msg("default steps carry marks %d:%d and %d:%d (positions inside the default's text)", first.line,
                 first.col, last.line, last.col);
}

static void test_bad_default_in_table(void **state)
{
    (void)state;
    typedef struct {
        int64_t n;
        int64_t d;
    } bad_t;
    static const co_opt bad_opts[] = {
        {"n", CO_T_INT, offsetof(bad_t, n), .def = "lots", .help = "x"},
        {"d", CO_T_DURATION, offsetof(bad_t, d), .def = "5s", .help = "y"},
        {.name = NULL},
    };
    static const co_schema bad_schema = {.name = "bad", .size = sizeof(bad_t), .opts = bad_opts};
    bad_t b = {0};
    co_error_clear();
    assert_int_equal(co_conf_defaults(&bad_schema, &b), CO_EINVAL);
    assert_int_equal(co_error_last_status(), CO_EINVAL);
    assert_non_null(strstr(co_error_last(), "bad default"));
    assert_non_null(strstr(co_error_last(), "lots"));
    assert_int_equal(b.d, 5000); /* the good ones still apply */
    co_conf_free(&bad_schema, &b);
}

/* ---- binding values ------------------------------------------------------------------ */

static void test_bind_every_type(void **state)
{
    (void)state;
    const char *text =
        "name: svc\n"                                          /* 1 */
        "label: \"quoted # not a comment\"\n"                  /* 2 */
        "count: 42\n"                                          /* 3 */
        "any_int: -9007199254740\n"                            /* 4 */
        "ratio: 0.25\n"                                        /* 5 */
        "free_num: -1e300\n"                                   /* 6 */
        "share: 2.5%\n"                                        /* 7 */
        "band: 50\n"                                           /* 8 */
        "enabled: off\n"                                       /* 9 */
        "timeout: 1.5m\n"                                      /* 10 */
        "max_body: 64k\n"                                      /* 11 */
        "color: blue\n"                                        /* 12 */
        "tags: solo\n"                                         /* 13 */
        "hosts: [a.example, 10.0.0.1, 8080]\n"                 /* 14 */
        "limits:\n"                                            /* 15 */
        "  idle: 2m\n"                                         /* 16 */
        "  allow:\n"                                           /* 17 */
        "    - x\n"                                            /* 18 */
        "    - y\n"                                            /* 19 */
        "endpoints:\n"                                         /* 20 */
        "  primary: {url: 'http://a', weight: 3}\n"            /* 21 */
        "  backup: http://b\n"                                 /* 22 */
        "steps:\n"                                             /* 23 */
        "  - 5\n"                                              /* 24 */
        "  - {percent: 25%, hold: 2h}\n"                       /* 25 */
        "  - percent: 100\n"                                   /* 26 */
        "    hold: 0s\n"                                       /* 27 */
        "rules:\n"                                             /* 28 */
        "  - {match: '*.internal', action: deny}\n"            /* 29 */
        "hidden: still bindable\n";                            /* 30 */
    t_root r;
    root_checks = step_checks = 0;
    load_ok(&r, text);
    assert_string_equal(r.name, "svc");
    assert_int_equal(r.name_mark.line, 1);
    assert_int_equal(r.name_mark.col, 7);
    assert_string_equal(r.label, "quoted # not a comment");
    assert_int_equal(r.count, 42);
    assert_int_equal(r.any_int, -9007199254740LL);
    assert_true(r.ratio == 0.25);
    assert_true(r.free_num == -1e300);
    assert_true(r.share == 2.5);
    assert_true(r.band == 50);
    assert_int_equal(r.enabled, 0);
    assert_int_equal(r.timeout_ms, 90000);
    assert_int_equal(r.max_body, 65536);
    assert_int_equal(r.color, 2);
    assert_string_equal(co_enum_name(colors, r.color), "blue");
    /* a lone scalar is a list of one */
    assert_int_equal(r.tags.n, 1);
    assert_string_equal(r.tags.v[0], "solo");
    assert_int_equal(r.hosts.n, 3);
    assert_string_equal(r.hosts.v[0], "a.example");
    assert_string_equal(r.hosts.v[2], "8080"); /* numbers in a string list stay text */
    /* the section: present, its own values and its remaining defaults */
    assert_int_equal(r.has_limits, 1);
    assert_int_equal(r.limits.idle_ms, 120000);
    assert_int_equal(r.limits.max_body, 1 << 20);
    assert_int_equal(r.limits.allow.n, 2);
    assert_string_equal(r.limits.allow.v[1], "y");
    /* the map: names, shorthand, item defaults, marks */
    assert_int_equal(r.endpoints.n, 2);
    assert_string_equal(EP(&r, 0).name, "primary");
    assert_string_equal(EP(&r, 0).url, "http://a");
    assert_int_equal(EP(&r, 0).weight, 3);
    assert_int_equal(EP(&r, 0).mark.line, 21);
    assert_int_equal(EP(&r, 0).mark.col, 3);
    assert_int_equal(EP(&r, 0).url_mark.line, 21);
    assert_int_equal(EP(&r, 0).url_mark.col, 19); /* a quoted scalar: its first character */
    assert_string_equal(EP(&r, 1).name, "backup");
    assert_string_equal(EP(&r, 1).url, "http://b");
    assert_int_equal(EP(&r, 1).weight, 1);
    assert_int_equal(EP(&r, 1).mark.line, 22);
    /* the list replaces the default list entirely */
    assert_int_equal(r.steps.n, 3);
    assert_true(STEP(&r, 0).percent == 5);
    assert_int_equal(STEP(&r, 0).hold_ms, 24 * 3600000);
    assert_int_equal(STEP(&r, 0).mark.line, 24);
    assert_int_equal(STEP(&r, 0).mark.col, 5);
    assert_true(STEP(&r, 1).percent == 25);
    assert_int_equal(STEP(&r, 1).hold_ms, 2 * 3600000);
    assert_int_equal(STEP(&r, 1).mark.line, 25);
    assert_int_equal(STEP(&r, 1).mark.col, 6);
    assert_true(STEP(&r, 2).percent == 100);
    assert_int_equal(STEP(&r, 2).hold_ms, 0);
    assert_int_equal(STEP(&r, 2).mark.line, 26);
    assert_int_equal(STEP(&r, 2).mark.col, 5);
    assert_int_equal(r.steps_mark.line, 24);
    assert_int_equal(r.rules.n, 1);
    assert_string_equal(RULE(&r, 0).match, "*.internal");
    assert_int_equal(RULE(&r, 0).action, 1);
    assert_string_equal(r.hidden, "still bindable");
    /* the check callbacks ran: once for the root, once per step (3 default + 3 file) */
    assert_int_equal(root_checks, 1);
    assert_int_equal(step_checks, 6);
    co_conf_free(&root_schema, &r);
}

static void test_scalar_spellings(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int enabled;
        double share;
        int64_t count;
    } cases[] = {
        {"name: a\nenabled: yes\nshare: 5\ncount: 1\n", 1, 5, 1},
        {"name: a\nenabled: No\nshare: '5%'\ncount: 50\n", 0, 5, 50},
        {"name: a\nenabled: ON\nshare: 0%\ncount: 7.0\n", 1, 0, 7},
        {"name: a\nenabled: False\nshare: 100%\ncount: \"12\"\n", 0, 100, 12},
        {"name: a\nenabled: true\nshare: 0.5\ncount: 1e1\n", 1, 0.5, 10},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        t_root r;
        load_ok(&r, cases[i].text);
        assert_int_equal(r.enabled, cases[i].enabled);
        assert_true(r.share == cases[i].share);
        assert_int_equal(r.count, cases[i].count);
        co_conf_free(&root_schema, &r);
    }
}

static void test_null_values_keep_defaults(void **state)
{
    (void)state;
    t_root r;
    load_ok(&r, "name: n\nlabel:\ncount: ~\ntimeout: null\nlimits:\nsteps:\nextra:\n");
    assert_string_equal(r.label, "dflt");
    assert_int_equal(r.count, 10);
    assert_int_equal(r.timeout_ms, 30000);
    assert_int_equal(r.has_limits, 0); /* an empty section is not "present" */
    assert_int_equal(r.steps.n, 3);
    /* JSON keeps an explicit null */
    assert_non_null(r.extra);
    assert_true(json_is_null(r.extra));
    co_conf_free(&root_schema, &r);
    /* present_offset: an empty mapping counts as present */
    load_ok(&r, "name: n\nlimits: {}\n");
    assert_int_equal(r.has_limits, 1);
    assert_int_equal(r.limits.idle_ms, 90000);
    co_conf_free(&root_schema, &r);
}

static void test_json_values(void **state)
{
    (void)state;
    const char *text =
        "name: j\n"
        "extra:\n"
        "  obj: {a: 1, b: [true, false, null, ~]}\n"
        "  int: 42\n"
        "  neg: -7\n"
        "  big: 9007199254740993\n"
        "  real: 2.5\n"
        "  exp: 1e3\n"
        "  yes: yes\n"
        "  quoted_num: \"123\"\n"
        "  single: '4.5'\n"
        "  quoted_bool: 'true'\n"
        "  quoted_null: \"null\"\n"
        "  text: hello world\n"
        "  empty: ''\n"
        "  blank:\n"
        "  seq:\n"
        "    - 1\n"
        "    - [x, {y: z}]\n"
        "  block: |\n"
        "    line one\n"
        "    line two\n";
    t_root r;
    load_ok(&r, text);
    json_t *x = r.extra;
    assert_true(json_is_object(x));
    json_t *obj = json_object_get(x, "obj");
    assert_true(json_is_object(obj));
    assert_int_equal(json_integer_value(json_object_get(obj, "a")), 1);
    json_t *b = json_object_get(obj, "b");
    assert_int_equal(json_array_size(b), 4);
    assert_true(json_is_true(json_array_get(b, 0)));
    assert_true(json_is_false(json_array_get(b, 1)));
    assert_true(json_is_null(json_array_get(b, 2)));
    assert_true(json_is_null(json_array_get(b, 3)));
    assert_true(json_is_integer(json_object_get(x, "int")));
    assert_int_equal(json_integer_value(json_object_get(x, "int")), 42);
    assert_int_equal(json_integer_value(json_object_get(x, "neg")), -7);
    assert_true(json_integer_value(json_object_get(x, "big")) == 9007199254740993LL);
    assert_true(json_is_real(json_object_get(x, "real")));
    assert_true(json_real_value(json_object_get(x, "real")) == 2.5);
    assert_true(json_is_number(json_object_get(x, "exp")));
    assert_true(json_number_value(json_object_get(x, "exp")) == 1000.0);
    assert_true(json_is_true(json_object_get(x, "yes")));
    /* quoted scalars stay strings whatever they look like */
    assert_true(json_is_string(json_object_get(x, "quoted_num")));
    assert_string_equal(json_string_value(json_object_get(x, "quoted_num")), "123");
    assert_string_equal(json_string_value(json_object_get(x, "single")), "4.5");
    assert_string_equal(json_string_value(json_object_get(x, "quoted_bool")), "true");
    assert_string_equal(json_string_value(json_object_get(x, "quoted_null")), "null");
    assert_string_equal(json_string_value(json_object_get(x, "text")), "hello world");
    assert_string_equal(json_string_value(json_object_get(x, "empty")), "");
    assert_true(json_is_null(json_object_get(x, "blank")));
    json_t *seq = json_object_get(x, "seq");
    assert_int_equal(json_array_size(seq), 2);
    json_t *inner = json_array_get(seq, 1);
    assert_string_equal(json_string_value(json_array_get(inner, 0)), "x");
    assert_string_equal(json_string_value(json_object_get(json_array_get(inner, 1), "y")), "z");
    assert_string_equal(json_string_value(json_object_get(x, "block")), "line one\nline two\n");
    assert_int_equal(json_object_size(x), 16);
    co_conf_free(&root_schema, &r);

    /* a scalar or a sequence at the top of the field */
    load_ok(&r, "name: j\nextra: 17\n");
    assert_int_equal(json_integer_value(r.extra), 17);
    co_conf_free(&root_schema, &r);
    load_ok(&r, "name: j\nextra: [a, 1]\n");
    assert_int_equal(json_array_size(r.extra), 2);
    co_conf_free(&root_schema, &r);
}

/* Loading twice onto one struct (a base file, then an overlay) replaces
 * every owned value; ASan's leak check fails this test if the old values
 * are not freed. */
static void test_rebind_frees_old_values(void **state)
{
    (void)state;
    t_root r;
    co_diags d = {0};
    load_ok(&r, "name: first\ntags: [a, b]\nextra: {k: [1, 2]}\nendpoints: {e: http://1}\n"
                "limits: {allow: [p, q]}\nrules: [{match: m, action: allow}]\nhidden: h1\n");
    assert_string_equal(r.label, "dflt");
    const char *overlay = "name: second\nlabel: L\ntags: c\nextra: 5\nendpoints: {f: http://2, g: http://3}\n"
                          "limits: {allow: r}\nrules: [{action: deny}]\nhidden: h2\nsteps: [1]\n";
    assert_int_equal(co_conf_load_string(&root_schema, &r, overlay, strlen(overlay), "overlay.yaml", &d), 0);
    assert_int_equal(d.n, 0);
    assert_string_equal(r.name, "second");
    assert_string_equal(r.label, "L");
    assert_int_equal(r.tags.n, 1);
    assert_string_equal(r.tags.v[0], "c");
    assert_int_equal(json_integer_value(r.extra), 5);
    assert_int_equal(r.endpoints.n, 2);
    assert_string_equal(EP(&r, 1).name, "g");
    assert_int_equal(r.limits.allow.n, 1);
    assert_int_equal(r.rules.n, 1);
    assert_null(RULE(&r, 0).match);
    assert_string_equal(r.hidden, "h2");
    assert_int_equal(r.steps.n, 1);
    co_conf_free(&root_schema, &r);
    co_diags_free(&d);
}

/* ---- errors: each with its line:col ------------------------------------------------ */

static void test_scalar_errors(void **state)
{
    (void)state;
    expect_one_error("name: a\ncount: lots\n", 2, 8, "'count' expects an integer", "'lots'");
    expect_one_error("name: a\ncount: 1.5\n", 2, 8, "'count' expects an integer", "'1.5'");
    expect_one_error("name: a\ncount: 0\n", 2, 8, "'count' must be from 1 to 100", "found 0");
    expect_one_error("name: a\ncount: 101\n", 2, 8, "'count' must be from 1 to 100", "found 101");
    expect_one_error("name: a\nany_int: 1e16\n", 2, 10, "'any_int' expects an integer", NULL);
    expect_one_error("name: a\nratio: 1.01\n", 2, 8, "'ratio' must be from 0 to 1", "1.01");
    expect_one_error("name: a\nratio: half\n", 2, 8, "'ratio' expects a number", "'half'");
    expect_one_error("name: a\nfree_num: .inf\n", 2, 11, "'free_num' expects a number", NULL);
    expect_one_error("name: a\nshare: 150%\n", 2, 8, "'share' must be from 0% to 100%", "found 150%");
    expect_one_error("name: a\nshare: -1\n", 2, 8, "'share' must be from 0% to 100%", "found -1");
    expect_one_error("name: a\nshare: lots%\n", 2, 8, "expects a percentage (e.g. 5 or 5%)", "'lots%'");
    expect_one_error("name: a\nband: 0.5%\n", 2, 7, "'band' must be from 1% to 50%", "0.5%");
    expect_one_error("name: a\nenabled: maybe\n", 2, 10, "'enabled' expects true or false", "'maybe'");
    expect_one_error("name: a\nenabled: 'true'\n", 2, 11, "expects true or false", NULL);
    expect_one_error("name: a\ntimeout: 5x\n", 2, 10, "'timeout': '5x' has an unknown unit 'x'", NULL);
    expect_one_error("name: a\ntimeout: 50ms\n", 2, 10, "'timeout' must be from 100ms to 10m", "found 50ms");
    expect_one_error("name: a\ntimeout: 11m\n", 2, 10, "'timeout' must be from 100ms to 10m", "found 11m");
    expect_one_error("name: a\nmax_body: 12 parsecs\n", 2, 11, "'max_body'", "unknown unit");
    expect_one_error("name: a\nmax_body: 2GiB\n", 2, 11, "'max_body' must be from 1KiB to 1GiB", "2GiB");
    expect_one_error("name: a\ncolor: gren\n", 2, 8, "'color' must be one of red, green, blue; found 'gren'",
                     "(did you mean 'green'?)");
    expect_one_error("name: a\ncolor: purple\n", 2, 8, "found 'purple'", NULL);
    expect_one_error("name: a\nlimits:\n  idle: 10ms\n", 3, 9, "'limits.idle' must be from 1s to 1h", NULL);
    /* a wrong node kind for a scalar: located at the value */
    expect_one_error("name: a\ncount: [1]\n", 2, 9, "'count' expects a integer", "found a sequence");
    expect_one_error("name: a\nlabel: {x: 1}\n", 2, 9, "'label' expects a string", "found a mapping");
    /* the message for an unknown enum value does not suggest nonsense */
    t_root r;
    co_diags d;
    assert_int_equal(load(&r, &d, "name: a\ncolor: purple\n"), CO_ECONFIG);
    assert_null(strstr(d.v[0].msg, "did you mean"));
    done(&r, &d);
}

static void test_structure_errors(void **state)
{
    (void)state;
    /* unknown keys: near -> suggestion, far -> the known keys (never hidden or forbidden ones) */
    expect_one_error("name: a\ncuont: 3\n", 2, 1, "unknown key 'cuont' at the top level", "did you mean 'count'?");
    expect_one_error("name: a\nzzzzzzzzzzzz: 3\n", 2, 1, "unknown key 'zzzzzzzzzzzz' at the top level",
                     "(known keys: name, label, count, any_int,");
    {
        t_root r;
        co_diags d;
        assert_int_equal(load(&r, &d, "name: a\nzzzzzzzzzzzz: 3\n"), CO_ECONFIG);
        assert_null(strstr(d.v[0].msg, "hidden"));
        assert_null(strstr(d.v[0].msg, "secret"));
        assert_non_null(strstr(d.v[0].msg, "rules)"));
        done(&r, &d);
    }
    expect_one_error("name: a\nlimits:\n  idel: 5s\n", 3, 3, "unknown key 'idel' in 'limits'", "did you mean 'idle'?");
    expect_one_error("name: a\nendpoints:\n  e: {url: u, wieght: 2}\n", 3, 15,
                     "unknown key 'wieght' in 'endpoints.e'", "did you mean 'weight'?");
    expect_one_error("name: a\nsteps:\n  - {percent: 5, hodl: 1h}\n", 3, 18, "unknown key 'hodl' in 'steps.0'",
                     "did you mean 'hold'?");
    /* forbidden keys: the table's message, at the key */
    expect_one_error("name: a\nsecret: hunter2\n", 2, 1, "'secret' is not allowed here",
                     "name it in secret_env");
    /* required: missing at the top (1:1), missing in a map entry (at its name), null value */
    expect_one_error("count: 3\n", 1, 1, "the required key 'name' is missing", "(what this is called)");
    expect_one_error("name: a\nendpoints:\n  e: {weight: 2}\n", 3, 3,
                     "'endpoints.e' is missing the required key 'url'", "(where the endpoint listens)");
    expect_one_error("name: a\nendpoints:\n  e:\n", 3, 3, "'endpoints.e' is missing the required key 'url'", NULL);
    expect_one_error("name:\ncount: 3\n", 1, 1, "'name' needs a value", NULL);
    /* nonempty */
    expect_one_error("name: ''\n", 1, 8, "'name' must not be empty", NULL);
    expect_one_error("name: a\nhosts: []\n", 2, 1, /* an empty collection: at its key */ "'hosts' must not be empty", NULL);
    expect_one_error("name: a\nendpoints: {}\n", 2, 1, "'endpoints' must not be empty", NULL);
    expect_one_error("name: a\nendpoints: {e: ''}\n", 2, 17, "'endpoints.e.url' must not be empty", NULL);
    /* wrong collection kinds */
    expect_one_error("name: a\nlimits: 5\n", 2, 9, "'limits' expects a mapping", "found a scalar");
    expect_one_error("name: a\nendpoints: [a, b]\n", 2, 1, "'endpoints' expects a mapping of named entries",
                     "found a sequence");
    expect_one_error("name: a\nsteps: {a: 1}\n", 2, 1, "'steps' expects a sequence", "found a mapping");
    expect_one_error("name: a\nsteps: 5\n", 2, 1, "'steps' expects a sequence", "found a scalar");
    expect_one_error("name: a\ntags: {a: 1}\n", 2, 8, "'tags' expects a list of strings", "found a mapping");
    expect_one_error("name: a\ntags: [a, [b], c]\n", 2, 12, "'tags' items must be strings", "found a sequence");
    expect_one_error("name: a\nendpoints:\n  e: [1]\n", 3, 3, "'endpoints.e' expects a mapping", "a sequence");
    expect_one_error("name: a\nsteps:\n  - [1]\n", 3, 6, "'steps.0' expects a mapping", "a sequence");
    /* shorthand cannot carry another required key */
    expect_one_error("name: a\nrules: ['*.x']\n", 2, 10, "'rules.0' needs 'action'; write it as a mapping", NULL);
    /* a list item's own errors are located inside it */
    expect_one_error("name: a\nsteps:\n  - 5\n  - {percent: 10, hold: 1x}\n", 4, 25, "'steps.1.hold'",
                     "unknown unit");
    {
        /* the refused value leaves the item's zero, which the checks then see */
        t_root r;
        co_diags d;
        assert_int_equal(load(&r, &d, "name: a\nsteps: [5, 200]\n"), CO_ECONFIG);
        expect_diag(&d, 2, 12, "'steps.1.percent' must be from 0% to 100%", "found 200");
        expect_diag(&d, 2, 12, "a step of 0% sends nothing", NULL);
        assert_int_equal(d.n, 3);
        done(&r, &d);
    }
    /* the file itself */
    expect_one_error("- a\n- b\n", 1, 3, "the file must be a mapping of keys", "found a sequence");
    expect_one_error("just text\n", 1, 1, "the file must be a mapping of keys", "found a scalar");
    expect_one_error("name: a\n[x]: 1\n", 2, 2, "keys in 'the file' must be plain names", NULL);
}

static void test_yaml_syntax_errors(void **state)
{
    (void)state;
    t_root r;
    co_diags d;
    assert_int_equal(load(&r, &d, "name: a\ncount: [1, 2\nlabel: x\n"), CO_ECONFIG);
    assert_true(d.n >= 1);
    assert_non_null(strstr(d.v[0].msg, "YAML syntax error"));
    assert_string_equal(d.v[0].file, "t.yaml");
    assert_true(d.v[0].line >= 2);
    /* nothing is bound from a document that does not parse */
    assert_null(r.name);
    done(&r, &d);
    assert_int_equal(load(&r, &d, "name: a\nname: b\n"), CO_ECONFIG);
    expect_diag(&d, 2, 1, "duplicate key", NULL);
    done(&r, &d);
    assert_int_equal(load(&r, &d, "name: a\n\tcount: 1\n"), CO_ECONFIG);
    assert_non_null(strstr(d.v[0].msg, "YAML syntax error"));
    assert_true(d.v[0].line >= 1 && d.v[0].line <= 2);
    done(&r, &d);
}

static void test_every_error_is_reported(void **state)
{
    (void)state;
    const char *text =
        "count: 0\n"                              /* 1: bound */
        "colr: red\n"                             /* 2: unknown */
        "enabled: 2\n"                            /* 3: bool */
        "secret: x\n"                             /* 4: forbidden */
        "limits: {idle: 1d, max_body: huge}\n"    /* 5: two */
        "endpoints:\n"
        "  a: {url: http://a, weight: 11}\n"      /* 7: bound */
        "  b: {}\n"                               /* 8: required */
        "steps:\n"
        "  - 50\n"
        "  - 0\n"                                 /* 11: step check + rise check */
        "  - {percent: 20, hold: -1s}\n";         /* 12: duration; 20 <= 0 is fine, but follows 0 */
    t_root r;
    co_diags d;
    root_checks = 0;
    assert_int_equal(load(&r, &d, text), CO_ECONFIG);
    expect_diag(&d, 1, 8, "'count' must be from 1 to 100", NULL);
    expect_diag(&d, 2, 1, "unknown key 'colr'", "did you mean 'color'?");
    expect_diag(&d, 3, 10, "'enabled' expects true or false", "'2'");
    expect_diag(&d, 4, 1, "'secret' is not allowed here", NULL);
    expect_diag(&d, 5, 16, "'limits.idle' must be from 1s to 1h", "1d");
    expect_diag(&d, 5, 30, "'limits.max_body'", "'huge'");
    expect_diag(&d, 7, 30, "'endpoints.a.weight' must be from 1 to 10", NULL);
    expect_diag(&d, 8, 3, "'endpoints.b' is missing the required key 'url'", NULL);
    expect_diag(&d, 11, 5, "a step of 0% sends nothing", NULL);   /* item check */
    expect_diag(&d, 11, 5, "step percents must rise: 0% follows 50%", NULL); /* root check */
    expect_diag(&d, 12, 25, "'steps.2.hold'", "'-1s' is not a duration");
    expect_diag(&d, 1, 1, "the required key 'name' is missing", NULL);
    assert_int_equal(root_checks, 1);
    assert_int_equal(d.n, 12);
    /* the status names the count */
    assert_non_null(strstr(co_error_last(), "12 error(s) in t.yaml"));
    done(&r, &d);
}

static void test_check_callback_location(void **state)
{
    (void)state;
    /* the root check runs after binding, sees the bound values and reports at 1:1 */
    expect_one_error("name: a\nenabled: false\ncount: 60\n", 1, 1, "count above 50 needs enabled", NULL);
    t_root r;
    load_ok(&r, "name: a\nenabled: false\ncount: 50\n");
    co_conf_free(&root_schema, &r);
    /* default steps satisfy the checks; a file's steps are checked against each other */
    expect_one_error("name: a\nsteps: [10, 10]\n", 2, 13, "step percents must rise: 10% follows 10%", NULL);
}

static void test_load_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/co_test_conf_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/c.yaml", dir);
    assert_int_equal(co_write_file(path, "name: f\ncount: 0\n", 17, 0), 0);
    t_root r = {0};
    co_diags d = {0};
    assert_int_equal(co_conf_defaults(&root_schema, &r), 0);
    assert_int_equal(co_conf_load_file(&root_schema, &r, path, &d), CO_ECONFIG);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.v[0].file, path);
    assert_int_equal(d.v[0].line, 2);
    assert_string_equal(r.name, "f");
    done(&r, &d);
    /* a missing file: its own status and one diagnostic naming it */
    char missing[300];
    snprintf(missing, sizeof missing, "%s/missing.yaml", dir);
    memset(&r, 0, sizeof r);
    assert_int_equal(co_conf_load_file(&root_schema, &r, missing, &d), CO_ENOENT);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.v[0].file, missing);
    done(&r, &d);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
}

/* ---- introspection ------------------------------------------------------------------- */

static void test_find(void **state)
{
    (void)state;
    const co_opt *o = co_conf_find(&root_schema, "name");
    assert_non_null(o);
    assert_string_equal(o->name, "name");
    assert_ptr_equal(co_conf_find(&root_schema, "limits"), &root_opts[15]);
    o = co_conf_find(&root_schema, "limits.idle");
    assert_non_null(o);
    assert_ptr_equal(o, &limits_opts[1]);
    /* map and list levels, with or without "*" */
    assert_ptr_equal(co_conf_find(&root_schema, "endpoints.url"), &endpoint_opts[0]);
    assert_ptr_equal(co_conf_find(&root_schema, "endpoints.*.url"), &endpoint_opts[0]);
    assert_ptr_equal(co_conf_find(&root_schema, "steps.*.hold"), &step_opts[1]);
    assert_ptr_equal(co_conf_find(&root_schema, "steps.hold"), &step_opts[1]);
    assert_ptr_equal(co_conf_find(&root_schema, "endpoints"), &root_opts[16]);
    /* hidden and forbidden keys are still in the table */
    assert_non_null(co_conf_find(&root_schema, "hidden"));
    assert_int_equal(co_conf_find(&root_schema, "secret")->type, CO_T_FORBIDDEN);
    /* unknown */
    assert_null(co_conf_find(&root_schema, "nope"));
    assert_null(co_conf_find(&root_schema, "limits.nope"));
    assert_null(co_conf_find(&root_schema, "name.deeper"));
    assert_null(co_conf_find(&root_schema, "steps.*.hold.x"));
    assert_null(co_conf_find(&root_schema, ""));
    assert_null(co_conf_find(&root_schema, "*"));
    assert_null(co_conf_find(&root_schema, "url")); /* not at the top */
}

static void describe(const char *path, const char *expect)
{
    const co_opt *o = co_conf_find(&root_schema, path);
    assert_non_null(o);
    co_buf b;
    co_buf_init(&b, 4096);
    assert_int_equal(co_conf_describe(o, &b), 0);
    assert_string_equal(b.p, expect);
    co_buf_free(&b);
}

static void test_describe(void **state)
{
    (void)state;
    describe("name", "what this is called (required)");
    describe("label", "a label (default: dflt)");
    describe("count", "how many (default: 10; from 1 to 100)");
    describe("any_int", "an unbounded integer");
    describe("share", "a percentage (default: 5%)");
    describe("band", "a bounded percentage (from 1% to 50%)");
    describe("timeout", "request timeout (default: 30s; from 100ms to 10m)");
    describe("limits.idle", "idle connection timeout (default: 90s; from 1s to 1h)");
    describe("color", "a color (default: green; one of: red, green, blue)");
    describe("steps", "rollout steps (default: [10, {percent: 50, hold: 1h}, 100])");
    describe("steps.percent", "share of traffic (required)");
    describe("endpoints.weight", "share of traffic (default: 1; from 1 to 10)");
    describe("rules.action", "what to do (one of: allow, deny; required)");
    /* appends to what the buffer holds */
    co_buf b;
    co_buf_init(&b, 4096);
    assert_int_equal(co_buf_puts(&b, ">> "), 0);
    assert_int_equal(co_conf_describe(co_conf_find(&root_schema, "label"), &b), 0);
    assert_string_equal(b.p, ">> a label (default: dflt)");
    co_buf_free(&b);
    /* a full buffer is an error, not an overflow */
    co_buf_init(&b, 5);
    assert_int_equal(co_conf_describe(co_conf_find(&root_schema, "timeout"), &b), CO_ETOOBIG);
    co_buf_free(&b);
}

static void test_render_template(void **state)
{
    (void)state;
    const char *tmpl =
        "# top\n"
        "# {{help:name}}\n"
        "name: demo\n"
        "limits:\n"
        "    # {{help:limits.idle}}\n"
        "    idle: 90s\n"
        "endpoints:\n"
        "  e:\n"
        "      url: http://e\n"
        "      {{help:endpoints.*.weight}}\n"
        "      weight: 2\n"
        "# {{help:timeout}}";
    co_buf out;
    co_buf_init(&out, 1 << 16);
    assert_int_equal(co_conf_render_template(&root_schema, tmpl, &out), 0);
    const char *expect =
        "# top\n"
        "# what this is called (required)\n"
        "name: demo\n"
        "limits:\n"
        "    # idle connection timeout (default: 90s; from 1s to 1h)\n"
        "    idle: 90s\n"
        "endpoints:\n"
        "  e:\n"
        "      url: http://e\n"
        "      # share of traffic (default: 1; from 1 to 10)\n"
        "      weight: 2\n"
        "# request timeout (default: 30s; from 100ms to 10m)\n";
    assert_string_equal(out.p, expect);
    /* the rendered template is itself a valid document */
    t_root r;
    load_ok(&r, out.p);
    assert_int_equal(EP(&r, 0).weight, 2);
    co_conf_free(&root_schema, &r);
    co_buf_free(&out);

    /* no markers: copied unchanged, with or without a final newline */
    co_buf_init(&out, 1 << 16);
    assert_int_equal(co_conf_render_template(&root_schema, "a: 1\nb: 2", &out), 0);
    assert_string_equal(out.p, "a: 1\nb: 2");
    co_buf_free(&out);

    /* errors */
    co_buf_init(&out, 1 << 16);
    co_error_clear();
    assert_int_equal(co_conf_render_template(&root_schema, "x: 1\n# {{help:no.such.key}}\n", &out), CO_EINVAL);
    assert_non_null(strstr(co_error_last(), "no.such.key"));
    co_buf_reset(&out);
    assert_int_equal(co_conf_render_template(&root_schema, "# {{help:name\n", &out), CO_EINVAL);
    assert_non_null(strstr(co_error_last(), "unterminated"));
    co_buf_free(&out);
}

static void test_render_template_wraps_long_help(void **state)
{
    (void)state;
    typedef struct {
        char *s;
    } w_t;
    static const co_opt w_opts[] = {
        {"s", CO_T_STR, offsetof(w_t, s),
         .help = "a very long help text that goes on and on about what this key does, far past the width of a "
                 "terminal line, so that it must be wrapped onto several comment lines by the template renderer"},
        {.name = NULL},
    };
    static const co_schema w_schema = {.name = "w", .size = sizeof(w_t), .opts = w_opts};
    co_buf out;
    co_buf_init(&out, 1 << 16);
    assert_int_equal(co_conf_render_template(&w_schema, "  {{help:s}}\n", &out), 0);
    int lines = 0;
    char *save = NULL;
    char *copy = strdup(out.p);
    assert_non_null(copy);
    co_buf words;
    co_buf_init(&words, 1 << 16);
    for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        lines++;
        assert_true(strlen(l) <= 80);
        assert_memory_equal(l, "  # ", 4);
        assert_int_not_equal(l[4], ' ');
        assert_int_equal(co_buf_printf(&words, "%s%s", words.len ? " " : "", l + 4), 0);
    }
    assert_true(lines >= 3);
    /* nothing lost: rejoined, the lines give back the help text */
    assert_string_equal(words.p, w_opts[0].help);
    free(copy);
    co_buf_free(&words);
    co_buf_free(&out);
}

static void test_markdown(void **state)
{
    (void)state;
    co_buf md;
    co_buf_init(&md, 1 << 20);
    assert_int_equal(co_conf_markdown(&root_schema, "Test keys", &md), 0);
    const char *p = md.p;
    /* a heading with the title comes first */
    assert_int_equal(p[0], '#');
    const char *eol = strchr(p, '\n');
    assert_non_null(eol);
    assert_non_null(memmem(p, (size_t)(eol - p), " Test keys", 10));
    assert_non_null(strstr(p, "### `(top level)`\n\n| key | type | default | description |\n|---|---|---|---|\n"));
    assert_non_null(strstr(p, "| `name` | string |  | **Required.** what this is called |\n"));
    assert_non_null(strstr(p, "| `count` | integer, from 1 to 100 | `10` | how many |\n"));
    assert_non_null(strstr(p, "| `timeout` | duration, from 100ms to 10m | `30s` | request timeout |\n"));
    assert_non_null(strstr(p, "| `color` | one of: red, green, blue | `green` | a color |\n"));
    assert_non_null(strstr(p, "| `share` | percent | `5%` | a percentage |\n"));
    assert_non_null(strstr(p, "| `tags` | list of strings |  | free-form tags |\n"));
    assert_non_null(strstr(p, "| `extra` | any value |  | anything at all |\n"));
    assert_non_null(strstr(p, "| `limits` | section |  | limits |\n"));
    assert_non_null(strstr(p, "| `endpoints` | map of named entries |  | named endpoints |\n"));
    assert_non_null(strstr(p, "| `steps` | list | `[10, {percent: 50, hold: 1h}, 100]` | rollout steps |\n"));
    /* sub-tables: sections by name, maps with NAME, lists with [] */
    assert_non_null(strstr(p, "\n### `limits`\n"));
    assert_non_null(strstr(p, "\n### `endpoints.NAME`\n"));
    assert_non_null(strstr(p, "| `url` | string |  | **Required.** where the endpoint listens |\n"));
    assert_non_null(strstr(p, "\n### `steps[]`\n"));
    assert_non_null(strstr(p, "| `hold` | duration | `24h` | how long to stay |\n"));
    assert_non_null(strstr(p, "\n### `rules[]`\n"));
    /* sub-tables come after the top level, in table order */
    assert_true(strstr(p, "### `limits`") < strstr(p, "### `endpoints.NAME`"));
    assert_true(strstr(p, "### `endpoints.NAME`") < strstr(p, "### `steps[]`"));
    assert_true(strstr(p, "| `rules` |") < strstr(p, "### `limits`"));
    /* hidden and forbidden keys are not documented */
    assert_null(strstr(p, "`hidden`"));
    assert_null(strstr(p, "`secret`"));
    /* one row per documented key: 19 top + 3 limits + 2 endpoint + 2 step + 2 rule */
    size_t rows = 0;
    for (const char *q = p; (q = strstr(q, "\n| `")); q++)
        rows++;
    assert_int_equal(rows, 19 + 3 + 2 + 2 + 2);
    co_buf_free(&md);

    /* too small a buffer: an error */
    co_buf_init(&md, 100);
    assert_int_equal(co_conf_markdown(&root_schema, "Test keys", &md), CO_ETOOBIG);
    co_buf_free(&md);
}

/* One sub-schema reached by two paths gets one table, and both paths get a
 * heading. */
static void test_markdown_shared_schema(void **state)
{
    (void)state;
    typedef struct {
        t_limits a, b;
    } two_t;
    static const co_opt two_opts[] = {
        {"first", CO_T_SECTION, offsetof(two_t, a), .sub = &limits_schema, .help = "one"},
        {"second", CO_T_SECTION, offsetof(two_t, b), .sub = &limits_schema, .help = "two"},
        {.name = NULL},
    };
    static const co_schema two_schema = {.name = "two", .size = sizeof(two_t), .opts = two_opts};
    co_buf md;
    co_buf_init(&md, 1 << 20);
    assert_int_equal(co_conf_markdown(&two_schema, "Two", &md), 0);
    assert_non_null(strstr(md.p, "### `first`"));
    assert_non_null(strstr(md.p, "### `second`"));
    size_t rows = 0;
    for (const char *q = md.p; (q = strstr(q, "| `idle` |")); q++)
        rows++;
    assert_int_equal(rows, 1);
    /* the second heading points at the first table */
    assert_non_null(strstr(strstr(md.p, "### `second`"), "`first`"));
    co_buf_free(&md);
}

static void test_enum_helpers(void **state)
{
    (void)state;
    assert_int_equal(co_enum_index(colors, "red"), 0);
    assert_int_equal(co_enum_index(colors, "blue"), 2);
    assert_int_equal(co_enum_index(colors, "Blue"), -1);
    assert_int_equal(co_enum_index(colors, ""), -1);
    assert_int_equal(co_enum_index(NULL, "red"), -1);
    assert_string_equal(co_enum_name(colors, 1), "green");
    assert_string_equal(co_enum_name(colors, 3), "?");
    assert_string_equal(co_enum_name(colors, -1), "?");
    assert_string_equal(co_enum_name(NULL, 0), "?");
}

/* ---- odd inputs ---------------------------------------------------------------------- */

static void test_empty_documents(void **state)
{
    (void)state;
    static const char *const empties[] = {"", "\n\n", "# only a comment\n", "---\n", "~\n", "---\n...\n"};
    for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++) {
        t_root r;
        co_diags d;
        assert_int_equal(load(&r, &d, empties[i]), CO_ECONFIG);
        /* only the required key is missing; the defaults stand */
        if (d.n != 1) {
            co_diags_print(&d, stderr);
            fail_msg("empty document %zu: %zu diagnostics", i, d.n);
        }
        expect_diag(&d, 1, 1, "the required key 'name' is missing", NULL);
        assert_string_equal(r.label, "dflt");
        done(&r, &d);
    }
}

static void test_odd_but_valid_yaml(void **state)
{
    (void)state;
    t_root r;
    /* tags, flow inside block, block inside flow-free nesting, comments, document markers, CRLF */
    load_ok(&r, "%YAML 1.2\n---\nname: !!str 123\ncount: !!int 7\n"
                "tags: [a, 'b c', \"d\\te\"]  # trailing comment\n"
                "endpoints:\n  e: {url: &u 'http://x'}\n"
                "limits: {allow: [p,\n    q]}\n...\n");
    assert_string_equal(r.name, "123");
    assert_int_equal(r.count, 7);
    assert_int_equal(r.tags.n, 3);
    assert_string_equal(r.tags.v[2], "d\te");
    assert_string_equal(EP(&r, 0).url, "http://x");
    assert_int_equal(r.limits.allow.n, 2);
    co_conf_free(&root_schema, &r);
    load_ok(&r, "name: crlf\r\ncount: 3\r\ntags:\r\n  - x\r\n");
    assert_string_equal(r.name, "crlf");
    assert_int_equal(r.count, 3);
    assert_string_equal(r.tags.v[0], "x");
    co_conf_free(&root_schema, &r);
    /* unicode is kept byte for byte; columns count characters */
    load_ok(&r, "label: \"h\xc3\xa9llo \xe2\x9c\x93\"\nname: \xe6\x97\xa5\xe6\x9c\xac\n");
    assert_string_equal(r.label, "h\xc3\xa9llo \xe2\x9c\x93");
    assert_string_equal(r.name, "\xe6\x97\xa5\xe6\x9c\xac");
    co_conf_free(&root_schema, &r);
}

/* An alias stands for the anchored node: `b: *x` means the value anchored
 * as &x, not the text "x". */
static void test_anchors_and_aliases(void **state)
{
    (void)state;
    const char *text =
        "name: &n service-a\n"
        "label: *n\n"
        "tags: [*n, other]\n"
        "extra: {copy: *n}\n"
        "endpoints:\n"
        "  e: {url: &u 'http://x', weight: 2}\n"
        "  f: {url: *u}\n";
    t_root r;
    co_diags d;
    int rc = load(&r, &d, text);
    if (rc != 0) {
        co_diags_print(&d, stderr);
        done(&r, &d);
        fail_msg("a file with anchors and aliases was refused");
    }
    char got[512];
    snprintf(got, sizeof got, "label=%s tags[0]=%s extra.copy=%s endpoints.f.url=%s", r.label,
             r.tags.n ? r.tags.v[0] : "-", json_string_value(json_object_get(r.extra, "copy")),
             r.endpoints.n > 1 ? EP(&r, 1).url : "-");
    done(&r, &d);
    assert_string_equal(got, "label=service-a tags[0]=service-a extra.copy=service-a endpoints.f.url=http://x");
}

static void test_alias_expansion_is_bounded(void **state)
{
    (void)state;
    /* a "billion laughs" document must not take the process down, whatever
     * the engine decides about aliases */
    const char *text =
        "name: lol\n"
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
        "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
        "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
        "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
        "extra: [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n";
    t_root r;
    co_diags d;
    int rc = load(&r, &d, text);
    assert_int_equal(rc, CO_ECONFIG);
    /* refused as a whole, before any expansion, with a message that says why */
    assert_int_equal(d.n, 1);
    assert_non_null(strstr(d.v[0].msg, "aliases expand to more than"));
    done(&r, &d);
}

static void test_deep_nesting(void **state)
{
    (void)state;
    /* moderately deep JSON binds */
    co_buf b;
    co_buf_init(&b, 1 << 20);
    assert_int_equal(co_buf_puts(&b, "name: deep\nextra: "), 0);
    for (int i = 0; i < 40; i++)
        assert_int_equal(co_buf_puts(&b, "{k: "), 0);
    assert_int_equal(co_buf_puts(&b, "[leaf]"), 0);
    for (int i = 0; i < 40; i++)
        assert_int_equal(co_buf_puts(&b, "}"), 0);
    assert_int_equal(co_buf_puts(&b, "\n"), 0);
    t_root r;
    load_ok(&r, b.p);
    json_t *j = r.extra;
    for (int i = 0; i < 40; i++)
        j = json_object_get(j, "k");
    assert_string_equal(json_string_value(json_array_get(j, 0)), "leaf");
    co_conf_free(&root_schema, &r);
    co_buf_free(&b);

    /* very deep flow and block nesting: an error, no crash */
    co_buf_init(&b, 1 << 22);
    assert_int_equal(co_buf_puts(&b, "name: deep\nextra: "), 0);
    for (int i = 0; i < 100000; i++)
        assert_int_equal(co_buf_puts(&b, "["), 0);
    for (int i = 0; i < 100000; i++)
        assert_int_equal(co_buf_puts(&b, "]"), 0);
    co_diags d;
    assert_int_equal(load(&r, &d, b.p), CO_ECONFIG);
    assert_non_null(strstr(d.v[0].msg, "YAML syntax error"));
    assert_int_equal(d.v[0].line, 2);
    done(&r, &d);
    co_buf_reset(&b);
    assert_int_equal(co_buf_puts(&b, "name: deep\nextra:\n"), 0);
    for (int i = 0; i < 2000; i++)
        assert_int_equal(co_buf_printf(&b, "%*s- \n", 2 * i, ""), 0);
    assert_int_equal(load(&r, &d, b.p), CO_ECONFIG);
    assert_true(d.n >= 1);
    done(&r, &d);
    co_buf_free(&b);
}

static void test_huge_values(void **state)
{
    (void)state;
    size_t n = 1 << 20;
    char *text = malloc(n + 64);
    assert_non_null(text);
    int off = sprintf(text, "name: \"");
    for (size_t i = 0; i < n; i++)
        text[off + i] = (char)('a' + i % 26);
    strcpy(text + off + n, "\"\ncount: 5\n");
    t_root r;
    load_ok(&r, text);
    assert_int_equal(strlen(r.name), n);
    assert_memory_equal(r.name, text + off, n);
    assert_int_equal(r.count, 5);
    co_conf_free(&root_schema, &r);

    /* a huge value where a number is expected: an error with a bounded message */
    off = sprintf(text, "name: a\ncount: ");
    memset(text + off, '9', n);
    strcpy(text + off + n, "\n");
    co_diags d;
    assert_int_equal(load(&r, &d, text), CO_ECONFIG);
    assert_int_equal(d.n, 1);
    expect_diag(&d, 2, 8, "'count' expects an integer", NULL);
    assert_true(strlen(d.v[0].msg) < 2048);
    done(&r, &d);

    /* a huge key: unknown, reported, not echoed in full */
    memset(text, 'k', n);
    strcpy(text + n, ": 1\nname: a\n");
    assert_int_equal(load(&r, &d, text), CO_ECONFIG);
    assert_int_equal(d.n, 1);
    expect_diag(&d, 1, 1, "unknown key 'kkkk", NULL);
    assert_true(strlen(d.v[0].msg) < 2048);
    done(&r, &d);
    free(text);

    /* many entries */
    co_buf b;
    co_buf_init(&b, 1 << 22);
    assert_int_equal(co_buf_puts(&b, "name: many\nendpoints:\n"), 0);
    for (int i = 0; i < 5000; i++)
        assert_int_equal(co_buf_printf(&b, "  e%d: http://h%d\n", i, i), 0);
    load_ok(&r, b.p);
    assert_int_equal(r.endpoints.n, 5000);
    assert_string_equal(EP(&r, 4999).name, "e4999");
    assert_int_equal(EP(&r, 4999).mark.line, 5002);
    co_conf_free(&root_schema, &r);
    co_buf_free(&b);
}

/* Bytes that are not UTF-8 (or a stray NUL) must not silently end the
 * document: either every key after them is bound, or the load fails. */
static void test_bad_bytes_not_silently_dropped(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        const char *text;
        size_t len;
    } cases[] = {
        {"0xff in the middle of a value", "name: a\nlabel: x\xffy\ncount: 7\n", 29},
        {"0xff starting a value", "name: a\nlabel: \xff\xfe bad\ncount: 7\n", 31},
        {"0x80 starting a value", "name: a\nlabel: \x80y\ncount: 7\n", 27},
        {"overlong encoding starting a value", "name: a\nlabel: \xc0\xafy\ncount: 7\n", 28},
        {"a NUL byte", "name: a\nlabel: x\0y\ncount: 7\n", 28},
        {"a UTF-16 byte order mark", "\xff\xfen\0a\0m\0e\0:\0 \0a\0\n\0", 20},
    };
    char failures[2048] = "";
    size_t used = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        t_root r;
        co_diags d;
        int rc = load_n(&r, &d, cases[i].text, cases[i].len);
        int sensible = (rc == CO_ECONFIG && d.n > 0) || (rc == 0 && r.count == 7);
        if (rc == CO_ECONFIG) {
            /* and the error says what is wrong, not "name is missing" */
            int says = 0;
            for (size_t k = 0; k < d.n; k++)
                says |= !strstr(d.v[k].msg, "required key");
            sensible = sensible && says;
        }
        if (!sensible && used < sizeof failures)
            used += (size_t)snprintf(failures + used, sizeof failures - used, "\n  %s: %s, %zu diagnostic(s)%s%s, count=%lld",
                                     cases[i].what, co_err_name(rc), d.n, d.n ? ": " : "", d.n ? d.v[0].msg : "",
                                     (long long)r.count);
        done(&r, &d);
    }
    if (used)
        fail_msg("inputs silently cut short:%s", failures);
}

/* A second YAML document in the file must not be silently ignored. */
static void test_multiple_documents(void **state)
{
    (void)state;
    t_root r;
    co_diags d;
    int rc = load(&r, &d, "name: a\n---\ncount: 7\n");
    int sensible = (rc == CO_ECONFIG && d.n > 0) || (rc == 0 && r.count == 7);
    int count = (int)r.count;
    done(&r, &d);
    if (!sensible)
        fail_msg("second document ignored: %s, count=%d", co_err_name(rc), count);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_bad_default_in_table),
        cmocka_unit_test(test_bind_every_type),
        cmocka_unit_test(test_scalar_spellings),
        cmocka_unit_test(test_null_values_keep_defaults),
        cmocka_unit_test(test_json_values),
        cmocka_unit_test(test_rebind_frees_old_values),
        cmocka_unit_test(test_scalar_errors),
        cmocka_unit_test(test_structure_errors),
        cmocka_unit_test(test_yaml_syntax_errors),
        cmocka_unit_test(test_every_error_is_reported),
        cmocka_unit_test(test_check_callback_location),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_render_template),
        cmocka_unit_test(test_render_template_wraps_long_help),
        cmocka_unit_test(test_markdown),
        cmocka_unit_test(test_markdown_shared_schema),
        cmocka_unit_test(test_enum_helpers),
        cmocka_unit_test(test_empty_documents),
        cmocka_unit_test(test_odd_but_valid_yaml),
        cmocka_unit_test(test_alias_expansion_is_bounded),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_huge_values),
        /* regressions found by the first review of the engine */
        cmocka_unit_test(test_default_marks_are_zero),
        cmocka_unit_test(test_anchors_and_aliases),
        cmocka_unit_test(test_bad_bytes_not_silently_dropped),
        cmocka_unit_test(test_multiple_documents),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
