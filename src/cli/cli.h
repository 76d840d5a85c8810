/* The CLI framework: each src/cli/cmd_<name>.c defines one co_cli_cmd; main.c
 * holds the command table. Option parsing, --help, "did you mean" for unknown
 * commands and options, and exit codes live here, so commands only do work. */
#ifndef CUTOVER_CLI_H
#define CUTOVER_CLI_H

#include <stdio.h>

/* Exit codes shared by every command. */
enum {
    CO_EXIT_OK = 0,
    CO_EXIT_FAIL = 1,         /* the command ran and the answer is "no" (errors found, gate failed) */
    CO_EXIT_USAGE = 2,        /* usage or input error */
    CO_EXIT_INCONCLUSIVE = 3, /* eval/rollout: not enough evidence */
};

typedef struct co_cli_opt {
    const char *name;   /* long name without dashes: "config" */
    char short_name;    /* 'c', or 0 */
    const char *arg;    /* metavar ("FILE") when it takes a value; NULL for a flag */
    const char *help;
} co_cli_opt;

#define CO_CLI_MAX_OPTS 32

typedef struct co_cli_ctx {
    const struct co_cli_cmd *cmd;
    int argc;                          /* positional arguments only */
    char **argv;
    const char *values[CO_CLI_MAX_OPTS];  /* by index in cmd->opts; flags: "1" */
    FILE *out, *err;                   /* stdout/stderr (tests swap them) */
} co_cli_ctx;

typedef struct co_cli_cmd {
    const char *name;
    const char *summary;      /* one line for `cutover --help` */
    const char *usage;        /* "cutover check [-c FILE]" */
    const char *details;      /* paragraph(s) for `cutover help CMD`; may be NULL */
    const co_cli_opt *opts;   /* terminated by {NULL}; may be NULL */
    int min_args, max_args;   /* positional arguments; max -1 = any */
    int (*run)(co_cli_ctx *ctx);
} co_cli_cmd;

/* The value of an option (NULL when absent); flags give "1". */
const char *co_cli_get(const co_cli_ctx *ctx, const char *name);
int co_cli_flag(const co_cli_ctx *ctx, const char *name);
/* The -c/--config value, else $CUTOVER_CONFIG, else "cutover.yaml". */
const char *co_cli_config_path(const co_cli_ctx *ctx);
/* Parses an integer option with bounds; prints an error and returns
 * CO_EXIT_USAGE on bad input, 0 otherwise (def when absent). */
int co_cli_int(co_cli_ctx *ctx, const char *name, long long def, long long min, long long max,
               long long *out);

/* Entry point used by main() and by tests: dispatches argv[1] (argv[0] is the
 * program name) with the given output streams. Returns the exit code. */
int co_cli_main(int argc, char **argv, FILE *out, FILE *err);

/* The command table (main.c). */
extern const co_cli_cmd *const co_cli_commands[];

#endif
