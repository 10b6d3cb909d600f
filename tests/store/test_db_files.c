/*
 * test_db_files.c - the files of the library's databases: a new store, generator journal and
 * retrieval index is created 0600, and so are the store's -wal and -shm, whatever the umask
 * (0 would give 0666, 0277 0400); an existing file keeps its mode; a database that cannot be
 * opened says why (a missing directory, a directory this user may not write to, a file it
 * may not write) instead of SQLite's bare "unable to open database file".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../lib/core/dbfile.h"
#include "../../lib/generation/journal.h"
#include "../../lib/store/store.h"
#include "gryphgen.h"
#include "teststore.h"
#include "testutil.h"

static char dir[64];

static int mode_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int)(st.st_mode & 0777) : -1;
}

/* A store opened under umask mask: the database, its -wal and its -shm are 0600. */
static void check_store_modes(mode_t mask)
{
    char path[128], wal[140], shm[140];
    snprintf(path, sizeof path, "%s/store-%03o.db", dir, (unsigned)mask);
    snprintf(wal, sizeof wal, "%s-wal", path);
    snprintf(shm, sizeof shm, "%s-shm", path);
    mode_t old = umask(mask);
    ggi_store *s = NULL;
    CHECK_RC(ggi_store_open(&s, path), 0);
    int64_t seq = 0;
    int existing = 0;
    CHECK_RC(test_task_insert(s, "t1", "{}", "h1", 0, 1.0, &seq, &existing), 0);
    umask(old);
    /* While the connection is open the WAL and its index are there. */
    CHECK(mode_of(path) == 0600);
    CHECK(mode_of(wal) == 0600);
    CHECK(mode_of(shm) == 0600);
    if (mode_of(path) != 0600 || mode_of(wal) != 0600 || mode_of(shm) != 0600)
        fprintf(stderr, "umask %03o: modes %03o %03o %03o\n", (unsigned)mask, mode_of(path),
                mode_of(wal), mode_of(shm));
    ggi_store_close(&s);
}

static void test_modes(void)
{
    check_store_modes(0);
    check_store_modes(022);
    check_store_modes(0277);

    /* The generator journal and the retrieval index, each a database of its own. */
    mode_t old = umask(0);
    char path[128];
    snprintf(path, sizeof path, "%s/journal.db", dir);
    ggi_journal *j = NULL;
    CHECK_RC(ggi_journal_open(path, &j), 0);
    CHECK(mode_of(path) == 0600);
    ggi_journal_close(&j);

    snprintf(path, sizeof path, "%s/index.db", dir);
    gg_retriever_options ro = GG_RETRIEVER_OPTIONS_INIT;
    ro.backend = "fts5";
    ro.db_path = path;
    gg_retriever_t *r = NULL;
    CHECK_RC(gg_retriever_new(&r, &ro), 0);
    CHECK(mode_of(path) == 0600);
    gg_retriever_destroy(&r);

    /* An existing database keeps the mode its owner gave it. */
    snprintf(path, sizeof path, "%s/shared.db", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f)
        fclose(f);
    CHECK(chmod(path, 0640) == 0);
    ggi_store *s = NULL;
    CHECK_RC(ggi_store_open(&s, path), 0);
    ggi_store_close(&s);
    CHECK(mode_of(path) == 0640);
    umask(old);
}

static void test_explained(void)
{
    char path[160];
    ggi_store *s = NULL;

    snprintf(path, sizeof path, "%s/no/such/dir/x.db", dir);
    CHECK_RC(ggi_store_open(&s, path), GG_ESTORE);
    CHECK_CONTAINS(gg_error_last(), path);
    CHECK_CONTAINS(gg_error_last(), "does not exist");

    /* Another user (root can drop to nobody here) may neither create a database in this
     * directory nor write the one in it. */
    if (geteuid() != 0) {
        printf("not root: the permission checks are skipped\n");
        return;
    }
    char sub[128], db[160];
    snprintf(sub, sizeof sub, "%s/owned", dir);
    CHECK(mkdir(sub, 0755) == 0);
    snprintf(db, sizeof db, "%s/owned.db", sub);
    CHECK_RC(ggi_store_open(&s, db), 0);
    ggi_store_close(&s);
    char shared[160];
    snprintf(shared, sizeof shared, "%s/readable.db", sub);
    CHECK_RC(ggi_store_open(&s, shared), 0);
    ggi_store_close(&s);
    CHECK(chmod(shared, 0644) == 0);
    CHECK(chmod(dir, 0755) == 0); /* mkdtemp's 0700 would hide everything */
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        char msg[2048] = "";
        if (setgid(65534) != 0 || setuid(65534) != 0) {
            snprintf(msg, sizeof msg, "setuid failed: %s", strerror(errno));
        } else {
            char created[200];
            snprintf(created, sizeof created, "%s/new.db", sub);
            ggi_store *c = NULL;
            int rc1 = ggi_store_open(&c, created);
            char m1[900];
            snprintf(m1, sizeof m1, "%s", gg_error_last());
            int rc2 = ggi_store_open(&c, db);
            char m2[900];
            snprintf(m2, sizeof m2, "%s", gg_error_last());
            int rc3 = ggi_store_open(&c, shared);
            snprintf(msg, sizeof msg, "%d|%s|%d|%s|%d|%s", rc1, m1, rc2, m2, rc3,
                     gg_error_last());
        }
        if (write(fds[1], msg, strlen(msg)) < 0)
            _exit(2);
        _exit(0);
    }
    close(fds[1]);
    char buf[2048] = "";
    size_t got = 0;
    ssize_t n;
    while (got < sizeof buf - 1 && (n = read(fds[0], buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)n;
    buf[got] = 0;
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    printf("as another user: %s\n", buf);
    char want[64];
    snprintf(want, sizeof want, "%d|", GG_ESTORE);
    CHECK(strncmp(buf, want, strlen(want)) == 0);
    CHECK_CONTAINS(buf, "new.db");
    CHECK_CONTAINS(buf, "cannot be created in the directory");
    CHECK_CONTAINS(buf, "permission denied");
    /* An existing database it may not write (or read): SQLite's "unable to open database
     * file" or a read-only open without a word, explained. */
    snprintf(want, sizeof want, "|%d|", GG_ESTORE);
    CHECK_CONTAINS(buf, want);
    CHECK_CONTAINS(buf, "owned.db' cannot be written: permission denied (mode 0600, owner uid 0");
    CHECK_CONTAINS(buf, "readable.db");
    CHECK_CONTAINS(strstr(buf, "readable.db"), "permission denied");
    CHECK(chmod(dir, 0700) == 0);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/gg-dbfiles-XXXXXX");
    if (!test_make_dir(dir))
        return 1;
    test_modes();
    test_explained();
    test_remove_dir(dir);
    return test_exit();
}
