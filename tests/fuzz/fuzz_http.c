/* Fuzz target: arbitrary bytes as what a client sends to the gateway's HTTP
 * server (src/gateway/http.c). The first byte picks where the rest is cut in
 * two writes; the bytes go through one end of a socketpair adopted as a
 * connection (gw_http__adopt), the event loop runs between the writes, the
 * replies are read and thrown away, the client half closes, and the server is
 * freed with whatever is still in flight. Handlers: /s streams, /h holds with
 * a gone callback, /n holds without one (both replied to before the end when
 * still alive), anything else echoes its body. Built with corpus_main.c for
 * ctest, or with clang -fsanitize=fuzzer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "gateway/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HELD 16

typedef struct fz {
    gw_hreq *held[HELD];
} fz;

static void gone(gw_hreq *q, void *arg)
{
    fz *f = arg;
    for (int i = 0; i < HELD; i++)
        if (f->held[i] == q)
            f->held[i] = NULL;
}

static int each(void *ud, const char *name, const char *value)
{
    size_t *n = ud;
    *n += strlen(name) + strlen(value);
    return 0;
}

static void on_request(gw_hreq *q, void *arg)
{
    fz *f = arg;
    const char *p = gw_hreq_path(q);
    size_t n = 0;
    gw_hreq_headers_each(q, each, &n);
    (void)gw_hreq_header(q, "content-type");
    (void)gw_hreq_method(q);
    if (p[0] == '/' && (p[1] == 'h' || p[1] == 'n')) {
        if (p[1] == 'h')
            gw_hreq_set_gone_cb(q, gone, f);
        for (int i = 0; i < HELD; i++)
            if (!f->held[i]) {
                f->held[i] = q;
                return;
            }
    }
    if (p[0] == '/' && p[1] == 's') {
        gw_hreq_add_header(q, "Content-Type", "text/event-stream");
        gw_hreq_start(q, 200);
        gw_hreq_chunk(q, "data: x\n\n", 9);
        gw_hreq_end(q);
        return;
    }
    size_t bl;
    char *b = gw_hreq_take_body(q, &bl);
    gw_hreq_add_header(q, "X-Method", gw_hreq_method_name(q));
    gw_hreq_reply(q, 200, b ? b : "", b ? bl : 0);
    free(b);
}

static void drain(int fd)
{
    char buf[4096];
    while (read(fd, buf, sizeof buf) > 0) {
    }
}

static void run(struct event_base *base, int fd, int rounds)
{
    for (int i = 0; i < rounds; i++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        drain(fd);
    }
}

static void feed(struct event_base *base, int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0) {
            run(base, fd, 2);
            k = send(fd, p, n, MSG_NOSIGNAL);
            if (k <= 0)
                return; /* the server closed */
        }
        p += k;
        n -= (size_t)k;
        run(base, fd, 2);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 20))
        return 0;
    struct event_base *base = event_base_new();
    if (!base)
        return 0;
    fz f = {0};
    gw_http_opts o = {.max_head = 2048, .max_body = 8192, .header_timeout_ms = 5000, .write_timeout_ms = 5000,
                      .on_request = on_request, .arg = &f};
    gw_http *h = gw_http_new(base, -1, &o);
    int sv[2];
    if (!h || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
        gw_http_free(h);
        event_base_free(base);
        return 0;
    }
    if (gw_http__adopt(h, sv[0]) < 0)
        close(sv[0]);
    size_t cut = size > 1 ? data[0] % size : 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    if (cut > n)
        cut = n;
    feed(base, sv[1], p, cut);
    feed(base, sv[1], p + cut, n - cut);
    run(base, sv[1], 3);
    if (data[0] & 1)
        gw_http_cork(h);
    for (int i = 0; i < HELD; i++) {
        gw_hreq *q = f.held[i];
        if (q) {
            f.held[i] = NULL;
            gw_hreq_reply(q, 202, "late", 4);
        }
    }
    if (data[0] & 1)
        gw_http_uncork(h);
    run(base, sv[1], 3);
    if (data[0] & 2)
        gw_http_stop(h);
    shutdown(sv[1], SHUT_WR);
    run(base, sv[1], 3);
    gw_http_free(h);
    close(sv[1]);
    event_base_free(base);
    return 0;
}
