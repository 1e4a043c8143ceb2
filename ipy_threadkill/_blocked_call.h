/*
 * ipy_threadkill._native: a thread's blocked system call, and the checks that
 * tell a signal handler it interrupted exactly that call. Shared by the
 * interrupt rung (_syscall_interrupt.c) and the forced cancel (_force.c).
 *
 * x86_64 keeps no syscall number in the signal frame, and newer glibc issues
 * every cancellable call from one shared site: so pc, sp and all six argument
 * registers must match what /proc/self/task/<tid>/syscall showed, the call
 * must have returned -EINTR, and a system-call instruction must sit right
 * before pc. Everything here is async-signal-safe, but claim_rt_signal().
 */
#ifndef IPY_THREADKILL_BLOCKED_CALL_H
#define IPY_THREADKILL_BLOCKED_CALL_H

#include "_platform.h"

#ifdef THREADKILL_HAVE_INTERRUPT
#include <signal.h>
#include <sys/types.h>
#include <ucontext.h>

#if defined(THREADKILL_LINUX_X86_64)
#  define PC(uc) ((uc)->uc_mcontext.gregs[REG_RIP])
#  define SP(uc) ((uc)->uc_mcontext.gregs[REG_RSP])
#  define RET(uc) ((uc)->uc_mcontext.gregs[REG_RAX])
#elif defined(THREADKILL_LINUX_AARCH64)
#  define PC(uc) ((uc)->uc_mcontext.pc)
#  define SP(uc) ((uc)->uc_mcontext.sp)
#  define RET(uc) ((uc)->uc_mcontext.regs[0])
#endif  /* architecture */

/* The blocked system call, as /proc/self/task/<tid>/syscall showed it. */
typedef struct {
    pid_t tid;
    pid_t pid;
    long nr;
    unsigned long args[6];
    unsigned long sp;
    unsigned long pc;
} blocked_call;

THREADKILL_INTERNAL int frame_at_call(const ucontext_t *uc, const blocked_call *call);
THREADKILL_INTERNAL int handler_installed_for(int signum,
                                              void (*handler)(int, siginfo_t *, void *));
THREADKILL_INTERNAL int discard_pending(int signum);
THREADKILL_INTERNAL int claim_rt_signal(int *signum, void (*handler)(int, siginfo_t *, void *),
                                        struct sigaction *previous);

/* A killer waiting for a handler's verdict, or for a thread to be gone, looks
 * again every POLL_STEP_US microseconds, for at most MAX_WAIT_SECONDS: far
 * above any real use, low enough that its microseconds fit a long (converting
 * a larger double is undefined). */
#define POLL_STEP_US 20
#define MAX_WAIT_SECONDS 1e6
THREADKILL_INTERNAL void sleep_microseconds(long usec);
#endif  /* THREADKILL_HAVE_INTERRUPT */

#endif  /* IPY_THREADKILL_BLOCKED_CALL_H */
