/* SPDX-License-Identifier: MIT */
/* coil/frame.h through the fake backend: lines with one- and two-byte
 * delimiters split anywhere, u16/u32 length prefixes fed a byte at a time,
 * messages handed in place when whole in one receive buffer, the maximum
 * (a logged close, nothing delivered), stopping and pausing mid-stream,
 * and coil_frame_write. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "core/internal.h"

#define MAXMSG 32

static char msgs[64][512];
static size_t lens[64];
static int nmsgs, in_pool, stop_after = -1, pause_after = -1;

static int on_msg(struct coil_conn *c, const uint8_t *m, size_t n)
{
	const struct coil__bufpool *p = &c->loop->pool;

	assert_true(n < sizeof(msgs[0]));
	memcpy(msgs[nmsgs], m, n);
	lens[nmsgs] = n;
	if (m >= p->mem.base && m + n <= p->mem.base + p->mem.size)
		in_pool++;
	nmsgs++;
	if (nmsgs == pause_after)
		coil_conn_pause(c);
	return nmsgs == stop_after;
}

static struct coil_frame fr;

static size_t on_data(struct coil_conn *c, const uint8_t *d, size_t n)
{
	return coil_frame_feed(&fr, c, d, n);
}

static const struct coil_proto_ops ops = { .on_data = on_data };
static const struct coil_service svc = { .sz = sizeof(svc), .ops = &ops };

static struct coil_fake *make(enum coil_frame_kind kind, const char *delim,
			      size_t max)
{
	struct coil_fake_opts o = { .sz = sizeof(o), .buf_size = 64 };
	struct coil_fake *f;

	memset(&fr, 0, sizeof(fr));
	fr.kind = kind;
	fr.delim = delim;
	fr.max = max;
	fr.on_msg = on_msg;
	nmsgs = in_pool = 0;
	stop_after = pause_after = -1;
	assert_int_equal(coil_fake_create(&o, &svc, &f), 0);
	return f;
}

static void expect(int i, const char *s)
{
	assert_int_equal(lens[i], strlen(s));
	assert_memory_equal(msgs[i], s, lens[i]);
}

static void test_lines(void **st)
{
	struct coil_fake *f = make(COIL_FRAME_LINE, NULL, MAXMSG);
	int id = coil_fake_connect(f);

	(void)st;
	assert_int_equal(coil_fake_feed(f, id, "a\nbb\n\nccc", 9), 0);
	assert_int_equal(nmsgs, 3);
	expect(0, "a");
	expect(1, "bb");
	expect(2, "");
	assert_int_equal(in_pool, 3);          /* in place, no copy */
	assert_int_equal(coil_fake_feed(f, id, "c\n", 2), 0);
	assert_int_equal(nmsgs, 4);
	expect(3, "cccc");                     /* gathered across feeds */
	assert_false(coil_fake_closed(f, id, NULL, NULL));
	coil_fake_destroy(f);
}

static void test_crlf_split(void **st)
{
	struct coil_fake *f = make(COIL_FRAME_LINE, "\r\n", MAXMSG);
	int id = coil_fake_connect(f);
	const char *in = "one\rtwo\r\nthree\r\n\r\n";

	(void)st;
	for (size_t i = 0; in[i]; i++)  /* a byte at a time */
		assert_int_equal(coil_fake_feed(f, id, in + i, 1), 0);
	assert_int_equal(nmsgs, 3);
	expect(0, "one\rtwo");
	expect(1, "three");
	expect(2, "");
	coil_fake_destroy(f);
}

static void test_line_max(void **st)
{
	char line[MAXMSG + 2];
	struct coil_fake *f = make(COIL_FRAME_LINE, "\n", MAXMSG);
	int id = coil_fake_connect(f), reason;

	(void)st;
	memset(line, 'x', sizeof(line));
	line[MAXMSG] = '\n';                   /* exactly max: fine */
	assert_int_equal(coil_fake_feed(f, id, line, MAXMSG + 1), 0);
	assert_int_equal(nmsgs, 1);
	assert_int_equal(lens[0], MAXMSG);
	line[MAXMSG] = 'x';                    /* max + 1 and no end yet */
	assert_int_equal(coil_fake_feed(f, id, "ok\n", 3), 0);
	assert_int_equal(coil_fake_feed(f, id, line, MAXMSG + 1), 0);
	assert_int_equal(nmsgs, 2);
	expect(1, "ok");
	assert_true(coil_fake_closed(f, id, &reason, NULL));
	assert_int_equal(reason, COIL_CLOSE_LOCAL);

	/* over max with its delimiter in the same buffer */
	id = coil_fake_connect(f);
	line[MAXMSG + 1] = '\n';
	assert_int_equal(coil_fake_feed(f, id, line, MAXMSG + 2), 0);
	assert_int_equal(nmsgs, 2);
	assert_true(coil_fake_closed(f, id, NULL, NULL));
	coil_fake_destroy(f);
}

static void test_split_buffers(void **st)
{
	char big[200];
	struct coil_fake *f = make(COIL_FRAME_LINE, "\n", 300);
	int id = coil_fake_connect(f);

	(void)st;
	for (size_t i = 0; i < sizeof(big) - 1; i++)
		big[i] = (char)('a' + i % 26);
	big[sizeof(big) - 1] = '\n';
	/* 200 bytes span four 64-byte receive buffers: gathered, intact */
	assert_int_equal(coil_fake_feed(f, id, big, sizeof(big)), 0);
	assert_int_equal(nmsgs, 1);
	assert_int_equal(lens[0], sizeof(big) - 1);
	assert_memory_equal(msgs[0], big, sizeof(big) - 1);
	assert_int_equal(in_pool, 0);
	coil_fake_destroy(f);
}

static void prefixed(enum coil_frame_kind kind)
{
	struct coil_fake *f = make(kind, NULL, 300);
	int id = coil_fake_connect(f);
	size_t hl = kind == COIL_FRAME_U16 ? 2 : 4, n = 0;
	uint8_t in[600];
	size_t sizes[] = { 5, 0, 260 };

	for (int m = 0; m < 3; m++) {
		size_t len = sizes[m];

		memset(in + n, 0, hl);
		in[n + hl - 2] = (uint8_t)(len >> 8);
		in[n + hl - 1] = (uint8_t)len;
		for (size_t i = 0; i < len; i++)
			in[n + hl + i] = (uint8_t)(m * 31 + i);
		n += hl + len;
	}
	for (size_t i = 0; i < n; i++)
		assert_int_equal(coil_fake_feed(f, id, in + i, 1), 0);
	assert_int_equal(nmsgs, 3);
	assert_int_equal(lens[0], 5);
	assert_int_equal(lens[1], 0);
	assert_int_equal(lens[2], 260);
	assert_memory_equal(msgs[2], in + hl + 5 + hl + hl, 260);
	assert_false(coil_fake_closed(f, id, NULL, NULL));
	/* whole in one buffer: in place */
	in_pool = 0;
	assert_int_equal(coil_fake_feed(f, id, in, hl + 5), 0);
	assert_int_equal(in_pool, 1);
	/* over the maximum: closed before the body arrives */
	memset(in, 0, hl);
	in[hl - 2] = 1;
	in[hl - 1] = 45;                       /* 301 */
	assert_int_equal(coil_fake_feed(f, id, in, hl), 0);
	assert_int_equal(nmsgs, 4);
	assert_true(coil_fake_closed(f, id, NULL, NULL));
	coil_fake_destroy(f);
}

static void test_u16(void **st)
{
	(void)st;
	prefixed(COIL_FRAME_U16);
}

static void test_u32(void **st)
{
	(void)st;
	prefixed(COIL_FRAME_U32);
}

static void test_stop_and_pause(void **st)
{
	struct coil_fake *f = make(COIL_FRAME_LINE, NULL, MAXMSG);
	int id = coil_fake_connect(f);

	(void)st;
	pause_after = 2;
	assert_int_equal(coil_fake_feed(f, id, "1\n2\n3\n4\n", 8), 0);
	assert_int_equal(nmsgs, 2);            /* held while paused */
	coil_conn_resume(coil_fake_conn(f, id));
	coil_fake_settle(f);
	assert_int_equal(nmsgs, 4);
	expect(3, "4");
	stop_after = 5;                         /* on_msg says stop */
	assert_int_equal(coil_fake_feed(f, id, "5\n6\n", 4), 0);
	/* the rest comes again with the next bytes */
	assert_int_equal(coil_fake_feed(f, id, "7\n", 2), 0);
	assert_int_equal(nmsgs, 7);
	expect(5, "6");
	expect(6, "7");
	coil_fake_destroy(f);
}

static void test_write(void **st)
{
	struct coil_fake *f = make(COIL_FRAME_U32, NULL, 8);
	int id = coil_fake_connect(f);
	struct coil_conn *c = coil_fake_conn(f, id);
	uint8_t out[64];
	struct coil_frame line = { .kind = COIL_FRAME_LINE, .delim = "\r\n" };

	(void)st;
	assert_int_equal(coil_frame_write(&fr, c, "abc", 3), 0);
	assert_int_equal(coil_frame_write(&fr, c, "123456789", 9), -EMSGSIZE);
	assert_int_equal(coil_frame_write(&line, c, "hi", 2), 0);
	assert_int_equal(coil_frame_write(&line, c, "a\r\nb", 4), -EINVAL);
	coil_fake_settle(f);
	assert_int_equal(coil_fake_take(f, id, out, sizeof(out)), 11);
	assert_memory_equal(out, "\0\0\0\3abchi\r\n", 11);
	coil_fake_destroy(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_crlf_split),
		cmocka_unit_test(test_line_max),
		cmocka_unit_test(test_split_buffers),
		cmocka_unit_test(test_u16),
		cmocka_unit_test(test_u32),
		cmocka_unit_test(test_stop_and_pause),
		cmocka_unit_test(test_write),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
