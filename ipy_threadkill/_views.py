"""What the views show of threads: the one place %threads, %killthread and the
live table take it from.

Which threads a typed TARGET names, whether and why a thread is protected, the
text of each column, the order of the rows, the plain-text table, and the one
line that says how a kill went. The magic and the widget only lay these out,
so the two cannot drift apart. Nothing here imports IPython or ipywidgets.
"""
import fnmatch
import re
import threading
from dataclasses import dataclass
from typing import NamedTuple

from . import _identity, _kernel, engine
from ._text import clip, one_line
from .errors import AmbiguousTarget, KillPending, KillTimeout, NoSuchThread, ThreadKillError

SORTS = ("cpu", "name", "age")


class Refusal(Exception):
    """A request that names no thread, or one that must not be killed; the
    message is one line that says which and why."""


# -- protection ------------------------------------------------------------------------

def protection(info):
    """Why thread `info` must never be killed (nor offered for it), or None: the
    kernel needs it, it is the thread asking, or it runs no Python code."""
    if info.kernel_reason is not None:
        return info.kernel_reason
    if info.kind == "foreign":
        return info.kill_plan
    return _kernel.protected_reason(info.ident)


def unkillable(info):
    """Why a Kill offered for the row of `info` would be refused, or None: the
    thread is protected, or it had finished when the row was taken."""
    return protection(info) or (None if info.killable else info.kill_plan)


def describe(info):
    """The thread as every message names it: 'name' (ident N), or (ident native N)
    for a thread that runs no Python code."""
    return one_line(_identity.describe(info))


def refusal_text(info, reason):
    return f"refusing to kill {describe(info)}: {one_line(reason)}"


# -- choosing threads from what was typed ------------------------------------------------

_GLOB = re.compile(r"[*?[]")
# In double quotes, \\ and \xNN, \uNNNN, \UNNNNNNNN stand for one character (any
# other backslash is itself): completion writes any name that way, a quote or a
# control character included. IPython splits arguments without escapes, so a
# quoted token can never hold its own quote character. A character written as an
# escape is literal: "worker-\x2a" names the thread called worker-* and is never
# a pattern, so a completed name cannot match other threads if its own is gone.
_ESCAPE = re.compile(r"\\(\\|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})")
_SPLIT_AT = " \t\r\n"          # where IPython's argument splitting cuts a line


def _unescape(match):
    code = match.group(1)
    if code == "\\":
        return "\\"
    try:
        return chr(int(code[1:], 16))
    except ValueError:                 # past U+10FFFF: not an escape
        return match.group(0)


def target(token):
    """A TARGET as IPython split it (quotes kept): the text it stands for, and
    the fnmatch pattern it is too, or None. Quotes hold a name with spaces
    together; in "..." escapes are decoded, and the characters they give are
    never wildcards."""
    if not (len(token) >= 2 and token[0] == token[-1] and token[0] in "'\""):
        return token, (token if _GLOB.search(token) else None)
    inner = token[1:-1]
    if token[0] == "'":
        return inner, (inner if _GLOB.search(inner) else None)
    text, pattern, wild, at = [], [], False, 0
    for match in _ESCAPE.finditer(inner):
        typed = inner[at:match.start()]
        char = _unescape(match)
        wild = wild or bool(_GLOB.search(typed))
        text += [typed, char]
        pattern += [typed, f"[{char}]" if char in "*?[" else char]
        at = match.end()
    typed = inner[at:]
    wild = wild or bool(_GLOB.search(typed))
    text.append(typed)
    pattern.append(typed)
    return "".join(text), ("".join(pattern) if wild else None)


def unquote(token):
    """The text a TARGET stands for (see target)."""
    return target(token)[0]


def quote(name):
    """`name` as a TARGET that reads back as exactly itself through target(),
    and never as a pattern: bare, in single quotes, or in double quotes with
    escapes. A name that starts with a dash is always quoted, so that it is
    never an option. The result is printable: a completion menu shows it safely."""
    printable = name.isprintable()
    wild = bool(_GLOB.search(name))
    if (name and printable and not wild and name[0] not in "'\"-"
            and not any(ch in _SPLIT_AT for ch in name)):
        return name
    if printable and not wild and "'" not in name:
        return f"'{name}'"
    out = []
    for ch in name:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"' or ch in "*?[" or not ch.isprintable():
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else
                       f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _lookup(token, infos):
    """The threads TARGET `token` names, the kernel's included, and whether it
    was a pattern. An ident, native id or exact name is chosen by the rules
    kill() uses (_identity.choose); failing that, a pattern matches names."""
    text, pattern = target(token)
    try:
        return [_identity.choose(text, infos)], False
    except AmbiguousTarget as exc:
        raise Refusal(one_line(exc)) from None
    except NoSuchThread as exc:
        if pattern is None:
            raise Refusal(one_line(exc)) from None
    found = [i for i in infos if fnmatch.fnmatchcase(i.name, pattern)]
    if not found:
        raise Refusal(f"no running thread matches '{one_line(text)}'")
    return found, True


def _killable(token, infos):
    """The threads one TARGET may kill. A name must be unique and not protected;
    a pattern matches any number of threads, skipping protected ones rather than
    refusing."""
    found, pattern = _lookup(token, infos)
    if not pattern:
        reason = protection(found[0])
        if reason is not None:
            raise Refusal(refusal_text(found[0], reason))
        return found
    killable = [i for i in found if protection(i) is None]
    if not killable:
        raise Refusal(f"'{one_line(unquote(token))}' matches only threads the kernel needs")
    return killable


def _started_by_cell(cell, infos):
    if cell < 1:
        raise Refusal(f"--cell takes a cell number (In[N], N >= 1), not {cell}")
    found = [i for i in infos if i.started_by_cell == cell and protection(i) is None]
    if not found:
        unknown = any(i.started_by is None and i.kind != "foreign"
                      and protection(i) is None for i in infos)
        raise Refusal(f"no running thread was started by In[{cell}]" + (
            " (threads started before ipy_threadkill was loaded have no known cell; "
            "see %threads)" if unknown else ""))
    return found


def _started_by_runs(runs, infos):
    if not runs:
        raise Refusal("this cell has not run before in this kernel")
    found = [i for i in infos if i.started_by_cell in runs and protection(i) is None]
    if not found:
        raise Refusal("no running thread was started by an earlier run of this cell ("
                      + ", ".join(f"In[{n}]" for n in runs) + ")")
    return found


def select(infos, targets=(), *, cell=None, runs=None, every=False):
    """The threads to kill, in the order asked, each once: those the TARGET
    tokens name, those cell In[`cell`] started, those the cells In[N] for N in
    `runs` started (the earlier runs of one cell), and with `every` all that
    are not protected. Raises Refusal naming every bad request (then nothing
    may be killed)."""
    chosen, problems = {}, []
    requests = [lambda: [i for i in infos if protection(i) is None]] if every else []
    if cell is not None:
        requests.append(lambda: _started_by_cell(cell, infos))
    if runs is not None:
        requests.append(lambda: _started_by_runs(runs, infos))
    requests += [lambda token=token: _killable(token, infos) for token in targets]
    for request in requests:
        try:
            for info in request():
                chosen.setdefault(info.identity, info)
        except Refusal as exc:
            problems.append(str(exc))
    if problems:
        raise Refusal("; ".join(problems) + " — nothing was killed")
    return list(chosen.values())


def select_one(token, infos):
    """The one thread TARGET `token` names, the kernel's too (looking is
    harmless). Raises Refusal."""
    found, pattern = _lookup(token, infos)
    if pattern and len(found) != 1:
        raise Refusal(f"--stack shows one thread; '{one_line(unquote(token))}' "
                      f"matches {len(found)}")
    return found[0]


# -- rows --------------------------------------------------------------------------------

def listing(infos, *, include_kernel, sort, live):
    """The rows a view lists, in its order, and how many of the kernel's own
    threads it left out. Unless `include_kernel`, the threads the kernel needs are
    hidden; so is the main thread, unless the view is `live`: a live table shows
    what the main thread does while a cell runs, where a printed table would only
    ever show it printing."""
    main = threading.main_thread().ident
    shown = [i for i in infos if include_kernel or i.kernel_reason is None
             or (live and i.ident == main)]
    return sorted(shown, key=sort_key(sort)), len(infos) - len(shown)


def cpu_bucket(percent):
    """CPU % in whole percents: what the live table shows and every view sorts by,
    so that jitter neither sends a message nor reorders rows."""
    return None if percent is None else int(round(percent))


def sort_key(sort):
    """The key that orders rows for `sort` ('cpu': busiest first; 'name';
    'age': oldest first). A thread with no CPU % yet (first seen by this
    snapshot) or no known age sorts last, in every view; ties go by name."""
    def key(info):
        name = (info.name.casefold(), info.ident or 0, info.native_id or 0)
        if sort == "cpu":
            cpu = cpu_bucket(info.cpu_percent)
            return (cpu is None, -(cpu or 0), *name)
        if sort == "age":
            return (info.age is None, -(info.age or 0.0), *name)
        return name
    return key


# Age is shown in steps that grow with it: a finer age would make every row of the
# live table send a message every second; these change a row 7 times in its first hour.
_AGE_STEPS = ((60, "< 1 min"), (120, "> 1 min"), (300, "> 2 min"), (600, "> 5 min"),
              (1200, "> 10 min"), (1800, "> 20 min"), (3600, "> 30 min"))


def age_text(seconds):
    if seconds is None:
        return ""
    for limit, text in _AGE_STEPS:
        if seconds < limit:
            return text
    if seconds < 86400:
        return f"> {int(seconds // 3600)} h"
    return f"> {int(seconds // 86400)} d"


class Cells(NamedTuple):
    """One row's text, column by column: each one line, "" where unknown."""

    name: str
    ident: str
    state: str
    cpu: str
    where: str
    started_by: str
    age: str


COLUMNS = ("name", "ident", "state", "CPU %", "where", "started by", "age")


def cells(info):
    """The text of each column for thread `info`: the same in every view. A
    thread that runs no Python code has no ident: its column says "native N"."""
    return Cells(
        name=one_line(info.name),
        ident=str(info.ident) if info.ident is not None else f"native {info.native_id}",
        state=one_line(info.state),
        cpu=f"{info.cpu_percent:.1f}" if info.cpu_percent is not None else "",
        where=one_line(info.where or ""),
        started_by=one_line(info.started_by or ""),
        age=age_text(info.age))


def kernel_marker(info):
    """What marks a row of the kernel's own threads in text: never killable."""
    return " [kernel]" if info.kernel_reason is not None else ""


# Column caps keep the text table readable in a notebook's output area; a path
# keeps its end (the file and line), the rest their start.
_WIDTHS = {"name": 28, "state": 40, "where": 44, "started by": 24}
_KEEP_END = ("where", "started by")
_RIGHT = ("ident", "CPU %")
_PLACEHOLDER = ("CPU %", "where", "started by", "age")    # "-" says: not known


def text_table(infos, hidden=0):
    """`infos` (in order) as a plain, aligned table; a line says how many of the
    kernel's threads were `hidden`."""
    rows = []
    for info in infos:
        marker = kernel_marker(info)
        row = []
        for column, text in zip(COLUMNS, cells(info)):
            width = _WIDTHS.get(column)
            if column == "name":
                width -= len(marker)
            if column in _PLACEHOLDER:
                text = text or "-"
            if width is not None:
                text = clip(text, width, keep_end=column in _KEEP_END)
            row.append(text + marker if column == "name" else text)
        rows.append(row)
    widths = [max(len(row[c]) for row in [COLUMNS, *rows]) for c in range(len(COLUMNS))]

    def fmt(row):
        return "  ".join(cell.rjust(w) if column in _RIGHT else cell.ljust(w)
                         for column, cell, w in zip(COLUMNS, row, widths)).rstrip()

    lines = [fmt(COLUMNS), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]
    if not rows:
        lines.append("(no threads but the kernel's own)")
    if hidden:
        lines.append(f"{hidden} kernel thread{'s' if hidden != 1 else ''} "
                     "hidden (%threads --all shows them; they are never killed)")
    return "\n".join(lines)


# -- kill outcomes -----------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    """How one kill went, for a view: its one line, and what the view may offer."""

    text: str
    died: bool = False
    timed_out: bool = False
    force_offered: bool = False      # the gentle kill gave up; a forced one would be tried
    pending: bool = False            # it stays queued until the thread's C call returns


def cancel_hint(info):
    """How a user of the views withdraws a pending kill of thread `info` (by
    ident: a name may be shared)."""
    return f"%killthread --cancel {info.ident} withdraws it"


def cancel(info):
    """Withdraw the kill pending in thread `info`; the line that says what happened."""
    try:
        withdrawn = engine.cancel_kill(info)
    except ThreadKillError as exc:            # gone, recycled
        return one_line(exc)
    if withdrawn:
        return f"withdrew the kill pending in {describe(info)}: it runs on"
    return f"no kill is pending in {describe(info)}; nothing changed"


def kill(info, *, force=False, **options):
    """Kill thread `info` (engine.kill, with `options`); never raises: every
    error, a bug included, becomes the Outcome's line."""
    try:
        report = engine.kill(info, force=force, **options)
    except KillPending as exc:
        return Outcome(f"{one_line(exc.situation)}; {cancel_hint(info)}", timed_out=True,
                       pending=True, force_offered=exc.force_refused is None)
    except KillTimeout as exc:
        text, refused = one_line(exc), exc.force_refused
        if not force and refused is not None and str(refused) not in str(exc):
            text += f"; a forced kill would be refused: {one_line(refused)}"
        return Outcome(text, timed_out=True, force_offered=not force and refused is None)
    except ThreadKillError as exc:            # refused: gone, recycled, protected, ...
        return Outcome(one_line(exc))
    except Exception as exc:                  # a bug must still not hide the other results
        return Outcome(f"could not kill {describe(info)}: {type(exc).__name__}: "
                       f"{one_line(exc)}")
    return Outcome(one_line(report), died=report.died)
