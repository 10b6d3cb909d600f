/*
 * fuzz_protocol.c - libFuzzer target for the ggp/1 decoder (ggp_decode): any message bytes
 * must decode or be refused with an error, never crash, leak or hit undefined behaviour. A
 * message that decodes is printed and decoded again, which must give the same type.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "orchestrator/protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ggp_msg m;
    if (ggp_decode(data, size, &m) != GG_OK)
        return 0;
    (void)ggp_type_name(m.type);
    (void)ggp_type_class(m.type);
    size_t n = 0;
    char *text = ggp_print(m.body, &n);
    if (text) {
        ggp_msg again;
        if (ggp_decode(text, n, &again) != GG_OK || again.type != m.type)
            __builtin_trap();
        ggp_msg_free(&again);
        free(text);
    }
    ggp_msg_free(&m);
    return 0;
}
