// Package b64 is standard, padded base64 with AVX-512 VBMI where the CPU has it. Elsewhere
// it uses github.com/segmentio/asm/base64 (AVX2), and the standard library for short inputs.
// Decoding follows the standard library's rules: padding required, line breaks skipped.
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
	if encodeWide(dst, src) == len(src) {
		return
	}
	if len(src) >= avx2EncodeMin {
		base64.StdEncoding.Encode(dst, src)
		return
	}
	stdbase64.StdEncoding.Encode(dst, src)
}

var (
	asmStrict = base64.StdEncoding.Strict()
	stdStrict = stdbase64.StdEncoding.Strict()
)

// Decode decodes src into dst, which has room for DecodedLen(len(src)) bytes, and returns
// how many bytes it wrote. dst may be src itself: decoding in place never writes over bytes
// still to be read. When decoding fails, dst holds undefined bytes (src too, in place).
func Decode(dst, src []byte) (int, error) {
	return decode(dst, src, base64.StdEncoding, stdbase64.StdEncoding, false)
}

// DecodeStrict is Decode that also rejects non-zero bits in the padding.
func DecodeStrict(dst, src []byte) (int, error) {
	return decode(dst, src, asmStrict, stdStrict, true)
}

// DecodedLen is the most bytes the decoding of n characters takes.
func DecodedLen(n int) int { return stdbase64.StdEncoding.DecodedLen(n) }

func decode(dst, src []byte, narrow *base64.Encoding, std *stdbase64.Encoding, strict bool) (int, error) {
	// The wide loop stops at a group of four characters: decoding the rest alone is decoding
	// it in place.
	read := decodeWide(dst, src)
	out, rest := dst[read/4*3:], src[read:]
	if n, ok := decodeTail(out, rest, strict); ok {
		return read/4*3 + n, nil
	}
	var n int
	var err error
	if len(rest) >= 64 {
		n, err = narrow.Decode(out, rest)
	}
	if len(rest) < 64 || err != nil {
		// Short inputs are faster here; and segmentio's errors give the offset in the part
		// its own loop left, not in the input.
		n, err = std.Decode(out, rest)
	}
	if e, ok := err.(stdbase64.CorruptInputError); ok {
		err = e + stdbase64.CorruptInputError(read)
	}
	return read/4*3 + n, err
}
