/*
 * journal.h - a generator-side journal of model exchanges in SQLite: each request body is
 * stored with the response it got, keyed by a hash of the body, so a resumed run or a replay
 * gets the recorded answer instead of asking the model again. Nothing secret is stored: the
 * request body holds no key (it travels in a header) and the response no credentials.
 * It also keeps the strategy bandit's statistics per arm (table llm_arms), so that a
 * restarted run keeps what it learnt. Internal; used by the "openai" backend when
 * GRYPHGEN_LLM_JOURNAL names a database, or in the orchestrator's own database
 * (ggi_generator_attach_journal, hooks.h): the tables are created here with CREATE TABLE IF
 * NOT EXISTS, on a connection of the journal's own.
 *
 * THREAD SAFETY: the connection is opened in SQLite's serialized mode; get and put may be
 * called from several threads at once, and several processes may share the file (WAL).
 */
#ifndef GGI_JOURNAL_H
#define GGI_JOURNAL_H

typedef struct ggi_journal ggi_journal;

/** Opens (creating when missing) the journal database at path. 0, GG_ESTORE or GG_ENOMEM. */
int ggi_journal_open(const char *path, ggi_journal **out);

/**
 * Looks up the response recorded for exactly this request (the hash finds it, the stored
 * text must match). 0 with *out_response (malloc'd), GG_ENOTFOUND, GG_ESTORE or GG_ENOMEM.
 */
int ggi_journal_get(ggi_journal *j, const char *request, char **out_response);

/** Records request and its response (a later put of the same request replaces it). */
int ggi_journal_put(ggi_journal *j, const char *request, const char *response);

struct ggi_arm_stats;

/**
 * Reads the statistics recorded for the arm named key (strategy.h). 0 (all zero when the arm
 * has no row), GG_ESTORE.
 */
int ggi_journal_arm_get(ggi_journal *j, const char *key, struct ggi_arm_stats *out);

/**
 * Adds delta to the statistics of the arm named key in one statement, so that several
 * generators or processes sharing the database add up rather than overwrite. 0, GG_ESTORE.
 */
int ggi_journal_arm_add(ggi_journal *j, const char *key, const struct ggi_arm_stats *delta);

/** Closes the journal and sets *pj to NULL; accepts NULL. */
void ggi_journal_close(ggi_journal **pj);

#endif
