/*
 * checkpointer.c - WAL checkpoints on their own thread (checkpointer.h). The writer's WAL hook
 * (the store's, called by SQLite after each commit with the WAL's size in pages) passes the
 * size on (ggi_checkpointer_on_commit) and that wakes the thread; the thread checkpoints
 * passively through its own connection, which never blocks the writer.
 */
#include <pthread.h>
#include <stdlib.h>

#include "../core/ggi.h"
#include "checkpointer.h"

#define BEHIND_FACTOR 8 /* WAL pages, in units of the threshold, before the writer helps */

struct ggi_checkpointer {
    sqlite3 *writer, *db;
    int pages;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int wanted, stopping;
};

int ggi_checkpointer_on_commit(ggi_checkpointer *c, sqlite3 *db, const char *name, int n_pages)
{
    if (n_pages >= c->pages * BEHIND_FACTOR) {
        /* The thread is behind: bound the WAL as SQLite's own checkpoint would. */
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        return SQLITE_OK;
    }
    if (n_pages >= c->pages) {
        pthread_mutex_lock(&c->mu);
        c->wanted = 1;
        pthread_cond_signal(&c->cv);
        pthread_mutex_unlock(&c->mu);
    }
    return SQLITE_OK;
}

static void *run(void *arg)
{
    ggi_checkpointer *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->wanted && !c->stopping)
            pthread_cond_wait(&c->cv, &c->mu);
        if (c->stopping)
            break;
        c->wanted = 0;
        pthread_mutex_unlock(&c->mu);
        /* Busy (another checkpoint running) is fine: the next commit asks again. */
        sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

int ggi_checkpointer_start(sqlite3 *writer, const char *path, int pages, ggi_checkpointer **out)
{
    *out = NULL;
    if (!writer || !path || pages < 1)
        return ggi_error(GG_EINVAL, "ggi_checkpointer_start: bad argument");
    ggi_checkpointer *c = calloc(1, sizeof *c);
    if (!c)
        return ggi_error(GG_ENOMEM, "out of memory");
    c->writer = writer;
    c->pages = pages;
    int rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rc = ggi_error(GG_ESTORE, "opening the checkpoint connection to '%s': %s", path,
                       c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        sqlite3_close_v2(c->db);
        free(c);
        return rc;
    }
    sqlite3_busy_timeout(c->db, 1000);
    /* A connection knows the file is in WAL mode only once it has read it; until then a
     * checkpoint through it does nothing. */
    sqlite3_stmt *st = NULL;
    int wal = sqlite3_prepare_v2(c->db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK &&
              sqlite3_step(st) == SQLITE_ROW &&
              sqlite3_stricmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
    sqlite3_finalize(st);
    if (!wal) {
        rc = ggi_error(GG_ESTORE, "'%s' is not in WAL mode: no checkpoints to move", path);
        sqlite3_close_v2(c->db);
        free(c);
        return rc;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    if (pthread_create(&c->thread, NULL, run, c) != 0) {
        pthread_cond_destroy(&c->cv);
        pthread_mutex_destroy(&c->mu);
        sqlite3_close_v2(c->db);
        free(c);
        return ggi_error(GG_ENOMEM, "cannot start the checkpoint thread");
    }
    *out = c;
    return GG_OK;
}

void ggi_checkpointer_stop(ggi_checkpointer **p)
{
    if (!p || !*p)
        return;
    ggi_checkpointer *c = *p;
    pthread_mutex_lock(&c->mu);
    c->stopping = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    sqlite3_close_v2(c->db);
    free(c);
    *p = NULL;
}
