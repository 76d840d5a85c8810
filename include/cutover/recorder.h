/* The recorder: takes every exchange off the gateway's hot path and writes it
 * to the store in batches, on its own thread.
 *
 *   worker 0 ──push──► [ring 0] ─┐
 *   worker 1 ──push──► [ring 1] ─┼─► writer thread: redact → batch → co_store_record
 *   worker N ──push──► [ring N] ─┘       (its own co_store handle)
 *
 * Each gateway worker owns one bounded single-producer/single-consumer ring
 * (co_recorder_producer). co_recorder_push copies the exchange into one
 * allocation and never blocks, never locks: when the ring (or the worker's
 * share of the memory bound) is full, the record is dropped and counted.
 * Written records go back to their ring (up to 1 MiB each), and the next
 * pushes reuse their memory, so a worker's allocations are freed by that
 * worker only.
 *
 * The writer drains all rings, redacts request_json and output_text (API-key
 * look-alikes always, the rest per the co_redactor; see redact.h) and writes
 * up to `batch` records per transaction, as soon as a full batch is there and
 * otherwise every flush_interval. A ring passing half a batch wakes it (an
 * eventfd; no busy loop). When a write fails (store busy, disk full,
 * database gone) the writer keeps what it holds and retries with exponential
 * backoff, reopening its store handle unless the error was "busy"; while the
 * store fails it keeps draining the rings and holds at most `queue` records,
 * dropping the oldest beyond that (dropped_write_failed). Rows the store
 * refuses as invalid are isolated (the rest of their batch is written) and
 * counted (dropped_invalid).
 *
 * Priority (recorder.priority): in the background (the default) the writer
 * runs SCHED_IDLE, on CPU time no gateway thread wants, so writing never
 * delays a woken worker. A worker whose ring holds more than half its share
 * of background_backlog (not yet written) lifts it to nice 10, more than all
 * of it to nice 0; a worker that finds the writer's loop stalled for
 * 2 × flush_interval + 500 ms, a flush and shutdown lift it to nice 0. It
 * goes back to SCHED_IDLE once less than a batch waits. Coming back
 * from SCHED_IDLE needs CAP_SYS_NICE or RLIMIT_NICE >= 20; without either
 * (checked at start) the writer stays at normal priority and logs why.
 *
 * Nothing is lost silently: every record pushed is, in the end, either
 * recorded or counted in exactly one dropped_* counter, readable at any time
 * from any thread (co_recorder_stats); the log callback is told at most once
 * per log interval (1 s) about drops, and about write errors and recovery.
 *
 * Threads: co_recorder_push on a producer from its one worker thread only;
 * co_recorder_stats and co_recorder_flush from any thread; co_recorder_free
 * once, after every worker stopped pushing. The log callback runs on the
 * writer thread. */
#ifndef CUTOVER_RECORDER_H
#define CUTOVER_RECORDER_H

#include <stddef.h>
#include <stdint.h>

#include "cutover/config.h"
#include "cutover/redact.h"
#include "cutover/store.h"

typedef struct co_recorder co_recorder;
/* One worker's ring (returned by co_recorder_producer). */
typedef struct co_recorder_ring co_recorder_ring;

/* Levels are indexes into co_log_levels: 0 error, 1 warn, 2 info, 3 debug. */
enum { CO_RECORDER_LOG_ERROR = 0, CO_RECORDER_LOG_WARN = 1, CO_RECORDER_LOG_INFO = 2 };
typedef void (*co_recorder_log_fn)(void *ud, int level, const char *msg);
/* Opens the writer's store handle (default: co_store_open). Tests use it to
 * inject faults; a fleet could use it to pass connection options. */
typedef int (*co_recorder_open_fn)(co_store **out, const char *url, void *ud);

/* Optional settings; a zeroed struct (or NULL) means every default. */
typedef struct co_recorder_opts {
    /* Borrowed: must outlive the recorder, and is used on the writer thread
     * only (so no other thread may use it meanwhile). NULL: only API keys
     * are masked. */
    const co_redactor *redactor;
    size_t text_max;             /* bytes kept of request_json / output_text each (cut on a
                                    UTF-8 boundary, before redaction: a number cut in half
                                    at the very end may no longer be recognised; a cut
                                    request_json is no longer valid JSON); 0 = 256 KiB.
                                    Identifiers (workload, model, user key...) keep 256. */
    size_t max_bytes;            /* memory held by queued records, all workers together
                                    (each gets an equal share); 0 = 256 MiB */
    co_recorder_log_fn log;      /* NULL: no log */
    void *log_ud;
    int64_t log_interval_ms;     /* at most one drop (and one error) message per interval; 0 = 1000 */
    int64_t retry_min_ms;        /* first retry delay after a failed write; 0 = 50 */
    int64_t retry_max_ms;        /* backoff cap; 0 = 5000 */
    int64_t stop_timeout_ms;     /* how long co_recorder_free keeps retrying a failing store
                                    before dropping (and counting) what is left; 0 = 5000 */
    co_recorder_open_fn open;    /* NULL: co_store_open */
    void *open_ud;
} co_recorder_opts;

typedef struct co_recorder_counters {
    uint64_t pushed;               /* accepted by co_recorder_push */
    uint64_t recorded;             /* written to the store */
    uint64_t dropped_queue_full;   /* refused by push: the worker's ring or memory share was full */
    uint64_t dropped_write_failed; /* accepted, then dropped: the store kept failing while more
                                      than `queue` records were held, or at shutdown */
    uint64_t dropped_invalid;      /* refused by push (no workload, arm or role) or by the store
                                      (a value it rejects) */
    uint64_t write_errors;         /* failed write (and reopen) attempts; each is retried */
    uint64_t batches;              /* committed transactions */
    uint64_t reopens;              /* store handles reopened after a failed write */
    uint64_t queue_depth;          /* accepted but neither recorded nor dropped yet */
    uint64_t queue_high_water;     /* highest queue_depth seen (sampled at every write) */
    int store_ok;                  /* 0 while the store is failing */
    int background;                /* how far the writer yields: 2 SCHED_IDLE, 1 nice 10,
                                      0 normal priority */
    uint64_t lifts;                /* times a background writer was lifted a level (backlog,
                                      stalled loop, flush, shutdown) */
    uint64_t recycled;             /* pushes that reused the memory of a written record */
    char last_error[256];          /* the last write error ("" when none yet) */
} co_recorder_counters;

/* Opens the writer's store handle (so a bad URL fails here, with the store's
 * message), creates one ring per worker and starts the writer thread. conf
 * NULL: the cutover.yaml defaults (queue 65536, batch 512, flush_interval
 * 200ms, record_text on). Each ring holds queue / nworkers records, rounded
 * up to a power of two (at least 16). *out is the caller's to co_recorder_free. */
int co_recorder_new(co_recorder **out, const char *store_url, const co_recorder_conf *conf,
                    int nworkers);
int co_recorder_new_opts(co_recorder **out, const char *store_url, const co_recorder_conf *conf,
                         int nworkers, const co_recorder_opts *opts);

/* The ring of worker `worker_index` (0 .. nworkers-1); NULL when out of range. */
co_recorder_ring *co_recorder_producer(co_recorder *rec, int worker_index);
/* How many records the ring holds. */
size_t co_recorder_ring_capacity(const co_recorder_ring *p);

/* Copies x (strings into one allocation; text bounded by text_max, left out
 * when record_text is off) into the ring. Never blocks. 0 when accepted;
 * CO_EBUSY when the ring or memory share is full (counted in
 * dropped_queue_full), CO_EINVAL when x has no workload, arm or role
 * (counted in dropped_invalid), CO_ENOMEM (counted in dropped_queue_full).
 * From the ring's one worker thread only. */
int co_recorder_push(co_recorder_ring *p, const co_exchange *x);

/* Waits until every record pushed (on any ring) before the call has been
 * written or dropped; the writer writes what it holds at once (also retrying
 * a failing store right away, once). 0 when all of them were written;
 * CO_EIO when records were dropped meanwhile (see the counters);
 * CO_ETIMEDOUT after timeout_ms (< 0: wait without limit). Any thread. */
int co_recorder_flush(co_recorder *rec, int64_t timeout_ms);

/* A snapshot of the counters. Any thread, at any time. */
void co_recorder_stats(co_recorder *rec, co_recorder_counters *out);

/* Stops the writer after it has written what it holds and what the rings
 * hold (retrying a failing store for at most stop_timeout_ms, then counting
 * the rest as dropped_write_failed and logging it), closes its store handle
 * and frees everything. Every worker must have stopped pushing. NULL is a
 * no-op. */
void co_recorder_free(co_recorder *rec);

#endif
