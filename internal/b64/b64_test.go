package b64

import (
	"encoding/base64"
	"math/rand/v2"
	"testing"
)

// Encode writes what the standard library writes, for every length around the wide loop's
// blocks and for random bytes.
func TestEncodeMatchesStdlib(t *testing.T) {
	if !haveVBMI {
		t.Log("no AVX-512 VBMI here: only the narrow encoders are checked")
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for n := 0; n < 1200; n++ {
		for round := 0; round < 3; round++ {
			src := make([]byte, n)
			for i := range src {
				src[i] = byte(rng.Uint32())
			}
			dst := make([]byte, EncodedLen(n))
			Encode(dst, src)
			if want := base64.StdEncoding.EncodeToString(src); string(dst) != want {
				t.Fatalf("Encode of %d bytes = %s, want %s", n, dst, want)
			}
		}
	}
}

// BenchmarkEncode encodes the size of a Celery task's envelope JSON.
func BenchmarkEncode(b *testing.B) {
	src := make([]byte, 947)
	dst := make([]byte, EncodedLen(len(src)))
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		Encode(dst, src)
	}
}
