/* SPDX-License-Identifier: MIT */
/*
 * A hashed timing wheel with 1 ms ticks (Varghese & Lauck, scheme 6):
 * slot = expiry mod 1024, each slot an unordered doubly-linked list, so
 * start/stop are O(1). Timers more than one revolution away simply stay in
 * their slot until the wheel passes it at the right time. A bitmap of
 * non-empty slots makes the idle timeout and long jumps cheap.
 */
#include "internal.h"

#include <assert.h>

#define MASK (COIL__WHEEL_SLOTS - 1)

static struct coil__wheel *wheel_of(struct coil_timer *t)
{
	return &t->loop->wheel;
}

static void slot_set(struct coil__wheel *w, uint32_t s)
{
	w->bitmap[s / 64] |= 1ull << (s % 64);
}

static void slot_check(struct coil__wheel *w, uint32_t s)
{
	if (w->slots[s].next == &w->slots[s])
		w->bitmap[s / 64] &= ~(1ull << (s % 64));
}

static void list_add(struct coil_timer *head, struct coil_timer *t)
{
	t->next = head->next;
	t->prev = head;
	head->next->prev = t;
	head->next = t;
}

static void list_del(struct coil_timer *t)
{
	t->prev->next = t->next;
	t->next->prev = t->prev;
	t->next = t->prev = NULL;
}

void coil__wheel_init(struct coil__wheel *w, uint64_t now_ms)
{
	for (uint32_t i = 0; i < COIL__WHEEL_SLOTS; i++)
		w->slots[i].next = w->slots[i].prev = &w->slots[i];
	for (uint32_t i = 0; i < COIL__WHEEL_SLOTS / 64; i++)
		w->bitmap[i] = 0;
	w->cur_ms = now_ms;
	w->count = 0;
	w->fired = 0;
}

void coil_timer_init(struct coil_timer *t, struct coil_loop *loop,
		     coil_timer_cb cb, void *data)
{
	t->next = t->prev = NULL;
	t->expire_ms = 0;
	t->loop = loop;
	t->cb = cb;
	t->data = data;
}

void coil_timer_start(struct coil_timer *t, uint64_t ms)
{
	struct coil__wheel *w = wheel_of(t);
	uint32_t s;

	coil_timer_stop(t);
	if (ms == 0)
		ms = 1;
	/* Relative to the wheel, not the clock: the wheel may lag the clock by
	 * the part of the current turn it has not run yet. */
	t->expire_ms = (t->loop->now_ms > w->cur_ms ? t->loop->now_ms
						    : w->cur_ms) + ms;
	s = (uint32_t)(t->expire_ms & MASK);
	list_add(&w->slots[s], t);
	slot_set(w, s);
	coil__stat_add(w->count, 1);
}

void coil_timer_stop(struct coil_timer *t)
{
	struct coil__wheel *w;

	if (!t->prev)
		return;
	w = wheel_of(t);
	list_del(t);
	slot_check(w, (uint32_t)(t->expire_ms & MASK));
	coil__stat_add(w->count, -1);
}

/* Fire the timers of slot `s` whose expiry is <= `upto`, as long as the
 * budget lasts. Returns false if it ran out before it saw every timer of
 * the slot (some of those left may be due). */
static bool run_slot(struct coil__wheel *w, uint32_t s, uint64_t upto,
		     unsigned *budget)
{
	struct coil_timer *head = &w->slots[s];
	struct coil_timer pending;

	if (head->next == head)
		return true;
	/* Move the slot aside: callbacks may start/stop any timer, including
	 * ones still in this list, and may re-arm into this very slot. */
	pending.next = head->next;
	pending.prev = head->prev;
	pending.next->prev = &pending;
	pending.prev->next = &pending;
	head->next = head->prev = head;
	slot_check(w, s);

	while (pending.next != &pending) {
		struct coil_timer *t = pending.next;

		if (!*budget) {
			/* Out of budget: put the rest back as it is rather
			 * than walk it (a storm's slot holds thousands, and
			 * each turn would walk them all again). Some may be
			 * due: the next turn looks again. */
			pending.next->prev = head;
			pending.prev->next = head->next;
			head->next->prev = pending.prev;
			head->next = pending.next;
			slot_set(w, s);
			return false;
		}
		list_del(t);
		if (t->expire_ms <= upto) {
			(*budget)--;
			w->fired++;
			coil__stat_add(w->count, -1);
			t->cb(t);
		} else {
			list_add(head, t);   /* a later revolution's */
			slot_set(w, s);
		}
	}
	return true;
}

bool coil__wheel_run(struct coil__wheel *w, uint64_t now_ms, unsigned budget)
{
	while (w->cur_ms < now_ms && w->count) {
		uint64_t next = w->cur_ms + 1;

		if (now_ms - w->cur_ms > COIL__WHEEL_SLOTS) {
			/* A long jump: only slots with timers matter; take the
			 * next non-empty one in order. */
			int64_t d = coil__wheel_timeout(w);

			if (d < 0)
				break;
			next = w->cur_ms + (uint64_t)(d ? d : 1);
			if (next > now_ms)
				next = now_ms;
		}
		if (!run_slot(w, (uint32_t)(next & MASK), next, &budget)) {
			/* The rest of this ms waits for the next turn. */
			return true;
		}
		w->cur_ms = next;
	}
	if (w->cur_ms < now_ms)
		w->cur_ms = now_ms;
	return false;
}

int64_t coil__wheel_timeout(const struct coil__wheel *w)
{
	uint32_t start, i;

	if (!w->count)
		return -1;
	start = (uint32_t)((w->cur_ms + 1) & MASK);
	for (i = 0; i < COIL__WHEEL_SLOTS;) {
		uint32_t s = (start + i) & MASK;
		uint64_t word = w->bitmap[s / 64] >> (s % 64);

		if (word) {
			uint32_t skip = (uint32_t)__builtin_ctzll(word);

			if (i + skip >= COIL__WHEEL_SLOTS)
				break;
			return (int64_t)(i + skip + 1);
		}
		i += 64 - s % 64;
	}
	/* Unreachable while count > 0: some slot is non-empty. */
	return COIL__WHEEL_SLOTS;
}
