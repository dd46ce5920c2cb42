"""The chaos run's fault driver: one random fault every ``fault_every_s`` (seeded), each counted.

At the venues, each in the terms of the venue's family (``venues.py`` maps each fault to the fake
Binance's and the fake OKX's): 5XX on placements (executed or not) and reads, a placement executed with
its answer lost (-1007, OKX 50004), rate limiting (429), slow answers, cut connections (REST and the user
data stream's WebSocket), a final refusal of one leg (-2010, OKX 51008), the book moving away (an IOC
leg expires), clock jumps, maintenance (20-30 s), and duplicated or reordered user data events.

To the processes, through the pids the platform's supervisor printed (it restarts what dies; the
driver never does): SIGKILL of a worker's process group, of one pool process, of beat, of the user
data stream, of beat and the user data stream together; a warm stop (SIGTERM) of a worker; a worker
frozen (SIGSTOP of its group or of one pool process) past the Celery visibility timeout.

To the servers: Redis killed and restarted empty on the same socket a few seconds later; PostgreSQL
restarted in immediate mode.

``FaultPointThawer`` resumes the processes that froze themselves at a fault point (the workers run with
``ARBX_FAULT_POINTS``: between the placement claim and the send), after the visibility timeout.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from decimal import Decimal

import psutil

from tests.chaos.harness import ChaosSettings
from tests.chaos.processes import SupervisedPlatform
from tests.chaos.servers import ChaosServers
from tests.chaos.venues import MARKETS, ChaosVenue

D = Decimal
Action = Callable[[], str | None]


class Timeline:
    """Every fault with its wall-clock time, to read beside the platform's log (``faults.log``)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def note(self, what: str) -> None:
        now = time.time()
        with self._lock:
            self.lines.append(f"{time.strftime('%H:%M:%S', time.localtime(now))}.{int(now % 1 * 1000):03d} {what}")


class FaultDriver(threading.Thread):
    """Injects one random fault every ``fault_every_s`` until stopped; counts what it did."""

    def __init__(
        self,
        rng: random.Random,
        venues: list[ChaosVenue],
        platform: SupervisedPlatform,
        servers: ChaosServers,
        settings: ChaosSettings,
    ) -> None:
        super().__init__(name="chaos-faults", daemon=True)
        self.rng = rng
        self.venues = venues
        self.platform = platform
        self.servers = servers
        self.settings = settings
        self.stopping = threading.Event()
        self.done: Counter[str] = Counter()
        self.kills: Counter[str] = Counter()
        self.errors: list[str] = []
        self.by_family: defaultdict[str, Counter[str]] = defaultdict(Counter)  # venue fault -> family -> count
        self.outages: list[str] = []  # how long each server fault kept the server away
        self.timeline = Timeline()
        self._timers: list[threading.Thread] = []
        self._lock = threading.Lock()
        # What is under way: a server fault at a time; no second clock jump or maintenance at a venue.
        self._server_fault = threading.Lock()
        self._jumped: set[str] = set()
        self._maintenance: set[str] = set()
        self.frozen_groups: set[int] = set()  # this driver's freezes, which the thawer leaves alone
        self.frozen_pids: set[int] = set()
        self.actions: list[tuple[int, Action]] = [
            (6, self.placement_5xx),
            (4, self.read_5xx),
            (6, self.placement_answer_lost),
            (4, self.rate_limited),
            (5, self.slow_answers),
            (4, self.drop_placement),
            (3, self.drop_reads),
            (2, self.drop_user_stream),
            (2, self.reject_one_leg),
            (2, self.book_moves_away),
            (3, self.duplicate_events),
            (3, self.reorder_events),
            (1, self.clock_jump),
            (1, self.maintenance),
            (4, self.kill_worker),
            (3, self.kill_pool_process),
            (1, self.stop_worker),
            (1, self.kill_beat),
            (1, self.kill_userstream),
            (1, self.kill_beat_and_userstream),
            (2, self.freeze_worker),
            (1, self.redis_kill),
            (1, self.postgres_restart),
        ]
        # Each of these is played at least once, early, every other fault: a short run has them all.
        self.deck: list[Action] = [self.redis_kill, self.postgres_restart, self.freeze_worker, self.clock_jump,
                                   self.maintenance, self.duplicate_events, self.reorder_events,
                                   self.kill_beat_and_userstream]  # fmt: skip
        self.rng.shuffle(self.deck)
        # The freeze first: later, the fault points' own freezes often leave no worker to freeze.
        self.deck.remove(self.freeze_worker)
        self.deck.append(self.freeze_worker)

    def run(self) -> None:
        weights = [weight for weight, _ in self.actions]
        picks = 0
        while not self.stopping.wait(self.rng.uniform(*self.settings.fault_every_s)):
            picks += 1
            from_deck = bool(self.deck) and picks % 2 == 1
            if from_deck:
                action = self.deck.pop()
            else:
                (_, action), = self.rng.choices(self.actions, weights=weights)  # fmt: skip
            try:
                name = action()
            except Exception as exc:
                self.errors.append(f"{action.__name__}: {type(exc).__name__}: {exc}")
                continue
            if name:
                self.done[name] += 1
                self.timeline.note(name)
            elif from_deck:
                self.deck.insert(0, action)  # not possible now (a server fault under way...): later

    def finish(self) -> None:
        """Stop injecting, wait for the faults under way to end (thaws, restarts), clear the venues' faults,
        put their books and clocks back."""
        self.stopping.set()
        self.join(60)
        for timer in list(self._timers):
            timer.join(180)
        for venue in self.venues:
            venue.faults_clear()
            venue.clock_set(0)
            for symbol in MARKETS:
                venue.book_set(symbol)

    def _later(self, delay: float, call: Callable[[], None]) -> None:
        def run() -> None:
            time.sleep(delay)
            try:
                call()
            except Exception as exc:
                self.errors.append(f"deferred {getattr(call, '__name__', call)}: {type(exc).__name__}: {exc}")

        thread = threading.Thread(target=run, daemon=True)
        with self._lock:
            self._timers.append(thread)
        thread.start()

    def _venue(self) -> ChaosVenue:
        return self.rng.choice(self.venues)

    # --- at the venues (each venue's family says how: ``venues.py``) ---

    def _at_venue(self, fault: Callable[[ChaosVenue], str | None]) -> str | None:
        venue = self._venue()
        name = fault(venue)
        if name:
            self.by_family[name][venue.family] += 1
        return name

    def placement_5xx(self) -> str | None:
        return self._at_venue(lambda venue: venue.placement_5xx(self.rng))

    def read_5xx(self) -> str | None:
        return self._at_venue(lambda venue: venue.read_5xx(self.rng))

    def placement_answer_lost(self) -> str | None:
        return self._at_venue(lambda venue: venue.placement_answer_lost(self.rng))

    def rate_limited(self) -> str | None:
        return self._at_venue(lambda venue: venue.rate_limited(self.rng))

    def slow_answers(self) -> str | None:
        return self._at_venue(lambda venue: venue.slow_answers(self.rng))

    def drop_placement(self) -> str | None:
        return self._at_venue(lambda venue: venue.drop_placement(self.rng))

    def drop_reads(self) -> str | None:
        return self._at_venue(lambda venue: venue.drop_reads(self.rng))

    def drop_user_stream(self) -> str | None:
        return self._at_venue(lambda venue: venue.drop_user_stream(self.rng))

    def reject_one_leg(self) -> str | None:
        return self._at_venue(lambda venue: venue.reject_placement(self.rng))

    def duplicate_events(self) -> str | None:
        return self._at_venue(lambda venue: venue.duplicate_events(self.rng))

    def reorder_events(self) -> str | None:
        return self._at_venue(lambda venue: venue.reorder_events(self.rng))

    def book_moves_away(self) -> str | None:
        return self._at_venue(self._book_moves_away)

    def _book_moves_away(self, venue: ChaosVenue) -> str:
        symbol = self.rng.choice(list(MARKETS))
        away = MARKETS[symbol][0] * D("0.01")
        if venue.label == "A":
            venue.book_set(symbol, shift_asks=away)  # buys at the quoted ask expire unfilled
        else:
            venue.book_set(symbol, shift_bids=-away)  # sells at the quoted bid expire unfilled
        self._later(self.rng.uniform(0.5, 2.0), lambda: venue.book_set(symbol))
        return "book moved away (IOC leg expires)"

    def clock_jump(self) -> str | None:
        return self._at_venue(self._clock_jump)

    def _clock_jump(self, venue: ChaosVenue) -> str | None:
        if venue.code in self._jumped:
            return None
        low, high = venue.clock_jump_ms
        offset = self.rng.choice((-1, 1)) * self.rng.randint(low, high)
        self._jumped.add(venue.code)
        self.timeline.note(f"{venue.code} clock {offset:+d} ms")
        venue.clock_set(offset)

        def restore() -> None:
            self.timeline.note(f"{venue.code} clock restored")
            venue.clock_set(0)
            self._jumped.discard(venue.code)

        self._later(self.rng.uniform(*self.settings.clock_jump_s), restore)
        return f"venue clock jump ({'+' if offset > 0 else '-'}{low // 1000}..{high // 1000} s, restored later)"

    def maintenance(self) -> str | None:
        return self._at_venue(self._maintenance_start)

    def _maintenance_start(self, venue: ChaosVenue) -> str | None:
        if venue.code in self._maintenance:
            return None
        duration = round(self.rng.uniform(*self.settings.maintenance_s), 1)
        self._maintenance.add(venue.code)
        self.timeline.note(f"{venue.code} in maintenance for {duration} s")
        name = venue.maintenance(duration)
        self._later(duration, lambda: self._maintenance.discard(venue.code))
        return name

    # --- processes (the supervisor restarts them) ---

    def _running(self, names: list[str]) -> tuple[str, int] | None:
        """A process among ``names`` that is up with nothing of it frozen, and its pid. A worker whose pool
        process froze itself at a fault point is left alone: that freeze is to end with a resume past the
        visibility timeout (a kill between the claim and the send is what the random kills already do)."""
        frozen = self.frozen_groups | {_group(process.pid) for process in self.platform.stopped_processes()}
        up = [(name, pid) for name in names if (pid := self.platform.pid(name)) is not None and pid not in frozen]
        return self.rng.choice(up) if up else None

    def _kill_group(self, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)

    def kill_worker(self) -> str | None:
        found = self._running(self.platform.workers)
        if found is None:
            return None
        self._kill_group(found[1])
        self.kills["worker (process group)"] += 1
        return "SIGKILL of a worker (its process group)"

    def kill_pool_process(self) -> str | None:
        found = self._running(self.platform.workers)
        if found is None:
            return None
        children = [pid for pid in self.platform.pool_children(found[0]) if pid not in self.frozen_pids]
        if not children:
            return None
        try:
            os.kill(self.rng.choice(children), signal.SIGKILL)
        except ProcessLookupError:
            return None
        self.kills["worker pool process"] += 1
        return "SIGKILL of a worker's pool process"

    def stop_worker(self) -> str | None:
        found = self._running(self.platform.workers)
        if found is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            os.kill(found[1], signal.SIGTERM)
        self.kills["worker warm stop (SIGTERM)"] += 1
        return "SIGTERM of a worker (warm shutdown)"

    def kill_beat(self) -> str | None:
        found = self._running(["beat"])
        if found is None:
            return None
        self._kill_group(found[1])
        self.kills["beat"] += 1
        return "SIGKILL of beat"

    def kill_userstream(self) -> str | None:
        found = self._running(["userstream"])
        if found is None:
            return None
        self._kill_group(found[1])
        self.kills["userstream"] += 1
        return "SIGKILL of the user data stream"

    def kill_beat_and_userstream(self) -> str | None:
        beat, stream = self.platform.pid("beat"), self.platform.pid("userstream")
        if beat is None or stream is None:
            return None
        self._kill_group(beat)
        self._kill_group(stream)
        self.kills["beat + userstream together"] += 1
        return "SIGKILL of beat and the user data stream together"

    def freeze_worker(self) -> str | None:
        found = self._running(self.platform.workers)
        if found is None:
            return None
        name, pid = found
        thaw_in = self.settings.visibility_timeout_s + self.rng.uniform(*self.settings.thaw_after_s)
        whole = self.rng.random() < 0.5
        if whole:
            self.frozen_groups.add(pid)
            os.killpg(pid, signal.SIGSTOP)
        else:
            children = self.platform.pool_children(name)
            if not children:
                return None
            child = self.rng.choice(children)
            self.frozen_pids.add(child)
            os.kill(child, signal.SIGSTOP)

        def thaw() -> None:
            self.timeline.note(f"SIGCONT to the frozen {name} ({'group' if whole else 'pool process'})")
            with contextlib.suppress(ProcessLookupError):
                if whole:
                    os.killpg(pid, signal.SIGCONT)
                else:
                    os.kill(child, signal.SIGCONT)
            self.frozen_groups.discard(pid)
            if not whole:
                self.frozen_pids.discard(child)

        self._later(thaw_in, thaw)
        self.kills["worker frozen (group)" if whole else "worker pool process frozen"] += 1
        what = "its process group" if whole else "one pool process"
        return f"worker frozen ({what}) past the visibility timeout, then SIGCONT"

    # --- the servers ---

    def redis_kill(self) -> str | None:
        if not self._server_fault.acquire(blocking=False):
            return None
        down_s = self.rng.uniform(*self.settings.redis_down_s)
        killed = time.monotonic()
        try:
            self.servers.redis_kill()
        except BaseException:
            self._server_fault.release()
            raise

        def restart() -> None:
            try:
                self.servers.redis_start()
                self.outages.append(f"redis down {time.monotonic() - killed:.1f} s")
                self.timeline.note("Redis restarted (empty)")
            finally:
                self._server_fault.release()

        self._later(down_s, restart)
        return "Redis SIGKILLed, restarted empty a few seconds later"

    def postgres_restart(self) -> str | None:
        if not self._server_fault.acquire(blocking=False):
            return None

        def restart() -> None:
            try:
                took = self.servers.postgres_restart_immediate()
                self.outages.append(f"postgresql restart (immediate) {took:.1f} s")
                self.timeline.note(f"PostgreSQL back after {took:.1f} s")
            finally:
                self._server_fault.release()

        self._later(0, restart)
        return "PostgreSQL restarted in immediate mode"


def _group(pid: int) -> int:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return -1


class FaultPointThawer(threading.Thread):
    """Resumes each process that froze itself at a fault point once the visibility timeout (plus 5-15 s)
    has passed since it was first seen stopped. Runs until the platform stops.

    A process is followed from the moment it is seen among the supervisor's descendants, so that a pool
    process whose worker died while it was frozen (an orphan now) is still found and resumed.
    """

    def __init__(self, rng: random.Random, platform: SupervisedPlatform, driver: FaultDriver, settings: ChaosSettings):
        super().__init__(name="chaos-thawer", daemon=True)
        self.rng = rng
        self.platform = platform
        self.driver = driver
        self.settings = settings
        self.stopping = threading.Event()
        self.known: dict[int, psutil.Process] = {}
        self.resume_at: dict[int, float] = {}
        self.frozen = 0
        self.resumed = 0
        self.orphans = 0  # resumed after their worker had died
        self.gone = 0  # died while frozen (a kill of its worker)
        self.last_resumed: float | None = None

    def _driver_froze(self, process: psutil.Process) -> bool:
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            return process.pid in self.driver.frozen_pids or os.getpgid(process.pid) in self.driver.frozen_groups
        return False

    def run(self) -> None:
        while not self.stopping.wait(0.5):
            family = self.platform.descendants()
            for process in family:
                self.known.setdefault(process.pid, process)
            parents = {process.pid for process in family} | {self.platform.process.pid if self.platform.process else 0}
            now = time.monotonic()
            for pid, process in list(self.known.items()):
                try:
                    stopped = process.is_running() and process.status() == psutil.STATUS_STOPPED
                except psutil.Error:
                    stopped = False
                if not stopped:
                    if pid in self.resume_at:
                        self.gone += 1
                        self.driver.timeline.note(f"process {pid}, frozen at a fault point, is gone")
                        del self.resume_at[pid]
                    if not process.is_running():
                        del self.known[pid]
                    continue
                if self._driver_froze(process):
                    continue
                if pid not in self.resume_at:
                    self.frozen += 1
                    self.driver.timeline.note(f"process {pid} frozen at a fault point")
                    wait = self.settings.visibility_timeout_s + self.rng.uniform(*self.settings.thaw_after_s)
                    self.resume_at[pid] = now + wait
                elif now >= self.resume_at[pid]:
                    with contextlib.suppress(psutil.Error):
                        if process.ppid() not in parents:
                            self.orphans += 1
                        process.send_signal(signal.SIGCONT)
                        self.driver.timeline.note(f"SIGCONT to process {pid} (frozen at a fault point)")
                        self.resumed += 1
                        self.last_resumed = now
                    del self.resume_at[pid]
