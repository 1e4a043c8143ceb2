"""%threads_autostop in a real kernel: a notebook cell run again first stops the
threads its earlier runs left running; other cells' threads, and cells without
an id, are left alone. Driven through jupyter_client with the cell ids a
notebook frontend sends; every wait has a deadline."""
import pytest

from tests.kernel import Kernel

pytestmark = pytest.mark.timeout(180)

POLLER = """
import threading, time
def poll():
    while True:
        time.sleep(0.05)
threading.Thread(target=poll, name="poller-{tag}", daemon=True).start()
"""

ALIVE = """
import threading
print(sorted(t.name for t in threading.enumerate() if t.name.startswith("poller")))
"""


def test_a_rerun_cell_stops_what_its_earlier_run_started():
    with Kernel() as kernel:
        assert kernel.execute("%load_ext ipy_threadkill").ok
        off = kernel.execute("%threads_autostop")
        on = kernel.execute("%threads_autostop on")
        first = kernel.execute(POLLER.format(tag="a1"), cell_id="cell-a")
        other = kernel.execute(POLLER.format(tag="b1"), cell_id="cell-b")
        nameless = kernel.execute(POLLER.format(tag="n1"))
        rerun = kernel.execute(POLLER.format(tag="a2"), cell_id="cell-a")
        alive = kernel.execute(ALIVE)
        kept = kernel.execute("x = 42", cell_id="cell-c")
        switched_off = kernel.execute("%threads_autostop off")
        again = kernel.execute(POLLER.format(tag="a3"), cell_id="cell-a")
        after_off = kernel.execute(ALIVE)
        bad = kernel.execute("%threads_autostop maybe")
    assert off.stdout.strip() == "threads autostop is off", off
    assert on.stdout.strip() == "threads autostop is on", on
    assert first.ok and other.ok and nameless.ok and first.stdout == ""
    lines = rerun.stdout.splitlines()
    assert rerun.ok and len(lines) == 1, rerun
    assert lines[0].startswith("%threads_autostop: killed 'poller-a1'"), lines
    assert "cleanup ran" in lines[0], lines
    assert alive.stdout.strip() == "['poller-a2', 'poller-b1', 'poller-n1']", alive
    assert kept.ok and kept.stdout == ""
    assert switched_off.stdout.strip() == "threads autostop is off"
    assert again.ok and again.stdout == "", again
    assert after_off.stdout.strip() == \
        "['poller-a2', 'poller-a3', 'poller-b1', 'poller-n1']", after_off
    assert bad.stderr.startswith("UsageError: ") and bad.stderr.count("\n") == 1, bad
    assert "Traceback" not in bad.stdout + bad.stderr


def test_killthread_cell_previous_stops_the_earlier_runs_of_this_cell():
    with Kernel() as kernel:
        assert kernel.execute("%load_ext ipy_threadkill").ok
        first = kernel.execute(POLLER.format(tag="a1"), cell_id="cell-a")
        other = kernel.execute(POLLER.format(tag="b1"), cell_id="cell-b")
        never = kernel.execute("%killthread --cell previous", cell_id="cell-new")
        again = kernel.execute(POLLER.format(tag="a2") + "\n%killthread --cell previous",
                               cell_id="cell-a")
        alive = kernel.execute(ALIVE)
        nameless = kernel.execute("%killthread --cell previous")
    assert first.ok and other.ok
    assert never.stderr.startswith("UsageError: this cell has not run before"), never
    lines = again.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("killed 'poller-a1'"), again
    assert alive.stdout.strip() == "['poller-a2', 'poller-b1']", alive
    assert nameless.stderr.startswith("UsageError: --cell previous needs a notebook cell"), \
        nameless
