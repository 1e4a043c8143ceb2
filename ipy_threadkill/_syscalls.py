"""The system calls a thread can be found blocked in, and what each rung may do there.

One row per call, keyed by the names of _native.SYSCALLS (the numbers are the
machine's). A call without a row is one no rung interrupts or cancels.
"""
import errno
from typing import NamedTuple

from . import _native

NUMBERS = getattr(_native, "SYSCALLS", {})         # name -> number, here
_NAMES = {nr: name for name, nr in NUMBERS.items()}


def name_of(nr):
    """The name of system call number `nr`, or None if _native does not know it."""
    return _NAMES.get(nr)


class Call(NamedTuple):
    """What the ladder and the forced cancel know about one blocking call."""

    category: str           # sleep | poll | read | write | accept | connect | child-wait
                            # | signal-wait | file-lock | open: how a blocked thread
                            # is described
    result: int             # what the interrupted call returns (see below)
    false_result: str       # what that result would tell a caller that is not CPython's
    any_caller: bool        # the result misleads no caller, so any caller may get it once
    cancellable: bool       # a forced cancel may end the thread in it
    file_read: bool = False  # a read a buffered file may be making, holding its lock


# What the interrupted call returns. 0 means "timed out / end of file / no child
# changed": CPython then returns normally and the pending exception fires inside
# the caller's `with`, so locks are released. accept, connect, writes, file
# locks and opens would retry or misread a 0, so they fail instead. A sleep that
# ends early misleads no caller. Writes, file locks and opens are left to the
# gentle rungs: a forced cancel is not tried in them.
_EOF, _TIMEOUT, _NO_CHILD, _ERROR, _RETURN = ("a false end of file", "a false timeout",
                                              "a false 'no child has exited'",
                                              "a false error", "a false return")
CALLS = {
    "clock_nanosleep": Call("sleep", 0, _RETURN, True, True),
    "nanosleep": Call("sleep", 0, _RETURN, True, True),
    **dict.fromkeys(("select", "pselect6", "poll", "ppoll", "epoll_wait", "epoll_pwait",
                     "epoll_pwait2"), Call("poll", 0, _TIMEOUT, False, True)),
    **dict.fromkeys(("read", "readv", "pread64"), Call("read", 0, _EOF, False, True, True)),
    **dict.fromkeys(("recvfrom", "recvmsg"), Call("read", 0, _EOF, False, True)),
    **dict.fromkeys(("write", "writev", "pwrite64", "sendto", "sendmsg"),
                    Call("write", -errno.EPIPE, _ERROR, False, False)),
    **dict.fromkeys(("accept", "accept4"), Call("accept", -errno.ECONNABORTED, _ERROR,
                                                False, True)),
    "connect": Call("connect", -errno.ETIMEDOUT, _ERROR, False, True),
    **dict.fromkeys(("wait4", "waitid"), Call("child-wait", 0, _NO_CHILD, False, True)),
    **dict.fromkeys(("pause", "rt_sigsuspend"), Call("signal-wait", 0, _RETURN, False, True)),
    "rt_sigtimedwait": Call("signal-wait", 0, _TIMEOUT, False, True),
    # A file lock wait (fcntl.flock; fcntl.lockf and fcntl.fcntl's F_SETLKW, which
    # _blocking tells from fcntl's other commands) fails with ENOLCK, "no locks
    # available": CPython retries only EINTR and raises any other errno as
    # OSError (fcntlmodule.c, 3.9 to 3.14). ENOLCK says the lock was not taken
    # and nothing about who holds it; EWOULDBLOCK or EACCES would read as "held
    # by another", which lock libraries catch and retry.
    **dict.fromkeys(("flock", "fcntl"), Call("file-lock", -errno.ENOLCK, _ERROR,
                                             False, False)),
    # An open that waits (a FIFO without its other end, a device) fails with
    # ENXIO, "no such device or address": what open() itself says when a FIFO
    # with no reader is opened for writing with O_NONBLOCK. io.FileIO and os.open
    # retry only EINTR and raise the rest as OSError naming the file (fileio.c,
    # posixmodule.c, 3.9 to 3.14). ENOENT or EACCES would tell a caller to create
    # the file or change its mode; EAGAIN to try again.
    **dict.fromkeys(("openat", "open"), Call("open", -errno.ENXIO, _ERROR, False, False)),
}
