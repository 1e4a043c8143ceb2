// Blocking calls made from C++ frames, for tests of the forced cancel: a forced
// unwind (pthread_exit, pthread_cancel) through any of these aborts the process
// unless it is refused. Each function blocks in read(fd) and, with `mask`, blocks
// every signal first (so only pthread_cancel could end it).
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <string>

namespace {

// An RAII object: its destructor gives the frame a cleanup, so the C++
// personality routine has work to do in it during an unwind.
struct Guard {
    std::string what;
    explicit Guard(const char *name) : what(name) {}
    ~Guard() { what.clear(); }
};

void block_every_signal()
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
}

long read_one(int fd)
{
    char byte;
    return read(fd, &byte, 1);
}

}  // namespace

// noexcept: an unwind reaching this frame calls std::terminate.
extern "C" long tk_noexcept_read(int fd, int mask) noexcept
{
    Guard guard("noexcept_read");
    if (mask)
        block_every_signal();
    return read_one(fd) + static_cast<long>(guard.what.size() * 0);
}

// catch (...) that does not rethrow: glibc aborts when its unwind is caught.
extern "C" long tk_catch_all_read(int fd, int mask)
{
    try {
        Guard guard("catch_all_read");
        if (mask)
            block_every_signal();
        return read_one(fd);
    }
    catch (...) {
        return -2;
    }
}

// Retries on end of file: the interrupt rung's harmless 0 only restarts it.
extern "C" long tk_retry_read(int fd, int mask) noexcept
{
    Guard guard("retry_read");
    long got;

    if (mask)
        block_every_signal();
    do {
        got = read_one(fd);
    } while (got == 0);
    return got;
}
