// SPDX-License-Identifier: GPL-2.0
// bpf_feature_probe: load and attach one minimal BPF program per feature and
// report what the running kernel accepts. Meant to be linked statically and
// run inside a test VM (tests/vm/run-in-vm.sh) as well as on a host.
//
// Output: one line per feature, result last so that everything after
// "result=" is the (possibly multi-word) outcome:
//   feature=<name> stage=<load|attach|done> hits=<n|-> result=<ok|errno text (ENAME)>
// "stage" is where it stopped; "hits" is how often the program ran while we
// generated some loopback TCP traffic ("-" if it never got attached).
//
// Usage: bpf_feature_probe [-v] [-c CGROUP2_DIR] [FEATURE...]
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf_feature_probe.skel.h"

// Must match the enum in bpf_feature_probe.bpf.c.
enum feature_idx {
	F_FENTRY = 0,
	F_FEXIT,
	F_KPROBE,
	F_KRETPROBE,
	F_TP_SET_STATE,
	F_TP_SEND_LEN,
	F_TP_TCP_PROBE,
	F_RINGBUF,
	F_SK_STORAGE,
	F_ITER_TCP,
	F_SOCKOPS,
	F_SOCKOPS_RTT,
	F_CONNECT4,
	F_BTF_DIRECT_READ,
	F_PROBE_READ_KERNEL,
	F_FENTRY_DATA_READY,
	F_FENTRY_DEF_READABLE,
};

enum attach_kind { A_AUTO, A_ITER, A_CGROUP };

struct feature {
	const char *name;
	const char *prog;     // program name in the skeleton
	const char *map;      // extra map the program needs (NULL: only .bss)
	enum attach_kind kind;
	int hit_idx;
	int extra_hit_idx;    // -1 or a sub-feature reported on its own line
	const char *extra_name;
};

static const struct feature features[] = {
	{ "fentry_tcp_sendmsg", "probe_fentry", NULL, A_AUTO, F_FENTRY, -1, NULL },
	// Hits: 16 data segments (8 x 4096 B one way, 8 x 100 B back) if no
	// call in tcp_input.c was inlined.
	{ "fentry_tcp_data_ready", "probe_fentry_data_ready", NULL, A_AUTO, F_FENTRY_DATA_READY, -1, NULL },
	{ "fentry_sock_def_readable", "probe_fentry_def_readable", NULL, A_AUTO, F_FENTRY_DEF_READABLE, -1, NULL },
	{ "fexit_tcp_sendmsg", "probe_fexit", NULL, A_AUTO, F_FEXIT, -1, NULL },
	{ "kprobe_tcp_sendmsg", "probe_kprobe", NULL, A_AUTO, F_KPROBE, -1, NULL },
	{ "kretprobe_tcp_sendmsg", "probe_kretprobe", NULL, A_AUTO, F_KRETPROBE, -1, NULL },
	{ "tp_btf_inet_sock_set_state", "probe_tp_set_state", NULL, A_AUTO, F_TP_SET_STATE, -1, NULL },
	{ "tp_btf_sock_send_length", "probe_tp_send_len", NULL, A_AUTO, F_TP_SEND_LEN, -1, NULL },
	{ "tp_btf_tcp_probe", "probe_tp_tcp_probe", NULL, A_AUTO, F_TP_TCP_PROBE, -1, NULL },
	{ "ringbuf", "probe_ringbuf", "rb", A_AUTO, F_RINGBUF, -1, NULL },
	{ "sk_storage", "probe_sk_storage", "sk_store", A_AUTO, F_SK_STORAGE, -1, NULL },
	{ "iter_tcp", "probe_iter_tcp", NULL, A_ITER, F_ITER_TCP, -1, NULL },
	{ "cgroup_sockops", "probe_sockops", NULL, A_CGROUP, F_SOCKOPS, F_SOCKOPS_RTT, "cgroup_sockops_rtt_cb" },
	{ "cgroup_connect4", "probe_connect4", NULL, A_CGROUP, F_CONNECT4, -1, NULL },
	{ "btf_direct_read", "probe_btf_direct_read", NULL, A_AUTO, F_BTF_DIRECT_READ, -1, NULL },
	{ "probe_read_kernel", "probe_probe_read_kernel", NULL, A_AUTO, F_PROBE_READ_KERNEL, -1, NULL },
};
#define N_FEATURES (sizeof(features) / sizeof(features[0]))

static bool verbose;
static const char *cgroup_dir;

// Keep the libbpf messages of the current feature, to show them on failure.
static char logbuf[16384];
static size_t loglen;

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && !verbose)
		return 0;
	if (verbose)
		return vfprintf(stderr, fmt, ap);
	if (loglen < sizeof(logbuf) - 1) {
		int n = vsnprintf(logbuf + loglen, sizeof(logbuf) - loglen, fmt, ap);
		if (n > 0)
			loglen += (size_t)n < sizeof(logbuf) - loglen ? (size_t)n : sizeof(logbuf) - loglen - 1;
	}
	return 0;
}

static void dump_log_tail(void)
{
	// print the last few lines, prefixed with '#', to stderr
	int lines = 0;
	size_t i = loglen;

	while (i > 0 && lines < 6) {
		i--;
		if (logbuf[i] == '\n' && i + 1 < loglen)
			lines++;
	}
	if (lines >= 6)
		i++;
	const char *p = logbuf + i;
	while (*p) {
		const char *nl = strchr(p, '\n');
		int len = nl ? (int)(nl - p) : (int)strlen(p);
		if (len > 0)
			fprintf(stderr, "#   %.*s\n", len, p);
		p += len + (nl ? 1 : 0);
	}
}

static const char *err_text(int err, char *buf, size_t len)
{
	const char *nm;

	if (err < 0)
		err = -err;
	nm = strerrorname_np(err);
	snprintf(buf, len, "%s (%s)", strerror(err), nm ? nm : "?");
	return buf;
}

// Generate some loopback TCP traffic: connect, exchange data, close.
static void tcp_traffic(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	char buf[4096];
	int ls, cs = -1, as = -1, i;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ls = socket(AF_INET, SOCK_STREAM, 0);
	if (ls < 0)
		return;
	if (bind(ls, (struct sockaddr *)&sa, sizeof(sa)) || listen(ls, 4) ||
	    getsockname(ls, (struct sockaddr *)&sa, &sl))
		goto out;
	cs = socket(AF_INET, SOCK_STREAM, 0);
	if (cs < 0 || connect(cs, (struct sockaddr *)&sa, sizeof(sa)))
		goto out;
	as = accept(ls, NULL, NULL);
	if (as < 0)
		goto out;
	memset(buf, 'x', sizeof(buf));
	for (i = 0; i < 8; i++) {
		if (send(cs, buf, sizeof(buf), 0) < 0 || recv(as, buf, sizeof(buf), MSG_WAITALL) < 0)
			break;
		if (send(as, buf, 100, 0) < 0 || recv(cs, buf, 100, MSG_WAITALL) < 0)
			break;
	}
	usleep(20000); // let delayed ACKs / RTT samples happen
out:
	if (as >= 0)
		close(as);
	if (cs >= 0)
		close(cs);
	close(ls);
	usleep(20000);
}

static void report(const char *name, const char *stage, long long hits, const char *result)
{
	if (hits < 0)
		printf("feature=%s stage=%s hits=- result=%s\n", name, stage, result);
	else
		printf("feature=%s stage=%s hits=%lld result=%s\n", name, stage, hits, result);
	fflush(stdout);
}

static int find_cgroup2(char *out, size_t len)
{
	char mnt[4096] = "", line[8192], path[4096] = "";
	FILE *f;

	f = fopen("/proc/self/mounts", "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char dev[256], dir[4096], type[64];
		if (sscanf(line, "%255s %4095s %63s", dev, dir, type) == 3 &&
		    strcmp(type, "cgroup2") == 0) {
			snprintf(mnt, sizeof(mnt), "%s", dir);
			break;
		}
	}
	fclose(f);
	if (!mnt[0])
		return -ENOENT;
	// our own cgroup v2 path ("0::/x/y"), so the programs see our traffic
	f = fopen("/proc/self/cgroup", "r");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			if (strncmp(line, "0::", 3) == 0) {
				line[strcspn(line, "\n")] = 0;
				snprintf(path, sizeof(path), "%.4000s", line + 3);
				break;
			}
		}
		fclose(f);
	}
	snprintf(out, len, "%s%s", mnt, strcmp(path, "/") ? path : "");
	if (access(out, F_OK))
		snprintf(out, len, "%s", mnt);
	return 0;
}

static void run_feature(const struct feature *ft)
{
	struct bpf_feature_probe_bpf *skel;
	struct bpf_program *p, *prog = NULL;
	struct bpf_map *m;
	struct bpf_link *link = NULL;
	char ebuf[128];
	const char *stage = "open";
	int err = 0, cg = -1;
	long long hits = -1, extra = -1;

	loglen = 0;
	logbuf[0] = 0;

	skel = bpf_feature_probe_bpf__open();
	if (!skel) {
		err = -errno;
		goto fail;
	}
	bpf_object__for_each_program(p, skel->obj) {
		bool me = strcmp(bpf_program__name(p), ft->prog) == 0;
		bpf_program__set_autoload(p, me);
		if (me)
			prog = p;
	}
	if (!prog) {
		err = -ENOENT;
		goto fail;
	}
	// only create the maps this program needs (plus .bss for the counters)
	bpf_object__for_each_map(m, skel->obj) {
		const char *mn = bpf_map__name(m);
		if (strstr(mn, ".bss"))
			continue;
		bpf_map__set_autocreate(m, ft->map && strcmp(mn, ft->map) == 0);
	}

	stage = "load";
	err = bpf_feature_probe_bpf__load(skel);
	if (err)
		goto fail;

	stage = "attach";
	switch (ft->kind) {
	case A_AUTO:
		link = bpf_program__attach(prog);
		break;
	case A_ITER:
		link = bpf_program__attach_iter(prog, NULL);
		break;
	case A_CGROUP:
		if (!cgroup_dir) {
			errno = ENOENT;
			break;
		}
		cg = open(cgroup_dir, O_RDONLY | O_DIRECTORY);
		if (cg < 0)
			break;
		link = bpf_program__attach_cgroup(prog, cg);
		break;
	}
	if (!link) {
		err = -errno;
		goto fail;
	}

	stage = "trigger";
	if (ft->kind == A_ITER) {
		// keep a listening socket open so there is something to iterate
		struct sockaddr_in sa = { .sin_family = AF_INET };
		int ls = socket(AF_INET, SOCK_STREAM, 0), it;
		char buf[256];

		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (ls >= 0 && !bind(ls, (struct sockaddr *)&sa, sizeof(sa)))
			listen(ls, 1);
		it = bpf_iter_create(bpf_link__fd(link));
		if (it < 0) {
			err = -errno;
			if (ls >= 0)
				close(ls);
			goto fail;
		}
		while (read(it, buf, sizeof(buf)) > 0)
			;
		close(it);
		if (ls >= 0)
			close(ls);
	} else {
		tcp_traffic();
	}
	stage = "done";
	hits = (long long)skel->bss->hits[ft->hit_idx];
	if (ft->extra_hit_idx >= 0)
		extra = (long long)skel->bss->hits[ft->extra_hit_idx];
	report(ft->name, stage, hits, "ok");
	if (ft->extra_name)
		report(ft->extra_name, stage, extra, extra > 0 ? "ok" : "not triggered");
	goto out;

fail:
	report(ft->name, stage, hits, err_text(err, ebuf, sizeof(ebuf)));
	if (ft->extra_name)
		report(ft->extra_name, stage, -1, err_text(err, ebuf, sizeof(ebuf)));
	if (!verbose)
		dump_log_tail();
out:
	bpf_link__destroy(link);
	if (cg >= 0)
		close(cg);
	bpf_feature_probe_bpf__destroy(skel);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: bpf_feature_probe [-v] [-c CGROUP2_DIR] [FEATURE...]\nfeatures:");
	for (size_t i = 0; i < N_FEATURES; i++)
		fprintf(f, " %s", features[i].name);
	fprintf(f, "\n");
}

int main(int argc, char **argv)
{
	static char cgbuf[4096];
	struct utsname u;
	char lockdown[256] = "n/a";
	FILE *f;
	int opt, ran = 0;

	while ((opt = getopt(argc, argv, "vc:h")) != -1) {
		switch (opt) {
		case 'v':
			verbose = true;
			break;
		case 'c':
			cgroup_dir = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!cgroup_dir && find_cgroup2(cgbuf, sizeof(cgbuf)) == 0)
		cgroup_dir = cgbuf;

	libbpf_set_print(libbpf_print);
	uname(&u);
	f = fopen("/sys/kernel/security/lockdown", "r");
	if (f) {
		if (fgets(lockdown, sizeof(lockdown), f))
			lockdown[strcspn(lockdown, "\n")] = 0;
		fclose(f);
	}
	printf("# kernel=%s lockdown=%s cgroup2=%s\n", u.release, lockdown,
	       cgroup_dir ? cgroup_dir : "none");

	for (size_t i = 0; i < N_FEATURES; i++) {
		bool want = optind >= argc;
		for (int a = optind; a < argc && !want; a++)
			want = strcmp(argv[a], features[i].name) == 0;
		if (want) {
			run_feature(&features[i]);
			ran++;
		}
	}
	if (!ran) {
		usage(stderr);
		return 2;
	}
	return 0;
}
