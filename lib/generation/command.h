/*
 * command.h - the "command:PROGRAM" generator backend: runs PROGRAM through /bin/sh -c with
 * the request JSON on stdin and takes its stdout as the code. PROGRAM is the host's own,
 * trusted program: it inherits the host's environment and working directory and is not
 * sandboxed (only the timeout and the output cap hold). Internal; gg_generator_new() calls
 * the constructor for specs that start with "command:".
 *
 * THREAD SAFETY: generate may be called concurrently (each call runs its own process).
 */
#ifndef GGI_COMMAND_H
#define GGI_COMMAND_H

#include <stddef.h>

#include "gryphgen/sys/generator.h"

/** Defaults used when the constructor is given 0. */
#define GGI_COMMAND_DEFAULT_TIMEOUT_S 60.0
#define GGI_COMMAND_DEFAULT_MAX_OUTPUT (1024u * 1024u)

/**
 * Creates a command backend and fills *vt_out (generate, destroy, name "command") and
 * *self_out, which the caller owns and releases through vt_out->destroy. program is the
 * text after "command:" (copied). timeout_s: how long one run may take (0: 60 s);
 * max_output: the largest accepted code in bytes (0: 1 MiB).
 *
 * generate answers {"code": <stdout>, "generator": "command"} and fails with:
 * GG_EINVAL malformed request JSON; GG_ETIMEDOUT the program ran out of time;
 * GG_EGENERATOR non-zero exit or death by a signal (the tail of its stderr in the message),
 * or empty (all white space) output, or the shell could not be started;
 * GG_ETOOBIG output above max_output. Output that is not valid UTF-8 has its bad bytes
 * replaced by U+FFFD.
 *
 * Returns 0, GG_EINVAL (empty program, negative or non-finite timeout) or GG_ENOMEM.
 */
int ggi_command_generator_new(const char *program, double timeout_s, size_t max_output,
                              gg_generator_vtable *vt_out, void **self_out);

#endif
