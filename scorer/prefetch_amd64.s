#include "textflag.h"

// PREFETCHT1: into the second-level cache (prefetch_asm.go says why).

// func prefetch(p unsafe.Pointer) uint64
TEXT ·prefetch(SB), NOSPLIT|NOFRAME, $0-16
	MOVQ p+0(FP), AX
	PREFETCHT1 (AX)
	MOVQ $0, ret+8(FP)
	RET

// func prefetchLines(p unsafe.Pointer, n uintptr) uint64
// Prefetches every cache line of [p, p+n), n > 0.
TEXT ·prefetchLines(SB), NOSPLIT|NOFRAME, $0-24
	MOVQ p+0(FP), AX
	MOVQ n+8(FP), CX
	LEAQ -1(AX)(CX*1), CX // last byte
	ANDQ $~63, AX
	ANDQ $~63, CX
loop:
	PREFETCHT1 (AX)
	ADDQ $64, AX
	CMPQ AX, CX
	JLS loop
	MOVQ $0, ret+16(FP)
	RET
