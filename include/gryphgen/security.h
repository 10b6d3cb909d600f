/*
 * gryphgen/security.h - the security rules of a libgryphgen grid that a host or a command
 * needs before it opens a connection: CURVE key generation, and the rule that unencrypted
 * operation is allowed only when asked for explicitly and only on loopback endpoints.
 *
 * THREAD SAFETY: every function here may be called from any thread at any time.
 */
#ifndef GRYPHGEN_SECURITY_H
#define GRYPHGEN_SECURITY_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Length of a CURVE key in Z85 text (32 bytes), without the terminating NUL. */
#define GG_CURVE_KEY_Z85_LEN 40

/**
 * Tells whether a ZeroMQ endpoint stays on this machine: tcp:// to 127.x.x.x, [::1] or
 * localhost, and every ipc:// and inproc:// endpoint. Wildcards (tcp://\*:P), interface
 * names, other addresses and other transports are not loopback. Returns 1 or 0 (0 for NULL).
 */
GG_API int gg_endpoint_is_loopback(const char *endpoint);

/**
 * Applies the rule for unencrypted operation to an endpoint. With has_keys non-zero
 * (CURVE keys configured) every endpoint is fine. Without keys, inproc:// is fine (nothing
 * leaves the process); any other endpoint needs insecure non-zero and must be loopback.
 * Returns 0, or GG_EINVAL with a message saying what is missing (gg_error_last()).
 */
GG_API int gg_security_check(const char *endpoint, int has_keys, int insecure);

/**
 * Generates a CURVE key pair and writes it as two files: PREFIX.key holding
 * "public: Z85\nsecret: Z85\n" with mode 0600, and PREFIX.pub holding "public: Z85\n" with
 * mode 0644 (the part to hand to the other side). Existing files are never overwritten
 * (GG_EEXIST). When public_z85 is not NULL it receives the public key (41 bytes with the
 * NUL). GG_EUNSUPPORTED when the ZeroMQ library was built without CURVE.
 */
GG_API int gg_curve_keygen(const char *prefix, char *public_z85);

#ifdef __cplusplus
}
#endif
#endif
