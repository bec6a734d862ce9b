/* What a container's process can see of the host through descriptors and helpers (issue 15,
 * findings 8 and 13). Built static by the tests (gcc -static), bind-mounted read-only at /probe.
 *
 *   probe fds   one line per open descriptor ("fd N kind target"), then "fds=0,1,2" (the list)
 *               and "host-dirs=N": descriptors that are directories (CVE-2024-21626 leaks the
 *               host's cgroup folder or / that way).
 *   probe exe   waits for a helper of the host (a process whose comm starts with "python") to
 *               appear in the container's pid namespace, stops it (SIGSTOP, as an attacker would
 *               hold it) once it holds no capability the probe lacks, then tries to open its
 *               /proc/<pid>/exe (read, write, O_PATH: CVE-2019-5736 reopens that for writing),
 *               prints "caught ..." and lets it go. Never writes a byte, never truncates.
 *               Gives up (prints "missed") when the helper execs first; keeps watching until it
 *               has caught one, or after "exe" rounds (argument 2, default 2000000).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int list_fds(void) {
    DIR *dir = opendir("/proc/self/fd");
    if (dir == NULL) {
        perror("opendir /proc/self/fd");
        return 1;
    }
    int own = dirfd(dir), host_dirs = 0;
    char list[4096] = "";
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        int fd = atoi(entry->d_name);
        if (fd == own)
            continue;
        char path[64], target[4096] = "";
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(path, target, sizeof target - 1);
        target[n > 0 ? n : 0] = 0;
        struct stat st;
        const char *kind = "?";
        if (fstat(fd, &st) == 0) {
            kind = S_ISDIR(st.st_mode) ? "dir" : S_ISREG(st.st_mode) ? "file" : S_ISFIFO(st.st_mode) ? "fifo"
                 : S_ISSOCK(st.st_mode) ? "socket" : S_ISCHR(st.st_mode) ? "chr" : "other";
            host_dirs += S_ISDIR(st.st_mode);
        }
        printf("fd %d %s %s\n", fd, kind, target);
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%d", list[0] ? "," : "", fd);
    }
    closedir(dir);
    printf("fds=%s\nhost-dirs=%d\n", list, host_dirs);
    return 0;
}

static int read_field(int pid, const char *file, const char *key, char *out, size_t size) {
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/%s", pid, file);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    int found = -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (key == NULL || strncmp(line, key, strlen(key)) == 0) {
            snprintf(out, size, "%s", line + (key ? strlen(key) : 0));
            out[strcspn(out, "\n")] = 0;
            found = 0;
            break;
        }
    }
    fclose(f);
    return found;
}

static unsigned long long caps_of(int pid) {
    char value[64];
    if (read_field(pid, "status", "CapEff:", value, sizeof value) != 0)
        return ~0ULL;
    return strtoull(value, NULL, 16);
}

static int is_helper(int pid) {
    char comm[64];
    return read_field(pid, "comm", NULL, comm, sizeof comm) == 0 && strncmp(comm, "python", 6) == 0;
}

static const char *try_open(const char *path, int flags) {
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        return strerrorname_np(errno);
    close(fd);
    return "opened";
}

static void pause_briefly(void) {
    struct timespec step = {0, 50000};
    nanosleep(&step, NULL);
}

/* Holds the helper ``pid`` (stopped) until it has no capability the probe lacks; 0 if it execs first. */
static int hold(int pid, unsigned long long mine) {
    for (int tries = 0; tries < 20000; tries++) {
        if (kill(pid, SIGSTOP) != 0)
            return 0;
        char state[64] = "";
        for (int i = 0; i < 1000 && read_field(pid, "status", "State:", state, sizeof state) == 0
                        && strchr(state, 'T') == NULL; i++)
            pause_briefly();
        if (!is_helper(pid)) {
            kill(pid, SIGCONT);
            return 0;
        }
        if ((caps_of(pid) & ~mine) == 0)
            return 1;
        kill(pid, SIGCONT);
        pause_briefly();
    }
    return 0;
}

static int watch_helpers(long rounds) {
    unsigned long long mine = caps_of(getpid());
    int self = getpid();
    for (long round = 0; round < rounds; round++) {
        DIR *proc = opendir("/proc");
        struct dirent *entry;
        while (proc != NULL && (entry = readdir(proc)) != NULL) {
            int pid = atoi(entry->d_name);
            if (pid <= 1 || pid == self || !is_helper(pid))
                continue;
            if (!hold(pid, mine)) {
                printf("missed %d\n", pid);
                fflush(stdout);
                continue;
            }
            char exe[64], target[4096] = "";
            snprintf(exe, sizeof exe, "/proc/%d/exe", pid);
            ssize_t n = readlink(exe, target, sizeof target - 1);
            const char *link = n >= 0 ? (target[n] = 0, target) : strerrorname_np(errno);
            printf("caught %d caps=%llx read=%s write=%s path=%s link=%s\n", pid, caps_of(pid),
                   try_open(exe, O_RDONLY), try_open(exe, O_WRONLY), try_open(exe, O_PATH), link);
            fflush(stdout);
            kill(pid, SIGCONT);
            closedir(proc);
            return 0;
        }
        if (proc != NULL)
            closedir(proc);
    }
    printf("gave up\n");
    return 1;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "fds") == 0)
        return list_fds();
    if (argc > 1 && strcmp(argv[1], "exe") == 0)
        return watch_helpers(argc > 2 ? atol(argv[2]) : 2000000);
    fprintf(stderr, "usage: probe fds|exe [rounds]\n");
    return 2;
}
