/* SPDX-License-Identifier: MIT */
/*
 * Running a helper program for a module (services->run(),
 * galileo-credential-module(7) SERVICES): data on pipes, never in argv, in
 * a process group of its own that is killed at the deadline.  The pass
 * backend runs pass and gpg through it; the module checker lends it to the
 * module it checks.
 */
#ifndef GC_KEYSTORE_RUNNER_H
#define GC_KEYSTORE_RUNNER_H

#include <galileo-credential/module.h>

/* CLOCK_MONOTONIC in milliseconds, the clock of every deadline here */
long long runner_now_ms(void);

/*
 * Run r->argv as services->run() says, until deadline (runner_now_ms()
 * time) or r->timeout_ms from now, whichever comes first.  Fills the
 * result members of r (release them with runner_release()).  Returns a
 * gc_status: SUCCESS once the child ended (or was killed at the
 * deadline), UNAVAILABLE when argv[0] cannot be found or run, ERROR when
 * r is malformed or the child could not be started.
 */
int runner_run(struct gc_run *r, long long deadline);

/* wipe and free r's outputs; r may be reused */
void runner_release(struct gc_run *r);

#endif
