/* SPDX-License-Identifier: MIT */
#ifndef COIL_LOOP_H
#define COIL_LOOP_H

#include <stdint.h>

/*
 * struct coil_loop is the reactor of one core: a pinned thread that owns its
 * own completion ring (or readiness queue), timers, buffers and connections.
 * Nothing it owns may be touched from another thread. Every callback coil
 * makes (protocol ops, timers) runs on the loop that owns the object, so
 * protocol code needs no locks.
 */
struct coil_loop;

/* The loop's index in its engine, 0..cores-1. Any thread. */
unsigned coil_loop_id(const struct coil_loop *loop);

/*
 * The loop's cached monotonic clock in milliseconds / nanoseconds, read once
 * per loop turn (cheap, no syscall). Under the fake backend it is the fake
 * clock. Only on the loop's own thread.
 */
uint64_t coil_loop_now_ms(const struct coil_loop *loop);
uint64_t coil_loop_now_ns(const struct coil_loop *loop);

#endif
