/*
 * credit.c - credit assignment for retrieval learning (credit.h): position and citation
 * weights of an attempt's references, the references that led it, the citations that count,
 * the demotion of a failed attempt's leads in the next context, and the kind key of a task.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/ggi.h"
#include "credit.h"
#include "fts5.h"

#define KIND_WORDS 32

static int word_cmp(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

void ggi_credit_kind(const char *text, const char *language, char out[GGI_CREDIT_KIND_MAX])
{
    char words[KIND_WORDS][33];
    int n = 0;
    const unsigned char *p = (const unsigned char *)(text ? text : "");
    while (*p && n < KIND_WORDS) {
        while (*p && !((*p | 32) >= 'a' && (*p | 32) <= 'z'))
            p++;
        const unsigned char *s = p;
        while ((*p | 32) >= 'a' && (*p | 32) <= 'z')
            p++;
        size_t len = (size_t)(p - s);
        if (len < 3 || len > 32)
            continue;
        char w[33];
        for (size_t i = 0; i < len; i++)
            w[i] = (char)(s[i] | 32);
        w[len] = '\0';
        if (ggi_fts5_stop_word(w, len))
            continue;
        int dup = 0;
        for (int i = 0; i < n && !dup; i++)
            dup = strcmp(words[i], w) == 0;
        if (!dup)
            memcpy(words[n++], w, len + 1);
    }
    const char *lang = language && *language ? language : "any";
    if (n == 0) {
        snprintf(out, GGI_CREDIT_KIND_MAX, "%.32s:-", lang);
        return;
    }
    qsort(words, (size_t)n, sizeof words[0], word_cmp);
    char joined[KIND_WORDS * 34];
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        size_t wl = strlen(words[i]);
        memcpy(joined + len, words[i], wl);
        len += wl;
        joined[len++] = ' ';
    }
    char h[17];
    ggi_hash_hex(joined, len, h);
    snprintf(out, GGI_CREDIT_KIND_MAX, "%.32s:%s", lang, h);
}

int ggi_credit_id_ok(const char *s)
{
    if (!s || !*s)
        return 0;
    size_t n = 0;
    for (const char *p = s; *p; p++, n++) {
        char c = *p;
        if (n >= GGI_CREDIT_MAX_ID ||
            !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.' || c == ':' || c == '/'))
            return 0;
    }
    return 1;
}

int ggi_credit_kind_ok(const char *v)
{
    if (!v || !*v)
        return 0;
    size_t n = 0;
    for (const char *p = v; *p; p++, n++)
        if (n + 1 >= GGI_CREDIT_KIND_MAX ||
            !((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.' || *p == ':' || *p == '+'))
            return 0;
    return 1;
}

/* Whether s is among the first GGI_CREDIT_SCAN strings of arr. */
static int in_strings(const cJSON *arr, const char *s)
{
    const cJSON *it;
    int seen = 0;
    cJSON_ArrayForEach(it, arr)
    {
        if (++seen > GGI_CREDIT_SCAN)
            break;
        const char *v = cJSON_GetStringValue(it);
        if (v && strcmp(v, s) == 0)
            return 1;
    }
    return 0;
}

void ggi_credit_weights(const cJSON *ids, const cJSON *cited, double *weights, int n)
{
    int any_cited = 0, i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, ids)
    {
        const char *id = cJSON_GetStringValue(it);
        if (i++ >= n || any_cited)
            break;
        if (id && cJSON_IsArray(cited) && in_strings(cited, id))
            any_cited = 1;
    }
    i = 0;
    cJSON_ArrayForEach(it, ids)
    {
        if (i >= n)
            break;
        const char *id = cJSON_GetStringValue(it);
        if (any_cited)
            weights[i] = id && in_strings(cited, id) ? 1.0 : GGI_CREDIT_UNCITED;
        else
            weights[i] = pow(GGI_CREDIT_DECAY, i);
        i++;
    }
    for (; i < n; i++)
        weights[i] = 0;
}

int ggi_credit_demote_add(cJSON *out, const char *id)
{
    if (!out || !ggi_credit_id_ok(id) || in_strings(out, id) ||
        cJSON_GetArraySize(out) >= GGI_CREDIT_MAX_DEMOTE)
        return GG_OK;
    cJSON *s = cJSON_CreateString(id);
    if (!s || !cJSON_AddItemToArray(out, s)) {
        cJSON_Delete(s);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    return GG_OK;
}

int ggi_credit_leads(const cJSON *ids, const cJSON *cited, cJSON *out)
{
    int rc = GG_OK, any = 0, seen = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, ids)
    {
        if (++seen > GGI_CREDIT_SCAN)
            break;
        const char *id = cJSON_GetStringValue(it);
        if (id && cJSON_IsArray(cited) && in_strings(cited, id)) {
            any = 1;
            if ((rc = ggi_credit_demote_add(out, id)))
                return rc;
        }
    }
    if (!any) {
        const char *first = cJSON_GetStringValue(cJSON_GetArrayItem(ids, 0));
        if (first)
            rc = ggi_credit_demote_add(out, first);
    }
    return rc;
}

int ggi_credit_cited(const cJSON *cited, const cJSON *context, cJSON **out)
{
    *out = cJSON_CreateArray();
    if (!*out)
        return ggi_error(GG_ENOMEM, "out of memory");
    if (!cJSON_IsArray(cited))
        return GG_OK;
    const cJSON *it;
    int seen = 0;
    cJSON_ArrayForEach(it, cited)
    {
        /* A hostile list is read only so far: what a context of CONTEXT_K could name. */
        if (++seen > 4 * GGI_CREDIT_MAX_CITED || cJSON_GetArraySize(*out) >= GGI_CREDIT_MAX_CITED)
            break;
        const char *id = cJSON_GetStringValue(it);
        if (!ggi_credit_id_ok(id) || !ggi_json_array_has_id(context, id) || in_strings(*out, id))
            continue;
        cJSON *s = cJSON_CreateString(id);
        if (!s || !cJSON_AddItemToArray(*out, s)) {
            cJSON_Delete(s);
            cJSON_Delete(*out);
            *out = NULL;
            return ggi_error(GG_ENOMEM, "out of memory");
        }
    }
    return GG_OK;
}

int ggi_credit_demote(cJSON *context, const cJSON *demote, cJSON *demoted)
{
    if (!cJSON_IsArray(context) || !cJSON_IsArray(demote) || cJSON_GetArraySize(demote) == 0)
        return GG_OK;
    cJSON *wanted = cJSON_CreateArray();
    if (!wanted)
        return ggi_error(GG_ENOMEM, "out of memory");
    int rc = GG_OK;
    const cJSON *it;
    cJSON_ArrayForEach(it, demote)
    {
        if (cJSON_GetArraySize(wanted) >= GGI_CREDIT_MAX_DEMOTE)
            break;
        if ((rc = ggi_credit_demote_add(wanted, cJSON_GetStringValue(it))))
            break;
    }
    int n = cJSON_GetArraySize(context);
    /* Detach the demoted ones in order and append them: the others keep their order. */
    cJSON *tail = rc ? NULL : cJSON_CreateArray();
    if (!rc && !tail)
        rc = ggi_error(GG_ENOMEM, "out of memory");
    for (int i = 0; !rc && i < n;) {
        cJSON *doc = cJSON_GetArrayItem(context, i);
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(doc, "id"));
        if (id && in_strings(wanted, id)) {
            cJSON_AddItemToArray(tail, cJSON_DetachItemFromArray(context, i));
            n--;
            if (demoted && (rc = ggi_credit_demote_add(demoted, id)))
                break;
        } else {
            i++;
        }
    }
    while (tail && cJSON_GetArraySize(tail) > 0)
        cJSON_AddItemToArray(context, cJSON_DetachItemFromArray(tail, 0));
    cJSON_Delete(tail);
    cJSON_Delete(wanted);
    return rc;
}
