/*
 * ipy_threadkill._native: a call that a queued exception cannot escape.
 *
 * An exception queued for a thread from another fires at the thread's next
 * check point, and the first instruction of every Python function is one: a
 * context manager's __exit__, entered as its block ends, would let it escape
 * there, before any `try` of its own, and skip its cleanup. Called from C
 * through call_shielded(), such an exception comes back to the function as an
 * argument instead.
 */
#include "_native.h"

/* Far more than can come: after the first landing the function is past its
 * first instruction, and only a killer that has not yet seen it finish raises. */
#define SHIELD_TRIES 4

/* The exception set in this thread, taken out of it as one object. */
static PyObject *
take_exception(void)
{
#ifdef THREADKILL_HAVE_RAISED_EXCEPTION
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *tb;

    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL)
        PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
#endif  /* THREADKILL_HAVE_RAISED_EXCEPTION */
}

/* call_shielded(func, shield, *args) -> func(*args)
 * While the call raises an instance of the exception class `shield`, call
 * again as func(*args, landed=(every such exception so far)). They are held
 * until the last call has returned: dropped earlier, a swallowed exception's
 * finalizer could queue it once more. */
PyObject *
native_call_shielded(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *func, *shield, *call_args, *landed, *kwargs = NULL, *result = NULL;
    int tries;

    if (PyTuple_GET_SIZE(args) < 2) {
        PyErr_SetString(PyExc_TypeError, "call_shielded(func, shield, *args)");
        return NULL;
    }
    func = PyTuple_GET_ITEM(args, 0);
    shield = PyTuple_GET_ITEM(args, 1);
    if (!PyExceptionClass_Check(shield)) {
        PyErr_SetString(PyExc_TypeError, "shield must be an exception class");
        return NULL;
    }
    call_args = PyTuple_GetSlice(args, 2, PyTuple_GET_SIZE(args));
    landed = PyList_New(0);
    if (call_args == NULL || landed == NULL)
        goto error;
    result = PyObject_Call(func, call_args, NULL);
    for (tries = 1; result == NULL && tries < SHIELD_TRIES
                    && PyErr_ExceptionMatches(shield); tries++) {
        PyObject *caught = take_exception(), *so_far;
        int failed = caught == NULL || PyList_Append(landed, caught) < 0;

        Py_XDECREF(caught);
        so_far = failed ? NULL : PyList_AsTuple(landed);
        Py_XSETREF(kwargs, so_far == NULL ? NULL
                           : Py_BuildValue("{sN}", "landed", so_far));
        if (kwargs == NULL)
            goto error;
        result = PyObject_Call(func, call_args, kwargs);
    }
error:
    Py_XDECREF(call_args);
    Py_XDECREF(kwargs);
    Py_XDECREF(landed);
    return result;
}
