"""The magics on every engine of a real ipyparallel cluster, through %px.

A child interpreter starts a local cluster of two engines, drives it from an
IPython shell with %px, and reports each command's per-engine output as JSON. A
watchdog in the child kills the cluster's processes (each in its own session,
so a process-group kill would miss them) if the child outlives its deadline.
"""
import pytest

from tests import run_json

pytest.importorskip("ipyparallel")
pytest.importorskip("psutil")

CHILD = """
import json, os, threading
import psutil

def kill_everything():
    for process in psutil.Process().children(recursive=True):
        process.kill()
    os._exit(2)
watchdog = threading.Timer({deadline}, kill_everything)
watchdog.daemon = True
watchdog.start()

import ipyparallel
from IPython.testing.globalipapp import start_ipython
from IPython.utils.capture import capture_output

shell = start_ipython()
cluster = ipyparallel.Cluster(n=2, log_level=40)
client = cluster.start_and_connect_sync()
outputs = {{}}
try:
    client.wait_for_engines(2, timeout=60)
    view = client[:]
    view.block = True
    view.activate()              # %px runs on both engines, blocking

    def px(name, code):
        with capture_output() as captured:
            result = shell.run_cell(("%%px\\n" if "\\n" in code else "%px ") + code)
        outputs[name] = dict(stdout=captured.stdout, stderr=captured.stderr,
                             failed=result.error_in_exec is not None)

{steps}
finally:
    cluster.stop_cluster_sync()
print(json.dumps(dict(outputs=outputs, ids=sorted(client.ids))))
"""

# Runaway threads on each engine, as a notebook user would start them. The
# poller's sleeps are long so that a snapshot finds it sleeping, not in the
# moment after each sleep where it waits for the GIL the spinner holds.
START = """
    px("load", "%load_ext ipy_threadkill")
    px("state", "import threading, time\\nkept = {'answer': 42}")
    px("define", "def poll():\\n    while True:\\n        time.sleep(5)\\n"
                 "def spin():\\n    while True:\\n        pass")
    px("start", "threading.Thread(target=poll, name='poller', daemon=True).start()\\n"
                "threading.Thread(target=spin, name='spinner', daemon=True).start()")
"""


def run(steps, deadline=100):
    code = CHILD.format(deadline=deadline, steps=START + steps)
    return run_json(code, timeout=deadline + 20, allow_stderr=True)


def per_engine(text):
    """{engine id: its output} from %px's '[stdout:N]' sections."""
    sections, current = {}, None
    for line in text.splitlines():
        if line.startswith(("[stdout:", "[stderr:")):
            current = int(line.split(":")[1].split("]")[0])
            sections.setdefault(current, "")
        elif current is not None:
            sections[current] += line + "\n"
    return sections


def test_threads_and_killthread_on_every_engine():
    result = run("""
    px("table", "%threads --text")
    px("kill", "%killthread poller spinner")
    px("after", "%threads --text")
    px("kept", "print(kept['answer'], sorted(t.name for t in threading.enumerate() "
               "if t.name in ('poller', 'spinner')))")
    px("unknown", "%killthread no-such-thread")
    px("protected", "%killthread Control")
""")
    out, ids = result["outputs"], result["ids"]
    assert ids == [0, 1]
    assert not out["load"]["failed"] and not out["start"]["failed"]

    table = per_engine(out["table"]["stdout"])
    assert sorted(table) == ids
    for text in table.values():
        assert "poller" in text and "spinner" in text and "sleeping" in text
        assert "kernel threads hidden" in text

    killed = per_engine(out["kill"]["stdout"])
    assert sorted(killed) == ids, out["kill"]
    for text in killed.values():
        assert "killed 'poller'" in text and "killed 'spinner'" in text
        assert text.count("cleanup ran") == 2

    for text in per_engine(out["after"]["stdout"]).values():
        assert "poller" not in text and "spinner" not in text

    kept = per_engine(out["kept"]["stdout"])
    assert kept == {0: "42 []\n", 1: "42 []\n"}

    # Mistakes and refusals: one line per engine, and nothing was killed.
    for name, words in [("unknown", "no running thread is named 'no-such-thread'"),
                        ("protected", "the kernel needs it")]:
        assert out[name]["failed"]
        lines = per_engine(out[name]["stderr"])
        assert sorted(lines) == ids, out[name]
        for text in lines.values():
            assert words in text and "nothing was killed" in text and "Traceback" not in text


def test_threads_without_text_on_engines():
    # %threads on an engine must print the table: a live table's widget messages
    # reach the ipyparallel client, which cannot show them (from a terminal it
    # fails on them and loses all later output).
    result = run("""
    px("table", "%threads")
    px("after", "print('still here')")
""")
    out = result["outputs"]
    table = per_engine(out["table"]["stdout"])
    assert sorted(table) == [0, 1]
    assert all("poller" in text for text in table.values())
    assert per_engine(out["after"]["stdout"]) == {0: "still here\n", 1: "still here\n"}
