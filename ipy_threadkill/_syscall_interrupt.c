/*
 * ipy_threadkill._native: interrupting a blocked system call (Linux).
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
#include "_native.h"
#include "_blocked_call.h"

#ifdef THREADKILL_HAVE_INTERRUPT
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

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


/* interrupt_syscall(tid, nr, args, sp, pc, result, timeout) -> bool
 * End system call `nr` in thread `tid` with `result` if the thread is still
 * blocked in it exactly as described. Returns True if the handler rewrote the
 * call, False if the thread was no longer there (nothing was changed). */
PyObject *
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
    if (!(timeout >= 0 && timeout <= MAX_WAIT_SECONDS)) {
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
            sleep_microseconds(POLL_STEP_US);
            waited += POLL_STEP_US;
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
        set_os_error(send_errno);
        return NULL;
    }
    if (discard_errno != 0) {
        set_os_error(discard_errno);
        return NULL;
    }
    return PyBool_FromLong(fired);
}

/* claim_signal() -> int: the real-time signal used for interruptions, chosen
 * (its handler installed) now if it was not yet. A kill claims it before it
 * looks at the victim, so that a victim blocking it is recognised even on the
 * process's first kill. OSError if no real-time signal is free. */
PyObject *
native_claim_signal(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    if (claim_rt_signal(&interrupt_signum, interrupt_handler, &previous_action) < 0)
        return NULL;
    return PyLong_FromLong(interrupt_signum);
}

/* The real-time signal used for interruptions, or None before first use. */
PyObject *
native_interrupt_signal(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    if (interrupt_signum == 0)
        Py_RETURN_NONE;
    return PyLong_FromLong(interrupt_signum);
}

/* Give the signal back: restore the action we replaced. Kept while a request is
 * armed, because a signal still in flight must never meet the default action
 * (which would end the process). Returns whether it was released. */
PyObject *
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

/* Registers the fork handlers that keep arm_lock usable in a child. Returns 0,
 * or -1 with OSError set. Once per process: the handlers are process-wide. */
int
interrupt_init(void)
{
    static int atfork_registered = 0;

    if (!atfork_registered) {
        int err = pthread_atfork(fork_prepare, fork_parent, fork_child);
        if (err != 0)
            return set_os_error(err);
        atfork_registered = 1;
    }
    return 0;
}
#else
int
interrupt_init(void)
{
    return 0;                   /* nothing to interrupt with */
}
#endif  /* THREADKILL_HAVE_INTERRUPT */
