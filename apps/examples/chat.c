/* SPDX-License-Identifier: MIT */
/*
 * A line chat: every line a client sends goes to every client (itself
 * included), whichever loop serves them. Each loop keeps only its own
 * clients (shared nothing); a line travels to the other loops as a message
 * (coil_loop_post), one refcounted copy for all. A loop whose queue is
 * full gets the line later, in order, from a retry timer: nothing is lost.
 * Lines are at most 4 KiB; a longer one closes its connection. A new
 * client is greeted with "* loop N" (the loop serving it). */
#include "example.h"
#include <stdatomic.h>

struct client { struct client *next, *prev; struct coil_conn *conn; };
struct line { atomic_int refs; size_t len; char text[]; };
/* A post the target could not take yet. */
struct pending { struct pending *next; struct coil_loop *to; struct line *line; };
struct room {                  /* one per loop */
	struct client clients;     /* sentinel */
	struct pending *head, **tail;
	struct coil_timer retry;
};

static void unref(struct line *l)
{
	if (atomic_fetch_sub(&l->refs, 1) == 1)
		free(l);
}

/* On the target loop: write the line to each of its clients. */
static void deliver(struct coil_loop *loop, void *arg)
{
	struct room *r = coil_loop_data(loop);
	struct line *l = arg;

	for (struct client *c = r->clients.next; c != &r->clients; c = c->next)
		coil_conn_write(c->conn, l->text, l->len);
	unref(l);
}

/* Post what waits, in order; stop at the first full queue. */
static void flush(struct room *r)
{
	while (r->head) {
		struct pending *p = r->head;
		int ret = coil_loop_post(p->to, deliver, p->line);

		if (ret == -EAGAIN) {
			coil_timer_start(&r->retry, 1);
			return;
		}
		if (ret)
			unref(p->line);  /* that loop has finished */
		r->head = p->next;
		free(p);
	}
	r->tail = &r->head;
}

static void retry(struct coil_timer *t) { flush(t->data); }

static int on_line(struct coil_conn *conn, const uint8_t *text, size_t len)
{
	struct coil_loop *self = coil_conn_loop(conn);
	struct coil_engine *eng = coil_loop_engine(self);
	struct room *r = coil_loop_data(self);
	unsigned n = coil_engine_loops(eng);
	struct line *l = malloc(sizeof(*l) + len + 1);

	if (!l)
		abort();
	memcpy(l->text, text, len);
	l->text[len] = '\n', l->len = len + 1;
	atomic_init(&l->refs, (int)n + 1);   /* + ours, dropped below */
	for (unsigned i = 0; i < n; i++) {
		struct coil_loop *to = coil_engine_loop(eng, i);
		struct pending *p;
		int ret = 0;

		if (!to)                     /* not running yet: no clients */
			unref(l);
		else if (to == self)
			deliver(self, l);
		else if (r->head || (ret = coil_loop_post(to, deliver, l)) == -EAGAIN) {
			if (!(p = malloc(sizeof(*p))))
				abort();
			*p = (struct pending){ NULL, to, l };
			*r->tail = p;
			r->tail = &p->next;
			flush(r);
		} else if (ret) {
			unref(l);                /* that loop has finished */
		}
	}
	unref(l);
	return 0;
}

static const struct coil_frame lines = { .kind = COIL_FRAME_LINE,
	.delim = "\n", .max = 4096, .on_msg = on_line };

static int on_open(struct coil_conn *conn)
{
	struct room *r = coil_loop_data(coil_conn_loop(conn));
	struct client *c = coil_conn_state(conn);
	char hi[32];

	*c = (struct client){ r->clients.next, &r->clients, conn };
	r->clients.next->prev = c;
	r->clients.next = c;
	return coil_conn_write(conn, hi, (size_t)snprintf(hi, sizeof(hi),
			       "* loop %u\n", coil_loop_id(coil_conn_loop(conn))));
}

static size_t on_data(struct coil_conn *conn, const uint8_t *d, size_t n)
{ return coil_frame_feed(&lines, conn, d, n); }

static void on_close(struct coil_conn *conn, int reason)
{
	struct client *c = coil_conn_state(conn);

	(void)reason;  /* gone: leave the room */
	c->prev->next = c->next;
	c->next->prev = c->prev;
}

static void loop_start(struct coil_loop *loop, void *arg)
{
	struct room *r = calloc(1, sizeof(*r));  /* freed by example_run */

	if (!r || arg)
		abort();
	r->clients.next = r->clients.prev = &r->clients;
	r->tail = &r->head;
	coil_timer_init(&r->retry, loop, retry, r);
	coil_loop_set_data(loop, r);
}

static const struct coil_proto_ops ops = { .on_open = on_open,
	.on_data = on_data, .on_close = on_close };

int main(int argc, char **argv)
{
	struct coil_engine_opts eo = { .loop_start = loop_start };
	struct coil_service svc = { .ops = &ops, .port = 7011,
				    .state_size = sizeof(struct client) };

	return example_run("chat", argc, argv, &eo, &svc);
}
