/*
 * prompt.c - chat prompts for model-backed generators and code extraction from the replies
 * (prompt.h): the built-in template, template files with {{placeholders}}, the rendering of
 * a request's task, context and feedback into sections, and the fenced-block reader.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/ggi.h"
#include "prompt.h"

struct ggi_prompt_template {
    char *system;
    char *user;
};

static const char default_system[] =
    "You are an expert {{language}} programmer. You write correct, complete, self-contained "
    "{{language}} code that passes the tests it is run against. Answer with the code in a "
    "single fenced block (```{{language}}) and nothing else.";

static const char default_user[] =
    "{{task}}{{context}}{{feedback}}\n"
    "Reply with {{goal}} in a single ```{{language}} block.";

static const char *const known[] = { "language", "task_id", "attempt", "prompt", "stub",
                                     "entry_point", "task", "context", "feedback", "goal" };
#define N_KNOWN (sizeof known / sizeof known[0])

/* If text at p is "{{name}}" with name in [a-z_], its length and name span; else 0. */
static size_t placeholder_at(const char *p, const char **name, size_t *name_len)
{
    if (p[0] != '{' || p[1] != '{')
        return 0;
    const char *q = p + 2;
    while ((*q >= 'a' && *q <= 'z') || *q == '_')
        q++;
    if (q == p + 2 || q[0] != '}' || q[1] != '}' || q - (p + 2) > 32)
        return 0;
    *name = p + 2;
    *name_len = (size_t)(q - (p + 2));
    return (size_t)(q + 2 - p);
}

static int known_index(const char *name, size_t len)
{
    for (size_t i = 0; i < N_KNOWN; i++)
        if (strlen(known[i]) == len && memcmp(known[i], name, len) == 0)
            return (int)i;
    return -1;
}

static int check_placeholders(const char *path, const char *text)
{
    for (const char *p = text; *p; p++) {
        const char *name;
        size_t len;
        if (placeholder_at(p, &name, &len) && known_index(name, len) < 0)
            return ggi_error(GG_EINVAL,
                             "prompt template %s: unknown placeholder {{%.*s}} (known: "
                             "language, task_id, attempt, prompt, stub, entry_point, task, "
                             "context, feedback, goal)",
                             path, (int)len, name);
    }
    return GG_OK;
}

void ggi_prompt_template_free(ggi_prompt_template **ptpl)
{
    if (!ptpl || !*ptpl)
        return;
    free((*ptpl)->system);
    free((*ptpl)->user);
    free(*ptpl);
    *ptpl = NULL;
}

/* Finds a line that is exactly marker (trailing white space allowed); its start or NULL. */
static char *find_marker_line(char *text, const char *marker, char **after)
{
    size_t mlen = strlen(marker);
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        size_t trimmed = len;
        while (trimmed > 0 && (line[trimmed - 1] == ' ' || line[trimmed - 1] == '\t' ||
                               line[trimmed - 1] == '\r'))
            trimmed--;
        if (trimmed == mlen && memcmp(line, marker, mlen) == 0) {
            *after = nl ? nl + 1 : line + len;
            return line;
        }
        line = nl ? nl + 1 : NULL;
    }
    return NULL;
}

static int read_file(const char *path, char **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return ggi_error(errno == ENOENT ? GG_ENOTFOUND : GG_EIO,
                         "prompt template %s: cannot open: %s", path, strerror(errno));
    ggi_buf b = GGI_BUF_INIT;
    char chunk[4096];
    size_t n;
    int rc = GG_OK;
    while (!rc && (n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.len + n > GGI_PROMPT_TEMPLATE_MAX)
            rc = ggi_error(GG_ETOOBIG, "prompt template %s: larger than %u bytes", path,
                           (unsigned)GGI_PROMPT_TEMPLATE_MAX);
        else if (ggi_buf_append(&b, chunk, n))
            rc = ggi_error(GG_ENOMEM, "out of memory reading %s", path);
    }
    if (!rc && ferror(f))
        rc = ggi_error(GG_EIO, "prompt template %s: read failed", path);
    fclose(f);
    if (rc) {
        ggi_buf_free(&b);
        return rc;
    }
    if (b.len && memchr(b.data, '\0', b.len)) {
        ggi_buf_free(&b);
        return ggi_error(GG_EINVAL, "prompt template %s: holds a NUL byte", path);
    }
    *out = ggi_buf_steal(&b);
    return *out ? GG_OK : ggi_error(GG_ENOMEM, "out of memory reading %s", path);
}

int ggi_prompt_template_load(const char *path, ggi_prompt_template **out)
{
    *out = NULL;
    ggi_prompt_template *t = calloc(1, sizeof *t);
    if (!t)
        return ggi_error(GG_ENOMEM, "out of memory loading a prompt template");
    if (!path || !*path) {
        t->system = ggi_strdup(default_system);
        t->user = ggi_strdup(default_user);
        if (!t->system || !t->user) {
            ggi_prompt_template_free(&t);
            return ggi_error(GG_ENOMEM, "out of memory loading a prompt template");
        }
        *out = t;
        return GG_OK;
    }
    char *text = NULL;
    int rc = read_file(path, &text);
    if (rc) {
        free(t);
        return rc;
    }
    char *after_user = NULL, *after_system = NULL;
    char *user_line = find_marker_line(text, "=== user ===", &after_user);
    char *sys_line = find_marker_line(text, "=== system ===", &after_system);
    if (user_line) {
        const char *sys_start = sys_line && sys_line < user_line ? after_system : text;
        if (sys_line && sys_line > user_line) {
            free(text);
            free(t);
            return ggi_error(GG_EINVAL, "prompt template %s: '=== system ===' must come "
                                        "before '=== user ==='", path);
        }
        t->system = ggi_strndup(sys_start, (size_t)(user_line - sys_start));
        t->user = ggi_strdup(after_user);
    } else if (sys_line) {
        free(text);
        free(t);
        return ggi_error(GG_EINVAL,
                         "prompt template %s: has '=== system ===' but no '=== user ===' line",
                         path);
    } else {
        t->system = ggi_strdup(default_system);
        t->user = ggi_strdup(text);
    }
    free(text);
    if (!t->system || !t->user) {
        ggi_prompt_template_free(&t);
        return ggi_error(GG_ENOMEM, "out of memory loading a prompt template");
    }
    const char *p = t->user;
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
        p++;
    if (!*p)
        rc = ggi_error(GG_EINVAL, "prompt template %s: the user message is empty", path);
    if (!rc)
        rc = check_placeholders(path, t->system);
    if (!rc)
        rc = check_placeholders(path, t->user);
    if (rc) {
        ggi_prompt_template_free(&t);
        return rc;
    }
    *out = t;
    return GG_OK;
}

/* ---- rendering ---- */

static const char *jstr(const cJSON *o, const char *key)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
    return s ? s : "";
}

/* Keeps a cut at a UTF-8 character boundary by moving it forward over continuation bytes. */
static size_t utf8_boundary(const char *s, size_t len, size_t at)
{
    while (at < len && ((unsigned char)s[at] & 0xC0) == 0x80)
        at++;
    return at;
}

/* Appends s, at most max bytes of it: its head (tail == 0) or its tail. */
static int put_clipped(ggi_buf *b, const char *s, size_t max, int tail)
{
    size_t len = strlen(s);
    if (len <= max)
        return ggi_buf_puts(b, s);
    if (tail) {
        size_t from = utf8_boundary(s, len, len - max);
        return ggi_buf_printf(b, "[... %zu bytes before left out ...]\n", from) ||
               ggi_buf_puts(b, s + from);
    }
    size_t to = max;
    while (to > 0 && ((unsigned char)s[to] & 0xC0) == 0x80)
        to--;
    return ggi_buf_append(b, s, to) ||
           ggi_buf_printf(b, "\n[... %zu bytes after left out ...]", len - to);
}

static int put_block(ggi_buf *b, const char *lang, const char *body, int tail)
{
    int rc = ggi_buf_printf(b, "```%s\n", lang);
    rc = rc || put_clipped(b, body, GGI_PROMPT_FEEDBACK_PART_MAX, tail);
    size_t len = b->len;
    if (!rc && len && b->data[len - 1] != '\n')
        rc = ggi_buf_puts(b, "\n");
    return rc || ggi_buf_puts(b, "```\n");
}

/* Files of a workspace listed in a prompt at most. */
#define WORKSPACE_LISTED 200

/* A workspace task: the instruction, the repository's files (the request's "workspace"
 * object) and how it is tested. */
static int render_workspace_task(ggi_buf *b, const cJSON *req, const cJSON *task)
{
    const char *prompt = jstr(task, "prompt");
    int rc = ggi_buf_printf(b, "Task: %s\n", *prompt ? prompt : "make the repository's tests "
                            "pass.");
    const cJSON *ws = cJSON_GetObjectItemCaseSensitive(req, "workspace");
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(ws, "files"), *f;
    int n = 0;
    cJSON_ArrayForEach(f, files)
    {
        if (!cJSON_IsString(f))
            continue;
        if (n == 0)
            rc = rc || ggi_buf_puts(b, "\nThe repository's files (paths from its root):\n");
        if (n++ >= WORKSPACE_LISTED) {
            rc = rc || ggi_buf_puts(b, "- ...\n");
            break;
        }
        rc = rc || ggi_buf_printf(b, "- %s\n", f->valuestring);
    }
    if (!rc && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ws, "truncated")) &&
        n <= WORKSPACE_LISTED)
        rc = ggi_buf_puts(b, "- ...\n");
    const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(task, "test_command");
    if (!rc && cJSON_IsString(cmd))
        rc = ggi_buf_printf(b, "\nThe tests run with: %s\n", cmd->valuestring);
    else if (!rc && cJSON_IsArray(cmd)) {
        rc = ggi_buf_puts(b, "\nThe tests run with:");
        cJSON_ArrayForEach(f, cmd)
        {
            const char *arg = cJSON_GetStringValue(f);
            rc = rc || ggi_buf_printf(b, " %s", arg ? arg : "");
        }
        rc = rc || ggi_buf_puts(b, "\n");
    }
    return rc;
}

static int render_task(ggi_buf *b, const cJSON *task)
{
    const char *lang = jstr(task, "language");
    const char *prompt = jstr(task, "prompt");
    const char *stub = jstr(task, "stub");
    const char *entry = jstr(task, "entry_point");
    int rc = GG_OK;
    if (*prompt && strcmp(prompt, stub) != 0)
        rc = ggi_buf_printf(b, "Task: %s\n", prompt);
    if (!rc && *stub) {
        rc = ggi_buf_puts(b, *prompt && strcmp(prompt, stub) != 0 ? "\nComplete this code:\n"
                                                                   : "Complete this code:\n");
        rc = rc || put_block(b, lang, stub, 0);
    }
    if (!rc && !*prompt && !*stub)
        rc = ggi_buf_printf(b, "Task: write a %s program.\n", *lang ? lang : "");
    if (!rc && *entry)
        rc = ggi_buf_printf(b, "\nThe tests call the function `%s`.\n", entry);
    return rc;
}

static int render_context(ggi_buf *b, const cJSON *context)
{
    size_t used = 0;
    int any = 0, rc = GG_OK;
    const cJSON *doc;
    cJSON_ArrayForEach(doc, context)
    {
        const char *text = jstr(doc, "text");
        size_t len = strlen(text);
        if (!len || used + len > GGI_PROMPT_CONTEXT_BUDGET)
            continue;
        used += len;
        if (!any)
            rc = rc || ggi_buf_puts(b, "\nReference material that may help:\n");
        any = 1;
        const char *id = jstr(doc, "id");
        rc = rc || ggi_buf_printf(b, "--- %s ---\n", *id ? id : "document");
        rc = rc || ggi_buf_puts(b, text);
        if (!rc && text[len - 1] != '\n')
            rc = ggi_buf_puts(b, "\n");
    }
    /* Citations teach the retriever which reference helped (docs/generator.md). */
    if (any)
        rc = rc || ggi_buf_puts(b, "--- end of references ---\nAfter the code block, add one "
                                   "line \"CITED: \" with the ids (from the --- id --- "
                                   "headers) of the references you used, or \"CITED: none\".\n");
    return rc;
}

static int render_feedback(ggi_buf *b, const cJSON *feedback, const char *lang)
{
    int rc = GG_OK, any = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, feedback)
    {
        if (!cJSON_IsObject(f))
            continue;
        if (!any)
            rc = rc || ggi_buf_puts(b, "\nEarlier attempts failed. Fix what went wrong; do "
                                       "not repeat them.\n");
        any = 1;
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(f, "attempt");
        const char *reason = jstr(f, "reason");
        if (cJSON_IsNumber(n))
            rc = rc || ggi_buf_printf(b, "\nAttempt %d failed: %s\n", n->valueint,
                                      *reason ? reason : "(no reason given)");
        else
            rc = rc || ggi_buf_printf(b, "\nAn attempt failed: %s\n",
                                      *reason ? reason : "(no reason given)");
        const char *code = jstr(f, "code");
        if (*code) {
            rc = rc || ggi_buf_puts(b, "Its code:\n");
            rc = rc || put_block(b, lang, code, 0);
        }
        const cJSON *findings = cJSON_GetObjectItemCaseSensitive(f, "findings");
        int nf = 0;
        const cJSON *fi;
        cJSON_ArrayForEach(fi, findings)
        {
            if (nf >= 20)
                break;
            if (nf++ == 0)
                rc = rc || ggi_buf_puts(b, "Analyzer findings:\n");
            const cJSON *line = cJSON_GetObjectItemCaseSensitive(fi, "line");
            const cJSON *col = cJSON_GetObjectItemCaseSensitive(fi, "column");
            const char *sev = jstr(fi, "severity");
            rc = rc || ggi_buf_puts(b, "- ");
            if (cJSON_IsNumber(line))
                rc = rc || ggi_buf_printf(b, "line %d", line->valueint);
            if (cJSON_IsNumber(col))
                rc = rc || ggi_buf_printf(b, ", column %d", col->valueint);
            rc = rc || ggi_buf_printf(b, "%s%s%s%s\n", cJSON_IsNumber(line) ? ": " : "",
                                      *sev ? sev : "", *sev ? ": " : "", jstr(fi, "message"));
        }
        const char *err = jstr(f, "stderr_tail");
        if (*err) {
            rc = rc || ggi_buf_puts(b, "Its standard error (end):\n");
            rc = rc || put_block(b, "", err, 1);
        }
        const char *out = jstr(f, "stdout_tail");
        if (*out) {
            rc = rc || ggi_buf_puts(b, "Its standard output (end):\n");
            rc = rc || put_block(b, "", out, 1);
        }
    }
    return rc;
}

static int is_workspace(const cJSON *task)
{
    return cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(task, "workspace"));
}

/* The value of one placeholder for this request, appended to b. */
static int render_one(ggi_buf *b, int which, const cJSON *req, const cJSON *task)
{
    const char *entry = jstr(task, "entry_point");
    switch (which) {
    case 0: return ggi_buf_puts(b, jstr(task, "language"));
    case 1: return ggi_buf_puts(b, jstr(task, "task_id"));
    case 2: {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(req, "attempt");
        return ggi_buf_printf(b, "%d", cJSON_IsNumber(n) ? n->valueint : 1);
    }
    case 3: return ggi_buf_puts(b, jstr(task, "prompt"));
    case 4: return ggi_buf_puts(b, jstr(task, "stub"));
    case 5: return ggi_buf_puts(b, entry);
    case 6:
        return is_workspace(task) ? render_workspace_task(b, req, task) : render_task(b, task);
    case 7: return render_context(b, cJSON_GetObjectItemCaseSensitive(req, "context"));
    case 8:
        return render_feedback(b, cJSON_GetObjectItemCaseSensitive(req, "feedback"),
                               jstr(task, "language"));
    case 9:
        if (is_workspace(task))
            return ggi_buf_puts(b, "a unified diff (git's format: --- a/path, +++ b/path, @@ "
                                   "hunks) against the repository root that makes its tests "
                                   "pass (the diff only, not whole files)");
        if (*entry)
            return ggi_buf_printf(b, "the complete function `%s` (with the imports and "
                                     "helpers it needs)",
                                  entry);
        return ggi_buf_puts(b, "the complete program");
    default: return GG_OK;
    }
}

static char *render(const char *tpl, const cJSON *req, const cJSON *task)
{
    ggi_buf b = GGI_BUF_INIT;
    int rc = GG_OK;
    const char *p = tpl;
    while (!rc && *p) {
        const char *name;
        size_t name_len;
        size_t len = placeholder_at(p, &name, &name_len);
        int which = len ? known_index(name, name_len) : -1;
        if (which >= 0) {
            rc = render_one(&b, which, req, task);
            p += len;
        } else {
            const char *next = strstr(p + 1, "{{");
            size_t run = next ? (size_t)(next - p) : strlen(p);
            rc = ggi_buf_append(&b, p, run);
            p += run;
        }
    }
    if (rc) {
        ggi_buf_free(&b);
        return NULL;
    }
    return ggi_buf_steal(&b);
}

static int add_message(cJSON *arr, const char *role, char *content)
{
    cJSON *m = cJSON_CreateObject();
    int ok = m && content && !ggi_json_add_str(m, "role", role) &&
             !ggi_json_add_str(m, "content", content);
    free(content);
    if (!ok || !cJSON_AddItemToArray(arr, m)) {
        cJSON_Delete(m);
        return GG_ENOMEM;
    }
    return GG_OK;
}

int ggi_prompt_messages(const ggi_prompt_template *tpl, const cJSON *request, cJSON **out)
{
    *out = NULL;
    const cJSON *task = cJSON_GetObjectItemCaseSensitive(request, "task");
    if (!cJSON_IsObject(task))
        return ggi_error(GG_EINVAL, "generator request: field 'task' must be an object");
    cJSON *arr = cJSON_CreateArray();
    if (!arr)
        return ggi_error(GG_ENOMEM, "out of memory building a prompt");
    int rc = GG_OK;
    char *sys = render(tpl->system, request, task);
    const char *s = sys ? sys : "";
    while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')
        s++;
    if (sys && !*s)
        free(sys); /* an empty system part sends the user message alone */
    else
        rc = add_message(arr, "system", sys);
    if (!rc)
        rc = add_message(arr, "user", render(tpl->user, request, task));
    if (rc) {
        cJSON_Delete(arr);
        return ggi_error(GG_ENOMEM, "out of memory building a prompt");
    }
    *out = arr;
    return GG_OK;
}

/* ---- code extraction ---- */

static int is_ident(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_';
}

/* Does text (len bytes) define the function name: "def name(" in Python, "name(" followed
 * somewhere later by '{' in C and other languages. */
static int defines(const char *text, size_t len, const char *name, const char *language)
{
    size_t nlen = strlen(name);
    if (!nlen || nlen > len)
        return 0;
    int python = language && strcmp(language, "python") == 0;
    for (size_t i = 0; i + nlen <= len; i++) {
        if (memcmp(text + i, name, nlen) != 0)
            continue;
        if (i > 0 && is_ident(text[i - 1]))
            continue;
        size_t j = i + nlen;
        while (j < len && (text[j] == ' ' || text[j] == '\t'))
            j++;
        if (j >= len || text[j] != '(')
            continue;
        if (python) {
            size_t k = i;
            while (k > 0 && (text[k - 1] == ' ' || text[k - 1] == '\t'))
                k--;
            if (k >= 3 && memcmp(text + k - 3, "def", 3) == 0 && (k == 3 || !is_ident(text[k - 4])))
                return 1;
        } else if (memchr(text + j, '{', len - j)) {
            return 1;
        }
    }
    return 0;
}

typedef struct block {
    const char *start; /* body */
    size_t len;
    const char *tag;
    size_t tag_len;
} block;

#define MAX_BLOCKS 64

/* If the line at p is a fence ("```" after at most 3 spaces), the start of its info
 * string; else NULL. */
static const char *fence(const char *p, const char *end)
{
    int spaces = 0;
    while (p < end && *p == ' ' && spaces < 4) {
        p++;
        spaces++;
    }
    if (spaces > 3 || end - p < 3 || memcmp(p, "```", 3) != 0)
        return NULL;
    p += 3;
    while (p < end && *p == '`')
        p++;
    return p;
}

static char *trimmed_copy(const char *s, size_t len)
{
    while (len && (*s == '\n' || *s == '\r')) {
        s++;
        len--;
    }
    while (len && (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' ' ||
                   s[len - 1] == '\t'))
        len--;
    char *out = malloc(len + 2);
    if (!out)
        return NULL;
    memcpy(out, s, len);
    out[len] = '\n';
    out[len + 1] = '\0';
    if (!len)
        out[0] = '\0';
    return out;
}

char *ggi_prompt_extract_code(const char *reply, const char *entry_point, const char *language)
{
    if (!reply)
        reply = "";
    const char *text = reply;
    const char *think = strstr(text, "<think>");
    const char *think_end = think ? strstr(think, "</think>") : NULL;
    if (think_end)
        text = think_end + strlen("</think>");
    const char *end = text + strlen(text);
    block blocks[MAX_BLOCKS];
    int n = 0;
    block open = { NULL, 0, NULL, 0 };
    int in_block = 0;
    for (const char *line = text; line < end && n < MAX_BLOCKS;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *line_end = nl ? nl : end;
        const char *info = fence(line, line_end);
        if (info && !in_block) {
            in_block = 1;
            while (info < line_end && (*info == ' ' || *info == '\t'))
                info++;
            const char *tag_end = info;
            while (tag_end < line_end && *tag_end != ' ' && *tag_end != '\t' && *tag_end != '\r')
                tag_end++;
            open.tag = info;
            open.tag_len = (size_t)(tag_end - info);
            open.start = nl ? nl + 1 : end;
        } else if (info && in_block) {
            const char *rest = info;
            while (rest < line_end && (*rest == ' ' || *rest == '\t' || *rest == '\r'))
                rest++;
            if (rest == line_end) { /* a closing fence has nothing after the backticks */
                open.len = (size_t)(line - open.start);
                blocks[n++] = open;
                in_block = 0;
            }
        }
        line = nl ? nl + 1 : end;
    }
    if (in_block && n < MAX_BLOCKS) {
        open.len = (size_t)(end - open.start);
        blocks[n++] = open;
    }
    if (n == 0)
        return trimmed_copy(text, (size_t)(end - text));
    int pick = 0;
    int found = 0;
    if (n > 1 && entry_point && *entry_point) {
        for (int i = 0; i < n && !found; i++)
            if (defines(blocks[i].start, blocks[i].len, entry_point, language)) {
                pick = i;
                found = 1;
            }
    }
    if (n > 1 && !found && language && *language) {
        for (int i = 0; i < n && !found; i++)
            if (blocks[i].tag_len == strlen(language) &&
                strncmp(blocks[i].tag, language, blocks[i].tag_len) == 0) {
                pick = i;
                found = 1;
            }
    }
    return trimmed_copy(blocks[pick].start, blocks[pick].len);
}
