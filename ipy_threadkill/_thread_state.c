/*
 * ipy_threadkill._native: other threads' thread states, read with the GIL held
 * (which keeps each of them from changing, or going away, meanwhile). Shared by
 * the asynchronous exceptions, the line-level raise and the forced cancel.
 */
#include "_native.h"

#ifdef THREADKILL_HAVE_EXCEPTION_STATE
#include <pthread.h>
#include <time.h>

/* The thread state of thread `ident` in this interpreter, or NULL. */
PyThreadState *
find_thread_state(unsigned long ident)
{
    PyThreadState *tstate = PyInterpreterState_ThreadHead(PyInterpreterState_Get());

    for (; tstate != NULL; tstate = PyThreadState_Next(tstate)) {
        if (tstate->thread_id == ident)
            return tstate;
    }
    return NULL;
}

/* The same, or NULL with ValueError set if no thread state has that ident. */
PyThreadState *
thread_state_or_error(unsigned long ident)
{
    PyThreadState *tstate = find_thread_state(ident);

    if (tstate == NULL)
        PyErr_Format(PyExc_ValueError, "no thread state with ident %lu", ident);
    return tstate;
}

/* Whether thread state `tstate` (of thread `ident`) runs on OS thread
 * `native_id`. 3.11+ record it; before, glibc encodes the tid in the thread's
 * CPU clock id (clockid = ~tid << 3 | 6). The thread cannot have exited: it
 * still has its thread state, which it deletes before it ends. */
#if defined(THREADKILL_TSTATE_NATIVE_ID)
static int
same_os_thread(PyThreadState *tstate, unsigned long Py_UNUSED(ident), long native_id)
{
    return (long)tstate->native_thread_id == native_id;
}
#elif defined(THREADKILL_GLIBC)
static int
same_os_thread(PyThreadState *Py_UNUSED(tstate), unsigned long ident, long native_id)
{
    clockid_t clock;

    if (pthread_getcpuclockid((pthread_t)ident, &clock) != 0)
        return 0;
    return (long)~(clock >> 3) == native_id;
}
#else
static int
same_os_thread(PyThreadState *Py_UNUSED(tstate), unsigned long Py_UNUSED(ident),
               long Py_UNUSED(native_id))
{
    return 1;               /* cannot tell: the Python-level check must do */
}
#endif  /* how a thread state's OS thread is known */

/* Whether thread `ident` has a thread state and still runs on OS thread
 * `native_id`: idents are recycled at once, so a caller that identified the
 * thread earlier checks this with no bytecode run before it acts. */
int
runs_on_os_thread(unsigned long ident, long native_id)
{
    PyThreadState *tstate = find_thread_state(ident);

    return tstate != NULL && same_os_thread(tstate, ident, native_id);
}

/* Whether an asynchronous exception is queued for `tstate`. */
int
async_exc_pending(PyThreadState *tstate)
{
    return tstate->async_exc != NULL;
}

/* The exception a thread is handling (in except, finally or __exit__), found the
 * way sys.exc_info() finds it but for another thread. Borrowed; NULL for none. */
PyObject *
handled_exception(PyThreadState *tstate)
{
    _PyErr_StackItem *item = tstate->exc_info;

    while (item != NULL) {
        if (item->exc_value != NULL && item->exc_value != Py_None)
            return item->exc_value;
        item = item->previous_item;
    }
    return NULL;
}
#else
/* Without the thread-state layout nothing can be checked: the Python-level
 * checks must do. */
int
runs_on_os_thread(unsigned long Py_UNUSED(ident), long Py_UNUSED(native_id))
{
    return 1;
}

int
async_exc_pending(PyThreadState *Py_UNUSED(tstate))
{
    return 0;
}
#endif  /* THREADKILL_HAVE_EXCEPTION_STATE */
