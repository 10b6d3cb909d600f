/*
 * checkpointer.h - WAL checkpoints on a thread of their own, so that the connection that
 * writes (the scheduler's) never copies WAL pages back into the database itself.
 */
#ifndef GGI_CHECKPOINTER_H
#define GGI_CHECKPOINTER_H

#include <sqlite3.h>

typedef struct ggi_checkpointer ggi_checkpointer;

/**
 * Starts a thread with its own connection to path that runs a passive checkpoint whenever a
 * commit of writer (a WAL connection to path, whose WAL hook calls ggi_checkpointer_on_commit
 * in place of SQLite's automatic checkpoint) leaves at least pages pages in the WAL. Should
 * the thread fall behind by 8 times that, the writer checkpoints itself, as SQLite would, so
 * the WAL stays bounded. The writer must not be closed before ggi_checkpointer_stop. GG_OK or
 * an error code (nothing started).
 */
int ggi_checkpointer_start(sqlite3 *writer, const char *path, int pages, ggi_checkpointer **out);

/** Called from the writer's WAL hook after each commit with the WAL's size in pages. */
int ggi_checkpointer_on_commit(ggi_checkpointer *c, sqlite3 *db, const char *name, int n_pages);

/** Stops the thread and closes its connection (the writer's hook must no longer call
 * ggi_checkpointer_on_commit); NULL and *p == NULL are fine. */
void ggi_checkpointer_stop(ggi_checkpointer **p);

#endif
