//go:build !purego

package pywire

import "golang.org/x/sys/cpu"

// useMasks selects the scanner's string search by masks of 64-byte blocks, computed with AVX2.
var useMasks = cpu.X86.HasAVX2

// specialMasks sets, for each 64-byte block of p[:n] (n a multiple of 64), the bits of the
// block's word in dst for its bytes that are '"', '\\' or below 0x20.
//
//go:noescape
func specialMasks(p *byte, n int, dst *uint64)
