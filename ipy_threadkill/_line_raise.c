/*
 * ipy_threadkill._native: raising at the next line (3.9, 3.10).
 *
 * Where the interpreter skips the check for a queued exception at a loop's
 * jump (see THREADKILL_HAVE_LINE_RAISE), a trace function on the victim's
 * thread state alone raises the exception at the next line it runs.
 */
#include "_native.h"

#ifdef THREADKILL_HAVE_LINE_RAISE
#include <frameobject.h>          /* PyTrace_LINE, PyFrameObject */

/* The trace function; `how` is (exc_type, policy). At each new line, raise
 * exc_type unless the thread is handling one already (its cleanup runs
 * undisturbed) or the policy says the thread no longer resists (it is in
 * threading's own shutdown, or past the call being stopped). */
static int
line_raise(PyObject *how, PyFrameObject *Py_UNUSED(frame), int what,
           PyObject *Py_UNUSED(arg))
{
    PyObject *exc_type = PyTuple_GET_ITEM(how, 0);
    PyObject *policy = PyTuple_GET_ITEM(how, 1);
    PyThreadState *tstate = PyThreadState_Get();
    PyObject *handling, *verdict, *queued;
    int again;

    if (what != PyTrace_LINE)
        return 0;
    handling = handled_exception(tstate);
    if (handling != NULL && PyObject_TypeCheck(handling, (PyTypeObject *)exc_type))
        return 0;
    /* A queued exception would fire inside the policy's own code: hold it
     * aside while the policy runs (only this thread reads or writes it now). */
    queued = tstate->async_exc;
    tstate->async_exc = NULL;
    verdict = PyObject_CallOneArg(policy, exc_type);
    again = verdict == NULL ? -1 : PyObject_IsTrue(verdict);
    Py_XDECREF(verdict);
    if (again > 0) {
        /* Raised here instead: a queued copy left behind would fire again at
         * the start of the next cleanup handler, and on 3.9/3.10 skip the
         * __exit__ of a `with` (a lock left held). */
        Py_XDECREF(queued);
        Py_CLEAR(tstate->async_exc);
        PyErr_SetNone(exc_type);
        return -1;
    }
    if (tstate->async_exc == NULL)
        tstate->async_exc = queued;
    else
        Py_XDECREF(queued);
    PyErr_Clear();
    return 0;
}


/* line_raise(ident, exc_type or None): start (or stop, with None) raising
 * exc_type at every new line run by thread `ident`. ValueError if unknown. */
PyObject *
native_line_raise(PyObject *module, PyObject *args)
{
    native_state *st = PyModule_GetState(module);
    unsigned long ident;
    PyObject *exc_type, *how;
    PyThreadState *tstate;
    int rc;

    if (!PyArg_ParseTuple(args, "kO:line_raise", &ident, &exc_type))
        return NULL;
    if (exc_type != Py_None && !PyExceptionClass_Check(exc_type)) {
        PyErr_SetString(PyExc_TypeError, "exc_type must be an exception class or None");
        return NULL;
    }
    tstate = thread_state_or_error(ident);
    if (tstate == NULL)
        return NULL;
    if (exc_type == Py_None) {
        if (tstate->c_tracefunc != (Py_tracefunc)line_raise)
            Py_RETURN_NONE;         /* never ours to remove */
        rc = _PyEval_SetTrace(tstate, NULL, NULL);
    }
    else {
        if (st->rearm_policy == NULL) {
            PyErr_SetString(PyExc_ValueError, "set_rearm_policy() first");
            return NULL;
        }
        how = PyTuple_Pack(2, exc_type, st->rearm_policy);
        if (how == NULL)
            return NULL;
        rc = _PyEval_SetTrace(tstate, (Py_tracefunc)line_raise, how);
        Py_DECREF(how);
    }
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}
#endif  /* THREADKILL_HAVE_LINE_RAISE */
