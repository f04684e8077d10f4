/* SPDX-License-Identifier: MIT */
/*
 * What every example shares: a few flags (--addr, --port, --cores,
 * --backend, --defer-threads, --defer-queue), one listening service, a
 * "NAME: listening on ADDR:PORT" line on stderr, and the run; then each
 * loop's coil_loop_data (one malloc'd block, or NULL) is freed.
 */
#ifndef COIL_EXAMPLE_H
#define COIL_EXAMPLE_H

#include <coil/coil.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parse the flags into *eo and *svc, listen, run until SIGINT/SIGTERM.
 * Returns the process exit status. */
static inline int example_run(const char *name, int argc, char **argv,
			      struct coil_engine_opts *eo,
			      struct coil_service *svc)
{
	struct coil_engine *eng;
	int ret, idx;

	eo->sz = sizeof(*eo);
	eo->name = name;
	svc->sz = sizeof(*svc);
	if (!svc->addr)
		svc->addr = "127.0.0.1";
	for (int i = 1; i < argc; i += 2) {   /* --flag value */
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v) {
			fprintf(stderr, "%s: %s needs a value\n", name, argv[i]);
			return 2;
		}
		if (!strcmp(argv[i], "--addr"))
			svc->addr = v;
		else if (!strcmp(argv[i], "--port"))
			svc->port = (uint16_t)atoi(v);
		else if (!strcmp(argv[i], "--cores"))
			eo->cores = (unsigned)atoi(v);
		else if (!strcmp(argv[i], "--backend"))
			eo->backend = !strcmp(v, "epoll") ? COIL_BACKEND_EPOLL
				      : !strcmp(v, "uring") ? COIL_BACKEND_URING
							    : COIL_BACKEND_AUTO;
		else if (!strcmp(argv[i], "--defer-threads"))
			eo->defer_threads = (unsigned)atoi(v);
		else if (!strcmp(argv[i], "--defer-queue"))
			eo->defer_queue = (unsigned)atoi(v);
		else {
			fprintf(stderr, "usage: %s [--addr A] [--port P] [--cores N] "
				"[--backend auto|uring|epoll] [--defer-threads N] "
				"[--defer-queue N]\n", name);
			return 2;
		}
	}
	ret = coil_engine_create(eo, &eng);
	if (ret) {
		fprintf(stderr, "%s: %s\n", name, strerror(-ret));
		return 1;
	}
	idx = coil_engine_listen(eng, svc);
	if (idx < 0) {
		fprintf(stderr, "%s: cannot listen: %s\n", name, strerror(-idx));
		coil_engine_destroy(eng);
		return 1;
	}
	fprintf(stderr, "%s: listening on %s:%u\n", name, svc->addr,
		coil_engine_port(eng, idx));
	ret = coil_engine_run(eng);
	/* each example's per-loop data, if any, is one malloc'd block */
	for (unsigned i = 0; i < coil_engine_loops(eng); i++)
		if (coil_engine_loop(eng, i))
			free(coil_loop_data(coil_engine_loop(eng, i)));
	coil_engine_destroy(eng);
	return ret ? 1 : 0;
}

#endif
