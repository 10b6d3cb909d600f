/*
 * lang_java.c - Java: the test job's one source file is program + test (HumanEval-X's Java
 * has `class Solution` in the program and `public class Main` in the test), named after the
 * test's public class (Main.java when it has none). One JVM per job: a prepared runner
 * (lang_prep.c, GgJavaRun) compiles it with the JDK's compiler in-process (the analysis: its
 * "FILE:LINE: error: message" lines become findings, nothing runs), then runs the public
 * class's main in the same JVM, as `javac` then `java` would, at one JVM start instead of
 * two. An uncaught exception (`throw new AssertionError()`) exits 1 and reads as
 * the exception with its line. The JVMs run with the serial collector, C1 only and a heap
 * of half the job's memory limit, which starts them fastest.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lang_impl.h"

#define JAVA_MIN_MEMORY_MB 512
#define MAX_CLASS 128

/* The test's `public class NAME`, else "Main". */
static void main_class(const char *test, char *out, size_t cap)
{
    snprintf(out, cap, "Main");
    for (const char *p = test ? strstr(test, "public class ") : NULL; p;
         p = strstr(p + 1, "public class ")) {
        const char *q = p + 13;
        while (*q == ' ')
            q++;
        size_t n = 0;
        while (ggi_lang_is_ident((unsigned char)q[n]) && n + 1 < cap)
            n++;
        if (n) {
            snprintf(out, cap, "%.*s", (int)n, q);
            return;
        }
    }
}

static int java_test(const ggi_task *t, const char *program, const ggi_runtimes *rt,
                     cJSON **out)
{
    int rc;
    if ((rc = ggi_lang_need(rt, GGI_TOOL_JAVAC)) || (rc = ggi_lang_need(rt, GGI_TOOL_JAVA)))
        return rc;
    char cls[MAX_CLASS];
    main_class(t->test, cls, sizeof cls);
    int mem = ggi_lang_memory(t);
    if (mem < JAVA_MIN_MEMORY_MB)
        mem = JAVA_MIN_MEMORY_MB;
    const char *dir = ggi_lang_prepared_java(rt);
    if (!dir)
        return GG_EIO;
    char *src = ggi_asprintf("%s\n%s", program, t->test ? t->test : "");
    char *name = ggi_asprintf("%s.java", cls);
    char *jsa = ggi_asprintf("%s/gg.jsa", dir);
    char *cds = jsa && access(jsa, R_OK) == 0 ? ggi_asprintf("-XX:SharedArchiveFile=%s ", jsa)
                                              : ggi_strdup("");
    char *script = cds ? ggi_asprintf(
        "exec \"$GG_JAVA\" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto %s"
        "-XX:-UsePerfData -Xmx%dm -cp %s/gg.jar GgJavaRun %s %s",
        cds, mem / 2, dir, name ? name : "", cls) : NULL;
    free(jsa);
    free(cds);
    if (!src || !name || !script) {
        free(src);
        free(name);
        free(script);
        return ggi_lang_oom();
    }
    const char *files[] = { name, src, NULL };
    const char *env[] = { "GG_JAVAC", rt->tool[GGI_TOOL_JAVAC], "GG_JAVA",
                          rt->tool[GGI_TOOL_JAVA], "HOME", ".", NULL };
    rc = ggi_lang_sh_job(t, dir, script, files, env, JAVA_MIN_MEMORY_MB, out);
    free(src);
    free(name);
    free(script);
    return rc;
}

/* Exception in thread "main" java.lang.AssertionError[: msg]
 *         at Main.main(Main.java:12) */
static int java_failure(const ggi_task *t, const cJSON *r, ggi_verdict *v)
{
    (void)t;
    const char *err = ggi_lang_str(r, "stderr");
    const char *ex = strstr(err, "Exception in thread ");
    if (!ex)
        return 0;
    const char *q = strchr(ex + 20, ' ');
    const char *eol = strchr(ex, '\n');
    if (!q || (eol && q > eol))
        return 0;
    q++;
    char *what = ggi_lang_trimmed(q, eol ? (size_t)(eol - q) : strlen(q),
                                  GGI_LANG_MAX_REASON_LINE);
    if (!what)
        return -1;
    /* the first frame in a .java file of the job */
    long line = 0;
    char file[MAX_CLASS + 8] = "";
    for (const char *p = eol ? eol + 1 : ""; *p; p = ggi_lang_next_line(p)) {
        const char *a = strstr(p, "at ");
        const char *e = strchr(p, '\n');
        const char *j = strstr(p, ".java:");
        if (!a || !j || (e && j > e) || a > j)
            continue;
        const char *s = j;
        while (s > p && s[-1] != '(')
            s--;
        if (ggi_lang_digits(j + 6, j + strlen(j), &line)) {
            snprintf(file, sizeof file, "%.*s.java", (int)(j - s), s);
            break;
        }
    }
    size_t tn = strcspn(what, ":");
    if (file[0]) {
        v->reason = ggi_asprintf("%s at %s line %ld", what, file, line);
        v->signature = ggi_asprintf("%.*s@%s:%ld", (int)tn, what, file, line);
    } else {
        v->reason = ggi_strdup(what);
        v->signature = ggi_asprintf("%.*s", (int)tn, what);
    }
    free(what);
    return 1;
}

static const char *const java_aliases[] = { NULL };
static const int java_tools[] = { GGI_TOOL_JAVAC, GGI_TOOL_JAVA, -1 };

const ggi_lang_ops ggi_lang_java = {
    .name = "java",
    .aliases = java_aliases,
    .task_prefix = "Java/",
    .tools = java_tools,
    .test = java_test,
    .failure = java_failure,
};
