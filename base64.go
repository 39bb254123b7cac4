package kombu

import "github.com/segmentio/asm/base64"

// fastBase64 is standard base64 with SIMD encoding and decoding where the CPU has it (and the
// standard library's code elsewhere). Each Kombu message goes through base64 twice on each
// side (the envelope and its body), which made it the largest cost of encoding.
var fastBase64 = base64.StdEncoding

// appendBase64 appends the base64 encoding of src to dst.
func appendBase64(dst, src []byte) []byte {
	n := fastBase64.EncodedLen(len(src))
	dst = append(dst, make([]byte, n)...)
	fastBase64.Encode(dst[len(dst)-n:], src)
	return dst
}
