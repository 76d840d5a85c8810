/* Shared test helpers (see co_test.h): child processes with a ready line,
 * libcurl requests, SSE parsing, temporary directories. */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "co_test.h"

#define OUT_MAX ((size_t)1 << 20)
#define BODY_MAX ((size_t)64 << 20)
#define HEADERS_MAX ((size_t)1 << 20)

extern char **environ;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *co_test_bin(void)
{
    const char *b = getenv("CUTOVER_BIN");
    return b && *b ? b : NULL;
}

/* ---- child processes ----------------------------------------------------- */

static void *drain_main(void *arg)
{
    co_test_proc *p = arg;
    char buf[4096];
    while (!p->stopping) {
        struct pollfd pfd = {p->out_fd, POLLIN, 0};
        int r = poll(&pfd, 1, 100);
        if (r < 0 && errno != EINTR)
            break;
        if (r <= 0)
            continue;
        ssize_t n = read(p->out_fd, buf, sizeof buf);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            break;
        }
        pthread_mutex_lock(&p->mu);
        size_t room = OUT_MAX - p->out_len;
        size_t take = (size_t)n < room ? (size_t)n : room;
        char *o = take ? realloc(p->out, p->out_len + take + 1) : NULL;
        if (o) {
            memcpy(o + p->out_len, buf, take);
            p->out = o;
            p->out_len += take;
            o[p->out_len] = '\0';
        }
        pthread_mutex_unlock(&p->mu);
    }
    return NULL;
}

static int parse_ready(co_test_proc *p, const char *line)
{
    const char *at = strstr(line, "listening on ");
    if (!at)
        return 0;
    at += strlen("listening on ");
    const char *colon = strrchr(at, ':');
    if (!colon)
        return 0;
    int port = atoi(colon + 1);
    if (port <= 0 || port > 65535)
        return 0;
    size_t hl = (size_t)(colon - at);
    if (hl >= sizeof p->host)
        hl = sizeof p->host - 1;
    memcpy(p->host, at, hl);
    p->host[hl] = '\0';
    p->port = port;
    snprintf(p->line, sizeof p->line, "%.*s", (int)sizeof p->line - 1, line);
    return 1;
}

static char **merged_env(char *const extra[])
{
    size_t n = 0, k = 0;
    while (environ[n])
        n++;
    while (extra && extra[k])
        k++;
    char **env = calloc(n + k + 1, sizeof *env);
    if (!env)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        /* an extra entry replaces the inherited one with the same name */
        const char *eq = strchr(environ[i], '=');
        size_t nl = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        int replaced = 0;
        for (size_t e = 0; e < k; e++)
            if (!strncmp(extra[e], environ[i], nl) && extra[e][nl] == '=')
                replaced = 1;
        if (!replaced)
            env[j++] = environ[i];
    }
    for (size_t e = 0; e < k; e++)
        env[j++] = extra[e];
    env[j] = NULL;
    return env;
}

static void kill_reap(co_test_proc *p)
{
    if (p->pid > 0) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
        p->pid = 0;
    }
    if (p->out_fd >= 0)
        close(p->out_fd);
    p->out_fd = -1;
}

int co_test_spawn(co_test_proc *p, char *const argv[], char *const env[], int timeout_ms)
{
    memset(p, 0, sizeof *p);
    p->out_fd = -1;
    pthread_mutex_init(&p->mu, NULL);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) {
        fprintf(stderr, "co_test_spawn: pipe: %s\n", strerror(errno));
        return -1;
    }
    char **envp = merged_env(env);
    if (!envp) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "co_test_spawn: fork: %s\n", strerror(errno));
        free(envp);
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(fds[1], STDOUT_FILENO);
        execve(argv[0], argv, envp);
        fprintf(stderr, "co_test_spawn: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    free(envp);
    close(fds[1]);
    p->pid = pid;
    p->out_fd = fds[0];

    char line[1024];
    size_t len = 0;
    long long deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 10000);
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            fprintf(stderr, "co_test_spawn: %s printed no 'listening on' line in %d ms\n", argv[0], timeout_ms);
            kill_reap(p);
            return -1;
        }
        struct pollfd pfd = {p->out_fd, POLLIN, 0};
        int r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        char ch;
        ssize_t n = read(p->out_fd, &ch, 1);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            fprintf(stderr, "co_test_spawn: %s exited before it was listening\n", argv[0]);
            kill_reap(p);
            return -1;
        }
        if (ch != '\n') {
            if (len + 1 < sizeof line)
                line[len++] = ch;
            continue;
        }
        line[len] = '\0';
        len = 0;
        if (parse_ready(p, line))
            break;
    }
    if (pthread_create(&p->drain, NULL, drain_main, p) == 0)
        p->draining = 1;
    return 0;
}

int co_test_stop(co_test_proc *p)
{
    int status = 0, rc = -1;
    if (p->pid > 0) {
        kill(p->pid, SIGTERM);
        long long deadline = now_ms() + 5000;
        pid_t w = 0;
        while ((w = waitpid(p->pid, &status, WNOHANG)) == 0 && now_ms() < deadline)
            usleep(10000);
        if (w == p->pid) {
            rc = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
        } else {
            fprintf(stderr, "co_test_stop: pid %d ignored SIGTERM for 5 s; killing it\n", (int)p->pid);
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
            rc = -1;
        }
        p->pid = 0;
    }
    p->stopping = 1;
    if (p->draining)
        pthread_join(p->drain, NULL);
    p->draining = 0;
    if (p->out_fd >= 0)
        close(p->out_fd);
    p->out_fd = -1;
    free(p->out);
    p->out = NULL;
    p->out_len = 0;
    pthread_mutex_destroy(&p->mu);
    return rc;
}

char *co_test_output(co_test_proc *p)
{
    pthread_mutex_lock(&p->mu);
    char *s = strndup(p->out ? p->out : "", p->out_len);
    pthread_mutex_unlock(&p->mu);
    return s;
}

/* ---- HTTP ---------------------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

typedef struct sink {
    char *p;
    size_t len, max;
} sink;

static size_t sink_write(char *data, size_t size, size_t nmemb, void *arg)
{
    sink *s = arg;
    size_t n = size * nmemb;
    if (s->len + n > s->max)
        return 0; /* aborts the transfer: over the test's limit */
    char *p = realloc(s->p, s->len + n + 1);
    if (!p)
        return 0;
    memcpy(p + s->len, data, n);
    s->p = p;
    s->len += n;
    p[s->len] = '\0';
    return n;
}

int co_test_http_do(co_test_http *res, const char *method, const char *url,
                    const char *const *headers, const char *body, long timeout_ms)
{
    pthread_once(&curl_once, curl_init_once);
    memset(res, 0, sizeof *res);
    sink b = {NULL, 0, BODY_MAX}, h = {NULL, 0, HEADERS_MAX};
    CURL *c = curl_easy_init();
    if (!c) {
        res->curl_code = CURLE_FAILED_INIT;
        return res->curl_code;
    }
    struct curl_slist *hl = NULL;
    for (size_t i = 0; headers && headers[i]; i++)
        hl = curl_slist_append(hl, headers[i]);
    /* libcurl adds "Expect: 100-continue" to big POSTs; real SDKs do not */
    hl = curl_slist_append(hl, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 30000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, sink_write);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    } else if (!strcmp(method, "HEAD")) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    }
    CURLcode cc = curl_easy_perform(c);
    res->curl_code = (int)cc;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res->status);
    curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &res->seconds);
    curl_easy_cleanup(c);
    curl_slist_free_all(hl);
    res->body = b.p ? b.p : strdup("");
    res->body_len = b.len;
    res->headers = h.p ? h.p : strdup("");
    return res->curl_code;
}

const char *co_test_http_header(const co_test_http *res, const char *name, char *buf, size_t n)
{
    if (!res->headers || !n)
        return NULL;
    /* only the last block counts (after a 100 Continue or a redirect) */
    const char *block = res->headers, *s;
    for (s = res->headers; (s = strstr(s, "\r\nHTTP/")); s += 2)
        block = s + 2;
    size_t nl = strlen(name);
    const char *found = NULL;
    for (const char *line = block; line && *line;) {
        const char *end = strstr(line, "\r\n");
        if (!end)
            end = line + strlen(line);
        if ((size_t)(end - line) > nl && !strncasecmp(line, name, nl) && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            size_t vl = (size_t)(end - v);
            if (vl >= n)
                vl = n - 1;
            memcpy(buf, v, vl);
            buf[vl] = '\0';
            found = buf;
        }
        line = *end ? end + 2 : NULL;
    }
    return found;
}

void co_test_http_free(co_test_http *res)
{
    free(res->headers);
    free(res->body);
    memset(res, 0, sizeof *res);
}

/* ---- SSE ----------------------------------------------------------------- */

static int sse_push(co_test_sse *s, char *event, char *data)
{
    co_test_sse_event *v = realloc(s->v, (s->n + 1) * sizeof *v);
    if (!v) {
        free(event);
        free(data);
        return -1;
    }
    s->v = v;
    s->v[s->n].event = event;
    s->v[s->n].data = data;
    s->n++;
    return 0;
}

int co_test_sse_parse(const char *body, size_t len, co_test_sse *out)
{
    memset(out, 0, sizeof *out);
    char *event = NULL, *data = NULL;
    size_t dlen = 0;
    int have = 0;
    size_t i = 0;
    out->complete = 1;
    while (i < len) {
        size_t j = i;
        while (j < len && body[j] != '\n')
            j++;
        if (j == len) {
            out->complete = 0; /* a last line with no end: the stream was cut */
            break;
        }
        size_t ll = j - i;
        if (ll && body[i + ll - 1] == '\r')
            ll--;
        const char *line = body + i;
        i = j + 1;
        if (ll == 0) {
            if (have && sse_push(out, event, data ? data : strdup("")))
                return -1;
            event = data = NULL;
            dlen = 0;
            have = 0;
            continue;
        }
        if (line[0] == ':')
            continue; /* comment */
        const char *colon = memchr(line, ':', ll);
        size_t fl = colon ? (size_t)(colon - line) : ll;
        const char *v = colon ? colon + 1 : line + ll;
        if (colon && v < line + ll && *v == ' ')
            v++;
        size_t vl = (size_t)(line + ll - v);
        if (fl == 5 && !strncmp(line, "event", 5)) {
            free(event);
            event = strndup(v, vl);
            have = 1;
        } else if (fl == 4 && !strncmp(line, "data", 4)) {
            char *d = realloc(data, dlen + vl + 2);
            if (!d)
                return -1;
            if (dlen)
                d[dlen++] = '\n';
            memcpy(d + dlen, v, vl);
            dlen += vl;
            d[dlen] = '\0';
            data = d;
            have = 1;
        }
    }
    if (have) {
        out->complete = 0;
        free(event);
        free(data);
    }
    return 0;
}

void co_test_sse_free(co_test_sse *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].event);
        free(s->v[i].data);
    }
    free(s->v);
    memset(s, 0, sizeof *s);
}

/* ---- files --------------------------------------------------------------- */

#define MAX_TMPDIRS 64
static char *tmpdirs[MAX_TMPDIRS];
static int n_tmpdirs, rm_registered;
static pthread_mutex_t tmp_mu = PTHREAD_MUTEX_INITIALIZER;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

int co_test_rmtree(const char *path)
{
    return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void rm_all(void)
{
    pthread_mutex_lock(&tmp_mu);
    for (int i = 0; i < n_tmpdirs; i++) {
        co_test_rmtree(tmpdirs[i]);
        free(tmpdirs[i]);
    }
    n_tmpdirs = 0;
    pthread_mutex_unlock(&tmp_mu);
}

char *co_test_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char *path = NULL;
    if (asprintf(&path, "%s/cutover-test-XXXXXX", base && *base ? base : "/tmp") < 0)
        return NULL;
    if (!mkdtemp(path)) {
        free(path);
        return NULL;
    }
    pthread_mutex_lock(&tmp_mu);
    if (!rm_registered)
        rm_registered = atexit(rm_all) == 0;
    if (n_tmpdirs < MAX_TMPDIRS)
        tmpdirs[n_tmpdirs++] = strdup(path);
    pthread_mutex_unlock(&tmp_mu);
    return path;
}

char *co_test_write(const char *dir, const char *name, const char *content)
{
    char *path = NULL;
    if (asprintf(&path, "%s/%s", dir, name) < 0)
        return NULL;
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(path);
        return NULL;
    }
    size_t n = strlen(content);
    int ok = fwrite(content, 1, n, f) == n;
    ok &= fclose(f) == 0;
    if (!ok) {
        free(path);
        return NULL;
    }
    return path;
}
