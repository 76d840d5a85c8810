/* A throwaway PostgreSQL cluster for tests and benchmarks: initdb in a fresh
 * temporary directory, a free loopback port chosen at run time, the unix
 * socket in that directory, started and stopped with pg_ctl, deleted at the
 * end. Never a system service, never a fixed port.
 *
 * initdb and postgres refuse to run as root: when the caller is root, they run
 * as `nobody` (the directory is handed to it). The superuser "cutover" has a
 * random password, TCP connections must give it (scram-sha-256): URLs carry
 * `passfile=` pointing at a 0600 file in the directory, so the store's
 * password path is the one exercised.
 *
 * A watchdog child (forked at start) stops the server and deletes the
 * directory when the process that started the cluster ends, however it ends
 * (crash or SIGKILL included): nothing outlives a test.
 *
 * Binaries: $CO_PG_BINDIR (when set, and only there: a wrong one means
 * "skip"), else `pg_config --bindir`, else the newest
 * /usr/lib/postgresql/N/bin, else initdb on PATH. */
#ifndef CO_PG_CLUSTER_H
#define CO_PG_CLUSTER_H

#include <stddef.h>
#include <sys/types.h>

/* What co_pg_cluster_start returns when no PostgreSQL server binaries are
 * installed: the caller skips (ctest SKIP_RETURN_CODE). */
#define CO_PG_SKIP 77

typedef struct co_pg_cluster {
    char bindir[256];
    char dir[128];       /* temp dir: data/, socket, logs, password files */
    char passfile[192];  /* libpq password file (owned by the caller's uid) */
    char password[40];
    int port;
    int running;
    uid_t uid;           /* who runs the server (nobody when we are root) */
    gid_t gid;
    pid_t watchdog;
    int watch_fd;        /* write end of the watchdog's pipe */
} co_pg_cluster;

/* Creates and starts a cluster. 0 when running; CO_PG_SKIP when no server
 * binaries are installed (why says so); -1 on any other failure (why says
 * what, with the tail of the server log when there is one). */
int co_pg_cluster_start(co_pg_cluster *c, char *why, size_t why_len);
/* pg_ctl stop -m fast (sessions are terminated, like a database restart). */
int co_pg_cluster_stop(co_pg_cluster *c);
/* pg_ctl start again on the same port and data. */
int co_pg_cluster_restart(co_pg_cluster *c);
/* Stops the server (immediate) and deletes the directory. Idempotent. */
void co_pg_cluster_destroy(co_pg_cluster *c);

/* A store URL for database `db` on this cluster:
 * postgres://cutover@127.0.0.1:PORT/DB?passfile=...; with a schema (not
 * NULL), sessions of that URL use it as their search_path, so tests can
 * have a fresh store per schema in one database (much cheaper than a
 * database each). */
void co_pg_cluster_url(const co_pg_cluster *c, const char *db, char *out, size_t n);
void co_pg_cluster_url_schema(const co_pg_cluster *c, const char *db, const char *schema,
                              char *out, size_t n);
/* DROP SCHEMA name CASCADE (if it exists), CREATE SCHEMA name, in `db`. */
int co_pg_cluster_createschema(const co_pg_cluster *c, const char *db, const char *name,
                               char *why, size_t why_len);
/* Runs one SQL command (no parameters) in database `db` ("postgres" for the
 * maintenance one). 0 or -1 with the server's message in why. */
int co_pg_cluster_exec(const co_pg_cluster *c, const char *db, const char *sql, char *why,
                       size_t why_len);
/* A scalar query's first value as a number (-1 on error, why set). */
long long co_pg_cluster_scalar(const co_pg_cluster *c, const char *db, const char *sql,
                               char *why, size_t why_len);
/* A query's first value as text into out: 1 when there was one, 0 when no
 * row or NULL (out empty), -1 on error (why set). */
int co_pg_cluster_text(const co_pg_cluster *c, const char *db, const char *sql, char *out,
                       size_t n, char *why, size_t why_len);
/* CREATE DATABASE name (dropping one of that name first). */
int co_pg_cluster_createdb(const co_pg_cluster *c, const char *name, char *why, size_t why_len);

#endif
