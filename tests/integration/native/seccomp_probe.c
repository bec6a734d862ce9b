/* The seccomp probe: one "check=verdict" line per syscall tried, the verdict "ok" or the errno's
 * name (EPERM: refused by the filter's default, ENOSYS: unknown to the profile or answered so on
 * purpose). Built static by tests/integration/native/test_seccomp.py and run on both backends. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(const char *name, long rc) {
    printf("%s=%s\n", name, rc == -1 ? strerrorname_np(errno) : "ok");
    if (rc >= 0 && strncmp(name, "socket", 6) == 0)
        close((int)rc);
}

#if defined(__x86_64__)
/* The i386 ABI from a 64-bit process (int 0x80): the filter's x86 section. */
static long int80(long nr, long a, long b, long c) {
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
    return ret;
}
static void report_int80(const char *name, long nr, long a, long b, long c) {
    long ret = int80(nr, a, b, c);
    printf("%s=%s\n", name, ret < 0 && ret > -4096 ? strerrorname_np((int)-ret) : "ok");
    if (ret >= 0 && strncmp(name, "x86_socket", 10) == 0)
        close((int)ret);
}
#endif

int main(void) {
    unsigned char params[120];  /* struct io_uring_params, zeroed */
    memset(params, 0, sizeof params);
    report("getpid", syscall(SYS_getpid) > 0 ? 0 : -1);
    report("io_uring_setup", syscall(425, 1, params));
    report("io_uring_enter", syscall(426, -1, 0, 0, 0, NULL, 0));
    report("io_uring_register", syscall(427, -1, 0, NULL, 0));
    report("migrate_pages", syscall(SYS_migrate_pages, 0, 1, NULL, NULL));
    report("socket_inet", syscall(SYS_socket, AF_INET, SOCK_STREAM, 0));
    report("socket_unix", syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0));
    report("socket_alg", syscall(SYS_socket, 38 /* AF_ALG */, SOCK_SEQPACKET, 0));
    report("socket_vsock", syscall(SYS_socket, 40 /* AF_VSOCK */, SOCK_STREAM, 0));
    report("personality_query", syscall(SYS_personality, 0xffffffffUL) == -1 ? -1 : 0);
    report("personality_linux", syscall(SYS_personality, 0x0UL) == -1 ? -1 : 0);
    report("personality_5", syscall(SYS_personality, 0x5UL) == -1 ? -1 : 0);
    report("syscall_500", syscall(500, 0, 0, 0));
    report("keyctl", syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 0));
    report("unshare_user", unshare(CLONE_NEWUSER));
    report("clone3", syscall(435 /* SYS_clone3 */, NULL, 0));
    long child = syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, 0, NULL, NULL, 0);
    if (child == 0)
        _exit(0);
    if (child > 0)
        waitpid((pid_t)child, NULL, 0);
    report("clone_newns", child > 0 ? 0 : -1);
    child = syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0);
    if (child == 0)
        _exit(0);
    if (child > 0)
        waitpid((pid_t)child, NULL, 0);
    report("clone_plain", child > 0 ? 0 : -1);
    report("mkdir", mkdir("/seccomp-probe-dir", 0700));
    rmdir("/seccomp-probe-dir");
#if defined(__x86_64__)
    report_int80("x86_getpid", 20, 0, 0, 0);
    report_int80("x86_keyctl", 288, 0, -3, 0);
    report_int80("x86_syscall_500", 500, 0, 0, 0);
    report_int80("x86_socket_alg", 359 /* socket */, 38 /* AF_ALG */, SOCK_SEQPACKET, 0);
    report("x32_keyctl", syscall(0x40000000 | 250, 0, -3, 0));
#endif
    return 0;
}
