//go:build !linux

package redisproc

import "os/exec"

// DieWithParent does nothing where the kernel cannot tie a child's life
// to its parent's; the load tests kill their children when they end.
func DieWithParent(*exec.Cmd) {}
