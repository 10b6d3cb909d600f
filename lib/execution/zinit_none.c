/* zinit_none.c - no embedded zygote init on this architecture (see zinit.c): zygotes keep
 * their Python PID 1. */
#include <stddef.h>
const char ggi_zinit[] = "";
const size_t ggi_zinit_len = 0;
