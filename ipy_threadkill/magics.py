"""IPython magics: ``%threads`` shows the kernel's threads, ``%killthread`` ends one.

    %load_ext ipy_threadkill
    %threads                     # live table in Jupyter, text in a terminal
    %killthread poller           # one line per thread: what happened

A magic never prints a traceback: user mistakes, and anything the kill engine
raises, become one line (a UsageError, or the line for that thread). Every
target is resolved before anything is killed, so a bad one changes nothing.
"""
import contextlib
import fnmatch
import importlib.util
import re
import sys
import time

from IPython.core.completer import SimpleCompletion, context_matcher
from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from . import _arguments, _kernel, engine
from ._text import clip, one_line
from .errors import ThreadKillError
from .snapshot import Snapshotter, stack, threads

_SORTS = ("cpu", "name", "age")
_GLOB = re.compile(r"[*?[]")
# CPU % is measured between two snapshots of the table's own (so that completion or
# %killthread in between do not shorten it), over a recent window: at least
# _CPU_MIN seconds (shorter is noise), and a fresh _CPU_FRESH when the previous
# %threads is older than _CPU_STALE (an average over minutes hides a runaway) or
# did not see every thread.
_CPU_MIN, _CPU_FRESH, _CPU_STALE = 0.05, 0.2, 5.0
# Column caps keep the text table readable in a notebook's output area.
_WIDTHS = {"name": 28, "state": 40, "where": 44, "started by": 24}


def _describe(info):
    ident = info.ident if info.ident is not None else f"native {info.native_id}"
    return f"'{one_line(info.name)}' (ident {ident})"


def _protection(info):
    """Why `info` must never be killed (or even offered for it), or None."""
    if info.kind == "foreign":
        return info.kill_plan or "it runs no Python code"
    return info.kernel_reason or _kernel.protected_reason(info.ident)


class _Refusal(Exception):
    """One bad target; the command reports every one and kills nothing."""


@magics_class
class ThreadMagics(Magics):
    """See the threads in this kernel and kill a runaway one without a restart."""

    @no_var_expand
    @magic_arguments()
    @argument("-a", "--all", action="store_true",
              help="include the threads the kernel itself needs (never killable)")
    @argument("--sort", choices=_SORTS, default="cpu",
              help="cpu: busiest first (default); name: alphabetical; age: oldest first")
    @argument("--text", action="store_true",
              help="print a text table even where the live table could be shown")
    @argument("--stack", metavar="TARGET",
              help="print the full stack of one thread (ident, native id or name)")
    @line_magic
    def threads(self, line):
        """Show every thread in this process: name, ident, state, CPU %, where
        it is, and which cell started it. In Jupyter the table is live, with Kill
        buttons; in a terminal (or with --text) it is printed once."""
        args = _parse(self.threads, line)
        with _one_line_errors():
            if args.stack is not None:
                if args.all or args.text or args.sort != "cpu":
                    raise UsageError("--stack shows one thread; it takes no other option")
                text = stack(_resolve_one(args.stack, threads(include_kernel=True)))
                print(text.rstrip("\n"))     # stack() has escaped each of its lines
            elif args.text or not self._show_table(args):
                print(_text_table(_sampler.take(), include_kernel=args.all, sort=args.sort))

    def _show_table(self, args):
        """Display the live table if this frontend can; return whether it did."""
        if not _frontend_shows_widgets(self.shell):
            return False
        try:
            from .widget import ThreadTable
            table = ThreadTable(include_kernel=args.all, sort=args.sort)
        except ImportError:
            return False
        except Exception as exc:       # a broken table must not cost the user the list
            print(f"(live table unavailable: {one_line(exc)}; showing text)")
            return False
        from IPython.display import display
        display(table)
        return True

    @no_var_expand
    @magic_arguments()
    @argument("targets", nargs="*", metavar="TARGET",
              help="ident, native id, thread name, or a name pattern such as "
                   "'worker-*' (quote a name with spaces; inside \"...\", \\xNN and "
                   "\\uNNNN stand for that character, never a wildcard)")
    @argument("--force", action="store_true",
              help="if a gentle kill fails, cancel the thread hard: its cleanup does "
                   "not run and locks it holds stay held")
    @argument("--timeout", type=float, default=2.0, metavar="SECONDS",
              help="how long each thread gets to die (default 2); then it is "
                   "reported alive, or cancelled hard with --force")
    @argument("--cell", type=int, metavar="N",
              help="every running thread that cell In[N] started (known for threads "
                   "started once ipy_threadkill was imported)")
    @argument("--all", action="store_true",
              help="every thread that is not the kernel's own")
    @line_magic
    def killthread(self, line):
        """Kill threads, keeping the kernel and its variables. Prints one line per
        thread. Every target is checked first: if any is unknown, ambiguous or
        one the kernel needs, nothing is killed.

        Examples: %killthread poller   %killthread 140230 'worker-*'
        %killthread --cell 12   %killthread --force --timeout 5 stuck"""
        args = _parse(self.killthread, line)
        try:
            args.timeout = _arguments.seconds(args.timeout, "--timeout")
        except ValueError as exc:
            raise UsageError(one_line(exc)) from None
        if args.all and (args.targets or args.cell is not None):
            raise UsageError("--all already means every thread that is not the "
                             "kernel's; give it no TARGET or --cell")
        if not (args.all or args.targets or args.cell is not None):
            raise UsageError("nothing to kill: give a TARGET, --cell N or --all "
                             "(see %threads)")
        with _one_line_errors():
            victims = _select(args, threads(include_kernel=True))
            if not victims:
                print("no threads to kill: only the kernel's own are running")
            for done, info in enumerate(victims):
                try:
                    print(_kill_line(info, args.timeout, args.force))
                except KeyboardInterrupt:
                    left = len(victims) - done - 1
                    raise UsageError(f"interrupted while killing {_describe(info)}"
                                     + (f"; {left} more left alone" if left else "")) from None


# No abbreviations: `--a` must not quietly mean `--all` on a command that kills.
ThreadMagics.threads.parser.allow_abbrev = False
ThreadMagics.killthread.parser.allow_abbrev = False


@contextlib.contextmanager
def _one_line_errors():
    """Turn whatever escapes a magic into one line: the user never sees a traceback."""
    try:
        yield
    except UsageError as exc:
        raise UsageError(one_line(exc)) from None
    except ThreadKillError as exc:
        raise UsageError(one_line(exc)) from None
    except Exception as exc:
        raise UsageError(f"{__package__} failed: {type(exc).__name__}: {one_line(exc)} "
                         "(please report this)") from None


def _parse(magic, line):
    try:
        return parse_argstring(magic, line)
    except UsageError as exc:        # argparse quotes what was typed, newlines too
        raise UsageError(one_line(exc)) from None
    except Exception as exc:         # e.g. an unclosed quote in the argument string
        raise UsageError(f"cannot read the arguments: {one_line(exc)}") from None


def _kill_line(info, timeout, force):
    """Kill one resolved thread; the line that says what happened."""
    try:
        return one_line(engine.kill(info, timeout=timeout, force=force))
    except ThreadKillError as exc:
        return one_line(exc)
    except Exception as exc:          # a bug must still not hide the other results
        return f"could not kill {_describe(info)}: {type(exc).__name__}: {one_line(exc)}"


# -- choosing threads ----------------------------------------------------------------

def _select(args, infos):
    """The threads `args` names, in the order given, each once. Raises UsageError
    naming every bad target (nothing is killed then)."""
    chosen, problems = {}, []
    if args.all:
        for info in infos:
            if _protection(info) is None:
                chosen.setdefault(info.identity, info)
    if args.cell is not None:
        try:
            for info in _started_by_cell(args.cell, infos):
                chosen.setdefault(info.identity, info)
        except _Refusal as exc:
            problems.append(str(exc))
    for target in args.targets:
        try:
            for info in _resolve(target, infos):
                chosen.setdefault(info.identity, info)
        except _Refusal as exc:
            problems.append(str(exc))
    if problems:
        raise UsageError("; ".join(problems) + " — nothing was killed")
    return list(chosen.values())


def _started_by_cell(cell, infos):
    if cell < 1:
        raise _Refusal(f"--cell takes a cell number (In[N], N >= 1), not {cell}")
    found = [i for i in infos if i.started_by_cell == cell and _protection(i) is None]
    if not found:
        unknown = any(i.started_by is None and i.kind != "foreign"
                      and _protection(i) is None for i in infos)
        raise _Refusal(f"no running thread was started by In[{cell}]" + (
            " (threads started before ipy_threadkill was loaded have no known cell; "
            "see %threads)" if unknown else ""))
    return found


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


def _target(token):
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


def _unquote(token):
    """The text a TARGET stands for (see _target)."""
    return _target(token)[0]


def _quote(name):
    """`name` as a TARGET that reads back as exactly itself through the magic's
    parsing, and never as a pattern: bare, in single quotes, or in double quotes
    with escapes. A name that starts with a dash is always quoted, so that it is
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


def _lookup(target, infos):
    """The threads TARGET names, the kernel's included, and whether it was a pattern.
    A number is an ident, else a native id; then an exact name; then a pattern."""
    text, pattern = _target(target)
    number = _number(text)
    exact = [i for i in infos if i.name == text]
    if number is not None:
        found = [i for i in infos if i.ident == number] or \
                [i for i in infos if i.native_id == number]
        named = [i for i in exact if i.identity != found[0].identity] if found else []
        if named:                      # a name that is also a number: say which
            by_ident = found[0].ident == number
            by = "ident" if by_ident else "native id"
            other = (f"native id {found[0].native_id}" if by_ident
                     else f"ident {found[0].ident}")
            raise _Refusal(f"'{one_line(text)}' is ambiguous: {_describe(found[0])} has "
                           f"{by} {number}, and {_describe(named[0])} is named so; "
                           f"give {other} for the first, ident {named[0].ident} for "
                           "the second")
        if found:
            return found, False
    if len(exact) > 1:
        listed = ", ".join(f"ident {i.ident} (started by {one_line(i.started_by or '?')})"
                           for i in exact)
        raise _Refusal(f"{len(exact)} threads are named '{one_line(text)}': {listed}; "
                       "name one by ident")
    if exact:
        return exact, False
    if pattern is not None:
        found = [i for i in infos if fnmatch.fnmatchcase(i.name, pattern)]
        if found:
            return found, True
        raise _Refusal(f"no running thread matches '{one_line(text)}'")
    if number is not None:
        raise _Refusal(f"no running thread has ident or native id {number}")
    raise _Refusal(f"no running thread is named '{one_line(text)}' (see %threads)")


def _resolve(target, infos):
    """The threads one TARGET may kill. A name must be unique; a pattern matches
    any number of threads, skipping the kernel's own rather than refusing."""
    found, pattern = _lookup(target, infos)
    if not pattern:
        reason = _protection(found[0])
        if reason is not None:
            raise _Refusal(f"refusing to kill {_describe(found[0])}: {reason}")
        return found
    killable = [i for i in found if _protection(i) is None]
    if not killable:
        raise _Refusal(f"'{one_line(_unquote(target))}' matches only threads the "
                       "kernel needs")
    return killable


def _resolve_one(target, infos):
    """One thread, any thread (the kernel's too: looking is harmless)."""
    try:
        found, pattern = _lookup(target, infos)
    except _Refusal as exc:
        raise UsageError(str(exc)) from None
    if pattern and len(found) != 1:
        raise UsageError(f"--stack shows one thread; '{one_line(_unquote(target))}' "
                         f"matches {len(found)}")
    return found[0]


def _number(text):
    try:
        return int(text, 0)
    except ValueError:
        return None


# -- the text table -------------------------------------------------------------------

class _Sampler:
    """Snapshots for the text table, with CPU % over a recent window."""

    def __init__(self):
        self.snapshots = Snapshotter()
        self.last = None

    def take(self):
        since = None if self.last is None else time.monotonic() - self.last
        if since is None or since > _CPU_STALE:
            self.snapshots.take(include_kernel=True)
            time.sleep(_CPU_FRESH)
        elif since < _CPU_MIN:
            time.sleep(_CPU_MIN - since)
        infos = self.snapshots.take(include_kernel=True)
        if any(i.cpu_percent is None for i in infos):     # threads new since the last
            time.sleep(_CPU_FRESH)
            infos = self.snapshots.take(include_kernel=True)
        self.last = time.monotonic()
        return infos


_sampler = _Sampler()


def _sort_key(sort):
    if sort == "name":
        return lambda i: (i.name.casefold(), i.ident or 0)
    if sort == "age":
        return lambda i: (-(i.age or 0.0), i.name.casefold())
    return lambda i: (-(i.cpu_percent if i.cpu_percent is not None else -1.0),
                      i.name.casefold())


def _text_table(infos, *, include_kernel=False, sort="cpu"):
    """A plain, aligned table of `infos` and a line saying what was left out."""
    kernel = [i for i in infos if _protection(i) is not None]
    shown = infos if include_kernel else [i for i in infos if _protection(i) is None]
    shown = sorted(shown, key=_sort_key(sort))
    header = ("name", "ident", "state", "CPU %", "where", "started by")
    rows = []
    for info in shown:
        marker = " [kernel]" if _protection(info) else ""
        rows.append((
            clip(info.name, _WIDTHS["name"] - len(marker)) + marker,
            str(info.ident) if info.ident is not None else f"native {info.native_id}",
            clip(info.state, _WIDTHS["state"]),
            f"{info.cpu_percent:.1f}" if info.cpu_percent is not None else "-",
            clip(info.where or "-", _WIDTHS["where"], keep_end=True),
            clip(info.started_by or "-", _WIDTHS["started by"], keep_end=True),
        ))
    widths = [max(len(row[c]) for row in [header, *rows]) for c in range(len(header))]

    def fmt(row):
        cells = [cell.rjust(w) if c in (1, 3) else cell.ljust(w)
                 for c, (cell, w) in enumerate(zip(row, widths))]
        return "  ".join(cells).rstrip()

    lines = [fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]
    if not rows:
        lines.append("(no threads but the kernel's own)")
    if not include_kernel and kernel:
        lines.append(f"{len(kernel)} kernel thread{'s' if len(kernel) != 1 else ''} "
                     "hidden (%threads --all shows them; they are never killed)")
    return "\n".join(lines)


# -- the frontend ----------------------------------------------------------------------

def _frontend_shows_widgets(shell):
    """Whether `shell` is a Jupyter kernel's, whose frontend can render ipywidgets."""
    zmqshell = sys.modules.get("ipykernel.zmqshell")
    if zmqshell is None or not isinstance(shell, zmqshell.ZMQInteractiveShell):
        return False
    # An ipyparallel engine is a kernel too, but its %px client is often a
    # terminal, which fails on widget messages and loses all later output.
    if type(getattr(shell, "kernel", None)).__module__.startswith("ipyparallel"):
        return False
    try:
        return importlib.util.find_spec("ipywidgets") is not None
    except (ImportError, ValueError):     # e.g. an import blocked in sys.modules
        return False


# -- tab completion ---------------------------------------------------------------------

_OPTIONS = {"killthread": ("--force", "--timeout", "--cell", "--all"),
            "threads": ("--all", "--sort", "--text", "--stack")}
_LINE = re.compile(r"\s*%(killthread|threads)\s")


def _current_word(text):
    """The argument being typed at the end of `text`, and the one before it,
    split as IPython splits arguments: a quote opens an argument only at its
    start, and closes it."""
    words = re.findall(r"""'[^']*'?|"[^"]*"?|[^ \t\r\n'"][^ \t\r\n]*""", text)
    if not words or text[-1:].isspace():
        return "", words[-1] if words else ""
    return words[-1], words[-2] if len(words) > 1 else ""


@context_matcher()
def complete_thread_magics(context):
    """Tab completion for %killthread (live threads and options) and %threads."""
    line = context.text_until_cursor
    match = _LINE.match(line)
    if match is None:
        return {"completions": [], "suppress": False}
    magic = match.group(1)
    word, previous = _current_word(line[match.end():])
    if previous == "--sort":
        candidates = _SORTS
    elif previous == "--timeout":
        candidates = ()
    elif previous == "--cell":
        candidates = sorted({str(i.started_by_cell) for i in _live(False)
                             if i.started_by_cell is not None}, key=int)
    elif magic == "threads" and previous != "--stack":
        candidates = [c for c in _OPTIONS[magic] if c.startswith(word)]
    else:
        infos = _live(include_kernel=magic == "threads")
        # Options first; a name that starts with a dash comes after, quoted.
        candidates = [c for c in _OPTIONS[magic] if word and c.startswith(word)
                      and magic == "killthread"]
        candidates += [str(i.ident) for i in infos
                       if i.ident is not None and str(i.ident).startswith(word)]
        # A name is offered for what the fragment means, not how it is written:
        # "a" offers the thread a'b "c as "a'b \x22c".
        typed = _typed(word)
        candidates += sorted({_quote(i.name) for i in infos if i.name.startswith(typed)})
    completions = [SimpleCompletion(c, type="thread") for c in candidates]
    return {"completions": completions, "matched_fragment": word,
            "suppress": bool(completions), "ordered": True}


def _typed(word):
    """The start of a name that the fragment `word` (maybe an unclosed quote)
    stands for."""
    if word[:1] in ("'", '"'):
        closed = len(word) >= 2 and word[-1] == word[0]
        word = word if closed else word + word[0]
    return _unquote(word)


def _live(include_kernel):
    """The threads to offer; none if the snapshot fails (a completion must never
    raise into the user's editor)."""
    try:
        infos = threads(include_kernel=include_kernel)
    except Exception:
        return []
    return [i for i in infos if include_kernel or _protection(i) is None]


# -- extension entry points --------------------------------------------------------------

def load_ipython_extension(shell):
    """Register %threads and %killthread and their tab completion (idempotent)."""
    shell.register_magics(ThreadMagics)
    matchers = shell.Completer.custom_matchers
    if complete_thread_magics not in matchers:
        matchers.append(complete_thread_magics)


def unload_ipython_extension(shell):
    """Stop everything the package runs and give back what it installed."""
    widget = sys.modules.get(f"{__package__}.widget")
    if widget is not None:
        widget.close_all()
    engine.release()
    matchers = shell.Completer.custom_matchers
    while complete_thread_magics in matchers:
        matchers.remove(complete_thread_magics)
    line_magics = shell.magics_manager.magics["line"]
    for name in ("threads", "killthread"):
        if isinstance(getattr(line_magics.get(name), "__self__", None), ThreadMagics):
            del line_magics[name]
    shell.magics_manager.registry.pop(ThreadMagics.__name__, None)
