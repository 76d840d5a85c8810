/* co_bench_recorder: recording throughput of the recorder into a store, the
 * way `cutover serve` uses it (one ring per worker, the configured queue,
 * batch and flush interval), for bench/recorder.sh.
 *
 *   co_bench_recorder [--backend sqlite|postgres] [--records N] [--workers W]
 *                     [--rates R1,R2,...] [--text BYTES] [--queue Q] [--batch B]
 *
 * For each rate (records/s in all; "max" = as fast as push returns), a fresh
 * store and recorder: W producer threads push N exchanges in all (each ~BYTES
 * of request text and half that of output), then the recorder is flushed.
 * Prints one line of key=value figures per rate:
 * offered/s (push rate achieved), written/s (recorded / time from the first
 * push until the flush returned), the queue high-water mark and the drops by
 * cause. PostgreSQL runs against a throwaway cluster
 * (tests/support/pg_cluster.h); without PostgreSQL binaries it prints
 * "skipped" and exits 0. Figures, never assertions. */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cutover/error.h"
#include "cutover/recorder.h"
#include "cutover/store.h"
#include "cutover/util.h"
#include "pg_cluster.h"

typedef struct prod {
    co_recorder_ring *ring;
    int worker;
    long n;
    double rate; /* per second, this producer; 0 = unpaced */
    const char *req, *out;
    long ok, busy;
} prod;

static void *produce(void *arg)
{
    prod *p = arg;
    int64_t t0 = co_mono_us();
    for (long i = 0; i < p->n; i++) {
        if (p->rate > 0) {
            int64_t due = t0 + (int64_t)((double)i * 1e6 / p->rate);
            int64_t now = co_mono_us();
            if (due > now + 200) {
                struct timespec ts = {(due - now) / 1000000, (long)((due - now) % 1000000) * 1000L};
                nanosleep(&ts, NULL);
            }
        }
        co_exchange x;
        memset(&x, 0, sizeof x);
        snprintf(x.request_id, sizeof x.request_id, "b%d-%ld", p->worker, i);
        snprintf(x.pair_id, sizeof x.pair_id, "b%d-%ld", p->worker, i);
        x.ts_ms = co_now_ms();
        x.workload = "chat";
        x.arm = i % 2 ? "candidate" : "incumbent";
        x.role = i % 2 ? "shadow" : "served";
        x.model = "gpt-4o-mini";
        x.api = "openai";
        x.user_key = "user-1234";
        x.status = 200;
        x.latency_ms = 123.4;
        x.ttft_ms = 45.6;
        x.tokens_in = 321;
        x.tokens_out = 123;
        x.cost_usd = 0.00042;
        x.finish_reason = "stop";
        x.request_json = p->req;
        x.output_text = p->out;
        if (co_recorder_push(p->ring, &x) == 0)
            p->ok++;
        else
            p->busy++;
    }
    return NULL;
}

static char *filler(size_t n, const char *prefix)
{
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    size_t k = 0;
    for (; prefix[k] && k < n; k++)
        s[k] = prefix[k];
    for (; k < n; k++)
        s[k] = "lorem ipsum dolor sit amet "[k % 27];
    s[n] = '\0';
    return s;
}

typedef struct bench_cfg {
    long records, queue, batch;
    int workers;
    size_t text;
    const char *backend;
} bench_cfg;

/* One run at `rate` (0 = unpaced) on the store at url. */
static int run_one(const bench_cfg *b, const char *url, double rate, const char *req, const char *out)
{
    co_recorder_conf conf = {.queue = b->queue, .batch = b->batch, .flush_interval_ms = 200,
                             .record_text = 1};
    co_recorder *rec = NULL;
    if (co_recorder_new(&rec, url, &conf, b->workers) != 0) {
        fprintf(stderr, "co_bench_recorder: %s\n", co_error_last());
        return 1;
    }
    prod p[64];
    pthread_t t[64];
    int64_t t0 = co_mono_us();
    for (int w = 0; w < b->workers; w++) {
        p[w] = (prod){.ring = co_recorder_producer(rec, w), .worker = w,
                      .n = b->records / b->workers + (w < b->records % b->workers),
                      .rate = rate / b->workers, .req = req, .out = out};
        pthread_create(&t[w], NULL, produce, &p[w]);
    }
    for (int w = 0; w < b->workers; w++)
        pthread_join(t[w], NULL);
    int64_t t_pushed = co_mono_us();
    co_recorder_flush(rec, 300000);
    int64_t t_done = co_mono_us();
    co_recorder_counters k;
    co_recorder_stats(rec, &k);
    co_recorder_free(rec);

    double push_s = (double)(t_pushed - t0) / 1e6, all_s = (double)(t_done - t0) / 1e6;
    char rbuf[32];
    if (rate > 0)
        snprintf(rbuf, sizeof rbuf, "%.0f", rate);
    else
        snprintf(rbuf, sizeof rbuf, "max");
    printf("backend=%s records=%ld workers=%d rate=%s text=%zu queue=%ld batch=%ld "
           "offered_per_s=%.0f written_per_s=%.0f high_water=%llu dropped_queue_full=%llu "
           "dropped_write_failed=%llu write_errors=%llu batches=%llu seconds=%.2f\n",
           b->backend, b->records, b->workers, rbuf, b->text, b->queue, b->batch,
           (double)b->records / push_s, (double)k.recorded / all_s,
           (unsigned long long)k.queue_high_water, (unsigned long long)k.dropped_queue_full,
           (unsigned long long)k.dropped_write_failed, (unsigned long long)k.write_errors,
           (unsigned long long)k.batches, all_s);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    bench_cfg b = {.records = 100000, .queue = 65536, .batch = 512, .workers = 4, .text = 1024,
                   .backend = "sqlite"};
    const char *rates = "max";
    static const struct option lo[] = {
        {"backend", 1, 0, 'b'}, {"records", 1, 0, 'n'}, {"workers", 1, 0, 'w'},
        {"rates", 1, 0, 'r'},   {"text", 1, 0, 't'},    {"queue", 1, 0, 'q'},
        {"batch", 1, 0, 'B'},   {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'b': b.backend = optarg; break;
        case 'n': b.records = atol(optarg); break;
        case 'w': b.workers = atoi(optarg); break;
        case 'r': rates = optarg; break;
        case 't': b.text = (size_t)atol(optarg); break;
        case 'q': b.queue = atol(optarg); break;
        case 'B': b.batch = atol(optarg); break;
        default:
            fprintf(stderr, "usage: %s [--backend sqlite|postgres] [--records N] [--workers W] "
                            "[--rates R1,R2,...|max] [--text BYTES] [--queue Q] [--batch B]\n",
                    argv[0]);
            return 2;
        }
    }
    if (b.records < 1 || b.workers < 1 || b.workers > 64 || b.queue < 16 || b.batch < 1) {
        fprintf(stderr, "co_bench_recorder: bad arguments\n");
        return 2;
    }
    int pg = strcmp(b.backend, "postgres") == 0;
    if (!pg && strcmp(b.backend, "sqlite") != 0) {
        fprintf(stderr, "co_bench_recorder: unknown backend '%s'\n", b.backend);
        return 2;
    }

    co_pg_cluster cl = {0};
    char dir[64] = "", why[2048];
    if (pg) {
        int rc = co_pg_cluster_start(&cl, why, sizeof why);
        if (rc == CO_PG_SKIP) {
            printf("backend=postgres skipped=\"%s\"\n", why);
            return 0;
        }
        if (rc) {
            fprintf(stderr, "co_bench_recorder: PostgreSQL: %s\n", why);
            return 1;
        }
    } else {
        snprintf(dir, sizeof dir, "/tmp/co_bench_rec_XXXXXX");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            return 1;
        }
    }
    char *req = filler(b.text, "{\"messages\":[{\"role\":\"user\",\"content\":\"");
    char *out = filler(b.text / 2 ? b.text / 2 : 1, "");
    int status = req && out ? 0 : 1;
    char *list = strdup(rates), *save = NULL;
    int run = 0;
    for (char *r = list ? strtok_r(list, ",", &save) : NULL; r && !status;
         r = strtok_r(NULL, ",", &save)) {
        char url[512];
        run++;
        if (pg) {
            char db[32];
            snprintf(db, sizeof db, "bench%d", run);
            if (co_pg_cluster_createdb(&cl, db, why, sizeof why) != 0) {
                fprintf(stderr, "co_bench_recorder: PostgreSQL: %s\n", why);
                status = 1;
                break;
            }
            co_pg_cluster_url(&cl, db, url, sizeof url);
        } else {
            snprintf(url, sizeof url, "sqlite:%s/bench%d.db", dir, run);
        }
        status = run_one(&b, url, strcmp(r, "max") == 0 ? 0 : atof(r), req, out);
    }
    free(list);
    free(req);
    free(out);
    if (pg)
        co_pg_cluster_destroy(&cl);
    if (dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "co_bench_recorder: could not remove %s\n", dir);
    }
    return status;
}
