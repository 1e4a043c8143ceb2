"""ipy_threadkill.dask on a real distributed.LocalCluster (worker processes).

A runaway task is stopped through the API; the worker must be the same process
afterwards, keep the data it holds, and run the next task. Every wait has a
deadline; the whole module has one too.
"""
import os
import time

import pytest

distributed = pytest.importorskip("distributed")

from ipy_threadkill import KillTimeout  # noqa: E402
from ipy_threadkill.dask import TaskStoppedError, stop, worker_threads  # noqa: E402
from ipy_threadkill.tasks import NoSuchTask  # noqa: E402
from tests import wait_until  # noqa: E402

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            yield client


@pytest.fixture
def worker(client):
    """(address, pid) of the one worker."""
    (address,) = client.scheduler_info()["workers"]
    return address, client.run(os.getpid)[address]


# Runaway tasks, run in the worker process.

def sleep_loop():
    while True:
        time.sleep(0.5)


def socket_read():
    import socket
    a, b = socket.socketpair()
    return a.recv(10)


def _blocking_kind(key, dask_worker):
    """On the worker: what the thread running `key` is doing, or None."""
    import threading
    from ipy_threadkill import _blocking
    idents = [i for i, k in dask_worker.active_threads.items() if k == key]
    if not idents:
        return None
    native = {t.ident: t.native_id for t in threading.enumerate()}
    return _blocking.analyze(idents[0], native.get(idents[0])).kind


def start(client, fn, key, address, state):
    future = client.submit(fn, key=key, workers=[address], pure=False)
    wait_until(lambda: client.run(_blocking_kind, key)[address] == state,
               timeout=30, interval=0.01, what=f"{key} to be in state {state}")
    return future


def holds(client, address, key):
    return client.run(lambda dask_worker: key in dask_worker.data)[address]


@pytest.mark.parametrize("fn, state, blocked_in", [
    (sleep_loop, "sleep", ("sleeping",)),
    (socket_read, "io-wait", ("reading from", "socket")),
])
def test_stop_a_runaway_task_and_keep_the_worker(client, worker, fn, state, blocked_in):
    address, pid = worker
    data = client.submit(lambda: list(range(1000)), key=f"data-{fn.__name__}",
                         workers=[address])
    assert data.result(timeout=30) == list(range(1000))
    future = start(client, fn, f"runaway-{fn.__name__}", address, state)

    requested = time.monotonic()
    reports = stop(future)
    assert list(reports) == [address]
    report = reports[address]
    assert report.died and report.thread_alive and report.cleanup_ran
    assert all(words in report.blocked_in for words in blocked_in), report.blocked_in
    assert f"'runaway-{fn.__name__}'" in str(report)

    # The future ends, as an error that the client can re-raise, within a second.
    wait_until(lambda: future.status == "error", timeout=1.0, what="the future to err")
    ended_after = time.monotonic() - requested
    with pytest.raises(TaskStoppedError):
        future.result(timeout=10)
    assert ended_after < 1.0

    # Same process, same data, and it runs the next task.
    assert client.run(os.getpid)[address] == pid
    assert holds(client, address, data.key)
    assert data.result(timeout=10) == list(range(1000))
    after = client.submit(lambda: "next", workers=[address], pure=False)
    assert after.result(timeout=30) == "next"


def test_two_tasks_on_one_worker_only_one_stopped(client, worker):
    address, pid = worker
    ending = distributed.Event("let-the-other-finish", client=client)
    kept = client.submit(lambda: ending.wait(60) and "kept", key="kept",
                         workers=[address], pure=False)
    wait_until(lambda: client.run(_blocking_kind, "kept")[address] == "condition",
               timeout=30, interval=0.01, what="the other task to wait")
    runaway = start(client, sleep_loop, "runaway-one-of-two", address, "sleep")

    reports = stop(runaway)
    assert list(reports) == [address]
    wait_until(lambda: runaway.status == "error", timeout=1.0, what="the future to err")
    assert kept.status == "pending"          # the client's word for "not done yet"
    assert client.run(_blocking_kind, "kept")[address] == "condition"

    ending.set()
    assert kept.result(timeout=30) == "kept"
    assert client.run(os.getpid)[address] == pid


def _worker_lock():
    """A Lock shared by the tasks of one worker process."""
    import threading
    worker = distributed.get_worker()
    return worker.__dict__.setdefault("test_lock", threading.Lock())


def test_a_task_that_cannot_be_stopped_is_left_as_it_was(client, worker):
    # A task waiting for a Lock that another task holds: no gentle rung reaches
    # it. The stop must say so, name the worker, and change nothing.
    address, pid = worker
    release = distributed.Event("release-the-lock", client=client)

    def hold():
        with _worker_lock():
            release.wait(60)
        return "held"

    def wait_for_it():
        with _worker_lock():
            return "got it"

    holder = client.submit(hold, key="holder", workers=[address], pure=False)
    wait_until(lambda: client.run(_blocking_kind, "holder")[address] == "condition",
               timeout=30, interval=0.01, what="the holder to hold the lock")
    waiter = start(client, wait_for_it, "waiter", address, "lock")

    with pytest.raises(KillTimeout, match=f"worker {address}: could not stop Dask task "
                                          "'waiter'.*only restarting the worker"):
        stop(waiter, timeout=5)
    release.set()
    assert holder.result(timeout=30) == "held"
    assert waiter.result(timeout=30) == "got it"
    assert client.run(os.getpid)[address] == pid


def test_stopping_a_task_that_is_not_running_says_so(client, worker):
    address, _ = worker
    done = client.submit(lambda: 1, key="finished-already", workers=[address])
    assert done.result(timeout=30) == 1
    with pytest.raises(NoSuchTask, match="'finished-already' is not running on any "
                                         "worker \\(its future is finished\\)"):
        stop(done)
    with pytest.raises(NoSuchTask, match="'no-such-key' is not running"):
        stop("no-such-key", client)
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        stop(done, timeout=0)


def test_worker_threads_shows_what_each_thread_runs(client, worker):
    address, _ = worker
    future = start(client, sleep_loop, "runaway-listed", address, "sleep")
    try:
        listing = worker_threads(client)
        assert list(listing) == [address]
        (row,) = [r for r in listing[address] if r["dask_key"] == "runaway-listed"]
        assert row["state_kind"] == "sleep" and row["killable"]
        assert "Dask" in row["name"]
    finally:
        stop(future)


def limited_sleep():
    """A task that limits its own blocking call, as a user would."""
    from ipy_threadkill import TimeLimitExceeded, time_limit
    try:
        with time_limit(0.3):
            time.sleep(60)
    except TimeLimitExceeded as exc:
        return str(exc)
    return "not stopped"


def test_a_time_limit_inside_a_task_stops_the_block_and_keeps_the_worker(client, worker):
    _, pid = worker
    futures = [client.submit(limited_sleep, pure=False) for _ in range(2)]
    results = client.gather(futures)
    assert all(r.startswith("time limit of 0.3 s exceeded") and "sleeping" in r
               for r in results), results
    assert client.submit(os.getpid, pure=False).result(timeout=30) == pid
