"""The grading sandbox: every student kernel runs inside bubblewrap and sees only its own notebook.

A submitted notebook is hostile code. The grader runs nbgrader on the host (nbgrader alone writes
the gradebook), but the kernel that executes the student's cells is started by
:class:`SandboxedKernelManager` inside ``bwrap`` (bubblewrap), in new mount, PID, network, IPC and
UTS namespaces:

- it **reads** only the system folders (``/usr``, ``/etc``, ...), the Python environment, the
  installed ``dgm`` package and the data it needs (``DGM_DATA``, the shipped checkpoints and text
  corpus, see :func:`dgm.data.shipped`), each bound read-only at its own path; nothing else of the
  host exists in it: not the repository (its ``solutions/``, ``tests/``, ``notebooks/``, ``.git``),
  not the grading folder or any gradebook, not the home folder, not other submissions;
- it **writes** only a private tmpfs of ``disk_mb`` megabytes at ``/sandbox``, which holds its
  working directory ``/sandbox/<assignment>`` (a fresh copy of the submission's folder), ``HOME``
  and ``/tmp`` (``TMPDIR``; when a readable path lies under ``/tmp``, a checkout there, ``/tmp``
  itself only shows the way down to it, read-only); besides, a 64 MB ``/dev/shm`` and the 1 MB folder of its ZeroMQ sockets. The root
  and ``/dev`` are read-only, and everything vanishes with the sandbox;
- it has **no network**: a new network namespace with only its own loopback. The grader talks to
  the kernel over ZeroMQ's ``ipc`` transport, Unix sockets that the host reaches through
  ``/proc/<pid>/root`` of the sandbox;
- it runs as an **unprivileged user** without capabilities: a host uid from 100000 up that owns no
  file when the grader is root (a process of host uid 0 would be exempt from the process cap), else
  uid 1000 in a user
  namespace in which no further user namespace may be made; at most ``processes`` processes and
  threads may run as that user (a fork bomb stays inside);
- it lives in a new **PID namespace** that dies with it (``--die-with-parent``): nothing it starts
  outlives grading, and it can neither see nor signal the host's processes.

Interrupts (nbgrader's cell timeout) go as an ``interrupt_request`` message, which ipykernel turns
into a SIGINT for itself: the usual SIGINT to the launched process would reach bwrap and end the
whole sandbox.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from nbgrader.preprocessors import Execute
from traitlets import Int, List, Unicode

# Imported here, not in the functions that use them, so that the grader's forkserver, which preloads
# this module, imports torch (through dgm.data) once rather than once per graded notebook.
import dgm
from dgm.data import SHIPPED, data_dir, shipped

SCRATCH = "/sandbox"  # the writable tmpfs: working directory, HOME and /tmp
SOCKETS = "/run/kernel"  # the kernel's ZeroMQ sockets
CONNECTION_FILE = "/run/kernel.json"
SUBMISSION = "/run/submission"  # read-only: the notebook's folder as nbgrader laid it out
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc", "/sys/devices/system/cpu")
SHM_MB = 64  # /dev/shm: POSIX shared memory and semaphores
PASSED_ON = ("DGM_FAST", "OMP_NUM_THREADS", "MKL_NUM_THREADS")  # from the grader's environment
UID = 1000  # the kernel's uid in its user namespace (a grader that is not root)
UNPRIVILEGED = 100_000  # a grader running as root runs each kernel as a host uid from here, owning no file
INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: `sudo apt-get install bubblewrap`; Fedora: `sudo dnf install "
    "bubblewrap`), or pass --no-sandbox to grade without isolation (unsafe: a submission then runs with "
    "your powers; see docs/instructors.md)"
)


def bwrap_command(
    kernel: list[str], connection_fd: int, submission: str, workdir: str, readable: list[str],
    env: dict[str, str], disk_mb: int, processes: int, info_fd: int | None = None,
) -> list[str]:
    """The ``bwrap`` command line that runs ``kernel`` (an argv that reads ``CONNECTION_FILE``).

    bwrap reads the connection file from ``connection_fd``; ``submission`` is a host folder,
    bound read-only, whose copy fills the kernel's working directory ``workdir`` (under ``SCRATCH``);
    ``readable`` are host folders bound read-only at their own paths; ``env`` is the kernel's
    whole environment; bwrap writes the sandbox's pid as JSON to ``info_fd``.
    """
    command = [shutil.which("bwrap") or "bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net",
               "--unshare-uts", "--unshare-cgroup-try", "--die-with-parent", "--hostname", "sandbox"]
    drop_root = []
    if os.geteuid() == 0:  # root makes the namespaces itself, then the kernel drops root
        command += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        uid = str(UNPRIVILEGED + os.getpid() % UNPRIVILEGED)  # one per grading process: its own process count
        drop_root = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all", "--"]
    else:
        command += ["--unshare-user", "--disable-userns", "--uid", str(UID), "--gid", str(UID)]
    command.append("--clearenv")
    for name, value in env.items():
        command += ["--setenv", name, value]
    for path in SYSTEM:
        command += ["--ro-bind-try", path, path]
    bound = [Path(p) for p in (*SYSTEM, *readable)]
    parents = {a for p in readable for a in Path(p).parents if not any(a == b or b in a.parents for b in bound)}
    for parent in sorted(parents, key=lambda a: len(a.parts))[1:]:  # bwrap would make them 0700
        command += ["--perms", "0755", "--dir", str(parent)]
    for path in readable:
        command += ["--ro-bind", path, path]
    # /tmp is the scratch space's tmp, unless a readable path lies under /tmp (a checkout in /tmp):
    # then /tmp holds only the way down to it, read-only, and TMPDIR alone points at the scratch space.
    tmp_link = [] if any(Path("/tmp") in Path(p).parents for p in readable) else ["--symlink", f"{SCRATCH}/tmp", "/tmp"]
    open_to_all = ["--perms", "01777"]  # folders made here belong to root; the kernel's user must write them
    command += [
        "--proc", "/proc", "--dev", "/dev",
        *open_to_all, "--size", str(disk_mb * 2**20), "--tmpfs", SCRATCH,
        *open_to_all, "--dir", f"{SCRATCH}/tmp", *open_to_all, "--dir", workdir, *tmp_link,
        *open_to_all, "--size", str(SHM_MB * 2**20), "--tmpfs", "/dev/shm",
        *open_to_all, "--size", str(2**20), "--tmpfs", SOCKETS,
        "--perms", "0444", "--ro-bind-data", str(connection_fd), CONNECTION_FILE, "--ro-bind", submission, SUBMISSION,
        "--remount-ro", "/dev", "--remount-ro", "/", "--chdir", workdir,
    ]
    if info_fd is not None:
        command += ["--info-fd", str(info_fd)]
    copy_submission = f'cp -R {SUBMISSION}/. . && chmod -R a+rwX . && exec "$0" "$@"'
    return command + ["--", "sh", "-c", copy_submission, *drop_root, "prlimit", f"--nproc={processes}", "--", *kernel]


def unavailable() -> str:
    """Why the sandbox cannot run on this machine, or ``""`` when it can.

    Runs ``true`` in a sandbox made as for a kernel: bubblewrap must be installed and allowed to
    make its namespaces (a container without user namespaces, macOS and Windows cannot).
    """
    if shutil.which("bwrap") is None:
        return f"bubblewrap (bwrap) is not installed: {INSTALL_HINT}"
    with tempfile.TemporaryDirectory() as empty:
        with open(os.devnull) as nothing:
            command = bwrap_command(["true"], nothing.fileno(), empty, f"{SCRATCH}/probe", [], {"PATH": "/usr/bin:/bin"}, 1, 16)
            probe = subprocess.run(command, capture_output=True, text=True, pass_fds=(nothing.fileno(),))
    if probe.returncode != 0:
        return f"bubblewrap cannot make the sandbox here ({probe.stderr.strip()[:200]}): {INSTALL_HINT}"
    return ""


def readable_paths() -> list[str]:
    """Host folders the kernel may read: the Python environment, the dgm package, the MNIST cache
    (``data_dir()``) and the data the course ships (``shipped(...)``: checkpoints, the text corpus)."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    paths |= {str(Path(dgm.__file__).resolve().parent), str(data_dir().resolve())}
    paths |= {str(shipped(name)) for name in SHIPPED}
    return sorted(p for p in paths if Path(p).is_dir())


def kernel_environment(grader: dict[str, str]) -> dict[str, str]:
    """The kernel's whole environment: the sandbox's own, and of the ``grader``'s only the variables
    in ``PASSED_ON`` (``DGM_DEVICE`` is not: the sandbox has no GPU devices, its kernels use the CPU)."""
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": SCRATCH,
        "TMPDIR": f"{SCRATCH}/tmp",
        "USER": "student",
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "DGM_DATA": str(data_dir().resolve()),
        **{name: grader[name] for name in PASSED_ON if name in grader},
    }


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernels run in the bubblewrap sandbox (see the module docstring).

    The kernel's working directory inside is ``/sandbox/<name of the folder nbgrader runs it in>``.
    """

    disk_mb = Int(512, help="size of the sandbox's writable tmpfs (working directory, HOME, /tmp), MB").tag(config=True)
    processes = Int(256, help="processes and threads that may run in the sandbox").tag(config=True)
    readable = List(Unicode(), help="host folders bound read-only (default: readable_paths())").tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.transport = "ipc"
        self.ip = f"{SOCKETS}/kernel"  # where the kernel binds; the host connects via /proc/<pid>/root

    @property
    def kernel_spec(self):
        spec = super().kernel_spec
        if spec is not None:
            spec.interrupt_mode = "message"
        return spec

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw) -> None:
        submission = Path(kw.pop("cwd", None) or os.getcwd()).resolve()
        connection_file = os.path.realpath(self.connection_file)
        kernel = [CONNECTION_FILE if arg == connection_file else arg for arg in kernel_cmd]
        info, info_fd = os.pipe()
        with open(connection_file, "rb") as connection:
            command = bwrap_command(
                kernel, connection.fileno(), str(submission), f"{SCRATCH}/{submission.name}",
                list(self.readable) or readable_paths(),
                kernel_environment(kw.get("env") or dict(os.environ)),
                self.disk_mb, self.processes, info_fd,
            )
            try:
                launch = dict(kw, pass_fds=(info_fd, connection.fileno()), env={})
                await super()._async_launch_kernel(command, **launch)
            finally:
                os.close(info_fd)
        with os.fdopen(info) as stream:  # bwrap closes it once the sandbox exists, or when it fails
            text = stream.read()
        try:
            pid = json.loads(text)["child-pid"]
        except (ValueError, KeyError):
            raise RuntimeError(f"the grading sandbox did not start (bwrap wrote {text!r} about it)") from None
        self.ip = f"/proc/{pid}/root{SOCKETS}/kernel"


class SandboxedExecute(Execute):
    """nbgrader's Execute preprocessor, with its kernels in the sandbox."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", SandboxedKernelManager)
        super().__init__(*args, **kwargs)
