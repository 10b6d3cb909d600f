/*
 * runtimes.h - finds the interpreters and compilers a host has, once, so each job does not
 * pay for a version manager's shim or a PATH search. Internal.
 */
#ifndef GGI_RUNTIMES_H
#define GGI_RUNTIMES_H

/* The toolchains of the languages beyond Python and C (docs/tasks.md, "Languages"). */
enum {
    GGI_TOOL_CXX,        /* g++ */
    GGI_TOOL_NODE,       /* node */
    GGI_TOOL_TSC,        /* tsc (run by node) */
    GGI_TOOL_GO,         /* go */
    GGI_TOOL_JAVAC,      /* javac */
    GGI_TOOL_JAVA,       /* java */
    GGI_TOOL_RUSTC,      /* rustc */
    GGI_TOOL_CARGO,      /* cargo (prepares Rust's crates once) */
    GGI_TOOL_BASH,       /* bash */
    GGI_TOOL_SHELLCHECK, /* shellcheck (optional: bash -n alone without it) */
    GGI_TOOL_COUNT
};

/** The tool's program name ("g++"), or NULL for a bad id. */
const char *ggi_tool_name(int tool);

/** The variable that overrides where the tool is ("GRYPHGEN_TOOLCHAIN_CXX"), or NULL. */
const char *ggi_tool_env(int tool);

typedef struct ggi_runtimes {
    char *python;         /* absolute path of the real interpreter, or NULL when none */
    char *python_source;  /* how it was chosen, e.g. "option", "$GRYPHGEN_PYTHON", "PATH (python3)" */
    char *cc;             /* absolute path of the C compiler, or NULL when none */
    char *cc_source;
    char *tool[GGI_TOOL_COUNT];        /* absolute paths, NULL when absent */
    char *tool_source[GGI_TOOL_COUNT]; /* "$GRYPHGEN_TOOLCHAIN_GO", "/usr/bin" or why not */
    /* The C and C++ compilers' linker option (a static string): "-fuse-ld=gold" (gold links
     * a HumanEval-sized program in about a third of ld.bfd's time; a job's script drops the
     * option where it runs without ld.gold), or "" with $GRYPHGEN_LINKER=default (the
     * compiler's own). */
    const char *link_flag;
} ggi_runtimes;

/**
 * Resolves the runtimes. python: the given one, else $GRYPHGEN_PYTHON, else python3 on PATH;
 * the choice is then asked for sys.executable once, so a shim script is bypassed. cc: the
 * given one, else $GRYPHGEN_CC, else $CC, else cc on PATH. A runtime that cannot be found is
 * left NULL (jobs of that language then fail with a clear error); only GG_ENOMEM is fatal.
 * Every other toolchain (GGI_TOOL_*): $GRYPHGEN_TOOLCHAIN_<NAME> (a path, or a name looked up
 * on PATH), else Debian's copy in /usr/bin; PATH alone is not searched, since a version
 * manager's copy under a home directory is unreachable to a sandboxed job.
 */
int ggi_runtimes_resolve(ggi_runtimes *rt, const char *python, const char *cc);

/** Frees the strings and zeroes rt. */
void ggi_runtimes_free(ggi_runtimes *rt);

#endif
