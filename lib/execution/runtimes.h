/*
 * runtimes.h - finds the interpreters and compilers a host has, once, so each job does not
 * pay for a version manager's shim or a PATH search. Internal.
 */
#ifndef GGI_RUNTIMES_H
#define GGI_RUNTIMES_H

typedef struct ggi_runtimes {
    char *python;         /* absolute path of the real interpreter, or NULL when none */
    char *python_source;  /* how it was chosen, e.g. "option", "$GRYPHGEN_PYTHON", "PATH (python3)" */
    char *cc;             /* absolute path of the C compiler, or NULL when none */
    char *cc_source;
} ggi_runtimes;

/**
 * Resolves the runtimes. python: the given one, else $GRYPHGEN_PYTHON, else python3 on PATH;
 * the choice is then asked for sys.executable once, so a shim script is bypassed. cc: the
 * given one, else $GRYPHGEN_CC, else $CC, else cc on PATH. A runtime that cannot be found is
 * left NULL (jobs of that language then fail with a clear error); only GG_ENOMEM is fatal.
 */
int ggi_runtimes_resolve(ggi_runtimes *rt, const char *python, const char *cc);

/** Frees the strings and zeroes rt. */
void ggi_runtimes_free(ggi_runtimes *rt);

#endif
