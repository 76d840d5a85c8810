/* cutover sim: simulated model providers (OpenAI chat completions, Anthropic
 * Messages, Gemini generateContent) faithful to the real wire protocols, for
 * the demo, tests and benchmarks. Behaviour per model comes from a scenario
 * (YAML, bound by the conf engine): answers, latency, faults, token counts.
 * Deterministic for a given seed.
 *
 * Test hooks served next to the APIs: GET /_sim/health, GET /_sim/stats
 * (requests per model by status), GET /_sim/requests?limit=N and
 * DELETE /_sim/requests (with record set), GET|POST /_sim/models/NAME
 * (read or patch latency/faults/accuracy at run time; NAME "*" = all). */
#ifndef CUTOVER_SIM_H
#define CUTOVER_SIM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cutover/conf.h"

typedef struct co_sim co_sim;
typedef struct co_sim_scenario co_sim_scenario;

typedef struct co_sim_opts {
    const char *listen;        /* "127.0.0.1:0" = ephemeral port (default) */
    const char *scenario_path; /* NULL: the built-in default scenario */
    int threads;               /* event-loop threads (SO_REUSEPORT); default 1 */
    int64_t seed;              /* overrides the scenario's seed when set_seed */
    int set_seed;
    int record;                /* keep the last 256 requests for GET /_sim/requests */
    int handle_signals;        /* SIGINT/SIGTERM stop the sim (the CLI sets this) */
} co_sim_opts;

/* Loads a scenario file (or the built-in default when path is NULL).
 * Errors: CO_ECONFIG with every problem in diags (file:line:col). */
int co_sim_scenario_load(co_sim_scenario **out, const char *path, co_diags *diags);
void co_sim_scenario_free(co_sim_scenario *sc);
/* One line per model (provider, answer, latency, faults) for `cutover sim --check`. */
void co_sim_scenario_print(const co_sim_scenario *sc, FILE *out);
/* The scenario schema, for `cutover sim --help` and docs. */
const co_schema *co_sim_scenario_schema(void);

/* Binds the listener and prepares the loops. The sim takes ownership of
 * nothing passed in; it loads its own scenario from opts. */
int co_sim_new(co_sim **out, const co_sim_opts *opts, co_diags *diags);
/* The bound port (useful with port 0). */
int co_sim_port(const co_sim *sim);
/* "host:port" as bound, into buf. */
const char *co_sim_address(const co_sim *sim, char *buf, size_t n);
/* Runs until co_sim_stop; returns 0. */
int co_sim_run(co_sim *sim);
/* Asks a running sim to stop; safe to call from another thread, from a
 * signal handler or from a signal-driven event (it only writes an eventfd). */
void co_sim_stop(co_sim *sim);
void co_sim_free(co_sim *sim);

#endif
