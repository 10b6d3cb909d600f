/*
 * replica.c - physical replication of the store's database (replica.h): the page images each
 * committed transaction wrote to the WAL, read back after its COMMIT on the active server,
 * written into the standby's file at their place; whole-file snapshots for a joining
 * standby.
 *
 * Capture: the store's WAL hook (SQLite calls it right after each commit of the writing
 * connection, with the WAL's length in frames) reads the frames the commit appended, through
 * SQLite's own handle of the -wal file, rather than a VFS shim that sees every write. Why:
 * the hook already exists (the store's checkpoints hang on it); reading back the frames just
 * written, from the page cache, is the copy a shim would make, and a shim would stand between
 * SQLite and every file the process opens through it, for every connection and every write,
 * and would have to follow SQLite's WAL writing rules (frames rewritten in place, padding
 * after a commit) to cut transactions, which the committed WAL gives for free. What makes it
 * safe:
 *   - the hook runs on the writer's thread before the next transaction can start, and only a
 *     writer restarts the WAL (the checkpointer's passive checkpoints never do), so with one
 *     writer the frames cannot be overwritten between the commit and the read;
 *   - every frame read must carry the salts of the WAL header read with it (a restart under
 *     the reader shows), the range must end on a commit frame, and a change of
 *     PRAGMA data_version between two of the recorder's transactions shows a commit by
 *     another connection (its frames may be lost to a restart): any of these marks the
 *     capture broken, the commit is shipped as "not captured" and the standby re-snapshots.
 * Who writes the orchestrator's file: the scheduler's connection (recorded); the host API's
 * connection, whose only write (gg_orchestrator_submit) is refused on a pair; the
 * checkpointer's, which only checkpoints; a generator journal or retriever index kept in the
 * same file, which a pair should not do (docs/ha.md): their writes are caught as above.
 * A frame rewritten in place within a transaction is read as it stands after the commit; a
 * page written several times in the range keeps its last image. Commits that numbered
 * nothing (no row changed) keep their pages for the next numbered one, so no page is left
 * behind.
 *
 * A page set on the wire: "GGPS", page size, database size in pages after the commit, number
 * of pages, then per page its number and image (big-endian 32-bit words).
 *
 * Apply: each page written at (pgno - 1) * page size into the replica file and the file cut
 * to the commit's size, while no SQLite connection writes the file and its WAL is empty; a
 * marker file (path + "-hadirty") exists from the first write of a group to the check that
 * ends it (the sequence read back through SQLite), so a crash mid-apply is visible. The
 * connections left open on the file (the host API's) learn of the new pages through the WAL
 * index (wal_index_changed).
 */
#include <sqlite3.h>

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "replica.h"

#define WAL_HDR 32
#define FRAME_HDR 24
#define SET_HDR 16
#define SET_MAGIC "GGPS"
#define READ_FRAMES 256 /* frames read with one pread */
#define DIRTY_SUFFIX "-hadirty"

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/*
 * Files are read and written through SQLite's own handles (SQLITE_FCNTL_FILE_POINTER,
 * SQLITE_FCNTL_JOURNAL_POINTER, xShmMap), never through a descriptor of this file's: closing
 * any descriptor of a file drops every POSIX lock the process holds on it, SQLite's
 * included, and another process could then take the database for its own (and delete its
 * WAL index under this one).
 */
static int file_read(sqlite3_file *f, void *buf, size_t n, sqlite3_int64 off)
{
    return f && f->pMethods && f->pMethods->xRead(f, buf, (int)n, off) == SQLITE_OK ? 0 : -1;
}

static int file_write(sqlite3_file *f, const void *buf, size_t n, sqlite3_int64 off)
{
    return f && f->pMethods && f->pMethods->xWrite(f, buf, (int)n, off) == SQLITE_OK ? 0 : -1;
}

/* The WAL of the recorder's connection (fetched at each use: SQLite may reopen it). */
static sqlite3_file *wal_file(sqlite3 *db)
{
    sqlite3_file *f = NULL;
    if (sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &f) != SQLITE_OK)
        return NULL;
    return f;
}

/* ---------------------------------------------------------------- the active side */

struct ggi_replica {
    sqlite3 *db;
    ggi_replica_ship_fn ship;
    void *user;
    _Atomic int64_t seq;         /* last committed */
    int64_t pending_seq;         /* given to the transaction being committed */
    sqlite3_int64 changes_at_begin;
    int bumped;                  /* the open transaction numbered itself */
    sqlite3_stmt *bump, *dv;
    int data_version, dv_known;  /* at the recorder's last commit */
    uint32_t page_size;
    int known;                   /* salt and next_frame describe the WAL */
    uint32_t salt[2], next_frame;
    /* the page set gathered since the last one shipped */
    unsigned char *set;
    size_t set_cap;
    uint32_t n_pages, db_pages;
    uint32_t *keys, *vals, slots; /* page number -> entry, open addressing */
    unsigned char *rbuf;
    size_t rcap;
    int broken;
    char why[300];
};

/* Set by store.c: the store's recorder slot. */
ggi_replica **ggi_store_replica_slot(ggi_store *s);

int ggi_replica_prepare(ggi_store *s)
{
    sqlite3 *db = ggi_store_sqlite(s);
    if (!db)
        return ggi_error(GG_EINVAL, "ggi_replica_prepare: no database");
    char *err = NULL;
    if (sqlite3_exec(db, "CREATE TABLE IF NOT EXISTS ggi_ha(id INTEGER PRIMARY KEY CHECK(id = 1),"
                     " seq INTEGER NOT NULL);"
                     "INSERT OR IGNORE INTO ggi_ha(id, seq) VALUES (1, 0);",
                     NULL, NULL, &err) != SQLITE_OK) {
        int rc = ggi_error(GG_ESTORE, "preparing replication: %s", err ? err : "?");
        sqlite3_free(err);
        return rc;
    }
    return GG_OK;
}

static int read_seq_db(sqlite3 *db, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = GG_ESTORE;
    if (sqlite3_prepare_v2(db, "SELECT seq FROM ggi_ha WHERE id = 1", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = GG_OK;
    }
    if (rc != GG_OK)
        ggi_error(GG_ESTORE, "reading the replication sequence: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc;
}

int ggi_replica_read_seq(ggi_store *s, int64_t *out)
{
    sqlite3 *db = ggi_store_sqlite(s);
    if (!db || !out)
        return ggi_error(GG_EINVAL, "ggi_replica_read_seq: bad argument");
    return read_seq_db(db, out);
}

static int pragma_int(sqlite3 *db, const char *sql, int *out)
{
    sqlite3_stmt *st = NULL;
    int ok = sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
             sqlite3_step(st) == SQLITE_ROW;
    if (ok)
        *out = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return ok ? GG_OK : ggi_error(GG_ESTORE, "%s: %s", sql, sqlite3_errmsg(db));
}

int ggi_replica_attach(ggi_store *s, ggi_replica_ship_fn ship, void *user)
{
    ggi_replica **slot = s ? ggi_store_replica_slot(s) : NULL;
    if (!slot || !ship)
        return ggi_error(GG_EINVAL, "ggi_replica_attach: bad argument");
    if (*slot)
        return ggi_error(GG_ESTATE, "the store is recorded already");
    sqlite3 *db = ggi_store_sqlite(s);
    int64_t seq = 0;
    int ps = 0;
    int rc = ggi_replica_read_seq(s, &seq);
    if (rc == GG_OK)
        rc = pragma_int(db, "PRAGMA page_size", &ps);
    if (rc != GG_OK)
        return rc;
    sqlite3_file *wal = wal_file(db);
    if (!wal || !wal->pMethods)
        return ggi_error(GG_ESTORE, "replication: the database has no WAL open");
    ggi_replica *r = calloc(1, sizeof *r);
    if (!r)
        return ggi_error(GG_ENOMEM, "out of memory");
    r->db = db;
    r->ship = ship;
    r->user = user;
    r->page_size = (uint32_t)ps;
    atomic_store(&r->seq, seq);
    if (sqlite3_prepare_v2(db, "UPDATE ggi_ha SET seq = ?1 WHERE id = 1", -1, &r->bump,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "PRAGMA data_version", -1, &r->dv, NULL) != SQLITE_OK) {
        rc = ggi_error(GG_ESTORE, "replication: %s", sqlite3_errmsg(db));
        ggi_replica_free(r);
        return rc;
    }
    *slot = r;
    return GG_OK;
}

void ggi_replica_detach(ggi_store *s)
{
    ggi_replica **slot = s ? ggi_store_replica_slot(s) : NULL;
    if (slot && *slot) {
        ggi_replica_free(*slot);
        *slot = NULL;
    }
}

int64_t ggi_replica_seq(ggi_store *s)
{
    ggi_replica **slot = s ? ggi_store_replica_slot(s) : NULL;
    return slot && *slot ? atomic_load(&(*slot)->seq) : 0;
}

/* The capture cannot go on: the next numbered commit ships as "not captured". */
static void broke(ggi_replica *r, const char *why)
{
    if (!r->broken)
        snprintf(r->why, sizeof r->why, "replication: %s", why);
    r->broken = 1;
}

static void set_reset(ggi_replica *r)
{
    r->n_pages = 0;
    if (r->keys)
        memset(r->keys, 0, (size_t)r->slots * sizeof *r->keys);
}

static size_t entry_size(const ggi_replica *r)
{
    return 4 + (size_t)r->page_size;
}

static unsigned char *entry(ggi_replica *r, uint32_t i)
{
    return r->set + SET_HDR + (size_t)i * entry_size(r);
}

static uint32_t slot_of(const ggi_replica *r, uint32_t pgno)
{
    uint32_t h = (pgno * 2654435761u) & (r->slots - 1);
    while (r->keys[h] && r->keys[h] != pgno)
        h = (h + 1) & (r->slots - 1);
    return h;
}

/* Room for one more page in the table and the set; 0, or -1 (broken). */
static int grow(ggi_replica *r)
{
    if ((size_t)(r->n_pages + 1) * 2 > r->slots) {
        uint32_t ns = r->slots ? r->slots * 2 : 1024;
        uint32_t *k = calloc(ns, sizeof *k), *v = calloc(ns, sizeof *v);
        if (!k || !v) {
            free(k);
            free(v);
            broke(r, "out of memory for a page set");
            return -1;
        }
        uint32_t *ok = r->keys, *ov = r->vals, os = r->slots;
        r->keys = k;
        r->vals = v;
        r->slots = ns;
        for (uint32_t i = 0; i < os; i++)
            if (ok[i]) {
                uint32_t h = slot_of(r, ok[i]);
                k[h] = ok[i];
                v[h] = ov[i];
            }
        free(ok);
        free(ov);
    }
    size_t need = SET_HDR + (size_t)(r->n_pages + 1) * entry_size(r);
    if (need > GGI_REPLICA_MAX_PAGESET) {
        broke(r, "one transaction wrote more pages than a page set may hold");
        return -1;
    }
    if (need > r->set_cap) {
        size_t nc = r->set_cap ? r->set_cap * 2 : SET_HDR + 64 * entry_size(r);
        while (nc < need)
            nc *= 2;
        unsigned char *p = realloc(r->set, nc);
        if (!p) {
            broke(r, "out of memory for a page set");
            return -1;
        }
        r->set = p;
        r->set_cap = nc;
    }
    return 0;
}

/* A page's image joins the set (its last image wins). */
static void add_page(ggi_replica *r, uint32_t pgno, const unsigned char *img)
{
    uint32_t h = r->slots ? slot_of(r, pgno) : 0;
    if (r->slots && r->keys[h] == pgno) {
        memcpy(entry(r, r->vals[h]) + 4, img, r->page_size);
        return;
    }
    if (grow(r) != 0)
        return;
    h = slot_of(r, pgno);
    unsigned char *e = entry(r, r->n_pages);
    put32(e, pgno);
    memcpy(e + 4, img, r->page_size);
    r->keys[h] = pgno;
    r->vals[h] = r->n_pages++;
}

/* Reads frames [from, to) of the WAL (salts given) into the set; 0, or -1 (broken). */
static int read_frames(ggi_replica *r, sqlite3_file *wal, uint32_t from, uint32_t to)
{
    size_t fsz = FRAME_HDR + (size_t)r->page_size;
    int last_commit = 0;
    for (uint32_t i = from; i < to && !r->broken;) {
        uint32_t cnt = to - i < READ_FRAMES ? to - i : READ_FRAMES;
        if ((size_t)cnt * fsz > r->rcap) {
            unsigned char *p = realloc(r->rbuf, (size_t)cnt * fsz);
            if (!p) {
                broke(r, "out of memory reading the WAL");
                return -1;
            }
            r->rbuf = p;
            r->rcap = (size_t)cnt * fsz;
        }
        if (file_read(wal, r->rbuf, (size_t)cnt * fsz,
                      WAL_HDR + (sqlite3_int64)i * (sqlite3_int64)fsz)) {
            broke(r, "cannot read the WAL's frames");
            return -1;
        }
        for (uint32_t j = 0; j < cnt && !r->broken; j++) {
            const unsigned char *f = r->rbuf + (size_t)j * fsz;
            uint32_t pgno = get32(f), commit = get32(f + 4);
            if (pgno == 0 || get32(f + 8) != r->salt[0] || get32(f + 12) != r->salt[1]) {
                broke(r, "a WAL frame of another generation (the WAL restarted under the "
                      "recorder)");
                return -1;
            }
            add_page(r, pgno, f + FRAME_HDR);
            last_commit = commit != 0;
            if (commit)
                r->db_pages = commit;
        }
        i += cnt;
    }
    if (!r->broken && to > from && !last_commit)
        broke(r, "the WAL does not end on a commit");
    return r->broken ? -1 : 0;
}

void ggi_replica_on_wal(ggi_replica *r, int wal_frames)
{
    if (!r || r->broken || wal_frames < 0)
        return;
    unsigned char h[WAL_HDR];
    sqlite3_file *wal = wal_file(r->db);
    if (file_read(wal, h, sizeof h, 0)) {
        broke(r, "cannot read the WAL header");
        return;
    }
    uint32_t magic = get32(h);
    if ((magic != 0x377f0682u && magic != 0x377f0683u) || get32(h + 8) != r->page_size) {
        broke(r, "the WAL header is not one of this database");
        return;
    }
    uint32_t s0 = get32(h + 16), s1 = get32(h + 20);
    uint32_t from = r->known && s0 == r->salt[0] && s1 == r->salt[1] ? r->next_frame : 0;
    r->salt[0] = s0;
    r->salt[1] = s1;
    r->known = 1;
    if ((uint32_t)wal_frames < from) {
        broke(r, "the WAL is shorter than the frames already read");
        return;
    }
    if (read_frames(r, wal, from, (uint32_t)wal_frames) == 0)
        r->next_frame = (uint32_t)wal_frames;
}

void ggi_replica_on_begin(ggi_replica *r)
{
    r->bumped = 0;
    r->changes_at_begin = sqlite3_total_changes64(r->db);
}

/* Another connection's commit since the recorder's last one (PRAGMA data_version). */
static int foreign_commit(ggi_replica *r)
{
    int v = 0, seen = 0;
    sqlite3_reset(r->dv);
    if (sqlite3_step(r->dv) == SQLITE_ROW) {
        v = sqlite3_column_int(r->dv, 0);
        seen = 1;
    }
    sqlite3_reset(r->dv);
    if (!seen)
        return 1;
    int foreign = r->dv_known && v != r->data_version;
    r->data_version = v;
    r->dv_known = 1;
    return foreign;
}

int ggi_replica_before_commit(ggi_replica *r)
{
    if (foreign_commit(r))
        broke(r, "another connection wrote to the database");
    if (sqlite3_total_changes64(r->db) == r->changes_at_begin)
        return GG_OK;
    int64_t seq = atomic_load(&r->seq) + 1;
    sqlite3_reset(r->bump);
    sqlite3_bind_int64(r->bump, 1, seq);
    int ok = sqlite3_step(r->bump) == SQLITE_DONE && sqlite3_changes(r->db) == 1;
    sqlite3_reset(r->bump);
    if (!ok)
        return ggi_error(GG_ESTORE, "replication: cannot number the transaction: %s",
                         sqlite3_errmsg(r->db));
    r->pending_seq = seq;
    r->bumped = 1;
    return GG_OK;
}

void ggi_replica_after_commit(ggi_replica *r, int committed)
{
    int bumped = r->bumped;
    r->bumped = 0;
    if (!committed || !bumped)
        return;
    atomic_store(&r->seq, r->pending_seq);
    if (!r->broken && r->n_pages == 0)
        broke(r, "a numbered commit wrote no frame the recorder saw");
    if (r->broken) {
        ggi_error(GG_ESTORE, "%s", r->why);
        r->ship(r->user, r->pending_seq, NULL, 0);
        /* Starts again from the WAL as it is: the standby takes a snapshot after this. */
        r->broken = 0;
        r->known = 0;
        set_reset(r);
        return;
    }
    memcpy(r->set, SET_MAGIC, 4);
    put32(r->set + 4, r->page_size);
    put32(r->set + 8, r->db_pages);
    put32(r->set + 12, r->n_pages);
    r->ship(r->user, r->pending_seq, r->set, SET_HDR + (size_t)r->n_pages * entry_size(r));
    set_reset(r);
}

void ggi_replica_free(ggi_replica *r)
{
    if (!r)
        return;
    sqlite3_finalize(r->bump);
    sqlite3_finalize(r->dv);
    free(r->set);
    free(r->keys);
    free(r->vals);
    free(r->rbuf);
    free(r);
}

/* ---------------------------------------------------------------- snapshots */

int ggi_replica_snapshot(const char *path, void **out, size_t *n, int64_t *seq)
{
    if (!path || !out || !n || !seq)
        return ggi_error(GG_EINVAL, "ggi_replica_snapshot: bad argument");
    *out = NULL;
    *n = 0;
    sqlite3 *src = NULL, *mem = NULL;
    sqlite3_backup *b = NULL;
    int rc = GG_ESTORE, cookie = 0, ps = 0, src_open = 0;
    if (sqlite3_open_v2(path, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_open_v2(":memory:", &mem, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        rc = ggi_error(GG_ESTORE, "snapshot of '%s': cannot open it", path);
        goto out;
    }
    sqlite3_busy_timeout(src, 5000);
    /* One read transaction: the copy, its schema cookie and page size are of one commit. */
    char sql[64];
    if (sqlite3_exec(src, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
        (src_open = 1, pragma_int(src, "PRAGMA schema_version", &cookie)) != GG_OK ||
        pragma_int(src, "PRAGMA page_size", &ps) != GG_OK) {
        rc = ggi_error(GG_ESTORE, "snapshot of '%s': %s", path, sqlite3_errmsg(src));
        goto out;
    }
    snprintf(sql, sizeof sql, "PRAGMA page_size=%d", ps);
    sqlite3_exec(mem, sql, NULL, NULL, NULL);
    b = sqlite3_backup_init(mem, "main", src, "main");
    int brc = b ? sqlite3_backup_step(b, -1) : SQLITE_ERROR;
    sqlite3_backup_finish(b);
    if (brc != SQLITE_DONE) {
        rc = ggi_error(GG_ESTORE, "snapshot of '%s': %s", path,
                       b ? sqlite3_errstr(brc) : sqlite3_errmsg(mem));
        goto out;
    }
    if ((rc = read_seq_db(mem, seq)) != GG_OK)
        goto out;
    sqlite3_int64 size = 0;
    unsigned char *img = sqlite3_serialize(mem, "main", &size, 0);
    if (!img || size < 100 || size % ps) {
        sqlite3_free(img);
        rc = ggi_error(GG_ENOMEM, "snapshot: cannot serialise the copy");
        goto out;
    }
    if ((unsigned long long)size > GGI_REPLICA_MAX_SNAPSHOT) {
        sqlite3_free(img);
        rc = ggi_error(GG_ETOOBIG, "snapshot: %lld bytes (at most %llu)", (long long)size,
                       GGI_REPLICA_MAX_SNAPSHOT);
        goto out;
    }
    /* The backup API gave the copy's page 1 a schema cookie of its own and the copy's
     * journal mode; put back the source's, so every page is the primary's own. */
    img[18] = img[19] = 2;
    put32(img + 40, (uint32_t)cookie);
    *out = img;
    *n = (size_t)size;
    rc = GG_OK;
out:
    if (src_open)
        sqlite3_exec(src, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(mem);
    sqlite3_close(src);
    return rc;
}

void ggi_replica_free_image(void *image)
{
    sqlite3_free(image);
}

/* ---------------------------------------------------------------- the standby's file */

struct ggi_replica_file {
    char *path, *marker;
    sqlite3 *check;     /* reads the sequence back; its file handle writes the pages */
    sqlite3_file *file;
    uint32_t page_size;
    int64_t seq;
    int ready;          /* a snapshot and every page set since */
    int dirty;          /* the marker exists: pages written, not yet checked */
};

int ggi_replica_dirty(const char *path)
{
    char m[4096];
    if (!path || snprintf(m, sizeof m, "%s" DIRTY_SUFFIX, path) >= (int)sizeof m)
        return 0;
    return access(m, F_OK) == 0;
}

int ggi_replica_file_open(const char *path, ggi_replica_file **out)
{
    if (!out || !path || !*path)
        return ggi_error(GG_EINVAL, "ggi_replica_file_open: bad argument");
    *out = NULL;
    ggi_replica_file *f = calloc(1, sizeof *f);
    size_t pl = strlen(path);
    if (!f || !(f->path = malloc(pl + 1)) || !(f->marker = malloc(pl + sizeof DIRTY_SUFFIX))) {
        if (f)
            free(f->path);
        free(f);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    memcpy(f->path, path, pl + 1);
    memcpy(f->marker, path, pl);
    memcpy(f->marker + pl, DIRTY_SUFFIX, sizeof DIRTY_SUFFIX);
    struct stat sb;
    int st = stat(path, &sb);
    if (st != 0 || !S_ISREG(sb.st_mode)) {
        int rc = ggi_error(GG_ESTORE, "the replica '%s': %s", path,
                           st != 0 ? strerror(errno) : "not a regular file");
        ggi_replica_file_close(&f);
        return rc;
    }
    if (sqlite3_open_v2(path, &f->check, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK ||
        sqlite3_file_control(f->check, "main", SQLITE_FCNTL_FILE_POINTER, &f->file) !=
            SQLITE_OK ||
        !f->file || !f->file->pMethods) {
        int rc = ggi_error(GG_ESTORE, "the replica '%s': %s", path,
                           f->check ? sqlite3_errmsg(f->check) : "cannot open it");
        ggi_replica_file_close(&f);
        return rc;
    }
    sqlite3_busy_timeout(f->check, 5000);
    f->dirty = access(f->marker, F_OK) == 0;
    *out = f;
    return GG_OK;
}

void ggi_replica_file_close(ggi_replica_file **pf)
{
    if (!pf || !*pf)
        return;
    ggi_replica_file *f = *pf;
    sqlite3_close_v2(f->check);
    free(f->path);
    free(f->marker);
    free(f);
    *pf = NULL;
}

int ggi_replica_file_ready(const ggi_replica_file *f)
{
    return f && f->ready;
}

int64_t ggi_replica_file_seq(const ggi_replica_file *f)
{
    return f ? f->seq : 0;
}

static int mark_dirty(ggi_replica_file *f)
{
    if (f->dirty)
        return GG_OK;
    int fd = open(f->marker, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return ggi_error(GG_EIO, "the replica's marker '%s': %s", f->marker, strerror(errno));
    close(fd);
    f->dirty = 1;
    return GG_OK;
}

/* Checks a snapshot's bytes without touching the file: a whole database of this library;
 * *ps and *seq get its page size and sequence. */
static int check_image(const unsigned char *image, size_t n, uint32_t *ps, int64_t *seq)
{
    if (n < 512 || n > GGI_REPLICA_MAX_SNAPSHOT || memcmp(image, "SQLite format 3", 16) != 0)
        return ggi_error(GG_EINVAL, "the snapshot is not an SQLite database (%zu bytes)", n);
    uint32_t p = (uint32_t)image[16] << 8 | image[17];
    if (p == 1)
        p = 65536;
    if (p < 512 || (p & (p - 1)) || n % p || (size_t)get32(image + 28) * p != n)
        return ggi_error(GG_EINVAL, "the snapshot's size (%zu bytes) is not its pages'", n);
    sqlite3 *mem = NULL;
    unsigned char *copy = sqlite3_malloc64(n);
    if (!copy || sqlite3_open_v2(":memory:", &mem, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        sqlite3_free(copy);
        sqlite3_close(mem);
        return ggi_error(GG_ENOMEM, "restore: out of memory");
    }
    memcpy(copy, image, n);
    /* A WAL database's header says so (bytes 18 and 19); one in memory cannot be. */
    copy[18] = copy[19] = 1;
    int rc = GG_OK;
    if (sqlite3_deserialize(mem, "main", copy, (sqlite3_int64)n, (sqlite3_int64)n,
                            SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_READONLY) !=
        SQLITE_OK)
        rc = ggi_error(GG_EINVAL, "the snapshot cannot be read: %s", sqlite3_errmsg(mem));
    sqlite3_stmt *st = NULL;
    if (rc == GG_OK) {
        int ok = sqlite3_prepare_v2(mem, "PRAGMA quick_check", -1, &st, NULL) == SQLITE_OK &&
                 sqlite3_step(st) == SQLITE_ROW &&
                 strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
        sqlite3_finalize(st);
        if (!ok)
            rc = ggi_error(GG_EINVAL, "the snapshot is damaged");
    }
    if (rc == GG_OK && read_seq_db(mem, seq) != GG_OK)
        rc = ggi_error(GG_EINVAL, "the snapshot has no replication sequence (ggi_ha)");
    sqlite3_close(mem);
    *ps = p;
    return rc;
}

int ggi_replica_file_restore(ggi_replica_file *f, const void *image, size_t n, int64_t *seq)
{
    if (!f || !image || !seq)
        return ggi_error(GG_EINVAL, "ggi_replica_file_restore: bad argument");
    uint32_t ps = 0;
    int64_t at = 0;
    int rc = check_image(image, n, &ps, &at);
    if (rc != GG_OK)
        return rc;
    f->ready = 0;
    if ((rc = mark_dirty(f)) != GG_OK)
        return rc;
    int bad = 0;
    for (size_t off = 0; off < n && !bad; off += ps)
        bad = file_write(f->file, (const unsigned char *)image + off, ps, (sqlite3_int64)off);
    if (bad || f->file->pMethods->xTruncate(f->file, (sqlite3_int64)n) != SQLITE_OK ||
        f->file->pMethods->xSync(f->file, SQLITE_SYNC_NORMAL) != SQLITE_OK)
        return ggi_error(GG_EIO, "writing the snapshot into '%s'", f->path);
    f->page_size = ps;
    f->seq = at;
    if ((rc = ggi_replica_file_sync(f)) != GG_OK)
        return rc;
    f->ready = 1;
    *seq = at;
    return GG_OK;
}

/* A page set's header and layout; GG_EINVAL when it is not whole or not for this replica. */
static int check_set(const ggi_replica_file *f, int64_t seq, const unsigned char *p, size_t n,
                     uint32_t *db_pages, uint32_t *np)
{
    if (n < SET_HDR || memcmp(p, SET_MAGIC, 4) != 0)
        return ggi_error(GG_EINVAL, "page set %lld: not a page set (%zu bytes)",
                         (long long)seq, n);
    if (get32(p + 4) != f->page_size)
        return ggi_error(GG_EINVAL, "page set %lld: pages of %u bytes, the replica's are %u",
                         (long long)seq, get32(p + 4), f->page_size);
    *db_pages = get32(p + 8);
    *np = get32(p + 12);
    size_t es = 4 + (size_t)f->page_size;
    if (*db_pages == 0 || (unsigned long long)*db_pages * f->page_size >
                              GGI_REPLICA_MAX_SNAPSHOT)
        return ggi_error(GG_EINVAL, "page set %lld: a database of %u pages", (long long)seq,
                         *db_pages);
    if (*np == 0 || *np > (n - SET_HDR) / es || SET_HDR + (size_t)*np * es != n)
        return ggi_error(GG_EINVAL, "page set %lld: %zu bytes do not hold its %u pages",
                         (long long)seq, n, *np);
    for (uint32_t i = 0; i < *np; i++) {
        uint32_t pg = get32(p + SET_HDR + (size_t)i * es);
        if (pg == 0 || pg > *db_pages)
            return ggi_error(GG_EINVAL, "page set %lld: page %u outside a database of %u "
                             "pages", (long long)seq, pg, *db_pages);
    }
    return GG_OK;
}

int ggi_replica_file_apply(ggi_replica_file *f, int64_t seq, const void *data, size_t n)
{
    if (!f || (!data && n))
        return ggi_error(GG_EINVAL, "ggi_replica_file_apply: bad argument");
    if (!f->ready)
        return ggi_error(GG_ESTATE, "page set %lld: the replica holds no snapshot",
                         (long long)seq);
    if (seq <= f->seq)
        return ggi_error(GG_EEXIST, "page set %lld is applied already (the replica is at "
                         "%lld)", (long long)seq, (long long)f->seq);
    if (seq != f->seq + 1)
        return ggi_error(GG_ESTATE, "page set %lld does not follow %lld (a gap)",
                         (long long)seq, (long long)f->seq);
    if (n > GGI_REPLICA_MAX_PAGESET)
        return ggi_error(GG_ETOOBIG, "page set %lld: %zu bytes (at most %u)", (long long)seq,
                         n, GGI_REPLICA_MAX_PAGESET);
    const unsigned char *p = data;
    uint32_t db_pages = 0, np = 0;
    int rc = check_set(f, seq, p, n, &db_pages, &np);
    if (rc != GG_OK || (rc = mark_dirty(f)) != GG_OK)
        return rc;
    size_t es = 4 + (size_t)f->page_size;
    for (uint32_t i = 0; i < np; i++) {
        const unsigned char *e = p + SET_HDR + (size_t)i * es;
        if (file_write(f->file, e + 4, f->page_size,
                       (sqlite3_int64)(get32(e) - 1) * (sqlite3_int64)f->page_size)) {
            f->ready = 0;
            return ggi_error(GG_EIO, "page set %lld: writing '%s'", (long long)seq, f->path);
        }
    }
    sqlite3_int64 size = -1, want = (sqlite3_int64)db_pages * (sqlite3_int64)f->page_size;
    if (f->file->pMethods->xFileSize(f->file, &size) != SQLITE_OK ||
        (size != want && f->file->pMethods->xTruncate(f->file, want) != SQLITE_OK)) {
        f->ready = 0;
        return ggi_error(GG_EIO, "page set %lld: sizing '%s'", (long long)seq, f->path);
    }
    f->seq = seq;
    return GG_OK;
}

/*
 * Another connection of this process (the host API's, which stays open) keeps the file's
 * WAL index, whose header gives the database's size as it was before the pages were written
 * (SQLite takes that size over the file's while the WAL is empty and the index lives), and
 * whose change counter tells each connection whether its cache still holds. So the header
 * (walformat: two copies of 48 bytes at the start of the -shm file, native-endian words,
 * the last two a checksum of the first ten) gets a size of 0 (the file's) and its change
 * counter one up: every connection drops its cache at its next read. The WAL must be empty:
 * frames there mean a connection wrote the standby's file. Called with no connection of
 * this process in a transaction on the file.
 */
static int wal_index_changed(const ggi_replica_file *f)
{
    sqlite3_file *fp = f->file;
    if (fp->pMethods->iVersion < 2 || !fp->pMethods->xShmMap)
        return GG_OK;
    volatile void *map = NULL;
    if (fp->pMethods->xShmMap(fp, 0, 32768, 0, &map) != SQLITE_OK || !map)
        return GG_OK; /* no index: the next connection makes one from the file */
    /* The writer's lock (slot 0) keeps any other writer out meanwhile. */
    if (fp->pMethods->xShmLock(fp, 0, 1, SQLITE_SHM_LOCK | SQLITE_SHM_EXCLUSIVE) != SQLITE_OK)
        return ggi_error(GG_EBUSY, "the replica's WAL index is locked by a writer");
    volatile uint32_t *h = map;
    uint32_t w[12];
    for (int i = 0; i < 12; i++)
        w[i] = h[i];
    int rc = GG_OK;
    if (((const unsigned char *)w)[12] == 0) {
        rc = GG_OK; /* not initialised: the next reader rebuilds it */
    } else if (w[4] != 0) {
        rc = ggi_error(GG_ESTATE, "the replica's WAL holds %u frames: a connection wrote the "
                       "standby's database", w[4]);
    } else {
        w[2] += 1; /* iChange */
        w[5] = 0;  /* nPage: the file's size */
        uint32_t s1 = 0, s2 = 0;
        for (int i = 0; i < 10; i += 2) {
            s1 += w[i] + s2;
            s2 += w[i + 1] + s1;
        }
        w[10] = s1;
        w[11] = s2;
        /* The second copy first, as SQLite writes them: a reader that finds them apart
         * retries. */
        for (int i = 0; i < 12; i++)
            h[12 + i] = w[i];
        fp->pMethods->xShmBarrier(fp);
        for (int i = 0; i < 12; i++)
            h[i] = w[i];
        fp->pMethods->xShmBarrier(fp);
    }
    fp->pMethods->xShmLock(fp, 0, 1, SQLITE_SHM_UNLOCK | SQLITE_SHM_EXCLUSIVE);
    return rc;
}

int ggi_replica_file_sync(ggi_replica_file *f)
{
    if (!f)
        return ggi_error(GG_EINVAL, "ggi_replica_file_sync: bad argument");
    if (!f->dirty)
        return GG_OK;
    if (wal_index_changed(f) != GG_OK) {
        f->ready = 0;
        return GG_ESTORE;
    }
    /* Its cache holds pages from before the writes: read them again. */
    sqlite3_db_release_memory(f->check);
    int64_t at = -1;
    if (read_seq_db(f->check, &at) != GG_OK || at != f->seq) {
        f->ready = 0;
        return ggi_error(GG_ESTORE, "the replica reads as sequence %lld after the pages of "
                         "%lld (%s): it is not the primary's database", (long long)at,
                         (long long)f->seq, at < 0 ? sqlite3_errmsg(f->check) : "");
    }
    if (unlink(f->marker) != 0 && errno != ENOENT)
        return ggi_error(GG_EIO, "the replica's marker '%s': %s", f->marker, strerror(errno));
    f->dirty = 0;
    return GG_OK;
}
