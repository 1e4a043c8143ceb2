"""%threads and %killthread in a real InteractiveShell.

Tests in this process only look and refuse: the threads here are sentinels that
must survive every one of them. Every test that kills runs its shell in a child
interpreter with a deadline (run_json).
"""
import re
import subprocess
import sys
import textwrap
import threading

import pytest
from IPython.core.completer import provisionalcompleter
from IPython.core.error import UsageError
from IPython.testing.globalipapp import get_ipython
from IPython.utils.io import capture_output

from ipy_threadkill import _kernel
from tests import python_env, run_json


@pytest.fixture(scope="module")
def ip():
    shell = get_ipython()
    shell.run_line_magic("load_ext", "ipy_threadkill")
    yield shell
    shell.run_line_magic("unload_ext", "ipy_threadkill")


@pytest.fixture(scope="module")
def sentinels():
    """Threads that no test in this process may kill: name -> Thread."""
    stop = threading.Event()
    names = ("sentinel-a", "sentinel-b", "twin", "twin", "my worker")
    started = [threading.Thread(target=stop.wait, name=n, daemon=True) for n in names]
    own = _kernel.mark_own(threading.Thread(target=stop.wait, name="own-refresher",
                                            daemon=True))
    for thread in started + [own]:
        thread.start()
    yield {t.name: t for t in started + [own]}
    stop.set()
    for thread in started + [own]:
        thread.join(10)


def _alive(sentinels):
    return all(t.is_alive() for t in sentinels.values())


def _magic(ip, name, line):
    """Run a line magic; return (stdout, stderr) as the user would see them."""
    with capture_output() as out:
        ip.run_line_magic(name, line)
    return out.stdout, out.stderr


# -- help and parsing ------------------------------------------------------------------

@pytest.mark.parametrize("name, options", [
    ("killthread", ("--force", "--timeout", "--cell", "--all", "--cancel", "TARGET")),
    ("threads", ("--all", "--sort", "--text", "--stack")),
])
def test_help_comes_from_magic_arguments(ip, name, options):
    doc = ip.find_line_magic(name).__doc__
    assert doc.startswith(f"::\n\n  %{name}")
    for option in options:
        assert option in doc
    with capture_output() as out:
        ip.run_cell(f"%{name}?")
    assert f"%{name}" in out.stdout and "--all" in out.stdout


BAD_KILLS = [
    "",                                   # nothing named
    "--force",                            # still nothing named
    "nosuch",                             # unknown name
    "123456789",                          # unknown ident
    "0x7fffffff",                         # unknown, in hex
    "MainThread",                         # the main thread runs the cells
    "own-refresher",                      # the package's own thread
    "twin",                               # ambiguous
    "sentinel-a nosuch",                  # one bad target spoils the command
    "'nomatch-*'",                        # a pattern that matches nothing
    "'own-*'",                            # a pattern that matches only protected threads
    "--all sentinel-a",                   # conflicting options
    "--all --cell 1",
    "--cell 0",
    "--cell 99999",                       # no thread started by that cell
    "--cell x",
    "--timeout 0 sentinel-a",
    "--timeout -1 sentinel-a",
    "--timeout nan sentinel-a",
    "--timeout inf sentinel-a",
    "--timeout",
    "--a",                                # no abbreviations on a command that kills
    "--al sentinel-a",
    "-h",
    "--bogus sentinel-a",
    "'unclosed",
    '"sentinel-a',
    " \t",
    "' \n '",                             # argparse quotes it back: still one line
    "--bogus\nmore",
    "--cancel",                           # nothing named
    "--cancel --force sentinel-a",        # a withdrawal is not a kill
]


@pytest.mark.parametrize("line", BAD_KILLS)
def test_bad_killthread_is_one_line_and_kills_nothing(ip, sentinels, line):
    before = threading.active_count()
    with pytest.raises(UsageError) as caught:
        _magic(ip, "killthread", line)
    message = str(caught.value)
    assert message and "\n" not in message
    assert _alive(sentinels) and threading.active_count() == before


def test_ambiguous_name_lists_the_candidates(ip, sentinels):
    with pytest.raises(UsageError) as caught:
        _magic(ip, "killthread", "twin")
    twins = [t for t in threading.enumerate() if t.name == "twin"]
    assert all(str(t.ident) in str(caught.value) for t in twins)
    assert "nothing was killed" in str(caught.value)


def test_refusal_says_why(ip, sentinels):
    with pytest.raises(UsageError, match="refusing to kill .MainThread."):
        _magic(ip, "killthread", str(threading.main_thread().ident))
    with pytest.raises(UsageError, match="refusing to kill .own-refresher."):
        _magic(ip, "killthread", str(sentinels["own-refresher"].native_id))


@pytest.mark.parametrize("line", BAD_KILLS[:12])
def test_usage_errors_print_no_traceback(ip, sentinels, line):
    with capture_output() as out:
        ip.run_cell(f"%killthread {line}")
    shown = out.stdout + out.stderr
    assert "Traceback" not in shown and shown.count("UsageError") == 1, shown
    assert _alive(sentinels)


@pytest.mark.parametrize("line", [
    "--sort", "--sort size", "--stack", "--stack nosuch", "--stack twin",
    "--stack 'sentinel-*'", "--stack sentinel-a --all", "--text extra", "-x", "'",
    "' \n '",
])
def test_bad_threads_is_one_line(ip, sentinels, line):
    with pytest.raises(UsageError) as caught:
        _magic(ip, "threads", line)
    assert "\n" not in str(caught.value)
    assert _alive(sentinels)


# -- the text table ----------------------------------------------------------------------

def _columns(header):
    return [m.start() for m in re.finditer(r"\S+(?: \S+)?", header)]


def test_text_table_is_aligned(ip, sentinels):
    stdout, _ = _magic(ip, "threads", "--text")
    lines = stdout.splitlines()
    header, rule, rows = lines[0], lines[1], [l for l in lines[2:] if "hidden" not in l]
    assert header.split() == ["name", "ident", "state", "CPU", "%", "where", "started", "by",
                              "age"]
    assert set(rule) <= {"-", " "}
    # Every column starts where the rule's dashes do, in every row.
    starts = [m.start() for m in re.finditer(r"-+", rule)]
    for row in rows:
        for start in starts[1:]:
            assert row[start - 2:start] == "  " or len(row) <= start, (row, start)
    for name in ("sentinel-a", "sentinel-b", "my worker"):
        assert any(row.startswith(name) for row in rows)
    idents = {str(t.ident) for t in sentinels.values()}
    assert idents & set(" ".join(rows).split())


def test_kernel_threads_hidden_unless_asked(ip, sentinels):
    stdout, _ = _magic(ip, "threads", "--text")
    # Other threads of the test process may carry such names inside theirs
    # (e.g. "MainThread - runner"): compare whole names.
    names = [line.split("  ")[0].strip() for line in stdout.splitlines()]
    assert "MainThread" not in names and "own-refresher" not in names
    assert "hidden (%threads --all shows them" in stdout
    stdout, _ = _magic(ip, "threads", "-a --text")
    assert "MainThread [kernel]" in stdout and "own-refresher [kernel]" in stdout


def test_sort_by_name(ip, sentinels):
    stdout, _ = _magic(ip, "threads", "--text --sort name")
    names = [line.split("  ")[0].strip() for line in stdout.splitlines()[2:]
             if not line.endswith("they are never killed)")]
    assert names == sorted(names, key=str.casefold)


def test_cpu_column_finds_the_busy_thread(ip, sentinels):
    stop = threading.Event()
    spinner = threading.Thread(target=lambda: [0 for _ in iter(stop.is_set, True)],
                               name="spinner", daemon=True)
    spinner.start()
    try:
        stdout, _ = _magic(ip, "threads", "--text --sort cpu")
    finally:
        stop.set()
        spinner.join(10)
    rows = stdout.splitlines()[2:]
    assert rows[0].startswith("spinner"), stdout            # busiest first
    cpu = stdout.splitlines()[0].index("CPU %") + len("CPU %")
    assert float(rows[0][:cpu].split()[-1]) > 0, stdout
    sentinel = next(row for row in rows if row.startswith("sentinel-a"))
    assert sentinel[:cpu].split()[-1] == "0.0", stdout


def test_terminal_shell_prints_text(ip, sentinels):
    stdout, _ = _magic(ip, "threads", "")
    assert stdout.startswith("name") and "sentinel-a" in stdout


def test_stack_of_one_thread(ip, sentinels):
    stdout, _ = _magic(ip, "threads", "--stack sentinel-b")
    assert stdout.strip() and "Traceback" not in stdout
    stdout, _ = _magic(ip, "threads", f"--stack {threading.main_thread().ident}")
    assert stdout.strip()                 # looking at the kernel's threads is fine


# -- completion ---------------------------------------------------------------------------

def _complete(ip, text):
    with provisionalcompleter():
        return [c.text for c in ip.Completer.completions(text, len(text))]


def test_completion_offers_live_names_and_idents(ip, sentinels):
    assert set(_complete(ip, "%killthread sent")) == {"sentinel-a", "sentinel-b"}
    ident = str(sentinels["sentinel-a"].ident)
    assert ident in _complete(ip, f"%killthread {ident[:4]}")
    assert "'my worker'" in _complete(ip, "%killthread 'my")
    offered = _complete(ip, "%killthread ")
    assert "sentinel-a" in offered and "MainThread" not in offered
    assert "own-refresher" not in offered


def test_completion_of_options(ip, sentinels):
    assert set(_complete(ip, "%killthread --")) == {"--force", "--timeout", "--cell", "--all",
                                                         "--cancel"}
    assert _complete(ip, "%threads --sort ") == ["cpu", "name", "age"]
    assert "MainThread" in _complete(ip, "%threads --stack Ma")


def test_completion_leaves_other_lines_alone(ip, sentinels):
    assert "sentinel-a" not in _complete(ip, "sent")
    assert "sentinel-a" not in _complete(ip, "print(sent")
    ip.user_ns["threads_seen"] = 1
    try:                                   # a variable named like the magic still completes
        assert "threads_seen" in _complete(ip, "threads = threads_se")
    finally:
        del ip.user_ns["threads_seen"]


# -- loading ---------------------------------------------------------------------------------

def test_load_twice_unload_reload(ip):
    import ipy_threadkill
    ipy_threadkill.load_ipython_extension(ip)           # a second load is harmless
    matchers = ip.Completer.custom_matchers
    assert sum(getattr(m, "__name__", "") == "complete_thread_magics" for m in matchers) == 1
    ip.run_line_magic("unload_ext", "ipy_threadkill")
    assert ip.find_line_magic("killthread") is None and ip.find_line_magic("threads") is None
    assert ip.find_cell_magic("timelimit") is None
    assert not any(getattr(m, "__name__", "") == "complete_thread_magics" for m in matchers)
    ip.run_line_magic("load_ext", "ipy_threadkill")
    assert ip.find_line_magic("killthread") is not None
    assert ip.find_cell_magic("timelimit") is not None


def test_extensions_config_loads_it(tmp_path):
    profile = tmp_path / "profile_default"
    profile.mkdir()
    (profile / "ipython_config.py").write_text(
        "c.InteractiveShellApp.extensions = ['ipy_threadkill']\n")
    proc = subprocess.run(
        [sys.executable, "-m", "IPython", "--no-banner", "--HistoryManager.enabled=False",
         "-c", "%threads --text"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env=python_env(IPYTHONDIR=str(tmp_path), HOME=str(tmp_path)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].split()[:3] == ["name", "ident", "state"], proc.stdout


# -- killing (each in a child interpreter) -------------------------------------------------

SHELL = """
import json, threading, time
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.error import UsageError
from IPython.utils.io import capture_output

ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "ipy_threadkill")
stop = threading.Event()

def start(name, target=stop.wait, *args):
    thread = threading.Thread(target=target, args=args, name=name, daemon=True)
    thread.start()
    return thread

def spin():
    while not stop.is_set():
        pass

def magic(name, line):
    with capture_output() as out:
        try:
            ip.run_line_magic(name, line)
        except UsageError as exc:
            return "UsageError: " + str(exc)
    return out.stdout + out.stderr
"""


def _run_shell(code, timeout=60):
    return run_json(SHELL + textwrap.dedent(code), timeout=timeout)


def test_kill_by_name_ident_native_id_and_pattern():
    result = _run_shell("""
        victims = [start("by-name"), start("by-ident", time.sleep, 600),
                   start("by-native", spin), start("pool-1"), start("pool-2")]
        bystander = start("bystander")
        v = victims
        out = magic("killthread", f"by-name {v[1].ident} {v[2].native_id} 'pool-*' by-name")
        print(json.dumps({"out": out, "alive": [t.is_alive() for t in victims],
                          "bystander": bystander.is_alive()}))
    """)
    lines = result["out"].splitlines()
    assert len(lines) == 5, lines                       # by-name twice: killed once
    assert all(line.startswith("killed '") and "cleanup ran" in line for line in lines), lines
    assert result["alive"] == [False] * 5 and result["bystander"]


def test_a_kill_in_a_long_c_call_stays_pending_and_cancel_withdraws_it():
    result = _run_shell("""
        import hashlib
        calls = [0]
        began = time.monotonic()
        hashlib.pbkdf2_hmac("sha256", b"k", b"s", 100000)
        rounds = int(100000 * 3.0 / max(time.monotonic() - began, 1e-4))   # ~3 s a call
        def hash_for_ever():
            while True:
                hashlib.pbkdf2_hmac("sha256", b"k", b"s", rounds)
                calls[0] += 1
        victim = start("hasher", hash_for_ever)
        from ipy_threadkill import _blocking
        from tests import wait_until
        wait_until(lambda: _blocking.analyze(victim.ident, victim.native_id).kind == "c-code")
        pending = magic("killthread", "--timeout 0.3 hasher")
        listed = magic("threads", "--text")
        cancelled = magic("killthread", f"--cancel {victim.ident}")
        again = magic("killthread", "--cancel hasher")
        wait_until(lambda: calls[0] >= 1, timeout=60)
        print(json.dumps({"pending": pending, "listed": listed, "cancelled": cancelled,
                          "again": again, "alive": victim.is_alive(), "ident": victim.ident}))
    """, timeout=120)
    assert result["pending"].strip() == result["pending"].strip().splitlines()[0]
    assert "is inside a C call that releases the GIL" in result["pending"], result
    assert f"%killthread --cancel {result['ident']} withdraws it" in result["pending"], result
    hasher = [line for line in result["listed"].splitlines() if line.startswith("hasher")]
    assert hasher and "kill pending" in hasher[0], result["listed"]
    assert result["cancelled"].startswith("withdrew the kill pending in 'hasher'"), result
    assert result["again"].startswith("no kill is pending in 'hasher'"), result
    assert result["alive"], result


def test_kill_everything_a_cell_started():
    result = _run_shell("""
        before = start("before")
        ip.run_cell(store_history=True, raw_cell="import threading, time\\n"
                    "t1 = threading.Thread(target=time.sleep, args=(600,), name='c1', daemon=True)\\n"
                    "t2 = threading.Thread(target=time.sleep, args=(600,), name='c2', daemon=True)\\n"
                    "t1.start(); t2.start()")
        cell = ip.execution_count - 1
        ip.run_cell(store_history=True, raw_cell="t3 = threading.Thread(target=time.sleep, args=(600,), name='c3', daemon=True)\\n"
                    "t3.start()")
        out = magic("killthread", f"--cell {cell}")
        ns = ip.user_ns
        print(json.dumps({"out": out, "cell": cell,
                          "alive": [ns[n].is_alive() for n in ("t1", "t2", "t3")],
                          "before": before.is_alive()}))
    """)
    lines = result["out"].splitlines()
    assert len(lines) == 2 and all(line.startswith("killed '") for line in lines), result
    assert result["alive"] == [False, False, True] and result["before"]


def test_kill_all_spares_the_kernels_threads():
    result = _run_shell("""
        from ipy_threadkill import _kernel
        victims = [start("a"), start("b", time.sleep, 600), start("c", spin)]
        own = _kernel.mark_own(start("own"))
        out = magic("killthread", "--all")
        again = magic("killthread", "--all")
        print(json.dumps({"out": out, "again": again, "own": own.is_alive(),
                          "alive": [t.is_alive() for t in victims]}))
    """)
    assert len(result["out"].splitlines()) == 3, result
    assert result["alive"] == [False] * 3 and result["own"]
    assert result["again"].startswith("no threads to kill")


def test_unkillable_thread_gets_one_line_and_others_still_die():
    # A sleep that blocks every signal: no gentle rung can reach it, the forced
    # cancel can on every version (a Lock waiter only before 3.13).
    result = _run_shell("""
        import signal
        def masked_sleep():
            signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
            time.sleep(600)
        stuck = start("stuck", masked_sleep)
        from ipy_threadkill import _blocking
        deadline = time.monotonic() + 10        # in the sleep, past any bytecode
        while _blocking.analyze(stuck.ident, stuck.native_id).kind != "sleep":
            assert time.monotonic() < deadline, "the thread never slept"
            time.sleep(0.01)
        other = start("other")
        out = magic("killthread", "--timeout 1 stuck other")
        forced = magic("killthread", "--force --timeout 1 stuck")
        print(json.dumps({"out": out, "forced": forced, "other": other.is_alive()}))
    """)
    first, second = result["out"].splitlines()
    assert first.startswith("could not kill 'stuck'") and "--force" in first, first
    assert second.startswith("killed 'other'") and not result["other"]
    forced = result["forced"].splitlines()
    assert len(forced) == 1 and "Traceback" not in result["forced"], forced
    if forced[0].startswith("killed 'stuck'"):
        assert "cleanup did NOT run" in forced[0], forced       # the user must be told
    else:                                                       # refused where unsafe
        assert "forced" in forced[0] or "force" in forced[0], forced


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and the interrupt rung")
def test_unload_gives_the_signal_back():
    result = _run_shell("""
        def caught():                  # the signals this process has handlers for
            with open("/proc/self/status") as f:
                line = next(l for l in f if l.startswith("SigCgt:"))
            return int(line.split()[1], 16)

        sleeper = start("sleeper", time.sleep, 600)
        out = magic("killthread", "sleeper")
        from ipy_threadkill import _native
        signum = _native.interrupt_signal()
        held = bool(caught() & (1 << (signum - 1)))
        ip.run_line_magic("unload_ext", "ipy_threadkill")
        print(json.dumps({"out": out, "held": held,
                          "released": not caught() & (1 << (signum - 1))}))
    """)
    assert "interrupted system call" in result["out"], result
    assert result["held"] and result["released"]


def test_unload_leaves_the_interpreter_as_load_found_it():
    # The picture is taken after the shell exists (IPython installs hooks of its
    # own) and before the extension is loaded; kills of the kinds that install
    # something run in between, through the magic and the live table's code path.
    result = run_json(textwrap.dedent("""
        import json, threading, time
        from IPython.core.interactiveshell import InteractiveShell
        from IPython.utils.io import capture_output
        from tests.interpreter_state import picture

        ip = InteractiveShell.instance()
        before = picture()
        ip.run_line_magic("load_ext", "ipy_threadkill")

        def swallowing():
            while True:
                try:
                    time.sleep(0.001)
                except BaseException:
                    pass

        threads = [threading.Thread(target=target, name=name, daemon=True)
                   for name, target in (("sleeper", lambda: time.sleep(600)),
                                        ("swallower", swallowing))]
        for thread in threads:
            thread.start()
        with capture_output() as out:
            ip.run_line_magic("killthread", "sleeper swallower")
        ip.run_line_magic("unload_ext", "ipy_threadkill")
        after = picture()
        ip.run_line_magic("load_ext", "ipy_threadkill")     # and it comes back
        reloaded = ip.find_line_magic("killthread") is not None
        print(json.dumps(dict(before=before, after=after, out=out.stdout,
                              alive=[t.is_alive() for t in threads], reloaded=reloaded)))
    """), timeout=60)
    lines = result["out"].splitlines()
    assert len(lines) == 2 and all(line.startswith("killed '") for line in lines), result
    assert result["alive"] == [False, False] and result["reloaded"]
    for key, value in result["before"].items():
        assert result["after"][key] == value, key


def test_a_name_with_a_newline_still_gets_one_line():
    result = _run_shell("""
        odd = start("two\\nlines")
        out = magic("killthread", str(odd.ident))
        print(json.dumps({"out": out, "alive": odd.is_alive()}))
    """)
    assert result["out"].count("\n") == 1 and not result["alive"], result
    assert result["out"].startswith("killed 'two\\nlines'"), result


def test_numeric_name_when_no_ident_matches():
    result = _run_shell("""
        named = start("42")
        out = magic("killthread", "42")
        print(json.dumps({"out": out, "alive": named.is_alive()}))
    """)
    assert result["out"].startswith("killed '42'") and not result["alive"], result


# -- text from threads is data --------------------------------------------------------------

HOSTILE = ("clear\x1b[2J", "over\rwrite", "two\nlines", "tab\there", "nul\x00", "\u202eeman")


def _printable_lines(text):
    """Every line of `text` holds only printable characters."""
    return all(line.isprintable() for line in text.split("\n"))


@pytest.fixture
def hostile_threads():
    """Threads whose names could fake a row or drive a terminal; they only wait."""
    stop = threading.Event()
    started = [threading.Thread(target=stop.wait, name=name, daemon=True) for name in HOSTILE]
    for thread in started:
        thread.start()
    yield started
    stop.set()
    for thread in started:
        thread.join(10)


def test_text_table_escapes_control_characters(ip, sentinels, hostile_threads):
    stdout, _ = _magic(ip, "threads", "--text")
    assert _printable_lines(stdout.rstrip("\n")), repr(stdout)
    rows = stdout.splitlines()
    for name in HOSTILE:                  # one row each, its name escaped as repr() does
        escaped = repr(name)[1:-1]
        assert sum(row.startswith(escaped + " ") for row in rows) == 1, (escaped, rows)


def test_messages_escape_control_characters(ip, sentinels):
    stop = threading.Event()
    own = [_kernel.mark_own(threading.Thread(target=stop.wait, name=name, daemon=True))
           for name in HOSTILE]
    try:
        for thread in own:
            thread.start()
        for thread in own:            # the refusal quotes the name: escaped, one line
            with pytest.raises(UsageError) as caught:
                _magic(ip, "killthread", str(thread.ident))
            message = str(caught.value)
            assert message.isprintable() and repr(thread.name)[1:-1] in message, message
        for thread in own:            # the stack's header names it: still one line
            stdout, _ = _magic(ip, "threads", f"--stack {thread.ident}")
            assert _printable_lines(stdout.rstrip("\n")), repr(stdout)
            assert stdout.startswith(f"Thread '{repr(thread.name)[1:-1]}' (ident"), stdout
            assert all(line.startswith("  ") for line in stdout.splitlines()[1:]), stdout
    finally:
        stop.set()
        for thread in own:
            thread.join(10)


@pytest.mark.parametrize("value, width, keep_end, expected", [
    ("ab\x1b[2Jcd", 8, False, "ab\\x1b[…"),
    ("ab\x1b[2Jcd", 6, False, "ab…"),          # cut before the escape, never inside it
    ("ab\x1bcd", 6, True, "…cd"),
    ("ab\x1bcd", 7, True, "…\\x1bcd"),
    ("\u202eabc", 20, False, "\\u202eabc"),      # bidi override: escaped, shown as text
    ("short", 5, False, "short"),
    ("longer", 5, False, "long…"),
    ("/a/long/path.py:3", 10, True, "…path.py:3"),
])
def test_clip_escapes_first_then_cuts_whole_escapes(value, width, keep_end, expected):
    from ipy_threadkill._text import clip
    clipped = clip(value, width, keep_end=keep_end)
    assert clipped == expected and len(clipped) <= width and clipped.isprintable()


# -- the magic line is taken verbatim --------------------------------------------------------

def test_dollar_is_not_expanded(ip, sentinels):
    ip.user_ns["x"] = "no-such-thread"           # expanded, it would name nothing
    try:
        with pytest.raises(UsageError, match=r"named '\$x'"):
            _magic(ip, "killthread", "$x")
        with pytest.raises(UsageError, match=r"named '\$x'"):
            _magic(ip, "threads", "--stack $x")
    finally:
        del ip.user_ns["x"]
    assert _alive(sentinels)


def test_completing_a_hostile_name_runs_nothing_and_kills_only_it(tmp_path):
    marker = tmp_path / "ran"
    result = _run_shell(f"""
        from IPython.core.completer import provisionalcompleter
        name = "session-s1{{__import__('os').system('id>{marker}')}}"
        hostile = start(name)
        braces = start("job{{1}}")
        plain = start("job1")
        with provisionalcompleter():
            offered = [c.text for c in ip.Completer.completions("%killthread sess", 16)]
        line = "%killthread " + offered[0]
        with capture_output() as out:
            ip.run_cell(line)
        braced = magic("killthread", "job{{1}}")
        print(json.dumps({{"offered": offered, "out": out.stdout + out.stderr,
                          "braced": braced, "alive": [hostile.is_alive(),
                          braces.is_alive(), plain.is_alive()]}}))
    """)
    assert result["offered"] == [result["offered"][0]] and not marker.exists(), result
    assert result["out"].startswith("killed 'session-s1{"), result
    assert result["braced"].startswith("killed 'job{1}'"), result
    assert result["alive"] == [False, False, True], result


def test_a_name_that_is_another_threads_id_is_refused():
    # In a child: without the refusal, the numbered thread would be killed.
    result = _run_shell("""
        numbered = start("numbered")
        named = [start(str(numbered.ident)), start(str(numbered.native_id))]
        outs = [magic("killthread", t.name) for t in named]
        print(json.dumps({"outs": outs, "idents": [t.ident for t in named],
                          "alive": [t.is_alive() for t in [numbered] + named]}))
    """)
    for out, ident in zip(result["outs"], result["idents"]):
        assert out.startswith("UsageError: ") and "ambiguous" in out, out
        assert "'numbered'" in out and str(ident) in out and "nothing was killed" in out, out
    assert result["alive"] == [True, True, True], result


@pytest.mark.parametrize("value", ["1e7", "1e400"])
def test_timeout_over_the_limit_is_a_usage_error(ip, sentinels, value):
    with pytest.raises(UsageError, match="--timeout must be") as caught:
        _magic(ip, "killthread", f"--timeout {value} sentinel-a")
    assert "\n" not in str(caught.value) and _alive(sentinels)


def test_a_completed_name_is_never_a_pattern_nor_an_option():
    result = _run_shell("""
        from IPython.core.completer import provisionalcompleter
        def complete(text):
            with provisionalcompleter():
                return [c.text for c in ip.Completer.completions(text, len(text))]
        ends = threading.Event()
        starred = start("worker-*", ends.wait)
        others = [start("worker-1"), start("worker-2")]
        dashed = start("--all")
        odd = start("a'b \\"c")
        keeper = start("keeper")
        star = [c for c in complete("%killthread work") if "*" in c or "\\\\x2a" in c]
        # The thread a completion named is gone by the time Enter is pressed.
        ends.set(); starred.join(10)
        late = magic("killthread", star[0])
        offered_dash = complete("%killthread --a")
        as_option = magic("killthread", offered_dash[-1])
        offered_odd = complete("%killthread a")
        by_prefix = magic("killthread", offered_odd[0])
        print(json.dumps({"star": star, "late": late, "dash": offered_dash,
                          "as_option": as_option, "odd": offered_odd,
                          "by_prefix": by_prefix,
                          "alive": [t.is_alive() for t in others + [dashed, odd, keeper]]}))
    """)
    assert len(result["star"]) == 1, result
    assert result["late"].startswith("UsageError: no running thread is named 'worker-*'"), result
    assert result["dash"][0] == "--all" and result["dash"][-1] == "'--all'", result
    assert result["as_option"].startswith("killed '--all'"), result
    assert result["as_option"].count("\n") == 1, result           # that thread only
    assert result["odd"] == ['"a\'b \\x22c"'], result
    assert result["by_prefix"].startswith("killed 'a'b \"c'"), result
    assert result["alive"] == [True, True, False, False, True], result


def test_a_name_that_is_its_own_id_is_no_ambiguity():
    result = _run_shell("""
        numbered = start("numbered")
        named = start(str(numbered.ident))
        hint = magic("killthread", named.name)
        own = start("own-id")
        own.name = str(own.native_id)
        out = magic("killthread", own.name)
        print(json.dumps({"hint": hint, "out": out, "native": numbered.native_id,
                          "alive": [numbered.is_alive(), named.is_alive(), own.is_alive()]}))
    """)
    # The number is the first's ident: its native id is what names it alone.
    assert f"give native id {result['native']} for the first" in result["hint"], result
    assert result["out"].startswith("killed '") and result["out"].count("\n") == 1, result
    assert result["alive"] == [True, True, False], result


# -- %%timelimit ------------------------------------------------------------------------

@pytest.mark.parametrize("line", ["", "nan", "inf", "-1", "0", "x", "1 2", "--a 1"])
def test_bad_timelimit_is_one_line_and_runs_nothing(ip, line):
    ip.user_ns.pop("ran", None)
    with pytest.raises(UsageError) as caught:
        ip.run_cell_magic("timelimit", line, "ran = True")
    assert "\n" not in str(caught.value)
    assert "ran" not in ip.user_ns


def test_timelimit_stops_the_cell_and_the_shell_carries_on():
    result = _run_shell("""
    cells = {
        "stopped": "%%timelimit 0.3\\nimport time\\ncleanup = []\\nbefore = 1\\n"
                   "try:\\n    time.sleep(60)\\nfinally:\\n    cleanup.append(True)\\n",
        "swallowing": "%%timelimit 0.3\\nwhile True:\\n    try:\\n        time.sleep(0.2)\\n"
                      "    except BaseException:\\n        pass\\n",
        "quick": "%%timelimit 30\\nvalue = before + 41\\nvalue",
        "after": "print('still here', cleanup, value)",
    }
    out = {}
    for name, cell in cells.items():
        with capture_output() as shown:
            result = ip.run_cell(cell)
        out[name] = dict(stdout=shown.stdout, stderr=shown.stderr,
                         success=result.success, result=repr(result.result))
    print(json.dumps(out))
    """)
    for name in ("stopped", "swallowing"):
        shown = result[name]
        assert shown["stdout"].startswith("cell stopped: time limit of 0.3 s exceeded"), shown
        assert shown["stdout"].count("\n") == 1 and "Traceback" not in shown["stdout"]
        assert shown["stderr"] == "" and shown["success"], shown
    assert "sleeping" in result["stopped"]["stdout"]
    assert result["quick"]["result"] == "42"
    assert result["after"]["stdout"] == "still here [True] 42\n"


def test_timelimit_threads_also_stops_what_the_stopped_cell_started():
    result = _run_shell("""
    import threading
    other = start("started-elsewhere", time.sleep, 600)
    cell = ("%%timelimit 0.3 --threads\\nimport threading, time\\n"
            "def poll():\\n    while True:\\n        time.sleep(0.05)\\n"
            "threading.Thread(target=poll, name='cell-poller', daemon=True).start()\\n"
            "time.sleep(60)\\n")
    with capture_output() as shown:
        ip.run_cell(cell)
    without = ("%%timelimit 0.3\\nthreading.Thread(target=poll, name='kept-poller', "
               "daemon=True).start()\\ntime.sleep(60)\\n")
    with capture_output() as shown_without:
        ip.run_cell(without)
    names = sorted(t.name for t in threading.enumerate() if "poller" in t.name
                   or t.name == "started-elsewhere")
    print(json.dumps({"stdout": shown.stdout, "without": shown_without.stdout, "names": names}))
    """)
    lines = result["stdout"].splitlines()
    assert lines[0].startswith("cell stopped: time limit of 0.3 s exceeded"), lines
    assert len(lines) == 2 and lines[1].startswith("killed 'cell-poller'"), lines
    assert result["without"].count("\n") == 1, result
    assert result["names"] == ["kept-poller", "started-elsewhere"], result
