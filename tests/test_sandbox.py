"""The grading sandbox from inside: commands run where a student kernel would, and report what they see.

Each test runs a shell or Python script through :func:`dgm.course.sandbox.bwrap_command`, exactly
as :class:`~dgm.course.sandbox.SandboxedKernelManager` runs ipykernel, with a small submission
folder and a connection file, and checks the promises of docs/instructors.md section 6 one by one.
tests/test_grading.py attacks the same sandbox through nbgrader and checks the host afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from dgm.course import sandbox

WORKDIR = f"{sandbox.SCRATCH}/assignment"
DISK_MB, PROCESSES = 8, 24


def run_sandboxed(
    tmp_path: Path, argv: list[str], host_env: dict[str, str] | None = None, readable: list[str] | None = None,
) -> subprocess.CompletedProcess:
    """Run ``argv`` in a sandbox made as for a kernel (``readable``: default ``readable_paths()``);
    the submission folder holds ``answer.txt``."""
    why = sandbox.unavailable()
    assert not why, why
    submission = tmp_path / "submission"
    submission.mkdir(exist_ok=True)
    (submission / "answer.txt").write_text("42\n")
    connection = tmp_path / "connection.json"
    connection.write_text('{"transport": "ipc"}')
    env = sandbox.kernel_environment({**os.environ, **(host_env or {})})
    with open(connection) as file:
        command = sandbox.bwrap_command(argv, file.fileno(), str(submission), WORKDIR,
                                        sandbox.readable_paths() if readable is None else readable, env, DISK_MB, PROCESSES)
        return subprocess.run(command, capture_output=True, text=True, timeout=60, pass_fds=(file.fileno(),))


def sh(tmp_path: Path, script: str, **kwargs) -> str:
    """Run a shell ``script`` in the sandbox; its stdout and stderr together."""
    done = run_sandboxed(tmp_path, ["sh", "-c", script], **kwargs)
    return done.stdout + done.stderr


def test_the_kernel_runs_as_an_unprivileged_user_without_capabilities(tmp_path):
    out = sh(tmp_path, "id -u; grep CapEff /proc/self/status")
    uid, capabilities = out.split()[0], out.split()[-1]
    assert uid != "0" and int(capabilities, 16) == 0, out


def test_the_working_directory_is_a_writable_copy_of_the_submission(tmp_path):
    out = sh(tmp_path, "pwd; cat answer.txt; echo changed > answer.txt && cat answer.txt")
    assert out.split() == [WORKDIR, "42", "changed"], out
    assert (tmp_path / "submission" / "answer.txt").read_text() == "42\n", "the host's copy changed"


def test_the_connection_file_can_be_read_but_not_changed(tmp_path):
    out = sh(tmp_path, f"cat {sandbox.CONNECTION_FILE}; echo '{{}}' > {sandbox.CONNECTION_FILE} || echo refused")
    assert '"transport": "ipc"' in out and "refused" in out, out


def test_the_repository_does_not_exist_but_the_library_and_data_do(tmp_path):
    hidden = [ROOT / "solutions", ROOT / "tests", ROOT / "notebooks", ROOT / ".git", tmp_path]
    shown = [ROOT / "lib" / "dgm", ROOT / "data" / "checkpoints", ROOT / "data" / "corpus"]
    script = "; ".join(f"test -e '{path}' && echo seen {path}" for path in hidden + shown)
    seen = {line.split(" ", 1)[1] for line in sh(tmp_path, script + "; true").splitlines() if line.startswith("seen ")}
    assert seen == {str(path) for path in shown}


def test_the_library_finds_its_checkpoints_and_corpus_inside(tmp_path):
    """What a notebook does: ``dgm.data.shipped`` must point at the bound folders, not elsewhere."""
    script = (
        "from dgm.data import shipped; "
        "print(len(list(shipped('checkpoints').glob('*.json'))), (shipped('corpus') / 'once_upon_a_time.txt').is_file())"
    )
    done = run_sandboxed(tmp_path, [sys.executable, "-c", script])
    assert done.stdout.split() == [str(len(list((ROOT / "data" / "checkpoints").glob("*.json")))), "True"], done.stderr


def test_folders_above_a_readable_path_hold_only_the_way_to_it(tmp_path):
    """The home folder, say, exists only when the Python environment lives under it, and then shows
    nothing but the folder that leads there."""
    readable = [Path(p) for p in sandbox.readable_paths()]
    system = [Path(p) for p in sandbox.SYSTEM]
    leads = {}  # an ancestor of a readable path, not itself bound -> the names that lead on from it
    for path in readable:
        for child, parent in zip([path, *path.parents], path.parents):
            if parent != Path("/") and not any(parent == b or b in parent.parents for b in readable + system):
                leads.setdefault(parent, set()).add(child.name)
    script = "; ".join(f"echo \"{parent}:$(ls -A '{parent}' | tr '\\n' ' ')\"" for parent in leads)
    for line in sh(tmp_path, script).splitlines() if leads else []:
        parent, names = line.split(":", 1)
        assert set(names.split()) == leads[Path(parent)], line


@pytest.mark.parametrize("folder", ["/", "/usr", "/etc", "/dev", str(ROOT / "lib" / "dgm"), sys.prefix])
def test_nothing_outside_the_scratch_space_can_be_written(tmp_path, folder):
    probe = Path(folder) / "dgm-sandbox-probe"
    out = sh(tmp_path, f"touch '{probe}' && echo wrote")
    assert "wrote" not in out and not probe.exists(), out


def test_scratch_space_is_capped(tmp_path):
    out = sh(tmp_path, f"dd if=/dev/zero of=$TMPDIR/filler bs=1M count={4 * DISK_MB} 2>&1; du -m $TMPDIR/filler")
    assert "No space left on device" in out, out
    assert int(out.split()[-2]) <= DISK_MB, out


def test_a_readable_folder_under_tmp_is_shown_and_temporary_files_still_work(tmp_path):
    """A checkout in /tmp: /tmp then holds only the way down to it, and TMPDIR is the scratch space's."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "library.py").write_text("ANSWER = 42\n")
    out = sh(tmp_path, f"cat '{checkout}/library.py'; echo temp > $TMPDIR/note && cat $TMPDIR/note; touch /tmp/x 2>/dev/null || echo refused",
             readable=[*sandbox.readable_paths(), str(checkout)])
    assert out.split() == ["ANSWER", "=", "42", "temp", "refused"], out


def test_the_only_network_is_its_own_loopback(tmp_path):
    lines = sh(tmp_path, "cat /proc/net/dev").splitlines()[2:]  # two header lines, then one per interface
    assert [line.split(":")[0].strip() for line in lines] == ["lo"]


def test_host_processes_are_invisible(tmp_path):
    pids = [int(name) for name in sh(tmp_path, "ls /proc").split() if name.isdigit()]
    assert 0 < len(pids) <= 5 and max(pids) < 10, pids  # bwrap's init, the shells, ls: a new PID namespace


def test_a_fork_bomb_stops_at_the_process_cap(tmp_path):
    script = (
        "import os, time\n"
        "children = []\n"
        "try:\n"
        "    for _ in range(10 * %d):\n"
        "        pid = os.fork()\n"
        "        if pid == 0:\n"
        "            time.sleep(3)\n"
        "            os._exit(0)\n"
        "        children.append(pid)\n"
        "except OSError as error:\n"
        "    print('refused:', error.strerror)\n"
        "print('forked', len(children))\n" % PROCESSES
    )
    out = run_sandboxed(tmp_path, [sys.executable, "-c", script]).stdout
    forked = int(out.split()[-1])
    assert "refused" in out and 0 < forked < PROCESSES, out


def test_the_environment_holds_nothing_of_the_grader_but_what_is_passed_on(tmp_path):
    out = sh(tmp_path, "env", host_env={"DGM_SECRET": "grader-only", "DGM_FAST": "1"})
    names = {line.split("=", 1)[0] for line in out.splitlines()}
    assert "DGM_SECRET" not in names and "DGM_FAST=1" in out.splitlines()
    assert f"HOME={sandbox.SCRATCH}" in out.splitlines()
    allowed = set(sandbox.kernel_environment({name: "" for name in sandbox.PASSED_ON})) | {"PWD", "SHLVL", "_", "OLDPWD"}
    assert names <= allowed, names - allowed


def test_unavailable_names_bubblewrap_and_the_way_out_when_bwrap_is_missing(monkeypatch):
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    why = sandbox.unavailable()
    assert "bubblewrap" in why and "--no-sandbox" in why


def test_a_grader_that_is_not_root_gets_uid_1000_in_a_user_namespace_that_makes_no_other(monkeypatch):
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 1000)
    command = sandbox.bwrap_command(["true"], 0, "/nowhere", WORKDIR, [], {}, DISK_MB, PROCESSES)
    for flags in (["--unshare-user"], ["--disable-userns"], ["--uid", str(sandbox.UID)], ["--gid", str(sandbox.UID)]):
        assert any(command[i : i + len(flags)] == flags for i in range(len(command))), flags
    assert "setpriv" not in command and "CAP_SETUID" not in command, "root's way of dropping privileges"
    assert command[command.index("prlimit") + 1] == f"--nproc={PROCESSES}"
