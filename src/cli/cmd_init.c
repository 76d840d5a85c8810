/* `cutover init [DIR]`: writes a commented starter cutover.yaml (comments
 * from the config key table), an example eval set and a sim scenario —
 * everything needed to run the demo by hand. Refuses to overwrite. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cutover/config.h"
#include "cutover/util.h"

static const co_cli_opt opts[] = {
    {"sim-port", 0, "PORT", "port the starter config expects `cutover sim` on (default 9090)"},
    {"force", 'f', NULL, "overwrite files that exist"},
    {NULL, 0, NULL, NULL},
};

/* Replaces every {{sim_port}} in text. */
static int subst_port(const char *text, const char *port, co_buf *out)
{
    const char *p = text, *hit;
    int rc = 0;
    while (!rc && (hit = strstr(p, "{{sim_port}}"))) {
        rc = co_buf_append(out, p, (size_t)(hit - p));
        if (!rc)
            rc = co_buf_puts(out, port);
        p = hit + strlen("{{sim_port}}");
    }
    return rc ? rc : co_buf_puts(out, p);
}

static int write_one(co_cli_ctx *ctx, const char *dir, const char *rel, const char *data, size_t len)
{
    char path[4096], sub[4096];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    snprintf(sub, sizeof sub, "%s", path);
    char *slash = strrchr(sub, '/');
    if (slash) {
        *slash = '\0';
        if (co_mkdirs(sub, 0755) < 0)
            goto fail;
    }
    if (co_write_file(path, data, len, co_cli_flag(ctx, "force")) < 0)
        goto fail;
    fprintf(ctx->out, "  wrote %s\n", path);
    return 0;
fail:
    fprintf(ctx->err, "cutover init: %s%s\n", co_error_last(),
            co_error_last_status() == CO_EEXIST ? " (use --force to overwrite)" : "");
    return -1;
}

static int run(co_cli_ctx *ctx)
{
    const char *dir = ctx->argc ? ctx->argv[0] : ".";
    long long port;
    int rc = co_cli_int(ctx, "sim-port", 9090, 1, 65535, &port);
    if (rc)
        return rc;
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%lld", port);

    static const char *const files[][2] = {
        {"init/cutover.yaml", "cutover.yaml"},
        {"init/evals/golden.yaml", "evals/golden.yaml"},
        {"init/sim.yaml", "sim.yaml"},
    };
    co_buf rendered, text;
    co_buf_init(&rendered, 1u << 20);
    co_buf_init(&text, 1u << 20);
    rc = CO_EXIT_OK;
    if (co_mkdirs(dir, 0755) < 0) {
        fprintf(ctx->err, "cutover init: %s\n", co_error_last());
        rc = CO_EXIT_FAIL;
        goto done;
    }
    fprintf(ctx->out, "cutover init: %s\n", dir);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        size_t len;
        const char *data = co_data_get(files[i][0], &len);
        if (!data) {
            fprintf(ctx->err, "cutover init: built-in %s is missing from this build\n", files[i][0]);
            rc = CO_EXIT_FAIL;
            goto done;
        }
        co_buf_reset(&rendered);
        co_buf_reset(&text);
        int err = subst_port(data, port_s, &text);
        if (!err && strcmp(files[i][1], "cutover.yaml") == 0)
            err = co_conf_render_template(co_config_schema(), text.p, &rendered);
        else if (!err)
            err = co_buf_append(&rendered, text.p, text.len);
        if (err) {
            fprintf(ctx->err, "cutover init: %s\n", co_error_last());
            rc = CO_EXIT_FAIL;
            goto done;
        }
        if (write_one(ctx, dir, files[i][1], rendered.p, rendered.len) < 0) {
            rc = CO_EXIT_FAIL;
            goto done;
        }
    }
    fprintf(ctx->out,
            "next:\n"
            "  cd %s\n"
            "  cutover sim --listen 127.0.0.1:%s --scenario sim.yaml &\n"
            "  cutover check\n",
            dir, port_s);
done:
    co_buf_free(&rendered);
    co_buf_free(&text);
    return rc;
}

const co_cli_cmd co_cmd_init = {
    .name = "init",
    .summary = "write a starter cutover.yaml, an example eval set and a sim scenario",
    .usage = "cutover init [DIR] [--sim-port PORT] [--force]",
    .details = "The starter config points its providers at `cutover sim`, so the migration can be\n"
               "tried on one machine before any real key is involved. Existing files are kept\n"
               "unless --force is given.",
    .opts = opts,
    .min_args = 0,
    .max_args = 1,
    .run = run,
};
