/* The recorder (see include/cutover/recorder.h).
 *
 * Rings: one SPSC ring per worker. The producer owns `head` (and its private
 * cache of `tail`); the writer owns `tail`. A slot is written before the
 * release store of head that publishes it and read after the writer's acquire
 * load of head; the writer's release store of tail hands the slot back. The
 * producer and writer halves of a ring sit on separate cache lines.
 *
 * Accounting: every accepted record ends in exactly one of recorded /
 * dropped_write_failed / dropped_invalid, and then bumps its ring's `done`.
 * queue_depth = sum(head) - sum(done); co_recorder_flush waits for
 * done >= head-at-the-call on every ring. Each ring's memory share is charged
 * by the producer (bytes_in, private) and credited by the writer when it
 * frees a record (bytes_out).
 *
 * The writer thread alone touches the store handle, the hand (records taken
 * from the rings, FIFO, at most `queue`), the redactor and the log callback.
 *
 * Priority: a background writer runs SCHED_IDLE (level REC_IDLE), so a woken
 * gateway thread takes its CPU at once and the scheduler places woken
 * threads on its CPU as on an idle one. It cannot notice its own starvation,
 * so the others lift it: a producer past half its share of
 * background_backlog to nice REC_LOW_NICE (REC_LOW: about a tenth of a CPU
 * it shares with one busy thread), past all of it or
 * finding the writer's loop stalled for stall_ms to nice 0 (REC_NORMAL), as
 * do a flusher and shutdown. The writer drops back to REC_IDLE once less
 * than a batch waits. The thread's policy and `level` change together under
 * prio_mu. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cutover/error.h"
#include "cutover/recorder.h"
#include "cutover/util.h"

#define REC_DEFAULT_QUEUE 65536
#define REC_DEFAULT_BATCH 512
#define REC_DEFAULT_FLUSH_MS 200
#define REC_DEFAULT_TEXT_MAX (256u * 1024u)
#define REC_DEFAULT_MAX_BYTES ((size_t)256 * 1024 * 1024)
#define REC_MIN_RING 16
#define REC_MAX_WORKERS 4096
#define REC_FIELD_MAX 256 /* identifiers: workload, model, user key... */
#define REC_BATCHES_PER_CYCLE 64
#define REC_DEFAULT_BACKLOG ((int64_t)4 * 1024 * 1024)
#define REC_LOW_NICE 10
/* Finished records each ring may hold for its producer to reuse. */
#define REC_RETURN_MAX ((uint64_t)1024 * 1024) /* a batch of ~2 KB records */

/* The writer's priority levels; larger yields more. */
enum { REC_NORMAL = 0, REC_LOW = 1, REC_IDLE = 2 };

typedef struct rec_item {
    co_exchange x;  /* strings point into data[] (text: or into red_*) */
    char *red_req;  /* the writer's redacted copies */
    char *red_out;
    size_t lreq, lout; /* lengths of the text as pushed */
    size_t bytes;   /* charged to the ring's memory share: its allocation's size */
    struct rec_item *next_returned;
    uint32_t ring;
    int redacted;
    char data[];
} rec_item;

struct co_recorder_ring {
    /* Producer side. */
    alignas(64) atomic_size_t head;
    atomic_uint_least64_t dropped_full;
    atomic_uint_least64_t dropped_invalid;
    size_t cached_tail;
    uint64_t bytes_in;
    uint64_t cached_bytes_out;
    rec_item *spare;        /* taken back from `returned`, not reused yet */
    atomic_uint_least64_t recycled;
    /* Writer side. */
    alignas(64) atomic_size_t tail;
    atomic_uint_least64_t done;
    atomic_uint_least64_t bytes_out;
    /* Finished records handed back to the producer (a stack the writer
     * pushes onto and the producer takes whole) and their bytes. */
    alignas(64) _Atomic(rec_item *) returned;
    atomic_uint_least64_t returned_bytes;
    /* Both: set by a producer that woke the writer, cleared by the writer. */
    alignas(64) atomic_int signalled;
    /* Read-only after creation. */
    alignas(64) rec_item **slots;
    size_t mask;
    size_t wake_at;
    uint64_t byte_budget;
    uint64_t lift_at; /* this ring's share of background_backlog */
    size_t text_max;
    int record_text;
    uint32_t index;
    co_recorder *rec;
};

/* The writer's FIFO of records taken from the rings; grows up to `cap`. */
typedef struct hand {
    rec_item **v;
    size_t alloc, first, n, cap;
} hand;

struct co_recorder {
    co_recorder_ring *rings;
    int nrings;
    char *url;
    size_t batch;
    int64_t flush_ms;
    co_recorder_opts opts;
    int efd;

    /* Control. */
    atomic_int stop;
    atomic_uint_least64_t flush_gen;
    atomic_int writer_done;
    pthread_t writer;
    int writer_started;
    pthread_mutex_t mu; /* guards last_error; cv tells flushers about progress */
    pthread_cond_t cv;
    char last_error[256];

    /* Priority (see the top of the file). */
    pthread_mutex_t prio_mu;
    atomic_int level;     /* REC_NORMAL, REC_LOW or REC_IDLE */
    atomic_int writer_tid;
    atomic_int bg_wanted; /* priority: background, and the process may come back from it */
    int bg_refused;       /* priority: background, but it may not (logged once by the writer) */
    atomic_uint_least64_t lifts;
    atomic_int_least64_t alive_ms; /* mono ms the writer last went round its loop or committed */
    int64_t stall_ms;

    /* Writer counters (written by the writer only, read anywhere). */
    atomic_uint_least64_t recorded, batches, write_errors, reopens;
    atomic_uint_least64_t dropped_write_failed, dropped_invalid;
    atomic_uint_least64_t high_water;
    atomic_int store_ok;

    /* Writer-thread state. */
    co_store *st;
    hand hd;
    co_exchange *xs;
    int failing;
    int64_t retry_at, backoff, fail_count;
    uint64_t rng; /* backoff jitter */
    int64_t next_tick;
    uint64_t flush_seen;
    unsigned drain_start;
    int64_t last_drop_log, last_err_log, last_invalid_log;
    uint64_t logged_full, logged_failed, logged_invalid;
    int redact_failed_logged;
    int err_logged;
};

/* ---- small helpers -------------------------------------------------------- */

static int64_t mono_ms(void) { return co_mono_us() / 1000; }

static void bump(atomic_uint_least64_t *c, uint64_t by)
{
    /* Single writer per counter: no read-modify-write needed. */
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + by,
                          memory_order_relaxed);
}

static uint64_t get(const atomic_uint_least64_t *c)
{
    return atomic_load_explicit((atomic_uint_least64_t *)c, memory_order_relaxed);
}

static void wake_writer(co_recorder *rec)
{
    uint64_t one = 1;
    ssize_t w = write(rec->efd, &one, sizeof one);
    (void)w; /* EAGAIN: the counter is already non-zero, the writer will wake */
}

static void rec_log(co_recorder *rec, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void rec_log(co_recorder *rec, int level, const char *fmt, ...)
{
    if (!rec->opts.log)
        return;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    rec->opts.log(rec->opts.log_ud, level, msg);
}

static size_t next_pow2(size_t v)
{
    size_t p = 1;
    while (p < v)
        p <<= 1;
    return p;
}

/* Length of s bounded by max, cut back to a UTF-8 character boundary. */
static size_t bounded_len(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n <= max)
        return n;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* ---- priority ------------------------------------------------------------- */

/* struct sched_attr of sched_setattr(2), which glibc 2.36 does not declare:
 * the one call that sets another thread's policy and nice together. */
typedef struct co__sched_attr {
    uint32_t size, policy;
    uint64_t flags;
    int32_t nice;
    uint32_t priority;
    uint64_t runtime, deadline, period;
} co__sched_attr;

static int set_level(int tid, int level)
{
    co__sched_attr a = {.size = sizeof a,
                        .policy = level == REC_IDLE ? SCHED_IDLE : SCHED_OTHER,
                        .nice = level == REC_LOW ? REC_LOW_NICE : 0};
    return syscall(SYS_sched_setattr, tid, &a, 0) == 0 ? 0 : -1;
}

/* An unprivileged thread may enter SCHED_IDLE or a higher nice but leave
 * them only when RLIMIT_NICE allows nice 0 (or with CAP_SYS_NICE): every
 * step is tried on a throwaway thread, which inherits both, so the writer
 * never gets stuck. */
static void *probe_main(void *arg)
{
    int *ok = arg, tid = (int)syscall(SYS_gettid);
    *ok = set_level(tid, REC_IDLE) == 0 && set_level(tid, REC_LOW) == 0 && set_level(tid, REC_NORMAL) == 0 &&
          set_level(tid, REC_IDLE) == 0 && set_level(tid, REC_NORMAL) == 0;
    return NULL;
}

static int may_leave_background(void)
{
    pthread_t t;
    int ok = 0;
    if (pthread_create(&t, NULL, probe_main, &ok))
        return 0;
    pthread_join(t, NULL);
    return ok;
}

/* Caller holds prio_mu. Only ever raises the writer's priority. */
static void lift_locked(co_recorder *rec, int to)
{
    if (atomic_load_explicit(&rec->level, memory_order_relaxed) <= to)
        return;
    if (set_level(atomic_load_explicit(&rec->writer_tid, memory_order_relaxed), to) != 0)
        atomic_store_explicit(&rec->bg_wanted, 0, memory_order_relaxed); /* not after the probe */
    atomic_store_explicit(&rec->level, to, memory_order_release);
    atomic_fetch_add_explicit(&rec->lifts, 1, memory_order_relaxed);
}

static void lift(co_recorder *rec, int to)
{
    pthread_mutex_lock(&rec->prio_mu);
    lift_locked(rec, to);
    pthread_mutex_unlock(&rec->prio_mu);
}

/* ---- producer side -------------------------------------------------------- */

static int drop_full(co_recorder_ring *q, int status, const char *why)
{
    bump(&q->dropped_full, 1);
    return co_error_set(status, "recorder: %s (worker %u): exchange dropped and counted", why,
                        (unsigned)q->index);
}

/* Written records go back to the ring they came from (give_back), and its
 * producer allocates the next ones out of them: malloc and free stay on the
 * worker that owns the memory. A writer freeing a worker's allocations
 * takes that worker's malloc arena lock 512 times a batch, and as a
 * background thread it can be preempted holding it; reusing the records
 * also keeps their memory warm. Records of a workload are of similar size:
 * one that fits without wasting more than half of itself is reused, and a
 * few that do not are freed here, by the thread that allocated them. */
static rec_item *take_returned(co_recorder_ring *q, size_t size)
{
    for (int looked = 0; looked < 4; looked++) {
        if (!q->spare) {
            if (!atomic_load_explicit(&q->returned, memory_order_relaxed))
                return NULL;
            q->spare = atomic_exchange_explicit(&q->returned, NULL, memory_order_acquire);
        }
        rec_item *it = q->spare;
        q->spare = it->next_returned;
        atomic_fetch_sub_explicit(&q->returned_bytes, it->bytes, memory_order_relaxed);
        if (it->bytes >= size && it->bytes / 2 <= size)
            return it;
        free(it);
    }
    return NULL;
}

/* A record taken back but not used after all (the memory share was full). */
static void keep_spare(co_recorder_ring *q, rec_item *it)
{
    atomic_fetch_add_explicit(&q->returned_bytes, it->bytes, memory_order_relaxed);
    it->next_returned = q->spare;
    q->spare = it;
}

int co_recorder_push(co_recorder_ring *q, const co_exchange *x)
{
    if (!q || !x)
        return co_error_set(CO_EINVAL, "co_recorder_push: %s is NULL", q ? "exchange" : "ring");
    if (!x->workload || !x->workload[0] || !x->arm || !x->arm[0] || !x->role || !x->role[0]) {
        bump(&q->dropped_invalid, 1);
        return co_error_set(CO_EINVAL, "recorder: exchange without a workload, arm or role "
                                       "dropped and counted");
    }
    size_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
    if (head - q->cached_tail > q->mask) {
        q->cached_tail = atomic_load_explicit(&q->tail, memory_order_acquire);
        if (head - q->cached_tail > q->mask)
            return drop_full(q, CO_EBUSY, "queue full");
    }

    const char *f[8] = {x->workload, x->arm,     x->role,         x->model,
                        x->api,      x->user_key, x->error_class, x->finish_reason};
    size_t fl[8], size = sizeof(rec_item);
    for (int i = 0; i < 8; i++) {
        fl[i] = f[i] ? bounded_len(f[i], REC_FIELD_MAX) : 0;
        size += f[i] ? fl[i] + 1 : 0;
    }
    const char *req = q->record_text ? x->request_json : NULL;
    const char *out = q->record_text ? x->output_text : NULL;
    size_t lreq = req ? bounded_len(req, q->text_max) : 0;
    size_t lout = out ? bounded_len(out, q->text_max) : 0;
    size += (req ? lreq + 1 : 0) + (out ? lout + 1 : 0);

    rec_item *it = take_returned(q, size);
    size_t charge = it ? it->bytes : size;
    if (q->bytes_in - q->cached_bytes_out + charge > q->byte_budget) {
        q->cached_bytes_out = atomic_load_explicit(&q->bytes_out, memory_order_acquire);
        if (q->bytes_in - q->cached_bytes_out + charge > q->byte_budget) {
            if (it)
                keep_spare(q, it);
            return drop_full(q, CO_EBUSY, "queue memory share full");
        }
    }
    if (it)
        bump(&q->recycled, 1);
    else if (!(it = malloc(size)))
        return drop_full(q, CO_ENOMEM, "out of memory");

    it->x = *x;
    it->x.request_id[sizeof it->x.request_id - 1] = '\0';
    it->x.pair_id[sizeof it->x.pair_id - 1] = '\0';
    it->red_req = it->red_out = NULL;
    it->bytes = charge;
    it->ring = q->index;
    it->redacted = 0;
    char *p = it->data;
    const char **dst[8] = {&it->x.workload, &it->x.arm,     &it->x.role,        &it->x.model,
                           &it->x.api,      &it->x.user_key, &it->x.error_class, &it->x.finish_reason};
    for (int i = 0; i < 8; i++) {
        if (!f[i]) {
            *dst[i] = NULL;
            continue;
        }
        memcpy(p, f[i], fl[i]);
        p[fl[i]] = '\0';
        *dst[i] = p;
        p += fl[i] + 1;
    }
    it->x.request_json = it->x.output_text = NULL;
    it->lreq = lreq;
    it->lout = lout;
    if (req) {
        memcpy(p, req, lreq);
        p[lreq] = '\0';
        it->x.request_json = p;
        p += lreq + 1;
    }
    if (out) {
        memcpy(p, out, lout);
        p[lout] = '\0';
        it->x.output_text = p;
    }

    q->slots[head & q->mask] = it;
    atomic_store_explicit(&q->head, head + 1, memory_order_release);
    q->bytes_in += charge;

    /* A background writer cannot see that it is starved; this ring's share
     * of the backlog can, and so can its stalled loop (which a few records
     * a second would not show as a backlog for minutes). Rare (once per fall
     * behind), so a lock is fine. */
    co_recorder *rec = q->rec;
    int level = atomic_load_explicit(&rec->level, memory_order_relaxed);
    if (level != REC_NORMAL) {
        int want = level;
        if (q->bytes_in - q->cached_bytes_out > q->lift_at / 2) {
            q->cached_bytes_out = atomic_load_explicit(&q->bytes_out, memory_order_acquire);
            uint64_t held = q->bytes_in - q->cached_bytes_out;
            want = held > q->lift_at ? REC_NORMAL : held > q->lift_at / 2 ? REC_LOW : level;
        }
        if (mono_ms() - atomic_load_explicit(&rec->alive_ms, memory_order_relaxed) > rec->stall_ms)
            want = REC_NORMAL;
        if (want < level)
            lift(rec, want);
    }

    /* Wake the writer when the ring passes half a batch. The cached tail may
     * be stale (it only overestimates the depth): refresh it before paying
     * for a wake-up. */
    if (head + 1 - q->cached_tail >= q->wake_at) {
        q->cached_tail = atomic_load_explicit(&q->tail, memory_order_acquire);
        if (head + 1 - q->cached_tail >= q->wake_at &&
            !atomic_load_explicit(&q->signalled, memory_order_relaxed) &&
            !atomic_exchange_explicit(&q->signalled, 1, memory_order_acq_rel))
            wake_writer(q->rec);
    }
    return 0;
}

/* ---- writer: the hand ----------------------------------------------------- */

static rec_item *hand_at(const hand *h, size_t k) { return h->v[(h->first + k) % h->alloc]; }

static int hand_grow(hand *h)
{
    size_t alloc = h->alloc ? h->alloc * 2 : 1024;
    if (alloc > h->cap)
        alloc = h->cap;
    rec_item **v = malloc(alloc * sizeof *v);
    if (!v)
        return -1;
    for (size_t k = 0; k < h->n; k++)
        v[k] = hand_at(h, k);
    free(h->v);
    h->v = v;
    h->alloc = alloc;
    h->first = 0;
    return 0;
}

/* Caller checked h->n < h->cap. */
static int hand_push(hand *h, rec_item *it)
{
    if (h->n == h->alloc && hand_grow(h))
        return -1;
    h->v[(h->first + h->n) % h->alloc] = it;
    h->n++;
    return 0;
}

static rec_item *hand_pop(hand *h)
{
    rec_item *it = h->v[h->first];
    h->first = (h->first + 1) % h->alloc;
    h->n--;
    return it;
}

/* ---- writer: accounting --------------------------------------------------- */

enum fate { RECORDED, DROP_WRITE_FAILED, DROP_INVALID };

static uint64_t depth_now(co_recorder *rec)
{
    uint64_t done = 0, pushed = 0;
    /* done first: head read later is at least as large, so depth >= 0. */
    for (int i = 0; i < rec->nrings; i++)
        done += atomic_load_explicit(&rec->rings[i].done, memory_order_acquire);
    for (int i = 0; i < rec->nrings; i++)
        pushed += atomic_load_explicit(&rec->rings[i].head, memory_order_acquire);
    return pushed - done;
}

static void note_high_water(co_recorder *rec, uint64_t depth)
{
    uint64_t hw = atomic_load_explicit(&rec->high_water, memory_order_relaxed);
    while (depth > hw &&
           !atomic_compare_exchange_weak_explicit(&rec->high_water, &hw, depth,
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

static void item_free(rec_item *it)
{
    free(it->red_req);
    free(it->red_out);
    free(it);
}

/* On the writer: a finished record goes back to its ring for reuse (see
 * take_returned) while the ring holds less than REC_RETURN_MAX of them;
 * the producer takes the whole stack at once, so a plain CAS push is safe. */
static void give_back(co_recorder_ring *q, rec_item *it)
{
    free(it->red_req);
    free(it->red_out);
    it->red_req = it->red_out = NULL;
    if (atomic_load_explicit(&q->returned_bytes, memory_order_relaxed) + it->bytes > REC_RETURN_MAX) {
        free(it);
        return;
    }
    atomic_fetch_add_explicit(&q->returned_bytes, it->bytes, memory_order_relaxed);
    rec_item *top = atomic_load_explicit(&q->returned, memory_order_relaxed);
    do
        it->next_returned = top;
    while (!atomic_compare_exchange_weak_explicit(&q->returned, &top, it, memory_order_release,
                                                  memory_order_relaxed));
}

static void finish(co_recorder *rec, rec_item *it, enum fate how)
{
    co_recorder_ring *q = &rec->rings[it->ring];
    switch (how) {
    case RECORDED: bump(&rec->recorded, 1); break;
    case DROP_WRITE_FAILED: bump(&rec->dropped_write_failed, 1); break;
    case DROP_INVALID: bump(&rec->dropped_invalid, 1); break;
    }
    uint64_t bytes = it->bytes;
    give_back(q, it);
    atomic_store_explicit(&q->bytes_out,
                          atomic_load_explicit(&q->bytes_out, memory_order_relaxed) + bytes,
                          memory_order_release);
    atomic_store_explicit(&q->done, atomic_load_explicit(&q->done, memory_order_relaxed) + 1,
                          memory_order_release);
}

static void notify_progress(co_recorder *rec)
{
    pthread_mutex_lock(&rec->mu);
    pthread_cond_broadcast(&rec->cv);
    pthread_mutex_unlock(&rec->mu);
}

/* ---- writer: draining and redaction --------------------------------------- */

static void redact_text(co_recorder *rec, const char **text, size_t len, char **owned)
{
    if (!*text)
        return;
    char *o = NULL;
    if (co_redact_len(rec->opts.redactor, *text, len, &o) == 0) {
        if (o) { /* something was masked; otherwise the text stands as pushed */
            *owned = o;
            *text = o;
        }
        return;
    }
    /* Never store text that could not be redacted. */
    *text = NULL;
    if (!rec->redact_failed_logged) {
        rec->redact_failed_logged = 1;
        rec_log(rec, CO_RECORDER_LOG_ERROR,
                "recorder: redaction failed (%s); the exchange's text is not stored",
                co_error_last());
    }
}

/* Moves records from the rings to the hand. While the store works, only as
 * many as the hand has room for (the rest wait in the rings, whose producers
 * count what does not fit); while it fails, all of them, dropping the oldest
 * held records beyond `queue`. Returns the number moved. */
static size_t drain(co_recorder *rec)
{
    size_t moved = 0;
    hand *h = &rec->hd;
    for (int r = 0; r < rec->nrings; r++) {
        co_recorder_ring *q = &rec->rings[(rec->drain_start + (unsigned)r) % (unsigned)rec->nrings];
        /* A producer that still saw the old flag skips its wake-up; what it
         * pushed is then taken at the next tick at the latest (the wake-up is
         * a latency hint, the tick guarantees progress). */
        atomic_store_explicit(&q->signalled, 0, memory_order_seq_cst);
        size_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
        size_t head = atomic_load_explicit(&q->head, memory_order_acquire);
        while (tail != head) {
            if (h->n == h->cap) {
                if (!rec->failing)
                    break;
                finish(rec, hand_pop(h), DROP_WRITE_FAILED);
            }
            rec_item *it = q->slots[tail & q->mask];
            if (!it->redacted) {
                redact_text(rec, &it->x.request_json, it->lreq, &it->red_req);
                redact_text(rec, &it->x.output_text, it->lout, &it->red_out);
                it->redacted = 1;
            }
            if (hand_push(h, it))
                break; /* out of memory growing the hand: leave it in the ring */
            tail++;
            moved++;
        }
        atomic_store_explicit(&q->tail, tail, memory_order_release);
    }
    rec->drain_start++;
    return moved;
}

/* ---- writer: writing ------------------------------------------------------ */

static int reopen_worthy(int rc)
{
    return rc != CO_EBUSY && rc != CO_ENOMEM && rc != CO_ETIMEDOUT;
}

static void on_failure(co_recorder *rec, int rc, size_t n, const char *what, int reopen)
{
    int64_t now = mono_ms();
    bump(&rec->write_errors, 1);
    atomic_store_explicit(&rec->store_ok, 0, memory_order_relaxed);
    const char *msg = co_error_last();
    pthread_mutex_lock(&rec->mu);
    snprintf(rec->last_error, sizeof rec->last_error, "%s", msg);
    pthread_mutex_unlock(&rec->mu);
    if (!rec->failing) {
        rec->failing = 1;
        rec->backoff = rec->opts.retry_min_ms;
        rec->fail_count = 0;
    } else {
        rec->backoff = rec->backoff * 2 > rec->opts.retry_max_ms ? rec->opts.retry_max_ms
                                                                 : rec->backoff * 2;
    }
    rec->fail_count++;
    /* Between half the backoff and all of it: the gateways of a fleet lose
     * the database together and must not all come back in the same ms. */
    rec->rng = rec->rng * 6364136223846793005ULL + 1442695040888963407ULL;
    int64_t half = rec->backoff / 2;
    rec->retry_at = now + rec->backoff - half + (int64_t)((rec->rng >> 33) % (uint64_t)(half + 1));
    if (now - rec->last_err_log >= rec->opts.log_interval_ms) {
        rec->last_err_log = now;
        rec->err_logged = 1;
        rec_log(rec, CO_RECORDER_LOG_ERROR,
                "recorder: %s %zu exchange%s failed (%s: %s); holding %zu, retrying in %lld ms%s",
                what, n, n == 1 ? "" : "s", co_err_name(rc), msg, rec->hd.n,
                (long long)(rec->retry_at - now), reopen ? " on a new store connection" : "");
    }
}

static void on_success(co_recorder *rec)
{
    if (rec->failing) {
        /* Told only when the failure was (so at most once per log interval). */
        if (rec->err_logged)
            rec_log(rec, CO_RECORDER_LOG_INFO,
                    "recorder: the store is writable again after %lld failed attempt%s",
                    (long long)rec->fail_count, rec->fail_count == 1 ? "" : "s");
        rec->err_logged = 0;
        rec->failing = 0;
        rec->fail_count = 0;
        rec->backoff = rec->opts.retry_min_ms;
    }
    atomic_store_explicit(&rec->store_ok, 1, memory_order_relaxed);
}

static int open_store(co_recorder *rec, co_store **out)
{
    if (rec->opts.open)
        return rec->opts.open(out, rec->url, rec->opts.open_ud);
    return co_store_open(out, rec->url);
}

/* Writes the first n held records as one transaction. When the store
 * refuses a value (CHECK) or a duplicate, the records are written one by
 * one so only the bad ones are dropped. 0, or the failing status (the
 * records not written stay held, in order). */
static int write_front(co_recorder *rec, size_t n)
{
    hand *h = &rec->hd;
    for (size_t k = 0; k < n; k++)
        rec->xs[k] = hand_at(h, k)->x;
    note_high_water(rec, depth_now(rec));
    int rc = co_store_record(rec->st, rec->xs, n);
    atomic_store_explicit(&rec->alive_ms, mono_ms(), memory_order_relaxed);
    if (rc == 0) {
        for (size_t k = 0; k < n; k++)
            finish(rec, hand_pop(h), RECORDED);
        bump(&rec->batches, 1);
        return 0;
    }
    if (rc != CO_EINVAL && rc != CO_EEXIST)
        return rc;
    for (size_t k = 0; k < n; k++) {
        rec_item *it = hand_at(h, 0);
        int r1 = co_store_record(rec->st, &it->x, 1);
        if (r1 == 0) {
            bump(&rec->batches, 1);
            finish(rec, hand_pop(h), RECORDED);
        } else if (r1 == CO_EINVAL || r1 == CO_EEXIST) {
            /* One example per log interval; the drop report has the count. */
            int64_t now = mono_ms();
            if (now - rec->last_invalid_log >= rec->opts.log_interval_ms) {
                rec->last_invalid_log = now;
                rec_log(rec, CO_RECORDER_LOG_ERROR,
                        "recorder: the store refused an exchange of workload '%s' (%s/%s): %s; "
                        "dropped and counted",
                        it->x.workload, it->x.arm, it->x.role, co_error_last());
            }
            finish(rec, hand_pop(h), DROP_INVALID);
        } else {
            return r1;
        }
    }
    return 0;
}

/* Writes held records: full batches, and with `all` what was held on entry
 * too. Records that arrive meanwhile wait for a full batch or the next tick:
 * chasing them would commit a few rows at a time, and every commit
 * rewrites the last page of the table and of each index. `force` ignores
 * the backoff once. 0 when nothing failed. */
static int write_held(co_recorder *rec, int all, int force)
{
    hand *h = &rec->hd;
    int batches = 0;
    size_t owed = all ? h->n : 0;
    while (h->n >= rec->batch || (owed && h->n > 0)) {
        if (rec->failing && !force && mono_ms() < rec->retry_at)
            return -1;
        force = 0;
        if (!rec->st) {
            int rc = open_store(rec, &rec->st);
            if (rc) {
                rec->st = NULL;
                on_failure(rec, rc, h->n, "reopening the store to write", 1);
                return rc;
            }
            bump(&rec->reopens, 1);
        }
        size_t n = h->n < rec->batch ? h->n : rec->batch;
        int rc = write_front(rec, n);
        if (rc) {
            on_failure(rec, rc, n, "writing", reopen_worthy(rc));
            if (reopen_worthy(rc)) {
                co_store_close(rec->st);
                rec->st = NULL;
            }
            return rc;
        }
        on_success(rec);
        owed = owed > n ? owed - n : 0;
        /* Refill from the rings: while the store keeps up the hand is only
         * filled up to its room. */
        drain(rec);
        if (++batches >= REC_BATCHES_PER_CYCLE)
            break;
    }
    return 0;
}

/* ---- writer: logging ------------------------------------------------------ */

static void log_drops(co_recorder *rec, int64_t now, int final)
{
    if (!rec->opts.log)
        return;
    if (!final && now - rec->last_drop_log < rec->opts.log_interval_ms)
        return;
    uint64_t full = 0, invalid = get(&rec->dropped_invalid);
    for (int i = 0; i < rec->nrings; i++) {
        full += get(&rec->rings[i].dropped_full);
        invalid += get(&rec->rings[i].dropped_invalid);
    }
    uint64_t failed = get(&rec->dropped_write_failed);
    uint64_t dfull = full - rec->logged_full, dfailed = failed - rec->logged_failed,
             dinvalid = invalid - rec->logged_invalid;
    if (!dfull && !dfailed && !dinvalid)
        return;
    rec_log(rec, CO_RECORDER_LOG_WARN,
            "recorder: %llu exchange%s NOT recorded since the last report (queue full: %llu, "
            "store failing: %llu, invalid: %llu); totals: %llu / %llu / %llu",
            (unsigned long long)(dfull + dfailed + dinvalid),
            dfull + dfailed + dinvalid == 1 ? "" : "s", (unsigned long long)dfull,
            (unsigned long long)dfailed, (unsigned long long)dinvalid, (unsigned long long)full,
            (unsigned long long)failed, (unsigned long long)invalid);
    rec->logged_full = full;
    rec->logged_failed = failed;
    rec->logged_invalid = invalid;
    rec->last_drop_log = now;
}

/* ---- writer: the loop ----------------------------------------------------- */

static int rings_empty(co_recorder *rec)
{
    for (int i = 0; i < rec->nrings; i++) {
        co_recorder_ring *q = &rec->rings[i];
        if (atomic_load_explicit(&q->head, memory_order_acquire) !=
            atomic_load_explicit(&q->tail, memory_order_relaxed))
            return 0;
    }
    return 1;
}

static void drop_everything(co_recorder *rec)
{
    while (rec->hd.n)
        finish(rec, hand_pop(&rec->hd), DROP_WRITE_FAILED);
    for (int i = 0; i < rec->nrings; i++) {
        co_recorder_ring *q = &rec->rings[i];
        size_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
        size_t head = atomic_load_explicit(&q->head, memory_order_acquire);
        while (tail != head)
            finish(rec, q->slots[tail++ & q->mask], DROP_WRITE_FAILED);
        atomic_store_explicit(&q->tail, tail, memory_order_release);
    }
}

static void wait_for_work(co_recorder *rec, int64_t timeout_ms)
{
    struct pollfd pfd = {.fd = rec->efd, .events = POLLIN};
    if (timeout_ms < 0)
        timeout_ms = 0;
    if (timeout_ms > 60000)
        timeout_ms = 60000;
    int r = poll(&pfd, 1, (int)timeout_ms);
    if (r > 0 && (pfd.revents & POLLIN)) {
        uint64_t v;
        ssize_t got = read(rec->efd, &v, sizeof v);
        (void)got;
    }
}

/* Back to the background once less than a batch waits and no flush or
 * shutdown waits on the writer (both lift it under prio_mu, so neither can
 * slip in between this check and the policy change). */
static void settle(co_recorder *rec)
{
    if (!atomic_load_explicit(&rec->bg_wanted, memory_order_relaxed) ||
        atomic_load_explicit(&rec->level, memory_order_relaxed) == REC_IDLE)
        return;
    size_t waiting = rec->hd.n;
    for (int r = 0; r < rec->nrings; r++)
        waiting += atomic_load_explicit(&rec->rings[r].head, memory_order_acquire) -
                   atomic_load_explicit(&rec->rings[r].tail, memory_order_relaxed);
    if (waiting >= rec->batch)
        return;
    pthread_mutex_lock(&rec->prio_mu);
    if (!atomic_load_explicit(&rec->stop, memory_order_acquire) &&
        atomic_load_explicit(&rec->flush_gen, memory_order_acquire) == rec->flush_seen) {
        if (set_level(atomic_load_explicit(&rec->writer_tid, memory_order_relaxed), REC_IDLE) == 0)
            atomic_store_explicit(&rec->level, REC_IDLE, memory_order_release);
        else
            atomic_store_explicit(&rec->bg_wanted, 0, memory_order_relaxed);
    }
    pthread_mutex_unlock(&rec->prio_mu);
}

static void *writer_main(void *arg)
{
    co_recorder *rec = arg;
    int64_t stop_deadline = 0;
    atomic_store_explicit(&rec->writer_tid, (int)syscall(SYS_gettid), memory_order_relaxed);
    rec->next_tick = mono_ms() + rec->flush_ms;
    if (rec->bg_refused)
        rec_log(rec, CO_RECORDER_LOG_INFO,
                "recorder: the writer runs at normal priority: recorder.priority background needs "
                "CAP_SYS_NICE or RLIMIT_NICE >= 20 (systemd: LimitNICE=+0) to leave the background "
                "when it falls behind");
    for (;;) {
        int stopping = atomic_load_explicit(&rec->stop, memory_order_acquire);
        uint64_t fgen = atomic_load_explicit(&rec->flush_gen, memory_order_acquire);
        int64_t now = mono_ms();
        atomic_store_explicit(&rec->alive_ms, now, memory_order_relaxed);
        int flushing = fgen != rec->flush_seen;
        int stop_begins = stopping && !stop_deadline;
        if (stop_begins)
            stop_deadline = now + rec->opts.stop_timeout_ms;

        drain(rec);
        int due = now >= rec->next_tick;
        int all = due || flushing || stopping;
        /* A new flush request (and the start of shutdown) retries a failing
         * store at once; otherwise the backoff decides. */
        int force = flushing || stop_begins;
        if (rec->hd.n >= rec->batch || (all && rec->hd.n))
            write_held(rec, all, force);
        if (due)
            rec->next_tick = now + rec->flush_ms;
        rec->flush_seen = fgen;
        notify_progress(rec);
        log_drops(rec, now, 0);
        settle(rec);

        if (stopping) {
            if (!rec->hd.n && rings_empty(rec))
                break;
            if (mono_ms() >= stop_deadline) {
                uint64_t before = get(&rec->dropped_write_failed);
                drop_everything(rec);
                rec_log(rec, CO_RECORDER_LOG_ERROR,
                        "recorder: shutting down with the store still failing: %llu held "
                        "exchange%s dropped",
                        (unsigned long long)(get(&rec->dropped_write_failed) - before),
                        get(&rec->dropped_write_failed) - before == 1 ? "" : "s");
                break;
            }
        }

        /* Sleep until the next tick, retry or deadline, unless there is work. */
        now = mono_ms();
        int64_t timeout = rec->next_tick - now;
        int can_write = !rec->failing || now >= rec->retry_at;
        if (rec->failing && rec->retry_at - now < timeout)
            timeout = rec->retry_at - now;
        if (stopping) {
            if (can_write)
                timeout = 0;
            if (stop_deadline - now < timeout)
                timeout = stop_deadline - now;
        }
        if (can_write && rec->hd.n >= rec->batch)
            timeout = 0;
        if (atomic_load_explicit(&rec->flush_gen, memory_order_acquire) != rec->flush_seen)
            timeout = 0;
        if (timeout > 0)
            wait_for_work(rec, timeout);
    }
    log_drops(rec, mono_ms(), 1);
    atomic_store_explicit(&rec->writer_done, 1, memory_order_release);
    notify_progress(rec);
    return NULL;
}

/* ---- public --------------------------------------------------------------- */

static void free_returned(rec_item *list)
{
    while (list) {
        rec_item *next = list->next_returned;
        free(list);
        list = next;
    }
}

static void rec_destroy(co_recorder *rec)
{
    if (!rec)
        return;
    for (int i = 0; rec->rings && i < rec->nrings; i++) {
        co_recorder_ring *q = &rec->rings[i];
        if (q->slots) {
            size_t tail = atomic_load(&q->tail), head = atomic_load(&q->head);
            while (tail != head)
                item_free(q->slots[tail++ & q->mask]);
        }
        free(q->slots);
        free_returned(atomic_load(&q->returned));
        free_returned(q->spare);
    }
    while (rec->hd.n)
        item_free(hand_pop(&rec->hd));
    free(rec->hd.v);
    free(rec->rings);
    free(rec->xs);
    free(rec->url);
    co_store_close(rec->st);
    if (rec->efd >= 0)
        close(rec->efd);
    pthread_cond_destroy(&rec->cv);
    pthread_mutex_destroy(&rec->mu);
    pthread_mutex_destroy(&rec->prio_mu);
    free(rec);
}

int co_recorder_new(co_recorder **out, const char *store_url, const co_recorder_conf *conf,
                    int nworkers)
{
    return co_recorder_new_opts(out, store_url, conf, nworkers, NULL);
}

int co_recorder_new_opts(co_recorder **out, const char *store_url, const co_recorder_conf *conf,
                         int nworkers, const co_recorder_opts *opts)
{
    co_recorder *rec = NULL;
    int rc = 0;
    if (!out)
        return co_error_set(CO_EINVAL, "co_recorder_new: out is NULL");
    *out = NULL;
    if (!store_url || !store_url[0])
        return co_error_set(CO_EINVAL, "co_recorder_new: no store URL");
    if (nworkers < 1 || nworkers > REC_MAX_WORKERS)
        return co_error_set(CO_EINVAL, "co_recorder_new: %d workers (must be 1..%d)", nworkers,
                            REC_MAX_WORKERS);
    co_recorder_conf c = {.queue = REC_DEFAULT_QUEUE, .batch = REC_DEFAULT_BATCH,
                          .flush_interval_ms = REC_DEFAULT_FLUSH_MS, .record_text = 1};
    if (conf)
        c = *conf;
    if (c.queue < 1 || c.batch < 1 || c.flush_interval_ms < 1)
        return co_error_set(CO_EINVAL,
                            "recorder: queue (%lld), batch (%lld) and flush_interval (%lld ms) "
                            "must be positive",
                            (long long)c.queue, (long long)c.batch, (long long)c.flush_interval_ms);
    if ((c.priority != CO_RECORDER_BACKGROUND && c.priority != CO_RECORDER_NORMAL) ||
        c.background_backlog < 0)
        return co_error_set(CO_EINVAL, "recorder: priority %d / background_backlog %lld out of range",
                            c.priority, (long long)c.background_backlog);
    if (!c.background_backlog)
        c.background_backlog = REC_DEFAULT_BACKLOG;

    rec = calloc(1, sizeof *rec);
    if (!rec)
        return co_error_set(CO_ENOMEM, "out of memory creating the recorder");
    rec->efd = -1;
    pthread_mutex_init(&rec->mu, NULL);
    pthread_mutex_init(&rec->prio_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&rec->cv, &ca);
    pthread_condattr_destroy(&ca);

    if (opts)
        rec->opts = *opts;
    co_recorder_opts *o = &rec->opts;
    if (!o->text_max)
        o->text_max = REC_DEFAULT_TEXT_MAX;
    if (!o->max_bytes)
        o->max_bytes = REC_DEFAULT_MAX_BYTES;
    if (o->log_interval_ms <= 0)
        o->log_interval_ms = 1000;
    if (o->retry_min_ms <= 0)
        o->retry_min_ms = 50;
    if (o->retry_max_ms <= 0)
        o->retry_max_ms = 5000;
    if (o->retry_max_ms < o->retry_min_ms)
        o->retry_max_ms = o->retry_min_ms;
    if (o->stop_timeout_ms <= 0)
        o->stop_timeout_ms = 5000;
    /* The writer never holds more than `queue`, so no batch can be larger. */
    rec->batch = (size_t)(c.batch < c.queue ? c.batch : c.queue);
    rec->flush_ms = c.flush_interval_ms;
    /* The loop goes round at least every flush interval (more often under
     * load), so twice that and a margin for a busy machine means starved. */
    rec->stall_ms = 2 * c.flush_interval_ms + 500;
    atomic_store(&rec->alive_ms, mono_ms());
    rec->hd.cap = (size_t)c.queue;
    rec->rng = (uint64_t)co_mono_us() ^ (uint64_t)(uintptr_t)rec;
    rec->last_drop_log = rec->last_err_log = rec->last_invalid_log = INT64_MIN / 2;
    atomic_store(&rec->store_ok, 1);

    if (!(rec->url = strdup(store_url)) || !(rec->xs = calloc(rec->batch, sizeof *rec->xs))) {
        rc = co_error_set(CO_ENOMEM, "out of memory creating the recorder");
        goto done;
    }
    rec->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (rec->efd < 0) {
        rc = co_error_set(CO_EIO, "recorder: eventfd: %s", strerror(errno));
        goto done;
    }

    /* Rings. */
    size_t per = ((size_t)c.queue + (size_t)nworkers - 1) / (size_t)nworkers;
    size_t cap = next_pow2(per < REC_MIN_RING ? REC_MIN_RING : per);
    size_t wake_at = rec->batch / 2;
    if (wake_at > cap / 2)
        wake_at = cap / 2;
    if (wake_at < 1)
        wake_at = 1;
    size_t item_max = sizeof(rec_item) + 2 * (o->text_max + 1) + 8 * (REC_FIELD_MAX + 1);
    uint64_t budget = o->max_bytes / (size_t)nworkers;
    if (budget < 4 * item_max)
        budget = 4 * item_max;
    rec->rings = aligned_alloc(alignof(co_recorder_ring), (size_t)nworkers * sizeof *rec->rings);
    if (!rec->rings) {
        rc = co_error_set(CO_ENOMEM, "out of memory creating %d recorder rings", nworkers);
        goto done;
    }
    memset(rec->rings, 0, (size_t)nworkers * sizeof *rec->rings);
    rec->nrings = nworkers;
    for (int i = 0; i < nworkers; i++) {
        co_recorder_ring *q = &rec->rings[i];
        atomic_init(&q->head, 0);
        atomic_init(&q->tail, 0);
        atomic_init(&q->done, 0);
        atomic_init(&q->bytes_out, 0);
        atomic_init(&q->dropped_full, 0);
        atomic_init(&q->dropped_invalid, 0);
        atomic_init(&q->signalled, 0);
        q->slots = calloc(cap, sizeof *q->slots);
        if (!q->slots) {
            rc = co_error_set(CO_ENOMEM, "out of memory creating %d recorder rings of %zu",
                              nworkers, cap);
            goto done;
        }
        q->mask = cap - 1;
        q->wake_at = wake_at;
        q->byte_budget = budget;
        q->lift_at = (uint64_t)c.background_backlog / (uint64_t)nworkers;
        q->text_max = o->text_max;
        q->record_text = c.record_text != 0;
        q->index = (uint32_t)i;
        q->rec = rec;
    }

    /* The writer's store handle, opened here so a bad URL fails now; the
     * writer thread is its only user from then on. */
    if ((rc = open_store(rec, &rec->st))) {
        rec->st = NULL;
        goto done;
    }
    if (c.priority == CO_RECORDER_BACKGROUND) {
        int may = may_leave_background();
        atomic_store(&rec->bg_wanted, may);
        rec->bg_refused = !may;
    }
    int e = pthread_create(&rec->writer, NULL, writer_main, rec);
    if (e) {
        rc = co_error_set(CO_ENOMEM, "recorder: cannot start the writer thread: %s", strerror(e));
        goto done;
    }
    rec->writer_started = 1;
    pthread_setname_np(rec->writer, "co-recorder");
    *out = rec;
    rec = NULL;
done:
    rec_destroy(rec);
    return rc;
}

co_recorder_ring *co_recorder_producer(co_recorder *rec, int worker_index)
{
    if (!rec || worker_index < 0 || worker_index >= rec->nrings)
        return NULL;
    return &rec->rings[worker_index];
}

size_t co_recorder_ring_capacity(const co_recorder_ring *p) { return p ? p->mask + 1 : 0; }

static uint64_t writer_drops(co_recorder *rec)
{
    return get(&rec->dropped_write_failed) + get(&rec->dropped_invalid);
}

int co_recorder_flush(co_recorder *rec, int64_t timeout_ms)
{
    if (!rec)
        return co_error_set(CO_EINVAL, "co_recorder_flush: recorder is NULL");
    int rc = 0;
    uint64_t *target = malloc((size_t)rec->nrings * sizeof *target);
    if (!target)
        return co_error_set(CO_ENOMEM, "out of memory flushing the recorder");
    uint64_t drops_before = writer_drops(rec);
    for (int i = 0; i < rec->nrings; i++)
        target[i] = atomic_load_explicit(&rec->rings[i].head, memory_order_acquire);
    pthread_mutex_lock(&rec->prio_mu);
    atomic_fetch_add_explicit(&rec->flush_gen, 1, memory_order_acq_rel);
    lift_locked(rec, REC_NORMAL); /* a flusher waits: no writing on leftover CPU time now */
    pthread_mutex_unlock(&rec->prio_mu);
    wake_writer(rec);

    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    if (timeout_ms >= 0) {
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (timeout_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&rec->mu);
    for (;;) {
        int all = 1;
        for (int i = 0; i < rec->nrings && all; i++)
            if (atomic_load_explicit(&rec->rings[i].done, memory_order_acquire) < target[i])
                all = 0;
        if (all)
            break;
        if (atomic_load_explicit(&rec->writer_done, memory_order_acquire)) {
            rc = co_error_set(CO_ESTATE, "recorder: the writer has stopped");
            break;
        }
        int e = timeout_ms >= 0 ? pthread_cond_timedwait(&rec->cv, &rec->mu, &deadline)
                                : pthread_cond_wait(&rec->cv, &rec->mu);
        if (e == ETIMEDOUT) {
            rc = co_error_set(CO_ETIMEDOUT,
                              "recorder: flush timed out after %lld ms with %llu exchange%s "
                              "still waiting (last store error: %s)",
                              (long long)timeout_ms, (unsigned long long)depth_now(rec),
                              depth_now(rec) == 1 ? "" : "s",
                              rec->last_error[0] ? rec->last_error : "none");
            break;
        }
    }
    pthread_mutex_unlock(&rec->mu);
    free(target);
    if (rc == 0 && writer_drops(rec) != drops_before)
        rc = co_error_set(CO_EIO, "recorder: %llu exchange%s dropped while flushing "
                                  "(store failing or values refused; see the counters)",
                          (unsigned long long)(writer_drops(rec) - drops_before),
                          writer_drops(rec) - drops_before == 1 ? " was" : "s were");
    return rc;
}

void co_recorder_stats(co_recorder *rec, co_recorder_counters *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!rec)
        return;
    uint64_t depth = depth_now(rec);
    note_high_water(rec, depth);
    out->queue_depth = depth;
    for (int i = 0; i < rec->nrings; i++) {
        out->pushed += atomic_load_explicit(&rec->rings[i].head, memory_order_relaxed);
        out->dropped_queue_full += get(&rec->rings[i].dropped_full);
        out->recycled += get(&rec->rings[i].recycled);
        out->dropped_invalid += get(&rec->rings[i].dropped_invalid);
    }
    out->recorded = get(&rec->recorded);
    out->dropped_write_failed = get(&rec->dropped_write_failed);
    out->dropped_invalid += get(&rec->dropped_invalid);
    out->write_errors = get(&rec->write_errors);
    out->batches = get(&rec->batches);
    out->reopens = get(&rec->reopens);
    out->queue_high_water = get(&rec->high_water);
    out->store_ok = atomic_load_explicit(&rec->store_ok, memory_order_relaxed);
    out->background = atomic_load_explicit(&rec->level, memory_order_relaxed);
    out->lifts = atomic_load_explicit(&rec->lifts, memory_order_relaxed);
    pthread_mutex_lock(&rec->mu);
    snprintf(out->last_error, sizeof out->last_error, "%s", rec->last_error);
    pthread_mutex_unlock(&rec->mu);
}

void co_recorder_free(co_recorder *rec)
{
    if (!rec)
        return;
    if (rec->writer_started) {
        pthread_mutex_lock(&rec->prio_mu);
        atomic_store_explicit(&rec->stop, 1, memory_order_release);
        lift_locked(rec, REC_NORMAL);
        pthread_mutex_unlock(&rec->prio_mu);
        wake_writer(rec);
        pthread_join(rec->writer, NULL);
    }
    rec_destroy(rec);
}
