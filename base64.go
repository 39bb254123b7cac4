package kombu

import (
	stdbase64 "encoding/base64"

	"github.com/segmentio/asm/base64"
)

// fastBase64 is standard base64 with SIMD encoding and decoding where the CPU has it (and the
// standard library's code elsewhere). Each Kombu message goes through base64 twice on each
// side (the envelope and its body), which made it the largest cost of encoding.
var fastBase64 = base64.StdEncoding

// simdEncodeMin is the input size from which the SIMD encoder is faster: its first block
// costs a fixed ~120 ns, which the standard library's loop only reaches at some 250 bytes
// (a Celery task's body is far smaller than that, its envelope far larger).
const simdEncodeMin = 256

// encodeBase64 writes the base64 encoding of src to dst, which has its EncodedLen.
func encodeBase64(dst, src []byte) {
	if len(src) < simdEncodeMin {
		stdbase64.StdEncoding.Encode(dst, src)
		return
	}
	fastBase64.Encode(dst, src)
}

// appendBase64 appends the base64 encoding of src to dst.
func appendBase64(dst, src []byte) []byte {
	n := fastBase64.EncodedLen(len(src))
	dst = append(dst, make([]byte, n)...)
	encodeBase64(dst[len(dst)-n:], src)
	return dst
}
