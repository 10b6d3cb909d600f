/*
 * openai_message.c - request building and response parsing of the "openai" generator
 * backend: the prompt's messages and the request body, and the reading of a reply into a
 * generator response (the code, citations, usage, the arm that answered). Cut here because
 * these are JSON transformations with no I/O and no shared state.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "../core/ggi.h"
#include "builtin.h"
#include "hooks.h"
#include "journal.h"
#include "openai.h"
#include "citations.h"
#include "prompt.h"
#include "redact.h"
#include "strategy.h"
#include "openai_internal.h"

/* ---- the reply ---- */

int ggi_openai_read_reply(const openai *g, const endpoint *e, const exchange *x, const cJSON *req,
                      const cJSON *arm_json, char **out)
{
    const cJSON *task = cJSON_GetObjectItemCaseSensitive(req, "task");
    /* ggi_json_parse also refuses a NUL or bytes that are not UTF-8 in any string: cJSON
     * alone would end the code at the NUL, and the program run would not be the model's. */
    cJSON *j = NULL;
    if (ggi_json_parse(x->reply.body.data ? x->reply.body.data : "", x->reply.body.len, &j) !=
            GG_OK ||
        !cJSON_IsObject(j)) {
        char why[512];
        snprintf(why, sizeof why, "%s", j ? "another JSON value" : gg_error_last());
        cJSON_Delete(j);
        return ggi_error(GG_EGENERATOR,
                         "openai: %s: the response is not a JSON object (%zu bytes): %s",
                         e->shown, x->reply.body.len, why);
    }
    int rc = GG_OK;
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(j, "choices");
    const cJSON *c0 = cJSON_GetArrayItem(choices, 0);
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(c0, "message");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
    if (!cJSON_IsArray(choices) || !c0) {
        char smsg[SERVER_MSG_MAX];
        ggi_openai_server_message(g, e, x, smsg, sizeof smsg);
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
        rc = ggi_error(GG_EGENERATOR, "openai: %s: the response has no choices%s%s", e->shown,
                       err ? ": " : "", err ? smsg : "");
    } else if (!cJSON_IsObject(msg)) {
        rc = ggi_error(GG_EGENERATOR, "openai: %s: the response's choices[0] has no message",
                       e->shown);
    } else if (!cJSON_IsString(content) || !content->valuestring) {
        rc = ggi_error(GG_EGENERATOR,
                       "openai: %s: the response's choices[0].message has no content string",
                       e->shown);
    }
    char *code = NULL, *answer = NULL;
    cJSON *cited = NULL;
    /* The "CITED:" lines the prompt asks for are taken out before the code is. */
    if (!rc)
        rc = ggi_citations_take(content->valuestring,
                                cJSON_GetObjectItemCaseSensitive(req, "context"), &answer, &cited);
    if (!rc) {
        const char *lang = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(task,
                                                                                  "language"));
        const char *entry =
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(task, "entry_point"));
        const cJSON *ws = cJSON_GetObjectItemCaseSensitive(task, "workspace");
        /* A workspace task's answer is a diff or whole files: kept as the model wrote it
         * (the patch reader takes it out of fences and prose itself, patch.h). */
        code = cJSON_IsObject(ws) ? ggi_strdup(answer)
                                  : ggi_prompt_extract_code(answer, entry, lang);
        if (!code)
            rc = ggi_error(GG_ENOMEM, "out of memory");
        else if (!code[strspn(code, " \t\r\n")])
            rc = ggi_error(GG_EGENERATOR, "openai: %s: the model's answer holds no code",
                           e->shown);
        else if (strlen(code) > g->max_code)
            rc = ggi_error(GG_ETOOBIG, "openai: %s: the code is %zu bytes, the limit is %zu",
                           e->shown, strlen(code), g->max_code);
    }
    cJSON *r = NULL;
    if (!rc) {
        const char *model = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "model"));
        if (!model) /* the server did not say: the one asked for */
            model = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(arm_json, "model"));
        const char *finish =
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c0, "finish_reason"));
        r = cJSON_CreateObject();
        int bad = !r || ggi_json_add_str(r, "code", code) ||
                  ggi_json_add_str(r, "generator", "openai") ||
                  ggi_json_add_str(r, "model", model ? model : g->model) ||
                  ggi_json_add_str(r, "endpoint", e->shown) ||
                  ggi_json_add_str(r, "finish_reason", finish);
        if (!bad && cJSON_GetArraySize(cited) > 0) {
            if (cJSON_AddItemToObject(r, "cited", cited))
                cited = NULL;
            else
                bad = 1;
        }
        cJSON *armj = bad ? NULL : cJSON_Duplicate(arm_json, 1);
        if (!bad && (!armj || !cJSON_AddItemToObject(r, "arm", armj))) {
            cJSON_Delete(armj);
            bad = 1;
        }
        const cJSON *usage = cJSON_GetObjectItemCaseSensitive(j, "usage");
        if (!bad && cJSON_IsObject(usage)) {
            cJSON *u = cJSON_AddObjectToObject(r, "usage");
            static const char *const keys[] = { "prompt_tokens", "completion_tokens",
                                                "total_tokens" };
            bad = !u;
            for (size_t i = 0; !bad && i < 3; i++) {
                const cJSON *v = cJSON_GetObjectItemCaseSensitive(usage, keys[i]);
                if (cJSON_IsNumber(v) && v->valuedouble >= 0)
                    bad = ggi_json_add_num(u, keys[i], v->valuedouble);
            }
        }
        if (!bad && !(*out = ggi_json_print(r)))
            bad = 1;
        if (bad)
            rc = ggi_error(GG_ENOMEM, "out of memory building a generator response");
    }
    cJSON_Delete(r);
    cJSON_Delete(cited);
    free(answer);
    free(code);
    cJSON_Delete(j);
    return rc;
}

/* ---- the request ---- */

/* The prompt's messages for req (cJSON_Delete them); *override gets the temperature the
 * Task Monitor's strategy asks for after a stuck loop, or -1. */
cJSON *ggi_openai_body_messages(const openai *g, const cJSON *req, double *override)
{
    *override = -1;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(req, "strategy");
    double want = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(st, "temperature"));
    if (isfinite(want) && want >= 0 && want <= 2)
        *override = want;
    cJSON *messages = NULL;
    if (ggi_prompt_messages(g->tpl, req, &messages))
        return NULL;
    return messages;
}

/* The request body for model and temperature (negative: left out) around messages. */
char *ggi_openai_body_text(const openai *g, const cJSON *messages, const char *model,
                       double temperature)
{
    cJSON *b = cJSON_CreateObject();
    int bad = !b || ggi_json_add_str(b, "model", model) ||
              !cJSON_AddItemReferenceToObject(b, "messages", (cJSON *)messages);
    if (!bad && temperature >= 0)
        bad = ggi_json_add_num(b, "temperature", temperature);
    if (!bad && g->max_tokens > 0)
        bad = ggi_json_add_num(b, "max_tokens", g->max_tokens);
    if (!bad && g->seed >= 0)
        bad = ggi_json_add_num(b, "seed", (double)g->seed);
    bad = bad || ggi_json_add_bool(b, "stream", 0);
    char *s = bad ? NULL : ggi_json_print(b);
    cJSON_Delete(b);
    if (!s)
        ggi_error(GG_ENOMEM, "out of memory building a model request");
    return s;
}

/* What the response says of the arm that answered. */
cJSON *ggi_openai_arm_json(const openai *g, int i, double temperature, int overridden)
{
    const arm *a = &g->arms[i];
    cJSON *j = cJSON_CreateObject();
    if (!j || ggi_json_add_num(j, "index", i) ||
        ggi_json_add_str(j, "endpoint", g->eps[a->ep].shown) ||
        ggi_json_add_num(j, "endpoint_index", a->ep) || ggi_json_add_str(j, "model", a->model) ||
        ggi_json_add_num(j, "temperature", temperature) ||
        (overridden && ggi_json_add_bool(j, "strategy", 1))) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}
