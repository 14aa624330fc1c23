/* SPDX-License-Identifier: MIT */
/*
 * keystore-example.so: a galileo-credential keystore module built outside
 * the galileo-credential source tree, against the installed header only
 * (galileo-credential-module(7)):
 *
 *   cc -shared -fPIC -Wall -Wextra -Werror \
 *      $(pkg-config --cflags galileo-credential-module) \
 *      -o keystore-example.so keystore-example.c
 *   galileo-credential-module-check -o dir=/tmp/example-store ./keystore-example.so
 *   install -m 644 keystore-example.so \
 *      "$(pkg-config --variable=moduledir galileo-credential-module)"
 *
 * It keeps one file per server in the directory of the option
 * "example.dir" (mode 0700, files 0600; a plain file is no place for a real
 * secret: this is a demonstration).  "example.status = unavailable",
 * "locked" or "error" makes every operation answer that status, so a
 * stack's actions can be watched.  Both options are declared in the
 * table, so a misspelt one is an error naming the line.
 */
#include <galileo-credential/module.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef EXAMPLE_INTERFACE_VERSION
#define EXAMPLE_INTERFACE_VERSION GC_MODULE_INTERFACE_VERSION
#endif

#define FIELDS 4	/* kind, username, organization, secret: one per line */

static const struct gc_services *svc;

/* the status the configuration imposes, or -1 */
static int imposed(void)
{
	const char *s = svc->option(svc, "status");

	if (s && !strcmp(s, "unavailable")) {
		svc->error("the example keystore is unavailable (example.status)");
		return GC_STATUS_UNAVAILABLE;
	}
	if (s && !strcmp(s, "locked")) {
		svc->error("the example keystore is locked (example.status); unlock it by removing the option");
		return GC_STATUS_LOCKED;
	}
	if (s && !strcmp(s, "error")) {
		svc->error("the example keystore fails (example.status)");
		return GC_STATUS_ERROR;
	}
	return -1;
}

/* the declared options' checks: NULL when the value is fine, else a hint */
static const char *check_dir(const char *value)
{
	return value[0] == '/' ? NULL : "use an absolute path";
}

static const char *check_status(const char *value)
{
	return strcmp(value, "unavailable") && strcmp(value, "locked") && strcmp(value, "error") ?
	       "use unavailable, locked or error" : NULL;
}

static const struct gc_option options[] = {
	{ "dir", check_dir },
	{ "status", check_status },
	{ NULL, NULL },
};

/* DIR/HEX-OF-SERVER into buf; 0, or a status after the line */
static int path_of(const char *server, char *buf, size_t len)
{
	const char *dir = svc->option(svc, "dir");
	size_t n;

	if (!dir) {
		svc->error("the example keystore needs 'example.dir = DIRECTORY' in the configuration");
		return GC_STATUS_UNAVAILABLE;
	}
	n = (size_t)snprintf(buf, len, "%s/", dir);
	for (; *server && n + 3 < len; server++)
		n += (size_t)snprintf(buf + n, len - n, "%02x", (unsigned char)*server);
	if (*server) {
		svc->error("server URL too long for the example keystore");
		return GC_STATUS_ERROR;
	}
	return 0;
}

static int example_open(void)
{
	int st = imposed();

	return st >= 0 ? st : GC_STATUS_SUCCESS;
}

/* the strings of c, the secret wiped first; c left empty */
static void free_credential(struct gc_credential *c)
{
	if (c->secret)
		svc->wipe(c->secret, strlen(c->secret));
	free(c->secret);
	free(c->server);
	free(c->kind);
	free(c->username);
	free(c->organization);
	memset(c, 0, sizeof(*c));
}

static int example_get(const char *server, struct gc_credential *out)
{
	char path[4096], buf[8192], *field[FIELDS], *p;
	ssize_t n;
	int fd, st = imposed(), i;

	if (st >= 0 || (st = path_of(server, path, sizeof(path))))
		return st;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			return GC_STATUS_NOTFOUND;
		svc->error("the example keystore cannot read its file for '%s': %s", server,
			   strerror(errno));
		return GC_STATUS_ERROR;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0) {
		svc->error("the example keystore cannot read its file for '%s'", server);
		return GC_STATUS_ERROR;
	}
	buf[n] = '\0';
	for (i = 0, p = buf; i < FIELDS && p; i++, p = p ? p + 1 : NULL) {
		field[i] = p;
		if ((p = strchr(p, '\n')))
			*p = '\0';
	}
	if (i == FIELDS && *field[3]) {
		out->server = strdup(server);
		out->kind = strdup(field[0]);
		out->username = strdup(field[1]);
		out->organization = strdup(field[2]);
		out->secret = strdup(field[3]);
	}
	svc->wipe(buf, sizeof(buf));
	if (!out->server || !out->kind || !out->username || !out->organization || !out->secret) {
		/* on failure *out is left as it came: empty */
		free_credential(out);
		svc->error("the example keystore's file for '%s' is malformed", server);
		return GC_STATUS_ERROR;
	}
	return GC_STATUS_SUCCESS;
}

/* a new file, renamed over the old one: readers see one or the other */
static int example_store(const struct gc_credential *cred)
{
	char path[4096], tmp[4200], buf[8192];
	int fd, st = imposed(), n, ok;

	if (st >= 0 || (st = path_of(cred->server, path, sizeof(path))))
		return st;
	snprintf(tmp, sizeof(tmp), "%s.%ld", path, (long)getpid());
	n = snprintf(buf, sizeof(buf), "%s\n%s\n%s\n%s\n", cred->kind, cred->username,
		     cred->organization, cred->secret);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ok = fd >= 0 && n > 0 && (size_t)n < sizeof(buf) && write(fd, buf, (size_t)n) == n;
	ok = fd >= 0 && close(fd) == 0 && ok;
	svc->wipe(buf, sizeof(buf));
	if (!ok || rename(tmp, path) < 0) {
		unlink(tmp);
		svc->error("the example keystore cannot write its file: %s", strerror(errno));
		return GC_STATUS_ERROR;
	}
	return GC_STATUS_SUCCESS;
}

static int example_erase(const char *server)
{
	char path[4096];
	int st = imposed();

	if (st >= 0 || (st = path_of(server, path, sizeof(path))))
		return st;
	if (unlink(path) < 0 && errno != ENOENT) {
		svc->error("the example keystore cannot remove its file: %s", strerror(errno));
		return GC_STATUS_ERROR;
	}
	return GC_STATUS_SUCCESS;
}

/* the server a file name stands for (hex), as a new string, or NULL */
static char *server_of(const char *name)
{
	size_t n = strlen(name);
	char *out;

	if (!n || n % 2 || strspn(name, "0123456789abcdef") != n || !(out = malloc(n / 2 + 1)))
		return NULL;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned int c;

		sscanf(name + 2 * i, "%2x", &c);
		out[i] = (char)c;
	}
	out[n / 2] = '\0';
	return out;
}

/* every stored credential: a malloc()ed array the program frees (transfer full) */
static int example_list(struct gc_credential **out, size_t *n)
{
	struct gc_credential *list = NULL, *bigger;
	char dir[4096];
	struct dirent *d;
	size_t count = 0;
	DIR *dp;
	int st = imposed();

	if (st >= 0 || (st = path_of("", dir, sizeof(dir))))
		return st;
	if (!(dp = opendir(dir))) {
		if (errno == ENOENT)
			return GC_STATUS_SUCCESS;
		svc->error("the example keystore cannot read '%s': %s", dir, strerror(errno));
		return GC_STATUS_ERROR;
	}
	while ((d = readdir(dp))) {
		struct gc_credential c = { 0 };
		char *server = server_of(d->d_name);

		if (server && example_get(server, &c) == GC_STATUS_SUCCESS) {
			svc->wipe(c.secret, strlen(c.secret));
			free(c.secret);
			c.secret = NULL;
			if (!(bigger = realloc(list, (count + 1) * sizeof(*list)))) {
				free_credential(&c);
				free(server);
				break;
			}
			list = bigger;
			list[count++] = c;
		}
		free(server);
	}
	closedir(dp);
	*out = list;
	*n = count;
	return GC_STATUS_SUCCESS;
}

/* nothing is held between calls; a module with a connection closes it here */
static void example_teardown(void)
{
	svc->debug("example: done");
}

static const struct gc_keystore_module example = {
	.interface_version = EXAMPLE_INTERFACE_VERSION,
	.size = sizeof(struct gc_keystore_module),
	.name = "example",
	.supports = GC_SUPPORTS_WRITE,
	.options = options,
	.open = example_open,
	.get = example_get,
	.store = example_store,
	.erase = example_erase,
	.list = example_list,
	.teardown = example_teardown,
};

const struct gc_keystore_module *gc_keystore_module_init(const struct gc_services *services)
{
	if (services->interface_version != GC_MODULE_INTERFACE_VERSION)
		return NULL;	/* built for another galileo-credential */
	svc = services;
	return &example;
}
