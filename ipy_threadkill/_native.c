/*
 * ipy_threadkill._native: the mechanisms a kill is made of.
 *
 * Which of them to use, when, and what to tell the user is decided in Python
 * (engine.py). Everything here is one small primitive:
 *
 *   raise_in_thread(ident, exc_type)   queue an asynchronous exception
 *   raise_in_thread_within(...)        the same, only while a given frame is on
 *                                      the thread's stack (checked atomically)
 *   rearm(exc_type)                    finalizer of the exceptions we raise: queue
 *                                      it again in this thread if policy says so
 *   exception_state(ident)             (exception pending?, exception being handled)
 *   interrupt_syscall(...)             Linux: end one blocked system call with a
 *                                      chosen result, checked register by register
 *   claim_signal()                     the real-time signal, claimed if not yet
 *   interrupt_signal()                 the real-time signal in use, or None
 *   release_signal()                   restore that signal's previous action
 *   SYSCALLS                           {name: number} for this architecture
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>          /* PyFrame_Type, PyFrame_GetBack before 3.11 */

#include "_blocked_call.h"
#include "_force.h"

#if PY_VERSION_HEX < 0x030A0000
static inline PyObject *
Py_NewRef(PyObject *obj)                    /* added in 3.10 */
{
    Py_INCREF(obj);
    return obj;
}
#endif  /* < 3.10 */

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Interrupting a system call needs Linux (tgkill, /proc/<tid>/syscall) and an
 * architecture whose signal frame we know how to check and rewrite. */
#if defined(__linux__) && (defined(__x86_64__) || defined(__aarch64__))
#  define THREADKILL_HAVE_INTERRUPT 1
#  include <stdatomic.h>
#  include <pthread.h>
#  include <sys/syscall.h>
#  include <ucontext.h>
#endif

/* In `while True: try: ... except BaseException: pass`, a queued exception
 * must fire outside the `try`, at the loop's jump. 3.9 and 3.10 skip the check
 * at a jump whose target starts a `try`, so there it only ever fires inside.
 * A trace function on the victim alone (_PyEval_SetTrace takes any thread
 * state) raises at the next line instead. (3.12+: sys.monitoring, in Python.) */
#if !defined(Py_GIL_DISABLED) && PY_VERSION_HEX < 0x030B0000
#  define THREADKILL_HAVE_LINE_RAISE 1
#endif

/* Reading another thread's exception state needs the PyThreadState layout of the
 * default (GIL) build; 3.9 to 3.13 all keep exc_info and async_exc in it. */
#if !defined(Py_GIL_DISABLED) && PY_VERSION_HEX >= 0x03090000 && PY_VERSION_HEX < 0x030E0000
#  define THREADKILL_HAVE_EXCEPTION_STATE 1
#endif


/* ---------------------------------------------------------------------------
 * Asynchronous exceptions
 */

#ifdef THREADKILL_HAVE_EXCEPTION_STATE
static PyThreadState *find_thread_state(unsigned long ident);
static int same_os_thread(PyThreadState *tstate, unsigned long ident, long native_id);
#endif  /* THREADKILL_HAVE_EXCEPTION_STATE */

/* raise_in_thread(ident, exc_type, native_id=0) -> int
 * Queue exc_type to be raised in thread `ident` (None clears a pending one).
 * With a native id, only if the thread with that ident still runs on that OS
 * thread: idents are recycled at once, and the check and the raise must happen
 * with no bytecode in between. Returns the number of thread states changed. */
static PyObject *
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
#ifdef THREADKILL_HAVE_EXCEPTION_STATE
    if (native_id > 0) {
        PyThreadState *tstate = find_thread_state(ident);
        if (tstate == NULL || !same_os_thread(tstate, ident, native_id))
            return PyLong_FromLong(0);
    }
#endif  /* THREADKILL_HAVE_EXCEPTION_STATE */
    return PyLong_FromLong(PyThreadState_SetAsyncExc(ident, exc_type));
}

typedef struct {
    PyObject *rearm_policy;     /* callable(exc_type) -> bool, or NULL */
} native_state;

/* set_rearm_policy(callable or None): who decides whether rearm() re-raises. */
static PyObject *
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
static PyObject *
native_rearm(PyObject *module, PyObject *exc_type)
{
    native_state *st = PyModule_GetState(module);
    PyThreadState *tstate = PyThreadState_Get();
    PyObject *verdict;
    int again;

    if (st->rearm_policy == NULL || !PyExceptionClass_Check(exc_type))
        Py_RETURN_NONE;
#ifdef THREADKILL_HAVE_EXCEPTION_STATE
    if (tstate->async_exc != NULL)
        Py_RETURN_NONE;         /* the killer queued one already: it fires next */
#endif  /* THREADKILL_HAVE_EXCEPTION_STATE */
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
/* Whether thread state `tstate` (of thread `ident`) runs on OS thread
 * `native_id`. 3.11+ record it; before, glibc encodes the tid in the thread's
 * CPU clock id (clockid = ~tid << 3 | 6). The thread cannot have exited: it
 * still has its thread state, which it deletes before it ends. */
static int
same_os_thread(PyThreadState *tstate, unsigned long ident, long native_id)
{
#if PY_VERSION_HEX >= 0x030B0000
    (void)ident;
    return (long)tstate->native_thread_id == native_id;
#elif defined(__linux__) && defined(__GLIBC__)
    clockid_t clock;

    (void)tstate;
    if (pthread_getcpuclockid((pthread_t)ident, &clock) != 0)
        return 0;
    return (long)~(clock >> 3) == native_id;
#else
    (void)tstate; (void)ident; (void)native_id;
    return 1;               /* cannot tell: the Python-level check must do */
#endif
}

/* raise_in_thread_within(ident, exc_type, frame) -> bool
 * Queue exc_type in thread `ident` only if `frame` is on its stack. Checked and
 * queued without running any bytecode, so the thread cannot leave the frame in
 * between (it needs the GIL we hold to run Python). Stopping a pool task uses
 * it: a raise that lands just after the task returned would kill the worker. */
static PyObject *
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

static PyThreadState *
find_thread_state(unsigned long ident)
{
    PyThreadState *tstate = PyInterpreterState_ThreadHead(PyInterpreterState_Get());

    for (; tstate != NULL; tstate = PyThreadState_Next(tstate)) {
        if (tstate->thread_id == ident)
            return tstate;
    }
    return NULL;
}

/* The exception a thread is handling (in except, finally or __exit__), found the
 * way sys.exc_info() finds it but for another thread. Borrowed; NULL for none. */
static PyObject *
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

/* (pending, handling): whether an asynchronous exception is queued for thread
 * `ident`, and the exception it is handling now (or None). ValueError if no
 * thread state has that ident. The GIL keeps the target from changing either. */
static PyObject *
native_exception_state(PyObject *Py_UNUSED(module), PyObject *args)
{
    unsigned long ident;
    PyThreadState *tstate;
    PyObject *handling;

    if (!PyArg_ParseTuple(args, "k:exception_state", &ident))
        return NULL;
    tstate = find_thread_state(ident);
    if (tstate == NULL) {
        PyErr_Format(PyExc_ValueError, "no thread state with ident %lu", ident);
        return NULL;
    }
    handling = handled_exception(tstate);
    return Py_BuildValue("(OO)", tstate->async_exc != NULL ? Py_True : Py_False,
                         handling != NULL ? handling : Py_None);
}
#endif  /* THREADKILL_HAVE_EXCEPTION_STATE */

#ifdef THREADKILL_HAVE_LINE_RAISE
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
static PyObject *
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
    tstate = find_thread_state(ident);
    if (tstate == NULL) {
        PyErr_Format(PyExc_ValueError, "no thread state with ident %lu", ident);
        return NULL;
    }
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


/* ---------------------------------------------------------------------------
 * Interrupting a blocked system call (Linux)
 *
 * The caller has read /proc/self/task/<tid>/syscall: the thread sits in system
 * call `nr` with these six arguments, stack pointer and return address. We arm a
 * request, send our real-time signal to that thread alone, and the handler
 * rewrites the interrupted call's result, but only if everything in the signal
 * frame says it interrupted exactly that call: same thread, sent by us, the call
 * returned -EINTR, same pc, sp and argument registers, and a system-call
 * instruction right before pc. Anything else and the handler does nothing, so
 * the call fails with EINTR and CPython retries it (PEP 475): harmless.
 */
#ifdef THREADKILL_HAVE_INTERRUPT

enum { IDLE, ARMED, FIRED };

/* The one armed request. Written only while `state` is IDLE, by a killer that
 * holds `arm_lock`; read by the handler only after it has seen ARMED. */
static struct {
    blocked_call call;
    long result;
} request;
static atomic_int state = IDLE;
static pthread_mutex_t arm_lock = PTHREAD_MUTEX_INITIALIZER;

static int interrupt_signum = 0;            /* 0 until first use */

/* The descriptor-set calls: select (x86_64 only) and pselect6. */
#ifdef SYS_select
#  define is_select_call(nr) ((nr) == SYS_select || (nr) == SYS_pselect6)
#else
#  define is_select_call(nr) ((nr) == SYS_pselect6)
#endif  /* SYS_select */
/* Larger than any descriptor a select caller can name (the kernel's own limit
 * is the process's open-file limit); a larger count is not cleared. */
#define SELECT_MAX_FDS (1UL << 20)

/* Seconds interrupt_syscall may wait for the handler; far above any real use,
 * low enough that microseconds of it fit a long. */
#define INTERRUPT_MAX_TIMEOUT 1e6

static struct sigaction previous_action;    /* restored by release_signal() */

/* A fork while another thread is arming would leave arm_lock held in the child
 * for ever: take it around fork() and hand the child a fresh, idle one. */
static void fork_prepare(void) { pthread_mutex_lock(&arm_lock); }
static void fork_parent(void) { pthread_mutex_unlock(&arm_lock); }
static void
fork_child(void)
{
    pthread_mutex_init(&arm_lock, NULL);
    atomic_store(&state, IDLE);
}

/* select() and pselect6() write their descriptor sets back only when they
 * return; interrupted, the sets still hold what the caller asked about, and a
 * rewritten 0 would leave CPython's select.select() reporting every one of them
 * ready (it reads the sets whatever the count). Cleared, they say what a real
 * timeout says: nothing is ready. The sets are the caller's own memory, of
 * ceil(nfds / 8) bytes each (the kernel reads no more). Async-signal-safe. */
static void
clear_ready_sets(const blocked_call *call)
{
    size_t size;

    if (!is_select_call(call->nr) || call->args[0] == 0 || call->args[0] > SELECT_MAX_FDS)
        return;
    size = (call->args[0] + 7) / 8;
    for (int i = 1; i <= 3; i++) {
        if (call->args[i] != 0)
            memset((void *)(uintptr_t)call->args[i], 0, size);
    }
}

/* Async-signal-safe: touches only the request, atomics, the signal frame, the
 * interrupted select's descriptor sets and errno (saved and restored); never
 * the C API or the GIL. */
static void
interrupt_handler(int signum, siginfo_t *info, void *context)
{
    int saved_errno = errno;
    int expected = ARMED;
    ucontext_t *uc = (ucontext_t *)context;

    (void)signum;
    if (atomic_load(&state) == ARMED
        && info->si_code == SI_TKILL
        && info->si_pid == request.call.pid
        && (pid_t)syscall(SYS_gettid) == request.call.tid
        && frame_at_call(uc, &request.call)
        && atomic_compare_exchange_strong(&state, &expected, FIRED))
    {
        if (request.result == 0)
            clear_ready_sets(&request.call);
        RET(uc) = request.result;
    }
    errno = saved_errno;
}

static void
sleep_microseconds(long usec)
{
    struct timespec ts = {usec / 1000000, (usec % 1000000) * 1000};

    nanosleep(&ts, NULL);
}

/* interrupt_syscall(tid, nr, args, sp, pc, result, timeout) -> bool
 * End system call `nr` in thread `tid` with `result` if the thread is still
 * blocked in it exactly as described. Returns True if the handler rewrote the
 * call, False if the thread was no longer there (nothing was changed). */
static PyObject *
native_interrupt_syscall(PyObject *Py_UNUSED(module), PyObject *args)
{
    int tid;
    long nr, result;
    unsigned long sp, pc, call_args[6];
    double timeout;
    int fired = 0, sent, send_errno = 0, discard_errno = 0;
    int expected = ARMED;

    if (!PyArg_ParseTuple(args, "il(kkkkkk)kkld:interrupt_syscall", &tid, &nr,
                          &call_args[0], &call_args[1], &call_args[2],
                          &call_args[3], &call_args[4], &call_args[5],
                          &sp, &pc, &result, &timeout))
        return NULL;
    if (tid <= 0) {
        PyErr_SetString(PyExc_ValueError, "tid must be positive");
        return NULL;
    }
    /* Also false for NaN: converting it, or a huge value, to long is undefined. */
    if (!(timeout >= 0 && timeout <= INTERRUPT_MAX_TIMEOUT)) {
        PyErr_SetString(PyExc_ValueError, "timeout out of range");
        return NULL;
    }
    if (claim_rt_signal(&interrupt_signum, interrupt_handler, &previous_action) < 0)
        return NULL;

    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&arm_lock);
    request.call.tid = tid;
    request.call.pid = getpid();
    request.call.nr = nr;
    memcpy(request.call.args, call_args, sizeof(call_args));
    request.call.sp = sp;
    request.call.pc = pc;
    request.result = result;
    atomic_store(&state, ARMED);

    sent = syscall(SYS_tgkill, request.call.pid, tid, interrupt_signum) == 0;
    send_errno = errno;
    if (sent) {
        long waited = 0, limit = (long)(timeout * 1e6);
        while (atomic_load(&state) != FIRED && waited < limit) {
            sleep_microseconds(20);
            waited += 20;
        }
    }
    /* Disarm; if the handler won the race, it fired. */
    fired = !atomic_compare_exchange_strong(&state, &expected, IDLE);
    atomic_store(&state, IDLE);
    /* Not fired: the signal may still wait in a thread that blocks it (or has
     * not run yet). Left there, it would reach that thread whenever it unblocks
     * it, under whatever action is installed then. */
    if (sent && !fired && discard_pending(interrupt_signum) != 0)
        discard_errno = errno;
    pthread_mutex_unlock(&arm_lock);
    Py_END_ALLOW_THREADS

    if (!sent && send_errno != ESRCH) {
        errno = send_errno;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    if (discard_errno != 0) {
        errno = discard_errno;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return PyBool_FromLong(fired);
}

/* claim_signal() -> int: the real-time signal used for interruptions, chosen
 * (its handler installed) now if it was not yet. A kill claims it before it
 * looks at the victim, so that a victim blocking it is recognised even on the
 * process's first kill. OSError if no real-time signal is free. */
static PyObject *
native_claim_signal(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    if (claim_rt_signal(&interrupt_signum, interrupt_handler, &previous_action) < 0)
        return NULL;
    return PyLong_FromLong(interrupt_signum);
}

/* The real-time signal used for interruptions, or None before first use. */
static PyObject *
native_interrupt_signal(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    if (interrupt_signum == 0)
        Py_RETURN_NONE;
    return PyLong_FromLong(interrupt_signum);
}

/* Give the signal back: restore the action we replaced. Kept while a request is
 * armed, because a signal still in flight must never meet the default action
 * (which would end the process). Returns whether it was released. */
static PyObject *
native_release_signal(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    int released = 0;

    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&arm_lock);
    if (handler_installed_for(interrupt_signum, interrupt_handler)) {
        /* Discarded first: one still pending would meet the restored action. */
        released = discard_pending(interrupt_signum) == 0
                   && sigaction(interrupt_signum, &previous_action, NULL) == 0;
        if (released)
            interrupt_signum = 0;
    }
    pthread_mutex_unlock(&arm_lock);
    Py_END_ALLOW_THREADS
    return PyBool_FromLong(released);
}

static int
add_syscall_numbers(PyObject *module)
{
    static const struct { const char *name; long nr; } numbers[] = {
#define SYSCALL_ENTRY(name) {#name, SYS_##name}
        SYSCALL_ENTRY(read), SYSCALL_ENTRY(readv), SYSCALL_ENTRY(pread64),
        SYSCALL_ENTRY(write), SYSCALL_ENTRY(writev), SYSCALL_ENTRY(pwrite64),
        SYSCALL_ENTRY(recvfrom), SYSCALL_ENTRY(recvmsg), SYSCALL_ENTRY(sendto),
        SYSCALL_ENTRY(sendmsg), SYSCALL_ENTRY(accept), SYSCALL_ENTRY(accept4),
        SYSCALL_ENTRY(connect), SYSCALL_ENTRY(clock_nanosleep), SYSCALL_ENTRY(pselect6),
        SYSCALL_ENTRY(ppoll), SYSCALL_ENTRY(epoll_pwait), SYSCALL_ENTRY(wait4),
        SYSCALL_ENTRY(waitid), SYSCALL_ENTRY(futex), SYSCALL_ENTRY(rt_sigtimedwait),
        SYSCALL_ENTRY(rt_sigsuspend), SYSCALL_ENTRY(openat), SYSCALL_ENTRY(flock),
        SYSCALL_ENTRY(fcntl), SYSCALL_ENTRY(ioctl), SYSCALL_ENTRY(msgrcv),
        SYSCALL_ENTRY(semtimedop), SYSCALL_ENTRY(mq_timedreceive),
#ifdef SYS_nanosleep
        SYSCALL_ENTRY(nanosleep),
#endif
#ifdef SYS_select
        SYSCALL_ENTRY(select),
#endif
#ifdef SYS_poll
        SYSCALL_ENTRY(poll),
#endif
#ifdef SYS_epoll_wait
        SYSCALL_ENTRY(epoll_wait),
#endif
#ifdef SYS_epoll_pwait2
        SYSCALL_ENTRY(epoll_pwait2),
#endif
#ifdef SYS_pause
        SYSCALL_ENTRY(pause),
#endif
#ifdef SYS_futex_waitv
        SYSCALL_ENTRY(futex_waitv),
#endif
#undef SYSCALL_ENTRY
    };
    PyObject *table = PyDict_New();

    if (table == NULL)
        return -1;
    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
        PyObject *nr = PyLong_FromLong(numbers[i].nr);
        if (nr == NULL || PyDict_SetItemString(table, numbers[i].name, nr) < 0) {
            Py_XDECREF(nr);
            Py_DECREF(table);
            return -1;
        }
        Py_DECREF(nr);
    }
    if (PyModule_AddObject(module, "SYSCALLS", table) < 0) {
        Py_DECREF(table);
        return -1;
    }
    return 0;
}
#endif  /* THREADKILL_HAVE_INTERRUPT */


/* ---------------------------------------------------------------------------
 * Module
 */

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
#ifdef THREADKILL_HAVE_LINE_RAISE
    {"line_raise", native_line_raise, METH_VARARGS,
     "line_raise(ident, exc_type) -> None\n"
     "Raise exc_type at each new line thread ident runs (None stops it); for\n"
     "loops that swallow exceptions on interpreters before 3.11."},
#endif  /* THREADKILL_HAVE_LINE_RAISE */
#ifdef THREADKILL_HAVE_EXCEPTION_STATE
    {"raise_in_thread_within", native_raise_in_thread_within, METH_VARARGS,
     "raise_in_thread_within(ident, exc_type, frame) -> bool\n"
     "Queue exc_type in thread ident only if frame is on its stack; return whether\n"
     "it did."},
    {"exception_state", native_exception_state, METH_VARARGS,
     "exception_state(ident) -> (pending, handling)\n"
     "Whether an asynchronous exception is queued for the thread, and the exception\n"
     "it is handling now or None. ValueError if no thread has that ident."},
#endif  /* THREADKILL_HAVE_EXCEPTION_STATE */
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
    {NULL, NULL, 0, NULL}
};

static int
native_exec(PyObject *module)
{
    if (PyModule_AddFunctions(module, force_methods) < 0)
        return -1;
#ifdef THREADKILL_HAVE_INTERRUPT
    static int atfork_registered = 0;

    if (!atfork_registered) {
        int err = pthread_atfork(fork_prepare, fork_parent, fork_child);
        if (err != 0) {
            errno = err;
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        atfork_registered = 1;
    }
    if (add_syscall_numbers(module) < 0)
        return -1;
#endif  /* THREADKILL_HAVE_INTERRUPT */
    return 0;
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
