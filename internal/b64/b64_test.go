package b64

import (
	"bytes"
	"encoding/base64"
	"fmt"
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

// Decode and DecodeStrict agree with the standard library on every input, valid or not, and
// on where the first bad character is: random bytes encoded, then some characters replaced
// by others, padding, line breaks or bytes outside ASCII.
func TestDecodeMatchesStdlib(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	noise := []byte("AZaz09+/=\r\n !{\"\x80\xff")
	for i := 0; i < 30000; i++ {
		src := make([]byte, rng.IntN(700))
		for j := range src {
			src[j] = byte(rng.Uint32())
		}
		enc := []byte(base64.StdEncoding.EncodeToString(src))
		for k := rng.IntN(3); k > 0 && len(enc) > 0; k-- {
			enc[rng.IntN(len(enc))] = noise[rng.IntN(len(noise))]
		}
		for _, c := range []struct {
			decode func(dst, src []byte) (int, error)
			std    *base64.Encoding
		}{{Decode, base64.StdEncoding}, {DecodeStrict, base64.StdEncoding.Strict()}} {
			got := make([]byte, DecodedLen(len(enc)))
			want := make([]byte, DecodedLen(len(enc)))
			n1, err1 := c.decode(got, enc)
			n2, err2 := c.std.Decode(want, enc)
			if (err1 == nil) != (err2 == nil) || (err1 == nil && !bytes.Equal(got[:n1], want[:n2])) {
				t.Fatalf("Decode(%q) = %d, %v; standard library: %d, %v", enc, n1, err1, n2, err2)
			}
			if err1 != nil && err1.Error() != err2.Error() {
				t.Fatalf("Decode(%q): %v; standard library: %v", enc, err1, err2)
			}
		}
	}
}

// Every short input's last character before its padding, set to each character of the
// alphabet: the strict decoder rejects bits in the padding exactly as the standard library's.
func TestDecodePaddingBits(t *testing.T) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for n := 1; n < 100; n++ {
		enc := []byte(base64.StdEncoding.EncodeToString(make([]byte, n)))
		last := len(enc) - 1
		for last >= 0 && enc[last] == '=' {
			last--
		}
		for _, c := range []byte(alphabet) {
			enc[last] = c
			for _, strict := range []bool{false, true} {
				decode, std := Decode, base64.StdEncoding
				if strict {
					decode, std = DecodeStrict, base64.StdEncoding.Strict()
				}
				got, want := make([]byte, n+3), make([]byte, n+3)
				n1, err1 := decode(got, enc)
				n2, err2 := std.Decode(want, enc)
				if fmt.Sprint(err1) != fmt.Sprint(err2) || !bytes.Equal(got[:n1], want[:n2]) {
					t.Fatalf("strict %v, %q: %d, %v; standard library: %d, %v", strict, enc, n1, err1, n2, err2)
				}
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

// BenchmarkDecode decodes a Celery task's envelope as SQS carries it.
func BenchmarkDecode(b *testing.B) {
	src := []byte(base64.StdEncoding.EncodeToString(make([]byte, 947)))
	dst := make([]byte, DecodedLen(len(src)))
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		if _, err := DecodeStrict(dst, src); err != nil {
			b.Fatal(err)
		}
	}
}

// Decode and DecodeStrict may decode in place, dst and src starting at the same byte: the
// bytes written never overtake those still to be read.
func TestDecodeInPlace(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for n := 0; n < 1200; n++ {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(rng.Uint32())
		}
		for _, decode := range []func(dst, src []byte) (int, error){Decode, DecodeStrict} {
			buf := []byte(base64.StdEncoding.EncodeToString(src))
			got, err := decode(buf, buf)
			if err != nil || !bytes.Equal(buf[:got], src) {
				t.Fatalf("decoding %d bytes in place: %v, %x; want %x", n, err, buf[:got], src)
			}
		}
	}
}
