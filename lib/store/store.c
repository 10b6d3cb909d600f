/* store.c - placeholder, being written. */
typedef int ggi_placeholder_store;
