package kombu

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
)

// newDeliveryTag returns a fresh delivery tag: a random (version 4) UUID, as Kombu's uuid4().
// A tag only has to be unique, not secret, so it comes from math/rand/v2's generator (ChaCha8,
// seeded by the OS, one per processor) instead of a read from crypto/rand: it is made for
// every message published.
func newDeliveryTag() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}
