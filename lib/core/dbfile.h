/*
 * dbfile.h - the files of a SQLite database as the operating system sees them: creating a
 * missing database private to its owner (0600, whatever the umask; SQLite gives its -wal and
 * -shm the main file's mode), and saying in words why one cannot be opened or written
 * (missing directory, read-only filesystem, permissions), where SQLite only says "unable to
 * open database file". For every component that keeps a database. Internal.
 */
#ifndef GGI_DBFILE_H
#define GGI_DBFILE_H

#include <stddef.h>

/**
 * Creates path as an empty file of mode 0600 when it does not exist (an empty file is an
 * empty database to SQLite). Names SQLite treats specially (":memory:", "file:" URIs) and
 * existing files are left alone. GG_OK, or GG_ESTORE saying why the file cannot be created
 * (ggi_dbfile_explain).
 */
int ggi_dbfile_create_private(const char *path);

/**
 * Writes into buf (size n) why the database at path, its directory or its -wal/-shm files
 * cannot be opened for writing: a missing or unwritable directory, a read-only filesystem, a
 * file this user may not write. Empty when nothing is found. Returns buf.
 */
char *ggi_dbfile_explain(const char *path, char *buf, size_t n);

#endif
