/* Eval sets: loading a suite of cases (a file or a directory of files) into
 * ready-to-run chat requests and compiled assertion sets.
 *
 * Formats, detected by content (not by file name):
 *   native YAML   a list of cases, or a mapping with `cases:` (and an
 *                 optional suite-level default `workload:`, a `description:`,
 *                 and any `x-...` keys, e.g. to hold YAML anchors). Aliases
 *                 and merge keys (<<: *defaults) are expanded. One document
 *                 per file.
 *   native JSONL  one case (a JSON object) per line; blank lines skipped.
 *   promptfoo     a YAML mapping with `prompts` and/or `tests` (and no
 *                 `cases`): every prompt (a string with {{var}}s) times every
 *                 test (vars, assert, description, metadata), with
 *                 `defaultTest` merged in (its vars under the test's, its
 *                 asserts before the test's; {{var}}s in assertion values
 *                 rendered). Ids: the test's description (else "test-N"),
 *                 with "#pK" appended when there are several prompts.
 *                 Whatever cannot be imported (file:// prompts, tests, vars
 *                 or assertion values, providers, options, list-valued vars,
 *                 assertion types or keys cutover does not have) is named in
 *                 the warnings (each once), never dropped silently.
 *   OpenAI evals  JSONL lines with `input` (a string or a list of
 *                 {role, content}) and `ideal` (one string, or a list of one:
 *                 an `equals` assertion; a longer list: `contains-any`).
 *                 Ids: "<file stem>-<record number>" unless the line has id.
 * A .jsonl file is always read as JSONL; any other file is JSONL when its
 * first line is a JSON object, else YAML. A UTF-8 BOM is skipped; bytes that
 * are not UTF-8 are an error at their line:col.
 * A directory is one suite: every *.yaml, *.yml and *.jsonl in it (not
 * recursive, hidden files skipped), in byte order of their names.
 *
 * A native case:
 *   id        required, unique across the suite.
 *   workload  required unless the suite file gives a default (`workload:`
 *             next to `cases:`). Imports: metadata.workload, else the file
 *             name without its extension (named in the warnings).
 *   tags      a list of strings (or one string).
 *   critical  a boolean.
 *   messages  a list of {role: system|developer|user|assistant, content:
 *             a string or a list of {type: text, text}/{type: image_url}};
 *             or `prompt` (a string with {{var}} placeholders) + `vars`:
 *             one user message; a placeholder without a var is an error.
 *   tools     a list of OpenAI tools ({type: function, function: {name,
 *             description, parameters}}) or flat ones ({name, description,
 *             parameters}); offered to the model and to
 *             is-valid-openai-tools-call.
 *   ideal     the reference answer (any value; kept as JSON).
 *   assert    a list of assertion definitions (assert.h), each compiled with
 *             where = "file:line:col" of that item.
 *   description, metadata, vars: accepted (description and metadata kept
 *             out of the API for now).
 *
 * A suite with no case at all is an error ("the eval set has no cases").
 *
 * Errors: all of them are collected into `diags`, each with file, line and
 * column (JSONL: the line, and the column where the case or the key starts),
 * and co_suite_load returns CO_ECONFIG (CO_ENOENT when the path is missing,
 * CO_ENOMEM) with *out NULL. Library code never prints. */
#ifndef CUTOVER_SUITE_H
#define CUTOVER_SUITE_H

#include <jansson.h>
#include <stddef.h>

#include "cutover/assert.h"
#include "cutover/chat.h"
#include "cutover/error.h"

typedef enum co_suite_format {
    CO_SUITE_NATIVE = 0,
    CO_SUITE_PROMPTFOO = 1,
    CO_SUITE_OPENAI_EVALS = 2,
} co_suite_format;

/* One case. Everything is owned by the suite; valid until co_suite_free. */
typedef struct co_suite_case {
    const char *id;
    const char *workload;
    const char *const *tags;   /* n_tags strings */
    size_t n_tags;
    int critical;
    const co_chat_request *request;  /* messages (system in ->system), tools */
    const co_assert_set *asserts;    /* compiled; may be empty */
    const json_t *ideal;             /* NULL when none */
    const json_t *tools;             /* the tools as given (JSON array), NULL when none */
    co_suite_format format;          /* where it came from */
    const char *file;                /* the file it was read from */
    int line, col;                   /* where the case starts */
} co_suite_case;

typedef struct co_suite co_suite;

/* Loads a file or a directory. aopts (may be NULL) is passed to the
 * assertion compiler (judge for llm-rubric); its `tools` is ignored: each
 * case's own tools are used. */
int co_suite_load(co_suite **out, const char *path, const co_assert_opts *aopts, co_diags *diags);
void co_suite_free(co_suite *s);

size_t co_suite_len(const co_suite *s);
const co_suite_case *co_suite_get(const co_suite *s, size_t i);
/* The case with this id, or NULL. */
const co_suite_case *co_suite_find(const co_suite *s, const char *id);

/* What an import could not carry over, each "file:line:col: what and why".
 * Native files produce none. */
size_t co_suite_n_warnings(const co_suite *s);
const char *co_suite_warning(const co_suite *s, size_t i);

/* "native", "promptfoo", "openai-evals". */
const char *co_suite_format_name(co_suite_format f);

#endif
