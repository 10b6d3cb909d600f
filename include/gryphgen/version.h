/*
 * gryphgen/version.h - kept for hosts that include the version header by name; the version
 * macros and functions live in common.h.
 *
 * THREAD SAFETY: see common.h.
 */
#ifndef GRYPHGEN_VERSION_H
#define GRYPHGEN_VERSION_H
#include "common.h"
#endif
