/*
 * test_host_files.c - what of the host's filesystem a job in the namespace sandbox sees, once
 * forked from a zygote and once started directly. World-readable files the test leaves where
 * a host keeps data (a directory made under /, one under /var/tmp holding an SQLite database,
 * one under /srv) must not be readable, nor the host's /home, /root, /srv, /var or /work be
 * there at all; yet Python (with sqlite3, subprocess and a shell), a C compile-and-run job,
 * and a Python from a virtual environment outside the runtime's directories still work. Keys
 * the host holds in its session and user keyrings are not readable either. And which host
 * paths a program brings along (its prefix, never a home).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gryphgen.h>

#include "core/ggi.h"
#include "execution/process_executor.h"
#include "execution/sandbox.h"
#include "testexec.h"
#include "testutil.h"

#define PY "/usr/bin/python3"

static gg_executor_t *ex;
static int use_zygote;

/* Runs argv (a NULL-terminated list) with files (JSON array text or NULL); the result. */
static cJSON *run(const char *const *argv, const char *files)
{
    cJSON *req = cJSON_CreateObject();
    cJSON *a = cJSON_AddArrayToObject(req, "argv");
    for (int i = 0; argv[i]; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(argv[i]));
    cJSON_AddBoolToObject(req, "zygote", use_zygote);
    cJSON_AddStringToObject(req, "isolation", "namespaces");
    if (files)
        cJSON_AddItemToObject(req, "files", cJSON_Parse(files));
    cJSON *r = test_exec_run(ex, req);
    if (r) {
        const cJSON *iso = cJSON_GetObjectItem(r, "isolation");
        CHECK(cJSON_IsString(iso) && !strcmp(iso->valuestring, "namespaces"));
    }
    return r;
}

static cJSON *py(const char *code)
{
    const char *argv[] = { PY, "-c", code, NULL };
    return run(argv, NULL);
}

/* Makes dir (a mkdtemp template) world-searchable with a world-readable file name in it. */
static int plant(char *dir, const char *name, char *file, size_t n)
{
    if (!mkdtemp(dir) || chmod(dir, 0755) != 0)
        return -1;
    snprintf(file, n, "%s/%s", dir, name);
    int fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0644);
    int ok = fd >= 0 && write(fd, "host data", 9) == 9;
    if (fd >= 0)
        close(fd);
    return ok && chmod(file, 0644) == 0 ? 0 : -1;
}

static void test_host_data_unreadable(void)
{
    char d1[] = "/gg-hostfiles-XXXXXX", d2[] = "/var/tmp/gg-hostfiles-XXXXXX",
         d3[] = "/srv/gg-hostfiles-XXXXXX";
    char f1[256] = "", f2[256] = "", f3[256] = "";
    int have1 = plant(d1, "notes.txt", f1, sizeof f1) == 0;
    int have2 = plant(d2, "gryphgen.db", f2, sizeof f2) == 0;
    int have3 = plant(d3, "data.txt", f3, sizeof f3) == 0;
    CHECK(have2); /* /var/tmp is writable on every host this runs on */
    char code[4096];
    snprintf(code, sizeof code,
             "import os\n"
             "def t(path):\n"
             "    if not path:\n"
             "        print('skip'); return\n"
             "    try:\n"
             "        open(path).read(); print('READ', path)\n"
             "    except OSError:\n"
             "        print('denied')\n"
             "t('%s'); t('%s'); t('%s')\n"
             "seen = sorted(set(os.listdir('/')) & {'home', 'root', 'srv', 'var', 'work', "
             "'mnt', 'media', 'opt', 'boot', 'run', 'sys'})\n"
             "print('host dirs', seen)\n",
             have1 ? f1 : "", have2 ? f2 : "", have3 ? f3 : "");
    cJSON *r = py(code);
    if (r) {
        char want[256];
        snprintf(want, sizeof want, "%s\n%s\n%s\nhost dirs []\n", have1 ? "denied" : "skip",
                 have2 ? "denied" : "skip", have3 ? "denied" : "skip");
        CHECK_STR(test_str(r, "stdout"), want);
        cJSON_Delete(r);
    }
    /* The host itself still reads them (the test planted what it thinks it did). */
    CHECK(!have2 || access(f2, R_OK) == 0);
    if (have1) {
        unlink(f1);
        rmdir(d1);
    }
    if (have2) {
        unlink(f2);
        rmdir(d2);
    }
    if (have3) {
        unlink(f3);
        rmdir(d3);
    }
}

static void test_python_still_works(void)
{
    cJSON *r = py("import os, sqlite3, subprocess, json, decimal, locale, pwd, socket\n"
                  "c = sqlite3.connect(':memory:')\n"
                  "print(c.execute('select 6*7').fetchone()[0])\n"
                  "print(subprocess.run(['/bin/sh', '-c', 'echo sh ok'], capture_output=True,"
                  " text=True).stdout.strip())\n"
                  "print(pwd.getpwuid(os.getuid()).pw_name)\n"
                  "print(socket.gethostbyname('localhost'))\n"
                  "print('\\u00e9'.encode().decode('utf-8'), json.dumps(decimal.Decimal(1) is None))\n");
    if (r) {
        CHECK_STR(test_str(r, "stdout"), "42\nsh ok\nnobody\n127.0.0.1\n\u00e9 false\n");
        CHECK_STR(test_str(r, "stderr"), "");
        cJSON_Delete(r);
    }
}

static void test_c_still_works(void)
{
    if (access("/usr/bin/cc", X_OK) != 0) {
        printf("SKIP (C part): /usr/bin/cc not found\n");
        return;
    }
    const char *argv[] = { "/bin/sh", "-c", "cc -O1 -Wall -o prog main.c -lm && ./prog", NULL };
    cJSON *r = run(argv, "[{\"path\": \"main.c\", \"content\": \"#include <math.h>\\n"
                         "#include <stdio.h>\\nint main(void) { printf(\\\"%.1f\\\\n\\\", "
                         "sqrt(2.25)); return 0; }\\n\"}]");
    if (r) {
        CHECK_STR(test_str(r, "stdout"), "1.5\n");
        CHECK_STR(test_str(r, "stderr"), "");
        cJSON_Delete(r);
    }
}

/* A Python whose prefix lies outside the runtime's directories brings it along, and only
 * it: a file next to the virtual environment stays out of reach. */
static void test_venv_prefix(void)
{
    char d[] = "/var/tmp/gg-venv-XXXXXX";
    if (!mkdtemp(d) || chmod(d, 0755) != 0) {
        CHECK(0);
        return;
    }
    char venv[256], py_path[300], beside[300];
    snprintf(venv, sizeof venv, "%s/env", d);
    snprintf(py_path, sizeof py_path, "%s/bin/python", venv);
    snprintf(beside, sizeof beside, "%s/beside.txt", d);
    int fd = open(beside, O_WRONLY | O_CREAT, 0644);
    CHECK(fd >= 0 && write(fd, "x", 1) == 1);
    if (fd >= 0)
        close(fd);
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        execl(PY, PY, "-m", "venv", "--without-pip", venv, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        char code[600];
        snprintf(code, sizeof code,
                 "import sys\nprint(sys.prefix)\n"
                 "try:\n    open('%s').read(); print('READ')\n"
                 "except OSError:\n    print('denied')\n",
                 beside);
        const char *argv[] = { py_path, "-c", code, NULL };
        cJSON *r = run(argv, NULL);
        if (r) {
            char want[400];
            snprintf(want, sizeof want, "%s\ndenied\n", venv);
            CHECK_STR(test_str(r, "stdout"), want);
            cJSON_Delete(r);
        }
    } else {
        printf("SKIP (venv part): python3 -m venv failed\n");
    }
    CHECK(ggi_workspace_remove(d) == 0);
}

/* What a program brings into the job's root: nothing for the runtime's own, the prefix
 * above bin/ elsewhere, but never a home: from ~/bin only that bin/ comes. */
static void test_program_binds(void)
{
    ggi_sandbox_binds b;
    memset(&b, 0, sizeof b);
    ggi_sandbox_program_binds(&b, PY);
    ggi_sandbox_program_binds(&b, "/bin/sh");
    CHECK(b.n == 0);
    char home[] = "/var/tmp/gg-home-XXXXXX";
    CHECK(mkdtemp(home) != NULL);
    char dir[128], tool[160], opt[128], opt_tool[160];
    snprintf(dir, sizeof dir, "%s/bin", home);
    snprintf(tool, sizeof tool, "%s/tool", dir);
    snprintf(opt, sizeof opt, "%s/opt/py", home);
    snprintf(opt_tool, sizeof opt_tool, "%s/opt/py/bin/python9", home);
    CHECK(mkdir(dir, 0755) == 0);
    int fd = open(tool, O_WRONLY | O_CREAT, 0755);
    CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);
    char *old_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    setenv("HOME", home, 1);
    ggi_sandbox_program_binds(&b, tool);
    CHECK(b.n == 1 && !strcmp(b.path[0], dir));
    /* A prefix inside the home is fine. */
    char mk[160];
    snprintf(mk, sizeof mk, "%s/opt", home);
    CHECK(mkdir(mk, 0755) == 0);
    CHECK(mkdir(opt, 0755) == 0);
    snprintf(mk, sizeof mk, "%s/opt/py/bin", home);
    CHECK(mkdir(mk, 0755) == 0);
    fd = open(opt_tool, O_WRONLY | O_CREAT, 0755);
    CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);
    memset(&b, 0, sizeof b);
    ggi_sandbox_program_binds(&b, opt_tool);
    CHECK(b.n == 1 && !strcmp(b.path[0], opt));
    if (old_home)
        setenv("HOME", old_home, 1);
    else
        unsetenv("HOME");
    free(old_home);
    CHECK(ggi_workspace_remove(home) == 0);
}

/* The host's keys: the test's session keyring (a new one, which the jobs' processes inherit
 * as the host's) and root's user keyring each hold a key; a job lists every keyring it can
 * reach (session, user, user session) and reads every key in them: neither secret shows. */
static char key_secret[64];

static int plant_keys(void)
{
    snprintf(key_secret, sizeof key_secret, "gg-host-key-%ld", (long)getpid());
    if (syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, NULL) < 0)
        return -1;
    for (long ring = -3; ring >= -4; ring--) { /* session, user */
        if (syscall(SYS_add_key, "user", ring == -3 ? "gg-session-secret" : "gg-user-secret",
                    key_secret, strlen(key_secret), ring) < 0)
            return -1;
    }
    return 0;
}

static void test_host_keys_unreadable(void)
{
    cJSON *r = py("import ctypes\n"
                  "libc = ctypes.CDLL(None, use_errno=True)\n"
                  "libc.syscall.restype = ctypes.c_long\n"
                  "seen = []\n"
                  "for ring in (-3, -4, -5):\n"
                  "    buf = ctypes.create_string_buffer(4096)\n"
                  "    n = libc.syscall(250, 11, ring, buf, 4096)  # KEYCTL_READ: its keys\n"
                  "    ids = ctypes.cast(buf, ctypes.POINTER(ctypes.c_int32))[:max(n, 0) // 4]\n"
                  "    for k in ids:\n"
                  "        v = ctypes.create_string_buffer(256)\n"
                  "        m = libc.syscall(250, 11, k, v, 256)\n"
                  "        seen.append(v.raw[:max(m, 0)])\n"
                  "print(len(seen), b'|'.join(seen))");
    if (!r)
        return;
    CHECK(test_num(r, "exit_code") == 0);
    CHECK(strstr(test_str(r, "stdout"), key_secret) == NULL);
    CHECK(strstr(test_str(r, "stderr"), key_secret) == NULL);
    cJSON_Delete(r);
}

int main(void)
{
    if (access(PY, X_OK) != 0 || geteuid() != 0) {
        printf("SKIP: needs %s and root (to plant files under / and /srv)\n", PY);
        return 77;
    }
    /* (Before any job: zygotes and jobs inherit the test's keyrings as a host's.) */
    int keys = plant_keys() == 0;
    if (!keys)
        printf("# no kernel keys here (%s): the key checks are skipped\n", strerror(errno));
    int made = test_exec_new_sandboxed(&ex);
    if (made != 0)
        return made;
    for (use_zygote = 1; use_zygote >= 0; use_zygote--) {
        test_host_data_unreadable();
        if (keys)
            test_host_keys_unreadable();
        test_python_still_works();
        test_c_still_works();
        test_venv_prefix();
    }
    gg_executor_destroy(&ex);
    test_program_binds();
    return test_exit();
}
