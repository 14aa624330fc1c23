/* SPDX-License-Identifier: MIT */
/*
 * Containment of module calls (galileo-credential-module(7) CONTAINMENT):
 * a module runs as a guest in the caller's process, so while its code runs
 * the program
 *   - ends the process, exit 6 and one line naming the module, when the call
 *     runs past its timeout plus one second (a watchdog thread, which needs
 *     no cooperation from the module: it cannot block or catch anything
 *     that thread waits on);
 *   - keeps the caller's stdout out of the module's reach (fd 1 is
 *     /dev/null during the call, stdio flushed around it);
 *   - turns a crash (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT) or an exit()
 *     inside the call into exit 6 and one line naming the module.
 * Outside module calls none of this applies: the program's own crashes
 * stay what they are.  One process calls one module at a time.
 */
#ifndef GC_KEYSTORE_CONTAIN_H
#define GC_KEYSTORE_CONTAIN_H

/*
 * The docker dialect's way (errors on stdout, exit 1) for the lines of
 * contained failures; the default is stderr with the "galileo-credential: "
 * prefix and exit 6.
 */
void contain_report_on_stdout(void);

/*
 * Module code of module (a name) runs from now on, in slot ("get", "load",
 * ...), for at most timeout seconds plus one.  Calls do not nest.
 */
void contain_enter(const char *module, const char *slot, long timeout);
/* the module's code has returned */
void contain_leave(void);

/*
 * Where the current call's own waits (prompts, helper programs) must end:
 * its start plus its timeout, in runner_now_ms() time; a second before the
 * watchdog.  Outside a call: timeout seconds from now.
 */
long long contain_deadline(long timeout);

/*
 * From now on, all module calls of this process together may take at most
 * seconds (doctor: bounded in total, not only call by call).
 */
void contain_budget(long seconds);

/*
 * End the program now with the one line
 * "keystore module 'MODULE' broke the module interface in SLOT: WHAT; ..."
 * (exit 6).  For an answer that breaks the interface.
 */
__attribute__((noreturn, format(printf, 3, 4)))
void contain_breach(const char *module, const char *slot, const char *fmt, ...);

#endif
