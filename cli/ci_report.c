/*
 * ci_report.c - eval's outputs for CI/CD (see ci_report.h): JUnit XML, the summary JSON, the
 * --fail-under gate, patch files and deliveries, through the public API only
 * (gg_workspace_format_patch, gg_workspace_deliver).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ci_report.h"
#include "cli.h"
#include "results_stream.h"

#define CI_TAIL_BYTES 4096       /* a failure's output tail in the JUnit file */
#define CI_MAX_NAME 200          /* bytes of a patch file's name before ".patch" */
#define CI_MAX_BRANCH 255        /* bytes of a task's own branch name */

struct ci_report {
    ci_options o;
    FILE *spool;            /* kept task lines: "<id bytes> <line bytes>\n" id line */
    int spool_read;         /* reading it back has started */
    char *next_id, *next_line; /* the spool's next record, read ahead */
    FILE *cases;            /* the JUnit test cases, written as tasks are told */
    unsigned long cases_n, failures, errors, skipped;
    char **names;           /* patch file names written in this run */
    size_t names_n, names_cap;
    char **done;            /* ids whose patch or delivery was handled (a set may name a
                             * task twice: it is handed over once) */
    size_t done_n, done_cap;
    unsigned long delivered, delivery_failures, patches, patch_failures;
};

/* ---- options ---- */

static int parse_percent(const char *arg, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    if (end != arg && *end == '%')
        end++;
    if (end == arg || *end || errno || !isfinite(v) || v < 0 || v > 100) {
        cli_errorf("eval: option --fail-under: '%s' is not a percentage from 0 to 100", arg);
        return -1;
    }
    *out = v;
    return 0;
}

int ci_option(ci_options *o, int c, const char *arg)
{
    static const char *const names[] = {"deliver", "patches", "junit", "fail-under",
                                        "summary-json"};
    if (c < CI_OPT_DELIVER || c > CI_OPT_SUMMARY_JSON)
        return 0;
    if (!*arg) {
        cli_errorf("eval: option --%s: empty value", names[c - CI_OPT_DELIVER]);
        return -1;
    }
    switch (c) {
    case CI_OPT_DELIVER:
        if (strcmp(arg, "branch") != 0) {
            cli_errorf("eval: option --deliver: '%s' is not a way to deliver (there is one: "
                       "--deliver branch)", arg);
            return -1;
        }
        o->deliver = 1;
        return 1;
    case CI_OPT_PATCHES: o->patches_dir = arg; return 1;
    case CI_OPT_JUNIT: o->junit_path = arg; return 1;
    case CI_OPT_SUMMARY_JSON: o->summary_path = arg; return 1;
    default:
        o->has_fail_under = 1;
        return parse_percent(arg, &o->fail_under) == 0 ? 1 : -1;
    }
}

/* mkdir -p: 0 or -1 (errno). */
static int make_dirs(const char *path)
{
    char *p = strdup(path);
    if (!p)
        return -1;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            free(p);
            return -1;
        }
        *s = '/';
    }
    int rc = mkdir(p, 0777) != 0 && errno != EEXIST ? -1 : 0;
    free(p);
    struct stat st;
    if (rc == 0 && (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))) {
        errno = ENOTDIR;
        return -1;
    }
    return rc;
}

/* The folder a file is to be written in is made when missing; the path must not be a
 * folder. */
static int check_file_place(const char *option, const char *path)
{
    struct stat st;
    char *copy = strdup(path);
    if (!copy)
        return -1;
    const char *dir = dirname(copy);
    int ok = make_dirs(dir) == 0;
    if (!ok)
        cli_errorf("eval: option --%s: '%s': cannot make the folder '%s': %s", option, path,
                   dir, strerror(errno));
    else if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        ok = 0, cli_errorf("eval: option --%s: '%s' is a folder", option, path);
    free(copy);
    return ok ? 0 : -1;
}

int ci_options_check(const ci_options *o)
{
    if (o->patches_dir && make_dirs(o->patches_dir) != 0) {
        cli_errorf("eval: option --patches: cannot make the folder '%s': %s", o->patches_dir,
                   strerror(errno));
        return -1;
    }
    if (o->junit_path && check_file_place("junit", o->junit_path) != 0)
        return -1;
    if (o->summary_path && check_file_place("summary-json", o->summary_path) != 0)
        return -1;
    return 0;
}

/* ---- the report ---- */

/* A temporary file in $TMPDIR (else /tmp), unlinked at once: NULL (errno) on failure. */
static FILE *temp_file(const char *what)
{
    const char *dir = getenv("TMPDIR");
    char path[4096];
    if (!dir || !*dir)
        dir = "/tmp";
    if ((size_t)snprintf(path, sizeof path, "%s/gryphgen-%s-XXXXXX", dir, what) >= sizeof path) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
        return NULL;
    unlink(path);
    FILE *f = fdopen(fd, "w+");
    if (!f)
        close(fd);
    return f;
}

int ci_report_new(ci_report **out, const ci_options *o)
{
    ci_report *r = calloc(1, sizeof *r);
    *out = NULL;
    if (!r) {
        cli_errorf("out of memory");
        return -1;
    }
    r->o = *o;
    if (!(r->spool = temp_file("lines"))) { /* a task's own "deliver" field may need it */
        cli_errorf("cannot create a temporary file for the task lines: %s", strerror(errno));
        ci_report_destroy(&r);
        return -1;
    }
    if (o->junit_path && !(r->cases = temp_file("junit"))) {
        cli_errorf("cannot create a temporary file for the JUnit cases: %s", strerror(errno));
        ci_report_destroy(&r);
        return -1;
    }
    *out = r;
    return 0;
}

void ci_report_destroy(ci_report **pr)
{
    ci_report *r = pr ? *pr : NULL;
    if (!r)
        return;
    if (r->spool)
        fclose(r->spool);
    if (r->cases)
        fclose(r->cases);
    free(r->next_id);
    free(r->next_line);
    for (size_t i = 0; i < r->names_n; i++)
        free(r->names[i]);
    free(r->names);
    for (size_t i = 0; i < r->done_n; i++)
        free(r->done[i]);
    free(r->done);
    free(r);
    *pr = NULL;
}

/* The task's "deliver" field: NULL when absent (or null). */
static const cJSON *deliver_field(const cJSON *task)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(task, "deliver");
    return d && !cJSON_IsNull(d) ? d : NULL;
}

int ci_report_check_line(const char *line, size_t len, char **reason)
{
    *reason = NULL;
    if (!memmem(line, len, "\"deliver\"", 9))
        return 0;
    cJSON *t = cJSON_ParseWithLength(line, len);
    const cJSON *d = deliver_field(t);
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(d, "branch");
    const char *why = NULL;
    if (!d)
        ;
    else if (!cJSON_IsObject(d))
        why = "field 'deliver' must be an object such as {\"branch\": \"NAME\"}";
    else if (b && !cJSON_IsNull(b) &&
             (!cJSON_IsString(b) || !*b->valuestring || strlen(b->valuestring) > CI_MAX_BRANCH))
        why = "field 'deliver.branch' must be a branch name (a string of 1 to 255 bytes)";
    if (why) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(t, "task_id");
        size_t n = strlen(why) + 300;
        *reason = malloc(n);
        if (*reason) {
            if (cJSON_IsString(id) && strlen(id->valuestring) <= 256)
                snprintf(*reason, n, "task '%s': %s", id->valuestring, why);
            else
                snprintf(*reason, n, "%s", why);
        }
    }
    cJSON_Delete(t);
    return why ? -1 : 0;
}

int ci_report_submitted(ci_report *r, const char *task_id, const char *line, size_t len)
{
    int wanted = memmem(line, len, "\"deliver\"", 9) != NULL ||
                 ((r->o.deliver || r->o.patches_dir) && memmem(line, len, "\"workspace\"", 11));
    if (!wanted)
        return 0;
    cJSON *t = cJSON_ParseWithLength(line, len);
    const cJSON *ws = cJSON_GetObjectItemCaseSensitive(t, "workspace");
    wanted = deliver_field(t) || ((r->o.deliver || r->o.patches_dir) && cJSON_IsObject(ws));
    cJSON_Delete(t);
    if (!wanted)
        return 0;
    size_t idlen = strlen(task_id);
    if (fprintf(r->spool, "%zu %zu\n", idlen, len) < 0 ||
        fwrite(task_id, 1, idlen, r->spool) != idlen || fwrite(line, 1, len, r->spool) != len) {
        cli_errorf("cannot write the temporary file of task lines: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* Reads the spool's next record into next_id/next_line (NULL at its end). */
static void spool_advance(ci_report *r)
{
    char head[64];
    size_t idlen, len;
    free(r->next_id);
    free(r->next_line);
    r->next_id = r->next_line = NULL;
    if (!fgets(head, sizeof head, r->spool) || sscanf(head, "%zu %zu", &idlen, &len) != 2)
        return;
    r->next_id = malloc(idlen + 1);
    r->next_line = malloc(len + 1);
    if (!r->next_id || !r->next_line || fread(r->next_id, 1, idlen, r->spool) != idlen ||
        fread(r->next_line, 1, len, r->spool) != len) {
        free(r->next_id);
        free(r->next_line);
        r->next_id = r->next_line = NULL;
        return;
    }
    r->next_id[idlen] = '\0';
    r->next_line[len] = '\0';
}

/* The kept line of task_id, when it is the spool's next (tasks come in the set's order);
 * malloc'd, or NULL. */
static char *spool_take(ci_report *r, const char *task_id)
{
    if (!r->spool_read) {
        r->spool_read = 1;
        if (fflush(r->spool) != 0 || fseek(r->spool, 0, SEEK_SET) != 0)
            return NULL;
        spool_advance(r);
    }
    if (!r->next_id || strcmp(r->next_id, task_id) != 0)
        return NULL;
    char *line = r->next_line;
    r->next_line = NULL;
    spool_advance(r);
    return line;
}

/* ---- files written whole ---- */

/* Opens a new file beside path (its final name comes at atomic_commit). */
static FILE *atomic_open(const char *path, char **tmp)
{
    size_t n = strlen(path) + 16;
    *tmp = malloc(n);
    if (!*tmp)
        return NULL;
    snprintf(*tmp, n, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(*tmp);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        int e = errno;
        if (fd >= 0) {
            close(fd);
            unlink(*tmp);
        }
        free(*tmp);
        *tmp = NULL;
        errno = e;
        return NULL;
    }
    fchmod(fd, 0644);
    return f;
}

/* Closes f and renames it to path; on any failure removes it. 0 or -1 (errno). */
static int atomic_commit(FILE *f, char *tmp, const char *path)
{
    int rc = ferror(f) ? -1 : 0;
    int e = errno;
    if (fclose(f) != 0 && rc == 0)
        rc = -1, e = errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -1, e = errno;
    if (rc != 0)
        unlink(tmp);
    free(tmp);
    errno = e;
    return rc;
}

/* ---- JUnit ---- */

/* Writes text as XML character data (attr: inside an attribute value): valid UTF-8, the
 * characters XML forbids (controls but tab and line breaks, U+FFFE, U+FFFF) left out, markup
 * characters as entities (so no "]]>" can occur either). */
static void xml_put(FILE *f, const char *text, size_t len, int attr)
{
    char *clean = results_utf8_clean(text ? text : "", text ? len : 0);
    if (!clean)
        return;
    for (const unsigned char *p = (const unsigned char *)clean; *p; p++) {
        unsigned char c = *p;
        if (c == 0xEF && p[1] == 0xBF && (p[2] == 0xBE || p[2] == 0xBF)) {
            p += 2;
            continue;
        }
        switch (c) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs(attr ? "&quot;" : "\"", f); break;
        case '\t': fputs(attr ? "&#9;" : "\t", f); break;
        case '\n': fputs(attr ? "&#10;" : "\n", f); break;
        case '\r': fputs("&#13;", f); break;
        default:
            if (c >= 0x20 && c != 0x7f)
                fputc(c, f);
        }
    }
    free(clean);
}

static void xml_puts(FILE *f, const char *text, int attr)
{
    xml_put(f, text, text ? strlen(text) : 0, attr);
}

static const char *str_of(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* How many bytes of s[0..len) from the end fit in max, starting at a character. */
static size_t tail_start(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return 0;
    size_t start = len - max;
    while (start < len && ((unsigned char)s[start] & 0xC0) == 0x80)
        start++;
    return start;
}

/* The last attempt's output: stderr's and stdout's tails, CI_TAIL_BYTES in all. */
static void put_output_tail(FILE *f, const cJSON *result)
{
    const cJSON *hist = cJSON_GetObjectItemCaseSensitive(result, "history");
    const cJSON *last = cJSON_IsArray(hist) ? cJSON_GetArrayItem(hist,
                                                                 cJSON_GetArraySize(hist) - 1)
                                            : NULL;
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(last, "execution");
    const char *err = str_of(ex, "stderr"), *out = str_of(ex, "stdout");
    const char *why = str_of(last, "reason");
    size_t elen = err ? strlen(err) : 0, olen = out ? strlen(out) : 0;
    size_t obudget = olen < CI_TAIL_BYTES / 2 ? olen : CI_TAIL_BYTES / 2;
    size_t ekeep = elen < CI_TAIL_BYTES - obudget ? elen : CI_TAIL_BYTES - obudget;
    size_t okeep = olen < CI_TAIL_BYTES - ekeep ? olen : CI_TAIL_BYTES - ekeep;
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(last, "n");

    if (!last) { /* no attempt was made: the task's reason is all there is */
        xml_puts(f, str_of(result, "reason"), 0);
        return;
    }
    if (cJSON_IsNumber(n))
        fprintf(f, "attempt %d", n->valueint);
    if (why) {
        fputs(cJSON_IsNumber(n) ? ": " : "", f);
        xml_puts(f, why, 0);
    }
    if (ekeep) {
        size_t s = tail_start(err, elen, ekeep);
        fputs(s ? "\n--- stderr (tail) ---\n" : "\n--- stderr ---\n", f);
        xml_put(f, err + s, elen - s, 0);
    }
    if (okeep) {
        size_t s = tail_start(out, olen, okeep);
        fputs(s ? "\n--- stdout (tail) ---\n" : "\n--- stdout ---\n", f);
        xml_put(f, out + s, olen - s, 0);
    }
}

static void junit_case(ci_report *r, const char *task_id, const cJSON *result)
{
    FILE *f = r->cases;
    const char *status = str_of(result, "status");
    const char *reason = str_of(result, "reason");
    const cJSON *dur = cJSON_GetObjectItemCaseSensitive(result, "duration_ms");
    double secs = cJSON_IsNumber(dur) && dur->valuedouble > 0 ? dur->valuedouble / 1000 : 0;
    if (!f)
        return;
    r->cases_n++;
    fputs("    <testcase classname=\"gryphgen\" name=\"", f);
    xml_puts(f, task_id, 1);
    fprintf(f, "\" time=\"%.3f\"", secs);
    if (status && strcmp(status, "passed") == 0) {
        fputs("/>\n", f);
        return;
    }
    if (status && strcmp(status, "cancelled") == 0) {
        r->skipped++;
        fputs(">\n      <skipped message=\"cancelled\"/>\n    </testcase>\n", f);
        return;
    }
    int failed = status && strcmp(status, "failed") == 0;
    if (failed)
        r->failures++;
    else
        r->errors++;
    fprintf(f, ">\n      <%s message=\"", failed ? "failure" : "error");
    xml_puts(f, reason ? reason : status ? status : "no status", 1);
    fprintf(f, "\" type=\"%s\">", failed ? "failed" : "error");
    put_output_tail(f, result);
    fprintf(f, "</%s>\n    </testcase>\n", failed ? "failure" : "error");
}

/* An error case without a result: a bad line, or a task whose result could not be read. */
static void junit_error(ci_report *r, unsigned long long line, const char *task_id,
                        const char *reason, const char *type)
{
    FILE *f = r->cases;
    char name[64];
    if (!f)
        return;
    r->cases_n++;
    r->errors++;
    snprintf(name, sizeof name, "line %llu", line);
    fputs("    <testcase classname=\"gryphgen\" name=\"", f);
    xml_puts(f, task_id ? task_id : name, 1);
    fputs("\" time=\"0.000\">\n      <error message=\"", f);
    xml_puts(f, reason, 1);
    fprintf(f, "\" type=\"%s\">input line %llu: ", type, line);
    xml_puts(f, reason, 0);
    fputs("</error>\n    </testcase>\n", f);
}

void ci_report_bad(ci_report *r, unsigned long long line, const char *task_id,
                   const char *reason)
{
    junit_error(r, line, task_id, reason, "bad input");
}

/* ---- patches and deliveries ---- */

/* Adds s to a list of strings unless it is there: 1 when added, 0 when it was there (or
 * memory ran out). */
static int list_add(char ***list, size_t *n, size_t *cap, const char *s)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*list)[i], s) == 0)
            return 0;
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        char **nl = realloc(*list, c * sizeof *nl);
        if (!nl)
            return 0;
        *list = nl;
        *cap = c;
    }
    char *copy = strdup(s);
    if (!copy)
        return 0;
    (*list)[(*n)++] = copy;
    return 1;
}

/* The file name of a task's patch: bytes other than letters, digits, '.', '_' and '-' as
 * '_', no leading dot, cut at CI_MAX_NAME, made unique within the run ("-2", "-3"...). */
static char *patch_name(ci_report *r, const char *task_id)
{
    char base[CI_MAX_NAME + 1];
    size_t n = 0;
    for (const char *s = task_id; *s && n < CI_MAX_NAME; s++) {
        unsigned char c = (unsigned char)*s;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-';
        base[n++] = ok ? (char)c : '_';
    }
    base[n] = '\0';
    if (n == 0)
        snprintf(base, sizeof base, "task");
    if (base[0] == '.')
        base[0] = '_';
    char name[CI_MAX_NAME + 32];
    for (unsigned k = 1; k < 1000000; k++) {
        if (k == 1)
            snprintf(name, sizeof name, "%s", base);
        else
            snprintf(name, sizeof name, "%s-%u", base, k);
        if (list_add(&r->names, &r->names_n, &r->names_cap, name))
            return strdup(name); /* the caller's copy */
    }
    return NULL;
}

static void write_patch(ci_report *r, const char *task_id, const char *line,
                        const char *result)
{
    char *text = NULL, *tmp = NULL;
    int rc = gg_workspace_format_patch(line, result, &text);
    if (rc != GG_OK) {
        cli_errorf("task '%s': no patch file: %s", task_id, gg_error_last());
        r->patch_failures++;
        return;
    }
    char *name = patch_name(r, task_id);
    size_t n = strlen(r->o.patches_dir) + (name ? strlen(name) : 0) + 16;
    char *path = malloc(n);
    FILE *f = NULL;
    if (name && path) {
        snprintf(path, n, "%s/%s.patch", r->o.patches_dir, name);
        f = atomic_open(path, &tmp);
    }
    if (!f || (fputs(text, f), atomic_commit(f, tmp, path)) != 0) {
        cli_errorf("task '%s': cannot write its patch file %s: %s", task_id,
                   path ? path : "", name && path ? strerror(errno) : "out of memory");
        r->patch_failures++;
    } else {
        r->patches++;
    }
    free(path);
    free(name);
    gg_free(text);
}

/* Whether a repository is given by URL (see gryphgen/workspace.h): scheme://..., or
 * host:path as git reads it. */
static int repo_is_url(const char *repo)
{
    const char *colon = strchr(repo, ':'), *slash = strchr(repo, '/');
    return strstr(repo, "://") || (colon && colon != repo && (!slash || colon < slash));
}

static void deliver(ci_report *r, const char *task_id, const char *line, const char *result,
                    const char *branch)
{
    gg_deliver_options opts = GG_DELIVER_OPTIONS_INIT;
    char *out = NULL;
    opts.branch = branch;
    int rc = gg_workspace_deliver(line, result, &opts, &out);
    if (rc != GG_OK) {
        const char *msg = gg_error_last();
        cli_errorf("delivery of task '%s' failed: %s", task_id, *msg ? msg : gg_strerror(rc));
        r->delivery_failures++;
        return;
    }
    cJSON *o = cJSON_Parse(out);
    const char *ref = str_of(o, "branch"), *sha = str_of(o, "commit");
    if (ref && strncmp(ref, "refs/heads/", 11) == 0)
        ref += 11;
    cli_errorf("delivered %s to %s (%s)", task_id, ref ? ref : "?", sha ? sha : "?");
    r->delivered++;
    cJSON_Delete(o);
    gg_free(out);
}

void ci_report_task(ci_report *r, const char *task_id, const char *result,
                    const cJSON *parsed, int complete)
{
    junit_case(r, task_id, parsed);
    if (!complete)
        return;
    char *line = spool_take(r, task_id);
    const char *status = str_of(parsed, "status");
    if (!line || !status || strcmp(status, "passed") != 0 ||
        !list_add(&r->done, &r->done_n, &r->done_cap, task_id)) {
        free(line); /* a task that did not pass is never delivered; one named twice, once */
        return;
    }
    cJSON *task = cJSON_Parse(line);
    const cJSON *ws = cJSON_GetObjectItemCaseSensitive(task, "workspace");
    const cJSON *d = deliver_field(task);
    const char *repo = str_of(ws, "repo");
    const char *patch = str_of(parsed, "patch");
    int has_patch = patch && *patch;

    if (has_patch && r->o.patches_dir)
        write_patch(r, task_id, line, result);
    if (d) { /* the task asks for it: anything in the way is an error */
        const char *branch = str_of(d, "branch");
        if (!repo) {
            cli_errorf("delivery of task '%s' failed: it asks for one (field 'deliver') but "
                       "has no workspace.repo to deliver into", task_id);
            r->delivery_failures++;
        } else if (!has_patch) {
            cli_errorf("task '%s' passed without a change to its repository: nothing to "
                       "deliver", task_id);
        } else {
            deliver(r, task_id, line, result, branch);
        }
    } else if (r->o.deliver && repo) {
        if (repo_is_url(repo))
            cli_errorf("task '%s' is not delivered: its workspace.repo '%s' is a URL (deliver "
                       "into a local clone)", task_id, repo);
        else if (!has_patch)
            cli_errorf("task '%s' passed without a change to its repository: nothing to "
                       "deliver", task_id);
        else
            deliver(r, task_id, line, result, NULL);
    }
    cJSON_Delete(task);
    free(line);
}

void ci_report_no_result(ci_report *r, unsigned long long line, const char *task_id,
                         const char *reason)
{
    junit_error(r, line, task_id, reason, "no result");
    free(spool_take(r, task_id)); /* its kept line, so the next task finds its own */
}

/* ---- the end ---- */

static int write_junit(ci_report *r, const ci_counts *c)
{
    char *tmp = NULL, buf[1 << 14];
    const char *path = r->o.junit_path;
    FILE *f = atomic_open(path, &tmp);
    size_t n;
    if (!f)
        return -1;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<testsuites name=\"gryphgen\" tests=\"%lu\" failures=\"%lu\" errors=\"%lu\" "
               "skipped=\"%lu\" time=\"%.3f\">\n"
               "  <testsuite name=\"gryphgen\" tests=\"%lu\" failures=\"%lu\" errors=\"%lu\" "
               "skipped=\"%lu\" time=\"%.3f\">\n",
            r->cases_n, r->failures, r->errors, r->skipped, c->wall_s, r->cases_n,
            r->failures, r->errors, r->skipped, c->wall_s);
    if (fflush(r->cases) != 0 || fseek(r->cases, 0, SEEK_SET) != 0) {
        fclose(f);
        unlink(tmp);
        free(tmp);
        return -1;
    }
    while ((n = fread(buf, 1, sizeof buf, r->cases)) > 0)
        fwrite(buf, 1, n, f);
    fputs("  </testsuite>\n</testsuites>\n", f);
    return atomic_commit(f, tmp, path);
}

static int write_summary(ci_report *r, const ci_counts *c, int interrupted, double rate,
                         int met)
{
    cJSON *s = cJSON_CreateObject();
    unsigned long passed = c->passed_first + c->passed_repair;
    char *text, *tmp = NULL;
    int rc = -1;
    if (!s)
        return -1;
    cJSON_AddNumberToObject(s, "total", (double)c->total);
    cJSON_AddNumberToObject(s, "passed", (double)passed);
    cJSON_AddNumberToObject(s, "passed_first", (double)c->passed_first);
    cJSON_AddNumberToObject(s, "passed_after_repair", (double)c->passed_repair);
    cJSON_AddNumberToObject(s, "failed", (double)c->failed);
    cJSON_AddNumberToObject(s, "errors", (double)c->errors);
    cJSON_AddNumberToObject(s, "bad_lines", (double)c->bad_lines);
    cJSON_AddNumberToObject(s, "cancelled", (double)c->cancelled);
    cJSON_AddNumberToObject(s, "attempts", (double)c->attempts);
    cJSON_AddNumberToObject(s, "wall_s", round(c->wall_s * 1000) / 1000);
    cJSON_AddNumberToObject(s, "pass_rate", c->total ? (double)passed / (double)c->total : 0);
    cJSON_AddNumberToObject(s, "pass_percent", rate);
    if (r->o.has_fail_under) {
        cJSON_AddNumberToObject(s, "fail_under", r->o.fail_under);
        if (interrupted)
            cJSON_AddNullToObject(s, "fail_under_met");
        else
            cJSON_AddBoolToObject(s, "fail_under_met", met);
    } else {
        cJSON_AddNullToObject(s, "fail_under");
        cJSON_AddNullToObject(s, "fail_under_met");
    }
    cJSON_AddNumberToObject(s, "delivered", (double)r->delivered);
    cJSON_AddNumberToObject(s, "delivery_failures", (double)r->delivery_failures);
    cJSON_AddNumberToObject(s, "patches", (double)r->patches);
    cJSON_AddBoolToObject(s, "interrupted", interrupted);
    text = cJSON_Print(s);
    cJSON_Delete(s);
    FILE *f = text ? atomic_open(r->o.summary_path, &tmp) : NULL;
    if (f) {
        fputs(text, f);
        fputc('\n', f);
        rc = atomic_commit(f, tmp, r->o.summary_path);
    }
    free(text);
    return rc;
}

int ci_report_finish(ci_report *r, const ci_counts *c, int interrupted)
{
    unsigned long passed = c->passed_first + c->passed_repair;
    double rate = c->total ? 100.0 * (double)passed / (double)c->total : 0;
    int met = !r->o.has_fail_under || rate >= r->o.fail_under;
    int status = 0;

    if (r->o.junit_path && write_junit(r, c) != 0) {
        cli_errorf("cannot write the JUnit file %s: %s", r->o.junit_path, strerror(errno));
        status = 1;
    }
    if (r->o.summary_path && write_summary(r, c, interrupted, rate, met) != 0) {
        cli_errorf("cannot write the summary %s: %s", r->o.summary_path, strerror(errno));
        status = 1;
    }
    if (interrupted)
        return status;
    if (r->delivery_failures) {
        cli_errorf("%lu deliver%s failed (exit status 1)", r->delivery_failures,
                   r->delivery_failures == 1 ? "y" : "ies");
        status = 1;
    }
    if (r->patch_failures) {
        cli_errorf("%lu patch file%s could not be written (exit status 1)", r->patch_failures,
                   r->patch_failures == 1 ? "" : "s");
        status = 1;
    }
    if (!met) {
        cli_errorf("%lu of %lu tasks passed (%.2f%%), under --fail-under %g (exit status 1)",
                   passed, c->total, rate, r->o.fail_under);
        status = 1;
    }
    return status;
}
