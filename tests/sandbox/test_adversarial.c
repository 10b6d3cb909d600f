/*
 * test_adversarial.c - hostile jobs in the namespace sandbox, through the public executor,
 * once forked from a zygote and once started directly: a connection to a listener of the
 * host, reads and writes outside the workspace, a fork bomb, a memory bomb, a disk fill, an
 * output flood, a busy loop, orphans that escape with setsid, and kill(-1, SIGKILL). Each
 * must be contained, reported as what it was, and leave the host as it was: the test checks
 * the host side (its listener, its files, its processes), not only the job's exit status.
 * Run as root, it then runs itself again as uid 65534 (setpriv), where the sandbox is built
 * inside a user namespace without any privilege, cgroups are not writable and the rlimits
 * stand in; there the secret lies in the unprivileged user's own HOME, which jobs must not
 * see although they run with that user's ids.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gryphgen.h>

#include "core/ggi.h"
#include "execution/cgroup.h"
#include "execution/process_executor.h"
#include "execution/sandbox.h"
#include "testexec.h"
#include "testutil.h"

#define PY "/usr/bin/python3"

static gg_executor_t *ex;
static int use_zygote;
static char last_ws[64]; /* the name of the last job's workspace (its processes' cwd) */
static int unprivileged;  /* this run is the second one, as uid 65534 */

/* Every job first tells its workspace's name on stderr, so the host can find processes it
 * left behind (their cwd) without confusing them with other tests' jobs. */
#define PROLOGUE "import os as _o, sys as _s\n" \
                 "_s.stderr.write('WS=%s\\n' % _o.path.basename(_o.getcwd())); _s.stderr.flush()\n"

/* Runs python code with the given limits JSON (may be NULL). A job whose limits name no
 * timeout gets a generous one: there it only guards against a hang. A job that only its
 * timeout ends gets ENDLESS_S: its limit counts the sandbox's and Python's start, and the
 * job must get as far as its PROLOGUE (which the checks of what it left stand on) on a busy
 * machine under ASan too (half a second did not). */
#define ENDLESS_S "3"
static cJSON *job(const char *code, const char *limits)
{
    cJSON *req = cJSON_CreateObject();
    cJSON *argv = cJSON_AddArrayToObject(req, "argv");
    cJSON_AddItemToArray(argv, cJSON_CreateString(PY));
    cJSON_AddItemToArray(argv, cJSON_CreateString("-c"));
    char *full = ggi_asprintf("%s%s", PROLOGUE, code);
    cJSON_AddItemToArray(argv, cJSON_CreateString(full));
    free(full);
    cJSON_AddBoolToObject(req, "zygote", use_zygote);
    cJSON *lim = limits ? cJSON_Parse(limits) : cJSON_CreateObject();
    if (!cJSON_GetObjectItem(lim, "timeout_s"))
        cJSON_AddNumberToObject(lim, "timeout_s", 120);
    cJSON_AddItemToObject(req, "limits", lim);
    cJSON *r = test_exec_run(ex, req);
    last_ws[0] = '\0';
    const cJSON *err = r ? cJSON_GetObjectItem(r, "stderr") : NULL;
    if (cJSON_IsString(err) && !strncmp(err->valuestring, "WS=", 3))
        snprintf(last_ws, sizeof last_ws, "%.*s", (int)strcspn(err->valuestring + 3, "\n"),
                 err->valuestring + 3);
    if (r) {
        CHECK(strncmp(last_ws, "gg-job-", 7) == 0);
        CHECK(cJSON_IsTrue(cJSON_GetObjectItem(r, "zygote")) == use_zygote);
        const cJSON *iso = cJSON_GetObjectItem(r, "isolation");
        CHECK(cJSON_IsString(iso) && !strcmp(iso->valuestring, "namespaces"));
    }
    return r;
}

/* Processes on the host whose cwd is the last job's workspace. */
static int job_processes(void)
{
    int count = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (strtol(e->d_name, NULL, 10) <= 0)
            continue;
        char path[300], link[4096];
        snprintf(path, sizeof path, "/proc/%s/cwd", e->d_name);
        ssize_t n = readlink(path, link, sizeof link - 1);
        if (n <= 0)
            continue;
        link[n] = '\0';
        if (strstr(link, last_ws))
            count++;
    }
    if (d)
        closedir(d);
    return count;
}

static int job_processes_gone(void *arg)
{
    (void)arg;
    return job_processes() == 0;
}

/* Waits (up to the hang guard) for the last job's processes to be gone. What the jobs leave
 * behind would live longer than that. */
static int no_job_processes_left(void)
{
    CHECK(last_ws[0] != '\0');
    return test_wait_for(job_processes_gone, NULL);
}

static void test_network(void)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    CHECK(l >= 0 && bind(l, (struct sockaddr *)&a, sizeof a) == 0 && listen(l, 8) == 0 &&
          getsockname(l, (struct sockaddr *)&a, &al) == 0);
    char code[1024];
    snprintf(code, sizeof code,
             "import socket\n"
             "try:\n"
             "    socket.create_connection(('127.0.0.1', %d), timeout=2)\n"
             "    print('CONNECTED')\n"
             "except OSError as e:\n"
             "    print('refused', e.errno)\n"
             "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
             "c = socket.create_connection(s.getsockname(), timeout=2)\n"
             "print('own loopback works')\n"
             "try:\n"
             "    socket.create_connection(('10.0.2.2', 80), timeout=1); print('OUT')\n"
             "except OSError as e:\n"
             "    print('no route')\n",
             ntohs(a.sin_port));
    cJSON *r = job(code, NULL);
    if (r) {
        CHECK_STR(test_str(r, "stdout"), "refused 111\nown loopback works\nno route\n");
        cJSON_Delete(r);
    }
    /* The host's listener saw nothing. */
    int c = accept(l, NULL, NULL);
    CHECK(c < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
    if (c >= 0)
        close(c);
    close(l);
}

static void test_files_outside(void)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%.400s/gg-adv-XXXXXX",
             unprivileged && getenv("HOME") ? getenv("HOME") : "/var/tmp");
    CHECK(mkdtemp(dir) != NULL);
    CHECK(chmod(dir, 0755) == 0);
    char secret[600];
    snprintf(secret, sizeof secret, "%s/secret", dir);
    int fd = open(secret, O_WRONLY | O_CREAT | O_EXCL, 0600);
    CHECK(fd >= 0 && write(fd, "top secret", 10) == 10);
    close(fd);
    char code[4096];
    snprintf(code, sizeof code,
             "import os\n"
             "def t(what, f):\n"
             "    try:\n"
             "        f(); print(what, 'DONE')\n"
             "    except OSError as e:\n"
             "        print(what, 'denied')\n"
             "t('read secret', lambda: open('%s').read())\n"
             "t('write secret', lambda: open('%s', 'a').write('x'))\n"
             "t('new file', lambda: open('%s/planted', 'w').write('x'))\n"
             "t('etc', lambda: open('/etc/gg-planted', 'w').write('x'))\n"
             "t('chmod', lambda: os.chmod('%s', 0o777))\n"
             "t('unlink', lambda: os.unlink('%s'))\n"
             "t('root home', lambda: os.listdir('/root'))\n"
             "print(len(os.listdir('/tmp')) == 1, os.getuid())\n",
             secret, secret, dir, secret, secret);
    cJSON *r = job(code, NULL);
    if (r) {
        CHECK_STR(test_str(r, "stdout"),
                  "read secret denied\nwrite secret denied\nnew file denied\n"
                  "etc denied\nchmod denied\nunlink denied\nroot home denied\n"
                  "True 65534\n");
        cJSON_Delete(r);
    }
    /* Host side: the secret is intact, nothing was added. */
    char buf[32] = "";
    fd = open(secret, O_RDONLY);
    CHECK(fd >= 0 && read(fd, buf, sizeof buf) == 10 && !memcmp(buf, "top secret", 10));
    close(fd);
    struct stat st;
    CHECK(stat(secret, &st) == 0 && (st.st_mode & 0777) == 0600);
    char planted[600];
    snprintf(planted, sizeof planted, "%s/planted", dir);
    CHECK(access(planted, F_OK) < 0);
    CHECK(access("/etc/gg-planted", F_OK) < 0);
    unlink(secret);
    rmdir(dir);
}

static void test_fork_bomb(void)
{
    /* Only the timeout can end it (its children spin forever). */
    cJSON *r = job("import os\n"
                   "n = 0\n"
                   "while True:\n"
                   "    try:\n"
                   "        if os.fork() == 0:\n"
                   "            while True: pass\n"
                   "        n += 1\n"
                   "    except OSError:\n"
                   "        pass\n",
                   "{\"timeout_s\": " ENDLESS_S ", \"nproc\": 40}");
    if (r) {
        CHECK(test_true(r, "timed_out"));
        CHECK_STR(test_str(r, "signal_name"), "SIGKILL");
        cJSON_Delete(r);
    }
    CHECK(no_job_processes_left());
}

static void test_memory_bomb(void)
{
    cJSON *r = job("chunks = []\n"
                   "while True:\n"
                   "    chunks.append(bytearray(8 << 20))\n",
                   "{\"timeout_s\": 120, \"memory_mb\": 96}");
    if (r) {
        CHECK(test_num(r, "exit_code") != 0);
        if (ggi_cgroup_probe()->memory) {
            CHECK(test_true(r, "oom_killed"));
            CHECK_CONTAINS(test_str(r, "reason"), "out of memory");
            CHECK_STR(test_str(r, "signal_name"), "SIGKILL");
        } else {
            CHECK_CONTAINS(test_str(r, "stderr"), "MemoryError");
        }
        CHECK(!test_true(r, "timed_out"));
        cJSON_Delete(r);
    }
    CHECK(no_job_processes_left());
}

static void test_disk_fill(void)
{
    cJSON *r = job("import errno\n"
                   "total = 0\n"
                   "try:\n"
                   "    for i in range(1000):\n"
                   "        with open('f%d' % i, 'wb') as f:\n"
                   "            for _ in range(8):\n"
                   "                f.write(b'x' * (1 << 20)); total += 1\n"
                   "except OSError as e:\n"
                   "    print(errno.errorcode[e.errno], total <= 80)\n",
                   "{\"timeout_s\": 120, \"fsize_mb\": 16}");
    if (r) {
        CHECK_STR(test_str(r, "stdout"), "ENOSPC True\n");
        cJSON_Delete(r);
    }
    /* One file beyond fsize_mb: the write is refused (Python ignores SIGXFSZ). */
    r = job("import errno\n"
            "try:\n"
            "    open('big', 'wb').write(b'x' * (20 << 20))\n"
            "except OSError as e:\n"
            "    print(errno.errorcode[e.errno])\n",
            "{\"fsize_mb\": 16}");
    if (r) {
        CHECK_STR(test_str(r, "stdout"), "EFBIG\n");
        cJSON_Delete(r);
    }
}

static void test_output_flood(void)
{
    /* Endless: the timeout ends it, the writer never blocked on a full pipe for good. */
    cJSON *r = job("import sys\n"
                   "while True:\n"
                   "    sys.stdout.write('y' * 65536); sys.stderr.write('z' * 65536)\n",
                   "{\"timeout_s\": " ENDLESS_S ", \"max_output\": 5000}");
    if (r) {
        CHECK(test_true(r, "timed_out"));
        CHECK(test_true(r, "stdout_truncated") && test_true(r, "stderr_truncated"));
        CHECK(strlen(test_str(r, "stdout")) == 5000 && strlen(test_str(r, "stderr")) == 5000);
        cJSON_Delete(r);
    }
}

static void test_busy_loop(void)
{
    cJSON *r = job("while True: pass\n", "{\"timeout_s\": " ENDLESS_S "}");
    if (r) {
        CHECK(test_true(r, "timed_out"));
        CHECK(test_num(r, "exit_code") == -1);
        CHECK(test_num(r, "duration_ms") >= atof(ENDLESS_S) * 1000 - 50);
        cJSON_Delete(r);
    }
    CHECK(no_job_processes_left());
}

static void test_setsid_orphans(void)
{
    /* Orphans in new sessions, left behind by a job that exits at once and by one that
     * times out; were they not killed, they would outlive the test's waits. */
    char code[1024], pattern[128];
    snprintf(code, sizeof code,
        "import os, subprocess, sys, time\n"
        "for i in range(3):\n"
        "    subprocess.Popen(['sleep', '601.%%d%ld' %% i], start_new_session=True)\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(600)\n"
        "    os._exit(0)\n"
        "print('escaped')\n"
        "if len(sys.argv) > 0 and os.environ.get('HANG'): time.sleep(600)\n", (long)getpid());
    cJSON *r = job(code, NULL);
    if (r) {
        CHECK_STR(test_str(r, "stdout"), "escaped\n");
        CHECK(test_num(r, "exit_code") == 0);
        cJSON_Delete(r);
    }
    CHECK(no_job_processes_left());
    snprintf(pattern, sizeof pattern, "pgrep -f 'slee[p] 601\\.[0-9]%ld$' >/dev/null",
             (long)getpid());
    CHECK(system(pattern) != 0);
    snprintf(code, sizeof code,
             "import subprocess, time\n"
             "subprocess.Popen(['sleep', '602.5%ld'], start_new_session=True)\n"
             "time.sleep(600)\n", (long)getpid());
    r = job(code, "{\"timeout_s\": " ENDLESS_S "}");
    if (r) {
        CHECK(test_true(r, "timed_out"));
        cJSON_Delete(r);
    }
    CHECK(no_job_processes_left());
    snprintf(pattern, sizeof pattern, "pgrep -f 'slee[p] 602\\.5%ld$' >/dev/null",
             (long)getpid());
    CHECK(system(pattern) != 0);
}

static void test_kill_all(void)
{
    int ready[2];
    CHECK(pipe(ready) == 0);
    pid_t sibling = fork();
    if (sibling == 0) {
        /* A host process that must survive, running as the sandbox's uid even. */
        close(ready[0]);
        if (setuid(GGI_SANDBOX_UID) != 0)
            _exit(2);
        if (write(ready[1], "u", 1) != 1)
            _exit(3);
        pause();
        _exit(0);
    }
    CHECK(sibling > 0);
    /* It runs as that uid before the job starts. */
    close(ready[1]);
    char u = 0;
    CHECK(read(ready[0], &u, 1) == 1 && u == 'u');
    close(ready[0]);
    cJSON *r = job("import os, signal\n"
                   "try:\n"
                   "    os.kill(-1, signal.SIGKILL)\n"
                   "    print('sent')\n"
                   "except OSError as e:\n"
                   "    print('refused', e.errno)\n"
                   "try:\n"
                   "    os.kill(1, signal.SIGKILL)\n"
                   "except OSError as e:\n"
                   "    pass\n"
                   "import time; time.sleep(0.1)\n"
                   "print('init alive', os.getppid() != 0 or 1)\n",
                   NULL);
    if (r) {
        /* Its init is another uid (refused) or the kernel drops the signal (the init of a PID
         * namespace ignores SIGKILL from inside): either way the job ran to its end, which it
         * could not have done had its init died. */
        const char *out = test_str(r, "stdout");
        CHECK(strstr(out, "init alive") != NULL);
        CHECK(test_num(r, "exit_code") == 0);
        CHECK(!test_true(r, "timed_out") && test_num(r, "signal") == 0);
        cJSON_Delete(r);
    }
    /* The sibling (same uid!) and this process are unharmed. */
    int st = 0;
    CHECK(waitpid(sibling, &st, WNOHANG) == 0);
    CHECK(kill(sibling, 0) == 0);
    kill(sibling, SIGKILL);
    waitpid(sibling, &st, 0);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

/* Runs this test again as uid 65534 with a HOME of its own; returns its exit status. */
static int run_unprivileged(const char *self)
{
    const char *setpriv = "/usr/bin/setpriv";
    if (access(setpriv, X_OK) != 0) {
        printf("SKIP (unprivileged part): %s is missing (util-linux)\n", setpriv);
        return 77;
    }
    char home[] = "/var/tmp/gg-adv-home-XXXXXX";
    if (!mkdtemp(home) || chown(home, GGI_SANDBOX_UID, GGI_SANDBOX_GID) != 0) {
        CHECK(0);
        return 1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        char h[64], t[64];
        snprintf(h, sizeof h, "HOME=%s", home);
        snprintf(t, sizeof t, "TMPDIR=%s", home);
        char *const env[] = { h, t, "PATH=/usr/bin:/bin", "LANG=C.UTF-8", NULL };
        char *const argv[] = { (char *)setpriv, "--reuid=65534", "--regid=65534",
                               "--clear-groups", (char *)self, "--unprivileged", NULL };
        execve(setpriv, argv, env);
        _exit(127);
    }
    int st = 0;
    while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    CHECK(ggi_workspace_remove(home) == 0);
    return pid > 0 && WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

int main(int argc, char **argv)
{
    unprivileged = argc > 1 && !strcmp(argv[1], "--unprivileged");
    if (unprivileged) {
        CHECK(geteuid() == GGI_SANDBOX_UID);
        if (!ggi_sandbox_probe()->use_userns) {
            printf("SKIP: no user namespaces for an unprivileged user here: %s\n",
                   ggi_sandbox_probe()->userns_why);
            return 77;
        }
    }
    if (access(PY, X_OK) != 0) {
        printf("SKIP: %s not found\n", PY);
        return 77;
    }
    int made = test_exec_new_sandboxed(&ex);
    if (made != 0)
        return made;
    for (use_zygote = 1; use_zygote >= 0; use_zygote--) {
        struct {
            const char *name;
            void (*fn)(void);
        } tests[] = {
            { "network", test_network }, { "files_outside", test_files_outside },
            { "fork_bomb", test_fork_bomb }, { "memory_bomb", test_memory_bomb },
            { "disk_fill", test_disk_fill }, { "output_flood", test_output_flood },
            { "busy_loop", test_busy_loop }, { "setsid_orphans", test_setsid_orphans },
            { "kill_all", test_kill_all },
        };
        for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
            double t0 = ggi_now_ms();
            tests[i].fn();
            fprintf(stderr, "%s%-7s %-16s %6.0f ms\n", unprivileged ? "uid 65534 " : "",
                    use_zygote ? "zygote" : "direct", tests[i].name, ggi_now_ms() - t0);
        }
    }
    gg_executor_destroy(&ex);
    if (geteuid() == 0) {
        char self[4096];
        ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
        self[sl > 0 ? sl : 0] = '\0';
        int st = run_unprivileged(sl > 0 ? self : argv[0]);
        if (st == 77)
            printf("SKIP (unprivileged part only)\n");
        else
            CHECK(st == 0);
    }
    return test_exit();
}
