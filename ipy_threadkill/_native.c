/*
 * ipy_threadkill._native: the mechanisms a kill is made of.
 *
 * Which of them to use, when, and what to tell the user is decided in Python
 * (engine.py, _force.py). Everything here is one small primitive, each
 * mechanism in its own file; this one is the module: its method table and
 * its initialisation. What exists on which platform and Python version is
 * decided in _platform.h.
 *
 *   raise_in_thread(ident, exc_type)   queue an asynchronous exception
 *   raise_in_thread_within(...)        the same, only while a given frame is on
 *                                      the thread's stack (checked atomically)
 *   rearm(exc_type)                    finalizer of the exceptions we raise: queue
 *                                      it again in this thread if policy says so
 *   raise_in_frame(...)                3.13t: the same, only while a given frame is
 *                                      the one the thread runs (_stopped_world.c)
 *   exception_state(ident)             (exception pending?, exception being handled)
 *                                      (_async_exception.c; on 3.13t, read with
 *                                      the world stopped: _stopped_world.c)
 *   call_shielded(func, shield, *args) call func; an exception of class shield
 *                                      that lands at its first instruction is
 *                                      handed back to it (_shielded_call.c)
 *   line_raise(ident, exc_type)        3.9/3.10: raise at the thread's next line
 *                                      (_line_raise.c)
 *   interrupt_syscall(...)             Linux: end one blocked system call with a
 *                                      chosen result, checked register by register
 *   claim_signal()                     the real-time signal, claimed if not yet
 *   interrupt_signal()                 the real-time signal in use, or None
 *   release_signal()                   restore that signal's previous action
 *                                      (_syscall_interrupt.c)
 *   force_cancel(...), force_signal(), lock_semaphore(lock),
 *   forget_thread_handle(...)          the forced cancel (_force.c)
 *   SYSCALLS                           {name: number} for this architecture
 *                                      (_syscall_table.c)
 */
#include "_native.h"

static PyMethodDef native_methods[] = {
    {"raise_in_thread", native_raise_in_thread, METH_VARARGS,
     "raise_in_thread(ident, exc_type) -> int\n"
     "Queue exc_type (a class, or None to clear) in thread ident; return the number\n"
     "of thread states changed."},
    {"set_rearm_policy", native_set_rearm_policy, METH_O,
     "set_rearm_policy(policy)\n"
     "policy(exc_type) -> bool decides whether rearm() queues exc_type again."},
    {"rearm", native_rearm, METH_O,
     "rearm(exc_type)\n"
     "Finalizer of exceptions raised in victims: re-queue exc_type in this thread\n"
     "if the policy says so."},
    {"call_shielded", native_call_shielded, METH_VARARGS,
     "call_shielded(func, shield, *args) -> func(*args)\n"
     "While the call raises an instance of shield (an exception queued from another\n"
     "thread, landing at its first instruction), call again with\n"
     "landed=(those exceptions)."},
#ifdef THREADKILL_HAVE_LINE_RAISE
    {"line_raise", native_line_raise, METH_VARARGS,
     "line_raise(ident, exc_type) -> None\n"
     "Raise exc_type at each new line thread ident runs (None stops it); for\n"
     "loops that swallow exceptions on interpreters before 3.11."},
#endif  /* THREADKILL_HAVE_LINE_RAISE */
#ifdef THREADKILL_HAVE_THREAD_QUERIES
    {"raise_in_thread_within", native_raise_in_thread_within, METH_VARARGS,
     "raise_in_thread_within(ident, exc_type, frame) -> bool\n"
     "Queue exc_type in thread ident only if frame is on its stack; return whether\n"
     "it did."},
    {"exception_state", native_exception_state, METH_VARARGS,
     "exception_state(ident) -> (pending, handling)\n"
     "Whether an asynchronous exception is queued for the thread, and the exception\n"
     "it is handling now or None. ValueError if no thread has that ident."},
#endif  /* THREADKILL_HAVE_THREAD_QUERIES */
#ifdef THREADKILL_STOPPED_WORLD
    {"raise_in_frame", native_raise_in_frame, METH_VARARGS,
     "raise_in_frame(ident, exc_type, frame) -> bool\n"
     "Queue exc_type in thread ident only if frame is the innermost it runs;\n"
     "return whether it did. 3.13t (no GIL)."},
#endif  /* THREADKILL_STOPPED_WORLD */
#ifdef THREADKILL_HAVE_INTERRUPT
    {"interrupt_syscall", native_interrupt_syscall, METH_VARARGS,
     "interrupt_syscall(tid, nr, args, sp, pc, result, timeout) -> bool\n"
     "End the system call thread tid is blocked in with result, if it matches;\n"
     "return whether it did. Linux only."},
    {"claim_signal", native_claim_signal, METH_NOARGS,
     "claim_signal() -> int\n"
     "The real-time signal used for interruptions, installing its handler if needed;\n"
     "OSError if none is free. Linux only."},
    {"interrupt_signal", native_interrupt_signal, METH_NOARGS,
     "interrupt_signal() -> int or None\nThe real-time signal in use, if any."},
    {"release_signal", native_release_signal, METH_NOARGS,
     "release_signal() -> bool\nRestore the real-time signal's previous action."},
#endif  /* THREADKILL_HAVE_INTERRUPT */
#ifdef THREADKILL_HAVE_FORCE
    {"force_cancel", force_cancel, METH_VARARGS,
     "force_cancel(ident, tid, nr, args, sp, pc, cancel_signal, timeout) -> bool\n"
     "End the thread blocked in system call nr (as /proc showed it) and dispose of\n"
     "its thread state, holding the GIL throughout, by a signal whose handler checks\n"
     "it interrupted that call (cancel_signal: glibc's SIGCANCEL). False if it moved on."},
    {"force_signal", force_signal, METH_NOARGS,
     "force_signal() -> int\nThe real-time signal force_cancel uses (chosen on first call)."},
#ifdef FORCE_LOCK_SEMAPHORE
    {"lock_semaphore", force_lock_semaphore, METH_O,
     "lock_semaphore(lock) -> int\n"
     "Address of the semaphore a _thread.lock/RLock waiter sleeps on (3.9-3.12)."},
#endif  /* FORCE_LOCK_SEMAPHORE */
#ifdef FORCE_THREAD_HANDLES
    {"forget_thread_handle", force_forget_thread_handle, METH_VARARGS,
     "forget_thread_handle(handle, ident, unlink) -> bool\n"
     "3.13: whether a thread's _ThreadHandle is on the list interpreter exit joins;\n"
     "with unlink, take it off (for a thread that was cancelled)."},
#endif  /* FORCE_THREAD_HANDLES */
#endif  /* THREADKILL_HAVE_FORCE */
    {NULL, NULL, 0, NULL}
};

/* Returns 0, or -1 with an exception set. */
static int
native_exec(PyObject *module)
{
    if (interrupt_init() < 0)
        return -1;
    return add_syscall_table(module);
}

static int
native_traverse(PyObject *module, visitproc visit, void *arg)
{
    Py_VISIT(((native_state *)PyModule_GetState(module))->rearm_policy);
    return 0;
}

static int
native_clear(PyObject *module)
{
    Py_CLEAR(((native_state *)PyModule_GetState(module))->rearm_policy);
    return 0;
}

static PyModuleDef_Slot native_slots[] = {
    {Py_mod_exec, native_exec},
#ifdef THREADKILL_FREE_THREADED
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif  /* THREADKILL_FREE_THREADED */
    {0, NULL}
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "ipy_threadkill._native",
    .m_doc = "Kill primitives: asynchronous exceptions, system-call interruption.",
    .m_size = sizeof(native_state),
    .m_methods = native_methods,
    .m_slots = native_slots,
    .m_traverse = native_traverse,
    .m_clear = native_clear,
};

PyMODINIT_FUNC
PyInit__native(void)
{
    return PyModuleDef_Init(&native_module);
}
