/* SPDX-License-Identifier: MIT */
/*
 * The engine's log (core/log.c): one line to stderr per call, prefixed with
 * the engine's name. Private and small on purpose, so that parts of the
 * engine that only log (steer/) need not see the core's structures in
 * internal.h. Never installed.
 */
#ifndef COIL_LOG_H
#define COIL_LOG_H

/* The prefix of every line: coil_engine_opts.name, set by
 * coil_engine_create (default "coil"). */
extern const char *coil__log_name;

/* Log one line to stderr, prefixed with the engine name. Written with one
 * write, so lines from several loops never interleave. Any thread. */
void coil__log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
