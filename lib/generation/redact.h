/*
 * redact.h - secrets kept out of what a model-backed generator sends: the texts of a
 * generator request that come from outside the task (retrieved context, the feedback of
 * earlier attempts: code, reasons, findings, stdout and stderr tails) are scanned before a
 * request leaves the host, and each secret found is replaced by "[REDACTED:kind]".
 *
 * What counts as a secret (docs/generator.md, "Secrets in prompts"):
 * - the configured API key and the values of GRYPHGEN_LLM_API_KEY and OPENAI_API_KEY
 *   (kind "api_key");
 * - the values of the environment variables named in GRYPHGEN_SECRET_ENV (comma-separated
 *   names; kind "env"), values shorter than GGI_REDACT_MIN_VALUE bytes ignored;
 * - private-key blocks, PEM "-----BEGIN ... PRIVATE KEY-----" to its END line, or to the end
 *   of the text when a tail cut it off ("private_key");
 * - tokens of common formats: OpenAI "sk-...", GitHub "ghp_/gho_/ghu_/ghs_/ghr_..." and
 *   "github_pat_...", AWS access key ids "AKIA..."/"ASIA...", Slack "xox[abposr]-...",
 *   JSON Web Tokens "eyJ....eyJ....sig" ("token:<format>");
 * - the POSIX extended regular expressions of the file named by GRYPHGEN_REDACT_PATTERNS
 *   (or the path given to ggi_redactor_new), one a line, '#' lines and blank lines skipped
 *   ("pattern").
 *
 * THREAD SAFETY: a redactor is immutable once made; ggi_redact_* may be called on it from
 * several threads at once.
 */
#ifndef GGI_REDACT_H
#define GGI_REDACT_H

#include <cjson/cJSON.h>

/** Secret values shorter than this are not redacted (they would match ordinary text). */
#define GGI_REDACT_MIN_VALUE 6
/** Lines of a pattern file at most, and bytes of one pattern. */
#define GGI_REDACT_MAX_PATTERNS 256
#define GGI_REDACT_MAX_PATTERN_LEN 1024

typedef struct ggi_redactor ggi_redactor;

/**
 * Makes a redactor with the built-in rules, api_key (may be NULL) as a literal secret, the
 * environment's secrets (see above) and the patterns of patterns_file (NULL:
 * $GRYPHGEN_REDACT_PATTERNS, when set). Returns 0, GG_ENOTFOUND/GG_EIO for a pattern file
 * that cannot be read, GG_EINVAL naming the file, line and error of a pattern that does not
 * compile, GG_ETOOBIG for too many or too long patterns, GG_ENOMEM.
 */
int ggi_redactor_new(ggi_redactor **out, const char *api_key, const char *patterns_file);

/** Frees a redactor (its copies of secrets are wiped) and sets *pr to NULL; accepts NULL. */
void ggi_redactor_free(ggi_redactor **pr);

/**
 * The text with every secret replaced, in malloc'd memory (NULL only when out of memory);
 * *n_out, when not NULL, gets the number of replacements.
 */
char *ggi_redact_text(const ggi_redactor *r, const char *text, int *n_out);

/**
 * Redacts, in place, every string under the request's "context" and "feedback" members
 * (the task itself is the submitter's and is left as it is). Returns the number of
 * replacements, or GG_ENOMEM.
 */
int ggi_redact_request(const ggi_redactor *r, cJSON *request);

#endif
