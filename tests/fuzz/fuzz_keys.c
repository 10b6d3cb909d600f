/*
 * fuzz_keys.c - libFuzzer target for the parsers of the grid's security files: CURVE key
 * files and authorized-keys lists (lib/net/keys.c). The first byte picks the parser; the
 * rest is the file's text. Malformed text must give an error, never a crash or a leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    if (data[0] & 1) {
        ggi_auth_keys ak;
        if (ggi_auth_keys_parse(text, len, "fuzz", &ak) == GG_OK) {
            for (size_t i = 0; i < ak.n; i++)
                if (!ggi_auth_keys_find(&ak, ak.keys[i].key))
                    __builtin_trap(); /* every listed key must be found again */
            ggi_auth_keys_free(&ak);
        }
    } else {
        ggi_keypair kp;
        if (ggi_keys_parse(text, len, "fuzz", &kp) == GG_OK &&
            !ggi_key_z85_valid(kp.public_key, strlen(kp.public_key)))
            __builtin_trap();
    }
    return 0;
}
