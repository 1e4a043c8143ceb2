"""threads() in IPython and in a real ipykernel (issue: the thread snapshot).

"Started by" must name the cell (In[n]) that started a thread, and the kernel's
own threads must be recognised, hidden by default and never killable.
"""
import json

import ipykernel
import pytest

from tests import run_json
from tests.kernel import Kernel

SHELL = r'''
import json, os, sys, tempfile, textwrap, threading, time
from IPython.core.interactiveshell import InteractiveShell
import ipy_threadkill

ip = InteractiveShell.instance()
lib = tempfile.mkdtemp()
with open(os.path.join(lib, "pollers.py"), "w") as f:
    f.write(textwrap.dedent("""
        import threading, time
        def poll():
            time.sleep(3600)
        def start():
            thread = threading.Thread(target=poll, name="from-module", daemon=True)
            thread.start()
            return thread
    """))
sys.path.insert(0, lib)
ip.run_cell("x = 1", store_history=True)
ip.run_cell("""import threading, time
def runaway():
    time.sleep(3600)
t = threading.Thread(target=runaway, name="from-cell", daemon=True)
t.start()
""", store_history=True)
ip.run_cell("import pollers; pollers.start()", store_history=True)
ip.run_cell("""
from concurrent.futures import ThreadPoolExecutor
pool = ThreadPoolExecutor(1, thread_name_prefix="pool")
stop = threading.Event()
pool.submit(stop.wait)
""", store_history=True)
deadline = time.monotonic() + 10
while True:
    infos = {i.name: i for i in ipy_threadkill.threads()}
    if infos["from-cell"].state.startswith("sleeping") or time.monotonic() > deadline:
        break
    time.sleep(0.01)
pool = next(name for name in infos if name.startswith("pool"))
ip.user_ns["stop"].set()            # the pool's thread is joined at exit
print(json.dumps({name: [infos[name].started_by, infos[name].started_by_cell,
                         infos[name].where]
                  for name in ("from-cell", "from-module", pool)}))
'''


def test_started_by_names_the_cell():
    out = run_json(SHELL, timeout=60)
    assert out["from-cell"][:2] == ["In[2]", 2]
    assert out["from-cell"][2] == "In[2]:3 in runaway"
    # A thread started by library code names the line that started it.
    assert out["from-module"][:2] == ["pollers.py:7", None]
    assert out["from-module"][2] == "pollers.py:4 in poll"
    # A pool's thread is started by the executor: the cell that submitted the work.
    pool = next(v for k, v in out.items() if k.startswith("pool"))
    assert pool[:2] == ["In[4]", 4]


# Started before the package is imported: no record of ours.
EARLY = """
import threading
threading.Thread(target=threading.Event().wait, name="early", daemon=True).start()
"""

# The package is imported then, as `%load_ext ipy_threadkill` at kernel start
# would: Thread.start is watched from then on.
USER_THREAD = """
import ipy_threadkill
import threading, time
def runaway():
    time.sleep(3600)
threading.Thread(target=runaway, name="runaway", daemon=True).start()
"""

LIST = """
import json, time, ipy_threadkill
deadline = time.monotonic() + 10
while True:
    mine = [i for i in ipy_threadkill.threads() if i.name == "runaway"]
    if mine and mine[0].state.startswith("sleeping") or time.monotonic() > deadline:
        break
    time.sleep(0.01)
def rows(infos):
    return [dict(name=i.name, kind=i.kind, reason=i.kernel_reason, killable=i.killable,
                 plan=i.kill_plan, started_by=i.started_by, state=i.state) for i in infos]
print(json.dumps({"default": rows(ipy_threadkill.threads()),
                  "all": rows(ipy_threadkill.threads(include_kernel=True)),
                  "stack": ipy_threadkill.stack("runaway")}))
"""

# What ipykernel runs besides the user's code (names as the kernel shows them).
KERNEL_THREADS = {"IOPub", "Heartbeat", "Control", "IPythonHistorySavingThread"}
KERNEL_6 = ipykernel.version_info[0] < 7
if not KERNEL_6:
    KERNEL_THREADS.add("Shell channel")


@pytest.fixture(scope="module")
def kernel_lists():
    with Kernel() as kernel:
        assert kernel.execute(EARLY).ok
        started = kernel.execute(USER_THREAD)
        assert started.ok, started
        listed = kernel.execute(LIST)
        assert listed.ok, listed
    return json.loads(listed.stdout.strip().splitlines()[-1])


def test_default_list_is_the_users_threads_and_main(kernel_lists):
    shown = {row["name"]: row for row in kernel_lists["default"]}
    assert set(shown) == {"MainThread", "early", "runaway"}, shown
    assert shown["runaway"]["killable"] and shown["runaway"]["reason"] is None
    assert shown["runaway"]["started_by"] == "In[2]"
    # Unknown to us; ipykernel 6 remembers the request of the cell that started it.
    early = shown["early"]["started_by"]
    assert early.startswith("a cell run at ") if KERNEL_6 else early is None, early
    assert shown["MainThread"]["reason"].startswith("it is the main thread")
    assert not shown["MainThread"]["killable"]


def test_kernel_threads_are_recognised(kernel_lists):
    rows = kernel_lists["all"]
    kernel = [row for row in rows if row["name"] not in ("MainThread", "early", "runaway")]
    assert KERNEL_THREADS <= {row["name"] for row in kernel}, rows
    for row in kernel:
        assert row["reason"], f"not recognised as the kernel's: {row}"
        assert not row["killable"] and row["plan"].startswith(("refused: ", "cannot kill"))
    # The parent poller runs under a default name: recognised by its class.
    assert any("ParentPoller" in row["reason"] for row in kernel), rows
    # libzmq's own threads run no Python code, and serve the kernel too.
    assert any(row["kind"] == "foreign" and "libzmq" in row["reason"] for row in kernel)


def test_stack_names_the_cell(kernel_lists):
    text = kernel_lists["stack"]
    assert 'File "In[2]", line 4, in runaway\n    time.sleep(3600)' in text, text
