package cluster

import "syscall"

// taskProcAttr puts a task in a session (and process group) of its own: a
// Ctrl-C on the terminal reaches the supervisor only, which forwards it
// once to every task, and a task stopped by job control cannot take its
// peers down with it (see the distributed-runtime notes). Pdeathsig asks
// Linux to send SIGTERM to the task if the supervisor dies, even by
// SIGKILL: a task left alone would wait for its peers' collectives.
func taskProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGTERM}
}
