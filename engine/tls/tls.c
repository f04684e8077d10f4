/* SPDX-License-Identifier: MIT */
/*
 * TLS between the transport and the protocol (coil/tls.h): OpenSSL 3 over
 * two memory BIOs per connection, driven by the loop. This file holds the
 * server's contexts (struct coil_tls, tls_internal.h): certificates and
 * keys, SNI choosing among them, ALPN, the session ticket keys and their
 * rotation, the kTLS probe, and what every context, a client's too, starts
 * and ends with; and the failure log, bounded against floods, that the
 * other files share. A client's contexts are tls_client.c; the
 * per-connection record pump is tls_conn.c.
 */
#include "../core/internal.h"

#include <coil/tls.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls_internal.h"

#define DEFAULT_HANDSHAKE_MS 10000u
#define DEFAULT_ROTATE_S 3600u

#ifndef TCP_ULP
#define TCP_ULP 31
#endif

/* ---- logging: a flood of bad handshakes must not flood the log ---- */

static atomic_uint fail_count;

bool coil__tls_log_due(void)
{
	unsigned n = atomic_fetch_add_explicit(&fail_count, 1,
					       memory_order_relaxed);

	return n < 16 || n % 1024 == 0;
}

/* The reason for OpenSSL's last error, and a clear error queue (it is per
 * thread: another connection must not find this one's errors there). */
const char *coil__tls_ssl_reason(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	if (r)
		snprintf(buf, len, "%s", r);
	else if (e)
		ERR_error_string_n(e, buf, len);
	else
		snprintf(buf, len, "unexpected end of stream");
	ERR_clear_error();
	return buf;
}

/* ---- kTLS probe ---- */

static pthread_once_t ktls_once = PTHREAD_ONCE_INIT;

/*
 * Ask the kernel for the "tls" upper layer once. On an unconnected socket
 * it answers ENOTCONN when kTLS is there and ENOENT when it is not (no
 * CONFIG_TLS, no module). Either way the records are built here for now:
 * one line says so.
 */
static void ktls_probe(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int err = 0;

	if (fd < 0)
		return;
	if (setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")) < 0)
		err = errno;
	close(fd);
	if (err == ENOTCONN || !err)
		coil__log("TLS: the kernel offers kTLS, not used yet: TLS "
			  "stays in user space");
	else
		coil__log("TLS: no kTLS in this kernel (TCP_ULP \"tls\": %s): "
			  "TLS stays in user space", strerror(err));
}

/* ---- session ticket keys ---- */

static uint64_t mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec;
}

/* A new current key, the old one kept to resume (and renew) tickets made
 * with it. Under t->lock. */
static bool ticket_rotate(struct coil_tls *t, uint64_t now)
{
	struct coil__tls_ticket_key k = { .made_s = now, .set = true };

	if (RAND_bytes(k.name, sizeof(k.name)) != 1 ||
	    RAND_bytes(k.aes, sizeof(k.aes)) != 1 ||
	    RAND_bytes(k.hmac, sizeof(k.hmac)) != 1)
		return false;
	t->prev = t->cur;
	t->cur = k;
	return true;
}

static int ticket_mac(EVP_MAC_CTX *hctx,
		      const struct coil__tls_ticket_key *k)
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
						  (void *)k->hmac,
						  sizeof(k->hmac)),
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						 (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};

	return EVP_MAC_CTX_set_params(hctx, params) == 1;
}

/*
 * OpenSSL's ticket key callback (SSL_CTX_set_tlsext_ticket_key_evp_cb):
 * enc 1 seals a new ticket with the current key, rotating it when it has
 * lived rotate_s seconds; enc 0 finds the key a ticket names. Returns 1
 * (ok), 2 (ok, but issue a fresh ticket: made with the previous key, or
 * TLS 1.3), 0
 * (unknown or expired key: a full handshake) or -1 (error). Any loop
 * thread: the keys are the process's, under a lock taken once per
 * handshake.
 */
static int ticket_cb(SSL *ssl, unsigned char name[16], unsigned char *iv,
		     EVP_CIPHER_CTX *ectx, EVP_MAC_CTX *hctx, int enc)
{
	struct coil_tls *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	uint64_t now = mono_s();
	struct coil__tls_ticket_key k;
	int ret = 0;

	pthread_mutex_lock(&t->lock);
	if (enc) {
		if ((!t->cur.set || now - t->cur.made_s >= t->rotate_s) &&
		    !ticket_rotate(t, now)) {
			ret = -1;
		} else {
			k = t->cur;
			ret = 1;
		}
	} else if (t->cur.set && !memcmp(name, t->cur.name, 16)) {
		k = t->cur;
		/* TLS 1.3: a fresh ticket on every resumption (RFC 8446 C.4:
		 * a client should use a ticket once); OpenSSL sends none on
		 * a resumed handshake unless told to renew. */
		ret = now - k.made_s >= t->rotate_s ||
		      SSL_version(ssl) == TLS1_3_VERSION ? 2 : 1;
	} else if (t->prev.set && !memcmp(name, t->prev.name, 16) &&
		   now - t->prev.made_s < 2ull * t->rotate_s) {
		k = t->prev;
		ret = 2;
	}
	pthread_mutex_unlock(&t->lock);
	if (ret <= 0)
		goto out;
	if (enc) {
		memcpy(name, k.name, 16);
		if (RAND_bytes(iv, 16) != 1 ||
		    EVP_EncryptInit_ex(ectx, EVP_aes_256_cbc(), NULL, k.aes,
				       iv) != 1)
			ret = -1;
	} else if (EVP_DecryptInit_ex(ectx, EVP_aes_256_cbc(), NULL, k.aes,
				      iv) != 1) {
		ret = -1;
	}
	if (ret > 0 && !ticket_mac(hctx, &k))
		ret = -1;
out:
	OPENSSL_cleanse(&k, sizeof(k));
	return ret;
}

/* ---- SNI and ALPN ---- */

static int sni_cb(SSL *ssl, int *alert, void *arg)
{
	struct coil_tls *t = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	(void)alert;
	if (!name || t->n < 2)
		return SSL_TLSEXT_ERR_OK;
	for (unsigned i = 0; i < t->n; i++) {
		X509 *x = SSL_CTX_get0_certificate(t->ctx[i]);

		if (x && X509_check_host(x, name, 0, 0, NULL) == 1) {
			if (i)
				SSL_set_SSL_CTX(ssl, t->ctx[i]);
			break;
		}
	}
	return SSL_TLSEXT_ERR_OK;
}

static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		   const unsigned char *in, unsigned inlen, void *arg)
{
	struct coil_tls *t = arg;
	unsigned char *sel;

	(void)ssl;
	if (SSL_select_next_proto(&sel, outlen, t->alpn, t->alpn_len, in,
				  inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

/* "a,b" into the wire format. Returns false on an empty or long name. */
static bool alpn_parse(struct coil_tls *t, const char *s)
{
	unsigned len = 0;

	while (*s) {
		const char *e = strchr(s, ',');
		size_t n = e ? (size_t)(e - s) : strlen(s);

		if (!n || n > 255 || len + 1 + n > sizeof(t->alpn))
			return false;
		t->alpn[len++] = (uint8_t)n;
		memcpy(t->alpn + len, s, n);
		len += (unsigned)n;
		s += n + (e ? 1 : 0);
		if (e && !*s)
			return false;
	}
	t->alpn_len = len;
	return len > 0;
}

/* ---- contexts ---- */

/* An encrypted key would make OpenSSL ask the terminal for a passphrase:
 * refuse instead. */
static int no_passphrase(char *buf, int size, int rw, void *u)
{
	(void)buf;
	(void)size;
	(void)rw;
	(void)u;
	return 0;
}

static int ctx_load(struct coil_tls *t, const struct coil_tls_opts *o,
		    unsigned i, char *err, size_t errlen)
{
	const struct coil_tls_cert *ce = &o->certs[i];
	char why[160];
	SSL_CTX *ctx;

	if (!ce->cert || !ce->key) {
		snprintf(err, errlen, "certificate %u: needs both a "
			 "certificate and a key file", i + 1);
		return -EINVAL;
	}
	if (access(ce->cert, R_OK) || access(ce->key, R_OK)) {
		int e = errno;

		snprintf(err, errlen, "%s: %s",
			 access(ce->cert, R_OK) ? ce->cert : ce->key,
			 strerror(e));
		return -EINVAL;
	}
	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx)
		return -ENOMEM;
	t->ctx[i] = ctx;
	SSL_CTX_set_app_data(ctx, t);
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
				 SSL_OP_CIPHER_SERVER_PREFERENCE |
				 SSL_OP_NO_COMPRESSION);
	/* An idle connection keeps no record buffers. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	/* Resumption is by tickets only: no per-process session cache. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (o->no_tickets) {
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
		SSL_CTX_set_num_tickets(ctx, 0);
	} else {
		SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
	}
	SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
	SSL_CTX_set_tlsext_servername_callback(ctx, sni_cb);
	SSL_CTX_set_tlsext_servername_arg(ctx, t);
	if (t->alpn_len)
		SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, t);
	if (SSL_CTX_use_certificate_chain_file(ctx, ce->cert) != 1) {
		snprintf(err, errlen, "%s: not a PEM certificate (chain): %s",
			 ce->cert, coil__tls_ssl_reason(why, sizeof(why)));
		return -EINVAL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, ce->key, SSL_FILETYPE_PEM) != 1) {
		snprintf(err, errlen, "%s: not an unencrypted PEM private key: "
			 "%s", ce->key, coil__tls_ssl_reason(why, sizeof(why)));
		return -EINVAL;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "%s does not match the certificate %s: "
			 "%s", ce->key, ce->cert,
			 coil__tls_ssl_reason(why, sizeof(why)));
		return -EINVAL;
	}
	return 0;
}

/* What both kinds of context start with (the kTLS probe once, the
 * handshake timeout, ALPN). Returns 0 or -errno, said in err (errlen 0:
 * nothing said), with *out NULL or to be freed by coil__tls_done. */
int coil__tls_new(const char *alpn, unsigned handshake_ms,
		  struct coil_tls **out, char *err, size_t errlen)
{
	struct coil_tls *t;

	pthread_once(&ktls_once, ktls_probe);
	*out = t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	t->handshake_ms = handshake_ms ? handshake_ms : DEFAULT_HANDSHAKE_MS;
	if (alpn && !alpn_parse(t, alpn)) {
		snprintf(err, errlen, "ALPN: expected names of 1..255 bytes "
			 "separated by commas, got '%s'", alpn);
		return -EINVAL;
	}
	return 0;
}

/* The end of a create: hand out t, or free it after saying why. */
int coil__tls_done(struct coil_tls *t, int ret, struct coil_tls **out,
		   char *err, size_t errlen)
{
	if (!ret) {
		*out = t;
		return 0;
	}
	if (ret == -ENOMEM && errlen && !err[0])
		snprintf(err, errlen, "out of memory");
	ERR_clear_error();
	coil_tls_destroy(t);
	return ret;
}

int coil_tls_create(const struct coil_tls_opts *opts, struct coil_tls **out,
		    char *err, size_t errlen)
{
	struct coil_tls_opts o = { 0 };
	struct coil_tls *t;
	int ret;

	if (!err)
		errlen = 0;
	if (errlen)
		err[0] = 0;
	if (!opts || !out)
		return -EINVAL;
	memcpy(&o, opts, opts->sz && opts->sz < sizeof(o) ? opts->sz
							   : sizeof(o));
	if (!o.ncerts || o.ncerts > COIL_TLS_MAX_CERTS || !o.certs) {
		snprintf(err, errlen, "expected 1..%d certificates, got %u",
			 COIL_TLS_MAX_CERTS, o.ncerts);
		return -EINVAL;
	}
	ret = coil__tls_new(o.alpn, o.handshake_timeout_ms, &t, err, errlen);
	if (t)
		t->rotate_s = o.ticket_rotate_s ? o.ticket_rotate_s
						: DEFAULT_ROTATE_S;
	for (unsigned i = 0; !ret && i < o.ncerts; i++) {
		ret = ctx_load(t, &o, i, err, errlen);
		t->n = i + 1;
	}
	return coil__tls_done(t, ret, out, err, errlen);
}

void coil_tls_destroy(struct coil_tls *t)
{
	if (!t)
		return;
	for (unsigned i = 0; i < t->n; i++)
		SSL_CTX_free(t->ctx[i]);
	if (t->sess)
		OPENSSL_cleanse(t->sess, t->sess_len);
	free(t->sess);
	free(t->sni);
	pthread_mutex_destroy(&t->lock);
	OPENSSL_cleanse(&t->cur, sizeof(t->cur));
	OPENSSL_cleanse(&t->prev, sizeof(t->prev));
	free(t);
}

int coil_tls_from_engine_opts(const struct coil_engine_opts *eo,
			      const char *alpn, const char *prog,
			      struct coil_tls **out, FILE *err)
{
	struct coil_tls_cert certs[COIL_TLS_MAX_CERTS];
	struct coil_tls_opts o = { .sz = sizeof(o), .certs = certs,
				   .alpn = alpn };
	FILE *f = err ? err : stderr;
	char why[512];
	unsigned n = 0;

	*out = NULL;
	for (unsigned i = 0; i < COIL_TLS_MAX_CERTS; i++) {
		if (!eo->tls_cert[i] && !eo->tls_key[i])
			break;
		if (!eo->tls_cert[i] || !eo->tls_key[i]) {
			fprintf(f, "%s: --tls-%s %s: needs a --tls-%s after "
				"it\n", prog, eo->tls_cert[i] ? "cert" : "key",
				eo->tls_cert[i] ? eo->tls_cert[i]
						: eo->tls_key[i],
				eo->tls_cert[i] ? "key" : "cert");
			return -EINVAL;
		}
		certs[n].cert = eo->tls_cert[i];
		certs[n].key = eo->tls_key[i];
		n++;
	}
	if (!n)
		return 0;
	o.ncerts = n;
	o.handshake_timeout_ms = eo->tls_handshake_ms;
	if (coil_tls_create(&o, out, why, sizeof(why))) {
		fprintf(f, "%s: --tls-cert: %s\n", prog, why);
		return -EINVAL;
	}
	return 0;
}
