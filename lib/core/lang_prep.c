/*
 * lang_prep.c - the read-only directories a language's jobs share, prepared once per host
 * and toolchain version (keyed by the toolchain binary's path, size and mtime) below the
 * cache root: $GRYPHGEN_TOOLCHAIN_CACHE, else /var/cache/gryphgen when running as root,
 * else /var/tmp/gryphgen-UID (not below /tmp: a job's /tmp is its own; not in a home, which
 * jobs do not see).
 *
 *   go-KEY/gocache   a Go build cache holding the standard library and testify, built by a
 *                    throw-away test; jobs use it read-only (Go then only skips its writes),
 *                    so a job compiles only its own package and cannot poison another's.
 *   rust-KEY/deps    rand, regex and md5 and their dependencies as rlibs, built by cargo
 *                    --offline from Debian's registry (/usr/share/cargo/registry);
 *   rust-KEY/externs rustc's --extern arguments for them.
 *   java-KEY/gg.jar  a runner (GgJavaRun) that compiles a job's source with the JDK's
 *                    compiler in-process and runs it in the same JVM: one JVM start per job;
 *   java-KEY/gg.jsa  a CDS archive of the classes that JVM loads (made after the rename).
 *   NAME-KEY/bin/sh  a link to /bin/sh: a job run as DIR/bin/sh gets DIR bound read-only
 *                    into its sandbox (the process executor binds argv[0]'s prefix).
 *
 * The key also covers the mtime of the packages' directory (testify's, Debian's cargo
 * registry), so an upgrade there makes a new directory. A directory is built under a temporary name and renamed into place, so a crash leaves
 * nothing half made and two processes preparing at once both end with a whole one.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lang_impl.h"

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    remove(path);
    return 0;
}

static void rm_rf(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int chmod_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)f;
    if (flag == FTW_SL)
        return 0;
    chmod(path, (st->st_mode & 07777) | (S_ISDIR(st->st_mode) || (st->st_mode & 0111)
                                             ? 0555 : 0444));
    return 0;
}

static char *cache_root(void)
{
    const char *env = getenv("GRYPHGEN_TOOLCHAIN_CACHE");
    if (env && *env)
        return ggi_strdup(env);
    if (geteuid() == 0)
        return ggi_strdup("/var/cache/gryphgen");
    return ggi_asprintf("/var/tmp/gryphgen-%u", (unsigned)geteuid());
}

static int mkdir_p(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return -1;
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    return mkdir(buf, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

/* "NAME-<hash of the tool's path, size and mtime, and the mtime of deps (the packages'
 * directory the prepared files are built from)>" */
static char *keyed_dir(const char *root, const char *name, const char *tool, const char *deps)
{
    struct stat st;
    char *real = realpath(tool, NULL);
    if (!real || stat(real, &st) < 0) {
        free(real);
        return NULL;
    }
    unsigned long long h = 1469598103934665603ULL;
    for (const char *p = real; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ (unsigned long long)st.st_size) * 1099511628211ULL;
    h = (h ^ (unsigned long long)st.st_mtime) * 1099511628211ULL;
    if (deps && stat(deps, &st) == 0)
        h = (h ^ (unsigned long long)st.st_mtime) * 1099511628211ULL;
    free(real);
    return ggi_asprintf("%s/%s-%016llx", root, name, h);
}

static int write_file(const char *dir, const char *name, const char *text)
{
    char *p = ggi_asprintf("%s/%s", dir, name);
    FILE *f = p ? fopen(p, "w") : NULL;
    free(p);
    if (!f)
        return -1;
    int bad = fputs(text, f) < 0;
    return (fclose(f) != 0 || bad) ? -1 : 0;
}

/* Runs argv in cwd with env, its output going to cwd/prep.log; 0 when it exited 0, else -1
 * with the error set (naming the log's tail). Host side, trusted programs (the toolchain). */
static int run(const char *const *argv, const char *const *env, const char *cwd)
{
    char *log = ggi_asprintf("%s/prep.log", cwd);
    if (!log)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0 || nul < 0 || chdir(cwd) < 0 || dup2(nul, 0) < 0 || dup2(fd, 1) < 0 ||
            dup2(fd, 2) < 0)
            _exit(127);
        execve(argv[0], (char *const *)argv, (char *const *)env);
        _exit(127);
    }
    int status = 0;
    while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    int ok = pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok) {
        char tail[601] = "";
        FILE *f = fopen(log, "r");
        if (f) {
            if (fseek(f, -600, SEEK_END) < 0)
                rewind(f);
            size_t n = fread(tail, 1, 600, f);
            tail[n] = '\0';
            fclose(f);
        }
        ggi_error(GG_EIO, "preparing the toolchain: %s %s failed: %s", argv[0], argv[1], tail);
    }
    unlink(log);
    free(log);
    return ok ? 0 : -1;
}

/* Removes DIR.tmp-PID directories left by processes that died while preparing. */
static void remove_stale(const char *root, const char *dir)
{
    const char *base = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
    size_t n = strlen(base);
    DIR *d = opendir(root);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, base, n) != 0 || strncmp(e->d_name + n, ".tmp-", 5) != 0)
            continue;
        long pid = strtol(e->d_name + n + 5, NULL, 10);
        if (pid > 0 && pid != (long)getpid() && kill((pid_t)pid, 0) < 0 && errno == ESRCH) {
            char *p = ggi_asprintf("%s/%s", root, e->d_name);
            if (p)
                rm_rf(p);
            free(p);
        }
    }
    if (d)
        closedir(d);
}

typedef int (*fill_fn)(const char *tmp, const ggi_runtimes *rt);

/* Makes root/NAME-KEY by fill() in a temporary directory, unless it is there. */
static char *prepare(const char *name, const char *tool, const char *deps, fill_fn fill,
                     const ggi_runtimes *rt)
{
    char *root = cache_root(), *dir = NULL, *tmp = NULL;
    struct stat st;
    if (!root || !(dir = keyed_dir(root, name, tool, deps)))
        goto fail;
    if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
        goto done;
    if (mkdir_p(root) < 0) {
        ggi_error(GG_EIO, "cannot make the toolchain cache %s: %s (set "
                  "GRYPHGEN_TOOLCHAIN_CACHE)", root, strerror(errno));
        goto fail;
    }
    chmod(root, 0755);
    remove_stale(root, dir);
    if (!(tmp = ggi_asprintf("%s.tmp-%ld", dir, (long)getpid())))
        goto fail;
    rm_rf(tmp);
    char *bin = ggi_asprintf("%s/bin", tmp), *sh = ggi_asprintf("%s/bin/sh", tmp);
    int bad = !bin || !sh || mkdir_p(bin) < 0 || symlink("/bin/sh", sh) < 0;
    free(bin);
    free(sh);
    if (bad) {
        ggi_error(GG_EIO, "cannot make %s: %s", tmp, strerror(errno));
        goto fail;
    }
    if (fill(tmp, rt) < 0)
        goto fail;
    nftw(tmp, chmod_entry, 16, FTW_PHYS);
    if (rename(tmp, dir) < 0 && !(stat(dir, &st) == 0 && S_ISDIR(st.st_mode))) {
        ggi_error(GG_EIO, "cannot rename %s: %s", tmp, strerror(errno));
        goto fail;
    }
done:
    if (tmp)
        rm_rf(tmp);
    free(tmp);
    free(root);
    return dir;
fail:
    if (tmp)
        rm_rf(tmp);
    free(tmp);
    free(root);
    free(dir);
    return NULL;
}

/* ---- Go ---- */

static const char GO_WARM_MAIN[] =
    "package main\n\nimport (\n\t\"fmt\"\n\t\"math\"\n\t\"sort\"\n\t\"strconv\"\n"
    "\t\"strings\"\n)\n\nfunc warm() string {\n"
    "\treturn fmt.Sprint(math.Abs(-1), sort.IntsAreSorted(nil), strconv.Itoa(1),"
    " strings.ToUpper(\"a\"))\n}\n";
static const char GO_WARM_TEST[] =
    "package main\n\nimport (\n\t\"testing\"\n\n\t\"github.com/stretchr/testify/assert\"\n)\n\n"
    "func TestWarm(t *testing.T) {\n\tassert.New(t).NotEmpty(warm())\n}\n";

const char *ggi_lang_go_env_fmt[] = { "GO111MODULE=off", "GOPATH=/usr/share/gocode",
                                      "GOPROXY=off", "GOFLAGS=", "GOENV=off",
                                      "GOTOOLCHAIN=local", "CGO_ENABLED=0",
                                      "GOTELEMETRY=off", NULL };

static int fill_go(const char *tmp, const ggi_runtimes *rt)
{
    char *src = ggi_asprintf("%s/src", tmp), *cache = ggi_asprintf("%s/gocache", tmp);
    char *e_cache = cache ? ggi_asprintf("GOCACHE=%s", cache) : NULL;
    char *e_home = ggi_asprintf("HOME=%s", tmp);
    int rc = -1;
    if (!src || !cache || !e_cache || !e_home || mkdir_p(src) < 0 || mkdir_p(cache) < 0 ||
        write_file(src, "warm.go", GO_WARM_MAIN) < 0 ||
        write_file(src, "warm_test.go", GO_WARM_TEST) < 0) {
        ggi_error(GG_EIO, "cannot write the Go warm-up package in %s", tmp);
        goto out;
    }
    const char *env[16] = { "PATH=/usr/bin:/bin", e_cache, e_home, "TMPDIR=/tmp" };
    size_t n = 4;
    for (size_t i = 0; ggi_lang_go_env_fmt[i] && n < 15; i++)
        env[n++] = ggi_lang_go_env_fmt[i];
    env[n] = NULL;
    const char *argv[] = { rt->tool[GGI_TOOL_GO], "test", "-count=1", ".", NULL };
    const char *vet[] = { rt->tool[GGI_TOOL_GO], "vet", ".", NULL };
    if (run(argv, env, src) < 0 || run(vet, env, src) < 0)
        goto out;
    rm_rf(src);
    rc = 0;
out:
    free(src);
    free(cache);
    free(e_cache);
    free(e_home);
    return rc;
}

/* ---- Rust ---- */

static const char RUST_CARGO_TOML[] =
    "[package]\nname = \"ggdeps\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n"
    "[dependencies]\nrand = \"0.8\"\nregex = \"1\"\nmd5 = \"0.7\"\n\n"
    "[profile.dev]\ndebug = false\n";
static const char RUST_CARGO_CONFIG[] =
    "[source.crates-io]\nreplace-with = \"debian\"\n\n"
    "[source.debian]\ndirectory = \"/usr/share/cargo/registry\"\n";
static const char *const RUST_CRATES[] = { "rand", "regex", "md5", NULL };

/* Moves target/debug/deps/lib*.rlib to tmp/deps and writes tmp/externs, one
 * "crate=file" line per crate of RUST_CRATES. */
static int collect_rlibs(const char *tmp, const char *target)
{
    char *from = ggi_asprintf("%s/debug/deps", target), *to = ggi_asprintf("%s/deps", tmp);
    int rc = -1;
    ggi_buf ext = GGI_BUF_INIT;
    DIR *d = NULL;
    if (!from || !to || mkdir_p(to) < 0 || !(d = opendir(from)))
        goto out;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".rlib") != 0)
            continue;
        char *a = ggi_asprintf("%s/%s", from, e->d_name), *b = ggi_asprintf("%s/%s", to,
                                                                             e->d_name);
        int bad = !a || !b || rename(a, b) < 0;
        free(a);
        free(b);
        if (bad)
            goto out;
        for (size_t c = 0; RUST_CRATES[c]; c++) {
            size_t k = strlen(RUST_CRATES[c]);
            if (strncmp(e->d_name, "lib", 3) == 0 &&
                strncmp(e->d_name + 3, RUST_CRATES[c], k) == 0 && e->d_name[3 + k] == '-' &&
                (ggi_buf_puts(&ext, RUST_CRATES[c]) || ggi_buf_puts(&ext, "=") ||
                 ggi_buf_puts(&ext, e->d_name) || ggi_buf_puts(&ext, "\n")))
                goto out;
        }
    }
    if (write_file(tmp, "externs", ext.data ? ext.data : "") < 0)
        goto out;
    rc = 0;
out:
    if (d)
        closedir(d);
    if (rc)
        ggi_error(GG_EIO, "cannot collect the Rust crates built in %s", target);
    ggi_buf_free(&ext);
    free(from);
    free(to);
    return rc;
}

static int fill_rust(const char *tmp, const ggi_runtimes *rt)
{
    char *b = ggi_asprintf("%s/build", tmp), *src = ggi_asprintf("%s/build/src", tmp);
    char *conf = ggi_asprintf("%s/build/.cargo", tmp), *target = ggi_asprintf("%s/target", b);
    char *e_home = conf ? ggi_asprintf("CARGO_HOME=%s", conf) : NULL;
    char *e_target = target ? ggi_asprintf("CARGO_TARGET_DIR=%s", target) : NULL;
    char *e_rustc = ggi_asprintf("RUSTC=%s", rt->tool[GGI_TOOL_RUSTC]);
    char *e_h = ggi_asprintf("HOME=%s", tmp);
    int rc = -1;
    if (!b || !src || !conf || !target || !e_home || !e_target || !e_rustc || !e_h ||
        mkdir_p(src) < 0 || mkdir_p(conf) < 0 ||
        write_file(b, "Cargo.toml", RUST_CARGO_TOML) < 0 ||
        write_file(src, "lib.rs", "") < 0 ||
        write_file(conf, "config.toml", RUST_CARGO_CONFIG) < 0) {
        ggi_error(GG_EIO, "cannot write the Rust crates' project in %s", tmp);
        goto out;
    }
    const char *env[] = { "PATH=/usr/bin:/bin", e_home, e_target, e_rustc, e_h, NULL };
    const char *argv[] = { rt->tool[GGI_TOOL_CARGO], "build", "--offline", "--quiet", NULL };
    if (run(argv, env, b) < 0 || collect_rlibs(tmp, target) < 0)
        goto out;
    rm_rf(b);
    rc = 0;
out:
    free(b);
    free(src);
    free(conf);
    free(target);
    free(e_home);
    free(e_target);
    free(e_rustc);
    free(e_h);
    return rc;
}

/* ---- Java ---- */

/* One JVM per job instead of two: compiles the source in-process (javac's diagnostics on
 * stderr; exit 90 after the marker when it fails), then runs the class's main in the same
 * JVM, an uncaught exception printed and exiting 1 as the java launcher would. */
static const char JAVA_RUNNER[] =
    "import java.io.File;\n"
    "import java.lang.reflect.InvocationTargetException;\n"
    "import java.net.URL;\n"
    "import java.net.URLClassLoader;\n"
    "\n"
    "public final class GgJavaRun {\n"
    "    public static void main(String[] a) throws Exception {\n"
    "        int rc = javax.tools.ToolProvider.getSystemJavaCompiler().run(null, System.err,\n"
    "            System.err, \"-d\", \".\", \"-nowarn\", \"-encoding\", \"UTF-8\", a[0]);\n"
    "        if (rc != 0) {\n"
    "            System.err.println(\"" GGI_LANG_ANALYSIS_MARKER "\");\n"
    "            System.exit(" GGI_LANG_STR(GGI_LANG_ANALYSIS_EXIT) ");\n"
    "        }\n"
    "        URLClassLoader l = new URLClassLoader(new URL[] { new File(\".\").toURI().toURL() });\n"
    "        try {\n"
    "            l.loadClass(a[1]).getMethod(\"main\", String[].class)\n"
    "                .invoke(null, (Object) new String[0]);\n"
    "        } catch (InvocationTargetException e) {\n"
    "            System.err.print(\"Exception in thread \\\"main\\\" \");\n"
    "            e.getCause().printStackTrace();\n"
    "            System.exit(1);\n"
    "        }\n"
    "    }\n"
    "}\n";

static const char JAVA_WARM[] =
    "import java.util.*;\n"
    "import java.util.stream.*;\n"
    "\n"
    "class Solution {\n"
    "    public List<Integer> f(List<Integer> xs) {\n"
    "        Map<Integer, Integer> m = new HashMap<>();\n"
    "        for (int x : xs) m.put(x, m.getOrDefault(x, 0) + 1);\n"
    "        return xs.stream().filter(x -> m.get(x) == 1).sorted().collect(Collectors.toList());\n"
    "    }\n"
    "}\n"
    "\n"
    "public class Main {\n"
    "    public static void main(String[] args) {\n"
    "        List<Integer> r = new Solution().f(new ArrayList<>(Arrays.asList(3, 1, 3, 2)));\n"
    "        if (!r.equals(Arrays.asList(1, 2)) || !String.valueOf(r).contains(\"1\")) {\n"
    "            throw new AssertionError();\n"
    "        }\n"
    "    }\n"
    "}\n";

/* The runner, compiled and put in a jar (a class-path directory cannot be in a CDS archive). */
static int fill_java(const char *tmp, const ggi_runtimes *rt)
{
    char *classes = ggi_asprintf("%s/classes", tmp);
    char *real = realpath(rt->tool[GGI_TOOL_JAVAC], NULL);
    char *jar = real ? ggi_asprintf("%.*s/jar", (int)(strrchr(real, '/') - real), real) : NULL;
    int rc = -1;
    if (!classes || mkdir_p(classes) < 0 || write_file(tmp, "GgJavaRun.java", JAVA_RUNNER) < 0) {
        ggi_error(GG_EIO, "cannot write the Java runner in %s", tmp);
        goto out;
    }
    const char *env[] = { "PATH=/usr/bin:/bin", "HOME=/nonexistent", NULL };
    const char *argv[] = { rt->tool[GGI_TOOL_JAVAC], "-d", "classes", "GgJavaRun.java", NULL };
    if (run(argv, env, tmp) < 0)
        goto out;
    if (!jar || access(jar, X_OK) < 0) {
        ggi_error(GG_EIO, "no jar tool beside %s", rt->tool[GGI_TOOL_JAVAC]);
        goto out;
    }
    const char *jargv[] = { jar, "cf", "gg.jar", "-C", "classes", "GgJavaRun.class", NULL };
    if (run(jargv, env, tmp) < 0)
        goto out;
    rm_rf(classes);
    rc = 0;
out:
    free(classes);
    free(real);
    free(jar);
    return rc;
}

/*
 * dir/gg.jsa: a CDS archive of the classes a job's JVM loads (the compiler's, the runner's,
 * the collections'), made by running the runner once on a warm-up program; jobs map it
 * (-XX:SharedArchiveFile) and so do not load and verify those classes again. Made after the
 * directory has its final name (the archive records the class path). Best effort: without
 * it jobs only start slower.
 */
static void make_java_cds(const char *dir, const ggi_runtimes *rt)
{
    char *jsa = ggi_asprintf("%s/gg.jsa", dir), *tmp = ggi_asprintf("%s/gg.jsa.tmp-%ld", dir,
                                                                      (long)getpid());
    char *work = ggi_asprintf("%s/warm-%ld", dir, (long)getpid());
    char *opt = tmp ? ggi_asprintf("-XX:ArchiveClassesAtExit=%s", tmp) : NULL;
    char *cp = ggi_asprintf("%s/gg.jar", dir);
    if (!jsa || !tmp || !work || !opt || !cp || access(jsa, R_OK) == 0 ||
        !rt->tool[GGI_TOOL_JAVA])
        goto out;
    rm_rf(work);
    if (mkdir_p(work) < 0 || write_file(work, "Main.java", JAVA_WARM) < 0)
        goto out;
    const char *env[] = { "PATH=/usr/bin:/bin", "HOME=/nonexistent", NULL };
    const char *argv[] = { rt->tool[GGI_TOOL_JAVA], "-XX:+UseSerialGC",
                           "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData", opt, "-cp", cp,
                           "GgJavaRun", "Main.java", "Main", NULL };
    if (run(argv, env, work) == 0 && chmod(tmp, 0444) == 0)
        rename(tmp, jsa);
    gg_error_clear();
out:
    if (work)
        rm_rf(work);
    if (tmp)
        unlink(tmp);
    free(jsa);
    free(tmp);
    free(work);
    free(opt);
    free(cp);
}

/* ---- once per process ---- */

/* What the prepared directories are built from: a package update there makes a new one. */
#define GO_DEPS "/usr/share/gocode/src/github.com/stretchr/testify"
#define RUST_DEPS "/usr/share/cargo/registry"

/* A failed preparation is not tried again by every job: for RETRY_S the jobs fail with its
 * error at once. */
#define RETRY_S 60

static pthread_mutex_t prep_lock = PTHREAD_MUTEX_INITIALIZER;
static char *go_dir, *rust_dir, *rust_externs;
static char *java_dir;
static time_t go_failed, rust_failed, java_failed;
static char go_why[512], rust_why[512], java_why[512];

/* 1 when a recent failure stands (error set again), else 0 */
static int failed_recently(time_t at, const char *why)
{
    if (!at || time(NULL) - at >= RETRY_S)
        return 0;
    ggi_error(GG_EIO, "%s", why);
    return 1;
}

static void note_failure(time_t *at, char *why, size_t cap)
{
    *at = time(NULL);
    snprintf(why, cap, "%s", gg_error_last());
}

/* "--extern rand=DIR/deps/FILE ..." from DIR/externs */
static char *read_externs(const char *dir)
{
    char *p = ggi_asprintf("%s/externs", dir);
    FILE *f = p ? fopen(p, "r") : NULL;
    free(p);
    if (!f)
        return NULL;
    ggi_buf b = GGI_BUF_INIT;
    char line[1024];
    int bad = 0;
    while (!bad && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = '\0';
        char *arg = ggi_asprintf(" --extern %s=%s/deps/%s", line, dir, eq + 1);
        bad = !arg || ggi_buf_puts(&b, arg);
        free(arg);
    }
    fclose(f);
    if (bad) {
        ggi_buf_free(&b);
        return NULL;
    }
    char *s = ggi_buf_steal(&b);
    return s ? s : ggi_strdup("");
}

const char *ggi_lang_prepared_go(const ggi_runtimes *rt)
{
    if (ggi_lang_need(rt, GGI_TOOL_GO))
        return NULL;
    pthread_mutex_lock(&prep_lock);
    if (!go_dir && !failed_recently(go_failed, go_why) &&
        !(go_dir = prepare("go", rt->tool[GGI_TOOL_GO], GO_DEPS, fill_go, rt)))
        note_failure(&go_failed, go_why, sizeof go_why);
    const char *d = go_dir;
    pthread_mutex_unlock(&prep_lock);
    return d;
}

const char *ggi_lang_prepared_java(const ggi_runtimes *rt)
{
    if (ggi_lang_need(rt, GGI_TOOL_JAVAC))
        return NULL;
    pthread_mutex_lock(&prep_lock);
    if (!java_dir && !failed_recently(java_failed, java_why)) {
        if ((java_dir = prepare("java", rt->tool[GGI_TOOL_JAVAC], NULL, fill_java, rt)))
            make_java_cds(java_dir, rt);
        else
            note_failure(&java_failed, java_why, sizeof java_why);
    }
    const char *d = java_dir;
    pthread_mutex_unlock(&prep_lock);
    return d;
}

const char *ggi_lang_prepared_rust(const ggi_runtimes *rt)
{
    if (ggi_lang_need(rt, GGI_TOOL_RUSTC) || ggi_lang_need(rt, GGI_TOOL_CARGO))
        return NULL;
    pthread_mutex_lock(&prep_lock);
    if (!rust_dir && !failed_recently(rust_failed, rust_why)) {
        rust_dir = prepare("rust", rt->tool[GGI_TOOL_RUSTC], RUST_DEPS, fill_rust, rt);
        if (rust_dir && !(rust_externs = read_externs(rust_dir))) {
            ggi_error(GG_EIO, "cannot read %s/externs", rust_dir);
            free(rust_dir);
            rust_dir = NULL;
        }
        if (!rust_dir)
            note_failure(&rust_failed, rust_why, sizeof rust_why);
    }
    const char *d = rust_dir;
    pthread_mutex_unlock(&prep_lock);
    return d;
}

const char *ggi_lang_rust_externs(void)
{
    pthread_mutex_lock(&prep_lock);
    const char *e = rust_externs;
    pthread_mutex_unlock(&prep_lock);
    return e ? e : "";
}
