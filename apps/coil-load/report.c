/* SPDX-License-Identifier: MIT */
/* coil-load's results: merged per-thread figures, text and JSON. */
#include "load.h"

#include <errno.h>
#include <string.h>

static const double pcts[] = { 50, 90, 99, 99.9 };
static const char *const pct_names[] = { "p50", "p90", "p99", "p99.9" };
#define NPCT (sizeof(pcts) / sizeof(pcts[0]))

void load_stats_merge(struct load_stats *dst, const struct load_stats *src)
{
	dst->done += src->done;
	dst->rx_bytes += src->rx_bytes;
	dst->tx_bytes += src->tx_bytes;
	dst->connects += src->connects;
	dst->connect_errors += src->connect_errors;
	dst->read_errors += src->read_errors;
	dst->write_errors += src->write_errors;
	dst->timeouts += src->timeouts;
	dst->invalid += src->invalid;
	dst->mismatches += src->mismatches;
	dst->sent += src->sent;
	dst->tls_full += src->tls_full;
	dst->tls_resumed += src->tls_resumed;
	dst->tls_errors += src->tls_errors;
	if (!dst->tls_version) {
		dst->tls_version = src->tls_version;
		dst->tls_cipher = src->tls_cipher;
	}
	for (unsigned i = 0; i < 1000; i++)
		dst->status[i] += src->status[i];
	hist_merge(&dst->lat, &src->lat);
}

uint64_t load_bad_status(const struct load_stats *st)
{
	uint64_t n = 0;

	for (unsigned i = 400; i < 1000; i++)
		n += st->status[i];
	return n;
}

uint64_t load_error_total(const struct load_stats *st)
{
	return st->connect_errors + st->read_errors + st->write_errors +
	       st->timeouts + st->invalid + st->mismatches + st->tls_errors +
	       load_bad_status(st);
}

/* "123us", "1.23ms", "1.23s" */
static const char *dur(char *buf, size_t n, uint64_t ns)
{
	if (ns < 10000)
		snprintf(buf, n, "%.2fus", (double)ns / 1e3);
	else if (ns < 10000000)
		snprintf(buf, n, "%.0fus", (double)ns / 1e3);
	else if (ns < 10000000000ull)
		snprintf(buf, n, "%.2fms", (double)ns / 1e6);
	else
		snprintf(buf, n, "%.2fs", (double)ns / 1e9);
	return buf;
}

static double per_s(uint64_t n, double s)
{
	return s > 0 ? (double)n / s : 0;
}

void load_report_text(FILE *f, const struct load_opts *o,
		      const struct load_result *r)
{
	const struct load_stats *st = &r->st;
	const char *what = o->mode == MODE_ECHO ? "messages" : "requests";
	char b[32];

	if (o->mode == MODE_ECHO)
		fprintf(f, "coil-load echo %s:%u: %u connections, %u B x %u in flight%s",
			o->addr, o->port, o->conns, o->size, o->depth,
			o->verify ? ", verified" : "");
	else
		fprintf(f, "coil-load http %s:%u%s: %u connections, %s%s",
			o->addr, o->port, o->path, o->conns,
			o->close ? "one request per connection"
				 : o->pipeline > 1 ? "pipelined" : "keep-alive",
			o->rate ? ", open loop" : ", closed loop");
	if (o->mode == MODE_HTTP && o->pipeline > 1)
		fprintf(f, " (depth %u)", o->pipeline);
	if (o->rate)
		fprintf(f, " at %llu/s", (unsigned long long)o->rate);
	fprintf(f, "\n  %u thread%s on %s, %.2f s\n", r->threads,
		r->threads == 1 ? "" : "s", r->backend ? r->backend : "?",
		r->elapsed_s);
	fprintf(f, "  %-12s %llu done, %llu sent, %.1f/s\n", what,
		(unsigned long long)st->done, (unsigned long long)st->sent,
		per_s(st->done, r->elapsed_s));
	fprintf(f, "  %-12s", "latency");
	for (unsigned i = 0; i < NPCT; i++)
		fprintf(f, " %s %s", pct_names[i],
			dur(b, sizeof(b), hist_percentile(&st->lat, pcts[i])));
	fprintf(f, " max %s", dur(b, sizeof(b), st->lat.max));
	fprintf(f, " mean %s\n", dur(b, sizeof(b), st->lat.count
					  ? st->lat.sum / st->lat.count : 0));
	if (o->rate)
		fprintf(f, "  %-12s from each request's intended send time\n", "");
	if (o->mode == MODE_HTTP) {
		fprintf(f, "  %-12s", "status");
		for (unsigned i = 100; i < 1000; i++)
			if (st->status[i])
				fprintf(f, " %u: %llu", i,
					(unsigned long long)st->status[i]);
		fprintf(f, "\n");
	}
	fprintf(f, "  %-12s %llu established, %.1f/s\n", "connections",
		(unsigned long long)st->connects,
		per_s(st->connects, r->elapsed_s));
	if (o->tls)
		fprintf(f, "  %-12s %s %s, %llu handshakes (%llu resumed), "
			"%.1f/s%s%s\n", "tls",
			st->tls_version ? st->tls_version : "-",
			st->tls_cipher ? st->tls_cipher : "-",
			(unsigned long long)(st->tls_full + st->tls_resumed),
			(unsigned long long)st->tls_resumed,
			per_s(st->tls_full + st->tls_resumed, r->elapsed_s),
			o->ca ? ", verified" : ", not verified",
			o->no_resume ? ", no resumption" : "");
	fprintf(f, "  %-12s connect %llu, read %llu, write %llu, timeout %llu",
		"errors", (unsigned long long)st->connect_errors,
		(unsigned long long)st->read_errors,
		(unsigned long long)st->write_errors,
		(unsigned long long)st->timeouts);
	if (o->tls)
		fprintf(f, ", tls handshake %llu",
			(unsigned long long)st->tls_errors);
	if (o->mode == MODE_HTTP)
		fprintf(f, ", invalid responses %llu, status >= 400 %llu",
			(unsigned long long)st->invalid,
			(unsigned long long)load_bad_status(st));
	else
		fprintf(f, ", mismatched bytes %llu%s",
			(unsigned long long)st->mismatches,
			o->verify ? "" : " (not verified)");
	if (o->cpu_pid && r->server_cpu_us >= 0)
		fprintf(f, "\n  %-12s %.3f us per %s (pid %d, %.0f%% of a core)",
			"server CPU", st->done ? (double)r->server_cpu_us /
						 (double)st->done : 0,
			o->mode == MODE_ECHO ? "message" : "response",
			o->cpu_pid, r->elapsed_s > 0 ? (double)r->server_cpu_us /
							       1e4 / r->elapsed_s : 0);
	fprintf(f, "\n  %-12s rx %.2f MiB/s, tx %.2f MiB/s\n", "transfer",
		per_s(st->rx_bytes, r->elapsed_s) / 1048576.0,
		per_s(st->tx_bytes, r->elapsed_s) / 1048576.0);
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

int load_report_json(const char *path, const struct load_opts *o,
		     const struct load_result *r)
{
	const struct load_stats *st = &r->st;
	FILE *f = fopen(path, "w");
	bool first = true;
	int ret = 0;

	if (!f)
		return -errno;
	fprintf(f, "{\n  \"tool\": \"coil-load\",\n  \"mode\": \"%s\",\n",
		o->mode == MODE_ECHO ? "echo" : "http");
	fprintf(f, "  \"target\": {\"host\": ");
	json_str(f, o->host);
	fprintf(f, ", \"addr\": ");
	json_str(f, o->addr);
	fprintf(f, ", \"port\": %u", o->port);
	if (o->mode == MODE_HTTP) {
		fprintf(f, ", \"path\": ");
		json_str(f, o->path);
		fprintf(f, ", \"method\": ");
		json_str(f, o->method);
	}
	fprintf(f, "},\n  \"config\": {\"connections\": %u, \"threads\": %u, "
		"\"duration_ms\": %llu, \"timeout_ms\": %llu, \"backend\": ",
		o->conns, r->threads, (unsigned long long)o->duration_ms,
		(unsigned long long)o->timeout_ms);
	json_str(f, r->backend ? r->backend : "");
	if (o->mode == MODE_ECHO)
		fprintf(f, ", \"size\": %u, \"depth\": %u, \"verify\": %s",
			o->size, o->depth, o->verify ? "true" : "false");
	else
		fprintf(f, ", \"pipeline\": %u, \"rate\": %llu, \"close\": %s",
			o->pipeline, (unsigned long long)o->rate,
			o->close ? "true" : "false");
	fprintf(f, ", \"warmup_ms\": %llu", (unsigned long long)o->warmup_ms);
	fprintf(f, "},\n  \"elapsed_s\": %.6f,\n", r->elapsed_s);
	if (o->cpu_pid && r->server_cpu_us >= 0)
		fprintf(f, "  \"server_cpu\": {\"pid\": %d, \"us\": %lld, "
			"\"us_per_op\": %.4f, \"core_share\": %.4f},\n",
			o->cpu_pid, (long long)r->server_cpu_us,
			st->done ? (double)r->server_cpu_us / (double)st->done : 0,
			r->elapsed_s > 0 ? (double)r->server_cpu_us / 1e6 /
						   r->elapsed_s : 0);
	fprintf(f, "  \"done\": %llu,\n  \"sent\": %llu,\n  \"per_second\": %.3f,\n",
		(unsigned long long)st->done, (unsigned long long)st->sent,
		per_s(st->done, r->elapsed_s));
	fprintf(f, "  \"rx_bytes\": %llu,\n  \"tx_bytes\": %llu,\n",
		(unsigned long long)st->rx_bytes,
		(unsigned long long)st->tx_bytes);
	fprintf(f, "  \"connections_established\": %llu,\n",
		(unsigned long long)st->connects);
	if (o->tls) {
		fprintf(f, "  \"tls\": {\"version\": ");
		json_str(f, st->tls_version ? st->tls_version : "");
		fprintf(f, ", \"cipher\": ");
		json_str(f, st->tls_cipher ? st->tls_cipher : "");
		fprintf(f, ", \"handshakes\": %llu, \"resumed\": %llu, "
			"\"handshakes_per_second\": %.3f, \"verified\": %s, "
			"\"resume\": %s, \"new_connection_per_request\": %s},\n",
			(unsigned long long)(st->tls_full + st->tls_resumed),
			(unsigned long long)st->tls_resumed,
			per_s(st->tls_full + st->tls_resumed, r->elapsed_s),
			o->ca ? "true" : "false",
			o->no_resume ? "false" : "true",
			o->handshakes ? "true" : "false");
	}
	fprintf(f, "  \"errors\": {\"connect\": %llu, \"read\": %llu, "
		"\"write\": %llu, \"timeout\": %llu, \"invalid\": %llu, "
		"\"mismatched_bytes\": %llu, \"status_4xx_5xx\": %llu, "
		"\"tls_handshake\": %llu, \"total\": %llu},\n",
		(unsigned long long)st->connect_errors,
		(unsigned long long)st->read_errors,
		(unsigned long long)st->write_errors,
		(unsigned long long)st->timeouts,
		(unsigned long long)st->invalid,
		(unsigned long long)st->mismatches,
		(unsigned long long)load_bad_status(st),
		(unsigned long long)st->tls_errors,
		(unsigned long long)load_error_total(st));
	fprintf(f, "  \"status\": {");
	for (unsigned i = 100; i < 1000; i++)
		if (st->status[i]) {
			fprintf(f, "%s\"%u\": %llu", first ? "" : ", ", i,
				(unsigned long long)st->status[i]);
			first = false;
		}
	fprintf(f, "},\n  \"latency_ns\": {\"count\": %llu, \"min\": %llu, "
		"\"mean\": %llu, \"max\": %llu",
		(unsigned long long)st->lat.count,
		(unsigned long long)(st->lat.count ? st->lat.min : 0),
		(unsigned long long)(st->lat.count ? st->lat.sum / st->lat.count
						   : 0),
		(unsigned long long)st->lat.max);
	for (unsigned i = 0; i < NPCT; i++)
		fprintf(f, ", \"%s\": %llu", pct_names[i],
			(unsigned long long)hist_percentile(&st->lat, pcts[i]));
	fprintf(f, ", \"precision\": \"log-linear histogram, values at most "
		"0.78%% above the true ones\"%s}\n}\n",
		o->rate ? ", \"from\": \"intended send time\"" : "");
	if (ferror(f))
		ret = -EIO;
	if (fclose(f) && !ret)
		ret = -errno;
	return ret;
}
