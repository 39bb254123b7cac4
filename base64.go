package kombu

import "github.com/watermill-kombu/watermill-kombu/internal/b64"

// Each Kombu message goes through base64 twice on each side (the envelope and its body):
// internal/b64 does it with SIMD where the CPU has it.

// appendBase64 appends the base64 encoding of src to dst.
func appendBase64(dst, src []byte) []byte {
	n := b64.EncodedLen(len(src))
	dst = append(dst, make([]byte, n)...)
	b64.Encode(dst[len(dst)-n:], src)
	return dst
}
