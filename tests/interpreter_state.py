"""A picture of everything process-wide ipy_threadkill may install, taken inside
a child interpreter, for comparing before a load and after an unload.

Imports nothing of the package: the first picture is taken before it is loaded.
"""
import _thread
import signal
import sys
import threading


def _caught_mask():
    """The kernel's view: which signals have a handler (SigCgt)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("SigCgt:"):
                return line.split()[1]
    return None


def picture():
    """Thread.start, start_new_thread, threading.excepthook, sys.unraisablehook,
    every signal's disposition, the sys.monitoring tool ids and the threads
    running, as text."""
    # glibc installs its own handler (SIGSETXID) with a process's first thread:
    # let that happen before anything is compared.
    first = threading.Thread(target=lambda: None)
    first.start()
    first.join()
    return {
        "Thread.start": repr(threading.Thread.start),
        "start_new_thread": repr(_thread.start_new_thread),
        "excepthook": repr(threading.excepthook),
        "unraisablehook": repr(sys.unraisablehook),
        "signals": {s.name: repr(signal.getsignal(s)) for s in signal.valid_signals()
                    if isinstance(s, signal.Signals)},
        "SigCgt": _caught_mask(),
        "tools": [sys.monitoring.get_tool(i) for i in range(6)]
                 if hasattr(sys, "monitoring") else None,
        "threads": sorted(t.name for t in threading.enumerate()),
    }
