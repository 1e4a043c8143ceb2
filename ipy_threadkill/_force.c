/*
 * ipy_threadkill._native, forced cancel: end a thread that no gentle rung can
 * reach, and dispose of its thread state before anything can walk it.
 *
 *   force_cancel(ident, tid, nr, args, sp, pc, cancel_signal, timeout) -> bool
 *   force_signal()            the real-time signal force_cancel uses
 *   lock_semaphore(lock)      3.9-3.12: address of the semaphore a Lock waits on
 *   forget_thread_handle(handle, ident, unlink)
 *                             3.13: take a dead thread off the exit-join list
 *
 * Whether a thread may be cancelled at all is decided in Python (_force.py):
 * it must sit in a system call, without the GIL, outside CPython's own locking,
 * with nothing on its native stack that an unwind could abort in.
 * Here the GIL is held from the last check to the disposal of the thread state,
 * so no Python code anywhere sees the thread half dead.
 *
 * How the thread is ended: a signal whose handler ends the thread with
 * pthread_exit() only after checking, register by register, that it
 * interrupted exactly the system call /proc showed (same checks as the
 * interrupt rung, _blocked_call.h). A call that completed meanwhile fails the
 * check and the thread goes on untouched: the decision is taken on the victim,
 * atomically, and nothing is left pending. The signal is
 *   - a private real-time signal, or
 *   - for a thread that blocks every signal: glibc's cancellation signal
 *     (SIGCANCEL, 32), which glibc's pthread_sigmask never blocks. For the
 *     duration of one kill the same checked handler replaces glibc's on it
 *     (raw rt_sigaction: glibc's sigaction refuses that signal) and passes
 *     every signal that is not ours on to glibc's. pthread_cancel() is not
 *     used: it cannot be taken back, and a call completing between the last
 *     check and the cancel left it pending, to fire at the thread's next
 *     cancellation point, e.g. in the GIL's wait, killing it with the GIL's
 *     mutex held: the next GIL release hung the process (measured on 3.11
 *     with a call completed right at the cancel: 2 of 3 runs hung).
 * Either way the thread unwinds like glibc's asynchronous cancellation: glibc's
 * own cleanup (sem_wait's waiter count) runs, nothing of Python's does.
 */
#include "_native.h"
#include "_blocked_call.h"

#ifdef THREADKILL_HAVE_FORCE

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#if defined(FORCE_CSTACK_FRAMES) || defined(FORCE_THREAD_HANDLES)
#  ifndef Py_BUILD_CORE
#    define Py_BUILD_CORE 1
#  endif  /* Py_BUILD_CORE */
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

/* glibc's cancellation signal: __SIGRTMIN, which it hides from SIGRTMIN and
 * never lets pthread_sigmask block. Also its SIGTIMER, which glibc 2.34+ only
 * ever receives with sigwaitinfo in a timer thread that blocks it. */
#define FORCE_SIGCANCEL 32
#ifndef SA_RESTORER
#  define SA_RESTORER 0x04000000            /* kernel ABI, x86_64 and arm64 */
#endif  /* SA_RESTORER */

/* The kernel's struct sigaction for rt_sigaction: the x86_64 layout, and the
 * generic one arm64 uses (not measured there). */
typedef struct {
    void (*handler)(int, siginfo_t *, void *);
    unsigned long flags;
    void (*restorer)(void);
    uint64_t mask;
} kernel_sigaction;

/* glibc's action on SIGCANCEL, saved while ours replaces it (GIL held). */
static kernel_sigaction glibc_sigcancel;


/* ---------------------------------------------------------------------------
 * Ending the OS thread
 */

/* Runs on the victim, from a signal handler. Until the checks pass it touches
 * only the request, atomics and the signal frame. Once they pass, the thread
 * is known to sit at the return of exactly the blocked call, with no GIL: it
 * ends there by unwinding, as glibc's asynchronous cancellation would (the
 * unwinder was loaded beforehand, see prime_unwinder). */
static void
fire_if_at_call(const ucontext_t *context)
{
    int expected = FORCE_ARMED;

    if (atomic_load(&force_state) != FORCE_ARMED
        || (pid_t)syscall(SYS_gettid) != force_target.tid)
        return;
    if (!frame_at_call(context, &force_target)) {
        /* It had left that call: tell the killer not to wait any longer. */
        atomic_compare_exchange_strong(&force_state, &expected, FORCE_DECLINED);
    }
    else if (atomic_compare_exchange_strong(&force_state, &expected, FORCE_FIRED)) {
        pthread_exit(PTHREAD_CANCELED);
    }
}

/* The private real-time signal: only tgkill() from this process counts. */
static void
force_handler(int signum, siginfo_t *info, void *context)
{
    int saved_errno = errno;

    (void)signum;
    if (info->si_code == SI_TKILL && info->si_pid == force_target.pid)
        fire_if_at_call((const ucontext_t *)context);
    errno = saved_errno;
}

/* SIGCANCEL while ours: our request comes queued (SI_QUEUE) with the address
 * of force_target as its value; everything else (a pthread_cancel() from
 * another thread, sent with SI_TKILL) goes to glibc's handler as it would
 * have. Ours is never passed on: glibc 2.36 takes a raw SI_TKILL SIGCANCEL
 * for a cancel request (measured), but ignores any other si_code, so a
 * request of ours that is delivered after glibc's handler is back changes
 * nothing (measured: the read restarted, no cancel fired later). One
 * difference remains for a real cancel request passed on in that window: our
 * action has no SA_RESTART, so a call it interrupts without cancelling returns
 * EINTR instead of restarting. */
static void
sigcancel_handler(int signum, siginfo_t *info, void *context)
{
    int saved_errno = errno;

    if (info->si_code == SI_QUEUE && info->si_pid == force_target.pid
        && info->si_value.sival_ptr == (void *)&force_target) {
        fire_if_at_call((const ucontext_t *)context);
    }
    else if (glibc_sigcancel.flags & SA_SIGINFO) {
        errno = saved_errno;
        glibc_sigcancel.handler(signum, info, context);
        return;
    }
    errno = saved_errno;
}

static void *
wait_for_cancel(void *arg)
{
    (void)arg;
    for (;;)
        pause();                            /* a cancellation point */
    return NULL;
}

/* Two things the signal handler must find done, done once here with a
 * throwaway thread that is cancelled: pthread_exit() loads libgcc_s with
 * dlopen() on first use, which must not happen in a signal handler; and glibc
 * installs its SIGCANCEL handler only on the first pthread_cancel() (measured,
 * 2.36: SIG_DFL before), whose default action would end the whole process if
 * a signal of ours arrived after our handler is gone.
 * Returns 0, or -1 with an exception set. */
static int
prime_unwinder(void)
{
    static int primed = 0;
    pthread_t thread;
    int err;

    if (primed)
        return 0;
    err = pthread_create(&thread, NULL, wait_for_cancel, NULL);
    if (err == 0) {
        err = pthread_cancel(thread);
        if (err == 0)
            err = pthread_join(thread, NULL);
    }
    if (err != 0)
        return set_os_error(err);
    primed = 1;
    return 0;
}

/* Wait up to `limit_us` for the OS thread to be gone. Returns whether it is. */
static int
wait_thread_gone(pid_t pid, pid_t tid, long limit_us)
{
    for (long waited = 0; ; waited += POLL_STEP_US) {
        if (syscall(SYS_tgkill, pid, tid, 0) != 0 && errno == ESRCH)
            return 1;
        if (waited >= limit_us)
            return 0;
        sleep_microseconds(POLL_STEP_US);
    }
}

/* Arm the request for `call`, send the signal with `send`, and wait up to
 * `limit_us` for the handler to fire or decline. Returns 1 if it fired, 0 if
 * not (nothing changed), -1 with errno set if the signal could not be sent. */
static int
signal_and_wait(const force_call *call, int (*send)(const force_call *), long limit_us)
{
    int expected = FORCE_ARMED, fired;

    force_target = *call;
    atomic_store(&force_state, FORCE_ARMED);
    if (send(call) != 0) {
        int send_errno = errno;

        atomic_store(&force_state, FORCE_IDLE);
        errno = send_errno;
        return send_errno == ESRCH ? 0 : -1;
    }
    for (long waited = 0; atomic_load(&force_state) == FORCE_ARMED && waited < limit_us;
         waited += POLL_STEP_US)
        sleep_microseconds(POLL_STEP_US);
    /* Disarm; if the handler won the race, it fired or declined. */
    if (atomic_compare_exchange_strong(&force_state, &expected, FORCE_IDLE))
        return 0;
    fired = atomic_load(&force_state) == FORCE_FIRED;
    atomic_store(&force_state, FORCE_IDLE);
    return fired;
}

static int
send_rt_signal(const force_call *call)
{
    return (int)syscall(SYS_tgkill, call->pid, call->tid, force_signum);
}

/* Queued, not tgkill(): SI_QUEUE and the cookie tell our handler it is ours,
 * and tell glibc's handler it is no cancel request. */
static int
send_sigcancel(const force_call *call)
{
    siginfo_t info;

    memset(&info, 0, sizeof(info));
    info.si_signo = FORCE_SIGCANCEL;
    info.si_code = SI_QUEUE;
    info.si_pid = call->pid;
    info.si_uid = getuid();
    info.si_value.sival_ptr = (void *)&force_target;
    return (int)syscall(SYS_rt_tgsigqueueinfo, call->pid, call->tid, FORCE_SIGCANCEL, &info);
}

static int
raw_sigaction(int signum, const kernel_sigaction *action, kernel_sigaction *previous)
{
    return (int)syscall(SYS_rt_sigaction, signum, action, previous, sizeof(uint64_t));
}

/* Put the checked handler on SIGCANCEL, saving glibc's. Returns 0, or -1 with
 * an exception set (nothing changed). */
static int
take_sigcancel(void)
{
    kernel_sigaction ours;

    if (raw_sigaction(FORCE_SIGCANCEL, NULL, &glibc_sigcancel) != 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    /* Only over glibc's own handler, with its restorer (x86_64 needs one). */
    if (!(glibc_sigcancel.flags & SA_SIGINFO)) {
        PyErr_SetString(PyExc_OSError, "glibc's cancellation handler is not installed");
        return -1;
    }
    memset(&ours, 0, sizeof(ours));
    ours.handler = sigcancel_handler;
    /* No SA_RESTART: the interrupted call must return -EINTR to be recognised. */
    ours.flags = SA_SIGINFO | SA_ONSTACK | (glibc_sigcancel.flags & SA_RESTORER);
    ours.restorer = glibc_sigcancel.restorer;
    ours.mask = ~(uint64_t)0;
    if (raw_sigaction(FORCE_SIGCANCEL, &ours, NULL) != 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return 0;
}

static void
give_back_sigcancel(void)
{
    /* Cannot fail: the same signal and an action the kernel gave us. */
    (void)raw_sigaction(FORCE_SIGCANCEL, &glibc_sigcancel, NULL);
}

/* Signal the thread; its handler ends it if it still sits in `call`. With
 * `cancel_signal`, on SIGCANCEL (for a thread that blocks every other signal).
 * Returns 1 if the handler fired, 0 if not (nothing changed), -1 on error. */
static int
end_by_signal(const force_call *call, int cancel_signal, long limit_us)
{
    int ended;

    if (prime_unwinder() < 0)
        return -1;
    if (!cancel_signal) {
        if (claim_rt_signal(&force_signum, force_handler, NULL) < 0)
            return -1;
        ended = signal_and_wait(call, send_rt_signal, limit_us);
    }
    else {
        if (take_sigcancel() < 0)
            return -1;
        ended = signal_and_wait(call, send_sigcancel, limit_us);
        give_back_sigcancel();
    }
    if (ended < 0)
        PyErr_SetFromErrno(PyExc_OSError);
    return ended;
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
#if defined(FORCE_CURRENT_FRAME)
#  define INNERMOST_FRAME(tstate) ((tstate)->current_frame)
#else
#  define INNERMOST_FRAME(tstate) ((tstate)->cframe->current_frame)
#endif  /* version */

#if defined(FORCE_INTERPRETER_FRAMES)
#  define ON_CSTACK(frame) ((frame)->owner >= FRAME_OWNED_BY_INTERPRETER)
#else
#  define ON_CSTACK(frame) ((frame)->owner == FRAME_OWNED_BY_CSTACK)
#endif  /* version */

static _PyInterpreterFrame *
skip_cstack(_PyInterpreterFrame *frame)
{
    while (frame != NULL && ON_CSTACK(frame))
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
        count += frame->previous != NULL && ON_CSTACK(frame->previous);
    if (count == 0)
        return 0;
    out->frames = PyMem_Calloc((size_t)count * 2, sizeof(void *));
    if (out->frames == NULL)
        goto error;
    for (frame = first; frame != NULL; frame = skip_cstack(frame->previous)) {
        if (frame->previous != NULL && ON_CSTACK(frame->previous)) {
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

#ifdef FORCE_BOUND_GILSTATE
/* PyThreadState_Delete() unbinds a bound state by clearing the GIL-state slot
 * of the thread that calls it: here the killer's own, which would leave the
 * killer unknown to PyGILState_Check() (the debug allocator and -X dev then
 * abort at its next allocation). The victim's OS thread, and its slot, are gone
 * already: there is nothing to unbind. */
static void
forget_gilstate_binding(PyThreadState *tstate)
{
    tstate->_status.bound_gilstate = 0;
}
#else
static void
forget_gilstate_binding(PyThreadState *Py_UNUSED(tstate))
{
}
#endif  /* FORCE_BOUND_GILSTATE */

static void
dispose_thread_state(PyThreadState *tstate)
{
    forget_stack(tstate);
    keep_datastack(tstate);
    forget_gilstate_binding(tstate);
    PyThreadState_Clear(tstate);
    PyThreadState_Delete(tstate);
}


/* ---------------------------------------------------------------------------
 * Python-facing functions
 */

/* Parse force_cancel's arguments. Returns 0, or -1 with an exception set. */
static int
parse_request(PyObject *args, unsigned long *ident, force_call *call,
              int *cancel_signal, long *limit_us)
{
    double timeout;

    if (!PyArg_ParseTuple(args, "kil(kkkkkk)kkpd:force_cancel", ident, &call->tid,
                          &call->nr, &call->args[0], &call->args[1], &call->args[2],
                          &call->args[3], &call->args[4], &call->args[5], &call->sp,
                          &call->pc, cancel_signal, &timeout))
        return -1;
    if (call->tid <= 0) {
        PyErr_SetString(PyExc_ValueError, "tid must be positive");
        return -1;
    }
    /* Checked before any conversion: NaN, infinities and huge values included. */
    if (!isfinite(timeout) || timeout <= 0 || timeout > MAX_WAIT_SECONDS) {
        PyErr_SetString(PyExc_ValueError, "timeout must be finite, positive and at most 1e6 seconds");
        return -1;
    }
    call->pid = getpid();
    *limit_us = (long)(timeout * 1e6);
    return 0;
}

/* End the OS thread and wait for it to be gone. Returns 1 if gone, 0 if it
 * had moved on (nothing changed), -1 with an exception set. */
static int
end_thread(const force_call *call, int cancel_signal, long limit_us)
{
    int ended = end_by_signal(call, cancel_signal, limit_us);

    if (ended <= 0)
        return ended;
    if (!wait_thread_gone(call->pid, call->tid, limit_us))
        return set_os_error(ETIMEDOUT);
    return 1;
}

/* force_cancel(ident, tid, nr, args, sp, pc, cancel_signal, timeout) -> bool
 * End thread `ident` (OS thread `tid`), blocked in system call `nr` as /proc
 * described it, and dispose of its thread state; the GIL is held throughout.
 * The checked handler runs on the private signal, or with `cancel_signal`
 * (a thread blocking every other signal) on glibc's SIGCANCEL.
 * Returns True when the thread is gone, False if it was no longer blocked in
 * that call (nothing was changed). ValueError if no thread state has `ident`
 * or an argument is out of range; OSError if the thread was signalled but did
 * not exit within `timeout` (errno ETIMEDOUT), or the signal could not be sent. */
PyObject *
force_cancel(PyObject *Py_UNUSED(module), PyObject *args)
{
    unsigned long ident;
    force_call call;
    int cancel_signal;
    long limit_us;
    PyThreadState *tstate;
    force_relinks relinks;
    int ended;

    if (parse_request(args, &ident, &call, &cancel_signal, &limit_us) < 0)
        return NULL;
    tstate = find_thread_state(ident);
    if (tstate == NULL || tstate == PyThreadState_Get()) {
        PyErr_Format(PyExc_ValueError, "no other thread state with ident %lu", ident);
        return NULL;
    }
    if (collect_relinks(tstate, &relinks) < 0)
        return NULL;
    ended = end_thread(&call, cancel_signal, limit_us);
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
PyObject *
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
PyObject *
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
PyObject *
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
