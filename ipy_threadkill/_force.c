/*
 * ipy_threadkill._native, forced cancel: end a thread that no gentle rung can
 * reach, and dispose of its thread state before anything can walk it.
 *
 *   force_cancel(ident, tid, nr, args, sp, pc, idle_switches, timeout) -> bool
 *   force_signal()            the real-time signal force_cancel uses
 *   lock_semaphore(lock)      3.9-3.12: address of the semaphore a Lock waits on
 *   forget_thread_handle(handle, ident, unlink)
 *                             3.13: take a dead thread off the exit-join list
 *
 * Whether a thread may be cancelled at all is decided in Python (_force.py):
 * it must sit in a system call, without the GIL, outside CPython's own locking.
 * Here the GIL is held from the last check to the disposal of the thread state,
 * so no Python code anywhere sees the thread half dead.
 *
 * How the thread is ended:
 *   - signal: a private real-time signal whose handler ends the thread with
 *     pthread_exit() only after checking, register by register, that it
 *     interrupted exactly the system call /proc showed (same checks as the
 *     interrupt rung in _native.c). A call that completed meanwhile fails the
 *     check and the thread goes on untouched.
 *   - cancel: pthread_cancel(), for a thread that blocks every signal (glibc
 *     never lets a thread block its cancellation signal). The thread must be in
 *     a cancellable system call at that instant: /proc must still show it in
 *     the same call, and not one context switch since the caller's reading
 *     (a while ago). A call that completes in the microseconds after that check
 *     would leave a cancel pending: that is the residual risk of this path.
 * Either way the thread unwinds like glibc's asynchronous cancellation: glibc's
 * own cleanup (sem_wait's waiter count) runs, nothing of Python's does.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "_blocked_call.h"
#include "_force.h"

/* glibc: a thread's ident is its pthread_t, and cancellation unwinds. The GIL
 * build only: the disposal relies on the GIL keeping every other thread out. */
#if defined(__linux__) && defined(__GLIBC__) \
    && (defined(__x86_64__) || defined(__aarch64__)) \
    && !defined(Py_GIL_DISABLED) \
    && PY_VERSION_HEX >= 0x03090000 && PY_VERSION_HEX < 0x030E0000
#  define THREADKILL_HAVE_FORCE 1
#endif  /* platform */

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
 * a sem_t. 3.13 locks are PyMutex, whose waiters park on their own stacks. */
#if PY_VERSION_HEX < 0x030D0000
#  define FORCE_LOCK_SEMAPHORE 1
#endif  /* < 3.13 */

/* 3.12+: each C-to-Python call links an entry frame that lives on the C stack
 * into the frame chain; frames are relinked past it (internal frame layout). */
#if PY_VERSION_HEX >= 0x030C0000
#  define FORCE_CSTACK_FRAMES 1
#endif  /* >= 3.12 */

/* 3.13: interpreter exit joins every non-daemon thread's _ThreadHandle found on
 * a list that only the thread itself leaves, under the runtime's HEAD_LOCK:
 * reaching both takes the internal headers. */
#if PY_VERSION_HEX >= 0x030D0000
#  define FORCE_THREAD_HANDLES 1
#endif  /* >= 3.13 */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#if defined(FORCE_CSTACK_FRAMES) || defined(FORCE_THREAD_HANDLES)
#  ifndef Py_BUILD_CORE
#    define Py_BUILD_CORE 1
#  endif
#endif  /* internal headers */
#ifdef FORCE_CSTACK_FRAMES
#  include "internal/pycore_frame.h"
#endif  /* FORCE_CSTACK_FRAMES */
#ifdef FORCE_THREAD_HANDLES
#  include "internal/pycore_llist.h"
#  include "internal/pycore_runtime.h"
#endif  /* FORCE_THREAD_HANDLES */

/* The blocked system call, as /proc/self/task/<tid>/syscall showed it. */
typedef blocked_call force_call;

enum { FORCE_IDLE, FORCE_ARMED, FORCE_FIRED, FORCE_DECLINED };

/* Written only while IDLE, by the killer, which holds the GIL throughout. */
static force_call force_target;
static atomic_int force_state = FORCE_IDLE;
static int force_signum = 0;                /* 0 until first use */


/* ---------------------------------------------------------------------------
 * Ending the OS thread
 */

/* Runs on the victim. Until the checks pass it touches only the request,
 * atomics, the signal frame and errno. Once they pass, the thread is known to
 * sit at the return of exactly the blocked call, with no GIL: it ends there by
 * unwinding, as glibc's asynchronous cancellation would (the unwinder was
 * loaded beforehand, see prime_unwinder). */
static void
force_handler(int signum, siginfo_t *info, void *context)
{
    int saved_errno = errno;
    int expected = FORCE_ARMED;

    (void)signum;
    if (atomic_load(&force_state) == FORCE_ARMED
        && info->si_code == SI_TKILL
        && info->si_pid == force_target.pid
        && (pid_t)syscall(SYS_gettid) == force_target.tid)
    {
        if (!frame_at_call((const ucontext_t *)context, &force_target)) {
            /* It had left that call: tell the killer not to wait any longer. */
            atomic_compare_exchange_strong(&force_state, &expected, FORCE_DECLINED);
        }
        else if (atomic_compare_exchange_strong(&force_state, &expected, FORCE_FIRED)) {
            pthread_exit(PTHREAD_CANCELED);
        }
    }
    errno = saved_errno;
}

static void *
exit_at_once(void *arg)
{
    pthread_exit(arg);
}

/* pthread_exit() loads libgcc_s with dlopen() on its first use, which must not
 * happen in a signal handler: do it once here, in a throwaway thread.
 * Returns 0, or -1 with an exception set. */
static int
prime_unwinder(void)
{
    static int primed = 0;
    pthread_t thread;
    int err;

    if (primed)
        return 0;
    err = pthread_create(&thread, NULL, exit_at_once, NULL);
    if (err == 0)
        err = pthread_join(thread, NULL);
    if (err != 0) {
        errno = err;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    primed = 1;
    return 0;
}

static void
force_sleep_us(long usec)
{
    struct timespec ts = {usec / 1000000, (usec % 1000000) * 1000};

    nanosleep(&ts, NULL);
}

/* Wait up to `limit_us` for the OS thread to be gone. Returns whether it is. */
static int
wait_thread_gone(pid_t pid, pid_t tid, long limit_us)
{
    for (long waited = 0; ; waited += 20) {
        if (syscall(SYS_tgkill, pid, tid, 0) != 0 && errno == ESRCH)
            return 1;
        if (waited >= limit_us)
            return 0;
        force_sleep_us(20);
    }
}

/* Whether /proc shows `call` still blocked in the same system call, same
 * arguments, stack pointer and return address. */
static int
still_blocked(const force_call *call)
{
    char path[64], text[512];
    unsigned long fields[9];
    char *cursor = text, *end;
    ssize_t size;
    int fd;

    snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)call->tid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    size = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (size <= 0)
        return 0;
    text[size] = '\0';
    for (int i = 0; i < 9; i++) {
        fields[i] = strtoul(cursor, &end, i == 0 ? 10 : 16);
        if (end == cursor)
            return 0;
        cursor = end;
    }
    return (long)fields[0] == call->nr && memcmp(&fields[1], call->args, sizeof(call->args)) == 0
        && fields[7] == call->sp && fields[8] == call->pc;
}

/* Signal the thread; its handler ends it if it still sits in `call`.
 * Returns 1 if the handler fired, 0 if not (nothing changed), -1 on error. */
static int
end_by_signal(const force_call *call, long limit_us)
{
    int expected = FORCE_ARMED, fired;

    if (claim_rt_signal(&force_signum, force_handler, NULL) < 0 || prime_unwinder() < 0)
        return -1;
    force_target = *call;
    atomic_store(&force_state, FORCE_ARMED);
    if (syscall(SYS_tgkill, call->pid, call->tid, force_signum) != 0) {
        int send_errno = errno;

        atomic_store(&force_state, FORCE_IDLE);
        if (send_errno == ESRCH)
            return 0;
        errno = send_errno;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    for (long waited = 0; atomic_load(&force_state) == FORCE_ARMED && waited < limit_us;
         waited += 20)
        force_sleep_us(20);
    /* Disarm; if the handler won the race, it fired or declined. */
    if (atomic_compare_exchange_strong(&force_state, &expected, FORCE_IDLE))
        return 0;
    fired = atomic_load(&force_state) == FORCE_FIRED;
    atomic_store(&force_state, FORCE_IDLE);
    return fired;
}

/* How many times the thread has been switched out, voluntarily or not (from
 * /proc/self/task/<tid>/status); -1 if unknown. A thread that woke up even once
 * since an earlier reading shows a larger number. */
static long long
context_switches(pid_t tid)
{
    char path[64], text[4096];
    const char *keys[] = {"\nvoluntary_ctxt_switches:", "\nnonvoluntary_ctxt_switches:"};
    long long total = 0;
    ssize_t size;
    int fd;

    snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (size <= 0)
        return -1;
    text[size] = '\0';
    for (int i = 0; i < 2; i++) {
        const char *field = strstr(text, keys[i]);
        if (field == NULL)
            return -1;
        total += strtoll(field + strlen(keys[i]), NULL, 10);
    }
    return total;
}

/* pthread_cancel the thread if /proc still shows it in `call` and it has not
 * run since it showed `switches` context switches: a thread that parked that
 * long is not about to leave its call in the next microseconds, where a
 * cancel would stay pending and fire later (e.g. in the GIL's wait).
 * Returns 1 if cancelled, 0 if it had moved on (nothing changed), -1 on error. */
static int
end_by_cancel(unsigned long ident, const force_call *call, long long switches)
{
    int err;

    if (prime_unwinder() < 0)
        return -1;
    if (switches < 0 || !still_blocked(call) || context_switches(call->tid) != switches)
        return 0;
    err = pthread_cancel((pthread_t)ident);
    if (err != 0) {
        errno = err;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return 1;
}


/* ---------------------------------------------------------------------------
 * Disposing of the dead thread's state
 *
 * The thread state stays in the interpreter's list after its thread is gone,
 * pointing into the freed stack. Before anything can walk it (the GIL is still
 * held), point it away from that stack, keep its frames where they are, and
 * let CPython clear and delete it: PyThreadState_Clear and PyThreadState_Delete
 * accept a thread state that is not the current one, unlink it under the
 * runtime's lock, and (3.9-3.12) run on_delete, which releases the Thread's
 * _tstate_lock. The frames and what they refer to are leaked on purpose:
 * their owners died with the C stack, so no reference count can be trusted.
 */

static PyThreadState *
force_find_tstate(unsigned long ident)
{
    PyThreadState *tstate = PyInterpreterState_ThreadHead(PyInterpreterState_Get());

    for (; tstate != NULL; tstate = PyThreadState_Next(tstate)) {
        if (tstate->thread_id == ident)
            return tstate;
    }
    return NULL;
}

#if defined(FORCE_CURRENT_FRAME)
static void
forget_stack(PyThreadState *tstate)
{
    tstate->current_frame = NULL;           /* entry frames were on the C stack */
}
#elif defined(FORCE_CFRAME_FRAMES)
static void
forget_stack(PyThreadState *tstate)
{
    tstate->root_cframe.current_frame = NULL;
    tstate->cframe = &tstate->root_cframe;  /* was a struct on the C stack */
}
#elif defined(FORCE_CFRAME_HEAP_FRAMES)
static void
forget_stack(PyThreadState *tstate)
{
    tstate->frame = NULL;                   /* borrowed: owned by the dead C stack */
    tstate->root_cframe.previous = NULL;
    tstate->cframe = &tstate->root_cframe;
}
#elif defined(FORCE_HEAP_FRAMES)
static void
forget_stack(PyThreadState *tstate)
{
    tstate->frame = NULL;                   /* borrowed: owned by the dead C stack */
}
#endif  /* version */

#ifdef FORCE_DATASTACK
/* Frame objects may point into the data stack: keep its chunks (a leak). */
static void
keep_datastack(PyThreadState *tstate)
{
    tstate->datastack_chunk = NULL;
    tstate->datastack_top = NULL;
    tstate->datastack_limit = NULL;
}
#else
static void
keep_datastack(PyThreadState *Py_UNUSED(tstate))
{
}
#endif  /* FORCE_DATASTACK */

/* Frames whose `previous` must skip the C-stack entry frames after the thread
 * is gone. Collected while it lives (parked, without the GIL, so its chain
 * cannot change), applied once it is dead: then no frame of the leaked chain
 * (frame objects, generators) leads into the freed stack. */
typedef struct {
    Py_ssize_t count;
    void **frames;              /* pairs: frame, its new previous */
} force_relinks;

#ifdef FORCE_CSTACK_FRAMES
#if PY_VERSION_HEX >= 0x030D0000
#  define INNERMOST_FRAME(tstate) ((tstate)->current_frame)
#else
#  define INNERMOST_FRAME(tstate) ((tstate)->cframe->current_frame)
#endif  /* version */

static _PyInterpreterFrame *
skip_cstack(_PyInterpreterFrame *frame)
{
    while (frame != NULL && frame->owner == FRAME_OWNED_BY_CSTACK)
        frame = frame->previous;
    return frame;
}

/* Fill `out` with every frame whose previous is an entry frame. Returns 0, or
 * -1 with MemoryError set. */
static int
collect_relinks(PyThreadState *tstate, force_relinks *out)
{
    _PyInterpreterFrame *first = skip_cstack(INNERMOST_FRAME(tstate)), *frame;
    Py_ssize_t count = 0;

    out->count = 0;
    out->frames = NULL;
    for (frame = first; frame != NULL; frame = skip_cstack(frame->previous))
        count += frame->previous != NULL && frame->previous->owner == FRAME_OWNED_BY_CSTACK;
    if (count == 0)
        return 0;
    out->frames = PyMem_Calloc((size_t)count * 2, sizeof(void *));
    if (out->frames == NULL)
        goto error;
    for (frame = first; frame != NULL; frame = skip_cstack(frame->previous)) {
        if (frame->previous != NULL && frame->previous->owner == FRAME_OWNED_BY_CSTACK) {
            out->frames[2 * out->count] = frame;
            out->frames[2 * out->count + 1] = skip_cstack(frame->previous);
            out->count++;
        }
    }
    return 0;

error:
    PyErr_NoMemory();
    return -1;
}

static void
apply_relinks(const force_relinks *relinks)
{
    for (Py_ssize_t i = 0; i < relinks->count; i++) {
        _PyInterpreterFrame *frame = relinks->frames[2 * i];
        frame->previous = relinks->frames[2 * i + 1];
    }
}
#else
static int
collect_relinks(PyThreadState *Py_UNUSED(tstate), force_relinks *out)
{
    out->count = 0;                 /* no frame lives on the C stack */
    out->frames = NULL;
    return 0;
}

static void
apply_relinks(const force_relinks *Py_UNUSED(relinks))
{
}
#endif  /* FORCE_CSTACK_FRAMES */

static void
dispose_thread_state(PyThreadState *tstate)
{
    forget_stack(tstate);
    keep_datastack(tstate);
    PyThreadState_Clear(tstate);
    PyThreadState_Delete(tstate);
}


/* ---------------------------------------------------------------------------
 * Python-facing functions
 */

/* Parse force_cancel's arguments. Returns 0, or -1 with an exception set. */
static int
parse_request(PyObject *args, unsigned long *ident, force_call *call,
              long long *switches, long *limit_us)
{
    PyObject *idle;
    double timeout;

    if (!PyArg_ParseTuple(args, "kil(kkkkkk)kkOd:force_cancel", ident, &call->tid,
                          &call->nr, &call->args[0], &call->args[1], &call->args[2],
                          &call->args[3], &call->args[4], &call->args[5], &call->sp,
                          &call->pc, &idle, &timeout))
        return -1;
    *switches = -1;
    if (idle != Py_None) {
        *switches = PyLong_AsLongLong(idle);
        if (*switches == -1 && PyErr_Occurred())
            return -1;
    }
    if (call->tid <= 0 || !(timeout > 0) || (idle != Py_None && *switches < 0)) {
        PyErr_SetString(PyExc_ValueError,
                        "tid and timeout must be positive, idle_switches not negative");
        return -1;
    }
    call->pid = getpid();
    *limit_us = (long)(timeout * 1e6);
    return 0;
}

/* End the OS thread (by pthread_cancel when `switches` >= 0, else by the signal)
 * and wait for it to be gone. Returns 1 if gone, 0 if it had moved on (nothing
 * changed), -1 with an exception set. */
static int
end_thread(unsigned long ident, const force_call *call, long long switches, long limit_us)
{
    int ended = switches >= 0 ? end_by_cancel(ident, call, switches)
                              : end_by_signal(call, limit_us);

    if (ended <= 0)
        return ended;
    if (!wait_thread_gone(call->pid, call->tid, limit_us)) {
        errno = ETIMEDOUT;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return 1;
}

/* force_cancel(ident, tid, nr, args, sp, pc, idle_switches, timeout) -> bool
 * End thread `ident` (OS thread `tid`), blocked in system call `nr` as /proc
 * described it, and dispose of its thread state; the GIL is held throughout.
 * idle_switches None: by the checked signal. An int (its context switches,
 * read a while ago): by pthread_cancel, if it has not run since.
 * Returns True when the thread is gone, False if it was no longer blocked in
 * that call (nothing was changed). ValueError if no thread state has `ident`;
 * OSError if the thread was cancelled but did not exit within `timeout`. */
static PyObject *
force_cancel(PyObject *Py_UNUSED(module), PyObject *args)
{
    unsigned long ident;
    force_call call;
    long long switches;
    long limit_us;
    PyThreadState *tstate;
    force_relinks relinks;
    int ended;

    if (parse_request(args, &ident, &call, &switches, &limit_us) < 0)
        return NULL;
    tstate = force_find_tstate(ident);
    if (tstate == NULL || tstate == PyThreadState_Get()) {
        PyErr_Format(PyExc_ValueError, "no other thread state with ident %lu", ident);
        return NULL;
    }
    if (collect_relinks(tstate, &relinks) < 0)
        return NULL;
    ended = end_thread(ident, &call, switches, limit_us);
    if (ended < 0)
        goto error;
    if (ended) {
        apply_relinks(&relinks);
        dispose_thread_state(tstate);
    }
    PyMem_Free(relinks.frames);
    return PyBool_FromLong(ended);

error:
    PyMem_Free(relinks.frames);
    return NULL;
}

/* The real-time signal force_cancel uses, chosen on first call. */
static PyObject *
force_signal(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    if (claim_rt_signal(&force_signum, force_handler, NULL) < 0)
        return NULL;
    return PyLong_FromLong(force_signum);
}

#ifdef FORCE_LOCK_SEMAPHORE
typedef struct {
    PyObject_HEAD
    void *lock;                     /* PyThread_type_lock: a sem_t here */
} force_lockobject;

/* lock_semaphore(lock) -> int: the address of the sem_t a _thread.lock or
 * _thread.RLock waits on, which is the futex address a waiter shows in /proc.
 * TypeError for anything else. */
static PyObject *
force_lock_semaphore(PyObject *Py_UNUSED(module), PyObject *lock)
{
    const char *name = Py_TYPE(lock)->tp_name;

    if (strcmp(name, "_thread.lock") != 0 && strcmp(name, "_thread.RLock") != 0) {
        PyErr_Format(PyExc_TypeError, "expected a _thread.lock or _thread.RLock, not %.100s",
                     name);
        return NULL;
    }
    return PyLong_FromVoidPtr(((force_lockobject *)lock)->lock);
}
#endif  /* FORCE_LOCK_SEMAPHORE */

#ifdef FORCE_THREAD_HANDLES
/* The leading fields of 3.13's ThreadHandle (Modules/_threadmodule.c); the
 * ident is compared with the Thread's before anything is written. */
typedef struct {
    struct llist_node node;
    struct llist_node shutdown_node;
    PyThread_ident_t ident;
} force_thread_handle;

typedef struct {
    PyObject_HEAD
    force_thread_handle *handle;
} force_handle_object;

/* The runtime's HEAD_LOCK, taken the way CPython takes it: without letting the
 * GIL go while waiting (pycore_pystate.h: PyMutex_LockFlags(...,
 * _Py_LOCK_DONT_DETACH)). PyMutex_Lock may detach, and a thread that waits for
 * the GIL while the holder of the head lock waits for it deadlocks both. The
 * flagged lock is not exported to extensions; its fast path is a compare-and-
 * swap on the mutex byte, and its holders keep it for a few instructions and
 * never need the GIL, so waiting here is a short spin with the GIL kept.
 * PyMutex_Unlock wakes any parked waiter, as HEAD_UNLOCK does. */
static void
head_lock(PyMutex *mutex)
{
    for (;;) {
        uint8_t expected = _Py_UNLOCKED;

        if (_Py_atomic_compare_exchange_uint8(&mutex->_bits, &expected, _Py_LOCKED))
            return;
        sched_yield();
    }
}

/* forget_thread_handle(handle, ident, unlink) -> bool
 * 3.13: whether the _ThreadHandle of thread `ident` is on the list interpreter
 * exit joins (_thread._shutdown loops until the thread leaves it, which a
 * cancelled thread never does); with `unlink`, take it off. ValueError if the
 * handle does not look as expected (then nothing is written). */
static PyObject *
force_forget_thread_handle(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *obj;
    unsigned long long ident;
    int unlink, listed, consistent;
    force_thread_handle *handle;
    struct llist_node *node;

    if (!PyArg_ParseTuple(args, "OKp:forget_thread_handle", &obj, &ident, &unlink))
        return NULL;
    if (strcmp(Py_TYPE(obj)->tp_name, "_thread._ThreadHandle") != 0) {
        PyErr_Format(PyExc_TypeError, "expected a _thread._ThreadHandle, not %.100s",
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    handle = ((force_handle_object *)obj)->handle;
    if (handle == NULL || handle->ident != ident) {
        PyErr_SetString(PyExc_ValueError, "unexpected _ThreadHandle layout");
        return NULL;
    }
    node = &handle->shutdown_node;
    head_lock(&_PyRuntime.interpreters.mutex);
    listed = node->next != NULL;
    consistent = !listed || (node->next->prev == node && node->prev->next == node);
    if (listed && consistent && unlink)
        llist_remove(node);
    PyMutex_Unlock(&_PyRuntime.interpreters.mutex);
    if (!consistent) {
        PyErr_SetString(PyExc_ValueError, "unexpected _ThreadHandle layout");
        return NULL;
    }
    return PyBool_FromLong(listed);
}
#endif  /* FORCE_THREAD_HANDLES */

#endif  /* THREADKILL_HAVE_FORCE */

PyMethodDef force_methods[] = {
#ifdef THREADKILL_HAVE_FORCE
    {"force_cancel", force_cancel, METH_VARARGS,
     "force_cancel(ident, tid, nr, args, sp, pc, idle_switches, timeout) -> bool\n"
     "End the thread blocked in system call nr (as /proc showed it) and dispose of\n"
     "its thread state, holding the GIL throughout: by a checked signal, or with\n"
     "idle_switches by pthread_cancel if it has not run since. False if it moved on."},
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
