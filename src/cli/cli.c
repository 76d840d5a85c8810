/* The CLI framework: dispatch by command name, option parsing from each
 * command's option table, generated help, and "did you mean" suggestions. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cutover/util.h"

static const co_cli_opt help_opt = {"help", 'h', NULL, "show this help"};

static size_t opt_count(const co_cli_cmd *cmd)
{
    size_t n = 0;
    while (cmd->opts && cmd->opts[n].name)
        n++;
    return n;
}

static int find_opt(const co_cli_cmd *cmd, const char *name, size_t len)
{
    for (size_t i = 0; cmd->opts && cmd->opts[i].name; i++)
        if (strlen(cmd->opts[i].name) == len && !strncmp(cmd->opts[i].name, name, len))
            return (int)i;
    return -1;
}

static int find_short(const co_cli_cmd *cmd, char c)
{
    for (size_t i = 0; cmd->opts && cmd->opts[i].name; i++)
        if (cmd->opts[i].short_name == c)
            return (int)i;
    return -1;
}

const char *co_cli_get(const co_cli_ctx *ctx, const char *name)
{
    int i = find_opt(ctx->cmd, name, strlen(name));
    return i >= 0 ? ctx->values[i] : NULL;
}

int co_cli_flag(const co_cli_ctx *ctx, const char *name) { return co_cli_get(ctx, name) != NULL; }

const char *co_cli_config_path(const co_cli_ctx *ctx)
{
    const char *c = co_cli_get(ctx, "config");
    if (c)
        return c;
    c = getenv("CUTOVER_CONFIG");
    return c && *c ? c : "cutover.yaml";
}

int co_cli_int(co_cli_ctx *ctx, const char *name, long long def, long long min, long long max, long long *out)
{
    const char *v = co_cli_get(ctx, name);
    *out = def;
    if (!v)
        return 0;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (end == v || *end || errno || n < min || n > max) {
        fprintf(ctx->err, "cutover %s: --%s must be a whole number from %lld to %lld, got '%s'\n",
                ctx->cmd->name, name, min, max, v);
        return CO_EXIT_USAGE;
    }
    *out = n;
    return 0;
}

static void print_cmd_help(const co_cli_cmd *cmd, FILE *out)
{
    fprintf(out, "usage: %s\n\n%s\n", cmd->usage, cmd->summary);
    if (cmd->details)
        fprintf(out, "\n%s\n", cmd->details);
    fprintf(out, "\noptions:\n");
    size_t n = opt_count(cmd);
    for (size_t i = 0; i <= n; i++) {
        const co_cli_opt *o = i < n ? &cmd->opts[i] : &help_opt;
        char lhs[64];
        if (o->short_name)
            snprintf(lhs, sizeof lhs, "-%c, --%s%s%s", o->short_name, o->name, o->arg ? " " : "",
                     o->arg ? o->arg : "");
        else
            snprintf(lhs, sizeof lhs, "    --%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        fprintf(out, "  %-28s %s\n", lhs, o->help);
    }
}

static void print_main_help(FILE *out)
{
    fprintf(out,
            "usage: cutover COMMAND [options]\n\n"
            "cutover takes a production LLM workload from one model to another without breaking it:\n"
            "baseline, evaluate, shadow, canary, promote, and roll back in under a second.\n\n"
            "commands:\n");
    for (const co_cli_cmd *const *c = co_cli_commands; *c; c++)
        fprintf(out, "  %-12s %s\n", (*c)->name, (*c)->summary);
    fprintf(out, "\n'cutover help COMMAND' or 'cutover COMMAND --help' shows a command's options.\n"
                 "cutover %s\n",
            CO_VERSION);
}

static const co_cli_cmd *find_cmd(const char *name)
{
    for (const co_cli_cmd *const *c = co_cli_commands; *c; c++)
        if (strcmp((*c)->name, name) == 0)
            return *c;
    return NULL;
}

static void suggest_cmd(const char *name, FILE *err)
{
    const char *names[64];
    size_t n = 0;
    for (const co_cli_cmd *const *c = co_cli_commands; *c && n < 63; c++)
        names[n++] = (*c)->name;
    names[n] = NULL;
    const char *near = co_suggest(name, names);
    fprintf(err, "cutover: unknown command '%s'", name);
    if (near)
        fprintf(err, "; did you mean '%s'?\n", near);
    else
        fprintf(err, "; 'cutover --help' lists the commands\n");
}

static int unknown_opt(const co_cli_cmd *cmd, const char *arg, FILE *err)
{
    const char *names[CO_CLI_MAX_OPTS + 2];
    size_t n = 0;
    for (size_t i = 0; cmd->opts && cmd->opts[i].name && n < CO_CLI_MAX_OPTS; i++)
        names[n++] = cmd->opts[i].name;
    names[n++] = "help";
    names[n] = NULL;
    const char *word = arg;
    while (*word == '-')
        word++;
    char buf[64];
    snprintf(buf, sizeof buf, "%.*s", (int)strcspn(word, "="), word);
    const char *near = co_suggest(buf, names);
    fprintf(err, "cutover %s: unknown option '%s'", cmd->name, arg);
    if (near)
        fprintf(err, "; did you mean '--%s'?\n", near);
    else
        fprintf(err, "; 'cutover %s --help' lists the options\n", cmd->name);
    return CO_EXIT_USAGE;
}

static int run_cmd(const co_cli_cmd *cmd, int argc, char **argv, FILE *out, FILE *err)
{
    co_cli_ctx ctx = {.cmd = cmd, .out = out, .err = err};
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    int npos = 0, rc = CO_EXIT_OK, only_pos = 0;
    if (!pos) {
        fprintf(err, "cutover: out of memory\n");
        return CO_EXIT_FAIL;
    }
    for (int i = 0; i < argc; i++) {
        char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == '\0') {
            pos[npos++] = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            only_pos = 1;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            print_cmd_help(cmd, out);
            goto done;
        }
        int idx;
        const char *inline_val = NULL;
        if (a[1] == '-') {
            const char *name = a + 2;
            const char *eq = strchr(name, '=');
            idx = find_opt(cmd, name, eq ? (size_t)(eq - name) : strlen(name));
            if (eq)
                inline_val = eq + 1;
        } else {
            idx = a[2] == '\0' ? find_short(cmd, a[1]) : -1;
        }
        if (idx < 0) {
            rc = unknown_opt(cmd, a, err);
            goto done;
        }
        const co_cli_opt *o = &cmd->opts[idx];
        if (!o->arg) {
            if (inline_val) {
                fprintf(err, "cutover %s: --%s takes no value\n", cmd->name, o->name);
                rc = CO_EXIT_USAGE;
                goto done;
            }
            ctx.values[idx] = "1";
            continue;
        }
        if (!inline_val) {
            if (i + 1 >= argc) {
                fprintf(err, "cutover %s: --%s needs a value (%s)\n", cmd->name, o->name, o->arg);
                rc = CO_EXIT_USAGE;
                goto done;
            }
            inline_val = argv[++i];
        }
        ctx.values[idx] = inline_val;
    }
    if (npos < cmd->min_args || (cmd->max_args >= 0 && npos > cmd->max_args)) {
        fprintf(err, "cutover %s: %s\nusage: %s\n", cmd->name,
                npos < cmd->min_args ? "missing argument" : "too many arguments", cmd->usage);
        rc = CO_EXIT_USAGE;
        goto done;
    }
    ctx.argc = npos;
    ctx.argv = pos;
    rc = cmd->run(&ctx);
done:
    free(pos);
    return rc;
}

int co_cli_main(int argc, char **argv, FILE *out, FILE *err)
{
    if (argc < 2) {
        print_main_help(err);
        return CO_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h")) {
        print_main_help(out);
        return CO_EXIT_OK;
    }
    if (!strcmp(name, "--version") || !strcmp(name, "-V") || !strcmp(name, "version")) {
        fprintf(out, "cutover %s\n", CO_VERSION);
        return CO_EXIT_OK;
    }
    if (!strcmp(name, "help")) {
        if (argc < 3) {
            print_main_help(out);
            return CO_EXIT_OK;
        }
        const co_cli_cmd *cmd = find_cmd(argv[2]);
        if (!cmd) {
            suggest_cmd(argv[2], err);
            return CO_EXIT_USAGE;
        }
        print_cmd_help(cmd, out);
        return CO_EXIT_OK;
    }
    if (name[0] == '-') {
        fprintf(err, "cutover: unknown option '%s'; options go after the command ('cutover --help')\n", name);
        return CO_EXIT_USAGE;
    }
    const co_cli_cmd *cmd = find_cmd(name);
    if (!cmd) {
        suggest_cmd(name, err);
        return CO_EXIT_USAGE;
    }
    return run_cmd(cmd, argc - 2, argv + 2, out, err);
}
