/* Shared by the gateway integration tests (test_gateway_*.c): starts a real
 * `cutover sim --record` and a real `cutover serve` ($CUTOVER_BIN) on
 * loopback ephemeral ports with a config written to a temp dir, a scripted
 * fake upstream (a thread answering canned bytes, keeping the raw request),
 * keep-alive HTTP requests, and the store read back. Everything started is
 * stopped by gwf_teardown. */
#ifndef TEST_GATEWAY_FIXTURE_H
#define TEST_GATEWAY_FIXTURE_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "co_test.h"
#include "cutover/store.h"

#define GWF_FN static __attribute__((unused))

/* ---- fake upstream -------------------------------------------------------- */

#define GWF_FAKE_MAX_PIECES 16

typedef struct gwf_fake {
    int fd, port;
    pthread_t th;
    int running;
    volatile int stop;
    pthread_mutex_t mu;
    char *last;          /* the last raw request: request line, headers, body */
    int nreq;
    /* the scripted answer */
    int status;
    char ctype[64];
    char *body;
    size_t body_len;
    size_t cuts[GWF_FAKE_MAX_PIECES]; /* the body is written in pieces ending at these offsets */
    int ncuts;
    int gap_ms;          /* pause between pieces */
} gwf_fake;

static long long gwf_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fake_serve(gwf_fake *f, int c)
{
    char *buf = NULL;
    size_t len = 0, cap = 0, need = 0;
    long long deadline = gwf_now_ms() + 5000;
    for (;;) {
        if (len + 4096 > cap) {
            cap = cap ? cap * 2 : 16384;
            char *nb = realloc(buf, cap + 1);
            if (!nb)
                goto out;
            buf = nb;
        }
        struct pollfd p = {c, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) {
            if (gwf_now_ms() > deadline || f->stop)
                goto out;
            continue;
        }
        ssize_t n = recv(c, buf + len, cap - len, 0);
        if (n <= 0)
            goto out;
        len += (size_t)n;
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end && !need) {
            const char *cl = strcasestr(buf, "\r\ncontent-length:");
            need = (size_t)(end - buf) + 4 + (cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0);
        }
        if (need && len >= need)
            break;
    }
    pthread_mutex_lock(&f->mu);
    free(f->last);
    f->last = buf;
    buf = NULL;
    f->nreq++;
    int status = f->status ? f->status : 200;
    char head[256];
    int hl = snprintf(head, sizeof head, "HTTP/1.1 %d X\r\nContent-Type: %s\r\nConnection: close\r\n\r\n", status,
                      f->ctype[0] ? f->ctype : "application/json");
    char *body = f->body ? malloc(f->body_len) : NULL;
    size_t blen = body ? f->body_len : 0;
    if (body)
        memcpy(body, f->body, blen);
    size_t cuts[GWF_FAKE_MAX_PIECES];
    int ncuts = f->ncuts, gap = f->gap_ms;
    memcpy(cuts, f->cuts, sizeof cuts);
    pthread_mutex_unlock(&f->mu);
    if (send(c, head, (size_t)hl, MSG_NOSIGNAL) < 0)
        goto out2;
    size_t at = 0;
    for (int i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts && cuts[i] < blen ? cuts[i] : blen;
        if (to > at && send(c, body + at, to - at, MSG_NOSIGNAL) < 0)
            break;
        at = to;
        if (gap && i < ncuts)
            usleep((useconds_t)gap * 1000);
    }
out2:
    free(body);
out:
    free(buf);
    shutdown(c, SHUT_WR);
    close(c);
}

static void *fake_main(void *arg)
{
    gwf_fake *f = arg;
    while (!f->stop) {
        struct pollfd p = {f->fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        int c = accept(f->fd, NULL, NULL);
        if (c < 0)
            continue;
        fake_serve(f, c);
    }
    return NULL;
}

GWF_FN int gwf_fake_start(gwf_fake *f)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    f->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (f->fd < 0 || bind(f->fd, (struct sockaddr *)&a, sizeof a) || listen(f->fd, 64) ||
        getsockname(f->fd, (struct sockaddr *)&a, &al))
        return -1;
    f->port = ntohs(a.sin_port);
    if (pthread_create(&f->th, NULL, fake_main, f))
        return -1;
    f->running = 1;
    return 0;
}

/* Scripts the answer: body written in pieces cut at the given offsets. */
GWF_FN void gwf_fake_script(gwf_fake *f, int status, const char *ctype, const char *body, size_t len,
                            const size_t *cuts, int ncuts, int gap_ms)
{
    pthread_mutex_lock(&f->mu);
    f->status = status;
    snprintf(f->ctype, sizeof f->ctype, "%s", ctype);
    free(f->body);
    f->body = malloc(len + 1);
    memcpy(f->body, body, len);
    f->body_len = len;
    f->ncuts = ncuts < GWF_FAKE_MAX_PIECES ? ncuts : GWF_FAKE_MAX_PIECES;
    for (int i = 0; i < f->ncuts; i++)
        f->cuts[i] = cuts[i];
    f->gap_ms = gap_ms;
    pthread_mutex_unlock(&f->mu);
}

/* A copy of the last raw request (malloc'd; "" when none). */
GWF_FN char *gwf_fake_last(gwf_fake *f)
{
    pthread_mutex_lock(&f->mu);
    char *s = strdup(f->last ? f->last : "");
    pthread_mutex_unlock(&f->mu);
    return s;
}

GWF_FN void gwf_fake_stop(gwf_fake *f)
{
    if (!f->running)
        return;
    f->stop = 1;
    pthread_join(f->th, NULL);
    close(f->fd);
    free(f->last);
    free(f->body);
    pthread_mutex_destroy(&f->mu);
    f->running = 0;
}

/* ---- processes ------------------------------------------------------------ */

typedef struct gwf {
    char *dir;
    char *db;
    char *cfg_path;
    co_test_proc sim;
    int sim_on;
    char sim_base[64];
    co_test_proc gw;
    int gw_on;
    char base[64];
    gwf_fake fake;
    int gw_rc; /* exit code of the last gwf_gw_stop */
} gwf;

static char gwf_urls[8][512];
static int gwf_url_i;

/* base + path in one of a few rotating buffers. */
GWF_FN const char *gwf_url(gwf *f, const char *path)
{
    char *u = gwf_urls[gwf_url_i++ % 8];
    snprintf(u, 512, "%s%s", f->base, path);
    return u;
}

GWF_FN const char *gwf_sim_url(gwf *f, const char *path)
{
    char *u = gwf_urls[gwf_url_i++ % 8];
    snprintf(u, 512, "%s%s", f->sim_base, path);
    return u;
}

GWF_FN gwf *gwf_new(void)
{
    if (!co_test_bin()) {
        fprintf(stderr, "CUTOVER_BIN is not set; skipping\n");
        return NULL;
    }
    gwf *f = calloc(1, sizeof *f);
    f->dir = co_test_tmpdir();
    if (asprintf(&f->db, "%s/cutover.db", f->dir) < 0)
        f->db = NULL;
    if (gwf_fake_start(&f->fake)) {
        fprintf(stderr, "fake upstream: %s\n", strerror(errno));
        return NULL;
    }
    return f;
}

GWF_FN int gwf_sim_start(gwf *f, const char *scenario)
{
    char *sc = co_test_write(f->dir, "scenario.yaml", scenario);
    char *argv[] = {(char *)co_test_bin(), "sim", "--listen", "127.0.0.1:0", "--scenario", sc, "--record", NULL};
    int rc = co_test_spawn(&f->sim, argv, NULL, 20000);
    free(sc);
    if (rc)
        return -1;
    f->sim_on = 1;
    snprintf(f->sim_base, sizeof f->sim_base, "http://127.0.0.1:%d", f->sim.port);
    return 0;
}

/* Writes cutover.yaml from a template: {SIM} -> the sim's base URL, {FAKE}
 * -> the fake upstream's, {DB} -> the store path. */
GWF_FN int gwf_config(gwf *f, const char *tmpl)
{
    char fake[64];
    snprintf(fake, sizeof fake, "http://127.0.0.1:%d", f->fake.port);
    size_t cap = strlen(tmpl) * 2 + 4096, o = 0;
    char *out = malloc(cap);
    for (const char *p = tmpl; *p;) {
        const char *rep = NULL;
        size_t skip = 0;
        if (!strncmp(p, "{SIM}", 5))
            rep = f->sim_base, skip = 5;
        else if (!strncmp(p, "{FAKE}", 6))
            rep = fake, skip = 6;
        else if (!strncmp(p, "{DB}", 4))
            rep = f->db, skip = 4;
        if (rep) {
            size_t rl = strlen(rep);
            if (o + rl + 1 >= cap)
                out = realloc(out, cap = (o + rl) * 2 + 16);
            memcpy(out + o, rep, rl);
            o += rl;
            p += skip;
        } else {
            if (o + 2 >= cap)
                out = realloc(out, cap *= 2);
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    free(f->cfg_path);
    f->cfg_path = co_test_write(f->dir, "cutover.yaml", out);
    free(out);
    return f->cfg_path ? 0 : -1;
}

/* Starts `cutover serve -c cutover.yaml --listen 127.0.0.1:0` plus extra
 * arguments; provider keys come from OA_KEY / AN_KEY / FAKE_KEY. */
GWF_FN int gwf_gw_start(gwf *f, const char *const *extra, char *const *env)
{
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)co_test_bin();
    argv[n++] = "serve";
    argv[n++] = "-c";
    argv[n++] = f->cfg_path;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    for (int i = 0; extra && extra[i] && n < 30; i++)
        argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    char *envv[16];
    int k = 0;
    envv[k++] = "OA_KEY=sk-provider";
    envv[k++] = "AN_KEY=sk-provider";
    envv[k++] = "FAKE_KEY=sk-fake-provider";
    for (int i = 0; env && env[i] && k < 15; i++)
        envv[k++] = env[i];
    envv[k] = NULL;
    if (co_test_spawn(&f->gw, argv, envv, 20000))
        return -1;
    f->gw_on = 1;
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", f->gw.port);
    /* ready once every worker runs */
    long long deadline = gwf_now_ms() + 5000;
    for (;;) {
        co_test_http h;
        co_test_http_do(&h, "GET", gwf_url(f, "/readyz"), NULL, NULL, 2000);
        long st = h.status;
        co_test_http_free(&h);
        if (st == 200)
            return 0;
        if (gwf_now_ms() > deadline)
            return -1;
        usleep(20000);
    }
}

/* SIGTERM, clean stop (exit code in gw_rc, 0 expected). */
GWF_FN int gwf_gw_stop(gwf *f)
{
    if (!f->gw_on)
        return 0;
    f->gw_on = 0;
    f->gw_rc = co_test_stop(&f->gw);
    return f->gw_rc;
}

GWF_FN void gwf_free(gwf *f)
{
    if (!f)
        return;
    gwf_gw_stop(f);
    if (f->sim_on)
        co_test_stop(&f->sim);
    gwf_fake_stop(&f->fake);
    co_test_rmtree(f->dir);
    free(f->dir);
    free(f->db);
    free(f->cfg_path);
    free(f);
}

GWF_FN co_store *gwf_store(gwf *f)
{
    char url[600];
    snprintf(url, sizeof url, "sqlite:%s", f->db);
    co_store *st = NULL;
    if (co_store_open(&st, url))
        return NULL;
    return st;
}

/* ---- HTTP on a kept-alive connection -------------------------------------- */

typedef struct gwf_sink {
    char *p;
    size_t len;
} gwf_sink;

static size_t gwf_sink_write(char *data, size_t size, size_t nmemb, void *arg)
{
    gwf_sink *s = arg;
    size_t n = size * nmemb;
    char *p = realloc(s->p, s->len + n + 1);
    if (!p)
        return 0;
    memcpy(p + s->len, data, n);
    s->p = p;
    s->len += n;
    p[s->len] = '\0';
    return n;
}

/* Like co_test_http_do, on a reused easy handle (its connection is kept). */
GWF_FN int gwf_do(CURL *c, co_test_http *res, const char *method, const char *url, const char *const *headers,
                  const char *body, long timeout_ms)
{
    memset(res, 0, sizeof *res);
    gwf_sink b = {0}, h = {0};
    struct curl_slist *hl = NULL;
    for (size_t i = 0; headers && headers[i]; i++)
        hl = curl_slist_append(hl, headers[i]);
    hl = curl_slist_append(hl, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 30000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, gwf_sink_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, gwf_sink_write);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    } else {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    CURLcode cc = curl_easy_perform(c);
    res->curl_code = (int)cc;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res->status);
    curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &res->seconds);
    curl_slist_free_all(hl);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    res->body = b.p ? b.p : strdup("");
    res->body_len = b.len;
    res->headers = h.p ? h.p : strdup("");
    return res->curl_code;
}

/* ---- assertions helpers --------------------------------------------------- */

GWF_FN json_t *gwf_json(const co_test_http *h)
{
    json_error_t err;
    json_t *j = json_loadb(h->body, h->body_len, 0, &err);
    if (!j)
        fprintf(stderr, "not JSON (%ld): %s\n", h->status, h->body);
    assert_non_null(j);
    return j;
}

/* j[a][b] as a string (b may be NULL). */
GWF_FN const char *gwf_jstr(json_t *j, const char *a, const char *b)
{
    json_t *v = json_object_get(j, a);
    if (b)
        v = json_object_get(v, b);
    return json_string_value(v);
}

GWF_FN void gwf_header(const co_test_http *h, const char *name, char *buf, size_t n)
{
    if (!co_test_http_header(h, name, buf, n))
        buf[0] = '\0';
}

static const char *const GWF_OA[] = {"Authorization: Bearer client-secret-key", "Content-Type: application/json", NULL};
static const char *const GWF_AN[] = {"x-api-key: client-secret-key", "anthropic-version: 2023-06-01",
                                     "Content-Type: application/json", NULL};

/* POST an OpenAI chat request for model with one user message. */
GWF_FN void gwf_chat(gwf *f, co_test_http *h, const char *model, int stream, const char *text, const char *user)
{
    char body[2048];
    snprintf(body, sizeof body, "{\"model\":\"%s\",\"stream\":%s,%s%s%s\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}",
             model, stream ? "true" : "false", user ? "\"user\":\"" : "", user ? user : "", user ? "\"," : "", text);
    co_test_http_do(h, "POST", gwf_url(f, "/v1/chat/completions"), (const char **)GWF_OA, body, 0);
}

GWF_FN void gwf_messages(gwf *f, co_test_http *h, const char *model, int stream, const char *text)
{
    char body[2048];
    snprintf(body, sizeof body,
             "{\"model\":\"%s\",\"max_tokens\":200,\"stream\":%s,\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}",
             model, stream ? "true" : "false", text);
    co_test_http_do(h, "POST", gwf_url(f, "/v1/messages"), (const char **)GWF_AN, body, 0);
}

/* The text of an OpenAI chat response (JSON) or stream (SSE); malloc'd. */
GWF_FN char *gwf_openai_text(const co_test_http *h, int stream)
{
    size_t cap = 4096, n = 0;
    char *out = calloc(1, cap);
    if (!stream) {
        json_t *j = json_loadb(h->body, h->body_len, 0, NULL);
        json_t *m = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message");
        const char *t = json_string_value(json_object_get(m, "content"));
        snprintf(out, cap, "%s", t ? t : "");
        json_decref(j);
        return out;
    }
    co_test_sse s;
    co_test_sse_parse(h->body, h->body_len, &s);
    for (size_t i = 0; i < s.n; i++) {
        json_t *c = json_loads(s.v[i].data, 0, NULL);
        json_t *d = json_object_get(json_array_get(json_object_get(c, "choices"), 0), "delta");
        const char *t = json_string_value(json_object_get(d, "content"));
        if (t && n + strlen(t) + 1 < cap) {
            memcpy(out + n, t, strlen(t));
            n += strlen(t);
        }
        json_decref(c);
    }
    co_test_sse_free(&s);
    return out;
}

GWF_FN char *gwf_anthropic_text(const co_test_http *h, int stream)
{
    size_t cap = 4096, n = 0;
    char *out = calloc(1, cap);
    if (!stream) {
        json_t *j = json_loadb(h->body, h->body_len, 0, NULL);
        json_t *content = json_object_get(j, "content");
        for (size_t i = 0; i < json_array_size(content); i++) {
            const char *t = json_string_value(json_object_get(json_array_get(content, i), "text"));
            if (t && n + strlen(t) + 1 < cap) {
                memcpy(out + n, t, strlen(t));
                n += strlen(t);
            }
        }
        json_decref(j);
        return out;
    }
    co_test_sse s;
    co_test_sse_parse(h->body, h->body_len, &s);
    for (size_t i = 0; i < s.n; i++) {
        json_t *c = json_loads(s.v[i].data, 0, NULL);
        const char *t = json_string_value(json_object_get(json_object_get(c, "delta"), "text"));
        if (t && n + strlen(t) + 1 < cap) {
            memcpy(out + n, t, strlen(t));
            n += strlen(t);
        }
        json_decref(c);
    }
    co_test_sse_free(&s);
    return out;
}

/* POST JSON to the gateway's admin API. */
GWF_FN long gwf_admin(gwf *f, const char *path, const char *body, const char *token, char **resp)
{
    char auth[256];
    const char *hs[3] = {"Content-Type: application/json", NULL, NULL};
    if (token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        hs[1] = auth;
    }
    co_test_http h;
    co_test_http_do(&h, body ? "POST" : "GET", gwf_url(f, path), hs, body, 0);
    long st = h.status;
    if (resp)
        *resp = strdup(h.body);
    co_test_http_free(&h);
    return st;
}

#endif
