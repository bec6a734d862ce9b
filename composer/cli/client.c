/* The compiled front of the `composer` command: composer/cli/client.py's protocol, without an
 * interpreter's start-up (~10 ms of every command).
 *
 * Built by `python -m composer.cli.build_client OUTPUT` (the Makefile's install does it), which
 * compiles in where this installation lives (client_identity.h): the interpreter, its prefix
 * and composer's folder, from which the server's socket is found as client.py finds it.
 *
 * It hands argv, environment, working folder, umask, resource limits and its stdin, stdout and
 * stderr (SCM_RIGHTS) to the warm command server (composer/cli/server.py), passes signals on, and
 * exits with the command's exit code. Whenever the server does not take the command (none
 * running, a stale one, no answer in time, COMPOSER_SERVER=0) it executes the interpreter
 * (`python -P -m composer ...`) with COMPOSER_CLIENT_FALLBACK saying why, and the command runs
 * there as it would have without this client.
 *
 * It trusts the socket as chg does (client.py's folder_problem and trusted_peer): its folder must
 * be a folder of this user (lstat: no symlink) with no group or other permission bits, and the
 * listener must be this user's or root's (SO_PEERCRED), checked before anything is sent.
 * Otherwise it says so in one line and Python runs the command ("unsafe": no server started).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "client_identity.h" /* COMPOSER_PYTHON, COMPOSER_IDENTITY, COMPOSER_IDENTITY_SIZE */

#define FRAME 5
#define ACCEPT_TIMEOUT_MS 3000
#define EXIT_INTERNAL 2
#define REQUEST_VERSION "composer-request-1"

extern char **environ;

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH, SIGUSR1, SIGUSR2};
#define FORWARDED_COUNT (sizeof(forwarded) / sizeof(forwarded[0]))
static volatile sig_atomic_t pending[NSIG];
static volatile sig_atomic_t forward_fd = -1;

/* A growing byte buffer; out of memory ends the process (nothing to clean up yet). */
struct buffer {
    char *data;
    size_t size, capacity;
};

static void append(struct buffer *buffer, const void *bytes, size_t size) {
    if (buffer->size + size > buffer->capacity) {
        size_t capacity = buffer->capacity ? buffer->capacity : 4096;
        while (capacity < buffer->size + size)
            capacity *= 2;
        buffer->data = realloc(buffer->data, capacity);
        if (!buffer->data) {
            fputs("composer: out of memory\n", stderr);
            exit(EXIT_INTERNAL);
        }
        buffer->capacity = capacity;
    }
    memcpy(buffer->data + buffer->size, bytes, size);
    buffer->size += size;
}

/* One field of the request: its bytes, then NUL (the last field's NUL is dropped by the caller). */
static void field(struct buffer *buffer, const char *text) { append(buffer, text, strlen(text) + 1); }

static void number_field(struct buffer *buffer, long long value) {
    char text[32];
    snprintf(text, sizeof text, "%lld", value);
    field(buffer, text);
}

static int compare_strings(const void *left, const void *right) {
    return strcmp(*(char *const *)left, *(char *const *)right);
}

/* client.py's server_key(): a checksum of the identity, the sorted PYTHON* variables and the uid. */
static unsigned long long server_key(void) {
    const unsigned long long modulus = 0xFFFFFFFFFFFFULL;
    unsigned long long checksum = 0;
    struct buffer text = {0};
    size_t count = 0, index;
    char **entries, uid[32];

    append(&text, COMPOSER_IDENTITY, COMPOSER_IDENTITY_SIZE);
    for (char **entry = environ; *entry; entry++)
        count++;
    entries = calloc(count + 1, sizeof *entries);
    if (!entries)
        exit(EXIT_INTERNAL);
    count = 0;
    for (char **entry = environ; *entry; entry++)
        if (strncmp(*entry, "PYTHON", 6) == 0 && strncmp(*entry, "PYTHONDONTWRITEBYTECODE=", 24) != 0)
            entries[count++] = *entry;
    qsort(entries, count, sizeof *entries, compare_strings);
    for (index = 0; index < count; index++) {
        append(&text, "\0", 1);
        append(&text, entries[index], strlen(entries[index]));
    }
    snprintf(uid, sizeof uid, "%u", (unsigned)getuid());
    append(&text, "\0", 1);
    append(&text, uid, strlen(uid));
    for (index = 0; index < text.size; index++)
        checksum = (checksum * 131 + (unsigned char)text.data[index]) % modulus;
    free(entries);
    free(text.data);
    return checksum;
}

/* client.py's socket_folder(). */
static void socket_folder(char *folder, size_t size) {
    const char *chosen = getenv("COMPOSER_SERVER_DIR"), *runtime = getenv("XDG_RUNTIME_DIR"), *tmp;

    if (chosen && *chosen)
        snprintf(folder, size, "%s", chosen);
    else if (runtime && *runtime)
        snprintf(folder, size, "%s/composer", runtime);
    else if (getuid() == 0)
        snprintf(folder, size, "/run/composer-cli");
    else {
        tmp = getenv("TMPDIR");
        snprintf(folder, size, "%s/composer-cli-%u", tmp && *tmp ? tmp : "/tmp", (unsigned)getuid());
    }
}

/* client.py's folder_problem(): NULL when the folder may hold the socket, or is not there yet
 * (errno ENOENT); else why not, in `why`. */
static const char *folder_problem(const char *folder, char *why, size_t size) {
    struct stat info;

    errno = 0;
    if (lstat(folder, &info) != 0) {
        if (errno == ENOENT)
            return NULL;
        snprintf(why, size, "cannot be checked (%s)", strerror(errno));
    } else if (!S_ISDIR(info.st_mode))
        snprintf(why, size, "is not a folder");
    else if (info.st_uid != getuid())
        snprintf(why, size, "belongs to uid %u", (unsigned)info.st_uid);
    else if (info.st_mode & 077)
        snprintf(why, size, "is open to other users (mode %o)", (unsigned)(info.st_mode & 07777));
    else
        return NULL;
    return why;
}

static void warn_untrusted(const char *where, const char *problem) {
    fprintf(stderr, "composer: not using the command server: %s %s; running the command in this process\n", where,
            problem);
}

/* client.py's _request(). */
static void build_request(struct buffer *request, int argc, char **argv) {
    static const int limits[] = {RLIMIT_NOFILE, RLIMIT_NPROC, RLIMIT_CORE, RLIMIT_MEMLOCK, RLIMIT_STACK};
    struct buffer payload = {0};
    char cwd[8192], limit[96];
    mode_t mask;
    uint64_t size;
    size_t index;

    if (!getcwd(cwd, sizeof cwd))
        cwd[0] = '\0'; /* gone: the worker's chdir fails as Python's getcwd would have */
    mask = umask(022);
    umask(mask);
    field(&payload, REQUEST_VERSION);
    field(&payload, cwd);
    number_field(&payload, (long long)mask);
    number_field(&payload, (long long)(sizeof limits / sizeof limits[0]));
    for (index = 0; index < sizeof limits / sizeof limits[0]; index++) {
        struct rlimit value;
        if (getrlimit(limits[index], &value) != 0)
            value.rlim_cur = value.rlim_max = RLIM_INFINITY;
        snprintf(limit, sizeof limit, "%d %lld %lld", limits[index],
                 value.rlim_cur == RLIM_INFINITY ? -1LL : (long long)value.rlim_cur,
                 value.rlim_max == RLIM_INFINITY ? -1LL : (long long)value.rlim_max);
        field(&payload, limit);
    }
    number_field(&payload, argc);
    for (index = 0; index < (size_t)argc; index++)
        field(&payload, argv[index]);
    for (char **entry = environ; *entry; entry++)
        field(&payload, *entry);
    size = payload.size - 1; /* no NUL after the last field */
    append(request, &size, sizeof size); /* little-endian on every platform composer runs on */
    append(request, payload.data, (size_t)size);
    free(payload.data);
}

static void hold(int signal_number) {
    int fd = forward_fd;
    if (fd >= 0) {
        unsigned char frame[FRAME] = {'S'};
        int32_t number = signal_number;
        memcpy(frame + 1, &number, sizeof number);
        (void)!write(fd, frame, FRAME);
    } else if (signal_number > 0 && signal_number < NSIG) {
        pending[signal_number] = 1;
    }
}

static void install_handlers(void) {
    struct sigaction action;
    size_t index;

    memset(&action, 0, sizeof action);
    action.sa_handler = hold;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    for (index = 0; index < FORWARDED_COUNT; index++)
        sigaction(forwarded[index], &action, NULL);
}

/* The signals that came while the command was on its way: to the worker, once it has it. */
static void forward_pending(int fd) {
    size_t index;
    forward_fd = fd;
    for (index = 0; index < FORWARDED_COUNT; index++)
        if (pending[forwarded[index]]) {
            pending[forwarded[index]] = 0;
            hold(forwarded[index]);
        }
}

/* No server took the command: the interpreter runs it (and raises the signals held meanwhile). */
static void run_in_python(int argc, char **argv, const char *why) {
    char **python_argv = calloc((size_t)argc + 4, sizeof *python_argv);
    size_t index;
    int arg;

    if (!python_argv)
        exit(EXIT_INTERNAL);
    python_argv[0] = COMPOSER_PYTHON;
    python_argv[1] = "-P";
    python_argv[2] = "-m";
    python_argv[3] = "composer";
    for (arg = 1; arg < argc; arg++)
        python_argv[arg + 3] = argv[arg];
    setenv("COMPOSER_CLIENT_FALLBACK", why, 1);
    for (index = 0; index < FORWARDED_COUNT; index++) {
        signal(forwarded[index], SIG_DFL);
        if (pending[forwarded[index]])
            raise(forwarded[index]);
    }
    execv(COMPOSER_PYTHON, python_argv);
    fprintf(stderr, "composer: cannot run %s: %s\n", COMPOSER_PYTHON, strerror(errno));
    exit(EXIT_INTERNAL);
}

static int read_frame(int fd, unsigned char frame[FRAME]) {
    size_t got = 0;
    while (got < FRAME) {
        ssize_t count = read(fd, frame + got, FRAME - got);
        if (count < 0 && errno == EINTR)
            continue;
        if (count <= 0)
            return 0;
        got += (size_t)count;
    }
    return 1;
}

static int32_t frame_value(const unsigned char frame[FRAME]) {
    int32_t value;
    memcpy(&value, frame + 1, sizeof value);
    return value;
}

/* Send the request with the standard streams; 0 when the server is not there, -1 (nothing sent,
 * said on stderr) when another user listens there. */
static int send_request(int fd, const char *path, const struct buffer *request) {
    struct sockaddr_un address;
    struct ucred peer;
    socklen_t peer_size = sizeof peer;
    int streams[3], index;
    char control[CMSG_SPACE(sizeof streams)];
    struct iovec part;
    struct msghdr message;
    struct cmsghdr *header;
    size_t first = request->size < 4096 ? request->size : 4096, sent;
    ssize_t count;

    memset(&address, 0, sizeof address);
    address.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof address.sun_path)
        return 0;
    strcpy(address.sun_path, path);
    if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0)
        return 0;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &peer_size) != 0)
        return 0;
    if (peer.uid != getuid() && peer.uid != 0) {
        char why[64];
        snprintf(why, sizeof why, "is served by uid %u", (unsigned)peer.uid);
        warn_untrusted(path, why);
        return -1;
    }
    for (index = 0; index < 3; index++) {
        struct stat info;
        streams[index] = fstat(index, &info) == 0 ? index : open("/dev/null", O_RDWR | O_CLOEXEC);
    }
    part.iov_base = request->data;
    part.iov_len = first;
    memset(&message, 0, sizeof message);
    message.msg_iov = &part;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof streams);
    memcpy(CMSG_DATA(header), streams, sizeof streams);
    count = sendmsg(fd, &message, MSG_NOSIGNAL);
    sent = count > 0 ? (size_t)count : 0;
    while (count >= 0 && sent < request->size) { /* a stale server refuses before reading: fine */
        count = send(fd, request->data + sent, request->size - sent, MSG_NOSIGNAL);
        if (count < 0 && errno == EINTR) {
            count = 0;
            continue;
        }
        if (count > 0)
            sent += (size_t)count;
    }
    return 1;
}

int main(int argc, char **argv) {
    const char *enabled = getenv("COMPOSER_SERVER");
    char folder[4096], path[4352], why[128];
    struct buffer request = {0};
    unsigned char frame[FRAME];
    struct pollfd answer;
    int fd, sent;

    if (enabled && (!strcasecmp(enabled, "0") || !strcasecmp(enabled, "false") || !strcasecmp(enabled, "no") ||
                    !strcasecmp(enabled, "off")))
        run_in_python(argc, argv, "off");
    install_handlers();
    socket_folder(folder, sizeof folder);
    if (folder_problem(folder, why, sizeof why)) {
        warn_untrusted(folder, why);
        run_in_python(argc, argv, "unsafe");
    }
    snprintf(path, sizeof path, "%s/server-%012llx.sock", folder, server_key());
    build_request(&request, argc, argv);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sent = fd < 0 ? 0 : send_request(fd, path, &request);
    if (sent <= 0) {
        if (fd >= 0)
            close(fd);
        run_in_python(argc, argv, sent < 0 ? "unsafe" : "none");
    }
    answer.fd = fd;
    answer.events = POLLIN;
    answer.revents = 0;
    while (poll(&answer, 1, ACCEPT_TIMEOUT_MS) < 0 && errno == EINTR)
        ; /* a held signal: go on waiting (the timeout restarts: rare) */
    frame[0] = 0;
    if (!answer.revents || !read_frame(fd, frame) || frame[0] != 'P') {
        close(fd);
        run_in_python(argc, argv, !answer.revents ? "busy" : frame[0] == 'R' ? "stale" : "none");
    }
    {
        unsigned char go[FRAME] = {'G'};
        if (write(fd, go, FRAME) != FRAME)
            run_in_python(argc, argv, "none"); /* it went away before it had the go: nothing ran */
    }
    forward_pending(fd);
    for (;;) {
        if (!read_frame(fd, frame)) {
            static const char text[] = "composer: internal error: the command server's worker ended without an exit code\n";
            (void)!write(2, text, sizeof text - 1);
            return EXIT_INTERNAL;
        }
        if (frame[0] == 'X')
            return frame_value(frame) & 0xFF;
    }
}
