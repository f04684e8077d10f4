/* SPDX-License-Identifier: MIT */
/*
 * A cache in front of an expensive computation: "PRIME <n>" answers the
 * n-th prime (n <= 2000000), found by trial division on a worker thread
 * (coil_defer_to_thread). Answers are kept per loop (shared nothing: no
 * lock, each loop computes a value at most once while it stays cached):
 *   "<prime> miss"  computed for this request,
 *   "<prime> hit"   from the cache,
 *   "<prime> wait"  another request was already computing it: this one
 *                   waited for the same job instead of starting its own
 *                   (Twisted's tip: cache the Deferred, not only the value).
 * A connection waits (paused) for its answer, so answers keep their order.
 */
#include "example.h"

#define SLOTS 256

struct client { struct client *next, **pprev; struct coil_conn *conn; };

struct entry {                 /* one cache slot */
	unsigned n;                /* 0: empty */
	unsigned long value;
	bool ready;
	struct client *waiters;    /* while computing */
};

struct cache { struct entry slot[SLOTS]; };
struct job { struct cache *c; unsigned n; unsigned long value; };

static int nth_prime(void *arg)   /* on a worker: the expensive part */
{
	struct job *j = arg;
	unsigned found = 0;

	for (unsigned long p = 2;; p++) {
		bool prime = true;
		for (unsigned long d = 2; d * d <= p && prime; d++)
			prime = p % d != 0;
		if (prime && ++found == j->n) {
			j->value = p;
			return 0;
		}
	}
}

static void answer(struct coil_conn *conn, unsigned long v, const char *how)
{
	char out[48];

	coil_conn_write(conn, out, (size_t)snprintf(out, 48, "%lu %s\n", v, how));
}

static void computed(struct coil_loop *loop, void *arg, int res)
{
	struct job *j = arg;
	struct entry *e = &j->c->slot[j->n % SLOTS];
	const char *how = "miss";

	(void)loop;
	if (e->n != j->n)          /* evicted meanwhile (nobody waited) */
		return free(j);
	for (struct client *w = e->waiters; w; w = e->waiters) {
		e->waiters = w->next;
		if (res < 0)
			coil_conn_write(w->conn, "ERR\n", 4);
		else
			answer(w->conn, j->value, how);
		how = "wait";           /* the first asked first */
		w->pprev = NULL;
		coil_conn_resume(w->conn);
	}
	e->value = j->value;
	e->ready = res == 0;
	if (res < 0)
		e->n = 0;
	free(j);
}

static int on_line(struct coil_conn *conn, const uint8_t *text, size_t len)
{
	struct cache *c = coil_loop_data(coil_conn_loop(conn));
	struct client *me = coil_conn_state(conn), **tail;
	unsigned n = 0;
	struct entry *e;
	struct job *j;

	for (size_t i = 6; i < len && i < 14 && text[i] >= '0' && text[i] <= '9'; i++)
		n = n * 10 + (unsigned)(text[i] - '0');
	if (len < 7 || memcmp(text, "PRIME ", 6) || !n || n > 2000000)
		return coil_conn_write(conn, "ERR what?\n", 10), 0;
	e = &c->slot[n % SLOTS];
	if (e->n == n && e->ready)
		return answer(conn, e->value, "hit"), 0;
	if (e->n != n || !e->waiters) {   /* start a job (evicting the slot) */
		if (e->waiters)                /* busy with another n: no room */
			return coil_conn_write(conn, "ERR busy\n", 9), 0;
		if (!(j = malloc(sizeof(*j))))
			abort();
		*j = (struct job){ c, n, 0 };
		int rc = coil_defer_to_thread(coil_conn_loop(conn), nth_prime,
					      computed, j);

		if (rc == -ESHUTDOWN) {    /* the loop is stopping: not busy */
			free(j);
			coil_conn_write(conn, "ERR shutting down\n", 18);
			coil_conn_close(conn);
			return 0;
		}
		if (rc < 0)
			return free(j), coil_conn_write(conn, "ERR busy\n", 9), 0;
		*e = (struct entry){ .n = n };
	}
	for (tail = &e->waiters; *tail; tail = &(*tail)->next)
		;
	*me = (struct client){ NULL, tail, conn };
	*tail = me;
	coil_conn_pause(conn);
	return 0;
}

static const struct coil_frame lines = { .kind = COIL_FRAME_LINE,
	.delim = "\n", .max = 64, .on_msg = on_line };

static size_t on_data(struct coil_conn *conn, const uint8_t *d, size_t n)
{ return coil_frame_feed(&lines, conn, d, n); }

static void on_close(struct coil_conn *conn, int reason)
{
	struct client *me = coil_conn_state(conn);

	(void)reason;
	if (me->pprev) {           /* still waiting: leave the list */
		*me->pprev = me->next;
		if (me->next)
			me->next->pprev = me->pprev;
	}
}

static void loop_start(struct coil_loop *loop, void *arg)
{
	struct cache *c = calloc(1, sizeof(*c));  /* freed by example_run */
	if (!c || arg)
		abort();
	coil_loop_set_data(loop, c);
}

static const struct coil_proto_ops ops = { .on_data = on_data,
	.on_close = on_close };

int main(int argc, char **argv)
{
	struct coil_engine_opts eo = { .loop_start = loop_start };
	struct coil_service svc = { .ops = &ops, .port = 7013,
				    .state_size = sizeof(struct client) };

	return example_run("cache", argc, argv, &eo, &svc);
}
