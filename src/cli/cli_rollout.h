/* Shared by `cutover rollout` and `cutover serve` (which runs the rollout
 * controller in the gateway process): the --time-scale option and the
 * controller's log lines. */
#ifndef CUTOVER_CLI_ROLLOUT_H
#define CUTOVER_CLI_ROLLOUT_H

#include <stdio.h>

#include "cli.h"

/* --time-scale N: rollout time per real time (3600: an hour of hold passes
 * in a second). 1 when absent; prints an error and returns CO_EXIT_USAGE on
 * a bad value, else 0. */
int co_cli_time_scale(co_cli_ctx *ctx, double *out);

/* A log callback writing "TIMESTAMP LEVEL message" lines to the FILE * in ud. */
void co_cli_log_line(void *ud, int level, const char *msg);

#endif
