/*
 * command.c - the "command:PROGRAM" generator backend: each request runs PROGRAM through
 * /bin/sh -c with the request JSON on stdin (via ggi_spawn_run: own process group, timeout,
 * capped output) and wraps its stdout as the response's code.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/ggi.h"
#include "../execution/spawn.h"
#include "command.h"
#include "redact.h"

extern char **environ;

/* How much of the program's stderr is kept, and how much of its end goes into a message. */
#define STDERR_KEEP (64u * 1024u)
#define STDERR_TAIL 400

typedef struct command_gen {
    char *program;
    double timeout_s;
    size_t max_output;
    ggi_redactor *redactor; /* secrets taken out of context and feedback (redact.h) */
} command_gen;

/* The last STDERR_TAIL bytes of the captured stderr as clean one-paragraph text (malloc'd). */
static char *stderr_tail(const ggi_buf *err)
{
    size_t len = err->len, from = len > STDERR_TAIL ? len - STDERR_TAIL : 0;
    /* Do not start inside a UTF-8 sequence. */
    while (from < len && from > 0 && ((unsigned char)err->data[from] & 0xC0) == 0x80)
        from++;
    while (len > from && isspace((unsigned char)err->data[len - 1]))
        len--;
    char *clean = NULL;
    if (ggi_utf8_sanitize(err->data ? err->data + from : "", len - from, &clean))
        return NULL;
    return clean;
}

static int all_space(const ggi_buf *b)
{
    for (size_t i = 0; i < b->len; i++) {
        if (!isspace((unsigned char)b->data[i]))
            return 0;
    }
    return 1;
}

static int command_generate(void *self, const char *request_json, char **out)
{
    command_gen *cg = self;
    *out = NULL;
    if (!request_json)
        return ggi_error(GG_EINVAL, "command generator: request is NULL");
    size_t req_len = strlen(request_json);
    cJSON *req = NULL;
    if (ggi_json_parse(request_json, req_len, &req))
        return ggi_error_wrap("command generator: request: ");
    /* The program may send the request anywhere: it gets it without secrets. */
    char *clean = NULL;
    if (ggi_redact_request(cg->redactor, req) > 0 && !(clean = ggi_json_print(req))) {
        cJSON_Delete(req);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    cJSON_Delete(req);
    if (clean) {
        request_json = clean;
        req_len = strlen(clean);
    }

    const char *argv[] = { "/bin/sh", "-c", cg->program, NULL };
    ggi_spawn_opts o;
    memset(&o, 0, sizeof o);
    o.argv = argv;
    o.envp = (const char *const *)environ;
    o.stdin_data = request_json;
    o.stdin_len = req_len;
    o.timeout_s = cg->timeout_s;
    o.max_stdout = cg->max_output + 1; /* one byte more tells "too big" from "just fits" */
    o.max_stderr = STDERR_KEEP;
    ggi_spawn_result r;
    memset(&r, 0, sizeof r);
    int rc = ggi_spawn_run(&o, &r);
    free(clean);
    if (rc) {
        if (rc == GG_ENOMEM)
            return rc;
        char msg[1024];
        snprintf(msg, sizeof msg, "command generator: cannot start /bin/sh: %s",
                 gg_error_last());
        return gg_error_set(GG_EGENERATOR, msg);
    }

    if (r.timed_out) {
        rc = ggi_error(GG_ETIMEDOUT, "command generator '%s' timed out after %g s", cg->program,
                       cg->timeout_s);
    } else if (r.term_signal || r.exit_code != 0) {
        char *tail = stderr_tail(&r.err);
        char how[64];
        if (r.term_signal) {
            char sig[24];
            ggi_spawn_signal_name(r.term_signal, sig);
            snprintf(how, sizeof how, "was killed by %s", sig);
        } else {
            snprintf(how, sizeof how, "exited with status %d", r.exit_code);
        }
        rc = ggi_error(GG_EGENERATOR, "command generator '%s' %s%s%s", cg->program, how,
                       tail && *tail ? ": " : "", tail ? tail : "");
        free(tail);
    } else if (r.out_truncated || r.out.len > cg->max_output) {
        rc = ggi_error(GG_ETOOBIG, "command generator '%s' wrote more than %zu bytes",
                       cg->program, cg->max_output);
    } else if (all_space(&r.out)) {
        rc = ggi_error(GG_EGENERATOR, "command generator '%s' wrote no code", cg->program);
    }
    if (rc) {
        ggi_spawn_result_free(&r);
        return rc;
    }

    char *code = NULL;
    rc = ggi_utf8_sanitize(r.out.data, r.out.len, &code);
    ggi_spawn_result_free(&r);
    if (rc)
        return rc;
    /* A program may answer with a response object instead of bare code: {"code": ...,
     * "cited": [...]} (docs/generator.md); anything else is the code. */
    cJSON *own = NULL;
    const char *first = code + strspn(code, " \t\r\n");
    if (*first == '{' && (ggi_json_parse(code, strlen(code), &own) != GG_OK ||
                          !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(own, "code")))) {
        cJSON_Delete(own);
        own = NULL;
    }
    const char *text = own ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(own, "code"))
                           : code;
    const cJSON *cited = own ? cJSON_GetObjectItemCaseSensitive(own, "cited") : NULL;
    cJSON *resp = cJSON_CreateObject();
    if (!resp || ggi_json_add_str(resp, "code", text) ||
        ggi_json_add_str(resp, "generator", "command") ||
        (cJSON_IsArray(cited) &&
         !cJSON_AddItemToObject(resp, "cited", cJSON_Duplicate(cited, 1)))) {
        cJSON_Delete(resp);
        cJSON_Delete(own);
        free(code);
        return ggi_error(GG_ENOMEM, "out of memory building the response");
    }
    if (own && !text[strspn(text, " \t\r\n")]) {
        cJSON_Delete(resp);
        cJSON_Delete(own);
        free(code);
        return ggi_error(GG_EGENERATOR, "command generator '%s' wrote no code", cg->program);
    }
    cJSON_Delete(own);
    free(code);
    *out = ggi_json_print(resp);
    cJSON_Delete(resp);
    return *out ? GG_OK : ggi_error(GG_ENOMEM, "out of memory printing the response");
}

static void command_destroy(void *self)
{
    command_gen *cg = self;
    if (!cg)
        return;
    free(cg->program);
    ggi_redactor_free(&cg->redactor);
    free(cg);
}

int ggi_command_generator_new(const char *program, double timeout_s, size_t max_output,
                              gg_generator_vtable *vt_out, void **self_out)
{
    if (self_out)
        *self_out = NULL;
    if (!vt_out || !self_out)
        return ggi_error(GG_EINVAL, "command generator: output pointers are NULL");
    if (!program || !*program)
        return ggi_error(GG_EINVAL, "command generator: the program after 'command:' is empty");
    if (!isfinite(timeout_s) || timeout_s < 0)
        return ggi_error(GG_EINVAL, "command generator: timeout_s must be 0 or positive");
    if (max_output > SIZE_MAX - 1)
        max_output = SIZE_MAX - 1;
    command_gen *cg = calloc(1, sizeof *cg);
    if (!cg || !(cg->program = strdup(program))) {
        free(cg);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    int rc = ggi_redactor_new(&cg->redactor, NULL, NULL);
    if (rc) {
        command_destroy(cg);
        return rc;
    }
    cg->timeout_s = timeout_s > 0 ? timeout_s : GGI_COMMAND_DEFAULT_TIMEOUT_S;
    cg->max_output = max_output ? max_output : GGI_COMMAND_DEFAULT_MAX_OUTPUT;
    gg_generator_vtable vt = GG_GENERATOR_VTABLE_INIT;
    vt.generate = command_generate;
    vt.destroy = command_destroy;
    vt.name = "command";
    *vt_out = vt;
    *self_out = cg;
    return GG_OK;
}
