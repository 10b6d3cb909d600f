/* process_executor.c - placeholder, being written. */
typedef int ggi_placeholder_process_executor;
