/* SPDX-License-Identifier: MIT */
/*
 * What every example shares: a few flags (--addr, --port,
 * --defer-threads, --defer-queue, and the engine's own through
 * coil/options.h: --cores, --backend...), one listening service, a
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
	/* The engine's own flags (--cores, --backend...) through the shared
	 * layer; what is left is ours: --addr, --port, --defer-threads,
	 * --defer-queue, each with a value. */
	if (coil_engine_opts_parse_args(eo, COIL_ENGINE_FLAGS_SERVER, name,
					&argc, argv, NULL))
		return 2;
	for (int i = 1; i < argc; i += 2) {   /* --flag value */
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		unsigned long n = 0;

		if (!v) {
			fprintf(stderr, "%s: %s needs a value\n", name, argv[i]);
			return 2;
		}
		if (!strcmp(argv[i], "--addr"))
			svc->addr = v;
		else if (!strcmp(argv[i], "--port") &&
			 !coil_arg_number(name, "port", v, 0, 65535, &n, NULL))
			svc->port = (uint16_t)n;
		else if (!strcmp(argv[i], "--defer-threads") &&
			 !coil_arg_number(name, "defer-threads", v, 1, 1024, &n,
					  NULL))
			eo->defer_threads = (unsigned)n;
		else if (!strcmp(argv[i], "--defer-queue") &&
			 !coil_arg_number(name, "defer-queue", v, 1, 65536, &n,
					  NULL))
			eo->defer_queue = (unsigned)n;
		else {
			fprintf(stderr, "usage: %s [--addr A] [--port P] "
				"[--defer-threads N] [--defer-queue N] [engine "
				"options]\nengine options:\n", name);
			coil_engine_opts_usage(stderr, COIL_ENGINE_FLAGS_SERVER);
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
