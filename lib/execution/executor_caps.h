/*
 * executor_caps.h - what an executor handle's backend says it does (its vtable's
 * GG_EXECUTOR_CAP_* bits), for the code that would otherwise recognise built-in backends by
 * name: the attempt loop (benchmark executors), workspace copies (unprivileged jobs) and
 * the worker's isolation levels. Internal.
 */
#ifndef GGI_EXECUTOR_CAPS_H
#define GGI_EXECUTOR_CAPS_H

#include <stdint.h>

#include "gryphgen/sys/executor.h"

/** The GG_EXECUTOR_CAP_* bits of ex's backend (a version 1 vtable: rlimits); 0 for NULL. */
uint32_t ggi_executor_caps(const gg_executor_t *ex);

#endif
