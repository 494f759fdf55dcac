/*
 * The yardstick for `reparent bench`: the same work per case in bare C, with
 * no model, no checking and no control channel.
 *
 * Per case: a fresh user + PID + mount namespace, PID 1 mounts /proc, a
 * random tree of 16 processes (init included) forked top down by their
 * parents, a quarter of them subreapers; then 4 times: SIGKILL a random
 * living non-init process through a pidfd, wait for the pidfd, read
 * /proc/<pid>/stat of every process; then kill PID 1 and wait.
 *
 *   cc -O2 -o /tmp/bench-baseline ci/bench-baseline.c && /tmp/bench-baseline 200
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NODES 16
#define KILLS 4

static unsigned long long rng = 1;
static unsigned next(void) {
	rng ^= rng >> 12; rng ^= rng << 25; rng ^= rng >> 27;
	return (unsigned)((rng * 0x2545F4914F6CDD1DULL) >> 32);
}

static int parent_of[NODES];
static int report_fd;

static void die(const char *what) { perror(what); _exit(1); }

static void write_file(const char *path, const char *text) {
	int fd = open(path, O_WRONLY);
	if (fd < 0 || write(fd, text, strlen(text)) < 0) die(path);
	close(fd);
}

/* A node: fork its children (each runs node()), report, then wait forever. */
static void node(int me) {
	if (me != 0 && (next() % 4 == 0)) prctl(PR_SET_CHILD_SUBREAPER, 1);
	signal(SIGCHLD, SIG_IGN);
	for (int c = me + 1; c < NODES; c++) {
		if (parent_of[c] != me) continue;
		pid_t p = fork();
		if (p < 0) die("fork");
		if (p == 0) { node(c); _exit(0); }
	}
	int msg[2] = { me, getpid() };
	if (write(report_fd, msg, sizeof msg) != sizeof msg) die("report");
	if (me != 0) for (;;) pause();
}

static void init_main(void) {
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) die("mount proc");
	int fds[2];
	if (pipe(fds) < 0) die("pipe");
	report_fd = fds[1];
	node(0);
	int pid[NODES], pidfd[NODES], alive[NODES];
	for (int i = 0; i < NODES; i++) {
		int msg[2];
		if (read(fds[0], msg, sizeof msg) != sizeof msg) die("read report");
		pid[msg[0]] = msg[1];
	}
	for (int i = 0; i < NODES; i++) { pidfd[i] = syscall(SYS_pidfd_open, pid[i], 0); alive[i] = 1; }
	char buf[512], path[64];
	for (int k = 0; k < KILLS; k++) {
		int v;
		do v = 1 + next() % (NODES - 1); while (!alive[v]);
		syscall(SYS_pidfd_send_signal, pidfd[v], SIGKILL, NULL, 0);
		struct pollfd p = { .fd = pidfd[v], .events = POLLIN };
		poll(&p, 1, -1);
		alive[v] = 0;
		for (int i = 0; i < NODES; i++) {
			if (!alive[i]) continue;
			snprintf(path, sizeof path, "/proc/%d/stat", pid[i]);
			int fd = open(path, O_RDONLY);
			if (fd >= 0) { if (read(fd, buf, sizeof buf) < 0) die("read stat"); close(fd); }
		}
	}
	_exit(0); /* PID 1 exits: the kernel kills the rest (zap_pid_ns_processes) */
}

static void one_case(void) {
	for (int i = 1; i < NODES; i++) parent_of[i] = next() % i;
	pid_t helper = fork();
	if (helper < 0) die("fork helper");
	if (helper == 0) {
		uid_t uid = getuid(); gid_t gid = getgid();
		if (unshare(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS) < 0) die("unshare");
		char map[64];
		write_file("/proc/self/setgroups", "deny");
		snprintf(map, sizeof map, "0 %d 1", uid); write_file("/proc/self/uid_map", map);
		snprintf(map, sizeof map, "0 %d 1", gid); write_file("/proc/self/gid_map", map);
		if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) die("make private");
		pid_t init = fork();
		if (init < 0) die("fork init");
		if (init == 0) init_main();
		int initfd = syscall(SYS_pidfd_open, init, 0);
		siginfo_t si;
		waitid(P_PIDFD, initfd, &si, WEXITED);
		_exit(0);
	}
	int st;
	waitpid(helper, &st, 0);
}

int main(int argc, char **argv) {
	int cases = argc > 1 ? atoi(argv[1]) : 200;
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < cases; i++) one_case();
	clock_gettime(CLOCK_MONOTONIC, &b);
	double s = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
	printf("baseline: %d cases in %.3f s: %.1f cases/s, %.3f ms per case\n", cases, s, cases / s, s * 1000 / cases);
	return 0;
}
