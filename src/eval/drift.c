/* Format drift between the arms of an eval: what the outputs look like, not
 * whether they pass. Per arm, over successful calls: output length in
 * characters (mean, p50, p95; two-sample KS test) and the share of outputs
 * with markdown headers, bullets, code fences, that are valid JSON, that
 * refuse, and that end in sentence punctuation (two-proportion z-test each).
 * A change is flagged when its p-value is below 1 − level. The detectors are
 * deliberately simple and documented in docs/eval.md. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cutover/error.h"
#include "eval/compare_int.h"

static const char *const rate_names[CO__DRIFT_NRATES] = {
    "markdown headers", "bullets", "code fences", "valid JSON", "refusals", "trailing punctuation",
};
static const char *const rate_keys[CO__DRIFT_NRATES] = {
    "markdown_headers", "bullets", "code_fences", "valid_json", "refusals", "trailing_punctuation",
};

const char *co__drift_rate_name(int i)
{
    return i >= 0 && i < CO__DRIFT_NRATES ? rate_names[i] : "?";
}

const char *co__drift_rate_key(int i)
{
    return i >= 0 && i < CO__DRIFT_NRATES ? rate_keys[i] : "?";
}

/* Matched case-insensitively (ASCII), with typographic apostrophes read as
 * plain ones. Short and conservative: a phrase here should almost never
 * occur in an answer that does not decline. */
static const char *const refusal_phrases[] = {
    "i can't help with", "i cannot help with", "i can't assist with", "i cannot assist with",
    "i can't provide", "i cannot provide", "i can't comply", "i cannot comply",
    "i'm unable to", "i am unable to", "i'm not able to", "i am not able to",
    "i won't be able to", "i must decline", "as an ai language model", "i'm sorry, but i can",
};

static int is_refusal(const char *text)
{
    size_t n = strlen(text);
    char *low = malloc(n + 1);
    if (!low)
        return 0;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        /* U+2019 RIGHT SINGLE QUOTATION MARK → ' */
        if (c == 0xE2 && i + 2 < n && (unsigned char)text[i + 1] == 0x80 && (unsigned char)text[i + 2] == 0x99) {
            low[j++] = '\'';
            i += 2;
            continue;
        }
        low[j++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    low[j] = '\0';
    int hit = 0;
    for (size_t k = 0; k < sizeof refusal_phrases / sizeof *refusal_phrases && !hit; k++)
        hit = strstr(low, refusal_phrases[k]) != NULL;
    free(low);
    return hit;
}

static int ends_with(const char *s, size_t n, const char *suffix)
{
    size_t m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* The last visible character, past closing quotes, brackets and emphasis
 * markers, is . ! ? or … (or the full-width 。！？). */
static int trailing_punct(const char *s, size_t n)
{
    for (;;) {
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
            n--;
        if (n && strchr("\"')]*_`", s[n - 1])) {
            n--;
            continue;
        }
        if (ends_with(s, n, "\xe2\x80\x9d") || ends_with(s, n, "\xe2\x80\x99")) { /* ” ’ */
            n -= 3;
            continue;
        }
        break;
    }
    if (!n)
        return 0;
    if (strchr(".!?", s[n - 1]))
        return 1;
    return ends_with(s, n, "\xe2\x80\xa6") || ends_with(s, n, "\xe3\x80\x82") || /* … 。 */
           ends_with(s, n, "\xef\xbc\x81") || ends_with(s, n, "\xef\xbc\x9f");   /* ！ ？ */
}

static int valid_json(const char *s, size_t n)
{
    while (n && strchr(" \t\r\n", s[0])) {
        s++;
        n--;
    }
    while (n && strchr(" \t\r\n", s[n - 1]))
        n--;
    if (!n || (s[0] != '{' && s[0] != '['))
        return 0;
    json_t *j = json_loadb(s, n, 0, NULL); /* without JSON_DECODE_ANY: an object or an array */
    int ok = j != NULL;
    json_decref(j);
    return ok;
}

unsigned co__drift_features(const char *text, uint64_t *out_chars)
{
    unsigned f = 0;
    uint64_t chars = 0;
    if (!text)
        text = "";
    size_t n = strlen(text);
    for (size_t i = 0; i < n; i++)
        chars += ((unsigned char)text[i] & 0xC0) != 0x80;
    for (const char *line = text; *line;) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        size_t i = 0;
        while (i < len && i < 3 && line[i] == ' ')
            i++;
        /* # .. ###### then a space: an ATX header */
        size_t h = i;
        while (h < len && line[h] == '#')
            h++;
        if (h > i && h - i <= 6 && h < len && (line[h] == ' ' || line[h] == '\t'))
            f |= 1u << CO__DRIFT_HEADERS;
        if (len - i >= 3 && (memcmp(line + i, "```", 3) == 0 || memcmp(line + i, "~~~", 3) == 0))
            f |= 1u << CO__DRIFT_FENCES;
        /* bullets at any indent: "- ", "* ", "+ ", "1. ", "1) " */
        size_t b = 0;
        while (b < len && (line[b] == ' ' || line[b] == '\t'))
            b++;
        if (b + 1 < len && strchr("-*+", line[b]) && (line[b + 1] == ' ' || line[b + 1] == '\t'))
            f |= 1u << CO__DRIFT_BULLETS;
        size_t d = b;
        while (d < len && d - b < 9 && line[d] >= '0' && line[d] <= '9')
            d++;
        if (d > b && d + 1 < len && (line[d] == '.' || line[d] == ')') && (line[d + 1] == ' ' || line[d + 1] == '\t'))
            f |= 1u << CO__DRIFT_BULLETS;
        line = eol ? eol + 1 : line + len;
    }
    if (valid_json(text, n))
        f |= 1u << CO__DRIFT_JSON;
    if (is_refusal(text))
        f |= 1u << CO__DRIFT_REFUSALS;
    if (trailing_punct(text, n))
        f |= 1u << CO__DRIFT_TRAILING_PUNCT;
    if (out_chars)
        *out_chars = chars;
    return f;
}

int co__drift_compute(co__drift *d, const co__result *res, size_t n, double level)
{
    int rc = 0;
    double *len[2] = {NULL, NULL};
    memset(d, 0, sizeof *d);
    for (int arm = 0; arm < 2; arm++) {
        d->len_mean[arm] = d->len_p50[arm] = d->len_p95[arm] = NAN;
        if (n && !(len[arm] = malloc(n * sizeof(double)))) {
            rc = co_error_set(CO_ENOMEM, "out of memory");
            goto done;
        }
    }
    for (int k = 0; k < CO__DRIFT_NRATES; k++)
        d->rates[k].p = NAN;
    for (size_t i = 0; i < n; i++) {
        const co__result *r = &res[i];
        if (r->error)
            continue;
        uint64_t chars = 0;
        unsigned f = co__drift_features(r->output, &chars);
        len[r->arm][d->n[r->arm]++] = (double)chars;
        for (int k = 0; k < CO__DRIFT_NRATES; k++)
            d->rates[k].k[r->arm] += (f >> k) & 1u;
    }
    for (int arm = 0; arm < 2; arm++) {
        for (int k = 0; k < CO__DRIFT_NRATES; k++)
            d->rates[k].n[arm] = d->n[arm];
        if (!d->n[arm])
            continue;
        double sum = 0;
        for (uint64_t i = 0; i < d->n[arm]; i++)
            sum += len[arm][i];
        d->len_mean[arm] = sum / (double)d->n[arm];
        co_sort_doubles(len[arm], d->n[arm]);
        if ((rc = co_quantile_sorted(&d->len_p50[arm], len[arm], d->n[arm], 0.5, CO_QUANTILE_LINEAR)) ||
            (rc = co_quantile_sorted(&d->len_p95[arm], len[arm], d->n[arm], 0.95, CO_QUANTILE_LINEAR)))
            goto done;
    }
    if (!d->n[0] || !d->n[1])
        goto done;
    d->computed = 1;
    double alpha = 1.0 - level;
    if ((rc = co_ks_2samp(&d->ks, len[CO__CAND], d->n[CO__CAND], len[CO__INC], d->n[CO__INC], NULL)))
        goto done;
    d->len_flagged = d->ks.p < alpha;
    d->any_flagged = d->len_flagged;
    for (int k = 0; k < CO__DRIFT_NRATES; k++) {
        co__rate_drift *rd = &d->rates[k];
        co_ztest z;
        if ((rc = co_two_prop_ztest(&z, rd->k[CO__CAND], rd->n[CO__CAND], rd->k[CO__INC], rd->n[CO__INC], 0.0)))
            goto done;
        rd->p = z.p_two_sided;
        rd->flagged = rd->p < alpha;
        d->any_flagged |= rd->flagged;
    }
done:
    free(len[0]);
    free(len[1]);
    return rc;
}
