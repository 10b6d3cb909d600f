/*
 * gryphgen.h - the umbrella header of libgryphgen. It includes the public API; backend
 * vtables (gryphgen/sys/) are included by name only by code that implements a backend.
 *
 * THREAD SAFETY: each included header states its own rules.
 */
#ifndef GRYPHGEN_H
#define GRYPHGEN_H

#include "gryphgen/common.h"
#include "gryphgen/version.h"
#include "gryphgen/log.h"
#include "gryphgen/executor.h"
#include "gryphgen/generator.h"
#include "gryphgen/retriever.h"
#include "gryphgen/transport.h"
#include "gryphgen/orchestrator.h"
#include "gryphgen/worker.h"
#include "gryphgen/client.h"
#include "gryphgen/security.h"
#include "gryphgen/workspace.h"

#endif
