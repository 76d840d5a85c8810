/* Shared by the commands that act on a configured deployment (status, mode,
 * rollback): loading the config with located errors, opening its store,
 * and calling a running gateway's admin API. */
#ifndef CUTOVER_CLI_CONTROL_H
#define CUTOVER_CLI_CONTROL_H

#include "cli.h"
#include "cutover/buf.h"
#include "cutover/config.h"
#include "cutover/store.h"

/* Loads -c/--config; prints every error and returns an exit code on failure. */
int co_cli_load_config(co_cli_ctx *ctx, co_config **out);
/* Opens the config's store; prints the error and returns an exit code on failure. */
int co_cli_open_store(co_cli_ctx *ctx, const co_config *cfg, co_store **out);

/* POSTs JSON to a running gateway's admin API (--gateway URL, else the
 * config's admin.listen or listen). Returns 0 with the HTTP status and body
 * (caller frees body), CO_ENET when no gateway answers there, another
 * negative code on other failures. */
int co_cli_admin_post(co_cli_ctx *ctx, const co_config *cfg, const char *path, const char *json,
                      long *status, char **body);



#include "cutover/control.h"

/* Applies a mode change: through the running gateway's admin API when one
 * answers (it publishes at once and stores the change), else straight into
 * the store, where every gateway picks it up on its next poll. Prints the
 * outcome; returns an exit code. */
int co_cli_apply_mode(co_cli_ctx *ctx, const co_config *cfg, const co_mode_change *ch);
#endif
