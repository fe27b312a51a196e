//go:build !unix

package main

import "time"

// cpuTime returns 0: the CPU column is left empty on this system.
func cpuTime() time.Duration { return 0 }
