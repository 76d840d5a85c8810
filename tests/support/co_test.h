/* Shared helpers for cutover's cmocka tests: run the real binary as a child
 * and find its port from its "listening on HOST:PORT" line, stop and reap it;
 * make HTTP requests with libcurl (status, headers, body, transfer error);
 * parse SSE bodies; temporary directories removed at exit.
 *
 * Every child gets PR_SET_PDEATHSIG so nothing outlives a crashed test, and
 * every wait has a timeout. */
#ifndef CO_TEST_H
#define CO_TEST_H

#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>

/* ---- child processes ----------------------------------------------------- */

typedef struct co_test_proc {
    pid_t pid;
    int out_fd;            /* read end of the child's stdout */
    char host[64];         /* from the ready line */
    int port;
    char line[512];        /* the ready line itself, without the newline */
    /* stdout after the ready line, kept by a drain thread (bounded) */
    pthread_t drain;
    int draining;
    volatile int stopping;
    pthread_mutex_t mu;
    char *out;
    size_t out_len;
} co_test_proc;

/* $CUTOVER_BIN (set by ctest), or NULL when unset. */
const char *co_test_bin(void);

/* Starts argv[0] with argv (stdout piped, stderr inherited) and waits up to
 * timeout_ms for a stdout line containing "listening on HOST:PORT". Extra
 * environment entries ("K=V", NULL-terminated; may be NULL) are added to the
 * current environment. Returns 0 with host/port set; otherwise the child is
 * killed and reaped and -1 is returned (with a message on stderr). */
int co_test_spawn(co_test_proc *p, char *const argv[], char *const env[], int timeout_ms);
/* Sends SIGTERM, waits up to 5 s, then SIGKILL; reaps the child and frees
 * the captured output. Returns the exit code, 128+signal if killed by one,
 * or -1 if it had to be killed with SIGKILL. */
int co_test_stop(co_test_proc *p);
/* A copy of what the child printed on stdout after the ready line so far
 * (malloc'd, NUL-terminated). */
char *co_test_output(co_test_proc *p);

/* ---- HTTP ---------------------------------------------------------------- */

typedef struct co_test_http {
    long status;           /* 0 when no response arrived */
    int curl_code;         /* CURLE_OK, or the transfer error (e.g. 18 partial, 28 timeout, 52 empty, 56 recv) */
    char *headers;         /* raw header block(s), NUL-terminated */
    char *body;            /* NUL-terminated; body_len bytes */
    size_t body_len;
    double seconds;        /* total transfer time */
} co_test_http;

/* One request. headers: NULL-terminated "Name: value" strings (may be NULL);
 * body: NULL for none; timeout_ms 0 = 30 s. Never uses a proxy. Fills res
 * either way and returns its curl_code. */
int co_test_http_do(co_test_http *res, const char *method, const char *url,
                    const char *const *headers, const char *body, long timeout_ms);
/* The value of a response header (case-insensitive, last header block)
 * copied into buf; NULL when absent. */
const char *co_test_http_header(const co_test_http *res, const char *name, char *buf, size_t n);
void co_test_http_free(co_test_http *res);

/* ---- SSE ----------------------------------------------------------------- */

typedef struct co_test_sse_event {
    char *event;           /* NULL when the event had no "event:" line */
    char *data;            /* data lines joined with "\n" */
} co_test_sse_event;

typedef struct co_test_sse {
    co_test_sse_event *v;
    size_t n;
    int complete;          /* the body ended with a blank line (no partial event) */
} co_test_sse;

/* Parses an SSE body (LF or CRLF line ends). Returns 0 or -1 (out of memory). */
int co_test_sse_parse(const char *body, size_t len, co_test_sse *out);
void co_test_sse_free(co_test_sse *s);

/* ---- files --------------------------------------------------------------- */

/* A new temporary directory (malloc'd path), removed with its contents at
 * exit (or earlier with co_test_rmtree). NULL on failure. */
char *co_test_tmpdir(void);
/* Writes content to dir/name; returns the malloc'd full path (NULL on failure). */
char *co_test_write(const char *dir, const char *name, const char *content);
/* rm -rf path. */
int co_test_rmtree(const char *path);

#endif
