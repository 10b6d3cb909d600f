/*
 * llmtest.h - starts and stops the fake chat-completions server (fake_llm_server.py) for
 * the openai generator's tests: the server runs as a child process, tells its port on its
 * first line of output and is killed by its PID at the end.
 */
#ifndef GG_LLMTEST_H
#define GG_LLMTEST_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct fake_server {
    pid_t pid;
    int port;
} fake_server;

/* Starts script under /usr/bin/python3; 0 on success. */
static int fake_server_start(fake_server *s, const char *script)
{
    s->pid = -1;
    s->port = 0;
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl("/usr/bin/python3", "python3", script, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    s->pid = pid;
    FILE *f = fdopen(fds[0], "r");
    if (!f) {
        close(fds[0]);
        return -1;
    }
    char line[64];
    int ok = fgets(line, sizeof line, f) && sscanf(line, "PORT %d", &s->port) == 1;
    fclose(f); /* the server never writes again */
    return ok && s->port > 0 ? 0 : -1;
}

static void fake_server_stop(fake_server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
    }
    s->pid = -1;
}

/* Clears the variables the openai generator reads, so the host's settings do not leak in. */
static void clear_llm_env(void)
{
    static const char *const names[] = {
        "GRYPHGEN_LLM_URL", "GRYPHGEN_LLM_MODEL", "GRYPHGEN_LLM_API_KEY",
        "GRYPHGEN_LLM_API_KEY_FILE", "GRYPHGEN_LLM_PROMPT_FILE", "GRYPHGEN_LLM_TEMPERATURE",
        "GRYPHGEN_LLM_MAX_TOKENS", "GRYPHGEN_LLM_SEED", "GRYPHGEN_LLM_JOURNAL", "OPENAI_BASE_URL", "OPENAI_API_KEY",
        "GRYPHGEN_LLM_TEMPERATURES", "GRYPHGEN_LLM_ARMS", "GRYPHGEN_LLM_COST_PER_SECOND",
        "GRYPHGEN_LLM_BANDIT_SEED", "GRYPHGEN_MAX_TOKENS",
        "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        unsetenv(names[i]);
}

#endif
