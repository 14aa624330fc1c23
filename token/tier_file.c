/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "token/tier.h"
#include "token/cache.h"
#include "token/seal.h"
#include "token/sealed_file.h"
#include "keystore/loader.h"
#include "keystore/stack.h"
#include "lib/codec.h"
#include "lib/common.h"
#include "lib/privdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * The sealed file tier (token-cache = file; galileo-credential(1) TOKEN
 * CACHE), for where the kernel refuses keyctl (containers) and the stack
 * cannot hold tokens.  In the user's private cache directory
 * (lib/privdir.h), one file per (server, organization, context):
 *
 *   token-CTX-S-O    S, O: fingerprints of the server and organization
 *
 * holding a header in the clear (token/sealed_file.h), then the payload
 * sealed (token/seal.h) under a key derived from the context, server,
 * organization and the credential that obtained the token, with the header
 * as associated data.
 *
 * Nothing in the clear is a secret: the credential's fingerprint (to pass
 * over a file sealed for another credential without opening it) and a
 * truncated hash of the token (for git's erase of a token it was given).
 * A file that is not ours, not whole or not sealed so is a miss.  Files
 * are written whole under another name and renamed into place.
 */

#define FILE_MAX (32 * 1024)

static const struct seal_ops *seal_ops(void)
{
	static const struct seal_ops *ops;
	static int tried;

	if (tried++)
		return ops;
	ops = module_helper(SEAL_MODULE_FILE, SEAL_ENTRY_SYMBOL, "seal-sodium");
	if (!ops || ops->abi_version != SEAL_ABI_VERSION) {
		gc_debug("the file tier cannot seal: %s", gc_error_message() ? gc_error_message() :
			 "the seal module refused to start");
		gc_error_clear();
		ops = NULL;
	}
	return ops;
}

/* the private directory, opened once; -1 (said in one debug line) when unsafe */
static int dir_fd(void)
{
	static int fd = -2;
	const char *why = NULL;
	char *dir;

	if (fd != -2)
		return fd;
	dir = privdir_cache();
	fd = dir ? privdir_open(dir, 1, &why) : -1;
	if (fd < 0)
		gc_debug("no file tier: cannot use '%s': %s", dir ? dir : "~/.cache",
			 why ? why : "no home directory");
	free(dir);
	return fd;
}

static void hash16(const char *what, const char *a, const char *b, char out[17])
{
	codec_fingerprint(what, a, b, out);
}

/* "token-CTX-S-O", or with org NULL the prefix "token-CTX-S-" */
static void file_name(const struct token_tier *t, const char *server, const char *org,
		      char name[64])
{
	char s[17], o[17] = "";

	hash16("file-server", server, "", s);
	if (org)
		hash16("file-organization", org, "", o);
	snprintf(name, 64, "token-%s-%s-%s", t->context, s, o);
}

/* the whole of file name into a new buffer (secret_freezero *len + 1), or NULL */
static char *read_file(const char *name, size_t *len)
{
	int dfd = dir_fd(), fd;
	struct stat st;
	char *buf;
	ssize_t n;

	if (dfd < 0 || (fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    st.st_size <= 0 || st.st_size > FILE_MAX) {
		close(fd);
		return NULL;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	n = read(fd, buf, (size_t)st.st_size);
	close(fd);
	if (n != st.st_size) {
		secret_freezero(buf, (size_t)st.st_size + 1);
		return NULL;
	}
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

/* buf (len bytes) as name, atomically: written under another name, renamed */
static int write_file(const char *name, const void *buf, size_t len)
{
	int dfd = dir_fd(), fd, err = 0;
	unsigned char rnd[8];
	char tmp[40];

	if (dfd < 0)
		return gc_error(GCERR_KEYSTORE, "the file tier has no private directory");
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return gc_error(GCERR_KEYSTORE, "no random numbers: %s", strerror(errno));
	snprintf(tmp, sizeof(tmp), "tmp-%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
		 rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return gc_error(GCERR_KEYSTORE, "cannot write in the token directory: %s",
				strerror(errno));
	if (write(fd, buf, len) != (ssize_t)len || close(fd) < 0)
		err = gc_error(GCERR_KEYSTORE, "cannot write in the token directory: %s",
			       strerror(errno));
	if (!err && renameat(dfd, tmp, dfd, name) < 0)
		err = gc_error(GCERR_KEYSTORE, "cannot write in the token directory: %s",
			       strerror(errno));
	if (err)
		unlinkat(dfd, tmp, 0);
	return err;
}

/* the key of the box of (server, org) sealed for cred in context */
static int box_key(const struct seal_ops *ops, const char *context, const char *server,
		   const char *org, const struct gc_credential *cred,
		   unsigned char key[SEAL_KEY_BYTES])
{
	const char *parts[] = { "galileo-credential file tier 1", context, server, org,
				cred->kind, cred->username, cred->secret };

	return ops->derive(key, parts, sizeof(parts) / sizeof(parts[0]));
}

/* the payload in buf's box, for cred; NULL when it is not ours to open */
static char *open_payload(const struct token_tier *t, char *buf, size_t len,
			  const char *server, const char *org, const struct gc_credential *cred)
{
	const struct seal_ops *ops = seal_ops();
	unsigned char key[SEAL_KEY_BYTES];
	struct sealed_header h;
	char fp[17], *msg = NULL;
	size_t boxlen;

	if (!ops || sealed_header_parse(buf, len, &h) || strcmp(h.context, t->context) ||
	    strcmp(h.server, server) || strcmp(h.org, org))
		return NULL;
	codec_fingerprint(cred->kind, cred->username, cred->secret, fp);
	if (strcmp(h.fp, fp) || (boxlen = len - h.len) <= ops->overhead)
		return NULL;	/* sealed for another credential: never opened */
	sealed_header_restore(buf, &h);
	msg = xmalloc(boxlen - ops->overhead + 1);
	if (box_key(ops, t->context, server, org, cred, key) ||
	    ops->open((unsigned char *)msg, (unsigned char *)buf + h.len, boxlen,
		      (unsigned char *)buf, h.len, key)) {
		secret_freezero(msg, boxlen - ops->overhead + 1);
		msg = NULL;
	} else {
		msg[boxlen - ops->overhead] = '\0';
	}
	secret_wipe(key, sizeof(key));
	return msg;
}

static int file_get(const struct token_tier *t, const char *server, const char *org,
		    const struct gc_credential *cred, char **payload)
{
	char name[64], *buf;
	size_t len = 0;

	*payload = NULL;
	if (!cred || !cred->secret)
		return GCERR_NOTFOUND;
	file_name(t, server, org, name);
	if (!(buf = read_file(name, &len)))
		return GCERR_NOTFOUND;
	*payload = open_payload(t, buf, len, server, org, cred);
	secret_freezero(buf, len + 1);
	if (!*payload)
		gc_debug("the file tier's token for '%s' is not ours or not whole; a miss", server);
	return *payload ? 0 : GCERR_NOTFOUND;
}

/* header, then the box of payload: a new buffer of *len bytes */
static unsigned char *seal_file(const struct seal_ops *ops, const struct token_tier *t,
				const char *server, const char *org,
				const struct gc_credential *cred, const char *payload, size_t *len)
{
	struct cached_token tok;
	struct sealed_header h;
	unsigned char key[SEAL_KEY_BYTES], *out = NULL;
	char *head;
	size_t hlen, plen = strlen(payload);

	if (cache_parse_payload(payload, &tok))
		return NULL;
	memset(&h, 0, sizeof(h));
	memcpy(h.context, t->context, sizeof(h.context));
	memcpy(h.fp, tok.fingerprint, sizeof(h.fp));
	hash16("file-token", tok.token, "", h.tokhash);
	h.generation = tok.generation;
	h.expires_at = tok.expires_at;
	h.lifetime = tok.lifetime;
	h.server = server;
	h.org = org;
	head = sealed_header_format(&h);
	cached_token_release(&tok);
	hlen = strlen(head);
	out = xmalloc(hlen + plen + ops->overhead);
	memcpy(out, head, hlen);
	if (box_key(ops, t->context, server, org, cred, key) ||
	    ops->seal(out + hlen, (const unsigned char *)payload, plen, out, hlen, key)) {
		free(out);
		out = NULL;
	}
	*len = hlen + plen + ops->overhead;
	secret_wipe(key, sizeof(key));
	free(head);
	return out;
}

static int file_put(const struct token_tier *t, const char *server, const char *org,
		    const struct gc_credential *cred, const char *payload, int64_t expires_at)
{
	const struct seal_ops *ops = seal_ops();
	unsigned char *buf;
	char name[64];
	size_t len = 0;
	int err;

	(void)expires_at;
	if (!cred || !cred->secret || !ops)
		return gc_error(GCERR_KEYSTORE, "the file tier cannot seal this token");
	if (strchr(server, '\n') || strchr(org, '\n') ||
	    !(buf = seal_file(ops, t, server, org, cred, payload, &len)))
		return gc_error(GCERR_KEYSTORE, "the file tier cannot seal this token");
	file_name(t, server, org, name);
	err = write_file(name, buf, len);
	free(buf);
	return err;
}

/*
 * Call fn with the header of each token file of server, in t's context or
 * (every) in any; the header's strings live for the call.
 */
static void each_file(const struct token_tier *t, const char *server, bool every,
		      void (*fn)(const char *name, const struct sealed_header *h, void *arg), void *arg)
{
	char prefix[64], s[17];
	int dfd = dir_fd(), fd;
	struct dirent *de;
	DIR *d;

	hash16("file-server", server, "", s);
	if (dfd < 0 || (fd = dup(dfd)) < 0 || !(d = fdopendir(fd)))
		return;
	file_name(t, server, NULL, prefix);
	rewinddir(d);
	while ((de = readdir(d))) {
		struct sealed_header h;
		size_t len;
		char *buf;

		if (every ? strncmp(de->d_name, "token-", 6) ||
			    strlen(de->d_name) != 6 + 16 + 1 + 16 + 1 + 16 ||
			    strncmp(de->d_name + 6 + 17, s, 16) :
			    strncmp(de->d_name, prefix, strlen(prefix)))
			continue;
		if (!(buf = read_file(de->d_name, &len)))
			continue;
		if (!sealed_header_parse(buf, len, &h) && !strcmp(h.server, server))
			fn(de->d_name, &h, arg);
		secret_freezero(buf, len + 1);
	}
	closedir(d);
}

static void unlink_one(const char *name, const struct sealed_header *h, void *arg)
{
	(void)h;
	(void)arg;
	unlinkat(dir_fd(), name, 0);
}

static int file_erase(const struct token_tier *t, const char *server, const char *org)
{
	char name[64];

	if (!org) {
		each_file(t, server, true, unlink_one, NULL);
		return 0;
	}
	file_name(t, server, org, name);
	if (dir_fd() >= 0)
		unlinkat(dir_fd(), name, 0);
	return 0;
}

struct file_list {
	struct gc_token_item *items;
	size_t n;
};

static void add_item(const char *name, const struct sealed_header *h, void *arg)
{
	struct file_list *l = arg;

	(void)name;
	l->items = xrealloc(l->items, (l->n + 1) * sizeof(*l->items));
	l->items[l->n].organization = xstrdup(h->org);
	/* the token stays sealed: "-" in its place */
	l->items[l->n].payload = xasprintf("gc2 %" PRId64 " %" PRId64 " %s %016" PRIx64 " %s -",
					   h->expires_at, h->lifetime, h->fp, h->generation,
					   h->context);
	l->n++;
}

static int file_list(const struct token_tier *t, const char *server,
		     struct gc_token_item **out, size_t *n)
{
	struct file_list l = { NULL, 0 };

	each_file(t, server, false, add_item, &l);
	*out = l.items;
	*n = l.n;
	return 0;
}

struct file_find {
	char tokhash[17];
	char *org;
};

static void match_token(const char *name, const struct sealed_header *h, void *arg)
{
	struct file_find *f = arg;

	(void)name;
	if (!f->org && !strcmp(h->tokhash, f->tokhash))
		f->org = xstrdup(h->org);
}

static int file_find(const struct token_tier *t, const char *server, const char *token,
		     char **org)
{
	struct file_find f = { "", NULL };

	hash16("file-token", token, "", f.tokhash);
	each_file(t, server, false, match_token, &f);
	*org = f.org;
	return f.org ? 0 : GCERR_NOTFOUND;
}

void tier_file_init(struct token_tier *t)
{
	memset(t, 0, sizeof(*t));
	t->name = "file";
	t->caps = TIER_SEALED;
	t->get = file_get;
	t->put = file_put;
	t->erase = file_erase;
	t->list = file_list;
	t->find = file_find;
}

/* ---- the write generation, where keyctl is refused ----------------------- */

static void generation_name(const char *server, char name[40])
{
	char s[17];

	hash16("file-server", server, "", s);
	snprintf(name, 40, "generation-%s", s);
}

int tier_file_generation(const char *server, uint64_t *gen)
{
	char name[40], *buf;
	size_t len = 0;

	*gen = 0;
	generation_name(server, name);
	if (dir_fd() < 0)
		return gc_error(GCERR_KEYSTORE, "the token directory is not private");
	if ((buf = read_file(name, &len))) {
		*gen = strtoull(buf, NULL, 16);
		free(buf);
	}
	return 0;
}

int tier_file_set_generation(const char *server, uint64_t gen)
{
	char name[40], text[17];

	generation_name(server, name);
	snprintf(text, sizeof(text), "%016" PRIx64, gen);
	return write_file(name, text, 16);
}
