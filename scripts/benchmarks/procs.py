"""Process figures read from Linux's /proc: resident memory, its peak, open descriptors, and
the process tree (the JVM a SparkSession started, the Python workers under it).

Only for the bench's own processes (same user); every reader returns None where a process
has gone or /proc says nothing, rather than fail a long run on a worker that just exited.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

KIB = 1024
MIB = 1024 * 1024
JDK_TOOL_TIMEOUT_S = 30


def _status(pid: int | str) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def _kib_field(pid: int | str, field: str) -> int | None:
    """A ``/proc/PID/status`` size field (``VmRSS``, ``VmHWM``: "123 kB") in bytes."""
    value = _status(pid).get(field)
    if not value:
        return None
    return int(value.split()[0]) * KIB


def rss(pid: int | str = "self") -> int | None:
    """Resident set size in bytes."""
    return _kib_field(pid, "VmRSS")


def peak_rss(pid: int | str = "self") -> int | None:
    """The resident set's high-water mark in bytes (since start or ``reset_peak_rss``)."""
    return _kib_field(pid, "VmHWM")


def reset_peak_rss(pid: int | str = "self") -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0: ``5`` to ``clear_refs``); False if
    the kernel refused, and then VmHWM still counts from the process start."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


def threads(pid: int | str = "self") -> int | None:
    value = _status(pid).get("Threads")
    return int(value) if value else None


def open_fds(pid: int | str = "self") -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def fds_by_kind(pid: int | str = "self") -> dict[str, int]:
    """Open descriptors by kind: sockets, files (regular files and directories), pipes,
    other (anon inodes: epoll, eventfd, ...). Empty if the process is gone."""
    kinds = {"sockets": 0, "files": 0, "pipes": 0, "other": 0}
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return {}
    for name in names:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:"):
            kinds["sockets"] += 1
        elif target.startswith("pipe:"):
            kinds["pipes"] += 1
        elif target.startswith("/"):
            kinds["files"] += 1
        else:
            kinds["other"] += 1
    return kinds


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def stat_fields(pid: int | str) -> list[str] | None:
    """``/proc/PID/stat`` after the command name: state, ppid (1), ..., utime (11), stime,
    cutime, cstime (14), in clock ticks; None where the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            stat = handle.read()
    except OSError:
        return None
    # The command name in parentheses may hold spaces: the fields follow the last ")".
    return stat[stat.rfind(")") + 2 :].split()


def cpu_seconds(pid: int | str, *, reaped_children: bool = False) -> float | None:
    """A process's CPU seconds (user and system; with ``reaped_children``, its waited-for
    children's too); None where the process is gone."""
    fields = stat_fields(pid)
    if fields is None:
        return None
    return ticks(fields, reaped_children=reaped_children) / os.sysconf("SC_CLK_TCK")


def ticks(fields: list[str], *, reaped_children: bool = False) -> int:
    """CPU clock ticks of a process's ``stat_fields`` (see ``cpu_seconds``)."""
    return sum(int(x) for x in fields[11 : 15 if reaped_children else 13])


def _parents() -> dict[int, int]:
    """Every visible process's parent pid."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        fields = stat_fields(name)
        if fields is not None:
            out[int(name)] = int(fields[1])
    return out


def descendants(pid: int) -> list[int]:
    """Every process under ``pid``, children before grandchildren."""
    parents = _parents()
    children: dict[int, list[int]] = {}
    for child, parent in parents.items():
        children.setdefault(parent, []).append(child)
    out: list[int] = []
    todo = sorted(children.get(pid, []))
    while todo:
        current = todo.pop(0)
        out.append(current)
        todo.extend(sorted(children.get(current, [])))
    return out


@dataclass(frozen=True)
class SparkProcesses:
    """The JVM a local SparkSession runs in, and the Python processes it started.

    ``workers`` are the processes that run Python code for Spark: the ones a
    ``pyspark.daemon`` forked (tasks' workers, data source lookups) and any started on
    their own (the streaming source's planner on the driver). ``daemons`` only fork.
    """

    jvm: int | None
    daemons: tuple[int, ...]
    workers: tuple[int, ...]


def spark_processes() -> SparkProcesses:
    """The ``java`` process under this Python process (pyspark's gateway) and the Python
    processes under it."""
    under = descendants(os.getpid())
    jvm = next((p for p in under if os.path.basename(cmdline(p).split(" ")[0]) == "java"), None)
    if jvm is None:
        return SparkProcesses(None, (), ())
    parents = _parents()
    daemons: list[int] = []
    workers: list[int] = []
    for pid in descendants(jvm):
        command = cmdline(pid)
        if "python" not in os.path.basename(command.split(" ")[0]):
            continue
        if parents.get(pid) == jvm and "pyspark.daemon" in command:
            daemons.append(pid)
        else:
            workers.append(pid)
    return SparkProcesses(jvm, tuple(daemons), tuple(workers))


def _jdk_tool(pid: int, tool: str, *args: str) -> subprocess.CompletedProcess[str] | None:
    """Run ``tool`` (jstat, jcmd) of the JDK the JVM ``pid`` runs on; None if it cannot."""
    try:
        path = os.path.join(os.path.dirname(os.readlink(f"/proc/{pid}/exe")), tool)
        return subprocess.run(
            [path, *args], capture_output=True, text=True, timeout=JDK_TOOL_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


def jvm_full_gc(pid: int) -> bool:
    """Ask the JVM for a full collection (``jcmd PID GC.run``): the old generation's use
    right after it is what the heap really holds, without the sawtooth of garbage."""
    done = _jdk_tool(pid, "jcmd", str(pid), "GC.run")
    return done is not None and done.returncode == 0


def jvm_heap(pid: int) -> dict[str, int] | None:
    """A JVM's heap in bytes (``heap used``, ``heap committed``, ``old gen used``) by the
    ``jstat`` next to its ``java``; None where there is none or it fails."""
    done = _jdk_tool(pid, "jstat", "-gc", str(pid))
    if done is None:
        return None
    lines = done.stdout.split("\n")
    if done.returncode != 0 or len(lines) < 2:
        return None
    # Sizes in KiB: survivor 0/1, eden and old generation, capacity (C) and used (U).
    gc = dict(zip(lines[0].split(), lines[1].split(), strict=False))
    try:
        used = sum(float(gc[k]) for k in ("S0U", "S1U", "EU", "OU"))
        committed = sum(float(gc[k]) for k in ("S0C", "S1C", "EC", "OC"))
        old = float(gc["OU"])
    except (KeyError, ValueError):
        return None
    return {
        "heap used": int(used * KIB),
        "heap committed": int(committed * KIB),
        "old gen used": int(old * KIB),
    }
