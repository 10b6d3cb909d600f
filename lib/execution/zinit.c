/*
 * zinit.c - the init (PID 1) of a zygote job's PID namespace, a program of its own. It is
 * built freestanding (no C library, a few system calls, a few kilobytes), embedded in the
 * library (zinit_blob.c) and started by the zygote with vfork and exec, so a job's PID 1
 * costs neither a fork of the zygote's interpreter nor that copy's exit (zygote.c).
 *
 * What it does: names itself gg-zinit, ignores SIGCHLD, so the job's orphans, reparented to it, are reaped as they
 * end; closes every descriptor but 3; reads one byte from descriptor 3 (the zygote writes it
 * once it has forked the job's process, PID 2, into this namespace; end of file: there is
 * none); watches PID 2 through a pidfd; and exits when it has ended. Its exit is the
 * namespace's: the kernel kills and reaps whatever the job left before the pidfd the host
 * holds of this process polls readable. It has nothing to report: the host reads the job's
 * wait status from its own pidfd of PID 2 (PIDFD_INFO_EXIT).
 *
 * Only x86-64 and AArch64 are written out; elsewhere the build embeds nothing and zygotes
 * keep their Python PID 1.
 */

#define SIGCHLD_NR 17
#define SIG_IGN_HANDLER 1L

#if defined(__x86_64__)
#define NR_READ 0
#define NR_CLOSE_RANGE 436
#define NR_RT_SIGACTION 13
#define NR_PPOLL 271
#define NR_PIDFD_OPEN 434
#define NR_EXIT_GROUP 231
#define NR_PRCTL 157

__asm__(".text\n"
        ".globl _start\n"
        "_start:\n"
        "    xor %rbp, %rbp\n"
        "    and $-16, %rsp\n"
        "    call zinit_main\n"
        "    hlt\n");

static long sys4(long n, long a, long b, long c, long d)
{
    long r;
    register long r10 __asm__("r10") = d;
    __asm__ volatile("syscall"
                     : "=a"(r)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10)
                     : "rcx", "r11", "memory");
    return r;
}
#elif defined(__aarch64__)
#define NR_READ 63
#define NR_CLOSE_RANGE 436
#define NR_RT_SIGACTION 134
#define NR_PPOLL 73
#define NR_PIDFD_OPEN 434
#define NR_EXIT_GROUP 94
#define NR_PRCTL 167

__asm__(".text\n"
        ".globl _start\n"
        "_start:\n"
        "    mov x29, #0\n"
        "    mov x30, #0\n"
        "    bl zinit_main\n"
        "1:  b 1b\n");

static long sys4(long n, long a, long b, long c, long d)
{
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
    return x0;
}
#else
#error "zinit: no system call stubs for this architecture"
#endif

#define EINTR_NR 4
#define PR_SET_NAME_NR 15

struct k_sigaction {
    long handler;
    unsigned long flags;
    long restorer;
    unsigned long mask;
};

struct k_pollfd {
    int fd;
    short events;
    short revents;
};

void zinit_main(void) __attribute__((noreturn, used));

void zinit_main(void)
{
    /* Its name in ps and /proc/1/comm (started from a descriptor, it would be "5"). */
    static const char name[16] = "gg-zinit";
    (void)sys4(NR_PRCTL, PR_SET_NAME_NR, (long)name, 0, 0);
    struct k_sigaction ign;
    ign.handler = SIG_IGN_HANDLER;
    ign.flags = 0;
    ign.restorer = 0;
    ign.mask = 0;
    (void)sys4(NR_RT_SIGACTION, SIGCHLD_NR, (long)&ign, 0, sizeof ign.mask);
    (void)sys4(NR_CLOSE_RANGE, 0, 2, 0, 0);
    (void)sys4(NR_CLOSE_RANGE, 4, ~0U, 0, 0);
    char c;
    long r;
    while ((r = sys4(NR_READ, 3, (long)&c, 1, 0)) == -EINTR_NR) {
    }
    (void)sys4(NR_CLOSE_RANGE, 3, 3, 0, 0);
    if (r == 1) {
        long fd = sys4(NR_PIDFD_OPEN, 2, 0, 0, 0);
        if (fd >= 0) {
            struct k_pollfd pf;
            pf.fd = (int)fd;
            pf.events = 1; /* POLLIN */
            pf.revents = 0;
            while (sys4(NR_PPOLL, (long)&pf, 1, 0, 0) == -EINTR_NR) {
            }
        }
    }
    for (;;)
        (void)sys4(NR_EXIT_GROUP, 0, 0, 0, 0);
}
