"""The threads that must never be killed, and why.

The kernel's own threads (its channels, heartbeat, output capture, history,
debugger) keep the notebook alive; killing one would cost the user exactly the
state they came here to save. They are matched by what they are (class, target
function, identity), never by name alone: a user may call a thread "Heartbeat".

Checked against ipykernel 7.4 and 6.29 started by jupyter_client: MainThread,
Control, Shell channel and subshell-<id> (ipykernel.*Thread classes), IOPub and
the two output watchers (targets in ipykernel.iostream), Heartbeat, the parent
poller (ipykernel.parentpoller, default name), IPythonHistorySavingThread
(IPython.core.history) and, outside Python, libzmq's ZMQbg/IO/<n> and
ZMQbg/Reaper threads.
"""
import threading
import weakref

from . import _compat

# Packages whose threads serve the kernel, not the user's code.
_KERNEL_PACKAGES = ("ipykernel", "IPython", "jupyter_client", "zmq", "debugpy",
                    "_pydevd", "pydevd", "ipyparallel", "ipy_threadkill")

_own = weakref.WeakSet()


def mark_own(thread):
    """Mark `thread` as one of this package's own (e.g. the widget's refresher)."""
    _own.add(thread)
    return thread


def _module_of(obj):
    return getattr(obj, "__module__", None) or ""


def _from_kernel_package(module):
    return module.split(".", 1)[0] in _KERNEL_PACKAGES


def protected_reason(ident, thread=None):
    """Why the thread `ident` (its Thread object if any) must not be killed, or None."""
    if ident == threading.get_ident() and ident != threading.main_thread().ident:
        return "it is the thread asking for the kill"
    return kernel_reason(ident, thread)


def kernel_reason(ident, thread=None):
    """Why the kernel (or this package) needs thread `ident`, or None for a user's."""
    if ident == threading.main_thread().ident:
        return "it is the main thread, which runs your cells (use Interrupt for it)"
    if thread is None:
        return None
    if thread in _own:
        return "it is ipy_threadkill's own thread"
    if _from_kernel_package(_module_of(type(thread))):
        return f"the kernel needs it ({type(thread).__name__})"
    target = getattr(thread, "_target", None)
    if target is not None and _from_kernel_package(_module_of(target)):
        return f"the kernel needs it (runs {_module_of(target)}.{getattr(target, '__qualname__', '?')})"
    if getattr(thread, "is_pydev_daemon_thread", False):
        return "it belongs to the debugger"
    if thread in _compat.output_capture_threads():
        return "the kernel needs it (it captures output)"
    if thread.name == "TornadoBackground" and _module_of(target).startswith("tornado"):
        # ipykernel's trio runner starts tornado's loop under this name.
        return "the kernel needs it (runs its message loop under trio)"
    return None


def foreign_reason(comm):
    """Why a thread that runs no Python code belongs to the kernel, from its OS
    name (/proc/self/task/<tid>/comm), or None."""
    if comm.startswith("ZMQbg/"):
        return "the kernel needs it (libzmq's messaging thread)"
    return None
