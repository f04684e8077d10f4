/* SPDX-License-Identifier: MIT */
/*
 * Twisted's Int32StringReceiver as an echo: every message (a 4-byte
 * big-endian length, then that many bytes, at most 1 MiB) comes back
 * framed the same way. A message that arrived whole in one receive buffer
 * is echoed without a copy: the frame (its length prefix included) is
 * queued by reference into that buffer.
 */
#include "example.h"

static int on_msg(struct coil_conn *conn, const uint8_t *msg, size_t len);

static const struct coil_frame int32 = {
	.kind = COIL_FRAME_U32,
	.max = 1u << 20,
	.on_msg = on_msg,
};

static int on_msg(struct coil_conn *conn, const uint8_t *msg, size_t len)
{
	/* The prefix lies right before the message: echo both in one go
	 * (a reference into the receive buffer, or a copy when coil had to
	 * gather the message). */
	return coil_conn_write_ref(conn, msg - 4, len + 4) ? 1 : 0;
}

static size_t on_data(struct coil_conn *conn, const uint8_t *data,
		      size_t len)
{
	return coil_frame_feed(&int32, conn, data, len);
}

static const struct coil_proto_ops ops = { .on_data = on_data };

int main(int argc, char **argv)
{
	struct coil_engine_opts eo = { 0 };
	struct coil_service svc = { .ops = &ops, .port = 7010,
				    .max_input = 2u << 20 };

	return example_run("int32-echo", argc, argv, &eo, &svc);
}
