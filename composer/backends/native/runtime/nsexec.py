"""Run a process inside a running container: ``exec`` and the supervisor's healthchecks.

``run`` starts a fresh single-threaded helper (``python -S -I``, like the spawner's, so that
``setns`` into a mount namespace is allowed) and hands it a JSON configuration over a pipe. The
helper checks that the container's PID 1 is still the recorded process, joins its cgroup (every
hierarchy), enters its ipc, uts, net, cgroup, pid and mount namespaces through
``/proc/<pid>/ns/*`` (setns into the mount namespace moves the root to the container's), forks
(a new pid namespace applies to children only) and the child takes the container's user,
groups, capabilities, no_new_privileges, seccomp filter, environment and working directory,
then execs. The helper waits for it, forwards SIGTERM/SIGINT/SIGHUP, and exits with its code
(128+signal when killed); errors before exec are one line on stderr, exit 126 (127 when the
executable is missing), as Docker reports them.

Imported by the helper itself: the standard library's ``os``/``json``/``signal`` and this
package's ``linux``, ``cgroups``, ``init``, ``console`` and ``seccomp`` only (all before setns: the
container's mount namespace has its own root). With ``tty``, the child makes its terminal from the
container's own devpts instance after setns and sends the master on the console socket (the
helper's optional second argument), as runc's exec does; nothing of the host's /dev/pts is given
to the container.
"""

from __future__ import annotations

import json
import os

from composer.backends.native.runtime import bootstrap, cgroups, console
from composer.backends.native.runtime import linux as L
from composer.backends.native.runtime.seccomp import install

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from typing import Any

NAMESPACES = (("ipc", L.CLONE_NEWIPC), ("uts", L.CLONE_NEWUTS), ("net", L.CLONE_NEWNET),
              ("cgroup", L.CLONE_NEWCGROUP), ("pid", L.CLONE_NEWPID), ("mnt", L.CLONE_NEWNS))


def exec_config(container: dict[str, Any], state: dict[str, Any], args: list[str], *, user: str | None = None,
                workdir: str | None = None, env: dict[str, str] | None = None, privileged: bool = False,
                tty: bool = False, console_size: tuple[int, int] | None = None) -> dict[str, Any]:
    """The helper's configuration: a process like the container's own (its user, environment,
    working directory, capabilities, seccomp filter), with ``exec``'s overrides. ``privileged``
    grants every capability but keeps the container's seccomp filter, as ``docker exec
    --privileged`` does (runc gives every process of a container the container's filter)."""
    environment = list(container.get("env") or ())
    for key, value in (env or {}).items():
        environment = [item for item in environment if item.partition("=")[0] != key] + [f"{key}={value}"]
    return {
        "pid": state["pid"], "pid_start": state.get("pid_start"), "cgroup": state.get("cgroup"),
        "args": list(args), "user": user or container.get("user") or "0",
        "group_add": list(container.get("group_add") or ()), "env": environment,
        "working_dir": workdir or container.get("working_dir") or "/",
        "capabilities": list(container.get("capabilities") or ()),
        "privileged": bool(privileged or container.get("privileged")),
        "no_new_privileges": bool(container.get("no_new_privileges")),
        "seccomp": container.get("seccomp", "default"), "seccomp_program": _program(container), "tty": tty,
        "console_size": list(console_size) if console_size else None,
        # the container's ulimits: runc gives an exec'd process the container's rlimits
        "ulimits": dict(container.get("ulimits") or {}),
    }


def _program(container: dict[str, Any]) -> str | None:
    """The container's compiled filter; compiled now for a container created before create
    compiled them (its profile could only be the default or unconfined then)."""
    if "seccomp_program" in container:
        program: str | None = container["seccomp_program"]
        return program
    from composer.backends.native.runtime.seccomp_bpf import container_program

    return container_program(container)


def run(config: dict[str, Any], *, stdin: Any = None, stdout: Any = None, stderr: Any = None,
        python: str | None = None, console_fd: int = -1) -> subprocess.Popen[bytes]:
    """Start the helper for ``config``; the caller waits for it (its exit code is the process's).
    ``stdin``/``stdout``/``stderr`` are what subprocess.Popen accepts. ``console_fd`` (with
    ``tty``): a unix socket on which the process's terminal master arrives (console.new_pair: a
    pair of the container's own devpts instance, as runc's console socket)."""
    import subprocess

    config_r, config_w = os.pipe()
    extra = (console_fd,) if console_fd >= 0 else ()
    try:
        process = subprocess.Popen(
            bootstrap.command("nsexec", str(config_r), *map(str, extra), python=python),
            pass_fds=(config_r, *extra),
            stdin=subprocess.DEVNULL if stdin is None else stdin, stdout=stdout, stderr=stderr, env={},
            start_new_session=True)
    finally:
        os.close(config_r)
    with os.fdopen(config_w, "wb") as pipe:
        try:
            pipe.write(json.dumps(config).encode())
        except BrokenPipeError:
            pass
    return process


def _fail(message: str, code: int = 126) -> int:
    os.write(2, (message.strip().splitlines() or ["exec failed"])[-1].encode() + b"\n")
    return code


def main(argv: list[str]) -> int:
    import resource  # noqa: F401 - an extension module: loaded from the host's files before setns (set_ulimits)
    import signal

    from composer.backends.native.runtime.init import process_start_time

    # Undumpable before entering anything: its /proc/<pid>/exe is the host's python, and the child
    # it forks is in the container's pid namespace until its execve (CVE-2019-5736).
    L.make_undumpable()
    data = b""
    fd = int(argv[1])
    console_fd = int(argv[2]) if len(argv) > 2 else -1
    while chunk := os.read(fd, 65536):
        data += chunk
    os.close(fd)
    cfg: dict[str, Any] = json.loads(data)
    if not cfg.get("tty") and console_fd >= 0:
        os.close(console_fd)
        console_fd = -1
    pid = int(cfg["pid"])
    if cfg.get("pid_start") is not None and process_start_time(pid) != cfg["pid_start"]:
        return _fail("container is not running")
    seccomp: bytes | None = None
    caps = list(cfg.get("capabilities") or ())
    mask = L.bounding_set() if cfg.get("privileged") else L.cap_mask(caps)
    nnp = bool(cfg.get("no_new_privileges"))
    try:
        if cfg.get("seccomp_program"):
            seccomp = bytes.fromhex(cfg["seccomp_program"])
        fds = [(os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC), flag) for name, flag in NAMESPACES]
        if cfg.get("cgroup"):
            cgroups.enter(cgroups.Cgroup.from_json(cfg["cgroup"]), os.getpid())
        for ns_fd, flag in fds:
            L.setns(ns_fd, flag)
            os.close(ns_fd)
    except OSError as exc:
        return _fail(f"cannot enter the container: {exc}")
    fail_r, fail_w = os.pipe2(os.O_CLOEXEC)
    child = os.fork()
    if child == 0:
        os.close(fail_r)
        _child(cfg, fail_w, mask, nnp, seccomp, console_fd)
    os.close(fail_w)
    if console_fd >= 0:
        os.close(console_fd)  # the child's alone: a child failing before it sends ends the caller's wait

    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(child, signum)
        except OSError:
            pass

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    failure = b""
    while chunk := os.read(fail_r, 4096):
        failure += chunk
    os.close(fail_r)
    _, status = os.waitpid(child, 0)
    if failure:
        return _fail(f"OCI runtime exec failed: exec failed: unable to start container process: "
                     f"{failure[3:].decode(errors='replace')}", int(failure[:3]))
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def _child(cfg: dict[str, Any], fail_w: int, mask: int, nnp: bool, seccomp: bytes | None, console_fd: int) -> None:
    """In the container's namespaces: become the container's user and exec (never returns)."""
    from composer.backends.native.runtime.init import exec_path, resolve_user, set_ulimits

    try:
        uid, gid, groups, home = resolve_user(cfg.get("user") or "0", list(cfg.get("group_add") or ()))
        if cfg.get("ulimits"):
            set_ulimits(cfg["ulimits"])  # while root, before the capabilities drop
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in cfg.get("env") or ())
        env.setdefault("HOME", home or "/")
        args = list(cfg["args"])
        try:
            path = exec_path(args, env)
        except ValueError as exc:
            os.write(fail_w, b"127" + str(exc).encode())
            os._exit(127)
        if console_fd >= 0:  # the container's own devpts (its mount namespace is ours now)
            peer, _ = console.new_pair(console_fd, cfg.get("console_size"))
            console.take_terminal(peer, uid)
        else:
            os.setsid()
        L.close_on_exec_beyond_stdio()  # the program gets 0-2 only (before the filter, which might refuse it)
        if nnp:
            L.prctl(L.PR_SET_NO_NEW_PRIVS, 1)
        if seccomp is not None and not nnp:
            install(seccomp)  # still holding CAP_SYS_ADMIN
        L.set_capabilities(mask, uid=uid, gid=gid, groups=groups)
        L.make_undumpable()  # again: a change of uid resets it to fs.suid_dumpable
        if seccomp is not None and nnp:
            install(seccomp)
        try:
            os.chdir(cfg.get("working_dir") or "/")
        except OSError as exc:
            raise OSError(exc.errno, f"chdir to cwd ({cfg.get('working_dir')}) set in config.json failed: "
                                     f"{exc.strerror}") from None
        os.execve(path, args, env)
    except BaseException as exc:
        try:
            os.write(fail_w, b"126" + (str(exc) or type(exc).__name__).encode())
        finally:
            os._exit(126)
