//go:build !amd64 || purego

package pywire

// useMasks is false without AVX2: strings are searched eight bytes at a time instead.
var useMasks = false

func specialMasks(p *byte, n int, dst *uint64) { panic("pywire: specialMasks needs AVX2") }
