/* SPDX-License-Identifier: MIT */
/*
 * The engine: one pinned thread per loop, one SO_REUSEPORT listener per loop
 * and service, signals, graceful shutdown.
 */
#include "internal.h"
#include "xthread.h"
#include "../backend/backend.h"
#include "../steer/steering.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct loop_slot {
	struct coil_loop loop;  /* first: cache-aligned */
	struct coil_engine *eng;
	pthread_t thread;
	int start_err;
	atomic_int state;       /* 0 starting, 1 running, 2 exited */
	struct coil__inbox inbox;  /* outlives the loop's run */
};

struct coil_engine {
	struct coil_engine_opts opts;
	const struct coil__backend_ops *be;
	unsigned nloops;
	int *cpus;
	struct loop_slot *slots;
	struct coil_service svc[COIL__MAX_SERVICES];
	bool client[COIL__MAX_SERVICES];  /* coil_engine_client: no listener */
	unsigned nsvc;
	int *lfd;                  /* [svc * nloops + loop] */
	uint16_t port[COIL__MAX_SERVICES];
	struct coil__steer *steer[COIL__MAX_SERVICES];
	struct coil__steer_spec steer_spec;
	char *steer_arg;           /* our copy of opts.steer */
	size_t state_size;
	/* UDP services: [svc * nloops + loop] sockets (-1 on DPDK) */
	struct coil_udp_service usvc[COIL__MAX_SERVICES];
	unsigned nudp;
	int *ufd;
	uint16_t uport[COIL__MAX_SERVICES];
	atomic_bool stop;
	bool ran;
	struct coil__pool pool;    /* coil_defer_to_thread workers */
	bool pool_up;
};

static int pick_cpus(struct coil_engine *eng, unsigned want)
{
	cpu_set_t set;
	unsigned n = 0, avail;

	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return -errno;
	avail = (unsigned)CPU_COUNT(&set);
	if (!want)
		want = avail;
	eng->cpus = calloc(want, sizeof(int));
	if (!eng->cpus)
		return -ENOMEM;
	if (want > avail)
		coil__log("%u loops on %u CPUs: loops will share CPUs", want,
			  avail);
	while (n < want) {
		for (int c = 0; c < CPU_SETSIZE && n < want; c++)
			if (CPU_ISSET(c, &set))
				eng->cpus[n++] = c;
	}
	eng->nloops = want;
	return 0;
}

int coil_engine_create(const struct coil_engine_opts *opts,
		       struct coil_engine **out)
{
	struct coil_engine *eng;
	int ret;

	eng = calloc(1, sizeof(*eng));
	if (!eng)
		return -ENOMEM;
	if (opts) {
		size_t n = opts->sz && opts->sz < sizeof(eng->opts)
				   ? opts->sz
				   : sizeof(eng->opts);
		memcpy(&eng->opts, opts, n);
	}
	if (eng->opts.name)
		coil__log_name = eng->opts.name;
	if (!eng->opts.bufs)
		eng->opts.bufs = 2048;
	if (!eng->opts.buf_size)
		eng->opts.buf_size = 4096;
	if (!eng->opts.max_conns)
		eng->opts.max_conns = 65536;
	if (!eng->opts.drain_ms)
		eng->opts.drain_ms = 5000;
	if (!eng->opts.poll_us)
		eng->opts.poll_us = 50;
	/* Measured with scripts/bench echo: 5-10% less CPU per message under
	 * load, no cost at a trickle (only used after busy turns). */
	if (!eng->opts.coalesce_us)
		eng->opts.coalesce_us = 20;
	else if (eng->opts.coalesce_us == COIL_COALESCE_OFF)
		eng->opts.coalesce_us = 0;
	if (eng->opts.bufs > 65536 || eng->opts.buf_size < 64 ||
	    eng->opts.buf_size > (1u << 20) || eng->opts.poll > COIL_POLL_ALWAYS) {
		ret = -EINVAL;
		goto fail;
	}
	if (eng->opts.steer) {
		eng->steer_arg = strdup(eng->opts.steer);
		if (!eng->steer_arg) {
			ret = -ENOMEM;
			goto fail;
		}
	}
	eng->opts.steer = NULL;
	if (coil__steer_parse(eng->steer_arg, &eng->steer_spec)) {
		ret = -EINVAL;
		goto fail;
	}
	switch (eng->opts.backend) {
	case COIL_BACKEND_AUTO: {
		char why[160];

		/* Probed once, here: every loop gets the same backend, and
		 * the reason for a fallback is logged once, not per loop. */
		if (coil__uring_probe(why, sizeof(why)) == 0) {
			eng->be = &coil__uring_ops;
		} else {
			coil__log("io_uring unavailable (%s): falling back to "
				  "epoll", why);
			eng->be = &coil__epoll_ops;
		}
		break;
	}
	case COIL_BACKEND_URING:
		eng->be = &coil__uring_ops;
		break;
	case COIL_BACKEND_EPOLL:
		eng->be = &coil__epoll_ops;
		break;
	case COIL_BACKEND_DPDK:
#if COIL_HAVE_DPDK
		eng->be = &coil__dpdk_ops;
		break;
#else
		coil__log("this build has no DPDK backend (libdpdk was not "
			  "found at build time)");
		ret = -EPROTONOSUPPORT;
		goto fail;
#endif
	default:
		ret = -EINVAL;
		goto fail;
	}
	ret = pick_cpus(eng, eng->opts.cores);
	if (ret)
		goto fail;
#if COIL_HAVE_DPDK
	if (eng->be == &coil__dpdk_ops) {
		/* One loop per RX/TX queue pair the port grants. */
		ret = coil__dpdk_setup(&eng->opts, &eng->nloops);
		if (ret)
			goto fail;
	}
#endif
	eng->slots = aligned_alloc(64, sizeof(*eng->slots) * eng->nloops);
	if (!eng->slots) {
		ret = -ENOMEM;
		goto fail;
	}
	memset(eng->slots, 0, sizeof(*eng->slots) * eng->nloops);
	for (unsigned i = 0; i < eng->nloops; i++) {
		ret = coil__inbox_init(&eng->slots[i].inbox,
				       eng->opts.post_queue);
		if (ret) {
			while (i--)
				coil__inbox_fini(&eng->slots[i].inbox);
			goto fail;
		}
		eng->slots[i].inbox.pool = &eng->pool;
	}
	eng->lfd = malloc(sizeof(int) * COIL__MAX_SERVICES * eng->nloops);
	eng->ufd = malloc(sizeof(int) * COIL__MAX_SERVICES * eng->nloops);
	if (!eng->lfd || !eng->ufd) {
		ret = -ENOMEM;
		goto fail_inbox;
	}
	*out = eng;
	return 0;
fail_inbox:
	for (unsigned i = 0; i < eng->nloops; i++)
		coil__inbox_fini(&eng->slots[i].inbox);
fail:
#if COIL_HAVE_DPDK
	if (eng->be == &coil__dpdk_ops)
		coil__dpdk_teardown();
#endif
	free(eng->ufd);
	free(eng->lfd);
	free(eng->slots);
	free(eng->cpus);
	free(eng->steer_arg);
	free(eng);
	return ret;
}

int coil_engine_steer_check(const char *steer)
{
	struct coil__steer_spec spec;

	return coil__steer_parse(steer, &spec);
}

const char *coil_engine_backend(const struct coil_engine *eng)
{
	return eng->be->name;
}

int coil_engine_link_wait(struct coil_engine *eng, unsigned timeout_ms)
{
#if COIL_HAVE_DPDK
	if (eng->be == &coil__dpdk_ops)
		return coil__dpdk_link_wait(timeout_ms);
#endif
	(void)eng;
	(void)timeout_ms;
	return 0;
}

int coil__addr_parse(const char *addr, uint16_t port,
		     struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (!addr)
		addr = "0.0.0.0";
	if (inet_pton(AF_INET, addr, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		*len = sizeof(*in4);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*len = sizeof(*in6);
		return 0;
	}
	return -EINVAL;
}

static int listen_one(struct sockaddr_storage *ss, socklen_t len, int backlog)
{
	int one = 1, fd, ret;

	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)ss, len) < 0 || listen(fd, backlog) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

/* Copy `svc` into the next free slot (not yet counted) and parse its
 * address. Returns 0, -EINVAL, or -ENOSPC when no slot is free. */
static int svc_copy(struct coil_engine *eng, const struct coil_service *svc,
		    struct sockaddr_storage *ss, socklen_t *len)
{
	struct coil_service *copy;

	if (!svc || !svc->ops || !svc->ops->on_data)
		return -EINVAL;
	if (eng->nsvc >= COIL__MAX_SERVICES)
		return -ENOSPC;
	if (!eng->be->listen_start) {
		coil__log("TCP is not available on the %s backend yet (UDP, "
			  "ICMP and ARP only)", eng->be->name);
		return -EPROTONOSUPPORT;
	}
	copy = &eng->svc[eng->nsvc];
	memset(copy, 0, sizeof(*copy));
	memcpy(copy, svc, svc->sz && svc->sz < sizeof(*copy) ? svc->sz
							   : sizeof(*copy));
	return coil__addr_parse(copy->addr, copy->port, ss, len);
}

/* TLS runs over kernel sockets only (DPDK's TCP does not carry it yet); a
 * listener takes a server context, a client service a client one. */
static int tls_check(const struct coil_engine *eng,
		     const struct coil_service *svc, bool client)
{
	if (!svc->tls)
		return 0;
	if (eng->be->own_stack) {
		coil__log("TLS is not available on the %s backend yet (its own "
			  "TCP does not carry it): use io_uring or epoll",
			  eng->be->name);
		return -EPROTONOSUPPORT;
	}
	if (coil__tls_is_client(svc->tls) != client) {
		coil__log("a %s service needs a TLS context from %s",
			  client ? "client" : "listening",
			  client ? "coil_tls_client_create" : "coil_tls_create");
		return -EINVAL;
	}
	return 0;
}

int coil_engine_listen(struct coil_engine *eng, const struct coil_service *svc)
{
	struct sockaddr_storage ss;
	struct coil_service *copy;
	socklen_t len;
	unsigned i, idx = eng->nsvc;
	int ret, backlog;

	ret = svc_copy(eng, svc, &ss, &len);
	if (ret)
		return ret;
	copy = &eng->svc[idx];
	ret = tls_check(eng, copy, false);
	if (ret)
		return ret;
	if (eng->be->own_stack) {
		/* The backend's own TCP listens on every loop (listen_start):
		 * no kernel sockets, no steering; a port must be given. */
		if (!copy->port)
			return -EINVAL;
		for (i = 0; i < eng->nloops; i++)
			eng->lfd[idx * eng->nloops + i] = -1;
		eng->port[idx] = copy->port;
		goto done;
	}
	backlog = copy->backlog > 0 ? copy->backlog : 4096;
	for (i = 0; i < eng->nloops; i++) {
		int fd = listen_one(&ss, len, backlog);

		if (fd < 0) {
			ret = fd;
			goto fail;
		}
		eng->lfd[idx * eng->nloops + i] = fd;
		if (i == 0) {
			/* Port 0: every other loop joins the port the first
			 * one was given. */
			if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
				ret = -errno;
				close(fd);
				goto fail;
			}
			eng->port[idx] = ntohs(ss.ss_family == AF_INET
						       ? ((struct sockaddr_in *)&ss)->sin_port
						       : ((struct sockaddr_in6 *)&ss)->sin6_port);
		}
	}
	{
		struct coil__steer_setup su = {
			.port = eng->port[idx],
			.nloops = eng->nloops,
			.fds = &eng->lfd[idx * eng->nloops],
			.cpus = eng->cpus,
		};

		ret = coil__steer_attach(&eng->steer_spec, &su,
					 &eng->steer[idx]);
		if (ret)
			goto fail;
	}
done:
	if (copy->state_size > eng->state_size)
		eng->state_size = copy->state_size;
	eng->nsvc++;
	return (int)idx;
fail:
	while (i--)
		close(eng->lfd[idx * eng->nloops + i]);
	eng->steer[idx] = NULL;
	return ret;
}

int coil_engine_client(struct coil_engine *eng, const struct coil_service *svc)
{
	struct sockaddr_storage ss;
	struct coil_service *copy;
	socklen_t len;
	unsigned idx = eng->nsvc;
	int ret;

	/* Checked once here; coil_loop_connect parses it again per call. */
	ret = svc_copy(eng, svc, &ss, &len);
	if (ret)
		return ret;
	copy = &eng->svc[idx];
	if (!copy->addr || !copy->port)
		return -EINVAL;
	ret = tls_check(eng, copy, true);
	if (ret)
		return ret;
	for (unsigned i = 0; i < eng->nloops; i++)
		eng->lfd[idx * eng->nloops + i] = -1;
	eng->client[idx] = true;
	eng->port[idx] = copy->port;
	if (copy->state_size > eng->state_size)
		eng->state_size = copy->state_size;
	eng->nsvc++;
	return (int)idx;
}

static int udp_socket(struct sockaddr_storage *ss, socklen_t len)
{
	int one = 1, fd, ret;

	fd = socket(ss->ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)ss, len) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

int coil_engine_udp(struct coil_engine *eng, const struct coil_udp_service *svc)
{
	struct sockaddr_storage ss;
	struct coil_udp_service *copy;
	socklen_t len;
	unsigned i, idx = eng->nudp;
	int ret;

	if (!svc || !svc->ops || !svc->ops->on_datagram)
		return -EINVAL;
	if (idx >= COIL__MAX_SERVICES)
		return -ENOSPC;
	copy = &eng->usvc[idx];
	memset(copy, 0, sizeof(*copy));
	memcpy(copy, svc, svc->sz && svc->sz < sizeof(*copy) ? svc->sz
							   : sizeof(*copy));
	if (copy->max_datagram > 65507 || copy->bufs > 65536)
		return -EINVAL;
	if (eng->be->own_stack) {
		/* The backend's stack binds the port on every loop. */
		if (!copy->port)
			return -EINVAL;
		for (i = 0; i < eng->nloops; i++)
			eng->ufd[idx * eng->nloops + i] = -1;
		eng->uport[idx] = copy->port;
		eng->nudp++;
		return (int)idx;
	}
	ret = coil__addr_parse(copy->addr, copy->port, &ss, &len);
	if (ret)
		return ret;
	for (i = 0; i < eng->nloops; i++) {
		int fd = udp_socket(&ss, len);

		if (fd < 0) {
			ret = fd;
			goto fail;
		}
		eng->ufd[idx * eng->nloops + i] = fd;
		if (i == 0) {
			if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
				ret = -errno;
				close(fd);
				goto fail;
			}
			eng->uport[idx] = ntohs(ss.ss_family == AF_INET
							? ((struct sockaddr_in *)&ss)->sin_port
							: ((struct sockaddr_in6 *)&ss)->sin6_port);
		}
	}
	eng->nudp++;
	return (int)idx;
fail:
	while (i--)
		close(eng->ufd[idx * eng->nloops + i]);
	return ret;
}

uint16_t coil_engine_udp_port(const struct coil_engine *eng, int index)
{
	if (index < 0 || (unsigned)index >= eng->nudp)
		return 0;
	return eng->uport[index];
}

/* Give the loop its end of every UDP service and start receiving. */
static int loop_udp_start(struct coil_engine *eng, struct coil_loop *loop)
{
	for (unsigned i = 0; i < eng->nudp; i++) {
		int *fd = &eng->ufd[i * eng->nloops + loop->id];
		int ret;

		if (!eng->be->udp_start)
			return -EPROTONOSUPPORT;
		ret = coil__udp_init(&loop->udp[i], loop, &eng->usvc[i],
				     (int)i, *fd, eng->uport[i]);
		if (ret)
			return ret;
		*fd = -1;   /* the loop owns it */
		loop->nudp++;
		ret = eng->be->udp_start(&loop->udp[i]);
		if (ret)
			return ret;
	}
	return 0;
}

uint16_t coil_engine_port(const struct coil_engine *eng, int index)
{
	if (index < 0 || (unsigned)index >= eng->nsvc)
		return 0;
	return eng->port[index];
}

static void *loop_main(void *arg)
{
	struct loop_slot *slot = arg;
	struct coil_engine *eng = slot->eng;
	struct coil_loop *loop = &slot->loop;
	struct coil__loop_opts o = {
		.id = (unsigned)(slot - eng->slots),
		.poll = eng->opts.poll,
		.poll_us = eng->opts.poll_us,
		.coalesce_us = eng->opts.coalesce_us,
		.bufs = eng->opts.bufs,
		.buf_size = eng->opts.buf_size,
		.max_conns = eng->opts.max_conns,
		.state_size = eng->state_size,
		.drain_ms = eng->opts.drain_ms,
	};
	cpu_set_t set;
	int ret;

	o.cpu = eng->cpus[o.id];
	CPU_ZERO(&set);
	CPU_SET(o.cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set))
		coil__log("loop %u: cannot pin to CPU %d", o.id, o.cpu);
	/* Memory is set aside on the loop's own thread (first touch keeps it
	 * on the loop's NUMA node). */
	ret = coil__loop_init(loop, &o, eng->be);
	if (ret)
		goto fail;
	loop->engine = eng;
	loop->inbox = &slot->inbox;
	slot->inbox.loop = loop;
	loop->turn_cb = eng->opts.loop_turn;
	loop->turn_arg = eng->opts.loop_arg;
	for (unsigned i = 0; i < eng->nsvc; i++) {
		struct coil__listener *l = &loop->lst[i];

		l->loop = loop;
		l->svc = &eng->svc[i];
		l->index = (int)i;
		l->steer = coil__steer_slot(eng->steer[i], o.id);
		l->fd = eng->lfd[i * eng->nloops + o.id];
		eng->lfd[i * eng->nloops + o.id] = -1;  /* the loop owns it */
		l->closed = eng->client[i];  /* a client service never listens */
	}
	loop->nlst = eng->nsvc;
	ret = eng->be->loop_init(loop);
	if (ret)
		goto fail_loop;
	for (unsigned i = 0; i < loop->nlst; i++) {
		if (eng->client[i])
			continue;
		ret = eng->be->listen_start(&loop->lst[i]);
		if (ret)
			goto fail_be;
	}
	ret = loop_udp_start(eng, loop);
	if (ret)
		goto fail_be;
	coil__log("loop %u on CPU %d: backend %s (%s), poll %s, %u x %u B "
		  "receive buffers%s",
		  o.id, o.cpu, eng->be->name, loop->be_features,
		  o.poll == COIL_POLL_ALWAYS     ? "always"
		  : o.poll == COIL_POLL_ADAPTIVE ? "adaptive"
						 : "never",
		  o.bufs, o.buf_size, loop->pool.mem.huge ? " (huge pages)" : "");
	atomic_store(&slot->state, 1);
	if (eng->opts.loop_start)
		eng->opts.loop_start(loop, eng->opts.loop_arg);
	ret = coil__loop_run(loop);
	eng->be->loop_fini(loop);
	coil__loop_fini(loop);
	slot->start_err = ret;
	atomic_store(&slot->state, 2);
	return NULL;
fail_be:
	eng->be->loop_fini(loop);
fail_loop:
	coil__loop_fini(loop);
fail:
	for (unsigned i = 0; i < loop->nlst; i++)
		if (loop->lst[i].fd >= 0)
			close(loop->lst[i].fd);
	atomic_store(&slot->inbox.closed, true);  /* posts: -ESHUTDOWN */
	coil__log("loop %u: cannot start: %s", o.id, strerror(-ret));
	slot->start_err = ret;
	atomic_store(&slot->state, 2);
	return NULL;
}

static void request_stop(struct coil_engine *eng, bool abort_now)
{
	for (unsigned i = 0; i < eng->nloops; i++) {
		struct loop_slot *s = &eng->slots[i];

		/* A loop still starting sees the flags at its first turn. */
		atomic_store(&s->loop.stop_req, true);
		if (abort_now)
			atomic_store(&s->loop.abort_req, true);
		/* Not the backend's wake directly: the loop may be tearing
		 * its backend down this instant (state is still 1 then). */
		if (atomic_load(&s->state) == 1)
			coil__inbox_kick(&s->inbox);
	}
}

int coil_engine_run(struct coil_engine *eng)
{
	sigset_t set, old;
	unsigned i, started = 0, signals = 0;
	int ret = 0;

	if (eng->ran)
		return -EALREADY;
	eng->ran = true;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	signal(SIGPIPE, SIG_IGN);
	/* Workers first (they inherit the blocked signals). */
	ret = coil__pool_init(&eng->pool, eng->opts.defer_threads
						  ? eng->opts.defer_threads
						  : 4,
			      eng->opts.defer_queue);
	if (ret) {
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		return ret;
	}
	eng->pool_up = true;

	for (i = 0; i < eng->nloops; i++) {
		eng->slots[i].eng = eng;
		if (pthread_create(&eng->slots[i].thread, NULL, loop_main,
				   &eng->slots[i])) {
			ret = -EAGAIN;
			break;
		}
		started++;
	}
	for (;;) {
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		unsigned exited = 0;
		int sig;

		for (i = 0; i < started; i++) {
			int st = atomic_load(&eng->slots[i].state);

			exited += st == 2;
			if (st == 2 && eng->slots[i].start_err && !ret)
				ret = eng->slots[i].start_err;
		}
		if (exited == started)
			break;
		if (ret && !signals) {
			/* A loop could not start: take the others down. */
			signals = 1;
			atomic_store(&eng->stop, true);
		}
		sig = sigtimedwait(&set, NULL, &ts);
		if (sig > 0 || (atomic_load(&eng->stop) && !signals)) {
			signals++;
			if (sig > 0 && signals == 1)
				coil__log("%s: stopping (draining up to %u ms)",
					  strsignal(sig), eng->opts.drain_ms);
			else if (sig > 0)
				coil__log("%s again: aborting connections",
					  strsignal(sig));
		}
		if (signals)
			request_stop(eng, signals > 1);
	}
	for (i = 0; i < started; i++)
		pthread_join(eng->slots[i].thread, NULL);
	/* Every loop waited for its jobs: the queue is empty. */
	coil__pool_fini(&eng->pool);
	eng->pool_up = false;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ret;
}

void coil_engine_stop(struct coil_engine *eng)
{
	atomic_store(&eng->stop, true);
}

void coil_engine_destroy(struct coil_engine *eng)
{
	if (!eng)
		return;
	/* Listeners never handed to a loop are still ours. */
	for (unsigned s = 0; s < eng->nsvc; s++)
		for (unsigned i = 0; i < eng->nloops; i++) {
			int fd = eng->lfd[s * eng->nloops + i];

			if (fd >= 0)
				close(fd);
		}
	for (unsigned s = 0; s < eng->nsvc; s++)
		coil__steer_detach(eng->steer[s]);
	for (unsigned s = 0; s < eng->nudp; s++)
		for (unsigned i = 0; i < eng->nloops; i++) {
			int fd = eng->ufd[s * eng->nloops + i];

			if (fd >= 0)
				close(fd);
		}
#if COIL_HAVE_DPDK
	if (eng->be == &coil__dpdk_ops)
		coil__dpdk_teardown();
#endif
	for (unsigned i = 0; i < eng->nloops; i++)
		coil__inbox_fini(&eng->slots[i].inbox);
	free(eng->ufd);
	free(eng->lfd);
	free(eng->slots);
	free(eng->cpus);
	free(eng->steer_arg);
	free(eng);
}

struct coil_engine *coil_loop_engine(const struct coil_loop *loop)
{
	return loop->engine;
}

unsigned coil_engine_loops(const struct coil_engine *eng)
{
	return eng->nloops;
}

struct coil_loop *coil_engine_loop(struct coil_engine *eng, unsigned i)
{
	if (i >= eng->nloops || atomic_load(&eng->slots[i].state) == 0)
		return NULL;
	return &eng->slots[i].loop;
}
