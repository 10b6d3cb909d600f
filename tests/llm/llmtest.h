/*
 * llmtest.h - starts and stops the fake chat-completions server (fake_llm_server.py) for
 * the openai generator's tests: the server runs as a child process, tells its port on its
 * first line of output and is killed by its PID at the end; GET /stats tells what it was asked.
 */
#ifndef GG_LLMTEST_H
#define GG_LLMTEST_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/ggi.h"

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

/* GET /stats from the fake server, parsed ({"models": {model: n}, "paths": {path: n},
 * "total": n}); NULL when it cannot be had. */
static inline cJSON *fake_server_stats(const fake_server *srv)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return NULL;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)srv->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ggi_buf b = GGI_BUF_INIT;
    static const char get[] = "GET /stats HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        write(fd, get, sizeof get - 1) == (ssize_t)(sizeof get - 1)) {
        char chunk[4096];
        ssize_t n;
        while ((n = read(fd, chunk, sizeof chunk)) > 0 && b.len < (1u << 20))
            if (ggi_buf_append(&b, chunk, (size_t)n))
                break;
    }
    close(fd);
    const char *body = b.data ? strstr(b.data, "\r\n\r\n") : NULL;
    cJSON *j = body ? cJSON_Parse(body + 4) : NULL;
    ggi_buf_free(&b);
    return j;
}

/* Requests the fake server got on a path (0 when none or it cannot tell). */
static inline int fake_server_path_hits(const fake_server *srv, const char *path)
{
    cJSON *st = fake_server_stats(srv);
    double n = cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(st, "paths"), path));
    cJSON_Delete(st);
    return n == n ? (int)n : 0;
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
