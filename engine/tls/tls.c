/* SPDX-License-Identifier: MIT */
/*
 * TLS between the transport and the protocol (coil/tls.h): OpenSSL 3 over
 * two memory BIOs per connection, driven by the loop. Nothing here blocks
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

#include <arpa/inet.h>

#define CT_AHEAD (256u << 10)       /* ciphertext queued before we stop */
#define WRITE_PIECE (16u << 10)     /* plaintext per SSL_write: a record */
#define DEFAULT_HANDSHAKE_MS 10000u
#define DEFAULT_ROTATE_S 3600u

#ifndef TCP_ULP
#define TCP_ULP 31
#endif

struct ticket_key {
	uint8_t name[16], aes[32], hmac[32];
	uint64_t made_s;            /* CLOCK_MONOTONIC seconds */
	bool set;
};

struct coil_tls {
	SSL_CTX *ctx[COIL_TLS_MAX_CERTS];
	unsigned n;
	unsigned handshake_ms;
	unsigned rotate_s;
	uint8_t alpn[256];          /* wire format: length-prefixed names */
	unsigned alpn_len;
	pthread_mutex_t lock;       /* the ticket keys; a client's session */
	struct ticket_key cur, prev;
	/* client side (coil_tls_client_create) */
	bool client;
	bool resume;                /* offer `sess` to new connections */
	char *sni;                  /* SNI sent: NULL for none */
	/* The latest session the server gave, serialized (DER), or NULL:
	 * each connection decodes its own copy, so that no SSL_SESSION is
	 * shared between loop threads (OpenSSL writes to the session of a
	 * resumed handshake). */
	uint8_t *sess;
	size_t sess_len;
};

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

/* ---- logging: a flood of bad handshakes must not flood the log ---- */

static atomic_uint fail_count;

static bool log_due(void)
{
	unsigned n = atomic_fetch_add_explicit(&fail_count, 1,
					       memory_order_relaxed);

	return n < 16 || n % 1024 == 0;
}

/* The reason for OpenSSL's last error, and a clear error queue (it is per
 * thread: another connection must not find this one's errors there). */
static const char *ssl_reason(char *buf, size_t len)
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
	struct ticket_key k = { .made_s = now, .set = true };

	if (RAND_bytes(k.name, sizeof(k.name)) != 1 ||
	    RAND_bytes(k.aes, sizeof(k.aes)) != 1 ||
	    RAND_bytes(k.hmac, sizeof(k.hmac)) != 1)
		return false;
	t->prev = t->cur;
	t->cur = k;
	return true;
}

static int ticket_mac(EVP_MAC_CTX *hctx, const struct ticket_key *k)
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
	struct ticket_key k;
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
			 ce->cert, ssl_reason(why, sizeof(why)));
		return -EINVAL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, ce->key, SSL_FILETYPE_PEM) != 1) {
		snprintf(err, errlen, "%s: not an unencrypted PEM private key: "
			 "%s", ce->key, ssl_reason(why, sizeof(why)));
		return -EINVAL;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "%s does not match the certificate %s: "
			 "%s", ce->key, ce->cert, ssl_reason(why, sizeof(why)));
		return -EINVAL;
	}
	return 0;
}

/* What both kinds of context start with (the kTLS probe once, the
 * handshake timeout, ALPN). Returns 0 or -errno, said in err (errlen 0:
 * nothing said), with *out NULL or to be freed by tls_done. */
static int tls_new(const char *alpn, unsigned handshake_ms,
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
static int tls_done(struct coil_tls *t, int ret, struct coil_tls **out,
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
	ret = tls_new(o.alpn, o.handshake_timeout_ms, &t, err, errlen);
	if (t)
		t->rotate_s = o.ticket_rotate_s ? o.ticket_rotate_s
						: DEFAULT_ROTATE_S;
	for (unsigned i = 0; !ret && i < o.ncerts; i++) {
		ret = ctx_load(t, &o, i, err, errlen);
		t->n = i + 1;
	}
	return tls_done(t, ret, out, err, errlen);
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

/* ---- client contexts ---- */

/* OpenSSL's new-session callback (client): keep the latest session or
 * TLS 1.3 ticket, serialized, for the next connection. Returns 0: OpenSSL
 * keeps its reference. Any loop thread. */
static int new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct coil_tls *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	int len = i2d_SSL_SESSION(sess, NULL);
	uint8_t *der, *p;
	size_t old_len;

	if (len <= 0 || !(der = malloc((size_t)len)))
		goto out;
	p = der;
	if (i2d_SSL_SESSION(sess, &p) != len) {
		free(der);
		goto out;
	}
	pthread_mutex_lock(&t->lock);
	p = t->sess;
	old_len = t->sess_len;
	t->sess = der;
	t->sess_len = (size_t)len;
	pthread_mutex_unlock(&t->lock);
	if (p)   /* it holds the session's secret */
		OPENSSL_cleanse(p, old_len);
	free(p);
out:
	ERR_clear_error();
	return 0;
}

/* A private copy of the context's latest session, or NULL. */
static SSL_SESSION *session_get(struct coil_tls *cfg)
{
	SSL_SESSION *sess = NULL;
	const uint8_t *p;
	uint8_t *der;
	size_t len;

	pthread_mutex_lock(&cfg->lock);
	len = cfg->sess_len;
	der = cfg->sess ? malloc(len) : NULL;
	if (der)
		memcpy(der, cfg->sess, len);
	pthread_mutex_unlock(&cfg->lock);
	if (!der)
		return NULL;
	p = der;
	sess = d2i_SSL_SESSION(NULL, &p, (long)len);
	OPENSSL_cleanse(der, len);
	free(der);
	if (!sess)
		ERR_clear_error();
	return sess;
}

static bool ip_literal(const char *s)
{
	uint8_t a[16];

	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

static int client_ctx(struct coil_tls *t, const struct coil_tls_client_opts *o,
		      char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	char why[160];

	if (!ctx)
		return -ENOMEM;
	t->ctx[0] = ctx;
	t->n = 1;
	SSL_CTX_set_app_data(ctx, t);
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (o->max_version && o->max_version != 12 && o->max_version != 13) {
		snprintf(err, errlen, "max_version: expected 12 or 13, got %u",
			 o->max_version);
		return -EINVAL;
	}
	if (o->max_version == 12)
		SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
				 SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (o->ciphers && SSL_CTX_set_cipher_list(ctx, o->ciphers) != 1) {
		snprintf(err, errlen, "cipher list '%s': %s", o->ciphers,
			 ssl_reason(why, sizeof(why)));
		return -EINVAL;
	}
	if (o->ciphersuites &&
	    SSL_CTX_set_ciphersuites(ctx, o->ciphersuites) != 1) {
		snprintf(err, errlen, "TLS 1.3 cipher suites '%s': %s",
			 o->ciphersuites, ssl_reason(why, sizeof(why)));
		return -EINVAL;
	}
	if (t->alpn_len && SSL_CTX_set_alpn_protos(ctx, t->alpn,
						   t->alpn_len) != 0)
		return -ENOMEM;
	if (o->server_name && !ip_literal(o->server_name)) {
		t->sni = strdup(o->server_name);
		if (!t->sni)
			return -ENOMEM;
	}
	if (o->no_verify) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	} else {
		X509_VERIFY_PARAM *vp = SSL_CTX_get0_param(ctx);
		int r;

		if (o->ca_file && access(o->ca_file, R_OK)) {
			snprintf(err, errlen, "%s: %s", o->ca_file,
				 strerror(errno));
			return -EINVAL;
		}
		r = o->ca_file ? SSL_CTX_load_verify_file(ctx, o->ca_file)
			       : SSL_CTX_set_default_verify_paths(ctx);
		if (r != 1) {
			snprintf(err, errlen, "%s: no PEM certificate in it: %s",
				 o->ca_file ? o->ca_file : "the default CAs",
				 ssl_reason(why, sizeof(why)));
			return -EINVAL;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		X509_VERIFY_PARAM_set_hostflags(vp,
			X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (o->server_name &&
		    (ip_literal(o->server_name)
			     ? X509_VERIFY_PARAM_set1_ip_asc(vp, o->server_name)
			     : X509_VERIFY_PARAM_set1_host(vp, o->server_name,
							   0)) != 1) {
			snprintf(err, errlen, "server name '%s': %s",
				 o->server_name, ssl_reason(why, sizeof(why)));
			return -EINVAL;
		}
	}
	t->resume = !o->no_resume;
	if (t->resume) {
		/* Kept here (new_session), not in OpenSSL's internal store. */
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
					       SSL_SESS_CACHE_NO_INTERNAL_STORE);
		SSL_CTX_sess_set_new_cb(ctx, new_session);
	} else {
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	}
	return 0;
}

int coil_tls_client_create(const struct coil_tls_client_opts *opts,
			   struct coil_tls **out, char *err, size_t errlen)
{
	struct coil_tls_client_opts o = { 0 };
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
	ret = tls_new(o.alpn, o.handshake_timeout_ms, &t, err, errlen);
	if (!ret) {
		t->client = true;
		ret = client_ctx(t, &o, err, errlen);
	}
	return tls_done(t, ret, out, err, errlen);
}

bool coil__tls_is_client(const struct coil_tls *t)
{
	return t->client;
}

/* ---- per connection ---- */

static void hs_fired(struct coil_timer *timer)
{
	struct coil__tls *t = timer->data;
	struct coil_conn *c = t->c;

	if (log_due())
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
	if (cfg->resume && (sess = session_get(cfg))) {
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
	if (log_due())
		coil__log("loop %u: fd %d: TLS: cannot start the handshake: %s",
			  c->loop->id, c->fd, ssl_reason(why, sizeof(why)));
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
	ssl_reason(why, sizeof(why));
	if (log_due())
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
