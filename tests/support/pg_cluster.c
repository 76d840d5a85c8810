/* A throwaway PostgreSQL cluster (see pg_cluster.h). */
#include "pg_cluster.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

extern char **environ;

static void say(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *why, size_t n, const char *fmt, ...)
{
    if (!why || !n)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
}

/* ---- finding the binaries --------------------------------------------------- */

static int is_exec(const char *dir, const char *name)
{
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s/%s", dir, name) >= (int)sizeof p)
        return 0;
    return access(p, X_OK) == 0;
}

static int server_bindir(const char *dir)
{
    return dir && dir[0] && is_exec(dir, "initdb") && is_exec(dir, "pg_ctl") &&
           is_exec(dir, "postgres");
}

static int find_bindir(char *out, size_t n)
{
    const char *env = getenv("CO_PG_BINDIR");
    if (env && env[0]) /* an explicit choice is not second-guessed */
        return server_bindir(env) && snprintf(out, n, "%s", env) < (int)n ? 0 : -1;
    FILE *p = popen("pg_config --bindir 2>/dev/null", "r");
    if (p) {
        char line[PATH_MAX] = "";
        if (fgets(line, sizeof line, p))
            line[strcspn(line, "\r\n")] = '\0';
        pclose(p);
        if (server_bindir(line) && snprintf(out, n, "%s", line) < (int)n)
            return 0;
    }
    /* Debian keeps the server out of PATH: the newest installed major. */
    DIR *d = opendir("/usr/lib/postgresql");
    long best = -1;
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            char *end;
            long v = strtol(e->d_name, &end, 10);
            char bin[PATH_MAX];
            if (*end != '\0' || v <= best ||
                snprintf(bin, sizeof bin, "/usr/lib/postgresql/%s/bin", e->d_name) >= (int)sizeof bin)
                continue;
            if (server_bindir(bin) && snprintf(out, n, "%s", bin) < (int)n)
                best = v;
        }
        closedir(d);
    }
    if (best >= 0)
        return 0;
    const char *path = getenv("PATH");
    if (path) {
        char *copy = strdup(path), *save = NULL;
        for (char *dir = copy ? strtok_r(copy, ":", &save) : NULL; dir;
             dir = strtok_r(NULL, ":", &save)) {
            char p2[PATH_MAX], real[PATH_MAX];
            if (snprintf(p2, sizeof p2, "%s/initdb", dir) >= (int)sizeof p2)
                continue;
            if (access(p2, X_OK) == 0 && realpath(p2, real)) {
                char *slash = strrchr(real, '/');
                if (slash)
                    *slash = '\0';
                if (server_bindir(real) && snprintf(out, n, "%s", real) < (int)n) {
                    free(copy);
                    return 0;
                }
            }
        }
        free(copy);
    }
    return -1;
}

/* ---- running the server's tools as their user -------------------------------- */

/* fork + exec argv as c->uid with stdout/stderr appended to `log`; returns
 * the exit status (-1 when it could not run). Only async-signal-safe calls
 * between fork and exec: callers may have threads. */
static int run_as(const co_pg_cluster *c, char *const argv[], const char *log)
{
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    if (c->uid != geteuid() && fchown(fd, c->uid, c->gid) != 0) {
        close(fd);
        return -1;
    }
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd);
        if (devnull >= 0)
            close(devnull);
        return -1;
    }
    if (pid == 0) {
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (c->uid != geteuid()) {
            if (setgroups(0, NULL) != 0 || setgid(c->gid) != 0 || setuid(c->uid) != 0)
                _exit(126);
        }
        execve(argv[0], argv, environ);
        _exit(127);
    }
    close(fd);
    if (devnull >= 0)
        close(devnull);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void tail_of(const char *path, char *out, size_t n)
{
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    long from = size > (long)n - 1 ? size - ((long)n - 1) : 0;
    fseek(f, from, SEEK_SET);
    size_t got = fread(out, 1, n - 1, f);
    out[got] = '\0';
    fclose(f);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static int write_file(const char *path, const char *text, uid_t uid, gid_t gid)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    size_t len = strlen(text);
    int rc = write(fd, text, len) == (ssize_t)len ? 0 : -1;
    if (rc == 0 && uid != geteuid() && fchown(fd, uid, gid) != 0)
        rc = -1;
    close(fd);
    return rc;
}

static int pg_ctl_start(co_pg_cluster *c)
{
    char data[192], log[192], opts[512], pg_ctl[320];
    snprintf(pg_ctl, sizeof pg_ctl, "%s/pg_ctl", c->bindir);
    snprintf(data, sizeof data, "%s/data", c->dir);
    snprintf(log, sizeof log, "%s/server.log", c->dir);
    /* Durability is not what a throwaway cluster is for; a clean stop
     * (-m fast) still writes everything out, so restarts keep the data. */
    snprintf(opts, sizeof opts,
             "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
             "-c full_page_writes=off -c shared_buffers=16MB -c max_connections=100",
             c->port, c->dir);
    char *argv[] = {pg_ctl, "-D", data, "-l", log, "-w", "-t", "60", "-s", "-o", opts, "start", NULL};
    char ctl_log[192];
    snprintf(ctl_log, sizeof ctl_log, "%s/pg_ctl.log", c->dir);
    int rc = run_as(c, argv, ctl_log);
    if (rc == 0)
        c->running = 1;
    return rc;
}

/* ---- public ----------------------------------------------------------------- */

int co_pg_cluster_start(co_pg_cluster *c, char *why, size_t why_len)
{
    memset(c, 0, sizeof *c);
    c->watch_fd = -1;
    if (find_bindir(c->bindir, sizeof c->bindir) != 0) {
        const char *env = getenv("CO_PG_BINDIR");
        if (env && env[0])
            say(why, why_len, "CO_PG_BINDIR=%s has no initdb, pg_ctl and postgres", env);
        else
            say(why, why_len, "no PostgreSQL server binaries (initdb, pg_ctl, postgres) found: "
                              "set CO_PG_BINDIR or install Debian's postgresql (scripts/deps.sh)");
        return CO_PG_SKIP;
    }
    c->uid = geteuid();
    c->gid = getegid();
    if (c->uid == 0) {
        struct passwd *pw = getpwnam("nobody");
        if (!pw) {
            say(why, why_len, "running as root and there is no 'nobody' user to run postgres as");
            return -1;
        }
        c->uid = pw->pw_uid;
        c->gid = pw->pw_gid;
    }
    /* As root the server runs as nobody, who may not be able to reach a
     * private TMPDIR (e.g. under /root): /tmp then. */
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !tmp[0] || c->uid != geteuid())
        tmp = "/tmp";
    snprintf(c->dir, sizeof c->dir, "%s/co_pg_XXXXXX", tmp);
    if (!mkdtemp(c->dir)) {
        say(why, why_len, "mkdtemp %s: %s", c->dir, strerror(errno));
        return -1;
    }
    if (c->uid != geteuid() && chown(c->dir, c->uid, c->gid) != 0) {
        say(why, why_len, "chown %s to uid %d: %s", c->dir, (int)c->uid, strerror(errno));
        rmdir(c->dir);
        return -1;
    }

    /* The watchdog: stops and deletes everything when our end of the pipe
     * closes (co_pg_cluster_destroy, or this process dying). Its argv is
     * built here: after fork it only calls async-signal-safe functions. */
    static char w_ctl[320], w_data[192], w_log[192], w_dir[128];
    snprintf(w_ctl, sizeof w_ctl, "%s/pg_ctl", c->bindir);
    snprintf(w_data, sizeof w_data, "%s/data", c->dir);
    snprintf(w_log, sizeof w_log, "%s/pg_ctl.log", c->dir);
    snprintf(w_dir, sizeof w_dir, "%s", c->dir);
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        say(why, why_len, "pipe: %s", strerror(errno));
        rmdir(c->dir);
        return -1;
    }
    pid_t w = fork();
    if (w < 0) {
        say(why, why_len, "fork: %s", strerror(errno));
        close(pfd[0]);
        close(pfd[1]);
        rmdir(c->dir);
        return -1;
    }
    if (w == 0) {
        close(pfd[1]);
        signal(SIGINT, SIG_IGN);
        signal(SIGTERM, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        signal(SIGPIPE, SIG_IGN);
        char b;
        while (read(pfd[0], &b, 1) != 0 && errno == EINTR)
            ;
        char *stop[] = {w_ctl, "-D", w_data, "-m", "immediate", "-w", "-s", "stop", NULL};
        pid_t p = fork();
        if (p == 0) {
            int fd = open(w_log, O_WRONLY | O_APPEND | O_CREAT, 0644);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
            }
            if (c->uid != geteuid() &&
                (setgroups(0, NULL) != 0 || setgid(c->gid) != 0 || setuid(c->uid) != 0))
                _exit(126);
            execve(w_ctl, stop, environ);
            _exit(127);
        }
        int st;
        if (p > 0)
            while (waitpid(p, &st, 0) < 0 && errno == EINTR)
                ;
        char *rm[] = {"/bin/rm", "-rf", w_dir, NULL};
        execve(rm[0], rm, environ);
        _exit(127);
    }
    close(pfd[0]);
    c->watchdog = w;
    c->watch_fd = pfd[1];

    /* A random superuser password, given to initdb in a file and to libpq
     * in a password file. */
    unsigned char rnd[12];
    int rfd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (rfd < 0 || read(rfd, rnd, sizeof rnd) != (ssize_t)sizeof rnd) {
        if (rfd >= 0)
            close(rfd);
        say(why, why_len, "reading /dev/urandom failed");
        co_pg_cluster_destroy(c);
        return -1;
    }
    close(rfd);
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(c->password + 2 * i, 3, "%02x", rnd[i]);
    char pw[192], line[128];
    snprintf(pw, sizeof pw, "%s/initdb.pw", c->dir);
    snprintf(c->passfile, sizeof c->passfile, "%s/pgpass", c->dir);
    snprintf(line, sizeof line, "*:*:*:cutover:%s\n", c->password);
    if (write_file(pw, c->password, c->uid, c->gid) != 0 ||
        write_file(c->passfile, line, geteuid(), getegid()) != 0) {
        say(why, why_len, "writing the password files in %s failed", c->dir);
        co_pg_cluster_destroy(c);
        return -1;
    }

    char initdb[320], data[192], pwopt[224], log[192];
    snprintf(initdb, sizeof initdb, "%s/initdb", c->bindir);
    snprintf(data, sizeof data, "%s/data", c->dir);
    snprintf(pwopt, sizeof pwopt, "--pwfile=%s", pw);
    snprintf(log, sizeof log, "%s/initdb.log", c->dir);
    char *argv[] = {initdb, "-D", data, "-U", "cutover", pwopt, "--auth-local=trust",
                    "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "-N", NULL};
    int rc = run_as(c, argv, log);
    if (rc != 0) {
        char t[1024];
        tail_of(log, t, sizeof t);
        say(why, why_len, "initdb failed (exit %d): %s", rc, t);
        co_pg_cluster_destroy(c);
        return -1;
    }

    /* Another process may take the port between our probe and the server's
     * bind: try a few. */
    for (int attempt = 0; attempt < 5; attempt++) {
        c->port = free_port();
        if (c->port <= 0)
            continue;
        if (pg_ctl_start(c) == 0)
            return 0;
    }
    char t[1024], slog[192];
    snprintf(slog, sizeof slog, "%s/server.log", c->dir);
    tail_of(slog, t, sizeof t);
    say(why, why_len, "pg_ctl start failed: %s", t);
    co_pg_cluster_destroy(c);
    return -1;
}

int co_pg_cluster_stop(co_pg_cluster *c)
{
    char pg_ctl[320], data[192], log[192];
    snprintf(pg_ctl, sizeof pg_ctl, "%s/pg_ctl", c->bindir);
    snprintf(data, sizeof data, "%s/data", c->dir);
    snprintf(log, sizeof log, "%s/pg_ctl.log", c->dir);
    char *argv[] = {pg_ctl, "-D", data, "-m", "fast", "-w", "-t", "60", "-s", "stop", NULL};
    int rc = run_as(c, argv, log);
    if (rc == 0)
        c->running = 0;
    return rc;
}

int co_pg_cluster_restart(co_pg_cluster *c) { return pg_ctl_start(c); }

void co_pg_cluster_destroy(co_pg_cluster *c)
{
    if (c->watch_fd >= 0) {
        close(c->watch_fd);
        c->watch_fd = -1;
    }
    if (c->watchdog > 0) {
        int st;
        while (waitpid(c->watchdog, &st, 0) < 0 && errno == EINTR)
            ;
        c->watchdog = 0;
    }
    c->running = 0;
}

void co_pg_cluster_url(const co_pg_cluster *c, const char *db, char *out, size_t n)
{
    snprintf(out, n, "postgres://cutover@127.0.0.1:%d/%s?passfile=%s", c->port, db, c->passfile);
}

void co_pg_cluster_url_schema(const co_pg_cluster *c, const char *db, const char *schema,
                              char *out, size_t n)
{
    if (!schema) {
        co_pg_cluster_url(c, db, out, n);
        return;
    }
    /* options=-c search_path=SCHEMA, percent-encoded for the URI */
    snprintf(out, n, "postgres://cutover@127.0.0.1:%d/%s?passfile=%s&options=-csearch_path%%3D%s",
             c->port, db, c->passfile, schema);
}

static void no_notices(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

static PGconn *connect_db(const co_pg_cluster *c, const char *db, char *why, size_t why_len)
{
    char url[512];
    co_pg_cluster_url(c, db, url, sizeof url);
    PGconn *conn = PQconnectdb(url);
    if (PQstatus(conn) != CONNECTION_OK) {
        say(why, why_len, "connecting to %s: %s", db, PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    PQsetNoticeProcessor(conn, no_notices, NULL);
    return conn;
}

int co_pg_cluster_exec(const co_pg_cluster *c, const char *db, const char *sql, char *why,
                       size_t why_len)
{
    PGconn *conn = connect_db(c, db, why, why_len);
    if (!conn)
        return -1;
    PGresult *r = PQexec(conn, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        say(why, why_len, "%s: %s", sql, PQerrorMessage(conn));
    PQclear(r);
    PQfinish(conn);
    return ok ? 0 : -1;
}

long long co_pg_cluster_scalar(const co_pg_cluster *c, const char *db, const char *sql, char *why,
                               size_t why_len)
{
    PGconn *conn = connect_db(c, db, why, why_len);
    if (!conn)
        return -1;
    PGresult *r = PQexec(conn, sql);
    long long v = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    else
        say(why, why_len, "%s: %s", sql, PQerrorMessage(conn));
    PQclear(r);
    PQfinish(conn);
    return v;
}

int co_pg_cluster_text(const co_pg_cluster *c, const char *db, const char *sql, char *out,
                       size_t n, char *why, size_t why_len)
{
    if (n)
        out[0] = '\0';
    PGconn *conn = connect_db(c, db, why, why_len);
    if (!conn)
        return -1;
    PGresult *r = PQexec(conn, sql);
    int rc = 0;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        say(why, why_len, "%s: %s", sql, PQerrorMessage(conn));
        rc = -1;
    } else if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) {
        snprintf(out, n, "%s", PQgetvalue(r, 0, 0));
        rc = 1;
    }
    PQclear(r);
    PQfinish(conn);
    return rc;
}

int co_pg_cluster_createdb(const co_pg_cluster *c, const char *name, char *why, size_t why_len)
{
    char sql[256];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", name);
    if (co_pg_cluster_exec(c, "postgres", sql, why, why_len) != 0)
        return -1;
    snprintf(sql, sizeof sql, "CREATE DATABASE \"%s\"", name);
    return co_pg_cluster_exec(c, "postgres", sql, why, why_len);
}

int co_pg_cluster_createschema(const co_pg_cluster *c, const char *db, const char *name,
                               char *why, size_t why_len)
{
    char sql[256];
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS \"%s\" CASCADE; CREATE SCHEMA \"%s\"", name,
             name);
    return co_pg_cluster_exec(c, db, sql, why, why_len);
}
