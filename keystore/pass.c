/* SPDX-License-Identifier: MIT */
#ifdef HAVE_CONFIG_H
#include "autoconfig.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* environ, stpcpy */
#endif

#include <galileo-credential/module.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/*
 * The `pass` backend: the standard unix password manager, one gpg-encrypted
 * entry per server under a prefix of the store (galileo-credential(1) KEYSTORE
 * STACK).
 *
 * Entry PREFIX/NAME (file DIR/PREFIX/NAME.gpg), pass style:
 *
 *	SECRET
 *	server: https://api.galileo.ai
 *	kind: api-key
 *	username: NAME
 *	organization: ORG
 *
 * NAME is the canonical server URL percent-encoded (see encode_server()).
 *
 * Writes go through `pass` itself (insert, mv, rm), so the store's own rules
 * hold: the .gpg-id nearest the entry, PASSWORD_STORE_KEY, gpg groups, the
 * signed .gpg-id, PASSWORD_STORE_UMASK and the git commit of every change.
 * Reads run gpg directly, with the options pass would give it: `pass show`
 * adds nothing but bash and base64 around `gpg -d`, and forces --quiet,
 * which hides the status line telling "no pinentry" from "no secret key".
 *
 * No call waits on a prompt nobody can answer.  open() asks gpg-agent
 * (KEYINFO) whether a key of the store's recipients can decrypt without a
 * passphrase before anything is written; without a person at a terminal
 * every gpg runs with --pinentry-mode=error, so a passphrase that is needed
 * after all fails at once.  With one, gpg-agent may show its pinentry on
 * the terminal (GPG_TTY) until services->timeout, when the child is killed
 * and that pinentry dismissed.
 *
 * A store writes a hidden temporary entry next to the real one (same
 * directory: same .gpg-id, same file system), reads it back and compares it
 * byte for byte, then renames it over the real one with `pass mv -f`, a
 * rename(2): readers find the whole old or the whole new file, concurrent
 * stores each rename a complete entry of their own and the last one wins.
 * A failure removes the temporary entry; the old one stays.
 *
 * The secret only ever travels on pipes: stdin of `pass insert`, stdout of
 * `gpg --decrypt`; never argv or the environment, and every buffer that
 * held it is wiped.  Every child runs through the program's run service
 * (services->run()), in a process group of its own killed at the deadline.
 *
 * The store is trusted only as ssh trusts its files: the store and the
 * directories up to the entries, the .gpg-id in use and each entry read
 * must be owned by the user or root and writable by nobody else, and no
 * directory above the store may be writable by others unless sticky.
 * Otherwise the backend is locked, naming the path: another user could
 * have added a recipient (every later login would encrypt the key to
 * them too) or swapped an entry (tokens would come from their account).
 */

#define DEFAULT_PREFIX	"galileo-credential"
#define TMP_TAG		".gc-tmp-"	/* hidden: `pass ls` and list() skip it */
#define ENTRY_MAX	(64 * 1024)	/* an entry is a few hundred bytes */
#define NAME_MAX_LEN	200		/* encoded names + ".gpg" fit NAME_MAX */
#define MAX_WORDS	32		/* recipients, words of PASSWORD_STORE_GPG_OPTS */
#define MAX_GRIPS	64
#define MAX_ENTRIES	4096
#define LINE_MAX_LEN	512

/* gpg-error codes (libgpg-error's err-codes.h), the code part only */
enum {
	GPGERR_BAD_PASSPHRASE = 11,
	GPGERR_NO_SECKEY = 17,
	GPGERR_TIMEOUT = 62,
	GPGERR_NO_AGENT = 77,
	GPGERR_NO_PIN_ENTRY = 85,
	GPGERR_CANCELED = 99,
	GPGERR_FULLY_CANCELED = 198,
};

#define AGENT_HINT "run 'gpg-connect-agent /bye' to see why"
#define LOCKED_HINT "run 'galileo-credential token' (or 'login') once in a terminal, so that " \
		    "gpg-agent asks for it and caches it"

extern char **environ;

static const struct gc_services *svc;

/* end of the current operation, CLOCK_MONOTONIC milliseconds */
static long long deadline;

/* the last failure line, so that a memoized step can repeat it */
static char last_line[LINE_MAX_LEN];

static struct {
	char *dir;			/* the store */
	char *prefix;			/* entries live in DIR/PREFIX */
	char *opts_copy;		/* $PASSWORD_STORE_GPG_OPTS, split in place */
	char *opts[MAX_WORDS + 1];
	char *recipients_copy;
	char *recipients[MAX_WORDS + 1];	/* of the nearest .gpg-id */
	char *pass, *gpg, *agent;	/* programs found on PATH */
} conf;

/* ---- small things ------------------------------------------------------ */

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long timeout_s(void)
{
	return svc->timeout > 0 ? svc->timeout : 30;
}

static void op_begin(void)
{
	deadline = now_ms() + (long long)timeout_s() * 1000;
}

static long long ms_left(void)
{
	return deadline - now_ms();
}

/* report the one line of a failure; returns status */
__attribute__((format(printf, 2, 3)))
static int fail(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_line, sizeof(last_line), fmt, ap);
	va_end(ap);
	svc->error("%s", last_line);
	return status;
}

static int oom(void)
{
	return fail(GC_STATUS_ERROR, "pass: out of memory");
}

/*
 * s fit for a message: paths and names come from the environment and the
 * store, so anything but printable ASCII is shown as '?'.  Four rotating
 * buffers, enough for one message.
 */
static const char *shown(const char *s)
{
	static char ring[4][128];
	static unsigned int next;
	char *d = ring[next++ % 4];
	size_t i;

	for (i = 0; s && s[i] && i < sizeof(ring[0]) - 1; i++)
		d[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	d[i] = '\0';
	return d;
}

/* the arguments joined, up to a NULL; new string or NULL */
static char *join(const char *first, ...)
{
	va_list ap;
	const char *s;
	size_t n = 0;
	char *out, *p;

	va_start(ap, first);
	for (s = first; s; s = va_arg(ap, const char *))
		n += strlen(s);
	va_end(ap);
	if (!(out = p = malloc(n + 1)))
		return NULL;
	va_start(ap, first);
	for (s = first; s; s = va_arg(ap, const char *))
		p = stpcpy(p, s);
	va_end(ap);
	return out;
}

static int has_control(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 1;
	return 0;
}

static int is_regular(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* split s in place at blanks, as bash splits an unquoted word; NULL-terminated */
static void split_words(char *s, char **words)
{
	char *save = NULL;
	size_t n = 0;

	for (char *w = strtok_r(s, " \t\n", &save); w && n < MAX_WORDS;
	     w = strtok_r(NULL, " \t\n", &save))
		words[n++] = w;
	words[n] = NULL;
}

/* ---- buffers that may hold a secret ------------------------------------ */

struct buf {
	char *p;
	size_t len, cap, max;
	int overflow;		/* more than max arrived, or no memory */
};

/* grows by copying, so no stale copy of a secret is left in freed memory */
static void buf_add(struct buf *b, const char *s, size_t n)
{
	size_t cap;
	char *np;

	if (b->len + n > b->max) {
		b->overflow = 1;
		n = b->max - b->len;
	}
	if (b->len + n + 1 > b->cap) {
		for (cap = b->cap ? b->cap : 512; cap < b->len + n + 1; cap *= 2)
			;
		if (!(np = malloc(cap))) {
			b->overflow = 1;
			return;
		}
		if (b->p) {
			memcpy(np, b->p, b->len);
			svc->wipe(b->p, b->cap);
			free(b->p);
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_free(struct buf *b)
{
	if (b->p) {
		svc->wipe(b->p, b->cap);
		free(b->p);
	}
	b->p = NULL;
	b->len = b->cap = 0;
}

/* a string that may be a secret: wipe, then free */
static void secret_free(char *s, size_t n)
{
	if (s) {
		svc->wipe(s, n);
		free(s);
	}
}

/* ---- children ------------------------------------------------------------ */

/*
 * The terminal gpg-agent may show a pinentry on, for a person at it: our
 * stdio are often pipes (git runs us so), so GPG_TTY is found from the
 * controlling terminal.  NULL when there is none.
 */
static const char *terminal(void)
{
	static char name[256];
	static int done;
	const char *env = getenv("GPG_TTY"), *t = NULL;
	int fd = -1;

	if (done)
		return *name ? name : NULL;
	done = 1;
	if (env && env[0] == '/')
		t = env;
	for (int i = 0; !t && i < 3; i++)
		t = ttyname(i);
	if (!t && (fd = open("/dev/tty", O_RDONLY | O_NOCTTY | O_CLOEXEC)) >= 0)
		t = ttyname(fd);
	if (t)
		snprintf(name, sizeof(name), "%s", t);
	if (fd >= 0)
		close(fd);
	return *name ? name : NULL;
}

static int env_is(const char *entry, const char *name)
{
	size_t n = strlen(name);

	return strncmp(entry, name, n) == 0 && entry[n] == '=';
}

static void env_free(char **env)
{
	for (size_t i = 0; env && env[i]; i++)
		free(env[i]);
	free(env);
}

/*
 * Our environment for a child, minus what it must not see (GALILEO_*: a
 * GALILEO_API_KEY is a secret) and with the store we chose.  `pass`
 * children never prompt: the gpg they run gets --pinentry-mode=error.
 */
static char **child_env(int for_pass)
{
	const char *opts = getenv("PASSWORD_STORE_GPG_OPTS"), *tty = NULL;
	size_t n = 0, k = 0;
	char **env;

	if (!for_pass && svc->interactive)
		tty = terminal();
	while (environ && environ[n])
		n++;
	if (!(env = calloc(n + 4, sizeof(*env))))
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const char *e = environ[i];

		if (strncmp(e, "GALILEO_", 8) == 0 || env_is(e, "PASSWORD_STORE_DIR") ||
		    env_is(e, "PASSWORD_STORE_GPG_OPTS") || (tty && env_is(e, "GPG_TTY")))
			continue;
		if (!(env[k++] = strdup(e)))
			goto nomem;
	}
	if (!(env[k++] = join("PASSWORD_STORE_DIR=", conf.dir, NULL)))
		goto nomem;
	if (for_pass && !(env[k++] = join("PASSWORD_STORE_GPG_OPTS=", opts ? opts : "",
					  " --pinentry-mode=error", NULL)))
		goto nomem;
	if (tty && !(env[k++] = join("GPG_TTY=", tty, NULL)))
		goto nomem;
	return env;
nomem:
	env_free(env);
	return NULL;
}

/* the lines of a child's stderr, for debug only */
static void debug_lines(const char *what, const char *text)
{
	const char *p = text, *nl;
	int n = 0;

	while (p && *p && n++ < 20) {
		nl = strchr(p, '\n');
		svc->debug("pass: %s: %.*s", what, (int)(nl ? nl - p : (long)strlen(p)), p);
		p = nl ? nl + 1 : "";
	}
}

/*
 * Run argv (argv[0] a full path) through the program's run service:
 * input on its stdin, gpg's status lines on fd 3, each output kept up to
 * ENTRY_MAX bytes, killed with its process group when the operation's
 * time is up.  GC_STATUS_SUCCESS once it ended (r->exit_code,
 * r->timed_out), else what the service said; release r with
 * svc->run_release() either way.
 */
static int run(const char *const argv[], int for_pass, const char *input, size_t input_len,
	       struct gc_run *r)
{
	char **envp = child_env(for_pass);
	int status;

	memset(r, 0, sizeof(*r));
	r->size = sizeof(*r);
	r->exit_code = -1;
	if (!envp)
		return GC_STATUS_ERROR;
	r->argv = argv;
	r->envp = (const char *const *)envp;
	r->input = input;
	r->input_len = input_len;
	r->want_fd3 = 1;
	r->max_output = ENTRY_MAX;
	r->timeout_ms = ms_left() > 0 ? ms_left() : 1;
	svc->debug("pass: running %s %s", argv[0], argv[1] ? argv[1] : "");
	status = svc->run(r);
	env_free(envp);
	if (status == GC_STATUS_SUCCESS)
		debug_lines("stderr", r->errors);
	return status;
}

/* ---- configuration and the store --------------------------------------- */

static const char *home(void)
{
	const char *h = getenv("HOME");
	struct passwd *pw;

	if (h && *h)
		return h;
	pw = getpwuid(getuid());
	return pw && pw->pw_dir && *pw->pw_dir ? pw->pw_dir : NULL;
}

static void strip_slashes(char *s)
{
	size_t n = strlen(s);

	while (n > 1 && s[n - 1] == '/')
		s[--n] = '\0';
}

/* pass.store-dir, else $PASSWORD_STORE_DIR, else ~/.password-store (as pass) */
static int load_dir(void)
{
	const char *opt = svc->option(svc, "store-dir"), *env = getenv("PASSWORD_STORE_DIR");

	if (opt && *opt) {
		if (opt[0] == '~' && opt[1] == '/' && home())
			conf.dir = join(home(), opt + 1, NULL);
		else if (opt[0] == '/')
			conf.dir = strdup(opt);
		else
			return fail(GC_STATUS_ERROR, "pass.store-dir '%s' is not an absolute path; "
				    "write it as /path or ~/path", shown(opt));
	} else if (env && *env) {
		conf.dir = strdup(env);
	} else if (home()) {
		conf.dir = join(home(), "/.password-store", NULL);
	} else {
		return fail(GC_STATUS_UNAVAILABLE, "no password store: neither PASSWORD_STORE_DIR "
			    "nor HOME is set; set pass.store-dir");
	}
	if (!conf.dir)
		return oom();
	strip_slashes(conf.dir);
	return GC_STATUS_SUCCESS;
}

/* a relative path of plain components: never out of the store, never odd for a shell */
static int prefix_valid(const char *p)
{
	size_t n;

	if (!*p || *p == '/')
		return 0;
	for (; *p; p += n + (p[n] == '/')) {
		n = strcspn(p, "/");
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)p[i] <= 0x20 || p[i] == 0x7f || strchr("\\*?[]", p[i]))
				return 0;
	}
	return 1;
}

static int load_conf(void)
{
	const char *opt = svc->option(svc, "prefix"), *opts = getenv("PASSWORD_STORE_GPG_OPTS");
	int ret;

	if ((ret = load_dir()))
		return ret;
	if (!(conf.prefix = strdup(opt && *opt ? opt : DEFAULT_PREFIX)))
		return oom();
	strip_slashes(conf.prefix);
	if (!prefix_valid(conf.prefix))
		return fail(GC_STATUS_ERROR, "pass.prefix '%s' is not a relative path inside the "
			    "password store; use e.g. 'galileo-credential'", shown(conf.prefix));
	if (!(conf.opts_copy = strdup(opts ? opts : "")))
		return oom();
	split_words(conf.opts_copy, conf.opts);
	return GC_STATUS_SUCCESS;
}

/* path of rel inside the store; new string */
static char *store_path(const char *rel, const char *suffix)
{
	return join(conf.dir, strcmp(conf.dir, "/") ? "/" : "", rel, suffix, NULL);
}

/* the .gpg-id pass uses for entries under the prefix: the nearest one upwards */
static char *find_gpg_id(void)
{
	char *d = store_path(conf.prefix, ""), *path, *slash;
	size_t root = strlen(conf.dir);

	while (d) {
		if (!(path = join(d, "/.gpg-id", NULL)))
			break;
		if (is_regular(path)) {
			free(d);
			return path;
		}
		free(path);
		slash = strrchr(d, '/');
		if (strlen(d) <= root || !slash || (size_t)(slash - d) < root)
			break;
		*slash = '\0';
	}
	free(d);
	return NULL;
}

/* a file of at most max bytes, NUL-terminated; new string or NULL (errno) */
static char *read_small(const char *path, size_t max)
{
	struct buf b = { .max = max };
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	char chunk[4096];
	ssize_t r;

	if (fd < 0)
		return NULL;
	while (!b.overflow && ((r = read(fd, chunk, sizeof(chunk))) > 0 ||
			       (r < 0 && errno == EINTR)))
		if (r > 0)
			buf_add(&b, chunk, (size_t)r);
	svc->wipe(chunk, sizeof(chunk));
	close(fd);
	if (b.overflow || !b.p) {
		buf_free(&b);
		errno = EFBIG;
		return NULL;
	}
	return b.p;
}

/* ---- trust ------------------------------------------------------------------ */

/*
 * path (stat in st) is the user's or root's and nobody else may write it;
 * sticky_ok: a sticky directory above the store (/tmp) counts as safe.
 * GC_STATUS_SUCCESS, or GC_STATUS_LOCKED naming the path.
 */
static int trusted(const char *path, const struct stat *st, int sticky_ok)
{
	if (st->st_uid != geteuid() && st->st_uid != 0)
		return fail(GC_STATUS_LOCKED, "the password store is not safe to use: '%s' is owned by "
			    "uid %u, not by you or root, so another user could add a recipient or "
			    "swap an entry; chown it to yourself", shown(path), (unsigned int)st->st_uid);
	if ((st->st_mode & 022) && !(sticky_ok && S_ISDIR(st->st_mode) && (st->st_mode & S_ISVTX)))
		return fail(GC_STATUS_LOCKED, "the password store is not safe to use: '%s' is writable "
			    "by group or others, so another user could add a recipient or swap an "
			    "entry; run 'chmod go-w %s'", shown(path), shown(path));
	return GC_STATUS_SUCCESS;
}

/* trusted(), for a path that may not exist (nothing there: nothing to fear) */
static int trust_path(const char *path, int sticky_ok)
{
	struct stat st;

	if (stat(path, &st))
		return GC_STATUS_SUCCESS;
	return trusted(path, &st, sticky_ok);
}

/* every directory above the store, up to / (sticky ones are safe) */
static int trust_above(void)
{
	char *real = realpath(conf.dir, NULL), *slash;
	int ret = GC_STATUS_SUCCESS;

	if (!real)
		return fail(GC_STATUS_ERROR, "cannot resolve the password store '%s': %s",
			    shown(conf.dir), strerror(errno));
	while (ret == GC_STATUS_SUCCESS && (slash = strrchr(real, '/'))) {
		*slash = '\0';
		ret = trust_path(*real ? real : "/", 1);
		if (!*real)
			break;
	}
	free(real);
	return ret;
}

/* the store and each directory from it down to the prefix */
static int trust_store(void)
{
	char *d = store_path(conf.prefix, ""), *slash;
	size_t root = strlen(conf.dir);
	int ret;

	if (!d)
		return oom();
	if ((ret = trust_above()) || (ret = trust_path(conf.dir, 0)))
		goto out;
	while (strlen(d) > root) {
		if ((ret = trust_path(d, 0)))
			break;
		if (!(slash = strrchr(d, '/')) || (size_t)(slash - d) < root)
			break;
		*slash = '\0';
	}
out:
	free(d);
	return ret;
}

/* recipients as pass finds them: $PASSWORD_STORE_KEY, else the .gpg-id lines */
static int load_recipients(void)
{
	const char *key = getenv("PASSWORD_STORE_KEY");
	char *id_path, *line, *save = NULL;
	size_t n = 0;

	if (key && *key) {
		if (!(conf.recipients_copy = strdup(key)))
			return oom();
		split_words(conf.recipients_copy, conf.recipients);
		return GC_STATUS_SUCCESS;
	}
	if (!(id_path = find_gpg_id()))
		return fail(GC_STATUS_UNAVAILABLE, "the password store '%s' has no .gpg-id; "
			    "run 'pass init GPG-ID'", shown(conf.dir));
	/* a recipient someone else could have added is never encrypted to */
	if (trust_path(id_path, 0)) {
		free(id_path);
		return GC_STATUS_LOCKED;
	}
	conf.recipients_copy = read_small(id_path, 64 * 1024);
	free(id_path);
	if (!conf.recipients_copy)
		return fail(GC_STATUS_ERROR, "cannot read the .gpg-id of the password store '%s': %s",
			    shown(conf.dir), strerror(errno));
	for (line = strtok_r(conf.recipients_copy, "\n", &save); line && n < MAX_WORDS;
	     line = strtok_r(NULL, "\n", &save)) {
		line[strcspn(line, "#")] = '\0';	/* as pass: a comment */
		line += strspn(line, " \t\r");
		line[strcspn(line, " \t\r")] = '\0';
		if (*line)
			conf.recipients[n++] = line;
	}
	conf.recipients[n] = NULL;
	if (n == 0)
		return fail(GC_STATUS_UNAVAILABLE, "the .gpg-id of the password store '%s' names no "
			    "key; run 'pass init GPG-ID'", shown(conf.dir));
	return GC_STATUS_SUCCESS;
}

static int load_store(void)
{
	struct stat st;

	int ret;

	if (stat(conf.dir, &st) || !S_ISDIR(st.st_mode))
		return fail(GC_STATUS_UNAVAILABLE, "no password store at '%s'; run 'pass init GPG-ID' "
			    "(or set pass.store-dir)", shown(conf.dir));
	if ((ret = trust_store()))
		return ret;
	return load_recipients();
}

/* name on $PATH, as execvp would find it; new string or NULL */
static char *find_program(const char *name)
{
	const char *path = getenv("PATH"), *p;
	char *dir, *full;
	size_t n;

	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path; *p; p += n + (p[n] == ':')) {
		n = strcspn(p, ":");
		/* never relative to the working directory: git runs us inside a repository */
		if (n == 0 || p[0] != '/' || !(dir = strndup(p, n)))
			continue;
		full = join(dir, "/", name, NULL);
		free(dir);
		if (full && is_regular(full) && access(full, X_OK) == 0)
			return full;
		free(full);
	}
	return NULL;
}

/* pass, and the gpg pass would use (gpg2 when there is one) */
static int load_programs(void)
{
	if (!(conf.pass = find_program("pass")))
		return fail(GC_STATUS_UNAVAILABLE, "the 'pass' program is not installed; install it "
			    "(Debian: apt install pass) or take 'pass' out of the keystore setting");
	if (!(conf.gpg = find_program("gpg2")) && !(conf.gpg = find_program("gpg")))
		return fail(GC_STATUS_UNAVAILABLE, "gpg is not installed; install it (Debian: apt "
			    "install gnupg)");
	if (!(conf.agent = find_program("gpg-connect-agent")))
		return fail(GC_STATUS_UNAVAILABLE, "gpg-connect-agent is not installed; install it "
			    "(Debian: apt install gnupg)");
	return GC_STATUS_SUCCESS;
}

/* ---- can a key of the store decrypt, now, without a prompt? ------------ */

/* field n (1-based) of a colon or space separated line; its length in *len */
static const char *field(const char *line, int n, char sep, size_t *len)
{
	for (; n > 1 && *line && *line != '\n'; line++)
		if (*line == sep)
			n--;
	if (n > 1)
		line = "";
	*len = strcspn(line, sep == ':' ? ":\n" : " \n");
	return line;
}

/* the line after l, "" at the end */
static const char *next_line(const char *l)
{
	l += strcspn(l, "\n");
	return *l ? l + 1 : l;
}

static int field_is(const char *line, int n, char sep, const char *value)
{
	size_t len;
	const char *f = field(line, n, sep, &len);

	return len == strlen(value) && strncmp(f, value, len) == 0;
}

/*
 * A sec or ssb record of --with-colons that can decrypt here: valid (not
 * revoked, expired, invalid), encryption capability of its own, and the
 * secret part present (field 15 "#" is an offline stub).
 */
static int can_decrypt(const char *line)
{
	size_t len;
	const char *validity = field(line, 2, ':', &len), *caps, *token;

	if (len && strchr("rei", validity[0]))
		return 0;
	caps = field(line, 12, ':', &len);
	if (!memchr(caps, 'e', len))
		return 0;
	token = field(line, 15, ':', &len);
	return !(len == 1 && token[0] == '#');
}

/* keygrips of the recipients' secret (sub)keys that can decrypt */
static int secret_grips(char grips[][41], size_t *n)
{
	const char *argv[2 * MAX_WORDS + 10];
	struct gc_run c;
	size_t k = 0;
	int want = 0;

	argv[k++] = conf.gpg;
	for (size_t i = 0; conf.opts[i]; i++)
		argv[k++] = conf.opts[i];
	argv[k++] = "--batch";
	argv[k++] = "--no-tty";
	argv[k++] = "--with-colons";
	argv[k++] = "--with-keygrip";
	argv[k++] = "--list-secret-keys";
	argv[k++] = "--";
	for (size_t i = 0; conf.recipients[i]; i++)
		argv[k++] = conf.recipients[i];
	argv[k] = NULL;
	*n = 0;
	if (run(argv, 0, NULL, 0, &c) != GC_STATUS_SUCCESS || c.timed_out) {
		svc->run_release(&c);
		return fail(GC_STATUS_ERROR, "gpg did not list the keys of the password store within "
			    "%ld seconds; " AGENT_HINT, timeout_s());
	}
	/* gpg exits 2 when one of several recipients has no secret key: read on */
	for (const char *l = c.output; l && *l; l = next_line(l)) {
		size_t len;
		const char *grip;

		if (field_is(l, 1, ':', "sec") || field_is(l, 1, ':', "ssb")) {
			want = can_decrypt(l);
		} else if (field_is(l, 1, ':', "grp") && want) {
			grip = field(l, 10, ':', &len);
			if (len == 40 && *n < MAX_GRIPS) {
				memcpy(grips[*n], grip, 40);
				grips[(*n)++][40] = '\0';
			}
			want = 0;
		}
	}
	svc->run_release(&c);
	return GC_STATUS_SUCCESS;
}

/*
 * Ask gpg-agent about the keygrips: *agent set when it answered at all,
 * *usable when one of them decrypts without a prompt (no passphrase, the
 * passphrase cached) or sits on a card (the decryption itself tells then).
 * KEYINFO line: S KEYINFO GRIP TYPE SERIAL IDSTR CACHED PROTECTION ...
 */
static int ask_agent(char grips[][41], size_t n, int *agent, int *usable)
{
	const char *argv[MAX_GRIPS + 4];
	char cmds[MAX_GRIPS][50];
	struct gc_run c;
	size_t k = 0;

	argv[k++] = conf.agent;
	argv[k++] = "GETINFO version";
	for (size_t i = 0; i < n; i++) {
		snprintf(cmds[i], sizeof(cmds[i]), "KEYINFO %.40s", grips[i]);
		argv[k++] = cmds[i];
	}
	argv[k++] = "/bye";
	argv[k] = NULL;
	*agent = *usable = 0;
	if (run(argv, 0, NULL, 0, &c) != GC_STATUS_SUCCESS || c.timed_out) {
		svc->run_release(&c);
		return fail(GC_STATUS_UNAVAILABLE, "gpg-agent did not answer within %ld seconds; "
			    AGENT_HINT, timeout_s());
	}
	for (const char *l = c.output; l && *l; l = next_line(l)) {
		if (l[0] == 'D' && l[1] == ' ')
			*agent = 1;
		else if (field_is(l, 2, ' ', "KEYINFO") &&
			 (field_is(l, 7, ' ', "1") || field_is(l, 8, ' ', "C") ||
			  field_is(l, 4, ' ', "T")))
			*usable = 1;
	}
	svc->run_release(&c);
	return GC_STATUS_SUCCESS;
}

static int check_keys(void)
{
	char grips[MAX_GRIPS][41];
	size_t n = 0;
	int ret, agent, usable;

	if ((ret = load_programs()) || (ret = secret_grips(grips, &n)) ||
	    (ret = ask_agent(grips, n, &agent, &usable)))
		return ret;
	if (!agent)
		return fail(GC_STATUS_UNAVAILABLE, "cannot reach gpg-agent for the password store; "
			    AGENT_HINT);
	if (n == 0)
		return fail(GC_STATUS_UNAVAILABLE, "no gpg secret key for the recipients of the "
			    "password store ('%s'); import the key, or run 'pass init GPG-ID' with "
			    "a key you have", shown(conf.recipients[0]));
	if (!usable && !svc->interactive)
		return fail(GC_STATUS_LOCKED, "the gpg key '%s' of the password store needs its "
			    "passphrase and no terminal is there to ask; " LOCKED_HINT,
			    shown(conf.recipients[0]));
	svc->debug("pass: %zu usable secret key(s)%s", n, usable ? "" : ", passphrase needed");
	return GC_STATUS_SUCCESS;
}

enum { REACH_CONF, REACH_STORE, REACH_KEYS };

/*
 * Reach the store up to level, each step once per process: a failure is
 * remembered with its line, so one call never asks twice.
 */
static int reach(int level)
{
	static int (*const step[])(void) = { load_conf, load_store, check_keys };
	static int status[] = { -1, -1, -1 };
	static char line[3][LINE_MAX_LEN];
	int ret = GC_STATUS_SUCCESS;

	for (int i = 0; i <= level && ret == GC_STATUS_SUCCESS; i++) {
		if (status[i] < 0) {
			last_line[0] = '\0';
			ret = status[i] = step[i]();
			snprintf(line[i], sizeof(line[i]), "%s", last_line);
		} else if ((ret = status[i]) != GC_STATUS_SUCCESS) {
			svc->error("%s", line[i]);
		}
	}
	return ret;
}

/* ---- entry names ---------------------------------------------------------- */

static int unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

/*
 * The entry name of a server: the canonical URL with every byte but RFC
 * 3986's unreserved ones written %XX (upper-case hex), so
 * "https://h:8443/p" is "https%3A%2F%2Fh%3A8443%2Fp".  One file name, never a
 * directory and never "." or ".." (no '/' survives), never hidden (it starts
 * with the scheme), one name per server and back again: decode_name() takes
 * only names in exactly this form.  New string; NULL when too long.
 */
static char *encode_server(const char *server)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *s;
	size_t n = 0;
	char *out, *p;

	for (s = (const unsigned char *)server; *s; s++)
		n += unreserved(*s) ? 1 : 3;
	if (n > NAME_MAX_LEN || !(out = p = malloc(n + 1)))
		return NULL;
	for (s = (const unsigned char *)server; *s; s++) {
		if (unreserved(*s)) {
			*p++ = (char)*s;
		} else {
			*p++ = '%';
			*p++ = hex[*s >> 4];
			*p++ = hex[*s & 15];
		}
	}
	*p = '\0';
	return out;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	return c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/*
 * The server of an entry name (without ".gpg"), or NULL for a name
 * encode_server() would not have made: temporary entries, a user's own
 * entries under the prefix, anything non-canonical.  New string.
 */
static char *decode_name(const char *name, size_t len)
{
	char *out, *p;
	int hi, lo;

	if (len > NAME_MAX_LEN || !(out = p = malloc(len + 1)))
		return NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '%' && i + 2 < len && (hi = hexval(name[i + 1])) >= 0 &&
		    (lo = hexval(name[i + 2])) >= 0) {
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
			if (unreserved(c) || c < 0x20 || c == 0x7f)
				goto bad;
		} else if (!unreserved(c)) {
			goto bad;
		}
		*p++ = (char)c;
	}
	*p = '\0';
	if (strncmp(out, "https://", 8) == 0 || strncmp(out, "http://", 7) == 0)
		return out;
bad:
	free(out);
	return NULL;
}

/* "PREFIX/NAME" of server, as pass names it; new string or NULL */
static char *entry_of(const char *server)
{
	char *name = encode_server(server), *entry;

	if (!name)
		return NULL;
	entry = join(conf.prefix, "/", name, NULL);
	free(name);
	return entry;
}

/* a fresh temporary entry name next to the real ones (same .gpg-id, same fs) */
static char *temp_entry(void)
{
	unsigned long long r = 0;
	char tail[64];

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		r ^= (unsigned long long)now_ms() * 2654435761u;
	snprintf(tail, sizeof(tail), "%s%ld-%016llx", TMP_TAG, (long)getpid(), r);
	return join(conf.prefix, "/", tail, NULL);
}

/* ---- entry content --------------------------------------------------------- */

static const char *const meta_keys[] = { "server", "kind", "username", "organization" };
enum { META_SERVER, META_KIND, META_USERNAME, META_ORGANIZATION, META_N };

static int kind_valid(const char *k)
{
	return !strcmp(k, "api-key") || !strcmp(k, "basic") || !strcmp(k, "bearer");
}

static const char *or_empty(const char *s)
{
	return s ? s : "";
}

/* the entry for cred; *text new (a secret: secret_free it), its length in *len */
static int entry_text(const struct gc_credential *cred, char **text, size_t *len)
{
	static const char fmt[] = "%s\nserver: %s\nkind: %s\nusername: %s\norganization: %s\n";
	const char *kind = cred->kind && *cred->kind ? cred->kind : "api-key";
	const char *user = or_empty(cred->username), *org = or_empty(cred->organization);
	const char *secret = or_empty(cred->secret);
	int n;

	if (!*secret)
		return fail(GC_STATUS_ERROR, "pass: refusing to store an empty secret");
	if (!kind_valid(kind))
		return fail(GC_STATUS_ERROR, "pass: refusing to store unknown kind '%s'", shown(kind));
	if (has_control(secret, strlen(secret)) || has_control(cred->server, strlen(cred->server)) ||
	    has_control(user, strlen(user)) || has_control(org, strlen(org)))
		return fail(GC_STATUS_ERROR, "pass: refusing to store a value with a control character");
	n = snprintf(NULL, 0, fmt, secret, cred->server, kind, user, org);
	if (n < 0 || !(*text = malloc((size_t)n + 1)))
		return oom();
	snprintf(*text, (size_t)n + 1, fmt, secret, cred->server, kind, user, org);
	*len = (size_t)n;
	return GC_STATUS_SUCCESS;
}

/* one "key: value" line into meta[] (first one wins); 0, or -1 for a control char */
static int meta_line(const char *l, size_t n, const char *meta[], size_t mlen[])
{
	const char *colon = memchr(l, ':', n);

	if (!colon)
		return 0;
	for (int i = 0; i < META_N; i++) {
		size_t klen = strlen(meta_keys[i]);

		if ((size_t)(colon - l) != klen || strncasecmp(l, meta_keys[i], klen) || meta[i])
			continue;
		meta[i] = colon + 1 + (colon + 1 < l + n && colon[1] == ' ');
		mlen[i] = (size_t)(l + n - meta[i]);
		return has_control(meta[i], mlen[i]) ? -1 : 0;
	}
	return 0;
}

/*
 * Parse an entry (outside input: bounded, checked) into out; server is the
 * one its name says.  GC_STATUS_SUCCESS, or GC_STATUS_ERROR with *why.
 */
static int parse_entry(const char *text, size_t len, const char *server,
		       struct gc_credential *out, const char **why)
{
	const char *meta[META_N] = { 0 }, *l = text, *end = text + len, *nl;
	size_t mlen[META_N] = { 0 }, slen;

	*why = "is not text";
	if (memchr(text, '\0', len))
		return GC_STATUS_ERROR;
	slen = (nl = memchr(text, '\n', len)) ? (size_t)(nl - text) : len;
	if (slen && text[slen - 1] == '\r')
		slen--;	/* edited on another system: the secret holds no CR */
	*why = "has no secret on its first line";
	if (!slen || has_control(text, slen))
		return GC_STATUS_ERROR;
	for (l = nl ? nl + 1 : end; l < end; l = nl ? nl + 1 : end) {
		size_t n = (nl = memchr(l, '\n', (size_t)(end - l))) ? (size_t)(nl - l) : (size_t)(end - l);

		if (n && l[n - 1] == '\r')
			n--;
		*why = "has a control character in its metadata";
		if (meta_line(l, n, meta, mlen))
			return GC_STATUS_ERROR;
	}
	*why = "names another server";
	if (meta[META_SERVER] && (mlen[META_SERVER] != strlen(server) ||
				  strncmp(meta[META_SERVER], server, mlen[META_SERVER])))
		return GC_STATUS_ERROR;
	if (meta[META_KIND] && mlen[META_KIND])
		out->kind = strndup(meta[META_KIND], mlen[META_KIND]);
	else
		out->kind = strdup("api-key");	/* a hand-made entry: the default kind */
	out->server = strdup(server);
	out->username = strndup(or_empty(meta[META_USERNAME]), mlen[META_USERNAME]);
	out->organization = strndup(or_empty(meta[META_ORGANIZATION]), mlen[META_ORGANIZATION]);
	out->secret = strndup(text, slen);
	if (!out->kind || !out->server || !out->username || !out->organization || !out->secret) {
		*why = "cannot be held: out of memory";
		return GC_STATUS_ERROR;
	}
	*why = "has an unknown kind";
	return kind_valid(out->kind) ? GC_STATUS_SUCCESS : GC_STATUS_ERROR;
}

static void credential_clear(struct gc_credential *c)
{
	free(c->server);
	free(c->kind);
	free(c->username);
	free(c->organization);
	if (c->secret)
		secret_free(c->secret, strlen(c->secret));
	memset(c, 0, sizeof(*c));
}

/* ---- decrypting ----------------------------------------------------------- */

/* what gpg's status lines said */
struct gpg_status {
	int okay;		/* DECRYPTION_OKAY */
	int no_seckey;		/* NO_SECKEY */
	unsigned int error;	/* of the last ERROR or FAILURE line, code part */
	long pinentry;		/* pid of PINENTRY_LAUNCHED */
};

static void parse_status(const char *text, struct gpg_status *st)
{
	static const char tag[] = "[GNUPG:] ";
	size_t len;

	memset(st, 0, sizeof(*st));
	for (const char *l = text; l && *l; l = next_line(l)) {
		if (strncmp(l, tag, sizeof(tag) - 1))
			continue;
		l += sizeof(tag) - 1;
		if (field_is(l, 1, ' ', "DECRYPTION_OKAY"))
			st->okay = 1;
		else if (field_is(l, 1, ' ', "NO_SECKEY"))
			st->no_seckey = 1;
		else if (field_is(l, 1, ' ', "PINENTRY_LAUNCHED"))
			st->pinentry = strtol(field(l, 2, ' ', &len), NULL, 10);
		else if (field_is(l, 1, ' ', "ERROR") || field_is(l, 1, ' ', "FAILURE"))
			st->error = (unsigned int)strtoul(field(l, 3, ' ', &len), NULL, 10) & 0xffffu;
	}
}

/*
 * gpg-agent (2.2) keeps its pinentry open after the client that asked is
 * gone, where it would catch the next keystrokes on that terminal; a
 * prompt not answered in time is to be dismissed.  SIGTERM it: ncurses and
 * GTK end cleanly on it, restoring the terminal.  Only a process that still
 * calls itself a pinentry: its pid came from gpg's status output.
 */
static void dismiss_pinentry(long pid)
{
	char path[64], comm[32] = "";
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
	if (pid <= 1 || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return;
	n = read(fd, comm, sizeof(comm) - 1);
	close(fd);
	comm[n > 0 ? n : 0] = '\0';
	if (!strstr(comm, "pinentry"))
		return;
	svc->debug("pass: dismissing pinentry %ld", pid);
	kill((pid_t)pid, SIGTERM);
}

enum dec { DEC_OK, DEC_LOCKED, DEC_PROMPT_TIMEOUT, DEC_TIMEOUT, DEC_NOAGENT, DEC_NOSECKEY,
	   DEC_TOOBIG, DEC_FAILED };

static enum dec judge(const struct gc_run *c, const struct gpg_status *st)
{
	if (c->timed_out) {
		if (st->pinentry)
			dismiss_pinentry(st->pinentry);
		/* without a pinentry of its own it may wait for another's */
		return st->pinentry || svc->interactive ? DEC_PROMPT_TIMEOUT : DEC_TIMEOUT;
	}
	if (c->exit_code == 0 && st->okay && !c->truncated)
		return DEC_OK;
	switch (st->error) {
	case GPGERR_NO_AGENT:
		return DEC_NOAGENT;
	case GPGERR_NO_PIN_ENTRY: case GPGERR_CANCELED: case GPGERR_FULLY_CANCELED:
	case GPGERR_BAD_PASSPHRASE: case GPGERR_TIMEOUT:
		return DEC_LOCKED;
	}
	if (st->no_seckey)
		return DEC_NOSECKEY;
	return c->truncated ? DEC_TOOBIG : DEC_FAILED;
}

/* decrypt file (of the store) into *plain (a secret: buf_free it) */
static enum dec decrypt(const char *file, struct buf *plain)
{
	const char *argv[MAX_WORDS + 12];
	struct gc_run c;
	struct gpg_status st;
	size_t k = 0;
	enum dec d;

	argv[k++] = conf.gpg;
	for (size_t i = 0; conf.opts[i]; i++)
		argv[k++] = conf.opts[i];
	argv[k++] = "--batch";
	argv[k++] = "--no-tty";
	argv[k++] = "--status-fd=3";
	/* ask: a person is there; error: fail at once instead of any prompt */
	argv[k++] = svc->interactive ? "--pinentry-mode=ask" : "--pinentry-mode=error";
	argv[k++] = "--decrypt";
	argv[k++] = "--";
	argv[k++] = file;
	argv[k] = NULL;
	if (run(argv, 0, NULL, 0, &c) != GC_STATUS_SUCCESS) {
		d = DEC_FAILED;
	} else {
		parse_status(c.fd3, &st);
		d = judge(&c, &st);
	}
	if (d == DEC_OK) {
		/* the plain text is ours now: buf_free() wipes it */
		plain->p = c.output;
		plain->len = plain->cap = c.output_len;
		c.output = NULL;
		c.output_len = 0;
	}
	svc->run_release(&c);
	return d;
}

/* the one line for a failed decrypt of entry; its status */
static int decrypt_failed(enum dec d, const char *entry)
{
	switch (d) {
	case DEC_LOCKED:
		return fail(GC_STATUS_LOCKED, "the gpg key of the password store needs its passphrase "
			    "to read '%s'; " LOCKED_HINT, shown(entry));
	case DEC_PROMPT_TIMEOUT:
		return fail(GC_STATUS_LOCKED, "no passphrase for the gpg key of the password store "
			    "was given within %ld seconds; try again and answer the pinentry prompt",
			    timeout_s());
	case DEC_TIMEOUT:
		return fail(GC_STATUS_ERROR, "gpg did not decrypt '%s' within %ld seconds; "
			    AGENT_HINT, shown(entry), timeout_s());
	case DEC_NOAGENT:
		return fail(GC_STATUS_UNAVAILABLE, "cannot reach gpg-agent for the password store; "
			    AGENT_HINT);
	case DEC_NOSECKEY:
		return fail(GC_STATUS_UNAVAILABLE, "'%s' in the password store is encrypted for a gpg "
			    "key you do not have; run 'galileo-credential login' again", shown(entry));
	case DEC_TOOBIG:
		return fail(GC_STATUS_ERROR, "'%s' in the password store is over %d bytes; it is not "
			    "a galileo-credential entry", shown(entry), ENTRY_MAX);
	default:
		return fail(GC_STATUS_ERROR, "gpg cannot decrypt '%s'; run 'gpg --decrypt %s/%s.gpg "
			    ">/dev/null' to see why", shown(entry), shown(conf.dir), shown(entry));
	}
}

/* ---- running pass ------------------------------------------------------------ */

/* pass with up to three arguments; its exit status, -1 when killed or not run */
static int run_pass(const char *a, const char *b, const char *c, const char *d,
		    const char *input, size_t input_len)
{
	const char *argv[] = { conf.pass, a, b, c, d, NULL };
	struct gc_run ch;
	int code = -1;

	if (run(argv, 1, input, input_len, &ch) == GC_STATUS_SUCCESS) {
		code = ch.exit_code;
		if (ch.timed_out)
			svc->debug("pass: pass %s killed after %ld seconds", a, timeout_s());
	}
	svc->run_release(&ch);
	return code;
}

/*
 * Remove a temporary entry after a failed store: through pass while there
 * is time (so a git store records it), else by unlink(2) at once.
 */
static void remove_temp(const char *tmp)
{
	char *file = store_path(tmp, ".gpg");

	if (!file)
		return;
	if (is_regular(file) && ms_left() > 1000)
		run_pass("rm", "-f", tmp, NULL, NULL, 0);
	if (is_regular(file) && unlink(file))
		svc->debug("pass: cannot remove '%s': %s", shown(file), strerror(errno));
	free(file);
}

/* write text as entry tmp and read it back; SUCCESS only when it is exactly text */
static int write_temp(const char *tmp, const char *text, size_t len)
{
	char *file = store_path(tmp, ".gpg");
	struct buf back = { 0 };
	enum dec d;
	int code, ret;

	if (!file)
		return oom();
	code = run_pass("insert", "--multiline", "--force", tmp, text, len);
	if (code != 0 || !is_regular(file)) {
		free(file);
		if (ms_left() <= 0)
			return fail(GC_STATUS_ERROR, "pass did not store within %ld seconds; the old "
				    "credential is kept", timeout_s());
		return fail(GC_STATUS_ERROR, "pass could not write to the password store '%s'; "
			    "the old credential is kept (run with GALILEO_CREDENTIAL_DEBUG=1 to see "
			    "why)", shown(conf.dir));
	}
	d = decrypt(file, &back);
	free(file);
	if (d != DEC_OK)
		return decrypt_failed(d, tmp);
	ret = back.len == len && memcmp(back.p, text, len) == 0 ? GC_STATUS_SUCCESS :
		fail(GC_STATUS_ERROR, "the password store did not read back what was written; "
		     "the old credential is kept");
	buf_free(&back);
	return ret;
}

/* rename tmp over entry: rename(2) inside one directory, so readers see old or new */
static int move_into_place(const char *tmp, const char *entry)
{
	char *from = store_path(tmp, ".gpg"), *to = store_path(entry, ".gpg");
	int ret = GC_STATUS_SUCCESS;

	if (!from || !to)
		ret = oom();
	else if (run_pass("mv", "-f", tmp, entry, NULL, 0) != 0 || is_regular(from) ||
		 !is_regular(to))
		ret = fail(GC_STATUS_ERROR, "pass could not move the new entry into place as '%s'; "
			   "the old credential is kept", shown(entry));
	free(from);
	free(to);
	return ret;
}

/* ---- the operations ---------------------------------------------------------- */

static int ps_open(void)
{
	op_begin();
	return reach(REACH_KEYS);
}

/* "PREFIX/NAME" and its file for server; both new */
static int locate(const char *server, char **entry, char **file)
{
	*file = NULL;
	if (!(*entry = entry_of(server)))
		return fail(GC_STATUS_ERROR, "the server URL '%s' is too long for a pass entry name",
			    shown(server));
	if (!(*file = store_path(*entry, ".gpg"))) {
		free(*entry);
		return oom();
	}
	return GC_STATUS_SUCCESS;
}

static int ps_get(const char *server, struct gc_credential *out)
{
	char *entry, *file;
	struct buf plain = { 0 };
	const char *why;
	enum dec d;
	int ret;

	op_begin();
	memset(out, 0, sizeof(*out));
	if ((ret = reach(REACH_STORE)) || (ret = locate(server, &entry, &file)))
		return ret;
	/* nothing stored needs no key: a locked key does not hide a later backend */
	if (!is_regular(file))
		ret = GC_STATUS_NOTFOUND;
	else if ((ret = trust_path(file, 0)) == GC_STATUS_SUCCESS &&
		 (ret = reach(REACH_KEYS)) == GC_STATUS_SUCCESS &&
		 (d = decrypt(file, &plain)) != DEC_OK)
		ret = !is_regular(file) ? GC_STATUS_NOTFOUND : decrypt_failed(d, entry);
	if (ret == GC_STATUS_SUCCESS && parse_entry(plain.p, plain.len, server, out, &why)) {
		credential_clear(out);
		ret = fail(GC_STATUS_ERROR, "'%s' in the password store %s; run 'galileo-credential "
			   "login' again", shown(entry), why);
	}
	buf_free(&plain);
	free(entry);
	free(file);
	return ret;
}

static int ps_store(const struct gc_credential *cred)
{
	char *text = NULL, *entry = NULL, *file = NULL, *tmp = NULL;
	size_t len = 0;
	int ret;

	op_begin();
	if (!cred->server || strncmp(cred->server, "http", 4))
		return fail(GC_STATUS_ERROR, "pass: refusing to store a credential without a server");
	if ((ret = reach(REACH_KEYS)) || (ret = locate(cred->server, &entry, &file)) ||
	    (ret = entry_text(cred, &text, &len)))
		goto out;
	if (!(tmp = temp_entry())) {
		ret = oom();
		goto out;
	}
	ret = write_temp(tmp, text, len);
	if (ret == GC_STATUS_SUCCESS)
		ret = move_into_place(tmp, entry);
	if (ret != GC_STATUS_SUCCESS)
		remove_temp(tmp);
out:
	secret_free(text, len);
	free(tmp);
	free(entry);
	free(file);
	return ret;
}

/* removing needs neither the key nor the agent: logout works on a locked key */
static int ps_erase(const char *server)
{
	char *entry, *file;
	struct stat st;
	int ret;

	op_begin();
	if ((ret = reach(REACH_CONF)))
		return ret;
	if (stat(conf.dir, &st) || !S_ISDIR(st.st_mode))
		return GC_STATUS_SUCCESS;	/* no store: nothing stored */
	if ((ret = trust_store()) || (ret = locate(server, &entry, &file)))
		return ret;
	if (is_regular(file) && !conf.pass && !(conf.pass = find_program("pass"))) {
		ret = fail(GC_STATUS_UNAVAILABLE, "the 'pass' program is not installed; "
			   "install it (Debian: apt install pass)");
	} else if (is_regular(file)) {
		/* pass rm exits 0 whatever rm did: the file tells */
		run_pass("rm", "-f", entry, NULL, NULL, 0);
		if (is_regular(file))
			ret = fail(GC_STATUS_ERROR, "pass could not remove '%s' from the password "
				   "store '%s'", shown(entry), shown(conf.dir));
	}
	free(entry);
	free(file);
	return ret;
}

static int by_server(const void *a, const void *b)
{
	return strcmp(((const struct gc_credential *)a)->server,
		      ((const struct gc_credential *)b)->server);
}

/* one more slot in *list (no secrets in it yet: realloc may move it) */
static int grow(struct gc_credential **list, size_t n, size_t *cap)
{
	struct gc_credential *bigger;

	if (n < *cap)
		return 0;
	*cap = *cap ? *cap * 2 : 8;
	if (!(bigger = realloc(*list, *cap * sizeof(**list))))
		return -1;
	*list = bigger;
	memset(*list + n, 0, (*cap - n) * sizeof(**list));
	return 0;
}

/* the servers of the entries in the prefix directory into list[]; names decide */
static int collect(struct gc_credential **list, size_t *n)
{
	char *dir_path = store_path(conf.prefix, "");
	DIR *dir = dir_path ? opendir(dir_path) : NULL;
	struct dirent *de;
	size_t cap = 0;
	int ret = GC_STATUS_SUCCESS;

	*n = 0;
	free(dir_path);
	if (!dir)
		return errno == ENOENT || errno == ENOTDIR ? GC_STATUS_SUCCESS :
			fail(GC_STATUS_ERROR, "cannot read the password store '%s': %s",
			     shown(conf.dir), strerror(errno));
	while (!ret && (de = readdir(dir)) && *n < MAX_ENTRIES) {
		size_t len = strlen(de->d_name);
		char *server;

		if (len < 5 || strcmp(de->d_name + len - 4, ".gpg") ||
		    !(server = decode_name(de->d_name, len - 4)))
			continue;
		if (grow(list, *n, &cap)) {
			free(server);
			ret = oom();
		} else {
			(*list)[(*n)++].server = server;
		}
	}
	closedir(dir);
	if (*n)
		qsort(*list, *n, sizeof(**list), by_server);
	return ret;
}

/*
 * The metadata lives inside the encrypted entry (pass style, where `pass
 * show` and browser extensions look for it), so each entry is decrypted.
 * An entry that cannot be read still lists its server, metadata "".
 */
static int fill(struct gc_credential *c)
{
	struct gc_credential got = { 0 };
	char *entry = NULL, *file = NULL;
	struct buf plain = { 0 };
	const char *why;
	int ret = locate(c->server, &entry, &file);
	enum dec d;

	if (ret == GC_STATUS_SUCCESS)
		ret = trust_path(file, 0);
	d = ret ? DEC_FAILED : decrypt(file, &plain);

	if (ret == GC_STATUS_SUCCESS && d == DEC_OK &&
	    parse_entry(plain.p, plain.len, c->server, &got, &why) == GC_STATUS_SUCCESS) {
		c->kind = got.kind;
		c->username = got.username;
		c->organization = got.organization;
		got.kind = got.username = got.organization = NULL;
	} else if (ret == GC_STATUS_SUCCESS && (d == DEC_LOCKED || d == DEC_PROMPT_TIMEOUT ||
						d == DEC_TIMEOUT || d == DEC_NOAGENT)) {
		ret = decrypt_failed(d, entry);
	} else {
		svc->debug("pass: cannot read the metadata of '%s'", shown(entry));
	}
	credential_clear(&got);
	buf_free(&plain);
	free(entry);
	free(file);
	if (ret == GC_STATUS_SUCCESS && !c->kind) {
		c->kind = strdup("");
		c->username = strdup("");
		c->organization = strdup("");
	}
	return ret != GC_STATUS_SUCCESS ? ret : c->kind && c->username && c->organization ?
		GC_STATUS_SUCCESS : oom();
}

static void list_free(struct gc_credential *list, size_t n)
{
	for (size_t i = 0; list && i < n; i++)
		credential_clear(&list[i]);
	free(list);
}

static int ps_list(struct gc_credential **out, size_t *n)
{
	struct gc_credential *list = NULL;
	size_t count = 0;
	int ret;

	op_begin();
	*out = NULL;
	*n = 0;
	if ((ret = reach(REACH_STORE)) || (ret = collect(&list, &count)))
		goto fail;
	if (!list && !(list = calloc(1, sizeof(*list)))) {
		ret = oom();	/* an empty list is still an allocation the caller frees */
		goto fail;
	}
	/* no entry needs no key: a locked key does not fail an empty list */
	if (count && (ret = reach(REACH_KEYS)))
		goto fail;
	for (size_t i = 0; i < count; i++)
		if ((ret = fill(&list[i])))
			goto fail;
	*out = list;
	*n = count;
	return GC_STATUS_SUCCESS;
fail:
	list_free(list, count);
	return ret;
}

/* the declared options (galileo-credential-module(7) OPTIONS) */
static const char *check_store_dir(const char *v)
{
	return v[0] == '/' || (v[0] == '~' && v[1] == '/') ? NULL : "write it as /path or ~/path";
}

static const char *check_prefix(const char *v)
{
	return prefix_valid(v) ? NULL : "use a relative path inside the password store, e.g. "
	       "'galileo-credential'";
}

static const struct gc_option pass_options[] = {
	{ "prefix", check_prefix },
	{ "store-dir", check_store_dir },
	{ NULL, NULL },
};

static const struct gc_keystore_module pass_module = {
	GC_MODULE_TABLE_HEADER,
	.name = "pass",
	/* no token_* slots: tokens are cached by the kernel tier, not in gpg files */
	.supports = GC_SUPPORTS_WRITE,
	.options = pass_options,
	.open = ps_open,
	.get = ps_get,
	.store = ps_store,
	.erase = ps_erase,
	.list = ps_list,
};

const struct gc_keystore_module *gc_keystore_module_init(const struct gc_services *services)
{
	if (!services)
		return NULL;
	if (services->interface_version != GC_MODULE_INTERFACE_VERSION) {
		if (services->error)
			services->error("keystore module 'pass' was built for module interface %d, "
					"not %u; rebuild it", GC_MODULE_INTERFACE_VERSION,
					services->interface_version);
		return NULL;
	}
	if (!GC_SERVICES_HAVE(services, run) || !GC_SERVICES_HAVE(services, run_release)) {
		if (services->error)
			services->error("keystore module 'pass' needs the run service, which this "
					"galileo-credential does not have; upgrade it");
		return NULL;
	}
	svc = services;
	return &pass_module;
}
