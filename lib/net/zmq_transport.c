/* zmq_transport.c - placeholder, being written. */
typedef int ggi_placeholder_zmq_transport;
