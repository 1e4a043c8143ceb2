/*
 * ipy_threadkill._native: what its files share. The module (_native.c) lists
 * the Python-facing functions each mechanism file defines; a function exists
 * only where its feature macro (_platform.h) is on. Each file's functions are
 * described where they are defined.
 */
#ifndef IPY_THREADKILL_NATIVE_H
#define IPY_THREADKILL_NATIVE_H

#include "_platform.h"

#include <errno.h>

typedef struct {
    PyObject *rearm_policy;     /* callable(exc_type) -> bool, or NULL */
} native_state;


/* Sets OSError from `err`, an error number held apart from errno: returned by
 * a pthread function, saved before later calls could overwrite errno, or
 * ETIMEDOUT for a wait that gave up. Returns -1. */
static inline int
set_os_error(int err)
{
    errno = err;
    PyErr_SetFromErrno(PyExc_OSError);
    return -1;
}


/* _thread_state.c: other threads' thread states (the GIL held). Without their
 * layout, the two checks that callers need everywhere answer "cannot tell". */
THREADKILL_INTERNAL int runs_on_os_thread(unsigned long ident, long native_id);
THREADKILL_INTERNAL int async_exc_pending(PyThreadState *tstate);
#ifdef THREADKILL_HAVE_EXCEPTION_STATE
THREADKILL_INTERNAL PyThreadState *find_thread_state(unsigned long ident);
THREADKILL_INTERNAL PyThreadState *thread_state_or_error(unsigned long ident);
THREADKILL_INTERNAL PyObject *handled_exception(PyThreadState *tstate);
#endif  /* THREADKILL_HAVE_EXCEPTION_STATE */


/* _async_exception.c: asynchronous exceptions, and their finalizer */
THREADKILL_INTERNAL PyObject *native_raise_in_thread(PyObject *module, PyObject *args);
THREADKILL_INTERNAL PyObject *native_set_rearm_policy(PyObject *module, PyObject *policy);
THREADKILL_INTERNAL PyObject *native_rearm(PyObject *module, PyObject *exc_type);
#ifdef THREADKILL_HAVE_THREAD_QUERIES
/* _async_exception.c on the GIL build, _stopped_world.c on 3.13t */
THREADKILL_INTERNAL PyObject *native_raise_in_thread_within(PyObject *module, PyObject *args);
THREADKILL_INTERNAL PyObject *native_exception_state(PyObject *module, PyObject *args);
#endif  /* THREADKILL_HAVE_THREAD_QUERIES */
#ifdef THREADKILL_STOPPED_WORLD
THREADKILL_INTERNAL PyObject *native_raise_in_frame(PyObject *module, PyObject *args);
#endif  /* THREADKILL_STOPPED_WORLD */


/* _shielded_call.c: a call a queued exception cannot escape at its start */
THREADKILL_INTERNAL PyObject *native_call_shielded(PyObject *module, PyObject *args);


/* _line_raise.c: raising at the next line (3.9, 3.10) */
#ifdef THREADKILL_HAVE_LINE_RAISE
THREADKILL_INTERNAL PyObject *native_line_raise(PyObject *module, PyObject *args);
#endif  /* THREADKILL_HAVE_LINE_RAISE */


/* _syscall_interrupt.c: ending one blocked system call (Linux) */
THREADKILL_INTERNAL int interrupt_init(void);
#ifdef THREADKILL_HAVE_INTERRUPT
THREADKILL_INTERNAL PyObject *native_interrupt_syscall(PyObject *module, PyObject *args);
THREADKILL_INTERNAL PyObject *native_claim_signal(PyObject *module, PyObject *ignored);
THREADKILL_INTERNAL PyObject *native_interrupt_signal(PyObject *module, PyObject *ignored);
THREADKILL_INTERNAL PyObject *native_release_signal(PyObject *module, PyObject *ignored);
#endif  /* THREADKILL_HAVE_INTERRUPT */


/* _syscall_table.c: the SYSCALLS constant */
THREADKILL_INTERNAL int add_syscall_table(PyObject *module);


/* _force.c: the forced cancel */
#ifdef THREADKILL_HAVE_FORCE
THREADKILL_INTERNAL PyObject *force_cancel(PyObject *module, PyObject *args);
THREADKILL_INTERNAL PyObject *force_signal(PyObject *module, PyObject *ignored);
#ifdef FORCE_LOCK_SEMAPHORE
THREADKILL_INTERNAL PyObject *force_lock_semaphore(PyObject *module, PyObject *lock);
#endif  /* FORCE_LOCK_SEMAPHORE */
#ifdef FORCE_THREAD_HANDLES
THREADKILL_INTERNAL PyObject *force_forget_thread_handle(PyObject *module, PyObject *args);
#endif  /* FORCE_THREAD_HANDLES */
#endif  /* THREADKILL_HAVE_FORCE */

#endif  /* IPY_THREADKILL_NATIVE_H */
