/*
 * fuzz_protocol.c - libFuzzer target for the ggp/1 decoder (ggp_decode): any message bytes
 * must decode or be refused with an error, never crash, leak or hit undefined behaviour. A
 * message that decodes is printed and decoded again, which must give the same type. What
 * the fast results reader (ggp_results_scan) accepts, the decoder must accept with the same
 * results.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "orchestrator/protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether two trees print the same (cJSON_Compare finds an object with a repeated key
 * unequal even to itself). */
static int same_tree(const cJSON *a, const cJSON *b)
{
    char *x = cJSON_PrintUnformatted(a), *y = cJSON_PrintUnformatted(b);
    int same = x && y && strcmp(x, y) == 0;
    cJSON_free(x);
    cJSON_free(y);
    return same;
}

/* What ggp_results_scan accepts, ggp_decode accepts too, with the same results. */
static void same_results(const uint8_t *data, size_t size)
{
    ggp_result *v = NULL;
    int nv = 0;
    if (ggp_results_scan(data, size, &v, &nv) != GG_OK)
        return;
    ggp_msg m;
    if (ggp_decode(data, size, &m) != GG_OK || m.type != GGP_RESULTS)
        __builtin_trap();
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(m.body, "results"), *r;
    int i = 0;
    cJSON_ArrayForEach(r, a)
    {
        if (i >= nv ||
            strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "lease")),
                   v[i].lease) != 0 ||
            cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(r, "seq")) != (double)v[i].seq ||
            cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(r, "n")) != (double)v[i].n ||
            !same_tree(cJSON_GetObjectItemCaseSensitive(r, "record"), v[i].record))
            __builtin_trap();
        cJSON *again = cJSON_ParseWithLength(v[i].text, v[i].len);
        if (!again || !same_tree(again, v[i].record))
            __builtin_trap();
        cJSON_Delete(again);
        i++;
    }
    if (i != nv)
        __builtin_trap();
    ggp_msg_free(&m);
    ggp_results_free(v, nv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    same_results(data, size);
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
