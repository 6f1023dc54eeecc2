"""Child processes of Hosted stdio servers: spawned with limits, spoken to in newline-delimited JSON-RPC, accounted.

A child is started with a clean environment (only the entry's declared variables plus PATH and HOME inside the
install cache), in its own process group, with RLIMIT_AS, RLIMIT_CPU and RLIMIT_NOFILE set before it runs; its
stdout lines are bounded, its stderr is kept as a ring of recent lines. The registry here knows every child of this
gateway process: it enforces the per-entry and installation-wide process limits and refuses to start a server that
keeps crashing until its crash window has passed.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import os
import resource
import signal
import subprocess
import time
from typing import Any

from django.conf import settings

from ..executors import upstream as up
from ..jsonrpc import Message, dumps
from ..readmodel import HostedConfig, ServerConfig

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 2.0
_ids = itertools.count(1)


class HostedRefused(up.UpstreamError):
    """A child may not be started now (limits, crash loop, not installed): the client is told why."""


def _limit(limits) -> None:
    """Runs in the child between fork and exec: the entry's limits become the kernel's."""
    memory = limits.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))


def _run_as() -> dict[str, Any]:
    """HOSTED_USER's uid and primary group, for the child; nothing when children run as the gateway's user."""
    name = str(getattr(settings, "HOSTED_USER", "") or "")
    if not name:
        return {}
    import pwd

    entry = pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


class Child(up.MessageLink):
    """One running child of a Hosted stdio server, as a message link the Direct Proxy relay drives."""

    def __init__(self, server: ServerConfig, *, on_message, session_id: str | None) -> None:
        super().__init__(server, on_message=on_message)
        hosted: HostedConfig = server.hosted
        self.hosted = hosted
        self.id = next(_ids)
        self.url = f"hosted stdio server {hosted.entry_slug}"
        self.session_id = session_id
        self.started_at = time.time()
        self.last_used = time.monotonic()
        self.stderr: collections.deque[str] = collections.deque(maxlen=settings.HOSTED_STDERR_LINES)
        self.proc: asyncio.subprocess.Process | None = None
        self.exit_reason = ""
        self.stopping = False  # the gateway asked it to stop: not a crash
        self.end_session = False
        self.failed_start = False
        self._tasks: list[asyncio.Task] = []
        self._written = asyncio.Lock()

    # ------------------------------------------------------------ starting and stopping

    async def open(self) -> None:
        hosted = self.hosted
        try:
            os.makedirs(hosted.cwd, exist_ok=True)
            run_as = _run_as()
        except (OSError, KeyError, ValueError) as exc:
            raise HostedRefused(f"The {self.url} cannot be started here: {exc}") from None
        try:
            self.proc = await asyncio.create_subprocess_exec(
                hosted.program, *hosted.args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=dict(hosted.env), cwd=hosted.cwd, close_fds=True,
                start_new_session=True, limit=settings.HOSTED_MAX_LINE_BYTES,
                preexec_fn=lambda: _limit(hosted.limits), **run_as)
        except (OSError, subprocess.SubprocessError) as exc:
            reason = f"The {self.url} could not be started: {getattr(exc, 'strerror', None) or exc}"
            registry.exited(self, crashed=True, reason=reason)
            raise up.UpstreamError(reason) from None
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._read()), loop.create_task(self._read_stderr()),
                       loop.create_task(self._idle())]

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def open_(self) -> bool:
        return self.proc is not None and self.proc.returncode is None and not self._tasks[0].done()

    async def close(self, *, end_session: bool = False, reason: str = "") -> None:
        """Stop the child (TERM, then KILL after a grace period) and wait for it to be gone."""
        if self.proc is None:
            return
        if not self.stopping:
            self.stopping = True
            self.end_session = end_session
            if reason:
                self.exit_reason = reason
        if self.proc.returncode is None:
            self._signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(STOP_GRACE_SECONDS):
                    await self.proc.wait()
            except TimeoutError:
                self._signal(signal.SIGKILL)
                with contextlib.suppress(Exception):
                    await self.proc.wait()
        reader = self._tasks[0]
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(asyncio.shield(reader), STOP_GRACE_SECONDS)
        for task in self._tasks:
            task.cancel()

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)  # the whole group: an `npx`-style wrapper takes its own child along

    # ------------------------------------------------------------ the wire

    def _timeout_of(self, message: Message) -> float:
        if message.get("method") == "initialize":
            return self.hosted.limits.startup_timeout
        return self.server.timeout

    def _describe(self, exc: BaseException) -> str:
        if isinstance(exc, TimeoutError):
            return f"The {self.url} did not answer within {self._timeout_of({}):g} seconds"
        return f"The {self.url} could not be written to: {exc}"

    async def send(self, message: Message, *, emit=None) -> Message | None:
        if message.get("method") == "initialize":
            try:
                return await super().send(message, emit=emit)
            except up.UpstreamError as exc:
                self.failed_start = True  # counted as a crash, whether it died or hung
                limits = self.hosted.limits
                reason = exc.message
                if "did not answer" in reason:
                    reason = (f"The {self.url} did not finish starting within {limits.startup_timeout:g} seconds "
                              f"(start-up timeout){self._stderr_tail()}")
                raise up.UpstreamError(
                    f"{reason}; it was starting under a memory limit of {limits.memory_mb} MB, "
                    f"{limits.cpu_seconds} CPU seconds and {limits.open_files} open files (a limit set too low stops "
                    "a program at start-up)") from None
        return await super().send(message, emit=emit)

    async def _post(self, message: Message) -> None:
        if not self.open_:
            raise up.SessionLost(self.exit_reason or f"The {self.url} is not running")
        self.last_used = time.monotonic()
        try:
            async with self._written:
                self.proc.stdin.write(dumps(message) + b"\n")
                await self.proc.stdin.drain()
        except (ConnectionError, OSError):
            # The child is going or gone: say why it ended rather than that a pipe broke.
            await asyncio.wait({self._tasks[0]}, timeout=STOP_GRACE_SECONDS)
            raise up.SessionLost((self.exit_reason or f"The {self.url} stopped reading its input")
                                 + self._stderr_tail()) from None

    async def _read(self) -> None:
        stdout = self.proc.stdout
        crashed = True
        try:
            while True:
                try:
                    line = await stdout.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    self.exit_reason = (f"The {self.url} wrote a message longer than "
                                        f"{settings.HOSTED_MAX_LINE_BYTES} bytes and was stopped")
                    self._signal(signal.SIGKILL)
                    break
                if not line:
                    break
                if not line.strip():
                    continue
                self.last_used = time.monotonic()
                try:
                    received = up.parse_message(line, self.url)
                except up.UpstreamError:
                    # Not protocol: some servers print banners on stdout. Kept with the log, never relayed.
                    self.stderr.append("[stdout] " + line[:500].decode("utf-8", "replace").rstrip())
                    continue
                await self._deliver(received)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug in routing must still end the child cleanly, never leave callers waiting
            log.exception("Reading %s failed", self.url)
        finally:
            code = await self._wait_exit()
            with contextlib.suppress(Exception):  # its last words on stderr belong in the reason
                await asyncio.wait({self._tasks[1]}, timeout=0.5)
            crashed = not self.stopping or self.failed_start
            if not self.exit_reason:
                self.exit_reason = self._describe_exit(code)
            # A session's child takes the session with it; a shared child's callers may simply ask again.
            self._fail_pending(self.exit_reason + self._stderr_tail(),
                               up.SessionEnded if self.session_id is not None else up.UpstreamError)
            registry.exited(self, crashed=crashed, reason=self.exit_reason + self._stderr_tail())
            if (crashed or self.end_session) and self.session_id is not None:
                await _end_session(self.session_id)

    async def _wait_exit(self) -> int | None:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            async with asyncio.timeout(STOP_GRACE_SECONDS):
                return await self.proc.wait()
        self._signal(signal.SIGKILL)  # stdout closed but the process lingers: it is of no use any more
        with contextlib.suppress(Exception):
            async with asyncio.timeout(STOP_GRACE_SECONDS):
                return await self.proc.wait()
        return self.proc.returncode

    def _describe_exit(self, code: int | None) -> str:
        if code is None:
            return f"The {self.url} stopped answering"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            cause = {"SIGXCPU": " (CPU time limit reached)", "SIGKILL": " (killed)"}.get(name, "")
            return f"The {self.url} was ended by {name}{cause}"
        return f"The {self.url} exited with code {code}"

    def _stderr_tail(self) -> str:
        lines = [line for line in list(self.stderr)[-3:] if line.strip()]
        return (": " + " | ".join(line[:300] for line in lines)) if lines else ""

    async def _read_stderr(self) -> None:
        stream = self.proc.stderr
        while True:
            try:
                line = await stream.readline()
            except (ValueError, asyncio.LimitOverrunError):
                self.stderr.append("[a line longer than the limit was dropped]")
                continue
            if not line:
                return
            self.stderr.append(line[:2000].decode("utf-8", "replace").rstrip())

    async def _idle(self) -> None:
        idle = self.hosted.limits.idle_timeout
        while True:
            await asyncio.sleep(max(idle - (time.monotonic() - self.last_used), 0.05))
            if self.pending:
                self.last_used = time.monotonic()  # a long call is not idleness
                continue
            if time.monotonic() - self.last_used >= idle:
                # The session's state lived in this child: the session ends with it, and the client initializes again.
                asyncio.get_running_loop().create_task(self.close(end_session=True, reason=(
                    f"The {self.url} was stopped after {idle:g} seconds without a message")))
                return

    def describe(self) -> dict[str, Any]:
        pid = self.pid
        rss = _rss_kb(pid) if pid is not None and self.open_ else None
        return {"id": self.id, "pid": pid, "session": (self.session_id or "")[:8] or "shared",
                "started_at": self.started_at, "memory_kb": rss, "running": self.open_,
                "stderr": list(self.stderr)}


async def _end_session(sid: str) -> None:
    from ..sessions import session_end

    with contextlib.suppress(Exception):  # the session may be gone already, or Redis away: it expires then
        await session_end(sid)


class Registry:
    """Every child of this gateway process, with the per-server record of recent crashes and recent logs."""

    def __init__(self) -> None:
        self.children: dict[int, Child] = {}
        self.crashes: dict[int, collections.deque[float]] = {}
        self.last_exit: dict[int, dict[str, Any]] = {}

    def admit(self, server: ServerConfig) -> None:
        hosted = server.hosted
        if hosted is None or hosted.unavailable:
            raise HostedRefused(hosted.unavailable if hosted is not None else "Not a Hosted stdio server.")
        window, count = settings.HOSTED_CRASH_LOOP_SECONDS, settings.HOSTED_CRASH_LOOP_COUNT
        recent = self.crashes.get(server.id)
        now = time.monotonic()
        if recent is not None:
            while recent and now - recent[0] > window:
                recent.popleft()
            if len(recent) >= count:
                last = self.last_exit.get(server.id, {}).get("reason", "")
                raise HostedRefused(f"The hosted stdio server {hosted.entry_slug} is in a crash loop ({len(recent)} "
                                    f"crashes within {window} seconds) and is not started again until "
                                    f"{int(window - (now - recent[0])) + 1} seconds have passed. Last: {last}")
        if len(self.children) >= settings.HOSTED_MAX_PROCESSES:
            raise HostedRefused(f"The gateway runs its maximum of {settings.HOSTED_MAX_PROCESSES} hosted processes "
                                "(HOSTED_MAX_PROCESSES); try again when a session has ended.")
        of_entry = sum(1 for child in self.children.values() if child.hosted.entry_id == hosted.entry_id)
        if of_entry >= hosted.limits.max_processes:
            raise HostedRefused(f"The hosted stdio server {hosted.entry_slug} runs its maximum of "
                                f"{hosted.limits.max_processes} processes; try again when a session has ended.")

    async def start(self, server: ServerConfig, *, session_id: str | None, on_message) -> Child:
        self.admit(server)
        child = Child(server, on_message=on_message, session_id=session_id)
        self.children[child.id] = child  # counted from now on, so concurrent starts cannot overshoot the limits
        try:
            await child.open()
        except BaseException:
            self.children.pop(child.id, None)  # a start that failed (or was cancelled) holds no place
            raise
        return child

    def exited(self, child: Child, *, crashed: bool, reason: str) -> None:
        self.children.pop(child.id, None)
        server_id = child.server.id
        self.last_exit[server_id] = {"reason": reason, "at": time.time(), "crashed": crashed,
                                     "stderr": list(child.stderr)}
        if crashed:
            self.crashes.setdefault(server_id, collections.deque(maxlen=100)).append(time.monotonic())
            log.info("%s (pid %s) ended: %s", child.url, child.pid, reason)

    async def stop_all(self) -> None:
        """Stop every child of this process (a drain before exit), each with its grace period, all at once."""
        children = list(self.children.values())
        await asyncio.gather(*(child.close(reason="The gateway process stopped") for child in children),
                             return_exceptions=True)

    def status(self, server_id: int) -> dict[str, Any]:
        """What the server page shows: running children, the last exit, and whether a crash loop holds it back."""
        window = settings.HOSTED_CRASH_LOOP_SECONDS
        now = time.monotonic()
        crashes = [t for t in self.crashes.get(server_id, ()) if now - t <= window]
        return {"processes": [c.describe() for c in self.children.values() if c.server.id == server_id],
                "last_exit": self.last_exit.get(server_id),
                "recent_crashes": len(crashes),
                "crash_loop": len(crashes) >= settings.HOSTED_CRASH_LOOP_COUNT}


registry = Registry()
