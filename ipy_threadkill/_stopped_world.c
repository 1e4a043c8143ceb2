/*
 * ipy_threadkill._native: other threads' states on the free-threaded build.
 *
 * Without a GIL, every other thread runs while we look at it: its exception
 * stack and its frames change under us and may be freed. CPython reads them
 * (sys._current_frames(), sys._current_exceptions()) with the world stopped
 * and the runtime's head lock held. The one stop-the-world an extension can
 * reach is PyUnstable_GC_VisitObjects: it stops every other thread of the
 * interpreter, takes the head lock and calls back. The first call back does
 * the whole job and ends the visit: the check and the raise it guards happen
 * with no other thread running, as they did under the GIL.
 *
 * Inside the visit nothing may be allocated (the object heaps are being
 * walked) and the head lock is already ours (PyThreadState_SetAsyncExc would
 * take it again): so the raise is the one that function makes, its atomic
 * exchange and eval-breaker bit, and references are dropped after the visit.
 */
#include "_native.h"

#ifdef THREADKILL_STOPPED_WORLD
#ifndef Py_BUILD_CORE
#  define Py_BUILD_CORE 1
#endif  /* Py_BUILD_CORE */
#include "internal/pycore_ceval.h"          /* _Py_set_eval_breaker_bit */
#include "internal/pycore_frame.h"          /* _PyInterpreterFrame, struct _frame */
#include "internal/pycore_interp.h"         /* interp->threads.head */

typedef struct {
    unsigned long ident;
    PyObject *boundary;         /* raise: this frame must be on its stack */
    int innermost;              /* raise: ... and be its innermost */
    PyObject *exc_type;         /* raise: what to queue */
    int found;                  /* a thread state has that ident */
    int done;                   /* raise_within: queued */
    int pending;                /* an asynchronous exception is queued */
    PyObject *handling;         /* new reference, or NULL */
    PyObject *replaced;         /* the exception the raise replaced, to drop */
} stopped_request;

/* Called with every other thread stopped and the head lock held. */
static PyThreadState *
stopped_thread_state(unsigned long ident)
{
    PyThreadState *tstate = PyInterpreterState_Get()->threads.head;

    for (; tstate != NULL; tstate = tstate->next) {
        if (tstate->thread_id == ident)
            return tstate;
    }
    return NULL;
}

static int
on_frame_stack(PyThreadState *tstate, PyObject *boundary, int innermost)
{
    _PyInterpreterFrame *live = ((PyFrameObject *)boundary)->f_frame;

    /* A frame not yet started (the thread is entering a call) is not the one
     * it runs: sys._getframe() and tracebacks skip it too. */
    if (innermost)
        return _PyThreadState_GetFrame(tstate) == live;
    for (_PyInterpreterFrame *f = tstate->current_frame; f != NULL; f = f->previous) {
        if (f == live)
            return 1;
    }
    return 0;
}

/* The exception `tstate` is handling, as sys.exc_info() finds it. Borrowed. */
static PyObject *
handled(PyThreadState *tstate)
{
    for (_PyErr_StackItem *item = tstate->exc_info; item != NULL; item = item->previous_item) {
        if (item->exc_value != NULL && item->exc_value != Py_None)
            return item->exc_value;
    }
    return NULL;
}

/* Whether that is an instance of `exc_type`: a subtype check, no Python code. */
static int
handling_one_of(PyThreadState *tstate, PyObject *exc_type)
{
    PyObject *exc = handled(tstate);

    return exc != NULL && PyObject_TypeCheck(exc, (PyTypeObject *)exc_type);
}

static int
in_stopped_world(PyObject *Py_UNUSED(object), void *arg)
{
    stopped_request *req = arg;
    PyThreadState *tstate = stopped_thread_state(req->ident);

    if (tstate == NULL)
        return 0;
    req->found = 1;
    if (req->exc_type != NULL) {
        /* The caller looked (exception_state) in an earlier stop: by now the
         * victim may have taken the last exception into a handler, where a
         * second one would cut its cleanup short. */
        if (_Py_atomic_load_ptr(&tstate->async_exc) != NULL)
            return 0;
        if (handling_one_of(tstate, req->exc_type))
            return 0;
        if (on_frame_stack(tstate, req->boundary, req->innermost)) {
            req->replaced = _Py_atomic_exchange_ptr(&tstate->async_exc,
                                                    Py_NewRef(req->exc_type));
            _Py_set_eval_breaker_bit(tstate, _PY_ASYNC_EXCEPTION_BIT);
            req->done = 1;
        }
        return 0;
    }
    req->pending = _Py_atomic_load_ptr(&tstate->async_exc) != NULL;
    req->handling = Py_XNewRef(handled(tstate));
    return 0;           /* one call does it all: end the visit */
}

static void
with_world_stopped(stopped_request *req)
{
    PyUnstable_GC_VisitObjects(in_stopped_world, req);
    Py_XDECREF(req->replaced);
}

/* Parse (ident, exc_type, frame) per `format`, then check and queue with the
 * world stopped; `innermost` asks for the frame to be the one the thread runs. */
static PyObject *
raise_with_world_stopped(PyObject *args, const char *format, int innermost)
{
    stopped_request req = {0};

    if (!PyArg_ParseTuple(args, format, &req.ident, &req.exc_type,
                          &PyFrame_Type, &req.boundary))
        return NULL;
    if (!PyExceptionClass_Check(req.exc_type)) {
        PyErr_SetString(PyExc_TypeError, "exc_type must be an exception class");
        return NULL;
    }
    req.innermost = innermost;
    with_world_stopped(&req);
    return PyBool_FromLong(req.done);
}

/* raise_in_thread_within(ident, exc_type, frame) -> bool: as on the GIL build
 * (_async_exception.c), checked and queued with the world stopped; and not
 * while an exception is pending or one of exc_type is being handled, which the
 * GIL build's caller checks just before (there nothing moves in between). */
PyObject *
native_raise_in_thread_within(PyObject *Py_UNUSED(module), PyObject *args)
{
    return raise_with_world_stopped(args, "kOO!:raise_in_thread_within", 0);
}

/* raise_in_frame(ident, exc_type, frame) -> bool
 * Queue exc_type in thread `ident` only while `frame` is the innermost frame
 * it runs, checked and queued with the world stopped. The exception then fires
 * at that frame's next check point or at the entry of what it calls next,
 * never deeper: a caller that saw the thread in its own code knows where.
 * Not while one is pending or being handled, as raise_in_thread_within. */
PyObject *
native_raise_in_frame(PyObject *Py_UNUSED(module), PyObject *args)
{
    return raise_with_world_stopped(args, "kOO!:raise_in_frame", 1);
}

/* exception_state(ident) -> (pending, handling): as on the GIL build, read
 * with the world stopped. ValueError if no thread state has that ident. */
PyObject *
native_exception_state(PyObject *Py_UNUSED(module), PyObject *args)
{
    stopped_request req = {0};
    PyObject *state;

    if (!PyArg_ParseTuple(args, "k:exception_state", &req.ident))
        return NULL;
    with_world_stopped(&req);
    if (!req.found)
        return PyErr_Format(PyExc_ValueError, "no thread state with ident %lu", req.ident);
    state = Py_BuildValue("(OO)", req.pending ? Py_True : Py_False,
                          req.handling != NULL ? req.handling : Py_None);
    Py_XDECREF(req.handling);
    return state;
}
#endif  /* THREADKILL_STOPPED_WORLD */
