/*
 * endpoints.c - parses and walks the endpoint list of a worker's or client's connect
 * option (endpoints.h): "tcp://a:5555,tcp://b:5555" names a primary/backup pair, and the
 * peer moves along it when the orchestrator it talks to is passive or gone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint_rule.h"
#include "endpoints.h"

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

int ggi_endpoints_parse(const char *text, int check_rule, int has_keys, int insecure,
                        ggi_endpoints *out)
{
    memset(out, 0, sizeof *out);
    if (!text || !*text)
        return ggi_error(GG_EINVAL, "option 'connect' must name the orchestrator's endpoint "
                         "(or several, comma-separated)");
    const char *p = text;
    for (unsigned i = 0;; i++) {
        size_t len = strcspn(p, ",");
        const char *s = p, *e = p + len;
        while (s < e && is_blank(*s))
            s++;
        while (e > s && is_blank(e[-1]))
            e--;
        int rc = GG_OK;
        if (e == s)
            rc = ggi_error(GG_EINVAL, "option 'connect': endpoint %u of '%.200s' is empty", i + 1,
                           text);
        else if (i >= GGI_MAX_ENDPOINTS)
            rc = ggi_error(GG_EINVAL, "option 'connect' lists more than %d endpoints",
                           GGI_MAX_ENDPOINTS);
        else if ((size_t)(e - s) > GGI_MAX_ENDPOINT_LEN)
            rc = ggi_error(GG_EINVAL, "option 'connect': endpoint %u is longer than %d bytes",
                           i + 1, GGI_MAX_ENDPOINT_LEN);
        else if (!(out->ep[i] = ggi_strndup(s, (size_t)(e - s))))
            rc = ggi_error(GG_ENOMEM, "out of memory");
        for (unsigned k = 0; rc == GG_OK && k < i; k++)
            if (strcmp(out->ep[k], out->ep[i]) == 0)
                rc = ggi_error(GG_EINVAL, "option 'connect' lists %s twice", out->ep[i]);
        if (rc == GG_OK && check_rule)
            rc = ggi_endpoint_rule(out->ep[i], has_keys, insecure,
                                   "curve_key_file and curve_server_key");
        if (rc != GG_OK) {
            ggi_endpoints_free(out);
            return rc;
        }
        out->n = i + 1;
        if (!p[len])
            return GG_OK;
        p += len + 1;
    }
}

const char *ggi_endpoints_current(const ggi_endpoints *e)
{
    return e->n ? e->ep[e->cur % e->n] : "";
}

const char *ggi_endpoints_next(ggi_endpoints *e)
{
    if (e->n)
        e->cur = (e->cur + 1) % e->n;
    return ggi_endpoints_current(e);
}

void ggi_endpoints_describe(const ggi_endpoints *e, char *buf, size_t size)
{
    size_t used = 0;
    if (size)
        buf[0] = '\0';
    for (unsigned i = 0; i < e->n && used + 1 < size; i++) {
        int w = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", e->ep[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

void ggi_endpoints_free(ggi_endpoints *e)
{
    for (unsigned i = 0; i < GGI_MAX_ENDPOINTS; i++)
        free(e->ep[i]);
    memset(e, 0, sizeof *e);
}

/* Whether a reply is a passive orchestrator's refusal: ok false, code GG_ESTATE and a message
 * beginning "passive:" (the standby of a primary/backup pair, docs/protocol.md "Failover"). */
int ggi_reply_is_passive(const cJSON *body)
{
    const char *msg =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "message"));
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(body, "code");
    return !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "ok")) &&
           cJSON_IsNumber(code) && (int)code->valuedouble == GG_ESTATE && msg &&
           strncmp(msg, "passive:", 8) == 0;
}
