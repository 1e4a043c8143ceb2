"""What a kill or a task stop did: the rung that ended it and the report's one line.

kill() returns a KillReport, stop_task() a TaskReport; `str(report)` is the line
a user sees, written by one formatter for both.
"""
import enum
from dataclasses import dataclass, field
from typing import Optional, Tuple


class Rung(str, enum.Enum):
    """What ended a thread."""

    EXCEPTION = "exception"
    WAKEUP = "wake-up"
    SYSCALL = "interrupted system call"
    CHILD = "child process stopped"
    FORCED = "forced cancel"

    def __str__(self):
        return self.value


@dataclass(frozen=True)
class KillReport:
    """What a kill did. `str(report)` is the one line a user sees."""

    name: str
    ident: int
    native_id: Optional[int]
    died: bool
    elapsed: float                      # seconds from the request to the thread gone
    rung: Optional[Rung]                # what ended it (None if it did not die)
    cleanup_ran: bool                   # its finally blocks / __exit__ ran (checked:
                                        # no lock it held is still held)
    blocked_in: str                     # what it was doing when asked to die
    children_stopped: Tuple[str, ...] = ()
    notes: Tuple[str, ...] = ()
    held_locks: Tuple[str, ...] = field(default=())

    # (what failed, what succeeded): the verbs of the line.
    _VERBS = ("could not kill", "killed")

    def _subject(self):
        return f"'{self.name}' (ident {self.ident})"

    def _outcome(self):
        """Clauses after the cleanup's, before the children's."""
        return ()

    def _cleanup(self):
        if self.cleanup_ran:
            return "cleanup ran"
        # A forced cancel runs none of it; a gentle kill let it run, and it left
        # something held (the notes say what).
        return "cleanup did NOT run" if self.rung is Rung.FORCED else "cleanup did NOT finish"

    def __str__(self):
        failed, succeeded = self._VERBS
        who = self._subject()
        if not self.died:
            return f"{failed} {who}: {self.blocked_in}"
        how = f"{self.rung}" if self.rung is Rung.EXCEPTION else f"{self.rung}: {self.blocked_in}"
        clauses = [f"{succeeded} {who} in {format_seconds(self.elapsed)} ({how}), "
                   + self._cleanup()]
        clauses += self._outcome()
        if self.children_stopped:
            clauses.append(_stopped(self.children_stopped))
        clauses += self.notes
        return "; ".join(clauses)


@dataclass(frozen=True)
class TaskReport(KillReport):
    """A KillReport for one task: `died` means the task ended, and the thread
    is still alive when `thread_alive` is True."""

    task: str = ""
    thread_alive: bool = True

    _VERBS = ("could not stop", "stopped")

    def _subject(self):
        return f"{self.task} in {super()._subject()}"

    def _outcome(self):
        return ("the thread lives on" if self.thread_alive else "the thread ended too",)


SHOWN_PROCESSES = 6      # a build tool's tree can hold dozens: the line stays a line


def _stopped(processes):
    """The report's clause for the processes a kill stopped, the first few named."""
    if len(processes) == 1:
        return f"stopped child {processes[0]}"
    named = ", ".join(processes[:SHOWN_PROCESSES])
    more = len(processes) - SHOWN_PROCESSES
    rest = f" and {more} more" if more > 0 else ""
    return f"stopped {len(processes)} processes: {named}{rest}"


def format_seconds(seconds):
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"
