/* SPDX-License-Identifier: MIT */
/*
 * coil-load: an echo and HTTP/1.1 load generator on the coil engine. See
 * `coil-load --help` and README.md.
 */
#include "load.h"

#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	static struct load_opts o;      /* large: not on the stack */
	static struct load_result r;
	int ret;

	ret = load_parse_args(argc, argv, &o, stdout, stderr);
	if (ret)
		return ret > 0 ? 0 : 2;
	ret = load_run(&o, &r);
	if (ret)
		return 2;
	load_report_text(stdout, &o, &r);
	if (o.json) {
		int jr = load_report_json(o.json, &o, &r);

		if (jr) {
			fprintf(stderr, "coil-load: --json %s: %s\n", o.json,
				strerror(-jr));
			return 1;
		}
	}
	return load_error_total(&r.st) ? 1 : 0;
}
