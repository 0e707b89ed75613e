package partition

import "runtime"

// The process's main thread (its thread group leader) is kept for the
// main goroutine, so it is never one of the threads this package taints:
// a sandbox's thread (Landlock, a private mount namespace, a partition's
// user) or a thread that becomes a partition's user to kill its processes.
//
// Two things make the leader special. What /proc/PID/status, /proc/PID/root
// and /proc/PID/mountinfo say of the whole process is the leader's: a
// leader that became a partition's user made the node itself one of that
// user's processes, which the partition's kill then SIGKILLed. And a
// goroutine that ends locked to the main thread does not end the thread,
// as it does any other: the runtime parks it, tainted, for the life of the
// process. Locking the main goroutine to its thread in init (before any
// goroutine of ours runs) keeps every other goroutine off it.
func init() {
	runtime.LockOSThread()
}
