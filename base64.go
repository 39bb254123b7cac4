package kombu

import (
	"errors"

	"github.com/watermill-kombu/watermill-kombu/internal/b64"
)

// Each Kombu message goes through base64 twice on each side (the envelope and its body):
// internal/b64 does it with SIMD where the CPU has it.

// appendBase64 appends the base64 encoding of src to dst.
func appendBase64(dst, src []byte) []byte {
	n := b64.EncodedLen(len(src))
	dst = append(dst, make([]byte, n)...)
	b64.Encode(dst[len(dst)-n:], src)
	return dst
}

// Errors of decodeBase64Python, worded as Python's.
var (
	errBase64Padding    = errors.New("incorrect padding")
	errBase64OneTooMany = errors.New("invalid base64: the number of data characters cannot be 1 more than a multiple of 4")
)

// decodeBase64Python decodes base64 as Kombu does, with Python's base64.b64decode (binascii's
// a2b_base64, not strict): characters outside the alphabet are skipped, and a padding that
// completes a group of four ends the data, whatever follows. It is the decoder for bodies that
// the standard decoder refuses, so it goes a byte at a time.
func decodeBase64Python(src []byte) ([]byte, error) {
	out := make([]byte, 0, len(src)/4*3+3)
	var pos, pads int // characters of the current group of four; '=' seen since its last one
	var left byte     // the bits of the group not yet written
	for _, c := range src {
		if c == '=' {
			pads++
			if pos >= 2 && pos+pads >= 4 {
				return out, nil
			}
			continue
		}
		v := b64Value(c)
		if v < 0 {
			continue
		}
		pads = 0
		switch pos {
		case 0:
			left = byte(v)
		case 1:
			out = append(out, left<<2|byte(v)>>4)
			left = byte(v) & 0x0f
		case 2:
			out = append(out, left<<4|byte(v)>>2)
			left = byte(v) & 0x03
		case 3:
			out = append(out, left<<6|byte(v))
		}
		pos = (pos + 1) % 4
	}
	switch pos {
	case 0:
		return out, nil
	case 1:
		return nil, errBase64OneTooMany
	}
	return nil, errBase64Padding
}

// b64Value is the sextet of a standard base64 character, or -1.
func b64Value(c byte) int {
	switch {
	case c >= 'A' && c <= 'Z':
		return int(c - 'A')
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 26
	case c >= '0' && c <= '9':
		return int(c-'0') + 52
	case c == '+':
		return 62
	case c == '/':
		return 63
	}
	return -1
}
