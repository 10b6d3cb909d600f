/*
 * prompt.h - what a model-backed generator says to the model and how it reads the answer:
 * chat messages (system + user) rendered from a template with {{placeholders}} filled from a
 * generator request (task, retrieved context, feedback of earlier attempts), and the code
 * taken out of the model's reply (fenced blocks, or the whole text). Internal; used by the
 * "openai" backend (openai_message.c). The default template and the placeholders are documented in
 * docs/generator.md.
 *
 * THREAD SAFETY: a loaded template is immutable; ggi_prompt_messages() may be called on it
 * from several threads at once.
 */
#ifndef GGI_PROMPT_H
#define GGI_PROMPT_H

#include <stddef.h>

#include <cjson/cJSON.h>

/** Characters of retrieved context text put into one prompt at most. */
#define GGI_PROMPT_CONTEXT_BUDGET 6000
/** Characters of one earlier attempt's code, stderr or stdout put into a prompt at most. */
#define GGI_PROMPT_FEEDBACK_PART_MAX 4000
/** Largest template file accepted. */
#define GGI_PROMPT_TEMPLATE_MAX (256u * 1024u)

/** A system and a user message template. */
typedef struct ggi_prompt_template ggi_prompt_template;

/**
 * Loads the template file path, or the built-in template when path is NULL or "". The file
 * holds the user message, or both messages as "=== system ===\n...\n=== user ===\n..."
 * (a file with only the user part keeps the built-in system message). Every {{name}} must
 * be a known placeholder. Returns 0, GG_ENOTFOUND / GG_EIO (unreadable file, named),
 * GG_ETOOBIG, GG_EINVAL (unknown placeholder, empty user part) or GG_ENOMEM.
 */
int ggi_prompt_template_load(const char *path, ggi_prompt_template **out);

/** Frees a template and sets *ptpl to NULL; accepts NULL. */
void ggi_prompt_template_free(ggi_prompt_template **ptpl);

/**
 * Renders the chat messages for a generator request (docs/generator.md "Request"): a cJSON
 * array [{"role": "system", "content": ...}, {"role": "user", "content": ...}] in *out
 * (free with cJSON_Delete). Context documents are added in order while they fit within
 * GGI_PROMPT_CONTEXT_BUDGET characters. Returns 0, GG_EINVAL (malformed request: no task
 * object) or GG_ENOMEM.
 */
int ggi_prompt_messages(const ggi_prompt_template *tpl, const cJSON *request, cJSON **out);

/**
 * The code in a model's reply, in malloc'd memory (NULL only when out of memory). A
 * reasoning section <think>...</think> is skipped. With one fenced block (``` or ```lang)
 * its body; with several, the first that defines entry_point (may be NULL), else the first
 * whose language tag is language (may be NULL), else the first; an opening fence left
 * unclosed (a reply cut off by the token limit) counts up to the end. Without fences, the
 * whole reply with its surrounding blank lines trimmed.
 */
char *ggi_prompt_extract_code(const char *reply, const char *entry_point, const char *language);

#endif
