/*
 * ipy_threadkill._native: what this build can do, decided once.
 *
 * Every test of the operating system, the architecture and the Python version
 * lives here and becomes a feature macro; the other files test only those
 * macros, each choosing whole definitions (or a stub) by them, and the method
 * table in _native.c lists a function only where its feature is on. Python
 * asks hasattr(_native, ...). A new interpreter or platform is ported here.
 */
#ifndef IPY_THREADKILL_PLATFORM_H
#define IPY_THREADKILL_PLATFORM_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>               /* PY_VERSION_HEX, Py_GIL_DISABLED, the libc's macros */


/* Functions one file of the module shares with another are no interface of it:
 * hidden, like the static functions they once were, so the shared object still
 * exports PyInit__native alone, and no other library's symbol of the same name
 * can stand in for one of them (signal handlers call some). */
#if defined(__GNUC__)
#  define THREADKILL_INTERNAL __attribute__((visibility("hidden")))
#else
#  define THREADKILL_INTERNAL
#endif  /* __GNUC__ */


/* ---------------------------------------------------------------------------
 * Operating system and architecture
 */

#if defined(__linux__) && defined(__x86_64__)
#  define THREADKILL_LINUX_X86_64 1
#elif defined(__linux__) && defined(__aarch64__)
#  define THREADKILL_LINUX_AARCH64 1
#endif  /* operating system and architecture */

#if defined(__linux__) && defined(__GLIBC__)
#  define THREADKILL_GLIBC 1
#endif  /* __linux__ && __GLIBC__ */

/* Interrupting a system call needs Linux (tgkill, /proc/<tid>/syscall) and an
 * architecture whose signal frame we know how to check and rewrite. */
#if defined(THREADKILL_LINUX_X86_64) || defined(THREADKILL_LINUX_AARCH64)
#  define THREADKILL_HAVE_INTERRUPT 1
#endif  /* THREADKILL_LINUX_X86_64 || THREADKILL_LINUX_AARCH64 */


/* ---------------------------------------------------------------------------
 * Python version
 */

#if PY_VERSION_HEX < 0x030A0000
static inline PyObject *
Py_NewRef(PyObject *obj)                    /* added in 3.10 */
{
    Py_INCREF(obj);
    return obj;
}
#endif  /* < 3.10 */

/* The free-threaded build (3.13t+): no GIL keeps other threads still. The
 * module says it needs none (Py_mod_gil), or importing it turns the GIL on for
 * the whole process; what reads other threads' states is left out here. */
#if defined(Py_GIL_DISABLED)
#  define THREADKILL_FREE_THREADED 1
#endif  /* Py_GIL_DISABLED */

/* Reading another thread's exception state needs the PyThreadState layout of the
 * default (GIL) build; 3.9 to 3.15 all keep exc_info and async_exc in it. */
#if !defined(Py_GIL_DISABLED) && PY_VERSION_HEX >= 0x03090000 && PY_VERSION_HEX < 0x03100000
#  define THREADKILL_HAVE_EXCEPTION_STATE 1
#endif  /* GIL build, 3.9 to 3.15 */

/* 3.13t: the same reads of another thread's exception state and frames, made
 * with every other thread stopped (_stopped_world.c); the layout is 3.13's. */
#if defined(THREADKILL_FREE_THREADED) && PY_VERSION_HEX >= 0x030D0000 \
    && PY_VERSION_HEX < 0x030E0000
#  define THREADKILL_STOPPED_WORLD 1
#endif  /* free-threaded 3.13 */

/* 3.12+: the set exception is one object (PyErr_GetRaisedException). */
#if PY_VERSION_HEX >= 0x030C0000
#  define THREADKILL_HAVE_RAISED_EXCEPTION 1
#endif  /* >= 3.12 */

/* exception_state() and raise_in_thread_within(), by either way. */
#if defined(THREADKILL_HAVE_EXCEPTION_STATE) || defined(THREADKILL_STOPPED_WORLD)
#  define THREADKILL_HAVE_THREAD_QUERIES 1
#endif  /* THREADKILL_HAVE_EXCEPTION_STATE || THREADKILL_STOPPED_WORLD */

/* In `while True: try: ... except BaseException: pass`, a queued exception
 * must fire outside the `try`, at the loop's jump. 3.9 and 3.10 skip the check
 * at a jump whose target starts a `try`, so there it only ever fires inside.
 * A trace function on the victim alone (_PyEval_SetTrace takes any thread
 * state) raises at the next line instead. (3.12+: sys.monitoring, in Python.) */
#if defined(THREADKILL_HAVE_EXCEPTION_STATE) && PY_VERSION_HEX < 0x030B0000
#  define THREADKILL_HAVE_LINE_RAISE 1
#endif  /* THREADKILL_HAVE_EXCEPTION_STATE && < 3.11 */

/* 3.11+ record in a thread state the OS thread it runs on. */
#if PY_VERSION_HEX >= 0x030B0000
#  define THREADKILL_TSTATE_NATIVE_ID 1
#endif  /* >= 3.11 */

/* The forced cancel. glibc: a thread's ident is its pthread_t, and cancellation
 * unwinds. The thread-state layout of the GIL build, 3.9 to 3.14: it finds and
 * disposes of the victim's thread state, relying on the GIL to keep every
 * other thread out meanwhile. Not 3.15 (a pre-release): its thread states
 * carry a base frame of their own, and its thread handles are unread. */
#if defined(THREADKILL_HAVE_INTERRUPT) && defined(THREADKILL_GLIBC) \
    && defined(THREADKILL_HAVE_EXCEPTION_STATE) && PY_VERSION_HEX < 0x030F0000
#  define THREADKILL_HAVE_FORCE 1
#endif  /* THREADKILL_HAVE_INTERRUPT && THREADKILL_GLIBC && ... && < 3.15 */

#ifdef THREADKILL_HAVE_FORCE
/* Where a thread state points into its thread's C stack. */
#if PY_VERSION_HEX >= 0x030D0000
#  define FORCE_CURRENT_FRAME 1         /* 3.13: tstate->current_frame */
#elif PY_VERSION_HEX >= 0x030B0000
#  define FORCE_CFRAME_FRAMES 1         /* 3.11, 3.12: tstate->cframe->current_frame */
#elif PY_VERSION_HEX >= 0x030A0000
#  define FORCE_CFRAME_HEAP_FRAMES 1    /* 3.10: tstate->cframe, heap tstate->frame */
#else
#  define FORCE_HEAP_FRAMES 1           /* 3.9: heap tstate->frame */
#endif  /* version */

/* 3.11+: frames live in per-thread data-stack chunks that frame objects point into. */
#if PY_VERSION_HEX >= 0x030B0000
#  define FORCE_DATASTACK 1
#endif  /* >= 3.11 */

/* 3.9-3.12: a _thread.lock is {PyObject_HEAD; PyThread_type_lock} and the lock is
 * a sem_t. 3.13+ locks are PyMutex, whose waiters park on their own stacks. */
#if PY_VERSION_HEX < 0x030D0000
#  define FORCE_LOCK_SEMAPHORE 1
#endif  /* < 3.13 */

/* 3.12+ bind a thread state to its thread's GIL-state slot (_status.bound_gilstate),
 * and deleting a bound state clears that slot, which is thread-local. */
#if PY_VERSION_HEX >= 0x030C0000
#  define FORCE_BOUND_GILSTATE 1
#endif  /* >= 3.12 */

/* 3.12+: each C-to-Python call links an entry frame that lives on the C stack
 * into the frame chain; frames are relinked past it (internal frame layout). */
#if PY_VERSION_HEX >= 0x030C0000
#  define FORCE_CSTACK_FRAMES 1
#endif  /* >= 3.12 */

/* 3.14 marks those entry frames FRAME_OWNED_BY_INTERPRETER, a new owner below
 * FRAME_OWNED_BY_CSTACK (3.12, 3.13: FRAME_OWNED_BY_CSTACK). */
#if PY_VERSION_HEX >= 0x030E0000
#  define FORCE_INTERPRETER_FRAMES 1
#endif  /* >= 3.14 */

/* 3.13, 3.14: interpreter exit joins every non-daemon thread's _ThreadHandle
 * found on a list that only the thread itself leaves, under the runtime's
 * HEAD_LOCK: reaching both takes the internal headers. */
#if PY_VERSION_HEX >= 0x030D0000
#  define FORCE_THREAD_HANDLES 1
#endif  /* >= 3.13 */
#endif  /* THREADKILL_HAVE_FORCE */

#endif  /* IPY_THREADKILL_PLATFORM_H */
