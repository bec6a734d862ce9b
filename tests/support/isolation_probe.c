/* The isolation probe: run inside a container, it prints one "check verdict" line per check.
 *
 * Built statically by tests/support/isolation.py and run, unchanged, on the docker backend (a real
 * dockerd) and on the native backend with the same compose settings, so the two columns can be
 * compared line by line (tests/integration/isolation/test_probe.py, `make isolation-report`).
 *
 * A verdict is "ok" when the operation went through, else the errno's name (EPERM, EROFS, ...), or
 * a short word for a state (masked, ro, none, ...). Every operation is harmless when it succeeds:
 * arguments are invalid or point at nothing, devices are opened but never read or written, files
 * under /proc and /sys are opened for writing but never written. Each syscall runs in a forked
 * child, so a namespace or personality change does not leak into the next check.
 *
 * Environment: PROBE_PORT (a TCP port the host listens on at 127.0.0.1 only), PROBE_DISK ("maj:min"
 * of the host's disk), PROBE_IMAGE_NODE (a device node shipped in the image, for that disk).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef AF_ALG
#define AF_ALG 38
#endif
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

static void verdict(const char *check, const char *value) {
    printf("%s %s\n", check, value);
    fflush(stdout);
}

static const char *errname(int code) {
    const char *name = strerrorname_np(code);
    return name ? name : "E?";
}

static void result(const char *check, long rc) {
    verdict(check, rc == -1 ? errname(errno) : "ok");
}

/* Runs one raw syscall in a child and reports how it ended. A child killed by a signal (a seccomp
 * KILL action) reports the signal's name. */
static void probe_syscall(const char *name, long nr, long a, long b, long c, long d, long e, long f) {
    char check[96];
    snprintf(check, sizeof check, "syscall.%s", name);
    int pipefd[2];
    if (pipe(pipefd) != 0) {
        verdict(check, "probe-error");
        return;
    }
    pid_t child = fork();
    if (child == 0) {
        close(pipefd[0]);
        long rc = syscall(nr, a, b, c, d, e, f);
        int code = rc == -1 ? errno : 0;
        if (rc > 0 && (nr == SYS_clone)) {
            /* the parent side of a clone that went through: the new child exits on its own */
            waitpid((pid_t)rc, NULL, 0);
        } else if (rc == 0 && nr == SYS_clone) {
            _exit(0); /* the clone's child */
        }
        if (write(pipefd[1], &code, sizeof code) != sizeof code) _exit(2);
        _exit(0);
    }
    close(pipefd[1]);
    int code = -1;
    ssize_t got = read(pipefd[0], &code, sizeof code);
    close(pipefd[0]);
    int status = 0;
    waitpid(child, &status, 0);
    if (got != sizeof code) {
        verdict(check, WIFSIGNALED(status) ? sigabbrev_np(WTERMSIG(status)) : "no-answer");
        return;
    }
    verdict(check, code == 0 ? "ok" : errname(code));
}

static void probe_socket(const char *name, int family, int type, int protocol) {
    char check[64];
    snprintf(check, sizeof check, "socket.%s", name);
    int fd = socket(family, type, protocol);
    result(check, fd);
    if (fd >= 0) close(fd);
}

/* ---- devices ---------------------------------------------------------------------------------- */

static void probe_devices(void) {
    const char *disk = getenv("PROBE_DISK");
    unsigned major_number = 8, minor_number = 0;
    if (disk) sscanf(disk, "%u:%u", &major_number, &minor_number);

    const char *block = "/tmp/probe-block";
    unlink(block);
    long rc = mknod(block, S_IFBLK | 0600, makedev(major_number, minor_number));
    result("device.mknod_block", rc);
    if (rc == 0) {
        int fd = open(block, O_RDONLY | O_NONBLOCK);
        result("device.open_made_block", fd);
        if (fd >= 0) close(fd);
        unlink(block);
    } else {
        verdict("device.open_made_block", "n/a");
    }

    const char *chr = "/tmp/probe-char";
    unlink(chr);
    rc = mknod(chr, S_IFCHR | 0600, makedev(1, 1)); /* /dev/mem */
    result("device.mknod_char_mem", rc);
    if (rc == 0) {
        int fd = open(chr, O_RDONLY | O_NONBLOCK);
        result("device.open_made_char_mem", fd);
        if (fd >= 0) close(fd);
        unlink(chr);
    } else {
        verdict("device.open_made_char_mem", "n/a");
    }

    const char *shipped = getenv("PROBE_IMAGE_NODE");
    if (shipped) {
        int fd = open(shipped, O_RDONLY | O_NONBLOCK);
        result("device.open_image_node", fd);
        if (fd >= 0) close(fd);
    }

    static const char *allowed[] = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
                                    "/dev/tty", "/dev/ptmx", NULL};
    for (int i = 0; allowed[i]; i++) {
        char check[64];
        snprintf(check, sizeof check, "device.open%s", allowed[i]);
        int fd = open(allowed[i], O_RDWR | O_NONBLOCK | O_NOCTTY);
        /* /dev/tty without a controlling terminal is ENXIO everywhere: the device rule let it through */
        result(check, fd);
        if (fd >= 0) close(fd);
    }
}

/* ---- syscalls --------------------------------------------------------------------------------- */

#ifndef SYS_statmount
#define SYS_statmount 457
#endif
#ifndef SYS_listmount
#define SYS_listmount 458
#endif
#ifndef SYS_lsm_list_modules
#define SYS_lsm_list_modules 461
#endif
#ifndef SYS_mseal
#define SYS_mseal 462
#endif

static void probe_syscalls(void) {
    const long none = 0;
    probe_syscall("acct", SYS_acct, (long)"/nonexistent-probe", 0, 0, 0, 0, 0);
    probe_syscall("add_key", SYS_add_key, (long)"", (long)"", 0, 0, 0, 0);
    probe_syscall("bpf", SYS_bpf, -1, 0, 0, 0, 0, 0);
    probe_syscall("clock_adjtime", SYS_clock_adjtime, -1, 0, 0, 0, 0, 0);
    probe_syscall("clock_settime", SYS_clock_settime, -1, 0, 0, 0, 0, 0);
    probe_syscall("clone_newuser", SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0, 0);
    probe_syscall("clone_newns", SYS_clone, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0, 0);
    probe_syscall("clone3", 435, 0, 0, 0, 0, 0, 0);
    probe_syscall("create_module", SYS_create_module, 0, 0, 0, 0, 0, 0);
    probe_syscall("delete_module", SYS_delete_module, (long)"", 0, 0, 0, 0, 0);
    probe_syscall("finit_module", SYS_finit_module, -1, (long)"", 0, 0, 0, 0);
    probe_syscall("init_module", SYS_init_module, 0, 0, (long)"", 0, 0, 0);
    probe_syscall("get_kernel_syms", SYS_get_kernel_syms, 0, 0, 0, 0, 0, 0);
    probe_syscall("get_mempolicy", SYS_get_mempolicy, 0, 0, 0, 0, 0, 0);
    probe_syscall("set_mempolicy", SYS_set_mempolicy, 0, 0, 0, 0, 0, 0);
    probe_syscall("mbind", SYS_mbind, 0, 0, 0, 0, 0, 0);
    probe_syscall("migrate_pages", SYS_migrate_pages, 0, 0, 0, 0, 0, 0);
    probe_syscall("move_pages", SYS_move_pages, 0, 0, 0, 0, 0, 0);
    probe_syscall("ioperm", SYS_ioperm, 0x80, 1, 0, 0, 0, 0);
    probe_syscall("iopl", SYS_iopl, 0, 0, 0, 0, 0, 0);
    probe_syscall("kcmp", SYS_kcmp, getpid(), getpid(), 0, 0, 0, 0);
    probe_syscall("kexec_file_load", SYS_kexec_file_load, -1, -1, 0, 0, 0xdead0000, 0);
    probe_syscall("kexec_load", SYS_kexec_load, 0, 0, 0, 0xdead0000, 0, 0);
    probe_syscall("keyctl", SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0, 0, 0, 0);
    probe_syscall("lookup_dcookie", SYS_lookup_dcookie, 0, 0, 0, 0, 0, 0);
    probe_syscall("mount", SYS_mount, (long)"none", (long)"/nonexistent-probe", (long)"tmpfs", 0, 0, 0);
    probe_syscall("umount2", SYS_umount2, (long)"/nonexistent-probe", 0, 0, 0, 0, 0);
    probe_syscall("pivot_root", SYS_pivot_root, (long)"/nonexistent-probe", (long)"/nonexistent-probe", 0, 0, 0, 0);
    probe_syscall("name_to_handle_at", SYS_name_to_handle_at, AT_FDCWD, (long)"/", 0, 0, 0, 0);
    probe_syscall("open_by_handle_at", SYS_open_by_handle_at, -1, 0, 0, 0, 0, 0);
    probe_syscall("nfsservctl", SYS_nfsservctl, 0, 0, 0, 0, 0, 0);
    probe_syscall("perf_event_open", SYS_perf_event_open, 0, 0, -1, -1, 0, 0);
    probe_syscall("process_vm_readv", SYS_process_vm_readv, getpid(), 0, 0, 0, 0, 0);
    probe_syscall("process_vm_writev", SYS_process_vm_writev, getpid(), 0, 0, 0, 0, 0);
    probe_syscall("ptrace_peek_pid1", SYS_ptrace, 2 /* PTRACE_PEEKDATA */, 1, 0, 0, 0, 0);
    probe_syscall("query_module", SYS_query_module, 0, 0, 0, 0, 0, 0);
    probe_syscall("quotactl", SYS_quotactl, 0, 0, 0, 0, 0, 0);
    probe_syscall("reboot", SYS_reboot, 0, 0, 0, 0, 0, 0); /* bad magic numbers: EINVAL when allowed */
    probe_syscall("request_key", SYS_request_key, (long)"user", (long)"probe", 0, 0, 0, 0);
    probe_syscall("setns", SYS_setns, -1, 0, 0, 0, 0, 0);
    probe_syscall("settimeofday", SYS_settimeofday, 0, 0, 0, 0, 0, 0); /* both NULL: changes nothing */
    probe_syscall("swapon", SYS_swapon, (long)"/nonexistent-probe", 0, 0, 0, 0, 0);
    probe_syscall("swapoff", SYS_swapoff, (long)"/nonexistent-probe", 0, 0, 0, 0, 0);
    probe_syscall("sysfs", SYS_sysfs, 1, (long)"probe-no-such-fs", 0, 0, 0, 0);
    probe_syscall("_sysctl", SYS__sysctl, 0, 0, 0, 0, 0, 0);
    probe_syscall("syslog_size", SYS_syslog, 10 /* SYSLOG_ACTION_SIZE_BUFFER */, 0, 0, 0, 0, 0);
    probe_syscall("unshare_newns", SYS_unshare, CLONE_NEWNS, 0, 0, 0, 0, 0);
    probe_syscall("unshare_newuser", SYS_unshare, CLONE_NEWUSER, 0, 0, 0, 0, 0);
    probe_syscall("unshare_newnet", SYS_unshare, CLONE_NEWNET, 0, 0, 0, 0, 0);
    probe_syscall("uselib", SYS_uselib, 0, 0, 0, 0, 0, 0);
    probe_syscall("userfaultfd", SYS_userfaultfd, 0, 0, 0, 0, 0, 0);
    probe_syscall("ustat", SYS_ustat, 0, 0, 0, 0, 0, 0);
    probe_syscall("io_uring_setup", 425, 1, 0, 0, 0, 0, 0);
    probe_syscall("io_uring_enter", 426, -1, 0, 0, 0, 0, 0);
    probe_syscall("io_uring_register", 427, -1, 0, 0, 0, 0, 0);
    probe_syscall("open_tree", 428, -1, (long)"", 0, 0, 0, 0);
    probe_syscall("fsopen", 430, (long)"probe-no-such-fs", 0, 0, 0, 0, 0);
    probe_syscall("statmount", SYS_statmount, 0, 0, 0, 0, 0, 0);
    probe_syscall("listmount", SYS_listmount, 0, 0, 0, 0, 0, 0);
    probe_syscall("lsm_list_modules", SYS_lsm_list_modules, 0, 0, 0, 0, 0, 0);
    probe_syscall("mseal", SYS_mseal, 0, 0, 0, 0, 0, 0);
    probe_syscall("beyond_the_table_500", 500, 0, 0, 0, 0, 0, 0);
    probe_syscall("getpid", SYS_getpid, none, 0, 0, 0, 0, 0);

    probe_syscall("personality_query", SYS_personality, 0xffffffff, 0, 0, 0, 0, 0);
    probe_syscall("personality_linux", SYS_personality, PER_LINUX, 0, 0, 0, 0, 0);
    probe_syscall("personality_linux32", SYS_personality, PER_LINUX32, 0, 0, 0, 0, 0);
    probe_syscall("personality_addr_no_randomize", SYS_personality, ADDR_NO_RANDOMIZE, 0, 0, 0, 0, 0);
    probe_syscall("personality_0x5", SYS_personality, 0x5, 0, 0, 0, 0, 0);

    probe_socket("af_alg", AF_ALG, SOCK_SEQPACKET, 0);
    probe_socket("af_vsock", AF_VSOCK, SOCK_STREAM, 0);
    probe_socket("af_packet_raw", AF_PACKET, SOCK_RAW, 0);
    probe_socket("af_inet_raw", AF_INET, SOCK_RAW, IPPROTO_RAW);
    probe_socket("af_netlink", AF_NETLINK, SOCK_RAW, 0);
}

/* ---- the host's loopback ---------------------------------------------------------------------- */

static int gateway(struct in_addr *out, char *ifname, size_t ifname_size) {
    FILE *routes = fopen("/proc/net/route", "r");
    if (!routes) return -1;
    char line[256];
    int found = -1;
    while (fgets(line, sizeof line, routes)) {
        char name[IFNAMSIZ + 1];
        unsigned long destination, gw;
        if (sscanf(line, "%16s %lx %lx", name, &destination, &gw) == 3 && destination == 0 && gw != 0) {
            out->s_addr = (in_addr_t)gw;
            snprintf(ifname, ifname_size, "%s", name);
            found = 0;
            break;
        }
    }
    fclose(routes);
    return found;
}

static int neighbour_mac(struct in_addr address, unsigned char mac[6]) {
    FILE *arp = fopen("/proc/net/arp", "r");
    if (!arp) return -1;
    char line[256], ip[64], hw[64];
    int found = -1;
    while (fgets(line, sizeof line, arp)) {
        if (sscanf(line, "%63s %*s %*s %63s", ip, hw) == 2 && strcmp(ip, inet_ntoa(address)) == 0) {
            unsigned int b[6];
            if (sscanf(hw, "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) == 6) {
                for (int i = 0; i < 6; i++) mac[i] = (unsigned char)b[i];
                found = (b[0] | b[1] | b[2] | b[3] | b[4] | b[5]) ? 0 : -1;
            }
        }
    }
    fclose(arp);
    return found;
}

static uint16_t checksum(const void *data, size_t length, uint32_t sum) {
    const uint8_t *bytes = data;
    for (size_t i = 0; i + 1 < length; i += 2) sum += (uint32_t)(bytes[i] << 8 | bytes[i + 1]);
    if (length & 1) sum += (uint32_t)(bytes[length - 1] << 8);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

/* Sends a TCP SYN for 127.0.0.1:port to the gateway's MAC address (what a neighbour on the LAN
 * would do against a host with route_localnet=1) and waits 1 s for a SYN-ACK from 127.0.0.1. */
static const char *raw_syn_to_host_loopback(struct in_addr gw, const char *ifname, int port) {
    unsigned char gw_mac[6];
    if (neighbour_mac(gw, gw_mac) != 0) return "no-arp";
    int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_IP));
    if (fd < 0) return errname(errno);
    struct ifreq request;
    memset(&request, 0, sizeof request);
    snprintf(request.ifr_name, sizeof request.ifr_name, "%s", ifname);
    if (ioctl(fd, SIOCGIFINDEX, &request) != 0) { close(fd); return "no-ifindex"; }
    int ifindex = request.ifr_ifindex;
    if (ioctl(fd, SIOCGIFHWADDR, &request) != 0) { close(fd); return "no-mac"; }
    unsigned char own_mac[6];
    memcpy(own_mac, request.ifr_hwaddr.sa_data, 6);
    if (ioctl(fd, SIOCGIFADDR, &request) != 0) { close(fd); return "no-address"; }
    struct in_addr own = ((struct sockaddr_in *)&request.ifr_addr)->sin_addr;

    unsigned char frame[14 + 20 + 20];
    memset(frame, 0, sizeof frame);
    memcpy(frame, gw_mac, 6);
    memcpy(frame + 6, own_mac, 6);
    frame[12] = 0x08;
    struct iphdr *ip = (struct iphdr *)(frame + 14);
    ip->version = 4;
    ip->ihl = 5;
    ip->ttl = 64;
    ip->protocol = IPPROTO_TCP;
    ip->tot_len = htons(40);
    ip->id = htons(0x5151);
    ip->saddr = own.s_addr;
    ip->daddr = htonl(INADDR_LOOPBACK);
    ip->check = htons(checksum(ip, 20, 0));
    struct tcphdr *tcp = (struct tcphdr *)(frame + 34);
    uint16_t source_port = 40000 + (uint16_t)(getpid() % 20000);
    tcp->source = htons(source_port);
    tcp->dest = htons((uint16_t)port);
    tcp->seq = htonl(0x12345678);
    tcp->doff = 5;
    tcp->syn = 1;
    tcp->window = htons(64240);
    uint32_t pseudo = 0;
    pseudo += (ntohl(ip->saddr) >> 16) + (ntohl(ip->saddr) & 0xffff);
    pseudo += (ntohl(ip->daddr) >> 16) + (ntohl(ip->daddr) & 0xffff);
    pseudo += IPPROTO_TCP + 20;
    tcp->check = htons(checksum(tcp, 20, pseudo));

    struct sockaddr_ll link;
    memset(&link, 0, sizeof link);
    link.sll_family = AF_PACKET;
    link.sll_ifindex = ifindex;
    link.sll_halen = 6;
    memcpy(link.sll_addr, gw_mac, 6);
    if (sendto(fd, frame, sizeof frame, 0, (struct sockaddr *)&link, sizeof link) < 0) {
        const char *name = errname(errno);
        close(fd);
        return name;
    }
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    const char *outcome = "blocked";
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long waited = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (waited >= 1000) break;
        struct pollfd ready = {fd, POLLIN, 0};
        if (poll(&ready, 1, (int)(1000 - waited)) <= 0) break;
        unsigned char reply[2048];
        ssize_t got = recv(fd, reply, sizeof reply, 0);
        if (got < 40) continue;
        struct iphdr *rip = (struct iphdr *)reply;
        if (rip->protocol != IPPROTO_TCP || rip->saddr != htonl(INADDR_LOOPBACK)) continue;
        struct tcphdr *rtcp = (struct tcphdr *)(reply + rip->ihl * 4);
        if (ntohs(rtcp->dest) == source_port && ntohs(rtcp->source) == port) {
            outcome = rtcp->syn && rtcp->ack ? "reached" : "answered";
            break;
        }
    }
    close(fd);
    return outcome;
}

static void probe_host_loopback(void) {
    const char *text = getenv("PROBE_PORT");
    int port = text ? atoi(text) : 0;
    struct in_addr gw;
    char ifname[IFNAMSIZ + 1] = "";
    if (port <= 0 || gateway(&gw, ifname, sizeof ifname) != 0) {
        verdict("net.tcp_gateway_to_host_loopback_service", "n/a");
        verdict("net.raw_syn_to_host_loopback", "n/a");
        return;
    }
    /* A service bound to 127.0.0.1 on the host, asked for at the gateway's address. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in target = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr = gw};
    struct timeval limit = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    long rc = connect(fd, (struct sockaddr *)&target, sizeof target);
    result("net.tcp_gateway_to_host_loopback_service", rc);
    close(fd);
    /* the connect above also filled the ARP entry of the gateway */
    verdict("net.raw_syn_to_host_loopback", raw_syn_to_host_loopback(gw, ifname, port));
}

/* ---- file systems ----------------------------------------------------------------------------- */

static void probe_open_for_write(const char *check, const char *path) {
    int fd = open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY);
    result(check, fd);
    if (fd >= 0) close(fd);
}

static const char *mask_state(const char *path) {
    struct stat info;
    if (lstat(path, &info) != 0) return errno == ENOENT ? "absent" : errname(errno);
    if (S_ISCHR(info.st_mode) && info.st_rdev == makedev(1, 3)) return "masked";
    if (S_ISDIR(info.st_mode)) {
        DIR *dir = opendir(path);
        if (!dir) return errname(errno);
        int entries = 0;
        struct dirent *entry;
        while ((entry = readdir(dir))) {
            if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0) entries++;
        }
        closedir(dir);
        return entries == 0 ? "masked" : "exposed";
    }
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) return errno == EACCES || errno == EPERM ? "masked" : errname(errno);
    char byte;
    ssize_t got = read(fd, &byte, 1);
    close(fd);
    return got == 0 ? "masked" : got < 0 ? errname(errno) : "exposed";
}

static void probe_filesystems(void) {
    static const char *masked[] = {
        "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
        "/sys/devices/virtual/powercap", "/sys/devices/system/cpu/cpu0/thermal_throttle", NULL};
    for (int i = 0; masked[i]; i++) {
        char check[128];
        snprintf(check, sizeof check, "mask%s", masked[i]);
        verdict(check, mask_state(masked[i]));
    }
    static const char *readonly[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", "/sys",
                                     "/sys/fs/cgroup", "/", NULL};
    for (int i = 0; readonly[i]; i++) {
        char check[128];
        snprintf(check, sizeof check, "readonly%s", readonly[i]);
        struct statvfs info;
        if (statvfs(readonly[i], &info) != 0) {
            verdict(check, errname(errno));
        } else {
            verdict(check, info.f_flag & ST_RDONLY ? "ro" : "rw");
        }
    }
    probe_open_for_write("write./proc/sys/vm/drop_caches", "/proc/sys/vm/drop_caches");
    probe_open_for_write("write./proc/sysrq-trigger", "/proc/sysrq-trigger");
    probe_open_for_write("write./sys/kernel/mm/transparent_hugepage/enabled",
                         "/sys/kernel/mm/transparent_hugepage/enabled");
    long rc = mkdir("/probe-root-write", 0700);
    result("write./", rc);
    if (rc == 0) rmdir("/probe-root-write");
    rc = mkdir("/tmp/probe-tmp-write", 0700);
    result("write./tmp", rc);
    if (rc == 0) rmdir("/tmp/probe-tmp-write");
}

/* A cgroup control file the container could use to change its own limits, or the host's. */
static void probe_cgroups(void) {
    static const char *candidates[] = {
        "/sys/fs/cgroup/cgroup.procs", "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/pids.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/pids/pids.max",
        "/sys/fs/cgroup/devices/devices.allow", "/sys/fs/cgroup/cpu/cpu.shares",
        "/sys/fs/cgroup/memory/cgroup.procs", NULL};
    const char *outcome = "none-found";
    for (int i = 0; candidates[i]; i++) {
        int fd = open(candidates[i], O_WRONLY | O_NONBLOCK);
        if (fd >= 0) {
            close(fd);
            outcome = "writable";
            break;
        }
        if (errno != ENOENT) outcome = "read-only";
    }
    verdict("cgroup.control_files", outcome);
}

/* ---- the process ------------------------------------------------------------------------------ */

static void probe_status(void) {
    FILE *status = fopen("/proc/self/status", "r");
    if (!status) return;
    char line[256];
    static const char *fields[] = {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp", NULL};
    while (fgets(line, sizeof line, status)) {
        for (int i = 0; fields[i]; i++) {
            size_t length = strlen(fields[i]);
            if (strncmp(line, fields[i], length) == 0 && line[length] == ':') {
                char *value = line + length + 1;
                while (*value == ' ' || *value == '\t') value++;
                value[strcspn(value, "\n")] = 0;
                char check[64];
                snprintf(check, sizeof check, "status.%s", fields[i]);
                verdict(check, value);
            }
        }
    }
    fclose(status);
    char uid[32];
    snprintf(uid, sizeof uid, "%u:%u", getuid(), getgid());
    verdict("process.uid_gid", uid);
}

static void probe_fds(void) {
    DIR *dir = opendir("/proc/self/fd");
    if (!dir) {
        verdict("process.leaked_fds", errname(errno));
        return;
    }
    char leaked[512] = "";
    struct dirent *entry;
    while ((entry = readdir(dir))) {
        if (entry->d_name[0] == '.') continue;
        int fd = atoi(entry->d_name);
        if (fd <= 2 || fd == dirfd(dir)) continue;
        char link[64], target[256];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t length = readlink(link, target, sizeof target - 1);
        target[length > 0 ? length : 0] = 0;
        size_t used = strlen(leaked);
        snprintf(leaked + used, sizeof leaked - used, "%s%d=%s", used ? "," : "", fd, target);
    }
    closedir(dir);
    verdict("process.leaked_fds", leaked[0] ? leaked : "none");
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN);
    probe_fds(); /* first: before the probe opens anything itself */
    probe_status();
    probe_devices();
    probe_syscalls();
    probe_host_loopback();
    probe_filesystems();
    probe_cgroups();
    verdict("probe.done", "ok");
    return 0;
}
