/* SPDX-License-Identifier: MIT */
/* Private to the files of engine/tls: the context (struct coil_tls) that
 * tls.c (servers) and tls_client.c (clients) make and tls_conn.c runs each
 * connection on, and the helpers the three share. */
#ifndef COIL_TLS_INTERNAL_H
#define COIL_TLS_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <coil/tls.h>

#include <openssl/ssl.h>

/* A session ticket key of a server context (tls.c). */
struct coil__tls_ticket_key {
	uint8_t name[16], aes[32], hmac[32];
	uint64_t made_s;            /* CLOCK_MONOTONIC seconds */
	bool set;
};

/* A context (coil/tls.h): a server's certificates and ticket keys, or a
 * client's settings and latest session; every loop thread uses it. */
struct coil_tls {
	SSL_CTX *ctx[COIL_TLS_MAX_CERTS];
	unsigned n;
	unsigned handshake_ms;
	unsigned rotate_s;
	uint8_t alpn[256];          /* wire format: length-prefixed names */
	unsigned alpn_len;
	pthread_mutex_t lock;       /* the ticket keys; a client's session */
	struct coil__tls_ticket_key cur, prev;
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

/* Whether to log one more TLS failure: the first 16, then one in 1024 (a
 * flood of bad handshakes must not flood the log). Any thread. */
bool coil__tls_log_due(void);
/* OpenSSL's last error as text in buf[len], its error queue cleared. */
const char *coil__tls_ssl_reason(char *buf, size_t len);
/* A new context, before its SSL_CTXs (tls.c): 0 or -errno, said in err. */
int coil__tls_new(const char *alpn, unsigned handshake_ms,
		  struct coil_tls **out, char *err, size_t errlen);
/* The end of a create (tls.c): *out = t on ret 0, else t freed; ret. */
int coil__tls_done(struct coil_tls *t, int ret, struct coil_tls **out,
		   char *err, size_t errlen);
/* A client context's latest session, a private copy, or NULL
 * (tls_client.c). */
SSL_SESSION *coil__tls_session_get(struct coil_tls *cfg);

#endif
