/*
 * citations.c - taking a model's "CITED: id, id" lines out of its reply (citations.h).
 */
#include <stdlib.h>
#include <string.h>

#include "../core/ggi.h"
#include "citations.h"

static int mark_char(char c)
{
    return c == ' ' || c == '\t' || c == '#' || c == '/' || c == '*' || c == '-' || c == '>' ||
           c == '`' || c == '_';
}

/* If the line [p, end) is a citation line, where its ids start; else NULL. */
static const char *citation_start(const char *p, const char *end)
{
    while (p < end && mark_char(*p))
        p++;
    static const char word[] = "cited:";
    if ((size_t)(end - p) < sizeof word - 1)
        return NULL;
    for (size_t i = 0; i < sizeof word - 1; i++)
        if ((p[i] | (p[i] >= 'A' && p[i] <= 'Z' ? 32 : 0)) != word[i])
            return NULL;
    return p + sizeof word - 1;
}

static int id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == ':' || c == '/' || c == '-';
}

static int listed(const cJSON *arr, const char *id)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
        if (strcmp(it->valuestring, id) == 0)
            return 1;
    return 0;
}

/* Reads the ids of one citation line [p, end) into cited. */
static int read_ids(const char *p, const char *end, const cJSON *context, cJSON *cited)
{
    for (int words = 0; p < end && words < GGI_CITATIONS_MAX_WORDS; words++) {
        while (p < end && !id_char(*p))
            p++;
        const char *s = p;
        while (p < end && id_char(*p))
            p++;
        /* "---" around an id, as the prompt's headers show it, is not part of it. */
        const char *e = p;
        while (s < e && *s == '-')
            s++;
        while (e > s && e[-1] == '-')
            e--;
        size_t len = (size_t)(e - s);
        if (len == 0 || len > GGI_CITATIONS_MAX_ID)
            continue;
        if (cJSON_GetArraySize(cited) >= GGI_CITATIONS_MAX)
            break;
        char id[GGI_CITATIONS_MAX_ID + 1];
        memcpy(id, s, len);
        id[len] = '\0';
        if (!ggi_json_array_has_id(context, id) || listed(cited, id))
            continue;
        cJSON *v = cJSON_CreateString(id);
        if (!v || !cJSON_AddItemToArray(cited, v)) {
            cJSON_Delete(v);
            return ggi_error(GG_ENOMEM, "out of memory");
        }
    }
    return GG_OK;
}

int ggi_citations_take(const char *reply, const cJSON *context, char **out_text,
                       cJSON **out_cited)
{
    *out_text = NULL;
    *out_cited = NULL;
    if (!reply)
        reply = "";
    ggi_buf b = GGI_BUF_INIT;
    cJSON *cited = cJSON_CreateArray();
    int rc = cited && ggi_buf_reserve(&b, strlen(reply) + 1) == GG_OK
                 ? GG_OK
                 : ggi_error(GG_ENOMEM, "out of memory");
    int lines = 0;
    const char *end = reply + strlen(reply);
    for (const char *line = reply; !rc && line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *line_end = nl ? nl : end;
        const char *ids = citation_start(line, line_end);
        if (ids) {
            if (lines++ < GGI_CITATIONS_MAX_LINES)
                rc = read_ids(ids, line_end, context, cited);
        } else {
            rc = ggi_buf_append(&b, line, (size_t)((nl ? nl + 1 : end) - line));
        }
        line = nl ? nl + 1 : end;
    }
    if (!rc && ggi_buf_puts(&b, "")) /* terminated even when empty */
        rc = ggi_error(GG_ENOMEM, "out of memory");
    if (rc) {
        ggi_buf_free(&b);
        cJSON_Delete(cited);
        return rc;
    }
    *out_text = ggi_buf_steal(&b);
    *out_cited = cited;
    return GG_OK;
}
