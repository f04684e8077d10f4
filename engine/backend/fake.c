/* SPDX-License-Identifier: MIT */
/*
 * The fake backend (coil/testing.h): the kernel replaced by a few arrays, so
 * protocols and the connection core can be tested deterministically. It
 * behaves like io_uring where it matters: receives are multishot into pool
 * buffers and end with -ENOBUFS when the pool is empty; one send at a time,
 * possibly short; cancels complete with -ECANCELED.
 */
#include "backend.h"
#include "../core/xthread.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct peer {
	struct coil_conn *conn;    /* NULL once the server closed it */
	uint8_t *in;               /* client -> server, not yet delivered */
	size_t in_len, in_cap;
	uint8_t *out;              /* server -> client, not yet taken */
	size_t out_len, out_cap;
	size_t send_max;
	bool stall, eof, rst;
	bool recv_armed, send_pending;
	bool recv_cancel, send_cancel;
	unsigned sends;
	bool closed, reset;
	bool shut;                 /* the server half-closed (FIN) */
	bool stubborn;             /* keeps its side open after the FIN */
	int reason;
	bool connecting;           /* outgoing, not completed by the test */
	bool connect_cancel;
	bool connect_done;         /* the test completed it with connect_res */
	int connect_res;
	struct sockaddr_storage addr;  /* the client's address */
	socklen_t addr_len;
};

struct coil_fake {
	struct coil_loop loop;     /* first: aligned */
	struct coil_service svc;
	struct peer **peers;       /* one allocation each: a callback may add
				      peers (reconnect) while one is in use */
	unsigned npeers, cap;
	unsigned progress;
	struct coil__inbox inbox;  /* coil_loop_post, defer results */
	struct coil__pool pool;
};

static struct coil_fake *F(struct coil_loop *loop)
{
	return loop->be_data;
}

static struct peer *P(const struct coil_conn *c)
{
	return F(c->loop)->peers[c->fd];
}

static int grow(uint8_t **buf, size_t *cap, size_t need)
{
	size_t n = *cap ? *cap : 256;
	uint8_t *p;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	p = realloc(*buf, n);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = n;
	return 0;
}

static int fake_loop_init(struct coil_loop *loop)
{
	loop->be_features = "in-memory";
	return 0;
}

static void fake_loop_fini(struct coil_loop *loop)
{
	(void)loop;
}

static int fake_listen_start(struct coil__listener *lst)
{
	(void)lst;
	return 0;
}

static void fake_listen_stop(struct coil__listener *lst)
{
	lst->closed = true;
}

static void fake_recv_arm(struct coil_conn *c)
{
	P(c)->recv_armed = true;
}

static void fake_recv_cancel(struct coil_conn *c)
{
	P(c)->recv_cancel = true;
}

static void fake_send(struct coil_conn *c)
{
	P(c)->send_pending = true;
}

static void fake_send_file(struct coil_conn *c)
{
	P(c)->send_pending = true;
}

static void fake_send_cancel(struct coil_conn *c)
{
	P(c)->send_cancel = true;
}

static int new_peer(struct coil_fake *f)
{
	if (f->npeers == f->cap) {
		unsigned cap = f->cap ? f->cap * 2 : 16;
		struct peer **p = realloc(f->peers, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		f->peers = p;
		f->cap = cap;
	}
	f->peers[f->npeers] = calloc(1, sizeof(struct peer));
	if (!f->peers[f->npeers])
		return -ENOMEM;
	{
		/* 127.0.0.1, a port per id (coil/testing.h) */
		struct sockaddr_in *sin =
			(struct sockaddr_in *)&f->peers[f->npeers]->addr;

		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sin->sin_port = htons((uint16_t)(40000 + f->npeers % 20000));
		f->peers[f->npeers]->addr_len = sizeof(*sin);
	}
	return (int)f->npeers++;
}

/* An outgoing connection waits for coil_fake_connect_done(). */
static int fake_connect(struct coil_conn *c, const struct sockaddr *sa,
			socklen_t len)
{
	struct coil_fake *f = F(c->loop);
	int id = new_peer(f);

	(void)sa;
	(void)len;
	if (id < 0)
		return id;
	f->peers[id]->conn = c;
	f->peers[id]->connecting = true;
	c->fd = id;
	return 0;
}

static void fake_connect_cancel(struct coil_conn *c)
{
	P(c)->connect_cancel = true;
}

/* Like most clients, the peer answers a FIN with its own, unless the
 * test made it stubborn. */
static void fake_shut_wr(struct coil_conn *c)
{
	struct peer *p = P(c);

	p->shut = true;
	if (!p->stubborn)
		p->eof = true;
}

static void fake_close(struct coil_conn *c, bool reset)
{
	struct peer *p;

	if (c->fd < 0)
		return;
	p = P(c);
	p->conn = NULL;
	p->closed = true;
	p->reset = reset;
	p->reason = c->close_reason;
}

static void complete_send_file(struct coil_fake *f, struct peer *p)
{
	struct coil_conn *c = p->conn;
	size_t want = c->inflight;
	ssize_t n;

	if (p->send_max && p->send_max < want)
		want = p->send_max;
	if (grow(&p->out, &p->out_cap, p->out_len + want))
		abort();
	n = pread(c->file_seg->fd, p->out + p->out_len, want,
		  (off_t)c->file_seg->off);
	p->send_pending = false;
	p->sends++;
	f->progress++;
	if (n <= 0) {
		coil__conn_sent(c, n < 0 ? -errno : -EIO);
		return;
	}
	p->out_len += (size_t)n;
	coil__conn_sent(c, (int)n);
}

static void complete_send(struct coil_fake *f, struct peer *p)
{
	struct coil_conn *c = p->conn;
	size_t total = 0, want;

	if (!c->niov) {
		complete_send_file(f, p);
		return;
	}

	for (uint32_t i = 0; i < c->niov; i++)
		total += c->iov[i].iov_len;
	want = p->send_max && p->send_max < total ? p->send_max : total;
	if (grow(&p->out, &p->out_cap, p->out_len + want))
		abort();
	for (uint32_t i = 0, done = 0; i < c->niov && done < want; i++) {
		size_t n = c->iov[i].iov_len;

		if (n > want - done)
			n = want - done;
		if (!n)                /* an empty iov may have a NULL base */
			continue;
		memcpy(p->out + p->out_len, c->iov[i].iov_base, n);
		p->out_len += n;
		done += (uint32_t)n;
	}
	p->send_pending = false;
	p->sends++;
	f->progress++;
	coil__conn_sent(c, (int)want);
}

static void complete_recv(struct coil_fake *f, struct peer *p)
{
	struct coil_conn *c = p->conn;
	struct coil__bufpool *pool = &f->loop.pool;

	if (p->recv_cancel || p->rst) {
		p->recv_armed = p->recv_cancel = false;
		f->progress++;
		coil__conn_recv_done(c, p->rst ? -ECONNRESET : -ECANCELED);
		return;
	}
	while (p->in_len && p->conn) {
		int32_t bid = coil__bufpool_take(pool);
		size_t n = p->in_len < pool->size ? p->in_len : pool->size;

		f->progress++;
		if (bid < 0) {
			p->recv_armed = false;
			coil__conn_recv_done(c, -ENOBUFS);
			return;
		}
		memcpy(coil__buf_addr(pool, (uint32_t)bid), p->in, n);
		memmove(p->in, p->in + n, p->in_len - n);
		p->in_len -= n;
		coil__conn_recv(c, coil__buf_addr(pool, (uint32_t)bid), n, bid);
		if (p->recv_cancel) {
			p->recv_armed = p->recv_cancel = false;
			coil__conn_recv_done(c, -ECANCELED);
			return;
		}
	}
	if (p->eof && p->conn) {
		p->recv_armed = false;
		f->progress++;
		coil__conn_recv_done(c, 0);
	}
}

static void fake_wait(struct coil_loop *loop, int64_t timeout_ms)
{
	struct coil_fake *f = F(loop);

	(void)timeout_ms;
	/* Messages or defer results waiting: settle goes on turning. */
	if (coil__mpmc_len(&f->inbox.posts) || f->inbox.local ||
	    atomic_load(&f->inbox.done))
		f->progress++;
	for (unsigned i = 0; i < f->npeers; i++) {
		struct peer *p = f->peers[i];

		if (p->conn && p->connecting &&
		    (p->connect_cancel || p->connect_done)) {
			p->connecting = false;
			f->progress++;
			coil__conn_connected(p->conn, p->connect_cancel
							      ? -ECANCELED
							      : p->connect_res);
			continue;
		}
		if (p->conn && p->send_pending) {
			if (p->send_cancel) {
				p->send_pending = p->send_cancel = false;
				f->progress++;
				coil__conn_sent(p->conn, -ECANCELED);
			} else if (p->rst) {
				p->send_pending = false;
				f->progress++;
				coil__conn_sent(p->conn, -ECONNRESET);
			} else if (!p->stall) {
				complete_send(f, p);
			}
		}
		if (p->conn && p->recv_armed)
			complete_recv(f, p);
	}
}

static void fake_wake(struct coil_loop *loop)
{
	(void)loop;
}

static int fake_addr(const struct coil_conn *c, bool peer,
		     struct sockaddr_storage *ss, socklen_t *len)
{
	struct peer *p = P(c);

	if (p->rst)
		return -ENOTCONN;
	if (peer) {
		memcpy(ss, &p->addr, sizeof(*ss));
		*len = p->addr_len;
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		uint16_t port = c->lst->svc->port;

		memset(ss, 0, sizeof(*ss));
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sin->sin_port = htons(port ? port : 8080);
		*len = sizeof(*sin);
	}
	return 0;
}

static const struct coil__backend_ops fake_ops = {
	.name = "fake",
	.loop_init = fake_loop_init,
	.loop_fini = fake_loop_fini,
	.listen_start = fake_listen_start,
	.listen_stop = fake_listen_stop,
	.recv_arm = fake_recv_arm,
	.recv_cancel = fake_recv_cancel,
	.send = fake_send,
	.send_cancel = fake_send_cancel,
	.send_file = fake_send_file,
	.connect = fake_connect,
	.connect_cancel = fake_connect_cancel,
	.shut_wr = fake_shut_wr,
	.close = fake_close,
	.wait = fake_wait,
	.wake = fake_wake,
	.addr = fake_addr,
};

/* ---- coil/testing.h ---- */

int coil_fake_create(const struct coil_fake_opts *opts,
		     const struct coil_service *svc, struct coil_fake **out)
{
	struct coil_fake_opts o = { 0 };
	struct coil__loop_opts lo = { 0 };
	struct coil_fake *f;
	int ret;

	if (!svc || !svc->ops || !svc->ops->on_data)
		return -EINVAL;
	if (opts)
		memcpy(&o, opts, opts->sz && opts->sz < sizeof(o) ? opts->sz
								   : sizeof(o));
	f = aligned_alloc(64, (sizeof(*f) + 63) & ~(size_t)63);
	if (!f)
		return -ENOMEM;
	memset(f, 0, sizeof(*f));
	memcpy(&f->svc, svc, svc->sz && svc->sz < sizeof(f->svc)
				     ? svc->sz
				     : sizeof(f->svc));
	lo.bufs = o.bufs ? o.bufs : 64;
	lo.buf_size = o.buf_size ? o.buf_size : 4096;
	lo.max_conns = o.max_conns ? o.max_conns : 1024;
	lo.state_size = f->svc.state_size;
	lo.drain_ms = 5000;
	ret = coil__loop_init(&f->loop, &lo, &fake_ops);
	if (ret) {
		free(f);
		return ret;
	}
	ret = coil__inbox_init(&f->inbox, o.post_queue);
	if (ret)
		goto fail_loop;
	ret = coil__pool_init(&f->pool, o.defer_threads,
			      o.defer_queue ? o.defer_queue : 64);
	if (ret)
		goto fail_inbox;
	f->inbox.loop = &f->loop;
	f->inbox.pool = &f->pool;
	f->loop.inbox = &f->inbox;
	f->loop.fake_clock = true;
	f->loop.now_ms = 1000;
	f->loop.now_ns = 1000 * 1000000ull;
	coil__wheel_init(&f->loop.wheel, f->loop.now_ms);
	f->loop.be_data = f;
	fake_loop_init(&f->loop);
	f->loop.lst[0].loop = &f->loop;
	f->loop.lst[0].svc = &f->svc;
	f->loop.lst[0].fd = -1;
	f->loop.nlst = 1;
	*out = f;
	return 0;
fail_inbox:
	coil__inbox_fini(&f->inbox);
fail_loop:
	coil__loop_fini(&f->loop);
	free(f);
	return ret;
}

void coil_fake_destroy(struct coil_fake *f)
{
	struct coil__conn_link *l;

	if (!f)
		return;
	for (l = f->loop.all.next; l != &f->loop.all; l = l->next)
		coil_conn_abort(coil__conn_of_link(l));
	coil_fake_settle(f);
	/* Jobs still out: cancel what no worker took, wait for the rest
	 * (each done callback runs, as on an engine's forced stop). */
	coil__inbox_cancel_all(&f->inbox);
	while (coil__inbox_busy(&f->inbox)) {
		if (!f->pool.nthreads)
			coil__pool_run_one(&f->pool);
		coil__loop_turn(&f->loop, false);
	}
	coil__inbox_close(&f->inbox);
	coil__pool_fini(&f->pool);
	coil__inbox_fini(&f->inbox);
	coil__loop_fini(&f->loop);
	for (unsigned i = 0; i < f->npeers; i++) {
		free(f->peers[i]->in);
		free(f->peers[i]->out);
		free(f->peers[i]);
	}
	free(f->peers);
	free(f);
}

unsigned coil_fake_defer_run(struct coil_fake *f, unsigned max)
{
	unsigned n = 0;

	if (f->pool.nthreads)
		return 0;
	while (n < max && coil__pool_run_one(&f->pool))
		n++;
	return n;
}

struct coil_loop *coil_fake_loop(struct coil_fake *f)
{
	return &f->loop;
}

int coil_fake_connect(struct coil_fake *f)
{
	unsigned before = f->loop.nconns, refused = f->loop.lst[0].refused;
	int id = new_peer(f);

	if (id < 0)
		return id;
	coil__conn_accepted(&f->loop.lst[0], id);
	if (f->loop.nconns == before) {
		f->peers[id]->closed = true;
		return f->loop.lst[0].refused != refused ? -EMFILE
							 : -ECONNREFUSED;
	}
	f->peers[id]->conn = coil__conn_of_link(f->loop.all.next);
	if (f->peers[id]->conn->flags & CONN_REFUSED) {
		coil_fake_settle(f);
		return -ECONNREFUSED;
	}
	coil_fake_settle(f);
	return id;
}

static struct peer *peer(struct coil_fake *f, int id)
{
	return id >= 0 && (unsigned)id < f->npeers ? f->peers[id] : NULL;
}

int coil_fake_queue(struct coil_fake *f, int id, const void *data, size_t len)
{
	struct peer *p = peer(f, id);

	if (!p || !p->conn)
		return -ENOTCONN;
	if (!len)                  /* data may be NULL: no memcpy from it */
		return 0;
	if (grow(&p->in, &p->in_cap, p->in_len + len))
		return -ENOMEM;
	memcpy(p->in + p->in_len, data, len);
	p->in_len += len;
	return 0;
}

int coil_fake_feed(struct coil_fake *f, int id, const void *data, size_t len)
{
	int ret = coil_fake_queue(f, id, data, len);

	if (!ret)
		coil_fake_settle(f);
	return ret;
}

void coil_fake_shutdown(struct coil_fake *f, int id)
{
	struct peer *p = peer(f, id);

	if (p) {
		p->eof = true;
		coil_fake_settle(f);
	}
}

void coil_fake_reset(struct coil_fake *f, int id)
{
	struct peer *p = peer(f, id);

	if (p) {
		p->rst = true;
		coil_fake_settle(f);
	}
}

void coil_fake_turn(struct coil_fake *f)
{
	coil__loop_turn(&f->loop, false);
}

void coil_fake_settle(struct coil_fake *f)
{
	for (int i = 0; i < 1000; i++) {
		f->progress = 0;
		coil_fake_turn(f);
		/* (a wheel behind the clock has due timers left over) */
		if (!f->progress && !f->loop.dirty &&
		    f->loop.wheel.cur_ms >= f->loop.now_ms)
			break;
	}
}

void coil_fake_advance(struct coil_fake *f, uint64_t ms)
{
	for (uint64_t i = 0; i < ms; i++) {
		f->loop.now_ms++;
		f->loop.now_ns = f->loop.now_ms * 1000000ull;
		coil_fake_turn(f);
	}
	coil_fake_settle(f);
}

void coil_fake_set_send(struct coil_fake *f, int id, size_t max, bool stall)
{
	struct peer *p = peer(f, id);

	if (p) {
		p->send_max = max;
		p->stall = stall;
		coil_fake_settle(f);
	}
}

size_t coil_fake_take(struct coil_fake *f, int id, void *out, size_t cap)
{
	struct peer *p = peer(f, id);
	size_t n;

	if (!p || !p->out_len || !cap)  /* out may be NULL when cap is 0 */
		return 0;
	n = p->out_len < cap ? p->out_len : cap;
	memcpy(out, p->out, n);
	memmove(p->out, p->out + n, p->out_len - n);
	p->out_len -= n;
	return n;
}

size_t coil_fake_pending(struct coil_fake *f, int id)
{
	struct peer *p = peer(f, id);
	return p ? p->out_len : 0;
}

unsigned coil_fake_sends(struct coil_fake *f, int id)
{
	struct peer *p = peer(f, id);
	return p ? p->sends : 0;
}

bool coil_fake_closed(struct coil_fake *f, int id, int *reason, bool *reset)
{
	struct peer *p = peer(f, id);

	if (!p || !p->closed)
		return false;
	if (reason)
		*reason = p->reason;
	if (reset)
		*reset = p->reset;
	return true;
}

bool coil_fake_shut(struct coil_fake *f, int id)
{
	struct peer *p = peer(f, id);

	return p && p->shut;
}

void coil_fake_set_stubborn(struct coil_fake *f, int id, bool on)
{
	struct peer *p = peer(f, id);

	if (p)
		p->stubborn = on;
}

int coil_fake_connecting(struct coil_fake *f)
{
	for (unsigned i = 0; i < f->npeers; i++)
		if (f->peers[i]->conn && f->peers[i]->connecting &&
		    !f->peers[i]->connect_done)
			return (int)i;
	return -1;
}

int coil_fake_connect_done(struct coil_fake *f, int id, int res)
{
	struct peer *p = peer(f, id);

	if (!p || !p->conn || !p->connecting || p->connect_done || res > 0)
		return -EINVAL;
	p->connect_done = true;
	p->connect_res = res;
	coil_fake_settle(f);
	return 0;
}

struct coil_conn *coil_fake_conn(struct coil_fake *f, int id)
{
	struct peer *p = peer(f, id);
	return p ? p->conn : NULL;
}

unsigned coil_fake_free_bufs(struct coil_fake *f)
{
	return f->loop.pool.nfree;
}

int coil_fake_set_peer(struct coil_fake *f, int id, const struct sockaddr *sa,
		       socklen_t len)
{
	struct peer *p = peer(f, id);

	if (!p || !sa || len > sizeof(p->addr) ||
	    len < (socklen_t)sizeof(sa_family_t))
		return -EINVAL;
	memset(&p->addr, 0, sizeof(p->addr));
	memcpy(&p->addr, sa, len);
	p->addr_len = len;
	return 0;
}
