/* SPDX-License-Identifier: MIT */
/*
 * Blocking work off the loop with coil_defer_to_thread (deferToThread).
 * A line protocol:
 *   PING          -> PONG                      (answered on the loop)
 *   HASH <file>   -> <fnv1a-64 hex> <file>     (read and hashed on a worker)
 *   SLEEP <ms>    -> SLEPT <ms>                (a worker blocks that long)
 * Work on a worker answers "ERR <reason>"; when the pool's queue is full
 * the answer is "ERR busy" at once. The loop never blocks, so PING stays
 * fast for everybody while the workers grind. One job per connection at a
 * time: the connection is paused until its answer is written, so answers
 * come in request order, and a graceful stop still answers it.
 */
#include "example.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

struct job {
	struct coil_conn *conn;    /* NULL once the client is gone */
	int ms;                    /* SLEEP */
	uint64_t hash;
	char file[256];            /* HASH */
};

struct state { struct job *job; bool stopping; };

static int work(void *arg)        /* on a worker thread */
{
	struct job *j = arg;
	uint8_t buf[65536];
	ssize_t n;
	int fd;

	if (!j->file[0]) {
		struct timespec ts = { j->ms / 1000, (j->ms % 1000) * 1000000L };

		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
		return 0;
	}
	fd = open(j->file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	j->hash = 0xcbf29ce484222325ull;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < n; i++)
			j->hash = (j->hash ^ buf[i]) * 0x100000001b3ull;
	close(fd);
	return n < 0 ? -EIO : 0;
}

static void done(struct coil_loop *loop, void *arg, int res)  /* the Deferred */
{
	struct job *j = arg;
	struct state *s = j->conn ? coil_conn_state(j->conn) : NULL;
	char out[320];
	int n;

	(void)loop;
	if (s) {
		if (res < 0)
			n = snprintf(out, sizeof(out), "ERR %s\n", strerror(-res));
		else if (j->file[0])
			n = snprintf(out, sizeof(out), "%016llx %s\n",
				     (unsigned long long)j->hash, j->file);
		else
			n = snprintf(out, sizeof(out), "SLEPT %d\n", j->ms);
		coil_conn_write(j->conn, out, (size_t)n);
		s->job = NULL;
		if (s->stopping)       /* the engine is stopping: answered, bye */
			coil_conn_close(j->conn);
		coil_conn_resume(j->conn);
	}
	free(j);
}

static int on_line(struct coil_conn *conn, const uint8_t *text, size_t len)
{
	struct state *s = coil_conn_state(conn);
	char line[300];
	struct job *j;
	int ret;

	if (len >= sizeof(line))
		return coil_conn_write(conn, "ERR too long\n", 13), 0;
	memcpy(line, text, len);
	line[len] = 0;
	if (!strcmp(line, "PING"))
		return coil_conn_write(conn, "PONG\n", 5), 0;
	j = calloc(1, sizeof(*j));
	if (!j)
		return coil_conn_write(conn, "ERR memory\n", 11), 0;
	j->conn = conn;
	if (!strncmp(line, "HASH ", 5) && len - 5 < sizeof(j->file))
		strcpy(j->file, line + 5);
	else if (!strncmp(line, "SLEEP ", 6))
		j->ms = atoi(line + 6);
	else
		return free(j), coil_conn_write(conn, "ERR what?\n", 10), 0;
	ret = coil_defer_to_thread(coil_conn_loop(conn), work, done, j);
	if (ret < 0) {             /* -EAGAIN: the pool is full, say so now */
		free(j);
		coil_conn_write(conn, ret == -EAGAIN ? "ERR busy\n"
						     : "ERR shutting down\n",
				ret == -EAGAIN ? 9 : 18);
		return 0;
	}
	s->job = j;
	coil_conn_pause(conn);     /* the next request waits for this answer */
	return 0;
}

static const struct coil_frame lines = { .kind = COIL_FRAME_LINE,
	.delim = "\n", .max = 512, .on_msg = on_line };

static size_t on_data(struct coil_conn *conn, const uint8_t *d, size_t n)
{ return coil_frame_feed(&lines, conn, d, n); }

static void on_close(struct coil_conn *conn, int reason)
{
	struct state *s = coil_conn_state(conn);

	(void)reason;
	if (s->job)                /* its answer has nowhere to go */
		s->job->conn = NULL;
}

static void on_shutdown(struct coil_conn *conn)  /* a job in flight: answer */
{
	struct state *s = coil_conn_state(conn);

	s->stopping = true;
	if (!s->job)
		coil_conn_close(conn);
}

static const struct coil_proto_ops ops = { .on_data = on_data,
	.on_close = on_close, .on_shutdown = on_shutdown };

int main(int argc, char **argv)
{
	struct coil_engine_opts eo = { 0 };
	struct coil_service svc = { .ops = &ops, .port = 7012,
				    .state_size = sizeof(struct state) };

	return example_run("hashd", argc, argv, &eo, &svc);
}
