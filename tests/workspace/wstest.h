/*
 * wstest.h - what the workspace tests share: running a shell command (the git command is
 * the independent client that makes the tests' repositories), writing and reading files,
 * and parsing a workspace value from JSON text.
 */
#ifndef GG_WSTEST_H
#define GG_WSTEST_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"
#include "workspace/workspace.h"

/* Runs a shell command built like printf; returns its exit status (-1 when it could not
 * run). Git runs with a fixed identity and without the user's configuration. */
static inline int sh(const char *fmt, ...) GGI_PRINTF(1, 2);
static inline int sh(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[8600];
    snprintf(full, sizeof full,
             "export GIT_CONFIG_NOSYSTEM=1 HOME=/nonexistent GIT_AUTHOR_NAME=t "
             "GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t; %s", cmd);
    int st = system(full);
    return st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The output of a shell command (first line, without the newline), malloc'd. */
static inline char *sh_out(const char *cmd)
{
    char full[8600];
    snprintf(full, sizeof full,
             "export GIT_CONFIG_NOSYSTEM=1 HOME=/nonexistent; %s", cmd);
    FILE *p = popen(full, "r");
    if (!p)
        return NULL;
    char line[4096] = "";
    if (!fgets(line, sizeof line, p))
        line[0] = '\0';
    pclose(p);
    line[strcspn(line, "\n")] = '\0';
    return strdup(line);
}

static inline int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

/* The whole file, malloc'd; NULL when it cannot be read. */
static inline char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

static inline cJSON *js(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    if (!j)
        fprintf(stderr, "bad JSON in the test: %s\n", text);
    return j;
}

#endif
