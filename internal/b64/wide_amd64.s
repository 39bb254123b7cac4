//go:build !purego

#include "textflag.h"

// func encodeVBMI(dst, src *byte, blocks int, tables *byte)
TEXT ·encodeVBMI(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ blocks+16(FP), CX
	MOVQ tables+24(FP), AX
	VMOVDQU64 (AX), Z1    // which input byte each output byte starts from
	VMOVDQU64 64(AX), Z2  // the bit offset of each sextet in its 64-bit word
	VMOVDQU64 128(AX), Z3 // the alphabet

loop:
	TESTQ CX, CX
	JZ    done
	VMOVDQU64      (SI), Z4
	VPERMB         Z4, Z1, Z5
	VPMULTISHIFTQB Z5, Z2, Z5
	VPERMB         Z3, Z5, Z5
	VMOVDQU64      Z5, (DI)
	ADDQ $48, SI
	ADDQ $64, DI
	DECQ CX
	JMP  loop

done:
	VZEROUPPER
	RET

// func decodeVBMI(dst, src *byte, blocks int, tables *byte) int
//
// Decodes up to blocks groups of 64 characters of src into 48 bytes each of dst, stopping
// before the first group holding a character outside the alphabet; returns the groups done.
TEXT ·decodeVBMI(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ blocks+16(FP), CX
	MOVQ tables+24(FP), AX
	VMOVDQU64 (AX), Z1     // sextet of ASCII 0-63, 0x80 when not in the alphabet
	VMOVDQU64 64(AX), Z2   // ASCII 64-127
	VMOVDQU64 128(AX), Z3  // pairs of sextets into 12 bits: 0x40, 0x01
	VMOVDQU64 192(AX), Z8  // pairs of 12 bits into 24: 0x1000, 0x0001
	VMOVDQU64 256(AX), Z9  // the three bytes of each 32-bit lane, high first
	MOVQ $0x0000FFFFFFFFFFFF, R8
	KMOVQ R8, K1
	XORQ BX, BX

loop:
	CMPQ BX, CX
	JEQ  done
	VMOVDQU64  (SI), Z4
	VMOVDQA64  Z4, Z5
	VPERMI2B   Z2, Z1, Z5
	VPORQ      Z4, Z5, Z6
	VPMOVB2M   Z6, K2
	KORTESTQ   K2, K2
	JNZ        done
	VPMADDUBSW Z3, Z5, Z5
	VPMADDWD   Z8, Z5, Z5
	VPERMB     Z5, Z9, Z5
	VMOVDQU8   Z5, K1, (DI)
	ADDQ $64, SI
	ADDQ $48, DI
	INCQ BX
	JMP  loop

done:
	MOVQ BX, ret+32(FP)
	VZEROUPPER
	RET
