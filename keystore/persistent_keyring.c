/* SPDX-License-Identifier: MIT */
/*
 * The persistent-keyring keystore: one credential per server in the Linux
 * kernel's per-user persistent keyring (keyctl_get_persistent(2)).  Nothing
 * on disk; it outlives the login session, so SSH sessions and cron jobs of
 * the same user find it, and the kernel drops it at reboot or when the
 * keyring has not been used for kernel.keys.persistent_keyring_expiry
 * seconds (3 days by default).
 *
 * One "user" key per server, described DESC_PREFIX SERVER, its payload the
 * text of format_payload().  A module: libc, libkeyutils and the services
 * it is handed, nothing of the program.
 */
#include <galileo-credential/module.h>

#include <errno.h>
#include <keyutils.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DESC_PREFIX "galileo-credential:stored:"
#define PAYLOAD_MAGIC "galileo-credential-stored 1"
/* below the kernel's 32767 for "user" keys, and its 4095 for descriptions */
#define PAYLOAD_MAX (16 * 1024)
#define SERVER_MAX 2048
/* the owner only: possessor and user, nothing for group or other */
#define KEY_PERM (KEY_POS_ALL | KEY_USR_ALL)
#define NFIELDS 4

static const struct gc_services *svc;

/* the payload's lines after the magic, in this order */
static const char *const field_name[NFIELDS] = {
	"kind=", "username=", "organization=", "secret=",
};

enum { F_KIND, F_USERNAME, F_ORGANIZATION, F_SECRET };

static void freezero(void *p, size_t n)
{
	if (!p)
		return;
	svc->wipe(p, n);
	free(p);
}

static void free_secret(char *s)
{
	if (s)
		freezero(s, strlen(s));
}

static int kind_valid(const char *kind)
{
	return kind && (!strcmp(kind, "api-key") || !strcmp(kind, "basic") ||
			!strcmp(kind, "bearer"));
}

/*
 * The payload is outside input (any process of this user may write the
 * key), so every value is checked as galileo-credential(1) KEYSTORES promises
 * it: no control characters, which also keeps the newline a safe separator.
 */
static int clean(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

/*
 * The one line for a keyctl refused or missing here: the stack then
 * treats this backend as not there at all and may continue past it.
 */
static int unavailable(int err)
{
	if (err == EOPNOTSUPP)
		svc->error("cannot use the kernel persistent keyring: this kernel has none "
			   "(built without CONFIG_PERSISTENT_KEYRINGS); choose another keystore");
	else if (err == ENOSYS)
		svc->error("cannot use the kernel persistent keyring: keyctl is not available "
			   "here (%s), as under a container's seccomp profile or a kernel "
			   "without CONFIG_KEYS; choose another keystore", strerror(err));
	else
		svc->error("cannot use the kernel persistent keyring: keyctl is refused here "
			   "(%s), as a container's seccomp profile does; choose another keystore",
			   strerror(err));
	return GC_STATUS_UNAVAILABLE;
}

/*
 * errno of a failed key call as a status, with its line; server NULL for
 * a call about every credential
 */
static int report(int err, const char *doing, const char *server)
{
	char what[SERVER_MAX + 32] = "the credentials";

	if (server)
		snprintf(what, sizeof(what), "the credential for '%s'", server);
	switch (err) {
	case EPERM:
	case ENOSYS:
	case EOPNOTSUPP:
		return unavailable(err);
	case ENOKEY:
	case EKEYEXPIRED:
	case EKEYREVOKED:
		/* a dead key is as good as none: the kernel is collecting it */
		return GC_STATUS_NOTFOUND;
	case EACCES:
		svc->error("cannot %s %s: the persistent keyring refused access (%s); "
			   "check its keys' permissions with 'keyctl show'", doing, what,
			   strerror(err));
		return GC_STATUS_LOCKED;
	case EDQUOT:
		svc->error("cannot %s %s: this user's kernel key quota is full; remove "
			   "unused keys or raise the sysctls kernel.keys.maxkeys and "
			   "kernel.keys.maxbytes", doing, what);
		return GC_STATUS_ERROR;
	default:
		svc->error("cannot %s %s in the persistent keyring: %s", doing, what,
			   strerror(err));
		return GC_STATUS_ERROR;
	}
}

/*
 * The persistent keyring, linked into our process keyring: that link is
 * what makes us its possessor (its user permissions are view and read
 * only), so the keys found through it are possessed too.  The process
 * keyring goes with the process and leaves nothing behind in the
 * session; the kernel makes it even over the quota, but charges the link
 * 4 bytes, so a byte quota full to the last bytes fails even a read, with
 * the quota's line.  Every call also restarts the keyring's expiry timer,
 * which is what "kept while used" means.
 */
static int persistent(key_serial_t *ring, const char *doing, const char *server)
{
	long id = keyctl_get_persistent((uid_t)-1, KEY_SPEC_PROCESS_KEYRING);
	int status;

	if (id < 0) {
		status = report(errno, doing, server);
		if (status == GC_STATUS_NOTFOUND) {
			svc->error("cannot reach the persistent keyring: %s", strerror(ENOKEY));
			status = GC_STATUS_ERROR;
		}
		return status;
	}
	*ring = (key_serial_t)id;
	return GC_STATUS_SUCCESS;
}

/* DESC_PREFIX server as a new string (free it), or NULL after the line */
static char *describe(const char *server)
{
	size_t n;
	char *desc;

	if (!server || !*server || strlen(server) > SERVER_MAX || !clean(server)) {
		svc->error("cannot use server '%s' as a persistent keyring key: not a "
			   "canonical server", server && clean(server) ? server : "?");
		return NULL;
	}
	n = sizeof(DESC_PREFIX) + strlen(server);
	desc = malloc(n);
	if (!desc) {
		svc->error("cannot describe the key for '%s': out of memory", server);
		return NULL;
	}
	snprintf(desc, n, DESC_PREFIX "%s", server);
	return desc;
}

/* server's key in ring into *id: SUCCESS, NOTFOUND, or a status and its line */
static int find(key_serial_t ring, const char *server, const char *doing, key_serial_t *id)
{
	char *desc = describe(server);
	long found;
	int err;

	if (!desc)
		return GC_STATUS_ERROR;
	found = keyctl_search(ring, "user", desc, 0);
	err = errno;
	free(desc);
	if (found < 0)
		return report(err, doing, server);
	*id = (key_serial_t)found;
	return GC_STATUS_SUCCESS;
}

/*
 * Key id's payload as a new NUL-terminated string of PAYLOAD_MAX + 1
 * bytes (a secret: freezero it), or NULL when it cannot be read or is no
 * text of a sane size; errno says why when the read itself failed, else
 * it is 0.
 */
static char *read_payload(key_serial_t id)
{
	char *buf = malloc(PAYLOAD_MAX + 1);
	long n;

	if (!buf) {
		errno = ENOMEM;
		return NULL;
	}
	n = keyctl_read(id, buf, PAYLOAD_MAX);
	if (n < 0) {
		int err = errno;

		freezero(buf, PAYLOAD_MAX + 1);
		errno = err;
		return NULL;
	}
	if (n > PAYLOAD_MAX || memchr(buf, '\0', (size_t)n)) {
		freezero(buf, PAYLOAD_MAX + 1);
		errno = 0;
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

/*
 * Split a payload in place into its NFIELDS values.  The format:
 *
 *     galileo-credential-stored 1\n
 *     kind=KIND\n
 *     username=USERNAME\n
 *     organization=ORGANIZATION\n
 *     secret=SECRET\n
 *
 * Named lines, so `keyctl print` shows a person what is what, in a fixed
 * order, so there is one way to read it.  The version is in the magic: a
 * newer format is refused, not misread.  The final newline shows a
 * payload that was cut short.  Returns 0, or -1 when malformed.
 */
static int parse_payload(char *p, char *field[NFIELDS])
{
	size_t n = strlen(PAYLOAD_MAGIC);
	char *nl;

	if (strncmp(p, PAYLOAD_MAGIC "\n", n + 1))
		return -1;
	p += n + 1;
	for (int i = 0; i < NFIELDS; i++) {
		n = strlen(field_name[i]);
		nl = strchr(p, '\n');
		if (!nl || strncmp(p, field_name[i], n))
			return -1;
		*nl = '\0';
		field[i] = p + n;
		if (!clean(field[i]))
			return -1;
		p = nl + 1;
	}
	if (*p || !kind_valid(field[F_KIND]) || !*field[F_SECRET])
		return -1;
	return 0;
}

/* cred's payload as a new string (a secret), *len its length; NULL when too big */
static char *format_payload(const struct gc_credential *cred, size_t *len)
{
	const char *v[NFIELDS] = {
		cred->kind,
		cred->username ? cred->username : "",
		cred->organization ? cred->organization : "",
		cred->secret,
	};
	size_t n = strlen(PAYLOAD_MAGIC) + 2;
	char *buf, *p;

	for (int i = 0; i < NFIELDS; i++)
		n += strlen(field_name[i]) + strlen(v[i]) + 1;
	if (n > PAYLOAD_MAX + 1 || !(buf = malloc(n)))
		return NULL;
	p = buf + sprintf(buf, PAYLOAD_MAGIC "\n");
	for (int i = 0; i < NFIELDS; i++)
		p += sprintf(p, "%s%s\n", field_name[i], v[i]);
	*len = (size_t)(p - buf);
	return buf;
}

static void credential_clear(struct gc_credential *c)
{
	free(c->server);
	free(c->kind);
	free(c->username);
	free(c->organization);
	free_secret(c->secret);
	memset(c, 0, sizeof(*c));
}

/* out from the parsed fields, secret too when with_secret; -1 when out of memory */
static int fill(struct gc_credential *out, const char *server, char *field[NFIELDS],
		int with_secret)
{
	memset(out, 0, sizeof(*out));
	out->server = strdup(server);
	out->kind = strdup(field[F_KIND]);
	out->username = strdup(field[F_USERNAME]);
	out->organization = strdup(field[F_ORGANIZATION]);
	if (with_secret)
		out->secret = strdup(field[F_SECRET]);
	if (out->server && out->kind && out->username && out->organization &&
	    (out->secret || !with_secret))
		return 0;
	credential_clear(out);
	return -1;
}

enum { LOAD_OK = 0, LOAD_MALFORMED = -1, LOAD_NOMEM = -2 };

/*
 * Key id's credential for server into *out, without a line: LOAD_OK,
 * LOAD_MALFORMED, LOAD_NOMEM, or the errno of a failed read (positive).
 */
static int load(key_serial_t id, const char *server, struct gc_credential *out,
		int with_secret)
{
	char *payload = read_payload(id);
	char *field[NFIELDS];
	int ret = LOAD_OK;

	memset(out, 0, sizeof(*out));
	if (!payload)
		return errno ? errno : LOAD_MALFORMED;
	if (parse_payload(payload, field) < 0)
		ret = LOAD_MALFORMED;
	else if (fill(out, server, field, with_secret) < 0)
		ret = LOAD_NOMEM;
	freezero(payload, PAYLOAD_MAX + 1);
	return ret;
}

static int pkr_open(void)
{
	key_serial_t ring = 0;

	return persistent(&ring, "reach", NULL);
}

static int pkr_get(const char *server, struct gc_credential *out)
{
	key_serial_t ring = 0, id = 0;
	int status;

	memset(out, 0, sizeof(*out));
	status = persistent(&ring, "read", server);
	if (status == GC_STATUS_SUCCESS)
		status = find(ring, server, "read", &id);
	if (status != GC_STATUS_SUCCESS)
		return status;
	switch (status = load(id, server, out, 1)) {
	case LOAD_OK:
		return GC_STATUS_SUCCESS;
	case LOAD_MALFORMED:
		svc->error("cannot read the credential for '%s': its persistent keyring key "
			   "is malformed; run 'galileo-credential login' to replace it", server);
		return GC_STATUS_ERROR;
	case LOAD_NOMEM:
		svc->error("cannot read the credential for '%s': out of memory", server);
		return GC_STATUS_ERROR;
	default:
		return report(status, "read", server);
	}
}

/* what store() refuses before any key call: nothing it could not read back */
static int storable(const struct gc_credential *cred)
{
	const char *v[] = { cred->kind, cred->username, cred->organization, cred->secret };

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (v[i] && !clean(v[i]))
			goto bad;
	if (kind_valid(cred->kind) && cred->secret && *cred->secret)
		return 1;
bad:
	svc->error("cannot store the credential for '%s': a kind, a secret and no control "
		   "characters are needed", cred->server && clean(cred->server) ?
		   cred->server : "?");
	return 0;
}

/*
 * report() for a write: a key or keyring revoked under us is no
 * "nothing stored" here but a store that did not happen
 */
static int store_report(int err, const char *server)
{
	int status = report(err, "store", server);

	if (status != GC_STATUS_NOTFOUND)
		return status;
	svc->error("cannot store the credential for '%s': a key was revoked while "
		   "storing (%s); try again", server, strerror(err));
	return GC_STATUS_ERROR;
}

/*
 * A new key holding payload, made in our thread keyring where we possess
 * it, with its final permissions and no timeout, and read back there:
 * nobody sees it before it is what we meant.  *id: the key, or 0.
 */
static int make_key(const char *desc, const char *server, const char *payload,
		    size_t len, key_serial_t *id)
{
	long stale = keyctl_search(KEY_SPEC_THREAD_KEYRING, "user", desc, 0);
	char *back;
	int ok;

	/*
	 * add_key() would update a key of this description left in our
	 * thread keyring in place, and that one may be the visible one
	 */
	if (stale >= 0)
		keyctl_unlink((key_serial_t)stale, KEY_SPEC_THREAD_KEYRING);
	*id = add_key("user", desc, payload, len, KEY_SPEC_THREAD_KEYRING);
	if (*id < 0) {
		*id = 0;
		return store_report(errno, server);
	}
	if (keyctl_setperm(*id, KEY_PERM) < 0)
		return store_report(errno, server);
	back = read_payload(*id);
	if (!back && errno)
		return store_report(errno, server);
	ok = back && strlen(back) == len && !memcmp(back, payload, len);
	freezero(back, PAYLOAD_MAX + 1);
	if (!ok) {
		svc->error("cannot store the credential for '%s': the persistent keyring "
			   "read back something else; try again", server);
		return GC_STATUS_ERROR;
	}
	return GC_STATUS_SUCCESS;
}

/*
 * Linking the new key into the persistent keyring displaces the old key
 * of the same description in one step, so readers see exactly the old or
 * exactly the new one, and a failed store leaves the old one alone.  An
 * add_key() straight into the keyring would update the old key in place,
 * as atomically, but only if we may write that key, and with whatever
 * permissions and timeout it already had.  Concurrent stores each
 * displace the previous key: the last link wins, one key stays.
 */
static int pkr_store(const struct gc_credential *cred)
{
	key_serial_t ring = 0, id = 0;
	char *desc = NULL, *payload = NULL;
	size_t len = 0;
	int status;

	if (!storable(cred) || !(desc = describe(cred->server)))
		return GC_STATUS_ERROR;
	status = persistent(&ring, "store", cred->server);
	if (status != GC_STATUS_SUCCESS)
		goto out;
	payload = format_payload(cred, &len);
	if (!payload) {
		svc->error("cannot store the credential for '%s': too long or out of memory",
			   cred->server);
		status = GC_STATUS_ERROR;
		goto out;
	}
	status = make_key(desc, cred->server, payload, len, &id);
	if (status == GC_STATUS_SUCCESS && keyctl_link(id, ring) < 0)
		status = store_report(errno, cred->server);
	/*
	 * The store is done once the link is: a concurrent store or erase
	 * after it may already have displaced our key, which is theirs to
	 * report.  Worth a debug line, not a failure, and no error line.
	 */
	if (status == GC_STATUS_SUCCESS &&
	    keyctl_search(ring, "user", desc, 0) != id)
		svc->debug("persistent keyring: a concurrent store for '%s' came after this one",
			   cred->server);
out:
	if (id > 0 && status != GC_STATUS_SUCCESS)
		keyctl_invalidate(id);	/* never visible: destroy the secret now */
	else if (id > 0)
		keyctl_unlink(id, KEY_SPEC_THREAD_KEYRING);
	free(desc);
	if (payload)
		freezero(payload, len + 1);
	return status;
}

/*
 * The server of key id when it is one of our credentials: a new string
 * (free it), or NULL.  keyctl describes a key as "type;uid;gid;perm;desc".
 */
static char *credential_server(key_serial_t id)
{
	char *d = NULL, *desc, *server = NULL;
	int semis = 0;

	if (keyctl_describe_alloc(id, &d) < 0)
		return NULL;
	for (desc = d; *desc && semis < 4; desc++)
		semis += *desc == ';';
	if (semis == 4 && !strncmp(d, "user;", 5) &&
	    !strncmp(desc, DESC_PREFIX, strlen(DESC_PREFIX))) {
		desc += strlen(DESC_PREFIX);
		if (*desc && strlen(desc) <= SERVER_MAX && clean(desc))
			server = strdup(desc);
	}
	free(d);
	return server;
}

/*
 * Unlink every key described as server's credential from ring, whatever
 * the key's own permissions: a link is the keyring's to drop.
 */
static int unlink_all(key_serial_t ring, const char *server)
{
	key_serial_t *ids = NULL;
	long len = keyctl_read_alloc(ring, (void **)&ids);
	int status = GC_STATUS_SUCCESS;
	char *found;

	if (len < 0)
		return report(errno, "erase", server);
	for (long i = 0; i < len / (long)sizeof(*ids); i++) {
		found = credential_server(ids[i]);
		if (found && !strcmp(found, server) && keyctl_unlink(ids[i], ring) < 0 &&
		    errno != ENOENT && status == GC_STATUS_SUCCESS)
			status = report(errno, "erase", server);
		free(found);
	}
	free(ids);
	return status == GC_STATUS_NOTFOUND ? GC_STATUS_SUCCESS : status;
}

/*
 * Invalidating removes the key from every keyring at once and has the
 * kernel destroy the secret now.  A key that cannot be found or
 * invalidated (its permissions changed by someone) is still unlinked.
 */
static int pkr_erase(const char *server)
{
	key_serial_t ring = 0;
	char *desc;
	long id;
	int status = persistent(&ring, "erase", server);

	if (status != GC_STATUS_SUCCESS)
		return status;
	if (!(desc = describe(server)))
		return GC_STATUS_ERROR;
	id = keyctl_search(ring, "user", desc, 0);
	free(desc);
	/* unlinked before invalidated: the other order keeps the link's quota */
	status = unlink_all(ring, server);
	if (id >= 0)
		keyctl_invalidate((key_serial_t)id);
	return status;
}

static void free_list(struct gc_credential *l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		credential_clear(&l[i]);
	free(l);
}

static int listed(const struct gc_credential *l, size_t n, const char *server)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(l[i].server, server))
			return 1;
	return 0;
}

/*
 * Key id into the list when it is a readable credential: -1 only when out
 * of memory.  One that cannot be read or is malformed is left out with a
 * debug line, so one bad key does not hide the others.
 */
static int list_one(key_serial_t id, struct gc_credential **l, size_t *n)
{
	char *server = credential_server(id);
	struct gc_credential c, *grown;
	int ret = 0;

	if (!server || listed(*l, *n, server)) {
		free(server);
		return 0;
	}
	switch (load(id, server, &c, 0)) {
	case LOAD_OK:
		grown = realloc(*l, (*n + 1) * sizeof(**l));
		if (grown) {
			*l = grown;
			(*l)[(*n)++] = c;
		} else {
			credential_clear(&c);
			ret = -1;
		}
		break;
	case LOAD_NOMEM:
		ret = -1;
		break;
	default:
		svc->debug("persistent keyring: key %d for '%s' left out of the list",
			   (int)id, server);
	}
	free(server);
	return ret;
}

/*
 * What the keyring links, read from the keyring itself rather than found
 * by searches, so each server's key shows once, as readers would find it.
 */
static int pkr_list(struct gc_credential **out, size_t *n)
{
	key_serial_t ring = 0, *ids = NULL;
	long len;
	int status;

	*out = NULL;
	*n = 0;
	status = persistent(&ring, "list", NULL);
	if (status != GC_STATUS_SUCCESS)
		return status;
	len = keyctl_read_alloc(ring, (void **)&ids);
	if (len < 0) {
		/* a keyring revoked or expired under us holds nothing */
		status = report(errno, "list", NULL);
		return status == GC_STATUS_NOTFOUND ? GC_STATUS_SUCCESS : status;
	}
	for (long i = 0; i < len / (long)sizeof(*ids); i++) {
		if (list_one(ids[i], out, n) < 0) {
			svc->error("cannot list the persistent keyring: out of memory");
			free_list(*out, *n);
			*out = NULL;
			*n = 0;
			status = GC_STATUS_ERROR;
			break;
		}
	}
	free(ids);
	return status;
}

static const struct gc_keystore_module module = {
	GC_MODULE_TABLE_HEADER,
	.name = "persistent-keyring",
	.supports = GC_SUPPORTS_WRITE,
	.open = pkr_open,
	.get = pkr_get,
	.store = pkr_store,
	.erase = pkr_erase,
	.list = pkr_list,
};

const struct gc_keystore_module *gc_keystore_module_init(const struct gc_services *services)
{
	if (!services || services->interface_version != GC_MODULE_INTERFACE_VERSION) {
		if (services && services->error)
			services->error("cannot load keystore module 'persistent-keyring': built "
					"for interface version %d, given %u",
					GC_MODULE_INTERFACE_VERSION, services->interface_version);
		return NULL;
	}
	svc = services;
	return &module;
}
