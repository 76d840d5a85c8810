/* `cutover eval`: runs a golden set through the incumbent and/or the
 * candidate of each workload (the runner, eval.h), then compares the arms
 * per workload (compare.h), prints the gate verdicts, writes the reports
 * (report.h) and exits 0 pass / 1 a gate failed / 3 inconclusive / 2 usage
 * or input error. `--compare RUN_A [RUN_B]` re-renders stored runs without
 * calling any model. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_control.h"
#include "cutover/compare.h"
#include "cutover/eval.h"
#include "cutover/report.h"
#include "cutover/suite.h"
#include "cutover/util.h"

static const co_cli_opt opts[] = {
    {"config", 'c', "FILE", "config file (default: $CUTOVER_CONFIG or cutover.yaml)"},
    {"suite", 's', "PATH", "eval set: a file or a directory (native, promptfoo config or OpenAI-evals JSONL)"},
    {"arm", 'a', "ARM", "incumbent, candidate or both (default both)"},
    {"workload", 'w', "NAME", "only the cases of this workload"},
    {"concurrency", 'j', "N", "model calls in flight, both arms together (default: eval.concurrency, 16)"},
    {"repeat", 'r', "K", "call each case K times per arm (default 1)"},
    {"retries", 0, "N", "retries of a 429/503/529 answer (default: eval.retries, 3)"},
    {"no-cache", 0, NULL, "always call the models (the response cache is neither read nor written)"},
    {"out", 'o', "DIR", "write the reports into DIR"},
    {"format", 'f', "LIST", "reports to write: md,html,json,junit or all (default all)"},
    {"save-baseline", 0, NULL, "store the incumbent's figures per workload as the baseline"},
    {"inconclusive", 0, "AS", "fold an inconclusive verdict into the exit code: fail (1) or pass (0)"},
    {"compare", 0, "RUN_A", "re-render stored runs without calling a model: RUN_A alone, or RUN_A RUN_B"},
    {"quiet", 'q', NULL, "no progress output"},
    {NULL, 0, NULL, NULL},
};

static volatile int interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* ---- progress ------------------------------------------------------------- */

typedef struct prog {
    FILE *err;
    int tty;
    int last_decile;
    int64_t last_line_ms;
    int drawn;
} prog;

static void fmt_eta(char *buf, size_t n, int64_t ms)
{
    int64_t s = ms / 1000;
    if (s >= 3600)
        snprintf(buf, n, "%lld:%02lld:%02lld", (long long)(s / 3600), (long long)(s / 60 % 60), (long long)(s % 60));
    else
        snprintf(buf, n, "%lld:%02lld", (long long)(s / 60), (long long)(s % 60));
}

static void arm_rate(char *buf, size_t n, const co_eval_progress *p, int arm)
{
    if (!p->done_arm[arm])
        snprintf(buf, n, "-");
    else
        snprintf(buf, n, "%.1f%%", 100.0 * (double)p->passed_arm[arm] / (double)p->done_arm[arm]);
}

static void on_progress(void *ud, const co_eval_progress *p)
{
    prog *g = ud;
    char eta[32] = "?", inc[16], cand[16];
    if (p->done > 0 && p->done < p->total)
        fmt_eta(eta, sizeof eta,
                (int64_t)((double)p->elapsed_ms / (double)p->done * (double)(p->total - p->done)));
    else if (p->done >= p->total)
        snprintf(eta, sizeof eta, "0:00");
    arm_rate(inc, sizeof inc, p, 0);
    arm_rate(cand, sizeof cand, p, 1);
    if (g->tty) {
        int width = 24, fill = p->total ? (int)((double)width * (double)p->done / (double)p->total) : 0;
        char bar[64];
        for (int i = 0; i < width; i++)
            bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
        bar[width] = '\0';
        fprintf(g->err, "\r\033[K[%s] %zu/%zu  pass: incumbent %s  candidate %s  %zu err  ETA %s", bar, p->done,
                p->total, inc, cand, p->errors, eta);
        g->drawn = 1;
        if (p->final) {
            fputc('\n', g->err);
            g->drawn = 0;
        }
        fflush(g->err);
        return;
    }
    /* plain lines: one per tenth of the run (and at most one per 10 s otherwise) */
    int decile = p->total ? (int)(10 * p->done / p->total) : 10;
    int64_t now = co_now_ms();
    if (!p->final && decile == g->last_decile && now - g->last_line_ms < 10000)
        return;
    if (p->done == 0 && p->total)
        return;
    g->last_decile = decile;
    g->last_line_ms = now;
    fprintf(g->err, "eval: %zu/%zu results, pass incumbent %s candidate %s, %zu error(s), %zu cache hit(s), ETA %s\n",
            p->done, p->total, inc, cand, p->errors, p->cache_hits, eta);
    fflush(g->err);
}

/* ---- after the run: analysis, reports, baselines ------------------------------- */

static int parse_run_id(co_cli_ctx *ctx, const char *s, int64_t *out)
{
    char *end;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || end == s || *end || v <= 0) {
        fprintf(ctx->err, "cutover eval: a run id is a positive whole number, got '%s'\n", s ? s : "");
        return CO_EXIT_USAGE;
    }
    *out = v;
    return 0;
}

static int analyze_and_report(co_cli_ctx *ctx, co_store *st, int64_t run_a, int64_t run_b,
                              const co_compare_opts *copts, const char *outdir, unsigned formats, int save)
{
    co_eval_analysis *a = NULL;
    co_buf sum;
    co_buf_init(&sum, CO_BUF_UNLIMITED);
    int rc = co_eval_analyze(&a, st, run_a, run_b, copts);
    if (rc < 0) {
        fprintf(ctx->err, "cutover eval: cannot compare: %s\n", co_error_last());
        rc = CO_EXIT_USAGE;
        goto done;
    }
    if (co_eval_analysis_summary(&sum, a) < 0) {
        fprintf(ctx->err, "cutover eval: %s\n", co_error_last());
        rc = CO_EXIT_USAGE;
        goto done;
    }
    fputs(sum.p, ctx->out);
    if (sum.len && sum.p[sum.len - 1] != '\n')
        fputc('\n', ctx->out);
    if (outdir) {
        if (co_report_write(a, outdir, formats) < 0) {
            fprintf(ctx->err, "cutover eval: reports: %s\n", co_error_last());
            rc = CO_EXIT_USAGE;
            goto done;
        }
        fprintf(ctx->out, "reports written to %s\n", outdir);
    }
    if (save) {
        if (co_eval_save_baselines(st, a) < 0) {
            fprintf(ctx->err, "cutover eval: saving the baseline: %s\n", co_error_last());
            rc = CO_EXIT_USAGE;
            goto done;
        }
        fprintf(ctx->out, "baseline saved from run %lld\n", (long long)run_a);
    }
    rc = co_eval_analysis_exit_code(a);
done:
    co_eval_analysis_free(a);
    co_buf_free(&sum);
    return rc;
}

/* ---- the command ------------------------------------------------------------------ */

static int run(co_cli_ctx *ctx)
{
    long long conc, repeat, retries;
    int rc;
    if ((rc = co_cli_int(ctx, "concurrency", 0, 1, 4096, &conc)) ||
        (rc = co_cli_int(ctx, "repeat", 1, 1, 1000, &repeat)) ||
        (rc = co_cli_int(ctx, "retries", -1, 0, 100, &retries)))
        return rc;
    unsigned arms = CO_EVAL_BOTH, formats = CO_REPORT_ALL;
    if (co_eval_arms_parse(&arms, co_cli_get(ctx, "arm")) < 0) {
        fprintf(ctx->err, "cutover eval: --%s\n", co_error_last());
        return CO_EXIT_USAGE;
    }
    const char *fmt = co_cli_get(ctx, "format");
    if (fmt && co_report_formats_parse(&formats, fmt) < 0) {
        fprintf(ctx->err, "cutover eval: --format: %s\n", co_error_last());
        return CO_EXIT_USAGE;
    }
    co_compare_opts copts;
    memset(&copts, 0, sizeof copts);
    const char *inc = co_cli_get(ctx, "inconclusive");
    if (inc && !strcmp(inc, "fail"))
        copts.inconclusive_as = 1;
    else if (inc && !strcmp(inc, "pass"))
        copts.inconclusive_as = 2;
    else if (inc) {
        fprintf(ctx->err, "cutover eval: --inconclusive must be fail or pass, not '%s'\n", inc);
        return CO_EXIT_USAGE;
    }
    const char *compare = co_cli_get(ctx, "compare"), *suite_path = co_cli_get(ctx, "suite");
    int save = co_cli_flag(ctx, "save-baseline");
    if (!compare && ctx->argc) {
        fprintf(ctx->err, "cutover eval: unexpected argument '%s'\nusage: %s\n", ctx->argv[0], ctx->cmd->usage);
        return CO_EXIT_USAGE;
    }
    if (!compare && !suite_path) {
        fprintf(ctx->err, "cutover eval: --suite PATH is required (or --compare RUN_A [RUN_B])\nusage: %s\n",
                ctx->cmd->usage);
        return CO_EXIT_USAGE;
    }
    if (compare && suite_path) {
        fprintf(ctx->err, "cutover eval: --compare re-renders stored runs; it takes no --suite\n");
        return CO_EXIT_USAGE;
    }
    if (save && arms == CO_EVAL_CANDIDATE) {
        fprintf(ctx->err, "cutover eval: --save-baseline stores the incumbent's figures; it needs --arm incumbent "
                          "or both\n");
        return CO_EXIT_USAGE;
    }

    co_config *cfg = NULL;
    co_store *st = NULL;
    co_suite *suite = NULL;
    co_diags diags = {0};
    const char *outdir = co_cli_get(ctx, "out");
    rc = co_cli_load_config(ctx, &cfg);
    if (rc) {
        rc = CO_EXIT_USAGE; /* for eval, a bad config is an input error */
        goto done;
    }
    if ((rc = co_cli_open_store(ctx, cfg, &st))) {
        rc = CO_EXIT_USAGE;
        goto done;
    }

    if (compare) {
        int64_t a = 0, b = 0;
        if ((rc = parse_run_id(ctx, compare, &a)) || (ctx->argc && (rc = parse_run_id(ctx, ctx->argv[0], &b))))
            goto done;
        rc = analyze_and_report(ctx, st, a, b, &copts, outdir, formats, save);
        goto done;
    }

    co_assert_opts aopts = {.judge = cfg->eval.judge ? co_eval_judge_placeholder : NULL};
    if ((rc = co_suite_load(&suite, suite_path, &aopts, &diags)) < 0) {
        co_diags_print(&diags, ctx->err);
        if (rc == CO_ECONFIG)
            fprintf(ctx->err, "%zu error(s) in the eval set\n", diags.n);
        else if (!diags.n)
            fprintf(ctx->err, "cutover eval: %s: %s\n", suite_path, co_error_last());
        rc = CO_EXIT_USAGE;
        goto done;
    }
    for (size_t i = 0; i < co_suite_n_warnings(suite); i++)
        fprintf(ctx->err, "warning: %s\n", co_suite_warning(suite, i));

    prog g = {.err = ctx->err, .tty = isatty(fileno(ctx->err)), .last_decile = -1};
    co_eval_opts eo = {
        .suite_path = suite_path,
        .arms = arms,
        .workload = co_cli_get(ctx, "workload"),
        .concurrency = (int)conc,
        .repeat = (int)repeat,
        .no_cache = co_cli_flag(ctx, "no-cache"),
        .retries = (int)retries,
        .progress = co_cli_flag(ctx, "quiet") ? NULL : on_progress,
        .progress_ud = &g,
        .progress_interval_ms = g.tty ? 100 : 500,
        .cancel = &interrupted,
    };
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    interrupted = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    co_eval_summary sum;
    int erc = co_eval_run_suite(&sum, cfg, suite, st, &eo, &diags);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (erc == CO_ECONFIG) {
        co_diags_print(&diags, ctx->err);
        fprintf(ctx->err, "%zu error(s): nothing was run\n", diags.n);
        rc = CO_EXIT_USAGE;
        goto done;
    }
    if (erc < 0) {
        if (g.drawn)
            fputc('\n', ctx->err);
        fprintf(ctx->err, "cutover eval: %s\n", co_error_last());
        if (sum.run_id)
            fprintf(ctx->err, "run %lld stored as failed\n", (long long)sum.run_id);
        rc = interrupted ? 130 : CO_EXIT_USAGE;
        goto done;
    }
    const co_eval_progress *t = &sum.tally;
    fprintf(ctx->out,
            "eval run %lld: %zu result(s) in %.1f s; %zu call(s), %zu cache hit(s), %zu retr%s, %zu error(s)\n",
            (long long)sum.run_id, t->done, (double)t->elapsed_ms / 1000.0, t->calls, t->cache_hits, t->retries,
            t->retries == 1 ? "y" : "ies", t->errors);
    fprintf(ctx->out, "re-render later with: cutover eval --compare %lld\n", (long long)sum.run_id);
    fflush(ctx->out);
    rc = analyze_and_report(ctx, st, sum.run_id, 0, &copts, outdir, formats, save);
done:
    co_diags_free(&diags);
    co_suite_free(suite);
    co_store_close(st);
    co_config_free(cfg);
    return rc;
}

const co_cli_cmd co_cmd_eval = {
    .name = "eval",
    .summary = "run a golden set on the incumbent and the candidate, gate per workload, write reports",
    .usage = "cutover eval --suite PATH [--arm incumbent|candidate|both] [--workload W] [--concurrency N]\n"
             "                    [--repeat K] [--no-cache] [--out DIR] [--format md,html,json,junit]\n"
             "                    [--save-baseline] [--inconclusive fail|pass] [-c FILE]\n"
             "       cutover eval --compare RUN_A [RUN_B] [--out DIR] [--format LIST]",
    .details = "Each case runs on its workload's incumbent and candidate (both at once, through the same\n"
               "provider code as the gateway); answers are cached in the store unless --no-cache. The run\n"
               "is stored: its id is printed, and --compare re-renders it (or compares two runs) without\n"
               "calling any model. --save-baseline keeps the incumbent's pass rate, cost and latency per\n"
               "workload for later candidate-only runs and the rollout's cost forecast.\n"
               "Exit status: 0 every gate passes, 1 a gate failed, 3 inconclusive (more cases needed;\n"
               "--inconclusive folds it), 2 usage or input error (eval-set errors name file:line:col).",
    .opts = opts,
    .min_args = 0,
    .max_args = 1,
    .run = run,
};
