/*
 * testnet.h - loopback ports for the C tests: test_free_port() is a TCP port on 127.0.0.1
 * that nobody listens on and that no other test running now was given, for a server the
 * test starts itself or for a connection that must be refused.
 *
 * The port comes from below the kernel's ephemeral range (where outgoing connections take
 * their source ports and port-0 binds land, so a connection of another test cannot take it
 * meanwhile) and is reserved by an advisory lock on a file named after it in
 * $TMPDIR/gg-test-ports, held until the process exits; the Python tests (clitest.py's
 * free_port) take the same locks.
 */
#ifndef GG_TESTNET_H
#define GG_TESTNET_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* 1 when port can be bound on 127.0.0.1 now (0 asks the kernel for one; *out gets it). */
static inline int test_port_binds(int port, int *out)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((unsigned short)port);
    socklen_t len = sizeof a;
    int ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
             getsockname(fd, (struct sockaddr *)&a, &len) == 0;
    if (ok && out)
        *out = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return ok;
}

/* 1 when this process now holds the lock named after port (or no lock directory exists). */
static inline int test_port_reserve(int port)
{
    const char *tmp = getenv("TMPDIR");
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/gg-test-ports", tmp && *tmp ? tmp : "/tmp");
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return 1;
    snprintf(path, sizeof path, "%s/%d", dir, port);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0)
        return 1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int busy = errno == EWOULDBLOCK;
        close(fd);
        return !busy;
    }
    return 1; /* fd stays open: the lock lasts as long as the process */
}

/* The port, or 0 when none could be had. */
static inline int test_free_port(void)
{
    int low = 32768, high = 60999;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%d %d", &low, &high) != 2)
            low = 32768, high = 60999;
        fclose(f);
    }
    int from = 0, to = 0;
    if (low - 20000 >= 1000)
        from = 20000, to = low;
    else if (65535 - high >= 1000)
        from = high + 1, to = 65536;
    static unsigned seed;
    if (!seed)
        seed = (unsigned)time(NULL) ^ ((unsigned)getpid() << 16);
    for (int i = 0; from && i < 200; i++) {
        int port = from + (int)(rand_r(&seed) % (unsigned)(to - from));
        if (test_port_reserve(port) && test_port_binds(port, NULL))
            return port;
    }
    int port = 0;
    return test_port_binds(0, &port) ? port : 0;
}

#endif
