/*
 * orphans N [hold]: the main command of the reaping benchmark (pid1.py).
 *
 * 1. Forks children one at a time; each forks up to 100 grandchildren and
 *    exits at once. orphans reaps the child, so its grandchildren are left
 *    orphans, re-parented to PID 1 of the namespace: N of them in all. Every
 *    grandchild blocks in read() on one shared pipe.
 * 2. Writes "ready N" to stdout and waits for a line on stdin.
 * 3. Takes CLOCK_MONOTONIC (the clock of Python's time.perf_counter_ns) and
 *    closes the pipe's write end, so that all N grandchildren read EOF and
 *    exit. Writes "t0 NANOSECONDS" to stdout. Each grandchild stamps the
 *    time it exits into a shared array just before _exit().
 * 4. With "hold", waits for one more line on stdin.
 * 5. When orphans is itself PID 1 (the "direct" row: no init at all) it reaps
 *    the grandchildren itself with a plain wait() loop: the floor. With
 *    "hold" it has thus left them all zombies until the harness said so,
 *    just as an init that the harness holds with SIGSTOP.
 * 6. On each further line on stdin, writes "exits FIRST LAST MISSING": the
 *    earliest and latest exit stamps, and how many grandchildren have not
 *    stamped yet (0 once all have exited).
 * 7. Exits 0 at the end of stdin.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BATCH 100 /* orphans left by each child */

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

/* The grandchild: no stdio of ours (the harness reads those pipes), just a
 * read() that returns when the last write end of the pipe is closed. */
static void grandchild(int rfd, long long *stamp)
{
    char c;
    close(STDIN_FILENO);
    close(STDOUT_FILENO);
    close(STDERR_FILENO);
    while (read(rfd, &c, 1) < 0 && errno == EINTR)
        ;
    *stamp = now_ns();
    _exit(0);
}

/* One child that leaves `count` orphans behind, stamping stamps[0..count). */
static void make_orphans(int pipefd[2], long long *stamps, int count)
{
    pid_t child = fork();
    if (child < 0)
        die("orphans: fork");
    if (child == 0) {
        close(pipefd[1]);
        for (int i = 0; i < count; i++) {
            pid_t g = fork();
            if (g < 0)
                _exit(1);
            if (g == 0)
                grandchild(pipefd[0], &stamps[i]);
        }
        _exit(0);
    }
    int status;
    while (waitpid(child, &status, 0) < 0)
        if (errno != EINTR)
            die("orphans: waitpid");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "orphans: a child could not fork all its grandchildren\n");
        exit(1);
    }
}

static int read_line(void)
{
    char buf[64];
    return fgets(buf, sizeof buf, stdin) != NULL;
}

static void report_exits(const long long *stamps, int n)
{
    long long first = 0, last = 0;
    int missing = 0;
    for (int i = 0; i < n; i++) {
        if (!stamps[i]) {
            missing++;
            continue;
        }
        if (!first || stamps[i] < first)
            first = stamps[i];
        if (stamps[i] > last)
            last = stamps[i];
    }
    printf("exits %lld %lld %d\n", first, last, missing);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    int hold = argc == 3 && strcmp(argv[2], "hold") == 0;
    if (argc != 2 + hold || atoi(argv[1]) <= 0) {
        fprintf(stderr, "usage: orphans N [hold]\n");
        return 2;
    }
    int n = atoi(argv[1]);
    long long *stamps = mmap(NULL, n * sizeof *stamps, PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (stamps == MAP_FAILED)
        die("orphans: mmap");
    int pipefd[2];
    if (pipe(pipefd) != 0)
        die("orphans: pipe");
    for (int done = 0; done < n; done += BATCH)
        make_orphans(pipefd, stamps + done, n - done < BATCH ? n - done : BATCH);
    close(pipefd[0]);

    printf("ready %d\n", n);
    fflush(stdout);
    if (!read_line()) {
        fprintf(stderr, "orphans: stdin closed before \"go\"\n");
        return 1;
    }

    long long t0 = now_ns();
    close(pipefd[1]);
    printf("t0 %lld\n", t0);
    fflush(stdout);

    if (hold && !read_line())
        return 1;
    if (getpid() == 1)
        while (wait(NULL) > 0 || errno == EINTR)
            ;

    while (read_line())
        report_exits(stamps, n);
    return 0;
}
