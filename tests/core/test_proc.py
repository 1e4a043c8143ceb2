"""The /proc readers read files whole, whatever the first read's size."""
import os
import threading

import pytest

from ipy_threadkill import _proc


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs /proc")
@pytest.mark.parametrize("first_read", [16, 64, 4096])
def test_status_is_read_whole(first_read):
    # Memory fields change between two reads (they are the process's); the
    # fields themselves, in order, must all be there.
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, daemon=True)
    thread.start()
    try:
        with open(f"/proc/self/task/{thread.native_id}/status", "rb") as f:
            expected = f.read()
        got = _proc.thread_file(thread.native_id, b"status", first_read)
    finally:
        stop.set()
        thread.join()
    def keys(text):
        return [line.split(b":")[0] for line in text.splitlines()]
    assert keys(got) == keys(expected) and got.endswith(b"\n")
    assert got.splitlines()[-1].startswith(b"nonvoluntary_ctxt_switches:")
    assert _proc.signal_blocked(threading.get_native_id(), 9) is False
