package kombu

import (
	"encoding/base64"
	"math/rand/v2"
	"testing"
)

// appendBase64 appends what the standard library writes (internal/b64 checks its encoder and
// decoders against the standard library on every length and on corrupted input).
func TestAppendBase64(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		src := make([]byte, rng.IntN(1200))
		for j := range src {
			src[j] = byte(rng.Uint32())
		}
		if got, want := appendBase64([]byte("x"), src), "x"+base64.StdEncoding.EncodeToString(src); string(got) != want {
			t.Fatalf("appendBase64(%x) = %s, want %s", src, got, want)
		}
	}
}
