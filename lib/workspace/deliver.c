/*
 * deliver.c - the public delivery of a passing workspace task (gryphgen/workspace.h): its
 * patch committed onto a new branch of the task's repository with libgit2, written only
 * into the object database and one new reference (never HEAD, the index or the working
 * tree), and the same commit rendered as a `git format-patch` mail that `git am` applies.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <git2.h>

#include "../core/ggi.h"
#include "../core/options.h"
#include "gryphgen/workspace.h"

#define DELIVER_MAX_JSON ((size_t)96 << 20)  /* a task or result text */
#define DELIVER_MAX_PATCH ((size_t)64 << 20) /* the patch of a result */
#define DELIVER_MAX_ID 1024                  /* a task id */
#define DELIVER_MAX_BRANCH 200               /* bytes of a branch name (after refs/heads/) */
#define DELIVER_MAX_BODY ((size_t)16 << 10)  /* the prompt's part of a commit message */
#define DELIVER_SUBJECT_CHARS 72             /* characters of the first line */
#define DELIVER_LOCK_TRIES 500               /* waits for a reference another writer locked */
#define DELIVER_LOCK_WAIT_MS 10
#define DELIVER_DEFAULT_NAME "gryphgen"
#define DELIVER_DEFAULT_EMAIL "gryphgen@localhost"

/* What a delivery reads from the task and its result (pointers into the parsed JSON). */
typedef struct deliver_input {
    cJSON *task, *result;
    const char *task_id;
    const char *prompt;      /* NULL: none */
    const char *patch;
    const char *base_commit; /* NULL: resolve ref */
    const char *repo;        /* NULL: the task has no workspace.repo */
    const char *ref;         /* NULL: HEAD */
    long long attempt;       /* 0: unknown */
} deliver_input;

static void input_free(deliver_input *in)
{
    cJSON_Delete(in->task);
    cJSON_Delete(in->result);
    memset(in, 0, sizeof *in);
}

static int parse_doc(const char *text, const char *what, cJSON **out)
{
    if (!text)
        return ggi_error(GG_EINVAL, "the %s JSON is NULL", what);
    size_t len = strlen(text);
    if (len > DELIVER_MAX_JSON)
        return ggi_error(GG_ETOOBIG, "the %s JSON is %zu bytes, the limit is %zu", what, len,
                         DELIVER_MAX_JSON);
    int rc = ggi_json_parse(text, len, out);
    if (rc != GG_OK)
        return ggi_error_wrap("the %s JSON: ", what);
    if (!cJSON_IsObject(*out)) {
        cJSON_Delete(*out);
        *out = NULL;
        return ggi_error(GG_EINVAL, "the %s JSON must be an object", what);
    }
    return GG_OK;
}

static int is_hex40(const char *s)
{
    size_t i;
    for (i = 0; s[i]; i++)
        if (!isxdigit((unsigned char)s[i]))
            return 0;
    return i == 40;
}

/*
 * Parses and checks what both calls need: a task and a result that passed with a patch.
 * Errors name the field. The workspace is read but not required (format-patch needs none).
 */
static int input_parse(const char *task_json, const char *result_json, deliver_input *in)
{
    const char *status = NULL, *rid = NULL;
    int rc;

    memset(in, 0, sizeof *in);
    if ((rc = parse_doc(task_json, "task", &in->task)) != GG_OK ||
        (rc = parse_doc(result_json, "result", &in->result)) != GG_OK)
        return rc;
    if ((rc = ggi_json_string(in->task, "task_id", 0, DELIVER_MAX_ID, &in->task_id)))
        return ggi_error_wrap("the task: ");
    if ((rc = ggi_json_string(in->result, "task_id", 0, DELIVER_MAX_ID, &rid)))
        return ggi_error_wrap("the result: ");
    if (in->task_id && rid && strcmp(in->task_id, rid) != 0)
        return ggi_error(GG_EINVAL, "the result is task '%s''s, not task '%s''s", rid,
                         in->task_id);
    if (!in->task_id)
        in->task_id = rid;
    if (!in->task_id || !*in->task_id)
        return ggi_error(GG_EINVAL, "neither the task nor the result has a 'task_id'");
    if ((rc = ggi_json_string(in->task, "prompt", 0, 0, &in->prompt)))
        return ggi_error_wrap("task '%s': ", in->task_id);

    if ((rc = ggi_json_string(in->result, "status", 1, 64, &status)))
        return ggi_error_wrap("task '%s': result: ", in->task_id);
    if (strcmp(status, "passed") != 0)
        return ggi_error(GG_ESTATE, "task '%s' is %s, not passed: only a passing task is "
                         "delivered", in->task_id, status);
    if ((rc = ggi_json_string(in->result, "patch", 0, DELIVER_MAX_PATCH, &in->patch)))
        return ggi_error_wrap("task '%s': result: ", in->task_id);
    if (!in->patch || !*in->patch)
        return ggi_error(GG_ESTATE, "task '%s' passed without a patch (field 'patch' of its "
                         "result): there is nothing to deliver", in->task_id);
    if ((rc = ggi_json_string(in->result, "base_commit", 0, 64, &in->base_commit)))
        return ggi_error_wrap("task '%s': result: ", in->task_id);
    if (in->base_commit && !is_hex40(in->base_commit))
        return ggi_error(GG_EINVAL, "task '%s': result field 'base_commit' must be a commit "
                         "id of 40 hex digits, not '%.64s'", in->task_id, in->base_commit);
    if ((rc = ggi_json_int(in->result, "passed_attempt", 0, 1, 1000000, &in->attempt)))
        return ggi_error_wrap("task '%s': result: ", in->task_id);

    const cJSON *ws = cJSON_GetObjectItemCaseSensitive(in->task, "workspace");
    if (ws && !cJSON_IsNull(ws)) {
        if (!cJSON_IsObject(ws))
            return ggi_error(GG_EINVAL, "task '%s': field 'workspace' must be an object",
                             in->task_id);
        if ((rc = ggi_json_string(ws, "repo", 0, 4096, &in->repo)) ||
            (rc = ggi_json_string(ws, "ref", 0, 1024, &in->ref)))
            return ggi_error_wrap("task '%s': workspace: ", in->task_id);
    }
    return GG_OK;
}

/* ---- the commit message ---- */

/* Appends s[0..n) with control characters (tabs and newlines too) as spaces. */
static int put_oneline(ggi_buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char out = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
        if (ggi_buf_append(b, &out, 1) != GG_OK)
            return GG_ENOMEM;
    }
    return GG_OK;
}

/* The first line: the prompt's first non-blank line, trimmed, at most 72 characters (cut at
 * the end of a word when one ends in its second half, else at a character boundary), or
 * "gryphgen: task <id>". */
static int make_subject(const deliver_input *in, ggi_buf *b)
{
    const char *p = in->prompt ? in->prompt : "";
    while (*p) {
        const char *end = p + strcspn(p, "\n");
        const char *s = p, *e = end;
        while (s < e && isspace((unsigned char)*s))
            s++;
        while (e > s && isspace((unsigned char)e[-1]))
            e--;
        if (e > s) {
            size_t n = 0, chars = 0;
            while (s + n < e && chars < DELIVER_SUBJECT_CHARS) {
                size_t k = ggi_utf8_seq((const unsigned char *)s + n, (size_t)(e - s) - n);
                n += k ? k : 1;
                chars++;
            }
            if (s + n < e && !isspace((unsigned char)s[n])) { /* cut: at a word's end */
                size_t w = n;
                while (w > 0 && !isspace((unsigned char)s[w - 1]))
                    w--;
                if (w > n / 2)
                    n = w;
            }
            while (n > 0 && isspace((unsigned char)s[n - 1]))
                n--;
            return put_oneline(b, s, n);
        }
        p = *end ? end + 1 : end;
    }
    if (ggi_buf_puts(b, "gryphgen: task ") != GG_OK)
        return GG_ENOMEM;
    return put_oneline(b, in->task_id, strlen(in->task_id));
}

/* Whether mail is a line `git am` would take as the end of the message (the "---" before
 * the diff, a diff header, a mbox separator): such prompt lines are indented by one space
 * in the format-patch mail. */
static int is_mail_break(const char *line, size_t n)
{
    return (n >= 3 && strncmp(line, "---", 3) == 0) || (n >= 5 && strncmp(line, "diff ", 5) == 0)
           || (n >= 7 && strncmp(line, "Index: ", 7) == 0) ||
           (n >= 5 && strncmp(line, "From ", 5) == 0) || (n >= 3 && strncmp(line, "-- ", 3) == 0);
}

/*
 * The message: subject, blank line, the prompt (without its first line when that is the
 * subject whole; CRLF made LF, trailing blanks and blank lines at its ends dropped, cut at
 * DELIVER_MAX_BODY), blank line, the trailers. mail: indent lines `git am` would stop at. The subject
 * goes to *subject_len bytes at the start.
 */
static int make_message(const deliver_input *in, int mail, ggi_buf *b, size_t *subject_len)
{
    int rc = make_subject(in, b);
    if (rc != GG_OK)
        return rc;
    *subject_len = b->len;

    const char *p = in->prompt ? in->prompt : "";
    const char *pend = p + strlen(p);
    while (p < pend && isspace((unsigned char)*p)) /* leading blank lines and spaces */
        p++;
    while (pend > p && isspace((unsigned char)pend[-1]))
        pend--;
    /* the first line, when the subject holds it whole, is not repeated: the body is the
     * rest (as `git commit` makes a message's first paragraph its subject) */
    const char *nl = memchr(p, '\n', (size_t)(pend - p));
    const char *le = nl ? nl : pend, *te = le;
    while (te > p && isspace((unsigned char)te[-1]))
        te--;
    if ((size_t)(te - p) == *subject_len && memcmp(p, b->data, *subject_len) == 0) {
        p = le;
        while (p < pend && isspace((unsigned char)*p))
            p++;
    }
    int truncated = 0;
    if ((size_t)(pend - p) > DELIVER_MAX_BODY) {
        const char *cut = p + DELIVER_MAX_BODY;
        while (cut > p && (((unsigned char)*cut & 0xc0) == 0x80))
            cut--; /* not inside a character */
        pend = cut;
        truncated = 1;
    }
    if (pend > p) {
        if (ggi_buf_puts(b, "\n\n") != GG_OK)
            return GG_ENOMEM;
        while (p < pend) {
            const char *nl = memchr(p, '\n', (size_t)(pend - p));
            const char *le = nl ? nl : pend;
            const char *te = le;
            while (te > p && (te[-1] == '\r' || te[-1] == ' ' || te[-1] == '\t'))
                te--;
            if (mail && is_mail_break(p, (size_t)(te - p)) && ggi_buf_puts(b, " ") != GG_OK)
                return GG_ENOMEM;
            for (const char *q = p; q < te; q++) { /* controls but tabs become spaces */
                unsigned char c = (unsigned char)*q;
                char out = (c < 0x20 && c != '\t') || c == 0x7f ? ' ' : (char)c;
                if (ggi_buf_append(b, &out, 1) != GG_OK)
                    return GG_ENOMEM;
            }
            if (ggi_buf_puts(b, "\n") != GG_OK)
                return GG_ENOMEM;
            p = nl ? nl + 1 : pend;
        }
        if (truncated && ggi_buf_puts(b, "[the prompt is cut here]\n") != GG_OK)
            return GG_ENOMEM;
    } else if (ggi_buf_puts(b, "\n") != GG_OK) {
        return GG_ENOMEM;
    }
    if (ggi_buf_puts(b, "\nGryphgen-Task: ") != GG_OK ||
        put_oneline(b, in->task_id, strlen(in->task_id)) != GG_OK)
        return GG_ENOMEM;
    if (in->attempt > 0 && ggi_buf_printf(b, "\nGryphgen-Attempt: %lld", in->attempt) != GG_OK)
        return GG_ENOMEM;
    return ggi_buf_puts(b, "\n") == GG_OK ? GG_OK : GG_ENOMEM;
}

/* ---- identities and times ---- */

static const char *env_or(const char *given, const char *var, const char *fallback)
{
    if (given && *given)
        return given;
    const char *v = var ? getenv(var) : NULL;
    return v && *v ? v : fallback;
}

/*
 * The time of a signature: var ($GIT_AUTHOR_DATE, $GIT_COMMITTER_DATE) in git's internal
 * form "SECONDS [+-]HHMM" (also "@SECONDS [+-]HHMM"), else now in UTC. Another form is
 * GG_EINVAL naming the variable.
 */
static int sig_time(const char *var, git_time_t *when, int *offset_min)
{
    const char *v = getenv(var);
    *when = (git_time_t)time(NULL);
    *offset_min = 0;
    if (!v || !*v)
        return GG_OK;
    const char *p = v + (*v == '@');
    char *end;
    long long secs = strtoll(p, &end, 10);
    int sign = 0, hh = 0, mm = 0;
    if (end != p && *end == ' ' && (end[1] == '+' || end[1] == '-') &&
        isdigit((unsigned char)end[2]) && isdigit((unsigned char)end[3]) &&
        isdigit((unsigned char)end[4]) && isdigit((unsigned char)end[5]) && end[6] == '\0') {
        sign = end[1] == '-' ? -1 : 1;
        hh = (end[2] - '0') * 10 + (end[3] - '0');
        mm = (end[4] - '0') * 10 + (end[5] - '0');
    }
    if (!sign || secs < 0 || hh > 23 || mm > 59)
        return ggi_error(GG_EINVAL, "$%s is '%.64s': the form gryphgen reads is "
                         "\"SECONDS +HHMM\" (git's internal date form), e.g. "
                         "\"1700000000 +0000\"", var, v);
    *when = (git_time_t)secs;
    *offset_min = sign * (hh * 60 + mm);
    return GG_OK;
}

typedef struct identity {
    const char *name, *email;
    git_time_t when;
    int offset_min;
} identity;

/* The author and committer the options and environment give (see gryphgen/workspace.h). */
static int identities(const gg_deliver_options *opts, identity *author, identity *committer)
{
    int rc;
    author->name = env_or(opts ? opts->author_name : NULL, "GIT_AUTHOR_NAME",
                          DELIVER_DEFAULT_NAME);
    author->email = env_or(opts ? opts->author_email : NULL, "GIT_AUTHOR_EMAIL",
                           DELIVER_DEFAULT_EMAIL);
    committer->name = env_or(opts ? opts->committer_name : NULL, "GIT_COMMITTER_NAME",
                             author->name);
    committer->email = env_or(opts ? opts->committer_email : NULL, "GIT_COMMITTER_EMAIL",
                              author->email);
    if ((rc = sig_time("GIT_AUTHOR_DATE", &author->when, &author->offset_min)) ||
        (rc = sig_time("GIT_COMMITTER_DATE", &committer->when, &committer->offset_min)))
        return rc;
    const char *values[4] = {author->name, author->email, committer->name, committer->email};
    static const char *const what[4] = {"author's name", "author's email", "committer's name",
                                        "committer's email"};
    for (int i = 0; i < 4; i++)
        if (strpbrk(values[i], "<>\n\r") || strlen(values[i]) > 256)
            return ggi_error(GG_EINVAL, "the %s '%.64s' may not hold '<', '>' or a line "
                             "break, nor be over 256 bytes", what[i], values[i]);
    return GG_OK;
}

/* ---- libgit2 ---- */

static pthread_once_t git_once = PTHREAD_ONCE_INIT;
static int git_init_rc;

static void git_init(void)
{
    /* once for the process and never shut down: libgit2 counts its users, so a host that
     * uses libgit2 itself keeps its own count */
    git_init_rc = git_libgit2_init();
}

/* Records status with "what: <libgit2's message>". */
static int git_fail(int status, const char *what)
{
    const git_error *e = git_error_last();
    return ggi_error(status, "%s: %s", what, e && e->message ? e->message : "libgit2 failed");
}

/* Whether repo names a repository by URL (scheme://..., or scp-like host:path) rather than a
 * local path. */
static int is_url(const char *repo)
{
    const char *colon = strchr(repo, ':');
    const char *slash = strchr(repo, '/');
    if (strstr(repo, "://"))
        return 1;
    /* user@host:path and host:path, as git reads them: a colon before any slash */
    return colon && (!slash || colon < slash) && colon != repo;
}

/*
 * The default branch "gryphgen/<task_id>" made a valid ref name: bytes a ref may not hold
 * (controls, space, ~ ^ : ? * [ \, and non-ASCII) become '-'; in each component a dot after
 * a dot, a leading dot, a trailing dot, "@{" and a trailing ".lock" are defused; empty
 * components are dropped; the name is cut at DELIVER_MAX_BRANCH bytes.
 */
static int default_branch(const char *task_id, ggi_buf *out)
{
    ggi_buf raw = GGI_BUF_INIT;
    if (ggi_buf_puts(&raw, "gryphgen/") != GG_OK)
        return GG_ENOMEM;
    for (const char *s = task_id; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char o = (c <= 0x20 || c >= 0x7f || strchr("~^:?*[\\", c)) ? '-' : (char)c;
        if (ggi_buf_append(&raw, &o, 1) != GG_OK) {
            ggi_buf_free(&raw);
            return GG_ENOMEM;
        }
    }
    char *save = NULL;
    int rc = GG_OK;
    for (char *comp = strtok_r(raw.data, "/", &save); comp && rc == GG_OK;
         comp = strtok_r(NULL, "/", &save)) {
        size_t n = strlen(comp);
        for (size_t i = 1; i < n; i++) {
            if (comp[i] == '.' && comp[i - 1] == '.')
                comp[i] = '-';
            if (comp[i] == '{' && comp[i - 1] == '@')
                comp[i - 1] = '-';
        }
        if (comp[0] == '.')
            comp[0] = '-';
        if (comp[n - 1] == '.')
            comp[n - 1] = '-';
        if (strcmp(comp, "@") == 0)
            comp[0] = '-';
        if (out->len && (rc = ggi_buf_puts(out, "/")) != GG_OK)
            break;
        if (out->len + n > DELIVER_MAX_BRANCH) {
            n = out->len < DELIVER_MAX_BRANCH ? DELIVER_MAX_BRANCH - out->len : 0;
            if (n == 0 || (rc = ggi_buf_append(out, comp, n)) != GG_OK)
                break;
            break;
        }
        rc = ggi_buf_puts(out, comp);
        if (rc == GG_OK && n >= 5 && strcmp(comp + n - 5, ".lock") == 0)
            rc = ggi_buf_puts(out, "-");
    }
    ggi_buf_free(&raw);
    if (rc != GG_OK)
        return GG_ENOMEM;
    /* a cut may leave a trailing '/', '.' or ".lock" */
    while (out->len && (out->data[out->len - 1] == '/' || out->data[out->len - 1] == '.'))
        out->data[--out->len] = '\0';
    if (out->len >= 5 && strcmp(out->data + out->len - 5, ".lock") == 0)
        out->data[out->len - 5] = '-';
    return GG_OK;
}

/* Checks a branch name (without refs/heads/) as git does; GG_EINVAL naming it. */
static int check_branch(const char *branch, const char *full)
{
    int valid_branch = 0, valid_ref = 0;
    if (git_branch_name_is_valid(&valid_branch, branch) < 0 ||
        git_reference_name_is_valid(&valid_ref, full) < 0)
        return git_fail(GG_EIO, "checking the branch name");
    if (!valid_branch || !valid_ref || strlen(branch) > DELIVER_MAX_BRANCH + 64)
        return ggi_error(GG_EINVAL, "'%.300s' is not a valid branch name (see git "
                         "check-ref-format)", branch);
    return GG_OK;
}

/* The full name refs/heads/<branch> of the branch to create into *full. */
static int branch_name(const deliver_input *in, const gg_deliver_options *opts, ggi_buf *full)
{
    ggi_buf b = GGI_BUF_INIT;
    const char *branch = opts ? opts->branch : NULL;
    int rc;
    if (branch) {
        if (strncmp(branch, "refs/heads/", 11) == 0)
            branch += 11;
        if (ggi_buf_puts(&b, branch) != GG_OK)
            return GG_ENOMEM;
    } else if ((rc = default_branch(in->task_id, &b)) != GG_OK) {
        ggi_buf_free(&b);
        return rc;
    }
    if (ggi_buf_printf(full, "refs/heads/%s", b.data ? b.data : "") != GG_OK) {
        ggi_buf_free(&b);
        return GG_ENOMEM;
    }
    rc = check_branch(b.data ? b.data : "", full->data);
    if (rc == GG_OK || branch) {
        ggi_buf_free(&b);
        return rc;
    }
    /* a default name git still refuses (should not happen): the task's hash instead */
    char hex[17];
    ggi_hash_hex(in->task_id, strlen(in->task_id), hex);
    ggi_buf_free(&b);
    ggi_buf_free(full);
    if (ggi_buf_printf(full, "refs/heads/gryphgen/task-%s", hex) != GG_OK)
        return GG_ENOMEM;
    return check_branch(full->data + 11, full->data);
}

/* Everything one delivery holds, freed together. */
typedef struct deliver_state {
    git_repository *repo;
    git_object *base_obj;
    git_commit *base;
    git_tree *base_tree;
    git_diff *diff;
    git_index *index;
    git_tree *tree;
    git_signature *author, *committer;
    git_reference *ref;
} deliver_state;

static void state_free(deliver_state *s)
{
    git_reference_free(s->ref);
    git_signature_free(s->author);
    git_signature_free(s->committer);
    git_tree_free(s->tree);
    git_index_free(s->index);
    git_diff_free(s->diff);
    git_tree_free(s->base_tree);
    git_commit_free(s->base);
    git_object_free(s->base_obj);
    git_repository_free(s->repo);
}

/* The base commit: the result's base_commit, else the task's ref (default HEAD). */
static int find_base(const deliver_input *in, deliver_state *s)
{
    int grc;
    if (in->base_commit) {
        git_oid oid;
        if (git_oid_fromstr(&oid, in->base_commit) < 0)
            return git_fail(GG_EINVAL, "result field 'base_commit'");
        grc = git_commit_lookup(&s->base, s->repo, &oid);
        if (grc == GIT_ENOTFOUND)
            return ggi_error(GG_ENOTFOUND, "task '%s': the base commit %s (result field "
                             "'base_commit') is not in the repository '%s'", in->task_id,
                             in->base_commit, in->repo);
        if (grc < 0)
            return git_fail(GG_EIO, "looking up the base commit");
    } else {
        const char *ref = in->ref ? in->ref : "HEAD";
        grc = git_revparse_single(&s->base_obj, s->repo, ref);
        if (grc == GIT_ENOTFOUND || grc == GIT_EAMBIGUOUS || grc == GIT_EINVALIDSPEC)
            return ggi_error(GG_ENOTFOUND, "task '%s': workspace.ref '%s' is not a revision of "
                             "the repository '%s'", in->task_id, ref, in->repo);
        if (grc < 0)
            return git_fail(GG_EIO, "resolving workspace.ref");
        if (git_object_peel((git_object **)&s->base, s->base_obj, GIT_OBJECT_COMMIT) < 0)
            return ggi_error(GG_ENOTFOUND, "task '%s': workspace.ref '%s' does not name a "
                             "commit", in->task_id, ref);
    }
    if (git_commit_tree(&s->base_tree, s->base) < 0)
        return git_fail(GG_EIO, "reading the base commit's tree");
    return GG_OK;
}

static int make_signature(git_signature **out, const identity *id, const char *role)
{
    if (git_signature_new(out, id->name, id->email, id->when, id->offset_min) < 0) {
        const git_error *e = git_error_last();
        return ggi_error(GG_EINVAL, "the %s '%s <%s>' is not usable: %s", role, id->name,
                         id->email, e && e->message ? e->message : "libgit2 refused it");
    }
    return GG_OK;
}

GGI_OPTIONS_LAYOUT(deliver_options, gg_deliver_options, GG_DELIVER_OPTIONS_VERSION,
                   GGI_OPTIONS_END(gg_deliver_options, committer_email));

/* Only a task on a local git repository can be delivered. */
static int check_repo_field(const deliver_input *in)
{
    if (!in->repo)
        return ggi_error(GG_EINVAL, "task '%s' has no 'workspace.repo': only a task on a git "
                         "repository can be delivered to a branch", in->task_id);
    if (is_url(in->repo))
        return ggi_error(GG_EINVAL, "task '%s': workspace.repo '%s' is a URL; delivery commits "
                         "into a local repository only (clone it, deliver into the clone, "
                         "push the branch)", in->task_id, in->repo);
    return GG_OK;
}

/* The repository the task names, opened, its base commit found, and the branch refused if it
 * exists: a clear error before any object is written (git_reference_create checks again). */
static int open_target(const deliver_input *in, const char *branch, deliver_state *s)
{
    int grc = git_repository_open_ext(&s->repo, in->repo, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL);
    if (grc == GIT_ENOTFOUND)
        return ggi_error(GG_ENOTFOUND, "task '%s': workspace.repo '%s': no git repository "
                         "there", in->task_id, in->repo);
    if (grc < 0)
        return git_fail(GG_EIO, "opening workspace.repo");
    int rc = find_base(in, s);
    if (rc != GG_OK)
        return rc;
    grc = git_reference_lookup(&s->ref, s->repo, branch);
    if (grc == 0)
        return ggi_error(GG_EEXIST, "task '%s': the branch '%s' exists already in '%s'; it is "
                         "never moved: delete it or deliver to another branch", in->task_id,
                         branch + 11, in->repo);
    git_reference_free(s->ref);
    s->ref = NULL;
    return GG_OK;
}

/* The result's patch applied to the base commit's tree, written as a tree object. */
static int patched_tree(const deliver_input *in, deliver_state *s)
{
    git_oid tree_oid;
    if (git_diff_from_buffer(&s->diff, in->patch, strlen(in->patch)) < 0) {
        git_fail(GG_EINVAL, "the result's 'patch' is not a diff git can read");
        return ggi_error_wrap("task '%s': ", in->task_id);
    }
    if (git_diff_num_deltas(s->diff) == 0)
        return ggi_error(GG_EINVAL, "task '%s': the result's 'patch' holds no change git can "
                         "read (not a unified diff in git's format?)", in->task_id);
    if (git_apply_to_tree(&s->index, s->repo, s->base_tree, s->diff, NULL) < 0) {
        char what[128];
        snprintf(what, sizeof what, "the result's 'patch' does not apply to the base commit "
                 "%.12s", git_oid_tostr_s(git_commit_id(s->base)));
        git_fail(GG_EIO, what);
        return ggi_error_wrap("task '%s': ", in->task_id);
    }
    if (git_index_write_tree_to(&tree_oid, s->index, s->repo) < 0 ||
        git_tree_lookup(&s->tree, s->repo, &tree_oid) < 0)
        return git_fail(GG_EIO, "writing the patched tree");
    return GG_OK;
}

/* The branch, created only when absent, checked under the reference's lock (the zero id as
 * its expected value): git_reference_create's own check comes before the lock, so two writers
 * could both pass it. Another writer holding the lock (creating the same branch at this
 * moment): wait for it to let go, then the branch exists or is free. */
static int create_branch(const deliver_input *in, deliver_state *s, const char *branch,
                         const git_oid *commit_oid)
{
    char reflog[200];
    snprintf(reflog, sizeof reflog, "gryphgen: deliver task %.150s", in->task_id);
    git_oid zero;
    memset(&zero, 0, sizeof zero);
    int grc;
    for (int tries = 0;; tries++) {
        grc = git_reference_create_matching(&s->ref, s->repo, branch, commit_oid, 0, &zero,
                                            reflog);
        if (grc != GIT_ELOCKED || tries >= DELIVER_LOCK_TRIES)
            break;
        ggi_sleep_ms(DELIVER_LOCK_WAIT_MS);
    }
    if (grc == GIT_ELOCKED) {
        git_fail(GG_EBUSY, "the branch is locked by another writer");
        return ggi_error_wrap("task '%s': %s: ", in->task_id, branch);
    }
    if (grc == GIT_EEXISTS || grc == GIT_EMODIFIED)
        return ggi_error(GG_EEXIST, "task '%s': the branch '%s' exists already in '%s' (or a "
                         "branch named like its folder); it is never moved: delete it or "
                         "deliver to another branch", in->task_id, branch + 11, in->repo);
    if (grc < 0) {
        git_fail(GG_EIO, "creating the branch");
        return ggi_error_wrap("task '%s': %s: ", in->task_id, branch);
    }
    return GG_OK;
}

/* {"branch": ..., "commit": ..., "parent": ...} */
static int deliver_reply(const deliver_state *s, const char *branch, const git_oid *commit_oid,
                         char **out_json)
{
    ggi_buf out = GGI_BUF_INIT;
    char commit_hex[GIT_OID_HEXSZ + 1], parent_hex[GIT_OID_HEXSZ + 1];
    git_oid_tostr(commit_hex, sizeof commit_hex, commit_oid);
    git_oid_tostr(parent_hex, sizeof parent_hex, git_commit_id(s->base));
    if (ggi_buf_puts(&out, "{\"branch\":") != GG_OK ||
        ggi_json_write_string(&out, branch) != GG_OK ||
        ggi_buf_printf(&out, ",\"commit\":\"%s\",\"parent\":\"%s\"}", commit_hex,
                       parent_hex) != GG_OK) {
        ggi_buf_free(&out);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    *out_json = ggi_buf_steal(&out);
    return GG_OK;
}

int gg_workspace_deliver(const char *task_json, const char *result_json,
                         const gg_deliver_options *opts, char **out_json)
{
    deliver_input in;
    deliver_state s;
    ggi_buf full = GGI_BUF_INIT, msg = GGI_BUF_INIT;
    identity author, committer;
    git_oid commit_oid;
    size_t subject_len;
    int rc;

    memset(&s, 0, sizeof s);
    memset(&in, 0, sizeof in);
    if (!out_json)
        return ggi_error(GG_EINVAL, "gg_workspace_deliver: out_json is NULL");
    *out_json = NULL;
    gg_deliver_options given = GG_DELIVER_OPTIONS_INIT;
    if (ggi_options_accept(&deliver_options, &given, opts))
        return GG_EVERSION;
    opts = &given;
    pthread_once(&git_once, git_init);
    if (git_init_rc < 0)
        return git_fail(GG_EIO, "initialising libgit2");

    if ((rc = input_parse(task_json, result_json, &in)) != GG_OK ||
        (rc = check_repo_field(&in)) != GG_OK ||
        (rc = branch_name(&in, opts, &full)) != GG_OK ||
        (rc = identities(opts, &author, &committer)) != GG_OK ||
        (rc = make_message(&in, 0, &msg, &subject_len)) != GG_OK ||
        (rc = open_target(&in, full.data, &s)) != GG_OK || (rc = patched_tree(&in, &s)) ||
        (rc = make_signature(&s.author, &author, "author")) != GG_OK ||
        (rc = make_signature(&s.committer, &committer, "committer")) != GG_OK)
        goto out;
    const git_commit *parents[1] = {s.base};
    if (git_commit_create(&commit_oid, s.repo, NULL, s.author, s.committer, "UTF-8", msg.data,
                          s.tree, 1, parents) < 0) {
        rc = git_fail(GG_EIO, "creating the commit");
        goto out;
    }
    if ((rc = create_branch(&in, &s, full.data, &commit_oid)) == GG_OK)
        rc = deliver_reply(&s, full.data, &commit_oid, out_json);

out:
    if (rc == GG_ENOMEM && !*gg_error_last())
        ggi_error(GG_ENOMEM, "out of memory");
    state_free(&s);
    input_free(&in);
    ggi_buf_free(&full);
    ggi_buf_free(&msg);
    return rc;
}

/* ---- format-patch ---- */

/* Appends a header value: as it is when ASCII, else as an RFC 2047 Q-encoded word (what
 * git format-patch writes and git am reads back). */
static int put_header_text(ggi_buf *b, const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n && (unsigned char)s[i] < 0x80; i++)
        ;
    if (i == n)
        return ggi_buf_append(b, s, n);
    if (ggi_buf_puts(b, "=?UTF-8?q?") != GG_OK)
        return GG_ENOMEM;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int rc = (isalnum(c) || strchr("!*+-/", c)) ? ggi_buf_append(b, &s[i], 1)
                 : c == ' '                          ? ggi_buf_puts(b, "_")
                                                     : ggi_buf_printf(b, "=%02X", c);
        if (rc != GG_OK)
            return GG_ENOMEM;
    }
    return ggi_buf_puts(b, "?=");
}

/* Appends a display name: Q-encoded when not ASCII, in quotes when it holds characters
 * RFC 5322 allows only there (as git format-patch writes it). */
static int put_display_name(ggi_buf *b, const char *name)
{
    size_t n = strlen(name);
    int ascii = 1, special = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        ascii &= c < 0x80;
        special |= c != ' ' && !isalnum(c) && !strchr("!#$%&'*+-/=?^_`{|}~", c);
    }
    if (!ascii || !special)
        return put_header_text(b, name, n);
    if (ggi_buf_puts(b, "\"") != GG_OK)
        return GG_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        int quoted = name[i] == '"' || name[i] == '\\';
        if ((quoted && ggi_buf_puts(b, "\\") != GG_OK) ||
            ggi_buf_append(b, &name[i], 1) != GG_OK)
            return GG_ENOMEM;
    }
    return ggi_buf_puts(b, "\"");
}

/* Appends an RFC 2822 date ("Sun, 6 Dec 2026 17:06:18 +0000"), independent of the locale. */
static int put_date(ggi_buf *b, git_time_t when, int offset_min)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t local = (time_t)when + (time_t)offset_min * 60;
    struct tm tm;
    if (!gmtime_r(&local, &tm))
        return ggi_error(GG_EINVAL, "the date %lld cannot be written", (long long)when);
    int off = offset_min < 0 ? -offset_min : offset_min;
    return ggi_buf_printf(b, "%s, %d %s %d %02d:%02d:%02d %c%02d%02d", days[tm.tm_wday],
                          tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
                          tm.tm_min, tm.tm_sec, offset_min < 0 ? '-' : '+', off / 60,
                          off % 60);
}

int gg_workspace_format_patch(const char *task_json, const char *result_json,
                              char **out_text)
{
    deliver_input in;
    ggi_buf msg = GGI_BUF_INIT, out = GGI_BUF_INIT;
    identity author, committer;
    size_t subject_len;
    int rc;

    memset(&in, 0, sizeof in);
    if (!out_text)
        return ggi_error(GG_EINVAL, "gg_workspace_format_patch: out_text is NULL");
    *out_text = NULL;
    if ((rc = input_parse(task_json, result_json, &in)) != GG_OK ||
        (rc = identities(NULL, &author, &committer)) != GG_OK ||
        (rc = make_message(&in, 1, &msg, &subject_len)) != GG_OK)
        goto out;

    const char *body = msg.data + subject_len;
    while (*body == '\n')
        body++;
    size_t plen = strlen(in.patch);
    /* the mail: the commit is made by whoever applies it, hence the zero id */
    if (ggi_buf_puts(&out, "From 0000000000000000000000000000000000000000 Mon Sep 17 "
                           "00:00:00 2001\nFrom: ") != GG_OK ||
        put_display_name(&out, author.name) != GG_OK ||
        ggi_buf_printf(&out, " <%s>\nDate: ", author.email) != GG_OK ||
        (rc = put_date(&out, author.when, author.offset_min)) != GG_OK ||
        ggi_buf_puts(&out, "\nSubject: [PATCH] ") != GG_OK ||
        put_header_text(&out, msg.data, subject_len) != GG_OK ||
        ggi_buf_puts(&out, "\nMIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\n"
                           "Content-Transfer-Encoding: 8bit\n\n") != GG_OK ||
        ggi_buf_puts(&out, body) != GG_OK || ggi_buf_puts(&out, "---\n\n") != GG_OK ||
        ggi_buf_append(&out, in.patch, plen) != GG_OK ||
        (in.patch[plen - 1] != '\n' && ggi_buf_puts(&out, "\n") != GG_OK) ||
        ggi_buf_printf(&out, "-- \ngryphgen %s\n\n", gg_version_string()) != GG_OK) {
        rc = rc ? rc : ggi_error(GG_ENOMEM, "out of memory");
        goto out;
    }
    *out_text = ggi_buf_steal(&out);
    rc = GG_OK;

out:
    input_free(&in);
    ggi_buf_free(&msg);
    ggi_buf_free(&out);
    return rc;
}
