/*
 * runjob.h - a minimal stand-in for the process executor, for the language tests: runs one
 * executor request (argv, files, env, limits.timeout_s) in a fresh temporary directory and
 * returns a result object with the executor's field names. It lets the harness and the C
 * jobs be tested without depending on lib/execution; the real executor is tested with the
 * same requests where it is available.
 */
#ifndef GG_TASK_RUNJOB_H
#define GG_TASK_RUNJOB_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

/* Reads a whole (small) file into a malloc'd string; "" when it cannot. */
static char *runjob_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return strdup("");
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (len + 1 == cap) {
            if (cap >= (1u << 24))
                break;
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

static int runjob_write(const char *dir, const char *name, const char *content)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t n = strlen(content);
    int ok = fwrite(content, 1, n, f) == n;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

static void runjob_rmtree(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

/*
 * Runs req; returns the result object (caller deletes) or NULL when the job could not be
 * started. When keep_dir is non-NULL the job's directory is left in place and its path
 * copied there (the caller removes it with runjob_rmtree).
 */
static cJSON *runjob(const cJSON *req, char *keep_dir, size_t keep_cap)
{
    char dir[] = "/tmp/gg-task-test-XXXXXX";
    if (!mkdtemp(dir))
        return NULL;
    const cJSON *files = cJSON_GetObjectItem(req, "files"), *f;
    cJSON_ArrayForEach(f, files)
    {
        if (runjob_write(dir, cJSON_GetObjectItem(f, "path")->valuestring,
                         cJSON_GetObjectItem(f, "content")->valuestring)) {
            runjob_rmtree(dir);
            return NULL;
        }
    }
    const cJSON *argv_j = cJSON_GetObjectItem(req, "argv");
    int argc = cJSON_GetArraySize(argv_j);
    char **argv = calloc((size_t)argc + 1, sizeof *argv);
    for (int i = 0; argv && i < argc; i++)
        argv[i] = cJSON_GetArrayItem(argv_j, i)->valuestring;
    const cJSON *env = cJSON_GetObjectItem(req, "env"), *e;
    int nenv = cJSON_GetArraySize(env);
    char **envp = calloc((size_t)nenv + 2, sizeof *envp);
    int k = 0;
    if (envp) {
        envp[k++] = strdup("PATH=/usr/local/bin:/usr/bin:/bin");
        cJSON_ArrayForEach(e, env)
        {
            size_t n = strlen(e->string) + strlen(e->valuestring) + 2;
            envp[k] = malloc(n);
            if (envp[k])
                snprintf(envp[k], n, "%s=%s", e->string, e->valuestring);
            k++;
        }
    }
    double timeout = 10;
    const cJSON *lim = cJSON_GetObjectItem(req, "limits");
    if (cJSON_IsNumber(cJSON_GetObjectItem(lim, "timeout_s")))
        timeout = cJSON_GetObjectItem(lim, "timeout_s")->valuedouble;
    pid_t pid = argv && envp ? fork() : -1;
    if (pid == 0) {
        if (chdir(dir) != 0)
            _exit(127);
        int out = open("stdout.txt", O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int err = open("stderr.txt", O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int in = open("/dev/null", O_RDONLY);
        if (out < 0 || err < 0 || in < 0)
            _exit(127);
        dup2(in, 0);
        dup2(out, 1);
        dup2(err, 2);
        setpgid(0, 0);
        execve(argv[0], argv, envp);
        _exit(127);
    }
    int status = 0, timed_out = 0;
    if (pid > 0) {
        struct timespec t0, now;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (;;) {
            pid_t w = waitpid(pid, &status, WNOHANG);
            if (w == pid)
                break;
            if (w < 0 && errno != EINTR)
                break;
            clock_gettime(CLOCK_MONOTONIC, &now);
            double el = (double)(now.tv_sec - t0.tv_sec) + (now.tv_nsec - t0.tv_nsec) / 1e9;
            if (!timed_out && el > timeout) {
                timed_out = 1;
                kill(-pid, SIGKILL);
                kill(pid, SIGKILL);
            }
            struct timespec ts = { 0, 2000000 };
            nanosleep(&ts, NULL);
        }
    }
    for (int i = 0; envp && i < k; i++)
        free(envp[i]);
    free(envp);
    free(argv);
    if (pid < 0) {
        runjob_rmtree(dir);
        return NULL;
    }
    cJSON *res = cJSON_CreateObject();
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    if (timed_out)
        sig = 0;
    cJSON_AddNumberToObject(res, "exit_code", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    cJSON_AddNumberToObject(res, "signal", sig);
    cJSON_AddBoolToObject(res, "timed_out", timed_out);
    cJSON_AddBoolToObject(res, "cancelled", 0);
    char path[600];
    snprintf(path, sizeof path, "%s/stdout.txt", dir);
    char *s = runjob_slurp(path);
    cJSON_AddStringToObject(res, "stdout", s ? s : "");
    free(s);
    snprintf(path, sizeof path, "%s/stderr.txt", dir);
    s = runjob_slurp(path);
    cJSON_AddStringToObject(res, "stderr", s ? s : "");
    free(s);
    if (keep_dir)
        snprintf(keep_dir, keep_cap, "%s", dir);
    else
        runjob_rmtree(dir);
    return res;
}

#endif
