"""A thread's Python frames, read from another thread: the stack, the objects
its code can name (where its locks, sockets and child processes are found),
whose code each frame runs (the standard library's, this package's, the
user's) and which instruction it is at (a call, a lock being acquired).

Every reader tolerates a frame that changes under it: the thread keeps running.
"""
import dis
import linecache
import os
import re
import sys
import sysconfig
import threading


def other_threads():
    """{ident: innermost frame} of every thread but the calling one.

    sys._current_frames() also holds the caller's own frame: kept in a local,
    that is a cycle (the dict, the frame, its locals, the dict) which keeps every
    thread's frames, and what their locals hold, alive until a collection, so a
    killed thread's sockets and files would outlive the kill."""
    frames = sys._current_frames()
    del frames[threading.get_ident()]
    return frames


def every_thread():
    """{ident: innermost frame} of every thread, the calling one included at its
    innermost frame outside this package: what other_threads() avoids, the
    caller's own frames here, would make the same cycle."""
    frames = sys._current_frames()
    me = threading.get_ident()
    frame = frames.pop(me)
    while frame is not None and is_ours(frame.f_code.co_filename):
        frame = frame.f_back
    if frame is not None:
        frames[me] = frame
    return frames


def frames_of(frame):
    """The frames of a stack, innermost first."""
    while frame is not None:
        yield frame
        frame = frame.f_back


def locals_of(frame):
    """A copy of `frame`'s locals ({} if they cannot be read)."""
    try:
        return dict(frame.f_locals)
    except Exception:           # a frame of a thread that is changing under us
        return {}


def named_values(frame, *, all_of_self=False):
    """(name, value) of what `frame`'s code can name: its locals, the globals its
    code names, and the attributes of its `self` that its code names (a module's
    other globals say nothing about a thread). `all_of_self` takes every
    attribute of `self`, as "self.<name>": what a method may hold without naming."""
    scope = locals_of(frame)
    names = set(frame.f_code.co_names)
    pairs = list(scope.items())
    pairs += [(k, v) for k, v in list(frame.f_globals.items()) if k in names]
    me = scope.get("self")
    if me is not None:
        try:
            attributes = list(vars(me).items())
        except TypeError:                   # no __dict__
            attributes = []
        pairs += [(f"self.{k}", v) for k, v in attributes if all_of_self or k in names]
    return pairs


def values(frame, *, all_of_self=False):
    """The values of named_values(frame)."""
    return [value for _, value in named_values(frame, all_of_self=all_of_self)]


def _dir_prefix(path):
    return os.path.normcase(os.path.abspath(path)).rstrip(os.sep) + os.sep


_paths = sysconfig.get_paths()
# The standard library lives under stdlib; third-party packages may live under it
# too (site-packages of an interpreter used without a venv): those are user code.
_STDLIB_PREFIXES = tuple({_dir_prefix(_paths[k]) for k in ("stdlib", "platstdlib")}
                         | {_dir_prefix(os.path.dirname(threading.__file__))})
_SITE_PREFIXES = tuple({_dir_prefix(_paths[k]) for k in ("purelib", "platlib")})
_PACKAGE_PREFIX = _dir_prefix(os.path.dirname(__file__))


def is_stdlib(filename):
    """Whether code from `filename` is the standard library's (frozen modules too)."""
    known = _stdlib_files.get(filename)
    if known is None:
        known = filename.startswith("<frozen ") or (
            filename.startswith(_STDLIB_PREFIXES) and not filename.startswith(_SITE_PREFIXES))
        if len(_stdlib_files) > 4096:          # file names are few; bound it anyway
            _stdlib_files.clear()
        _stdlib_files[filename] = known
    return known


_stdlib_files = {}


def is_ours(filename):
    """Whether code from `filename` is this package's."""
    return filename.startswith(_PACKAGE_PREFIX)


def user_frame(frame):
    """The innermost frame outside the standard library and this package (else
    the innermost)."""
    for f in frames_of(frame):
        name = f.f_code.co_filename
        if not is_stdlib(name) and not is_ours(name):
            return f
    return frame


_instructions = {}


def current_instruction(frame):
    """(the instruction `frame` is executing, the ones before it on its line)."""
    code = frame.f_code
    known = _instructions.get(code)
    if known is None:
        table = list(dis.get_instructions(code))
        known = table, {ins.offset: i for i, ins in enumerate(table)}
        if len(_instructions) > 512:        # a bounded cache of hot code objects
            _instructions.clear()
        _instructions[code] = known
    table, index = known
    i = index.get(frame.f_lasti)
    if i is None:
        return None, []
    start = i
    while start > 0 and not table[start].starts_line:
        start -= 1
    return table[i], table[start:i]


def calling(frame):
    """Whether `frame` is inside a call of a C function (it is the innermost one)."""
    ins, _ = current_instruction(frame)
    return ins is not None and (ins.opname.startswith("CALL") or ins.opname == "PRECALL")


# -- cleanup code ------------------------------------------------------------------------

_EXIT_NAMES = ("__exit__", "__aexit__")
_finally_lines = {}


def in_cleanup(stack):
    """Whether a thread with frames `stack` is running cleanup code: a `finally`
    body (on the normal path or while an exception unwinds) or a context
    manager's __exit__, anywhere on its stack. A kill must let such code finish:
    cut short, it leaves locks held and files half written."""
    for frame in stack:
        code = frame.f_code
        if code.co_name in _EXIT_NAMES or _calling_exit(frame):
            return True
        lines = _finally_lines.get(code)
        if lines is None:
            lines = _finally_lines_of(code)
            if len(_finally_lines) > 512:       # a bounded cache of hot code objects
                _finally_lines.clear()
            _finally_lines[code] = lines
        if lines and frame.f_lineno in lines:
            return True
    return False


_WITH_EXCEPT_START = dis.opmap["WITH_EXCEPT_START"]


def _calling_exit(frame):
    """Whether `frame` is calling its `with` statement's __exit__ as an exception
    unwinds it. An __exit__ written in C (a file's, which closes it and may
    release the GIL to flush and close) has no frame of its own to tell."""
    code = frame.f_code.co_code
    at = frame.f_lasti
    return 0 <= at < len(code) and code[at] == _WITH_EXCEPT_START


# The instruction a handler starts with: from 3.11, every handler pushes the
# exception it handles (PUSH_EXC_INFO); before, a `try` names its handler with
# SETUP_FINALLY (an `except` is compiled as one too).
_PUSH_EXC_INFO = dis.opmap.get("PUSH_EXC_INFO")
_SETUP_FINALLY = dis.opmap.get("SETUP_FINALLY")


def _finally_lines_of(code):
    """The source lines of `code`'s `finally` bodies. Both copies the compiler
    makes of a body (the one run on the normal path, the one run while an
    exception unwinds) carry its lines, so a frame at one of them runs a
    `finally`. The unwinding copy is found as a handler that re-raises before it
    ever ends handling (POP_EXCEPT): an `except` handler ends handling, a
    `with` statement's handler starts with WITH_EXCEPT_START and is left to
    the __exit__ check. A body holding a try/except of its own is not found:
    it is then not protected, as before."""
    table = list(dis.get_instructions(code))
    lines, line = [], None
    for ins in table:          # before 3.11 only a line's first instruction says it
        at = getattr(ins, "positions", None)
        line = at.lineno if at is not None else (ins.starts_line or line)
        lines.append(line)
    if _PUSH_EXC_INFO is not None:
        handlers = [i + 1 for i, ins in enumerate(table) if ins.opcode == _PUSH_EXC_INFO]
    else:
        where = {ins.offset: i for i, ins in enumerate(table)}
        handlers = [where[ins.argval] for ins in table
                    if ins.opcode == _SETUP_FINALLY and ins.argval in where]
    found = set()
    for start in handlers:
        body, names = set(), []
        for i in range(start, len(table)):
            name = table[i].opname
            if name == "WITH_EXCEPT_START" or name == "POP_EXCEPT":
                body = None
                break
            if name == "RERAISE":
                break
            names.append(name)
            if lines[i] is not None:
                body.add(lines[i])
        if body and not _unbinds_a_name(names):
            found |= body
    return frozenset(found)


def _unbinds_a_name(names):
    """Whether a handler's instructions are the compiler's own `finally` of an
    `except E as name:` body (name = None; del name): that body is the except
    clause, not cleanup."""
    return len(names) == 3 and names[0] == "LOAD_CONST" and names[1].startswith("STORE_") \
        and names[2].startswith("DELETE_")


_DOTTED_NAME = re.compile(r"[A-Za-z_][\w.]{0,79}")


def callee(frame):
    """What the frame's current call calls, as its source spells it
    ("hashlib.pbkdf2_hmac"), or None where that cannot be told: before 3.11
    (no instruction positions), a callee that is not a dotted name, or source
    that is not there or no longer matches."""
    if not calling(frame):
        return None
    ins, _ = current_instruction(frame)
    at = getattr(ins, "positions", None)
    if at is None or None in (at.lineno, at.col_offset):
        return None
    # Column offsets count UTF-8 bytes; the call's text runs to its last ")".
    line = linecache.getline(frame.f_code.co_filename, at.lineno).encode()
    end = at.end_col_offset if at.end_lineno == at.lineno else len(line)
    text = line[at.col_offset:end].decode("utf-8", "replace")
    opened = _matching_parenthesis(text) if text.rstrip().endswith(")") else text.find("(")
    if opened <= 0:
        return None
    name = text[:opened].strip()
    return name if _DOTTED_NAME.fullmatch(name) else None


def _matching_parenthesis(text):
    """Where the "(" that the last ")" of `text` closes is, or -1."""
    depth = 0
    for i in range(len(text.rstrip()) - 1, -1, -1):
        depth += {")": 1, "(": -1}.get(text[i], 0)
        if depth == 0:
            return i
    return -1


def acquiring(frame):
    """Whether `frame` is inside a `with lock:` entry or a `….acquire(…)` call."""
    ins, before = current_instruction(frame)
    if ins is None:
        return False
    if ins.opname in ("SETUP_WITH", "BEFORE_WITH"):
        return True
    if ins.opname.startswith("CALL") or ins.opname == "PRECALL":
        # 3.14+: a `with` entry is a plain call of what LOAD_SPECIAL found.
        if before and before[-1].opname == "LOAD_SPECIAL":
            return before[-1].argrepr == "__enter__"
        return any(b.opname in ("LOAD_METHOD", "LOAD_ATTR") and b.argval == "acquire"
                   for b in before)
    return False
