/* runtimes.c - placeholder, being written. */
typedef int ggi_placeholder_runtimes;
