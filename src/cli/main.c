/* The command table: every subcommand of `cutover`, in the order `--help`
 * lists them. Each command lives in its own cmd_<name>.c. */
#include <signal.h>
#include <stdio.h>

#include "cli.h"

extern const co_cli_cmd co_cmd_init;
extern const co_cli_cmd co_cmd_check;
extern const co_cli_cmd co_cmd_config;
extern const co_cli_cmd co_cmd_sim;
extern const co_cli_cmd co_cmd_serve;
extern const co_cli_cmd co_cmd_status;
extern const co_cli_cmd co_cmd_mode;
extern const co_cli_cmd co_cmd_rollback;
extern const co_cli_cmd co_cmd_pairs;
extern const co_cli_cmd co_cmd_report;
extern const co_cli_cmd co_cmd_eval;
extern const co_cli_cmd co_cmd_rollout;

const co_cli_cmd *const co_cli_commands[] = {
    &co_cmd_init,
    &co_cmd_check,
    &co_cmd_config,
    &co_cmd_eval,
    &co_cmd_serve,
    &co_cmd_status,
    &co_cmd_mode,
    &co_cmd_rollout,
    &co_cmd_rollback,
    &co_cmd_pairs,
    &co_cmd_report,
    &co_cmd_sim,
    NULL,
};

#ifndef CO_CLI_NO_MAIN
int main(int argc, char **argv)
{
    /* a client that hangs up must not kill the gateway */
    signal(SIGPIPE, SIG_IGN);
    return co_cli_main(argc, argv, stdout, stderr);
}
#endif
