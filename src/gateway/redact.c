/* Redaction (see include/cutover/redact.h): hand-written detectors for API
 * keys, e-mail addresses, payment cards (Luhn) and phone numbers, plus the
 * user's POSIX extended regexes. Every detector reports spans of the original
 * text; the spans are then sorted, merged (the strongest type names a merged
 * span) and replaced by their masks in one pass. The detectors are linear:
 * each scans a candidate once and resumes after it. */
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "cutover/error.h"
#include "cutover/redact.h"

/* In priority order: the lowest value names a merged span. */
enum span_kind { K_KEY, K_CARD, K_EMAIL, K_PHONE, K_USER };

static const char *const mask_of[] = {
    [K_KEY] = CO_MASK_API_KEY,
    [K_CARD] = CO_MASK_CARD,
    [K_EMAIL] = CO_MASK_EMAIL,
    [K_PHONE] = CO_MASK_PHONE,
    [K_USER] = CO_MASK_PATTERN,
};

struct co_redactor {
    int email, phone, card;
    regex_t *re;
    size_t nre;
};

typedef struct span {
    size_t a, b; /* [a, b) of the input */
    int kind;
} span;

typedef struct spans {
    span *v;
    size_t n, cap;
    int oom;
} spans;

/* ---- character classes (ASCII only: the input is UTF-8 bytes) ------------- */

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_alnum(char c) { return is_digit(c) || is_alpha(c); }
static int is_key_char(char c) { return is_alnum(c) || c == '_' || c == '-'; }
static int is_local_char(char c) { return is_alnum(c) || (c && strchr("._%+-", c)); }
static int is_domain_char(char c) { return is_alnum(c) || c == '.' || c == '-'; }

/* ---- JSON escapes --------------------------------------------------------- */

/* Number of consecutive backslashes right before position p. */
static size_t backslashes_before(const char *s, size_t p)
{
    size_t k = 0;
    while (k < p && s[p - 1 - k] == '\\')
        k++;
    return k;
}

/* When position p lies inside an escape sequence ("\n" or "\u00e9") that
 * starts before p, the position right after that sequence; else p. A span
 * must neither start nor end inside one, or the masked JSON would break. */
static size_t past_escape(const char *s, size_t n, size_t p)
{
    for (size_t k = 1; k <= 5 && k <= p; k++) {
        size_t q = p - k;
        if (s[q] != '\\')
            continue;
        if (backslashes_before(s, q) % 2)
            return p; /* that backslash is itself escaped: a literal one */
        size_t len = (q + 1 < n && s[q + 1] == 'u') ? 6 : 2;
        size_t end = q + len > n ? n : q + len;
        return end > p ? end : p;
    }
    return p;
}

/* 1 when the letter at position p is the second half of an escape ("\n"). */
static int escaped_at(const char *s, size_t p) { return backslashes_before(s, p) % 2 == 1; }

static void add_span(spans *sp, const char *s, size_t n, size_t a, size_t b, int kind)
{
    a = past_escape(s, n, a);
    b = past_escape(s, n, b);
    if (a >= b || sp->oom)
        return;
    if (sp->n == sp->cap) {
        size_t cap = sp->cap ? sp->cap * 2 : 16;
        span *v = realloc(sp->v, cap * sizeof *v);
        if (!v) {
            sp->oom = 1;
            return;
        }
        sp->v = v;
        sp->cap = cap;
    }
    sp->v[sp->n++] = (span){a, b, kind};
}

/* ---- API keys (always) ---------------------------------------------------- */

/* A key candidate at i with prefix length plen: masked when it stands alone
 * (not inside a longer word) and its body is long enough. Returns where the
 * next candidate may start. */
static size_t key_at(const char *s, size_t n, size_t i, size_t plen, size_t min_body,
                     int need_digit, spans *sp)
{
    if (i > 0 && is_key_char(s[i - 1]) && !escaped_at(s, i - 1))
        return i + 1; /* inside a longer word: "task-..." */
    size_t j = i + plen;
    int digits = 0;
    while (j < n && is_key_char(s[j]))
        digits |= is_digit(s[j++]);
    if (j - i - plen >= min_body && (digits || !need_digit)) {
        add_span(sp, s, n, i, j, K_KEY);
        return j;
    }
    return i + 1;
}

/* Candidates are found by their rarest byte with memchr: the '-' of "sk-"
 * and the 'z' of "AIza" (prose is full of 's' and 'A'). The two kinds are
 * scanned separately; a candidate inside a key of the other kind yields a
 * span inside that key's, which the merge absorbs. */
static void scan_keys(const char *s, size_t n, spans *sp)
{
    size_t from = 2;
    const char *p;
    /* "sk-" + at least 20 key characters, a digit among them (not
     * "sk-this-is-a-long-word") */
    while (from < n && (p = memchr(s + from, '-', n - from)) != NULL) {
        size_t i = (size_t)(p - s) - 2;
        from = (size_t)(p - s) + 1;
        if (s[i] == 's' && s[i + 1] == 'k' && i + 3 < n) {
            size_t next = key_at(s, n, i, 3, 20, 1, sp);
            if (next > from)
                from = next + 2; /* the next '-' that could end a prefix */
        }
    }
    /* "AIza" + at least 30 key characters */
    from = 2;
    while (from + 1 < n && (p = memchr(s + from, 'z', n - from - 1)) != NULL) {
        size_t i = (size_t)(p - s) - 2;
        from = (size_t)(p - s) + 1;
        if (s[i] == 'A' && s[i + 1] == 'I' && s[i + 3] == 'a') {
            size_t next = key_at(s, n, i, 4, 30, 0, sp);
            if (next > from)
                from = next + 2;
        }
    }
}

/* ---- e-mail --------------------------------------------------------------- */

/* [a, b) is a plausible domain: labels of letters, digits and dashes, at
 * least two, none empty, the last (TLD) all letters and at least two. */
static int domain_ok(const char *s, size_t a, size_t b)
{
    if (a >= b || !is_alnum(s[a]))
        return 0;
    size_t last_dot = 0;
    int dots = 0;
    for (size_t i = a; i < b; i++) {
        if (s[i] == '.') {
            if (i + 1 >= b || s[i + 1] == '.' || s[i + 1] == '-')
                return 0;
            last_dot = i;
            dots++;
        }
    }
    if (!dots || b - last_dot - 1 < 2)
        return 0;
    for (size_t i = last_dot + 1; i < b; i++)
        if (!is_alpha(s[i]))
            return 0;
    return 1;
}

static void scan_emails(const char *s, size_t n, spans *sp)
{
    const char *at = s;
    while ((at = memchr(at, '@', n - (size_t)(at - s))) != NULL) {
        size_t a = (size_t)(at - s);
        at++;
        size_t l = a;
        while (l > 0 && is_local_char(s[l - 1]) && !escaped_at(s, l - 1))
            l--;
        while (l < a && s[l] == '.')
            l++;
        if (l == a)
            continue;
        size_t d = a + 1;
        while (d < n && is_domain_char(s[d]))
            d++;
        while (d > a + 1 && (s[d - 1] == '.' || s[d - 1] == '-'))
            d--;
        if (!domain_ok(s, a + 1, d))
            continue;
        add_span(sp, s, n, l, d, K_EMAIL);
        at = s + d;
    }
}

/* ---- numbers: shared boundaries ------------------------------------------- */

/* May a number start at i? Not in the middle of a word or of another number
 * ("1.5", "2024-", "10:30"), nor after a currency sign, '#', '/', '_', '@' or
 * a non-ASCII byte (currency symbols, letters). A comma separates ("[1,2]"):
 * thousands groups ("1,234,567") are too short to be candidates anyway. */
static int number_left_ok(const char *s, size_t i)
{
    if (i == 0)
        return 1;
    char p = s[i - 1];
    if (is_alnum(p))
        return is_alpha(p) && escaped_at(s, i - 1); /* "\n555..." */
    if ((unsigned char)p >= 0x80 || strchr("$#/_@&%", p))
        return 0;
    if (i >= 2 && is_digit(s[i - 2]) && strchr(".-: ", p))
        return 0;
    return 1;
}

/* May a number end at e? Not before a letter, digit, '@' (an e-mail's local
 * part), '%', or a '.', ':', '/' or '-' that continues it ("1.5", "10:30"). */
static int number_right_ok(const char *s, size_t n, size_t e)
{
    if (e >= n)
        return 1;
    char c = s[e];
    if (is_alnum(c) || c == '@' || c == '%' || c == '_' || (unsigned char)c >= 0x80)
        return 0;
    if (strchr(".:/-", c) && e + 1 < n && is_digit(s[e + 1]))
        return 0;
    return 1;
}

/* ---- payment cards -------------------------------------------------------- */

int co_luhn_valid(const char *s, size_t len)
{
    int sum = 0, alt = 0, nd = 0;
    for (size_t i = len; i-- > 0;) {
        if (!is_digit(s[i]))
            continue;
        int d = s[i] - '0';
        if (alt) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
        alt = !alt;
        nd++;
    }
    return nd > 0 && sum % 10 == 0;
}

/* 13-19 digits starting with a card network's major industry identifier
 * (2221-2720 Mastercard, 3 Amex/Diners/JCB, 4 Visa, 5 Mastercard/Maestro,
 * 6 Discover/UnionPay/Maestro) and a valid Luhn digit. */
static int card_digits_ok(const char *s, size_t a, size_t b)
{
    char d[20];
    size_t nd = 0;
    for (size_t i = a; i < b; i++) {
        if (is_digit(s[i])) {
            if (nd == sizeof d)
                return 0;
            d[nd++] = s[i];
        }
    }
    if (nd < 13 || nd > 19)
        return 0;
    switch (d[0]) {
    case '3': case '4': case '5': case '6':
        break;
    case '2': {
        int p4 = (d[0] - '0') * 1000 + (d[1] - '0') * 100 + (d[2] - '0') * 10 + (d[3] - '0');
        if (p4 < 2221 || p4 > 2720)
            return 0;
        break;
    }
    default:
        return 0;
    }
    return co_luhn_valid(d, nd);
}

#define CARD_MAX_GROUPS 24

/* A sub-run of groups that looks like a card printed on its own: 4-digit
 * groups (the last may be shorter: 19 digits are 4-4-4-4-3), or Amex/Diners
 * 4-6-5 / 4-6-4. */
static int card_shape(const size_t *glen, size_t g, size_t h)
{
    if (g == h)
        return 1;
    if (h - g == 2 && glen[g] == 4 && glen[g + 1] == 6 && (glen[h] == 5 || glen[h] == 4))
        return 1;
    for (size_t k = g; k < h; k++)
        if (glen[k] != 4)
            return 0;
    return glen[h] >= 1 && glen[h] <= 4;
}

static void scan_cards(const char *s, size_t n, spans *sp)
{
    size_t i = 0;
    while (i < n) {
        if (!is_digit(s[i])) {
            i += strcspn(s + i, "0123456789"); /* s ends at n: the next candidate at once */
            continue;
        }
        /* The run: digits, with single spaces or dashes between digits. */
        size_t gstart[CARD_MAX_GROUPS], gend[CARD_MAX_GROUPS], glen[CARD_MAX_GROUPS];
        size_t ng = 0, j = i, total = 0;
        int too_many = 0;
        for (;;) {
            size_t g0 = j;
            while (j < n && is_digit(s[j]))
                j++;
            if (ng < CARD_MAX_GROUPS) {
                gstart[ng] = g0, gend[ng] = j, glen[ng] = j - g0;
                ng++;
            } else {
                too_many = 1;
            }
            total += j - g0;
            if (j + 1 < n && (s[j] == ' ' || s[j] == '-') && is_digit(s[j + 1]))
                j++;
            else
                break;
        }
        size_t end = j;
        /* "+4915112345678" is a phone number, whatever its Luhn digit says. */
        if (!number_left_ok(s, i) || (i > 0 && s[i - 1] == '+') || too_many || total < 13) {
            i = end;
            continue;
        }
        /* The whole run first (any grouping), then card-shaped sub-runs of
         * groups, longest first, so "4111 1111 1111 1111 12/27" still masks
         * the card and leaves the expiry. */
        if (total <= 19 && number_right_ok(s, n, end) && card_digits_ok(s, i, end)) {
            add_span(sp, s, n, i, end, K_CARD);
            i = end;
            continue;
        }
        size_t g = 0;
        while (g < ng) {
            size_t found = 0;
            for (size_t h = ng; h-- > g;) {
                size_t digits = 0;
                for (size_t k = g; k <= h; k++)
                    digits += glen[k];
                if (digits < 13 || digits > 19 || !card_shape(glen, g, h))
                    continue;
                if (h == ng - 1 && !number_right_ok(s, n, end))
                    continue;
                if (card_digits_ok(s, gstart[g], gend[h])) {
                    add_span(sp, s, n, gstart[g], gend[h], K_CARD);
                    found = h + 1;
                    break;
                }
            }
            g = found ? found : g + 1;
        }
        i = end;
    }
}

/* ---- phone numbers -------------------------------------------------------- */

#define PHONE_MAX_GROUPS 12

/* A run of digit groups joined by single separators: "+CC (AAA) BBB-CCCC". */
typedef struct phone_run {
    int plus;
    size_t ng;
    size_t gstart[PHONE_MAX_GROUPS]; /* position of the group ('(' included) */
    size_t gend[PHONE_MAX_GROUPS];   /* position after it (')' included) */
    size_t glen[PHONE_MAX_GROUPS];   /* its digits */
    char gfirst[PHONE_MAX_GROUPS];   /* its first digit */
    int gparen[PHONE_MAX_GROUPS];
    char sep[PHONE_MAX_GROUPS];      /* after group k: ' ', '-', '.', ')' "(555)123", '(' "+1(555)" */
} phone_run;

/* Parses the run starting at i. Returns its number of groups (0 when it is
 * not phone-like at all); *next is where scanning resumes (after the run, so
 * its inner groups are never candidates of their own). */
static size_t phone_parse(const char *s, size_t n, size_t i, phone_run *r, size_t *next)
{
    size_t j = i;
    r->plus = 0;
    r->ng = 0;
    if (s[j] == '+') {
        r->plus = 1;
        j++;
    }
    for (;;) {
        size_t g0 = j;
        int paren = 0;
        if (j < n && s[j] == '(') {
            paren = 1;
            j++;
        }
        size_t d0 = j;
        while (j < n && is_digit(s[j]))
            j++;
        size_t gl = j - d0;
        if (gl == 0 || (paren && (j >= n || s[j] != ')'))) {
            j = g0;
            break;
        }
        if (paren)
            j++;
        if (r->ng == PHONE_MAX_GROUPS) {
            r->ng = 0; /* a long table of numbers, not a phone number */
            break;
        }
        size_t k = r->ng++;
        r->gstart[k] = g0;
        r->gend[k] = j;
        r->glen[k] = gl;
        r->gfirst[k] = s[d0];
        r->gparen[k] = paren;
        r->sep[k] = 0;
        if (j + 1 < n && (s[j] == ' ' || s[j] == '-' || s[j] == '.') &&
            (is_digit(s[j + 1]) || s[j + 1] == '(')) {
            r->sep[k] = s[j++];
        } else if (paren && j < n && is_digit(s[j])) {
            r->sep[k] = ')';
        } else if (r->plus && k == 0 && j < n && s[j] == '(') {
            r->sep[k] = '(';
        } else {
            break;
        }
    }
    *next = j > i ? j : i + 1;
    return r->ng;
}

/* Do groups [g, g + k) of the run look like one phone number? */
static int phone_groups_ok(const phone_run *r, size_t g, size_t k)
{
    const size_t *len = r->glen + g;
    const int *paren = r->gparen + g;
    const char *sep = r->sep + g; /* sep[0 .. k-2] are inside the candidate */
    size_t digits = 0;
    int parens = 0, same_sep = 1, spaces_only = 1;
    for (size_t x = 0; x < k; x++) {
        digits += len[x];
        parens |= paren[x];
        if (x + 1 < k) {
            if (sep[x] != sep[0])
                same_sep = 0;
            if (sep[x] != ' ')
                spaces_only = 0;
        }
    }
    if (r->plus && g == 0) {
        if (digits < 8 || digits > 15)
            return 0;
        if (k == 1)
            return digits >= 10; /* "+14155552671" */
        if (paren[0] || len[0] > 3)
            return 0; /* the country code */
        for (size_t x = 1; x < k; x++)
            if (len[x] > 10 || (paren[x] && len[x] > 4))
                return 0;
        return 1;
    }
    /* National formats: never a bare run of digits. */
    if (k < 2 || digits < 10 || digits > 12)
        return 0;
    /* A number inside a space-separated list ("120 450 300 900 1200") is
     * only a phone number when written like one (dashes, dots, parens). */
    if (g > 0 && spaces_only && !parens)
        return 0;
    if (len[0] > 5 || (paren[0] && len[0] < 2))
        return 0;
    if (len[0] == 1 && (r->gfirst[g] != '1' || paren[0] || sep[0] == '.'))
        return 0; /* "1-800-555-1234" */
    for (size_t x = 1; x < k; x++)
        if (len[x] < 2 || len[x] > 8 || (paren[x] && len[x] > 5))
            return 0;
    /* Numbers end on a group of three or more, or on pairs ("01 23 45 67
     * 89"): "555 123 4567 20" is a number and a count. */
    if (len[k - 1] < 3 && len[k - 2] > len[k - 1])
        return 0;
    /* Two groups only with an area code: "0171 1234567", "(030) 1234567";
     * not "12345 67890" nor a decimal "1234567.891". */
    if (k == 2 && !(paren[0] || (r->gfirst[g] == '0' && len[0] >= 2 && sep[0] != '.' &&
                                 len[1] >= 5)))
        return 0;
    if (!parens && same_sep) {
        /* Thousands grouping: "1 234 567 890", "12.345.678.901". */
        int thousands = len[0] <= 3;
        for (size_t x = 1; x < k; x++)
            thousands &= len[x] == 3;
        if (thousands)
            return 0;
        /* IPv4 addresses. */
        if (sep[0] == '.' && k == 4) {
            int ip = 1;
            for (size_t x = 0; x < k; x++)
                ip &= len[x] <= 3;
            if (ip)
                return 0;
        }
    }
    /* Dates: 2024-01-15 ..., 15.01.2024 ..., 2024/01/15 ... */
    if (k >= 3 && !paren[0] && !paren[1] && !paren[2] && sep[0] && strchr("-./", sep[0]) &&
        sep[0] == sep[1] &&
        ((len[0] == 4 && len[1] == 2 && len[2] == 2) || (len[0] == 2 && len[1] == 2 && len[2] == 4)))
        return 0;
    /* Groups of four digits only (4-4-4): ids and card fragments. */
    if (k >= 3) {
        int fours = 1;
        for (size_t x = 0; x < k; x++)
            fours &= len[x] == 4;
        if (fours)
            return 0;
    }
    return 1;
}

static void scan_phones(const char *s, size_t n, spans *sp)
{
    phone_run r;
    size_t i = 0;
    while (i < n) {
        char c = s[i];
        if (!(c == '+' || c == '(' || is_digit(c))) {
            i += strcspn(s + i, "+(0123456789");
            continue;
        }
        size_t next;
        size_t ng = phone_parse(s, n, i, &r, &next);
        if (ng && number_left_ok(s, i)) {
            /* Sub-runs split at spaces, longest first: "call 555 123 4567 20
             * times", two numbers separated by a space. */
            size_t g = 0;
            while (g < ng) {
                size_t found = 0;
                for (size_t e = ng; e > g; e--) {
                    if (e < ng && r.sep[e - 1] != ' ')
                        continue;
                    if (phone_groups_ok(&r, g, e - g) && number_right_ok(s, n, r.gend[e - 1])) {
                        size_t a = g == 0 ? i : r.gstart[g];
                        add_span(sp, s, n, a, r.gend[e - 1], K_PHONE);
                        found = e;
                        break;
                    }
                }
                /* The next candidate starts after a space only. */
                g = found ? found : g + 1;
                while (g < ng && r.sep[g - 1] != ' ')
                    g++;
            }
        }
        i = next;
    }
}

/* ---- user patterns -------------------------------------------------------- */

static void scan_regex(const regex_t *re, const char *s, size_t n, spans *sp)
{
    size_t off = 0;
    int eflags = 0;
    while (off <= n && !sp->oom) {
        regmatch_t m;
        if (regexec(re, s + off, 1, &m, eflags) != 0)
            break;
        size_t a = off + (size_t)m.rm_so, b = off + (size_t)m.rm_eo;
        if (b > a) {
            add_span(sp, s, n, a, b, K_USER);
            off = b;
        } else {
            off = a + 1; /* empty match: step over one byte */
        }
        eflags = REG_NOTBOL;
    }
}

/* ---- public --------------------------------------------------------------- */

int co_redactor_new(co_redactor **out, const co_redact_conf *conf)
{
    co_redactor *r = NULL;
    int rc = 0;
    if (!out)
        return co_error_set(CO_EINVAL, "co_redactor_new: out is NULL");
    *out = NULL;
    r = calloc(1, sizeof *r);
    if (!r) {
        rc = co_error_set(CO_ENOMEM, "out of memory creating the redactor");
        goto done;
    }
    if (conf) {
        r->email = conf->email != 0;
        r->phone = conf->phone != 0;
        r->card = conf->card != 0;
        if (conf->patterns.n) {
            r->re = calloc(conf->patterns.n, sizeof *r->re);
            if (!r->re) {
                rc = co_error_set(CO_ENOMEM, "out of memory compiling redact patterns");
                goto done;
            }
        }
        for (size_t i = 0; i < conf->patterns.n; i++) {
            const char *pat = conf->patterns.v[i];
            if (!pat || !pat[0]) {
                rc = co_error_set(CO_ECONFIG, "redact pattern %zu is empty", i + 1);
                goto done;
            }
            int e = regcomp(&r->re[i], pat, REG_EXTENDED);
            if (e != 0) {
                char why[256];
                regerror(e, &r->re[i], why, sizeof why);
                rc = co_error_set(CO_ECONFIG,
                                  "redact pattern %zu '%s' is not a valid POSIX extended "
                                  "regular expression: %s",
                                  i + 1, pat, why);
                goto done;
            }
            r->nre++;
        }
    }
    *out = r;
    r = NULL;
done:
    co_redactor_free(r);
    return rc;
}

void co_redactor_free(co_redactor *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nre; i++)
        regfree(&r->re[i]);
    free(r->re);
    free(r);
}

int co_redactor_enabled(const co_redactor *r)
{
    return r && (r->email || r->phone || r->card || r->nre);
}

/* A span of digits only that stands where JSON expects a value
 * ("seed": 4111111111111111, [ ... ]) is masked as a string, "[card]", so the
 * JSON stays valid. */
static int json_number_at(const char *s, size_t n, size_t a, size_t b)
{
    for (size_t i = a; i < b; i++)
        if (!is_digit(s[i]))
            return 0;
    size_t i = a;
    while (i > 0 && (s[i - 1] == ' ' || s[i - 1] == '\t' || s[i - 1] == '\n' || s[i - 1] == '\r'))
        i--;
    if (i == 0 || !strchr(":[,", s[i - 1]))
        return 0;
    size_t j = b;
    while (j < n && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n' || s[j] == '\r'))
        j++;
    return j < n && strchr(",]}", s[j]);
}

static int span_cmp(const void *pa, const void *pb)
{
    const span *a = pa, *b = pb;
    if (a->a != b->a)
        return a->a < b->a ? -1 : 1;
    return a->kind - b->kind;
}

/* in[n] == '\0' (the scanners rely on it). With `copy`, *out is always a
 * new string; without, it stays NULL when nothing is masked. */
static int redact(const co_redactor *r, const char *in, size_t n, int copy, char **out)
{
    spans sp = {0};
    char *o = NULL;
    int rc = 0;

    scan_keys(in, n, &sp);
    if (r && r->card)
        scan_cards(in, n, &sp);
    if (r && r->email)
        scan_emails(in, n, &sp);
    if (r && r->phone)
        scan_phones(in, n, &sp);
    for (size_t i = 0; r && i < r->nre; i++)
        scan_regex(&r->re[i], in, n, &sp);
    if (sp.oom) {
        rc = co_error_set(CO_ENOMEM, "out of memory redacting %zu bytes", n);
        goto done;
    }

    if (!sp.n && !copy)
        goto done; /* nothing to mask: no copy */

    /* Merge overlapping spans in place; the strongest kind names the union. */
    size_t m = 0;
    if (sp.n) {
        qsort(sp.v, sp.n, sizeof *sp.v, span_cmp);
        for (size_t i = 1; i < sp.n; i++) {
            span *cur = &sp.v[m];
            if (sp.v[i].a < cur->b) {
                if (sp.v[i].b > cur->b)
                    cur->b = sp.v[i].b;
                if (sp.v[i].kind < cur->kind)
                    cur->kind = sp.v[i].kind;
            } else {
                sp.v[++m] = sp.v[i];
            }
        }
        m++;
    }

    /* kind | 0x100: quoted. */
    size_t len = n;
    for (size_t i = 0; i < m; i++) {
        if (json_number_at(in, n, sp.v[i].a, sp.v[i].b))
            sp.v[i].kind |= 0x100;
        len = len - (sp.v[i].b - sp.v[i].a) + strlen(mask_of[sp.v[i].kind & 0xff]) +
              (sp.v[i].kind & 0x100 ? 2 : 0);
    }
    o = malloc(len + 1);
    if (!o) {
        rc = co_error_set(CO_ENOMEM, "out of memory redacting %zu bytes", n);
        goto done;
    }
    size_t w = 0, at = 0;
    for (size_t i = 0; i < m; i++) {
        const char *mask = mask_of[sp.v[i].kind & 0xff];
        size_t ml = strlen(mask);
        int quoted = (sp.v[i].kind & 0x100) != 0;
        memcpy(o + w, in + at, sp.v[i].a - at);
        w += sp.v[i].a - at;
        if (quoted)
            o[w++] = '"';
        memcpy(o + w, mask, ml);
        w += ml;
        if (quoted)
            o[w++] = '"';
        at = sp.v[i].b;
    }
    memcpy(o + w, in + at, n - at);
    w += n - at;
    o[w] = '\0';
    *out = o;
    o = NULL;
done:
    free(o);
    free(sp.v);
    return rc;
}

int co_redact(const co_redactor *r, const char *in, char **out)
{
    if (!out)
        return co_error_set(CO_EINVAL, "co_redact: out is NULL");
    *out = NULL;
    if (!in)
        return co_error_set(CO_EINVAL, "co_redact: input is NULL");
    return redact(r, in, strlen(in), 1, out);
}

int co_redact_len(const co_redactor *r, const char *in, size_t len, char **out)
{
    if (!out)
        return co_error_set(CO_EINVAL, "co_redact_len: out is NULL");
    *out = NULL;
    if (!in || in[len] != '\0')
        return co_error_set(CO_EINVAL, "co_redact_len: input is NULL or not %zu bytes long", len);
    return redact(r, in, len, 0, out);
}

int co_redact_keys(const char *in, char **out) { return co_redact(NULL, in, out); }
