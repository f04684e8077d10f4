/* SPDX-License-Identifier: MIT */
/*
 * TLS client contexts (coil_tls_client_create, coil/tls.h): how the peer
 * is verified (a CA file or the system's, against a host name or an IP
 * address), the SNI and ALPN offered, version and cipher limits, and the
 * context's session cache: the latest session the server gave, kept
 * serialized, from which each new connection decodes its own copy
 * (tls_conn.c offers it in the ClientHello).
 */
#include "../core/internal.h"

#include <coil/tls.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>

#include "tls_internal.h"

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
SSL_SESSION *coil__tls_session_get(struct coil_tls *cfg)
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
			 coil__tls_ssl_reason(why, sizeof(why)));
		return -EINVAL;
	}
	if (o->ciphersuites &&
	    SSL_CTX_set_ciphersuites(ctx, o->ciphersuites) != 1) {
		snprintf(err, errlen, "TLS 1.3 cipher suites '%s': %s",
			 o->ciphersuites,
			 coil__tls_ssl_reason(why, sizeof(why)));
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
				 coil__tls_ssl_reason(why, sizeof(why)));
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
				 o->server_name,
				 coil__tls_ssl_reason(why, sizeof(why)));
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
	ret = coil__tls_new(o.alpn, o.handshake_timeout_ms, &t, err, errlen);
	if (!ret) {
		t->client = true;
		ret = client_ctx(t, &o, err, errlen);
	}
	return coil__tls_done(t, ret, out, err, errlen);
}

bool coil__tls_is_client(const struct coil_tls *t)
{
	return t->client;
}
