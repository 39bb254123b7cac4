//go:build !purego

package b64

import "golang.org/x/sys/cpu"

// haveVBMI selects the 512-bit loops. VBMI came with Ice Lake and Zen 4, whose cores do not
// slow down for such short runs of light 512-bit instructions as the older AVX-512 ones did.
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

// encodeWide encodes all of src into dst and returns len(src), or does nothing and returns 0
// without VBMI. The last bytes (those the loop cannot read 64 at a time) go through the loop
// from a copy padded with zeros; the padding characters are then written over.
func encodeWide(dst, src []byte) int {
	if !haveVBMI || len(src) == 0 {
		return 0
	}
	blocks := 0
	if len(src) >= 64 {
		blocks = (len(src) - 16) / 48
		encodeVBMI(&dst[0], &src[0], blocks, &encTables[0])
	}
	rest := src[blocks*48:]
	if len(rest) == 0 {
		return len(src)
	}
	var in [2*48 + 16]byte
	var out [2 * 64]byte
	copy(in[:], rest)
	encodeVBMI(&out[0], &in[0], (len(rest)+47)/48, &encTables[0])
	tail := dst[blocks*64:]
	full := len(rest) / 3 * 4
	switch len(rest) % 3 {
	case 0:
		copy(tail, out[:full])
	case 1:
		copy(tail, out[:full+2])
		tail[full+2], tail[full+3] = '=', '='
	case 2:
		copy(tail, out[:full+3])
		tail[full+3] = '='
	}
	return len(src)
}

// decTables are the decoder's vectors: the sextet of each ASCII character in two halves (0x80
// for characters outside the alphabet); the multipliers that join two sextets into 12 bits and
// two of those into 24; and, for each output byte, the byte of its 32-bit lane to take.
var decTables = func() (t [5 * 64]byte) {
	for i := range 128 {
		t[i] = 0x80
	}
	for v, c := range []byte(alphabet) {
		t[c] = byte(v)
	}
	for i := 0; i < 64; i += 4 {
		t[128+i], t[128+i+1], t[128+i+2], t[128+i+3] = 0x40, 0x01, 0x40, 0x01
		t[192+i], t[192+i+1], t[192+i+2], t[192+i+3] = 0x00, 0x10, 0x01, 0x00
	}
	for j := 0; j < 16; j++ {
		t[256+3*j], t[256+3*j+1], t[256+3*j+2] = byte(4*j+2), byte(4*j+1), byte(4*j)
	}
	return t
}()

// decodeVBMI decodes up to blocks groups of 64 characters of src into 48 bytes each of dst,
// stopping before the first group that holds a character outside the alphabet (padding,
// line breaks, anything invalid); it returns the groups it decoded.
//
//go:noescape
func decodeVBMI(dst, src *byte, blocks int, tables *byte) int

// decodeWide decodes the longest prefix of src that the wide loop can take (whole groups of
// 64 alphabet characters) into dst and returns the characters it read; dst has room for the
// decoding of all of src.
func decodeWide(dst, src []byte) int {
	if !haveVBMI || len(src) < 64 {
		return 0
	}
	blocks := min(len(src)/64, len(dst)/48)
	if blocks == 0 {
		return 0
	}
	return decodeVBMI(&dst[0], &src[0], blocks, &decTables[0]) * 64
}

// fillA is what decodeTail pads with: 'A' is a zero sextet.
var fillA = func() (a [64]byte) {
	for i := range a {
		a[i] = 'A'
	}
	return a
}()

// decodeTail decodes src, under 64 characters, through the wide loop from a copy padded with
// 'A'. It only takes what it can decode exactly as the standard library would: whole groups
// of four, at most two '=' at the end, nothing else outside the alphabet, and when strict,
// no bits set in the padding. ok is false for anything else, left to the standard library.
func decodeTail(dst, src []byte, strict bool) (n int, ok bool) {
	if !haveVBMI || len(src) == 0 || len(src) >= 64 || len(src)%4 != 0 {
		return 0, false
	}
	pad := 0
	if src[len(src)-1] == '=' {
		pad++
		if src[len(src)-2] == '=' {
			pad++
		}
	}
	chars := src[:len(src)-pad]
	if strict && pad > 0 {
		// The bits of the last character that the padding drops must be zero.
		if last := decTables[chars[len(chars)-1]&0x7F]; pad == 1 && last&3 != 0 || pad == 2 && last&15 != 0 {
			return 0, false
		}
	}
	in := fillA
	copy(in[:], chars)
	var out [64]byte
	if decodeVBMI(&out[0], &in[0], 1, &decTables[0]) != 1 {
		return 0, false
	}
	n = len(src)/4*3 - pad
	copy(dst, out[:n])
	return n, true
}
