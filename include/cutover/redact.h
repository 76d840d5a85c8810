/* Redaction: masks personal data and secrets in text before it is stored.
 *
 * What is masked, and with which typed mask:
 *   [api-key]   strings that look like provider API keys: "sk-..." (OpenAI,
 *               "sk-proj-...", Anthropic "sk-ant-..."; at least 20 key
 *               characters after "sk-") and Google "AIza..." (at least 30
 *               after "AIza"). ALWAYS masked, whatever the configuration says,
 *               even with redaction off and even with no redactor at all
 *               (co_redact(NULL, ...), co_redact_keys). The gateway does not
 *               record headers, so Authorization headers never reach the store
 *               in the first place; this catches keys pasted into prompts and
 *               echoed in outputs.
 *   [email]     e-mail addresses                                (redact.email)
 *   [phone]     phone numbers: international (+CC ...) and common national
 *               formats with separators ((555) 123-4567, 555-123-4567,
 *               020 7946 0958, 01 23 45 67 89, 0171 1234567)   (redact.phone)
 *               Never a bare run of digits without '+' (ids, timestamps),
 *               years, prices, dates, times, IP addresses, or numbers grouped
 *               in thousands ("1 234 567 890").
 *   [card]      payment card numbers: 13-19 digits, optionally grouped with
 *               spaces or dashes, a card-network prefix (2221-2720, 3, 4, 5,
 *               6) and a valid Luhn check digit, so order numbers and
 *               timestamps stay readable                        (redact.card)
 *   [redacted]  each match of the user's POSIX extended regexes
 *                                                            (redact.patterns)
 *
 * Matching runs on the original text; overlapping matches merge into one mask
 * (the strongest type wins: api-key, card, email, phone, user pattern). Masks
 * never start or end in the middle of a JSON string escape ("\n", "\u00e9"),
 * and a mask replacing a bare JSON number ("seed": 4111111111111111) is
 * written as a string ("seed": "[card]"), so JSON text (request_json) stays
 * valid JSON as long as user patterns do not match quotes or structural
 * characters.
 *
 * Thread safety: a co_redactor is not modified by co_redact, but it is to be
 * used by ONE THREAD AT A TIME: give each thread that redacts its own
 * redactor (sharing one is not supported; glibc would at best serialize the
 * threads on each compiled pattern's lock). The recorder uses its redactor
 * only on its writer thread. co_redact_keys and co_redact(NULL, ...) use no
 * shared state and are safe from any thread. */
#ifndef CUTOVER_REDACT_H
#define CUTOVER_REDACT_H

#include "cutover/config.h"

typedef struct co_redactor co_redactor;

#define CO_MASK_API_KEY "[api-key]"
#define CO_MASK_EMAIL "[email]"
#define CO_MASK_PHONE "[phone]"
#define CO_MASK_CARD "[card]"
#define CO_MASK_PATTERN "[redacted]"

/* Compiles the built-in detectors `conf` enables and its user patterns
 * (REG_EXTENDED). conf may be NULL: API keys only. An invalid or empty
 * pattern fails with CO_ECONFIG and a message naming it (its 1-based index
 * and text) and regerror's reason. *out is the caller's to co_redactor_free. */
int co_redactor_new(co_redactor **out, const co_redact_conf *conf);
void co_redactor_free(co_redactor *r);

/* 1 when the redactor masks more than API keys. */
int co_redactor_enabled(const co_redactor *r);

/* A new malloc'd copy of `in` (NUL-terminated) with every match replaced by
 * its mask; the caller frees *out. r may be NULL (API keys only). Never
 * fails on content; CO_ENOMEM / CO_EINVAL only. */
int co_redact(const co_redactor *r, const char *in, char **out);
/* Like co_redact for a string of `len` bytes (in[len] must be its NUL),
 * without the copy when nothing is masked: *out is then NULL and `in` is the
 * redacted text as it stands; otherwise *out is the caller's to free. For
 * callers that redact a lot of mostly clean text (the recorder). */
int co_redact_len(const co_redactor *r, const char *in, size_t len, char **out);
/* API keys only: what is applied even when redaction is off. */
int co_redact_keys(const char *in, char **out);

/* Luhn check over the ASCII digits of s[0..len) (other bytes are ignored);
 * 0 when there are no digits. Exposed for tests and for eval detectors. */
int co_luhn_valid(const char *s, size_t len);

#endif
