#include "textflag.h"

// func prefetch(p unsafe.Pointer) uint64
TEXT ·prefetch(SB), NOSPLIT|NOFRAME, $0-16
	MOVD p+0(FP), R0
	PRFM (R0), PLDL1KEEP
	MOVD ZR, ret+8(FP)
	RET

// func prefetchLines(p unsafe.Pointer, n uintptr) uint64
TEXT ·prefetchLines(SB), NOSPLIT|NOFRAME, $0-24
	MOVD p+0(FP), R0
	MOVD n+8(FP), R1
	ADD  R0, R1, R1
	SUB  $1, R1, R1 // last byte
	AND  $~63, R0, R0
	AND  $~63, R1, R1
loop:
	PRFM (R0), PLDL1KEEP
	ADD  $64, R0, R0
	CMP  R1, R0
	BLS  loop
	MOVD ZR, ret+16(FP)
	RET
