"""The magic and the live table show the same threads the same way.

One real kernel runs a named Python thread, a bare _thread, a C thread that
runs no Python code, a thread whose name is hostile text, and (for the live
table) a thread with no CPU % yet. %threads prints its table; a ThreadTable in
the same kernel gives its own (text() and its rows' widgets): the same rows,
in the same order, with the same idents, names, states and protection.
"""
import json
import re
import sys

import pytest

from tests.kernel import Kernel

pytest.importorskip("ipywidgets")
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the C thread is found through /proc")

HOSTILE = "views-$x {1+1} <b>\x1b[2J"

THREADS = f"""
import ctypes, _thread, json, threading, time
import ipy_threadkill
from ipy_threadkill.widget import ThreadTable
%load_ext ipy_threadkill
x = "EXPANDED"
stop = threading.Event()
for name in ("views-named", {HOSTILE!r}):
    threading.Thread(target=stop.wait, name=name, daemon=True).start()
bare = _thread.start_new_thread(stop.wait, ())
before = {{i.native_id for i in ipy_threadkill.threads() if i.kind == "foreign"}}
libc = ctypes.CDLL(None)
pthread = ctypes.c_ulong()
assert libc.pthread_create(ctypes.byref(pthread), None,
                           ctypes.cast(libc.sleep, ctypes.c_void_p), ctypes.c_void_p(600)) == 0
assert libc.pthread_setname_np(pthread, b"views-foreign") == 0
deadline = time.monotonic() + 10
foreign = set()
while not foreign and time.monotonic() < deadline:
    foreign = {{i.native_id for i in ipy_threadkill.threads()
               if i.kind == "foreign" and i.name == "views-foreign"}} - before
print(json.dumps({{"bare": bare, "foreign": sorted(foreign)}}))
"""

# The live table's view of the same threads, from a fresh table that refreshes
# only when asked: its text, its rows in order, and its refusals, as clicks.
TABLE = """
table = ThreadTable(refresh_interval=None, include_kernel={include_kernel}, sort={sort!r})
by_box = {{id(r.box): r for r in table._rows.values()}}
rows = [by_box[id(box)] for box in table._body.children]
shown = {{"text": table.text(), "refusals": {{}},
         "rows": [{{"name": r.info.name, "disabled": r.kill_button.disabled,
                   "kernel": r.info.kernel_reason is not None,
                   "ident_cell": r.ident.value}} for r in rows]}}
for row in rows:
    if row.info.name in ("views-foreign", "MainThread"):
        table._request_kill(row, force=False)
        shown["refusals"][row.info.name] = table.status
table.close()
print(json.dumps(shown))
"""

# What follows a table: the magic's count of hidden threads, the widget's summary.
_AFTER = re.compile(r"\(no threads|\d+ (kernel )?threads?(\s|$)")


def _rows(text):
    """The rows of a text table, each {column: cell}; the columns are cut where
    the rule's dashes are (every cell is padded to its column's width)."""
    lines = text.splitlines()
    header, rule = lines[0], lines[1]
    spans = [m.start() for m in re.finditer(r"-+", rule)] + [None]
    columns = [header[a:b].strip() for a, b in zip(spans, spans[1:])]
    rows = []
    for line in lines[2:]:
        if _AFTER.match(line):
            break
        rows.append({c: line[a:b].strip() for c, a, b in zip(columns, spans, spans[1:])})
    return rows


@pytest.fixture(scope="module")
def kernel():
    with Kernel() as kernel:
        result = kernel.execute(THREADS)
        assert result.ok, str(result)
        kernel.started = json.loads(result.stdout.splitlines()[-1])
        assert kernel.started["foreign"], "the C thread never showed up"
        yield kernel


def _magic_table(kernel, line):
    result = kernel.execute(f"%threads --text {line}")
    assert result.ok and "Traceback" not in result.stdout + result.stderr, str(result)
    return result.stdout


def _widget_table(kernel, include_kernel, sort):
    result = kernel.execute(TABLE.format(include_kernel=include_kernel, sort=sort))
    assert result.ok, str(result)
    return json.loads(result.stdout.splitlines()[-1])


def _same(magic, widget, *columns):
    return [[r[c] for c in columns] for r in magic], [[r[c] for c in columns] for r in widget]


@pytest.mark.parametrize("sort", ["name", "age"])
def test_every_thread_shows_the_same_in_both(kernel, sort):
    magic = _rows(_magic_table(kernel, f"--all --sort {sort}"))
    shown = _widget_table(kernel, True, sort)
    widget = _rows(shown["text"])
    # The same rows in the same order, named and identified alike.
    mine, theirs = _same(magic, widget, "name", "ident")
    assert mine == theirs, (mine, theirs)
    names = [r["name"] for r in magic]
    foreign = str(kernel.started["foreign"][0])
    bare = next(r for r in magic if r["ident"] == str(kernel.started["bare"]))
    assert bare["name"].startswith("<bare thread ")      # clipped: idents are long
    escaped = repr(HOSTILE)[1:-1]
    assert escaped in names and "EXPANDED" not in str(magic) and "{2}" not in str(magic)
    by_name = {r["name"]: r for r in magic}
    assert by_name["views-foreign"]["ident"] == f"native {foreign}"
    # The threads this test started wait the same way in both.
    ours = ("views-named", escaped, "views-foreign", bare["name"])
    mine, theirs = _same([r for r in magic if r["name"] in ours],
                         [r for r in widget if r["name"] in ours], "name", "state", "started by")
    assert len(mine) == len(ours)
    assert mine == theirs, (mine, theirs)
    # Protected alike: the kernel's own are marked in text; none has a Kill button,
    # nor has the thread that runs no Python code.
    assert len(widget) == len(shown["rows"])
    for text_row, row in zip(widget, shown["rows"]):
        assert text_row["name"].endswith(" [kernel]") == row["kernel"], (text_row, row)
        assert row["disabled"] == (row["kernel"] or row["name"] == "views-foreign"), row
    assert "MainThread [kernel]" in names
    foreign_row = next(r for r in shown["rows"] if r["name"] == "views-foreign")
    assert f">native {foreign}</div>" in foreign_row["ident_cell"]


def test_default_views_differ_only_by_the_main_thread(kernel):
    magic = _rows(_magic_table(kernel, "--sort name"))
    widget = _rows(_widget_table(kernel, False, "name")["text"])
    names = [r["name"] for r in widget]
    assert "MainThread [kernel]" in names and "views-foreign" in names
    # The printed table leaves out the main thread (it is printing); nothing else.
    assert [r["name"] for r in magic] == [n for n in names if n != "MainThread [kernel]"]


def test_a_refusal_reads_the_same_in_both(kernel):
    refusals = _widget_table(kernel, True, "name")["refusals"]
    for name, target in (("views-foreign", kernel.started["foreign"][0]),
                         ("MainThread", "MainThread")):
        result = kernel.execute(f"%killthread {target}")
        shown = result.stdout + result.stderr
        assert "Traceback" not in shown and shown.count("\n") <= 1, shown
        line = shown.strip().removeprefix("UsageError: ")
        assert line == refusals[name] + " — nothing was killed", (line, refusals[name])


def test_a_thread_with_no_cpu_yet_sorts_last(kernel):
    result = kernel.execute("""
table = ThreadTable(refresh_interval=None, sort="cpu")
time.sleep(0.2); table.refresh()          # every thread listed has a CPU % now
fresh = threading.Thread(target=stop.wait, name="views-fresh", daemon=True)
fresh.start()
table.refresh()
print(json.dumps(table.text())); table.close()
""")
    assert result.ok, str(result)
    rows = _rows(json.loads(result.stdout.splitlines()[-1]))
    assert rows[-1]["name"] == "views-fresh" and rows[-1]["CPU %"] == "-", rows
    assert all(r["CPU %"] != "-" for r in rows[:-1]), rows
