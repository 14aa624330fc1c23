/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "helper/context.h"
#include "keystore/places.h"
#include "lib/codec.h"
#include "lib/common.h"

#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct feed {
	char *buf;
	size_t len;
};

/* name and value, each ended by a NUL, so no two lists run together */
static void feed(struct feed *f, const char *name, const char *value)
{
	size_t n = strlen(name) + 1, v = strlen(value ? value : "") + 1;

	f->buf = xrealloc(f->buf, f->len + n + v);
	memcpy(f->buf + f->len, name, n);
	memcpy(f->buf + f->len + n, value ? value : "", v);
	f->len += n + v;
}

static const char *home_dir(void)
{
	const char *home = getenv("HOME");
	struct passwd *pw;

	if ((!home || !*home) && (pw = getpwuid(geteuid())))
		home = pw->pw_dir;
	return home;
}

/*
 * Field 22 of /proc/1/stat, the start time of process 1 of the PID
 * namespace /proc shows: a container's init.  "" when it cannot be read.
 */
static void pid1_start(char *out, size_t len)
{
	char buf[1024], *p;
	int fd = open("/proc/1/stat", O_RDONLY | O_CLOEXEC), field;
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

	*out = '\0';
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	/* after the command name, which may hold spaces and parentheses */
	if (!(p = strrchr(buf, ')')))
		return;
	for (field = 2; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (p)
		snprintf(out, len, "%.*s", (int)strcspn(p + 1, " "), p + 1);
}

/*
 * Kernel keyrings are not namespaced: two containers of one host share
 * the user keyring, with the same paths inside.  Their mount namespaces
 * differ, and so do their root directories.  A namespace's number, and a
 * root's device, are used again once theirs are gone; the start time of
 * the container's init is not, so one container that follows another
 * differs from it too.
 */
static void feed_namespace(struct feed *f)
{
	char ns[64] = "", root[64] = "", init[32];
	struct stat st;
	ssize_t n = readlink("/proc/self/ns/mnt", ns, sizeof(ns) - 1);

	if (n > 0)
		ns[n] = '\0';
	if (stat("/", &st) == 0)
		snprintf(root, sizeof(root), "%llu:%llu", (unsigned long long)st.st_dev,
			 (unsigned long long)st.st_ino);
	pid1_start(init, sizeof(init));
	feed(f, "mount-namespace", ns);
	feed(f, "root", root);
	feed(f, "init-started", init);
}

/* a backend of the stack: its name and actions, its options, its places */
static void feed_backend(struct feed *f, const struct stack_entry *e, const struct config *cfg)
{
	const char *const *env = keystore_place_env(e->name);
	char actions[STACK_STATUSES + 1];

	for (int i = 0; i < STACK_STATUSES; i++)
		actions[i] = e->on[i] == STACK_RETURN ? 'r' : 'c';
	actions[STACK_STATUSES] = '\0';
	feed(f, e->name, actions);
	for (size_t i = 0; i < cfg->nr_options; i++)
		if (!strcmp(cfg->options[i].module, e->name))
			feed(f, cfg->options[i].key, cfg->options[i].value);
	for (; *env; env++)
		feed(f, *env, getenv(*env));
}

void context_of(const char *config_path, const struct keystore_stack *st,
		const struct config *cfg, char out[TIER_CONTEXT_LEN + 1])
{
	struct feed f = { NULL, 0 };
	uint8_t md[32];

	feed(&f, "galileo-credential context", "1");
	feed(&f, "home", home_dir());
	feed(&f, "config", config_path);
	for (size_t i = 0; i < st->n; i++)
		feed_backend(&f, &st->entries[i], cfg);
	feed_namespace(&f);
	codec_sha256(f.buf, f.len, md);
	for (int i = 0; i < TIER_CONTEXT_LEN / 2; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	free(f.buf);
}
