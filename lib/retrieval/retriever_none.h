/*
 * retriever_none.h - whether a retriever handle is the built-in "none" backend, which finds
 * nothing and learns nothing: the attempt loop then skips retrieval and the scheduler runs
 * no learner. Asked by the backend's identity (its search slot), never by its name, so a
 * host's backend that calls itself "none" is still asked and taught. Internal.
 */
#ifndef GGI_RETRIEVER_NONE_H
#define GGI_RETRIEVER_NONE_H

#include "gryphgen/retriever.h"

/** 1 when r is NULL or the built-in "none" backend, else 0. */
int ggi_retriever_is_none(const gg_retriever_t *r);

#endif
