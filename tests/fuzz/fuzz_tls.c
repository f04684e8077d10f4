/* SPDX-License-Identifier: MIT */
/*
 * The TLS layer (engine/tls) over the fake backend: the input is a
 * client's flights, fed one after another into a TLS echo service
 * (ciphertext in, whatever the server answers taken out and dropped), so
 * the handshake, record and alert paths meet arbitrary bytes. Each flight
 * is a 2-byte big-endian length, then its bytes; the first byte picks the
 * receive buffer size. No crash, no leak, bounded memory: every
 * connection ends in on_close when the fake is destroyed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <coil/coil.h>
#include <coil/testing.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define CHECK(x) do { if (!(x)) { fprintf(stderr, "%s:%d: %s\n", \
	__FILE__, __LINE__, #x); abort(); } } while (0)

static struct coil_tls *tls;
static char dir[] = "/tmp/fuzz-tls-XXXXXX";
static char cert_path[64], key_path[64];

static size_t echo_data(struct coil_conn *c, const uint8_t *d, size_t n)
{
	coil_conn_write(c, d, n);
	return n;
}

static const struct coil_proto_ops echo_ops = { .on_data = echo_data };

/* A self-signed P-256 certificate for "localhost", made once. */
static void make_cert(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *nm;
	FILE *f;

	CHECK(k && x && mkdtemp(dir));
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, k);
	nm = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
				   (const unsigned char *)"localhost", -1, -1,
				   0);
	X509_set_issuer_name(x, nm);
	CHECK(X509_sign(x, k, EVP_sha256()) > 0);
	snprintf(cert_path, sizeof(cert_path), "%s/c.pem", dir);
	snprintf(key_path, sizeof(key_path), "%s/k.pem", dir);
	CHECK((f = fopen(cert_path, "w")) && PEM_write_X509(f, x));
	fclose(f);
	CHECK((f = fopen(key_path, "w")) &&
	      PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL));
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(k);
}

static void cleanup(void)
{
	coil_tls_destroy(tls);
	unlink(cert_path);
	unlink(key_path);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct coil_tls_cert ce;
	struct coil_tls_opts o = { .sz = sizeof(o), .certs = &ce, .ncerts = 1,
				   .alpn = "http/1.1",
				   .handshake_timeout_ms = 50 };
	char err[256];

	(void)argc;
	(void)argv;
	make_cert();
	ce.cert = cert_path;
	ce.key = key_path;
	CHECK(coil_tls_create(&o, &tls, err, sizeof(err)) == 0);
	atexit(cleanup);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned buf_sizes[4] = { 64, 256, 1024, 4096 };
	struct coil_service svc = { .sz = sizeof(svc), .ops = &echo_ops,
				    .tls = tls };
	struct coil_fake_opts fo = { .sz = sizeof(fo), .bufs = 64 };
	struct coil_fake *fake;
	uint8_t out[4096];
	size_t pos = 1;
	int id;

	if (!size)
		return 0;
	fo.buf_size = buf_sizes[data[0] & 3];
	CHECK(coil_fake_create(&fo, &svc, &fake) == 0);
	id = coil_fake_connect(fake);
	CHECK(id >= 0);
	while (pos + 2 <= size) {
		size_t n = (size_t)data[pos] << 8 | data[pos + 1];

		pos += 2;
		if (n > size - pos)
			n = size - pos;
		if (!n)   /* (the fake's queue takes no empty sends) */
			continue;
		if (coil_fake_feed(fake, id, data + pos, n) < 0)
			break;
		pos += n;
		while (coil_fake_take(fake, id, out, sizeof(out)))
			;
		if (coil_fake_closed(fake, id, NULL, NULL))
			break;
	}
	coil_fake_advance(fake, 100);   /* the handshake timeout */
	coil_fake_settle(fake);
	while (coil_fake_take(fake, id, out, sizeof(out)))
		;
	coil_fake_destroy(fake);
	return 0;
}
