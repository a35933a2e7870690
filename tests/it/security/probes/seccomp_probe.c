/* What a RUN step may ask of the kernel: each line is `NAME rc=N errno=E`.
 * Compiled static by tests/it/security/seccomp.rs (the test images have no
 * libc) and run inside a step. `euid` alone prints the effective uid, for
 * the setuid check. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(const char *name, long rc, int err) {
    printf("%s rc=%ld errno=%d\n", name, rc < 0 ? -1L : rc > 0 ? 1L : 0L, rc < 0 ? err : 0);
}

/* A raw clone or clone3 that succeeded: the child leaves at once. */
static long reap(long rc) {
    if (rc == 0)
        _exit(0);
    if (rc > 0)
        waitpid((pid_t)rc, NULL, 0);
    return rc;
}

static void *thread_main(void *arg) { return arg; }

int main(int argc, char **argv) {
    long rc;
    if (argc > 1 && strcmp(argv[1], "euid") == 0) {
        printf("euid=%d\n", (int)geteuid());
        return 0;
    }
    errno = 0, rc = unshare(CLONE_NEWUSER);
    report("unshare-user", rc, errno);
    errno = 0, rc = reap(syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | SIGCHLD), 0, 0, 0, 0));
    report("clone-newuser", rc, errno);
    errno = 0, rc = reap(syscall(SYS_clone, (unsigned long)SIGCHLD, 0, 0, 0, 0));
    report("clone-plain", rc, errno);
    uint64_t args[8] = {0}; /* struct clone_args, CLONE_ARGS_SIZE_VER0 */
    args[4] = SIGCHLD;      /* exit_signal */
    errno = 0, rc = reap(syscall(SYS_clone3, args, sizeof args));
    report("clone3", rc, errno);
    errno = 0, rc = syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 0);
    report("keyctl", rc, errno);
    errno = 0, rc = syscall(SYS_add_key, "user", "kiln", "v", 1, -2 /* process keyring */);
    report("add_key", rc, errno);
    errno = 0, rc = syscall(SYS_personality, 0x0006 /* PER_BSD */);
    report("personality-bsd", rc, errno);
    errno = 0, rc = personality(0xffffffff);
    report("personality-query", rc, errno);
    errno = 0, rc = socket(40 /* AF_VSOCK */, SOCK_STREAM, 0);
    report("socket-vsock", rc, errno);
    errno = 0, rc = socket(AF_UNIX, SOCK_STREAM, 0);
    report("socket-unix", rc, errno);
    errno = 0, rc = socket(17 /* AF_PACKET */, SOCK_RAW, 0);
    report("socket-packet", rc, errno);
    errno = 0, rc = socket(AF_INET, SOCK_RAW, 255 /* IPPROTO_RAW */);
    report("socket-raw-ip", rc, errno);
    int icmp = socket(AF_INET, SOCK_RAW, 1 /* IPPROTO_ICMP */), on = 1;
    report("socket-raw-icmp", icmp, errno);
    errno = 0, rc = setsockopt(icmp, 0 /* IPPROTO_IP */, 3 /* IP_HDRINCL */, &on, sizeof on);
    report("hdrincl", rc, errno);
    errno = 0, rc = setsockopt(icmp, 0 /* IPPROTO_IP */, 2 /* IP_TTL */, &on, sizeof on);
    report("ip-ttl", rc, errno);
    pthread_t thread;
    int err = pthread_create(&thread, NULL, thread_main, NULL);
    if (err == 0)
        pthread_join(thread, NULL);
    report("thread", err == 0 ? 0 : -1, err);
    return 0;
}
