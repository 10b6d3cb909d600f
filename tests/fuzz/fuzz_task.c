/*
 * fuzz_task.c - libFuzzer target for the task parser (ggi_task_parse): any bytes must give
 * a task or an error, never a crash, a leak or undefined behaviour; and a task that parses
 * must survive its own normalised JSON (to_json, print, parse again).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/task.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ggi_task *t = NULL;
    if (ggi_task_parse((const char *)data, size, &t) != GG_OK)
        return 0;
    cJSON *j = ggi_task_to_json(t);
    char *text = j ? ggi_json_print(j) : NULL;
    if (text) {
        ggi_task *again = NULL;
        /* A normalised task that no longer parses is a bug in one of the two. */
        if (ggi_task_parse(text, strlen(text), &again) != GG_OK)
            __builtin_trap();
        ggi_task_free(again);
    }
    free(text);
    cJSON_Delete(j);
    ggi_task_free(t);
    return 0;
}
