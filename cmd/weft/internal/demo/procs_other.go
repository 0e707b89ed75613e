//go:build !unix

package demo

import (
	"errors"
	"os/exec"
	"syscall"
)

func supported() error                { return errors.New("demo: weft demo needs a Unix system") }
func isolate(*exec.Cmd)               {}
func signalGroup(int, syscall.Signal) {}
func alive(int) bool                  { return false }
func becomeSubreaper()                {}
func descendants(int) []int           { return nil }
func reap(int)                        {}

// unmountBelow: nodes mount disk images only on Linux.
func unmountBelow(string) {}
