/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A tiny x86 firmware image for an unmodified QEMU (-M microvm -bios), used
 * to show that a VM carries on after a cpr-reboot save and a restore by a
 * new QEMU on the same RAM.
 *
 * What it does:
 *   1. Starts at the reset vector in 16-bit real mode, loads its own GDT and
 *      enters 32-bit flat protected mode (no paging, interrupts off, SSE on).
 *   2. Reads the RAM size from QEMU's fw_cfg (the legacy I/O interface at
 *      0x510: the signature item, then FW_CFG_RAM_SIZE; microvm has it
 *      there as the pc machine does) and prints
 *          fdbox-guest: boot, RAM <N> MiB
 *      If fw_cfg does not answer "QEMU" it prints "fdbox-guest: no fw_cfg"
 *      and stops.
 *   3. Fills the low RAM, from 1 MiB to the end of the RAM below 4 GiB, with
 *      a pattern: the 32-bit word at physical address A holds
 *          A ^ 0xA5A5A5A5
 *      which is never zero for a 4-byte aligned A (its low two bits are 01),
 *      so a migration cannot skip a page as a zero page. Then prints
 *          fdbox-guest: filled <M> MiB
 *      where M is the size of the filled range, (end - 1 MiB) / 1 MiB.
 *   4. Loops forever: counter += 1 (a 32-bit word at COUNTER, zeroed at
 *      boot, outside the pattern), prints "n=<counter> ", checks every word
 *      of the pattern, then prints "ok". A line reads "n=17 ok".
 *      On the first wrong word it prints "BAD <hex address>" instead and
 *      stops for good (interrupts off, hlt in a loop): nothing more appears.
 *   All output goes to COM1 (I/O 0x3f8), polling LSR.THRE before each byte.
 *
 * A save and restore brings back RAM and CPU state, so after one the count
 * goes on and no second boot line appears.
 *
 * Memory map (guest physical):
 *   0x1000            COUNTER (4 bytes)
 *   0x1008            FWCFG_BUF, fw_cfg scratch (8 bytes)
 *   below 0x7000      the stack (a few dozen bytes), from STACK_TOP down
 *   0x100000..end     the pattern; end = min(RAM size, 3 GiB), 4 KiB aligned
 *   0xffff0000        this image (QEMU also maps it at 0xf0000): the
 *                     32-bit code, its data, the 16-bit start, and at
 *                     0xfffffff0 the reset vector
 *
 * microvm puts at most 3 GiB of RAM below 4 GiB (the rest above 4 GiB, out
 * of reach of this 32-bit code); nothing else sits below 3 GiB.
 *
 * Built with binutils only (no preprocessor): as --32, then ld with
 * guest.ld, which links the image at 0xffff0000 as a 64 KiB raw binary.
 * See scripts/qemu-guest.sh.
 */

	.set	COM1, 0x3f8		/* 16550 UART, microvm's isa-serial */
	.set	UART_IER, COM1 + 1
	.set	UART_LCR, COM1 + 3
	.set	UART_MCR, COM1 + 4
	.set	UART_LSR, COM1 + 5
	.set	LSR_THRE, 0x20		/* transmit holding register empty */

	.set	FW_CFG_CTL, 0x510	/* selector, written as 16 bits */
	.set	FW_CFG_DATA, 0x511	/* data, read a byte at a time */
	.set	FW_CFG_SIGNATURE, 0x0000	/* "QEMU" */
	.set	FW_CFG_RAM_SIZE, 0x0003		/* 64-bit little endian */

	.set	COUNTER, 0x1000
	.set	FWCFG_BUF, 0x1008
	.set	STACK_TOP, 0x7000

	.set	PATTERN_START, 0x100000		/* 1 MiB */
	.set	LOWMEM_MAX, 0xc0000000		/* microvm: RAM below 4 GiB <= 3 GiB */
	.set	PATTERN_XOR, 0xa5a5a5a5

	.set	CODE_SEL, 0x08
	.set	DATA_SEL, 0x10

	.text
rom_start:			/* guest.ld links it at 0xffff0000 */

/*
 * 32-bit flat protected mode; the 16-bit start is at the end of the image,
 * next to the reset vector, and jumps here.
 */
	.code32
prot_entry:
	movw	$DATA_SEL, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movw	%ax, %fs
	movw	%ax, %gs
	movl	$STACK_TOP, %esp

	/* SSE for the fill and the check: CR4.OSFXSR and CR4.OSXMMEXCPT. */
	movl	%cr4, %eax
	orl	$0x600, %eax
	movl	%eax, %cr4

	call	uart_init
	movl	$0, COUNTER

	/* fw_cfg: is it there? */
	movw	$FW_CFG_SIGNATURE, %ax
	call	fw_cfg_read8
	cmpl	$0x554d4551, %eax	/* "QEMU" */
	jne	no_fw_cfg

	/* RAM size, in ecx:ebx (puts clobbers edx). */
	movw	$FW_CFG_RAM_SIZE, %ax
	call	fw_cfg_read8
	movl	%eax, %ebx
	movl	%edx, %ecx

	/* "fdbox-guest: boot, RAM <N> MiB" */
	movl	$msg_boot, %esi
	call	puts
	movl	%ebx, %eax
	shrdl	$20, %ecx, %eax
	call	put_dec
	movl	$msg_mib, %esi
	call	puts

	/* ebp = end of the pattern = min(RAM size, LOWMEM_MAX), page aligned. */
	movl	$LOWMEM_MAX, %ebp
	testl	%ecx, %ecx
	jnz	1f
	cmpl	%ebp, %ebx
	jae	1f
	movl	%ebx, %ebp
1:	andl	$~0xfff, %ebp
	cmpl	$PATTERN_START + 0x1000, %ebp
	jb	too_small

	call	fill

	/* "fdbox-guest: filled <M> MiB" */
	movl	$msg_filled, %esi
	call	puts
	movl	%ebp, %eax
	subl	$PATTERN_START, %eax
	shrl	$20, %eax
	call	put_dec
	movl	$msg_mib, %esi
	call	puts

/* The main loop; ebp stays the end of the pattern. */
main_loop:
	incl	COUNTER
	movl	$msg_n, %esi
	call	puts
	movl	COUNTER, %eax
	call	put_dec
	movb	$' ', %al
	call	putc
	call	check
	testl	%eax, %eax
	jnz	bad
	movl	$msg_ok, %esi
	call	puts
	jmp	main_loop

/* eax = the address of a wrong word: report it and stop. */
bad:
	movl	%eax, %ebx
	movl	$msg_bad, %esi
	call	puts
	movl	%ebx, %eax
	call	put_hex
	movb	$'\n', %al
	call	putc
	jmp	halt

no_fw_cfg:
	movl	$msg_no_fw_cfg, %esi
	call	puts
	jmp	halt

too_small:
	movl	$msg_too_small, %esi
	call	puts

halt:
	cli
	hlt
	jmp	halt

/*
 * The pattern's four 16-byte vectors for a 64-byte aligned chunk at address
 * C: the word at C + 4i is (C ^ PATTERN_XOR) ^ 4i, as C + 4i == C | 4i.
 * Loads them into xmm4..xmm7.
 */
load_offsets:
	movdqa	offsets + 0, %xmm4
	movdqa	offsets + 16, %xmm5
	movdqa	offsets + 32, %xmm6
	movdqa	offsets + 48, %xmm7
	ret

/*
 * Fills [PATTERN_START, ebp) with the pattern, 64 bytes per round: xmm0 is
 * the chunk's base value in all four lanes, xor-ed with xmm4..xmm7.
 * Clobbers eax, edi, xmm0..xmm2.
 */
fill:
	call	load_offsets
	movl	$PATTERN_START, %edi
1:	movl	%edi, %eax
	xorl	$PATTERN_XOR, %eax
	movd	%eax, %xmm0
	pshufd	$0, %xmm0, %xmm0
	movdqa	%xmm0, %xmm1
	movdqa	%xmm0, %xmm2
	pxor	%xmm4, %xmm1
	pxor	%xmm5, %xmm2
	movdqa	%xmm1, 0(%edi)
	movdqa	%xmm2, 16(%edi)
	movdqa	%xmm0, %xmm1
	pxor	%xmm6, %xmm1
	pxor	%xmm7, %xmm0
	movdqa	%xmm1, 32(%edi)
	movdqa	%xmm0, 48(%edi)
	addl	$64, %edi
	cmpl	%ebp, %edi
	jb	1b
	ret

/*
 * Checks [PATTERN_START, ebp) word by word. Per 4 KiB page, the xor of
 * every word with its expected value is or-ed into xmm3 (no branch per
 * word, which TCG would make slow); a page with a nonzero xmm3 is scanned
 * again word by word to find the first wrong one.
 * Returns eax = 0 if all is well, else the address of the first wrong word.
 * Clobbers eax, ebx, ecx, edx, edi, xmm0..xmm3.
 */
check:
	call	load_offsets
	movl	$PATTERN_START, %edi
2:	pxor	%xmm3, %xmm3
	leal	0x1000(%edi), %ebx	/* end of this page */
1:	movl	%edi, %eax
	xorl	$PATTERN_XOR, %eax
	movd	%eax, %xmm0
	pshufd	$0, %xmm0, %xmm0
	movdqa	%xmm0, %xmm1
	movdqa	%xmm0, %xmm2
	pxor	%xmm4, %xmm1
	pxor	%xmm5, %xmm2
	pxor	0(%edi), %xmm1
	pxor	16(%edi), %xmm2
	por	%xmm1, %xmm3
	por	%xmm2, %xmm3
	movdqa	%xmm0, %xmm1
	pxor	%xmm6, %xmm1
	pxor	%xmm7, %xmm0
	pxor	32(%edi), %xmm1
	pxor	48(%edi), %xmm0
	por	%xmm1, %xmm3
	por	%xmm0, %xmm3
	addl	$64, %edi
	cmpl	%ebx, %edi
	jb	1b
	/* All 16 bytes of xmm3 zero? */
	pxor	%xmm0, %xmm0
	pcmpeqb	%xmm3, %xmm0
	pmovmskb %xmm0, %eax
	cmpl	$0xffff, %eax
	jne	3f
	cmpl	%ebp, %edi
	jb	2b
	xorl	%eax, %eax
	ret
	/* Something in the page before edi is wrong: find the first word. */
3:	subl	$0x1000, %edi
4:	movl	%edi, %eax
	xorl	$PATTERN_XOR, %eax
	cmpl	(%edi), %eax
	jne	5f
	addl	$4, %edi
	cmpl	%ebx, %edi
	jb	4b
	/* Changed between the two passes: the first pass still saw it. */
	leal	-0x1000(%ebx), %edi
5:	movl	%edi, %eax
	ret

/* The UART: interrupts off, 8N1, DTR and RTS. QEMU needs no baud rate. */
uart_init:
	movw	$UART_IER, %dx
	movb	$0x00, %al
	outb	%al, %dx
	movw	$UART_LCR, %dx
	movb	$0x03, %al
	outb	%al, %dx
	movw	$UART_MCR, %dx
	movb	$0x03, %al
	outb	%al, %dx
	ret

/* Writes the byte in al once the transmitter has room. Keeps all but edx. */
putc:
	pushl	%eax
	movw	$UART_LSR, %dx
1:	inb	%dx, %al
	testb	$LSR_THRE, %al
	jz	1b
	popl	%eax
	movw	$COM1, %dx
	outb	%al, %dx
	ret

/* Writes the NUL-terminated string at esi. Keeps all but esi and edx. */
puts:
	pushl	%eax
1:	lodsb
	testb	%al, %al
	jz	2f
	call	putc
	jmp	1b
2:	popl	%eax
	ret

/* Writes eax in decimal. Keeps all but edx. */
put_dec:
	pushl	%eax
	pushl	%ebx
	pushl	%ecx
	movl	$10, %ebx
	xorl	%ecx, %ecx
1:	xorl	%edx, %edx		/* digits, least significant first */
	divl	%ebx
	pushl	%edx
	incl	%ecx
	testl	%eax, %eax
	jnz	1b
2:	popl	%eax			/* most significant first */
	addb	$'0', %al
	call	putc
	loop	2b
	popl	%ecx
	popl	%ebx
	popl	%eax
	ret

/* Writes eax as 0x and 8 hex digits. Keeps all but edx. */
put_hex:
	pushl	%eax
	pushl	%ebx
	pushl	%ecx
	movl	%eax, %ebx
	movb	$'0', %al
	call	putc
	movb	$'x', %al
	call	putc
	movl	$8, %ecx
1:	roll	$4, %ebx
	movb	%bl, %al
	andb	$0xf, %al
	addb	$'0', %al
	cmpb	$'9', %al
	jbe	2f
	addb	$'a' - '9' - 1, %al
2:	call	putc
	loop	1b
	popl	%ecx
	popl	%ebx
	popl	%eax
	ret

/*
 * Selects fw_cfg item ax and reads its first 8 bytes into edx:eax (little
 * endian), through FWCFG_BUF.
 */
fw_cfg_read8:
	pushl	%ecx
	pushl	%edi
	movw	$FW_CFG_CTL, %dx
	outw	%ax, %dx
	movw	$FW_CFG_DATA, %dx
	movl	$FWCFG_BUF, %edi
	movl	$8, %ecx
	rep insb
	movl	FWCFG_BUF, %eax
	movl	FWCFG_BUF + 4, %edx
	popl	%edi
	popl	%ecx
	ret

/* Read-only data. */
	.balign	16
offsets:
	.long	0x00, 0x04, 0x08, 0x0c
	.long	0x10, 0x14, 0x18, 0x1c
	.long	0x20, 0x24, 0x28, 0x2c
	.long	0x30, 0x34, 0x38, 0x3c

/* Flat 4 GiB code and data segments. */
	.balign	8
gdt:
	.quad	0				/* null */
	.quad	0x00cf9b000000ffff		/* 0x08: code, 32-bit, base 0 */
	.quad	0x00cf93000000ffff		/* 0x10: data, 32-bit, base 0 */
gdt_end:

gdt_desc:
	.word	gdt_end - gdt - 1
	.long	gdt				/* a linear address: 0xffffxxxx */

msg_boot:	.asciz	"fdbox-guest: boot, RAM "
msg_filled:	.asciz	"fdbox-guest: filled "
msg_mib:	.asciz	" MiB\n"
msg_n:		.asciz	"n="
msg_ok:		.asciz	"ok\n"
msg_bad:	.asciz	"BAD "
msg_no_fw_cfg:	.asciz	"fdbox-guest: no fw_cfg\n"
msg_too_small:	.asciz	"fdbox-guest: RAM too small\n"

/*
 * The real-mode start sits just below the reset vector, so the near jump
 * there is a short one backwards.
 */
	.org	0xffc0, 0xf4
/*
 * 16-bit real mode. At reset CS has selector 0xf000 and base 0xffff0000, so
 * IP is an offset in this image. DS is based at 0, so data comes through CS.
 */
	.code16
real_entry:
	cli
	cld
	/*
	 * The "l" suffix is the o32 prefix: without it lgdt keeps only 24 bits
	 * of the base. The descriptor is addressed relative to CS's base.
	 */
	lgdtl	%cs:(gdt_desc - rom_start)
	movl	%cr0, %eax
	andl	$~0x4, %eax		/* EM off: SSE instructions run */
	orl	$0x3, %eax		/* PE on, MP on */
	movl	%eax, %cr0
	/* A far jump with a 32-bit offset reloads CS from the GDT. */
	ljmpl	$CODE_SEL, $prot_entry

/*
 * The reset vector: the last 16 bytes of the image, at 0xfffffff0.
 */
	.org	0xfff0, 0xf4
	.globl	reset_vector
reset_vector:
	.code16
	jmp	real_entry
	.org	0x10000, 0xf4		/* the image is exactly 64 KiB */

	.section .note.GNU-stack, "", @progbits
