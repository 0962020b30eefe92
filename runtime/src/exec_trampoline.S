/* husk's exec trampoline (x86_64): see runtime/src/exec_trampoline.rs,
 * whose CODE is this file's .text; its unit test assembles this file and
 * compares. Arguments: START REPORT PATH ARGV... */
.globl _start
_start:
  mov $157, %eax              /* prctl(PR_SET_DUMPABLE, 0), first */
  mov $4, %edi
  xor %esi, %esi
  syscall
  mov (%rsp), %rbx            /* argc */
  cmp $3, %rbx
  jb usage                    /* start fd, report fd, path */
  mov 8(%rsp), %rdi
  call parse_fd               /* start fd, or -1 for "-" */
  mov %rax, %r14
  mov 16(%rsp), %rdi
  call parse_fd               /* report fd */
  test %rax, %rax
  js usage
  mov %rax, %r13
  test %r14, %r14
  js go
wait:                         /* read(start_fd, buf, 1) until one byte */
  xor %eax, %eax
  mov %r14, %rdi
  lea -8(%rsp), %rsi
  mov $1, %edx
  syscall
  cmp $1, %rax
  je started
  test %rax, %rax
  je wait                     /* EOF: keep waiting, as husk's init does */
  cmp $-4, %rax
  je wait                     /* EINTR */
  jmp fail_quiet
started:                      /* fcntl(start, F_SETFD, FD_CLOEXEC) */
  mov $72, %eax
  mov %r14, %rdi
  mov $2, %esi
  mov $1, %edx
  syscall
go:
  mov $72, %eax               /* fcntl(report, F_SETFD, FD_CLOEXEC) */
  mov %r13, %rdi
  mov $2, %esi
  mov $1, %edx
  syscall
  mov 24(%rsp), %r12          /* path */
  mov $59, %eax               /* execve(path, &argv[3], envp) */
  mov %r12, %rdi
  lea 32(%rsp), %rsi
  lea 16(%rsp,%rbx,8), %rdx
  syscall
  neg %eax                    /* errno */
  shl $8, %rax                /* [0][errno LE 4 bytes] */
  push %rax
  mov %r12, %rsi              /* strlen(path) */
  xor %edx, %edx
len:
  cmpb $0, (%rsi,%rdx)
  je report
  inc %rdx
  jmp len
report:
  push %rdx                   /* iov[1] = {path, len} */
  push %rsi
  lea 16(%rsp), %rax
  push $5                     /* iov[0] = {hdr, 5} */
  push %rax
  mov $20, %eax               /* writev(report, iov, 2) */
  mov %r13, %rdi
  mov %rsp, %rsi
  mov $2, %edx
  syscall
fail_quiet:
  mov $1, %edi
  jmp out
usage:
  mov $127, %edi
out:
  mov $231, %eax              /* exit_group */
  syscall
parse_fd:                     /* decimal digits -> rax; "-" or junk -> -1 */
  xor %eax, %eax
  movzbl (%rdi), %ecx
  test %ecx, %ecx
  je bad
1:
  movzbl (%rdi), %ecx
  test %ecx, %ecx
  je 2f
  sub $48, %ecx
  cmp $9, %ecx
  ja bad
  imul $10, %rax, %rax
  add %rcx, %rax
  cmp $0x7fffffff, %rax
  ja bad
  inc %rdi
  jmp 1b
2:
  ret
bad:
  mov $-1, %rax
  ret
