package kombu

import (
	"github.com/segmentio/asm/base64"

	"github.com/watermill-kombu/watermill-kombu/internal/b64"
)

// fastBase64 is standard base64 with SIMD decoding where the CPU has it (and the standard
// library's code elsewhere). Each Kombu message goes through base64 twice on each side (the
// envelope and its body), which made it the largest cost of encoding. Encoding goes through
// encodeBase64.
var fastBase64 = base64.StdEncoding

// encodeBase64 writes the base64 encoding of src to dst, which has its EncodedLen.
func encodeBase64(dst, src []byte) { b64.Encode(dst, src) }

// appendBase64 appends the base64 encoding of src to dst.
func appendBase64(dst, src []byte) []byte {
	n := b64.EncodedLen(len(src))
	dst = append(dst, make([]byte, n)...)
	encodeBase64(dst[len(dst)-n:], src)
	return dst
}
