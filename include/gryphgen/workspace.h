/*
 * gryphgen/workspace.h - delivering what a workspace task produced (docs/tasks.md,
 * "Workspace tasks"; docs/ci.md): a passing task's patch as a commit on a new branch of its
 * repository, or as a `git format-patch` file. The CLI's `eval --deliver branch` and
 * `--patches DIR` are built on these.
 *
 * A workspace task's result (gryphgen/orchestrator.h) carries, besides the usual fields,
 * "patch" (the best attempt's unified diff against the base, git's format) and
 * "base_commit" (the commit the attempts started from, 40 hex digits).
 *
 * THREAD SAFETY: reentrant; two calls that deliver into the same repository at once are safe
 * (git's own reference locks), and one of two calls creating the same branch fails with
 * GG_EEXIST.
 *
 * Added in 1.1 (symbol version GRYPHGEN_1.1).
 */
#ifndef GRYPHGEN_WORKSPACE_H
#define GRYPHGEN_WORKSPACE_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Version of gg_deliver_options this header describes. */
#define GG_DELIVER_OPTIONS_VERSION 1

/** Options for gg_workspace_deliver(). Fields are only ever appended. */
typedef struct gg_deliver_options {
    uint32_t version;            /**< GG_DELIVER_OPTIONS_VERSION */
    /** The branch to create, a name such as "fix/x" (made into refs/heads/fix/x; a leading
     *  "refs/heads/" is accepted), checked as `git check-ref-format --branch` checks it.
     *  NULL: "gryphgen/<task_id>" made a valid name: bytes a ref may not hold (controls,
     *  space, ~ ^ : ? * [ \ and non-ASCII) become '-', and so do a dot after a dot, a
     *  component's leading or trailing dot, the '@' of "@{" and a lone "@"; a component
     *  ending in ".lock" gets a '-' after it; empty components are dropped; at most 200
     *  bytes. */
    const char *branch;
    /** NULL: $GIT_AUTHOR_NAME, else "gryphgen". */
    const char *author_name;
    /** NULL: $GIT_AUTHOR_EMAIL, else "gryphgen@localhost". */
    const char *author_email;
    /** NULL: $GIT_COMMITTER_NAME, else the author's. */
    const char *committer_name;
    /** NULL: $GIT_COMMITTER_EMAIL, else the author's. */
    const char *committer_email;
} gg_deliver_options;

/** Static initialiser with defaults. */
#define GG_DELIVER_OPTIONS_INIT { GG_DELIVER_OPTIONS_VERSION, NULL, NULL, NULL, NULL, NULL }

/**
 * Commits a passing workspace task's patch onto a new branch of the task's repository: one
 * commit whose parent is the result's "base_commit" (else the task's "workspace.ref"
 * resolved now, default HEAD), whose tree is that commit's tree with the patch applied, and
 * whose message is built from the task's prompt, id and passing attempt. The repository's
 * HEAD, index and working tree are never touched (only new objects and the one reference
 * are written), and an existing branch is never moved.
 *
 * The message: the prompt's first non-blank line, trimmed, at most 72 characters (cut at a
 * word's end when it is longer), or "gryphgen: task <task_id>" without a prompt; a blank
 * line; the prompt (without that first line when the subject holds it whole; at most 16
 * KiB); a blank line; the trailers "Gryphgen-Task: <task_id>" and "Gryphgen-Attempt:
 * <passed_attempt>". Author and committer come from opts, then the
 * environment (see gg_deliver_options); their times are now, or $GIT_AUTHOR_DATE and
 * $GIT_COMMITTER_DATE when set, in git's internal form "SECONDS +HHMM" (or "@SECONDS
 * +HHMM"); another form is GG_EINVAL naming the variable.
 *
 * task_json is the task as submitted (its "workspace.repo" must be a local repository, a
 * path; relative paths are taken from the current directory); result_json its result, whose
 * "task_id", when present, must be the task's. opts may be NULL for defaults. On success
 * *out_json (free with gg_free()) is {"branch": "refs/heads/...", "commit": sha, "parent":
 * sha}; on failure it is NULL and nothing was changed but, at most, unreferenced objects.
 * Errors, each with a message naming the task and what was wrong: GG_ESTATE (the task did
 * not pass, or its result has no patch), GG_EINVAL (malformed JSON, no "workspace.repo", a
 * repository given by URL, an unusable branch name or identity, a "base_commit" that is not
 * 40 hex digits, a "patch" that is no diff git can read or holds no change), GG_ETOOBIG (a
 * JSON text over 96 MiB, a patch over 64 MiB), GG_EEXIST (the branch exists), GG_ENOTFOUND
 * (no repository there, or the base commit or ref is not in it), GG_EVERSION (opts->version
 * unknown), GG_EBUSY (the branch's lock file stayed held by another writer for 5 s: a
 * crashed git may have left it), GG_EIO (the patch does not apply to the base, or git
 * failed).
 */
GG_API int gg_workspace_deliver(const char *task_json, const char *result_json,
                                const gg_deliver_options *opts, char **out_json);

/**
 * The passing task's patch in `git format-patch` form, which `git am` applies onto the base
 * to make the commit gg_workspace_deliver() would make: a "From 0000...0000 Mon Sep 17
 * 00:00:00 2001" line (the commit does not exist yet), "From:" (the author as for
 * gg_workspace_deliver() with no options), "Date:", "Subject: [PATCH] <first line>" (RFC
 * 2047-encoded when not ASCII), MIME headers declaring UTF-8, the message's body (prompt
 * lines `git am` would take as its end, such as "---" or "diff ...", indented by a space),
 * "---", the diff, and the signature "-- \ngryphgen <version>". No repository is read.
 * *out_text is freed with gg_free(). GG_ESTATE when the task did not pass or has no patch,
 * GG_EINVAL for malformed JSON or a bad identity or date in the environment, GG_ETOOBIG as
 * for gg_workspace_deliver().
 */
GG_API int gg_workspace_format_patch(const char *task_json, const char *result_json,
                                     char **out_text);

#ifdef __cplusplus
}
#endif
#endif
