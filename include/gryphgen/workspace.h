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
    /** The branch to create, a full name such as "fix/x" (made into refs/heads/...); NULL:
     *  "gryphgen/<task_id>", with characters a ref name may not hold replaced by '-'. */
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
 * resolved now), whose tree is that commit's tree with the patch applied, and whose message
 * is built from the task's prompt, id and passing attempt. The repository's HEAD, index and
 * working tree are never touched, and an existing branch is never moved.
 *
 * task_json is the task as submitted (its "workspace.repo" must be a local repository);
 * result_json its result. opts may be NULL for defaults. On success *out_json (free with
 * gg_free()) is {"branch": "refs/heads/...", "commit": sha, "parent": sha}.
 * Errors, each with a message naming what was wrong: GG_ESTATE (the task did not pass, or
 * its result has no patch), GG_EINVAL (malformed JSON, no "workspace.repo", a repository
 * given by URL, an unusable branch name), GG_EEXIST (the branch exists), GG_ENOTFOUND (no
 * repository there, or the base commit is not in it), GG_EVERSION, GG_EIO (the patch does
 * not apply to the base, or git failed).
 */
GG_API int gg_workspace_deliver(const char *task_json, const char *result_json,
                                const gg_deliver_options *opts, char **out_json);

/**
 * The passing task's patch in `git format-patch` form (a "From <sha> Mon Sep 17 00:00:00
 * 2001" line, From/Date/Subject headers, the message body, "---", the diff, and the
 * signature line), which `git am` applies. *out_text is freed with gg_free(). GG_ESTATE when
 * the task did not pass or has no patch, GG_EINVAL for malformed JSON.
 */
GG_API int gg_workspace_format_patch(const char *task_json, const char *result_json,
                                     char **out_text);

#ifdef __cplusplus
}
#endif
#endif
