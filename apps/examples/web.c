/* SPDX-License-Identifier: MIT */
/*
 * A twisted.web-style site on coil in one file: a JSON resource, a
 * resource that answers after a timer (NOT_DONE_YET), and a proxied
 * prefix (ReverseProxyResource).
 *
 *   coil-example-web [--addr IP] [--port N] [--upstream IP:PORT]
 *
 *   GET /hello          {"hello":"world","you":"<your address>"}
 *   GET /later?ms=N     "later\n" after N ms (default 500); the client
 *                       leaving first cancels the timer
 *   ANY /remote/...     proxied to UPSTREAM as /...
 */
#include <coil/coil.h>
#include <coil/http.h>
#include <coil/http_client.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* GET /hello: a JSON resource. */
static void hello(struct coil_http_req *x)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char ip[INET6_ADDRSTRLEN] = "?", body[128];
	int n;

	if (!coil_http_peer(x, &ss, &len) && ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip,
			  sizeof(ip));
	n = snprintf(body, sizeof(body), "{\"hello\":\"world\",\"you\":\"%s\"}",
		     ip);
	coil_http_header_set(x, "Cache-Control", "no-store");
	coil_http_respond(x, 200, "application/json", body, (size_t)n);
}

/* GET /later: answered from a timer, like returning NOT_DONE_YET and
 * calling request.finish() from reactor.callLater. */
struct later {
	struct coil_timer timer;
	struct coil_http_req *x;
};

static void later_fire(struct coil_timer *t)
{
	struct later *l = t->data;

	coil_http_respond(l->x, 200, "text/plain", "later\n", 6);
	free(l);
}

static void later_cancel(struct coil_http_req *x, void *arg)
{
	struct later *l = arg;

	(void)x;
	coil_timer_stop(&l->timer);   /* the client left: no answer */
	free(l);
}

static void later(struct coil_http_req *x)
{
	const char *ms = x->query.len > 3 && !memcmp(x->query.ptr, "ms=", 3) ?
			 x->query.ptr + 3 : "500";
	struct later *l = malloc(sizeof(*l));

	if (!l) {
		coil_http_respond_error(x, 503);
		return;
	}
	l->x = x;
	coil_timer_init(&l->timer, coil_conn_loop(x->conn), later_fire, l);
	coil_timer_start(&l->timer, strtoull(ms, NULL, 10));
	coil_http_defer(x, later_cancel, l);
}

int main(int argc, char **argv)
{
	struct coil_engine_opts eo = { .sz = sizeof(eo), .cores = 1,
				       .name = "coil-example-web" };
	struct coil_http_config hc = { .sz = sizeof(hc), .max_loops = 1 };
	struct coil_service svc = { .sz = sizeof(svc), .addr = "127.0.0.1" };
	struct coil_http_route r_hello = { .path = "/hello" };
	struct coil_http_route r_later = { .path = "/later" };
	struct coil_http_server *h;
	struct coil_engine *eng;
	const char *upstream = NULL;
	int idx, ret;

	svc.port = 8080;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--addr"))
			svc.addr = argv[i + 1];
		else if (!strcmp(argv[i], "--port"))
			svc.port = (uint16_t)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--upstream"))
			upstream = argv[i + 1];
	}
	if (coil_http_server_create(&hc, &h, NULL) ||
	    coil_engine_create(&eo, &eng)) {
		fprintf(stderr, "coil-example-web: cannot start\n");
		return 1;
	}
	r_hello.on[COIL_HTTP1_GET] = hello;
	r_later.on[COIL_HTTP1_GET] = later;
	coil_http_server_route(h, &r_hello);
	coil_http_server_route(h, &r_later);
	if (upstream) {
		/* upstream "IP:PORT": a client service, then the prefix */
		static char ip[64];
		struct coil_service up = { .sz = sizeof(up), .addr = ip,
					   .ops = &coil_http_client_ops };
		struct coil_http_client_opts co = { .sz = sizeof(co) };
		const char *colon = strrchr(upstream, ':');

		if (!colon || (size_t)(colon - upstream) >= sizeof(ip)) {
			fprintf(stderr, "coil-example-web: upstream IP:PORT\n");
			return 2;
		}
		memcpy(ip, upstream, (size_t)(colon - upstream));
		up.port = (uint16_t)atoi(colon + 1);
		up.state_size = coil_http_client_state_size();
		co.service = coil_engine_client(eng, &up);
		if (co.service < 0 ||
		    coil_http_server_proxy(h, "/remote/", upstream, "/", &co)) {
			fprintf(stderr, "coil-example-web: bad upstream\n");
			return 1;
		}
	}
	coil_http_server_service_init(h, &svc);
	idx = coil_engine_listen(eng, &svc);
	if (idx < 0) {
		fprintf(stderr, "coil-example-web: cannot listen\n");
		return 1;
	}
	fprintf(stderr, "coil-example-web: listening on %s:%u\n", svc.addr,
		coil_engine_port(eng, idx));
	ret = coil_engine_run(eng);
	coil_engine_destroy(eng);
	coil_http_server_destroy(h);
	return ret ? 1 : 0;
}
