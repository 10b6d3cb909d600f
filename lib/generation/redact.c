/*
 * redact.c - the redactor of redact.h: literal secrets (API keys, values of variables marked
 * secret) and regular expressions (built-in token formats, private-key blocks, an operator's
 * pattern file), applied one after the other to each text, every match replaced by
 * "[REDACTED:kind]".
 */
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/ggi.h"
#include "redact.h"

/* The built-in patterns, kind first. Token formats are anchored on their fixed prefixes and
 * need a run of token characters long enough that prose does not match them. */
static const char *const builtin[][2] = {
    { "private_key", "-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[^-]*(-----END [A-Z0-9 ]*PRIVATE "
                     "KEY-----|$)" },
    { "token:openai", "sk-[A-Za-z0-9_-]{20,}" },
    { "token:github", "gh[pousr]_[A-Za-z0-9]{30,}" },
    { "token:github", "github_pat_[A-Za-z0-9_]{22,}" },
    { "token:aws", "(AKIA|ASIA)[0-9A-Z]{16}" },
    { "token:slack", "xox[abposr]-[A-Za-z0-9-]{10,}" },
    { "token:jwt", "eyJ[A-Za-z0-9_-]{8,}\\.[A-Za-z0-9_-]{8,}\\.[A-Za-z0-9_-]{8,}" },
};
#define N_BUILTIN (sizeof builtin / sizeof builtin[0])
#define MAX_LITERALS 64

typedef struct literal {
    char *value;
    const char *kind;
} literal;

typedef struct rule {
    regex_t re;
    const char *kind;
} rule;

struct ggi_redactor {
    literal lits[MAX_LITERALS];
    int n_lits;
    rule *rules;
    int n_rules;
};

static int add_literal(ggi_redactor *r, const char *value, const char *kind)
{
    if (!value || strlen(value) < GGI_REDACT_MIN_VALUE || r->n_lits >= MAX_LITERALS)
        return GG_OK;
    for (int i = 0; i < r->n_lits; i++)
        if (strcmp(r->lits[i].value, value) == 0)
            return GG_OK;
    char *copy = ggi_strdup(value);
    if (!copy)
        return ggi_error(GG_ENOMEM, "out of memory");
    /* Longer secrets first, so one that contains another is replaced whole. */
    int at = r->n_lits;
    while (at > 0 && strlen(r->lits[at - 1].value) < strlen(copy)) {
        r->lits[at] = r->lits[at - 1];
        at--;
    }
    r->lits[at].value = copy;
    r->lits[at].kind = kind;
    r->n_lits++;
    return GG_OK;
}

/* The values of the variables named in GRYPHGEN_SECRET_ENV (comma-separated). */
static int add_secret_env(ggi_redactor *r)
{
    const char *list = getenv("GRYPHGEN_SECRET_ENV");
    while (list && *list) {
        size_t n = strcspn(list, ", ");
        char name[256];
        if (n > 0 && n < sizeof name) {
            memcpy(name, list, n);
            name[n] = '\0';
            int rc = add_literal(r, getenv(name), "env");
            if (rc)
                return rc;
        }
        list += n;
        list += strspn(list, ", ");
    }
    return GG_OK;
}

static int add_rule(ggi_redactor *r, const char *pattern, const char *kind, const char *file,
                    int line)
{
    rule *grown = realloc(r->rules, (size_t)(r->n_rules + 1) * sizeof *grown);
    if (!grown)
        return ggi_error(GG_ENOMEM, "out of memory");
    r->rules = grown;
    int e = regcomp(&grown[r->n_rules].re, pattern, REG_EXTENDED);
    if (e) {
        char why[256];
        regerror(e, &grown[r->n_rules].re, why, sizeof why);
        if (file)
            return ggi_error(GG_EINVAL, "redaction patterns %s line %d: %s", file, line, why);
        return ggi_error(GG_EINVAL, "built-in redaction pattern '%s': %s", kind, why);
    }
    grown[r->n_rules].kind = kind;
    r->n_rules++;
    return GG_OK;
}

static int load_patterns(ggi_redactor *r, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return ggi_error(errno == ENOENT ? GG_ENOTFOUND : GG_EIO,
                         "redaction patterns %s: %s", path, strerror(errno));
    char line[GGI_REDACT_MAX_PATTERN_LEN + 2];
    int lineno = 0, n = 0, rc = GG_OK;
    while (rc == GG_OK && fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            rc = ggi_error(GG_ETOOBIG, "redaction patterns %s line %d: longer than %u bytes",
                           path, lineno, GGI_REDACT_MAX_PATTERN_LEN);
            break;
        }
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (!len || line[0] == '#')
            continue;
        if (++n > GGI_REDACT_MAX_PATTERNS) {
            rc = ggi_error(GG_ETOOBIG, "redaction patterns %s: more than %d patterns", path,
                           GGI_REDACT_MAX_PATTERNS);
            break;
        }
        rc = add_rule(r, line, "pattern", path, lineno);
    }
    fclose(f);
    return rc;
}

int ggi_redactor_new(ggi_redactor **out, const char *api_key, const char *patterns_file)
{
    if (!out)
        return ggi_error(GG_EINVAL, "redactor: out pointer is NULL");
    *out = NULL;
    ggi_redactor *r = calloc(1, sizeof *r);
    if (!r)
        return ggi_error(GG_ENOMEM, "out of memory");
    int rc = add_literal(r, api_key, "api_key");
    if (!rc)
        rc = add_literal(r, getenv("GRYPHGEN_LLM_API_KEY"), "api_key");
    if (!rc)
        rc = add_literal(r, getenv("OPENAI_API_KEY"), "api_key");
    if (!rc)
        rc = add_secret_env(r);
    for (size_t i = 0; !rc && i < N_BUILTIN; i++)
        rc = add_rule(r, builtin[i][1], builtin[i][0], NULL, 0);
    if (!patterns_file || !*patterns_file)
        patterns_file = getenv("GRYPHGEN_REDACT_PATTERNS");
    if (!rc && patterns_file && *patterns_file)
        rc = load_patterns(r, patterns_file);
    if (rc) {
        ggi_redactor_free(&r);
        return rc;
    }
    *out = r;
    return GG_OK;
}

void ggi_redactor_free(ggi_redactor **pr)
{
    if (!pr || !*pr)
        return;
    ggi_redactor *r = *pr;
    for (int i = 0; i < r->n_lits; i++) {
        memset(r->lits[i].value, 0, strlen(r->lits[i].value));
        free(r->lits[i].value);
    }
    for (int i = 0; i < r->n_rules; i++)
        regfree(&r->rules[i].re);
    free(r->rules);
    free(r);
    *pr = NULL;
}

static int put_placeholder(ggi_buf *b, const char *kind)
{
    return ggi_buf_printf(b, "[REDACTED:%s]", kind);
}

/* One literal over text into b; returns the replacements or a negative code. */
static int replace_literal(const literal *l, const char *text, ggi_buf *b)
{
    int n = 0;
    size_t vlen = strlen(l->value);
    const char *p = text, *hit;
    while ((hit = strstr(p, l->value))) {
        if (ggi_buf_append(b, p, (size_t)(hit - p)) || put_placeholder(b, l->kind))
            return GG_ENOMEM;
        n++;
        p = hit + vlen;
    }
    return ggi_buf_puts(b, p) ? GG_ENOMEM : n;
}

static int replace_rule(const rule *ru, const char *text, ggi_buf *b)
{
    int n = 0;
    const char *p = text;
    regmatch_t m;
    while (*p && regexec(&ru->re, p, 1, &m, p == text ? 0 : REG_NOTBOL) == 0) {
        if (m.rm_eo == m.rm_so) { /* an empty match (an operator's pattern): step over it */
            size_t step = (size_t)m.rm_so + 1;
            if (ggi_buf_append(b, p, step))
                return GG_ENOMEM;
            p += step;
            continue;
        }
        if (ggi_buf_append(b, p, (size_t)m.rm_so) || put_placeholder(b, ru->kind))
            return GG_ENOMEM;
        n++;
        p += m.rm_eo;
    }
    return ggi_buf_puts(b, p) ? GG_ENOMEM : n;
}

char *ggi_redact_text(const ggi_redactor *r, const char *text, int *n_out)
{
    if (n_out)
        *n_out = 0;
    char *cur = ggi_strdup(text ? text : "");
    int total = 0;
    for (int i = 0; r && cur && i < r->n_lits + r->n_rules; i++) {
        ggi_buf b = GGI_BUF_INIT;
        int n = i < r->n_lits ? replace_literal(&r->lits[i], cur, &b)
                              : replace_rule(&r->rules[i - r->n_lits], cur, &b);
        if (n < 0) {
            ggi_buf_free(&b);
            free(cur);
            return NULL;
        }
        if (n == 0) {
            ggi_buf_free(&b);
            continue;
        }
        total += n;
        free(cur);
        cur = ggi_buf_steal(&b);
    }
    if (cur && n_out)
        *n_out = total;
    return cur;
}

static int redact_tree(const ggi_redactor *r, cJSON *item)
{
    int total = 0;
    if (cJSON_IsString(item) && item->valuestring) {
        int n = 0;
        char *clean = ggi_redact_text(r, item->valuestring, &n);
        if (!clean)
            return GG_ENOMEM;
        if (n > 0) {
            /* the old value may hold a secret: wipe it before it is freed */
            memset(item->valuestring, 0, strlen(item->valuestring));
            char *set = cJSON_SetValuestring(item, clean);
            free(clean);
            if (!set)
                return GG_ENOMEM;
            total += n;
        } else {
            free(clean);
        }
        return total;
    }
    for (cJSON *c = item ? item->child : NULL; c; c = c->next) {
        int n = redact_tree(r, c);
        if (n < 0)
            return n;
        total += n;
    }
    return total;
}

int ggi_redact_request(const ggi_redactor *r, cJSON *request)
{
    static const char *const parts[] = { "context", "feedback" };
    int total = 0;
    for (size_t i = 0; r && i < sizeof parts / sizeof parts[0]; i++) {
        int n = redact_tree(r, cJSON_GetObjectItemCaseSensitive(request, parts[i]));
        if (n < 0)
            return ggi_error(GG_ENOMEM, "out of memory redacting the request");
        total += n;
    }
    return total;
}
