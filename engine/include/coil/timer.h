/* SPDX-License-Identifier: MIT */
#ifndef COIL_TIMER_H
#define COIL_TIMER_H

#include <stdbool.h>
#include <stdint.h>

struct coil_loop;
struct coil_timer;

/* Called on the timer's loop when it expires. The timer is already inactive,
 * so the callback may start it again or free the memory that holds it. */
typedef void (*coil_timer_cb)(struct coil_timer *timer);

/*
 * A one-shot timer on the loop's hashed timing wheel (1 ms resolution):
 * Twisted's reactor.callLater. The caller owns the memory (embed it in a
 * per-connection state and find the state again with container_of); it must
 * stay valid while the timer is active. Fields are private.
 */
struct coil_timer {
	struct coil_timer *next, *prev; /* private: wheel slot list */
	uint64_t expire_ms;             /* private */
	struct coil_loop *loop;         /* private */
	coil_timer_cb cb;               /* private */
	void *data;                     /* free for the owner's use */
};

/* Prepare a timer for use on `loop`. Never fails. Loop thread only. */
void coil_timer_init(struct coil_timer *timer, struct coil_loop *loop,
		     coil_timer_cb cb, void *data);

/*
 * Arm (or re-arm) the timer to fire `ms` milliseconds from the loop's current
 * time (0 means at the next tick, never synchronously). O(1). Loop thread.
 */
void coil_timer_start(struct coil_timer *timer, uint64_t ms);

/* Disarm; harmless if not armed. O(1). Loop thread only. */
void coil_timer_stop(struct coil_timer *timer);

/* True while armed. */
static inline bool coil_timer_active(const struct coil_timer *timer)
{
	return timer->prev != 0;
}

#endif
