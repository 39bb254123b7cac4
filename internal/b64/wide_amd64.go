//go:build !purego

package b64

import "golang.org/x/sys/cpu"

var haveVBMI = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VBMI

// alphabet is the standard base64 alphabet.
const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// encTables are the encoder's three vectors: for each output byte, the input byte of its group
// to take (each 32-bit lane gets bytes 1, 0, 2, 1 of its three); the bit offset of its sextet in
// that lane's 64-bit word; and the alphabet.
var encTables = func() (t [3 * 64]byte) {
	for j := 0; j < 16; j++ {
		for k, from := range [4]int{1, 0, 2, 1} {
			t[4*j+k] = byte(3*j + from)
		}
	}
	for i, shift := range [8]byte{10, 4, 22, 16, 42, 36, 54, 48} {
		for q := 0; q < 8; q++ {
			t[64+8*q+i] = shift
		}
	}
	copy(t[128:], alphabet)
	return t
}()

// encodeVBMI encodes blocks groups of 48 bytes of src into 64 bytes each of dst; src must have
// 16 more bytes readable after them.
//
//go:noescape
func encodeVBMI(dst, src *byte, blocks int, tables *byte)

// encodeWide encodes the longest prefix of src that the wide loop can take (a multiple of 48
// bytes, reading 64 at a time) and returns its length.
func encodeWide(dst, src []byte) int {
	if !haveVBMI || len(src) < 64 {
		return 0
	}
	blocks := (len(src) - 16) / 48
	encodeVBMI(&dst[0], &src[0], blocks, &encTables[0])
	return blocks * 48
}
