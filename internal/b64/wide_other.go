//go:build !amd64 || purego

package b64

const haveVBMI = false

func encodeWide(dst, src []byte) int { return 0 }

func decodeWide(dst, src []byte) int { return 0 }

func decodeTail(dst, src []byte, strict bool) (int, bool) { return 0, false }
