"""Stop a running Dask task where it runs, and see every worker's threads.

    >>> from ipy_threadkill.dask import stop, worker_threads
    >>> stop(future)                  # the future ends with TaskStoppedError
    {'tcp://127.0.0.1:40321': TaskReport(...)}
    >>> worker_threads(client)        # {worker address: [thread, ...]}

``future.cancel()`` forgets a task but cannot end one that is already running
in a worker thread (dask/distributed#4694). stop() finds the worker threads
running the key (``Worker.active_threads``) and ends the task there with
stop_task(): TaskStopped is not a SystemExit, so the worker reports a failed
task and goes on, in the same process, with its data, where an asynchronous
SystemExit would take the worker process down (measured, see docs/scale.md).

Needs ``distributed`` (``pip install ipy_threadkill[dask]``), and
ipy_threadkill installed on the workers.
"""
import asyncio
import dataclasses
import functools

from . import _arguments
from .errors import KillTimeout, NoSuchTask, TaskStopped, ThreadKillError
from .tasks import stop_with


class TaskStoppedError(ThreadKillError):
    """What a stopped Dask task's future raises: the task was ended by stop()."""


class DaskTaskStopped(TaskStopped):
    """Raised in the worker thread; a TaskStopped there, so that ``except
    Exception`` in the task does not catch it. The worker pickles a failed
    task's exception for the client, and distributed's client cannot re-raise a
    BaseException: Future.result() then hangs or fails with an unrelated error
    (measured, distributed 2026.8.0). So it crosses over as TaskStoppedError."""

    def __reduce__(self):
        return TaskStoppedError, ("the task was stopped by ipy_threadkill.dask.stop()",)


def stop(future_or_key, client=None, timeout=2.0):
    """Stop the Dask task `future_or_key` (a Future or a key) wherever it runs.

    Returns {worker address: TaskReport} for every worker thread that was
    running it; its future then ends with TaskStoppedError (status 'error').
    `client` defaults to the future's, else the current one. Raises NoSuchTask (a
    LookupError) if no worker is running that key (pending, finished or
    unknown), KillTimeout naming the worker if a task would not stop within
    `timeout` seconds, InvalidArgument (a ValueError) for a bad timeout.
    """
    timeout = _arguments.seconds(timeout)
    key = getattr(future_or_key, "key", future_or_key)
    client = _client(client, future_or_key)
    outcomes = client.run(_stop_here, key, timeout)
    reports, failures = {}, []
    for address, found in sorted(outcomes.items()):
        for report, error in found:
            if error is not None:
                failures.append((address, error, report))
            else:
                reports[address] = report
    if failures:
        address, error, report = failures[0]
        raise KillTimeout(f"worker {address}: {error}", report)
    if not reports:
        status = getattr(future_or_key, "status", None)
        state = f" (its future is {status})" if status else ""
        raise NoSuchTask(f"Dask task {key!r} is not running on any worker{state}; "
                         "only a running task can be stopped")
    return reports


def worker_threads(client=None, *, include_kernel=False):
    """{worker address: [dict, ...]}: ipy_threadkill.threads() on every worker,
    as plain dicts (the ThreadInfo fields), each with 'dask_key': the key that
    thread is running, or None."""
    client = _client(client, None)
    return client.run(_threads_here, include_kernel)


def _client(client, future):
    if client is not None:
        return client
    client = getattr(future, "client", None)
    if client is not None:
        return client
    from distributed import default_client
    return default_client()


async def _stop_here(key, timeout, dask_worker):
    """On a worker: stop every thread running `key`; [(report, error text)]."""
    with dask_worker.active_threads_lock:
        idents = [ident for ident, running in dask_worker.active_threads.items()
                  if running == key]
    outcomes = []
    loop = asyncio.get_running_loop()
    for ident in idents:
        # The stop waits for the task to unwind: off the worker's event loop,
        # which must keep answering the scheduler meanwhile.
        try:
            report = await loop.run_in_executor(
                None, functools.partial(stop_with, DaskTaskStopped, ident, timeout))
            outcomes.append((report, None))
        except KillTimeout as exc:
            outcomes.append((exc.report, str(exc)))
        except NoSuchTask:
            pass                    # it finished between the lookup and the stop
        except ThreadKillError as exc:
            outcomes.append((None, str(exc)))
    return outcomes


def _threads_here(include_kernel, dask_worker):
    """On a worker: its threads as dicts, each with the Dask key it runs."""
    from .snapshot import threads
    with dask_worker.active_threads_lock:
        running = dict(dask_worker.active_threads)
    listed = []
    for info in threads(include_kernel=include_kernel):
        row = dataclasses.asdict(info)
        row["dask_key"] = running.get(info.ident)
        listed.append(row)
    return listed
