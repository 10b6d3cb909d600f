"""test_db_files.py - gryphgen eval with a database it cannot use says what is wrong, with
the path, and exits 1 at once: a --db in a directory that does not exist, and a database on a
filesystem mounted read-only (where SQLite alone says only "unable to open database file" or
opens it read-only without a word); a database eval creates is 0600 even under umask 0.
The read-only filesystem needs a tmpfs mount (root): that part is skipped where it is not
allowed."""

import os
import shutil
import subprocess

from clitest import EXAMPLES, GRYPHGEN, check, env, finish, gg, mount_tmpfs, tmpdir, umount

work = tmpdir()

# --- a directory that does not exist -------------------------------------------------------
db = os.path.join(work, "no", "such", "dir", "run.db")
p = gg(["eval", "--quiet", "--db", db, EXAMPLES], timeout=60)
check(p.returncode == 1, "missing directory: exit 1", "exit %d: %s" % (p.returncode, p.stderr))
check(db in p.stderr and "does not exist" in p.stderr,
      "missing directory: the message names the path and says the directory is missing",
      p.stderr)

# --- a new database is private, whatever the umask -----------------------------------------
db = os.path.join(work, "private.db")
p = subprocess.run([GRYPHGEN, "eval", "--quiet", "--db", db, EXAMPLES], capture_output=True,
                   text=True, env=env(), timeout=120, preexec_fn=lambda: os.umask(0))
check(p.returncode == 0, "umask 0: eval runs", p.stderr[-2000:])
mode = os.stat(db).st_mode & 0o777 if os.path.exists(db) else None
check(mode == 0o600, "umask 0: the database is created 0600", oct(mode or 0))

# --- a read-only filesystem ----------------------------------------------------------------
mnt = os.path.join(work, "ro")
os.mkdir(mnt)
if not mount_tmpfs(mnt, "size=8m"):
    print("skipped: the read-only filesystem part (cannot mount a tmpfs here)")
else:
    try:
        db = os.path.join(mnt, "run.db")
        p = gg(["eval", "--quiet", "--db", db, EXAMPLES], timeout=120)
        check(p.returncode == 0, "a database made on the tmpfs", p.stderr[-2000:])
        ro = subprocess.run(["mount", "-o", "remount,ro", mnt], capture_output=True, text=True)
        check(ro.returncode == 0, "the tmpfs is remounted read-only", ro.stderr)
        if ro.returncode == 0:
            p = gg(["eval", "--quiet", "--db", db, EXAMPLES], timeout=120)
            check(p.returncode == 1, "read-only filesystem: exit 1",
                  "exit %d: %s" % (p.returncode, p.stderr))
            check(db in p.stderr and "read-only filesystem" in p.stderr,
                  "read-only filesystem: the message names the path and says why", p.stderr)
            check(len(p.stderr.splitlines()) <= 5, "read-only filesystem: a short message",
                  p.stderr)
            fresh = os.path.join(mnt, "new.db")
            p = gg(["eval", "--quiet", "--db", fresh, EXAMPLES], timeout=120)
            check(p.returncode == 1 and fresh in p.stderr and
                  "read-only filesystem" in p.stderr,
                  "read-only filesystem, new database: exit 1, says why", p.stderr)
    finally:
        umount(mnt)

shutil.rmtree(work, ignore_errors=True)
finish()
