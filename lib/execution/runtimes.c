/*
 * runtimes.c - finds the Python interpreter, the C compiler and the other languages'
 * toolchains once per process or worker: an explicit choice, then the GRYPHGEN_* (and CC)
 * environment variables, then PATH (Python, cc) or Debian's /usr/bin (the others). Python
 * is asked for sys.executable so a version manager's shim (slow to start, and dependent on
 * the caller's directory) is replaced by the real interpreter it points at; a Python binary
 * is not asked (its sys.executable is the absolute path it is run by).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtimes.h"
#include "spawn.h"

extern char **environ;

#define PROBE_TIMEOUT_S 5.0

/* Makes a relative path absolute against the current directory (symlinks are kept). */
static char *absolute(const char *path)
{
    if (path[0] == '/')
        return strdup(path);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd))
        return strdup(path);
    return ggi_asprintf("%s/%s", cwd, path[0] == '.' && path[1] == '/' ? path + 2 : path);
}

static int executable_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/*
 * Looks value up (a name on PATH or a path). On success *found is malloc'd and absolute;
 * when not found *found is NULL and *why (malloc'd) says so. Only GG_ENOMEM is returned.
 */
static int locate(const char *value, const char *what, char **found, char **why)
{
    *found = NULL;
    *why = NULL;
    char *p = NULL;
    int rc = ggi_spawn_find_program(value, getenv("PATH"), &p);
    if (rc == GG_ENOMEM)
        return rc;
    if (rc == GG_OK && !executable_file(p)) {
        free(p);
        p = NULL;
    }
    if (!p) {
        *why = strchr(value, '/')
                   ? ggi_asprintf("%s: '%s' is not an executable file", what, value)
                   : ggi_asprintf("%s: '%s' not found on PATH", what, value);
        return *why ? GG_OK : GG_ENOMEM;
    }
    *found = absolute(p);
    free(p);
    return *found ? GG_OK : GG_ENOMEM;
}

/* 1 when path is an ELF executable whose name starts with "python" (not a script). */
static int is_python_binary(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (strncmp(base, "python", 6) != 0)
        return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    unsigned char magic[4] = { 0 };
    ssize_t n = read(fd, magic, sizeof magic);
    close(fd);
    return n == 4 && magic[0] == 0x7f && magic[1] == 'E' && magic[2] == 'L' && magic[3] == 'F';
}

/* Asks the interpreter for sys.executable; NULL when that fails. */
static char *python_executable(const char *python)
{
    const char *argv[] = { python, "-c", "import sys; print(sys.executable)", NULL };
    ggi_spawn_opts o;
    memset(&o, 0, sizeof o);
    o.argv = argv;
    o.envp = (const char *const *)environ; /* a shim needs the host's environment */
    o.timeout_s = PROBE_TIMEOUT_S;
    o.max_stdout = PATH_MAX;
    o.max_stderr = 4096;
    ggi_spawn_result r;
    memset(&r, 0, sizeof r);
    if (ggi_spawn_run(&o, &r) != GG_OK)
        return NULL;
    char *exe = NULL;
    if (r.exit_code == 0 && !r.term_signal && !r.timed_out && !r.out_truncated && r.out.len) {
        size_t n = r.out.len;
        while (n && (r.out.data[n - 1] == '\n' || r.out.data[n - 1] == '\r'))
            n--;
        r.out.data[n] = '\0';
        if (n && r.out.data[0] == '/' && !memchr(r.out.data, '\n', n) &&
            access(r.out.data, X_OK) == 0)
            exe = strdup(r.out.data);
    }
    ggi_spawn_result_free(&r);
    return exe;
}

static int resolve_python(ggi_runtimes *rt, const char *explicit_python)
{
    const char *value, *source;
    const char *env = getenv("GRYPHGEN_PYTHON");
    if (explicit_python && *explicit_python)
        value = explicit_python, source = "option";
    else if (env && *env)
        value = env, source = "$GRYPHGEN_PYTHON";
    else
        value = "python3", source = "PATH (python3)";

    char *found = NULL, *why = NULL;
    if (locate(value, source, &found, &why))
        return GG_ENOMEM;
    if (!found) {
        rt->python_source = why;
        return GG_OK;
    }
    /* A Python binary run by its absolute path reports that path as sys.executable: only a
     * script (a version manager's shim) needs asking, which costs an interpreter start. */
    if (is_python_binary(found)) {
        rt->python = found;
        rt->python_source = ggi_asprintf("%s: %s, sys.executable (the binary itself)", source,
                                         value);
        return rt->python_source ? GG_OK : GG_ENOMEM;
    }
    char *real = python_executable(found);
    if (real) {
        rt->python = real;
        free(found);
        rt->python_source = ggi_asprintf("%s: %s, sys.executable", source, value);
    } else {
        rt->python = found;
        rt->python_source = ggi_asprintf("%s: %s (sys.executable query failed)", source, value);
    }
    return rt->python_source ? GG_OK : GG_ENOMEM;
}

static int resolve_cc(ggi_runtimes *rt, const char *explicit_cc)
{
    const char *value, *source;
    const char *env = getenv("GRYPHGEN_CC"), *cc_env = getenv("CC");
    if (explicit_cc && *explicit_cc)
        value = explicit_cc, source = "option";
    else if (env && *env)
        value = env, source = "$GRYPHGEN_CC";
    else if (cc_env && *cc_env)
        value = cc_env, source = "$CC";
    else
        value = "cc", source = "PATH (cc)";

    char *found = NULL, *why = NULL;
    if (locate(value, source, &found, &why))
        return GG_ENOMEM;
    if (!found) {
        rt->cc_source = why;
        return GG_OK;
    }
    rt->cc = found;
    rt->cc_source = ggi_asprintf("%s: %s", source, value);
    return rt->cc_source ? GG_OK : GG_ENOMEM;
}

/* $GRYPHGEN_TOOLCHAIN_<NAME>, else /usr/bin/<name> (Debian's copy). */
static int resolve_tool(ggi_runtimes *rt, int i)
{
    const char *env = getenv(ggi_tool_env(i));
    char *found = NULL, *why = NULL;
    if (env && *env) {
        if (locate(env, ggi_tool_env(i), &found, &why))
            return GG_ENOMEM;
        rt->tool[i] = found;
        rt->tool_source[i] = found ? ggi_asprintf("$%s", ggi_tool_env(i)) : why;
        return rt->tool_source[i] ? GG_OK : GG_ENOMEM;
    }
    char *path = ggi_asprintf("/usr/bin/%s", ggi_tool_name(i));
    if (!path)
        return GG_ENOMEM;
    if (executable_file(path)) {
        rt->tool[i] = path;
        rt->tool_source[i] = strdup("/usr/bin");
    } else {
        free(path);
        rt->tool_source[i] = ggi_asprintf("not in /usr/bin (set %s)", ggi_tool_env(i));
    }
    return rt->tool_source[i] ? GG_OK : GG_ENOMEM;
}

/* The C and C++ links' linker option (ggi_runtimes.link_flag). */
static const char *resolve_link_flag(void)
{
    const char *env = getenv("GRYPHGEN_LINKER");
    return env && !strcmp(env, "default") ? "" : "-fuse-ld=gold";
}

int ggi_runtimes_resolve(ggi_runtimes *rt, const char *python, const char *cc)
{
    if (!rt)
        return ggi_error(GG_EINVAL, "runtimes: rt is NULL");
    memset(rt, 0, sizeof *rt);
    int bad = resolve_python(rt, python) || resolve_cc(rt, cc);
    for (int i = 0; i < GGI_TOOL_COUNT && !bad; i++)
        bad = resolve_tool(rt, i);
    if (bad) {
        ggi_runtimes_free(rt);
        return ggi_error(GG_ENOMEM, "out of memory resolving runtimes");
    }
    rt->link_flag = resolve_link_flag();
    return GG_OK;
}

void ggi_runtimes_free(ggi_runtimes *rt)
{
    if (!rt)
        return;
    free(rt->python);
    free(rt->python_source);
    free(rt->cc);
    free(rt->cc_source);
    for (int i = 0; i < GGI_TOOL_COUNT; i++) {
        free(rt->tool[i]);
        free(rt->tool_source[i]);
    }
    memset(rt, 0, sizeof *rt);
}
