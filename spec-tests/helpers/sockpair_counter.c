/* sockpair_counter OUT: two processes ping-pong a counter through a unix
 * socketpair, for the checkpoint tests (CRIU must restore the pair and the
 * data queued in it). The parent sends n, the child reads it, waits and
 * replies n+1, the parent checks the reply and records it in OUT: one
 * fixed-width line rewritten in place with pwrite (OUT stays open the whole
 * time). Each side waits 50 ms with a message in flight, so a dump usually
 * catches data queued in one of the sockets. Any wrong reply, short read or
 * error writes "ERROR ..." to OUT and exits 1.
 *
 * Built static at test time by tests/checkpoint.rs (it runs in busybox
 * containers). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int out = -1;

static void record(const char *line)
{
	char buf[64];
	int n = snprintf(buf, sizeof buf, "%-40s\n", line);
	if (pwrite(out, buf, n, 0) != n)
		_exit(2);
}

static void fail(const char *what)
{
	char buf[64];
	snprintf(buf, sizeof buf, "ERROR %s errno %d", what, errno);
	record(buf);
	_exit(1);
}

static void nap(void)
{
	struct timespec ts = {0, 50 * 1000 * 1000};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* read exactly sizeof(long), retrying on EINTR (CRIU's restore may interrupt) */
static int get(int fd, long *v)
{
	size_t got = 0;
	while (got < sizeof *v) {
		ssize_t r = read(fd, (char *)v + got, sizeof *v - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += r;
	}
	return 0;
}

static int put(int fd, long v)
{
	for (;;) {
		ssize_t r = write(fd, &v, sizeof v);
		if (r < 0 && errno == EINTR)
			continue;
		return r == sizeof v ? 0 : -1;
	}
}

int main(int argc, char **argv)
{
	int sv[2];
	if (argc != 2) {
		fprintf(stderr, "usage: %s OUT\n", argv[0]);
		return 2;
	}
	out = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (out < 0) {
		perror(argv[1]);
		return 2;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		fail("socketpair");
	pid_t pid = fork();
	if (pid < 0)
		fail("fork");
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(sv[0]);
		for (;;) {
			long v;
			if (get(sv[1], &v) < 0)
				_exit(0);
			nap();
			if (put(sv[1], v + 1) < 0)
				_exit(1);
		}
	}
	close(sv[1]);
	long n = 0;
	for (;;) {
		if (put(sv[0], n) < 0)
			fail("send");
		nap();
		long r;
		if (get(sv[0], &r) < 0)
			fail("receive");
		if (r != n + 1) {
			char buf[64];
			snprintf(buf, sizeof buf, "ERROR sent %ld got %ld", n, r);
			record(buf);
			return 1;
		}
		n = r;
		char buf[32];
		snprintf(buf, sizeof buf, "%ld", n);
		record(buf);
	}
}
