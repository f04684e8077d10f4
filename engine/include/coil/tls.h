/* SPDX-License-Identifier: MIT */
/*
 * TLS for TCP services (Twisted's listenSSL): a layer between the
 * transport and the protocol, OpenSSL 3 over memory BIOs driven by the
 * loop. Ciphertext from the receive buffers is decrypted and handed to
 * on_data as plaintext; what the protocol queues (coil_conn_write, _ref,
 * _static, _sendfile) is encrypted when the loop flushes, in order. The
 * protocol does not change: a service gets TLS by pointing
 * coil_service.tls at a context made here.
 *
 * On a TLS connection nothing is zero copy: coil_conn_write_ref and
 * coil_conn_write_static copy through the encryptor, and
 * coil_conn_sendfile reads the file (pread, at most 256 KiB of ciphertext
 * ahead of the socket) instead of splicing it. on_open runs at accept,
 * before the handshake; bytes written before the handshake completes are
 * sent once it has. A handshake that fails or takes longer than the
 * handshake timeout closes the connection (on_close gets -EPROTO or
 * -ETIMEDOUT). A graceful close sends close_notify after the queued
 * output; a peer's close_notify is an end of input (COIL_CLOSE_PEER).
 * TLS 1.2 and 1.3 only; renegotiation is refused.
 *
 * The same layer runs the client side of outgoing connections
 * (coil_engine_client, coil_loop_connect): point that service's tls at a
 * context from coil_tls_client_create. on_open runs once TCP connects,
 * before the handshake (the ClientHello is queued first); what the
 * protocol writes goes out once the handshake completes; a certificate
 * that does not verify closes the connection with -EPROTO after one log
 * line with the reason ("certificate has expired", "hostname mismatch").
 *
 * The kernel's TLS offload (kTLS) is probed once, at the first
 * coil_tls_create, and one log line says that TLS stays in user space: the
 * records are always built here for now.
 */
#ifndef COIL_TLS_H
#define COIL_TLS_H

#include <coil/engine.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct coil_conn;

/* A TLS configuration (OpenSSL contexts, certificates, ticket keys):
 * shared by every loop of every service that points at it. Opaque. */
struct coil_tls;

/* One certificate: PEM files. */
struct coil_tls_cert {
	const char *cert;   /* the certificate, then its chain (leaf first) */
	const char *key;    /* its private key (unencrypted) */
};

/* Most certificates one context holds (one per SNI name). */
#define COIL_TLS_MAX_CERTS COIL_ENGINE_TLS_CERTS

struct coil_tls_opts {
	size_t sz;                  /* sizeof(struct coil_tls_opts) */
	/* At least one. The first is the default; another is chosen when
	 * the client's SNI name matches it (X509_check_host: subject
	 * alternative names, wildcards) and not an earlier one. */
	const struct coil_tls_cert *certs;
	unsigned ncerts;
	/* ALPN protocols the server accepts, comma-separated, in its order
	 * of preference ("http/1.1"). A client offering ALPN without one of
	 * them gets no ALPN answer (the handshake goes on). NULL: none. */
	const char *alpn;
	unsigned handshake_timeout_ms;  /* default 10000 */
	/* Session tickets (resumption without server state): their keys are
	 * made at random in this process, a new one every this many seconds;
	 * a ticket made with the previous key still resumes (and is
	 * renewed). Default 3600. */
	unsigned ticket_rotate_s;
	bool no_tickets;            /* no resumption at all */
};

/*
 * Make a server TLS context: load and check every certificate and key.
 * On failure returns -errno (-EINVAL for a bad certificate, key or
 * option, -ENOMEM) and writes one line saying which file and why into
 * err[errlen] (when err is not NULL). Main thread, before the services
 * that use it start; the context must outlive the engine.
 */
int coil_tls_create(const struct coil_tls_opts *opts, struct coil_tls **out,
		    char *err, size_t errlen);

/* Free a context no connection uses any more (after coil_engine_destroy).
 * NULL is fine. */
void coil_tls_destroy(struct coil_tls *tls);

/*
 * The context the engine flags --tls-cert/--tls-key/--tls-handshake-ms
 * asked for (COIL_ENGINE_FLAG_TLS in coil/options.h), with `alpn` as in
 * coil_tls_opts. Sets *out to NULL and returns 0 when no --tls-cert was
 * given. Returns -EINVAL after printing one line "PROG: --tls-cert FILE:
 * reason" to `err` (stderr when NULL) when the certificates do not load or
 * the flags do not pair up: the app then exits with status 2. Main thread.
 */
int coil_tls_from_engine_opts(const struct coil_engine_opts *eo,
			      const char *alpn, const char *prog,
			      struct coil_tls **out, FILE *err);

/* ---- the client side ---- */

struct coil_tls_client_opts {
	size_t sz;                  /* sizeof(struct coil_tls_client_opts) */
	/* The server's certificate is verified against the CAs of this PEM
	 * file; NULL: the system's default CAs. */
	const char *ca_file;
	/* Accept any certificate (no chain, no name check): for load tests
	 * only. ca_file is then ignored. */
	bool no_verify;
	/* Sent as SNI (unless an IP literal: RFC 6066 forbids that) and, when
	 * verifying, the name (or IP address) the certificate must match
	 * (X509_check_host: subject alternative names, wildcards). NULL: no
	 * SNI, and only the chain is verified. */
	const char *server_name;
	/* ALPN protocols offered, comma-separated ("http/1.1"); NULL: none. */
	const char *alpn;
	unsigned handshake_timeout_ms;  /* default 10000 */
	/* Session resumption: the context keeps the latest session (TLS 1.2
	 * session or TLS 1.3 ticket) the server gave, and every new
	 * connection offers it. A context is meant for one server (one
	 * server_name). true: every connection makes a full handshake. */
	bool no_resume;
	/* Cipher lists in OpenSSL's syntax (SSL_CTX_set_cipher_list for TLS
	 * 1.2, SSL_CTX_set_ciphersuites for TLS 1.3); NULL: OpenSSL's
	 * defaults. */
	const char *ciphers;
	const char *ciphersuites;
	/* The highest version offered: 0 (TLS 1.3), 12 (TLS 1.2) or 13. */
	unsigned max_version;
};

/*
 * Make a client TLS context for the services of coil_engine_client:
 * load the CAs and check every option. Returns 0, or -errno (-EINVAL for
 * an unreadable CA file or a bad option, -ENOMEM) after writing one line
 * saying why into err[errlen] (when err is not NULL). Main thread; the
 * context must outlive the engine; free it with coil_tls_destroy. Its
 * session cache is shared by every loop (a lock, taken once per
 * handshake).
 */
int coil_tls_client_create(const struct coil_tls_client_opts *opts,
			   struct coil_tls **out, char *err, size_t errlen);

/* What one TLS connection negotiated. The strings are OpenSSL's static
 * names ("TLSv1.3", "TLS_AES_256_GCM_SHA384"), valid for the process. */
struct coil_tls_info {
	bool done;                  /* the handshake has completed */
	bool resumed;               /* by a session or ticket */
	const char *version;        /* NULL before the handshake completes */
	const char *cipher;
	char alpn[32];              /* the ALPN protocol; "" when none */
};

/*
 * Fill *info for connection c (server or client side). Returns 0, or
 * -ENOPROTOOPT when c has no TLS. Only on c's loop (on_close included:
 * the state lives until on_close returns).
 */
int coil_conn_tls_info(const struct coil_conn *c, struct coil_tls_info *info);

#endif
