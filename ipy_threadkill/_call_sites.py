"""Which blocked system calls the interrupt rung may end, and who made each.

A rewritten result means what the rung intends only to a caller that treats it
so: CPython's own built-ins. The caller of a blocked call is read from the
thread's stack once per call site; the ladder judges each look at its victim
with judge(), the snapshot each thread's plan, so both say the same.
"""
import dataclasses
import os

from . import _native_stack, _syscalls


def interrupts(blocking):
    """Whether the interrupt rung is the one for `blocking` (a child wait with
    known children is ended by stopping them instead)."""
    return blocking.syscall is not None and blocking.syscall_name in _syscalls.CALLS \
        and not (blocking.kind == "child" and blocking.children)


def judge(blocking, sites=None, cannot_interrupt=None, maps=None):
    """`blocking` as the ladder acts on it: a call the interrupt rung is for but
    must not (or cannot) touch is no gentle case, and says why. The ladder judges
    each look at its victim with it, the snapshot each thread's plan.

    `sites`: the CallSites of the calls seen so far; `cannot_interrupt`: why no
    call can be interrupted here, if so; `maps`: a _native_stack.SharedMaps
    created after `blocking` was seen, to read its caller with."""
    if blocking.gentle and interrupts(blocking):
        why = cannot_interrupt or (sites if sites is not None else CallSites()).refusal(
            blocking, maps)
        if why:
            return dataclasses.replace(blocking, gentle=False, rung=None, reason=why)
    return blocking


class CallSites:
    """The blocked system calls seen: who made each, and which were cut short."""

    def __init__(self):
        self.callers = {}             # blocked call site -> the object that made the call
        self.rewritten = set()        # call sites whose result was rewritten

    def refusal(self, blocking, maps=None):
        """Why the blocked call's result must not be rewritten, or None.

        A rewritten result means what the rung intends only to a caller known
        to treat it so: CPython's own built-ins, where the pending exception
        fires as the built-in returns. A foreign C loop would take a false end
        of file for data, or retry and be rewritten again and again. A sleep
        that ends early misleads no caller, once; the second time at the same
        place it is a loop that will not end."""
        sc, name = blocking.syscall, blocking.syscall_name
        site = (sc.nr, sc.args, sc.sp, sc.pc)
        call = _syscalls.CALLS[name]
        if call.any_caller and site not in self.rewritten:
            return None                 # whoever called it: no stack read needed
        if site not in self.callers:
            if len(self.callers) > 4096:            # a long-lived snapshotter's: bound it
                self.callers.clear()
            self.callers[site] = _native_stack.syscall_caller(sc.sp, maps)
        caller = self.callers[site]
        if _native_stack.is_interpreter_code(caller):
            return None
        where = os.path.basename(caller) if caller else "code that cannot be identified"
        if site in self.rewritten:
            return (f"it called {name} again from {where} after its last one was cut "
                    "short: that C code does not end when its calls do")
        return (f"it is in {name} called from {where}, not CPython's own code: a "
                f"rewritten result ({call.false_result}) could be misread there")
