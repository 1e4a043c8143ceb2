"""IPython magics: ``%threads`` shows the kernel's threads, ``%killthread`` ends one,
``%%timelimit`` stops a cell that runs too long, ``%threads_autostop`` stops what a
re-run cell's earlier runs left running.

    %load_ext ipy_threadkill
    %threads                     # live table in Jupyter, text in a terminal
    %killthread poller           # one line per thread: what happened
    %%timelimit 30               # (a cell's first line) stop the cell after 30 s
    %threads_autostop on         # a re-run cell first stops its earlier runs' threads

A magic never prints a traceback: user mistakes, and anything the kill engine
raises, become one line (a UsageError, or the line for that thread). Every
target is resolved before anything is killed, so a bad one changes nothing.
"""
import ast
import contextlib
import importlib.util
import itertools
import re
import sys
import time

from IPython.core.completer import SimpleCompletion, context_matcher
from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from . import _arguments, _hooks, _views, autostop
from ._text import one_line
from ._views import Refusal
from .errors import ThreadKillError, TimeLimitExceeded
from .snapshot import Snapshotter, stack, threads
from .timelimit import time_limit

# CPU % is measured between two snapshots of the table's own (so that completion or
# %killthread in between do not shorten it), over a recent window: at least
# _CPU_MIN seconds (shorter is noise), and a fresh _CPU_FRESH when the previous
# %threads is older than _CPU_STALE (an average over minutes hides a runaway) or
# did not see every thread.
_CPU_MIN, _CPU_FRESH, _CPU_STALE = 0.05, 0.2, 5.0


def cell_number(text):
    """--cell's value: a cell number N (In[N]), or 'previous'."""
    return text if text == "previous" else int(text)


@magics_class
class ThreadMagics(Magics):
    """See the threads in this kernel and kill a runaway one without a restart."""

    @no_var_expand
    @magic_arguments()
    @argument("-a", "--all", action="store_true",
              help="include the threads the kernel itself needs (never killable)")
    @argument("--sort", choices=_views.SORTS, default="cpu",
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
                text = stack(_views.select_one(args.stack, threads(include_kernel=True)))
                print(text.rstrip("\n"))     # stack() has escaped each of its lines
            elif args.text or not self._show_table(args):
                shown, hidden = _views.listing(_sampler.take(), include_kernel=args.all,
                                               sort=args.sort, live=False)
                print(_views.text_table(shown, hidden))

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
    @argument("--cell", type=cell_number, metavar="N",
              help="every running thread that cell In[N] started (known for threads "
                   "started once ipy_threadkill was imported); 'previous': those "
                   "the earlier runs of the cell running now started")
    @argument("--all", action="store_true",
              help="every thread that is not the kernel's own")
    @argument("--cancel", action="store_true",
              help="withdraw the kill left pending in a thread inside a long C call "
                   "(the thread runs on)")
    @line_magic
    def killthread(self, line):
        """Kill threads, keeping the kernel and its variables. Prints one line per
        thread. Every target is checked first: if any is unknown, ambiguous or
        one the kernel needs, nothing is killed.

        A thread inside a C call that releases the GIL (hashing, compression)
        cannot be reached until the call returns: its kill stays pending, and
        the thread ends as the call returns; --cancel withdraws it.

        Examples: %killthread poller   %killthread 140230 'worker-*'
        %killthread --cell 12   %killthread --force --timeout 5 stuck
        %killthread --cancel hasher"""
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
        if args.cancel and args.force:
            raise UsageError("--cancel withdraws a pending kill; it cannot be --force")
        with _one_line_errors():
            cell, runs = args.cell, None
            if cell == "previous":
                cell, runs = None, autostop.earlier_runs(self.shell)
                if runs is None:
                    raise UsageError("--cell previous needs a notebook cell: this one "
                                     "has no cell id (its frontend sends none)")
            victims = _views.select(threads(include_kernel=True), args.targets,
                                    cell=cell, runs=runs, every=args.all)
            if not victims:
                print("no threads to kill: only the kernel's own are running")
            if args.cancel:
                for info in victims:
                    print(_views.cancel(info))
                return
            for done, info in enumerate(victims):
                try:
                    print(_views.kill(info, timeout=args.timeout, force=args.force).text)
                except KeyboardInterrupt:
                    left = len(victims) - done - 1
                    raise UsageError(f"interrupted while killing {_views.describe(info)}"
                                     + (f"; {left} more left alone" if left else "")) from None

    @no_var_expand
    @magic_arguments()
    @argument("switch", nargs="?", choices=("on", "off"),
              help="on: a cell run again first stops the threads its earlier runs "
                   "started that still run; off: leave them (the default). Without "
                   "it, say which it is")
    @line_magic
    def threads_autostop(self, line):
        """Re-run hygiene for notebooks: with autostop on, running a cell again
        first kills the threads its earlier runs started and that still run,
        with one line each. Cells are told apart by the id the frontend gives
        them (JupyterLab, Notebook 7); a cell without one is left alone.

        Examples: %threads_autostop on   %threads_autostop off"""
        args = _parse(self.threads_autostop, line)
        if args.switch is not None:
            autostop.set_autostop(self.shell, args.switch == "on")
        print(f"threads autostop is {'on' if autostop.autostop_enabled(self.shell) else 'off'}")

    @no_var_expand
    @magic_arguments()
    @argument("seconds", type=float, metavar="SECONDS",
              help="how long the cell may run")
    @argument("--threads", action="store_true",
              help="when the cell is stopped, also kill the threads it started")
    @cell_magic
    def timelimit(self, line, cell):
        """Run the cell, and stop it if it is still running after SECONDS: its
        `finally` blocks run, one line says what it was doing, and the kernel and
        every variable the cell set so far stay. The value of a last expression
        is shown as a cell's is. With --threads, the threads the cell started
        are killed too when it is stopped (one line each).

        Examples: %%timelimit 30   %%timelimit 30 --threads"""
        args = _parse(self.timelimit, line)
        try:
            limit = time_limit(args.seconds)
        except ValueError as exc:
            raise UsageError(one_line(exc).replace("time limit", "SECONDS", 1)) from None
        run, filename = _cell_code(self.shell, cell)
        try:
            with limit:
                return run()
        except TimeLimitExceeded as exc:
            print(f"cell stopped: {one_line(exc)}")
            if args.threads:
                with _one_line_errors():
                    for info in threads(include_kernel=True):
                        if info.alive and (info.started_by or "").startswith(f"{filename}:") \
                                and _views.protection(info) is None:
                            print(_views.kill(info).text)
            return None


# No abbreviations: `--a` must not quietly mean `--all` on a command that kills.
ThreadMagics.threads.parser.allow_abbrev = False
ThreadMagics.killthread.parser.allow_abbrev = False
ThreadMagics.timelimit.parser.allow_abbrev = False
ThreadMagics.threads_autostop.parser.allow_abbrev = False


_cell_runs = itertools.count(1)


def _cell_code(shell, cell):
    """(a function that runs `cell` as IPython would (its own transformations, in
    the user's namespace) and returns the value of a last expression, the file
    name its code runs under: one per run, so that what it started is known)."""
    tree = shell.transform_ast(shell.compile.ast_parse(shell.transform_cell(cell)))
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    filename = f"<timelimit cell {next(_cell_runs)}>"
    body = shell.compile(tree, filename, "exec")
    value = shell.compile(last, filename, "eval") if last is not None else None

    def run():
        with shell.builtin_trap:
            exec(body, shell.user_global_ns, shell.user_ns)
            return eval(value, shell.user_global_ns, shell.user_ns) if value else None
    return run, filename


@contextlib.contextmanager
def _one_line_errors():
    """Turn whatever escapes a magic into one line: the user never sees a traceback."""
    try:
        yield
    except (UsageError, Refusal, ThreadKillError) as exc:
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


# -- the text table's snapshots -------------------------------------------------------

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

_OPTIONS = {"killthread": ("--force", "--timeout", "--cell", "--all", "--cancel"),
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
        candidates = _views.SORTS
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
        candidates += sorted({_views.quote(i.name) for i in infos
                              if i.name.startswith(typed)})
    completions = [SimpleCompletion(c, type="thread") for c in candidates]
    return {"completions": completions, "matched_fragment": word,
            "suppress": bool(completions), "ordered": True}


def _typed(word):
    """The start of a name that the fragment `word` (maybe an unclosed quote)
    stands for."""
    if word[:1] in ("'", '"'):
        closed = len(word) >= 2 and word[-1] == word[0]
        word = word if closed else word + word[0]
    return _views.unquote(word)


def _live(include_kernel):
    """The threads to offer; none if the snapshot fails (a completion must never
    raise into the user's editor)."""
    try:
        infos = threads(include_kernel=include_kernel)
    except Exception:
        return []
    return [i for i in infos if include_kernel or _views.protection(i) is None]


# -- extension entry points --------------------------------------------------------------

def load_ipython_extension(shell):
    """Register %threads, %killthread, %%timelimit and the tab completion
    (idempotent)."""
    _hooks.install()
    autostop.track(shell)
    shell.register_magics(ThreadMagics)
    matchers = shell.Completer.custom_matchers
    if complete_thread_magics not in matchers:
        matchers.append(complete_thread_magics)


def unload_ipython_extension(shell):
    """Stop everything the package runs and give back what it installed."""
    widget = sys.modules.get(f"{__package__}.widget")
    if widget is not None:
        widget.close_all()
    autostop.untrack(shell)
    _hooks.uninstall()
    matchers = shell.Completer.custom_matchers
    while complete_thread_magics in matchers:
        matchers.remove(complete_thread_magics)
    for kind, names in (("line", ("threads", "killthread", "threads_autostop")),
                        ("cell", ("timelimit",))):
        magics = shell.magics_manager.magics[kind]
        for name in names:
            if isinstance(getattr(magics.get(name), "__self__", None), ThreadMagics):
                del magics[name]
    shell.magics_manager.registry.pop(ThreadMagics.__name__, None)
