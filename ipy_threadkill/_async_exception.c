/*
 * ipy_threadkill._native: asynchronous exceptions. Queue one in a thread
 * (anywhere, or only while a given frame is on its stack), read a thread's
 * exception state, and re-queue a swallowed one from its finalizer.
 *
 * The gentle way to end a thread: the exception fires in the victim's own
 * Python code at its next check point, so its finally blocks and __exit__
 * methods run and its locks are released. They are C so that each check and
 * the raise it guards happen with the GIL held and no bytecode in between:
 * the thread cannot move on meanwhile.
 */
#include "_native.h"

#include <frameobject.h>          /* PyFrame_Type, PyFrame_GetBack before 3.11 */

/* raise_in_thread(ident, exc_type, native_id=0) -> int
 * Queue exc_type to be raised in thread `ident` (None clears a pending one).
 * With a native id, only if the thread with that ident still runs on that OS
 * thread: idents are recycled at once, and the check and the raise must happen
 * with no bytecode in between. Returns the number of thread states changed. */
PyObject *
native_raise_in_thread(PyObject *Py_UNUSED(module), PyObject *args)
{
    unsigned long ident;
    long native_id = 0;
    PyObject *exc_type;

    if (!PyArg_ParseTuple(args, "kO|l:raise_in_thread", &ident, &exc_type, &native_id))
        return NULL;
    if (exc_type == Py_None) {
        exc_type = NULL;
    }
    else if (!PyExceptionClass_Check(exc_type)) {
        /* An instance would reach the victim as a SystemError. */
        PyErr_SetString(PyExc_TypeError, "exc_type must be an exception class or None");
        return NULL;
    }
    if (native_id > 0 && !runs_on_os_thread(ident, native_id))
        return PyLong_FromLong(0);
    return PyLong_FromLong(PyThreadState_SetAsyncExc(ident, exc_type));
}

/* set_rearm_policy(callable or None): who decides whether rearm() re-raises. */
PyObject *
native_set_rearm_policy(PyObject *module, PyObject *policy)
{
    native_state *st = PyModule_GetState(module);

    if (policy != Py_None && !PyCallable_Check(policy)) {
        PyErr_SetString(PyExc_TypeError, "policy must be callable or None");
        return NULL;
    }
    Py_XSETREF(st->rearm_policy, policy == Py_None ? NULL : Py_NewRef(policy));
    Py_RETURN_NONE;
}

/* rearm(exc_type): installed as classmethod __del__ of the exceptions raised in
 * victims. When a handler swallows one, this runs in the victim, inside the
 * handler's cleanup. It is C so that no bytecode of ours runs after the
 * exception is queued again: it must fire at the victim's next check point (past
 * the swallowing `try`), not inside a Python __del__, which would only print it.
 * A finalizer must not fail, so errors of the policy are reported as unraisable. */
PyObject *
native_rearm(PyObject *module, PyObject *exc_type)
{
    native_state *st = PyModule_GetState(module);
    PyObject *verdict;
    int again;

    if (st->rearm_policy == NULL || !PyExceptionClass_Check(exc_type))
        Py_RETURN_NONE;
#ifdef THREADKILL_FREE_THREADED
    /* Objects die later there (reference counts are merged at a collection):
     * one of ours can die while the interpreter finalizes, when the policy's
     * module is gone and no thread is to be killed any more. */
    if (Py_IsFinalizing())
        Py_RETURN_NONE;
#endif  /* THREADKILL_FREE_THREADED */
    if (async_exc_pending(PyThreadState_Get()))
        Py_RETURN_NONE;         /* the killer queued one already: it fires next */
    verdict = PyObject_CallOneArg(st->rearm_policy, exc_type);
    if (verdict == NULL && PyErr_ExceptionMatches(exc_type)) {
        /* The killer's exception arrived while the policy ran: it was meant
         * for the victim's code, so queue it again rather than lose it here. */
        PyErr_Clear();
        again = 1;
    }
    else {
        again = verdict == NULL ? -1 : PyObject_IsTrue(verdict);
    }
    Py_XDECREF(verdict);
    if (again < 0) {
        PyErr_WriteUnraisable(st->rearm_policy);
        Py_RETURN_NONE;
    }
    if (again)
        PyThreadState_SetAsyncExc(PyThread_get_thread_ident(), exc_type);
    Py_RETURN_NONE;
}

#ifdef THREADKILL_HAVE_EXCEPTION_STATE
/* raise_in_thread_within(ident, exc_type, frame) -> bool
 * Queue exc_type in thread `ident` only if `frame` is on its stack. Checked and
 * queued without running any bytecode, so the thread cannot leave the frame in
 * between (it needs the GIL we hold to run Python). Stopping a pool task uses
 * it: a raise that lands just after the task returned would kill the worker. */
PyObject *
native_raise_in_thread_within(PyObject *Py_UNUSED(module), PyObject *args)
{
    unsigned long ident;
    PyObject *exc_type, *boundary;
    PyThreadState *tstate;
    PyFrameObject *frame, *back;
    int found = 0;

    if (!PyArg_ParseTuple(args, "kOO!:raise_in_thread_within", &ident, &exc_type,
                          &PyFrame_Type, &boundary))
        return NULL;
    if (!PyExceptionClass_Check(exc_type)) {
        PyErr_SetString(PyExc_TypeError, "exc_type must be an exception class");
        return NULL;
    }
    tstate = find_thread_state(ident);
    if (tstate == NULL)
        Py_RETURN_FALSE;
    frame = PyThreadState_GetFrame(tstate);         /* new reference or NULL */
    while (frame != NULL && !found) {
        found = (PyObject *)frame == boundary;
        back = PyFrame_GetBack(frame);
        Py_DECREF(frame);
        frame = back;
    }
    Py_XDECREF(frame);
    if (found)
        PyThreadState_SetAsyncExc(ident, exc_type);
    return PyBool_FromLong(found);
}

/* (pending, handling): whether an asynchronous exception is queued for thread
 * `ident`, and the exception it is handling now (or None). ValueError if no
 * thread state has that ident. The GIL keeps the target from changing either. */
PyObject *
native_exception_state(PyObject *Py_UNUSED(module), PyObject *args)
{
    unsigned long ident;
    PyThreadState *tstate;
    PyObject *handling;

    if (!PyArg_ParseTuple(args, "k:exception_state", &ident))
        return NULL;
    tstate = thread_state_or_error(ident);
    if (tstate == NULL)
        return NULL;
    handling = handled_exception(tstate);
    return Py_BuildValue("(OO)", async_exc_pending(tstate) ? Py_True : Py_False,
                         handling != NULL ? handling : Py_None);
}
#endif  /* THREADKILL_HAVE_EXCEPTION_STATE */
