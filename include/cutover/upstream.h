/* co_upstream: a per-worker asynchronous HTTP client for upstream model APIs,
 * driven by the worker's libevent event_base. Two engines behind one API:
 * plain http:// to an IP literal or localhost (self-hosted servers, the sim)
 * takes a native HTTP/1.1 client (one read event per connection for its
 * life, one writev per request, no proxy); everything else (https, HTTP/2,
 * names to resolve, proxies) goes through libcurl's multi_socket_action
 * interface (curl's sockets become libevent events, curl's single timeout
 * becomes one libevent timer). opts.curl_only sends every URL to libcurl.
 * No thread, no lock, no blocking call: everything runs inside the worker's
 * event loop. Callbacks, error classes, timeouts and limits are the same on
 * both engines; curl_code is 0 and curl_*_us repeat ttfb/total on the native
 * one.
 *
 * Threads. One co_upstream per worker thread, used only on the thread that
 * runs its event_base; every function here except co_upstream_stats must be
 * called on that thread. co_upstream_stats may be called from any thread
 * (e.g. the /metrics scrape) while the client is alive: every counter is an
 * atomic 64-bit value written by the worker alone with relaxed stores and
 * read with relaxed loads, so each value is whole and never goes backwards,
 * but no snapshot across counters is promised (a transfer may be counted in
 * `completed` a moment before its error class is).
 *
 * Global state. curl_global_init(CURL_GLOBAL_DEFAULT) must have run exactly
 * once, in main, before any worker creates its client (and
 * curl_global_cleanup after every client is freed): libcurl's global init is
 * not thread-safe and this module never calls it.
 *
 * Connections. Keep-alive connections are cached in the client (so per
 * worker) and reused per host: at most max_host_connections open to one
 * host (CURLMOPT_MAX_HOST_CONNECTIONS; transfers beyond it wait for a free
 * connection), at most max_cached_connections kept idle (CURLMOPT_MAXCONNECTS).
 * libcurl applies one per-host limit to every host of a client: give it the
 * largest max_connections of the providers the worker talks to, or give a
 * provider that needs its own limit its own client on the same event_base.
 * HTTP/2 is offered over TLS (ALPN; CURL_HTTP_VERSION_2TLS) unless
 * http1_only, and its streams are multiplexed on one connection; cleartext
 * URLs speak HTTP/1.1. TCP_NODELAY and TCP keep-alive are on, signals are
 * never used (CURLOPT_NOSIGNAL), redirects are not followed, only http and
 * https URLs are accepted, no "Expect: 100-continue" is ever sent, and no
 * Accept-Encoding is offered (the body is passed on exactly as the upstream
 * sent it, which keeps SSE unbuffered).
 *
 * Proxies: none unless opts.proxy names one. The http_proxy / https_proxy /
 * all_proxy / no_proxy environment variables are deliberately ignored, so a
 * gateway does not start routing model traffic through whatever proxy its
 * environment happens to carry; a deployment that needs a proxy says so in
 * the configuration (opts.proxy, CURLOPT_PROXY syntax).
 *
 * Secrets: the caller adds the provider's key header. Nothing here logs or
 * stores header values (curl's verbose mode is never turned on; error texts
 * never contain headers).
 *
 * Lifetime of a transfer. co_upstream_start returns a handle that stays
 * valid until its on_done callback returns; on_done is called exactly once
 * for every transfer co_upstream_start accepted (never when it returned an
 * error), and never from inside co_upstream_start or co_upstream_cancel:
 * always from the event loop, or from co_upstream_free. Transfers are freed
 * only at a safe point (after on_done returns, outside every libcurl
 * callback). */
#ifndef CUTOVER_UPSTREAM_H
#define CUTOVER_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "cutover/config.h"

struct event_base;

typedef struct co_upstream co_upstream;
typedef struct co_upstream_xfer co_upstream_xfer;

/* How a transfer ended, apart from its HTTP status. An HTTP error status
 * (500, 429, ...) with a complete body is CO_UPSTREAM_OK: the status and body
 * are passed through for the caller to judge. */
enum co_upstream_err {
    CO_UPSTREAM_OK = 0,              /* "none": a complete response arrived */
    CO_UPSTREAM_ECONNECT,            /* "connect": resolve / connect / TLS handshake failed */
    CO_UPSTREAM_ETIMEOUT_CONNECT,    /* "timeout_connect": no connection within connect_timeout */
    CO_UPSTREAM_ETIMEOUT_FIRST_BYTE, /* "timeout_first_byte": no response byte within first_byte_timeout */
    CO_UPSTREAM_ETIMEOUT_TOTAL,      /* "timeout_total": the whole transfer exceeded timeout */
    CO_UPSTREAM_ERESET,              /* "reset": connection reset / closed with no response / HTTP/2 stream reset */
    CO_UPSTREAM_ETRUNCATED,          /* "truncated": a chunked or Content-Length body ended early */
    CO_UPSTREAM_ETOO_BIG,            /* "too_big": body over max_response, or headers over max_header_bytes */
    CO_UPSTREAM_ECANCELLED,          /* "cancelled": co_upstream_cancel, a callback's ABORT, or co_upstream_free */
    CO_UPSTREAM_EOTHER,              /* "other": anything else (bad URL, out of memory, protocol error) */
    CO_UPSTREAM_E__COUNT
};
/* "none", "connect", "timeout_connect", ... ; "?" when out of range. Static. */
const char *co_upstream_err_name(int err);

/* Callback return values. */
enum {
    CO_UPSTREAM_CONTINUE = 0,
    CO_UPSTREAM_PAUSE = 1,   /* on_data only: this chunk was NOT consumed; it is offered again
                                after co_upstream_resume (possibly re-split) */
    CO_UPSTREAM_ABORT = 2,   /* stop the transfer: on_done follows with CO_UPSTREAM_ECANCELLED */
};

enum co_upstream_method { CO_UPSTREAM_POST = 0, CO_UPSTREAM_GET = 1 };

/* Response headers of the final (non-1xx) response, in arrival order. Names
 * as sent (HTTP/2: lower case), values trimmed. Valid during on_status and
 * until on_done returns. */
typedef struct co_upstream_header {
    const char *name, *value;
} co_upstream_header;
typedef struct co_upstream_headers {
    const co_upstream_header *v;
    size_t n;
} co_upstream_headers;
/* The value of the last header called name (case-insensitive), or NULL. */
const char *co_upstream_header_get(const co_upstream_headers *h, const char *name);

typedef struct co_upstream_result {
    int status;            /* HTTP status of the final response; 0 when none arrived */
    int err;               /* enum co_upstream_err */
    int curl_code;         /* the CURLcode the transfer ended with (0 when it was ended by
                              us: cancel, first-byte timeout) */
    const char *error;     /* what went wrong, for logs: curl's error text or ours; "" when OK.
                              Never contains header values. */
    /* timings, microseconds; -1 when the point was never reached */
    int64_t connect_us;    /* curl: start to connected (tiny on a reused connection) */
    int64_t ttfb_us;       /* co_upstream_start to the first response byte (status line) */
    int64_t total_us;      /* co_upstream_start to on_done */
    int64_t curl_ttfb_us;  /* curl's own CURLINFO_STARTTRANSFER_TIME_T */
    int64_t curl_total_us; /* curl's own CURLINFO_TOTAL_TIME_T */
    uint64_t bytes;        /* body bytes received (consumed by on_data, or buffered) */
    int reused;            /* a kept-alive connection served it (no new connection opened) */
    int http_version;      /* 1 or 2; 0 when no response */
    /* Buffered mode (no on_data callback): the whole body, NUL-terminated;
     * NULL/0 in streaming mode. Valid until on_done returns. */
    const char *body;
    size_t body_len;
    const co_upstream_headers *headers; /* never NULL; n == 0 when no final response */
} co_upstream_result;

/* The callbacks of one transfer (copied by co_upstream_start). All run on
 * the worker thread, from the event loop. Inside any of them the caller may
 * call co_upstream_cancel (on this or any transfer), co_upstream_resume,
 * co_upstream_start (a new transfer; it begins once the callback returns)
 * and co_upstream_free (takes effect when the event-loop callback that
 * invoked it unwinds). Never run the event loop from inside a callback. */
typedef struct co_upstream_cb {
    /* Once, when the final response's headers are in (never for 1xx).
     * Return CONTINUE, or ABORT to stop. May be NULL. */
    int (*on_status)(co_upstream_xfer *x, void *ud, int status, const co_upstream_headers *h);
    /* For each body chunk as it arrives (SSE: forward as it comes). Return
     * CONTINUE, PAUSE or ABORT. NULL: buffered mode, the body is collected
     * (at most max_response bytes) and handed to on_done. */
    int (*on_data)(co_upstream_xfer *x, void *ud, const char *data, size_t len);
    /* Exactly once. The handle is invalid once it returns. May be NULL. */
    void (*on_done)(co_upstream_xfer *x, void *ud, const co_upstream_result *r);
} co_upstream_cb;

typedef struct co_upstream_req {
    int method;                  /* enum co_upstream_method; POST (0) by default */
    const char *url;             /* http:// or https://; copied */
    const char *const *headers;  /* "Name: value" lines ending with NULL (may be NULL); copied.
                                    A POST without a Content-Type header gets
                                    "Content-Type: application/json". */
    const void *body;            /* POST body; copied unless borrow_body */
    size_t body_len;
    int borrow_body;             /* 1: body is used in place and must stay valid and unchanged
                                    until on_done returns (saves a copy of large bodies) */
    /* 0: the client's default (co_upstream_opts) */
    int64_t connect_timeout_ms;    /* to establish the connection (TCP + TLS) */
    int64_t first_byte_timeout_ms; /* from co_upstream_start to the first response byte:
                                      waiting for a free connection, connecting, sending the
                                      request and the upstream's think time included */
    int64_t timeout_ms;            /* the whole transfer, streaming included */
    size_t max_response;           /* most body bytes accepted (a Content-Length above it fails
                                      before any body arrives); above it: CO_UPSTREAM_ETOO_BIG */
} co_upstream_req;

/* Client settings; a zeroed struct (or NULL) means every default. */
typedef struct co_upstream_opts {
    long max_host_connections;   /* per host; 0 = 256 (provider max_connections default) */
    long max_total_connections;  /* all hosts together; 0 = no limit */
    long max_cached_connections; /* idle keep-alive connections kept; 0 = 4 x max_host_connections */
    int64_t connect_timeout_ms;    /* request defaults: 0 = 5 s */
    int64_t first_byte_timeout_ms; /* 0 = 60 s */
    int64_t timeout_ms;            /* 0 = 300 s */
    size_t max_response;           /* 0 = 16 MiB (limits.max_upstream_body default) */
    size_t max_header_bytes;       /* response header block; 0 = 64 KiB */
    int http1_only;                /* do not offer HTTP/2 */
    const char *proxy;             /* NULL: no proxy, environment ignored; copied */
    const char *ca_file;           /* NULL: the system's CA bundle; copied */
    const char *user_agent;        /* NULL: "cutover/<version>"; copied */
    int curl_only;                 /* every URL through libcurl: no native HTTP/1.1 path */
} co_upstream_opts;

/* Fills the request defaults and max_host_connections from a provider's
 * connect_timeout, first_byte_timeout, timeout and max_connections. */
void co_upstream_opts_from_provider(co_upstream_opts *o, const co_provider_conf *p);
/* Fills a request's three timeouts from a provider. */
void co_upstream_req_timeouts(co_upstream_req *r, const co_provider_conf *p);

/* Counters of one client (co_upstream_stats). */
typedef struct co_upstream_counters {
    uint64_t in_flight;   /* gauge: started and not yet done */
    uint64_t started;     /* transfers accepted by co_upstream_start */
    uint64_t completed;   /* on_done calls */
    uint64_t connects;    /* connections opened (sum of CURLINFO_NUM_CONNECTS, counted as
                             each transfer completes) */
    uint64_t reused;      /* transfers served on a kept-alive connection */
    uint64_t bytes_in;    /* body bytes received */
    uint64_t by_err[CO_UPSTREAM_E__COUNT]; /* completed transfers by class ([0]: OK) */
} co_upstream_counters;

/* A client on base. Errors: CO_EINVAL, CO_ENOMEM, CO_EIO (libcurl refused). */
int co_upstream_new(co_upstream **out, struct event_base *base, const co_upstream_opts *opts);
/* Cancels every transfer in flight, calling each one's on_done (cancelled)
 * exactly once before it returns, then closes the connections and frees the
 * client. Called from inside one of this client's callbacks, the same happens
 * when that event-loop callback unwinds. Free the client before its
 * event_base. NULL is a no-op. */
void co_upstream_free(co_upstream *up);

/* Starts a transfer (it runs once control returns to the event loop).
 * out (may be NULL) receives the handle. Errors, with no callback ever
 * called: CO_EINVAL (no URL, no on_done and no on_data...), CO_ENOMEM,
 * CO_ESTATE (the client is being freed), CO_EIO (libcurl refused). */
int co_upstream_start(co_upstream *up, const co_upstream_req *req, const co_upstream_cb *cbs, void *ud,
                      co_upstream_xfer **out);
/* Stops a transfer (client went away, shadow no longer wanted). Safe from
 * anywhere on the worker thread, including the transfer's own callbacks;
 * on_done (CO_UPSTREAM_ECANCELLED) follows from the event loop, once; no
 * on_data after the call. A no-op once on_done has begun, or when repeated. */
void co_upstream_cancel(co_upstream_xfer *x);
/* Resumes a transfer paused by on_data returning CO_UPSTREAM_PAUSE: the
 * held chunk is offered again from the event loop, never from inside this
 * call. It may also be called from the very on_data that is about to return
 * PAUSE. A no-op when the transfer is not paused by the time the event loop
 * gets to it, or once on_done has begun. */
void co_upstream_resume(co_upstream_xfer *x);

/* A snapshot of the counters; from any thread while the client is alive
 * (relaxed atomic loads; see the top of this file). */
void co_upstream_stats(const co_upstream *up, co_upstream_counters *out);

#endif
