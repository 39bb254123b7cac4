package kombu

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"testing"
)

// The SIMD codec must agree with the standard library's on every input, valid or not: Kombu's
// check for a base64 body depends on which bodies decode (strictly) and to what.
func TestFastBase64MatchesStdlib(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\r\n !{\"")
	for i := 0; i < 20000; i++ {
		src := make([]byte, rng.IntN(1200))
		for j := range src {
			src[j] = byte(rng.Uint32())
		}
		enc := make([]byte, fastBase64.EncodedLen(len(src)))
		encodeBase64(enc, src)
		if want := base64.StdEncoding.EncodeToString(src); string(enc) != want {
			t.Fatalf("Encode(%x) = %s, want %s", src, enc, want)
		}
		if got := appendBase64([]byte("x"), src); string(got) != "x"+string(enc) {
			t.Fatalf("appendBase64 = %s", got)
		}
		// Corrupt a few characters of the encoding (sometimes none), then decode both ways.
		for k := rng.IntN(3); k > 0 && len(enc) > 0; k-- {
			enc[rng.IntN(len(enc))] = alphabet[rng.IntN(len(alphabet))]
		}
		for _, pair := range [][2]interface {
			Decode(dst, src []byte) (int, error)
		}{{fastBase64, base64.StdEncoding}, {strictBase64, base64.StdEncoding.Strict()}} {
			got := make([]byte, len(enc))
			want := make([]byte, len(enc))
			n1, err1 := pair[0].Decode(got, enc)
			n2, err2 := pair[1].Decode(want, enc)
			if (err1 == nil) != (err2 == nil) || (err1 == nil && !bytes.Equal(got[:n1], want[:n2])) {
				t.Fatalf("Decode(%q) = %d, %v; standard library: %d, %v", enc, n1, err1, n2, err2)
			}
		}
	}
}
