/*
 * safe_path.h - relative paths inside a workspace copy, checked and reached without ever
 * following a symbolic link: the rules a path from outside (a generator's answer) must meet,
 * and a walk from the copy's root by openat(O_NOFOLLOW), component by component, so that
 * nothing a job or an answer put in the copy can lead a write outside it. Internal to
 * lib/workspace.
 *
 * THREAD SAFETY: reentrant.
 */
#ifndef GGI_SAFE_PATH_H
#define GGI_SAFE_PATH_H

#include <stddef.h>

#define GGI_SAFE_MAX_PATH 1024  /* bytes of a relative path */
#define GGI_SAFE_MAX_DEPTH 128  /* components of a relative path */

/**
 * Why a relative path is refused ("is absolute", "leaves the workspace ('..')", "reaches
 * into a .git directory" (any case), "has an empty component", "has a '.' component",
 * "holds a control character", "is longer than 1024 bytes", "is nested more than 128
 * directories deep", "is empty"), or NULL when it is acceptable.
 */
const char *ggi_safe_path_problem(const char *p);

/** Splits a checked path in place (buf) into its components; returns how many. */
int ggi_safe_path_split(char *buf, char **comps);

/** What ggi_safe_walk_parent found. */
enum {
    GGI_WALK_OK = 0,      /* the parent is open */
    GGI_WALK_MISSING = 1, /* a directory on the way does not exist (create was 0) */
    GGI_WALK_LINK = 2,    /* a component on the way is a symbolic link */
    GGI_WALK_NOTDIR = 3,  /* a component on the way is not a directory */
    GGI_WALK_ERR = 4      /* another error (errno) */
};

/**
 * Opens the directories leading to the last component of the checked path in buf (split
 * in place), from root, never following a symbolic link. fds[0..*nfd) receive the opened
 * directories (fds[*nfd - 1] is the parent; root itself is not among them; fds has room
 * for GGI_SAFE_MAX_DEPTH); close them with ggi_safe_close whatever the result. create:
 * make missing directories, each with its parent's mode. *last gets the final component.
 */
int ggi_safe_walk_parent(int root, char *buf, int create, int *fds, int *nfd,
                         const char **last);

/** Closes the n descriptors of fds. */
void ggi_safe_close(int *fds, int n);

/**
 * Reads up to size bytes from fd into a new NUL-terminated buffer (*out, malloc'd; *out_len
 * the bytes read, fewer when the file shrank). 0 or GG_ENOMEM.
 */
int ggi_safe_read_fd(int fd, size_t size, char **out, size_t *out_len);

#endif
