//go:build amd64 && !purego

#include "textflag.h"

// The XXH3 default secret (kSecret), 192 bytes, as little-endian quadwords.
DATA secret<>+0x00(SB)/8, $0xbe4ba423396cfeb8
DATA secret<>+0x08(SB)/8, $0x1cad21f72c81017c
DATA secret<>+0x10(SB)/8, $0xdb979083e96dd4de
DATA secret<>+0x18(SB)/8, $0x1f67b3b7a4a44072
DATA secret<>+0x20(SB)/8, $0x78e5c0cc4ee679cb
DATA secret<>+0x28(SB)/8, $0x2172ffcc7dd05a82
DATA secret<>+0x30(SB)/8, $0x8e2443f7744608b8
DATA secret<>+0x38(SB)/8, $0x4c263a81e69035e0
DATA secret<>+0x40(SB)/8, $0xcb00c391bb52283c
DATA secret<>+0x48(SB)/8, $0xa32e531b8b65d088
DATA secret<>+0x50(SB)/8, $0x4ef90da297486471
DATA secret<>+0x58(SB)/8, $0xd8acdea946ef1938
DATA secret<>+0x60(SB)/8, $0x3f349ce33f76faa8
DATA secret<>+0x68(SB)/8, $0x1d4f0bc7c7bbdcf9
DATA secret<>+0x70(SB)/8, $0x3159b4cd4be0518a
DATA secret<>+0x78(SB)/8, $0x647378d9c97e9fc8
DATA secret<>+0x80(SB)/8, $0xc3ebd33483acc5ea
DATA secret<>+0x88(SB)/8, $0xeb6313faffa081c5
DATA secret<>+0x90(SB)/8, $0x49daf0b751dd0d17
DATA secret<>+0x98(SB)/8, $0x9e68d429265516d3
DATA secret<>+0xa0(SB)/8, $0xfca1477d58be162b
DATA secret<>+0xa8(SB)/8, $0xce31d07ad1b8f88f
DATA secret<>+0xb0(SB)/8, $0x280416958f3acb45
DATA secret<>+0xb8(SB)/8, $0x7e404bbbcafbd7af
GLOBL secret<>(SB), RODATA|NOPTR, $192

// The initial accumulators (spec step 1): P32_3, P64_1, P64_2, P64_3, P64_4, P32_2, P64_5,
// P32_1.
DATA initacc<>+0x00(SB)/8, $0x00000000c2b2ae3d
DATA initacc<>+0x08(SB)/8, $0x9e3779b185ebca87
DATA initacc<>+0x10(SB)/8, $0xc2b2ae3d27d4eb4f
DATA initacc<>+0x18(SB)/8, $0x165667b19e3779f9
DATA initacc<>+0x20(SB)/8, $0x85ebca77c2b2ae63
DATA initacc<>+0x28(SB)/8, $0x0000000085ebca77
DATA initacc<>+0x30(SB)/8, $0x27d4eb2f165667c5
DATA initacc<>+0x38(SB)/8, $0x000000009e3779b1
GLOBL initacc<>(SB), RODATA|NOPTR, $64

// Register use:
//
//	DX      the secret
//	R8      8s for stripe s: the stripe's secret is at DX + R8, its data at 8*R8 from the
//	        first stripe's; BX is 8 times the number of full stripes
//	Y0, Y1  the sum of the stripes' data, lanes 0-3 and 4-7 (swapped into place at the end)
//	Y2, Y3  the initial accumulators plus the sum of the stripes' products
//	Y4, Y5  the stripe being accumulated; Y6, Y7 scratch

// INIT sets the sums for spec step 1 and DX to the secret.
#define INIT \
	LEAQ    secret<>(SB), DX          \
	VPXOR   Y0, Y0, Y0                \
	VPXOR   Y1, Y1, Y1                \
	VMOVDQU initacc<>+0x00(SB), Y2    \
	VMOVDQU initacc<>+0x20(SB), Y3

// ACCUMULATE adds the stripe in Y4, Y5 with the secret at k0 (lanes 0-3) and k1 (lanes
// 4-7) to the sums (spec step 2). It clobbers Y4..Y7.
#define ACCUMULATE(k0, k1) \
	VPADDQ   Y4, Y0, Y0 /* data sum */                \
	VPADDQ   Y5, Y1, Y1                               \
	VPXOR    k0, Y4, Y4 /* k = d ^ secret */          \
	VPXOR    k1, Y5, Y5                               \
	VPSRLQ   $32, Y4, Y6 /* k >> 32 */                \
	VPSRLQ   $32, Y5, Y7                              \
	VPMULUDQ Y6, Y4, Y4 /* uint32(k) * (k >> 32) */   \
	VPMULUDQ Y7, Y5, Y5                               \
	VPADDQ   Y4, Y2, Y2 /* product sum */             \
	VPADDQ   Y5, Y3, Y3

// END completes step 2, acc[i^1] += data sum[i] (a swap of the quadwords of each 128-bit
// half), and starts step 3: acc ^ secret[11:75], left in Y2 (lanes 0-3) and Y3 (4-7).
#define END \
	VPSHUFD $0x4e, Y0, Y0                     \
	VPSHUFD $0x4e, Y1, Y1                     \
	VPADDQ  Y0, Y2, Y2                        \
	VPADDQ  Y1, Y3, Y3                        \
	VPXOR   11(DX), Y2, Y2                    \
	VPXOR   43(DX), Y3, Y3

// MERGE finishes step 3 from Y2, Y3 and does step 4 for an input of length l (a register
// other than AX, BX, DX, SI, DI, R8..R13), storing the hash at ret.
#define MERGE(l, ret) \
	VEXTRACTI128 $1, Y2, X4                   \
	VEXTRACTI128 $1, Y3, X5                   \
	VMOVQ        X2, R8                       \
	VPEXTRQ      $1, X2, R9                   \
	VMOVQ        X4, R10                      \
	VPEXTRQ      $1, X4, R11                  \
	VMOVQ        X3, R12                      \
	VPEXTRQ      $1, X3, R13                  \
	VMOVQ        X5, SI                       \
	VPEXTRQ      $1, X5, DI                   \
	VZEROUPPER                                \
	/* h = len*P64_1 + fold(acc0, acc1) + ... + fold(acc6, acc7) */ \
	MOVQ         $0x9e3779b185ebca87, BX      \
	IMULQ        l, BX                        \
	MOVQ         R8, AX                       \
	MULQ         R9                           \
	XORQ         DX, AX                       \
	ADDQ         AX, BX                       \
	MOVQ         R10, AX                      \
	MULQ         R11                          \
	XORQ         DX, AX                       \
	ADDQ         AX, BX                       \
	MOVQ         R12, AX                      \
	MULQ         R13                          \
	XORQ         DX, AX                       \
	ADDQ         AX, BX                       \
	MOVQ         SI, AX                       \
	MULQ         DI                           \
	XORQ         DX, AX                       \
	ADDQ         AX, BX                       \
	/* avalanche */                           \
	MOVQ         BX, AX                       \
	SHRQ         $37, AX                      \
	XORQ         AX, BX                       \
	MOVQ         $0x165667919e3779f9, AX      \
	IMULQ        AX, BX                       \
	MOVQ         BX, AX                       \
	SHRQ         $32, AX                      \
	XORQ         BX, AX                       \
	MOVQ         AX, ret

// func sumAVX2(b []byte) uint64
//
// XXH3-64, seed 0, of 241 <= len(b) <= 1024 bytes. SI input, CX length.
TEXT ·sumAVX2(SB), NOSPLIT, $0-32
	MOVQ b_base+0(FP), SI
	MOVQ b_len+8(FP), CX
	LEAQ -1(CX), BX      // the (len-1)/64 full stripes (3..15), times 8
	SHRQ $6, BX
	SHLQ $3, BX
	XORQ R8, R8
	INIT

stripe:
	VMOVDQU (SI)(R8*8), Y4
	VMOVDQU 32(SI)(R8*8), Y5
	ACCUMULATE((DX)(R8*1), 32(DX)(R8*1))
	ADDQ    $8, R8
	CMPQ    R8, BX
	JNE     stripe

	// The last stripe, input[len-64:len], with secret[121:185].
	VMOVDQU -64(SI)(CX*1), Y4
	VMOVDQU -32(SI)(CX*1), Y5
	ACCUMULATE(121(DX), 153(DX))
	END
	MERGE(CX, ret+24(FP))
	RET

// func copySumAVX2(frame []byte, h0, h1, h2, h3 uint64, payload []byte) uint64
//
// Writes the header words h0..h3 to frame[0:32] and payload to frame[32:], and returns the
// XXH3-64, seed 0, of frame; 209 <= len(payload) <= 992 and len(frame) == 32+len(payload).
// The payload goes from its loads straight into the stripes and the header from the
// argument words into the first, so no load reads bytes this call stored.
//
// Stripe s of the frame is frame[64s:64s+64]: the header and payload[0:32] for s = 0,
// payload[64s-32:64s+32] after. SI payload, CX payload length, DI frame.
TEXT ·copySumAVX2(SB), NOSPLIT, $0-88
	MOVQ frame_base+0(FP), DI
	MOVQ payload_base+56(FP), SI
	MOVQ payload_len+64(FP), CX
	LEAQ 31(CX), BX      // the (len(frame)-1)/64 full stripes (3..15), times 8
	SHRQ $6, BX
	SHLQ $3, BX
	MOVQ $8, R8          // from stripe 1

	// Stripe 0: the header words, stored and put together in Y4, and payload[0:32] in Y5.
	MOVQ        h0+24(FP), R9
	MOVQ        h1+32(FP), R10
	MOVQ        h2+40(FP), R11
	MOVQ        h3+48(FP), R12
	MOVQ        R9, (DI)
	MOVQ        R10, 8(DI)
	MOVQ        R11, 16(DI)
	MOVQ        R12, 24(DI)
	VMOVQ       R9, X4
	VPINSRQ     $1, R10, X4, X4
	VMOVQ       R11, X6
	VPINSRQ     $1, R12, X6, X6
	VINSERTI128 $1, X6, Y4, Y4
	VMOVDQU     (SI), Y5
	VMOVDQU     Y5, 32(DI)
	INIT
	ACCUMULATE((DX), 32(DX))

copystripe:
	VMOVDQU -32(SI)(R8*8), Y4
	VMOVDQU (SI)(R8*8), Y5
	VMOVDQU Y4, (DI)(R8*8)
	VMOVDQU Y5, 32(DI)(R8*8)
	ACCUMULATE((DX)(R8*1), 32(DX)(R8*1))
	ADDQ    $8, R8
	CMPQ    R8, BX
	JNE     copystripe

	// The last stripe, payload[len-64:len] = frame[len(frame)-64:], with secret[121:185].
	VMOVDQU -64(SI)(CX*1), Y4
	VMOVDQU -32(SI)(CX*1), Y5
	VMOVDQU Y4, -32(DI)(CX*1)
	VMOVDQU Y5, (DI)(CX*1)
	ACCUMULATE(121(DX), 153(DX))
	END
	ADDQ    $32, CX      // the frame's length
	MERGE(CX, ret+80(FP))
	RET
