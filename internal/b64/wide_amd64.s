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
