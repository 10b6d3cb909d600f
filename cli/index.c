/*
 * index.c - the retrieval commands: `gryphgen index` walks files and directories and adds
 * each text file to an fts5 retriever (which chunks it and re-indexes incrementally), then
 * drops the documents of files under each walked directory that the walk no longer found,
 * `gryphgen search` prints the ranked chunks for a query, and `gryphgen search-serve` serves
 * GET /v1/search over HTTP from the same database until interrupted.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "http/http_server.h"

#define DEFAULT_MAX_FILE (1u << 20)
#define MAX_FILES 200000
#define MAX_DEPTH 32
#define BINARY_SNIFF 8192

enum { OPT_DB = 0x200, OPT_MAX_FILE, OPT_QUIET, OPT_LANGUAGE, OPT_WEIGHT, OPT_EXPLORATION,
       OPT_JSON, OPT_LISTEN, OPT_TOKEN_ENV, OPT_HELP, OPT_CERT, OPT_KEY };

static const char *default_db(void)
{
    const char *v = getenv("GRYPHGEN_DB");
    return v && *v ? v : "gryphgen.db";
}

static int open_retriever(const char *db, double weight, double exploration,
                          gg_retriever_t **out)
{
    return cli_open_index(db, weight, exploration, out);
}

int cli_open_index(const char *db, double weight, double exploration, gg_retriever_t **out)
{
    gg_retriever_options o = GG_RETRIEVER_OPTIONS_INIT;
    o.backend = "fts5";
    o.db_path = db;
    if (weight >= 0)
        o.usefulness_weight = weight;
    if (exploration >= 0)
        o.exploration = exploration;
    if (gg_retriever_new(out, &o) != GG_OK) {
        cli_errorf("cannot open the index %s: %s", db, gg_error_last());
        return CLI_EXIT_INFRA;
    }
    return CLI_EXIT_OK;
}

static int parse_double(const char *name, const char *text, double lo, double hi, double *out)
{
    char *end = NULL;
    errno = 0;
    double d = strtod(text, &end);
    if (errno || end == text || *end || !(d >= lo && d <= hi)) {
        cli_errorf("%s: '%s' is not a number from %g to %g", name, text, lo, hi);
        return -1;
    }
    *out = d;
    return 0;
}

/* ---- index ---- */

typedef struct walk {
    gg_retriever_t *r;
    char db_real[PATH_MAX]; /* the index itself (and its -wal, -shm) is never indexed */
    size_t max_file;
    int quiet;
    long files, unchanged_files, skipped, failed;
    long added, unchanged, removed, dropped;
    cJSON *seen;   /* sources found by the walk of the current argument (kept by prune) */
    int truncated; /* the walk stopped early: prune nothing */
} walk;

/* Remembers a source the walk found (indexed, or unreadable this time). */
static void saw(walk *w, const char *source)
{
    cJSON *s = w->seen ? cJSON_CreateString(source) : NULL;
    if (!s || !cJSON_AddItemToArray(w->seen, s)) {
        cJSON_Delete(s);
        w->truncated = 1; /* out of memory: better keep everything */
    }
}

/* The real path of path, or path itself when it cannot be resolved. */
static const char *real_or(const char *path, char real[PATH_MAX])
{
    return realpath(path, real) ? real : path;
}

/* Binary when it holds a NUL byte or many control characters near its start. */
static int looks_binary(const char *buf, size_t len)
{
    size_t n = len < BINARY_SNIFF ? len : BINARY_SNIFF, ctl = 0;
    for (size_t i = 0; i < len; i++)
        if (buf[i] == '\0')
            return 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c < 0x20 && c != '\n' && c != '\r' && c != '\t' && c != '\f')
            ctl++;
    }
    return n && ctl * 10 > n;
}

static void index_file(walk *w, const char *path, const struct stat *st)
{
    if ((size_t)st->st_size > w->max_file) {
        if (!w->quiet)
            cli_errorf("index: skipping %s (%lld bytes, the limit is %zu)", path,
                       (long long)st->st_size, w->max_file);
        w->skipped++;
        return;
    }
    char real[PATH_MAX];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cli_errorf("index: cannot open %s: %s", path, strerror(errno));
        w->failed++;
        saw(w, real_or(path, real)); /* unreadable now is not gone */
        return;
    }
    size_t cap = (size_t)st->st_size + 1, len = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        close(fd);
        cli_errorf("index: out of memory reading %s", path);
        w->failed++;
        return;
    }
    for (;;) {
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len >= cap)
            break; /* grew while we read: take what fits */
    }
    close(fd);
    buf[len] = '\0';
    if (looks_binary(buf, len)) {
        w->skipped++;
        free(buf);
        return;
    }
    const char *source = real_or(path, real);
    if (w->db_real[0] && strncmp(source, w->db_real, strlen(w->db_real)) == 0) {
        free(buf);
        return;
    }
    cJSON *doc = cJSON_CreateObject();
    char *json = NULL;
    if (doc && cJSON_AddStringToObject(doc, "source", source) &&
        cJSON_AddStringToObject(doc, "text", buf))
        json = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    free(buf);
    saw(w, source);
    char *res = NULL;
    if (!json || gg_retriever_add(w->r, json, &res) != GG_OK) {
        cli_errorf("index: %s: %s", path, json ? gg_error_last() : "out of memory");
        cJSON_free(json);
        w->failed++;
        return;
    }
    cJSON_free(json);
    cJSON *rj = cJSON_Parse(res);
    gg_free(res);
    long a = (long)cJSON_GetNumberValue(cJSON_GetObjectItem(rj, "added"));
    long u = (long)cJSON_GetNumberValue(cJSON_GetObjectItem(rj, "unchanged"));
    long d = (long)cJSON_GetNumberValue(cJSON_GetObjectItem(rj, "removed"));
    cJSON_Delete(rj);
    w->files++;
    if (a == 0 && d == 0)
        w->unchanged_files++;
    w->added += a;
    w->unchanged += u;
    w->removed += d;
}

static void walk_path(walk *w, const char *path, int depth)
{
    if (cli_interrupted || w->files + w->skipped + w->failed >= MAX_FILES) {
        w->truncated = 1;
        return;
    }
    struct stat st;
    if (lstat(path, &st) != 0) {
        cli_errorf("index: cannot read %s: %s", path, strerror(errno));
        w->failed++;
        return;
    }
    if (S_ISLNK(st.st_mode) && depth == 0 && stat(path, &st) != 0) {
        cli_errorf("index: %s is a dangling link", path);
        w->failed++;
        return;
    }
    if (S_ISREG(st.st_mode)) {
        index_file(w, path, &st);
        return;
    }
    if (S_ISDIR(st.st_mode) && depth >= MAX_DEPTH)
        w->truncated = 1; /* not walked, so not known to be gone */
    if (!S_ISDIR(st.st_mode) || depth >= MAX_DEPTH)
        return; /* links inside trees, devices, sockets: left alone */
    DIR *d = opendir(path);
    if (!d) {
        cli_errorf("index: cannot open the directory %s: %s", path, strerror(errno));
        w->failed++;
        w->truncated = 1; /* what lies below is unknown, not gone */
        return;
    }
    /* Sorted, so the order of ids does not depend on the file system. */
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue; /* ., .., .git and other hidden entries */
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            char **v = realloc(names, nc * sizeof *v);
            if (!v) {
                w->truncated = 1;
                break;
            }
            names = v;
            cap = nc;
        }
        if (!(names[n] = strdup(e->d_name))) {
            w->truncated = 1;
            break;
        }
        n++;
    }
    closedir(d);
    for (size_t i = 1; i < n; i++) /* insertion sort: directories are small */
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(path) + strlen(names[i]) + 2;
        char *child = malloc(len);
        if (!child)
            w->truncated = 1;
        if (child) {
            snprintf(child, len, "%s%s%s", path,
                     path[strlen(path) - 1] == '/' ? "" : "/", names[i]);
            walk_path(w, child, depth + 1);
            free(child);
        }
        free(names[i]);
    }
    free(names);
}

/*
 * After a complete walk of the directory dir: the documents whose source lies under dir's
 * real path but that the walk did not find (deleted, renamed, now binary, too large or
 * hidden) are dropped with their chunks. Solutions are never touched.
 */
static void prune_gone(walk *w, const char *dir)
{
    char real[PATH_MAX];
    if (!realpath(dir, real))
        return;
    cJSON *doc = cJSON_CreateObject();
    char *json = NULL;
    if (doc && cJSON_AddStringToObject(doc, "kind", "prune") &&
        cJSON_AddStringToObject(doc, "source", real)) {
        cJSON_AddItemReferenceToObject(doc, "keep", w->seen);
        json = cJSON_PrintUnformatted(doc);
    }
    cJSON_Delete(doc);
    char *res = NULL;
    if (!json || gg_retriever_add(w->r, json, &res) != GG_OK) {
        cli_errorf("index: dropping the files gone from %s: %s", dir,
                   json ? gg_error_last() : "out of memory");
        cJSON_free(json);
        w->failed++;
        return;
    }
    cJSON_free(json);
    cJSON *rj = cJSON_Parse(res);
    gg_free(res);
    w->removed += (long)cJSON_GetNumberValue(cJSON_GetObjectItem(rj, "removed"));
    w->dropped += (long)cJSON_GetNumberValue(cJSON_GetObjectItem(rj, "removed_documents"));
    cJSON_Delete(rj);
}

int cli_cmd_index(int argc, char **argv);
int cli_cmd_index(int argc, char **argv)
{
    static const struct option longs[] = {
        {"db", required_argument, NULL, OPT_DB},
        {"max-file-size", required_argument, NULL, OPT_MAX_FILE},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *db = default_db();
    unsigned max_file = DEFAULT_MAX_FILE;
    int quiet = 0, c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", longs, NULL)) != -1) {
        switch (c) {
        case OPT_DB: db = optarg; break;
        case OPT_MAX_FILE:
            if (cli_parse_uint("--max-file-size", optarg, 1, 64u << 20, &max_file))
                return CLI_EXIT_USAGE;
            break;
        case OPT_QUIET: quiet = 1; break;
        case 'h':
        case OPT_HELP:
            printf("usage: gryphgen index [--db PATH] [--max-file-size BYTES] [--quiet] "
                   "PATH...\n\nAdds files (directories recursively; hidden entries, links "
                   "inside trees and binary files are skipped) to the retrieval index in the "
                   "database (default: $GRYPHGEN_DB, else gryphgen.db). Python is chunked by "
                   "def/class, C by function, Markdown by section, other text by paragraph; "
                   "running it again only re-indexes what changed, and drops the files under "
                   "a given directory that are gone (solutions are kept).\n");
            return CLI_EXIT_OK;
        default: return cli_bad_option("index", c, argv, optind, optopt);
        }
    }
    if (optind >= argc) {
        cli_errorf("index: which files or directories? (gryphgen index [--db PATH] PATH...)");
        return CLI_EXIT_USAGE;
    }
    for (int i = optind; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            cli_errorf("index: cannot open '%s': %s", argv[i], strerror(errno));
            return CLI_EXIT_USAGE;
        }
    }
    walk w;
    memset(&w, 0, sizeof w);
    w.max_file = max_file;
    w.quiet = quiet;
    int rc = open_retriever(db, -1, -1, &w.r);
    if (rc)
        return rc;
    if (!realpath(db, w.db_real))
        w.db_real[0] = '\0';
    cli_catch_signals();
    for (int i = optind; i < argc && !cli_interrupted; i++) {
        w.seen = cJSON_CreateArray();
        w.truncated = 0;
        walk_path(&w, argv[i], 0);
        struct stat st;
        if (!cli_interrupted && !w.truncated && stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
            prune_gone(&w, argv[i]);
        cJSON_Delete(w.seen);
        w.seen = NULL;
    }
    gg_retriever_destroy(&w.r);
    if (!quiet)
        printf("indexed %ld files (%ld unchanged, %ld skipped, %ld failed): %ld chunks added, "
               "%ld unchanged, %ld removed; %ld files gone\n",
               w.files, w.unchanged_files, w.skipped, w.failed, w.added, w.unchanged,
               w.removed, w.dropped);
    if (cli_interrupted)
        return CLI_EXIT_SIGINT;
    return w.failed ? CLI_EXIT_INFRA : CLI_EXIT_OK;
}

/* ---- search ---- */

/* The n words as one query, separated by spaces (malloc'd; NULL when out of memory). */
static char *join_words(int n, char **words)
{
    size_t qlen = 1;
    for (int i = 0; i < n; i++)
        qlen += strlen(words[i]) + 1;
    char *text = malloc(qlen);
    if (!text)
        return NULL;
    text[0] = '\0';
    for (int i = 0; i < n; i++) {
        strcat(text, words[i]);
        if (i + 1 < n)
            strcat(text, " ");
    }
    return text;
}

/* The results for a reader: score, source:lines, title and the first lines of each. */
static void print_results(const char *res)
{
    cJSON *rj = cJSON_Parse(res);
    const cJSON *it;
    int n = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(rj, "results"))
    {
        const char *src = cJSON_GetStringValue(cJSON_GetObjectItem(it, "source"));
        const char *title = cJSON_GetStringValue(cJSON_GetObjectItem(it, "title"));
        const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(it, "text"));
        printf("%d. %.3f  %s:%d-%d%s%s\n", ++n,
               cJSON_GetNumberValue(cJSON_GetObjectItem(it, "score")), src ? src : "?",
               (int)cJSON_GetNumberValue(cJSON_GetObjectItem(it, "line_start")),
               (int)cJSON_GetNumberValue(cJSON_GetObjectItem(it, "line_end")),
               title && *title ? "  " : "", title ? title : "");
        for (int line = 0; t && *t && line < 3; line++) {
            size_t l = strcspn(t, "\n");
            printf("     %.*s%s\n", (int)(l > 100 ? 100 : l), t, l > 100 ? "..." : "");
            t += l;
            if (*t)
                t++;
        }
    }
    if (!n)
        printf("no results\n");
    cJSON_Delete(rj);
}

int cli_cmd_search(int argc, char **argv);
int cli_cmd_search(int argc, char **argv)
{
    static const struct option longs[] = {
        {"db", required_argument, NULL, OPT_DB},
        {"language", required_argument, NULL, OPT_LANGUAGE},
        {"weight", required_argument, NULL, OPT_WEIGHT},
        {"exploration", required_argument, NULL, OPT_EXPLORATION},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *db = default_db(), *lang = NULL;
    unsigned k = 5;
    double weight = -1, exploration = 0; /* a command line shows the best, not a draw */
    int json = 0, c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":hk:", longs, NULL)) != -1) {
        switch (c) {
        case OPT_DB: db = optarg; break;
        case 'k':
            if (cli_parse_uint("-k", optarg, 1, 100, &k))
                return CLI_EXIT_USAGE;
            break;
        case OPT_LANGUAGE: lang = optarg; break;
        case OPT_WEIGHT:
            if (parse_double("--weight", optarg, 0, 1e6, &weight))
                return CLI_EXIT_USAGE;
            break;
        case OPT_EXPLORATION:
            if (parse_double("--exploration", optarg, 0, 1, &exploration))
                return CLI_EXIT_USAGE;
            break;
        case OPT_JSON: json = 1; break;
        case 'h':
        case OPT_HELP:
            printf("usage: gryphgen search [--db PATH] [-k N] [--language L] [--weight W] "
                   "[--exploration E] [--json] QUERY...\n\nPrints the N best chunks of the "
                   "index (default 5): score, source:lines, title and first lines.\n");
            return CLI_EXIT_OK;
        default: return cli_bad_option("search", c, argv, optind, optopt);
        }
    }
    if (optind >= argc) {
        cli_errorf("search: what should it look for? (gryphgen search [--db PATH] QUERY)");
        return CLI_EXIT_USAGE;
    }
    if (access(db, F_OK) != 0) {
        cli_errorf("search: no index at %s (run gryphgen index first)", db);
        return CLI_EXIT_USAGE;
    }
    char *text = join_words(argc - optind, argv + optind);
    if (!text) {
        cli_errorf("search: out of memory");
        return CLI_EXIT_INFRA;
    }
    if (!text[strspn(text, " \t\r\n\f\v")]) {
        cli_errorf("search: the query is empty");
        free(text);
        return CLI_EXIT_USAGE;
    }
    gg_retriever_t *r = NULL;
    int rc = open_retriever(db, weight, exploration, &r);
    if (rc) {
        free(text);
        return rc;
    }
    cJSON *q = cJSON_CreateObject();
    char *qj = NULL;
    if (q && cJSON_AddStringToObject(q, "text", text) &&
        cJSON_AddNumberToObject(q, "k", k) &&
        (!lang || cJSON_AddStringToObject(q, "language", lang)))
        qj = cJSON_PrintUnformatted(q);
    cJSON_Delete(q);
    free(text);
    char *res = NULL;
    if (!qj || gg_retriever_search(r, qj, &res) != GG_OK) {
        cli_errorf("search: %s", qj ? gg_error_last() : "out of memory");
        cJSON_free(qj);
        gg_retriever_destroy(&r);
        return CLI_EXIT_INFRA;
    }
    cJSON_free(qj);
    gg_retriever_destroy(&r);
    if (json) {
        printf("%s\n", res);
        gg_free(res);
        return CLI_EXIT_OK;
    }
    print_results(res);
    gg_free(res);
    return CLI_EXIT_OK;
}

/* ---- search-serve ---- */

int cli_parse_listen(const char *what, const char *listen, char *host, size_t host_size,
                     unsigned *port)
{
    /* ADDRESS:PORT, [v6]:PORT */
    const char *colon = strrchr(listen, ':');
    const char *h = listen;
    size_t hl = colon ? (size_t)(colon - listen) : 0;
    if (hl >= 2 && listen[0] == '[' && listen[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (!colon || hl == 0 || hl >= host_size ||
        cli_parse_uint("port", colon + 1, 0, 65535, port)) {
        cli_errorf("%s wants ADDRESS:PORT, for example 127.0.0.1:8080", what);
        return CLI_EXIT_USAGE;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    return CLI_EXIT_OK;
}

int cli_http_needs_token(const char *what, const char *host, const char *option)
{
    if (ggi_http_address_is_loopback(host))
        return 0;
    cli_errorf("%s %s: refusing to serve the index without authentication on an address "
               "that is not loopback (anyone who reaches it could read learned solutions); "
               "put a secret token in an environment variable and give %s (clients send "
               "'Authorization: Bearer TOKEN'), or listen on 127.0.0.1; without a TLS "
               "certificate too the token crosses the network in clear text",
               what, host, option);
    return 1;
}

/* A PEM file of at most 1 MiB as a NUL-terminated text, or NULL with a message. */
static char *read_pem(const char *what, const char *path, int secret)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        cli_errorf("%s: cannot read '%s': %s", what, path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (secret && fstat(fileno(f), &st) == 0 && (st.st_mode & 077)) {
        cli_errorf("%s: '%s' holds a private key and group or others may access it "
                   "(chmod 600 it)", what, path);
        fclose(f);
        return NULL;
    }
    size_t cap = 1u << 20, n = 0;
    char *buf = malloc(cap + 1);
    if (buf)
        n = fread(buf, 1, cap + 1, f);
    int bad = !buf || ferror(f) || n > cap || n == 0 || !memchr(buf, '-', n);
    fclose(f);
    if (bad) {
        cli_errorf("%s: '%s' is empty, too large or not a PEM file", what, path);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

int cli_read_tls(const char *what, const char *cert_file, const char *key_file, char **cert,
                 char **key)
{
    *cert = *key = NULL;
    if (!cert_file && !key_file)
        return CLI_EXIT_OK;
    if (!cert_file || !key_file) {
        cli_errorf("%s: TLS needs both a certificate and its private key", what);
        return CLI_EXIT_USAGE;
    }
    if (!(*cert = read_pem(what, cert_file, 0)) || !(*key = read_pem(what, key_file, 1))) {
        cli_free_tls(cert, key);
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

void cli_free_tls(char **cert, char **key)
{
    free(*cert);
    *cert = NULL;
    if (*key) {
        memset(*key, 0, strlen(*key));
        free(*key);
        *key = NULL;
    }
}

int cli_cmd_search_serve(int argc, char **argv);
int cli_cmd_search_serve(int argc, char **argv)
{
    static const struct option longs[] = {
        {"db", required_argument, NULL, OPT_DB},
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"token-env", required_argument, NULL, OPT_TOKEN_ENV},
        {"cert", required_argument, NULL, OPT_CERT},
        {"key", required_argument, NULL, OPT_KEY},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *db = default_db(), *listen = "127.0.0.1:8080", *token_env = NULL;
    const char *cert_file = NULL, *key_file = NULL;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", longs, NULL)) != -1) {
        switch (c) {
        case OPT_DB: db = optarg; break;
        case OPT_LISTEN: listen = optarg; break;
        case OPT_TOKEN_ENV: token_env = optarg; break;
        case OPT_CERT: cert_file = optarg; break;
        case OPT_KEY: key_file = optarg; break;
        case 'h':
        case OPT_HELP:
            printf("usage: gryphgen search-serve [--db PATH] [--listen ADDRESS:PORT] "
                   "[--token-env VAR] [--cert FILE --key FILE]\n\nServes GET "
                   "/v1/search?q=TEXT&k=N from the index (default 127.0.0.1:8080; port 0 "
                   "picks a free one) until interrupted; prints the URL it listens on. With "
                   "--token-env, requests need 'Authorization: Bearer' and the token in $VAR; "
                   "an address that is not loopback needs it. With --cert and --key (PEM "
                   "certificate chain and private key) it serves HTTPS.\n");
            return CLI_EXIT_OK;
        default: return cli_bad_option("search-serve", c, argv, optind, optopt);
        }
    }
    if (optind < argc) {
        cli_errorf("search-serve: unexpected argument '%s'", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    char host[128];
    unsigned port = 0;
    if (cli_parse_listen("search-serve: --listen", listen, host, sizeof host, &port) != 0)
        return CLI_EXIT_USAGE;
    const char *token = NULL;
    if (token_env && !((token = getenv(token_env)) && *token)) {
        cli_errorf("search-serve: --token-env names $%s, which is not set", token_env);
        return CLI_EXIT_USAGE;
    }
    if (!token && cli_http_needs_token("search-serve: --listen", host, "--token-env VAR"))
        return CLI_EXIT_USAGE;
    char *cert = NULL, *key = NULL;
    if (cli_read_tls("search-serve", cert_file, key_file, &cert, &key) != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
    gg_retriever_t *r = NULL;
    int rc = open_retriever(db, -1, -1, &r);
    if (rc) {
        cli_free_tls(&cert, &key);
        return rc;
    }
    ggi_http_server *s = NULL;
    if (ggi_http_server_new(&s) || ggi_http_search_route(s, r) ||
        (token && ggi_http_server_set_token(s, token)) ||
        (cert && ggi_http_server_set_tls(s, cert, key)) ||
        ggi_http_server_start(s, host, port)) {
        cli_errorf("search-serve: %s", gg_error_last());
        int usage = gg_error_last_code() == GG_EINVAL;
        ggi_http_server_destroy(&s);
        gg_retriever_destroy(&r);
        cli_free_tls(&cert, &key);
        return usage ? CLI_EXIT_USAGE : CLI_EXIT_INFRA;
    }
    int https = cert != NULL;
    cli_free_tls(&cert, &key);
    cli_catch_signals();
    printf("listening on http%s://%s%s%s:%u\n", https ? "s" : "", strchr(host, ':') ? "[" : "", host,
           strchr(host, ':') ? "]" : "", ggi_http_server_port(s));
    fflush(stdout);
    while (!cli_interrupted) {
        struct timespec ts = { 0, 100 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    ggi_http_server_destroy(&s);
    gg_retriever_destroy(&r);
    return CLI_EXIT_OK;
}
