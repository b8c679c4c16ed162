/*
 * sigecho: the main command of the signal-forwarding benchmark (pid1.py).
 *
 * It blocks SIGUSR1, SIGTERM and SIGINT, reads them from a signalfd, writes
 * "R" to stdout once it is ready, then sleeps in poll(): every SIGUSR1 is
 * answered with one byte "." on stdout; SIGTERM, SIGINT or the end of stdin
 * (the harness is gone) make it exit 0. Between signals it sleeps in the
 * kernel, so it is also the "main command that just sleeps" of the idle-CPU
 * measurement.
 *
 * Blocking the signals (rather than installing handlers) keeps the answer
 * path short, and also works when sigecho is itself PID 1 of its namespace
 * (the "direct" row): a blocked signal is never discarded as one PID 1 would
 * ignore.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <unistd.h>

static void say(const char *byte)
{
    while (write(STDOUT_FILENO, byte, 1) < 0) {
        if (errno != EINTR) {
            perror("sigecho: write");
            exit(1);
        }
    }
}

int main(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) {
        perror("sigecho: sigprocmask");
        return 1;
    }
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    if (sfd < 0) {
        perror("sigecho: signalfd");
        return 1;
    }
    say("R");
    struct pollfd fds[2] = {{.fd = sfd, .events = POLLIN}, {.fd = STDIN_FILENO, .events = POLLIN}};
    for (;;) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            perror("sigecho: poll");
            return 1;
        }
        if (fds[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof si) != sizeof si)
                continue;
            if (si.ssi_signo == SIGUSR1)
                say(".");
            else
                return 0;   /* SIGTERM or SIGINT */
        }
        if (fds[1].revents) {
            char buf[256];
            if (read(STDIN_FILENO, buf, sizeof buf) <= 0)
                return 0;   /* stdin closed: the harness is gone */
        }
    }
}
