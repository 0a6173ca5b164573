"""Child processes in their own process group, registered until stopped, stopped by group at exit."""

from __future__ import annotations

import atexit
import os
import re
import signal
import socket
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Every process `spawn` started and nobody has stopped yet, by pid (= its process group id).
_LIVE: dict[int, subprocess.Popen[bytes]] = {}
_atexit_registered = False


def spawn(
    command: Sequence[str], env: dict[str, str] | None, log: Path, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start `command` in its own session (process group = its pid), stdin closed, stdout and stderr
    appended to `log` (a file, never a pipe nobody reads); registered so that `stop_all` (run at
    interpreter exit) stops it if the caller does not."""
    _stop_all_at_exit()  # at the first spawn, not at import: importing has no side effects
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            list(command),
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _LIVE[proc.pid] = proc
    return proc


def signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Signal the process group led by `proc`, only while `proc` is not reaped: until then its pid
    (the group id) cannot belong to anyone else."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass


def stop_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, grace: float = 30.0) -> int | None:
    """Signal the process group of `proc` (started by `spawn`), SIGKILL it if still alive after
    `grace` seconds, and forget it. Returns the exit code."""
    try:
        signal_group(proc, sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            signal_group(proc, signal.SIGKILL)
            proc.wait(30)
    finally:
        _LIVE.pop(proc.pid, None)
    return proc.returncode


def kill_group(proc: subprocess.Popen[bytes]) -> int | None:
    """SIGKILL the process group of `proc` at once (no flush, no goodbye to the broker)."""
    return stop_group(proc, signal.SIGKILL, grace=30.0)


def stop_all() -> None:
    """Stop every process started here and not stopped yet (at exit, on error)."""
    for proc in list(_LIVE.values()):
        stop_group(proc, signal.SIGTERM, grace=10.0)


def _stop_all_at_exit() -> None:
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(stop_all)
        _atexit_registered = True


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds the `finally` blocks, then atexit stops the rest


def install_cleanup() -> None:
    """For command-line entry points: stop started processes at exit, on SIGTERM/SIGHUP and on
    Ctrl-C (KeyboardInterrupt)."""
    _stop_all_at_exit()
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mib(pid: int) -> float | None:
    """VmRSS of a process in MiB (None once it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmRSS:\s+(\d+)\s+kB", text, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else None
