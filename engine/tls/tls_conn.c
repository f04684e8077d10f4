/* SPDX-License-Identifier: MIT */
/*
 * TLS on one connection: the record pump between the transport and the
 * protocol, over the context of tls.c or tls_client.c. Nothing here blocks
 * or touches the socket: ciphertext comes in from the receive path
 * (coil__tls_recv), plaintext goes to the protocol through
 * coil__conn_input, and the protocol's queued plaintext is encrypted when
 * the loop flushes the connection (coil__tls_flush).
 *
 * The send queue of a TLS connection is two regions, in order: ciphertext
 * (SEG_CHUNKs this file made, ct_bytes of them, the last one ct_tail) and
 * then plaintext (whatever the protocol queued since, any kind). Sends
 * cover the ciphertext region only; a flush moves plaintext over, at most
 * CT_AHEAD bytes ahead of the socket, so a large file is read a little at
 * a time as the peer takes it. The connection itself holds one pointer;
 * the rest (SSL, BIOs, the handshake timer) lives in struct coil__tls,
 * freed with the connection.
 */
#include "../core/internal.h"

#include <coil/tls.h>

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls_internal.h"

#define CT_AHEAD (256u << 10)       /* ciphertext queued before we stop */
#define WRITE_PIECE (16u << 10)     /* plaintext per SSL_write: a record */

struct coil__tls {
	SSL *ssl;
	BIO *rbio, *wbio;           /* owned by ssl */
	struct coil_conn *c;
	struct coil_timer hs;       /* the handshake timeout */
	struct coil__seg *ct_tail;  /* last ciphertext segment, or NULL */
	size_t ct_bytes;            /* ciphertext queued, not yet sent */
	uint32_t ct_room;           /* ct_tail's room, hidden from writes */
	bool done, failed, shut;
	bool wpaused;               /* CONN_WPAUSED lifted for the handshake */
};

/* ---- per connection ---- */

static void hs_fired(struct coil_timer *timer)
{
	struct coil__tls *t = timer->data;
	struct coil_conn *c = t->c;

	if (coil__tls_log_due())
		coil__log("loop %u: fd %d: TLS handshake timed out",
			  c->loop->id, c->fd);
	if (!c->close_reason)
		c->close_reason = -ETIMEDOUT;
	coil_conn_abort(c);
}

static bool drain(struct coil_conn *c, struct coil__tls *t);

/* The client's first flight: SNI, the cached session, the ClientHello
 * queued ahead of anything on_open will write. Returns 0 or -errno (the
 * connection is then refused). */
static int client_start(struct coil_conn *c, struct coil_tls *cfg,
			struct coil__tls *t)
{
	SSL_SESSION *sess = NULL;
	char why[160];
	int r;

	SSL_set_connect_state(t->ssl);
	if (cfg->sni && SSL_set_tlsext_host_name(t->ssl, cfg->sni) != 1)
		goto fail;
	if (cfg->resume && (sess = coil__tls_session_get(cfg))) {
		r = SSL_set_session(t->ssl, sess);
		SSL_SESSION_free(sess);
		if (r != 1)
			goto fail;
	}
	r = SSL_do_handshake(t->ssl);
	if (r == 1 || SSL_get_error(t->ssl, r) != SSL_ERROR_WANT_READ)
		goto fail;
	return drain(c, t) ? 0 : -ENOMEM;
fail:
	if (coil__tls_log_due())
		coil__log("loop %u: fd %d: TLS: cannot start the handshake: %s",
			  c->loop->id, c->fd,
			  coil__tls_ssl_reason(why, sizeof(why)));
	ERR_clear_error();
	return -EPROTO;
}

int coil__tls_open(struct coil_conn *c)
{
	struct coil_tls *cfg = c->lst->svc->tls;
	struct coil__tls *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->ssl = SSL_new(cfg->ctx[0]);
	t->rbio = BIO_new(BIO_s_mem());
	t->wbio = BIO_new(BIO_s_mem());
	if (!t->ssl || !t->rbio || !t->wbio) {
		BIO_free(t->rbio);
		BIO_free(t->wbio);
		SSL_free(t->ssl);
		free(t);
		ERR_clear_error();
		return -ENOMEM;
	}
	/* An empty BIO means "more to come", not end of stream. */
	BIO_set_mem_eof_return(t->rbio, -1);
	BIO_set_mem_eof_return(t->wbio, -1);
	SSL_set_bio(t->ssl, t->rbio, t->wbio);
	t->c = c;
	coil_timer_init(&t->hs, c->loop, hs_fired, t);
	coil_timer_start(&t->hs, cfg->handshake_ms);
	c->tls = t;   /* freed with the connection from here on */
	if (!cfg->client) {
		SSL_set_accept_state(t->ssl);
		return 0;
	}
	return client_start(c, cfg, t);
}

void coil__tls_free(struct coil_conn *c)
{
	struct coil__tls *t = c->tls;

	coil_timer_stop(&t->hs);
	SSL_free(t->ssl);
	ERR_clear_error();
	free(t);
	c->tls = NULL;
}

size_t coil__tls_pending(const struct coil_conn *c)
{
	return c->tls->ct_bytes;
}

void coil__tls_sent(struct coil_conn *c, size_t n)
{
	struct coil__tls *t = c->tls;

	assert(n <= t->ct_bytes);
	t->ct_bytes -= n;
	if (!t->ct_bytes) {
		/* coil__conn_sent freed every ciphertext segment */
		t->ct_tail = NULL;
		t->ct_room = 0;
	}
}

/* Put a ciphertext segment after the ciphertext region. */
static void ct_insert(struct coil_conn *c, struct coil__tls *t,
		      struct coil__seg *s)
{
	struct coil__seg **pp = t->ct_tail ? &t->ct_tail->next : &c->sq_head;

	s->next = *pp;
	*pp = s;
	if (!s->next)
		c->sq_tail = s;
	t->ct_tail = s;
}

/* Move what OpenSSL wrote into the ciphertext region. Returns false when
 * out of memory (the connection is then aborted). */
static bool drain(struct coil_conn *c, struct coil__tls *t)
{
	struct coil__seg *s = t->ct_tail;
	size_t pending;

	if (s && t->ct_room) {
		s->room = t->ct_room;
		t->ct_room = 0;
	}
	while ((pending = BIO_ctrl_pending(t->wbio)) > 0) {
		int n;

		if (!s || !s->room) {
			s = coil__seg_new(c->loop, true);
			if (!s) {
				(void)BIO_reset(t->wbio);
				c->close_reason = -ENOMEM;
				coil_conn_abort(c);
				return false;
			}
			ct_insert(c, t, s);
		}
		n = BIO_read(t->wbio, (uint8_t *)s->data + s->len,
			     (int)(pending < s->room ? pending : s->room));
		if (n <= 0)
			break;
		s->len += (uint32_t)n;
		s->room -= (uint32_t)n;
		t->ct_bytes += (size_t)n;
		c->queued += (size_t)n;
	}
	/* A plaintext write must never append into a ciphertext chunk: its
	 * room is kept here until the next drain. */
	if (s) {
		t->ct_room = s->room;
		s->room = 0;
	}
	return true;
}

/* The connection cannot go on: send the alert OpenSSL made (if any) and
 * close, dropping plaintext that will never be encrypted. */
static void fail(struct coil_conn *c, struct coil__tls *t, const char *what)
{
	char why[160];

	long vr = SSL_get_verify_result(t->ssl);

	t->failed = true;
	coil__tls_ssl_reason(why, sizeof(why));
	if (coil__tls_log_due())
		coil__log("loop %u: fd %d: TLS %s failed: %s%s%s", c->loop->id,
			  c->fd, what, why, vr != X509_V_OK ? ": " : "",
			  vr != X509_V_OK ? X509_verify_cert_error_string(vr)
					  : "");
	if (!c->close_reason)
		c->close_reason = -EPROTO;
	drain(c, t);
	coil_conn_close(c);
}

static struct coil__seg *first_plain(struct coil_conn *c, struct coil__tls *t)
{
	return t->ct_tail ? t->ct_tail->next : c->sq_head;
}

static void drop_first_plain(struct coil_conn *c, struct coil__tls *t)
{
	struct coil__seg *p = first_plain(c, t);

	if (t->ct_tail)
		t->ct_tail->next = p->next;
	else
		c->sq_head = p->next;
	if (c->sq_tail == p)
		c->sq_tail = t->ct_tail;
	c->queued -= p->len;
	coil__seg_free(c->loop, p);
}

static bool handshake(struct coil_conn *c, struct coil__tls *t)
{
	int r = SSL_do_handshake(t->ssl);

	if (r == 1) {
		t->done = true;
		coil_timer_stop(&t->hs);
		if (t->wpaused) {
			/* back to the slow-reader pause: the queued plaintext
			 * can drain now, and on_drain follows as usual */
			c->flags |= CONN_WPAUSED;
			t->wpaused = false;
		}
		return true;
	}
	if (SSL_get_error(t->ssl, r) != SSL_ERROR_WANT_READ)
		fail(c, t, "handshake");
	return false;
}

void coil__tls_recv(struct coil_conn *c, const uint8_t *data, size_t len)
{
	static _Thread_local uint8_t plain[16u << 10];
	struct coil__tls *t = c->tls;

	if (t->failed)
		return;
	if (BIO_write(t->rbio, data, (int)len) != (int)len) {
		ERR_clear_error();
		c->close_reason = -ENOMEM;
		coil_conn_abort(c);
		return;
	}
	if (!t->done && !handshake(c, t))
		goto out;
	/* Input after a close is discarded, as coil__conn_recv does. */
	while (!(c->flags & (CONN_CLOSING | CONN_DOOMED))) {
		int n = SSL_read(t->ssl, plain, sizeof(plain));

		if (n > 0) {
			coil__conn_input(c, plain, (size_t)n);
			continue;
		}
		switch (SSL_get_error(t->ssl, n)) {
		case SSL_ERROR_WANT_READ:
			break;
		case SSL_ERROR_ZERO_RETURN:
			/* close_notify: the end of input, as a FIN. Input the
			 * protocol has not seen yet goes first. */
			if (!c->close_reason)
				c->close_reason = COIL_CLOSE_PEER;
			if (c->carry_len || c->held_head)
				c->flags |= CONN_EOF | CONN_CARRY_DUE;
			else
				coil_conn_close(c);
			break;
		default:
			fail(c, t, "read");
			break;
		}
		break;
	}
out:
	/* Handshake flights, tickets, alerts; and after the handshake the
	 * plaintext queued before it is due: the flush encrypts it. */
	if (drain(c, t) && (t->ct_bytes || (t->done && c->queued)))
		coil__conn_mark(c);
}

/* Encrypt up to a record of the file segment `p` at its offset. */
static bool encrypt_file(struct coil_conn *c, struct coil__tls *t,
			 struct coil__seg *p)
{
	uint8_t buf[WRITE_PIECE];
	uint32_t want = p->len < sizeof(buf) ? p->len : sizeof(buf);
	ssize_t r;

	do
		r = pread(p->fd, buf, want, (off_t)p->off);
	while (r < 0 && errno == EINTR);
	if (r <= 0) {
		/* The file shrank under the send (coil/conn.h): -EIO. */
		c->close_reason = r < 0 ? -errno : -EIO;
		coil_conn_abort(c);
		return false;
	}
	if (SSL_write(t->ssl, buf, (int)r) != (int)r) {
		fail(c, t, "write");
		return false;
	}
	p->off += (uint64_t)r;
	p->len -= (uint32_t)r;
	c->queued -= (size_t)r;
	return true;
}

void coil__tls_flush(struct coil_conn *c)
{
	struct coil__tls *t = c->tls;
	struct coil__seg *p;

	if (t->failed) {
		while (first_plain(c, t))
			drop_first_plain(c, t);
		return;
	}
	if (!t->done) {
		/* Plaintext waits for the handshake, which needs the peer's
		 * flights: a protocol that queued more than the high-water
		 * mark in on_open (a client's large first message) must not
		 * stop the reading that would let it drain. */
		if (c->flags & CONN_WPAUSED) {
			c->flags &= ~CONN_WPAUSED;
			t->wpaused = true;
		}
		return;
	}
	while ((p = first_plain(c, t)) && t->ct_bytes < CT_AHEAD) {
		if (p->kind == SEG_FILE) {
			if (p->len && !encrypt_file(c, t, p))
				return;
		} else if (p->len) {
			uint32_t n = p->len < WRITE_PIECE ? p->len
							  : WRITE_PIECE;

			if (SSL_write(t->ssl, p->data, (int)n) != (int)n) {
				fail(c, t, "write");
				return;
			}
			p->data += n;
			p->len -= n;
			c->queued -= n;
		}
		if (!p->len)
			drop_first_plain(c, t);
		if (!drain(c, t))
			return;
	}
	if (!first_plain(c, t) && (c->flags & CONN_CLOSING) && !t->shut) {
		t->shut = true;
		/* close_notify, after everything queued. */
		if (SSL_shutdown(t->ssl) < 0)
			ERR_clear_error();
		drain(c, t);
	}
}

int coil_conn_tls_info(const struct coil_conn *c, struct coil_tls_info *info)
{
	const struct coil__tls *t = c->tls;
	const unsigned char *a;
	unsigned alen;

	memset(info, 0, sizeof(*info));
	if (!t)
		return -ENOPROTOOPT;
	info->done = t->done;
	if (!t->done)
		return 0;
	info->resumed = SSL_session_reused(t->ssl) == 1;
	info->version = SSL_get_version(t->ssl);
	info->cipher = SSL_CIPHER_get_name(SSL_get_current_cipher(t->ssl));
	SSL_get0_alpn_selected(t->ssl, &a, &alen);
	if (a && alen < sizeof(info->alpn)) {
		memcpy(info->alpn, a, alen);
		info->alpn[alen] = 0;
	}
	return 0;
}
