//go:build unix && !linux

package demo

import "syscall"

func becomeSubreaper()                          {}
func setParentDeathSignal(*syscall.SysProcAttr) {}
func isZombie(int) bool                         { return false }

// descendants is not available without /proc: only process groups are used.
func descendants(int) []int { return nil }
func reap(int)              {}

// unmountBelow: nodes mount disk images only on Linux.
func unmountBelow(string) {}
