/* Internal to the gateway: the HTTP/1.1 server the gateway's listeners run
 * on (the main listener on every worker, the admin listener on the control
 * thread). One gw_http serves the connections of one listening socket on one
 * event base, single-threaded. Each connection keeps one read event for its
 * whole life; requests are parsed by nodejs' http-parser (Debian's
 * libhttp-parser) straight from the connection's read buffer; a reply is
 * written the moment it is made (unless the server is corked) and only a
 * short write waits for the socket. Not a public API.
 *
 * Ownership: gw_http_new's caller owns the gw_http and frees it with
 * gw_http_free, which closes the listening socket and every connection
 * (telling requests in flight through their gone callback). A gw_hreq is the
 * handler's from the on_request callback until it calls a finishing function
 * (gw_hreq_reply, gw_hreq_end) or until its gone callback returns, whichever
 * is first; after that it must not be touched. Callbacks never run inside a
 * gw_hreq_* or gw_http_* call made by the handler (a pipelined request that
 * a finished reply uncovers is dispatched from the event loop). */
#ifndef CUTOVER_GATEWAY_HTTP_H
#define CUTOVER_GATEWAY_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <event2/util.h>

#include "cutover/buf.h"

struct event_base;
struct sockaddr;
typedef struct gw_http gw_http;
typedef struct gw_hreq gw_hreq;

enum {
    GW_HTTP_GET = 1,
    GW_HTTP_HEAD,
    GW_HTTP_POST,
    GW_HTTP_PUT,
    GW_HTTP_DELETE,
    GW_HTTP_PATCH,
    GW_HTTP_OPTIONS,
    GW_HTTP_OTHER /* any other method http-parser knows: routed, answered 405 by the handler */
};

/* A request is complete (head and whole body in): the handler owns q. */
typedef void (*gw_http_request_cb)(gw_hreq *q, void *arg);

/* The HTTP layer answers some requests itself (malformed: 400; head over
 * max_head: 431; body over max_body: 413; head not complete within
 * header_timeout: 408; a Transfer-Encoding other than chunked: 501; a
 * version other than 1.x: 505). This callback supplies those replies' body
 * (JSON) and any extra header lines ("Name: value\r\n" each) so that they
 * look like the embedder's own errors. Content-Type application/json,
 * Content-Length and Connection: close are added by the layer; every such
 * reply closes the connection. May be NULL: then the body is
 * {"error":{"message":...,"type":...}} and no extra headers. */
typedef void (*gw_http_error_cb)(void *arg, int status, const char *message, co_buf *extra_headers, co_buf *body);

typedef struct gw_http_opts {
    size_t max_head;           /* request line + header lines, bytes (0: 64 KiB; http-parser's own 80 KiB also applies) */
    size_t max_body;           /* de-chunked body bytes (0: 4 MiB) */
    /* From a request's first byte until its head is complete (an absolute
     * deadline: a client trickling bytes gains nothing), and between two
     * reads of its body: past it the client gets a 408 and the connection is
     * closed. Also how long a kept-alive connection may sit idle before it is
     * closed, without a word. 0: 10 s. */
    int64_t header_timeout_ms;
    /* A reply the client stops reading: the connection is closed after this
     * long without the socket taking a byte (0: 60 s). */
    int64_t write_timeout_ms;
    size_t max_conns;          /* connections open at once; past it new ones are closed at accept (0: no limit) */
    /* Counters owned by the caller and read from any thread; each may be
     * NULL. accept_paused: times accepting stopped for 100 ms because the
     * process ran out of descriptors (EMFILE, ENFILE) or memory;
     * refused_at_limit: connections closed as they were accepted because
     * max_conns were open. */
    _Atomic uint64_t *accept_paused, *refused_at_limit;
    gw_http_request_cb on_request;
    gw_http_error_cb on_error;
    void *arg;                 /* passed to both */
} gw_http_opts;

/* A non-blocking, close-on-exec listening socket bound to sa (SO_REUSEADDR;
 * SO_REUSEPORT too when reuseport, so that several loops share the address),
 * backlog 1024; -1 with errno set. */
evutil_socket_t gw_http_listen(const struct sockaddr *sa, int salen, int reuseport);

/* Serves the listening socket fd (non-blocking, already listening; owned
 * from now on: closed by gw_http_stop or gw_http_free) on base. Copies
 * opts. NULL when out of memory (fd is then closed). */
gw_http *gw_http_new(struct event_base *base, evutil_socket_t fd, const gw_http_opts *opts);

/* New limits and timeouts for requests that start from now on (a reload;
 * max_conns for connections accepted from now on); on_request, on_error and
 * arg are kept. */
void gw_http_set_limits(gw_http *h, size_t max_head, size_t max_body, int64_t header_timeout_ms,
                        int64_t write_timeout_ms, size_t max_conns);

/* Draining: closes the listening socket, closes every idle connection at
 * once, and has every other one close after its current reply (which then
 * says Connection: close). Requests in flight finish normally; a connection
 * whose request is only partly in (head or body still arriving) is closed at
 * once, without a reply (the client may retry elsewhere). */
void gw_http_stop(gw_http *h);

/* Connections open (idle, reading or busy). */
size_t gw_http_conns(const gw_http *h);

/* Cork: while corked (a counter; calls nest), replies are queued, not
 * written; the last gw_http_uncork writes every queued reply at once. The
 * gateway corks around an upstream call's completion so that its reply goes
 * out only after the exchange was counted and queued for the store. */
void gw_http_cork(gw_http *h);
void gw_http_uncork(gw_http *h);

/* Closes everything; requests in flight get their gone callback first.
 * Not from inside one of h's own callbacks. */
void gw_http_free(gw_http *h);

/* ---- a request ---------------------------------------------------------- */

int gw_hreq_method(const gw_hreq *q);
/* The method as sent ("POST"), NUL-terminated. */
const char *gw_hreq_method_name(const gw_hreq *q);
/* The request target's path, up to '?' or '#', not percent-decoded, never
 * NULL or empty ("/" at least). An absolute-form target
 * ("http://host/path") gives its path. */
const char *gw_hreq_path(const gw_hreq *q);
/* The first header of that name (ASCII case-insensitive), its value with
 * surrounding blanks trimmed, NUL-terminated; NULL when absent. Valid while
 * the handler owns q. */
const char *gw_hreq_header(const gw_hreq *q, const char *name);
/* Calls fn for every header in order until it returns non-zero. */
void gw_hreq_headers_each(const gw_hreq *q, int (*fn)(void *ud, const char *name, const char *value), void *ud);
/* The whole body, de-chunked, NUL-terminated (the NUL not counted); "" and 0
 * when there is none. Valid while the handler owns q. */
const char *gw_hreq_body(const gw_hreq *q, size_t *len);
/* Moves the body to the caller (free() it; NUL-terminated). Afterwards
 * gw_hreq_body gives "" and 0. NULL when out of memory. */
char *gw_hreq_take_body(gw_hreq *q, size_t *len);
/* HTTP/1.minor of the request (0 or 1). */
int gw_hreq_minor(const gw_hreq *q);

/* A response header, before the reply starts. Name and value must not hold
 * CR or LF (such a header is refused: -1). Content-Length,
 * Transfer-Encoding and Connection are the layer's own: Connection: close
 * given here makes the connection close after this reply, the others are
 * refused. */
int gw_hreq_add_header(gw_hreq *q, const char *name, const char *value);

/* A complete reply, Content-Length framed (a HEAD request gets the head
 * only). Finishes q. */
void gw_hreq_reply(gw_hreq *q, int status, const void *body, size_t len);

/* A streamed reply: the head now, chunked (read-to-close for an HTTP/1.0
 * client, which then loses the connection's keep-alive). */
void gw_hreq_start(gw_hreq *q, int status);
/* Appends bytes to a started reply (n == 0: nothing). */
void gw_hreq_chunk(gw_hreq *q, const void *p, size_t n);
/* Reply bytes the socket has not taken yet. */
size_t gw_hreq_pending(const gw_hreq *q);
/* cb runs once the pending bytes were all written, each time they were not
 * (for back-pressure on a stream: pause the upstream while pending is high,
 * resume from cb). */
void gw_hreq_set_drained_cb(gw_hreq *q, void (*cb)(gw_hreq *q, void *arg), void *arg);
/* Ends a started reply (the last chunk). Finishes q. */
void gw_hreq_end(gw_hreq *q);

/* The client went away (connection closed or reset, a write failed, the
 * write timeout, gw_http_free) before q was finished: cb runs once, and q is
 * freed when it returns. cb must not call gw_hreq_* on q. Without a gone
 * callback q stays the handler's until it finishes it (the reply then goes
 * nowhere), except that gw_http_free frees it: a handler that outlives its
 * gw_http must not touch its requests. */
void gw_hreq_set_gone_cb(gw_hreq *q, void (*cb)(gw_hreq *q, void *arg), void *arg);

/* The request target as sent (path and query), NUL-terminated. */
const char *gw_hreq_target(const gw_hreq *q);

/* A streamed reply framed by a Content-Length of len instead of chunks: the
 * body follows in gw_hreq_chunk calls, unframed, and gw_hreq_end ends it
 * (cutover sim uses it to promise a body it then cuts short). */
void gw_hreq_start_sized(gw_hreq *q, int status, size_t len);

/* Drops q's connection without completing its reply. The bytes queued so
 * far are written first (within the write timeout), unless reset: then the
 * connection is reset at once (SO_LINGER 0: a TCP RST). Finishes q. */
void gw_hreq_abort(gw_hreq *q, int reset);

/* The file descriptor of q's connection (for logs and tests only). */
evutil_socket_t gw_hreq_fd(const gw_hreq *q);

/* The standard reason phrase of status ("Not Found"); "Unknown" for others. */
const char *gw_http_reason(int status);

/* ---- for tests and the fuzzer ------------------------------------------- */

/* gw_http_new accepts fd < 0: a server without a listening socket, fed by
 * gw_http__adopt. */
/* Serves fd (a connected, non-blocking stream socket, e.g. one end of a
 * socketpair; owned from now on) as if it had just been accepted. 0, or -1
 * when out of memory (fd is then not owned). */
int gw_http__adopt(gw_http *h, evutil_socket_t fd);

#endif
