//go:build !purego

#include "textflag.h"

// func specialMasks(p *byte, n int, dst *uint64)
//
// For each 64-byte block of p[:n] (n a multiple of 64), dst gets a word whose bit k is set when
// byte k of the block is '"', '\\' or below 0x20.
TEXT ·specialMasks(SB), NOSPLIT, $0-24
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ dst+16(FP), DI
	MOVQ $0x2222222222222222, AX
	VMOVQ AX, X1
	VPBROADCASTQ X1, Y1
	MOVQ $0x5C5C5C5C5C5C5C5C, AX
	VMOVQ AX, X2
	VPBROADCASTQ X2, Y2
	MOVQ $0x1F1F1F1F1F1F1F1F, AX
	VMOVQ AX, X3
	VPBROADCASTQ X3, Y3

loop:
	CMPQ CX, $64
	JB   done
	VMOVDQU (SI), Y4
	VMOVDQU 32(SI), Y8
	VPCMPEQB Y4, Y1, Y5
	VPCMPEQB Y4, Y2, Y6
	VPOR     Y5, Y6, Y5
	VPMINUB  Y4, Y3, Y7
	VPCMPEQB Y4, Y7, Y7
	VPOR     Y5, Y7, Y5
	VPMOVMSKB Y5, AX
	VPCMPEQB Y8, Y1, Y9
	VPCMPEQB Y8, Y2, Y10
	VPOR     Y9, Y10, Y9
	VPMINUB  Y8, Y3, Y11
	VPCMPEQB Y8, Y11, Y11
	VPOR     Y9, Y11, Y9
	VPMOVMSKB Y9, DX
	SHLQ $32, DX
	ORQ  DX, AX
	MOVQ AX, (DI)
	ADDQ $64, SI
	ADDQ $8, DI
	SUBQ $64, CX
	JMP  loop

done:
	VZEROUPPER
	RET
