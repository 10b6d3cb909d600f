/*
 * keys.h - CURVE key files: generating key pairs, writing and reading the key-file format
 * ("public: Z85\nsecret: Z85\n", the secret part only in files nobody else can read),
 * resolving a public key given as text or as a file, and the authorized-keys list of a hub
 * (lines "ROLE Z85PUBKEY [comment]"). Internal.
 */
#ifndef GGI_KEYS_H
#define GGI_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "../core/ggi.h"

/** Z85 text length of a 32-byte CURVE key. */
#define GGI_KEY_Z85_LEN 40
/** Largest key file read (bytes). */
#define GGI_KEY_FILE_MAX 4096
/** Largest authorized-keys file (bytes) and number of entries. */
#define GGI_AUTH_FILE_MAX (4u << 20)
#define GGI_AUTH_MAX_KEYS 65536
/** Size of a role name with its NUL ("submitter" is the longest). */
#define GGI_ROLE_MAX 16
/** Size of a short fingerprint with its NUL: the first 12 Z85 characters of the key. */
#define GGI_FINGERPRINT_LEN 13

/** A key pair in Z85 text; secret_key is "" when only the public part is known. */
typedef struct ggi_keypair {
    char public_key[GGI_KEY_Z85_LEN + 1];
    char secret_key[GGI_KEY_Z85_LEN + 1];
} ggi_keypair;

/** One entry of an authorized-keys list. */
typedef struct ggi_auth_key {
    uint8_t key[32];         /* raw public key */
    char role[GGI_ROLE_MAX]; /* "worker", "submitter", "admin" (or "local", added by code) */
} ggi_auth_key;

/** An authorized-keys list. */
typedef struct ggi_auth_keys {
    ggi_auth_key *keys;
    size_t n;
    size_t cap;
} ggi_auth_keys;

/** Tells whether s (len bytes) is a well-formed Z85 CURVE key: 40 Z85 characters. */
int ggi_key_z85_valid(const char *s, size_t len);

/** Writes the short fingerprint of a Z85 key into out (the first 12 characters). */
void ggi_key_fingerprint(const char *z85, char out[GGI_FINGERPRINT_LEN]);

/** Same for a raw 32-byte key. */
void ggi_key_fingerprint_raw(const uint8_t key[32], char out[GGI_FINGERPRINT_LEN]);

/** Generates a key pair. GG_EUNSUPPORTED when libzmq has no CURVE. */
int ggi_keys_generate(ggi_keypair *out);

/**
 * Writes a key file at path, refusing to replace an existing file (GG_EEXIST). With
 * with_secret the file holds both lines and gets mode 0600; otherwise only the public line,
 * mode 0644. The file appears complete or not at all.
 */
int ggi_keys_write(const char *path, const ggi_keypair *kp, int with_secret);

/**
 * Reads a key file. With need_secret the file must hold a secret line and must not be
 * readable or writable by group or others (GG_EINVAL naming the mode). Errors name the
 * file and line: missing file GG_ENOTFOUND, malformed GG_EINVAL, too large GG_ETOOBIG.
 * A file that holds a secret is checked for its mode even when need_secret is 0.
 */
int ggi_keys_read(const char *path, int need_secret, ggi_keypair *out);

/**
 * Parses key-file text (len bytes, need not be NUL-terminated) without any file-mode check;
 * path only names the source in errors. A secret that does not belong to the public key is
 * GG_EINVAL. ggi_keys_read is this plus reading the file and the mode rules.
 */
int ggi_keys_parse(const char *text, size_t len, const char *path, ggi_keypair *out);

/**
 * Resolves a public key given either as 40 characters of Z85 text or as the path of a key
 * file (.pub or .key); out receives the Z85 text.
 */
int ggi_keys_resolve_public(const char *text_or_path, char out[GGI_KEY_Z85_LEN + 1]);

/**
 * Reads an authorized-keys file: one "ROLE Z85PUBKEY [comment]" per line, ROLE one of
 * worker, submitter, admin; blank lines and lines starting with '#' are skipped. A file
 * writable by group or others is refused. A bad line is GG_EINVAL naming the file and line;
 * a key listed twice is GG_EINVAL too. *out is empty on entry and filled on success.
 */
int ggi_auth_keys_load(const char *path, ggi_auth_keys *out);

/** Parses authorized-keys text (len bytes) as ggi_auth_keys_load does, minus the mode check. */
int ggi_auth_keys_parse(const char *text, size_t len, const char *path, ggi_auth_keys *out);

/** Adds one entry (role copied, at most GGI_ROLE_MAX-1 bytes). GG_EINVAL on a bad key. */
int ggi_auth_keys_add(ggi_auth_keys *ak, const char *z85, const char *role);

/** Finds the role of a raw key; NULL when not listed. */
const char *ggi_auth_keys_find(const ggi_auth_keys *ak, const uint8_t key[32]);

/** Frees the list and empties it. */
void ggi_auth_keys_free(ggi_auth_keys *ak);

/** Clears memory that held secrets in a way the compiler keeps. */
void ggi_wipe(void *p, size_t n);

#endif
