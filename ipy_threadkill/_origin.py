"""Who started a thread: the code that called Thread.start(), kept for the snapshot.

A wrapper around threading.Thread.start (and _thread.start_new_thread, for bare
threads) records the caller's file name and line: about a microsecond per start,
nothing at any other time (no trace or profile hook). A bare thread gets one
frame of ours at the bottom of its stack, which holds its origin while it runs.
IPython compiles each cell under a file name of its own; which In[n] a file name
is gets looked up only when a snapshot asks (CellNames), in IPython's compiler.

Installed when ipy_threadkill is imported: a thread started before that has no
recorded origin, and the runaway thread a user asks about was most often started
before their first look, so waiting for the first threads() would miss it.
"""
import sys
import threading
import _thread
from typing import NamedTuple, Optional

from . import _compat, _frames

_ATTRIBUTE = "_ipy_threadkill_origin"
_bare = {}              # ident -> (filename, line) of running bare threads
_originals = {}         # what install() replaced: restored by uninstall()


def _caller():
    """(filename, line) of the innermost caller outside the standard library and
    this package: ThreadPoolExecutor.submit() or Timer.start() name the user's line."""
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if not _frames.is_stdlib(name) and not _frames.is_ours(name):
            return name, frame.f_lineno
        frame = frame.f_back
    return None


def install():
    """Record the origin of every thread started from now on (idempotent)."""
    if _originals:
        return
    start = threading.Thread.start
    start_new_thread = _thread.start_new_thread

    def recording_start(self):
        setattr(self, _ATTRIBUTE, _caller())
        return start(self)

    def recording_start_new_thread(function, args, *kwargs):
        # The checks start_new_thread would make, made here, where the caller sees them.
        if not callable(function):
            raise TypeError("first arg must be callable")
        if not isinstance(args, tuple):
            raise TypeError("2nd arg must be a tuple")
        if kwargs and not isinstance(kwargs[0], dict):
            raise TypeError("optional 3rd arg must be a dictionary")
        return start_new_thread(_run_bare, (_caller(), function, args, *kwargs))

    recording_start.__wrapped__ = start
    recording_start.__doc__ = start.__doc__
    recording_start_new_thread.__wrapped__ = start_new_thread
    recording_start_new_thread.__doc__ = start_new_thread.__doc__
    _originals.update(start=start, start_new_thread=start_new_thread)
    threading.Thread.start = recording_start
    _thread.start_new_thread = recording_start_new_thread


def uninstall():
    """Put the original Thread.start back (when nobody wrapped it after us)."""
    if not _originals:
        return
    if getattr(threading.Thread.start, "__wrapped__", None) is _originals["start"]:
        threading.Thread.start = _originals["start"]
    if getattr(_thread.start_new_thread, "__wrapped__", None) is _originals["start_new_thread"]:
        _thread.start_new_thread = _originals["start_new_thread"]
    _originals.clear()


def _run_bare(origin, function, args, kwargs=None):
    """A bare thread's first frame: the thread files its own origin, so that an
    ident recycled by a later thread never inherits it."""
    ident = _thread.get_ident()
    _bare[ident] = origin
    try:
        return function(*args, **(kwargs or {}))
    finally:
        _bare.pop(ident, None)


class Origin(NamedTuple):
    text: str                   # 'In[12]' or 'feeds.py:10'
    cell: Optional[int]         # 12 for a cell


def recorded(ident, thread):
    """(filename, line) that started the thread, or None if unknown."""
    if thread is not None:
        return getattr(thread, _ATTRIBUTE, None)
    return _bare.get(ident)


class CellNames:
    """Maps IPython's cell file names to In[n], read when a snapshot is taken.

    IPython's compiler keeps {file name: execution count} (_compat.cell_numbers). ipykernel names a cell's file after a hash of its code, so
    a cell run twice with the same code maps to its latest run."""

    def __init__(self):
        self.names = self._filename_map()

    @staticmethod
    def _filename_map():
        ipython = sys.modules.get("IPython")
        get = getattr(ipython, "get_ipython", None)
        return _compat.cell_numbers(get() if get is not None else None)

    def cell(self, filename):
        """The execution count of the cell compiled as `filename`, or None."""
        number = self.names.get(filename)
        return number if isinstance(number, int) else None

    def location(self, filename, line, function=None):
        """'In[12]:3 in poll' or 'feeds.py:88 in poll' (function optional)."""
        number = self.cell(filename)
        where = f"In[{number}]:{line}" if number is not None else \
            f"{_short(filename)}:{line}"
        return f"{where} in {function}" if function else where

    def origin(self, ident, thread):
        """The Origin of a thread, or None: our own record, else the parent
        message ipykernel 6 attaches to threads started by a cell."""
        place = recorded(ident, thread)
        if place is not None:
            filename, line = place
            number = self.cell(filename)
            if number is not None:
                return Origin(f"In[{number}]", number)
            return Origin(f"{_short(filename)}:{line}", None)
        return _kernel6_origin(ident)


def _short(filename):
    """A file's name as a user recognises it: the last path component."""
    if filename.startswith("<"):
        return filename
    return filename.replace("\\", "/").rsplit("/", 1)[-1]


def _kernel6_origin(ident):
    """ipykernel 6.29 maps threads started by a cell to that cell's request
    header; 7.x dropped it."""
    header = _compat.kernel6_parent_headers().get(ident)
    if not isinstance(header, dict) or header.get("msg_type") != "execute_request":
        return None
    date = header.get("date")
    when = date.strftime("%H:%M:%S") if hasattr(date, "strftime") else str(date or "?")
    return Origin(f"a cell run at {when}", None)
