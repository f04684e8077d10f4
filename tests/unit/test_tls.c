/* SPDX-License-Identifier: MIT */
/*
 * TLS contexts (coil/tls.h): the client context's option checks, each
 * failure with its reason; and the engine taking a server context only on
 * a listener and a client context only on a client service (-EINVAL and a
 * log line otherwise). The server certificate is made here (OpenSSL, a
 * self-signed P-256 key in a temporary directory).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <coil/coil.h>

static char dir[] = "/tmp/coil-test-tls.XXXXXX";
static char cert_path[64], key_path[64];

static size_t sink(struct coil_conn *c, const uint8_t *d, size_t n)
{
	(void)c;
	(void)d;
	return n;
}

static const struct coil_proto_ops ops = { .on_data = sink };

static int make_cert(void **state)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	FILE *f;

	(void)state;
	if (!key || !x || !mkdtemp(dir))
		return -1;
	snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", dir);
	snprintf(key_path, sizeof(key_path), "%s/key.pem", dir);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"localhost", -1, -1,
				   0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	if (!X509_sign(x, key, EVP_sha256()))
		return -1;
	f = fopen(cert_path, "w");
	if (!f || !PEM_write_X509(f, x) || fclose(f))
		return -1;
	f = fopen(key_path, "w");
	if (!f || !PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) ||
	    fclose(f))
		return -1;
	X509_free(x);
	EVP_PKEY_free(key);
	return 0;
}

static int remove_cert(void **state)
{
	(void)state;
	unlink(cert_path);
	unlink(key_path);
	rmdir(dir);
	return 0;
}

static void test_client_opts(void **state)
{
	struct coil_tls_client_opts o = { .sz = sizeof(o) };
	struct coil_tls *t = NULL;
	char why[256];

	(void)state;
	/* the system's CAs, or none at all */
	assert_int_equal(coil_tls_client_create(&o, &t, why, sizeof(why)), 0);
	coil_tls_destroy(t);
	o.no_verify = true;
	o.server_name = "127.0.0.1";
	o.alpn = "http/1.1";
	assert_int_equal(coil_tls_client_create(&o, &t, NULL, 0), 0);
	coil_tls_destroy(t);
	o.no_verify = false;
	/* a CA file that is not there, or holds no certificate */
	o.ca_file = "/nonexistent/ca.pem";
	assert_int_equal(coil_tls_client_create(&o, &t, why, sizeof(why)),
			 -EINVAL);
	assert_non_null(strstr(why, "/nonexistent/ca.pem"));
	o.ca_file = key_path;
	assert_int_equal(coil_tls_client_create(&o, &t, why, sizeof(why)),
			 -EINVAL);
	assert_non_null(strstr(why, "no PEM certificate"));
	o.ca_file = cert_path;
	o.server_name = "localhost";
	assert_int_equal(coil_tls_client_create(&o, &t, why, sizeof(why)), 0);
	coil_tls_destroy(t);
	/* bad lists and versions */
	o.ciphers = "NO-SUCH-CIPHER";
	assert_int_equal(coil_tls_client_create(&o, &t, why, sizeof(why)),
			 -EINVAL);
	assert_non_null(strstr(why, "NO-SUCH-CIPHER"));
	o.ciphers = NULL;
	o.ciphersuites = "TLS_NO_SUCH";
	assert_int_equal(coil_tls_client_create(&o, &t, why, sizeof(why)),
			 -EINVAL);
	o.ciphersuites = NULL;
	o.max_version = 11;
	assert_int_equal(coil_tls_client_create(&o, &t, why, sizeof(why)),
			 -EINVAL);
	assert_non_null(strstr(why, "max_version"));
	o.max_version = 12;
	o.alpn = "a,,b";
	assert_int_equal(coil_tls_client_create(&o, &t, why, sizeof(why)),
			 -EINVAL);
	assert_non_null(strstr(why, "ALPN"));
}

/* A listener takes a server context, a client service a client one. */
static void test_engine_kinds(void **state)
{
	struct coil_engine_opts eo = { .sz = sizeof(eo), .cores = 1,
				       .backend = COIL_BACKEND_EPOLL };
	struct coil_tls_cert cert = { .cert = cert_path, .key = key_path };
	struct coil_tls_opts so = { .sz = sizeof(so), .certs = &cert,
				    .ncerts = 1 };
	struct coil_tls_client_opts co = { .sz = sizeof(co),
					   .no_verify = true };
	struct coil_service ls = { .sz = sizeof(ls), .addr = "127.0.0.1",
				   .ops = &ops };
	struct coil_service cl = { .sz = sizeof(cl), .addr = "127.0.0.1",
				   .port = 9, .ops = &ops };
	struct coil_tls *server, *client;
	struct coil_engine *eng;
	char why[256];

	(void)state;
	assert_int_equal(coil_tls_create(&so, &server, why, sizeof(why)), 0);
	assert_int_equal(coil_tls_client_create(&co, &client, why,
						sizeof(why)), 0);
	assert_int_equal(coil_engine_create(&eo, &eng), 0);
	ls.tls = client;
	assert_int_equal(coil_engine_listen(eng, &ls), -EINVAL);
	cl.tls = server;
	assert_int_equal(coil_engine_client(eng, &cl), -EINVAL);
	ls.tls = server;
	assert_int_equal(coil_engine_listen(eng, &ls), 0);
	cl.tls = client;
	assert_int_equal(coil_engine_client(eng, &cl), 1);
	coil_engine_destroy(eng);
	coil_tls_destroy(client);
	coil_tls_destroy(server);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_client_opts),
		cmocka_unit_test(test_engine_kinds),
	};

	return cmocka_run_group_tests(tests, make_cert, remove_cert);
}
