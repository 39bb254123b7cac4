// Package b64 is standard, padded base64 encoding with AVX-512 VBMI where the CPU has it.
// Elsewhere it uses github.com/segmentio/asm/base64 (AVX2) for long inputs and the standard
// library for short ones.
package b64

import (
	stdbase64 "encoding/base64"

	"github.com/segmentio/asm/base64"
)

// avx2EncodeMin is the input size from which segmentio's AVX2 encoder is faster than the
// standard library's: each call costs it a fixed ~120 ns on this project's machines, which
// the standard library's loop only reaches at some 250 bytes.
const avx2EncodeMin = 256

// EncodedLen is the length of the encoding of n bytes.
func EncodedLen(n int) int { return stdbase64.StdEncoding.EncodedLen(n) }

// Encode writes the base64 encoding of src to dst, which has its EncodedLen.
func Encode(dst, src []byte) {
	if n := encodeWide(dst, src); n > 0 {
		// The rest, under 64 bytes, in the standard library's loop.
		dst, src = dst[n/3*4:], src[n:]
	} else if len(src) >= avx2EncodeMin {
		base64.StdEncoding.Encode(dst, src)
		return
	}
	stdbase64.StdEncoding.Encode(dst, src)
}
