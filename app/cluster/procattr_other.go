//go:build unix && !linux

package cluster

import "syscall"

// taskProcAttr puts a task in a session (and process group) of its own: a
// Ctrl-C on the terminal reaches the supervisor only, which forwards it
// once to every task. Outside Linux there is no Pdeathsig: tasks outlive a
// supervisor killed by SIGKILL.
func taskProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setsid: true}
}
