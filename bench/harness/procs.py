"""Processes the harness starts: pinning, ports, readiness, and what /proc says about their CPU and memory."""
from __future__ import annotations

import http.client
import os
import resource
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def raise_nofile() -> None:
    """Lift the open-file limit to the hard limit (SSE tests hold thousands of sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = max(soft, min(hard, 65536)) if hard != resource.RLIM_INFINITY else 65536
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reuseport_sockets(count: int, port: int | None = None) -> tuple[int, list[socket.socket]]:
    """`count` listening sockets on one port with SO_REUSEPORT: the kernel spreads connections over them."""
    while True:
        port = port or free_port()
        socks = []
        try:
            for _ in range(count):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                s.bind(("127.0.0.1", port))
                s.listen(4096)
                s.set_inheritable(True)
                socks.append(s)
            return port, socks
        except OSError:
            for s in socks:
                s.close()
            port = None


def pinned(cmd: list[str], cores: str | None) -> list[str]:
    if not cores:
        return cmd
    return [shutil.which("taskset") or "taskset", "-c", cores, *cmd]


@dataclass
class Proc:
    """A child process with a name for reports; its log goes to a file."""

    name: str
    popen: subprocess.Popen
    log: Path
    cmd: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def pids(self) -> list[int]:
        """This process and its descendants (uvicorn's workers)."""
        return [self.pid, *descendants(self.pid)]

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def spawn(name: str, cmd: list[str], *, log: Path, cores: str | None = None, env: dict | None = None,
          cwd: str | Path | None = None, pass_fds: tuple[int, ...] = ()) -> Proc:
    full = pinned(cmd, cores)
    log.parent.mkdir(parents=True, exist_ok=True)
    out = open(log, "ab", buffering=0)
    popen = subprocess.Popen(full, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                             cwd=cwd, pass_fds=pass_fds, preexec_fn=raise_nofile, start_new_session=True)
    out.close()
    return Proc(name=name, popen=popen, log=log, cmd=full)


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    queue = [pid]
    while queue:
        current = queue.pop()
        children: list[int] = []
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                text = Path(f"/proc/{current}/task/{task}/children").read_text()
                children.extend(int(c) for c in text.split())
        except OSError:
            pass
        found.extend(children)
        queue.extend(children)
    return found


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process, in clock ticks (0 once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5)


def cpu_seconds(pids: list[int]) -> float:
    return sum(cpu_ticks(p) for p in pids) / CLK_TCK


def core_times() -> dict[int, tuple[int, int]]:
    """Per core: (busy, total) jiffies from /proc/stat."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu") and line[3:4].isdigit():
            name, *values = line.split()
            numbers = [int(v) for v in values[:8]]
            idle = numbers[3] + numbers[4]
            out[int(name[3:])] = (sum(numbers) - idle, sum(numbers))
    return out


def busy_cores(seconds: float = 1.0) -> float:
    """How many cores' worth of work the machine did over `seconds` (all processes)."""
    a = core_times()
    time.sleep(seconds)
    b = core_times()
    return sum((b[c][0] - a[c][0]) / max(1, b[c][1] - a[c][1]) for c in b if c in a)


def status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kb(pid: int) -> int:
    return status_kb(pid, "VmRSS")


def pid_of(name: str) -> list[int]:
    """Pids whose command name is exactly `name` (read-only: for reporting Redis' CPU, never to signal)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() == name:
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


class Sampler:
    """Samples VmRSS of a set of pids in the background and keeps each one's peak."""

    def __init__(self, pids: dict[str, int], interval: float = 0.2):
        self.pids = pids
        self.interval = interval
        self.peak_kb: dict[str, int] = {name: rss_kb(pid) for name, pid in pids.items()}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for name, pid in self.pids.items():
                self.peak_kb[name] = max(self.peak_kb[name], rss_kb(pid))

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        for name, pid in self.pids.items():
            self.peak_kb[name] = max(self.peak_kb[name], rss_kb(pid))


def wait_http(host: str, port: int, path: str = "/", *, timeout: float = 30.0, proc: Proc | None = None,
              method: str = "GET") -> None:
    """Wait until something answers HTTP on host:port (any status)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.tail()}")
        try:
            conn = http.client.HTTPConnection(host, port, timeout=2)
            conn.request(method, path)
            conn.getresponse().read()
            conn.close()
            return
        except OSError as exc:
            last = exc
            time.sleep(0.1)
    tail = f"\n{proc.tail()}" if proc else ""
    raise RuntimeError(f"nothing answered on {host}:{port}{path} within {timeout:g} s ({last}){tail}")


def run(cmd: list[str], *, env: dict | None = None, cwd: str | Path | None = None, check: bool = True,
        timeout: float | None = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
                           f"{result.stderr[-3000:]}")
    return result
