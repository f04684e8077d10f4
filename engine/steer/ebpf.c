/* SPDX-License-Identifier: MIT */
/*
 * The eBPF side of steering (libbpf): load bpf/steer.bpf.c from its
 * skeleton, pin its maps by name under /sys/fs/bpf/coil/<port>-<pid>/ so
 * coil-steer finds them, attach it to the service's SO_REUSEPORT group, and
 * load user programs into the prog array. Without libbpf every entry point
 * says -ENOTSUP.
 */
#include "steering.h"
#include "../core/log.h"
#include "coil_config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void coil__steer_dir(char *buf, size_t n, unsigned port, unsigned pid)
{
	snprintf(buf, n, "%s/%u-%u", COIL_STEER_PIN_ROOT, port, pid);
}

#if COIL_HAVE_BPF
#include "steer.skel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#ifndef SO_ATTACH_REUSEPORT_EBPF
#define SO_ATTACH_REUSEPORT_EBPF 52
#endif
#define BPFFS "/sys/fs/bpf"
#define BPFFS_MAGIC 0xcafe4a11
#define STATE_LEN \
	((sizeof(struct coil_steer_state) + 4095) & ~(size_t)4095)

/* libbpf's messages: kept (the last warning) while loading our own program,
 * where a failure means "fall back" and is said in one line; passed to
 * stderr while loading a user's program, whose verifier log they need. */
static bool lb_quiet;
static char lb_last[160];

static int lb_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char *nl;

	if (level == LIBBPF_DEBUG)
		return 0;
	if (!lb_quiet)
		return vfprintf(stderr, fmt, ap);
	vsnprintf(lb_last, sizeof(lb_last), fmt, ap);
	nl = strchr(lb_last, '\n');
	if (nl)
		*nl = 0;
	return 0;
}

static void lb_setup(bool quiet)
{
	lb_quiet = quiet;
	lb_last[0] = 0;
	libbpf_set_print(lb_print);
}

/* dir/name into buf[n]; false when it does not fit. */
static bool join(char *buf, size_t n, const char *dir, const char *name)
{
	int len = snprintf(buf, n, "%s/%s", dir, name);

	return len > 0 && (size_t)len < n;
}

/* why[n] for a failed step: the common case, no privileges, said as such. */
static int step_failed(const char *what, const char *path, char *why, size_t n)
{
	int err = errno;

	if (err == EPERM || err == EACCES)
		snprintf(why, n, "not permitted to %s %s: needs root, or "
			 "CAP_BPF and CAP_NET_ADMIN", what, path);
	else
		snprintf(why, n, "cannot %s %s: %s", what, path, strerror(err));
	return -err;
}

/* libbpf's own error codes (4000 and up) as text, and as an -errno. */
static int lb_error(int ret, char *buf, size_t n)
{
	if (libbpf_strerror(ret, buf, n))
		snprintf(buf, n, "%s", strerror(-ret));
	return ret <= -4000 ? -EINVAL : ret;
}

static bool is_bpffs(const char *path)
{
	struct statfs sf;

	return statfs(path, &sf) == 0 && (unsigned long)sf.f_type == BPFFS_MAGIC;
}

/* Mount bpffs on /sys/fs/bpf unless it is there; a lock file keeps two
 * servers starting at once from stacking two mounts (the second would hide
 * the first one's pins). */
static int bpffs_ready(char *why, size_t n)
{
	int lock, ret = 0;

	if (is_bpffs(BPFFS))
		return 0;
	lock = open("/run/coil-bpffs.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock >= 0)
		(void)flock(lock, LOCK_EX);
	if (!is_bpffs(BPFFS) &&
	    mount("bpffs", BPFFS, "bpf", 0, "mode=0700") < 0)
		ret = step_failed("mount bpffs on", BPFFS, why, n);
	if (lock >= 0)
		close(lock);
	return ret;
}

static bool is_ours(const char *name)
{
	return !strcmp(name, "coil_socks") || !strcmp(name, "coil_state") ||
	       !strcmp(name, "coil_user");
}

/* Unlink the pins in dir (bpffs has no deeper trees here), all of them or
 * only those a user object added next to ours (its LIBBPF_PIN_BY_NAME
 * maps). */
static void unlink_pins(const char *dir, bool keep_ours)
{
	char path[256];
	struct dirent *e;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || (keep_ours && is_ours(e->d_name)))
			continue;
		if (join(path, sizeof(path), dir, e->d_name))
			(void)unlink(path);
	}
	closedir(d);
}

/* Remove a pin directory and the pins in it. */
static void remove_dir(const char *dir)
{
	unlink_pins(dir, false);
	(void)rmdir(dir);
}

/* Pins of servers that died without cleaning up (SIGKILL). */
static void sweep_stale(void)
{
	char path[256];
	struct dirent *e;
	unsigned port, pid;
	DIR *d = opendir(COIL_STEER_PIN_ROOT);

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (sscanf(e->d_name, "%u-%u", &port, &pid) != 2 || !pid)
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		if (join(path, sizeof(path), COIL_STEER_PIN_ROOT, e->d_name))
			remove_dir(path);
	}
	closedir(d);
}

static struct coil_steer_state *state_mmap(int fd)
{
	void *p = mmap(NULL, STATE_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		       0);

	return p == MAP_FAILED ? NULL : p;
}

int coil__steer_ebpf_open(struct coil__steer *s, enum coil_steer_policy policy,
			  const struct coil__steer_setup *su, char *why,
			  size_t n)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = s->dir);
	struct coil_steer_state *st = NULL;
	struct steer_bpf *skel;
	int ret, prog_fd, socks_fd;

	why[0] = 0;
	if (su->nloops > COIL_STEER_MAX_LOOPS) {
		snprintf(why, n, "more than %u loops", COIL_STEER_MAX_LOOPS);
		return -E2BIG;
	}
	ret = bpffs_ready(why, n);
	if (ret)
		return ret;
	if (mkdir(COIL_STEER_PIN_ROOT, 0700) < 0 && errno != EEXIST)
		return step_failed("create", COIL_STEER_PIN_ROOT, why, n);
	sweep_stale();
	coil__steer_dir(s->dir, sizeof(s->dir), su->port, (unsigned)getpid());
	remove_dir(s->dir);
	if (mkdir(s->dir, 0700) < 0)
		return step_failed("create", s->dir, why, n);
	lb_setup(true);
	skel = steer_bpf__open_opts(&oo);
	if (!skel) {
		ret = -errno;
		goto fail;
	}
	ret = steer_bpf__load(skel);
	if (ret)
		goto fail_skel;
	st = state_mmap(bpf_map__fd(skel->maps.coil_state));
	if (!st) {
		ret = -errno;
		goto fail_skel;
	}
	st->hdr.version = COIL_STEER_VERSION;
	st->hdr.nloops = su->nloops;
	st->hdr.policy = policy;
	st->hdr.pid = (__u32)getpid();
	st->hdr.port = su->port;
	socks_fd = bpf_map__fd(skel->maps.coil_socks);
	for (unsigned i = 0; i < su->nloops; i++) {
		__u64 fd = (__u64)su->fds[i];
		__u32 key = i;
		int cpu = su->cpus[i];

		st->loop[i].cpu = cpu;
		if (cpu >= 0 && cpu < COIL_STEER_MAX_CPUS && !st->cpu_loop[cpu])
			st->cpu_loop[cpu] = (__u16)(i + 1);
		if (bpf_map_update_elem(socks_fd, &key, &fd, BPF_ANY)) {
			ret = -errno;
			goto fail_map;
		}
	}
	__atomic_store_n(&st->hdr.magic, COIL_STEER_MAGIC, __ATOMIC_RELEASE);
	prog_fd = bpf_program__fd(skel->progs.coil_steer);
	if (setsockopt(su->fds[0], SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, &prog_fd,
		       sizeof(prog_fd)) < 0) {
		ret = -errno;
		goto fail_map;
	}
	lb_quiet = false;
	s->skel = skel;
	s->state = st;
	return 0;
fail_map:
	munmap(st, STATE_LEN);
fail_skel:
	steer_bpf__destroy(skel);
fail:
	if (ret != -EPERM && ret != -EACCES) {
		char text[96];

		ret = lb_error(ret, text, sizeof(text));
		snprintf(why, n, "%s%s%s%s", text, lb_last[0] ? " (" : "",
			 lb_last, lb_last[0] ? ")" : "");
	}
	lb_quiet = false;
	remove_dir(s->dir);
	s->dir[0] = 0;
	return ret;
}

void coil__steer_ebpf_close(struct coil__steer *s)
{
	if (s->state)
		munmap(s->state, STATE_LEN);
	s->state = NULL;
	if (s->skel)
		steer_bpf__destroy(s->skel);
	s->skel = NULL;
	if (s->dir[0])
		remove_dir(s->dir);
	s->dir[0] = 0;
}

/* Opens the pinned object DIR/NAME: an fd, or -errno. On failure, when err
 * is not NULL, the reason also goes to err (n bytes, truncated to fit). */
static int pin_get(const char *dir, const char *name, char *err, size_t n)
{
	char path[256];
	int fd;

	if (!join(path, sizeof(path), dir, name)) {
		if (err)
			snprintf(err, n, "%s: path too long", dir);
		return -ENAMETOOLONG;
	}
	fd = bpf_obj_get(path);
	if (fd < 0)
		fd = -errno;
	if (fd < 0 && err) {
		snprintf(err, n, "%s: %s", path,
			 fd == -EPERM || fd == -EACCES
				 ? "permission denied (needs root, or CAP_BPF "
				   "and CAP_NET_ADMIN)"
				 : strerror(-fd));
	}
	return fd;
}

int coil__steer_state_map(const char *dir, struct coil_steer_state **out)
{
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);
	int fd, ret = 0;

	fd = pin_get(dir, "coil_state", NULL, 0);  /* callers report -errno */
	if (fd < 0)
		return fd;
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		ret = -errno;
	} else if (info.value_size != sizeof(struct coil_steer_state)) {
		ret = -EPROTO;   /* another coil version's layout */
	} else {
		*out = state_mmap(fd);
		if (!*out)
			ret = -errno;
		else if ((*out)->hdr.magic != COIL_STEER_MAGIC ||
			 (*out)->hdr.version != COIL_STEER_VERSION) {
			coil__steer_state_unmap(*out);
			ret = -EPROTO;
		}
	}
	close(fd);
	return ret;
}

void coil__steer_state_unmap(struct coil_steer_state *st)
{
	if (st)
		munmap(st, STATE_LEN);
}

static void set_user(struct coil_steer_state *st, __u32 id, const char *name)
{
	__atomic_store_n(&st->hdr.user_id, 0, __ATOMIC_RELAXED);
	snprintf(st->hdr.user_name, sizeof(st->hdr.user_name), "%s", name);
	__atomic_store_n(&st->hdr.user_id, id, __ATOMIC_RELEASE);
}

int coil__steer_user_load(const char *dir, const char *file, char *err,
			  size_t n)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = dir);
	struct bpf_prog_info info = { 0 };
	__u32 len = sizeof(info), zero = 0;
	struct coil_steer_state *st = NULL;
	struct bpf_program *prog, *p;
	struct bpf_object *obj;
	const char *base;
	char text[96];
	int ret, map_fd, prog_fd;

	err[0] = 0;
	ret = coil__steer_state_map(dir, &st);
	if (ret) {
		snprintf(err, n, "%s/coil_state: %s", dir,
			 ret == -EPROTO ? "not a coil steering map of this version"
					: strerror(-ret));
		return ret;
	}
	map_fd = pin_get(dir, "coil_user", err, n);
	if (map_fd < 0) {
		ret = map_fd;
		goto out_state;
	}
	lb_setup(false);
	obj = bpf_object__open_file(file, &oo);
	if (!obj) {
		ret = lb_error(-errno, text, sizeof(text));
		snprintf(err, n, "cannot open %s: %s", file, text);
		goto out_map;
	}
	prog = bpf_object__next_program(obj, NULL);
	if (!prog) {
		ret = -ENOENT;
		snprintf(err, n, "%s has no program", file);
		goto out_obj;
	}
	/* One program: the first. It must be an SK_REUSEPORT program that
	 * the dispatcher may tail-call, so it gets the dispatcher's type. */
	for (p = prog; p; p = bpf_object__next_program(obj, p)) {
		bpf_program__set_autoload(p, p == prog);
		bpf_program__set_type(p, BPF_PROG_TYPE_SK_REUSEPORT);
		bpf_program__set_expected_attach_type(
			p, BPF_SK_REUSEPORT_SELECT_OR_MIGRATE);
	}
	ret = bpf_object__load(obj);
	if (ret) {
		ret = lb_error(ret, text, sizeof(text));
		snprintf(err, n, "cannot load %s: %s (libbpf's messages above)",
			 file, text);
		goto out_obj;
	}
	prog_fd = bpf_program__fd(prog);
	if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) ||
	    bpf_map_update_elem(map_fd, &zero, &prog_fd, BPF_ANY)) {
		ret = -errno;
		snprintf(err, n, "cannot install %s: %s", file, strerror(-ret));
		goto out_obj;
	}
	base = strrchr(file, '/');
	set_user(st, info.id, base ? base + 1 : file);
	ret = 0;
out_obj:
	/* The program lives on in the prog array, its maps with it. */
	bpf_object__close(obj);
out_map:
	close(map_fd);
out_state:
	coil__steer_state_unmap(st);
	return ret;
}

int coil__steer_user_unload(const char *dir, char *err, size_t n)
{
	struct coil_steer_state *st = NULL;
	__u32 zero = 0;
	int ret, map_fd;

	err[0] = 0;
	ret = coil__steer_state_map(dir, &st);
	if (ret) {
		snprintf(err, n, "%s/coil_state: %s", dir, strerror(-ret));
		return ret;
	}
	map_fd = pin_get(dir, "coil_user", err, n);
	if (map_fd < 0) {
		ret = map_fd;
		goto out;
	}
	if (bpf_map_delete_elem(map_fd, &zero) && errno != ENOENT) {
		ret = -errno;
		snprintf(err, n, "cannot remove the user program: %s",
			 strerror(-ret));
	} else {
		set_user(st, 0, "");
		unlink_pins(dir, true);
	}
	close(map_fd);
out:
	coil__steer_state_unmap(st);
	return ret;
}

#else /* !COIL_HAVE_BPF */

int coil__steer_ebpf_open(struct coil__steer *s, enum coil_steer_policy policy,
			  const struct coil__steer_setup *su, char *why,
			  size_t n)
{
	(void)s, (void)policy, (void)su;
	snprintf(why, n, "built without libbpf");
	return -ENOTSUP;
}

void coil__steer_ebpf_close(struct coil__steer *s)
{
	(void)s;
}

int coil__steer_user_load(const char *dir, const char *file, char *err,
			  size_t n)
{
	(void)dir, (void)file;
	snprintf(err, n, "built without libbpf");
	return -ENOTSUP;
}

int coil__steer_user_unload(const char *dir, char *err, size_t n)
{
	(void)dir;
	snprintf(err, n, "built without libbpf");
	return -ENOTSUP;
}

int coil__steer_state_map(const char *dir, struct coil_steer_state **out)
{
	(void)dir, (void)out;
	return -ENOTSUP;
}

void coil__steer_state_unmap(struct coil_steer_state *st)
{
	(void)st;
}
#endif
