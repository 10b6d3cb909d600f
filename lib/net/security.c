/*
 * security.c - the public security rules (gryphgen/security.h): which endpoints count as
 * loopback, when unencrypted operation is allowed, and key-pair generation into files.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "gryphgen/security.h"
#include "keys.h"

/* Is text (n bytes) a loopback host: 127.0.0.0/8 in dotted form, ::1, or localhost? */
static int host_is_loopback(const char *text, size_t n, int bracketed)
{
    char host[INET6_ADDRSTRLEN + 1];
    if (n == 0 || n >= sizeof host)
        return 0;
    memcpy(host, text, n);
    host[n] = '\0';
    if (bracketed) {
        struct in6_addr a6;
        return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
    }
    if (strcasecmp(host, "localhost") == 0)
        return 1;
    struct in_addr a4;
    /* inet_pton accepts only the full dotted quad, never "127.1" or hex forms. */
    return inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

int gg_endpoint_is_loopback(const char *endpoint)
{
    if (!endpoint)
        return 0;
    if (strncmp(endpoint, "inproc://", 9) == 0 || strncmp(endpoint, "ipc://", 6) == 0)
        return 1;
    if (strncmp(endpoint, "tcp://", 6) != 0)
        return 0;
    const char *a = endpoint + 6;
    /* "source;destination" endpoints and anything unusual are not judged loopback. */
    if (strchr(a, ';'))
        return 0;
    const char *colon = strrchr(a, ':');
    if (!colon || colon[1] == '\0')
        return 0;
    for (const char *p = colon + 1; *p; p++)
        if ((*p < '0' || *p > '9') && *p != '*')
            return 0;
    if (a[0] == '[') {
        if (colon < a + 2 || colon[-1] != ']')
            return 0;
        return host_is_loopback(a + 1, (size_t)(colon - 1 - (a + 1)), 1);
    }
    return host_is_loopback(a, (size_t)(colon - a), 0);
}

int gg_security_check(const char *endpoint, int has_keys, int insecure)
{
    if (!endpoint || !*endpoint)
        return ggi_error(GG_EINVAL, "no endpoint given");
    if (has_keys)
        return GG_OK;
    if (strncmp(endpoint, "inproc://", 9) == 0)
        return GG_OK;
    if (!insecure)
        return ggi_error(GG_EINVAL, "%s: no CURVE keys configured; give key files (made by "
                         "'gryphgen keygen'), or --insecure for unencrypted operation on a "
                         "loopback endpoint", endpoint);
    if (!gg_endpoint_is_loopback(endpoint))
        return ggi_error(GG_EINVAL, "%s: refusing unencrypted operation on an endpoint that "
                         "is not loopback (127.0.0.0/8, [::1], localhost, ipc://); use CURVE "
                         "keys (see 'gryphgen keygen')", endpoint);
    return GG_OK;
}

int gg_curve_keygen(const char *prefix, char *public_z85)
{
    if (public_z85)
        public_z85[0] = '\0';
    if (!prefix || !*prefix)
        return ggi_error(GG_EINVAL, "key file prefix is empty");
    ggi_keypair kp;
    int rc = ggi_keys_generate(&kp);
    if (rc != GG_OK)
        return rc;
    char *key_path = ggi_asprintf("%s.key", prefix);
    char *pub_path = ggi_asprintf("%s.pub", prefix);
    if (!key_path || !pub_path) {
        rc = ggi_error(GG_ENOMEM, "out of memory");
    } else {
        /* Both names are checked first so that a refusal leaves nothing half-written. */
        if (access(pub_path, F_OK) == 0)
            rc = ggi_error(GG_EEXIST, "%s already exists; not overwriting a key file",
                           pub_path);
        if (rc == GG_OK)
            rc = ggi_keys_write(key_path, &kp, 1);
        if (rc == GG_OK && (rc = ggi_keys_write(pub_path, &kp, 0)) != GG_OK)
            remove(key_path);
    }
    if (rc == GG_OK && public_z85)
        memcpy(public_z85, kp.public_key, GGI_KEY_Z85_LEN + 1);
    ggi_wipe(&kp, sizeof kp);
    free(key_path);
    free(pub_path);
    return rc;
}
