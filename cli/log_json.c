/*
 * log_json.c - `--log-format json`: the command's log lines (the library's log callback and
 * the command's own messages) as one JSON object per line on stderr, for log shippers:
 * {"time": RFC 3339 UTC with milliseconds, "level", "component", "message", "task", "node"}.
 * component, task and node are taken from the line where it says them ("security: ...",
 * "task 'ID' ...", "worker 'NAME' ...", "node 'NAME' ..."); component is otherwise the
 * command's name. Strings are escaped by RFC 8259, and bytes that are not UTF-8 become
 * U+FFFD, so every line parses whatever a message carried.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"

int cli_log_json;
const char *cli_log_component = "gryphgen";

int cli_log_format_parse(const char *arg)
{
    if (strcmp(arg, "text") == 0 || strcmp(arg, "json") == 0) {
        cli_log_json = strcmp(arg, "json") == 0;
        return 0;
    }
    cli_errorf("option --log-format: '%s' is not one of text, json", arg);
    return -1;
}

/* The length of the UTF-8 sequence at s (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF), 0 when it is not one; s is NUL-terminated. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t n;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    } else
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return n;
}

/* Writes s (len bytes, or up to its NUL when len is (size_t)-1) as a JSON string. */
static void put_string(FILE *f, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    const unsigned char *end = len == (size_t)-1 ? p + strlen(s) : p + len;
    fputc('"', f);
    while (p < end) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc(c, f);
            p++;
        } else if (c < 0x20 || c == 0x7f) {
            static const char short_esc[] = { ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n',
                                              ['\r'] = 'r', ['\t'] = 't' };
            if (c < sizeof short_esc && short_esc[c])
                fprintf(f, "\\%c", short_esc[c]);
            else
                fprintf(f, "\\u%04x", c);
            p++;
        } else if (c < 0x80) {
            fputc(c, f);
            p++;
        } else {
            size_t n = utf8_len(p);
            if (n == 0 || p + n > end) {
                fputs("\\ufffd", f);
                p++;
            } else {
                fwrite(p, 1, n, f);
                p += n;
            }
        }
    }
    fputc('"', f);
}

/* The quoted name after the first "<word> '" in message, as a pointer and length. */
static int quoted_after(const char *message, const char *word, const char **at, size_t *n)
{
    const char *p = strstr(message, word);
    while (p && p != message && p[-1] != ' ' && p[-1] != '(')
        p = strstr(p + 1, word);
    if (!p)
        return 0;
    p += strlen(word);
    const char *q = strchr(p, '\'');
    if (!q || q == p)
        return 0;
    *at = p;
    *n = (size_t)(q - p);
    return 1;
}

void cli_log_json_line(const char *level, const char *message)
{
    struct timespec ts;
    struct tm tm;
    char when[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t w = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + w, sizeof when - w, ".%03ldZ", ts.tv_nsec / 1000000L);
    if (!message)
        message = "";
    /* "component: ..." names its component: a lowercase word and a colon */
    size_t clen = strspn(message, "abcdefghijklmnopqrstuvwxyz0123456789_-");
    int has_component = clen > 0 && clen <= 32 && message[clen] == ':' &&
                        message[clen + 1] == ' ';
    FILE *f = stderr;
    fprintf(f, "{\"time\":\"%s\",\"level\":", when);
    put_string(f, level, (size_t)-1);
    fputs(",\"component\":", f);
    if (has_component)
        put_string(f, message, clen);
    else
        put_string(f, cli_log_component, (size_t)-1);
    fputs(",\"message\":", f);
    put_string(f, message, (size_t)-1);
    const char *at;
    size_t n;
    if (quoted_after(message, "task '", &at, &n)) {
        fputs(",\"task\":", f);
        put_string(f, at, n);
    }
    if (quoted_after(message, "worker '", &at, &n) || quoted_after(message, "node '", &at, &n)) {
        fputs(",\"node\":", f);
        put_string(f, at, n);
    }
    fputs("}\n", f);
}
