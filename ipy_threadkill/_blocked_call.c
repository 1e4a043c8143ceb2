/*
 * ipy_threadkill._native: the checks on a blocked system call's signal frame,
 * and the real-time signals that interrupt it (see _blocked_call.h).
 *
 * One copy for the interrupt rung and the forced cancel: a signal handler may
 * change a thread only when the frame proves it interrupted exactly the call
 * /proc showed, and both must prove it the same way. frame_at_call() runs in
 * signal handlers; so it reads registers and memory only.
 */
#include "_blocked_call.h"

#ifdef THREADKILL_HAVE_INTERRUPT
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#if defined(THREADKILL_LINUX_X86_64)
/* Whether the six argument registers are those of `call`. */
static int
arguments_match(const ucontext_t *uc, const blocked_call *call)
{
    return (unsigned long)uc->uc_mcontext.gregs[REG_RDI] == call->args[0]
        && (unsigned long)uc->uc_mcontext.gregs[REG_RSI] == call->args[1]
        && (unsigned long)uc->uc_mcontext.gregs[REG_RDX] == call->args[2]
        && (unsigned long)uc->uc_mcontext.gregs[REG_R10] == call->args[3]
        && (unsigned long)uc->uc_mcontext.gregs[REG_R8] == call->args[4]
        && (unsigned long)uc->uc_mcontext.gregs[REG_R9] == call->args[5];
}

static int
after_syscall_instruction(const unsigned char *pc)
{
    return pc[-2] == 0x0f && pc[-1] == 0x05;                 /* syscall */
}
#elif defined(THREADKILL_LINUX_AARCH64)
/* x0 now holds the result; x1-x5 and the number in x8 are intact. */
static int
arguments_match(const ucontext_t *uc, const blocked_call *call)
{
    for (int i = 1; i < 6; i++) {
        if ((unsigned long)uc->uc_mcontext.regs[i] != call->args[i])
            return 0;
    }
    return (long)uc->uc_mcontext.regs[8] == call->nr;
}

static int
after_syscall_instruction(const unsigned char *pc)
{
    return *(const uint32_t *)(pc - 4) == 0xd4000001u;       /* svc #0 */
}
#endif  /* architecture */

/* Whether signal frame `uc` shows `call` just interrupted (returning -EINTR). */
int
frame_at_call(const ucontext_t *uc, const blocked_call *call)
{
    if ((long)RET(uc) != -EINTR)
        return 0;
    if ((unsigned long)PC(uc) != call->pc || (unsigned long)SP(uc) != call->sp)
        return 0;
    return arguments_match(uc, call)
           && after_syscall_instruction((const unsigned char *)(uintptr_t)PC(uc));
}

/* Whether `handler` is the SA_SIGINFO handler of `signum`. */
int
handler_installed_for(int signum, void (*handler)(int, siginfo_t *, void *))
{
    struct sigaction current;

    if (signum == 0 || sigaction(signum, NULL, &current) != 0)
        return 0;
    return (current.sa_flags & SA_SIGINFO) && current.sa_sigaction == handler;
}

/* Install `handler` on the first real-time signal from SIGRTMIN+2 that nobody
 * handles (glibc keeps the two below for itself); no SA_RESTART, since the
 * interrupted call must return -EINTR. Returns the signal, or 0 if none is free,
 * or -1 with errno set; `previous` receives the action replaced. */
static int
take_free_rt_signal(void (*handler)(int, siginfo_t *, void *), struct sigaction *previous)
{
    struct sigaction action;

    memset(&action, 0, sizeof(action));
    action.sa_sigaction = handler;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigfillset(&action.sa_mask);
    for (int signum = SIGRTMIN + 2; signum <= SIGRTMAX; signum++) {
        struct sigaction current;

        if (sigaction(signum, NULL, &current) != 0)
            continue;
        if ((current.sa_flags & SA_SIGINFO) || current.sa_handler != SIG_DFL)
            continue;
        if (sigaction(signum, &action, previous) != 0)
            return -1;
        return signum;
    }
    return 0;
}

/* Discard every pending instance of `signum`, in every thread, and keep its
 * current action. A thread that blocks the signal would otherwise keep it
 * pending until it unblocks it, and then meet whatever action is installed by
 * then: after release, the default one, which ends the process. The kernel
 * discards pending instances when the action becomes SIG_IGN (POSIX, "Signal
 * Actions"; Linux does it for the whole thread group). Only we send `signum`,
 * and only while holding the lock the caller holds, so none is lost that
 * anybody meant to deliver. Returns 0, or -1 with errno set. */
int
discard_pending(int signum)
{
    struct sigaction current, ignore;

    if (sigaction(signum, NULL, &current) != 0)
        return -1;
    memset(&ignore, 0, sizeof(ignore));
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    if (sigaction(signum, &ignore, NULL) != 0)
        return -1;
    return sigaction(signum, &current, NULL);
}

/* Keep `handler` on *signum while it is still there (someone may have replaced
 * it: leave that signal to them), else move it to a free real-time signal,
 * saving the replaced action in `previous` if not NULL. Returns 0, or -1 with
 * OSError set. */
int
claim_rt_signal(int *signum, void (*handler)(int, siginfo_t *, void *),
                struct sigaction *previous)
{
    int taken;

    if (handler_installed_for(*signum, handler))
        return 0;
    taken = take_free_rt_signal(handler, previous);
    *signum = taken > 0 ? taken : 0;
    if (taken < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    if (taken == 0) {
        PyErr_SetString(PyExc_OSError, "no free real-time signal");
        return -1;
    }
    return 0;
}

/* One step of a killer's wait (POLL_STEP_US). */
void
sleep_microseconds(long usec)
{
    struct timespec ts = {usec / 1000000, (usec % 1000000) * 1000};

    nanosleep(&ts, NULL);
}
#endif  /* THREADKILL_HAVE_INTERRUPT */
